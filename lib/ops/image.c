/* Image ops on NCHW tensors: unfold (im2col) and its adjoint fold (col2im), max pooling, and
 * average pooling composed from unfold and mean. Window geometry, per spatial axis:
 *   output size  H' = 1 + (H + 2·pad - k) / stride
 *   output row oh reads input rows ih = oh·stride - pad + i for kernel row i in [0, k)
 * and the same along the width. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>

/* ---- window checks and geometry ---- */

static int64_t out_size(int64_t size, int k, int stride, int pad) { return 1 + (size + 2 * (int64_t)pad - k) / stride; }

/* "3" when both axes agree, else "(3, 1)" (not "0x-1", which reads as hex): for messages */
static const char *pair_text(char *buf, size_t size, int h, int w)
{
    if (h == w) snprintf(buf, size, "%d", h);
    else snprintf(buf, size, "(%d, %d)", h, w);
    return buf;
}

/* Validates the window against an image of h x w pixels; `image` names that image in messages
 * (e.g. "input [1,1,3,3]"). */
static bool check_window(const char *op, nb_window win, int64_t h, int64_t w, const char *image)
{
    char stride[32], pad[32];
    pair_text(stride, sizeof stride, win.stride_h, win.stride_w);
    pair_text(pad, sizeof pad, win.pad_h, win.pad_w);
    if (win.kh < 1 || win.kw < 1) {
        char kernel[32];
        nb_error("%s: kernel %s must be at least 1x1 for %s", op, pair_text(kernel, sizeof kernel, win.kh, win.kw), image);
        return false;
    }
    if (win.stride_h < 1 || win.stride_w < 1) {
        nb_error("%s: stride %s must be at least 1 for %s", op, stride, image);
        return false;
    }
    if (win.pad_h < 0 || win.pad_w < 0) {
        nb_error("%s: padding %s must not be negative for %s", op, pad, image);
        return false;
    }
    /* the padded image's area bounds the count of windows: both must fit before anything is multiplied */
    const int64_t padded[2] = { h + 2 * (int64_t)win.pad_h, w + 2 * (int64_t)win.pad_w };
    if (h > INT64_MAX / 2 - win.pad_h || w > INT64_MAX / 2 - win.pad_w || !nb_sizes_fit(2, padded, 1)) {
        nb_error("%s: %s with padding %s is too large (its size overflows)", op, image, pad);
        return false;
    }
    if (win.kh > padded[0] || win.kw > padded[1]) {
        nb_error("%s: kernel %dx%d larger than padded %s with padding %s", op, win.kh, win.kw, image, pad);
        return false;
    }
    return true;
}

/* x is a float [N,C,H,W] tensor and the window fits it */
static bool check_image(const char *op, const nb_tensor *x, nb_window win)
{
    if (!nb_check_float(op, x)) return false;
    if (x->ndim != 4) {
        nb_error("%s: expected a 4-D [N,C,H,W] input, got %s", op, nb_shp(x));
        return false;
    }
    if (x->shape[2] < 1 || x->shape[3] < 1) {   /* a max over a window of no pixels has no value */
        nb_error("%s: empty image %s", op, nb_shp(x));
        return false;
    }
    char image[160];
    snprintf(image, sizeof image, "input %s", nb_shp(x));
    if (!check_window(op, win, x->shape[2], x->shape[3], image)) return false;
    /* the im2col matrix [N, C·kh·kw, H'·W'] bounds every size the image ops compute */
    const int64_t cols[6] = { x->shape[0], x->shape[1], win.kh, win.kw, out_size(x->shape[2], win.kh, win.stride_h, win.pad_h),
                              out_size(x->shape[3], win.kw, win.stride_w, win.pad_w) };
    if (!nb_sizes_fit(6, cols, nb_dtype_size(x->dtype))) {
        char stride[32], pad[32];
        nb_error("%s: the %dx%d windows (stride %s, padding %s) of %s are too many (their size overflows)", op, win.kh,
                 win.kw, pair_text(stride, sizeof stride, win.stride_h, win.stride_w),
                 pair_text(pad, sizeof pad, win.pad_h, win.pad_w), image);
        return false;
    }
    return true;
}

