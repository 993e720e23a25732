/* Modules (module.h): the tree's dotted names, order, lookup and counts; train/eval switching;
 * fused and composed batchnorm modules agreeing; gradient checks in f64 through a Sequential and
 * through residual blocks; weight initialisation statistics; the error messages. */
#include "nbtest.h"

#include <stdio.h>
#include <unistd.h>

static void assert_all(const nb_tensor *t, double value)
{
    ck_assert_msg(t != NULL, "NULL tensor: %s", nb_last_error());
    for (int64_t i = 0; i < nb_numel(t); i++) ck_assert_double_eq(nb_get(t, i), value);
}

/* mean and (population) standard deviation of t's elements */
static void moments(const nb_tensor *t, double *mean, double *std)
{
    int64_t n = nb_numel(t);
    double s = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) s += nb_get(t, i);
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) sq += (nb_get(t, i) - *mean) * (nb_get(t, i) - *mean);
    *std = sqrt(sq / (double)n);
}

/* conv1-bn1-relu1-pool1-flatten-fc1 on [N,3,8,8] -> [N,5] */
static nb_module *small_cnn(nb_rng *rng, nb_dtype dt, bool fused)
{
    nb_init init = NB_INIT_KAIMING_RELU(rng);
    nb_module *seq = nb_module_sequential(0, NULL);
    ck_assert_msg(seq != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_module_sequential_append(seq, "conv1", nb_module_conv2d(3, 4, 3, 1, 1, dt, init)), 0);
    ck_assert_int_eq(nb_module_sequential_append(seq, "bn1", nb_module_batchnorm2d(4, dt, fused)), 0);
    ck_assert_int_eq(nb_module_sequential_append(seq, "relu1", nb_module_relu()), 0);
    ck_assert_int_eq(nb_module_sequential_append(seq, "pool1", nb_module_max_pool2d(NB_WINDOW(2, 2, 0))), 0);
    ck_assert_int_eq(nb_module_sequential_append(seq, "flatten", nb_module_flatten()), 0);
    ck_assert_int_eq(nb_module_sequential_append(seq, "fc1", nb_module_linear(4 * 4 * 4, 5, dt, init)), 0);
    return seq;
}

/* ---- the tree ---- */

typedef struct { int n; char names[32][128]; bool buffer[32]; nb_tensor *t[32]; } listing;

static int list_tensor(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    listing *l = ctx;
    ck_assert_int_lt(l->n, 32);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->buffer[l->n] = is_buffer;
    l->t[l->n++] = t;
    return 0;
}

START_TEST(tree_names_and_order)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = small_cnn(&rng, NB_F64, false);
    ck_assert_str_eq(m->kind, "Sequential");
    ck_assert_int_eq(m->n_children, 6);
    const char *kinds[] = { "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear" };
    for (int i = 0; i < 6; i++) ck_assert_str_eq(m->children[i]->kind, kinds[i]);

    listing l = { 0 };
    ck_assert_int_eq(nb_module_visit(m, list_tensor, &l), 0);
    const char *names[] = { "conv1.weight",     "conv1.bias",      "bn1.weight", "bn1.bias",
                            "bn1.running_mean", "bn1.running_var", "fc1.weight", "fc1.bias" };
    const bool buffers[] = { false, false, false, false, true, true, false, false };
    ck_assert_int_eq(l.n, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_str_eq(l.names[i], names[i]);
        ck_assert_int_eq(l.buffer[i], buffers[i]);
        ck_assert_int_eq(l.t[i]->requires_grad, !buffers[i]);
        ck_assert_ptr_null(l.t[i]->scope);   /* persistent */
        ck_assert_ptr_eq(nb_module_find(m, names[i]), l.t[i]);
    }
    nbt_assert_shape(nb_module_find(m, "conv1.weight"), 4, 3, 3, 3);
    nbt_assert_shape(nb_module_find(m, "fc1.weight"), 64, 5);
    assert_all(nb_module_find(m, "bn1.weight"), 1);
    assert_all(nb_module_find(m, "bn1.bias"), 0);
    assert_all(nb_module_find(m, "bn1.running_mean"), 0);
    assert_all(nb_module_find(m, "bn1.running_var"), 0);
    assert_all(nb_module_find(m, "conv1.bias"), 0);
    ck_assert_int_eq(nb_module_count(m, false), 6);
    ck_assert_int_eq(nb_module_count(m, true), 8);
    ck_assert_int_eq(nb_module_numel(m, false), 108 + 4 + 4 + 4 + 320 + 5);
    ck_assert_int_eq(nb_module_numel(m, true), 108 + 4 + 4 + 4 + 320 + 5 + 8);
    nbt_assert_error(nb_module_find(m, "bn2.weight"), "nb_module_find: no tensor named 'bn2.weight' in this Sequential");

    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 8, 8), &rng, 1);
    nb_tensor *y = nb_module_forward(m, x);
    nbt_assert_shape(y, 2, 5);
    /* backward fills every parameter's grad, zero_grad clears them */
    ck_assert_int_eq(nb_backward(nb_sum(y)), 0);
    for (int i = 0; i < 8; i++) {
        if (buffers[i]) continue;
        ck_assert_ptr_nonnull(l.t[i]->grad);
    }
    nb_module_zero_grad(m);
    assert_all(nb_module_find(m, "fc1.weight")->grad, 0);
    nb_module_free(m);
}
END_TEST

