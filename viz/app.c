/* app.c: the viewer's simulation state: the truth (live simulator or a replayed dataset
 * trajectory), the learned panels one model step ahead of it, interpolation, trails, the
 * error and energy curves and the history ring for scrubbing (no window, no GL). */
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

double viz_energy(int kind, int n, const double *x, const double *v, const double *q)
{
    return sim_kinetic_energy(n, v) + sim_potential_energy(kind, n, x, q);
}

/* Hermite basis weights at fraction s. */
static void hermite_weights(double s, double w[4])
{
    double s2 = s * s, s3 = s2 * s;
    w[0] = 2 * s3 - 3 * s2 + 1;
    w[1] = s3 - 2 * s2 + s;
    w[2] = -2 * s3 + 3 * s2;
    w[3] = s3 - s2;
}

void viz_hermite(int n, const double *x0, const double *v0, const double *x1, const double *v1,
                 double span, double s, float *out)
{
    double w[4];
    hermite_weights(s, w);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < n; i++) {
            int j = k * n + i;
            out[i * 3 + k] = (float)(w[0] * x0[j] + w[1] * span * v0[j] + w[2] * x1[j] + w[3] * span * v1[j]);
        }
}

/* viz_hermite into axis-major doubles [3][n]. */
static void hermite_axis(int n, const double *x0, const double *v0, const double *x1, const double *v1,
                         double span, double s, double *out)
{
    double w[4];
    hermite_weights(s, w);
    for (int j = 0; j < 3 * n; j++)
        out[j] = w[0] * x0[j] + w[1] * span * v0[j] + w[2] * x1[j] + w[3] * span * v1[j];
}

const float *viz_trail_point(const struct viz_trail *tr, int n, int age, int i)
{
    if (age < 0 || age >= tr->count || i < 0 || i >= n)
        return NULL;
    int slot = (tr->head - age + VIZ_TRAIL_LEN) % VIZ_TRAIL_LEN;
    return tr->pts + ((size_t)slot * n + i) * 3;
}

/* Append points [n][3] to a trail ring. */
static void trail_push(struct viz_trail *tr, int n, const float *xyz)
{
    tr->head = (tr->head + 1) % VIZ_TRAIL_LEN;
    memcpy(tr->pts + (size_t)tr->head * n * 3, xyz, (size_t)n * 3 * sizeof(float));
    if (tr->count < VIZ_TRAIL_LEN)
        tr->count++;
}

/* Add a point to a curve, thinning it to every other point when full. A point not later
 * than the last is the same state simulated again after a seek (the dynamics is
 * deterministic) and is already there. */
static void series_push(struct viz_series *s, double t, double y)
{
    if (s->count > 0 && t <= s->t[s->count - 1])
        return;
    if (s->count == VIZ_HISTORY_MAX) {
        for (int k = 0; k < VIZ_HISTORY_MAX / 2; k++) {
            s->t[k] = s->t[2 * k + 1];
            s->y[k] = s->y[2 * k + 1];
        }
        s->count = VIZ_HISTORY_MAX / 2;
    }
    s->t[s->count] = t;
    s->y[s->count] = y;
    s->count++;
}

/* ------------------------------------------------------------ the truth */

/* Step of dataset frame k. */
static long frame_step(int k)
{
    return (long)VIZ_FRAME_STEPS * (k + 1);
}

/* Dataset frame k of the replayed trajectory into x, v [3][n] doubles. */
static void load_frame(const struct viz_app *a, int k, double *x, double *v)
{
    const struct viz_dataset *d = a->data;
    size_t off = ((size_t)a->traj * d->frames + k) * d->n * 3;
    sim_node_to_axis(a->n, d->loc + off, x);
    sim_node_to_axis(a->n, d->vel + off, v);
}

/* Last step the replayed data covers. */
static long data_last_step(const struct viz_app *a)
{
    return frame_step(a->data->frames - 1);
}

/* Replay: the frames around `step` into (fx0, fv0) and (fx1, fv1); step is a frame step. */
static void replay_frames(struct viz_app *a)
{
    int k = (int)(a->step / VIZ_FRAME_STEPS) - 1;
    if (k > a->data->frames - 1)
        k = a->data->frames - 1;
    load_frame(a, k, a->fx0, a->fv0);
    load_frame(a, k + 1 < a->data->frames ? k + 1 : k, a->fx1, a->fv1);
}

