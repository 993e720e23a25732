/* nabla-train: trains one of cs231n's classifiers (model.h) on Fashion-MNIST, MNIST or CIFAR-10 with
 * the Solver (solver.h), shows progress, optionally writes checkpoints, the training history and a
 * plot of the curves (through gnuplot, when installed), and reports the accuracy on the test set.
 * With no arguments it runs the recipe below (the DEFAULT_* constants): a three-layer convnet on
 * Fashion-MNIST. The last line on stdout is always "test accuracy: 0.XXXX" when training succeeds.
 * Exit status: 0 done, 1 an error (library messages are printed as "nabla-train: <message>"),
 * 2 bad usage, 130 interrupted (Ctrl-C stops after the current iteration, then tests). */
#include <nabla/nabla.h>

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the default recipe: what `nabla-train` (and tools/run.sh) runs without arguments ---- */
#define DEFAULT_MODEL "cnn"                 /* mlp | cnn | resnet */
#define DEFAULT_DATA "fashion-mnist"        /* fashion-mnist | mnist | cifar10 */
#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"   /* Debian's dataset-fashion-mnist */
#define DEFAULT_EPOCHS 3
#define DEFAULT_BATCH 64
#define DEFAULT_OPTIMIZER "adam"            /* sgd | sgd_momentum | nesterov | rmsprop | adam | adamw */
#define DEFAULT_LR 1e-3                     /* for DEFAULT_OPTIMIZER; other optimizers: their cs231n default */
#define DEFAULT_LR_DECAY 0.9                /* lr *= this after each epoch */
#define DEFAULT_BATCH_MODE "shuffle"        /* shuffle | sample */
#define DEFAULT_VAL 5000                    /* validation split: the last N training samples */
#define DEFAULT_SEED 1
#define DEFAULT_REG 0.0                     /* L2 strength */
#define DEFAULT_WEIGHT_SCALE 0.0            /* std of the initial weights; 0 = Kaiming (He): N(0, 2/fan_in) */
#define DEFAULT_CLIP_NORM 0.0               /* 0 = no clipping */
#define DEFAULT_NUM_TRAIN_SAMPLES 1000      /* training accuracy is measured on this many samples */
#define DEFAULT_PRINT_EVERY 100             /* progress lines when stdout is not a terminal */
#define DEFAULT_THREADS 0                   /* 0 = $BLIS_NUM_THREADS if set, else every online CPU */
#define DEFAULT_TEST_BATCH 500              /* batch size of the test-set evaluation */
/* cnn (nb_three_layer_convnet) */
#define DEFAULT_FILTERS 32
#define DEFAULT_FILTER_SIZE 5
#define DEFAULT_HIDDEN 100                  /* the cnn's hidden affine layer (--hidden-dim) */
/* mlp (nb_fully_connected_net) */
#define DEFAULT_MLP_HIDDEN "256,256"
#define DEFAULT_MLP_EPOCHS 10              /* --model mlp: epochs unless given (an epoch takes seconds) */
#define DEFAULT_NORM "none"                 /* none | batch | layer */
#define DEFAULT_KEEP_PROB 1.0               /* 1 = no dropout */
/* resnet (nb_resnet) */
#define DEFAULT_WIDTHS "16,32,64"
#define DEFAULT_BLOCKS 2
#define DEFAULT_OVERFIT_EPOCHS 30           /* --overfit: epochs and lr decay unless given, so that */
#define DEFAULT_OVERFIT_LR_DECAY 1.0        /*   train accuracy reaches 1.0 on the small subset */
#define DEFAULT_STANDARDIZE false           /* per-channel standardisation of the inputs */
#define DEFAULT_FUSED_BN true               /* batchnorm through the one-kernel nb_batchnorm_fused */
#define DEFAULT_FUSED_CONV true             /* convolution through the one-kernel nb_conv2d_fused */

#define PROG "nabla-train"
#define MAX_HIDDEN 32
#define EMA_BETA 0.98                       /* running loss: exponential moving average */

/* ---- options ---- */

typedef enum { MODEL_MLP, MODEL_CNN, MODEL_RESNET } model_kind;
typedef enum { DATA_FASHION, DATA_MNIST, DATA_CIFAR } data_kind;

typedef struct {
    model_kind model;
    int n_hidden;
    int64_t hidden[MAX_HIDDEN];
    int64_t filters, hidden_dim;
    int filter_size;
    int64_t widths[3];
    int blocks;
    nb_norm_kind norm;
    double keep_prob, reg, weight_scale;
    bool fused_bn, fused_conv;

    data_kind data;
    const char *data_dir;
    int64_t val;
    bool standardize, mean_image, augment;

    int64_t epochs, batch_size;
    nb_optim_kind optimizer;
    double lr, lr_decay, weight_decay, lr_min;
    bool lr_given, weight_decay_given;
    nb_lr_schedule lr_schedule;
    int64_t lr_step, patience, warmup;
    const char *save_model, *load_model;
    bool eval;                     /* --eval: the loaded model's test accuracy and confusion matrix */
    uint64_t seed;
    int threads;
    nb_batch_mode batch_mode;
    double clip_norm;
    int64_t num_train_samples, overfit, print_every;
    const char *checkpoint, *resume, *history, *plot;
    bool quiet;
    bool detect_anomaly;
    int progress;                  /* PROGRESS_AUTO, _BAR, _LINES or _NONE */
} options;

enum { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_LINES, PROGRESS_NONE };
static const char *progress_names[] = { "auto", "bar", "lines", "none" };

/* which model-specific options were given, to reject those that do not apply */
enum { GIVEN_HIDDEN = 1, GIVEN_FILTERS = 2, GIVEN_FILTER_SIZE = 4, GIVEN_HIDDEN_DIM = 8, GIVEN_WIDTHS = 16,
       GIVEN_BLOCKS = 32, GIVEN_NORM = 64, GIVEN_KEEP_PROB = 128, GIVEN_WEIGHT_SCALE = 256, GIVEN_FUSED_BN = 512, GIVEN_FUSED_CONV = 1024,
       GIVEN_EPOCHS = 2048, GIVEN_LR_DECAY = 4096, GIVEN_LR_STEP = 8192, GIVEN_PATIENCE = 16384, GIVEN_LR_MIN = 32768 };

