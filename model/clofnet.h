/* clofnet.h: ClofNet (SE(3)-equivariant graph network with complete local frames) in C:
 * forward, hand-written backward, AdamW, datasets, training loop, checkpoints, integrator API. */
#ifndef CN_CLOFNET_H
#define CN_CLOFNET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */

#define CN_ERRLEN 512

/* Status codes of every fallible function of this library. */
enum cn_status {
    CN_OK = 0,
    CN_EARG = 1,     /* invalid argument or option */
    CN_ENOMEM = 2,   /* allocation failed */
    CN_EIO = 3,      /* open, read, write or rename failed */
    CN_EFORMAT = 4,  /* a checkpoint or dataset file is not what it must be */
    CN_EDATA = 5,    /* data with NaN/Inf, inconsistent shapes or values */
    CN_EINTR = 6,    /* interrupted (signal); the last completed epoch is saved */
};

/* Short name of a status code. */
const char *cn_strerror(int status);

/* ---------------------------------------------------------- the network */

/* The architectures: both read the same inputs and train, evaluate and save the same way. */
enum cn_arch {
    CN_ARCH_CLOFNET = 0, /* ClofNet clof_vel (SPEC §3): SE(3)-equivariant, local frames */
    CN_ARCH_EGNN = 1,    /* EGNN_vel, the paper's baseline (SPEC §3): E(3)-equivariant */
};
#define CN_ARCH_COUNT 2

/* "clofnet" / "egnn", or NULL when out of range. */
const char *cn_arch_name(int arch);
/* The architecture named s, or -1. */
int cn_arch_parse(const char *s);

enum cn_task {
    CN_TASK_POSITION = 0, /* frame 30 -> frame 40 positions (SPEC §3) */
    CN_TASK_STEP = 1,     /* learned integrator: (x, v) -> (x, v) H steps later */
};

#define CN_MAX_LAYERS 16     /* Most message-passing layers a config may have. */
#define CN_MAX_HIDDEN 1024   /* Widest hidden width a config may have. */
#define CN_CLAMP 100.0       /* Every component of a coordinate message is clamped to +-CN_CLAMP. */
#define CN_NORM_EPS 1e-5     /* Added to |p_i| and |p_j| in the pseudo-cosine. */
#define CN_LN_EPS 1e-5       /* LayerNorm epsilon. */
/* Guard of the pseudo-sine sin = sqrt(max(1 - cos^2, 0)): its derivative -cos / sin is
 * infinite at |cos| = 1, so the backward pass uses -cos / sqrt(max(1 - cos^2, CN_SIN_FLOOR)),
 * a derivative bounded by 1/sqrt(CN_SIN_FLOOR) = 1e4. With the CN_NORM_EPS terms |cos| < 1
 * in exact arithmetic; 1 - cos^2 < 1e-8 only happens when |p| > ~1e3 (float rounding). */
#define CN_SIN_FLOOR 1e-8
/* Norms |x_i - x_j|, |x_i x x_j|, |p_i|, |v_i| have no derivative at 0: there the backward
 * pass uses the limit of the enclosing expression (all are C1 or use 0 as a subgradient). */

/* Configuration of a network. */
struct cn_config {
    int task;        /* enum cn_task. */
    int hidden;      /* Hidden width H, even, 2..CN_MAX_HIDDEN. Default 64. */
    int layers;      /* Message-passing layers, 1..CN_MAX_LAYERS. Default 4. */
    int node_in;     /* Node inputs: 1 = [|v_i|] (POSITION), 2 = [|v_i|, q_i] (STEP default). */
    int has_field;   /* 1: a lab-frame field vector projected onto each edge frame adds 3 edge
                        inputs (16 -> 19). Default 0. */
    double field[3]; /* The field the model was trained with (used by cn_integrator_step). */
    int arch;        /* enum cn_arch. Default CN_ARCH_CLOFNET. EGNN: POSITION task, node_in 1,
                        no field. */
    int momentum;    /* STEP: 1 = the outputs are projected per graph so that the total momentum
                        changes as the physics says it must (model/nn_project.h): kept (charged),
                        changed by exactly g times the elapsed time (static), or by the
                        magnetic impulse the step's own displacement implies (dynamic).
                        Default 0. Set with cn_config_set_momentum. */
    double proj_tau, proj_dx[3], proj_dv[3]; /* centroid mode: H dt, the centroid's
                        displacement and velocity change from the uniform acceleration */
    int proj_lorentz; /* 1: Lorentz mode (dynamic), with the field proj_b and the simulation
                        step proj_h; 0: centroid mode */
    double proj_b[3], proj_h;
    int reflect_avg; /* 1: the model is the reflection average (f(x) + R f(R x)) / 2, R the
                        mirror x -> -x, in training and at every prediction (cn_trainer_predict,
                        cn_integrator_step): exactly E(3)-equivariant for ClofNet. No field (a
                        field vector is not mirrored with the bodies). Default 0. */
};

/* Defaults for a task: H 64, 4 layers; POSITION node_in 1, STEP node_in 2; no field. */
void cn_config_default(struct cn_config *c, int task);
/* Turn the momentum projection on (on = 1) or off for a STEP config of a setting (enum sim_kind)
 * whose model step is `steps` simulation steps (centroid mode for charged and static, Lorentz
 * mode for dynamic); CN_EARG with a message for a position model or steps < 1. */
int cn_config_set_momentum(struct cn_config *c, int on, int sim_kind, int steps,
                           char err[CN_ERRLEN]);
