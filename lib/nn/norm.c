/* Normalisation layers composed from primitive ops (autodiff supplies the backward):
 *   mean = mean(x) over the stat axes (keepdim), var = mean((x - mean)²) (biased),
 *   xhat = (x - mean)·rsqrt(var + eps), out = gamma·xhat + beta (broadcast per feature/channel).
 * Batchnorm's running stats are updated in place from detached batch stats with grad mode off. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>

/* (x - mean)·rsqrt(var + eps) over axes; the keepdim batch stats go to *mean_out and *var_out */
static nb_tensor *standardize(nb_tensor *x, nb_axes axes, double eps, nb_tensor **mean_out, nb_tensor **var_out)
{
    nb_tensor *mean = nb_mean_axes(x, axes, true);
    nb_tensor *xc = nb_sub(x, mean);
    nb_tensor *var = nb_mean_axes(nb_square(xc), axes, true);
    if (mean_out) *mean_out = mean;
    if (var_out) *var_out = var;
    return nb_mul(xc, nb_rsqrt(nb_add_scalar(var, eps)));
}

/* t is a float tensor of x's dtype with shape [n]; `name` names it in messages */
static bool check_vector(const char *op, const char *name, const nb_tensor *t, const nb_tensor *x, int64_t n)
{
    if (!nb_check_same_dtype(op, x, t)) return false;
    if (t->ndim != 1 || t->shape[0] != n) {
        nb_error("%s: %s is %s but x is %s (expected [%lld])", op, name, nb_shp(t), nb_shp(x), (long long)n);
        return false;
    }
    return true;
}

static bool check_eps(const char *op, double eps)
{
    if (eps >= 0 && isfinite(eps)) return true;
    nb_error("%s: eps %g must be finite and not negative", op, eps);
    return false;
}

/* running = m·running + (1-m)·batch, values only; batch is a keepdim stat of n elements */
static int update_running(nb_tensor *running, nb_tensor *batch, double m, int64_t n)
{
    bool prev = nb_set_grad_enabled(false);
    nb_tensor *b = nb_reshape(nb_detach(batch), NB_SHAPE(n));
    nb_tensor *next = nb_add(nb_mul_scalar(running, m), nb_mul_scalar(b, 1.0 - m));
    int rc = next ? nb_copy_into(running, next) : -1;
    nb_set_grad_enabled(prev);
    return rc;
}

/* Batchnorm over x's axis 1 (features or channels) with stats over `axes`; gamma, beta and the
 * running stats are [C] and broadcast as `view` ([C] or [C,1,1]). */
static nb_tensor *batchnorm(const char *op, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st,
                            bool training, int ndim, const char *layout, nb_axes axes, nb_shape view)
{
    if (!x || !gamma || !beta) return nb_null_input(op);
    if (!nb_check_float(op, x)) return NULL;
    if (x->ndim != ndim) {
        nb_error("%s: expected a %d-D %s x, got %s", op, ndim, layout, nb_shp(x));
        return NULL;
    }
    const int64_t C = x->shape[1];
    if (!check_vector(op, "gamma", gamma, x, C) || !check_vector(op, "beta", beta, x, C)) return NULL;
    /* no state: training mode with the batch's statistics only (F.batch_norm(x, None, None, training=True)) */
    static const nb_norm_state batch_only = { NULL, NULL, 0.9, 1e-5 };
    if (!st && !training) {
        nb_error("%s: eval mode normalises with running stats: it needs a state (got NULL)", op);
        return NULL;
    }
    const bool keep_running = st != NULL;
    if (!st) st = (nb_norm_state *)&batch_only;
    if (keep_running && (!st->running_mean || !st->running_var)) {
        nb_error("%s: NULL running stats in the state", op);
        return NULL;
    }
    if (keep_running && (!check_vector(op, "running_mean", st->running_mean, x, C) ||
                         !check_vector(op, "running_var", st->running_var, x, C)))
        return NULL;
    if (!(st->momentum >= 0 && st->momentum <= 1)) {
        nb_error("%s: momentum %g outside [0, 1]", op, st->momentum);
        return NULL;
    }
    if (!check_eps(op, st->eps)) return NULL;
    nb_tensor *xhat;
    if (training) {
        if (C > 0 && nb_numel(x) == 0) {
            nb_error("%s: empty batch %s in training mode", op, nb_shp(x));
            return NULL;
        }
        nb_tensor *mean = NULL, *var = NULL;
        xhat = standardize(x, axes, st->eps, &mean, &var);
        if (!xhat) return NULL;
        if (keep_running && (update_running(st->running_mean, mean, st->momentum, C) ||
                             update_running(st->running_var, var, st->momentum, C)))
            return NULL;
    } else {
        nb_tensor *mean = nb_reshape(st->running_mean, view), *var = nb_reshape(st->running_var, view);
        xhat = nb_mul(nb_sub(x, mean), nb_rsqrt(nb_add_scalar(var, st->eps)));
    }
    return nb_add(nb_mul(xhat, nb_reshape(gamma, view)), nb_reshape(beta, view));
}

nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training)
{
    int64_t C = x ? (x->ndim > 1 ? x->shape[1] : 0) : 0;
    return batchnorm("nb_batchnorm", x, gamma, beta, st, training, 2, "[N,D]", NB_AXES(0), NB_SHAPE(C));
}

nb_tensor *nb_spatial_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training)
{
    int64_t C = x ? (x->ndim > 1 ? x->shape[1] : 0) : 0;
    return batchnorm("nb_spatial_batchnorm", x, gamma, beta, st, training, 4, "[N,C,H,W]", NB_AXES(0, 2, 3),
                     NB_SHAPE(C, 1, 1));
}

nb_tensor *nb_layernorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps)
{
    const char *op = "nb_layernorm";
    if (!x || !gamma || !beta) return nb_null_input("nb_layernorm");
    if (!nb_check_float(op, x)) return NULL;
    if (x->ndim < 1) {
        nb_error("%s: expected x [..,D] with at least one axis, got %s", op, nb_shp(x));
        return NULL;
    }
    const int64_t D = x->shape[x->ndim - 1];
    if (!check_vector(op, "gamma", gamma, x, D) || !check_vector(op, "beta", beta, x, D) || !check_eps(op, eps)) return NULL;
    if (D == 0) {
        nb_error("%s: no features in x %s", op, nb_shp(x));
        return NULL;
    }
    return nb_add(nb_mul(standardize(x, NB_AXES(-1), eps, NULL, NULL), gamma), beta);
}

/* t holds C values as [C] or [1,C,1,1] */
static bool check_channel_param(const char *op, const char *name, const nb_tensor *t, const nb_tensor *x, int64_t C)
{
    if (!nb_check_same_dtype(op, x, t)) return false;
    bool ok = (t->ndim == 1 && t->shape[0] == C) ||
              (t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == C && t->shape[2] == 1 && t->shape[3] == 1);
    if (!ok) {
        nb_error("%s: %s is %s but x is %s (expected [%lld] or [1,%lld,1,1])", op, name, nb_shp(t), nb_shp(x), (long long)C,
                 (long long)C);
        return false;
    }
    return true;
}

nb_tensor *nb_groupnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, int groups, double eps)
{
    const char *op = "nb_groupnorm";
    if (!x || !gamma || !beta) return nb_null_input("nb_groupnorm");
    if (!nb_check_float(op, x)) return NULL;
    if (x->ndim != 4) {
        nb_error("%s: expected a 4-D [N,C,H,W] x, got %s", op, nb_shp(x));
        return NULL;
    }
    const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (!check_channel_param(op, "gamma", gamma, x, C) || !check_channel_param(op, "beta", beta, x, C) || !check_eps(op, eps))
        return NULL;
    if (groups < 1 || C % groups != 0) {
        nb_error("%s: groups %d must divide the %lld channels of x %s", op, groups, (long long)C, nb_shp(x));
        return NULL;
    }
    if (C == 0 || H * W == 0) {
        nb_error("%s: empty image %s", op, nb_shp(x));
        return NULL;
    }
    nb_tensor *xg = nb_reshape(x, NB_SHAPE(N, groups, (C / groups) * H * W));
    nb_tensor *xhat = nb_reshape(standardize(xg, NB_AXES(2), eps, NULL, NULL), NB_SHAPE(N, C, H, W));
    return nb_add(nb_mul(xhat, nb_reshape(gamma, NB_SHAPE(C, 1, 1))), nb_reshape(beta, NB_SHAPE(C, 1, 1)));
}
