/* A custom op with its own backward (nabla/custom.h): swish(x) = x·σ(x) as one fused kernel whose
 * backward is the closed form  d swish/dx = σ(x)·(1 + x·(1 − σ(x))), instead of the three recorded
 * ops of the composed x·sigmoid(x). It is gradient-checked in float64 against central differences,
 * compared with the composed expression, then used as a layer (a module of its own) in a
 * two-layer net that the Solver trains on a synthetic three-class problem. Exits 1 on any failure. */
#include <math.h>
#include <stdio.h>

#include <nabla/nabla.h>

/* forward: y = x·σ(x), saving σ(x) for the backward (x is read through a contiguous copy when it is
 * a strided view) */
static nb_tensor *swish_forward(nb_custom_ctx *ctx, int n, nb_tensor *const *in)
{
    nb_tensor *x = nb_contiguous(in[0]);
    nb_tensor *y = x ? nb_empty(x->dtype, nb_shape_of(x)) : NULL;
    nb_tensor *s = x ? nb_empty(x->dtype, nb_shape_of(x)) : NULL;
    if (!y || !s) return NULL;
    for (int64_t i = 0, count = nb_numel(x); i < count; i++) {
        double v = nb_get(x, i), sig = 1 / (1 + exp(-v));   /* nb_get: either dtype */
        nb_set(s, i, sig);
        nb_set(y, i, v * sig);
    }
    return nb_custom_save(ctx, s) == 0 ? y : NULL;
}

/* backward, a raw kernel: dx = g·σ·(1 + x·(1 − σ)) */
static int swish_backward(nb_custom_ctx *ctx, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = nb_contiguous(nb_custom_input(ctx, 0)), *s = nb_custom_saved(ctx, 0);
    nb_tensor *gc = nb_contiguous(g);
    nb_tensor *dx = x && gc ? nb_empty(x->dtype, nb_shape_of(x)) : NULL;
    if (!dx || !s) return -1;
    for (int64_t i = 0, count = nb_numel(x); i < count; i++) {
        double v = nb_get(x, i), sig = nb_get(s, i);
        nb_set(dx, i, nb_get(gc, i) * sig * (1 + v * (1 - sig)));
    }
    gin[0] = dx;
    return 0;
}

static const nb_custom_op swish_op = { "swish", swish_forward, swish_backward, .raw_backward = true };

static nb_tensor *swish(nb_tensor *x) { return nb_custom(&swish_op, 1, &x, NULL); }

static nb_tensor *swish_fn(void *ctx, int n, nb_tensor *const *in) { return swish(in[0]); }
static nb_tensor *swish_composed_fn(void *ctx, int n, nb_tensor *const *in) { return nb_mul(in[0], nb_sigmoid(in[0])); }

/* the op as a layer: a module with no parameters */
static nb_tensor *swish_module_forward(nb_module *m, nb_tensor *x) { return swish(x); }

/* three Gaussian blobs in 2-D: x [n,2] f32, y [n] i64 */
static void blobs(int64_t n, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    static const double centres[3][2] = { { 0, 2 }, { -2, -1 }, { 2, -1 } };
    *x = nb_persist(nb_zeros(NB_F32, NB_SHAPE(n, 2)));
    *y = nb_persist(nb_zeros(NB_I64, NB_SHAPE(n)));
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(nb_rng_next(rng) % 3);
        nb_set(*y, i, c);
        for (int d = 0; d < 2; d++) nb_set(*x, 2 * i + d, centres[c][d] + 0.8 * nb_rng_normal(rng));
    }
}

int main(void)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);

    /* 1. the closed-form backward against central differences, and the values against x·sigmoid(x) */
    nb_tensor *x = nb_randn(NB_F64, NB_SHAPE(4, 5), &rng, 2.0);
    nb_set_requires_grad(x, true);
    nb_gradcheck_opts opts = nb_gradcheck_defaults();
    nb_gradcheck_result r = { 0 };
    int ok = nb_gradcheck(swish_fn, NULL, 1, &x, &opts, &r);
    printf("gradcheck of swish: worst relative error %.2e over %lld elements: %s\n", r.max_rel_error,
           (long long)r.checked, ok == 1 ? "PASS" : "FAIL");
    if (ok != 1) return fprintf(stderr, "%s %s\n", r.first_failure, nb_last_error()), 1;
    nb_tensor *fused = swish_fn(NULL, 1, &x), *composed = swish_composed_fn(NULL, 1, &x);
    double worst = nb_item(nb_max(nb_abs(nb_sub(fused, composed))));
    printf("fused vs composed: largest difference %.2e\n", worst);
    if (!(worst <= 1e-15)) return fprintf(stderr, "the fused swish differs from x·sigmoid(x)\n"), 1;

    /* a second derivative through the raw kernel is refused, not silently zero */
    nb_gradcheck_result r2 = { 0 };
    if (nb_gradgradcheck(swish_fn, NULL, 1, &x, &opts, &r2) != -1) return fprintf(stderr, "expected a refusal\n"), 1;
    printf("second derivative: %s\n", nb_last_error());
    nb_clear_error();
    nb_scope_reset(NULL);

    /* 2. swish as a layer of a net the Solver trains */
    nb_tensor *train_x, *train_y, *val_x, *val_y;
    blobs(600, &rng, &train_x, &train_y);
    blobs(200, &rng, &val_x, &val_y);
    nb_module *layers[3] = { nb_module_linear(2, 32, NB_F32, NB_INIT_KAIMING_RELU(&rng)),
                             nb_module_new("Swish", swish_module_forward, 0),
                             nb_module_linear(32, 3, NB_F32, NB_INIT_KAIMING_RELU(&rng)) };
    nb_model *model = nb_model_new(nb_module_sequential(3, layers), 1e-4, "SwishNet");
    nb_solver_config cfg = nb_solver_defaults();
    cfg.optim = nb_optim_defaults(NB_ADAM);
    cfg.num_epochs = 5;
    cfg.batch_size = 50;
    cfg.print_every = 20;
    nb_solver *solver = model ? nb_solver_new(model, train_x, train_y, val_x, val_y, &cfg) : NULL;
    if (!solver || nb_solver_train(solver) != 0) return fprintf(stderr, "%s\n", nb_last_error()), 1;
    double best = nb_solver_best_val_acc(solver);
    printf("best validation accuracy: %.3f\n", best);
    nb_solver_free(solver);
    nb_model_free(model);
    nb_free(train_x), nb_free(train_y), nb_free(val_x), nb_free(val_y);
    nb_cleanup();
    return best >= 0.85 ? 0 : 1;
}
