/* Data sets: IDX files (plain and gzip'd) and every way they can be corrupt, CIFAR-10 batch files,
 * the MNIST and CIFAR-10 loaders with their validation split, the real Fashion-MNIST when installed,
 * preprocessing, minibatches (shuffle, sample, sequential; determinism; augmentation) and row views.
 * Fixture files are written at run time into a fresh temporary folder per test case. */
#include "nbtest.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- fixtures: a temporary folder per test case (made and removed in the parent process) ---- */

static char g_dir[64];

static void dir_setup(void)
{
    strcpy(g_dir, "/tmp/nabla-test-data-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void dir_teardown(void) { nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* g_dir/name in a rotating buffer */
static const char *at(const char *name)
{
    static char ring[8][512];
    static unsigned next;
    char *p = ring[next++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static void make_subdir(const char *name) { ck_assert_int_eq(mkdir(at(name), 0700), 0); }

/* writes n bytes to g_dir/name, gzip-compressed when gz */
static void write_file(const char *name, const void *bytes, size_t n, bool gz)
{
    const char *path = at(name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n) ck_assert_int_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static size_t file_size(const char *name)
{
    struct stat st;
    ck_assert_int_eq(stat(at(name), &st), 0);
    return (size_t)st.st_size;
}

/* An IDX file: magic 00 00 type ndim, big-endian dims, then `extra` bytes of data (which may be more
 * or fewer than the dims declare); data[i] = value(i). Returns the byte count in *len; malloc'd. */
static uint8_t *idx_bytes(int type, int ndim, const uint32_t *dims, size_t ndata, size_t *len, uint8_t (*value)(size_t))
{
    size_t head = 4 + 4 * (size_t)ndim;
    uint8_t *b = malloc(head + ndata + 1);
    b[0] = 0, b[1] = 0, b[2] = (uint8_t)type, b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        b[7 + 4 * i] = (uint8_t)dims[i];
    }
    for (size_t i = 0; i < ndata; i++) b[head + i] = value(i);
    *len = head + ndata;
    return b;
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + 3); }
static uint8_t digit(size_t i) { return (uint8_t)(i * 3 % 10); }
static uint8_t noise(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static void write_idx(const char *name, bool gz, int ndim, const uint32_t *dims, size_t ndata, uint8_t (*value)(size_t))
{
    size_t len;
    uint8_t *b = idx_bytes(0x08, ndim, dims, ndata, &len, value);
    write_file(name, b, len, gz);
    free(b);
}

/* nb_last_error() is "<op>: <g_dir>/<name>: <rest>" */
#define assert_file_error(op, name, rest)                                                                    \
    do {                                                                                                     \
        char expect_[1024];                                                                                  \
        snprintf(expect_, sizeof expect_, "%s: %s: %s", op, at(name), rest);                                 \
        ck_assert_str_eq(nb_last_error(), expect_);                                                          \
    } while (0)

/* nb_idx_read(name) fails with "nb_idx_read: <path>: <rest>" */
#define assert_idx_error(name, rest)                                                                         \
    do {                                                                                                     \
        nb_clear_error();                                                                                    \
        ck_assert_ptr_null(nb_idx_read(at(name), NB_F32));                                                   \
        assert_file_error("nb_idx_read", name, rest);                                                        \
    } while (0)

/* ---- IDX files ---- */

START_TEST(idx_read_values)
{
    const uint32_t dims[3] = { 2, 3, 4 };
    write_idx("plain.idx", false, 3, dims, 24, pattern);
    write_idx("packed.idx.gz", true, 3, dims, 24, pattern);
    const char *names[2] = { "plain.idx", "packed.idx.gz" };
    double expected[24];
    for (int i = 0; i < 24; i++) expected[i] = pattern((size_t)i);
    for (int f = 0; f < 2; f++)
        for (int dt = NB_F32; dt <= NB_I64; dt++) {
            nb_tensor *t = nb_idx_read(at(names[f]), (nb_dtype)dt);
            ck_assert_msg(t != NULL, "%s", nb_last_error());
            ck_assert_int_eq(t->dtype, dt);
            nbt_assert_shape(t, 2, 3, 4);
            ck_assert_ptr_null(t->scope); /* persistent: survives a scope reset */
            nb_scope_reset(NULL);
            nbt_assert_values(t, expected, 0);
            nb_free(t);
        }
    /* a 1-D label file */
    write_idx("labels.idx", false, 1, (uint32_t[]){ 7 }, 7, digit);
    nb_tensor *y = nb_idx_read(at("labels.idx"), NB_I64);
    nbt_assert_shape(y, 7);
    nbt_assert_values(y, ((double[]){ 0, 3, 6, 9, 2, 5, 8 }), 0);
    nb_free(y);
    /* a big gzip'd file read in several chunks */
    const uint32_t big[2] = { 1000, 1000 };
    write_idx("big.idx.gz", true, 2, big, 1000000, noise);
    nb_tensor *b = nb_idx_read(at("big.idx.gz"), NB_F32);
    nbt_assert_shape(b, 1000, 1000);
    const float *v = b->data;
    for (size_t i = 0; i < 1000000; i++)
        if (v[i] != noise(i)) ck_abort_msg("element %zu: %g != %d", i, v[i], noise(i));
    nb_free(b);
}
END_TEST

START_TEST(idx_header_errors)
{
    const uint32_t dims[3] = { 2, 3, 4 };
    size_t len;
    uint8_t *b;

    ck_assert_ptr_null(nb_idx_read(at("missing.idx"), NB_F32));
    assert_file_error("nb_idx_read", "missing.idx", "cannot open: No such file or directory");

    /* wrong magic, plain and gzip'd */
    b = idx_bytes(0x08, 3, dims, 24, &len, pattern);
    b[0] = 0x01, b[1] = 0x02;
    write_file("magic.idx", b, len, false);
    write_file("magic.idx.gz", b, len, true);
    free(b);
    const char *magic = "bad magic number 01 02 08 03 at offset 0: an IDX file starts with 00 00, the data type and the "
                        "number of dimensions";
    assert_idx_error("magic.idx", magic);
    assert_idx_error("magic.idx.gz", magic);

    /* data types: a known but unsupported one, an unknown one */
    b = idx_bytes(0x0D, 3, dims, 96, &len, pattern);
    write_file("float.idx", b, len, false);
    b[2] = 0x07;
    write_file("type7.idx", b, len, false);
    free(b);
    assert_idx_error("float.idx", "data type 0x0d (32-bit float) at offset 2 is not supported: expected 0x08 (unsigned byte)");
    assert_idx_error("type7.idx", "unknown data type 0x07 at offset 2: expected 0x08 (unsigned byte)");

    /* number of dimensions */
    write_idx("ndim0.idx", false, 0, dims, 4, pattern);
    assert_idx_error("ndim0.idx", "0 dimensions at offset 3: expected 1 to 8");
    const uint32_t nine[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    write_idx("ndim9.idx", false, 9, nine, 1, pattern);
    assert_idx_error("ndim9.idx", "9 dimensions at offset 3: expected 1 to 8");

    /* a zero dimension; dimensions whose product overflows */
    write_idx("zero.idx", true, 3, (uint32_t[]){ 2, 0, 4 }, 0, pattern);
    assert_idx_error("zero.idx", "dimension 1 (at offset 8) is 0");
    const uint32_t huge[4] = { 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 2 };
    write_idx("huge.idx", false, 4, huge, 16, pattern);
    assert_idx_error("huge.idx", "dimensions [4294967295,4294967295,4294967295,2] at offset 4 hold too many elements");

    /* truncated headers */
    write_file("short.idx", (uint8_t[]){ 0, 0 }, 2, false);
    assert_idx_error("short.idx", "truncated at offset 0: expected 4 bytes of magic number, got 2");
    write_file("empty.idx.gz", "", 0, true);
    assert_idx_error("empty.idx.gz", "truncated at offset 0: expected 4 bytes of magic number, got 0");
    b = idx_bytes(0x08, 3, dims, 0, &len, pattern);
    write_file("dims.idx", b, 9, false);
    write_file("dims.idx.gz", b, 9, true);
    free(b);
    assert_idx_error("dims.idx", "truncated at offset 4: expected 12 bytes of dimension sizes, got 5");
    assert_idx_error("dims.idx.gz", "truncated at offset 4: expected 12 bytes of dimension sizes, got 5");

    /* bad arguments */
    nbt_assert_error(nb_idx_read(NULL, NB_F32), "nb_idx_read: NULL path");
    write_idx("ok.idx", false, 3, dims, 24, pattern);
    nbt_assert_error(nb_idx_read(at("ok.idx"), (nb_dtype)7), "nb_idx_read: unknown dtype 7");
}
END_TEST

START_TEST(idx_data_errors)
{
    const uint32_t dims[3] = { 2, 3, 4 };
    /* too few and too many data bytes, plain and gzip'd: offsets count uncompressed content */
    for (int gz = 0; gz < 2; gz++) {
        const char *shortname = gz ? "short.idx.gz" : "short.idx";
        const char *longname = gz ? "long.idx.gz" : "long.idx";
        write_idx(shortname, gz, 3, dims, 10, pattern);
        assert_idx_error(shortname, "truncated at offset 16: expected 24 bytes of data, got 10");
        write_idx(longname, gz, 3, dims, 27, pattern);
        assert_idx_error(longname, "3 trailing bytes at offset 40: the header declares [2,3,4], 24 bytes of data");
    }
    /* a directory, a FIFO (whose open used to block forever) are not files */
    make_subdir("folder");
    assert_idx_error("folder", "not a regular file");
    ck_assert_int_eq(mkfifo(at("fifo"), 0600), 0);
    assert_idx_error("fifo", "not a regular file");

    /* damaged gzip files: cut inside the compressed data, cut inside the trailer, a wrong check value */
    const uint32_t big[2] = { 100, 100 };
    size_t len;
    uint8_t *b = idx_bytes(0x08, 2, big, 10000, &len, noise);
    write_file("whole.gz", b, len, true);
    free(b);
    size_t zlen = file_size("whole.gz");
    uint8_t *z = malloc(zlen);
    FILE *f = fopen(at("whole.gz"), "rb");
    ck_assert_uint_eq(fread(z, 1, zlen, f), zlen);
    fclose(f);
    nb_tensor *whole = nb_idx_read(at("whole.gz"), NB_F64);
    nbt_assert_shape(whole, 100, 100);
    nb_free(whole);

    write_file("cut.gz", z, zlen - 100, false);
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_read(at("cut.gz"), NB_F32));
    char prefix[600];
    snprintf(prefix, sizeof prefix, "nb_idx_read: %s: truncated at offset 12: expected 10000 bytes of data, got ", at("cut.gz"));
    ck_assert_msg(strncmp(nb_last_error(), prefix, strlen(prefix)) == 0, "%s", nb_last_error());

    write_file("trailer.gz", z, zlen - 3, false); /* the data is all there, the size field is cut */
    assert_idx_error("trailer.gz", "gzip stream cut short at offset 10012: unexpected end of file");

    z[zlen - 8] ^= 0xFF; /* the CRC-32 of the content */
    write_file("crc.gz", z, zlen, false);
    /* zlib reads ahead, so the bad check value may surface before the data is consumed: the offset
     * is wherever reading stood then */
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_read(at("crc.gz"), NB_F32));
    snprintf(prefix, sizeof prefix, "nb_idx_read: %s: read error at offset ", at("crc.gz"));
    ck_assert_msg(strncmp(nb_last_error(), prefix, strlen(prefix)) == 0, "%s", nb_last_error());
    ck_assert_msg(strstr(nb_last_error(), ": incorrect data check") != NULL, "%s", nb_last_error());
    free(z);
}
END_TEST

/* the bytes appended to g_dir/dst (which exists) */
static void append_file(const char *dst, const void *bytes, size_t n)
{
    FILE *f = fopen(at(dst), "ab");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Bytes after the end of a gzip stream: an error naming them (zlib's gzread ignored them, and the old
 * reader's allocation bound grew with the file's size, so 4 MB of padding let a header declaring a
 * gigabyte of data be allocated before "truncated" was reported). Concatenated members are gzip. */
START_TEST(idx_gzip_stream_end)
{
    const uint32_t dims[3] = { 2, 3, 4 };
    size_t len;
    uint8_t *b = idx_bytes(0x08, 3, dims, 24, &len, pattern);
    write_file("ok.gz", b, len, true);
    const size_t zlen = file_size("ok.gz");
    char rest[256];

    /* padding of zeros, text, a lone byte of a gzip header */
    write_file("zeros.gz", b, len, true);
    static const uint8_t zeros[1000];
    append_file("zeros.gz", zeros, sizeof zeros);
    snprintf(rest, sizeof rest, "1000 bytes after the end of the gzip stream at file offset %zu (the file has %zu)", zlen,
             zlen + 1000);
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_read(at("zeros.gz"), NB_F32));
    assert_file_error("nb_idx_read", "zeros.gz", rest);
    write_file("text.gz", b, len, true);
    append_file("text.gz", "hello\n", 6);
    snprintf(rest, sizeof rest, "6 bytes after the end of the gzip stream at file offset %zu (the file has %zu)", zlen, zlen + 6);
    ck_assert_ptr_null(nb_idx_read(at("text.gz"), NB_F32));
    assert_file_error("nb_idx_read", "text.gz", rest);
    write_file("magic.gz", b, len, true);
    append_file("magic.gz", "\x1f", 1);
    snprintf(rest, sizeof rest, "1 byte after the end of the gzip stream at file offset %zu (the file has %zu)", zlen, zlen + 1);
    ck_assert_ptr_null(nb_idx_read(at("magic.gz"), NB_F32));
    assert_file_error("nb_idx_read", "magic.gz", rest);

    /* two members (the header in one, the data in the next): one content */
    write_file("two.gz", b, 16, true);
    write_file("second.gz", b + 16, len - 16, true);
    const size_t n2 = file_size("second.gz");
    uint8_t *second = malloc(n2);
    FILE *f = fopen(at("second.gz"), "rb");
    ck_assert_uint_eq(fread(second, 1, n2, f), n2);
    fclose(f);
    append_file("two.gz", second, n2);
    free(second);
    nb_tensor *t = nb_idx_read(at("two.gz"), NB_F64);
    nbt_assert_shape(t, 2, 3, 4);
    for (int64_t i = 0; i < 24; i++) ck_assert_double_eq(nb_get(t, i), pattern((size_t)i));
    nb_free(t);
    free(b);

    /* a header declaring 1 GiB of data, 100 bytes of it, then 4 MiB of padding: the error names the
     * padding, and the reader never holds more than twice what arrived (checked with an address
     * space limit where no sanitizer reserves shadow memory) */
    const uint32_t huge[3] = { 1024, 1024, 1024 };
    b = idx_bytes(0x08, 3, huge, 100, &len, pattern);
    write_file("padded.gz", b, len, true);
    free(b);
    const size_t zhuge = file_size("padded.gz");
    uint8_t *pad = calloc(1, 4 << 20);
    append_file("padded.gz", pad, 4 << 20);
    free(pad);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    struct rlimit lim = { 512 << 20, old.rlim_max };   /* far below the 4 GiB of an f32 [1024,1024,1024] */
    if (old.rlim_cur == RLIM_INFINITY) ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
#endif
    snprintf(rest, sizeof rest, "%d bytes after the end of the gzip stream at file offset %zu (the file has %zu)", 4 << 20,
             zhuge, zhuge + (4 << 20));
    nb_clear_error();
    ck_assert_ptr_null(nb_idx_read(at("padded.gz"), NB_F32));
    assert_file_error("nb_idx_read", "padded.gz", rest);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
#endif
}
END_TEST

/* ---- MNIST-format data sets ---- */

#define MN_TRAIN 7
#define MN_TEST 3
#define MN_H 3
#define MN_W 4
#define MN_PIX (MN_H * MN_W)

static uint8_t test_pixel(size_t i) { return (uint8_t)(255 - i * 5); }
static uint8_t test_label(size_t i) { return (uint8_t)(9 - i); }

/* a small MNIST-format folder g_dir/name: some files gzip'd, some plain */
static void write_mnist(const char *name)
{
    make_subdir(name);
    char p[256];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", name);
    write_idx(p, true, 3, (uint32_t[]){ MN_TRAIN, MN_H, MN_W }, MN_TRAIN * MN_PIX, pattern);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", name);
    write_idx(p, false, 1, (uint32_t[]){ MN_TRAIN }, MN_TRAIN, digit);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", name);
    write_idx(p, false, 3, (uint32_t[]){ MN_TEST, MN_H, MN_W }, MN_TEST * MN_PIX, test_pixel);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", name);
    write_idx(p, true, 1, (uint32_t[]){ MN_TEST }, MN_TEST, test_label);
}

START_TEST(mnist_load)
{
    write_mnist("mnist");
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        nb_dataset ds;
        int rc = nb_dataset_load_mnist(&ds, at("mnist"), (nb_dtype)dt, 2);
        ck_assert_msg(rc == 0, "%s", nb_last_error());
        ck_assert_str_eq(ds.name, "mnist");
        ck_assert_int_eq(ds.num_classes, 10);
        nbt_assert_shape(ds.train_x, 5, 1, MN_H, MN_W);
        nbt_assert_shape(ds.val_x, 2, 1, MN_H, MN_W);
        nbt_assert_shape(ds.test_x, 3, 1, MN_H, MN_W);
        nbt_assert_shape(ds.train_y, 5);
        nbt_assert_shape(ds.val_y, 2);
        nbt_assert_shape(ds.test_y, 3);
        ck_assert_int_eq(ds.train_x->dtype, dt);
        ck_assert_int_eq(ds.train_y->dtype, NB_I64);
        ck_assert_ptr_null(ds.mean_image);
        nb_scope_reset(NULL); /* everything is persistent */
        double x[MN_TRAIN * MN_PIX], y[MN_TRAIN], tx[MN_TEST * MN_PIX], ty[MN_TEST];
        for (int i = 0; i < MN_TRAIN * MN_PIX; i++) x[i] = pattern((size_t)i) / 255.0;
        for (int i = 0; i < MN_TRAIN; i++) y[i] = digit((size_t)i);
        for (int i = 0; i < MN_TEST * MN_PIX; i++) tx[i] = test_pixel((size_t)i) / 255.0;
        for (int i = 0; i < MN_TEST; i++) ty[i] = test_label((size_t)i);
        double tol = dt == NB_F32 ? 1e-7 : 0;
        nbt_assert_values(ds.train_x, x, tol);
        nbt_assert_values(ds.val_x, x + 5 * MN_PIX, tol); /* the last two training samples */
        nbt_assert_values(ds.test_x, tx, tol);
        nbt_assert_values(ds.train_y, y, 0);
        nbt_assert_values(ds.val_y, y + 5, 0);
        nbt_assert_values(ds.test_y, ty, 0);
        nb_dataset_free(&ds);
        ck_assert_ptr_null(ds.train_x);
        nb_dataset_free(&ds); /* twice is fine */
    }
    /* no validation split: 0 rows */
    nb_dataset ds;
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("mnist"), NB_F32, 0), 0);
    nbt_assert_shape(ds.train_x, MN_TRAIN, 1, MN_H, MN_W);
    nbt_assert_shape(ds.val_x, 0, 1, MN_H, MN_W);
    nbt_assert_shape(ds.val_y, 0);
    nb_dataset_free(&ds);
    /* a trailing slash; NAME.gz wins over NAME */
    write_idx("mnist/train-labels-idx1-ubyte.gz", true, 1, (uint32_t[]){ MN_TRAIN }, MN_TRAIN, test_label);
    char slash[600];
    snprintf(slash, sizeof slash, "%s/", at("mnist"));
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, slash, NB_F32, 0), 0);
    ck_assert_int_eq(nb_get(ds.train_y, 0), 9);
    ck_assert_int_eq(nb_get(ds.train_y, 6), 3);
    nb_dataset_free(&ds);
}
END_TEST

