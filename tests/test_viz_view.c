/* test_viz_view.c: nbody-view end to end in a real OpenGL context under an Xvfb this test
 * starts itself: screenshots, recordings, and clear failures for bad models, paths and displays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plot.h"
#include "viz.h"
#include "tfs.h"

/* Longest a single nbody-view run may take (the slowest, 2000 steps under ASan, takes ~10 s). */
#define RUN_TIMEOUT_MS 120000
/* Image size of the test screenshots: small, so llvmpipe draws them quickly. */
#define SHOT_W 640
#define SHOT_H 360
/* Steps after which the learned side must visibly differ: 20 learned steps, t = 2. */
#define DIFF_STEPS "2000"
/* Pixels of each charge colour a half must show: a body at the default zoom covers ~150. */
#define MIN_COLOR_PIXELS 20
/* A pixel differs between the halves when a channel differs by more than this (antialiasing
 * noise is a few units; a moved body changes a channel by 100 or more). */
#define DIFF_CHANNEL 40
/* Pixels that must differ after DIFF_STEPS steps. A learned side that equals the simulator
 * still differs in up to 6 pixels (its trails are sampled from the interpolation); the shipped
 * charged model differs in 1354-5234 (seeds 1-5, 7, 11, 12 at 640 x 360). 200 is far above
 * the first and six times below the least of the second. */
#define MIN_DIFF_PIXELS 200

/* The charge colours the viewer documents (viz.h): VIZ_RGB_POSITIVE = (0.98, 0.42, 0.14),
 * orange, hue 20 degrees; VIZ_RGB_NEGATIVE = (0.20, 0.52, 1.00), blue, hue 216 degrees.
 * Lighting scales a body's colour (ambient 0.25 to full) and adds a white highlight, which
 * keeps the hue and lowers the saturation only at the highlight. A pixel counts as a charge
 * colour when its hue is within HUE_TOL of one of them, saturation >= MIN_SAT and value >=
 * MIN_VALUE. Grid, floor, backdrop (grey-blue, saturation < 0.4), field arrows (green 115,
 * violet 270 degrees) and text (white, pale yellow) fall in neither class. */
#define HUE_POSITIVE 20.0
#define HUE_NEGATIVE 216.0
/* Half the distance to the nearest other hue the viewer draws in a scene is ~50 degrees;
 * 12 keeps well clear of it while allowing for 8-bit rounding of dark pixels. */
#define HUE_TOL 12.0
#define MIN_SAT 0.5
#define MIN_VALUE 0.35

/* +1, -1 or 0: the charge colour an RGBA pixel shows. */
static int pixel_charge(const unsigned char *p)
{
    double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
    double mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    double mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (mx < MIN_VALUE || mx - mn < MIN_SAT * mx)
        return 0;
    double d = mx - mn, hue;
    if (mx == r)
        hue = 60.0 * fmod((g - b) / d + 6.0, 6.0);
    else if (mx == g)
        hue = 60.0 * ((b - r) / d + 2.0);
    else
        hue = 60.0 * ((r - g) / d + 4.0);
    if (fabs(hue - HUE_POSITIVE) <= HUE_TOL)
        return 1;
    if (fabs(hue - HUE_NEGATIVE) <= HUE_TOL)
        return -1;
    return 0;
}

static pid_t xvfb_pid = -1;
static char tmp_dir[512];