START_TEST(sequential_from_array)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_module *parts[] = { nb_module_linear(6, 4, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.1)), nb_module_relu(),
                           nb_module_dropout(1.0, &rng), nb_module_linear(4, 2, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.1)) };
    nb_module *m = nb_module_sequential(4, parts);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    listing l = { 0 };
    nb_module_visit(m, list_tensor, &l);
    ck_assert_int_eq(l.n, 4);
    ck_assert_str_eq(l.names[0], "0.weight");
    ck_assert_str_eq(l.names[1], "0.bias");
    ck_assert_str_eq(l.names[2], "3.weight");
    ck_assert_str_eq(l.names[3], "3.bias");
    /* forward is the chain of the functional layers */
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(3, 2, 3), &rng, 1);
    nb_tensor *expected = nb_affine(nb_relu(nb_affine(x, l.t[0], l.t[1])), l.t[2], l.t[3]);
    nbt_assert_same(nb_module_forward(m, x), expected, 1e-15);
    /* an empty Sequential is the identity */
    nb_module *empty = nb_module_sequential(0, NULL);
    ck_assert_ptr_eq(nb_module_forward(empty, x), x);
    nb_module_free(empty);
    nb_module_free(m);
}
END_TEST

START_TEST(layer_modules_forward)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 4, 5, 6), &rng, 1);
    nb_module *gap = nb_module_global_avg_pool(), *flat = nb_module_flatten();
    nb_module *pool = nb_module_max_pool2d(NB_WINDOW(3, 2, 1));
    nb_module *conv = nb_module_conv2d(4, 3, 3, 2, 1, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.5));
    nb_module *gn = nb_module_groupnorm(2, 4, NB_F64), *ln = nb_module_layernorm(6, NB_F64, false);
    nbt_assert_same(nb_module_forward(gap, x), nb_global_avg_pool(x), 0);
    nbt_assert_shape(nb_module_forward(gap, x), 2, 4);
    nbt_assert_shape(nb_module_forward(flat, x), 2, 120);
    nbt_assert_same(nb_module_forward(flat, x), x, 0);
    nbt_assert_same(nb_module_forward(pool, x), nb_max_pool2d(x, NB_WINDOW(3, 2, 1)), 0);
    nbt_assert_shape(nb_module_forward(conv, x), 2, 3, 3, 3);
    /* fused by default; composed after nb_module_set_fused_conv(false): the same up to rounding */
    nb_tensor *w = nb_module_tensor(conv, "weight"), *b = nb_module_tensor(conv, "bias");
    nbt_assert_same(nb_module_forward(conv, x), nb_conv2d_fused(x, w, b, 2, 1), 0);
    nb_module_set_fused_conv(conv, false);
    nbt_assert_same(nb_module_forward(conv, x), nb_conv2d(x, w, b, 2, 1), 0);
    nbt_assert_same(nb_conv2d(x, w, b, 2, 1), nb_conv2d_fused(x, w, b, 2, 1), 1e-14);
    /* a Sequential runs a fused Conv2d and the ReLU after it as one nb_conv2d_relu_fused, and with a
     * 2x2 max pool after them as one nb_conv2d_relu_pool_fused: the same values and gradients as the
     * composed modules */
    for (int with_pool = 0; with_pool < 2; with_pool++) {
        nb_module *seq = nb_module_sequential(2, (nb_module *[]){ nb_module_conv2d(4, 3, 3, 1, 1, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.5)),
                                                                 nb_module_relu() });
        if (with_pool) ck_assert_int_eq(nb_module_sequential_append(seq, "2", nb_module_max_pool2d(NB_WINDOW(2, 2, 0))), 0);
        nb_tensor *ws = nb_module_find(seq, "0.weight"), *bs = nb_module_find(seq, "0.bias");
        nb_tensor *y_fused = nb_module_forward(seq, x);
        nbt_assert_same(y_fused, with_pool ? nb_conv2d_relu_pool_fused(x, ws, bs, 1, 1) : nb_conv2d_relu_fused(x, ws, bs, 1, 1), 0);
        nb_module_set_fused_conv(seq, false);
        nb_tensor *y_composed = nb_module_forward(seq, x);
        nbt_assert_same(y_fused, y_composed, 1e-14);
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(y_fused), &rng, 1), *g_fused[2], *g_composed[2];
        ck_assert_int_eq(nb_grad(y_fused, dy, 2, (nb_tensor *[]){ ws, bs }, g_fused, false), 0);
        ck_assert_int_eq(nb_grad(y_composed, dy, 2, (nb_tensor *[]){ ws, bs }, g_composed, false), 0);
        for (int k = 0; k < 2; k++) nbt_assert_same(g_fused[k], g_composed[k], 1e-12);
        nb_module_free(seq);
    }
    /* with gamma 1 and beta 0 the norms standardise */
    nb_tensor *g = nb_module_forward(gn, x);
    nbt_assert_same(g, nb_groupnorm(x, nb_ones(NB_F64, NB_SHAPE(4)), nb_zeros(NB_F64, NB_SHAPE(4)), 2, 1e-5), 0);
    nb_tensor *x2 = nb_reshape(x, NB_SHAPE(40, 6));
    nb_tensor *y = nb_module_forward(ln, x2);
    nbt_assert_shape(y, 40, 6);
    for (int r = 0; r < 40; r++) {
        double mean, std;
        moments(nb_slice(y, 0, r, r + 1, 1), &mean, &std);
        ck_assert_double_eq_tol(mean, 0, 1e-12);
        ck_assert_double_eq_tol(std, 1, 1e-3);
    }
    /* a flatten of an [N] tensor is [N,1]; of an empty batch [0,D] */
    nbt_assert_shape(nb_module_forward(flat, nb_zeros(NB_F64, NB_SHAPE(3))), 3, 1);
    nbt_assert_shape(nb_module_forward(flat, nb_zeros(NB_F64, NB_SHAPE(0, 2, 3))), 0, 6);
    nb_module_free(gap);
    nb_module_free(flat);
    nb_module_free(pool);
    nb_module_free(conv);
    nb_module_free(gn);
    nb_module_free(ln);
}
END_TEST

