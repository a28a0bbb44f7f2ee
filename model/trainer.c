/* trainer.c: one batch split across OpenMP threads (each with single-threaded OpenBLAS, its
 * own workspace and gradient buffer, reduced in a fixed order), prediction and evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "internal.h"

/* Graphs per forward/backward call inside a thread: small enough that one layer's activations
 * (about 12 arrays of graphs * n(n-1) * H floats) stay in a 1 MiB L2 cache, large enough for
 * efficient sgemm. Gradients of the micro-batches are accumulated in order (deterministic).
 * CN_MICRO_BATCH environment variable overrides it (for benchmarking). */
#define MICRO_BATCH 16

/* Per-thread buffers and the shared prediction/gradient arrays of a batch. */
struct cn_trainer {
    struct cn_config cfg;
    int threads, max_graphs, n, micro;
    struct cn_ws *ws[64];
    float *gbuf[64];     /* gradient buffers of threads 1.. (thread 0 writes s->grad) */
    long n_params;
    float *xo, *vo, *dxo, *dvo; /* [max_graphs * n * 3] */
    double part[64][2];  /* per-thread partial sums of squared errors (x, v) */
    /* scratch of cn_eval_split */
    float *bx, *bv, *bq, *bxt, *bvt;
    long *idx;
};

/* Graphs [first, first + count) handled by thread t of T. */
static void share(int graphs, int T, int t, int *first, int *count)
{
    int base = graphs / T, rem = graphs % T;
    *first = t * base + (t < rem ? t : rem);
    *count = base + (t < rem ? 1 : 0);
}

/* Create a trainer (see clofnet.h). */
int cn_trainer_create(const struct cn_config *c, int max_graphs, int n, int threads,
                      struct cn_trainer **out, char err[CN_ERRLEN])
{
    *out = NULL;
    if (threads < 1 || threads > 64)
        return cn_fail(err, CN_EARG, "threads %d must be in 1..64", threads);
    if (threads > max_graphs)
        threads = max_graphs;
    struct cn_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return cn_fail(err, CN_ENOMEM, "out of memory");
    t->cfg = *c;
    t->threads = threads;
    t->max_graphs = max_graphs;
    t->n = n;
    t->n_params = cn_param_count(c);
    int st = CN_OK;
    t->micro = MICRO_BATCH;
    const char *env = getenv("CN_MICRO_BATCH");
    if (env && atoi(env) > 0)
        t->micro = atoi(env);
    for (int k = 0; k < threads && !st; k++) {
        int first, count;
        share(max_graphs, threads, k, &first, &count);
        st = cn_ws_create(c, count < t->micro ? count : t->micro, n, CN_F32, &t->ws[k], err);
        if (!st && k > 0 && !(t->gbuf[k] = malloc((size_t)t->n_params * sizeof(float))))
            st = cn_fail(err, CN_ENOMEM, "out of memory for gradient buffers");
    }
    size_t nb = (size_t)max_graphs * n * 3;
    if (!st) {
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
        if (!t->xo || !t->vo || !t->dxo || !t->dvo || !t->bx || !t->bv || !t->bxt || !t->bvt ||
            !t->bq || !t->idx)
            st = cn_fail(err, CN_ENOMEM, "out of memory for batch buffers");
    }
    if (st) {
        cn_trainer_free(t);
        return st;
    }
    /* parallelism comes from splitting the batch: OpenBLAS's own threads would oversubscribe,
     * and on these small matrices they mostly spin in sched_yield */
    openblas_set_num_threads(1);
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
        free(t->gbuf[k]);
    }
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
    free(t);
}

/* Threads a trainer splits batches across. */
int cn_trainer_threads(const struct cn_trainer *t) { return t->threads; }

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

