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
    struct viz_model model;
    struct viz_app app;
    struct viz_camera cam;
    struct viz_platform *plat;
    struct viz_renderer *ren;
    struct viz_input input;
    struct viz_layout layout;
    struct viz_hud hud;
    struct sim_rng rng;   /* seeds for R */
    float floor_below;    /* world units from the camera target down to the floor grid */
    float body_radius;
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

/* A warning for the terminal and, in short, for the screen. */
static void warn_mismatch(struct viewer *v)
{
    if (v->model.sim_kind == v->app.kind)
        return;
    snprintf(v->app.status, sizeof v->app.status, "note: model trained on '%s', simulating '%s'",
             sim_kind_name(v->model.sim_kind), sim_kind_name(v->app.kind));
    fprintf(v->log, "nbody-view: warning: model '%s' was trained on the %s setting, but --sim is %s\n",
            v->model.path, sim_kind_name(v->model.sim_kind), sim_kind_name(v->app.kind));
}

/* Camera and sizes for a freshly started system. */
static void frame_system(struct viewer *v)
{
    const struct sim_system *s = &v->app.truth;
    int n = s->n;
    double c[3] = {0, 0, 0}, r2 = 0.0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++)
            c[k] += s->x[k * n + i];
        c[k] /= n;
    }
    for (int i = 0; i < n; i++) {
        double d2 = 0.0;
        for (int k = 0; k < 3; k++)
            d2 += (s->x[k * n + i] - c[k]) * (s->x[k * n + i] - c[k]);
        r2 = d2 > r2 ? d2 : r2;
    }
    /* Bodies spread with std (n / 5)^(1/3) (SPEC §1); spheres grow the same way. */
    v->body_radius = 0.14f * cbrtf((float)n / 5.0f);
    v->floor_below = (float)sqrt(r2) + 0.6f;
    float aspect = v->layout.view[0].h > 0 ? (float)v->layout.view[0].w / (float)v->layout.view[0].h
                                           : 0.5f * (float)v->o->width / (float)v->o->height;
    viz_camera_fit(&v->cam, n, s->x, 0.9f, aspect);
}

/* Switch to the shipped model and the setting of `kind`, keeping the seed. */
static void switch_kind(struct viewer *v, int kind)
{
    char path[PATH_MAX + 64], err[VIZ_ERRLEN];
    viz_default_model(path, sizeof path, v->assets, kind);
    struct viz_model m;
    if (viz_model_open(&m, path, err) != VIZ_OK) {
        snprintf(v->app.status, sizeof v->app.status, "cannot switch to %s: %.200s", sim_kind_name(kind), err);
        fprintf(v->log, "nbody-view: %s\n", v->app.status);
        return;
    }
    viz_model_close(&v->model);
    v->model = m;
    struct viz_stepper st;
    viz_model_stepper(&v->model, &st);
    if (viz_app_reset(&v->app, kind, v->app.seed, &st, err) != VIZ_OK) {
        fprintf(v->log, "nbody-view: %s\n", err);
        return;
    }
    warn_mismatch(v);
    frame_system(v);
}

/* A new random initial state in the current setting. */
static void new_system(struct viewer *v)
{
    char err[VIZ_ERRLEN];
    uint32_t seed = (uint32_t)sim_rng_bounded(&v->rng, SIM_SEED_RANGE - 1);
    if (viz_app_reset(&v->app, v->app.kind, seed, NULL, err) != VIZ_OK) {
        fprintf(v->log, "nbody-view: %s\n", err);
        return;
    }
    warn_mismatch(v);
    frame_system(v);
}

