/* trainer.c: one batch cut into fixed shares of CN_SHARE_GRAPHS graphs, computed by however
 * many OpenMP threads (and ranks of a cn_comm) there are and reduced in share order;
 * prediction and evaluation. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "internal.h"
#include "sim.h"

/* Parameters reduced per task of the share reduction: 64 KiB of floats per share buffer. */
#define REDUCE_BLOCK 16384

/* Per-thread workspaces, per-share gradients and results, batch buffers. */
struct cn_trainer {
    struct cn_config cfg;
    int threads, max_graphs, n, max_shares;
    struct cn_ws *ws[CN_MAX_THREADS]; /* one per thread of the team */
    /* a reflection-averaged config (cfg.reflect_avg): per thread the mirror image's workspace
     * and [6][share graphs n 3] scratch (mirrored x, v; its outputs; their gradients) */
    struct cn_ws *wsm[CN_MAX_THREADS];
    float *rscr[CN_MAX_THREADS];
    /* unrolled training (cn_trainer_set_unroll): the workspaces of steps 1..unroll-1 per
     * thread (step 0 uses ws), the states after every step [unroll][max_graphs n 3] and the
     * gradients carried from one step back to the one before */
    int unroll;
    double energy_w;  /* cn_trainer_set_energy: the energy term's weight (0: none) */
    int energy_kind;  /* and the setting whose energy it is (enum sim_kind) */
    double w_first;   /* cn_trainer_set_first_weight: the first step's weight in the chain */
    struct cn_ws *wsu[CN_MAX_THREADS][CN_MAX_UNROLL];
    float *ux, *uv, *gx, *gv;
    long n_params;
    size_t gstride;         /* floats between share gradient buffers */
    float *gshare;          /* [max_shares][gstride], all zero between calls */
    double *part;           /* per share: squared errors of x, of v */
    int *status;            /* per share: status of its kernels */
    float *xo, *vo, *dxo, *dvo; /* [max_graphs * n * 3] */
    /* scratch of cn_eval_split */
    float *bx, *bv, *bq, *bxt, *bvt;
    long *idx;
    /* with a communicator of several ranks (cn_trainer_set_comm) */
    const struct cn_comm *comm;
    int *cnt;               /* [4][size]: counts and displacements of one collective */
    float *sbuf, *rbuf;     /* [max_shares * n_params]: share gradient slices out and in */
    double *pk;             /* [max_shares][3]: squared errors of x, of v, and status */
};

/* Graphs per chunk of a share (see clofnet.h). */
int cn_chunk_graphs(int n)
{
    const long edges = (long)n * (n - 1) > 0 ? (long)n * (n - 1) : 1;
    const long c = CN_CHUNK_EDGES / edges;
    return c < 1 ? 1 : c > CN_SHARE_GRAPHS ? CN_SHARE_GRAPHS : (int)c;
}

/* Shares of a batch. */
int cn_shares(int graphs) { return (graphs + CN_SHARE_GRAPHS - 1) / CN_SHARE_GRAPHS; }

/* OpenBLAS single-threaded (see clofnet.h). */
void cn_blas_policy(void) { openblas_set_num_threads(1); }

/* Create a trainer (see clofnet.h). */
int cn_trainer_create(const struct cn_config *c, int max_graphs, int n, int threads,
                      struct cn_trainer **out, char err[CN_ERRLEN])
{
    *out = NULL;
    if (threads < 1 || threads > CN_MAX_THREADS)
        return cn_fail(err, CN_EARG, "threads %d must be in 1..%d", threads, CN_MAX_THREADS);
    if (max_graphs < 1)
        return cn_fail(err, CN_EARG, "a batch needs at least one graph (got %d)", max_graphs);
    int st = cn_config_check(c, err);
    if (st)
        return st;
    struct cn_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return cn_fail(err, CN_ENOMEM, "out of memory");
    t->cfg = *c;
    t->max_graphs = max_graphs;
    t->max_shares = cn_shares(max_graphs);
    t->threads = threads < t->max_shares ? threads : t->max_shares;
    t->n = n;
    t->unroll = 1; /* step 0 of an unrolled batch runs on ws */
    t->w_first = 1;
    t->n_params = cn_param_count(c);
    t->gstride = cn_round16((size_t)t->n_params);
    const int wg = max_graphs < CN_SHARE_GRAPHS ? max_graphs : CN_SHARE_GRAPHS;
    for (int k = 0; k < t->threads && !st; k++) {
        st = cn_ws_create(c, wg, n, CN_F32, &t->ws[k], err);
        if (!st && c->reflect_avg) {
            st = cn_ws_create(c, wg, n, CN_F32, &t->wsm[k], err);
            if (!st && !(t->rscr[k] = malloc(6 * (size_t)wg * n * 3 * sizeof(float))))
                st = cn_fail(err, CN_ENOMEM, "out of memory for reflection averaging");
        }
    }
    size_t nb = (size_t)max_graphs * n * 3;
    if (!st) {
        void *g = NULL;
        if (posix_memalign(&g, 64, (size_t)t->max_shares * t->gstride * sizeof(float)) == 0) {
            t->gshare = g;
            memset(g, 0, (size_t)t->max_shares * t->gstride * sizeof(float));
        }
        t->part = calloc((size_t)t->max_shares * 2, sizeof *t->part);
        t->status = calloc((size_t)t->max_shares, sizeof *t->status);
        t->xo = malloc(nb * sizeof(float));
        t->vo = malloc(nb * sizeof(float));
        t->dxo = malloc(nb * sizeof(float));
        t->dvo = malloc(nb * sizeof(float));
        t->bx = malloc(nb * sizeof(float));
        t->bv = malloc(nb * sizeof(float));
        t->bxt = malloc(nb * sizeof(float));
        t->bvt = malloc(nb * sizeof(float));
        t->bq = malloc((size_t)max_graphs * n * sizeof(float));
        t->idx = malloc((size_t)max_graphs * sizeof(long));
        if (!t->gshare || !t->part || !t->status || !t->xo || !t->vo || !t->dxo || !t->dvo ||
            !t->bx || !t->bv || !t->bxt || !t->bvt || !t->bq || !t->idx)
            st = cn_fail(err, CN_ENOMEM, "out of memory for batch buffers");
    }
    if (st) {
        cn_trainer_free(t);
        return st;
    }
    cn_blas_policy();
    *out = t;
    return CN_OK;
}

