/* The Solver: minibatch training with accuracy checks, histories, lr decay, best-parameter keeping
 * and atomic checkpoints (cs231n assignment 2's Solver, plus shuffling, clipping and resume). */
#include "../internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { double *v; int64_t n, cap; } history;

struct nb_solver {
    nb_model *model;
    nb_tensor *train_x, *train_y, *val_x, *val_y;
    nb_solver_config cfg;
    nb_optimizer *optim;
    nb_scope *scope;                 /* one iteration's tensors; reset after each */
    int n_tensors;                   /* the model's tensors, in visiting order */
    char **names;
    nb_tensor **tensors, **best;     /* best: persistent copies at the best validation accuracy */
    int n_params, n_buffers;         /* the tensors requiring grad, and the others (running stats) */
    nb_tensor **params, **buffers;
    history loss, train_acc, val_acc;
    double best_val_acc;
    int64_t epoch, iteration;        /* completed */
    int64_t num_iterations;          /* of the training under way (0 before nb_solver_train) */
    double lr;                       /* before warm-up and cosine: what step and plateau decays multiply */
};

nb_solver_config nb_solver_defaults(void)
{
    return (nb_solver_config){
        .optim = nb_optim_defaults(NB_SGD),
        .lr_decay = 1.0,
        .lr_schedule = NB_LR_STEP,
        .lr_step_epochs = 1,
        .lr_patience = 1,
        .batch_size = 100,
        .num_epochs = 10,
        .num_train_samples = 1000,
        .num_val_samples = 0,
        .print_every = 10,
        .verbose = true,
        .batch_mode = NB_BATCH_SAMPLE,
    };
}

static int history_push(history *h, double x)
{
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 64;
        double *v = realloc(h->v, sizeof *v * (size_t)cap);
        if (!v) {
            nb_error("nb_solver: out of memory for the histories");
            return -1;
        }
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = x;
    return 0;
}

/* a generator for one purpose in one epoch: runs depend only on (seed, epoch, purpose) */
static void epoch_rng(nb_rng *r, uint64_t seed, int64_t epoch, uint64_t purpose)
{
    nb_rng_seed(r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)) ^ (purpose << 56));
}

enum { RNG_BATCHES = 1, RNG_DROPOUT, RNG_ACCURACY };

/* ---- construction ---- */

typedef struct { nb_solver *s; bool failed; } collect_ctx;

static int collect(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)is_buffer;
    nb_solver *s = ctx;
    int i = s->n_tensors;
    char **names = realloc(s->names, sizeof *names * (size_t)(i + 1));
    if (names) s->names = names;
    nb_tensor **tensors = realloc(s->tensors, sizeof *tensors * (size_t)(i + 1));
    if (tensors) s->tensors = tensors;
    char *copy = strdup(name);
    if (!names || !tensors || !copy) {
        free(copy);
        nb_error("nb_solver_new: out of memory");
        return -1;
    }
    s->names[i] = copy;
    s->tensors[i] = t;
    s->n_tensors = i + 1;
    return 0;
}

static bool check_split(const char *what, const nb_tensor *x, const nb_tensor *y)
{
    if (!x || !y) {
        nb_error("nb_solver_new: the %s data is NULL", what);
        return false;
    }
    if (x->ndim < 1 || y->ndim != 1 || y->dtype != NB_I64 || x->shape[0] != y->shape[0]) {
        nb_error("nb_solver_new: %s data %s with labels %s %s: expected x [N,...] and i64 labels [N]", what,
                 nb_shp(x), nb_dtype_name(y->dtype), nb_shp(y));
        return false;
    }
    return true;
}

static bool check_config(const nb_solver_config *c)
{
    const struct { const char *rule; bool bad; double value; } rules[] = {
        { "batch_size must be >= 1", c->batch_size < 1, (double)c->batch_size },
        { "num_epochs must be >= 0", c->num_epochs < 0, (double)c->num_epochs },
        { "num_train_samples must be >= 0 (0 = all)", c->num_train_samples < 0, (double)c->num_train_samples },
        { "num_val_samples must be >= 0 (0 = all)", c->num_val_samples < 0, (double)c->num_val_samples },
        { "print_every must be >= 1", c->print_every < 1, (double)c->print_every },
        { "lr_decay must be a finite number > 0", !(c->lr_decay > 0 && isfinite(c->lr_decay)), c->lr_decay },
        { "clip_norm must be a finite number >= 0 (0 = off)", !(c->clip_norm >= 0 && isfinite(c->clip_norm)),
          c->clip_norm },
        { "crop_pad must be >= 0 (0 = off)", c->crop_pad < 0, (double)c->crop_pad },
        { "lr_step_epochs must be >= 1", c->lr_step_epochs < 1, (double)c->lr_step_epochs },
        { "lr_patience must be >= 1", c->lr_patience < 1, (double)c->lr_patience },
        { "lr_min must be a finite number >= 0", !(c->lr_min >= 0 && isfinite(c->lr_min)), c->lr_min },
        { "warmup_iterations must be >= 0", c->warmup_iterations < 0, (double)c->warmup_iterations },
        { "lr_schedule must be NB_LR_STEP, NB_LR_COSINE or NB_LR_PLATEAU",
          c->lr_schedule != NB_LR_STEP && c->lr_schedule != NB_LR_COSINE && c->lr_schedule != NB_LR_PLATEAU,
          (double)c->lr_schedule },
        { "lr_decay must be 1 with the cosine schedule (it sets the decay itself)",
          c->lr_schedule == NB_LR_COSINE && c->lr_decay != 1, c->lr_decay },
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i].bad) {
            nb_error("nb_solver_new: %s, got %g", rules[i].rule, rules[i].value);
            return false;
        }
    if (c->batch_mode != NB_BATCH_SAMPLE && c->batch_mode != NB_BATCH_SHUFFLE) {
        nb_error("nb_solver_new: batch_mode must be NB_BATCH_SAMPLE or NB_BATCH_SHUFFLE");
        return false;
    }
    return true;
}