static void window_to_node(nb_node *n, nb_window w)
{
    if (!n) return;
    const int64_t a[6] = { w.kh, w.kw, w.stride_h, w.stride_w, w.pad_h, w.pad_w };
    memcpy(n->iarg, a, sizeof a);
}

static nb_window window_of_node(const nb_node *n)
{
    const int64_t *a = n->iarg;
    return (nb_window){ (int)a[0], (int)a[1], (int)a[2], (int)a[3], (int)a[4], (int)a[5] };
}

/* ---- the im2col walk, shared by unfold and fold ---- */

/* n elements along strides (in elements): dst[k·ds] = src[k·ss], or += when add */
#define MOVE_ROW(T)                                                          \
    do {                                                                     \
        T *d = (T *)dst;                                                     \
        const T *s = (const T *)src;                                         \
        if (add)                                                             \
            for (int64_t k = 0; k < n; k++) d[k * ds] += s[k * ss];          \
        else if (ds == 1 && ss == 1)                                         \
            memcpy(d, s, (size_t)n * sizeof(T));                             \
        else                                                                 \
            for (int64_t k = 0; k < n; k++) d[k * ds] = s[k * ss];           \
    } while (0)

static void move_row(nb_dtype dt, void *dst, int64_t ds, const void *src, int64_t ss, int64_t n, bool add)
{
    if (dt == NB_F32) MOVE_ROW(float);
    else MOVE_ROW(double);
}

/* n zeros along stride ds (elements) */
static void zero_row(nb_dtype dt, char *dst, int64_t ds, int64_t n)
{
    int64_t es = (int64_t)nb_dtype_size(dt);
    if (ds == 1) memset(dst, 0, (size_t)(n * es));
    else for (int64_t k = 0; k < n; k++) memset(dst + k * ds * es, 0, (size_t)es);
}

/* The one loop behind unfold and fold. img:[N,C,H,W], cols:[N, C·kh·kw, H'·W'], any strides.
 * Row (c·kh + i)·kw + j, column oh·W' + ow of cols pairs with pixel
 * (ih, iw) = (oh·sh - ph + i, ow·sw - pw + j) of channel c when that pixel is inside the image:
 *   unfold (to_cols): cols[row][col] = img[c][ih][iw], and 0 where the pixel is padding
 *   fold:             img[c][ih][iw] += cols[row][col]  (img starts zeroed: overlaps add up)
 * The inner loop runs along ow, contiguous in a fresh cols. Images are independent: one per thread. */
static void im2col_walk(nb_tensor *img, nb_tensor *cols, nb_window win, bool to_cols)
{
    const int64_t N = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
    const int64_t OH = out_size(H, win.kh, win.stride_h, win.pad_h), OW = out_size(W, win.kw, win.stride_w, win.pad_w);
    const int64_t *is = img->stride, *cs = cols->stride;
    const nb_dtype dt = img->dtype;
    const int64_t es = (int64_t)nb_dtype_size(dt);
    char *img_data = img->data, *cols_data = cols->data;
    const bool parallel = N > 1 && C * win.kh * win.kw * OH * OW * N >= 65536;
#pragma omp parallel for if (parallel) num_threads(nb_parallel_threads()) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int i = 0; i < win.kh; i++)
                for (int j = 0; j < win.kw; j++) {
                    int64_t row = ((int64_t)c * win.kh + i) * win.kw + j;
                    /* columns ow whose pixel iw = ow·sw + shift lies in [0, W) form one run [ow_lo, ow_hi) */
                    int64_t shift = (int64_t)j - win.pad_w;
                    int64_t ow_lo = shift >= 0 ? 0 : (-shift + win.stride_w - 1) / win.stride_w;
                    int64_t ow_hi = W - 1 - shift < 0 ? 0 : (W - 1 - shift) / win.stride_w + 1;
                    if (ow_hi > OW) ow_hi = OW;
                    if (ow_hi < ow_lo) ow_hi = ow_lo;
                    for (int64_t oh = 0; oh < OH; oh++) {
                        int64_t ih = oh * win.stride_h - win.pad_h + i;
                        char *col = cols_data + (n * cs[0] + row * cs[1] + oh * OW * cs[2]) * es;
                        bool inside = ih >= 0 && ih < H && ow_hi > ow_lo;
                        if (!inside) {
                            if (to_cols) zero_row(dt, col, cs[2], OW);
                            continue;
                        }
                        char *pixel = img_data + (n * is[0] + c * is[1] + ih * is[2] + (ow_lo * win.stride_w + shift) * is[3]) * es;
                        int64_t pixel_step = win.stride_w * is[3];
                        if (to_cols) {
                            zero_row(dt, col, cs[2], ow_lo);
                            move_row(dt, col + ow_lo * cs[2] * es, cs[2], pixel, pixel_step, ow_hi - ow_lo, false);
                            zero_row(dt, col + ow_hi * cs[2] * es, cs[2], OW - ow_hi);
                        } else {
                            move_row(dt, pixel, pixel_step, col + ow_lo * cs[2] * es, cs[2], ow_hi - ow_lo, true);
                        }
                    }
                }
}