/* Free a trainer and its workspaces. */
void cn_trainer_free(struct cn_trainer *t)
{
    if (!t)
        return;
    for (int k = 0; k < t->threads; k++) {
        cn_ws_free(t->ws[k]);
        cn_ws_free(t->wsm[k]);
        free(t->rscr[k]);
        for (int j = 1; j < t->unroll; j++)
            cn_ws_free(t->wsu[k][j]);
    }
    free(t->ux);
    free(t->uv);
    free(t->gx);
    free(t->gv);
    free(t->gshare);
    free(t->part);
    free(t->status);
    free(t->xo);
    free(t->vo);
    free(t->dxo);
    free(t->dvo);
    free(t->bx);
    free(t->bv);
    free(t->bxt);
    free(t->bvt);
    free(t->bq);
    free(t->idx);
    free(t->cnt);
    free(t->sbuf);
    free(t->rbuf);
    free(t->pk);
    free(t);
}

/* Make the batch calls collective (see clofnet.h). */
int cn_trainer_set_comm(struct cn_trainer *t, const struct cn_comm *comm, char err[CN_ERRLEN])
{
    t->comm = NULL;
    if (!comm || comm->size <= 1)
        return CN_OK;
    if (comm->rank < 0 || comm->rank >= comm->size || !comm->agree || !comm->alltoallv ||
        !comm->allgatherv)
        return cn_fail(err, CN_EARG, "communicator of rank %d of %d is incomplete", comm->rank,
                       comm->size);
    /* every count and displacement of the collectives is an int */
    const double floats = (double)t->max_shares * (double)t->n_params,
                 bytes = (double)t->max_graphs * t->n * 3 * sizeof(float);
    if (floats > INT_MAX || bytes > INT_MAX || (double)t->n_params * sizeof(float) > INT_MAX)
        return cn_fail(err, CN_EARG, "a batch of %d graphs of %d bodies with %ld parameters is "
                       "too large for one MPI count", t->max_graphs, t->n, t->n_params);
    free(t->cnt);
    free(t->sbuf);
    free(t->rbuf);
    free(t->pk);
    t->cnt = malloc(4 * (size_t)comm->size * sizeof *t->cnt);
    t->sbuf = malloc((size_t)floats * sizeof(float));
    t->rbuf = malloc((size_t)floats * sizeof(float));
    t->pk = malloc(3 * (size_t)t->max_shares * sizeof *t->pk);
    if (!t->cnt || !t->sbuf || !t->rbuf || !t->pk)
        return cn_fail(err, CN_ENOMEM, "out of memory for the buffers of %d ranks", comm->size);
    t->comm = comm;
    return CN_OK;
}

/* Shares [*k0, *k1) of a batch of S that rank r of R computes. */
static void rank_shares(int S, int r, int R, int *k0, int *k1)
{
    *k0 = (int)((long)S * r / R);
    *k1 = (int)((long)S * (r + 1) / R);
}

/* Parameters [*p0, *p1) whose sum over the shares rank r of R makes. */
static void rank_slice(long P, int r, int R, long *p0, long *p1)
{
    *p0 = (long)((double)P * r / R);
    *p1 = r + 1 == R ? P : (long)((double)P * (r + 1) / R);
}

/* Per rank q, the bytes (or elements) of a block of items [a, b) of each rank's shares
 * [a, b) given as unit * (item count) and their displacement unit * (first item), where an
 * item range of shares is items(share) = min(share * per, total). */
static void share_counts(const struct cn_trainer *t, int S, long per, long total, long unit,
                         int *counts, int *displs)
{
    const int R = t->comm->size;
    for (int q = 0; q < R; q++) {
        int a, b;
        rank_shares(S, q, R, &a, &b);
        long ia = (long)a * per < total ? (long)a * per : total;
        long ib = (long)b * per < total ? (long)b * per : total;
        counts[q] = (int)((ib - ia) * unit);
        displs[q] = (int)(ia * unit);
    }
}

