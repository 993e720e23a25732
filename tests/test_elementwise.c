/* Elementwise ops: forward values by hand in f32 and f64, broadcasting, gradients (gradcheck on
 * broadcast and non-contiguous inputs, gradgradcheck), comparisons, where, and error messages. */
#include "nbtest.h"

typedef nb_tensor *(*unary_fn)(nb_tensor *);
typedef nb_tensor *(*binary_fn)(nb_tensor *, nb_tensor *);

/* tolerances of forward values: f64 is exact to rounding, f32 to its 24-bit mantissa */
#define TOL64 1e-14
#define TOL32 4e-6

static nb_tensor *add_two(nb_tensor *x) { return nb_add_scalar(x, 2); }
static nb_tensor *sub_two(nb_tensor *x) { return nb_sub_scalar(x, 2); }
static nb_tensor *mul_minus_three(nb_tensor *x) { return nb_mul_scalar(x, -3); }
static nb_tensor *div_four(nb_tensor *x) { return nb_div_scalar(x, 4); }
static nb_tensor *cube(nb_tensor *x) { return nb_pow_scalar(x, 3); }
static nb_tensor *pow_three_halves(nb_tensor *x) { return nb_pow_scalar(x, 1.5); }
static nb_tensor *reciprocal(nb_tensor *x) { return nb_pow_scalar(x, -1); }

/* ---- unary ops and ops with a scalar ---- */

typedef struct {
    const char *name;
    unary_fn f;
    bool positive;        /* domain x > 0: evaluated at POSITIVE_X, else at MIXED_X */
    bool kink;            /* the derivative jumps at 0 */
    double expect[5];
} unary_case;

static const double MIXED_X[5] = { -2, -0.5, 0, 0.5, 2 };
static const double POSITIVE_X[5] = { 0.25, 1, 4, 9, 16 };

static const unary_case unary_cases[] = {
    { "neg", nb_neg, false, false, { 2, 0.5, 0, -0.5, -2 } },
    { "exp", nb_exp, false, false, { 0.1353352832366127, 0.6065306597126334, 1, 1.6487212707001282, 7.38905609893065 } },
    { "square", nb_square, false, false, { 4, 0.25, 0, 0.25, 4 } },
    { "abs", nb_abs, false, true, { 2, 0.5, 0, 0.5, 2 } },
    { "tanh", nb_tanh, false, false,
      { -0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9640275800758169 } },
    { "sigmoid", nb_sigmoid, false, false,
      { 0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.8807970779778823 } },
    { "relu", nb_relu, false, true, { 0, 0, 0, 0.5, 2 } },
    { "add_scalar", add_two, false, false, { 0, 1.5, 2, 2.5, 4 } },
    { "sub_scalar", sub_two, false, false, { -4, -2.5, -2, -1.5, 0 } },
    { "mul_scalar", mul_minus_three, false, false, { 6, 1.5, 0, -1.5, -6 } },
    { "div_scalar", div_four, false, false, { -0.5, -0.125, 0, 0.125, 0.5 } },
    { "pow_scalar 3", cube, false, false, { -8, -0.125, 0, 0.125, 8 } },
    { "log", nb_log, true, false, { -1.3862943611198906, 0, 1.3862943611198906, 2.1972245773362196, 2.772588722239781 } },
    { "sqrt", nb_sqrt, true, false, { 0.5, 1, 2, 3, 4 } },
    { "rsqrt", nb_rsqrt, true, false, { 2, 1, 0.5, 1.0 / 3, 0.25 } },
    { "pow_scalar 1.5", pow_three_halves, true, false, { 0.125, 1, 8, 27, 64 } },
    { "pow_scalar -1", reciprocal, true, false, { 4, 1, 0.25, 1.0 / 9, 0.0625 } },
};
enum { N_UNARY = sizeof unary_cases / sizeof unary_cases[0] };

static nb_tensor *apply_unary(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return ((const unary_case *)ctx)->f(in[0]);
}

