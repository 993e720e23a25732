/* Reductions over sets of axes: sum, mean, max (ties share the gradient), argmax, sum_to.
 * Sums accumulate in double, also for f32 inputs. */
#include "../internal.h"

#include <math.h>

/* shape of x with the masked axes set to 1 (keepdim) or removed */
static int reduced_shape(const nb_tensor *x, const bool *mask, bool keepdim, int64_t *shape)
{
    int n = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (!mask[i]) shape[n++] = x->shape[i];
        else if (keepdim) shape[n++] = 1;
    }
    return n;
}

#define SUM_LANES 16   /* partial sums of a contiguous row: four AVX2 vectors of double, added independently */

/* Σ x[0..n) of a contiguous row: lane k sums the elements i ≡ k (mod SUM_LANES), the lanes are then
 * added in order, and the tail after them (a fixed order for a given n; no chain of n dependent adds) */
#define CONTIGUOUS_SUM(T)                                                                                     \
    static inline double contiguous_sum_##T(const T *x, int64_t n)                                           \
    {                                                                                                         \
        double lane[SUM_LANES] = { 0 }, t = 0;                                                                \
        int64_t i = 0;                                                                                        \
        for (; i + SUM_LANES <= n; i += SUM_LANES)                                                            \
            for (int k = 0; k < SUM_LANES; k++) lane[k] += x[i + k];                                          \
        for (int k = 0; k < SUM_LANES; k++) t += lane[k];                                                     \
        for (; i < n; i++) t += x[i];                                                                         \
        return t;                                                                                             \
    }
CONTIGUOUS_SUM(float)
CONTIGUOUS_SUM(double)

/* acc (f64, keepdim shape, viewed with stride 0 along reduced axes) += x */
#define SUM_ROW(ISA, ATTR, unused)                                                                            \
    ATTR static void sum_row_##ISA(int64_t n, char **p, const int64_t *s, void *ctx)                          \
    {                                                                                                         \
        nb_dtype dt = *(const nb_dtype *)ctx;                                                                 \
        if (s[0] == 0) {                                                                                      \
            double t = 0;                                                                                     \
            if (dt == NB_F32 && s[1] == 4) t = contiguous_sum_float((const float *)p[1], n);                  \
            else if (dt == NB_F64 && s[1] == 8) t = contiguous_sum_double((const double *)p[1], n);           \
            else                                                                                              \
                for (int64_t i = 0; i < n; i++) t += nb_load(dt, p[1] + i * s[1]);                            \
            *(double *)p[0] += t;                                                                             \
        } else if (s[0] == sizeof(double) && dt == NB_F32 && s[1] == 4) {   /* a row added to a row of sums */ \
            for (int64_t i = 0; i < n; i++) ((double *)p[0])[i] += ((const float *)p[1])[i];                  \
        } else if (s[0] == sizeof(double) && dt == NB_F64 && s[1] == 8) {                                     \
            for (int64_t i = 0; i < n; i++) ((double *)p[0])[i] += ((const double *)p[1])[i];                 \
        } else {                                                                                              \
            for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) += nb_load(dt, p[1] + i * s[1]);     \
        }                                                                                                     \
    }
NB_FOR_ISA(SUM_ROW, )
NB_ISA_FUNCTIONS(sum_row);

/* Σ over the leading axes of a contiguous x, [rows,cols] to [cols] (a bias's gradient), into acc, in
 * the loop's own order (row by row) but in one vectorized kernel. One thread: the sum is memory-bound,
 * and a GPT step's bias gradients took 1.5 ms on two threads against 1.0 on one. */
#define COLUMN_SUMS(ISA, ATTR, E)                                                                             \
    ATTR static void column_sums_##E##_##ISA(const E *x, int64_t rows, int64_t cols, double *acc)             \
    {                                                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                                    \
            for (int64_t c = 0; c < cols; c++) acc[c] += x[r * cols + c];                                     \
    }
NB_FOR_ISA(COLUMN_SUMS, float)
NB_FOR_ISA(COLUMN_SUMS, double)
NB_ISA_FUNCTIONS(column_sums_float);
NB_ISA_FUNCTIONS(column_sums_double);

