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
/* Dataset frames are stored as float: a replayed position is the float of the double. */
#define FRAME_FLOAT_TOL 0.0f
/* A cubic between two frames 0.1 time units apart, with velocities half a kick behind: the
 * tangents are off by dt |a| / 2 <= 5e-4 (|a| of a few units away from close encounters), which
 * moves the midpoint by under 0.1 * 5e-4 / 4; higher derivatives add less. 1e-4 is above both. */
#define HERMITE_FRAME_TOL 1e-4f
/* Wall time per frame of the follow tests (60 frames a second) and simulation steps per frame
 * at the viewer's top speed, 20,000 steps a second. */
#define FOLLOW_DT (1.0f / 60.0f)
#define FOLLOW_STEPS_PER_FRAME 333

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
        viz_layout_compute(&l, sizes[k][0], sizes[k][1], sizes[k][2], sizes[k][3], 2, 0);
        assert_int_equal(l.fb_w, sizes[k][2]);
        assert_int_equal(l.view[0].w, l.view[1].w);
        assert_int_equal(l.view[0].h, sizes[k][3]);
        assert_int_equal(l.timeline.h, 0);
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
    viz_layout_compute(&lo, 1280, 720, 1280, 720, 2, 0);
    viz_layout_compute(&hi, 1280, 720, 2560, 1440, 2, 0);
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
    assert_int_equal(o.models, 0);
    assert_int_equal(o.baseline, 0);
    assert_null(o.data);
    assert_string_equal(o.split, "test");
    assert_int_equal(o.follow, 1);
    assert_int_equal(o.overlay, 0);
    assert_int_equal(o.energy, 0);
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
    assert_int_equal(o.models, 1);
    assert_string_equal(o.model[0], "m.ckpt");
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
        assert_int_equal(viz_app_init(&a, kind, n, 11, &st, NULL, NULL, 1, err), VIZ_OK);
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
    assert_int_equal(viz_app_init(&a, SIM_DYNAMIC, n, 3, &st, NULL, NULL, 1, err), VIZ_OK);
    assert_int_equal(a.panel[0].err.count, 1);
    assert_int_equal(t.calls, 1); /* one model step ahead from the start */
    viz_app_advance(&a, 10 * h + 17);
    assert_int_equal(a.panel[0].base, 10 * h);
    assert_int_equal(a.panel[0].err.count, 11);
    assert_int_equal(t.calls, 11);
    for (int k = 0; k < a.panel[0].err.count; k++) {
        assert_float_equal(a.panel[0].err.t[k], k * h * SIM_DT, TIME_TOL);
        assert_true(a.panel[0].err.y[k] == 0.0);
    }
    /* At a boundary both sides draw the same positions. */
    viz_app_advance(&a, h - 17);
    float *p0 = malloc(sizeof(float) * 3 * n), *p1 = malloc(sizeof(float) * 3 * n);
    viz_app_positions(&a, 0, p0);
    viz_app_positions(&a, 1, p1);
    assert_memory_equal(p0, p1, sizeof(float) * 3 * n);
    assert_int_equal(a.panel[0].ok, 1);
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
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 5, &st, NULL, NULL, 1, err), VIZ_OK);
    viz_app_advance(&a, h);
    /* Every coordinate off by 0.01: MSE 1e-4, up to rounding of O(1) positions. */
    assert_float_equal(a.panel[0].mse, 1e-4, MSE_TOL);
    assert_int_equal(a.panel[0].mse_step, h);
    /* The drawn learned positions run on without a jump into the next learned step. */
    float *before = malloc(sizeof(float) * 3 * n), *after = malloc(sizeof(float) * 3 * n);
    a.t = (double)(a.panel[0].base + h) - 0.01;
    viz_app_positions(&a, 1, before);
    viz_app_advance(&a, h);
    assert_int_equal(a.panel[0].base, 2 * h);
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
    assert_int_equal(viz_app_init(&a, SIM_STATIC, n, 9, &st, NULL, NULL, 1, err), VIZ_OK);
    viz_app_advance(&a, 2 * h);
    assert_int_equal(a.panel[0].ok, 1);
    viz_app_advance(&a, h); /* the fourth call fails */
    assert_int_equal(a.panel[0].ok, 0);
    assert_non_null(strstr(a.status, "test failure"));
    float *before = malloc(sizeof(float) * 3 * n), *after = malloc(sizeof(float) * 3 * n);
    viz_app_positions(&a, 1, before);
    long step = a.step;
    int hist = a.panel[0].err.count;
    viz_app_advance(&a, 5 * h + 3);
    viz_app_positions(&a, 1, after);
    assert_int_equal(a.step, step + 5 * h + 3); /* the truth runs on */
    assert_memory_equal(before, after, sizeof(float) * 3 * n);
    assert_int_equal(a.panel[0].err.count, hist);
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, 1);
    assert_non_null(strstr(hud.error[1], "stopped"));
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
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, 5, 1, &st, NULL, NULL, 1, err), VIZ_OK);
    assert_int_equal(a.panel[0].ok, 0);
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
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 2, &st, NULL, NULL, 1, err), VIZ_OK);
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
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 4, &st, NULL, NULL, 1, err), VIZ_OK);
    assert_int_equal(a.trail.count, 1);
    viz_app_advance(&a, 5 * VIZ_TRAIL_EVERY + 3);
    assert_int_equal(a.trail.count, 6);
    assert_int_equal(a.panel[0].trail.count, 6);
    viz_app_advance(&a, VIZ_TRAIL_EVERY - 3);
    const float *p = viz_trail_point(&a.trail, n, 0, 2);
    assert_non_null(p);
    for (int c = 0; c < 3; c++)
        assert_float_equal(p[c], (float)a.truth.x[c * n + 2], 0.0f);
    assert_null(viz_trail_point(&a.trail, n, 7, 0));
    assert_null(viz_trail_point(&a.trail, n, 0, n));
    /* The ring keeps the newest VIZ_TRAIL_LEN points. */
    viz_app_advance(&a, (long)VIZ_TRAIL_EVERY * VIZ_TRAIL_LEN * 2);
    assert_int_equal(a.trail.count, VIZ_TRAIL_LEN);
    p = viz_trail_point(&a.trail, n, 0, 1);
    for (int c = 0; c < 3; c++)
        assert_float_equal(p[c], (float)a.truth.x[c * n + 1], 0.0f);
    assert_non_null(viz_trail_point(&a.trail, n, VIZ_TRAIL_LEN - 1, 1));
    assert_null(viz_trail_point(&a.trail, n, VIZ_TRAIL_LEN, 1));
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
    const char *names[1] = {"ClofNet step-charged5.ckpt"};
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 2, &st, NULL, names, 1, err), VIZ_OK);
    viz_app_advance(&a, 350);
    a.paused = 1;
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, 1);
    assert_non_null(strstr(hud.info[0], "charged"));
    assert_non_null(strstr(hud.info[0], "5 bodies"));
    assert_non_null(strstr(hud.info[1], "step 350"));
    assert_non_null(strstr(hud.info[1], "PAUSED"));
    assert_non_null(strstr(hud.title[1], "step-charged5.ckpt"));
    assert_int_equal(hud.panels, 2);
    assert_int_equal(hud.beyond, 0);
    assert_int_equal(hud.field, 0);
    assert_true(hud.help_lines > 5);
    assert_int_equal(viz_app_reset(&a, SIM_DYNAMIC, 8, err), VIZ_OK);
    assert_int_equal(a.step, 0);
    assert_int_equal(a.kind, SIM_DYNAMIC);
    assert_int_equal(a.n, n);
    assert_int_equal(a.panel[0].err.count, 1);
    assert_true(a.paused); /* settings survive a reset */
    viz_hud_compose(&hud, &a, 0);
    assert_int_equal(hud.field, 2);
    assert_non_null(strstr(hud.info[1], "camera fixed"));
    assert_non_null(strstr(hud.info[2], "B ="));
    struct sim_system ref;
    assert_int_equal(sim_system_init(&ref, SIM_DYNAMIC, n), SIM_OK);
    sim_initial_state(&ref, 8);
    assert_memory_equal(a.truth.x, ref.x, sizeof(double) * 3 * n);
    sim_system_free(&ref);
    /* A bad setting is refused with a message, not a crash. */
    assert_int_not_equal(viz_app_reset(&a, 9, 1, err), VIZ_OK);
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
    /* A frame-40 position model loads as one (the viewer shows its frame-30 prediction). */
    snprintf(path, sizeof path, "%s/pos.ckpt", dir);
    save_model(path, CN_TASK_POSITION, SIM_CHARGED);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_OK);
    assert_int_equal(m.position, 1);
    assert_int_equal(m.horizon_steps, 1000);
    assert_string_equal(viz_model_arch_name(&m), "ClofNet");
    viz_model_close(&m);
    /* A step model loads, reports its setting and horizon, and steps. */
    snprintf(path, sizeof path, "%s/step.ckpt", dir);
    save_model(path, CN_TASK_STEP, SIM_STATIC);
    assert_int_equal(viz_model_open(&m, path, err), VIZ_OK);
    assert_int_equal(m.sim_kind, SIM_STATIC);
    assert_int_equal(m.position, 0);
    assert_int_equal(m.horizon_steps, 100);
    assert_int_equal(m.n_bodies, 5);
    struct viz_stepper st;
    viz_model_stepper(&m, &st);
    assert_int_equal(st.horizon, 100);
    struct viz_app a;
    assert_int_equal(viz_app_init(&a, SIM_STATIC, 7, 3, &st, NULL, NULL, 1, err), VIZ_OK);
    viz_app_advance(&a, 300);
    assert_int_equal(a.panel[0].err.count, 4);
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