/* Start a private Xvfb on a free display (it picks one and tells us through -displayfd). */
static int start_xvfb(void **state)
{
    (void)state;
    if (tfs_mkdtemp(tmp_dir, sizeof tmp_dir, "test_viz_view") != 0) {
        fprintf(stderr, "cannot create a temporary folder: %s\n", strerror(errno));
        return -1;
    }
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    xvfb_pid = fork();
    if (xvfb_pid < 0)
        return -1;
    if (xvfb_pid == 0) {
        close(fds[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", fds[1]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("Xvfb", "Xvfb", "-displayfd", fd, "-screen", "0", "1280x1024x24", "-nolisten", "tcp", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[32] = "";
    size_t len = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    while (len < sizeof buf - 1 && !memchr(buf, '\n', len) && poll(&pfd, 1, 30000) > 0) {
        ssize_t got = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = '\0';
    }
    close(fds[0]);
    int display = -1;
    if (sscanf(buf, "%d", &display) != 1) {
        fprintf(stderr, "Xvfb did not start (is it installed? scripts/deps.sh installs it)\n");
        return -1;
    }
    char d[32];
    snprintf(d, sizeof d, ":%d", display);
    setenv("DISPLAY", d, 1);
    unsetenv("WAYLAND_DISPLAY");
    return 0;
}

/* Remove the temporary files, then stop our Xvfb. */
static int stop_xvfb(void **state)
{
    (void)state;
    tfs_remove_tree(tmp_dir);
    if (xvfb_pid > 0) {
        kill(xvfb_pid, SIGTERM);
        waitpid(xvfb_pid, NULL, 0);
    }
    return 0;
}

/* What a run of nbody-view did. */
struct run {
    int exited;   /* 1 if it exited (rather than died of a signal) */
    int code;     /* exit code, or the signal */
    char out[16384];
    char err[16384];
};

/* A whole (small) file into buf, cut to len - 1 bytes; "" if unreadable. */
static void slurp(const char *path, char *buf, size_t len)
{
    size_t n = 0;
    unsigned char *b = tfs_slurp(path, &n);
    snprintf(buf, len, "%s", b ? (const char *)b : "");
    free(b);
}

/* Flags of run_view. */
enum {
    RUN_NO_DISPLAY = 1,    /* hide DISPLAY and WAYLAND_DISPLAY from the viewer */
    RUN_NO_LEAK_CHECK = 2, /* no LeakSanitizer at exit (ASan builds) */
};

/* Run nbody-view with a NULL-terminated list of arguments. */
static void run_view(struct run *r, int flags, ...)
{
    char *argv[40] = {NBODY_VIEW};
    int argc = 1;
    va_list ap;
    va_start(ap, flags);
    char *a;
    while ((a = va_arg(ap, char *)) && argc < 39)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out_path[600], err_path[600];
    snprintf(out_path, sizeof out_path, "%s/.stdout", tmp_dir);
    snprintf(err_path, sizeof err_path, "%s/.stderr", tmp_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        if (flags & RUN_NO_DISPLAY) {
            unsetenv("DISPLAY");
            unsetenv("WAYLAND_DISPLAY");
        }
        if (flags & RUN_NO_LEAK_CHECK) {
            char opts[1024];
            const char *old = getenv("ASAN_OPTIONS");
            snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", old ? old : "", old && *old ? ":" : "");
            setenv("ASAN_OPTIONS", opts, 1);
        }
        execv(NBODY_VIEW, argv);
        _exit(127);
    }
    /* A viewer that never returns (say, an interactive window opened by mistake) fails the
     * test instead of hanging it. */
    int status = 0, waited = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && waited < RUN_TIMEOUT_MS) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        waited += 20;
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("nbody-view %s did not finish within %d s", argv[1], RUN_TIMEOUT_MS / 1000);
    }
    assert_int_equal(got, pid);
    r->exited = WIFEXITED(status);
    r->code = r->exited ? WEXITSTATUS(status) : WTERMSIG(status);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
}

/* The run exited (no crash) with the expected code; otherwise fail showing its stderr. */
static void assert_exit(const struct run *r, int code)
{
    if (!r->exited)
        fail_msg("nbody-view died of signal %d; stderr:\n%s", r->code, r->err);
    if (r->code != code)
        fail_msg("nbody-view exited with %d, expected %d; stderr:\n%s", r->code, code, r->err);
}

/* A path in the temporary folder. */
static const char *tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp_dir, name);
    return buf;
}

/* Pixels of each charge colour in columns [x0, x1) of an image. */
static void count_colors(const unsigned char *px, int w, int h, int x0, int x1, int *pos, int *neg)
{
    *pos = *neg = 0;
    for (int y = 0; y < h; y++)
        for (int x = x0; x < x1; x++) {
            int c = pixel_charge(px + ((size_t)y * w + x) * 4);
            *pos += c > 0;
            *neg += c < 0;
        }
}

/* Pixels that differ between the left and the right viewport of a screenshot. */
static int count_half_diff(const unsigned char *px, int w, int h)
{
    struct viz_layout l;
    viz_layout_compute(&l, w, h, w, h, 2, 0);
    int diff = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < l.view[0].w; x++) {
            const unsigned char *a = px + ((size_t)y * w + x) * 4;
            const unsigned char *b = px + ((size_t)y * w + x + l.view[1].x) * 4;
            int d = 0;
            for (int c = 0; c < 3; c++)
                d = abs(a[c] - b[c]) > d ? abs(a[c] - b[c]) : d;
            diff += d > DIFF_CHANNEL;
        }
    return diff;
}

/* Load a screenshot and check its size. */
static unsigned char *load_shot(const char *path)
{
    int w = 0, h = 0;
    unsigned char *px = NULL;
    char err[VIZ_ERRLEN];
    if (plot_png_read(path, &w, &h, &px, err) != SIM_OK)
        fail_msg("%s", err);
    assert_int_equal(w, SHOT_W);
    assert_int_equal(h, SHOT_H);
    return px;
}

