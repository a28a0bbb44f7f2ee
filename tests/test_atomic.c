/* test_atomic.c: sim_atomic, the one atomic-write helper every writer uses: the umask
 * decides the mode, nothing is left behind on any failure, and messages name the final path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "tfs.h"

/* Writers opened at once from several threads in the uniqueness test. */
#define PARALLEL_WRITERS 64

/* Scratch directory of this run, removed at the end. */
static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    return tfs_mkdtemp(g_dir, sizeof g_dir, "test_atomic");
}

static int teardown(void **state)
{
    (void)state;
    tfs_remove_tree(g_dir);
    return 0;
}

/* A fresh subdirectory of the scratch directory for one test. */
static void subdir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
    assert_int_equal(mkdir(buf, 0755), 0);
}

/* Entries of dir whose name contains ".tmp." (temporaries). */
static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Contents of a small text file, "" if it cannot be read. */
static const char *contents(const char *path)
{
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The message must contain the word. */
static void assert_msg(const char *err, const char *word)
{
    if (!strstr(err, word))
        fail_msg("message \"%s\" does not contain \"%s\"", err, word);
}

/* Write text through sim_atomic and commit; returns the commit's status. */
static int atomic_text(const char *path, const char *text, char err[SIM_ERRLEN])
{
    struct sim_atomic a;
    int st = sim_atomic_open(&a, path, err);
    if (st != SIM_OK)
        return st;
    fputs(text, a.f);
    return sim_atomic_commit(&a, err);
}

/* The temporary is {path}.tmp.{pid}.{counter} beside the path; the path appears only at the
 * commit, with the mode 0666 & ~umask (umask 027: 0640), and the umask is left as it was. */
static void test_mode_name_and_visibility(void **state)
{
    (void)state;
    char dir[512], path[600], err[SIM_ERRLEN], prefix[700];
    subdir(dir, sizeof dir, "mode");
    snprintf(path, sizeof path, "%s/out.csv", dir);
    mode_t old = umask(027);
    struct sim_atomic a;
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_OK);
    snprintf(prefix, sizeof prefix, "%s.tmp.%ld.", path, (long)getpid());
    assert_int_equal(strncmp(a.tmp, prefix, strlen(prefix)), 0);
    const char *counter = a.tmp + strlen(prefix);
    assert_true(counter[0] && strspn(counter, "0123456789") == strlen(counter));
    assert_string_equal(a.path, path);
    assert_int_equal(access(a.tmp, F_OK), 0);
    assert_int_equal(access(path, F_OK), -1); /* not visible before the commit */
    fputs("a,b\n", a.f);
    assert_int_equal(sim_atomic_commit(&a, err), SIM_OK);
    mode_t now = umask(old);
    assert_int_equal(now, 027); /* the helper never changed it */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    assert_string_equal(contents(path), "a,b\n");
    assert_int_equal(count_temporaries(dir), 0);
    sim_atomic_abort(&a); /* after a commit: nothing to do, and the file stays */
    assert_int_equal(access(path, F_OK), 0);

    /* Another umask, another mode: the kernel applies it at creation. */
    old = umask(077);
    assert_int_equal(atomic_text(path, "x\n", err), SIM_OK);
    umask(old);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

/* The commit replaces an existing file in one rename; an abort leaves it as it was. */
static void test_replace_and_abort(void **state)
{
    (void)state;
    char dir[512], path[600], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "replace");
    snprintf(path, sizeof path, "%s/state", dir);
    write_text(path, "old\n");
    assert_int_equal(atomic_text(path, "new\n", err), SIM_OK);
    assert_string_equal(contents(path), "new\n");
    assert_int_equal(tfs_count_entries(dir), 1);

    struct sim_atomic a;
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_OK);
    fputs("half a fi", a.f);
    fflush(a.f);
    assert_int_equal(count_temporaries(dir), 1);
    sim_atomic_abort(&a);
    sim_atomic_abort(&a); /* twice is harmless */
    assert_string_equal(contents(path), "new\n");
    assert_int_equal(tfs_count_entries(dir), 1);
}