/* ------------------------------------------------------------ following, layout of many panels */

/* 1 if every point of pts [count][3] projects inside a w x h viewport of the camera. */
static int all_in_view(const struct viz_camera *c, int count, const float *pts, int w, int h)
{
    struct viz_mat4 view, proj, vp;
    viz_camera_matrices(c, (float)w / (float)h, &view, &proj);
    viz_mat4_mul(&vp, &proj, &view);
    struct viz_rect r = {0, 0, w, h};
    for (int i = 0; i < count; i++) {
        float px[2];
        if (!viz_project(&vp, &r, pts + 3 * i, px))
            return 0;
        if (px[0] < 0.0f || px[0] > (float)w || px[1] < 0.0f || px[1] > (float)h)
            return 0;
    }
    return 1;
}

static void test_follow_keeps_every_body_in_view(void **state)
{
    (void)state;
    /* The narrow panels of a three-panel window: 426 x 676 pixels. */
    struct viz_layout l;
    viz_layout_compute(&l, 1280, 720, 1280, 720, 3, 1);
    int w = l.view[0].w, h = l.view[0].h;
    int sizes[2] = {5, 20};
    for (int si = 0; si < 2; si++)
        for (uint32_t seed = 1; seed <= 4; seed++) {
            int n = sizes[si];
            struct sim_system s;
            assert_int_equal(sim_system_init(&s, SIM_CHARGED, n), SIM_OK);
            sim_initial_state(&s, seed);
            /* Two panels: the truth and the constant-velocity extrapolation of its start, which
             * drifts away from it. */
            double *x0 = malloc(sizeof(double) * 3 * n), *v0 = malloc(sizeof(double) * 3 * n);
            memcpy(x0, s.x, sizeof(double) * 3 * n);
            memcpy(v0, s.v, sizeof(double) * 3 * n);
            float *pts = malloc(sizeof(float) * 6 * n);
            struct viz_camera c;
            viz_camera_init(&c);
            sim_axis_to_node(n, s.x, pts);
            sim_axis_to_node(n, s.x, pts + 3 * n);
            viz_camera_frame(&c, n, 2 * n, pts, VIZ_FRAME_MARGIN, (float)w / h);
            /* t = 100: 300 frames at the top speed, long after the bodies have flown apart. */
            long steps = 0;
            for (int frame = 0; frame < 300; frame++) {
                sim_advance(&s, FOLLOW_STEPS_PER_FRAME);
                steps += FOLLOW_STEPS_PER_FRAME;
                sim_axis_to_node(n, s.x, pts);
                for (int k = 0; k < 3; k++)
                    for (int i = 0; i < n; i++)
                        pts[3 * n + 3 * i + k] = (float)(x0[k * n + i] + v0[k * n + i] * steps * SIM_DT);
                float cen[3] = {0, 0, 0};
                for (int i = 0; i < n; i++)
                    for (int k = 0; k < 3; k++)
                        cen[k] += pts[3 * i + k] / n;
                c.yaw += 0.01f; /* the user may turn the view while it follows */
                viz_camera_track(&c, cen, 2 * n, pts, viz_body_radius(n), (float)w / h, FOLLOW_DT);
                if (!all_in_view(&c, 2 * n, pts, w, h))
                    fail_msg("%d bodies, seed %u: a body left the view at frame %d (t %.1f)", n, seed, frame,
                             steps * SIM_DT);
            }
            /* ... and the camera did not simply back off: it stands within VIZ_FIT_SLACK times the
             * distance the bodies need (they fly apart, so it never had to zoom in). */
            float r2 = 0.0f;
            for (int i = 0; i < 2 * n; i++) {
                float d2 = 0.0f;
                for (int k = 0; k < 3; k++)
                    d2 += (pts[3 * i + k] - c.target[k]) * (pts[3 * i + k] - c.target[k]);
                r2 = fmaxf(r2, d2);
            }
            float need = viz_camera_fit_distance(&c, sqrtf(r2) + viz_body_radius(n), (float)w / h);
            assert_true(c.distance <= VIZ_FIT_SLACK * need);
            free(x0), free(v0), free(pts);
            sim_system_free(&s);
        }
}

