/* The Solver: cs231n's defaults; training on separable Gaussian blobs (accuracy, history lengths in
 * both batch modes, lr decay, best-parameter restore); the progress callback and stopping; a
 * diverging loss; accuracy subsampling; checkpoint contents, per-epoch checkpoints and bitwise
 * resume determinism (Adam, dropout, batchnorm); error messages; memory that does not grow; tiny
 * images with augmentation; cs231n's progress lines. */
#include "nbtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ---- data: k Gaussian blobs ---- */

typedef struct { nb_tensor *x, *y, *vx, *vy; } data;

/* n rows of dim features, class i % k centred at sep·e_(class) (times scale), unit noise; persistent */
static void blob_split(nb_rng *r, int64_t n, int64_t dim, int64_t k, double sep, double scale, nb_tensor **x,
                       nb_tensor **y)
{
    double *xv = malloc(sizeof *xv * (size_t)(n * dim)), *yv = malloc(sizeof *yv * (size_t)n);
    ck_assert(xv && yv);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = i % k;
        yv[i] = (double)c;
        for (int64_t j = 0; j < dim; j++) xv[i * dim + j] = scale * (nb_rng_normal(r) + (j == c ? sep : 0));
    }
    *x = nb_persist(nb_from_doubles(NB_F64, NB_SHAPE(n, dim), xv));
    *y = nb_persist(nb_from_doubles(NB_I64, NB_SHAPE(n), yv));
    ck_assert_msg(*x && *y, "%s", nb_last_error());
    free(xv);
    free(yv);
    nb_scope_reset(NULL);
}

/* 3 blobs in 10-D, centres 4 apart along the axes: nearly separable */
static data blobs(int64_t n, int64_t n_val, double scale, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    data d;
    blob_split(&r, n, 10, 3, 4.0, scale, &d.x, &d.y);
    blob_split(&r, n_val, 10, 3, 4.0, scale, &d.vx, &d.vy);
    return d;
}

static void data_free(data *d)
{
    nb_free(d->x);
    nb_free(d->y);
    nb_free(d->vx);
    nb_free(d->vy);
}

static nb_model *two_layer(int64_t hidden, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_model *m = nb_two_layer_net(10, hidden, 3, 1e-2, 0, NB_F64, &r);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    return m;
}

/* FullyConnectedNet 10-20-20-3 with batchnorm and dropout (keep 0.7), f64 */
static nb_model *fc_bn_dropout(uint64_t seed)
{
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 2;
    c.hidden_dims = (const int64_t[]){ 20, 20 };
    c.input_dim = 10;
    c.num_classes = 3;
    c.keep_prob = 0.7;
    c.norm = NB_NORM_BATCH;
    c.weight_scale = 5e-2;
    c.dtype = NB_F64;
    c.seed = seed;
    nb_model *m = nb_fully_connected_net(&c);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    return m;
}

static nb_solver_config quiet(void)
{
    nb_solver_config c = nb_solver_defaults();
    c.verbose = false;
    return c;
}

static nb_solver *make(nb_model *m, data *d, const nb_solver_config *c)
{
    nb_solver *s = nb_solver_new(m, d->x, d->y, d->vx, d->vy, c);
    ck_assert_msg(s != NULL, "nb_solver_new: %s", nb_last_error());
    return s;
}

static void train_ok(nb_solver *s)
{
    int rc = nb_solver_train(s);
    ck_assert_msg(rc == 0, "nb_solver_train returned %d: %s", rc, nb_last_error());
}

/* ---- the progress callback: records every call ---- */

#define MAX_LOG 2048
typedef struct {
    int64_t calls;
    nb_solver_progress log[MAX_LOG];
    int64_t stop_at;      /* return 1 at this iteration; 0: never */
    const char *ckpt;     /* when set: at each epoch end, the checkpoint there must be at that epoch */
    size_t reserved[MAX_LOG], heap[MAX_LOG];
} recorder;

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

static int record(const nb_solver_progress *p, void *ctx)
{
    recorder *r = ctx;
    if (r->calls < MAX_LOG) {
        r->log[r->calls] = *p;
        r->reserved[r->calls] = nb_scope_reserved(NULL);
        r->heap[r->calls] = heap_in_use();
    }
    r->calls++;
    if (r->ckpt && p->iteration % (p->num_iterations / p->num_epochs) == 0) {
        nb_safetensors *st = nb_safetensors_load(r->ckpt);
        ck_assert_msg(st != NULL, "%s", nb_last_error());
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)p->epoch);
        ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), want);
        snprintf(want, sizeof want, "%lld", (long long)p->iteration);
        ck_assert_str_eq(nb_safetensors_meta(st, "iteration"), want);
        nb_safetensors_free(st);
    }
    return p->iteration == r->stop_at;
}

/* ---- comparing models ---- */

typedef struct { int n; char names[64][NB_MODULE_NAME_MAX * 4]; nb_tensor *t[64]; } tensor_list;

static int list_tensor(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)is_buffer;
    tensor_list *l = ctx;
    ck_assert_int_lt(l->n, 64);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);   /* the walk's name buffer is reused */
    l->t[l->n++] = t;
    return 0;
}

static tensor_list tensors_of(nb_model *m)
{
    tensor_list l = { 0 };
    ck_assert_int_eq(nb_module_visit(m->net, list_tensor, &l), 0);
    return l;
}

/* every tensor (parameters and buffers) of a and b holds the same values, bit for bit */
static void assert_same_model(nb_model *a, nb_model *b)
{
    tensor_list la = tensors_of(a), lb = tensors_of(b);
    ck_assert_int_eq(la.n, lb.n);
    for (int i = 0; i < la.n; i++) {
        ck_assert_int_eq(nb_numel(la.t[i]), nb_numel(lb.t[i]));
        for (int64_t j = 0; j < nb_numel(la.t[i]); j++)
            ck_assert_msg(nb_get(la.t[i], j) == nb_get(lb.t[i], j), "tensor %d (%s) element %lld: %.17g != %.17g", i,
                          la.names[i], (long long)j, nb_get(la.t[i], j), nb_get(lb.t[i], j));
    }
}

static void assert_same_history(const char *what, const double *a, int64_t na, const double *b, int64_t nb)
{
    ck_assert_msg(na == nb, "%s: %lld != %lld entries", what, (long long)na, (long long)nb);
    for (int64_t i = 0; i < na; i++)
        ck_assert_msg(a[i] == b[i], "%s[%lld]: %.17g != %.17g", what, (long long)i, a[i], b[i]);
}

static double model_acc(nb_model *m, nb_tensor *x, nb_tensor *y)
{
    double acc = -1;
    ck_assert_msg(nb_model_accuracy(m, x, y, 64, &acc) == 0, "%s", nb_last_error());
    return acc;
}

/* ---- temporary files ---- */

static char tmpdir[64];

static const char *tmp_path(char *buf, size_t size, const char *name)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/nabla-solver-XXXXXX");
        ck_assert(mkdtemp(tmpdir) != NULL);
    }
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