nb_solver *nb_solver_new(nb_model *model, nb_tensor *train_x, nb_tensor *train_y, nb_tensor *val_x,
                         nb_tensor *val_y, const nb_solver_config *cfg)
{
    if (!model || !cfg) {
        nb_error("nb_solver_new: NULL model or configuration");
        return NULL;
    }
    if (!check_split("training", train_x, train_y) || !check_split("validation", val_x, val_y) ||
        !check_config(cfg))
        return NULL;
    if (cfg->dist && cfg->batch_size < nb_dist_size(cfg->dist)) {
        nb_error("nb_solver_new: batch_size %lld is smaller than the number of ranks %d", (long long)cfg->batch_size,
                 nb_dist_size(cfg->dist));
        return NULL;
    }
    if (train_x->shape[0] == 0 || val_x->shape[0] == 0) {
        nb_error("nb_solver_new: the %s set is empty", train_x->shape[0] == 0 ? "training" : "validation");
        return NULL;
    }
    nb_solver *s = calloc(1, sizeof *s);
    if (!s) {
        nb_error("nb_solver_new: out of memory");
        return NULL;
    }
    *s = (nb_solver){ .model = model, .train_x = train_x, .train_y = train_y, .val_x = val_x, .val_y = val_y,
                      .cfg = *cfg, .best_val_acc = -1, .lr = cfg->optim.lr };
    s->scope = nb_scope_new();
    if (!s->scope || nb_module_visit(model->net, collect, s) != 0) goto fail;
    const size_t slots = (size_t)(s->n_tensors ? s->n_tensors : 1);
    s->best = calloc(slots, sizeof *s->best);
    s->params = calloc(slots, sizeof *s->params);
    s->buffers = calloc(slots, sizeof *s->buffers);
    const char **names = calloc(slots, sizeof *names);
    for (int i = 0; s->params && s->buffers && names && i < s->n_tensors; i++)
        if (s->tensors[i]->requires_grad) {
            s->params[s->n_params] = s->tensors[i];
            names[s->n_params++] = s->names[i];
        } else {
            s->buffers[s->n_buffers++] = s->tensors[i];
        }
    if (s->best && s->params && s->buffers && names) s->optim = nb_optimizer_new(cfg->optim, s->n_params, s->params, names);
    else nb_error("nb_solver_new: out of memory");
    free(names);
    if (!s->optim) goto fail;
    return s;
fail:
    nb_solver_free(s);
    return NULL;
}

void nb_solver_free(nb_solver *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_tensors; i++) {
        free(s->names[i]);
        if (s->best) nb_free(s->best[i]);
    }
    free(s->names);
    free(s->tensors);
    free(s->best);
    free(s->params);
    free(s->buffers);
    free(s->loss.v);
    free(s->train_acc.v);
    free(s->val_acc.v);
    nb_optimizer_free(s->optim);
    nb_scope_free(s->scope);
    free(s);
}

/* ---- accuracy ---- */

