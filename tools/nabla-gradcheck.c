/* nabla-gradcheck: checks the gradients (and second derivatives) of every differentiable op on
 * random float64 inputs of several shapes, including broadcast, transposed and sliced inputs.
 * The ops and their cases are a table: each case lists its inputs and the op's parameters, and
 * each op has one small function applying it to a case. */
#include <nabla/nabla.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 3
#define MAX_CASES 5
#define BAR 1e-7          /* worst cs231n relative error allowed */

/* ---- inputs ---- */

typedef enum {
    VALUES,       /* f64 uniform in the op's range, requires grad */
    TRANSPOSED,   /* the same, as a transposed view (last two axes swapped): not contiguous */
    SLICED,       /* the same, every other element of a twice longer last axis */
    MASK,         /* f64 0/1, a constant (the condition of where) */
    INDEX,        /* i64 in [0, bound), a constant */
} input_kind;

typedef struct {
    input_kind kind;
    nb_shape shape;
    int64_t bound;
} input_spec;

#define V(...) { VALUES, NB_SHAPE(__VA_ARGS__), 0 }
#define V0 { VALUES, NB_SHAPE0, 0 }
#define T(...) { TRANSPOSED, NB_SHAPE(__VA_ARGS__), 0 }
#define S(...) { SLICED, NB_SHAPE(__VA_ARGS__), 0 }
#define M(...) { MASK, NB_SHAPE(__VA_ARGS__), 0 }
#define I(bound, ...) { INDEX, NB_SHAPE(__VA_ARGS__), bound }

/* one case: the inputs and the op's parameters (each apply function says which it reads) */
typedef struct {
    int n;
    input_spec in[MAX_INPUTS];
    int64_t arg[8];
    double value;
    nb_shape shape;
    nb_axes axes;
} test_case;

enum { KINKS = 1, SECOND = 2 };   /* skip kinks; also check second derivatives */

typedef struct {
    const char *name;
    nb_fn apply;                  /* ctx is the test_case */
    double lo, hi;                /* range of the float inputs, away from singularities */
    unsigned flags;
    test_case cases[MAX_CASES];   /* ended by n == 0 */
} op_entry;

static nb_tensor *make_input(const input_spec *s, double lo, double hi, nb_rng *rng)
{
    nb_shape base = s->shape;
    int last = base.ndim - 1;
    nb_tensor *t;
    switch (s->kind) {
    case MASK: return nb_bernoulli(NB_F64, s->shape, rng, 0.5);
    case INDEX: return nb_cast(nb_rand(NB_F64, s->shape, rng, 0, (double)s->bound), NB_I64);
    case TRANSPOSED:
        base.d[last] = s->shape.d[last - 1];
        base.d[last - 1] = s->shape.d[last];
        t = nb_detach(nb_transpose(nb_rand(NB_F64, base, rng, lo, hi), last - 1, last));
        break;
    case SLICED:
        base.d[last] *= 2;
        t = nb_detach(nb_slice(nb_rand(NB_F64, base, rng, lo, hi), last, 0, base.d[last], 2));
        break;
    default: t = nb_rand(NB_F64, s->shape, rng, lo, hi); break;
    }
    return nb_set_requires_grad(t, true) == 0 ? t : NULL;
}

/* ---- how each op is applied to a case (ctx) ---- */

#define APPLY(name) static nb_tensor *apply_##name(void *ctx, int n, nb_tensor *const *x)
#define C ((const test_case *)ctx)
#define WINDOW NB_WINDOW((int)C->arg[0], (int)C->arg[1], (int)C->arg[2])   /* arg: k, stride, pad */

