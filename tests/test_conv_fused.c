/* nb_conv2d_fused: agreement with the composed nb_conv2d (forward and every gradient) over kernel
 * sizes, strides, paddings and batches that span several chunks, gradcheck, f32 against f64, no
 * bias, strided inputs, results independent of the thread count, the once-differentiable error and
 * argument errors. */
#include "nbtest.h"

#include <stdio.h>
#include <string.h>

typedef struct { int64_t n, c, h, w, f, k; int stride, pad; } case_t;

/* max |a - b| / max |b|: the error of sums relative to their scale (elementwise, an output that
 * cancels to near zero turns the summation order's last bits into a large relative error); infinite
 * when either holds a NaN where the other does not */
static double norm_error(const nb_tensor *a, const nb_tensor *b)
{
    ck_assert_msg(a && b, "NULL tensor: %s", nb_last_error());
    ck_assert_int_eq(nb_numel(a), nb_numel(b));
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < nb_numel(a); i++) {
        const double x = nb_get(a, i), y = nb_get(b, i);
        if (isnan(x) != isnan(y)) return INFINITY;
        if (!isnan(x)) diff = fmax(diff, fabs(x - y)), scale = fmax(scale, fabs(y));
    }
    return diff / fmax(scale, 1e-300);
}

/* forward and the gradients of x, w, b for a random upstream gradient, fused vs composed, f64 */
static void compare_case(case_t t)
{
    const double tol = 1e-12;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(t.n, t.c, t.h, t.w), -2, 2);
    nb_tensor *w = nbt_input(&rng, NB_SHAPE(t.f, t.c, t.k, t.k), -1, 1);
    nb_tensor *b = nbt_input(&rng, NB_SHAPE(t.f), -1, 1);
    nb_tensor *fused = nb_conv2d_fused(x, w, b, t.stride, t.pad);
    nb_tensor *reference = nb_conv2d(x, w, b, t.stride, t.pad);
    ck_assert_msg(fused != NULL, "%s", nb_last_error());
    ck_assert_int_eq(fused->ndim, 4);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(fused->shape[i], reference->shape[i]);
    double e_out = norm_error(fused, reference);
    nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0);
    nb_tensor *in[3] = { x, w, b }, *g_fused[3], *g_ref[3];
    ck_assert_int_eq(nb_grad(fused, dy, 3, in, g_fused, false), 0);
    ck_assert_int_eq(nb_grad(reference, dy, 3, in, g_ref, false), 0);
    double e[3];
    for (int k = 0; k < 3; k++) e[k] = norm_error(g_fused[k], g_ref[k]);
    /* x laid out channels-last (as a previous fused op gives it), padded with a row copy: the same */
    nb_tensor *x_cl = nb_detach(nb_permute(nb_contiguous(nb_permute(x, NB_AXES(0, 2, 3, 1))), NB_AXES(0, 3, 1, 2)));
    nb_set_requires_grad(x_cl, true);
    nb_tensor *fused_cl = nb_conv2d_fused(x_cl, w, b, t.stride, t.pad), *in_cl[3] = { x_cl, w, b }, *g_cl[3];
    nbt_assert_same(fused_cl, fused, 0);
    ck_assert_int_eq(nb_grad(fused_cl, dy, 3, in_cl, g_cl, false), 0);
    for (int k = 0; k < 3; k++) nbt_assert_same(g_cl[k], g_fused[k], 0);
    printf("fused vs composed x [%lld,%lld,%lld,%lld] w %lldx%lld s%d p%d: out %.2g dx %.2g dw %.2g db %.2g\n",
           (long long)t.n, (long long)t.c, (long long)t.h, (long long)t.w, (long long)t.k, (long long)t.k, t.stride,
           t.pad, e_out, e[0], e[1], e[2]);
    ck_assert_msg(e_out < tol, "forward error %g", e_out);
    for (int k = 0; k < 3; k++) ck_assert_msg(e[k] < tol, "gradient %d error %g", k, e[k]);

    /* the relu variant against relu(composed), with dy NCHW and dy channels-last (as a following
     * fused op gives it) */
    nb_tensor *fused_relu = nb_conv2d_relu_fused(x, w, b, t.stride, t.pad), *ref_relu = nb_relu(reference);
    ck_assert_msg(fused_relu != NULL, "%s", nb_last_error());
    ck_assert_msg(norm_error(fused_relu, ref_relu) < tol, "relu variant: forward error %g", norm_error(fused_relu, ref_relu));
    nb_tensor *dy_cl = nb_permute(nb_contiguous(nb_permute(dy, NB_AXES(0, 2, 3, 1))), NB_AXES(0, 3, 1, 2));
    /* dy channels-last: the kernel reads its rows in place */
    ck_assert_int_eq(nb_grad(fused, dy_cl, 3, in, g_cl, false), 0);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(norm_error(g_cl[k], g_fused[k]) < tol, "dy channels-last: gradient %d error %g", k,
                      norm_error(g_cl[k], g_fused[k]));
    nb_tensor *const upstream[2] = { dy, dy_cl };
    for (int u = 0; u < 2; u++) {
        ck_assert_int_eq(nb_grad(fused_relu, upstream[u], 3, in, g_fused, false), 0);
        ck_assert_int_eq(nb_grad(ref_relu, upstream[u], 3, in, g_ref, false), 0);
        for (int k = 0; k < 3; k++) {
            double err = norm_error(g_fused[k], g_ref[k]);
            ck_assert_msg(err < tol, "relu variant, dy %s: gradient %d error %g", u ? "channels-last" : "NCHW", k, err);
        }
    }

    /* the relu + 2x2 max pool variant against max_pool2d(relu(composed)) */
    nb_tensor *ref_pool = nb_max_pool2d(ref_relu, NB_WINDOW(2, 2, 0));
    nb_tensor *fused_pool = nb_conv2d_relu_pool_fused(x, w, b, t.stride, t.pad);
    if (!ref_pool) {   /* an output smaller than the window */
        ck_assert_ptr_null(fused_pool);
        ck_assert_msg(strstr(nb_last_error(), "nb_conv2d_relu_pool_fused: the 2x2 max pool needs a convolution output of at least 2x2"),
                      "%s", nb_last_error());
        return;
    }
    ck_assert_msg(fused_pool != NULL, "%s", nb_last_error());
    ck_assert_msg(norm_error(fused_pool, ref_pool) < tol, "relu + pool variant: forward error %g", norm_error(fused_pool, ref_pool));
    nb_tensor *dy_pool = nb_randn(NB_F64, nb_shape_of(ref_pool), &rng, 1.0);
    ck_assert_int_eq(nb_grad(fused_pool, dy_pool, 3, in, g_fused, false), 0);
    ck_assert_int_eq(nb_grad(ref_pool, dy_pool, 3, in, g_ref, false), 0);
    for (int k = 0; k < 3; k++) {
        double err = norm_error(g_fused[k], g_ref[k]);
        ck_assert_msg(err < tol, "relu + pool variant: gradient %d error %g", k, err);
    }
}

