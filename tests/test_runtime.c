/* The machine: BLIS's kernel set chosen from the CPU's features (a pure function, each case), the
 * choice in use on this machine, and threads narrowed while other processes keep the CPUs busy. */
#include "nbtest.h"

#include <blis.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
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
        /* the child never touches Check: it shares the test's message channel with the parent */
        if (busy[i] == 0) {   /* ends with the test's process, or after 30 s whatever happens */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            alarm(30);
            for (volatile unsigned long spin = 0;; spin++) {}
        }
        ck_assert_int_gt(busy[i], 0);
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

/* ---- every instruction-set level computes the same bits ---- */

#define LEVEL_RESULTS (2 * 14)

/* elementwise ops (contiguous, broadcast and strided), sums, a backward, and two steps of every
 * optimizer, in f32 and f64, at one level; sizes that leave partial vectors at every width */
static void results_at_level(nb_isa level, nb_tensor **out)
{
    ck_assert_int_eq(nb_set_isa(level), 0);
    int k = 0;
    for (int d = 0; d < 2; d++) {
        const nb_dtype dt = d ? NB_F64 : NB_F32;
        nb_rng rng;
        nb_rng_seed(&rng, 60);
        nb_tensor *a = nb_randn(dt, NB_SHAPE(67, 131), &rng, 1.0), *b = nb_randn(dt, NB_SHAPE(131), &rng, 1.0);
        nb_set_requires_grad(a, true);
        nb_tensor *y = nb_div(nb_mul(nb_add(a, b), nb_exp(nb_mul_scalar(a, 0.5))), nb_add_scalar(nb_square(b), 1));
        out[k++] = y;
        out[k++] = nb_relu(nb_sub(nb_transpose(a, 0, 1), nb_sqrt(nb_abs(nb_transpose(a, 0, 1)))));
        out[k++] = nb_sum_axes(y, NB_AXES(0), false);
        out[k++] = nb_sum_axes(y, NB_AXES(1), true);
        out[k++] = nb_maximum(a, b);
        nb_tensor *ga = NULL;
        ck_assert_int_eq(nb_grad(nb_sum(nb_relu(y)), NULL, 1, &a, &ga, false), 0);
        out[k++] = ga;
        for (int kind = NB_SGD; kind <= NB_ADAMW; kind++) {
            nb_tensor *w = nb_param(nb_randn(dt, NB_SHAPE(1031), &rng, 1.0));
            const char *name = "w";
            nb_optimizer *o = nb_optimizer_new(nb_optim_defaults((nb_optim_kind)kind), 1, &w, &name);
            ck_assert_ptr_nonnull(o);
            for (int step = 0; step < 2; step++) {
                nb_tensor *loss = nb_sum(nb_mul(nb_square(w), nb_randn(dt, NB_SHAPE(1031), &rng, 1.0)));
                nb_optimizer_zero_grad(o);
                ck_assert_int_eq(nb_backward(loss), 0);
                ck_assert_int_eq(nb_optimizer_step(o), 0);
            }
            out[k++] = nb_copy(w);
            nb_optimizer_free(o);
            nb_free(w);
        }
        out[k++] = nb_mean(y);
        out[k++] = nb_sum(a);
    }
    ck_assert_int_eq(k, LEVEL_RESULTS);
}

/* ISO C mode contracts no a·b + c into an FMA and reassociates no sum, so the wider kernels add the
 * same values in the same order: every level must give the same bits */
START_TEST(test_every_level_gives_the_same_bits)
{
    const nb_isa best = nb_isa_best();
    nb_tensor *at[3][LEVEL_RESULTS];
    for (int level = NB_ISA_GENERIC; level <= (int)best; level++) results_at_level((nb_isa)level, at[level]);
    ck_assert_int_eq(nb_set_isa(best), 0);
    for (int level = NB_ISA_AVX2; level <= (int)best; level++)
        for (int k = 0; k < LEVEL_RESULTS; k++) nbt_assert_same_bits(at[NB_ISA_GENERIC][k], at[level][k], nb_isa_name((nb_isa)level), k);
}
END_TEST

START_TEST(test_isa_levels_refused_and_named)
{
    ck_assert_str_eq(nb_isa_name(NB_ISA_GENERIC), "generic");
    ck_assert_str_eq(nb_isa_name(NB_ISA_AVX2), "avx2");
    ck_assert_str_eq(nb_isa_name(NB_ISA_AVX512), "avx512");
    ck_assert_int_eq(nb_set_isa((nb_isa)7), -1);
    char want[128];
    snprintf(want, sizeof want, "nb_set_isa: this CPU (or build) runs at most %s, not unknown", nb_isa_name(nb_isa_best()));
    ck_assert_str_eq(nb_last_error(), want);
    ck_assert_int_eq(nb_set_isa(NB_ISA_GENERIC), 0);
    ck_assert_int_eq(nb_isa_current(), NB_ISA_GENERIC);
    ck_assert_int_eq(nb_set_isa(nb_isa_best()), 0);
    const nb_cpu_features f = nb_cpu_detect();   /* a build with clones (best above generic) uses all of them */
    if (nb_isa_best() != NB_ISA_GENERIC && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.os_zmm)
        ck_assert_int_eq(nb_isa_best(), NB_ISA_AVX512);
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
    tcase_add_test(tc, test_every_level_gives_the_same_bits);
    tcase_add_test(tc, test_isa_levels_refused_and_named);
    suite_add_tcase(s, tc);
    return s;
}

NBT_MAIN(runtime_suite)
