/* folder.c: a folder that appears whole or not at all: built under a private temporary name
 * beside it, published with one rename, one writer at a time (see sim.h). */
#define _GNU_SOURCE /* renameat2 and RENAME_EXCHANGE (glibc >= 2.28) */
#include "sim.h"
#include "sim_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Attempts at a fresh temporary name (a clash needs a stale folder of an earlier process
 * that had our pid), and at a lock file that its holder is not removing meanwhile. */
#define NAME_TRIES 16
#define LOCK_TRIES 100
/* How long a second writer waits for the first to have written its pid into the lock. */
#define PID_WAIT_TRIES 50
#define PID_WAIT_NS 1000000L

static atomic_uint name_counter;

/* Report a stage to the caller's callback, outside every signal section. */
static void stage(struct sim_folder *f, const char *name)
{
    if (f->stage)
        f->stage(f->user, name);
}

/* 1 if name is "{base}{tag}{digits}.{digits}" (tag like ".tmp."). */
static int tagged(const char *name, const char *base, const char *tag)
{
    size_t bl = strlen(base), tl = strlen(tag);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, tag, tl) != 0)
        return 0;
    const char *p = name + bl + tl;
    size_t a = strspn(p, "0123456789");
    if (a == 0 || p[a] != '.')
        return 0;
    p += a + 1;
    size_t b = strspn(p, "0123456789");
    return b > 0 && p[b] == '\0';
}

/* Remove a folder and everything under it (see sim.h). */
int sim_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    int rc = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            if (!sub) {
                rc = -1;
                continue;
            }
            snprintf(sub, len, "%s/%s", path, e->d_name);
            rc |= sim_remove_tree(sub);
            free(sub);
        }
        closedir(d);
    }
    return rmdir(path) != 0 ? -1 : rc;
}

/* fsync a folder (its entries); file systems that cannot are let be. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd) != 0 && errno != EINVAL && errno != EROFS ? -1 : 0;
    close(fd);
    return rc;
}

/* Create dir and its parents if missing; 0 or -1 with errno. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st))
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Split path into f->parent and f->base (no trailing slashes); 0, or -1 if it has no name of
 * its own ("", ".", "..", "/"). */
static int split(struct sim_folder *f, const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof f->path)
        return -1;
    memcpy(f->path, path, len);
    f->path[len] = '\0';
    char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    const size_t blen = strlen(base);
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || blen >= sizeof f->base)
        return -1;
    memcpy(f->base, base, blen + 1); /* the length is checked above */
    if (!slash)
        snprintf(f->parent, sizeof f->parent, ".");
    else if (slash == f->path)
        snprintf(f->parent, sizeof f->parent, "/");
    else
        snprintf(f->parent, sizeof f->parent, "%.*s", (int)(slash - f->path), f->path);
    return 0;
}

/* Take the lock file of f (see sim.h). */
static int take_lock(struct sim_folder *f, char err[SIM_ERRLEN])
{
    if (snprintf(f->lock, sizeof f->lock, "%s/.%s.lock", f->parent, f->base) >=
        (int)sizeof f->lock)
        return sim_fail_path(err, SIM_EARG, f->path, "path too long");
    for (int attempt = 0; attempt < LOCK_TRIES; attempt++) {
        int fd = open(f->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return sim_fail_path(err, SIM_EIO, f->lock, "cannot create the lock file: %s",
                                 strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            long pid = 0;
            for (int t = 0; e == EWOULDBLOCK && t < PID_WAIT_TRIES && pid <= 0; t++) {
                char buf[32];
                ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
                if (r > 0) {
                    buf[r] = '\0';
                    pid = strtol(buf, NULL, 10);
                }
                if (pid <= 0)
                    nanosleep(&(struct timespec){0, PID_WAIT_NS}, NULL);
            }
            close(fd);
            if (e != EWOULDBLOCK)
                return sim_fail_path(err, SIM_EIO, f->lock, "cannot lock: %s", strerror(e));
            if (pid > 0)
                return sim_fail_path(err, SIM_EEXIST, f->path, "another process (pid %ld) is "
                                     "writing it (lock %s); wait for it to end", pid, f->lock);
            return sim_fail_path(err, SIM_EEXIST, f->path, "another process is writing it "
                                 "(lock %s); wait for it to end", f->lock);
        }
        /* ours, unless its holder removed it between our open and our flock: then again */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(f->lock, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
                int e = errno;
                unlink(f->lock);
                close(fd);
                return sim_fail_path(err, SIM_EIO, f->lock, "cannot write the lock file: %s",
                                     strerror(e));
            }
            f->lock_fd = fd;
            return SIM_OK;
        }
        close(fd);
    }
    return sim_fail_path(err, SIM_EIO, f->lock, "cannot take the lock");
}