static void tmp_cleanup(const char *const *names, int n)
{
    char p[128];
    for (int i = 0; i < n; i++) unlink(tmp_path(p, sizeof p, names[i]));
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

/* the call returned -1 and the recorded message is exactly `message` */
#define assert_fails(call, message)                                                                  \
    do {                                                                                             \
        nb_clear_error();                                                                            \
        ck_assert_int_eq((call), -1);                                                                \
        ck_assert_str_eq(nb_last_error(), message);                                                  \
    } while (0)

/* ---- defaults ---- */

START_TEST(defaults_are_cs231n)
{
    nb_solver_config c = nb_solver_defaults();
    ck_assert_int_eq(c.optim.kind, NB_SGD);
    ck_assert_double_eq(c.optim.lr, 1e-2);
    ck_assert_double_eq(c.lr_decay, 1.0);
    ck_assert_int_eq(c.batch_size, 100);
    ck_assert_int_eq(c.num_epochs, 10);
    ck_assert_int_eq(c.num_train_samples, 1000);
    ck_assert_int_eq(c.num_val_samples, 0);
    ck_assert_int_eq(c.print_every, 10);
    ck_assert(c.verbose);
    ck_assert_int_eq(c.batch_mode, NB_BATCH_SAMPLE);
    ck_assert_double_eq(c.clip_norm, 0);
    ck_assert_int_eq(c.crop_pad, 0);
    ck_assert(!c.hflip);
    ck_assert(c.seed == 0);
    ck_assert(c.checkpoint_path == NULL);
    ck_assert(c.callback == NULL);
    ck_assert(c.callback_ctx == NULL);
}
END_TEST

/* ---- training ---- */

START_TEST(trains_on_blobs)
{
    data d = blobs(300, 90, 1, 1);
    nb_model *m = two_layer(20, 2);
    nb_solver_config c = quiet();
    c.optim.lr = 0.1;
    c.batch_size = 30;
    c.num_epochs = 5;
    c.num_train_samples = 100;
    recorder *r = calloc(1, sizeof *r);
    c.callback = record;
    c.callback_ctx = r;
    nb_solver *s = make(m, &d, &c);
    ck_assert_int_eq(nb_solver_epoch(s), 0);
    ck_assert_double_eq(nb_solver_best_val_acc(s), -1);
    train_ok(s);
    int64_t n_loss, n_train, n_val;
    const double *loss = nb_solver_loss_history(s, &n_loss);
    const double *tacc = nb_solver_train_acc_history(s, &n_train);
    const double *vacc = nb_solver_val_acc_history(s, &n_val);
    /* sample mode: 300 / 30 = 10 iterations per epoch */
    ck_assert_int_eq(n_loss, 50);
    ck_assert_int_eq(r->calls, 50);
    ck_assert_int_eq(n_train, 6);   /* the first iteration + 5 epoch ends (the last among them) */
    ck_assert_int_eq(n_val, 6);
    ck_assert_int_eq(nb_solver_epoch(s), 5);
    printf("blobs: loss %.4f -> %.4f, train acc %.3f -> %.3f, val acc %.3f -> %.3f, best %.3f\n", loss[0],
           loss[n_loss - 1], tacc[0], tacc[n_train - 1], vacc[0], vacc[n_val - 1], nb_solver_best_val_acc(s));
    fflush(stdout);
    ck_assert_double_gt(loss[0], 1.0);       /* ~ log 3 at the start */
    ck_assert_double_lt(loss[n_loss - 1], 0.4);
    ck_assert_double_ge(tacc[n_train - 1], 0.95);
    ck_assert_double_ge(vacc[n_val - 1], 0.95);
    double best = -1;
    for (int64_t i = 0; i < n_val; i++) best = fmax(best, vacc[i]);
    ck_assert_double_eq(nb_solver_best_val_acc(s), best);
    /* the model holds the best parameters: its validation accuracy is the best one */
    ck_assert_double_eq(model_acc(m, d.vx, d.vy), nb_solver_best_val_acc(s));
    /* the checks happened where cs231n makes them */
    int64_t k = 0;
    for (int64_t i = 0; i < r->calls; i++) {
        const nb_solver_progress *p = &r->log[i];
        bool want = p->iteration == 1 || p->iteration % 10 == 0;
        ck_assert_msg(p->checked == want, "iteration %lld: checked %d", (long long)p->iteration, p->checked);
        if (want) {
            ck_assert_double_eq(p->train_acc, tacc[k]);
            ck_assert_double_eq(p->val_acc, vacc[k]);
            k++;
        }
    }
    ck_assert_int_eq(k, 6);
    /* training again after the last epoch does nothing */
    train_ok(s);
    nb_solver_loss_history(s, &n_loss);
    ck_assert_int_eq(n_loss, 50);
    nb_solver_free(s);
    nb_model_free(m);
    free(r);
    data_free(&d);
}
END_TEST

/* iterations per epoch: max(N/B, 1) when sampling, ceil(N/B) when shuffling */
START_TEST(iterations_per_epoch)
{
    static const struct { int64_t n, batch; nb_batch_mode mode; int64_t per_epoch; } cases[] = {
        { 250, 100, NB_BATCH_SAMPLE, 2 },  { 250, 100, NB_BATCH_SHUFFLE, 3 }, { 50, 100, NB_BATCH_SAMPLE, 1 },
        { 50, 100, NB_BATCH_SHUFFLE, 1 }, { 300, 100, NB_BATCH_SHUFFLE, 3 },  { 7, 2, NB_BATCH_SAMPLE, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        data d = blobs(cases[i].n, 30, 1, 3);
        nb_model *m = two_layer(8, 4);
        nb_solver_config c = quiet();
        c.batch_size = cases[i].batch;
        c.batch_mode = cases[i].mode;
        c.num_epochs = 3;
        recorder *r = calloc(1, sizeof *r);
        c.callback = record;
        c.callback_ctx = r;
        nb_solver *s = make(m, &d, &c);
        train_ok(s);
        int64_t n_loss, n_val;
        nb_solver_loss_history(s, &n_loss);
        nb_solver_val_acc_history(s, &n_val);
        int64_t total = 3 * cases[i].per_epoch;
        ck_assert_msg(n_loss == total, "case %zu: %lld iterations, expected %lld", i, (long long)n_loss,
                      (long long)total);
        ck_assert_int_eq(r->log[0].num_iterations, total);
        ck_assert_int_eq(n_val, cases[i].per_epoch == 1 ? 3 : 4);   /* iteration 1 is an epoch end when per_epoch is 1 */
        ck_assert_int_eq(r->log[total - 1].epoch, 3);
        nb_solver_free(s);
        nb_model_free(m);
        free(r);
        data_free(&d);
    }
}
END_TEST

START_TEST(callback_fields_and_stop)
{
    data d = blobs(200, 60, 1, 5);
    nb_model *m = two_layer(16, 6);
    nb_solver_config c = quiet();
    c.batch_size = 50;   /* 4 iterations per epoch */
    c.num_epochs = 4;
    c.optim.lr = 0.05;
    recorder *r = calloc(1, sizeof *r);
    c.callback = record;
    c.callback_ctx = r;
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    int64_t n_loss;
    const double *loss = nb_solver_loss_history(s, &n_loss);
    ck_assert_int_eq(r->calls, 16);
    for (int64_t i = 0; i < 16; i++) {
        const nb_solver_progress *p = &r->log[i];
        ck_assert_int_eq(p->iteration, i + 1);
        ck_assert_int_eq(p->num_iterations, 16);
        ck_assert_int_eq(p->epoch, (i + 1) / 4);
        ck_assert_int_eq(p->num_epochs, 4);
        ck_assert_double_eq(p->loss, loss[i]);
        ck_assert_double_eq(p->lr, 0.05);
        ck_assert_double_ge(p->elapsed_s, i ? r->log[i - 1].elapsed_s : 0);
        ck_assert_double_ge(p->images_per_s, 0);
        ck_assert(p->checked == (i == 0 || (i + 1) % 4 == 0));
        if (!p->checked) ck_assert(isnan(p->train_acc) && isnan(p->val_acc));
        else ck_assert(p->train_acc >= 0 && p->train_acc <= 1 && p->val_acc >= 0 && p->val_acc <= 1);
    }
    ck_assert_double_gt(r->log[15].images_per_s, 0);
    nb_solver_free(s);
    nb_model_free(m);

    /* a non-zero return stops at once: train returns 1, the histories end there, the model is not
     * swapped for the best parameters */
    m = two_layer(16, 6);
    memset(r, 0, sizeof *r);
    r->stop_at = 7;
    s = make(m, &d, &c);
    nb_clear_error();
    ck_assert_int_eq(nb_solver_train(s), 1);
    ck_assert_int_eq(r->calls, 7);
    nb_solver_loss_history(s, &n_loss);
    ck_assert_int_eq(n_loss, 7);
    ck_assert_int_eq(nb_solver_epoch(s), 1);
    int64_t n_val;
    nb_solver_val_acc_history(s, &n_val);
    ck_assert_int_eq(n_val, 2);
    /* stopping at an epoch end, then training on, completes the run like an uninterrupted one */
    nb_model *u = two_layer(16, 6);
    recorder *ru = calloc(1, sizeof *ru);
    nb_solver_config cu = c;
    cu.callback_ctx = ru;
    nb_solver *su = make(u, &d, &cu);
    train_ok(su);
    nb_model *v = two_layer(16, 6);
    recorder *rv = calloc(1, sizeof *rv);
    rv->stop_at = 8;
    nb_solver_config cv = c;
    cv.callback_ctx = rv;
    nb_solver *sv = make(v, &d, &cv);
    ck_assert_int_eq(nb_solver_train(sv), 1);
    ck_assert_int_eq(nb_solver_epoch(sv), 2);
    train_ok(sv);
    assert_same_model(u, v);
    int64_t na, nb;
    const double *la = nb_solver_loss_history(su, &na), *lb = nb_solver_loss_history(sv, &nb);
    assert_same_history("loss", la, na, lb, nb);
    la = nb_solver_val_acc_history(su, &na);
    lb = nb_solver_val_acc_history(sv, &nb);
    assert_same_history("val acc", la, na, lb, nb);
    /* stopping inside an epoch, then training on: the rest of that epoch's batches, not a new epoch;
     * without dropout the run is again the uninterrupted one */
    nb_model *w = two_layer(16, 6);
    recorder *rw = calloc(1, sizeof *rw);
    rw->stop_at = 6;
    nb_solver_config cw = c;
    cw.callback_ctx = rw;
    nb_solver *sw = make(w, &d, &cw);
    ck_assert_int_eq(nb_solver_train(sw), 1);
    ck_assert_int_eq(nb_solver_epoch(sw), 1);
    train_ok(sw);
    ck_assert_int_eq(rw->calls, 16);
    for (int64_t i = 0; i < 16; i++) ck_assert_int_eq(rw->log[i].iteration, i + 1);
    ck_assert_int_eq(nb_solver_epoch(sw), 4);
    assert_same_model(u, w);
    lb = nb_solver_loss_history(sw, &nb);
    la = nb_solver_loss_history(su, &na);
    assert_same_history("loss after a mid-epoch stop", la, na, lb, nb);
    la = nb_solver_val_acc_history(su, &na);
    lb = nb_solver_val_acc_history(sw, &nb);
    assert_same_history("val acc after a mid-epoch stop", la, na, lb, nb);
    nb_solver_free(sw);
    nb_model_free(w);
    free(rw);
    nb_solver_free(su);
    nb_solver_free(sv);
    nb_model_free(u);
    nb_model_free(v);
    free(ru);
    free(rv);
    nb_solver_free(s);
    nb_model_free(m);
    free(r);
    data_free(&d);
}
END_TEST

/* trains 4 epochs of 3 iterations with cfg and returns the recorded progress (the rate of each next step) */
static recorder *run_schedule(nb_solver_config c, nb_solver_callback cb)
{
    data d = blobs(120, 30, 1, 7);
    nb_model *m = two_layer(8, 8);
    c.batch_size = 40;
    c.num_epochs = 4;
    recorder *r = calloc(1, sizeof *r);
    c.callback = cb;
    c.callback_ctx = r;
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    ck_assert_int_eq(r->calls, 12);
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
    return r;
}

START_TEST(lr_decays_per_epoch)
{
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_SGD_MOMENTUM);
    c.optim.lr = 0.02;
    c.lr_decay = 0.5;
    recorder *r = run_schedule(c, record);   /* 3 iterations per epoch */
    for (int64_t i = 0; i < 12; i++) {
        /* the lr of the epochs completed so far: decayed right at each epoch end, as cs231n does */
        double want = 0.02;
        for (int64_t e = 0; e < r->log[i].epoch; e++) want *= 0.5;
        ck_assert_msg(r->log[i].lr == want, "iteration %lld: lr %.17g, expected %.17g", (long long)i + 1,
                      r->log[i].lr, want);
    }
    ck_assert_double_eq(r->log[11].lr, 0.02 / 16);
    free(r);
}
END_TEST

static void assert_rates(const recorder *r, const double *want)
{
    for (int64_t i = 0; i < 12; i++)
        ck_assert_msg(fabs(r->log[i].lr - want[i]) <= 1e-15 * want[i], "iteration %lld: lr %.17g, expected %.17g",
                      (long long)i + 1, r->log[i].lr, want[i]);
}

/* the callback halves the rate at iteration 5 (the schedule continues from it) */
static int halve_at_5(const nb_solver_progress *p, void *ctx)
{
    if (p->iteration == 5) ck_assert_int_eq(nb_solver_set_lr(p->solver, nb_solver_lr(p->solver) / 2), 0);
    return record(p, ctx);
}

START_TEST(lr_schedules)
{
    nb_solver_config c = quiet();
    c.optim.lr = 0.04;
    /* step: ×0.5 every 2 epochs (after iterations 6 and 12) */
    c.lr_decay = 0.5;
    c.lr_step_epochs = 2;
    recorder *r = run_schedule(c, record);
    assert_rates(r, (double[]){ 0.04, 0.04, 0.04, 0.04, 0.04, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.01 });
    free(r);
    /* warm-up over 4 steps, then a cosine down to 0.004 at the 12th step; p.lr is the next step's */
    c = quiet();
    c.optim.lr = 0.04;
    c.lr_schedule = NB_LR_COSINE;
    c.lr_min = 0.004;
    c.warmup_iterations = 4;
    r = run_schedule(c, record);
    double want[12];
    for (int k = 1; k <= 12; k++) {   /* after step k: the rate of step k + 1 (index k in 0-based steps) */
        want[k - 1] = k < 4 ? 0.04 * (k + 1) / 4
                            : 0.004 + 0.036 * 0.5 * (1 + cos(M_PI * fmin(1.0, (k - 4) / 7.0)));
    }
    assert_rates(r, want);
    ck_assert_double_eq_tol(r->log[10].lr, 0.004, 1e-18);   /* step 12, the last, runs at lr_min */
    free(r);
    /* plateau: a rate too small to change the accuracy, so every epoch is flat: ×0.1 after 2 of them */
    c = quiet();
    c.optim.lr = 1e-12;
    c.lr_schedule = NB_LR_PLATEAU;
    c.lr_decay = 0.1;
    c.lr_patience = 2;
    r = run_schedule(c, record);
    assert_rates(r, (double[]){ 1e-12, 1e-12, 1e-12, 1e-12, 1e-12, 1e-13, 1e-13, 1e-13, 1e-13, 1e-13, 1e-13, 1e-14 });
    free(r);
    /* a callback changing the rate after step 5 (recorded before it): the step schedule (×0.5 each
     * epoch) continues from it */
    c = quiet();
    c.optim.lr = 0.04;
    c.lr_decay = 0.5;
    r = run_schedule(c, halve_at_5);
    assert_rates(r, (double[]){ 0.04, 0.04, 0.02, 0.02, 0.02, 0.005, 0.005, 0.005, 0.0025, 0.0025, 0.0025, 0.00125 });
    free(r);
    /* names and bad settings */
    nb_lr_schedule k;
    ck_assert_int_eq(nb_lr_schedule_parse("cosine", &k), 0);
    ck_assert_int_eq(k, NB_LR_COSINE);
    ck_assert_str_eq(nb_lr_schedule_name(NB_LR_PLATEAU), "plateau");
    ck_assert_int_eq(nb_lr_schedule_parse("linear", &k), -1);
    ck_assert_str_eq(nb_last_error(), "nb_lr_schedule_parse: unknown schedule 'linear' (expected step, cosine or plateau)");
    data d = blobs(20, 10, 1, 7);
    nb_model *m = two_layer(4, 8);
    c = quiet();
    c.lr_schedule = NB_LR_COSINE;
    c.lr_decay = 0.5;
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &c),
                     "nb_solver_new: lr_decay must be 1 with the cosine schedule (it sets the decay itself), got 0.5");
    c = quiet();
    c.lr_patience = 0;
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &c), "nb_solver_new: lr_patience must be >= 1, got 0");
    c = quiet();
    nb_solver *s = make(m, &d, &c);
    ck_assert_int_eq(nb_solver_set_lr(s, NAN), -1);
    ck_assert_str_eq(nb_last_error(), "nb_solver_set_lr: the rate must be finite and >= 0, got nan");
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
}
END_TEST