/* One simulation step of the truth. */
static void truth_step(struct viz_app *a)
{
    if (a->data && a->step < data_last_step(a)) {
        a->step++;
        if (a->step % VIZ_FRAME_STEPS == 0) {
            /* A frame: the truth is the data's, exactly. */
            size_t bytes = (size_t)3 * a->n * sizeof(double);
            memcpy(a->truth.x, a->fx1, bytes);
            memcpy(a->truth.v, a->fv1, bytes);
            replay_frames(a);
        }
        return;
    }
    /* Kick then drift from a state whose velocity lags: the reference's loop body, so that
     * step 100 (k + 1) is exactly dataset frame k (and a replay runs on past its last frame). */
    sim_kick(&a->truth);
    sim_drift(&a->truth);
    a->step++;
}

void viz_app_truth_at(const struct viz_app *a, double t, double *out)
{
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    if (a->data && a->step < data_last_step(a)) {
        long f0 = (a->step / VIZ_FRAME_STEPS) * VIZ_FRAME_STEPS;
        double s = (t - (double)f0) / VIZ_FRAME_STEPS;
        s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
        hermite_axis(a->n, a->fx0, a->fv0, a->fx1, a->fv1, VIZ_FRAME_STEPS * SIM_DT, s, out);
        return;
    }
    memcpy(out, a->truth.x, bytes);
}

/* The truth as drawn, [n][3] floats. */
static void truth_draw(const struct viz_app *a, float *out)
{
    if (a->data && a->step < data_last_step(a)) {
        long f0 = (a->step / VIZ_FRAME_STEPS) * VIZ_FRAME_STEPS;
        double s = (a->t - (double)f0) / VIZ_FRAME_STEPS;
        s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
        viz_hermite(a->n, a->fx0, a->fv0, a->fx1, a->fv1, VIZ_FRAME_STEPS * SIM_DT, s, out);
        return;
    }
    sim_axis_to_node(a->n, a->truth.x, out);
}

/* ------------------------------------------------------------ learned panels */

/* A learned panel at time `time` (steps), interpolated inside its current model step. */
static void learned_draw(const struct viz_app *a, const struct viz_learned *p, double time, float *out)
{
    if (p->position) {
        truth_draw(a, out);
        return;
    }
    int h = p->stepper.horizon;
    if (!p->ok) {
        viz_hermite(a->n, p->x0, p->v0, p->x0, p->v0, 0.0, 0.0, out);
        return;
    }
    double s = (time - (double)p->base) / h;
    s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
    viz_hermite(a->n, p->x0, p->v0, p->x1, p->v1, h * SIM_DT, s, out);
}

/* 1 if every coordinate of x and v is finite and within VIZ_DIVERGED. */
static int state_sane(int n, const double *x, const double *v)
{
    for (int k = 0; k < 3 * n; k++)
        if (!(fabs(x[k]) < VIZ_DIVERGED) || !(fabs(v[k]) < VIZ_DIVERGED))
            return 0;
    return 1;
}

/* Compute (x1, v1) from (x0, v0) with one model call; stop the panel on failure. */
static void learned_call(struct viz_app *a, struct viz_learned *p)
{
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    memcpy(p->x1, p->x0, bytes);
    memcpy(p->v1, p->v0, bytes);
    char err[VIZ_ERRLEN] = "";
    int rc = p->stepper.step(p->stepper.ctx, a->n, a->truth.q, p->x1, p->v1, err);
    if (rc != 0) {
        p->ok = 0;
        snprintf(a->status, sizeof a->status, "%.40s: learned step failed at step %ld: %.150s", p->name, p->base,
                 err[0] ? err : "no message");
        return;
    }
    if (!state_sane(a->n, p->x1, p->v1)) {
        p->ok = 0;
        snprintf(a->status, sizeof a->status,
                 "%.40s: learned state diverged after step %ld: the panel is frozen (R restarts)", p->name, p->base);
    }
}

/* The truth has reached the end of the panel's model step: move it on by one step. */
static void learned_shift(struct viz_app *a, struct viz_learned *p)
{
    p->base += p->stepper.horizon;
    if (!p->ok)
        return;
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    memcpy(p->x0, p->x1, bytes);
    memcpy(p->v0, p->v1, bytes);
    p->mse = viz_position_mse(a->n, a->truth.x, p->x0);
    p->mse_step = a->step;
    series_push(&p->err, a->step * SIM_DT, p->mse);
    series_push(&p->energy, a->step * SIM_DT, viz_energy(a->kind, a->n, p->x0, p->v0, a->truth.q));
    learned_call(a, p);
}

