/* tfs.h: the tests' file system helpers, header only: fresh temporary folders, removing a
 * tree, counting a folder's entries, whole files in and out. No test framework needed. */
#ifndef TESTS_TFS_H
#define TESTS_TFS_H

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh empty folder "$TMPDIR/{tag}.XXXXXX" ($TMPDIR or /tmp) into buf; 0, or -1. */
static inline int tfs_mkdtemp(char *buf, size_t len, const char *tag)
{
    const char *t = getenv("TMPDIR");
    if (snprintf(buf, len, "%s/%s.XXXXXX", t && *t ? t : "/tmp", tag) >= (int)len)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

/* Remove path and, if it is a folder, everything under it: symbolic links are removed, never
 * followed; folders are made writable first (a test may have made one read-only). */
static inline void tfs_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            if (!sub)
                continue;
            snprintf(sub, len, "%s/%s", path, e->d_name);
            tfs_remove_tree(sub);
            free(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Entries of a folder besides . and .. (hidden ones included); -1 if it cannot be opened. */
static inline int tfs_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* A whole file in a malloc'd buffer with a NUL after the *len bytes; NULL if unreadable. */
static inline unsigned char *tfs_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap + 1);
    for (size_t got; b && (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *g = realloc(b, 2 * cap + 1);
            if (!g) {
                free(b);
                b = NULL;
                break;
            }
            b = g;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

/* Write len bytes as the whole content of path (created or truncated); 0, or -1. */
static inline int tfs_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

/* 1 if path exists (as anything, a dangling link included). */
static inline int tfs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

#ifdef _GNU_SOURCE
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

/* Exit status of tfs_on_small_disk when this machine does not let the test mount (not root,
 * no mount namespaces): the caller skips. */
#define TFS_NO_MOUNT 77

/* Run fn(dir, arg) in a child process with its own mount namespace and a tmpfs of kib KiB
 * mounted on the existing folder dir: a full disk that is the test's alone and vanishes with
 * the child. Returns the child's exit status (fn's return value), TFS_NO_MOUNT, or -1. fn
 * runs in the child: it reports through its return value, not the test framework. */
static inline int tfs_on_small_disk(const char *dir, int kib, int (*fn)(const char *, void *),
                                    void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char opt[64];
        snprintf(opt, sizeof opt, "size=%dk", kib);
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tfs", dir, "tmpfs", 0, opt) != 0)
            _exit(TFS_NO_MOUNT);
        int rc = fn(dir, arg);
        fflush(NULL);
        _exit(rc);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
#endif

/* Run a shell command line (printf-style); its exit status, 128 + the signal if it was
 * killed, -1 if the line does not fit (never a cut command). */
static inline int tfs_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tfs_run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof cmd)
        return -1;
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Run "{prog} {args}" with its output discarded and its standard error captured in
 * {dir}/stderr.txt, then copied into err (errlen bytes, NUL-terminated) when err is not NULL.
 * Its exit status as tfs_run's (-1 when the command line does not fit). */
static inline int tfs_run_err(const char *dir, const char *prog, const char *args, char *err,
                              size_t errlen)
{
    char errfile[4200];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    int st = tfs_run("%s %s >/dev/null 2>'%s'", prog, args, errfile);
    if (err && errlen > 0) {
        FILE *f = fopen(errfile, "r");
        size_t n = f ? fread(err, 1, errlen - 1, f) : 0;
        err[n] = '\0';
        if (f)
            fclose(f);
    }
    return st;
}

#endif
