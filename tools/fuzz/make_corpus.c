/* Writes small seed corpora for the fuzz targets into OUT/idx, OUT/cifar, OUT/safetensors and
 * OUT/resume:
 *   make_corpus OUT
 * The safetensors seeds are written by nabla itself (nb_safetensors_save / the writer); the IDX
 * and CIFAR seeds are small valid files in the formats nb_idx_read and nb_cifar_read accept
 * (IDX plain and gzip-compressed), plus a few near misses. Built by tools/fuzz/run.sh. */
#include "nabla/nabla.h"
#include "fuzz_solver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, nb_last_error() ? nb_last_error() : strerror(errno));
    exit(1);
}

static void path_of(char *out, size_t size, const char *sub, const char *name)
{
    snprintf(out, size, "%s/%s/%s", out_dir, sub, name);
}

static void write_raw(const char *sub, const char *name, const void *p, size_t n)
{
    char path[4096];
    path_of(path, sizeof path, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) die(path);
}

static void write_gz(const char *sub, const char *name, const void *p, size_t n)
{
    char path[4096];
    path_of(path, sizeof path, sub, name);
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, p, (unsigned)n) != (int)n || gzclose(f) != Z_OK) die(path);
}

/* sub/name's bytes appended to sub/to; name is removed */
static void append_file(const char *sub, const char *to, const char *name)
{
    char src[4096], dst[4096], buf[4096];
    path_of(src, sizeof src, sub, name);
    path_of(dst, sizeof dst, sub, to);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "ab");
    if (!in || !out) die(src);
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k) die(dst);
    if (fclose(in) != 0 || fclose(out) != 0 || remove(src) != 0) die(dst);
}

/* an IDX file of unsigned bytes: 00 00 08 ndim, big-endian dims, data */
static size_t make_idx(uint8_t *buf, int ndim, const uint32_t *dims, unsigned seed)
{
    size_t n = 4, numel = 1;
    buf[0] = 0, buf[1] = 0, buf[2] = 0x08, buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[n++] = dims[i] >> 24, buf[n++] = dims[i] >> 16, buf[n++] = dims[i] >> 8, buf[n++] = dims[i];
        numel *= dims[i];
    }
    for (size_t i = 0; i < numel; i++) buf[n++] = (uint8_t)((i * 37 + seed) % (seed ? 256 : 10));
    return n;
}

static void idx_seeds(void)
{
    uint8_t buf[4096];
    size_t n;
    n = make_idx(buf, 1, (uint32_t[]){ 12 }, 0); /* labels */
    write_raw("idx", "labels.idx1", buf, n);
    write_gz("idx", "labels.idx1.gz", buf, n);
    n = make_idx(buf, 3, (uint32_t[]){ 2, 5, 4 }, 7); /* images */
    write_raw("idx", "images.idx3", buf, n);
    write_gz("idx", "images.idx3.gz", buf, n);
    n = make_idx(buf, 4, (uint32_t[]){ 2, 1, 3, 3 }, 3);
    write_raw("idx", "nchw.idx4", buf, n);
    write_raw("idx", "trailing.idx1", buf, make_idx(buf, 1, (uint32_t[]){ 3 }, 1) + 1);
    write_raw("idx", "truncated.idx3", buf, make_idx(buf, 3, (uint32_t[]){ 2, 2, 2 }, 1) - 1);
    n = make_idx(buf, 2, (uint32_t[]){ 3, 3 }, 1);
    buf[2] = 0x0D; /* float: unsupported */
    write_raw("idx", "float.idx2", buf, n);
    /* a gzip file cut short */
    n = make_idx(buf, 2, (uint32_t[]){ 16, 16 }, 5);
    char path[4096];
    path_of(path, sizeof path, "idx", "cut.idx2.gz");
    write_gz("idx", "cut.idx2.gz", buf, n);
    FILE *f = fopen(path, "r+b");
    if (!f || fseek(f, 0, SEEK_END) != 0) die(path);
    long len = ftell(f);
    fclose(f);
    if (truncate(path, len - 6) != 0) die(path);
    /* two gzip members (one content), and a member followed by bytes that are not one */
    n = make_idx(buf, 2, (uint32_t[]){ 4, 4 }, 9);
    write_gz("idx", "members.idx2.gz", buf, 10);
    write_gz("idx", "second.tmp", buf + 10, n - 10);
    append_file("idx", "members.idx2.gz", "second.tmp");
    write_gz("idx", "padded.idx2.gz", buf, n);
    static const uint8_t zeros[64];
    path_of(path, sizeof path, "idx", "padded.idx2.gz");
    f = fopen(path, "ab");
    if (!f || fwrite(zeros, 1, sizeof zeros, f) != sizeof zeros || fclose(f) != 0) die(path);
}

