/* The course's inline question on layer norm: the same six-layer nets as exp_batch_size with batch
 * and layer norm at batch sizes 5, 10 and 50. Layer norm normalises each sample over its features,
 * so its result does not depend on the batch; batchnorm's does. Table and plot as exp_batch_size. */
#include "experiment.h"

int main(int argc, char **argv)
{
    exp_options o = exp_parse(argc, argv, "Layer norm against batchnorm over batch sizes 5, 10, 50.");
    exp_data d = exp_load(&o, o.quick ? 200 : 1000, o.quick ? 200 : 1000);
    static const exp_norm_run runs[] = { { NB_NORM_BATCH, 5 }, { NB_NORM_BATCH, 10 }, { NB_NORM_BATCH, 50 },
                                         { NB_NORM_LAYER, 5 }, { NB_NORM_LAYER, 10 }, { NB_NORM_LAYER, 50 } };
    exp_norm_sweep(&o, &d, runs, 6, "layer_norm", "Layer norm and batchnorm over batch sizes (six-layer nets, 1000 samples)");
    exp_data_free(&d);
    nb_cleanup();
    return 0;
}
