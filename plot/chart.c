/* chart.c: line charts drawn on the CPU into RGBA pixels and written as PNG (rollout error
 * against horizon); no window or GL context needed, so evaluation tools can use it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

/* Upper bound on x tick marks; the step rule gives 4 to 16. */
#define MAX_XTICKS 64

/* RGBA pixels being drawn, top row first. */
struct canvas {
    int w, h;
    unsigned char *px;
};

/* Blend colour c with coverage a (0..1) into pixel (x, y). */
static void blend(struct canvas *cv, int x, int y, const unsigned char c[3], float a)
{
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h || a <= 0)
        return;
    unsigned char *p = cv->px + ((size_t)y * cv->w + x) * 4;
    if (a > 1)
        a = 1;
    for (int k = 0; k < 3; k++)
        p[k] = (unsigned char)lrintf(p[k] + a * (c[k] - p[k]));
}

/* Anti-aliased line of the given width: coverage from the distance to the segment. */
static void line(struct canvas *cv, float x0, float y0, float x1, float y1, float width,
                 const unsigned char c[3])
{
    float r = width * 0.5f;
    int xa = (int)floorf(fminf(x0, x1) - r - 1), xb = (int)ceilf(fmaxf(x0, x1) + r + 1);
    int ya = (int)floorf(fminf(y0, y1) - r - 1), yb = (int)ceilf(fmaxf(y0, y1) + r + 1);
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float d = sqrtf(ex * ex + ey * ey);
            blend(cv, x, y, c, r + 0.5f - d);
        }
}

/* Text with the built-in font, each font pixel a scale x scale square; (x, y) top left. */
static void text(struct canvas *cv, int x, int y, int scale, const char *s, const unsigned char c[3])
{
    for (; *s; s++, x += PLOT_FONT_ADVANCE * scale)
        for (int row = 0; row < PLOT_FONT_H; row++)
            for (int col = 0; col < PLOT_FONT_W; col++)
                if (plot_font_pixel((unsigned char)*s, col, row))
                    for (int a = 0; a < scale; a++)
                        for (int b = 0; b < scale; b++)
                            blend(cv, x + col * scale + b, y + row * scale + a, c, 1);
}

/* Width in pixels of s drawn at the given scale. */
static int text_width(const char *s, int scale)
{
    return (int)strlen(s) * PLOT_FONT_ADVANCE * scale;
}

/* Widen a range of one value (lo == hi) around it: half its magnitude each side, or 0.5
 * around zero, so one point or a constant series still has axes to sit in. */
static void pad_degenerate(double *lo, double *hi)
{
    if (*hi > *lo)
        return;
    double half = *lo != 0 ? 0.5 * fabs(*lo) : 0.5;
    *lo -= half;
    *hi += half;
}

/* Draw a line chart and write it as a PNG (see plot.h). */
int plot_chart_png(const char *path, const struct plot_chart *p, char err[PLOT_ERRLEN])
{
    if (!p || p->nseries < 1 || p->nseries > PLOT_MAX_SERIES) {
        snprintf(err, PLOT_ERRLEN, "%s: a chart needs 1 to %d series", path ? path : "(null)",
                 PLOT_MAX_SERIES);
        return SIM_EARG;
    }
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int s = 0; s < p->nseries; s++) {
        const struct plot_series *ser = &p->series[s];
        if (ser->count < 0 || (ser->count > 0 && (!ser->x || !ser->y))) {
            snprintf(err, PLOT_ERRLEN, "%s: series %d has %d points but no data",
                     path ? path : "(null)", s, ser->count);
            return SIM_EARG;
        }
        for (int i = 0; i < ser->count; i++) {
            double x = ser->x[i], y = ser->y[i];
            if (!isfinite(x) || !isfinite(y) || (p->log_y && y <= 0))
                continue;
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
        }
    }
    if (!(xmax >= xmin) || !(ymax >= ymin)) {
        snprintf(err, PLOT_ERRLEN, "%s: nothing to plot: the series have no finite%s points",
                 path ? path : "(null)", p->log_y ? " positive" : "");
        return SIM_EARG;
    }
    pad_degenerate(&xmin, &xmax);
    const int W = 960, H = 600, S = 2; /* pixels, font scale */
    const int left = 120, right = 30, top = 96, bottom = 90;
    struct canvas cv = {W, H, malloc((size_t)W * H * 4)};
    if (!cv.px) {
        snprintf(err, PLOT_ERRLEN, "%s: out of memory for a %d x %d plot", path ? path : "(null)",
                 W, H);
        return SIM_ENOMEM;
    }
    for (size_t k = 0; k < (size_t)W * H; k++) {
        unsigned char *q = cv.px + k * 4;
        q[0] = 250, q[1] = 250, q[2] = 252, q[3] = 255;
    }
    const unsigned char ink[3] = {30, 30, 40}, grid[3] = {215, 218, 226};
    /* y axis in decades (log) or a padded linear range. */
    double y0, y1;
    if (p->log_y) {
        y0 = floor(log10(ymin));
        y1 = ceil(log10(ymax));
        if (y1 <= y0)
            y1 = y0 + 1;
    } else {
        y0 = ymin;
        y1 = ymax;
        pad_degenerate(&y0, &y1);
        double pad = (y1 - y0) * 0.05;
        y0 -= pad;
        y1 += pad;
    }
    const int pw = W - left - right, ph = H - top - bottom;
