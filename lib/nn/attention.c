/* Attention and the Transformer's activation, composed from primitive ops (autodiff gives every
 * gradient, of any order):
 *   attention(q, k, v) = softmax(q·kᵀ/√D + mask)·v over the last two axes, batched over the others
 *   (the [B,H,T,D] heads are strided views: the batched matmul reads them in place);
 *   the causal mask puts a large negative number, not -inf, where a position would see the future,
 *   so every value and gradient stays finite (and anomaly mode stays quiet);
 *   gelu in its tanh form. */
#include "../internal.h"

#include <math.h>

/* what the masked scores become: exp of it minus a row's max is 0 in f32 and f64 */
#define MASKED_SCORE (-1e30)

nb_tensor *nb_causal_mask(nb_dtype dt, int64_t t)
{
    if (t < 0 || (dt != NB_F32 && dt != NB_F64)) {
        nb_error("nb_causal_mask: expected a float dtype and t >= 0, got %s and %lld", nb_dtype_name(dt), (long long)t);
        return NULL;
    }
    nb_tensor *m = nb_zeros(dt, NB_SHAPE(t, t));
    for (int64_t i = 0; m && i < t; i++)
        for (int64_t j = 0; j <= i; j++) nb_set(m, i * t + j, 1);
    return m;
}

nb_tensor *nb_attention(nb_tensor *q, nb_tensor *k, nb_tensor *v, bool causal)
{
    static const char op[] = "nb_attention";
    if (!q || !k || !v) return nb_null_input(op);
    if (!nb_check_float(op, q) || !nb_check_same_dtype(op, q, k) || !nb_check_same_dtype(op, q, v)) return NULL;
    if (q->ndim < 2 || !nb_same_shape(k, q->ndim, q->shape) || k->ndim != v->ndim ||
        v->shape[v->ndim - 2] != k->shape[k->ndim - 2]) {
        nb_error("%s: q %s, k %s and v %s: expected q and k [..,T,D] and v [..,T,E]", op, nb_shp(q), nb_shp(k), nb_shp(v));
        return NULL;
    }
    const int64_t T = q->shape[q->ndim - 2], D = q->shape[q->ndim - 1];
    nb_tensor *scores = nb_mul_scalar(nb_matmul(q, nb_transpose(k, -1, -2)), D ? 1 / sqrt((double)D) : 1);
    if (causal) scores = nb_where(nb_causal_mask(q->dtype, T), scores, nb_scalar(q->dtype, MASKED_SCORE));
    return nb_matmul(nb_softmax(scores, -1), v);
}

nb_tensor *nb_gelu(nb_tensor *x)
{
    if (!x) return nb_null_input("nb_gelu");
    if (!nb_check_float("nb_gelu", x)) return NULL;
    nb_tensor *inner = nb_add(x, nb_mul_scalar(nb_pow_scalar(x, 3), 0.044715));
    return nb_mul(nb_mul_scalar(x, 0.5), nb_add_scalar(nb_tanh(nb_mul_scalar(inner, sqrt(2 / M_PI))), 1));
}
