/* nabla-lm: trains a character-level language model (a GPT, or an LSTM or vanilla RNN) on a text
 * file or folder, reports the validation loss in nats and bits per character, and samples text.
 * The default run trains a small GPT on Debian's fortunes for a few minutes on 2 cores. */
#include <nabla/nabla.h>

#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "nabla-lm"
#define DEFAULT_TEXT "/usr/share/games/fortunes"
#define CHECKPOINT_FORMAT "nabla-lm-1"

typedef enum { MODEL_GPT, MODEL_LSTM, MODEL_RNN } model_kind;
static const char *const model_names[] = { "gpt", "lstm", "rnn" };

typedef struct {
    const char *text, *checkpoint, *resume, *history, *plot, *save_model, *prompt, *init, *tokens, *save_llmc;
    model_kind model;
    int64_t layers, heads, embd, hidden, seq_len, batch, steps, stop_at, warmup, eval_every, eval_batches, sample_chars, top_k;
    double lr, lr_min, weight_decay, clip, val_fraction, temperature;
    uint64_t seed;
    int threads;
    bool quiet;
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTION]...\n"
        "Trains a character-level language model on a text file or folder, reports the validation loss in\n"
        "nats and bits per character, and samples text from a prompt. The last line printed is\n"
        "\"val loss: X nats (Y bits per character)\".\n"
        "\n"
        "Data:\n"
        "  --text PATH             a file, or a folder of files read in name order (default " DEFAULT_TEXT ",\n"
        "                          from the Debian package fortunes)\n"
        "  --val-fraction X        the last X of the bytes validate (default 0.1)\n"
        "  --tokens FILE           an llm.c token file (uint16 GPT-2 tokens) instead of --text\n"
        "Model:\n"
        "  --model gpt|lstm|rnn    (default gpt)\n"
        "  --layers N, --heads N, --embd N   the GPT's blocks, heads and width (default 4, 4, 128)\n"
        "  --hidden N              the LSTM's or RNN's state size, --embd its embedding (default 256)\n"
        "  --seq-len T             context length in bytes (default 64)\n"
        "  --init FILE.bin         start from an llm.c GPT-2 checkpoint (its header sets the model)\n"
        "Training (AdamW, linear warm-up then cosine decay, gradient clipping):\n"
        "  --steps N (default 1000), --batch B (default 16), --lr X (default 2e-3), --lr-min X (default 1e-4),\n"
        "  --stop-at N             stop after step N of the --steps schedule (then --resume its checkpoint)\n"
        "  --warmup N (default 50), --weight-decay X (default 0.1), --clip X (default 1; 0 = off),\n"
        "  --seed N (default 1), --threads N (default: every CPU)\n"
        "  --eval-every N          validation loss every N steps, on --eval-batches windows (default 200, 20)\n"
        "Output:\n"
        "  --checkpoint FILE       model, optimizer and step, atomically, at every evaluation\n"
        "  --resume FILE           continue a checkpoint (same model options); --steps is the total\n"
        "  --save-model FILE       the trained weights (safetensors by name; nb_module_load reads them)\n"
        "  --save-llmc FILE.bin    the trained GPT as an llm.c checkpoint (train_gpt2.c reads it)\n"
        "  --history FILE          CSV: step,train_loss,val_loss,lr (val_loss at evaluations)\n"
        "  --plot FILE             the losses through gnuplot (.png, .svg or .pdf)\n"
        "  --sample N              characters to sample at the end (default 400; 0 = none)\n"
        "  --prompt TEXT, --temperature X, --top-k K   sampling (default \"\\n\", 0.8, 20; --top-k 0 = all)\n"
        "  --quiet                 only the final lines\n"
        "  -h, --help\n"
        "Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted.\n");
}

#define bad_usage(...) tool_bad_usage(PROG, __VA_ARGS__)

