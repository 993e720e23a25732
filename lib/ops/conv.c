/* Fused 2-D convolution on channels-last rows: one row per output pixel, one column per filter.
 * The forward product is computed straight from a zero-padded channels-last copy of each chunk of
 * images, by a register-tiled kernel (conv_rows: pixels × filters of accumulators, each window read
 * in place; 6 × 16 at the AVX2 level, 12 × 32 or paired 12 × 16 × 2 taps at the AVX-512 level) — no
 * im2col matrix is stored; with stride 1 the gradient of x is the same kernel run on the padded
 * gradient with the filters flipped. The gradient of w comes from the padded x too, by the mirror
 * kernel (dw_rows: taps × filters of accumulators, summed over the rows) when the filters fill whole
 * panels; otherwise it is a BLIS product over im2row blocks (pixel-major: one row per output pixel,
 * one column per tap (i, j, c)). Every kernel exists per instruction-set level (kernel_sets).
 * Once-differentiable: the backward is this file's kernel, checked against the composed nb_conv2d.
 *
 * Per chunk of images (rows = images·P, P = H'·W', K = C·kh·kw, w seen as [F,K] in tap order):
 *   forward   out[rows,F]  = windows · wᵀ,                y = out + b (rows of y, channels-last)
 *   backward  gᵀ[rows,F]   = g as rows
 *             dwᵀ[K,F]    += windowsᵀ · gᵀ (or colsᵀ · gᵀ)   db[f] += Σ_rows gᵀ[·,f]
 *             dx           = conv(gᵀ padded by kh-1-pad, w flipped, F in, C out)   (stride 1)
 *                            or dcols[rows,K] = gᵀ · w with its taps added back to their pixels
 * nb_conv2d_relu_fused applies the relu to each chunk's rows while they are in cache, and its
 * backward masks gᵀ by y > 0 as it takes the rows.
 * Chunks have a fixed size, so per-chunk partial sums are added in one order whatever the thread
 * count: results do not depend on it. Threads take chunks as they finish (schedule dynamic): the two
 * vCPUs of a shared machine often run at different speeds, and a static split waits for the slower. */
#include "../internal.h"

#include <stdio.h>

#define CHUNK_ROWS 2048            /* pixel rows per chunk of whole images (a thread's unit of work) */
#define BLOCK_BYTES (384 << 10)    /* in the backward, a chunk's rows go through im2row and BLIS in blocks of
                                    * about this many bytes of cols (at least 256 rows), which stay in L2 (medians of three
                                    * interleaved runs against whole chunks: W4 245 vs 291 ms, W3-b50 30 vs 41) */

typedef struct {
    int64_t N, C, H, W, F, KH, KW, OH, OW, P, K;
    int64_t stride, pad;
    int64_t chunk, chunks;   /* images per chunk, number of chunks */
    int64_t block;           /* rows per block of a chunk */
} geometry;

bool nb_conv_check(const char *op, const nb_tensor *x, const nb_tensor *w, const nb_tensor *b, int stride, int pad)
{
    if (!nb_check_float(op, x) || !nb_check_same_dtype(op, x, w) || (b && !nb_check_same_dtype(op, x, b))) return false;
    if (x->ndim != 4) {
        nb_error("%s: expected a 4-D [N,C,H,W] x, got %s", op, nb_shp(x));
        return false;
    }
    if (w->ndim != 4) {
        nb_error("%s: expected a 4-D [F,C,HH,WW] w, got %s", op, nb_shp(w));
        return false;
    }
    if (w->shape[1] != x->shape[1]) {
        nb_error("%s: w is %s but x is %s (channels differ)", op, nb_shp(w), nb_shp(x));
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        nb_error("%s: b is %s but w is %s (expected [%lld])", op, nb_shp(b), nb_shp(w), (long long)w->shape[0]);
        return false;
    }
    if (stride < 1) {
        nb_error("%s: stride %d must be at least 1", op, stride);
        return false;
    }
    if (pad < 0) {
        nb_error("%s: padding %d must not be negative", op, pad);
        return false;
    }
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], F = w->shape[0], HH = w->shape[2],
                  WW = w->shape[3];
    if (HH < 1 || WW < 1 || HH > H + 2 * (int64_t)pad || WW > W + 2 * (int64_t)pad) {
        nb_error("%s: kernel %lldx%lld does not fit x %s with padding %d", op, (long long)HH, (long long)WW, nb_shp(x), pad);
        return false;
    }
    /* every size the kernels compute: the padded images, the im2col rows and the output */
    const int64_t OH = 1 + (H + 2 * (int64_t)pad - HH) / stride, OW = 1 + (W + 2 * (int64_t)pad - WW) / stride;
    const size_t es = nb_dtype_size(x->dtype);
    if (H > INT64_MAX / 2 - pad || W > INT64_MAX / 2 - pad ||
        !nb_sizes_fit(4, (int64_t[]){ N, C, H + 2 * (int64_t)pad, W + 2 * (int64_t)pad }, es) ||
        !nb_sizes_fit(6, (int64_t[]){ N, OH, OW, C, HH, WW }, es) || !nb_sizes_fit(4, (int64_t[]){ N, F, OH, OW }, es)) {
        nb_error("%s: x %s with w %s and padding %d is too large (its size overflows)", op, nb_shp(x), nb_shp(w), pad);
        return false;
    }
    return true;
}

static geometry geometry_of(const nb_tensor *x, const nb_tensor *w, int64_t stride, int64_t pad)
{
    geometry g = { .N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3], .F = w->shape[0],
                   .KH = w->shape[2], .KW = w->shape[3], .stride = stride, .pad = pad };
    g.OH = 1 + (g.H + 2 * pad - g.KH) / stride;
    g.OW = 1 + (g.W + 2 * pad - g.KW) / stride;
    g.P = g.OH * g.OW;
    g.K = g.C * g.KH * g.KW;
    g.chunk = g.P >= CHUNK_ROWS ? 1 : CHUNK_ROWS / g.P;
    if (g.chunk > g.N) g.chunk = g.N > 0 ? g.N : 1;
    g.chunks = (g.N + g.chunk - 1) / g.chunk;
    g.block = g.K > 0 ? BLOCK_BYTES / (g.K * (int64_t)nb_dtype_size(x->dtype)) : 256;   /* K = 0: no input channels */
    if (g.block < 256) g.block = 256;
    if (g.block > g.chunk * g.P) g.block = g.chunk * g.P;
    return g;
}

/* Kernels per element type T. x and g are NCHW-contiguous or channels-last (`cl`: memory
 * [N,H,W,C]); y and dx are made channels-last, so the rows of a chunk are rows of y, and the next
 * convolution reads them without a transpose. The taps are ordered (i, j, c), so the weights are
 * used as w viewed [F,KH,KW,C] (a permuted copy, small). Each chunk's images are copied into a
 * zero-padded channels-last buffer xp:[chunk, HP, WP, C] (HP = H + 2·pad), where the taps of one kernel
 * row are one contiguous run of KW·C values and nothing needs a bounds check.
 *   im2row:  cols[(n-n0)·P + oh·OW + ow][(i·KW + j)·C + c] = xp[n-n0][oh·s + i][ow·s + j][c]
 *   row2im:  the same entries of dcols added into xp (zeroed), whose interior then becomes dx
 * Both take a block of a chunk's rows at a time. */
/* the output pixel after (n, oh, ow), in row order */
static inline void next_pixel(const geometry *g, int64_t *n, int64_t *oh, int64_t *ow)
{
    if (++*ow < g->OW) return;
    *ow = 0;
    if (++*oh < g->OH) return;
    *oh = 0;
    ++*n;
}

/* where the window of output pixel (n, oh, ow) of a chunk starts in its padded xp: its tap (0, 0, 0) */
static inline int64_t window_at(const geometry *g, int64_t n, int64_t oh, int64_t ow)
{
    return ((n * (g->H + 2 * g->pad) + oh * g->stride) * (g->W + 2 * g->pad) + ow * g->stride) * g->C;
}

#define DW_BLOCK_BYTES (16 << 10)   /* dw_rows takes rows in blocks of about this many bytes of gᵀ, which stay in L1 */
#define RUN_LANES 8   /* im2row copies the runs from xp in whole vectors of this many elements */
/* the 256-bit tiles (generic and AVX2 levels): TILE output pixels × PANEL(T) filters (two 32-byte
 * vectors, 2·TILE accumulators), GCC vector types */
