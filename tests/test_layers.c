/* Functional layers (nn.h): the cs231n forward cases, gradient checks of every layer in f64,
 * batchnorm statistics and running-stat updates, layernorm and groupnorm statistics, dropout's mask
 * statistics, and the error messages. */
#include "nbtest.h"

static nb_norm_state new_state(int64_t n)
{
    return (nb_norm_state){ nb_persist(nb_zeros(NB_F64, NB_SHAPE(n))), nb_persist(nb_zeros(NB_F64, NB_SHAPE(n))), 0.9, 1e-5 };
}

static void free_state(nb_norm_state *st)
{
    nb_free(st->running_mean);
    nb_free(st->running_var);
}

/* ---- cs231n forward cases ---- */

START_TEST(affine_cs231n)
{
    nb_tensor *x = nbt_linspace(-0.1, 0.5, NB_SHAPE(2, 4, 5, 6));
    nb_tensor *w = nbt_linspace(-0.2, 0.3, NB_SHAPE(120, 3));
    nb_tensor *b = nb_linspace(NB_F64, -0.3, 0.1, 3);
    nb_tensor *out = nb_affine(x, w, b);
    nbt_assert_shape(out, 2, 3);
    nbt_assert_values(out, ((double[]){ 1.49834967, 1.70660132, 1.91485297, 3.25553199, 3.5141327, 3.77273342 }), 1e-8);
}
END_TEST

START_TEST(relu_cs231n)
{
    nb_tensor *x = nbt_linspace(-0.5, 0.5, NB_SHAPE(3, 4));
    const double expected[] = { 0, 0, 0, 0, 0, 0, 0.04545455, 0.13636364, 0.22727273, 0.31818182, 0.40909091, 0.5 };
    nbt_assert_values(nb_relu(x), expected, 1e-8);
    /* affine_relu with an identity weight and zero bias is relu of the flattened x */
    nb_tensor *eye = nb_zeros(NB_F64, NB_SHAPE(4, 4));
    for (int i = 0; i < 4; i++) nb_set(eye, i * 5, 1);
    nb_tensor *out = nb_affine_relu(x, eye, nb_zeros(NB_F64, NB_SHAPE(4)));
    nbt_assert_shape(out, 3, 4);
    nbt_assert_values(out, expected, 1e-8);
}
END_TEST

static const double conv_expected[] = {
    -0.08759809, -0.10987781, -0.18387192, -0.2109216,  0.21027089, 0.21661097, 0.22847626, 0.23004637,
    0.50813986,  0.54309974,  0.64082444,  0.67101435,  -0.98053589, -1.03143541, -1.19128892, -1.24695841,
    0.69108355,  0.66880383,  0.59480972,  0.56776003,  2.36270298, 2.36904306, 2.38090835, 2.38247847,
};

START_TEST(conv_cs231n)
{
    nb_tensor *x = nbt_linspace(-0.1, 0.5, NB_SHAPE(2, 3, 4, 4));
    nb_tensor *w = nbt_linspace(-0.2, 0.3, NB_SHAPE(3, 3, 4, 4));
    nb_tensor *b = nb_linspace(NB_F64, -0.1, 0.2, 3);
    nb_tensor *out = nb_conv2d(x, w, b, 2, 1);
    nbt_assert_shape(out, 2, 3, 2, 2);
    nbt_assert_values(out, conv_expected, 1e-8);
    /* conv_relu is relu of it */
    double relu_expected[24];
    for (int i = 0; i < 24; i++) relu_expected[i] = conv_expected[i] > 0 ? conv_expected[i] : 0;
    nbt_assert_values(nb_conv_relu(x, w, b, 2, 1), relu_expected, 1e-8);
    /* a strided (transposed) x gives the same result as its copy */
    nb_tensor *xt = nb_transpose(x, 2, 3);
    nbt_assert_same(nb_conv2d(xt, w, b, 2, 1), nb_conv2d(nb_copy(xt), w, b, 2, 1), 1e-14);
}
END_TEST