/* a model whose parameters at iteration 1 it records */
typedef struct {
    recorder rec;
    nb_model *m;
    tensor_list first;   /* persistent copies made at iteration 1 */
} first_ctx;

static int keep_first(const nb_solver_progress *p, void *ctx)
{
    first_ctx *f = ctx;
    if (p->iteration == 1) {
        tensor_list l = tensors_of(f->m);
        f->first = l;
        for (int i = 0; i < l.n; i++) f->first.t[i] = nb_persist(l.t[i]);
    }
    return record(p, &f->rec);
}

START_TEST(best_parameters_restored)
{
    /* validation labels rotated by one class: the better the model learns, the worse its
     * validation accuracy, so the best check is the first one and its parameters come back */
    data d = blobs(300, 90, 1, 9);
    for (int64_t i = 0; i < 90; i++) nb_set(d.vy, i, (double)(((int64_t)nb_get(d.vy, i) + 1) % 3));
    nb_model *m = two_layer(20, 10);
    first_ctx *f = calloc(1, sizeof *f);
    f->m = m;
    nb_solver_config c = quiet();
    c.optim.lr = 0.1;
    c.batch_size = 30;
    c.num_epochs = 3;
    c.callback = keep_first;
    c.callback_ctx = f;
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    int64_t n;
    const double *vacc = nb_solver_val_acc_history(s, &n);
    ck_assert_int_eq(n, 4);
    printf("rotated val labels: val acc %.3f %.3f %.3f %.3f\n", vacc[0], vacc[1], vacc[2], vacc[3]);
    fflush(stdout);
    ck_assert_double_gt(vacc[0], vacc[3]);
    /* no later check is better (a tie keeps the first, as cs231n's strict '>' does) */
    for (int64_t i = 1; i < n; i++) ck_assert_double_le(vacc[i], vacc[0]);
    ck_assert_double_eq(nb_solver_best_val_acc(s), vacc[0]);
    ck_assert_double_eq(model_acc(m, d.vx, d.vy), vacc[0]);
    tensor_list now = tensors_of(m);
    ck_assert_int_eq(now.n, f->first.n);
    for (int i = 0; i < now.n; i++) {
        for (int64_t j = 0; j < nb_numel(now.t[i]); j++)
            ck_assert_msg(nb_get(now.t[i], j) == nb_get(f->first.t[i], j), "%s[%lld] is not the iteration-1 value",
                          now.names[i], (long long)j);
        nb_free(f->first.t[i]);
    }
    nb_solver_free(s);
    nb_model_free(m);
    free(f);
    data_free(&d);
}
END_TEST

