/* Fused train-mode batch normalisation over the rows of x:[N,D]: one forward kernel (statistics
 * accumulated in double) and a closed-form backward kernel. The backward kernel is not built from
 * engine ops, so the op is once-differentiable: under create_graph its outputs are recorded with a
 * node that has no backward rule, and differentiating through them is a clear error. */
#include "../internal.h"

#include <math.h>

static const char *const OP = "nb_batchnorm_fused";

/* Kernels, one per element type T. They walk x row by row (its rows are contiguous runs in the
 * usual layout) and keep per-column sums in double arrays, so the cache sees x in order.
 * xs, gs: row and column strides of x and g in elements; gamma and beta are read by stride too. */
#define BATCHNORM_KERNELS(T)                                                                                  \
    static void forward_##T(const nb_tensor *x, const nb_tensor *gamma, const nb_tensor *beta, nb_tensor *out, \
                            double *mean, double *inv, double *var, double eps)                                \
    {                                                                                                         \
        const int64_t rows = x->shape[0], cols = x->shape[1], r = x->stride[0], c = x->stride[1];            \
        const T *xd = x->data;                                                                                \
        for (int64_t j = 0; j < cols; j++) mean[j] = var[j] = 0;                                              \
        for (int64_t i = 0; i < rows; i++)                                                                    \
            for (int64_t j = 0; j < cols; j++) mean[j] += xd[i * r + j * c];                                  \
        for (int64_t j = 0; j < cols; j++) mean[j] /= (double)rows;                                           \
        for (int64_t i = 0; i < rows; i++)                                                                    \
            for (int64_t j = 0; j < cols; j++) {                                                              \
                double d = xd[i * r + j * c] - mean[j];                                                       \
                var[j] += d * d;                                                                              \
            }                                                                                                 \
        for (int64_t j = 0; j < cols; j++) {                                                                  \
            var[j] /= (double)rows; /* biased */                                                              \
            inv[j] = 1.0 / sqrt(var[j] + eps);                                                                \
        }                                                                                                     \
        const T *gd = gamma->data, *bd = beta->data;                                                          \
        T *o = out->data;                                                                                     \
        for (int64_t i = 0; i < rows; i++)                                                                    \
            for (int64_t j = 0; j < cols; j++)                                                                \
                o[i * cols + j] = (T)(gd[j * gamma->stride[0]] * (xd[i * r + j * c] - mean[j]) * inv[j] +      \
                                      bd[j * beta->stride[0]]);                                               \
    }                                                                                                         \
    static void backward_##T(const nb_tensor *x, const nb_tensor *gamma, const nb_tensor *g, const double *mean,\
                             const double *inv, double *sum_dy, double *sum_dy_xhat, nb_tensor *dx,            \
                             nb_tensor *dgamma, nb_tensor *dbeta)                                              \
    {                                                                                                         \
        const int64_t rows = x->shape[0], cols = x->shape[1], r = x->stride[0], c = x->stride[1];            \
        const int64_t gr = g->stride[0], gc = g->stride[1];                                                   \
        const T *xd = x->data, *gd = g->data, *gam = gamma->data;                                             \
        for (int64_t j = 0; j < cols; j++) sum_dy[j] = sum_dy_xhat[j] = 0;                                    \
        for (int64_t i = 0; i < rows; i++)                                                                    \
            for (int64_t j = 0; j < cols; j++) {                                                              \
                double dy = gd[i * gr + j * gc];                                                              \
                sum_dy[j] += dy;                                                                              \
                sum_dy_xhat[j] += dy * (xd[i * r + j * c] - mean[j]) * inv[j];                                \
            }                                                                                                 \
        T *dxd = dx->data, *dg = dgamma->data, *db = dbeta->data;                                             \
        for (int64_t j = 0; j < cols; j++) {                                                                  \
            dg[j] = (T)sum_dy_xhat[j];                                                                        \
            db[j] = (T)sum_dy[j];                                                                             \
        }                                                                                                     \
        /* dx = γ·σ⁻¹/N · (N·dy − Σdy − x̂·Σ(dy·x̂)) */                                                        \
        for (int64_t i = 0; i < rows; i++)                                                                    \
            for (int64_t j = 0; j < cols; j++) {                                                              \
                double xhat = (xd[i * r + j * c] - mean[j]) * inv[j];                                         \
                double scale = gam[j * gamma->stride[0]] * inv[j] / (double)rows;                             \
                dxd[i * cols + j] =                                                                           \
                    (T)(scale * ((double)rows * gd[i * gr + j * gc] - sum_dy[j] - xhat * sum_dy_xhat[j]));    \
            }                                                                                                 \
    }