START_TEST(max_pool_cs231n)
{
    nb_tensor *x = nbt_linspace(-0.3, 0.4, NB_SHAPE(2, 3, 4, 4));
    const double expected[] = {
        -0.26315789, -0.24842105, -0.20421053, -0.18947368, -0.14526316, -0.13052632, -0.08631579, -0.07157895,
        -0.02736842, -0.01263158, 0.03157895,  0.04631579,  0.09052632,  0.10526316,  0.14947368,  0.16421053,
        0.20842105,  0.22315789,  0.26736842,  0.28210526,  0.32631579,  0.34105263,  0.38526316,  0.4,
    };
    nbt_assert_values(nb_max_pool2d(x, NB_WINDOW(2, 2, 0)), expected, 1e-8);
    /* conv_relu_pool with an identity 1x1 conv and a +1 bias (every value stays positive) */
    nb_tensor *w = nb_zeros(NB_F64, NB_SHAPE(3, 3, 1, 1));
    for (int c = 0; c < 3; c++) nb_set(w, c * 4, 1);
    nb_tensor *out = nb_conv_relu_pool(x, w, nb_ones(NB_F64, NB_SHAPE(3)), 1, 0, NB_WINDOW(2, 2, 0));
    nbt_assert_shape(out, 2, 3, 2, 2);
    double shifted[24];
    for (int i = 0; i < 24; i++) shifted[i] = expected[i] + 1;
    nbt_assert_values(out, shifted, 1e-8);
}
END_TEST

START_TEST(global_avg_pool_values)
{
    nb_tensor *x = nbt_linspace(1, 24, NB_SHAPE(2, 3, 2, 2));
    nb_tensor *out = nb_global_avg_pool(x);
    nbt_assert_shape(out, 2, 3);
    nbt_assert_values(out, ((double[]){ 2.5, 6.5, 10.5, 14.5, 18.5, 22.5 }), 1e-12);
}
END_TEST

/* ---- gradient checks (f64) ---- */

typedef struct {
    int stride, pad, groups;
    nb_window pool;
    nb_norm_state *st;
    bool training;
    nb_rng rng;
    uint64_t seed;
    double keep;
} layer_ctx;

static nb_tensor *affine_f(void *ctx, int n, nb_tensor *const *in) { return nb_affine(in[0], in[1], in[2]); }
static nb_tensor *affine_relu_f(void *ctx, int n, nb_tensor *const *in) { return nb_affine_relu(in[0], in[1], in[2]); }
static nb_tensor *conv_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_conv2d(in[0], in[1], in[2], c->stride, c->pad);
}
static nb_tensor *conv_relu_pool_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_conv_relu_pool(in[0], in[1], in[2], c->stride, c->pad, c->pool);
}
static nb_tensor *gap_f(void *ctx, int n, nb_tensor *const *in) { return nb_global_avg_pool(in[0]); }
static nb_tensor *batchnorm_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_batchnorm(in[0], in[1], in[2], c->st, c->training);
}
static nb_tensor *spatial_batchnorm_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_spatial_batchnorm(in[0], in[1], in[2], c->st, c->training);
}
static nb_tensor *layernorm_f(void *ctx, int n, nb_tensor *const *in) { return nb_layernorm(in[0], in[1], in[2], 1e-5); }
static nb_tensor *groupnorm_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_groupnorm(in[0], in[1], in[2], c->groups, 1e-5);
}
static nb_tensor *dropout_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    nb_rng_seed(&c->rng, c->seed);   /* the same mask at every evaluation */
    return nb_dropout(in[0], c->keep, &c->rng, true);
}
static nb_tensor *conv_bn_relu_f(void *ctx, int n, nb_tensor *const *in)
{
    layer_ctx *c = ctx;
    return nb_conv_bn_relu(in[0], in[1], in[2], in[3], in[4], c->st, true, c->stride, c->pad);
}

START_TEST(affine_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 4), -1, 1), nbt_input(&rng, NB_SHAPE(12, 5), -1, 1),
                         nbt_input(&rng, NB_SHAPE(5), -1, 1) };
    nbt_gradcheck(affine_f, NULL, 3, in, 1e-7, false);
    nbt_gradcheck(affine_relu_f, NULL, 3, in, 1e-7, true);
}
END_TEST

START_TEST(conv_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    layer_ctx c = { .stride = 2, .pad = 1 };
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 5, 5), -1, 1), nbt_input(&rng, NB_SHAPE(4, 3, 3, 3), -1, 1),
                         nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nbt_gradcheck(conv_f, &c, 3, in, 1e-7, false);
    nbt_gradgradcheck(conv_f, &c, 3, in, 1e-7);
}
END_TEST

START_TEST(conv_relu_pool_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    layer_ctx c = { .stride = 1, .pad = 1, .pool = NB_WINDOW(2, 2, 0) };
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 2, 6, 6), -1, 1), nbt_input(&rng, NB_SHAPE(3, 2, 3, 3), -1, 1),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(conv_relu_pool_f, &c, 3, in, 1e-7, true);
}
END_TEST

START_TEST(global_avg_pool_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 14);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(2, 3, 4, 5), -1, 1);
    nbt_gradcheck(gap_f, NULL, 1, &x, 1e-7, false);
}
END_TEST

