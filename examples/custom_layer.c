/* A custom layer from primitives: GELU in a tiny 2-layer net on random data, gradient-checked in
 * float64, then trained with a few steps of plain SGD, each step in a scope that is reset after it. */
#include <stdio.h>

#include <nabla/nabla.h>

/* gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — backward comes from the primitives */
static nb_tensor *gelu(nb_tensor *x)
{
    nb_tensor *inner = nb_add(x, nb_mul_scalar(nb_pow_scalar(x, 3), 0.044715));
    return nb_mul(nb_mul_scalar(x, 0.5), nb_add_scalar(nb_tanh(nb_mul_scalar(inner, 0.7978845608028654)), 1));
}

/* mean((gelu(x·W1 + b1)·W2 + b2 - y)²) with in = { x, y, W1, b1, W2, b2 } */
static nb_tensor *net_loss(void *ctx, int n, nb_tensor *const *in)
{
    (void)ctx, (void)n;
    nb_tensor *out = nb_add(nb_matmul(gelu(nb_add(nb_matmul(in[0], in[2]), in[3])), in[4]), in[5]);
    return nb_mean(nb_square(nb_sub(out, in[1])));
}

int main(void)
{
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(32, 4), &rng, 1.0);   /* data: in the default scope */
    nb_tensor *y = nb_sum_axes(nb_square(x), NB_AXES(1), true);      /* target: Σ x² per row */
    nb_tensor *in[6] = { x, y, nb_param(nb_randn(NB_F64, NB_SHAPE(4, 16), &rng, 0.5)),
                         nb_param(nb_zeros(NB_F64, NB_SHAPE(16))),
                         nb_param(nb_randn(NB_F64, NB_SHAPE(16, 1), &rng, 0.25)),
                         nb_param(nb_zeros(NB_F64, NB_SHAPE(1))) };

    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    nb_gradcheck_result r = { 0 };
    int ok = nb_gradcheck(net_loss, NULL, 6, in, &opts, &r);
    printf("gradcheck: worst relative error %.2e over %lld elements: %s\n", r.max_rel_error,
           (long long)r.checked, ok == 1 ? "PASS" : "FAIL");
    if (ok != 1) return fprintf(stderr, "%s %s\n", r.first_failure, nb_last_error()), 1;

    nb_scope *step = nb_scope_new();
    nb_scope_push(step);            /* everything a step makes lives here until the reset */
    for (int it = 0; it <= 100; it++) {
        nb_tensor *loss = net_loss(NULL, 6, in);
        for (int k = 2; k < 6; k++) nb_zero_grad(in[k]);
        if (!loss || nb_backward(loss)) return fprintf(stderr, "%s\n", nb_last_error()), 1;
        if (it % 20 == 0) printf("step %3d  loss %.4f\n", it, nb_item(loss));
        bool was = nb_set_grad_enabled(false);      /* the update itself is not recorded */
        for (int k = 2; k < 6; k++) nb_copy_into(in[k], nb_sub(in[k], nb_mul_scalar(in[k]->grad, 0.02)));
        nb_set_grad_enabled(was);
        nb_scope_reset(step);
    }
    nb_scope_pop();
    nb_scope_free(step);
    for (int k = 2; k < 6; k++) nb_free(in[k]);
    nb_cleanup();
    return 0;
}
