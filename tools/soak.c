/* soak: a long training loop that reports resident memory and speed as it goes, to show that
 * memory stays flat and steps do not slow down (issue 6's long-run check).
 *   soak [--steps N] [--every K]     defaults: 20000 steps, a report every 1000 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <nabla/nabla.h>

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* resident set size in KiB, from /proc/self/statm */
static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#define MAX_PARAMS 64
typedef struct { int n; nb_tensor *params[MAX_PARAMS]; } param_list;

static int collect_param(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    param_list *pl = ctx;
    if (is_buffer) return 0;
    if (pl->n == MAX_PARAMS) return fprintf(stderr, "soak: more than %d parameters\n", MAX_PARAMS), -1;
    pl->params[pl->n++] = t;
    return 0;
}

int main(int argc, char **argv)
{
    long steps = 20000, every = 1000;
    static const struct option options[] = { { "steps", required_argument, 0, 's' },
                                             { "every", required_argument, 0, 'e' }, { 0, 0, 0, 0 } };
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (c == 's') steps = atol(optarg);
        else if (c == 'e') every = atol(optarg);
        else return fprintf(stderr, "usage: soak [--steps N] [--every K]\n"), 2;
    }
    if (steps < 1 || every < 1) return fprintf(stderr, "soak: steps and every must be positive\n"), 2;

    /* a FullyConnectedNet with batchnorm and dropout on a fixed random batch: every kind of op,
     * buffer and generator a training step touches */
    const int64_t hidden[2] = { 128, 64 };
    nb_fc_config cfg = nb_fc_defaults();
    cfg.n_hidden = 2;
    cfg.hidden_dims = hidden;
    cfg.input_dim = 256;
    cfg.norm = NB_NORM_BATCH;
    cfg.keep_prob = 0.8;
    cfg.seed = 1;
    nb_model *model = nb_fully_connected_net(&cfg);
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *x = nb_persist(nb_randn(NB_F32, NB_SHAPE(64, 256), &rng, 1.0));
    nb_tensor *y = nb_persist(nb_arange(NB_I64, 0, 64, 1));
    for (int64_t i = 0; y && i < 64; i++) nb_set(y, i, (double)(i % 10));
    param_list pl = { 0 };
    if (!model || !x || !y || nb_module_visit(model->net, collect_param, &pl) != 0)
        return fprintf(stderr, "soak: %s\n", nb_last_error()), 1;
    nb_optimizer *opt = nb_optimizer_new(nb_optim_defaults(NB_ADAM), pl.n, pl.params, NULL);
    nb_scope *scope = nb_scope_new();
    if (!opt || !scope) return fprintf(stderr, "soak: %s\n", nb_last_error()), 1;

    printf("%8s %10s %12s %10s\n", "step", "rss KiB", "ms per step", "loss");
    double t0 = seconds();
    for (long step = 1; step <= steps; step++) {
        nb_scope_push(scope);
        nb_tensor *loss = nb_model_loss(model, x, y);
        double value = loss ? nb_item(loss) : 0;
        int rc = loss ? nb_optimizer_step(opt) : -1;
        nb_scope_pop();
        nb_scope_reset(scope);
        if (rc) return fprintf(stderr, "soak: step %ld: %s\n", step, nb_last_error()), 1;
        if (step % every == 0) {
            double t = seconds();
            printf("%8ld %10ld %12.3f %10.4f\n", step, rss_kib(), 1e3 * (t - t0) / (double)every, value);
            fflush(stdout);
            t0 = t;
        }
    }
    nb_optimizer_free(opt);
    nb_scope_free(scope);
    nb_model_free(model);
    nb_free(x);
    nb_free(y);
    nb_cleanup();
    return 0;
}