START_TEST(test_unary_forward)
{
    const unary_case *c = &unary_cases[_i];
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = nb_from_doubles(dt, NB_SHAPE(5), c->positive ? POSITIVE_X : MIXED_X);
        nb_tensor *y = c->f(x);
        ck_assert_msg(y != NULL, "%s: %s", c->name, nb_last_error());
        nbt_assert_shape(y, 5);
        ck_assert_int_eq(y->dtype, dt);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(fabs(nb_get(y, i) - c->expect[i]) <= (k ? TOL64 : TOL32) * fmax(1, fabs(c->expect[i])),
                          "%s %s element %d: %.17g != %.17g", c->name, nb_dtype_name(dt), i, nb_get(y, i), c->expect[i]);
        ck_assert(!y->requires_grad && y->node == NULL);
        /* the same values read through a transposed and an expanded (stride 0) input */
        nb_tensor *t = c->f(nb_transpose(nb_reshape(x, NB_SHAPE(5, 1)), 0, 1));
        nbt_assert_shape(t, 1, 5);
        nb_tensor *e = c->f(nb_expand(nb_reshape(x, NB_SHAPE(5, 1)), NB_SHAPE(5, 3)));
        for (int i = 0; i < 5; i++) {
            ck_assert(nb_get(t, i) == nb_get(y, i));
            ck_assert(nb_get(e, 3 * i + 2) == nb_get(y, i));
        }
    }
}
END_TEST

START_TEST(test_unary_grad)
{
    const unary_case *c = &unary_cases[_i];
    nb_rng rng;
    nb_rng_seed(&rng, 100 + (uint64_t)_i);
    double lo = c->positive ? 0.2 : -2, hi = c->positive ? 3 : 2;
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(3, 4), lo, hi);
    nbt_gradcheck(apply_unary, (void *)c, 1, &x, 1e-7, c->kink);
    nbt_gradgradcheck(apply_unary, (void *)c, 1, &x, 1e-7);

    /* a non-contiguous leaf: the transpose of a [4,3] tensor */
    nb_tensor *t = nb_transpose(nb_rand(NB_F64, NB_SHAPE(4, 3), &rng, lo, hi), 0, 1);
    nb_set_requires_grad(t, true);
    nbt_gradcheck(apply_unary, (void *)c, 1, &t, 1e-7, c->kink);
    nbt_gradgradcheck(apply_unary, (void *)c, 1, &t, 1e-7);
}
END_TEST

START_TEST(test_unary_grad_values)
{
    /* hand derivatives at MIXED_X: relu and abs give 0 at 0, sign(x) for abs */
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(5), MIXED_X);
    nb_set_requires_grad(x, true);
    const double relu_d[5] = { 0, 0, 0, 1, 1 }, abs_d[5] = { -1, -1, 0, 1, 1 };
    ck_assert_int_eq(nb_backward(nb_sum(nb_relu(x))), 0);
    nbt_assert_values(x->grad, relu_d, 0);
    nb_zero_grad(x);
    ck_assert_int_eq(nb_backward(nb_sum(nb_abs(x))), 0);
    nbt_assert_values(x->grad, abs_d, 0);
    /* sigmoid' = σ(1-σ): 0.25 at 0 */
    nb_zero_grad(x);
    ck_assert_int_eq(nb_backward(nb_sum(nb_sigmoid(x))), 0);
    ck_assert_double_eq_tol(nb_get(x->grad, 2), 0.25, 1e-15);
    ck_assert_double_eq_tol(nb_get(x->grad, 4), 0.8807970779778823 * 0.11920292202211755, 1e-15);

    /* x⁰ = 1 has derivative 0 everywhere, also at 0 */
    nb_tensor *z = nb_from_doubles(NB_F64, NB_SHAPE(2), MIXED_X + 2);
    nb_set_requires_grad(z, true);
    nb_tensor *one = nb_pow_scalar(z, 0);
    const double ones[2] = { 1, 1 }, zeros[2] = { 0, 0 };
    nbt_assert_values(one, ones, 0);
    ck_assert_int_eq(nb_backward(nb_sum(one)), 0);
    nbt_assert_values(z->grad, zeros, 0);
    /* x² at 0 and x¹ */
    nb_zero_grad(z);
    ck_assert_int_eq(nb_backward(nb_sum(nb_add(nb_pow_scalar(z, 2), nb_pow_scalar(z, 1)))), 0);
    const double d[2] = { 1, 2 };
    nbt_assert_values(z->grad, d, 0);
}
END_TEST