/* Two writers of one path, and writers on many threads, never share a temporary. A stale
 * file with the next name (a killed process that had our pid) is skipped, not clobbered. */
static void test_unique_temporaries(void **state)
{
    (void)state;
    char dir[512], path[600], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "unique");
    snprintf(path, sizeof path, "%s/x.npy", dir);
    struct sim_atomic a, b;
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_OK);
    assert_int_equal(sim_atomic_open(&b, path, err), SIM_OK);
    assert_string_not_equal(a.tmp, b.tmp);
    fputs("a", a.f);
    fputs("b", b.f);
    assert_int_equal(sim_atomic_commit(&a, err), SIM_OK);
    assert_int_equal(sim_atomic_commit(&b, err), SIM_OK);
    assert_string_equal(contents(path), "b"); /* the last commit wins, whole */
    assert_int_equal(count_temporaries(dir), 0);

    /* Predict the next name from this one's counter and plant a file there. */
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_OK);
    char stale[4300];
    const char *dot = strrchr(a.tmp, '.');
    snprintf(stale, sizeof stale, "%.*s.%lu", (int)(dot - a.tmp), a.tmp,
             strtoul(dot + 1, NULL, 10) + 1);
    sim_atomic_abort(&a);
    write_text(stale, "someone else's\n");
    assert_int_equal(sim_atomic_open(&b, path, err), SIM_OK);
    assert_string_not_equal(b.tmp, stale);
    fputs("mine", b.f);
    assert_int_equal(sim_atomic_commit(&b, err), SIM_OK);
    assert_string_equal(contents(stale), "someone else's\n");
    assert_string_equal(contents(path), "mine");
    unlink(stale);

    static struct sim_atomic w[PARALLEL_WRITERS];
    int status[PARALLEL_WRITERS];
#pragma omp parallel for num_threads(4)
    for (int k = 0; k < PARALLEL_WRITERS; k++)
        status[k] = sim_atomic_open(&w[k], path, NULL);
    for (int k = 0; k < PARALLEL_WRITERS; k++) {
        assert_int_equal(status[k], SIM_OK);
        for (int j = 0; j < k; j++)
            assert_string_not_equal(w[k].tmp, w[j].tmp);
    }
    assert_int_equal(count_temporaries(dir), PARALLEL_WRITERS);
    for (int k = 0; k < PARALLEL_WRITERS; k++)
        sim_atomic_abort(&w[k]);
    assert_int_equal(count_temporaries(dir), 0);
}

/* A directory that does not exist, or a path through a regular file, or a read-only
 * directory: SIM_EIO naming the final path and the reason, and no file anywhere. */
static void test_unwritable_directory(void **state)
{
    (void)state;
    char dir[512], path[700], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "unwritable");
    struct sim_atomic a;
    snprintf(path, sizeof path, "%s/no/such/dir/x.csv", dir);
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_EIO);
    assert_msg(err, path);
    assert_msg(err, strerror(ENOENT));
    assert_null(a.f);
    sim_atomic_abort(&a); /* after a failed open: harmless */

    char file[600];
    snprintf(file, sizeof file, "%s/a-file", dir);
    write_text(file, "f");
    snprintf(path, sizeof path, "%s/x.png", file);
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_EIO);
    assert_msg(err, path);
    assert_msg(err, strerror(ENOTDIR));
    assert_int_equal(tfs_count_entries(dir), 1);

    /* root ignores directory permissions, so this part runs only for other users */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    assert_int_equal(mkdir(ro, 0555), 0);
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/x.ckpt", ro);
        assert_int_equal(sim_atomic_open(&a, path, err), SIM_EIO);
        assert_msg(err, path);
        assert_msg(err, strerror(EACCES));
        assert_int_equal(tfs_count_entries(ro), 0);
    }

    assert_int_equal(sim_atomic_open(&a, "", err), SIM_EARG);
    assert_int_equal(sim_atomic_open(&a, NULL, err), SIM_EARG);
    char *longp = malloc(5000);
    assert_non_null(longp);
    memset(longp, 'a', 4999);
    longp[4999] = '\0';
    assert_int_equal(sim_atomic_open(&a, longp, err), SIM_EARG);
    assert_msg(err, "too long");
    free(longp);
}

