/* test_plot.c: the plot library alone (no SDL): PNG files written atomically and read back,
 * the bitmap font, and charts, including the degenerate ranges of a one-point series. */
#define _GNU_SOURCE /* tfs_on_small_disk: a tmpfs in a mount namespace */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot.h"
#include "tfs.h"

/* Size plot_chart_png draws. */
#define CHART_W 960
#define CHART_H 600
/* Rows above this hold the title and the legend (one series); a series colour below it is a
 * drawn line or point. */
#define LEGEND_BOTTOM 160
/* A point is a dot 7 pixels wide: ~29 pixels of full coverage, in its exact colour. */
#define DOT_PIXELS_MIN 20

/* ------------------------------------------------------------ helpers */

/* Pixels of exactly colour rgb in rows [y0, y1) and columns [x0, x1) of an RGBA image. */
static int count_colour(const unsigned char *px, int w, int x0, int x1, int y0, int y1,
                        const unsigned char rgb[3])
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const unsigned char *p = px + ((size_t)y * w + x) * 4;
            n += p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2];
        }
    return n;
}

/* Read a chart back: a 960 x 600 PNG (fails the test otherwise). */
static unsigned char *read_chart(const char *path)
{
    int w, h;
    unsigned char *px;
    char err[PLOT_ERRLEN];
    if (plot_png_read(path, &w, &h, &px, err) != SIM_OK)
        fail_msg("%s", err);
    assert_int_equal(w, CHART_W);
    assert_int_equal(h, CHART_H);
    return px;
}

/* ------------------------------------------------------------ PNG */

/* Pixels come back exactly; no temporary is left; a bad place or a file that is not a PNG
 * is an error naming the file. */
