/* test_rng.c: sim/rng.c against NumPy's legacy RandomState, bit for bit, using the values
 * in tests/data/numpy_golden.h (made by tests/data/make_numpy_golden.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data/numpy_golden.h"
#include "sim.h"

/* Every comparison below is exact (bitwise for doubles, so -0.0 != 0.0 too): the
 * algorithms are integer-exact or the same IEEE operations in the same order as NumPy.
 * The one tolerance is the sanity check of the velocity norm, which is a rounded
 * quotient recombined in a different order: |v| lands within a few ulps of 0.5, and
 * 1e-15 is about 9 ulps there (1 ulp of 0.5 is 1.1e-16). */
#define VEL_NORM_TOL 1e-15

/* Fail with both values when two doubles differ in any bit. */
static void check_double(double expected, double got, const char *what, int i)
{
    if (memcmp(&expected, &got, sizeof expected) != 0)
        fail_msg("%s[%d]: expected %.17g, got %.17g", what, i, expected, got);
}

/* Fail with both values when two integers differ. */
static void check_u64(uint64_t expected, uint64_t got, const char *what, int i)
{
    if (expected != got)
        fail_msg("%s[%d]: expected %llu, got %llu", what, i, (unsigned long long)expected,
                 (unsigned long long)got);
}

/* Raw MT19937 words, across two regenerations of the state, for several seeds. */
static void test_raw_words(void **state)
{
    (void)state;
    struct sim_rng r;
    for (int s = 0; s < GOLDEN_RAW_NSEEDS; s++) {
        sim_rng_seed(&r, golden_raw_seeds[s]);
        for (int i = 0; i < GOLDEN_RAW_COUNT; i++)
            check_u64(golden_raw[s][i], sim_rng_u32(&r), "raw", s * GOLDEN_RAW_COUNT + i);
    }
}

/* Seeding again restarts the stream from scratch, whatever was drawn before. */
static void test_reseed_restarts(void **state)
{
    (void)state;
    struct sim_rng r;
    sim_rng_seed(&r, 1);
    for (int i = 0; i < 1000; i++)
        (void)sim_rng_u32(&r);
    sim_rng_seed(&r, golden_raw_seeds[2]);
    for (int i = 0; i < 700; i++)
        check_u64(golden_raw[2][i], sim_rng_u32(&r), "raw after reseed", i);
}

/* random_sample sequences, then the next raw word (two words per double, no more). */
static void test_random_sample(void **state)
{
    (void)state;
    struct sim_rng r;
    for (int s = 0; s < GOLDEN_SAMPLE_NSEEDS; s++) {
        sim_rng_seed(&r, golden_sample_seeds[s]);
        for (int i = 0; i < GOLDEN_SAMPLE_COUNT; i++) {
            double u = sim_rng_random_sample(&r);
            check_double(golden_sample[s][i], u, "random_sample", s * GOLDEN_SAMPLE_COUNT + i);
            assert_true(u >= 0.0 && u < 1.0);
        }
        check_u64(golden_sample_next_raw[s], sim_rng_u32(&r), "raw after random_sample", s);
    }
}

/* An odd number of normals leaves one cached; raw words do not touch the cache. */
static void test_randn_cache(void **state)
{
    (void)state;
    struct sim_rng r;
    int n1 = (int)(sizeof golden_randn_seq1 / sizeof golden_randn_seq1[0]);
    int n2 = (int)(sizeof golden_randn_seq2 / sizeof golden_randn_seq2[0]);
    sim_rng_seed(&r, 1);
    for (int i = 0; i < n1; i++)
        check_double(golden_randn_seq1[i], sim_rng_randn(&r), "randn seq1", i);
    assert_int_equal(r.has_gauss, 1);
    check_u64(golden_randn_raw_mid, sim_rng_u32(&r), "raw between randn", 0);
    for (int i = 0; i < n2; i++)
        check_double(golden_randn_seq2[i], sim_rng_randn(&r), "randn seq2", i);
    check_u64(golden_randn_raw_end, sim_rng_u32(&r), "raw after randn", 0);
}

