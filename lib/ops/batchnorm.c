/* Fused train-mode batch normalisation of x:[N,D] (per column) or x:[N,C,H,W] (per channel): one forward kernel (statistics
 * accumulated in double) and a closed-form backward kernel. The backward kernel is not built from
 * engine ops, so the op is once-differentiable: under create_graph its outputs are recorded with a
 * node that has no backward rule, and differentiating through them is a clear error. */
#include "../internal.h"

#include <math.h>

/* Kernels, one per element type T and instruction-set level ISA (ATTR: its target attribute, see
 * internal.h; the drivers forward_ and backward_ call their level's kernels), over contiguous x and g
 * seen as [A, C, B]: A = N, C the channel (feature) axis, B the pixels of a channel (1 for [N,D]).
 * Sums run in double over LANES partial sums (so they vectorize, in a fixed order, the same at every
 * level), and each channel belongs to one thread, so results do not depend on the thread count. */
#define LANES 8
#define BATCHNORM_KERNELS(ISA, ATTR, T)                                                                       \
    /* Σ x and Σ (x - m)² over the channel's runs (forward) */                                             \
    ATTR static void channel_moments_##T##_##ISA(const T *x, int64_t A, int64_t C, int64_t B, int64_t c, double m, \
                                                 double *sum, double *sum_sq)                                 \
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
    ATTR static void channel_grad_sums_##T##_##ISA(const T *x, const T *g, int64_t A, int64_t C, int64_t B, int64_t c, \
                                                   double m, double *sum_dy, double *sum_dy_centred)          \
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
    ATTR static void channel_affine_##T##_##ISA(const T *x, int64_t A, int64_t C, int64_t B, int64_t c, double scale, \
                                                double shift, T *out)                                         \
    {                                                                                                         \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B;                                                                 \
            T *o = out + (a * C + c) * B;                                                                     \
            for (int64_t b = 0; b < B; b++) o[b] = (T)(p[b] * scale + shift);                                 \
        }                                                                                                     \
    }                                                                                                         \
    /* dx = scale·(count·dy − Σdy − (x − m)·iv·Σ(dy·x̂)) over the channel */                                    \
    ATTR static void channel_dx_##T##_##ISA(const T *x, const T *g, int64_t A, int64_t C, int64_t B, int64_t c, \
                                            double m, double iv, double scale, double count, double sum_dy,   \
                                            double sum_dy_xhat, T *dx)                                        \
    {                                                                                                         \
        for (int64_t a = 0; a < A; a++) {                                                                     \
            const T *p = x + (a * C + c) * B, *q = g + (a * C + c) * B;                                       \
            T *d = dx + (a * C + c) * B;                                                                      \
            for (int64_t b = 0; b < B; b++)                                                                   \
                d[b] = (T)(scale * (count * q[b] - sum_dy - (p[b] - m) * iv * sum_dy_xhat));                 \
        }                                                                                                     \
    }                                                                                                         \
    static void forward_##T##_##ISA(const T *x, int64_t A, int64_t C, int64_t B, const nb_tensor *gamma,     \
                                    const nb_tensor *beta, T *out, double *mean, double *inv, double *var, double eps) \
    {                                                                                                         \
        const double count = (double)(A * B);                                                                 \
        const T *gd = gamma->data, *bd = beta->data;                                                          \
        const int64_t gs = gamma->stride[0], bs = beta->stride[0];                                            \
        _Pragma("omp parallel for if (A * C * B >= 65536 && C > 1) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            double sum, unused, sq;                                                                           \
            channel_moments_##T##_##ISA(x, A, C, B, c, 0, &sum, &unused);                                     \
            const double m = sum / count;                                                                     \
            channel_moments_##T##_##ISA(x, A, C, B, c, m, &unused, &sq);                                      \
            mean[c] = m;                                                                                      \
            var[c] = sq / count; /* biased, from the centred values */                                        \
            inv[c] = 1.0 / sqrt(var[c] + eps);                                                                \
            const double scale = gd[c * gs] * inv[c];                                                         \
            channel_affine_##T##_##ISA(x, A, C, B, c, scale, bd[c * bs] - m * scale, out);                    \
        }                                                                                                     \
    }                                                                                                         \
    /* dx = γ·σ⁻¹/count · (count·dy − Σdy − x̂·Σ(dy·x̂)),  dγ = Σ dy·x̂,  dβ = Σ dy */                          \
    static void backward_##T##_##ISA(const T *x, const T *g, int64_t A, int64_t C, int64_t B, const nb_tensor *gamma, \
                                     const double *mean, const double *inv, T *dx, T *dgamma, T *dbeta)       \
    {                                                                                                         \
        const double count = (double)(A * B);                                                                 \
        const T *gam = gamma->data;                                                                           \
        _Pragma("omp parallel for if (A * C * B >= 65536 && C > 1) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            const double m = mean[c], iv = inv[c];                                                            \
            double sum_dy, sum_dy_xhat;                                                                       \
            channel_grad_sums_##T##_##ISA(x, g, A, C, B, c, m, &sum_dy, &sum_dy_xhat);                        \
            sum_dy_xhat *= iv;                                                                                \
            dgamma[c] = (T)sum_dy_xhat;                                                                       \
            dbeta[c] = (T)sum_dy;                                                                             \
            const double scale = gam[c * gamma->stride[0]] * iv / count;                                     \
            channel_dx_##T##_##ISA(x, g, A, C, B, c, m, iv, scale, count, sum_dy, sum_dy_xhat, dx);           \
        }                                                                                                     \
    }