int nb_solver_accuracy(nb_solver *s, nb_tensor *x, nb_tensor *y, int64_t num_samples, double *acc)
{
    if (!s || !x || !y || !acc) {
        nb_error("nb_solver_accuracy: NULL argument");
        return -1;
    }
    int64_t n = x->shape[0];
    nb_scope_push(s->scope);
    if (num_samples > 0 && num_samples < n) {
        /* cs231n: a subsample drawn with replacement */
        nb_rng r;
        epoch_rng(&r, s->cfg.seed ^ (uint64_t)s->iteration, s->epoch, RNG_ACCURACY);
        nb_tensor *idx = nb_empty(NB_I64, NB_SHAPE(num_samples));
        for (int64_t i = 0; idx && i < num_samples; i++) ((int64_t *)idx->data)[i] = (int64_t)(nb_rng_uniform(&r) * (double)n);
        x = nb_index_select(x, 0, idx);
        y = nb_index_select(y, 0, idx);
    }
    /* with ranks: each one's shard of the samples, the correct counts summed */
    int64_t begin = 0, end = x ? x->shape[0] : 0;
    nb_dist_shard(s->cfg.dist, end, &begin, &end);
    if (x && y && s->cfg.dist) {
        x = nb_take_rows(x, begin, end - begin);
        y = nb_take_rows(y, begin, end - begin);
    }
    *acc = 0;   /* an empty shard counts nothing */
    int rc = x && y ? (end > begin ? nb_model_accuracy(s->model, x, y, s->cfg.batch_size, acc) : 0) : -1;
    if (s->cfg.dist) {
        double counts[2] = { round(*acc * (double)(end - begin)), (double)(end - begin) };
        rc = nb_dist_check(s->cfg.dist, rc != 0) || nb_dist_sum(s->cfg.dist, counts, 2) ? -1 : 0;
        if (rc == 0) *acc = counts[0] / counts[1];
    }
    nb_scope_pop();
    nb_scope_reset(s->scope);
    return rc;
}

static int keep_best(nb_solver *s)
{
    for (int i = 0; i < s->n_tensors; i++) {
        if (!s->best[i]) s->best[i] = nb_persist(s->tensors[i]);
        else nb_copy_into(s->best[i], s->tensors[i]);
        if (!s->best[i]) return -1;
    }
    return 0;
}

static int check_accuracy(nb_solver *s, nb_solver_progress *p)
{
    if (nb_dist_average(s->cfg.dist, s->n_buffers, s->buffers)) return -1;   /* the ranks' running stats */
    if (nb_solver_accuracy(s, s->train_x, s->train_y, s->cfg.num_train_samples, &p->train_acc) ||
        nb_solver_accuracy(s, s->val_x, s->val_y, s->cfg.num_val_samples, &p->val_acc) ||
        history_push(&s->train_acc, p->train_acc) || history_push(&s->val_acc, p->val_acc))
        return -1;
    p->checked = true;
    if (s->cfg.verbose && nb_dist_rank(s->cfg.dist) == 0)
        printf("(Epoch %lld / %lld) train acc: %f; val_acc: %f\n", (long long)s->epoch,
               (long long)s->cfg.num_epochs, p->train_acc, p->val_acc);
    if (p->val_acc > s->best_val_acc) {
        s->best_val_acc = p->val_acc;
        return keep_best(s);
    }
    return 0;
}

/* ---- the learning rate ---- */

static const char *const schedule_names[] = { [NB_LR_STEP] = "step", [NB_LR_COSINE] = "cosine", [NB_LR_PLATEAU] = "plateau" };

int nb_lr_schedule_parse(const char *name, nb_lr_schedule *schedule)
{
    for (int k = 0; name && schedule && k < 3; k++)
        if (!strcmp(name, schedule_names[k])) {
            *schedule = (nb_lr_schedule)k;
            return 0;
        }
    nb_error("nb_lr_schedule_parse: unknown schedule '%s' (expected step, cosine or plateau)", name ? name : "(null)");
    return -1;
}

const char *nb_lr_schedule_name(nb_lr_schedule schedule)
{
    if (schedule < NB_LR_STEP || schedule > NB_LR_PLATEAU) {
        nb_error("nb_lr_schedule_name: no schedule %d", (int)schedule);
        return NULL;
    }
    return schedule_names[schedule];
}

/* the rate of step k + 1 (k steps done) of num_iterations: warm-up, then the cosine when chosen */
static double lr_at(const nb_solver *s, int64_t k, int64_t num_iterations)
{
    const nb_solver_config *c = &s->cfg;
    if (k < c->warmup_iterations || c->lr_schedule != NB_LR_COSINE) return nb_lr_warmup(s->lr, k, c->warmup_iterations);
    const int64_t span = num_iterations - c->warmup_iterations;   /* the cosine's steps, the last at lr_min */
    return span > 1 ? nb_lr_cosine(fmax(s->lr, c->lr_min), k - c->warmup_iterations, span - 1, c->lr_min) : c->lr_min;
}

/* epoch-end checks in a row (the last ones) without a better validation accuracy: the plateau */
static int64_t epochs_without_gain(const nb_solver *s)
{
    double best = -1;
    int64_t since = 0;
    for (int64_t i = 0; i < s->val_acc.n; i++) {
        if (s->val_acc.v[i] > best) {
            best = s->val_acc.v[i];
            since = 0;
        } else if (i > 0) {
            since++;
        }
    }
    return since;
}

