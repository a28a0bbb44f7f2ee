/* test_viz.c: the viewer without a window: camera math, layout, input mapping, options,
 * the ground-truth/learned state machine (against sim_run), model loading. PNG files and the
 * font are plot/'s (test_plot.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clofnet.h"
#include "sim.h"
#include "viz.h"
#include "tfs.h"

/* float matrix products of O(1) values: a few ulps of 1. */
#define MAT_TOL 1e-5f
/* Projected pixel positions: float rounding of O(1000) pixel coordinates. */
#define PX_TOL 1e-2f
/* Float lengths and exponentials of O(10) values: a few ulps of 10. */
#define LEN_TOL 1e-4f
/* Converging 100 times by 25% leaves 0.75^100 of 10: far below this. */
#define CONVERGED_TOL 1e-3f
/* Float interpolation of O(5) coordinates: a few ulps of 5. */
#define INTERP_TOL 1e-6f
/* Adding 0.01 to O(1) doubles and squaring the difference: rounding of order 1e-18. */
#define MSE_TOL 1e-12
/* Bodies move well below 10 units per time unit: in 0.01 step (1e-5 time units) under 1e-4. */
#define CONTINUITY_TOL 1e-4f
/* Layout sizes are whole pixels: halving an odd width rounds by one. */
#define LAYOUT_ROUND_PX 1
/* Simulation times k * h * dt in doubles: rounding of O(1) values. */
#define TIME_TOL 1e-12

/* ------------------------------------------------------------ helpers */

/* ------------------------------------------------------------ matrices and camera */

static void test_perspective_maps_near_and_far(void **state)
{
    (void)state;
    struct viz_mat4 p;
    viz_mat4_perspective(&p, 0.8f, 1.5f, 0.5f, 40.0f);
    float near_pt[3] = {0, 0, -0.5f}, far_pt[3] = {0, 0, -40.0f}, out[4];
    viz_mat4_apply(&p, near_pt, 1.0f, out);
    assert_float_equal(out[2] / out[3], -1.0f, MAT_TOL);
    viz_mat4_apply(&p, far_pt, 1.0f, out);
    assert_float_equal(out[2] / out[3], 1.0f, MAT_TOL);
    /* The top edge of the field of view at distance 2 maps to y = 1. */
    float top[3] = {0, 2.0f * tanf(0.4f), -2.0f};
    viz_mat4_apply(&p, top, 1.0f, out);
    assert_float_equal(out[1] / out[3], 1.0f, MAT_TOL);
}

static void test_look_at_puts_target_ahead(void **state)
{
    (void)state;
    float eye[3] = {1, -4, 2}, target[3] = {0.5f, 1, -1}, up[3] = {0, 0, 1}, out[4];
    struct viz_mat4 v;
    viz_mat4_look_at(&v, eye, target, up);
    viz_mat4_apply(&v, target, 1.0f, out);
    float d = sqrtf(0.25f + 25.0f + 9.0f);
    assert_float_equal(out[0], 0.0f, MAT_TOL);
    assert_float_equal(out[1], 0.0f, MAT_TOL);
    assert_float_equal(out[2], -d, MAT_TOL);
    viz_mat4_apply(&v, eye, 1.0f, out);
    for (int k = 0; k < 3; k++)
        assert_float_equal(out[k], 0.0f, MAT_TOL);
    /* World up stays up on screen: a point above the target has view y > 0. */
    float above[3] = {target[0], target[1], target[2] + 1.0f};
    viz_mat4_apply(&v, above, 1.0f, out);
    assert_true(out[1] > 0.5f);
}

static void test_mat4_mul_identity_and_order(void **state)
{
    (void)state;
    struct viz_mat4 i, t, s, ts, st;
    viz_mat4_identity(&i);
    viz_mat4_identity(&t);
    t.m[12] = 3.0f; /* translate x by 3 */
    viz_mat4_identity(&s);
    s.m[0] = 2.0f; /* scale x by 2 */
    viz_mat4_mul(&ts, &t, &s);
    viz_mat4_mul(&st, &s, &t);
    float p[3] = {1, 0, 0}, out[4];
    viz_mat4_apply(&ts, p, 1.0f, out);
    assert_float_equal(out[0], 5.0f, MAT_TOL); /* scale first, then translate */
    viz_mat4_apply(&st, p, 1.0f, out);
    assert_float_equal(out[0], 8.0f, MAT_TOL);
    struct viz_mat4 r;
    viz_mat4_mul(&r, &i, &ts);
    assert_memory_equal(r.m, ts.m, sizeof r.m);
}

