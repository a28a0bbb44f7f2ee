/* test_streams.c: nbody-gen --stream against the published generators themselves (golden first
 * trajectories in tests/data/streams_golden.h), the egnn stream's state after a trajectory,
 * its unsoftened physics, the streams' flags, and what the sidecar records of a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim.h"
#include "tfs.h"
#include "data/streams_golden.h"

#define GEN BIN_DIR "/sim/nbody-gen"

/* Charges are drawn, not computed: equal exactly. Frame 0 is 100 steps from equal initial
 * states; the only difference from the reference is d^3 as d2 sqrt(d2) against NumPy's pow
 * (an ulp apart), measured at most 3.3e-16 on these trajectories: 1e-12 leaves room for other
 * libms' sqrt/log and still catches a wrong draw (O(1)) or a wrong softening (~1e-8). */
#define FRAME0_TOL 1e-12
/* Frame 40 (4000 steps) is chaotic (SPEC §1): two correct implementations that differ only in
 * summation order agree to ~1e-14 on most trajectories and diverge to O(0.1) on 5-10%. So, over
 * the 30 trajectories of a stream (10 per split), with d the largest coordinate difference of
 * a trajectory: the median d at most FRAME40_MEDIAN_TOL (measured 9.3e-15 clofnet, 4.1e-14
 * clofnet-serial, 5.2e-15 egnn; a rounding-level agreement, 20x below the bar), and at least
 * FRAME40_MIN_AGREE of 30 with d within FRAME40_TOL (measured 30, 29, 30; the bar allows the
 * 20% a 30-trajectory sample of a 5-10% rate can show). A wrong stream fails both (d ~ 1). */
#define FRAME40_MEDIAN_TOL 1e-12
#define FRAME40_TOL 1e-3
#define FRAME40_MIN_AGREE 24

static char root[256];

