/* Losses as compositions of primitive ops: autodiff supplies their gradients. */
#include "../internal.h"

#include <math.h>

/* scores [N,C] float, labels i64 [N] with every value in [0, C); returns labels viewed as [N,1] */
static nb_tensor *check_labels(const char *op, nb_tensor *scores, nb_tensor *labels)
{
    if (!nb_check_float(op, scores)) return NULL;
    if (scores->ndim != 2) {
        nb_error("%s: scores must be [N,C], got %s", op, nb_shp(scores));
        return NULL;
    }
    if (scores->shape[0] == 0) {
        nb_error("%s: scores %s has no rows to average over", op, nb_shp(scores));
        return NULL;
    }
    if (labels->dtype != NB_I64) {
        nb_error("%s: labels must be i64, got %s %s", op, nb_dtype_name(labels->dtype), nb_shp(labels));
        return NULL;
    }
    int64_t n = scores->shape[0], c = scores->shape[1];
    if (labels->ndim != 1 || labels->shape[0] != n) {
        nb_error("%s: labels %s must be [%lld] to match scores %s", op, nb_shp(labels), (long long)n, nb_shp(scores));
        return NULL;
    }
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = y[i * labels->stride[0]];
        if (v < 0 || v >= c) {
            nb_error("%s: label %lld at position %lld is outside [0, %lld)", op, (long long)v, (long long)i, (long long)c);
            return NULL;
        }
    }
    int64_t shape[2] = { n, 1 }, stride[2] = { labels->stride[0], 0 };
    return nb_view(labels, 2, shape, stride, labels->data);
}

nb_tensor *nb_softmax_cross_entropy(nb_tensor *scores, nb_tensor *labels)
{
    if (!scores || !labels) return nb_null_input("nb_softmax_cross_entropy");
    nb_tensor *index = check_labels("nb_softmax_cross_entropy", scores, labels);
    if (!index) return NULL;
    nb_tensor *picked = nb_gather(nb_log_softmax(scores, 1), 1, index);   /* [N,1] log-probabilities of y */
    return nb_neg(nb_mean(picked));
}

nb_tensor *nb_svm_loss(nb_tensor *scores, nb_tensor *labels)
{
    if (!scores || !labels) return nb_null_input("nb_svm_loss");
    nb_tensor *index = check_labels("nb_svm_loss", scores, labels);
    if (!index) return NULL;
    int64_t n = scores->shape[0], c = scores->shape[1];
    /* mask: 1 everywhere but at (i, y_i), so the correct class contributes nothing (nor any gradient) */
    nb_tensor *mask = nb_ones(scores->dtype, NB_SHAPE(n, c));
    if (!mask) return NULL;
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < n; i++) nb_set(mask, i * c + y[i * labels->stride[0]], 0.0);
    nb_tensor *correct = nb_gather(scores, 1, index);                      /* [N,1] */
    nb_tensor *margins = nb_relu(nb_add_scalar(nb_sub(scores, correct), 1.0));
    return nb_div_scalar(nb_sum(nb_mul(margins, mask)), (double)n);
}

nb_tensor *nb_temporal_softmax_loss(nb_tensor *x, nb_tensor *y, nb_tensor *mask)
{
    static const char op[] = "nb_temporal_softmax_loss";
    if (!x || !y) return nb_null_input(op);
    if (!nb_check_float(op, x)) return NULL;
    if (x->ndim != 3 || y->ndim != 2 || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1]) {
        nb_error("%s: x %s and y %s: expected x [N,T,V] and y [N,T]", op, nb_shp(x), nb_shp(y));
        return NULL;
    }
    const int64_t N = x->shape[0], T = x->shape[1], V = x->shape[2];
    nb_tensor *weights = NULL;
    if (mask) {
        if (!nb_same_shape(mask, 2, y->shape) || (mask->dtype != NB_I64 && mask->dtype != x->dtype)) {
            nb_error("%s: the mask is %s %s: expected [%lld,%lld] of %s or i64", op, nb_dtype_name(mask->dtype),
                     nb_shp(mask), (long long)N, (long long)T, nb_dtype_name(x->dtype));
            return NULL;
        }
        weights = mask->dtype == x->dtype ? mask : nb_empty(x->dtype, nb_shape_of(mask));
        for (int64_t i = 0; weights != mask && weights && i < N * T; i++) nb_set(weights, i, nb_get(mask, i));
        if (!weights) return NULL;
    }
    nb_tensor *scores = nb_reshape(x, NB_SHAPE(N * T, V)), *labels = nb_reshape(y, NB_SHAPE(N * T));
    if (!scores || !labels) return NULL;
    nb_tensor *index = check_labels(op, scores, labels);
    if (!index) return NULL;
    nb_tensor *picked = nb_reshape(nb_gather(nb_log_softmax(scores, 1), 1, index), NB_SHAPE(N, T));
    if (weights) picked = nb_mul(picked, weights);
    return nb_neg(nb_div_scalar(nb_sum(picked), (double)N));
}