static const char *model_names[] = { "mlp", "cnn", "resnet" };
static const char *data_names[] = { "fashion-mnist", "mnist", "cifar10" };
static const char *norm_names[] = { "none", "batch", "layer" };

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTION]...\n"
        "Trains a classifier with nabla's Solver and reports its accuracy on the test set; the last line\n"
        "printed is \"test accuracy: 0.XXXX\". Without options: the default recipe below.\n"
        "\n"
        "Model:\n"
        "  --model mlp|cnn|resnet  the net (default " DEFAULT_MODEL "): mlp = FullyConnectedNet,\n"
        "                          cnn = ThreeLayerConvNet (conv-relu-pool-affine-relu-affine), resnet = ResNet\n"
        "  --hidden LIST           mlp: hidden layer sizes, comma-separated, or 'none' (default " DEFAULT_MLP_HIDDEN ")\n"
        "  --norm none|batch|layer mlp: normalisation after each hidden affine (default " DEFAULT_NORM ")\n"
        "  --keep-prob P           mlp: dropout keep probability in (0,1], 1 = no dropout (default %g)\n"
        "  --filters N             cnn: number of convolution filters (default %d)\n"
        "  --filter-size K         cnn: odd filter size (default %d)\n"
        "  --hidden-dim H          cnn: size of the hidden affine layer (default %d)\n"
        "  --widths A,B,C          resnet: channels of the three stages (default " DEFAULT_WIDTHS ")\n"
        "  --blocks N              resnet: residual blocks per stage (default %d); resnet always uses batchnorm\n"
        "  --weight-scale S        mlp, cnn: std of the initial weights; 0 or 'kaiming' = Kaiming (He)\n"
        "                          N(0, 2/fan_in) (default %g%s); resnet: always Kaiming\n"
        "  --fused-bn yes|no       mlp with --norm batch, resnet: one-kernel batchnorm (default %s)\n"
        "  --fused-conv yes|no     cnn, resnet: one-kernel convolution, no stored im2col matrix (default %s)\n"
        "  --reg R                 L2 regularisation strength (default %g)\n"
        "\n"
        "Data:\n"
        "  --data fashion-mnist|mnist|cifar10   the data set (default " DEFAULT_DATA ")\n"
        "  --data-dir PATH         its folder (default for fashion-mnist: " DEFAULT_FASHION_DIR ",\n"
        "                          from the Debian package dataset-fashion-mnist; none for mnist and cifar10)\n"
        "  --val N                 validation split: the last N training samples (default %d)\n"
        "  --standardize           per-channel standardisation with training-set statistics\n"
        "  --no-standardize        feed the pixels as they are, in [0,1] (default)\n"
        "  --mean-image            subtract the mean training image instead of standardising\n"
        "  --augment               random crops (cifar10: pad 4 + horizontal flips; mnist-like: pad 2, no flips)\n"
        "  --overfit N             sanity check: train on the first N training samples only and validate on\n"
        "                          the same N (train accuracy should reach 1.0); unless given, --epochs\n"
        "                          is then %d and --lr-decay %g\n"
        "\n"
        "Training:\n"
        "  --epochs N              (default %d; --model mlp: %d); 0: no training, only the test accuracy\n"
        "                          of the model as built or resumed\n"
        "  --batch-size N          (default %d)\n"
        "  --optimizer NAME        sgd|sgd_momentum|nesterov|rmsprop|adam|adamw (default " DEFAULT_OPTIMIZER ")\n"
        "  --lr X                  learning rate (default %g for " DEFAULT_OPTIMIZER "; other optimizers: their\n"
        "                          cs231n default, 1e-2, or 1e-3 for adam and adamw)\n"
        "  --lr-decay X            the step and plateau schedules multiply lr by X (default %g)\n"
        "  --lr-schedule NAME      step: x lr-decay every --lr-step epochs (default, --lr-step 1);\n"
        "                          cosine: down to --lr-min (default 0) at the last iteration;\n"
        "                          plateau: x lr-decay after --patience epochs (default 1) without a\n"
        "                          better validation accuracy\n"
        "  --lr-step N, --patience N, --lr-min X   the schedules' settings (above)\n"
        "  --warmup N              linear warm-up of lr over the first N iterations (default 0)\n"
        "  --weight-decay X        decoupled weight decay, w -= lr*X*w each step, for every optimizer\n"
        "                          (default 0; adamw: 1e-2)\n"
        "  --batch-mode sample|shuffle  shuffle: each sample once per epoch; sample: cs231n's draws with\n"
        "                          replacement (default " DEFAULT_BATCH_MODE ")\n"
        "  --clip-norm X           clip the global gradient norm to X; 0 = off (default %g)\n"
        "  --seed N                seed of the initialisation, batches, dropout and subsamples (default %d)\n"
        "  --threads N             BLIS/OpenMP threads (default: $BLIS_NUM_THREADS if set, else all CPUs)\n"
        "  --num-train-samples N   training accuracy is measured on N random samples; 0 = all (default %d)\n"
        "  --detect-anomaly        check every op's output; a NaN/Inf names the op that made it (slow)\n"
        "\n"
        "Output:\n"
        "  --checkpoint FILE       save the solver's state to FILE (atomically) at every epoch end\n"
        "  --resume FILE           continue from a checkpoint (same model and data options; --epochs is the total)\n"
        "  --save-model FILE       after training, the model's parameters and buffers (safetensors, by name)\n"
        "  --load-model FILE       start from the weights in FILE (--save-model's, or a checkpoint's best;\n"
        "                          the same model options)\n"
        "  --eval FILE             no training: the test accuracy and confusion matrix of the weights in FILE\n"
        "  --history FILE          after training, write FILE (iteration,loss: one row per iteration) and\n"
        "                          FILE with '-acc' before its extension (epoch,iteration,train_acc,val_acc:\n"
        "                          one row per accuracy check), e.g. run.csv and run-acc.csv\n"
        "  --plot FILE             PNG of the loss and accuracy curves (needs gnuplot: apt-get install gnuplot-nox)\n"
        "  --print-every N         progress line every N iterations when stdout is not a terminal (default %d)\n"
        "  --progress MODE         bar|lines|none|auto (default auto: a redrawn bar when stdout is a terminal\n"
        "                          and not under mpirun, else lines)\n"
        "  --quiet                 print only the test accuracy (and errors)\n"
        "  -h, --help              this text\n"
        "\n"
        "Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted.\n",
        DEFAULT_KEEP_PROB, DEFAULT_FILTERS, DEFAULT_FILTER_SIZE, DEFAULT_HIDDEN, DEFAULT_BLOCKS, DEFAULT_WEIGHT_SCALE,
        DEFAULT_WEIGHT_SCALE == 0 ? ": Kaiming" : "", DEFAULT_FUSED_BN ? "yes" : "no", DEFAULT_FUSED_CONV ? "yes" : "no", DEFAULT_REG,
        DEFAULT_VAL,
        DEFAULT_OVERFIT_EPOCHS, DEFAULT_OVERFIT_LR_DECAY,
        DEFAULT_EPOCHS, DEFAULT_MLP_EPOCHS, DEFAULT_BATCH, DEFAULT_LR, DEFAULT_LR_DECAY, DEFAULT_CLIP_NORM, DEFAULT_SEED,
        DEFAULT_NUM_TRAIN_SAMPLES, DEFAULT_PRINT_EVERY);
}

#define bad_usage(...) tool_bad_usage(PROG, __VA_ARGS__)

static int64_t parse_int(const char *opt, const char *s, int64_t lo, int64_t hi) { return tool_parse_int(PROG, opt, s, lo, hi); }
static double parse_num(const char *opt, const char *s, double lo, bool strict, double hi)
{
    return tool_parse_num(PROG, opt, s, lo, strict, hi);
}
static int parse_choice(const char *opt, const char *s, const char *const *names, int n)
{
    return tool_parse_choice(PROG, opt, s, names, n);
}

/* comma-separated positive integers into out[0..max); returns the count */
static int parse_list(const char *opt, const char *s, int64_t *out, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 1 || (*end && *end != ',')) bad_usage("%s: expected positive integers separated by commas, got '%s'", opt, s);
        if (n == max) bad_usage("%s: at most %d values, got '%s'", opt, max, s);
        out[n++] = v;
        if (!*end) return n;
        p = end + 1;
    }
}

static void set_defaults(options *o)
{
    *o = (options){
        .model = parse_choice("--model", DEFAULT_MODEL, model_names, 3),
        .filters = DEFAULT_FILTERS, .filter_size = DEFAULT_FILTER_SIZE, .hidden_dim = DEFAULT_HIDDEN,
        .blocks = DEFAULT_BLOCKS, .norm = (nb_norm_kind)parse_choice("--norm", DEFAULT_NORM, norm_names, 3),
        .keep_prob = DEFAULT_KEEP_PROB, .reg = DEFAULT_REG, .weight_scale = DEFAULT_WEIGHT_SCALE,
        .fused_bn = DEFAULT_FUSED_BN, .fused_conv = DEFAULT_FUSED_CONV, .standardize = DEFAULT_STANDARDIZE,
        .data = parse_choice("--data", DEFAULT_DATA, data_names, 3), .val = DEFAULT_VAL,
        .epochs = DEFAULT_EPOCHS, .batch_size = DEFAULT_BATCH, .lr = DEFAULT_LR, .lr_decay = DEFAULT_LR_DECAY,
        .seed = DEFAULT_SEED, .clip_norm = DEFAULT_CLIP_NORM, .num_train_samples = DEFAULT_NUM_TRAIN_SAMPLES,
        .print_every = DEFAULT_PRINT_EVERY, .threads = DEFAULT_THREADS,
        .batch_mode = strcmp(DEFAULT_BATCH_MODE, "sample") ? NB_BATCH_SHUFFLE : NB_BATCH_SAMPLE,
        .lr_schedule = NB_LR_STEP, .lr_step = 1, .patience = 1,
    };
    o->n_hidden = parse_list("--hidden", DEFAULT_MLP_HIDDEN, o->hidden, MAX_HIDDEN);
    parse_list("--widths", DEFAULT_WIDTHS, o->widths, 3);
    if (nb_optim_kind_parse(DEFAULT_OPTIMIZER, &o->optimizer)) bad_usage("%s", nb_last_error());
}

