/* Image ops (NCHW): unfold, fold, max_pool2d, avg_pool2d — hand-checked forward values (padding,
 * stride 2, asymmetric windows, strided inputs, f32), the cs231n conv and max-pool cases, the
 * fold/unfold overlap identity, max pooling's same bits at every instruction-set level, first and
 * second derivatives, and every error message. */
#include "nbtest.h"

#include <math.h>
#include <stdio.h>

/* 1, 2, 3, ... in row-major order */
static nb_tensor *counting(nb_dtype dt, nb_shape shape)
{
    int64_t n = 1;
    for (int i = 0; i < shape.ndim; i++) n *= shape.d[i];
    return nb_reshape(nb_arange(dt, 1, (double)n + 1, 1), shape);
}

/* ---- unfold and fold forward ---- */

START_TEST(unfold_basic)
{
    /* [[1,2,3],[4,5,6],[7,8,9]], 2x2 windows, stride 1: one row per kernel offset (i,j) */
    nb_tensor *cols = nb_unfold(counting(NB_F64, NB_SHAPE(1, 1, 3, 3)), NB_WINDOW(2, 1, 0));
    nbt_assert_shape(cols, 1, 4, 4);
    nbt_assert_values(cols, ((double[]){ 1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9 }), 0);
}
END_TEST

START_TEST(unfold_pad_stride)
{
    /* pad 1, stride 2: windows start at rows/columns -1 and 1 */
    nb_tensor *cols = nb_unfold(counting(NB_F64, NB_SHAPE(1, 1, 3, 3)), NB_WINDOW(2, 2, 1));
    nbt_assert_shape(cols, 1, 4, 4);
    nbt_assert_values(cols, ((double[]){ 0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9 }), 0);
}
END_TEST

START_TEST(unfold_channels_and_asymmetric_windows)
{
    /* two channels [[1,2,3],[4,5,6]] and [[7,8,9],[10,11,12]], a 1x2 window: rows c*2 + j */
    nb_tensor *x = counting(NB_F64, NB_SHAPE(1, 2, 2, 3));
    nb_tensor *cols = nb_unfold(x, (nb_window){ 1, 2, 1, 1, 0, 0 });
    nbt_assert_shape(cols, 1, 4, 4);
    nbt_assert_values(cols, ((double[]){ 1, 2, 4, 5, 2, 3, 5, 6, 7, 8, 10, 11, 8, 9, 11, 12 }), 0);
    /* a 3x1 window, stride 1 down and 2 across, padding 1 on top and bottom only */
    cols = nb_unfold(nb_slice(x, 1, 0, 1, 1), (nb_window){ 3, 1, 1, 2, 1, 0 });
    nbt_assert_shape(cols, 1, 3, 4);
    nbt_assert_values(cols, ((double[]){ 0, 0, 1, 3, 1, 3, 4, 6, 4, 6, 0, 0 }), 0);
}
END_TEST

START_TEST(unfold_strided_input)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_tensor *xt = nb_transpose(nb_randn(NB_F64, NB_SHAPE(2, 3, 6, 5), &rng, 1), 2, 3);
    nb_window w = { 3, 2, 2, 1, 1, 1 };
    nbt_assert_same(nb_unfold(xt, w), nb_unfold(nb_copy(xt), w), 0);
    nb_tensor *every_other = nb_slice(nb_randn(NB_F64, NB_SHAPE(2, 3, 5, 10), &rng, 1), 3, 1, 10, 2);
    nbt_assert_same(nb_unfold(every_other, w), nb_unfold(nb_copy(every_other), w), 0);
}
END_TEST

START_TEST(fold_basic)
{
    /* cols[r][l] = 4r + l + 1 folded back onto 3x3: each pixel sums the entries that read it */
    nb_tensor *img = nb_fold(counting(NB_F64, NB_SHAPE(1, 4, 4)), 3, 3, NB_WINDOW(2, 1, 0));
    nbt_assert_shape(img, 1, 1, 3, 3);
    nbt_assert_values(img, ((double[]){ 1, 7, 6, 12, 34, 22, 11, 27, 16 }), 0);
    /* ones: the number of windows covering each pixel */
    img = nb_fold(nb_ones(NB_F64, NB_SHAPE(1, 4, 4)), 3, 3, NB_WINDOW(2, 1, 0));
    nbt_assert_values(img, ((double[]){ 1, 2, 1, 2, 4, 2, 1, 2, 1 }), 0);
    /* pad 1, stride 2 = kernel: every pixel is read exactly once, so fold undoes unfold */
    nb_tensor *x = counting(NB_F64, NB_SHAPE(1, 1, 3, 3));
    nbt_assert_same(nb_fold(nb_unfold(x, NB_WINDOW(2, 2, 1)), 3, 3, NB_WINDOW(2, 2, 1)), x, 0);
}
END_TEST