/* the decays of an epoch's end, after its accuracy check */
static int decay_at_epoch_end(nb_solver *s)
{
    const nb_solver_config *c = &s->cfg;
    const int64_t flat = epochs_without_gain(s);
    if ((c->lr_schedule == NB_LR_STEP && s->epoch % c->lr_step_epochs == 0) ||
        (c->lr_schedule == NB_LR_PLATEAU && flat > 0 && flat % c->lr_patience == 0))
        s->lr *= c->lr_decay;
    if (!isfinite(s->lr)) {   /* a large decay, many epochs: the optimizer would refuse it */
        nb_error("nb_solver_train: the learning rate became %g after epoch %lld (lr_decay %g)", s->lr,
                 (long long)s->epoch, c->lr_decay);
        return -1;
    }
    return 0;
}

int nb_solver_set_lr(nb_solver *s, double lr)
{
    if (!s) {
        nb_error("nb_solver_set_lr: NULL solver");
        return -1;
    }
    if (!(lr >= 0 && isfinite(lr))) {
        nb_error("nb_solver_set_lr: the rate must be finite and >= 0, got %g", lr);
        return -1;
    }
    s->lr = lr;
    return 0;
}

/* ---- training ---- */

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the loss of the minibatch (this rank's shard of it), gradients left in the parameters; NaN with an error */
static double shard_loss(nb_solver *s, nb_tensor *xb, nb_tensor *yb)
{
    nb_tensor *loss = nb_model_loss(s->model, xb, yb);
    double value = loss ? nb_item(loss) : NAN;
    if (nb_anomaly()) {   /* anomaly mode found where the NaN or Inf began */
        nb_error("loss diverged at iteration %lld (%s): try a smaller learning rate",
                 (long long)s->iteration + 1, nb_anomaly());
        return NAN;
    }
    if (!loss) return NAN;
    if (!isfinite(value)) {
        nb_error("loss diverged at iteration %lld: try a smaller learning rate", (long long)s->iteration + 1);
        return NAN;
    }
    return value;
}

/* one minibatch step in the solver's scope; returns the loss or NaN with an error. With ranks: each
 * one's shard, then the gradients and losses summed weighted by the shards' sizes */
static double step(nb_solver *s, nb_tensor *xb, nb_tensor *yb)
{
    nb_dist *d = s->cfg.dist;
    const int64_t batch = xb->shape[0];
    int64_t begin, end;
    nb_dist_shard(d, batch, &begin, &end);
    if (d) {
        xb = nb_take_rows(xb, begin, end - begin);
        yb = nb_take_rows(yb, begin, end - begin);
    }
    double value = xb && yb ? shard_loss(s, xb, yb) : NAN;
    if (d) {
        double weight = (double)(end - begin) / (double)batch, weighted = value * weight;
        if (nb_dist_check(d, isnan(value)) || nb_dist_allreduce_grads(d, s->n_params, s->params, weight) ||
            nb_dist_sum(d, &weighted, 1))
            return NAN;
        value = weighted;
    }
    if (isnan(value)) return NAN;
    if (s->cfg.clip_norm > 0) nb_optimizer_clip_grad_norm(s->optim, s->cfg.clip_norm);
    return nb_optimizer_step(s->optim) ? NAN : value;
}

static nb_batcher *epoch_batcher(nb_solver *s)
{
    nb_rng r;
    epoch_rng(&r, s->cfg.seed, s->epoch, RNG_BATCHES);
    nb_batcher *b = nb_batcher_new(s->train_x, s->train_y, s->cfg.batch_size, s->cfg.batch_mode, &r);
    if (b && (s->cfg.crop_pad || s->cfg.hflip) && nb_batcher_set_augment(b, s->cfg.crop_pad, s->cfg.hflip)) {
        nb_batcher_free(b);
        return NULL;
    }
    /* dropout masks: the model's own generator, if it has one */
    nb_rng d;
    epoch_rng(&d, s->cfg.seed, s->epoch, RNG_DROPOUT);
    nb_model_seed(s->model, nb_rng_next(&d) ^ (0x9e3779b97f4a7c15ULL * (uint64_t)nb_dist_rank(s->cfg.dist)));   /* own masks per rank */
    return b;
}

/* the iterations of one epoch, as the batcher counts them; -1 on error */
static int64_t batches_per_epoch(const nb_solver *s)
{
    nb_rng unused;
    nb_rng_seed(&unused, 0);
    nb_batcher *probe = nb_batcher_new(s->train_x, s->train_y, s->cfg.batch_size, s->cfg.batch_mode, &unused);
    if (!probe) return -1;
    const int64_t n = nb_batcher_batches_per_epoch(probe);
    nb_batcher_free(probe);
    return n;
}

static int restore_best(nb_solver *s)
{
    for (int i = 0; i < s->n_tensors; i++)
        if (s->best[i] && nb_copy_into(s->tensors[i], s->best[i])) return -1;
    return 0;
}

int nb_solver_train(nb_solver *s)
{
    if (!s) {
        nb_error("nb_solver_train: NULL solver");
        return -1;
    }
    const nb_solver_config *c = &s->cfg;
    const int64_t per_epoch = batches_per_epoch(s);
    if (per_epoch < 1) return -1;
    int64_t total = per_epoch * c->num_epochs;
    /* every rank starts from rank 0's tensors */
    if (nb_dist_broadcast(c->dist, s->n_tensors, s->tensors)) return -1;
    const bool speak = c->verbose && nb_dist_rank(c->dist) == 0;
    double start = seconds();
    int64_t images = 0;
    int rc = 0;
    s->num_iterations = total;
    while (rc == 0 && s->epoch < c->num_epochs) {
        nb_batcher *b = epoch_batcher(s);
        if (!b) return -1;
        /* continuing inside an epoch (the callback stopped it): skip the batches already taken */
        for (int64_t k = s->iteration % per_epoch; rc == 0 && k > 0; k--) {
            nb_tensor *xb, *yb;
            nb_scope_push(s->scope);
            if (nb_batcher_next(b, &xb, &yb) != 1) rc = -1;
            nb_scope_pop();
            nb_scope_reset(s->scope);
        }
        while (rc == 0) {
            nb_tensor *xb, *yb;
            nb_optimizer_set_lr(s->optim, lr_at(s, s->iteration, total));
            nb_scope_push(s->scope);
            int got = nb_batcher_next(b, &xb, &yb);
            double loss = got == 1 ? step(s, xb, yb) : NAN;
            int64_t batch = got == 1 ? xb->shape[0] : 0;
            nb_scope_pop();
            nb_scope_reset(s->scope);
            if (got == 0) break;
            if (got < 0 || isnan(loss) || history_push(&s->loss, loss)) {
                rc = -1;
                break;
            }
            s->iteration++;
            images += batch;
            /* cs231n prints iterations 1, 1 + print_every, 1 + 2·print_every, ... */
            if (speak && (s->iteration - 1) % c->print_every == 0)
                printf("(Iteration %lld / %lld) loss: %f\n", (long long)s->iteration, (long long)total, loss);
            bool epoch_end = s->iteration % per_epoch == 0;
            if (epoch_end) s->epoch++;
            double elapsed = seconds() - start;
            nb_solver_progress p = { .iteration = s->iteration, .num_iterations = total, .epoch = s->epoch,
                                     .num_epochs = c->num_epochs, .loss = loss, .elapsed_s = elapsed,
                                     .images_per_s = elapsed > 0 ? (double)images / elapsed : 0,
                                     .train_acc = NAN, .val_acc = NAN, .solver = s };
            if (((s->iteration == 1 || s->iteration == total || epoch_end) && check_accuracy(s, &p)) ||
                (epoch_end && decay_at_epoch_end(s))) {
                rc = -1;
                break;
            }
            p.lr = lr_at(s, s->iteration, total);
            if (epoch_end && c->checkpoint_path &&
                (c->dist ? nb_dist_check(c->dist, nb_solver_save(s, c->checkpoint_path) != 0)
                         : nb_solver_save(s, c->checkpoint_path))) {
                rc = -1;
                break;
            }
            double stop = c->callback && c->callback(&p, c->callback_ctx);
            if (c->dist && nb_dist_sum(c->dist, &stop, 1)) {
                rc = -1;
                break;
            }
            if (stop) {
                rc = 1;
                break;
            }
        }
        nb_batcher_free(b);
    }
    if (rc == 0 && restore_best(s)) rc = -1;
    return rc;
}

/* ---- checkpoints: model tensors, optimizer state, best tensors, histories, position ---- */

/* 2: records what resuming must match (the batches, the data, the optimizer) */
#define CHECKPOINT_FORMAT "nabla-solver-2"

/* ---- what a resumed solver must share with the one that saved: written as metadata, compared as text */

/* v in the fewest digits that read back as v */
static const char *exact(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, size, "%.17g", v);
    return buf;
}

