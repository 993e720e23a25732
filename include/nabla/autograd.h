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

bool nb_grad_enabled(void);
bool nb_set_grad_enabled(bool on);                     /* returns the previous mode; per thread */

#ifdef __cplusplus
}
#endif
#endif