#define TILE 6
_Static_assert(TILE == 6, "conv_tile names its six window pointers a0..a5");
#define PANEL(T) ((int64_t)(64 / sizeof(T)))
typedef float vec_float __attribute__((vector_size(32)));
typedef double vec_double __attribute__((vector_size(32)));
typedef float vecu_float __attribute__((vector_size(32), aligned(4)));     /* unaligned stores */
typedef double vecu_double __attribute__((vector_size(32), aligned(8)));
typedef int32_t bits_float __attribute__((vector_size(32)));   /* lane masks, for the relu */
typedef int64_t bits_double __attribute__((vector_size(32)));
#define SPLAT_float(s) ((vec_float){ s, s, s, s, s, s, s, s })   /* not s + a zero vector: that is an add */
#define SPLAT_double(s) ((vec_double){ s, s, s, s })
/* one step of a register tile: acc[j] += s_j · (b0, b1) for the tile's six scalars s_j */
#define TILE_FMAS(T, acc, s0, s1, s2, s3, s4, s5, b0, b1)                                                     \
    do {                                                                                                      \
        const T s_[TILE] = { s0, s1, s2, s3, s4, s5 };                                                        \
        for (int j_ = 0; j_ < TILE; j_++) {                                                                   \
            const vec_##T v_ = SPLAT_##T(s_[j_]);                                                             \
            acc[j_][0] += v_ * (b0), acc[j_][1] += v_ * (b1);                                                 \
        }                                                                                                     \
    } while (0)
/* conv_rows' body, for tiles of R pixels and panels of `panel_width` filters computed by `tile`: rows
 * [r0, r1) of the chunk's convolution, out[q - r0][f] = Σ_k window(q)[k] · w[f][k], straight from the
 * padded xp (no im2row copy), each tile through every panel of wp while its windows are in L1 */
#define CONV_ROWS_BODY(T, R, panel_width, tile)                                                               \
    {                                                                                                         \
        const int64_t panel = (panel_width), F = g->F;                                                        \
        int64_t n = r0 / g->P, oh = r0 % g->P / g->OW, ow = r0 % g->OW;                                       \
        for (int64_t q0 = r0; q0 < r1; q0 += (R)) {                                                           \
            const int64_t rows = r1 - q0 < (R) ? r1 - q0 : (R);                                               \
            const T *a[R];                                                                                    \
            for (int64_t r = 0; r < (R); r++) {                                                               \
                if (r >= rows) { /* past the end: repeat a real window, its results are not stored */        \
                    a[r] = a[0];                                                                              \
                    continue;                                                                                 \
                }                                                                                             \
                a[r] = xp + window_at(g, n, oh, ow);                                                          \
                next_pixel(g, &n, &oh, &ow);                                                                  \
            }                                                                                                 \
            for (int64_t f0 = 0; f0 < F; f0 += panel)                                                         \
                tile(a, g->K, tap, wp + f0 * g->K, bias ? bias + f0 : NULL, relu,               \
                     out + (q0 - r0) * F + f0, F, rows, F - f0 < panel ? F - f0 : panel);                     \
        }                                                                                                     \
    }
/* dw_rows' body, for tiles of R taps and panels of `panel_width` filters computed by `tile`: a chunk's
 * weight gradient dwt[K][F] = Σ_r window(r)ᵀ · gt[r] over its rows, straight from the padded xp (no
 * im2row copy), in blocks of rows that stay in L1; F a multiple of the panel. win: scratch for the
 * rows' window offsets */
#define DW_ROWS_BODY(T, R, panel_width, tile)                                                                 \
    {                                                                                                         \
        const int64_t F = g->F, panel = (panel_width);                                                        \
        int64_t n = 0, oh = 0, ow = 0;                                                                        \
        for (int64_t r = 0; r < rows; r++, next_pixel(g, &n, &oh, &ow)) win[r] = window_at(g, n, oh, ow);     \
        const int64_t fit = DW_BLOCK_BYTES / (F * (int64_t)sizeof(T)), block = fit > 32 ? fit : 32;           \
        for (int64_t r0 = 0; r0 < rows; r0 += block) {                                                        \
            const int64_t n_rows = rows - r0 < block ? rows - r0 : block;                                     \
            for (int64_t k0 = 0; k0 < g->K; k0 += (R)) {                                                      \
                const int64_t taps = g->K - k0 < (R) ? g->K - k0 : (R);                                       \
                int64_t t[R];                                                                                 \
                for (int64_t j = 0; j < (R); j++) t[j] = tap[k0 + (j < taps ? j : 0)];                        \
                for (int64_t f0 = 0; f0 < F; f0 += panel)                                                     \
                    tile(xp, win + r0, n_rows, gt + r0 * F + f0, F, t, dwt + k0 * F + f0, taps, r0 > 0);      \
            }                                                                                                 \
        }                                                                                                     \
    }
