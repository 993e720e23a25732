/* Elementwise ops: binary with NumPy broadcasting, with a scalar, unary, comparisons and select.
 * Each kernel is one expression instantiated for float and double (tgmath picks expf or exp);
 * each op's backward rule sits next to its kernel and is written with the engine's own ops. */
#include "../internal.h"
#include "vmath.h"

#include <tgmath.h>

/* ---- row kernels: contiguous fast paths, strided general path ---- */

#define UNARY_ROW(ISA, ATTR, name, T, expr)                                             \
    ATTR static void name##_##ISA(int64_t n, char **p, const int64_t *s, void *ctx)           \
    {                                                                                   \
        typedef T E; /* the element type, for expressions */                           \
        (void)sizeof(E);                                                                \
        const E c = (E)*(const double *)ctx;                                            \
        (void)c;                                                                        \
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                   \
            T *o = (T *)p[0];                                                           \
            const T *xs = (const T *)p[1];                                              \
            for (int64_t i = 0; i < n; i++) { const T x = xs[i]; o[i] = (expr); }       \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                const T x = *(const T *)(p[1] + i * s[1]);                              \
                *(T *)(p[0] + i * s[0]) = (expr);                                       \
            }                                                                           \
        }                                                                               \
    }

#define BINARY_ROW(ISA, ATTR, name, T, expr)                                            \
    ATTR static void name##_##ISA(int64_t n, char **p, const int64_t *s, void *ctx)           \
    {                                                                                   \
        typedef T E; /* the element type, for expressions */                           \
        (void)sizeof(E);                                                                \
        (void)ctx;                                                                      \
        if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {              \
            T *o = (T *)p[0];                                                           \
            const T *as = (const T *)p[1], *bs = (const T *)p[2];                       \
            for (int64_t i = 0; i < n; i++) { const T a = as[i], b = bs[i]; o[i] = (expr); } \
        } else if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 0) {               \
            T *o = (T *)p[0];                                                           \
            const T *as = (const T *)p[1];                                              \
            const T b = *(const T *)p[2];                                               \
            for (int64_t i = 0; i < n; i++) { const T a = as[i]; o[i] = (expr); }       \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                const T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]); \
                *(T *)(p[0] + i * s[0]) = (expr);                                       \
            }                                                                           \
        }                                                                               \
    }

/* three inputs a, b, c of the output's shape (no broadcasting) */
#define TERNARY_ROW(ISA, ATTR, name, T, expr)                                           \
    ATTR static void name##_##ISA(int64_t n, char **p, const int64_t *s, void *ctx)           \
    {                                                                                   \
        typedef T E; /* the element type, for expressions */                           \
        (void)sizeof(E);                                                                \
        (void)ctx;                                                                      \
        if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T) && s[3] == sizeof(T)) { \
            T *o = (T *)p[0];                                                           \
            const T *as = (const T *)p[1], *bs = (const T *)p[2], *cs = (const T *)p[3]; \
            for (int64_t i = 0; i < n; i++) { const T a = as[i], b = bs[i], c = cs[i]; o[i] = (expr); } \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                const T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]); \
                const T c = *(const T *)(p[3] + i * s[3]);                              \
                *(T *)(p[0] + i * s[0]) = (expr);                                       \
            }                                                                           \
        }                                                                               \
    }

/* one kernel per dtype and instruction-set level; i64 only for comparisons */
typedef struct { nb_row_fn f32[NB_ISA_LEVELS], f64[NB_ISA_LEVELS], i64[NB_ISA_LEVELS]; } kernels;

