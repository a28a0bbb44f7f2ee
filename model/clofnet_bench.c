/* clofnet_bench.c: clofnet-bench, times ClofNet on random batches: one forward, one
 * forward+backward+AdamW step, and a training epoch's worth of steps, with FLOP rates. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "clofnet.h"
#include "sim.h"

/* Print the usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: clofnet-bench [options]\n"
            "Time ClofNet or EGNN (position task) on random batches of graphs (5 bodies).\n"
            "  --arch A          clofnet or egnn [clofnet]\n"
            "  --threads N       threads splitting each batch (OpenBLAS single-threaded) [1]\n"
            "  --blas-threads N  instead: one batch thread, OpenBLAS with N threads [0 = off]\n"
            "  --batch N         graphs per batch [128]\n"
            "  --samples N       training samples per epoch [3000]\n"
            "  --bodies N        bodies per graph [5]\n"
            "  --hidden N        [64]\n"
            "  --layers N        [4]\n"
            "  --reps N          timed repetitions (median reported) [20]\n"
            "  --help            this text\n");
}

/* Monotonic clock in seconds. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* qsort order of doubles. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Parse an integer option or exit. */
static long arg_int(const char *name, const char *s, long lo, long hi)
{
    long v;
    if (sim_parse_long(s, lo, hi, &v) != SIM_OK) {
        fprintf(stderr, "clofnet-bench: --%s '%s' must be an integer in %ld..%ld\n", name, s, lo,
                hi);
        exit(2);
    }
    return v;
}

/* Exit with a message when a kernel fails (a benchmark of a failing pass means nothing). */
static void bench_check(int st)
{
    if (st != CN_OK) {
        fprintf(stderr, "clofnet-bench: the network failed: %s\n", cn_strerror(st));
        exit(1);
    }
}