START_TEST(batchnorm_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 15);
    nb_norm_state st = new_state(4);
    layer_ctx c = { .st = &st, .training = true };
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(5, 4), -2, 2), nbt_input(&rng, NB_SHAPE(4), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nbt_gradcheck(batchnorm_f, &c, 3, in, 1e-6, false);
    /* eval mode: an affine map of x with the running stats */
    nb_fill(st.running_var, 0.5);
    c.training = false;
    nbt_gradcheck(batchnorm_f, &c, 3, in, 1e-7, false);
    free_state(&st);
}
END_TEST

/* training mode without a state: the batch's statistics, the same values and gradients as with one */
START_TEST(batchnorm_without_state)
{
    nb_rng rng;
    nb_rng_seed(&rng, 16);
    nb_norm_state st = new_state(4);
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(6, 4), -2, 2), nbt_input(&rng, NB_SHAPE(4), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(4), -1, 1) };
    nb_tensor *with = nb_batchnorm(in[0], in[1], in[2], &st, true), *without = nb_batchnorm(in[0], in[1], in[2], NULL, true);
    ck_assert_ptr_nonnull(without);
    ck_assert(nb_item(nb_max(nb_abs(nb_sub(with, without)))) == 0);
    layer_ctx c = { .st = NULL, .training = true };
    nbt_gradcheck(batchnorm_f, &c, 3, in, 1e-6, false);
    nb_tensor *img = nbt_input(&rng, NB_SHAPE(2, 4, 3, 3), -2, 2);
    nb_tensor *sin[3] = { img, in[1], in[2] };
    nbt_gradcheck(spatial_batchnorm_f, &c, 3, sin, 1e-6, false);
    free_state(&st);
}
END_TEST

START_TEST(spatial_batchnorm_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 16);
    nb_norm_state st = new_state(3);
    layer_ctx c = { .st = &st, .training = true };
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 3, 4), -2, 2), nbt_input(&rng, NB_SHAPE(3), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(spatial_batchnorm_f, &c, 3, in, 1e-6, false);
    free_state(&st);
}
END_TEST

START_TEST(layernorm_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 17);
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(4, 6), -2, 2), nbt_input(&rng, NB_SHAPE(6), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(6), -1, 1) };
    nbt_gradcheck(layernorm_f, NULL, 3, in, 1e-6, false);
    /* composed from ops, so second derivatives come for free */
    nbt_gradgradcheck(layernorm_f, NULL, 3, in, 1e-6);
}
END_TEST

START_TEST(groupnorm_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 18);
    layer_ctx c = { .groups = 3 };
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 6, 3, 3), -2, 2), nbt_input(&rng, NB_SHAPE(6), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(6), -1, 1) };
    nbt_gradcheck(groupnorm_f, &c, 3, in, 1e-6, false);
    /* gamma and beta as cs231n's [1,C,1,1] */
    nb_tensor *in4[3] = { in[0], nbt_input(&rng, NB_SHAPE(1, 6, 1, 1), 0.5, 1.5), nbt_input(&rng, NB_SHAPE(1, 6, 1, 1), -1, 1) };
    nbt_gradcheck(groupnorm_f, &c, 3, in4, 1e-6, false);
    nbt_gradgradcheck(groupnorm_f, &c, 3, in, 1e-6);
}
END_TEST

START_TEST(dropout_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 19);
    layer_ctx c = { .seed = 99, .keep = 0.6 };
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(4, 5), -1, 1);
    nbt_gradcheck(dropout_f, &c, 1, &x, 1e-7, false);
}
END_TEST

START_TEST(conv_bn_relu_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 20);
    nb_norm_state st = new_state(3);
    layer_ctx c = { .stride = 1, .pad = 1, .st = &st };
    nb_tensor *in[5] = { nbt_input(&rng, NB_SHAPE(2, 2, 4, 4), -1, 1), nbt_input(&rng, NB_SHAPE(3, 2, 3, 3), -1, 1),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1), nbt_input(&rng, NB_SHAPE(3), 0.5, 1.5),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    /* batchnorm removes the conv bias, so its gradient is exactly 0 and the relative error of ~0 vs
     * rounding noise is meaningless: check it as a constant */
    nb_set_requires_grad(in[2], false);
    nbt_gradcheck(conv_bn_relu_f, &c, 5, in, 1e-6, true);
    free_state(&st);
}
END_TEST

/* ---- normalisation statistics ---- */

/* mean and biased variance of column j of the row-major [n,d] values v */
static void column_stats(const double *v, int64_t n, int64_t d, int64_t j, double *mean, double *var)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += v[i * d + j];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) q += (v[i * d + j] - *mean) * (v[i * d + j] - *mean);
    *var = q / (double)n;
}

