/* nabla/autograd.h — reverse-mode differentiation over the recorded graph.
 *
 * Ops record a node when grad mode is on and an input requires a gradient. Backward walks the
 * nodes reachable from the output in reverse topological order (iteratively, so graph depth is
 * unlimited) and accumulates (+=) into the grad of every leaf that requires one. The graph stays
 * valid until its scope is reset, so backward may run several times; gradients add up until
 * nb_zero_grad.
 */
#ifndef NABLA_AUTOGRAD_H
#define NABLA_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

int nb_backward(nb_tensor *loss);                      /* loss: one element; d loss/d loss = 1 */
int nb_backward_with(nb_tensor *y, nb_tensor *dy);     /* any y, dy of y's shape and dtype */

/* Gradients of y (seeded with dy, or 1 when dy is NULL and y has one element) with respect to
 * xs[0..n), written to grads[0..n) (zeros where y does not depend on xs[i]); leaves' grad fields are
 * not touched. With create_graph the gradients are themselves differentiable (double backward). */
int nb_grad(nb_tensor *y, nb_tensor *dy, int n, nb_tensor *const *xs, nb_tensor **grads, bool create_graph);

/* Anomaly mode (per thread, off by default; for debugging: it scans every op's output). While it is
 * on, the first op whose output holds NaN or Inf is remembered, as
 *   "anomaly: nb_log produced -inf at element 3 of its output [2,4] from finite inputs"
 *   "anomaly: nb_div (in the backward of nb_sqrt) produced inf at element 0 of its output [3] ..."
 *   "anomaly: nb_matmul received nan at element 7 of its input 1 [4,5]"  (NaN from outside the graph)
 * and nb_backward / nb_grad then fail with "nb_backward: anomaly: ...". Turning it on forgets an
 * earlier anomaly; nb_anomaly_clear forgets it too (call it after handling one). */
bool nb_set_anomaly_mode(bool on);                     /* returns the previous mode */
bool nb_anomaly_enabled(void);
const char *nb_anomaly(void);                          /* the first anomaly's message, or NULL */
void nb_anomaly_clear(void);

bool nb_grad_enabled(void);
bool nb_set_grad_enabled(bool on);                     /* returns the previous mode; per thread */

#ifdef __cplusplus
}
#endif
#endif