START_TEST(fold_strided_input)
{
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    nb_window w = { 3, 2, 2, 1, 1, 1 };   /* over 6x5: 3x6 windows of 3·6 rows */
    nb_tensor *cols_t = nb_transpose(nb_randn(NB_F64, NB_SHAPE(2, 18, 18), &rng, 1), 1, 2);
    nbt_assert_same(nb_fold(cols_t, 6, 5, w), nb_fold(nb_copy(cols_t), 6, 5, w), 0);
}
END_TEST

/* windows along one axis covering pixel p: oh with 0 <= p + pad - oh*stride < k */
static int64_t coverage(int64_t p, int64_t size, int k, int stride, int pad)
{
    int64_t out = 1 + (size + 2 * pad - k) / stride, count = 0;
    for (int64_t o = 0; o < out; o++) {
        int64_t offset = p + pad - o * stride;
        count += offset >= 0 && offset < k;
    }
    return count;
}

/* fold(unfold(x)) = x · (number of windows reading each pixel) */
START_TEST(fold_unfold_overlap_count)
{
    nb_rng rng;
    nb_rng_seed(&rng, 6);
    const nb_window windows[] = { NB_WINDOW(3, 1, 1), NB_WINDOW(3, 2, 1), { 2, 3, 1, 2, 1, 0 }, NB_WINDOW(5, 3, 2) };
    const int64_t H = 5, W = 6;
    for (size_t k = 0; k < sizeof windows / sizeof windows[0]; k++) {
        nb_window w = windows[k];
        nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(2, 3, H, W), &rng, 1);
        nb_tensor *round_trip = nb_fold(nb_unfold(x, w), H, W, w);
        nbt_assert_shape(round_trip, 2, 3, H, W);
        for (int64_t i = 0; i < nb_numel(x); i++) {
            int64_t ih = i / W % H, iw = i % W;
            double count = (double)(coverage(ih, H, w.kh, w.stride_h, w.pad_h) * coverage(iw, W, w.kw, w.stride_w, w.pad_w));
            ck_assert_double_eq_tol(nb_get(round_trip, i), nb_get(x, i) * count, 1e-12);
        }
    }
}
END_TEST

/* cs231n C.8.7: convolution as w[F, C·HH·WW] @ unfold(x) + b */
START_TEST(conv_forward_cs231n)
{
    nb_tensor *x = nbt_linspace(-0.1, 0.5, NB_SHAPE(2, 3, 4, 4));
    nb_tensor *w = nbt_linspace(-0.2, 0.3, NB_SHAPE(3, 48));     /* (3,3,4,4) flattened per filter */
    nb_tensor *b = nbt_linspace(-0.1, 0.2, NB_SHAPE(3, 1));
    nb_tensor *cols = nb_unfold(x, NB_WINDOW(4, 2, 1));      /* [2, 48, 4] */
    nb_tensor *out = nb_reshape(nb_add(nb_matmul(w, cols), b), NB_SHAPE(2, 3, 2, 2));
    const double correct_out[] = { -0.08759809, -0.10987781, -0.18387192, -0.2109216, 0.21027089, 0.21661097,
                                   0.22847626,  0.23004637,  0.50813986,  0.54309974, 0.64082444, 0.67101435,
                                   -0.98053589, -1.03143541, -1.19128892, -1.24695841, 0.69108355, 0.66880383,
                                   0.59480972,  0.56776003,  2.36270298,  2.36904306,  2.38090835, 2.38247847 };
    nbt_assert_shape(out, 2, 3, 2, 2);
    nbt_assert_values(out, correct_out, 1e-8);
}
END_TEST

/* ---- pooling forward ---- */