/* nb_dataset_load_mnist(dir) fails with "nb_dataset_load_mnist: <g_dir>/<file>: <rest>" and leaves ds zeroed */
static void assert_mnist_error(const char *dir, int64_t num_val, const char *file, const char *rest)
{
    nb_dataset ds;
    memset(&ds, 0xAB, sizeof ds);
    nb_clear_error();
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at(dir), NB_F32, num_val), -1);
    char name[256];
    snprintf(name, sizeof name, "%s/%s", dir, file);
    assert_file_error("nb_dataset_load_mnist", name, rest);
    nb_dataset zero;
    memset(&zero, 0, sizeof zero);
    ck_assert(memcmp(&ds, &zero, sizeof ds) == 0);
}

START_TEST(mnist_errors)
{
    char expect[2048];
    nb_dataset ds;
    /* a missing folder or file: the .gz name and the plain name */
    make_subdir("none");
    snprintf(expect, sizeof expect, "cannot open: No such file or directory (nor %s)", at("none/train-images-idx3-ubyte"));
    assert_mnist_error("none", 0, "train-images-idx3-ubyte.gz", expect);

    /* a label out of range */
    write_mnist("badlabel");
    write_idx("badlabel/train-labels-idx1-ubyte", false, 1, (uint32_t[]){ MN_TRAIN }, MN_TRAIN, pattern);
    write_file("badlabel/train-labels-idx1-ubyte.gz", "", 0, false); /* also: an empty .gz wins */
    assert_mnist_error("badlabel", 0, "train-labels-idx1-ubyte.gz",
                       "truncated at offset 0: expected 4 bytes of magic number, got 0");
    remove(at("badlabel/train-labels-idx1-ubyte.gz"));
    assert_mnist_error("badlabel", 0, "train-labels-idx1-ubyte",
                       "label 10 at offset 9 (sample 1) is out of range: labels must be < 10");

    /* truncated image data, in the validation part */
    write_mnist("short");
    write_idx("short/train-images-idx3-ubyte.gz", true, 3, (uint32_t[]){ MN_TRAIN, MN_H, MN_W }, 80, pattern);
    assert_mnist_error("short", 2, "train-images-idx3-ubyte.gz",
                       "truncated at offset 16: expected 84 bytes of image data, got 80");

    /* a label file with the image file's shape; trailing bytes in a test file */
    write_mnist("shape");
    write_idx("shape/t10k-labels-idx1-ubyte.gz", true, 3, (uint32_t[]){ MN_TEST, MN_H, MN_W }, MN_TEST * MN_PIX, digit);
    assert_mnist_error("shape", 0, "t10k-labels-idx1-ubyte.gz", "3 dimensions at offset 3: a label file must have 1 ([N])");
    write_mnist("tail");
    write_idx("tail/t10k-images-idx3-ubyte", false, 3, (uint32_t[]){ MN_TEST, MN_H, MN_W }, MN_TEST * MN_PIX + 1, digit);
    assert_mnist_error("tail", 0, "t10k-images-idx3-ubyte",
                       "1 trailing byte at offset 52: the header declares [3,3,4], 36 bytes of image data");

    /* messages that name two files, or none */
    write_mnist("count");
    write_idx("count/train-labels-idx1-ubyte", false, 1, (uint32_t[]){ MN_TRAIN - 1 }, MN_TRAIN - 1, digit);
    nb_clear_error();
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("count"), NB_F32, 0), -1);
    snprintf(expect, sizeof expect, "nb_dataset_load_mnist: %s holds 7 images but %s holds 6 labels",
             at("count/train-images-idx3-ubyte.gz"), at("count/train-labels-idx1-ubyte"));
    ck_assert_str_eq(nb_last_error(), expect);

    write_mnist("size");
    write_idx("size/t10k-images-idx3-ubyte", false, 3, (uint32_t[]){ MN_TEST, 4, 3 }, MN_TEST * MN_PIX, digit);
    nb_clear_error();
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("size"), NB_F32, 0), -1);
    snprintf(expect, sizeof expect, "nb_dataset_load_mnist: training images are 3x4 (%s) but test images are 4x3 (%s)",
             at("size/train-images-idx3-ubyte.gz"), at("size/t10k-images-idx3-ubyte"));
    ck_assert_str_eq(nb_last_error(), expect);

    write_mnist("ok");
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("ok"), NB_F32, 7), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_mnist: num_val 7 must be less than the 7 training samples");
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("ok"), NB_F32, -1), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_mnist: num_val must be >= 0, got -1");
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, at("ok"), NB_I64, 0), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_mnist: images must be f32 or f64, got i64");
    ck_assert_int_eq(nb_dataset_load_mnist(&ds, NULL, NB_F32, 0), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_mnist: NULL directory");
    ck_assert_int_eq(nb_dataset_load_mnist(NULL, at("ok"), NB_F32, 0), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_mnist: NULL data set");
}
END_TEST

/* ---- the real Fashion-MNIST (Debian's dataset-fashion-mnist), when installed ---- */

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

START_TEST(fashion_mnist)
{
    struct stat st;
    if (stat(FASHION_DIR "/train-images-idx3-ubyte.gz", &st) != 0) {
        fprintf(stderr, "fashion_mnist: %s not installed, skipped\n", FASHION_DIR);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nb_dataset ds;
    int rc = nb_dataset_load_mnist(&ds, FASHION_DIR, NB_F32, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(rc == 0, "%s", nb_last_error());
    fprintf(stderr, "fashion_mnist: loaded in %.3f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    nbt_assert_shape(ds.train_x, 60000, 1, 28, 28);
    nbt_assert_shape(ds.train_y, 60000);
    nbt_assert_shape(ds.test_x, 10000, 1, 28, 28);
    nbt_assert_shape(ds.test_y, 10000);
    nbt_assert_shape(ds.val_x, 0, 1, 28, 28);
    /* the first training and test images are both class 9, "Ankle boot" */
    ck_assert_int_eq(nb_get(ds.train_y, 0), 9);
    ck_assert_int_eq(nb_get(ds.test_y, 0), 9);
    /* pixels span [0,1] exactly; the mean training pixel is 0.2860 (72.94/255) */
    const float *x = ds.train_x->data;
    double lo = 1, hi = 0, sum = 0;
    for (int64_t i = 0; i < nb_numel(ds.train_x); i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sum += x[i];
    }
    ck_assert_double_eq(lo, 0);
    ck_assert_double_eq(hi, 1);
    ck_assert_double_eq_tol(sum / (double)nb_numel(ds.train_x), 0.28604, 1e-4);
    /* labels: 6000 of each class */
    int64_t counts[10] = { 0 };
    const int64_t *y = ds.train_y->data;
    for (int64_t i = 0; i < 60000; i++) counts[y[i]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(counts[c], 6000);
    nb_dataset_free(&ds);
}
END_TEST

/* ---- CIFAR-10 ---- */

#define REC 3073

/* record r: label (r*3+off) % 10; pixel (c,i,j) = (r + 5c + 7i + 11j + off) % 256 */
static uint8_t *cifar_bytes(int64_t records, int off)
{
    uint8_t *b = calloc((size_t)(records * REC) + 16, 1);
    for (int64_t r = 0; r < records; r++) {
        uint8_t *rec = b + r * REC;
        rec[0] = (uint8_t)((r * 3 + off) % 10);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++) rec[1 + c * 1024 + i * 32 + j] = (uint8_t)((r + 5 * c + 7 * i + 11 * j + off) % 256);
    }
    return b;
}

static void write_cifar(const char *name, int64_t records, int off)
{
    uint8_t *b = cifar_bytes(records, off);
    write_file(name, b, (size_t)(records * REC), false);
    free(b);
}

/* x [n,3,32,32] and y [n] hold records [first, first+n) of a file written with `off`, scaled */
static void assert_cifar_rows(const nb_tensor *x, const nb_tensor *y, int64_t row0, int64_t first, int64_t n, int off,
                              double scale)
{
    for (int64_t r = 0; r < n; r++) {
        int64_t rec = first + r;
        ck_assert_int_eq(nb_get(y, row0 + r), (rec * 3 + off) % 10);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 32; i += 5)
                for (int j = 0; j < 32; j += 3) {
                    double got = nb_get(x, (((row0 + r) * 3 + c) * 32 + i) * 32 + j);
                    double want = (double)((rec + 5 * c + 7 * i + 11 * j + off) % 256) * scale;
                    ck_assert_msg(fabs(got - want) < 1e-6, "record %lld (%d,%d,%d): %g != %g", (long long)rec, c, i, j, got, want);
                }
    }
}

START_TEST(cifar_read_file)
{
    write_cifar("three.bin", 3, 0);
    nb_tensor *x, *y;
    for (int64_t records = 0; records <= 3; records += 3) {
        ck_assert_msg(nb_cifar_read(at("three.bin"), NB_F64, records, &x, &y) == 0, "%s", nb_last_error());
        nbt_assert_shape(x, 3, 3, 32, 32);
        nbt_assert_shape(y, 3);
        ck_assert_ptr_null(x->scope);
        ck_assert_int_eq(y->dtype, NB_I64);
        assert_cifar_rows(x, y, 0, 0, 3, 0, 1.0);
        /* the red plane comes first: pixel (1, 0, 0) of record 2 is 2 + 5 */
        ck_assert_double_eq(nb_get(x, 2 * 3072 + 1024), 7);
        nb_free(x);
        nb_free(y);
    }
}
END_TEST

START_TEST(cifar_file_errors)
{
    nb_tensor *x = (nb_tensor *)1, *y = (nb_tensor *)1;
    /* lengths: not whole records, fewer or more records than expected, empty */
    uint8_t *b = cifar_bytes(3, 0);
    write_file("odd.bin", b, 3 * REC + 5, false);
    ck_assert_int_eq(nb_cifar_read(at("odd.bin"), NB_F32, 0, &x, &y), -1);
    ck_assert_ptr_null(x);
    ck_assert_ptr_null(y);
    assert_file_error("nb_cifar_read", "odd.bin",
                      "length 9224 is not a multiple of the 3073-byte record (1 label byte + 3072 pixel bytes): 5 bytes "
                      "left over at offset 9219");
    write_file("three.bin", b, 3 * REC, false);
    ck_assert_int_eq(nb_cifar_read(at("three.bin"), NB_F32, 4, &x, &y), -1);
    assert_file_error("nb_cifar_read", "three.bin", "truncated at offset 9219: expected 12292 bytes (4 records of 3073 bytes), got 9219");
    ck_assert_int_eq(nb_cifar_read(at("three.bin"), NB_F32, 2, &x, &y), -1);
    assert_file_error("nb_cifar_read", "three.bin", "3073 trailing bytes at offset 6146: expected 2 records of 3073 bytes");
    /* a record count whose byte size overflows (it reported a negative offset) */
    ck_assert_int_eq(nb_cifar_read(at("three.bin"), NB_F32, INT64_MAX / 1000, &x, &y), -1);
    assert_file_error("nb_cifar_read", "three.bin",
                      "9223372036854775 records of 3073 bytes cannot be in a file (their size overflows); the file has 9219 bytes");
    write_file("empty.bin", b, 0, false);
    ck_assert_int_eq(nb_cifar_read(at("empty.bin"), NB_F32, 0, &x, &y), -1);
    assert_file_error("nb_cifar_read", "empty.bin", "empty file: expected records of 3073 bytes");
    /* a label out of range in record 2 */
    b[2 * REC] = 10;
    write_file("label.bin", b, 3 * REC, false);
    free(b);
    ck_assert_int_eq(nb_cifar_read(at("label.bin"), NB_F32, 3, &x, &y), -1);
    assert_file_error("nb_cifar_read", "label.bin", "label 10 at offset 6146 (record 2) is out of range: labels must be < 10");
    /* missing, a folder, bad arguments */
    ck_assert_int_eq(nb_cifar_read(at("missing.bin"), NB_F32, 0, &x, &y), -1);
    assert_file_error("nb_cifar_read", "missing.bin", "cannot open: No such file or directory");
    make_subdir("folder.bin");
    ck_assert_int_eq(nb_cifar_read(at("folder.bin"), NB_F32, 0, &x, &y), -1);
    assert_file_error("nb_cifar_read", "folder.bin", "not a regular file");
    ck_assert_int_eq(nb_cifar_read(at("three.bin"), NB_F32, -1, &x, &y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_cifar_read: records must be >= 0, got -1");
    ck_assert_int_eq(nb_cifar_read(at("three.bin"), NB_F32, 0, NULL, &y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_cifar_read: NULL output");
}
END_TEST

/* a CIFAR-10-format folder with `records` records per file; file k written with off = k */
static void write_cifar_dir(const char *dir, int64_t records)
{
    make_subdir(dir);
    char p[256];
    for (int k = 1; k <= 5; k++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, k);
        write_cifar(p, records, k);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    write_cifar(p, records, 6);
}

START_TEST(cifar_load)
{
    write_cifar_dir("c10", 2);
    nb_dataset ds;
    ck_assert_msg(nb_dataset_load_cifar10_records(&ds, at("c10"), NB_F32, 3, 2) == 0, "%s", nb_last_error());
    ck_assert_str_eq(ds.name, "cifar10");
    ck_assert_int_eq(ds.num_classes, 10);
    nbt_assert_shape(ds.train_x, 7, 3, 32, 32);
    nbt_assert_shape(ds.val_x, 3, 3, 32, 32);
    nbt_assert_shape(ds.test_x, 2, 3, 32, 32);
    nbt_assert_shape(ds.train_y, 7);
    nb_scope_reset(NULL);
    /* training records in file order: batch k holds rows 2(k-1), 2(k-1)+1; the validation split
     * is the last three: batch 4's second record and batch 5 */
    for (int k = 1; k <= 3; k++) assert_cifar_rows(ds.train_x, ds.train_y, 2 * (k - 1), 0, 2, k, 1 / 255.0);
    assert_cifar_rows(ds.train_x, ds.train_y, 6, 0, 1, 4, 1 / 255.0);
    assert_cifar_rows(ds.val_x, ds.val_y, 0, 1, 1, 4, 1 / 255.0);
    assert_cifar_rows(ds.val_x, ds.val_y, 1, 0, 2, 5, 1 / 255.0);
    assert_cifar_rows(ds.test_x, ds.test_y, 0, 0, 2, 6, 1 / 255.0);
    nb_dataset_free(&ds);

    /* the parent of cifar-10-batches-bin works too; any records per file with 0 */
    make_subdir("parent");
    ck_assert_int_eq(rename(at("c10"), at("parent/cifar-10-batches-bin")), 0);
    ck_assert_msg(nb_dataset_load_cifar10_records(&ds, at("parent"), NB_F64, 0, 0) == 0, "%s", nb_last_error());
    nbt_assert_shape(ds.train_x, 10, 3, 32, 32);
    ck_assert_int_eq(ds.train_x->dtype, NB_F64);
    assert_cifar_rows(ds.train_x, ds.train_y, 8, 0, 2, 5, 1 / 255.0);
    nb_dataset_free(&ds);

    /* the official loader wants 10000 records per file */
    ck_assert_int_eq(nb_dataset_load_cifar10(&ds, at("parent"), NB_F32, 0), -1);
    assert_file_error("nb_dataset_load_cifar10", "parent/cifar-10-batches-bin/data_batch_1.bin",
                      "truncated at offset 6146: expected 30730000 bytes (10000 records of 3073 bytes), got 6146");
    ck_assert_ptr_null(ds.train_x);
}
END_TEST

START_TEST(cifar_load_errors)
{
    nb_dataset ds;
    /* a bad label in the third batch: named by file and offset, nothing leaked, ds zeroed */
    write_cifar_dir("label", 2);
    uint8_t *b = cifar_bytes(2, 3);
    b[REC] = 200;
    write_file("label/data_batch_3.bin", b, 2 * REC, false);
    free(b);
    ck_assert_int_eq(nb_dataset_load_cifar10_records(&ds, at("label"), NB_F32, 0, 2), -1);
    assert_file_error("nb_dataset_load_cifar10", "label/data_batch_3.bin",
                      "label 200 at offset 3073 (record 1) is out of range: labels must be < 10");
    ck_assert_ptr_null(ds.train_x);
    /* a missing test batch; a length that is not whole records */
    write_cifar_dir("missing", 2);
    remove(at("missing/test_batch.bin"));
    ck_assert_int_eq(nb_dataset_load_cifar10_records(&ds, at("missing"), NB_F32, 0, 2), -1);
    assert_file_error("nb_dataset_load_cifar10", "missing/test_batch.bin", "cannot open: No such file or directory");
    write_cifar_dir("odd", 2);
    b = cifar_bytes(2, 2);
    write_file("odd/data_batch_2.bin", b, 2 * REC - 1, false);
    free(b);
    ck_assert_int_eq(nb_dataset_load_cifar10_records(&ds, at("odd"), NB_F32, 0, 0), -1);
    assert_file_error("nb_dataset_load_cifar10", "odd/data_batch_2.bin",
                      "length 6145 is not a multiple of the 3073-byte record (1 label byte + 3072 pixel bytes): 3072 "
                      "bytes left over at offset 3073");
    /* arguments */
    ck_assert_int_eq(nb_dataset_load_cifar10_records(&ds, at("label"), NB_F32, 10, 2), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_cifar10: num_val 10 must be less than the 10 training samples");
    ck_assert_int_eq(nb_dataset_load_cifar10(&ds, at("label"), NB_I64, 0), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_load_cifar10: images must be f32 or f64, got i64");
}
END_TEST

/* ---- preprocessing ---- */

/* a data set of random persistent tensors: train [20,3,4,5], val [4,...], test [6,...] */
static nb_dataset random_dataset(nb_dtype dt, uint64_t seed)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.train_x = nb_persist(nb_add_scalar(nb_randn(dt, NB_SHAPE(20, 3, 4, 5), &rng, 2.0), 3.0));
    ds.val_x = nb_persist(nb_rand(dt, NB_SHAPE(4, 3, 4, 5), &rng, 0, 1));
    ds.test_x = nb_persist(nb_rand(dt, NB_SHAPE(6, 3, 4, 5), &rng, 0, 1));
    /* channel 1 of train scaled by 10, so the channels differ */
    for (int64_t i = 0; i < nb_numel(ds.train_x); i++)
        if (i / 20 % 3 == 1) nb_set(ds.train_x, i, nb_get(ds.train_x, i) * 10);
    ds.num_classes = 10;
    nb_scope_reset(NULL);
    return ds;
}

START_TEST(subtract_mean_image)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        double tol = dt == NB_F32 ? 1e-5 : 1e-12;
        nb_dataset ds = random_dataset((nb_dtype)dt, 5);
        nb_tensor *train0 = nb_copy(ds.train_x), *val0 = nb_copy(ds.val_x);
        ck_assert_int_eq(nb_dataset_subtract_mean_image(&ds), 0);
        nbt_assert_shape(ds.mean_image, 3, 4, 5);
        ck_assert_ptr_null(ds.mean_image->scope);
        /* the mean image is train's mean over samples; train now has mean 0 at every pixel */
        nb_tensor *mean0 = nb_mean_axes(train0, NB_AXES(0), false);
        double m[60], zeros[60] = { 0 };
        nb_to_doubles(mean0, m);
        nbt_assert_values(ds.mean_image, m, tol);
        nbt_assert_values(nb_mean_axes(ds.train_x, NB_AXES(0), false), zeros, tol);
        /* val and test shift by the same image */
        double v[240];
        nb_to_doubles(nb_sub(val0, mean0), v);
        nbt_assert_values(ds.val_x, v, tol);
        nb_dataset_free(&ds);
    }
}
END_TEST

START_TEST(standardize)
{
    for (int dt = NB_F32; dt <= NB_F64; dt++) {
        double tol = dt == NB_F32 ? 1e-5 : 1e-12;
        nb_dataset ds = random_dataset((nb_dtype)dt, 6);
        nb_tensor *test0 = nb_copy(ds.test_x);
        /* channel 2 of train constant: only centred */
        for (int64_t i = 0; i < nb_numel(ds.train_x); i++)
            if (i / 20 % 3 == 2) nb_set(ds.train_x, i, 4.0);
        ck_assert_int_eq(nb_dataset_standardize(&ds), 0);
        nbt_assert_shape(ds.channel_mean, 3);
        nbt_assert_shape(ds.channel_std, 3);
        ck_assert_double_eq_tol(nb_get(ds.channel_mean, 2), 4.0, tol);
        ck_assert_double_eq_tol(nb_get(ds.channel_std, 2), 0.0, tol);
        ck_assert(nb_get(ds.channel_std, 1) > 5 * nb_get(ds.channel_std, 0));
        nb_tensor *mean = nb_mean_axes(ds.train_x, NB_AXES(0, 2, 3), false);
        nb_tensor *var = nb_mean_axes(nb_square(ds.train_x), NB_AXES(0, 2, 3), false);
        nbt_assert_values(mean, ((double[]){ 0, 0, 0 }), tol);
        nbt_assert_values(var, ((double[]){ 1, 1, 0 }), tol * 10);
        /* test: (x - mean) / std with train's statistics */
        for (int64_t i = 0; i < nb_numel(ds.test_x); i += 7) {
            int64_t c = i / 20 % 3;
            double sd = c == 2 ? 1 : nb_get(ds.channel_std, c);
            ck_assert_double_eq_tol(nb_get(ds.test_x, i), (nb_get(test0, i) - nb_get(ds.channel_mean, c)) / sd, tol);
        }
        nb_dataset_free(&ds);
    }
}
END_TEST

START_TEST(preprocess_errors)
{
    ck_assert_int_eq(nb_dataset_standardize(NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_standardize: NULL data set");
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    ck_assert_int_eq(nb_dataset_subtract_mean_image(&ds), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_subtract_mean_image: the data set has no train_x");
    ds = random_dataset(NB_F64, 1);
    nb_free(ds.val_x);
    ds.val_x = nb_persist(nb_zeros(NB_F64, NB_SHAPE(4, 3, 5, 4)));
    ck_assert_int_eq(nb_dataset_standardize(&ds), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_standardize: val_x is f64 [4,3,5,4] but train_x is f64 [20,3,4,5]");
    nb_dataset_free(&ds);
    ds.train_x = nb_persist(nb_zeros(NB_I64, NB_SHAPE(4, 3)));
    ck_assert_int_eq(nb_dataset_subtract_mean_image(&ds), -1);
    ck_assert_str_eq(nb_last_error(), "nb_dataset_subtract_mean_image: expected a f32 or f64 tensor, got i64 [4,3]");
    nb_dataset_free(&ds);
}
END_TEST

/* ---- minibatches ---- */

/* x [n,2] with row i = (i, -i); y [n] = i */
static void rows_xy(int64_t n, nb_tensor **x, nb_tensor **y)
{
    *x = nb_persist(nb_zeros(NB_F64, NB_SHAPE(n, 2)));
    *y = nb_persist(nb_zeros(NB_I64, NB_SHAPE(n)));
    for (int64_t i = 0; i < n; i++) {
        nb_set(*x, 2 * i, (double)i);
        nb_set(*x, 2 * i + 1, (double)-i);
        nb_set(*y, i, (double)i);
    }
}

/* every row of the batch is consistent: x = (i, -i), y = i; returns the indices */
static void batch_rows(const nb_tensor *xb, const nb_tensor *yb, int64_t *out)
{
    for (int64_t r = 0; r < xb->shape[0]; r++) {
        int64_t i = (int64_t)nb_get(yb, r);
        ck_assert_double_eq(nb_get(xb, 2 * r), (double)i);
        ck_assert_double_eq(nb_get(xb, 2 * r + 1), (double)-i);
        out[r] = i;
    }
}

START_TEST(batcher_shuffle)
{
    nb_tensor *x, *y;
    rows_xy(10, &x, &y);
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_batcher *b = nb_batcher_new(x, y, 3, NB_BATCH_SHUFFLE, &rng);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(nb_batcher_batches_per_epoch(b), 4);
    int64_t orders[3][10];
    for (int epoch = 0; epoch < 3; epoch++) {
        ck_assert_int_eq(nb_batcher_epoch(b), epoch);
        int seen[10] = { 0 }, got = 0;
        nb_tensor *xb, *yb;
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 1);
            int64_t want = k < 3 ? 3 : 1; /* the last batch is partial */
            nbt_assert_shape(xb, want, 2);
            nbt_assert_shape(yb, want);
            ck_assert_ptr_eq(xb->scope, nb_scope_current());
            batch_rows(xb, yb, orders[epoch] + got);
            for (int64_t r = 0; r < want; r++) seen[orders[epoch][got + r]]++;
            got += (int)want;
        }
        for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 1); /* every sample exactly once */
        ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 0);
        ck_assert_ptr_null(xb);
        ck_assert_ptr_null(yb);
        ck_assert_int_eq(nb_batcher_epoch(b), epoch + 1);
    }
    /* fresh orders each epoch, not the identity */
    ck_assert(memcmp(orders[0], orders[1], sizeof orders[0]) != 0);
    ck_assert(memcmp(orders[1], orders[2], sizeof orders[0]) != 0);
    bool identity = true;
    for (int i = 0; i < 10; i++) identity = identity && orders[0][i] == i;
    ck_assert(!identity);
    nb_batcher_free(b);

    /* a batch larger than the data set: one partial batch per epoch */
    b = nb_batcher_new(x, y, 64, NB_BATCH_SHUFFLE, &rng);
    nb_tensor *xb, *yb;
    ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 1);
    nbt_assert_shape(xb, 10, 2);
    ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 0);
    nb_batcher_free(b);
    /* the largest batch: one batch per epoch, no overflow in the count (it was 0, and the Solver
     * divided by it) */
    b = nb_batcher_new(x, y, INT64_MAX, NB_BATCH_SHUFFLE, &rng);
    ck_assert_int_eq(nb_batcher_batches_per_epoch(b), 1);
    ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 1);
    nbt_assert_shape(xb, 10, 2);
    nb_batcher_free(b);
    nb_free(x);
    nb_free(y);
}
END_TEST

/* the indices of `batches` batches from a fresh batcher with the given seed */
static void draw(const nb_tensor *x, const nb_tensor *y, nb_batch_mode mode, uint64_t seed, int batches, int64_t *out)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_batcher *b = nb_batcher_new(x, y, 4, mode, &rng);
    nb_tensor *xb, *yb;
    for (int k = 0; k < batches;) {
        int rc = nb_batcher_next(b, &xb, &yb);
        ck_assert_int_ge(rc, 0);
        if (rc == 0) continue;
        batch_rows(xb, yb, out + 4 * k);
        k++;
    }
    nb_batcher_free(b);
}

START_TEST(batcher_deterministic)
{
    nb_tensor *x, *y;
    rows_xy(16, &x, &y);
    for (int mode = NB_BATCH_SHUFFLE; mode <= NB_BATCH_SAMPLE; mode++) {
        int64_t a[4 * 12], b[4 * 12], c[4 * 12];
        draw(x, y, (nb_batch_mode)mode, 7, 12, a);
        draw(x, y, (nb_batch_mode)mode, 7, 12, b);
        draw(x, y, (nb_batch_mode)mode, 8, 12, c);
        ck_assert(memcmp(a, b, sizeof a) == 0);
        ck_assert(memcmp(a, c, sizeof a) != 0);
    }
    /* the batcher forks its generator: rng advances by exactly one draw and is not kept */
    nb_rng r1, r2;
    nb_rng_seed(&r1, 3);
    nb_rng_seed(&r2, 3);
    nb_batcher *b = nb_batcher_new(x, y, 4, NB_BATCH_SHUFFLE, &r1);
    nb_rng_next(&r2);
    ck_assert(memcmp(&r1, &r2, sizeof r1) == 0);
    nb_tensor *xb, *yb;
    nb_batcher_next(b, &xb, &yb);
    ck_assert(memcmp(&r1, &r2, sizeof r1) == 0);
    nb_batcher_free(b);
    nb_free(x);
    nb_free(y);
}
END_TEST

START_TEST(batcher_sample)
{
    nb_tensor *x, *y;
    rows_xy(10, &x, &y);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_batcher *b = nb_batcher_new(x, y, 8, NB_BATCH_SAMPLE, &rng);
    ck_assert_int_eq(nb_batcher_batches_per_epoch(b), 1); /* max(10 / 8, 1) */
    int64_t counts[10] = { 0 }, idx[8];
    int with_repeats = 0;
    nb_tensor *xb, *yb;
    for (int epoch = 0; epoch < 1000; epoch++) {
        ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 1);
        nbt_assert_shape(xb, 8, 2); /* always full */
        batch_rows(xb, yb, idx);
        bool rep = false;
        for (int i = 0; i < 8; i++) {
            counts[idx[i]]++;
            for (int j = 0; j < i; j++) rep = rep || idx[i] == idx[j];
        }
        with_repeats += rep;
        ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 0);
    }
    ck_assert_int_eq(nb_batcher_epoch(b), 1000);
    /* with replacement: most batches of 8 out of 10 repeat a sample (all but 1.8%) */
    ck_assert_int_gt(with_repeats, 950);
    /* uniform: 800 draws of each index expected, sd 27 */
    for (int i = 0; i < 10; i++) ck_assert_msg(labs((long)counts[i] - 800) < 120, "index %d drawn %lld times", i, (long long)counts[i]);
    nb_batcher_free(b);
    b = nb_batcher_new(x, y, 3, NB_BATCH_SAMPLE, &rng);
    ck_assert_int_eq(nb_batcher_batches_per_epoch(b), 3);
    nb_batcher_free(b);
    nb_free(x);
    nb_free(y);
}
END_TEST