START_TEST(batchnorm_train_stats)
{
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    enum { N = 200, D = 4 };
    nb_tensor *x = nb_add_scalar(nb_randn(NB_F64, NB_SHAPE(N, D), &rng, 3), 5);
    nb_tensor *gamma = nb_from_doubles(NB_F64, NB_SHAPE(D), (double[]){ 1, 2, 3, 0.5 });
    nb_tensor *beta = nb_from_doubles(NB_F64, NB_SHAPE(D), (double[]){ 0, -1, 4, 0.25 });
    nb_norm_state st = new_state(D);
    nb_tensor *out = nb_batchnorm(x, gamma, beta, &st, true);
    nbt_assert_shape(out, N, D);
    double v[N * D];
    nb_to_doubles(out, v);
    for (int j = 0; j < D; j++) {
        double mean, var;
        column_stats(v, N, D, j, &mean, &var);
        ck_assert_msg(fabs(mean - nb_get(beta, j)) < 1e-9, "feature %d mean %g", j, mean);
        ck_assert_msg(fabs(sqrt(var) - nb_get(gamma, j)) < 1e-5 * nb_get(gamma, j), "feature %d std %g", j, sqrt(var));
    }
    free_state(&st);
}
END_TEST

START_TEST(batchnorm_running_stats)
{
    nb_rng rng;
    nb_rng_seed(&rng, 22);
    enum { N = 6, D = 3 };
    nb_tensor *gamma = nb_from_doubles(NB_F64, NB_SHAPE(D), (double[]){ 1.5, 0.5, 2 });
    nb_tensor *beta = nb_from_doubles(NB_F64, NB_SHAPE(D), (double[]){ 0.1, -0.2, 0.3 });
    nb_norm_state st = new_state(D);
    double rm[D] = { 0 }, rv[D] = { 0 }, v[N * D];
    for (int step = 0; step < 2; step++) {
        nb_tensor *x = nb_add_scalar(nb_randn(NB_F64, NB_SHAPE(N, D), &rng, 2), step + 1);
        ck_assert_ptr_nonnull(nb_batchnorm(x, gamma, beta, &st, true));
        nb_to_doubles(x, v);
        for (int j = 0; j < D; j++) {
            double mean, var;
            column_stats(v, N, D, j, &mean, &var);
            rm[j] = 0.9 * rm[j] + 0.1 * mean;
            rv[j] = 0.9 * rv[j] + 0.1 * var;
        }
    }
    nbt_assert_values(st.running_mean, rm, 1e-12);
    nbt_assert_values(st.running_var, rv, 1e-12);
    /* eval: (x - running_mean)/sqrt(running_var + eps)·gamma + beta, and the stats stay put */
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(N, D), &rng, 1);
    nb_tensor *out = nb_batchnorm(x, gamma, beta, &st, false);
    nb_to_doubles(x, v);
    double expected[N * D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            expected[i * D + j] = (v[i * D + j] - rm[j]) / sqrt(rv[j] + 1e-5) * nb_get(gamma, j) + nb_get(beta, j);
    nbt_assert_values(out, expected, 1e-12);
    nbt_assert_values(st.running_mean, rm, 1e-12);
    /* running stats never join the graph */
    ck_assert(!st.running_mean->requires_grad && st.running_mean->node == NULL);
    free_state(&st);
}
END_TEST

START_TEST(spatial_batchnorm_stats)
{
    nb_rng rng;
    nb_rng_seed(&rng, 23);
    enum { N = 4, C = 3, H = 5, W = 6 };
    nb_tensor *x = nb_add_scalar(nb_randn(NB_F64, NB_SHAPE(N, C, H, W), &rng, 2), -3);
    nb_tensor *gamma = nb_from_doubles(NB_F64, NB_SHAPE(C), (double[]){ 1, 2, 3 });
    nb_tensor *beta = nb_from_doubles(NB_F64, NB_SHAPE(C), (double[]){ 0.5, 0, -0.5 });
    nb_norm_state st = new_state(C);
    /* channels last, [N·H·W, C]: per-column stats */
    nb_tensor *out = nb_contiguous(nb_permute(nb_spatial_batchnorm(x, gamma, beta, &st, true), NB_AXES(0, 2, 3, 1)));
    nb_tensor *xin = nb_contiguous(nb_permute(x, NB_AXES(0, 2, 3, 1)));
    double v[N * C * H * W], xv[N * C * H * W];
    nb_to_doubles(out, v);
    nb_to_doubles(xin, xv);
    for (int c = 0; c < C; c++) {
        double mean, var, xmean, xvar;
        column_stats(v, N * H * W, C, c, &mean, &var);
        column_stats(xv, N * H * W, C, c, &xmean, &xvar);
        ck_assert_msg(fabs(mean - nb_get(beta, c)) < 1e-9, "channel %d mean %g", c, mean);
        ck_assert_msg(fabs(sqrt(var) - nb_get(gamma, c)) < 1e-5 * nb_get(gamma, c), "channel %d std %g", c, sqrt(var));
        ck_assert(fabs(nb_get(st.running_mean, c) - 0.1 * xmean) < 1e-12);
        ck_assert(fabs(nb_get(st.running_var, c) - 0.1 * xvar) < 1e-12);
    }
    free_state(&st);
}
END_TEST