/* ---- train / eval ---- */

static bool all_training(const nb_module *m, bool training)
{
    if (m->training != training) return false;
    for (int i = 0; i < m->n_children; i++)
        if (!all_training(m->children[i], training)) return false;
    return true;
}

START_TEST(train_eval_switching)
{
    nb_rng rng, drop_rng;
    nb_rng_seed(&rng, 4);
    nb_rng_seed(&drop_rng, 5);
    nb_module *m = nb_module_sequential(0, NULL);
    nb_module_sequential_append(m, "bn", nb_module_batchnorm1d(3, NB_F64, false));
    nb_module_sequential_append(m, "drop", nb_module_dropout(0.5, &drop_rng));
    nb_module_sequential_append(m, "block", nb_module_residual(2, 4, 2, NB_F64, NB_INIT_KAIMING_RELU(&rng), true));
    ck_assert_msg(m->n_children == 3, "%s", nb_last_error());
    ck_assert(all_training(m, true));
    nb_module_set_training(m, false);
    ck_assert(all_training(m, false));
    nb_module_set_training(m, true);
    ck_assert(all_training(m, true));
    nb_module *bn = m->children[0], *drop = m->children[1];

    /* training: batch stats (columns standardised), running stats move by 0.1 of the batch stats */
    nb_tensor *x = nb_add_scalar(nb_mul_scalar(nb_randn(NB_F64, NB_SHAPE(64, 3), &rng, 1), 2), 3);
    nb_tensor *y = nb_module_forward(bn, x);
    nb_tensor *mean = nb_mean_axes(x, NB_AXES(0), false);
    nb_tensor *var = nb_mean_axes(nb_square(nb_sub(x, mean)), NB_AXES(0), false);
    for (int j = 0; j < 3; j++) {
        double m_, s_;
        moments(nb_slice(y, 1, j, j + 1, 1), &m_, &s_);
        ck_assert_double_eq_tol(m_, 0, 1e-12);
        ck_assert_double_eq_tol(s_, 1, 1e-4);
    }
    nb_tensor *rm = nb_module_tensor(bn, "running_mean"), *rv = nb_module_tensor(bn, "running_var");
    nbt_assert_same(rm, nb_mul_scalar(mean, 0.1), 1e-14);
    nbt_assert_same(rv, nb_mul_scalar(var, 0.1), 1e-14);
    nb_tensor *rm_before = nb_copy(rm), *rv_before = nb_copy(rv);

    /* eval: the running stats, which stay as they are */
    nb_module_set_training(m, false);
    nb_tensor *ye = nb_module_forward(bn, x);
    nb_tensor *expected = nb_div(nb_sub(x, rm), nb_sqrt(nb_add_scalar(rv, 1e-5)));
    nbt_assert_same(ye, expected, 1e-12);
    nbt_assert_same(rm, rm_before, 0);
    nbt_assert_same(rv, rv_before, 0);

    /* dropout: identity in eval, zeros and 1/keep scaling in training */
    nb_tensor *ones = nb_ones(NB_F64, NB_SHAPE(1000));
    ck_assert_ptr_eq(nb_module_forward(drop, ones), ones);
    nb_module_set_training(m, true);
    nb_tensor *d = nb_module_forward(drop, ones);
    int64_t kept = 0;
    for (int64_t i = 0; i < 1000; i++) {
        double v = nb_get(d, i);
        ck_assert_msg(v == 0 || v == 2, "dropout value %g", v);
        kept += v == 2;
    }
    ck_assert_int_gt(kept, 400);
    ck_assert_int_lt(kept, 600);
    nb_module_free(m);
}
END_TEST

/* ---- fused and composed batchnorm ---- */

/* sets the module's weight and bias to random values (away from the ones/zeros defaults) */
static void randomize_affine(nb_module *bn, nb_rng *rng)
{
    nb_tensor *w = nb_module_tensor(bn, "weight"), *b = nb_module_tensor(bn, "bias");
    nb_copy_into(w, nb_rand(NB_F64, nb_shape_of(w), rng, 0.5, 1.5));
    nb_copy_into(b, nb_rand(NB_F64, nb_shape_of(b), rng, -0.3, 0.3));
}

