/* png.c: PNG files through libpng: images written through sim_atomic, so a path never holds
 * half an image and a failure leaves nothing behind; and reading them back as RGBA. */
#include "plot.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where libpng's callbacks report to: the writer and the message buffer. */
struct png_sink {
    struct sim_atomic *a;
    char *err;
};

/* libpng error callback: keep the message and unwind to the setjmp of the caller. */
static void png_fail(png_structp png, png_const_charp msg)
{
    struct png_sink *s = png_get_error_ptr(png);
    if (s && s->err)
        snprintf(s->err, PLOT_ERRLEN, "%.400s: libpng: %.100s", s->a->path, msg);
    png_longjmp(png, 1);
}

/* libpng warnings are not worth a message on the terminal. */
static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Bytes from libpng into the temporary; a failure is kept in the writer for its message. */
static void png_put(png_structp png, png_bytep data, png_size_t len)
{
    struct png_sink *s = png_get_io_ptr(png);
    if (sim_atomic_write(s->a, data, len) != 0)
        png_error(png, "write failed");
}

/* Nothing to do: the commit flushes. */
static void png_flush_nop(png_structp png)
{
    (void)png;
}

/* Encode rows into the writer; SIM_OK, or a status with the message in err. */
static int png_encode(struct png_sink *s, int w, int h, const unsigned char *rgba)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(s->err, PLOT_ERRLEN, "%.400s: libpng: out of memory", s->a->path);
        return SIM_ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return SIM_EIO;
    }
    png_set_write_fn(png, s, png_put, png_flush_nop);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGBA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Level 3 is a good size for a fraction of the time of the default 6, which matters
     * when recording. */
    png_set_compression_level(png, 3);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgba + (size_t)y * w * 4));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return SIM_OK;
}

/* Write an RGBA image as a PNG file, atomically (see plot.h). */
int plot_png_write(const char *path, int w, int h, const unsigned char *rgba,
                   char err[PLOT_ERRLEN])
{
    if (!path || !*path || w <= 0 || h <= 0 || !rgba) {
        snprintf(err, PLOT_ERRLEN, "%s: invalid image (%d x %d) or path", path ? path : "(null)",
                 w, h);
        return SIM_EARG;
    }
    struct sim_atomic a;
    int st = sim_atomic_open(&a, path, err);
    if (st != SIM_OK)
        return st;
    struct png_sink s = {&a, err};
    st = png_encode(&s, w, h, rgba);
    if (st != SIM_OK && !a.error) {
        sim_atomic_abort(&a); /* libpng's own failure: its message is in err */
        return st;
    }
    /* A write failure inside libpng is kept in a: the commit names the path and the reason,
     * and removes the temporary. */
    return sim_atomic_commit(&a, err);
}

/* Read a PNG file as RGBA (see plot.h). */
int plot_png_read(const char *path, int *w, int *h, unsigned char **rgba, char err[PLOT_ERRLEN])
{
    *rgba = NULL;
    *w = *h = 0;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        snprintf(err, PLOT_ERRLEN, "cannot read PNG '%s': %s", path, img.message);
        return SIM_EFORMAT;
    }
    img.format = PNG_FORMAT_RGBA;
    size_t bytes = PNG_IMAGE_SIZE(img);
    unsigned char *buf = malloc(bytes);
    if (!buf) {
        png_image_free(&img);
        snprintf(err, PLOT_ERRLEN, "out of memory for '%s'", path);
        return SIM_ENOMEM;
    }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        snprintf(err, PLOT_ERRLEN, "cannot decode PNG '%s': %s", path, img.message);
        free(buf);
        png_image_free(&img);
        return SIM_EFORMAT;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    *rgba = buf;
    return SIM_OK;
}
