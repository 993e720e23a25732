/* Data sets: paths and byte conversion shared by the file readers, freeing,
 * preprocessing (mean image, per-channel standardisation), minibatches with augmentation, row views. */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- helpers shared by the readers ---- */

int nb_data_check_load_args(const char *op, nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val)
{
    if (!ds) {
        nb_error("%s: NULL data set", op);
        return -1;
    }
    memset(ds, 0, sizeof *ds);
    if (!dir) {
        nb_error("%s: NULL directory", op);
        return -1;
    }
    if (!nb_data_check_float_dtype(op, dt)) return -1;
    if (num_val < 0) {
        nb_error("%s: num_val must be >= 0, got %lld", op, (long long)num_val);
        return -1;
    }
    return 0;
}

int nb_data_path(const char *op, char *out, size_t size, const char *dir, const char *name)
{
    size_t len = strlen(dir);
    const char *sep = len == 0 || dir[len - 1] == '/' ? "" : "/";
    int n = snprintf(out, size, "%s%s%s", dir, sep, name);
    if (n < 0 || (size_t)n >= size) {
        nb_error("%s: path too long: %.64s.../%s", op, dir, name);
        return -1;
    }
    return 0;
}

bool nb_data_check_float_dtype(const char *op, nb_dtype dt)
{
    if (dt == NB_F32 || dt == NB_F64) return true;
    nb_error("%s: images must be f32 or f64, got %s", op, nb_dtype_name(dt));
    return false;
}

void nb_sink_init(nb_sink *s, double divisor, nb_tensor *first, nb_tensor *second)
{
    s->t[0] = first;
    s->t[1] = second;
    s->n = second ? 2 : 1;
    s->cur = 0;
    s->pos = 0;
    s->dt = first->dtype;
    for (int v = 0; v < 256; v++) {
        s->f64[v] = s->dt == NB_I64 ? v : v / divisor;
        s->f32[v] = (float)s->f64[v];
    }
}

void nb_sink_put(nb_sink *s, const uint8_t *src, int64_t n)
{
    while (n > 0) {
        nb_tensor *t = s->t[s->cur];
        int64_t room = nb_numel(t) - s->pos;
        if (room == 0) {
            if (s->cur + 1 >= s->n) return; /* the caller guarantees room: never reached */
            s->cur++;
            s->pos = 0;
            continue;
        }
        int64_t k = n < room ? n : room;
        switch (s->dt) {
        case NB_F32: {
            float *d = (float *)t->data + s->pos;
            for (int64_t i = 0; i < k; i++) d[i] = s->f32[src[i]];
            break;
        }
        case NB_F64: {
            double *d = (double *)t->data + s->pos;
            for (int64_t i = 0; i < k; i++) d[i] = s->f64[src[i]];
            break;
        }
        default: {
            int64_t *d = (int64_t *)t->data + s->pos;
            for (int64_t i = 0; i < k; i++) d[i] = src[i];
            break;
        }
        }
        s->pos += k;
        src += k;
        n -= k;
    }
}

/* ---- data sets ---- */

void nb_dataset_free(nb_dataset *ds)
{
    if (!ds) return;
    nb_tensor *all[] = { ds->train_x, ds->train_y, ds->val_x, ds->val_y, ds->test_x, ds->test_y,
                         ds->mean_image, ds->channel_mean, ds->channel_std };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) nb_free(all[i]);
    memset(ds, 0, sizeof *ds);
}

/* The splits to preprocess: train first; every present split must be float, contiguous, persistent
 * or not, with train's dtype and per-sample shape. */
