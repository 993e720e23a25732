/* nabla/loss.h — classification losses and weight regularisation (cs231n conventions).
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
/* weights[0..n), n >= 1, one dtype -> [] = 0.5·reg·Σ_k Σ W_k² */
nb_tensor *nb_l2_reg(int n, nb_tensor *const *weights, double reg);

#ifdef __cplusplus
}
#endif
#endif