static void test_camera_eye_and_projection(void **state)
{
    (void)state;
    struct viz_camera c;
    viz_camera_init(&c);
    c.target[0] = 1.0f, c.target[1] = -2.0f, c.target[2] = 0.5f;
    c.yaw = 0.0f, c.pitch = 0.0f, c.distance = 6.0f;
    float eye[3];
    viz_camera_eye(&c, eye);
    /* Yaw 0, pitch 0: the eye is on the -y side of the target. */
    assert_float_equal(eye[0], 1.0f, MAT_TOL);
    assert_float_equal(eye[1], -8.0f, MAT_TOL);
    assert_float_equal(eye[2], 0.5f, MAT_TOL);
    for (float yaw = -3.0f; yaw < 3.0f; yaw += 0.7f)
        for (float pitch = -1.4f; pitch < 1.45f; pitch += 0.35f) {
            c.yaw = yaw, c.pitch = pitch;
            viz_camera_eye(&c, eye);
            float d2 = 0;
            for (int k = 0; k < 3; k++)
                d2 += (eye[k] - c.target[k]) * (eye[k] - c.target[k]);
            assert_float_equal(sqrtf(d2), 6.0f, LEN_TOL);
            struct viz_mat4 view, proj, vp;
            viz_camera_matrices(&c, 1.6f, &view, &proj);
            viz_mat4_mul(&vp, &proj, &view);
            struct viz_rect r = {100, 50, 640, 400};
            float px[2];
            assert_int_equal(viz_project(&vp, &r, c.target, px), 1);
            assert_float_equal(px[0], 420.0f, PX_TOL);
            assert_float_equal(px[1], 250.0f, PX_TOL);
            /* A point behind the eye is reported as not visible. */
            float behind[3];
            for (int k = 0; k < 3; k++)
                behind[k] = eye[k] + (eye[k] - c.target[k]);
            assert_int_equal(viz_project(&vp, &r, behind, px), 0);
        }
}

static void test_camera_rotate_and_clamp(void **state)
{
    (void)state;
    struct viz_camera c;
    viz_camera_init(&c);
    float yaw0 = c.yaw, pitch0 = c.pitch;
    viz_camera_rotate(&c, 10.0f, 0.0f);
    assert_float_equal(c.yaw, yaw0 - 10.0f * VIZ_ROTATE_PER_PX, MAT_TOL);
    assert_float_equal(c.pitch, pitch0, 0.0f);
    viz_camera_rotate(&c, 0.0f, 20.0f);
    assert_float_equal(c.pitch, pitch0 + 20.0f * VIZ_ROTATE_PER_PX, MAT_TOL);
    /* Dragging far down stops just short of looking straight down. */
    viz_camera_rotate(&c, 0.0f, 1e5f);
    assert_float_equal(c.pitch, VIZ_PITCH_MAX, 0.0f);
    viz_camera_rotate(&c, 0.0f, -1e5f);
    assert_float_equal(c.pitch, -VIZ_PITCH_MAX, 0.0f);
    /* At the clamp the view matrix stays finite (up is never parallel to the view). */
    struct viz_mat4 view, proj;
    viz_camera_matrices(&c, 1.0f, &view, &proj);
    for (int k = 0; k < 16; k++)
        assert_true(isfinite(view.m[k]));
}

static void test_camera_zoom(void **state)
{
    (void)state;
    struct viz_camera c;
    viz_camera_init(&c);
    float d0 = c.distance;
    viz_camera_zoom(&c, 2.0f);
    assert_float_equal(c.distance, d0 * VIZ_ZOOM_PER_NOTCH * VIZ_ZOOM_PER_NOTCH, LEN_TOL);
    viz_camera_zoom(&c, -2.0f);
    assert_float_equal(c.distance, d0, LEN_TOL);
    viz_camera_zoom(&c, 1000.0f);
    assert_float_equal(c.distance, VIZ_DIST_MIN, 0.0f);
    viz_camera_zoom(&c, -1000.0f);
    assert_float_equal(c.distance, VIZ_DIST_MAX, 0.0f);
}

static void test_camera_fit_shows_every_body(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 20), SIM_OK);
    float aspects[3] = {0.5f, 1.0f, 2.2f};
    for (uint32_t seed = 1; seed <= 6; seed++) {
        sim_initial_state(&s, seed);
        for (int a = 0; a < 3; a++) {
            struct viz_camera c;
            viz_camera_init(&c);
            c.yaw = 0.3f * (float)seed, c.pitch = 0.2f * (float)a - 0.2f;
            viz_camera_fit(&c, s.n, s.x, 0.0f, aspects[a]);
            struct viz_mat4 view, proj, vp;
            viz_camera_matrices(&c, aspects[a], &view, &proj);
            viz_mat4_mul(&vp, &proj, &view);
            struct viz_rect r = {0, 0, (int)(400 * aspects[a]), 400};
            float far = 0.0f;
            for (int i = 0; i < s.n; i++) {
                float p[3] = {(float)s.x[i], (float)s.x[s.n + i], (float)s.x[2 * s.n + i]}, px[2];
                assert_int_equal(viz_project(&vp, &r, p, px), 1);
                assert_true(px[0] >= 0.0f && px[0] <= (float)r.w);
                assert_true(px[1] >= 0.0f && px[1] <= (float)r.h);
                float dx = fabsf(px[0] - 0.5f * r.w) / (0.5f * r.w), dy = fabsf(px[1] - 0.5f * r.h) / (0.5f * r.h);
                far = fmaxf(far, fmaxf(dx, dy));
            }
            /* Not fitted trivially far away: the outermost body reaches a third of the way out. */
            assert_true(far > 0.33f);
        }
    }
    sim_system_free(&s);
}