static int preprocess_splits(const char *op, nb_dataset *ds, nb_tensor *out[3])
{
    if (!ds) {
        nb_error("%s: NULL data set", op);
        return -1;
    }
    if (!ds->train_x) {
        nb_error("%s: the data set has no train_x", op);
        return -1;
    }
    nb_tensor *tr = ds->train_x;
    if (!nb_check_float(op, tr)) return -1;
    if (tr->ndim < 2 || tr->shape[0] == 0) {
        nb_error("%s: train_x must be [N,C,...] with N >= 1, got %s", op, nb_shp(tr));
        return -1;
    }
    out[0] = ds->train_x;
    out[1] = ds->val_x;
    out[2] = ds->test_x;
    static const char *const names[3] = { "train_x", "val_x", "test_x" };
    for (int i = 0; i < 3; i++) {
        nb_tensor *t = out[i];
        if (!t) continue;
        if (t->dtype != tr->dtype || t->ndim != tr->ndim ||
            memcmp(t->shape + 1, tr->shape + 1, sizeof(int64_t) * (size_t)(tr->ndim - 1)) != 0) {
            nb_error("%s: %s is %s %s but train_x is %s %s", op, names[i], nb_dtype_name(t->dtype), nb_shp(t),
                     nb_dtype_name(tr->dtype), nb_shp(tr));
            return -1;
        }
        if (!nb_is_contiguous(t)) {
            nb_error("%s: %s %s must be contiguous", op, names[i], nb_shp(t));
            return -1;
        }
    }
    return 0;
}

/* element i of a contiguous float tensor */
static inline double fget(const nb_tensor *t, int64_t i)
{
    return t->dtype == NB_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
}
static inline void fset(nb_tensor *t, int64_t i, double v)
{
    if (t->dtype == NB_F32) ((float *)t->data)[i] = (float)v;
    else ((double *)t->data)[i] = v;
}

int nb_dataset_subtract_mean_image(nb_dataset *ds)
{
    const char *op = "nb_dataset_subtract_mean_image";
    nb_tensor *splits[3];
    if (preprocess_splits(op, ds, splits) < 0) return -1;
    nb_tensor *tr = ds->train_x;
    int64_t n = tr->shape[0], d = nb_numel(tr) / n;
    double *mean = calloc((size_t)d, sizeof *mean);
    if (!mean) {
        nb_error("%s: out of memory", op);
        return -1;
    }
    nb_tensor *img = nb_new_persistent(op, tr->dtype, tr->ndim - 1, tr->shape + 1);
    if (!img) {
        free(mean);
        return -1;
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) mean[j] += fget(tr, r * d + j);
    for (int64_t j = 0; j < d; j++) {
        mean[j] /= (double)n;
        fset(img, j, mean[j]);
    }
    for (int s = 0; s < 3; s++) {
        nb_tensor *t = splits[s];
        if (!t) continue;
        int64_t rows = t->shape[0];
        if (t->dtype == NB_F32) {
            float *p = t->data;
            for (int64_t r = 0; r < rows; r++, p += d)
                for (int64_t j = 0; j < d; j++) p[j] = (float)(p[j] - mean[j]);
        } else {
            double *p = t->data;
            for (int64_t r = 0; r < rows; r++, p += d)
                for (int64_t j = 0; j < d; j++) p[j] -= mean[j];
        }
    }
    free(mean);
    nb_free(ds->mean_image);
    ds->mean_image = img;
    return 0;
}

