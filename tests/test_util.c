/* test_util.c: the sim library's shared helpers: command-line numbers (sim_parse_long,
 * sim_parse_double), sim_quantile against numpy's values, and the layout conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* One interpolation (1 - t) a + t b of O(1) values: two products and a sum, each within half
 * an ulp, so a few ulps of the larger value. */
#define QUANTILE_ROUNDING (4 * DBL_EPSILON)
/* Marker left in *out by a refused parse: it must not change. */
#define UNTOUCHED_LONG 12345L
#define UNTOUCHED_DOUBLE 12345.0

/* Integers: whole decimal strings in [lo, hi]; everything else refused, *out untouched. */
static void test_parse_long(void **state)
{
    (void)state;
    const struct {
        const char *s;
        long lo, hi, want;
    } good[] = {
        {"0", 0, 10, 0},         {"42", 0, 100, 42},   {"-7", -10, 10, -7},
        {"+3", 0, 10, 3},        {"2", 2, 5, 2},       {"5", 2, 5, 5},
        {"4294967295", 0, 4294967295L, 4294967295L}, {"007", 0, 10, 7},
    };
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        long v = UNTOUCHED_LONG;
        if (sim_parse_long(good[k].s, good[k].lo, good[k].hi, &v) != SIM_OK || v != good[k].want)
            fail_msg("'%s' in %ld..%ld: got %ld, expected %ld", good[k].s, good[k].lo, good[k].hi,
                     v, good[k].want);
    }
    const char *bad[] = {"",    " 5",  "5 ",   "5x",  "0x10", "1e3", "1.0", "--1", "+",
                         "-",   "\xd9\xa3",   "1,000", "\t7", "99999999999999999999999",
                         "-99999999999999999999999", "11", "-1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        long v = UNTOUCHED_LONG;
        if (sim_parse_long(bad[k], 0, 10, &v) != SIM_EARG || v != UNTOUCHED_LONG)
            fail_msg("'%s' in 0..10 was accepted (%ld)", bad[k], v);
    }
    long v = UNTOUCHED_LONG;
    assert_int_equal(sim_parse_long(NULL, 0, 10, &v), SIM_EARG);
    assert_int_equal(sim_parse_long("3", 0, 10, NULL), SIM_EARG);
    assert_int_equal(sim_parse_long("4", 5, 10, &v), SIM_EARG); /* below lo */
    assert_int_equal(v, UNTOUCHED_LONG);
    assert_int_equal(sim_parse_long("9223372036854775807", 0, LONG_MAX, &v), SIM_OK);
    assert_true(v == LONG_MAX);
}

/* Reals: plain finite decimals, exactly as the compiler reads the same literals. */
static void test_parse_double(void **state)
{
    (void)state;
    const struct {
        const char *s;
        double want;
    } good[] = {
        {"1", 1.0},      {"-2.5", -2.5},     {".5", 0.5},      {"5.", 5.0},
        {"3e-4", 3e-4},  {"1E+2", 1e2},      {"+0.25", 0.25},  {"0.01", 0.01},
        {"1e308", 1e308}, {"-0", -0.0},      {"5e-3", 5e-3},   {"0.9", 0.9},
    };
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        double v = UNTOUCHED_DOUBLE;
        if (sim_parse_double(good[k].s, &v) != SIM_OK || v != good[k].want)
            fail_msg("'%s': got %.17g, expected %.17g", good[k].s, v, good[k].want);
    }
    const char *bad[] = {"",     "nan",  "NaN",   "inf",   "-inf",   "infinity", "0x1p3",
                         "1e",   "1e+",  ".",     "-",     "1.5x",   " 1",       "1 ",
                         "1,5",  "1e999", "-1e999", "1e-999", "--1",  "1.2.3",    "e5",
                         "1e5.5", "+-1", "1_000"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        double v = UNTOUCHED_DOUBLE;
        if (sim_parse_double(bad[k], &v) != SIM_EARG || v != UNTOUCHED_DOUBLE)
            fail_msg("'%s' was accepted (%.17g)", bad[k], v);
    }
    double v;
    assert_int_equal(sim_parse_double(NULL, &v), SIM_EARG);
    assert_int_equal(sim_parse_double("1", NULL), SIM_EARG);
}

/* Under a locale whose decimal point is ',' (when one is installed), "1.5" is read as 1.5 or
 * refused, never as 1; "1,5" is always refused. */
static void test_parse_double_locale(void **state)
{
    (void)state;
    static const char *const comma[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                                        "nl_NL.UTF-8", "de_DE", NULL};
    const char *used = NULL;
    for (int k = 0; comma[k] && !used; k++)
        if (setlocale(LC_NUMERIC, comma[k]) && strcmp(localeconv()->decimal_point, ",") == 0)
            used = comma[k];
    double v = UNTOUCHED_DOUBLE;
    if (!used) {
        setlocale(LC_NUMERIC, "C");
        print_message("no locale with a decimal comma is installed: checked under \"C\" only\n");
    }
    int st = sim_parse_double("1.5", &v);
    assert_true((st == SIM_OK && v == 1.5) || (st == SIM_EARG && v == UNTOUCHED_DOUBLE));
    v = UNTOUCHED_DOUBLE;
    assert_int_equal(sim_parse_double("1,5", &v), SIM_EARG);
    assert_true(v == UNTOUCHED_DOUBLE);
    setlocale(LC_NUMERIC, "C");
    assert_int_equal(sim_parse_double("1.5", &v), SIM_OK);
    assert_true(v == 1.5);
}