/* Threads a trainer asks for, and its largest batch. */
int cn_trainer_threads(const struct cn_trainer *t) { return t->threads; }
int cn_trainer_max_graphs(const struct cn_trainer *t) { return t->max_graphs; }

/* Workspaces and buffers for unrolled batches of up to K steps (see clofnet.h). */
int cn_trainer_set_unroll(struct cn_trainer *t, int K, char err[CN_ERRLEN])
{
    if (K < 1 || K > CN_MAX_UNROLL)
        return cn_fail(err, CN_EARG, "unroll %d must be in 1..%d", K, CN_MAX_UNROLL);
    if (t->cfg.task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "unrolled training needs a step model");
    if (t->ux && K <= t->unroll)
        return CN_OK;
    const int wg = t->max_graphs < CN_SHARE_GRAPHS ? t->max_graphs : CN_SHARE_GRAPHS;
    const size_t nb = (size_t)t->max_graphs * t->n * 3;
    const int cap = K > t->unroll ? K : t->unroll;
    float *ux = realloc(t->ux, (size_t)cap * nb * sizeof(float));
    if (ux)
        t->ux = ux;
    float *uv = ux ? realloc(t->uv, (size_t)cap * nb * sizeof(float)) : NULL;
    if (uv)
        t->uv = uv;
    if (!ux || !uv)
        return cn_fail(err, CN_ENOMEM, "out of memory for an unrolled batch");
    if ((!t->gx && !(t->gx = malloc(nb * sizeof(float)))) ||
        (!t->gv && !(t->gv = malloc(nb * sizeof(float)))))
        return cn_fail(err, CN_ENOMEM, "out of memory for an unrolled batch");
    for (int j = t->unroll; j < K; j++) { /* step j's workspace on every thread */
        for (int k = 0; k < t->threads; k++) {
            int st = cn_ws_create(&t->cfg, wg, t->n, CN_F32, &t->wsu[k][j], err);
            if (st) {
                for (int i = 0; i < k; i++) {
                    cn_ws_free(t->wsu[i][j]);
                    t->wsu[i][j] = NULL;
                }
                return st;
            }
        }
        t->unroll = j + 1;
    }
    return CN_OK;
}

/* Sum of squared differences in double, in index order. */
static double sq_sum(size_t cnt, const float *a, const float *b)
{
    double s = 0;
    for (size_t k = 0; k < cnt; k++) {
        double d = (double)a[k] - (double)b[k];
        s += d * d;
    }
    return s;
}

/* First graph and graph count of share k of a batch. */
static void share_range(int graphs, int k, int *first, int *count)
{
    *first = k * CN_SHARE_GRAPHS;
    *count = graphs - *first < CN_SHARE_GRAPHS ? graphs - *first : CN_SHARE_GRAPHS;
}

/* Forward and backward of graphs first..first+cnt-1 on thread th's workspaces, adding into
 * the gradient buffer g and the squared errors part. A reflection-averaged config runs the
 * mirror image on the second workspace: the output is (f(x) + R f(R x)) / 2, so each half gets
 * half the output gradient (the mirror's mirrored). */
static int chunk_grad(struct cn_trainer *t, int th, const struct cn_state *s, int first, int cnt,
                      const float *x, const float *v, const float *q, const float *field,
                      const float *x_target, const float *v_target, double count, float *g,
                      double part[2])
{
    const int n = t->n, step = t->cfg.task == CN_TASK_STEP, avg = t->cfg.reflect_avg;
    struct cn_ws *ws = t->ws[th];
    const size_t o = (size_t)first * n * 3, nb = (size_t)cnt * n * 3, nodes = (size_t)cnt * n;
    const float *qs = q + (size_t)first * n;
    int st = cn_forward(ws, s->param, cnt, x + o, v + o, qs, field, t->xo + o,
                        step ? t->vo + o : NULL);
    if (st)
        return st;
    float *dxm = NULL, *dvm = NULL; /* the mirror image's output gradients */
    if (avg) {
        float *mx = t->rscr[th], *mv = mx + nb, *xm = mv + nb, *vm = xm + nb;
        dxm = vm + nb;
        dvm = dxm + nb;
        cn_mirror_x(nodes, x + o, mx);
        cn_mirror_x(nodes, v + o, mv);
        if ((st = cn_forward(t->wsm[th], s->param, cnt, mx, mv, qs, field, xm, step ? vm : NULL)))
            return st;
        for (size_t j = 0; j < nb; j++) {
            const float sg = j % 3 == 0 ? -1.0f : 1.0f;
            t->xo[o + j] = 0.5f * (t->xo[o + j] + sg * xm[j]);
            if (step)
                t->vo[o + j] = 0.5f * (t->vo[o + j] + sg * vm[j]);
        }
    }
    part[0] += sq_sum(nb, t->xo + o, x_target + o);
    part[1] += step ? sq_sum(nb, t->vo + o, v_target + o) : 0;
    const double half = avg ? 0.5 : 1.0;
    for (size_t j = o; j < o + nb; j++) {
        t->dxo[j] = (float)(half * 2.0 * ((double)t->xo[j] - x_target[j]) / count);
        if (step)
            t->dvo[j] = (float)(half * 2.0 * ((double)t->vo[j] - v_target[j]) / count);
    }
    if ((st = cn_backward(ws, s->param, t->dxo + o, step ? t->dvo + o : NULL, g, NULL, NULL)))
        return st;
    if (!avg)
        return CN_OK;
    cn_mirror_x(nodes, t->dxo + o, dxm);
    if (step)
        cn_mirror_x(nodes, t->dvo + o, dvm);
    return cn_backward(t->wsm[th], s->param, dxm, step ? dvm : NULL, g, NULL, NULL);
}