/* Lay out and draw one frame into the renderer's framebuffer. */
static int draw(struct viewer *v, char err[VIZ_ERRLEN])
{
    viz_layout_compute(&v->layout, v->input.win_w, v->input.win_h, v->input.fb_w, v->input.fb_h);
    if (v->o->ui)
        viz_hud_compose(&v->hud, &v->app, base_name(v->model.path));
    struct viz_frame f = {&v->app, &v->cam, &v->layout, v->o->ui ? &v->hud : NULL, v->body_radius,
                          v->floor_below};
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
    long chunk = 1000;
    while (v->app.step < total) {
        long n = total - v->app.step < chunk ? total - v->app.step : chunk;
        viz_app_advance(&v->app, n);
        progress(v, "nbody-view: step", v->app.step, total, v->app.step == total);
    }
    float c[3];
    viz_app_centroid(&v->app, c);
    memcpy(v->cam.target, c, sizeof c);
    viz_platform_poll(v->plat, &v->input);
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

/* Apply the actions that need more than the application state. */
static void handle_actions(struct viewer *v, const struct viz_actions *act)
{
    if (act->set_kind >= 0)
        switch_kind(v, act->set_kind);
    if (act->new_system)
        new_system(v);
    if (act->reload_shaders) {
        char err[VIZ_ERRLEN];
        if (viz_render_reload(v->ren, err) == VIZ_OK) {
            snprintf(v->app.status, sizeof v->app.status, "shaders reloaded");
        } else {
            fprintf(v->log, "nbody-view: %s\n", err);
            snprintf(v->app.status, sizeof v->app.status, "shader error, previous shaders kept (log on stderr)");
        }
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
        if (max_steps < v->app.stepper.horizon)
            max_steps = v->app.stepper.horizon;
        long before = v->app.step;
        double t_update = viz_platform_time(v->plat);
        viz_app_update(&v->app, &act, dt, max_steps);
        long taken = v->app.step - before;
        if (taken > 0) {
            double cost = (viz_platform_time(v->plat) - t_update) / (double)taken;
            step_cost = step_cost > 0.0 ? 0.8 * step_cost + 0.2 * cost : cost;
        }
        float c[3];
        viz_app_centroid(&v->app, c);
        viz_camera_follow(&v->cam, c, (float)dt);
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
    do {
        viz_platform_poll(v->plat, &v->input);
        if (frame > 0) {
            viz_app_update(&v->app, NULL, FRAME_DT, total - v->app.step);
            float c[3];
            viz_app_centroid(&v->app, c);
            viz_camera_follow(&v->cam, c, (float)FRAME_DT);
        }
        int rc = draw(v, err);
        if (rc != VIZ_OK)
            return rc;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/frame_%06ld.png", v->o->record, frame++);
        if ((rc = write_frame(v, path, err)) != VIZ_OK)
            return rc;
        progress(v, "nbody-view: step", v->app.step, total, v->app.step >= total);
    } while (v->app.step < total);
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
        float c[3];
        viz_app_centroid(&v->app, c);
        viz_camera_follow(&v->cam, c, (float)FRAME_DT);
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
    fprintf(v->out, "scene: %dx%d framebuffer, msaa %d, %d bodies, %s, %d steps/s, trails %s, ui %s\n",
            v->layout.fb_w, v->layout.fb_h, viz_render_samples(v->ren), v->app.n, sim_kind_name(v->app.kind), v->app.speed,
            v->app.trails ? "on" : "off", v->o->ui ? "on" : "off");
    fprintf(v->out, "frame time over %ld frames: median %.2f ms, p99 %.2f ms, mean %.2f ms, max %.2f ms (%.0f fps at the median)\n",
            frames, 1e3 * med, 1e3 * sim_quantile(ft, frames, 0.99), 1e3 * sum / frames, 1e3 * ft[frames - 1],
            1.0 / med);
    free(ft);

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
        memcpy(x, v->app.lx0, bytes);
        memcpy(vel, v->app.lv0, bytes);
        double t0 = viz_platform_time(v->plat);
        int rc = v->app.stepper.step(v->app.stepper.ctx, n, v->app.truth.q, x, vel, serr);
        st[calls++] = viz_platform_time(v->plat) - t0;
        if (rc != 0) {
            fprintf(v->out, "learned step failed: %s\n", serr);
            break;
        }
    }
    qsort(st, (size_t)calls, sizeof(double), cmp_double);
    fprintf(v->out, "learned step (%d simulation steps, %d bodies): median %.3f ms, p99 %.3f ms over %d calls\n",
            v->app.stepper.horizon, n, 1e3 * sim_quantile(st, calls, 0.5), 1e3 * sim_quantile(st, calls, 0.99), calls);
    /* The simulator over the same span, for comparison. */
    memcpy(sys.x, v->app.truth.x, bytes);
    memcpy(sys.v, v->app.truth.v, bytes);
    memcpy(sys.q, v->app.truth.q, (size_t)n * sizeof(double));
    calls = 0;
    begin = viz_platform_time(v->plat);
    while (calls < BENCH_STEP_CALLS && viz_platform_time(v->plat) - begin < BENCH_STEP_SECONDS) {
        double t0 = viz_platform_time(v->plat);
        sim_advance(&sys, v->app.stepper.horizon);
        st[calls++] = viz_platform_time(v->plat) - t0;
    }
    qsort(st, (size_t)calls, sizeof(double), cmp_double);
    fprintf(v->out, "simulator (%d steps, %d bodies): median %.3f ms over %d calls\n", v->app.stepper.horizon, n,
            1e3 * sim_quantile(st, calls, 0.5), calls);
    sim_system_free(&sys);
    free(x), free(vel), free(st);
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
    int rc = viz_find_assets(o->assets, v->assets, sizeof v->assets, err);
    if (rc != VIZ_OK)
        goto done;

    char path[PATH_MAX + 64];
    if (o->model)
        snprintf(path, sizeof path, "%s", o->model);
    else
        viz_default_model(path, sizeof path, v->assets, o->kind >= 0 ? o->kind : SIM_CHARGED);
    if ((rc = viz_model_open(&v->model, path, err)) != VIZ_OK)
        goto done;
    int kind = o->kind >= 0 ? o->kind : v->model.sim_kind;
    int n = o->bodies ? o->bodies : v->model.n_bodies >= 2 ? v->model.n_bodies : 5;
    struct viz_stepper st;
    viz_model_stepper(&v->model, &st);
    if ((rc = viz_app_init(&v->app, kind, n, o->seed, &st, err)) != VIZ_OK)
        goto done;
    v->app.speed = o->speed;
    v->app.trails = o->trails;
    v->app.help = o->show_help;
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
    viz_layout_compute(&v->layout, v->input.win_w, v->input.win_h, v->input.fb_w, v->input.fb_h);
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
    viz_model_close(&v->model);
    free(v->pixels);
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