START_TEST(test_saturating)
{
    /* sigmoid and tanh stay finite and exact at large |x|, and so do their gradients */
    const double big[4] = { -1000, -100, 100, 1000 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *x = nb_from_doubles(dt, NB_SHAPE(4), big);
        nb_set_requires_grad(x, true);
        nb_tensor *s = nb_sigmoid(x), *t = nb_tanh(x);
        ck_assert(nb_get(s, 0) == 0 && nb_get(s, 3) == 1 && nb_get(s, 2) == 1);
        ck_assert(nb_get(s, 1) >= 0 && nb_get(s, 1) < 1e-43);
        if (dt == NB_F64) ck_assert_double_eq_tol(nb_get(s, 1), 3.720075976020836e-44, 1e-58);
        ck_assert(nb_get(t, 0) == -1 && nb_get(t, 3) == 1);
        ck_assert_int_eq(nb_backward(nb_sum(nb_add(s, t))), 0);
        for (int i = 0; i < 4; i++) {
            ck_assert(isfinite(nb_get(x->grad, i)));
            ck_assert(nb_get(x->grad, i) >= 0 && nb_get(x->grad, i) < 1e-40);
        }
    }
}
END_TEST

/* ---- binary ops ---- */

static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }
static double ref_max(double a, double b) { return a > b ? a : b; }
static double ref_min(double a, double b) { return a < b ? a : b; }

typedef struct {
    const char *name;
    binary_fn f;
    double (*ref)(double, double);
    bool kink;
} binary_case;

static const binary_case binary_cases[] = {
    { "add", nb_add, ref_add, false },         { "sub", nb_sub, ref_sub, false },
    { "mul", nb_mul, ref_mul, false },         { "div", nb_div, ref_div, false },
    { "maximum", nb_maximum, ref_max, true },  { "minimum", nb_minimum, ref_min, true },
};
enum { N_BINARY = sizeof binary_cases / sizeof binary_cases[0] };

static nb_tensor *apply_binary(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return ((const binary_case *)ctx)->f(in[0], in[1]);
}

START_TEST(test_binary_literals)
{
    /* a:[3,1] = 1,2,3 and b:[4] = 0.5,-1,2,4 broadcast to [3,4] */
    const double a[3] = { 1, 2, 3 }, b[4] = { 0.5, -1, 2, 4 };
    const double sum[12] = { 1.5, 0, 3, 5, 2.5, 1, 4, 6, 3.5, 2, 5, 7 };
    const double quot[12] = { 2, -1, 0.5, 0.25, 4, -2, 1, 0.5, 6, -3, 1.5, 0.75 };
    const double mx[12] = { 1, 1, 2, 4, 2, 2, 2, 4, 3, 3, 3, 4 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *ta = nb_from_doubles(dt, NB_SHAPE(3, 1), a), *tb = nb_from_doubles(dt, NB_SHAPE(4), b);
        nb_tensor *s = nb_add(ta, tb);
        nbt_assert_shape(s, 3, 4);
        nbt_assert_values(s, sum, 0);
        nbt_assert_values(nb_div(ta, tb), quot, 0);
        nbt_assert_values(nb_maximum(ta, tb), mx, 0);
        ck_assert_int_eq(s->dtype, dt);
    }
}
END_TEST