BATCHNORM_KERNELS(float)
BATCHNORM_KERNELS(double)

/* saved: f64 [2,D], row 0 the batch mean, row 1 the inverse standard deviation 1/sqrt(var + eps) */
static int batchnorm_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op batchnorm_op = { "nb_batchnorm_fused", batchnorm_backward };
/* the outputs of the backward kernel when recorded under create_graph: no rule, once-differentiable */
static const nb_op batchnorm_backward_op = { "nb_batchnorm_fused_backward", NULL };

static int batchnorm_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = node->in[0], *gamma = node->in[1];
    const double *mean = node->saved->data, *inv = mean + x->shape[1];
    int64_t cols = x->shape[1];
    nb_dtype dt = x->dtype;
    nb_tensor *dx = nb_new(dt, 2, x->shape);
    nb_tensor *dgamma = nb_new(dt, 1, &cols);
    nb_tensor *dbeta = nb_new(dt, 1, &cols);
    double *sums = nb_scope_alloc(2 * sizeof(double) * (size_t)cols);
    if (!dx || !dgamma || !dbeta || !sums) return -1;
    (dt == NB_F32 ? backward_float : backward_double)(x, gamma, g, mean, inv, sums, sums + cols, dx, dgamma, dbeta);
    nb_tensor *outs[3] = { dx, dgamma, dbeta };
    nb_tensor *deps[3] = { x, gamma, g };   /* what the kernel read; recorded only under create_graph */
    for (int k = 0; k < 3; k++) {
        nb_record(&batchnorm_backward_op, outs[k], 3, deps);
        if (nb_needs_grad(node, k)) gin[k] = outs[k];
    }
    return 0;
}

static bool check_inputs(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps)
{
    if (!nb_check_float(OP, x) || !nb_check_same_dtype(OP, x, gamma) || !nb_check_same_dtype(OP, x, beta))
        return false;
    if (x->ndim != 2) {
        nb_error("%s: x must be [N,D], got %s", OP, nb_shp(x));
        return false;
    }
    if (x->shape[0] == 0) {
        nb_error("%s: x %s has no rows to take statistics over", OP, nb_shp(x));
        return false;
    }
    const char *names[2] = { "gamma", "beta" };
    nb_tensor *params[2] = { gamma, beta };
    for (int k = 0; k < 2; k++)
        if (params[k]->ndim != 1 || params[k]->shape[0] != x->shape[1]) {
            nb_error("%s: %s %s must be [%lld] to match x %s", OP, names[k], nb_shp(params[k]),
                     (long long)x->shape[1], nb_shp(x));
            return false;
        }
    if (!(eps >= 0)) {
        nb_error("%s: eps must be >= 0, got %g", OP, eps);
        return false;
    }
    return true;
}

nb_tensor *nb_batchnorm_fused(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps, nb_tensor **mean_out,
                              nb_tensor **var_out)
{
    if (mean_out) *mean_out = NULL;
    if (var_out) *var_out = NULL;
    if (!x || !gamma || !beta) return NULL;
    if (!check_inputs(x, gamma, beta, eps)) return NULL;
    int64_t cols = x->shape[1];
    nb_dtype dt = x->dtype;
    int64_t saved_shape[2] = { 2, cols };
    nb_tensor *saved = nb_new(NB_F64, 2, saved_shape);
    nb_tensor *out = nb_new(dt, 2, x->shape);
    nb_tensor *mean_t = mean_out ? nb_new(dt, 1, &cols) : NULL;
    nb_tensor *var_t = var_out ? nb_new(dt, 1, &cols) : NULL;
    if (!saved || !out || (mean_out && !mean_t) || (var_out && !var_t)) return NULL;
    double *mean = saved->data, *inv = mean + cols;
    double *var = nb_scope_alloc(sizeof(double) * (size_t)cols);
    if (!var) return NULL;
    (dt == NB_F32 ? forward_float : forward_double)(x, gamma, beta, out, mean, inv, var, eps);
    for (int64_t j = 0; j < cols; j++) {
        if (mean_t) nb_store(dt, (char *)mean_t->data + j * (int64_t)nb_dtype_size(dt), mean[j]);
        if (var_t) nb_store(dt, (char *)var_t->data + j * (int64_t)nb_dtype_size(dt), var[j]);
    }
    nb_tensor *in[3] = { x, gamma, beta };
    nb_node *n = nb_record(&batchnorm_op, out, 3, in);
    if (n) {
        n->saved = saved;
        n->darg[0] = eps;
    }
    if (mean_out) *mean_out = mean_t;
    if (var_out) *var_out = var_t;
    return out;
}