START_TEST(batcher_sequential_and_layouts)
{
    /* in order, without an rng, without labels, from a transposed (strided) x */
    nb_tensor *base = nb_persist(nb_reshape(nb_arange(NB_F32, 0, 15, 1), NB_SHAPE(3, 5)));
    nb_tensor *xt = nb_transpose(base, 0, 1); /* [5,3]: row i = (i, 5+i, 10+i) */
    nb_batcher *b = nb_batcher_new(xt, NULL, 2, NB_BATCH_SEQUENTIAL, NULL);
    ck_assert_ptr_nonnull(b);
    nb_tensor *xb, *yb = (nb_tensor *)1;
    ck_assert_int_eq(nb_batcher_next(b, &xb, &yb), 1);
    ck_assert_ptr_null(yb);
    nbt_assert_values(xb, ((double[]){ 0, 5, 10, 1, 6, 11 }), 0);
    ck_assert_int_eq(nb_batcher_next(b, &xb, NULL), 1);
    nbt_assert_values(xb, ((double[]){ 2, 7, 12, 3, 8, 13 }), 0);
    ck_assert_int_eq(nb_batcher_next(b, &xb, NULL), 1);
    nbt_assert_shape(xb, 1, 3);
    nbt_assert_values(xb, ((double[]){ 4, 9, 14 }), 0);
    ck_assert_int_eq(nb_batcher_next(b, &xb, NULL), 0);
    ck_assert_int_eq(nb_batcher_next(b, &xb, NULL), 1); /* the next epoch starts over */
    nbt_assert_values(xb, ((double[]){ 0, 5, 10, 1, 6, 11 }), 0);
    nb_batcher_free(b);
    nb_free(base);
}
END_TEST