/* Check a config; CN_EARG with a message when a field is out of range. */
int cn_config_check(const struct cn_config *c, char err[CN_ERRLEN]);
/* Edge inputs: ClofNet 16, or 19 with a field; EGNN 2 (the edge attributes). */
int cn_edge_in(const struct cn_config *c);
/* Numbers per edge from MLP_coord: 3 (position message), 6 for STEP (+ velocity message). */
int cn_coord_out(const struct cn_config *c);

/* Offsets (in elements) of one layer's tensors in the flat parameter buffer, -1 for a tensor
 * the architecture does not have (EGNN: e3, ln). Weights are stored (out, in) row-major, as
 * in PyTorch. */
struct cn_layer_layout {
    long e1_w, e1_b; /* MLP_edge 1: [h_i, h_j, |x_i-x_j|^2, e_ij] (2H+1+H/2) -> H; EGNN
                        [h_i, h_j, r_ij, edge attributes] (2H+3) -> H */
    long e2_w, e2_b; /* MLP_edge 2: H -> H */
    long e3_w, e3_b; /* MLP_edge 3: H -> H */
    long c1_w, c1_b; /* MLP_coord 1: H -> H */
    long c2_w;       /* MLP_coord 2: H -> 3 (6 for STEP), no bias */
    long v1_w, v1_b; /* MLP_vel 1: H -> H */
    long v2_w, v2_b; /* MLP_vel 2: H -> 1 */
    long n1_w, n1_b; /* MLP_node 1: [h_i, agg_i] 2H -> H */
    long n2_w, n2_b; /* MLP_node 2: H -> H */
    long ln_g, ln_b; /* LayerNorm scale and shift, H each */
};

/* Offsets of every tensor: one layout for parameters, gradients and both AdamW moments. */
struct cn_layout {
    long emb_w, emb_b; /* node embedding node_in -> H */
    long f1_w, f1_b;   /* edge fuse 1: edge_in -> H/2 (ClofNet only, else -1) */
    long f2_w, f2_b;   /* edge fuse 2: H/2 -> H/2 */
    struct cn_layer_layout layer[CN_MAX_LAYERS];
    long total;        /* number of parameters */
};

/* Initialisation rule of a tensor. */
enum cn_init {
    CN_INIT_LINEAR_W = 0, /* Kaiming-uniform (a = sqrt 5): U(+-1/sqrt(fan_in)) */
    CN_INIT_LINEAR_B = 1, /* U(+-1/sqrt(fan_in)) */
    CN_INIT_XAVIER_SMALL = 2, /* Xavier-uniform, gain 0.001: U(+-0.001 sqrt(6/(fan_in+fan_out))) */
    CN_INIT_ONES = 3,
    CN_INIT_ZEROS = 4,
};

/* One named tensor of the layout. */
struct cn_tensor {
    char name[32];  /* e.g. "layer2.edge1.w" */
    long offset;
    int rows, cols; /* (out, in); biases are (out, 1) */
    int init;       /* enum cn_init */
    int fan_in, fan_out;
};

/* Fill the layout of a (checked) config. */
void cn_layout_build(const struct cn_config *c, struct cn_layout *lay);
/* Number of parameters (ClofNet 160,964 and EGNN 134,020 at H 64, 4 layers, POSITION). */
long cn_param_count(const struct cn_config *c);
/* Most tensors a config has (cn_tensor_list never returns more). */
#define CN_MAX_TENSORS (6 + 19 * CN_MAX_LAYERS)
/* The tensors in buffer order; returns how many (at most max are written). */
int cn_tensor_list(const struct cn_config *c, struct cn_tensor *out, int max);
/* PyTorch's default initialisation, from a seeded MT19937 stream (deterministic). */
void cn_param_init(const struct cn_config *c, float *param, uint32_t seed);

/* ---------------------------------------------- forward and backward */

enum cn_precision { CN_F32 = 0, CN_F64 = 1 };

/* Activations of one batch kept by the forward pass for the backward pass. A batch is
 * `graphs` graphs of n bodies each, fully connected (edges i -> j, i != j), and all
 * per-body arrays are node-major: x[(g * n + i) * 3 + c]. */
struct cn_ws;

/* Workspace for up to max_graphs graphs of n >= 2 bodies, in one precision. */
int cn_ws_create(const struct cn_config *c, int max_graphs, int n, int precision,
                 struct cn_ws **out, char err[CN_ERRLEN]);
void cn_ws_free(struct cn_ws *ws);
/* Bytes the workspace holds. */
size_t cn_ws_bytes(const struct cn_ws *ws);

/* Forward pass on `graphs` graphs: x, v [graphs*n*3], q [graphs*n], field [3] (only when
 * the config has a field, else NULL). Writes x_out [graphs*n*3] and, for STEP, v_out.
 * Keeps what the backward pass needs. Returns CN_EARG on a precision or size mismatch. */
int cn_forward(struct cn_ws *ws, const float *param, int graphs, const float *x,
               const float *v, const float *q, const float *field, float *x_out, float *v_out);
/* Backward pass of the last forward: given dL/dx_out (and dL/dv_out for STEP, else NULL),
 * ADDS dL/dparam into grad and, when dx_in / dv_in are not NULL, WRITES dL/dx and dL/dv of
 * the inputs (through the frames, the norms, |v_i| and the edge attributes). */
int cn_backward(struct cn_ws *ws, const float *param, const float *dx_out, const float *dv_out,
                float *grad, float *dx_in, float *dv_in);
