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

void nb_loop_run(nb_loop *l, nb_row_fn fn, void *ctx)
{
    for (int i = 0; i < l->ndim; i++)
        if (l->shape[i] == 0) return;
    coalesce(l);
    int64_t inner_stride[NB_LOOP_MAX_OPS] = { 0 };
    int64_t inner = 1;
    if (l->ndim > 0) {
        inner = l->shape[l->ndim - 1];
        for (int k = 0; k < l->nops; k++) inner_stride[k] = l->stride[k][l->ndim - 1];
    }
    int outer_dims = l->ndim > 0 ? l->ndim - 1 : 0;
    int64_t idx[NB_MAX_DIMS] = { 0 };
    char *p[NB_LOOP_MAX_OPS];
    for (;;) {
        for (int k = 0; k < l->nops; k++) {
            p[k] = l->ptr[k];
            for (int i = 0; i < outer_dims; i++) p[k] += idx[i] * l->stride[k][i];
        }
        fn(inner, p, inner_stride, ctx);
        int i = outer_dims - 1;
        while (i >= 0 && ++idx[i] == l->shape[i]) idx[i--] = 0;
        if (i < 0) break;
    }
}