START_TEST(test_binary_forward)
{
    const binary_case *c = &binary_cases[_i];
    const double a[6] = { 1, -2, 3, 0.5, -0.25, 4 }, b[4] = { 0.5, -1, 2, 4 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        double tol = k ? TOL64 : TOL32;
        /* [3,1] with [4] */
        nb_tensor *ta = nb_from_doubles(dt, NB_SHAPE(3, 1), a), *tb = nb_from_doubles(dt, NB_SHAPE(4), b);
        nb_tensor *y = c->f(ta, tb);
        nbt_assert_shape(y, 3, 4);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                ck_assert_msg(fabs(nb_get(y, i * 4 + j) - c->ref(a[i], b[j])) <= tol * fmax(1, fabs(c->ref(a[i], b[j]))),
                              "%s %s [%d,%d]", c->name, nb_dtype_name(dt), i, j);
        /* [4] with [3,1]: the other way round */
        y = c->f(tb, ta);
        nbt_assert_shape(y, 3, 4);
        for (int i = 0; i < 12; i++)
            ck_assert(fabs(nb_get(y, i) - c->ref(b[i % 4], a[i / 4])) <= tol * fmax(1, fabs(c->ref(b[i % 4], a[i / 4]))));
        /* [2,3] with a 0-d operand on either side */
        nb_tensor *m = nb_from_doubles(dt, NB_SHAPE(2, 3), a), *s = nb_scalar(dt, -2);
        nb_tensor *ys = c->f(m, s), *sy = c->f(s, m);
        nbt_assert_shape(ys, 2, 3);
        nbt_assert_shape(sy, 2, 3);
        for (int i = 0; i < 6; i++) {
            ck_assert(fabs(nb_get(ys, i) - c->ref(a[i], -2)) <= tol * fmax(1, fabs(c->ref(a[i], -2))));
            ck_assert(fabs(nb_get(sy, i) - c->ref(-2, a[i])) <= tol * fmax(1, fabs(c->ref(-2, a[i]))));
        }
        nbt_assert_shape(c->f(s, s));
        /* transposed operands: (m^T) op (m^T) */
        nb_tensor *mt = nb_transpose(m, 0, 1);
        nb_tensor *tt = c->f(mt, mt);
        nbt_assert_shape(tt, 3, 2);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++) ck_assert(nb_get(tt, i * 2 + j) == nb_get(c->f(m, m), j * 3 + i));
    }
}
END_TEST

START_TEST(test_binary_grad)
{
    const binary_case *c = &binary_cases[_i];
    nb_rng rng;
    nb_rng_seed(&rng, 200 + (uint64_t)_i);
    /* b stays away from 0 for div; continuous values make ties in maximum/minimum unlikely */
    nb_tensor *pairs[4][2] = {
        { nbt_input(&rng, NB_SHAPE(3, 1), -1, 1), nbt_input(&rng, NB_SHAPE(4), 0.5, 2) },
        { nbt_input(&rng, NB_SHAPE(4), -1, 1), nbt_input(&rng, NB_SHAPE(3, 1), 0.5, 2) },
        { nbt_input(&rng, NB_SHAPE(2, 3), -1, 1), nbt_input(&rng, NB_SHAPE0, 0.5, 2) },
        { nb_transpose(nb_rand(NB_F64, NB_SHAPE(4, 3), &rng, -1, 1), 0, 1),
          nb_transpose(nb_rand(NB_F64, NB_SHAPE(4, 3), &rng, 0.5, 2), 0, 1) },
    };
    nb_set_requires_grad(pairs[3][0], true);
    nb_set_requires_grad(pairs[3][1], true);
    for (int p = 0; p < 4; p++) {
        nbt_gradcheck(apply_binary, (void *)c, 2, pairs[p], 1e-7, c->kink);
        nbt_gradgradcheck(apply_binary, (void *)c, 2, pairs[p], 1e-7);
    }
    /* only one side requiring grad */
    nb_tensor *one_side[2] = { pairs[0][0], nb_rand(NB_F64, NB_SHAPE(4), &rng, 0.5, 2) };
    nbt_gradcheck(apply_binary, (void *)c, 2, one_side, 1e-7, c->kink);
}
END_TEST

