/* A 784-256-10 MLP on Fashion-MNIST from bare tensor expressions: our own parameters, matmul, add,
 * relu, the loss, backward and Adam. The same net as classifier_modules.c and classifier_sequential.c.
 * Usage: classifier_tensors [fashion-mnist dir] */
#include <math.h>
#include <stdio.h>

#include <nabla/nabla.h>

/* scores = relu(x·W1 + b1)·W2 + b2, with p = { W1, b1, W2, b2 } and x flattened to [N,784] */
static nb_tensor *forward(nb_tensor *const *p, nb_tensor *x)
{
    nb_tensor *h = nb_relu(nb_add(nb_matmul(nb_reshape(x, NB_SHAPE(-1, 784)), p[0]), p[1]));
    return nb_add(nb_matmul(h, p[2]), p[3]);
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
    /* He init, std √(2/fan_in): keeps the activations' scale through a relu layer */
    nb_tensor *p[4] = { nb_param(nb_randn(NB_F32, NB_SHAPE(784, 256), &rng, sqrt(2.0 / 784))),
                        nb_param(nb_zeros(NB_F32, NB_SHAPE(256))),
                        nb_param(nb_randn(NB_F32, NB_SHAPE(256, 10), &rng, sqrt(2.0 / 256))),
                        nb_param(nb_zeros(NB_F32, NB_SHAPE(10))) };
    nb_optimizer *opt = nb_optimizer_new(nb_optim_defaults(NB_ADAM), 4, p, NULL);   /* lr 1e-3 */
    nb_batcher *batches = nb_batcher_new(ds.train_x, ds.train_y, 128, NB_BATCH_SHUFFLE, &rng);
    if (!opt || !batches) return fail();

    nb_scope *step = nb_scope_new();   /* a step's batch, activations and graph live here */
    nb_scope_push(step);
    nb_tensor *x, *y;
    while (nb_batcher_next(batches, &x, &y) == 1) {   /* one epoch */
        nb_optimizer_zero_grad(opt);                   /* backward adds into the grads */
        nb_tensor *loss = nb_softmax_cross_entropy(forward(p, x), y);
        if (!loss || nb_backward(loss) || nb_optimizer_step(opt)) return fail();
        nb_scope_reset(step);                          /* frees the step at once, keeps the memory */
    }
    bool was = nb_set_grad_enabled(false);             /* evaluation: no graph */
    nb_tensor *pred = nb_argmax(forward(p, ds.val_x), 1, false);
    nb_tensor *acc = nb_mean(nb_cast(nb_equal(pred, ds.val_y), NB_F64));
    if (!acc) return fail();
    printf("tensors: validation accuracy %.4f after 1 epoch\n", nb_item(acc));
    nb_set_grad_enabled(was);

    nb_scope_pop();
    nb_scope_free(step);
    nb_batcher_free(batches);
    nb_optimizer_free(opt);
    for (int k = 0; k < 4; k++) nb_free(p[k]);
    nb_dataset_free(&ds);
    nb_cleanup();
    return 0;
}
