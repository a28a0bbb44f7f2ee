/* cpu.c: what a program sets up about the CPU before it computes: OpenBLAS kernels that fit
 * the CPU (see clofnet.h, "BLAS kernels") and the float mode (cn_fp_policy). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "internal.h"

/* Equal ignoring ASCII case. */
static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* The kernel set to force (see clofnet.h). */
const char *cn_blas_pick(const char *chosen, unsigned features)
{
    /* "Prescott" is what OpenBLAS's dynamic dispatch falls back to for a CPU model it has no
     * entry for; a CPU it knows keeps the library's own choice, even where another kernel set
     * might be faster on it. */
    if (!chosen || !same_name(chosen, "Prescott"))
        return NULL;
    const unsigned avx512 = CN_CPU_AVX512F | CN_CPU_AVX512BW | CN_CPU_AVX512DQ | CN_CPU_AVX512VL;
    if ((features & avx512) == avx512)
        return "SkylakeX";
    if ((features & (CN_CPU_AVX2 | CN_CPU_FMA)) == (CN_CPU_AVX2 | CN_CPU_FMA))
        return "Haswell";
    if (features & CN_CPU_AVX)
        return "Sandybridge";
    return NULL;
}

/* What this CPU and its operating system support (see clofnet.h). */
unsigned cn_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's answers include the operating system's support (XCR0) for the wider registers */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx"))
        f |= CN_CPU_AVX;
    if (__builtin_cpu_supports("avx2"))
        f |= CN_CPU_AVX2;
    if (__builtin_cpu_supports("fma"))
        f |= CN_CPU_FMA;
    if (__builtin_cpu_supports("avx512f"))
        f |= CN_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw"))
        f |= CN_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512dq"))
        f |= CN_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vl"))
        f |= CN_CPU_AVX512VL;
#endif
    return f;
}

/* The kernel set this process runs on (see clofnet.h). */
const char *cn_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* Re-execute with the fitting kernel set (see clofnet.h). */
int cn_blas_reexec(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return 0; /* the user's choice, or this is the re-executed process */
    const char *core = cn_blas_pick(cn_blas_core(), cn_cpu_features());
    if (!core)
        return 0;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0)
        return -1;
    execv("/proc/self/exe", argv);
    /* still here: keep the variable (it says what was tried) and run on the slow kernels */
    return -1;
}

/* Subnormal floats flushed to zero (see clofnet.h). */
void cn_fp_policy(void)
{
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | CN_MXCSR_FTZ | CN_MXCSR_DAZ);
#endif
}

/* Whether the calling thread flushes subnormals (see clofnet.h). */
int cn_fp_policy_active(void)
{
#if defined(__SSE__)
    const unsigned both = CN_MXCSR_FTZ | CN_MXCSR_DAZ;
    return (_mm_getcsr() & both) == both;
#else
    return 0;
#endif
}
