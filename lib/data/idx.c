/* IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain, read through zlib; and the
 * MNIST loader built on them. Every problem is reported with the file and the byte offset (of the
 * uncompressed content) where it was found. */
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_CHUNK (256 * 1024)

typedef struct {
    const char *op;
    char path[PATH_MAX];
    gzFile f;
    int64_t off;                  /* bytes of content consumed so far */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t numel;                /* data bytes the header declares (one byte per element) */
    int64_t file_size;            /* bytes on disk */
} idx_file;

/* deflate expands at most 1032:1; a little slack on top */
#define IDX_MAX_GZIP_RATIO 1040

#define IDX_FAIL(x, fmt, ...) nb_error("%s: %s: " fmt, (x)->op, (x)->path, __VA_ARGS__)

/* zlib's message, without the "path: " (or "<fd:N>: ") prefix gzerror adds */
static const char *gz_message(idx_file *x, int *errnum)
{
    const char *m = gzerror(x->f, errnum);
    if (*errnum == Z_ERRNO) return strerror(errno);
    size_t len = strlen(x->path);
    if (m && strncmp(m, x->path, len) == 0 && m[len] == ':' && m[len + 1] == ' ') m += len + 2;
    else if (m && strncmp(m, "<fd:", 4) == 0) { /* gzdopen names the file "<fd:N>" */
        const char *end = strstr(m, ">: ");
        if (end) m = end + 3;
    }
    return m && *m ? m : "unknown zlib error";
}

/* Reads up to n bytes; returns how many (fewer only at the end of the content), or -1 after
 * recording a read error (an I/O error, or a corrupt or cut-short gzip stream). */
static int64_t idx_raw_read(idx_file *x, void *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        unsigned want = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
        errno = 0;
        int k = gzread(x->f, (char *)buf + got, want);
        if (k < 0) {
            int errnum;
            const char *m = gz_message(x, &errnum);
            IDX_FAIL(x, "read error at offset %lld: %s", (long long)(x->off + got), m);
            return -1;
        }
        if (k == 0) break;
        got += k;
    }
    /* a gzip stream that stops mid-way ends the content early: report it where it happens */
    if (got < n) {
        int errnum;
        const char *m = gz_message(x, &errnum);
        if (errnum != Z_OK && errnum != Z_BUF_ERROR) {
            IDX_FAIL(x, "read error at offset %lld: %s", (long long)(x->off + got), m);
            return -1;
        }
    }
    x->off += got;
    return got;
}

/* Exactly n bytes of `what`, or "truncated at offset <start>: expected n bytes of <what>, got k" */
static int idx_read_exact(idx_file *x, void *buf, int64_t n, const char *what)
{
    int64_t start = x->off;
    int64_t got = idx_raw_read(x, buf, n);
    if (got < 0) return -1;
    if (got < n) {
        IDX_FAIL(x, "truncated at offset %lld: expected %lld bytes of %s, got %lld", (long long)start, (long long)n,
                 what, (long long)got);
        return -1;
    }
    return 0;
}

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "32-bit float";
    case 0x0E: return "64-bit float";
    }
    return NULL;
}

static void idx_close(idx_file *x)
{
    if (x->f) gzclose_r(x->f);
    x->f = NULL;
}

