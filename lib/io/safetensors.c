/* safetensors files: a writer (a whole list at once, or tensor by tensor; atomic through
 * nb_save_atomic, lib/io/atomic.c) and a reader that treats the file as hostile — every size and offset is checked against the file before use. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ULL   /* the reference implementation's limit */
#define ST_IO_MAX ((size_t)1 << 30)  /* largest single read() */

static const char st_reserved[] = "__metadata__";

/* ---- dtypes and byte order ---- */

static const char *st_dtype_name(nb_dtype dt)
{
    switch (dt) {
    case NB_F32: return "F32";
    case NB_F64: return "F64";
    case NB_I64: return "I64";
    }
    return NULL;
}

static bool st_dtype_parse(const char *s, nb_dtype *dt)
{
    if (!strcmp(s, "F32")) *dt = NB_F32;
    else if (!strcmp(s, "F64")) *dt = NB_F64;
    else if (!strcmp(s, "I64")) *dt = NB_I64;
    else return false;
    return true;
}

/* ---- raw I/O: 0 or an errno value ---- */

/* reads exactly n bytes at offset; *eof set when the file ended first */
static int pread_all(int fd, void *buf, size_t n, int64_t offset, bool *eof)
{
    char *p = buf;
    *eof = false;
    while (n > 0) {
        ssize_t r = pread(fd, p, n < ST_IO_MAX ? n : ST_IO_MAX, (off_t)offset);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (r == 0) {
            *eof = true;
            return EIO;
        }
        p += r;
        n -= (size_t)r;
        offset += r;
    }
    return 0;
}

/* checks one tensor name and records it in `seen` (a JSON object used as a set); op/path prefix */
static bool check_name(const char *op, const char *path, json_t *seen, const char *name)
{
    const char *sep = path ? ": " : "";
    if (!path) path = "";
    if (!strcmp(name, st_reserved)) {
        nb_error("%s: %s%stensor name '%s' is reserved", op, path, sep, name);
        return false;
    }
    if (json_object_get(seen, name)) {
        nb_error("%s: %s%sduplicate tensor name '%s'", op, path, sep, name);
        return false;
    }
    if (json_object_set_new(seen, name, json_null())) {
        nb_error("%s: %s%stensor name '%s' is not valid UTF-8", op, path, sep, name);
        return false;
    }
    return true;
}

/* checks one metadata pair and adds it to `meta` */
static bool check_meta(const char *op, const char *path, json_t *meta, const char *key, const char *value)
{
    const char *sep = path ? ": " : "";
    if (!path) path = "";
    if (json_object_get(meta, key)) {
        nb_error("%s: %s%sduplicate metadata key '%s'", op, path, sep, key);
        return false;
    }
    json_t *v = json_string(value);
    if (!v) {
        nb_error("%s: %s%smetadata value for key '%s' is not valid UTF-8", op, path, sep, key);
        return false;
    }
    if (json_object_set_new(meta, key, v)) {
        nb_error("%s: %s%smetadata key '%s' is not valid UTF-8", op, path, sep, key);
        return false;
    }
    return true;
}

