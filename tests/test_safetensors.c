/* Safetensors files: round trips of every dtype (0-d, empty, transposed, sliced and broadcast
 * inputs, metadata), the file's bytes checked independently with jansson, hand-written files in
 * another writer's layout, the incremental writer, every corrupt-file and bad-argument message,
 * and atomic saving (the old file survives a failed save, no temporary file is left behind). */
#include "nbtest.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a fresh folder per test (Check forks per test; the fixture runs in the child) ---- */

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/nabla-st-XXXXXX");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            chmod(sub, 0700);
            remove_tree(sub);
        } else {
            unlink(sub);
        }
    }
    closedir(d);
    rmdir(path);
}

static void remove_dir(void) { remove_tree(dir); }

/* dir/name, in a rotating buffer */
static const char *in_dir(const char *name)
{
    static char ring[8][512];
    static unsigned next;
    char *p = ring[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* the number of entries in folder path (without . and ..) */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "opendir %s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* the whole file, malloc'd; *n its size */
static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* a file: the header length `len`, then `header` (strlen bytes), then ndata bytes of data */
static void write_raw(const char *path, uint64_t len, const char *header, const void *data, size_t ndata)
{
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + ndata + 1);
    put_u64(b, len);
    memcpy(b + 8, header, h);
    if (ndata) memcpy(b + 8 + h, data, ndata);
    write_bytes(path, b, 8 + h + ndata);
    free(b);
}

/* a well-formed prefix: the header length is the header's own length */
static void write_st(const char *path, const char *header, const void *data, size_t ndata)
{
    write_raw(path, strlen(header), header, data, ndata);
}

/* loading path fails with "nb_safetensors_load: <path>: <printf(fmt, ...)>" */
static void load_fails(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void load_fails(const char *path, const char *fmt, ...)
{
    char tail[768], want[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    snprintf(want, sizeof want, "nb_safetensors_load: %s: %s", path, tail);
    nbt_assert_error(nb_safetensors_load(path), want);
}

/* a file holding `header` and ndata zero bytes fails to load with the message tail */
static void corrupt(const char *header, size_t ndata, const char *tail)
{
    const char *p = in_dir("corrupt.safetensors");
    unsigned char zeros[256] = { 0 };
    ck_assert(ndata <= sizeof zeros);
    write_st(p, header, zeros, ndata);
    load_fails(p, "%s", tail);
}

/* equal shapes and dtypes, and bit-identical values */
static void assert_same(const nb_tensor *got, const nb_tensor *want)
{
    ck_assert_msg(got != NULL, "NULL tensor: %s", nb_last_error());
    ck_assert_int_eq(got->dtype, want->dtype);
    ck_assert_int_eq(got->ndim, want->ndim);
    for (int i = 0; i < want->ndim; i++) ck_assert_int_eq(got->shape[i], want->shape[i]);
    ck_assert(nb_is_contiguous(got));
    /* one assertion at the end: Check makes a system call per passing assertion */
    int64_t n = nb_numel(want), bad = -1;
    double a = 0, b = 0;
    for (int64_t i = 0; i < n && bad < 0; i++) {
        a = nb_get(got, i);
        b = nb_get(want, i);
        if (memcmp(&a, &b, sizeof a) != 0) bad = i;
    }
    ck_assert_msg(bad < 0, "element %lld: %.17g != %.17g", (long long)bad, a, b);
}

/* the test's tensors: every dtype, 0-d, empty, transposed, sliced, broadcast */
enum { N_TENSORS = 9 };
static const char *const names9[N_TENSORS] = { "fc1.weight", "fc1.bias", "labels", "step", "empty",
                                               "empty_i64", "transposed", "sliced", "broadcast" };

static void make_tensors(nb_tensor *t[N_TENSORS])
{
    t[0] = nb_from_doubles(NB_F32, NB_SHAPE(2, 3), (double[]){ 0.1, -2.5, 3e-38, 1e38, -0.0, 1.0 / 3 });
    t[1] = nb_from_doubles(NB_F64, NB_SHAPE(4), (double[]){ 1.0 / 3, -0.0, 1e300, -4.9e-324 });
    t[2] = nb_from_data(NB_I64, NB_SHAPE(3, 2), (int64_t[]){ INT64_MIN, INT64_MAX, -1, 0, 1, 0x0102030405060708 });
    t[3] = nb_scalar(NB_F64, 2.5);
    t[4] = nb_zeros(NB_F32, NB_SHAPE(0, 3));
    t[5] = nb_zeros(NB_I64, NB_SHAPE(2, 0, 4));
    t[6] = nb_transpose(nb_from_doubles(NB_F64, NB_SHAPE(3, 2), (double[]){ 1, 2, 3, 4, 5, 6 }), 0, 1);
    t[7] = nb_slice(nb_arange(NB_F32, 0, 12, 1), 0, 1, 12, 3);   /* [1,4,7,10] */
    t[8] = nb_expand(nb_from_doubles(NB_I64, NB_SHAPE(1, 3), (double[]){ 7, 8, 9 }), NB_SHAPE(4, 3));
    for (int i = 0; i < N_TENSORS; i++) ck_assert_msg(t[i] != NULL, "tensor %d: %s", i, nb_last_error());
}

static const char *const meta_keys[] = { "format", "epoch", "note" };
static const char *const meta_values[] = { "nabla", "3", "ünïcödé, \"quoted\"\n" };

/* ---- round trips ---- */

START_TEST(round_trip)
{
    nb_tensor *t[N_TENSORS];
    make_tensors(t);
    const char *p = in_dir("model.safetensors");
    ck_assert_msg(nb_safetensors_save(p, N_TENSORS, names9, t, 3, meta_keys, meta_values) == 0, "%s", nb_last_error());
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_int_eq(st->n, N_TENSORS);
    for (int i = 0; i < N_TENSORS; i++) {
        ck_assert_str_eq(st->names[i], names9[i]);   /* in the order given */
        assert_same(st->tensors[i], t[i]);
        ck_assert_ptr_eq(nb_safetensors_get(st, names9[i]), st->tensors[i]);
        ck_assert_ptr_null(st->tensors[i]->scope);   /* persistent */
        ck_assert(!st->tensors[i]->requires_grad);
    }
    nbt_assert_values(nb_safetensors_get(st, "transposed"), ((double[]){ 1, 3, 5, 2, 4, 6 }), 0);
    nbt_assert_values(nb_safetensors_get(st, "sliced"), ((double[]){ 1, 4, 7, 10 }), 0);
    nbt_assert_values(nb_safetensors_get(st, "broadcast"), ((double[]){ 7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8, 9 }), 0);
    ck_assert_int_eq(nb_safetensors_get(st, "step")->ndim, 0);
    ck_assert_int_eq(nb_get(nb_safetensors_get(st, "labels"), 0), (double)INT64_MIN);
    ck_assert(((int64_t *)nb_safetensors_get(st, "labels")->data)[1] == INT64_MAX);

    ck_assert_int_eq(st->n_meta, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(st->meta_keys[i], meta_keys[i]);
        ck_assert_str_eq(nb_safetensors_meta(st, meta_keys[i]), meta_values[i]);
    }
    nb_clear_error();
    ck_assert_ptr_null(nb_safetensors_meta(st, "absent"));
    ck_assert_str_eq(nb_last_error(), "");   /* absent metadata is not an error */
    nbt_assert_error(nb_safetensors_get(st, "absent"), "nb_safetensors_get: no tensor named 'absent' (the file has 9)");

    /* the tensors outlive the scope they were loaded in */
    nb_scope_reset(NULL);
    nbt_assert_values(nb_safetensors_get(st, "fc1.bias"), ((double[]){ 1.0 / 3, -0.0, 1e300, -4.9e-324 }), 0);
    nb_safetensors_free(st);
    nb_safetensors_free(NULL);
}
END_TEST

START_TEST(round_trip_nothing)
{
    /* no tensors and no metadata: the header is "{}" padded to 8 bytes */
    const char *p = in_dir("nothing.safetensors");
    ck_assert_int_eq(nb_safetensors_save(p, 0, NULL, NULL, 0, NULL, NULL), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    ck_assert_uint_eq(n, 16);
    ck_assert_uint_eq(get_u64(b), 8);
    ck_assert(memcmp(b + 8, "{}      ", 8) == 0);
    free(b);
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_int_eq(st->n, 0);
    ck_assert_int_eq(st->n_meta, 0);
    ck_assert_ptr_null(nb_safetensors_meta(st, "format"));
    nb_safetensors_free(st);
}
END_TEST

START_TEST(round_trip_large_strided)
{
    /* bigger than the writer's 1 MiB staging buffer: a transposed f64 [700,600] (strided rows), a
     * broadcast f32 [3,300000] (long rows of stride 0) and a contiguous i64 */
    nb_tensor *base = nb_reshape(nb_arange(NB_F64, 0, 420000, 1), NB_SHAPE(600, 700));
    nb_tensor *t[3] = { nb_transpose(base, 0, 1),
                        nb_expand(nb_reshape(nb_arange(NB_F32, 0, 300000, 1), NB_SHAPE(1, 300000)), NB_SHAPE(3, 300000)),
                        nb_arange(NB_I64, -200000, 200000, 1) };
    const char *names[3] = { "t", "b", "i" };
    const char *p = in_dir("large.safetensors");
    ck_assert_msg(nb_safetensors_save(p, 3, names, t, 0, NULL, NULL) == 0, "%s", nb_last_error());
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    for (int i = 0; i < 3; i++) assert_same(st->tensors[i], t[i]);
    nb_safetensors_free(st);
}
END_TEST

/* ---- the bytes on disk, checked independently with jansson ---- */

START_TEST(file_layout)
{
    nb_tensor *t[N_TENSORS];
    make_tensors(t);
    const char *p = in_dir("layout.safetensors");
    ck_assert_int_eq(nb_safetensors_save(p, N_TENSORS, names9, t, 3, meta_keys, meta_values), 0);
    size_t size;
    unsigned char *b = read_bytes(p, &size);
    uint64_t n = get_u64(b);
    ck_assert_uint_eq(n % 8, 0);                       /* data starts 8-aligned */
    ck_assert_uint_le(8 + n, size);
    ck_assert_uint_eq(b[8], '{');
    size_t end = 8 + n;
    while (end > 8 && b[end - 1] == ' ') end--;        /* padded with spaces only */
    ck_assert_uint_eq(b[end - 1], '}');
    ck_assert_uint_lt(8 + n - end, 8);

    json_error_t err;
    json_t *root = json_loadb((const char *)b + 8, n, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(root != NULL, "%s", err.text);
    ck_assert_uint_eq(json_object_size(root), N_TENSORS + 1);
    json_t *meta = json_object_get(root, "__metadata__");
    ck_assert(json_is_object(meta));
    ck_assert_uint_eq(json_object_size(meta), 3);
    for (int i = 0; i < 3; i++) ck_assert_str_eq(json_string_value(json_object_get(meta, meta_keys[i])), meta_values[i]);

    static const char *const dtypes[N_TENSORS] = { "F32", "F64", "I64", "F64", "F32", "I64", "F64", "F32", "I64" };
    int64_t expect_begin = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        json_t *e = json_object_get(root, names9[i]);
        ck_assert_msg(json_is_object(e), "entry %s", names9[i]);
        ck_assert_uint_eq(json_object_size(e), 3);
        ck_assert_str_eq(json_string_value(json_object_get(e, "dtype")), dtypes[i]);
        json_t *shape = json_object_get(e, "shape");
        ck_assert_uint_eq(json_array_size(shape), (size_t)t[i]->ndim);
        for (int d = 0; d < t[i]->ndim; d++) ck_assert_int_eq(json_integer_value(json_array_get(shape, (size_t)d)), t[i]->shape[d]);
        json_t *off = json_object_get(e, "data_offsets");
        ck_assert_uint_eq(json_array_size(off), 2);
        int64_t begin = json_integer_value(json_array_get(off, 0)), stop = json_integer_value(json_array_get(off, 1));
        ck_assert_int_eq(begin, expect_begin);   /* written in order, back to back */
        ck_assert_int_eq(stop - begin, nb_numel(t[i]) * (int64_t)nb_dtype_size(t[i]->dtype));
        expect_begin = stop;
        /* the values, decoded from little-endian bytes in row-major order */
        const unsigned char *data = b + 8 + n + begin;
        for (int64_t k = 0; k < nb_numel(t[i]); k++) {
            double v;
            if (t[i]->dtype == NB_F32) {
                uint32_t u = 0;
                for (int j = 3; j >= 0; j--) u = u << 8 | data[4 * k + j];
                float f;
                memcpy(&f, &u, 4);
                v = f;
            } else {
                uint64_t u = get_u64(data + 8 * k);
                if (t[i]->dtype == NB_F64) {
                    memcpy(&v, &u, 8);
                } else {
                    int64_t s;
                    memcpy(&s, &u, 8);
                    v = (double)s;
                }
            }
            double w = nb_get(t[i], k);
            if (memcmp(&v, &w, 8) != 0) ck_abort_msg("%s[%lld]: %.17g != %.17g", names9[i], (long long)k, v, w);
        }
    }
    ck_assert_uint_eq(8 + n + (uint64_t)expect_begin, size);   /* nothing after the last tensor */
    /* 0x0102030405060708 is stored least significant byte first */
    json_t *labels = json_object_get(json_object_get(root, "labels"), "data_offsets");
    const unsigned char *last = b + 8 + n + json_integer_value(json_array_get(labels, 0)) + 5 * 8;
    ck_assert(memcmp(last, "\x08\x07\x06\x05\x04\x03\x02\x01", 8) == 0);
    json_decref(root);
    free(b);
}
END_TEST

START_TEST(load_foreign_layout)
{
    /* as another writer may lay a file out: no padding, spaces, metadata last, header order unlike
     * data order, an F64 at an offset that is not 8-aligned, an empty tensor between two others */
    const char *header = "{ \"b\" : {\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[12,28]},"
                         "\"e\":{\"shape\":[0, 5],\"data_offsets\":[4,4],\"dtype\":\"F32\"},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4], \"extra\": true},"
                         "\"c\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]},"
                         "\"__metadata__\":{\"format\":\"pt\"}}";
    unsigned char data[28];
    float a = 1.5f;
    double c = -3.25;
    int64_t bv[2] = { 42, -7 };
    memcpy(data, &a, 4);
    memcpy(data + 4, &c, 8);
    memcpy(data + 12, bv, 16);
    const char *p = in_dir("foreign.safetensors");
    write_st(p, header, data, sizeof data);
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_int_eq(st->n, 4);
    const char *order[4] = { "b", "e", "a", "c" };
    for (int i = 0; i < 4; i++) ck_assert_str_eq(st->names[i], order[i]);
    ck_assert_int_eq(nb_safetensors_get(st, "a")->ndim, 0);
    ck_assert_double_eq(nb_item(nb_safetensors_get(st, "a")), 1.5);
    ck_assert_double_eq(nb_item(nb_safetensors_get(st, "c")), -3.25);
    nbt_assert_values(nb_safetensors_get(st, "b"), ((double[]){ 42, -7 }), 0);
    nbt_assert_shape(nb_safetensors_get(st, "e"), 0, 5);
    ck_assert_str_eq(nb_safetensors_meta(st, "format"), "pt");
    nb_safetensors_free(st);
}
END_TEST

/* ---- the incremental writer ---- */

START_TEST(writer)
{
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    ck_assert_ptr_nonnull(w);
    nb_tensor *x = nb_from_doubles(NB_F32, NB_SHAPE(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    ck_assert_int_eq(nb_safetensors_writer_add(w, "x.T", nb_transpose(x, 0, 1)), 0);
    ck_assert_int_eq(nb_safetensors_writer_add(w, "n", nb_arange(NB_I64, 0, 40, 1)), 0);
    ck_assert_int_eq(nb_safetensors_writer_meta(w, "step", "100"), 0);
    nb_fill(x, 0);   /* add copied the values: later changes are not saved */
    nb_scope_reset(NULL);
    /* many tensors (the arrays grow) */
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d.bias", i);
        ck_assert_int_eq(nb_safetensors_writer_add(w, name, nb_full(NB_F64, NB_SHAPE(2), i)), 0);
        snprintf(name, sizeof name, "k%d", i);
        ck_assert_int_eq(nb_safetensors_writer_meta(w, name, "v"), 0);
    }
    /* errors leave the writer usable */
    nb_tensor *y = nb_ones(NB_F64, NB_SHAPE(1));
    ck_assert_int_eq(nb_safetensors_writer_add(w, "x.T", y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: duplicate tensor name 'x.T'");
    ck_assert_int_eq(nb_safetensors_writer_add(w, "__metadata__", y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: tensor name '__metadata__' is reserved");
    ck_assert_int_eq(nb_safetensors_writer_add(w, "bad\xff", y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: tensor name 'bad\xff' is not valid UTF-8");
    nb_clear_error();
    ck_assert_int_eq(nb_safetensors_writer_add(w, "y", NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: NULL tensor for 'y'");
    /* a NULL from a failed op keeps that op's message */
    ck_assert_int_eq(nb_safetensors_writer_add(w, "y", nb_add(nb_ones(NB_F64, NB_SHAPE(2)), nb_ones(NB_F64, NB_SHAPE(3)))), -1);
    ck_assert_str_eq(nb_last_error(), "nb_add: shapes do not broadcast: [2] and [3]");
    ck_assert_int_eq(nb_safetensors_writer_add(NULL, "y", y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: NULL writer");
    ck_assert_int_eq(nb_safetensors_writer_add(w, NULL, y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_add: NULL name");
    ck_assert_int_eq(nb_safetensors_writer_meta(w, "step", "1"), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_meta: duplicate metadata key 'step'");
    ck_assert_int_eq(nb_safetensors_writer_meta(w, "v", "\xc3"), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_meta: metadata value for key 'v' is not valid UTF-8");
    ck_assert_int_eq(nb_safetensors_writer_meta(w, NULL, "1"), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_meta: NULL key");
    ck_assert_int_eq(nb_safetensors_writer_add(w, "y", y), 0);   /* the failed names are free again */
    ck_assert_int_eq(nb_safetensors_writer_save(w, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_writer_save: NULL path");

    /* saved twice: both files hold the same */
    const char *p1 = in_dir("w1.safetensors"), *p2 = in_dir("w2.safetensors");
    ck_assert_msg(nb_safetensors_writer_save(w, p1) == 0, "%s", nb_last_error());
    ck_assert_msg(nb_safetensors_writer_save(w, p2) == 0, "%s", nb_last_error());
    nb_safetensors_writer_free(w);
    nb_safetensors_writer_free(NULL);
    for (int f = 0; f < 2; f++) {
        nb_safetensors *st = nb_safetensors_load(f ? p2 : p1);
        ck_assert_msg(st != NULL, "%s", nb_last_error());
        ck_assert_int_eq(st->n, 43);
        ck_assert_int_eq(st->n_meta, 41);
        ck_assert_str_eq(st->names[0], "x.T");
        nbt_assert_shape(st->tensors[0], 3, 2);
        nbt_assert_values(st->tensors[0], ((double[]){ 1, 4, 2, 5, 3, 6 }), 0);
        ck_assert_int_eq(st->tensors[0]->dtype, NB_F32);
        ck_assert_int_eq(nb_safetensors_get(st, "n")->dtype, NB_I64);
        ck_assert_double_eq(nb_get(nb_safetensors_get(st, "n"), 39), 39);
        ck_assert_double_eq(nb_get(nb_safetensors_get(st, "layers.39.bias"), 1), 39);
        ck_assert_str_eq(st->names[42], "y");
        ck_assert_str_eq(nb_safetensors_meta(st, "step"), "100");
        ck_assert_str_eq(nb_safetensors_meta(st, "k39"), "v");
        nb_safetensors_free(st);
    }
    ck_assert_int_eq(count_entries(dir), 2);
}
END_TEST

/* ---- corrupt files ---- */

START_TEST(corrupt_sizes)
{
    const char *p = in_dir("c.safetensors");
    write_bytes(p, "", 0);
    load_fails(p, "truncated: the file has 0 bytes, fewer than the 8-byte header length");
    write_bytes(p, "\x10\0\0\0\0", 5);
    load_fails(p, "truncated: the file has 5 bytes, fewer than the 8-byte header length");
    /* the header length says more than the file holds */
    char header[1193];
    memset(header, ' ', sizeof header - 1);
    header[0] = '{';
    header[1] = '}';
    header[sizeof header - 1] = '\0';
    write_raw(p, 4096, header, NULL, 0);
    load_fails(p, "truncated: header says 4096 bytes at offset 8 but the file has 1200");
    write_raw(p, 3, "{}", NULL, 0);
    load_fails(p, "truncated: header says 3 bytes at offset 8 but the file has 10");
    /* absurd header lengths are refused before any allocation */
    write_raw(p, UINT64_MAX, "{}", NULL, 0);
    load_fails(p, "header length 18446744073709551615 at offset 0 exceeds the limit of 100000000 bytes");
    write_raw(p, 100000001, "{}", NULL, 0);
    load_fails(p, "header length 100000001 at offset 0 exceeds the limit of 100000000 bytes");
    /* a zero-length header is not JSON */
    write_raw(p, 0, "", NULL, 0);
    load_fails(p, "invalid JSON header at byte 8 (line 1, column 0): '[' or '{' expected near end of file");
}
END_TEST

START_TEST(corrupt_json)
{
    corrupt("{\"w\": {\"dtype\": \"F32\",}}", 0,
            "invalid JSON header at byte 31 (line 1, column 23): string or '}' expected near '}'");
    corrupt("{\"w\":\n {\"dtype\": \"F32\"", 0,
            "invalid JSON header at byte 30 (line 2, column 16): '}' expected near end of file");
    corrupt("{\"a\": {}, \"a\": {}}", 0, "invalid JSON header at byte 21 (line 1, column 13): duplicate object key near '\"a\"'");
    corrupt("{\"a\\u0000b\": {}}", 0,
            "invalid JSON header at byte 19 (line 1, column 11): NUL byte in object key not supported near '\"a\\u0000b\"'");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999]}}", 0,
            "invalid JSON header at byte 61 (line 1, column 53): too big integer near '99999999999999999999'");
    corrupt("{} x", 0, "invalid JSON header at byte 12 (line 1, column 4): end of file expected near 'x'");
    corrupt("{\"\xff\": {}}", 0, "invalid JSON header at byte 10 (line 1, column 2): unable to decode byte 0xff near '\"'");
    corrupt("[1, 2]", 0, "the header at offset 8 is not a JSON object");
}
END_TEST

START_TEST(corrupt_entries)
{
    corrupt("{\"w\": 3}", 0, "tensor 'w': the entry is not a JSON object");
    corrupt("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "tensor 'w': missing \"dtype\"");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "tensor 'w': missing \"shape\"");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "tensor 'w': missing \"data_offsets\"");
    corrupt("{\"w\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "tensor 'w': \"dtype\" is not a string");
    corrupt("{\"w\": {\"dtype\": \"BF16\", \"shape\": [1], \"data_offsets\": [0, 2]}}", 2,
            "tensor 'w': unsupported dtype \"BF16\" (nabla reads F32, F64 and I64)");
    corrupt("{\"w\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
            "tensor 'w': unsupported dtype \"f32\" (nabla reads F32, F64 and I64)");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, "tensor 'w': \"shape\" is not an array");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1.5], \"data_offsets\": [0, 4]}}", 4,
            "tensor 'w': shape[1] is not an integer");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8,
            "tensor 'w': shape[0] is not an integer");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 4]}}", 4,
            "tensor 'w': shape[1] is negative (-3)");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
            "tensor 'w': the shape has 9 dimensions, at most 8 are supported");
    /* element counts that overflow, alone or behind a zero size */
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], \"data_offsets\": [0, 0]}}", 0,
            "tensor 'w': shape [1099511627776,1099511627776] has too many elements");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [0, 4611686018427387904, 4], \"data_offsets\": [0, 0]}}", 0,
            "tensor 'w': shape [0,4611686018427387904,4] has too many elements");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": 0}}", 4,
            "tensor 'w': \"data_offsets\" is not an array of two integers");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
            "tensor 'w': \"data_offsets\" is not an array of two integers");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
            "tensor 'w': \"data_offsets\" is not an array of two integers");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}", 4,
            "tensor 'w': \"data_offsets\" is not an array of two integers");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
            "tensor 'w': data_offsets [-4, 0] contain a negative offset");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
            "tensor 'w': data_offsets [8, 4] end before they begin");
    corrupt("{\"__metadata__\": [\"a\"]}", 0, "\"__metadata__\" is not a JSON object");
    corrupt("{\"__metadata__\": {\"epoch\": 3}}", 0, "__metadata__ value for key 'epoch' is not a string");
    corrupt("{\"__metadata__\": {\"a\": \"x\\u0000y\"}}", 0,
            "invalid JSON header at byte 41 (line 1, column 33): \\u0000 is not allowed without JSON_ALLOW_NUL near '\"x\\u0000y\"'");
}
END_TEST

