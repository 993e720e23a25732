/* The machine: BLIS's kernel set chosen from the CPU's features (a pure function, each case), the
 * choice in use on this machine, and threads narrowed while other processes keep the CPUs busy. */
#include "nbtest.h"

#include <blis.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static nb_cpu_features avx512_cpu(nb_cpu_vendor vendor, int family)
{
    return (nb_cpu_features){ .vendor = vendor, .family = family, .avx2 = true, .fma = true, .avx512f = true,
                              .avx512bw = true, .avx512dq = true, .avx512vl = true, .os_ymm = true, .os_zmm = true };
}

START_TEST(test_blas_choice_for_each_cpu)
{
    nb_cpu_features f = avx512_cpu(NB_VENDOR_AMD, 26);   /* Zen 5: BLIS 0.9 alone picks generic */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_SKX);
    f = avx512_cpu(NB_VENDOR_INTEL, 6);                   /* Sapphire Rapids in a VM: BLIS alone picks haswell */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_SKX);
    f.os_zmm = false;                                     /* the OS does not save zmm: 256 bits at most */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_HASWELL);
    f = avx512_cpu(NB_VENDOR_INTEL, 6);
    f.avx512vl = false;                                   /* Knights Landing: no skx */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_HASWELL);
    f = avx512_cpu(NB_VENDOR_AMD, 25);
    f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = f.os_zmm = false;   /* Zen 3 */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_ZEN3);
    f.family = 23;                                        /* Zen, Zen 2: BLIS knows them */
    ck_assert_int_eq(nb_blas_choose(&f), NB_BLAS_OWN_CHOICE);
    f.vendor = NB_VENDOR_OTHER;                           /* Hygon, Zhaoxin...: BLIS alone picks generic */
    ck_assert_int_eq(nb_blas_choose(&f), BLIS_ARCH_HASWELL);
    f.fma = false;                                        /* AVX2 without FMA: leave it to BLIS */
    ck_assert_int_eq(nb_blas_choose(&f), NB_BLAS_OWN_CHOICE);
    f = (nb_cpu_features){ 0 };                           /* no AVX at all */
    ck_assert_int_eq(nb_blas_choose(&f), NB_BLAS_OWN_CHOICE);
    f = avx512_cpu(NB_VENDOR_INTEL, 6);
    f.os_ymm = f.os_zmm = false;                          /* an OS that saves no AVX state */
    ck_assert_int_eq(nb_blas_choose(&f), NB_BLAS_OWN_CHOICE);
}
END_TEST

START_TEST(test_blas_config_in_use)
{
    const nb_blas_config c = nb_blas_info();
    ck_assert_ptr_nonnull(c.config);
    ck_assert_str_eq(c.config, bli_arch_string((arch_t)c.arch));
    const nb_cpu_features f = nb_cpu_detect();
    if (getenv("BLIS_ARCH_TYPE")) {
        ck_assert_str_eq(c.chosen_by, "user");
        return;
    }
    const int want = nb_blas_choose(&f);
    if (want != NB_BLAS_OWN_CHOICE) {
        ck_assert_str_eq(c.chosen_by, "nabla");
        ck_assert_int_eq(c.arch, want);
    }
    if (f.avx2 && f.fma && f.os_ymm) ck_assert_str_ne(c.config, "generic");   /* this project's machines */
    ck_assert_ptr_null(getenv("BLIS_ARCH_TYPE"));   /* the environment is left as it was */
}
END_TEST

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 }, NULL); }

/* with every CPU kept busy by another process, ops narrow to one thread; without narrowing they
 * keep the count asked for */
START_TEST(test_threads_narrow_beside_busy_processes)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    const int cpus = CPU_COUNT(&set);
    ck_assert_int_eq(nb_set_num_threads(cpus > 1 ? cpus : 2), 0);
    pid_t busy[256];
    const int n_busy = cpus < 256 ? cpus : 256;
    for (int i = 0; i < n_busy; i++) {
        busy[i] = fork();
        ck_assert_int_ge(busy[i], 0);
        if (busy[i] == 0)
            for (volatile unsigned long spin = 0;; spin++) {}
    }
    nb_set_adaptive_threads(true);
    int narrowed = 0;
    for (int i = 0; i < 40 && !narrowed; i++) {   /* two samples 50 ms apart are needed */
        sleep_ms(25);
        narrowed = nb_num_threads() == 1;
    }
    const int free_cpus = nb_cpus_free();
    nb_set_adaptive_threads(false);
    const int asked = nb_num_threads();
    for (int i = 0; i < n_busy; i++) {
        kill(busy[i], SIGKILL);
        waitpid(busy[i], NULL, 0);
    }
    ck_assert_msg(narrowed, "%d busy processes on %d CPUs: still %d threads", n_busy, cpus, cpus);
    ck_assert_int_eq(free_cpus, 1);
    ck_assert_int_eq(asked, cpus > 1 ? cpus : 2);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("runtime");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_blas_choice_for_each_cpu);
    tcase_add_test(tc, test_blas_config_in_use);
    tcase_add_test(tc, test_threads_narrow_beside_busy_processes);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(runtime_suite)