/* FNV-1a over the shape and up to 4096 evenly spaced values: tells data sets apart without reading all */
static uint64_t fingerprint(uint64_t h, const nb_tensor *t)
{
    const int64_t n = nb_numel(t), step = n > 4096 ? n / 4096 : 1;
    for (int i = 0; i < t->ndim; i++) h = (h ^ (uint64_t)t->shape[i]) * 0x100000001b3ULL;
    for (int64_t i = 0; i < n; i += step) {
        double v = nb_get(t, i);
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        h = (h ^ bits) * 0x100000001b3ULL;
    }
    return h;
}

enum { ID_BATCH, ID_TRAIN_DATA, ID_VAL_DATA, ID_OPTIMIZER, N_IDS };
static const char *const id_keys[N_IDS] = { "batch", "train_data", "val_data", "optimizer" };

static void identity(const nb_solver *s, int id, char *buf, size_t size)
{
    const nb_optim_config *o = &s->cfg.optim;
    const nb_tensor *x = id == ID_VAL_DATA ? s->val_x : s->train_x, *y = id == ID_VAL_DATA ? s->val_y : s->train_y;
    char a[32], b[32], c[32], d[32];
    switch (id) {
    case ID_BATCH:
        snprintf(buf, size, "%lld %s", (long long)s->cfg.batch_size,
                 s->cfg.batch_mode == NB_BATCH_SHUFFLE ? "shuffled" : "sampled with replacement");
        break;
    case ID_TRAIN_DATA:
    case ID_VAL_DATA:
        snprintf(buf, size, "%s %s, fingerprint %016llx", nb_dtype_name(x->dtype), nb_shp(x),
                 (unsigned long long)fingerprint(fingerprint(0xcbf29ce484222325ULL, x), y));
        break;
    default:   /* the kind and every hyperparameter it reads except the learning rate, which continues */
        switch (o->kind) {
        case NB_SGD_MOMENTUM:
        case NB_NESTEROV:
            snprintf(buf, size, "%s momentum %s", nb_optim_kind_name(o->kind), exact(a, sizeof a, o->momentum));
            break;
        case NB_RMSPROP:
            snprintf(buf, size, "rmsprop decay_rate %s eps %s", exact(a, sizeof a, o->decay_rate), exact(b, sizeof b, o->eps));
            break;
        case NB_ADAM:
        case NB_ADAMW:
            snprintf(buf, size, "%s beta1 %s beta2 %s eps %s weight_decay %s", nb_optim_kind_name(o->kind),
                     exact(a, sizeof a, o->beta1), exact(b, sizeof b, o->beta2), exact(c, sizeof c, o->eps),
                     exact(d, sizeof d, o->weight_decay));
            break;
        default: snprintf(buf, size, "%s", nb_optim_kind_name(o->kind)); break;
        }
        /* the other kinds' decoupled weight decay, named when it is used (so older checkpoints match) */
        const size_t used = strlen(buf);
        if (o->kind != NB_ADAM && o->kind != NB_ADAMW && o->weight_decay != 0 && used < size)
            snprintf(buf + used, size - used, " weight_decay %s", exact(d, sizeof d, o->weight_decay));
    }
}