#define UNARY_KERNELS(name, expr)                          \
    NB_FOR_ISA(UNARY_ROW, name##_f32, float, expr)         \
    NB_FOR_ISA(UNARY_ROW, name##_f64, double, expr)        \
    static const kernels name##_k = { NB_ISA_TABLE(name##_f32), NB_ISA_TABLE(name##_f64), { NULL } };

#define BINARY_KERNELS(name, expr)                         \
    NB_FOR_ISA(BINARY_ROW, name##_f32, float, expr)        \
    NB_FOR_ISA(BINARY_ROW, name##_f64, double, expr)       \
    static const kernels name##_k = { NB_ISA_TABLE(name##_f32), NB_ISA_TABLE(name##_f64), { NULL } };

#define COMPARE_KERNELS(name, expr)                        \
    NB_FOR_ISA(BINARY_ROW, name##_f32, float, expr)        \
    NB_FOR_ISA(BINARY_ROW, name##_f64, double, expr)       \
    NB_FOR_ISA(BINARY_ROW, name##_i64, int64_t, expr)      \
    static const kernels name##_k = { NB_ISA_TABLE(name##_f32), NB_ISA_TABLE(name##_f64), NB_ISA_TABLE(name##_i64) };

static nb_row_fn pick(const kernels *k, nb_dtype dt)
{
    return NB_ISA_PICK(dt == NB_F32 ? k->f32 : dt == NB_F64 ? k->f64 : k->i64);
}

/* ---- generic drivers ---- */

static nb_tensor *map_unary(const char *name, const kernels *k, nb_tensor *x, double c)
{
    if (!x) return nb_null_input(name);
    if (!nb_check_float(name, x)) return NULL;
    nb_tensor *out = nb_new_layout_of(name, x, x->dtype);   /* keeps a channels-last layout */
    if (!out) return NULL;
    nb_loop l;
    nb_loop_init(&l, x->ndim, x->shape);
    nb_loop_add(&l, out);
    nb_loop_add(&l, x);
    nb_loop_run_parallel(&l, pick(k, x->dtype), &c);
    return out;
}

static nb_tensor *map_binary(const char *name, const kernels *k, nb_tensor *a, nb_tensor *b)
{
    if (!a || !b) return nb_null_input(name);
    if (!nb_check_same_dtype(name, a, b)) return NULL;
    if (!k->i64[0] && !nb_check_float(name, a)) return NULL;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    if (!nb_broadcast(name, a, b, &ndim, shape)) return NULL;
    /* the layout of an operand of the output's shape, so a channels-last layout is kept */
    nb_tensor *out = nb_same_shape(a, ndim, shape)   ? nb_new_layout_of(name, a, a->dtype)
                     : nb_same_shape(b, ndim, shape) ? nb_new_layout_of(name, b, a->dtype)
                                                     : nb_new(name, a->dtype, ndim, shape);
    if (!out) return NULL;
    nb_loop l;
    nb_loop_init(&l, ndim, shape);
    nb_loop_add(&l, out);
    nb_loop_add(&l, a);
    nb_loop_add(&l, b);
    nb_loop_run_parallel(&l, pick(k, a->dtype), NULL);
    return out;
}

static nb_tensor *unary_op(const nb_op *op, const kernels *k, nb_tensor *x, double c)
{
    nb_tensor *out = map_unary(op->name, k, x, c);
    nb_node *n = nb_record(op, out, 1, &x);
    if (n) n->darg[0] = c;
    return out;
}

static nb_tensor *binary_op(const nb_op *op, const kernels *k, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *out = map_binary(op->name, k, a, b);
    nb_tensor *in[2] = { a, b };
    nb_record(op, out, 2, in);
    return out;
}

static nb_tensor *to_shape_of(nb_tensor *g, const nb_tensor *x) { return nb_sum_to(g, nb_shape_of(x)); }

/* ---- binary ops ---- */

BINARY_KERNELS(add, a + b)
static int add_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    if (nb_needs_grad(n, 0) && !(gin[0] = to_shape_of(g, n->in[0]))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(g, n->in[1]))) return -1;
    return 0;
}
static const nb_op add_op = { .name = "nb_add", .backward = add_backward, .values_unused = true };
nb_tensor *nb_add(nb_tensor *a, nb_tensor *b) { return binary_op(&add_op, &add_k, a, b); }

BINARY_KERNELS(sub, a - b)
static int sub_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    if (nb_needs_grad(n, 0) && !(gin[0] = to_shape_of(g, n->in[0]))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(nb_neg(g), n->in[1]))) return -1;
    return 0;
}
static const nb_op sub_op = { .name = "nb_sub", .backward = sub_backward, .values_unused = true };
nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b) { return binary_op(&sub_op, &sub_k, a, b); }

BINARY_KERNELS(mul, a * b)
static int mul_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    if (nb_needs_grad(n, 0) && !(gin[0] = to_shape_of(nb_mul(g, b), a))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(nb_mul(g, a), b))) return -1;
    return 0;
}
static const nb_op mul_op = { .name = "nb_mul", .backward = mul_backward };
nb_tensor *nb_mul(nb_tensor *a, nb_tensor *b) { return binary_op(&mul_op, &mul_k, a, b); }

