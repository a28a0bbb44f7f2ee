/* app.c: the viewer's simulation state: the live simulator, the learned integrator
 * one model step ahead of it, interpolation, trails and the error history (no window, no GL). */
#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *viz_strerror(int status)
{
    switch (status) {
    case VIZ_OK: return "ok";
    case VIZ_EARG: return "invalid argument";
    case VIZ_ENOMEM: return "out of memory";
    case VIZ_EIO: return "input/output error";
    case VIZ_EFORMAT: return "bad file format";
    case VIZ_EMODEL: return "model error";
    case VIZ_EGL: return "OpenGL error";
    case VIZ_ENODISPLAY: return "no display";
    default: return "unknown error";
    }
}

double viz_position_mse(int n, const double *a, const double *b)
{
    double s = 0.0;
    for (int k = 0; k < 3 * n; k++)
        s += (a[k] - b[k]) * (a[k] - b[k]);
    return n > 0 ? s / (3.0 * n) : 0.0;
}

void viz_hermite(int n, const double *x0, const double *v0, const double *x1, const double *v1,
                 double span, double s, float *out)
{
    double s2 = s * s, s3 = s2 * s;
    double h00 = 2 * s3 - 3 * s2 + 1, h10 = s3 - 2 * s2 + s;
    double h01 = -2 * s3 + 3 * s2, h11 = s3 - s2;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < n; i++) {
            int j = k * n + i;
            out[i * 3 + k] = (float)(h00 * x0[j] + h10 * span * v0[j] + h01 * x1[j] + h11 * span * v1[j]);
        }
}

const float *viz_trail_point(const struct viz_trail *tr, int n, int age, int i)
{
    if (age < 0 || age >= tr->count || i < 0 || i >= n)
        return NULL;
    int slot = (tr->head - age + VIZ_TRAIL_LEN) % VIZ_TRAIL_LEN;
    return tr->pts + ((size_t)slot * n + i) * 3;
}

/* Append the current points of one side to its trail ring. */
static void trail_push(struct viz_trail *tr, int n, const float *xyz)
{
    tr->head = (tr->head + 1) % VIZ_TRAIL_LEN;
    memcpy(tr->pts + (size_t)tr->head * n * 3, xyz, (size_t)n * 3 * sizeof(float));
    if (tr->count < VIZ_TRAIL_LEN)
        tr->count++;
}

/* The learned side at simulation time `time` (steps), interpolated inside its current model step. */
static void learned_at(const struct viz_app *a, double time, float *out)
{
    int h = a->stepper.horizon;
    if (!a->learned_ok) {
        viz_hermite(a->n, a->lx0, a->lv0, a->lx0, a->lv0, 0.0, 0.0, out);
        return;
    }
    double s = (time - (double)a->learned_base) / h;
    s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
    viz_hermite(a->n, a->lx0, a->lv0, a->lx1, a->lv1, h * SIM_DT, s, out);
}

/* The truth's positions as [n][3] floats. */
static void truth_at(const struct viz_app *a, float *out)
{
    sim_axis_to_node(a->n, a->truth.x, out);
}

/* Record a point of the error plot, thinning the history to every other point when full. */
static void history_push(struct viz_app *a, double time, double mse)
{
    if (a->hist_count == VIZ_HISTORY_MAX) {
        for (int k = 0; k < VIZ_HISTORY_MAX / 2; k++) {
            a->hist_t[k] = a->hist_t[2 * k + 1];
            a->hist_mse[k] = a->hist_mse[2 * k + 1];
        }
        a->hist_count = VIZ_HISTORY_MAX / 2;
    }
    a->hist_t[a->hist_count] = time;
    a->hist_mse[a->hist_count] = mse;
    a->hist_count++;
}

