/* The 784-256-10 MLP of classifier_tensors.c as one Sequential, wrapped in a model and trained by
 * the Solver, which owns the loop, the batches and the optimizer.
 * Usage: classifier_sequential [fashion-mnist dir] */
#include <stdio.h>

#include <nabla/nabla.h>

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    nb_dataset ds;
    if (nb_dataset_load_mnist(&ds, dir, NB_F32, 5000))   /* the last 5000 training images validate */
        return fprintf(stderr, "%s\nFashion-MNIST not found in %s: install it with `apt-get install "
                       "dataset-fashion-mnist` or pass its folder as the first argument\n", nb_last_error(), dir), 1;
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *net = nb_module_sequential(0, NULL);
    nb_module_sequential_append(net, "fc1", nb_module_linear(784, 256, NB_F32, NB_INIT_KAIMING_RELU(&rng)));
    nb_module_sequential_append(net, "relu1", nb_module_relu());
    nb_module_sequential_append(net, "fc2", nb_module_linear(256, 10, NB_F32, NB_INIT_KAIMING_RELU(&rng)));
    nb_model *model = nb_model_new(net, 0.0, "MLP");   /* softmax cross-entropy, no L2 */

    nb_solver_config cfg = nb_solver_defaults();
    cfg.optim = nb_optim_defaults(NB_ADAM);   /* lr 1e-3 */
    cfg.batch_size = 128;
    cfg.num_epochs = 1;
    cfg.batch_mode = NB_BATCH_SHUFFLE;        /* every image once per epoch, not cs231n's sampling */
    cfg.print_every = 100;
    nb_solver *solver = nb_solver_new(model, ds.train_x, ds.train_y, ds.val_x, ds.val_y, &cfg);
    double acc = 0;
    if (!solver || nb_solver_train(solver) || nb_model_accuracy(model, ds.val_x, ds.val_y, 1000, &acc))
        return fprintf(stderr, "error: %s\n", nb_last_error()), 1;
    printf("sequential: validation accuracy %.4f after 1 epoch\n", acc);

    nb_solver_free(solver);
    nb_model_free(model);
    nb_dataset_free(&ds);
    nb_cleanup();
    return 0;
}