/* The same for rows of C channels (x:[N,D], or channels-last images: R = N·H·W rows), in fixed blocks of
 * ROW_BLOCK rows (vectorized along the channels), one block per thread at a time. A block's sums
 * are taken while it is in cache and the blocks' are combined in block order, so each pass reads x
 * once and results do not depend on the thread count. The maps run in T with per-channel
 * coefficients. part: 2·blocks·C doubles of scratch; coef: 4·C of T. */
#define ROW_BLOCK 256
#define ROWS_KERNELS(ISA, ATTR, T)                                                                            \
    /* the block's mean and Σ (x - mean)² per channel (two passes over rows in cache) */                     \
    ATTR static void block_moments_##T##_##ISA(const T *x, int64_t r0, int64_t r1, int64_t C, double *mean,   \
                                               double *m2)                                                    \
    {                                                                                                         \
        for (int64_t c = 0; c < C; c++) mean[c] = m2[c] = 0;                                                  \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) mean[c] += x[r * C + c];                                          \
        for (int64_t c = 0; c < C; c++) mean[c] /= (double)(r1 - r0);                                         \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const double d = x[r * C + c] - mean[c];                                                      \
                m2[c] += d * d;                                                                               \
            }                                                                                                 \
    }                                                                                                         \
    /* s = Σ gm, t = Σ gm·(x - m) with gm = g, or with y given gm = g where y > 0 else 0, stored in dg */     \
    ATTR static void block_grad_sums_##T##_##ISA(const T *x, const T *g, const T *y, T *dg, const double *m,  \
                                                 int64_t r0, int64_t r1, int64_t C, double *s, double *t)     \
    {                                                                                                         \
        for (int64_t c = 0; c < C; c++) s[c] = t[c] = 0;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const int64_t i = r * C + c;                                                                  \
                T gm = g[i];                                                                                  \
                if (y) dg[i] = gm = y[i] > 0 ? gm : 0;                                                        \
                s[c] += gm;                                                                                   \
                t[c] += gm * (x[i] - m[c]);                                                                   \
            }                                                                                                 \
    }                                                                                                         \
    /* out = (x - m[c])·a[c] + b[c], plus skip when given, then relu'd when asked (NaN stays NaN) */          \
    ATTR static void rows_affine_##T##_##ISA(const T *x, const T *skip, bool relu, int64_t r0, int64_t r1,    \
                                             int64_t C, const T *m, const T *a, const T *b, T *out)           \
    {                                                                                                         \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const int64_t i = r * C + c;                                                                  \
                T o = (x[i] - m[c]) * a[c] + b[c];                                                            \
                if (skip) o += skip[i];                                                                       \
                out[i] = relu && o < 0 ? 0 : o;                                                               \
            }                                                                                                 \
    }                                                                                                         \
    /* dx = α[c]·gm + β[c]·(x - m[c]) + δ[c] */                                                               \
    ATTR static void rows_dx_##T##_##ISA(const T *x, const T *gm, int64_t r0, int64_t r1, int64_t C, const T *m, \
                                         const T *alpha, const T *beta, const T *delta, T *dx)                \
    {                                                                                                         \
        for (int64_t r = r0; r < r1; r++)                                                                     \
            for (int64_t c = 0; c < C; c++) {                                                                 \
                const int64_t i = r * C + c;                                                                  \
                dx[i] = alpha[c] * gm[i] + beta[c] * (x[i] - m[c]) + delta[c];                                \
            }                                                                                                 \
    }                                                                                                         \
    /* x:[R,C] rows, optional skip of the same layout: out = relu?(γ·(x - mean)/sqrt(var + eps) + β + skip) */ \
    static void rows_forward_##T##_##ISA(const T *x, const T *skip, int64_t R, int64_t C, const nb_tensor *gamma, \
                                         const nb_tensor *beta, bool relu, T *out, double *mean, double *inv, \
                                         double *var, double eps, double *part, T *coef)                      \
    {                                                                                                         \
        const int64_t blocks = (R + ROW_BLOCK - 1) / ROW_BLOCK;                                               \
        _Pragma("omp parallel for if (R * C >= 65536) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t k = 0; k < blocks; k++)                                                                  \
            block_moments_##T##_##ISA(x, k * ROW_BLOCK, block_end(k, R), C, part + 2 * k * C, part + (2 * k + 1) * C); \
        combine_moments(part, blocks, R, C, mean, var);                                                       \
        const T *gd = gamma->data, *bd = beta->data;                                                          \
        T *m = coef, *a = m + C, *b = a + C;                                                                  \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            inv[c] = 1.0 / sqrt(var[c] + eps);                                                                \
            m[c] = (T)mean[c];                                                                                \
            a[c] = (T)(gd[c * gamma->stride[0]] * inv[c]);                                                    \
            b[c] = bd[c * beta->stride[0]];                                                                   \
        }                                                                                                     \
        _Pragma("omp parallel for if (R * C >= 65536) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t k = 0; k < blocks; k++) rows_affine_##T##_##ISA(x, skip, relu, k * ROW_BLOCK, block_end(k, R), C, m, a, b, out); \
    }                                                                                                         \
    /* dx = γ·σ⁻¹/R·(R·gm − Σgm − x̂·Σ(gm·x̂)), dγ = Σ gm·x̂, dβ = Σ gm; gm: g masked by y > 0 when y is     \
     * given (the relu variants' output), then stored in dg (which may be dx) */                             \
    static void rows_backward_##T##_##ISA(const T *x, const T *g, const T *y, T *dg, int64_t R, int64_t C,   \
                                          const nb_tensor *gamma, const double *mean, const double *inv, T *dx, \
                                          T *dgamma, T *dbeta, double *part, T *coef)                         \
    {                                                                                                         \
        const int64_t blocks = (R + ROW_BLOCK - 1) / ROW_BLOCK;                                               \
        _Pragma("omp parallel for if (R * C >= 65536) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t k = 0; k < blocks; k++)                                                                  \
            block_grad_sums_##T##_##ISA(x, g, y, dg, mean, k * ROW_BLOCK, block_end(k, R), C, part + 2 * k * C, \
                                        part + (2 * k + 1) * C);                                              \
        const T *gam = gamma->data;                                                                           \
        T *m = coef, *alpha = m + C, *beta = alpha + C, *delta = beta + C;                                    \
        for (int64_t c = 0; c < C; c++) {                                                                     \
            double sum_g = 0, sum_g_centred = 0;                                                              \
            for (int64_t k = 0; k < blocks; k++) {                                                            \
                sum_g += part[2 * k * C + c];                                                                 \
                sum_g_centred += part[(2 * k + 1) * C + c];                                                   \
            }                                                                                                 \
            const double sum_g_xhat = sum_g_centred * inv[c], a = gam[c * gamma->stride[0]] * inv[c] / (double)R; \
            dgamma[c] = (T)sum_g_xhat;                                                                        \
            dbeta[c] = (T)sum_g;                                                                              \
            m[c] = (T)mean[c];                                                                                \
            alpha[c] = (T)(a * (double)R);                                                                    \
            beta[c] = (T)(-a * sum_g_xhat * inv[c]);                                                          \
            delta[c] = (T)(-a * sum_g);                                                                       \
        }                                                                                                     \
        const T *gm = y ? dg : g;                                                                             \
        _Pragma("omp parallel for if (R * C >= 65536) num_threads(nb_parallel_threads()) schedule(static)") \
        for (int64_t k = 0; k < blocks; k++) rows_dx_##T##_##ISA(x, gm, k * ROW_BLOCK, block_end(k, R), C, m, alpha, beta, delta, dx); \
    }

static int64_t block_end(int64_t k, int64_t R) { return (k + 1) * ROW_BLOCK < R ? (k + 1) * ROW_BLOCK : R; }

/* mean and biased var per channel from the blocks' means and Σ (x - mean)² in part, combined in
 * block order (Chan, Golub and LeVeque): M2 = Σ M2_k + Σ n_k·(mean_k - mean)² */
static void combine_moments(const double *part, int64_t blocks, int64_t R, int64_t C, double *mean, double *var)
{
    for (int64_t c = 0; c < C; c++) {
        double m = 0, m2 = 0;
        for (int64_t k = 0; k < blocks; k++) m += (double)(block_end(k, R) - k * ROW_BLOCK) * part[2 * k * C + c];
        m /= (double)R;
        for (int64_t k = 0; k < blocks; k++) {
            const double d = part[2 * k * C + c] - m;
            m2 += part[(2 * k + 1) * C + c] + (double)(block_end(k, R) - k * ROW_BLOCK) * d * d;
        }
        mean[c] = m;
        var[c] = m2 / (double)R;
    }
}

NB_FOR_ISA(BATCHNORM_KERNELS, float)
NB_FOR_ISA(BATCHNORM_KERNELS, double)
NB_FOR_ISA(ROWS_KERNELS, float)
NB_FOR_ISA(ROWS_KERNELS, double)
/* each driver's levels, for NB_ISA_PICK */
NB_ISA_FUNCTIONS(forward_float);
NB_ISA_FUNCTIONS(forward_double);
NB_ISA_FUNCTIONS(backward_float);
NB_ISA_FUNCTIONS(backward_double);
NB_ISA_FUNCTIONS(rows_forward_float);
NB_ISA_FUNCTIONS(rows_forward_double);
NB_ISA_FUNCTIONS(rows_backward_float);
NB_ISA_FUNCTIONS(rows_backward_double);

/* saved: f64 [2,C], row 0 the batch mean, row 1 the inverse standard deviation 1/sqrt(var + eps);
 * iarg[0]: the epilogue (see below) */
static int batchnorm_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op batchnorm_op = { .name = "nb_batchnorm_fused", .backward = batchnorm_backward };
static const nb_op batchnorm_relu_op = { .name = "nb_batchnorm_relu_fused", .backward = batchnorm_backward };
static const nb_op batchnorm_add_relu_op = { .name = "nb_batchnorm_add_relu_fused", .backward = batchnorm_backward };
/* the outputs of the backward kernel when recorded under create_graph: no rule, once-differentiable */
static const nb_op batchnorm_backward_op = { .name = "nb_batchnorm_fused_backward", .backward = NULL };

typedef enum { PLAIN, RELU, ADD_RELU } epilogue;   /* out = bn(x), relu(bn(x)), relu(bn(x) + skip) */

/* x as [A, C, B] (see the kernels) */
static void geometry(const nb_tensor *x, int64_t *A, int64_t *C, int64_t *B)
{
    *A = x->shape[0];
    *C = x->shape[1];
    *B = nb_shape_numel(x->ndim - 2, x->shape + 2);
}

/* x is rows of C channels, so the row kernels apply: a contiguous x:[N,D], or x:[N,C,H,W] laid out
 * [N,H,W,C] (the fused convolution's output) */
static bool in_rows(const nb_tensor *x)
{
    static const int order_nhwc[4] = { 0, 2, 3, 1 };
    int order[NB_MAX_DIMS];
    if (x->ndim == 2) return nb_is_contiguous(x);
    return x->ndim == 4 && !nb_is_contiguous(x) && nb_dense_order(x, order) && !memcmp(order, order_nhwc, sizeof order_nhwc);
}

static bool same_layout(const nb_tensor *a, const nb_tensor *b)
{
    return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
           !memcmp(a->stride, b->stride, sizeof(int64_t) * (size_t)a->ndim);
}

/* scratch of the row kernels: the blocks' partial sums (2·blocks·C doubles), then 4·C coefficients */
static double *rows_scratch(int64_t R, int64_t C, double **coef)
{
    const int64_t parts = 2 * ((R + ROW_BLOCK - 1) / ROW_BLOCK) * C;
    double *part = nb_scope_alloc(sizeof(double) * (size_t)(parts + 4 * C));
    if (part) *coef = part + parts;
    return part;
}

static int batchnorm_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = node->in[0], *gamma = node->in[1];
    int64_t A, C, B;
    geometry(x, &A, &C, &B);
    const double *mean = node->saved->data, *inv = mean + C;
    const epilogue epi = (epilogue)node->iarg[0];
    nb_dtype dt = x->dtype;
    const char *op = node->op->name;
    nb_tensor *dgamma = nb_new(op, dt, 1, &C);
    nb_tensor *dbeta = nb_new(op, dt, 1, &C);
    if (!dgamma || !dbeta) return -1;
    nb_tensor *dx, *dskip = NULL;
    if (in_rows(x)) {   /* g brought to x's layout (a copy only when it has another) */
        bool same = same_layout(g, x);
        nb_tensor *gl = same ? g : nb_new_layout_of(op, x, dt);
        double *coef = NULL, *part = rows_scratch(A * B, C, &coef);
        dx = nb_new_layout_of(op, x, dt);
        if (epi == ADD_RELU && nb_needs_grad(node, 3)) dskip = nb_new_layout_of(op, x, dt);
        if (!gl || !part || !dx || (epi == ADD_RELU && nb_needs_grad(node, 3) && !dskip) || (!same && nb_copy_into(gl, g)))
            return -1;
        const void *y = epi != PLAIN ? node->out->data : NULL;   /* the relu's mask: out > 0 */
        void *dg = dskip ? dskip->data : dx->data;               /* the masked g (the skip's gradient) */
        if (dt == NB_F32)
            NB_ISA_PICK(rows_backward_float)(x->data, gl->data, y, dg, A * B, C, gamma, mean, inv, dx->data, dgamma->data, dbeta->data, part, (float *)coef);
        else
            NB_ISA_PICK(rows_backward_double)(x->data, gl->data, y, dg, A * B, C, gamma, mean, inv, dx->data, dgamma->data, dbeta->data, part, coef);
    } else {
        nb_tensor *xc = nb_contiguous(x), *gc = nb_contiguous(g);   /* copies only when strided */
        dx = nb_new(op, dt, x->ndim, x->shape);
        if (!xc || !gc || !dx) return -1;
        if (dt == NB_F32) NB_ISA_PICK(backward_float)(xc->data, gc->data, A, C, B, gamma, mean, inv, dx->data, dgamma->data, dbeta->data);
        else NB_ISA_PICK(backward_double)(xc->data, gc->data, A, C, B, gamma, mean, inv, dx->data, dgamma->data, dbeta->data);
    }
    nb_tensor *outs[4] = { dx, dgamma, dbeta, dskip };
    nb_tensor *deps[4] = { x, gamma, g, node->out };   /* what the kernel read; recorded only under create_graph */
    for (int k = 0; k < node->n_in; k++) {
        if (!outs[k]) continue;
        nb_record(&batchnorm_backward_op, outs[k], epi == PLAIN ? 3 : 4, deps);
        if (nb_needs_grad(node, k)) gin[k] = outs[k];
    }
    return 0;
}

/* errors name op: nb_batchnorm_fused or one of its epilogue variants */
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

/* the epilogue (other than PLAIN) only for x in rows (in_rows), skip of x's layout; errors name op */
static nb_tensor *batchnorm_fused(const char *op, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *skip,
                                  double eps, epilogue epi, nb_tensor **mean_out, nb_tensor **var_out)
{
    if (mean_out) *mean_out = NULL;
    if (var_out) *var_out = NULL;
    if (!x || !gamma || !beta) return nb_null_input(op);
    if (!check_inputs(op, x, gamma, beta, eps)) return NULL;
    int64_t A, C, B;
    geometry(x, &A, &C, &B);
    nb_dtype dt = x->dtype;
    int64_t saved_shape[2] = { 2, C };
    nb_tensor *saved = nb_new(op, NB_F64, 2, saved_shape);
    const bool rows = in_rows(x);
    nb_tensor *xc = rows ? x : nb_contiguous(x);   /* a copy only when x is strided otherwise */
    nb_tensor *out = rows ? nb_new_layout_of(op, x, dt) : nb_new(op, dt, x->ndim, x->shape);
    nb_tensor *mean_t = mean_out ? nb_new(op, dt, 1, &C) : NULL;
    nb_tensor *var_t = var_out ? nb_new(op, dt, 1, &C) : NULL;
    if (!saved || !xc || !out || (mean_out && !mean_t) || (var_out && !var_t)) return NULL;
    double *mean = saved->data, *inv = mean + C;
    double *var = nb_scope_alloc(sizeof(double) * (size_t)C), *coef = NULL;
    double *part = rows ? rows_scratch(A * B, C, &coef) : NULL;
    if (!var || (rows && !part)) return NULL;
    if (rows) {
        const void *s = epi == ADD_RELU ? skip->data : NULL;
        if (dt == NB_F32) NB_ISA_PICK(rows_forward_float)(xc->data, s, A * B, C, gamma, beta, epi != PLAIN, out->data, mean, inv, var, eps, part, (float *)coef);
        else NB_ISA_PICK(rows_forward_double)(xc->data, s, A * B, C, gamma, beta, epi != PLAIN, out->data, mean, inv, var, eps, part, coef);
    } else if (dt == NB_F32) {
        NB_ISA_PICK(forward_float)(xc->data, A, C, B, gamma, beta, out->data, mean, inv, var, eps);
    } else {
        NB_ISA_PICK(forward_double)(xc->data, A, C, B, gamma, beta, out->data, mean, inv, var, eps);
    }
    for (int64_t j = 0; j < C; j++) {
        if (mean_t) nb_store(dt, (char *)mean_t->data + j * (int64_t)nb_dtype_size(dt), mean[j]);
        if (var_t) nb_store(dt, (char *)var_t->data + j * (int64_t)nb_dtype_size(dt), var[j]);
    }
    static const nb_op *const ops[3] = { &batchnorm_op, &batchnorm_relu_op, &batchnorm_add_relu_op };
    nb_tensor *in[4] = { x, gamma, beta, skip };
    nb_node *n = nb_record(ops[epi], out, epi == ADD_RELU ? 4 : 3, in);
    if (n) {
        n->saved = saved;
        n->darg[0] = eps;
        n->iarg[0] = epi;
    }
    if (mean_out) *mean_out = mean_t;
    if (var_out) *var_out = var_t;
    return out;
}

nb_tensor *nb_batchnorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean_out,
                              nb_tensor **var_out)
{
    return batchnorm_fused("nb_batchnorm_fused", x, gamma, beta, NULL, eps, PLAIN, mean_out, var_out);
}

