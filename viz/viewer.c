/* viewer.c: the nbody-view program loop over the library: interactive window, headless
 * screenshot and recording, and the frame-time benchmark; model switching and resets. */
#include "viz.h"

#include "plot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* plot's statuses (sim's codes) are returned as viz statuses unchanged. */
_Static_assert((int)VIZ_OK == (int)SIM_OK && (int)VIZ_EARG == (int)SIM_EARG &&
                   (int)VIZ_ENOMEM == (int)SIM_ENOMEM && (int)VIZ_EIO == (int)SIM_EIO &&
                   (int)VIZ_EFORMAT == (int)SIM_EFORMAT,
               "viz and sim status codes must agree");

#define FRAME_DT (1.0 / 60.0)   /* simulated wall time per frame when recording or benchmarking */
#define MAX_FRAME_SECONDS 0.1   /* a stalled frame advances the simulation by at most this */
#define UPDATE_BUDGET 0.008     /* seconds of simulation work per interactive frame, half of 1/60 s */
#define BENCH_STEP_CALLS 200    /* learned steps timed by --bench-frames */
#define BENCH_STEP_SECONDS 5.0  /* ... or fewer, if they take longer than this */

struct viewer {
    const struct viz_options *o;
    FILE *out, *log;
    char assets[PATH_MAX];
    struct viz_model model[VIZ_MAX_MODELS];
    int models;
    struct viz_dataset data; /* --data, count 0 when live */
    struct viz_app app;
    struct viz_camera cam;
    int follow;           /* the camera follows (F) */
    int scrubbing;        /* the left button went down on the timeline and is held */
    struct viz_platform *plat;
    struct viz_renderer *ren;
    struct viz_input input;
    struct viz_layout layout;
    struct viz_hud hud;
    struct sim_rng rng;   /* seeds for R */
    float floor_below;    /* world units from the camera target down to the floor grid */
    float *pts;           /* [panels][n][3] every drawn body, for the camera */
    int pts_cap;          /* bodies pts holds */
    unsigned char *pixels; /* framebuffer read-back, fb_w * fb_h * 4 */
    size_t pixels_cap;
    double progress_at;   /* time of the last progress line */
};

/* File name part of a path. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Close the open models. */
static void close_models(struct viewer *v)
{
    for (int k = 0; k < v->models; k++)
        viz_model_close(&v->model[k]);
    v->models = 0;
}

/* The panels of the open models (and the baseline) into the app: live from seed in kind,
 * or (init) a fresh app of n bodies. */
static int apply_panels(struct viewer *v, int init, int kind, int n, uint32_t seed, char err[VIZ_ERRLEN])
{
    struct viz_stepper st[VIZ_MAX_LEARNED];
    int position[VIZ_MAX_LEARNED];
    char names[VIZ_MAX_LEARNED][64];
    const char *np[VIZ_MAX_LEARNED];
    int count = 0;
    for (int k = 0; k < v->models; k++, count++) {
        viz_model_stepper(&v->model[k], &st[count]);
        position[count] = v->model[k].position;
        const char *file = base_name(v->model[k].path);
        size_t len = strlen(file);
        if (len > 5 && !strcmp(file + len - 5, ".ckpt"))
            len -= 5; /* the extension says nothing on screen */
        snprintf(names[count], sizeof names[count], "%s %.*s", viz_model_arch_name(&v->model[k]),
                 (int)(len < 50 ? len : 50), file);
        np[count] = names[count];
    }
    if (v->o->baseline) {
        viz_baseline_stepper(&st[count]);
        position[count] = 0;
        snprintf(names[count], sizeof names[count], "baseline x + v t");
        np[count] = names[count];
        count++;
    }
    if (init)
        return viz_app_init(&v->app, kind, n, seed, st, position, np, count, err);
    return viz_app_set_panels(&v->app, kind, seed, st, position, np, count, err);
}

