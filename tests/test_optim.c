/* Optimizers: the cs231n reference cases C.8.4 (sgd_momentum), C.8.5 (rmsprop) and C.8.6 (adam) in
 * float64 with cs231n's relative error; plain SGD, Nesterov and AdamW's decoupled weight decay by
 * hand; float32 against float64; defaults; gradient clipping; parameters without a grad; state slot
 * names; kind names; error messages; learning-rate schedules; and Adam minimising a quadratic. */
#include "nbtest.h"

#include <stdio.h>

/* ---- helpers ---- */

/* np.linspace(a, b, num=20).reshape(4, 5), in the current scope */
static nb_tensor *grid(nb_dtype dt, double a, double b) { return nb_reshape(nb_linspace(dt, a, b, 20), NB_SHAPE(4, 5)); }

/* a persistent parameter with the values of t and, when g is not NULL, a persistent grad of g */
static nb_tensor *param_with_grad(nb_tensor *t, nb_tensor *g)
{
    nb_tensor *p = nb_param(t);
    ck_assert_msg(p != NULL, "nb_param: %s", nb_last_error());
    if (g) {
        p->grad = nb_persist(g);
        ck_assert_msg(p->grad != NULL, "nb_persist: %s", nb_last_error());
    }
    return p;
}

static nb_tensor *vec(nb_dtype dt, int64_t n, const double *v) { return nb_from_doubles(dt, NB_SHAPE(n), v); }

/* cs231n's rel_error: max over elements of |x - y| / max(1e-8, |x| + |y|) */
static double rel_error(const nb_tensor *x, const double *y)
{
    double worst = 0;
    for (int64_t i = 0; i < nb_numel(x); i++) {
        double a = nb_get(x, i), b = y[i];
        double e = fabs(a - b) / fmax(1e-8, fabs(a) + fabs(b));
        if (e > worst || isnan(e)) worst = e;
    }
    return worst;
}

typedef struct {
    const char *want;   /* a slot name to find, or NULL */
    nb_tensor *found;
    int count;
    char names[8][64];
    int stop_at;        /* return 7 at this visit (1-based); 0: never */
} visit_ctx;

static int visit(const char *name, nb_tensor *t, void *ctx)
{
    visit_ctx *v = ctx;
    if (v->count < 8) snprintf(v->names[v->count], sizeof v->names[0], "%s", name);
    v->count++;
    if (v->want && strcmp(v->want, name) == 0) v->found = t;
    return v->count == v->stop_at ? 7 : 0;
}

/* the optimizer's state tensor called name */
static nb_tensor *state(nb_optimizer *o, const char *name)
{
    visit_ctx v = { .want = name };
    ck_assert_int_eq(nb_optimizer_visit_state(o, visit, &v), 0);
    ck_assert_msg(v.found != NULL, "no state slot %s", name);
    return v.found;
}

static void set_state(nb_optimizer *o, const char *name, nb_tensor *values)
{
    ck_assert_int_eq(nb_copy_into(state(o, name), values), 0);
}

static void assert_rel(const char *what, const nb_tensor *x, const double *expected, double tol)
{
    double e = rel_error(x, expected);
    printf("%s: relative error %.3g\n", what, e);
    fflush(stdout);
    ck_assert_msg(e <= tol, "%s: relative error %.3g > %.3g", what, e, tol);
}

static nb_optimizer *make(nb_optim_config cfg, int n, nb_tensor *const *params, const char *const *names)
{
    nb_optimizer *o = nb_optimizer_new(cfg, n, params, names);
    ck_assert_msg(o != NULL, "nb_optimizer_new: %s", nb_last_error());
    return o;
}

/* the call returned -1 and the recorded message is exactly `message` */
#define assert_fails(call, message)                                                                  \
    do {                                                                                             \
        nb_clear_error();                                                                            \
        ck_assert_int_eq((call), -1);                                                                \
        ck_assert_str_eq(nb_last_error(), message);                                                  \
    } while (0)

/* ---- cs231n reference cases (float64) ---- */