static void test_follow_does_not_pump(void **state)
{
    (void)state;
    /* A system that breathes: every body on a sphere whose radius swings between 1.0 and 1.4. */
    enum { N = 6 };
    float pts[3 * N];
    struct viz_camera c;
    viz_camera_init(&c);
    float cen[3] = {0, 0, 0}, settled = 0.0f;
    int changed = 0;
    for (int frame = 0; frame < 1200; frame++) {
        float r = 1.2f + 0.2f * sinf(6.2831853f * (float)frame / 120.0f); /* a 2-second cycle */
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 3; k++)
                pts[3 * i + k] = (i / 2 == k ? (i % 2 ? r : -r) : 0.0f);
        viz_camera_track(&c, cen, N, pts, 0.14f, 1.0f, FOLLOW_DT);
        assert_true(all_in_view(&c, N, pts, 400, 400));
        if (frame == 240)
            settled = c.distance;
        if (frame > 240 && c.distance != settled)
            changed++;
    }
    /* After the first swing out the distance holds still: no zooming in and out with the swing. */
    assert_int_equal(changed, 0);
    /* A system that then shrinks for good is zoomed in on, towards VIZ_FIT_AIM times what it needs. */
    for (int i = 0; i < 3 * N; i++)
        pts[i] *= 0.1f;
    for (int frame = 0; frame < 600; frame++)
        viz_camera_track(&c, cen, N, pts, 0.14f, 1.0f, FOLLOW_DT);
    float need = viz_camera_fit_distance(&c, 0.14f + 0.14f, 1.0f);
    assert_true(c.distance < VIZ_FIT_SLACK * need);
    assert_true(c.distance >= need);
}