static void test_camera_follow(void **state)
{
    (void)state;
    struct viz_camera c;
    viz_camera_init(&c);
    float p[3] = {10.0f, 0.0f, -4.0f};
    viz_camera_follow(&c, p, 0.0f);
    assert_float_equal(c.target[0], 0.0f, 0.0f);
    viz_camera_follow(&c, p, VIZ_FOLLOW_TAU);
    assert_float_equal(c.target[0], 10.0f * (1.0f - expf(-1.0f)), LEN_TOL);
    assert_float_equal(c.target[2], -4.0f * (1.0f - expf(-1.0f)), LEN_TOL);
    for (int k = 0; k < 100; k++)
        viz_camera_follow(&c, p, 0.1f);
    assert_float_equal(c.target[0], 10.0f, CONVERGED_TOL);
}

/* ------------------------------------------------------------ layout */

static void test_layout_split_and_hidpi(void **state)
{
    (void)state;
    int sizes[3][4] = {{1280, 720, 1280, 720}, {1280, 720, 2560, 1440}, {641, 480, 641, 480}};
    for (int k = 0; k < 3; k++) {
        struct viz_layout l;
        viz_layout_compute(&l, sizes[k][0], sizes[k][1], sizes[k][2], sizes[k][3]);
        assert_int_equal(l.fb_w, sizes[k][2]);
        assert_int_equal(l.view[0].w, l.view[1].w);
        assert_int_equal(l.view[0].h, sizes[k][3]);
        assert_int_equal(l.view[0].x, 0);
        assert_int_equal(l.view[1].x + l.view[1].w, l.fb_w);
        assert_true(l.view[0].x + l.view[0].w <= l.view[1].x); /* no overlap */
        assert_true(l.view[1].x - (l.view[0].x + l.view[0].w) >= 1);
        assert_int_equal(l.view[1].x % 2, 0); /* derivative blocks line up in both halves */
        assert_true(l.plot.x >= l.view[1].x && l.plot.x + l.plot.w <= l.fb_w);
        assert_true(l.plot.y >= 0 && l.plot.y + l.plot.h <= l.fb_h);
        assert_true(l.plot.w > 0 && l.plot.h > 0);
    }
    struct viz_layout lo, hi;
    viz_layout_compute(&lo, 1280, 720, 1280, 720);
    viz_layout_compute(&hi, 1280, 720, 2560, 1440);
    assert_float_equal(lo.dpi_scale, 1.0f, 0.0f);
    assert_float_equal(hi.dpi_scale, 2.0f, 0.0f);
    assert_int_equal(hi.text_scale, 2 * lo.text_scale);
    /* The same window gets the same layout in window pixels, HiDPI or not. */
    assert_true(abs(hi.plot.w - 2 * lo.plot.w) <= LAYOUT_ROUND_PX);
    assert_true(abs(hi.plot.h - 2 * lo.plot.h) <= LAYOUT_ROUND_PX);
}

/* ------------------------------------------------------------ input */

static void test_input_press_edges(void **state)
{
    (void)state;
    struct viz_input in;
    memset(&in, 0, sizeof in);
    viz_input_begin_frame(&in);
    in.down[VIZ_KEY_SPACE] = 1;
    assert_true(viz_input_pressed(&in, VIZ_KEY_SPACE));
    /* Still held next frame: not a new press. */
    viz_input_begin_frame(&in);
    assert_false(viz_input_pressed(&in, VIZ_KEY_SPACE));
    /* Released, then pressed and released within one frame: the tap still counts. */
    in.down[VIZ_KEY_SPACE] = 0;
    viz_input_begin_frame(&in);
    in.tap[VIZ_KEY_SPACE] = 1;
    assert_true(viz_input_pressed(&in, VIZ_KEY_SPACE));
    viz_input_begin_frame(&in);
    assert_false(viz_input_pressed(&in, VIZ_KEY_SPACE));
    assert_false(viz_input_pressed(&in, -1));
    assert_false(viz_input_pressed(&in, VIZ_KEY_COUNT));
}

/* Actions for a single key pressed in an otherwise idle frame. */
static struct viz_actions press(int key)
{
    struct viz_input in;
    memset(&in, 0, sizeof in);
    viz_input_begin_frame(&in);
    in.down[key] = 1;
    struct viz_actions a;
    viz_input_map(&in, &a);
    return a;
}

static void test_input_key_mapping(void **state)
{
    (void)state;
    struct viz_input idle;
    memset(&idle, 0, sizeof idle);
    struct viz_actions a;
    viz_input_map(&idle, &a);
    assert_int_equal(a.quit + a.toggle_pause + a.single_step + a.new_system + a.speed + a.toggle_trails +
                         a.toggle_help + a.reload_shaders,
                     0);
    assert_int_equal(a.set_kind, -1);
    assert_true(press(VIZ_KEY_ESCAPE).quit);
    assert_true(press(VIZ_KEY_SPACE).toggle_pause);
    assert_true(press(VIZ_KEY_RIGHT).single_step);
    assert_true(press(VIZ_KEY_R).new_system);
    assert_int_equal(press(VIZ_KEY_1).set_kind, SIM_CHARGED);
    assert_int_equal(press(VIZ_KEY_2).set_kind, SIM_STATIC);
    assert_int_equal(press(VIZ_KEY_3).set_kind, SIM_DYNAMIC);
    assert_int_equal(press(VIZ_KEY_PLUS).speed, 1);
    assert_int_equal(press(VIZ_KEY_MINUS).speed, -1);
    assert_true(press(VIZ_KEY_T).toggle_trails);
    assert_true(press(VIZ_KEY_H).toggle_help);
    assert_true(press(VIZ_KEY_F5).reload_shaders);
    assert_false(press(VIZ_KEY_SPACE).quit);
    /* Closing the window quits too. */
    idle.quit = 1;
    viz_input_map(&idle, &a);
    assert_true(a.quit);
}