START_TEST(batcher_scope_does_not_grow)
{
    nb_tensor *x, *y;
    rows_xy(100, &x, &y);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_batcher *b = nb_batcher_new(x, y, 16, NB_BATCH_SHUFFLE, &rng);
    nb_scope *s = nb_scope_new();
    nb_scope_push(s);
    size_t reserved = 0;
    for (int step = 0; step < 200; step++) {
        nb_tensor *xb, *yb;
        if (nb_batcher_next(b, &xb, &yb) == 1) {
            ck_assert_ptr_eq(xb->scope, s);
            nb_mean(xb);
        }
        nb_scope_reset(s);
        if (step == 10) reserved = nb_scope_reserved(s);
    }
    ck_assert_uint_eq(nb_scope_reserved(s), reserved);
    nb_scope_pop();
    nb_scope_free(s);
    nb_batcher_free(b);
    nb_free(x);
    nb_free(y);
}
END_TEST

/* the output of one augmented copy of a single [C,H,W] image */
static nb_tensor *augment_once(nb_batcher *b)
{
    nb_tensor *xb;
    int rc = nb_batcher_next(b, &xb, NULL);
    if (rc == 0) rc = nb_batcher_next(b, &xb, NULL);
    ck_assert_int_eq(rc, 1);
    return xb;
}