START_TEST(sgd_momentum_reference)
{
    /* C.8.4: lr 1e-3, momentum 0.9 (default), v = linspace(0.6, 0.9) */
    static const double expected_next_w[] = {
        0.1406,     0.20738947, 0.27417895, 0.34096842, 0.40775789, 0.47454737, 0.54133684,
        0.60812632, 0.67491579, 0.74170526, 0.80849474, 0.87528421, 0.94207368, 1.00886316,
        1.07565263, 1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096 };
    static const double expected_velocity[] = {
        0.5406,     0.55475789, 0.56891579, 0.58307368, 0.59723158, 0.61138947, 0.62554737,
        0.63970526, 0.65386316, 0.66802105, 0.68217895, 0.69633684, 0.71049474, 0.72465263,
        0.73881053, 0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096 };
    nb_tensor *w = param_with_grad(grid(NB_F64, -0.4, 0.6), grid(NB_F64, -0.6, 0.4));
    nb_optim_config cfg = nb_optim_defaults(NB_SGD_MOMENTUM);
    cfg.lr = 1e-3;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    set_state(o, "w.velocity", grid(NB_F64, 0.6, 0.9));
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    assert_rel("C.8.4 sgd_momentum next_w", w, expected_next_w, 1e-7);
    assert_rel("C.8.4 sgd_momentum velocity", state(o, "w.velocity"), expected_velocity, 1e-7);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

START_TEST(rmsprop_reference)
{
    /* C.8.5: lr 1e-2, decay_rate 0.99, eps 1e-8 (defaults), cache = linspace(0.6, 0.9) */
    static const double expected_next_w[] = {
        -0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247, -0.132737,  -0.08078555,
        -0.02881884, 0.02316247,  0.07515774,  0.12716641,  0.17918792,  0.23122175, 0.28326742,
        0.33532447,  0.38739248,  0.43947102,  0.49155973,  0.54365823,  0.59576619 };
    static const double expected_cache[] = {
        0.5976,     0.6126277,  0.6277108,  0.64284931, 0.65804321, 0.67329252, 0.68859723,
        0.70395734, 0.71937285, 0.73484377, 0.75037008, 0.7659518,  0.78158892, 0.79728144,
        0.81302936, 0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926 };
    nb_tensor *w = param_with_grad(grid(NB_F64, -0.4, 0.6), grid(NB_F64, -0.6, 0.4));
    nb_optimizer *o = make(nb_optim_defaults(NB_RMSPROP), 1, &w, (const char *[]){ "w" });
    set_state(o, "w.cache", grid(NB_F64, 0.6, 0.9));
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    assert_rel("C.8.5 rmsprop next_w", w, expected_next_w, 1e-7);
    assert_rel("C.8.5 rmsprop cache", state(o, "w.cache"), expected_cache, 1e-7);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

START_TEST(adam_reference)
{
    /* C.8.6: lr 1e-2, beta1 0.9, beta2 0.999, eps 1e-8, m = linspace(0.6, 0.9), v = linspace(0.7, 0.5),
     * t = 5 before the step, so the update uses t = 6 */
    static const double expected_next_w[] = {
        -0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977, -0.1380274, -0.08544591,
        -0.03286534, 0.01971428,  0.0722929,   0.1248705,   0.17744702,  0.23002243, 0.28259667,
        0.33516969,  0.38774145,  0.44031188,  0.49288093,  0.54544852,  0.59801459 };
    static const double expected_v[] = {
        0.69966,    0.68908382, 0.67851319, 0.66794809, 0.65738853, 0.64683452, 0.63628604,
        0.6257431,  0.61520571, 0.60467385, 0.59414753, 0.58362676, 0.57311152, 0.56260183,
        0.55209767, 0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966 };
    static const double expected_m[] = {
        0.48,       0.49947368, 0.51894737, 0.53842105, 0.55789474, 0.57736842, 0.59684211,
        0.61631579, 0.63578947, 0.65526316, 0.67473684, 0.69421053, 0.71368421, 0.73315789,
        0.75263158, 0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85 };
    nb_tensor *w = param_with_grad(grid(NB_F64, -0.4, 0.6), grid(NB_F64, -0.6, 0.4));
    nb_optim_config cfg = nb_optim_defaults(NB_ADAM);
    cfg.lr = 1e-2;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    set_state(o, "w.m", grid(NB_F64, 0.6, 0.9));
    set_state(o, "w.v", grid(NB_F64, 0.7, 0.5));
    nb_optimizer_set_steps(o, 5);
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    ck_assert_int_eq(nb_optimizer_steps(o), 6);
    /* next_w is printed to 8 digits and has elements near 0.02, where the rounding of the printed
     * value alone is ~1.2e-7 relative (cs231n's own run shows 1.14e-07), so it gets 2e-7 */
    assert_rel("C.8.6 adam next_w", w, expected_next_w, 2e-7);
    assert_rel("C.8.6 adam v", state(o, "w.v"), expected_v, 1e-7);
    assert_rel("C.8.6 adam m", state(o, "w.m"), expected_m, 1e-7);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

/* ---- by hand ---- */

START_TEST(sgd_by_hand)
{
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F32 : NB_F64;
        nb_tensor *w = param_with_grad(vec(dt, 3, (double[]){ 1, 2, 3 }), vec(dt, 3, (double[]){ 0.5, -1, 2 }));
        nb_optim_config cfg = nb_optim_defaults(NB_SGD);
        cfg.lr = 0.25;
        nb_optimizer *o = make(cfg, 1, &w, NULL);
        ck_assert_int_eq(nb_optimizer_steps(o), 0);
        ck_assert_int_eq(nb_optimizer_step(o), 0);
        nbt_assert_values(w, ((double[]){ 0.875, 2.25, 2.5 }), 0);
        ck_assert_int_eq(nb_optimizer_step(o), 0);
        nbt_assert_values(w, ((double[]){ 0.75, 2.5, 2.0 }), 0);
        ck_assert_int_eq(nb_optimizer_steps(o), 2);
        nb_optimizer_free(o);
        nb_free(w);
    }
}
END_TEST

START_TEST(momentum_by_hand)
{
    /* v = 0.9·v − 0.1·dw; w += v, twice with dw = [1, -2] */
    nb_tensor *w = param_with_grad(vec(NB_F64, 2, (double[]){ 1, 1 }), vec(NB_F64, 2, (double[]){ 1, -2 }));
    nb_optim_config cfg = nb_optim_defaults(NB_SGD_MOMENTUM);
    cfg.lr = 0.1;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    nbt_assert_values(w, ((double[]){ 0.9, 1.2 }), 1e-15);
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    /* v = [-0.09 - 0.1, 0.18 + 0.2] */
    nbt_assert_values(state(o, "w.velocity"), ((double[]){ -0.19, 0.38 }), 1e-15);
    nbt_assert_values(w, ((double[]){ 0.71, 1.58 }), 1e-15);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

START_TEST(nesterov_by_hand)
{
    /* μ 0.9, lr 0.1, w = [1, -2]. Step 1, dw = [0.5, 1]: v = [-0.05, -0.1];
     * w += -0.9·0 + 1.9·v = [-0.095, -0.19] -> [0.905, -2.19].
     * Step 2, dw = [-1, 0.2]: v = 0.9·[-0.05, -0.1] - 0.1·[-1, 0.2] = [0.055, -0.11];
     * w += -0.9·[-0.05, -0.1] + 1.9·[0.055, -0.11] = [0.045 + 0.1045, 0.09 - 0.209] -> [1.0545, -2.309] */
    nb_tensor *w = param_with_grad(vec(NB_F64, 2, (double[]){ 1, -2 }), vec(NB_F64, 2, (double[]){ 0.5, 1 }));
    nb_optim_config cfg = nb_optim_defaults(NB_NESTEROV);
    cfg.lr = 0.1;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    nbt_assert_values(state(o, "w.velocity"), ((double[]){ -0.05, -0.1 }), 1e-15);
    nbt_assert_values(w, ((double[]){ 0.905, -2.19 }), 1e-15);
    ck_assert_int_eq(nb_copy_into(w->grad, vec(NB_F64, 2, (double[]){ -1, 0.2 })), 0);
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    nbt_assert_values(state(o, "w.velocity"), ((double[]){ 0.055, -0.11 }), 1e-15);
    nbt_assert_values(w, ((double[]){ 1.0545, -2.309 }), 1e-14);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

START_TEST(adam_first_step_by_hand)
{
    /* t = 1: m̂ = dw and v̂ = dw², so the step is lr·dw/(|dw| + ε) */
    nb_tensor *w = param_with_grad(vec(NB_F64, 3, (double[]){ 2, -1, 0 }), vec(NB_F64, 3, (double[]){ 0.5, -4, 0 }));
    nb_optim_config cfg = nb_optim_defaults(NB_ADAM);
    cfg.lr = 0.1;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    ck_assert_int_eq(nb_optimizer_steps(o), 1);
    nbt_assert_values(w, ((double[]){ 2 - 0.1 * 0.5 / (0.5 + 1e-8), -1 + 0.1 * 4 / (4 + 1e-8), 0 }), 1e-15);
    nbt_assert_values(state(o, "w.m"), ((double[]){ 0.05, -0.4, 0 }), 1e-15);
    nbt_assert_values(state(o, "w.v"), ((double[]){ 0.00025, 0.016, 0 }), 1e-15);
    nb_optimizer_free(o);
    nb_free(w);
}
END_TEST

/* Every kind takes decoupled weight decay: from the same w and state, a step with wd differs from one
 * without by exactly lr·wd·w_old (the state does not see it), for three steps with changing grads. */
START_TEST(decoupled_weight_decay_every_kind)
{
    const nb_optim_kind kinds[] = { NB_SGD, NB_SGD_MOMENTUM, NB_NESTEROV, NB_RMSPROP, NB_ADAM };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const double w0[] = { 2, -1, 0.5, 3 };
        nb_tensor *plain = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
        nb_tensor *decayed = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
        nb_optim_config cp = nb_optim_defaults(kinds[k]), cd = cp;
        cp.lr = cd.lr = 0.1;
        cd.weight_decay = 0.3;
        nb_optimizer *op = make(cp, 1, &plain, (const char *[]){ "w" });
        nb_optimizer *od = make(cd, 1, &decayed, (const char *[]){ "w" });
        for (int s = 0; s < 3; s++) {
            double before[4], g[4] = { 1.0 + s, -0.5, 2.0 / (s + 1), 0.25 * s }, expected[4];
            nb_to_doubles(decayed, before);
            ck_assert_int_eq(nb_copy_into(plain, decayed), 0);
            nb_copy_into(plain->grad, vec(NB_F64, 4, g));
            nb_copy_into(decayed->grad, vec(NB_F64, 4, g));
            ck_assert_int_eq(nb_optimizer_step(op), 0);
            ck_assert_int_eq(nb_optimizer_step(od), 0);
            for (int i = 0; i < 4; i++) expected[i] = nb_get(plain, i) - 0.1 * 0.3 * before[i];
            nbt_assert_values(decayed, expected, 1e-15);
        }
        /* adam with a weight decay is adamw, bit for bit */
        if (kinds[k] == NB_ADAM) {
            nb_tensor *w2 = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
            nb_tensor *w3 = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
            nb_optim_config cw = nb_optim_defaults(NB_ADAMW);
            cw.lr = 0.1;
            cw.weight_decay = 0.3;
            nb_optimizer *oa = make(cd, 1, &w2, NULL), *ow = make(cw, 1, &w3, NULL);
            ck_assert_int_eq(nb_optimizer_step(oa), 0);
            ck_assert_int_eq(nb_optimizer_step(ow), 0);
            for (int i = 0; i < 4; i++) ck_assert(nb_get(w2, i) == nb_get(w3, i));
            nb_optimizer_free(oa), nb_optimizer_free(ow), nb_free(w2), nb_free(w3);
        }
        nb_optimizer_free(op), nb_optimizer_free(od), nb_free(plain), nb_free(decayed);
    }
}
END_TEST

START_TEST(adamw_decoupled_weight_decay)
{
    /* AdamW = Adam's step computed from the same moments, plus w -= lr·wd·w_old. Run both on the same
     * values for three steps with changing grads and compare at each step. */
    const double w0[] = { 2, -1, 0.5, 3 };
    nb_tensor *wa = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
    nb_tensor *ww = param_with_grad(vec(NB_F64, 4, w0), vec(NB_F64, 4, (double[]){ 0.5, -4, 1, 0 }));
    nb_optim_config ca = nb_optim_defaults(NB_ADAM), cw = nb_optim_defaults(NB_ADAMW);
    ca.lr = cw.lr = 0.1;
    cw.weight_decay = 0.2;
    nb_optimizer *oa = make(ca, 1, &wa, (const char *[]){ "w" });
    nb_optimizer *ow = make(cw, 1, &ww, (const char *[]){ "w" });

    /* first step by hand: t = 1, step = lr·dw/(|dw| + ε); decay lr·wd·w = 0.02·w */
    ck_assert_int_eq(nb_optimizer_step(ow), 0);
    nbt_assert_values(ww, ((double[]){ 2 - 0.04 - 0.1 * 0.5 / (0.5 + 1e-8), -1 + 0.02 + 0.1 * 4 / (4 + 1e-8),
                                       0.5 - 0.01 - 0.1 * 1 / (1 + 1e-8), 3 - 0.06 }),
                      1e-15);
    ck_assert_int_eq(nb_optimizer_step(oa), 0);

    for (int s = 1; s < 3; s++) {
        /* continue AdamW from its own w, Adam from a copy of it: the difference is the decay alone */
        double before[4];
        nb_to_doubles(ww, before);
        ck_assert_int_eq(nb_copy_into(wa, ww), 0);
        double g[4] = { 1.0 * s, -0.5, 2.0 / s, 0.25 * s };
        nb_copy_into(wa->grad, vec(NB_F64, 4, g));
        nb_copy_into(ww->grad, vec(NB_F64, 4, g));
        ck_assert_int_eq(nb_optimizer_step(oa), 0);
        ck_assert_int_eq(nb_optimizer_step(ow), 0);
        double expected[4];
        for (int i = 0; i < 4; i++) expected[i] = nb_get(wa, i) - 0.1 * 0.2 * before[i];
        nbt_assert_values(ww, expected, 1e-15);
        /* the moments do not see the decay */
        for (int i = 0; i < 4; i++) {
            ck_assert_double_eq(nb_get(state(oa, "w.m"), i), nb_get(state(ow, "w.m"), i));
            ck_assert_double_eq(nb_get(state(oa, "w.v"), i), nb_get(state(ow, "w.v"), i));
        }
    }
    nb_optimizer_free(oa);
    nb_optimizer_free(ow);
    nb_free(wa);
    nb_free(ww);
}
END_TEST

START_TEST(float32_matches_float64)
{
    /* every rule, five steps on the C.8.4 inputs with changing grads, in f32 and f64 */
    for (int k = NB_SGD; k <= NB_ADAMW; k++) {
        nb_tensor *w[2];
        nb_optimizer *o[2];
        for (int d = 0; d < 2; d++) {
            nb_dtype dt = d ? NB_F32 : NB_F64;
            w[d] = param_with_grad(grid(dt, -0.4, 0.6), grid(dt, -0.6, 0.4));
            o[d] = make(nb_optim_defaults((nb_optim_kind)k), 1, &w[d], NULL);
        }
        for (int s = 0; s < 5; s++)
            for (int d = 0; d < 2; d++) {
                ck_assert_int_eq(nb_optimizer_step(o[d]), 0);
                nb_copy_into(w[d]->grad, nb_mul_scalar(grid(NB_F64, -0.6, 0.4 + 0.1 * s), 1 - 0.3 * s));
            }
        ck_assert_int_eq(w[1]->dtype, NB_F32);
        for (int64_t i = 0; i < 20; i++) {
            double a = nb_get(w[0], i), b = nb_get(w[1], i);
            ck_assert_msg(fabs(a - b) <= 1e-6 * (1 + fabs(a)), "%s element %lld: f64 %.9g f32 %.9g",
                          nb_optim_kind_name((nb_optim_kind)k), (long long)i, a, b);
        }
        for (int d = 0; d < 2; d++) {
            nb_optimizer_free(o[d]);
            nb_free(w[d]);
        }
    }
}
END_TEST

/* ---- configuration ---- */

START_TEST(defaults)
{
    for (int k = NB_SGD; k <= NB_ADAMW; k++) {
        nb_optim_config c = nb_optim_defaults((nb_optim_kind)k);
        ck_assert_int_eq(c.kind, k);
        ck_assert_double_eq(c.lr, k == NB_ADAM || k == NB_ADAMW ? 1e-3 : 1e-2);
        ck_assert_double_eq(c.momentum, 0.9);
        ck_assert_double_eq(c.decay_rate, 0.99);
        ck_assert_double_eq(c.beta1, 0.9);
        ck_assert_double_eq(c.beta2, 0.999);
        ck_assert_double_eq(c.eps, 1e-8);
        ck_assert_double_eq(c.weight_decay, k == NB_ADAMW ? 1e-2 : 0);
    }
    nb_clear_error();
    nb_optim_config bad = nb_optim_defaults((nb_optim_kind)42);
    ck_assert(isnan(bad.lr));
    ck_assert_str_eq(nb_last_error(), "nb_optim_defaults: unknown kind 42");
}
END_TEST

START_TEST(kind_names)
{
    static const char *names[] = { "sgd", "sgd_momentum", "nesterov", "rmsprop", "adam", "adamw" };
    for (int k = NB_SGD; k <= NB_ADAMW; k++) {
        ck_assert_str_eq(nb_optim_kind_name((nb_optim_kind)k), names[k]);
        nb_optim_kind parsed = NB_SGD;
        ck_assert_int_eq(nb_optim_kind_parse(names[k], &parsed), 0);
        ck_assert_int_eq(parsed, k);
    }
    nb_optim_kind kind = NB_ADAM;
    assert_fails(nb_optim_kind_parse("adamx", &kind),
                 "nb_optim_kind_parse: unknown optimizer 'adamx' (expected sgd, sgd_momentum, nesterov, rmsprop, adam, adamw)");
    ck_assert_int_eq(kind, NB_ADAM); /* untouched */
    assert_fails(nb_optim_kind_parse("Adam", &kind),
                 "nb_optim_kind_parse: unknown optimizer 'Adam' (expected sgd, sgd_momentum, nesterov, rmsprop, adam, adamw)");
    assert_fails(nb_optim_kind_parse(NULL, &kind), "nb_optim_kind_parse: NULL name");
    assert_fails(nb_optim_kind_parse("sgd", NULL), "nb_optim_kind_parse: NULL kind");
    nbt_assert_error(nb_optim_kind_name((nb_optim_kind)6), "nb_optim_kind_name: unknown kind 6");
    nbt_assert_error(nb_optim_kind_name((nb_optim_kind)-1), "nb_optim_kind_name: unknown kind -1");
}
END_TEST

/* ---- state, skipping, clipping ---- */

START_TEST(state_slots)
{
    nb_tensor *a = param_with_grad(nb_zeros(NB_F64, NB_SHAPE(2, 3)), NULL);
    nb_tensor *b = param_with_grad(nb_ones(NB_F32, NB_SHAPE(3)), NULL);
    nb_tensor *ps[] = { a, b };
    const char *names[] = { "W1", "b1" };
    static const struct { nb_optim_kind kind; int count; const char *slots[4]; } cases[] = {
        { NB_SGD, 0, { NULL } },
        { NB_SGD_MOMENTUM, 2, { "W1.velocity", "b1.velocity" } },
        { NB_NESTEROV, 2, { "W1.velocity", "b1.velocity" } },
        { NB_RMSPROP, 2, { "W1.cache", "b1.cache" } },
        { NB_ADAM, 4, { "W1.m", "W1.v", "b1.m", "b1.v" } },
        { NB_ADAMW, 4, { "W1.m", "W1.v", "b1.m", "b1.v" } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_optimizer *o = make(nb_optim_defaults(cases[c].kind), 2, ps, names);
        visit_ctx v = { 0 };
        ck_assert_int_eq(nb_optimizer_visit_state(o, visit, &v), 0);
        ck_assert_int_eq(v.count, cases[c].count);
        for (int i = 0; i < v.count; i++) ck_assert_str_eq(v.names[i], cases[c].slots[i]);
        for (int i = 0; i < v.count; i++) {
            /* zeros, persistent, with the parameter's dtype and shape */
            nb_tensor *s = state(o, cases[c].slots[i]);
            const nb_tensor *p = i < v.count / 2 ? a : b;
            ck_assert_ptr_null(s->scope);
            ck_assert(!s->requires_grad);
            ck_assert_int_eq(s->dtype, p->dtype);
            ck_assert_int_eq(s->ndim, p->ndim);
            for (int d = 0; d < p->ndim; d++) ck_assert_int_eq(s->shape[d], p->shape[d]);
            for (int64_t j = 0; j < nb_numel(s); j++) ck_assert_double_eq(nb_get(s, j), 0);
        }
        /* a non-zero return stops the walk */
        visit_ctx stop = { .stop_at = 1 };
        ck_assert_int_eq(nb_optimizer_visit_state(o, visit, &stop), cases[c].count ? 7 : 0);
        ck_assert_int_eq(stop.count, cases[c].count ? 1 : 0);
        nb_optimizer_free(o);
    }
    /* without names the parameters are numbered; names are copied */
    char name[8] = "W";
    const char *mine[] = { name, "b" };
    nb_optimizer *o = make(nb_optim_defaults(NB_NESTEROV), 2, ps, NULL);
    visit_ctx v = { 0 };
    ck_assert_int_eq(nb_optimizer_visit_state(o, visit, &v), 0);
    ck_assert_str_eq(v.names[0], "0.velocity");
    ck_assert_str_eq(v.names[1], "1.velocity");
    nb_optimizer_free(o);
    o = make(nb_optim_defaults(NB_RMSPROP), 2, ps, mine);
    strcpy(name, "X");
    v = (visit_ctx){ 0 };
    ck_assert_int_eq(nb_optimizer_visit_state(o, visit, &v), 0);
    ck_assert_str_eq(v.names[0], "W.cache");
    nb_optimizer_free(o);
    nb_free(a);
    nb_free(b);
}
END_TEST

START_TEST(skips_params_without_grad)
{
    nb_tensor *a = param_with_grad(vec(NB_F64, 2, (double[]){ 1, 2 }), vec(NB_F64, 2, (double[]){ 1, 1 }));
    nb_tensor *b = param_with_grad(vec(NB_F64, 2, (double[]){ 3, 4 }), NULL);
    nb_tensor *ps[] = { a, b };
    nb_optim_config cfg = nb_optim_defaults(NB_SGD_MOMENTUM);
    cfg.lr = 0.5;
    nb_optimizer *o = make(cfg, 2, ps, (const char *[]){ "a", "b" });
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    nbt_assert_values(a, ((double[]){ 0.5, 1.5 }), 0);
    nbt_assert_values(b, ((double[]){ 3, 4 }), 0);
    nbt_assert_values(state(o, "b.velocity"), ((double[]){ 0, 0 }), 0);
    ck_assert_ptr_null(b->grad);
    ck_assert_int_eq(nb_optimizer_steps(o), 1);
    /* zero_grad zeroes existing grads in place and creates none */
    nb_tensor *ga = a->grad;
    nb_optimizer_zero_grad(o);
    ck_assert_ptr_eq(a->grad, ga);
    nbt_assert_values(a->grad, ((double[]){ 0, 0 }), 0);
    ck_assert_ptr_null(b->grad);
    nb_optimizer_zero_grad(NULL);
    /* a step allocates nothing in the scope */
    size_t used = nb_scope_used(NULL);
    ck_assert_int_eq(nb_optimizer_step(o), 0);
    ck_assert_uint_eq(nb_scope_used(NULL), used);
    nb_optimizer_free(o);
    nb_free(a);
    nb_free(b);
}
END_TEST

START_TEST(clip_grad_norm)
{
    /* grads [3, 4] and [12], a third parameter without grad: norm 13 */
    for (int d = 0; d < 2; d++) {
        nb_dtype dt = d ? NB_F32 : NB_F64;
        nb_tensor *a = param_with_grad(nb_zeros(dt, NB_SHAPE(2)), vec(dt, 2, (double[]){ 3, 4 }));
        nb_tensor *b = param_with_grad(nb_zeros(dt, NB_SHAPE(1)), vec(dt, 1, (double[]){ 12 }));
        nb_tensor *c = param_with_grad(nb_zeros(dt, NB_SHAPE(3)), NULL);
        nb_tensor *ps[] = { a, b, c };
        nb_optimizer *o = make(nb_optim_defaults(NB_SGD), 3, ps, NULL);
        /* below the limit: unchanged */
        ck_assert_double_eq_tol(nb_optimizer_clip_grad_norm(o, 100), 13, 1e-12);
        nbt_assert_values(a->grad, ((double[]){ 3, 4 }), 0);
        ck_assert_double_eq_tol(nb_optimizer_clip_grad_norm(o, 13), 13, 1e-12);
        nbt_assert_values(b->grad, ((double[]){ 12 }), 0);
        /* above: scaled by 6.5/13 */
        ck_assert_double_eq_tol(nb_optimizer_clip_grad_norm(o, 6.5), 13, 1e-12);
        nbt_assert_values(a->grad, ((double[]){ 1.5, 2 }), 1e-6);
        nbt_assert_values(b->grad, ((double[]){ 6 }), 1e-6);
        ck_assert_ptr_null(c->grad);
        ck_assert_double_eq_tol(nb_optimizer_clip_grad_norm(o, 100), 6.5, 1e-6);
        /* errors */
        nb_clear_error();
        ck_assert(isnan(nb_optimizer_clip_grad_norm(o, 0)));
        ck_assert_str_eq(nb_last_error(), "nb_optimizer_clip_grad_norm: max_norm must be a finite number > 0, got 0");
        ck_assert(isnan(nb_optimizer_clip_grad_norm(o, NAN)));
        ck_assert_str_eq(nb_last_error(), "nb_optimizer_clip_grad_norm: max_norm must be a finite number > 0, got nan");
        ck_assert(isnan(nb_optimizer_clip_grad_norm(NULL, 1)));
        ck_assert_str_eq(nb_last_error(), "nb_optimizer_clip_grad_norm: NULL optimizer");
        /* a non-finite norm is returned and nothing is scaled */
        nb_set(b->grad, 0, INFINITY);
        ck_assert(isinf(nb_optimizer_clip_grad_norm(o, 1)));
        nbt_assert_values(a->grad, ((double[]){ 1.5, 2 }), 1e-6);
        nb_optimizer_free(o);
        nb_free(a);
        nb_free(b);
        nb_free(c);
    }
}
END_TEST

/* ---- errors ---- */

START_TEST(creation_errors)
{
    nb_tensor *p = param_with_grad(nb_zeros(NB_F64, NB_SHAPE(2, 3)), NULL);
    nb_tensor *q = param_with_grad(nb_zeros(NB_F32, NB_SHAPE(4)), NULL);
    nb_optim_config cfg = nb_optim_defaults(NB_SGD);

    nbt_assert_error(nb_optimizer_new(cfg, 1, NULL, NULL), "nb_optimizer_new: NULL params");
    nbt_assert_error(nb_optimizer_new(cfg, 0, &p, NULL), "nb_optimizer_new: n must be >= 1, got 0");
    nbt_assert_error(nb_optimizer_new(cfg, 2, (nb_tensor *[]){ p, NULL }, NULL), "nb_optimizer_new: NULL params[1]");

    /* a scoped tensor requiring grad is not persistent; a persistent buffer does not require grad */
    nb_tensor *scoped = nb_zeros(NB_F64, NB_SHAPE(3));
    nb_set_requires_grad(scoped, true);
    nbt_assert_error(nb_optimizer_new(cfg, 2, (nb_tensor *[]){ p, scoped }, NULL),
                     "nb_optimizer_new: params[1] [3] is not persistent (make parameters with nb_param)");
    nb_tensor *buffer = nb_persist(nb_zeros(NB_F64, NB_SHAPE(5)));
    nbt_assert_error(nb_optimizer_new(cfg, 1, &buffer, NULL),
                     "nb_optimizer_new: params[0] [5] does not require grad (make parameters with nb_param)");
    nb_tensor *labels = nb_persist(nb_zeros(NB_I64, NB_SHAPE(2)));
    nbt_assert_error(nb_optimizer_new(cfg, 1, &labels, NULL), "nb_optimizer_new: params[0] must be f32 or f64, got i64 [2]");
    nbt_assert_error(nb_optimizer_new(cfg, 3, (nb_tensor *[]){ p, q, p }, NULL),
                     "nb_optimizer_new: params[2] is the same tensor as params[0]");
    nbt_assert_error(nb_optimizer_new(cfg, 2, (nb_tensor *[]){ p, q }, (const char *[]){ "w", "w" }),
                     "nb_optimizer_new: names[1] 'w' repeats names[0]");
    nbt_assert_error(nb_optimizer_new(cfg, 2, (nb_tensor *[]){ p, q }, (const char *[]){ "w", NULL }),
                     "nb_optimizer_new: names[1] is NULL");
    nbt_assert_error(nb_optimizer_new(cfg, 2, (nb_tensor *[]){ p, q }, (const char *[]){ "", "b" }),
                     "nb_optimizer_new: names[0] is empty");

    /* hyperparameters */
    static const struct { nb_optim_kind kind; int field; double value; const char *message; } bad[] = {
        { NB_SGD, 0, 0, "nb_optimizer_new: lr must be a finite number > 0, got 0" },
        { NB_ADAM, 0, -1e-3, "nb_optimizer_new: lr must be a finite number > 0, got -0.001" },
        { NB_SGD, 0, NAN, "nb_optimizer_new: lr must be a finite number > 0, got nan" },
        { NB_RMSPROP, 0, INFINITY, "nb_optimizer_new: lr must be a finite number > 0, got inf" },
        { NB_SGD_MOMENTUM, 1, 1, "nb_optimizer_new: momentum must be in [0, 1), got 1" },
        { NB_NESTEROV, 1, -0.5, "nb_optimizer_new: momentum must be in [0, 1), got -0.5" },
        { NB_RMSPROP, 2, NAN, "nb_optimizer_new: decay_rate must be in [0, 1), got nan" },
        { NB_ADAM, 3, 1, "nb_optimizer_new: beta1 must be in [0, 1), got 1" },
        { NB_ADAMW, 4, 1.5, "nb_optimizer_new: beta2 must be in [0, 1), got 1.5" },
        { NB_ADAM, 5, 0, "nb_optimizer_new: eps must be a finite number > 0, got 0" },
        { NB_ADAMW, 6, -0.1, "nb_optimizer_new: weight_decay must be a finite number >= 0, got -0.1" },
        { NB_SGD, 6, -1, "nb_optimizer_new: weight_decay must be a finite number >= 0, got -1" },
        { NB_RMSPROP, 6, INFINITY, "nb_optimizer_new: weight_decay must be a finite number >= 0, got inf" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_optim_config c = nb_optim_defaults(bad[i].kind);
        double *fields[] = { &c.lr, &c.momentum, &c.decay_rate, &c.beta1, &c.beta2, &c.eps, &c.weight_decay };
        *fields[bad[i].field] = bad[i].value;
        nbt_assert_error(nb_optimizer_new(c, 1, &p, NULL), bad[i].message);
    }
    /* fields a kind does not read are not checked */
    nb_optim_config c = nb_optim_defaults(NB_SGD);
    c.beta1 = 7;
    c.momentum = NAN;
    nb_optimizer *o = make(c, 1, &p, NULL);
    nb_optimizer_free(o);
    c.kind = (nb_optim_kind)9;
    nbt_assert_error(nb_optimizer_new(c, 1, &p, NULL), "nb_optimizer_new: unknown optimizer kind 9");
    nb_optimizer_free(NULL);

    nb_free(p);
    nb_free(q);
    nb_free(buffer);
    nb_free(labels);
}
END_TEST

START_TEST(use_errors)
{
    nb_tensor *a = param_with_grad(vec(NB_F64, 2, (double[]){ 1, 2 }), vec(NB_F64, 2, (double[]){ 1, 1 }));
    nb_tensor *b = param_with_grad(vec(NB_F64, 3, (double[]){ 1, 2, 3 }), NULL);
    nb_tensor *ps[] = { a, b };
    nb_optimizer *o = make(nb_optim_defaults(NB_SGD), 2, ps, (const char *[]){ "a", "b" });

    /* a grad of the wrong shape fails the step before anything changes */
    b->grad = nb_persist(nb_ones(NB_F64, NB_SHAPE(2)));
    assert_fails(nb_optimizer_step(o), "nb_optimizer_step: grad of 'b' is f64 [2], expected f64 [3]");
    nbt_assert_values(a, ((double[]){ 1, 2 }), 0);
    ck_assert_int_eq(nb_optimizer_steps(o), 0);
    nb_free(b->grad);
    b->grad = nb_persist(nb_ones(NB_F32, NB_SHAPE(3)));
    assert_fails(nb_optimizer_step(o), "nb_optimizer_step: grad of 'b' is f32 [3], expected f64 [3]");
    ck_assert(isnan(nb_optimizer_clip_grad_norm(o, 1)));
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_clip_grad_norm: grad of 'b' is f32 [3], expected f64 [3]");
    nb_free(b->grad);
    /* a strided grad */
    nb_tensor *wide = nb_zeros(NB_F64, NB_SHAPE(6));
    b->grad = nb_slice(wide, 0, 0, 6, 2);
    assert_fails(nb_optimizer_step(o), "nb_optimizer_step: grad of 'b' [3] is not contiguous");
    b->grad = NULL;
    ck_assert_int_eq(nb_optimizer_step(o), 0);

    assert_fails(nb_optimizer_step(NULL), "nb_optimizer_step: NULL optimizer");

    /* learning rate */
    ck_assert_double_eq(nb_optimizer_lr(o), 1e-2);
    nb_optimizer_set_lr(o, 0.5);
    ck_assert_double_eq(nb_optimizer_lr(o), 0.5);
    nb_optimizer_set_lr(o, 0);      /* a schedule may end at 0 */
    ck_assert_double_eq(nb_optimizer_lr(o), 0);
    nb_clear_error();
    nb_optimizer_set_lr(o, -1);
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_set_lr: lr must be a finite number >= 0, got -1");
    nb_optimizer_set_lr(o, NAN);
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_set_lr: lr must be a finite number >= 0, got nan");
    ck_assert_double_eq(nb_optimizer_lr(o), 0);
    nb_optimizer_set_lr(NULL, 1);
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_set_lr: NULL optimizer");
    ck_assert(isnan(nb_optimizer_lr(NULL)));

    /* steps */
    nb_optimizer_set_steps(o, 41);
    ck_assert_int_eq(nb_optimizer_steps(o), 41);
    nb_optimizer_set_steps(o, -2);
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_set_steps: t must be >= 0, got -2");
    ck_assert_int_eq(nb_optimizer_steps(o), 41);
    nb_optimizer_set_steps(NULL, 1);
    ck_assert_str_eq(nb_last_error(), "nb_optimizer_set_steps: NULL optimizer");
    ck_assert_int_eq(nb_optimizer_steps(NULL), -1);

    /* visiting */
    assert_fails(nb_optimizer_visit_state(NULL, visit, NULL), "nb_optimizer_visit_state: NULL optimizer");
    assert_fails(nb_optimizer_visit_state(o, NULL, NULL), "nb_optimizer_visit_state: NULL fn");

    nb_optimizer_free(o);
    nb_free(a);
    nb_free(b);
}
END_TEST

/* ---- schedules ---- */

START_TEST(schedules)
{
    ck_assert_double_eq(nb_lr_step(0.1, 0, 3, 0.5), 0.1);
    ck_assert_double_eq(nb_lr_step(0.1, 2, 3, 0.5), 0.1);
    ck_assert_double_eq(nb_lr_step(0.1, 3, 3, 0.5), 0.05);
    ck_assert_double_eq(nb_lr_step(0.1, 8, 3, 0.5), 0.025);
    /* cs231n's per-epoch decay */
    ck_assert_double_eq_tol(nb_lr_step(1e-3, 4, 1, 0.95), 1e-3 * 0.95 * 0.95 * 0.95 * 0.95, 1e-18);

    ck_assert_double_eq(nb_lr_cosine(0.1, 0, 100, 0.001), 0.1);
    ck_assert_double_eq_tol(nb_lr_cosine(0.1, 50, 100, 0.001), 0.0505, 1e-15);
    ck_assert_double_eq_tol(nb_lr_cosine(0.1, 25, 100, 0), 0.05 * (1 + sqrt(0.5)), 1e-15);
    ck_assert_double_eq(nb_lr_cosine(0.1, 100, 100, 0.001), 0.001);
    ck_assert_double_eq(nb_lr_cosine(0.1, 150, 100, 0.001), 0.001);
    double prev = INFINITY;
    for (int s = 0; s <= 100; s++) {   /* non-increasing */
        double lr = nb_lr_cosine(0.1, s, 100, 0.001);
        ck_assert(lr <= prev);
        prev = lr;
    }
    /* warm-up: 1/4, 2/4, 3/4 of the rate, then the rate */
    ck_assert_double_eq(nb_lr_warmup(0.4, 0, 4), 0.1);
    ck_assert_double_eq(nb_lr_warmup(0.4, 2, 4), 0.30000000000000004);
    ck_assert_double_eq(nb_lr_warmup(0.4, 3, 4), 0.4);
    ck_assert_double_eq(nb_lr_warmup(0.4, 9, 4), 0.4);
    ck_assert_double_eq(nb_lr_warmup(0.4, 0, 0), 0.4);

    nb_clear_error();
    ck_assert(isnan(nb_lr_warmup(0.4, -1, 4)));
    ck_assert_str_eq(nb_last_error(), "nb_lr_warmup: step -1 and warmup_steps 4 must be >= 0");
    ck_assert(isnan(nb_lr_step(0.1, 1, 0, 0.5)));
    ck_assert_str_eq(nb_last_error(), "nb_lr_step: step_size must be >= 1, got 0");
    ck_assert(isnan(nb_lr_step(0.1, -1, 2, 0.5)));
    ck_assert_str_eq(nb_last_error(), "nb_lr_step: epoch must be >= 0, got -1");
    ck_assert(isnan(nb_lr_cosine(0.1, 1, 0, 0)));
    ck_assert_str_eq(nb_last_error(), "nb_lr_cosine: total_steps must be >= 1, got 0");
    ck_assert(isnan(nb_lr_cosine(0.1, -3, 10, 0)));
    ck_assert_str_eq(nb_last_error(), "nb_lr_cosine: step must be >= 0, got -3");
}
END_TEST

/* ---- end to end ---- */

START_TEST(adam_minimises_quadratic)
{
    /* minimise Σ (w − c)² from w = 0 with Adam, lr 0.1, 200 steps, gradients from nb_backward */
    const double cv[] = { 1.5, -2, 0.25, 3, -0.75 };
    nb_tensor *c = nb_persist(vec(NB_F64, 5, cv));
    nb_tensor *w = param_with_grad(nb_zeros(NB_F64, NB_SHAPE(5)), NULL);
    nb_optim_config cfg = nb_optim_defaults(NB_ADAM);
    cfg.lr = 0.1;
    nb_optimizer *o = make(cfg, 1, &w, (const char *[]){ "w" });
    double first = 0, last = 0;
    for (int s = 0; s < 200; s++) {
        nb_optimizer_zero_grad(o);
        nb_tensor *loss = nb_sum(nb_square(nb_sub(w, c)));
        ck_assert_msg(loss != NULL, "%s", nb_last_error());
        if (s == 0) first = nb_item(loss);
        last = nb_item(loss);
        ck_assert_int_eq(nb_backward(loss), 0);
        ck_assert_int_eq(nb_optimizer_step(o), 0);
        nb_scope_reset(NULL);
    }
    printf("adam on sum((w-c)^2): loss %.3g -> %.3g after 200 steps\n", first, last);
    ck_assert_double_eq_tol(first, 1.5 * 1.5 + 4 + 0.0625 + 9 + 0.5625, 1e-12);
    ck_assert_msg(last < 1e-3, "loss %g after 200 steps", last);
    nbt_assert_values(w, cv, 0.02);
    ck_assert_int_eq(nb_optimizer_steps(o), 200);
    nb_optimizer_free(o);
    nb_free(w);
    nb_free(c);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, sgd_momentum_reference);
    tcase_add_test(tc, rmsprop_reference);
    tcase_add_test(tc, adam_reference);
    suite_add_tcase(s, tc);
    tc = tcase_create("rules");
    tcase_add_test(tc, sgd_by_hand);
    tcase_add_test(tc, momentum_by_hand);
    tcase_add_test(tc, nesterov_by_hand);
    tcase_add_test(tc, adam_first_step_by_hand);
    tcase_add_test(tc, adamw_decoupled_weight_decay);
    tcase_add_test(tc, decoupled_weight_decay_every_kind);
    tcase_add_test(tc, float32_matches_float64);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, kind_names);
    tcase_add_test(tc, state_slots);
    tcase_add_test(tc, skips_params_without_grad);
    tcase_add_test(tc, clip_grad_norm);
    tcase_add_test(tc, creation_errors);
    tcase_add_test(tc, use_errors);
    tcase_add_test(tc, schedules);
    tcase_add_test(tc, adam_minimises_quadratic);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(optim_suite)