START_TEST(matches_composed)
{
    const case_t cases[] = {
        { 2, 3, 5, 5, 4, 3, 1, 1 },      /* 3x3 same */
        { 3, 2, 7, 6, 3, 3, 2, 1 },      /* stride 2, odd sizes */
        { 2, 3, 8, 8, 5, 1, 1, 0 },      /* 1x1 */
        { 1, 2, 6, 6, 2, 1, 2, 0 },      /* 1x1 stride 2 (a projection shortcut) */
        { 2, 3, 9, 9, 4, 7, 1, 3 },      /* 7x7 pad 3, as cs231n's convnet */
        { 2, 1, 4, 4, 2, 4, 1, 0 },      /* kernel as large as the image */
        { 5, 2, 32, 32, 3, 3, 1, 1 },    /* 1024 pixels: two images per chunk, three chunks */
        { 70, 2, 4, 4, 3, 3, 1, 1 },     /* 16 pixels: 128 images per chunk, one partial chunk */
        { 3, 24, 20, 20, 4, 3, 1, 1 },   /* K = 216: chunks of 5 images go through im2row in blocks of 256 rows */
        { 2, 24, 20, 20, 4, 3, 2, 1 },   /* the same with stride 2 */
        { 2, 10, 9, 7, 20, 3, 1, 0 },    /* no padding (dx's convolution pads gᵀ by 2); 20 filters, 10 channels:
                                          * full and partial panels of 8 doubles in y and dx */
        { 2, 3, 8, 8, 4, 3, 1, 2 },      /* padding as large as the kernel: dx by dcols */
        /* filters in whole panels of 8 doubles: dw straight from the padded x, in tiles of 6 taps */
        { 2, 3, 9, 9, 8, 3, 1, 1 },      /* K = 27: a last tile of 3 taps */
        { 3, 5, 20, 20, 16, 3, 1, 1 },   /* two panels; 1200 rows in blocks of 128 */
        { 2, 4, 11, 11, 8, 3, 2, 1 },    /* stride 2 */
        { 2, 3, 12, 12, 8, 7, 1, 3 },    /* 7x7 pad 3: K = 147 */
        { 5, 2, 32, 32, 8, 3, 1, 1 },    /* three chunks */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) compare_case(cases[i]);
}
END_TEST