static int setup(void **state)
{
    (void)state;
    return tfs_mkdtemp(root, sizeof root, "test_streams");
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

static const char *const splits[3] = {"train", "valid", "test"};
static const long counts[3] = {GOLDEN_STREAMS_TRAIN, GOLDEN_STREAMS_VALID, GOLDEN_STREAMS_TEST};

/* The golden run's counts and seed, as nbody-gen flags. */
#define GOLDEN_ARGS "--train 60 --valid 20 --test 20 --seed 43 --threads 2"

/* Read dir's quantity of split into a (5 bodies, charged, tag small). */
static void load(const char *dir, const char *quantity, const char *split, struct sim_npy *a)
{
    char path[600], err[SIM_ERRLEN];
    sim_dataset_path(path, sizeof path, dir, quantity, split, SIM_CHARGED, GOLDEN_STREAMS_BODIES,
                     "small");
    if (sim_npy_read(path, a, err) != SIM_OK)
        fail_msg("%s", err);
}

/* Largest |a - b| over n values. */
static double max_diff(const double *a, const double *b, int n)
{
    double m = 0;
    for (int k = 0; k < n; k++)
        m = fmax(m, fabs(a[k] - b[k]));
    return m;
}

/* d (see FRAME40_MEDIAN_TOL) of the first GOLDEN_STREAMS_F40 trajectories of split s, loc
 * [t][49][15] against golden g, into d[GOLDEN_STREAMS_F40]. */
static void frame40_diffs(const struct golden_stream *g, int s, const double *loc, double *d)
{
    for (int t = 0; t < GOLDEN_STREAMS_F40; t++)
        d[t] = max_diff(loc + ((size_t)t * 49 + 40) * 15, g->frame40[s][t], 15);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorted in place), and how many are within FRAME40_TOL. */
static double median_agreeing(double *d, int n, int *agree)
{
    qsort(d, (size_t)n, sizeof *d, cmp_double);
    *agree = 0;
    for (int k = 0; k < n; k++)
        *agree += d[k] <= FRAME40_TOL;
    return sim_quantile(d, n, 0.5);
}

/* nbody-gen --stream g->name reproduces the published generator: charges exactly, frame 0 to
 * rounding, frame 40 statistically. */
static void check_stream(const struct golden_stream *g)
{
    char dir[400], args[800];
    snprintf(dir, sizeof dir, "%s/%s", root, g->name);
    snprintf(args, sizeof args, "--stream %s " GOLDEN_ARGS " --out '%s'", g->name, dir);
    assert_int_equal(gen(args, NULL, 0), 0);
    int row = 0;
    double d[3 * GOLDEN_STREAMS_F40];
    for (int s = 0; s < 3; s++) {
        struct sim_npy q, loc, vel;
        load(dir, "charges", splits[s], &q);
        load(dir, "loc", splits[s], &loc);
        load(dir, "vel", splits[s], &vel);
        assert_int_equal(q.shape[0], counts[s]);
        assert_int_equal(loc.shape[1], 49);
        for (long t = 0; t < counts[s]; t++, row++)
            for (int i = 0; i < 5; i++)
                if (q.data[t * 5 + i] != (double)g->charges[row][i])
                    fail_msg("%s %s trajectory %ld body %d: charge %g, the generator's %d",
                             g->name, splits[s], t, i, q.data[t * 5 + i], g->charges[row][i]);
        double d0 = fmax(max_diff(loc.data, g->frame0[s][0], 15),
                         max_diff(vel.data, g->frame0[s][1], 15));
        if (d0 > FRAME0_TOL)
            fail_msg("%s %s: frame 0 differs from the generator's by %g", g->name, splits[s], d0);
        frame40_diffs(g, s, loc.data, d + s * GOLDEN_STREAMS_F40);
        sim_npy_free(&q);
        sim_npy_free(&loc);
        sim_npy_free(&vel);
    }
    int agree;
    double median = median_agreeing(d, 3 * GOLDEN_STREAMS_F40, &agree);
    print_message("%s: frame 40 median difference %.3g, %d of %d within %g\n", g->name, median,
                  agree, 3 * GOLDEN_STREAMS_F40, FRAME40_TOL);
    assert_true(median <= FRAME40_MEDIAN_TOL);
    assert_true(agree >= FRAME40_MIN_AGREE);
}

static void test_clofnet(void **state)
{
    (void)state;
    check_stream(&golden_streams[0]);
}

static void test_clofnet_serial(void **state)
{
    (void)state;
    check_stream(&golden_streams[1]);
}

static void test_egnn(void **state)
{
    (void)state;
    check_stream(&golden_streams[2]);
}

/* The egnn stream draws charges, positions and velocities, then 2 x 49 x 3 x 5 noise normals
 * (735 twice: the first leaves a cached Gaussian that the second uses); the generator's stream
 * is then exactly where ours is. And sim_stream_states' second trajectory starts there. */
static void test_egnn_state_after_trajectory(void **state)
{
    (void)state;
    struct sim_system s;
    struct sim_rng r;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 5), SIM_OK);
    sim_rng_seed(&r, GOLDEN_STREAMS_SEED);
    sim_initial_state_rng(&s, &r);
    sim_rng_skip_randn(&r, 735);
    assert_int_equal(r.has_gauss, 1); /* an odd count leaves one cached */
    sim_rng_skip_randn(&r, 735);
    assert_int_equal(r.pos, GOLDEN_EGNN_AFTER_POS);
    assert_int_equal(r.has_gauss, GOLDEN_EGNN_AFTER_HAS_GAUSS);
    struct sim_rng next = r;
    for (int k = 0; k < 3; k++)
        assert_true(sim_rng_random_sample(&r) == golden_egnn_after_sample[k]);

    /* trajectory 2 of the stream is the draw from that state */
    struct sim_system s2;
    assert_int_equal(sim_system_init(&s2, SIM_CHARGED, 5), SIM_OK);
    sim_initial_state_rng(&s2, &next);
    double states[2 * 35];
    const long c[3] = {2, 0, 0};
    double *const slots[3] = {states, NULL, NULL};
    assert_int_equal(sim_stream_states(SIM_STREAM_EGNN, GOLDEN_STREAMS_SEED, 5, 49, c, slots),
                     SIM_OK);
    assert_memory_equal(states, s.q, 5 * sizeof(double));
    assert_memory_equal(states + 35, s2.q, 5 * sizeof(double));
    assert_memory_equal(states + 35 + 5, s2.x, 15 * sizeof(double));
    assert_memory_equal(states + 35 + 20, s2.v, 15 * sizeof(double));
    /* the noise draws are what put it there: without them the second state differs */
    sim_rng_seed(&r, GOLDEN_STREAMS_SEED);
    sim_initial_state_rng(&s, &r);
    sim_initial_state_rng(&s, &r);
    assert_true(memcmp(states + 35 + 5, s.x, 15 * sizeof(double)) != 0);
    sim_system_free(&s);
    sim_system_free(&s2);
}

/* The egnn stream's physics has no softening, and that shows at frame 40: the first 10
 * training trajectories run from the same initial states agree with the EGNN generator to
 * rounding (median within FRAME40_MEDIAN_TOL) unsoftened, and not with SIM_SOFTENING (every
 * one of them beyond 1e-9 when measured). */