START_TEST(corrupt_offsets)
{
    /* the example of the issue: 30 floats need 120 bytes */
    corrupt("{\"fc1.weight\": {\"dtype\": \"F32\", \"shape\": [5, 6], \"data_offsets\": [0, 100]}}", 100,
            "tensor 'fc1.weight': data_offsets [0, 100] do not match shape [5,6] of F32 (120 bytes)");
    corrupt("{\"s\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4,
            "tensor 's': data_offsets [0, 4] do not match shape [] of F64 (8 bytes)");
    corrupt("{\"w\": {\"dtype\": \"F32\", \"shape\": [30], \"data_offsets\": [0, 120]}}", 100,
            "tensor 'w': data_offsets [0, 120] are out of range: the data buffer has 100 bytes");
    corrupt("{\"w\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [9223372036854775800, 9223372036854775807]}}", 8,
            "tensor 'w': data_offsets [9223372036854775800, 9223372036854775807] do not match shape [1] of I64 (8 bytes)");
    corrupt("{\"w\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [9223372036854775799, 9223372036854775807]}}", 8,
            "tensor 'w': data_offsets [9223372036854775799, 9223372036854775807] are out of range: the data buffer has 8 bytes");
    corrupt("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
            " \"b\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [8, 24]}}", 24,
            "tensors 'a' [0, 16] and 'b' [8, 24] overlap");
    corrupt("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
            " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
            "tensors 'a' [0, 8] and 'b' [0, 8] overlap");
    corrupt("{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]},"
            " \"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 24,
            "gap in the data buffer: bytes [8, 16) before tensor 'b' belong to no tensor");
    corrupt("{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
            "gap in the data buffer: bytes [0, 4) before tensor 'b' belong to no tensor");
    corrupt("{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 12,
            "4 trailing bytes: the tensors end at 8 but the data buffer has 12 bytes");
    corrupt("{}", 3, "3 trailing bytes: the tensors end at 0 but the data buffer has 3 bytes");
}
END_TEST