START_TEST(augment_flip)
{
    /* an asymmetric 2x3 image, two channels (the second 10x the first) */
    double v[12] = { 1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60 };
    double flipped[12] = { 3, 2, 1, 6, 5, 4, 30, 20, 10, 60, 50, 40 };
    for (int dt = NB_F32; dt <= NB_I64; dt++) {
        nb_tensor *x = nb_persist(nb_from_doubles((nb_dtype)dt, NB_SHAPE(1, 2, 2, 3), v));
        nb_rng rng;
        nb_rng_seed(&rng, 4);
        nb_batcher *b = nb_batcher_new(x, NULL, 1, NB_BATCH_SHUFFLE, &rng);
        ck_assert_int_eq(nb_batcher_set_augment(b, 0, true), 0);
        int n_flipped = 0;
        for (int k = 0; k < 200; k++) {
            nb_tensor *xb = augment_once(b);
            nbt_assert_shape(xb, 1, 2, 2, 3);
            ck_assert_int_eq(xb->dtype, dt);
            bool is_flipped = nb_get(xb, 0) == 3;
            n_flipped += is_flipped;
            nbt_assert_values(xb, is_flipped ? flipped : v, 0);
        }
        ck_assert_int_gt(n_flipped, 70); /* about half */
        ck_assert_int_lt(n_flipped, 130);
        /* augmentation off again: plain copies */
        ck_assert_int_eq(nb_batcher_set_augment(b, 0, false), 0);
        for (int k = 0; k < 10; k++) nbt_assert_values(augment_once(b), v, 0);
        nb_batcher_free(b);
        nb_free(x);
    }
}
END_TEST

