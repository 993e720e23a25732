/* Tensor creation, persistence and element access. */
#include "../internal.h"

#include <math.h>
#include <stdlib.h>

size_t nb_dtype_size(nb_dtype dt) { return dt == NB_F32 ? 4 : 8; }

const char *nb_dtype_name(nb_dtype dt)
{
    switch (dt) {
    case NB_F32: return "f32";
    case NB_F64: return "f64";
    case NB_I64: return "i64";
    }
    return "?";
}

int64_t nb_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int64_t nb_numel(const nb_tensor *t) { return t ? nb_shape_numel(t->ndim, t->shape) : 0; }

nb_shape nb_shape_of(const nb_tensor *t)
{
    nb_shape s = { 0, { 0 } };
    if (!t) return s;
    s.ndim = t->ndim;
    memcpy(s.d, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

bool nb_same_shape(const nb_tensor *a, int ndim, const int64_t *shape)
{
    return a->ndim == ndim && memcmp(a->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0;
}

bool nb_contiguous_strides(int ndim, const int64_t *shape, const int64_t *stride)
{
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] != 1 && stride[i] != expect) return false;
        expect *= shape[i];
    }
    return true;
}

bool nb_is_contiguous(const nb_tensor *t)
{
    return t && nb_contiguous_strides(t->ndim, t->shape, t->stride);
}

static void set_contiguous_strides(nb_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

bool nb_sizes_fit(int n, const int64_t *sizes, size_t elem)
{
    int64_t bound = INT64_MAX / (int64_t)elem;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) return false;
        if (sizes[i] > 0) {
            if (sizes[i] > bound) return false;
            bound /= sizes[i];
        }
    }
    return true;
}

static nb_tensor *new_in(nb_scope *s, const char *op, nb_dtype dt, int ndim, const int64_t *shape)
{
    if (!nb_sizes_fit(ndim, shape, nb_dtype_size(dt))) {
        nb_error("%s: the result %s %s is too large (its size overflows)", op, nb_dtype_name(dt),
                 nb_shape_text(ndim, shape));
        return NULL;
    }
    const size_t bytes = (size_t)nb_shape_numel(ndim, shape) * nb_dtype_size(dt);
    nb_tensor *t = nb_scope_alloc_in(s, sizeof *t);
    void *data = t ? nb_scope_alloc_in(s, bytes) : NULL;
    if (!data) {
        nb_error("%s: out of memory for the result %s %s (%zu bytes)", op, nb_dtype_name(dt), nb_shape_text(ndim, shape),
                 bytes);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    t->scope = s;
    t->data = data;
    t->version = &t->own_version;
    return t;
}

nb_tensor *nb_new(const char *op, nb_dtype dt, int ndim, const int64_t *shape)
{
    return new_in(nb_scope_current(), op, dt, ndim, shape);
}

nb_tensor *nb_new_like(const char *op, const nb_tensor *t) { return nb_new(op, t->dtype, t->ndim, t->shape); }

bool nb_dense_order(const nb_tensor *t, int *order)
{
    int n = t->ndim;
    for (int i = 0; i < n; i++) order[i] = i;
    /* axes by decreasing stride (a stable insertion sort; size-1 axes keep their place among equals) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t->shape[order[j]] != 1 && t->stride[order[j]] > t->stride[order[j - 1]]; j--) {
            int k = order[j];
            order[j] = order[j - 1];
            order[j - 1] = k;
        }
    int64_t expect = 1;
    for (int i = n - 1; i >= 0; i--) {
        int a = order[i];
        if (t->shape[a] != 1 && t->stride[a] != expect) return false;
        expect *= t->shape[a];
    }
    return true;
}

nb_tensor *nb_new_permuted(const char *op, nb_dtype dt, int ndim, const int64_t *shape, const int *order)
{
    nb_tensor *t = nb_new(op, dt, ndim, shape);
    if (!t) return NULL;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->stride[order[i]] = s;
        s *= shape[order[i]];
    }
    return t;
}

nb_tensor *nb_new_layout_of(const char *op, const nb_tensor *like, nb_dtype dt)
{
    int order[NB_MAX_DIMS];
    if (!nb_is_contiguous(like) && nb_dense_order(like, order))
        return nb_new_permuted(op, dt, like->ndim, like->shape, order);
    return nb_new(op, dt, like->ndim, like->shape);
}

nb_tensor *nb_view(const nb_tensor *base, int ndim, const int64_t *shape, const int64_t *stride, void *data)
{
    nb_tensor *t = nb_scope_alloc(sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = base->dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
    t->data = data;
    t->scope = nb_scope_current();
    t->version = base->version;
    return t;
}

static nb_tensor *create(const char *op, nb_dtype dt, nb_shape shape)
{
    if (dt != NB_F32 && dt != NB_F64 && dt != NB_I64) {
        nb_error("%s: unknown dtype %d", op, (int)dt);
        return NULL;
    }
    if (!nb_check_shape(op, shape)) return NULL;
    return nb_new(op, dt, shape.ndim, shape.d);
}

nb_tensor *nb_empty(nb_dtype dt, nb_shape shape) { return create("nb_empty", dt, shape); }

nb_tensor *nb_full(nb_dtype dt, nb_shape shape, double value)
{
    nb_tensor *t = create("nb_full", dt, shape);
    if (t) nb_fill(t, value);
    return t;
}

nb_tensor *nb_zeros(nb_dtype dt, nb_shape shape)
{
    nb_tensor *t = create("nb_zeros", dt, shape);
    if (t) memset(t->data, 0, (size_t)nb_numel(t) * nb_dtype_size(dt));
    return t;
}

nb_tensor *nb_ones(nb_dtype dt, nb_shape shape) { return nb_full(dt, shape, 1.0); }
nb_tensor *nb_scalar(nb_dtype dt, double value) { return nb_full(dt, NB_SHAPE0, value); }

nb_tensor *nb_arange(nb_dtype dt, double start, double stop, double step)
{
    double count = ceil((stop - start) / step);
    /* a count beyond int64 cannot be converted; it is far beyond memory anyway */
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step) || !(count < 0x1p62)) {
        nb_error("nb_arange: bad range start=%g stop=%g step=%g", start, stop, step);
        return NULL;
    }
    int64_t n = count > 0 ? (int64_t)count : 0;
    nb_tensor *t = create("nb_arange", dt, NB_SHAPE(n));
    for (int64_t i = 0; t && i < n; i++) nb_store(dt, (char *)t->data + i * (int64_t)nb_dtype_size(dt), start + (double)i * step);
    return t;
}