/* cs231n C.8.8 */
START_TEST(max_pool_cs231n)
{
    nb_tensor *out = nb_max_pool2d(nbt_linspace(-0.3, 0.4, NB_SHAPE(2, 3, 4, 4)), NB_WINDOW(2, 2, 0));
    const double correct_out[] = { -0.26315789, -0.24842105, -0.20421053, -0.18947368, -0.14526316, -0.13052632,
                                   -0.08631579, -0.07157895, -0.02736842, -0.01263158, 0.03157895,  0.04631579,
                                   0.09052632,  0.10526316,  0.14947368,  0.16421053,  0.20842105,  0.22315789,
                                   0.26736842,  0.28210526,  0.32631579,  0.34105263,  0.38526316,  0.4 };
    nbt_assert_shape(out, 2, 3, 2, 2);
    nbt_assert_values(out, correct_out, 1e-8);
}
END_TEST

START_TEST(max_pool_padding_never_wins)
{
    /* [[-1,-2],[-3,-4]], 2x2 windows, stride 1, pad 1: a zero of padding would beat every value */
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(1, 1, 2, 2), (double[]){ -1, -2, -3, -4 });
    nb_set_requires_grad(x, true);
    nb_tensor *out = nb_max_pool2d(x, NB_WINDOW(2, 1, 1));
    nbt_assert_shape(out, 1, 1, 3, 3);
    nbt_assert_values(out, ((double[]){ -1, -1, -2, -1, -1, -2, -3, -3, -4 }), 0);
    /* each pixel's gradient counts the windows it wins */
    ck_assert_int_eq(nb_backward(nb_sum(out)), 0);
    nbt_assert_values(x->grad, ((double[]){ 4, 2, 2, 1 }), 0);
}
END_TEST

START_TEST(max_pool_ties_go_to_the_first)
{
    nb_tensor *x = nb_zeros(NB_F64, NB_SHAPE(1, 1, 2, 3));
    nb_set_requires_grad(x, true);
    nb_tensor *out = nb_max_pool2d(x, (nb_window){ 2, 2, 1, 1, 0, 0 });
    ck_assert_int_eq(nb_backward(nb_sum(out)), 0);
    nbt_assert_values(x->grad, ((double[]){ 1, 1, 0, 0, 0, 0 }), 0);
}
END_TEST

/* channels-last input ([N,H,W,C] memory, as nb_conv2d_fused makes) takes its own kernel: the same
 * values, the same first-maximum choice with ties and NaN, so the same gradients */
START_TEST(max_pool_channels_last_matches_contiguous)
{
    nb_rng rng;
    nb_rng_seed(&rng, 31);
    for (int k = 0; k < 3; k++) {   /* f32, f64, and rows wider than the backward's band of 4096 values */
        nb_dtype dt = k == 1 ? NB_F64 : NB_F32;
        nb_tensor *nhwc = nb_rand(dt, k < 2 ? NB_SHAPE(3, 7, 9, 5) : NB_SHAPE(2, 4, 9, 1100), &rng, -1, 1);
        nb_set(nhwc, 2, 2.0), nb_set(nhwc, 7, 2.0);     /* C = 5: a tie of pixels (0,0) and (0,1) in channel 2 */
        nb_set(nhwc, 43, NAN);                          /* pixel (1,0) of channel 3 */
        nb_tensor *cl = nb_detach(nb_permute(nhwc, NB_AXES(0, 3, 1, 2))), *plain = nb_contiguous(cl);
        ck_assert(!nb_is_contiguous(cl));
        nb_set_requires_grad(cl, true);
        nb_set_requires_grad(plain, true);
        nb_tensor *a = nb_max_pool2d(cl, NB_WINDOW(2, 2, 0)), *b = nb_max_pool2d(plain, NB_WINDOW(2, 2, 0));
        ck_assert_int_eq(nb_numel(a), nb_numel(b));
        for (int64_t i = 0; i < nb_numel(a); i++) {
            double x = nb_get(a, i), y = nb_get(b, i);
            ck_assert_msg((isnan(x) && isnan(y)) || x == y, "element %lld: %g != %g", (long long)i, x, y);
        }
        nb_tensor *w = nb_rand(dt, nb_shape_of(a), &rng, -1, 1);
        ck_assert_int_eq(nb_backward(nb_sum(nb_mul(a, w))), 0);
        ck_assert_int_eq(nb_backward(nb_sum(nb_mul(b, w))), 0);
        nbt_assert_same(cl->grad, plain->grad, 0);
    }
}
END_TEST

