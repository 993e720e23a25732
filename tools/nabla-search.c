/* nabla-search: random hyperparameter search (cs231n assignment 2's "tune your hyperparameters").
 *
 * N trials of short Solver runs of a FullyConnectedNet on a subset of the training data. Trial k
 * draws its configuration from a generator seeded by (--seed, k): learning rate, L2 strength and
 * weight scale log-uniform, hidden sizes, batch size, dropout keep probability, normalisation and optimizer from
 * lists; it trains with its own seed. Each trial runs in a child process of its own (--jobs of them
 * at once, each with --threads threads), so a trial's result does not depend on --jobs. As trials
 * finish a progress line is printed; at the end (or on Ctrl-C) the table sorted by validation
 * accuracy, and the best configuration as a nabla-train command line. --json writes every trial,
 * --csv the table, --plot a scatter of lr x reg coloured by validation accuracy (gnuplot). */
#include "cli.h"

#include <nabla/nabla.h>

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "nabla-search"
#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define MAX_HIDDEN 3

/* the choices a trial draws from */
static const int64_t hidden_choices[][MAX_HIDDEN + 1] = { { 1, 100 }, { 1, 200 }, { 2, 100, 100 }, { 2, 256, 128 },
                                                          { 3, 256, 128, 64 } };
static const int64_t batch_choices[] = { 32, 64, 128 };
static const double keep_choices[] = { 1.0, 0.9, 0.75, 0.5 };
static const nb_norm_kind norm_choices[] = { NB_NORM_NONE, NB_NORM_BATCH, NB_NORM_LAYER };
static const char *const norm_names[] = { "none", "batch", "layer" };
static const nb_optim_kind optim_choices[] = { NB_SGD_MOMENTUM, NB_RMSPROP, NB_ADAM };
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct {
    /* the configuration */
    double lr, reg, weight_scale, keep_prob;
    int64_t hidden[MAX_HIDDEN], batch;
    int n_hidden;
    nb_norm_kind norm;
    nb_optim_kind optim;
    uint64_t seed;
    /* the result */
    int ok;                        /* 1 trained, 0 failed (message in error) */
    double val_acc, train_acc, final_loss, seconds;
    char error[256];
} trial;

typedef struct {
    int trials, epochs, jobs, threads, val;
    int64_t train;
    uint64_t seed;
    double lr_lo, lr_hi, reg_lo, reg_hi;
    const char *data, *data_dir, *json, *csv, *plot;
} options;

static double log_uniform(nb_rng *r, double lo, double hi) { return exp(log(lo) + (log(hi) - log(lo)) * nb_rng_uniform(r)); }
static int pick(nb_rng *r, int n) { return (int)(nb_rng_uniform(r) * n); }

/* trial k's configuration: a function of (seed, k) only */
static trial draw(const options *o, int k)
{
    nb_rng r;
    nb_rng_seed(&r, o->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)k + 1);
    trial t = { .lr = log_uniform(&r, o->lr_lo, o->lr_hi), .reg = log_uniform(&r, o->reg_lo, o->reg_hi),
                .weight_scale = log_uniform(&r, 1e-2, 1e-1) };
    const int64_t *h = hidden_choices[pick(&r, COUNT(hidden_choices))];
    t.n_hidden = (int)h[0];
    memcpy(t.hidden, h + 1, sizeof(int64_t) * (size_t)t.n_hidden);
    t.batch = batch_choices[pick(&r, COUNT(batch_choices))];
    t.keep_prob = keep_choices[pick(&r, COUNT(keep_choices))];
    t.norm = norm_choices[pick(&r, COUNT(norm_choices))];
    t.optim = optim_choices[pick(&r, COUNT(optim_choices))];
    t.seed = nb_rng_next(&r) % 1000000;
    return t;
}

static void hidden_text(const trial *t, char *buf, size_t size)
{
    int len = 0;
    for (int i = 0; i < t->n_hidden && len < (int)size; i++)
        len += snprintf(buf + len, size - (size_t)len, "%s%lld", i ? "," : "", (long long)t->hidden[i]);
}

