/* Crash safety of atomic saves: a child process saves checkpoints to one path in a loop, each one
 * a complete "generation" (every value encodes the generation number); the parent SIGKILLs it at
 * random moments, many times, and after each kill the file at the path must load and hold exactly
 * one generation — the last one the child reported finished, or the one it was writing (already
 * renamed into place when the kill landed). Temporary files left behind by the killed writers are
 * counted: they never replace or corrupt the checkpoint. */
#include "nbtest.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 200
#define MAX_SLEEP_US 12000   /* a save takes ~10 ms on ext4 (two fsyncs), so kills land in every phase */
#define N_BIG 20000   /* elements of the large tensor: ~160 kB per file, so kills land mid-write */

static const char *const names[3] = { "big", "small", "gen" };

/* generation g: big[i] = g + i / 2^20 (f64), small[j] = g * 8 + j (f32), gen = [g] (i64) */
static int save_generation(const char *path, int64_t g)
{
    nb_tensor *big = nb_arange(NB_F64, 0, N_BIG, 1);
    nb_tensor *t[3] = {
        nb_add(nb_mul(big, nb_scalar(NB_F64, 1.0 / 1048576.0)), nb_scalar(NB_F64, (double)g)),
        nb_add(nb_arange(NB_F32, 0, 8, 1), nb_scalar(NB_F32, (double)(g * 8))),
        nb_full(NB_I64, NB_SHAPE(1), (double)g),
    };
    char gs[32];
    snprintf(gs, sizeof gs, "%lld", (long long)g);
    const char *keys[1] = { "generation" }, *values[1] = { gs };
    int rc = nb_safetensors_save(path, 3, names, t, 1, keys, values);
    nb_scope_reset(NULL);
    return rc;
}

/* the generation the file holds, or -1 (with a message in why) when it is not one whole generation */
static int64_t generation_of(const char *path, char *why, size_t size)
{
    nb_safetensors *st = nb_safetensors_load(path);
    if (!st) {
        snprintf(why, size, "load failed: %s", nb_last_error());
        return -1;
    }
    int64_t g = -1;
    const char *meta = nb_safetensors_meta(st, "generation");
    nb_tensor *big = nb_safetensors_get(st, "big"), *small = nb_safetensors_get(st, "small"),
              *gen = nb_safetensors_get(st, "gen");
    if (st->n != 3 || !meta || !big || !small || !gen || nb_numel(big) != N_BIG || nb_numel(small) != 8 ||
        nb_numel(gen) != 1) {
        snprintf(why, size, "wrong layout (%d tensors)", st->n);
        goto out;
    }
    g = (int64_t)nb_get(gen, 0);
    if (strtoll(meta, NULL, 10) != g) {
        snprintf(why, size, "metadata generation %s, tensor generation %lld", meta, (long long)g);
        g = -1;
        goto out;
    }
    for (int64_t j = 0; j < 8; j++)
        if (nb_get(small, j) != (double)(float)(g * 8 + j)) {
            snprintf(why, size, "small[%lld] = %.9g in generation %lld", (long long)j, nb_get(small, j), (long long)g);
            g = -1;
            goto out;
        }
    for (int64_t i = 0; i < N_BIG; i++)
        if (nb_get(big, i) != (double)i * (1.0 / 1048576.0) + (double)g) {
            snprintf(why, size, "big[%lld] = %.17g in generation %lld", (long long)i, nb_get(big, i), (long long)g);
            g = -1;
            goto out;
        }
out:
    nb_safetensors_free(st);
    return g;
}

/* files in dir whose name starts with prefix */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    ck_assert(d != NULL);
    int n = 0;
    size_t len = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, len) == 0) n++;
    closedir(d);
    return n;
}

static void remove_all(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* shared with the child: the last generation whose save returned, and the one being written */
typedef struct { volatile int64_t done, writing; volatile int failed; } progress;

START_TEST(test_sigkill_during_saves_leaves_one_whole_generation)
{
    char dir[] = "/tmp/nabla-crash-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);

    progress *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    ck_assert_msg(save_generation(path, 0) == 0, "%s", nb_last_error());
    p->done = p->writing = 0;

    unsigned seed = 12345;
    int64_t last = 0, changes = 0, in_flight_seen = 0, prev_temps = 0;
    int64_t first_gen_of_kill[KILLS];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < KILLS; k++) {
        int64_t start = p->done + 1;
        first_gen_of_kill[k] = start;
        pid_t pid = fork();
        /* the child must not touch Check: its assertions write to the test's message channel, which
         * the child shares with the parent (a child's write raced the parent's: "Bad message type") */
        if (pid == 0) {
            for (int64_t g = start;; g++) {
                p->writing = g;
                if (save_generation(path, g) != 0) {
                    p->failed = 1;
                    _exit(1);
                }
                p->done = g;
            }
        }
        ck_assert(pid > 0);
        usleep((useconds_t)(rand_r(&seed) % (MAX_SLEEP_US + 1)));
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(p->failed == 0, "the child's save failed");
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        char why[256] = "";
        int64_t g = generation_of(path, why, sizeof why);
        ck_assert_msg(g >= 0, "after kill %d: %s", k, why);
        /* the last finished save, or the one in flight when it had already been renamed into place */
        int64_t done = p->done;
        ck_assert_msg(g == done || g == done + 1, "after kill %d: generation %lld, last finished %lld", k,
                      (long long)g, (long long)done);
        ck_assert_msg(g >= last, "after kill %d: generation went back from %lld to %lld", k, (long long)last,
                      (long long)g);
        if (g == done + 1) {
            in_flight_seen++;
            p->done = g;   /* the next child continues after it */
        }
        if (g != last) changes++;
        last = g;
        /* a kill leaves at most the one temporary file the child was writing */
        int temps = count_prefixed(dir, "ckpt.safetensors.tmp.");
        ck_assert_msg(temps <= prev_temps + 1, "after kill %d: %d temporary files, %lld before", k, temps,
                      (long long)prev_temps);
        prev_temps = temps;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int temps = count_prefixed(dir, "ckpt.safetensors.tmp.");
    int killed_before_first_save = 0;
    for (int k = 0; k + 1 < KILLS; k++)
        if (first_gen_of_kill[k + 1] == first_gen_of_kill[k]) killed_before_first_save++;
    printf("crash: %d kills in %.2f s, %lld generations written (final %lld), file changed after %lld kills, "
           "%lld kills caught a renamed-but-unreported save, %d kills before a child's first save completed, "
           "%d temporary files left\n",
           KILLS, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), (long long)last,
           (long long)last, (long long)changes, (long long)in_flight_seen, killed_before_first_save, temps);
    /* each killed writer can leave at most its one temporary file behind */
    ck_assert_int_le(temps, KILLS);

    /* a new save still works, replaces the checkpoint and removes the dead writers' leftovers */
    ck_assert_msg(save_generation(path, last + 1) == 0, "%s", nb_last_error());
    char why[256] = "";
    ck_assert_msg(generation_of(path, why, sizeof why) == last + 1, "%s", why);
    ck_assert_int_eq(count_prefixed(dir, "ckpt.safetensors.tmp."), 0);

    munmap(p, sizeof *p);
    remove_all(dir);
}
END_TEST

static Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sigkill_during_saves_leaves_one_whole_generation);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(crash_suite)
