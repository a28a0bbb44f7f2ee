/* net_f.c: the ClofNet forward and backward passes in float32 with OpenBLAS sgemm,
 * the precision of training and inference (the blocks are nn_*.h, the network nn_clofnet.h). */
#define REAL float
#define SUF(name) name##_f
#define GEMM cblas_sgemm
#define CN_SQRT(x) sqrtf(x)
#define CN_SIGMOID(z) cn_sigmoidf(z)
#define CN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#include "nn_kernels.h"
#include "nn_frame.h"
#include "nn_embed.h"
#include "nn_edge.h"
#include "nn_coord.h"
#include "nn_vel.h"
#include "nn_project.h"
#include "nn_node.h"
#include "nn_layernorm.h"
#include "nn_clofnet.h"
#include "nn_radial.h"
#include "nn_egnn.h"
