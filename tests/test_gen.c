/* test_gen.c: the nbody-gen program end to end: files, shapes, determinism across
 * threads and runs, --force, reference seeds, bad arguments and sizes, and signals; the
 * dataset published whole (kill at every stage), one writer at a time, and its sidecar. */
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
#include "tfs.h"

#define GEN BIN_DIR "/sim/nbody-gen"
/* Small but real: 9 frames of 100 steps, 5 bodies. */
#define SMALL "--train 6 --valid 4 --test 3 --length 1000 --sample-freq 100"

static char root[256];

static int setup(void **state)
{
    (void)state;
    return tfs_mkdtemp(root, sizeof root, "test_gen");
}

static int teardown(void **state)
{
    (void)state;
    tfs_remove_tree(root);
    return 0;
}

/* Run nbody-gen with args; its exit status; stderr into err (errlen bytes) if given. */
static int gen(const char *args, char *err, size_t errlen)
{
    return tfs_run_err(root, GEN, args, err, errlen);
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

/* Whole file into a malloc'd buffer, NULL if unreadable. */
static char *slurp(const char *path, size_t *len)
{
    return (char *)tfs_slurp(path, len);
}

static const char *const splits[3] = {"train", "valid", "test"};
static const char *const quantities[4] = {"loc", "vel", "edges", "charges"};

/* Entries of root that a run on root/{base} may leave beside its folder: its temporary
 * folders (".{base}.tmp.P.N"), an old folder set aside (".{base}.aside.P.N"), its lock. */
static int leftovers(const char *base)
{
    DIR *d = opendir(root);
    assert_non_null(d);
    char pre[300];
    snprintf(pre, sizeof pre, ".%s.", base);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, pre, strlen(pre))) {
            print_message("left behind: %s/%s\n", root, e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* The sidecar of dir lists exactly the twelve files with their sizes and digests, and the
 * run's settings; its run id into run_id (64 bytes) if given. */
static void assert_sidecar_matches(const char *dir, int kind, int n, const char *tag,
                                   long seed, char *run_id)
{
    struct sim_manifest m;
    int present = 0;
    char err[SIM_ERRLEN];
    if (sim_manifest_read(dir, &m, &present, err) != SIM_OK)
        fail_msg("%s", err);
    assert_true(present);
    assert_int_equal(m.nfiles, 12);
    assert_string_equal(m.sim, sim_kind_name(kind));
    assert_int_equal(m.bodies, n);
    assert_int_equal(m.seed, seed);
    assert_string_equal(m.tag, tag);
    assert_true(m.run_id[0] != '\0');
    for (int s = 0; s < 3; s++)
        for (int q = 0; q < 4; q++) {
            char path[600], name[300];
            sim_dataset_path(path, sizeof path, dir, quantities[q], splits[s], kind, n, tag);
            sim_dataset_path(name, sizeof name, NULL, quantities[q], splits[s], kind, n, tag);
            const struct sim_manifest_file *f = sim_manifest_find(&m, name);
            if (!f)
                fail_msg("%s/dataset.json does not list %s", dir, name);
            unsigned char d[32];
            int64_t bytes;
            assert_int_equal(sim_file_sha256(path, d, &bytes, err), SIM_OK);
            assert_int_equal(bytes, f->bytes);
            assert_memory_equal(d, f->sha256, 32);
        }
    if (run_id)
        snprintf(run_id, 64, "%s", m.run_id);
}

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
    assert_int_equal(count_files(dir), 13); /* the twelve and dataset.json */
    assert_sidecar_matches(dir, SIM_DYNAMIC, 7, "x", 43, NULL);
    assert_int_equal(leftovers("shapes"), 0);
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
    assert_int_equal(count_files(dir), 13); /* no temporaries left behind */
    assert_int_equal(leftovers("force"), 0);
    free(same);
    snprintf(args, sizeof args, SMALL " --seed 7 --force --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_sidecar_matches(dir, SIM_CHARGED, 5, "small", 7, NULL);
    assert_int_equal(leftovers("force"), 0);
    char *after = slurp(path, &l1);
    assert_int_equal(l0, l1);
    assert_memory_not_equal(before, after, l0);
    free(before);
    free(after);
}

/* Make an empty file. */
static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

/* What runs killed with SIGKILL leave is removed by the next run: their private folders
 * (".stale.tmp.P.N", half filled), an old folder set aside (".stale.aside.P.N"), a stale
 * lock, and inside the folder the in-place temporaries of earlier versions (".partial",
 * "*.partial.tmp.P.N"); anything else in the folder makes the run refuse, touching nothing.
 * An old folder set aside while the path is empty is put back. */
static void test_stale_temporaries(void **state)
{
    (void)state;
    char dir[300], args[700], path[600], junk[8][700];
    snprintf(dir, sizeof dir, "%s/stale", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    sim_dataset_path(path, sizeof path, dir, "vel", "train", SIM_CHARGED, 5, "small");
    snprintf(junk[0], sizeof junk[0], "%s.partial", path);
    snprintf(junk[1], sizeof junk[1], "%s.partial.tmp.99999.7", path);
    snprintf(junk[2], sizeof junk[2], "%s/.stale.tmp.99999.3", root);
    snprintf(junk[3], sizeof junk[3], "%s/.stale.tmp.99999.3/loc_train_charged5_initvel1small.npy",
             root);
    snprintf(junk[4], sizeof junk[4], "%s/.stale.aside.99998.1", root);
    snprintf(junk[5], sizeof junk[5], "%s/.stale.lock", root);
    touch(junk[0]);
    touch(junk[1]);
    assert_int_equal(mkdir(junk[2], 0755), 0);
    touch(junk[3]);
    assert_int_equal(mkdir(junk[4], 0755), 0);
    touch(junk[5]);
    /* a file of someone else's in the folder: refused, nothing touched */
    char notes[400], err[1024];
    snprintf(notes, sizeof notes, "%s/notes.txt", dir);
    touch(notes);
    snprintf(args, sizeof args, SMALL " --out '%s'", dir);
    assert_int_not_equal(gen(args, err, sizeof err), 0);
    if (!strstr(err, notes) || !strstr(err, "not part of this dataset"))
        fail_msg("message \"%s\"", err);
    assert_int_equal(count_files(dir), 3);
    assert_int_equal(unlink(notes), 0);
    /* now the run succeeds and nothing stale is left, inside or beside the folder */
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_int_equal(tfs_count_entries(dir), 13);
    assert_sidecar_matches(dir, SIM_CHARGED, 5, "small", 43, NULL);
    assert_int_equal(leftovers("stale"), 0);
    /* a folder set aside by a killed publish, with the path empty: put back, then kept */
    char aside[400], ref[300];
    snprintf(aside, sizeof aside, "%s/.stale.aside.12345.6", root);
    assert_int_equal(rename(dir, aside), 0);
    snprintf(args, sizeof args, SMALL " --seed 9 --out '%s'", dir);
    assert_int_not_equal(gen(args, err, sizeof err), 0);
    assert_non_null(strstr(err, "--force"));
    snprintf(ref, sizeof ref, "%s/stale-ref", root);
    snprintf(args, sizeof args, SMALL " --out '%s'", ref);
    assert_int_equal(gen(args, NULL, 0), 0);
    assert_same_dataset(dir, ref, SIM_CHARGED, 5, "small");
    assert_int_equal(leftovers("stale"), 0);
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

/* 1 if root holds an entry starting with prefix that contains one (a, b NULL: any) of the
 * strings, looking one level into folders: e.g. a finished .npy inside a private folder. */
static int root_has(const char *prefix, const char *a)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (!a) {
            found = 1;
            break;
        }
        char sub[600];
        snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
        DIR *s2 = opendir(sub);
        struct dirent *f;
        while (s2 && !found && (f = readdir(s2)))
            found = strstr(f->d_name, a) != NULL;
        if (s2)
            closedir(s2);
    }
    closedir(d);
    return found;
}

/* Longest wait for a run to reach the state a signal is meant to interrupt. */
#define REACH_TIMEOUT_S 120.0
#define POLL_INTERVAL_NS 2000000L

/* Seconds since t0. */
static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Start nbody-gen with argv (NULL-terminated) and, if given, the NBODY_GEN_FAULT value;
 * output to /dev/null. */
static pid_t spawn(const char *fault, char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        if (fault)
            setenv("NBODY_GEN_FAULT", fault, 1);
        else
            unsetenv("NBODY_GEN_FAULT");
        execv(GEN, argv);
        _exit(127);
    }
    return pid;
}

/* Ctrl-C, kill or hang-up during a run leaves nothing: the signal is sent once the run has
 * reached the state under test, seen on disk (polled, so on any machine): the lock taken
 * (simulating, nothing written), a finished .npy in the private folder, and the private
 * folder at all (possibly mid-write, when signals wait for the file). Then neither the
 * folder nor anything beside it exists. */
static void test_interrupted(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/interrupted", root);
    const struct {
        int sig;
        const char *prefix, *inside; /* wait for an entry of root with the prefix (holding) */
    } cases[] = {{SIGINT, ".interrupted.lock", NULL},
                 {SIGTERM, ".interrupted.tmp.", ".npy"},
                 {SIGHUP, ".interrupted.tmp.", NULL}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        /* several seconds of work: valid (2000) is written while train (3000) remains */
        char *argv[] = {GEN, "--train", "3000", "--valid", "2000", "--test", "0", "--threads", "1",
                        "--out", dir, NULL};
        pid_t pid = spawn(NULL, argv);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int reached = 0, status = 0;
        pid_t done = 0;
        for (;;) {
            reached = root_has(cases[k].prefix, cases[k].inside);
            if (reached || (done = waitpid(pid, &status, WNOHANG)) != 0)
                break;
            if (since(&t0) > REACH_TIMEOUT_S)
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
        assert_false(tfs_exists(dir));
        assert_int_equal(leftovers("interrupted"), 0);
    }
}

/* SIGINT and SIGTERM at pseudo-random moments of runs on 2 threads, over an older dataset
 * (--force): each run dies of its signal (or has finished), the folder holds the old dataset
 * or the new one whole, and nothing is left beside it. */
static void test_interrupted_random(void **state)
{
    (void)state;
    char dir[300], old[300], new[300], args[700];
    snprintf(dir, sizeof dir, "%s/random", root);
    snprintf(old, sizeof old, "%s/random-old", root);
    snprintf(new, sizeof new, "%s/random-new", root);
    const char *size = "--train 300 --valid 200 --test 200 --length 1000 --sample-freq 100";
    snprintf(args, sizeof args, "%s --threads 2 --seed 1 --out '%s'", size, old);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, "%s --threads 2 --seed 2 --out '%s'", size, new);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, "%s --threads 2 --seed 1 --out '%s'", size, dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    srand(12);
    int got_old = 0, got_new = 0;
    for (int k = 0; k < 12; k++) {
        char *argv[] = {GEN, "--train", "300", "--valid", "200", "--test", "200", "--length",
                        "1000", "--sample-freq", "100", "--threads", "2", "--seed", "2",
                        "--force", "--out", dir, NULL};
        const int sig = k % 2 ? SIGTERM : SIGINT;
        const long delay_us = (long)(rand() % 400000); /* 0-0.4 s: a run takes ~0.2-1 s */
        pid_t pid = spawn(NULL, argv);
        nanosleep(&(struct timespec){delay_us / 1000000, (delay_us % 1000000) * 1000}, NULL);
        kill(pid, sig);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == sig) &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fail_msg("signal %d after %ld us: status 0x%x", sig, delay_us, status);
        assert_int_equal(leftovers("random"), 0);
        char run_id[64];
        struct sim_manifest m;
        int present;
        char err[SIM_ERRLEN];
        assert_int_equal(sim_manifest_read(dir, &m, &present, err), SIM_OK);
        assert_true(present);
        assert_sidecar_matches(dir, SIM_CHARGED, 5, "small", m.seed, run_id);
        if (m.seed == 1) {
            assert_same_dataset(dir, old, SIM_CHARGED, 5, "small");
            got_old++;
        } else {
            assert_same_dataset(dir, new, SIM_CHARGED, 5, "small");
            got_new++;
            /* back to the old one for the next trial */
            snprintf(args, sizeof args, "%s --threads 2 --seed 1 --force --out '%s'", size, dir);
            assert_int_equal(gen(args, NULL, 0), 0);
        }
    }
    print_message("random interruptions: %d left the old dataset, %d the new one\n", got_old,
                  got_new);
}

