/* cs231n's batch size and batchnorm experiment: six-layer nets (five hidden layers of 100) on 1000
 * samples with batchnorm at batch sizes 5, 10 and 50, and without normalisation at batch 10.
 * Batchnorm's statistics come from the batch: the smaller the batch, the noisier they are. Table:
 * best validation accuracy and final training accuracy per run; plot: accuracy per epoch. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "Batch size and batchnorm: batch 5, 10, 50, and no normalisation.");
    exp_data d = exp_load(&o, o.quick ? 200 : 1000, o.quick ? 200 : 1000);
    static const exp_norm_run runs[] = { { NB_NORM_NONE, 10 }, { NB_NORM_BATCH, 5 }, { NB_NORM_BATCH, 10 }, { NB_NORM_BATCH, 50 } };
    exp_norm_sweep(&o, &d, runs, 4, "batch_size", "Batchnorm and batch size (six-layer nets, 1000 Fashion-MNIST samples)");
    exp_data_free(&d);
    nb_cleanup();
    return 0;
}