/* Check that both halves show both charge colours. */
static void assert_both_colors_each_half(const unsigned char *px)
{
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 2, 0);
    for (int side = 0; side < 2; side++) {
        int pos, neg;
        count_colors(px, SHOT_W, SHOT_H, l.view[side].x, l.view[side].x + l.view[side].w, &pos, &neg);
        if (pos < MIN_COLOR_PIXELS || neg < MIN_COLOR_PIXELS)
            fail_msg("%s half: %d pixels of +1 colour, %d of -1 colour (need %d each)", side ? "right" : "left",
                     pos, neg, MIN_COLOR_PIXELS);
    }
}

static void test_screenshot_halves(void **state)
{
    (void)state;
    char shot0[700], shotn[700];
    struct run r;
    tmp_path(shot0, sizeof shot0, "start.png");
    tmp_path(shotn, sizeof shotn, "after.png");
    /* Seed 7 has charges of both signs (checked below through the colours). */
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--no-ui", "--size", "640x360", "--screenshot", shot0,
             "--steps", "0", NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot0);
    assert_both_colors_each_half(px);
    /* Same start, same drawing: the halves are identical before any step. */
    assert_int_equal(count_half_diff(px, SHOT_W, SHOT_H), 0);
    free(px);

    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--no-ui", "--size", "640x360", "--screenshot", shotn,
             "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    px = load_shot(shotn);
    assert_both_colors_each_half(px);
    int diff = count_half_diff(px, SHOT_W, SHOT_H);
    if (diff < MIN_DIFF_PIXELS)
        fail_msg("after %s steps only %d pixels differ between ground truth and learned", DIFF_STEPS, diff);
    free(px);
}

static void test_full_ui_screenshot(void **state)
{
    (void)state;
    char shot[700];
    struct run r;
    tmp_path(shot, sizeof shot, "ui.png");
    run_view(&r, 0, "--assets", ASSETS_DIR, "--sim", "dynamic", "--size", "640x360", "--screenshot", shot,
             "--steps", "500", NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot);
    /* The heading is drawn in the top-left corner of each half: white over the truth, the
     * panel's pale amber (0.98, 0.92, 0.55) over the learned one. */
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 2, 1);
    for (int side = 0; side < 2; side++) {
        int bright = 0;
        for (int y = 0; y < 30; y++)
            for (int x = l.view[side].x; x < l.view[side].x + 120; x++) {
                const unsigned char *p = px + ((size_t)y * SHOT_W + x) * 4;
                bright += p[0] > 230 && p[1] > 210 && p[2] > (side == 0 ? 230 : 110);
            }
        assert_true(bright > 50);
    }
    /* The timeline runs under the panels: its bar (grey) and the red part past the data horizon. */
    int red = 0, bar = 0;
    for (int y = SHOT_H - l.timeline.h; y < SHOT_H; y++)
        for (int x = 0; x < SHOT_W; x++) {
            const unsigned char *p = px + ((size_t)y * SHOT_W + x) * 4;
            red += p[0] > 150 && p[1] < 90 && p[2] < 90;
            bar += abs(p[0] - p[2]) < 30 && p[0] > 60 && p[0] < 140;
        }
    assert_true(red > 100);
    assert_true(bar > 500);
    free(px);
}

static void test_record_frames(void **state)
{
    (void)state;
    char dir[700], frame[800];
    struct run r;
    tmp_path(dir, sizeof dir, "frames");
    run_view(&r, 0, "--assets", ASSETS_DIR, "--size", "640x360", "--msaa", "0", "--speed", "2000", "--record", dir,
             "--steps", "390", NULL);
    assert_exit(&r, 0);
    /* 2000 steps/s at 60 frames/s: 33.3 steps a frame, 390 steps in 12 frames after the first. */
    int frames = 0;
    for (;; frames++) {
        snprintf(frame, sizeof frame, "%s/frame_%06d.png", dir, frames);
        if (access(frame, R_OK) != 0)
            break;
    }
    assert_int_equal(frames, 13);
    unsigned char *first, *last;
    snprintf(frame, sizeof frame, "%s/frame_%06d.png", dir, 0);
    first = load_shot(frame);
    snprintf(frame, sizeof frame, "%s/frame_%06d.png", dir, frames - 1);
    last = load_shot(frame);
    assert_memory_not_equal(first, last, (size_t)SHOT_W * SHOT_H * 4);
    free(first);
    free(last);
}

/* A model file that cannot be used gives one clear message, exit 1, and no screenshot. */
static void assert_model_refused(const char *model)
{
    char shot[700];
    struct run r;
    tmp_path(shot, sizeof shot, "refused.png");
    run_view(&r, 0, "--assets", ASSETS_DIR, "--model", model, "--screenshot", shot, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, "cannot load model"));
    assert_non_null(strstr(r.err, model));
    assert_int_equal(access(shot, F_OK), -1);
}