/* ---- unfold / fold: each is the other's backward ---- */

static int unfold_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0];
    return (gin[0] = nb_fold(g, x->shape[2], x->shape[3], window_of_node(n))) ? 0 : -1;
}
static const nb_op unfold_op = { .name = "nb_unfold", .backward = unfold_backward, .values_unused = true };

nb_tensor *nb_unfold(nb_tensor *x, nb_window w)
{
    if (!x) return nb_null_input("nb_unfold");
    if (!check_image("nb_unfold", x, w)) return NULL;
    int64_t L = out_size(x->shape[2], w.kh, w.stride_h, w.pad_h) * out_size(x->shape[3], w.kw, w.stride_w, w.pad_w);
    nb_tensor *cols = nb_new("nb_unfold", x->dtype, 3, (int64_t[]){ x->shape[0], x->shape[1] * w.kh * w.kw, L });
    if (!cols) return NULL;   /* every element is written below: padding as 0 */
    im2col_walk(x, cols, w, true);
    window_to_node(nb_record(&unfold_op, cols, 1, &x), w);
    return cols;
}

static int fold_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_unfold(g, window_of_node(n))) ? 0 : -1;
}
static const nb_op fold_op = { .name = "nb_fold", .backward = fold_backward, .values_unused = true };

nb_tensor *nb_fold(nb_tensor *cols, int64_t h, int64_t w, nb_window win)
{
    if (!cols) return nb_null_input("nb_fold");
    if (!nb_check_float("nb_fold", cols)) return NULL;
    if (cols->ndim != 3) {
        nb_error("nb_fold: expected a 3-D [N,C*kh*kw,L] input, got %s", nb_shp(cols));
        return NULL;
    }
    if (h < 1 || w < 1) {
        nb_error("nb_fold: output size (%lld, %lld) must be at least 1x1 for %s", (long long)h, (long long)w, nb_shp(cols));
        return NULL;
    }
    char image[160];
    snprintf(image, sizeof image, "output %lldx%lld", (long long)h, (long long)w);
    if (!check_window("nb_fold", win, h, w, image)) return NULL;
    if (!nb_sizes_fit(4, (int64_t[]){ cols->shape[0], cols->shape[1], h, w }, nb_dtype_size(cols->dtype))) {
        nb_error("nb_fold: %s folded into %s is too large (its size overflows)", nb_shp(cols), image);
        return NULL;
    }
    int64_t rows = cols->shape[1], per_channel = (int64_t)win.kh * win.kw;
    if (rows % per_channel != 0) {
        nb_error("nb_fold: %s has %lld rows, not a multiple of kernel %dx%d", nb_shp(cols), (long long)rows, win.kh, win.kw);
        return NULL;
    }
    int64_t oh = out_size(h, win.kh, win.stride_h, win.pad_h), ow = out_size(w, win.kw, win.stride_w, win.pad_w);
    if (cols->shape[2] != oh * ow) {
        nb_error("nb_fold: %s has %lld columns but kernel %dx%d gives %lldx%lld windows over %s", nb_shp(cols),
                 (long long)cols->shape[2], win.kh, win.kw, (long long)oh, (long long)ow, image);
        return NULL;
    }
    nb_tensor *img = nb_zeros(cols->dtype, NB_SHAPE(cols->shape[0], rows / per_channel, h, w));
    if (!img) return NULL;
    im2col_walk(img, cols, win, false);
    window_to_node(nb_record(&fold_op, img, 1, &cols), win);
    return img;
}