static void parse_args(int argc, char **argv, options *o)
{
    enum { O_TEXT = 256, O_VAL, O_MODEL, O_LAYERS, O_HEADS, O_EMBD, O_HIDDEN, O_SEQ, O_STEPS, O_BATCH, O_LR, O_LR_MIN,
           O_WARMUP, O_WD, O_CLIP, O_SEED, O_THREADS, O_EVAL, O_EVAL_BATCHES, O_CKPT, O_RESUME, O_SAVE, O_HISTORY,
           O_PLOT, O_SAMPLE, O_PROMPT, O_TEMP, O_TOPK, O_QUIET, O_STOP, O_INIT, O_TOKENS, O_SAVE_LLMC };
    static const struct option longopts[] = {
        { "text", required_argument, NULL, O_TEXT }, { "val-fraction", required_argument, NULL, O_VAL },
        { "model", required_argument, NULL, O_MODEL }, { "layers", required_argument, NULL, O_LAYERS },
        { "heads", required_argument, NULL, O_HEADS }, { "embd", required_argument, NULL, O_EMBD },
        { "hidden", required_argument, NULL, O_HIDDEN }, { "seq-len", required_argument, NULL, O_SEQ },
        { "steps", required_argument, NULL, O_STEPS }, { "batch", required_argument, NULL, O_BATCH },
        { "lr", required_argument, NULL, O_LR }, { "lr-min", required_argument, NULL, O_LR_MIN },
        { "warmup", required_argument, NULL, O_WARMUP }, { "weight-decay", required_argument, NULL, O_WD },
        { "clip", required_argument, NULL, O_CLIP }, { "seed", required_argument, NULL, O_SEED },
        { "threads", required_argument, NULL, O_THREADS }, { "eval-every", required_argument, NULL, O_EVAL },
        { "eval-batches", required_argument, NULL, O_EVAL_BATCHES }, { "checkpoint", required_argument, NULL, O_CKPT },
        { "resume", required_argument, NULL, O_RESUME }, { "save-model", required_argument, NULL, O_SAVE },
        { "history", required_argument, NULL, O_HISTORY }, { "plot", required_argument, NULL, O_PLOT },
        { "sample", required_argument, NULL, O_SAMPLE }, { "prompt", required_argument, NULL, O_PROMPT },
        { "temperature", required_argument, NULL, O_TEMP }, { "top-k", required_argument, NULL, O_TOPK },
        { "quiet", no_argument, NULL, O_QUIET }, { "stop-at", required_argument, NULL, O_STOP },
        { "init", required_argument, NULL, O_INIT }, { "tokens", required_argument, NULL, O_TOKENS },
        { "save-llmc", required_argument, NULL, O_SAVE_LLMC }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    *o = (options){ .text = DEFAULT_TEXT, .prompt = "\n", .model = MODEL_GPT, .layers = 4, .heads = 4, .embd = 128,
                    .hidden = 256, .seq_len = 64, .batch = 16, .steps = 1000, .warmup = 50, .eval_every = 200,
                    .eval_batches = 20, .sample_chars = 400, .top_k = 20, .lr = 2e-3, .lr_min = 1e-4,
                    .weight_decay = 0.1, .clip = 1, .val_fraction = 0.1, .temperature = 0.8, .seed = 1 };
    int opt, index = -1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, &index)) != -1) {
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", index >= 0 ? longopts[index].name : "");
        index = -1;
        switch (opt) {
        case O_TEXT: o->text = optarg; break;
        case O_VAL: o->val_fraction = tool_parse_num(PROG, flag, optarg, 0, true, 0.5); break;
        case O_MODEL: o->model = (model_kind)tool_parse_choice(PROG, flag, optarg, model_names, 3); break;
        case O_LAYERS: o->layers = tool_parse_int(PROG, flag, optarg, 1, 64); break;
        case O_HEADS: o->heads = tool_parse_int(PROG, flag, optarg, 1, 64); break;
        case O_EMBD: o->embd = tool_parse_int(PROG, flag, optarg, 1, 8192); break;
        case O_HIDDEN: o->hidden = tool_parse_int(PROG, flag, optarg, 1, 8192); break;
        case O_SEQ: o->seq_len = tool_parse_int(PROG, flag, optarg, 1, 4096); break;
        case O_STEPS: o->steps = tool_parse_int(PROG, flag, optarg, 0, INT32_MAX); break;
        case O_BATCH: o->batch = tool_parse_int(PROG, flag, optarg, 1, 1 << 16); break;
        case O_LR: o->lr = tool_parse_num(PROG, flag, optarg, 0, true, INFINITY); break;
        case O_LR_MIN: o->lr_min = tool_parse_num(PROG, flag, optarg, 0, false, INFINITY); break;
        case O_WARMUP: o->warmup = tool_parse_int(PROG, flag, optarg, 0, INT32_MAX); break;
        case O_WD: o->weight_decay = tool_parse_num(PROG, flag, optarg, 0, false, INFINITY); break;
        case O_CLIP: o->clip = tool_parse_num(PROG, flag, optarg, 0, false, INFINITY); break;
        case O_SEED: o->seed = (uint64_t)tool_parse_int(PROG, flag, optarg, 0, INT64_MAX); break;
        case O_THREADS: o->threads = (int)tool_parse_int(PROG, flag, optarg, 1, 1024); break;
        case O_EVAL: o->eval_every = tool_parse_int(PROG, flag, optarg, 1, INT32_MAX); break;
        case O_EVAL_BATCHES: o->eval_batches = tool_parse_int(PROG, flag, optarg, 1, 1 << 20); break;
        case O_CKPT: o->checkpoint = optarg; break;
        case O_RESUME: o->resume = optarg; break;
        case O_SAVE: o->save_model = optarg; break;
        case O_HISTORY: o->history = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_SAMPLE: o->sample_chars = tool_parse_int(PROG, flag, optarg, 0, 1 << 20); break;
        case O_PROMPT: o->prompt = optarg; break;
        case O_TEMP: o->temperature = tool_parse_num(PROG, flag, optarg, 0, true, INFINITY); break;
        case O_TOPK: o->top_k = tool_parse_int(PROG, flag, optarg, 0, 256); break;
        case O_QUIET: o->quiet = true; break;
        case O_INIT: o->init = optarg; break;
        case O_TOKENS: o->tokens = optarg; break;
        case O_SAVE_LLMC: o->save_llmc = optarg; break;
        case O_STOP: o->stop_at = tool_parse_int(PROG, flag, optarg, 1, INT32_MAX); break;
        case 'h': usage(stdout); exit(0);
        case ':': bad_usage("option '%s' needs a value", argv[optind - 1]);
        default: bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) bad_usage("unexpected argument '%s'", argv[optind]);
    if (!o->stop_at || o->stop_at > o->steps) o->stop_at = o->steps;
    if ((o->init || o->save_llmc) && o->model != MODEL_GPT) bad_usage("--init and --save-llmc are for --model gpt");
    if (o->model == MODEL_GPT && o->embd % o->heads)
        bad_usage("--heads %lld must divide --embd %lld", (long long)o->heads, (long long)o->embd);
    if (o->lr_min > o->lr) bad_usage("--lr-min %g is above --lr %g", o->lr_min, o->lr);
    if (!*o->prompt) bad_usage("--prompt: give at least one character");
    const char *outputs[][2] = { { "--checkpoint", o->checkpoint }, { "--save-model", o->save_model },
                                 { "--history", o->history }, { "--plot", o->plot }, { "--save-llmc", o->save_llmc } };
    for (size_t i = 0; i < 5; i++)
        if (outputs[i][1]) tool_check_output(PROG, outputs[i][0], outputs[i][1]);
}