START_TEST(divergence_stops)
{
    /* unnormalised data (x100) and lr 1e9: the loss overflows after a few steps */
    for (int dt = 0; dt < 2; dt++) {
        data d = blobs(200, 30, 100, 11);
        nb_rng g;
        nb_rng_seed(&g, 12);
        nb_model *m = nb_two_layer_net(10, 16, 3, 1e-2, 0, dt ? NB_F32 : NB_F64, &g);
        if (dt) {
            /* f32 data for the f32 model */
            nb_tensor *x32 = nb_persist(nb_cast(d.x, NB_F32)), *v32 = nb_persist(nb_cast(d.vx, NB_F32));
            nb_free(d.x);
            nb_free(d.vx);
            d.x = x32;
            d.vx = v32;
        }
        nb_solver_config c = quiet();
        c.optim.lr = 1e9;
        c.batch_size = 20;
        c.num_epochs = 100;
        recorder *r = calloc(1, sizeof *r);
        c.callback = record;
        c.callback_ctx = r;
        nb_solver *s = make(m, &d, &c);
        nb_clear_error();
        ck_assert_int_eq(nb_solver_train(s), -1);
        int64_t first_bad = r->calls + 1;   /* every call before saw a finite loss */
        for (int64_t i = 0; i < r->calls; i++) ck_assert(isfinite(r->log[i].loss));
        char want[128];
        snprintf(want, sizeof want, "loss diverged at iteration %lld: try a smaller learning rate", (long long)first_bad);
        ck_assert_str_eq(nb_last_error(), want);
        printf("%s: %s\n", dt ? "f32" : "f64", want);
        fflush(stdout);
        ck_assert_int_ge(first_bad, 2);
        ck_assert_int_lt(first_bad, 1000);
        int64_t n_loss;
        nb_solver_loss_history(s, &n_loss);
        ck_assert_int_eq(n_loss, first_bad - 1);
        nb_solver_free(s);
        nb_model_free(m);
        free(r);
        data_free(&d);
    }
}
END_TEST

START_TEST(accuracy_subsample)
{
    data d = blobs(300, 60, 1, 13);
    nb_model *m = two_layer(8, 14);
    nb_solver_config c = quiet();
    nb_solver *s = make(m, &d, &c);
    double full = -1, all = -1, sub = -1, sub2 = -1;
    ck_assert_int_eq(nb_solver_accuracy(s, d.x, d.y, 0, &full), 0);
    ck_assert_int_eq(nb_solver_accuracy(s, d.x, d.y, 300, &all), 0);   /* not smaller than N: all rows */
    ck_assert_double_eq(full, model_acc(m, d.x, d.y));
    ck_assert_double_eq(all, full);
    ck_assert_int_eq(nb_solver_accuracy(s, d.x, d.y, 40, &sub), 0);
    ck_assert_int_eq(nb_solver_accuracy(s, d.x, d.y, 40, &sub2), 0);
    ck_assert_double_eq(sub, sub2);   /* the subsample depends on (seed, epoch, iteration) only */
    ck_assert(sub >= 0 && sub <= 1);
    ck_assert_double_eq_tol(sub * 40, round(sub * 40), 1e-9);
    assert_fails(nb_solver_accuracy(NULL, d.x, d.y, 0, &sub), "nb_solver_accuracy: NULL argument");
    assert_fails(nb_solver_accuracy(s, d.x, d.y, 0, NULL), "nb_solver_accuracy: NULL argument");
    nb_solver_free(s);
    /* 0 epochs: nothing to do */
    c.num_epochs = 0;
    s = make(m, &d, &c);
    train_ok(s);
    int64_t n;
    nb_solver_loss_history(s, &n);
    ck_assert_int_eq(n, 0);
    nb_solver_val_acc_history(s, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(nb_solver_epoch(s), 0);
    ck_assert_double_eq(model_acc(m, d.x, d.y), full);   /* the model is untouched */
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
}
END_TEST

/* ---- checkpoints ---- */

static void assert_tensor_equals(nb_safetensors *st, const char *name, const nb_tensor *t)
{
    nb_tensor *saved = nb_safetensors_get(st, name);
    ck_assert_msg(saved != NULL, "%s", nb_last_error());
    ck_assert_int_eq(saved->ndim, t->ndim);
    ck_assert_int_eq(saved->dtype, t->dtype);
    for (int i = 0; i < t->ndim; i++) ck_assert_int_eq(saved->shape[i], t->shape[i]);
    for (int64_t j = 0; j < nb_numel(t); j++) ck_assert_double_eq(nb_get(saved, j), nb_get(t, j));
}

static void assert_history_equals(nb_safetensors *st, const char *name, const double *h, int64_t n)
{
    nb_tensor *saved = nb_safetensors_get(st, name);
    ck_assert_msg(saved != NULL, "%s", nb_last_error());
    ck_assert_int_eq(saved->ndim, 1);
    ck_assert_int_eq(saved->shape[0], n);
    for (int64_t j = 0; j < n; j++) ck_assert_double_eq(nb_get(saved, j), h[j]);
}

START_TEST(save_contents)
{
    data d = blobs(120, 30, 1, 15);
    nb_model *m = two_layer(8, 16);
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.lr_decay = 0.9;
    c.batch_size = 40;
    c.num_epochs = 2;
    nb_solver *s = make(m, &d, &c);
    char path[128];
    tmp_path(path, sizeof path, "solver.safetensors");

    /* before training: empty histories, epoch 0 */
    ck_assert_msg(nb_solver_save(s, path) == 0, "%s", nb_last_error());
    nb_safetensors *st = nb_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_str_eq(nb_safetensors_meta(st, "format"), "nabla-solver-2");
    ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), "0");
    ck_assert_str_eq(nb_safetensors_meta(st, "iteration"), "0");
    ck_assert_int_eq(nb_numel(nb_safetensors_get(st, "history.loss")), 0);
    nb_safetensors_free(st);

    train_ok(s);
    ck_assert_msg(nb_solver_save(s, path) == 0, "%s", nb_last_error());
    st = nb_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_str_eq(nb_safetensors_meta(st, "format"), "nabla-solver-2");
    ck_assert_str_eq(nb_safetensors_meta(st, "model"), "TwoLayerNet");
    ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), "2");
    ck_assert_str_eq(nb_safetensors_meta(st, "iteration"), "6");
    ck_assert_str_eq(nb_safetensors_meta(st, "optimizer_steps"), "6");
    ck_assert_double_eq(strtod(nb_safetensors_meta(st, "lr"), NULL), 1e-3 * 0.9 * 0.9);
    ck_assert_double_eq(strtod(nb_safetensors_meta(st, "best_val_acc"), NULL), nb_solver_best_val_acc(s));
    static const char *const names[] = { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" };
    tensor_list l = tensors_of(m);
    ck_assert_int_eq(l.n, 4);
    char key[64];
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(l.names[i], names[i]);
        snprintf(key, sizeof key, "model.%s", names[i]);
        assert_tensor_equals(st, key, l.t[i]);
        snprintf(key, sizeof key, "best.%s", names[i]);
        assert_tensor_equals(st, key, l.t[i]);   /* training ended with the best parameters restored */
        snprintf(key, sizeof key, "optim.%s.m", names[i]);
        ck_assert_int_eq(nb_numel(nb_safetensors_get(st, key)), nb_numel(l.t[i]));
        snprintf(key, sizeof key, "optim.%s.v", names[i]);
        ck_assert_int_eq(nb_numel(nb_safetensors_get(st, key)), nb_numel(l.t[i]));
    }
    int64_t n;
    const double *h = nb_solver_loss_history(s, &n);
    ck_assert_int_eq(n, 6);
    assert_history_equals(st, "history.loss", h, n);
    h = nb_solver_train_acc_history(s, &n);
    assert_history_equals(st, "history.train_acc", h, n);
    h = nb_solver_val_acc_history(s, &n);
    ck_assert_int_eq(n, 3);
    assert_history_equals(st, "history.val_acc", h, n);
    /* nothing else: 4 model + 4 best + 8 optimizer + 3 histories */
    ck_assert_int_eq(st->n, 19);
    nb_safetensors_free(st);
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
    tmp_cleanup((const char *[]){ "solver.safetensors" }, 1);
}
END_TEST

