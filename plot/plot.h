/* plot.h: pictures without a window, for every program: PNG files (libpng, written through
 * sim_atomic), the built-in bitmap font, and line charts drawn on the CPU. No SDL, no GL. */
#ifndef PLOT_PLOT_H
#define PLOT_PLOT_H

#include "sim.h"

/* Status codes: the sim library's (SIM_OK, SIM_EARG, SIM_ENOMEM, SIM_EIO, SIM_EFORMAT;
 * sim_strerror names them). Messages go into buffers of PLOT_ERRLEN bytes and name the file. */
#define PLOT_ERRLEN SIM_ERRLEN

/* ------------------------------------------------------------------ PNG */

/* Write w x h RGBA pixels (top row first) as a PNG through sim_atomic: the path never holds
 * a partial image, and on failure nothing is left behind. SIM_EARG for a bad image or path,
 * SIM_EIO (creating, writing or renaming), SIM_ENOMEM. */
int plot_png_write(const char *path, int w, int h, const unsigned char *rgba,
                   char err[PLOT_ERRLEN]);
/* Read a PNG as 8-bit RGBA (top row first) into a malloc'ed buffer: SIM_OK, SIM_EFORMAT
 * (missing, unreadable or not a PNG) or SIM_ENOMEM. */
int plot_png_read(const char *path, int *w, int *h, unsigned char **rgba, char err[PLOT_ERRLEN]);

/* ----------------------------------------------------------------- font */

/* The built-in bitmap font: printable ASCII, 5 x 9 pixel glyphs (7 above the baseline,
 * 2 below) in 6 x 11 pixel cells. */
#define PLOT_FONT_W 5       /* Glyph width, pixels. */
#define PLOT_FONT_H 9       /* Glyph height, pixels (rows 7 and 8 hold descenders). */
#define PLOT_FONT_ADVANCE 6 /* Pixels from one character to the next. */
#define PLOT_FONT_LINE 11   /* Pixels from one line to the next. */
/* 1 if pixel (col, row) of the glyph for ch is set (row 0 at the top); characters
 * outside printable ASCII draw as '?'. */
int plot_font_pixel(int ch, int col, int row);
/* Check the font table; SIM_OK or SIM_EFORMAT naming the first bad glyph. */
int plot_font_check(char err[PLOT_ERRLEN]);

/* --------------------------------------------------------------- charts */

#define PLOT_MAX_SERIES 8

/* One line of a chart: count points (x[i], y[i]); non-finite points break the line. */
struct plot_series {
    const char *name;     /* legend text */
    const double *x, *y;  /* count values each */
    int count;            /* >= 0 */
    unsigned char rgb[3]; /* line colour */
};

/* A line chart of 1 to PLOT_MAX_SERIES series. */
struct plot_chart {
    const char *title, *xlabel, *ylabel; /* NULL: none */
    int log_y; /* 1: logarithmic y axis in decades (non-positive values are skipped) */
    int nseries;
    struct plot_series series[PLOT_MAX_SERIES];
};

/* Draw the chart on the CPU (960 x 600, built-in font) and write it with plot_png_write.
 * A range of one value (one point, or all points equal) is padded around it. SIM_EARG if
 * there is no series or no plottable point. */
int plot_chart_png(const char *path, const struct plot_chart *c, char err[PLOT_ERRLEN]);

#endif