START_TEST(layernorm_stats)
{
    nb_rng rng;
    nb_rng_seed(&rng, 24);
    enum { N = 3, D = 50 };
    nb_tensor *x = nb_add(nb_randn(NB_F64, NB_SHAPE(N, D), &rng, 2), nb_from_doubles(NB_F64, NB_SHAPE(N, 1), (double[]){ -4, 0, 7 }));
    nb_tensor *out = nb_layernorm(x, nb_ones(NB_F64, NB_SHAPE(D)), nb_zeros(NB_F64, NB_SHAPE(D)), 1e-5);
    nbt_assert_shape(out, N, D);
    /* per-sample stats: transpose to [D,N] for column_stats */
    double v[N * D];
    nb_to_doubles(nb_transpose(out, 0, 1), v);
    for (int i = 0; i < N; i++) {
        double mean, var;
        column_stats(v, D, N, i, &mean, &var);
        ck_assert_msg(fabs(mean) < 1e-12, "sample %d mean %g", i, mean);
        ck_assert_msg(fabs(sqrt(var) - 1) < 1e-5, "sample %d std %g", i, sqrt(var));
    }
    /* gamma and beta per feature, against a hand computation */
    nb_tensor *gamma = nb_rand(NB_F64, NB_SHAPE(D), &rng, 0.5, 1.5), *beta = nb_rand(NB_F64, NB_SHAPE(D), &rng, -1, 1);
    out = nb_layernorm(x, gamma, beta, 1e-5);
    double xv[N * D], expected[N * D];
    nb_to_doubles(nb_transpose(x, 0, 1), xv);
    for (int i = 0; i < N; i++) {
        double mean, var;
        column_stats(xv, D, N, i, &mean, &var);
        for (int j = 0; j < D; j++)
            expected[i * D + j] = (nb_get(x, i * D + j) - mean) / sqrt(var + 1e-5) * nb_get(gamma, j) + nb_get(beta, j);
    }
    nbt_assert_values(out, expected, 1e-12);
}
END_TEST

START_TEST(groupnorm_stats)
{
    nb_rng rng;
    nb_rng_seed(&rng, 25);
    enum { N = 2, C = 6, G = 2, H = 3, W = 4, K = C / G * H * W };
    nb_tensor *x = nb_add_scalar(nb_randn(NB_F64, NB_SHAPE(N, C, H, W), &rng, 3), 2);
    nb_tensor *out = nb_groupnorm(x, nb_ones(NB_F64, NB_SHAPE(C)), nb_zeros(NB_F64, NB_SHAPE(C)), G, 1e-5);
    nbt_assert_shape(out, N, C, H, W);
    /* each (sample, group) is a contiguous run of K values: [N·G, K] transposed to [K, N·G] */
    double v[N * C * H * W];
    nb_to_doubles(nb_transpose(nb_reshape(out, NB_SHAPE(N * G, K)), 0, 1), v);
    for (int g = 0; g < N * G; g++) {
        double mean, var;
        column_stats(v, K, N * G, g, &mean, &var);
        ck_assert_msg(fabs(mean) < 1e-12, "group %d mean %g", g, mean);
        ck_assert_msg(fabs(sqrt(var) - 1) < 1e-5, "group %d std %g", g, sqrt(var));
    }
    /* with one group per channel it is instance norm; with gamma/beta as [1,C,1,1] the same values */
    nb_tensor *gamma = nb_rand(NB_F64, NB_SHAPE(C), &rng, 0.5, 1.5), *beta = nb_rand(NB_F64, NB_SHAPE(C), &rng, -1, 1);
    nbt_assert_same(nb_groupnorm(x, gamma, beta, G, 1e-5),
                nb_groupnorm(x, nb_reshape(gamma, NB_SHAPE(1, C, 1, 1)), nb_reshape(beta, NB_SHAPE(1, C, 1, 1)), G, 1e-5), 0);
}
END_TEST

