/* nabla/dist.h under `mpirun -np 2`: shards cover every index once, broadcast, the weighted gradient
 * all-reduce and averaging through small buckets (message counts), failure agreement and size
 * mismatches; the Solver on two ranks against one process with the same global batch (parameters
 * after N steps: f64 to 1e-12, f32 to 1e-5, SGD momentum and Adam, an MLP and the conv net),
 * minibatch shards covering every sample once per epoch, checkpoints written by rank 0 only, resume,
 * and a rank whose loss diverges stopping both with the checkpoint intact.
 * Every rank runs every test (Check without fork); assertions follow the collectives, so both
 * ranks fail or pass together. */
#include "nbtest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static nb_dist *d;

/* the same verdict on every rank: ok only if it holds everywhere */
static bool all_ok(bool ok)
{
    double bad = !ok;
    ck_assert_int_eq(nb_dist_sum(d, &bad, 1), 0);
    return bad == 0;
}

START_TEST(shards_cover_every_index_once)
{
    ck_assert_int_eq(nb_dist_size(d), 2);
    const int64_t sizes[] = { 0, 1, 2, 5, 7, 100 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t n = sizes[k], begin, end;
        nb_dist_shard(d, n, &begin, &end);
        ck_assert(begin >= 0 && begin <= end && end <= n);
        ck_assert(end - begin == n / 2 || end - begin == n / 2 + 1);
        double *seen = calloc((size_t)n + 1, sizeof *seen);
        for (int64_t i = begin; i < end; i++) seen[i] += 1;
        ck_assert_int_eq(nb_dist_sum(d, seen, (int)n), 0);
        for (int64_t i = 0; i < n; i++) ck_assert_msg(seen[i] == 1, "n %lld: index %lld seen %g times", (long long)n, (long long)i, seen[i]);
        free(seen);
    }
    /* without a communicator: one process holds everything */
    int64_t begin, end;
    nb_dist_shard(NULL, 9, &begin, &end);
    ck_assert(begin == 0 && end == 9);
}
END_TEST

/* tensors of both dtypes whose values depend on the rank: 300 + 7 f32 and 250 f64 elements */
static void rank_tensors(nb_tensor **t, double base)
{
    t[0] = nb_persist(nb_full(NB_F32, NB_SHAPE(30, 10), base));
    t[1] = nb_persist(nb_full(NB_F32, NB_SHAPE(7), base + 1));
    t[2] = nb_persist(nb_full(NB_F64, NB_SHAPE(250), base + 2));
    for (int i = 0; i < 3; i++) ck_assert_ptr_nonnull(t[i]);
    nb_set(t[0], 17, base * 3);   /* not uniform */
}

START_TEST(broadcast_from_rank_zero_in_buckets)
{
    const int rank = nb_dist_rank(d);
    nb_tensor *t[3];
    rank_tensors(t, rank == 0 ? 1.5 : -4);
    nb_dist_set_bucket_bytes(d, 1024);   /* 256 floats or 128 doubles per message */
    ck_assert_int_eq(nb_dist_broadcast(d, 3, t), 0);
    nb_dist_stats st = nb_dist_last_stats(d);
    /* f32: 307 values in 256 + 51, f64: 250 in 128 + 122 */
    ck_assert_int_eq(st.messages, 4);
    ck_assert_int_eq(st.bytes, 307 * 4 + 250 * 8);
    nb_tensor *expect[3];
    rank_tensors(expect, 1.5);
    for (int i = 0; i < 3; i++) nbt_assert_same(t[i], expect[i], 0);
    nb_dist_set_bucket_bytes(d, 4 << 20);
    ck_assert_int_eq(nb_dist_broadcast(d, 3, t), 0);
    ck_assert_int_eq(nb_dist_last_stats(d).messages, 2);   /* one per dtype */
    for (int i = 0; i < 3; i++) {
        nb_free(t[i]);
        nb_free(expect[i]);
    }
}
END_TEST

