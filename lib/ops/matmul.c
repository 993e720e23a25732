/* Matrix product through BLIS's typed gemm, batched over broadcast leading axes. Operands are read
 * in place through their strides (transposed and sliced views included); only a layout BLIS
 * rejects (a zero stride from expand, interleaved rows and columns) is copied first. */
#include "../internal.h"

#include <string.h>

#include <blis.h>   /* a system include (see meson.build): its own warnings are not ours */

/* Makes (rs, cs) acceptable to BLIS for an m×n operand, following bli_check_matrix_strides: the
 * stride of a size-1 axis is never used, so it gets a value BLIS accepts. False when the layout
 * itself is one BLIS rejects. */
static bool blis_strides(int64_t m, int64_t n, int64_t *rs, int64_t *cs)
{
    if (m == 1 && n == 1) {
        *rs = *cs = 1;
        return true;
    }
    if (m == 1) *rs = n * *cs;
    if (n == 1) *cs = m * *rs;
    int64_t r = *rs, c = *cs;
    if (r <= 0 || c <= 0) return false;
    if (r == 1) return c >= m;          /* column-major */
    if (c == 1) return r >= n;          /* row-major */
    return r < c ? m * r <= c : n * c <= r;   /* general stride: columns (rows) must not interleave */
}

/* The last two axes of t as BLIS reads them: t itself or, when BLIS rejects its strides, a row-major
 * copy (which it always accepts). *rs and *cs receive the strides in elements. */
static nb_tensor *readable(nb_tensor *t, int64_t *rs, int64_t *cs)
{
    int64_t m = t->shape[t->ndim - 2], n = t->shape[t->ndim - 1];
    *rs = t->stride[t->ndim - 2];
    *cs = t->stride[t->ndim - 1];
    if (blis_strides(m, n, rs, cs)) return t;
    nb_tensor *copy = nb_copy(t);
    if (!copy) return NULL;
    *rs = copy->stride[copy->ndim - 2];
    *cs = copy->stride[copy->ndim - 1];
    blis_strides(m, n, rs, cs);
    return copy;
}

/* byte strides of t's batch axes against the output's `batch_ndim` batch axes (0 where t broadcasts) */
static void batch_strides(const nb_tensor *t, int batch_ndim, int64_t *stride)
{
    int off = batch_ndim - (t->ndim - 2);
    int64_t es = (int64_t)nb_dtype_size(t->dtype);
    for (int i = 0; i < batch_ndim; i++) {
        int j = i - off;
        stride[i] = j < 0 || t->shape[j] == 1 ? 0 : t->stride[j] * es;
    }
}

/* BLIS takes its small-matrix ("sup") path when a dimension is small. Here (1 thread, GFLOP/s sup vs
 * packed, alternating calls) the packed path is faster for
 *   - m or n in the thousands with the other at least 64: 8192x100x128 27 vs 43, 3072x100x200 32 vs
 *     48, 200x3072x100 36 vs 51 (but 50x8192x100: packed at 84-96% of sup);
 *   - tall products with some width and depth, as W3's convolution: 668x32x147 40 vs 49, 256x64x576
 *     51 vs 56;
 * and sup for the rest: a long k (128x100x8192 45 vs 43), small products (200x100x100 71 vs 51), the
 * convolutions' other products (144x16x682 61 vs 33, 682x144x16 50 vs 33, 341x32x288 56 vs 46). */
static bool sup_is_slower(int64_t m, int64_t n, int64_t k)
{
    if ((m > 2048 || n > 2048) && (m < n ? m : n) >= 64) return true;
    return m >= 512 && n >= 32 && k >= 128;
}

void nb_gemm(nb_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa, int64_t csa, const void *b,
             int64_t rsb, int64_t csb, double beta, void *c, int64_t rsc, int64_t csc)
{
    /* the threads an op may use now (threads.c); sup set either way (BLIS's global settings turn it
     * off: a plain call with no rntm_t is what turns it on) */
    rntm_t rntm;
    bli_rntm_init_from_global(&rntm);
    const int threads = nb_blas_threads();
    if (threads > 0) bli_rntm_set_num_threads(threads, &rntm);
    if (sup_is_slower(m, n, k)) bli_rntm_disable_l3_sup(&rntm);
    else bli_rntm_enable_l3_sup(&rntm);
    if (dt == NB_F32) {
        float one = 1, fbeta = (float)beta;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (float *)a, rsa, csa, (float *)b, rsb, csb,
                     &fbeta, (float *)c, rsc, csc, NULL, &rntm);
    } else {
        double one = 1;
        bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (double *)a, rsa, csa, (double *)b, rsb,
                     csb, &beta, (double *)c, rsc, csc, NULL, &rntm);
    }
}