int nb_dataset_standardize(nb_dataset *ds)
{
    const char *op = "nb_dataset_standardize";
    nb_tensor *splits[3];
    if (preprocess_splits(op, ds, splits) < 0) return -1;
    nb_tensor *tr = ds->train_x;
    int64_t n = tr->shape[0], c = tr->shape[1], inner = nb_numel(tr) / (n * (c ? c : 1));
    if (c == 0) {
        nb_error("%s: train_x %s has no channels", op, nb_shp(tr));
        return -1;
    }
    double *mean = calloc((size_t)c * 2, sizeof *mean);
    if (!mean) {
        nb_error("%s: out of memory", op);
        return -1;
    }
    double *std = mean + c;
    nb_tensor *tm = nb_new_persistent(op, tr->dtype, 1, &c);
    nb_tensor *ts = nb_new_persistent(op, tr->dtype, 1, &c);
    if (!tm || !ts) {
        nb_free(tm);
        nb_free(ts);
        free(mean);
        return -1;
    }
    /* two passes: the mean, then the squared deviations from it */
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < c; k++) {
            int64_t base = (r * c + k) * inner;
            for (int64_t j = 0; j < inner; j++) mean[k] += fget(tr, base + j);
        }
    for (int64_t k = 0; k < c; k++) mean[k] /= (double)(n * inner);
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < c; k++) {
            int64_t base = (r * c + k) * inner;
            for (int64_t j = 0; j < inner; j++) {
                double v = fget(tr, base + j) - mean[k];
                std[k] += v * v;
            }
        }
    for (int64_t k = 0; k < c; k++) {
        std[k] = sqrt(std[k] / (double)(n * inner));
        fset(tm, k, mean[k]);
        fset(ts, k, std[k]);
    }
    for (int s = 0; s < 3; s++) {
        nb_tensor *t = splits[s];
        if (!t) continue;
        int64_t rows = t->shape[0];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < c; k++) {
                double m = mean[k], inv = std[k] > 0 ? 1.0 / std[k] : 1.0;
                int64_t base = (r * c + k) * inner;
                if (t->dtype == NB_F32) {
                    float *p = (float *)t->data + base;
                    for (int64_t j = 0; j < inner; j++) p[j] = (float)((p[j] - m) * inv);
                } else {
                    double *p = (double *)t->data + base;
                    for (int64_t j = 0; j < inner; j++) p[j] = (p[j] - m) * inv;
                }
            }
    }
    free(mean);
    nb_free(ds->channel_mean);
    nb_free(ds->channel_std);
    ds->channel_mean = tm;
    ds->channel_std = ts;
    return 0;
}

/* ---- row views ---- */

nb_tensor *nb_take_rows(const nb_tensor *x, int64_t start, int64_t count)
{
    const char *op = "nb_take_rows";
    if (!x) {
        nb_error_null(op, "tensor");
        return NULL;
    }
    if (x->ndim < 1) {
        nb_error("%s: x must have at least one axis, got %s", op, nb_shp(x));
        return NULL;
    }
    int64_t n = x->shape[0];
    if (start < 0 || start > n) {
        nb_error("%s: start %lld out of range [0,%lld] for %s", op, (long long)start, (long long)n, nb_shp(x));
        return NULL;
    }
    if (count < 0) {
        nb_error("%s: count must be >= 0, got %lld", op, (long long)count);
        return NULL;
    }
    if (count > n - start) count = n - start;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = count;
    char *data = (char *)x->data + (size_t)(start * x->stride[0]) * nb_dtype_size(x->dtype);
    return nb_view(x, x->ndim, shape, x->stride, count ? data : x->data);
}

/* ---- minibatches ---- */

struct nb_batcher {
    const nb_tensor *x, *y;
    int64_t n, batch, per_epoch;
    int64_t pos;            /* batches handed out in the current epoch */
    int64_t epoch;          /* epochs completed */
    nb_batch_mode mode;
    nb_rng rng;
    int64_t *order;         /* SHUFFLE / SEQUENTIAL: the epoch's order of rows */
    int64_t *drawn;         /* SAMPLE: the batch's rows */
    int crop_pad;
    bool hflip;
};

/* uniform in [0, n), without modulo bias */
static uint64_t uniform_below(nb_rng *rng, uint64_t n)
{
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t v = nb_rng_next(rng);
        if (v >= threshold) return v % n;
    }
}

