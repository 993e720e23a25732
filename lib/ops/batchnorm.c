/* Fused train-mode batch normalisation of x:[N,D] (per column) or x:[N,C,H,W] (per channel): one forward kernel (statistics
 * accumulated in double) and a closed-form backward kernel. The backward kernel is not built from
 * engine ops, so the op is once-differentiable: under create_graph its outputs are recorded with a
 * node that has no backward rule, and differentiating through them is a clear error. */
#include "../internal.h"

#include <math.h>

/* Kernels, one per element type T, over contiguous x and g seen as [A, C, B]: A = N, C the channel
 * (feature) axis, B the pixels of a channel (1 for [N,D]). Sums run in double over LANES partial
 * sums (so they vectorize, in a fixed order), and each channel belongs to one thread, so results do
 * not depend on the thread count. */
#define LANES 8
#define BATCHNORM_KERNELS(T)                                                                                  \
    /* Σ x and Σ (x - m)² over the channel's runs (forward) */                                             \
    NB_HOT static void channel_moments_##T(const T *x, int64_t A, int64_t C, int64_t B, int64_t c, double m,   \
                                           double *sum, double *sum_sq)                                       \
    {                                                                                                         \
        double s[LANES] = { 0 }, t[LANES] = { 0 };                                                            \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B;                                                                 \
            int64_t b = 0;                                                                                    \
            for (; b + LANES <= B; b += LANES)                                                                \
                for (int l = 0; l < LANES; l++) {                                                             \
                    const double d = (double)p[b + l] - m;                                                    \
                    s[l] += p[b + l];                                                                         \
                    t[l] += d * d;                                                                            \
                }                                                                                             \
            for (; b < B; b++) {                                                                              \
                const double d = (double)p[b] - m;                                                            \
                s[0] += p[b];                                                                                 \
                t[0] += d * d;                                                                                \
            }                                                                                                 \
        }                                                                                                     \
        *sum = *sum_sq = 0;                                                                                   \
        for (int l = 0; l < LANES; l++) *sum += s[l], *sum_sq += t[l];                                        \
    }                                                                                                         \
    /* Σ dy and Σ dy·(x - m) over the channel's runs (backward) */                                           \
    NB_HOT static void channel_grad_sums_##T(const T *x, const T *g, int64_t A, int64_t C, int64_t B, int64_t c, \
                                             double m, double *sum_dy, double *sum_dy_centred)                \
    {                                                                                                         \
        double s[LANES] = { 0 }, t[LANES] = { 0 };                                                            \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B, *q = g + (a * C + c) * B;                                       \
            int64_t b = 0;                                                                                    \
            for (; b + LANES <= B; b += LANES)                                                                \
                for (int l = 0; l < LANES; l++) {                                                             \
                    s[l] += q[b + l];                                                                         \
                    t[l] += (double)q[b + l] * ((double)p[b + l] - m);                                        \
                }                                                                                             \
            for (; b < B; b++) {                                                                              \
                s[0] += q[b];                                                                                 \
                t[0] += (double)q[b] * ((double)p[b] - m);                                                    \
            }                                                                                                 \
        }                                                                                                     \
        *sum_dy = *sum_dy_centred = 0;                                                                        \
        for (int l = 0; l < LANES; l++) *sum_dy += s[l], *sum_dy_centred += t[l];                             \
    }                                                                                                         \
    /* out = x·scale + shift over the channel */                                                             \
    NB_HOT static void channel_affine_##T(const T *x, int64_t A, int64_t C, int64_t B, int64_t c, double scale, \
                                          double shift, T *out)                                               \
    {                                                                                                         \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B;                                                                 \
            T *o = out + (a * C + c) * B;                                                                     \
            for (int64_t b = 0; b < B; b++) o[b] = (T)(p[b] * scale + shift);                                 \
        }                                                                                                     \
    }                                                                                                         \
    /* dx = scale·(count·dy − Σdy − (x − m)·iv·Σ(dy·x̂)) over the channel */                                    \
    NB_HOT static void channel_dx_##T(const T *x, const T *g, int64_t A, int64_t C, int64_t B, int64_t c,      \
                                      double m, double iv, double scale, double count, double sum_dy,         \
                                      double sum_dy_xhat, T *dx)                                              \
    {                                                                                                         \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B, *q = g + (a * C + c) * B;                                       \
            T *d = dx + (a * C + c) * B;                                                                      \
            for (int64_t b = 0; b < B; b++)                                                                   \
                d[b] = (T)(scale * (count * q[b] - sum_dy - (p[b] - m) * iv * sum_dy_xhat));                 \
        }                                                                                                     \
    }                                                                                                         \
    static void forward_##T(const T *x, int64_t A, int64_t C, int64_t B, const nb_tensor *gamma,             \
                            const nb_tensor *beta, T *out, double *mean, double *inv, double *var, double eps) \
    {                                                                                                         \
        const double count = (double)(A * B);                                                                 \
        const T *gd = gamma->data, *bd = beta->data;                                                          \
        const int64_t gs = gamma->stride[0], bs = beta->stride[0];                                            \
        _Pragma("omp parallel for if (A * C * B >= 65536 && C > 1) schedule(static)")                        \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            double sum, unused, sq;                                                                           \
            channel_moments_##T(x, A, C, B, c, 0, &sum, &unused);                                             \
            const double m = sum / count;                                                                     \
            channel_moments_##T(x, A, C, B, c, m, &unused, &sq);                                              \
            mean[c] = m;                                                                                      \
            var[c] = sq / count; /* biased, from the centred values */                                        \
            inv[c] = 1.0 / sqrt(var[c] + eps);                                                                \
            const double scale = gd[c * gs] * inv[c];                                                         \
            channel_affine_##T(x, A, C, B, c, scale, bd[c * bs] - m * scale, out);                            \
        }                                                                                                     \
    }                                                                                                         \
    /* dx = γ·σ⁻¹/count · (count·dy − Σdy − x̂·Σ(dy·x̂)),  dγ = Σ dy·x̂,  dβ = Σ dy */                          \
    static void backward_##T(const T *x, const T *g, int64_t A, int64_t C, int64_t B, const nb_tensor *gamma,  \
                             const double *mean, const double *inv, T *dx, T *dgamma, T *dbeta)               \
    {                                                                                                         \
        const double count = (double)(A * B);                                                                 \
        const T *gam = gamma->data;                                                                           \
        _Pragma("omp parallel for if (A * C * B >= 65536 && C > 1) schedule(static)")                        \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            const double m = mean[c], iv = inv[c];                                                            \
            double sum_dy, sum_dy_xhat;                                                                       \
            channel_grad_sums_##T(x, g, A, C, B, c, m, &sum_dy, &sum_dy_xhat);                                \
            sum_dy_xhat *= iv;                                                                                \
            dgamma[c] = (T)sum_dy_xhat;                                                                       \
            dbeta[c] = (T)sum_dy;                                                                             \
            const double scale = gam[c * gamma->stride[0]] * iv / count;                                     \
            channel_dx_##T(x, g, A, C, B, c, m, iv, scale, count, sum_dy, sum_dy_xhat, dx);                   \
        }                                                                                                     \
    }