static nb_tensor *fused_fn(void *ctx, int n, nb_tensor *const *in)
{
    const int *sp = ctx;
    return nb_conv2d_fused(in[0], in[1], n > 2 ? in[2] : NULL, sp[0], sp[1]);
}

static nb_tensor *fused_relu_fn(void *ctx, int n, nb_tensor *const *in)
{
    const int *sp = ctx;
    return nb_conv2d_relu_fused(in[0], in[1], n > 2 ? in[2] : NULL, sp[0], sp[1]);
}

static nb_tensor *fused_relu_pool_fn(void *ctx, int n, nb_tensor *const *in)
{
    const int *sp = ctx;
    return nb_conv2d_relu_pool_fused(in[0], in[1], n > 2 ? in[2] : NULL, sp[0], sp[1]);
}

START_TEST(gradcheck_f64)
{
    nb_rng rng;
    nb_rng_seed(&rng, 12);
    nb_tensor *in[3] = { nbt_input(&rng, NB_SHAPE(2, 2, 5, 4), -2, 2), nbt_input(&rng, NB_SHAPE(3, 2, 3, 3), -1, 1),
                         nbt_input(&rng, NB_SHAPE(3), -1, 1) };
    const int s1p1[2] = { 1, 1 }, s2p0[2] = { 2, 0 };
    nbt_gradcheck(fused_fn, (void *)s1p1, 3, in, 1e-7, false);
    nbt_gradcheck(fused_fn, (void *)s2p0, 3, in, 1e-7, false);
    nbt_gradcheck(fused_fn, (void *)s1p1, 2, in, 1e-7, false);   /* no bias */
    nb_set_requires_grad(in[0], false);                          /* only w and b */
    nbt_gradcheck(fused_fn, (void *)s1p1, 3, in, 1e-7, false);
    nb_set_requires_grad(in[0], true);
    nbt_gradcheck(fused_relu_fn, (void *)s1p1, 3, in, 1e-7, true);   /* skips steps across relu's kink */
    nbt_gradcheck(fused_relu_fn, (void *)s2p0, 2, in, 1e-7, true);
    nbt_gradcheck(fused_relu_pool_fn, (void *)s1p1, 3, in, 1e-7, true);   /* 5x4 -> 2x2 pooled: odd row dropped */
}
END_TEST

/* |a - b| ≤ tol·(1 + |b|) elementwise: f32 against f64, where relative error means nothing near zero */
static void assert_close(const nb_tensor *a, const nb_tensor *b, double tol, const char *what)
{
    ck_assert_int_eq(nb_numel(a), nb_numel(b));
    for (int64_t i = 0; i < nb_numel(a); i++)
        ck_assert_msg(fabs(nb_get(a, i) - nb_get(b, i)) <= tol * (1 + fabs(nb_get(b, i))), "%s[%lld]: %g vs %g", what,
                      (long long)i, nb_get(a, i), nb_get(b, i));
}

