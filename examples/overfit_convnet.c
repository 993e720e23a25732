/* cs231n's sanity check: a ThreeLayerConvNet that cannot fit 100 training images perfectly has a bug
 * (in the net, its gradients or the optimizer). Exits 0 only when train accuracy reaches 1.0, so it
 * doubles as a check. Usage: overfit_convnet [fashion-mnist dir] */
#include <stdio.h>

#include <nabla/nabla.h>

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    nb_dataset ds;
    if (nb_dataset_load_mnist(&ds, dir, NB_F32, 1000))
        return fprintf(stderr, "%s\nFashion-MNIST not found in %s: install it with `apt-get install "
                       "dataset-fashion-mnist` or pass its folder as the first argument\n", nb_last_error(), dir), 1;
    /* persistent copies of the first 100 training samples: the Solver borrows them */
    nb_tensor *x = nb_persist(nb_take_rows(ds.train_x, 0, 100));
    nb_tensor *y = nb_persist(nb_take_rows(ds.train_y, 0, 100));

    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_convnet_config net = nb_convnet_defaults();
    net.in_c = 1, net.in_h = 28, net.in_w = 28;
    net.num_filters = 16, net.filter_size = 5, net.hidden_dim = 100;   /* small: a check, not a contest */
    net.weight_scale = 1e-1;   /* inputs in [0,1]: with 1e-3 or 1e-2 the scores stay ~0 for epochs */
    nb_model *model = nb_three_layer_convnet(&net, &rng);

    nb_solver_config cfg = nb_solver_defaults();
    cfg.optim = nb_optim_defaults(NB_ADAM);
    cfg.optim.lr = 2e-3;                      /* with 1e-3, 30 epochs (60 steps) are not always enough */
    cfg.batch_size = 50;
    cfg.num_epochs = 30;
    cfg.batch_mode = NB_BATCH_SHUFFLE;
    cfg.num_train_samples = 0;                /* train accuracy on all 100 */
    cfg.print_every = 1000;                   /* few loss lines: the per-epoch accuracies matter */
    nb_solver *solver = nb_solver_new(model, x, y, ds.val_x, ds.val_y, &cfg);
    if (!x || !y || !solver || nb_solver_train(solver))
        return fprintf(stderr, "error: %s\n", nb_last_error()), 1;

    /* the last check is at the last iteration, before the Solver restores the best-val parameters */
    int64_t n;
    const double *train_acc = nb_solver_train_acc_history(solver, &n);
    double acc = train_acc[n - 1];
    printf("overfit: train accuracy %.4f on 100 samples (best val accuracy %.4f)\n", acc,
           nb_solver_best_val_acc(solver));

    nb_solver_free(solver);
    nb_model_free(model);
    nb_free(x);
    nb_free(y);
    nb_dataset_free(&ds);
    nb_cleanup();
    return acc == 1.0 ? 0 : 1;
}