/* Max pooling at every instruction-set level (runtime.h) gives the generic kernels' values and
 * argmax (so gradients), bit for bit: comparisons only, no arithmetic. Channels-last and NCHW 2x2
 * windows and a 3x3, stride 2, pad 1 window, f32 and f64, forward and backward, with a tie and a NaN;
 * threaded sizes, odd (the last row and column in no 2x2 window), 56 channels (no multiple of 16). */
START_TEST(max_pool_levels_agree)
{
    const struct {
        bool channels_last;
        nb_window w;
        const char *what;
    } cases[3] = { { true, NB_WINDOW(2, 2, 0), "channels-last 2x2" }, { false, NB_WINDOW(2, 2, 0), "NCHW 2x2" },
                   { false, NB_WINDOW(3, 2, 1), "NCHW 3x3 stride 2 pad 1" } };
    nb_rng rng;
    nb_rng_seed(&rng, 32);
    for (int k = 0; k < 2 * 3; k++) {
        const nb_dtype dt = k < 3 ? NB_F32 : NB_F64;
        nb_tensor *nhwc = nb_rand(dt, NB_SHAPE(4, 19, 19, 56), &rng, -1, 1);
        nb_set(nhwc, 2, 2.0), nb_set(nhwc, 58, 2.0);   /* a tie of pixels (0,0) and (0,1) in channel 2 */
        nb_set(nhwc, 19 * 56 + 3, NAN);                 /* pixel (1,0) of channel 3 */
        nb_tensor *x = nb_detach(nb_permute(nhwc, NB_AXES(0, 3, 1, 2)));
        if (!cases[k % 3].channels_last) x = nb_contiguous(x);
        nb_set_requires_grad(x, true);
        nb_tensor *out[NB_ISA_AVX512 + 1], *dx[NB_ISA_AVX512 + 1], *dy = NULL;
        for (int level = NB_ISA_GENERIC; level <= (int)nb_isa_best(); level++) {
            ck_assert_int_eq(nb_set_isa((nb_isa)level), 0);
            out[level] = nb_max_pool2d(x, cases[k % 3].w);
            ck_assert_msg(out[level] != NULL, "%s", nb_last_error());
            if (!dy) dy = nb_rand(dt, nb_shape_of(out[level]), &rng, -1, 1);
            ck_assert_int_eq(nb_grad(out[level], dy, 1, &x, &dx[level], false), 0);
            char what[96];   /* then the index: 0 out, 1 dx */
            snprintf(what, sizeof what, "%s %s at %s: result", nb_dtype_name(dt), cases[k % 3].what,
                     nb_isa_name((nb_isa)level));
            nbt_assert_same_bits(out[level], out[NB_ISA_GENERIC], what, 0);
            nbt_assert_same_bits(dx[level], dx[NB_ISA_GENERIC], what, 1);
        }
    }
    ck_assert_int_eq(nb_set_isa(nb_isa_best()), 0);
}
END_TEST

START_TEST(avg_pool_forward)
{
    nb_tensor *x = counting(NB_F64, NB_SHAPE(1, 1, 3, 3));
    nb_tensor *out = nb_avg_pool2d(x, NB_WINDOW(2, 1, 0));
    nbt_assert_shape(out, 1, 1, 2, 2);
    nbt_assert_values(out, ((double[]){ 3, 4, 6, 7 }), 1e-15);
    /* padding counts as zeros, and the divisor stays 4 */
    out = nb_avg_pool2d(x, NB_WINDOW(2, 2, 1));
    nbt_assert_values(out, ((double[]){ 0.25, 1.25, 2.75, 7 }), 1e-15);
    /* a transposed input [[1,4,7],[2,5,8],[3,6,9]] */
    out = nb_avg_pool2d(nb_transpose(x, 2, 3), NB_WINDOW(2, 1, 0));
    nbt_assert_values(out, ((double[]){ 3, 6, 4, 7 }), 1e-15);
}
END_TEST