START_TEST(allreduce_grads_weighted_sum)
{
    const int rank = nb_dist_rank(d);
    nb_tensor *p[4];
    rank_tensors(p, 0);
    p[3] = nb_persist(nb_zeros(NB_F64, NB_SHAPE(3)));   /* a parameter without a gradient: skipped */
    nb_tensor *g[3];
    rank_tensors(g, rank + 1);   /* rank 0: 1, 2, 3 (and 3 at [17]); rank 1: 2, 3, 4 (6) */
    for (int i = 0; i < 3; i++) p[i]->grad = g[i];
    const double w = rank == 0 ? 0.25 : 0.75;
    nb_dist_set_bucket_bytes(d, 1024);
    ck_assert_int_eq(nb_dist_allreduce_grads(d, 4, p, w), 0);
    ck_assert_int_eq(nb_dist_last_stats(d).messages, 4);
    ck_assert_ptr_null(p[3]->grad);
    /* 0.25·v0 + 0.75·v1 */
    ck_assert_double_eq_tol(nb_get(p[0]->grad, 0), 0.25 * 1 + 0.75 * 2, 1e-6);
    ck_assert_double_eq_tol(nb_get(p[0]->grad, 17), 0.25 * 3 + 0.75 * 6, 1e-6);
    ck_assert_double_eq_tol(nb_get(p[0]->grad, 299), 0.25 * 1 + 0.75 * 2, 1e-6);
    ck_assert_double_eq_tol(nb_get(p[1]->grad, 6), 0.25 * 2 + 0.75 * 3, 1e-6);
    ck_assert_double_eq_tol(nb_get(p[2]->grad, 249), 0.25 * 3 + 0.75 * 4, 1e-15);
    /* values untouched */
    ck_assert_double_eq(nb_get(p[2], 0), 2);
    nb_dist_set_bucket_bytes(d, 4 << 20);
    for (int i = 0; i < 4; i++) {
        nb_free(p[i]);   /* frees its grad too */
    }
}
END_TEST

START_TEST(average_values)
{
    const int rank = nb_dist_rank(d);
    nb_tensor *t[3];
    rank_tensors(t, rank == 0 ? 1 : 5);
    ck_assert_int_eq(nb_dist_average(d, 3, t), 0);
    ck_assert_double_eq_tol(nb_get(t[0], 0), 3, 1e-6);
    ck_assert_double_eq_tol(nb_get(t[0], 17), 9, 1e-6);   /* (3 + 15) / 2 */
    ck_assert_double_eq_tol(nb_get(t[2], 100), 5, 1e-15);
    for (int i = 0; i < 3; i++) nb_free(t[i]);
}
END_TEST

START_TEST(failure_named_on_every_rank)
{
    const int rank = nb_dist_rank(d);
    ck_assert_int_eq(nb_dist_check(d, false), 0);
    /* rank 1 fails (a real error), rank 0 does not: both get rank 1's message */
    nb_clear_error();
    if (rank == 1) ck_assert_ptr_null(nb_reshape(nb_zeros(NB_F32, NB_SHAPE(2, 3)), NB_SHAPE(4)));
    char own[256];
    snprintf(own, sizeof own, "%s", nb_last_error());
    ck_assert_int_eq(nb_dist_check(d, rank == 1), -1);
    ck_assert_str_eq(nb_last_error(), "rank 1 failed: nb_reshape: cannot reshape [2,3] (6 elements) into [4]");
    /* both failing: each names itself, and how many failed; rank 0 reports the lowest */
    ck_assert_ptr_null(nb_reshape(nb_zeros(NB_F32, NB_SHAPE(rank + 1)), NB_SHAPE(5)));
    snprintf(own, sizeof own, "%s", nb_last_error());
    ck_assert_int_eq(nb_dist_check(d, true), -1);
    char expect[300];
    snprintf(expect, sizeof expect, "rank %d failed: %s (2 ranks failed)", rank, own);
    ck_assert_str_eq(nb_last_error(), expect);
}
END_TEST