BINARY_KERNELS(div, a / b)
static int div_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    /* d(a/b)/da = 1/b,  d(a/b)/db = -a/b² */
    if (nb_needs_grad(n, 0) && !(gin[0] = to_shape_of(nb_div(g, b), a))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(nb_neg(nb_div(nb_mul(g, a), nb_square(b))), b))) return -1;
    return 0;
}
static const nb_op div_op = { .name = "nb_div", .backward = div_backward };
nb_tensor *nb_div(nb_tensor *a, nb_tensor *b) { return binary_op(&div_op, &div_k, a, b); }

/* maximum and minimum route the gradient through a 0/1 mask of the winning side (ties go to a);
 * a NaN on either side wins, as in NumPy */
static int select_backward(nb_tensor *g, nb_tensor *a_wins, nb_tensor *b_wins, nb_node *n, nb_tensor **gin)
{
    if (nb_needs_grad(n, 0) && !(gin[0] = to_shape_of(nb_mul(g, a_wins), n->in[0]))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(nb_mul(g, b_wins), n->in[1]))) return -1;
    return 0;
}

BINARY_KERNELS(maximum, a >= b || isnan(a) ? a : b)
static int maximum_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    return select_backward(g, nb_greater_equal(a, b), nb_greater(b, a), n, gin);
}
static const nb_op maximum_op = { .name = "nb_maximum", .backward = maximum_backward };
nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b) { return binary_op(&maximum_op, &maximum_k, a, b); }

BINARY_KERNELS(minimum, a <= b || isnan(a) ? a : b)
static int minimum_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    return select_backward(g, nb_greater_equal(b, a), nb_greater(a, b), n, gin);
}
static const nb_op minimum_op = { .name = "nb_minimum", .backward = minimum_backward };
nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b) { return binary_op(&minimum_op, &minimum_k, a, b); }

/* ---- comparisons: 0/1 in the inputs' dtype, never recorded ---- */

COMPARE_KERNELS(greater, a > b)
COMPARE_KERNELS(greater_equal, a >= b)
COMPARE_KERNELS(equal, a == b)
nb_tensor *nb_greater(nb_tensor *a, nb_tensor *b) { return map_binary("nb_greater", &greater_k, a, b); }
nb_tensor *nb_greater_equal(nb_tensor *a, nb_tensor *b) { return map_binary("nb_greater_equal", &greater_equal_k, a, b); }
nb_tensor *nb_equal(nb_tensor *a, nb_tensor *b) { return map_binary("nb_equal", &equal_k, a, b); }

UNARY_KERNELS(sign, (E)((x > 0) - (x < 0)))
nb_tensor *nb_sign(nb_tensor *x) { return map_unary("nb_sign", &sign_k, x, 0); }

/* ---- where(cond, a, b): the mask cond≠0 is saved for backward ---- */

UNARY_KERNELS(nonzero, (E)(x != 0))
BINARY_KERNELS(blend, b != 0 ? a : (E)0)

static int where_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *mask = n->saved;
    nb_tensor *inverse = nb_add_scalar(nb_neg(mask), 1.0);
    if (nb_needs_grad(n, 1) && !(gin[1] = to_shape_of(nb_mul(g, mask), n->in[1]))) return -1;
    if (nb_needs_grad(n, 2) && !(gin[2] = to_shape_of(nb_mul(g, inverse), n->in[2]))) return -1;
    return 0;
}
static const nb_op where_op = { .name = "nb_where", .backward = where_backward };

nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b)
{
    if (!cond || !a || !b) return nb_null_input("nb_where");
    /* a and b first, so that a mismatch between them is reported as such */
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    if (!nb_check_same_dtype("nb_where", a, b) || !nb_check_float("nb_where", a) ||
        !nb_broadcast("nb_where", a, b, &ndim, shape))
        return NULL;
    /* mask = (cond ≠ 0) in the dtype of a; then out = mask·a + (1-mask)·b without 0·Inf */
    bool was = nb_set_grad_enabled(false);
    nb_tensor *cond_f = cond->dtype == a->dtype ? cond : nb_cast(cond, a->dtype);
    nb_tensor *mask = cond_f ? map_unary("nb_where", &nonzero_k, cond_f, 0) : NULL;
    nb_tensor *from_a = mask ? map_binary("nb_where", &blend_k, a, mask) : NULL;
    nb_tensor *inverse = from_a ? nb_add_scalar(nb_neg(mask), 1.0) : NULL;
    nb_tensor *from_b = inverse ? map_binary("nb_where", &blend_k, b, inverse) : NULL;
    nb_tensor *out = from_b ? map_binary("nb_where", &add_k, from_a, from_b) : NULL;
    nb_set_grad_enabled(was);
    nb_tensor *in[3] = { cond, a, b };
    nb_node *n = nb_record(&where_op, out, 3, in);
    if (n) n->saved = mask;
    return out;
}

