/* nabla-bench: the performance benchmark of issue 5. Times nabla's training step (forward + backward
 * through nb_model_loss + one Adam step, synthetic data, fixed seed, the step's scope reset after it)
 * on the workloads below and prints, per workload, the median and spread of ms per step, images/s,
 * the GFLOP/s achieved and the peak resident memory. Every workload runs in a forked child, so its
 * peak RSS (getrusage ru_maxrss, read with wait4) is its own.
 *
 *   W1      MLP 3072 -> [100,100,100,100] -> 10, ReLU, softmax loss, L2 reg; batch 200
 *   W2      W1 with batchnorm after each hidden affine and dropout (keep 0.5)
 *   W3-b50  ThreeLayerConvNet 3x32x32: conv 32 filters 7x7 pad 3, ReLU, 2x2 max pool, affine 100,
 *   W3-b128   ReLU, affine 10; batch 50 and batch 128
 *   W4      nb_resnet defaults (3x32x32, 16/32/64 channels, 2 blocks per stage); batch 64
 *   W5      graph overhead: a chain of 1000 elementwise ops (add, mul, relu in turn) on 8-element f32
 *           tensors that require grad, forward + backward: microseconds per op
 *   W6      (--w6) wall time of nabla-train's default run (3 epochs of its convnet on Fashion-MNIST)
 *           and its printed test accuracy, against the 0.90 target
 *   W7      a GPT (nb_gpt: 4 layers, width 256, 4 heads, context 128, vocabulary 256) on batches of
 *           8 x 128 random bytes, AdamW: one training step (nb_gpt_loss, backward, step). With
 *           --vs-torch also the first 20 losses from the same weights and batch as PyTorch's (files in a
 *           temporary folder, bench_torch.py --agree): a relative difference above 1e-4 fails the run
 *
 * --vs-torch runs tools/bench_torch.py (the same workloads in PyTorch) for each workload in
 * alternation with nabla (nabla, torch, nabla, torch, ... for --rounds rounds) and prints the ratio
 * of the medians, nabla / PyTorch. PyTorch is optional: without it the comparison is skipped. The BLIS
 * inside PyTorch is given nabla's BLIS sub-configuration (BLIS_ARCH_TYPE), so both run the same kernels.
 *
 * --contended starts a busy process of its own (a child spinning on one CPU) and times each step at 1
 * thread and at --threads N in turn beside it: with a CPU taken by someone else, N threads should be
 * about as fast as one (nabla narrows its threads to the CPUs left free), never much slower.
 *
 * FLOPs are counted analytically: the multiply-adds of every matrix product and convolution of the
 * forward pass (2 FLOPs each), counted 3 times for forward + backward (the input gradient and the
 * weight gradient each cost one forward product) -- except the first layer of W1-W4, whose input is
 * the data: it needs no gradient and nabla computes none, so that layer counts twice (forward and
 * weight gradient). Elementwise ops, pooling, normalisation and the optimizer are not counted.
 *
 * The peak: before the workloads, a child times a float32 FMA loop in the widest vectors the CPU has
 * (many independent accumulators, so only the FMA units' throughput limits it) on 1 thread and as N
 * copies on N threads at once; each workload's GFLOP/s is also given as a % of the peak at its thread
 * count. */
#include <nabla/nabla.h>

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <blis.h>
#include <jansson.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "nabla-bench"
#define PYTHON "/usr/bin/python3"
#ifndef NABLA_BENCH_TORCH_SCRIPT
#define NABLA_BENCH_TORCH_SCRIPT ""
#endif
#ifndef NABLA_BENCH_TORCH_SCRIPT_INSTALLED
#define NABLA_BENCH_TORCH_SCRIPT_INSTALLED ""
#endif

#define SEED 42
#define W1_REG 1e-2
#define W5_OPS 1000
#define W5_SIZE 8
#define W6_TARGET 0.90
#define MAX_REPS 100000

/* ---- the workloads ---- */

typedef enum { K_MLP, K_MLP_BN_DROP, K_CONVNET, K_RESNET, K_CHAIN, K_TRAIN, K_GPT } wl_kind;

typedef struct {
    const char *name;
    wl_kind kind;
    int64_t batch;
    const char *what;
} workload;

static const workload workloads[] = {
    { "W1", K_MLP, 200, "MLP 3072-100x4-10, ReLU, L2 reg" },
    { "W2", K_MLP_BN_DROP, 200, "W1 + batchnorm + dropout 0.5" },
    { "W3-b50", K_CONVNET, 50, "ThreeLayerConvNet 32x7x7, pool, 100" },
    { "W3-b128", K_CONVNET, 128, "ThreeLayerConvNet 32x7x7, pool, 100" },
    { "W4", K_RESNET, 64, "ResNet 16/32/64, 2 blocks per stage" },
    { "W5", K_CHAIN, 0, "chain of 1000 add/mul/relu on 8 floats" },
    { "W6", K_TRAIN, 64, "nabla-train default run to 0.90 test acc" },
    { "W7", K_GPT, 8, "GPT L4 C256 H4 T128 V256, AdamW" },
};
#define N_WORKLOADS ((int)(sizeof workloads / sizeof workloads[0]))

static const int64_t mlp_hidden[4] = { 100, 100, 100, 100 };

/* W7's GPT: batch 8 of 128 bytes */
static nb_gpt_config w7_config(void)
{
    nb_gpt_config c = nb_gpt_defaults();
    c.vocab_size = 256, c.max_seq_len = 128, c.n_layer = 4, c.n_head = 4, c.n_embd = 256, c.seed = SEED;
    return c;
}

/* forward FLOPs of a convolution (2 per multiply-add) */
static double conv_flops(int64_t n, int64_t c, int64_t f, int64_t k, int64_t ho, int64_t wo)
{
    return 2.0 * (double)n * (double)f * (double)c * (double)(k * k) * (double)(ho * wo);
}

/* FLOPs of one training step, by the rule of the top comment: the first layer's forward FLOPs twice,
 * the others' three times; 0 for W5 and W6 */
static double step_flops(const workload *w)
{
    const double n = (double)w->batch;
    double first = 0, rest = 0;   /* forward FLOPs of the layer that reads the data, of all the others */
    switch (w->kind) {
    case K_MLP:
    case K_MLP_BN_DROP:
        first = 2.0 * n * 3072 * (double)mlp_hidden[0];
        for (int i = 1; i <= 4; i++) rest += 2.0 * n * (double)mlp_hidden[i - 1] * (double)(i < 4 ? mlp_hidden[i] : 10);
        break;
    case K_CONVNET: {
        nb_convnet_config c = nb_convnet_defaults();
        double pooled = (double)(c.num_filters * (c.in_h / 2) * (c.in_w / 2));
        first = conv_flops(w->batch, c.in_c, c.num_filters, c.filter_size, c.in_h, c.in_w);
        rest = 2.0 * n * (pooled * (double)c.hidden_dim + (double)(c.hidden_dim * c.num_classes));
        break;
    }
    case K_RESNET: {
        nb_resnet_config c = nb_resnet_defaults();
        int64_t h = c.in_h, wd = c.in_w, in = c.widths[0];
        first = conv_flops(w->batch, c.in_c, in, 3, h, wd);
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < c.blocks_per_stage; b++) {
                int stride = s > 0 && b == 0 ? 2 : 1;
                int64_t out = c.widths[s];
                int64_t ho = 1 + (h + 2 - 3) / stride, wo = 1 + (wd + 2 - 3) / stride;
                rest += conv_flops(w->batch, in, out, 3, ho, wo);          /* conv1 */
                rest += conv_flops(w->batch, out, out, 3, ho, wo);         /* conv2 */
                if (stride != 1 || in != out) rest += conv_flops(w->batch, in, out, 1, ho, wo);   /* shortcut */
                h = ho;
                wd = wo;
                in = out;
            }
        rest += 2.0 * n * (double)(in * c.num_classes);
        break;
    }
    case K_GPT: {
        /* per token and layer the four linear maps (3C² + C² + 4C² + 4C² multiply-adds), per layer the
         * attention's two products over the causal half of the T×T scores, T·(T+1)/2 (the fused kernel
         * skips the rest; its tiles compute a little more than that, which is not counted), then the
         * tied output projection; the embeddings read the data (no products) */
        const nb_gpt_config c = w7_config();
        const double tokens = n * (double)c.max_seq_len, C = (double)c.n_embd, T = (double)c.max_seq_len;
        rest = (double)c.n_layer * (2.0 * tokens * 12 * C * C + 2.0 * 2 * n * (T * (T + 1) / 2) * C) +
               2.0 * tokens * C * (double)c.vocab_size;
        break;
    }
    default:
        break;
    }
    return 2 * first + 3 * rest;
}

/* ---- options ---- */