static void compare_fused(bool spatial)
{
    nb_rng rng;
    nb_rng_seed(&rng, spatial ? 6 : 7);
    nb_module *a = spatial ? nb_module_batchnorm2d(3, NB_F64, false) : nb_module_batchnorm1d(5, NB_F64, false);
    nb_module *b = spatial ? nb_module_batchnorm2d(3, NB_F64, true) : nb_module_batchnorm1d(5, NB_F64, true);
    ck_assert_msg(a && b, "%s", nb_last_error());
    randomize_affine(a, &rng);
    nb_copy_into(nb_module_tensor(b, "weight"), nb_module_tensor(a, "weight"));
    nb_copy_into(nb_module_tensor(b, "bias"), nb_module_tensor(a, "bias"));
    nb_shape s = spatial ? NB_SHAPE(4, 3, 5, 6) : NB_SHAPE(16, 5);
    for (int step = 0; step < 3; step++) {
        nb_tensor *x = nb_add_scalar(nb_randn(NB_F64, s, &rng, 2), step);
        nb_tensor *xa = nb_copy(x), *xb = nb_copy(x);
        nb_set_requires_grad(xa, true);
        nb_set_requires_grad(xb, true);
        nb_tensor *ya = nb_module_forward(a, xa), *yb = nb_module_forward(b, xb);
        nbt_assert_same(ya, yb, 1e-10);
        nb_tensor *dy = nb_randn(NB_F64, s, &rng, 1);
        ck_assert_int_eq(nb_backward_with(ya, dy), 0);
        ck_assert_int_eq(nb_backward_with(yb, dy), 0);
        nbt_assert_same(xa->grad, xb->grad, 1e-10);
        nbt_assert_same(nb_module_tensor(a, "weight")->grad, nb_module_tensor(b, "weight")->grad, 1e-10);
        nbt_assert_same(nb_module_tensor(a, "bias")->grad, nb_module_tensor(b, "bias")->grad, 1e-10);
        nbt_assert_same(nb_module_tensor(a, "running_mean"), nb_module_tensor(b, "running_mean"), 1e-10);
        nbt_assert_same(nb_module_tensor(a, "running_var"), nb_module_tensor(b, "running_var"), 1e-10);
        nb_module_zero_grad(a);
        nb_module_zero_grad(b);
    }
    /* the running stats did move */
    ck_assert(fabs(nb_get(nb_module_tensor(a, "running_mean"), 0)) > 0.1);
    /* eval uses them, identically */
    nb_module_set_training(a, false);
    nb_module_set_training(b, false);
    nb_tensor *x = nb_randn(NB_F64, s, &rng, 1);
    nbt_assert_same(nb_module_forward(a, x), nb_module_forward(b, x), 1e-10);
    nb_module_free(a);
    nb_module_free(b);
}

START_TEST(fused_batchnorm1d_matches_composed) { compare_fused(false); }
END_TEST

START_TEST(fused_batchnorm2d_matches_composed) { compare_fused(true); }
END_TEST

START_TEST(fused_batchnorm_float32)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_module *a = nb_module_batchnorm2d(3, NB_F32, false), *b = nb_module_batchnorm2d(3, NB_F32, true);
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(2, 3, 4, 4), &rng, 1);
    nb_tensor *ya = nb_module_forward(a, x), *yb = nb_module_forward(b, x);
    ck_assert_int_eq(yb->dtype, NB_F32);
    nbt_assert_same(ya, yb, 1e-5);
    nbt_assert_same(nb_module_tensor(a, "running_var"), nb_module_tensor(b, "running_var"), 1e-6);
    nb_module_free(a);
    nb_module_free(b);
}
END_TEST

/* ---- gradient checks ---- */

static nb_tensor *module_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    return nb_module_forward(ctx, in[0]);
}

/* the parameters of m, except those named in skip (NULL-terminated), after x in in[] */
typedef struct { int n; nb_tensor **in; const char *const *skip; } param_ctx;

static int collect_param(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    param_ctx *p = ctx;
    if (is_buffer) return 0;
    for (const char *const *s = p->skip; s && *s; s++)
        if (!strcmp(*s, name)) return 0;
    p->in[p->n++] = t;
    return 0;
}

/* gradcheck of x and the parameters; the skipped ones (conv biases followed by train-mode batchnorm,
 * whose exact gradient is 0: relative errors of rounding noise mean nothing) must get ~0 gradients */
static void module_gradcheck(nb_module *m, nb_tensor *x, const char *const *skip, double tol)
{
    nb_tensor *in[64];
    in[0] = x;
    param_ctx p = { 1, in, skip };
    nb_module_visit(m, collect_param, &p);
    int skipped = 0;
    for (const char *const *q = skip; q && *q; q++) skipped++;
    ck_assert_int_eq(p.n, (int)nb_module_count(m, false) + 1 - skipped);
    nbt_gradcheck(module_f, m, p.n, in, tol, true);
    nb_module_zero_grad(m);
    ck_assert_int_eq(nb_backward(nb_sum(nb_square(nb_module_forward(m, x)))), 0);
    for (const char *const *s = skip; s && *s; s++) {
        nb_tensor *g = nb_module_find(m, *s)->grad;
        for (int64_t i = 0; i < nb_numel(g); i++) ck_assert_double_eq_tol(nb_get(g, i), 0, 1e-10);
    }
}