/* ---- the model ---- */

static nb_module *build(const options *o)
{
    if (o->init) return nb_gpt_load_llmc(o->init, NB_F32);
    if (o->model == MODEL_GPT) {
        nb_gpt_config c = nb_gpt_defaults();
        c.vocab_size = 256, c.max_seq_len = o->seq_len, c.n_layer = o->layers, c.n_head = o->heads;
        c.n_embd = o->embd, c.seed = o->seed;
        return nb_gpt(&c);
    }
    nb_rng rng;
    nb_rng_seed(&rng, o->seed);
    const nb_init init = NB_INIT_NORMAL_SCALE(&rng, 0.08);
    nb_module *core = (o->model == MODEL_LSTM ? nb_module_lstm : nb_module_rnn)(o->embd, o->hidden, NB_F32, init);
    return nb_module_sequential(3, (nb_module *[]){ nb_module_embedding(256, o->embd, NB_F32, init), core,
                                                    nb_module_temporal_linear(o->hidden, 256, NB_F32, init) });
}

static nb_tensor *loss_of(nb_module *m, nb_tensor *x, nb_tensor *y) { return nb_gpt_loss(nb_module_forward(m, x), y); }

typedef struct { int n, cap; nb_tensor **params; char **names; } param_list;

static int collect(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    param_list *l = ctx;
    if (is_buffer) return 0;
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 64;
        nb_tensor **p = realloc(l->params, sizeof *p * (size_t)cap);
        if (p) l->params = p;
        char **q = p ? realloc(l->names, sizeof *q * (size_t)cap) : NULL;
        if (!q) return -1;
        l->names = q;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) return -1;
    l->params[l->n++] = t;
    return 0;
}