/* ---- max pooling: the argmax of each window is saved; backward scatters g to it ---- */

/* The backward for channels-last x (iarg[0] = 1) is an op of its own, nb_max_pool2d_backward:
 * dx = g at the argmax of each 2x2 window, 0 at the window's other places, written in one pass
 * (no zero fill, no index checks: the argmax is the forward's own). Its gradient with respect to g is
 * the gather of gg at the same places, so max pooling stays twice differentiable. */
static int max_pool_grad_backward(nb_node *n, nb_tensor *gg, nb_tensor **gin)
{
    nb_tensor *where = n->saved;   /* [N,OH,OW,C]: places in image n's [H,W,C] memory */
    const int64_t N = where->shape[0], OH = where->shape[1], OW = where->shape[2], C = where->shape[3];
    const int64_t image = gg->shape[1] * gg->shape[2] * gg->shape[3];   /* sizes, not -1: N may be 0 */
    nb_tensor *gg_rows = nb_reshape(nb_permute(gg, NB_AXES(0, 2, 3, 1)), NB_SHAPE(N, image));
    nb_tensor *g_rows = nb_gather(gg_rows, 1, nb_reshape(where, NB_SHAPE(N, OH * OW * C)));
    return (gin[0] = nb_permute(nb_reshape(g_rows, NB_SHAPE(N, OH, OW, C)), NB_AXES(0, 3, 1, 2))) ? 0 : -1;
}
static const nb_op max_pool_grad_op = { .name = "nb_max_pool2d_backward", .backward = max_pool_grad_backward };

/* The same for rows wider than a band: each pool column's channels read from g one by one */
#define MAX_POOL_GRAD_COLUMNS(T)                                                                                 \
    static void max_pool_grad_columns_##T(const T *g, const int64_t *where, int64_t N, int64_t C, int64_t H,     \
                                          int64_t W, int64_t OH, int64_t OW, T *dx)                              \
    {                                                                                                            \
        memset(dx, 0, sizeof(T) * (size_t)(N * H * W * C));                                                     \
        for (int64_t n = 0; n < N; n++)                                                                          \
            for (int64_t c = 0; c < C; c++)                                                                      \
                for (int64_t p = 0; p < OH * OW; p++)                                                            \
                    dx[n * H * W * C + where[(n * OH * OW + p) * C + c]] = g[(n * C + c) * OH * OW + p];         \
    }
MAX_POOL_GRAD_COLUMNS(float)
MAX_POOL_GRAD_COLUMNS(double)
/* One instance per element type T and level ISA (internal.h): dx:[N,H,W,C] memory from g:[N,C,OH,OW]
 * contiguous, by bands of pool rows: a band of g is first transposed to [rows,OW,C] (long runs of each
 * g plane read in order), then its image rows are written along memory; rows and columns in no window
 * become 0. */
