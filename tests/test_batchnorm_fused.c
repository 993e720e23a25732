/* nb_batchnorm_fused: agreement with the same normalisation composed from primitives (forward and
 * every gradient), gradcheck, output statistics, the mean/var outputs, strided and f32 inputs, the
 * same bits at every instruction-set level, the once-differentiable error, argument errors. */
#include "nbtest.h"

#include <stdio.h>

/* the reference: batch mean, biased variance, composed from differentiable primitives */
static nb_tensor *composed(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps)
{
    bool spatial = x->ndim == 4;   /* per channel, over N, H and W */
    nb_axes axes = spatial ? NB_AXES(0, 2, 3) : NB_AXES(0);
    if (spatial) {
        gamma = nb_reshape(gamma, NB_SHAPE(gamma->shape[0], 1, 1));
        beta = nb_reshape(beta, NB_SHAPE(beta->shape[0], 1, 1));
    }
    nb_tensor *centred = nb_sub(x, nb_mean_axes(x, axes, true));
    nb_tensor *var = nb_mean_axes(nb_square(centred), axes, true);
    return nb_add(nb_mul(nb_mul(centred, nb_rsqrt(nb_add_scalar(var, eps))), gamma), beta);
}

/* forward and the gradients of x, gamma, beta for a random upstream gradient, fused vs composed */
/* tol bounds the relative error of each element; for large batches a few dx elements sit near the zero
 * of count·dy − Σdy − x̂·Σ(dy·x̂), where summation order alone moves the relative error above 1e-10 */
static void compare_tol(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, const char *what, double tol)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *fused = nb_batchnorm_fused(x, gamma, beta, eps, NULL, NULL);
    nb_tensor *reference = composed(x, gamma, beta, eps);
    double e_out = nbt_rel_error(fused, reference);
    nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0);
    nb_tensor *in[3] = { x, gamma, beta }, *g_fused[3], *g_ref[3];
    ck_assert_int_eq(nb_grad(fused, dy, 3, in, g_fused, false), 0);
    ck_assert_int_eq(nb_grad(reference, dy, 3, in, g_ref, false), 0);
    double e[3];
    for (int k = 0; k < 3; k++) e[k] = nbt_rel_error(g_fused[k], g_ref[k]);
    printf("fused vs composed (%s): out %.3g, dx %.3g, dgamma %.3g, dbeta %.3g\n", what, e_out, e[0], e[1], e[2]);
    ck_assert_msg(e_out < tol, "forward rel error %g", e_out);
    for (int k = 0; k < 3; k++) ck_assert_msg(e[k] < tol, "gradient %d rel error %g", k, e[k]);
}

static void compare_with_composed(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, const char *what)
{
    compare_tol(x, gamma, beta, eps, what, 1e-10);
}

START_TEST(matches_composed_f64)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(8, 5), -3, 5);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(5), 0.5, 2);
    nb_tensor *beta = nbt_input(&rng, NB_SHAPE(5), -1, 1);
    compare_with_composed(x, gamma, beta, 1e-5, "contiguous [8,5]");
    /* several row blocks of 256, the last partial; then enough rows for the blocks to be split among threads */
    const nb_shape rows[2] = { NB_SHAPE(600, 40), NB_SHAPE(2048, 48) };
    for (int k = 0; k < 2; k++) {
        int64_t D = rows[k].d[1];
        x = nbt_input(&rng, rows[k], -3, 5);
        compare_tol(x, nbt_input(&rng, NB_SHAPE(D), 0.5, 2), nbt_input(&rng, NB_SHAPE(D), -1, 1), 1e-5,
                    k ? "contiguous [2048,48]" : "contiguous [600,40]", 1e-10);
    }
}
END_TEST

