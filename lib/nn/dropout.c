/* Inverted dropout composed from primitive ops: out = x·mask/keep_prob in training, mask drawn as
 * uniform < keep_prob (nb_bernoulli, row-major order) from the caller's generator; x itself in eval. */
#include "../internal.h"

nb_tensor *nb_dropout(nb_tensor *x, double keep_prob, nb_rng *rng, bool training)
{
    if (!x) return nb_null_input("nb_dropout");
    if (!nb_check_float("nb_dropout", x)) return NULL;
    if (!(keep_prob > 0 && keep_prob <= 1)) {
        nb_error("nb_dropout: keep_prob %g must be in (0, 1]", keep_prob);
        return NULL;
    }
    if (!training) return x;
    if (!rng) {
        nb_error("nb_dropout: NULL generator");
        return NULL;
    }
    nb_tensor *mask = nb_bernoulli(x->dtype, nb_shape_of(x), rng, keep_prob);
    return nb_div_scalar(nb_mul(x, mask), keep_prob);
}