typedef struct {
    int reps, warmup, threads, rounds;
    const char *json, *only, *torch_script, *train_bin;
    bool vs_torch, w6, fused_bn, fused_conv, matmul, scaling, contended;
    bool selected[N_WORKLOADS];
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTION]...\n"
        "Times nabla's training step (forward + backward + Adam, synthetic data) on the benchmark workloads\n"
        "and prints per workload the median and spread of ms per step, images/s, GFLOP/s (also as a %% of the\n"
        "core's float32 FMA peak, measured in the same run) and peak RSS.\n"
        "\n"
        "Workloads: W1 MLP (batch 200), W2 MLP + batchnorm + dropout (batch 200), W3-b50 and W3-b128\n"
        "ThreeLayerConvNet (batch 50, 128), W4 ResNet (batch 64), W5 graph overhead (1000 ops on 8 floats),\n"
        "W6 time to accuracy of nabla-train's default run (only with --w6), W7 a GPT (4 layers, width 256,\n"
        "context 128; batch 8), AdamW.\n"
        "\n"
        "  --reps N           timed steps per workload (per round with --vs-torch) (default 20)\n"
        "  --warmup N         untimed steps before them (default 3)\n"
        "  --threads N        BLIS/OpenMP threads, for nabla and PyTorch alike (default: $BLIS_NUM_THREADS\n"
        "                     if set, else 1; --contended: else the CPU count, at least 2)\n"
        "  --only LIST        comma-separated workloads, e.g. W1,W3 (W3 = W3-b50 and W3-b128)\n"
        "  --w6               also run W6 (minutes: a full nabla-train run; Fashion-MNIST must be installed)\n"
        "  --json FILE        also write the results as JSON to FILE ('-' = stdout, the table then goes to stderr)\n"
        "  --vs-torch         run the same workloads in PyTorch (" PYTHON " tools/bench_torch.py), alternating\n"
        "                     with nabla, and print the ratio nabla/PyTorch of the medians; PyTorch's BLIS gets\n"
        "                     nabla's sub-configuration (BLIS_ARCH_TYPE, unless you set it)\n"
        "  --rounds N         --vs-torch: rounds of alternation; --scaling, --contended: runs (default 3)\n"
        "  --torch-script F   the PyTorch script (default: the project's tools/bench_torch.py)\n"
        "  --nabla-train F    the nabla-train binary for W6 (default: next to this program)\n"
        "  --bn fused|composed  W2 and W4: batchnorm kernel (default fused)\n"
        "  --conv fused|composed  W3 and W4: convolution kernel (default fused)\n"
        "  --matmul             also time nb_matmul (forward and both backward products) against raw BLIS\n"
        "  --scaling          instead of the table: each workload's step at 1 thread, at --threads N (at least 2)\n"
        "                     and as N independent 1-thread copies at once, in turn, step by step in one process,\n"
        "                     for --rounds runs; prints the medians, the speed-up, the machine's ceiling (from the\n"
        "                     copies) and the CPU use of the N-thread steps\n"
        "  --contended        instead of the table: starts a busy process (one spinning CPU) and times each\n"
        "                     workload's step at 1 thread and at --threads N (at least 2) beside it, in turn, for\n"
        "                     --rounds runs; prints the medians, the speed-up (target at least 0.9: N threads about\n"
        "                     as fast as 1), the threads nabla used (nb_num_threads) and the CPU use of the N-thread\n"
        "                     steps\n"
        "  -h, --help         this text\n"
        "\n"
        "The header gives the BLIS sub-configuration and who chose it, nabla's kernel level, and the peak: a\n"
        "float32 FMA loop in the widest vectors the CPU has, at 1 thread and as N copies on --threads N.\n"
        "\n"
        "JSON, besides each workload's times: peak_gflops (the peak at 1 thread), peak_gflops_threads (at\n"
        "--threads N; the same when N = 1), peak_vector_bits, blas_config (e.g. \"skx\"), blas_chosen_by\n"
        "(nabla, user or blis), isa (generic, avx2, avx512), mode (table, scaling, contended); per workload\n"
        "gflops and percent_of_peak (of the peak at its thread count). --scaling and --contended: threads_1\n"
        "and threads_n hold them too, and threads_used ({median, min, max}: nb_num_threads after the N-thread\n"
        "steps). --vs-torch: torch_blis_arch_type, the BLIS_ARCH_TYPE the PyTorch script saw.\n");
}

#define bad_usage(...) tool_bad_usage(PROG, __VA_ARGS__)

static int parse_int(const char *opt, const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) bad_usage("%s: expected an integer from %d to %d, got '%s'", opt, lo, hi, s);
    return (int)v;
}

/* W3 selects W3-b50 and W3-b128; otherwise exact names (case-insensitive) */
/* "fused" or "composed" */
static bool parse_fused(const char *opt, const char *s)
{
    if (!strcmp(s, "fused")) return true;
    if (!strcmp(s, "composed")) return false;
    bad_usage("%s: expected fused or composed, got '%s'", opt, s);
}

static void parse_only(const char *list, bool *sel)
{
    char *copy = strdup(list);
    if (!copy) bad_usage("out of memory");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool any = false;
        for (int i = 0; i < N_WORKLOADS; i++) {
            size_t n = strlen(tok);
            if (!strcasecmp(tok, workloads[i].name) ||
                (!strncasecmp(tok, workloads[i].name, n) && workloads[i].name[n] == '-')) {
                sel[i] = true;
                any = true;
            }
        }
        if (!any) bad_usage("--only: unknown workload '%s' (expected W1, W2, W3, W3-b50, W3-b128, W4, W5, W6, W7)", tok);
    }
    free(copy);
}

