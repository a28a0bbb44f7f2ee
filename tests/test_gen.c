/* test_gen.c: the nbody-gen program end to end: files, shapes, determinism across
 * threads and runs, --force, reference seeds, bad arguments and sizes, and signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define GEN BIN_DIR "/sim/nbody-gen"
/* Small but real: 9 frames of 100 steps, 5 bodies. */
#define SMALL "--train 6 --valid 4 --test 3 --length 1000 --sample-freq 100"

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/test_gen.XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run nbody-gen with args; returns its exit status; stderr into *err if given. */
static int gen(const char *args, char *err, size_t errlen)
{
    char cmd[2048], errfile[300];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", root);
    snprintf(cmd, sizeof cmd, GEN " %s >/dev/null 2>'%s'", args, errfile);
    int st = system(cmd);
    if (err) {
        FILE *f = fopen(errfile, "r");
        size_t n = f ? fread(err, 1, errlen - 1, f) : 0;
        err[n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Whole file into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len ? *len : 1);
    if (fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static const char *const splits[3] = {"train", "valid", "test"};
static const char *const quantities[4] = {"loc", "vel", "edges", "charges"};

/* Every one of the 12 files in a and b has the same bytes. */
static void assert_same_dataset(const char *a, const char *b, int kind, int n, const char *tag)
{
    for (int s = 0; s < 3; s++)
        for (int q = 0; q < 4; q++) {
            char pa[512], pb[512];
            sim_dataset_path(pa, sizeof pa, a, quantities[q], splits[s], kind, n, tag);
            sim_dataset_path(pb, sizeof pb, b, quantities[q], splits[s], kind, n, tag);
            size_t la, lb;
            char *da = slurp(pa, &la), *db = slurp(pb, &lb);
            assert_non_null(da);
            assert_non_null(db);
            assert_int_equal(la, lb);
            assert_memory_equal(da, db, la);
            free(da);
            free(db);
        }
}

static void read_npy(const char *dir, const char *q, const char *split, int kind, int n,
                     const char *tag, struct sim_npy *a)
{
    char path[512], err[SIM_ERRLEN];
    sim_dataset_path(path, sizeof path, dir, q, split, kind, n, tag);
    int st = sim_npy_read(path, a, err);
    if (st != SIM_OK)
        fail_msg("%s", err);
}

/* Files read back with the SPEC §2 shapes, float64, charges +-1, edges q q^T. */
static void test_shapes_and_contents(void **state)
{
    (void)state;
    char dir[300], args[600];
    snprintf(dir, sizeof dir, "%s/shapes", root);
    snprintf(args, sizeof args, SMALL " --sim dynamic --bodies 7 --tag x --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_int_equal(count_files(dir), 12);
    const long counts[3] = {6, 4, 3};
    for (int s = 0; s < 3; s++) {
        struct sim_npy loc, vel, edges, charges;
        read_npy(dir, "loc", splits[s], SIM_DYNAMIC, 7, "x", &loc);
        read_npy(dir, "vel", splits[s], SIM_DYNAMIC, 7, "x", &vel);
        read_npy(dir, "edges", splits[s], SIM_DYNAMIC, 7, "x", &edges);
        read_npy(dir, "charges", splits[s], SIM_DYNAMIC, 7, "x", &charges);
        const int64_t lv[4] = {counts[s], 9, 3, 7}, e[3] = {counts[s], 7, 7}, c[3] = {counts[s], 7, 1};
        assert_int_equal(loc.ndim, 4);
        assert_int_equal(vel.ndim, 4);
        assert_memory_equal(loc.shape, lv, sizeof lv);
        assert_memory_equal(vel.shape, lv, sizeof lv);
        assert_int_equal(edges.ndim, 3);
        assert_memory_equal(edges.shape, e, sizeof e);
        assert_int_equal(charges.ndim, 3);
        assert_memory_equal(charges.shape, c, sizeof c);
        assert_int_equal(loc.dtype, SIM_NPY_F8);
        assert_int_equal(charges.dtype, SIM_NPY_F8);
        for (long t = 0; t < counts[s]; t++)
            for (int i = 0; i < 7; i++) {
                double qi = charges.data[t * 7 + i];
                assert_true(qi == 1.0 || qi == -1.0);
                for (int j = 0; j < 7; j++)
                    assert_true(edges.data[(t * 7 + i) * 7 + j] == qi * charges.data[t * 7 + j]);
            }
        for (size_t k = 0; k < loc.count; k++)
            assert_true(isfinite(loc.data[k]) && isfinite(vel.data[k]));
        sim_npy_free(&loc);
        sim_npy_free(&vel);
        sim_npy_free(&edges);
        sim_npy_free(&charges);
    }
}

/* 1 and 2 threads, and two runs with the same seed, give the same bytes; another seed does not. */
static void test_deterministic(void **state)
{
    (void)state;
    char d1[300], d2[300], d3[300], d4[300], args[700];
    snprintf(d1, sizeof d1, "%s/t1", root);
    snprintf(d2, sizeof d2, "%s/t2", root);
    snprintf(d3, sizeof d3, "%s/t2again", root);
    snprintf(d4, sizeof d4, "%s/seed44", root);
    snprintf(args, sizeof args, SMALL " --threads 1 --out '%s'", d1);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, SMALL " --threads 2 --out '%s'", d2);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, SMALL " --threads 2 --out '%s'", d3);
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_same_dataset(d1, d2, SIM_CHARGED, 5, "small");
    assert_same_dataset(d2, d3, SIM_CHARGED, 5, "small");
    snprintf(args, sizeof args, SMALL " --seed 44 --out '%s'", d4);
    assert_int_equal(gen(args, NULL, 0), 0);
    struct sim_npy a, b;
    read_npy(d1, "loc", "train", SIM_CHARGED, 5, "small", &a);
    read_npy(d4, "loc", "train", SIM_CHARGED, 5, "small", &b);
    assert_memory_not_equal(a.data, b.data, a.count * sizeof(double));
    sim_npy_free(&a);
    sim_npy_free(&b);
}

/* An existing dataset is kept without --force and replaced with it. */
static void test_force(void **state)
{
    (void)state;
    char dir[300], args[700], err[1024], path[512];
    snprintf(dir, sizeof dir, "%s/force", root);
    snprintf(args, sizeof args, SMALL " --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    sim_dataset_path(path, sizeof path, dir, "loc", "test", SIM_CHARGED, 5, "small");
    size_t l0, l1;
    char *before = slurp(path, &l0);
    snprintf(args, sizeof args, SMALL " --seed 7 --out '%s'", dir);
    assert_int_not_equal(gen(args, err, sizeof err), 0);
    assert_non_null(strstr(err, "--force"));
    char *same = slurp(path, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, same, l0);
    assert_int_equal(count_files(dir), 12); /* no temporaries left behind */
    free(same);
    snprintf(args, sizeof args, SMALL " --seed 7 --force --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    char *after = slurp(path, &l1);
    assert_int_equal(l0, l1);
    assert_memory_not_equal(before, after, l0);
    free(before);
    free(after);
}

/* What a run killed with SIGKILL leaves (a finished .partial, a half-written temporary of
 * sim_npy_write) is removed by the next run; other files stay. */
static void test_stale_temporaries(void **state)
{
    (void)state;
    char dir[300], args[700], path[600], junk[3][700];
    snprintf(dir, sizeof dir, "%s/stale", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    sim_dataset_path(path, sizeof path, dir, "vel", "train", SIM_CHARGED, 5, "small");
    snprintf(junk[0], sizeof junk[0], "%s.partial", path);
    snprintf(junk[1], sizeof junk[1], "%s.partial.tmp.99999.7", path);
    snprintf(junk[2], sizeof junk[2], "%s/notes.txt", dir);
    for (int k = 0; k < 3; k++) {
        FILE *f = fopen(junk[k], "w");
        assert_non_null(f);
        fclose(f);
    }
    snprintf(args, sizeof args, SMALL " --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_int_equal(count_files(dir), 13); /* the dataset and notes.txt */
    assert_int_not_equal(access(junk[0], F_OK), 0);
    assert_int_not_equal(access(junk[1], F_OK), 0);
    assert_int_equal(access(junk[2], F_OK), 0);
}

/* --reference-seeds: trajectory t starts from the state the reference draws for
 * its seed; default mode has no repeated trajectory across the three splits. */
static void test_seed_modes(void **state)
{
    (void)state;
    char dref[300], ddef[300], args[700];
    snprintf(dref, sizeof dref, "%s/ref", root);
    snprintf(ddef, sizeof ddef, "%s/def", root);
    /* 300 valid trajectories: the reference stream of seed 43 repeats seed 171376 at 204 and 289. */
    const char *many = "--train 2 --valid 300 --test 2 --length 200 --sample-freq 100";
    snprintf(args, sizeof args, "%s --reference-seeds --out '%s'", many, dref);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, "%s --out '%s'", many, ddef);
    assert_int_equal(gen(args, NULL, 0), 0);
    uint32_t seeds[304];
    assert_int_equal(sim_seeds(43, 304, 1, seeds), SIM_OK);
    struct sim_npy loc, ch, locd;
    read_npy(dref, "loc", "valid", SIM_CHARGED, 5, "small", &loc);
    read_npy(dref, "charges", "valid", SIM_CHARGED, 5, "small", &ch);
    read_npy(ddef, "loc", "valid", SIM_CHARGED, 5, "small", &locd);
    for (int t = 0; t < 300; t += 37) {
        double l[15], v[15], e[25], q[5];
        assert_int_equal(sim_trajectory(SIM_CHARGED, 5, 200, 100, seeds[t], l, v, e, q), SIM_OK);
        assert_memory_equal(l, loc.data + t * 15, sizeof l);
        assert_memory_equal(q, ch.data + t * 5, sizeof q);
    }
    /* The reference repeats a trajectory; default mode does not, and agrees before the repeat. */
    assert_memory_equal(loc.data + 204 * 15, loc.data + 289 * 15, 15 * sizeof(double));
    assert_memory_not_equal(locd.data + 204 * 15, locd.data + 289 * 15, 15 * sizeof(double));
    assert_memory_equal(locd.data, loc.data, 289 * 15 * sizeof(double));
    for (int a = 0; a < 300; a++)
        for (int b = a + 1; b < 300; b++)
            assert_memory_not_equal(locd.data + a * 15, locd.data + b * 15, 15 * sizeof(double));
    sim_npy_free(&loc);
    sim_npy_free(&ch);
    sim_npy_free(&locd);
}

/* Each bad argument: non-zero exit, one line naming the problem, no files. */
static void test_bad_arguments(void **state)
{
    (void)state;
    char dir[300], args[900], err[1024], file[320];
    snprintf(dir, sizeof dir, "%s/bad", root);
    snprintf(file, sizeof file, "%s/a-file", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    struct {
        const char *args, *expect;
    } cases[] = {
        {"--train -5", "--train"},
        {"--valid abc", "--valid"},
        {"--length 1050 --sample-freq 100", "multiple"},
        {"--length 100 --sample-freq 100", "--length"},
        {"--sim springs", "springs"},
        {"--bodies 1", "--bodies"},
        {"--seed -1", "--seed"},
        {"--threads 0", "--threads"},
        {"--frobnicate", "--frobnicate"},
        {"--train", "needs a value"},
        {"--train 0 --valid 0 --test 0", "nothing"},
        {"--tag a/b", "--tag"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(args, sizeof args, "--out '%s' %s", dir, cases[k].args);
        int st = gen(args, err, sizeof err);
        if (st == 0 || !strstr(err, cases[k].expect))
            fail_msg("'%s': exit %d, message '%s'", cases[k].args, st, err);
        char *nl = strchr(err, '\n');
        assert_true(nl && nl[1] == '\0'); /* exactly one line */
        assert_int_equal(count_files(dir), 0);
    }
    /* Unwritable output directory: a path through a regular file. */
    snprintf(args, sizeof args, SMALL " --out '%s/sub'", file);
    int st = gen(args, err, sizeof err);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(err, "output directory"));
}

/* Sizes that cannot be held: exit 2 before anything is allocated or created, one line naming
 * the size, and no output directory. (Each would need far more than any machine has: at
 * least 44 TiB, or more than 2^64 bytes.) */
static void test_bad_sizes(void **state)
{
    (void)state;
    char dir[300], args[900], err[1024];
    snprintf(dir, sizeof dir, "%s/toobig", root);
    struct {
        const char *args, *expect;
    } cases[] = {
        {"--train 100000000 --bodies 10000", "100000000 train trajectories of 10000 bodies"},
        {"--train 100000000 --bodies 10000 --length 2000000000 --sample-freq 1 --reference-seeds",
         "size_t"},
        {"--valid 100000000 --train 0 --test 0 --bodies 3000 --reference-seeds",
         "100000000 valid trajectories of 3000 bodies"},
        {"--train 1 --valid 1 --test 1 --bodies 10000 --length 100000000 --sample-freq 1",
         "99999999 frames"},
        {"--test 100000000 --train 0 --valid 0 --length 2000000000 --sample-freq 2 "
         "--reference-seeds", "test trajectories"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(args, sizeof args, "--out '%s' %s", dir, cases[k].args);
        int st = gen(args, err, sizeof err);
        if (st != 2 || !strstr(err, cases[k].expect) || !strstr(err, "bytes"))
            fail_msg("'%s': exit %d, message '%s'", cases[k].args, st, err);
        char *nl = strchr(err, '\n');
        assert_true(nl && nl[1] == '\0'); /* exactly one line */
        struct stat sb;
        assert_int_not_equal(stat(dir, &sb), 0); /* not even the directory */
    }
}

/* 1 if dir holds an entry whose name contains one of the two strings (NULL: ignored). */
static int dir_has(const char *dir, const char *a, const char *b)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = (a && strstr(e->d_name, a)) || (b && strstr(e->d_name, b));
    closedir(d);
    return found;
}

/* Longest wait for a run to reach the state a signal is meant to interrupt. */
#define REACH_TIMEOUT_S 120.0
#define POLL_INTERVAL_NS 2000000L

/* Ctrl-C, kill or hang-up during a run leaves nothing in the output directory: the signal is
 * sent once the run has reached the state under test, seen on disk (polled, so on any
 * machine): the directory made (simulating, nothing written), a finished temporary .partial
 * file, and any temporary at all (possibly mid-write, when signals wait for the file). */
static void test_interrupted(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/interrupted", root);
    const struct {
        int sig;
        const char *a, *b; /* wait for an entry containing one of these; both NULL: the dir */
    } cases[] = {{SIGINT, NULL, NULL}, {SIGTERM, ".partial", NULL}, {SIGHUP, ".partial", ".tmp."}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        /* several seconds of work: valid (2000) is written while train (3000) remains */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(GEN, GEN, "--train", "3000", "--valid", "2000", "--test", "0", "--threads", "1",
                  "--out", dir, (char *)NULL);
            _exit(127);
        }
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int reached = 0, status = 0;
        pid_t done = 0;
        for (;;) {
            struct stat sb;
            reached = cases[k].a ? dir_has(dir, cases[k].a, cases[k].b) : stat(dir, &sb) == 0;
            if (reached || (done = waitpid(pid, &status, WNOHANG)) != 0)
                break;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec + 1e-9 * (t.tv_nsec - t0.tv_nsec) > REACH_TIMEOUT_S)
                break;
            nanosleep(&(struct timespec){0, POLL_INTERVAL_NS}, NULL);
        }
        if (!reached) {
            if (!done) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            fail_msg("signal %d: the run %s before the state under test", cases[k].sig,
                     done ? "ended" : "did not get there in time");
        }
        assert_int_equal(kill(pid, cases[k].sig), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* the handler removes the files, then dies of the signal as the default action would */
        if (!WIFSIGNALED(status) || WTERMSIG(status) != cases[k].sig)
            fail_msg("signal %d: the run ended with status 0x%x", cases[k].sig, status);
        assert_int_equal(count_files(dir), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_contents),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_force),
        cmocka_unit_test(test_stale_temporaries),
        cmocka_unit_test(test_seed_modes),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_interrupted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