/* copy: on loading, copy the tensors (else only check them) */
typedef struct { nb_safetensors_writer *w; nb_safetensors *st; const char *path; bool copy; } state_io;

static int add_prefixed(nb_safetensors_writer *w, const char *prefix, const char *name, const nb_tensor *t)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return nb_safetensors_writer_add(w, key, t);
}

static int save_state(const char *name, nb_tensor *t, void *ctx)
{
    state_io *io = ctx;
    return add_prefixed(io->w, "optim.", name, t);
}

static int add_history(nb_safetensors_writer *w, const char *name, const history *h)
{
    nb_tensor *t = nb_from_doubles(NB_F64, NB_SHAPE(h->n), h->v ? h->v : (double[]){ 0 });
    return t ? nb_safetensors_writer_add(w, name, t) : -1;
}

static int add_meta(nb_safetensors_writer *w, const char *key, const char *fmt, double v)
{
    char text[64];
    snprintf(text, sizeof text, fmt, v);
    return nb_safetensors_writer_meta(w, key, text);
}

int nb_solver_save(nb_solver *s, const char *path)
{
    if (!s || !path) {
        nb_error("nb_solver_save: NULL solver or path");
        return -1;
    }
    if (nb_dist_rank(s->cfg.dist) != 0) return 0;   /* rank 0 writes for all */
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    if (!w) return -1;
    nb_scope_push(s->scope);
    state_io io = { .w = w };
    int rc = 0;
    for (int i = 0; rc == 0 && i < s->n_tensors; i++) {
        rc = add_prefixed(w, "model.", s->names[i], s->tensors[i]);
        if (rc == 0 && s->best[i]) rc = add_prefixed(w, "best.", s->names[i], s->best[i]);
    }
    if (rc == 0) rc = nb_optimizer_visit_state(s->optim, save_state, &io);
    if (rc == 0)
        rc = add_history(w, "history.loss", &s->loss) || add_history(w, "history.train_acc", &s->train_acc) ||
             add_history(w, "history.val_acc", &s->val_acc) ||
             nb_safetensors_writer_meta(w, "format", CHECKPOINT_FORMAT) ||
             nb_safetensors_writer_meta(w, "model", s->model->name ? s->model->name : "") ||
             add_meta(w, "epoch", "%.0f", (double)s->epoch) || add_meta(w, "iteration", "%.0f", (double)s->iteration) ||
             add_meta(w, "optimizer_steps", "%.0f", (double)nb_optimizer_steps(s->optim)) ||
             add_meta(w, "lr", "%.17g", s->lr) || add_meta(w, "best_val_acc", "%.17g", s->best_val_acc);
    for (int id = 0; rc == 0 && id < N_IDS; id++) {
        char text[256];
        identity(s, id, text, sizeof text);
        rc = nb_safetensors_writer_meta(w, id_keys[id], text);
    }
    if (rc == 0) rc = nb_safetensors_writer_save(w, path);
    nb_scope_pop();
    nb_scope_reset(s->scope);
    nb_safetensors_writer_free(w);
    return rc ? -1 : 0;
}

