/* Byte-level text corpora for language models (nabla/data.h): a file, or a folder's files in name
 * order, read whole; a training and a validation split; random windows of T+1 bytes as token ids. */
#include <nabla/data.h>

#include "../internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* appends path's bytes to t->ids (grown as needed) */
static int append_file(const char *op, nb_text *t, const char *path, int64_t *cap)
{
    int64_t size;
    int fd = nb_open_regular(path, &size);
    if (fd < 0) {
        nb_error("%s: %s: %s", op, path, fd == -2 ? "not a regular file or folder" : strerror(errno));
        return -1;
    }
    if (t->n + size > *cap) {
        int64_t want = (t->n + size) * 2;
        uint16_t *grown = realloc(t->ids, sizeof *grown * (size_t)want);
        if (!grown) {
            close(fd);
            nb_error("%s: %s: out of memory for %lld bytes", op, path, (long long)want);
            return -1;
        }
        t->ids = grown;
        *cap = want;
    }
    /* read into the upper half of the new ids' room, then widen each byte to an id */
    uint8_t *raw = (uint8_t *)(t->ids + t->n) + size;
    int64_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, raw + got, (size_t)(size - got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            nb_error("%s: %s: %s at offset %lld of %lld bytes", op, path, r < 0 ? strerror(errno) : "the file shrank",
                     (long long)got, (long long)size);
            close(fd);
            return -1;
        }
        got += r;
    }
    close(fd);
    for (int64_t i = 0; i < size; i++) t->ids[t->n + i] = raw[i];   /* raw[i] lies at or after ids[n + i] */
    t->n += size;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* a folder's regular files (not symbolic links, not fortune's *.dat indexes), in name order */
static int append_folder(const char *op, nb_text *t, const char *dir, int64_t *cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        nb_error("%s: %s: %s", op, dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 4 && !strcmp(e->d_name + len - 4, ".dat"))) continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        char **grown = realloc(names, sizeof *names * (n + 1));
        if (!grown || !(grown[n] = strdup(path))) rc = -1;
        if (grown) names = grown;
        if (rc == 0) n++;
    }
    closedir(d);
    if (rc) nb_error("%s: %s: out of memory", op, dir);
    if (rc == 0 && n == 0) {
        nb_error("%s: %s has no text files", op, dir);
        rc = -1;
    }
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = append_file(op, t, names[i], cap);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* the last val_fraction of the ids validate; each split keeps at least 2 */
static void split(nb_text *t, double val_fraction)
{
    t->n_train = t->n - (int64_t)((double)t->n * val_fraction);
    if (t->n_train < 2) t->n_train = 2;
    if (t->n_train > t->n - 2) t->n_train = t->n - 2;
}

/* the loaders' arguments; *t emptied first */
static int check_load(const char *op, nb_text *t, const char *path, double val_fraction)
{
    if (!t || !path) {
        nb_error("%s: NULL %s", op, t ? "path" : "text");
        return -1;
    }
    *t = (nb_text){ 0 };
    if (!(val_fraction > 0 && val_fraction < 1)) {
        nb_error("%s: val_fraction %g must be in (0, 1)", op, val_fraction);
        return -1;
    }
    return 0;
}

int nb_text_load(nb_text *t, const char *path, double val_fraction)
{
    static const char op[] = "nb_text_load";
    if (check_load(op, t, path, val_fraction)) return -1;
    t->vocab = 256;
    struct stat st;
    int64_t cap = 0;
    int rc = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? append_folder(op, t, path, &cap) : append_file(op, t, path, &cap);
    if (rc == 0 && t->n < 4) {
        nb_error("%s: %s holds %lld bytes: too little text to split", op, path, (long long)t->n);
        rc = -1;
    }
    if (rc) {
        nb_text_free(t);
        return -1;
    }
    split(t, val_fraction);
    return 0;
}

void nb_text_free(nb_text *t)
{
    if (!t) return;
    free(t->ids);
    *t = (nb_text){ 0 };
}

