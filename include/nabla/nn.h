/* nabla/nn.h — functional layers composed from the primitive ops of ops.h.
 *
 * Nothing here has a hand-written backward rule: every layer is a composition of differentiable
 * primitives, so autodiff supplies its gradient (and its gradient's gradient). Conventions follow
 * cs231n: affine flattens x to [N,D]; conv is a cross-correlation with symmetric zero padding;
 * batchnorm keeps running stats with momentum 0.9 on the old value (running = m·running + (1-m)·batch)
 * and a biased batch variance; dropout's probability is the KEEP probability (inverted dropout).
 * As for ops, a NULL input gives NULL without overwriting the first error, and the tensors of one
 * call must share a dtype (f32 or f64).
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "ops.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- affine and convolution ---- */
nb_tensor *nb_affine(nb_tensor *x, nb_tensor *w, nb_tensor *b);       /* x:[N,d1..dk] w:[D,M] b:[M] -> [N,M], D = d1·..·dk */
nb_tensor *nb_affine_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b);  /* relu(affine(x, w, b)) -> [N,M] */
nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad); /* x:[N,C,H,W] w:[F,C,HH,WW] b:[F] -> [N,F,H',W'], H' = 1 + (H + 2·pad - HH)/stride; unfold + matmul + reshape + add */
nb_tensor *nb_conv_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad); /* relu(conv2d) -> [N,F,H',W'] */
nb_tensor *nb_conv_relu_pool(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad, nb_window pool); /* max_pool2d(relu(conv2d), pool) */
nb_tensor *nb_global_avg_pool(nb_tensor *x);                          /* x:[N,C,H,W] -> [N,C], mean over H and W */

/* ---- normalisation ---- */
/* Batchnorm state: running stats are persistent tensors of the normalised feature count ([D] or [C]),
 * of x's dtype, starting at 0; cs231n defaults momentum 0.9, eps 1e-5. Updated in place, values only.
 * In training mode the state may be NULL: the batch's statistics alone, eps 1e-5, nothing kept. */
typedef struct {
    nb_tensor *running_mean, *running_var;
    double momentum, eps;
} nb_norm_state;
nb_tensor *nb_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training); /* x:[N,D] gamma,beta:[D] -> [N,D]; train: batch mean and biased var, updates running stats; eval: running stats */
nb_tensor *nb_spatial_batchnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st, bool training); /* x:[N,C,H,W] gamma,beta:[C] -> [N,C,H,W]; stats per channel over (N,H,W) */
nb_tensor *nb_layernorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, double eps); /* x:[N,D] gamma,beta:[D] -> [N,D]; per-sample stats over D, train = eval */
nb_tensor *nb_groupnorm(nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, int groups, double eps); /* x:[N,C,H,W] gamma,beta:[C] or [1,C,1,1] -> [N,C,H,W]; stats per sample over each group of C/groups channels and H,W */

/* ---- dropout ---- */
nb_tensor *nb_dropout(nb_tensor *x, double keep_prob, nb_rng *rng, bool training); /* x:A -> A; train: x·mask/keep_prob, mask = uniform < keep_prob drawn from rng (row-major); eval: x itself; keep_prob in (0,1] */

/* ---- composites ---- */
nb_tensor *nb_conv_bn_relu(nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_tensor *gamma, nb_tensor *beta, nb_norm_state *st,
                           bool training, int stride, int pad); /* relu(spatial_batchnorm(conv2d(x))) -> [N,F,H',W'] */

#ifdef __cplusplus
}
#endif
#endif