/* The same network compiled in double precision (for gradient checks). */
int cn_forward_d(struct cn_ws *ws, const double *param, int graphs, const double *x,
                 const double *v, const double *q, const double *field, double *x_out,
                 double *v_out);
int cn_backward_d(struct cn_ws *ws, const double *param, const double *dx_out,
                  const double *dv_out, double *grad, double *dx_in, double *dv_in);

/* Mean squared error of count values; when dpred is not NULL, writes scale * 2 (pred - target)
 * / count into it (the gradient of scale * MSE). Accumulates in double. */
double cn_mse(long count, const float *pred, const float *target, double scale, float *dpred);

/* --------------------------------------------------------------- AdamW */

/* Parameters, gradients and both AdamW moments: views of one allocation, one layout. */
struct cn_state {
    struct cn_config cfg;
    struct cn_layout lay;
    long n_params;
    float *param, *grad, *m, *v; /* each n_params long, same layout */
    long step;                   /* AdamW steps taken */
    float *mem;                  /* the allocation behind the four views */
};

int cn_state_init(struct cn_state *s, const struct cn_config *c, char err[CN_ERRLEN]);
void cn_state_free(struct cn_state *s);

/* AdamW hyper-parameters, PyTorch's defaults: betas (0.9, 0.999), eps 1e-8. */
struct cn_adamw {
    double beta1, beta2, eps, weight_decay;
    int threads; /* threads of the elementwise update (no effect on the result). Default 1. */
};
void cn_adamw_default(struct cn_adamw *o);
/* One AdamW step with PyTorch's semantics (decoupled decay p *= 1 - lr wd, bias-corrected
 * moments, denominator sqrt(v)/sqrt(1 - beta2^t) + eps); increments s->step. */
void cn_adamw_step(struct cn_state *s, const struct cn_adamw *o, double lr);
/* StepLR: lr0 * gamma^floor(epoch / step_size) (step_size >= 1). */
double cn_steplr(double lr0, int epoch, int step_size, double gamma);
/* Cosine annealing: lr_min + (lr0 - lr_min) (1 + cos(pi epoch / epochs)) / 2. */
double cn_cosinelr(double lr0, double lr_min, int epoch, int epochs);
/* One-cycle (PyTorch's OneCycleLR with its defaults, the learning rate only): at step i of
 * total, from lr_max / 25 up to lr_max by a half cosine over the first 30% of the steps, then
 * down to lr_max / 25 / 1e4 by a half cosine. */
double cn_onecyclelr(double lr_max, long i, long total);
/* Scale g[0..n) to the Euclidean norm max_norm when its norm is larger (max_norm > 0); the norm
 * is summed in double in index order. Returns the norm before clipping. */
double cn_clip_grad(float *g, long n, double max_norm);

/* ------------------------------------------------------------ datasets */

/* One split of a dataset, converted to float and node-major. */
struct cn_split {
    int count;  /* trajectories */
    int frames; /* frames per trajectory (49) */
    int n;      /* bodies */
    float *loc; /* [count][frames][n][3] */
    float *vel; /* [count][frames][n][3] */
    float *q;   /* [count][n] */
    /* SHA-256 over the SHA-256s of the split's loc, vel, charges and edges files, in that
     * order (with a dataset.json sidecar those are the sidecar's, checked): the split's
     * identity, whatever folder or name it is under. */
    unsigned char sha256[32];
};

/* A dataset directory: the 12 .npy files of SPEC §2 for one suffix. */
struct cn_data {
    char suffix[256]; /* "_charged5_initvel1small" */
    int kind;         /* enum sim_kind from the file name */
    int n;            /* bodies, from the file name and the shapes */
    struct cn_split train, valid, test;
};

/* Find the one suffix in dir with loc_train{suffix}.npy; CN_EIO with a clear message when
 * the directory is missing, has none or has several (naming them). */
int cn_data_find(const char *dir, char *suffix, size_t len, int *kind, int *n,
                 char err[CN_ERRLEN]);
/* Load the splits named by `which` (bit 1 train, 2 valid, 4 test), at most max_train
 * training trajectories (<= 0: all). Checks shapes, loc/vel/charges/edges consistency,
 * edges = q q^T, and that every value is finite. */
int cn_data_load(const char *dir, int which, int max_train, struct cn_data *d,
                 char err[CN_ERRLEN]);
void cn_data_free(struct cn_data *d);
#define CN_SPLIT_TRAIN 1
#define CN_SPLIT_VALID 2
#define CN_SPLIT_TEST 4

#define CN_FRAME_IN 30  /* POSITION task: input frame */
#define CN_FRAME_OUT 40 /* POSITION task: target frame */

/* Sample s of a task: POSITION sample s = trajectory s, frames 30 -> 40; STEP sample
 * s = pair (trajectory s / (frames-1), frame k -> k+1). */
long cn_task_samples(const struct cn_split *sp, int task);
/* Gather samples idx[0..graphs) into node-major batch arrays (targets may be NULL). */
void cn_gather(const struct cn_split *sp, int task, const long *idx, int graphs, float *x,
               float *v, float *q, float *x_target, float *v_target);

/* ----------------------------------------------- batched training step */