/* Share k of a batch into its zeroed gradient buffer g: its graphs in chunks of
 * cn_chunk_graphs(n), one after the other (the split depends on n only, never on threads). */
static int share_grad(struct cn_trainer *t, int th, const struct cn_state *s, int graphs, int k,
                      const float *x, const float *v, const float *q, const float *field,
                      const float *x_target, const float *v_target, double count, float *g,
                      double part[2])
{
    int first, cnt;
    share_range(graphs, k, &first, &cnt);
    const int c = cn_chunk_graphs(t->n);
    part[0] = part[1] = 0;
    for (int j = first; j < first + cnt; j += c) {
        int st = chunk_grad(t, th, s, j, first + cnt - j < c ? first + cnt - j : c, x, v, q,
                            field, x_target, v_target, count, g, part);
        if (st)
            return st;
    }
    return CN_OK;
}

/* Inside a parallel region: grad = the share buffers summed in share order, element by
 * element, each buffer left zeroed for the next call (an orphaned omp for over blocks). */
static void reduce_shares(struct cn_trainer *t, int S, float *restrict grad)
{
    const long P = t->n_params, blocks = (P + REDUCE_BLOCK - 1) / REDUCE_BLOCK;
    float *restrict gs = t->gshare;
    const size_t stride = t->gstride;
    /* the blocks are split among the threads; within a block the shares are added in order */
#pragma omp for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long j0 = b * REDUCE_BLOCK, j1 = j0 + REDUCE_BLOCK < P ? j0 + REDUCE_BLOCK : P;
        memcpy(grad + j0, gs + j0, (size_t)(j1 - j0) * sizeof(float));
        memset(gs + j0, 0, (size_t)(j1 - j0) * sizeof(float));
        for (int k = 1; k < S; k++) {
            float *gk = gs + (size_t)k * stride;
            for (long j = j0; j < j1; j++)
                grad[j] += gk[j];
            memset(gk + j0, 0, (size_t)(j1 - j0) * sizeof(float));
        }
    }
}

/* After the shares: the first failing share's status, else the squared errors in share order. */
static int collect_shares(const struct cn_trainer *t, int S, double *sx, double *sv)
{
    for (int k = 0; k < S; k++) {
        if (t->status[k])
            return t->status[k];
        *sx += t->part[2 * k];
        *sv += t->part[2 * k + 1];
    }
    return CN_OK;
}

/* The energy term of unrolled batches (see clofnet.h). */
int cn_trainer_set_energy(struct cn_trainer *t, double weight, int sim_kind, char err[CN_ERRLEN])
{
    if (!(weight >= 0) || !isfinite(weight))
        return cn_fail(err, CN_EARG, "energy weight %g must be finite and >= 0", weight);
    if (weight > 0 && t->cfg.task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "the energy term needs a step model");
    if (sim_kind != SIM_CHARGED && sim_kind != SIM_STATIC && sim_kind != SIM_DYNAMIC)
        return cn_fail(err, CN_EARG, "unknown setting %d for the energy term", sim_kind);
    t->energy_w = weight;
    t->energy_kind = sim_kind;
    return CN_OK;
}

/* Total energy of one graph of n bodies, node-major float state (sim_kinetic_energy +
 * sim_potential_energy, computed in double): 0.5 sum |v|^2 + sum_{i<j} q_i q_j / d_ij (d^2
 * softened), - g z_i in the static setting (the magnetic force does no work). */
static double graph_energy(int kind, int n, const float *x, const float *v, const float *q)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++)
            e += 0.5 * (double)v[3 * i + k] * v[3 * i + k];
        for (int j = i + 1; j < n; j++) {
            double d2 = SIM_SOFTENING;
            for (int k = 0; k < 3; k++) {
                const double d = (double)x[3 * i + k] - x[3 * j + k];
                d2 += d * d;
            }
            e += (double)q[i] * q[j] / sqrt(d2);
        }
        if (kind == SIM_STATIC)
            e -= SIM_GRAVITY * x[3 * i + 2];
    }
    return e;
}

/* c times the gradient of graph_energy added into dx, dv: dE/dv_i = v_i, dE/dx_i = -F_i with F
 * the Coulomb force (+ g along z when static), each component clamped to +-SIM_MAX_F as the
 * simulator clamps its forces: a near-collision's 1/d^2 then cannot dominate a batch. */