static void test_input_drag_and_wheel(void **state)
{
    (void)state;
    struct viz_input in;
    memset(&in, 0, sizeof in);
    struct viz_actions a;
    /* Motion without the button: no rotation. */
    viz_input_begin_frame(&in);
    in.mouse_dx = 5, in.mouse_dy = -3;
    viz_input_map(&in, &a);
    assert_float_equal(a.rotate_dx, 0.0f, 0.0f);
    /* The frame the button goes down: its motion happened before the press. */
    viz_input_begin_frame(&in);
    in.button = 1, in.mouse_dx = 5;
    viz_input_map(&in, &a);
    assert_float_equal(a.rotate_dx, 0.0f, 0.0f);
    /* Held: rotation by the motion. */
    viz_input_begin_frame(&in);
    in.mouse_dx = 7, in.mouse_dy = -2, in.wheel = 1.5f;
    viz_input_map(&in, &a);
    assert_float_equal(a.rotate_dx, 7.0f, 0.0f);
    assert_float_equal(a.rotate_dy, -2.0f, 0.0f);
    assert_float_equal(a.zoom, 1.5f, 0.0f);
    /* begin_frame clears the per-frame motion. */
    viz_input_begin_frame(&in);
    viz_input_map(&in, &a);
    assert_float_equal(a.rotate_dx, 0.0f, 0.0f);
    assert_float_equal(a.zoom, 0.0f, 0.0f);
}

static void test_speed_ladder(void **state)
{
    (void)state;
    assert_int_equal(viz_speed_step(500, 1), 1000);
    assert_int_equal(viz_speed_step(500, -1), 200);
    assert_int_equal(viz_speed_step(1000, 1), 2000);
    assert_int_equal(viz_speed_step(2000, 1), 5000);
    assert_int_equal(viz_speed_step(VIZ_SPEED_MAX, 1), VIZ_SPEED_MAX);
    assert_int_equal(viz_speed_step(VIZ_SPEED_MIN, -1), VIZ_SPEED_MIN);
    assert_int_equal(viz_speed_step(300, 1), 500);  /* off the ladder: next rung up */
    assert_int_equal(viz_speed_step(300, -1), 200); /* ... or down */
    assert_int_equal(viz_speed_step(300, 0), 300);
    int s = VIZ_SPEED_MIN, rungs = 0;
    while (s < VIZ_SPEED_MAX && rungs < 100) {
        int next = viz_speed_step(s, 1);
        assert_true(next > s);
        s = next, rungs++;
    }
    assert_int_equal(s, VIZ_SPEED_MAX);
}

/* ------------------------------------------------------------ options */

