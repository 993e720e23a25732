/* Shared by the libFuzzer targets: the fuzz input is written to a per-process file under /dev/shm
 * (or $TMPDIR, or /tmp), since the readers take a path. Built by tools/fuzz/run.sh, not by Meson. */
#ifndef NABLA_FUZZ_COMMON_H
#define NABLA_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the files made by fuzz_path, removed at exit (libFuzzer exits normally at -max_total_time and
 * after -runs; a crashing run leaves them behind) */
static char fuzz_files[2][4096];

static void fuzz_remove_files(void)
{
    for (int i = 0; i < 2; i++)
        if (fuzz_files[i][0]) unlink(fuzz_files[i]);
}

/* "<dir>/nabla-fuzz-<tag>-<pid><suffix>", the folder chosen once; at most two per process */
static void fuzz_path(char *out, size_t size, const char *tag, const char *suffix)
{
    static const char *dir;
    if (!dir) {
        struct stat st;
        const char *tmp = getenv("TMPDIR");
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
        else dir = tmp && *tmp ? tmp : "/tmp";
    }
    snprintf(out, size, "%s/nabla-fuzz-%s-%ld%s", dir, tag, (long)getpid(), suffix);
    for (int i = 0; i < 2; i++)
        if (!fuzz_files[i][0]) {
            if (i == 0) atexit(fuzz_remove_files);
            snprintf(fuzz_files[i], sizeof fuzz_files[i], "%s", out);
            break;
        }
}

/* Replaces the file's content with data[0..size); aborts on failure (a harness problem, not a finding). */
static void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", path, strerror(errno));
        abort();
    }
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
            abort();
        }
        data += w;
        size -= (size_t)w;
    }
    close(fd);
}

#endif