static void test_egnn_unsoftened(void **state)
{
    (void)state;
    const struct golden_stream *g = &golden_streams[2];
    const long n = GOLDEN_STREAMS_F40;
    double *states = malloc(sizeof *states * 35 * GOLDEN_STREAMS_TRAIN);
    double *loc = malloc(sizeof *loc * 49 * 15 * n);
    assert_non_null(states);
    assert_non_null(loc);
    const long c[3] = {GOLDEN_STREAMS_TRAIN, 0, 0};
    double *const slots[3] = {states, NULL, NULL};
    assert_int_equal(sim_stream_states(SIM_STREAM_EGNN, GOLDEN_STREAMS_SEED, 5, 49, c, slots),
                     SIM_OK);
    double median[2];
    for (int soft = 0; soft < 2; soft++) {
        assert_int_equal(sim_generate_states(SIM_CHARGED, 5, 5000, 100, !soft, n, states, 1, loc,
                                             NULL, NULL, NULL, NULL, NULL),
                         SIM_OK);
        double d[GOLDEN_STREAMS_F40];
        int agree;
        frame40_diffs(g, 0, loc, d);
        median[soft] = median_agreeing(d, GOLDEN_STREAMS_F40, &agree);
    }
    print_message("egnn train, first %ld: frame 40 median difference %.3g unsoftened, %.3g "
                  "softened\n", n, median[0], median[1]);
    assert_true(median[0] <= FRAME40_MEDIAN_TOL);
    assert_true(median[1] > FRAME40_MEDIAN_TOL);
    free(states);
    free(loc);
}

/* --stream distinct (the default) and clofnet agree while no seed repeats (the first repeat of
 * seed 43's stream is trajectory 289), and --reference-seeds is --stream clofnet; the egnn
 * stream's output is the same bytes for 1 and 2 threads. */
static void test_same_bytes(void **state)
{
    (void)state;
    static const char *const runs[5] = {"--stream distinct", "", "--stream clofnet",
                                        "--reference-seeds", "--stream egnn --threads 1"};
    char dir[5][400], args[2400], err[SIM_ERRLEN];
    struct sim_manifest m[5];
    for (int k = 0; k < 5; k++) {
        snprintf(dir[k], sizeof dir[k], "%s/same%d", root, k);
        snprintf(args, sizeof args,
                 "--train 6 --valid 4 --test 3 --length 1000 %s --out '%s'%s", runs[k], dir[k],
                 k == 4 ? "" : " --threads 2");
        assert_int_equal(gen(args, NULL, 0), 0);
        int present;
        assert_int_equal(sim_manifest_read(dir[k], &m[k], &present, err), SIM_OK);
        assert_true(present);
    }
    /* every file's digest equal within each pair */
    static const int pairs[3][2] = {{0, 1}, {0, 2}, {2, 3}};
    for (int p = 0; p < 3; p++)
        for (int f = 0; f < 12; f++) {
            const struct sim_manifest_file *b =
                sim_manifest_find(&m[pairs[p][1]], m[pairs[p][0]].file[f].name);
            assert_non_null(b);
            assert_memory_equal(m[pairs[p][0]].file[f].sha256, b->sha256, 32);
        }
    snprintf(dir[0], sizeof dir[0], "%s/same-egnn2", root);
    snprintf(args, sizeof args,
             "--train 6 --valid 4 --test 3 --length 1000 --stream egnn --threads 2 --out '%s'",
             dir[0]);
    assert_int_equal(gen(args, NULL, 0), 0);
    int present;
    assert_int_equal(sim_manifest_read(dir[0], &m[0], &present, err), SIM_OK);
    for (int f = 0; f < 12; f++) {
        const struct sim_manifest_file *b = sim_manifest_find(&m[4], m[0].file[f].name);
        assert_non_null(b);
        assert_memory_equal(m[0].file[f].sha256, b->sha256, 32);
    }
}

/* The sidecar names the stream, the generator's version and the stream's softening, and keeps
 * reference_seeds for the clofnet stream; parsed back as written. */
static void test_sidecar(void **state)
{
    (void)state;
    static const char *const streams[4] = {"distinct", "clofnet", "clofnet-serial", "egnn"};
    for (int k = 0; k < 4; k++) {
        char dir[400], args[900], err[SIM_ERRLEN];
        snprintf(dir, sizeof dir, "%s/sidecar-%s", root, streams[k]);
        snprintf(args, sizeof args,
                 "--train 3 --valid 2 --test 1 --length 300 --seed 7 --stream %s --out '%s'",
                 streams[k], dir);
        assert_int_equal(gen(args, NULL, 0), 0);
        struct sim_manifest m;
        int present;
        assert_int_equal(sim_manifest_read(dir, &m, &present, err), SIM_OK);
        assert_true(present);
        assert_string_equal(m.stream, streams[k]);
        assert_int_equal(sim_stream_parse(m.stream), k);
        assert_int_equal(m.generator_version, SIM_GENERATOR_VERSION);
        assert_int_equal(m.reference_seeds, k == SIM_STREAM_CLOFNET);
        assert_true(m.softening == (k == SIM_STREAM_EGNN ? 0.0 : SIM_SOFTENING));
        assert_int_equal(m.seed, 7);
        assert_int_equal(m.counts[0], 3);
        assert_int_equal(m.counts[1], 2);
        assert_int_equal(m.counts[2], 1);
        assert_int_equal(m.frames, 2);
        assert_int_equal(m.nfiles, 12);
    }
}