START_TEST(sequential_gradients)
{
    for (int fused = 0; fused < 2; fused++) {
        nb_rng rng;
        nb_rng_seed(&rng, 9);
        nb_module *m = small_cnn(&rng, NB_F64, fused);
        nb_module_sequential_append(m, "drop", nb_module_dropout(1.0, &rng));
        nb_module_sequential_append(m, "bn2", nb_module_batchnorm1d(5, NB_F64, fused));
        nb_module_sequential_append(m, "fc2", nb_module_linear(5, 3, NB_F64, NB_INIT_KAIMING_RELU(&rng)));
        ck_assert_msg(m->n_children == 9, "%s", nb_last_error());
        randomize_affine(m->children[1], &rng);
        randomize_affine(m->children[7], &rng);
        /* a batch of 2 would make bn2's output (±1 per column) nearly constant */
        nb_tensor *x = nbt_input(&rng, NB_SHAPE(6, 3, 8, 8), -1, 1);
        module_gradcheck(m, x, (const char *const[]){ "conv1.bias", "fc1.bias", NULL }, 1e-6);
        /* eval mode: running stats are constants, every parameter has a gradient */
        nb_module_set_training(m, false);
        module_gradcheck(m, x, NULL, 1e-6);
        nb_module_free(m);
    }
}
END_TEST

START_TEST(residual_gradients)
{
    for (int projection = 0; projection < 2; projection++) {
        nb_rng rng;
        nb_rng_seed(&rng, 10 + projection);
        nb_module *m = projection ? nb_module_residual(2, 3, 2, NB_F64, NB_INIT_KAIMING_RELU(&rng), projection)
                                  : nb_module_residual(2, 2, 1, NB_F64, NB_INIT_KAIMING_RELU(&rng), projection);
        ck_assert_msg(m != NULL, "%s", nb_last_error());
        ck_assert_int_eq(m->n_children, projection ? 5 : 4);
        const char *names[] = { "conv1", "bn1", "conv2", "bn2", "shortcut" };
        for (int i = 0; i < m->n_children; i++) ck_assert_str_eq(m->child_names[i], names[i]);
        if (projection) {
            ck_assert_ptr_nonnull(nb_module_find(m, "shortcut.conv.weight"));
            nbt_assert_shape(nb_module_find(m, "shortcut.conv.weight"), 3, 2, 1, 1);
            ck_assert_ptr_nonnull(nb_module_find(m, "shortcut.bn.running_var"));
            randomize_affine(m->children[4]->children[1], &rng);
        }
        randomize_affine(m->children[1], &rng);
        randomize_affine(m->children[3], &rng);
        nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 2, 5, 5), -1, 1);
        nb_tensor *y = nb_module_forward(m, x);
        if (projection) nbt_assert_shape(y, 2, 3, 3, 3);
        else nbt_assert_shape(y, 2, 2, 5, 5);
        const char *const skip[] = { "conv1.bias", "conv2.bias", projection ? "shortcut.conv.bias" : NULL, NULL };
        module_gradcheck(m, x, skip, 1e-6);
        nb_module_free(m);
    }
}
END_TEST

/* a training block with fused batchnorm (whose bn2 ends in nb_batchnorm_add_relu_fused) against the
 * same block with composed batchnorm: values, running stats and gradients */
START_TEST(residual_fused_matches_composed)
{
    for (int projection = 0; projection < 2; projection++) {
        nb_module *m[2];
        for (int fused = 0; fused < 2; fused++) {
            nb_rng rng;
            nb_rng_seed(&rng, 30 + projection);
            m[fused] = nb_module_residual(3, projection ? 4 : 3, projection ? 2 : 1, NB_F64, NB_INIT_KAIMING_RELU(&rng), fused);
            ck_assert_msg(m[fused] != NULL, "%s", nb_last_error());
            randomize_affine(m[fused]->children[1], &rng);
            randomize_affine(m[fused]->children[3], &rng);
        }
        nb_rng rng;
        nb_rng_seed(&rng, 40);
        nb_tensor *x = nbt_input(&rng, NB_SHAPE(4, 3, 6, 6), -1, 1);
        nb_tensor *y[2];
        for (int fused = 0; fused < 2; fused++) y[fused] = nb_module_forward(m[fused], x);
        nbt_assert_same(y[1], y[0], 1e-12);
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(y[0]), &rng, 1);
        nb_tensor *gx[2];
        const char *names[] = { "conv1.weight", "bn1.weight", "conv2.weight", "bn2.weight", "bn2.bias", "bn2.running_var",
                                projection ? "shortcut.conv.weight" : NULL, NULL };
        for (int fused = 0; fused < 2; fused++) {
            ck_assert_int_eq(nb_grad(y[fused], dy, 1, &x, &gx[fused], false), 0);
            ck_assert_int_eq(nb_backward_with(y[fused], dy), 0);
        }
        nbt_assert_same(gx[1], gx[0], 1e-10);
        for (int i = 0; names[i]; i++) {
            nb_tensor *a = nb_module_find(m[0], names[i]), *b = nb_module_find(m[1], names[i]);
            if (a->grad) nbt_assert_same(b->grad, a->grad, 1e-10);
            else nbt_assert_same(b, a, 1e-12);   /* a buffer */
        }
        for (int fused = 0; fused < 2; fused++) nb_module_free(m[fused]);
    }
}
END_TEST

/* the identity block in eval mode with fresh stats (mean 0, var 0) is relu(conv..(x)·k + x) */
START_TEST(residual_identity_shortcut)
{
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    nb_module *m = nb_module_residual(3, 3, 1, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.1), false);
    nb_module_set_training(m, false);
    /* bn2's gamma 0 kills the residual branch: the block is relu(x) */
    nb_fill(nb_module_find(m, "bn2.weight"), 0);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 4, 4), &rng, 1);
    nbt_assert_same(nb_module_forward(m, x), nb_relu(x), 0);
    nb_module_free(m);
}
END_TEST

/* ---- initialisation ---- */