/* A warning, for the terminal and in short for the screen, when a model's setting is not the one simulated. */
static void warn_mismatch(struct viewer *v)
{
    for (int k = 0; k < v->models; k++) {
        if (v->model[k].sim_kind == v->app.kind)
            continue;
        snprintf(v->app.status, sizeof v->app.status, "note: model trained on '%s', simulating '%s'",
                 sim_kind_name(v->model[k].sim_kind), sim_kind_name(v->app.kind));
        fprintf(v->log, "nbody-view: warning: model '%s' was trained on the %s setting, but --sim is %s\n",
                v->model[k].path, sim_kind_name(v->model[k].sim_kind), sim_kind_name(v->app.kind));
    }
}

/* Open the models at paths; on failure none stays open. */
static int open_models(struct viewer *v, char paths[][1024], int count, char err[VIZ_ERRLEN])
{
    for (int k = 0; k < count; k++) {
        int rc = viz_model_open(&v->model[k], paths[k], err);
        if (rc != VIZ_OK) {
            v->models = k;
            close_models(v);
            return rc;
        }
        v->models = k + 1;
    }
    return VIZ_OK;
}

/* Panels drawn: the truth and every learned panel. */
static int panel_count(const struct viewer *v)
{
    return 1 + v->app.learned;
}

/* Every drawn body of every panel into v->pts; returns how many. */
static int gather_points(struct viewer *v)
{
    int n = v->app.n, panels = panel_count(v);
    if (v->pts_cap < panels * n) {
        float *p = realloc(v->pts, (size_t)panels * n * 3 * sizeof(float));
        if (!p)
            return 0;
        v->pts = p;
        v->pts_cap = panels * n;
    }
    for (int k = 0; k < panels; k++)
        viz_app_positions(&v->app, k, v->pts + (size_t)k * n * 3);
    return panels * n;
}

/* Aspect of a panel of the current layout. */
static float panel_aspect(const struct viewer *v)
{
    const struct viz_rect *r = &v->layout.view[0];
    return r->h > 0 ? (float)r->w / (float)r->h : 1.0f;
}

/* The floor stays below every body of the truth. */
static void place_floor(struct viewer *v, int reset)
{
    float low = 0.0f;
    int n = v->app.n;
    for (int i = 0; i < n && v->pts; i++) {
        float d = v->cam.target[2] - v->pts[3 * i + 2];
        low = d > low ? d : low;
    }
    float want = low + 0.6f;
    if (reset || want > v->floor_below)
        v->floor_below = want;
}

/* Camera and sizes for a freshly started system (or for a screenshot). */
static void frame_system(struct viewer *v)
{
    viz_layout_compute(&v->layout, v->input.win_w, v->input.win_h, v->input.fb_w, v->input.fb_h, panel_count(v),
                       v->o->ui);
    int count = gather_points(v);
    viz_camera_frame(&v->cam, v->app.n, count, v->pts, VIZ_FRAME_MARGIN, panel_aspect(v));
    place_floor(v, 1);
}

/* One frame of camera following. */
static void follow_camera(struct viewer *v, float dt)
{
    int count = gather_points(v);
    if (v->follow) {
        float c[3];
        viz_app_centroid(&v->app, c);
        float margin = viz_body_radius(v->app.n);
        if (margin < VIZ_MIN_BODY_PX * v->cam.distance)
            margin = VIZ_MIN_BODY_PX * v->cam.distance;
        viz_camera_track(&v->cam, c, count, v->pts, margin, panel_aspect(v), dt);
    }
    place_floor(v, 0);
}

