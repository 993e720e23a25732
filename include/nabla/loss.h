/* nabla/loss.h — classification and regression losses, weight regularisation (cs231n conventions).
 *
 * Each loss is a composition of primitive ops (ops.h), so its gradient — and gradients of gradients —
 * come from autodiff. Losses average over the N samples and return a 0-d tensor in the scores'
 * dtype. labels: i64 [N], every value in [0, C); a label outside that range is an error naming the
 * function, the label, its position and C. A NULL argument returns NULL, keeping the earlier error.
 */
#ifndef NABLA_LOSS_H
#define NABLA_LOSS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* scores:[N,C] labels:i64 [N] -> [] = mean_i -log softmax(scores_i)[y_i] (stable, via nb_log_softmax) */
nb_tensor *nb_softmax_cross_entropy(nb_tensor *scores, nb_tensor *labels);
/* scores:[N,C] labels:i64 [N] -> [] = mean_i Σ_{j≠y_i} max(0, s_ij - s_iy_i + 1) (multiclass SVM, margin 1) */
nb_tensor *nb_svm_loss(nb_tensor *scores, nb_tensor *labels);
/* x:[N,T,V] y:i64 [N,T] mask:[N,T] (x's dtype or i64; NULL: every step counts) -> [] =
 * -Σ_{n,t} mask·log softmax(x[n,t])[y[n,t]] / N: summed over time, averaged over the N sequences
 * (cs231n's temporal softmax loss, not a mean over the counted steps) */
nb_tensor *nb_temporal_softmax_loss(nb_tensor *x, nb_tensor *y, nb_tensor *mask);
/* Regression losses: pred and target of one shape and dtype (no broadcasting: a [N] target against
 * [N,1] predictions is an error, not an [N,N] loss), averaged over all elements (PyTorch's
 * reduction='mean'); at least one element. */
/* pred:A target:A -> [] = mean (pred - target)² */
nb_tensor *nb_mse_loss(nb_tensor *pred, nb_tensor *target);
/* logits:A target:A (probabilities in [0,1]) -> [] = mean -(t·log σ(x) + (1-t)·log(1-σ(x))), computed
 * as max(x,0) - x·t + log(1 + exp(-|x|)), finite for any finite logit */
nb_tensor *nb_bce_with_logits(nb_tensor *logits, nb_tensor *target);
/* pred:A target:A, delta > 0 -> [] = mean of 0.5·d² where |d| <= delta, delta·(|d| - 0.5·delta) elsewhere
 * (d = pred - target; PyTorch's HuberLoss) */
nb_tensor *nb_huber_loss(nb_tensor *pred, nb_tensor *target, double delta);
/* weights[0..n), n >= 1, one dtype -> [] = 0.5·reg·Σ_k Σ W_k² */
nb_tensor *nb_l2_reg(int n, nb_tensor *const *weights, double reg);

#ifdef __cplusplus
}
#endif
#endif