/* Parse a NULL-terminated argument list. */
static int parse(struct viz_options *o, char err[VIZ_ERRLEN], ...)
{
    char *argv[32] = {"nbody-view"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    char *a;
    while ((a = va_arg(ap, char *)) && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return viz_options_parse(o, argc, argv, err);
}

static void test_options(void **state)
{
    (void)state;
    struct viz_options o;
    char err[VIZ_ERRLEN];
    assert_int_equal(parse(&o, err, NULL), VIZ_OK);
    assert_int_equal(o.kind, -1);
    assert_null(o.model);
    assert_int_equal(o.seed, VIZ_SEED_DEFAULT);
    assert_int_equal(o.width, 1280);
    assert_int_equal(o.height, 720);
    assert_int_equal(o.msaa, VIZ_MSAA_AUTO);
    assert_int_equal(o.ui, 1);
    assert_int_equal(o.steps, -1);
    assert_int_equal(parse(&o, err, "--sim", "dynamic", "--model=m.ckpt", "--bodies", "20", "--seed", "4000000000",
                           "--screenshot", "a.png", "--steps", "300", "--size", "800x600", "--msaa", "0",
                           "--no-ui", "--no-trails", "--speed", "2000", "--assets", "/x", NULL),
                     VIZ_OK);
    assert_int_equal(o.kind, SIM_DYNAMIC);
    assert_string_equal(o.model, "m.ckpt");
    assert_int_equal(o.bodies, 20);
    assert_int_equal(o.seed, 4000000000u);
    assert_string_equal(o.screenshot, "a.png");
    assert_int_equal(o.steps, 300);
    assert_int_equal(o.width, 800);
    assert_int_equal(o.height, 600);
    assert_int_equal(o.msaa, 0);
    assert_int_equal(o.ui, 0);
    assert_int_equal(o.trails, 0);
    assert_int_equal(o.speed, 2000);
    assert_string_equal(o.assets, "/x");
    assert_int_equal(parse(&o, err, "--help", NULL), VIZ_OK);
    assert_true(o.help);
    assert_int_equal(parse(&o, err, "--bench-frames", "1000", "--bodies", "5", NULL), VIZ_OK);
    assert_int_equal(o.bench_frames, 1000);

    /* Each bad command line is refused with a message. */
    const char *bad[][5] = {
        {"--frobnicate", NULL},          {"--sim", "gravity", NULL},       {"--bodies", "1", NULL},
        {"--bodies", "5x", NULL},        {"--seed", "-1", NULL},           {"--seed", "4294967296", NULL},
        {"--msaa", "3", NULL},           {"--size", "800", NULL},          {"--size", "10x10", NULL},
        {"--steps", "100", NULL},        {"--speed", "0", NULL},           {"--bench-frames", "0", NULL},
        {"--model", NULL},               {"--screenshot", "", NULL},
        {"--screenshot", "a.png", "--record", "d", NULL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *argv[8] = {"nbody-view"};
        int argc = 1;
        for (int j = 0; bad[k][j]; j++)
            argv[argc++] = (char *)bad[k][j];
        err[0] = '\0';
        assert_int_equal(viz_options_parse(&o, argc, argv, err), VIZ_EARG);
        assert_true(strlen(err) > 10);
    }
    assert_non_null(strstr(viz_usage(), "--screenshot"));
}

static void test_assets_and_default_model(void **state)
{
    (void)state;
    char out[1024], err[VIZ_ERRLEN];
    assert_int_equal(viz_find_assets(ASSETS_DIR, out, sizeof out, err), VIZ_OK);
    assert_string_equal(out, ASSETS_DIR);
    assert_int_equal(viz_find_assets("/nonexistent/assets", out, sizeof out, err), VIZ_EIO);
    assert_non_null(strstr(err, "/nonexistent/assets"));
    /* Without --assets the search finds a folder with the shaders. */
    assert_int_equal(viz_find_assets(NULL, out, sizeof out, err), VIZ_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s/shaders/sphere.vert", out);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(viz_default_model(path, sizeof path, "/a", SIM_STATIC), VIZ_OK);
    assert_string_equal(path, "/a/models/step-static5.ckpt");
    assert_int_equal(viz_default_model(path, sizeof path, "/a", 7), VIZ_EARG);
}

/* ------------------------------------------------------------ application state */

/* Learned steppers for tests: the simulator itself (exact), a shifted one, a failing one. */
struct test_stepper {
    struct sim_system sys;
    int horizon;
    double shift;   /* added to every coordinate after stepping */
    int fail_after; /* calls that succeed before one fails; -1 never */
    int calls;
};

/* viz_stepper callback: H kick-drift steps of the simulator, then the test's distortions. */
static int test_step(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN])
{
    struct test_stepper *t = ctx;
    if (t->fail_after >= 0 && t->calls >= t->fail_after) {
        snprintf(err, VIZ_ERRLEN, "test failure");
        return 7;
    }
    t->calls++;
    memcpy(t->sys.x, x, (size_t)3 * n * sizeof(double));
    memcpy(t->sys.v, v, (size_t)3 * n * sizeof(double));
    memcpy(t->sys.q, q, (size_t)n * sizeof(double));
    for (int s = 0; s < t->horizon; s++) {
        sim_kick(&t->sys);
        sim_drift(&t->sys);
    }
    for (int k = 0; k < 3 * n; k++)
        x[k] = t->sys.x[k] + t->shift;
    memcpy(v, t->sys.v, (size_t)3 * n * sizeof(double));
    return 0;
}

/* A test stepper and its viz_stepper. */
static void stepper_make(struct test_stepper *t, struct viz_stepper *st, int kind, int n, int horizon)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(sim_system_init(&t->sys, kind, n), SIM_OK);
    t->horizon = horizon;
    t->fail_after = -1;
    st->step = test_step;
    st->ctx = t;
    st->horizon = horizon;
}

static void test_truth_reproduces_reference_frames(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        const int n = 5, length = 600, freq = 100;
        int frames = sim_frame_count(length, freq);
        struct sim_system ref;
        assert_int_equal(sim_system_init(&ref, kind, n), SIM_OK);
        sim_initial_state(&ref, 11);
        double *loc = malloc(sizeof(double) * 3 * n * frames), *vel = malloc(sizeof(double) * 3 * n * frames);
        assert_int_equal(sim_run(&ref, length, freq, loc, vel), SIM_OK);

        struct test_stepper t;
        struct viz_stepper st;
        stepper_make(&t, &st, kind, n, freq);
        struct viz_app a;
        char err[VIZ_ERRLEN];
        assert_int_equal(viz_app_init(&a, kind, n, 11, &st, err), VIZ_OK);
        for (int k = 0; k < frames; k++) {
            viz_app_advance(&a, freq);
            assert_int_equal(a.step, (long)freq * (k + 1));
            /* Bit for bit: the same operations in the same order as the dataset generator. */
            assert_memory_equal(a.truth.x, loc + (size_t)k * 3 * n, sizeof(double) * 3 * n);
            assert_memory_equal(a.truth.v, vel + (size_t)k * 3 * n, sizeof(double) * 3 * n);
        }
        viz_app_free(&a);
        sim_system_free(&t.sys);
        sim_system_free(&ref);
        free(loc);
        free(vel);
    }
}

static void test_exact_stepper_has_zero_error(void **state)
{
    (void)state;
    const int n = 6, h = 50;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_DYNAMIC, n, h);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_DYNAMIC, n, 3, &st, err), VIZ_OK);
    assert_int_equal(a.hist_count, 1);
    assert_int_equal(t.calls, 1); /* one model step ahead from the start */
    viz_app_advance(&a, 10 * h + 17);
    assert_int_equal(a.learned_base, 10 * h);
    assert_int_equal(a.hist_count, 11);
    assert_int_equal(t.calls, 11);
    for (int k = 0; k < a.hist_count; k++) {
        assert_float_equal(a.hist_t[k], k * h * SIM_DT, TIME_TOL);
        assert_true(a.hist_mse[k] == 0.0);
    }
    /* At a boundary both sides draw the same positions. */
    viz_app_advance(&a, h - 17);
    float *p0 = malloc(sizeof(float) * 3 * n), *p1 = malloc(sizeof(float) * 3 * n);
    viz_app_positions(&a, 0, p0);
    viz_app_positions(&a, 1, p1);
    assert_memory_equal(p0, p1, sizeof(float) * 3 * n);
    assert_int_equal(a.learned_ok, 1);
    free(p0);
    free(p1);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