nb_batcher *nb_batcher_new(const nb_tensor *x, const nb_tensor *y, int64_t batch_size, nb_batch_mode mode,
                           nb_rng *rng)
{
    const char *op = "nb_batcher_new";
    if (!x) {
        nb_error_null(op, "x");
        return NULL;
    }
    if (x->ndim < 1 || x->shape[0] < 1) {
        nb_error("%s: x must have at least one row, got %s", op, nb_shp(x));
        return NULL;
    }
    if (y && (y->ndim < 1 || y->shape[0] != x->shape[0])) {
        nb_error("%s: y %s must have as many rows as x %s", op, nb_shp(y), nb_shp(x));
        return NULL;
    }
    if (batch_size < 1) {
        nb_error("%s: batch_size must be >= 1, got %lld", op, (long long)batch_size);
        return NULL;
    }
    if (mode != NB_BATCH_SHUFFLE && mode != NB_BATCH_SAMPLE && mode != NB_BATCH_SEQUENTIAL) {
        nb_error("%s: unknown mode %d", op, (int)mode);
        return NULL;
    }
    if (!rng && mode != NB_BATCH_SEQUENTIAL) {
        nb_error("%s: %s needs an rng", op, mode == NB_BATCH_SHUFFLE ? "NB_BATCH_SHUFFLE" : "NB_BATCH_SAMPLE");
        return NULL;
    }
    nb_batcher *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->x = x;
    b->y = y;
    b->n = x->shape[0];
    b->batch = batch_size;
    b->mode = mode;
    if (mode == NB_BATCH_SAMPLE) {
        b->per_epoch = b->n / batch_size > 1 ? b->n / batch_size : 1;
        b->drawn = malloc(sizeof(int64_t) * (size_t)batch_size);
        if (!b->drawn) goto oom;
    } else {
        b->per_epoch = b->n / batch_size + (b->n % batch_size != 0);   /* n + batch_size - 1 may overflow */
        b->order = malloc(sizeof(int64_t) * (size_t)b->n);
        if (!b->order) goto oom;
        for (int64_t i = 0; i < b->n; i++) b->order[i] = i;
    }
    /* a generator of its own, forked from rng: the batches depend only on rng's state now */
    nb_rng_seed(&b->rng, rng ? nb_rng_next(rng) : 0);
    return b;
oom:
    nb_batcher_free(b);
    nb_error("%s: out of memory", op);
    return NULL;
}

void nb_batcher_free(nb_batcher *b)
{
    if (!b) return;
    free(b->order);
    free(b->drawn);
    free(b);
}

int64_t nb_batcher_epoch(const nb_batcher *b) { return b ? b->epoch : 0; }
int64_t nb_batcher_batches_per_epoch(const nb_batcher *b) { return b ? b->per_epoch : 0; }

int nb_batcher_set_augment(nb_batcher *b, int crop_pad, bool hflip)
{
    const char *op = "nb_batcher_set_augment";
    if (!b) {
        nb_error("%s: NULL batcher", op);
        return -1;
    }
    if (crop_pad < 0) {
        nb_error("%s: crop_pad must be >= 0, got %d", op, crop_pad);
        return -1;
    }
    if ((crop_pad > 0 || hflip) && (b->x->ndim < 3 || !nb_is_contiguous(b->x))) {
        nb_error("%s: augmentation needs contiguous images [N,...,H,W], got %s%s", op, nb_shp(b->x),
                 b->x->ndim < 3 ? "" : " (not contiguous)");
        return -1;
    }
    b->crop_pad = crop_pad;
    b->hflip = hflip;
    return 0;
}

/* Row `row` of t (any strides) into dst, contiguous; es = element size */
static void copy_row(char *dst, const nb_tensor *t, int64_t row, int64_t row_elems, size_t es)
{
    const char *src = (const char *)t->data + (ptrdiff_t)(row * t->stride[0]) * (ptrdiff_t)es;
    if (nb_contiguous_strides(t->ndim - 1, t->shape + 1, t->stride + 1)) {
        memcpy(dst, src, (size_t)row_elems * es);
        return;
    }
    int64_t idx[NB_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < row_elems; k++) {
        ptrdiff_t off = 0;
        for (int a = 1; a < t->ndim; a++) off += (ptrdiff_t)(idx[a] * t->stride[a]);
        memcpy(dst + (size_t)k * es, src + off * (ptrdiff_t)es, es);
        for (int a = t->ndim - 1; a >= 1; a--) {
            if (++idx[a] < t->shape[a]) break;
            idx[a] = 0;
        }
    }
}

/* One sample of contiguous x, shifted by (dy, dx) with zero fill, then mirrored when flip:
 * out[i][j] = src[i+dy][flip ? W-1-j+dx : j+dx] for each of the planes of H×W. */