START_TEST(checkpoint_every_epoch)
{
    data d = blobs(120, 30, 1, 17);
    nb_model *m = two_layer(8, 18);
    char path[128];
    tmp_path(path, sizeof path, "every.safetensors");
    nb_solver_config c = quiet();
    c.batch_size = 40;
    c.num_epochs = 3;
    c.checkpoint_path = path;
    recorder *r = calloc(1, sizeof *r);
    r->ckpt = path;   /* record() loads it at each epoch end and checks epoch and iteration */
    c.callback = record;
    c.callback_ctx = r;
    nb_solver *s = make(m, &d, &c);
    ck_assert_int_eq(access(path, F_OK), -1);
    train_ok(s);
    ck_assert_int_eq(r->calls, 9);
    nb_safetensors *st = nb_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), "3");
    int64_t n;
    const double *h = nb_solver_loss_history(s, &n);
    assert_history_equals(st, "history.loss", h, n);
    nb_safetensors_free(st);
    /* no temporary files left behind */
    char other[128];
    snprintf(other, sizeof other, "ls -A %s | grep -v '^every.safetensors$' | grep -q .", tmpdir);
    ck_assert_int_ne(system(other), 0);
    nb_solver_free(s);
    nb_model_free(m);
    free(r);
    data_free(&d);
    tmp_cleanup((const char *[]){ "every.safetensors" }, 1);
}
END_TEST

/* 4 epochs straight vs 2 epochs with a checkpoint, then a fresh model and solver resumed from it to
 * epoch 4: Adam, dropout (keep 0.7), batchnorm, lr decay and clipping all continue bit for bit */
START_TEST(resume_is_deterministic)
{
    nb_batch_mode mode = _i ? NB_BATCH_SAMPLE : NB_BATCH_SHUFFLE;
    data d = blobs(300, 60, 1, 19);
    char path[128];
    tmp_path(path, sizeof path, "resume.safetensors");
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.optim.lr = 5e-3;
    c.lr_decay = 0.8;
    c.batch_size = 32;   /* shuffle: 10 per epoch, the last one of 12 rows */
    c.batch_mode = mode;
    c.num_epochs = 4;
    c.num_train_samples = 100;
    c.clip_norm = 5;
    c.seed = 42;

    nb_model *a = fc_bn_dropout(7);
    nb_solver *sa = make(a, &d, &c);
    train_ok(sa);

    nb_model *b = fc_bn_dropout(7);
    nb_solver_config cb = c;
    cb.num_epochs = 2;
    cb.checkpoint_path = path;
    nb_solver *sb = make(b, &d, &cb);
    train_ok(sb);
    nb_solver_free(sb);
    nb_model_free(b);

    nb_model *r = fc_bn_dropout(7);
    nb_solver *sr = make(r, &d, &c);
    ck_assert_msg(nb_solver_resume(sr, path) == 0, "%s", nb_last_error());
    ck_assert_int_eq(nb_solver_epoch(sr), 2);
    train_ok(sr);
    ck_assert_int_eq(nb_solver_epoch(sr), 4);

    assert_same_model(a, r);
    int64_t na, nr;
    const double *ha = nb_solver_loss_history(sa, &na), *hr = nb_solver_loss_history(sr, &nr);
    ck_assert_int_eq(na, mode == NB_BATCH_SHUFFLE ? 40 : 36);
    assert_same_history("loss", ha, na, hr, nr);
    ha = nb_solver_train_acc_history(sa, &na);
    hr = nb_solver_train_acc_history(sr, &nr);
    assert_same_history("train acc", ha, na, hr, nr);
    ha = nb_solver_val_acc_history(sa, &na);
    hr = nb_solver_val_acc_history(sr, &nr);
    ck_assert_int_eq(na, 5);
    assert_same_history("val acc", ha, na, hr, nr);
    ck_assert_double_eq(nb_solver_best_val_acc(sa), nb_solver_best_val_acc(sr));
    printf("resume (%s): val acc %.3f -> %.3f, best %.3f\n", _i ? "sample" : "shuffle", ha[0], ha[na - 1],
           nb_solver_best_val_acc(sa));
    fflush(stdout);

    nb_solver_free(sa);
    nb_solver_free(sr);
    nb_model_free(a);
    nb_model_free(r);
    data_free(&d);
    tmp_cleanup((const char *[]){ "resume.safetensors" }, 1);
}
END_TEST

/* ---- errors ---- */

