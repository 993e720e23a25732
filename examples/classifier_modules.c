/* The 784-256-10 MLP of classifier_tensors.c, now from module objects that own their parameters:
 * two Linear layers and a ReLU, called one after another. Usage: classifier_modules [fashion-mnist dir] */
#include <stdio.h>

#include <nabla/nabla.h>

typedef struct { int n; nb_tensor *p[8]; } param_list;

/* nb_module_visit callback: collects the parameters (a module could also hold buffers) */
static int gather(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    param_list *l = ctx;
    if (!is_buffer && l->n < 8) l->p[l->n++] = t;
    return 0;
}

static int fail(void) { return fprintf(stderr, "error: %s\n", nb_last_error()), 1; }

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    nb_dataset ds;
    if (nb_dataset_load_mnist(&ds, dir, NB_F32, 5000))   /* the last 5000 training images validate */
        return fprintf(stderr, "%s\nFashion-MNIST not found in %s: install it with `apt-get install "
                       "dataset-fashion-mnist` or pass its folder as the first argument\n", nb_last_error(), dir), 1;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    /* Linear flattens [N,1,28,28] to [N,784] itself; He init suits the relu between the layers */
    nb_module *fc1 = nb_module_linear(784, 256, NB_F32, NB_INIT_KAIMING_RELU(&rng));
    nb_module *relu = nb_module_relu();
    nb_module *fc2 = nb_module_linear(256, 10, NB_F32, NB_INIT_KAIMING_RELU(&rng));
    param_list params = { 0 };
    nb_module_visit(fc1, gather, &params);
    nb_module_visit(fc2, gather, &params);
    nb_optimizer *opt = nb_optimizer_new(nb_optim_defaults(NB_ADAM), params.n, params.p, NULL);
    nb_batcher *batches = nb_batcher_new(ds.train_x, ds.train_y, 128, NB_BATCH_SHUFFLE, &rng);
    if (!fc1 || !relu || !fc2 || !opt || !batches) return fail();

    nb_scope *step = nb_scope_new();   /* a step's batch, activations and graph live here */
    nb_scope_push(step);
    nb_tensor *x, *y;
    while (nb_batcher_next(batches, &x, &y) == 1) {   /* one epoch */
        nb_optimizer_zero_grad(opt);
        nb_tensor *h = nb_module_forward(relu, nb_module_forward(fc1, x));
        nb_tensor *loss = nb_softmax_cross_entropy(nb_module_forward(fc2, h), y);
        if (!loss || nb_backward(loss) || nb_optimizer_step(opt)) return fail();
        nb_scope_reset(step);
    }
    bool was = nb_set_grad_enabled(false);             /* evaluation: no graph */
    nb_tensor *scores = nb_module_forward(fc2, nb_module_forward(relu, nb_module_forward(fc1, ds.val_x)));
    nb_tensor *acc = nb_mean(nb_cast(nb_equal(nb_argmax(scores, 1, false), ds.val_y), NB_F64));
    if (!acc) return fail();
    printf("modules: validation accuracy %.4f after 1 epoch\n", nb_item(acc));
    nb_set_grad_enabled(was);

    nb_scope_pop();
    nb_scope_free(step);
    nb_batcher_free(batches);
    nb_optimizer_free(opt);
    nb_module_free(fc1);
    nb_module_free(relu);
    nb_module_free(fc2);
    nb_dataset_free(&ds);
    nb_cleanup();
    return 0;
}