/* A second writer of the same folder fails at once, naming the first one's pid, while the
 * first is held in the middle of its run (stopped after its third file); the first then
 * completes and the folder holds exactly its dataset. And two runs with different seeds
 * started together: the folder holds exactly one run's dataset. */
static void test_concurrent_writers(void **state)
{
    (void)state;
    char dir[300], ref[300], ref2[300], args[700], err[1024];
    snprintf(dir, sizeof dir, "%s/concurrent", root);
    snprintf(ref, sizeof ref, "%s/concurrent-ref", root);
    snprintf(ref2, sizeof ref2, "%s/concurrent-ref2", root);
    snprintf(args, sizeof args, SMALL " --seed 3 --out '%s'", ref);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, SMALL " --seed 4 --out '%s'", ref2);
    assert_int_equal(gen(args, NULL, 0), 0);
    char *argv[] = {GEN, "--train", "6", "--valid", "4", "--test", "3", "--length", "1000",
                    "--sample-freq", "100", "--seed", "3", "--out", dir, NULL};
    pid_t first = spawn("write-3:stop", argv);
    int status;
    assert_int_equal(waitpid(first, &status, WUNTRACED), first);
    assert_true(WIFSTOPPED(status));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(args, sizeof args, SMALL " --seed 4 --force --out '%s'", dir);
    int st = gen(args, err, sizeof err);
    const double took = since(&t0);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)first);
    if (st == 0 || !strstr(err, pid) || !strstr(err, dir))
        fail_msg("second writer: exit %d, \"%s\"", st, err);
    assert_true(took < 10.0); /* at once: it does not wait for the lock */
    char *nl = strchr(err, '\n');
    assert_true(nl && nl[1] == '\0');
    assert_false(tfs_exists(dir));
    assert_int_equal(kill(first, SIGCONT), 0);
    assert_int_equal(waitpid(first, &status, 0), first);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_same_dataset(dir, ref, SIM_CHARGED, 5, "small");
    assert_sidecar_matches(dir, SIM_CHARGED, 5, "small", 3, NULL);
    assert_int_equal(leftovers("concurrent"), 0);
    /* truly concurrent, with --force: one dataset, whole, whoever wins */
    for (int trial = 0; trial < 5; trial++) {
        char *a3[] = {GEN, "--train", "6", "--valid", "4", "--test", "3", "--length", "1000",
                      "--sample-freq", "100", "--seed", "3", "--force", "--out", dir, NULL};
        char *a4[] = {GEN, "--train", "6", "--valid", "4", "--test", "3", "--length", "1000",
                      "--sample-freq", "100", "--seed", "4", "--force", "--out", dir, NULL};
        pid_t p3 = spawn(NULL, a3), p4 = spawn(NULL, a4);
        int s3, s4;
        assert_int_equal(waitpid(p3, &s3, 0), p3);
        assert_int_equal(waitpid(p4, &s4, 0), p4);
        assert_true(WIFEXITED(s3) && WIFEXITED(s4));
        assert_true(WEXITSTATUS(s3) == 0 || WEXITSTATUS(s4) == 0);
        struct sim_manifest m;
        int present;
        assert_int_equal(sim_manifest_read(dir, &m, &present, err), SIM_OK);
        assert_true(present && (m.seed == 3 || m.seed == 4));
        assert_same_dataset(dir, m.seed == 3 ? ref : ref2, SIM_CHARGED, 5, "small");
        assert_sidecar_matches(dir, SIM_CHARGED, 5, "small", m.seed, NULL);
        assert_int_equal(leftovers("concurrent"), 0);
    }
}

