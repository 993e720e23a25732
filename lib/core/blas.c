/* Which BLIS kernels run nabla's matrix products: chosen from the CPU when libnabla loads (see
 * runtime.h for why and when). */
#include "../internal.h"

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>

int nb_blas_choose(const nb_cpu_features *f)
{
    if (f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl && f->os_zmm) return BLIS_ARCH_SKX;
    if (!(f->avx2 && f->fma && f->os_ymm)) return NB_BLAS_OWN_CHOICE;
    if (f->vendor == NB_VENDOR_AMD) return f->family >= 0x19 ? BLIS_ARCH_ZEN3 : NB_BLAS_OWN_CHOICE;
    return BLIS_ARCH_HASWELL;
}

static const char *blas_chosen_by = "blis";

/* Runs when libnabla is loaded, before main and before any BLIS call of nabla's. */
__attribute__((constructor)) static void blas_select(void)
{
    if (getenv("BLIS_ARCH_TYPE")) {
        blas_chosen_by = "user";
        return;
    }
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