/* the header: {"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets"}, ...}, or NULL */
static json_t *build_header(const char *op, const char *path, int n, const char *const *names,
                            const nb_tensor *const *tensors, int n_meta, const char *const *keys,
                            const char *const *values)
{
    json_t *header = json_object(), *seen = json_object(), *meta = n_meta ? json_object() : NULL;
    bool ok = header && seen && (meta || !n_meta);
    if (!ok) nb_error("%s: %s: out of memory", op, path);
    for (int i = 0; ok && i < n_meta; i++) {
        if (!keys[i] || !values[i]) {
            nb_error("%s: %s: metadata %s %d is NULL", op, path, keys[i] ? "value" : "key", i);
            ok = false;
        } else {
            ok = check_meta(op, path, meta, keys[i], values[i]);
        }
    }
    if (ok && meta) {
        ok = json_object_set(header, st_reserved, meta) == 0;
        if (!ok) nb_error("%s: %s: out of memory", op, path);
    }
    int64_t offset = 0;
    for (int i = 0; ok && i < n; i++) {
        const nb_tensor *t = tensors[i];
        if (!names[i]) {
            nb_error("%s: %s: name %d is NULL", op, path, i);
            ok = false;
            break;
        }
        if (!t) {
            if (!nb_last_error()[0]) nb_error("%s: %s: tensor '%s' (index %d) is NULL", op, path, names[i], i);
            ok = false;
            break;
        }
        const char *dtype = st_dtype_name(t->dtype);
        if (!dtype || t->ndim < 0 || t->ndim > NB_MAX_DIMS) {
            nb_error("%s: %s: tensor '%s' has an invalid dtype or rank", op, path, names[i]);
            ok = false;
            break;
        }
        if (!(ok = check_name(op, path, seen, names[i]))) break;
        int64_t bytes = nb_numel(t) * (int64_t)nb_dtype_size(t->dtype);
        json_t *shape = json_array(), *entry = json_object(), *offsets = json_array();
        ok = shape && entry && offsets;
        for (int d = 0; ok && d < t->ndim; d++) ok = json_array_append_new(shape, json_integer(t->shape[d])) == 0;
        ok = ok && json_array_append_new(offsets, json_integer(offset)) == 0 &&
             json_array_append_new(offsets, json_integer(offset + bytes)) == 0 &&
             json_object_set_new(entry, "dtype", json_string(dtype)) == 0 &&
             json_object_set(entry, "shape", shape) == 0 && json_object_set(entry, "data_offsets", offsets) == 0 &&
             json_object_set(header, names[i], entry) == 0;
        json_decref(shape);
        json_decref(offsets);
        json_decref(entry);
        if (!ok) nb_error("%s: %s: out of memory", op, path);
        offset += bytes;
    }
    json_decref(seen);
    json_decref(meta);
    if (!ok) {
        json_decref(header);
        return NULL;
    }
    return header;
}

static int save_core(const char *op, const char *path, int n, const char *const *names,
                     const nb_tensor *const *tensors, int n_meta, const char *const *keys, const char *const *values)
{
    if (!path) {
        nb_error("%s: NULL path", op);
        return -1;
    }
    if (!nb_check_replaceable(op, path)) return -1;
    if (n < 0 || n_meta < 0) {
        nb_error("%s: %s: negative count (%d tensors, %d metadata pairs)", op, path, n, n_meta);
        return -1;
    }
    if ((n > 0 && (!names || !tensors)) || (n_meta > 0 && (!keys || !values))) {
        nb_error("%s: %s: NULL %s array", op, path, n > 0 && (!names || !tensors) ? "tensor or name" : "metadata");
        return -1;
    }
    json_t *header = build_header(op, path, n, names, tensors, n_meta, keys, values);
    if (!header) return -1;
    char *text = json_dumps(header, JSON_COMPACT);
    json_decref(header);
    if (!text) {
        nb_error("%s: %s: out of memory", op, path);
        return -1;
    }
    /* the header is padded with spaces so that the data starts at a multiple of 8 */
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    if (padded > ST_MAX_HEADER) {
        nb_error("%s: %s: the header would take %zu bytes, more than the %llu-byte limit", op, path, padded, ST_MAX_HEADER);
        free(text);
        return -1;
    }
    unsigned char *head = malloc(8 + padded);
    if (!head) {
        nb_error("%s: %s: out of memory", op, path);
        free(text);
        return -1;
    }
    for (int i = 0; i < 8; i++) head[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(head + 8, text, len);
    memset(head + 8 + len, ' ', padded - len);
    free(text);

    int rc = nb_save_atomic(op, path, head, 8 + padded, n, (nb_tensor *const *)tensors);
    free(head);
    return rc;
}

int nb_safetensors_save(const char *path, int n, const char *const *names, nb_tensor *const *tensors,
                        int n_meta, const char *const *meta_keys, const char *const *meta_values)
{
    return save_core("nb_safetensors_save", path, n, names, (const nb_tensor *const *)tensors, n_meta, meta_keys,
                     meta_values);
}

/* ---- the incremental writer ---- */

struct nb_safetensors_writer {
    int n, cap, n_meta, meta_cap;
    char **names;
    nb_tensor **tensors;       /* persistent copies */
    char **keys, **values;
    json_t *seen, *meta;       /* names and metadata already added */
};

nb_safetensors_writer *nb_safetensors_writer_new(void)
{
    nb_safetensors_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->seen = json_object();
        w->meta = json_object();
    }
    if (!w || !w->seen || !w->meta) {
        nb_safetensors_writer_free(w);
        nb_error("nb_safetensors_writer_new: out of memory");
        return NULL;
    }
    return w;
}

