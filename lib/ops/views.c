/* Views: ops that change only shape and strides and share their input's data
 * (reshape when the strides allow, permute, transpose, expand), and contiguous. */
#include "../internal.h"

/* ---- reshape ---- */

static int reshape_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_reshape(g, nb_shape_of(n->in[0]))) ? 0 : -1;
}
static const nb_op reshape_op = { .name = "nb_reshape", .backward = reshape_backward, .values_unused = true };

/* Strides for viewing x as `shape` without copying, or false when x's layout does not allow it.
 * x's axes split into chunks that are each one stride run; every chunk must map onto whole new axes
 * (the rule PyTorch's view uses). */
static bool view_strides(const nb_tensor *x, int ndim, const int64_t *shape, int64_t *stride)
{
    if (x->ndim == 0 || nb_numel(x) == 0) {
        int64_t s = 1;
        for (int k = ndim - 1; k >= 0; k--) {
            stride[k] = s;
            s *= shape[k];
        }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_stride = x->stride[x->ndim - 1], x_numel = 1, view_numel = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        x_numel *= x->shape[d];
        bool chunk_ends = d == 0 || (x->shape[d - 1] != 1 && x->stride[d - 1] != x_numel * chunk_stride);
        if (!chunk_ends) continue;
        while (view_d >= 0 && (view_numel < x_numel || shape[view_d] == 1)) {
            stride[view_d] = view_numel * chunk_stride;
            view_numel *= shape[view_d];
            view_d--;
        }
        if (view_numel != x_numel) return false;
        if (d > 0) {
            chunk_stride = x->stride[d - 1];
            x_numel = 1;
            view_numel = 1;
        }
    }
    return view_d == -1;
}

nb_tensor *nb_reshape(nb_tensor *x, nb_shape shape)
{
    if (!x) return nb_null_input("nb_reshape");
    if (shape.ndim < 0 || shape.ndim > NB_MAX_DIMS) {
        nb_error("nb_reshape: %d dimensions given, at most %d allowed", shape.ndim, NB_MAX_DIMS);
        return NULL;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.d[i] == -1 && infer < 0) infer = i;
        else if (shape.d[i] < 0) {
            nb_error("nb_reshape: bad target shape %s for %s", nb_shape_text(shape.ndim, shape.d), nb_shp(x));
            return NULL;
        } else known *= shape.d[i];
    }
    int64_t n = nb_numel(x);
    if (infer >= 0) {
        if (known == 0 || n % known) {
            nb_error("nb_reshape: cannot reshape %s into %s", nb_shp(x), nb_shape_text(shape.ndim, shape.d));
            return NULL;
        }
        shape.d[infer] = n / known;
        known = n;
    }
    if (known != n) {
        nb_error("nb_reshape: cannot reshape %s (%lld elements) into %s", nb_shp(x), (long long)n,
                 nb_shape_text(shape.ndim, shape.d));
        return NULL;
    }
    int64_t stride[NB_MAX_DIMS];
    nb_tensor *src = x;
    if (!view_strides(x, shape.ndim, shape.d, stride)) {
        /* a copy of x in row-major order, still differentiable through nb_contiguous */
        src = nb_contiguous(x);
        if (!src) return NULL;
        view_strides(src, shape.ndim, shape.d, stride);
    }
    nb_tensor *out = nb_view(src, shape.ndim, shape.d, stride, src->data);
    nb_record(&reshape_op, out, 1, &src);
    return out;
}

/* ---- permute / transpose ---- */

static int permute_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    nb_axes inverse = { n->in[0]->ndim, { 0 } };
    for (int i = 0; i < inverse.n; i++) inverse.a[n->iarg[i]] = i;
    return (gin[0] = nb_permute(g, inverse)) ? 0 : -1;
}
static const nb_op permute_op = { .name = "nb_permute", .backward = permute_backward, .values_unused = true };

nb_tensor *nb_permute(nb_tensor *x, nb_axes order)
{
    if (!x) return nb_null_input("nb_permute");
    bool seen[NB_MAX_DIMS];
    if (order.n != x->ndim) {
        nb_error("nb_permute: %d axes given for %s", order.n, nb_shp(x));
        return NULL;
    }
    if (!nb_check_axes("nb_permute", x, order, seen)) return NULL;
    int64_t shape[NB_MAX_DIMS], stride[NB_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        int a = order.a[i] < 0 ? order.a[i] + x->ndim : order.a[i];
        order.a[i] = a;
        shape[i] = x->shape[a];
        stride[i] = x->stride[a];
    }
    nb_tensor *out = nb_view(x, x->ndim, shape, stride, x->data);
    nb_node *n = nb_record(&permute_op, out, 1, &x);
    for (int i = 0; n && i < x->ndim; i++) n->iarg[i] = order.a[i];
    return out;
}

nb_tensor *nb_transpose(nb_tensor *x, int a0, int a1)
{
    if (!x) return nb_null_input("nb_transpose");
    if (!nb_check_axis("nb_transpose", x, &a0) || !nb_check_axis("nb_transpose", x, &a1)) return NULL;
    nb_axes order = { x->ndim, { 0 } };
    for (int i = 0; i < x->ndim; i++) order.a[i] = i;
    order.a[a0] = a1;
    order.a[a1] = a0;
    return nb_permute(x, order);
}

/* ---- expand ---- */

static int expand_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    return (gin[0] = nb_sum_to(g, nb_shape_of(n->in[0]))) ? 0 : -1;
}
static const nb_op expand_op = { .name = "nb_expand", .backward = expand_backward, .values_unused = true };

nb_tensor *nb_expand(nb_tensor *x, nb_shape shape)
{
    if (!x) return nb_null_input("nb_expand");
    if (!nb_check_shape("nb_expand", shape)) return NULL;
    int off = shape.ndim - x->ndim;
    int64_t stride[NB_MAX_DIMS];
    bool ok = off >= 0;
    for (int i = 0; ok && i < shape.ndim; i++) {
        int j = i - off;
        if (j < 0 || x->shape[j] == 1) stride[i] = 0;
        else if (x->shape[j] == shape.d[i]) stride[i] = x->stride[j];
        else ok = false;
        if (j >= 0 && x->shape[j] == 1 && shape.d[i] == 1) stride[i] = x->stride[j];
    }
    if (!ok) {
        nb_error("nb_expand: cannot expand %s to %s", nb_shp(x), nb_shape_text(shape.ndim, shape.d));
        return NULL;
    }
    nb_tensor *out = nb_view(x, shape.ndim, shape.d, stride, x->data);
    nb_record(&expand_op, out, 1, &x);
    return out;
}

/* ---- contiguous ---- */

static int identity_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    (void)n;
    gin[0] = g;
    return 0;
}
static const nb_op contiguous_op = { .name = "nb_contiguous", .backward = identity_backward, .values_unused = true };

nb_tensor *nb_contiguous(nb_tensor *x)
{
    if (!x) return nb_null_input("nb_contiguous");
    if (nb_is_contiguous(x)) return x;
    nb_tensor *out = nb_new_like("nb_contiguous", x);
    if (!out || nb_copy_into(out, x) != 0) return NULL;
    nb_record(&contiguous_op, out, 1, &x);
    return out;
}