APPLY(add) { return nb_add(x[0], x[1]); }
APPLY(sub) { return nb_sub(x[0], x[1]); }
APPLY(mul) { return nb_mul(x[0], x[1]); }
APPLY(div) { return nb_div(x[0], x[1]); }
APPLY(maximum) { return nb_maximum(x[0], x[1]); }
APPLY(minimum) { return nb_minimum(x[0], x[1]); }
APPLY(where) { return nb_where(x[0], x[1], x[2]); }
APPLY(add_scalar) { return nb_add_scalar(x[0], C->value); }
APPLY(sub_scalar) { return nb_sub_scalar(x[0], C->value); }
APPLY(mul_scalar) { return nb_mul_scalar(x[0], C->value); }
APPLY(div_scalar) { return nb_div_scalar(x[0], C->value); }
APPLY(pow_scalar) { return nb_pow_scalar(x[0], C->value); }
APPLY(neg) { return nb_neg(x[0]); }
APPLY(exp) { return nb_exp(x[0]); }
APPLY(log) { return nb_log(x[0]); }
APPLY(sqrt) { return nb_sqrt(x[0]); }
APPLY(rsqrt) { return nb_rsqrt(x[0]); }
APPLY(square) { return nb_square(x[0]); }
APPLY(abs) { return nb_abs(x[0]); }
APPLY(tanh) { return nb_tanh(x[0]); }
APPLY(sigmoid) { return nb_sigmoid(x[0]); }
APPLY(relu) { return nb_relu(x[0]); }
APPLY(sum) { return nb_sum(x[0]); }
APPLY(mean) { return nb_mean(x[0]); }
APPLY(max) { return nb_max(x[0]); }
APPLY(sum_axes) { return nb_sum_axes(x[0], C->axes, C->arg[0]); }     /* arg[0]: keepdim */
APPLY(mean_axes) { return nb_mean_axes(x[0], C->axes, C->arg[0]); }
APPLY(max_axes) { return nb_max_axes(x[0], C->axes, C->arg[0]); }
APPLY(sum_to) { return nb_sum_to(x[0], C->shape); }
APPLY(matmul) { return nb_matmul(x[0], x[1]); }
APPLY(reshape) { return nb_reshape(x[0], C->shape); }
APPLY(permute) { return nb_permute(x[0], C->axes); }
APPLY(transpose) { return nb_transpose(x[0], (int)C->arg[0], (int)C->arg[1]); }
APPLY(expand) { return nb_expand(x[0], C->shape); }
APPLY(slice) { return nb_slice(x[0], (int)C->arg[0], C->arg[1], C->arg[2], C->arg[3]); }   /* axis, start, stop, step */
APPLY(contiguous) { return nb_contiguous(x[0]); }
APPLY(concat) { return nb_concat(n, x, (int)C->arg[0]); }
APPLY(pad) { return nb_pad(x[0], C->arg, C->arg + 4, C->value); }    /* arg[0..3] before, arg[4..7] after */
APPLY(cast) { return nb_cast(x[0], NB_F64); }
APPLY(gather) { return nb_gather(x[0], (int)C->arg[0], x[1]); }
APPLY(scatter_add) { return nb_scatter_add(C->shape, (int)C->arg[0], x[0], x[1]); }
APPLY(index_select) { return nb_index_select(x[0], (int)C->arg[0], x[1]); }
APPLY(index_add) { return nb_index_add(C->shape, (int)C->arg[0], x[0], x[1]); }
APPLY(unfold) { return nb_unfold(x[0], WINDOW); }
APPLY(fold) { return nb_fold(x[0], C->arg[3], C->arg[4], WINDOW); }  /* arg[3], arg[4]: output h, w */
APPLY(max_pool2d) { return nb_max_pool2d(x[0], WINDOW); }
APPLY(avg_pool2d) { return nb_avg_pool2d(x[0], WINDOW); }
APPLY(log_softmax) { return nb_log_softmax(x[0], (int)C->arg[0]); }

/* ---- the table ---- */

#define ONE(...) { .n = 1, .in = { __VA_ARGS__ } }
#define TWO(a, b) { .n = 2, .in = { a, b } }
#define UNARY_CASES { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)), ONE(V0) }
#define BINARY_CASES { TWO(V(3, 4), V(3, 4)), TWO(V(3, 4), V(4)), TWO(V(3, 1), V(1, 4)), TWO(T(3, 4), S(3, 4)), \
                       TWO(V0, V(2, 3)) }
#define SCALAR_CASES(v) { { .n = 1, .in = { V(3, 4) }, .value = v }, { .n = 1, .in = { T(3, 4) }, .value = v }, \
                          { .n = 1, .in = { S(2, 3) }, .value = v } }
#define REDUCE_CASES { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3, 2)), ONE(V0) }
#define AXES_CASES { { .n = 1, .in = { V(3, 4) }, .axes = NB_AXES(1) }, \
                     { .n = 1, .in = { V(2, 3, 4) }, .axes = NB_AXES(0, 2), .arg = { 1 } }, \
                     { .n = 1, .in = { T(3, 4) }, .axes = NB_AXES(-2) }, \
                     { .n = 1, .in = { S(2, 3) }, .axes = NB_AXES(0, 1), .arg = { 1 } } }
