/* net_d.c: the same ClofNet forward and backward passes compiled in double with dgemm,
 * used by the finite-difference gradient checks (the same nn_*.h as net_f.c). */
#include "nn_double.h"
#include "nn_kernels.h"
#include "nn_frame.h"
#include "nn_embed.h"
#include "nn_edge.h"
#include "nn_coord.h"
#include "nn_vel.h"
#include "nn_node.h"
#include "nn_layernorm.h"
#include "nn_clofnet.h"
#include "nn_radial.h"
#include "nn_egnn.h"