#define MAX_POOL_GRAD_KERNEL(ISA, ATTR, T)                                                                       \
    ATTR static void max_pool_grad_##T##_##ISA(const T *g, const int64_t *where, int64_t N, int64_t C, int64_t H, \
                                               int64_t W, int64_t OH, int64_t OW, T *dx)                         \
    {                                                                                                            \
        enum { BAND = 4096 };                                                                                    \
        if (OW * C > BAND) { /* wide rows: pool column by pool column */                                        \
            max_pool_grad_columns_##T(g, where, N, C, H, W, OH, OW, dx);                                         \
            return;                                                                                              \
        }                                                                                                        \
        const int64_t rows = BAND / (OW * C), bands = (OH + rows - 1) / rows;                                    \
        _Pragma("omp parallel for if (N * H * W * C >= 65536) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t nb = 0; nb < N * bands; nb++) {                                                             \
            const int64_t n = nb / bands, oh0 = nb % bands * rows, oh1 = oh0 + rows < OH ? oh0 + rows : OH;      \
            T gt[BAND]; /* [oh - oh0][ow][c] */                                                                  \
            for (int64_t c = 0; c < C; c++) {                                                                    \
                const T *src = g + ((n * C + c) * OH + oh0) * OW;                                                \
                for (int64_t k = 0; k < (oh1 - oh0) * OW; k++) gt[k * C + c] = src[k];                           \
            }                                                                                                    \
            for (int64_t h = 2 * oh0; h < 2 * oh1; h++) {                                                        \
                const int64_t oh = h / 2, *a = where + (n * OH + oh) * OW * C;                                   \
                const T *gv = gt + (oh - oh0) * OW * C;                                                          \
                T *row = dx + (n * H + h) * W * C;                                                               \
                for (int64_t w = 0; w < 2 * OW; w++) {                                                           \
                    const int64_t at = (h * W + w) * C, ow = w / 2;                                              \
                    for (int64_t c = 0; c < C; c++)                                                              \
                        row[w * C + c] = a[ow * C + c] == at + c ? gv[ow * C + c] : 0;                           \
                }                                                                                                \
                memset(row + 2 * OW * C, 0, sizeof(T) * (size_t)((W - 2 * OW) * C)); /* an odd last column */    \
            }                                                                                                    \
            if (oh1 == OH) /* an odd last row */                                                                 \
                memset(dx + (n * H + 2 * OH) * W * C, 0, sizeof(T) * (size_t)((H - 2 * OH) * W * C));           \
        }                                                                                                        \
    }
NB_FOR_ISA(MAX_POOL_GRAD_KERNEL, float)
NB_FOR_ISA(MAX_POOL_GRAD_KERNEL, double)
/* each type's levels, for NB_ISA_PICK */
NB_ISA_FUNCTIONS(max_pool_grad_float);
NB_ISA_FUNCTIONS(max_pool_grad_double);

static nb_tensor *max_pool_grad(nb_tensor *g, nb_tensor *where, const nb_tensor *x)
{
    g = nb_contiguous(g);
    if (!g) return NULL;
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t OH = where->shape[1], OW = where->shape[2];
    nb_tensor *dx = nb_new_layout_of("nb_max_pool2d (backward)", x, x->dtype);
    if (!dx) return NULL;
    if (x->dtype == NB_F32) NB_ISA_PICK(max_pool_grad_float)(g->data, where->data, N, C, H, W, OH, OW, dx->data);
    else NB_ISA_PICK(max_pool_grad_double)(g->data, where->data, N, C, H, W, OH, OW, dx->data);
    nb_node *n = nb_record(&max_pool_grad_op, dx, 1, &g);
    if (n) n->saved = where;
    return dx;
}

static int max_pool_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0];
    if (n->iarg[0]) return (gin[0] = max_pool_grad(g, n->saved, x)) ? 0 : -1;
    /* gradient[argmax] += g[window], a scatter_add whose own gradient is a gather, so max pooling is
     * twice differentiable; argmax indexes each (n,c) plane */
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t windows = n->saved->shape[2] * n->saved->shape[3];   /* sizes, not -1: N·C may be 0 */
    nb_tensor *where = nb_reshape(n->saved, NB_SHAPE(N * C, windows));
    nb_tensor *dx = nb_scatter_add(NB_SHAPE(N * C, H * W), 1, where, nb_reshape(g, NB_SHAPE(N * C, windows)));
    return (gin[0] = nb_reshape(dx, nb_shape_of(x))) ? 0 : -1;
}

/* x:[N,C,H,W] laid out [N,H,W,C] under a 2x2, stride 2 window: the channels-last kernel applies */
static bool pool_channels_last(const nb_tensor *x, nb_window w)
{
    const int64_t C = x->shape[1], *xs = x->stride;
    return w.kh == 2 && w.kw == 2 && w.stride_h == 2 && w.stride_w == 2 && w.pad_h == 0 && w.pad_w == 0 && xs[1] == 1 &&
           xs[3] == C && xs[2] == C * x->shape[3] && xs[0] == xs[2] * x->shape[2];
}
static const nb_op max_pool_op = { .name = "nb_max_pool2d", .backward = max_pool_backward };