enum {
    OPT_MODEL = 256, OPT_HIDDEN, OPT_FILTERS, OPT_FILTER_SIZE, OPT_HIDDEN_DIM, OPT_WIDTHS, OPT_BLOCKS, OPT_NORM,
    OPT_KEEP_PROB, OPT_REG, OPT_WEIGHT_SCALE, OPT_FUSED_BN, OPT_FUSED_CONV, OPT_DATA, OPT_DATA_DIR, OPT_VAL, OPT_STANDARDIZE, OPT_NO_STANDARDIZE,
    OPT_MEAN_IMAGE, OPT_AUGMENT, OPT_EPOCHS, OPT_BATCH_SIZE, OPT_OPTIMIZER, OPT_LR, OPT_LR_DECAY, OPT_SEED,
    OPT_THREADS, OPT_BATCH_MODE, OPT_CLIP_NORM, OPT_NUM_TRAIN_SAMPLES, OPT_OVERFIT, OPT_CHECKPOINT, OPT_RESUME,
    OPT_HISTORY, OPT_PLOT, OPT_PRINT_EVERY, OPT_QUIET, OPT_DETECT_ANOMALY, OPT_PROGRESS, OPT_WEIGHT_DECAY,
    OPT_LR_SCHEDULE, OPT_LR_STEP, OPT_PATIENCE, OPT_LR_MIN, OPT_WARMUP, OPT_SAVE_MODEL, OPT_LOAD_MODEL, OPT_EVAL,
};

static char *acc_path(const char *path);

static void check_output(const char *flag, const char *path) { tool_check_output(PROG, flag, path); }