/* ---- with a scalar ---- */

UNARY_KERNELS(add_scalar, x + c)
static int add_scalar_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    (void)n;
    gin[0] = g;
    return 0;
}
/* sub and div share add's and mul's kernels and rules; their own names keep messages accurate */
static const nb_op add_scalar_op = { .name = "nb_add_scalar", .backward = add_scalar_backward, .values_unused = true };
static const nb_op sub_scalar_op = { .name = "nb_sub_scalar", .backward = add_scalar_backward, .values_unused = true };
nb_tensor *nb_add_scalar(nb_tensor *a, double s) { return unary_op(&add_scalar_op, &add_scalar_k, a, s); }
nb_tensor *nb_sub_scalar(nb_tensor *a, double s) { return unary_op(&sub_scalar_op, &add_scalar_k, a, -s); }

UNARY_KERNELS(mul_scalar, x * c)
static int mul_scalar_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_mul_scalar(g, n->darg[0])) ? 0 : -1;
}
static const nb_op mul_scalar_op = { .name = "nb_mul_scalar", .backward = mul_scalar_backward, .values_unused = true };
static const nb_op div_scalar_op = { .name = "nb_div_scalar", .backward = mul_scalar_backward, .values_unused = true };
nb_tensor *nb_mul_scalar(nb_tensor *a, double s) { return unary_op(&mul_scalar_op, &mul_scalar_k, a, s); }

nb_tensor *nb_div_scalar(nb_tensor *a, double s)
{
    if (a && s == 0) {
        nb_error("nb_div_scalar: division of %s by zero", nb_shp(a));
        return NULL;
    }
    return unary_op(&div_scalar_op, &mul_scalar_k, a, 1.0 / s);
}

/* squares and cubes (GELU's x³, rsqrt's gradient) by multiplication: pow() per element was an eighth of
 * a GPT step */
UNARY_KERNELS(pow_scalar, c == 2 ? x * x : c == 3 ? x * x * x : pow(x, c))
static int pow_scalar_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    double p = n->darg[0];
    nb_tensor *x = n->in[0];
    /* p·x^(p-1) is the constant p for p = 0 and 1 (and 0·x⁻¹ would be NaN at x = 0) */
    nb_tensor *d = p == 0 || p == 1 ? nb_full(x->dtype, nb_shape_of(x), p) : nb_mul_scalar(nb_pow_scalar(x, p - 1), p);
    return (gin[0] = nb_mul(g, d)) ? 0 : -1;
}
static const nb_op pow_scalar_op = { .name = "nb_pow_scalar", .backward = pow_scalar_backward };
nb_tensor *nb_pow_scalar(nb_tensor *a, double p) { return unary_op(&pow_scalar_op, &pow_scalar_k, a, p); }

/* ---- unary ops: y = f(x), backward g·f'(x) written with y where that is cheaper ---- */

#define UNARY_OP(fname, kname, expr, grad_expr)                                         \
    UNARY_KERNELS(kname, expr)                                                          \
    static int kname##_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)              \
    {                                                                                   \
        nb_tensor *x = n->in[0], *y = n->out;                                           \
        (void)x;                                                                        \
        (void)y;                                                                        \
        return (gin[0] = (grad_expr)) ? 0 : -1;                                         \
    }                                                                                   \
    static const nb_op kname##_op = { .name = #fname, .backward = kname##_backward };         \
    nb_tensor *fname(nb_tensor *x) { return unary_op(&kname##_op, &kname##_k, x, 0); }


UNARY_OP(nb_neg, neg, -x, nb_neg(g))
UNARY_OP(nb_exp, exp, exp(x), nb_mul(g, y))
UNARY_OP(nb_log, log, log(x), nb_div(g, x))
UNARY_OP(nb_sqrt, sqrt, sqrt(x), nb_div(nb_mul_scalar(g, 0.5), y))
UNARY_OP(nb_rsqrt, rsqrt, 1 / sqrt(x), nb_mul(g, nb_mul_scalar(nb_pow_scalar(y, 3), -0.5)))
UNARY_OP(nb_square, square, x * x, nb_mul(g, nb_mul_scalar(x, 2)))
UNARY_OP(nb_abs, abs, fabs(x), nb_mul(g, nb_sign(x)))
UNARY_OP(nb_tanh, tanh, tanh(x), nb_mul(g, nb_add_scalar(nb_neg(nb_square(y)), 1)))
UNARY_OP(nb_sigmoid, sigmoid, x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)),
         nb_mul(g, nb_mul(y, nb_add_scalar(nb_neg(y), 1))))