/* seed() drops the cached normal: the stream after a reseed is the fresh one. */
static void test_randn_reset_by_seed(void **state)
{
    (void)state;
    struct sim_rng r;
    sim_rng_seed(&r, 43);
    for (int i = 0; i < 7; i++)
        check_double(golden_randn_43[i], sim_rng_randn(&r), "randn 43", i);
    assert_int_equal(r.has_gauss, 1);
    sim_rng_seed(&r, 43);
    assert_int_equal(r.has_gauss, 0);
    for (int i = 0; i < 3; i++)
        check_double(golden_randn_reset[i], sim_rng_randn(&r), "randn after reseed", i);
    /* The test could not see a kept cache if the cached value equalled the fresh one. */
    assert_true(golden_randn_reset[0] != golden_randn_43[7]);
    /* And without reseeding, the 8th value is the cached one. */
    sim_rng_seed(&r, 43);
    for (int i = 0; i < 8; i++)
        check_double(golden_randn_43[i], sim_rng_randn(&r), "randn 43 again", i);
}

/* choice(5, p) with weights whose sum is not exactly 1, then the next raw word. */
static void test_choice_p(void **state)
{
    (void)state;
    struct sim_rng r;
    int count = (int)(sizeof golden_choice_idx / sizeof golden_choice_idx[0]);
    int *idx = malloc((size_t)count * sizeof *idx);
    assert_non_null(idx);
    sim_rng_seed(&r, 7);
    sim_rng_choice_p(&r, golden_choice_p, 5, count, idx);
    for (int i = 0; i < count; i++)
        check_u64((uint64_t)golden_choice_idx[i], (uint64_t)idx[i], "choice idx", i);
    check_u64(golden_choice_next_raw, sim_rng_u32(&r), "raw after choice", 0);
    free(idx);
}

/* The generator's charge draw for 5 and 20 bodies: index 0 -> -1, 2 -> +1, never 0. */
static void test_choice_charges(void **state)
{
    (void)state;
    static const double p[3] = {0.5, 0.0, 0.5};
    struct sim_rng r;
    int idx[20];
    const double *golden[2] = {golden_charges43_n5, golden_charges43_n20};
    const int ns[2] = {5, 20};
    for (int t = 0; t < 2; t++) {
        sim_rng_seed(&r, 43);
        sim_rng_choice_p(&r, p, 3, ns[t], idx);
        for (int i = 0; i < ns[t]; i++) {
            assert_true(idx[i] == 0 || idx[i] == 2);
            check_double(golden[t][i], (double)idx[i] - 1.0, "charge", i);
        }
    }
}

/* randint(0, max + 1) for ranges on both sides of 2^32 and the special cases 0,
 * 2^32 - 1 and 2^64 - 1; the next raw word proves the number of words consumed. */
static void test_bounded(void **state)
{
    (void)state;
    struct sim_rng r;
    for (int m = 0; m < GOLDEN_BOUNDED_NMAX; m++) {
        sim_rng_seed(&r, 43);
        for (int i = 0; i < GOLDEN_BOUNDED_COUNT; i++) {
            uint64_t v = sim_rng_bounded(&r, golden_bounded_max[m]);
            check_u64(golden_bounded[m][i], v, "bounded", m * GOLDEN_BOUNDED_COUNT + i);
            assert_true(v <= golden_bounded_max[m]);
        }
        check_u64(golden_bounded_next_raw[m], sim_rng_u32(&r), "raw after bounded", m);
    }
}

/* choice(range(1000000)) from seed 43: the reference's per-trajectory seeds. */
static void test_bounded_seed_stream(void **state)
{
    (void)state;
    struct sim_rng r;
    sim_rng_seed(&r, 43);
    for (int i = 0; i < GOLDEN_SEEDS43_COUNT; i++)
        check_u64(golden_seeds43[i], sim_rng_bounded(&r, SIM_SEED_RANGE - 1), "seed stream", i);
}