/* Within QUANTILE_ROUNDING of the value numpy gives. */
static void assert_quantile(const double *s, long n, double p, double want)
{
    double got = sim_quantile(s, n, p);
    if (!(fabs(got - want) <= QUANTILE_ROUNDING * fmax(1.0, fabs(want))))
        fail_msg("quantile(p=%g) of %ld values: %.17g, numpy gives %.17g", p, n, got, want);
}

/* The values of numpy.quantile (default method 'linear') on small arrays. */
static void test_quantile_matches_numpy(void **state)
{
    (void)state;
    const double a[4] = {1, 2, 3, 4};
    /* np.quantile([1, 2, 3, 4], [0, .25, .5, .9, 1]) = [1, 1.75, 2.5, 3.7, 4] */
    assert_quantile(a, 4, 0.0, 1.0);
    assert_quantile(a, 4, 0.25, 1.75);
    assert_quantile(a, 4, 0.5, 2.5);
    assert_quantile(a, 4, 0.9, 3.7);
    assert_quantile(a, 4, 1.0, 4.0);
    /* np.quantile([0, 1, 2, 3, 10], [.5, .75, .8, .99]) = [2, 3, 4.4, 9.72] */
    const double b[5] = {0, 1, 2, 3, 10};
    assert_quantile(b, 5, 0.5, 2.0);
    assert_quantile(b, 5, 0.75, 3.0);
    assert_quantile(b, 5, 0.8, 4.4);
    assert_quantile(b, 5, 0.99, 9.72);
    /* one value: every quantile is that value */
    const double c[1] = {-3.25};
    for (double p = 0; p <= 1.0; p += 0.125)
        assert_true(sim_quantile(c, 1, p) == -3.25);
    /* invalid: NaN, not a guess */
    assert_true(isnan(sim_quantile(a, 0, 0.5)));
    assert_true(isnan(sim_quantile(a, 4, -0.1)));
    assert_true(isnan(sim_quantile(a, 4, 1.1)));
    assert_true(isnan(sim_quantile(a, 4, NAN)));
    assert_true(isnan(sim_quantile(NULL, 4, 0.5)));
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median is numpy.median bit for bit (the middle value, or (a + b) / 2 of the two middle
 * ones, as rollout.c computed it before), and quantiles grow with p inside [min, max]. */
static void test_quantile_median_and_order(void **state)
{
    (void)state;
    srand(5);
    double v[64];
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + trial % 64;
        for (int k = 0; k < n; k++)
            v[k] = exp(8.0 * rand() / RAND_MAX - 4.0) * (rand() & 1 ? 1 : -1);
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
        double got = sim_quantile(v, n, 0.5);
        if (got != med)
            fail_msg("n = %d: median %.17g, expected %.17g", n, got, med);
        /* inside one interval the rounding of (1 - t) a + t b may wobble by an ulp */
        double last = -INFINITY;
        for (double p = 0; p <= 1.0; p += 1.0 / 64) {
            double q = sim_quantile(v, n, p);
            assert_true(q >= last - QUANTILE_ROUNDING * fabs(q));
            assert_true(q >= v[0] && q <= v[n - 1]);
            last = q;
        }
        /* constant data: every quantile is the constant, exactly */
        for (int k = 0; k < n; k++)
            v[k] = 0.1;
        for (double p = 0; p <= 1.0; p += 1.0 / 64)
            assert_true(sim_quantile(v, n, p) == 0.1);
    }
}

/* axis[c * n + i] and node[3 * i + c] are the same number; both ways, and round trips. */
static void test_layout(void **state)
{
    (void)state;
    enum { N = 7 };
    double axis[3 * N], back[3 * N];
    float node[3 * N];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < N; i++)
            axis[c * N + i] = 100.0 * c + i + 0.25;
    sim_axis_to_node(N, axis, node);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            assert_true(node[3 * i + c] == (float)(100.0 * c + i + 0.25));
    sim_node_to_axis(N, node, back);
    assert_memory_equal(back, axis, sizeof axis); /* float-exact values come back exactly */
    /* Doubles that are not floats round to nearest, as a cast does. */
    axis[N + 2] = 0.1;
    sim_axis_to_node(N, axis, node);
    assert_true(node[3 * 2 + 1] == 0.1f);
    sim_node_to_axis(N, node, back);
    assert_true(back[N + 2] == (double)0.1f);
    /* Two bodies, written out: body i's (x, y, z) are axis[i], axis[n + i], axis[2n + i]. */
    const double a2[6] = {1, 2, 3, 4, 5, 6};
    float n2[6];
    sim_axis_to_node(2, a2, n2);
    const float want[6] = {1, 3, 5, 2, 4, 6};
    assert_memory_equal(n2, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_long),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_parse_double_locale),
        cmocka_unit_test(test_quantile_matches_numpy),
        cmocka_unit_test(test_quantile_median_and_order),
        cmocka_unit_test(test_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