static void test_layout_many_panels(void **state)
{
    (void)state;
    for (int panels = 1; panels <= VIZ_MAX_PANELS; panels++) {
        struct viz_layout l;
        viz_layout_compute(&l, 1280, 720, 1280, 720, panels, 1);
        assert_int_equal(l.panels, panels);
        assert_true(l.timeline.h > 0);
        assert_int_equal(l.timeline.y, 0);
        assert_int_equal(l.timeline.w, 1280);
        for (int k = 0; k < panels; k++) {
            assert_int_equal(l.view[k].w, l.view[0].w);
            assert_int_equal(l.view[k].y, l.timeline.h); /* above the timeline */
            assert_int_equal(l.view[k].y + l.view[k].h, 720);
            assert_int_equal(l.view[k].x % 2, 0);
            assert_true(l.view[k].x + l.view[k].w <= 1280);
            if (k > 0)
                assert_true(l.view[k].x >= l.view[k - 1].x + l.view[k - 1].w + 1);
        }
        const struct viz_rect *last = &l.view[panels - 1];
        assert_true(l.plot.x >= last->x && l.plot.x + l.plot.w <= last->x + last->w);
        assert_true(l.plot.y >= l.timeline.h && l.plot.w > 0 && l.plot.h > 0);
        /* Panels use the width: at most a divider and rounding per panel left over. */
        assert_true(panels * l.view[0].w >= 1280 - panels * (l.gap + 2));
    }
}