START_TEST(size_mismatch_is_an_error)
{
    const int rank = nb_dist_rank(d);
    nb_tensor *t[3];
    rank_tensors(t, 1);
    ck_assert_int_eq(nb_dist_average(d, rank == 0 ? 3 : 2, t), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dist_average: the ranks hold different amounts of data (307 to 557 elements)");
    ck_assert_int_eq(nb_dist_broadcast(d, 3, (nb_tensor *[]){ t[0], NULL, t[2] }), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dist_broadcast: tensor 1 is NULL");
    /* invalid on one rank only: that rank names the problem, the other one does not wait for it */
    nb_tensor *labels = nb_persist(nb_zeros(NB_I64, NB_SHAPE(4)));
    ck_assert_int_eq(nb_dist_average(d, 1, rank == 1 ? &labels : &t[0]), -1);
    ck_assert_str_eq(nb_last_error(), rank == 1 ? "nb_dist_average: tensors must be f32 or f64, got i64 [4]"
                                                : "nb_dist_average: another rank was given invalid tensors");
    nb_free(labels);
    for (int i = 0; i < 3; i++) nb_free(t[i]);
}
END_TEST

/* ---- the Solver on two ranks against one process ---- */

/* n samples of dim features in 3 classes (Gaussian blobs), persistent */
static void blobs(int64_t n, int64_t dim, nb_dtype dt, uint64_t seed, nb_tensor **x, nb_tensor **y)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_tensor *xs = nb_randn(dt, NB_SHAPE(n, dim), &r, 1.0);
    nb_tensor *ys = nb_empty(NB_I64, NB_SHAPE(n));
    ck_assert(xs && ys);
    for (int64_t i = 0; i < n; i++) {
        nb_set(ys, i, (double)(i % 3));
        nb_set(xs, i * dim + i % 3, nb_get(xs, i * dim + i % 3) + 2.5);
    }
    *x = nb_persist(xs);
    *y = nb_persist(ys);
    nb_scope_reset(NULL);
}

static nb_model *mlp(nb_dtype dt)
{
    nb_fc_config c = nb_fc_defaults();
    c.n_hidden = 2;
    c.hidden_dims = (const int64_t[]){ 16, 12 };
    c.input_dim = 12;
    c.num_classes = 3;
    c.reg = 1e-3;
    c.weight_scale = 1e-1;
    c.dtype = dt;
    c.seed = 7;
    nb_model *m = nb_fully_connected_net(&c);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    return m;
}

static nb_model *convnet(nb_dtype dt)
{
    nb_convnet_config c = nb_convnet_defaults();
    c.in_c = 2, c.in_h = 6, c.in_w = 6, c.num_filters = 4, c.filter_size = 3, c.hidden_dim = 10, c.num_classes = 3;
    c.weight_scale = 1e-1, c.reg = 1e-3, c.dtype = dt;
    nb_rng r;
    nb_rng_seed(&r, 8);
    nb_model *m = nb_three_layer_convnet(&c, &r);
    ck_assert_msg(m != NULL, "%s", nb_last_error());
    return m;
}

typedef struct { nb_model *(*make)(nb_dtype); nb_tensor *x, *y, *vx, *vy; } problem;

static nb_solver_config config(nb_optim_kind kind, nb_dist *dist)
{
    nb_solver_config c = nb_solver_defaults();
    c.optim = nb_optim_defaults(kind);
    c.optim.lr = kind == NB_ADAM ? 1e-2 : 5e-2;
    c.batch_size = 9;   /* odd: shards of 5 and 4 */
    c.num_epochs = 3;
    c.num_train_samples = 0;
    c.batch_mode = NB_BATCH_SHUFFLE;
    c.verbose = false;
    c.seed = 11;
    c.dist = dist;
    return c;
}

/* trains a fresh model with cfg; returns it */
static nb_model *train(const problem *p, nb_dtype dt, nb_solver_config cfg, int expect_rc)
{
    nb_model *m = p->make(dt);
    nb_solver *s = nb_solver_new(m, p->x, p->y, p->vx, p->vy, &cfg);
    ck_assert_msg(s != NULL, "%s", nb_last_error());
    int rc = nb_solver_train(s);
    ck_assert_msg(rc == expect_rc, "rc %d: %s", rc, nb_last_error());
    nb_solver_free(s);
    return m;
}

typedef struct { nb_module *other; double worst; } compare_ctx;

static int compare_tensor(const char *name, nb_tensor *t, bool is_buffer, void *ctx)
{
    (void)is_buffer;
    compare_ctx *c = ctx;
    c->worst = fmax(c->worst, nbt_rel_error(t, nb_module_find(c->other, name)));
    return 0;
}

/* the worst relative difference between two models' tensors */
static double model_difference(nb_model *a, nb_model *b)
{
    compare_ctx c = { b->net, 0 };
    ck_assert_int_eq(nb_module_visit(a->net, compare_tensor, &c), 0);
    return c.worst;
}

static void matches_one_process(const problem *p, nb_dtype dt, nb_optim_kind kind, double tol)
{
    nb_model *single = train(p, dt, config(kind, NULL), 0);
    nb_model *ranked = train(p, dt, config(kind, d), 0);
    double e = model_difference(single, ranked);
    printf("rank %d: %s %s %s: two ranks vs one process, worst relative difference %.3g\n", nb_dist_rank(d),
           single->name, nb_dtype_name(dt), nb_optim_kind_name(kind), e);
    ck_assert_msg(all_ok(e <= tol), "difference %g above %g", e, tol);
    ck_assert(model_difference(single, single) == 0);
    nb_model_free(single);
    nb_model_free(ranked);
}

static problem mlp_problem(nb_dtype dt)
{
    problem p = { .make = mlp };
    blobs(60, 12, dt, 1, &p.x, &p.y);
    blobs(21, 12, dt, 2, &p.vx, &p.vy);
    return p;
}

static void problem_free(problem *p)
{
    nb_free(p->x);
    nb_free(p->y);
    nb_free(p->vx);
    nb_free(p->vy);
}

START_TEST(solver_matches_one_process_f64)
{
    problem p = mlp_problem(NB_F64);
    matches_one_process(&p, NB_F64, NB_SGD_MOMENTUM, 1e-12);
    matches_one_process(&p, NB_F64, NB_ADAM, 1e-12);
    problem_free(&p);
    problem c = { .make = convnet };
    blobs(45, 72, NB_F64, 3, &c.x, &c.y);
    blobs(12, 72, NB_F64, 4, &c.vx, &c.vy);
    nb_tensor *flat[2] = { c.x, c.vx };
    c.x = nb_persist(nb_reshape(flat[0], NB_SHAPE(45, 2, 6, 6)));
    c.vx = nb_persist(nb_reshape(flat[1], NB_SHAPE(12, 2, 6, 6)));
    nb_free(flat[0]);
    nb_free(flat[1]);
    matches_one_process(&c, NB_F64, NB_ADAM, 1e-12);
    problem_free(&c);
}
END_TEST

START_TEST(solver_matches_one_process_f32)
{
    problem p = mlp_problem(NB_F32);
    matches_one_process(&p, NB_F32, NB_SGD_MOMENTUM, 1e-5);
    matches_one_process(&p, NB_F32, NB_ADAM, 1e-5);
    problem_free(&p);
}
END_TEST

/* the Solver's minibatches (a shuffled batcher) split by nb_dist_shard: every sample once per epoch */
START_TEST(minibatch_shards_cover_every_sample_once)
{
    enum { N = 50 };
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(N, 2)), *y = nb_empty(NB_I64, NB_SHAPE(N));   /* label = sample index */
    for (int i = 0; i < N; i++) nb_set(y, i, i);
    for (uint64_t epoch = 0; epoch < 2; epoch++) {
        nb_rng r;
        nb_rng_seed(&r, 5 + epoch);
        nb_batcher *b = nb_batcher_new(x, y, 8, NB_BATCH_SHUFFLE, &r);
        ck_assert_ptr_nonnull(b);
        double seen[N] = { 0 };
        nb_tensor *xb, *yb;
        while (nb_batcher_next(b, &xb, &yb) == 1) {
            int64_t begin, end;
            nb_dist_shard(d, yb->shape[0], &begin, &end);
            nb_tensor *mine = nb_take_rows(yb, begin, end - begin);
            for (int64_t i = 0; i < nb_numel(mine); i++) seen[(int64_t)nb_get(mine, i)] += 1;
        }
        nb_batcher_free(b);
        ck_assert_int_eq(nb_dist_sum(d, seen, N), 0);
        for (int i = 0; i < N; i++) ck_assert_msg(seen[i] == 1, "epoch %d: sample %d seen %g times", (int)epoch, i, seen[i]);
    }
}
END_TEST