START_TEST(construction_errors)
{
    data d = blobs(60, 30, 1, 21);
    nb_model *m = two_layer(8, 22);
    nb_solver_config c = quiet();
    nbt_assert_error(nb_solver_new(NULL, d.x, d.y, d.vx, d.vy, &c), "nb_solver_new: NULL model or configuration");
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, NULL), "nb_solver_new: NULL model or configuration");
    nbt_assert_error(nb_solver_new(m, NULL, d.y, d.vx, d.vy, &c), "nb_solver_new: the training data is NULL");
    nbt_assert_error(nb_solver_new(m, d.x, NULL, d.vx, d.vy, &c), "nb_solver_new: the training data is NULL");
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, NULL, &c), "nb_solver_new: the validation data is NULL");
    /* labels that do not match */
    nbt_assert_error(nb_solver_new(m, d.x, d.vy, d.vx, d.vy, &c),
                     "nb_solver_new: training data [60,10] with labels i64 [30]: expected x [N,...] and i64 labels [N]");
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.y, &c),
                     "nb_solver_new: validation data [30,10] with labels i64 [60]: expected x [N,...] and i64 labels [N]");
    nb_tensor *yf = nb_zeros(NB_F64, NB_SHAPE(60));
    nbt_assert_error(nb_solver_new(m, d.x, yf, d.vx, d.vy, &c),
                     "nb_solver_new: training data [60,10] with labels f64 [60]: expected x [N,...] and i64 labels [N]");
    nb_tensor *y2 = nb_reshape(d.y, NB_SHAPE(60, 1));
    nbt_assert_error(nb_solver_new(m, d.x, y2, d.vx, d.vy, &c),
                     "nb_solver_new: training data [60,10] with labels i64 [60,1]: expected x [N,...] and i64 labels [N]");
    nb_tensor *x0 = nb_take_rows(d.x, 0, 0), *y0 = nb_take_rows(d.y, 0, 0);
    nbt_assert_error(nb_solver_new(m, x0, y0, d.vx, d.vy, &c), "nb_solver_new: the training set is empty");
    nbt_assert_error(nb_solver_new(m, d.x, d.y, x0, y0, &c), "nb_solver_new: the validation set is empty");
    /* configuration */
    nb_solver_config cases[9];
    static const char *const want[9] = {
        "nb_solver_new: batch_size must be >= 1, got 0",
        "nb_solver_new: num_epochs must be >= 0, got -1",
        "nb_solver_new: num_train_samples must be >= 0 (0 = all), got -5",
        "nb_solver_new: num_val_samples must be >= 0 (0 = all), got -1",
        "nb_solver_new: print_every must be >= 1, got 0",
        "nb_solver_new: lr_decay must be a finite number > 0, got 0",
        "nb_solver_new: lr_decay must be a finite number > 0, got nan",
        "nb_solver_new: clip_norm must be a finite number >= 0 (0 = off), got -1",
        "nb_solver_new: crop_pad must be >= 0 (0 = off), got -2",
    };
    int n = 0;
    for (int i = 0; i < 9; i++) cases[i] = quiet();
    cases[n++].batch_size = 0;
    cases[n++].num_epochs = -1;
    cases[n++].num_train_samples = -5;
    cases[n++].num_val_samples = -1;
    cases[n++].print_every = 0;
    cases[n++].lr_decay = 0;
    cases[n++].lr_decay = NAN;
    cases[n++].clip_norm = -1;
    cases[n++].crop_pad = -2;
    for (int i = 0; i < n; i++) nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &cases[i]), want[i]);
    c.batch_mode = NB_BATCH_SEQUENTIAL;
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &c),
                     "nb_solver_new: batch_mode must be NB_BATCH_SAMPLE or NB_BATCH_SHUFFLE");
    c = quiet();
    c.optim.lr = -1;
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &c), "nb_optimizer_new: lr must be a finite number > 0, got -1");
    c = quiet();
    c.optim.weight_decay = -0.1;
    nbt_assert_error(nb_solver_new(m, d.x, d.y, d.vx, d.vy, &c),
                     "nb_optimizer_new: weight_decay must be a finite number >= 0, got -0.1");
    /* NULL solvers */
    assert_fails(nb_solver_train(NULL), "nb_solver_train: NULL solver");
    assert_fails(nb_solver_save(NULL, "x"), "nb_solver_save: NULL solver or path");
    assert_fails(nb_solver_resume(NULL, "x"), "nb_solver_resume: NULL solver or path");
    c = quiet();
    nb_solver *s = make(m, &d, &c);
    assert_fails(nb_solver_save(s, NULL), "nb_solver_save: NULL solver or path");
    assert_fails(nb_solver_resume(s, NULL), "nb_solver_resume: NULL solver or path");
    nb_clear_error();
    ck_assert_int_eq(nb_solver_save(s, "/nonexistent-nabla-dir/solver.safetensors"), -1);
    ck_assert(strstr(nb_last_error(), "/nonexistent-nabla-dir/solver.safetensors") != NULL);
    nb_solver_free(s);
    nb_solver_free(NULL);
    int64_t k = 5;
    ck_assert(nb_solver_loss_history(NULL, &k) == NULL && k == 0);
    ck_assert(isnan(nb_solver_best_val_acc(NULL)));
    ck_assert_int_eq(nb_solver_epoch(NULL), -1);
    /* a data set the model cannot take fails at the first step, with the model's message */
    nb_tensor *wide = nb_persist(nb_zeros(NB_F64, NB_SHAPE(60, 7)));
    c.num_epochs = 1;
    s = nb_solver_new(m, wide, d.y, d.vx, d.vy, &c);
    ck_assert(s != NULL);
    nb_clear_error();
    ck_assert_int_eq(nb_solver_train(s), -1);
    ck_assert(strlen(nb_last_error()) > 0);
    printf("wrong input width: %s\n", nb_last_error());
    fflush(stdout);
    nb_solver_free(s);
    nb_free(wide);
    nb_model_free(m);
    data_free(&d);
}
END_TEST

START_TEST(resume_errors)
{
    data d = blobs(60, 30, 1, 23);
    char path[128], plain[128], other[128], missing[128], sgd_path[128];
    tmp_path(path, sizeof path, "h8.safetensors");
    tmp_path(plain, sizeof plain, "plain.safetensors");
    tmp_path(other, sizeof other, "other.safetensors");
    tmp_path(missing, sizeof missing, "missing.safetensors");
    tmp_path(sgd_path, sizeof sgd_path, "sgd.safetensors");
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.num_epochs = 1;
    c.batch_size = 20;
    nb_model *m8 = two_layer(8, 24);
    nb_solver *s8 = make(m8, &d, &c);
    train_ok(s8);
    ck_assert_int_eq(nb_solver_save(s8, path), 0);
    nb_solver_config cs = c;
    cs.optim = nb_optim_defaults(NB_SGD);
    nb_solver *sg = make(m8, &d, &cs);
    ck_assert_int_eq(nb_solver_save(sg, sgd_path), 0);
    nb_solver_free(sg);

    /* a safetensors file that is not a checkpoint: no format, or another one */
    nb_tensor *t = nb_zeros(NB_F64, NB_SHAPE(2));
    ck_assert_int_eq(nb_safetensors_save(plain, 1, (const char *[]){ "w" }, &t, 0, NULL, NULL), 0);
    ck_assert_int_eq(nb_safetensors_save(other, 1, (const char *[]){ "w" }, &t, 1, (const char *[]){ "format" },
                                         (const char *[]){ "pt" }),
                     0);
    nb_model *m16 = two_layer(16, 25);
    nb_solver *s16 = make(m16, &d, &c);
    char want[512];
    snprintf(want, sizeof want,
             "nb_solver_resume: %s is not a solver checkpoint (format 'none', expected 'nabla-solver-2')", plain);
    assert_fails(nb_solver_resume(s16, plain), want);
    snprintf(want, sizeof want,
             "nb_solver_resume: %s is not a solver checkpoint (format 'pt', expected 'nabla-solver-2')", other);
    assert_fails(nb_solver_resume(s16, other), want);
    /* a missing file: the loader's message */
    snprintf(want, sizeof want, "nb_safetensors_load: %s: cannot open: No such file or directory", missing);
    assert_fails(nb_solver_resume(s16, missing), want);
    /* another model's checkpoint: the first tensor whose shape differs */
    snprintf(want, sizeof want,
             "nb_solver_resume: %s: 'model.fc1.weight' is [10,8] in the checkpoint but [10,16] in this model", path);
    assert_fails(nb_solver_resume(s16, path), want);
    ck_assert_int_eq(nb_solver_epoch(s16), 0);
    /* another optimizer's checkpoint: the kinds differ */
    nb_model *m8b = two_layer(8, 26);
    nb_solver *s8b = make(m8b, &d, &c);
    snprintf(want, sizeof want,
             "nb_solver_resume: %s: optimizer 'sgd' in the checkpoint but 'adam beta1 0.9 beta2 0.999 eps 1e-08 "
             "weight_decay 0' in this solver",
             sgd_path);
    assert_fails(nb_solver_resume(s8b, sgd_path), want);
    ck_assert_int_eq(nb_solver_epoch(s8b), 0);
    /* and the right one */
    ck_assert_msg(nb_solver_resume(s8b, path) == 0, "%s", nb_last_error());
    ck_assert_int_eq(nb_solver_epoch(s8b), 1);
    assert_same_model(m8, m8b);
    ck_assert_double_eq(nb_solver_best_val_acc(s8b), nb_solver_best_val_acc(s8));

    nb_solver_free(s8);
    nb_solver_free(s8b);
    nb_solver_free(s16);
    nb_model_free(m8);
    nb_model_free(m8b);
    nb_model_free(m16);
    data_free(&d);
    tmp_cleanup((const char *[]){ "h8.safetensors", "plain.safetensors", "other.safetensors", "sgd.safetensors" }, 4);
}
END_TEST