static void test_new_keys_and_options(void **state)
{
    (void)state;
    assert_true(press(VIZ_KEY_F).toggle_follow);
    assert_true(press(VIZ_KEY_G).toggle_overlay);
    assert_true(press(VIZ_KEY_E).toggle_energy);
    assert_int_equal(press(VIZ_KEY_N).trajectory, 1);
    assert_int_equal(press(VIZ_KEY_P).trajectory, -1);
    assert_true(press(VIZ_KEY_LEFT).step_back);
    assert_false(press(VIZ_KEY_F).toggle_overlay);
    struct viz_options o;
    char err[VIZ_ERRLEN];
    assert_int_equal(parse(&o, err, "--model", "a.ckpt", "--model", "b.ckpt", "--model=c.ckpt", "--baseline",
                           "--overlay", "--energy", "--no-follow", "--data", "d", "--split", "valid", "--index",
                           "12", "--start", "30", "--loop", "4.9", NULL),
                     VIZ_OK);
    assert_int_equal(o.models, 3);
    assert_string_equal(o.model[2], "c.ckpt");
    assert_true(o.baseline && o.overlay && o.energy);
    assert_int_equal(o.follow, 0);
    assert_string_equal(o.data, "d");
    assert_string_equal(o.split, "valid");
    assert_int_equal(o.index, 12);
    assert_int_equal(o.start, 30);
    assert_float_equal(o.loop, 4.9, 0.0);
    const char *bad[][9] = {
        {"--model", "a", "--model", "b", "--model", "c", "--model", "d", NULL},
        {"--split", "test2", "--data", "d", NULL}, {"--index", "3", NULL}, {"--start", "2", NULL},
        {"--split", "valid", NULL}, {"--loop", "0", NULL}, {"--loop", "x", NULL},
        {"--data", "d", "--sim", "static", NULL}, {"--data", "d", "--bodies", "20", NULL},
        {"--baseline=1", NULL}, {"--index", "-1", "--data", "d", NULL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *argv[10] = {"nbody-view"};
        int argc = 1;
        for (int j = 0; bad[k][j]; j++)
            argv[argc++] = (char *)bad[k][j];
        err[0] = '\0';
        if (viz_options_parse(&o, argc, argv, err) != VIZ_EARG)
            fail_msg("accepted: %s %s", bad[k][0], bad[k][1] ? bad[k][1] : "");
        assert_true(strlen(err) > 10);
    }
    for (const char *flag = "--baseline"; flag; flag = NULL)
        assert_non_null(strstr(viz_usage(), flag));
    static const char *const documented[] = {"--data", "--split", "--index", "--start", "--loop", "--overlay",
                                             "--energy", "--no-follow", "--baseline"};
    for (size_t k = 0; k < sizeof documented / sizeof documented[0]; k++)
        assert_non_null(strstr(viz_usage(), documented[k]));
}

static void test_shipped_models(void **state)
{
    (void)state;
    char dir[512], models[600], path[700], found[3][1024];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_viz_shipped"), 0);
    snprintf(models, sizeof models, "%s/models", dir);
    assert_int_equal(mkdir(models, 0777), 0);
    assert_int_equal(viz_shipped_models(dir, SIM_CHARGED, found, 3), 0);
    snprintf(path, sizeof path, "%s/egnn-step-charged5.ckpt", models);
    assert_int_equal(tfs_write_file(path, "x", 1), 0);
    assert_int_equal(viz_shipped_models(dir, SIM_CHARGED, found, 3), 1);
    assert_string_equal(found[0], path);
    snprintf(path, sizeof path, "%s/step-charged5.ckpt", models);
    assert_int_equal(tfs_write_file(path, "x", 1), 0);
    /* ClofNet first, then EGNN: truth | ClofNet | EGNN. */
    assert_int_equal(viz_shipped_models(dir, SIM_CHARGED, found, 3), 2);
    assert_string_equal(found[0], path);
    assert_non_null(strstr(found[1], "/models/egnn-step-charged5.ckpt"));
    assert_int_equal(viz_shipped_models(dir, SIM_STATIC, found, 3), 0);
    assert_int_equal(viz_shipped_models(dir, SIM_CHARGED, found, 1), 1);
    tfs_remove_tree(dir);
}

/* ------------------------------------------------------------ several panels, ring, replay */

static void test_baseline_stepper(void **state)
{
    (void)state;
    struct viz_stepper st;
    viz_baseline_stepper(&st);
    assert_int_equal(st.horizon, VIZ_BASELINE_HORIZON);
    double x[6] = {0, 1, 2, 3, 4, 5}, v[6] = {1, -1, 0.5, 2, 0, -3}, q[2] = {1, -1};
    char err[VIZ_ERRLEN];
    assert_int_equal(st.step(st.ctx, 2, q, x, v, err), 0);
    double t = VIZ_BASELINE_HORIZON * SIM_DT;
    double want[6] = {t, 1 - t, 2 + 0.5 * t, 3 + 2 * t, 4, 5 - 3 * t};
    for (int k = 0; k < 6; k++)
        assert_float_equal(x[k], want[k], MSE_TOL);
    assert_float_equal(v[3], 2.0, 0.0);
}

static void test_three_panels(void **state)
{
    (void)state;
    const int n = 5, h = 100;
    struct test_stepper exact, shifted;
    struct viz_stepper st[3];
    stepper_make(&exact, &st[0], SIM_CHARGED, n, h);
    stepper_make(&shifted, &st[2], SIM_CHARGED, n, h);
    shifted.shift = 0.01;
    viz_baseline_stepper(&st[1]);
    const char *names[3] = {"exact", "baseline", "shifted"};
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 7, st, NULL, names, 3, err), VIZ_OK);
    assert_int_equal(a.learned, 3);
    viz_app_advance(&a, h);
    /* One model step: the shifted panel is off by 0.01 in every coordinate. */
    assert_float_equal(a.panel[2].mse, 1e-4, MSE_TOL);
    float *p0 = malloc(sizeof(float) * 3 * n), *p2 = malloc(sizeof(float) * 3 * n);
    viz_app_positions(&a, 1, p0);
    viz_app_positions(&a, 3, p2);
    for (int k = 0; k < 3 * n; k++)
        assert_float_equal(p2[k] - p0[k], 0.01f, CONTINUITY_TOL);
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, 1);
    assert_int_equal(hud.panels, 4);
    assert_string_equal(hud.title[2], "baseline");
    assert_non_null(strstr(hud.error[3], "1.000e-04"));
    viz_app_advance(&a, 9 * h);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(a.panel[k].err.count, 11);
        assert_int_equal(a.panel[k].energy.count, 11);
        assert_int_equal(a.panel[k].base, 10 * h);
    }
    assert_true(a.panel[0].mse == 0.0);
    assert_true(a.panel[1].mse > 1e-4); /* x + v t is not the dynamics */
    /* The exact panel's energy is the truth's, sample for sample. */
    assert_int_equal(a.energy.count, 11);
    for (int k = 0; k < 11; k++) {
        assert_float_equal(a.panel[0].energy.t[k], a.energy.t[k], TIME_TOL);
        assert_true(a.panel[0].energy.y[k] == a.energy.y[k]);
    }
    free(p0), free(p2);
    viz_app_free(&a);
    sim_system_free(&exact.sys);
    sim_system_free(&shifted.sys);
}

