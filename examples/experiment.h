/* What the course's experiments (examples/exp_*.c) share: Fashion-MNIST subsets, one Solver run of a
 * FullyConnectedNet that returns its histories, the command line (--quick, --out DIR, --data-dir) and
 * gnuplot. Each experiment prints its table, writes the numbers as CSV and, when gnuplot is there, a
 * PNG. Header-only: the examples are single files built from this and the library. */
#ifndef NABLA_EXAMPLES_EXPERIMENT_H
#define NABLA_EXAMPLES_EXPERIMENT_H

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nabla/nabla.h>

typedef struct {
    bool quick;             /* a smoke test on a small subset (the test suite runs it) */
    const char *out;        /* folder of the CSV and PNG files */
    const char *data_dir;
} exp_options;

static inline exp_options exp_parse(int argc, char **argv, const char *about)
{
    exp_options o = { .out = ".", .data_dir = "/usr/share/datasets/fashion-mnist" };
    static const struct option opts[] = { { "quick", no_argument, NULL, 'q' }, { "out", required_argument, NULL, 'o' },
                                          { "data-dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'q') o.quick = true;
        else if (c == 'o') o.out = optarg;
        else if (c == 'd') o.data_dir = optarg;
        else {
            printf("%s\nUsage: %s [--quick] [--out DIR] [--data-dir DIR]\n", about, argv[0]);
            exit(c == 'h' ? 0 : 2);
        }
    }
    mkdir(o.out, 0755);
    return o;
}

/* persistent copies of the first n_train training samples and n_val validation samples, standardised */
typedef struct { nb_tensor *x, *y, *vx, *vy; } exp_data;

static inline exp_data exp_load(const exp_options *o, int64_t n_train, int64_t n_val)
{
    nb_dataset ds;
    /* standardised per channel, as the course's data is mean-subtracted: with pixels in [0,1] its
     * weight scales and learning rates train far more slowly */
    if (nb_dataset_load_mnist(&ds, o->data_dir, NB_F32, 5000) || nb_dataset_standardize(&ds)) {
        fprintf(stderr, "%s\nFashion-MNIST: apt-get install dataset-fashion-mnist, or --data-dir DIR\n", nb_last_error());
        exit(1);
    }
    exp_data d = { nb_persist(nb_take_rows(ds.train_x, 0, n_train)), nb_persist(nb_take_rows(ds.train_y, 0, n_train)),
                   nb_persist(nb_take_rows(ds.val_x, 0, n_val)), nb_persist(nb_take_rows(ds.val_y, 0, n_val)) };
    nb_dataset_free(&ds);
    nb_scope_reset(NULL);
    return d;
}

static inline void exp_data_free(exp_data *d)
{
    nb_free(d->x);
    nb_free(d->y);
    nb_free(d->vx);
    nb_free(d->vy);
}

/* one training run's histories: loss per iteration, accuracies per check (iteration 1, each epoch) */
typedef struct {
    double *loss, *train_acc, *val_acc;
    int64_t n_loss, n_acc;
    double best_val_acc;
} exp_run;

/* a FullyConnectedNet for 28x28 images trained by the Solver (num_train_samples 0: train accuracy on
 * all of d->x); exits on error */
static inline exp_run exp_train(const exp_data *d, nb_fc_config net, nb_solver_config cfg)
{
    net.input_dim = 28 * 28;
    net.num_classes = 10;
    cfg.verbose = false;
    cfg.num_train_samples = 0;
    nb_model *m = nb_fully_connected_net(&net);
    nb_solver *s = m ? nb_solver_new(m, d->x, d->y, d->vx, d->vy, &cfg) : NULL;
    if (!s || nb_solver_train(s)) {
        fprintf(stderr, "training failed: %s\n", nb_last_error());
        exit(1);
    }
    exp_run r = { .best_val_acc = nb_solver_best_val_acc(s) };
    const double *loss = nb_solver_loss_history(s, &r.n_loss), *tr = nb_solver_train_acc_history(s, &r.n_acc),
                 *va = nb_solver_val_acc_history(s, &r.n_acc);
    r.loss = malloc(sizeof(double) * (size_t)r.n_loss);
    r.train_acc = malloc(sizeof(double) * (size_t)r.n_acc);
    r.val_acc = malloc(sizeof(double) * (size_t)r.n_acc);
    memcpy(r.loss, loss, sizeof(double) * (size_t)r.n_loss);
    memcpy(r.train_acc, tr, sizeof(double) * (size_t)r.n_acc);
    memcpy(r.val_acc, va, sizeof(double) * (size_t)r.n_acc);
    nb_solver_free(s);
    nb_model_free(m);
    return r;
}

static inline void exp_run_free(exp_run *r)
{
    free(r->loss);
    free(r->train_acc);
    free(r->val_acc);
}

/* the mean of the last `last` losses: a final training loss that does not hang on one minibatch */
static inline double exp_final_loss(const exp_run *r, int64_t last)
{
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = r->n_loss - last > 0 ? r->n_loss - last : 0; i < r->n_loss; i++, n++) sum += r->loss[i];
    return n ? sum / (double)n : NAN;
}