#define HELPER_KERNELS(T, ISA, ATTR)                                                                                       \
    /* images n0..n1 of x (NCHW, or channels-last when cl) into the chunk's zero-padded channels-last xp */ \
    ATTR static void pad_channels_last_##T##_##ISA(const geometry *g, const T *x, bool cl, int64_t n0, int64_t n1, T *xp) \
    {                                                                                                         \
        const int64_t HP = g->H + 2 * g->pad, WP = g->W + 2 * g->pad, C = g->C, pad = g->pad;                 \
        const size_t edge = sizeof(T) * (size_t)(pad * WP * C), side = sizeof(T) * (size_t)(pad * C);         \
        for (int64_t n = n0; n < n1; n++) { /* zeros only where no pixel goes: the border */                 \
            T *image = xp + (n - n0) * HP * WP * C;                                                           \
            memset(image, 0, edge);                                                                           \
            memset(image + (pad + g->H) * WP * C, 0, edge);                                                   \
            for (int64_t h = 0; h < g->H; h++) {                                                              \
                memset(image + (pad + h) * WP * C, 0, side);                                                  \
                memset(image + ((pad + h) * WP + pad + g->W) * C, 0, side);                                   \
            }                                                                                                 \
        }                                                                                                     \
        memset(xp + (n1 - n0) * HP * WP * C, 0, sizeof(T) * RUN_LANES); /* what im2row's last vector reads */ \
        for (int64_t n = n0; n < n1; n++) /* writes in order; the C rows read stay in L1 */                  \
            for (int64_t h = 0; h < g->H; h++) {                                                              \
                T *dst = xp + (((n - n0) * HP + h + pad) * WP + pad) * C;                                     \
                if (cl) {                                                                                     \
                    memcpy(dst, x + (n * g->H + h) * g->W * C, sizeof(T) * (size_t)(g->W * C));               \
                    continue;                                                                                 \
                }                                                                                             \
                const T *src = x + (n * C * g->H + h) * g->W;                                                 \
                for (int64_t w = 0; w < g->W; w++)                                                            \
                    for (int64_t c = 0; c < C; c++) dst[w * C + c] = src[c * g->H * g->W + w];                \
            }                                                                                                 \
    }                                                                                                         \
    /* wp[p][k][l] = w(f = p·panel + l, k) with the taps k = (i, j, c) in order, 0 for f ≥ F, where         \
     * w(f, i, j, c) = w0[f·sf + i·si + j·sj + c·sc]: the filters in panels of the tile's width */           \
    static void pack_panels_##T##_##ISA(const T *w0, int64_t F, int64_t KH, int64_t KW, int64_t C, int64_t sf, \
                                        int64_t si, int64_t sj, int64_t sc, int64_t panel, T *wp)             \
    {                                                                                                         \
        for (int64_t f0 = 0; f0 < F; f0 += panel)                                                             \
            for (int64_t i = 0; i < KH; i++)                                                                  \
                for (int64_t j = 0; j < KW; j++)                                                              \
                    for (int64_t c = 0; c < C; c++, wp += panel)                                              \
                        for (int64_t l = 0; l < panel; l++)                                                   \
                            wp[l] = f0 + l < F ? w0[(f0 + l) * sf + i * si + j * sj + c * sc] : 0;          \
    }                                                                                                         \
    /* dst[0, len) = src[0, len), whole vectors first: short runs, so no memcpy call */                  \
    static inline void copy_run_##T##_##ISA(const T *restrict src, int64_t len, T *restrict dst)                      \
    {                                                                                                         \
        int64_t t = 0;                                                                                        \
        for (; t + RUN_LANES <= len; t += RUN_LANES)                                                          \
            for (int l = 0; l < RUN_LANES; l++) dst[t + l] = src[t + l];                                      \
        for (; t < len; t++) dst[t] = src[t];                                                                 \
    }                                                                                                         \
    /* rows [r0, r1) of the chunk's cols (row q: image q / P of the chunk, pixel q % P), from its padded   \
     * xp, in whole vectors: a run's last one spills into the next run, written after it */                \
    ATTR static void im2row_##T##_##ISA(const geometry *g, int64_t r0, int64_t r1, const T *restrict xp,          \
                                  T *restrict cols)                                                           \
    {                                                                                                         \
        const int64_t C = g->C, run = g->KW * C, WP = g->W + 2 * g->pad;                                      \
        const int64_t run_up = (run + RUN_LANES - 1) / RUN_LANES * RUN_LANES;                                 \
        T *r = cols;                                                                                          \
        int64_t n = r0 / g->P, oh = r0 % g->P / g->OW, ow = r0 % g->OW;                                       \
        for (int64_t q = r0; q < r1; q++) {                                                                   \
            for (int64_t i = 0; i < g->KH; i++, r += run)                                                     \
                copy_run_##T##_##ISA(xp + window_at(g, n, oh, ow) + i * WP * C, run_up, r);                         \
            next_pixel(g, &n, &oh, &ow);                                                                      \
        }                                                                                                     \
    }                                                                                                         \
    /* rows [r0, r1) of dcols added to their taps' pixels in the chunk's padded xp */                        \
    ATTR static void row2im_##T##_##ISA(const geometry *g, const T *dcols, int64_t r0, int64_t r1, T *xp)           \
    {                                                                                                         \
        const int64_t WP = g->W + 2 * g->pad, C = g->C, run = g->KW * C;                                      \
        const T *r = dcols;                                                                                   \
        int64_t n = r0 / g->P, oh = r0 % g->P / g->OW, ow = r0 % g->OW;                                       \
        for (int64_t q = r0; q < r1; q++) {                                                                   \
            for (int64_t i = 0; i < g->KH; i++, r += run) {                                                   \
                T *dst = xp + window_at(g, n, oh, ow) + i * WP * C;                                          \
                for (int64_t t = 0; t < run; t++) dst[t] += r[t];                                             \
            }                                                                                                 \
            next_pixel(g, &n, &oh, &ow);                                                                      \
        }                                                                                                     \
    }                                                                                                         \
    /* the interior of the chunk's padded xp into channels-last dx */                                        \
    ATTR static void unpad_##T##_##ISA(const geometry *g, const T *xp, int64_t n0, int64_t n1, T *dx)               \
    {                                                                                                         \
        const int64_t HP = g->H + 2 * g->pad, WP = g->W + 2 * g->pad, C = g->C;                               \
        for (int64_t n = n0; n < n1; n++)                                                                     \
            for (int64_t h = 0; h < g->H; h++)                                                                \
                memcpy(dx + (n * g->H + h) * g->W * C, xp + (((n - n0) * HP + h + g->pad) * WP + g->pad) * C, \
                       sizeof(T) * (size_t)(g->W * C));                                                       \
    }                                                                                                         \
    /* sums[f] = Σ_r m[r][f] over a rows×cols row-major m, in double */                                     \
    ATTR static void column_sums_##T##_##ISA(const T *m, int64_t rows, int64_t cols, double *sums)                  \
    {                                                                                                         \
        for (int64_t f = 0; f < cols; f++) sums[f] = 0;                                                       \
        for (int64_t r = 0; r < rows; r++)                                                                    \
            for (int64_t f = 0; f < cols; f++) sums[f] += m[r * cols + f];                                    \
    }                                                                                                         \
    /* gt[i] = g[i] where y[i] > 0, else 0: the relu's backward (g may be gt itself) */                      \
    ATTR static void relu_mask_rows_##T##_##ISA(const T *g, const T *y, int64_t count, T *gt)                       \
    {                                                                                                         \
        for (int64_t i = 0; i < count; i++) gt[i] = y[i] > 0 ? g[i] : 0;                                      \
    }                                                                                                         \
    /* 2x2, stride 2 max pooling of a chunk's rows [rows,F] (whole images n0..n1): y[n,f,ph,pw] NCHW =     \
     * the first maximum of the window (NaN wins, as in nb_max_pool2d), code = its place 0..3 (one byte) */ \
    ATTR static void pool_rows_##T##_##ISA(const geometry *g, const T *rows, int64_t n0, int64_t n1, T *y,          \
                                     uint8_t *code)                                                           \
    {                                                                                                         \
        const int64_t F = g->F, PH = g->OH / 2, PW = g->OW / 2;                                               \
        for (int64_t n = n0; n < n1; n++)                                                                     \
            for (int64_t ph = 0; ph < PH; ph++)                                                               \
                for (int64_t pw = 0; pw < PW; pw++) {                                                         \
                    const T *r0 = rows + ((n - n0) * g->P + 2 * ph * g->OW + 2 * pw) * F, *r2 = r0 + g->OW * F; \
                    uint8_t *c = code + ((n * PH + ph) * PW + pw) * F;                                        \
                    for (int64_t f = 0; f < F; f++) {                                                         \
                        const T v0 = r0[f], v1 = r0[F + f], v2 = r2[f], v3 = r2[F + f];                       \
                        T b = v0; /* selects, not branches: which value wins is unpredictable */             \
                        uint8_t at = 0;                                                                       \
                        const bool w1 = v1 > b || (v1 != v1 && b == b);                                      \
                        b = w1 ? v1 : b, at = w1 ? 1 : at;                                                    \
                        const bool w2 = v2 > b || (v2 != v2 && b == b);                                       \
                        b = w2 ? v2 : b, at = w2 ? 2 : at;                                                    \
                        const bool w3 = v3 > b || (v3 != v3 && b == b);                                       \
                        b = w3 ? v3 : b, at = w3 ? 3 : at;                                                    \
                        y[((n * F + f) * PH + ph) * PW + pw] = b;                                             \
                        c[f] = at;                                                                            \
                    }                                                                                         \
                }                                                                                             \
    }                                                                                                         \
    /* the pooled gradient back to a chunk's rows: gt = 0 but at each window's maximum, which gets gy     \
     * where the pooled value (after the relu) is positive */                                                \
    ATTR static void unpool_rows_##T##_##ISA(const geometry *g, const T *gy, const T *y, const uint8_t *code,       \
                                       int64_t n0, int64_t n1, T *gt)                                         \
    {                                                                                                         \
        const int64_t F = g->F, PH = g->OH / 2, PW = g->OW / 2;                                               \
        memset(gt, 0, sizeof(T) * (size_t)((n1 - n0) * g->P * F));                                            \
        for (int64_t n = n0; n < n1; n++)                                                                     \
            for (int64_t ph = 0; ph < PH; ph++)                                                               \
                for (int64_t pw = 0; pw < PW; pw++) {                                                         \
                    const uint8_t *c = code + ((n * PH + ph) * PW + pw) * F;                                  \
                    T *r = gt + ((n - n0) * g->P + 2 * ph * g->OW + 2 * pw) * F;                              \
                    for (int64_t f = 0; f < F; f++) {                                                         \
                        const int64_t i = ((n * F + f) * PH + ph) * PW + pw;                                  \
                        const T gv = gy[i]; /* read unconditionally: a select, not a branch on the sign */   \
                        r[((c[f] >> 1) * g->OW + (c[f] & 1)) * F + f] = y[i] > 0 ? gv : 0;                   \
                    }                                                                                         \
                }                                                                                             \
    }                                                                                                         \
    /* gt[(n-n0)·P + p][f] = gy[n,f,p] */                                                                     \
    ATTR static void image_to_rows_##T##_##ISA(const geometry *g, const T *gy, int64_t n0, int64_t n1, T *gt)              \
    {                                                                                                         \
        for (int64_t n = n0; n < n1; n++)                                                                     \
            for (int64_t f = 0; f < g->F; f++) {                                                              \
                const T *src = gy + (n * g->F + f) * g->P;                                                    \
                T *dst = gt + (n - n0) * g->P * g->F + f;                                                     \
                for (int64_t p = 0; p < g->P; p++) dst[p * g->F] = src[p];                                    \
            }                                                                                                 \
    }