void nb_column_sums(const nb_tensor *x, int64_t rows, int64_t cols, double *acc)
{
    if (x->dtype == NB_F32) NB_ISA_PICK(column_sums_float)(x->data, rows, cols, acc);
    else NB_ISA_PICK(column_sums_double)(x->data, rows, cols, acc);
}

/* how many leading axes the mask reduces when it reduces only leading axes of a contiguous float x
 * and keeps rows of 16 or more (shorter ones sum faster along the reduced axis, in lanes); else 0 */
static int leading_mask(const nb_tensor *x, const bool *mask)
{
    int k = 0;
    while (k < x->ndim && mask[k]) k++;
    for (int i = k; i < x->ndim; i++)
        if (mask[i]) return 0;
    const bool float_x = x->dtype == NB_F32 || x->dtype == NB_F64;
    const bool long_rows = k < x->ndim && nb_shape_numel(x->ndim - k, x->shape + k) >= 16;
    return long_rows && float_x && nb_contiguous_strides(x->ndim, x->shape, x->stride) ? k : 0;
}

/* Σ over the masked axes, in the dtype of x, keepdim shape; scale multiplies the result */
static nb_tensor *sum_kernel(const char *op, nb_tensor *x, const bool *mask, double scale)
{
    int64_t kshape[NB_MAX_DIMS];
    reduced_shape(x, mask, true, kshape);
    nb_tensor *acc = nb_new(op, NB_F64, x->ndim, kshape);
    if (!acc) return NULL;
    memset(acc->data, 0, (size_t)nb_numel(acc) * sizeof(double));
    const int lead = leading_mask(x, mask);
    if (lead > 0) {
        nb_column_sums(x, nb_shape_numel(lead, x->shape), nb_shape_numel(x->ndim - lead, x->shape + lead), acc->data);
    } else {
        nb_loop l;
        nb_loop_init(&l, x->ndim, x->shape);
        nb_loop_add(&l, acc);      /* size-1 axes get stride 0: the sum runs along them */
        nb_loop_add(&l, x);
        nb_loop_run(&l, NB_ISA_PICK(sum_row), &x->dtype);
    }
    double *a = acc->data;
    int64_t n = nb_numel(acc);
    if (scale != 1)
        for (int64_t i = 0; i < n; i++) a[i] *= scale;
    if (x->dtype == NB_F64) return acc;
    nb_tensor *out = nb_new(op, x->dtype, x->ndim, kshape);
    if (out) nb_copy_into(out, acc);
    return out;
}

static nb_shape keep_shape(const nb_tensor *x, const bool *mask)
{
    nb_shape s;
    s.ndim = reduced_shape(x, mask, true, s.d);
    return s;
}

/* keepdim-shaped or reduced gradient g, broadcast back over x's shape */
static nb_tensor *spread(nb_tensor *g, const nb_tensor *x, const bool *mask)
{
    return nb_expand(nb_reshape(g, keep_shape(x, mask)), nb_shape_of(x));
}

static void mask_from_node(const nb_node *n, bool *mask)
{
    for (int i = 0; i < NB_MAX_DIMS; i++) mask[i] = n->iarg[i] != 0;
}

static nb_tensor *finish(const nb_op *op, nb_tensor *x, nb_tensor *kept, const bool *mask, bool keepdim)
{
    if (!kept) return NULL;
    nb_tensor *out = kept;
    if (!keepdim) {
        nb_shape s;
        s.ndim = reduced_shape(x, mask, false, s.d);
        out = nb_view(kept, s.ndim, s.d, kept->stride, kept->data);
        if (!out) return NULL;
        int64_t st = 1;   /* kept is contiguous: recompute row-major strides for the dropped axes */
        for (int i = s.ndim - 1; i >= 0; i--) {
            out->stride[i] = st;
            st *= s.d[i];
        }
    }
    nb_node *n = nb_record(op, out, 1, &x);
    for (int i = 0; n && i < NB_MAX_DIMS; i++) n->iarg[i] = mask[i];
    return out;
}