/* Compute (lx1, lv1) from (lx0, lv0) with one model call; stop the learned side on failure. */
static void learned_call(struct viz_app *a)
{
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    memcpy(a->lx1, a->lx0, bytes);
    memcpy(a->lv1, a->lv0, bytes);
    char err[VIZ_ERRLEN] = "";
    int rc = a->stepper.step(a->stepper.ctx, a->n, a->truth.q, a->lx1, a->lv1, err);
    if (rc != 0) {
        a->learned_ok = 0;
        snprintf(a->status, sizeof a->status, "learned step failed at step %ld: %.200s", a->learned_base,
                 err[0] ? err : "no message");
        return;
    }
    for (int k = 0; k < 3 * a->n; k++)
        if (!(fabs(a->lx1[k]) < VIZ_DIVERGED) || !(fabs(a->lv1[k]) < VIZ_DIVERGED)) {
            a->learned_ok = 0;
            snprintf(a->status, sizeof a->status,
                     "learned state diverged after step %ld: the learned side is frozen (R restarts)",
                     a->learned_base);
            return;
        }
}

/* The truth has reached the end of the learned step: move the learned side on by one step. */
static void learned_shift(struct viz_app *a)
{
    a->learned_base += a->stepper.horizon;
    if (!a->learned_ok)
        return;
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    memcpy(a->lx0, a->lx1, bytes);
    memcpy(a->lv0, a->lv1, bytes);
    a->mse = viz_position_mse(a->n, a->truth.x, a->lx0);
    a->mse_step = a->step;
    history_push(a, a->step * SIM_DT, a->mse);
    learned_call(a);
}

/* Both trails get the positions at the current step. */
static void trails_sample(struct viz_app *a)
{
    truth_at(a, a->scratch);
    trail_push(&a->trail[0], a->n, a->scratch);
    learned_at(a, (double)a->step, a->scratch);
    trail_push(&a->trail[1], a->n, a->scratch);
}

/* Free the per-system arrays, keeping settings such as speed and toggles. */
static void app_release(struct viz_app *a)
{
    sim_system_free(&a->truth);
    free(a->lx0);
    free(a->lv0);
    free(a->lx1);
    free(a->lv1);
    free(a->hist_t);
    free(a->hist_mse);
    free(a->trail[0].pts);
    free(a->trail[1].pts);
    free(a->scratch);
    a->lx0 = a->lv0 = a->lx1 = a->lv1 = a->hist_t = a->hist_mse = NULL;
    a->trail[0].pts = a->trail[1].pts = a->scratch = NULL;
}

/* Allocate and fill the state of a fresh system; settings fields are left alone. */
static int app_start(struct viz_app *a, int kind, int n, uint32_t seed, char err[VIZ_ERRLEN])
{
    if (!a->stepper.step || a->stepper.horizon <= 0) {
        snprintf(err, VIZ_ERRLEN, "no learned integrator (horizon %d)", a->stepper.horizon);
        return VIZ_EARG;
    }
    int rc = sim_system_init(&a->truth, kind, n);
    if (rc != SIM_OK) {
        snprintf(err, VIZ_ERRLEN, "cannot create a %s system of %d bodies: %s",
                 sim_kind_name(kind) ? sim_kind_name(kind) : "?", n, sim_strerror(rc));
        return rc == SIM_ENOMEM ? VIZ_ENOMEM : VIZ_EARG;
    }
    size_t sz = (size_t)3 * n;
    a->lx0 = calloc(sz, sizeof(double));
    a->lv0 = calloc(sz, sizeof(double));
    a->lx1 = calloc(sz, sizeof(double));
    a->lv1 = calloc(sz, sizeof(double));
    a->hist_t = calloc(VIZ_HISTORY_MAX, sizeof(double));
    a->hist_mse = calloc(VIZ_HISTORY_MAX, sizeof(double));
    a->trail[0].pts = calloc((size_t)VIZ_TRAIL_LEN * sz, sizeof(float));
    a->trail[1].pts = calloc((size_t)VIZ_TRAIL_LEN * sz, sizeof(float));
    a->scratch = calloc(sz, sizeof(float));
    if (!a->lx0 || !a->lv0 || !a->lx1 || !a->lv1 || !a->hist_t || !a->hist_mse || !a->trail[0].pts ||
        !a->trail[1].pts || !a->scratch) {
        app_release(a);
        snprintf(err, VIZ_ERRLEN, "out of memory for %d bodies", n);
        return VIZ_ENOMEM;
    }
    a->kind = kind;
    a->n = n;
    a->seed = seed;
    sim_initial_state(&a->truth, seed);
    memcpy(a->lx0, a->truth.x, sz * sizeof(double));
    memcpy(a->lv0, a->truth.v, sz * sizeof(double));
    a->step = 0;
    a->t = 0.0;
    a->learned_base = 0;
    a->learned_ok = 1;
    a->mse = 0.0;
    a->mse_step = 0;
    a->hist_count = 0;
    a->trail[0].count = a->trail[1].count = 0;
    a->trail[0].head = a->trail[1].head = 0;
    a->status[0] = '\0';
    history_push(a, 0.0, 0.0);
    learned_call(a);
    trails_sample(a);
    return VIZ_OK;
}