static void graph_energy_grad(int kind, int n, const float *x, const float *v, const float *q,
                              double c, float *dx, float *dv)
{
    for (int i = 0; i < n; i++) {
        double f[3] = {0, 0, kind == SIM_STATIC ? SIM_GRAVITY : 0};
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            double d[3], d2 = SIM_SOFTENING;
            for (int k = 0; k < 3; k++) {
                d[k] = (double)x[3 * i + k] - x[3 * j + k];
                d2 += d[k] * d[k];
            }
            const double s = (double)q[i] * q[j] / (d2 * sqrt(d2));
            for (int k = 0; k < 3; k++)
                f[k] += s * d[k];
        }
        for (int k = 0; k < 3; k++) {
            const double fk = f[k] > SIM_MAX_F ? SIM_MAX_F : f[k] < -SIM_MAX_F ? -SIM_MAX_F : f[k];
            dx[3 * i + k] += (float)(-c * fk);
            dv[3 * i + k] += (float)(c * v[3 * i + k]);
        }
    }
}

/* The first step's weight in an unrolled loss (see clofnet.h). */
int cn_trainer_set_first_weight(struct cn_trainer *t, double w, char err[CN_ERRLEN])
{
    if (!(w > 0) || !isfinite(w))
        return cn_fail(err, CN_EARG, "first-step weight %g must be finite and > 0", w);
    t->w_first = w;
    return CN_OK;
}

/* The Huber penalty of an energy error e (quadratic within CN_ENERGY_HUBER) and its slope. */
static double energy_penalty(double e, double *slope)
{
    const double d = CN_ENERGY_HUBER;
    if (fabs(e) <= d) {
        *slope = 2 * e;
        return e * e;
    }
    *slope = e > 0 ? 2 * d : -2 * d;
    return 2 * d * fabs(e) - d * d;
}

/* Share k of an unrolled batch: K learned steps from (x, v), each compared with its targets
 * (xt, vt: [K][graphs n 3]); the loss is the weighted mean of the K step losses (the first
 * weighs w_first, the others 1) and its gradient flows back through every step (BPTT), or,
 * with push, only the last step is a loss and gets a gradient, its input (the model's own
 * (K-1)-step prediction) treated as data. */
static int share_grad_unroll(struct cn_trainer *t, int th, const struct cn_state *s, int graphs,
                             int k, int K, int push, const float *x, const float *v,
                             const float *q, const float *field, const float *xt,
                             const float *vt, double count, float *g, double part[2])
{
    const int n = t->n;
    int first, cnt;
    share_range(graphs, k, &first, &cnt);
    const size_t o = (size_t)first * n * 3, nb = (size_t)cnt * n * 3, stride = (size_t)graphs * n * 3;
    const size_t ustride = (size_t)t->max_graphs * n * 3;
    const float *qs = q + (size_t)first * n;
    part[0] = part[1] = 0;
    for (int j = 0; j < K; j++) {
        struct cn_ws *ws = push || j == 0 ? t->ws[th] : t->wsu[th][j];
        const float *xin = j == 0 ? x + o : t->ux + (size_t)(j - 1) * ustride + o;
        const float *vin = j == 0 ? v + o : t->uv + (size_t)(j - 1) * ustride + o;
        float *xo = t->ux + (size_t)j * ustride + o, *vo = t->uv + (size_t)j * ustride + o;
        int st = cn_forward(ws, s->param, cnt, xin, vin, qs, field, xo, vo);
        if (st)
            return st;
        if (!push || j == K - 1) {
            const double wj = !push && j == 0 ? t->w_first : 1;
            part[0] += wj * sq_sum(nb, xo, xt + (size_t)j * stride + o);
            part[1] += wj * sq_sum(nb, vo, vt + (size_t)j * stride + o);
        }
    }
    /* the loss is a weighted mean over the steps: the weights sum to w_first + K - 1 */
    const double scale = push ? count : count * (t->w_first + (K - 1));
    float *dxo = t->dxo + o, *dvo = t->dvo + o, *gx = t->gx + o, *gv = t->gv + o;
    for (int j = K - 1; j >= (push ? K - 1 : 0); j--) {
        const float *xo = t->ux + (size_t)j * ustride + o, *vo = t->uv + (size_t)j * ustride + o;
        const float *xtj = xt + (size_t)j * stride + o, *vtj = vt + (size_t)j * stride + o;
        const double wj = !push && j == 0 ? t->w_first : 1;
        for (size_t i = 0; i < nb; i++) {
            dxo[i] = (float)(2.0 * wj * ((double)xo[i] - xtj[i]) / scale);
            dvo[i] = (float)(2.0 * wj * ((double)vo[i] - vtj[i]) / scale);
            if (j < K - 1) { /* what step j + 1 sends back to its input, step j's output */
                dxo[i] += gx[i];
                dvo[i] += gv[i];
            }
        }
        if (t->energy_w > 0) /* + w huber(E(step j) - E(target j)), a mean over graphs, steps */
            for (int b = 0; b < cnt; b++) {
                const size_t ob = (size_t)b * n * 3;
                const double e = graph_energy(t->energy_kind, n, xo + ob, vo + ob, qs + b * n) -
                                 graph_energy(t->energy_kind, n, xtj + ob, vtj + ob, qs + b * n);
                double slope;
                const double pen = energy_penalty(e, &slope);
                /* the loss divides by count = graphs n 3 */
                part[0] += wj * t->energy_w * pen * (n * 3);
                graph_energy_grad(t->energy_kind, n, xo + ob, vo + ob, qs + b * n,
                                  wj * t->energy_w * slope * (n * 3) / scale, dxo + ob, dvo + ob);
            }
        struct cn_ws *ws = push || j == 0 ? t->ws[th] : t->wsu[th][j];
        const int more = !push && j > 0;
        int st = cn_backward(ws, s->param, dxo, dvo, g, more ? gx : NULL, more ? gv : NULL);
        if (st)
            return st;
    }
    return CN_OK;
}