START_TEST(matches_composed_strided)
{
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    /* x: transposed view [6,4] with strides (1,6); gamma: every other element of [8] */
    nb_tensor *x = nb_detach(nb_transpose(nb_rand(NB_F64, NB_SHAPE(4, 6), &rng, -2, 2), 0, 1));
    nb_set_requires_grad(x, true);
    nb_tensor *gamma = nb_detach(nb_slice(nb_rand(NB_F64, NB_SHAPE(8), &rng, 0.5, 2), 0, 0, 8, 2));
    nb_set_requires_grad(gamma, true);
    nb_tensor *beta = nbt_input(&rng, NB_SHAPE(4), -1, 1);
    ck_assert(!nb_is_contiguous(x));
    ck_assert(!nb_is_contiguous(gamma));
    compare_with_composed(x, gamma, beta, 1e-3, "strided [6,4]");
}
END_TEST

/* a leaf [N,C,H,W] laid out [N,H,W,C] (as nb_conv2d_fused makes), values in [-2, 2) */
static nb_tensor *channels_last_input(nb_rng *rng, nb_shape nhwc)
{
    nb_tensor *x = nb_detach(nb_permute(nb_rand(NB_F64, nhwc, rng, -2, 2), NB_AXES(0, 3, 1, 2)));
    nb_set_requires_grad(x, true);
    return x;
}

START_TEST(matches_composed_spatial)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    /* small, and large enough that the kernels split channels among threads */
    const nb_shape shapes[2] = { NB_SHAPE(3, 4, 5, 6), NB_SHAPE(16, 8, 32, 32) };
    for (int k = 0; k < 2; k++) {
        int64_t C = shapes[k].d[1];
        nb_tensor *x = nbt_input(&rng, shapes[k], -3, 5);
        nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(C), 0.5, 2);
        nb_tensor *beta = nbt_input(&rng, NB_SHAPE(C), -1, 1);
        compare_tol(x, gamma, beta, 1e-5, k ? "[N,C,H,W] [16,8,32,32]" : "[N,C,H,W] [3,4,5,6]", k ? 1e-8 : 1e-10);
    }
    /* channels-last images ([N,H,W,C] memory, as nb_conv2d_fused makes): small, and large enough
     * for the row kernels to split their blocks among threads */
    const nb_shape nhwc_shapes[2] = { NB_SHAPE(2, 3, 4, 5), NB_SHAPE(16, 32, 32, 8) };
    for (int k = 0; k < 2; k++) {
        int64_t C = nhwc_shapes[k].d[3];
        nb_tensor *x = channels_last_input(&rng, nhwc_shapes[k]);
        compare_tol(x, nbt_input(&rng, NB_SHAPE(C), 0.5, 2), nbt_input(&rng, NB_SHAPE(C), -1, 1), 1e-5,
                    k ? "[N,C,H,W] channels-last [16,8,32,32]" : "[N,C,H,W] channels-last [2,5,3,4]", k ? 1e-8 : 1e-10);
    }
}
END_TEST

static nb_tensor *fused_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx;
    (void)n;
    return nb_batchnorm_fused(in[0], in[1], in[2], 1e-5, NULL, NULL);
}

START_TEST(gradcheck_f64)
{
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(5, 3), -2, 2), nbt_input(&rng, NB_SHAPE(3), 0.5, 2),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(fused_fn, NULL, 3, in, 1e-7, false);
    nb_tensor *image[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -2, 2), nbt_input(&rng, NB_SHAPE(3), 0.5, 2),
                            nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(fused_fn, NULL, 3, image, 1e-7, false);
    /* only some inputs requiring grad */
    nb_set_requires_grad(in[1], false);
    nbt_gradcheck(fused_fn, NULL, 3, in, 1e-7, false);
}
END_TEST

static nb_tensor *fused_relu_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    nb_tensor *x = in[0];
    if (ctx) x = nb_permute(x, NB_AXES(0, 3, 1, 2));   /* given [N,H,W,C]: the channels-last kernel */
    return nb_batchnorm_relu_fused(x, in[1], in[2], 1e-5, NULL, NULL);
}

/* nb_batchnorm_relu_fused against relu(nb_batchnorm_fused): values, mean and var, and gradients for
 * an upstream gradient in NCHW and in x's own layout; gradcheck on both layouts */
