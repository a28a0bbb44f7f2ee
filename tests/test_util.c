/* test_util.c: the sim library's shared helpers: command-line numbers (sim_parse_long,
 * sim_parse_double), sim_quantile against numpy's values, the layout conversion, SHA-256
 * (both code paths) and the dataset sidecar's reader. */
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
#include "tfs.h"

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

/* SHA-256 of data as hex. */
static void sha_hex(const void *data, size_t len, size_t piece, char hex[65])
{
    struct sim_sha256 c;
    unsigned char d[32];
    sim_sha256_init(&c);
    const unsigned char *p = data;
    for (size_t off = 0; off < len; off += piece)
        sim_sha256_update(&c, p + off, len - off < piece ? len - off : piece);
    sim_sha256_final(&c, d);
    sim_sha256_hex(d, hex);
}

/* FIPS 180-4 / NIST example digests, fed whole and in odd pieces, by the CPU's SHA
 * instructions (where it has them) and by the portable code (NBODY_SHA256_PORTABLE). */
static void test_sha256_vectors(void **state)
{
    (void)state;
    static char million[1000000];
    memset(million, 'a', sizeof million);
    const struct {
        const char *data;
        size_t len;
        const char *hex;
    } v[] = {
        {"", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu", 112,
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {million, sizeof million, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    for (int portable = 0; portable < 2; portable++) {
        if (portable)
            setenv("NBODY_SHA256_PORTABLE", "1", 1);
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            const size_t pieces[3] = {v[k].len ? v[k].len : 1, 1, 63};
            for (int j = 0; j < 3; j++) {
                char hex[65];
                if (v[k].len > 1000 && pieces[j] == 1)
                    continue; /* a million calls of one byte adds nothing */
                sha_hex(v[k].data, v[k].len, pieces[j], hex);
                if (strcmp(hex, v[k].hex) != 0)
                    fail_msg("vector %zu (%s code, pieces of %zu): %s", k,
                             portable ? "portable" : "default", pieces[j], hex);
            }
        }
        struct sim_sha256 c;
        sim_sha256_init(&c);
        if (portable)
            assert_int_equal(c.accel, 0);
        else
            print_message("SHA-256 through the CPU's SHA instructions: %s\n", c.accel ? "yes" : "no");
    }
    unsetenv("NBODY_SHA256_PORTABLE");
}

/* sim_npy_write_hashed, sim_npy_read_hashed and sim_file_sha256 give the same digest, the one
 * of the file's bytes. */
static void test_npy_digests(void **state)
{
    (void)state;
    char dir[256], path[300], err[SIM_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_util"), 0);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    double data[60];
    for (int k = 0; k < 60; k++)
        data[k] = k * 0.25 - 3;
    const int64_t shape[3] = {4, 5, 3};
    unsigned char w[32], r[32], f[32];
    int64_t bytes = 0;
    assert_int_equal(sim_npy_write_hashed(path, SIM_NPY_F8, 3, shape, data, w, err), SIM_OK);
    struct sim_npy a;
    assert_int_equal(sim_npy_read_hashed(path, &a, r, err), SIM_OK);
    sim_npy_free(&a);
    assert_int_equal(sim_file_sha256(path, f, &bytes, err), SIM_OK);
    size_t len = 0;
    unsigned char *raw = tfs_slurp(path, &len);
    assert_non_null(raw);
    char hw[65], hr[65], hf[65], hraw[65];
    sim_sha256_hex(w, hw);
    sim_sha256_hex(r, hr);
    sim_sha256_hex(f, hf);
    sha_hex(raw, len, len, hraw);
    assert_string_equal(hw, hraw);
    assert_string_equal(hr, hraw);
    assert_string_equal(hf, hraw);
    assert_int_equal(bytes, (int64_t)len);
    /* the header alone: the shape, no data */
    assert_int_equal(sim_npy_read_header(path, &a, err), SIM_OK);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.shape[1], 5);
    assert_null(a.data);
    free(raw);
    tfs_remove_tree(dir);
}

/* A sidecar written by sim_manifest_write reads back; the reader refuses, each with a message
 * naming the file and the place, what is not a sidecar of this format. */
static void test_manifest(void **state)
{
    (void)state;
    char dir[256], path[300], err[SIM_ERRLEN];
    assert_int_equal(tfs_mkdtemp(dir, sizeof dir, "test_util"), 0);
    snprintf(path, sizeof path, "%s/dataset.json", dir);
    struct sim_manifest m, back;
    memset(&m, 0, sizeof m);
    snprintf(m.run_id, sizeof m.run_id, "run-\"7\"");
    snprintf(m.generator, sizeof m.generator, "nbody-gen");
    snprintf(m.sim, sizeof m.sim, "static");
    snprintf(m.tag, sizeof m.tag, "tab\there");
    m.bodies = 20;
    m.seed = 4294967295LL;
    m.reference_seeds = 1;
    m.length = 5000;
    m.sample_freq = 100;
    m.frames = 49;
    m.counts[0] = 3000, m.counts[1] = 2000, m.counts[2] = 0;
    m.nfiles = 12;
    for (int k = 0; k < 12; k++) {
        snprintf(m.file[k].name, sizeof m.file[k].name, "f%d.npy", k);
        m.file[k].bytes = 1000 * k;
        for (int j = 0; j < 32; j++)
            m.file[k].sha256[j] = (unsigned char)(7 * k + j);
    }
    assert_int_equal(sim_manifest_write(dir, &m, err), SIM_OK);
    int present = 0;
    assert_int_equal(sim_manifest_read(dir, &back, &present, err), SIM_OK);
    assert_true(present);
    assert_memory_equal(&m, &back, sizeof m);
    assert_non_null(sim_manifest_find(&back, "f11.npy"));
    assert_null(sim_manifest_find(&back, "f12.npy"));
    /* no sidecar: present 0, not an error */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sim_manifest_read(dir, &back, &present, err), SIM_OK);
    assert_false(present);
    const char *files = "\"files\": [{\"name\": \"a.npy\", \"bytes\": 3, \"sha256\": "
                        "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}]";
    char good[600];
    snprintf(good, sizeof good, "{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", "
             "\"extra\": [1, {\"x\": null}, -2.5e3, true], %s}", files);
    assert_int_equal(sim_manifest_parse(good, strlen(good), "g", &back, err), SIM_OK);
    assert_int_equal(back.nfiles, 1);
    const struct {
        const char *text, *expect;
    } bad[] = {
        {"", "expected '{'"},
        {"[]", "expected '{'"},
        {"{\"format\": \"nbody-dataset 2\"}", "format"},
        {"{\"format\": \"nbody-dataset 1\", \"files\": []}", "run_id"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\"}", "files"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": []}", "no file"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"name\": \"a\"}]}",
         "needs a name, bytes and sha256"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"name\": \"../a\", "
         "\"bytes\": 1, \"sha256\": \"00112233445566778899aabbccddeeff00112233445566778899aabbc"
         "cddeeff\"}]}", "directory"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"name\": \"a\", "
         "\"bytes\": -1}]}", "out of range"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"name\": \"a\", "
         "\"bytes\": 1.5}]}", "integer"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"name\": \"a\", "
         "\"bytes\": 99999999999999999999}]}", "integer"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"files\": [{\"sha256\": \"zz\"}]}",
         "64 hex"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\" \"files\": []}", "expected ','"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"x\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
         "nested too deeply"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\\ud800\"}", "surrogate"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\", \"x\": 01}", "leading zero"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"r\"} trailing", "after the object"},
        {"{\"format\": \"nbody-dataset 1\", \"run_id\": \"unterminated", "unterminated"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int st = sim_manifest_parse(bad[k].text, strlen(bad[k].text), "side.json", &back, err);
        if (st != SIM_EFORMAT || !strstr(err, bad[k].expect) || strncmp(err, "side.json: ", 11))
            fail_msg("case %zu: status %d, \"%s\" (expected '%s')", k, st, err, bad[k].expect);
    }
    /* too big to be one: refused unread */
    char *big = malloc(SIM_MANIFEST_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, ' ', SIM_MANIFEST_MAX_BYTES + 1);
    big[0] = '{';
    big[SIM_MANIFEST_MAX_BYTES] = '}';
    assert_int_equal(tfs_write_file(path, big, SIM_MANIFEST_MAX_BYTES + 1), 0);
    free(big);
    assert_int_equal(sim_manifest_read(dir, &back, &present, err), SIM_EFORMAT);
    assert_non_null(strstr(err, path));
    tfs_remove_tree(dir);
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
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_npy_digests),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