START_TEST(forward_f32)
{
    nb_tensor *x = counting(NB_F32, NB_SHAPE(1, 1, 3, 3));
    nb_tensor *cols = nb_unfold(x, NB_WINDOW(2, 2, 1));
    ck_assert_int_eq(cols->dtype, NB_F32);
    nbt_assert_values(cols, ((double[]){ 0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9 }), 0);
    nb_tensor *img = nb_fold(nb_ones(NB_F32, NB_SHAPE(1, 4, 4)), 3, 3, NB_WINDOW(2, 1, 0));
    ck_assert_int_eq(img->dtype, NB_F32);
    nbt_assert_values(img, ((double[]){ 1, 2, 1, 2, 4, 2, 1, 2, 1 }), 0);
    nb_tensor *mx = nb_max_pool2d(x, NB_WINDOW(2, 1, 0));
    ck_assert_int_eq(mx->dtype, NB_F32);
    nbt_assert_values(mx, ((double[]){ 5, 6, 8, 9 }), 0);
    nb_tensor *avg = nb_avg_pool2d(x, NB_WINDOW(2, 2, 1));
    ck_assert_int_eq(avg->dtype, NB_F32);
    nbt_assert_values(avg, ((double[]){ 0.25, 1.25, 2.75, 7 }), 1e-6);
}
END_TEST

/* ---- derivatives ---- */

typedef struct {
    nb_window w;
    int64_t h, width;   /* fold's output size */
    bool transpose;     /* the input enters with its last two axes swapped (a strided view) */
    bool square;        /* square the result, so the second derivative is not zero */
    bool channels_last; /* the input is given [N,H,W,C] and enters as its [N,C,H,W] view */
} image_case;

static nb_tensor *prepare(const image_case *c, nb_tensor *x)
{
    if (c->channels_last) x = nb_permute(x, NB_AXES(0, 3, 1, 2));
    return c->transpose ? nb_transpose(x, -1, -2) : x;
}
static nb_tensor *finish(const image_case *c, nb_tensor *y) { return c->square ? nb_square(y) : y; }

static nb_tensor *unfold_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const image_case *c = ctx;
    return finish(c, nb_unfold(prepare(c, in[0]), c->w));
}

static nb_tensor *fold_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const image_case *c = ctx;
    return finish(c, nb_fold(prepare(c, in[0]), c->h, c->width, c->w));
}

static nb_tensor *max_pool_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const image_case *c = ctx;
    return finish(c, nb_max_pool2d(prepare(c, in[0]), c->w));
}

static nb_tensor *avg_pool_f(void *ctx, int n, nb_tensor *const *in)
{
    (void)n;
    const image_case *c = ctx;
    return finish(c, nb_avg_pool2d(prepare(c, in[0]), c->w));
}

/* gradcheck of f on x and on a transposed input, then gradgradcheck of f² */
static void check_derivatives(nb_fn f, image_case c, nb_rng *rng, nb_shape shape, bool kinks)
{
    nb_tensor *x = nbt_input(rng, shape, -1, 1);
    nb_shape swapped = shape;
    swapped.d[shape.ndim - 1] = shape.d[shape.ndim - 2];
    swapped.d[shape.ndim - 2] = shape.d[shape.ndim - 1];
    nb_tensor *xt = nbt_input(rng, swapped, -1, 1);
    nbt_gradcheck(f, &c, 1, &x, 1e-7, kinks);
    c.transpose = true;
    nbt_gradcheck(f, &c, 1, &xt, 1e-7, kinks);
    c.transpose = false;
    c.square = true;
    nbt_gradgradcheck(f, &c, 1, &x, 1e-7);
}

START_TEST(unfold_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    check_derivatives(unfold_f, (image_case){ .w = NB_WINDOW(3, 2, 1) }, &rng, NB_SHAPE(2, 2, 5, 5), false);
    check_derivatives(unfold_f, (image_case){ .w = { 2, 3, 1, 2, 1, 0 } }, &rng, NB_SHAPE(1, 2, 4, 5), false);
}
END_TEST

START_TEST(fold_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    /* 5x5 with 3x3 windows, stride 2, pad 1: 3x3 windows of 2·9 rows */
    check_derivatives(fold_f, (image_case){ .w = NB_WINDOW(3, 2, 1), .h = 5, .width = 5 }, &rng, NB_SHAPE(1, 18, 9), false);
    /* 4x5 with 2x3 windows, stride 1x2, pad 1x0: 5x2 windows of 2·6 rows */
    check_derivatives(fold_f, (image_case){ .w = { 2, 3, 1, 2, 1, 0 }, .h = 4, .width = 5 }, &rng, NB_SHAPE(1, 12, 10), false);
}
END_TEST