/* out[n][c][oh][ow] = the first maximum of the window (NaN wins: the first one), argmax[...] = its
 * ih·W + iw. `v > best || (v != v && best == best)` takes a larger value or the first NaN, and keeps
 * a NaN once found. Planes are independent: one per thread. One instance per element type T and
 * level ISA (internal.h), calling that level's kernels (MAX_POOL_PLANE). */
#define MAX_POOL_KERNEL(ISA, ATTR, T)                                                                        \
    static void max_pool_##T##_##ISA(const nb_tensor *x, nb_window win, nb_tensor *out, nb_tensor *argmax)     \
    {                                                                                                        \
        const int64_t N = x->shape[0], C = x->shape[1], OH = out->shape[2], OW = out->shape[3];             \
        const int64_t *xs = x->stride;                                                                       \
        /* the usual 2x2, stride 2, no padding window over rows of contiguous pixels: no clipping */         \
        const bool two_by_two = win.kh == 2 && win.kw == 2 && win.stride_h == 2 && win.stride_w == 2 &&      \
                                win.pad_h == 0 && win.pad_w == 0 && xs[3] == 1;                              \
        if (pool_channels_last(x, win)) {                                                                    \
            _Pragma("omp parallel for if (N * C * OH * OW >= 16384) num_threads(nb_parallel_threads()) schedule(static)") \
            for (int64_t row = 0; row < N * OH; row++)                                                       \
                max_pool_row_cl_##T##_##ISA(x, row / OH, row % OH, OH, OW, (T *)out->data, (int64_t *)argmax->data); \
            return;                                                                                          \
        }                                                                                                    \
        _Pragma("omp parallel for if (N * C * OH * OW >= 16384) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t plane_index = 0; plane_index < N * C; plane_index++) {                                   \
            const int64_t n = plane_index / C, c = plane_index % C;                                          \
            max_pool_plane_##T##_##ISA(x, (const T *)x->data + n * xs[0] + c * xs[1], win, two_by_two, OH, OW, \
                                       (T *)out->data + plane_index * OH * OW,                               \
                                       (int64_t *)argmax->data + plane_index * OH * OW);                     \
        }                                                                                                    \
    }
#define MAX_POOL_PLANE(ISA, ATTR, T)                                                                         \
    /* output row oh of image n from channels-last x (memory [N,H,W,C]), all channels at once (the      \
     * comparisons vectorize along c); out is NCHW (written a block of columns at a time), argmax       \
     * [N,OH,OW,C] holds places in image n's [H,W,C] memory */                                             \
    ATTR static void max_pool_row_cl_##T##_##ISA(const nb_tensor *x, int64_t n, int64_t oh, int64_t OH, int64_t OW, \
                                                 T *out, int64_t *argmax)                                    \
    {                                                                                                        \
        const int64_t C = x->shape[1], W = x->shape[3], ih = 2 * oh;                                         \
        const int64_t block = C >= 1024 ? 1 : 1024 / C;   /* output columns per block */                    \
        T best[1024 + 1024];                                                                                 \
        for (int64_t ow0 = 0; ow0 < OW; ow0 += block) {                                                      \
            const int64_t ow1 = ow0 + block < OW ? ow0 + block : OW;                                         \
            for (int64_t ow = ow0; ow < ow1; ow++)                                                           \
                for (int64_t c0 = 0; c0 < C; c0 += 1024) {                                                   \
                    const int64_t cn = C - c0 < 1024 ? C - c0 : 1024;                                        \
                    const T *p = (const T *)x->data + n * x->stride[0] + (ih * W + 2 * ow) * C + c0;         \
                    T *b_out = best + ((ow - ow0) * C + c0) % 1024, *off = best + 1024;                      \
                    for (int64_t c = 0; c < cn; c++) {                                                       \
                        const T v0 = p[c], v1 = p[C + c], v2 = p[W * C + c], v3 = p[W * C + C + c];          \
                        T b = v0, at = 0;                                                                    \
                        if (v1 > b || (v1 != v1 && b == b)) { b = v1; at = 1; }                              \
                        if (v2 > b || (v2 != v2 && b == b)) { b = v2; at = 2; }                              \
                        if (v3 > b || (v3 != v3 && b == b)) { b = v3; at = 3; }                              \
                        b_out[c] = b;                                                                        \
                        off[c] = at;                                                                         \
                    }                                                                                        \
                    int64_t *a = argmax + ((n * OH + oh) * OW + ow) * C + c0;                                \
                    for (int64_t c = 0; c < cn; c++) {                                                       \
                        const int64_t q = (int64_t)off[c];                                                   \
                        a[c] = ((ih + (q >> 1)) * W + 2 * ow + (q & 1)) * C + c0 + c;                        \
                    }                                                                                        \
                    if (block == 1) /* C >= 1024: one column, written straight out */                         \
                        for (int64_t c = 0; c < cn; c++) out[((n * C + c0 + c) * OH + oh) * OW + ow] = b_out[c]; \
                }                                                                                            \
            if (block > 1) /* the block's columns, channel by channel: contiguous runs of out */             \
                for (int64_t c = 0; c < C; c++)                                                              \
                    for (int64_t ow = ow0; ow < ow1; ow++)                                                   \
                        out[((n * C + c) * OH + oh) * OW + ow] = best[(ow - ow0) * C + c];                   \
        }                                                                                                    \
    }                                                                                                        \
    /* 2x2 windows of rows r0, r1 for n outputs: o = the first maximum (NaN wins), off = its place    \
     * 0..3 as a T, so the loop is one vector type and vectorizes */                                        \
    ATTR static void pool_2x2_##T##_##ISA(const T *restrict r0, const T *restrict r1, int64_t n, T *restrict o, \
                                         T *restrict off)                                                   \
    {                                                                                                        \
        for (int64_t k = 0; k < n; k++) {                                                                    \
            const T v0 = r0[2 * k], v1 = r0[2 * k + 1], v2 = r1[2 * k], v3 = r1[2 * k + 1];                  \
            T best = v0, at = 0;                                                                             \
            if (v1 > best || (v1 != v1 && best == best)) { best = v1; at = 1; }                              \
            if (v2 > best || (v2 != v2 && best == best)) { best = v2; at = 2; }                              \
            if (v3 > best || (v3 != v3 && best == best)) { best = v3; at = 3; }                              \
            o[k] = best;                                                                                     \
            off[k] = at;                                                                                     \
        }                                                                                                    \
    }                                                                                                        \
    ATTR static void max_pool_plane_##T##_##ISA(const nb_tensor *x, const T *plane, nb_window win, bool two_by_two, \
                                                int64_t OH, int64_t OW, T *o, int64_t *best_at)              \
    {                                                                                                        \
        const int64_t H = x->shape[2], W = x->shape[3], *xs = x->stride;                                    \
        if (two_by_two) {                                                                                    \
            T off[256];                                                                                      \
            for (int64_t oh = 0; oh < OH; oh++)                                                              \
                for (int64_t ow0 = 0; ow0 < OW; ow0 += 256) {                                                \
                    const int64_t n = OW - ow0 < 256 ? OW - ow0 : 256, ih = 2 * oh;                          \
                    const T *r0 = plane + ih * xs[2] + 2 * ow0;                                              \
                    pool_2x2_##T##_##ISA(r0, r0 + xs[2], n, o + oh * OW + ow0, off);                         \
                    for (int64_t k = 0; k < n; k++) {                                                        \
                        const int64_t q = (int64_t)off[k];                                                   \
                        best_at[oh * OW + ow0 + k] = (ih + (q >> 1)) * W + 2 * (ow0 + k) + (q & 1);          \
                    }                                                                                        \
                }                                                                                            \
            return;                                                                                          \
        }                                                                                                    \
        for (int64_t oh = 0; oh < OH; oh++)                                                                  \
            for (int64_t ow = 0; ow < OW; ow++) {                                                            \
                /* the window clipped to the image: padding never wins */                                    \
                int64_t h0 = oh * win.stride_h - win.pad_h, w0 = ow * win.stride_w - win.pad_w;              \
                int64_t h_lo = h0 < 0 ? 0 : h0, h_hi = h0 + win.kh < H ? h0 + win.kh : H;                    \
                int64_t w_lo = w0 < 0 ? 0 : w0, w_hi = w0 + win.kw < W ? w0 + win.kw : W;                    \
                int64_t best = h_lo * W + w_lo;                                                              \
                T best_v = plane[h_lo * xs[2] + w_lo * xs[3]];                                               \
                for (int64_t ih = h_lo; ih < h_hi; ih++)                                                     \
                    for (int64_t iw = w_lo; iw < w_hi; iw++) {                                               \
                        T v = plane[ih * xs[2] + iw * xs[3]];                                                \
                        if (v > best_v || (v != v && best_v == best_v)) {                                    \
                            best_v = v;                                                                      \
                            best = ih * W + iw;                                                              \
                        }                                                                                    \
                    }                                                                                        \
                o[oh * OW + ow] = best_v;                                                                    \
                best_at[oh * OW + ow] = best;                                                                \
            }                                                                                                \
    }
