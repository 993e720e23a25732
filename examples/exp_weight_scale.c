/* cs231n's batchnorm and initialisation experiment: six-layer nets (five hidden layers of 50 and the
 * output layer), 1000 training samples, Adam, trained with weight scales logspace(-4, 0, 20), with and
 * without batchnorm. Batchnorm makes the net train over a wide range of scales; without it only a narrow
 * band trains at all. Table: best validation accuracy and final training loss per scale. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "Weight-scale sweep of six-layer nets with and without batchnorm.");
    const int scales = o.quick ? 3 : 20;
    exp_data d = exp_load(&o, o.quick ? 200 : 1000, o.quick ? 200 : 1000);
    FILE *f = exp_csv(&o, "weight_scale.csv", "weight_scale,best_val_acc_bn,best_val_acc_plain,final_loss_bn,final_loss_plain");
    printf("weight scale  best val acc (batchnorm, plain)  final train loss (batchnorm, plain)\n");
    for (int i = 0; i < scales; i++) {
        const double scale = pow(10.0, -4.0 + 4.0 * i / (scales - 1));
        exp_run r[2];
        for (int bn = 0; bn < 2; bn++) {
            nb_fc_config net = nb_fc_defaults();
            net.n_hidden = 5;
            net.hidden_dims = (const int64_t[]){ 50, 50, 50, 50, 50 };
            net.norm = bn ? NB_NORM_NONE : NB_NORM_BATCH;
            net.weight_scale = scale;
            nb_solver_config cfg = nb_solver_defaults();
            cfg.optim = nb_optim_defaults(NB_ADAM);
            cfg.optim.lr = 1e-3;
            cfg.batch_size = 50;
            cfg.num_epochs = o.quick ? 2 : 10;
            r[bn] = exp_train(&d, net, cfg);
        }
        printf("%12.3e  %10.4f %10.4f  %16.4f %10.4f\n", scale, r[0].best_val_acc, r[1].best_val_acc,
               exp_final_loss(&r[0], 10), exp_final_loss(&r[1], 10));
        fprintf(f, "%.6g,%.4f,%.4f,%.6f,%.6f\n", scale, r[0].best_val_acc, r[1].best_val_acc, exp_final_loss(&r[0], 10),
                exp_final_loss(&r[1], 10));
        exp_run_free(&r[0]);
        exp_run_free(&r[1]);
    }
    fclose(f);
    exp_plot(&o, "weight_scale.png",
             "set multiplot layout 1,2 title 'Six-layer nets on Fashion-MNIST: weight initialisation scale'\n"
             "set logscale x\nset format x '%.0e'\nset xlabel 'weight scale'\n"
             "set ylabel 'best validation accuracy'\nplot 'weight_scale.csv' using 1:2 with linespoints lw 2 title 'batchnorm', "
             "'' using 1:3 with linespoints lw 2 title 'plain'\n"
             "set ylabel 'final training loss'\nset logscale y\nplot 'weight_scale.csv' using 1:4 with linespoints lw 2 title 'batchnorm', "
             "'' using 1:5 with linespoints lw 2 title 'plain'\nunset multiplot");
    exp_data_free(&d);
    nb_cleanup();
    return 0;
}