/* makes room for one more name and tensor */
static bool grow_tensors(nb_safetensors_writer *w)
{
    if (w->n < w->cap) return true;
    int c = w->cap ? 2 * w->cap : 16;
    char **names = realloc(w->names, (size_t)c * sizeof *names);
    if (!names) return false;
    w->names = names;
    nb_tensor **tensors = realloc(w->tensors, (size_t)c * sizeof *tensors);
    if (!tensors) return false;
    w->tensors = tensors;
    w->cap = c;
    return true;
}

/* makes room for one more metadata pair */
static bool grow_meta(nb_safetensors_writer *w)
{
    if (w->n_meta < w->meta_cap) return true;
    int c = w->meta_cap ? 2 * w->meta_cap : 8;
    char **keys = realloc(w->keys, (size_t)c * sizeof *keys);
    if (!keys) return false;
    w->keys = keys;
    char **values = realloc(w->values, (size_t)c * sizeof *values);
    if (!values) return false;
    w->values = values;
    w->meta_cap = c;
    return true;
}

int nb_safetensors_writer_add(nb_safetensors_writer *w, const char *name, const nb_tensor *t)
{
    static const char op[] = "nb_safetensors_writer_add";
    if (!w || !name) {
        nb_error("%s: NULL %s", op, w ? "name" : "writer");
        return -1;
    }
    if (!t) {
        if (!nb_last_error()[0]) nb_error("%s: NULL tensor for '%s'", op, name);
        return -1;
    }
    if (!st_dtype_name(t->dtype) || t->ndim < 0 || t->ndim > NB_MAX_DIMS) {
        nb_error("%s: tensor '%s' has an invalid dtype or rank", op, name);
        return -1;
    }
    if (!check_name(op, NULL, w->seen, name)) return -1;
    char *copy_name = strdup(name);
    nb_tensor *copy = nb_persist((nb_tensor *)t);   /* copies the values; t is not modified */
    if (!copy_name || !copy || !grow_tensors(w)) {
        nb_error("%s: out of memory copying tensor '%s' %s", op, name, nb_shp(t));
        free(copy_name);
        nb_free(copy);
        json_object_del(w->seen, name);
        return -1;
    }
    w->names[w->n] = copy_name;
    w->tensors[w->n++] = copy;
    return 0;
}

int nb_safetensors_writer_meta(nb_safetensors_writer *w, const char *key, const char *value)
{
    static const char op[] = "nb_safetensors_writer_meta";
    if (!w || !key || !value) {
        nb_error("%s: NULL %s", op, !w ? "writer" : !key ? "key" : "value");
        return -1;
    }
    if (!check_meta(op, NULL, w->meta, key, value)) return -1;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v || !grow_meta(w)) {
        nb_error("%s: out of memory", op);
        free(k);
        free(v);
        json_object_del(w->meta, key);
        return -1;
    }
    w->keys[w->n_meta] = k;
    w->values[w->n_meta++] = v;
    return 0;
}

int nb_safetensors_writer_save(nb_safetensors_writer *w, const char *path)
{
    if (!w) {
        nb_error("nb_safetensors_writer_save: NULL writer");
        return -1;
    }
    return save_core("nb_safetensors_writer_save", path, w->n, (const char *const *)w->names,
                     (const nb_tensor *const *)w->tensors, w->n_meta, (const char *const *)w->keys,
                     (const char *const *)w->values);
}

void nb_safetensors_writer_free(nb_safetensors_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->names[i]);
        nb_free(w->tensors[i]);
    }
    for (int i = 0; i < w->n_meta; i++) {
        free(w->keys[i]);
        free(w->values[i]);
    }
    free(w->names);
    free(w->tensors);
    free(w->keys);
    free(w->values);
    json_decref(w->seen);
    json_decref(w->meta);
    free(w);
}

/* ---- reading ---- */

typedef struct {
    const char *name;          /* a key of the parsed header */
    nb_dtype dt;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t begin, end;        /* relative to the data buffer */
} st_entry;

