/* cs231n's dropout experiment: a two-layer net (hidden 500) on 500 samples, so that it overfits,
 * trained for 25 epochs with dropout keep probabilities 1 (none), 0.75, 0.5 and 0.25. Dropout narrows
 * the gap between training and validation accuracy. Table: final training accuracy, best
 * validation accuracy and their gap per keep probability; plot: the accuracies per epoch. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "Dropout against no dropout: the train/validation gap over keep probabilities.");
    exp_data d = exp_load(&o, o.quick ? 100 : 500, o.quick ? 200 : 1000);
    static const double keep[] = { 1.0, 0.75, 0.5, 0.25 };
    FILE *f = exp_csv(&o, "dropout.csv", "keep,epoch,train_acc,val_acc");
    printf("keep prob  final train acc  best val acc  gap\n");
    for (int i = 0; i < 4; i++) {
        nb_fc_config net = nb_fc_defaults();
        net.n_hidden = 1;
        net.hidden_dims = (const int64_t[]){ 500 };
        net.keep_prob = keep[i];
        net.weight_scale = 5e-2;
        nb_solver_config cfg = nb_solver_defaults();
        cfg.optim = nb_optim_defaults(NB_ADAM);
        cfg.optim.lr = 5e-4;
        cfg.batch_size = 100;
        cfg.num_epochs = o.quick ? 2 : 25;
        exp_run r = exp_train(&d, net, cfg);
        const double train = r.train_acc[r.n_acc - 1];
        printf("%9.2f  %15.4f  %12.4f  %.4f\n", keep[i], train, r.best_val_acc, train - r.best_val_acc);
        for (int64_t e = 0; e < r.n_acc; e++) fprintf(f, "%g,%lld,%.4f,%.4f\n", keep[i], (long long)e, r.train_acc[e], r.val_acc[e]);
        exp_run_free(&r);
    }
    fclose(f);
    exp_plot(&o, "dropout.png",
             "set multiplot layout 1,2 title 'Dropout on a two-layer net (500 Fashion-MNIST samples)'\n"
             "keeps = '1 0.75 0.5 0.25'\nset xlabel 'epoch'\nset key bottom right\n"
             "set ylabel 'training accuracy'\nplot for [k in keeps] 'dropout.csv' using ($1==k+0 ? $2 : 1/0):3 with lines lw 2 title 'keep '.k\n"
             "set ylabel 'validation accuracy'\nplot for [k in keeps] 'dropout.csv' using ($1==k+0 ? $2 : 1/0):4 with lines lw 2 title 'keep '.k\n"
             "unset multiplot");
    exp_data_free(&d);
    nb_cleanup();
    return 0;
}