#define TILE_KERNELS(T, ISA, ATTR)                                                                            \
    /* one tile: out[r][l] = Σ_k a[r][tap[k]] · wp[k·PANEL + l] for TILE pixels r (rows of them real) and  \
     * one panel (lanes of it real); a[r] is pixel r's window in xp, tap[k] where tap k sits in a window.  \
     * The accumulators stay in registers: 2·TILE vectors, each weight pair loaded once per tap; one loop \
     * over all K taps (nested loops over kernel rows cost 4-15% on short rows) */                        \
    ATTR NB_FMA static void conv_tile_##T##_##ISA(const T *const *a, int64_t K, const int64_t *restrict tap,        \
                                            const T *restrict wp, const T *bias, bool relu, T *restrict out, \
                                            int64_t ld, int64_t rows, int64_t lanes)                          \
    {                                                                                                         \
        enum { L = 32 / sizeof(T) };                                                                          \
        vec_##T acc[TILE][2];                                                                                 \
        for (int r = 0; r < TILE; r++) acc[r][0] = acc[r][1] = (vec_##T){ 0 };                                \
        const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];                       \
        for (int64_t k = 0; k < K; k++, wp += 2 * L) {                                                        \
            const int64_t t = tap[k];                                                                         \
            const vec_##T w0 = *(const vec_##T *)wp, w1 = *(const vec_##T *)(wp + L);                        \
            TILE_FMAS(T, acc, a0[t], a1[t], a2[t], a3[t], a4[t], a5[t], w0, w1);                              \
        }                                                                                                     \
        if (bias) /* the panel's bias, zero past F */                                                         \
            for (int r = 0; r < TILE; r++)                                                                    \
                acc[r][0] += *(const vec_##T *)bias, acc[r][1] += *(const vec_##T *)(bias + L);               \
        if (relu) /* lanes below 0 cleared; NaN is not below 0 and stays, as in nb_relu */                    \
            for (int r = 0; r < TILE; r++)                                                                    \
                for (int h = 0; h < 2; h++)                                                                   \
                    acc[r][h] = (vec_##T)((bits_##T)acc[r][h] & ~(acc[r][h] < (vec_##T){ 0 }));               \
        if (rows == TILE && lanes == 2 * L) {                                                                 \
            for (int r = 0; r < TILE; r++) {                                                                  \
                *(vecu_##T *)(out + r * ld) = acc[r][0];                                                      \
                *(vecu_##T *)(out + r * ld + L) = acc[r][1];                                                  \
            }                                                                                                 \
            return;                                                                                           \
        }                                                                                                     \
        for (int64_t r = 0; r < rows; r++) { /* a partial tile: the real part only (acc stays in registers) */ \
            const vec_##T row[2] = { acc[r][0], acc[r][1] };                                                  \
            memcpy(out + r * ld, row, sizeof(T) * (size_t)lanes);                                             \
        }                                                                                                     \
    }                                                                                                         \
    /* rows [r0, r1) of the chunk's convolution, out[q - r0][f] = Σ_k window(q)[k] · w[f][k], straight from \
     * the padded xp (no im2row copy): tiles of TILE pixels, each through every panel of wp while its     \
     * windows are in L1 */                                                                                   \
    ATTR static void conv_rows_##T##_##ISA(const geometry *g, const T *xp, const T *wp, const int64_t *tap,  \
                                           const T *bias, bool relu, int64_t r0, int64_t r1, T *out)          \
        CONV_ROWS_BODY(T, TILE, PANEL(T), conv_tile_##T##_##ISA)                                                 \
    /* one tile of the weight gradient: dwt[j][l] = Σ_r xp[win[r] + t[j]] · gt[r·F + l] over the rows r,  \
     * for TILE taps j (taps of them real; t[] repeats a real one past them) and one whole panel of lanes \
     * l; win[r] is row r's window in xp. The mirror of conv_tile: the sum runs over rows, not taps */     \
    ATTR NB_FMA static void dw_tile_##T##_##ISA(const T *restrict xp, const int64_t *restrict win, int64_t rows,   \
                                          const T *restrict gt, int64_t F, const int64_t *t, T *restrict dwt, \
                                          int64_t taps, bool add)                                             \
    {                                                                                                         \
        enum { L = 32 / sizeof(T) };                                                                          \
        vec_##T acc[TILE][2];                                                                                 \
        for (int j = 0; j < TILE; j++) acc[j][0] = acc[j][1] = (vec_##T){ 0 };                                \
        for (int64_t j = 0; add && j < taps; j++) {                                                           \
            acc[j][0] = *(const vecu_##T *)(dwt + j * F);                                                     \
            acc[j][1] = *(const vecu_##T *)(dwt + j * F + L);                                                 \
        }                                                                                                     \
        const int64_t t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5];                       \
        for (int64_t r = 0; r < rows; r++, gt += F) {                                                         \
            const T *a = xp + win[r];                                                                         \
            const vec_##T g0 = *(const vecu_##T *)gt, g1 = *(const vecu_##T *)(gt + L);                      \
            TILE_FMAS(T, acc, a[t0], a[t1], a[t2], a[t3], a[t4], a[t5], g0, g1);                              \
        }                                                                                                     \
        for (int64_t j = 0; j < taps; j++) {                                                                  \
            *(vecu_##T *)(dwt + j * F) = acc[j][0];                                                           \
            *(vecu_##T *)(dwt + j * F + L) = acc[j][1];                                                       \
        }                                                                                                     \
    }                                                                                                         \
    /* a chunk's weight gradient dwt[K][F] = Σ_r window(r)ᵀ · gt[r] over its rows, straight from the padded \
     * xp (no im2row copy); F a multiple of PANEL(T). win: scratch for the rows' window offsets */          \
    ATTR static void dw_rows_##T##_##ISA(const geometry *g, const T *xp, const int64_t *tap, const T *gt,   \
                                         int64_t rows, int64_t *win, T *dwt)                                  \
        DW_ROWS_BODY(T, TILE, PANEL(T), dw_tile_##T##_##ISA)                                                  \

/* The AVX-512 tiles: 32 registers of 64 bytes hold 24 accumulators, as R512 pixels (or taps) × V
 * vectors of filters: V = 2 (panels of 128 bytes, 12 pixels) or V = 1 (64 bytes, 24 pixels, for
 * filter counts that do not fill the wider panels). The same sums as the 256-bit tiles, in the same
 * order for each output (tap by tap), so every level gives the same bits. */
#define R512(V) 12                 /* conv_tile: pixels (their window pointers spill beyond 12) */
#define RDW512(V) (24 / (V))      /* dw_tile: taps (offsets, no pointers) */
#define UNROLL _Pragma("GCC unroll 24")   /* the tile's loops, so that its accumulators are registers */
typedef float vec512_float __attribute__((vector_size(64)));
typedef double vec512_double __attribute__((vector_size(64)));
typedef float vec512u_float __attribute__((vector_size(64), aligned(4)));
typedef double vec512u_double __attribute__((vector_size(64), aligned(8)));
typedef int32_t bits512_float __attribute__((vector_size(64)));
typedef int64_t bits512_double __attribute__((vector_size(64)));
/* dw_tile's sum over the rows: acc[j] += xp[win[r] + tap_at(j)] · gt[r] */
#define DW_TILE_ROWS(T, V, tap_at)                                                                            \
    for (int64_t r = 0; r < rows; r++, gt += F) {                                                             \
        const T *a = xp + win[r];                                                                             \
        vec512_##T gv[V];                                                                                     \
        UNROLL for (int v = 0; v < V; v++) gv[v] = *(const vec512u_##T *)(gt + v * L);                       \
        UNROLL for (int j = 0; j < R; j++) {                                                                  \
            const T s = a[tap_at];                                                                            \
            UNROLL for (int v = 0; v < V; v++) acc[j][v] += gv[v] * s;                                        \
        }                                                                                                     \
    }
#define TILE512_KERNELS(T, V)                                                                                 \
    /* conv_tile for R512(V) pixels and V vectors of filters */                                              \
    NB_AVX512 NB_FMA static void conv_tile_##T##_v##V(const T *const *a, int64_t K, const int64_t *restrict tap, \
                                                      const T *restrict wp, const T *bias, bool relu,         \
                                                      T *restrict out, int64_t ld, int64_t rows, int64_t lanes) \
    {                                                                                                         \
        enum { L = 64 / sizeof(T), R = R512(V) };                                                             \
        vec512_##T acc[R][V];                                                                                 \
        UNROLL for (int r = 0; r < R; r++)                                                                           \
            UNROLL for (int v = 0; v < V; v++) acc[r][v] = (vec512_##T){ 0 };                                        \
        for (int64_t k = 0; k < K; k++, wp += V * L) {                                                        \
            const int64_t t = tap[k];                                                                         \
            vec512_##T w[V];                                                                                  \
            UNROLL for (int v = 0; v < V; v++) w[v] = *(const vec512_##T *)(wp + v * L);                            \
            UNROLL for (int r = 0; r < R; r++) {                                                                     \
                const T s = a[r][t];                                                                          \
                UNROLL for (int v = 0; v < V; v++) acc[r][v] += w[v] * s;                                            \
            }                                                                                                 \
        }                                                                                                     \
        UNROLL for (int r = 0; r < R; r++)                                                                           \
            UNROLL for (int v = 0; v < V; v++) {                                                                     \
                if (bias) acc[r][v] += *(const vec512_##T *)(bias + v * L);                                   \
                if (relu) acc[r][v] = (vec512_##T)((bits512_##T)acc[r][v] & ~(acc[r][v] < (vec512_##T){ 0 })); \
            }                                                                                                 \
        if (rows == R && lanes == V * L) {                                                                    \
            UNROLL for (int r = 0; r < R; r++)                                                                       \
                UNROLL for (int v = 0; v < V; v++) *(vec512u_##T *)(out + r * ld + v * L) = acc[r][v];               \
            return;                                                                                           \
        }                                                                                                     \
        for (int64_t r = 0; r < rows; r++) memcpy(out + r * ld, acc[r], sizeof(T) * (size_t)lanes);          \
    }                                                                                                         \
    NB_AVX512 static void conv_rows_##T##_v##V(const geometry *g, const T *xp, const T *wp, const int64_t *tap, \
                                               const T *bias, bool relu, int64_t r0, int64_t r1, T *out)      \
        CONV_ROWS_BODY(T, R512(V), V * PANEL(T), conv_tile_##T##_v##V)                                           \
    /* dw_tile for RDW512(V) taps and V vectors of filters */                                                  \
    NB_AVX512 NB_FMA static void dw_tile_##T##_v##V(const T *restrict xp, const int64_t *restrict win,        \
                                                    int64_t rows, const T *restrict gt, int64_t F,            \
                                                    const int64_t *t, T *restrict dwt, int64_t taps, bool add) \
    {                                                                                                         \
        enum { L = 64 / sizeof(T), R = RDW512(V) };                                                             \
        vec512_##T acc[R][V];                                                                                 \
        UNROLL for (int j = 0; j < R; j++)                                                                           \
            UNROLL for (int v = 0; v < V; v++)                                                                       \
                acc[j][v] = add && j < taps ? *(const vec512u_##T *)(dwt + j * F + v * L) : (vec512_##T){ 0 }; \
        if (t[R - 1] - t[0] == R - 1) { /* taps in one run of the window: constant offsets from t[0] */     \
            const int64_t t0 = t[0];                                                                          \
            DW_TILE_ROWS(T, V, t0 + j);                                                                       \
        } else {                                                                                              \
            int64_t tj[R];                                                                                    \
            UNROLL for (int j = 0; j < R; j++) tj[j] = t[j];                                                  \
            DW_TILE_ROWS(T, V, tj[j]);                                                                        \
        }                                                                                                     \
        for (int64_t j = 0; j < taps; j++)                                                                    \
            UNROLL for (int v = 0; v < V; v++) *(vec512u_##T *)(dwt + j * F + v * L) = acc[j][v];                    \
    }                                                                                                         \
    NB_AVX512 static void dw_rows_##T##_v##V(const geometry *g, const T *xp, const int64_t *tap, const T *gt, \
                                             int64_t rows, int64_t *win, T *dwt)                              \
        DW_ROWS_BODY(T, RDW512(V), V * PANEL(T), dw_tile_##T##_v##V)

/* The AVX-512 tiles for layers whose filters do not fill 32 lanes, when the taps come in pairs (a
 * window's runs of KW·C taps even): a vector holds 8 filters × 2 taps, so one broadcast pair of
 * inputs (x at taps k and k+1) feeds two FMAs over 16 filters, as the wide tiles' scalars do, instead
 * of one FMA per load. The even and odd taps are summed apart and added at the end: a different order
 * from the other tiles (the levels agree to rounding, not bit for bit, on these layers). The weights
 * are packed by pack_pairs: per tap pair, lane 2l + p is filter f0 + l at tap k + p. */
#define PAIR_SPLAT_float(p, s)                                                                                \
    do {                                                                                                      \
        double d_; /* the two floats as one double: vbroadcastsd */                                          \
        memcpy(&d_, (p), sizeof d_);                                                                          \
        (s) = (vec512_float)(vec512_double){ d_, d_, d_, d_, d_, d_, d_, d_ };                                \
    } while (0)
#define PAIR_SPLAT_double(p, s)                                                                               \
    do {                                                                                                      \
        const double x0_ = (p)[0], x1_ = (p)[1];                                                              \
        (s) = (vec512_double){ x0_, x1_, x0_, x1_, x0_, x1_, x0_, x1_ };                                      \
    } while (0)
#define EVENS_float ((bits512_float){ 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 })
#define EVENS_double ((bits512_double){ 0, 2, 4, 6, 8, 10, 12, 14 })
/* [g0, g0, g1, g1, ...] from the first (LO) or second (HI) half of a vector of filters' gradients, and
 * the inverse: two rows of filters (taps k, k + 1) interleaved, half LO or HI of the filters */
#define DUP_LO_float ((bits512_float){ 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7 })
#define DUP_LO_double ((bits512_double){ 0, 0, 1, 1, 2, 2, 3, 3 })
#define DUP_HI(T) (DUP_LO_##T + (int)(32 / sizeof(T)))
#define ILV_LO_float ((bits512_float){ 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23 })
#define ILV_LO_double ((bits512_double){ 0, 8, 1, 9, 2, 10, 3, 11 })
#define ILV_HI(T) (ILV_LO_##T + (int)(32 / sizeof(T)))
/* dw_tile_p's sum over the rows: acc[j][h] (lane 2l + p: filter h·L/2 + l at tap 2j + p) +=
 * xp[win[r] + pair_at(j) + p] · gt[r][h·L/2 + l] */
#define DW_PAIR_ROWS(T, pair_at)                                                                              \
    for (int64_t r = 0; r < rows; r++, gt += F) {                                                             \
        const T *a = xp + win[r];                                                                             \
        const vec512_##T gv = *(const vec512u_##T *)gt;                                                       \
        const vec512_##T g0 = __builtin_shuffle(gv, DUP_LO_##T), g1 = __builtin_shuffle(gv, DUP_HI(T));      \
        UNROLL for (int j = 0; j < P; j++) {                                                                  \
            vec512_##T s;                                                                                     \
            PAIR_SPLAT_##T(a + (pair_at), s);                                                                 \
            acc[j][0] += g0 * s, acc[j][1] += g1 * s;                                                         \
        }                                                                                                     \
    }
#define TILE512_PAIR_KERNELS(T)                                                                               \
    static void pack_pairs_##T(const T *w0, int64_t F, int64_t KH, int64_t KW, int64_t C, int64_t sf,        \
                               int64_t si, int64_t sj, int64_t sc, int64_t panel, T *wp)                      \
    {                                                                                                         \
        const int64_t K = KH * KW * C;                                                                        \
        for (int64_t f0 = 0; f0 < F; f0 += panel)                                                             \
            for (int64_t k = 0; k < K; k += 2, wp += 2 * panel)                                               \
                for (int64_t l = 0; l < 2 * panel; l++) {                                                     \
                    const int64_t f = f0 + l / 2, t = k + l % 2, i = t / (KW * C), j = t / C % KW, c = t % C; \
                    wp[l] = f < F ? w0[f * sf + i * si + j * sj + c * sc] : 0;                                \
                }                                                                                             \
    }                                                                                                         \
    NB_AVX512 NB_FMA static void conv_tile_##T##_p(const T *const *a, int64_t K, const int64_t *restrict tap,  \
                                                   const T *restrict wp, const T *bias, bool relu,            \
                                                   T *restrict out, int64_t ld, int64_t rows, int64_t lanes)  \
    {                                                                                                         \
        enum { L = 64 / sizeof(T), R = R512(2) };                                                             \
        vec512_##T acc[R][2];                                                                                 \
        UNROLL for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = (vec512_##T){ 0 };                         \
        for (int64_t k = 0; k < K; k += 2, wp += 2 * L) {                                                     \
            const int64_t t = tap[k]; /* tap k + 1 is t + 1 */                                                \
            const vec512_##T w0 = *(const vec512_##T *)wp, w1 = *(const vec512_##T *)(wp + L);               \
            UNROLL for (int r = 0; r < R; r++) {                                                              \
                vec512_##T s;                                                                                 \
                PAIR_SPLAT_##T(a[r] + t, s);                                                                  \
                acc[r][0] += w0 * s, acc[r][1] += w1 * s;                                                     \
            }                                                                                                 \
        }                                                                                                     \
        vec512_##T sum[R]; /* filter l: its even taps' sum (lane 2l) + its odd taps' (2l + 1) */             \
        UNROLL for (int r = 0; r < R; r++) {                                                                  \
            sum[r] = __builtin_shuffle(acc[r][0], acc[r][1], EVENS_##T) +                                     \
                     __builtin_shuffle(acc[r][0], acc[r][1], EVENS_##T + 1);                                  \
            if (bias) sum[r] += *(const vec512_##T *)bias;                                                    \
            if (relu) sum[r] = (vec512_##T)((bits512_##T)sum[r] & ~(sum[r] < (vec512_##T){ 0 }));             \
        }                                                                                                     \
        if (rows == R && lanes == L) {                                                                        \
            UNROLL for (int r = 0; r < R; r++) *(vec512u_##T *)(out + r * ld) = sum[r];                       \
            return;                                                                                           \
        }                                                                                                     \
        for (int64_t r = 0; r < rows; r++) memcpy(out + r * ld, &sum[r], sizeof(T) * (size_t)lanes);         \
    }                                                                                                         \
    NB_AVX512 static void conv_rows_##T##_p(const geometry *g, const T *xp, const T *wp, const int64_t *tap,  \
                                            const T *bias, bool relu, int64_t r0, int64_t r1, T *out)         \
        CONV_ROWS_BODY(T, R512(2), PANEL(T), conv_tile_##T##_p)                                               \
    /* dw_tile for 2·P taps (P pairs) and one panel of L filters: the filters' gradients duplicated into    \
     * [g_l, g_l] lane pairs, so one broadcast pair of inputs feeds two FMAs; each output sums over the rows \
     * in order, as the other tiles do (the same bits). taps is even (K is: the runs are) */                \
    NB_AVX512 NB_FMA static void dw_tile_##T##_p(const T *restrict xp, const int64_t *restrict win,           \
                                                 int64_t rows, const T *restrict gt, int64_t F,               \
                                                 const int64_t *t, T *restrict dwt, int64_t taps, bool add)   \
    {                                                                                                         \
        enum { P = RDW512(1) / 2 };                                                                           \
        vec512_##T acc[P][2];                                                                                 \
        UNROLL for (int j = 0; j < P; j++) {                                                                  \
            if (add && 2 * j < taps) {                                                                        \
                const vec512_##T even = *(const vec512u_##T *)(dwt + 2 * j * F);                              \
                const vec512_##T odd = *(const vec512u_##T *)(dwt + (2 * j + 1) * F);                         \
                acc[j][0] = __builtin_shuffle(even, odd, ILV_LO_##T);                                         \
                acc[j][1] = __builtin_shuffle(even, odd, ILV_HI(T));                                          \
            } else {                                                                                          \
                acc[j][0] = acc[j][1] = (vec512_##T){ 0 };                                                    \
            }                                                                                                 \
        }                                                                                                     \
        if (t[2 * P - 1] - t[0] == 2 * P - 1) { /* taps in one run of the window: constant offsets */        \
            const int64_t t0 = t[0];                                                                          \
            DW_PAIR_ROWS(T, t0 + 2 * j);                                                                      \
        } else {                                                                                              \
            int64_t tj[P];                                                                                    \
            UNROLL for (int j = 0; j < P; j++) tj[j] = t[2 * j];                                              \
            DW_PAIR_ROWS(T, tj[j]);                                                                           \
        }                                                                                                     \
        for (int64_t j = 0; 2 * j < taps; j++) {                                                              \
            *(vec512u_##T *)(dwt + 2 * j * F) = __builtin_shuffle(acc[j][0], acc[j][1], EVENS_##T);          \
            *(vec512u_##T *)(dwt + (2 * j + 1) * F) = __builtin_shuffle(acc[j][0], acc[j][1], EVENS_##T + 1); \
        }                                                                                                     \
    }                                                                                                         \
    NB_AVX512 static void dw_rows_##T##_p(const geometry *g, const T *xp, const int64_t *tap, const T *gt,    \
                                          int64_t rows, int64_t *win, T *dwt)                                 \
        DW_ROWS_BODY(T, RDW512(1), PANEL(T), dw_tile_##T##_p)

HELPER_KERNELS(float, generic, )
HELPER_KERNELS(double, generic, )
TILE_KERNELS(float, generic, )
TILE_KERNELS(double, generic, )
#if NB_CLONES
HELPER_KERNELS(float, avx2, NB_AVX2)
HELPER_KERNELS(double, avx2, NB_AVX2)
TILE_KERNELS(float, avx2, NB_AVX2)
TILE_KERNELS(double, avx2, NB_AVX2)
HELPER_KERNELS(float, avx512, NB_AVX512)
HELPER_KERNELS(double, avx512, NB_AVX512)
TILE512_KERNELS(float, 1)
TILE512_KERNELS(float, 2)
TILE512_KERNELS(double, 1)
TILE512_KERNELS(double, 2)
TILE512_PAIR_KERNELS(float)
TILE512_PAIR_KERNELS(double)
#endif

/* w:[F,C,KH,KW] as a contiguous [F,KH,KW,C]: the kernels' tap order (i, j, c) */
static nb_tensor *taps_last(nb_tensor *w)
{
    bool grad = nb_set_grad_enabled(false);
    nb_tensor *t = nb_contiguous(nb_permute(w, NB_AXES(0, 2, 3, 1)));
    nb_set_grad_enabled(grad);
    return t;
}

static const int CHANNELS_LAST[4] = { 0, 2, 3, 1 };

/* t:[N,C,H,W] laid out [N,H,W,C] */
static bool is_channels_last(const nb_tensor *t)
{
    int order[NB_MAX_DIMS];
    return t->ndim == 4 && !nb_is_contiguous(t) && nb_dense_order(t, order) && !memcmp(order, CHANNELS_LAST, sizeof CHANNELS_LAST);
}

/* t as the kernels read it: channels-last as it is (*cl true), else NCHW-contiguous (a copy if strided) */
static nb_tensor *kernel_input(nb_tensor *t, bool *cl)
{
    *cl = is_channels_last(t);
    return *cl ? t : nb_contiguous(t);
}

/* elements of one chunk's zero-padded images */
/* elements of n zero-padded images */
static int64_t padded_images(const geometry *g, int64_t n) { return n * g->C * (g->H + 2 * g->pad) * (g->W + 2 * g->pad); }
/* elements of one chunk's xp, with the slack that im2row's whole-vector copies read past the end */
static int64_t padded_size(const geometry *g) { return padded_images(g, g->chunk) + RUN_LANES; }

/* the typed kernels of one dtype at one instruction-set level, with their tiles' panel width */
typedef struct {
    int64_t panel;   /* filters per panel (elements): what pack_panels, conv_rows and dw_rows use */
    bool pairs;      /* conv_rows takes the taps in pairs: only for windows whose runs of taps are even */
    void (*pad_channels_last)(const geometry *, const void *, bool, int64_t, int64_t, void *);
    void (*pack_panels)(const void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                        void *);
    void (*conv_rows)(const geometry *, const void *, const void *, const int64_t *, const void *, bool, int64_t, int64_t,
                      void *);
    void (*im2row)(const geometry *, int64_t, int64_t, const void *, void *);
    void (*row2im)(const geometry *, const void *, int64_t, int64_t, void *);
    void (*unpad)(const geometry *, const void *, int64_t, int64_t, void *);
    void (*relu_mask_rows)(const void *, const void *, int64_t, void *);
    void (*image_to_rows)(const geometry *, const void *, int64_t, int64_t, void *);
    void (*column_sums)(const void *, int64_t, int64_t, double *);
    void (*pool_rows)(const geometry *, const void *, int64_t, int64_t, void *, uint8_t *);
    void (*unpool_rows)(const geometry *, const void *, const void *, const uint8_t *, int64_t, int64_t, void *);
    void (*dw_rows)(const geometry *, const void *, const int64_t *, const void *, int64_t, int64_t *, void *);
} kernels;

/* the helpers of level ISA with the convolution tiles CONV (generic, avx2, v1, v2, p) packed by PACK and
 * the gradient tiles DW, of `panel_bytes`; pairs: CONV takes the taps in pairs */
#define KERNELS_OF(T, ISA, CONV, DW, PACK, panel_bytes, pairs)                                                \
    {                                                                                                         \
        (panel_bytes) / (int64_t)sizeof(T), pairs,                                                            \
            (void (*)(const geometry *, const void *, bool, int64_t, int64_t, void *))pad_channels_last_##T##_##ISA, \
            (void (*)(const void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                      void *))PACK,                                                                           \
            (void (*)(const geometry *, const void *, const void *, const int64_t *, const void *, bool, int64_t,   \
                      int64_t, void *))conv_rows_##T##_##CONV,                                                \
            (void (*)(const geometry *, int64_t, int64_t, const void *, void *))im2row_##T##_##ISA,           \
            (void (*)(const geometry *, const void *, int64_t, int64_t, void *))row2im_##T##_##ISA,           \
            (void (*)(const geometry *, const void *, int64_t, int64_t, void *))unpad_##T##_##ISA,            \
            (void (*)(const void *, const void *, int64_t, void *))relu_mask_rows_##T##_##ISA,                \
            (void (*)(const geometry *, const void *, int64_t, int64_t, void *))image_to_rows_##T##_##ISA,    \
            (void (*)(const void *, int64_t, int64_t, double *))column_sums_##T##_##ISA,                      \
            (void (*)(const geometry *, const void *, int64_t, int64_t, void *, uint8_t *))pool_rows_##T##_##ISA, \
            (void (*)(const geometry *, const void *, const void *, const uint8_t *, int64_t, int64_t, void *))unpool_rows_##T##_##ISA, \
            (void (*)(const geometry *, const void *, const int64_t *, const void *, int64_t, int64_t *, void *))dw_rows_##T##_##DW \
    }
/* one level's sets of one type: narrow, wide (the AVX-512 tiles of two vectors, where the filters fill
 * them), paired (AVX-512: narrow panels with the taps in pairs, forward and dw; elsewhere narrow again) */
#define LEVEL_SETS(T, ISA, NARROW, WIDE, PAIRED, pair_pack)                                                   \
    {                                                                                                         \
        KERNELS_OF(T, ISA, NARROW, NARROW, pack_panels_##T##_##ISA, 64, false),                               \
            KERNELS_OF(T, ISA, WIDE, WIDE, pack_panels_##T##_##ISA, WIDE_BYTES_##WIDE, false),                \
            KERNELS_OF(T, ISA, PAIRED, PAIRED, pair_pack, 64, PAIRS_##PAIRED)                                 \
    }
#define WIDE_BYTES_generic 64
#define WIDE_BYTES_avx2 64
#define WIDE_BYTES_v2 128
#define PAIRS_generic false
#define PAIRS_avx2 false
#define PAIRS_p true
enum { NARROW, WIDE, PAIRED };
static const kernels kernel_sets[NB_ISA_LEVELS][2][3] = {
    { LEVEL_SETS(float, generic, generic, generic, generic, pack_panels_float_generic),
      LEVEL_SETS(double, generic, generic, generic, generic, pack_panels_double_generic) },
#if NB_CLONES
    { LEVEL_SETS(float, avx2, avx2, avx2, avx2, pack_panels_float_avx2),
      LEVEL_SETS(double, avx2, avx2, avx2, avx2, pack_panels_double_avx2) },
    { LEVEL_SETS(float, avx512, v1, v2, p, pack_pairs_float), LEVEL_SETS(double, avx512, v1, v2, p, pack_pairs_double) },
#endif
};

/* the kernels for dtype dt at the level in use, for a convolution with `filters` output channels whose
 * windows have runs of `run` taps (KW·C) */
static const kernels *kernels_for(nb_dtype dt, int64_t filters, int64_t run)
{
    const kernels *set = kernel_sets[nb_isa_current()][dt == NB_F64];
    if (filters % set[WIDE].panel == 0) return &set[WIDE];
    return set[PAIRED].pairs && run % 2 == 0 ? &set[PAIRED] : &set[NARROW];
}

/* per-thread scratch: `per_thread` bytes for each of the threads that may run chunks */
static char *thread_scratch(size_t per_thread, int *threads)
{
    *threads = nb_parallel_threads();
    return nb_scratch(2, per_thread * (size_t)*threads);
}

/* the geometry of dx's convolution (stride 1): gᵀ's images padded by KH-1-pad, F channels in, C out */
static geometry dx_geometry(const geometry *g)
{
    geometry d = *g;
    d.C = g->F, d.F = g->C, d.H = g->OH, d.W = g->OW, d.OH = g->H, d.OW = g->W, d.P = g->H * g->W;
    d.K = g->F * g->KH * g->KW, d.pad = g->KH - 1 - g->pad, d.stride = 1;
    return d;
}

/* the filters wt:[F,KH,KW,C] packed for conv_rows (in scope memory): as they are for the forward
 * convolution, or for_dx as the filters of dx's convolution (stride 1): dx = conv(g padded by KH-1-pad,
 * wt flipped in i and j with F and C swapped) */
static void *packed_filters(const kernels *k, nb_dtype dt, const geometry *g, const void *wt, bool for_dx)
{
    const size_t es = nb_dtype_size(dt);
    const int64_t panel = k->panel, F = g->F, C = g->C, KH = g->KH, KW = g->KW;
    const int64_t out = for_dx ? C : F, taps = for_dx ? F * KH * KW : g->K;
    void *wp = nb_scope_alloc((size_t)((out + panel - 1) / panel * panel * taps) * es);
    if (!wp) return NULL;
    if (!for_dx) k->pack_panels(wt, F, KH, KW, C, g->K, KW * C, C, 1, panel, wp);
    else k->pack_panels((const char *)wt + (size_t)((KH - 1) * KW * C + (KW - 1) * C) * es, C, KH, KW, F, 1, -KW * C, -C, g->K,
                        panel, wp);
    return wp;
}

/* b in whole panels (zero past F), as conv_tile adds it (scope memory) */
static void *packed_bias(const kernels *k, const geometry *g, const nb_tensor *b)
{
    const size_t es = nb_dtype_size(b->dtype);
    const int64_t panel = k->panel, padded = (g->F + panel - 1) / panel * panel;
    char *p = nb_scope_alloc((size_t)padded * es);
    if (!p) return NULL;
    memcpy(p, b->data, (size_t)g->F * es);
    memset(p + (size_t)g->F * es, 0, (size_t)(padded - g->F) * es);
    return p;
}

/* where each tap k = (i, j, c) of a window sits in the padded buffer, from the window's start (scope memory) */
static int64_t *tap_offsets(const geometry *g)
{
    int64_t *tap = nb_scope_alloc(sizeof(int64_t) * (size_t)g->K);
    if (!tap) return NULL;
    const int64_t run = g->KW * g->C, row = (g->W + 2 * g->pad) * g->C;
    for (int64_t k = 0; k < g->K; k++) tap[k] = k / run * row + k % run;
    return tap;
}

/* the outputs of the backward kernel when recorded under create_graph: no rule, once-differentiable */
static const nb_op conv_backward_op = { .name = "nb_conv2d_fused_backward", .backward = NULL };

static int conv_backward(nb_node *node, nb_tensor *gy, nb_tensor **gin)
{
    bool x_cl, gy_cl;
    nb_tensor *x = kernel_input(node->in[0], &x_cl), *w = taps_last(node->in[1]), *b = node->in[2];
    const bool pool = node->iarg[3];   /* gy is then the pooled gradient [N,F,OH/2,OW/2] */
    gy = pool ? nb_contiguous(gy) : kernel_input(gy, &gy_cl);   /* channels-last: its rows are gᵀ already */
    if (pool) gy_cl = false;
    if (!x || !w || !gy) return -1;
    const geometry g = geometry_of(x, node->in[1], node->iarg[0], node->iarg[1]);
    const bool relu = node->iarg[2];
    const nb_tensor *y = node->out;   /* channels-last: the relu's mask, row by row */
    const nb_dtype dt = x->dtype;
    const kernels *k = kernels_for(dt, g.F, g.KW * g.C);
    const kernels *kd = kernels_for(dt, g.C, g.KW * g.F);   /* dx's convolution: C filters, F channels in */
    const size_t es = nb_dtype_size(dt);
    const bool need_x = nb_needs_grad(node, 0), need_w = nb_needs_grad(node, 1), need_b = b && nb_needs_grad(node, 2);
    const char *op = node->op->name;
    nb_tensor *dx = need_x ? nb_new_permuted(op, dt, 4, x->shape, CHANNELS_LAST) : NULL;
    int64_t partial_shape[3] = { g.chunks, g.K, g.F };
    nb_tensor *dw_parts = need_w ? nb_new(op, dt, 3, partial_shape) : NULL;      /* per chunk dwᵀ [K,F] */
    double *db_parts = need_b ? nb_scope_alloc(sizeof(double) * (size_t)(g.chunks * g.F)) : NULL;
    if ((need_x && !dx) || (need_w && !dw_parts) || (need_b && !db_parts)) return -1;
    if (nb_numel(gy) == 0) {   /* no pixels: zero gradients (otherwise every element is written below) */
        if (dx) memset(dx->data, 0, (size_t)nb_numel(dx) * es);
        if (dw_parts) memset(dw_parts->data, 0, (size_t)nb_numel(dw_parts) * es);
        if (db_parts) memset(db_parts, 0, sizeof(double) * (size_t)(g.chunks * g.F));
    }
    /* stride 1 (square kernels, pad < KH): dx is a convolution of gᵀ, by conv_rows; else dcols and row2im */
    const bool dx_by_conv = need_x && g.stride == 1 && g.KH == g.KW && g.pad < g.KH;
    const geometry gd = dx_geometry(&g);
    void *wdp = dx_by_conv ? packed_filters(kd, dt, &g, w->data, true) : NULL;
    int64_t *dx_tap = dx_by_conv ? tap_offsets(&gd) : NULL;
    if (dx_by_conv && (!wdp || !dx_tap)) return -1;
    /* dw straight from the padded x when its filters fill whole panels; else im2row blocks and BLIS */
    const bool dw_direct = need_w && g.F % k->panel == 0;
    int64_t *w_tap = dw_direct ? tap_offsets(&g) : NULL;
    if (dw_direct && !w_tap) return -1;
    const int64_t rows_max = g.chunk * g.P;
    const int64_t padded = dx_by_conv && padded_size(&gd) > padded_size(&g) ? padded_size(&gd) : padded_size(&g);
    /* the rows' window offsets (first: int64-aligned), gᵀ, a block's cols (+ slack) or dcols when BLIS takes
     * dw or dx, xp or gᵀ padded; each thread's part in whole 64-byte lines */
    const int64_t cols_size = (need_w && !dw_direct) || (need_x && !dx_by_conv) ? g.block * g.K + RUN_LANES : 0;
    const size_t per_thread =
        (sizeof(int64_t) * (size_t)rows_max + (size_t)(rows_max * g.F + cols_size + padded) * es + 63) / 64 * 64;
    int threads;
    char *scratch = thread_scratch(per_thread, &threads);
    if (!scratch) return -1;
#pragma omp parallel for if (threads > 1 && g.chunks > 1) num_threads(threads) schedule(dynamic)
    for (int64_t ci = 0; ci < (nb_numel(gy) > 0 ? g.chunks : 0); ci++) {
        const int64_t n0 = ci * g.chunk, n1 = n0 + g.chunk < g.N ? n0 + g.chunk : g.N, rows = (n1 - n0) * g.P;
        int64_t *win = (int64_t *)(void *)(scratch + per_thread * (size_t)nb_thread_index());
        char *gt = (char *)(win + rows_max), *cols = gt + (size_t)(rows_max * g.F) * es;
        char *xp = cols + (size_t)cols_size * es;
        const size_t first_row = (size_t)(n0 * g.P * g.F) * es;
        if (pool) k->unpool_rows(&g, gy->data, y->data, node->saved->data, n0, n1, gt);
        else if (gy_cl && !relu) gt = (char *)gy->data + first_row;   /* the rows as they are */
        else if (gy_cl) k->relu_mask_rows((char *)gy->data + first_row, (char *)y->data + first_row, rows * g.F, gt);
        else {
            k->image_to_rows(&g, gy->data, n0, n1, gt);
            if (relu) k->relu_mask_rows(gt, (char *)y->data + first_row, rows * g.F, gt);
        }
        if (need_b) k->column_sums(gt, rows, g.F, db_parts + ci * g.F);
        char *dw_part = need_w ? (char *)dw_parts->data + (size_t)(ci * g.K * g.F) * es : NULL;
        if (need_w) k->pad_channels_last(&g, x->data, x_cl, n0, n1, xp);
        if (dw_direct) k->dw_rows(&g, xp, w_tap, gt, rows, win, dw_part);
        else if (need_w) {   /* dwᵀ[K,F] = colsᵀ · gᵀ, summed over the blocks */
            for (int64_t r0 = 0; r0 < rows; r0 += g.block) {
                const int64_t r1 = r0 + g.block < rows ? r0 + g.block : rows;
                k->im2row(&g, r0, r1, xp, cols);
                nb_gemm(dt, g.K, g.F, r1 - r0, cols, 1, g.K, gt + (size_t)(r0 * g.F) * es, g.F, 1, r0 ? 1 : 0, dw_part, g.F, 1);
            }
        }
        if (dx_by_conv) {   /* dx's rows = conv_rows of gᵀ padded */
            k->pad_channels_last(&gd, gt, true, 0, n1 - n0, xp);
            kd->conv_rows(&gd, xp, wdp, dx_tap, NULL, false, 0, (n1 - n0) * gd.P, (char *)dx->data + (size_t)(n0 * gd.P * g.C) * es);
        } else if (need_x) {   /* dcols[rows,K] = gᵀ · w, block by block added back to the pixels */
            memset(xp, 0, (size_t)padded_images(&g, n1 - n0) * es);
            for (int64_t r0 = 0; r0 < rows; r0 += g.block) {
                const int64_t r1 = r0 + g.block < rows ? r0 + g.block : rows;
                nb_gemm(dt, r1 - r0, g.K, g.F, gt + (size_t)(r0 * g.F) * es, g.F, 1, w->data, g.K, 1, 0, cols, g.K, 1);
                k->row2im(&g, cols, r0, r1, xp);
            }
            k->unpad(&g, xp, n0, n1, dx->data);
        }
    }
    nb_tensor *dw = NULL, *db = NULL;
    if (need_w) {   /* Σ over chunks in order, transposed back to [F,C,KH,KW] */
        nb_tensor *dw_t = nb_sum_axes(dw_parts, NB_AXES(0), false);                  /* [K,F], taps (i,j,c) */
        dw = nb_contiguous(nb_permute(nb_reshape(nb_transpose(dw_t, 0, 1), NB_SHAPE(g.F, g.KH, g.KW, g.C)),
                                      NB_AXES(0, 3, 1, 2)));                         /* [F,C,KH,KW] */
        if (!dw) return -1;
    }
    if (need_b) {
        db = nb_new(op, dt, 1, &g.F);
        if (!db) return -1;
        for (int64_t f = 0; f < g.F; f++) {
            double sum = 0;
            for (int64_t ci = 0; ci < g.chunks; ci++) sum += db_parts[ci * g.F + f];
            nb_store(dt, (char *)db->data + (size_t)f * es, sum);
        }
    }
    nb_tensor *outs[3] = { dx, dw, db };
    nb_tensor *deps[3] = { node->in[0], node->in[1], gy };   /* what the kernel read; recorded only under create_graph */
    for (int i = 0; i < 3; i++) {
        if (!outs[i]) continue;
        nb_record(&conv_backward_op, outs[i], 3, deps);
        gin[i] = outs[i];
    }
    return 0;
}
static const nb_op conv_op = { .name = "nb_conv2d_fused", .backward = conv_backward };
static const nb_op conv_relu_op = { .name = "nb_conv2d_relu_fused", .backward = conv_backward };

static const nb_op conv_relu_pool_op = { .name = "nb_conv2d_relu_pool_fused", .backward = conv_backward };

/* relu: apply relu; pool: then 2x2 max pooling (the result NCHW, saved: one byte per pooled value) */
static nb_tensor *conv_fused(const nb_op *op, nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, bool relu,
                             bool pool)
{
    if (!x || !w) return nb_null_input(op->name);
    if (!nb_conv_check(op->name, x, w, b, stride, pad)) return NULL;
    bool x_cl;
    nb_tensor *xc = kernel_input(x, &x_cl), *wc = taps_last(w), *bc = b ? nb_contiguous(b) : NULL;
    if (!xc || !wc || (b && !bc)) return NULL;
    const geometry g = geometry_of(x, w, stride, pad);
    if (pool && (g.OH < 2 || g.OW < 2)) {
        nb_error("%s: the 2x2 max pool needs a convolution output of at least 2x2, got %lldx%lld from x %s", op->name,
                 (long long)g.OH, (long long)g.OW, nb_shp(x));
        return NULL;
    }
    const nb_dtype dt = x->dtype;
    const kernels *k = kernels_for(dt, g.F, g.KW * g.C);
    const size_t es = nb_dtype_size(dt);
    /* y: the convolution's rows (channels-last), or with pool the pooled images, NCHW */
    nb_tensor *y = pool ? nb_new(op->name, dt, 4, (int64_t[]){ g.N, g.F, g.OH / 2, g.OW / 2 })
                        : nb_new_permuted(op->name, dt, 4, (int64_t[]){ g.N, g.F, g.OH, g.OW }, CHANNELS_LAST);
    nb_tensor *codes = pool ? nb_new(op->name, NB_I64, 1, (int64_t[]){ (nb_numel(y) + 7) / 8 }) : NULL;   /* bytes */
    if (!y || (pool && !codes)) return NULL;
    const int64_t rows_max = g.chunk * g.P;
    const size_t per_thread = (size_t)(padded_size(&g) + (pool ? rows_max * g.F : 0)) * es;   /* xp, rows */
    void *wp = packed_filters(k, dt, &g, wc->data, false), *bias = bc ? packed_bias(k, &g, bc) : NULL;
    int64_t *tap = tap_offsets(&g);
    if (!wp || !tap || (bc && !bias)) return NULL;
    if (nb_numel(y) > 0) {
        int threads;
        char *scratch = thread_scratch(per_thread, &threads);
        if (!scratch) return NULL;
#pragma omp parallel for if (threads > 1 && g.chunks > 1) num_threads(threads) schedule(dynamic)
        for (int64_t ci = 0; ci < g.chunks; ci++) {
            const int64_t n0 = ci * g.chunk, n1 = n0 + g.chunk < g.N ? n0 + g.chunk : g.N, rows = (n1 - n0) * g.P;
            char *xp = scratch + per_thread * (size_t)nb_thread_index();
            char *out = pool ? xp + (size_t)padded_size(&g) * es                       /* the chunk's rows, pooled below */
                             : (char *)y->data + (size_t)(n0 * g.P * g.F) * es;       /* the chunk's rows of y */
            k->pad_channels_last(&g, xc->data, x_cl, n0, n1, xp);
            k->conv_rows(&g, xp, wp, tap, bias, relu, 0, rows, out);
            if (pool) k->pool_rows(&g, out, n0, n1, y->data, codes->data);
        }
    }
    nb_tensor *in[3] = { x, w, b };
    nb_node *n = nb_record(op, y, 3, in);
    if (n) {
        n->iarg[0] = stride;
        n->iarg[1] = pad;
        n->iarg[2] = relu;
        n->iarg[3] = pool;
        n->saved = codes;
    }
    return y;
}

nb_tensor *nb_conv2d_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad)
{
    return conv_fused(&conv_op, x, w, b, stride, pad, false, false);
}

nb_tensor *nb_conv2d_relu_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad)
{
    return conv_fused(&conv_relu_op, x, w, b, stride, pad, true, false);
}

nb_tensor *nb_conv2d_relu_pool_fused(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad)
{
    return conv_fused(&conv_relu_pool_op, x, w, b, stride, pad, true, true);
}