/* Switch to the shipped models of `kind` (live only), keeping the seed. */
static void switch_kind(struct viewer *v, int kind)
{
    char err[VIZ_ERRLEN], paths[2][1024];
    if (v->data.count > 0) {
        snprintf(v->app.status, sizeof v->app.status, "the dataset fixes the setting (%s)", sim_kind_name(v->app.kind));
        return;
    }
    int found = viz_shipped_models(v->assets, kind, paths, 2);
    if (found == 0) {
        viz_default_model(paths[0], sizeof paths[0], v->assets, kind);
        snprintf(v->app.status, sizeof v->app.status, "cannot switch to %s: no model %.150s", sim_kind_name(kind),
                 paths[0]);
        fprintf(v->log, "nbody-view: %s\n", v->app.status);
        return;
    }
    struct viz_model keep[VIZ_MAX_MODELS];
    int kept = v->models;
    memcpy(keep, v->model, sizeof keep);
    v->models = 0;
    if (open_models(v, paths, found, err) != VIZ_OK) {
        memcpy(v->model, keep, sizeof keep);
        v->models = kept;
        snprintf(v->app.status, sizeof v->app.status, "cannot switch to %s: %.200s", sim_kind_name(kind), err);
        fprintf(v->log, "nbody-view: %s\n", v->app.status);
        return;
    }
    for (int k = 0; k < kept; k++)
        viz_model_close(&keep[k]);
    if (apply_panels(v, 0, kind, v->app.n, v->app.seed, err) != VIZ_OK) {
        fprintf(v->log, "nbody-view: %s\n", err);
        return;
    }
    warn_mismatch(v);
    frame_system(v);
}

/* Replay trajectory traj (wrapped into the split) from the start frame. */
static void replay_traj(struct viewer *v, long traj)
{
    char err[VIZ_ERRLEN];
    long count = v->data.count;
    traj = ((traj % count) + count) % count;
    if (viz_app_replay(&v->app, &v->data, (int)traj, (int)v->o->start, err) != VIZ_OK) {
        fprintf(v->log, "nbody-view: %s\n", err);
        snprintf(v->app.status, sizeof v->app.status, "%.250s", err);
        return;
    }
    frame_system(v);
}

/* A new random initial state in the current setting (replay: a random trajectory). */
static void new_system(struct viewer *v)
{
    char err[VIZ_ERRLEN];
    if (v->data.count > 0) {
        replay_traj(v, (long)sim_rng_bounded(&v->rng, (uint64_t)v->data.count - 1));
        return;
    }
    uint32_t seed = (uint32_t)sim_rng_bounded(&v->rng, SIM_SEED_RANGE - 1);
    if (viz_app_reset(&v->app, v->app.kind, seed, err) != VIZ_OK) {
        fprintf(v->log, "nbody-view: %s\n", err);
        return;
    }
    warn_mismatch(v);
    frame_system(v);
}

/* --loop T: the next system once T time units have passed since the start. */
static void check_loop(struct viewer *v)
{
    if (!(v->o->loop > 0.0) || (v->app.t - (double)v->app.start_step) * SIM_DT < v->o->loop)
        return;
    if (v->data.count > 0)
        replay_traj(v, v->app.traj + 1);
    else
        new_system(v);
}

/* Lay out and draw one frame into the renderer's framebuffer. */
static int draw(struct viewer *v, char err[VIZ_ERRLEN])
{
    viz_layout_compute(&v->layout, v->input.win_w, v->input.win_h, v->input.fb_w, v->input.fb_h, panel_count(v),
                       v->o->ui);
    if (v->o->ui)
        viz_hud_compose(&v->hud, &v->app, v->follow);
    float radius = viz_body_radius(v->app.n);
    if (radius < VIZ_MIN_BODY_PX * v->cam.distance)
        radius = VIZ_MIN_BODY_PX * v->cam.distance;
    float grid = v->cam.distance < 30.0f ? 1.0f : v->cam.distance < 150.0f ? 5.0f : 25.0f;
    struct viz_frame f = {&v->app, &v->cam, &v->layout, v->o->ui ? &v->hud : NULL, radius, v->floor_below, grid};
    return viz_render_frame(v->ren, &f, err);
}