/* Graphs per share. A batch is cut into shares of CN_SHARE_GRAPHS consecutive graphs (the last
 * one may be shorter) whatever the thread count: each share's forward and backward run on one
 * thread with single-threaded OpenBLAS into the share's own gradient buffer, and the buffers
 * are summed in share order, element by element. So every result (loss, gradient, prediction)
 * is the same bits for any --threads, OMP_NUM_THREADS, OMP_THREAD_LIMIT, OMP_DYNAMIC or nesting:
 * OpenMP may grant fewer threads than asked, and they then compute more shares each. 16 graphs
 * keep one layer's activations of 5-body graphs (about 12 arrays of 16 * 20 * 64 floats) in a
 * 1 MiB L2 cache and are still large enough for efficient sgemm. */
#define CN_SHARE_GRAPHS 16
/* Inside a share the forward and backward passes run on chunks of graphs with at most this
 * many edges together (at least one graph), one after the other, so that a layer's activations
 * stay in cache for larger graphs too: all 16 graphs of a 5-body share, 1 graph of 20 bodies.
 * The chunks depend on the number of bodies only, so results stay the same for any thread
 * count. */
#ifndef CN_CHUNK_EDGES
#define CN_CHUNK_EDGES 320
#endif
int cn_chunk_graphs(int n);
#define CN_MAX_THREADS 64 /* Most threads a trainer asks for. */

/* Shares of a batch of `graphs` graphs. */
int cn_shares(int graphs);

/* The per-thread workspaces, the share gradient buffers and batch scratch of a model. */
struct cn_trainer;

/* A trainer for batches of up to max_graphs graphs of n bodies on up to `threads` threads
 * (1..CN_MAX_THREADS). Also sets the BLAS policy (cn_blas_policy). */
int cn_trainer_create(const struct cn_config *c, int max_graphs, int n, int threads,
                      struct cn_trainer **out, char err[CN_ERRLEN]);
void cn_trainer_free(struct cn_trainer *t);
/* Threads a trainer asks OpenMP for (at most one per share of its largest batch). */
int cn_trainer_threads(const struct cn_trainer *t);
/* The largest batch a trainer takes. */
int cn_trainer_max_graphs(const struct cn_trainer *t);

#define CN_MAX_UNROLL 16 /* Most learned steps an unrolled batch may chain. */
/* Make t ready for unrolled batches of up to K steps (a workspace per step and thread). */
int cn_trainer_set_unroll(struct cn_trainer *t, int K, char err[CN_ERRLEN]);
/* STEP models: K learned steps from (x, v), each fed the previous one's output, against the
 * targets of steps 1..K (x_targets, v_targets: [K][graphs n 3]). push 0: the loss is the mean
 * of the K step losses (each as cn_trainer_grad's) and its gradient is backpropagated through
 * the whole chain; push 1 (the pushforward trick): the loss is the last step's and only that
 * step gets a gradient, its input being the model's own (K-1)-step prediction. Loss into
 * *loss and gradient into s->grad (overwritten), in fixed shares as cn_trainer_grad. Needs
 * cn_trainer_set_unroll(t, >= K). */
int cn_trainer_grad_unroll(struct cn_trainer *t, struct cn_state *s, int graphs, int K, int push,
                           const float *x, const float *v, const float *q, const float *field,
                           const float *x_targets, const float *v_targets, double *loss);
/* The energy term of unrolled batches: with weight w > 0, cn_trainer_grad_unroll's loss gains
 * w times the mean over graphs and scored steps of huber(E(predicted state) - E(target state)),
 * E the total energy of the setting sim_kind (kinetic + Coulomb, - g z when static; the state's
 * velocity as recorded), huber quadratic within CN_ENERGY_HUBER and linear beyond (the energy
 * error of a near-collision is unbounded). Its position gradient is minus the force, each
 * component clamped to +-SIM_MAX_F as the simulator's. w = 0 (the default): no term. */
int cn_trainer_set_energy(struct cn_trainer *t, double weight, int sim_kind, char err[CN_ERRLEN]);
/* The weight of the first step's loss in cn_trainer_grad_unroll's mean over the chain (the
 * other steps weigh 1; the mean divides by w + K - 1): w > 1 keeps the one-step accuracy that a
 * plain mean over K steps trades for the later steps. Default 1 (the plain mean). */
int cn_trainer_set_first_weight(struct cn_trainer *t, double w, char err[CN_ERRLEN]);
/* Energy errors beyond this are penalised linearly: ~ the median energy drift of a learned
 * integrator after one step, so typical steps are in the quadratic part. */
#define CN_ENERGY_HUBER 0.1
/* Loss (MSE; STEP: MSE of positions + MSE of velocities) of one batch into *loss and its
 * gradient into s->grad (overwritten). Returns the first failing share's status, else CN_OK. */
int cn_trainer_grad(struct cn_trainer *t, struct cn_state *s, int graphs, const float *x,
                    const float *v, const float *q, const float *field, const float *x_target,
                    const float *v_target, double *loss);
/* Data-parallel ranks (an MPI job) behind plain function pointers, so that this library needs
 * no MPI: the program that joined the job fills it in (nbody-train with sim/sim_mpi.h). With a
 * communicator of R ranks, a batch's S shares are dealt out in contiguous blocks, rank r
 * computing shares [S r / R, S (r+1) / R) on its threads; each rank sends every share's
 * gradient, cut into R parameter slices, to the slice's owner (alltoallv), the owner sums its
 * slice over the shares in share order exactly as one process does, and the slices are
 * gathered everywhere (allgatherv). So a batch gives the same bits on any mix of ranks and
 * threads, and each rank moves about (its shares + 1) x 4 bytes a parameter per batch. */