/* Loss and gradient of an unrolled batch (see clofnet.h). */
int cn_trainer_grad_unroll(struct cn_trainer *t, struct cn_state *s, int graphs, int K, int push,
                           const float *x, const float *v, const float *q, const float *field,
                           const float *x_targets, const float *v_targets, double *loss)
{
    if (graphs < 1 || graphs > t->max_graphs || s->n_params != t->n_params || !loss ||
        K < 1 || K > t->unroll || !t->ux || (push != 0 && push != 1) ||
        t->cfg.task != CN_TASK_STEP || !x_targets || !v_targets || t->cfg.reflect_avg)
        return CN_EARG;
    const int S = cn_shares(graphs), T = t->threads < S ? t->threads : S;
    const double count = (double)graphs * t->n * 3;
    const size_t stride = t->gstride;
    float *gs = t->gshare, *grad = s->grad;
#pragma omp parallel num_threads(T)
    {
        const int th = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < S; k++)
            t->status[k] = share_grad_unroll(t, th, s, graphs, k, K, push, x, v, q, field,
                                             x_targets, v_targets, count,
                                             gs + (size_t)k * stride, t->part + 2 * k);
        reduce_shares(t, S, grad);
    }
    double sx = 0, sv = 0;
    int st = collect_shares(t, S, &sx, &sv);
    if (st)
        return st;
    *loss = (sx + sv) / (push ? count : count * (t->w_first + (K - 1)));
    return CN_OK;
}

/* Check the sizes of a batch call. */
static int check_batch(const struct cn_trainer *t, int graphs)
{
    return graphs >= 1 && graphs <= t->max_graphs ? CN_OK : CN_EARG;
}

static int grad_comm(struct cn_trainer *t, struct cn_state *s, int graphs, const float *x,
                     const float *v, const float *q, const float *field, const float *x_target,
                     const float *v_target, double *loss);

/* Loss and gradient of one batch (see clofnet.h). */
int cn_trainer_grad(struct cn_trainer *t, struct cn_state *s, int graphs, const float *x,
                    const float *v, const float *q, const float *field, const float *x_target,
                    const float *v_target, double *loss)
{
    if (check_batch(t, graphs) || s->n_params != t->n_params || !loss)
        return CN_EARG;
    if (t->comm)
        return grad_comm(t, s, graphs, x, v, q, field, x_target, v_target, loss);
    const int S = cn_shares(graphs), T = t->threads < S ? t->threads : S;
    const double count = (double)graphs * t->n * 3;
    const size_t stride = t->gstride;
    float *gs = t->gshare, *grad = s->grad;
#pragma omp parallel num_threads(T)
    {
        /* however many threads are granted, every share is computed once */
        const int th = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < S; k++)
            t->status[k] = share_grad(t, th, s, graphs, k, x, v, q, field, x_target, v_target,
                                      count, gs + (size_t)k * stride, t->part + 2 * k);
        reduce_shares(t, S, grad);
    }
    double sx = 0, sv = 0;
    int st = collect_shares(t, S, &sx, &sv);
    if (st)
        return st;
    *loss = (sx + sv) / count;
    return CN_OK;
}

/* cn_trainer_grad over the ranks of t->comm (see struct cn_comm in clofnet.h): this rank's
 * shares on its threads, each parameter slice summed over all shares in share order by its
 * owner, the slices and the shares' errors and statuses gathered on every rank. */