/* --scaling and --contended time each step in turns at different thread counts */
static bool in_turns(const options *o) { return o->scaling || o->contended; }
static const char *turns_mode(const options *o) { return o->scaling ? "--scaling" : "--contended"; }

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){ .reps = 20, .warmup = 3, .rounds = 3, .fused_bn = true, .fused_conv = true };
    static const struct option longopts[] = {
        { "reps", required_argument, NULL, 'r' },        { "warmup", required_argument, NULL, 'u' },
        { "threads", required_argument, NULL, 't' },     { "only", required_argument, NULL, 'o' },
        { "w6", no_argument, NULL, '6' },                { "json", required_argument, NULL, 'j' },
        { "vs-torch", no_argument, NULL, 'v' },          { "rounds", required_argument, NULL, 'n' },
        { "torch-script", required_argument, NULL, 's' }, { "nabla-train", required_argument, NULL, 'b' },
        { "bn", required_argument, NULL, 'B' },          { "conv", required_argument, NULL, 'C' },
        { "matmul", no_argument, NULL, 'M' },            { "scaling", no_argument, NULL, 'S' },
        { "contended", no_argument, NULL, 'c' },         { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (c) {
        case 'r': o->reps = parse_int("--reps", optarg, 1, MAX_REPS); break;
        case 'u': o->warmup = parse_int("--warmup", optarg, 0, MAX_REPS); break;
        case 't': o->threads = parse_int("--threads", optarg, 1, 1024); break;
        case 'o': o->only = optarg; break;
        case '6': o->w6 = true; break;
        case 'j': o->json = optarg; break;
        case 'v': o->vs_torch = true; break;
        case 'n': o->rounds = parse_int("--rounds", optarg, 1, 1000); break;
        case 's': o->torch_script = optarg; break;
        case 'b': o->train_bin = optarg; break;
        case 'B': o->fused_bn = parse_fused("--bn", optarg); break;
        case 'C': o->fused_conv = parse_fused("--conv", optarg); break;
        case 'M': o->matmul = true; break;
        case 'S': o->scaling = true; break;
        case 'c': o->contended = true; break;
        case 'h': usage(stdout); exit(0);
        default:
            if (optopt) bad_usage("option '-%c' is unknown or needs a value", optopt);
            bad_usage("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) bad_usage("unexpected argument '%s'", argv[optind]);
    if (o->scaling && o->contended) bad_usage("--scaling and --contended: one at a time");
    if (in_turns(o) && (o->vs_torch || o->w6 || o->matmul))
        bad_usage("%s: not with --vs-torch, --w6 or --matmul", turns_mode(o));
    if (o->only) parse_only(o->only, o->selected);
    else
        for (int i = 0; i < N_WORKLOADS; i++) o->selected[i] = workloads[i].kind != K_TRAIN;
    if (o->w6)
        for (int i = 0; i < N_WORKLOADS; i++)
            if (workloads[i].kind == K_TRAIN) o->selected[i] = true;
}

/* one thread unless told otherwise (--contended: all CPUs, at least 2, as a program that takes the whole
 * machine would); see tools/cli.h for the environment it sets */
static void set_threads(options *o, char **argv)
{
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = tool_set_threads(o->threads, o->contended ? (cpus > 2 ? (int)cpus : 2) : 1, argv);
}

/* ---- timing and statistics ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double median, q1, q3, min, max; int n; } stats;

static double quantile(const double *sorted, int n, double q)
{
    double pos = q * (double)(n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

static stats stats_of(const double *v, int n)
{
    stats s = { NAN, NAN, NAN, NAN, NAN, n };
    if (n <= 0) return s;
    double *c = malloc(sizeof *c * (size_t)n);
    if (!c) return s;
    memcpy(c, v, sizeof *c * (size_t)n);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    s = (stats){ quantile(c, n, 0.5), quantile(c, n, 0.25), quantile(c, n, 0.75), c[0], c[n - 1], n };
    free(c);
    return s;
}

/* ---- the nabla side, in a forked child ---- */

typedef struct { int n, cap; nb_tensor **p; } param_list;

static int collect_param(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    param_list *pl = ctx;
    if (is_buffer) return 0;
    if (pl->n == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 64;
        nb_tensor **p = realloc(pl->p, sizeof *p * (size_t)cap);
        if (!p) return -1;
        pl->p = p;
        pl->cap = cap;
    }
    pl->p[pl->n++] = t;
    return 0;
}

static nb_model *build_model(const workload *w, const options *o, nb_rng *rng)
{
    switch (w->kind) {
    case K_MLP:
    case K_MLP_BN_DROP: {
        nb_fc_config c = nb_fc_defaults();
        c.n_hidden = 4;
        c.hidden_dims = mlp_hidden;
        c.input_dim = 3072;
        c.num_classes = 10;
        c.reg = W1_REG;
        c.seed = SEED;
        if (w->kind == K_MLP_BN_DROP) {
            c.norm = NB_NORM_BATCH;
            c.keep_prob = 0.5;
            c.fused_bn = o->fused_bn;
        }
        return nb_fully_connected_net(&c);
    }
    case K_CONVNET: {
        nb_convnet_config c = nb_convnet_defaults();
        c.fused_conv = o->fused_conv;
        return nb_three_layer_convnet(&c, rng);
    }
    case K_RESNET: {
        nb_resnet_config c = nb_resnet_defaults();
        c.fused_bn = o->fused_bn;
        c.fused_conv = o->fused_conv;
        return nb_resnet(&c, rng);
    }
    default:
        return NULL;
    }
}

/* the W5 chain: add, mul, relu in turn with a second 8-element leaf, then a sum; forward + backward */
static int chain_step(nb_tensor *x, nb_tensor *w)
{
    nb_zero_grad(x);
    nb_zero_grad(w);
    nb_tensor *h = x;
    for (int i = 0; h && i < W5_OPS; i++) h = i % 3 == 0 ? nb_add(h, w) : i % 3 == 1 ? nb_mul(h, w) : nb_relu(h);
    nb_tensor *loss = h ? nb_sum(h) : NULL;
    return loss ? nb_backward(loss) : -1;
}

/* one copy of a workload's training: its model, optimizer, data and the scope of its steps */
typedef struct {
    nb_scope *scope;
    nb_model *model;
    nb_optimizer *opt;
    nb_tensor *x, *y, *cw;   /* cw: W5's chain weight */
    nb_module *gpt;          /* W7 */
    param_list pl;
} job;

static int job_init(job *j, const workload *w, const options *o)
{
    *j = (job){ 0 };
    nb_rng rng;
    nb_rng_seed(&rng, SEED);
    if (!(j->scope = nb_scope_new())) return -1;
    if (w->kind == K_CHAIN) {
        /* x ~ U(0.5, 1.5), w ~ U(0.95, 1.05): the values stay positive and bounded along the chain */
        j->x = nb_param(nb_rand(NB_F32, NB_SHAPE(W5_SIZE), &rng, 0.5, 1.5));
        j->cw = nb_param(nb_rand(NB_F32, NB_SHAPE(W5_SIZE), &rng, 0.95, 1.05));
        return j->x && j->cw ? 0 : -1;
    }
    if (w->kind == K_GPT) {   /* random bytes in, random bytes to predict; AdamW's defaults */
        const nb_gpt_config c = w7_config();
        j->x = nb_persist(nb_cast(nb_rand(NB_F64, NB_SHAPE(w->batch, c.max_seq_len), &rng, 0, 256), NB_I64));
        j->y = nb_persist(nb_cast(nb_rand(NB_F64, NB_SHAPE(w->batch, c.max_seq_len), &rng, 0, 256), NB_I64));
        if (!j->x || !j->y || !(j->gpt = nb_gpt(&c)) || nb_module_visit(j->gpt, collect_param, &j->pl)) return -1;
        return (j->opt = nb_optimizer_new(nb_optim_defaults(NB_ADAMW), j->pl.n, j->pl.p, NULL)) ? 0 : -1;
    }
    if (!(j->model = build_model(w, o, &rng))) return -1;
    nb_shape xs = w->kind == K_MLP || w->kind == K_MLP_BN_DROP ? NB_SHAPE(w->batch, 3072) : NB_SHAPE(w->batch, 3, 32, 32);
    j->x = nb_persist(nb_randn(NB_F32, xs, &rng, 1.0));
    j->y = nb_persist(nb_arange(NB_I64, 0, (double)w->batch, 1));
    int rc = j->x && j->y ? 0 : -1;
    for (int64_t i = 0; !rc && i < w->batch; i++) rc = nb_set(j->y, i, (double)(nb_rng_next(&rng) % 10));
    if (!rc) rc = nb_module_visit(j->model->net, collect_param, &j->pl);
    if (!rc) rc = (j->opt = nb_optimizer_new(nb_optim_defaults(NB_ADAM), j->pl.n, j->pl.p, NULL)) ? 0 : -1;
    return rc;
}

static void job_free(job *j)
{
    free(j->pl.p);
    nb_optimizer_free(j->opt);
    nb_model_free(j->model);
    nb_module_free(j->gpt);
    nb_free(j->x);
    nb_free(j->y);
    nb_free(j->cw);
    nb_scope_free(j->scope);
}

/* one training step of w (W5: one chain), its graph freed after it */
static int train_step(const workload *w, job *j)
{
    int rc;
    nb_scope_push(j->scope);
    if (w->kind == K_CHAIN) rc = chain_step(j->x, j->cw);
    else if (w->kind == K_GPT) {
        nb_optimizer_zero_grad(j->opt);
        nb_tensor *loss = nb_gpt_loss(nb_module_forward(j->gpt, j->x), j->y);
        rc = loss && isfinite(nb_item(loss)) && nb_backward(loss) == 0 ? nb_optimizer_step(j->opt) : -1;
    } else {
        nb_tensor *loss = nb_model_loss(j->model, j->x, j->y);
        rc = loss && isfinite(nb_item(loss)) ? nb_optimizer_step(j->opt) : -1;
    }
    nb_scope_pop();
    nb_scope_reset(j->scope);
    return rc;
}

/* N independent 1-thread steps at once, one per copy (the machine's ceiling for N threads); 0 or -1 */
static int copies_step(const workload *w, job *jobs, int n)
{
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(n) reduction(| : failed)
    {
        if (omp_get_num_threads() != n) {   /* fewer threads than copies: the ceiling would be wrong */
            if (omp_get_thread_num() == 0)
                fprintf(stderr, PROG ": %s: the OpenMP runtime gave %d threads for %d copies\n", w->name, omp_get_num_threads(), n);
            failed = 1;
        } else if (train_step(w, &jobs[omp_get_thread_num()])) {   /* the error is this thread's */
            fprintf(stderr, PROG ": %s, copy %d: %s\n", w->name, omp_get_thread_num(), nb_last_error());
            failed = 1;
        }
    }
#else
    (void)w, (void)jobs, (void)n, failed = 1;   /* unreachable: --scaling needs OpenMP */
#endif
    return failed ? -1 : 0;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* what a child measures: plain runs time each step (AT_ONE); --contended runs each step in two turns
 * (AT_ONE, AT_N), --scaling in three (and COPIES) */
enum { AT_ONE, AT_N, COPIES, TURNS };

static int turns(const options *o) { return o->scaling ? TURNS : o->contended ? 2 : 1; }

/* the doubles a child writes: reps step times (s) per turn, turn after turn; with turns, then reps
 * process CPU seconds of the AT_N steps and reps nb_num_threads() after them */
static int child_values(const options *o) { return o->reps * (turns(o) + (turns(o) > 1 ? 2 : 0)); }

/* writes n bytes to fd; 0 or -1 */
static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

typedef struct { const workload *w; const options *o; } bench_arg;

/* runs warmup + reps steps of a bench_arg's workload and writes child_values to fd; exit status 0 or 1.
 * With turns every step runs at 1 thread and at N threads, and with --scaling as N copies at once (N
 * jobs, 1 thread each) too, rotating which goes first, so that all turns see the machine at the same
 * moments. */
static int child_run(const void *arg, int fd)
{
    const workload *w = ((const bench_arg *)arg)->w;
    const options *o = ((const bench_arg *)arg)->o;
    const int copies = o->scaling ? o->threads : 1, nt = turns(o);
    job *jobs = calloc((size_t)copies, sizeof *jobs);
    double *values = malloc(sizeof *values * (size_t)child_values(o));
    int rc = jobs && values ? 0 : -1, made = 0;
    for (; !rc && made < copies; made++) rc = job_init(&jobs[made], w, o);
    for (int i = 0; !rc && i < o->warmup + o->reps; i++) {
        const int rep = i - o->warmup;
        for (int k = 0; !rc && k < nt; k++) {
            const int turn = o->scaling ? (i + k) % TURNS : k;   /* two turns simply alternate: 1, N, 1, N, ... */
            if (nt > 1) nb_set_num_threads(turn == AT_N ? o->threads : 1);
            double t0 = now_s(), c0 = cpu_s();
            rc = turn == COPIES ? copies_step(w, jobs, copies) : train_step(w, &jobs[0]);
            double t = now_s() - t0, c = cpu_s() - c0;
            if (rep < 0) continue;
            values[rep + turn * o->reps] = t;
            if (turn == AT_N) {
                values[rep + nt * o->reps] = c;
                values[rep + (nt + 1) * o->reps] = nb_num_threads();   /* what the next op would use */
            }
        }
    }
    if (rc) fprintf(stderr, PROG ": %s: %s\n", w->name, *nb_last_error() ? nb_last_error() : "the loss is not finite, or a copy failed");
    else rc = write_all(fd, values, sizeof *values * (size_t)child_values(o));
    free(values);
    for (int k = 0; k < made; k++) job_free(&jobs[k]);
    free(jobs);
#pragma omp parallel num_threads(copies)
    nb_cleanup();   /* each thread's scratch */
    return rc ? 1 : 0;
}

/* reads fd to EOF into a malloc'ed buffer (NUL-terminated); *len gets the length */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

typedef struct {
    double *ms;      /* per step, all rounds (with turns: the 1-thread steps) */
    int n;
    double *many, *copies, *cpu, *used;   /* turns: the N-thread steps and (--scaling) N copies' steps (ms), the
                                           * N-thread steps' CPU use (%) and the threads nabla used then */
    int n_many, n_copies, n_cpu, n_used;
    long rss_kib;    /* the largest peak RSS of the runs */
    bool ok;
} run_result;

/* appends k values to the array *v of *n */
static void append(double **v, int *n, const double *add, int k)
{
    double *p = realloc(*v, sizeof *p * (size_t)(*n + k));
    if (!p) return;
    *v = p;
    memcpy(p + *n, add, sizeof *p * (size_t)k);
    *n += k;
}

static void result_free(run_result *r)
{
    free(r->ms);
    free(r->many);
    free(r->copies);
    free(r->cpu);
    free(r->used);
}

/* waits for pid; status and the child's peak RSS (KiB) */
static int wait_child(pid_t pid, long *rss_kib)
{
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) return -1;
    if (rss_kib) *rss_kib = ru.ru_maxrss;
    return status;
}

static bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

/* runs body(arg, fd) in a forked child that exits with body's status (or dies with this process);
 * returns what the child wrote to fd (malloc'ed, NUL-terminated, *len bytes) or NULL; *status is its
 * wait status (-1: it did not run) and *rss_kib its peak RSS */
static char *in_child(int (*body)(const void *arg, int fd), const void *arg, size_t *len, int *status, long *rss_kib)
{
    int fds[2];
    *status = -1;
    if (pipe(fds)) {
        fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
        return NULL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* nobody would read its results */
        close(fds[0]);
        int st = body(arg, fds[1]);
        fflush(NULL);
        _exit(st);
    }
    close(fds[1]);
    char *buf = read_all(fds[0], len);
    close(fds[0]);
    *status = wait_child(pid, rss_kib);
    return buf;
}

static bool run_nabla(const workload *w, const options *o, run_result *res)
{
    const bench_arg arg = { w, o };
    size_t len = 0;
    int status;
    long rss = 0;
    char *buf = in_child(child_run, &arg, &len, &status, &rss);
    const int reps = o->reps, nt = turns(o);
    bool ok = buf && exited_ok(status) && len == sizeof(double) * (size_t)child_values(o);
    if (ok) {
        double *v = (double *)(void *)buf;   /* see child_values */
        if (nt > 1)
            for (int i = 0; i < reps; i++) v[nt * reps + i] *= 100 / v[AT_N * reps + i];
        for (int i = 0; i < nt * reps; i++) v[i] *= 1e3;
        append(&res->ms, &res->n, v + AT_ONE * reps, reps);
        if (nt > 1) {
            append(&res->many, &res->n_many, v + AT_N * reps, reps);
            append(&res->cpu, &res->n_cpu, v + nt * reps, reps);
            append(&res->used, &res->n_used, v + (nt + 1) * reps, reps);
        }
        if (nt > COPIES) append(&res->copies, &res->n_copies, v + COPIES * reps, reps);
        if (rss > res->rss_kib) res->rss_kib = rss;
    } else if (status >= 0 && WIFSIGNALED(status)) {
        fprintf(stderr, PROG ": %s: the benchmark process died of signal %d\n", w->name, WTERMSIG(status));
    }
    free(buf);
    res->ok = ok;
    return ok;
}

/* ---- the core's float32 FMA peak ---- */

/* independent FMA chains in the loop: enough to keep every FMA pipe busy through the FMA latency (Zen 5:
 * 2 pipes x 4 cycles), few enough for AVX2's 16 vector registers beside the two operands */
#define PEAK_CHAINS 12
#define PEAK_TRIES 5        /* timed loops per thread count, for the median */
#define PEAK_SECONDS 0.06   /* each */

/* iters rounds of acc = acc * m + (1 - m) on every chain (it stays near 1: no overflow, no denormals),
 * one FMA per vector with fp-contract; noipa hides m from the compiler. Returns the accumulators' sum,
 * so that the loop is kept. One definition per vector width: */
#define DEFINE_FMA_LOOP(name, bytes, target_attr)                                                           \
    __attribute__((noipa, optimize("fp-contract=fast"))) target_attr static float name(long iters, float m) \
    {                                                                                                       \
        typedef float vec __attribute__((vector_size(bytes)));                                              \
        const vec mv = (vec){ 0 } + m, av = (vec){ 0 } + (1 - m);                                           \
        vec acc[PEAK_CHAINS];                                                                               \
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = (vec){ 0 } + (float)i;                               \
        for (long it = 0; it < iters; it++)                                                                 \
            _Pragma("GCC unroll 16") for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = acc[i] * mv + av;       \
        float sum = 0;                                                                                      \
        for (int i = 0; i < PEAK_CHAINS; i++)                                                               \
            for (int l = 0; l < (int)(bytes / sizeof(float)); l++) sum += acc[i][l];                        \
        return sum;                                                                                         \
    }
#if defined(__x86_64__)
DEFINE_FMA_LOOP(fma_loop_512, 64, __attribute__((target("arch=x86-64-v4"))))
DEFINE_FMA_LOOP(fma_loop_256, 32, __attribute__((target("arch=x86-64-v3"))))
#endif
DEFINE_FMA_LOOP(fma_loop_128, 16, )   /* the baseline (x86-64: SSE, a multiply and an add) */

typedef struct { float (*loop)(long iters, float m); int bits; } fma_kernel;

static fma_kernel widest_fma(void)
{
#if defined(__x86_64__)
    const nb_cpu_features f = nb_cpu_detect();
    if (f.avx512f && f.os_zmm) return (fma_kernel){ fma_loop_512, 512 };
    if (f.avx2 && f.fma && f.os_ymm) return (fma_kernel){ fma_loop_256, 256 };
#endif
    return (fma_kernel){ fma_loop_128, 128 };
}

static volatile float fma_sink;   /* the loops' sums */

static double fma_flops_per_round(fma_kernel k) { return PEAK_CHAINS * (k.bits / 32) * 2.0; }

/* GFLOP/s of `threads` copies of k's loop (iters rounds each) running at once on OpenMP threads */
static double fma_gflops(fma_kernel k, int threads, long iters)
{
    int ran = 0;   /* the copies that ran: as many as the threads OpenMP gave */
    float sum = 0;
    const double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : ran, sum)
    {
        sum += k.loop(iters, 0.999f);
        ran++;
    }
    const double t = now_s() - t0;
    fma_sink = sum;
    return (double)ran * (double)iters * fma_flops_per_round(k) / t / 1e9;
}

/* the peak in GFLOP/s at 1 thread and at N threads (N copies of the loop), and the vectors' width */
typedef struct { double one, many; int bits; } peak;

/* the peak for a run on `threads` threads */
static double peak_at(const peak *p, int threads) { return threads > 1 ? p->many : p->one; }

/* in_child's body: writes the peak at 1 thread and at --threads N (each the median of PEAK_TRIES
 * loops of about PEAK_SECONDS, the two counts alternating so they see the machine at the same
 * moments) and the vectors' width, as 3 doubles. In a child, because OpenMP's threads do not survive
 * a fork: the benchmark's children, forked later, could not use them. */
static int peak_child(const void *arg, int fd)
{
    const int threads = ((const options *)arg)->threads, counts = threads > 1 ? 2 : 1;
    const fma_kernel k = widest_fma();
    const long probe = 1L << 20;
    const double rate = fma_gflops(k, 1, probe);   /* sizes the loops, and warms the core up */
    const long iters = 1 + (long)(PEAK_SECONDS * rate * 1e9 / fma_flops_per_round(k));
    double gflops[2][PEAK_TRIES];
    for (int t = 0; t < PEAK_TRIES; t++)
        for (int c = 0; c < counts; c++) gflops[c][t] = fma_gflops(k, c ? threads : 1, iters);
    const double v[3] = { stats_of(gflops[0], PEAK_TRIES).median, stats_of(gflops[counts - 1], PEAK_TRIES).median, k.bits };
    return write_all(fd, v, sizeof v) ? 1 : 0;
}

static peak measure_peak(const options *o)
{
    peak p = { NAN, NAN, 0 };
    size_t len = 0;
    int status;
    long rss;
    double *v = (double *)(void *)in_child(peak_child, o, &len, &status, &rss);
    if (v && exited_ok(status) && len == 3 * sizeof *v) p = (peak){ v[0], v[1], (int)v[2] };
    else fprintf(stderr, PROG ": the peak could not be measured\n");
    free(v);
    return p;
}

/* ---- subprocesses: PyTorch and nabla-train ---- */

typedef struct { char *const *argv; const char *env; } exec_arg;

/* in_child's body for run_capture: execs argv with stdout on fd and env ("NAME=value") added */
static int exec_body(const void *arg, int fd)
{
    const exec_arg *a = arg;
    dup2(fd, STDOUT_FILENO);
    close(fd);
    if (a->env) putenv((char *)a->env);
    execv(a->argv[0], a->argv);
    fprintf(stderr, PROG ": cannot run %s: %s\n", a->argv[0], strerror(errno));
    return 127;
}

/* runs argv (with env in its environment unless NULL) with stdout captured; returns the output
 * (malloc'ed) or NULL; *status, *rss_kib, *wall */
static char *run_capture(char *const argv[], const char *env, int *status, long *rss_kib, double *wall)
{
    const exec_arg arg = { argv, env };
    size_t len;
    double t0 = now_s();
    char *out = in_child(exec_body, &arg, &len, status, rss_kib);
    *wall = now_s() - t0;
    return out;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *torch_script(const options *o)
{
    if (o->torch_script) return o->torch_script;
    const char *env = getenv("NABLA_BENCH_TORCH_SCRIPT");
    if (env && *env) return env;
    if (file_exists(NABLA_BENCH_TORCH_SCRIPT)) return NABLA_BENCH_TORCH_SCRIPT;
    return NABLA_BENCH_TORCH_SCRIPT_INSTALLED;
}

/* "BLIS_ARCH_TYPE=<the arch_t of nabla's BLIS>" for the PyTorch script, so that the BLIS inside PyTorch
 * runs the same kernels; empty when the user set BLIS_ARCH_TYPE, which both inherit */
static char torch_blis_env[32];

static const char *torch_env(void) { return *torch_blis_env ? torch_blis_env : NULL; }

/* BLIS's name for an arch_t given as text (BLIS_ARCH_TYPE's value), or "?" */
static const char *arch_name(const char *text)
{
    char *end;
    long id = strtol(text, &end, 10);
    return *text && !*end && id >= 0 && id < BLIS_NUM_ARCHS ? bli_arch_string((arch_t)id) : "?";
}

/* what the PyTorch script reported: its version and the BLIS_ARCH_TYPE it saw */
typedef struct { char version[64], blis_arch[16]; } torch_info;

/* 1 ok, 0 PyTorch missing (message printed), -1 another failure */
/* W7 against PyTorch from the same start: nabla's initial GPT and its batch go to files, nabla takes 20
 * AdamW steps, bench_torch.py --agree takes them from the files; the worst relative difference of the
 * 20 losses (NaN when PyTorch is missing or failed), or -1 when nabla itself failed */
#define AGREE_STEPS 20
static double w7_agreement(const workload *w, const options *o)
{
    char dir[] = "/tmp/nabla-bench-w7-XXXXXX", init[64], batch[64];
    if (!mkdtemp(dir)) return -1;
    snprintf(init, sizeof init, "%s/init.st", dir);
    snprintf(batch, sizeof batch, "%s/batch.st", dir);
    job j;
    double losses[AGREE_STEPS], worst = -1;
    int rc = job_init(&j, w, o) || nb_module_save(j.gpt, init) ||
             nb_safetensors_save(batch, 2, (const char *[]){ "x", "y" }, (nb_tensor *[]){ j.x, j.y }, 0, NULL, NULL);
    for (int k = 0; rc == 0 && k < AGREE_STEPS; k++) {
        nb_scope_push(j.scope);
        nb_optimizer_zero_grad(j.opt);
        nb_tensor *loss = nb_gpt_loss(nb_module_forward(j.gpt, j.x), j.y);
        losses[k] = loss ? nb_item(loss) : NAN;
        rc = loss && nb_backward(loss) == 0 ? nb_optimizer_step(j.opt) : -1;
        nb_scope_pop();
        nb_scope_reset(j.scope);
    }
    job_free(&j);
    if (rc == 0) {
        char threads[16];
        snprintf(threads, sizeof threads, "%d", o->threads);
        char *argv[] = { PYTHON, (char *)torch_script(o), "--agree", dir, "--threads", threads, NULL };
        int status = -1;
        long rss;
        double wall;
        char *out = run_capture(argv, torch_env(), &status, &rss, &wall);
        json_t *root = out && exited_ok(status) ? json_loads(out, 0, NULL) : NULL;
        json_t *theirs = root ? json_object_get(root, "losses") : NULL;
        worst = json_array_size(theirs) == AGREE_STEPS ? 0 : NAN;
        for (int k = 0; !isnan(worst) && k < AGREE_STEPS; k++) {
            double t = json_number_value(json_array_get(theirs, (size_t)k));
            worst = fmax(worst, fabs(losses[k] - t) / fabs(t));
        }
        json_decref(root);
        free(out);
    }
    unlink(init), unlink(batch), rmdir(dir);
    return worst;
}

static int run_torch(const workload *w, const options *o, run_result *res, torch_info *info)
{
    char reps[16], warmup[16], threads[16];
    snprintf(reps, sizeof reps, "%d", o->reps);
    snprintf(warmup, sizeof warmup, "%d", o->warmup);
    snprintf(threads, sizeof threads, "%d", o->threads);
    const char *script = torch_script(o);
    if (!file_exists(script)) {
        fprintf(stderr, PROG ": the PyTorch script '%s' is missing (pass --torch-script FILE)\n", script);
        return -1;
    }
    char *argv[] = { PYTHON, (char *)script, "--only", (char *)w->name, "--reps", reps, "--warmup", warmup,
                     "--threads", threads, NULL };
    int status = -1;
    long rss = 0;
    double wall;
    char *out = run_capture(argv, torch_env(), &status, &rss, &wall);
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        free(out);
        return 0;   /* the script said: no torch */
    }
    if (!out || !exited_ok(status)) {
        fprintf(stderr, PROG ": %s: the PyTorch run failed (%s)\n", w->name, out ? "see its messages above" : "cannot run it");
        free(out);
        return -1;
    }
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    json_t *wl = root ? json_object_get(json_object_get(root, "workloads"), w->name) : NULL;
    json_t *times = wl ? json_object_get(wl, "times_ms") : NULL;
    int rc = -1;
    if (json_is_array(times) && json_array_size(times) > 0) {
        size_t n = json_array_size(times);
        double *ms = malloc(sizeof *ms * n);
        if (ms) {
            for (size_t i = 0; i < n; i++) ms[i] = json_number_value(json_array_get(times, i));
            append(&res->ms, &res->n, ms, (int)n);
            free(ms);
            if (rss > res->rss_kib) res->rss_kib = rss;
            res->ok = true;
            rc = 1;
        }
        const char *v = json_string_value(json_object_get(root, "torch_version"));
        const char *arch = json_string_value(json_object_get(root, "blis_arch_type"));
        if (v) snprintf(info->version, sizeof info->version, "%s", v);
        snprintf(info->blis_arch, sizeof info->blis_arch, "%s", arch ? arch : "(unset)");
    } else {
        fprintf(stderr, PROG ": %s: cannot parse the PyTorch script's output%s%s\n", w->name, root ? "" : ": ",
                root ? "" : err.text);
    }
    json_decref(root);
    free(out);
    return rc;
}

typedef struct { double wall_s, acc; long rss_kib; bool ok; } w6_result;

/* W6 in PyTorch: wall seconds and test accuracy of the same recipe, or ok false */
static w6_result run_torch_w6(const options *o)
{
    w6_result r = { NAN, NAN, 0, false };
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[] = { PYTHON, (char *)torch_script(o), "--only", "W6", "--threads", threads, NULL };
    int status = -1;
    double wall;
    char *text = run_capture(argv, torch_env(), &status, &r.rss_kib, &wall);
    json_t *root = text && exited_ok(status) ? json_loads(text, 0, NULL) : NULL;
    json_t *w6 = root ? json_object_get(json_object_get(root, "workloads"), "W6") : NULL;
    if (w6) {
        r.wall_s = json_number_value(json_object_get(w6, "wall_s"));
        r.acc = json_number_value(json_object_get(w6, "test_accuracy"));
        r.ok = true;
    } else {
        fprintf(stderr, PROG ": W6: the PyTorch run failed\n");
    }
    json_decref(root);
    free(text);
    return r;
}

static bool torch_available(char *why, size_t size)
{
    char *argv[] = { PYTHON, "-c", "import torch", NULL };
    if (access(PYTHON, X_OK)) {
        snprintf(why, size, "%s not found", PYTHON);
        return false;
    }
    int status = -1;
    long rss;
    double wall;
    /* its stderr (the ImportError) is not shown: the message below says what to do */
    int saved = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    char *out = run_capture(argv, NULL, &status, &rss, &wall);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (devnull >= 0) close(devnull);
    free(out);
    if (exited_ok(status)) return true;
    snprintf(why, size, "'%s -c \"import torch\"' failed: PyTorch is not installed (Debian: apt-get install python3-torch)",
             PYTHON);
    return false;
}

static const char *train_binary(const options *o, char *buf, size_t size)
{
    if (o->train_bin) return o->train_bin;
    ssize_t n = readlink("/proc/self/exe", buf, size - 32);
    if (n <= 0) return "nabla-train";
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return "nabla-train";
    strcpy(slash + 1, "nabla-train");
    return buf;
}

static w6_result run_w6(const options *o)
{
    w6_result r = { NAN, NAN, 0, false };
    char buf[4096], threads[16];
    snprintf(threads, sizeof threads, "%d", o->threads);
    const char *bin = train_binary(o, buf, sizeof buf);
    if (access(bin, X_OK)) {
        fprintf(stderr, PROG ": W6: cannot run %s (pass --nabla-train FILE)\n", bin);
        return r;
    }
    char *argv[] = { (char *)bin, "--threads", threads, "--quiet", NULL };
    int status = -1;
    char *out = run_capture(argv, NULL, &status, &r.rss_kib, &r.wall_s);
    const char *line = out ? strstr(out, "test accuracy: ") : NULL;
    if (line && exited_ok(status)) {
        r.acc = strtod(line + strlen("test accuracy: "), NULL);
        r.ok = true;
    } else {
        fprintf(stderr, PROG ": W6: %s failed (exit status %d); see its messages above\n", bin,
                status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    free(out);
    return r;
}

/* ---- output ---- */

static FILE *out;   /* the table: stdout, or stderr when the JSON goes to stdout */

static void print_machine(const options *o, const peak *pk, nb_blas_config blas)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    double load[3] = { 0 };
    if (getloadavg(load, 3) < 0) load[0] = NAN;
    fprintf(out, "nabla-bench: %s, %ld CPUs (%s), load average %.2f\n", host, cpus, model, load[0]);
    fprintf(out, "threads %d (BLIS_NUM_THREADS=%s OMP_NUM_THREADS=%s OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s BLIS_ARCH_TYPE=%s); "
                 "%d warm-up + %d timed steps per run\n",
            o->threads, getenv("BLIS_NUM_THREADS"), getenv("OMP_NUM_THREADS"),
            getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)",
            getenv("GOMP_SPINCOUNT") ? getenv("GOMP_SPINCOUNT") : "(unset)",
            getenv("BLIS_ARCH_TYPE") ? getenv("BLIS_ARCH_TYPE") : "(unset)", o->warmup, o->reps);
    fprintf(out, "blas: %s (chosen by %s); kernels: %s\n", blas.config, blas.chosen_by, nb_isa_name(nb_isa_current()));
    if (isnan(pk->one)) fprintf(out, "peak: not measured\n");
    else if (o->threads > 1)
        fprintf(out, "peak: %.1f GFLOP/s at 1 thread, %.1f at %d threads (float32 FMA loop, %d-bit vectors)\n", pk->one,
                pk->many, o->threads, pk->bits);
    else fprintf(out, "peak: %.1f GFLOP/s at 1 thread (float32 FMA loop, %d-bit vectors)\n", pk->one, pk->bits);
}

/* ---- nabla's matmul against raw BLIS on the same shapes and strides ---- */

typedef struct { const char *name; int64_t m, k, n; } mm_shape;
static const mm_shape mm_shapes[] = {
    { "W1 fc1", 200, 3072, 100 },   /* batch x 3072 -> 100 */
    { "W3 fc2", 50, 8192, 100 },    /* the convnet's hidden affine */
    { "square", 512, 512, 512 },
};

/* one call: nabla's op (which == 0 forward, 1 dA = g·bᵀ, 2 dB = aᵀ·g) or the raw bli_sgemm with the
 * strides nb_matmul passes for it; returns its ms */
static double mm_call(int which, bool raw, nb_tensor *a, nb_tensor *b, nb_tensor *g, float *c)
{
    const int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
    float one = 1, zero = 0;
    double t0 = now_s();
    if (!raw) {
        nb_tensor *y = which == 0 ? nb_matmul(a, b) : which == 1 ? nb_matmul(g, nb_transpose(b, 0, 1))
                                                                 : nb_matmul(nb_transpose(a, 0, 1), g);
        if (!y) fprintf(stderr, PROG ": matmul check: %s\n", nb_last_error());
    } else if (which == 0) {
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, a->data, K, 1, b->data, N, 1, &zero, c, N, 1);
    } else if (which == 1) {
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, K, N, &one, g->data, N, 1, b->data, 1, N, &zero, c, K, 1);
    } else {
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, K, N, M, &one, a->data, 1, K, g->data, N, 1, &zero, c, N, 1);
    }
    double ms = (now_s() - t0) * 1e3;
    nb_scope_reset(NULL);
    return ms;
}