START_TEST(relu_variant)
{
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    const nb_shape nhwc_shapes[2] = { NB_SHAPE(2, 3, 5, 4), NB_SHAPE(16, 32, 32, 8) };
    for (int k = 0; k < 2; k++) {
        int64_t C = nhwc_shapes[k].d[3];
        nb_tensor *x = channels_last_input(&rng, nhwc_shapes[k]);
        nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(C), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(C), -1, 1);
        nb_tensor *m1, *v1, *m2, *v2;
        nb_tensor *fused = nb_batchnorm_relu_fused(x, gamma, beta, 1e-5, &m1, &v1);
        nb_tensor *composed = nb_relu(nb_batchnorm_fused(x, gamma, beta, 1e-5, &m2, &v2));
        ck_assert_msg(fused != NULL, "%s", nb_last_error());
        nbt_assert_same(fused, composed, 0);
        nbt_assert_same(m1, m2, 0);
        nbt_assert_same(v1, v2, 0);
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0);
        nb_tensor *dy_cl = nb_permute(nb_contiguous(nb_permute(dy, NB_AXES(0, 2, 3, 1))), NB_AXES(0, 3, 1, 2));
        nb_tensor *const upstream[2] = { dy, dy_cl };
        nb_tensor *in[3] = { x, gamma, beta }, *g_fused[3], *g_composed[3];
        for (int u = 0; u < 2; u++) {
            ck_assert_int_eq(nb_grad(fused, upstream[u], 3, in, g_fused, false), 0);
            ck_assert_int_eq(nb_grad(composed, upstream[u], 3, in, g_composed, false), 0);
            for (int i = 0; i < 3; i++) {
                double e = nbt_rel_error(g_fused[i], g_composed[i]);
                ck_assert_msg(e < 1e-12, "shape %d, dy %s: gradient %d rel error %g", k, u ? "channels-last" : "NCHW", i, e);
            }
        }
    }
    nb_tensor *nhwc[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -2, 2), nbt_input(&rng, NB_SHAPE(3), 0.5, 2),
                           nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    nbt_gradcheck(fused_relu_fn, (void *)1, 3, nhwc, 1e-7, true);
    nb_tensor *nchw[3] = { nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -2, 2), nhwc[1], nhwc[2] };
    nbt_gradcheck(fused_relu_fn, NULL, 3, nchw, 1e-7, true);
    /* [N,D] rows, in the same kernel: against the two ops, then gradcheck */
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(300, 7), -2, 2);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(7), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(7), -1, 1);
    nb_tensor *fused = nb_batchnorm_relu_fused(x, gamma, beta, 1e-5, NULL, NULL);
    nb_tensor *composed = nb_relu(nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL));
    ck_assert_msg(fused != NULL, "%s", nb_last_error());
    nbt_assert_same(fused, composed, 0);
    nb_tensor *in[3] = { x, gamma, beta }, *g_fused[3], *g_composed[3];
    nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0);
    ck_assert_int_eq(nb_grad(fused, dy, 3, in, g_fused, false), 0);
    ck_assert_int_eq(nb_grad(composed, dy, 3, in, g_composed, false), 0);
    for (int i = 0; i < 3; i++) {
        double e = nbt_rel_error(g_fused[i], g_composed[i]);
        ck_assert_msg(e < 1e-12, "[300,7]: gradient %d rel error %g", i, e);
    }
    nb_tensor *rows[3] = { nbt_input(&rng, NB_SHAPE(5, 3), -2, 2), nhwc[1], nhwc[2] };
    nbt_gradcheck(fused_relu_fn, NULL, 3, rows, 1e-7, true);
}
END_TEST

static nb_tensor *fused_add_relu_fn(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    nb_tensor *x = in[0], *skip = in[3];
    if (ctx) {   /* given [N,H,W,C]: the channels-last kernel */
        x = nb_permute(x, NB_AXES(0, 3, 1, 2));
        skip = nb_permute(skip, NB_AXES(0, 3, 1, 2));
    }
    return nb_batchnorm_add_relu_fused(x, in[1], in[2], skip, 1e-5, NULL, NULL);
}

/* nb_batchnorm_add_relu_fused against relu(nb_batchnorm_fused + skip): values, mean and var, and the
 * gradients of x, gamma, beta and skip for upstream gradients in NCHW and in x's layout, with the
 * skip in x's layout (the kernel) and in NCHW (the three ops); gradcheck on both layouts */