static int grad_comm(struct cn_trainer *t, struct cn_state *s, int graphs, const float *x,
                     const float *v, const float *q, const float *field, const float *x_target,
                     const float *v_target, double *loss)
{
    const struct cn_comm *c = t->comm;
    const int R = c->size, me = c->rank, S = cn_shares(graphs);
    int k0, k1;
    rank_shares(S, me, R, &k0, &k1);
    const int T = t->threads < k1 - k0 ? t->threads : k1 - k0;
    const double count = (double)graphs * t->n * 3;
    const long P = t->n_params;
    const size_t stride = t->gstride;
    float *restrict gs = t->gshare;
    if (T > 0) {
#pragma omp parallel num_threads(T)
        {
            const int th = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
            for (int k = k0; k < k1; k++)
                t->status[k] = share_grad(t, th, s, graphs, k, x, v, q, field, x_target,
                                          v_target, count, gs + (size_t)k * stride,
                                          t->part + 2 * k);
        }
    }
    /* out: for each owner, its slice of every share of this rank, in share order */
    int *sc = t->cnt, *sd = sc + R, *rc = sd + R, *rd = rc + R;
    long off = 0;
    for (int o = 0; o < R; o++) {
        long p0, p1;
        rank_slice(P, o, R, &p0, &p1);
        sd[o] = (int)off;
        for (int k = k0; k < k1; k++, off += p1 - p0)
            memcpy(t->sbuf + off, gs + (size_t)k * stride + p0, (size_t)(p1 - p0) * sizeof(float));
        sc[o] = (int)(off - sd[o]);
    }
    for (int k = k0; k < k1; k++)
        memset(gs + (size_t)k * stride, 0, (size_t)P * sizeof(float)); /* zero for the next call */
    long q0, q1;
    rank_slice(P, me, R, &q0, &q1);
    const long len = q1 - q0;
    /* in: this rank's slice of all S shares, share after share (ranks hold ascending shares) */
    share_counts(t, S, 1, S, len, rc, rd);
    if (c->alltoallv(c->ctx, t->sbuf, sc, sd, t->rbuf, rc, rd))
        return CN_EIO;
    /* the slice summed in share order, element by element, as one process sums it */
    float *restrict g = s->grad + q0;
    const float *restrict rb = t->rbuf;
    const long blocks = (len + REDUCE_BLOCK - 1) / REDUCE_BLOCK;
    const int TR = t->threads < blocks ? t->threads : (int)(blocks > 0 ? blocks : 1);
#pragma omp parallel for schedule(static) num_threads(TR)
    for (long b = 0; b < blocks; b++) {
        const long j0 = b * REDUCE_BLOCK, j1 = j0 + REDUCE_BLOCK < len ? j0 + REDUCE_BLOCK : len;
        memcpy(g + j0, rb + j0, (size_t)(j1 - j0) * sizeof(float));
        for (int k = 1; k < S; k++) {
            const float *gk = rb + (size_t)k * len;
            for (long j = j0; j < j1; j++)
                g[j] += gk[j];
        }
    }
    for (int o = 0; o < R; o++) {
        long p0, p1;
        rank_slice(P, o, R, &p0, &p1);
        rc[o] = (int)((p1 - p0) * (long)sizeof(float));
        rd[o] = (int)(p0 * (long)sizeof(float));
    }
    if (c->allgatherv(c->ctx, g, (int)(len * (long)sizeof(float)), s->grad, rc, rd))
        return CN_EIO;
    /* every share's squared errors and status, on every rank */
    for (int k = k0; k < k1; k++) {
        t->pk[3 * k] = t->part[2 * k];
        t->pk[3 * k + 1] = t->part[2 * k + 1];
        t->pk[3 * k + 2] = t->status[k];
    }
    share_counts(t, S, 1, S, 3 * (long)sizeof(double), rc, rd);
    if (c->allgatherv(c->ctx, t->pk + 3 * k0, rc[me], t->pk, rc, rd))
        return CN_EIO;
    double sx = 0, sv = 0;
    for (int k = 0; k < S; k++) {
        if (t->pk[3 * k + 2] != 0)
            return (int)t->pk[3 * k + 2];
        sx += t->pk[3 * k];
        sv += t->pk[3 * k + 1];
    }
    *loss = (sx + sv) / count;
    return CN_OK;
}

/* Forward only, with per-sample errors (see clofnet.h). */
int cn_trainer_predict(struct cn_trainer *t, const float *param, int graphs, const float *x,
                       const float *v, const float *q, const float *field,
                       const float *x_target, const float *v_target, float *x_out,
                       float *v_out, double *sample_mse)
{
    if (check_batch(t, graphs) || !param)
        return CN_EARG;
    const int n = t->n, step = t->cfg.task == CN_TASK_STEP, S = cn_shares(graphs);
    /* the shares of this rank (all of them without a communicator) */
    int k0 = 0, k1 = S;
    if (t->comm)
        rank_shares(S, t->comm->rank, t->comm->size, &k0, &k1);
    const int T = t->threads < k1 - k0 ? t->threads : k1 - k0;
    const size_t nb1 = (size_t)n * 3;
#pragma omp parallel num_threads(T > 0 ? T : 1) if (T > 0)
    {
        const int th = omp_get_thread_num();
        struct cn_ws *ws = t->ws[th];
#pragma omp for schedule(dynamic, 1)
        for (int k = k0; k < k1; k++) {
            int first, cnt;
            share_range(graphs, k, &first, &cnt);
            const int c = cn_chunk_graphs(n);
            t->status[k] = CN_OK;
            for (int j = first; j < first + cnt && !t->status[k]; j += c) {
                const size_t o = (size_t)j * nb1;
                const int m = first + cnt - j < c ? first + cnt - j : c;
                t->status[k] = cn_forward_predict(ws, param, m, x + o, v + o, q + (size_t)j * n,
                                                  field, t->xo + o, step ? t->vo + o : NULL,
                                                  t->rscr[th]);
            }
            if (!t->status[k] && sample_mse && x_target)
                for (int g = first; g < first + cnt; g++) {
                    double e = sq_sum(nb1, t->xo + g * nb1, x_target + g * nb1) / (double)nb1;
                    if (step && v_target)
                        e += sq_sum(nb1, t->vo + g * nb1, v_target + g * nb1) / (double)nb1;
                    sample_mse[g] = e;
                }
        }
    }
    if (t->comm) {
        /* every share's status, errors and predictions (those asked for) on every rank */
        const struct cn_comm *c = t->comm;
        int *rc = t->cnt, *rd = rc + c->size, me = c->rank;
        const long G = CN_SHARE_GRAPHS;
        share_counts(t, S, 1, S, sizeof(int), rc, rd);
        int bad = c->allgatherv(c->ctx, t->status + k0, rc[me], t->status, rc, rd);
        if (!bad && sample_mse && x_target) {
            share_counts(t, S, G, graphs, sizeof(double), rc, rd);
            bad = c->allgatherv(c->ctx, (char *)sample_mse + rd[me], rc[me], sample_mse, rc, rd);
        }
        share_counts(t, S, G, graphs, (long)(nb1 * sizeof(float)), rc, rd);
        if (!bad && x_out)
            bad = c->allgatherv(c->ctx, (char *)t->xo + rd[me], rc[me], t->xo, rc, rd);
        if (!bad && v_out && step)
            bad = c->allgatherv(c->ctx, (char *)t->vo + rd[me], rc[me], t->vo, rc, rd);
        if (bad)
            return CN_EIO;
    }
    for (int k = 0; k < S; k++)
        if (t->status[k])
            return t->status[k];
    if (x_out)
        memcpy(x_out, t->xo, (size_t)graphs * nb1 * sizeof(float));
    if (v_out && step)
        memcpy(v_out, t->vo, (size_t)graphs * nb1 * sizeof(float));
    return CN_OK;
}