/* relu's backward g·step(x) as one op (one pass, one tensor); its own gradient is itself in g, and
 * zero (almost everywhere) in x, so relu stays differentiable to any order */
BINARY_KERNELS(relu_grad, a * (E)(b > 0))
static nb_tensor *relu_grad(nb_tensor *g, nb_tensor *x);
static int relu_grad_backward(nb_node *n, nb_tensor *gg, nb_tensor **gin)
{
    if (nb_needs_grad(n, 0) && !(gin[0] = relu_grad(gg, n->in[1]))) return -1;
    return 0;
}
static const nb_op relu_grad_op = { .name = "nb_relu_backward", .backward = relu_grad_backward };
static nb_tensor *relu_grad(nb_tensor *g, nb_tensor *x) { return binary_op(&relu_grad_op, &relu_grad_k, g, x); }

UNARY_OP(nb_relu, relu, x < 0 ? 0 : x, relu_grad(g, x))   /* NaN stays NaN */

/* GELU (tanh form) in one kernel, and its backward g·gelu'(x) in one kernel too: the composed nb_gelu
 * (nn.h) makes eight tensors forward and about fifteen backward. With u = k·(x + c·x³):
 *   gelu(x)   = 0.5·x·(1 + tanh u)
 *   gelu'(x)  = 0.5·(1 + t) + 0.5·x·(1 − t²)·u'                     t = tanh u, u' = k·(1 + 3c·x²)
 *   gelu''(x) = (1 − t²)·(u' + 0.5·x·(u'' − 2t·u'²))                u'' = 6kc·x
 * The backward op's own rule is written with engine ops (gelu'' composed), so GELU stays
 * differentiable to any order. */
#define GELU_K 0.7978845608028654   /* √(2/π) */
#define GELU_C 0.044715
/* gelu for float rows in operations every vector unit has (libm's tanhf is scalar: it was a sixth of
 * a GPT step): 0.5·x·(1 + tanh u) = x·σ(2u), and with e = exp(−2|u|) ≤ 1 (vmath.h) σ(2u) is 1/(1 + e)
 * for u ≥ 0 and e/(1 + e) below, both well conditioned: one exponential and one division (a tanh
 * within 2.6 ulp took two polynomials as well, and twice the time). Selects are products with 0/1
 * masks, which GCC vectorizes. Double rows use libm's tanh. */
static inline float gelu_f32(float x)
{
    const float u = (float)GELU_K * (x + (float)GELU_C * x * x * x);
    const float e = nb_exp_nonpositive_f32(-2 * fabsf(u)), below = (float)(u < 0);
    return x * (below * e + (1 - below)) / (1 + e);
}
#define GELU_OF(v) \
    _Generic((v), float: gelu_f32((float)(v)), default: 0.5 * (v) * (1 + tanh(GELU_K * ((v) + GELU_C * (v) * (v) * (v)))))
/* the backward takes tanh u back from the forward's output y = 0.5·x·(1 + t) rather than computing
 * it again (tanh per element was the kernel's cost): t = 2y/x − 1, and t = 0 at x = 0 (by a 0/1 mask,
 * which GCC vectorizes, where a branch around the division kept the kernel scalar) */
#define GELU_T_FROM_Y(v, y) (((E)1 - (E)((v) == 0)) * ((E)2 * (y) / ((v) + (E)((v) == 0)) - (E)1))
/* x in the second term clamped to ±1e6: beyond it 1 − t² is exactly 0, and x² (which overflows float
 * from about 1.8e19) would make it 0·inf */
#define GELU_X_CLAMPED(v) ((v) < (E)-1e6 ? (E)-1e6 : (v) > (E)1e6 ? (E)1e6 : (v))
#define GELU_DERIVATIVE(v, t)                                                                          \
    ((E)0.5 * ((E)1 + (t)) + (E)0.5 * GELU_X_CLAMPED(v) * ((E)1 - (t) * (t)) * (E)GELU_K *              \
                                 ((E)1 + (E)(3 * GELU_C) * GELU_X_CLAMPED(v) * GELU_X_CLAMPED(v)))