/* The same for channels-last images, seen as R = N·H·W rows of C channels: sums are taken over
 * fixed blocks of ROW_BLOCK rows (vectorized along the channels), one block per thread at a time,
 * and the blocks' partial sums are added in order, so results do not depend on the thread count.
 * part: 2·blocks·C doubles of scratch. */
#define ROW_BLOCK 256
#define ROWS_KERNELS(T)                                                                                       \
    /* s[c] = Σ x, or with m: Σ (x - m[c])·(q ? q : x - m[c]) over rows [r0, r1); q is taken as 0 where  \
     * y (the relu variant's output, else NULL) is not positive */                                          \
    NB_HOT static void block_sums_##T(const T *x, const T *q, const T *y, const double *m, int64_t r0,         \
                                      int64_t r1, int64_t C, double *s, double *t)                            \
    {                                                                                                         \
        for (int64_t c = 0; c < C; c++) s[c] = t[c] = 0;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const double v = x[r * C + c], d = m ? v - m[c] : 0;                                          \
                const double qv = q && (!y || y[r * C + c] > 0) ? (double)q[r * C + c] : 0;                   \
                s[c] += q ? qv : v;                                                                           \
                t[c] += d * (q ? qv : d);                                                                     \
            }                                                                                                 \
    }                                                                                                         \
    /* out = x·a[c] + b[c] (then relu'd when asked) when g is NULL, else                                     \
     * dx = a[c]·(count·g − b[c] − (x − m[c])·e[c]) with g taken as 0 where y (if given) is not positive */  \
    NB_HOT static void rows_map_##T(const T *x, const T *g, const T *y, bool relu, int64_t r0, int64_t r1,     \
                                    int64_t C, const double *a, const double *b, const double *m,             \
                                    const double *e, double count, T *out)                                    \
    {                                                                                                         \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const double v = x[r * C + c];                                                                \
                if (g) {                                                                                      \
                    const double gv = !y || y[r * C + c] > 0 ? (double)g[r * C + c] : 0;                      \
                    out[r * C + c] = (T)(a[c] * (count * gv - b[c] - (v - m[c]) * e[c]));                     \
                } else {                                                                                      \
                    const T o = (T)(v * a[c] + b[c]);                                                         \
                    out[r * C + c] = relu && o < 0 ? 0 : o;                                                   \
                }                                                                                             \
            }                                                                                                 \
    }                                                                                                         \
    /* Σ over the blocks' partial sums, in block order */                                                    \
    static void sum_blocks_##T(int64_t R, int64_t C, const T *x, const T *q, const T *y, const double *m,     \
                               double *part, double *s, double *t)                                            \
    {                                                                                                         \
        const int64_t blocks = (R + ROW_BLOCK - 1) / ROW_BLOCK;                                               \
        _Pragma("omp parallel for if (R * C >= 65536) schedule(static)")                                     \
        for (int64_t k = 0; k < blocks; k++)                                                                  \
            block_sums_##T(x, q, y, m, k * ROW_BLOCK, k * ROW_BLOCK + ROW_BLOCK < R ? k * ROW_BLOCK + ROW_BLOCK : R, \
                           C, part + 2 * k * C, part + (2 * k + 1) * C);                                      \
        for (int64_t c = 0; c < C; c++) s[c] = t[c] = 0;                                                      \
        for (int64_t k = 0; k < blocks; k++)                                                                  \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                s[c] += part[2 * k * C + c];                                                                  \
                t[c] += part[(2 * k + 1) * C + c];                                                            \
            }                                                                                                 \
    }                                                                                                         \
    static void map_rows_##T(int64_t R, int64_t C, const T *x, const T *g, const T *y, bool relu,            \
                             const double *a, const double *b, const double *m, const double *e, double count, \
                             T *out)                                                                          \
    {                                                                                                         \
        const int64_t blocks = (R + ROW_BLOCK - 1) / ROW_BLOCK;                                               \
        _Pragma("omp parallel for if (R * C >= 65536) schedule(static)")                                     \
        for (int64_t k = 0; k < blocks; k++)                                                                  \
            rows_map_##T(x, g, y, relu, k * ROW_BLOCK, k * ROW_BLOCK + ROW_BLOCK < R ? k * ROW_BLOCK + ROW_BLOCK : R, C, \
                         a, b, m, e, count, out);                                                          \
    }                                                                                                         \
    static void rows_forward_##T(const T *x, int64_t R, int64_t C, const nb_tensor *gamma,                    \
                                 const nb_tensor *beta, bool relu, T *out, double *mean, double *inv,         \
                                 double *var, double eps, double *part, double *scale, double *shift)         \
    {                                                                                                         \
        const double count = (double)R;                                                                       \
        sum_blocks_##T(R, C, x, NULL, NULL, NULL, part, mean, var);                                           \
        for (int64_t c = 0; c < C; c++) mean[c] /= count;                                                     \
        sum_blocks_##T(R, C, x, NULL, NULL, mean, part, shift, var); /* var: Σ (x - mean)² */                 \
        const T *gd = gamma->data, *bd = beta->data;                                                          \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            var[c] /= count; /* biased */                                                                     \
            inv[c] = 1.0 / sqrt(var[c] + eps);                                                                \
            scale[c] = gd[c * gamma->stride[0]] * inv[c];                                                     \
            shift[c] = bd[c * beta->stride[0]] - mean[c] * scale[c];                                          \
        }                                                                                                     \
        map_rows_##T(R, C, x, NULL, NULL, relu, scale, shift, NULL, NULL, 0, out);                            \
    }                                                                                                         \
    static void rows_backward_##T(const T *x, const T *g, const T *y, int64_t R, int64_t C,                   \
                                  const nb_tensor *gamma,                                                     \
                                  const double *mean, const double *inv, T *dx, T *dgamma, T *dbeta,          \
                                  double *part, double *a, double *b, double *e)                              \
    {                                                                                                         \
        const double count = (double)R;                                                                       \
        sum_blocks_##T(R, C, x, g, y, mean, part, b, e); /* b: Σ dy, e: Σ dy·(x - mean) */                    \
        const T *gam = gamma->data;                                                                           \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            e[c] *= inv[c]; /* Σ dy·x̂ */                                                                       \
            dgamma[c] = (T)e[c];                                                                              \
            dbeta[c] = (T)b[c];                                                                               \
            a[c] = gam[c * gamma->stride[0]] * inv[c] / count;                                                \
            e[c] *= inv[c];                                                                                   \
        }                                                                                                     \
        map_rows_##T(R, C, x, g, y, false, a, b, mean, e, count, dx);                                         \
    }