#define IMAGE_CASES { { .n = 1, .in = { V(2, 2, 4, 4) }, .arg = { 2, 2, 0 } }, \
                      { .n = 1, .in = { V(1, 2, 5, 5) }, .arg = { 3, 1, 1 } }, \
                      { .n = 1, .in = { S(1, 3, 4, 3) }, .arg = { 2, 1, 1 } } }

static const op_entry ops[] = {
    { "nb_add", apply_add, -1, 1, SECOND, BINARY_CASES },
    { "nb_sub", apply_sub, -1, 1, SECOND, BINARY_CASES },
    { "nb_mul", apply_mul, -1, 1, SECOND, BINARY_CASES },
    { "nb_div", apply_div, 0.5, 2, SECOND, BINARY_CASES },
    { "nb_maximum", apply_maximum, -1, 1, KINKS | SECOND, BINARY_CASES },
    { "nb_minimum", apply_minimum, -1, 1, KINKS | SECOND, BINARY_CASES },
    { "nb_where", apply_where, -1, 1, SECOND,
      { { .n = 3, .in = { M(3, 4), V(3, 4), V(3, 4) } }, { .n = 3, .in = { M(3, 1), T(3, 4), V(4) } } } },
    { "nb_add_scalar", apply_add_scalar, -1, 1, SECOND, SCALAR_CASES(0.75) },
    { "nb_sub_scalar", apply_sub_scalar, -1, 1, SECOND, SCALAR_CASES(0.75) },
    { "nb_mul_scalar", apply_mul_scalar, -1, 1, SECOND, SCALAR_CASES(-1.5) },
    { "nb_div_scalar", apply_div_scalar, -1, 1, SECOND, SCALAR_CASES(-2.5) },
    { "nb_pow_scalar", apply_pow_scalar, 0.5, 2, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .value = 2.5 }, { .n = 1, .in = { T(3, 4) }, .value = -1.5 },
        { .n = 1, .in = { S(2, 3) }, .value = 3 }, { .n = 1, .in = { V(3) }, .value = 1 } } },
    { "nb_neg", apply_neg, -1, 1, SECOND, UNARY_CASES },
    { "nb_exp", apply_exp, -2, 2, SECOND, UNARY_CASES },
    { "nb_log", apply_log, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_sqrt", apply_sqrt, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_rsqrt", apply_rsqrt, 0.5, 2, SECOND, UNARY_CASES },
    { "nb_square", apply_square, -1, 1, SECOND, UNARY_CASES },
    { "nb_abs", apply_abs, -1, 1, KINKS | SECOND, UNARY_CASES },
    { "nb_tanh", apply_tanh, -2, 2, SECOND, UNARY_CASES },
    { "nb_sigmoid", apply_sigmoid, -3, 3, SECOND, UNARY_CASES },
    { "nb_relu", apply_relu, -1, 1, KINKS | SECOND, UNARY_CASES },
    { "nb_sum", apply_sum, -1, 1, SECOND, REDUCE_CASES },
    { "nb_mean", apply_mean, -1, 1, SECOND, REDUCE_CASES },
    { "nb_max", apply_max, -1, 1, KINKS | SECOND, REDUCE_CASES },
    { "nb_sum_axes", apply_sum_axes, -1, 1, SECOND, AXES_CASES },
    { "nb_mean_axes", apply_mean_axes, -1, 1, SECOND, AXES_CASES },
    { "nb_max_axes", apply_max_axes, -1, 1, KINKS | SECOND, AXES_CASES },
    { "nb_sum_to", apply_sum_to, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .shape = NB_SHAPE(1, 4) }, { .n = 1, .in = { T(3, 4) }, .shape = NB_SHAPE(4) },
        { .n = 1, .in = { V(2, 3, 4) }, .shape = NB_SHAPE(3, 1) } } },
    { "nb_matmul", apply_matmul, -1, 1, SECOND,
      { TWO(V(3, 4), V(4, 2)), TWO(T(3, 4), T(4, 2)), TWO(V(2, 3, 4), V(4, 5)), TWO(V(2, 1, 3, 4), S(3, 4, 2)),
        TWO(V(1, 4), V(4, 3)) } },
    { "nb_reshape", apply_reshape, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .shape = NB_SHAPE(2, 6) }, { .n = 1, .in = { T(3, 4) }, .shape = NB_SHAPE(-1) },
        { .n = 1, .in = { S(2, 3) }, .shape = NB_SHAPE(3, 1, 2) } } },
    { "nb_permute", apply_permute, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 3, 4) }, .axes = NB_AXES(2, 0, 1) }, { .n = 1, .in = { T(2, 3, 4) }, .axes = NB_AXES(1, 2, 0) } } },
    { "nb_transpose", apply_transpose, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .arg = { 0, 1 } }, { .n = 1, .in = { S(2, 3, 2) }, .arg = { 0, -1 } } } },
    { "nb_expand", apply_expand, -1, 1, SECOND,
      { { .n = 1, .in = { V(3, 1) }, .shape = NB_SHAPE(2, 3, 4) }, { .n = 1, .in = { S(4) }, .shape = NB_SHAPE(3, 4) } } },
    { "nb_slice", apply_slice, -1, 1, SECOND,
      { { .n = 1, .in = { V(5, 4) }, .arg = { 0, 1, 5, 2 } }, { .n = 1, .in = { T(3, 6) }, .arg = { 1, 0, 6, 3 } },
        { .n = 1, .in = { V(6) }, .arg = { 0, 2, 4, 1 } } } },
    { "nb_contiguous", apply_contiguous, -1, 1, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)), ONE(S(2, 3)) } },
    { "nb_concat", apply_concat, -1, 1, SECOND,
      { { .n = 3, .in = { V(2, 3), T(2, 1), S(2, 2) }, .arg = { 1 } }, { .n = 2, .in = { V(1, 3), V(2, 3) }, .arg = { 0 } } } },
    { "nb_pad", apply_pad, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 3) }, .arg = { 1, 0, 0, 0, 2, 1 }, .value = 0.5 },
        { .n = 1, .in = { T(1, 2, 3, 3) }, .arg = { 0, 0, 1, 1, 0, 0, 1, 1 } } } },
    { "nb_cast", apply_cast, -1, 1, SECOND, { ONE(V(3, 4)), ONE(T(3, 4)) } },
    { "nb_gather", apply_gather, -1, 1, SECOND,
      { { .n = 2, .in = { V(3, 5), I(5, 3, 2) }, .arg = { 1 } }, { .n = 2, .in = { T(4, 3), I(4, 2, 3) }, .arg = { 0 } } } },
    { "nb_scatter_add", apply_scatter_add, -1, 1, SECOND,
      { { .n = 2, .in = { I(5, 3, 2), V(3, 2) }, .arg = { 1 }, .shape = NB_SHAPE(3, 5) },
        { .n = 2, .in = { I(4, 2, 3), T(2, 3) }, .arg = { 0 }, .shape = NB_SHAPE(4, 3) } } },
    { "nb_index_select", apply_index_select, -1, 1, SECOND,
      { { .n = 2, .in = { V(5, 3), I(5, 4) }, .arg = { 0 } }, { .n = 2, .in = { T(3, 5), I(5, 6) }, .arg = { 1 } } } },
    { "nb_index_add", apply_index_add, -1, 1, SECOND,
      { { .n = 2, .in = { I(5, 4), V(4, 3) }, .arg = { 0 }, .shape = NB_SHAPE(5, 3) },
        { .n = 2, .in = { I(3, 5), S(2, 5) }, .arg = { 1 }, .shape = NB_SHAPE(2, 3) } } },
    { "nb_unfold", apply_unfold, -1, 1, SECOND, IMAGE_CASES },
    { "nb_fold", apply_fold, -1, 1, SECOND,
      { { .n = 1, .in = { V(2, 8, 4) }, .arg = { 2, 2, 0, 4, 4 } }, { .n = 1, .in = { V(1, 18, 16) }, .arg = { 3, 1, 1, 4, 4 } },
        { .n = 1, .in = { T(1, 4, 9) }, .arg = { 2, 1, 0, 4, 4 } } } },
    { "nb_max_pool2d", apply_max_pool2d, -1, 1, KINKS | SECOND, IMAGE_CASES },
    { "nb_avg_pool2d", apply_avg_pool2d, -1, 1, SECOND, IMAGE_CASES },
    { "nb_log_softmax", apply_log_softmax, -2, 2, SECOND,
      { { .n = 1, .in = { V(3, 4) }, .arg = { 1 } }, { .n = 1, .in = { V(2, 3, 4) }, .arg = { 0 } },
        { .n = 1, .in = { T(3, 4) }, .arg = { 0 } }, { .n = 1, .in = { S(2, 3, 4) }, .arg = { -2 } } } },
};
#define N_OPS (int)(sizeof ops / sizeof ops[0])