/* Time forward, training step and epoch on random batches. */
int main(int argc, char **argv)
{
    cn_blas_reexec(argv); /* returns only when the BLAS kernels fit the CPU, or on failure */
    cn_fp_policy();       /* before any thread: subnormal floats flushed to zero */
    int threads = 1, blas_threads = 0, B = 128, samples = 3000, n = 5, H = 64, L = 4, reps = 20;
    int arch = CN_ARCH_CLOFNET;
    static const struct option lo[] = {
        {"threads", required_argument, 0, 'j'}, {"blas-threads", required_argument, 0, 'b'},
        {"batch", required_argument, 0, 'B'},   {"samples", required_argument, 0, 's'},
        {"bodies", required_argument, 0, 'n'},  {"hidden", required_argument, 0, 'H'},
        {"layers", required_argument, 0, 'L'},  {"reps", required_argument, 0, 'r'},
        {"arch", required_argument, 0, 'a'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'j': threads = (int)arg_int("threads", optarg, 1, 64); break;
        case 'b': blas_threads = (int)arg_int("blas-threads", optarg, 0, 64); break;
        case 'B': B = (int)arg_int("batch", optarg, 1, 65536); break;
        case 's': samples = (int)arg_int("samples", optarg, 1, 1 << 30); break;
        case 'n': n = (int)arg_int("bodies", optarg, 2, 1000); break;
        case 'H': H = (int)arg_int("hidden", optarg, 2, CN_MAX_HIDDEN); break;
        case 'L': L = (int)arg_int("layers", optarg, 1, CN_MAX_LAYERS); break;
        case 'r': reps = (int)arg_int("reps", optarg, 1, 100000); break;
        case 'a':
            if ((arch = cn_arch_parse(optarg)) < 0) {
                fprintf(stderr, "clofnet-bench: --arch '%s' must be clofnet or egnn\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    struct cn_config cfg;
    cn_config_default(&cfg, CN_TASK_POSITION);
    cfg.hidden = H;
    cfg.layers = L;
    cfg.arch = arch;
    char err[CN_ERRLEN];
    if (cn_config_check(&cfg, err)) {
        fprintf(stderr, "clofnet-bench: %s\n", err);
        return 2;
    }
    struct cn_state s;
    struct cn_trainer *t;
    if (cn_state_init(&s, &cfg, err) ||
        cn_trainer_create(&cfg, B, n, blas_threads ? 1 : threads, &t, err)) {
        fprintf(stderr, "clofnet-bench: %s\n", err);
        return 1;
    }
    if (blas_threads)
        openblas_set_num_threads(blas_threads);
    cn_param_init(&cfg, s.param, 1);
    struct sim_rng r;
    sim_rng_seed(&r, 2);
    size_t nb = (size_t)B * n * 3;
    float *x = malloc(nb * 4), *v = malloc(nb * 4), *q = malloc((size_t)B * n * 4);
    float *xt = malloc(nb * 4), *xo = malloc(nb * 4);
    for (size_t k = 0; k < nb; k++) {
        x[k] = (float)sim_rng_randn(&r);
        v[k] = (float)(0.5 * sim_rng_randn(&r));
        xt[k] = x[k] + (float)(0.1 * sim_rng_randn(&r));
    }
    for (int k = 0; k < B * n; k++)
        q[k] = sim_rng_random_sample(&r) < 0.5 ? -1.0f : 1.0f;
    struct cn_adamw aw;
    cn_adamw_default(&aw);
    aw.weight_decay = 1e-12;
    aw.threads = blas_threads ? 1 : threads;
    double loss = 0;
    double *tf = malloc(sizeof(double) * reps), *ts = malloc(sizeof(double) * reps);
    /* warm up */
    for (int k = 0; k < 3; k++) {
        bench_check(cn_trainer_predict(t, s.param, B, x, v, q, NULL, NULL, NULL, xo, NULL, NULL));
        bench_check(cn_trainer_grad(t, &s, B, x, v, q, NULL, xt, NULL, &loss));
        cn_adamw_step(&s, &aw, 1e-5);
    }
    for (int k = 0; k < reps; k++) {
        double t0 = now_s();
        bench_check(cn_trainer_predict(t, s.param, B, x, v, q, NULL, NULL, NULL, xo, NULL, NULL));
        double t1 = now_s();
        bench_check(cn_trainer_grad(t, &s, B, x, v, q, NULL, xt, NULL, &loss));
        cn_adamw_step(&s, &aw, 1e-5);
        double t2 = now_s();
        tf[k] = t1 - t0;
        ts[k] = t2 - t1;
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    /* one epoch: samples / B steps back to back */
    int steps = samples / B;
    double t0 = now_s();
    for (int k = 0; k < steps; k++) {
        bench_check(cn_trainer_grad(t, &s, B, x, v, q, NULL, xt, NULL, &loss));
        cn_adamw_step(&s, &aw, 1e-5);
    }
    double epoch = now_s() - t0;
    /* multiply-adds of every linear layer as the reference computes them (the edge MLP's
     * first layer on the 161-wide concatenation), per graph; a training step is ~3x forward */
    const double E = (double)n * (n - 1), H2 = H / 2.0;
    double macs = n * 1.0 * H + E * (16 * H2 + H2 * H2) +
                  L * (E * ((2 * H + 1 + H2) * H + 3.0 * H * H + 3.0 * H) +
                       n * (3.0 * H * H + H + 2.0 * H * H));
    if (arch == CN_ARCH_EGNN) /* no edge-attribute MLP; MLP_edge (2H + 3) -> H -> H, phi_x -> 1 */
        macs = n * 1.0 * H + L * (E * ((2 * H + 3) * H + 2.0 * H * H + H) +
                                  n * (3.0 * H * H + H + 2.0 * H * H));
    double fwd_flop = 2 * macs * B, step_flop = 3 * fwd_flop;
    /* what this implementation multiplies: h_i / h_j blocks of MLP_edge's first layer per node
     * (not per edge), and no node update in the last layer (its h is unused) */
    double own = n * 1.0 * H + E * (16 * H2 + H2 * H2) +
                 L * (2.0 * n * H * H + E * (H2 * H + 3.0 * H * H + 3.0 * H) + n * (H * H + H)) +
                 (L - 1) * n * (3.0 * H * H);
    if (arch == CN_ARCH_EGNN)
        own = n * 1.0 * H + L * (2.0 * n * H * H + E * (3.0 * H + 2.0 * H * H + H) +
                                 n * (H * H + H)) + (L - 1) * n * (3.0 * H * H);
    double own_step = 3 * 2 * own * B;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("clofnet-bench: %s, hidden %d, %d layers, %ld params, batch %d x %d bodies, %s %d, "
           "OpenBLAS kernels %s\n",
           cn_arch_name(arch), H, L, s.n_params, B, n, blas_threads ? "OpenBLAS threads" : "batch threads",
           blas_threads ? blas_threads : cn_trainer_threads(t), cn_blas_core());
    printf("forward                    median %8.3f ms  (min %.3f)  %.1f GFLOP/s\n",
           1e3 * tf[reps / 2], 1e3 * tf[0], fwd_flop / tf[reps / 2] * 1e-9);
    printf("forward+backward+AdamW     median %8.3f ms  (min %.3f)  %.1f GFLOP/s\n",
           1e3 * ts[reps / 2], 1e3 * ts[0], step_flop / ts[reps / 2] * 1e-9);
    printf("epoch (%d samples, %d steps) %8.3f s   %.1f GFLOP per epoch  %.1f GFLOP/s\n",
           samples, steps, epoch, step_flop * steps * 1e-9, step_flop * steps / epoch * 1e-9);
    printf("this implementation: %.1f GFLOP per epoch (node-level edge products, no last node "
           "update): %.1f GFLOP/s\n", own_step * steps * 1e-9, own_step * steps / epoch * 1e-9);
    printf("peak RSS %.1f MiB\n", ru.ru_maxrss / 1024.0);
    free(tf);
    free(ts);
    free(x);
    free(v);
    free(q);
    free(xt);
    free(xo);
    cn_trainer_free(t);
    cn_state_free(&s);
    return 0;
}