int nb_text_batch(const nb_text *t, bool val, int64_t batch, int64_t len, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    static const char op[] = "nb_text_batch";
    if (!t || !t->ids || !rng || !x || !y) {
        nb_error("%s: NULL argument", op);
        return -1;
    }
    const uint16_t *part = val ? t->ids + t->n_train : t->ids;
    const int64_t n = val ? t->n - t->n_train : t->n_train;
    if (batch < 1 || len < 1 || len + 1 > n) {
        nb_error("%s: %lld windows of %lld + 1 bytes from the %s split of %lld bytes", op, (long long)batch, (long long)len,
                 val ? "validation" : "training", (long long)n);
        return -1;
    }
    *x = nb_empty(NB_I64, NB_SHAPE(batch, len));
    *y = nb_empty(NB_I64, NB_SHAPE(batch, len));
    if (!*x || !*y) return -1;
    int64_t *xs = (*x)->data, *ys = (*y)->data;
    for (int64_t b = 0; b < batch; b++) {
        const uint16_t *w = part + nb_rng_next(rng) % (uint64_t)(n - len);   /* a window of len + 1 ids */
        for (int64_t i = 0; i < len; i++) {
            xs[b * len + i] = w[i];
            ys[b * len + i] = w[i + 1];
        }
    }
    return 0;
}

/* ---- llm.c's token files: 256 int32 (20240520, version 1, count, 0...), then uint16 tokens ---- */

#define TOKENS_MAGIC 20240520
#define HEADER_INTS 256

int nb_text_load_tokens(nb_text *t, const char *path, double val_fraction)
{
    static const char op[] = "nb_text_load_tokens";
    if (check_load(op, t, path, val_fraction)) return -1;
    int64_t size;
    int fd = nb_open_regular(path, &size);
    if (fd < 0) {
        nb_error("%s: %s: %s", op, path, fd == -2 ? "not a regular file" : strerror(errno));
        return -1;
    }
    unsigned char header[HEADER_INTS * 4];
    int rc = -1;
    if (size < (int64_t)sizeof header || read(fd, header, sizeof header) != (ssize_t)sizeof header) {
        nb_error("%s: %s: %lld bytes, shorter than the 1024-byte header", op, path, (long long)size);
    } else if (nb_le32(header) != TOKENS_MAGIC || nb_le32(header + 4) != 1) {
        nb_error("%s: %s: not an llm.c token file (magic %d at offset 0, version %d at offset 4; expected %d and 1)", op,
                 path, nb_le32(header), nb_le32(header + 4), TOKENS_MAGIC);
    } else if (nb_le32(header + 8) < 4 || (int64_t)nb_le32(header + 8) * 2 != size - (int64_t)sizeof header) {
        nb_error("%s: %s: the header's count %d at offset 8 does not fit the %lld bytes after it (2 per token, at least 4)",
                 op, path, nb_le32(header + 8), (long long)(size - (int64_t)sizeof header));
    } else {
        t->n = nb_le32(header + 8);
        t->ids = malloc(sizeof *t->ids * (size_t)t->n);
        unsigned char *raw = t->ids ? (unsigned char *)t->ids : NULL;
        ssize_t got = raw ? read(fd, raw, (size_t)t->n * 2) : -1;
        if (got != (ssize_t)(t->n * 2)) {
            nb_error("%s: %s: could not read %lld tokens at offset 1024", op, path, (long long)t->n);
        } else {
            if (!nb_host_is_little()) nb_swap_bytes(raw, (size_t)t->n * 2, 2);
            for (int64_t i = 0; i < t->n; i++)
                if (t->ids[i] >= t->vocab) t->vocab = t->ids[i] + 1;
            split(t, val_fraction);
            rc = 0;
        }
    }
    close(fd);
    if (rc) nb_text_free(t);
    return rc;
}

int nb_tokens_save(const char *path, const uint16_t *tokens, int64_t n)
{
    static const char op[] = "nb_tokens_save";
    if (!path || !tokens || n < 0 || n > INT32_MAX) {
        nb_error("%s: %s", op, !path || !tokens ? "NULL argument" : "the count must be in [0, 2^31)");
        return -1;
    }
    unsigned char *buf = calloc(1, HEADER_INTS * 4 + (size_t)n * 2);
    if (!buf) {
        nb_error("%s: %s: out of memory", op, path);
        return -1;
    }
    const int32_t head[3] = { TOKENS_MAGIC, 1, (int32_t)n };
    for (int k = 0; k < 3; k++)
        for (int b = 0; b < 4; b++) buf[4 * k + b] = (unsigned char)((uint32_t)head[k] >> (8 * b));
    for (int64_t i = 0; i < n; i++) {
        buf[HEADER_INTS * 4 + 2 * i] = (unsigned char)(tokens[i] & 0xff);
        buf[HEADER_INTS * 4 + 2 * i + 1] = (unsigned char)(tokens[i] >> 8);
    }
    int rc = nb_save_atomic(op, path, buf, HEADER_INTS * 4 + (size_t)n * 2, 0, NULL);
    free(buf);
    return rc;
}
