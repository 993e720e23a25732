/* nabla/custom.h — ops of your own: a forward and a backward callback, as torch.autograd.Function.
 *
 * nb_custom runs op->forward with grad mode off (nothing inside is recorded), then records one node
 * whose rule is op->backward. The node takes part in everything the built-in ops do: op->name
 * appears in error messages ("nb_backward: my_gelu produced a gradient [3] for its input [2,3]") and
 * in anomaly reports ("anomaly: my_gelu produced nan ...", for the output; ops used inside the
 * forward are checked under their own names), and a backward after one of its inputs, its output or
 * a saved tensor was written (nb_fill, nb_copy_into, an optimizer step) is refused.
 *
 *   forward(ctx, n, in)        computes and returns the output (a new tensor, in the current scope);
 *                              may keep tensors for the backward with nb_custom_save
 *   backward(ctx, gout, gin)   gout: the gradient of the output; writes gin[i], the gradient of
 *                              input i (its dtype and shape), for each i with nb_custom_needs_grad;
 *                              leaves the others NULL. Returns 0, or -1 with an error recorded.
 *
 * SECOND DERIVATIVES
 *   A backward written with nabla ops (reading nb_custom_input / nb_custom_output, which are in the
 *   graph) is recorded under nb_grad(..., create_graph = true) like any op, so it differentiates
 *   again. A backward that is a raw kernel (loops over ->data) sets raw_backward: it runs with grad
 *   mode off and its gradients are recorded as "<name> backward", which has no rule, so a second
 *   derivative fails with "<name> backward cannot be differentiated" instead of being silently zero.
 *   Tensors computed in the forward and saved are constants to a second derivative (as in PyTorch).
 *
 * The forward and backward may read ->data of their tensors: use nb_contiguous first for a tensor
 * that may be a strided view (nb_is_contiguous tells).
 */
#ifndef NABLA_CUSTOM_H
#define NABLA_CUSTOM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_CUSTOM_MAX_INPUTS 16
#define NB_CUSTOM_MAX_SAVED 8

typedef struct nb_custom_ctx nb_custom_ctx;

typedef struct {
    const char *name;             /* in errors and anomaly reports; must outlive the graph (a literal) */
    nb_tensor *(*forward)(nb_custom_ctx *ctx, int n, nb_tensor *const *in);
    int (*backward)(nb_custom_ctx *ctx, nb_tensor *gout, nb_tensor **gin);   /* NULL: not differentiable */
    bool raw_backward;            /* backward does not use nabla ops: once-differentiable */
} nb_custom_op;

/* out = op(in[0..n)); 1 <= n <= NB_CUSTOM_MAX_INPUTS; user is handed to the callbacks
 * (nb_custom_user). NULL with "<name>: ..." on failure, or the forward's own message. */
nb_tensor *nb_custom(const nb_custom_op *op, int n, nb_tensor *const *in, void *user);

/* ---- inside the callbacks ---- */
int nb_custom_save(nb_custom_ctx *ctx, nb_tensor *t);       /* forward only; up to NB_CUSTOM_MAX_SAVED, in order */
nb_tensor *nb_custom_saved(const nb_custom_ctx *ctx, int i);  /* the i-th saved tensor */
nb_tensor *nb_custom_input(const nb_custom_ctx *ctx, int i);
nb_tensor *nb_custom_output(const nb_custom_ctx *ctx);        /* backward only */
bool nb_custom_needs_grad(const nb_custom_ctx *ctx, int i);   /* input i requires a gradient */
void *nb_custom_user(const nb_custom_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