/* Read the last frame back and write it as a PNG. */
static int write_frame(struct viewer *v, const char *path, char err[VIZ_ERRLEN])
{
    size_t need = (size_t)v->layout.fb_w * v->layout.fb_h * 4;
    if (need > v->pixels_cap) {
        unsigned char *p = realloc(v->pixels, need);
        if (!p) {
            snprintf(err, VIZ_ERRLEN, "out of memory for a %d x %d image", v->layout.fb_w, v->layout.fb_h);
            return VIZ_ENOMEM;
        }
        v->pixels = p;
        v->pixels_cap = need;
    }
    viz_render_read(v->ren, v->pixels);
    return plot_png_write(path, v->layout.fb_w, v->layout.fb_h, v->pixels, err);
}

/* A progress line on a terminal, at most five times a second; silent when piped. */
static void progress(struct viewer *v, const char *what, long done, long total, int last)
{
    if (!isatty(fileno(v->log)))
        return;
    double now = viz_platform_time(v->plat);
    if (!last && now - v->progress_at < 0.2)
        return;
    v->progress_at = now;
    fprintf(v->log, "\r%s %ld / %ld%s", what, done, total, last ? "\n" : "");
    fflush(v->log);
}

/* --screenshot: advance, draw once, write the PNG. */
static int run_screenshot(struct viewer *v, char err[VIZ_ERRLEN])
{
    long total = v->o->steps > 0 ? v->o->steps : 0;
    long chunk = VIZ_SNAP_EVERY; /* --loop is checked between chunks */
    for (long done = 0; done < total;) {
        long n = total - done < chunk ? total - done : chunk;
        viz_app_advance(&v->app, n);
        done += n;
        check_loop(v);
        progress(v, "nbody-view: step", done, total, done == total);
    }
    viz_platform_poll(v->plat, &v->input);
    /* Following, the picture is framed on where the bodies are now; --no-follow keeps the
     * camera of the start. */
    if (v->follow)
        frame_system(v);
    else
        viz_layout_compute(&v->layout, v->input.win_w, v->input.win_h, v->input.fb_w, v->input.fb_h,
                           panel_count(v), v->o->ui);
    int rc = draw(v, err);
    if (rc != VIZ_OK)
        return rc;
    return write_frame(v, v->o->screenshot, err);
}

/* Make the recording folder if it does not exist. */
static int make_dir(const char *dir, char err[VIZ_ERRLEN])
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return VIZ_OK;
        snprintf(err, VIZ_ERRLEN, "--record '%s' is not a folder", dir);
        return VIZ_EIO;
    }
    if (mkdir(dir, 0777) != 0) {
        snprintf(err, VIZ_ERRLEN, "cannot create folder '%s': %s", dir, strerror(errno));
        return VIZ_EIO;
    }
    return VIZ_OK;
}

/* 1 if the mouse (window pixels) is over the timeline. */
static int over_timeline(const struct viewer *v)
{
    const struct viz_layout *l = &v->layout;
    float x = v->input.mouse_x * l->dpi_scale, y_up = (float)l->fb_h - v->input.mouse_y * l->dpi_scale;
    const struct viz_rect *t = &l->timeline;
    return t->h > 0 && x >= (float)t->x && x < (float)(t->x + t->w) && y_up >= (float)t->y &&
           y_up < (float)(t->y + t->h);
}

