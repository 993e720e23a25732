/* Layout ops: cast, slice (a view), pad and concat. Slice and pad share one "embed" kernel, which
 * also implements unslice, the adjoint of slice; each op's backward is the other's forward, so all
 * of them are differentiable any number of times. */
#include "../internal.h"

/* ---- cast ---- */

static int cast_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_cast(g, n->in[0]->dtype)) ? 0 : -1;
}
static const nb_op cast_op = { .name = "nb_cast", .backward = cast_backward, .values_unused = true };

nb_tensor *nb_cast(nb_tensor *x, nb_dtype dt)
{
    if (!x) return nb_null_input("nb_cast");
    if (dt != NB_F32 && dt != NB_F64 && dt != NB_I64) {
        nb_error("nb_cast: unknown dtype %d for %s", (int)dt, nb_shp(x));
        return NULL;
    }
    if (x->dtype == dt) return x;
    nb_tensor *out = nb_new("nb_cast", dt, x->ndim, x->shape);
    if (!out || nb_copy_into(out, x) != 0) return NULL;   /* converts; to i64 truncates */
    /* only float -> float carries a gradient (an i64 input never requires one) */
    if (dt != NB_I64) nb_record(&cast_op, out, 1, &x);
    return out;
}

/* ---- embed: copy src into a strided window of a filled tensor ---- */

/* A new tensor of `shape` filled with `fill`, with src copied into the window that starts at
 * offset[i] along each axis i and takes every step[i]-th element there. */
static nb_tensor *embed(const char *op, const nb_tensor *src, int ndim, const int64_t *shape, const int64_t *offset,
                        const int64_t *step, double fill)
{
    nb_tensor *out = nb_new(op, src->dtype, ndim, shape);
    if (!out || nb_fill(out, fill) != 0) return NULL;
    if (nb_numel(src) == 0) return out;   /* an empty window may start past the end */
    int64_t es = (int64_t)nb_dtype_size(src->dtype), stride[NB_MAX_DIMS];
    char *origin = out->data;
    for (int i = 0; i < ndim; i++) {
        origin += offset[i] * out->stride[i] * es;
        stride[i] = out->stride[i] * step[i];
    }
    nb_tensor *window = nb_view(out, ndim, src->shape, stride, origin);
    if (!window || nb_copy_into(window, src) != 0) return NULL;
    return out;
}

/* ---- unslice: zeros of the sliced input's shape with g at start::step along axis ---- */

static int unslice_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    int axis = (int)n->iarg[0];
    int64_t start = n->iarg[1], step = n->iarg[2];
    int64_t stop = start + n->in[0]->shape[axis] * step;
    return (gin[0] = nb_slice(g, axis, start, stop, step)) ? 0 : -1;
}
static const nb_op unslice_op = { .name = "unslice", .backward = unslice_backward, .values_unused = true };

static nb_tensor *unslice(nb_tensor *g, nb_shape shape, int axis, int64_t start, int64_t step)
{
    int64_t offset[NB_MAX_DIMS] = { 0 }, steps[NB_MAX_DIMS];
    for (int i = 0; i < shape.ndim; i++) steps[i] = 1;
    offset[axis] = start;
    steps[axis] = step;
    nb_tensor *out = embed("nb_slice (backward)", g, shape.ndim, shape.d, offset, steps, 0.0);
    nb_node *n = nb_record(&unslice_op, out, 1, &g);
    if (n) {
        n->iarg[0] = axis;
        n->iarg[1] = start;
        n->iarg[2] = step;
    }
    return out;
}

/* ---- slice: a view with a moved origin and a multiplied stride ---- */

static int slice_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0];
    return (gin[0] = unslice(g, nb_shape_of(x), (int)n->iarg[0], n->iarg[1], n->iarg[2])) ? 0 : -1;
}
static const nb_op slice_op = { .name = "nb_slice", .backward = slice_backward, .values_unused = true };

/* Python's rule for a slice bound: a negative one counts from the end, then clamp to [0, len] */
static int64_t slice_bound(int64_t i, int64_t len)
{
    if (i < 0) return i < -len ? 0 : i + len;
    return i > len ? len : i;
}

nb_tensor *nb_slice(nb_tensor *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    if (!x) return nb_null_input("nb_slice");
    if (!nb_check_axis("nb_slice", x, &axis)) return NULL;
    if (step < 1) {
        nb_error("nb_slice: step %lld must be positive, slicing axis %d of %s", (long long)step, axis, nb_shp(x));
        return NULL;
    }
    int64_t len = x->shape[axis];
    start = slice_bound(start, len);
    stop = slice_bound(stop, len);
    int64_t count = stop > start ? (stop - start - 1) / step + 1 : 0;
    int64_t shape[NB_MAX_DIMS], stride[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    memcpy(stride, x->stride, sizeof stride);
    shape[axis] = count;
    if (count > 1) stride[axis] *= step;   /* count > 1 implies step < len: no overflow */
    char *data = x->data;
    if (count > 0) data += start * x->stride[axis] * (int64_t)nb_dtype_size(x->dtype);
    nb_tensor *out = nb_view(x, x->ndim, shape, stride, data);
    nb_node *n = nb_record(&slice_op, out, 1, &x);
    if (n) {
        n->iarg[0] = axis;
        n->iarg[1] = start;
        n->iarg[2] = step;
    }
    return out;
}

/* ---- pad: constant borders; the gradient is the inner window sliced back out ---- */

static int pad_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_tensor *x = n->in[0], *inner = g;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != g->shape[i]) inner = nb_slice(inner, i, n->iarg[i], n->iarg[i] + x->shape[i], 1);
    return (gin[0] = inner) ? 0 : -1;
}
static const nb_op pad_op = { .name = "nb_pad", .backward = pad_backward, .values_unused = true };