nb_tensor *nb_batchnorm_relu_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean_out,
                                   nb_tensor **var_out)
{
    const char *op = "nb_batchnorm_relu_fused";
    if (x && in_rows(x)) return batchnorm_fused(op, x, gamma, beta, NULL, eps, RELU, mean_out, var_out);
    return nb_relu(batchnorm_fused(op, x, gamma, beta, NULL, eps, PLAIN, mean_out, var_out));   /* other layouts: two ops */
}

nb_tensor *nb_batchnorm_add_relu_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *skip, double eps,
                                       nb_tensor **mean_out, nb_tensor **var_out)
{
    const char *op = "nb_batchnorm_add_relu_fused";
    if (!skip) {
        if (mean_out) *mean_out = NULL;
        if (var_out) *var_out = NULL;
        return nb_null_input(op);
    }
    if (x && (skip->ndim != x->ndim || memcmp(skip->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim))) {
        nb_error("%s: skip %s must have x's shape %s", op, nb_shp(skip), nb_shp(x));
        return NULL;
    }
    if (x && in_rows(x) && same_layout(skip, x) && skip->dtype == x->dtype)
        return batchnorm_fused(op, x, gamma, beta, skip, eps, ADD_RELU, mean_out, var_out);
    return   /* other layouts: the three ops */ nb_relu(nb_add(batchnorm_fused(op, x, gamma, beta, NULL, eps, PLAIN, mean_out, var_out), skip));
}
