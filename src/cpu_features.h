/* cpu_features.h - what the CPU we run on can do, asked once: the one
 * place that runs cpuid (cpu_features.c).  Code built for an instruction
 * set beyond the baseline (__attribute__((target(...)))) is called only
 * where these flags say the CPU has it. */
#ifndef ECF8_CPU_FEATURES_H
#define ECF8_CPU_FEATURES_H

enum ecf8_cpu_feature {
    ECF8_CPU_BMI2 = 1u << 0,   /* BMI1 and BMI2 (x86-64) */
    ECF8_CPU_LZCNT = 1u << 1,  /* LZCNT (its own CPUID bit, ABM) */
    ECF8_CPU_AVX2 = 1u << 2,   /* AVX2, with the OS saving the YMM state */
    ECF8_CPU_AVX512 = 1u << 3, /* AVX-512 F and BW, with the OS saving the ZMM state */
};

/* The ECF8_CPU_* flags of this CPU; 0 on other architectures.  Cached
 * after the first call; safe from any thread. */
unsigned ecf8_cpu_features(void);

#endif
