/* The machine nabla runs on: the CPU's features, which BLIS kernels and which of nabla's own kernel
 * sets (instruction-set levels) are in use, and the threads inside ops. nabla chooses all of it
 * itself at start-up; nothing here needs to be called for full speed. */
#ifndef NABLA_RUNTIME_H
#define NABLA_RUNTIME_H

#include <stdbool.h>

/* ---- the CPU ---- */
typedef enum { NB_VENDOR_OTHER, NB_VENDOR_INTEL, NB_VENDOR_AMD } nb_cpu_vendor;
typedef struct {
    nb_cpu_vendor vendor;
    int family;                          /* CPUID's display family (base + extended), e.g. 26 = Zen 5 */
    bool avx2, fma;
    bool avx512f, avx512bw, avx512dq, avx512vl;
    bool os_ymm, os_zmm;                 /* the OS saves the 256-bit / 512-bit registers (XCR0) */
} nb_cpu_features;
nb_cpu_features nb_cpu_detect(void);     /* this CPU (all false off x86-64) */

/* ---- BLIS's kernels ----
 * Debian's BLIS picks its kernel set ("sub-configuration") from the CPU and falls back to narrow
 * kernels on CPUs it does not know (generic on AMD Zen 5: about 33 of 181 GFLOP/s; haswell on Intel
 * Sapphire Rapids in a VM). When libnabla is loaded, before BLIS initialises, and unless the user set
 * BLIS_ARCH_TYPE (theirs always wins), nabla sets BLIS_ARCH_TYPE to nb_blas_choose(this CPU), lets
 * BLIS initialise, and restores the environment as it was. This happens in a load-time constructor,
 * only while the process has a single thread: a program that loads libnabla with dlopen beside other
 * threads, or that initialised BLIS before, keeps BLIS's own choice (nb_blas_info says which). BLIS
 * reads BLIS_NUM_THREADS when it initialises, so then at load: later, set threads with
 * nb_set_num_threads. A sub-configuration the BLIS in use was not built with is never asked for. */
#define NB_BLAS_OWN_CHOICE (-1)
/* the BLIS arch_t for these features, or NB_BLAS_OWN_CHOICE: AVX-512 F/BW/DQ/VL with the OS saving
 * zmm -> skx; else AVX2 + FMA with ymm saved -> zen3 on AMD family 25 and later, BLIS's own on
 * older AMD (zen, zen2: as wide), haswell on the rest; else BLIS's own. A pure function. */
int nb_blas_choose(const nb_cpu_features *f);
typedef struct {
    const char *config;                  /* the sub-configuration BLIS uses, e.g. "skx" */
    int arch;                            /* its arch_t */
    const char *chosen_by;               /* "nabla", "user" (BLIS_ARCH_TYPE was set) or "blis" */
} nb_blas_config;
nb_blas_config nb_blas_info(void);

/* ---- nabla's own kernel sets ----
 * Every hot kernel (the fused convolution's forward, dx and dw tiles and its helpers, elementwise
 * rows, sums, batchnorm, pooling, the optimizers' updates) exists for three instruction-set levels:
 * generic x86-64, AVX2 (x86-64-v3: 16 vector registers of 256 bits) and AVX-512 (x86-64-v4: 32 of
 * 512 bits; the convolution's tiles twice as wide or twice as tall). Each op runs the best level the
 * CPU has. NABLA_ISA=generic|avx2|avx512 in the environment (read once, at the first op) or
 * nb_set_isa() lowers it, for tests and comparisons; a level the CPU lacks is refused. The levels
 * give the same bits, except in the fused convolution: its generic level has no fused multiply-add,
 * and its AVX-512 forward and dx tiles for fewer than 32 filters (16 in f64) add a window's even and
 * odd taps apart (both agree with AVX2 to rounding). Building with -Dclones=false, or with another
 * compiler than GCC, leaves only the generic level. */
typedef enum { NB_ISA_GENERIC, NB_ISA_AVX2, NB_ISA_AVX512 } nb_isa;
nb_isa nb_isa_best(void);                /* the widest level this CPU (and this build) runs */
nb_isa nb_isa_current(void);             /* the level in use */
int nb_set_isa(nb_isa level);            /* 0, or -1 with an error when the CPU lacks it */
const char *nb_isa_name(nb_isa level);   /* "generic", "avx2", "avx512" */

/* ---- threads inside ops ----
 * Matrix products run on BLIS's threads, large elementwise ops, im2col and pooling on OpenMP's.
 * By default both follow the environment (BLIS_NUM_THREADS, else OMP_NUM_THREADS; OpenMP: the CPU
 * count). nb_set_num_threads(n >= 1) sets both to n (OpenMP's for the calling thread, BLIS's for the
 * process); -1 with an error otherwise. Results do not depend on the thread count.
 * When other processes keep CPUs busy, a thread that waits at a barrier for a descheduled partner
 * wastes whole time slices (beside one busy process on 2 CPUs, 2 threads ran up to 5x slower than 1 in nabla-bench, 40x in
 * nabla-train). So each op
 * uses at most as many threads as there are CPUs not taken by other processes' runnable threads
 * (this process's own threads do not count; the machine's CPUs less the other threads, at most the
 * CPUs this process may run on), sampled from /proc/loadavg at most every 50 ms and
 * narrowed only after two loaded samples in a row. nb_num_threads says what an op would use now;
 * nb_set_adaptive_threads(false) turns the narrowing off for the process (tests that compare thread
 * counts need the count they asked for). */
int nb_set_num_threads(int n);
int nb_num_threads(void);
void nb_set_adaptive_threads(bool on);
int nb_cpus_free(void);                  /* the CPUs other processes leave this one (the last samples) */

#endif