/* medians of reps calls of nabla's op and of raw BLIS, alternating (so that the machine's slow and fast
 * stretches fall on both), after two untimed calls of each */
static void mm_times(int which, nb_tensor *a, nb_tensor *b, nb_tensor *g, float *c, int reps, double *nabla, double *raw)
{
    double *ms = malloc(sizeof(double) * 2 * (size_t)reps);
    *nabla = *raw = NAN;
    if (!ms) return;
    for (int r = -2; r < reps; r++) {
        double t_raw = mm_call(which, true, a, b, g, c), t_nabla = mm_call(which, false, a, b, g, c);
        if (r >= 0) ms[r] = t_nabla, ms[reps + r] = t_raw;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    qsort(ms + reps, (size_t)reps, sizeof *ms, cmp_double);
    *nabla = quantile(ms, reps, 0.5);
    *raw = quantile(ms + reps, reps, 0.5);
    free(ms);
}

/* in a child process: per shape, nabla's forward and both backward products as % of raw BLIS, and
 * their GFLOP/s as % of the peak at --threads */
static void matmul_check(const options *o, double peak_gflops)
{
    fflush(out);
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    nb_rng rng;
    nb_rng_seed(&rng, SEED);
    fprintf(out, "\nmatmul vs raw BLIS (same shapes and strides; medians of %d alternating calls; %% = raw time / nabla time):\n",
            o->reps);
    for (size_t i = 0; i < sizeof mm_shapes / sizeof *mm_shapes; i++) {
        const mm_shape *sh = &mm_shapes[i];
        nb_tensor *a = nb_persist(nb_randn(NB_F32, NB_SHAPE(sh->m, sh->k), &rng, 1.0));
        nb_tensor *b = nb_persist(nb_randn(NB_F32, NB_SHAPE(sh->k, sh->n), &rng, 1.0));
        nb_tensor *g = nb_persist(nb_randn(NB_F32, NB_SHAPE(sh->m, sh->n), &rng, 1.0));
        int64_t most = sh->m * sh->k > sh->k * sh->n ? sh->m * sh->k : sh->k * sh->n;
        float *c = malloc(sizeof(float) * (size_t)(most > sh->m * sh->n ? most : sh->m * sh->n));
        nb_scope_reset(NULL);
        fprintf(out, "  %-7s %4lldx%lldx%lld:", sh->name, (long long)sh->m, (long long)sh->k, (long long)sh->n);
        static const char *const what[3] = { "forward", "dA=g.bT", "dB=aT.g" };
        for (int which = 0; c && which < 3; which++) {
            double nabla, raw;
            mm_times(which, a, b, g, c, o->reps, &nabla, &raw);
            const double gflops = 2.0 * (double)(sh->m * sh->k * sh->n) / (nabla * 1e-3) / 1e9;
            fprintf(out, "  %s %.1f%% (%.1f GFLOP/s", what[which], 100.0 * raw / nabla, gflops);
            if (!isnan(peak_gflops)) fprintf(out, ", %.0f%% of peak", 100 * gflops / peak_gflops);
            fputc(')', out);
        }
        fputc('\n', out);
        free(c);
        nb_free(a);
        nb_free(b);
        nb_free(g);
    }
    fflush(out);
    _exit(0);
}

static json_t *stats_json(const stats *s)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:i}", "median_ms", s->median, "q1_ms", s->q1, "q3_ms", s->q3,
                     "min_ms", s->min, "max_ms", s->max, "n", s->n);
}

