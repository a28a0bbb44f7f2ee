/* png.c: screenshots and recorded frames as PNG files through libpng, written to a
 * temporary name and renamed so a path never holds half an image; and reading them back. */
#include "viz.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libpng error callback: keep the message and unwind to the setjmp of the caller. */
static void png_fail(png_structp png, png_const_charp msg)
{
    char *err = png_get_error_ptr(png);
    if (err)
        snprintf(err, VIZ_ERRLEN, "libpng: %s", msg);
    png_longjmp(png, 1);
}

/* libpng warnings are not worth a message on the terminal. */
static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Encode rows into an open file; returns VIZ_OK or VIZ_EIO with the message in err. */
static int png_encode(FILE *f, int w, int h, const unsigned char *rgba, char err[VIZ_ERRLEN])
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(err, VIZ_ERRLEN, "libpng: out of memory");
        return VIZ_ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return VIZ_EIO;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Level 3 is a good size for a fraction of the time of the default 6, which matters when recording. */
    png_set_compression_level(png, 3);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgba + (size_t)y * w * 4));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return VIZ_OK;
}

int viz_png_write(const char *path, int w, int h, const unsigned char *rgba, char err[VIZ_ERRLEN])
{
    if (!path || !*path || w <= 0 || h <= 0 || !rgba) {
        snprintf(err, VIZ_ERRLEN, "png: invalid image (%d x %d) or path", w, h);
        return VIZ_EARG;
    }
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) {
        snprintf(err, VIZ_ERRLEN, "out of memory");
        return VIZ_ENOMEM;
    }
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, VIZ_ERRLEN, "cannot create '%s': %s", path, strerror(errno));
        free(tmp);
        return VIZ_EIO;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        snprintf(err, VIZ_ERRLEN, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return VIZ_EIO;
    }
    int rc = png_encode(f, w, h, rgba, err);
    if (fflush(f) != 0 && rc == VIZ_OK) {
        snprintf(err, VIZ_ERRLEN, "cannot write '%s': %s", tmp, strerror(errno));
        rc = VIZ_EIO;
    }
    if (fclose(f) != 0 && rc == VIZ_OK) {
        snprintf(err, VIZ_ERRLEN, "cannot write '%s': %s", tmp, strerror(errno));
        rc = VIZ_EIO;
    }
    /* mkstemp creates the file 0600; an image is for everyone to read, as the umask allows. */
    if (rc == VIZ_OK) {
        mode_t mask = umask(0);
        umask(mask);
        chmod(tmp, 0666 & ~mask);
    }
    if (rc == VIZ_OK && rename(tmp, path) != 0) {
        snprintf(err, VIZ_ERRLEN, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        rc = VIZ_EIO;
    }
    if (rc != VIZ_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

int viz_png_read(const char *path, int *w, int *h, unsigned char **rgba, char err[VIZ_ERRLEN])
{
    *rgba = NULL;
    *w = *h = 0;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        snprintf(err, VIZ_ERRLEN, "cannot read PNG '%s': %s", path, img.message);
        return VIZ_EFORMAT;
    }
    img.format = PNG_FORMAT_RGBA;
    size_t bytes = PNG_IMAGE_SIZE(img);
    unsigned char *buf = malloc(bytes);
    if (!buf) {
        png_image_free(&img);
        snprintf(err, VIZ_ERRLEN, "out of memory for '%s'", path);
        return VIZ_ENOMEM;
    }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        snprintf(err, VIZ_ERRLEN, "cannot decode PNG '%s': %s", path, img.message);
        free(buf);
        png_image_free(&img);
        return VIZ_EFORMAT;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    *rgba = buf;
    return VIZ_OK;
}