BATCHNORM_KERNELS(float)
BATCHNORM_KERNELS(double)
ROWS_KERNELS(float)
ROWS_KERNELS(double)

/* saved: f64 [2,C], row 0 the batch mean, row 1 the inverse standard deviation 1/sqrt(var + eps) */
static int batchnorm_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op batchnorm_op = { "nb_batchnorm_fused", batchnorm_backward };
static const nb_op batchnorm_relu_op = { "nb_batchnorm_relu_fused", batchnorm_backward };   /* iarg[0] = 1 */
/* the outputs of the backward kernel when recorded under create_graph: no rule, once-differentiable */
static const nb_op batchnorm_backward_op = { "nb_batchnorm_fused_backward", NULL };

/* x as [A, C, B] (see the kernels) */
static void geometry(const nb_tensor *x, int64_t *A, int64_t *C, int64_t *B)
{
    *A = x->shape[0];
    *C = x->shape[1];
    *B = nb_shape_numel(x->ndim - 2, x->shape + 2);
}

/* x:[N,C,H,W] laid out [N,H,W,C] (the fused convolution's output): the row kernels apply */
static bool channels_last(const nb_tensor *x)
{
    static const int order_nhwc[4] = { 0, 2, 3, 1 };
    int order[NB_MAX_DIMS];
    return x->ndim == 4 && !nb_is_contiguous(x) && nb_dense_order(x, order) && !memcmp(order, order_nhwc, sizeof order_nhwc);
}