#define AUGMENT_PLANES(T)                                                                                    \
    do {                                                                                                     \
        T *o = (T *)dst;                                                                                     \
        const T *s = (const T *)src;                                                                         \
        for (int64_t p = 0; p < planes; p++, o += h * w, s += h * w)                                         \
            for (int64_t i = 0; i < h; i++) {                                                                \
                int64_t si = i + dy;                                                                         \
                T *orow = o + i * w;                                                                         \
                if (si < 0 || si >= h) {                                                                     \
                    memset(orow, 0, sizeof(T) * (size_t)w);                                                  \
                    continue;                                                                                \
                }                                                                                            \
                const T *srow = s + si * w;                                                                  \
                for (int64_t j = 0; j < w; j++) {                                                            \
                    int64_t sj = flip ? w - 1 - j + dx : j + dx;                                             \
                    orow[j] = sj >= 0 && sj < w ? srow[sj] : (T)0;                                           \
                }                                                                                            \
            }                                                                                                \
    } while (0)

static void augment_row(nb_batcher *b, char *dst, int64_t row, int64_t row_elems, size_t es)
{
    const nb_tensor *x = b->x;
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1], planes = h > 0 && w > 0 ? row_elems / (h * w) : 0;
    int64_t dy = 0, dx = 0;
    if (b->crop_pad > 0) {
        uint64_t span = 2 * (uint64_t)b->crop_pad + 1;
        dy = (int64_t)uniform_below(&b->rng, span) - b->crop_pad;
        dx = (int64_t)uniform_below(&b->rng, span) - b->crop_pad;
    }
    bool flip = b->hflip && (nb_rng_next(&b->rng) >> 63);
    const char *src = (const char *)x->data + (size_t)(row * row_elems) * es;
    if (dy == 0 && dx == 0 && !flip) {
        memcpy(dst, src, (size_t)row_elems * es);
        return;
    }
    switch (x->dtype) {
    case NB_F32: AUGMENT_PLANES(float); break;
    case NB_F64: AUGMENT_PLANES(double); break;
    default: AUGMENT_PLANES(int64_t); break;
    }
}

/* a new contiguous tensor [count, t->shape[1:]...] holding rows[0..count) of t */
static nb_tensor *gather_rows(nb_batcher *b, const nb_tensor *t, const int64_t *rows, int64_t count, bool augment)
{
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = count;
    nb_tensor *out = nb_new("nb_batcher_next", t->dtype, t->ndim, shape);
    if (!out) return NULL;
    size_t es = nb_dtype_size(t->dtype);
    int64_t row_elems = nb_shape_numel(t->ndim - 1, t->shape + 1);
    for (int64_t i = 0; i < count; i++) {
        char *dst = (char *)out->data + (size_t)(i * row_elems) * es;
        if (augment) augment_row(b, dst, rows[i], row_elems, es);
        else copy_row(dst, t, rows[i], row_elems, es);
    }
    return out;
}

int nb_batcher_next(nb_batcher *b, nb_tensor **xb, nb_tensor **yb)
{
    if (!b || !xb) {
        nb_error("nb_batcher_next: NULL %s", b ? "xb" : "batcher");
        return -1;
    }
    *xb = NULL;
    if (yb) *yb = NULL;
    if (b->pos == b->per_epoch) {
        b->pos = 0;
        b->epoch++;
        return 0;
    }
    const int64_t *rows;
    int64_t count;
    if (b->mode == NB_BATCH_SAMPLE) {
        count = b->batch;
        for (int64_t i = 0; i < count; i++) b->drawn[i] = (int64_t)uniform_below(&b->rng, (uint64_t)b->n);
        rows = b->drawn;
    } else {
        if (b->pos == 0 && b->mode == NB_BATCH_SHUFFLE) /* Fisher-Yates, a fresh order each epoch */
            for (int64_t i = b->n - 1; i > 0; i--) {
                int64_t j = (int64_t)uniform_below(&b->rng, (uint64_t)i + 1);
                int64_t tmp = b->order[i];
                b->order[i] = b->order[j];
                b->order[j] = tmp;
            }
        int64_t start = b->pos * b->batch;
        count = b->n - start < b->batch ? b->n - start : b->batch;
        rows = b->order + start;
    }
    nb_tensor *x = gather_rows(b, b->x, rows, count, b->crop_pad > 0 || b->hflip);
    nb_tensor *y = x && b->y ? gather_rows(b, b->y, rows, count, false) : NULL;
    if (!x || (b->y && !y)) return -1;
    *xb = x;
    if (yb) *yb = y;
    b->pos++;
    return 1;
}
