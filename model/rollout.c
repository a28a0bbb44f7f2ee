/* rollout.c: free-running rollouts of a learned integrator on a dataset split, against the
 * ground truth and the constant-velocity baseline, with the energy drift of both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clofnet.h"
#include "sim.h"

void cn_rollout_free(struct cn_rollout *r)
{
    free(r->mse_model);
    free(r->mse_cv);
    free(r->mse_centroid);
    free(r->drift_model);
    free(r->drift_truth);
    free(r->worst_model);
    free(r->worst_cv);
    free(r->traj_x);
    memset(r, 0, sizeof *r);
}

/* Total energy of n bodies given node-major float positions and velocities. */
static double energy(int kind, int n, const float *x, const float *v, const float *q, double *buf)
{
    double *xa = buf, *va = buf + 3 * n, *qa = buf + 6 * n;
    for (int i = 0; i < n; i++)
        qa[i] = q[i];
    sim_node_to_axis(n, x, xa);
    sim_node_to_axis(n, v, va);
    return sim_kinetic_energy(n, va) + sim_potential_energy(kind, n, xa, qa);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). Close encounters make |dE| heavy-tailed: a
 * small position error next to a 1/r singularity is a huge energy error, so the mean
 * would report those few trajectories and nothing else. */
static double median(double *a, int n)
{
    qsort(a, n, sizeof *a, cmp_double);
    return sim_quantile(a, n, 0.5);
}

/* The energy projection (see clofnet.h). */
int cn_project_energy(int kind, int n, const float *q, const float *x, float *v, double e0,
                      double *scratch)
{
    if (n < 1)
        return 0;
    double *xa = scratch, *qa = scratch + 6 * n;
    for (int i = 0; i < n; i++)
        qa[i] = q[i];
    sim_node_to_axis(n, x, xa);
    const double pe = sim_potential_energy(kind, n, xa, qa);
    double vc[3] = {0, 0, 0}, rel = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            vc[c] += (double)v[3 * i + c] / n;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            const double u = (double)v[3 * i + c] - vc[c];
            rel += 0.5 * u * u;
        }
    const double kc = 0.5 * n * (vc[0] * vc[0] + vc[1] * vc[1] + vc[2] * vc[2]);
    const double want = e0 - pe - kc;
    if (!(want > 0) || !(rel > 0) || !isfinite(want))
        return 0;
    const double sc = sqrt(want / rel);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            v[3 * i + c] = (float)(vc[c] + sc * ((double)v[3 * i + c] - vc[c]));
    return 1;
}

int cn_rollout_run(struct cn_trainer *t, const struct cn_state *s, const struct cn_meta *meta,
                   const struct cn_split *sp, int start, int steps, long max_traj,
                   struct cn_rollout *r, cn_rollout_progress_fn progress, void *user,
                   char err[CN_ERRLEN])
{
    return cn_rollout_run_ex(t, s, meta, sp, start, steps, max_traj, 0, r, NULL, progress, user,
                             err);
}

