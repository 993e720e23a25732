/* The CPU's features from CPUID and XCR0 (which registers the OS saves on a context switch). */
#include "../internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

nb_cpu_features nb_cpu_detect(void)
{
    nb_cpu_features f = { 0 };
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    const unsigned max_leaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4), vendor[12] = '\0';
    f.vendor = !strcmp(vendor, "GenuineIntel") ? NB_VENDOR_INTEL
               : !strcmp(vendor, "AuthenticAMD") ? NB_VENDOR_AMD : NB_VENDOR_OTHER;
    __get_cpuid(1, &a, &b, &c, &d);
    const int base_family = (a >> 8) & 0xf;
    f.family = base_family + (base_family == 0xf ? (a >> 20) & 0xff : 0);
    f.fma = c & bit_FMA;
    const bool osxsave = c & bit_OSXSAVE, avx = c & bit_AVX;
    if (osxsave && avx) {
        const uint64_t x = xcr0();
        f.os_ymm = (x & 0x6) == 0x6;               /* SSE and AVX state */
        f.os_zmm = f.os_ymm && (x & 0xe0) == 0xe0; /* opmask, upper zmm0-15, zmm16-31 */
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = b & bit_AVX2;
        f.avx512f = b & bit_AVX512F;
        f.avx512dq = b & bit_AVX512DQ;
        f.avx512bw = b & bit_AVX512BW;
        f.avx512vl = b & bit_AVX512VL;
    }
    return f;
}
#else
nb_cpu_features nb_cpu_detect(void) { return (nb_cpu_features){ 0 }; }
#endif