/* pred and target: one float dtype, one shape, at least one element */
static bool check_regression(const char *op, const nb_tensor *pred, const nb_tensor *target)
{
    if (!nb_check_float(op, pred) || !nb_check_same_dtype(op, pred, target)) return false;
    if (!nb_same_shape(target, pred->ndim, pred->shape)) {
        nb_error("%s: the target %s must have the prediction's shape %s", op, nb_shp(target), nb_shp(pred));
        return false;
    }
    if (nb_numel(pred) == 0) {
        nb_error("%s: %s has no elements to average over", op, nb_shp(pred));
        return false;
    }
    return true;
}

nb_tensor *nb_mse_loss(nb_tensor *pred, nb_tensor *target)
{
    if (!pred || !target) return nb_null_input("nb_mse_loss");
    if (!check_regression("nb_mse_loss", pred, target)) return NULL;
    return nb_mean(nb_square(nb_sub(pred, target)));
}

nb_tensor *nb_bce_with_logits(nb_tensor *logits, nb_tensor *target)
{
    if (!logits || !target) return nb_null_input("nb_bce_with_logits");
    if (!check_regression("nb_bce_with_logits", logits, target)) return NULL;
    nb_tensor *softplus_neg_abs = nb_log(nb_add_scalar(nb_exp(nb_neg(nb_abs(logits))), 1));
    return nb_mean(nb_add(nb_sub(nb_relu(logits), nb_mul(logits, target)), softplus_neg_abs));
}

nb_tensor *nb_huber_loss(nb_tensor *pred, nb_tensor *target, double delta)
{
    if (!pred || !target) return nb_null_input("nb_huber_loss");
    if (!check_regression("nb_huber_loss", pred, target)) return NULL;
    if (!(delta > 0 && isfinite(delta))) {
        nb_error("nb_huber_loss: delta %g must be finite and positive", delta);
        return NULL;
    }
    /* with a = |d| and q = min(a, delta): 0.5·q² + delta·(a - q) is each branch of the definition */
    nb_tensor *a = nb_abs(nb_sub(pred, target));
    nb_tensor *q = nb_minimum(a, nb_scalar(pred->dtype, delta));
    return nb_mean(nb_add(nb_mul_scalar(nb_square(q), 0.5), nb_mul_scalar(nb_sub(a, q), delta)));
}

nb_tensor *nb_l2_reg(int n, nb_tensor *const *weights, double reg)
{
    if (n < 1 || !weights) {
        nb_error("nb_l2_reg: expected at least one weight, got %d", weights ? n : 0);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!weights[k]) return nb_null_input("nb_l2_reg");
    if (!(reg >= 0 && isfinite(reg))) {
        nb_error("nb_l2_reg: reg %g must be finite and not negative", reg);
        return NULL;
    }
    if (!nb_check_float("nb_l2_reg", weights[0])) return NULL;
    for (int k = 1; k < n; k++)
        if (!nb_check_same_dtype("nb_l2_reg", weights[0], weights[k])) return NULL;
    nb_tensor *total = nb_sum(nb_square(weights[0]));
    for (int k = 1; k < n; k++) total = nb_add(total, nb_sum(nb_square(weights[k])));
    return nb_mul_scalar(total, 0.5 * reg);
}
