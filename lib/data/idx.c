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

/* The content is the file's bytes, or the bytes inflated from its gzip members (read with zlib's
 * inflate, not gzread, so that the end of the stream is known exactly: bytes after it are an error,
 * while gzread ignores them). */
typedef struct {
    const char *op;
    char path[PATH_MAX];
    int fd;                       /* -1 when closed */
    int64_t file_size;            /* bytes on disk */
    bool gzip;
    z_stream z;
    bool z_ready;                 /* inflateInit2 done */
    bool ended;                   /* the last gzip member ended with the file */
    bool cut;                     /* the file ended inside a gzip member */
    bool member_start;            /* a member ended, inflate was reset: what follows must be another */
    int64_t member_end;           /* the file offset where the last member ended */
    uint8_t *in;                  /* compressed bytes read ahead, IDX_CHUNK of them */
    int64_t in_off;               /* file bytes read into `in` so far */
    int64_t off;                  /* bytes of content consumed so far */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t numel;                /* data bytes the header declares (one byte per element) */
} idx_file;

#define IDX_FAIL(x, fmt, ...) nb_error("%s: %s: " fmt, (x)->op, (x)->path, __VA_ARGS__)

/* up to n bytes of the file (fewer only at its end), or -1 with errno set */
static int64_t read_file(int fd, void *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        const ssize_t k = read(fd, (char *)buf + got, (size_t)(n - got < (1 << 30) ? n - got : 1 << 30));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        got += k;
    }
    return got;
}

static int64_t after_stream(idx_file *x)
{
    const int64_t n = x->file_size - x->member_end;
    IDX_FAIL(x, "%lld byte%s after the end of the gzip stream at file offset %lld (the file has %lld)", (long long)n,
             n == 1 ? "" : "s", (long long)x->member_end, (long long)x->file_size);
    return -1;
}

/* Inflates up to n bytes of content into buf. A member's end is followed by another member, by the
 * end of the file (x->ended), or by anything else: an error naming those bytes. The file ending
 * inside a member sets x->cut and returns what arrived. */
static int64_t inflate_some(idx_file *x, uint8_t *buf, int64_t n)
{
    z_stream *z = &x->z;
    int64_t got = 0;
    while (got < n && !x->ended && !x->cut) {
        if (z->avail_in == 0) {
            const int64_t k = read_file(x->fd, x->in, IDX_CHUNK);
            if (k < 0) {
                IDX_FAIL(x, "read error at offset %lld: %s", (long long)(x->off + got), strerror(errno));
                return -1;
            }
            if (k == 0 && x->member_start && z->total_in > 0) return after_stream(x);   /* part of a header */
            if (k == 0) {
                if (x->member_start) x->ended = true;   /* the previous member was the last */
                else x->cut = true;
                break;
            }
            z->next_in = x->in;
            z->avail_in = (uInt)k;
            x->in_off += k;
        }
        const int64_t room = n - got < UINT_MAX ? n - got : UINT_MAX;
        z->next_out = buf + got;
        z->avail_out = (uInt)room;
        const int rc = inflate(z, Z_NO_FLUSH);
        const int64_t made = room - z->avail_out;
        got += made;
        if (made > 0) x->member_start = false;
        if (rc == Z_STREAM_END) {   /* inflate again from a clean state: another member may follow */
            x->member_end = x->in_off - z->avail_in;
            inflateReset(z);
            x->member_start = true;
            continue;
        }
        if (rc == Z_DATA_ERROR && x->member_start) return after_stream(x);   /* not a gzip header */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            IDX_FAIL(x, "read error at offset %lld: %s", (long long)(x->off + got),
                     rc == Z_MEM_ERROR ? "out of memory" : z->msg ? z->msg : "corrupt gzip data");
            return -1;
        }
    }
    return got;
}

/* Reads up to n bytes; returns how many (fewer only at the end of the content), or -1 after
 * recording a read error (an I/O error, corrupt gzip data, bytes after the gzip stream). */
static int64_t idx_raw_read(idx_file *x, void *buf, int64_t n)
{
    int64_t got = x->gzip ? inflate_some(x, buf, n) : read_file(x->fd, buf, n);
    if (got < 0 && !x->gzip) IDX_FAIL(x, "read error at offset %lld: %s", (long long)x->off, strerror(errno));
    if (got < 0) return -1;
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
    if (x->z_ready) inflateEnd(&x->z);
    if (x->fd >= 0) close(x->fd);
    free(x->in);
    x->z_ready = false;
    x->fd = -1;
    x->in = NULL;
}