/* GFLOP/s of a step of `flops` taking ms, NAN when nothing is counted (W5) */
static double gflops_of(double flops, double ms) { return flops > 0 ? flops / (ms * 1e-3) / 1e9 : NAN; }

/* j with "gflops" and "percent_of_peak" (of peak_gflops) unless they are NAN; returns j */
static json_t *with_rate(json_t *j, double gflops, double peak_gflops)
{
    if (!isnan(gflops)) json_object_set_new(j, "gflops", json_real(gflops));
    if (!isnan(gflops / peak_gflops)) json_object_set_new(j, "percent_of_peak", json_real(100 * gflops / peak_gflops));
    return j;
}

/* --scaling and --contended: one workload's line and JSON (jw) */
static void report_turns(const workload *w, const run_result *nb, const options *o, const peak *pk, json_t *jw)
{
    stats one = stats_of(nb->ms, nb->n), many = stats_of(nb->many, nb->n_many), cpu = stats_of(nb->cpu, nb->n_cpu);
    stats used = stats_of(nb->used, nb->n_used);
    const double speedup = one.median / many.median, flops = step_flops(w);
    char batch[16];
    snprintf(batch, sizeof batch, w->batch > 0 ? "%lld" : "-", (long long)w->batch);
    fprintf(out, "%-8s %5s %12.2f %12.2f %8.2fx", w->name, batch, one.median, many.median, speedup);
    json_object_set_new(jw, "batch", json_integer(w->batch));
    json_object_set_new(jw, "threads_1", with_rate(stats_json(&one), gflops_of(flops, one.median), pk->one));
    json_object_set_new(jw, "threads_n", with_rate(stats_json(&many), gflops_of(flops, many.median), pk->many));
    json_object_set_new(jw, "speedup", json_real(speedup));
    if (o->scaling) {
        stats copies = stats_of(nb->copies, nb->n_copies);
        const double ceiling = o->threads * one.median / copies.median;
        fprintf(out, " %12.2f %8.2fx %6.0f%%", copies.median, ceiling, 100 * speedup / ceiling);
        json_object_set_new(jw, "copies_n", stats_json(&copies));
        json_object_set_new(jw, "ceiling", json_real(ceiling));
    } else {
        char text[32];
        if (used.min < used.max) snprintf(text, sizeof text, "%.0f (%.0f-%.0f)", used.median, used.min, used.max);
        else snprintf(text, sizeof text, "%.0f", used.median);
        fprintf(out, " %12s", text);
    }
    fprintf(out, " %6.0f\n", cpu.median);
    fflush(out);
    json_object_set_new(jw, "cpu_percent_threads_n", json_real(cpu.median));
    json_object_set_new(jw, "threads_used",
                        json_pack("{s:f, s:f, s:f}", "median", used.median, "min", used.min, "max", used.max));
}

