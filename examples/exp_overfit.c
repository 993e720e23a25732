/* cs231n's sanity check for a FullyConnectedNet: a three-layer net (hidden 100, 100) must reach 100%
 * training accuracy on 50 samples; if it cannot, the net, its gradients or the optimizer are wrong.
 * Prints train and validation accuracy per epoch, writes overfit.csv and overfit.png, exits 1 when
 * the training accuracy stays below 1. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "Overfit 50 samples with a three-layer net (cs231n's sanity check).");
    exp_data d = exp_load(&o, 50, o.quick ? 100 : 1000);
    nb_fc_config net = nb_fc_defaults();
    net.n_hidden = 2;
    net.hidden_dims = (const int64_t[]){ 100, 100 };
    net.weight_scale = 1e-1;   /* standardised 784-pixel inputs: the course's 1e-2 suits its 3072 unscaled CIFAR pixels */
    nb_solver_config cfg = nb_solver_defaults();
    cfg.optim.lr = 1e-1;       /* plain SGD, as in the course; 100% from epoch 10 here */
    cfg.batch_size = 25;
    cfg.num_epochs = 20;
    exp_run r = exp_train(&d, net, cfg);

    FILE *f = exp_csv(&o, "overfit.csv", "epoch,train_acc,val_acc");
    printf("epoch  train acc  val acc\n");
    for (int64_t e = 0; e < r.n_acc; e++) {
        printf("%5lld  %9.4f  %7.4f\n", (long long)e, r.train_acc[e], r.val_acc[e]);
        fprintf(f, "%lld,%.4f,%.4f\n", (long long)e, r.train_acc[e], r.val_acc[e]);
    }
    fclose(f);
    exp_plot(&o, "overfit.png",
             "set title 'Three-layer net on 50 Fashion-MNIST samples'\nset xlabel 'epoch'\nset ylabel 'accuracy'\n"
             "set yrange [0:1.05]\nplot 'overfit.csv' using 1:2 with linespoints lw 2, '' using 1:3 with linespoints lw 2");
    const double final_train = r.train_acc[r.n_acc - 1];
    printf("final training accuracy %.4f: %s\n", final_train, final_train == 1 ? "overfits, as it must" : "does NOT overfit");
    exp_run_free(&r);
    exp_data_free(&d);
    nb_cleanup();
    return final_train == 1 ? 0 : 1;
}