UNARY_KERNELS(gelu, GELU_OF(x))
NB_FOR_ISA(TERNARY_ROW, gelu_grad_f32, float, a * GELU_DERIVATIVE(b, GELU_T_FROM_Y(b, c)))
NB_FOR_ISA(TERNARY_ROW, gelu_grad_f64, double, a * GELU_DERIVATIVE(b, GELU_T_FROM_Y(b, c)))
static const kernels gelu_grad_k = { NB_ISA_TABLE(gelu_grad_f32), NB_ISA_TABLE(gelu_grad_f64), { NULL } };
static nb_tensor *gelu_grad(nb_tensor *g, nb_tensor *x, nb_tensor *y);

/* gelu''(x), composed */
static nb_tensor *gelu_second(nb_tensor *x)
{
    nb_tensor *x2 = nb_square(x);
    nb_tensor *t = nb_tanh(nb_mul_scalar(nb_add(x, nb_mul_scalar(nb_mul(x2, x), GELU_C)), GELU_K));
    nb_tensor *du = nb_add_scalar(nb_mul_scalar(x2, 3 * GELU_K * GELU_C), GELU_K);           /* u' */
    nb_tensor *d2u = nb_mul_scalar(x, 6 * GELU_K * GELU_C);                                   /* u'' */
    nb_tensor *sech2 = nb_add_scalar(nb_neg(nb_square(t)), 1);                                /* 1 − t² */
    nb_tensor *inner = nb_sub(d2u, nb_mul_scalar(nb_mul(t, nb_square(du)), 2));               /* u'' − 2t·u'² */
    return nb_mul(sech2, nb_add(du, nb_mul_scalar(nb_mul(x, inner), 0.5)));
}

/* of gelu_grad(g, x, y) = g·gelu'(x), y = gelu(x) only standing in for tanh u: d/dg = gg·gelu'(x),
 * d/dx = gg·g·gelu''(x), and nothing to y (its dependence on x is in gelu'') */
static int gelu_grad_backward(nb_node *n, nb_tensor *gg, nb_tensor **gin)
{
    nb_tensor *g = n->in[0], *x = n->in[1], *y = n->in[2];
    if (nb_needs_grad(n, 0) && !(gin[0] = gelu_grad(gg, x, y))) return -1;
    if (nb_needs_grad(n, 1) && !(gin[1] = nb_mul(nb_mul(gg, g), gelu_second(x)))) return -1;
    return 0;
}
static const nb_op gelu_grad_op = { .name = "nb_gelu_fused_backward", .backward = gelu_grad_backward };

static nb_tensor *gelu_grad(nb_tensor *g, nb_tensor *x, nb_tensor *y)
{
    static const char name[] = "nb_gelu_fused_backward";
    if (!g || !x || !y) return nb_null_input(name);
    nb_tensor *out = nb_new_layout_of(name, x, x->dtype);
    if (!out) return NULL;
    nb_loop l;
    nb_loop_init(&l, x->ndim, x->shape);
    nb_loop_add(&l, out);
    nb_loop_add(&l, g);
    nb_loop_add(&l, x);
    nb_loop_add(&l, y);
    nb_loop_run_parallel(&l, pick(&gelu_grad_k, x->dtype), NULL);
    nb_tensor *in[3] = { g, x, y };
    nb_record(&gelu_grad_op, out, 3, in);
    return out;
}

static int gelu_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = gelu_grad(g, n->in[0], n->out)) ? 0 : -1;
}
static const nb_op gelu_op = { .name = "nb_gelu_fused", .backward = gelu_backward };
nb_tensor *nb_gelu_fused(nb_tensor *x) { return unary_op(&gelu_op, &gelu_k, x, 0); }

/* ---- gradient accumulation: out += src in place, no graph ---- */

void nb_accumulate(nb_tensor *out, const nb_tensor *src)
{
    nb_loop l;
    nb_loop_init(&l, out->ndim, out->shape);
    nb_loop_add(&l, out);
    nb_loop_add(&l, out);
    nb_loop_add(&l, src);
    nb_loop_run_parallel(&l, pick(&add_k, out->dtype), NULL);
}