/* Opens path and validates the header: magic, data type, dimensions. */
static int idx_open(idx_file *x, const char *op, const char *path)
{
    memset(x, 0, sizeof *x);
    x->op = op;
    x->fd = -1;
    if (strlen(path) >= sizeof x->path) {
        nb_error("%s: path too long: %.64s...", op, path);
        return -1;
    }
    strcpy(x->path, path);
    errno = 0;
    x->fd = nb_open_regular(path, &x->file_size);
    if (x->fd == -2) {
        x->fd = -1;
        IDX_FAIL(x, "%s", "not a regular file");
        return -1;
    }
    if (x->fd < 0) {
        IDX_FAIL(x, "cannot open: %s", strerror(errno));
        return -1;
    }
    /* gzip's magic 1f 8b starts a compressed file; anything else is read as it is */
    uint8_t head[2];
    const int64_t k = read_file(x->fd, head, 2);
    x->gzip = k == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (k < 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
        IDX_FAIL(x, "read error at offset 0: %s", strerror(errno));
        goto fail;
    }
    if (x->gzip) {
        x->in = malloc(IDX_CHUNK);
        x->z_ready = x->in && inflateInit2(&x->z, 16 + MAX_WBITS) == Z_OK;   /* 16: gzip members only */
        if (!x->z_ready) {
            IDX_FAIL(x, "%s", "out of memory");
            goto fail;
        }
    }

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

/* The x->numel data bytes (each < max_value when max_value > 0), and nothing after them: a buffer
 * the caller frees, or NULL with the error recorded. The buffer grows as the bytes arrive, to at most
 * twice what arrived, so a header that declares more than the file holds never makes the reader
 * allocate it, whatever padding follows. */
static uint8_t *idx_read_data(idx_file *x, const char *what, int max_value)
{
    int64_t start = x->off, done = 0, cap = x->numel < IDX_CHUNK ? x->numel : IDX_CHUNK;
    uint8_t *data = malloc((size_t)cap), *extra = malloc(IDX_CHUNK);
    if (!data || !extra) {
        IDX_FAIL(x, "out of memory at offset %lld", (long long)x->off);
        goto fail;
    }
    while (done < x->numel) {
        if (done == cap) {
            cap = x->numel / 2 > cap ? 2 * cap : x->numel;
            uint8_t *grown = realloc(data, (size_t)cap);
            if (!grown) {
                IDX_FAIL(x, "out of memory at offset %lld (%lld bytes of %s)", (long long)x->off, (long long)cap, what);
                goto fail;
            }
            data = grown;
        }
        int64_t got = idx_raw_read(x, data + done, cap - done);
        if (got < 0) goto fail;
        if (max_value > 0)
            for (int64_t i = done; i < done + got; i++)
                if (data[i] >= max_value) {
                    IDX_FAIL(x, "label %d at offset %lld (sample %lld) is out of range: labels must be < %d", data[i],
                             (long long)(start + i), (long long)i, max_value);
                    goto fail;
                }
        done += got;
        if (done < cap) {
            IDX_FAIL(x, "truncated at offset %lld: expected %lld bytes of %s, got %lld", (long long)start,
                     (long long)x->numel, what, (long long)done);
            goto fail;
        }
    }
    /* the content must end exactly here */
    int64_t end = x->off, trailing = 0;
    for (;;) {
        int64_t got = idx_raw_read(x, extra, IDX_CHUNK);
        if (got < 0) goto fail;
        trailing += got;
        if (got < IDX_CHUNK) break;
    }
    if (trailing > 0) {
        IDX_FAIL(x, "%lld trailing byte%s at offset %lld: the header declares %s, %lld bytes of %s", (long long)trailing,
                 trailing == 1 ? "" : "s", (long long)end, nb_shape_text(x->ndim, x->dims), (long long)x->numel, what);
        goto fail;
    }
    /* all the data arrived but the gzip stream stops before its end (a cut download): its check
     * value was never verified */
    if (x->cut) {
        IDX_FAIL(x, "gzip stream cut short at offset %lld: unexpected end of file", (long long)end);
        goto fail;
    }
    free(extra);
    return data;
fail:
    free(data);
    free(extra);
    return NULL;
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
    uint8_t *data = idx_read_data(&x, "data", 0);
    nb_tensor *t = data ? nb_new_persistent(op, dt, x.ndim, x.dims) : NULL;
    if (t) {
        nb_sink sink;
        nb_sink_init(&sink, 1.0, t, NULL);
        nb_sink_put(&sink, data, x.numel);
    }
    free(data);
    idx_close(&x);
    return t;
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

    /* each file's bytes read (and checked) in order, then converted into its tensors: a file too
     * short for its header fails before the tensors of its data are allocated */
    int64_t nt = n - num_val, ntest = f[TEST_IMAGES].dims[0];
    static const char *const what[MNIST_FILES] = { "image data", "label data", "image data", "label data" };
    for (int i = 0; i < MNIST_FILES; i++) {
        uint8_t *bytes = idx_read_data(&f[i], what[i], i % 2 ? 10 : 0);
        if (!bytes) goto fail;
        const bool labels = i % 2, test = i >= TEST_IMAGES;
        const nb_dtype t = labels ? NB_I64 : dt;
        const int nd = labels ? 1 : 4;
        nb_tensor *first = nb_new_persistent(op, t, nd, (int64_t[]){ test ? ntest : nt, 1, h, w });
        nb_tensor *second = test ? NULL : nb_new_persistent(op, t, nd, (int64_t[]){ num_val, 1, h, w });
        *(test ? (labels ? &ds->test_y : &ds->test_x) : (labels ? &ds->train_y : &ds->train_x)) = first;
        if (!test) *(labels ? &ds->val_y : &ds->val_x) = second;
        if (first && (test || second)) {
            nb_sink sink;
            nb_sink_init(&sink, labels ? 1.0 : 255.0, first, second);
            nb_sink_put(&sink, bytes, f[i].numel);
        }
        free(bytes);
        if (!first || (!test && !second)) goto fail;
    }
    for (int i = 0; i < MNIST_FILES; i++) idx_close(&f[i]);
    ds->num_classes = 10;
    ds->name = "mnist";
    return 0;
fail:
    for (int i = 0; i < opened; i++) idx_close(&f[i]);
    nb_dataset_free(ds);
    return -1;
}