static void NB_PRINTF(2, 3) load_error(const char *path, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    nb_error("nb_safetensors_load: %s: %s", path, what);
}

/* validates one tensor entry of the header against a data buffer of buf_size bytes */
static bool parse_entry(const char *path, const char *name, json_t *v, int64_t buf_size, st_entry *e)
{
    if (!json_is_object(v)) {
        load_error(path, "tensor '%s': the entry is not a JSON object", name);
        return false;
    }
    e->name = name;
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offsets = json_object_get(v, "data_offsets");
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing) {
        load_error(path, "tensor '%s': missing \"%s\"", name, missing);
        return false;
    }
    if (!json_is_string(dtype)) {
        load_error(path, "tensor '%s': \"dtype\" is not a string", name);
        return false;
    }
    if (!st_dtype_parse(json_string_value(dtype), &e->dt)) {
        load_error(path, "tensor '%s': unsupported dtype \"%s\" (nabla reads F32, F64 and I64)", name,
                   json_string_value(dtype));
        return false;
    }
    if (!json_is_array(shape)) {
        load_error(path, "tensor '%s': \"shape\" is not an array", name);
        return false;
    }
    if (json_array_size(shape) > NB_MAX_DIMS) {
        load_error(path, "tensor '%s': the shape has %zu dimensions, at most %d are supported", name,
                   json_array_size(shape), NB_MAX_DIMS);
        return false;
    }
    e->ndim = (int)json_array_size(shape);
    for (int d = 0; d < e->ndim; d++) {
        json_t *s = json_array_get(shape, (size_t)d);
        if (!json_is_integer(s)) {
            load_error(path, "tensor '%s': shape[%d] is not an integer", name, d);
            return false;
        }
        if (json_integer_value(s) < 0) {
            load_error(path, "tensor '%s': shape[%d] is negative (%lld)", name, d, (long long)json_integer_value(s));
            return false;
        }
        e->shape[d] = (int64_t)json_integer_value(s);
    }
    /* every partial product (the strides) and the byte count must fit, even around a zero size */
    int64_t numel = 1, nonzero = 1;
    for (int d = 0; d < e->ndim; d++) {
        int64_t s = e->shape[d];
        if (s > 1 && nonzero > INT64_MAX / 8 / s) {
            load_error(path, "tensor '%s': shape %s has too many elements", name, nb_shape_text(e->ndim, e->shape));
            return false;
        }
        if (s > 0) nonzero *= s;
        numel *= s;
    }
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 || !json_is_integer(json_array_get(offsets, 0)) ||
        !json_is_integer(json_array_get(offsets, 1))) {
        load_error(path, "tensor '%s': \"data_offsets\" is not an array of two integers", name);
        return false;
    }
    e->begin = (int64_t)json_integer_value(json_array_get(offsets, 0));
    e->end = (int64_t)json_integer_value(json_array_get(offsets, 1));
    if (e->begin < 0 || e->end < 0) {
        load_error(path, "tensor '%s': data_offsets [%lld, %lld] contain a negative offset", name,
                   (long long)e->begin, (long long)e->end);
        return false;
    }
    if (e->end < e->begin) {
        load_error(path, "tensor '%s': data_offsets [%lld, %lld] end before they begin", name, (long long)e->begin,
                   (long long)e->end);
        return false;
    }
    int64_t bytes = numel * (int64_t)nb_dtype_size(e->dt);
    if (e->end - e->begin != bytes) {
        load_error(path, "tensor '%s': data_offsets [%lld, %lld] do not match shape %s of %s (%lld bytes)", name,
                   (long long)e->begin, (long long)e->end, nb_shape_text(e->ndim, e->shape), st_dtype_name(e->dt),
                   (long long)bytes);
        return false;
    }
    if (e->end > buf_size) {
        load_error(path, "tensor '%s': data_offsets [%lld, %lld] are out of range: the data buffer has %lld bytes", name,
                   (long long)e->begin, (long long)e->end, (long long)buf_size);
        return false;
    }
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* the tensors, sorted by offset, must tile [0, buf_size) exactly */
static bool check_layout(const char *path, st_entry **sorted, int n, int64_t buf_size)
{
    int64_t covered = 0;
    const st_entry *prev = NULL;
    for (int i = 0; i < n; i++) {
        const st_entry *e = sorted[i];
        if (e->begin < covered) {
            load_error(path, "tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", prev->name,
                       (long long)prev->begin, (long long)prev->end, e->name, (long long)e->begin, (long long)e->end);
            return false;
        }
        if (e->begin > covered) {
            load_error(path, "gap in the data buffer: bytes [%lld, %lld) before tensor '%s' belong to no tensor",
                       (long long)covered, (long long)e->begin, e->name);
            return false;
        }
        covered = e->end;
        prev = e;
    }
    if (covered != buf_size) {
        load_error(path, "%lld trailing bytes: the tensors end at %lld but the data buffer has %lld bytes",
                   (long long)(buf_size - covered), (long long)covered, (long long)buf_size);
        return false;
    }
    return true;
}