static void test_shifted_stepper_error_and_interpolation(void **state)
{
    (void)state;
    const int n = 4, h = 100;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_CHARGED, n, h);
    t.shift = 0.01;
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 5, &st, err), VIZ_OK);
    viz_app_advance(&a, h);
    /* Every coordinate off by 0.01: MSE 1e-4, up to rounding of O(1) positions. */
    assert_float_equal(a.mse, 1e-4, MSE_TOL);
    assert_int_equal(a.mse_step, h);
    /* The drawn learned positions run on without a jump into the next learned step. */
    float *before = malloc(sizeof(float) * 3 * n), *after = malloc(sizeof(float) * 3 * n);
    a.t = (double)(a.learned_base + h) - 0.01;
    viz_app_positions(&a, 1, before);
    viz_app_advance(&a, h);
    assert_int_equal(a.learned_base, 2 * h);
    viz_app_positions(&a, 1, after);
    for (int k = 0; k < 3 * n; k++)
        assert_float_equal(before[k], after[k], CONTINUITY_TOL);
    free(before);
    free(after);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

static void test_hermite(void **state)
{
    (void)state;
    const int n = 2;
    double x0[6] = {0, 1, 2, 3, 4, 5}, v0[6] = {1, -1, 0.5, 2, 0, -3}, x1[6], v1[6], span = 0.1;
    for (int k = 0; k < 6; k++) {
        x1[k] = x0[k] + span * v0[k]; /* uniform motion */
        v1[k] = v0[k];
    }
    float out[6];
    viz_hermite(n, x0, v0, x1, v1, span, 0.0, out);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(out[3 * i + c], (float)x0[c * n + i], 0.0f);
    viz_hermite(n, x0, v0, x1, v1, span, 1.0, out);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(out[3 * i + c], (float)x1[c * n + i], INTERP_TOL);
    /* A cubic through uniform motion is that motion. */
    viz_hermite(n, x0, v0, x1, v1, span, 0.3, out);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(out[3 * i + c], (float)(x0[c * n + i] + 0.3 * span * v0[c * n + i]), INTERP_TOL);
}

static void test_failing_stepper_freezes_learned_side(void **state)
{
    (void)state;
    const int n = 3, h = 20;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_STATIC, n, h);
    t.fail_after = 3;
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_STATIC, n, 9, &st, err), VIZ_OK);
    viz_app_advance(&a, 2 * h);
    assert_int_equal(a.learned_ok, 1);
    viz_app_advance(&a, h); /* the fourth call fails */
    assert_int_equal(a.learned_ok, 0);
    assert_non_null(strstr(a.status, "test failure"));
    float *before = malloc(sizeof(float) * 3 * n), *after = malloc(sizeof(float) * 3 * n);
    viz_app_positions(&a, 1, before);
    long step = a.step;
    int hist = a.hist_count;
    viz_app_advance(&a, 5 * h + 3);
    viz_app_positions(&a, 1, after);
    assert_int_equal(a.step, step + 5 * h + 3); /* the truth runs on */
    assert_memory_equal(before, after, sizeof(float) * 3 * n);
    assert_int_equal(a.hist_count, hist);
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, "m.ckpt");
    assert_non_null(strstr(hud.error, "stopped"));
    free(before);
    free(after);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

/* viz_stepper callback that returns NaN positions. */
static int nan_step(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN])
{
    (void)ctx, (void)q, (void)v, (void)err;
    x[n] = NAN;
    return 0;
}