START_TEST(add_relu_variant)
{
    nb_rng rng;
    nb_rng_seed(&rng, 22);
    const nb_shape nhwc_shapes[2] = { NB_SHAPE(2, 3, 5, 4), NB_SHAPE(16, 32, 32, 8) };
    for (int k = 0; k < 2; k++)
        for (int skip_cl = 0; skip_cl < 2; skip_cl++) {
            int64_t C = nhwc_shapes[k].d[3];
            nb_tensor *x = channels_last_input(&rng, nhwc_shapes[k]);
            nb_tensor *skip = skip_cl ? channels_last_input(&rng, nhwc_shapes[k]) : nbt_input(&rng, nb_shape_of(x), -2, 2);
            nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(C), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(C), -1, 1);
            nb_tensor *m1, *v1, *m2, *v2;
            nb_tensor *fused = nb_batchnorm_add_relu_fused(x, gamma, beta, skip, 1e-5, &m1, &v1);
            nb_tensor *composed = nb_relu(nb_add(nb_batchnorm_fused(x, gamma, beta, 1e-5, &m2, &v2), skip));
            ck_assert_msg(fused != NULL, "%s", nb_last_error());
            if (skip_cl) ck_assert(!memcmp(fused->stride, x->stride, sizeof x->stride));   /* the kernel's layout */
            nbt_assert_same(fused, composed, 0);
            nbt_assert_same(m1, m2, 0);
            nbt_assert_same(v1, v2, 0);
            /* some outputs are clipped and some are not */
            double clipped = nb_get(nb_sum(nb_equal(fused, nb_zeros(NB_F64, nb_shape_of(fused)))), 0);
            ck_assert(clipped > 0 && clipped < (double)nb_numel(fused));
            nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0);
            nb_tensor *dy_cl = nb_permute(nb_contiguous(nb_permute(dy, NB_AXES(0, 2, 3, 1))), NB_AXES(0, 3, 1, 2));
            nb_tensor *const upstream[2] = { dy, dy_cl };
            nb_tensor *in[4] = { x, gamma, beta, skip }, *g_fused[4], *g_composed[4];
            for (int u = 0; u < 2; u++) {
                ck_assert_int_eq(nb_grad(fused, upstream[u], 4, in, g_fused, false), 0);
                ck_assert_int_eq(nb_grad(composed, upstream[u], 4, in, g_composed, false), 0);
                for (int i = 0; i < 4; i++) {
                    double e = nbt_rel_error(g_fused[i], g_composed[i]);
                    ck_assert_msg(e < 1e-12, "shape %d, skip %s, dy %s: gradient %d rel error %g", k,
                                  skip_cl ? "channels-last" : "NCHW", u ? "channels-last" : "NCHW", i, e);
                }
            }
        }
    nb_tensor *nhwc[4] = { nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -2, 2), nbt_input(&rng, NB_SHAPE(3), 0.5, 2),
                           nbt_input(&rng, NB_SHAPE(3), -1, 1), nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -1, 1) };
    nbt_gradcheck(fused_add_relu_fn, (void *)1, 4, nhwc, 1e-7, true);
    nb_tensor *nchw[4] = { nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -2, 2), nhwc[1], nhwc[2],
                           nbt_input(&rng, NB_SHAPE(2, 3, 2, 3), -1, 1) };
    nbt_gradcheck(fused_add_relu_fn, NULL, 4, nchw, 1e-7, true);
    /* [N,D] rows with a skip of the same layout: the kernel, against the three ops, then gradcheck */
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(300, 7), -2, 2), *skip = nbt_input(&rng, NB_SHAPE(300, 7), -1, 1);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(7), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(7), -1, 1);
    nb_tensor *fused = nb_batchnorm_add_relu_fused(x, gamma, beta, skip, 1e-5, NULL, NULL);
    nb_tensor *composed = nb_relu(nb_add(nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL), skip));
    ck_assert_msg(fused != NULL, "%s", nb_last_error());
    nbt_assert_same(fused, composed, 0);
    nb_tensor *in[4] = { x, gamma, beta, skip }, *g_fused[4], *g_composed[4];
    nb_tensor *dy = nb_randn(NB_F64, NB_SHAPE(300, 7), &rng, 1.0);
    ck_assert_int_eq(nb_grad(fused, dy, 4, in, g_fused, false), 0);
    ck_assert_int_eq(nb_grad(composed, dy, 4, in, g_composed, false), 0);
    for (int i = 0; i < 4; i++) {
        double e = nbt_rel_error(g_fused[i], g_composed[i]);
        ck_assert_msg(e < 1e-12, "[300,7]: gradient %d rel error %g", i, e);
    }
    nb_tensor *rows[4] = { nbt_input(&rng, NB_SHAPE(5, 3), -2, 2), nhwc[1], nhwc[2], nbt_input(&rng, NB_SHAPE(5, 3), -1, 1) };
    nbt_gradcheck(fused_add_relu_fn, NULL, 4, rows, 1e-7, true);
    /* only x requiring grad: the skip's gradient is not kept */
    for (int i = 1; i < 4; i++) nb_set_requires_grad(nhwc[i], false);
    nbt_gradcheck(fused_add_relu_fn, (void *)1, 4, nhwc, 1e-7, true);
}
END_TEST