START_TEST(corrupt_files)
{
    load_fails(in_dir("absent.safetensors"), "cannot open: No such file or directory");
    load_fails(dir, "not a regular file");
    nbt_assert_error(nb_safetensors_load(NULL), "nb_safetensors_load: NULL path");
    /* fuzz-style: every truncation and every single-byte corruption of a valid file is either
     * loaded or refused with a message — never a crash or an out-of-bounds read (ASan, valgrind) */
    nb_tensor *t[3] = { nb_from_doubles(NB_F32, NB_SHAPE(2, 2), (double[]){ 1, 2, 3, 4 }), nb_scalar(NB_F64, 5),
                        nb_arange(NB_I64, 0, 3, 1) };
    const char *names[3] = { "a", "b", "c" };
    const char *p = in_dir("good.safetensors"), *q = in_dir("bad.safetensors");
    ck_assert_int_eq(nb_safetensors_save(p, 3, names, t, 1, (const char *[]){ "k" }, (const char *[]){ "v" }), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    for (size_t len = 0; len < n; len++) {
        write_bytes(q, b, len);
        nb_clear_error();
        nb_safetensors *st = nb_safetensors_load(q);
        if (st || !nb_last_error()[0]) ck_abort_msg("truncation to %zu bytes was accepted", len);
    }
    static const unsigned char values[] = { 0x00, 0x20, 0x22, 0x2c, 0x39, 0x5d, 0x7d, 0xff };
    int loaded = 0, refused = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof values; k++) {
            unsigned char keep = b[i];
            if (keep == values[k]) continue;
            b[i] = values[k];
            write_bytes(q, b, n);
            b[i] = keep;
            nb_clear_error();
            nb_safetensors *st = nb_safetensors_load(q);
            if (st) loaded++;
            else refused++;
            if (!st && strncmp(nb_last_error(), "nb_safetensors_load: ", 21)) ck_abort_msg("no message for byte %zu", i);
            nb_safetensors_free(st);
        }
    ck_assert_int_gt(loaded, 0);   /* changed values, names, spaces */
    ck_assert_int_gt(refused, 0);
    free(b);
}
END_TEST