static void test_diverged_learned_state_is_caught(void **state)
{
    (void)state;
    struct viz_stepper st = {nan_step, NULL, 10};
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, 5, 1, &st, err), VIZ_OK);
    assert_int_equal(a.learned_ok, 0);
    assert_non_null(strstr(a.status, "diverged"));
    float p[15];
    viz_app_positions(&a, 1, p);
    for (int k = 0; k < 15; k++)
        assert_true(isfinite(p[k]));
    viz_app_free(&a);
}

static void test_update_pause_step_speed(void **state)
{
    (void)state;
    const int n = 5, h = 100;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_CHARGED, n, h);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 2, &st, err), VIZ_OK);
    assert_int_equal(a.speed, VIZ_SPEED_DEFAULT);
    viz_app_update(&a, NULL, 0.1, 100000);
    assert_int_equal(a.step, (long)(0.1 * VIZ_SPEED_DEFAULT));
    /* A long frame is cut to max_steps. */
    viz_app_update(&a, NULL, 10.0, 30);
    assert_int_equal(a.step, 80);
    assert_true(a.t >= (double)a.step && a.t < a.step + 1.0);

    struct viz_actions act;
    memset(&act, 0, sizeof act);
    act.set_kind = -1;
    act.toggle_pause = 1;
    viz_app_update(&a, &act, 0.5, 100000);
    assert_true(a.paused);
    assert_int_equal(a.step, 80);
    act.toggle_pause = 0;
    act.single_step = 1;
    viz_app_update(&a, &act, 0.5, 100000);
    assert_int_equal(a.step, 100); /* to the end of the current learned step */
    viz_app_update(&a, &act, 0.5, 100000);
    assert_int_equal(a.step, 200);
    assert_true(a.paused);
    act.single_step = 0;
    act.speed = 1;
    viz_app_update(&a, &act, 0.0, 100000);
    assert_int_equal(a.speed, viz_speed_step(VIZ_SPEED_DEFAULT, 1));
    act.speed = 0;
    act.toggle_trails = act.toggle_help = 1;
    viz_app_update(&a, &act, 0.0, 100000);
    assert_false(a.trails);
    assert_true(a.help);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

static void test_trails(void **state)
{
    (void)state;
    const int n = 3, h = 100;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_CHARGED, n, h);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 4, &st, err), VIZ_OK);
    assert_int_equal(a.trail[0].count, 1);
    viz_app_advance(&a, 5 * VIZ_TRAIL_EVERY + 3);
    assert_int_equal(a.trail[0].count, 6);
    assert_int_equal(a.trail[1].count, 6);
    viz_app_advance(&a, VIZ_TRAIL_EVERY - 3);
    const float *p = viz_trail_point(&a.trail[0], n, 0, 2);
    assert_non_null(p);
    for (int c = 0; c < 3; c++)
        assert_float_equal(p[c], (float)a.truth.x[c * n + 2], 0.0f);
    assert_null(viz_trail_point(&a.trail[0], n, 7, 0));
    assert_null(viz_trail_point(&a.trail[0], n, 0, n));
    /* The ring keeps the newest VIZ_TRAIL_LEN points. */
    viz_app_advance(&a, (long)VIZ_TRAIL_EVERY * VIZ_TRAIL_LEN * 2);
    assert_int_equal(a.trail[0].count, VIZ_TRAIL_LEN);
    p = viz_trail_point(&a.trail[0], n, 0, 1);
    for (int c = 0; c < 3; c++)
        assert_float_equal(p[c], (float)a.truth.x[c * n + 1], 0.0f);
    assert_non_null(viz_trail_point(&a.trail[0], n, VIZ_TRAIL_LEN - 1, 1));
    assert_null(viz_trail_point(&a.trail[0], n, VIZ_TRAIL_LEN, 1));
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

static void test_reset_and_hud(void **state)
{
    (void)state;
    const int n = 5, h = 100;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_CHARGED, n, h);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 2, &st, err), VIZ_OK);
    viz_app_advance(&a, 350);
    a.paused = 1;
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, "step-charged5.ckpt");
    assert_non_null(strstr(hud.info[0], "charged"));
    assert_non_null(strstr(hud.info[0], "5 bodies"));
    assert_non_null(strstr(hud.info[1], "step 350"));
    assert_non_null(strstr(hud.info[1], "PAUSED"));
    assert_non_null(strstr(hud.sub[1], "step-charged5.ckpt"));
    assert_int_equal(hud.field, 0);
    assert_true(hud.help_lines > 5);
    assert_int_equal(viz_app_reset(&a, SIM_DYNAMIC, 8, NULL, err), VIZ_OK);
    assert_int_equal(a.step, 0);
    assert_int_equal(a.kind, SIM_DYNAMIC);
    assert_int_equal(a.n, n);
    assert_int_equal(a.hist_count, 1);
    assert_true(a.paused); /* settings survive a reset */
    viz_hud_compose(&hud, &a, NULL);
    assert_int_equal(hud.field, 2);
    assert_non_null(strstr(hud.info[2], "B ="));
    struct sim_system ref;
    assert_int_equal(sim_system_init(&ref, SIM_DYNAMIC, n), SIM_OK);
    sim_initial_state(&ref, 8);
    assert_memory_equal(a.truth.x, ref.x, sizeof(double) * 3 * n);
    sim_system_free(&ref);
    /* A bad setting is refused with a message, not a crash. */
    assert_int_not_equal(viz_app_reset(&a, 9, 1, NULL, err), VIZ_OK);
    assert_true(strlen(err) > 0);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

