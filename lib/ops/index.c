/* Indexing by i64 tensors: gather and its adjoint scatter_add, index_select and its adjoint
 * index_add. Each op's backward is its partner, so all four are differentiable to any order.
 * The index tensor is not an input of the graph node (it has no gradient): it rides in node->saved.
 * Indices are checked before any element moves, so no loop ever reads or writes out of bounds. */
#include "../internal.h"

/* ---- shared machinery ---- */

/* Advances pos through shape[0..ndim) in row-major order; false after the last position. */
static bool next_position(int ndim, const int64_t *shape, int64_t *pos)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++pos[d] < shape[d]) return true;
        pos[d] = 0;
    }
    return false;
}

/* Every value of index lies in [0, size), else "<op>: index 7 at position [1,0] is out of range
 * [0,5) for axis 1 of [2,5]" naming the first bad value, where it is, and the indexed shape. */
static bool check_index_values(const char *op, const nb_tensor *index, int64_t size, int axis, const char *target)
{
    if (nb_numel(index) == 0) return true;
    const int64_t *values = index->data;
    if (nb_is_contiguous(index)) {   /* the usual case: one branch-free pass, the search below only on failure */
        const int64_t n = nb_numel(index);
        int64_t lo = values[0], hi = values[0];
        for (int64_t i = 1; i < n; i++) {
            lo = values[i] < lo ? values[i] : lo;
            hi = values[i] > hi ? values[i] : hi;
        }
        if (lo >= 0 && hi < size) return true;
    }
    int64_t pos[NB_MAX_DIMS] = { 0 };
    do {
        int64_t at = 0;
        for (int d = 0; d < index->ndim; d++) at += pos[d] * index->stride[d];
        if (values[at] < 0 || values[at] >= size) {
            nb_error("%s: index %lld at position %s is out of range [0,%lld) for axis %d of %s", op,
                     (long long)values[at], nb_shape_text(index->ndim, pos), (long long)size, axis, target);
            return false;
        }
    } while (next_position(index->ndim, index->shape, pos));
    return true;
}

static bool check_index_dtype(const char *op, const nb_tensor *index)
{
    if (index->dtype == NB_I64) return true;
    nb_error("%s: index must be i64, got %s %s", op, nb_dtype_name(index->dtype), nb_shp(index));
    return false;
}

/* axis of a shape given by value (scatter_add, index_add), normalised like nb_check_axis */
static bool check_shape_axis(const char *op, nb_shape shape, int *axis)
{
    int a = *axis < 0 ? *axis + shape.ndim : *axis;
    if (a < 0 || a >= shape.ndim) {
        nb_error("%s: axis %d out of range for %s", op, *axis, nb_shape_text(shape.ndim, shape.d));
        return false;
    }
    *axis = a;
    return true;
}

/* The one loop of this file. `small` is walked position by position; at position p the index
 * value j = idx[Σ p_d·idx_stride[d]] picks the element of `big` at p with p[axis] replaced by j:
 *   gather:  small[p] = big[p | axis := j]
 *   scatter: big[p | axis := j] += small[p]
 * gather/scatter_add pass the index's own strides (it has small's shape); index_select/index_add
 * view their 1-D index with stride 0 on every axis but `axis`. Indices are already checked. */
/* one row of the walk with typed pointers b (big at the row) and s (small at the row) */
#define WALK_ROW(T, statement)                                                                      \
    do {                                                                                            \
        T *b = (T *)big_data + big_at;                                                              \
        T *s = (T *)small_data + small_at;                                                          \
        for (int64_t k = 0; k < n; k++) {                                                           \
            const int64_t at = k * big_step + ix[k * is] * bs;                                      \
            statement;                                                                              \
        }                                                                                           \
    } while (0)

