/* net_f.c: the ClofNet forward and backward passes in float32 with OpenBLAS sgemm,
 * the precision of training and inference (the code is net_impl.h). */
#define REAL float
#define SUF(name) name##_f
#define GEMM cblas_sgemm
#define CN_SQRT(x) sqrtf(x)
#define CN_SIGMOID(z) cn_sigmoidf(z)
#define CN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#include "net_impl.h"