/* Apply the actions that need more than the application state. */
static void handle_actions(struct viewer *v, struct viz_actions *act)
{
    if (act->set_kind >= 0)
        switch_kind(v, act->set_kind);
    if (act->new_system)
        new_system(v);
    if (act->trajectory) {
        if (v->data.count > 0)
            replay_traj(v, v->app.traj + act->trajectory);
        else
            snprintf(v->app.status, sizeof v->app.status, "N / P step through the trajectories of --data DIR");
    }
    if (act->reload_shaders) {
        char err[VIZ_ERRLEN];
        if (viz_render_reload(v->ren, err) == VIZ_OK) {
            snprintf(v->app.status, sizeof v->app.status, "shaders reloaded");
        } else {
            fprintf(v->log, "nbody-view: %s\n", err);
            snprintf(v->app.status, sizeof v->app.status, "shader error, previous shaders kept (log on stderr)");
        }
    }
    /* A press on the timeline scrubs until the button is released; elsewhere it rotates. */
    if (v->input.button && !v->input.button_prev && over_timeline(v))
        v->scrubbing = 1;
    if (!v->input.button)
        v->scrubbing = 0;
    if (v->scrubbing) {
        act->rotate_dx = act->rotate_dy = 0.0f;
        v->app.paused = 1;
        viz_app_seek(&v->app, viz_timeline_step(&v->app, &v->layout, v->input.mouse_x * v->layout.dpi_scale));
    }
    if (act->toggle_follow) {
        v->follow = !v->follow;
        snprintf(v->app.status, sizeof v->app.status, v->follow ? "camera follows the bodies" : "camera fixed");
    }
    if (act->rotate_dx != 0.0f || act->rotate_dy != 0.0f || act->zoom != 0.0f) {
        if (v->follow)
            snprintf(v->app.status, sizeof v->app.status, "camera fixed: F follows again");
        v->follow = 0;
    }
    viz_camera_rotate(&v->cam, act->rotate_dx, act->rotate_dy);
    viz_camera_zoom(&v->cam, act->zoom);
}

/* The interactive loop, also used by --record without --steps. */
static int run_window(struct viewer *v, char err[VIZ_ERRLEN])
{
    double last = viz_platform_time(v->plat);
    long frame = 0;
    double step_cost = 0.0; /* seconds per simulation step, learned steps included (running mean) */
    for (;;) {
        double start = viz_platform_time(v->plat);
        viz_platform_poll(v->plat, &v->input);
        struct viz_actions act;
        viz_input_map(&v->input, &act);
        if (act.quit)
            return VIZ_OK;
        handle_actions(v, &act);
        double dt = v->o->record ? FRAME_DT : start - last;
        last = start;
        if (dt > MAX_FRAME_SECONDS)
            dt = MAX_FRAME_SECONDS;
        /* Spend at most UPDATE_BUDGET a frame on simulating: at high speed or with many bodies
         * the simulation falls behind the requested speed rather than the frame rate. */
        long max_steps = (long)(MAX_FRAME_SECONDS * VIZ_SPEED_MAX);
        if (step_cost > 0.0 && UPDATE_BUDGET / step_cost < max_steps)
            max_steps = (long)(UPDATE_BUDGET / step_cost);
        if (max_steps < VIZ_SNAP_EVERY)
            max_steps = VIZ_SNAP_EVERY;
        long before = v->app.step;
        double t_update = viz_platform_time(v->plat);
        viz_app_update(&v->app, &act, dt, max_steps);
        long taken = v->app.step - before;
        if (taken > 0) {
            double cost = (viz_platform_time(v->plat) - t_update) / (double)taken;
            step_cost = step_cost > 0.0 ? 0.8 * step_cost + 0.2 * cost : cost;
        }
        check_loop(v);
        follow_camera(v, (float)dt);
        int rc = draw(v, err);
        if (rc != VIZ_OK)
            return rc;
        if (v->o->record) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/frame_%06ld.png", v->o->record, frame);
            if ((rc = write_frame(v, path, err)) != VIZ_OK)
                return rc;
        }
        frame++;
        viz_platform_swap(v->plat);
        /* Without vsync (e.g. under Xvfb) do not spin faster than 60 frames a second. */
        double spent = viz_platform_time(v->plat) - start;
        if (spent < FRAME_DT)
            viz_platform_sleep(FRAME_DT - spent - 0.001);
    }
}

/* --record DIR --steps N: fixed 1/60 s frames, headless, until N steps. */
static int run_record(struct viewer *v, char err[VIZ_ERRLEN])
{
    long total = v->o->steps;
    long frame = 0;
    long done = 0;
    do {
        viz_platform_poll(v->plat, &v->input);
        if (frame > 0) {
            long before = v->app.step;
            viz_app_update(&v->app, NULL, FRAME_DT, total - done);
            done += v->app.step - before;
            check_loop(v);
            follow_camera(v, (float)FRAME_DT);
        }
        int rc = draw(v, err);
        if (rc != VIZ_OK)
            return rc;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/frame_%06ld.png", v->o->record, frame++);
        if ((rc = write_frame(v, path, err)) != VIZ_OK)
            return rc;
        progress(v, "nbody-view: step", done, total, done >= total);
    } while (done < total);
    fprintf(v->log, "nbody-view: wrote %ld frames to %s\n", frame, v->o->record);
    return VIZ_OK;
}