NB_FOR_ISA(MAX_POOL_PLANE, float)
NB_FOR_ISA(MAX_POOL_PLANE, double)
NB_FOR_ISA(MAX_POOL_KERNEL, float)
NB_FOR_ISA(MAX_POOL_KERNEL, double)
/* each type's levels, for NB_ISA_PICK */
NB_ISA_FUNCTIONS(max_pool_float);
NB_ISA_FUNCTIONS(max_pool_double);

nb_tensor *nb_max_pool2d(nb_tensor *x, nb_window w)
{
    if (!x) return nb_null_input("nb_max_pool2d");
    if (!check_image("nb_max_pool2d", x, w)) return NULL;
    /* beyond half the kernel, a window could hold only padding and would have no maximum */
    if (w.pad_h > w.kh / 2 || w.pad_w > w.kw / 2) {
        char pad[32];
        nb_error("nb_max_pool2d: padding %s larger than half the kernel %dx%d for input %s",
                 pair_text(pad, sizeof pad, w.pad_h, w.pad_w), w.kh, w.kw, nb_shp(x));
        return NULL;
    }
    int64_t shape[4] = { x->shape[0], x->shape[1], out_size(x->shape[2], w.kh, w.stride_h, w.pad_h),
                         out_size(x->shape[3], w.kw, w.stride_w, w.pad_w) };
    nb_tensor *out = nb_new("nb_max_pool2d", x->dtype, 4, shape);
    const bool cl = pool_channels_last(x, w);   /* argmax then [N,OH,OW,C] (see max_pool_backward) */
    nb_tensor *argmax = nb_new("nb_max_pool2d", NB_I64, 4, cl ? (int64_t[]){ shape[0], shape[2], shape[3], shape[1] } : shape);
    if (!out || !argmax) return NULL;
    NB_ISA_PICK(x->dtype == NB_F32 ? max_pool_float : max_pool_double)(x, w, out, argmax);
    nb_node *n = nb_record(&max_pool_op, out, 1, &x);
    if (n) {
        n->saved = argmax;
        n->iarg[0] = cl;
    }
    return out;
}

/* ---- average pooling: a composition of unfold, reshape and mean, so autodiff supplies the
 * backward (fold of the spread gradient) and its derivatives ---- */

nb_tensor *nb_avg_pool2d(nb_tensor *x, nb_window w)
{
    if (!x) return nb_null_input("nb_avg_pool2d");
    if (!check_image("nb_avg_pool2d", x, w)) return NULL;
    int64_t N = x->shape[0], C = x->shape[1];
    int64_t OH = out_size(x->shape[2], w.kh, w.stride_h, w.pad_h), OW = out_size(x->shape[3], w.kw, w.stride_w, w.pad_w);
    /* cols [N, C·kh·kw, L] -> [N, C, kh·kw, L]: the mean over axis 2 counts padding as zeros */
    nb_tensor *windows = nb_reshape(nb_unfold(x, w), NB_SHAPE(N, C, (int64_t)w.kh * w.kw, OH * OW));
    return nb_reshape(nb_mean_axes(windows, NB_AXES(2), false), NB_SHAPE(N, C, OH, OW));
}