START_TEST(output_statistics_and_mean_var)
{
    enum { N = 64, D = 4 };
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    double shifts[D] = { 5, -3, 0, 12 }, scales[D] = { 2, 0.5, 1, 10 };
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(N, D), &rng, 1.0);
    for (int64_t i = 0; i < N * D; i++) nb_set(x, i, nb_get(x, i) * scales[i % D] + shifts[i % D]);
    double g[D] = { 1, 2, 0.5, 3 }, b[D] = { 0, -1, 4, 0.25 };
    nb_tensor *gamma = nb_from_doubles(NB_F64, NB_SHAPE(D), g), *beta = nb_from_doubles(NB_F64, NB_SHAPE(D), b);
    nb_tensor *mean = NULL, *var = NULL;
    nb_tensor *out = nb_batchnorm_fused(x, gamma, beta, 1e-5, &mean, &var);
    ck_assert_ptr_nonnull(out);
    ck_assert(out->node == NULL && !out->requires_grad);   /* nothing required grad: no graph */
    nbt_assert_shape(mean, D);
    nbt_assert_shape(var, D);
    ck_assert(mean->node == NULL && var->node == NULL);
    /* column means = beta, biased stds = gamma·sqrt(var / (var + eps)) ≈ gamma */
    nb_tensor *out_mean = nb_mean_axes(out, NB_AXES(0), false);
    nb_tensor *out_std = nb_sqrt(nb_mean_axes(nb_square(nb_sub(out, out_mean)), NB_AXES(0), false));
    nbt_assert_values(out_mean, b, 1e-12);
    for (int j = 0; j < D; j++) {
        double v = nb_get(var, j), expected = g[j] * sqrt(v / (v + 1e-5));
        ck_assert_double_eq_tol(nb_get(out_std, j), expected, 1e-12 * g[j]);
        ck_assert_double_eq_tol(nb_get(out_std, j), g[j], 1e-4 * g[j]);
    }
    /* mean and var equal the batch statistics (biased variance) */
    nb_tensor *ref_mean = nb_mean_axes(x, NB_AXES(0), false);
    nb_tensor *ref_var = nb_mean_axes(nb_square(nb_sub(x, ref_mean)), NB_AXES(0), false);
    ck_assert(nbt_rel_error(mean, ref_mean) < 1e-13);
    ck_assert(nbt_rel_error(var, ref_var) < 1e-13);
    /* x with D=1 and N=1: x̂ = 0, out = beta */
    double one = 3.5;
    nb_tensor *single = nb_batchnorm_fused(nb_from_doubles(NB_F64, NB_SHAPE(1, 1), &one), nb_ones(NB_F64, NB_SHAPE(1)),
                                           nb_full(NB_F64, NB_SHAPE(1), 0.75), 1e-5, &mean, &var);
    double expected_single[1] = { 0.75 }, expected_mean[1] = { 3.5 }, zero[1] = { 0 };
    nbt_assert_values(single, expected_single, 0);
    nbt_assert_values(mean, expected_mean, 0);
    nbt_assert_values(var, zero, 0);
}
END_TEST

