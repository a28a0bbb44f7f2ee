/* eval_rollout.c: the --rollout mode of nbody-eval: free rollouts of a learned integrator on a
 * split, error against horizon for ClofNet and the constant-velocity baseline, CSV and PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clofnet.h"
#include "eval_rollout.h"
#include "plot.h"
#include "sim.h"

/* Write the per-horizon table as CSV, atomically; SIM_OK or a status with the message in err. */
static int write_csv(const char *path, const struct cn_rollout *r, double dt_frame,
                     char err[SIM_ERRLEN])
{
    struct sim_atomic a;
    int st = sim_atomic_open(&a, path, err);
    if (st != SIM_OK)
        return st;
    fprintf(a.f, "horizon,time,mse_clofnet,mse_constant_velocity,mse_centroid_clofnet,"
                 "energy_drift_clofnet,energy_drift_truth\n");
    for (int k = 0; k < r->steps; k++)
        fprintf(a.f, "%d,%.6g,%.9g,%.9g,%.9g,%.9g,%.9g\n", k + 1, (k + 1) * dt_frame,
                r->mse_model[k], r->mse_cv[k], r->mse_centroid[k], r->drift_model[k],
                r->drift_truth[k]);
    return sim_atomic_commit(&a, err); /* a failed fprintf shows in ferror */
}

