/* Threads: two independent trainings (FullyConnectedNet with batchnorm and dropout, Adam, the
 * Solver) run concurrently in two threads end bit-identical to the same trainings run one after the
 * other in the main thread; the last error and the grad mode are per thread. BLIS runs on one
 * thread so that results do not depend on the thread count. */
#include "nbtest.h"

#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- one training, entirely owned by the thread that runs it ---- */

typedef struct {
    uint64_t seed;          /* data, initialisation, dropout and minibatches */
    /* results, plain memory so they outlive the thread's scopes */
    double *params;         /* every parameter and buffer of the net, flattened in visit order */
    int64_t n_params;
    double *loss;           /* the loss history */
    int64_t n_loss;
    double *val_acc;
    int64_t n_val_acc;
    char error[256];        /* "" when the run went well */
} job;

static int job_fail(job *j, const char *what)
{
    snprintf(j->error, sizeof j->error, "seed %llu: %s: %s", (unsigned long long)j->seed, what, nb_last_error());
    return -1;
}

/* n rows in 10-D, class i % 3 centred at 3·e_class, unit noise; persistent */
static int blobs(nb_rng *r, int64_t n, nb_tensor **x, nb_tensor **y)
{
    double *xv = malloc(sizeof *xv * (size_t)(n * 10)), *yv = malloc(sizeof *yv * (size_t)n);
    if (!xv || !yv) {
        free(xv);
        free(yv);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t c = i % 3;
        yv[i] = (double)c;
        for (int64_t k = 0; k < 10; k++) xv[i * 10 + k] = nb_rng_normal(r) + (k == c ? 3.0 : 0.0);
    }
    *x = nb_persist(nb_from_doubles(NB_F64, NB_SHAPE(n, 10), xv));
    *y = nb_persist(nb_from_doubles(NB_I64, NB_SHAPE(n), yv));
    free(xv);
    free(yv);
    nb_scope_reset(NULL);
    return *x && *y ? 0 : -1;
}

typedef struct { double *v; int64_t n, cap; } flat;

static int flatten(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)name;
    (void)is_buffer;
    flat *f = ctx;
    int64_t n = nb_numel(t);
    if (f->n + n > f->cap) {
        int64_t cap = 2 * (f->n + n);
        double *v = realloc(f->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        f->v = v;
        f->cap = cap;
    }
    for (int64_t i = 0; i < n; i++) f->v[f->n++] = nb_get(t, i);
    return 0;
}

static double *copy_history(const double *h, int64_t n)
{
    double *c = malloc(sizeof *c * (size_t)(n ? n : 1));
    if (c && n) memcpy(c, h, sizeof *c * (size_t)n);
    return c;
}

static void run_job(job *j)
{
    nb_rng r;
    nb_rng_seed(&r, j->seed);
    nb_tensor *x = NULL, *y = NULL, *vx = NULL, *vy = NULL;
    nb_model *m = NULL;
    nb_solver *s = NULL;
    j->error[0] = 0;
    if (blobs(&r, 600, &x, &y) || blobs(&r, 100, &vx, &vy)) {
        job_fail(j, "data");
        goto out;
    }
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 2;
    c.hidden_dims = (const int64_t[]){ 64, 64 };
    c.input_dim = 10;
    c.num_classes = 3;
    c.keep_prob = 0.7;
    c.norm = NB_NORM_BATCH;
    c.weight_scale = 5e-2;
    c.reg = 1e-3;
    c.dtype = NB_F64;
    c.seed = j->seed;
    if (!(m = nb_fully_connected_net(&c))) {
        job_fail(j, "nb_fully_connected_net");
        goto out;
    }
    nb_solver_config sc = nb_solver_defaults();
    sc.verbose = false;
    sc.optim = nb_optim_defaults(NB_ADAM);
    sc.optim.lr = 1e-3;
    sc.batch_size = 25;
    sc.num_epochs = 2;
    sc.num_train_samples = 100;
    sc.seed = j->seed;
    if (!(s = nb_solver_new(m, x, y, vx, vy, &sc))) {
        job_fail(j, "nb_solver_new");
        goto out;
    }
    if (nb_solver_train(s) != 0) {
        job_fail(j, "nb_solver_train");
        goto out;
    }
    const double *h = nb_solver_loss_history(s, &j->n_loss);
    j->loss = copy_history(h, j->n_loss);
    h = nb_solver_val_acc_history(s, &j->n_val_acc);
    j->val_acc = copy_history(h, j->n_val_acc);
    flat f = { 0 };
    if (nb_module_visit(m->net, flatten, &f) != 0) job_fail(j, "nb_module_visit");
    j->params = f.v;
    j->n_params = f.n;
out:
    nb_solver_free(s);
    nb_model_free(m);
    nb_free(x);
    nb_free(y);
    nb_free(vx);
    nb_free(vy);
    nb_cleanup();
}

static void *job_thread(void *arg)
{
    run_job(arg);
    return NULL;
}