START_TEST(f32_agrees_with_f64)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(7, 3), -2, 2);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(3), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(3), -1, 1);
    nb_tensor *x32 = nb_detach(nb_cast(x, NB_F32)), *g32 = nb_detach(nb_cast(gamma, NB_F32));
    nb_tensor *b32 = nb_detach(nb_cast(beta, NB_F32));
    nb_set_requires_grad(x32, true);
    nb_set_requires_grad(g32, true);
    nb_set_requires_grad(b32, true);
    nb_tensor *mean32 = NULL;
    nb_tensor *y32 = nb_batchnorm_fused(x32, g32, b32, 1e-5, &mean32, NULL);
    nb_tensor *y64 = nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL);
    ck_assert_int_eq(y32->dtype, NB_F32);
    ck_assert_int_eq(mean32->dtype, NB_F32);
    for (int64_t i = 0; i < 21; i++) ck_assert_double_eq_tol(nb_get(y32, i), nb_get(y64, i), 1e-5);
    nb_tensor *dy = nb_randn(NB_F64, NB_SHAPE(7, 3), &rng, 1.0);
    nb_tensor *in64[3] = { x, gamma, beta }, *in32[3] = { x32, g32, b32 }, *g64[3], *gr32[3];
    ck_assert_int_eq(nb_grad(y64, dy, 3, in64, g64, false), 0);
    ck_assert_int_eq(nb_grad(y32, nb_cast(dy, NB_F32), 3, in32, gr32, false), 0);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(gr32[k]->dtype, NB_F32);
        for (int64_t i = 0; i < nb_numel(g64[k]); i++)
            ck_assert_double_eq_tol(nb_get(gr32[k], i), nb_get(g64[k], i), 1e-4);
    }
}
END_TEST

/* a leaf of dtype dt, values uniform in [lo, hi): of shape s, or given s as [N,H,W,C] and entering as
 * its [N,C,H,W] view when channels_last */
static nb_tensor *leaf(nb_rng *rng, nb_dtype dt, nb_shape s, bool channels_last, double lo, double hi)
{
    nb_tensor *x = nb_rand(dt, s, rng, lo, hi);
    if (channels_last) x = nb_detach(nb_permute(x, NB_AXES(0, 3, 1, 2)));
    nb_set_requires_grad(x, true);
    return x;
}

/* in = x, gamma, beta, skip: the epilogue's op (0 plain, 1 relu, 2 add_relu) at the current level;
 * res = out, mean, var, then the gradients of x, gamma, beta (and skip) for dy; returns their count */
static int run_epilogue(int epilogue, nb_tensor **in, nb_tensor *dy, nb_tensor **res)
{
    nb_tensor *out = epilogue == 0   ? nb_batchnorm_fused(in[0], in[1], in[2], 1e-5, &res[1], &res[2])
                     : epilogue == 1 ? nb_batchnorm_relu_fused(in[0], in[1], in[2], 1e-5, &res[1], &res[2])
                                     : nb_batchnorm_add_relu_fused(in[0], in[1], in[2], in[3], 1e-5, &res[1], &res[2]);
    ck_assert_msg(out != NULL, "%s", nb_last_error());
    res[0] = out;
    const int n_in = epilogue == 2 ? 4 : 3;
    ck_assert_int_eq(nb_grad(out, dy, n_in, in, res + 3, false), 0);
    return 3 + n_in;
}

/* Every instruction-set level (runtime.h) gives the generic kernels' bits: the sums keep their order
 * (LANES partial sums, blocks combined in block order) and ISO C allows no contraction into FMAs, so
 * vectorizing changes nothing. The row kernels on [N,D] and channels-last images and the channel
 * kernels on NCHW, each plain, with relu and with relu and skip (on NCHW the separate ops), f32 and
 * f64, forward (out, mean, var) and backward; threaded sizes, channel counts no vector width divides
 * and a last partial row block or vector. */