START_TEST(test_max_min_ties)
{
    const double av[3] = { 1, 2, 3 }, bv[3] = { 1, 5, 0 };
    nb_tensor *a = nb_from_doubles(NB_F64, NB_SHAPE(3), av), *b = nb_from_doubles(NB_F64, NB_SHAPE(3), bv);
    nb_set_requires_grad(a, true);
    nb_set_requires_grad(b, true);
    const double mx[3] = { 1, 5, 3 }, mn[3] = { 1, 2, 0 };
    nbt_assert_values(nb_maximum(a, b), mx, 0);
    nbt_assert_values(nb_minimum(a, b), mn, 0);
    /* the tie at element 0 sends the whole gradient to a */
    ck_assert_int_eq(nb_backward(nb_sum(nb_maximum(a, b))), 0);
    const double max_da[3] = { 1, 0, 1 }, max_db[3] = { 0, 1, 0 };
    nbt_assert_values(a->grad, max_da, 0);
    nbt_assert_values(b->grad, max_db, 0);
    nb_zero_grad(a);
    nb_zero_grad(b);
    ck_assert_int_eq(nb_backward(nb_sum(nb_minimum(a, b))), 0);
    const double min_da[3] = { 1, 1, 0 }, min_db[3] = { 0, 0, 1 };
    nbt_assert_values(a->grad, min_da, 0);
    nbt_assert_values(b->grad, min_db, 0);
    /* a broadcast b: maximum(a:[3], 2) — the gradient of b sums where b wins, ties to a */
    nb_tensor *s = nb_scalar(NB_F64, 2);
    nb_set_requires_grad(s, true);
    nb_zero_grad(a);
    ck_assert_int_eq(nb_backward(nb_sum(nb_maximum(a, s))), 0);
    const double bc_da[3] = { 0, 1, 1 };
    nbt_assert_values(a->grad, bc_da, 0);
    ck_assert(nb_item(s->grad) == 1);
}
END_TEST

START_TEST(test_nan_propagates)
{
    /* NaN wins in maximum and minimum on either side (as NumPy and nb_max do) and passes relu */
    const double av[2] = { NAN, 1 }, bv[2] = { 1, NAN };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *a = nb_from_doubles(dt, NB_SHAPE(2), av), *b = nb_from_doubles(dt, NB_SHAPE(2), bv);
        nb_tensor *r[3] = { nb_maximum(a, b), nb_minimum(a, b), nb_relu(a) };
        for (int i = 0; i < 2; i++) {
            ck_assert(isnan(nb_get(r[0], i)));
            ck_assert(isnan(nb_get(r[1], i)));
        }
        ck_assert(isnan(nb_get(r[2], 0)) && nb_get(r[2], 1) == 1);
    }
}
END_TEST

/* ---- where ---- */

static nb_tensor *apply_where(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_where((nb_tensor *)ctx, in[0], in[1]);
}