static void test_missing_model(void **state)
{
    (void)state;
    char model[700];
    assert_model_refused(tmp_path(model, sizeof model, "no-such-model.ckpt"));
}

static void test_corrupt_models(void **state)
{
    (void)state;
    char garbage[700], cut[700], shipped[700];
    tmp_path(garbage, sizeof garbage, "garbage.ckpt");
    FILE *f = fopen(garbage, "wb");
    assert_non_null(f);
    for (int k = 0; k < 100000; k++)
        fputc((k * 131 + 7) & 0xff, f);
    fclose(f);
    assert_model_refused(garbage);
    /* The first half of the shipped model. */
    viz_default_model(shipped, sizeof shipped, ASSETS_DIR, 0);
    FILE *in = fopen(shipped, "rb");
    if (!in)
        fail_msg("the shipped model %s is missing", shipped);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    tmp_path(cut, sizeof cut, "cut.ckpt");
    FILE *out = fopen(cut, "wb");
    for (long k = 0; k < size / 2; k++)
        fputc(fgetc(in), out);
    fclose(in);
    fclose(out);
    assert_model_refused(cut);
}

static void test_no_display(void **state)
{
    (void)state;
    struct run r;
    run_view(&r, RUN_NO_DISPLAY, "--assets", ASSETS_DIR, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, "no display"));
    assert_non_null(strstr(r.err, "--screenshot"));
}

/* Without any display a screenshot still renders, through SDL's offscreen EGL driver. */
static void test_screenshot_without_display(void **state)
{
    (void)state;
    struct run r;
    char shot[700];
    tmp_path(shot, sizeof shot, "nodisplay.png");
    /* LeakSanitizer's tracer crashes (SIGSEGV in StopTheWorld) on the threads Mesa's EGL
     * starts here; leaks of our code are checked by the Xvfb runs, which share every path
     * but the SDL driver. */
    run_view(&r, RUN_NO_DISPLAY | RUN_NO_LEAK_CHECK, "--assets", ASSETS_DIR, "--size", "640x360", "--no-ui",
             "--screenshot", shot, NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot);
    assert_both_colors_each_half(px);
    free(px);
}

static void test_unwritable_screenshot(void **state)
{
    (void)state;
    struct run r;
    char shot[700];
    tmp_path(shot, sizeof shot, "no/such/folder/x.png");
    run_view(&r, 0, "--assets", ASSETS_DIR, "--size", "320x180", "--screenshot", shot, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, shot));
}

/* Copy a file; 0 on success. */
static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int c, rc = in && out ? 0 : -1;
    while (!rc && (c = fgetc(in)) != EOF)
        fputc(c, out);
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

/* A shader that does not compile: one message with the file and the compiler's log, exit 1. */
static void test_broken_shader(void **state)
{
    (void)state;
    static const char *const files[] = {"sphere.vert", "line.vert", "line.frag", "ui.vert", "ui.frag"};
    char assets[700], shaders[760], from[900], to[900], model[700], shot[700];
    tmp_path(assets, sizeof assets, "broken-assets");
    snprintf(shaders, sizeof shaders, "%s/shaders", assets);
    assert_int_equal(mkdir(assets, 0777), 0);
    assert_int_equal(mkdir(shaders, 0777), 0);
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(from, sizeof from, "%s/shaders/%s", ASSETS_DIR, files[k]);
        snprintf(to, sizeof to, "%s/%s", shaders, files[k]);
        assert_int_equal(copy_file(from, to), 0);
    }
    snprintf(to, sizeof to, "%s/sphere.frag", shaders);
    FILE *f = fopen(to, "w");
    assert_non_null(f);
    fputs("#version 330 core\nout vec4 frag;\nvoid main() { frag = undefined_thing; }\n", f);
    fclose(f);
    viz_default_model(model, sizeof model, ASSETS_DIR, SIM_CHARGED);
    tmp_path(shot, sizeof shot, "broken.png");
    struct run r;
    run_view(&r, 0, "--assets", assets, "--model", model, "--size", "320x180", "--screenshot", shot, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, "sphere.frag"));
    assert_non_null(strstr(r.err, "does not compile"));
    assert_non_null(strstr(r.err, "undefined_thing")); /* the compiler's own log */
    assert_int_equal(access(shot, F_OK), -1);
}

static void test_command_line(void **state)
{
    (void)state;
    struct run r;
    run_view(&r, 0, "--bodies", "many", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "--bodies"));
    run_view(&r, 0, "--help", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "--screenshot"));
    run_view(&r, 0, "--assets", "/nonexistent", NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, "/nonexistent"));
}