START_TEST(levels_agree)
{
    static const char *const epilogues[3] = { "plain", "relu", "add_relu" };
    const struct {
        nb_shape shape;       /* [N,H,W,C] when channels_last */
        bool channels_last;
        const char *what;
    } cases[3] = { { NB_SHAPE(1000, 67), false, "rows [1000,67]" },
                   { NB_SHAPE(8, 18, 18, 27), true, "channels-last [8,27,18,18]" },
                   { NB_SHAPE(16, 8, 23, 23), false, "NCHW [16,8,23,23]" } };
    nb_rng rng;
    nb_rng_seed(&rng, 23);
    for (int k = 0; k < 2 * 3 * 3; k++) {
        const nb_dtype dt = k < 9 ? NB_F32 : NB_F64;
        const int c = k / 3 % 3, epilogue = k % 3;
        const bool cl = cases[c].channels_last;
        const int64_t C = cases[c].shape.d[cl ? 3 : 1];
        nb_tensor *in[4] = { leaf(&rng, dt, cases[c].shape, cl, -3, 5), leaf(&rng, dt, NB_SHAPE(C), false, 0.5, 2),
                             leaf(&rng, dt, NB_SHAPE(C), false, -1, 1), leaf(&rng, dt, cases[c].shape, cl, -2, 2) };
        nb_tensor *dy = nb_randn(dt, nb_shape_of(in[0]), &rng, 1.0);
        nb_tensor *generic[7], *level_res[7];
        ck_assert_int_eq(nb_set_isa(NB_ISA_GENERIC), 0);
        const int n = run_epilogue(epilogue, in, dy, generic);
        for (int level = NB_ISA_AVX2; level <= (int)nb_isa_best(); level++) {
            ck_assert_int_eq(nb_set_isa((nb_isa)level), 0);
            ck_assert_int_eq(run_epilogue(epilogue, in, dy, level_res), n);
            char what[160];   /* then the index: out, mean, var, dx, dgamma, dbeta, dskip */
            snprintf(what, sizeof what, "%s %s %s at %s: result", nb_dtype_name(dt), cases[c].what,
                     epilogues[epilogue], nb_isa_name((nb_isa)level));
            for (int i = 0; i < n; i++) nbt_assert_same_bits(level_res[i], generic[i], what, i);
        }
        nb_scope_reset(NULL);
    }
    ck_assert_int_eq(nb_set_isa(nb_isa_best()), 0);
    printf("levels %s to %s: the same bits\n", nb_isa_name(NB_ISA_GENERIC), nb_isa_name(nb_isa_best()));
}
END_TEST

START_TEST(backward_via_nb_backward_accumulates)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(4, 2), -2, 2);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(2), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(2), -1, 1);
    nb_tensor *r = nb_randn(NB_F64, NB_SHAPE(4, 2), &rng, 1.0);
    ck_assert_int_eq(nb_backward(nb_sum(nb_mul(nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL), r))), 0);
    /* dβ = Σ_i r; dx columns sum to 0 */
    nb_tensor *col = nb_sum_axes(r, NB_AXES(0), false);
    ck_assert(nbt_rel_error(beta->grad, col) < 1e-14);
    double zeros[2] = { 0, 0 };
    nbt_assert_values(nb_sum_axes(x->grad, NB_AXES(0), false), zeros, 1e-12);
}
END_TEST