START_TEST(test_where)
{
    const double cv[4] = { 1, 0, -2, 0 }, av[4] = { 1, 2, 3, 4 }, bv[4] = { 10, 20, 30, 40 };
    const double expect[4] = { 1, 20, 3, 40 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *c = nb_from_doubles(dt, NB_SHAPE(4), cv);
        nb_tensor *a = nb_from_doubles(dt, NB_SHAPE(4), av), *b = nb_from_doubles(dt, NB_SHAPE(4), bv);
        nbt_assert_values(nb_where(c, a, b), expect, 0);
        /* conditions in another dtype */
        nbt_assert_values(nb_where(nb_from_doubles(NB_I64, NB_SHAPE(4), cv), a, b), expect, 0);
        nbt_assert_values(nb_where(nb_from_doubles(k ? NB_F32 : NB_F64, NB_SHAPE(4), cv), a, b), expect, 0);
    }
    /* broadcasting all three: cond [2,1], a [3], b [] */
    const double c2[2] = { 0, 1 }, a3[3] = { 1, 2, 3 };
    nb_tensor *c = nb_from_doubles(NB_F64, NB_SHAPE(2, 1), c2);
    nb_tensor *a = nb_from_doubles(NB_F64, NB_SHAPE(3), a3), *b = nb_scalar(NB_F64, -1);
    nb_set_requires_grad(a, true);
    nb_set_requires_grad(b, true);
    nb_tensor *w = nb_where(c, a, b);
    const double wv[6] = { -1, -1, -1, 1, 2, 3 };
    nbt_assert_shape(w, 2, 3);
    nbt_assert_values(w, wv, 0);
    ck_assert_int_eq(nb_backward(nb_sum(w)), 0);
    const double da[3] = { 1, 1, 1 };
    nbt_assert_values(a->grad, da, 0);
    ck_assert(nb_item(b->grad) == 3);

    /* the unselected side may hold inf or nan without spoiling the result or the gradient */
    const double bad[2] = { INFINITY, NAN }, ok[2] = { 5, 6 }, pick[2] = { 0, 0 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2), bad), *y = nb_from_doubles(NB_F64, NB_SHAPE(2), ok);
    nb_set_requires_grad(y, true);
    nb_tensor *out = nb_where(nb_from_doubles(NB_F64, NB_SHAPE(2), pick), x, y);
    nbt_assert_values(out, ok, 0);
    ck_assert_int_eq(nb_backward(nb_sum(out)), 0);
    const double dy[2] = { 1, 1 };
    nbt_assert_values(y->grad, dy, 0);

    /* gradients: cond [3,1] against a [4] and b [3,4] */
    nb_rng rng;
    nb_rng_seed(&rng, 300);
    nb_tensor *cond = nb_bernoulli(NB_F64, NB_SHAPE(3, 1), &rng, 0.5);
    nb_set(cond, 0, 1);
    nb_set(cond, 1, 0);
    nb_tensor *in[2] = { nbt_input(&rng, NB_SHAPE(4), -1, 1), nbt_input(&rng, NB_SHAPE(3, 4), -1, 1) };
    nbt_gradcheck(apply_where, cond, 2, in, 1e-7, false);
    nbt_gradgradcheck(apply_where, cond, 2, in, 1e-7);
}
END_TEST

/* ---- not differentiable: sign and comparisons ---- */