START_TEST(f32_agrees_with_f64_and_no_bias)
{
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    /* 20 filters, 18 channels: a full and a partial panel of 16 floats, for y (filters) and dx (channels) */
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(3, 18, 10, 9), -1, 1);
    nb_tensor *w = nbt_input(&rng, NB_SHAPE(20, 18, 3, 3), -1, 1);
    nb_tensor *x32 = nb_cast(x, NB_F32), *w32 = nb_cast(w, NB_F32);
    nb_set_requires_grad(x32, true);
    nb_set_requires_grad(w32, true);
    for (int pad = 0; pad <= 1; pad++) {
        nb_tensor *y64 = nb_conv2d_fused(x, w, NULL, 1, pad), *y32 = nb_conv2d_fused(x32, w32, NULL, 1, pad);
        ck_assert_int_eq(y32->dtype, NB_F32);
        assert_close(y32, y64, 1e-5, "y");
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(y64), &rng, 1.0), *dy32 = nb_cast(dy, NB_F32);
        nb_tensor *in64[2] = { x, w }, *in32[2] = { x32, w32 }, *g64[2], *g32[2];
        ck_assert_int_eq(nb_grad(y64, dy, 2, in64, g64, false), 0);
        ck_assert_int_eq(nb_grad(y32, dy32, 2, in32, g32, false), 0);
        assert_close(g32[0], g64[0], 1e-5, "dx");
        assert_close(g32[1], g64[1], 1e-4, "dw");   /* sums over 270 pixels */
    }
    /* 16 and 32 filters: dw straight from the padded x, in one and two panels of 16 floats, over 4800
     * rows in blocks of 256 and 128 (f64: 8 filters to a panel, also direct) */
    for (int64_t f = 16; f <= 32; f += 16) {
        nb_tensor *xb = nbt_input(&rng, NB_SHAPE(3, 5, 40, 40), -1, 1), *wb = nbt_input(&rng, NB_SHAPE(f, 5, 3, 3), -1, 1);
        nb_tensor *xb32 = nb_cast(xb, NB_F32), *wb32 = nb_cast(wb, NB_F32);
        nb_set_requires_grad(wb32, true);
        nb_tensor *y64 = nb_conv2d_fused(xb, wb, NULL, 1, 1), *y32 = nb_conv2d_fused(xb32, wb32, NULL, 1, 1);
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(y64), &rng, 1.0), *g64, *g32;
        ck_assert_int_eq(nb_grad(y64, dy, 1, &wb, &g64, false), 0);
        ck_assert_int_eq(nb_grad(y32, nb_cast(dy, NB_F32), 1, &wb32, &g32, false), 0);
        assert_close(g32, g64, 1e-4, f == 16 ? "dw, 16 filters" : "dw, 32 filters");   /* sums over 4800 pixels */
    }
    /* odd sizes of every scratch region (36 rows, K = 4, 57 padded floats): the kernel's offsets stay aligned */
    nb_tensor *xs = nbt_input(&rng, NB_SHAPE(1, 1, 5, 5), -1, 1), *ws = nbt_input(&rng, NB_SHAPE(16, 1, 2, 2), -1, 1);
    nb_tensor *xs32 = nb_detach(nb_cast(xs, NB_F32)), *ws32 = nb_cast(ws, NB_F32), *gs64, *gs32;   /* no dx */
    nb_set_requires_grad(ws32, true);
    nb_tensor *ys64 = nb_conv2d_fused(xs, ws, NULL, 1, 1), *ys32 = nb_conv2d_fused(xs32, ws32, NULL, 1, 1);
    nb_tensor *dys = nb_randn(NB_F64, nb_shape_of(ys64), &rng, 1.0);
    ck_assert_int_eq(nb_grad(ys64, dys, 1, &ws, &gs64, false), 0);
    ck_assert_int_eq(nb_grad(ys32, nb_cast(dys, NB_F32), 1, &ws32, &gs32, false), 0);
    assert_close(gs32, gs64, 1e-5, "dw, 5x5 image");
    /* no bias = a zero bias */
    nb_tensor *y64 = nb_conv2d_fused(x, w, NULL, 1, 1);
    nb_tensor *y_zero = nb_conv2d_fused(x, w, nb_zeros(NB_F64, NB_SHAPE(20)), 1, 1);
    ck_assert(nbt_rel_error(y64, y_zero) == 0);
}
END_TEST