/* gnuplot's terminal for the plot file's extension, or NULL */
static const char *plot_terminal(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot) return NULL;
    if (!strcasecmp(dot, ".png")) return "pngcairo size 1000,800 font ',10'";
    if (!strcasecmp(dot, ".svg")) return "svg size 1000,800 dynamic font 'sans,10'";
    if (!strcasecmp(dot, ".pdf")) return "pdfcairo size 10in,8in font ',10'";
    return NULL;
}

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        { "model", required_argument, NULL, OPT_MODEL },
        { "hidden", required_argument, NULL, OPT_HIDDEN },
        { "filters", required_argument, NULL, OPT_FILTERS },
        { "filter-size", required_argument, NULL, OPT_FILTER_SIZE },
        { "hidden-dim", required_argument, NULL, OPT_HIDDEN_DIM },
        { "widths", required_argument, NULL, OPT_WIDTHS },
        { "blocks", required_argument, NULL, OPT_BLOCKS },
        { "norm", required_argument, NULL, OPT_NORM },
        { "keep-prob", required_argument, NULL, OPT_KEEP_PROB },
        { "reg", required_argument, NULL, OPT_REG },
        { "weight-scale", required_argument, NULL, OPT_WEIGHT_SCALE },
        { "fused-bn", required_argument, NULL, OPT_FUSED_BN },
        { "fused-conv", required_argument, NULL, OPT_FUSED_CONV },
        { "data", required_argument, NULL, OPT_DATA },
        { "data-dir", required_argument, NULL, OPT_DATA_DIR },
        { "val", required_argument, NULL, OPT_VAL },
        { "standardize", no_argument, NULL, OPT_STANDARDIZE },
        { "no-standardize", no_argument, NULL, OPT_NO_STANDARDIZE },
        { "mean-image", no_argument, NULL, OPT_MEAN_IMAGE },
        { "augment", no_argument, NULL, OPT_AUGMENT },
        { "epochs", required_argument, NULL, OPT_EPOCHS },
        { "batch-size", required_argument, NULL, OPT_BATCH_SIZE },
        { "optimizer", required_argument, NULL, OPT_OPTIMIZER },
        { "lr", required_argument, NULL, OPT_LR },
        { "lr-decay", required_argument, NULL, OPT_LR_DECAY },
        { "seed", required_argument, NULL, OPT_SEED },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "batch-mode", required_argument, NULL, OPT_BATCH_MODE },
        { "clip-norm", required_argument, NULL, OPT_CLIP_NORM },
        { "num-train-samples", required_argument, NULL, OPT_NUM_TRAIN_SAMPLES },
        { "overfit", required_argument, NULL, OPT_OVERFIT },
        { "checkpoint", required_argument, NULL, OPT_CHECKPOINT },
        { "resume", required_argument, NULL, OPT_RESUME },
        { "history", required_argument, NULL, OPT_HISTORY },
        { "plot", required_argument, NULL, OPT_PLOT },
        { "print-every", required_argument, NULL, OPT_PRINT_EVERY },
        { "quiet", no_argument, NULL, OPT_QUIET },
        { "detect-anomaly", no_argument, NULL, OPT_DETECT_ANOMALY },
        { "progress", required_argument, NULL, OPT_PROGRESS },
        { "weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY },
        { "lr-schedule", required_argument, NULL, OPT_LR_SCHEDULE },
        { "lr-step", required_argument, NULL, OPT_LR_STEP },
        { "patience", required_argument, NULL, OPT_PATIENCE },
        { "lr-min", required_argument, NULL, OPT_LR_MIN },
        { "warmup", required_argument, NULL, OPT_WARMUP },
        { "save-model", required_argument, NULL, OPT_SAVE_MODEL },
        { "load-model", required_argument, NULL, OPT_LOAD_MODEL },
        { "eval", required_argument, NULL, OPT_EVAL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    set_defaults(o);
    unsigned given = 0;
    int opt, index = -1;
    opterr = 0;   /* our own messages */
    while ((opt = getopt_long(argc, argv, ":h", longopts, &index)) != -1) {
        const char *name = index >= 0 ? longopts[index].name : "";
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", name);
        index = -1;
        switch (opt) {
        case OPT_MODEL: o->model = parse_choice(flag, optarg, model_names, 3); break;
        case OPT_HIDDEN:
            o->n_hidden = strcmp(optarg, "none") ? parse_list(flag, optarg, o->hidden, MAX_HIDDEN) : 0;
            given |= GIVEN_HIDDEN;
            break;
        case OPT_FILTERS: o->filters = parse_int(flag, optarg, 1, 1 << 16); given |= GIVEN_FILTERS; break;
        case OPT_FILTER_SIZE:
            o->filter_size = (int)parse_int(flag, optarg, 1, 31);
            if (o->filter_size % 2 == 0) bad_usage("%s: the filter size must be odd, got %d", flag, o->filter_size);
            given |= GIVEN_FILTER_SIZE;
            break;
        case OPT_HIDDEN_DIM: o->hidden_dim = parse_int(flag, optarg, 1, 1 << 20); given |= GIVEN_HIDDEN_DIM; break;
        case OPT_WIDTHS:
            if (parse_list(flag, optarg, o->widths, 3) != 3) bad_usage("%s: expected three widths, got '%s'", flag, optarg);
            given |= GIVEN_WIDTHS;
            break;
        case OPT_BLOCKS: o->blocks = (int)parse_int(flag, optarg, 1, 64); given |= GIVEN_BLOCKS; break;
        case OPT_NORM: o->norm = (nb_norm_kind)parse_choice(flag, optarg, norm_names, 3); given |= GIVEN_NORM; break;
        case OPT_KEEP_PROB: o->keep_prob = parse_num(flag, optarg, 0, true, 1); given |= GIVEN_KEEP_PROB; break;
        case OPT_REG: o->reg = parse_num(flag, optarg, 0, false, INFINITY); break;
        case OPT_WEIGHT_SCALE:
            o->weight_scale = strcmp(optarg, "kaiming") ? parse_num(flag, optarg, 0, false, INFINITY) : 0;
            given |= GIVEN_WEIGHT_SCALE;
            break;
        case OPT_FUSED_BN:
            o->fused_bn = parse_choice(flag, optarg, (const char *const[]){ "no", "yes" }, 2) == 1;
            given |= GIVEN_FUSED_BN;
            break;
        case OPT_FUSED_CONV:
            o->fused_conv = parse_choice(flag, optarg, (const char *const[]){ "no", "yes" }, 2) == 1;
            given |= GIVEN_FUSED_CONV;
            break;
        case OPT_DATA: o->data = parse_choice(flag, optarg, data_names, 3); break;
        case OPT_DATA_DIR: o->data_dir = optarg; break;
        case OPT_VAL: o->val = parse_int(flag, optarg, 0, INT64_MAX); break;
        case OPT_STANDARDIZE: o->standardize = true; o->mean_image = false; break;
        case OPT_NO_STANDARDIZE: o->standardize = false; break;
        case OPT_MEAN_IMAGE: o->mean_image = true; o->standardize = false; break;
        case OPT_AUGMENT: o->augment = true; break;
        case OPT_EPOCHS: o->epochs = parse_int(flag, optarg, 0, 1000000); given |= GIVEN_EPOCHS; break;
        case OPT_BATCH_SIZE: o->batch_size = parse_int(flag, optarg, 1, 1 << 20); break;
        case OPT_OPTIMIZER:
            if (nb_optim_kind_parse(optarg, &o->optimizer)) bad_usage("%s: unknown optimizer '%s' (expected sgd, "
                                                                      "sgd_momentum, nesterov, rmsprop, adam or adamw)",
                                                                      flag, optarg);
            break;
        case OPT_LR: o->lr = parse_num(flag, optarg, 0, true, INFINITY); o->lr_given = true; break;
        case OPT_LR_DECAY: o->lr_decay = parse_num(flag, optarg, 0, true, INFINITY); given |= GIVEN_LR_DECAY; break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end || errno || *optarg == '-') bad_usage("%s: expected a non-negative integer, got '%s'", flag, optarg);
            break;
        }
        case OPT_THREADS: o->threads = (int)parse_int(flag, optarg, 1, 1024); break;
        case OPT_BATCH_MODE:
            o->batch_mode = parse_choice(flag, optarg, (const char *const[]){ "shuffle", "sample" }, 2) ? NB_BATCH_SAMPLE
                                                                                                       : NB_BATCH_SHUFFLE;
            break;
        case OPT_CLIP_NORM: o->clip_norm = parse_num(flag, optarg, 0, false, INFINITY); break;
        case OPT_NUM_TRAIN_SAMPLES: o->num_train_samples = parse_int(flag, optarg, 0, INT64_MAX); break;
        case OPT_OVERFIT: o->overfit = parse_int(flag, optarg, 1, INT64_MAX); break;
        case OPT_CHECKPOINT: o->checkpoint = optarg; break;
        case OPT_RESUME: o->resume = optarg; break;
        case OPT_HISTORY: o->history = optarg; break;
        case OPT_PLOT: o->plot = optarg; break;
        case OPT_PRINT_EVERY: o->print_every = parse_int(flag, optarg, 1, INT64_MAX); break;
        case OPT_QUIET: o->quiet = true; break;
        case OPT_DETECT_ANOMALY: o->detect_anomaly = true; break;
        case OPT_PROGRESS: o->progress = parse_choice(flag, optarg, progress_names, 4); break;
        case OPT_WEIGHT_DECAY:
            o->weight_decay = parse_num(flag, optarg, 0, false, INFINITY);
            o->weight_decay_given = true;
            break;
        case OPT_LR_SCHEDULE:
            if (nb_lr_schedule_parse(optarg, &o->lr_schedule))
                bad_usage("%s: unknown schedule '%s' (expected step, cosine or plateau)", flag, optarg);
            break;
        case OPT_LR_STEP: o->lr_step = parse_int(flag, optarg, 1, INT64_MAX); given |= GIVEN_LR_STEP; break;
        case OPT_PATIENCE: o->patience = parse_int(flag, optarg, 1, INT64_MAX); given |= GIVEN_PATIENCE; break;
        case OPT_LR_MIN: o->lr_min = parse_num(flag, optarg, 0, false, INFINITY); given |= GIVEN_LR_MIN; break;
        case OPT_WARMUP: o->warmup = parse_int(flag, optarg, 0, INT64_MAX); break;
        case OPT_SAVE_MODEL: o->save_model = optarg; break;
        case OPT_LOAD_MODEL: o->load_model = optarg; break;
        case OPT_EVAL: o->load_model = optarg; o->eval = true; break;
        case 'h': usage(stdout); exit(0);
        case ':': bad_usage("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt) bad_usage("unknown option '-%c'", optopt);
            bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) bad_usage("unexpected argument '%s' (every setting is an --option)", argv[optind]);

    /* model-specific options given to another model */
    static const struct { unsigned bit; const char *name, *models_text; unsigned models; } specific[] = {
        { GIVEN_HIDDEN, "--hidden", "mlp", 1u << MODEL_MLP },
        { GIVEN_NORM, "--norm", "mlp", 1u << MODEL_MLP },
        { GIVEN_KEEP_PROB, "--keep-prob", "mlp", 1u << MODEL_MLP },
        { GIVEN_FILTERS, "--filters", "cnn", 1u << MODEL_CNN },
        { GIVEN_FILTER_SIZE, "--filter-size", "cnn", 1u << MODEL_CNN },
        { GIVEN_HIDDEN_DIM, "--hidden-dim", "cnn", 1u << MODEL_CNN },
        { GIVEN_WIDTHS, "--widths", "resnet", 1u << MODEL_RESNET },
        { GIVEN_BLOCKS, "--blocks", "resnet", 1u << MODEL_RESNET },
        { GIVEN_WEIGHT_SCALE, "--weight-scale", "mlp and cnn", 1u << MODEL_MLP | 1u << MODEL_CNN },
        { GIVEN_FUSED_BN, "--fused-bn", "mlp and resnet", 1u << MODEL_MLP | 1u << MODEL_RESNET },
        { GIVEN_FUSED_CONV, "--fused-conv", "cnn and resnet", 1u << MODEL_CNN | 1u << MODEL_RESNET },
    };
    for (size_t i = 0; i < sizeof specific / sizeof *specific; i++) {
        if (!(given & specific[i].bit) || (specific[i].models & (1u << o->model))) continue;
        if (specific[i].bit == GIVEN_NORM && o->model == MODEL_RESNET && o->norm == NB_NORM_BATCH) continue;
        bad_usage("%s applies to --model %s only, not to --model %s%s", specific[i].name, specific[i].models_text,
                  model_names[o->model], o->model != MODEL_RESNET ? ""
                                         : specific[i].bit == GIVEN_WEIGHT_SCALE ? " (always Kaiming init)"
                                         : specific[i].bit == GIVEN_NORM ? " (always batchnorm)" : "");
    }
    /* each schedule's own settings */
    static const struct { unsigned bit; const char *name; nb_lr_schedule schedule; } schedule_specific[] = {
        { GIVEN_LR_STEP, "--lr-step", NB_LR_STEP }, { GIVEN_PATIENCE, "--patience", NB_LR_PLATEAU },
        { GIVEN_LR_MIN, "--lr-min", NB_LR_COSINE } };
    for (size_t i = 0; i < 3; i++)
        if ((given & schedule_specific[i].bit) && o->lr_schedule != schedule_specific[i].schedule)
            bad_usage("%s applies to --lr-schedule %s only", schedule_specific[i].name,
                      nb_lr_schedule_name(schedule_specific[i].schedule));
    if (o->lr_schedule == NB_LR_COSINE) {
        if (given & GIVEN_LR_DECAY) bad_usage("--lr-decay does not apply to --lr-schedule cosine (--lr-min sets its end)");
        o->lr_decay = 1;
    }
    if (o->eval) {
        if (given & GIVEN_EPOCHS) bad_usage("--eval trains nothing: --epochs does not apply");
        if (o->resume || o->checkpoint || o->save_model)
            bad_usage("--eval only evaluates: --resume, --checkpoint and --save-model do not apply");
    }
    if (o->load_model && o->resume) bad_usage("--load-model and --resume both set the weights: give one");
    if (o->model == MODEL_RESNET && (given & GIVEN_NORM) == 0) o->norm = NB_NORM_BATCH;
    if (o->model == MODEL_MLP && !(given & GIVEN_EPOCHS)) o->epochs = DEFAULT_MLP_EPOCHS;
    if (o->overfit && !(given & GIVEN_EPOCHS)) o->epochs = DEFAULT_OVERFIT_EPOCHS;
    if (o->eval) o->epochs = 0;
    if (o->overfit && !(given & GIVEN_LR_DECAY) && o->lr_schedule != NB_LR_COSINE) o->lr_decay = DEFAULT_OVERFIT_LR_DECAY;
    if (!o->data_dir && o->data == DATA_MNIST)
        bad_usage("--data mnist needs --data-dir DIR: a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
                  "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may be .gz), from http://yann.lecun.com/exdb/mnist/");
    if (!o->data_dir && o->data == DATA_CIFAR)
        bad_usage("--data cifar10 needs --data-dir DIR: the extracted 'CIFAR-10 binary version' (the folder\n"
                  "cifar-10-batches-bin, or its parent) from https://www.cs.toronto.edu/~kriz/cifar.html\n"
                  "(https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz)");
    if (!o->data_dir) o->data_dir = DEFAULT_FASHION_DIR;
    if (o->val < 1 && !o->overfit) bad_usage("--val: the validation split needs at least 1 sample (got %lld)", (long long)o->val);
    if (!o->lr_given && strcmp(nb_optim_kind_name(o->optimizer), DEFAULT_OPTIMIZER))
        o->lr = nb_optim_defaults(o->optimizer).lr;
    /* the files written after training, checked before anything is trained */
    check_output("--checkpoint", o->checkpoint);
    check_output("--save-model", o->save_model);
    check_output("--history", o->history);
    char *acc = o->history ? acc_path(o->history) : NULL;
    check_output("--history", acc);
    free(acc);
    check_output("--plot", o->plot);
    if (o->plot && !plot_terminal(o->plot))
        bad_usage("--plot %s: the extension must be .png, .svg or .pdf", o->plot);
}

/* ---- threads ---- */

/* every online CPU unless told otherwise, shared among the ranks on this machine under mpirun (which
 * tells them apart before MPI starts); see tools/cli.h for the environment it sets */
static void set_threads(options *o, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    long ranks_here = local ? strtol(local, NULL, 10) : 1, share = ranks_here >= 1 ? cpus / ranks_here : cpus;
    o->threads = tool_set_threads(o->threads, share >= 1 && share <= 1024 ? (int)share : 1, argv);
#ifdef _OPENMP
    omp_set_num_threads(o->threads);
#endif
}

/* ---- the model ---- */

/* cs231n's nets draw weights from N(0, weight_scale²); weight_scale 0 here means Kaiming (He) instead:
 * every regularised weight (Linear [in,out], Conv2d [F,C,k,k]) is redrawn from N(0, 2/fan_in) */
static int kaiming_init(nb_model *m, uint64_t seed)
{
    nb_tensor *small[16], **w = small;
    int n = nb_model_reg_weights(m, 16, w);
    if (n > 16 && (w = malloc(sizeof *w * (size_t)n))) n = nb_model_reg_weights(m, n, w);
    if (n < 0 || !w) {
        if (!w) fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    nb_scope *scope = nb_scope_new();   /* its own scope: the default one holds the --overfit views */
    if (!scope) {
        if (w != small) free(w);
        return -1;
    }
    nb_scope_push(scope);
    nb_rng rng;
    nb_rng_seed(&rng, seed ^ 0x4b61696d696e67ULL);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t fan_in = w[i]->ndim == 2 ? w[i]->shape[0] : nb_numel(w[i]) / w[i]->shape[0];
        nb_tensor *r = nb_randn(w[i]->dtype, nb_shape_of(w[i]), &rng, sqrt(2.0 / (double)fan_in));
        rc = r ? nb_copy_into(w[i], r) : -1;
    }
    nb_scope_pop();
    nb_scope_free(scope);
    if (w != small) free(w);
    return rc;
}

static nb_model *build_model(const options *o, const nb_tensor *x, int64_t classes)
{
    const int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
    nb_model *m = NULL;
    nb_rng rng;
    nb_rng_seed(&rng, o->seed);
    switch (o->model) {
    case MODEL_MLP: {
        nb_fc_config c = nb_fc_defaults();
        c.n_hidden = o->n_hidden;
        c.hidden_dims = o->hidden;
        c.input_dim = C * H * W;
        c.num_classes = classes;
        c.keep_prob = o->keep_prob;
        c.norm = o->norm;
        c.reg = o->reg;
        c.weight_scale = o->weight_scale;
        c.seed = o->seed;
        c.fused_bn = o->fused_bn;
        m = nb_fully_connected_net(&c);
        break;
    }
    case MODEL_CNN: {
        nb_convnet_config c = nb_convnet_defaults();
        c.in_c = C;
        c.in_h = H;
        c.in_w = W;
        c.num_filters = o->filters;
        c.filter_size = o->filter_size;
        c.hidden_dim = o->hidden_dim;
        c.num_classes = classes;
        c.weight_scale = o->weight_scale;
        c.reg = o->reg;
        c.fused_conv = o->fused_conv;
        m = nb_three_layer_convnet(&c, &rng);
        break;
    }
    case MODEL_RESNET: {
        nb_resnet_config c = nb_resnet_defaults();
        c.in_c = C;
        c.in_h = H;
        c.in_w = W;
        c.num_classes = classes;
        memcpy(c.widths, o->widths, sizeof c.widths);
        c.blocks_per_stage = o->blocks;
        c.fused_bn = o->fused_bn;
        c.fused_conv = o->fused_conv;
        c.reg = o->reg;
        m = nb_resnet(&c, &rng);
        break;
    }
    }
    if (m && o->model != MODEL_RESNET && o->weight_scale == 0 && kaiming_init(m, o->seed)) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

static void describe_model(const options *o, nb_model *m, const nb_tensor *x, int64_t classes, char *buf, size_t size)
{
    char arch[256] = "";
    switch (o->model) {
    case MODEL_MLP: {
        int len = snprintf(arch, sizeof arch, "hidden ");
        for (int i = 0; i < o->n_hidden && len < (int)sizeof arch; i++)
            len += snprintf(arch + len, sizeof arch - (size_t)len, "%s%lld", i ? "," : "", (long long)o->hidden[i]);
        if (!o->n_hidden) snprintf(arch, sizeof arch, "no hidden layer");
        len = (int)strlen(arch);
        snprintf(arch + len, sizeof arch - (size_t)len, ", norm %s, keep_prob %g", norm_names[o->norm], o->keep_prob);
        break;
    }
    case MODEL_CNN:
        snprintf(arch, sizeof arch, "%lld filters %dx%d, hidden %lld", (long long)o->filters, o->filter_size,
                 o->filter_size, (long long)o->hidden_dim);
        break;
    case MODEL_RESNET:
        snprintf(arch, sizeof arch, "widths %lld,%lld,%lld, %d block%s per stage", (long long)o->widths[0],
                 (long long)o->widths[1], (long long)o->widths[2], o->blocks, o->blocks == 1 ? "" : "s");
        break;
    }
    char init[64];
    if (o->model == MODEL_RESNET || o->weight_scale == 0) snprintf(init, sizeof init, "Kaiming init");
    else snprintf(init, sizeof init, "weight_scale %g", o->weight_scale);
    snprintf(buf, size, "%s (%s; %s, reg %g), %lldx%lldx%lld -> %lld classes, %lld parameters", m->name, arch, init,
             o->reg, (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3], (long long)classes,
             (long long)nb_module_numel(m->net, false));
}

/* ---- progress (the solver's callback) ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const options *o;
    bool tty, bar_shown;
    int64_t per_epoch, first_iteration;   /* iterations per epoch; the first of this run */
    double ema_raw;                       /* exponential moving average of the loss, before bias correction */
    int64_t ema_n;
    double last_call, last_draw;          /* now_s() at the previous callback and at the last bar */
    double step_s;                        /* time in iterations without an accuracy check (this run) */
    int64_t step_n;                       /* their number */
    double epoch_start, train_s;          /* now_s() when this epoch began; seconds in this run's epochs */
    double epoch_loss;                    /* sum of this epoch's losses (this run) */
    int64_t epoch_n, epochs_run;
} progress;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void format_duration(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static int terminal_width(void)
{
    struct winsize w;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col >= 20) return w.ws_col;
    return 80;
}

static void clear_bar(progress *pr)
{
    if (pr->bar_shown) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        pr->bar_shown = false;
    }
}