/* ---- checkpoints: the model under "model.", the optimizer's slots under "optim.", the step ---- */

typedef struct { nb_safetensors_writer *w; nb_safetensors *st; const char *path; } state_io;

static int save_slot(const char *name, nb_tensor *t, void *ctx)
{
    char key[600];
    snprintf(key, sizeof key, "optim.%s", name);
    return nb_safetensors_writer_add(((state_io *)ctx)->w, key, t);
}

static int add_model(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    char key[600];
    snprintf(key, sizeof key, "model.%s", name);
    return nb_safetensors_writer_add(ctx, key, t);
}

static int save_checkpoint(const char *path, nb_module *m, nb_optimizer *opt, int64_t step, const options *o)
{
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    char num[32], arch[160];
    snprintf(num, sizeof num, "%lld", (long long)step);
    snprintf(arch, sizeof arch, "%s layers %lld heads %lld embd %lld hidden %lld seq_len %lld", model_names[o->model],
             (long long)o->layers, (long long)o->heads, (long long)o->embd, (long long)o->hidden, (long long)o->seq_len);
    state_io io = { w, NULL, path };
    int rc = !w || nb_safetensors_writer_meta(w, "format", CHECKPOINT_FORMAT) || nb_safetensors_writer_meta(w, "step", num) ||
             nb_safetensors_writer_meta(w, "model", arch) || nb_module_visit(m, add_model, w) ||
             nb_optimizer_visit_state(opt, save_slot, &io) || nb_safetensors_writer_save(w, path);
    nb_safetensors_writer_free(w);
    return rc ? -1 : 0;
}

static int load_slot(const char *name, nb_tensor *t, void *ctx)
{
    state_io *io = ctx;
    char key[600];
    snprintf(key, sizeof key, "optim.%s", name);
    nb_tensor *saved = nb_safetensors_get(io->st, key);
    nb_shape a = saved ? nb_shape_of(saved) : NB_SHAPE0, b = nb_shape_of(t);
    if (!saved || a.ndim != b.ndim || memcmp(a.d, b.d, sizeof(int64_t) * (size_t)a.ndim)) {
        fprintf(stderr, PROG ": %s: the optimizer slot %s is missing or of another shape\n", io->path, key);
        return -1;
    }
    return nb_copy_into(t, saved);
}