int cn_rollout_run_ex(struct cn_trainer *t, const struct cn_state *s, const struct cn_meta *meta,
                      const struct cn_split *sp, int start, int steps, long max_traj,
                      int project_energy, struct cn_rollout *r, long *skipped,
                      cn_rollout_progress_fn progress, void *user, char err[CN_ERRLEN])
{
    memset(r, 0, sizeof *r);
    if (skipped)
        *skipped = 0;
    if (s->cfg.task != CN_TASK_STEP) {
        snprintf(err, CN_ERRLEN, "rollouts need a step model (nbody-train --task step); this "
                                 "checkpoint predicts frame 40 from frame 30");
        return CN_EARG;
    }
    if (sp->n < 2) {
        snprintf(err, CN_ERRLEN, "the split has %d bodies", sp->n);
        return CN_EDATA;
    }
    if (start < 0 || steps < 1 || start + steps > sp->frames - 1) {
        snprintf(err, CN_ERRLEN,
                 "--start %d with --rollout %d needs frames %d..%d, but the dataset has frames "
                 "0..%d", start, steps, start, start + steps, sp->frames - 1);
        return CN_EARG;
    }
    const int n = sp->n, kind = meta->sim_kind, G = sp->count < max_traj || max_traj <= 0
                                                      ? sp->count : (int)max_traj;
    const int batch = cn_trainer_max_graphs(t) < 128 ? cn_trainer_max_graphs(t) : 128;
    const size_t nb = (size_t)n * 3;
    const double dt_frame = meta->horizon_steps * SIM_DT;
    r->steps = steps;
    r->start = start;
    r->trajectories = G;
    r->mse_model = calloc(steps, sizeof(double));
    r->mse_cv = calloc(steps, sizeof(double));
    r->mse_centroid = calloc(steps, sizeof(double));
    r->drift_model = calloc(steps, sizeof(double));
    r->drift_truth = calloc(steps, sizeof(double));
    r->worst_model = calloc(steps, sizeof(double));
    r->worst_cv = calloc(steps, sizeof(double));
    r->traj_x = calloc((size_t)steps * nb, sizeof(float));
    float *x = malloc(sizeof(float) * batch * nb), *v = malloc(sizeof(float) * batch * nb);
    float *xo = malloc(sizeof(float) * batch * nb), *vo = malloc(sizeof(float) * batch * nb);
    float *q = malloc(sizeof(float) * batch * n);
    double *e0 = malloc(sizeof(double) * batch), *buf = malloc(sizeof(double) * 7 * n);
    /* |dE| of every trajectory at every horizon, for the medians */
    double *dm = malloc(sizeof(double) * steps * G), *dtr = malloc(sizeof(double) * steps * G);
    if (!r->mse_model || !r->mse_cv || !r->mse_centroid || !r->drift_model || !r->drift_truth || !r->worst_model || !r->worst_cv || !r->traj_x || !x ||
        !v || !xo || !vo || !q || !e0 || !buf || !dm || !dtr) {
        free(x); free(v); free(xo); free(vo); free(q); free(e0); free(buf); free(dm); free(dtr);
        cn_rollout_free(r);
        snprintf(err, CN_ERRLEN, "out of memory for the rollout");
        return CN_ENOMEM;
    }
    const float field[3] = {(float)s->cfg.field[0], (float)s->cfg.field[1], (float)s->cfg.field[2]};
    int status = CN_OK;
    for (int g0 = 0; g0 < G && status == CN_OK; g0 += batch) {
        const int g = G - g0 < batch ? G - g0 : batch;
        for (int b = 0; b < g; b++) {
            const size_t f = ((size_t)(g0 + b) * sp->frames + start) * nb;
            memcpy(x + b * nb, sp->loc + f, nb * sizeof(float));
            memcpy(v + b * nb, sp->vel + f, nb * sizeof(float));
            memcpy(q + (size_t)b * n, sp->q + (size_t)(g0 + b) * n, n * sizeof(float));
            e0[b] = energy(kind, n, x + b * nb, v + b * nb, q + (size_t)b * n, buf);
        }
        for (int k = 0; k < steps; k++) {
            status = cn_trainer_predict(t, s->param, g, x, v, q,
                                        s->cfg.has_field ? field : NULL, NULL, NULL, xo, vo, NULL);
            if (status != CN_OK)
                break;
            memcpy(x, xo, sizeof(float) * g * nb);
            memcpy(v, vo, sizeof(float) * g * nb);
            if (project_energy)
                for (int b = 0; b < g; b++)
                    if (!cn_project_energy(kind, n, q + (size_t)b * n, x + b * nb, v + b * nb,
                                           e0[b], buf) && skipped)
                        (*skipped)++;
            for (int b = 0; b < g; b++) {
                const int traj = g0 + b;
                const float *truth = sp->loc + ((size_t)traj * sp->frames + start + k + 1) * nb;
                const float *vtruth = sp->vel + ((size_t)traj * sp->frames + start + k + 1) * nb;
                const float *x0 = sp->loc + ((size_t)traj * sp->frames + start) * nb;
                const float *v0 = sp->vel + ((size_t)traj * sp->frames + start) * nb;
                double em = 0, ec = 0;
                for (size_t c = 0; c < nb; c++) {
                    if (!isfinite(x[b * nb + c]) || !isfinite(v[b * nb + c]))
                        status = CN_EDATA;
                    double dm = (double)x[b * nb + c] - truth[c];
                    double dc = (double)x0[c] + (double)v0[c] * dt_frame * (k + 1) - truth[c];
                    em += dm * dm;
                    ec += dc * dc;
                }
                r->mse_model[k] += em / (double)nb;
                r->worst_model[k] = fmax(r->worst_model[k], em / (double)nb);
                r->worst_cv[k] = fmax(r->worst_cv[k], ec / (double)nb);
                /* the centroid moves only under the external field: Coulomb forces cancel */
                double cm[3] = {0, 0, 0};
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < 3; c++)
                        cm[c] += ((double)x[b * nb + 3 * i + c] - truth[3 * i + c]) / n;
                r->mse_centroid[k] += (cm[0] * cm[0] + cm[1] * cm[1] + cm[2] * cm[2]) / 3.0;
                r->mse_cv[k] += ec / (double)nb;
                double ef = energy(kind, n, x + b * nb, v + b * nb, q + (size_t)b * n, buf);
                double et = energy(kind, n, truth, vtruth, q + (size_t)b * n, buf);
                dm[(size_t)k * G + traj] = fabs(ef - e0[b]);
                dtr[(size_t)k * G + traj] = fabs(et - e0[b]); /* same start state */
                if (traj == 0)
                    memcpy(r->traj_x + (size_t)k * nb, x, nb * sizeof(float));
            }
        }
        if (progress)
            progress(user, g0 + g, G);
    }
    for (int k = 0; k < steps; k++) {
        r->mse_model[k] /= G;
        r->mse_cv[k] /= G;
        r->mse_centroid[k] /= G;
        r->drift_model[k] = median(dm + (size_t)k * G, G);
        r->drift_truth[k] = median(dtr + (size_t)k * G, G);
    }
    free(x); free(v); free(xo); free(vo); free(q); free(e0); free(buf); free(dm); free(dtr);
    if (status != CN_OK) {
        if (status == CN_EDATA)
            snprintf(err, CN_ERRLEN, "the rollout produced a non-finite state");
        else
            snprintf(err, CN_ERRLEN, "the network failed during the rollout: %s",
                     cn_strerror(status));
        cn_rollout_free(r);
    }
    return status;
}