static int digits(int64_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Called by the solver after every iteration (after its accuracy check and checkpoint, if any).
 * Speed and ETA come from the iterations without a check, timed here. */
static int on_progress(const nb_solver_progress *p, void *ctx)
{
    progress *pr = ctx;
    const options *o = pr->o;
    double t = now_s();
    if (!p->checked) {
        pr->step_s += t - pr->last_call;
        pr->step_n++;
    }
    pr->last_call = t;
    pr->ema_raw = EMA_BETA * pr->ema_raw + (1 - EMA_BETA) * p->loss;
    pr->ema_n++;
    double ema = pr->ema_raw / (1 - pow(EMA_BETA, (double)pr->ema_n));
    pr->epoch_loss += p->loss;
    pr->epoch_n++;
    bool epoch_end = p->iteration % pr->per_epoch == 0;
    double per_iter = pr->step_n ? pr->step_s / (double)pr->step_n : p->elapsed_s;
    double eta = (double)(p->num_iterations - p->iteration) * per_iter;
    double rate = per_iter > 0 ? (double)o->batch_size / per_iter : 0;
    /* the epoch being run (at its end: the epoch just completed) and the iteration within it */
    int64_t epoch_shown = epoch_end ? p->epoch : p->epoch + 1;
    int64_t in_epoch = epoch_end ? pr->per_epoch : p->iteration % pr->per_epoch;

    if (!o->quiet && pr->tty && (t - pr->last_draw >= 0.1 || epoch_end || p->iteration == pr->first_iteration)) {
        pr->last_draw = t;
        char left[64], right[128], eta_s[32];
        format_duration(eta, eta_s, sizeof eta_s);
        int dw = digits(p->num_epochs), iw = digits(pr->per_epoch);
        snprintf(left, sizeof left, "epoch %*lld/%lld ", dw, (long long)epoch_shown, (long long)p->num_epochs);
        snprintf(right, sizeof right, " %*lld/%lld  ETA %5s  loss %.4f  %5.0f img/s", iw, (long long)in_epoch,
                 (long long)pr->per_epoch, eta_s, ema, rate);
        /* a fixed bar width for the whole run, so the line does not jitter */
        int width = terminal_width() - 1 - (int)strlen(left) - (int)strlen(right) - 2 - 4;
        if (width > 30) width = 30;
        char bar[32];
        if (width >= 5) {
            int fill = (int)((double)width * (double)in_epoch / (double)pr->per_epoch);
            for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            printf("\r%s[%s]%s\033[K", left, bar, right);
        } else {
            printf("\r%s%s\033[K", left, right);
        }
        fflush(stdout);
        pr->bar_shown = true;
    } else if (!o->quiet && !pr->tty && o->progress != PROGRESS_NONE && p->iteration % o->print_every == 0) {
        char eta_s[32];
        format_duration(eta, eta_s, sizeof eta_s);
        printf("epoch %lld/%lld  iteration %lld/%lld  loss %.4f (running %.4f)  %.0f img/s  ETA %s\n",
               (long long)epoch_shown, (long long)p->num_epochs, (long long)p->iteration, (long long)p->num_iterations,
               p->loss, ema, rate, eta_s);
        fflush(stdout);
    }
    if (p->checked && !o->quiet) {
        clear_bar(pr);
        if (epoch_end)
            printf("epoch %lld/%lld: train acc %.4f, val acc %.4f, mean loss %.4f, next lr %.3g, %.1f s\n",
                   (long long)p->epoch, (long long)p->num_epochs, p->train_acc, p->val_acc,
                   pr->epoch_loss / (double)pr->epoch_n, p->lr, t - pr->epoch_start);
        else
            printf("iteration %lld: train acc %.4f, val acc %.4f, loss %.4f\n", (long long)p->iteration, p->train_acc,
                   p->val_acc, p->loss);
        fflush(stdout);
    }
    if (epoch_end) {
        pr->train_s += t - pr->epoch_start;
        pr->epochs_run++;
        pr->epoch_start = t;
        pr->epoch_loss = 0;
        pr->epoch_n = 0;
    }
    return interrupted ? 1 : 0;
}

/* ---- history files ---- */

static bool g_say = true;   /* not --quiet */

/* the epoch and iteration of accuracy check k: checks come at iteration 1 and at every epoch end */
static void check_position(int64_t k, int64_t per_epoch, int64_t *epoch, int64_t *iteration)
{
    if (per_epoch == 1) k++;            /* iteration 1 is then also the end of epoch 1 */
    *epoch = k;
    *iteration = k == 0 ? 1 : k * per_epoch;
}

static char *acc_path(const char *path)
{
    size_t n = strlen(path);
    char *out = malloc(n + 5);
    if (!out) return NULL;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash) || dot == path || dot[-1] == '/') dot = path + n;
    size_t stem = (size_t)(dot - path);
    memcpy(out, path, stem);
    memcpy(out + stem, "-acc", 4);
    strcpy(out + stem + 4, dot);
    return out;
}