/* ---- one trial, in a child process ---- */

static void run_trial(const options *o, nb_dataset *ds, trial *t)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = t->n_hidden;
    c.hidden_dims = t->hidden;
    c.input_dim = nb_numel(ds->train_x) / ds->train_x->shape[0];
    c.num_classes = ds->num_classes;
    c.keep_prob = t->keep_prob;
    c.norm = t->norm;
    c.reg = t->reg;
    c.weight_scale = t->weight_scale;
    c.seed = t->seed;
    nb_model *m = nb_fully_connected_net(&c);
    nb_solver_config sc = nb_solver_defaults();
    sc.optim = nb_optim_defaults(t->optim);
    sc.optim.lr = t->lr;
    sc.batch_size = t->batch;
    sc.num_epochs = o->epochs;
    sc.batch_mode = NB_BATCH_SHUFFLE;
    sc.verbose = false;
    sc.seed = t->seed;
    nb_tensor *x = nb_take_rows(ds->train_x, 0, o->train), *y = nb_take_rows(ds->train_y, 0, o->train);
    nb_solver *s = m && x && y ? nb_solver_new(m, x, y, ds->val_x, ds->val_y, &sc) : NULL;
    t->ok = s && nb_solver_train(s) == 0;
    if (t->ok) {
        int64_t nl, nt;
        const double *loss = nb_solver_loss_history(s, &nl), *train = nb_solver_train_acc_history(s, &nt);
        t->final_loss = nl ? loss[nl - 1] : NAN;
        t->train_acc = nt ? train[nt - 1] : NAN;
        t->val_acc = nb_solver_best_val_acc(s);
    } else {
        snprintf(t->error, sizeof t->error, "%s", nb_last_error());
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    t->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    nb_solver_free(s);
    nb_model_free(m);
}

/* ---- the parent: children, results, the table ---- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct { pid_t pid; int fd, k; } child;

/* starts trial k in a child that writes its trial struct to a pipe */
static int start(const options *o, nb_dataset *ds, trial *trials, int k, child *c)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);   /* the parent stops the search; it kills the children */
        close(fds[0]);
        run_trial(o, ds, &trials[k]);
        const char *p = (const char *)&trials[k];
        size_t left = sizeof trials[k];
        while (left > 0) {
            ssize_t w = write(fds[1], p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) _exit(1);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    *c = (child){ .pid = pid, .fd = fds[0], .k = k };
    return 0;
}