/* A checkpoint of 2 epochs (batch 20 of 60, shuffled: 3 iterations per epoch) rewritten with one
 * metadata value or history changed, or resumed by a solver configured otherwise: each refused with a
 * message naming the key and both values, and the solver left at its start. Before the checks, epoch
 * "nan" trained negative epochs forever, best_val_acc "2" threw away every later epoch, lr "nan" was
 * ignored and another batch size or data set resumed silently. */
typedef struct {
    const char *key, *value;   /* metadata to replace (NULL: none) */
    const char *history;       /* a history to replace by tampered_history() (NULL: none) */
    int config;                /* 0: the same configuration; 1: batch 10; 2: other data; 3: adam beta1 0.8 */
    const char *message;       /* after "nb_solver_resume: <path>: "; %g: the saved best accuracy */
} tamper;

static const tamper tampers[] = {
    { "epoch", "nan", NULL, 0, "metadata 'epoch' is nan, expected a whole number in [0, 3074457345618258601]" },
    { "epoch", "1.5", NULL, 0, "metadata 'epoch' is 1.5, expected a whole number in [0, 3074457345618258601]" },
    { "epoch", "-1", NULL, 0, "metadata 'epoch' is -1, expected a whole number in [0, 3074457345618258601]" },
    { "epoch", "3", NULL, 0, "metadata 'iteration' is 6, expected a whole number in [9, 11]" },
    { "iteration", "1e300", NULL, 0, "metadata 'iteration' is 1e300, expected a whole number in [6, 8]" },
    { "iteration", "7", NULL, 0, "'history.loss' is f64 [6], expected f64 [7] (the checkpoint's position)" },
    { "optimizer_steps", "-5", NULL, 0, "metadata 'optimizer_steps' is -5, expected a whole number in [0, 6]" },
    { "optimizer_steps", "1e30", NULL, 0, "metadata 'optimizer_steps' is 1e30, expected a whole number in [0, 6]" },
    { "lr", "nan", NULL, 0, "metadata 'lr' is nan, expected a finite number >= 0" },
    { "lr", "-inf", NULL, 0, "metadata 'lr' is -inf, expected a finite number >= 0" },
    { "best_val_acc", "2", NULL, 0, "metadata 'best_val_acc' is 2 but the best validation accuracy in 'history.val_acc' is %g" },
    { "best_val_acc", "x", NULL, 0, "metadata 'best_val_acc' is missing or not a number" },
    { NULL, NULL, "history.val_acc", 0, "'history.val_acc' is f32 [3], expected f64 [3] (the checkpoint's position)" },
    { NULL, NULL, "history.loss", 0, "'history.loss'[1] is nan, outside [-1.79769e+308, 1.79769e+308]" },
    { NULL, NULL, "history.train_acc", 0, "'history.train_acc' is f64 [1,3], expected f64 [3] (the checkpoint's position)" },
    { NULL, NULL, NULL, 1, "batch '20 shuffled' in the checkpoint but '10 shuffled' in this solver" },
    { NULL, NULL, NULL, 2, "train_data 'f64 [60,10], fingerprint " },
    { NULL, NULL, NULL, 3, "optimizer 'adam beta1 0.9 beta2 0.999 eps 1e-08 weight_decay 0' in the checkpoint but 'adam beta1 0.8 beta2 0.999 eps 1e-08 weight_decay 0' in this solver" },
};

/* the history `name` of st, broken as tampered() wants: f32, a NaN, or an extra axis */
static nb_tensor *tampered_history(const char *name, nb_tensor *t)
{
    if (!strcmp(name, "history.val_acc")) return nb_cast(t, NB_F32);
    if (!strcmp(name, "history.train_acc")) return nb_reshape(t, NB_SHAPE(1, nb_numel(t)));
    nb_tensor *c = nb_copy(t);
    nb_set(c, 1, NAN);
    return c;
}

