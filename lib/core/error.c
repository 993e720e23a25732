/* The per-thread last-error message and the validation helpers every op uses. */
#include "../internal.h"

#include <stdio.h>

static _Thread_local char last_error[1024];

void nb_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

const char *nb_last_error(void) { return last_error; }

void nb_error_null(const char *op, const char *what)
{
    if (!last_error[0]) nb_error("%s: NULL %s", op, what);
}
void *nb_null_input(const char *op)
{
    nb_error_null(op, "input");
    return NULL;
}

void nb_clear_error(void) { last_error[0] = '\0'; }

const char *nb_shape_text(int ndim, const int64_t *shape)
{
    static _Thread_local char ring[8][128];
    static _Thread_local unsigned next;
    char *buf = ring[next++ % 8];
    size_t len = 0;
    buf[len++] = '[';
    for (int i = 0; i < ndim && len < 100; i++)
        len += (size_t)snprintf(buf + len, 128 - len, i ? ",%lld" : "%lld", (long long)shape[i]);
    snprintf(buf + len, 128 - len, "]");
    return buf;
}

const char *nb_shp(const nb_tensor *t) { return nb_shape_text(t->ndim, t->shape); }

int nb_shape_str(const nb_tensor *t, char *buf, size_t size)
{
    if (!t || !buf) {
        nb_error("nb_shape_str: NULL argument");
        return -1;
    }
    snprintf(buf, size, "%s", nb_shp(t));
    return 0;
}

bool nb_check_float(const char *op, const nb_tensor *t)
{
    if (t->dtype == NB_F32 || t->dtype == NB_F64) return true;
    nb_error("%s: expected a f32 or f64 tensor, got %s %s", op, nb_dtype_name(t->dtype), nb_shp(t));
    return false;
}

bool nb_check_same_dtype(const char *op, const nb_tensor *a, const nb_tensor *b)
{
    if (a->dtype == b->dtype) return true;
    nb_error("%s: dtypes differ: %s %s and %s %s", op, nb_dtype_name(a->dtype), nb_shp(a),
             nb_dtype_name(b->dtype), nb_shp(b));
    return false;
}

bool nb_check_axis(const char *op, const nb_tensor *t, int *axis)
{
    int a = *axis < 0 ? *axis + t->ndim : *axis;
    if (a < 0 || a >= t->ndim) {
        nb_error("%s: axis %d out of range for %s", op, *axis, nb_shp(t));
        return false;
    }
    *axis = a;
    return true;
}

bool nb_check_axes(const char *op, const nb_tensor *t, nb_axes axes, bool mask[NB_MAX_DIMS])
{
    memset(mask, 0, NB_MAX_DIMS * sizeof mask[0]);
    if (axes.n < 0 || axes.n > NB_MAX_DIMS) {
        nb_error("%s: %d axes given, at most %d allowed", op, axes.n, NB_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < axes.n; i++) {
        int a = axes.a[i];
        if (!nb_check_axis(op, t, &a)) return false;
        if (mask[a]) {
            nb_error("%s: axis %d repeated for %s", op, axes.a[i], nb_shp(t));
            return false;
        }
        mask[a] = true;
    }
    return true;
}

bool nb_check_shape(const char *op, nb_shape s)
{
    if (s.ndim < 0 || s.ndim > NB_MAX_DIMS) {
        nb_error("%s: %d dimensions given, at most %d allowed", op, s.ndim, NB_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < s.ndim; i++)
        if (s.d[i] < 0) {
            nb_error("%s: negative size in shape %s", op, nb_shape_text(s.ndim, s.d));
            return false;
        }
    if (!nb_sizes_fit(s.ndim, s.d, 8)) {
        nb_error("%s: shape %s has too many elements", op, nb_shape_text(s.ndim, s.d));
        return false;
    }
    return true;
}