/* Reference mode of sim_seeds is that stream, repeats included. */
static void test_seeds_reference(void **state)
{
    (void)state;
    int count = 7000;
    uint32_t *seeds = malloc((size_t)count * sizeof *seeds);
    assert_non_null(seeds);
    assert_int_equal(sim_seeds(43, count, 1, seeds), SIM_OK);
    for (int i = 0; i < count; i++)
        check_u64(golden_seeds43[i], seeds[i], "reference seeds", i);
    /* The golden stream repeats within 7000, so distinct mode has work to do. */
    assert_true(GOLDEN_SEEDS43_FIRST_REPEAT < count);
    assert_int_equal(seeds[GOLDEN_SEEDS43_FIRST_REPEAT], golden_seeds43[GOLDEN_SEEDS43_FIRST_REPEAT]);
    free(seeds);
}

/* Distinct mode: no repeats, the reference stream up to its first repeat, and in general
 * the reference stream with repeated values skipped. */
static void test_seeds_distinct(void **state)
{
    (void)state;
    int count = 7000;
    uint32_t *seeds = malloc((size_t)count * sizeof *seeds);
    unsigned char *seen = calloc(SIM_SEED_RANGE, 1);
    assert_non_null(seeds);
    assert_non_null(seen);
    assert_int_equal(sim_seeds(43, count, 0, seeds), SIM_OK);
    for (int i = 0; i < count; i++) {
        assert_true(seeds[i] < SIM_SEED_RANGE);
        if (seen[seeds[i]])
            fail_msg("distinct seeds: %u repeats at %d", seeds[i], i);
        seen[seeds[i]] = 1;
    }
    for (int i = 0; i < GOLDEN_SEEDS43_FIRST_REPEAT; i++)
        check_u64(golden_seeds43[i], seeds[i], "distinct prefix", i);

    memset(seen, 0, SIM_SEED_RANGE);
    int k = 0;
    for (int i = 0; i < GOLDEN_SEEDS43_COUNT && k < count; i++) {
        uint32_t v = golden_seeds43[i];
        if (seen[v])
            continue;
        seen[v] = 1;
        check_u64(v, seeds[k], "distinct seeds", k);
        k++;
    }
    assert_int_equal(k, count);
    free(seen);
    free(seeds);
}

/* Distinct mode at full size is a permutation of [0, SIM_SEED_RANGE). */
static void test_seeds_distinct_full(void **state)
{
    (void)state;
    uint32_t *seeds = malloc((size_t)SIM_SEED_RANGE * sizeof *seeds);
    unsigned char *seen = calloc(SIM_SEED_RANGE, 1);
    assert_non_null(seeds);
    assert_non_null(seen);
    assert_int_equal(sim_seeds(5, SIM_SEED_RANGE, 0, seeds), SIM_OK);
    for (int i = 0; i < SIM_SEED_RANGE; i++) {
        assert_true(seeds[i] < SIM_SEED_RANGE);
        if (seen[seeds[i]])
            fail_msg("full distinct seeds: %u repeats at %d", seeds[i], i);
        seen[seeds[i]] = 1;
    }
    free(seen);
    free(seeds);
}

/* Bad counts are refused; nothing is written. */
static void test_seeds_bad_args(void **state)
{
    (void)state;
    uint32_t one = 12345u;
    assert_int_equal(sim_seeds(43, -1, 1, &one), SIM_EARG);
    assert_int_equal(sim_seeds(43, -1, 0, &one), SIM_EARG);
    assert_int_equal(sim_seeds(43, SIM_SEED_RANGE + 1, 0, &one), SIM_EARG);
    assert_int_equal(sim_seeds(43, 1, 1, NULL), SIM_EARG);
    assert_int_equal(one, 12345u);
    assert_int_equal(sim_seeds(43, 0, 1, NULL), SIM_OK);
    assert_int_equal(sim_seeds(43, 0, 0, NULL), SIM_OK);
    assert_int_equal(sim_seeds(43, 1, 0, &one), SIM_OK);
    assert_int_equal(one, golden_seeds43[0]);
}