static void test_setting_mismatch_is_reported(void **state)
{
    (void)state;
    struct run r;
    char shot[700], model[700];
    tmp_path(shot, sizeof shot, "mismatch.png");
    viz_default_model(model, sizeof model, ASSETS_DIR, SIM_CHARGED);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--sim", "static", "--model", model, "--size", "320x180",
             "--screenshot", shot, NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.err, "trained on the charged setting"));
    assert_int_equal(access(shot, R_OK), 0);
}

/* Pixels that differ between viewports a and b of a screenshot with the given layout. */
static int count_panel_diff(const unsigned char *px, const struct viz_layout *l, int a, int b)
{
    int diff = 0, w = l->fb_w;
    for (int y = 0; y < l->fb_h; y++)
        for (int x = 0; x < l->view[a].w; x++) {
            const unsigned char *p = px + ((size_t)y * w + x + l->view[a].x) * 4;
            const unsigned char *q = px + ((size_t)y * w + x + l->view[b].x) * 4;
            int d = 0;
            for (int c = 0; c < 3; c++)
                d = abs(p[c] - q[c]) > d ? abs(p[c] - q[c]) : d;
            diff += d > DIFF_CHANNEL;
        }
    return diff;
}

/* Every panel of a --no-ui screenshot shows bodies of both charge colours. */
static void assert_both_colors_each_panel(const unsigned char *px, const struct viz_layout *l)
{
    for (int k = 0; k < l->panels; k++) {
        int pos, neg;
        count_colors(px, l->fb_w, l->fb_h, l->view[k].x, l->view[k].x + l->view[k].w, &pos, &neg);
        if (pos < MIN_COLOR_PIXELS || neg < MIN_COLOR_PIXELS)
            fail_msg("panel %d: %d pixels of +1 colour, %d of -1 colour (need %d each)", k, pos, neg,
                     MIN_COLOR_PIXELS);
    }
}

/* Every pair of panels differs in at least MIN_DIFF_PIXELS pixels. */
static void assert_panels_differ(const unsigned char *px, const struct viz_layout *l)
{
    for (int a = 0; a < l->panels; a++)
        for (int b = a + 1; b < l->panels; b++) {
            int d = count_panel_diff(px, l, a, b);
            if (d < MIN_DIFF_PIXELS)
                fail_msg("panels %d and %d differ in only %d pixels", a, b, d);
        }
}

static void test_three_panels_screenshot(void **state)
{
    (void)state;
    char shot[700], model[700];
    struct run r;
    tmp_path(shot, sizeof shot, "three.png");
    viz_default_model(model, sizeof model, ASSETS_DIR, SIM_CHARGED);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--model", model, "--baseline", "--seed", "7", "--no-ui", "--size",
             "640x360", "--screenshot", shot, "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot);
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 3, 0);
    assert_both_colors_each_panel(px, &l);
    assert_panels_differ(px, &l);
    free(px);
}

/* Copy the shaders of the shipped assets into a new assets folder (with an empty models/). */
static void make_assets(const char *assets)
{
    static const char *const files[] = {"sphere.vert", "sphere.frag", "line.vert", "line.frag", "ui.vert", "ui.frag"};
    char dir[800], from[900], to[900];
    assert_int_equal(mkdir(assets, 0777), 0);
    snprintf(dir, sizeof dir, "%s/shaders", assets);
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(dir, sizeof dir, "%s/models", assets);
    assert_int_equal(mkdir(dir, 0777), 0);
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(from, sizeof from, "%s/shaders/%s", ASSETS_DIR, files[k]);
        snprintf(to, sizeof to, "%s/shaders/%s", assets, files[k]);
        assert_int_equal(copy_file(from, to), 0);
    }
}

/* With no --model and two shipped integrators for the setting, the viewer opens on truth |
 * ClofNet | EGNN. The EGNN file here is a copy of the ClofNet one (no EGNN integrator exists
 * yet), so the two learned panels must be identical pixel for pixel and unlike the truth. */