#define SMALL_PRODUCT ((int64_t)1 << 22)   /* multiply-adds: attention's heads are 2^20 */

/* one batch's operands and product */
typedef struct {
    nb_tensor *out, *a, *b;
    int64_t m, n, k, rsa, csa, rsb, csb, rsc, csc, a_batch[NB_MAX_DIMS], b_batch[NB_MAX_DIMS], c_batch[NB_MAX_DIMS];
    double beta;
} batched;

static void gemm_of_batch(const batched *p, int64_t i)
{
    const nb_tensor *out = p->out;
    char *pa = p->a->data, *pb = p->b->data, *pc = out->data;
    for (int d = out->ndim - 3; d >= 0; d--) {
        const int64_t coord = i % out->shape[d];
        i /= out->shape[d];
        pa += coord * p->a_batch[d];
        pb += coord * p->b_batch[d];
        pc += coord * p->c_batch[d];
    }
    nb_gemm(out->dtype, p->m, p->n, p->k, pa, p->rsa, p->csa, pb, p->rsb, p->csb, p->beta, pc, p->rsc, p->csc);
}

/* true when b is the same matrix in every batch and the batch axes of a and out step over whole rows
 * (row-major rows, batches one after another): then the batched product is one of batches·m rows */
static bool rows_collapse(const batched *p, int batch_ndim)
{
    const int64_t es = (int64_t)nb_dtype_size(p->out->dtype);
    if (p->csa != 1 || p->csc != 1) return false;
    int64_t a_next = p->m * p->rsa * es, c_next = p->m * p->rsc * es;   /* bytes to the next batch */
    for (int d = batch_ndim - 1; d >= 0; d--) {
        const int64_t size = p->out->shape[d];
        if (p->b_batch[d] != 0 || (size > 1 && (p->a_batch[d] != a_next || p->c_batch[d] != c_next))) return false;
        a_next *= size;
        c_next *= size;
    }
    return true;
}

int nb_batched_gemm(nb_tensor *out, nb_tensor *a, nb_tensor *b, double beta)
{
    const int batch_ndim = out->ndim - 2;
    batched p = { .out = out, .m = out->shape[batch_ndim], .n = out->shape[batch_ndim + 1], .k = a->shape[a->ndim - 1],
                  .beta = beta };
    p.a = readable(a, &p.rsa, &p.csa);
    p.b = readable(b, &p.rsb, &p.csb);
    p.rsc = out->stride[batch_ndim];
    p.csc = out->stride[batch_ndim + 1];
    if (!p.a || !p.b) return -1;
    if (!blis_strides(p.m, p.n, &p.rsc, &p.csc)) {
        nb_error("nb_matmul: BLIS cannot write an output with strides %s", nb_shp(out));
        return -1;
    }
    batch_strides(p.a, batch_ndim, p.a_batch);
    batch_strides(p.b, batch_ndim, p.b_batch);
    batch_strides(out, batch_ndim, p.c_batch);
    int64_t batches = nb_shape_numel(batch_ndim, out->shape);
    if (batches > 1 && rows_collapse(&p, batch_ndim)) {   /* one product of all rows */
        p.m *= batches;
        batches = 1;
        p.out = out = nb_view(out, 2, (int64_t[]){ p.m, p.n }, (int64_t[]){ p.rsc, p.csc }, out->data);
        if (!out) return -1;
    }
    /* small products side by side, one per thread: BLIS splitting each one costs more than it gains.
     * Otherwise no parallel region at all: BLIS's own team inside one would be a nested team, whose
     * threads libgomp creates anew on every call. */
    const int threads = batches > 1 && p.m * p.n * p.k <= SMALL_PRODUCT ? nb_parallel_threads() : 1;
    if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < batches; i++) gemm_of_batch(&p, i);
    } else {
        for (int64_t i = 0; i < batches; i++) gemm_of_batch(&p, i);
    }
    return 0;
}

/* ---- the gradients of a large 2-D product, shared among threads as whole tasks ----
 * da = g·bᵀ, db = aᵀ·g and a bias's Σ_rows g: each task a one-thread BLIS call (or the column sum),
 * taken by two threads in turn. Two whole products side by side scale better than BLIS's split of
 * each, and the bias's sum (memory-bound, serial otherwise) fills the wait of the thread that finished
 * first (db runs slower than da here). Only without create_graph (the rules below record ops
 * otherwise), for operands BLIS reads in place and products large enough. nabla-bench W7, 2 threads,
 * backward: 45.5 ms a step of BLIS's split and serial bias sums, 44.2 with da and db side by side, and
 * about 1.5 ms less with the sums as a task. (Splitting db in two halves of its columns was slower:
 * both halves pack all of a.) */