/* ---- saving: argument errors ---- */

START_TEST(save_errors)
{
    const char *p = in_dir("s.safetensors");
    nb_tensor *a = nb_ones(NB_F32, NB_SHAPE(2)), *b = nb_zeros(NB_F64, NB_SHAPE(3));
    char want[1024];
#define SAVE_FAILS(call, ...)                                                                        \
    do {                                                                                             \
        snprintf(want, sizeof want, __VA_ARGS__);                                                    \
        ck_assert_int_eq((call), -1);                                                                \
        ck_assert_str_eq(nb_last_error(), want);                                                     \
        ck_assert_int_eq(count_entries(dir), 0);   /* nothing written, no temporary file */          \
    } while (0)
    SAVE_FAILS(nb_safetensors_save(p, 2, (const char *[]){ "w", "w" }, (nb_tensor *[]){ a, b }, 0, NULL, NULL),
               "nb_safetensors_save: %s: duplicate tensor name 'w'", p);
    SAVE_FAILS(nb_safetensors_save(p, 2, (const char *[]){ "w", "__metadata__" }, (nb_tensor *[]){ a, b }, 0, NULL, NULL),
               "nb_safetensors_save: %s: tensor name '__metadata__' is reserved", p);
    SAVE_FAILS(nb_safetensors_save(p, 1, (const char *[]){ "\xe2\x82" }, (nb_tensor *[]){ a }, 0, NULL, NULL),
               "nb_safetensors_save: %s: tensor name '\xe2\x82' is not valid UTF-8", p);
    SAVE_FAILS(nb_safetensors_save(p, 1, (const char *[]){ "w" }, (nb_tensor *[]){ a }, 2, (const char *[]){ "k", "k" },
                                   (const char *[]){ "1", "2" }),
               "nb_safetensors_save: %s: duplicate metadata key 'k'", p);
    SAVE_FAILS(nb_safetensors_save(p, 1, (const char *[]){ "w" }, (nb_tensor *[]){ a }, 1, (const char *[]){ "\xff" },
                                   (const char *[]){ "1" }),
               "nb_safetensors_save: %s: metadata key '\xff' is not valid UTF-8", p);
    SAVE_FAILS(nb_safetensors_save(p, 1, (const char *[]){ "w" }, (nb_tensor *[]){ a }, 1, (const char *[]){ "k" },
                                   (const char *[]){ NULL }),
               "nb_safetensors_save: %s: metadata value 0 is NULL", p);
    SAVE_FAILS(nb_safetensors_save(p, 2, (const char *[]){ "w", NULL }, (nb_tensor *[]){ a, b }, 0, NULL, NULL),
               "nb_safetensors_save: %s: name 1 is NULL", p);
    nb_clear_error();
    SAVE_FAILS(nb_safetensors_save(p, 2, (const char *[]){ "w", "v" }, (nb_tensor *[]){ a, NULL }, 0, NULL, NULL),
               "nb_safetensors_save: %s: tensor 'v' (index 1) is NULL", p);
    /* a NULL from a failed op keeps that op's message */
    SAVE_FAILS(nb_safetensors_save(p, 2, (const char *[]){ "w", "v" }, (nb_tensor *[]){ a, nb_matmul(a, b) }, 0, NULL, NULL),
               "%s", "nb_matmul: dtypes differ: f32 [2] and f64 [3]");
    SAVE_FAILS(nb_safetensors_save(p, -1, NULL, NULL, 0, NULL, NULL),
               "nb_safetensors_save: %s: negative count (-1 tensors, 0 metadata pairs)", p);
    SAVE_FAILS(nb_safetensors_save(p, 1, NULL, (nb_tensor *[]){ a }, 0, NULL, NULL),
               "nb_safetensors_save: %s: NULL tensor or name array", p);
    SAVE_FAILS(nb_safetensors_save(p, 0, NULL, NULL, 1, NULL, NULL), "nb_safetensors_save: %s: NULL metadata array", p);
    SAVE_FAILS(nb_safetensors_save(NULL, 1, (const char *[]){ "w" }, (nb_tensor *[]){ a }, 0, NULL, NULL),
               "nb_safetensors_save: NULL path");
    SAVE_FAILS(nb_safetensors_save(in_dir("no/such/folder.safetensors"), 1, (const char *[]){ "w" }, (nb_tensor *[]){ a },
                                   0, NULL, NULL),
               "nb_safetensors_save: %s: cannot create a temporary file in folder '%s': No such file or directory",
               in_dir("no/such/folder.safetensors"), in_dir("no/such"));
#undef SAVE_FAILS
    /* lookups */
    nbt_assert_error(nb_safetensors_get(NULL, "w"), "nb_safetensors_get: NULL safetensors");
    nbt_assert_error(nb_safetensors_meta(NULL, "w"), "nb_safetensors_meta: NULL safetensors");
}
END_TEST