/* Remove what earlier runs on this path left beside it (their temporary folders), and put
 * back an old folder that a run killed while publishing left aside. */
static void clean_stale(struct sim_folder *f)
{
    DIR *d = opendir(f->parent);
    if (!d)
        return;
    char dotbase[300];
    snprintf(dotbase, sizeof dotbase, ".%s", f->base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tmp = tagged(e->d_name, dotbase, ".tmp."), aside = tagged(e->d_name, dotbase, ".aside.");
        if (!tmp && !aside)
            continue;
        char p[8600];
        snprintf(p, sizeof p, "%s/%s", f->parent, e->d_name);
        struct stat st;
        if (aside && lstat(f->path, &st) != 0 && errno == ENOENT && rename(p, f->path) == 0)
            continue; /* the old folder is back */
        sim_remove_tree(p);
    }
    closedir(d);
}

/* Resolve, lock and clean (see sim.h). */
int sim_folder_lock(struct sim_folder *f, const char *path, char err[SIM_ERRLEN])
{
    void (*cb)(void *, const char *) = f->stage;
    void *user = f->user;
    int no_exchange = f->no_exchange;
    memset(f, 0, sizeof *f);
    f->stage = cb;
    f->user = user;
    f->no_exchange = no_exchange;
    f->lock_fd = -1;
    if (err)
        err[0] = '\0';
    if (!path)
        return sim_fail_path(err, SIM_EARG, path, "no folder given");
    /* A symbolic link to a folder: the folder is published, not the link replaced. A path
     * without a name of its own ("." and the like) is resolved to one. */
    char real[PATH_MAX];
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (exists && S_ISLNK(st.st_mode) && realpath(path, real))
        path = real;
    if (split(f, path) != 0) {
        if (!exists || !realpath(path, real) || split(f, real) != 0)
            return sim_fail_path(err, SIM_EARG, path, "names no folder of its own");
    }
    exists = stat(f->path, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode))
        return sim_fail_path(err, SIM_EARG, f->path, "exists and is not a folder");
    /* publishing swaps the folder itself: never the one this process (its shell) is in */
    char cwd[PATH_MAX], target[PATH_MAX];
    if (exists && getcwd(cwd, sizeof cwd) && realpath(f->path, target)) {
        size_t tl = strlen(target);
        if (!strncmp(cwd, target, tl) && (cwd[tl] == '\0' || cwd[tl] == '/' || tl == 1))
            return sim_fail_path(err, SIM_EARG, f->path, "is (or holds) the current folder, "
                                 "which publishing would replace; name a folder of its own");
    }
    if (make_dirs(f->parent) != 0 || access(f->parent, W_OK) != 0)
        return sim_fail_path(err, SIM_EIO, f->parent, "cannot write in this folder: %s",
                             strerror(errno));
    /* with the signals held: the lock file exists from its open() on, and a signal before
     * lock_fd is set would leave it behind (the handler only removes a lock it holds) */
    sim_signals_hold();
    int st2 = take_lock(f, err);
    if (st2 == SIM_OK)
        clean_stale(f);
    sim_signals_release();
    if (st2 != SIM_OK)
        return st2;
    f->existed = stat(f->path, &st) == 0 && S_ISDIR(st.st_mode);
    return SIM_OK;
}

/* Make the private temporary folder (see sim.h). */
int sim_folder_begin(struct sim_folder *f, char err[SIM_ERRLEN])
{
    int e = 0;
    sim_signals_hold();
    for (int attempt = 0; attempt < NAME_TRIES; attempt++) {
        unsigned k = atomic_fetch_add(&name_counter, 1u);
        if (snprintf(f->tmp, sizeof f->tmp, "%s/.%s.tmp.%ld.%u", f->parent, f->base,
                     (long)getpid(), k) >= (int)sizeof f->tmp) {
            e = ENAMETOOLONG;
            break;
        }
        if (mkdir(f->tmp, 0777) == 0) {
            e = 0;
            break;
        }
        e = errno;
        if (e != EEXIST)
            break;
    }
    if (e)
        f->tmp[0] = '\0';
    sim_signals_release();
    if (e)
        return sim_fail_path(err, SIM_EIO, f->path, "cannot make a temporary folder beside it: %s",
                             strerror(e));
    stage(f, "mkdir");
    return SIM_OK;
}