static void test_ring_seek_and_step_back(void **state)
{
    (void)state;
    const int n = 4, h = 100;
    struct test_stepper t;
    struct viz_stepper st;
    stepper_make(&t, &st, SIM_DYNAMIC, n, h);
    t.shift = 0.001;
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_DYNAMIC, n, 5, &st, NULL, NULL, 1, err), VIZ_OK);
    size_t bytes = sizeof(double) * 3 * n;
    double *x500 = malloc(bytes), *l500 = malloc(bytes), *x1500 = malloc(bytes), *l1500 = malloc(bytes);
    viz_app_advance(&a, 500);
    memcpy(x500, a.truth.x, bytes);
    memcpy(l500, a.panel[0].x0, bytes);
    viz_app_advance(&a, 1000);
    memcpy(x1500, a.truth.x, bytes);
    memcpy(l1500, a.panel[0].x0, bytes);
    long first, last;
    assert_int_equal(viz_app_ring_range(&a, &first, &last), 1);
    assert_int_equal(first, 0);
    assert_int_equal(last, 1500);
    /* Back to step 550: the snapshot at 500, exactly as it was. */
    assert_int_equal(viz_app_seek(&a, 550), VIZ_OK);
    assert_int_equal(a.step, 500);
    assert_memory_equal(a.truth.x, x500, bytes);
    assert_memory_equal(a.panel[0].x0, l500, bytes);
    assert_int_equal(a.panel[0].base, 500);
    int curve = a.panel[0].err.count;
    /* Running on reproduces the same future, and the curves are not doubled. */
    viz_app_advance(&a, 1000);
    assert_memory_equal(a.truth.x, x1500, bytes);
    assert_memory_equal(a.panel[0].x0, l1500, bytes);
    assert_int_equal(a.panel[0].err.count, curve);
    /* Left: one snapshot back, paused. */
    struct viz_actions act;
    memset(&act, 0, sizeof act);
    act.set_kind = -1;
    act.step_back = 1;
    viz_app_update(&a, &act, 0.1, 100000);
    assert_true(a.paused);
    assert_int_equal(a.step, 1400);
    viz_app_update(&a, &act, 0.1, 100000);
    assert_int_equal(a.step, 1300);
    /* Nothing before the start. */
    assert_int_equal(viz_app_seek(&a, -5), VIZ_EARG);
    free(x500), free(l500), free(x1500), free(l1500);
    viz_app_free(&a);
    sim_system_free(&t.sys);
}

/* A dataset of `count` trajectories made with the simulator, as nbody-gen stores it (floats here). */
static void make_dataset(struct viz_dataset *d, int kind, int n, int count, int frames)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "memory");
    snprintf(d->split, sizeof d->split, "test");
    d->kind = kind, d->n = n, d->count = count, d->frames = frames;
    size_t per = (size_t)frames * n * 3;
    d->loc = malloc(count * per * sizeof(float));
    d->vel = malloc(count * per * sizeof(float));
    d->q = malloc((size_t)count * n * sizeof(float));
    double *loc = malloc(per * sizeof(double)), *vel = malloc(per * sizeof(double));
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, kind, n), SIM_OK);
    for (int j = 0; j < count; j++) {
        sim_initial_state(&s, 100 + j);
        for (int i = 0; i < n; i++)
            d->q[j * n + i] = (float)s.q[i];
        assert_int_equal(sim_run(&s, VIZ_FRAME_STEPS * (frames + 1), VIZ_FRAME_STEPS, loc, vel), SIM_OK);
        for (int f = 0; f < frames; f++) {
            sim_axis_to_node(n, loc + (size_t)f * 3 * n, d->loc + j * per + (size_t)f * 3 * n);
            sim_axis_to_node(n, vel + (size_t)f * 3 * n, d->vel + j * per + (size_t)f * 3 * n);
        }
    }
    sim_system_free(&s);
    free(loc), free(vel);
}

