/* What the command-line tools share (see cli.h). */
#include "cli.h"

#include <nabla/nabla.h>

#include <errno.h>
#include <math.h>
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
            setenv("GOMP_SPINCOUNT", "10000", 0);   /* a short spin first: no futex sleep between nearby regions */
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

int64_t tool_parse_int(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        if (hi == INT64_MAX) tool_bad_usage(prog, "%s: expected an integer >= %lld, got '%s'", opt, (long long)lo, s);
        tool_bad_usage(prog, "%s: expected an integer from %lld to %lld, got '%s'", opt, (long long)lo, (long long)hi, s);
    }
    return v;
}

double tool_parse_num(const char *prog, const char *opt, const char *s, double lo, bool strict, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || (strict && v == lo) || v > hi) {
        if (isinf(hi)) tool_bad_usage(prog, "%s: expected a number %s %g, got '%s'", opt, strict ? ">" : ">=", lo, s);
        tool_bad_usage(prog, "%s: expected a number in %s%g, %g], got '%s'", opt, strict ? "(" : "[", lo, hi, s);
    }
    return v;
}

int tool_parse_choice(const char *prog, const char *opt, const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n) strncat(list, i + 2 == n ? " or " : ", ", sizeof list - strlen(list) - 1);
    }
    tool_bad_usage(prog, "%s: expected %s, got '%s'", opt, list, s);
}

/* an output path the run can write: not empty, not a folder or a special file, in a folder that exists
 * and is writable; checked before training so that an hour of training is not lost to a typo */
void tool_check_output(const char *prog, const char *flag, const char *path)
{
    if (!path) return;
    if (!*path) tool_bad_usage(prog, "%s: empty path", flag);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) tool_bad_usage(prog, "%s %s: not a regular file", flag, path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) tool_bad_usage(prog, "%s %s: the folder %s does not exist", flag, path, dir);
    if (access(dir, W_OK | X_OK) != 0) tool_bad_usage(prog, "%s %s: cannot write into the folder %s: %s", flag, path, dir, strerror(errno));
}