/* rename with flags where the system has renameat2; -1 with errno EINVAL where it has not. */
static int rename2(const char *from, const char *to, unsigned flags)
{
#ifdef RENAME_EXCHANGE
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
#else
    (void)from;
    (void)to;
    (void)flags;
    errno = EINVAL;
    return -1;
#endif
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_NOREPLACE (1 << 0)
#endif

/* Publish the temporary folder (see sim.h). */
int sim_folder_publish(struct sim_folder *f, char err[SIM_ERRLEN])
{
    if (!f->tmp[0] || f->lock_fd < 0)
        return sim_fail_path(err, SIM_EARG, f->path, "no temporary folder to publish");
    sim_signals_hold();
    int rc = sync_dir(f->tmp);
    sim_signals_release();
    if (rc != 0)
        return sim_fail_path(err, SIM_EIO, f->tmp, "fsync failed: %s", strerror(errno));
    stage(f, "fsync");

    sim_signals_hold();
    struct stat st;
    int e = 0;
    if (lstat(f->path, &st) != 0) {
        /* nothing there: a plain rename, refusing to replace what may appear meanwhile */
        int r = rename2(f->tmp, f->path, RENAME_NOREPLACE);
        if (r != 0 && (errno == EINVAL || errno == ENOSYS))
            r = rename(f->tmp, f->path);
        if (r != 0)
            e = errno;
        else
            f->tmp[0] = '\0'; /* nothing of ours is left beside the path */
    } else if (!f->no_exchange && rename2(f->tmp, f->path, RENAME_EXCHANGE) == 0) {
        /* swapped: the temporary name now holds the old folder, removed below */
    } else if (f->no_exchange || errno == EINVAL || errno == ENOSYS) {
        /* no exchange here: the old folder aside first, then the new one in */
        unsigned k = atomic_fetch_add(&name_counter, 1u);
        snprintf(f->aside, sizeof f->aside, "%s/.%s.aside.%ld.%u", f->parent, f->base,
                 (long)getpid(), k);
        if (rename(f->path, f->aside) != 0) {
            e = errno;
            f->aside[0] = '\0';
        }
        sim_signals_release();
        if (!e)
            stage(f, "aside");
        sim_signals_hold();
        if (!e && rename(f->tmp, f->path) != 0) {
            e = errno;
            if (rename(f->aside, f->path) == 0) /* the old folder back */
                f->aside[0] = '\0';
        }
        if (!e) {
            snprintf(f->tmp, sizeof f->tmp, "%s", f->aside); /* the old folder, removed below */
            f->aside[0] = '\0';
        }
    } else {
        e = errno;
    }
    sim_signals_release();
    if (e)
        return sim_fail_path(err, SIM_EIO, f->path, "cannot put the new folder in place: %s",
                             strerror(e));
    stage(f, "swap");

    sim_signals_hold();
    if (f->tmp[0])
        sim_remove_tree(f->tmp);
    f->tmp[0] = '\0';
    rc = sync_dir(f->parent);
    sim_signals_release();
    if (rc != 0)
        return sim_fail_path(err, SIM_EIO, f->parent, "fsync failed: %s", strerror(errno));
    stage(f, "done");
    return SIM_OK;
}

/* Release the lock (see sim.h). */
void sim_folder_unlock(struct sim_folder *f)
{
    if (f->lock_fd < 0)
        return;
    unlink(f->lock); /* before the close: whoever opens it now finds it gone and retries */
    close(f->lock_fd);
    f->lock_fd = -1;
}

/* Undo a run in progress (see sim.h). */
void sim_folder_abort(struct sim_folder *f)
{
    struct stat st;
    if (f->aside[0] && lstat(f->path, &st) != 0 && rename(f->aside, f->path) == 0)
        f->aside[0] = '\0';
    if (f->tmp[0])
        sim_remove_tree(f->tmp);
    f->tmp[0] = '\0';
    sim_folder_unlock(f);
}