START_TEST(dropout_statistics)
{
    nb_rng rng;
    nb_rng_seed(&rng, 26);
    const int64_t n = 100000;
    const double keep = 0.7;
    nb_tensor *x = nb_ones(NB_F64, NB_SHAPE(n));
    nb_tensor *out = nb_dropout(x, keep, &rng, true);
    nbt_assert_shape(out, n);
    int64_t zeros = 0;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = nb_get(out, i);
        ck_assert_msg(v == 0 || fabs(v - 1 / keep) < 1e-15, "element %lld is %g", (long long)i, v);
        zeros += v == 0;
        sum += v;
    }
    /* 5 standard deviations of a binomial fraction */
    double sigma = sqrt(keep * (1 - keep) / (double)n);
    double frac = (double)zeros / (double)n;
    ck_assert_msg(fabs(frac - (1 - keep)) < 5 * sigma, "zero fraction %g", frac);
    ck_assert_msg(fabs(sum / (double)n - 1) < 5 * sigma / keep, "mean %g", sum / (double)n);
    /* eval is the identity; the same seed draws the same mask; keep_prob 1 keeps everything */
    ck_assert_ptr_eq(nb_dropout(x, keep, NULL, false), x);
    nb_rng a, b;
    nb_rng_seed(&a, 3);
    nb_rng_seed(&b, 3);
    nb_tensor *y = nb_randn(NB_F64, NB_SHAPE(5, 7), &rng, 1);
    nbt_assert_same(nb_dropout(y, 0.5, &a, true), nb_dropout(y, 0.5, &b, true), 0);
    nbt_assert_same(nb_dropout(y, 1, &a, true), y, 0);
}
END_TEST

START_TEST(float32_layers)
{
    nb_tensor *x = nb_cast(nbt_linspace(-0.1, 0.5, NB_SHAPE(2, 3, 4, 4)), NB_F32);
    nb_tensor *w = nb_cast(nbt_linspace(-0.2, 0.3, NB_SHAPE(3, 3, 4, 4)), NB_F32);
    nb_tensor *b = nb_cast(nb_linspace(NB_F64, -0.1, 0.2, 3), NB_F32);
    nb_tensor *out = nb_conv2d(x, w, b, 2, 1);
    ck_assert_int_eq(out->dtype, NB_F32);
    nbt_assert_values(out, conv_expected, 1e-5);
    nb_tensor *ln = nb_layernorm(nb_reshape(out, NB_SHAPE(2, 12)), nb_ones(NB_F32, NB_SHAPE(12)), nb_zeros(NB_F32, NB_SHAPE(12)), 1e-5);
    ck_assert_ptr_nonnull(ln);
    ck_assert_int_eq(ln->dtype, NB_F32);
}
END_TEST

/* ---- errors ---- */

START_TEST(layer_errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(2, 4, 5, 6));
    nb_tensor *w = nb_zeros(NB_F64, NB_SHAPE(5, 3)), *b3 = nb_zeros(NB_F64, NB_SHAPE(3));
    nbt_assert_error(nb_affine(x, w, b3), "nb_affine: w is [5,3] but x flattens to [2,120]");
    nbt_assert_error(nb_affine(x, nb_zeros(NB_F64, NB_SHAPE(120, 3)), nb_zeros(NB_F64, NB_SHAPE(4))),
                     "nb_affine: b is [4] but w is [120,3] (expected [3])");
    nbt_assert_error(nb_affine(x, nb_zeros(NB_F64, NB_SHAPE(120)), b3), "nb_affine: expected a 2-D [D,M] w, got [120]");
    nbt_assert_error(nb_affine(nb_zeros(NB_F64, NB_SHAPE(2, 3)), nb_zeros(NB_F32, NB_SHAPE(3, 4)), nb_zeros(NB_F64, NB_SHAPE(4))),
                     "nb_affine: dtypes differ: f64 [2,3] and f32 [3,4]");
    nbt_assert_error(nb_affine(nb_zeros(NB_I64, NB_SHAPE(2, 3)), w, b3), "nb_affine: expected a f32 or f64 tensor, got i64 [2,3]");

    nb_tensor *img = nb_zeros(NB_F64, NB_SHAPE(2, 3, 4, 4)), *k = nb_zeros(NB_F64, NB_SHAPE(5, 3, 3, 3));
    nb_tensor *b5 = nb_zeros(NB_F64, NB_SHAPE(5));
    nbt_assert_error(nb_conv2d(img, nb_zeros(NB_F64, NB_SHAPE(5, 2, 3, 3)), b5, 1, 0),
                     "nb_conv2d: w is [5,2,3,3] but x is [2,3,4,4] (channels differ)");
    nbt_assert_error(nb_conv2d(img, k, b3, 1, 0), "nb_conv2d: b is [3] but w is [5,3,3,3] (expected [5])");
    nbt_assert_error(nb_conv2d(nb_zeros(NB_F64, NB_SHAPE(3, 4, 4)), k, b5, 1, 0), "nb_conv2d: expected a 4-D [N,C,H,W] x, got [3,4,4]");
    nbt_assert_error(nb_conv2d(img, nb_zeros(NB_F64, NB_SHAPE(5, 3, 3)), b5, 1, 0), "nb_conv2d: expected a 4-D [F,C,HH,WW] w, got [5,3,3]");
    nbt_assert_error(nb_conv2d(img, k, b5, 0, 0), "nb_conv2d: stride 0 must be at least 1");
    nbt_assert_error(nb_conv2d(img, k, b5, 1, -1), "nb_conv2d: padding -1 must not be negative");
    nbt_assert_error(nb_conv2d(img, nb_zeros(NB_F64, NB_SHAPE(5, 3, 7, 7)), b5, 1, 1),
                     "nb_conv2d: kernel 7x7 does not fit x [2,3,4,4] with padding 1");
    nbt_assert_error(nb_conv_relu_pool(img, k, b5, 1, 1, NB_WINDOW(2, 0, 0)),
                     "nb_max_pool2d: stride 0 must be at least 1 for input [2,5,4,4]");
    nbt_assert_error(nb_global_avg_pool(nb_zeros(NB_F64, NB_SHAPE(2, 3))), "nb_global_avg_pool: expected a 4-D [N,C,H,W] x, got [2,3]");
}
END_TEST