START_TEST(max_pool_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    /* random values are distinct: no ties; skip_kinks guards against a step that changes a maximum */
    check_derivatives(max_pool_f, (image_case){ .w = NB_WINDOW(2, 2, 0) }, &rng, NB_SHAPE(2, 2, 4, 4), true);
    /* overlapping windows with padding: one pixel may win several windows */
    check_derivatives(max_pool_f, (image_case){ .w = NB_WINDOW(3, 1, 1) }, &rng, NB_SHAPE(1, 2, 4, 5), true);
    /* channels-last input (its own backward kernel), odd sizes: the last row and column are in no window */
    check_derivatives(max_pool_f, (image_case){ .w = NB_WINDOW(2, 2, 0), .channels_last = true }, &rng,
                      NB_SHAPE(2, 5, 5, 3), true);
}
END_TEST

START_TEST(avg_pool_gradients)
{
    nb_rng rng;
    nb_rng_seed(&rng, 10);
    check_derivatives(avg_pool_f, (image_case){ .w = NB_WINDOW(2, 2, 0) }, &rng, NB_SHAPE(2, 2, 4, 4), false);
    check_derivatives(avg_pool_f, (image_case){ .w = { 3, 2, 2, 1, 1, 1 } }, &rng, NB_SHAPE(1, 2, 5, 4), false);
}
END_TEST

/* ---- errors ---- */

START_TEST(window_errors)
{
    nb_tensor *x = counting(NB_F64, NB_SHAPE(1, 1, 3, 3));
    nbt_assert_error(nb_unfold(nb_ones(NB_F64, NB_SHAPE(3, 3)), NB_WINDOW(2, 1, 0)),
                     "nb_unfold: expected a 4-D [N,C,H,W] input, got [3,3]");
    nbt_assert_error(nb_unfold(nb_zeros(NB_I64, NB_SHAPE(1, 1, 3, 3)), NB_WINDOW(2, 1, 0)),
                     "nb_unfold: expected a f32 or f64 tensor, got i64 [1,1,3,3]");
    nbt_assert_error(nb_max_pool2d(nb_ones(NB_F64, NB_SHAPE(1, 1, 0, 3)), NB_WINDOW(2, 1, 1)), "nb_max_pool2d: empty image [1,1,0,3]");
    nbt_assert_error(nb_unfold(x, (nb_window){ 0, 3, 1, 1, 0, 0 }), "nb_unfold: kernel (0, 3) must be at least 1x1 for input [1,1,3,3]");
    nbt_assert_error(nb_unfold(x, NB_WINDOW(2, 0, 0)), "nb_unfold: stride 0 must be at least 1 for input [1,1,3,3]");
    nbt_assert_error(nb_unfold(x, (nb_window){ 2, 2, 1, 1, 0, -1 }), "nb_unfold: padding (0, -1) must not be negative for input [1,1,3,3]");
    nbt_assert_error(nb_unfold(x, NB_WINDOW(5, 1, 0)), "nb_unfold: kernel 5x5 larger than padded input [1,1,3,3] with padding 0");
    nbt_assert_error(nb_unfold(x, (nb_window){ 1, 6, 1, 1, 1, 0 }), "nb_unfold: kernel 1x6 larger than padded input [1,1,3,3] with padding (1, 0)");
    nbt_assert_error(nb_avg_pool2d(x, (nb_window){ 2, 2, 1, 0, 0, 0 }), "nb_avg_pool2d: stride (1, 0) must be at least 1 for input [1,1,3,3]");
    nbt_assert_error(nb_avg_pool2d(x, NB_WINDOW(6, 1, 1)), "nb_avg_pool2d: kernel 6x6 larger than padded input [1,1,3,3] with padding 1");
    nbt_assert_error(nb_max_pool2d(nb_ones(NB_F64, NB_SHAPE(1, 3, 3)), NB_WINDOW(2, 1, 0)),
                     "nb_max_pool2d: expected a 4-D [N,C,H,W] input, got [1,3,3]");
    nbt_assert_error(nb_max_pool2d(x, NB_WINDOW(3, 1, 2)), "nb_max_pool2d: padding 2 larger than half the kernel 3x3 for input [1,1,3,3]");
    nbt_assert_error(nb_max_pool2d(x, NB_WINDOW(4, 1, 0)), "nb_max_pool2d: kernel 4x4 larger than padded input [1,1,3,3] with padding 0");
}
END_TEST