/* the result of a finished child into trials[c->k] */
static void collect(child *c, trial *trials)
{
    trial t;
    size_t got = 0;
    while (got < sizeof t) {
        ssize_t r = read(c->fd, (char *)&t + got, sizeof t - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(c->fd);
    int status;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {}
    if (got == sizeof t) trials[c->k] = t;
    else {
        trials[c->k].ok = 0;
        snprintf(trials[c->k].error, sizeof trials[c->k].error, "the trial's process ended without a result (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

static int by_val_acc(const void *a, const void *b)
{
    const trial *x = *(const trial *const *)a, *y = *(const trial *const *)b;
    double vx = x->ok ? x->val_acc : -1, vy = y->ok ? y->val_acc : -1;
    return vx < vy ? 1 : vx > vy ? -1 : 0;
}

static void print_row(int k, const trial *t)
{
    char h[64];
    hidden_text(t, h, sizeof h);
    if (t->ok)
        printf("%5d  %6.4f  %6.4f  %8.4f  %9.2e  %9.2e  %8.2e  %-12s  %5lld  %4.2f  %-5s  %-12s  %6.1f\n", k, t->val_acc,
               t->train_acc, t->final_loss, t->lr, t->reg, t->weight_scale, h, (long long)t->batch, t->keep_prob,
               norm_names[t->norm], nb_optim_kind_name(t->optim), t->seconds);
    else
        printf("%5d  failed: %s\n", k, t->error);
}

/* the finished trials sorted by validation accuracy, and the best one as a nabla-train command */
static void print_table(const options *o, trial *trials, const bool *done, int n_done)
{
    const trial **order = malloc(sizeof *order * (size_t)(n_done ? n_done : 1));
    if (!order) return;
    int n = 0;
    for (int k = 0; k < o->trials; k++)
        if (done[k]) order[n++] = &trials[k];
    qsort(order, (size_t)n, sizeof *order, by_val_acc);
    printf("\n%d trial%s, best validation accuracy first:\n", n, n == 1 ? "" : "s");
    printf("trial  val     train   loss      lr         reg        w-scale   hidden        batch  keep  norm   "
           "optimizer        s\n");
    for (int i = 0; i < n; i++) print_row((int)(order[i] - trials), order[i]);
    if (n > 0 && order[0]->ok) {
        const trial *b = order[0];
        char h[64];
        hidden_text(b, h, sizeof h);
        printf("\nbest (val acc %.4f after %d epoch%s on %lld samples):\n  nabla-train --data %s%s%s --model mlp "
               "--hidden %s --norm %s --keep-prob %g --weight-scale %.3g --reg %.3g --optimizer %s --lr %.3g "
               "--batch-size %lld --batch-mode shuffle --seed %llu\n",
               b->val_acc, o->epochs, o->epochs == 1 ? "" : "s", (long long)o->train, o->data,
               o->data_dir ? " --data-dir " : "", o->data_dir ? o->data_dir : "", h, norm_names[b->norm], b->keep_prob,
               b->weight_scale, b->reg, nb_optim_kind_name(b->optim), b->lr, (long long)b->batch,
               (unsigned long long)b->seed);
    }
    free(order);
}

/* ---- files: every trial as JSON and CSV, the lr x reg scatter as PNG ---- */

static int write_json(const options *o, const trial *trials, const bool *done)
{
    json_t *all = json_array();
    for (int k = 0; k < o->trials; k++) {
        if (!done[k]) continue;
        const trial *t = &trials[k];
        json_t *hidden = json_array();
        for (int i = 0; i < t->n_hidden; i++) json_array_append_new(hidden, json_integer(t->hidden[i]));
        json_t *j = json_pack("{s:i, s:f, s:f, s:f, s:o, s:I, s:f, s:s, s:s, s:I, s:b}", "trial", k, "lr", t->lr, "reg",
                              t->reg, "weight_scale", t->weight_scale, "hidden", hidden, "batch_size", (json_int_t)t->batch,
                              "keep_prob", t->keep_prob, "norm", norm_names[t->norm], "optimizer",
                              nb_optim_kind_name(t->optim), "seed", (json_int_t)t->seed, "ok", t->ok);
        if (t->ok) {
            json_object_set_new(j, "val_acc", json_real(t->val_acc));
            json_object_set_new(j, "train_acc", json_real(t->train_acc));
            json_object_set_new(j, "final_loss", json_real(t->final_loss));
            json_object_set_new(j, "seconds", json_real(t->seconds));
        } else {
            json_object_set_new(j, "error", json_string(t->error));
        }
        json_array_append_new(all, j);
    }
    json_t *root = json_pack("{s:s, s:i, s:i, s:I, s:I, s:o}", "data", o->data, "epochs", o->epochs, "trials", o->trials,
                             "train_samples", (json_int_t)o->train, "seed", (json_int_t)o->seed, "results", all);
    int rc = json_dump_file(root, o->json, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (rc) fprintf(stderr, PROG ": cannot write %s\n", o->json);
    return rc ? -1 : 0;
}

static int write_csv(const char *path, const options *o, const trial *trials, const bool *done)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "trial,val_acc,train_acc,final_loss,lr,reg,weight_scale,hidden,batch_size,keep_prob,norm,optimizer\n");
    for (int k = 0; k < o->trials; k++) {
        const trial *t = &trials[k];
        if (!done[k] || !t->ok) continue;
        char h[64];
        hidden_text(t, h, sizeof h);
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6g,%.6g,%.6g,\"%s\",%lld,%g,%s,%s\n", k, t->val_acc, t->train_acc, t->final_loss,
                t->lr, t->reg, t->weight_scale, h, (long long)t->batch, t->keep_prob, norm_names[t->norm],
                nb_optim_kind_name(t->optim));
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* the course's scatter: log lr against log reg, each trial coloured by its validation accuracy */
static int write_plot(const options *o, const trial *trials, const bool *done)
{
    FILE *gp = popen("gnuplot 2>&1", "w");
    if (!gp) {
        fprintf(stderr, PROG ": --plot needs gnuplot (apt-get install gnuplot-nox)\n");
        return -1;
    }
    fprintf(gp, "set terminal pngcairo size 800,600\nset output '%s'\nset logscale xy\nset format xy '%%.0e'\nset xlabel 'learning rate'\n"
                "set ylabel 'L2 strength'\nset cblabel 'validation accuracy'\nset palette rgb 33,13,10\n"
                "set title 'nabla-search: %d trials, %d epoch%s on %lld samples of %s'\n"
                "plot '-' using 1:2:3 with points pt 7 ps 2 palette notitle\n",
            o->plot, o->trials, o->epochs, o->epochs == 1 ? "" : "s", (long long)o->train, o->data);
    for (int k = 0; k < o->trials; k++)
        if (done[k] && trials[k].ok) fprintf(gp, "%.6g %.6g %.6f\n", trials[k].lr, trials[k].reg, trials[k].val_acc);
    fprintf(gp, "e\n");
    return pclose(gp) == 0 ? 0 : -1;
}

/* ---- the command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [OPTIONS]\n"
            "Random search over short training runs of a FullyConnectedNet (cs231n's hyperparameter tuning).\n"
            "Each trial draws lr and reg (log-uniform in the ranges below), weight scale (log-uniform in\n"
            "[1e-2, 1e-1]), hidden sizes (100 | 200 | 100,100 | 256,128 | 256,128,64), batch size (32, 64,\n"
            "128), dropout keep probability (1, 0.9, 0.75, 0.5), norm (none, batch, layer) and optimizer\n"
            "(sgd_momentum, rmsprop, adam), from a generator seeded by --seed and the trial's number.\n"
            "\n"
            "  --trials N          trials (default 20)\n"
            "  --epochs N          epochs per trial (default 2)\n"
            "  --train N           training samples per trial: the first N (default 10000)\n"
            "  --val N             validation samples: the last N of the training set (default 5000)\n"
            "  --lr LO,HI          learning-rate range (default 1e-4,1e-2)\n"
            "  --reg LO,HI         L2 strength range (default 1e-6,1e-2)\n"
            "  --data NAME         fashion-mnist | mnist | cifar10 (default fashion-mnist)\n"
            "  --data-dir PATH     its folder (default for fashion-mnist: " DEFAULT_FASHION_DIR ")\n"
            "  --seed N            (default 0)\n"
            "  --jobs N            trials at once, each in its own process (default 1); results do not depend on it\n"
            "  --threads N         threads per trial (default 1)\n"
            "  --json FILE         every trial: configuration and results\n"
            "  --csv FILE          the same as a table\n"
            "  --plot FILE         PNG: lr x reg coloured by validation accuracy (needs gnuplot)\n"
            "  --quick             a smoke test: 4 trials of 1 epoch on 500 samples, 500 for validation\n"
            "  -h, --help          this text\n"
            "Ctrl-C stops the search and prints the table so far (exit status 130).\n");
}

#define bad_usage(...) tool_bad_usage(PROG, __VA_ARGS__)

static int64_t parse_count(const char *opt, const char *s, int64_t lo)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > 100000000) bad_usage("%s: expected an integer >= %lld, got '%s'", opt, (long long)lo, s);
    return v;
}

static void parse_range(const char *opt, const char *s, double *lo, double *hi)
{
    char *end;
    *lo = strtod(s, &end);
    if (*end == ',') *hi = strtod(end + 1, &end);
    if (*end || !(*lo > 0) || !(*hi >= *lo) || !isfinite(*hi)) bad_usage("%s: expected LO,HI with 0 < LO <= HI, got '%s'", opt, s);
}

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){ .trials = 20, .epochs = 2, .jobs = 1, .threads = 1, .val = 5000, .train = 10000, .lr_lo = 1e-4,
                    .lr_hi = 1e-2, .reg_lo = 1e-6, .reg_hi = 1e-2, .data = "fashion-mnist" };
    enum { O_TRIALS = 256, O_EPOCHS, O_TRAIN, O_VAL, O_LR, O_REG, O_DATA, O_DATA_DIR, O_SEED, O_JOBS, O_THREADS, O_JSON,
           O_CSV, O_PLOT, O_QUICK };
    static const struct option opts[] = {
        { "trials", required_argument, NULL, O_TRIALS }, { "epochs", required_argument, NULL, O_EPOCHS },
        { "train", required_argument, NULL, O_TRAIN },   { "val", required_argument, NULL, O_VAL },
        { "lr", required_argument, NULL, O_LR },         { "reg", required_argument, NULL, O_REG },
        { "data", required_argument, NULL, O_DATA },     { "data-dir", required_argument, NULL, O_DATA_DIR },
        { "seed", required_argument, NULL, O_SEED },     { "jobs", required_argument, NULL, O_JOBS },
        { "threads", required_argument, NULL, O_THREADS }, { "json", required_argument, NULL, O_JSON },
        { "csv", required_argument, NULL, O_CSV },       { "plot", required_argument, NULL, O_PLOT },
        { "quick", no_argument, NULL, O_QUICK },         { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_TRIALS: o->trials = (int)parse_count("--trials", optarg, 1); break;
        case O_EPOCHS: o->epochs = (int)parse_count("--epochs", optarg, 1); break;
        case O_TRAIN: o->train = parse_count("--train", optarg, 1); break;
        case O_VAL: o->val = (int)parse_count("--val", optarg, 1); break;
        case O_LR: parse_range("--lr", optarg, &o->lr_lo, &o->lr_hi); break;
        case O_REG: parse_range("--reg", optarg, &o->reg_lo, &o->reg_hi); break;
        case O_DATA:
            if (strcmp(optarg, "fashion-mnist") && strcmp(optarg, "mnist") && strcmp(optarg, "cifar10"))
                bad_usage("--data: expected fashion-mnist, mnist or cifar10, got '%s'", optarg);
            o->data = optarg;
            break;
        case O_DATA_DIR: o->data_dir = optarg; break;
        case O_SEED: o->seed = (uint64_t)parse_count("--seed", optarg, 0); break;
        case O_JOBS: o->jobs = (int)parse_count("--jobs", optarg, 1); break;
        case O_THREADS: o->threads = (int)parse_count("--threads", optarg, 1); break;
        case O_JSON: o->json = optarg; break;
        case O_CSV: o->csv = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_QUICK:
            o->trials = 4, o->epochs = 1, o->train = 500, o->val = 500;
            break;
        case 'h': usage(stdout); exit(0);
        default: bad_usage("unknown option");
        }
    }
    if (optind < argc) bad_usage("unexpected argument '%s'", argv[optind]);
    if (o->plot && !tool_on_path("gnuplot")) bad_usage("--plot needs gnuplot (apt-get install gnuplot-nox)");
    if (!o->data_dir && strcmp(o->data, "fashion-mnist")) bad_usage("--data %s needs --data-dir", o->data);
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);
    tool_set_threads(o.threads, 1, argv);
    const char *dir = o.data_dir ? o.data_dir : DEFAULT_FASHION_DIR;
    nb_dataset ds;
    int rc = strcmp(o.data, "cifar10") ? nb_dataset_load_mnist(&ds, dir, NB_F32, o.val)
                                       : nb_dataset_load_cifar10(&ds, dir, NB_F32, o.val);
    if (rc) {
        fprintf(stderr, PROG ": %s\n", nb_last_error());
        return 1;
    }
    if (o.train > ds.train_x->shape[0]) o.train = ds.train_x->shape[0];
    printf("search: %d trials of %d epoch%s on %lld %s training samples (validation: %lld), %d at once, %d thread%s each\n",
           o.trials, o.epochs, o.epochs == 1 ? "" : "s", (long long)o.train, o.data, (long long)ds.val_x->shape[0],
           o.jobs, o.threads, o.threads == 1 ? "" : "s");
    trial *trials = calloc((size_t)o.trials, sizeof *trials);
    bool *done = calloc((size_t)o.trials, sizeof *done);
    child *running = calloc((size_t)o.jobs, sizeof *running);
    if (!trials || !done || !running) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (int k = 0; k < o.trials; k++) trials[k] = draw(&o, k);
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    int next = 0, n_running = 0, n_done = 0, best = -1;
    while ((next < o.trials && !interrupted) || n_running > 0) {
        while (n_running < o.jobs && next < o.trials && !interrupted) {
            if (start(&o, &ds, trials, next, &running[n_running])) {
                fprintf(stderr, PROG ": cannot start trial %d: %s\n", next, strerror(errno));
                interrupted = 1;
                break;
            }
            n_running++, next++;
        }
        if (n_running == 0) break;
        if (interrupted) {   /* Ctrl-C: the running trials are abandoned */
            for (int i = 0; i < n_running; i++) {
                kill(running[i].pid, SIGKILL);
                close(running[i].fd);
                waitpid(running[i].pid, NULL, 0);
            }
            break;
        }
        /* the first child whose pipe has its result (or closed) */
        fd_set set;
        FD_ZERO(&set);
        int top = 0;
        for (int i = 0; i < n_running; i++) {
            FD_SET(running[i].fd, &set);
            if (running[i].fd > top) top = running[i].fd;
        }
        if (select(top + 1, &set, NULL, NULL, NULL) < 0) continue;   /* EINTR: Ctrl-C, handled above */
        for (int i = 0; i < n_running; i++)
            if (FD_ISSET(running[i].fd, &set)) {
                collect(&running[i], trials);
                const int k = running[i].k;
                done[k] = true;
                n_done++;
                running[i--] = running[--n_running];
                const trial *t = &trials[k];
                if (t->ok && (best < 0 || t->val_acc > trials[best].val_acc)) best = k;
                if (t->ok)
                    printf("[%d/%d] trial %d: val acc %.4f, train acc %.4f (lr %.2e, reg %.2e, %s, %.1f s); best so far: "
                           "trial %d, %.4f\n",
                           n_done, o.trials, k, t->val_acc, t->train_acc, t->lr, t->reg, nb_optim_kind_name(t->optim),
                           t->seconds, best, trials[best].val_acc);
                else
                    printf("[%d/%d] trial %d failed: %s\n", n_done, o.trials, k, t->error);
                fflush(stdout);
            }
    }
    print_table(&o, trials, done, n_done);
    rc = 0;
    if (o.json && write_json(&o, trials, done)) rc = 1;
    if (o.csv && write_csv(o.csv, &o, trials, done)) rc = 1;
    if (o.plot && write_plot(&o, trials, done)) rc = 1;
    if (o.json || o.csv || o.plot)
        printf("wrote%s%s%s%s%s%s\n", o.json ? " " : "", o.json ? o.json : "", o.csv ? " " : "", o.csv ? o.csv : "",
               o.plot ? " " : "", o.plot ? o.plot : "");
    free(trials);
    free(done);
    free(running);
    nb_dataset_free(&ds);
    nb_cleanup();
    return interrupted ? 130 : rc;
}