/* scratch of the row kernels: block partial sums and three per-channel arrays */
static double *rows_scratch(int64_t R, int64_t C)
{
    return nb_scope_alloc(sizeof(double) * (size_t)((2 * ((R + ROW_BLOCK - 1) / ROW_BLOCK) + 3) * C));
}

static int batchnorm_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = node->in[0], *gamma = node->in[1];
    int64_t A, C, B;
    geometry(x, &A, &C, &B);
    const double *mean = node->saved->data, *inv = mean + C;
    nb_dtype dt = x->dtype;
    nb_tensor *dgamma = nb_new(dt, 1, &C);
    nb_tensor *dbeta = nb_new(dt, 1, &C);
    if (!dgamma || !dbeta) return -1;
    nb_tensor *dx;
    if (channels_last(x)) {   /* g brought to x's layout (a copy only when it has another) */
        bool same = !memcmp(g->stride, x->stride, sizeof(int64_t) * 4);
        nb_tensor *gl = same ? g : nb_new_layout_of(x, dt);
        double *part = rows_scratch(A * B, C);
        dx = nb_new_layout_of(x, dt);
        if (!gl || !part || !dx || (!same && nb_copy_into(gl, g))) return -1;
        double *a = part + 2 * ((A * B + ROW_BLOCK - 1) / ROW_BLOCK) * C, *b = a + C, *e = b + C;
        const void *y = node->iarg[0] ? node->out->data : NULL;   /* the relu variant's mask: out > 0 */
        if (dt == NB_F32) rows_backward_float(x->data, gl->data, y, A * B, C, gamma, mean, inv, dx->data, dgamma->data, dbeta->data, part, a, b, e);
        else rows_backward_double(x->data, gl->data, y, A * B, C, gamma, mean, inv, dx->data, dgamma->data, dbeta->data, part, a, b, e);
    } else {
        nb_tensor *xc = nb_contiguous(x), *gc = nb_contiguous(g);   /* copies only when strided */
        dx = nb_new(dt, x->ndim, x->shape);
        if (!xc || !gc || !dx) return -1;
        if (dt == NB_F32) backward_float(xc->data, gc->data, A, C, B, gamma, mean, inv, dx->data, dgamma->data, dbeta->data);
        else backward_double(xc->data, gc->data, A, C, B, gamma, mean, inv, dx->data, dgamma->data, dbeta->data);
    }
    nb_tensor *outs[3] = { dx, dgamma, dbeta };
    nb_tensor *deps[3] = { x, gamma, g };   /* what the kernel read; recorded only under create_graph */
    for (int k = 0; k < 3; k++) {
        nb_record(&batchnorm_backward_op, outs[k], 3, deps);
        if (nb_needs_grad(node, k)) gin[k] = outs[k];
    }
    return 0;
}