/* A sidecar's physics.softening must be a non-negative number. */
static void test_sidecar_bad_softening(void **state)
{
    (void)state;
    static const char *const bad[3][2] = {
        {"\"x\"", "expected a number"}, {"-1", "negative softening"}, {"1e999", "range of double"}};
    for (int k = 0; k < 3; k++) {
        char text[600], err[SIM_ERRLEN];
        snprintf(text, sizeof text,
                 "{\"format\": \"" SIM_MANIFEST_FORMAT "\", \"run_id\": \"r\", \"physics\": "
                 "{\"softening\": %s}, \"files\": [{\"name\": \"a.npy\", \"bytes\": 1, "
                 "\"sha256\": \"%064d\"}]}",
                 bad[k][0], 0);
        struct sim_manifest m;
        assert_int_equal(sim_manifest_parse(text, strlen(text), "t.json", &m, err), SIM_EFORMAT);
        if (!strstr(err, bad[k][1]))
            fail_msg("softening %s: message '%s' lacks '%s'", bad[k][0], err, bad[k][1]);
    }
}

/* Bad --stream uses: one clear line naming the problem, exit 2, nothing written. */
static void test_bad_flags(void **state)
{
    (void)state;
    static const char *const bad[6][2] = {
        {"--stream numpy", "unknown --stream 'numpy'"},
        {"--stream", "needs a value"},
        {"--stream egnn --sim static", "--stream egnn has no --sim static"},
        {"--reference-seeds --stream egnn", "--reference-seeds means --stream clofnet"},
        {"--stream distinct --reference-seeds", "not --stream distinct"},
        {"--stream distinct --valid 1000001 --train 0 --test 0 --length 200",
         "need another --stream"}};
    for (int k = 0; k < 6; k++) {
        char dir[400], args[1200], err[2048];
        snprintf(dir, sizeof dir, "%s/bad%d", root, k);
        snprintf(args, sizeof args, "--out '%s' %s", dir, bad[k][0]);
        assert_int_equal(gen(args, err, sizeof err), 2);
        if (!strstr(err, bad[k][1]))
            fail_msg("%s: message '%s' lacks '%s'", bad[k][0], err, bad[k][1]);
        assert_int_equal(tfs_count_entries(dir), -1);
    }
}

/* Library arguments: unknown stream, a split without its buffer, distinct beyond its range,
 * egnn without frames. */
static void test_bad_arguments(void **state)
{
    (void)state;
    double one[35];
    double *const slots[3] = {one, NULL, NULL};
    const long c1[3] = {1, 0, 0}, c2[3] = {0, 1, 0}, big[3] = {SIM_SEED_RANGE + 1L, 0, 0};
    assert_int_equal(sim_stream_states(SIM_STREAM_COUNT, 1, 5, 49, c1, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(-1, 1, 5, 49, c1, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(SIM_STREAM_EGNN, 1, 5, 49, c2, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(SIM_STREAM_EGNN, 1, 5, 0, c1, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(SIM_STREAM_DISTINCT, 1, 5, 49, big, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(SIM_STREAM_DISTINCT, 1, 1, 49, c1, slots), SIM_EARG);
    assert_int_equal(sim_stream_states(SIM_STREAM_CLOFNET, 1, 5, 49, c1, slots), SIM_OK);
    assert_int_equal(sim_generate_states(SIM_CHARGED, 5, 1000, 100, 0, 1, NULL, 1, NULL, NULL,
                                         NULL, NULL, NULL, NULL),
                     SIM_EARG);
    assert_int_equal(sim_stream_parse("egnn"), SIM_STREAM_EGNN);
    assert_int_equal(sim_stream_parse("EGNN"), -1);
    assert_null(sim_stream_name(SIM_STREAM_COUNT));
    assert_false(sim_stream_has_kind(SIM_STREAM_EGNN, SIM_DYNAMIC));
    assert_true(sim_stream_has_kind(SIM_STREAM_CLOFNET_SERIAL, SIM_DYNAMIC));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clofnet),
        cmocka_unit_test(test_clofnet_serial),
        cmocka_unit_test(test_egnn),
        cmocka_unit_test(test_egnn_state_after_trajectory),
        cmocka_unit_test(test_egnn_unsoftened),
        cmocka_unit_test(test_same_bytes),
        cmocka_unit_test(test_sidecar),
        cmocka_unit_test(test_sidecar_bad_softening),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