/* ---- --contended: a busy process beside the benchmark ---- */

static volatile sig_atomic_t spinner;   /* its pid, 0 when there is none */

static void stop_spinner(void)
{
    if (spinner <= 0) return;
    kill(spinner, SIGKILL);
    waitpid(spinner, NULL, 0);
    spinner = 0;
}

static void stop_spinner_and_die(int sig)
{
    if (spinner > 0) kill(spinner, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* forks a child that spins on a CPU until stop_spinner, this process's exit or a fatal signal (or its
 * death: PR_SET_PDEATHSIG), and gives it time to be running and seen as load; false if it cannot */
static bool start_spinner(void)
{
    const pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": --contended: fork: %s\n", strerror(errno));
        return false;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);   /* the parent died before prctl */
        for (;;) {}
    }
    spinner = pid;
    atexit(stop_spinner);
    static const int fatal[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++) signal(fatal[i], stop_spinner_and_die);
    nanosleep(&(struct timespec){ .tv_nsec = 300 * 1000 * 1000 }, NULL);
    return true;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);     /* nothing touches BLIS's threads or OpenMP in this process: children do */
    set_threads(&o, argv);
    const bool turned = in_turns(&o);
    if (turned && o.threads < 2) bad_usage("%s: needs --threads N with N at least 2, got %d", turns_mode(&o), o.threads);