static void cifar_seeds(void)
{
    enum { REC = 3073 };
    uint8_t *buf = malloc(3 * REC);
    if (!buf) die("malloc");
    for (int r = 0; r < 3; r++) {
        buf[r * REC] = (uint8_t)(r * 4 % 10);
        for (int i = 0; i < 3072; i++) buf[r * REC + 1 + i] = (uint8_t)((i * 31 + r * 7) & 255);
    }
    write_raw("cifar", "one.bin", buf, REC);
    write_raw("cifar", "three.bin", buf, 3 * REC);
    write_raw("cifar", "partial.bin", buf, REC + 100);
    buf[REC] = 10; /* a bad label in the second record */
    write_raw("cifar", "badlabel.bin", buf, 2 * REC);
    free(buf);
}

static void st_seeds(void)
{
    char path[4096];
    nb_tensor *a = nb_zeros(NB_F32, NB_SHAPE(2, 3));
    nb_tensor *b = nb_zeros(NB_F64, NB_SHAPE(4));
    nb_tensor *c = nb_zeros(NB_I64, NB_SHAPE(1, 2, 2));
    nb_tensor *s = nb_zeros(NB_F32, NB_SHAPE0);
    nb_tensor *e = nb_zeros(NB_F64, NB_SHAPE(0, 3));
    if (!a || !b || !c || !s || !e) die("nb_zeros");
    for (int64_t i = 0; i < 6; i++) nb_set(a, i, 0.5 * (double)i - 1);
    for (int64_t i = 0; i < 4; i++) nb_set(b, i, 1.0 / (double)(i + 1));
    for (int64_t i = 0; i < 4; i++) nb_set(c, i, (double)(i * 1000 - 1));
    nb_set(s, 0, 3.25);

    path_of(path, sizeof path, "safetensors", "one.safetensors");
    if (nb_safetensors_save(path, 1, (const char *[]){ "w" }, (nb_tensor *[]){ a }, 0, NULL, NULL) < 0) die(path);
    path_of(path, sizeof path, "safetensors", "mixed.safetensors");
    if (nb_safetensors_save(path, 5, (const char *[]){ "layer.weight", "layer.bias", "steps", "scalar", "empty" },
                            (nb_tensor *[]){ a, b, c, s, e }, 2, (const char *[]){ "format", "epoch" },
                            (const char *[]){ "pt", "3" }) < 0)
        die(path);
    path_of(path, sizeof path, "safetensors", "empty.safetensors");
    if (nb_safetensors_save(path, 0, NULL, NULL, 1, (const char *[]){ "note" }, (const char *[]){ "nothing" }) < 0)
        die(path);
    nb_safetensors_writer *w = nb_safetensors_writer_new();
    if (!w || nb_safetensors_writer_add(w, "t.T", nb_transpose(a, 0, 1)) < 0 ||
        nb_safetensors_writer_add(w, "\xc3\xa9t\xc3\xa9", b) < 0 || nb_safetensors_writer_meta(w, "k", "v") < 0)
        die("writer");
    path_of(path, sizeof path, "safetensors", "writer.safetensors");
    if (nb_safetensors_writer_save(w, path) < 0) die(path);
    nb_safetensors_writer_free(w);
    nb_scope_reset(NULL);
    nb_cleanup();
}

/* the resume target's solver saved before training, after one epoch and after two */
static void resume_seeds(void)
{
    fuzz_solver f;
    if (fuzz_solver_new(&f, 2)) die("the resume target's solver");
    char path[4096];
    path_of(path, sizeof path, "resume", "start.safetensors");
    if (nb_solver_save(f.solver, path)) die(path);
    fuzz_solver_free(&f);
    for (int epochs = 1; epochs <= 2; epochs++) {
        if (fuzz_solver_new(&f, epochs) || nb_solver_train(f.solver)) die("training the resume target's solver");
        char name[64];
        snprintf(name, sizeof name, "epoch%d.safetensors", epochs);
        path_of(path, sizeof path, "resume", name);
        if (nb_solver_save(f.solver, path)) die(path);
        fuzz_solver_free(&f);
    }
    nb_scope_reset(NULL);
    nb_cleanup();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    const char *subs[] = { "", "/idx", "/cifar", "/safetensors", "/resume" };
    for (int i = 0; i < 5; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", out_dir, subs[i]);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
    }
    idx_seeds();
    cifar_seeds();
    st_seeds();
    resume_seeds();
    return 0;
}