int viz_app_init(struct viz_app *a, int kind, int n, uint32_t seed, const struct viz_stepper *st,
                 char err[VIZ_ERRLEN])
{
    memset(a, 0, sizeof *a);
    if (st)
        a->stepper = *st;
    a->trails = 1;
    a->speed = VIZ_SPEED_DEFAULT;
    return app_start(a, kind, n, seed, err);
}

void viz_app_free(struct viz_app *a)
{
    app_release(a);
    memset(a, 0, sizeof *a);
}

int viz_app_reset(struct viz_app *a, int kind, uint32_t seed, const struct viz_stepper *st,
                  char err[VIZ_ERRLEN])
{
    int n = a->n;
    app_release(a);
    if (st)
        a->stepper = *st;
    return app_start(a, kind, n, seed, err);
}

void viz_app_advance(struct viz_app *a, long steps)
{
    for (long s = 0; s < steps; s++) {
        /* Kick then drift from a state whose velocity lags: the reference's loop body,
         * so that step 100 (k + 1) is exactly dataset frame k. */
        sim_kick(&a->truth);
        sim_drift(&a->truth);
        a->step++;
        if (a->step == a->learned_base + a->stepper.horizon)
            learned_shift(a);
        if (a->step % VIZ_TRAIL_EVERY == 0)
            trails_sample(a);
    }
    a->t = (double)a->step;
}

void viz_app_update(struct viz_app *a, const struct viz_actions *act, double wall_dt, long max_steps)
{
    if (act) {
        if (act->toggle_pause)
            a->paused = !a->paused;
        if (act->toggle_trails)
            a->trails = !a->trails;
        if (act->toggle_help)
            a->help = !a->help;
        if (act->speed)
            a->speed = viz_speed_step(a->speed, act->speed);
        if (act->single_step) {
            a->paused = 1;
            viz_app_advance(a, a->learned_base + a->stepper.horizon - a->step);
            return;
        }
    }
    if (a->paused || !(wall_dt > 0.0))
        return;
    double target = a->t + wall_dt * a->speed;
    long want = (long)floor(target) - a->step;
    if (want > max_steps) {
        want = max_steps;
        target = (double)(a->step + want);
    }
    viz_app_advance(a, want);
    a->t = target;
}

void viz_app_positions(const struct viz_app *a, int side, float *out)
{
    if (side == 0)
        truth_at(a, out);
    else
        learned_at(a, a->t, out);
}

void viz_app_centroid(const struct viz_app *a, float out[3])
{
    int n = a->n;
    for (int k = 0; k < 3; k++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += a->truth.x[k * n + i];
        out[k] = (float)(s / n);
    }
}