static void job_free(job *j)
{
    free(j->params);
    free(j->loss);
    free(j->val_acc);
}

static void assert_same(const char *what, const double *a, int64_t na, const double *b, int64_t nb)
{
    ck_assert_msg(na == nb, "%s: %lld != %lld values", what, (long long)na, (long long)nb);
    ck_assert_msg(na > 0, "%s: empty", what);
    for (int64_t i = 0; i < na; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof a[i]) == 0, "%s[%lld]: %.17g != %.17g", what, (long long)i, a[i],
                      b[i]);
}

START_TEST(test_concurrent_trainings_match_sequential)
{
    const uint64_t seeds[2] = { 11, 29 };
    job seq[2] = { { .seed = seeds[0] }, { .seed = seeds[1] } };
    job par[2] = { { .seed = seeds[0] }, { .seed = seeds[1] } };

    for (int i = 0; i < 2; i++) {
        run_job(&seq[i]);
        ck_assert_msg(seq[i].error[0] == 0, "%s", seq[i].error);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, job_thread, &par[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);

    for (int i = 0; i < 2; i++) {
        ck_assert_msg(par[i].error[0] == 0, "%s", par[i].error);
        ck_assert_int_eq(seq[i].n_loss, 2 * 600 / 25);
        assert_same("loss history", seq[i].loss, seq[i].n_loss, par[i].loss, par[i].n_loss);
        assert_same("val accuracy history", seq[i].val_acc, seq[i].n_val_acc, par[i].val_acc, par[i].n_val_acc);
        assert_same("parameters", seq[i].params, seq[i].n_params, par[i].params, par[i].n_params);
    }
    /* the two seeds really are different trainings */
    ck_assert(seq[0].loss[seq[0].n_loss - 1] != seq[1].loss[seq[1].n_loss - 1]);
    for (int i = 0; i < 2; i++) {
        job_free(&seq[i]);
        job_free(&par[i]);
    }
}
END_TEST

/* ---- per-thread state: the last error and the grad mode ---- */

typedef struct {
    pthread_barrier_t *barrier;
    int id;
    char seen[4][256];    /* what this thread observed at each step */
    bool grad_seen[3];    /* requires_grad of x*x at each step */
} probe;

static bool square_requires_grad(void)
{
    nb_tensor *x = nb_full(NB_F64, NB_SHAPE(3), 2.0);
    nb_set_requires_grad(x, true);
    nb_tensor *y = nb_mul(x, x);
    bool r = y && y->requires_grad && y->node != NULL;
    nb_scope_reset(NULL);
    return r;
}

static void *probe_thread(void *arg)
{
    probe *p = arg;
    nb_clear_error();
    /* step 0: thread 0 records an error; thread 1 must not see it */
    if (p->id == 0) nb_safetensors_load("/nonexistent-nabla-dir/thread0.safetensors");
    pthread_barrier_wait(p->barrier);
    snprintf(p->seen[0], sizeof p->seen[0], "%s", nb_last_error());
    pthread_barrier_wait(p->barrier);
    /* step 1: thread 1 records its own error; thread 0 keeps its own */
    if (p->id == 1) nb_safetensors_load("/nonexistent-nabla-dir/thread1.safetensors");
    pthread_barrier_wait(p->barrier);
    snprintf(p->seen[1], sizeof p->seen[1], "%s", nb_last_error());
    pthread_barrier_wait(p->barrier);
    /* step 2: thread 0 clears its error; thread 1 keeps its own */
    if (p->id == 0) nb_clear_error();
    pthread_barrier_wait(p->barrier);
    snprintf(p->seen[2], sizeof p->seen[2], "%s", nb_last_error());
    pthread_barrier_wait(p->barrier);

    /* grad mode: off in thread 0 only */
    p->grad_seen[0] = square_requires_grad();
    pthread_barrier_wait(p->barrier);
    if (p->id == 0) nb_set_grad_enabled(false);
    pthread_barrier_wait(p->barrier);
    p->grad_seen[1] = square_requires_grad();
    snprintf(p->seen[3], sizeof p->seen[3], "%d", (int)nb_grad_enabled());
    pthread_barrier_wait(p->barrier);
    /* thread 1 turns it off too, thread 0 back on */
    if (p->id == 0) nb_set_grad_enabled(true);
    if (p->id == 1) nb_set_grad_enabled(false);
    pthread_barrier_wait(p->barrier);
    p->grad_seen[2] = square_requires_grad();
    nb_set_grad_enabled(true);
    nb_cleanup();
    return NULL;
}

START_TEST(test_error_and_grad_mode_are_per_thread)
{
    pthread_barrier_t b;
    ck_assert_int_eq(pthread_barrier_init(&b, NULL, 2), 0);
    probe p[2] = { { .barrier = &b, .id = 0 }, { .barrier = &b, .id = 1 } };
    nb_clear_error();
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, probe_thread, &p[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&b);

    ck_assert_msg(strstr(p[0].seen[0], "thread0.safetensors") != NULL, "thread 0 error: '%s'", p[0].seen[0]);
    ck_assert_str_eq(p[1].seen[0], "");
    ck_assert_msg(strstr(p[0].seen[1], "thread0.safetensors") != NULL, "thread 0 error: '%s'", p[0].seen[1]);
    ck_assert_msg(strstr(p[1].seen[1], "thread1.safetensors") != NULL, "thread 1 error: '%s'", p[1].seen[1]);
    ck_assert_str_eq(p[0].seen[2], "");
    ck_assert_msg(strstr(p[1].seen[2], "thread1.safetensors") != NULL, "thread 1 error: '%s'", p[1].seen[2]);
    /* the main thread saw none of it */
    ck_assert_str_eq(nb_last_error(), "");

    ck_assert(p[0].grad_seen[0] && p[1].grad_seen[0]);
    ck_assert(!p[0].grad_seen[1]);
    ck_assert(p[1].grad_seen[1]);
    ck_assert_str_eq(p[0].seen[3], "0");
    ck_assert_str_eq(p[1].seen[3], "1");
    ck_assert(p[0].grad_seen[2]);
    ck_assert(!p[1].grad_seen[2]);
    /* and the main thread's grad mode is still on */
    ck_assert(nb_grad_enabled());
}
END_TEST

/* ---- ops split among OpenMP threads give the same bits as on one thread ---- */

#define OP_RESULTS 11

/* large enough for every op below to take its parallel path */
static void op_results(int threads, nb_tensor **out)
{
    ck_assert_int_eq(nb_set_num_threads(threads), 0);
    ck_assert_int_eq(nb_num_threads(), threads);
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    nb_tensor *x = nb_randn(NB_F32, NB_SHAPE(8, 16, 32, 32), &rng, 1.0);
    nb_set_requires_grad(x, true);
    nb_tensor *bias = nb_randn(NB_F32, NB_SHAPE(16, 1, 1), &rng, 1.0);
    nb_tensor *gamma = nb_rand(NB_F32, NB_SHAPE(16), &rng, 0.5, 2), *beta = nb_randn(NB_F32, NB_SHAPE(16), &rng, 1.0);
    out[0] = nb_add(x, bias);                                             /* broadcast */
    out[1] = nb_exp(nb_relu(out[0]));
    out[2] = nb_contiguous(nb_permute(x, NB_AXES(0, 2, 3, 1)));          /* strided copy */
    out[3] = nb_full(NB_F32, NB_SHAPE(8, 16, 32, 32), 0.5);
    out[4] = nb_unfold(x, NB_WINDOW(3, 1, 1));
    out[5] = nb_fold(out[4], 32, 32, NB_WINDOW(3, 1, 1));
    out[6] = nb_max_pool2d(x, NB_WINDOW(2, 2, 0));
    out[7] = nb_batchnorm_fused(x, gamma, beta, 1e-5, NULL, NULL);   /* NCHW; out[9]: channels-last */
    nb_tensor *w = nb_randn(NB_F32, NB_SHAPE(16, 16, 3, 3), &rng, 0.1);   /* 16 filters: dw by dw_rows */
    nb_set_requires_grad(w, true);
    out[9] = nb_batchnorm_fused(nb_conv2d_fused(x, w, NULL, 1, 1), nb_ones(NB_F32, NB_SHAPE(16)),
                                nb_zeros(NB_F32, NB_SHAPE(16)), 1e-5, NULL, NULL);
    nb_tensor *loss = nb_add(nb_add(nb_sum(nb_square(out[6])), nb_sum(nb_mul(out[7], out[1]))), nb_sum(nb_square(out[9])));
    ck_assert_int_eq(nb_backward(loss), 0);
    out[8] = x->grad;
    out[10] = w->grad;   /* summed over the convolution's chunks, whichever thread ran them */
}

START_TEST(test_ops_same_on_any_thread_count)
{
    nb_tensor *one[OP_RESULTS], *two[OP_RESULTS];
    op_results(1, one);
    op_results(2, two);
    nb_set_num_threads(1);
    for (int k = 0; k < OP_RESULTS; k++) nbt_assert_same_bits(one[k], two[k], "result on 1 and 2 threads", k);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    /* "pthreads": the library used from several threads at once (what tools/tsan.sh checks);
     * "openmp": its own parallel regions (libgomp is not instrumented, so ThreadSanitizer cannot
     * see the synchronisation of its barriers and reports false races there) */
    TCase *tc = tcase_create("pthreads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_concurrent_trainings_match_sequential);
    tcase_add_test(tc, test_error_and_grad_mode_are_per_thread);
    suite_add_tcase(s, tc);
    tc = tcase_create("openmp");
    tcase_set_tags(tc, "openmp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ops_same_on_any_thread_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    bli_thread_set_num_threads(1);        /* results must not depend on threads (BLIS read its environment at load) */
    nb_set_adaptive_threads(false);       /* the counts asked for, however busy the machine */
    SRunner *sr = srunner_create(threads_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nb_cleanup();
    return failed ? 1 : 0;
}