#define PX(x) (left + (float)(((x) - xmin) / (xmax - xmin)) * pw)
#define PY(y) (top + ph - (float)(((p->log_y ? log10(y) : (y)) - y0) / (y1 - y0)) * ph)
    char lab[64];
    if (p->log_y) {
        for (int d = (int)y0; d <= (int)y1; d++) {
            float y = PY(pow(10.0, d));
            line(&cv, left, y, left + pw, y, 1, grid);
            for (int m = 2; m < 10 && d < (int)y1; m++) {
                float ym = PY(m * pow(10.0, d));
                line(&cv, left, ym, left + 8, ym, 1, ink);
            }
            snprintf(lab, sizeof lab, "1e%d", d);
            text(&cv, left - 12 - text_width(lab, S), (int)y - PLOT_FONT_H * S / 2, S, lab, ink);
        }
    } else {
        for (int k = 0; k <= 5; k++) {
            double v = y0 + (y1 - y0) * k / 5;
            float y = PY(v);
            line(&cv, left, y, left + pw, y, 1, grid);
            snprintf(lab, sizeof lab, "%.3g", v);
            text(&cv, left - 12 - text_width(lab, S), (int)y - PLOT_FONT_H * S / 2, S, lab, ink);
        }
    }
    /* x ticks: about 8, at round steps. */
    double span = xmax - xmin, step = pow(10.0, floor(log10(span / 8)));
    if (span / step > 40)
        step *= 5;
    else if (span / step > 16)
        step *= 2;
    /* counted, not accumulated: a step below the rounding of xmin must not loop forever */
    const double first = ceil(xmin / step) * step;
    for (int k = 0; k <= MAX_XTICKS; k++) {
        double v = first + k * step;
        if (v > xmax + 1e-9 * span)
            break;
        float x = PX(v);
        line(&cv, x, top, x, top + ph, 1, grid);
        snprintf(lab, sizeof lab, "%g", v);
        text(&cv, (int)x - text_width(lab, S) / 2, top + ph + 10, S, lab, ink);
    }
    line(&cv, left, top, left, top + ph, 2, ink);
    line(&cv, left, top + ph, left + pw, top + ph, 2, ink);
    for (int s = 0; s < p->nseries; s++) {
        const struct plot_series *ser = &p->series[s];
        int have = 0;
        float lx = 0, ly = 0;
        for (int i = 0; i < ser->count; i++) {
            double x = ser->x[i], y = ser->y[i];
            if (!isfinite(x) || !isfinite(y) || (p->log_y && y <= 0)) {
                have = 0;
                continue;
            }
            float cx = PX(x), cy = PY(y);
            if (have)
                line(&cv, lx, ly, cx, cy, 3, ser->rgb);
            line(&cv, cx, cy, cx, cy, 7, ser->rgb); /* a dot at each point */
            lx = cx, ly = cy, have = 1;
        }
        /* legend, top left inside the axes */
        int ly0 = top + 14 + s * (PLOT_FONT_LINE * S + 6);
        line(&cv, left + 20, ly0 + PLOT_FONT_H, left + 56, ly0 + PLOT_FONT_H, 4, ser->rgb);
        text(&cv, left + 66, ly0, S, ser->name, ink);
    }
#undef PX
#undef PY
    if (p->title)
        text(&cv, (W - text_width(p->title, S)) / 2, 18, S, p->title, ink);
    if (p->xlabel)
        text(&cv, left + (pw - text_width(p->xlabel, S)) / 2, H - 40, S, p->xlabel, ink);
    if (p->ylabel)
        text(&cv, 12, top - 36, S, p->ylabel, ink);
    int st = plot_png_write(path, W, H, cv.px, err);
    free(cv.px);
    return st;
}