/* the checkpoint's tensor `prefix+name`, of t's shape (checked), copied into t when copy is set */
static int load_into(nb_safetensors *st, const char *path, const char *prefix, const char *name, nb_tensor *t,
                     bool copy)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    nb_tensor *saved = nb_safetensors_get(st, key);
    if (!saved) {
        nb_error("nb_solver_resume: %s: the checkpoint has no tensor '%s'", path, key);
        return -1;
    }
    if (!nb_same_shape(saved, t->ndim, t->shape)) {
        nb_error("nb_solver_resume: %s: '%s' is %s in the checkpoint but %s in this model", path, key, nb_shp(saved),
                 nb_shp(t));
        return -1;
    }
    return copy ? nb_copy_into(t, saved) : 0;
}

static int load_state(const char *name, nb_tensor *t, void *ctx)
{
    state_io *io = ctx;
    return load_into(io->st, io->path, "optim.", name, t, io->copy);
}

/* history `name`: an f64 vector of n values, each in [lo, hi] */
static int load_history(nb_safetensors *st, const char *path, const char *name, int64_t n, double lo, double hi,
                        history *h)
{
    nb_tensor *t = nb_safetensors_get(st, name);
    if (!t) {
        nb_error("nb_solver_resume: %s: the checkpoint has no tensor '%s'", path, name);
        return -1;
    }
    if (t->dtype != NB_F64 || t->ndim != 1 || t->shape[0] != n) {
        nb_error("nb_solver_resume: %s: '%s' is %s %s, expected f64 [%lld] (the checkpoint's position)", path, name,
                 nb_dtype_name(t->dtype), nb_shp(t), (long long)n);
        return -1;
    }
    h->n = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = nb_get(t, i);
        if (!(v >= lo && v <= hi)) {
            nb_error("nb_solver_resume: %s: '%s'[%lld] is %g, outside [%g, %g]", path, name, (long long)i, v, lo, hi);
            return -1;
        }
        if (history_push(h, v)) return -1;
    }
    return 0;
}

static int meta_number(nb_safetensors *st, const char *path, const char *key, double *v)
{
    const char *text = nb_safetensors_meta(st, key);
    char *end = NULL;
    *v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || *end) {
        nb_error("nb_solver_resume: %s: metadata '%s' is missing or not a number", path, key);
        return -1;
    }
    return 0;
}

/* metadata `key`: a whole number in [lo, hi] */
static int meta_count(nb_safetensors *st, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    double d;
    if (meta_number(st, path, key, &d)) return -1;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d)) {
        nb_error("nb_solver_resume: %s: metadata '%s' is %s, expected a whole number in [%lld, %lld]", path, key,
                 nb_safetensors_meta(st, key), (long long)lo, (long long)hi);
        return -1;
    }
    *v = (int64_t)d;
    return 0;
}

/* the checkpoint's batches, data and optimizer are this solver's */
static int check_identity(const nb_solver *s, nb_safetensors *st, const char *path)
{
    for (int id = 0; id < N_IDS; id++) {
        char mine[256];
        identity(s, id, mine, sizeof mine);
        const char *saved = nb_safetensors_meta(st, id_keys[id]);
        if (!saved || strcmp(saved, mine)) {
            nb_error("nb_solver_resume: %s: %s '%s' in the checkpoint but '%s' in this solver", path, id_keys[id],
                     saved ? saved : "(missing)", mine);
            return -1;
        }
    }
    return 0;
}

static bool has_tensor(const nb_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->names[i], name)) return true;
    return false;
}

/* The position (epoch, iteration, optimizer steps, lr, best accuracy) read and checked against
 * itself and the histories: iteration lies in epoch's span of per_epoch iterations, the loss history
 * holds one value per iteration, the accuracy histories one per check (iteration 1 and each epoch
 * end, once when they coincide), best_val_acc is the best of them. */
typedef struct {
    int64_t epoch, iteration, steps;
    double lr, best;
    history loss, train_acc, val_acc;
} position;