static void test_default_opens_every_shipped_integrator(void **state)
{
    (void)state;
    char assets[700], from[700], to[900], shot[700];
    tmp_path(assets, sizeof assets, "two-models");
    make_assets(assets);
    viz_default_model(from, sizeof from, ASSETS_DIR, SIM_CHARGED);
    snprintf(to, sizeof to, "%s/models/step-charged5.ckpt", assets);
    assert_int_equal(copy_file(from, to), 0);
    tmp_path(shot, sizeof shot, "default-one.png");
    struct run r;
    /* One shipped integrator: truth | ClofNet. */
    run_view(&r, 0, "--assets", assets, "--seed", "7", "--no-ui", "--size", "640x360", "--screenshot", shot,
             "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    unsigned char *one = load_shot(shot);
    snprintf(to, sizeof to, "%s/models/egnn-step-charged5.ckpt", assets);
    assert_int_equal(copy_file(from, to), 0);
    tmp_path(shot, sizeof shot, "default-two.png");
    run_view(&r, 0, "--assets", assets, "--seed", "7", "--no-ui", "--size", "640x360", "--screenshot", shot,
             "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot);
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 3, 0);
    assert_both_colors_each_panel(px, &l);
    assert_int_equal(count_panel_diff(px, &l, 1, 2), 0);
    int d = count_panel_diff(px, &l, 0, 1);
    if (d < MIN_DIFF_PIXELS)
        fail_msg("truth and learned panels differ in only %d pixels", d);
    /* ... and the window really has a third panel now. */
    assert_memory_not_equal(one, px, (size_t)SHOT_W * SHOT_H * 4);
    free(one);
    free(px);
}

static char data_dir[700];

/* A small dataset made by nbody-gen (once): 40 test trajectories of the charged setting. */
static const char *small_dataset(void)
{
    if (data_dir[0])
        return data_dir;
    tmp_path(data_dir, sizeof data_dir, "data");
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "'%s' --train 20 --valid 20 --test 40 --out '%s' --threads 1 >/dev/null 2>&1", NBODY_GEN,
             data_dir);
    if (system(cmd) != 0)
        fail_msg("nbody-gen failed: %s", cmd);
    return data_dir;
}

/* Trajectory `traj`, frame `frame` of the test split read straight from the .npy files. */
static void read_frame(const char *dir, int traj, int frame, double x[3][5], double q[5])
{
    char path[900], err[SIM_ERRLEN];
    struct sim_npy loc, chg;
    snprintf(path, sizeof path, "%s/loc_test_charged5_initvel1small.npy", dir);
    assert_int_equal(sim_npy_read(path, &loc, err), SIM_OK);
    snprintf(path, sizeof path, "%s/charges_test_charged5_initvel1small.npy", dir);
    assert_int_equal(sim_npy_read(path, &chg, err), SIM_OK);
    assert_int_equal(loc.ndim, 4);
    assert_int_equal(loc.shape[3], 5);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 5; i++)
            x[k][i] = loc.data[(((size_t)traj * loc.shape[1] + frame) * 3 + k) * 5 + i];
    for (int i = 0; i < 5; i++)
        q[i] = chg.data[(size_t)traj * 5 + i];
    sim_npy_free(&loc);
    sim_npy_free(&chg);
}

/* Replay from frame 20 of trajectory 3: each body of that frame, projected through the camera
 * the viewer frames a system with, lands on a pixel of its charge colour in every panel. */
static void test_replay_starts_from_the_frame(void **state)
{
    (void)state;
    const char *dir = small_dataset();
    const int traj = 3, frame = 20, n = 5;
    char shot[700];
    tmp_path(shot, sizeof shot, "replay0.png");
    struct run r;
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "3", "--start", "20", "--baseline", "--no-ui",
             "--no-trails", "--size", "640x360", "--screenshot", shot, "--steps", "0", NULL);
    assert_exit(&r, 0);
    unsigned char *px = load_shot(shot);
    double x[3][5], q[5];
    read_frame(dir, traj, frame, x, q);
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 3, 0);
    float pts[5][3];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            pts[i][k] = (float)x[k][i];
    struct viz_camera cam;
    viz_camera_init(&cam);
    float aspect = (float)l.view[0].w / (float)l.view[0].h;
    viz_camera_frame(&cam, n, n, &pts[0][0], VIZ_FRAME_MARGIN, aspect);
    struct viz_mat4 view, proj, vp;
    viz_camera_matrices(&cam, aspect, &view, &proj);
    viz_mat4_mul(&vp, &proj, &view);
    /* A body's disc is ~radius / (distance tan(fov / 2)) of half the panel height across. */
    float rad_px = viz_body_radius(n) / (cam.distance * tanf(0.5f * cam.fovy)) * 0.5f * (float)l.view[0].h;
    int checked = 0;
    for (int panel = 0; panel < 3; panel++)
        for (int i = 0; i < n; i++) {
            float p[2], o[2];
            assert_int_equal(viz_project(&vp, &l.view[panel], pts[i], p), 1);
            /* Skip a body another one may hide (their discs overlap on screen). */
            int hidden = 0;
            for (int j = 0; j < n; j++)
                if (j != i && viz_project(&vp, &l.view[panel], pts[j], o) &&
                    hypotf(o[0] - p[0], o[1] - p[1]) < 2.5f * rad_px)
                    hidden = 1;
            if (hidden)
                continue;
            int col = (int)lroundf(p[0]), row = SHOT_H - 1 - (int)lroundf(p[1]);
            assert_true(col >= 0 && col < SHOT_W && row >= 0 && row < SHOT_H);
            int c = pixel_charge(px + ((size_t)row * SHOT_W + col) * 4);
            if (c != (q[i] > 0 ? 1 : -1))
                fail_msg("panel %d, body %d (charge %+.0f) at pixel (%d, %d) shows colour class %d", panel, i, q[i],
                         col, row, c);
            checked++;
        }
    /* Most bodies stand apart at the default view. */
    assert_true(checked >= 6);
    free(px);

    /* 1000 steps on, truth, ClofNet and the baseline have each gone their own way. */
    tmp_path(shot, sizeof shot, "replay1000.png");
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "3", "--start", "20", "--baseline", "--no-ui",
             "--size", "640x360", "--screenshot", shot, "--steps", "1000", NULL);
    assert_exit(&r, 0);
    px = load_shot(shot);
    assert_both_colors_each_panel(px, &l);
    assert_panels_differ(px, &l);
    free(px);
}

