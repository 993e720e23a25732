/* Which of nabla's kernel sets runs: the best the CPU has, or a lower one asked for (runtime.h). */
#include "../internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = { "generic", "avx2", "avx512" };

const char *nb_isa_name(nb_isa level)
{
    return level >= NB_ISA_GENERIC && level <= NB_ISA_AVX512 ? names[level] : "unknown";
}

nb_isa nb_isa_best(void)
{
#if NB_CLONES
    if (__builtin_cpu_supports("x86-64-v4")) return NB_ISA_AVX512;
    if (__builtin_cpu_supports("x86-64-v3")) return NB_ISA_AVX2;
#endif
    return NB_ISA_GENERIC;
}

static atomic_int current = -1;   /* -1 until the first op reads NABLA_ISA */

int nb_set_isa(nb_isa level)
{
    if (level < NB_ISA_GENERIC || level > nb_isa_best()) {
        nb_error("nb_set_isa: this CPU (or build) runs at most %s, not %s", nb_isa_name(nb_isa_best()),
                 nb_isa_name(level));
        return -1;
    }
    atomic_store(&current, (int)level);
    return 0;
}

nb_isa nb_isa_current(void)
{
    int level = atomic_load_explicit(&current, memory_order_relaxed);
    if (level >= 0) return (nb_isa)level;
    level = (int)nb_isa_best();
    const char *asked = getenv("NABLA_ISA");
    if (asked) {
        int l = 0;
        while (l <= NB_ISA_AVX512 && strcmp(asked, names[l])) l++;
        if (l <= level) level = l;
        else   /* not an error of any op: said once, and the best level runs */
            fprintf(stderr, "nabla: NABLA_ISA=%s ignored: %s; running %s\n", asked,
                    l <= NB_ISA_AVX512 ? "this CPU lacks it" : "expected generic, avx2 or avx512", names[level]);
    }
    int unset = -1;
    atomic_compare_exchange_strong(&current, &unset, level);
    return (nb_isa)atomic_load(&current);
}