START_TEST(init_statistics)
{
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    nb_module *lin = nb_module_linear(400, 300, NB_F64, NB_INIT_NORMAL_SCALE(&rng, 0.05));
    nb_module *conv = nb_module_conv2d(16, 32, 3, 1, 1, NB_F32, NB_INIT_KAIMING_RELU(&rng));
    nb_module *lin_k = nb_module_linear(500, 200, NB_F64, NB_INIT_KAIMING_RELU(&rng));
    double mean, std;
    moments(nb_module_tensor(lin, "weight"), &mean, &std);
    ck_assert_double_eq_tol(mean, 0, 0.001);
    ck_assert_double_eq_tol(std, 0.05, 0.05 * 0.01);
    moments(nb_module_tensor(conv, "weight"), &mean, &std);
    ck_assert_int_eq(nb_module_tensor(conv, "weight")->dtype, NB_F32);
    ck_assert_double_eq_tol(mean, 0, 0.01);
    ck_assert_double_eq_tol(std, sqrt(2.0 / 144), sqrt(2.0 / 144) * 0.03);
    moments(nb_module_tensor(lin_k, "weight"), &mean, &std);
    ck_assert_double_eq_tol(std, sqrt(2.0 / 500), sqrt(2.0 / 500) * 0.01);
    assert_all(nb_module_tensor(lin, "bias"), 0);
    assert_all(nb_module_tensor(conv, "bias"), 0);
    nb_module_free(lin);
    nb_module_free(conv);
    nb_module_free(lin_k);
}
END_TEST

/* ---- errors ---- */

START_TEST(constructor_errors)
{
    nb_rng rng;
    nb_rng_seed(&rng, 14);
    nb_init init = NB_INIT_KAIMING_RELU(&rng);
    nbt_assert_error(nb_module_conv2d(0, 4, 3, 1, 1, NB_F64, init),
                     "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 0 out_ch 4 k 3 stride 1 pad 1");
    nbt_assert_error(nb_module_conv2d(3, 4, 3, 1, -1, NB_F64, init),
                     "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 3 out_ch 4 k 3 stride 1 pad -1");
    nbt_assert_error(nb_module_conv2d(3, 4, 3, 1, 1, NB_F64, NB_INIT_KAIMING_RELU(NULL)),
                     "nb_module_conv2d: weight initialisation needs a generator (init.rng is NULL)");
    nbt_assert_error(nb_module_max_pool2d(NB_WINDOW(2, 2, 2)),
                     "nb_module_max_pool2d: need a positive window and stride and 0 <= pad <= k/2, got kernel (2, 2), stride (2, 2), padding (2, 2)");
    nbt_assert_error(nb_module_max_pool2d(NB_WINDOW(2, 0, 0)),
                     "nb_module_max_pool2d: need a positive window and stride and 0 <= pad <= k/2, got kernel (2, 2), stride (0, 0), padding (0, 0)");
    nbt_assert_error(nb_module_batchnorm1d(0, NB_F64, true), "nb_module_batchnorm1d: features must be positive, got 0");
    nbt_assert_error(nb_module_batchnorm2d(-2, NB_F64, false), "nb_module_batchnorm2d: channels must be positive, got -2");
    nbt_assert_error(nb_module_batchnorm2d(2, NB_I64, false), "nb_module_batchnorm2d: dtype must be f32 or f64, got i64");
    nbt_assert_error(nb_module_layernorm(0, NB_F64, false), "nb_module_layernorm: features must be positive, got 0");
    nbt_assert_error(nb_module_groupnorm(3, 8, NB_F64), "nb_module_groupnorm: groups 3 must be positive and divide the 8 channels");
    nbt_assert_error(nb_module_groupnorm(0, 8, NB_F64), "nb_module_groupnorm: groups 0 must be positive and divide the 8 channels");
    nbt_assert_error(nb_module_dropout(0, &rng), "nb_module_dropout: keep_prob 0 must be in (0, 1]");
    nbt_assert_error(nb_module_dropout(1.5, &rng), "nb_module_dropout: keep_prob 1.5 must be in (0, 1]");
    nbt_assert_error(nb_module_dropout(NAN, &rng), "nb_module_dropout: keep_prob nan must be in (0, 1]");
    nbt_assert_error(nb_module_dropout(0.5, NULL), "nb_module_dropout: NULL generator");
    nbt_assert_error(nb_module_residual(2, 0, 1, NB_F64, init, false),
                     "nb_module_residual: need positive in_ch, out_ch and stride, got in_ch 2 out_ch 0 stride 1");
    nbt_assert_error(nb_module_residual(2, 2, 1, NB_F64, NB_INIT_KAIMING_RELU(NULL), false),
                     "nb_module_conv2d: weight initialisation needs a generator (init.rng is NULL)");
    nbt_assert_error(nb_module_sequential(-1, NULL), "nb_module_sequential: bad children (n -1, array NULL)");
    nbt_assert_error(nb_module_sequential(2, NULL), "nb_module_sequential: bad children (n 2, array NULL)");
}
END_TEST

