/* nabla/gradcheck.h — numerical gradient checking (float64 central differences).
 *
 * f maps the inputs to a tensor of any shape; the check differentiates the scalar L = Σ f(x)·r for a
 * fixed random r (entries ±[0.5, 1.5)), compares the analytic gradient of every input that requires
 * grad with the fourth-order central difference
 *     n = (8·(L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / 12h
 * per element, and reports both cs231n's relative error |a-n| / max(1e-8, |a|+|n|) and PyTorch's
 * criterion |a-n| <= atol + rtol·|n|. Its O(h⁴) truncation allows a larger h than the two-point
 * difference, so rounding noise stays far below a 1e-7 relative error. Inputs that require grad must
 * be f64 and store each element once (strided views yes, expanded no); they are perturbed in place
 * and restored. f must return the same shape every call. The check runs in scopes of its own, so the
 * caller's scope does not grow.
 */
#ifndef NABLA_GRADCHECK_H
#define NABLA_GRADCHECK_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef nb_tensor *(*nb_fn)(void *ctx, int n, nb_tensor *const *inputs);

typedef struct {
    double eps;         /* step h; default 1e-4 (keep x ± 2h inside the function's domain) */
    double atol, rtol;  /* defaults 1e-5, 1e-3 (PyTorch's gradcheck) */
    bool skip_kinks;    /* skip elements with a kink within 2h (relu at 0, max ties): seen as a large
                         * fourth difference */
    uint64_t seed;      /* for the projection r */
} nb_gradcheck_opts;

typedef struct {
    double max_rel_error;  /* cs231n relative error, worst element */
    double max_abs_error;
    int64_t checked, skipped, failed;
    char first_failure[256];
} nb_gradcheck_result;

nb_gradcheck_opts nb_gradcheck_defaults(void);
/* 1 when every checked element passes, 0 when one fails, -1 on error (message recorded). */
int nb_gradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *inputs,
                 const nb_gradcheck_opts *opts, nb_gradcheck_result *result);
/* Checks the second derivatives: gradcheck of x -> Σ_i (dL/dx_i)·s_i for fixed random s_i, the
 * gradients built with create_graph. */
int nb_gradgradcheck(nb_fn f, void *ctx, int n, nb_tensor *const *inputs,
                     const nb_gradcheck_opts *opts, nb_gradcheck_result *result);

#ifdef __cplusplus
}
#endif
#endif