/* the step the checkpoint was at, or -1 */
static int64_t resume(const char *path, nb_module *m, nb_optimizer *opt)
{
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) return -1;
    const char *format = nb_safetensors_meta(st, "format"), *step_text = nb_safetensors_meta(st, "step");
    char *end = NULL;
    long long step = step_text ? strtoll(step_text, &end, 10) : -1;
    state_io io = { NULL, st, path };
    int rc = 0;
    if (!format || strcmp(format, CHECKPOINT_FORMAT) || !step_text || *end || step < 0) {
        fprintf(stderr, PROG ": %s is not a " PROG " checkpoint (format %s, step %s)\n", path, format ? format : "none",
                step_text ? step_text : "none");
        rc = -1;
    }
    if (rc == 0 && nb_module_load(m, path, "model.", true, NULL)) {
        fprintf(stderr, PROG ": %s\n" PROG ": --resume needs the model options of the checkpoint (%s)\n", nb_last_error(),
                nb_safetensors_meta(st, "model"));
        rc = -1;
    }
    if (rc == 0) rc = nb_optimizer_visit_state(opt, load_slot, &io) ? -1 : 0;
    if (rc == 0) nb_optimizer_set_steps(opt, step);
    nb_safetensors_free(st);
    return rc ? -1 : step;
}

/* ---- evaluation and sampling ---- */

/* mean loss over `batches` random validation windows, in a scope of its own, grad mode off */
static double val_loss(nb_module *m, const nb_text *text, const options *o, uint64_t seed)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    bool was = nb_set_grad_enabled(false);
    nb_scope *scope = nb_scope_new();
    nb_scope_push(scope);
    double total = 0;
    for (int64_t b = 0; b < o->eval_batches && !isnan(total); b++) {
        nb_tensor *x, *y;
        total += nb_text_batch(text, true, o->batch, o->seq_len, &rng, &x, &y) ? NAN : nb_item(loss_of(m, x, y));
        nb_scope_reset(scope);
    }
    nb_scope_pop();
    nb_scope_free(scope);
    nb_set_grad_enabled(was);
    return total / (double)o->eval_batches;
}

/* n characters after the prompt: each from softmax(logits of the last position / temperature) over
 * the top_k most likely bytes (all when 0) */
static int sample(nb_module *m, const options *o, nb_rng *rng)
{
    const size_t plen = strlen(o->prompt);
    char *text = malloc(plen + (size_t)o->sample_chars + 1);
    if (!text) return -1;
    memcpy(text, o->prompt, plen);
    bool was = nb_set_grad_enabled(false);
    nb_scope *scope = nb_scope_new();
    nb_scope_push(scope);
    int64_t len = (int64_t)plen;
    int rc = 0;
    for (int64_t i = 0; i < o->sample_chars && rc == 0; i++) {
        const int64_t ctx = len < o->seq_len ? len : o->seq_len;
        nb_tensor *ids = nb_empty(NB_I64, NB_SHAPE(1, ctx));
        for (int64_t k = 0; ids && k < ctx; k++) nb_set(ids, k, (unsigned char)text[len - ctx + k]);
        nb_tensor *logits = nb_module_forward(m, ids);
        if (!logits) {
            rc = -1;
            break;
        }
        double p[256], kth = -INFINITY;
        for (int v = 0; v < 256; v++) p[v] = nb_get(logits, (ctx - 1) * 256 + v) / o->temperature;
        if (o->top_k > 0) {   /* the k-th largest logit: those below it are left out */
            double sorted[256];
            memcpy(sorted, p, sizeof sorted);
            for (int a = 0; a < o->top_k; a++)
                for (int b = a + 1; b < 256; b++)
                    if (sorted[b] > sorted[a]) {
                        double t = sorted[a];
                        sorted[a] = sorted[b];
                        sorted[b] = t;
                    }
            kth = sorted[o->top_k - 1];
        }
        double max = -INFINITY, total = 0;
        for (int v = 0; v < 256; v++) max = fmax(max, p[v]);
        for (int v = 0; v < 256; v++) total += p[v] = p[v] >= kth ? exp(p[v] - max) : 0;
        double u = nb_rng_uniform(rng) * total;
        int pick = 255;
        for (int v = 0; v < 256; v++)
            if ((u -= p[v]) < 0 && p[v] > 0) {
                pick = v;
                break;
            }
        text[len++] = (char)pick;
        nb_scope_reset(scope);
    }
    nb_scope_pop();
    nb_scope_free(scope);
    nb_set_grad_enabled(was);
    text[len] = '\0';
    if (rc == 0) printf("sample (temperature %g, top-k %lld):\n%s\n", o->temperature, (long long)o->top_k, text);
    free(text);
    return rc;
}