/* a persistent tensor of e's dtype and shape with the values at data_start + e->begin */
static nb_tensor *read_tensor(const char *path, int fd, const st_entry *e, int64_t data_start)
{
    static const float zero_f32 = 0;
    static const double zero_f64 = 0;
    static const int64_t zero_i64 = 0;
    /* nb_persist of a broadcast zero allocates a persistent contiguous tensor of the right shape */
    nb_tensor zero;
    memset(&zero, 0, sizeof zero);
    zero.dtype = e->dt;
    zero.ndim = e->ndim;
    memcpy(zero.shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    zero.data = (void *)(e->dt == NB_F32 ? (const void *)&zero_f32 : e->dt == NB_F64 ? (const void *)&zero_f64 : (const void *)&zero_i64);
    nb_tensor *t = nb_persist(&zero);
    if (!t) {
        load_error(path, "tensor '%s': out of memory for %lld bytes", e->name, (long long)(e->end - e->begin));
        return NULL;
    }
    size_t bytes = (size_t)(e->end - e->begin);
    bool eof;
    int err = bytes ? pread_all(fd, t->data, bytes, data_start + e->begin, &eof) : 0;
    if (err) {
        if (eof)
            load_error(path, "tensor '%s': the file ended before byte %lld (did it change while being read?)", e->name,
                       (long long)(data_start + e->end));
        else
            load_error(path, "tensor '%s': read error at byte %lld: %s", e->name, (long long)(data_start + e->begin),
                       strerror(err));
        nb_free(t);
        return NULL;
    }
    if (!nb_host_is_little()) nb_swap_bytes(t->data, bytes, nb_dtype_size(e->dt));
    return t;
}

/* reads the metadata object into st */
static bool read_metadata(const char *path, json_t *meta, nb_safetensors *st)
{
    if (!json_is_object(meta)) {
        load_error(path, "\"%s\" is not a JSON object", st_reserved);
        return false;
    }
    size_t n = json_object_size(meta);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values) {
        load_error(path, "out of memory");
        return false;
    }
    st->n_meta = 0;
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(meta, key, key_len, v)
    {
        if (!json_is_string(v)) {
            load_error(path, "%s value for key '%s' is not a string", st_reserved, key);
            return false;
        }
        if (strlen(key) != key_len || strlen(json_string_value(v)) != json_string_length(v)) {
            load_error(path, "%s key '%s' or its value contains a NUL byte", st_reserved, key);
            return false;
        }
        int i = st->n_meta++;   /* counted first: the slots start NULL, so free releases a partial copy */
        st->meta_keys[i] = strdup(key);
        st->meta_values[i] = strdup(json_string_value(v));
        if (!st->meta_keys[i] || !st->meta_values[i]) {
            load_error(path, "out of memory");
            return false;
        }
    }
    return true;
}