/* Ascending order of doubles, for qsort. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}


/* --bench-frames N: frame times with simulated 60 frames/s of progress, then the cost of
 * one learned step and of the simulator's steps it replaces. */
static int run_bench(struct viewer *v, char err[VIZ_ERRLEN])
{
    long frames = v->o->bench_frames;
    double *ft = malloc((size_t)frames * sizeof(double));
    if (!ft) {
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    viz_platform_vsync(v->plat, 0);
    for (long f = 0; f < frames; f++) {
        double t0 = viz_platform_time(v->plat);
        viz_platform_poll(v->plat, &v->input);
        struct viz_actions act;
        viz_input_map(&v->input, &act);
        viz_app_update(&v->app, &act, FRAME_DT, (long)(MAX_FRAME_SECONDS * VIZ_SPEED_MAX));
        check_loop(v);
        follow_camera(v, (float)FRAME_DT);
        int rc = draw(v, err);
        if (rc != VIZ_OK) {
            free(ft);
            return rc;
        }
        viz_platform_swap(v->plat);
        viz_render_finish(v->ren);
        ft[f] = viz_platform_time(v->plat) - t0;
        progress(v, "nbody-view: frame", f + 1, frames, f + 1 == frames);
    }
    double sum = 0.0;
    for (long f = 0; f < frames; f++)
        sum += ft[f];
    qsort(ft, (size_t)frames, sizeof(double), cmp_double);
    char desc[256];
    viz_render_describe(v->ren, desc, sizeof desc);
    double med = sim_quantile(ft, frames, 0.5);
    fprintf(v->out, "renderer: %s\n", desc);
    fprintf(v->out, "scene: %dx%d framebuffer, msaa %d, %d panels, %d bodies, %s, %d steps/s, trails %s, overlay %s, ui %s\n",
            v->layout.fb_w, v->layout.fb_h, viz_render_samples(v->ren), panel_count(v), v->app.n,
            sim_kind_name(v->app.kind), v->app.speed, v->app.trails ? "on" : "off", v->app.overlay ? "on" : "off",
            v->o->ui ? "on" : "off");
    fprintf(v->out, "frame time over %ld frames: median %.2f ms, p99 %.2f ms, mean %.2f ms, max %.2f ms (%.0f fps at the median)\n",
            frames, 1e3 * med, 1e3 * sim_quantile(ft, frames, 0.99), 1e3 * sum / frames, 1e3 * ft[frames - 1],
            1.0 / med);
    free(ft);
    if (v->app.learned == 0 || v->app.panel[0].position)
        return VIZ_OK;
    const struct viz_learned *lp = &v->app.panel[0];

    /* The learned step on copies of the current learned state, reset before every call so
     * that a diverging rollout cannot change what is timed. */
    int n = v->app.n;
    size_t bytes = (size_t)3 * n * sizeof(double);
    double *x = malloc(bytes), *vel = malloc(bytes), *st = malloc((size_t)BENCH_STEP_CALLS * sizeof(double));
    struct sim_system sys;
    if (!x || !vel || !st || sim_system_init(&sys, v->app.kind, n) != SIM_OK) {
        free(x), free(vel), free(st);
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    char serr[VIZ_ERRLEN] = "";
    int calls = 0;
    double begin = viz_platform_time(v->plat);
    while (calls < BENCH_STEP_CALLS && viz_platform_time(v->plat) - begin < BENCH_STEP_SECONDS) {
        memcpy(x, lp->x0, bytes);
        memcpy(vel, lp->v0, bytes);
        double t0 = viz_platform_time(v->plat);
        int rc = lp->stepper.step(lp->stepper.ctx, n, v->app.truth.q, x, vel, serr);
        st[calls++] = viz_platform_time(v->plat) - t0;
        if (rc != 0) {
            fprintf(v->out, "learned step failed: %s\n", serr);
            break;
        }
    }
    qsort(st, (size_t)calls, sizeof(double), cmp_double);
    fprintf(v->out, "learned step of %s (%d simulation steps, %d bodies): median %.3f ms, p99 %.3f ms over %d calls\n",
            lp->name, lp->stepper.horizon, n, 1e3 * sim_quantile(st, calls, 0.5), 1e3 * sim_quantile(st, calls, 0.99), calls);
    /* The simulator over the same span, for comparison. */
    memcpy(sys.x, v->app.truth.x, bytes);
    memcpy(sys.v, v->app.truth.v, bytes);
    memcpy(sys.q, v->app.truth.q, (size_t)n * sizeof(double));
    calls = 0;
    begin = viz_platform_time(v->plat);
    while (calls < BENCH_STEP_CALLS && viz_platform_time(v->plat) - begin < BENCH_STEP_SECONDS) {
        double t0 = viz_platform_time(v->plat);
        sim_advance(&sys, lp->stepper.horizon);
        st[calls++] = viz_platform_time(v->plat) - t0;
    }
    qsort(st, (size_t)calls, sizeof(double), cmp_double);
    fprintf(v->out, "simulator (%d steps, %d bodies): median %.3f ms over %d calls\n", lp->stepper.horizon, n,
            1e3 * sim_quantile(st, calls, 0.5), calls);
    sim_system_free(&sys);
    free(x), free(vel), free(st);
    return VIZ_OK;
}

/* Open the models of the command line (or the shipped ones of the setting) and check that
 * their settings agree with each other and with the dataset. */
static int choose_models(struct viewer *v, int *kind_out, char err[VIZ_ERRLEN])
{
    const struct viz_options *o = v->o;
    char paths[VIZ_MAX_MODELS][1024];
    int count = 0;
    int kind = o->kind >= 0 ? o->kind : v->data.count > 0 ? v->data.kind : -1;
    if (o->models > 0) {
        for (int k = 0; k < o->models; k++)
            snprintf(paths[count++], sizeof paths[0], "%s", o->model[k]);
    } else {
        int want = kind >= 0 ? kind : SIM_CHARGED;
        count = viz_shipped_models(v->assets, want, paths, VIZ_MAX_MODELS);
        if (count == 0 && !o->baseline) {
            /* Nothing shipped: say which file was looked for. */
            viz_default_model(paths[0], sizeof paths[0], v->assets, want);
            count = 1;
        }
    }
    int rc = open_models(v, paths, count, err);
    if (rc != VIZ_OK)
        return rc;
    for (int k = 0; k < v->models; k++) {
        const struct viz_model *m = &v->model[k];
        if (v->data.count > 0 && m->sim_kind != v->data.kind) {
            snprintf(err, VIZ_ERRLEN, "model '%.300s' was trained on the %s setting, but dataset '%.300s' is %s",
                     m->path, sim_kind_name(m->sim_kind), v->data.dir, sim_kind_name(v->data.kind));
            return VIZ_EMODEL;
        }
        if (k > 0 && m->sim_kind != v->model[0].sim_kind) {
            snprintf(err, VIZ_ERRLEN, "models of different settings side by side: '%.300s' is %s, '%.300s' is %s",
                     v->model[0].path, sim_kind_name(v->model[0].sim_kind), m->path, sim_kind_name(m->sim_kind));
            return VIZ_EMODEL;
        }
    }
    *kind_out = kind >= 0 ? kind : v->models > 0 ? v->model[0].sim_kind : SIM_CHARGED;
    return VIZ_OK;
}

int viz_run(const struct viz_options *o, FILE *out, FILE *log, char err[VIZ_ERRLEN])
{
    struct viewer *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    v->o = o;
    v->out = out;
    v->log = log;
    v->follow = o->follow;
    int rc = viz_find_assets(o->assets, v->assets, sizeof v->assets, err);
    if (rc != VIZ_OK)
        goto done;
    if (o->data && (rc = viz_dataset_load(&v->data, o->data, o->split, err)) != VIZ_OK)
        goto done;
    int kind = SIM_CHARGED;
    if ((rc = choose_models(v, &kind, err)) != VIZ_OK)
        goto done;
    int n = v->data.count > 0 ? v->data.n
          : o->bodies ? o->bodies
          : v->models > 0 && v->model[0].n_bodies >= 2 ? v->model[0].n_bodies : 5;
    if ((rc = apply_panels(v, 1, kind, n, o->seed, err)) != VIZ_OK)
        goto done;
    if (v->data.count > 0) {
        if (o->index >= v->data.count) {
            snprintf(err, VIZ_ERRLEN, "--index %ld: the %s split of '%.400s' has %d trajectories (0 to %d)", o->index,
                     v->data.split, v->data.dir, v->data.count, v->data.count - 1);
            rc = VIZ_EARG;
            goto done;
        }
        if ((rc = viz_app_replay(&v->app, &v->data, (int)o->index, (int)o->start, err)) != VIZ_OK) {
            char e2[VIZ_ERRLEN];
            snprintf(e2, sizeof e2, "--start %ld: %s", o->start, err);
            snprintf(err, VIZ_ERRLEN, "%s", e2);
            goto done;
        }
    }
    v->app.speed = o->speed;
    v->app.trails = o->trails;
    v->app.help = o->show_help;
    v->app.overlay = o->overlay;
    v->app.plot_energy = o->energy;
    if (v->data.count == 0)
        warn_mismatch(v);
    sim_rng_seed(&v->rng, o->seed);

    int headless = o->screenshot || (o->record && o->steps >= 0);
    if (o->record && (rc = make_dir(o->record, err)) != VIZ_OK)
        goto done;
    rc = viz_platform_open(&v->plat, "nbody-view: ground truth | learned", o->width, o->height, headless, err);
    if (rc == VIZ_ENODISPLAY) {
        char sdl[VIZ_ERRLEN];
        snprintf(sdl, sizeof sdl, "%s", err);
        snprintf(err, VIZ_ERRLEN,
                 "no display to open a window on (%.300s).\n"
                 "Without a display, write images instead:\n"
                 "  nbody-view --screenshot out.png --steps 2000     (or --record DIR --steps N)\n"
                 "which render offscreen; if that fails too, run them under xvfb-run -a.",
                 sdl);
    }
    if (rc != VIZ_OK)
        goto done;
    char shaders[PATH_MAX + 16];
    snprintf(shaders, sizeof shaders, "%s/shaders", v->assets);
    int msaa = o->msaa != VIZ_MSAA_AUTO ? o->msaa : headless ? 4 : VIZ_MSAA_AUTO;
    if ((rc = viz_render_create(&v->ren, viz_platform_getproc(v->plat), shaders, msaa, !headless, err)) != VIZ_OK)
        goto done;

    viz_camera_init(&v->cam);
    viz_platform_poll(v->plat, &v->input);
    frame_system(v);

    if (o->screenshot)
        rc = run_screenshot(v, err);
    else if (o->record && o->steps >= 0)
        rc = run_record(v, err);
    else if (o->bench_frames > 0)
        rc = run_bench(v, err);
    else
        rc = run_window(v, err);

done:
    viz_render_destroy(v->ren);
    viz_app_free(&v->app);
    close_models(v);
    viz_dataset_free(&v->data);
    free(v->pixels);
    free(v->pts);
    struct viz_platform *plat = v->plat;
    free(v);
#ifdef __SANITIZE_ADDRESS__
    /* Check for leaks now, with everything of ours freed but the driver still loaded:
     * closing the context unloads Mesa, whose global caches would then be reported
     * without a library to name (and so without a way to tell them from ours). */
    __lsan_do_leak_check();
#endif
    viz_platform_close(plat);
    return rc;
}
