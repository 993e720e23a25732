/* What the command-line tools share (see cli.h). */
#include "cli.h"

#include <nabla/nabla.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Noreturn void tool_bad_usage(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for the options.\n", prog);
    exit(2);
}

int tool_set_threads(int threads, int fallback, char **argv)
{
    if (!threads) {
        const char *env = getenv("BLIS_NUM_THREADS");
        char *end;
        long v = env ? strtol(env, &end, 10) : 0;
        threads = env && *env && !*end && v >= 1 && v <= 1024 ? (int)v : fallback;
    }
    char text[16];
    snprintf(text, sizeof text, "%d", threads);
    setenv("BLIS_NUM_THREADS", text, 1);
    setenv("OMP_NUM_THREADS", text, 1);
    nb_set_num_threads(threads);   /* the OpenMP runtime read the environment before main */
    const char *preload = getenv("LD_PRELOAD");
    bool valgrind = preload && strstr(preload, "vgpreload");
    if (threads > 1 && !getenv("OMP_WAIT_POLICY") && !getenv("NABLA_THREADS_REEXEC") && !valgrind) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            setenv("OMP_WAIT_POLICY", "passive", 1);
            setenv("NABLA_THREADS_REEXEC", "1", 1);
            fflush(NULL);
            execv(self, argv);
            unsetenv("OMP_WAIT_POLICY");   /* exec failed: carry on with what the runtime has */
        }
    }
    return threads;
}

bool tool_on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/bin:/bin";
    char dir[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + strlen(name) + 2 < sizeof dir) {
            snprintf(dir, sizeof dir, "%.*s/%s", (int)n, path, name);
            struct stat st;
            if (stat(dir, &st) == 0 && S_ISREG(st.st_mode) && access(dir, X_OK) == 0) return true;
        }
        path += n;
        if (*path == ':') path++;
    }
    return false;
}