static void test_replay_plays_the_frames(void **state)
{
    (void)state;
    const int n = 5, frames = 12;
    struct viz_dataset d;
    make_dataset(&d, SIM_STATIC, n, 3, frames);
    struct viz_stepper st;
    viz_baseline_stepper(&st);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_STATIC, n, 1, &st, NULL, NULL, 1, err), VIZ_OK);
    assert_int_equal(viz_app_replay(&a, &d, 2, 4, err), VIZ_OK);
    assert_int_equal(a.step, VIZ_FRAME_STEPS * 5);
    assert_int_equal(a.horizon_step, VIZ_FRAME_STEPS * frames);
    float *p = malloc(sizeof(float) * 3 * n);
    size_t per = (size_t)frames * n * 3;
    for (int f = 4; f < frames; f++) {
        const float *want = d.loc + 2 * per + (size_t)f * n * 3;
        viz_app_positions(&a, 0, p);
        for (int k = 0; k < 3 * n; k++)
            assert_float_equal(p[k], want[k], FRAME_FLOAT_TOL);
        /* The learned panel started from the frame of the start. */
        if (f == 4) {
            viz_app_positions(&a, 1, p);
            for (int k = 0; k < 3 * n; k++)
                assert_float_equal(p[k], want[k], FRAME_FLOAT_TOL);
        }
        if (f + 1 < frames) {
            /* Half way the truth is interpolated between the frames: close to the simulator's
             * own state there. */
            struct sim_system m;
            assert_int_equal(sim_system_init(&m, SIM_STATIC, n), SIM_OK);
            sim_node_to_axis(n, want, m.x);
            sim_node_to_axis(n, d.vel + 2 * per + (size_t)f * n * 3, m.v);
            for (int i = 0; i < n; i++)
                m.q[i] = d.q[2 * n + i];
            for (int k = 0; k < VIZ_FRAME_STEPS / 2; k++) {
                sim_kick(&m);
                sim_drift(&m);
            }
            viz_app_advance(&a, VIZ_FRAME_STEPS / 2);
            viz_app_positions(&a, 0, p);
            float *mid = malloc(sizeof(float) * 3 * n);
            sim_axis_to_node(n, m.x, mid);
            for (int k = 0; k < 3 * n; k++)
                assert_float_equal(p[k], mid[k], HERMITE_FRAME_TOL);
            free(mid);
            sim_system_free(&m);
            viz_app_advance(&a, VIZ_FRAME_STEPS / 2);
        }
    }
    /* Past the last frame the simulator runs on from it, exactly as the generator would. */
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_STATIC, n), SIM_OK);
    sim_node_to_axis(n, d.loc + 2 * per + (size_t)(frames - 1) * n * 3, s.x);
    sim_node_to_axis(n, d.vel + 2 * per + (size_t)(frames - 1) * n * 3, s.v);
    for (int i = 0; i < n; i++)
        s.q[i] = d.q[2 * n + i];
    for (int k = 0; k < 250; k++) {
        sim_kick(&s);
        sim_drift(&s);
    }
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, 1);
    assert_int_equal(hud.beyond, 0);
    viz_app_advance(&a, 250);
    assert_memory_equal(a.truth.x, s.x, sizeof(double) * 3 * n);
    viz_hud_compose(&hud, &a, 1);
    assert_int_equal(hud.beyond, 1);
    assert_non_null(strstr(hud.timeline, "BEYOND"));
    assert_non_null(strstr(hud.sub[0], "#2"));
    /* Seeking back into the data replays its frames again. */
    assert_int_equal(viz_app_seek(&a, VIZ_FRAME_STEPS * 7), VIZ_OK);
    viz_app_positions(&a, 0, p);
    for (int k = 0; k < 3 * n; k++)
        assert_float_equal(p[k], d.loc[2 * per + (size_t)6 * n * 3 + k], FRAME_FLOAT_TOL);
    /* Out of range: a message, no crash. */
    assert_int_equal(viz_app_replay(&a, &d, 3, 0, err), VIZ_EARG);
    assert_non_null(strstr(err, "trajectory 3"));
    assert_int_equal(viz_app_replay(&a, &d, 0, frames - 1, err), VIZ_EARG);
    assert_non_null(strstr(err, "start frame"));
    sim_system_free(&s);
    free(p);
    viz_app_free(&a);
    viz_dataset_free(&d);
}

/* viz_stepper of a "position model" that predicts every body 0.5 further along x. */
static int shift_x_step(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN])
{
    (void)ctx, (void)q, (void)v, (void)err;
    for (int i = 0; i < n; i++)
        x[i] += 0.5;
    return 0;
}

static void test_position_model_panel(void **state)
{
    (void)state;
    const int n = 5, frames = 49;
    struct viz_dataset d;
    make_dataset(&d, SIM_CHARGED, n, 1, frames);
    struct viz_stepper st = {shift_x_step, NULL, 1000};
    int position = 1;
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, n, 1, &st, &position, NULL, 1, err), VIZ_OK);
    assert_int_equal(viz_app_replay(&a, &d, 0, 20, err), VIZ_OK);
    assert_false(a.panel[0].predicted);
    assert_true(isnan(a.panel[0].mse));
    viz_app_advance(&a, VIZ_FRAME_STEPS * 10); /* frame 30 */
    assert_true(a.panel[0].predicted);
    size_t per = (size_t)frames * n * 3;
    const float *f30 = d.loc + (size_t)30 * n * 3, *f40 = d.loc + (size_t)40 * n * 3;
    for (int i = 0; i < n; i++)
        assert_float_equal(a.panel[0].pred[i], (double)f30[3 * i] + 0.5, MSE_TOL);
    (void)per;
    viz_app_advance(&a, VIZ_FRAME_STEPS * 10); /* frame 40: scored */
    double want = 0.0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            double e = (double)f40[3 * i + k] - ((double)f30[3 * i + k] + (k == 0 ? 0.5 : 0.0));
            want += e * e;
        }
    want /= 3.0 * n;
    assert_float_equal(a.panel[0].mse, want, MSE_TOL);
    assert_int_equal(a.panel[0].err.count, 1);
    struct viz_hud hud;
    viz_hud_compose(&hud, &a, 1);
    assert_non_null(strstr(hud.error[1], "frame-40 MSE"));
    /* Started after frame 30 there is nothing to predict. */
    assert_int_equal(viz_app_replay(&a, &d, 0, 35, err), VIZ_OK);
    viz_app_advance(&a, VIZ_FRAME_STEPS * 10);
    assert_false(a.panel[0].predicted);
    viz_hud_compose(&hud, &a, 1);
    assert_non_null(strstr(hud.error[1], "no prediction"));
    viz_app_free(&a);
    viz_dataset_free(&d);
}