static bool axes_mask(const char *op, nb_tensor *x, nb_axes axes, bool *mask)
{
    if (!nb_check_float(op, x) || !nb_check_axes(op, x, axes, mask)) return false;
    return true;
}

static int64_t reduced_count(const nb_tensor *x, const bool *mask)
{
    int64_t c = 1;
    for (int i = 0; i < x->ndim; i++)
        if (mask[i]) c *= x->shape[i];
    return c;
}

/* ---- sum ---- */

static int sum_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    bool mask[NB_MAX_DIMS];
    mask_from_node(n, mask);
    return (gin[0] = spread(g, n->in[0], mask)) ? 0 : -1;
}
static const nb_op sum_op = { .name = "nb_sum", .backward = sum_backward, .values_unused = true };

nb_tensor *nb_sum_axes(nb_tensor *x, nb_axes axes, bool keepdim)
{
    bool mask[NB_MAX_DIMS];
    if (!x) return nb_null_input("nb_sum");
    if (!axes_mask("nb_sum", x, axes, mask)) return NULL;
    return finish(&sum_op, x, sum_kernel("nb_sum", x, mask, 1.0), mask, keepdim);
}

static nb_axes all_axes(const nb_tensor *x)
{
    nb_axes a = { x ? x->ndim : 0, { 0 } };
    for (int i = 0; i < a.n; i++) a.a[i] = i;
    return a;
}

nb_tensor *nb_sum(nb_tensor *x) { return nb_sum_axes(x, all_axes(x), false); }

/* ---- mean ---- */

static int mean_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    bool mask[NB_MAX_DIMS];
    mask_from_node(n, mask);
    double scale = 1.0 / (double)reduced_count(n->in[0], mask);
    return (gin[0] = spread(nb_mul_scalar(g, scale), n->in[0], mask)) ? 0 : -1;
}
static const nb_op mean_op = { .name = "nb_mean", .backward = mean_backward, .values_unused = true };

nb_tensor *nb_mean_axes(nb_tensor *x, nb_axes axes, bool keepdim)
{
    bool mask[NB_MAX_DIMS];
    if (!x) return nb_null_input("nb_mean");
    if (!axes_mask("nb_mean", x, axes, mask)) return NULL;
    int64_t count = reduced_count(x, mask);
    if (count == 0) {
        nb_error("nb_mean: mean over no elements of %s", nb_shp(x));
        return NULL;
    }
    return finish(&mean_op, x, sum_kernel("nb_mean", x, mask, 1.0 / (double)count), mask, keepdim);
}

nb_tensor *nb_mean(nb_tensor *x) { return nb_mean_axes(x, all_axes(x), false); }

/* ---- max: the gradient is shared equally among tied maxima ---- */

static void max_row(int64_t n, char **p, const int64_t *s, void *ctx)
{
    nb_dtype dt = *(const nb_dtype *)ctx;
    for (int64_t i = 0; i < n; i++) {
        double v = nb_load(dt, p[1] + i * s[1]);
        double *o = (double *)(p[0] + i * s[0]);
        if (v > *o || isnan(v)) *o = v;
    }
}

static int max_backward(nb_node *n, nb_tensor *g, nb_tensor **gin)
{
    bool mask[NB_MAX_DIMS];
    mask_from_node(n, mask);
    nb_tensor *x = n->in[0];
    /* share = 1/(number of tied maxima) at each maximum and 0 elsewhere: a constant, so the
     * second derivative of max is 0 as it should be */
    bool was = nb_set_grad_enabled(false);
    nb_tensor *winners = nb_equal(nb_detach(x), spread(nb_detach(n->out), x, mask));
    nb_tensor *share = winners ? nb_div(winners, spread(sum_kernel("nb_max (backward)", winners, mask, 1.0), x, mask)) : NULL;
    nb_set_grad_enabled(was);
    return (gin[0] = nb_mul(spread(g, x, mask), share)) ? 0 : -1;
}
static const nb_op max_op = { .name = "nb_max", .backward = max_backward };