static int write_history(const char *path, nb_solver *s, int64_t per_epoch)
{
    int64_t nl, nt, nv;
    const double *loss = nb_solver_loss_history(s, &nl);
    const double *tr = nb_solver_train_acc_history(s, &nt);
    const double *va = nb_solver_val_acc_history(s, &nv);
    char *apath = acc_path(path);
    if (!apath) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (f) {
        fprintf(f, "iteration,loss\n");
        for (int64_t i = 0; i < nl; i++) fprintf(f, "%lld,%.9g\n", (long long)(i + 1), loss[i]);
        if (fclose(f)) f = NULL;
    }
    if (!f) {
        fprintf(stderr, PROG ": cannot write the history %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && (f = fopen(apath, "w"))) {
        fprintf(f, "epoch,iteration,train_acc,val_acc\n");
        for (int64_t k = 0; k < nt && k < nv; k++) {
            int64_t e, it;
            check_position(k, per_epoch, &e, &it);
            fprintf(f, "%lld,%lld,%.6f,%.6f\n", (long long)e, (long long)it, tr[k], va[k]);
        }
        if (fclose(f)) f = NULL;
        if (!f) {
            fprintf(stderr, PROG ": cannot write the history %s: %s\n", apath, strerror(errno));
            rc = -1;
        }
    } else if (rc == 0) {
        fprintf(stderr, PROG ": cannot write the history %s: %s\n", apath, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && g_say) printf("history: written to %s and %s\n", path, apath);
    free(apath);
    return rc;
}

/* ---- plot (gnuplot) ---- */

/* a gnuplot single-quoted string: '' stands for ' */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static int write_plot(const char *out, nb_solver *s, int64_t per_epoch, const char *title, double test_acc)
{
    if (!tool_on_path("gnuplot")) {
        fprintf(stderr, PROG ": gnuplot not found: install it with 'apt-get install gnuplot-nox' to get plots\n");
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096], loss_p[4200], acc_p[4200], script_p[4200];
    snprintf(dir, sizeof dir, "%s/nabla-train-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, PROG ": cannot create a temporary folder for the plot (%s): %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(loss_p, sizeof loss_p, "%s/loss.dat", dir);
    snprintf(acc_p, sizeof acc_p, "%s/acc.dat", dir);
    snprintf(script_p, sizeof script_p, "%s/plot.gp", dir);
    int64_t nl, nt, nv;
    const double *loss = nb_solver_loss_history(s, &nl);
    const double *tr = nb_solver_train_acc_history(s, &nt);
    const double *va = nb_solver_val_acc_history(s, &nv);
    int rc = -1;
    FILE *f = fopen(loss_p, "w");
    if (f) {
        fprintf(f, "# iteration loss running_average\n");
        double ema = 0;
        for (int64_t i = 0; i < nl; i++) {
            ema = EMA_BETA * ema + (1 - EMA_BETA) * loss[i];
            fprintf(f, "%lld %.9g %.9g\n", (long long)(i + 1), loss[i], ema / (1 - pow(EMA_BETA, (double)(i + 1))));
        }
        rc = fclose(f);
    }
    if (rc == 0 && (f = fopen(acc_p, "w"))) {
        fprintf(f, "# epoch train_acc val_acc\n");
        for (int64_t k = 0; k < nt && k < nv; k++) {
            int64_t e, it;
            check_position(k, per_epoch, &e, &it);
            fprintf(f, "%.6f %.6f %.6f\n", (double)it / (double)per_epoch, tr[k], va[k]);
        }
        rc = fclose(f);
    } else rc = -1;
    if (rc == 0 && (f = fopen(script_p, "w"))) {
        fprintf(f, "set terminal %s\nset output ", plot_terminal(out));
        gp_string(f, out);
        fputs("\nset multiplot layout 2,1 title ", f);
        gp_string(f, title);
        fputs("\nset grid\nset key top right\n"
              "set title 'training loss'\nset xlabel 'iteration'\nset ylabel 'loss'\n"
              "plot ", f);
        gp_string(f, loss_p);
        fputs(" using 1:2 with points pt 7 ps 0.3 lc rgb '#a0a0d0' title 'minibatch loss', \\\n     ", f);
        gp_string(f, loss_p);
        fputs(" using 1:3 with lines lw 2 lc rgb '#202080' title 'running average'\n"
              "set title 'accuracy'\nset xlabel 'epoch'\nset ylabel 'accuracy'\nset key bottom right\n"
              "set yrange [*:1]\n", f);
        if (nt > 0 && (double)(nt - 1) <= 20) fputs("set xtics 1\n", f);   /* whole epochs, not 0.5 steps */
        else fputs("set format x '%.0f'\n", f);
        fprintf(f, "test_acc = %.6f\nplot ", test_acc);
        gp_string(f, acc_p);
        fputs(" using 1:2 with linespoints pt 7 lw 2 title 'train', \\\n     ", f);
        gp_string(f, acc_p);
        fputs(" using 1:3 with linespoints pt 5 lw 2 title 'validation', \\\n"
              "     test_acc with lines dt 2 lw 2 lc rgb '#208020' title sprintf('test (final model) %.4f', test_acc)\n"
              "unset multiplot\nset output\n", f);
        rc = fclose(f);
    } else rc = -1;
    if (rc) fprintf(stderr, PROG ": cannot write the plot's files in %s: %s\n", dir, strerror(errno));
    if (rc == 0) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            execlp("gnuplot", "gnuplot", script_p, (char *)NULL);
            fprintf(stderr, PROG ": cannot run gnuplot: %s\n", strerror(errno));
            _exit(127);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0) {
            fprintf(stderr, PROG ": cannot run gnuplot: %s\n", strerror(errno));
            rc = -1;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, PROG ": gnuplot failed (%s %d); the plot %s was not written\n",
                    WIFEXITED(status) ? "exit status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                    out);
            rc = -1;
        } else {
            if (g_say) printf("plot: written to %s\n", out);
        }
    }
    remove(loss_p);
    remove(acc_p);
    remove(script_p);
    rmdir(dir);
    return rc;
}

/* ---- main ---- */

/* ---- weights in and out ---- */

/* --load-model / --eval: a --save-model file, or a Solver checkpoint's best parameters (its latest when
 * it has no best yet); strict, so a file of another model is refused with the names that differ */
static int load_weights(nb_model *m, const char *path, bool say)
{
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) return -1;
    const char *format = nb_safetensors_meta(st, "format"), *prefix = "";
    if (format && !strncmp(format, "nabla-solver", 12)) {
        prefix = "model.";
        for (int i = 0; i < st->n; i++)
            if (!strncmp(st->names[i], "best.", 5)) prefix = "best.";
    }
    nb_safetensors_free(st);
    nb_module_load_report r;
    if (nb_module_load(m->net, path, prefix, true, &r)) return -1;
    if (say)
        printf("weights: %d tensors from %s%s\n", r.loaded, path,
               !*prefix ? "" : !strcmp(prefix, "best.") ? " (the checkpoint's best)" : " (the checkpoint's latest)");
    return 0;
}