/* ---- history and plot ---- */

typedef struct { int64_t n, cap; double *train, *val, *lr; } history;

static int history_add(history *h, double train, double val, double lr)
{
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 1024;
        double *t = realloc(h->train, sizeof *t * (size_t)cap), *v = t ? realloc(h->val, sizeof *v * (size_t)cap) : NULL;
        if (t) h->train = t;
        if (v) h->val = v;
        double *l = v ? realloc(h->lr, sizeof *l * (size_t)cap) : NULL;
        if (!l) return -1;
        h->lr = l;
        h->cap = cap;
    }
    h->train[h->n] = train, h->val[h->n] = val, h->lr[h->n] = lr;
    h->n++;
    return 0;
}

static int write_history(const char *path, const history *h, int64_t first_step)
{
    FILE *f = fopen(path, "w");
    if (!f) return fprintf(stderr, PROG ": --history %s: cannot write it\n", path), -1;
    fprintf(f, "step,train_loss,val_loss,lr\n");
    for (int64_t i = 0; i < h->n; i++) {
        fprintf(f, "%lld,%.6f,", (long long)(first_step + i), h->train[i]);
        if (!isnan(h->val[i])) fprintf(f, "%.6f", h->val[i]);
        fprintf(f, ",%.6g\n", h->lr[i]);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int write_plot(const char *path, const char *csv, const char *title)
{
    const char *dot = strrchr(path, '.');
    const char *term = !dot ? NULL : !strcmp(dot, ".png") ? "pngcairo size 1000,600 font ',10'"
                     : !strcmp(dot, ".svg") ? "svg size 1000,600 dynamic font 'sans,10'"
                     : !strcmp(dot, ".pdf") ? "pdfcairo size 10in,6in font ',10'" : NULL;
    if (!term) return fprintf(stderr, PROG ": --plot %s: the extension must be .png, .svg or .pdf\n", path), -1;
    if (!tool_on_path("gnuplot")) return fprintf(stderr, PROG ": gnuplot not found (apt-get install gnuplot-nox): no plot\n"), 0;
    FILE *gp = popen("gnuplot", "w");
    if (!gp) return -1;
    fprintf(gp, "set terminal %s\nset output '%s'\nset datafile separator ','\nset title '%s' noenhanced\n"
                "set xlabel 'step'\nset ylabel 'loss (nats per character)'\nset grid\nset key top right\n"
                "plot '%s' using 1:2 every ::1 with lines lc rgb '#9ecae1' title 'training (batch)', "
                "'%s' using 1:($3 == $3 ? $3 : 1/0) every ::1 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'validation'\n",
            term, path, title, csv, csv);
    return pclose(gp) == 0 ? 0 : -1;
}

/* ---- main ---- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig, interrupted = 1; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *hint)
{
    fprintf(stderr, PROG ": %s\n", nb_last_error());
    if (hint) fprintf(stderr, PROG ": %s\n", hint);
    return 1;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);
    o.threads = tool_set_threads(o.threads, (int)sysconf(_SC_NPROCESSORS_ONLN), argv);
    const bool say = !o.quiet;
    nb_text text;
    if (o.tokens ? nb_text_load_tokens(&text, o.tokens, o.val_fraction) : nb_text_load(&text, o.text, o.val_fraction))
        return fail(!o.tokens && !strcmp(o.text, DEFAULT_TEXT)
                        ? "install the default corpus with 'apt-get install fortunes' or pass --text PATH" : NULL);
    if (o.tokens) o.text = o.tokens;
    if (say) {
        const nb_blas_config blas = nb_blas_info();
        printf("threads: %d; blas: %s; kernels: %s\n", o.threads, blas.config, nb_isa_name(nb_isa_current()));
        printf("text: %s: %lld %s, %lld train, %lld validation\n", o.text, (long long)text.n, o.tokens ? "tokens" : "bytes",
               (long long)text.n_train, (long long)(text.n - text.n_train));
    }
    nb_module *m = build(&o);
    param_list pl = { 0 };
    nb_optimizer *opt = NULL;
    int status = 1;
    history h = { 0 };
    if (!m || nb_module_visit(m, collect, &pl)) {
        if (m) fprintf(stderr, PROG ": out of memory listing the model's parameters\n");
        else fail(NULL);
        goto out;
    }
    const int64_t vocab = nb_module_find(m, o.model == MODEL_GPT ? "wte.weight" : "0.weight")->shape[0];
    if (o.init) {   /* the checkpoint's sizes */
        const int64_t max_t = nb_module_find(m, "wpe.weight")->shape[0];
        if (o.seq_len > max_t) o.seq_len = max_t;
        o.layers = m->children[2]->n_children, o.embd = nb_module_find(m, "wte.weight")->shape[1];
    }
    if (text.vocab > vocab) {
        fprintf(stderr, PROG ": the corpus holds ids up to %lld but the model's vocabulary has %lld\n", (long long)text.vocab - 1,
                (long long)vocab);
        goto out;
    }
    nb_optim_config oc = nb_optim_defaults(NB_ADAMW);
    oc.lr = o.lr, oc.weight_decay = o.weight_decay, oc.beta2 = 0.95;
    if (!(opt = nb_optimizer_new(oc, pl.n, pl.params, (const char *const *)pl.names))) {
        fail(NULL);
        goto out;
    }
    int64_t step = 0;
    if (o.resume && (step = resume(o.resume, m, opt)) < 0) goto out;
    if (say) {
        printf("model: %s%s%s, %lld parameters", model_names[o.model], o.init ? " from " : "", o.init ? o.init : "",
               (long long)nb_module_numel(m, false));
        if (o.model == MODEL_GPT)
            printf(" (%lld layers, %lld heads, width %lld, context %lld; output tied to the embedding)", (long long)o.layers,
                   (long long)o.heads, (long long)o.embd, (long long)o.seq_len);
        else
            printf(" (embedding %lld, state %lld, context %lld)", (long long)o.embd, (long long)o.hidden, (long long)o.seq_len);
        printf("\ntraining: AdamW lr %g (warm-up %lld, cosine to %g), weight decay %g, clip %g, batch %lld x %lld bytes, "
               "steps %lld to %lld%s\n", o.lr, (long long)o.warmup, o.lr_min, o.weight_decay, o.clip, (long long)o.batch,
               (long long)o.seq_len, (long long)step, (long long)o.steps, o.resume ? " (resumed)" : "");
        fflush(stdout);
    }
    const int64_t first_step = step;
    nb_scope *scope = nb_scope_new();
    struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    double t_start = now_s(), t_last = t_start, t_drawn = 0, last_val = NAN;
    const bool tty = isatty(STDOUT_FILENO);
    int64_t tokens_since = 0;
    int rc = 0;
    for (; step < o.stop_at && rc == 0 && !interrupted; step++) {
        /* the batches of step k depend on the seed and k only: a resumed run draws the same ones */
        nb_rng rng;
        nb_rng_seed(&rng, o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)step);
        const double lr = step < o.warmup ? nb_lr_warmup(o.lr, step, o.warmup)
                                          : nb_lr_cosine(o.lr, step - o.warmup, o.steps - o.warmup, o.lr_min);
        nb_optimizer_set_lr(opt, lr);
        nb_scope_push(scope);
        nb_tensor *x, *y, *loss = NULL;
        nb_optimizer_zero_grad(opt);
        if (nb_text_batch(&text, false, o.batch, o.seq_len, &rng, &x, &y) == 0) loss = loss_of(m, x, y);
        double value = loss ? nb_item(loss) : NAN;
        if (!loss || nb_backward(loss) || !isfinite(value)) rc = -1;
        if (rc == 0 && o.clip > 0 && isnan(nb_optimizer_clip_grad_norm(opt, o.clip))) rc = -1;
        if (rc == 0) rc = nb_optimizer_step(opt);
        nb_scope_pop();
        nb_scope_reset(scope);
        if (rc) {
            if (loss && !isfinite(value)) fprintf(stderr, PROG ": the loss diverged at step %lld: try a smaller --lr\n", (long long)step + 1);
            else fail(NULL);
            break;
        }
        tokens_since += o.batch * o.seq_len;
        const bool eval = (step + 1) % o.eval_every == 0 || step + 1 == o.stop_at;
        last_val = NAN;
        if (eval) last_val = val_loss(m, &text, &o, o.seed + 1);
        if (history_add(&h, value, last_val, lr)) rc = -1;
        /* on a terminal a bar redrawn in place (with the rate over the whole run); lines every 50
         * steps otherwise; an evaluation always gets its line */
        const double t = now_s();
        if (say && tty && !eval && t - t_drawn >= 0.2) {
            const int width = 30, fill = (int)(width * (step + 1) / o.stop_at);
            char bar[32];
            for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            printf("\rstep %5lld/%lld [%s] loss %.4f  %.0f tokens/s\033[K", (long long)step + 1, (long long)o.steps, bar, value,
                   (double)((step + 1 - first_step) * o.batch * o.seq_len) / (t - t_start));
            fflush(stdout);
            t_drawn = t;
        }
        if (say && (eval || (!tty && (step + 1) % 50 == 0))) {
            printf("%sstep %5lld/%lld  loss %.4f  lr %.2e  %.0f tokens/s", tty ? "\r\033[K" : "", (long long)step + 1,
                   (long long)o.steps, value, lr, (double)tokens_since / (t - t_last));
            if (eval) printf("  val loss %.4f (%.3f bits/char)", last_val, last_val / log(2));
            printf("\n");
            fflush(stdout);
            t_last = t, tokens_since = 0;
        }
        if (eval && o.checkpoint && save_checkpoint(o.checkpoint, m, opt, step + 1, &o)) {
            fail("--checkpoint: the checkpoint could not be written");
            rc = -1;
        }
    }
    nb_scope_free(scope);
    signal(SIGINT, SIG_DFL);
    if (rc) goto out;
    if (say && step > first_step)
        printf("trained %lld steps in %.1f s\n", (long long)(step - first_step), now_s() - t_start);
    if (o.history && (write_history(o.history, &h, first_step + 1) ||
                      (o.plot && write_plot(o.plot, o.history, "nabla-lm: loss per character"))))
        goto out;
    if (o.plot && !o.history) {   /* the plot reads the history: a temporary one */
        char tmp[] = "/tmp/nabla-lm-history-XXXXXX";
        int fd = mkstemp(tmp);
        int bad = fd < 0 || write_history(tmp, &h, first_step + 1) || write_plot(o.plot, tmp, "nabla-lm: loss per character");
        if (fd >= 0) close(fd), unlink(tmp);
        if (bad) goto out;
    }
    if (o.save_llmc && nb_gpt_save_llmc(m, o.save_llmc)) {
        fail(NULL);
        goto out;
    }
    if (o.save_model && nb_module_save(m, o.save_model)) {
        fail(NULL);
        goto out;
    }
    if (o.sample_chars > 0 && vocab == 256) {   /* bytes; a token model's samples would need its tokenizer */
        nb_rng rng;
        nb_rng_seed(&rng, o.seed + 2);
        if (sample(m, &o, &rng)) {
            fail(NULL);
            goto out;
        }
    }
    if (isnan(last_val)) last_val = val_loss(m, &text, &o, o.seed + 1);
    printf("val loss: %.4f nats (%.3f bits per character)\n", last_val, last_val / log(2));
    status = interrupted ? 130 : 0;
out:
    fflush(stdout);
    free(h.train), free(h.val), free(h.lr);
    for (int i = 0; i < pl.n; i++) free(pl.names[i]);
    free(pl.names);
    free(pl.params);
    nb_optimizer_free(opt);
    nb_module_free(m);
    nb_text_free(&text);
    nb_cleanup();
    return status;
}
