/* Layer normalisation over the last axis in one kernel each way (nn.h's nb_layernorm composes it
 * from mean, sub, square, rsqrt, mul and add: about eight tensors of x's size forward):
 *   per row of D: μ = Σx/D, σ⁻¹ = 1/√(Σ(x − μ)²/D + eps), x̂ = (x − μ)·σ⁻¹, out = γ·x̂ + β
 * Only μ and σ⁻¹ are kept. The backward is a kernel too (once-differentiable), the closed form
 *   dx̂ = g·γ, dx = σ⁻¹·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dγ = Σ_rows g·x̂, dβ = Σ_rows g
 * with dγ and dβ summed in double, per thread, then across threads. */
#include "../internal.h"
#include "vmath.h"

#include <math.h>

#define LANES NB_VMATH_LANES   /* partial sums in lanes: the row loops vectorize */

/* Σ row[j] and Σ (row[j] − shift)² over n elements, in lanes */
#define ROW_SUMS(ISA, ATTR, E)                                                                                \
    ATTR static inline E row_sum_##E##_##ISA(const E *row, int64_t n, E shift, bool squares)                  \
    {                                                                                                         \
        const int64_t whole = n / LANES * LANES;                                                              \
        E lane[LANES] = { 0 }, total = 0;                                                                     \
        for (int64_t j = 0; j < whole; j += LANES)                                                            \
            for (int l = 0; l < LANES; l++) lane[l] += squares ? (row[j + l] - shift) * (row[j + l] - shift) : row[j + l]; \
        for (int l = 0; l < LANES; l++) total += lane[l];                                                     \
        for (int64_t j = whole; j < n; j++) total += squares ? (row[j] - shift) * (row[j] - shift) : row[j];  \
        return total;                                                                                         \
    }

/* rows [first, first + n) of x:[rows,D] to out; stats[r] = μ, stats[rows + r] = σ⁻¹ */
#define LN_FORWARD(ISA, ATTR, E)                                                                              \
    ROW_SUMS(ISA, ATTR, E)                                                                                    \
    ATTR static void ln_forward_##E##_##ISA(const E *x, const E *gamma, const E *beta, E *out, E *stats,      \
                                            int64_t rows, int64_t first, int64_t n, int64_t D, E eps)         \
    {                                                                                                         \
        for (int64_t r = first; r < first + n; r++) {                                                         \
            const E *xr = x + r * D;                                                                          \
            E *o = out + r * D;                                                                               \
            const E mean = row_sum_##E##_##ISA(xr, D, 0, false) / (E)D;                                       \
            const E inv = (E)1 / (E)sqrt(row_sum_##E##_##ISA(xr, D, mean, true) / (E)D + eps);               \
            for (int64_t j = 0; j < D; j++) o[j] = (xr[j] - mean) * inv * gamma[j] + beta[j];                 \
            stats[r] = mean;                                                                                  \
            stats[rows + r] = inv;                                                                            \
        }                                                                                                     \
    }
NB_FOR_ISA(LN_FORWARD, float)
NB_FOR_ISA(LN_FORWARD, double)
NB_ISA_FUNCTIONS(ln_forward_float);
NB_ISA_FUNCTIONS(ln_forward_double);

/* rows [first, first + n) of g to dx; this thread's Σ g·x̂ and Σ g added into sums[0..D) and [D..2D) */
#define LN_BACKWARD(ISA, ATTR, E)                                                                             \
    ATTR static void ln_backward_##E##_##ISA(const E *x, const E *g, const E *gamma, const E *stats, E *dx,   \
                                             double *sums, int64_t rows, int64_t first, int64_t n, int64_t D) \
    {                                                                                                         \
        for (int64_t r = first; r < first + n; r++) {                                                         \
            const E *xr = x + r * D, *gr = g + r * D, mean = stats[r], inv = stats[rows + r];                 \
            E *d = dx + r * D, lane_a[LANES] = { 0 }, lane_b[LANES] = { 0 }, a = 0, b = 0;                    \
            const int64_t whole = D / LANES * LANES;                                                          \
            for (int64_t j = 0; j < whole; j += LANES)                                                        \
                for (int l = 0; l < LANES; l++) {                                                             \
                    const E dxhat = gr[j + l] * gamma[j + l];                                                 \
                    lane_a[l] += dxhat;                                                                       \
                    lane_b[l] += dxhat * (xr[j + l] - mean) * inv;                                            \
                }                                                                                             \
            for (int l = 0; l < LANES; l++) {                                                                 \
                a += lane_a[l];                                                                               \
                b += lane_b[l];                                                                               \
            }                                                                                                 \
            for (int64_t j = whole; j < D; j++) {                                                             \
                a += gr[j] * gamma[j];                                                                        \
                b += gr[j] * gamma[j] * (xr[j] - mean) * inv;                                                 \
            }                                                                                                 \
            a /= (E)D;                                                                                        \
            b /= (E)D;                                                                                        \
            for (int64_t j = 0; j < D; j++) {                                                                 \
                const E xhat = (xr[j] - mean) * inv;                                                          \
                d[j] = inv * (gr[j] * gamma[j] - a - xhat * b);                                               \
                sums[j] += (double)(gr[j] * xhat);                                                            \
                sums[D + j] += (double)gr[j];                                                                 \
            }                                                                                                 \
        }                                                                                                     \
    }