typedef struct {
    nb_tensor *out, *a, *b;   /* out = a·b; out NULL: the bias's column sums of g */
} grad_task;

static bool in_place_for_blis(const nb_tensor *t)
{
    int64_t rs = t->stride[0], cs = t->stride[1];
    return t->ndim == 2 && blis_strides(t->shape[0], t->shape[1], &rs, &cs);
}

/* gin[0..1] (and gin[2], the bias's, when bias is not NULL); 1 when this does not apply, else 0 or -1 */
static int gradients_as_tasks(nb_tensor *a, nb_tensor *b, nb_tensor *bias, nb_tensor *g, nb_tensor **gin)
{
    static const char op[] = "nb_matmul_backward";
    const int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    if (nb_grad_enabled() || !in_place_for_blis(a) || !in_place_for_blis(b) || !in_place_for_blis(g) ||
        m * n * k < SMALL_PRODUCT || (bias && !nb_is_contiguous(g)) || nb_parallel_threads() < 2)
        return 1;
    nb_tensor *da = nb_new(op, a->dtype, 2, a->shape), *db = nb_new(op, b->dtype, 2, b->shape);
    nb_tensor *at = nb_transpose(a, 0, 1), *bt = nb_transpose(b, 0, 1);
    if (!da || !db || !at || !bt) return -1;
    grad_task tasks[3] = { { da, g, bt }, { db, at, g } };
    int count = 2;
    double *sums = NULL;
    nb_tensor *dbias = NULL;
    if (bias) {
        sums = nb_scope_alloc(sizeof(double) * (size_t)n);
        dbias = nb_new(op, bias->dtype, 1, bias->shape);
        if (!sums || !dbias) return -1;
        memset(sums, 0, sizeof(double) * (size_t)n);
        tasks[count++] = (grad_task){ NULL, NULL, NULL };
    }
    int rc = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(| : rc)
    for (int i = 0; i < count; i++) {
        if (tasks[i].out) rc |= nb_batched_gemm(tasks[i].out, tasks[i].a, tasks[i].b, 0);
        else nb_column_sums(g, m, n, sums);
    }
    if (rc) return -1;
    for (int64_t j = 0; dbias && j < n; j++) {   /* rounded as nb_sum_to rounds its double sums */
        if (dbias->dtype == NB_F32) ((float *)dbias->data)[j] = (float)sums[j];
        else ((double *)dbias->data)[j] = sums[j];
    }
    gin[0] = da;
    gin[1] = db;
    if (bias) gin[2] = dbias;
    return 0;
}

/* ---- matmul ---- */

/* the gradients of a·b for g (gin[i] NULL where want[i] is false) */
static int product_gradients(nb_tensor *a, nb_tensor *b, nb_tensor *g, const bool want[2], nb_tensor **gin)
{
    if (want[0] && want[1] && a->ndim == 2 && b->ndim == 2) {
        const int rc = gradients_as_tasks(a, b, NULL, g, gin);
        if (rc <= 0) return rc;
    }
    /* the transposes are views: BLIS reads them through their strides */
    if (want[0] && !(gin[0] = nb_sum_to(nb_matmul(g, nb_transpose(b, -1, -2)), nb_shape_of(a)))) return -1;
    if (want[1] && !(gin[1] = nb_sum_to(nb_matmul(nb_transpose(a, -1, -2), g), nb_shape_of(b)))) return -1;
    return 0;
}

static int matmul_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    const bool want[2] = { nb_needs_grad(n, 0), nb_needs_grad(n, 1) };
    if (b->ndim > 2 || a->ndim == 2) return product_gradients(a, b, g, want, gin);
    /* a [..,M,K] and b [K,N], the same b in every batch: the gradients of one product of all rows
     * (b's is then one product with k = all rows, not a product per batch and their sum) */
    const int64_t rows = nb_shape_numel(a->ndim - 1, a->shape);
    nb_tensor *flat[2] = { NULL, NULL };
    nb_tensor *a_rows = nb_reshape(a, NB_SHAPE(rows, b->shape[0])), *g_rows = nb_reshape(g, NB_SHAPE(rows, b->shape[1]));
    if (!a_rows || !g_rows || product_gradients(a_rows, b, g_rows, want, flat) != 0) return -1;
    if (want[0] && !(gin[0] = nb_reshape(flat[0], nb_shape_of(a)))) return -1;
    gin[1] = flat[1];
    return 0;
}
static const nb_op matmul_op = { .name = "nb_matmul", .backward = matmul_backward };