/* Progress line on a terminal. */
static void show_progress(void *user, long done, long total)
{
    (void)user;
    fprintf(stderr, "\r\033[Knbody-eval: rollout %ld/%ld trajectories", done, total);
    if (done == total)
        fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

static void json_array(const char *key, const double *a, int n)
{
    printf("\"%s\": [", key);
    for (int k = 0; k < n; k++)
        printf("%s%.9g", k ? ", " : "", a[k]);
    printf("]");
}

int eval_rollout(const struct eval_rollout_opts *o)
{
    char err[CN_ERRLEN];
    struct cn_state s;
    struct cn_meta meta;
    int has_opt;
    if (cn_ckpt_load(o->model, NULL, &s, &meta, &has_opt, NULL, NULL, err) != CN_OK) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        return 1;
    }
    if (s.cfg.task != CN_TASK_STEP) {
        fprintf(stderr, "nbody-eval: %s is a position model (frame 30 -> 40); --rollout needs a "
                        "step model (nbody-train --task step)\n", o->model);
        cn_state_free(&s);
        return 1;
    }
    int which = !strcmp(o->split, "train") ? CN_SPLIT_TRAIN
                : !strcmp(o->split, "valid") ? CN_SPLIT_VALID : CN_SPLIT_TEST;
    struct cn_data d;
    if (cn_data_load(o->data, which, 0, &d, err) != CN_OK) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        cn_state_free(&s);
        return 1;
    }
    const struct cn_split *sp = which == CN_SPLIT_TRAIN ? &d.train
                                : which == CN_SPLIT_VALID ? &d.valid : &d.test;
    int rc = 1;
    struct cn_trainer *t = NULL;
    struct cn_rollout r = {0};
    long skipped = 0;
    if (d.kind != meta.sim_kind) {
        fprintf(stderr, "nbody-eval: the model was trained on the %s setting but %s holds %s data\n",
                sim_kind_name(meta.sim_kind), o->data, sim_kind_name(d.kind));
        goto out;
    }
    if (cn_trainer_create(&s.cfg, 128, sp->n, o->threads, &t, err) != CN_OK ||
        cn_rollout_run_ex(t, &s, &meta, sp, o->start, o->steps, o->max_traj, o->project_energy,
                          &r, &skipped, isatty(2) ? show_progress : NULL, NULL, err) != CN_OK) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        goto out;
    }
    const double dt_frame = meta.horizon_steps * SIM_DT;
    char csv[4096], png[4096];
    if (snprintf(csv, sizeof csv, "%s.csv", o->prefix) >= (int)sizeof csv ||
        snprintf(png, sizeof png, "%s.png", o->prefix) >= (int)sizeof png) {
        fprintf(stderr, "nbody-eval: --plot prefix of %zu bytes is too long\n", strlen(o->prefix));
        goto out;
    }
    char serr[SIM_ERRLEN];
    sim_signals_hold(); /* a signal waits until the table is whole (or its temporary gone) */
    int cst = write_csv(csv, &r, dt_frame, serr);
    sim_signals_release();
    if (cst != SIM_OK) {
        fprintf(stderr, "nbody-eval: cannot write the rollout table %s\n", serr);
        goto out;
    }
    double *h = malloc(sizeof(double) * r.steps);
    if (!h) {
        fprintf(stderr, "nbody-eval: out of memory for the plot %s (the table %s is written)\n",
                png, csv);
        goto out;
    }
    for (int k = 0; k < r.steps; k++)
        h[k] = k + 1;
    char title[256];
    snprintf(title, sizeof title, "free rollout from frame %d, %s, %d bodies, %ld trajectories",
             o->start, sim_kind_name(d.kind), sp->n, r.trajectories);
    struct plot_chart p = {.title = title,
                           .xlabel = "horizon (model steps of 100 simulation steps)",
                           .ylabel = "position MSE",
                           .log_y = 1,
                           .nseries = 2,
                           .series = {{"ClofNet", h, r.mse_model, r.steps, {214, 82, 40}},
                                      {"constant velocity x + v t", h, r.mse_cv, r.steps,
                                       {60, 110, 200}}}};
    char perr[PLOT_ERRLEN];
    sim_signals_hold();
    int pst = plot_chart_png(png, &p, perr);
    sim_signals_release();
    free(h);
    if (pst != SIM_OK) {
        /* The table is correct and complete: it stays, and the message says so. perr names
         * the PNG's path and the reason (a full disk: "No space left on device"). */
        fprintf(stderr, "nbody-eval: cannot write the plot %s (the table %s is written)\n",
                perr, csv);
        goto out;
    }
    if (o->json) {
        printf("{\"model\": \"%s\", \"split\": \"%s\", \"start\": %d, \"steps\": %d, "
               "\"trajectories\": %ld, \"horizon_steps\": %d, ",
               o->model, o->split, o->start, r.steps, r.trajectories, meta.horizon_steps);
        json_array("clofnet", r.mse_model, r.steps);
        printf(", ");
        json_array("constant_velocity", r.mse_cv, r.steps);
        printf(", ");
        json_array("centroid_clofnet", r.mse_centroid, r.steps);
        printf(", ");
        json_array("energy_drift_clofnet", r.drift_model, r.steps);
        printf(", ");
        json_array("energy_drift_truth", r.drift_truth, r.steps);
        printf(", ");
        json_array("worst_clofnet", r.worst_model, r.steps);
        printf(", ");
        json_array("worst_constant_velocity", r.worst_cv, r.steps);
        if (o->project_energy)
            printf(", \"energy_projection_skipped\": %ld", skipped);
        printf(", \"csv\": \"%s\", \"png\": \"%s\"}\n", csv, png);
    } else {
        printf("%s on %s/%s: free rollout from frame %d, %ld trajectories\n", o->model, o->data,
               o->split, o->start, r.trajectories);
        printf("%8s %8s %14s %14s %14s %14s\n", "horizon", "time", "MSE clofnet",
               "MSE const-vel", "med|dE| model", "med|dE| truth");
        for (int k = 0; k < r.steps; k++)
            printf("%8d %8.2f %14.6g %14.6g %14.4g %14.4g\n", k + 1, (k + 1) * dt_frame,
                   r.mse_model[k], r.mse_cv[k], r.drift_model[k], r.drift_truth[k]);
        if (o->project_energy)
            printf("energy projection: %ld of %ld steps had no solution (velocities kept)\n",
                   skipped, (long)r.steps * r.trajectories);
        printf("wrote %s and %s\n", csv, png);
    }
    rc = 0;
out:
    cn_rollout_free(&r);
    cn_trainer_free(t);
    cn_data_free(&d);
    cn_state_free(&s);
    return rc;
}