NB_FOR_ISA(LN_BACKWARD, float)
NB_FOR_ISA(LN_BACKWARD, double)
NB_ISA_FUNCTIONS(ln_backward_float);
NB_ISA_FUNCTIONS(ln_backward_double);

/* the threads for `rows` rows of D: one when the work is small */
static int threads_for(int64_t rows, int64_t D) { return rows * D >= 65536 ? nb_parallel_threads() : 1; }

static int layernorm_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op layernorm_op = { .name = "nb_layernorm_fused", .backward = layernorm_backward };
/* the gradients when recorded under create_graph: no rule, once-differentiable */
static const nb_op layernorm_backward_op = { .name = "nb_layernorm_fused_backward", .backward = NULL };

static int layernorm_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    static const char op[] = "nb_layernorm_fused_backward";
    nb_tensor *x = node->in[0];
    const nb_dtype dt = x->dtype;
    const int64_t D = x->shape[x->ndim - 1], rows = nb_numel(x) / D;
    const bool was = nb_set_grad_enabled(false);
    nb_tensor *gamma = nb_contiguous(node->in[1]), *gc = nb_contiguous(g), *dx = nb_new(op, dt, x->ndim, x->shape);
    nb_tensor *dgamma = nb_new(op, dt, 1, &D), *dbeta = nb_new(op, dt, 1, &D);
    const int threads = threads_for(rows, D);
    double *sums = nb_scope_alloc(sizeof(double) * 2 * (size_t)(D * threads));
    nb_set_grad_enabled(was);
    if (!gamma || !gc || !dx || !dgamma || !dbeta || !sums) return -1;
    memset(sums, 0, sizeof(double) * 2 * (size_t)(D * threads));
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int64_t team = nb_team_size(), me = nb_thread_index();
        const int64_t first = rows * me / team, n = rows * (me + 1) / team - first;
        double *mine = sums + 2 * D * me;
        if (dt == NB_F32)
            NB_ISA_PICK(ln_backward_float)(x->data, gc->data, gamma->data, node->saved->data, dx->data, mine, rows, first, n, D);
        else
            NB_ISA_PICK(ln_backward_double)(x->data, gc->data, gamma->data, node->saved->data, dx->data, mine, rows, first, n, D);
    }
    for (int t = 1; t < threads; t++)
        for (int64_t j = 0; j < 2 * D; j++) sums[j] += sums[2 * D * t + j];
    for (int64_t j = 0; j < D; j++) {
        nb_store(dt, (char *)dgamma->data + j * (int64_t)nb_dtype_size(dt), sums[j]);
        nb_store(dt, (char *)dbeta->data + j * (int64_t)nb_dtype_size(dt), sums[D + j]);
    }
    nb_tensor *grads[3] = { dx, dgamma, dbeta };
    nb_tensor *deps[3] = { x, node->in[1], g };   /* what the kernel read; recorded only under create_graph */
    for (int i = 0; i < 3; i++)
        if (nb_needs_grad(node, i)) {
            nb_record(&layernorm_backward_op, grads[i], 3, deps);
            gin[i] = grads[i];
        }
    return 0;
}

nb_tensor *nb_layernorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps)
{
    static const char op[] = "nb_layernorm_fused";
    if (!x || !gamma || !beta) return nb_null_input(op);
    if (!nb_check_float(op, x) || !nb_check_same_dtype(op, x, gamma) || !nb_check_same_dtype(op, x, beta)) return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] == 0) {
        nb_error("%s: expected x [..,D] with D > 0, got %s", op, nb_shp(x));
        return NULL;
    }
    const int64_t D = x->shape[x->ndim - 1], rows = nb_numel(x) / D;
    if (gamma->ndim != 1 || gamma->shape[0] != D || beta->ndim != 1 || beta->shape[0] != D) {
        nb_error("%s: gamma %s and beta %s must be [%lld] to match x %s", op, nb_shp(gamma), nb_shp(beta), (long long)D,
                 nb_shp(x));
        return NULL;
    }
    if (!(eps >= 0) || !isfinite(eps)) {
        nb_error("%s: eps %g must be finite and not negative", op, eps);
        return NULL;
    }
    if (!nb_is_contiguous(x)) return nb_layernorm_fused(nb_contiguous(x), gamma, beta, eps);   /* the kernel reads rows */
    const bool was = nb_set_grad_enabled(false);
    nb_tensor *gc = nb_contiguous(gamma), *bc = nb_contiguous(beta);
    nb_set_grad_enabled(was);
    int64_t stats_shape[2] = { 2, rows };
    nb_tensor *out = nb_new(op, x->dtype, x->ndim, x->shape), *stats = nb_new(op, x->dtype, 2, stats_shape);
    if (!gc || !bc || !out || !stats) return NULL;
    const int threads = threads_for(rows, D);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int64_t team = nb_team_size(), me = nb_thread_index();
        const int64_t first = rows * me / team, n = rows * (me + 1) / team - first;
        if (x->dtype == NB_F32)
            NB_ISA_PICK(ln_forward_float)(x->data, gc->data, bc->data, out->data, stats->data, rows, first, n, D, (float)eps);
        else
            NB_ISA_PICK(ln_forward_double)(x->data, gc->data, bc->data, out->data, stats->data, rows, first, n, D, eps);
    }
    nb_tensor *in[3] = { x, gamma, beta };
    nb_node *n = nb_record(&layernorm_op, out, 3, in);
    if (n) n->saved = stats;
    return out;
}