struct cn_comm {
    int rank, size; /* this rank and how many; size 1 needs no function below */
    void *ctx;      /* the functions' first argument */
    /* Collective: every rank passes its status; 0 when all passed 0, else the status to stop
     * with (the rank's own when non-zero, else another rank's, CN_EIO if that was 0). */
    int (*agree)(void *ctx, int status);
    /* MPI_Alltoallv of floats, counts and displacements in floats; 0 or non-zero on failure. */
    int (*alltoallv)(void *ctx, const float *send, const int *send_counts,
                     const int *send_displs, float *recv, const int *recv_counts,
                     const int *recv_displs);
    /* MPI_Allgatherv of bytes; send may be recv + recv_displs[rank] (in place). */
    int (*allgatherv)(void *ctx, const void *send, int send_bytes, void *recv,
                      const int *recv_bytes, const int *recv_displs);
};

/* Make t's batch calls (grad, predict and so cn_eval_split) collective over comm, which must
 * outlive t; NULL or size 1: one process. Every rank then calls them with the same arguments.
 * CN_EARG with a message when the buffers exceed an MPI count, CN_ENOMEM. */
int cn_trainer_set_comm(struct cn_trainer *t, const struct cn_comm *comm, char err[CN_ERRLEN]);

/* Forward only: predictions and, if not NULL, the per-sample MSE (positions; STEP: positions
 * + velocities) in sample_mse[graphs]. x_out / v_out may be NULL. Returns a status. */
int cn_trainer_predict(struct cn_trainer *t, const float *param, int graphs, const float *x,
                       const float *v, const float *q, const float *field,
                       const float *x_target, const float *v_target, float *x_out,
                       float *v_out, double *sample_mse);

/* Per-sample MSE of a split (POSITION: all trajectories; STEP: max_samples pairs spread
 * evenly over the split, <= 0 all); mse[] receives them and *count how many. CN_EARG when the
 * split's bodies differ from the trainer's, else a kernel status. */
int cn_eval_split(struct cn_trainer *t, const float *param, const struct cn_config *c,
                  const struct cn_split *sp, long max_samples, double *mse, long *count);
/* The same; with reflect = 1 of the reflection-averaged model (f(x) + R f(R x)) / 2, R the
 * mirror x -> -x: exactly E(3)-equivariant when f is SE(3)-equivariant (ClofNet), unchanged for
 * an E(3)-equivariant f (EGNN) up to rounding. A symmetry of the physics only where no field
 * breaks it: charged, and static (g along z is mirrored into itself); the caller checks. */
int cn_eval_split_reflect(struct cn_trainer *t, const float *param, const struct cn_config *c,
                          const struct cn_split *sp, long max_samples, int reflect, double *mse,
                          long *count);

/* The BLAS thread policy of this library: OpenBLAS single-threaded. Parallelism comes from
 * the shares; BLAS threads on these small matrices oversubscribe and spin in sched_yield.
 * Called by cn_trainer_create and cn_model_load; idempotent. */
void cn_blas_policy(void);

/* BLAS kernels. OpenBLAS picks its kernel set once, when the library loads, from the CPU model;
 * a model newer than the library (Debian 12's 0.3.21 on an Emerald Rapids Xeon, model 0xCF, say)
 * falls back to the SSE3 "Prescott" kernels, about 3x slower on this project's matrices than
 * the AVX-512 ones the CPU runs. Programs call cn_blas_reexec(argv) first thing in main: when
 * OPENBLAS_CORETYPE is unset and the library has fallen back, it sets the variable to the kernel
 * set the CPU's features fit and re-executes the program (/proc/self/exe, same argv, same
 * environment otherwise), which then loads OpenBLAS with it. It returns 0 when nothing had to
 * be done, and -1 when the re-execution failed (the program goes on, on the slow kernels). A
 * user's OPENBLAS_CORETYPE is always respected. Results depend on the kernel set only in the
 * last bits, as they depend on the CPU. */
enum {
    CN_CPU_AVX = 1u << 0,
    CN_CPU_AVX2 = 1u << 1,
    CN_CPU_FMA = 1u << 2,
    CN_CPU_AVX512F = 1u << 3,
    CN_CPU_AVX512BW = 1u << 4,
    CN_CPU_AVX512DQ = 1u << 5,
    CN_CPU_AVX512VL = 1u << 6,
};
int cn_blas_reexec(char **argv);
/* The kernel set this process runs on, as OpenBLAS names it ("SkylakeX", "Prescott", ...). */
const char *cn_blas_core(void);
/* The CN_CPU_* features this CPU and its operating system support. */
unsigned cn_cpu_features(void);
/* The kernel set to force when OpenBLAS chose CHOSEN on a CPU with FEATURES: "SkylakeX",
 * "Haswell" or "Sandybridge" when CHOSEN is the unknown-CPU fallback "Prescott" (any case) and
 * the CPU has the instructions; NULL otherwise (the library's own choice stands). */
const char *cn_blas_pick(const char *chosen, unsigned features);

/* Subnormal floats. Training drives some SiLU pre-activations far negative, where sigmoid and
 * the gradients through it fall below FLT_MIN (1.2e-38); on Intel CPUs every operation on such
 * a subnormal value takes a microcode assist of ~100 cycles, which made unrolled step training
 * several times slower on an Emerald Rapids Xeon, and a diverged run 10-20x (the AMD Zen 3 of
 * earlier measurements showed neither). The programs
 * compute with subnormals flushed to zero, results and inputs (MXCSR flush-to-zero and
 * denormals-are-zero, what PyTorch's torch.set_flush_denormal(True) sets): cn_fp_policy()
 * sets both in the calling thread, and threads created after it inherit them, so programs call
 * it first in main, before any thread exists (OpenMP's team, the signal thread). Every value
 * at or above FLT_MIN (and every double above 2.2e-308) computes exactly as before; a result
 * below it becomes 0. cn_fp_policy_active() tells whether the calling thread has both set. */