START_TEST(sequential_errors)
{
    nb_rng rng;
    nb_rng_seed(&rng, 15);
    /* a failed constructor among the children: its message is kept and the others are freed */
    nb_clear_error();
    nb_module *parts[] = { nb_module_relu(), nb_module_conv2d(3, 0, 3, 1, 1, NB_F64, NB_INIT_KAIMING_RELU(&rng)),
                           nb_module_flatten() };
    ck_assert_ptr_null(nb_module_sequential(3, parts));
    ck_assert_str_eq(nb_last_error(),
                     "nb_module_conv2d: need positive in_ch, out_ch, k, stride and pad >= 0, got in_ch 3 out_ch 0 k 3 stride 1 pad 1");

    nb_module *seq = nb_module_sequential(0, NULL);
    ck_assert_int_eq(nb_module_sequential_append(seq, "fc1", nb_module_linear(4, 3, NB_F64, NB_INIT_KAIMING_RELU(&rng))), 0);
    /* a duplicate or dotted name: the child is freed */
    ck_assert_int_eq(nb_module_sequential_append(seq, "fc1", nb_module_relu()), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_add_child: name 'fc1' already used in a Sequential");
    ck_assert_int_eq(nb_module_sequential_append(seq, "a.b", nb_module_relu()), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_add_child: bad name 'a.b' in a Sequential (1 to 63 characters, no '.')");
    /* a failed constructor: -1, its message kept */
    ck_assert_int_eq(nb_module_sequential_append(seq, "bn", nb_module_batchnorm1d(0, NB_F64, false)), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_batchnorm1d: features must be positive, got 0");
    /* not a Sequential */
    nb_module *lin = nb_module_linear(2, 2, NB_F64, NB_INIT_KAIMING_RELU(&rng));
    ck_assert_int_eq(nb_module_sequential_append(lin, "relu", nb_module_relu()), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_sequential_append: a Linear is not a Sequential");
    ck_assert_int_eq(nb_module_sequential_append(NULL, "relu", nb_module_relu()), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_sequential_append: NULL module");
    ck_assert_int_eq(seq->n_children, 1);
    nb_module_free(lin);
    nb_module_free(seq);
}
END_TEST

START_TEST(forward_errors)
{
    nb_rng rng;
    nb_rng_seed(&rng, 16);
    nb_module *m = small_cnn(&rng, NB_F64, true);
    /* NULL on a clean slate says so (after a failure it keeps the first message) */
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(m, NULL));
    ck_assert_str_eq(nb_last_error(), "nb_module_forward: NULL input");
    nbt_assert_error(nb_module_forward(NULL, nb_zeros(NB_F64, NB_SHAPE(1))), "nb_module_forward: NULL module");
    /* the failing layer's message comes out of the chain */
    nb_clear_error();
    ck_assert_ptr_null(nb_module_forward(m, nb_zeros(NB_F64, NB_SHAPE(2, 2, 8, 8))));
    ck_assert_msg(!strncmp(nb_last_error(), "nb_conv2d", 9), "message: %s", nb_last_error());
    nb_module *bn1 = nb_module_batchnorm1d(4, NB_F64, true), *bn2 = nb_module_batchnorm2d(4, NB_F64, true);
    nbt_assert_error(nb_module_forward(bn2, nb_zeros(NB_F64, NB_SHAPE(2, 3, 2, 2))),
                     "BatchNorm2d: expected x [N,C,H,W] with 4 channels, got [2,3,2,2]");
    nbt_assert_error(nb_module_forward(bn1, nb_zeros(NB_F64, NB_SHAPE(2, 4, 1))),
                     "BatchNorm1d: expected x [N,D] with 4 features, got [2,4,1]");
    nbt_assert_error(nb_module_forward(bn2, nb_zeros(NB_F64, NB_SHAPE(0, 4, 2, 2))),
                     "BatchNorm2d: empty batch [0,4,2,2] in training mode");
    nb_module *flat = nb_module_flatten();
    nbt_assert_error(nb_module_forward(flat, nb_scalar(NB_F64, 1)), "Flatten: expected x with a batch axis [N,..], got []");
    nb_module_free(flat);
    nb_module_free(bn1);
    nb_module_free(bn2);
    nb_module_free(m);
}
END_TEST

/* ---- weights in and out ---- */

static void tmp_path(char *buf, size_t size, const char *tag)
{
    snprintf(buf, size, "/tmp/nabla-test-weights-%ld-%s.safetensors", (long)getpid(), tag);
}

START_TEST(save_and_load_weights)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_module *a = small_cnn(&rng, NB_F64, false), *b = small_cnn(&rng, NB_F64, false);
    /* a's running stats move off their zeros, so buffers are checked too */
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, 8, 8), &rng, 1);
    ck_assert_ptr_nonnull(nb_module_forward(a, x));
    char path[256];
    tmp_path(path, sizeof path, "cnn");
    ck_assert_msg(nb_module_save(a, path) == 0, "%s", nb_last_error());
    nb_safetensors *st = nb_safetensors_load(path);
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(nb_safetensors_meta(st, "format"), "nabla-module-1");
    ck_assert_int_eq(st->n, 8);   /* conv1 weight, bias; bn1 weight, bias, running_mean, running_var; fc1 weight, bias */
    nb_safetensors_free(st);
    nb_module_load_report r;
    ck_assert_msg(nb_module_load(b, path, NULL, true, &r) == 0, "%s", nb_last_error());
    ck_assert_int_eq(r.loaded, 8);
    listing la = { 0 }, lb = { 0 };
    nb_module_visit(a, list_tensor, &la);
    nb_module_visit(b, list_tensor, &lb);
    for (int i = 0; i < la.n; i++)
        ck_assert_msg(nb_item(nb_max(nb_abs(nb_sub(la.t[i], lb.t[i])))) == 0, "%s differs", la.names[i]);
    /* into an f32 copy of the net: converted */
    nb_module *c32 = small_cnn(&rng, NB_F32, false);
    ck_assert_int_eq(nb_module_load(c32, path, "", true, NULL), 0);
    nb_module_set_training(a, false);
    nb_module_set_training(c32, false);
    nb_tensor *diff = nb_sub(nb_module_forward(a, x), nb_cast(nb_module_forward(c32, nb_cast(x, NB_F32)), NB_F64));
    ck_assert_double_lt(nb_item(nb_max(nb_abs(diff))), 1e-4);
    nb_module_free(a);
    nb_module_free(b);
    nb_module_free(c32);
    remove(path);
}
END_TEST

START_TEST(load_weights_mismatches)
{
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_init init = NB_INIT_KAIMING_RELU(&rng);
    nb_module *two = nb_module_sequential(2, (nb_module *[]){ nb_module_linear(4, 3, NB_F64, init),
                                                              nb_module_linear(3, 2, NB_F64, init) });
    nb_module *one = nb_module_sequential(1, (nb_module *[]){ nb_module_linear(4, 3, NB_F64, init) });
    nb_module *wide = nb_module_sequential(1, (nb_module *[]){ nb_module_linear(4, 5, NB_F64, init) });
    char path[256];
    tmp_path(path, sizeof path, "two");
    ck_assert_int_eq(nb_module_save(two, path), 0);
    /* strict: the file's second layer is unexpected */
    ck_assert_int_eq(nb_module_load(one, path, NULL, true, NULL), -1);
    char want[512];
    snprintf(want, sizeof want, "nb_module_load: %s does not fit the model (strict): 2 unexpected: 1.weight, 1.bias", path);
    ck_assert_str_eq(nb_last_error(), want);
    /* not strict: the matching names load, the others are counted */
    nb_module_load_report r;
    ck_assert_int_eq(nb_module_load(one, path, NULL, false, &r), 0);
    ck_assert(r.loaded == 2 && r.missing == 0 && r.unexpected == 2);
    ck_assert(nb_get(one->children[0]->tensors[0], 5) == nb_get(two->children[0]->tensors[0], 5));
    /* missing in the other direction */
    tmp_path(path, sizeof path, "one");
    ck_assert_int_eq(nb_module_save(one, path), 0);
    ck_assert_int_eq(nb_module_load(two, path, NULL, true, NULL), -1);
    ck_assert(strstr(nb_last_error(), "(strict): 2 missing: 1.weight, 1.bias") != NULL);
    /* another shape: an error even when not strict, and nothing changed */
    double before = nb_get(wide->children[0]->tensors[0], 0);
    ck_assert_int_eq(nb_module_load(wide, path, NULL, false, NULL), -1);
    snprintf(want, sizeof want, "nb_module_load: %s does not fit the model (not strict): 2 of another shape or dtype: "
             "0.weight (f64 [4,3] in the file, f64 [4,5] in the model), 0.bias (f64 [3] in the file, f64 [5] in the model)", path);
    ck_assert_str_eq(nb_last_error(), want);
    ck_assert(nb_get(wide->children[0]->tensors[0], 0) == before);
    /* a prefix selects names; files that are not there, NULLs */
    ck_assert_int_eq(nb_module_load(one, path, "best.", true, NULL), -1);
    ck_assert(strstr(nb_last_error(), "(strict, names under 'best.'): 2 missing: 0.weight, 0.bias") != NULL);
    remove(path);
    ck_assert_int_eq(nb_module_load(one, path, NULL, true, NULL), -1);
    ck_assert(strstr(nb_last_error(), path) != NULL);
    ck_assert_int_eq(nb_module_save(NULL, path), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_save: NULL module");
    ck_assert_int_eq(nb_module_load(one, NULL, NULL, true, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_module_load: NULL path");
    tmp_path(path, sizeof path, "two");
    remove(path);
    nb_module_free(one);
    nb_module_free(two);
    nb_module_free(wide);
}
END_TEST

static Suite *module_suite(void)
{
    Suite *s = suite_create("module");
    TCase *tree = tcase_create("tree");
    tcase_add_test(tree, tree_names_and_order);
    tcase_add_test(tree, sequential_from_array);
    tcase_add_test(tree, layer_modules_forward);
    tcase_add_test(tree, train_eval_switching);
    tcase_add_test(tree, init_statistics);
    suite_add_tcase(s, tree);
    TCase *bn = tcase_create("batchnorm");
    tcase_add_test(bn, fused_batchnorm1d_matches_composed);
    tcase_add_test(bn, fused_batchnorm2d_matches_composed);
    tcase_add_test(bn, fused_batchnorm_float32);
    suite_add_tcase(s, bn);
    TCase *grads = tcase_create("gradients");
    tcase_set_timeout(grads, 120);
    tcase_add_test(grads, sequential_gradients);
    tcase_add_test(grads, residual_gradients);
    tcase_add_test(grads, residual_fused_matches_composed);
    tcase_add_test(grads, residual_identity_shortcut);
    suite_add_tcase(s, grads);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, constructor_errors);
    tcase_add_test(errors, sequential_errors);
    tcase_add_test(errors, forward_errors);
    suite_add_tcase(s, errors);
    TCase *weights = tcase_create("weights");
    tcase_add_test(weights, save_and_load_weights);
    tcase_add_test(weights, load_weights_mismatches);
    suite_add_tcase(s, weights);
    return s;
}

NBT_MAIN(module_suite)