START_TEST(strided_inputs)
{
    nb_rng rng;
    nb_rng_seed(&rng, 14);
    /* x as a permuted view of an NHWC tensor (channels-last: read in place, taps in the padding are
     * zeros), w as a transposed view; values and the gradients of x and w */
    nb_tensor *x = nb_detach(nb_permute(nb_rand(NB_F64, NB_SHAPE(2, 6, 5, 3), &rng, -1, 1), NB_AXES(0, 3, 1, 2)));
    nb_tensor *w = nb_detach(nb_transpose(nb_rand(NB_F64, NB_SHAPE(3, 4, 3, 3), &rng, -1, 1), 0, 1));
    ck_assert(!nb_is_contiguous(x) && !nb_is_contiguous(w));
    nb_set_requires_grad(x, true);
    nb_set_requires_grad(w, true);
    nb_tensor *b = nb_rand(NB_F64, NB_SHAPE(4), &rng, -1, 1);
    const int settings[4][2] = { { 1, 1 }, { 2, 1 }, { 2, 0 }, { 1, 2 } };   /* stride, pad */
    for (int k = 0; k < 4; k++) {
        int stride = settings[k][0], pad = settings[k][1];
        nb_tensor *fused = nb_conv2d_fused(x, w, b, stride, pad), *reference = nb_conv2d(x, w, b, stride, pad);
        double e = nbt_rel_error(fused, reference);
        ck_assert_msg(e < 1e-11, "stride %d pad %d: rel error %g", stride, pad, e);   /* rounding near zero */
        nb_tensor *dy = nb_randn(NB_F64, nb_shape_of(fused), &rng, 1.0), *in[2] = { x, w }, *gf[2], *gr[2];
        ck_assert_int_eq(nb_grad(fused, dy, 2, in, gf, false), 0);
        ck_assert_int_eq(nb_grad(reference, dy, 2, in, gr, false), 0);
        for (int i = 0; i < 2; i++) ck_assert_msg(nbt_rel_error(gf[i], gr[i]) < 1e-11, "stride %d pad %d: gradient %d", stride, pad, i);
    }
}
END_TEST

/* y and the three gradients with the given thread count */
static void run_with_threads(int threads, nb_tensor **out)
{
    ck_assert_int_eq(nb_set_num_threads(threads), 0);
    nb_rng rng;
    nb_rng_seed(&rng, 15);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(9, 3, 32, 32), -1, 1);
    nb_tensor *w = nbt_input(&rng, NB_SHAPE(8, 3, 3, 3), -1, 1);
    nb_tensor *b = nbt_input(&rng, NB_SHAPE(8), -1, 1);
    nb_tensor *xs[3] = { nb_cast(x, NB_F32), nb_cast(w, NB_F32), nb_cast(b, NB_F32) };
    for (int k = 0; k < 3; k++) nb_set_requires_grad(xs[k], true);
    out[0] = nb_conv2d_fused(xs[0], xs[1], xs[2], 1, 1);
    ck_assert_int_eq(nb_grad(nb_sum(nb_square(out[0])), NULL, 3, xs, out + 1, false), 0);
}

START_TEST(same_results_on_any_thread_count)
{
    nb_tensor *one[4], *two[4];
    run_with_threads(1, one);
    run_with_threads(2, two);
    nb_set_num_threads(1);
    for (int k = 0; k < 4; k++) nbt_assert_same_bits(one[k], two[k], "result", k);
}
END_TEST

/* y (relu, and relu + pool) and the gradients of x, w and b at one instruction-set level, for filter
 * counts that take each tile: 8 and 20 (partial panels), 16 and 32 (the wide AVX-512 panels in f32),
 * with 5 channels (odd runs of taps), 4 and 8 channels (even runs: the paired AVX-512 tiles), and 9
 * channels (a 16-filter dw tile's 24 taps in one run); in f32 and f64; 7x9 images, so the last tile
 * of pixels is partial */