static void test_dataset_load_errors(void **state)
{
    (void)state;
    struct viz_dataset d;
    char err[VIZ_ERRLEN];
    assert_int_not_equal(viz_dataset_load(&d, "/nonexistent/data", "test", err), VIZ_OK);
    assert_non_null(strstr(err, "/nonexistent/data"));
    char dir[512], path[700];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_viz_data"), 0);
    assert_int_not_equal(viz_dataset_load(&d, dir, "test", err), VIZ_OK);
    assert_non_null(strstr(err, dir));
    snprintf(path, sizeof path, "%s/loc_train_charged5_initvel1small.npy", dir);
    assert_int_equal(tfs_write_file(path, "not a numpy file", 16), 0);
    assert_int_not_equal(viz_dataset_load(&d, dir, "test", err), VIZ_OK);
    assert_non_null(strstr(err, "cannot replay dataset"));
    assert_int_equal(viz_dataset_load(&d, dir, "nope", err), VIZ_EARG);
    tfs_remove_tree(dir);
}

static void test_timeline_mapping(void **state)
{
    (void)state;
    struct viz_stepper st;
    viz_baseline_stepper(&st);
    struct viz_app a;
    char err[VIZ_ERRLEN];
    assert_int_equal(viz_app_init(&a, SIM_CHARGED, 5, 1, &st, NULL, NULL, 1, err), VIZ_OK);
    viz_app_advance(&a, 1200);
    struct viz_layout l;
    viz_layout_compute(&l, 1280, 720, 1280, 720, 2, 1);
    double t0, t1;
    viz_timeline_span(&a, &t0, &t1);
    assert_float_equal(t0, 0.0, 0.0);
    assert_float_equal(t1, 1.1 * VIZ_HORIZON_STEPS * SIM_DT, TIME_TOL);
    float x0, x1;
    viz_timeline_bar(&l, &x0, &x1);
    assert_true(x0 >= 0.0f && x1 <= 1280.0f && x1 > x0 + 100.0f);
    assert_int_equal(viz_timeline_step(&a, &l, x0), 0);
    assert_int_equal(viz_timeline_step(&a, &l, x0 - 50.0f), 0);
    assert_int_equal(viz_timeline_step(&a, &l, x1), (long)(1.1 * VIZ_HORIZON_STEPS + 0.5));
    long mid = viz_timeline_step(&a, &l, 0.5f * (x0 + x1));
    assert_true(labs(mid - (long)(0.55 * VIZ_HORIZON_STEPS)) <= 2);
    /* Past the horizon the span grows with the time shown. */
    viz_app_advance(&a, 10000);
    viz_timeline_span(&a, &t0, &t1);
    assert_float_equal(t1, a.step * SIM_DT, TIME_TOL);
    viz_app_free(&a);
}

/* The plot legend tells two panels of one architecture apart by their files, and otherwise
 * names each panel by its first word. */
static void test_legend_names(void **state)
{
    (void)state;
    struct viz_app a;
    memset(&a, 0, sizeof a);
    a.learned = 3;
    snprintf(a.panel[0].name, sizeof a.panel[0].name, "ClofNet step-charged5.ckpt");
    snprintf(a.panel[1].name, sizeof a.panel[1].name, "ClofNet torch.ckpt");
    snprintf(a.panel[2].name, sizeof a.panel[2].name, "EGNN egnn-step-charged5.ckpt");
    char nm[24];
    viz_legend_name(&a, 0, nm, sizeof nm);
    assert_string_equal(nm, "truth");
    viz_legend_name(&a, 1, nm, sizeof nm);
    assert_string_equal(nm, "step-charged5");
    viz_legend_name(&a, 2, nm, sizeof nm);
    assert_string_equal(nm, "torch");
    viz_legend_name(&a, 3, nm, sizeof nm);
    assert_string_equal(nm, "EGNN");
    viz_legend_name(&a, 1, nm, 5); /* cut to the buffer */
    assert_string_equal(nm, "step");
    a.learned = 1; /* one ClofNet panel: its first word */
    viz_legend_name(&a, 1, nm, sizeof nm);
    assert_string_equal(nm, "ClofNet");
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
        cmocka_unit_test(test_follow_keeps_every_body_in_view),
        cmocka_unit_test(test_follow_does_not_pump),
        cmocka_unit_test(test_layout_many_panels),
        cmocka_unit_test(test_new_keys_and_options),
        cmocka_unit_test(test_shipped_models),
        cmocka_unit_test(test_baseline_stepper),
        cmocka_unit_test(test_three_panels),
        cmocka_unit_test(test_ring_seek_and_step_back),
        cmocka_unit_test(test_replay_plays_the_frames),
        cmocka_unit_test(test_position_model_panel),
        cmocka_unit_test(test_dataset_load_errors),
        cmocka_unit_test(test_timeline_mapping),
        cmocka_unit_test(test_legend_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