START_TEST(norm_errors)
{
    nb_norm_state st = new_state(4);
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(3, 4)), *g4 = nb_ones(NB_F64, NB_SHAPE(4)), *b4 = nb_zeros(NB_F64, NB_SHAPE(4));
    nbt_assert_error(nb_batchnorm(x, nb_ones(NB_F64, NB_SHAPE(3)), b4, &st, true),
                     "nb_batchnorm: gamma is [3] but x is [3,4] (expected [4])");
    nbt_assert_error(nb_batchnorm(x, g4, nb_zeros(NB_F32, NB_SHAPE(4)), &st, true), "nb_batchnorm: dtypes differ: f64 [3,4] and f32 [4]");
    nbt_assert_error(nb_batchnorm(nb_zeros(NB_F64, NB_SHAPE(3, 4, 1)), g4, b4, &st, true),
                     "nb_batchnorm: expected a 2-D [N,D] x, got [3,4,1]");
    nbt_assert_error(nb_batchnorm(x, g4, b4, NULL, false), "nb_batchnorm: eval mode normalises with running stats: it needs a state (got NULL)");
    nbt_assert_error(nb_batchnorm(nb_zeros(NB_F64, NB_SHAPE(0, 4)), g4, b4, &st, true),
                     "nb_batchnorm: empty batch [0,4] in training mode");
    nb_norm_state bad = new_state(5);
    nbt_assert_error(nb_batchnorm(x, g4, b4, &bad, false), "nb_batchnorm: running_mean is [5] but x is [3,4] (expected [4])");
    free_state(&bad);
    st.momentum = 1.5;
    nbt_assert_error(nb_batchnorm(x, g4, b4, &st, true), "nb_batchnorm: momentum 1.5 outside [0, 1]");
    st.momentum = 0.9;
    st.eps = -1;
    nbt_assert_error(nb_batchnorm(x, g4, b4, &st, true), "nb_batchnorm: eps -1 must be finite and not negative");
    st.eps = 1e-5;
    nbt_assert_error(nb_spatial_batchnorm(nb_zeros(NB_F64, NB_SHAPE(2, 4, 3, 3)), nb_ones(NB_F64, NB_SHAPE(1, 4, 1, 1)), b4, &st, true),
                     "nb_spatial_batchnorm: gamma is [1,4,1,1] but x is [2,4,3,3] (expected [4])");
    nbt_assert_error(nb_layernorm(x, g4, nb_zeros(NB_F64, NB_SHAPE(5)), 1e-5), "nb_layernorm: beta is [5] but x is [3,4] (expected [4])");
    nb_tensor *img = nb_zeros(NB_F64, NB_SHAPE(2, 6, 3, 3)), *g6 = nb_ones(NB_F64, NB_SHAPE(6)), *b6 = nb_zeros(NB_F64, NB_SHAPE(6));
    nbt_assert_error(nb_groupnorm(img, g6, b6, 4, 1e-5), "nb_groupnorm: groups 4 must divide the 6 channels of x [2,6,3,3]");
    nbt_assert_error(nb_groupnorm(img, g6, b6, 0, 1e-5), "nb_groupnorm: groups 0 must divide the 6 channels of x [2,6,3,3]");
    nbt_assert_error(nb_groupnorm(img, g4, b6, 2, 1e-5),
                     "nb_groupnorm: gamma is [4] but x is [2,6,3,3] (expected [6] or [1,6,1,1])");
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nbt_assert_error(nb_dropout(x, 0, &rng, true), "nb_dropout: keep_prob 0 must be in (0, 1]");
    nbt_assert_error(nb_dropout(x, 1.5, &rng, false), "nb_dropout: keep_prob 1.5 must be in (0, 1]");
    nbt_assert_error(nb_dropout(x, 0.5, NULL, true), "nb_dropout: NULL generator");
    free_state(&st);
}
END_TEST

