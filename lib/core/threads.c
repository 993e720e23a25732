/* The thread counts of BLIS and of nabla's own OpenMP loops, set together, and narrowed while other
 * processes keep CPUs busy (runtime.h says why). */
#include "../internal.h"

#include <blis.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int nb_set_num_threads(int n)
{
    if (n < 1) {
        nb_error("nb_set_num_threads: the thread count must be at least 1, got %d", n);
        return -1;
    }
    bli_thread_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    return 0;
}

/* ---- other processes' load ---- */
enum { SAMPLE_EVERY_NS = 50 * 1000 * 1000 };

static atomic_bool adaptive = true;
static atomic_llong next_sample_ns;
static atomic_int busy_last;   /* other processes' runnable threads in the last sample */
static atomic_int free_now;    /* what nb_cpus_free says until the next sample; 0 before the first */

void nb_set_adaptive_threads(bool on) { atomic_store(&adaptive, on); }

/* the text of a small /proc file, or an empty string */
static void read_small(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

/* this process's threads that are running or runnable now ('R' after the name in their stat) */
static int own_runnable(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return 1;
    int running = 0;
    char path[64], stat[512];
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        read_small(path, stat, sizeof stat);
        const char *paren = strrchr(stat, ')');
        running += paren && paren[1] == ' ' && paren[2] == 'R';
    }
    closedir(dir);
    return running > 0 ? running : 1;
}

/* runnable threads of other processes: the system's (4th field of /proc/loadavg, "running/total")
 * less this process's. Ours are counted just before and just after the system's and the larger
 * count is taken: our threads wake and sleep between parallel regions, and one counted as another
 * process's would narrow the threads of an idle machine. */
static int others_runnable(void)
{
    const int own_before = own_runnable();
    char text[128];
    read_small("/proc/loadavg", text, sizeof text);
    const int own_after = own_runnable();
    double l1, l5, l15;
    int running, total;
    if (sscanf(text, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total) != 5) return 0;
    const int others = running - (own_before > own_after ? own_before : own_after);
    return others > 0 ? others : 0;
}

/* the CPUs this process may run on */
static int cpus_usable(void)
{
    cpu_set_t set;
    const int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

int nb_cpus_free(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    const long long now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    long long due = atomic_load_explicit(&next_sample_ns, memory_order_relaxed);
    if (now >= due && atomic_compare_exchange_strong(&next_sample_ns, &due, now + SAMPLE_EVERY_NS)) {
        const int last = others_runnable(), before = atomic_exchange(&busy_last, last);
        const int busy = last < before ? last : before;   /* loaded in both samples */
        /* loadavg counts the whole machine's runnable threads, so they are taken from all its CPUs: a
         * process pinned to 2 of 64 CPUs is not narrowed by load on the other 62 */
        const int online = (int)sysconf(_SC_NPROCESSORS_ONLN), mine = cpus_usable();
        const int free_cpus = online - busy < mine ? online - busy : mine;
        atomic_store(&free_now, free_cpus > 1 ? free_cpus : 1);
    }
    const int n = atomic_load_explicit(&free_now, memory_order_relaxed);
    return n > 0 ? n : cpus_usable();   /* 0: another thread is taking the first sample */
}

static int narrowed(int asked)
{
    if (asked < 2 || !atomic_load_explicit(&adaptive, memory_order_relaxed)) return asked;
    const int free_cpus = nb_cpus_free();
    return asked < free_cpus ? asked : free_cpus;
}

int nb_parallel_threads(void)
{
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : narrowed(omp_get_max_threads());
#else
    return 1;
#endif
}

int nb_blas_threads(void)
{
#ifdef _OPENMP
    /* inside any parallel region, even a one-thread one, a BLIS team would be nested, and libgomp
     * creates a nested team's threads anew on every call: one product per thread there */
    if (omp_get_level() > 0) return 1;
#endif
    const dim_t asked = bli_thread_get_num_threads();   /* -1: none set, or set per loop (BLIS_JC_NT, ...) */
    return asked < 1 ? -1 : narrowed((int)asked);
}

int nb_num_threads(void) { return nb_parallel_threads(); }