static void test_position_mse(void **state)
{
    (void)state;
    double a[6] = {0, 0, 0, 0, 0, 0}, b[6] = {1, 0, 0, 0, 0, -2};
    assert_float_equal(viz_position_mse(2, a, b), 5.0 / 6.0, MSE_TOL);
    assert_float_equal(viz_position_mse(2, a, a), 0.0, 0.0);
}

/* ------------------------------------------------------------ the model library */

/* Save an untrained checkpoint of a task for the tests. */
static void save_model(const char *path, int task, int kind)
{
    struct cn_config c;
    cn_config_default(&c, task);
    struct cn_state s;
    char err[CN_ERRLEN];
    assert_int_equal(cn_state_init(&s, &c, err), CN_OK);
    cn_param_init(&c, s.param, 1);
    struct cn_meta meta = {.sim_kind = kind, .n_bodies = 5,
                          .horizon_steps = task == CN_TASK_STEP ? 100 : 1000};
    assert_int_equal(cn_ckpt_save(path, &s, &meta, 0, NULL, 0, err), CN_OK);
    cn_state_free(&s);
}

static void test_model_loading(void **state)
{
    (void)state;
    char dir[512], path[600], err[VIZ_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_viz"), 0);
    struct viz_model m;
    /* Missing file. */
    snprintf(path, sizeof path, "%s/missing.ckpt", dir);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_EMODEL);
    assert_non_null(strstr(err, path));
    assert_null(m.model);
    /* Not a checkpoint. */
    snprintf(path, sizeof path, "%s/garbage.ckpt", dir);
    FILE *f = fopen(path, "wb");
    for (int k = 0; k < 5000; k++)
        fputc((k * 31) & 0xff, f);
    fclose(f);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_EMODEL);
    assert_non_null(strstr(err, path));
    /* A frame-40 position model is not an integrator. */
    snprintf(path, sizeof path, "%s/pos.ckpt", dir);
    save_model(path, CN_TASK_POSITION, SIM_CHARGED);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_EMODEL);
    assert_non_null(strstr(err, "step model"));
    /* A step model loads, reports its setting and horizon, and steps. */
    snprintf(path, sizeof path, "%s/step.ckpt", dir);
    save_model(path, CN_TASK_STEP, SIM_STATIC);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_OK);
    assert_int_equal(m.sim_kind, SIM_STATIC);
    assert_int_equal(m.horizon_steps, 100);
    assert_int_equal(m.n_bodies, 5);
    struct viz_stepper st;
    viz_model_stepper(&m, &st);
    assert_int_equal(st.horizon, 100);
    struct viz_app a;
    assert_int_equal(viz_app_init(&a, SIM_STATIC, 7, 3, &st, err), VIZ_OK);
    viz_app_advance(&a, 300);
    assert_int_equal(a.hist_count, 4);
    viz_app_free(&a);
    viz_model_close(&m);
    assert_null(m.model);
    /* A truncated copy of it. */
    char cut[700];
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    FILE *in = fopen(path, "rb"), *out = fopen(cut, "wb");
    for (int k = 0; k < 1000; k++)
        fputc(fgetc(in), out);
    fclose(in);
    fclose(out);
    assert_int_equal(viz_model_open(&m, cut, err), VIZ_EMODEL);
    assert_non_null(strstr(err, cut));
    tfs_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perspective_maps_near_and_far),
        cmocka_unit_test(test_look_at_puts_target_ahead),
        cmocka_unit_test(test_mat4_mul_identity_and_order),
        cmocka_unit_test(test_camera_eye_and_projection),
        cmocka_unit_test(test_camera_rotate_and_clamp),
        cmocka_unit_test(test_camera_zoom),
        cmocka_unit_test(test_camera_fit_shows_every_body),
        cmocka_unit_test(test_camera_follow),
        cmocka_unit_test(test_layout_split_and_hidpi),
        cmocka_unit_test(test_input_press_edges),
        cmocka_unit_test(test_input_key_mapping),
        cmocka_unit_test(test_input_drag_and_wheel),
        cmocka_unit_test(test_speed_ladder),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_assets_and_default_model),
        cmocka_unit_test(test_truth_reproduces_reference_frames),
        cmocka_unit_test(test_exact_stepper_has_zero_error),
        cmocka_unit_test(test_shifted_stepper_error_and_interpolation),
        cmocka_unit_test(test_hermite),
        cmocka_unit_test(test_failing_stepper_freezes_learned_side),
        cmocka_unit_test(test_diverged_learned_state_is_caught),
        cmocka_unit_test(test_update_pause_step_speed),
        cmocka_unit_test(test_trails),
        cmocka_unit_test(test_reset_and_hud),
        cmocka_unit_test(test_position_mse),
        cmocka_unit_test(test_model_loading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