/* the output shape [b(batch axes),M,N], or false with an error */
static bool matmul_shape(const char *op, const nb_tensor *a, const nb_tensor *b, int *ndim, int64_t *shape)
{
    if (a->ndim < 2 || b->ndim < 2) {
        nb_error("%s: operands need at least 2 dimensions: %s @ %s", op, nb_shp(a), nb_shp(b));
        return false;
    }
    if (a->shape[a->ndim - 1] != b->shape[b->ndim - 2]) {
        nb_error("%s: inner dimensions differ: %s @ %s", op, nb_shp(a), nb_shp(b));
        return false;
    }
    int na = a->ndim - 2, nb = b->ndim - 2;
    *ndim = (na > nb ? na : nb) + 2;
    int batch_ndim = *ndim - 2;
    for (int i = 0; i < batch_ndim; i++) {
        int ia = i - (batch_ndim - na), ib = i - (batch_ndim - nb);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            nb_error("%s: batch dimensions do not broadcast: %s @ %s", op, nb_shp(a), nb_shp(b));
            return false;
        }
        shape[i] = da == 1 ? db : da;
    }
    shape[batch_ndim] = a->shape[a->ndim - 2];
    shape[batch_ndim + 1] = b->shape[b->ndim - 1];
    return true;
}

/* ---- matmul with a bias: out starts as the bias in every row and the GEMM adds a·b to it ---- */

static int matmul_bias_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *a = n->in[0], *b = n->in[1];
    if (a->ndim == 2 && nb_needs_grad(n, 0) && nb_needs_grad(n, 1) && nb_needs_grad(n, 2)) {
        const int rc = gradients_as_tasks(a, b, n->in[2], g, gin);
        if (rc <= 0) return rc;
    }
    if (matmul_backward(n, g, gin) != 0) return -1;
    if (nb_needs_grad(n, 2) && !(gin[2] = nb_sum_to(g, nb_shape_of(n->in[2])))) return -1;
    return 0;
}
static const nb_op matmul_bias_op = { .name = "nb_matmul_bias", .backward = matmul_bias_backward };

/* every row of out (row-major, last axis N) = bias [N], read through its stride; the rows shared
 * among the threads (a GPT's products fill megabytes: serial, it was 3% of a 2-thread step) */
static void fill_rows(nb_tensor *out, const nb_tensor *bias)
{
    const int64_t N = bias->shape[0], rows = N ? nb_numel(out) / N : 0;
    const size_t es = nb_dtype_size(out->dtype), row = (size_t)N * es;
    const int threads = rows > 1 && rows * N >= 65536 ? nb_parallel_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int64_t team = nb_team_size(), me = nb_thread_index();
        const int64_t first = rows * me / team, end = rows * (me + 1) / team;
        char *o = (char *)out->data + (size_t)first * row;
        for (int64_t j = 0; first < end && j < N; j++)
            memcpy(o + (size_t)j * es, (const char *)bias->data + (size_t)(j * bias->stride[0]) * es, es);
        for (int64_t r = first + 1; r < end; r++) memcpy(o + (size_t)(r - first) * row, o, row);
    }
}

/* a·b, plus bias in every row when bias is not NULL, recorded as `rule`; errors name op */
static nb_tensor *product(const char *op, const nb_op *rule, nb_tensor *a, nb_tensor *b, nb_tensor *bias)
{
    if (!nb_check_float(op, a) || !nb_check_same_dtype(op, a, b) || (bias && !nb_check_same_dtype(op, a, bias))) return NULL;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    if (!matmul_shape(op, a, b, &ndim, shape)) return NULL;
    if (bias && (bias->ndim != 1 || bias->shape[0] != shape[ndim - 1])) {
        nb_error("%s: bias %s does not fit %s @ %s (expected [%lld])", op, nb_shp(bias), nb_shp(a), nb_shp(b),
                 (long long)shape[ndim - 1]);
        return NULL;
    }
    nb_tensor *out = nb_new(op, a->dtype, ndim, shape);
    if (!out) return NULL;
    if (bias) fill_rows(out, bias);
    else if (a->shape[a->ndim - 1] == 0 && nb_fill(out, 0) != 0) return NULL;   /* an empty sum */
    /* BLIS is not called with k = 0 */
    if (a->shape[a->ndim - 1] > 0 && nb_numel(out) > 0 && nb_batched_gemm(out, a, b, bias ? 1 : 0) != 0) return NULL;
    nb_tensor *in[3] = { a, b, bias };
    nb_record(rule, out, bias ? 3 : 2, in);
    return out;
}

nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b)
{
    if (!a || !b) return nb_null_input("nb_matmul");
    return product("nb_matmul", &matmul_op, a, b, NULL);
}

nb_tensor *nb_matmul_bias(nb_tensor *a, nb_tensor *b, nb_tensor *bias)
{
    if (!a || !b || !bias) return nb_null_input("nb_matmul_bias");
    return product("nb_matmul_bias", &matmul_bias_op, a, b, bias);
}