static const char *const class_names[][10] = {
    [DATA_FASHION] = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                       "Ankle boot" },
    [DATA_MNIST] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" },
    [DATA_CIFAR] = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" },
};

/* the test set's confusion matrix: rows the true class, columns the predicted one, and each class's recall */
static int print_confusion(nb_model *m, const nb_tensor *x, const nb_tensor *y, data_kind data)
{
    enum { C = 10 };
    int64_t counts[C][C] = { { 0 } };
    nb_scope *scope = nb_scope_new();
    if (!scope) return -1;
    nb_scope_push(scope);
    int rc = 0;
    const int64_t n = x->shape[0];
    for (int64_t start = 0; rc == 0 && start < n; start += DEFAULT_TEST_BATCH) {
        nb_tensor *scores = nb_model_scores(m, nb_take_rows(x, start, DEFAULT_TEST_BATCH));
        if (!scores || scores->shape[1] != C) {
            rc = -1;
            break;
        }
        for (int64_t r = 0; r < scores->shape[0]; r++) {
            int best = 0;
            for (int k = 1; k < C; k++)
                if (nb_get(scores, r * C + k) > nb_get(scores, r * C + best)) best = k;
            const int64_t label = (int64_t)nb_get(y, start + r);
            if (label >= 0 && label < C) counts[label][best]++;
        }
        nb_scope_reset(scope);
    }
    nb_scope_pop();
    nb_scope_free(scope);
    if (rc) return -1;
    printf("confusion matrix (test set; rows: true class, columns: predicted class)\n%-14s", "");
    for (int k = 0; k < C; k++) printf("%6d", k);
    printf("  recall\n");
    for (int t = 0; t < C; t++) {
        int64_t row = 0;
        printf("%d %-12s", t, class_names[data][t]);
        for (int k = 0; k < C; k++) printf("%6lld", (long long)counts[t][k]), row += counts[t][k];
        printf("  %.4f\n", row ? (double)counts[t][t] / (double)row : 0.0);
    }
    return 0;
}

static int g_rank;   /* under mpirun only rank 0 reports (errors name the failing rank) */