/* A --data that cannot be replayed, or a model of another setting: one message, exit 1, no picture. */
static void assert_replay_refused(const char *what, const char *model, const char *data, const char *index)
{
    char shot[700];
    struct run r;
    tmp_path(shot, sizeof shot, "refused-replay.png");
    if (model)
        run_view(&r, 0, "--assets", ASSETS_DIR, "--data", data, "--index", index, "--model", model, "--size",
                 "320x180", "--screenshot", shot, NULL);
    else
        run_view(&r, 0, "--assets", ASSETS_DIR, "--data", data, "--index", index, "--size", "320x180",
                 "--screenshot", shot, NULL);
    assert_exit(&r, 1);
    if (!strstr(r.err, what))
        fail_msg("expected '%s' in the message, got:\n%s", what, r.err);
    /* One line: the message, nothing else. */
    assert_non_null(strchr(r.err, '\n'));
    assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
    assert_int_equal(access(shot, F_OK), -1);
}

static void test_replay_bad_inputs(void **state)
{
    (void)state;
    char missing[700], bad[700], path[900], model[700];
    tmp_path(missing, sizeof missing, "no-such-data");
    assert_replay_refused(missing, NULL, missing, "0");
    /* A folder whose loc file is not a .npy. */
    tmp_path(bad, sizeof bad, "bad-data");
    assert_int_equal(mkdir(bad, 0777), 0);
    static const char *const q[4] = {"loc", "vel", "edges", "charges"}, *const sp[3] = {"train", "valid", "test"};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++) {
            snprintf(path, sizeof path, "%s/%s_%s_charged5_initvel1small.npy", bad, q[a], sp[b]);
            assert_int_equal(tfs_write_file(path, "\x93NUMPY garbage", 14), 0);
        }
    assert_replay_refused("cannot replay dataset", NULL, bad, "0");
    const char *dir = small_dataset();
    /* A model of another setting than the dataset's. */
    viz_default_model(model, sizeof model, ASSETS_DIR, SIM_STATIC);
    assert_replay_refused("trained on the static setting", model, dir, "0");
    /* A trajectory the split does not have. */
    assert_replay_refused("--index 40", NULL, dir, "40");
}

/* Load two screenshots and count the pixels that differ by more than DIFF_CHANNEL. */
static int count_shot_diff(const char *a, const char *b)
{
    unsigned char *pa = load_shot(a), *pb = load_shot(b);
    int diff = 0;
    for (size_t k = 0; k < (size_t)SHOT_W * SHOT_H; k++) {
        int d = 0;
        for (int c = 0; c < 3; c++)
            d = abs(pa[4 * k + c] - pb[4 * k + c]) > d ? abs(pa[4 * k + c] - pb[4 * k + c]) : d;
        diff += d > DIFF_CHANNEL;
    }
    free(pa);
    free(pb);
    return diff;
}

/* --loop T restarts on the next trajectory after T time units: 1500 steps with --loop 1 from
 * trajectory 3 is trajectory 4 after 500 steps, pixel for pixel. */
static void test_loop_goes_to_the_next_trajectory(void **state)
{
    (void)state;
    const char *dir = small_dataset();
    char a[700], b[700];
    tmp_path(a, sizeof a, "loop.png");
    tmp_path(b, sizeof b, "next.png");
    struct run r;
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "3", "--loop", "1", "--no-ui", "--size",
             "640x360", "--screenshot", a, "--steps", "1500", NULL);
    assert_exit(&r, 0);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "4", "--no-ui", "--size", "640x360",
             "--screenshot", b, "--steps", "500", NULL);
    assert_exit(&r, 0);
    assert_int_equal(count_shot_diff(a, b), 0);
    /* Without --loop the same 1500 steps stay on trajectory 3. */
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "3", "--no-ui", "--size", "640x360",
             "--screenshot", a, "--steps", "1500", NULL);
    assert_exit(&r, 0);
    assert_true(count_shot_diff(a, b) > MIN_DIFF_PIXELS);
}