/* ---- saving atomically ---- */

/* the message names a temporary file "<path>.tmp.<pid>.<n>" between `before` and `after` */
static void assert_temp_message(const char *path, const char *before, const char *after)
{
    const char *m = nb_last_error();
    char prefix[1024], tmp[600];
    snprintf(prefix, sizeof prefix, "nb_safetensors_save: %s: %s '", path, before);
    ck_assert_msg(!strncmp(m, prefix, strlen(prefix)), "message: %s", m);
    const char *name = m + strlen(prefix), *quote = strchr(name, '\'');
    ck_assert_ptr_nonnull(quote);
    ck_assert_str_eq(quote + 1, after);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.", path, (long)getpid());
    ck_assert_msg(!strncmp(name, tmp, strlen(tmp)) && quote - name > (ptrdiff_t)strlen(tmp), "temporary name in: %s", m);
}

START_TEST(save_replaces_atomically)
{
    const char *p = in_dir("ckpt.safetensors"), *link_path = in_dir("old-link");
    nb_tensor *old = nb_full(NB_F32, NB_SHAPE(3), 1), *new = nb_arange(NB_F64, 0, 5, 1);
    ck_assert_int_eq(nb_safetensors_save(p, 1, (const char *[]){ "w" }, &old, 0, NULL, NULL), 0);
    size_t old_size;
    unsigned char *old_bytes = read_bytes(p, &old_size);
    /* a hard link to the old file keeps its inode: an in-place rewrite would show through it */
    ck_assert_int_eq(link(p, link_path), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(p, &before), 0);
    ck_assert_int_eq(nb_safetensors_save(p, 1, (const char *[]){ "v" }, &new, 1, (const char *[]){ "epoch" },
                                         (const char *[]){ "2" }), 0);
    ck_assert_int_eq(stat(p, &after), 0);
    ck_assert(before.st_ino != after.st_ino);   /* renamed over, not rewritten */
    ck_assert_int_eq(count_entries(dir), 2);    /* the file and the link: no temporary file left */
    size_t n;
    unsigned char *kept = read_bytes(link_path, &n);
    ck_assert(n == old_size && memcmp(kept, old_bytes, n) == 0);
    free(kept);
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    ck_assert_int_eq(st->n, 1);
    assert_same(nb_safetensors_get(st, "v"), new);
    ck_assert_str_eq(nb_safetensors_meta(st, "epoch"), "2");
    nb_safetensors_free(st);
    /* a relative path (folder ".") */
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_msg(nb_safetensors_save("rel.safetensors", 1, (const char *[]){ "w" }, &old, 0, NULL, NULL) == 0, "%s",
                  nb_last_error());
    st = nb_safetensors_load("rel.safetensors");
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    assert_same(st->tensors[0], old);
    nb_safetensors_free(st);
    ck_assert_int_eq(count_entries(dir), 3);
    free(old_bytes);
}
END_TEST