nb_tensor *nb_linspace(nb_dtype dt, double start, double stop, int64_t n)
{
    if (n < 0) {
        nb_error("nb_linspace: negative count %lld", (long long)n);
        return NULL;
    }
    nb_tensor *t = create("nb_linspace", dt, NB_SHAPE(n));
    double step = n > 1 ? (stop - start) / (double)(n - 1) : 0;
    /* the last of several points is exactly stop; a single point is start (as NumPy) */
    for (int64_t i = 0; t && i < n; i++)
        nb_store(dt, (char *)t->data + i * (int64_t)nb_dtype_size(dt), n > 1 && i == n - 1 ? stop : start + (double)i * step);
    return t;
}

nb_tensor *nb_from_data(nb_dtype dt, nb_shape shape, const void *data)
{
    if (!data) {
        nb_error("nb_from_data: NULL data");
        return NULL;
    }
    nb_tensor *t = create("nb_from_data", dt, shape);
    if (t) memcpy(t->data, data, (size_t)nb_numel(t) * nb_dtype_size(dt));
    return t;
}

nb_tensor *nb_from_doubles(nb_dtype dt, nb_shape shape, const double *values)
{
    if (!values) {
        nb_error("nb_from_doubles: NULL values");
        return NULL;
    }
    nb_tensor *t = create("nb_from_doubles", dt, shape);
    int64_t n = nb_numel(t);
    for (int64_t i = 0; t && i < n; i++) nb_store(dt, (char *)t->data + i * (int64_t)nb_dtype_size(dt), values[i]);
    return t;
}