#define ISA_CASES 8
static const int64_t isa_filters[ISA_CASES] = { 8, 16, 20, 32, 16, 8, 16, 16 };
static const int64_t isa_channels[ISA_CASES] = { 5, 5, 5, 5, 4, 4, 8, 9 };
#define ISA_RESULTS (ISA_CASES * 2 * 2 * 5)
static void run_at_level(nb_isa level, nb_tensor **out)
{
    ck_assert_int_eq(nb_set_isa(level), 0);
    int k = 0;
    for (int c = 0; c < ISA_CASES; c++)
        for (int d = 0; d < 2; d++)
            for (int pool = 0; pool < 2; pool++) {
                nb_rng rng;
                nb_rng_seed(&rng, 40 + (uint64_t)c);
                const nb_dtype dt = d ? NB_F64 : NB_F32;
                nb_tensor *x = nb_randn(dt, NB_SHAPE(3, isa_channels[c], 7, 9), &rng, 1.0);
                nb_tensor *w = nb_randn(dt, NB_SHAPE(isa_filters[c], isa_channels[c], 3, 3), &rng, 0.3);
                nb_tensor *b = nb_randn(dt, NB_SHAPE(isa_filters[c]), &rng, 0.3);
                nb_tensor *in[3] = { x, w, b };
                for (int i = 0; i < 3; i++) nb_set_requires_grad(in[i], true);
                nb_tensor *y = pool ? nb_conv2d_relu_pool_fused(x, w, b, 1, 1) : nb_conv2d_relu_fused(x, w, b, 1, 1);
                ck_assert_ptr_nonnull(y);
                out[k++] = nb_contiguous(y);
                ck_assert_int_eq(nb_grad(nb_sum(nb_mul(y, nb_randn(dt, nb_shape_of(y), &rng, 1.0))), NULL, 3, in, out + k,
                                         false), 0);
                out[k] = nb_contiguous(out[k]);   /* dx is channels-last */
                k += 3;
                out[k++] = nb_conv2d_fused(x, w, NULL, 2, 1);   /* stride 2: dx through BLIS, no bias */
            }
    ck_assert_int_eq(k, ISA_RESULTS);
}

/* whether run_at_level's result k went through AVX-512's paired convolution tiles: a convolution with
 * fewer filters than a wide panel (32 f32, 16 f64) whose windows have even runs of taps (3·channels);
 * the forward (y, y with stride 2) has F filters over C channels, dx's convolution C over F */
static bool isa_paired(int k)
{
    const int c = k / 20, wide = (k / 10) % 2 ? 16 : 32, result = k % 5;   /* per case: f32 then f64, 2 pools */
    const int64_t F = isa_filters[c], C = isa_channels[c];
    if (result == 0 || result == 4) return F % wide != 0 && 3 * C % 2 == 0;
    return result == 1 && C % wide != 0 && 3 * F % 2 == 0;
}

/* max |a - b| / max |b| */
static double scaled_error(const nb_tensor *a, const nb_tensor *b)
{
    ck_assert_int_eq(nb_numel(a), nb_numel(b));
    double diff = 0, scale = 1e-300;
    for (int64_t i = 0; i < nb_numel(a); i++) {
        diff = fmax(diff, fabs(nb_get(a, i) - nb_get(b, i)));
        scale = fmax(scale, fabs(nb_get(b, i)));
    }
    return diff / scale;
}

/* The generic level has no FMA (a product rounded before each add), and AVX-512's paired convolution
 * tiles sum the even and odd taps apart: within 1e-5 (f32) and 1e-13 (f64) of AVX2, relative to each
 * result's largest value. Otherwise AVX2 and AVX-512 add the same products in the same order: the
 * same bits (every dw and db, and the forward of the 5-channel cases) */
