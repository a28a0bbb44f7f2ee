/* atomic.c: the project's one way to write a file so that its path never holds a partial one:
 * a temporary beside it (O_CREAT|O_EXCL, mode 0666 minus the umask), fsync, rename, then fsync
 * of the directory. */
#include "sim.h"
#include "sim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Attempts at a fresh temporary name; a clash needs a stale file of a killed process that
 * had our pid, so a second name almost always succeeds. */
#define ATOMIC_NAME_TRIES 16

/* Distinguishes the temporaries of threads (and successive writes) of one process. */
static atomic_uint name_counter;

/* "path: message" into err (if given); returns status. Shared with npy.c (sim_internal.h). */
int sim_fail_path(char *err, int status, const char *path, const char *fmt, ...)
{
    if (err) {
        int k = snprintf(err, SIM_ERRLEN, "%s: ", path ? path : "(null)");
        if (k < 0 || k >= SIM_ERRLEN)
            k = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, SIM_ERRLEN - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Create the temporary of path and open it for writing (see sim.h). */
int sim_atomic_open(struct sim_atomic *a, const char *path, char err[SIM_ERRLEN])
{
    if (err)
        err[0] = '\0';
    if (!a)
        return sim_fail_path(err, SIM_EARG, path, "no writer given");
    memset(a, 0, sizeof *a);
    if (!path || !path[0])
        return sim_fail_path(err, SIM_EARG, path, "no path given");
    size_t len = strlen(path);
    if (len >= sizeof a->path)
        return sim_fail_path(err, SIM_EARG, "(path)", "path of %zu bytes is too long", len);
    memcpy(a->path, path, len + 1);
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < ATOMIC_NAME_TRIES && fd < 0; attempt++) {
        unsigned k = atomic_fetch_add(&name_counter, 1u);
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), k);
        /* 0666 and no fchmod: the kernel applies the umask, as for a plain fopen. */
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST)
            break;
    }
    if (fd < 0) {
        a->tmp[0] = '\0';
        return sim_fail_path(err, SIM_EIO, path, "cannot create a temporary file beside it: %s",
                           strerror(e));
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return sim_fail_path(err, SIM_EIO, path, "cannot open a temporary file: %s", strerror(e));
    }
    return SIM_OK;
}

/* fwrite that keeps the errno of the first failure for the commit's message. */
int sim_atomic_write(struct sim_atomic *a, const void *data, size_t len)
{
    if (a->error)
        return -1;
    if (len == 0)
        return 0;
    errno = 0;
    if (fwrite(data, 1, len, a->f) != len) {
        a->error = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* After the rename: fsync the directory that holds path, so that the new name survives a
 * crash of the machine too. Best effort: the file is complete and in place either way, and
 * some file systems cannot open or sync a directory. */
static void sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (len == 0)
        snprintf(dir, sizeof dir, "/");
    else if (len < sizeof dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    } else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Flush, fsync, close and rename into place; on any failure remove the temporary. */
int sim_atomic_commit(struct sim_atomic *a, char err[SIM_ERRLEN])
{
    if (err)
        err[0] = '\0';
    if (!a || !a->f)
        return sim_fail_path(err, SIM_EARG, a ? a->path : NULL, "no open temporary to commit");
    const char *what = "write failed";
    /* A failed fprintf or fwrite on a->f left its reason in errno and the stream's error flag. */
    int e = a->error, stdio_errno = errno;
    if (!e && ferror(a->f))
        e = stdio_errno ? stdio_errno : EIO;
    if (!e) {
        errno = 0;
        if (fflush(a->f) != 0)
            e = errno ? errno : EIO;
    }
    /* On disk before the rename makes it visible under its real name. A file system that
     * cannot sync (EINVAL: pipes, some FUSE; EROFS) has nothing more to give. */
    if (!e && fsync(fileno(a->f)) != 0 && errno != EINVAL && errno != EROFS) {
        e = errno;
        what = "fsync failed";
    }
    errno = 0;
    if (fclose(a->f) != 0 && !e) {
        e = errno ? errno : EIO;
        what = "close failed";
    }
    a->f = NULL;
    if (!e && rename(a->tmp, a->path) != 0) {
        e = errno;
        what = "cannot rename the temporary file into place";
    }
    if (e) {
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return sim_fail_path(err, SIM_EIO, a->path, "%s: %s", what, strerror(e));
    }
    a->tmp[0] = '\0';
    sync_parent(a->path);
    return SIM_OK;
}

/* Close and remove the temporary; the final path is untouched. Harmless twice. */
void sim_atomic_abort(struct sim_atomic *a)
{
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    if (a->tmp[0])
        unlink(a->tmp);
    a->tmp[0] = '\0';
}

/* 1 if name is "{base}.tmp.{digits}.{digits}", a temporary of sim_atomic_open (see sim.h). */
int sim_atomic_is_temp(const char *name, const char *base)
{
    if (!name || !base)
        return 0;
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0)
        return 0;
    const char *p = name + bl + 5;
    size_t pid = strspn(p, "0123456789");
    if (pid == 0 || p[pid] != '.')
        return 0;
    p += pid + 1;
    size_t counter = strspn(p, "0123456789");
    return counter > 0 && p[counter] == '\0';
}