/* normal: std a; else uniform in [a, b) */
static nb_tensor *random_fill(const char *op, nb_dtype dt, nb_shape shape, nb_rng *rng, bool normal, double a, double b)
{
    if (!rng) {
        nb_error("%s: NULL generator", op);
        return NULL;
    }
    nb_tensor *t = create(op, dt, shape);
    int64_t n = nb_numel(t);
    size_t es = nb_dtype_size(dt);
    for (int64_t i = 0; t && i < n; i++) {
        double u = normal ? nb_rng_normal(rng) * a : a + (b - a) * nb_rng_uniform(rng);
        nb_store(dt, (char *)t->data + i * (int64_t)es, u);
    }
    return t;
}

nb_tensor *nb_rand(nb_dtype dt, nb_shape shape, nb_rng *rng, double lo, double hi)
{
    return random_fill("nb_rand", dt, shape, rng, false, lo, hi);
}

nb_tensor *nb_randn(nb_dtype dt, nb_shape shape, nb_rng *rng, double std)
{
    return random_fill("nb_randn", dt, shape, rng, true, std, 0);
}

nb_tensor *nb_bernoulli(nb_dtype dt, nb_shape shape, nb_rng *rng, double p)
{
    if (!(p >= 0 && p <= 1)) {
        nb_error("nb_bernoulli: probability %g outside [0, 1]", p);
        return NULL;
    }
    if (!rng) {
        nb_error("nb_bernoulli: NULL generator");
        return NULL;
    }
    /* u < p for u = k·2⁻⁵³ uniform (k: a draw's top 53 bits, as nb_rng_uniform) is k < ⌈p·2⁵³⌉, exactly:
     * no conversion per element (dropout draws a mask every step) */
    nb_tensor *t = create("nb_bernoulli", dt, shape);
    const int64_t n = nb_numel(t);
    const size_t es = nb_dtype_size(dt);
    const uint64_t below = (uint64_t)ceil(p * 0x1p53);
    for (int64_t i = 0; t && i < n; i++) {
        const bool bit = (nb_rng_next(rng) >> 11) < below;
        if (dt == NB_F32) ((float *)t->data)[i] = bit;
        else if (dt == NB_F64) ((double *)t->data)[i] = bit;
        else nb_store(dt, (char *)t->data + (size_t)i * es, bit);
    }
    return t;
}

nb_tensor *nb_copy(const nb_tensor *t)
{
    if (!t) return nb_null_input("nb_copy");
    nb_tensor *c = nb_new_like("nb_copy", t);
    if (c) nb_copy_into(c, t);
    return c;
}

nb_tensor *nb_detach(nb_tensor *t)
{
    if (!t) return NULL;
    return nb_view(t, t->ndim, t->shape, t->stride, t->data);
}

/* ---- persistent tensors: one malloc for header and data ---- */