/* Opens path and validates the header: magic, data type, dimensions. */
static int idx_open(idx_file *x, const char *op, const char *path)
{
    memset(x, 0, sizeof *x);
    x->op = op;
    if (strlen(path) >= sizeof x->path) {
        nb_error("%s: path too long: %.64s...", op, path);
        return -1;
    }
    strcpy(x->path, path);
    errno = 0;
    int fd = nb_open_regular(path, &x->file_size);
    if (fd == -2) {
        IDX_FAIL(x, "%s", "not a regular file");
        return -1;
    }
    x->f = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!x->f) {
        IDX_FAIL(x, "cannot open: %s", errno ? strerror(errno) : "out of memory");
        if (fd >= 0) close(fd);
        return -1;
    }
    gzbuffer(x->f, 128 * 1024);

    uint8_t magic[4];
    if (idx_read_exact(x, magic, 4, "magic number") < 0) goto fail;
    if (magic[0] != 0 || magic[1] != 0) {
        IDX_FAIL(x, "bad magic number %02x %02x %02x %02x at offset 0: an IDX file starts with 00 00, the data type "
                 "and the number of dimensions", magic[0], magic[1], magic[2], magic[3]);
        goto fail;
    }
    if (magic[2] != 0x08) {
        const char *name = idx_type_name(magic[2]);
        if (name)
            IDX_FAIL(x, "data type 0x%02x (%s) at offset 2 is not supported: expected 0x08 (unsigned byte)", magic[2],
                     name);
        else
            IDX_FAIL(x, "unknown data type 0x%02x at offset 2: expected 0x08 (unsigned byte)", magic[2]);
        goto fail;
    }
    x->ndim = magic[3];
    if (x->ndim < 1 || x->ndim > NB_MAX_DIMS) {
        IDX_FAIL(x, "%d dimensions at offset 3: expected 1 to %d", x->ndim, NB_MAX_DIMS);
        goto fail;
    }
    uint8_t raw[4 * NB_MAX_DIMS];
    if (idx_read_exact(x, raw, 4 * x->ndim, "dimension sizes") < 0) goto fail;
    x->numel = 1;
    bool overflow = false;
    for (int i = 0; i < x->ndim; i++) {
        const uint8_t *p = raw + 4 * i;
        x->dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        if (x->dims[i] == 0) {
            IDX_FAIL(x, "dimension %d (at offset %d) is 0", i, 4 + 4 * i);
            goto fail;
        }
        /* the f64 tensor of all the elements must be addressable */
        if (x->numel > INT64_MAX / 8 / x->dims[i]) overflow = true;
        else x->numel *= x->dims[i];
    }
    if (overflow) {
        IDX_FAIL(x, "dimensions %s at offset 4 hold too many elements", nb_shape_text(x->ndim, x->dims));
        goto fail;
    }
    return 0;
fail:
    idx_close(x);
    return -1;
}

/* Whether the file is certainly too short for the x->numel data bytes its header declares (a plain
 * file: by its length; a gzip file: by the largest expansion deflate allows), checked before the
 * tensors are allocated so that a small file cannot make the reader allocate gigabytes. */
static bool idx_cannot_hold(idx_file *x)
{
    if (x->file_size < 0) return false;
    int64_t rest = x->file_size - x->off;
    if (rest < 0) rest = 0;
    if (gzdirect(x->f)) return x->numel > rest;
    return x->file_size < INT64_MAX / IDX_MAX_GZIP_RATIO - 4096 &&
           x->numel > x->file_size * IDX_MAX_GZIP_RATIO + 4096;
}

/* Reads the x->numel data bytes into the sink (checking each value < max_value when max_value > 0),
 * then checks that nothing follows them. A NULL sink discards the bytes: it finds the error of a
 * file idx_cannot_hold rejects, the same one reading it into tensors would report. */
