/* cs231n's update rules compared: one six-layer net (five hidden layers of 100) on 4000 samples,
 * trained for 5 epochs by SGD, SGD with momentum, RMSProp and Adam at the course's learning rates
 * (1e-2, 1e-2, 1e-4, 1e-3). Table: final training loss, final training and best validation
 * accuracy; plot: the loss per iteration and the accuracies per epoch. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "SGD, momentum, RMSProp and Adam on one model.");
    exp_data d = exp_load(&o, o.quick ? 400 : 4000, o.quick ? 200 : 1000);
    static const struct { nb_optim_kind kind; double lr; } rules[] = {
        { NB_SGD, 1e-2 }, { NB_SGD_MOMENTUM, 1e-2 }, { NB_RMSPROP, 1e-4 }, { NB_ADAM, 1e-3 } };
    FILE *loss = exp_csv(&o, "optimizers_loss.csv", "rule,iteration,loss");
    FILE *acc = exp_csv(&o, "optimizers_acc.csv", "rule,epoch,train_acc,val_acc");
    printf("rule           lr      final loss  final train acc  best val acc\n");
    for (int i = 0; i < 4; i++) {
        nb_fc_config net = nb_fc_defaults();
        net.n_hidden = 5;
        net.hidden_dims = (const int64_t[]){ 100, 100, 100, 100, 100 };
        net.weight_scale = 5e-2;
        nb_solver_config cfg = nb_solver_defaults();
        cfg.optim = nb_optim_defaults(rules[i].kind);
        cfg.optim.lr = rules[i].lr;
        cfg.batch_size = 100;
        cfg.num_epochs = o.quick ? 1 : 5;
        exp_run r = exp_train(&d, net, cfg);
        printf("%-12s  %6.0e  %10.4f  %15.4f  %12.4f\n", nb_optim_kind_name(rules[i].kind), rules[i].lr,
               exp_final_loss(&r, 10), r.train_acc[r.n_acc - 1], r.best_val_acc);
        for (int64_t k = 0; k < r.n_loss; k++) fprintf(loss, "%d,%lld,%.6f\n", i, (long long)k + 1, r.loss[k]);
        for (int64_t e = 0; e < r.n_acc; e++)
            fprintf(acc, "%d,%lld,%.4f,%.4f\n", i, (long long)e, r.train_acc[e], r.val_acc[e]);
        exp_run_free(&r);
    }
    fclose(loss);
    fclose(acc);
    exp_plot(&o, "optimizers.png",
             "set multiplot layout 1,3 title 'Update rules on a six-layer net (4000 Fashion-MNIST samples)'\n"
             "names = 'sgd sgd_momentum rmsprop adam'\nset key top right\n"
             "set xlabel 'iteration'\nset ylabel 'training loss'\n"
             "plot for [i=0:3] 'optimizers_loss.csv' using ($1==i ? $2 : 1/0):3 with lines title word(names, i+1)\n"
             "set xlabel 'epoch'\nset ylabel 'training accuracy'\nset key bottom right\n"
             "plot for [i=0:3] 'optimizers_acc.csv' using ($1==i ? $2 : 1/0):3 with linespoints lw 2 title word(names, i+1)\n"
             "set ylabel 'validation accuracy'\n"
             "plot for [i=0:3] 'optimizers_acc.csv' using ($1==i ? $2 : 1/0):4 with linespoints lw 2 title word(names, i+1)\n"
             "unset multiplot");
    exp_data_free(&d);
    nb_cleanup();
    return 0;
}