nb_tensor *nb_new_persistent(const char *op, nb_dtype dt, int ndim, const int64_t *shape)
{
    /* one block: the header, then the data 64-byte aligned; nb_free releases both */
    size_t head = (sizeof(nb_tensor) + 63) / 64 * 64;
    if (!nb_sizes_fit(ndim, shape, nb_dtype_size(dt))) {
        nb_error("%s: %s %s is too large (its size overflows)", op, nb_dtype_name(dt), nb_shape_text(ndim, shape));
        return NULL;
    }
    size_t bytes = (size_t)nb_shape_numel(ndim, shape) * nb_dtype_size(dt);
    nb_tensor *p = aligned_alloc(64, head + (bytes + 63) / 64 * 64 + 64);
    if (!p) {
        nb_error("%s: out of memory allocating %s %s (%zu bytes)", op, nb_dtype_name(dt), nb_shape_text(ndim, shape),
                 bytes);
        return NULL;
    }
    memset(p, 0, sizeof *p);
    p->dtype = dt;
    p->ndim = ndim;
    memcpy(p->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(p);
    p->data = (char *)p + head;
    p->version = &p->own_version;
    return p;
}

static nb_tensor *persistent_copy(const nb_tensor *t)
{
    nb_tensor *p = nb_new_persistent("nb_persist", t->dtype, t->ndim, t->shape);
    if (p) nb_copy_into(p, t);
    return p;
}

nb_tensor *nb_persist(nb_tensor *t)
{
    if (!t) return NULL;
    return persistent_copy(t);
}

nb_tensor *nb_param(nb_tensor *t)
{
    if (!t) return NULL;
    if (!nb_check_float("nb_param", t)) return NULL;
    nb_tensor *p = t->scope || t->node ? persistent_copy(t) : t;
    if (p) p->requires_grad = true;
    return p;
}

void nb_free(nb_tensor *t)
{
    if (!t || t->scope) return;
    if (t->grad && !t->grad->scope) free(t->grad);
    free(t);
}

int nb_set_requires_grad(nb_tensor *t, bool on)
{
    if (!t) {
        nb_error_null("nb_set_requires_grad", "tensor");
        return -1;
    }
    if (t->node) {
        nb_error("nb_set_requires_grad: %s is the result of an op, not a leaf", nb_shp(t));
        return -1;
    }
    if (on && !nb_check_float("nb_set_requires_grad", t)) return -1;
    t->requires_grad = on;
    return 0;
}

/* The gradient buffer of a leaf: persistent for persistent leaves, otherwise in the leaf's own scope
 * (not the current one, which may be reset while the leaf lives on). */
nb_tensor *nb_leaf_grad(nb_tensor *leaf);
nb_tensor *nb_leaf_grad(nb_tensor *leaf)
{
    if (!leaf->grad) {
        leaf->grad = leaf->scope ? new_in(leaf->scope, "nb_backward", leaf->dtype, leaf->ndim, leaf->shape) : persistent_copy(leaf);
        if (leaf->grad) {
            leaf->grad->requires_grad = false;
            nb_fill(leaf->grad, 0);
        }
    }
    return leaf->grad;
}

void nb_zero_grad(nb_tensor *t)
{
    if (t && t->grad) nb_fill(t->grad, 0);
}

/* ---- element access ---- */

static char *element(const nb_tensor *t, int64_t flat)
{
    char *p = t->data;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t k = flat % t->shape[i];
        flat /= t->shape[i];
        p += k * t->stride[i] * (int64_t)nb_dtype_size(t->dtype);
    }
    return p;
}

double nb_get(const nb_tensor *t, int64_t flat)
{
    if (!t) {
        nb_error_null("nb_get", "tensor");
        return NAN;
    }
    if (flat < 0 || flat >= nb_numel(t)) {
        nb_error("nb_get: index %lld out of range for %s", (long long)flat, nb_shp(t));
        return NAN;
    }
    return nb_load(t->dtype, element(t, flat));
}

int nb_set(nb_tensor *t, int64_t flat, double value)
{
    if (!t) {
        nb_error_null("nb_set", "tensor");
        return -1;
    }
    if (flat < 0 || flat >= nb_numel(t)) {
        nb_error("nb_set: index %lld out of range for %s", (long long)flat, nb_shp(t));
        return -1;
    }
    nb_store(t->dtype, element(t, flat), value);
    nb_bump_version(t);
    return 0;
}

double nb_item(const nb_tensor *t)
{
    if (!t) {
        nb_error_null("nb_item", "tensor");
        return NAN;
    }
    if (nb_numel(t) != 1) {
        nb_error("nb_item: expected one element, got %s", nb_shp(t));
        return NAN;
    }
    return nb_load(t->dtype, t->data);
}

int nb_to_doubles(const nb_tensor *t, double *out)
{
    if (!t) {
        nb_error_null("nb_to_doubles", "tensor");
        return -1;
    }
    if (!out) {
        nb_error("nb_to_doubles: NULL output array");
        return -1;
    }
    int64_t n = nb_numel(t);
    for (int64_t i = 0; i < n; i++) out[i] = nb_load(t->dtype, element(t, i));
    return 0;
}

typedef struct { nb_dtype dd, ds; } copy_ctx;

static void copy_row(int64_t n, char **p, const int64_t *s, void *ctx)
{
    const copy_ctx *c = ctx;
    size_t es = nb_dtype_size(c->dd);
    if (c->dd == c->ds && s[0] == (int64_t)es && s[1] == (int64_t)es) {
        memcpy(p[0], p[1], (size_t)n * es);
        return;
    }
    if (c->dd == c->ds && es == 4) {   /* a strided copy (a transpose): the same bits */
        for (int64_t i = 0; i < n; i++) *(uint32_t *)(p[0] + i * s[0]) = *(const uint32_t *)(p[1] + i * s[1]);
    } else if (c->dd == c->ds) {
        for (int64_t i = 0; i < n; i++) *(uint64_t *)(p[0] + i * s[0]) = *(const uint64_t *)(p[1] + i * s[1]);
    } else {
        for (int64_t i = 0; i < n; i++) nb_store(c->dd, p[0] + i * s[0], nb_load(c->ds, p[1] + i * s[1]));
    }
}