static int fail(const char *hint)
{
    if (g_rank != 0) return 1;
    fprintf(stderr, PROG ": %s\n", nb_last_error());
    if (hint) fprintf(stderr, PROG ": %s\n", hint);
    return 1;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);   /* pure parsing: nothing touches BLIS before set_threads */
    set_threads(&o, argv);
    nb_dist *dist = NULL;   /* under mpirun: data-parallel over the ranks; only rank 0 speaks and writes */
    if (nb_dist_launch(&argc, &argv, &dist)) return fail(NULL);
    const int rank = g_rank = nb_dist_rank(dist);
    if (rank != 0) o.quiet = true, o.history = o.plot = NULL;
    const bool say = g_say = !o.quiet;
    if (say)
        printf("threads: %d (BLIS_NUM_THREADS=%s, OMP_NUM_THREADS=%s%s%s)\n", o.threads, getenv("BLIS_NUM_THREADS"),
               getenv("OMP_NUM_THREADS"), getenv("OMP_WAIT_POLICY") ? ", OMP_WAIT_POLICY=" : "",
               getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "");
    if (say) {
        const nb_blas_config blas = nb_blas_info();
        printf("blas: %s (chosen by %s); kernels: %s\n", blas.config, blas.chosen_by, nb_isa_name(nb_isa_current()));
    }

    nb_dataset ds = { 0 };
    nb_model *model = NULL;
    nb_solver *solver = NULL;
    int status = 1;
    double t0 = now_s();
    int rc = o.data == DATA_CIFAR ? nb_dataset_load_cifar10(&ds, o.data_dir, NB_F32, o.val)
                                  : nb_dataset_load_mnist(&ds, o.data_dir, NB_F32, o.val);
    if (dist && nb_dist_check(dist, rc != 0)) rc = -1;   /* every rank loaded its data, or all stop */
    if (rc) {   /* the install hint only when the data set is not there at all, not for a corrupt file */
        char plain[4200], gz[4200];
        snprintf(plain, sizeof plain, "%s/train-images-idx3-ubyte", o.data_dir);
        snprintf(gz, sizeof gz, "%s/train-images-idx3-ubyte.gz", o.data_dir);
        struct stat st;
        const bool missing = stat(plain, &st) != 0 && stat(gz, &st) != 0;
        bool hint = o.data == DATA_FASHION && missing && !strcmp(o.data_dir, DEFAULT_FASHION_DIR);
        fail(hint ? "install Fashion-MNIST with 'apt-get install dataset-fashion-mnist' or pass --data-dir DIR" : NULL);
        goto out;
    }
    if ((o.standardize && nb_dataset_standardize(&ds)) || (o.mean_image && nb_dataset_subtract_mean_image(&ds))) {
        fail(NULL);
        goto out;
    }
    nb_tensor *train_x = ds.train_x, *train_y = ds.train_y, *val_x = ds.val_x, *val_y = ds.val_y;
    if (o.overfit) {
        if (o.overfit > train_x->shape[0]) {
            fprintf(stderr, PROG ": --overfit %lld: the training set has only %lld samples\n", (long long)o.overfit,
                    (long long)train_x->shape[0]);
            goto out;
        }
        /* views in the default scope, which is not reset before the end */
        train_x = val_x = nb_take_rows(ds.train_x, 0, o.overfit);
        train_y = val_y = nb_take_rows(ds.train_y, 0, o.overfit);
        if (!train_x || !train_y) {
            fail(NULL);
            goto out;
        }
    }
    if (say)
        printf("data: %s from %s: %lld train, %lld validation%s, %lld test (%.1f s to load%s)\n", data_names[o.data],
               o.data_dir, (long long)train_x->shape[0], (long long)val_x->shape[0],
               o.overfit ? " (the same samples: --overfit)" : "", (long long)ds.test_x->shape[0], now_s() - t0,
               o.standardize ? ", standardized" : o.mean_image ? ", mean image subtracted" : "");

    model = build_model(&o, train_x, ds.num_classes);
    if (!model || (dist && nb_dist_check(dist, !model))) {
        fail(NULL);
        goto out;
    }
    if (say) {
        char text[512];
        describe_model(&o, model, train_x, ds.num_classes, text, sizeof text);
        printf("model: %s\n", text);
    }
    if (o.load_model && load_weights(model, o.load_model, say)) {
        fail("--load-model and --eval need the model options the weights were trained with");
        goto out;
    }
    if (say && dist) {   /* what each step all-reduces: every parameter's gradient, once */
        double mib = (double)nb_module_numel(model->net, false) * 4 / (1 << 20);
        printf("distributed: %d ranks, %d thread%s each; every step all-reduces %.2f MiB of gradients in %.0f message%s\n",
               nb_dist_size(dist), o.threads, o.threads == 1 ? "" : "s", mib, ceil(mib / 4), ceil(mib / 4) == 1 ? "" : "s");
    }

    nb_solver_config cfg = nb_solver_defaults();
    cfg.optim = nb_optim_defaults(o.optimizer);
    cfg.optim.lr = o.lr;
    cfg.lr_decay = o.lr_decay;
    if (o.weight_decay_given) cfg.optim.weight_decay = o.weight_decay;
    cfg.lr_schedule = o.lr_schedule;
    cfg.lr_step_epochs = o.lr_step;
    cfg.lr_patience = o.patience;
    cfg.lr_min = o.lr_min;
    cfg.warmup_iterations = o.warmup;
    cfg.batch_size = o.batch_size;
    cfg.num_epochs = o.epochs;
    cfg.num_train_samples = o.num_train_samples;
    cfg.checkpoint_path = o.checkpoint;
    cfg.print_every = o.print_every;
    cfg.verbose = false;
    cfg.batch_mode = o.batch_mode;
    cfg.clip_norm = o.clip_norm;
    cfg.seed = o.seed;
    if (o.augment) {
        cfg.crop_pad = o.data == DATA_CIFAR ? 4 : 2;
        cfg.hflip = o.data == DATA_CIFAR;
    }
    /* a redrawn bar only on a terminal of one's own: under mpirun rank 0's pty is usually a log */
    const bool under_mpirun = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
    progress pr = { .o = &o, .tty = o.progress == PROGRESS_BAR ||
                                    (o.progress == PROGRESS_AUTO && isatty(STDOUT_FILENO) && !under_mpirun) };
    cfg.callback = on_progress;
    cfg.callback_ctx = &pr;
    cfg.dist = dist;
    if (!(solver = nb_solver_new(model, train_x, train_y, val_x, val_y, &cfg))) {
        fail(NULL);
        goto out;
    }
    /* iterations per epoch, as the solver's batcher counts them */
    int64_t n_train = train_x->shape[0];
    pr.per_epoch = o.batch_mode == NB_BATCH_SHUFFLE ? (n_train + o.batch_size - 1) / o.batch_size
                                                    : (n_train / o.batch_size > 1 ? n_train / o.batch_size : 1);
    if (o.resume) {
        rc = nb_solver_resume(solver, o.resume);   /* with ranks: all resume or none */
        if (rc) {
            fail("--resume needs a checkpoint written by " PROG " --checkpoint with the same model, data, batch and optimizer options");
            goto out;
        }
        if (say)
            printf("resumed from %s at epoch %lld (best val acc so far %.4f)\n", o.resume,
                   (long long)nb_solver_epoch(solver), nb_solver_best_val_acc(solver));
    }
    int64_t n_done;
    nb_solver_loss_history(solver, &n_done);
    pr.first_iteration = n_done + 1;
    if (say && o.epochs == 0)
        printf("no training (%s): the test accuracy of the model as %s\n", o.eval ? "--eval" : "--epochs 0",
               o.resume ? "resumed" : o.load_model ? "loaded" : "built");
    else if (say) {
        char schedule[160], decay[48] = "";
        if (o.lr_schedule == NB_LR_COSINE) snprintf(schedule, sizeof schedule, "cosine to %g", o.lr_min);
        else if (o.lr_schedule == NB_LR_PLATEAU)
            snprintf(schedule, sizeof schedule, "x%g after %lld epoch%s without a better val acc", o.lr_decay,
                     (long long)o.patience, o.patience == 1 ? "" : "s");
        else if (o.lr_step == 1) snprintf(schedule, sizeof schedule, "decay %g per epoch", o.lr_decay);
        else snprintf(schedule, sizeof schedule, "decay %g every %lld epochs", o.lr_decay, (long long)o.lr_step);
        if (o.warmup) snprintf(schedule + strlen(schedule), sizeof schedule - strlen(schedule), ", %lld warm-up iterations", (long long)o.warmup);
        if (cfg.optim.weight_decay > 0) snprintf(decay, sizeof decay, ", weight decay %g", cfg.optim.weight_decay);
        printf("training: %s lr %g%s (%s)%s, reg %g, batch %lld (%s), %lld epoch%s of %lld iteration%s%s%s\n",
               nb_optim_kind_name(o.optimizer), nb_solver_lr(solver), o.resume ? " (from the checkpoint)" : "", schedule, decay, o.reg, (long long)o.batch_size,
               o.batch_mode == NB_BATCH_SHUFFLE ? "shuffled" : "sampled with replacement", (long long)o.epochs,
               o.epochs == 1 ? "" : "s", (long long)pr.per_epoch, pr.per_epoch == 1 ? "" : "s", o.augment ? (o.data == DATA_CIFAR ? ", augmented (crop pad 4, flips)" : ", augmented (crop pad 2)") : "",
               o.clip_norm > 0 ? ", gradient norm clipped" : "");
    }
    fflush(stdout);

    struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    double t_train = now_s();
    pr.last_call = pr.last_draw = pr.epoch_start = t_train;
    nb_set_anomaly_mode(o.detect_anomaly);
    rc = nb_solver_train(solver);
    nb_set_anomaly_mode(false);
    t_train = now_s() - t_train;
    signal(SIGINT, SIG_DFL);
    clear_bar(&pr);
    if (rc < 0) {
        fail(NULL);
        goto out;
    }
    if (rc == 1 && say) printf("interrupted: testing the current parameters\n");
    if (say && pr.epochs_run > 0)
    {
        char speed[64] = "";
        if (pr.step_s > 0)
            snprintf(speed, sizeof speed, ", %.0f img/s when training", (double)pr.step_n * (double)o.batch_size / pr.step_s);
        printf("trained %lld epoch%s in %.1f s (%.1f s per epoch%s); best val acc %.4f\n", (long long)pr.epochs_run,
               pr.epochs_run == 1 ? "" : "s", t_train, pr.train_s / (double)pr.epochs_run, speed,
               nb_solver_best_val_acc(solver));
    }
    else if (say && rc == 0 && o.epochs > 0)
        printf("nothing to train: the checkpoint is already at epoch %lld of %lld\n", (long long)nb_solver_epoch(solver),
               (long long)o.epochs);

    int late = 0;   /* a history or plot failure: reported, the test still runs, exit 1 */
    if (o.history && write_history(o.history, solver, pr.per_epoch)) late = 1;
    double acc;   /* with ranks, each one's share of the test set */
    if (dist ? nb_solver_accuracy(solver, ds.test_x, ds.test_y, 0, &acc)
             : nb_model_accuracy(model, ds.test_x, ds.test_y, DEFAULT_TEST_BATCH, &acc)) {
        fail(NULL);
        goto out;
    }
    if (o.plot) {
        char title[256];
        snprintf(title, sizeof title, "nabla-train: %s on %s", model->name, data_names[o.data]);
        if (write_plot(o.plot, solver, pr.per_epoch, title, acc)) late = 1;
    }
    if (o.save_model && rank == 0) {
        if (nb_module_save(model->net, o.save_model)) late = fail(NULL);
        else if (say) printf("model saved to %s\n", o.save_model);
    }
    if (o.eval && rank == 0 && print_confusion(model, ds.test_x, ds.test_y, o.data)) {
        fail(NULL);
        goto out;
    }
    if (rank == 0) printf("test accuracy: %.4f\n", acc);
    status = rc == 1 ? 130 : late;
out:
    fflush(stdout);
    nb_solver_free(solver);
    nb_model_free(model);
    nb_dataset_free(&ds);
    nb_dist_finish(dist);
    nb_cleanup();
    return status;
}