static int idx_read_data(idx_file *x, nb_sink *sink, const char *what, int max_value)
{
    uint8_t *buf = malloc(IDX_CHUNK);
    if (!buf) {
        IDX_FAIL(x, "out of memory at offset %lld", (long long)x->off);
        return -1;
    }
    int64_t start = x->off, done = 0;
    while (done < x->numel) {
        int64_t want = x->numel - done < IDX_CHUNK ? x->numel - done : IDX_CHUNK;
        int64_t got = idx_raw_read(x, buf, want);
        if (got < 0) goto fail;
        if (got < want) {
            IDX_FAIL(x, "truncated at offset %lld: expected %lld bytes of %s, got %lld", (long long)start,
                     (long long)x->numel, what, (long long)(done + got));
            goto fail;
        }
        if (max_value > 0)
            for (int64_t i = 0; i < got; i++)
                if (buf[i] >= max_value) {
                    IDX_FAIL(x, "label %d at offset %lld (sample %lld) is out of range: labels must be < %d", buf[i],
                             (long long)(start + done + i), (long long)(done + i), max_value);
                    goto fail;
                }
        if (sink) nb_sink_put(sink, buf, got);
        done += got;
    }
    /* the content must end exactly here */
    int64_t end = x->off, extra = 0;
    for (;;) {
        int64_t got = idx_raw_read(x, buf, IDX_CHUNK);
        if (got < 0) goto fail;
        extra += got;
        if (got < IDX_CHUNK) break;
    }
    if (extra > 0) {
        IDX_FAIL(x, "%lld trailing byte%s at offset %lld: the header declares %s, %lld bytes of %s", (long long)extra,
                 extra == 1 ? "" : "s", (long long)end, nb_shape_text(x->ndim, x->dims), (long long)x->numel, what);
        goto fail;
    }
    /* all the data arrived but the gzip stream stops before its end (a cut download): its check
     * value was never verified */
    int errnum;
    const char *m = gz_message(x, &errnum);
    if (errnum == Z_BUF_ERROR) {
        IDX_FAIL(x, "gzip stream cut short at offset %lld: %s", (long long)end, m);
        goto fail;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

static bool check_dtype(const char *op, nb_dtype dt)
{
    if (dt == NB_F32 || dt == NB_F64 || dt == NB_I64) return true;
    nb_error("%s: unknown dtype %d", op, (int)dt);
    return false;
}

nb_tensor *nb_idx_read(const char *path, nb_dtype dt)
{
    const char *op = "nb_idx_read";
    if (!path) {
        nb_error("%s: NULL path", op);
        return NULL;
    }
    if (!check_dtype(op, dt)) return NULL;
    idx_file x;
    if (idx_open(&x, op, path) < 0) return NULL;
    nb_tensor *t = NULL;
    if (idx_cannot_hold(&x)) {
        if (idx_read_data(&x, NULL, "data", 0) == 0) /* cannot happen: the bound is safe */
            nb_error("%s: %s: truncated: the file is too short for %lld bytes of data", op, path, (long long)x.numel);
        goto fail;
    }
    t = nb_new_persistent(op, dt, x.ndim, x.dims);
    if (!t) goto fail;
    nb_sink sink;
    nb_sink_init(&sink, 1.0, t, NULL);
    if (idx_read_data(&x, &sink, "data", 0) < 0) goto fail;
    idx_close(&x);
    return t;
fail:
    nb_free(t);
    idx_close(&x);
    return NULL;
}

/* ---- MNIST / Fashion-MNIST ---- */

/* dir/name.gz when it exists, else dir/name; reports the .gz path when neither is there */
static int find_idx(const char *op, const char *dir, const char *name, char *out)
{
    char gz[PATH_MAX], plain[PATH_MAX];
    char gzname[128];
    snprintf(gzname, sizeof gzname, "%s.gz", name);
    if (nb_data_path(op, gz, sizeof gz, dir, gzname) < 0 || nb_data_path(op, plain, sizeof plain, dir, name) < 0)
        return -1;
    struct stat st;
    if (stat(gz, &st) == 0) {
        strcpy(out, gz);
        return 0;
    }
    int gz_errno = errno;
    if (stat(plain, &st) == 0 || errno != ENOENT || gz_errno != ENOENT) {
        /* plain exists, or something other than absence is wrong: let the open report it */
        strcpy(out, gz_errno != ENOENT ? gz : plain);
        return 0;
    }
    nb_error("%s: %s: cannot open: %s (nor %s)", op, gz, strerror(gz_errno), plain);
    return -1;
}

enum { TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS, MNIST_FILES };

int nb_dataset_load_mnist(nb_dataset *ds, const char *dir, nb_dtype dt, int64_t num_val)
{
    const char *op = "nb_dataset_load_mnist";
    static const char *const names[MNIST_FILES] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
    if (nb_data_check_load_args(op, ds, dir, dt, num_val)) return -1;

    idx_file f[MNIST_FILES];
    int opened = 0;
    for (; opened < MNIST_FILES; opened++) {
        char path[PATH_MAX];
        if (find_idx(op, dir, names[opened], path) < 0 || idx_open(&f[opened], op, path) < 0) goto fail;
        int want = opened % 2 == 0 ? 3 : 1;
        if (f[opened].ndim != want) {
            IDX_FAIL(&f[opened], "%d dimensions at offset 3: %s file must have %d (%s)", f[opened].ndim,
                     want == 3 ? "an image" : "a label", want, want == 3 ? "[N,H,W]" : "[N]");
            opened++;
            goto fail;
        }
    }
    for (int i = 0; i < MNIST_FILES; i += 2)
        if (f[i].dims[0] != f[i + 1].dims[0]) {
            nb_error("%s: %s holds %lld images but %s holds %lld labels", op, f[i].path, (long long)f[i].dims[0],
                     f[i + 1].path, (long long)f[i + 1].dims[0]);
            goto fail;
        }
    int64_t n = f[TRAIN_IMAGES].dims[0], h = f[TRAIN_IMAGES].dims[1], w = f[TRAIN_IMAGES].dims[2];
    if (f[TEST_IMAGES].dims[1] != h || f[TEST_IMAGES].dims[2] != w) {
        nb_error("%s: training images are %lldx%lld (%s) but test images are %lldx%lld (%s)", op, (long long)h,
                 (long long)w, f[TRAIN_IMAGES].path, (long long)f[TEST_IMAGES].dims[1],
                 (long long)f[TEST_IMAGES].dims[2], f[TEST_IMAGES].path);
        goto fail;
    }
    if (num_val >= n) {
        nb_error("%s: num_val %lld must be less than the %lld training samples", op, (long long)num_val,
                 (long long)n);
        goto fail;
    }

    /* a file too short for what its header declares fails here, before the allocation, with the
     * error reading the files in order would report (so the earlier files are read first) */
    static const char *const what[MNIST_FILES] = { "image data", "label data", "image data", "label data" };
    for (int i = 0; i < MNIST_FILES; i++)
        if (idx_cannot_hold(&f[i])) {
            for (int j = 0; j <= i; j++)
                if (idx_read_data(&f[j], NULL, what[j], j % 2 ? 10 : 0) < 0) goto fail;
            nb_error("%s: %s: truncated: the file is too short for %lld bytes of %s", op, f[i].path,
                     (long long)f[i].numel, what[i]); /* cannot happen: the bound is safe */
            goto fail;
        }

    int64_t nt = n - num_val, ntest = f[TEST_IMAGES].dims[0];
    ds->train_x = nb_new_persistent(op, dt, 4, (int64_t[]){ nt, 1, h, w });
    ds->val_x = nb_new_persistent(op, dt, 4, (int64_t[]){ num_val, 1, h, w });
    ds->test_x = nb_new_persistent(op, dt, 4, (int64_t[]){ ntest, 1, h, w });
    ds->train_y = nb_new_persistent(op, NB_I64, 1, &nt);
    ds->val_y = nb_new_persistent(op, NB_I64, 1, &num_val);
    ds->test_y = nb_new_persistent(op, NB_I64, 1, &ntest);
    if (!ds->train_x || !ds->val_x || !ds->test_x || !ds->train_y || !ds->val_y || !ds->test_y) goto fail;

    nb_sink s;
    nb_sink_init(&s, 255.0, ds->train_x, ds->val_x);
    if (idx_read_data(&f[TRAIN_IMAGES], &s, "image data", 0) < 0) goto fail;
    nb_sink_init(&s, 1.0, ds->train_y, ds->val_y);
    if (idx_read_data(&f[TRAIN_LABELS], &s, "label data", 10) < 0) goto fail;
    nb_sink_init(&s, 255.0, ds->test_x, NULL);
    if (idx_read_data(&f[TEST_IMAGES], &s, "image data", 0) < 0) goto fail;
    nb_sink_init(&s, 1.0, ds->test_y, NULL);
    if (idx_read_data(&f[TEST_LABELS], &s, "label data", 10) < 0) goto fail;

    for (int i = 0; i < MNIST_FILES; i++) idx_close(&f[i]);
    ds->num_classes = 10;
    ds->name = "mnist";
    return 0;
fail:
    for (int i = 0; i < opened; i++) idx_close(&f[i]);
    nb_dataset_free(ds);
    return -1;
}