static void test_png_roundtrip_and_atomic_write(void **state)
{
    (void)state;
    char dir[512], path[600], err[PLOT_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    snprintf(path, sizeof path, "%s/img.png", dir);
    const int w = 37, h = 19;
    unsigned char *px = malloc((size_t)w * h * 4);
    for (int k = 0; k < w * h * 4; k++)
        px[k] = (unsigned char)((k * 7919) >> 3);
    assert_int_equal(plot_png_write(path, w, h, px, err), SIM_OK);
    assert_int_equal(tfs_count_entries(dir), 1); /* no temporary left behind */
    int rw, rh;
    unsigned char *back;
    assert_int_equal(plot_png_read(path, &rw, &rh, &back, err), SIM_OK);
    assert_int_equal(rw, w);
    assert_int_equal(rh, h);
    assert_memory_equal(back, px, (size_t)w * h * 4);
    free(back);
    /* An unwritable place: an error naming it, and nothing written. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.png", dir);
    assert_int_equal(plot_png_write(bad, w, h, px, err), SIM_EIO);
    assert_non_null(strstr(err, bad));
    assert_int_equal(tfs_count_entries(dir), 1);
    assert_int_equal(plot_png_write(path, 0, h, px, err), SIM_EARG);
    /* Not a PNG. */
    FILE *f = fopen(path, "wb");
    fputs("not a png", f);
    fclose(f);
    assert_int_equal(plot_png_read(path, &rw, &rh, &back, err), SIM_EFORMAT);
    assert_null(back);
    assert_non_null(strstr(err, path));
    free(px);
    tfs_remove_tree(dir);
}

/* Writing fails inside libpng (file size limit): the message names the PNG and the reason,
 * the previous image stays whole, no temporary is left. */
static void test_png_write_failure(void **state)
{
    (void)state;
    char dir[512], path[600], err[PLOT_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    snprintf(path, sizeof path, "%s/img.png", dir);
    const int w = 256, h = 256;
    unsigned char *px = malloc((size_t)w * h * 4);
    assert_non_null(px);
    srand(3);
    for (int k = 0; k < w * h * 4; k++)
        px[k] = (unsigned char)rand(); /* noise: does not compress below the limit */
    assert_int_equal(plot_png_write(path, 8, 8, px, err), SIM_OK);
    struct rlimit lim, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = 16384;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int st = plot_png_write(path, w, h, px, err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, SIM_EIO);
    if (!strstr(err, path) || !strstr(err, strerror(EFBIG)))
        fail_msg("message \"%s\" should name %s and the reason", err, path);
    assert_int_equal(tfs_count_entries(dir), 1);
    int rw, rh;
    unsigned char *back;
    assert_int_equal(plot_png_read(path, &rw, &rh, &back, err), SIM_OK);
    assert_int_equal(rw, 8);
    free(back);
    free(px);
    tfs_remove_tree(dir);
}

/* In the child of tfs_on_small_disk: a PNG that does not fit on the disk fails with a message
 * naming its path and "No space left on device", and leaves no file. 0 when it does. */
static int png_on_full_disk(const char *dir, void *arg)
{
    (void)arg;
    char path[600], err[PLOT_ERRLEN];
    snprintf(path, sizeof path, "%s/img.png", dir);
    const int w = 256, h = 256; /* 256 KiB of noise: more than the disk */
    unsigned char *px = malloc((size_t)w * h * 4);
    if (!px)
        return 2;
    srand(5);
    for (int k = 0; k < w * h * 4; k++)
        px[k] = (unsigned char)rand();
    int st = plot_png_write(path, w, h, px, err);
    free(px);
    if (st != SIM_EIO || !strstr(err, path) || !strstr(err, strerror(ENOSPC))) {
        fprintf(stderr, "plot_png_write on a full disk: status %d, \"%s\"\n", st, err);
        return 1;
    }
    if (tfs_count_entries(dir) != 0) {
        fprintf(stderr, "plot_png_write on a full disk left %d files\n", tfs_count_entries(dir));
        return 1;
    }
    return 0;
}

/* A PNG on a full disk (a 64 KiB tmpfs): the message names the PNG's path and the reason. */
static void test_png_full_disk(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    int rc = tfs_on_small_disk(dir, 64, png_on_full_disk, NULL);
    tfs_remove_tree(dir);
    if (rc == TFS_NO_MOUNT)
        skip(); /* not allowed to mount here; test_png_write_failure covers EFBIG */
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------ font */

static void test_font(void **state)
{
    (void)state;
    char err[PLOT_ERRLEN] = "";
    assert_int_equal(plot_font_check(err), SIM_OK);
    int lit_a = 0, lit_space = 0, desc_g = 0, desc_a = 0;
    for (int r = 0; r < PLOT_FONT_H; r++)
        for (int c = 0; c < PLOT_FONT_W; c++) {
            lit_a += plot_font_pixel('A', c, r);
            lit_space += plot_font_pixel(' ', c, r);
            desc_g += r >= 7 && plot_font_pixel('g', c, r);
            desc_a += r >= 7 && plot_font_pixel('a', c, r);
            assert_int_equal(plot_font_pixel(200, c, r), plot_font_pixel('?', c, r));
        }
    assert_true(lit_a > 10);
    assert_int_equal(lit_space, 0);
    assert_true(desc_g > 0);
    assert_int_equal(desc_a, 0);
    assert_int_equal(plot_font_pixel('A', -1, 0), 0);
    assert_int_equal(plot_font_pixel('A', 0, PLOT_FONT_H), 0);
    /* Distinct glyphs for characters that are easy to mix up. */
    const char pairs[][2] = {{'0', 'O'}, {'1', 'l'}, {'5', 'S'}, {'8', 'B'}, {'e', 'c'}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        int differ = 0;
        for (int r = 0; r < PLOT_FONT_H; r++)
            for (int c = 0; c < PLOT_FONT_W; c++)
                differ += plot_font_pixel(pairs[k][0], c, r) != plot_font_pixel(pairs[k][1], c, r);
        assert_true(differ > 0);
    }
}

/* ------------------------------------------------------------ charts */

static const unsigned char RED[3] = {214, 82, 40}, BLUE[3] = {60, 110, 200};

/* One point per series (nbody-eval --rollout 1), log and linear y: a valid PNG with each
 * point drawn in the middle third of the width (the empty x range padded around it). */
static void test_chart_one_point(void **state)
{
    (void)state;
    char dir[512], path[600], err[PLOT_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    snprintf(path, sizeof path, "%s/one.png", dir);
    const double x[1] = {1}, ym[1] = {0.004}, yc[1] = {0.03};
    for (int log_y = 0; log_y < 2; log_y++) {
        struct plot_chart c = {.title = "one point", .xlabel = "horizon", .ylabel = "MSE",
                               .log_y = log_y, .nseries = 2,
                               .series = {{"model", x, ym, 1, {214, 82, 40}},
                                          {"baseline", x, yc, 1, {60, 110, 200}}}};
        if (plot_chart_png(path, &c, err) != SIM_OK)
            fail_msg("log_y %d: %s", log_y, err);
        unsigned char *px = read_chart(path);
        /* the legend's colour samples sit left of the middle third */
        int red = count_colour(px, CHART_W, CHART_W / 3, 2 * CHART_W / 3, 0, CHART_H, RED);
        int blue = count_colour(px, CHART_W, CHART_W / 3, 2 * CHART_W / 3, 0, CHART_H, BLUE);
        if (red < DOT_PIXELS_MIN || blue < DOT_PIXELS_MIN)
            fail_msg("log_y %d: %d red and %d blue point pixels, expected >= %d each", log_y, red,
                     blue, DOT_PIXELS_MIN);
        free(px);
    }
    assert_int_equal(tfs_count_entries(dir), 1);
    tfs_remove_tree(dir);
}

/* A constant series (zero y range), a series of equal x, huge offsets whose tick step is
 * below their rounding: each still draws its points and finishes. */
static void test_chart_degenerate_ranges(void **state)
{
    (void)state;
    char dir[512], path[600], err[PLOT_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    snprintf(path, sizeof path, "%s/flat.png", dir);
    const double x[4] = {1, 2, 3, 4}, flat[4] = {0.5, 0.5, 0.5, 0.5};
    const double same_x[3] = {7, 7, 7}, y[3] = {1, 2, 3};
    const double far_x[3] = {1e17, 1e17 + 16, 1e17 + 32}, zero[3] = {0, 0, 0};
    const struct {
        const double *x, *y;
        int count, log_y;
    } cases[] = {{x, flat, 4, 0}, {x, flat, 4, 1}, {same_x, y, 3, 0}, {far_x, zero, 3, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct plot_chart c = {.log_y = cases[k].log_y, .nseries = 1,
                               .series = {{"s", cases[k].x, cases[k].y, cases[k].count,
                                           {214, 82, 40}}}};
        if (plot_chart_png(path, &c, err) != SIM_OK)
            fail_msg("case %zu: %s", k, err);
        unsigned char *px = read_chart(path);
        int red = count_colour(px, CHART_W, 0, CHART_W, LEGEND_BOTTOM, CHART_H, RED);
        if (red < DOT_PIXELS_MIN)
            fail_msg("case %zu: only %d pixels of the series drawn", k, red);
        free(px);
    }
    tfs_remove_tree(dir);
}

/* Nothing to plot, or no series: SIM_EARG naming the file, and no file written. */
static void test_chart_refuses(void **state)
{
    (void)state;
    char dir[512], path[600], err[PLOT_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_plot"), 0);
    snprintf(path, sizeof path, "%s/none.png", dir);
    const double x[2] = {1, 2}, nan2[2] = {NAN, INFINITY}, neg[2] = {-1, 0};
    struct plot_chart c = {.nseries = 1, .series = {{"s", x, nan2, 2, {0, 0, 0}}}};
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    assert_non_null(strstr(err, "nothing to plot"));
    assert_non_null(strstr(err, path));
    c.series[0].y = neg;
    c.log_y = 1;
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    assert_non_null(strstr(err, "positive"));
    c.log_y = 0;
    c.series[0].count = 0;
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    c.nseries = 0;
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    c.nseries = PLOT_MAX_SERIES + 1;
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    c.nseries = 1;
    c.series[0].count = 2;
    c.series[0].x = NULL;
    assert_int_equal(plot_chart_png(path, &c, err), SIM_EARG);
    assert_int_equal(tfs_count_entries(dir), 0);
    tfs_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip_and_atomic_write),
        cmocka_unit_test(test_png_write_failure),
        cmocka_unit_test(test_png_full_disk),
        cmocka_unit_test(test_font),
        cmocka_unit_test(test_chart_one_point),
        cmocka_unit_test(test_chart_degenerate_ranges),
        cmocka_unit_test(test_chart_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