START_TEST(test_sign_and_comparisons)
{
    const double av[4] = { 1, 2, 3, -0.0 }, bv[4] = { 3, 2, 1, 0 };
    const double gt[4] = { 0, 0, 1, 0 }, ge[4] = { 0, 1, 1, 1 }, eq[4] = { 0, 1, 0, 1 }, sg[4] = { 1, 1, 1, 0 };
    for (int k = 0; k < 2; k++) {
        nb_dtype dt = k ? NB_F64 : NB_F32;
        nb_tensor *a = nb_from_doubles(dt, NB_SHAPE(4), av), *b = nb_from_doubles(dt, NB_SHAPE(4), bv);
        nb_set_requires_grad(a, true);
        nb_tensor *r[4] = { nb_greater(a, b), nb_greater_equal(a, b), nb_equal(a, b), nb_sign(a) };
        nbt_assert_values(r[0], gt, 0);
        nbt_assert_values(r[1], ge, 0);
        nbt_assert_values(r[2], eq, 0);
        nbt_assert_values(r[3], sg, 0);
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(r[i]->dtype, dt);
            ck_assert(!r[i]->requires_grad && r[i]->node == NULL);
        }
    }
    const double mixed[5] = { -3, -0.5, 0, 0.25, 7 }, signs[5] = { -1, -1, 0, 1, 1 };
    nbt_assert_values(nb_sign(nb_from_doubles(NB_F64, NB_SHAPE(5), mixed)), signs, 0);

    /* i64 comparisons, broadcast [3,1] against [3] */
    const double iv[3] = { 1, 2, 3 }, jv[3] = { 2, 2, 9 };
    nb_tensor *i = nb_from_doubles(NB_I64, NB_SHAPE(3, 1), iv), *j = nb_from_doubles(NB_I64, NB_SHAPE(3), jv);
    nb_tensor *e = nb_equal(i, j);
    const double ieq[9] = { 0, 0, 0, 1, 1, 0, 0, 0, 0 }, igt[9] = { 0, 0, 0, 0, 0, 0, 1, 1, 0 };
    nbt_assert_shape(e, 3, 3);
    ck_assert_int_eq(e->dtype, NB_I64);
    nbt_assert_values(e, ieq, 0);
    nbt_assert_values(nb_greater(i, j), igt, 0);
    /* large i64 values compare exactly (not through double) */
    const int64_t big[2] = { 9007199254740993LL, 9007199254740992LL };
    nb_tensor *p = nb_from_data(NB_I64, NB_SHAPE(1), big), *q = nb_from_data(NB_I64, NB_SHAPE(1), big + 1);
    ck_assert(nb_item(nb_equal(p, q)) == 0);
    ck_assert(nb_item(nb_greater(p, q)) == 1);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_errors)
{
    nb_tensor *f32 = nb_ones(NB_F32, NB_SHAPE(2)), *f64 = nb_ones(NB_F64, NB_SHAPE(2));
    nb_tensor *i64 = nb_ones(NB_I64, NB_SHAPE(2));
    nbt_assert_error(nb_add(f32, f64), "nb_add: dtypes differ: f32 [2] and f64 [2]");
    nbt_assert_error(nb_maximum(f64, f32), "nb_maximum: dtypes differ: f64 [2] and f32 [2]");
    nbt_assert_error(nb_greater(i64, f32), "nb_greater: dtypes differ: i64 [2] and f32 [2]");
    nbt_assert_error(nb_mul(nb_ones(NB_F32, NB_SHAPE(2, 3)), nb_ones(NB_F32, NB_SHAPE(4))),
                     "nb_mul: shapes do not broadcast: [2,3] and [4]");
    nbt_assert_error(nb_sub(nb_ones(NB_F64, NB_SHAPE(3, 1, 2)), nb_ones(NB_F64, NB_SHAPE(4, 3))),
                     "nb_sub: shapes do not broadcast: [3,1,2] and [4,3]");
    nbt_assert_error(nb_exp(i64), "nb_exp: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_add(i64, i64), "nb_add: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_sign(i64), "nb_sign: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_mul_scalar(i64, 2), "nb_mul_scalar: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_sub_scalar(i64, 2), "nb_sub_scalar: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_div_scalar(i64, 2), "nb_div_scalar: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_pow_scalar(i64, 2), "nb_pow_scalar: expected a f32 or f64 tensor, got i64 [2]");
    nbt_assert_error(nb_div_scalar(f32, 0), "nb_div_scalar: division of [2] by zero");
    nbt_assert_error(nb_where(f64, f32, f64), "nb_where: dtypes differ: f32 [2] and f64 [2]");
    nbt_assert_error(nb_where(f64, f64, nb_ones(NB_F64, NB_SHAPE(3))), "nb_where: shapes do not broadcast: [2] and [3]");
    nbt_assert_error(nb_where(nb_ones(NB_F64, NB_SHAPE(3)), f64, f64), "nb_where: shapes do not broadcast: [2] and [3]");
    nbt_assert_error(nb_where(f64, i64, i64), "nb_where: expected a f32 or f64 tensor, got i64 [2]");
    /* the first mismatch with the condition is the one reported */
    nbt_assert_error(nb_where(nb_ones(NB_F64, NB_SHAPE(3)), f64, nb_ones(NB_F64, NB_SHAPE(1, 2))),
                     "nb_where: shapes do not broadcast: [2] and [3]");
}
END_TEST

static Suite *elementwise_suite(void)
{
    Suite *s = suite_create("elementwise");
    TCase *c = tcase_create("unary");
    tcase_add_loop_test(c, test_unary_forward, 0, N_UNARY);
    tcase_add_loop_test(c, test_unary_grad, 0, N_UNARY);
    tcase_add_test(c, test_unary_grad_values);
    tcase_add_test(c, test_saturating);
    suite_add_tcase(s, c);
    c = tcase_create("binary");
    tcase_add_test(c, test_binary_literals);
    tcase_add_loop_test(c, test_binary_forward, 0, N_BINARY);
    tcase_add_loop_test(c, test_binary_grad, 0, N_BINARY);
    tcase_add_test(c, test_max_min_ties);
    tcase_add_test(c, test_nan_propagates);
    tcase_add_test(c, test_where);
    tcase_add_test(c, test_sign_and_comparisons);
    suite_add_tcase(s, c);
    c = tcase_create("errors");
    tcase_add_test(c, test_errors);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(elementwise_suite)