START_TEST(same_results_at_every_isa_level)
{
    const nb_isa best = nb_isa_best();
    nb_tensor *at[3][ISA_RESULTS];
    for (int level = NB_ISA_GENERIC; level <= (int)best; level++) run_at_level((nb_isa)level, at[level]);
    ck_assert_int_eq(nb_set_isa(best), 0);
    for (int k = 0; k < ISA_RESULTS; k++) {
        const double tol = at[0][k]->dtype == NB_F32 ? 1e-5 : 1e-13;
        const bool paired = isa_paired(k);
        if (best == NB_ISA_AVX512 && !paired) nbt_assert_same_bits(at[NB_ISA_AVX2][k], at[NB_ISA_AVX512][k], "AVX2 and AVX-512", k);
        if (best == NB_ISA_AVX512 && paired) {
            const double e = scaled_error(at[NB_ISA_AVX512][k], at[NB_ISA_AVX2][k]);
            ck_assert_msg(e < tol, "result %d: AVX-512 (paired tiles) and AVX2 differ by %g", k, e);
        }
        if (best >= NB_ISA_AVX2) {
            const double e = scaled_error(at[NB_ISA_GENERIC][k], at[NB_ISA_AVX2][k]);
            ck_assert_msg(e < tol, "result %d: generic and AVX2 differ by %g", k, e);
        }
    }
    if (best < NB_ISA_AVX512) ck_assert_int_eq(nb_set_isa(NB_ISA_AVX512), -1);
}
END_TEST

START_TEST(double_backward_is_a_clear_error)
{
    nb_rng rng;
    nb_rng_seed(&rng, 16);
    nb_tensor *x = nbt_input(&rng, NB_SHAPE(1, 1, 4, 4), -1, 1), *w = nbt_input(&rng, NB_SHAPE(1, 1, 3, 3), -1, 1);
    nb_tensor *g = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(nb_square(nb_conv2d_fused(x, w, NULL, 1, 1))), NULL, 1, &x, &g, true), 0);
    nb_tensor *gg = NULL;
    ck_assert_int_eq(nb_grad(nb_sum(g), NULL, 1, &w, &gg, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_grad: nb_conv2d_fused_backward cannot be differentiated");
}
END_TEST

START_TEST(errors)
{
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(2, 3, 5, 5)), *w = nb_zeros(NB_F32, NB_SHAPE(4, 3, 3, 3));
    nbt_assert_error(nb_conv2d_fused(x, nb_zeros(NB_F32, NB_SHAPE(4, 2, 3, 3)), NULL, 1, 1),
                     "nb_conv2d_fused: w is [4,2,3,3] but x is [2,3,5,5] (channels differ)");
    nbt_assert_error(nb_conv2d_fused(x, w, nb_zeros(NB_F32, NB_SHAPE(3)), 1, 1),
                     "nb_conv2d_fused: b is [3] but w is [4,3,3,3] (expected [4])");
    nbt_assert_error(nb_conv2d_fused(x, w, NULL, 0, 1), "nb_conv2d_fused: stride 0 must be at least 1");
    nbt_assert_error(nb_conv2d_fused(x, nb_zeros(NB_F32, NB_SHAPE(4, 3, 9, 9)), NULL, 1, 1),
                     "nb_conv2d_fused: kernel 9x9 does not fit x [2,3,5,5] with padding 1");
    nbt_assert_error(nb_conv2d_fused(x, nb_zeros(NB_F64, NB_SHAPE(4, 3, 3, 3)), NULL, 1, 1),
                     "nb_conv2d_fused: dtypes differ: f32 [2,3,5,5] and f64 [4,3,3,3]");
    nbt_assert_error(nb_conv2d_fused(nb_zeros(NB_F32, NB_SHAPE(3, 5, 5)), w, NULL, 1, 1),
                     "nb_conv2d_fused: expected a 4-D [N,C,H,W] x, got [3,5,5]");
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("conv_fused");
    TCase *c = tcase_create("conv_fused");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, matches_composed);
    tcase_add_test(c, gradcheck_f64);
    tcase_add_test(c, f32_agrees_with_f64_and_no_bias);
    tcase_add_test(c, strided_inputs);
    tcase_add_test(c, same_results_at_every_isa_level);
    tcase_add_test(c, double_backward_is_a_clear_error);
    tcase_add_test(c, errors);
    suite_add_tcase(s, c);
    /* OpenMP teams of several threads: left out of the ThreadSanitizer run (tools/tsan.sh) */
    c = tcase_create("openmp");
    tcase_set_tags(c, "openmp");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, same_results_on_any_thread_count);
    suite_add_tcase(s, c);
    return s;
}

NBT_MAIN(conv_suite)
