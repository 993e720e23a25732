/* Iteration over strided, broadcast operands: merges axes that are contiguous for every operand,
 * then runs the innermost axis as one call of a row function. */
#include "../internal.h"

void nb_loop_init(nb_loop *l, int ndim, const int64_t *shape)
{
    memset(l, 0, sizeof *l);
    l->ndim = ndim;
    memcpy(l->shape, shape, sizeof(int64_t) * (size_t)ndim);
}

void nb_loop_add(nb_loop *l, const nb_tensor *t)
{
    int k = l->nops++;
    int64_t es = (int64_t)nb_dtype_size(t->dtype);
    l->ptr[k] = t->data;
    int off = l->ndim - t->ndim;
    for (int i = 0; i < l->ndim; i++) {
        int j = i - off;
        l->stride[k][i] = (j < 0 || t->shape[j] == 1) ? 0 : t->stride[j] * es;
    }
}

bool nb_broadcast(const char *op, const nb_tensor *a, const nb_tensor *b, int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            nb_error("%s: shapes do not broadcast: %s and %s", op, nb_shp(a), nb_shp(b));
            return false;
        }
        shape[i] = da == 1 ? db : da;
    }
    *ndim = n;
    return true;
}

/* drops size-1 axes and merges neighbours whose strides chain for all operands */
static void coalesce(nb_loop *l)
{
    int n = 0;
    for (int i = 0; i < l->ndim; i++) {
        if (l->shape[i] == 1) continue;
        if (n > 0) {
            bool merge = true;
            for (int k = 0; k < l->nops; k++)
                if (l->stride[k][n - 1] != l->stride[k][i] * l->shape[i]) merge = false;
            if (merge) {
                l->shape[n - 1] *= l->shape[i];
                for (int k = 0; k < l->nops; k++) l->stride[k][n - 1] = l->stride[k][i];
                continue;
            }
        }
        l->shape[n] = l->shape[i];
        for (int k = 0; k < l->nops; k++) l->stride[k][n] = l->stride[k][i];
        n++;
    }
    l->ndim = n;
}

/* Runs the rows [first, last) of a coalesced loop, each cut into pieces of at most `piece` elements
 * (a whole row when piece >= the row length). Piece q of row r is work item r·pieces + q. */
static void run_items(const nb_loop *l, int64_t piece, int64_t first, int64_t last, nb_row_fn fn, void *ctx)
{
    int64_t inner = 1, inner_stride[NB_LOOP_MAX_OPS] = { 0 };
    if (l->ndim > 0) {
        inner = l->shape[l->ndim - 1];
        for (int k = 0; k < l->nops; k++) inner_stride[k] = l->stride[k][l->ndim - 1];
    }
    int64_t pieces = inner <= piece ? 1 : (inner + piece - 1) / piece;
    int outer_dims = l->ndim > 0 ? l->ndim - 1 : 0;
    char *p[NB_LOOP_MAX_OPS];
    for (int64_t item = first; item < last; item++) {
        int64_t row = item / pieces, start = item % pieces * piece;
        int64_t n = inner - start < piece ? inner - start : piece;
        for (int k = 0; k < l->nops; k++) p[k] = l->ptr[k] + start * inner_stride[k];
        for (int i = outer_dims - 1; i >= 0; i--) {   /* the row's index, last axis fastest */
            int64_t coord = row % l->shape[i];
            row /= l->shape[i];
            for (int k = 0; k < l->nops; k++) p[k] += coord * l->stride[k][i];
        }
        fn(n, p, inner_stride, ctx);
    }
}

static int64_t loop_rows(const nb_loop *l)
{
    int64_t rows = 1;
    for (int i = 0; i + 1 < l->ndim; i++) rows *= l->shape[i];
    return rows;
}

void nb_loop_run(nb_loop *l, nb_row_fn fn, void *ctx)
{
    for (int i = 0; i < l->ndim; i++)
        if (l->shape[i] == 0) return;
    coalesce(l);
    run_items(l, INT64_MAX, 0, loop_rows(l), fn, ctx);
}

#define PARALLEL_MIN_ELEMENTS 32768   /* below this, starting threads costs more than it saves */
#define PARALLEL_PIECE 8192           /* elements per work item when a row is split */

/* Puts the axes in the order of operand 0's memory (largest stride first), so that the innermost
 * loop runs along its unit stride; only for element-by-element loops, whose results do not depend
 * on the order of visits. */
static void order_by_output(nb_loop *l)
{
    for (int i = 1; i < l->ndim; i++)
        for (int j = i; j > 0 && l->stride[0][j] > l->stride[0][j - 1]; j--) {
            int64_t t = l->shape[j];
            l->shape[j] = l->shape[j - 1];
            l->shape[j - 1] = t;
            for (int k = 0; k < l->nops; k++) {
                t = l->stride[k][j];
                l->stride[k][j] = l->stride[k][j - 1];
                l->stride[k][j - 1] = t;
            }
        }
}

void nb_loop_run_parallel(nb_loop *l, nb_row_fn fn, void *ctx)
{
    for (int i = 0; i < l->ndim; i++)
        if (l->shape[i] == 0) return;
    order_by_output(l);
    coalesce(l);
    int64_t rows = loop_rows(l), inner = l->ndim > 0 ? l->shape[l->ndim - 1] : 1;
    bool disjoint = true;   /* every element of operand 0 is written by one item only */
    for (int i = 0; i < l->ndim; i++) disjoint &= l->stride[0][i] != 0;
    const int threads = !disjoint || rows * inner < PARALLEL_MIN_ELEMENTS ? 1 : nb_parallel_threads();
    if (threads < 2) {
        run_items(l, INT64_MAX, 0, rows, fn, ctx);
        return;
    }
    int64_t piece = rows >= 4 * threads ? inner : PARALLEL_PIECE;
    int64_t items = rows * (inner <= piece ? 1 : (inner + piece - 1) / piece);
#pragma omp parallel num_threads(threads)
    {
        int64_t t = nb_thread_index(), nt = nb_team_size();
        run_items(l, piece, items * t / nt, items * (t + 1) / nt, fn, ctx);
    }
}