#define CN_MXCSR_FTZ 0x8000u
#define CN_MXCSR_DAZ 0x0040u
void cn_fp_policy(void);
int cn_fp_policy_active(void);

/* ------------------------------------------------------------- training */

/* Options of the training loop; cn_train_opts_default gives the paper's ES(5) protocol. */
struct cn_train_opts {
    int task;             /* enum cn_task. Default POSITION. */
    int arch;             /* enum cn_arch. Default CN_ARCH_CLOFNET. */
    int hidden, layers;   /* Default 64, 4. */
    int epochs;           /* Default 400. */
    int batch;            /* Graphs per batch, last partial batch dropped. Default 128. */
    int max_train;        /* Training trajectories used. Default 3000. */
    double lr;            /* Default 0.01. */
    double weight_decay;  /* Default 1e-12. */
    double gamma;         /* StepLR factor. Default 0.9. */
    int lr_step;          /* StepLR period in epochs; 0: epochs / 8 (at least 1). */
    int val_every;        /* Validate (and test) when epoch % val_every == 0. Default 5. */
    uint32_t seed;        /* Initialisation and shuffling. Default 1. */
    int threads;          /* Threads computing the shares of each batch (no effect on any result).
                             Default 2 (or 1 on one core). */
    long pairs_per_epoch; /* STEP: training pairs drawn per epoch (0: all). Default 20000. */
    long eval_pairs;      /* STEP: validation/test pairs evaluated (0: all). Default 10000. */
    int traj_step;        /* STEP: simulation steps per dataset frame. Default 100. */
    int stop_after;       /* Stop after this many epochs in this run (0: never); for tests. */
    int reflect;          /* 1: mirror each training sample (z -> -z of x, v and targets) with
                             probability 1/2. The dynamics is mirror-symmetric, ClofNet is only
                             SE(3)-equivariant, so mirrored samples are new data to it. Only
                             for the charged setting (a field breaks the symmetry). Default 0. */
    int cosine;           /* 1: cosine learning-rate decay from lr to lr_min over the epochs
                             instead of StepLR. Default 0. */
    double lr_min;        /* Final learning rate of the cosine schedule. Default 0. */
    int no_field;         /* 1: STEP on static/dynamic data without the field input (an
                             ablation: the field is then invisible to the network). Default 0. */
    int field_input;      /* 1: POSITION task on static/dynamic data with the lab-frame field as
                             an input, scalarized on every edge frame as the step models do (not
                             in the paper: no rotation-equivariant network can infer g or B).
                             ClofNet only. Default 0. */
    double ema;           /* > 0: validate, test and save an exponential moving average of the
                             parameters, ema = beta ema + (1 - beta) param after every step,
                             beta = this value (e.g. 0.99). Default 0 (off). */
    /* Rollout-aware training of STEP models (Sanchez-Gonzalez et al. 2020; Brandstetter et
     * al. 2022). */
    int unroll;           /* Learned steps per training sample, 1..CN_MAX_UNROLL: the loss is
                             the mean over K chained steps, backpropagated through the chain
                             (cn_trainer_grad_unroll). Default 1 (one-step pairs). */
    int pushforward;      /* 1: of the K steps only the last is a loss and gets a gradient (the
                             pushforward trick). Needs unroll >= 2. Default 0. */
    int unroll_every;     /* > 0: a curriculum: epoch e chains min(unroll, 1 + e / unroll_every)
                             steps (an untrained model's long chains only add noise). Default 0:
                             unroll steps from the first epoch. */
    double input_noise;   /* > 0: Gaussian noise of this std added to every position and
                             velocity component of each training input state; the targets stay
                             the true next states, so the model learns to pull a perturbed state
                             back onto the trajectory (GNS's target correction). Default 0. */
    int momentum;         /* 1: the momentum projection of the outputs (cn_config.momentum).
                             Default 0. */
    double unroll_first;  /* the first step's weight in the unrolled loss
                             (cn_trainer_set_first_weight); > 0. Default 1. */
    double energy_weight; /* > 0: the energy term of cn_trainer_set_energy with this weight;
                             the batches go through cn_trainer_grad_unroll even at one step.
                             Default 0. */
    int warmup;           /* > 0: the learning rate rises linearly over the first this many epochs,
                             batch by batch, to the schedule's value. Default 0. */
    int one_cycle;        /* 1: the one-cycle schedule (cn_onecyclelr) over all steps instead of
                             StepLR or cosine; lr is its peak. Default 0. */
    double clip;          /* > 0: clip the gradient's global norm to this (cn_clip_grad) before
                             each AdamW step; the history records the fraction clipped. 0 off. */
    int reflect_avg;      /* 1: train (and save) the reflection-averaged model (cn_config
                             .reflect_avg); charged setting, one-step pairs. Default 0. */
    int val_rollout;      /* > 0: validation and model selection by free rollouts of this many
                             validation trajectories: the mean position MSE over horizons
                             1..CN_VAL_ROLLOUT_STEPS from the start frames CN_VAL_ROLLOUT_STARTS
                             (the one-step loss is still computed and printed). Default 0. */
    const char *init;     /* non-NULL: a fine-tune: the run starts from this checkpoint's
                             parameters instead of the seed's initialisation (the network must be
                             the run's: architecture, task, width, depth, field input and
                             projection; CN_EFORMAT naming the mismatch), with a fresh optimizer
                             and schedule. Not kept in the resume record: a resumed run continues
                             from its own state. Default NULL. */
};