START_TEST(fold_errors)
{
    nb_tensor *cols = nb_ones(NB_F64, NB_SHAPE(1, 4, 4));
    nbt_assert_error(nb_fold(nb_ones(NB_F64, NB_SHAPE(4, 4)), 3, 3, NB_WINDOW(2, 1, 0)),
                     "nb_fold: expected a 3-D [N,C*kh*kw,L] input, got [4,4]");
    nbt_assert_error(nb_fold(cols, 0, 3, NB_WINDOW(2, 1, 0)), "nb_fold: output size (0, 3) must be at least 1x1 for [1,4,4]");
    nbt_assert_error(nb_fold(cols, 3, 3, NB_WINDOW(2, -1, 0)), "nb_fold: stride -1 must be at least 1 for output 3x3");
    nbt_assert_error(nb_fold(cols, 3, 3, NB_WINDOW(5, 1, 0)), "nb_fold: kernel 5x5 larger than padded output 3x3 with padding 0");
    nbt_assert_error(nb_fold(nb_ones(NB_F64, NB_SHAPE(1, 5, 4)), 3, 3, NB_WINDOW(2, 1, 0)),
                     "nb_fold: [1,5,4] has 5 rows, not a multiple of kernel 2x2");
    nbt_assert_error(nb_fold(nb_ones(NB_F64, NB_SHAPE(1, 4, 5)), 3, 3, NB_WINDOW(2, 1, 0)),
                     "nb_fold: [1,4,5] has 5 columns but kernel 2x2 gives 2x2 windows over output 3x3");
}
END_TEST

/* a NULL input gives NULL and keeps the message of whatever failed first */
START_TEST(null_inputs_keep_first_error)
{
    nb_tensor *bad = nb_unfold(counting(NB_F64, NB_SHAPE(1, 1, 3, 3)), NB_WINDOW(5, 1, 0));
    const char *first = "nb_unfold: kernel 5x5 larger than padded input [1,1,3,3] with padding 0";
    ck_assert_ptr_null(bad);
    ck_assert_ptr_null(nb_unfold(bad, NB_WINDOW(2, 1, 0)));
    ck_assert_ptr_null(nb_fold(bad, 3, 3, NB_WINDOW(2, 1, 0)));
    ck_assert_ptr_null(nb_max_pool2d(bad, NB_WINDOW(2, 1, 0)));
    ck_assert_ptr_null(nb_avg_pool2d(bad, NB_WINDOW(2, 1, 0)));
    ck_assert_str_eq(nb_last_error(), first);
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *forward = tcase_create("forward");
    tcase_add_test(forward, unfold_basic);
    tcase_add_test(forward, unfold_pad_stride);
    tcase_add_test(forward, unfold_channels_and_asymmetric_windows);
    tcase_add_test(forward, unfold_strided_input);
    tcase_add_test(forward, fold_basic);
    tcase_add_test(forward, fold_strided_input);
    tcase_add_test(forward, fold_unfold_overlap_count);
    tcase_add_test(forward, conv_forward_cs231n);
    tcase_add_test(forward, max_pool_cs231n);
    tcase_add_test(forward, max_pool_padding_never_wins);
    tcase_add_test(forward, max_pool_ties_go_to_the_first);
    tcase_add_test(forward, max_pool_channels_last_matches_contiguous);
    tcase_add_test(forward, max_pool_levels_agree);
    tcase_add_test(forward, avg_pool_forward);
    tcase_add_test(forward, forward_f32);
    suite_add_tcase(s, forward);
    TCase *grads = tcase_create("gradients");
    tcase_add_test(grads, unfold_gradients);
    tcase_add_test(grads, fold_gradients);
    tcase_add_test(grads, max_pool_gradients);
    tcase_add_test(grads, avg_pool_gradients);
    suite_add_tcase(s, grads);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, window_errors);
    tcase_add_test(errors, fold_errors);
    tcase_add_test(errors, null_inputs_keep_first_error);
    suite_add_tcase(s, errors);
    return s;
}

NBT_MAIN(image_suite)
