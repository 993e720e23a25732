/* What the command-line tools share: usage errors and thread setup. */
#ifndef NABLA_TOOLS_CLI_H
#define NABLA_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* "<prog>: <message>", a hint to run --help, exit status 2 */
_Noreturn void tool_bad_usage(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* BLIS reads BLIS_NUM_THREADS at its first call, so setting it before any nabla call is enough for
 * BLIS. The OpenMP runtime (libgomp, which BLIS's OpenMP build uses) reads OMP_* when it is loaded,
 * before main: its default of busy-waiting threads made 2 threads 5-14x slower than 1 on a loaded
 * 2-core machine, while with OMP_WAIT_POLICY=passive 2 threads ran about as fast as 1 or faster.
 * So this sets BLIS_NUM_THREADS and OMP_NUM_THREADS to `threads` (0: $BLIS_NUM_THREADS when valid,
 * else `fallback`) and, with more than one thread and no OMP_WAIT_POLICY of the user's, sets it to
 * passive and re-executes the program once (not under valgrind, which would lose track of it),
 * with libgomp's GOMP_SPINCOUNT at 10000 unless set: a thread spins that long (some microseconds)
 * before it sleeps, so back-to-back parallel regions do not pay a futex wake-up each (W1 and W2 10%
 * faster at 2 threads), and a thread whose CPU is taken still sleeps almost at once.
 * Then nb_set_num_threads(threads). Returns the thread count chosen. */
int tool_set_threads(int threads, int fallback, char **argv);

/* option values, or a usage error (exit 2) naming the option: an integer in [lo, hi]; a finite
 * number >= lo (> lo when strict) and <= hi; the index of s among names[0..n) */
int64_t tool_parse_int(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi);
double tool_parse_num(const char *prog, const char *opt, const char *s, double lo, bool strict, double hi);
int tool_parse_choice(const char *prog, const char *opt, const char *s, const char *const *names, int n);

/* an output path the run can write: not empty, not a folder or a special file, in a folder that exists
 * and is writable; checked before any work, so that an hour of training is not lost to a typo (usage
 * error, exit 2, otherwise) */
void tool_check_output(const char *prog, const char *flag, const char *path);

/* whether an executable `name` is in a folder of $PATH (gnuplot for plots) */
bool tool_on_path(const char *name);

#endif