#define CN_VAL_ROLLOUT_STEPS 20
#define CN_VAL_ROLLOUT_STARTS {0, 10, 20}
#define CN_VAL_ROLLOUT_NSTARTS 3
void cn_train_opts_default(struct cn_train_opts *o);

/* One line of the loss history. val/test are NaN when not computed that epoch. */
struct cn_epoch_record {
    int epoch;
    double train_loss, val_mse, test_mse, lr, seconds;
    double val_rollout; /* the rollout validation error (NaN when not computed; +Inf when a
                           rollout left the finite numbers) */
    double clipped;     /* with clip: the fraction of this epoch's steps that were clipped */
};

/* Called after every epoch (NULL to stay silent). */
typedef void (*cn_progress_fn)(void *user, const struct cn_epoch_record *r, int epochs,
                               double best_val, double best_test, int best_epoch);

/* Result of a training run. */
struct cn_train_result {
    int epochs_done;
    double best_val, best_test;
    int best_epoch;
    long n_params;
};

/* Train on d (train/valid/test loaded). out: the best-validation model checkpoint; beside it
 * {out}.state (full state after the last completed epoch, for resume) and {out}.csv (loss
 * history). resume: continue from {out}.state with its stored options (of o only threads,
 * when > 0, and stop_after are used) to the same result as an uninterrupted run with the same
 * thread count. interrupt, when not NULL, is polled between batches: the epoch in progress
 * is dropped and CN_EINTR returned. */
int cn_train(const struct cn_train_opts *o, const struct cn_data *d, const char *out, int resume,
             volatile sig_atomic_t *interrupt, cn_progress_fn progress, void *user,
             struct cn_train_result *res, char err[CN_ERRLEN]);

/* cn_train as one rank of comm (NULL: one process, which is cn_train): every rank loads the
 * same data and state and runs the same steps (see struct cn_comm), rank 0 alone writes the
 * files and removes stale temporaries; the ranks agree before every batch, so an interrupt or
 * an error on one of them (including one that left early, through its program's agreement)
 * stops all at the same batch. The files are the same bytes as one process writes. */
int cn_train_dist(const struct cn_train_opts *o, const struct cn_data *d, const char *out,
                  int resume, volatile sig_atomic_t *interrupt, cn_progress_fn progress,
                  void *user, struct cn_train_result *res, const struct cn_comm *comm,
                  char err[CN_ERRLEN]);

/* The options stored in {out}.state (what a resume of `out` will use), into o. */
int cn_train_stored_opts(const char *out, struct cn_train_opts *o, char err[CN_ERRLEN]);

/* ---------------------------------------------------------- checkpoints */

#define CN_CKPT_MAGIC "CLOFNET1" /* 8 bytes at the start of every checkpoint */
#define CN_CKPT_VERSION 2 /* written; version 1 (no training-data record) is still read */

/* What a checkpoint says about the model besides its parameters. */
struct cn_meta {
    int sim_kind;      /* enum sim_kind of the training data */
    int n_bodies;      /* bodies per system of the training data */
    int horizon_steps; /* simulation steps per model step: 1000 for POSITION, 100 for STEP */
    int has_data;      /* 1: data_sha256 names the training split (checkpoints since version 2
                          written by the trainer); 0: unknown (older files, imported weights) */
    int data_count;    /* training trajectories used (the first data_count of the split) */
    unsigned char data_sha256[32]; /* cn_split.sha256 of the training split */
};

/* Save parameters (and, when with_optimizer, the AdamW moments and step) with the config
 * and meta, plus an optional opaque blob (the training loop's resume record). Little-endian,
 * written to a temporary name and renamed; ends with a CRC-32 of everything before it. */
int cn_ckpt_save(const char *path, const struct cn_state *s, const struct cn_meta *meta,
                 int with_optimizer, const void *blob, size_t blob_len, char err[CN_ERRLEN]);
/* Load a checkpoint into a fresh state (cn_state_init'ed by the call). want, when not NULL,
 * is a config the file must match (else CN_EFORMAT naming the mismatch). Moments are loaded
 * when present (*has_optimizer set). blob (malloc'ed, caller frees) may be NULL to skip. */
int cn_ckpt_load(const char *path, const struct cn_config *want, struct cn_state *s,
                 struct cn_meta *meta, int *has_optimizer, void **blob, size_t *blob_len,
                 char err[CN_ERRLEN]);

/* --------------------------------------------- PyTorch state_dict (.npz) */

/* CN_OK when a config has a counterpart among the reference PyTorch modules (ClofNet_vel and
 * EGNN_vel of mouthful/ClofNet: position task, node input |v_i|, no field), else CN_EARG
 * saying why not. */
int cn_torch_check(const struct cn_config *c, char err[CN_ERRLEN]);
/* Write s's parameters as a NumPy .npz whose array names, shapes and order are the reference
 * module's state_dict() (e.g. "gcl_0.edge_mlp.0.weight", float32; biases 1-D), so
 * load_state_dict(strict=True) takes it. Stored entries as np.savez, or deflated with compress
 * as np.savez_compressed. Atomic. CN_EARG when cn_torch_check refuses the config. */
