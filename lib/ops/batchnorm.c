/* Fused train-mode batch normalisation over the rows of x:[N,D]: one forward kernel (statistics
 * accumulated in double) and a closed-form backward kernel. The backward kernel is not built from
 * engine ops, so the op is once-differentiable: under create_graph its outputs are recorded with a
 * node that has no backward rule, and differentiating through them is a clear error. */
#include "../internal.h"

#include <math.h>

static const char *const OP = "nb_batchnorm_fused";

/* element access through strides (in elements) for 2-D and 1-D tensors of a float dtype */
static inline char *ptr2(const nb_tensor *t, int64_t i, int64_t j)
{
    return (char *)t->data + (i * t->stride[0] + j * t->stride[1]) * (int64_t)nb_dtype_size(t->dtype);
}
static inline char *ptr1(const nb_tensor *t, int64_t j)
{
    return (char *)t->data + j * t->stride[0] * (int64_t)nb_dtype_size(t->dtype);
}
static inline double get2(const nb_tensor *t, int64_t i, int64_t j) { return nb_load(t->dtype, ptr2(t, i, j)); }
static inline double get1(const nb_tensor *t, int64_t j) { return nb_load(t->dtype, ptr1(t, j)); }

/* saved: f64 [2,D], row 0 the batch mean, row 1 the inverse standard deviation 1/sqrt(var + eps) */
static int batchnorm_backward(nb_node *n, nb_tensor *g, nb_tensor **gin);
static const nb_op batchnorm_op = { "nb_batchnorm_fused", batchnorm_backward };
/* the outputs of the backward kernel when recorded under create_graph: no rule, once-differentiable */
static const nb_op batchnorm_backward_op = { "nb_batchnorm_fused_backward", NULL };

static int batchnorm_backward(nb_node *node, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = node->in[0], *gamma = node->in[1];
    const double *mean = node->saved->data, *inv = mean + x->shape[1];
    int64_t rows = x->shape[0], cols = x->shape[1];
    nb_dtype dt = x->dtype;
    nb_tensor *dx = nb_new(dt, 2, x->shape);
    nb_tensor *dgamma = nb_new(dt, 1, &cols);
    nb_tensor *dbeta = nb_new(dt, 1, &cols);
    if (!dx || !dgamma || !dbeta) return -1;
    for (int64_t j = 0; j < cols; j++) {
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t i = 0; i < rows; i++) {
            double dy = get2(g, i, j), xhat = (get2(x, i, j) - mean[j]) * inv[j];
            sum_dy += dy;
            sum_dy_xhat += dy * xhat;
        }
        nb_store(dt, ptr1(dgamma, j), sum_dy_xhat);
        nb_store(dt, ptr1(dbeta, j), sum_dy);
        double scale = get1(gamma, j) * inv[j] / (double)rows;
        for (int64_t i = 0; i < rows; i++) {
            double dy = get2(g, i, j), xhat = (get2(x, i, j) - mean[j]) * inv[j];
            nb_store(dt, ptr2(dx, i, j), scale * ((double)rows * dy - sum_dy - xhat * sum_dy_xhat));
        }
    }
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
    int64_t rows = x->shape[0], cols = x->shape[1];
    nb_dtype dt = x->dtype;
    int64_t saved_shape[2] = { 2, cols };
    nb_tensor *saved = nb_new(NB_F64, 2, saved_shape);
    nb_tensor *out = nb_new(dt, 2, x->shape);
    nb_tensor *mean_t = mean_out ? nb_new(dt, 1, &cols) : NULL;
    nb_tensor *var_t = var_out ? nb_new(dt, 1, &cols) : NULL;
    if (!saved || !out || (mean_out && !mean_t) || (var_out && !var_t)) return NULL;
    double *mean = saved->data, *inv = mean + cols;
    for (int64_t j = 0; j < cols; j++) {
        double sum = 0;
        for (int64_t i = 0; i < rows; i++) sum += get2(x, i, j);
        double m = sum / (double)rows, sq = 0;
        for (int64_t i = 0; i < rows; i++) {
            double d = get2(x, i, j) - m;
            sq += d * d;
        }
        double var = sq / (double)rows;   /* biased */
        mean[j] = m;
        inv[j] = 1.0 / sqrt(var + eps);
        if (mean_t) nb_store(dt, ptr1(mean_t, j), m);
        if (var_t) nb_store(dt, ptr1(var_t, j), var);
        double gj = get1(gamma, j), bj = get1(beta, j);
        for (int64_t i = 0; i < rows; i++) nb_store(dt, ptr2(out, i, j), gj * (get2(x, i, j) - m) * inv[j] + bj);
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
