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

/* appends path's bytes to t->bytes (grown as needed) */
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
        uint8_t *grown = realloc(t->bytes, (size_t)want);
        if (!grown) {
            close(fd);
            nb_error("%s: %s: out of memory for %lld bytes", op, path, (long long)want);
            return -1;
        }
        t->bytes = grown;
        *cap = want;
    }
    int64_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, t->bytes + t->n + got, (size_t)(size - got));
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

int nb_text_load(nb_text *t, const char *path, double val_fraction)
{
    static const char op[] = "nb_text_load";
    if (!t || !path) {
        nb_error("%s: NULL %s", op, t ? "path" : "text");
        return -1;
    }
    *t = (nb_text){ 0 };
    if (!(val_fraction > 0 && val_fraction < 1)) {
        nb_error("%s: val_fraction %g must be in (0, 1)", op, val_fraction);
        return -1;
    }
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
    t->n_train = t->n - (int64_t)((double)t->n * val_fraction);
    if (t->n_train < 2) t->n_train = 2;
    if (t->n_train > t->n - 2) t->n_train = t->n - 2;
    return 0;
}

void nb_text_free(nb_text *t)
{
    if (!t) return;
    free(t->bytes);
    *t = (nb_text){ 0 };
}

int nb_text_batch(const nb_text *t, bool val, int64_t batch, int64_t len, nb_rng *rng, nb_tensor **x, nb_tensor **y)
{
    static const char op[] = "nb_text_batch";
    if (!t || !t->bytes || !rng || !x || !y) {
        nb_error("%s: NULL argument", op);
        return -1;
    }
    const uint8_t *split = val ? t->bytes + t->n_train : t->bytes;
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
        const uint8_t *w = split + nb_rng_next(rng) % (uint64_t)(n - len);   /* a window of len + 1 bytes */
        for (int64_t i = 0; i < len; i++) {
            xs[b * len + i] = w[i];
            ys[b * len + i] = w[i + 1];
        }
    }
    return 0;
}
