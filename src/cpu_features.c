/* cpu_features.c - CPU feature flags (cpu_features.h), asked once. */
#include "cpu_features.h"

#include <stdatomic.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

static unsigned detect(void)
{
    unsigned a, b, c, d, f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")) f |= ECF8_CPU_BMI2;
    /* Compilers' feature tests do not all know LZCNT: CPUID 0x80000001. */
    if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LZCNT)) f |= ECF8_CPU_LZCNT;
    /* __builtin_cpu_supports checks that the OS saves the vector state. */
    if (__builtin_cpu_supports("avx2")) f |= ECF8_CPU_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        f |= ECF8_CPU_AVX512;
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

unsigned ecf8_cpu_features(void)
{
    /* The flags with bit 31 set once known; racing first calls store the
     * same value. */
    static _Atomic unsigned known = 0;
    unsigned v = atomic_load_explicit(&known, memory_order_relaxed);
    if (!v) {
        v = detect() | 1u << 31;
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v & ~(1u << 31);
}