/* Full initial conditions (charges, positions, velocities after reflection) for
 * per-trajectory seeds of the reference stream, edge seeds, and seeds that reflect. */
static void test_initial_state(void **state)
{
    (void)state;
    int over[2] = {0, 0}, under[2] = {0, 0}; /* cases reflecting, for 5 and 20 bodies */
    for (int k = 0; k < GOLDEN_NSTATES; k++) {
        const struct golden_state *g = &golden_states[k];
        int n = g->n;
        char what[64];
        snprintf(what, sizeof what, "state n=%d seed=%u", n, (unsigned)g->seed);
        struct sim_system s = {.kind = SIM_CHARGED, .n = n};
        s.x = malloc(3 * (size_t)n * sizeof *s.x);
        s.v = malloc(3 * (size_t)n * sizeof *s.v);
        s.q = malloc((size_t)n * sizeof *s.q);
        assert_non_null(s.x);
        assert_non_null(s.v);
        assert_non_null(s.q);
        sim_initial_state(&s, g->seed);
        for (int i = 0; i < n; i++)
            check_double(golden_state_q[g->offset + i], s.q[i], what, i);
        for (int c = 0; c < 3 * n; c++) {
            check_double(golden_state_x[3 * g->offset + c], s.x[c], what, 100 + c);
            check_double(golden_state_v[3 * g->offset + c], s.v[c], what, 200 + c);
            assert_true(s.x[c] <= SIM_BOX && s.x[c] >= -SIM_BOX);
        }
        for (int i = 0; i < n; i++) {
            double vx = s.v[i], vy = s.v[n + i], vz = s.v[2 * n + i];
            double err = fabs(sqrt(vx * vx + vy * vy + vz * vz) - SIM_VEL_NORM);
            if (err > VEL_NORM_TOL)
                fail_msg("%s: |v_%d| off 0.5 by %g", what, i, err);
        }
        over[n == 20] += g->over > 0;
        under[n == 20] += g->under > 0;
        free(s.x);
        free(s.v);
        free(s.q);
    }
    /* Both walls are exercised, for 5 and for 20 bodies. */
    for (int t = 0; t < 2; t++) {
        assert_true(over[t] > 0);
        assert_true(under[t] > 0);
    }
}

/* sim_rng_skip_randn(count) leaves the stream exactly where count sim_rng_randn calls leave it,
 * cached Gaussian included: from a fresh seed and from a state holding a cached value, for
 * even and odd counts. */
static void test_skip_randn(void **state)
{
    (void)state;
    for (int cached = 0; cached < 2; cached++)
        for (size_t count = 0; count < 12; count++) {
            struct sim_rng a, b;
            sim_rng_seed(&a, 43);
            if (cached)
                (void)sim_rng_randn(&a);
            b = a;
            sim_rng_skip_randn(&a, count);
            for (size_t k = 0; k < count; k++)
                (void)sim_rng_randn(&b);
            assert_int_equal(a.pos, b.pos);
            assert_int_equal(a.has_gauss, b.has_gauss);
            assert_true(a.gauss == b.gauss);
            assert_memory_equal(a.mt, b.mt, sizeof a.mt);
            for (int k = 0; k < 3; k++)
                assert_true(sim_rng_randn(&a) == sim_rng_randn(&b));
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_words),
        cmocka_unit_test(test_reseed_restarts),
        cmocka_unit_test(test_random_sample),
        cmocka_unit_test(test_randn_cache),
        cmocka_unit_test(test_randn_reset_by_seed),
        cmocka_unit_test(test_choice_p),
        cmocka_unit_test(test_choice_charges),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_bounded_seed_stream),
        cmocka_unit_test(test_seeds_reference),
        cmocka_unit_test(test_seeds_distinct),
        cmocka_unit_test(test_seeds_distinct_full),
        cmocka_unit_test(test_seeds_bad_args),
        cmocka_unit_test(test_initial_state),
        cmocka_unit_test(test_skip_randn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