START_TEST(augment_crop)
{
    /* a 3x3 image 1..9 with pad 1: each copy is the image shifted by (dy,dx) in {-1,0,1}², zero-filled:
     * out[i][j] = src[i+dy][j+dx] */
    double v[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    nb_tensor *x = nb_persist(nb_from_doubles(NB_F32, NB_SHAPE(1, 1, 3, 3), v));
    double shifted[3][3][9];
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    int si = i + dy, sj = j + dx;
                    shifted[dy + 1][dx + 1][i * 3 + j] = si >= 0 && si < 3 && sj >= 0 && sj < 3 ? v[si * 3 + sj] : 0;
                }
    /* e.g. dy = 1, dx = -1 moves the image up and right */
    double up_right[9] = { 0, 4, 5, 0, 7, 8, 0, 0, 0 };
    ck_assert(memcmp(shifted[2][0], up_right, sizeof up_right) == 0);
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_batcher *b = nb_batcher_new(x, NULL, 1, NB_BATCH_SAMPLE, &rng);
    ck_assert_int_eq(nb_batcher_set_augment(b, 1, false), 0);
    int counts[9] = { 0 };
    for (int k = 0; k < 900; k++) {
        nb_tensor *xb = augment_once(b);
        double got[9];
        nb_to_doubles(xb, got);
        int match = -1;
        for (int s = 0; s < 9; s++)
            if (memcmp(got, shifted[s / 3][s % 3], sizeof got) == 0) match = s;
        ck_assert_msg(match >= 0, "copy %d is no shift of the image", k);
        counts[match]++;
    }
    for (int s = 0; s < 9; s++) ck_assert_msg(counts[s] > 60, "shift %d drawn %d times", s, counts[s]);
    /* crop and flip together: a flip of a shift */
    ck_assert_int_eq(nb_batcher_set_augment(b, 1, true), 0);
    for (int k = 0; k < 100; k++) {
        double got[9], unflipped[9];
        nb_to_doubles(augment_once(b), got);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) unflipped[i * 3 + j] = got[i * 3 + 2 - j];
        bool ok = false;
        for (int s = 0; s < 9; s++)
            ok = ok || memcmp(got, shifted[s / 3][s % 3], sizeof got) == 0 ||
                 memcmp(unflipped, shifted[s / 3][s % 3], sizeof got) == 0;
        ck_assert(ok);
    }
    /* a pad larger than the image leaves zeros sometimes, never garbage */
    ck_assert_int_eq(nb_batcher_set_augment(b, 5, false), 0);
    for (int k = 0; k < 50; k++) {
        double got[9];
        nb_to_doubles(augment_once(b), got);
        for (int i = 0; i < 9; i++) ck_assert(got[i] >= 0 && got[i] <= 9);
    }
    nb_batcher_free(b);
    nb_free(x);
}
END_TEST