/* The rename fails (the target is a non-empty directory): the message names the path and the
 * rename, the temporary is gone, the directory untouched. */
static void test_rename_failure(void **state)
{
    (void)state;
    char dir[512], target[600], inside[700], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "rename");
    snprintf(target, sizeof target, "%s/target", dir);
    assert_int_equal(mkdir(target, 0755), 0);
    snprintf(inside, sizeof inside, "%s/keep", target);
    write_text(inside, "k");
    assert_int_equal(atomic_text(target, "data", err), SIM_EIO);
    assert_msg(err, target);
    assert_msg(err, "rename");
    assert_int_equal(count_temporaries(dir), 0);
    assert_string_equal(contents(inside), "k");
}

/* Writing fails part-way (file size limit), through sim_atomic_write and through stdio on
 * a.f: the commit fails naming the path and EFBIG, the old file stays, no temporary. */
static void test_write_failure(void **state)
{
    (void)state;
    char dir[512], path[600], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "efbig");
    snprintf(path, sizeof path, "%s/big.bin", dir);
    write_text(path, "old\n");
    enum { BIG = 1 << 16, LIMIT = 4096 };
    char *big = calloc(BIG, 1);
    assert_non_null(big);
    struct rlimit lim, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = LIMIT;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    for (int how = 0; how < 2; how++) {
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        struct sim_atomic a;
        int st = sim_atomic_open(&a, path, err);
        if (st == SIM_OK) {
            if (how == 0) {
                sim_atomic_write(&a, big, BIG);
                assert_int_equal(sim_atomic_write(&a, "x", 1), -1); /* stays failed */
            } else {
                fwrite(big, 1, BIG, a.f);
            }
            st = sim_atomic_commit(&a, err);
        }
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        assert_int_equal(st, SIM_EIO);
        assert_msg(err, path);
        assert_msg(err, strerror(EFBIG));
        assert_int_equal(count_temporaries(dir), 0);
        assert_string_equal(contents(path), "old\n");
    }
    signal(SIGXFSZ, prev);
    free(big);
}

/* The name test for left-over temporaries: what sim_atomic_open makes, and nothing else. */
static void test_is_temp(void **state)
{
    (void)state;
    char dir[512], path[600], err[SIM_ERRLEN];
    subdir(dir, sizeof dir, "names");
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    struct sim_atomic a;
    assert_int_equal(sim_atomic_open(&a, path, err), SIM_OK);
    assert_true(sim_atomic_is_temp(strrchr(a.tmp, '/') + 1, "run.ckpt"));
    assert_false(sim_atomic_is_temp(strrchr(a.tmp, '/') + 1, "run"));
    sim_atomic_abort(&a);
    assert_true(sim_atomic_is_temp("x.csv.tmp.1.0", "x.csv"));
    const char *not_temp[] = {"x.csv", "x.csv.tmp.", "x.csv.tmp.12", "x.csv.tmp.12.",
                              "x.csv.tmp..3", "x.csv.tmp.12.3a", "x.csv.tmp.a.3", "y.csv.tmp.1.2",
                              "x.csv.state.tmp.1.2"};
    for (size_t k = 0; k < sizeof not_temp / sizeof *not_temp; k++)
        if (sim_atomic_is_temp(not_temp[k], "x.csv"))
            fail_msg("'%s' taken for a temporary of x.csv", not_temp[k]);
    assert_false(sim_atomic_is_temp(NULL, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_name_and_visibility),
        cmocka_unit_test(test_replace_and_abort),
        cmocka_unit_test(test_unique_temporaries),
        cmocka_unit_test(test_unwritable_directory),
        cmocka_unit_test(test_rename_failure),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_is_temp),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