/* checkpoints: rank 0 writes (another rank's path stays absent); training 3 epochs straight and 2 +
 * resume to 3 give the same parameters; a rank whose loss diverges stops both, named in the error,
 * and the last checkpoint still loads */
START_TEST(checkpoints_resume_and_a_failing_rank)
{
    const int rank = nb_dist_rank(d);
    problem p = mlp_problem(NB_F64);
    char dir[] = "/tmp/nabla-dist-XXXXXX", path[64], mine[80];
    if (rank == 0) ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD), MPI_SUCCESS);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    snprintf(mine, sizeof mine, "%s/rank%d", dir, rank);

    nb_model *straight = train(&p, NB_F64, config(NB_ADAM, d), 0);
    nb_solver_config two = config(NB_ADAM, d);
    two.num_epochs = 2;
    two.checkpoint_path = rank == 0 ? path : mine;
    nb_model_free(train(&p, NB_F64, two, 0));
    ck_assert(all_ok(access(path, F_OK) == 0));
    ck_assert(all_ok(access(mine, F_OK) != 0 || rank == 0));   /* rank 1 wrote nothing */

    nb_model *resumed = p.make(NB_F64);
    nb_solver_config three = config(NB_ADAM, d);
    nb_solver *s = nb_solver_new(resumed, p.x, p.y, p.vx, p.vy, &three);
    ck_assert_int_eq(nb_solver_resume(s, path), 0);
    ck_assert_int_eq(nb_solver_train(s), 0);
    nb_solver_free(s);
    ck_assert(all_ok(model_difference(straight, resumed) == 0));

    /* rank 1's copy of the data goes bad after resuming (the checkpoint's data fingerprint matched):
     * its first loss is NaN */
    nb_tensor *x = rank == 1 ? nb_persist(p.x) : p.x;
    nb_model *m = p.make(NB_F64);
    nb_solver_config more = config(NB_ADAM, d);
    more.num_epochs = 4;
    more.checkpoint_path = path;
    s = nb_solver_new(m, x, p.y, p.vx, p.vy, &more);
    ck_assert_int_eq(nb_solver_resume(s, path), 0);
    if (rank == 1) nb_fill(x, NAN);
    ck_assert_int_eq(nb_solver_train(s), -1);
    ck_assert_str_eq(nb_last_error(), "rank 1 failed: loss diverged at iteration 15: try a smaller learning rate");
    nb_solver_free(s);
    nb_safetensors *st = nb_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), "2");
    nb_safetensors_free(st);

    /* other data on one rank only: every rank refuses the checkpoint, naming the first that did */
    nb_tensor *other = rank == 1 ? nb_persist(nb_mul_scalar(p.x, 2)) : p.x;
    nb_model *m2 = p.make(NB_F64);
    s = nb_solver_new(m2, other, p.y, p.vx, p.vy, &more);
    ck_assert_int_eq(nb_solver_resume(s, path), -1);
    ck_assert_msg(!strncmp(nb_last_error(), "rank 1 failed: nb_solver_resume: ", 33), "%s", nb_last_error());
    ck_assert_int_eq(nb_solver_epoch(s), 0);
    nb_solver_free(s);
    nb_model_free(m2);
    if (rank == 1) nb_free(other);

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        remove(path);
        rmdir(dir);
    }
    if (rank == 1) nb_free(x);
    nb_model_free(m);
    nb_model_free(straight);
    nb_model_free(resumed);
    problem_free(&p);
}
END_TEST

static Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *c = tcase_create("collectives");
    tcase_add_test(c, shards_cover_every_index_once);
    tcase_add_test(c, broadcast_from_rank_zero_in_buckets);
    tcase_add_test(c, allreduce_grads_weighted_sum);
    tcase_add_test(c, average_values);
    tcase_add_test(c, failure_named_on_every_rank);
    tcase_add_test(c, size_mismatch_is_an_error);
    suite_add_tcase(s, c);
    TCase *t = tcase_create("solver");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, solver_matches_one_process_f64);
    tcase_add_test(t, solver_matches_one_process_f32);
    tcase_add_test(t, minibatch_shards_cover_every_sample_once);
    tcase_add_test(t, checkpoints_resume_and_a_failing_rank);
    suite_add_tcase(s, t);
    return s;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    d = nb_dist_new();
    if (!d) {
        fprintf(stderr, "%s\n", nb_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    SRunner *sr = srunner_create(dist_suite());
    srunner_set_fork_status(sr, CK_NOFORK);   /* MPI state does not survive fork */
    srunner_run_all(sr, nb_dist_rank(d) == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nb_dist_free(d);
    nb_cleanup();
    MPI_Finalize();
    return failed ? 1 : 0;
}