nb_tensor *nb_pad(nb_tensor *x, int n, const int64_t *pad_before, const int64_t *pad_after, double value)
{
    if (!x) return nb_null_input("nb_pad");
    if (n < 0 || n > x->ndim) {
        nb_error("nb_pad: %d padding amounts for the %d axes of %s", n, x->ndim, nb_shp(x));
        return NULL;
    }
    if (n > 0 && (!pad_before || !pad_after)) {
        nb_error("nb_pad: NULL padding amounts for %s", nb_shp(x));
        return NULL;
    }
    /* the n amounts are for the last n axes; the leading axes are not padded */
    int64_t before[NB_MAX_DIMS] = { 0 }, after[NB_MAX_DIMS] = { 0 };
    for (int i = 0; i < n; i++) {
        before[x->ndim - n + i] = pad_before[i];
        after[x->ndim - n + i] = pad_after[i];
    }
    int64_t shape[NB_MAX_DIMS], ones[NB_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (before[i] < 0 || after[i] < 0) {
            nb_error("nb_pad: negative padding %lld before, %lld after on axis %d of %s", (long long)before[i],
                     (long long)after[i], i, nb_shp(x));
            return NULL;
        }
        if (__builtin_add_overflow(before[i], x->shape[i], &shape[i]) ||
            __builtin_add_overflow(shape[i], after[i], &shape[i])) {
            nb_error("nb_pad: padding %lld before, %lld after on axis %d of %s is too large (the size overflows)",
                     (long long)before[i], (long long)after[i], i, nb_shp(x));
            return NULL;
        }
        ones[i] = 1;
    }
    nb_tensor *out = embed("nb_pad", x, x->ndim, shape, before, ones, value);
    nb_node *node = nb_record(&pad_op, out, 1, &x);
    for (int i = 0; node && i < x->ndim; i++) node->iarg[i] = before[i];
    return out;
}

/* ---- concat: each input is copied into its slice of the output; gradients are those slices ---- */

static int concat_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    int axis = (int)n->iarg[0];
    int64_t offset = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[axis];
        if (nb_needs_grad(n, i) && !(gin[i] = nb_slice(g, axis, offset, offset + len, 1))) return -1;
        offset += len;
    }
    return 0;
}
static const nb_op concat_op = { .name = "nb_concat", .backward = concat_backward, .values_unused = true };

/* x matches first on every axis but `axis` */
static bool fits_beside(const nb_tensor *x, const nb_tensor *first, int axis)
{
    if (x->ndim != first->ndim) return false;
    for (int i = 0; i < x->ndim; i++)
        if (i != axis && x->shape[i] != first->shape[i]) return false;
    return true;
}

nb_tensor *nb_concat(int n, nb_tensor *const *xs, int axis)
{
    if (n < 1 || !xs) {
        nb_error("nb_concat: no inputs (n = %d)", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!xs[i]) return nb_null_input("nb_concat");
    const nb_tensor *first = xs[0];
    if (!nb_check_axis("nb_concat", first, &axis)) return NULL;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *x = xs[i];
        if (x->dtype != first->dtype) {
            nb_error("nb_concat: input %d is %s %s but input 0 is %s %s", i, nb_dtype_name(x->dtype), nb_shp(x),
                     nb_dtype_name(first->dtype), nb_shp(first));
            return NULL;
        }
        if (!fits_beside(x, first, axis)) {
            nb_error("nb_concat: input %d is %s but input 0 is %s: only axis %d may differ", i, nb_shp(x),
                     nb_shp(first), axis);
            return NULL;
        }
        if (__builtin_add_overflow(shape[axis], x->shape[axis], &shape[axis])) {
            nb_error("nb_concat: %d inputs along axis %d: the size overflows (input %d is %s)", n, axis, i, nb_shp(x));
            return NULL;
        }
    }
    nb_tensor *out = nb_new("nb_concat", first->dtype, first->ndim, shape);
    if (!out) return NULL;
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = xs[i]->shape[axis];
        if (nb_copy_into(nb_slice(out, axis, offset, offset + len, 1), xs[i]) != 0) return NULL;
        offset += len;
    }
    nb_node *node = nb_record(&concat_op, out, n, xs);
    if (node) node->iarg[0] = axis;
    return out;
}