/* The stages of a run, in order (NBODY_GEN_FAULT): the lock taken, the private folder made,
 * after each of the twelve files, the sidecar, the fsync, the swap, the end. */
static const char *const stages[] = {"lock",     "mkdir",    "write-1",  "write-2", "write-3",
                                     "write-4",  "write-5",  "write-6",  "write-7", "write-8",
                                     "write-9",  "write-10", "write-11", "write-12",
                                     "manifest", "fsync",    "swap",     "done"};
#define N_STAGES (sizeof stages / sizeof stages[0])
#define FIRST_PUBLISHED 16 /* "swap": from here the new dataset is in place */

/* A run killed (SIGKILL, or SIGTERM handled) at every stage, over an older dataset with
 * --force and into a new folder: the folder holds the old dataset or the new one, whole,
 * never a mix (the old until the swap, the new from it); a SIGTERM leaves nothing beside it,
 * a SIGKILL leaves what the next run removes. Also without RENAME_EXCHANGE (the old folder
 * moved aside first): killed in between, the path is empty and the next run puts the old
 * dataset back. */
static void test_kill_every_stage(void **state)
{
    (void)state;
    char dir[300], old[300], new[300], args[900];
    snprintf(dir, sizeof dir, "%s/stage", root);
    snprintf(old, sizeof old, "%s/stage-old", root);
    snprintf(new, sizeof new, "%s/stage-new", root);
    snprintf(args, sizeof args, SMALL " --seed 1 --out '%s'", old);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, SMALL " --seed 2 --out '%s'", new);
    assert_int_equal(gen(args, NULL, 0), 0);
    int kills = 0;
    for (int over = 0; over < 2; over++)
        for (int action = 0; action < 2; action++)
            for (size_t k = 0; k < N_STAGES; k++) {
                tfs_remove_tree(dir);
                if (over) {
                    snprintf(args, sizeof args, SMALL " --seed 1 --out '%s'", dir);
                    assert_int_equal(gen(args, NULL, 0), 0);
                }
                char fault[64];
                snprintf(fault, sizeof fault, "%s%s", stages[k], action ? ":term" : "");
                char *argv[] = {GEN, "--train", "6", "--valid", "4", "--test", "3", "--length",
                                "1000", "--sample-freq", "100", "--seed", "2", "--force",
                                "--out", dir, NULL};
                pid_t pid = spawn(fault, argv);
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                const int sig = action ? SIGTERM : SIGKILL;
                if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
                    fail_msg("%s: status 0x%x", fault, status);
                kills++;
                if (k >= FIRST_PUBLISHED)
                    assert_same_dataset(dir, new, SIM_CHARGED, 5, "small");
                else if (over)
                    assert_same_dataset(dir, old, SIM_CHARGED, 5, "small");
                else
                    assert_false(tfs_exists(dir));
                if (tfs_exists(dir))
                    assert_int_equal(count_files(dir), 13);
                if (action) /* the handler cleaned up */
                    assert_int_equal(leftovers("stage"), 0);
                /* the next run leaves no temporary and the new dataset */
                snprintf(args, sizeof args, SMALL " --seed 2 --force --out '%s'", dir);
                assert_int_equal(gen(args, NULL, 0), 0);
                assert_same_dataset(dir, new, SIM_CHARGED, 5, "small");
                assert_int_equal(leftovers("stage"), 0);
            }
    /* no RENAME_EXCHANGE: killed with the old folder aside and the new one not yet in */
    tfs_remove_tree(dir);
    snprintf(args, sizeof args, SMALL " --seed 1 --out '%s'", dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    snprintf(args, sizeof args, "env NBODY_GEN_NO_EXCHANGE=1 NBODY_GEN_FAULT=aside " GEN " "
             SMALL " --seed 2 --force --out '%s' 2> /dev/null", dir);
    assert_int_not_equal(system(args), 0);
    kills++;
    assert_false(tfs_exists(dir)); /* the one window of this path: no folder, never a mix */
    snprintf(args, sizeof args, SMALL " --seed 2 --out '%s'", dir);
    char err[1024];
    assert_int_not_equal(gen(args, err, sizeof err), 0); /* the old one is back: --force */
    assert_non_null(strstr(err, "--force"));
    assert_same_dataset(dir, old, SIM_CHARGED, 5, "small");
    assert_int_equal(leftovers("stage"), 0);
    /* and a whole run that way publishes like the exchange */
    snprintf(args, sizeof args, "env NBODY_GEN_NO_EXCHANGE=1 " GEN " " SMALL
             " --seed 2 --force --out '%s' 2> /dev/null", dir);
    assert_int_equal(system(args), 0);
    assert_same_dataset(dir, new, SIM_CHARGED, 5, "small");
    assert_int_equal(leftovers("stage"), 0);
    print_message("kill points: %d runs killed, each left the old or the new dataset whole\n",
                  kills);
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
        cmocka_unit_test(test_interrupted_random),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_kill_every_stage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