START_TEST(resume_refuses_tampered_checkpoints)
{
    const tamper *tc = &tampers[_i];
    data d = blobs(60, 30, 1, 23);
    char path[128], bad[128];
    tmp_path(path, sizeof path, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.num_epochs = 2;
    c.batch_size = 20;
    c.batch_mode = NB_BATCH_SHUFFLE;
    c.num_train_samples = 0;
    nb_model *m = two_layer(8, 24);
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    ck_assert_int_eq(nb_solver_save(s, path), 0);

    /* the checkpoint rewritten with the change */
    nb_safetensors *st = nb_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    const char *values[64];
    nb_tensor *tensors[64];
    ck_assert(st->n_meta <= 64 && st->n <= 64);
    for (int i = 0; i < st->n_meta; i++)
        values[i] = tc->key && !strcmp(st->meta_keys[i], tc->key) ? tc->value : st->meta_values[i];
    for (int i = 0; i < st->n; i++)
        tensors[i] = tc->history && !strcmp(st->names[i], tc->history) ? tampered_history(tc->history, st->tensors[i])
                                                                         : st->tensors[i];
    ck_assert_int_eq(nb_safetensors_save(bad, st->n, (const char *const *)st->names, tensors, st->n_meta,
                                         (const char *const *)st->meta_keys, values),
                     0);
    nb_safetensors_free(st);

    /* a fresh solver, configured as the case says, refuses it and stays at its start */
    data other = blobs(60, 30, 1, 99);
    nb_solver_config rc = c;
    if (tc->config == 1) rc.batch_size = 10;
    if (tc->config == 3) rc.optim.beta1 = 0.8;
    nb_model *m2 = two_layer(8, 25);
    nb_solver *r = make(m2, tc->config == 2 ? &other : &d, &rc);
    nb_clear_error();
    ck_assert_int_eq(nb_solver_resume(r, tc->config ? path : bad), -1);
    char want[512], message[256];
    snprintf(message, sizeof message, tc->message, nb_solver_best_val_acc(s));   /* a format: the best accuracy */
    snprintf(want, sizeof want, "nb_solver_resume: %s: %s", tc->config ? path : bad, message);
    ck_assert_msg(!strncmp(nb_last_error(), want, strlen(want)), "got:  %s\nwant: %s", nb_last_error(), want);
    int64_t n;
    nb_solver_loss_history(r, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(nb_solver_epoch(r), 0);
    ck_assert_double_eq(nb_solver_lr(r), rc.optim.lr);
    /* the untouched checkpoint resumes */
    if (tc->config == 0) {
        ck_assert_msg(nb_solver_resume(r, path) == 0, "%s", nb_last_error());
        ck_assert_int_eq(nb_solver_epoch(r), 2);
        assert_same_model(m, m2);
    }
    nb_solver_free(s);
    nb_solver_free(r);
    nb_model_free(m);
    nb_model_free(m2);
    data_free(&d);
    data_free(&other);
    tmp_cleanup((const char *[]){ "good.safetensors", "bad.safetensors" }, 2);
}
END_TEST

/* ---- memory ---- */

START_TEST(memory_does_not_grow)
{
    data d = blobs(200, 40, 1, 27);
    nb_model *m = fc_bn_dropout(28);
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.batch_size = 20;   /* 10 per epoch */
    c.num_epochs = 40;
    c.num_train_samples = 50;
    c.batch_mode = NB_BATCH_SHUFFLE;
    recorder *r = calloc(1, sizeof *r);
    c.callback = record;
    c.callback_ctx = r;
    nb_scope_reset(NULL);
    size_t before = nb_scope_reserved(NULL);
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    ck_assert_int_eq(r->calls, 400);
    /* nothing lands in the default scope */
    for (int64_t i = 0; i < r->calls; i++) ck_assert_uint_eq(r->reserved[i], before);
    ck_assert_uint_eq(nb_scope_reserved(NULL), before);
#ifdef __GLIBC__
    /* the heap at the middle of epoch 2 and of epoch 40: only the histories may have grown
     * (~8 bytes an iteration, in doubling steps); an iteration's tensors alone are several KB */
    size_t early = r->heap[14], late = r->heap[394];
    printf("heap in use mid-epoch 2: %zu bytes, mid-epoch 40: %zu bytes\n", early, late);
    fflush(stdout);
    ck_assert_msg(late <= early + 16384, "heap grew from %zu to %zu bytes", early, late);
#endif
    nb_solver_free(s);
    nb_model_free(m);
    free(r);
    data_free(&d);
}
END_TEST

/* ---- images ---- */

/* 1x8x8 images of 3 classes: a bright top half, bright bottom half, bright centre; noise 0.2 */
static void images(nb_rng *r, int64_t n, nb_tensor **x, nb_tensor **y)
{
    double *xv = malloc(sizeof *xv * (size_t)(n * 64)), *yv = malloc(sizeof *yv * (size_t)n);
    ck_assert(xv && yv);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        yv[i] = c;
        for (int h = 0; h < 8; h++)
            for (int w = 0; w < 8; w++) {
                bool on = c == 0 ? h < 4 : c == 1 ? h >= 4 : (h >= 2 && h < 6 && w >= 2 && w < 6);
                xv[i * 64 + h * 8 + w] = (on ? 1.0 : 0.0) + 0.2 * nb_rng_normal(r);
            }
    }
    *x = nb_persist(nb_from_doubles(NB_F32, NB_SHAPE(n, 1, 8, 8), xv));
    *y = nb_persist(nb_from_doubles(NB_I64, NB_SHAPE(n), yv));
    ck_assert(*x && *y);
    free(xv);
    free(yv);
    nb_scope_reset(NULL);
}

START_TEST(images_with_augmentation)
{
    nb_rng g;
    nb_rng_seed(&g, 29);
    data d;
    images(&g, 150, &d.x, &d.y);
    images(&g, 60, &d.vx, &d.vy);
    nb_fc_config fc = nb_fc_defaults();
    fc.n_hidden = 1;
    fc.hidden_dims = (const int64_t[]){ 32 };
    fc.input_dim = 64;
    fc.num_classes = 3;
    fc.weight_scale = 1e-1;
    fc.seed = 30;
    nb_model *m = nb_fully_connected_net(&fc);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    nb_solver_config c = quiet();
    c.optim = nb_optim_defaults(NB_RMSPROP);
    c.optim.lr = 3e-3;
    c.batch_size = 32;   /* shuffle: 5 per epoch, the last of 22 */
    c.batch_mode = NB_BATCH_SHUFFLE;
    c.num_epochs = 6;
    c.crop_pad = 1;
    c.hflip = true;
    c.clip_norm = 10;
    nb_solver *s = make(m, &d, &c);
    train_ok(s);
    int64_t n;
    const double *vacc = nb_solver_val_acc_history(s, &n);
    nb_solver_loss_history(s, &n);
    ck_assert_int_eq(n, 30);
    nb_solver_val_acc_history(s, &n);
    ck_assert_int_eq(n, 7);
    printf("8x8 images: val acc %.3f -> %.3f, best %.3f\n", vacc[0], vacc[n - 1], nb_solver_best_val_acc(s));
    fflush(stdout);
    ck_assert_double_ge(nb_solver_best_val_acc(s), 0.9);
    ck_assert_double_eq(model_acc(m, d.vx, d.vy), nb_solver_best_val_acc(s));
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
}
END_TEST

/* ---- cs231n's progress lines ---- */

START_TEST(verbose_lines)
{
    data d = blobs(100, 30, 1, 31);
    nb_model *m = two_layer(8, 32);
    nb_solver_config c = nb_solver_defaults();   /* verbose */
    c.batch_size = 10;   /* 10 per epoch */
    c.num_epochs = 2;
    c.print_every = 5;
    nb_solver *s = make(m, &d, &c);
    char path[128];
    tmp_path(path, sizeof path, "stdout.txt");
    fflush(stdout);
    int saved = dup(1);
    ck_assert(freopen(path, "w", stdout) != NULL);
    int rc = nb_solver_train(s);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ck_assert_int_eq(rc, 0);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    char line[256], text[4096] = "";
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        /* "(Iteration 1 / 20) loss: 1.098612" -> "(Iteration 1 / 20) loss: x" */
        char *colon = strstr(line, ": ");
        ck_assert(colon != NULL);
        colon[2] = 0;
        strncat(text, line, sizeof text - strlen(text) - 1);
        strncat(text, "x\n", sizeof text - strlen(text) - 1);
        lines++;
    }
    fclose(f);
    /* cs231n prints iterations t+1 for t % print_every == 0: 1, 6, 11, 16 */
    ck_assert_str_eq(text, "(Iteration 1 / 20) loss: x\n"
                           "(Epoch 0 / 2) train acc: x\n"
                           "(Iteration 6 / 20) loss: x\n"
                           "(Epoch 1 / 2) train acc: x\n"
                           "(Iteration 11 / 20) loss: x\n"
                           "(Iteration 16 / 20) loss: x\n"
                           "(Epoch 2 / 2) train acc: x\n");
    ck_assert_int_eq(lines, 7);
    nb_solver_free(s);
    nb_model_free(m);
    data_free(&d);
    tmp_cleanup((const char *[]){ "stdout.txt" }, 1);
}
END_TEST

/* one process (no launcher): no communicator; a NULL nb_dist acts as one rank; nb_dist_new explains
 * what is missing (MPI not compiled in, or not initialized) */
START_TEST(dist_in_one_process)
{
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    nb_dist *d = (nb_dist *)1;
    ck_assert_int_eq(nb_dist_launch(NULL, NULL, &d), 0);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(nb_dist_rank(NULL), 0);
    ck_assert_int_eq(nb_dist_size(NULL), 1);
    double v[2] = { 1.5, -2 };
    ck_assert_int_eq(nb_dist_sum(NULL, v, 2), 0);
    ck_assert(v[0] == 1.5 && v[1] == -2);
    ck_assert_int_eq(nb_dist_check(NULL, false), 0);
    ck_assert_ptr_null(nb_dist_new());
    ck_assert_str_eq(nb_last_error(), nb_dist_compiled()
                                          ? "nb_dist_new: MPI is not initialized: call MPI_Init first (or use nb_dist_launch)"
                                          : "nb_dist_new: nabla was built without MPI (install libopenmpi-dev and reconfigure with -Dmpi=enabled)");
    /* the Solver with a NULL dist is the one-process Solver (every other test) */
}
END_TEST

static Suite *solver_suite(void)
{
    /* each test takes well under a second single-threaded; the timeout covers loaded machines and
     * sanitizers (BLIS with several OpenMP threads on tiny matrices is much slower when cores are busy) */
    Suite *s = suite_create("solver");
    TCase *tc = tcase_create("training");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, defaults_are_cs231n);
    tcase_add_test(tc, trains_on_blobs);
    tcase_add_test(tc, iterations_per_epoch);
    tcase_add_test(tc, callback_fields_and_stop);
    tcase_add_test(tc, lr_decays_per_epoch);
    tcase_add_test(tc, lr_schedules);
    tcase_add_test(tc, best_parameters_restored);
    tcase_add_test(tc, divergence_stops);
    tcase_add_test(tc, accuracy_subsample);
    tcase_add_test(tc, images_with_augmentation);
    tcase_add_test(tc, verbose_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoints");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, save_contents);
    tcase_add_test(tc, checkpoint_every_epoch);
    tcase_add_loop_test(tc, resume_is_deterministic, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, construction_errors);
    tcase_add_test(tc, resume_errors);
    tcase_add_loop_test(tc, resume_refuses_tampered_checkpoints, 0, (int)(sizeof tampers / sizeof tampers[0]));
    tcase_add_test(tc, memory_does_not_grow);
    tcase_add_test(tc, dist_in_one_process);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(solver_suite)