static int load_position(const nb_solver *s, nb_safetensors *st, const char *path, position *p)
{
    const int64_t per_epoch = batches_per_epoch(s);
    if (per_epoch < 1) return -1;
    const int64_t max_epoch = INT64_MAX / per_epoch - 1;
    if (meta_count(st, path, "epoch", 0, max_epoch, &p->epoch) ||
        meta_count(st, path, "iteration", p->epoch * per_epoch, p->epoch * per_epoch + per_epoch - 1, &p->iteration) ||
        meta_count(st, path, "optimizer_steps", 0, p->iteration, &p->steps) || meta_number(st, path, "lr", &p->lr) ||
        meta_number(st, path, "best_val_acc", &p->best))
        return -1;
    if (!(p->lr >= 0 && isfinite(p->lr))) {
        nb_error("nb_solver_resume: %s: metadata 'lr' is %s, expected a finite number >= 0", path,
                 nb_safetensors_meta(st, "lr"));
        return -1;
    }
    const int64_t checks = p->iteration == 0 ? 0 : per_epoch == 1 ? p->epoch : 1 + p->epoch;
    if (load_history(st, path, "history.loss", p->iteration, -DBL_MAX, DBL_MAX, &p->loss) ||
        load_history(st, path, "history.train_acc", checks, 0, 1, &p->train_acc) ||
        load_history(st, path, "history.val_acc", checks, 0, 1, &p->val_acc))
        return -1;
    double best = -1;
    for (int64_t i = 0; i < p->val_acc.n; i++)
        if (p->val_acc.v[i] > best) best = p->val_acc.v[i];
    if (p->best != best) {
        nb_error("nb_solver_resume: %s: metadata 'best_val_acc' is %s but the best validation accuracy in "
                 "'history.val_acc' is %g",
                 path, nb_safetensors_meta(st, "best_val_acc"), best);
        return -1;
    }
    return 0;
}

/* checks (copy false) or copies every model, best and optimizer tensor */
static int load_tensors(nb_solver *s, nb_safetensors *st, const char *path, bool copy)
{
    for (int i = 0; i < s->n_tensors; i++) {
        char key[512];
        snprintf(key, sizeof key, "best.%s", s->names[i]);
        if (load_into(st, path, "model.", s->names[i], s->tensors[i], copy)) return -1;
        if (!has_tensor(st, key)) continue;
        if (copy && !s->best[i] && !(s->best[i] = nb_persist(s->tensors[i]))) return -1;
        if (load_into(st, path, "best.", s->names[i], s->best[i] ? s->best[i] : s->tensors[i], copy)) return -1;
    }
    state_io io = { .st = st, .path = path, .copy = copy };
    return nb_optimizer_visit_state(s->optim, load_state, &io);
}

static void swap_history(history *a, history *b)
{
    history t = *a;
    *a = *b;
    *b = t;
}

int nb_solver_resume(nb_solver *s, const char *path)
{
    if (!s || !path) {
        nb_error("nb_solver_resume: NULL solver or path");
        return -1;
    }
    nb_safetensors *st = nb_safetensors_load(path);
    int rc = st ? 0 : -1;
    const char *format = st ? nb_safetensors_meta(st, "format") : NULL;
    if (st && (!format || strcmp(format, CHECKPOINT_FORMAT))) {
        nb_error("nb_solver_resume: %s is not a solver checkpoint (format '%s', expected '%s')", path,
                 format ? format : "none", CHECKPOINT_FORMAT);
        rc = -1;
    }
    /* everything is checked before anything changes: a refused checkpoint leaves the solver as it was */
    position p = { 0 };
    if (rc == 0)
        rc = check_identity(s, st, path) || load_position(s, st, path, &p) || load_tensors(s, st, path, false) ? -1 : 0;
    /* with ranks: all resume or none (one refusing while the others train would leave them waiting) */
    if (s->cfg.dist && nb_dist_check(s->cfg.dist, rc != 0)) rc = -1;
    if (rc == 0) rc = load_tensors(s, st, path, true);
    if (rc == 0) {
        s->epoch = p.epoch;
        s->iteration = p.iteration;
        s->lr = p.lr;
        s->best_val_acc = p.best;
        swap_history(&s->loss, &p.loss);
        swap_history(&s->train_acc, &p.train_acc);
        swap_history(&s->val_acc, &p.val_acc);
        nb_optimizer_set_steps(s->optim, p.steps);
        nb_optimizer_set_lr(s->optim, p.lr);
    }
    free(p.loss.v);
    free(p.train_acc.v);
    free(p.val_acc.v);
    nb_safetensors_free(st);
    return rc;
}

double nb_solver_lr(const nb_solver *s) { return s ? s->lr : NAN; }

double nb_solver_step_lr(const nb_solver *s)
{
    if (!s) return NAN;
    return lr_at(s, s->iteration, s->num_iterations ? s->num_iterations : batches_per_epoch(s) * s->cfg.num_epochs);
}

/* ---- histories ---- */

const double *nb_solver_loss_history(const nb_solver *s, int64_t *n)
{
    *n = s ? s->loss.n : 0;
    return s ? s->loss.v : NULL;
}

const double *nb_solver_train_acc_history(const nb_solver *s, int64_t *n)
{
    *n = s ? s->train_acc.n : 0;
    return s ? s->train_acc.v : NULL;
}

const double *nb_solver_val_acc_history(const nb_solver *s, int64_t *n)
{
    *n = s ? s->val_acc.n : 0;
    return s ? s->val_acc.v : NULL;
}

double nb_solver_best_val_acc(const nb_solver *s) { return s ? s->best_val_acc : NAN; }
int64_t nb_solver_epoch(const nb_solver *s) { return s ? s->epoch : -1; }