nb_safetensors *nb_safetensors_load(const char *path)
{
    if (!path) {
        nb_error("nb_safetensors_load: NULL path");
        return NULL;
    }
    nb_safetensors *st = NULL;
    json_t *root = NULL;
    char *text = NULL;
    st_entry *entries = NULL;
    st_entry **sorted = NULL;
    bool ok = false;
    int64_t size = 0;
    int fd = nb_open_regular(path, &size);
    if (fd < 0) {
        if (fd == -2) load_error(path, "not a regular file");
        else load_error(path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (size < 8) {
        load_error(path, "truncated: the file has %lld bytes, fewer than the 8-byte header length", (long long)size);
        goto done;
    }
    unsigned char len8[8];
    bool eof;
    int err = pread_all(fd, len8, 8, 0, &eof);
    if (err) {
        load_error(path, "cannot read the header length at offset 0: %s", eof ? "unexpected end of file" : strerror(err));
        goto done;
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | len8[i];
    if (header_len > ST_MAX_HEADER) {
        load_error(path, "header length %llu at offset 0 exceeds the limit of %llu bytes", (unsigned long long)header_len,
                   ST_MAX_HEADER);
        goto done;
    }
    if ((int64_t)header_len > size - 8) {
        load_error(path, "truncated: header says %llu bytes at offset 8 but the file has %lld",
                   (unsigned long long)header_len, (long long)size);
        goto done;
    }
    int64_t data_start = 8 + (int64_t)header_len, buf_size = size - data_start;
    text = malloc(header_len ? header_len : 1);
    if (!text) {
        load_error(path, "out of memory for a %llu-byte header", (unsigned long long)header_len);
        goto done;
    }
    err = header_len ? pread_all(fd, text, header_len, 8, &eof) : 0;
    if (err) {
        load_error(path, "cannot read the header at offset 8: %s", eof ? "unexpected end of file" : strerror(err));
        goto done;
    }
    json_error_t jerr;
    root = json_loadb(text, header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        load_error(path, "invalid JSON header at byte %lld (line %d, column %d): %s", 8 + (long long)jerr.position,
                   jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        load_error(path, "the header at offset 8 is not a JSON object");
        goto done;
    }

    st = calloc(1, sizeof *st);
    size_t n_keys = json_object_size(root);
    entries = calloc(n_keys ? n_keys : 1, sizeof *entries);
    sorted = calloc(n_keys ? n_keys : 1, sizeof *sorted);
    if (!st || !entries || !sorted) {
        load_error(path, "out of memory");
        goto done;
    }
    int n = 0;
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(root, key, key_len, v)
    {
        if (strlen(key) != key_len) {
            load_error(path, "a header key contains a NUL byte");
            goto done;
        }
        if (!strcmp(key, st_reserved)) {
            if (!read_metadata(path, v, st)) goto done;
            continue;
        }
        if (!parse_entry(path, key, v, buf_size, &entries[n])) goto done;
        sorted[n] = &entries[n];
        n++;
    }
    qsort(sorted, (size_t)n, sizeof *sorted, entry_cmp);
    if (!check_layout(path, sorted, n, buf_size)) goto done;

    st->names = calloc(n ? (size_t)n : 1, sizeof(char *));
    st->tensors = calloc(n ? (size_t)n : 1, sizeof(nb_tensor *));
    if (!st->names || !st->tensors) {
        load_error(path, "out of memory");
        goto done;
    }
    st->n = n;   /* the slots start NULL, so nb_safetensors_free can release a partial load */
    /* read in file order (sequential I/O) into header-order slots */
    for (int i = 0; i < n; i++) {
        size_t slot = (size_t)(sorted[i] - entries);
        if (!(st->tensors[slot] = read_tensor(path, fd, sorted[i], data_start))) goto done;
    }
    for (int i = 0; i < n; i++)
        if (!(st->names[i] = strdup(entries[i].name))) {
            load_error(path, "out of memory");
            goto done;
        }
    ok = true;
done:
    close(fd);
    free(text);
    free(entries);
    free(sorted);
    json_decref(root);
    if (!ok) {
        nb_safetensors_free(st);
        return NULL;
    }
    return st;
}

nb_tensor *nb_safetensors_get(const nb_safetensors *st, const char *name)
{
    if (!st || !name) {
        nb_error("nb_safetensors_get: NULL %s", st ? "name" : "safetensors");
        return NULL;
    }
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->names[i], name)) return st->tensors[i];
    nb_error("nb_safetensors_get: no tensor named '%s' (the file has %d)", name, st->n);
    return NULL;
}

const char *nb_safetensors_meta(const nb_safetensors *st, const char *key)
{
    if (!st || !key) {
        nb_error("nb_safetensors_meta: NULL %s", st ? "key" : "safetensors");
        return NULL;
    }
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

void nb_safetensors_free(nb_safetensors *st)
{
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        if (st->names) free(st->names[i]);
        if (st->tensors) nb_free(st->tensors[i]);
    }
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}
