/* Which BLIS kernels run nabla's matrix products: chosen from the CPU when libnabla loads (see
 * runtime.h for why and when). */
#include "../internal.h"

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>

/* the sub-configurations this BLIS was built with (asking for another one aborts in BLIS) */
#ifdef BLIS_CONFIG_SKX
#define HAVE_SKX 1
#else
#define HAVE_SKX 0
#endif
#ifdef BLIS_CONFIG_ZEN3
#define HAVE_ZEN3 1
#else
#define HAVE_ZEN3 0
#endif
#ifdef BLIS_CONFIG_HASWELL
#define HAVE_HASWELL 1
#else
#define HAVE_HASWELL 0
#endif

int nb_blas_choose(const nb_cpu_features *f)
{
    if (f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl && f->os_zmm && HAVE_SKX) return BLIS_ARCH_SKX;
    if (!(f->avx2 && f->fma && f->os_ymm)) return NB_BLAS_OWN_CHOICE;
    if (f->vendor == NB_VENDOR_AMD) return f->family >= 0x19 && HAVE_ZEN3 ? BLIS_ARCH_ZEN3 : NB_BLAS_OWN_CHOICE;
    return HAVE_HASWELL ? BLIS_ARCH_HASWELL : NB_BLAS_OWN_CHOICE;
}

/* the threads of this process now ("Threads:" in /proc/self/status), 0 when unknown */
static int process_threads(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f) && sscanf(line, "Threads: %d", &n) != 1) {}
    fclose(f);
    return n;
}

static const char *blas_chosen_by = "blis";

/* Runs when libnabla is loaded, before main and before any BLIS call of nabla's. */
__attribute__((constructor)) static void blas_select(void)
{
    if (getenv("BLIS_ARCH_TYPE")) {
        blas_chosen_by = "user";
        return;
    }
    if (process_threads() != 1) return;   /* loaded by dlopen beside other threads: no setenv under them */
    const nb_cpu_features f = nb_cpu_detect();
    const int arch = nb_blas_choose(&f);
    if (arch == NB_BLAS_OWN_CHOICE) return;
    char text[16];
    snprintf(text, sizeof text, "%d", arch);
    setenv("BLIS_ARCH_TYPE", text, 0);
    bli_init();   /* BLIS reads the variable here, once */
    unsetenv("BLIS_ARCH_TYPE");
    blas_chosen_by = (int)bli_arch_query_id() == arch ? "nabla" : "blis";
}

nb_blas_config nb_blas_info(void)
{
    bli_init();   /* BLIS 0.9 aborts when the arch is queried before it initialised with BLIS_ARCH_TYPE set */
    const arch_t id = bli_arch_query_id();
    return (nb_blas_config){ .config = bli_arch_string(id), .arch = (int)id, .chosen_by = blas_chosen_by };
}
