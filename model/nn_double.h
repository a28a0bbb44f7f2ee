/* nn_double.h: the type macros that instantiate the nn_*.h blocks in double with dgemm (for
 * gradient checks); included by net_d.c and by tests/test_blocks.c before the blocks. */
#define REAL double
#define SUF(name) name##_d
#define GEMM cblas_dgemm
#define CN_SQRT(x) sqrt(x)
#define CN_SIGMOID(z) (1.0 / (1.0 + exp(-(z))))
#define CN_CLONES
