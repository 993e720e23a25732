/* Atomic file writes: a header and tensors' values go to a temporary file in the target's folder,
 * which is synced and renamed over the target (then the folder is synced), so that after a crash the
 * target holds its old contents or the new ones, never a mix. Used by safetensors files and llm.c's
 * checkpoints. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)   /* staging buffer for strided or byte-swapped writes */
#define IO_MAX ((size_t)1 << 30)  /* largest single write() */

bool nb_host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* reverses the bytes of each es-byte element (big-endian hosts only) */
void nb_swap_bytes(unsigned char *p, size_t bytes, size_t es)
{
    for (size_t i = 0; i + es <= bytes; i += es)
        for (size_t a = i, b = i + es - 1; a < b; a++, b--) {
            unsigned char c = p[a];
            p[a] = p[b];
            p[b] = c;
        }
}

/* 0 or an errno value */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n < IO_MAX ? n : IO_MAX);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* collects a tensor's elements in row-major order and writes them out in CHUNK pieces */
typedef struct {
    int fd, err;
    size_t es, len;
    bool swap;
    unsigned char *buf;
} sink;

static void sink_flush(sink *s)
{
    if (!s->err && s->len) {
        if (s->swap) nb_swap_bytes(s->buf, s->len, s->es);
        s->err = write_all(s->fd, s->buf, s->len);
    }
    s->len = 0;
}

static void sink_row(int64_t n, char **p, const int64_t *stride, void *ctx)
{
    sink *s = ctx;
    const char *src = p[0];
    int64_t i = 0;
    while (i < n && !s->err) {
        /* CHUNK is a multiple of every element size, so a piece never splits an element */
        size_t room = (CHUNK - s->len) / s->es, take = (size_t)(n - i) < room ? (size_t)(n - i) : room;
        if (stride[0] == (int64_t)s->es) {
            memcpy(s->buf + s->len, src + i * stride[0], take * s->es);
        } else {
            for (size_t k = 0; k < take; k++) memcpy(s->buf + s->len + k * s->es, src + (i + (int64_t)k) * stride[0], s->es);
        }
        s->len += take * s->es;
        i += (int64_t)take;
        if (s->len == CHUNK) sink_flush(s);
    }
}

/* writes t's values, row-major, little-endian; 0 or an errno value */
static int write_tensor(int fd, const nb_tensor *t, unsigned char **staging)
{
    size_t es = nb_dtype_size(t->dtype), bytes = (size_t)nb_numel(t) * es;
    if (bytes == 0) return 0;
    bool little = nb_host_is_little();
    if (little && nb_is_contiguous(t)) return write_all(fd, t->data, bytes);
    if (!*staging && !(*staging = malloc(CHUNK))) return ENOMEM;
    sink s = { .fd = fd, .es = es, .swap = !little, .buf = *staging };
    nb_loop l;
    nb_loop_init(&l, t->ndim, t->shape);
    nb_loop_add(&l, t);
    nb_loop_run(&l, sink_row, &s);
    sink_flush(&s);
    return s.err;
}

/* "<path>.tmp.<pid>.<n>", created exclusively in the same folder; the fd, or -1 with errno set */
static int create_temp(const char *path, char **tmp_out)
{
    static atomic_uint counter;
    size_t len = strlen(path) + 64;
    char *tmp = malloc(len);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

/* the folder holding path ("." when path has no slash), malloc'd */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Removes "<path>.tmp.<pid>.<n>" files left by writers that were killed mid-save: those whose pid
 * no longer exists here. A writer on another host sharing the folder can look dead; losing its
 * temporary file makes that save fail, never the file at path. */
static void remove_stale_temps(const char *path, const char *folder)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t base_len = strlen(base);
    DIR *d = opendir(folder);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *name = e->d_name;
        if (strncmp(name, base, base_len) || strncmp(name + base_len, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(name + base_len + 5, &end, 10);
        if (end == name + base_len + 5 || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), name, 0);
    }
    closedir(d);
}

int nb_save_atomic(const char *op, const char *path, const void *head, size_t head_len, int n, nb_tensor *const *tensors)
{
    char *tmp = NULL, *folder = folder_of(path);
    unsigned char *staging = NULL;
    int rc = -1, err;
    int fd = folder ? create_temp(path, &tmp) : -1;
    if (fd < 0) {
        nb_error("%s: %s: cannot create a temporary file in folder '%s': %s", op, path, folder ? folder : "?",
                 strerror(folder ? errno : ENOMEM));
        goto done;
    }
    err = write_all(fd, head, head_len);
    for (int i = 0; !err && i < n; i++) err = write_tensor(fd, tensors[i], &staging);
    if (err) {
        nb_error("%s: %s: cannot write temporary file '%s': %s", op, path, tmp, strerror(err));
        goto fail;
    }
    if (fsync(fd) != 0) {
        nb_error("%s: %s: cannot sync temporary file '%s': %s", op, path, tmp, strerror(errno));
        goto fail;
    }
    err = close(fd);
    fd = -1;
    if (err != 0) {
        nb_error("%s: %s: cannot close temporary file '%s': %s", op, path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        nb_error("%s: %s: cannot rename temporary file '%s' over it: %s", op, path, tmp, strerror(errno));
        goto fail;
    }
    /* make the rename itself durable; some file systems cannot sync a folder (EINVAL) */
    int dfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL)) {
        nb_error("%s: %s: the file was replaced, but syncing folder '%s' failed: %s", op, path, folder, strerror(errno));
        if (dfd >= 0) close(dfd);
        goto done;
    }
    close(dfd);
    remove_stale_temps(path, folder);
    rc = 0;
    goto done;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
done:
    free(staging);
    free(tmp);
    free(folder);
    return rc;
}

