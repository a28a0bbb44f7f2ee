/* net_d.c: the same ClofNet forward and backward passes compiled in double with dgemm,
 * used by the finite-difference gradient checks (the code is net_impl.h). */
#define REAL double
#define SUF(name) name##_d
#define GEMM cblas_dgemm
#define CN_SQRT(x) sqrt(x)
#define CN_SIGMOID(z) (1.0 / (1.0 + exp(-(z))))
#define CN_CLONES 
#include "net_impl.h"