static inline FILE *exp_csv(const exp_options *o, const char *name, const char *header)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->out, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "%s\n", header);
    return f;
}

/* runs the gnuplot script (which reads the CSV files in o->out) to write o->out/name, when gnuplot is
 * installed; says where the files are either way */
static inline void exp_plot(const exp_options *o, const char *name, const char *script)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("numbers in %s/ (CSV); no gnuplot for %s (apt-get install gnuplot-nox)\n", o->out, name);
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot", o->out);
    FILE *gp = popen(cmd, "w");
    if (!gp) return;
    fprintf(gp, "set terminal pngcairo size 1200,500 noenhanced\nset output '%s'\nset datafile separator ','\n%s\n", name,
            script);
    if (pclose(gp) == 0) printf("wrote %s/%s and its CSV\n", o->out, name);
    else printf("gnuplot failed for %s; the numbers are in %s/ (CSV)\n", name, o->out);
}

/* Normalisation x batch size: six-layer nets (five hidden layers of 100), Adam, each run's
 * normalisation and batch size from runs[]; prints best validation and final training accuracy,
 * writes <name>.csv (per epoch) and <name>.png (training and validation accuracy curves). */
typedef struct { nb_norm_kind norm; int64_t batch; } exp_norm_run;

static inline void exp_norm_sweep(const exp_options *o, const exp_data *d, const exp_norm_run *runs, int n_runs,
                                  const char *name, const char *title)
{
    static const char *const norm_names[] = { "none", "batch", "layer" },
                             *const labels[] = { "no norm", "batchnorm", "layer norm" };
    char file[256], script[4096];
    snprintf(file, sizeof file, "%s.csv", name);
    FILE *curves = exp_csv(o, file, "run,norm,batch,epoch,train_acc,val_acc");
    printf("norm   batch  best val acc  final train acc\n");
    int len = snprintf(script, sizeof script, "set multiplot layout 1,2 title '%s'\nset xlabel 'epoch'\nset key bottom right\n", title);
    for (int panel = 0; panel < 2; panel++) {
        len += snprintf(script + len, sizeof script - (size_t)len, "set ylabel '%s accuracy'\nplot ", panel ? "validation" : "training");
        for (int i = 0; i < n_runs; i++)
            len += snprintf(script + len, sizeof script - (size_t)len,
                            "%s'%s' using ($1==%d ? $4 : 1/0):%d with lines lw 2 title '%s, batch %lld'", i ? ", " : "", file,
                            i, panel ? 6 : 5, labels[runs[i].norm], (long long)runs[i].batch);
        len += snprintf(script + len, sizeof script - (size_t)len, "\n");
    }
    snprintf(script + len, sizeof script - (size_t)len, "unset multiplot");
    for (int i = 0; i < n_runs; i++) {
        nb_fc_config net = nb_fc_defaults();
        net.n_hidden = 5;
        net.hidden_dims = (const int64_t[]){ 100, 100, 100, 100, 100 };
        net.norm = runs[i].norm;
        net.weight_scale = 5e-2;
        nb_solver_config cfg = nb_solver_defaults();
        cfg.optim = nb_optim_defaults(NB_ADAM);
        cfg.optim.lr = 1e-3;
        cfg.batch_size = runs[i].batch;
        cfg.batch_mode = NB_BATCH_SHUFFLE;
        cfg.num_epochs = o->quick ? 2 : 10;
        exp_run r = exp_train(d, net, cfg);
        printf("%-5s  %5lld  %12.4f  %15.4f\n", norm_names[runs[i].norm], (long long)runs[i].batch, r.best_val_acc,
               r.train_acc[r.n_acc - 1]);
        for (int64_t e = 0; e < r.n_acc; e++)
            fprintf(curves, "%d,%s,%lld,%lld,%.4f,%.4f\n", i, norm_names[runs[i].norm], (long long)runs[i].batch,
                    (long long)e, r.train_acc[e], r.val_acc[e]);
        exp_run_free(&r);
    }
    fclose(curves);
    snprintf(file, sizeof file, "%s.png", name);
    exp_plot(o, file, script);
}

#endif