/* Loss and gradient of one batch (see clofnet.h). */
double cn_trainer_grad(struct cn_trainer *t, struct cn_state *s, int graphs, const float *x,
                       const float *v, const float *q, const float *field,
                       const float *x_target, const float *v_target)
{
    const int n = t->n, step = t->cfg.task == CN_TASK_STEP;
    const int T = t->threads < graphs ? t->threads : graphs;
    const double count = (double)graphs * n * 3;
    memset(s->grad, 0, (size_t)s->n_params * sizeof(float));
#pragma omp parallel num_threads(T)
    {
        int k = omp_get_thread_num(), first, cnt;
        share(graphs, T, k, &first, &cnt);
        size_t o = (size_t)first * n * 3, nb = (size_t)cnt * n * 3;
        float *g = k == 0 ? s->grad : t->gbuf[k];
        if (k > 0)
            memset(g, 0, (size_t)s->n_params * sizeof(float));
        double px = 0, pv = 0;
        for (int m0 = 0; m0 < cnt; m0 += t->micro) {
            const int mc = cnt - m0 < t->micro ? cnt - m0 : t->micro;
            const size_t om = o + (size_t)m0 * n * 3, nm = (size_t)mc * n * 3;
            cn_forward(t->ws[k], s->param, mc, x + om, v + om, q + (size_t)(first + m0) * n, field,
                       t->xo + om, step ? t->vo + om : NULL);
            px += sq_sum(nm, t->xo + om, x_target + om);
            if (step)
                pv += sq_sum(nm, t->vo + om, v_target + om);
            for (size_t j = om; j < om + nm; j++) {
                t->dxo[j] = (float)(2.0 * ((double)t->xo[j] - x_target[j]) / count);
                if (step)
                    t->dvo[j] = (float)(2.0 * ((double)t->vo[j] - v_target[j]) / count);
            }
            cn_backward(t->ws[k], s->param, t->dxo + om, step ? t->dvo + om : NULL, g, NULL, NULL);
        }
        t->part[k][0] = px;
        t->part[k][1] = pv;
        (void)nb;
#pragma omp barrier
        /* fixed-order reduction, each thread summing its own slice of the parameters */
        long pf = s->n_params * k / T, pl = s->n_params * (k + 1) / T;
        for (int u = 1; u < T; u++) {
            const float *gu = t->gbuf[u];
            for (long j = pf; j < pl; j++)
                s->grad[j] += gu[j];
        }
    }
    double sx = 0, sv = 0;
    for (int k = 0; k < T; k++) {
        sx += t->part[k][0];
        sv += t->part[k][1];
    }
    return (sx + sv) / count;
}

/* Forward only, with per-sample errors (see clofnet.h). */
void cn_trainer_predict(struct cn_trainer *t, const float *param, int graphs, const float *x,
                        const float *v, const float *q, const float *field,
                        const float *x_target, const float *v_target, float *x_out,
                        float *v_out, double *sample_mse)
{
    const int n = t->n, step = t->cfg.task == CN_TASK_STEP;
    const int T = t->threads < graphs ? t->threads : graphs;
    const size_t nb1 = (size_t)n * 3;
#pragma omp parallel num_threads(T)
    {
        int k = omp_get_thread_num(), first, cnt;
        share(graphs, T, k, &first, &cnt);
        for (int m0 = first; m0 < first + cnt; m0 += t->micro) {
            const int mc = first + cnt - m0 < t->micro ? first + cnt - m0 : t->micro;
            const size_t om = (size_t)m0 * nb1;
            cn_forward(t->ws[k], param, mc, x + om, v + om, q + (size_t)m0 * n, field, t->xo + om,
                       step ? t->vo + om : NULL);
        }
        if (sample_mse && x_target)
            for (int g = first; g < first + cnt; g++) {
                double e = sq_sum(nb1, t->xo + g * nb1, x_target + g * nb1) / (double)nb1;
                if (step && v_target)
                    e += sq_sum(nb1, t->vo + g * nb1, v_target + g * nb1) / (double)nb1;
                sample_mse[g] = e;
            }
    }
    if (x_out)
        memcpy(x_out, t->xo, (size_t)graphs * nb1 * sizeof(float));
    if (v_out && step)
        memcpy(v_out, t->vo, (size_t)graphs * nb1 * sizeof(float));
}

/* Per-sample errors over a split, in batches of the trainer's size. */
long cn_eval_split(struct cn_trainer *t, const float *param, const struct cn_config *c,
                   const struct cn_split *sp, long max_samples, double *mse)
{
    if (sp->n != t->n)
        return -1;
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
        cn_trainer_predict(t, param, g, t->bx, t->bv, t->bq, c->has_field ? field : NULL,
                           t->bxt, t->bvt, NULL, NULL, mse + s0);
    }
    return total;
}