static void walk(nb_tensor *big, nb_tensor *small, int axis, const int64_t *idx, const int64_t *idx_stride, bool scatter)
{
    if (nb_numel(small) == 0) return;
    nb_dtype dt = small->dtype;
    int last = small->ndim - 1;
    char *big_data = big->data, *small_data = small->data;
    int64_t pos[NB_MAX_DIMS] = { 0 };   /* over every axis but the last, which the inner loop runs */
    do {
        int64_t big_at = 0, small_at = 0, idx_at = 0;
        for (int d = 0; d < last; d++) {
            if (d != axis) big_at += pos[d] * big->stride[d];
            small_at += pos[d] * small->stride[d];
            idx_at += pos[d] * idx_stride[d];
        }
        int64_t big_step = last == axis ? 0 : big->stride[last];
        const int64_t n = small->shape[last], is = idx_stride[last], ss = small->stride[last], bs = big->stride[axis];
        const int64_t *ix = idx + idx_at;
        if (dt == NB_F32 && scatter) WALK_ROW(float, b[at] += s[k * ss]);
        else if (dt == NB_F32) WALK_ROW(float, s[k * ss] = b[at]);
        else if (dt == NB_F64 && scatter) WALK_ROW(double, b[at] += s[k * ss]);
        else if (dt == NB_F64) WALK_ROW(double, s[k * ss] = b[at]);
        else if (scatter) WALK_ROW(int64_t, b[at] += s[k * ss]);
        else WALK_ROW(int64_t, s[k * ss] = b[at]);
    } while (next_position(last, small->shape, pos));
}

/* index_select/index_add: the 1-D index seen over small's shape, varying only along axis */
static void walk_selected(nb_tensor *big, nb_tensor *small, int axis, const nb_tensor *index, bool scatter)
{
    int64_t idx_stride[NB_MAX_DIMS] = { 0 };
    idx_stride[axis] = index->stride[0];
    walk(big, small, axis, index->data, idx_stride, scatter);
}

/* records out = op(input) with the axis and the index the backward rule needs */
static void record(const nb_op *op, nb_tensor *out, nb_tensor *input, int axis, nb_tensor *index)
{
    nb_node *n = nb_record(op, out, 1, &input);
    if (n) {
        n->iarg[0] = axis;
        n->saved = index;
    }
}

/* ---- gather / scatter_add ---- */

/* index has x's ndim and fits inside x on every axis but `axis` (torch.gather's rule) */
static bool check_gather_index(const char *op, const int64_t *target, int ndim, int axis, const nb_tensor *index)
{
    const char *target_text = nb_shape_text(ndim, target);
    if (index->ndim != ndim) {
        nb_error("%s: index %s must have %d dimensions like %s", op, nb_shp(index), ndim, target_text);
        return false;
    }
    for (int d = 0; d < ndim; d++)
        if (d != axis && index->shape[d] > target[d]) {
            nb_error("%s: index %s is larger than %s along axis %d", op, nb_shp(index), target_text, d);
            return false;
        }
    return check_index_values(op, index, target[axis], axis, target_text);
}

static int gather_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0];
    return (gin[0] = nb_scatter_add(nb_shape_of(x), (int)n->iarg[0], n->saved, g)) ? 0 : -1;
}
static const nb_op gather_op = { .name = "nb_gather", .backward = gather_backward };

nb_tensor *nb_gather(nb_tensor *x, int axis, nb_tensor *index)
{
    if (!x || !index) return nb_null_input("nb_gather");
    if (!check_index_dtype("nb_gather", index)) return NULL;   /* x of any dtype: labels too */
    if (!nb_check_axis("nb_gather", x, &axis)) return NULL;
    /* the result first: a huge (expanded) index fails at once, before its values are read */
    nb_tensor *out = nb_new("nb_gather", x->dtype, index->ndim, index->shape);
    if (!out || !check_gather_index("nb_gather", x->shape, x->ndim, axis, index)) return NULL;
    walk(x, out, axis, index->data, index->stride, false);
    record(&gather_op, out, x, axis, index);
    return out;
}

static int scatter_add_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_gather(g, (int)n->iarg[0], n->saved)) ? 0 : -1;
}
static const nb_op scatter_add_op = { .name = "nb_scatter_add", .backward = scatter_add_backward };