int cn_npz_export(const char *path, const struct cn_state *s, int compress, char err[CN_ERRLEN]);
/* Read such a state_dict (np.savez or np.savez_compressed of {k: v.numpy()}) of architecture
 * arch into a fresh state (cn_state_init'ed; width and depth from the shapes). Strict: every
 * key with its shape, float32, no other key, finite values. CN_EFORMAT / CN_EDATA / CN_EIO
 * with one message naming the problem. */
int cn_npz_import(const char *path, int arch, struct cn_state *s, char err[CN_ERRLEN]);

/* --------------------------------------- model API (viewer contract) */

struct cn_model; /* opaque handle to a loaded network */

struct cn_model_info {
    int arch;          /* enum cn_arch */
    int task;          /* enum cn_task */
    int sim_kind;      /* enum sim_kind of sim/sim.h the model was trained on (SIM_CHARGED...) */
    int n_bodies;      /* bodies per system it was trained on (works for any n >= 2) */
    int horizon_steps; /* simulation steps per model step (CN_TASK_STEP; 1000 for POSITION) */
    int hidden;        /* width */
    int layers;
    long n_params;
};

/* Load a checkpoint; non-zero status and a message in err on failure (missing file,
 * bad magic/version, truncated, ...). Never exits. */
int cn_model_load(const char *path, struct cn_model **out, char err[CN_ERRLEN]);
void cn_model_free(struct cn_model *m);
void cn_model_get_info(const struct cn_model *m, struct cn_model_info *info);
/* Learned integrator (CN_TASK_STEP models): advance a system of n bodies by
 * info.horizon_steps simulation steps, in place. x, v are axis-major [3][n] doubles,
 * exactly like struct sim_system in sim/sim.h; q[n] charges. v follows the dataset
 * convention (half a kick behind x, see sim.h sim_run). Returns 0 or a status.
 * A POSITION model predicts x 1000 steps ahead and leaves v unchanged (it has no
 * velocity output). */
int cn_integrator_step(struct cn_model *m, int n, const double *q, double *x, double *v);
/* The model's parameters and config (for tools: nbody-eval). */
const struct cn_state *cn_model_state(const struct cn_model *m);
const struct cn_meta *cn_model_meta(const struct cn_model *m);

/* ------------------------------------------------------------- rollouts */

/* Free rollouts of a STEP model, fed only its own predictions: per horizon k = 1..steps
 * (index k - 1), averages over the trajectories. */
struct cn_rollout {
    int steps;           /* model steps rolled out */
    int start;           /* dataset frame the rollouts start from */
    long trajectories;   /* trajectories averaged over */
    double *mse_model;   /* position MSE of the learned integrator against the ground truth */
    double *mse_cv;      /* position MSE of the constant-velocity baseline x + v t */
    double *mse_centroid; /* MSE of the rollout's centroid: the part of the error that only
                             the external field (which moves the centroid) can cause */
    double *drift_model; /* median over trajectories of |E_k - E_start| of the rollouts
                            (total energy of sim/sim.h) */
    double *drift_truth; /* the same for the ground-truth frames themselves */
    double *worst_model; /* the largest position MSE of one trajectory's rollout */
    double *worst_cv;    /* the same for the constant-velocity baseline */
    float *traj_x;       /* rollout of trajectory 0: positions [steps][n][3] */
};

/* Roll the model of s out from frame `start` for `steps` model steps on the first max_traj
 * trajectories of sp (<= 0: all), batched through t (created for s's config and sp->n).
 * CN_EARG with a message when s is not a STEP model or the frames do not exist. */
/* Called after every batch of trajectories (may be NULL). */
typedef void (*cn_rollout_progress_fn)(void *user, long done, long total);
int cn_rollout_run(struct cn_trainer *t, const struct cn_state *s, const struct cn_meta *meta,
                   const struct cn_split *sp, int start, int steps, long max_traj,
                   struct cn_rollout *r, cn_rollout_progress_fn progress, void *user,
                   char err[CN_ERRLEN]);
/* The same with the energy projection (cn_project_energy) after every learned step when
 * project_energy is 1, toward each trajectory's energy at the start frame; *skipped (may be
 * NULL) counts the steps where it had no solution and left the velocities alone. */
int cn_rollout_run_ex(struct cn_trainer *t, const struct cn_state *s, const struct cn_meta *meta,
                      const struct cn_split *sp, int start, int steps, long max_traj,
                      int project_energy, struct cn_rollout *r, long *skipped,
                      cn_rollout_progress_fn progress, void *user, char err[CN_ERRLEN]);
/* The energy projection: total energy (sim_kinetic_energy + sim_potential_energy of setting
 * kind, unit masses) is conserved in all three settings (Coulomb and gravity are
 * conservative, the Lorentz force does no work). Rescale the velocities relative to the
 * centroid's, v_i = v_c + s (v_i - v_c) with s >= 0, so that the energy of (x, v) is e0: the
 * total momentum stays, and the map commutes with rotations, reflections and translations.
 * x, v node-major [n][3] floats, q [n], scratch 7 n doubles (no allocation: it runs after
 * every step of every rollout). Returns 1 when projected, 0 (v untouched) when no s exists:
 * the potential energy at x and the centroid's kinetic energy already exceed e0, or the
 * relative velocities are all zero. */
int cn_project_energy(int kind, int n, const float *q, const float *x, float *v, double e0,
                      double *scratch);
void cn_rollout_free(struct cn_rollout *r);

#endif