/* false with "<op>: ..." when t has several elements at one address (a stride 0 along an axis longer
 * than 1, as an expanded view has): a write would go to one element several times */
static bool writable(const char *op, const nb_tensor *t)
{
    if (nb_numel(t) == 0) return true;   /* no elements: a 0 in the shape makes strides 0 too */
    for (int i = 0; i < t->ndim; i++)
        if (t->stride[i] == 0 && t->shape[i] > 1) {
            nb_error("%s: cannot write into %s: a broadcast view (stride 0 along axis %d) has one element "
                     "at several indices", op, nb_shp(t), i);
            return false;
        }
    return true;
}

/* the bytes [lo, hi) that t's elements occupy */
static void byte_range(const nb_tensor *t, const char **lo, const char **hi)
{
    const int64_t es = (int64_t)nb_dtype_size(t->dtype);
    int64_t first = 0, last = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) {   /* no elements */
            *lo = *hi = t->data;
            return;
        }
        const int64_t span = t->stride[i] * (t->shape[i] - 1);
        if (span < 0) first += span;
        else last += span;
    }
    *lo = (const char *)t->data + first * es;
    *hi = (const char *)t->data + (last + 1) * es;
}

int nb_copy_into(nb_tensor *dst, const nb_tensor *src)
{
    if (!dst || !src) {
        nb_error_null("nb_copy_into", "tensor");
        return -1;
    }
    if (!nb_same_shape(dst, src->ndim, src->shape)) {
        nb_error("nb_copy_into: shapes differ: %s and %s", nb_shp(dst), nb_shp(src));
        return -1;
    }
    if (!writable("nb_copy_into", dst)) return -1;
    const char *dlo, *dhi, *slo, *shi;
    byte_range(dst, &dlo, &dhi);
    byte_range(src, &slo, &shi);
    const bool same_view = dst->data == src->data && dst->dtype == src->dtype &&
                           !memcmp(dst->stride, src->stride, sizeof(int64_t) * (size_t)dst->ndim);
    if (dlo < shi && slo < dhi && !same_view) {   /* overlapping memory: read all of src before writing */
        nb_tensor *copy = nb_copy(src);
        return copy ? nb_copy_into(dst, copy) : -1;
    }
    copy_ctx c = { dst->dtype, src->dtype };
    nb_loop l;
    nb_loop_init(&l, dst->ndim, dst->shape);
    nb_loop_add(&l, dst);
    nb_loop_add(&l, src);
    nb_loop_run_parallel(&l, copy_row, &c);
    nb_bump_version(dst);
    return 0;
}

static void fill_row(int64_t n, char **p, const int64_t *s, void *ctx)
{
    nb_dtype dt = *(const nb_dtype *)ctx;
    int64_t es = (int64_t)nb_dtype_size(dt);
    if (s[0] == es && nb_load(dt, p[1]) == 0 && !signbit(nb_load(dt, p[1]))) {
        memset(p[0], 0, (size_t)(n * es));   /* +0 is all-zero bits in every dtype */
    } else if (dt == NB_F32) {
        const float v = *(const float *)p[1];
        for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = v;
    } else {   /* f64 and i64: 8 bytes */
        for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1], 8);
    }
}

int nb_fill(nb_tensor *t, double value)
{
    if (!t) {
        nb_error_null("nb_fill", "tensor");
        return -1;
    }
    if (!writable("nb_fill", t)) return -1;
    char one[8];
    nb_store(t->dtype, one, value);
    nb_loop l;
    nb_loop_init(&l, t->ndim, t->shape);
    nb_loop_add(&l, t);
    l.ptr[1] = one;   /* a broadcast operand: stride 0 everywhere */
    memset(l.stride[1], 0, sizeof l.stride[1]);
    l.nops = 2;
    nb_loop_run_parallel(&l, fill_row, &t->dtype);
    nb_bump_version(t);
    return 0;
}