/* A position model at the truth's frame 30 (predict frame 40) or frame 40 (score it). */
static void position_check(struct viz_app *a, struct viz_learned *p)
{
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    if (a->step == frame_step(VIZ_POS_FRAME_IN) && !p->predicted && p->ok) {
        memcpy(p->pred, a->truth.x, bytes);
        memcpy(p->v1, a->truth.v, bytes);
        char err[VIZ_ERRLEN] = "";
        int rc = p->stepper.step(p->stepper.ctx, a->n, a->truth.q, p->pred, p->v1, err);
        if (rc != 0 || !state_sane(a->n, p->pred, p->v1)) {
            p->ok = 0;
            snprintf(a->status, sizeof a->status, "%.40s: prediction failed at frame %d: %.150s", p->name,
                     VIZ_POS_FRAME_IN, rc ? (err[0] ? err : "no message") : "not finite");
            return;
        }
        p->predicted = 1;
    } else if (a->step == frame_step(VIZ_POS_FRAME_OUT) && p->predicted) {
        p->mse = viz_position_mse(a->n, a->truth.x, p->pred);
        p->mse_step = a->step;
        series_push(&p->err, a->step * SIM_DT, p->mse);
    }
}

/* ------------------------------------------------------------ the ring */

/* Doubles of one snapshot: the truth's x, v, and per panel x0, v0, x1, v1, pred and 5 scalars. */
static size_t snap_doubles(const struct viz_app *a)
{
    return (size_t)6 * a->n + (size_t)a->learned * (15 * (size_t)a->n + 5);
}

/* Copy the state into (save) or out of (restore) one snapshot. */
static void snap_copy(struct viz_app *a, double *d, int save)
{
    size_t m = (size_t)3 * a->n;
#define SNAP_ARR(arr)                                                                  \
    do {                                                                               \
        if (save)                                                                      \
            memcpy(d, arr, m * sizeof(double));                                        \
        else                                                                           \
            memcpy(arr, d, m * sizeof(double));                                        \
        d += m;                                                                        \
    } while (0)
#define SNAP_VAL(val, type)                                                            \
    do {                                                                               \
        if (save)                                                                      \
            *d = (double)(val);                                                        \
        else                                                                           \
            val = (type)*d;                                                            \
        d++;                                                                           \
    } while (0)
    SNAP_ARR(a->truth.x);
    SNAP_ARR(a->truth.v);
    for (int k = 0; k < a->learned; k++) {
        struct viz_learned *p = &a->panel[k];
        SNAP_ARR(p->x0);
        SNAP_ARR(p->v0);
        SNAP_ARR(p->x1);
        SNAP_ARR(p->v1);
        SNAP_ARR(p->pred);
        SNAP_VAL(p->base, long);
        SNAP_VAL(p->ok, int);
        SNAP_VAL(p->mse, double);
        SNAP_VAL(p->mse_step, long);
        SNAP_VAL(p->predicted, int);
    }
#undef SNAP_ARR
#undef SNAP_VAL
}

/* Record the state at the current step, unless the ring already holds this step (the state
 * simulated again after a seek, identical by determinism). */
static void ring_push(struct viz_app *a)
{
    struct viz_ring *r = &a->ring;
    if (r->cap == 0)
        return;
    if (r->count > 0 && a->step <= r->step[r->head])
        return;
    r->head = (r->head + 1) % r->cap;
    if (r->count < r->cap)
        r->count++;
    r->step[r->head] = a->step;
    snap_copy(a, r->data + (size_t)r->head * r->doubles, 1);
}

int viz_app_ring_range(const struct viz_app *a, long *first, long *last)
{
    const struct viz_ring *r = &a->ring;
    if (r->count == 0)
        return 0;
    *last = r->step[r->head];
    *first = r->step[(r->head - r->count + 1 + r->cap) % r->cap];
    return 1;
}

/* Both trails restart at the current positions. */
static void trails_restart(struct viz_app *a);

int viz_app_seek(struct viz_app *a, long step)
{
    const struct viz_ring *r = &a->ring;
    int found = -1;
    for (int k = 0; k < r->count; k++) {
        int slot = (r->head - k + r->cap) % r->cap;
        if (r->step[slot] <= step) {
            found = slot;
            break;
        }
    }
    if (found < 0)
        return VIZ_EARG;
    snap_copy(a, r->data + (size_t)found * r->doubles, 0);
    a->step = r->step[found];
    a->t = (double)a->step;
    if (a->data)
        replay_frames(a);
    trails_restart(a);
    return VIZ_OK;
}