START_TEST(double_backward_is_a_clear_error)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(4, 3), -2, 2);
    nb_tensor *gamma = nbt_input(&rng, NB_SHAPE(3), 0.5, 2), *beta = nbt_input(&rng, NB_SHAPE(3), -1, 1);
    nb_tensor *r = nb_randn(NB_F64, NB_SHAPE(4, 3), &rng, 1.0);
    nb_tensor *loss = nb_sum(nb_mul(nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL), r));
    /* first order with create_graph works and records the backward kernel's outputs */
    nb_tensor *dx = NULL;
    ck_assert_int_eq(nb_grad(loss, NULL, 1, &x, &dx, true), 0);
    ck_assert(dx->requires_grad);
    ck_assert_ptr_nonnull(dx->node);
    /* the second order is refused, with or without create_graph */
    nb_tensor *second = nb_sum(nb_square(dx)), *ddx = NULL;
    nb_clear_error();
    ck_assert_int_eq(nb_grad(second, NULL, 1, &x, &ddx, true), -1);
    ck_assert_str_eq(nb_last_error(),
                     "nb_grad: nb_batchnorm_fused_backward cannot be differentiated (it is once-differentiable)");
    nb_clear_error();
    ck_assert_int_eq(nb_backward(second), -1);
    ck_assert_str_eq(nb_last_error(), "nb_backward: nb_batchnorm_fused_backward cannot be differentiated");
    /* without create_graph the gradients carry no graph */
    ck_assert_int_eq(nb_grad(loss, NULL, 1, &x, &dx, false), 0);
    ck_assert(!dx->requires_grad && dx->node == NULL);
}
END_TEST

START_TEST(errors)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(4, 3)), *g = nb_ones(NB_F64, NB_SHAPE(3)), *b = nb_zeros(NB_F64, NB_SHAPE(3));
    nbt_assert_error(nb_batchnorm_fused(nb_zeros(NB_F64, NB_SHAPE(4, 3, 1)), g, b, 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: x must be [N,D] or [N,C,H,W], got [4,3,1]");
    nbt_assert_error(nb_batchnorm_fused(x, nb_ones(NB_F64, NB_SHAPE(4)), b, 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: gamma [4] must be [3] to match x [4,3]");
    nbt_assert_error(nb_batchnorm_fused(x, g, nb_zeros(NB_F64, NB_SHAPE(1, 3)), 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: beta [1,3] must be [3] to match x [4,3]");
    nbt_assert_error(nb_batchnorm_fused(x, nb_ones(NB_F32, NB_SHAPE(3)), b, 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: dtypes differ: f64 [4,3] and f32 [3]");
    nbt_assert_error(nb_batchnorm_fused(nb_zeros(NB_I64, NB_SHAPE(4, 3)), g, b, 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: expected a f32 or f64 tensor, got i64 [4,3]");
    nbt_assert_error(nb_batchnorm_fused(nb_zeros(NB_F64, NB_SHAPE(0, 3)), g, b, 1e-5, NULL, NULL),
                     "nb_batchnorm_fused: x [0,3] has no rows to take statistics over");
    nbt_assert_error(nb_batchnorm_fused(x, g, b, -1, NULL, NULL), "nb_batchnorm_fused: eps must be >= 0, got -1");
    /* NULL in, NULL out (also in *mean), the first message kept */
    nb_tensor *mean = x;
    nb_clear_error();
    ck_assert_ptr_null(nb_batchnorm_fused(nb_reshape(x, NB_SHAPE(5)), g, b, 1e-5, &mean, NULL));
    ck_assert_ptr_null(mean);
    ck_assert_str_eq(nb_last_error(), "nb_reshape: cannot reshape [4,3] (12 elements) into [5]");
}
END_TEST

static Suite *batchnorm_suite(void)
{
    Suite *s = suite_create("batchnorm_fused");
    TCase *values = tcase_create("values");
    tcase_add_test(values, output_statistics_and_mean_var);
    tcase_add_test(values, f32_agrees_with_f64);
    tcase_add_test(values, levels_agree);
    tcase_add_test(values, errors);
    suite_add_tcase(s, values);
    TCase *grad = tcase_create("gradients");
    tcase_add_test(grad, matches_composed_f64);
    tcase_add_test(grad, matches_composed_strided);
    tcase_add_test(grad, matches_composed_spatial);
    tcase_add_test(grad, gradcheck_f64);
    tcase_add_test(grad, relu_variant);
    tcase_add_test(grad, add_relu_variant);
    tcase_add_test(grad, backward_via_nb_backward_accumulates);
    tcase_add_test(grad, double_backward_is_a_clear_error);
    suite_add_tcase(s, grad);
    return s;
}

NBT_MAIN(batchnorm_suite)