nb_tensor *nb_max_axes(nb_tensor *x, nb_axes axes, bool keepdim)
{
    bool mask[NB_MAX_DIMS];
    if (!x) return nb_null_input("nb_max");
    if (!axes_mask("nb_max", x, axes, mask)) return NULL;
    if (reduced_count(x, mask) == 0) {
        nb_error("nb_max: max over no elements of %s", nb_shp(x));
        return NULL;
    }
    nb_shape ks = keep_shape(x, mask);
    nb_tensor *acc = nb_full(NB_F64, ks, -INFINITY);
    if (!acc) return NULL;
    nb_loop l;
    nb_loop_init(&l, x->ndim, x->shape);
    nb_loop_add(&l, acc);
    nb_loop_add(&l, x);
    nb_loop_run(&l, max_row, &x->dtype);
    nb_tensor *kept = acc;
    if (x->dtype != NB_F64) {
        kept = nb_new("nb_max", x->dtype, ks.ndim, ks.d);
        if (kept) nb_copy_into(kept, acc);
    }
    return finish(&max_op, x, kept, mask, keepdim);
}

nb_tensor *nb_max(nb_tensor *x) { return nb_max_axes(x, all_axes(x), false); }

/* ---- argmax: the first maximum along one axis, i64 ---- */

nb_tensor *nb_argmax(nb_tensor *x, int axis, bool keepdim)
{
    if (!x) return nb_null_input("nb_argmax");
    if (!nb_check_axis("nb_argmax", x, &axis)) return NULL;
    if (x->shape[axis] == 0) {
        nb_error("nb_argmax: empty axis %d of %s", axis, nb_shp(x));
        return NULL;
    }
    bool mask[NB_MAX_DIMS] = { false };
    mask[axis] = true;
    nb_shape ks = keep_shape(x, mask);
    nb_tensor *out = nb_new("nb_argmax", NB_I64, ks.ndim, ks.d);
    if (!out) return NULL;
    int64_t outer = nb_numel(out), len = x->shape[axis];
    size_t es = nb_dtype_size(x->dtype);
    int64_t *res = out->data;
    for (int64_t o = 0; o < outer; o++) {
        /* unravel o over the kept shape to find the row's first element */
        const char *p = x->data;
        int64_t rest = o;
        for (int i = x->ndim - 1; i >= 0; i--) {
            int64_t k = rest % ks.d[i];
            rest /= ks.d[i];
            p += k * x->stride[i] * (int64_t)es;
        }
        int64_t best = 0;
        double best_v = nb_load(x->dtype, p);
        for (int64_t j = 1; j < len && !isnan(best_v); j++) {
            double v = nb_load(x->dtype, p + j * x->stride[axis] * (int64_t)es);
            if (v > best_v || isnan(v)) {
                best_v = v;
                best = j;
            }
        }
        res[o] = best;
    }
    if (keepdim) return out;
    nb_shape s;
    s.ndim = reduced_shape(x, mask, false, s.d);
    return nb_reshape(out, s);
}

/* ---- sum_to: undo broadcasting ---- */

nb_tensor *nb_sum_to(nb_tensor *x, nb_shape shape)
{
    if (!x) return nb_null_input("nb_sum_to");
    if (nb_same_shape(x, shape.ndim, shape.d)) return x;
    int off = x->ndim - shape.ndim;
    bool ok = off >= 0 && nb_check_shape("nb_sum_to", shape);
    nb_axes axes = { 0, { 0 } };
    for (int i = 0; ok && i < x->ndim; i++) {
        int j = i - off;
        if (j < 0 || (shape.d[j] == 1 && x->shape[i] != 1)) axes.a[axes.n++] = i;
        else if (shape.d[j] != x->shape[i]) ok = false;
    }
    if (!ok) {
        nb_error("nb_sum_to: %s does not broadcast to %s", nb_shape_text(shape.ndim, shape.d), nb_shp(x));
        return NULL;
    }
    return nb_reshape(nb_sum_axes(x, axes, true), shape);
}