START_TEST(batcher_errors)
{
    nb_tensor *x, *y;
    rows_xy(5, &x, &y);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nbt_assert_error(nb_batcher_new(x, y, 0, NB_BATCH_SHUFFLE, &rng), "nb_batcher_new: batch_size must be >= 1, got 0");
    nbt_assert_error(nb_batcher_new(x, y, 2, NB_BATCH_SHUFFLE, NULL), "nb_batcher_new: NB_BATCH_SHUFFLE needs an rng");
    nbt_assert_error(nb_batcher_new(x, y, 2, NB_BATCH_SAMPLE, NULL), "nb_batcher_new: NB_BATCH_SAMPLE needs an rng");
    nbt_assert_error(nb_batcher_new(x, y, 2, (nb_batch_mode)9, &rng), "nb_batcher_new: unknown mode 9");
    nbt_assert_error(nb_batcher_new(x, nb_zeros(NB_I64, NB_SHAPE(4)), 2, NB_BATCH_SHUFFLE, &rng),
                     "nb_batcher_new: y [4] must have as many rows as x [5,2]");
    nbt_assert_error(nb_batcher_new(nb_zeros(NB_F32, NB_SHAPE(0, 3)), NULL, 2, NB_BATCH_SHUFFLE, &rng),
                     "nb_batcher_new: x must have at least one row, got [0,3]");
    nbt_assert_error(nb_batcher_new(NULL, y, 2, NB_BATCH_SHUFFLE, &rng), "nb_batcher_new: NULL x");
    nb_batcher *b = nb_batcher_new(x, y, 2, NB_BATCH_SHUFFLE, &rng);
    ck_assert_int_eq(nb_batcher_set_augment(b, 1, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_batcher_set_augment: augmentation needs contiguous images [N,...,H,W], got [5,2]");
    ck_assert_int_eq(nb_batcher_set_augment(b, -1, false), -1);
    ck_assert_str_eq(nb_last_error(), "nb_batcher_set_augment: crop_pad must be >= 0, got -1");
    ck_assert_int_eq(nb_batcher_set_augment(b, 0, false), 0);
    ck_assert_int_eq(nb_batcher_next(b, NULL, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_batcher_next: NULL xb");
    ck_assert_int_eq(nb_batcher_next(NULL, NULL, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "nb_batcher_next: NULL batcher");
    nb_batcher_free(b);
    nb_batcher_free(NULL);
    nb_free(x);
    nb_free(y);
}
END_TEST

START_TEST(take_rows)
{
    nb_tensor *x = nb_persist(nb_reshape(nb_arange(NB_F64, 0, 12, 1), NB_SHAPE(6, 2)));
    nb_tensor *v = nb_take_rows(x, 2, 3);
    nbt_assert_shape(v, 3, 2);
    nbt_assert_values(v, ((double[]){ 4, 5, 6, 7, 8, 9 }), 0);
    ck_assert_ptr_eq(v->data, (double *)x->data + 4); /* a view */
    /* walking in chunks: the last one is clipped */
    int64_t seen = 0;
    for (int64_t i = 0; i < 6; i += 4) {
        nb_tensor *c = nb_take_rows(x, i, 4);
        ck_assert_int_eq(c->shape[0], i == 0 ? 4 : 2);
        ck_assert_double_eq(nb_get(c, 0), 2.0 * (double)i);
        seen += c->shape[0];
    }
    ck_assert_int_eq(seen, 6);
    nbt_assert_shape(nb_take_rows(x, 6, 4), 0, 2);
    /* rows of a transposed view */
    nb_tensor *t = nb_take_rows(nb_transpose(x, 0, 1), 1, 1);
    nbt_assert_values(t, ((double[]){ 1, 3, 5, 7, 9, 11 }), 0);
    nbt_assert_error(nb_take_rows(x, 7, 1), "nb_take_rows: start 7 out of range [0,6] for [6,2]");
    nbt_assert_error(nb_take_rows(x, -1, 1), "nb_take_rows: start -1 out of range [0,6] for [6,2]");
    nbt_assert_error(nb_take_rows(x, 0, -1), "nb_take_rows: count must be >= 0, got -1");
    nbt_assert_error(nb_take_rows(nb_scalar(NB_F64, 1), 0, 1), "nb_take_rows: x must have at least one axis, got []");
    nb_free(x);
}
END_TEST

/* ---- text corpora ---- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(text_load_and_batches)
{
    char dir[] = "/tmp/nabla-text-XXXXXX", path[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* a folder: files in name order; symbolic links and *.dat indexes skipped */
    snprintf(path, sizeof path, "%s/b", dir);
    write_text(path, "0123456789");
    snprintf(path, sizeof path, "%s/a", dir);
    write_text(path, "abcdefghij");
    snprintf(path, sizeof path, "%s/a.dat", dir);
    write_text(path, "INDEX");
    char link[256];
    snprintf(link, sizeof link, "%s/a.u8", dir);
    ck_assert_int_eq(symlink("a", link), 0);
    nb_text t;
    ck_assert_msg(nb_text_load(&t, dir, 0.25) == 0, "%s", nb_last_error());
    ck_assert_int_eq(t.n, 20);
    for (int i = 0; i < 20; i++) ck_assert_int_eq(t.ids[i], (unsigned char)"abcdefghij0123456789"[i]);
    ck_assert_int_eq(t.vocab, 256);
    ck_assert_int_eq(t.n_train, 15);
    /* windows: y is x shifted by one, every window inside its split, the same for the same seed */
    nb_rng r1, r2;
    nb_rng_seed(&r1, 9);
    nb_rng_seed(&r2, 9);
    for (int val = 0; val < 2; val++) {
        nb_tensor *x, *y, *x2, *y2;
        const int64_t len = val ? 3 : 6;
        ck_assert_int_eq(nb_text_batch(&t, val, 8, len, &r1, &x, &y), 0);
        ck_assert_int_eq(nb_text_batch(&t, val, 8, len, &r2, &x2, &y2), 0);
        nbt_assert_same(x, x2, 0);
        nbt_assert_same(y, y2, 0);
        const uint16_t *split = val ? t.ids + t.n_train : t.ids;
        const int64_t n = val ? t.n - t.n_train : t.n_train;
        for (int64_t b = 0; b < 8; b++) {
            const uint16_t *at = split;   /* the window's start: every byte of the test text is distinct */
            while (at < split + n && *at != nb_get(x, b * len)) at++;
            ck_assert(at < split + n);
            ck_assert_int_le(at - split + len + 1, n);
            for (int64_t i = 0; i < len; i++) {
                ck_assert_int_eq(nb_get(x, b * len + i), at[i]);
                ck_assert_int_eq(nb_get(y, b * len + i), at[i + 1]);
            }
        }
    }
    nb_tensor *x, *y;
    ck_assert_int_eq(nb_text_batch(&t, true, 1, 5, &r1, &x, &y), -1);
    ck_assert_str_eq(nb_last_error(), "nb_text_batch: 1 windows of 5 + 1 bytes from the validation split of 5 bytes");
    nb_text_free(&t);
    /* one file; errors */
    snprintf(path, sizeof path, "%s/b", dir);
    ck_assert_int_eq(nb_text_load(&t, path, 0.5), 0);
    ck_assert_int_eq(t.n_train, 5);
    nb_text_free(&t);
    ck_assert_int_eq(nb_text_load(&t, path, 1), -1);
    ck_assert_str_eq(nb_last_error(), "nb_text_load: val_fraction 1 must be in (0, 1)");
    snprintf(path, sizeof path, "%s/missing", dir);
    ck_assert_int_eq(nb_text_load(&t, path, 0.1), -1);
    ck_assert(strstr(nb_last_error(), "missing: No such file or directory") != NULL);
    snprintf(path, sizeof path, "%s/tiny", dir);
    write_text(path, "ab");
    ck_assert_int_eq(nb_text_load(&t, path, 0.1), -1);
    ck_assert(strstr(nb_last_error(), "tiny holds 2 bytes: too little text to split") != NULL);
    ck_assert_int_eq(nb_text_load(&t, "/dev/null", 0.1), -1);
    ck_assert_str_eq(nb_last_error(), "nb_text_load: /dev/null: not a regular file or folder");
    /* llm.c's token files: written, read back, split; a damaged header is named */
    uint16_t tokens[300];
    for (int i = 0; i < 300; i++) tokens[i] = (uint16_t)(i * 167 % 50257);
    snprintf(path, sizeof path, "%s/tokens.bin", dir);
    ck_assert_int_eq(nb_tokens_save(path, tokens, 300), 0);
    ck_assert_msg(nb_text_load_tokens(&t, path, 0.1) == 0, "%s", nb_last_error());
    ck_assert_int_eq(t.n, 300);
    ck_assert_int_eq(t.n_train, 270);
    for (int i = 0; i < 300; i++) ck_assert_int_eq(t.ids[i], tokens[i]);
    int64_t largest = 0;
    for (int i = 0; i < 300; i++) largest = tokens[i] > largest ? tokens[i] : largest;
    ck_assert_int_eq(t.vocab, largest + 1);
    nb_text_free(&t);
    FILE *f = fopen(path, "r+b");
    fseek(f, 8, SEEK_SET);
    fputc(0x2d, f);   /* the count: 300 -> 301 */
    fclose(f);
    ck_assert_int_eq(nb_text_load_tokens(&t, path, 0.1), -1);
    ck_assert(strstr(nb_last_error(), "the header's count 301 at offset 8 does not fit the 600 bytes after it") != NULL);
    snprintf(path, sizeof path, "%s/b", dir);
    ck_assert_int_eq(nb_text_load_tokens(&t, path, 0.1), -1);
    ck_assert(strstr(nb_last_error(), "shorter than the 1024-byte header") != NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *files = tcase_create("files");
    tcase_add_unchecked_fixture(files, dir_setup, dir_teardown);
    tcase_add_test(files, idx_read_values);
    tcase_add_test(files, idx_header_errors);
    tcase_add_test(files, idx_data_errors);
    tcase_add_test(files, idx_gzip_stream_end);
    tcase_add_test(files, cifar_read_file);
    tcase_add_test(files, cifar_file_errors);
    suite_add_tcase(s, files);
    TCase *sets = tcase_create("datasets");
    tcase_add_unchecked_fixture(sets, dir_setup, dir_teardown);
    tcase_add_test(sets, mnist_load);
    tcase_add_test(sets, mnist_errors);
    tcase_add_test(sets, cifar_load);
    tcase_add_test(sets, cifar_load_errors);
    tcase_add_test(sets, subtract_mean_image);
    tcase_add_test(sets, standardize);
    tcase_add_test(sets, preprocess_errors);
    suite_add_tcase(s, sets);
    TCase *fashion = tcase_create("fashion_mnist");
    tcase_set_timeout(fashion, 60);
    tcase_add_test(fashion, fashion_mnist);
    suite_add_tcase(s, fashion);
    TCase *batches = tcase_create("minibatches");
    tcase_add_test(batches, batcher_shuffle);
    tcase_add_test(batches, batcher_deterministic);
    tcase_add_test(batches, batcher_sample);
    tcase_add_test(batches, batcher_sequential_and_layouts);
    tcase_add_test(batches, batcher_scope_does_not_grow);
    tcase_add_test(batches, augment_flip);
    tcase_add_test(batches, augment_crop);
    tcase_add_test(batches, batcher_errors);
    tcase_add_test(batches, take_rows);
    tcase_add_test(batches, text_load_and_batches);
    suite_add_tcase(s, batches);
    return s;
}

NBT_MAIN(data_suite)