START_TEST(null_inputs_keep_first_error)
{
    nb_norm_state st = new_state(4);
    nb_tensor *t = nb_zeros(NB_F64, NB_SHAPE(4));
    nb_tensor *img = nb_zeros(NB_F64, NB_SHAPE(1, 4, 2, 2));
    nb_clear_error();
    ck_assert_ptr_null(nb_reshape(t, NB_SHAPE(3)));   /* records the first error */
    char first[512];
    snprintf(first, sizeof first, "%s", nb_last_error());
    ck_assert(first[0]);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    ck_assert_ptr_null(nb_affine(NULL, t, t));
    ck_assert_ptr_null(nb_affine_relu(t, NULL, t));
    ck_assert_ptr_null(nb_conv2d(img, img, NULL, 1, 0));
    ck_assert_ptr_null(nb_conv_relu(NULL, img, t, 1, 0));
    ck_assert_ptr_null(nb_conv_relu_pool(NULL, img, t, 1, 0, NB_WINDOW(2, 2, 0)));
    ck_assert_ptr_null(nb_global_avg_pool(NULL));
    ck_assert_ptr_null(nb_batchnorm(NULL, t, t, &st, true));
    ck_assert_ptr_null(nb_spatial_batchnorm(img, NULL, t, &st, true));
    ck_assert_ptr_null(nb_layernorm(NULL, t, t, 1e-5));
    ck_assert_ptr_null(nb_groupnorm(img, t, NULL, 2, 1e-5));
    ck_assert_ptr_null(nb_dropout(NULL, 0.5, &rng, true));
    ck_assert_ptr_null(nb_conv_bn_relu(NULL, img, t, t, t, &st, true, 1, 0));
    ck_assert_str_eq(nb_last_error(), first);
    /* the running stats were not touched */
    nbt_assert_values(st.running_mean, ((double[]){ 0, 0, 0, 0 }), 0);
    free_state(&st);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *forward = tcase_create("forward");
    tcase_add_test(forward, affine_cs231n);
    tcase_add_test(forward, relu_cs231n);
    tcase_add_test(forward, conv_cs231n);
    tcase_add_test(forward, max_pool_cs231n);
    tcase_add_test(forward, global_avg_pool_values);
    tcase_add_test(forward, float32_layers);
    suite_add_tcase(s, forward);
    TCase *grads = tcase_create("gradients");
    tcase_set_timeout(grads, 120);
    tcase_add_test(grads, affine_gradients);
    tcase_add_test(grads, conv_gradients);
    tcase_add_test(grads, conv_relu_pool_gradients);
    tcase_add_test(grads, global_avg_pool_gradients);
    tcase_add_test(grads, batchnorm_gradients);
    tcase_add_test(grads, batchnorm_without_state);
    tcase_add_test(grads, spatial_batchnorm_gradients);
    tcase_add_test(grads, layernorm_gradients);
    tcase_add_test(grads, groupnorm_gradients);
    tcase_add_test(grads, dropout_gradients);
    tcase_add_test(grads, conv_bn_relu_gradients);
    suite_add_tcase(s, grads);
    TCase *stats = tcase_create("statistics");
    tcase_add_test(stats, batchnorm_train_stats);
    tcase_add_test(stats, batchnorm_running_stats);
    tcase_add_test(stats, spatial_batchnorm_stats);
    tcase_add_test(stats, layernorm_stats);
    tcase_add_test(stats, groupnorm_stats);
    tcase_add_test(stats, dropout_statistics);
    suite_add_tcase(s, stats);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, layer_errors);
    tcase_add_test(errors, norm_errors);
    tcase_add_test(errors, null_inputs_keep_first_error);
    suite_add_tcase(s, errors);
    return s;
}

NBT_MAIN(layers_suite)