/* ------------------------------------------------------------ life cycle */

/* Every panel's trail gets its current positions. */
static void trails_sample(struct viz_app *a)
{
    truth_draw(a, a->scratch);
    trail_push(&a->trail, a->n, a->scratch);
    for (int k = 0; k < a->learned; k++) {
        learned_draw(a, &a->panel[k], (double)a->step, a->scratch);
        trail_push(&a->panel[k].trail, a->n, a->scratch);
    }
}

static void trails_restart(struct viz_app *a)
{
    a->trail.count = a->trail.head = 0;
    for (int k = 0; k < a->learned; k++)
        a->panel[k].trail.count = a->panel[k].trail.head = 0;
    trails_sample(a);
}

/* Free a curve. */
static void series_free(struct viz_series *s)
{
    free(s->t);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* Allocate a curve; 0 on failure. */
static int series_alloc(struct viz_series *s)
{
    s->count = 0;
    s->t = malloc(VIZ_HISTORY_MAX * sizeof(double));
    s->y = malloc(VIZ_HISTORY_MAX * sizeof(double));
    return s->t && s->y;
}

/* Free the per-system arrays, keeping settings such as speed, toggles and steppers. */
static void app_release(struct viz_app *a)
{
    sim_system_free(&a->truth);
    for (int k = 0; k < VIZ_MAX_LEARNED; k++) {
        struct viz_learned *p = &a->panel[k];
        free(p->x0), free(p->v0), free(p->x1), free(p->v1), free(p->pred), free(p->trail.pts);
        p->x0 = p->v0 = p->x1 = p->v1 = p->pred = NULL;
        p->trail.pts = NULL;
        series_free(&p->err);
        series_free(&p->energy);
    }
    free(a->fx0), free(a->fv0), free(a->fx1), free(a->fv1), free(a->trail.pts), free(a->scratch);
    a->fx0 = a->fv0 = a->fx1 = a->fv1 = NULL;
    a->trail.pts = NULL;
    a->scratch = NULL;
    series_free(&a->energy);
    free(a->ring.step), free(a->ring.data);
    memset(&a->ring, 0, sizeof a->ring);
}

/* Allocate everything for n bodies of setting kind and the current panels. */
static int app_alloc(struct viz_app *a, int kind, int n, char err[VIZ_ERRLEN])
{
    int rc = sim_system_init(&a->truth, kind, n);
    if (rc != SIM_OK) {
        snprintf(err, VIZ_ERRLEN, "cannot create a %s system of %d bodies: %s",
                 sim_kind_name(kind) ? sim_kind_name(kind) : "?", n, sim_strerror(rc));
        return rc == SIM_ENOMEM ? VIZ_ENOMEM : VIZ_EARG;
    }
    a->kind = kind;
    a->n = n;
    size_t sz = (size_t)3 * n;
    int ok = 1;
    for (int k = 0; k < a->learned; k++) {
        struct viz_learned *p = &a->panel[k];
        p->x0 = calloc(sz, sizeof(double));
        p->v0 = calloc(sz, sizeof(double));
        p->x1 = calloc(sz, sizeof(double));
        p->v1 = calloc(sz, sizeof(double));
        p->pred = calloc(sz, sizeof(double));
        p->trail.pts = calloc((size_t)VIZ_TRAIL_LEN * sz, sizeof(float));
        ok = ok && p->x0 && p->v0 && p->x1 && p->v1 && p->pred && p->trail.pts && series_alloc(&p->err) &&
             series_alloc(&p->energy);
    }
    a->fx0 = calloc(sz, sizeof(double));
    a->fv0 = calloc(sz, sizeof(double));
    a->fx1 = calloc(sz, sizeof(double));
    a->fv1 = calloc(sz, sizeof(double));
    a->trail.pts = calloc((size_t)VIZ_TRAIL_LEN * sz, sizeof(float));
    a->scratch = calloc(sz, sizeof(float));
    ok = ok && a->fx0 && a->fv0 && a->fx1 && a->fv1 && a->trail.pts && a->scratch && series_alloc(&a->energy);
    /* The ring: as many snapshots as VIZ_SNAP_BYTES holds, up to VIZ_SNAP_MAX, at least 16. */
    size_t doubles = snap_doubles(a);
    size_t cap = VIZ_SNAP_BYTES / (doubles * sizeof(double));
    cap = cap > VIZ_SNAP_MAX ? VIZ_SNAP_MAX : cap < 16 ? 16 : cap;
    a->ring.cap = (int)cap;
    a->ring.doubles = doubles;
    a->ring.step = malloc(cap * sizeof(long));
    a->ring.data = malloc(cap * doubles * sizeof(double));
    ok = ok && a->ring.step && a->ring.data;
    if (!ok) {
        app_release(a);
        snprintf(err, VIZ_ERRLEN, "out of memory for %d bodies", n);
        return VIZ_ENOMEM;
    }
    return VIZ_OK;
}

/* Start every panel from the truth's state at a->step (the arrays are allocated). */
static void app_begin(struct viz_app *a)
{
    size_t bytes = (size_t)3 * a->n * sizeof(double);
    a->start_step = a->step;
    a->t = (double)a->step;
    a->status[0] = '\0';
    a->energy.count = 0;
    a->ring.count = 0;
    a->ring.head = 0;
    double t0 = a->step * SIM_DT;
    series_push(&a->energy, t0, viz_energy(a->kind, a->n, a->truth.x, a->truth.v, a->truth.q));
    for (int k = 0; k < a->learned; k++) {
        struct viz_learned *p = &a->panel[k];
        memcpy(p->x0, a->truth.x, bytes);
        memcpy(p->v0, a->truth.v, bytes);
        memcpy(p->x1, a->truth.x, bytes);
        memcpy(p->v1, a->truth.v, bytes);
        memcpy(p->pred, a->truth.x, bytes);
        p->base = a->step;
        p->ok = 1;
        p->mse_step = a->step;
        p->predicted = 0;
        p->err.count = p->energy.count = 0;
        if (p->position) {
            p->mse = NAN;
            position_check(a, p); /* a replay may start at frame 30 */
        } else {
            p->mse = 0.0;
            series_push(&p->err, t0, 0.0);
            series_push(&p->energy, t0, viz_energy(a->kind, a->n, p->x0, p->v0, a->truth.q));
            learned_call(a, p);
        }
    }
    ring_push(a);
    trails_restart(a);
}

/* Take over the panel definitions. */
static int set_panels(struct viz_app *a, const struct viz_stepper *st, const int *position,
                      const char *const *names, int count, char err[VIZ_ERRLEN])
{
    if (count < 0 || count > VIZ_MAX_LEARNED) {
        snprintf(err, VIZ_ERRLEN, "%d learned panels: at most %d", count, VIZ_MAX_LEARNED);
        return VIZ_EARG;
    }
    for (int k = 0; k < count; k++)
        if (!st[k].step || st[k].horizon <= 0) {
            snprintf(err, VIZ_ERRLEN, "no learned integrator for panel %d (horizon %d)", k + 1, st[k].horizon);
            return VIZ_EARG;
        }
    a->learned = count;
    for (int k = 0; k < count; k++) {
        a->panel[k].stepper = st[k];
        a->panel[k].position = position ? position[k] : 0;
        snprintf(a->panel[k].name, sizeof a->panel[k].name, "%s", names && names[k] ? names[k] : "model");
    }
    return VIZ_OK;
}

/* A live start from seed in setting kind with n bodies. */
static int app_live(struct viz_app *a, int kind, int n, uint32_t seed, char err[VIZ_ERRLEN])
{
    int rc = app_alloc(a, kind, n, err);
    if (rc != VIZ_OK)
        return rc;
    a->seed = seed;
    a->data = NULL;
    a->traj = 0;
    a->start_frame = 0;
    a->horizon_step = VIZ_HORIZON_STEPS;
    sim_initial_state(&a->truth, seed);
    a->step = 0;
    app_begin(a);
    return VIZ_OK;
}

int viz_app_init(struct viz_app *a, int kind, int n, uint32_t seed, const struct viz_stepper *st,
                 const int *position, const char *const *names, int count, char err[VIZ_ERRLEN])
{
    memset(a, 0, sizeof *a);
    a->trails = 1;
    a->speed = VIZ_SPEED_DEFAULT;
    int rc = set_panels(a, st, position, names, count, err);
    if (rc != VIZ_OK)
        return rc;
    return app_live(a, kind, n, seed, err);
}

void viz_app_free(struct viz_app *a)
{
    app_release(a);
    memset(a, 0, sizeof *a);
}

int viz_app_reset(struct viz_app *a, int kind, uint32_t seed, char err[VIZ_ERRLEN])
{
    int n = a->n;
    app_release(a);
    return app_live(a, kind, n, seed, err);
}

int viz_app_set_panels(struct viz_app *a, int kind, uint32_t seed, const struct viz_stepper *st,
                       const int *position, const char *const *names, int count, char err[VIZ_ERRLEN])
{
    int n = a->n;
    app_release(a);
    int rc = set_panels(a, st, position, names, count, err);
    if (rc != VIZ_OK)
        a->learned = 0;
    int rc2 = app_live(a, kind, n, seed, err);
    return rc != VIZ_OK ? rc : rc2;
}

int viz_app_replay(struct viz_app *a, const struct viz_dataset *d, int traj, int frame, char err[VIZ_ERRLEN])
{
    if (traj < 0 || traj >= d->count) {
        snprintf(err, VIZ_ERRLEN, "trajectory %d: the %s split of '%.400s' has %d (0 to %d)", traj, d->split, d->dir,
                 d->count, d->count - 1);
        return VIZ_EARG;
    }
    if (frame < 0 || frame > d->frames - 2) {
        snprintf(err, VIZ_ERRLEN, "start frame %d: the trajectories of '%.400s' have frames 0 to %d, and replay "
                 "needs one after the start", frame, d->dir, d->frames - 1);
        return VIZ_EARG;
    }
    app_release(a);
    int rc = app_alloc(a, d->kind, d->n, err);
    if (rc != VIZ_OK)
        return rc;
    a->data = d;
    a->traj = traj;
    a->start_frame = frame;
    a->seed = 0;
    a->horizon_step = frame_step(d->frames - 1);
    for (int i = 0; i < d->n; i++)
        a->truth.q[i] = d->q[(size_t)traj * d->n + i];
    a->step = frame_step(frame);
    load_frame(a, frame, a->truth.x, a->truth.v);
    replay_frames(a);
    app_begin(a);
    return VIZ_OK;
}

void viz_app_advance(struct viz_app *a, long steps)
{
    for (long s = 0; s < steps; s++) {
        truth_step(a);
        for (int k = 0; k < a->learned; k++) {
            struct viz_learned *p = &a->panel[k];
            if (p->position)
                position_check(a, p);
            else if (a->step == p->base + p->stepper.horizon)
                learned_shift(a, p);
        }
        long since = a->step - a->start_step;
        if (since % VIZ_ENERGY_EVERY == 0)
            series_push(&a->energy, a->step * SIM_DT, viz_energy(a->kind, a->n, a->truth.x, a->truth.v, a->truth.q));
        if (since % VIZ_SNAP_EVERY == 0)
            ring_push(a);
        if (a->step % VIZ_TRAIL_EVERY == 0)
            trails_sample(a);
    }
    a->t = (double)a->step;
}

/* Steps to the next end of a model step of any stepping panel (or of a snapshot interval). */
static long steps_to_boundary(const struct viz_app *a)
{
    long best = VIZ_SNAP_EVERY - (a->step - a->start_step) % VIZ_SNAP_EVERY;
    for (int k = 0; k < a->learned; k++) {
        const struct viz_learned *p = &a->panel[k];
        if (!p->position && p->base + p->stepper.horizon - a->step < best)
            best = p->base + p->stepper.horizon - a->step;
    }
    return best > 0 ? best : 1;
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
        if (act->toggle_overlay)
            a->overlay = !a->overlay;
        if (act->toggle_energy)
            a->plot_energy = !a->plot_energy;
        if (act->speed)
            a->speed = viz_speed_step(a->speed, act->speed);
        if (act->step_back) {
            a->paused = 1;
            if (a->step > a->start_step)
                viz_app_seek(a, a->step - 1);
            return;
        }
        if (act->single_step) {
            a->paused = 1;
            viz_app_advance(a, steps_to_boundary(a));
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

void viz_app_positions(const struct viz_app *a, int panel, float *out)
{
    if (panel <= 0 || panel > a->learned)
        truth_draw(a, out);
    else
        learned_draw(a, &a->panel[panel - 1], a->t, out);
}

void viz_app_centroid(const struct viz_app *a, float out[3])
{
    int n = a->n;
    truth_draw(a, a->scratch);
    for (int k = 0; k < 3; k++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += a->scratch[3 * i + k];
        out[k] = (float)(s / n);
    }
}

double viz_app_time(const struct viz_app *a)
{
    return a->t * SIM_DT;
}