/* errors name op: nb_batchnorm_fused or nb_batchnorm_relu_fused */
static bool check_inputs(const char *op, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps)
{
    if (!nb_check_float(op, x) || !nb_check_same_dtype(op, x, gamma) || !nb_check_same_dtype(op, x, beta))
        return false;
    if (x->ndim != 2 && x->ndim != 4) {
        nb_error("%s: x must be [N,D] or [N,C,H,W], got %s", op, nb_shp(x));
        return false;
    }
    if (x->shape[0] == 0 || (x->ndim == 4 && x->shape[2] * x->shape[3] == 0)) {
        nb_error("%s: x %s has no %s to take statistics over", op, nb_shp(x), x->ndim == 2 ? "rows" : "pixels");
        return false;
    }
    const char *names[2] = { "gamma", "beta" };
    nb_tensor *params[2] = { gamma, beta };
    for (int k = 0; k < 2; k++)
        if (params[k]->ndim != 1 || params[k]->shape[0] != x->shape[1]) {
            nb_error("%s: %s %s must be [%lld] to match x %s", op, names[k], nb_shp(params[k]),
                     (long long)x->shape[1], nb_shp(x));
            return false;
        }
    if (!(eps >= 0)) {
        nb_error("%s: eps must be >= 0, got %g", op, eps);
        return false;
    }
    return true;
}

/* relu: the relu variant (channels-last x only; see nb_batchnorm_relu_fused); errors name op */
static nb_tensor *batchnorm_fused(const char *op, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps,
                                  bool relu, nb_tensor **mean_out, nb_tensor **var_out)
{
    if (mean_out) *mean_out = NULL;
    if (var_out) *var_out = NULL;
    if (!x || !gamma || !beta) return NULL;
    if (!check_inputs(op, x, gamma, beta, eps)) return NULL;
    int64_t A, C, B;
    geometry(x, &A, &C, &B);
    nb_dtype dt = x->dtype;
    int64_t saved_shape[2] = { 2, C };
    nb_tensor *saved = nb_new(NB_F64, 2, saved_shape);
    const bool rows = channels_last(x);
    nb_tensor *xc = rows ? x : nb_contiguous(x);   /* a copy only when x is strided otherwise */
    nb_tensor *out = rows ? nb_new_layout_of(x, dt) : nb_new(dt, x->ndim, x->shape);
    nb_tensor *mean_t = mean_out ? nb_new(dt, 1, &C) : NULL;
    nb_tensor *var_t = var_out ? nb_new(dt, 1, &C) : NULL;
    if (!saved || !xc || !out || (mean_out && !mean_t) || (var_out && !var_t)) return NULL;
    double *mean = saved->data, *inv = mean + C;
    double *var = nb_scope_alloc(sizeof(double) * (size_t)C), *part = rows ? rows_scratch(A * B, C) : NULL;
    if (!var || (rows && !part)) return NULL;
    if (rows) {
        double *scale = part + 2 * ((A * B + ROW_BLOCK - 1) / ROW_BLOCK) * C, *shift = scale + C;
        if (dt == NB_F32) rows_forward_float(xc->data, A * B, C, gamma, beta, relu, out->data, mean, inv, var, eps, part, scale, shift);
        else rows_forward_double(xc->data, A * B, C, gamma, beta, relu, out->data, mean, inv, var, eps, part, scale, shift);
    } else if (dt == NB_F32) {
        forward_float(xc->data, A, C, B, gamma, beta, out->data, mean, inv, var, eps);
    } else {
        forward_double(xc->data, A, C, B, gamma, beta, out->data, mean, inv, var, eps);
    }
    for (int64_t j = 0; j < C; j++) {
        if (mean_t) nb_store(dt, (char *)mean_t->data + j * (int64_t)nb_dtype_size(dt), mean[j]);
        if (var_t) nb_store(dt, (char *)var_t->data + j * (int64_t)nb_dtype_size(dt), var[j]);
    }
    nb_tensor *in[3] = { x, gamma, beta };
    nb_node *n = nb_record(relu ? &batchnorm_relu_op : &batchnorm_op, out, 3, in);
    if (n) {
        n->saved = saved;
        n->darg[0] = eps;
        n->iarg[0] = relu;
    }
    if (mean_out) *mean_out = mean_t;
    if (var_out) *var_out = var_t;
    return out;
}

nb_tensor *nb_batchnorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean_out,
                              nb_tensor **var_out)
{
    return batchnorm_fused("nb_batchnorm_fused", x, gamma, beta, eps, false, mean_out, var_out);
}

nb_tensor *nb_batchnorm_relu_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean_out,
                                   nb_tensor **var_out)
{
    const char *op = "nb_batchnorm_relu_fused";
    if (x && channels_last(x)) return batchnorm_fused(op, x, gamma, beta, eps, true, mean_out, var_out);
    return nb_relu(batchnorm_fused(op, x, gamma, beta, eps, false, mean_out, var_out));   /* other layouts: two ops */
}