nb_tensor *nb_scatter_add(nb_shape shape, int axis, nb_tensor *index, nb_tensor *src)
{
    if (!index || !src) return nb_null_input("nb_scatter_add");
    if (!nb_check_float("nb_scatter_add", src) || !check_index_dtype("nb_scatter_add", index)) return NULL;
    if (!nb_check_shape("nb_scatter_add", shape) || !check_shape_axis("nb_scatter_add", shape, &axis)) return NULL;
    if (!nb_same_shape(src, index->ndim, index->shape)) {
        nb_error("nb_scatter_add: src %s and index %s differ in shape", nb_shp(src), nb_shp(index));
        return NULL;
    }
    if (!check_gather_index("nb_scatter_add", shape.d, shape.ndim, axis, index)) return NULL;
    nb_tensor *out = nb_zeros(src->dtype, shape);
    if (!out) return NULL;
    walk(out, src, axis, index->data, index->stride, true);
    record(&scatter_add_op, out, src, axis, index);
    return out;
}

/* ---- index_select / index_add ---- */

static bool check_index_1d(const char *op, const nb_tensor *index)
{
    if (index->ndim == 1) return true;
    nb_error("%s: index must be 1-D, got %s", op, nb_shp(index));
    return false;
}

static bool check_select_index(const char *op, const int64_t *target, int ndim, int axis, const nb_tensor *index)
{
    return check_index_1d(op, index) && check_index_values(op, index, target[axis], axis, nb_shape_text(ndim, target));
}

static int index_select_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0];
    return (gin[0] = nb_index_add(nb_shape_of(x), (int)n->iarg[0], n->saved, g)) ? 0 : -1;
}
static const nb_op index_select_op = { .name = "nb_index_select", .backward = index_select_backward };

nb_tensor *nb_index_select(nb_tensor *x, int axis, nb_tensor *index)
{
    if (!x || !index) return nb_null_input("nb_index_select");
    if (!check_index_dtype("nb_index_select", index)) return NULL;   /* x of any dtype: labels too */
    if (!nb_check_axis("nb_index_select", x, &axis)) return NULL;
    if (!check_index_1d("nb_index_select", index)) return NULL;
    nb_shape shape = nb_shape_of(x);
    shape.d[axis] = index->shape[0];
    /* the result first: a huge (expanded) index fails at once, before its values are read */
    nb_tensor *out = nb_new("nb_index_select", x->dtype, shape.ndim, shape.d);
    if (!out || !check_select_index("nb_index_select", x->shape, x->ndim, axis, index)) return NULL;
    walk_selected(x, out, axis, index, false);
    record(&index_select_op, out, x, axis, index);
    return out;
}

static int index_add_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_index_select(g, (int)n->iarg[0], n->saved)) ? 0 : -1;
}
static const nb_op index_add_op = { .name = "nb_index_add", .backward = index_add_backward };

nb_tensor *nb_index_add(nb_shape shape, int axis, nb_tensor *index, nb_tensor *src)
{
    if (!index || !src) return nb_null_input("nb_index_add");
    if (!nb_check_float("nb_index_add", src) || !check_index_dtype("nb_index_add", index)) return NULL;
    if (!nb_check_shape("nb_index_add", shape) || !check_shape_axis("nb_index_add", shape, &axis)) return NULL;
    if (!check_select_index("nb_index_add", shape.d, shape.ndim, axis, index)) return NULL;
    /* src is `shape` with the indexed axis replaced by the index's length */
    nb_shape expected = shape;
    expected.d[axis] = index->shape[0];
    if (!nb_same_shape(src, expected.ndim, expected.d)) {
        nb_error("nb_index_add: src %s must be %s for index %s along axis %d of %s", nb_shp(src),
                 nb_shape_text(expected.ndim, expected.d), nb_shp(index), axis, nb_shape_text(shape.ndim, shape.d));
        return NULL;
    }
    nb_tensor *out = nb_zeros(src->dtype, shape);
    if (!out) return NULL;
    walk_selected(out, src, axis, index, true);
    record(&index_add_op, out, src, axis, index);
    return out;
}