#ifndef _OPENMP
    if (turned) bad_usage("%s: this build has no OpenMP, so nabla runs on one thread", turns_mode(&o));
#endif
    out = o.json && !strcmp(o.json, "-") ? stderr : stdout;
    signal(SIGPIPE, SIG_IGN);

    bool torch = false;
    char why[512] = "";
    torch_info tinfo = { "?", "?" };
    if (o.vs_torch) {
        torch = torch_available(why, sizeof why);
        if (!torch) fprintf(stderr, PROG ": --vs-torch: %s; skipping the PyTorch comparison\n", why);
    }
    const nb_blas_config blas = nb_blas_info();
    const peak pk = measure_peak(&o);   /* before the busy process of --contended */
    print_machine(&o, &pk, blas);
    if (torch) {
        const char *user = getenv("BLIS_ARCH_TYPE");
        char ours[16];
        snprintf(ours, sizeof ours, "%d", blas.arch);
        if (!user) snprintf(torch_blis_env, sizeof torch_blis_env, "BLIS_ARCH_TYPE=%s", ours);
        fprintf(out, "vs PyTorch: %d rounds, nabla and PyTorch alternating within each workload; PyTorch's BLIS gets "
                     "BLIS_ARCH_TYPE=%s (%s, %s)\n",
                o.rounds, user ? user : ours, arch_name(user ? user : ours), user ? "yours" : "nabla's");
    }
    if (o.contended) {
        if (!start_spinner()) return 1;
        fprintf(out, "contended: a busy process (pid %d, one spinning CPU) runs beside the benchmark; each step at 1 "
                     "and %d threads in turn\n", (int)spinner, o.threads);
    }
    fputc('\n', out);

    json_t *jroot = json_object(), *jwl = json_array();
    json_object_set_new(jroot, "threads", json_integer(o.threads));
    json_object_set_new(jroot, "reps", json_integer(o.reps));
    json_object_set_new(jroot, "warmup", json_integer(o.warmup));
    json_object_set_new(jroot, "rounds", json_integer(torch || turned ? o.rounds : 1));
    json_object_set_new(jroot, "mode", json_string(o.scaling ? "scaling" : o.contended ? "contended" : "table"));
    json_object_set_new(jroot, "blas_config", json_string(blas.config));
    json_object_set_new(jroot, "blas_chosen_by", json_string(blas.chosen_by));
    json_object_set_new(jroot, "isa", json_string(nb_isa_name(nb_isa_current())));
    json_object_set_new(jroot, "peak_gflops", json_real(pk.one));
    json_object_set_new(jroot, "peak_gflops_threads", json_real(pk.many));
    json_object_set_new(jroot, "peak_vector_bits", json_integer(pk.bits));
    json_object_set_new(jroot, "load_average", json_real(0));
    double load[3];
    if (getloadavg(load, 3) >= 0) json_object_set_new(jroot, "load_average", json_real(load[0]));

    if (turned) {
        char many[32], copies[32];
        snprintf(many, sizeof many, "%d-thread ms", o.threads);
        snprintf(copies, sizeof copies, "%d copies ms", o.threads);
        fprintf(out, "%-8s %5s %12s %12s %9s", "workload", "batch", "1-thread ms", many, "speed-up");
        if (o.scaling) fprintf(out, " %12s %9s %7s", copies, "ceiling", "of it");
        else fprintf(out, " %12s", "threads used");
        fprintf(out, " %6s\n", "CPU %");
    } else {
        fprintf(out, "%-8s %5s %10s %17s %17s %9s %8s %6s %8s", "workload", "batch", "median ms", "IQR ms", "min-max ms",
                "img/s", "GFLOP/s", "%peak", "RSS MiB");
        if (torch) fprintf(out, " %10s %8s %9s", "torch ms", "t RSS", "nb/torch");
        fputc('\n', out);
    }

    int failures = 0;
    for (int i = 0; i < N_WORKLOADS; i++) {
        if (!o.selected[i]) continue;
        const workload *w = &workloads[i];
        json_t *jw = json_object();
        json_object_set_new(jw, "name", json_string(w->name));
        json_object_set_new(jw, "description", json_string(w->what));
        if (w->kind == K_TRAIN) {
            fflush(out);
            w6_result r = run_w6(&o);
            if (!r.ok) {
                failures++;
                fprintf(out, "%-8s failed\n", w->name);
                json_object_set_new(jw, "error", json_string("nabla-train failed"));
            } else {
                fprintf(out, "%-8s %5lld   wall %.1f s for nabla-train's default run, test accuracy %.4f (%s 0.90), "
                             "peak RSS %.1f MiB\n",
                        w->name, (long long)w->batch, r.wall_s, r.acc, r.acc >= W6_TARGET ? "reached" : "NOT reached",
                        (double)r.rss_kib / 1024.0);
                json_object_set_new(jw, "wall_s", json_real(r.wall_s));
                json_object_set_new(jw, "test_accuracy", json_real(r.acc));
                json_object_set_new(jw, "reached_target", json_boolean(r.acc >= W6_TARGET));
                json_object_set_new(jw, "peak_rss_kib", json_integer(r.rss_kib));
                w6_result t = torch ? run_torch_w6(&o) : (w6_result){ NAN, NAN, 0, false };
                if (t.ok) {
                    fprintf(out, "%-8s %5s   PyTorch: wall %.1f s, test accuracy %.4f, peak RSS %.1f MiB; "
                                 "ratio of wall times nabla/PyTorch %.3f\n", "", "", t.wall_s, t.acc,
                            (double)t.rss_kib / 1024.0, r.wall_s / t.wall_s);
                    json_t *jt = json_pack("{s:f, s:f, s:I}", "wall_s", t.wall_s, "test_accuracy", t.acc,
                                           "peak_rss_kib", (json_int_t)t.rss_kib);
                    json_object_set_new(jw, "torch", jt);
                    json_object_set_new(jw, "ratio_nabla_over_torch", json_real(r.wall_s / t.wall_s));
                }
            }
            json_array_append_new(jwl, jw);
            fflush(out);
            continue;
        }
        run_result nb = { 0 }, th = { 0 };
        bool ok = true;
        int rounds = torch || turned ? o.rounds : 1;
        for (int r = 0; r < rounds && ok; r++) {
            ok = run_nabla(w, &o, &nb);
            if (ok && torch && th.n >= 0) {
                int t = run_torch(w, &o, &th, &tinfo);
                if (t <= 0) th.n = -1;   /* stop asking torch for this workload */
            }
        }
        if (!ok) {
            failures++;
            fprintf(out, "%-8s failed\n", w->name);
            json_object_set_new(jw, "error", json_string("the nabla run failed"));
            json_array_append_new(jwl, jw);
            result_free(&nb);
            result_free(&th);
            continue;
        }
        if (turned) {
            report_turns(w, &nb, &o, &pk, jw);
            json_array_append_new(jwl, jw);
            result_free(&nb);
            continue;
        }
        stats s = stats_of(nb.ms, nb.n);
        double flops = step_flops(w);
        double ips = w->batch > 0 ? (double)w->batch / (s.median * 1e-3) : NAN;
        double gflops = gflops_of(flops, s.median), percent = 100 * gflops / peak_at(&pk, o.threads);
        char iqr[32], range[32], ipsbuf[16], gfbuf[16], pctbuf[16];
        snprintf(iqr, sizeof iqr, "%.2f-%.2f", s.q1, s.q3);
        snprintf(range, sizeof range, "%.2f-%.2f", s.min, s.max);
        snprintf(ipsbuf, sizeof ipsbuf, isnan(ips) ? "-" : "%.0f", ips);
        snprintf(gfbuf, sizeof gfbuf, isnan(gflops) ? "-" : "%.1f", gflops);
        snprintf(pctbuf, sizeof pctbuf, isnan(percent) ? "-" : "%.1f", percent);
        char batch[16];
        snprintf(batch, sizeof batch, w->batch > 0 ? "%lld" : "-", (long long)w->batch);
        fprintf(out, "%-8s %5s %10.2f %17s %17s %9s %8s %6s %8.1f", w->name, batch, s.median, iqr, range, ipsbuf, gfbuf,
                pctbuf, (double)nb.rss_kib / 1024.0);
        json_object_set_new(jw, "batch", json_integer(w->batch));
        json_object_set_new(jw, "nabla", stats_json(&s));
        json_object_set_new(jw, "flops_per_step", json_real(flops));
        if (!isnan(ips)) json_object_set_new(jw, "images_per_s", json_real(ips));
        with_rate(jw, gflops, peak_at(&pk, o.threads));
        json_object_set_new(jw, "peak_rss_kib", json_integer(nb.rss_kib));
        if (w->kind == K_CHAIN) json_object_set_new(jw, "us_per_op", json_real(s.median * 1e3 / W5_OPS));
        if (torch && th.n > 0) {
            stats ts = stats_of(th.ms, th.n);
            double ratio = s.median / ts.median;
            fprintf(out, " %10.2f %8.1f %9.3f", ts.median, (double)th.rss_kib / 1024.0, ratio);
            json_t *jt = stats_json(&ts);
            json_object_set_new(jt, "peak_rss_kib", json_integer(th.rss_kib));
            if (w->kind == K_CHAIN) json_object_set_new(jt, "us_per_op", json_real(ts.median * 1e3 / W5_OPS));
            json_object_set_new(jw, "torch", jt);
            json_object_set_new(jw, "ratio_nabla_over_torch", json_real(ratio));
            json_object_set_new(jw, "rss_ratio_nabla_over_torch",
                                json_real(th.rss_kib > 0 ? (double)nb.rss_kib / (double)th.rss_kib : NAN));
        } else if (torch) {
            fprintf(out, " %10s", "failed");
        }
        if (w->kind == K_CHAIN) {
            fprintf(out, "  (%.2f us/op", s.median * 1e3 / W5_OPS);
            if (torch && th.n > 0) fprintf(out, "; torch %.2f us/op", stats_of(th.ms, th.n).median * 1e3 / W5_OPS);
            fputc(')', out);
        }
        fputc('\n', out);
        if (w->kind == K_GPT && torch && th.n > 0) {
            const double agree = w7_agreement(w, &o);
            if (isnan(agree) || agree < 0 || agree > 1e-4) failures++;
            fprintf(out, "%-8s %5s   the first %d losses from the same weights and batch: worst relative difference to "
                         "PyTorch's %.2e (%s)\n", "", "", AGREE_STEPS, agree,
                    agree >= 0 && agree <= 1e-4 ? "within 1e-4" : isnan(agree) ? "PyTorch failed" : "ABOVE 1e-4");
            json_object_set_new(jw, "torch_loss_agreement", json_real(agree));
        }
        fflush(out);
        json_array_append_new(jwl, jw);
        result_free(&nb);
        result_free(&th);
    }
    if (torch) {
        fprintf(out, "\nPyTorch %s (BLIS_ARCH_TYPE=%s: %s); ratio = nabla median / PyTorch median (below 1: nabla faster); "
                     "RSS = peak resident memory of the process\n",
                tinfo.version, tinfo.blis_arch, arch_name(tinfo.blis_arch));
        json_object_set_new(jroot, "torch_version", json_string(tinfo.version));
        json_object_set_new(jroot, "torch_blis_arch_type", json_string(tinfo.blis_arch));
    } else if (o.vs_torch) {
        json_object_set_new(jroot, "torch_skipped", json_string(why));
    }
    bool timed = false;
    for (int i = 0; i < N_WORKLOADS; i++) timed |= o.selected[i] && workloads[i].kind != K_TRAIN;
    if (o.scaling)
        fprintf(out, "\nspeed-up = 1-thread median / %d-thread median. %d copies: %d independent 1-thread steps at once, "
                     "one per copy of the model; ceiling = %d x 1-thread median / their median, what the machine gives "
                     "jobs that share nothing at these moments; of it = speed-up / ceiling. CPU %% = process CPU "
                     "time / wall time of the %d-thread steps (%d00 = all busy).\n",
                o.threads, o.threads, o.threads, o.threads, o.threads, o.threads);
    else if (o.contended)
        fprintf(out, "\nspeed-up = 1-thread median / %d-thread median beside the busy process (target 0.9: threads that "
                     "wait for a CPU the busy process holds must not make a step slower). threads used = nb_num_threads() "
                     "after the %d-thread steps (median (min-max)). CPU %% = process CPU time / wall time of the %d-thread "
                     "steps.\n", o.threads, o.threads, o.threads);
    else if (timed)
        fprintf(out, "FLOPs: matrix products and convolutions only, forward x 3 (the first layer, which reads the data, "
                     "x 2: no input gradient); %%peak = GFLOP/s / the peak at %d thread%s; W5: ms per chain of %d ops\n",
                o.threads, o.threads > 1 ? "s" : "", W5_OPS);
    if (o.matmul) matmul_check(&o, peak_at(&pk, o.threads));
    stop_spinner();
    json_object_set_new(jroot, "workloads", jwl);

    if (o.json) {
        int rc = !strcmp(o.json, "-") ? json_dumpf(jroot, stdout, JSON_INDENT(2)) : json_dump_file(jroot, o.json, JSON_INDENT(2));
        if (rc) {
            fprintf(stderr, PROG ": cannot write %s\n", o.json);
            failures++;
        } else if (!strcmp(o.json, "-")) {
            putchar('\n');
        }
    }
    json_decref(jroot);
    return failures ? 1 : 0;
}