/* Per-sample errors over a split, in batches of the trainer's size. */
int cn_eval_split(struct cn_trainer *t, const float *param, const struct cn_config *c,
                  const struct cn_split *sp, long max_samples, double *mse, long *count)
{
    return cn_eval_split_reflect(t, param, c, sp, max_samples, 0, mse, count);
}

/* The predictions of a batch averaged with those of its mirror image (see clofnet.h) into
 * xo, vo; per-sample errors against the targets into sample_mse. */
static int predict_reflect(struct cn_trainer *t, const float *param, int g, const float *field,
                           float *xo, float *vo, float *xm, float *vm, double *sample_mse)
{
    const int step = t->cfg.task == CN_TASK_STEP;
    const size_t nodes = (size_t)g * t->n, nb1 = (size_t)t->n * 3;
    int st = cn_trainer_predict(t, param, g, t->bx, t->bv, t->bq, field, NULL, NULL, xo,
                                step ? vo : NULL, NULL);
    if (st)
        return st;
    cn_mirror_x(nodes, t->bx, t->bx);
    cn_mirror_x(nodes, t->bv, t->bv);
    st = cn_trainer_predict(t, param, g, t->bx, t->bv, t->bq, field, NULL, NULL, xm,
                            step ? vm : NULL, NULL);
    if (st)
        return st;
    for (size_t k = 0; k < 3 * nodes; k++) { /* the mirror's predictions, mirrored back */
        const float s = k % 3 == 0 ? -1.0f : 1.0f;
        xo[k] = 0.5f * (xo[k] + s * xm[k]);
        if (step)
            vo[k] = 0.5f * (vo[k] + s * vm[k]);
    }
    for (int j = 0; j < g; j++) {
        double e = sq_sum(nb1, xo + j * nb1, t->bxt + j * nb1) / (double)nb1;
        if (step)
            e += sq_sum(nb1, vo + j * nb1, t->bvt + j * nb1) / (double)nb1;
        sample_mse[j] = e;
    }
    return CN_OK;
}

/* Per-sample errors over a split, optionally of the mirror-averaged model (see clofnet.h). */
int cn_eval_split_reflect(struct cn_trainer *t, const float *param, const struct cn_config *c,
                          const struct cn_split *sp, long max_samples, int reflect, double *mse,
                          long *count)
{
    *count = 0;
    if (sp->n != t->n || c->task != t->cfg.task || (reflect != 0 && reflect != 1))
        return CN_EARG;
    float *xo = NULL; /* with reflect: [4][max_graphs n 3] outputs, mirror outputs, x and v */
    const size_t nb = (size_t)t->max_graphs * t->n * 3;
    if (reflect && !(xo = malloc(4 * nb * sizeof(float))))
        return CN_ENOMEM;
    const long all = cn_task_samples(sp, c->task);
    long total = all;
    if (max_samples > 0 && max_samples < total)
        total = max_samples;
    float field[3] = {(float)c->field[0], (float)c->field[1], (float)c->field[2]};
    for (long s0 = 0; s0 < total; s0 += t->max_graphs) {
        int g = (int)(total - s0 < t->max_graphs ? total - s0 : t->max_graphs);
        /* a subset is spread evenly over the split rather than taken from its start */
        for (int k = 0; k < g; k++)
            t->idx[k] = total == all ? s0 + k : (long)((double)(s0 + k) * (double)all / (double)total);
        cn_gather(sp, c->task, t->idx, g, t->bx, t->bv, t->bq, t->bxt, t->bvt);
        const float *fp = c->has_field ? field : NULL;
        int st = reflect ? predict_reflect(t, param, g, fp, xo, xo + nb, xo + 2 * nb,
                                           xo + 3 * nb, mse + s0)
                         : cn_trainer_predict(t, param, g, t->bx, t->bv, t->bq, fp, t->bxt,
                                              t->bvt, NULL, NULL, mse + s0);
        if (st) {
            free(xo);
            return st;
        }
    }
    free(xo);
    *count = total;
    return CN_OK;
}