/* --overlay draws the truth into the learned panels only; --energy changes the plot only;
 * --split picks another split; --no-follow keeps the first camera. */
static void test_overlay_energy_split_follow(void **state)
{
    (void)state;
    const char *dir = small_dataset();
    char plain[700], over[700], energy[700], valid[700], fixed[700];
    tmp_path(plain, sizeof plain, "plain.png");
    tmp_path(over, sizeof over, "overlay.png");
    tmp_path(energy, sizeof energy, "energy.png");
    tmp_path(valid, sizeof valid, "valid.png");
    tmp_path(fixed, sizeof fixed, "fixed.png");
    struct run r;
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--size", "640x360", "--screenshot", plain, "--steps",
             DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--overlay", "--size", "640x360", "--screenshot", over,
             "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--energy", "--size", "640x360", "--screenshot", energy,
             "--steps", DIFF_STEPS, NULL);
    assert_exit(&r, 0);
    struct viz_layout l;
    viz_layout_compute(&l, SHOT_W, SHOT_H, SHOT_W, SHOT_H, 2, 1);
    unsigned char *p0 = load_shot(plain), *p1 = load_shot(over), *p2 = load_shot(energy);
    int truth_diff = 0, learned_diff = 0, plot_diff = 0, outside_plot = 0;
    for (int y = 0; y < SHOT_H; y++)
        for (int x = 0; x < SHOT_W; x++) {
            size_t k = ((size_t)y * SHOT_W + x) * 4;
            int d1 = 0, d2 = 0;
            for (int c = 0; c < 3; c++) {
                d1 = abs(p0[k + c] - p1[k + c]) > d1 ? abs(p0[k + c] - p1[k + c]) : d1;
                d2 = abs(p0[k + c] - p2[k + c]) > d2 ? abs(p0[k + c] - p2[k + c]) : d2;
            }
            int in_truth = x < l.view[0].x + l.view[0].w && y < SHOT_H - l.timeline.h;
            int in_plot = x >= l.plot.x && x < l.plot.x + l.plot.w && SHOT_H - 1 - y >= l.plot.y &&
                          SHOT_H - 1 - y < l.plot.y + l.plot.h;
            truth_diff += in_truth && d1 > DIFF_CHANNEL;
            learned_diff += !in_truth && d1 > DIFF_CHANNEL;
            plot_diff += in_plot && d2 > DIFF_CHANNEL;
            outside_plot += !in_plot && d2 > DIFF_CHANNEL;
        }
    assert_int_equal(truth_diff, 0);
    assert_true(learned_diff > MIN_COLOR_PIXELS);
    assert_true(plot_diff > MIN_COLOR_PIXELS);
    assert_int_equal(outside_plot, 0);
    free(p0), free(p1), free(p2);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--split", "valid", "--index", "2", "--no-ui", "--size",
             "640x360", "--screenshot", valid, "--steps", "0", NULL);
    assert_exit(&r, 0);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--data", dir, "--index", "2", "--no-ui", "--size", "640x360",
             "--screenshot", plain, "--steps", "0", NULL);
    assert_exit(&r, 0);
    assert_true(count_shot_diff(valid, plain) > MIN_DIFF_PIXELS);
    /* t = 20: following, the picture is framed on the bodies; fixed, it keeps the start's view. */
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--no-ui", "--size", "640x360", "--screenshot", plain,
             "--steps", "20000", NULL);
    assert_exit(&r, 0);
    run_view(&r, 0, "--assets", ASSETS_DIR, "--seed", "7", "--no-follow", "--no-ui", "--size", "640x360",
             "--screenshot", fixed, "--steps", "20000", NULL);
    assert_exit(&r, 0);
    assert_true(count_shot_diff(plain, fixed) > MIN_DIFF_PIXELS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_screenshot_halves),
        cmocka_unit_test(test_full_ui_screenshot),
        cmocka_unit_test(test_record_frames),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_corrupt_models),
        cmocka_unit_test(test_no_display),
        cmocka_unit_test(test_screenshot_without_display),
        cmocka_unit_test(test_unwritable_screenshot),
        cmocka_unit_test(test_broken_shader),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_setting_mismatch_is_reported),
        cmocka_unit_test(test_three_panels_screenshot),
        cmocka_unit_test(test_default_opens_every_shipped_integrator),
        cmocka_unit_test(test_replay_starts_from_the_frame),
        cmocka_unit_test(test_replay_bad_inputs),
        cmocka_unit_test(test_loop_goes_to_the_next_trajectory),
        cmocka_unit_test(test_overlay_energy_split_follow),
    };
    return cmocka_run_group_tests(tests, start_xvfb, stop_xvfb);
}
