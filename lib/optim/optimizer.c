/* The optimizer core: configurations, creation and validation, persistent state slots, step dispatch
 * to the rules (sgd.c, rmsprop.c, adam.c), zero-grad, gradient clipping, learning-rate schedules. */
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- kinds ---- */

#define NB_OPTIM_MAX_SLOTS 2

typedef struct {
    const char *name;
    int nslots;
    const char *slot[NB_OPTIM_MAX_SLOTS];
    nb_update_fn update;
} kind_info;

static const kind_info kinds[] = {
    [NB_SGD] = { "sgd", 0, { NULL, NULL }, nb_sgd_update },
    [NB_SGD_MOMENTUM] = { "sgd_momentum", 1, { "velocity", NULL }, nb_momentum_update },
    [NB_NESTEROV] = { "nesterov", 1, { "velocity", NULL }, nb_nesterov_update },
    [NB_RMSPROP] = { "rmsprop", 1, { "cache", NULL }, nb_rmsprop_update },
    [NB_ADAM] = { "adam", 2, { "m", "v" }, nb_adam_update },
    [NB_ADAMW] = { "adamw", 2, { "m", "v" }, nb_adam_update },
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

static bool kind_valid(nb_optim_kind kind) { return (int)kind >= 0 && (int)kind < NKINDS; }

nb_optim_config nb_optim_defaults(nb_optim_kind kind)
{
    nb_optim_config c = { .kind = kind, .lr = 1e-2, .momentum = 0.9, .decay_rate = 0.99, .beta1 = 0.9,
                          .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0 };
    if (!kind_valid(kind)) {
        nb_error("nb_optim_defaults: unknown kind %d", (int)kind);
        c.lr = NAN;
        return c;
    }
    if (kind == NB_ADAM || kind == NB_ADAMW) c.lr = 1e-3;
    if (kind == NB_ADAMW) c.weight_decay = 1e-2;
    return c;
}

int nb_optim_kind_parse(const char *name, nb_optim_kind *kind)
{
    if (!name || !kind) {
        nb_error("nb_optim_kind_parse: NULL %s", name ? "kind" : "name");
        return -1;
    }
    for (int k = 0; k < NKINDS; k++)
        if (strcmp(name, kinds[k].name) == 0) {
            *kind = (nb_optim_kind)k;
            return 0;
        }
    char expected[128];
    size_t len = 0;
    for (int k = 0; k < NKINDS; k++)
        len += (size_t)snprintf(expected + len, sizeof expected - len, k ? ", %s" : "%s", kinds[k].name);
    nb_error("nb_optim_kind_parse: unknown optimizer '%.64s' (expected %s)", name, expected);
    return -1;
}

const char *nb_optim_kind_name(nb_optim_kind kind)
{
    if (!kind_valid(kind)) {
        nb_error("nb_optim_kind_name: unknown kind %d", (int)kind);
        return NULL;
    }
    return kinds[kind].name;
}

/* ---- the optimizer ---- */

struct nb_optimizer {
    nb_optim_config cfg;   /* cfg.lr is the current learning rate */
    int64_t t;             /* steps taken */
    int n;                 /* parameters */
    int nslots;            /* state slots per parameter */
    nb_tensor **params;    /* [n], not owned */
    char **names;          /* [n] */
    nb_tensor **state;     /* [n * nslots], persistent, owned */
    char **state_names;    /* [n * nslots]: "<name>.<slot>" */
};

static bool finite_in(double x, double lo, bool lo_open, double hi, bool hi_open)
{
    if (!isfinite(x)) return false;
    if (lo_open ? x <= lo : x < lo) return false;
    if (hi_open ? x >= hi : x > hi) return false;
    return true;
}

/* Checks the hyperparameters kind reads; records "<op>: <field> must be ..., got x". */
static bool check_config(const char *op, const nb_optim_config *c)
{
    if (!kind_valid(c->kind)) {
        nb_error("%s: unknown optimizer kind %d", op, (int)c->kind);
        return false;
    }
    const nb_optim_kind k = c->kind;
    if (!finite_in(c->lr, 0, true, INFINITY, true)) {
        nb_error("%s: lr must be a finite number > 0, got %g", op, c->lr);
        return false;
    }
    if ((k == NB_SGD_MOMENTUM || k == NB_NESTEROV) && !finite_in(c->momentum, 0, false, 1, true)) {
        nb_error("%s: momentum must be in [0, 1), got %g", op, c->momentum);
        return false;
    }
    if (k == NB_RMSPROP && !finite_in(c->decay_rate, 0, false, 1, true)) {
        nb_error("%s: decay_rate must be in [0, 1), got %g", op, c->decay_rate);
        return false;
    }
    if (k == NB_ADAM || k == NB_ADAMW) {
        if (!finite_in(c->beta1, 0, false, 1, true)) {
            nb_error("%s: beta1 must be in [0, 1), got %g", op, c->beta1);
            return false;
        }
        if (!finite_in(c->beta2, 0, false, 1, true)) {
            nb_error("%s: beta2 must be in [0, 1), got %g", op, c->beta2);
            return false;
        }
    }
    if ((k == NB_RMSPROP || k == NB_ADAM || k == NB_ADAMW) && !finite_in(c->eps, 0, true, INFINITY, true)) {
        nb_error("%s: eps must be a finite number > 0, got %g", op, c->eps);
        return false;
    }
    if (!finite_in(c->weight_decay, 0, false, INFINITY, true)) {
        nb_error("%s: weight_decay must be a finite number >= 0, got %g", op, c->weight_decay);
        return false;
    }
    return true;
}

/* params[i] must be a distinct, persistent, contiguous float leaf requiring grad */
static bool check_param(nb_tensor *const *params, int i)
{
    static const char op[] = "nb_optimizer_new";
    const nb_tensor *p = params[i];
    if (!p) {
        char what[32];
        snprintf(what, sizeof what, "params[%d]", i);
        nb_error_null(op, what);
        return false;
    }
    if (p->dtype != NB_F32 && p->dtype != NB_F64) {
        nb_error("%s: params[%d] must be f32 or f64, got %s %s", op, i, nb_dtype_name(p->dtype), nb_shp(p));
        return false;
    }
    if (p->scope || p->node) {
        nb_error("%s: params[%d] %s is not persistent (make parameters with nb_param)", op, i, nb_shp(p));
        return false;
    }
    if (!p->requires_grad) {
        nb_error("%s: params[%d] %s does not require grad (make parameters with nb_param)", op, i, nb_shp(p));
        return false;
    }
    if (!nb_is_contiguous(p)) {
        nb_error("%s: params[%d] %s is not contiguous", op, i, nb_shp(p));
        return false;
    }
    for (int j = 0; j < i; j++)
        if (params[j] == p) {
            nb_error("%s: params[%d] is the same tensor as params[%d]", op, i, j);
            return false;
        }
    return true;
}

static bool check_name(const char *const *names, int i)
{
    static const char op[] = "nb_optimizer_new";
    if (!names[i]) {
        nb_error("%s: names[%d] is NULL", op, i);
        return false;
    }
    if (!names[i][0]) {
        nb_error("%s: names[%d] is empty", op, i);
        return false;
    }
    for (int j = 0; j < i; j++)
        if (strcmp(names[j], names[i]) == 0) {
            nb_error("%s: names[%d] '%s' repeats names[%d]", op, i, names[i], j);
            return false;
        }
    return true;
}

/* "<param>.<slot>" in a new heap string */
static char *slot_name(const char *param, const char *slot)
{
    size_t len = strlen(param) + 1 + strlen(slot) + 1;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s.%s", param, slot);
    return s;
}

nb_optimizer *nb_optimizer_new(nb_optim_config cfg, int n, nb_tensor *const *params, const char *const *names)
{
    static const char op[] = "nb_optimizer_new";
    if (!check_config(op, &cfg)) return NULL;
    if (n < 1) {
        nb_error("%s: n must be >= 1, got %d", op, n);
        return NULL;
    }
    if (!params) {
        nb_error("%s: NULL params", op);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!check_param(params, i) || (names && !check_name(names, i))) return NULL;

    nb_optimizer *o = calloc(1, sizeof *o);
    if (!o) goto oom;
    o->cfg = cfg;
    o->n = n;
    o->nslots = kinds[cfg.kind].nslots;
    const size_t ns = (size_t)n * (size_t)o->nslots;
    o->params = malloc((size_t)n * sizeof *o->params);
    o->names = calloc((size_t)n, sizeof *o->names);
    o->state = calloc(ns ? ns : 1, sizeof *o->state);
    o->state_names = calloc(ns ? ns : 1, sizeof *o->state_names);
    if (!o->params || !o->names || !o->state || !o->state_names) goto oom;
    for (int i = 0; i < n; i++) {
        char index[16];
        snprintf(index, sizeof index, "%d", i);
        o->params[i] = params[i];
        o->names[i] = strdup(names ? names[i] : index);
        if (!o->names[i]) goto oom;
        for (int k = 0; k < o->nslots; k++) {
            const size_t s = (size_t)i * (size_t)o->nslots + (size_t)k;
            /* a persistent copy of the parameter (no grad, no scope memory), then zeros */
            o->state[s] = nb_persist(params[i]);
            o->state_names[s] = slot_name(o->names[i], kinds[cfg.kind].slot[k]);
            if (!o->state[s] || !o->state_names[s]) goto oom;
            nb_fill(o->state[s], 0);
        }
    }
    return o;
oom:
    nb_optimizer_free(o);
    nb_error("%s: out of memory for %d parameters", op, n);
    return NULL;
}

void nb_optimizer_free(nb_optimizer *o)
{
    if (!o) return;
    const int ns = o->n * o->nslots;
    for (int s = 0; s < ns; s++) {
        if (o->state) nb_free(o->state[s]);
        if (o->state_names) free(o->state_names[s]);
    }
    for (int i = 0; i < o->n && o->names; i++) free(o->names[i]);
    free(o->state);
    free(o->state_names);
    free(o->names);
    free(o->params);
    free(o);
}

/* The grad of parameter i, or NULL when it has none; *ok false (error recorded) when it is unusable. */
static const nb_tensor *usable_grad(const char *op, const nb_optimizer *o, int i, bool *ok)
{
    const nb_tensor *p = o->params[i], *g = p->grad;
    *ok = true;
    if (!g) return NULL;
    if (g->dtype != p->dtype || !nb_same_shape(g, p->ndim, p->shape)) {
        nb_error("%s: grad of '%s' is %s %s, expected %s %s", op, o->names[i], nb_dtype_name(g->dtype), nb_shp(g),
                 nb_dtype_name(p->dtype), nb_shp(p));
        *ok = false;
    } else if (!nb_is_contiguous(g)) {
        nb_error("%s: grad of '%s' %s is not contiguous", op, o->names[i], nb_shp(g));
        *ok = false;
    } else if (!nb_is_contiguous(p)) {
        nb_error("%s: parameter '%s' %s is not contiguous", op, o->names[i], nb_shp(p));
        *ok = false;
    }
    return g;
}

static bool check_grads(const char *op, const nb_optimizer *o)
{
    bool ok = true;
    for (int i = 0; i < o->n && ok; i++) usable_grad(op, o, i, &ok);
    return ok;
}

#define PARALLEL_MIN_ELEMENTS 65536

/* Rules are elementwise, so a large parameter is cut into one contiguous range per thread. */
static void update_in_parallel(nb_update_fn update, const nb_optim_ctx *ctx, const nb_optim_arrays *a)
{
    const int threads = a->n < PARALLEL_MIN_ELEMENTS ? 1 : nb_parallel_threads();
    if (threads < 2) {
        update(ctx, a);
        return;
    }
    const size_t es = nb_dtype_size(a->dtype);
#pragma omp parallel num_threads(threads)
    {
        const int64_t t = nb_thread_index(), nt = nb_team_size();
        const int64_t lo = a->n * t / nt, hi = a->n * (t + 1) / nt;
        nb_optim_arrays part = { a->dtype, hi - lo, (char *)a->w + (size_t)lo * es, (const char *)a->g + (size_t)lo * es,
                                 { NULL, NULL } };
        for (int k = 0; k < 2; k++) part.s[k] = a->s[k] ? (char *)a->s[k] + (size_t)lo * es : NULL;
        update(ctx, &part);
    }
}

int nb_optimizer_step(nb_optimizer *o)
{
    static const char op[] = "nb_optimizer_step";
    if (!o) {
        nb_error("%s: NULL optimizer", op);
        return -1;
    }
    if (!check_grads(op, o)) return -1;
    o->t++;
    const nb_optim_ctx ctx = { o->cfg, o->t };
    const nb_update_fn update = kinds[o->cfg.kind].update;
    for (int i = 0; i < o->n; i++) {
        nb_tensor *p = o->params[i];
        if (!p->grad) continue;
        nb_optim_arrays a = { p->dtype, nb_numel(p), p->data, p->grad->data, { NULL, NULL } };
        for (int k = 0; k < o->nslots; k++) a.s[k] = o->state[(size_t)i * (size_t)o->nslots + (size_t)k]->data;
        update_in_parallel(update, &ctx, &a);
        nb_bump_version(p);
    }
    return 0;
}

void nb_optimizer_zero_grad(nb_optimizer *o)
{
    if (!o) return;
    for (int i = 0; i < o->n; i++) nb_zero_grad(o->params[i]);
}

double nb_optimizer_clip_grad_norm(nb_optimizer *o, double max_norm)
{
    static const char op[] = "nb_optimizer_clip_grad_norm";
    if (!o) {
        nb_error("%s: NULL optimizer", op);
        return NAN;
    }
    if (!finite_in(max_norm, 0, true, INFINITY, true)) {
        nb_error("%s: max_norm must be a finite number > 0, got %g", op, max_norm);
        return NAN;
    }
    if (!check_grads(op, o)) return NAN;
    double sum = 0;
    for (int k = 0; k < o->n; k++) {
        const nb_tensor *grad = o->params[k]->grad;
        if (!grad) continue;
        nb_optim_arrays a = { grad->dtype, nb_numel(grad), NULL, grad->data, { NULL, NULL } };
        NB_OPTIM_EACH(&a, { const double x = g[i]; sum += x * x; });
    }
    const double norm = sqrt(sum);
    if (!isfinite(norm) || norm <= max_norm) return norm;
    const double scale = max_norm / norm;
    for (int k = 0; k < o->n; k++) {
        nb_tensor *grad = o->params[k]->grad;
        if (!grad) continue;
        /* the grad in the skeleton's w slot, scaled in place */
        nb_optim_arrays a = { grad->dtype, nb_numel(grad), grad->data, NULL, { NULL, NULL } };
        NB_OPTIM_EACH(&a, w[i] = w[i] * scale;);
        nb_bump_version(grad);
    }
    return norm;
}

void nb_optimizer_set_lr(nb_optimizer *o, double lr)
{
    if (!o) {
        nb_error("nb_optimizer_set_lr: NULL optimizer");
        return;
    }
    if (!finite_in(lr, 0, false, INFINITY, true)) {
        nb_error("nb_optimizer_set_lr: lr must be a finite number >= 0, got %g", lr);
        return;
    }
    o->cfg.lr = lr;
}

double nb_optimizer_lr(const nb_optimizer *o) { return o ? o->cfg.lr : NAN; }

int64_t nb_optimizer_steps(const nb_optimizer *o) { return o ? o->t : -1; }

void nb_optimizer_set_steps(nb_optimizer *o, int64_t t)
{
    if (!o) {
        nb_error("nb_optimizer_set_steps: NULL optimizer");
        return;
    }
    if (t < 0) {
        nb_error("nb_optimizer_set_steps: t must be >= 0, got %lld", (long long)t);
        return;
    }
    o->t = t;
}

int nb_optimizer_visit_state(nb_optimizer *o, nb_state_visit_fn fn, void *ctx)
{
    if (!o || !fn) {
        nb_error("nb_optimizer_visit_state: NULL %s", o ? "fn" : "optimizer");
        return -1;
    }
    const int ns = o->n * o->nslots;
    for (int s = 0; s < ns; s++) {
        int rc = fn(o->state_names[s], o->state[s], ctx);
        if (rc) return rc;
    }
    return 0;
}

/* ---- learning-rate schedules ---- */

double nb_lr_step(double lr0, int64_t epoch, int64_t step_size, double gamma)
{
    if (epoch < 0 || step_size < 1) {
        nb_error("nb_lr_step: %s must be >= %d, got %lld", epoch < 0 ? "epoch" : "step_size", epoch < 0 ? 0 : 1,
                 (long long)(epoch < 0 ? epoch : step_size));
        return NAN;
    }
    return lr0 * pow(gamma, (double)(epoch / step_size));
}

double nb_lr_cosine(double lr0, int64_t step, int64_t total_steps, double lr_min)
{
    if (step < 0 || total_steps < 1) {
        nb_error("nb_lr_cosine: %s must be >= %d, got %lld", step < 0 ? "step" : "total_steps", step < 0 ? 0 : 1,
                 (long long)(step < 0 ? step : total_steps));
        return NAN;
    }
    if (step >= total_steps) return lr_min;
    const double pi = 3.14159265358979323846;
    return lr_min + (lr0 - lr_min) * 0.5 * (1 + cos(pi * (double)step / (double)total_steps));
}

double nb_lr_warmup(double lr, int64_t step, int64_t warmup_steps)
{
    if (step < 0 || warmup_steps < 0) {
        nb_error("nb_lr_warmup: step %lld and warmup_steps %lld must be >= 0", (long long)step, (long long)warmup_steps);
        return NAN;
    }
    return step < warmup_steps ? lr * (double)(step + 1) / (double)warmup_steps : lr;
}