START_TEST(failed_save_keeps_old_file)
{
    const char *p = in_dir("ckpt.safetensors");
    nb_tensor *old = nb_full(NB_F32, NB_SHAPE(3), 1);
    ck_assert_int_eq(nb_safetensors_save(p, 1, (const char *[]){ "w" }, &old, 0, NULL, NULL), 0);
    size_t old_size;
    unsigned char *old_bytes = read_bytes(p, &old_size);

    /* the disk "fills up" in the middle of the data: writes past 64 KiB fail with EFBIG */
    nb_tensor *big = nb_zeros(NB_F64, NB_SHAPE(100, 100));   /* 80 000 bytes */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = { 65536, 65536 };
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(nb_safetensors_save(p, 2, (const char *[]){ "w", "big" }, (nb_tensor *[]){ old, big }, 0, NULL, NULL), -1);
    assert_temp_message(p, "cannot write temporary file", ": File too large");
    /* the same through the writer, with a strided tensor (staged writes) */
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    ck_assert_int_eq(nb_safetensors_writer_add(w, "bigT", nb_transpose(big, 0, 1)), 0);
    ck_assert_int_eq(nb_safetensors_writer_save(w, p), -1);
    nb_safetensors_writer_free(w);
    ck_assert_int_eq(count_entries(dir), 1);    /* the temporary files were removed */

    /* the target is a folder or a FIFO: refused before anything is written (a save over /dev/null
     * as root used to replace the device node with a regular file) */
    ck_assert_int_eq(mkdir(in_dir("folder.safetensors"), 0700), 0);
    ck_assert_int_eq(mkfifo(in_dir("fifo.safetensors"), 0600), 0);
    for (int k = 0; k < 2; k++) {
        const char *target = in_dir(k ? "fifo.safetensors" : "folder.safetensors");
        char want[512];
        snprintf(want, sizeof want, "nb_safetensors_save: %s: refusing to replace it: not a regular file", target);
        ck_assert_int_eq(nb_safetensors_save(target, 1, (const char *[]){ "w" }, &old, 0, NULL, NULL), -1);
        ck_assert_str_eq(nb_last_error(), want);
    }
    struct stat fifo_st;
    ck_assert_int_eq(stat(in_dir("fifo.safetensors"), &fifo_st), 0);
    ck_assert(S_ISFIFO(fifo_st.st_mode));
    load_fails(in_dir("fifo.safetensors"), "not a regular file");   /* at once: opening a FIFO used to block */
    ck_assert_int_eq(unlink(in_dir("fifo.safetensors")), 0);
    ck_assert_int_eq(count_entries(dir), 2);
    ck_assert_int_eq(nb_safetensors_save("", 1, (const char *[]){ "w" }, &old, 0, NULL, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_safetensors_save: empty path");

    /* a folder without write permission (root ignores permissions, so only as another user) */
    if (geteuid() != 0) {
        const char *ro = in_dir("ro"), *rp = in_dir("ro/ckpt.safetensors");
        ck_assert_int_eq(mkdir(ro, 0700), 0);
        ck_assert_int_eq(nb_safetensors_save(rp, 1, (const char *[]){ "w" }, &old, 0, NULL, NULL), 0);
        ck_assert_int_eq(chmod(ro, 0500), 0);
        char want[1024];
        snprintf(want, sizeof want, "nb_safetensors_save: %s: cannot create a temporary file in folder '%s': Permission denied",
                 rp, ro);
        ck_assert_int_eq(nb_safetensors_save(rp, 1, (const char *[]){ "w" }, &big, 0, NULL, NULL), -1);
        ck_assert_str_eq(nb_last_error(), want);
        ck_assert_int_eq(count_entries(ro), 1);
        chmod(ro, 0700);
    }

    /* the old file is intact and still loads */
    size_t n;
    unsigned char *now = read_bytes(p, &n);
    ck_assert(n == old_size && memcmp(now, old_bytes, n) == 0);
    free(now);
    free(old_bytes);
    nb_safetensors *st = nb_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", nb_last_error());
    assert_same(nb_safetensors_get(st, "w"), old);
    nb_safetensors_free(st);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);   /* file system calls can be slow on a loaded machine */
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, round_trip_nothing);
    tcase_add_test(tc, round_trip_large_strided);
    tcase_add_test(tc, file_layout);
    tcase_add_test(tc, load_foreign_layout);
    tcase_add_test(tc, writer);
    tcase_add_test(tc, corrupt_sizes);
    tcase_add_test(tc, corrupt_json);
    tcase_add_test(tc, corrupt_entries);
    tcase_add_test(tc, corrupt_offsets);
    tcase_add_test(tc, corrupt_files);
    tcase_add_test(tc, save_errors);
    tcase_add_test(tc, save_replaces_atomically);
    tcase_add_test(tc, failed_save_keeps_old_file);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(safetensors_suite)