/* ---- running ---- */

typedef int (*check_fn)(nb_fn, void *, int, nb_tensor *const *, const nb_gradcheck_opts *, nb_gradcheck_result *);

/* every case of one op under one check (first or second order); prints the row; true when it passes */
static bool check_op(const op_entry *op, bool second, uint64_t seed)
{
    check_fn check = second ? nb_gradgradcheck : nb_gradcheck;
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    opts.skip_kinks = op->flags & KINKS;
    opts.seed = seed;
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int cases = 0;
    int64_t checked = 0, skipped = 0;
    double worst = 0;
    bool pass = true;
    char problems[1024] = "";
    for (const test_case *c = op->cases; c < op->cases + MAX_CASES && c->n > 0; c++, cases++) {
        nb_tensor *in[MAX_INPUTS];
        for (int i = 0; i < c->n; i++) in[i] = make_input(&c->in[i], op->lo, op->hi, &rng);
        nb_gradcheck_result r;
        int rc = check(op->apply, (void *)c, c->n, in, &opts, &r);
        checked += r.checked;
        skipped += r.skipped;
        if (!(r.max_rel_error <= worst)) worst = r.max_rel_error;   /* NaN wins */
        if (rc != 1 || !(r.max_rel_error < BAR)) {
            pass = false;
            size_t len = strlen(problems);
            snprintf(problems + len, sizeof problems - len, "    case %d: %s\n", cases,
                     rc < 0 ? nb_last_error() : rc == 0 ? r.first_failure : "relative error above the bar");
        }
        nb_scope_reset(NULL);
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s", op->name, second ? " (2nd)" : "");
    printf("%-22s %5d %8lld %8lld %14.2e  %s\n", name, cases, (long long)checked, (long long)skipped, worst,
           pass ? "PASS" : "FAIL");
    fputs(problems, stdout);
    return pass;
}

static const op_entry *find_op(const char *name)
{
    for (int i = 0; i < N_OPS; i++)
        if (strcmp(ops[i].name, name) == 0 || strcmp(ops[i].name + 3, name) == 0) return &ops[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nabla-gradcheck (--all | --op NAME | --list) [--seed N]\n"
            "Checks analytic gradients of nabla's ops against float64 central differences.\n"
            "  -a, --all        check every differentiable op (and second derivatives)\n"
            "  -o, --op NAME    check one op, e.g. nb_tanh or tanh\n"
            "  -l, --list       list the ops\n"
            "  -s, --seed N     seed of the random inputs and projections (default 1)\n"
            "  -h, --help       this text\n"
            "Exit status: 0 when every check passes (worst relative error < %g), 1 otherwise, 2 on bad usage.\n",
            BAR);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all", no_argument, NULL, 'a' },      { "op", required_argument, NULL, 'o' },
        { "list", no_argument, NULL, 'l' },     { "seed", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
    };
    bool all = false, list = false;
    const op_entry *only = NULL;
    uint64_t seed = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "ao:ls:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': all = true; break;
        case 'l': list = true; break;
        case 'o':
            if (!(only = find_op(optarg))) {
                fprintf(stderr, "nabla-gradcheck: unknown op '%s' (see --list)\n", optarg);
                return 2;
            }
            break;
        case 's': {
            char *end;
            seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "nabla-gradcheck: --seed needs a number, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (!all && !only && !list)) {
        usage(stderr);
        return 2;
    }
    if (list) {
        for (int i = 0; i < N_OPS; i++)
            printf("%s%s\n", ops[i].name, ops[i].flags & SECOND ? "  (and 2nd)" : "");
        if (!all && !only) return 0;
    }
    printf("%-22s %5s %8s %8s %14s  %s\n", "op", "cases", "checked", "skipped", "worst rel err", "result");
    int passed = 0, failed = 0;
    for (int i = 0; i < N_OPS; i++) {
        const op_entry *op = &ops[i];
        if (only && op != only) continue;
        for (int order = 0; order < (op->flags & SECOND ? 2 : 1); order++) {
            if (check_op(op, order == 1, seed)) passed++;
            else failed++;
        }
    }
    printf("gradcheck: %d passed, %d failed\n", passed, failed);
    nb_cleanup();
    return failed ? 1 : 0;
}
