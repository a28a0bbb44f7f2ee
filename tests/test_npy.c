/* test_npy.c: tests of the sim library's .npy reader and writer against files NumPy wrote,
 * its rejection messages for bad files, atomic writes, status names and dataset file names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim.h"
#include "tfs.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must name tests/data"
#endif
#define FIXTURES TEST_DATA_DIR "/npy"

/* Scratch directory of this run (mkdtemp), removed at the end. */
static char g_dir[256];

/* ---------------------------------------------------------------- helpers */

/* Path of a file in the scratch directory (static buffer, one of four in rotation). */
static const char *scratch(const char *name)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

/* Path of a fixture (static buffer, one of four in rotation). */
static const char *fixture(const char *name)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", FIXTURES, name);
    return b;
}

/* Whole file into a malloc'd buffer (tfs_slurp); fails the test if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *b = tfs_slurp(path, len);
    if (!b) {
        print_error("cannot read %s: %s\n", path, strerror(errno));
        fail();
    }
    return b;
}

/* A .npy file with a hand-written header dict: magic, version, little-endian length, dict, data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t dlen)
{
    size_t hl = strlen(dict), lb = major == 1 ? 2 : 4;
    size_t n = 8 + lb + hl + dlen;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < lb; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + 8 + lb, dict, hl);
    if (dlen)
        memcpy(b + 8 + lb + hl, data, dlen);
    assert_int_equal(tfs_write_file(path, b, n), 0);
    free(b);
}

/* The message must mention the key word (and so say what was found). */
static void assert_msg(const char *err, const char *word)
{
    if (!strstr(err, word)) {
        print_error("message \"%s\" does not contain \"%s\"\n", err, word);
        fail();
    }
}

/* Number of entries of a directory whose name contains ".tmp." (left-over temporaries). */
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

/* Read a file expected to be refused: checks status, message key word, and that out is empty. */
static void expect_reject(const char *path, int status, const char *word)
{
    struct sim_npy a;
    char err[SIM_ERRLEN];
    memset(&a, 0x5a, sizeof a);
    int st = sim_npy_read(path, &a, err);
    if (st != status)
        print_error("status %d (%s), message \"%s\"\n", st, sim_strerror(st), err);
    assert_int_equal(st, status);
    assert_msg(err, path);
    assert_msg(err, word);
    assert_null(a.data);
    assert_int_equal(a.count, 0);
    sim_npy_free(&a);
}

/* Read a file expected to be accepted. */
static void expect_read(const char *path, struct sim_npy *a)
{
    char err[SIM_ERRLEN];
    int st = sim_npy_read(path, a, err);
    if (st != SIM_OK)
        print_error("%s\n", err);
    assert_int_equal(st, SIM_OK);
    assert_non_null(a->data);
}

static int setup(void **state)
{
    (void)state;
    return tfs_mkdtemp(g_dir, sizeof g_dir, "test_npy");
}

static int teardown(void **state)
{
    (void)state;
    tfs_remove_tree(g_dir);
    return 0;
}

/* ---------------------------------------------------------------- names */

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = {SIM_OK, SIM_EARG, SIM_ENOMEM, SIM_EIO, SIM_EFORMAT, SIM_EEXIST};
    const int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        const char *s = sim_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, sim_strerror(-1));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s, sim_strerror(codes[j]));
    }
    assert_string_equal(sim_strerror(SIM_OK), "ok");
    assert_string_equal(sim_strerror(99), sim_strerror(-1));
}

static void test_dataset_path(void **state)
{
    (void)state;
    char buf[256];
    assert_int_equal(
        sim_dataset_path(buf, sizeof buf, "data", "loc", "train", SIM_CHARGED, 5, "small"), SIM_OK);
    assert_string_equal(buf, "data/loc_train_charged5_initvel1small.npy");
    assert_int_equal(sim_dataset_path(buf, sizeof buf, "/d/static_20body/", "vel", "valid",
                                      SIM_STATIC, 20, "static_20body"),
                     SIM_OK);
    assert_string_equal(buf, "/d/static_20body/vel_valid_static20_initvel1static_20body.npy");
    assert_int_equal(sim_dataset_path(buf, sizeof buf, "", "charges", "test", SIM_DYNAMIC, 20, ""),
                     SIM_OK);
    assert_string_equal(buf, "charges_test_dynamic20_initvel1.npy");

    /* Exactly fitting (length + NUL) succeeds, one byte less is refused. */
    const size_t need = strlen("data/loc_train_charged5_initvel1small.npy") + 1;
    assert_int_equal(sim_dataset_path(buf, need, "data", "loc", "train", SIM_CHARGED, 5, "small"),
                     SIM_OK);
    assert_int_equal(
        sim_dataset_path(buf, need - 1, "data", "loc", "train", SIM_CHARGED, 5, "small"), SIM_EARG);
    assert_string_equal(buf, "");
    assert_int_equal(sim_dataset_path(buf, sizeof buf, "data", "loc", "train", 7, 5, "small"),
                     SIM_EARG);
    assert_int_equal(sim_dataset_path(buf, sizeof buf, "data", NULL, "train", SIM_CHARGED, 5, ""),
                     SIM_EARG);
    assert_int_equal(sim_dataset_path(buf, sizeof buf, "data", "loc", "train", SIM_CHARGED, 0, ""),
                     SIM_EARG);
    assert_int_equal(sim_dataset_path(NULL, 10, "data", "loc", "train", SIM_CHARGED, 5, ""),
                     SIM_EARG);
}

/* ---------------------------------------------------------------- files NumPy wrote */

static void test_read_numpy_f8(void **state)
{
    (void)state;
    struct sim_npy a;
    expect_read(fixture("f8_234.npy"), &a);
    assert_int_equal(a.dtype, SIM_NPY_F8);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    assert_int_equal(a.shape[2], 4);
    assert_int_equal(a.count, 24);
    for (int i = 0; i < 24; i++)
        assert_true(a.data[i] == (i - 12) * 0.125); /* exact binary fractions */
    sim_npy_free(&a);
    assert_null(a.data);

    expect_read(fixture("f8_5.npy"), &a);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 5);
    for (int i = 0; i < 5; i++)
        assert_true(a.data[i] == i / 3.0);
    sim_npy_free(&a);

    expect_read(fixture("f8_scalar.npy"), &a);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.count, 1);
    assert_true(a.data[0] == 2.5);
    sim_npy_free(&a);

    expect_read(fixture("f8_empty.npy"), &a);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 0);
    assert_int_equal(a.shape[1], 3);
    assert_int_equal(a.count, 0);
    sim_npy_free(&a);
}

static void test_read_numpy_f4(void **state)
{
    (void)state;
    struct sim_npy a;
    expect_read(fixture("f4_35.npy"), &a);
    assert_int_equal(a.dtype, SIM_NPY_F4);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 5);
    assert_int_equal(a.count, 15);
    /* float32 values widened exactly; 0.1 * i is not a float, so this also checks rounding. */
    for (int i = 0; i < 15; i++)
        assert_true(a.data[i] == (double)(float)(i * 0.1));
    assert_true(a.data[1] != 0.1);
    sim_npy_free(&a);
}

static void test_read_numpy_v2_v3(void **state)
{
    (void)state;
    struct sim_npy a;
    expect_read(fixture("f8_v2.npy"), &a);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 2);
    for (int i = 0; i < 4; i++)
        assert_true(a.data[i] == i - 1.5);
    sim_npy_free(&a);

    expect_read(fixture("f8_v3.npy"), &a);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 3);
    for (int i = 0; i < 3; i++)
        assert_true(a.data[i] == i * 4.0);
    sim_npy_free(&a);
}

static void test_reject_numpy_files(void **state)
{
    (void)state;
    expect_reject(fixture("i8.npy"), SIM_EFORMAT, "dtype '<i8' is not supported");
    expect_reject(fixture("be_f8.npy"), SIM_EFORMAT, "big-endian");
    expect_reject(fixture("be_f8.npy"), SIM_EFORMAT, "'>f8'");
    expect_reject(fixture("fortran.npy"), SIM_EFORMAT, "fortran_order is True");
}

/* ---------------------------------------------------------------- writing */

/* Write data as NumPy would and compare with the file NumPy wrote, byte for byte. */
static void expect_identical(const char *fixture_name, int dtype, int ndim, const int64_t *shape,
                             const double *data)
{
    char err[SIM_ERRLEN];
    const char *out = scratch(fixture_name);
    int st = sim_npy_write(out, dtype, ndim, shape, data, err);
    if (st != SIM_OK)
        print_error("%s\n", err);
    assert_int_equal(st, SIM_OK);
    size_t la, lb;
    unsigned char *a = slurp(out, &la);
    unsigned char *b = slurp(fixture(fixture_name), &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
}

static void test_write_matches_numpy(void **state)
{
    (void)state;
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (i - 12) * 0.125;
    expect_identical("f8_234.npy", SIM_NPY_F8, 3, (const int64_t[]){2, 3, 4}, v);
    for (int i = 0; i < 15; i++)
        v[i] = i * 0.1;
    expect_identical("f4_35.npy", SIM_NPY_F4, 2, (const int64_t[]){3, 5}, v);
    for (int i = 0; i < 5; i++)
        v[i] = i / 3.0;
    expect_identical("f8_5.npy", SIM_NPY_F8, 1, (const int64_t[]){5}, v);
    v[0] = 2.5;
    expect_identical("f8_scalar.npy", SIM_NPY_F8, 0, NULL, v);
    expect_identical("f8_empty.npy", SIM_NPY_F8, 2, (const int64_t[]){0, 3}, NULL);
}

/* Write, check the header is 64-byte aligned, read back; f4 data comes back rounded to float. */
static void roundtrip(int dtype, int ndim, const int64_t *shape)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    double *v = malloc((count ? count : 1) * sizeof(double));
    assert_non_null(v);
    const double specials[] = {0.0, -0.0, 1e-310, -1.5e300, INFINITY, -INFINITY, 0.1, 1.0 / 3.0};
    const size_t nspecial = sizeof specials / sizeof specials[0];
    for (size_t i = 0; i < count; i++)
        v[i] = i < nspecial ? specials[i] : sin((double)i) * pow(10.0, (double)(i % 7) - 3.0);

    char err[SIM_ERRLEN];
    const char *path = scratch("rt.npy");
    int st = sim_npy_write(path, dtype, ndim, shape, v, err);
    if (st != SIM_OK)
        print_error("%s\n", err);
    assert_int_equal(st, SIM_OK);

    size_t flen;
    unsigned char *raw = slurp(path, &flen);
    assert_true(flen >= 10);
    assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
    size_t hlen = raw[8] | (size_t)raw[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(raw[10 + hlen - 1], '\n');
    assert_int_equal(flen, 10 + hlen + count * (dtype == SIM_NPY_F8 ? 8 : 4));
    free(raw);

    struct sim_npy a;
    expect_read(path, &a);
    assert_int_equal(a.dtype, dtype);
    assert_int_equal(a.ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(a.shape[i], shape[i]);
    assert_int_equal(a.count, count);
    for (size_t i = 0; i < count; i++) {
        double want = dtype == SIM_NPY_F8 ? v[i] : (double)(float)v[i];
        /* Bitwise: also distinguishes -0.0 from 0.0. */
        assert_memory_equal(&a.data[i], &want, sizeof want);
    }
    sim_npy_free(&a);
    free(v);
}

static void test_roundtrip(void **state)
{
    (void)state;
    const int64_t s1[] = {7}, s2[] = {3, 4}, s4[] = {3, 49, 3, 5}, s8[] = {2, 1, 3, 1, 2, 1, 1, 2},
                  s0[] = {4, 0, 2};
    for (int dt = SIM_NPY_F8; dt <= SIM_NPY_F4; dt++) {
        roundtrip(dt, 0, NULL);
        roundtrip(dt, 1, s1);
        roundtrip(dt, 2, s2);
        roundtrip(dt, 4, s4);
        roundtrip(dt, 8, s8);
        roundtrip(dt, 3, s0);
    }
    /* A first axis of 13 digits leaves 21 - 13 growth spaces, as NumPy does. */
    char err[SIM_ERRLEN];
    const int64_t szero[] = {1000000000000, 0};
    assert_int_equal(sim_npy_write(scratch("big.npy"), SIM_NPY_F8, 2, szero, NULL, err), SIM_OK);
    size_t len;
    unsigned char *raw = slurp(scratch("big.npy"), &len);
    const char *dict =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 0), }        ";
    assert_int_equal(len, 128);
    assert_memory_equal(raw + 10, dict, strlen(dict));
    assert_int_equal(raw[10 + strlen(dict)], ' ');
    free(raw);
}

static void test_write_overwrites_with_default_mode(void **state)
{
    (void)state;
    char err[SIM_ERRLEN];
    const char *path = scratch("mode.npy");
    double v[3] = {1, 2, 3};
    mode_t old = umask(022);
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 1, (const int64_t[]){3}, v, err), SIM_OK);
    v[0] = 9;
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 1, (const int64_t[]){2}, v, err), SIM_OK);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    /* mkstemp creates 0600; a file that a plain fopen would create is 0666 & ~umask. */
    assert_int_equal(sb.st_mode & 0777, 0644);
    struct sim_npy a;
    expect_read(path, &a);
    assert_int_equal(a.count, 2);
    assert_true(a.data[0] == 9);
    sim_npy_free(&a);
    assert_int_equal(count_temporaries(g_dir), 0);
}

static void test_write_bad_arguments(void **state)
{
    (void)state;
    char err[SIM_ERRLEN];
    const char *path = scratch("arg.npy");
    double v[2] = {0, 0};
    const int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(sim_npy_write(path, 2, 1, (const int64_t[]){2}, v, err), SIM_EARG);
    assert_msg(err, "dtype");
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 9, s9, v, err), SIM_EARG);
    assert_msg(err, "ndim");
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 1, (const int64_t[]){-2}, v, err), SIM_EARG);
    assert_msg(err, "negative");
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 1, (const int64_t[]){2}, NULL, err), SIM_EARG);
    assert_msg(err, "data");
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, 2, (const int64_t[]){INT64_MAX, 4}, v, err),
                     SIM_EARG);
    assert_msg(err, "overflow");
    assert_int_equal(access(path, F_OK), -1);
}

static void test_write_unwritable(void **state)
{
    (void)state;
    char err[SIM_ERRLEN];
    double v[3] = {1, 2, 3};
    const int64_t s[] = {3};

    /* Directory does not exist: nothing can be created. */
    const char *missing = scratch("no/such/dir/x.npy");
    assert_int_equal(sim_npy_write(missing, SIM_NPY_F8, 1, s, v, err), SIM_EIO);
    assert_msg(err, missing);
    assert_msg(err, strerror(ENOENT));

    /* Read-only directory; root ignores permissions, so only checked for other users. */
    char ro[512];
    snprintf(ro, sizeof ro, "%s", scratch("ro"));
    assert_int_equal(mkdir(ro, 0555), 0);
    if (geteuid() != 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/x.npy", ro);
        assert_int_equal(sim_npy_write(p, SIM_NPY_F8, 1, s, v, err), SIM_EIO);
        assert_msg(err, strerror(EACCES));
        assert_int_equal(count_temporaries(ro), 0);
    }

    /* The target is a non-empty directory: the temporary is written, the rename fails. */
    char target[512];
    snprintf(target, sizeof target, "%s", scratch("target"));
    assert_int_equal(mkdir(target, 0755), 0);
    char inside[600];
    snprintf(inside, sizeof inside, "%s/keep", target);
    assert_int_equal(tfs_write_file(inside, "k", 1), 0);
    assert_int_equal(sim_npy_write(target, SIM_NPY_F8, 1, s, v, err), SIM_EIO);
    assert_msg(err, target);
    assert_msg(err, "rename");
    assert_int_equal(count_temporaries(g_dir), 0);
    assert_int_equal(access(inside, F_OK), 0);

    /* Writing fails part-way (file size limit): no temporary, and the old file is untouched. */
    const char *old = scratch("old.npy");
    assert_int_equal(sim_npy_write(old, SIM_NPY_F8, 1, s, v, err), SIM_OK);
    size_t len0;
    unsigned char *before = slurp(old, &len0);
    enum { BIG = 100000 };
    double *big = calloc(BIG, sizeof(double));
    assert_non_null(big);
    struct rlimit lim, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int st = sim_npy_write(old, SIM_NPY_F8, 1, (const int64_t[]){BIG}, big, err);
    int restored = setrlimit(RLIMIT_FSIZE, &lim);
    signal(SIGXFSZ, prev);
    free(big);
    assert_int_equal(restored, 0);
    assert_int_equal(st, SIM_EIO);
    assert_msg(err, old);
    assert_msg(err, strerror(EFBIG));
    assert_int_equal(count_temporaries(g_dir), 0);
    size_t len1;
    unsigned char *after = slurp(old, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
}

/* ---------------------------------------------------------------- hand-made headers */

static void test_header_variants(void **state)
{
    (void)state;
    const double d6[6] = {1, 2, 3, 4, 5, 6};
    /* Each dict describes shape (2, 3) float64 C order, written differently. */
    const char *dicts[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}",
        "{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(2,3)}\n",
        "  {  'fortran_order' :\tFalse ,\n 'descr' : '<f8' , 'shape' : ( 2 , 3 , ) , }   \n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }\n",
    };
    for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
        for (int major = 1; major <= 2; major++) {
            const char *p = scratch("var.npy");
            write_npy_raw(p, major, dicts[k], d6, sizeof d6);
            struct sim_npy a;
            expect_read(p, &a);
            assert_int_equal(a.ndim, 2);
            assert_int_equal(a.shape[0], 2);
            assert_int_equal(a.shape[1], 3);
            for (int i = 0; i < 6; i++)
                assert_true(a.data[i] == d6[i]);
            sim_npy_free(&a);
        }
    }
    /* Shapes (), (1,) and 8 dimensions written by hand. */
    const char *p = scratch("var.npy");
    struct sim_npy a;
    write_npy_raw(p, 1, "{'descr':'<f8','fortran_order':False,'shape':()}", d6, 8);
    expect_read(p, &a);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.count, 1);
    sim_npy_free(&a);
    write_npy_raw(p, 1, "{'descr':'<f8','fortran_order':False,'shape':(1,)}", d6, 8);
    expect_read(p, &a);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 1);
    sim_npy_free(&a);
    write_npy_raw(p, 1, "{'descr':'<f8','fortran_order':False,'shape':(1,1,1,1,1,1,1,1)}", d6, 8);
    expect_read(p, &a);
    assert_int_equal(a.ndim, 8);
    sim_npy_free(&a);
}

/* One malformed or unsupported header: the reader must name the problem. */
struct bad_case {
    const char *dict;
    size_t data_bytes;
    const char *word;
};

static void test_reject_headers(void **state)
{
    (void)state;
    static const double zeros[16];
    const struct bad_case cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", 16, "malformed header"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), } x", 16, "after '}'"},
        {"{'descr': '<f8', 'fortran_order': False}", 16, "missing key 'shape'"},
        {"{'descr': '<f8', 'shape': (2,)}", 16, "missing key 'fortran_order'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", 16,
         "unexpected key 'x'"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", 16,
         "duplicate key 'descr'"},
        {"{'descr' '<f8', 'fortran_order': False, 'shape': (2,)}", 16,
         "expected ':' after key 'descr'"},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (2,)}", 16, "malformed header"},
        {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", 16, "True or False"},
        {"{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}", 16, "True or False"},
        {"{'descr': <f8, 'fortran_order': False, 'shape': (2,)}", 16, "malformed header"},
        {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", 16, "malformed header"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2)}", 16, "not a tuple"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", 16, "tuple"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}", 16, "integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2 3)}", 16, "expected ',' or ')'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (,)}", 16, "integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}", 16, "negative dimension -3"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 16,
         "9 dimensions"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", 16,
         "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 16,
         "overflow"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,)}", 16,
         "dtype '<i8' is not supported"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", 16, "big-endian"},
        {"{'descr': '=f8', 'fortran_order': False, 'shape': (2,)}", 16, "dtype '=f8'"},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,)}", 16, "structured"},
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2,)}", 16, "fortran_order is True"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", 10,
         "data truncated: expected 16 bytes, found 10"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 4,
         "data truncated: expected 12 bytes, found 4"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", 17,
         "extra bytes after the data: expected 16 bytes of data, found 17"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': ()}", 0, "expected 8 bytes, found 0"},
        {"", 0, "expected '{'"},
        {"[1, 2]", 0, "expected '{'"},
    };
    const char *p = scratch("bad.npy");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_npy_raw(p, 1, cases[k].dict, zeros, cases[k].data_bytes);
        expect_reject(p, SIM_EFORMAT, cases[k].word);
    }
}

static void test_reject_preamble(void **state)
{
    (void)state;
    const char *p = scratch("pre.npy");
    assert_int_equal(tfs_write_file(p, "\x93NUMPX\x01\x00\x10\x00{}", 12), 0);
    expect_reject(p, SIM_EFORMAT, "bad magic");
    assert_int_equal(tfs_write_file(p, "PK\x03\x04 this is a zip file", 24), 0);
    expect_reject(p, SIM_EFORMAT, "bad magic");
    assert_int_equal(tfs_write_file(p, "", 0), 0);
    expect_reject(p, SIM_EFORMAT, "too short");
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x01", 7), 0);
    expect_reject(p, SIM_EFORMAT, "too short");
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x04\x00\x10\x00", 10), 0);
    expect_reject(p, SIM_EFORMAT, "version 4.0");
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x01\x00\x10", 9), 0);
    expect_reject(p, SIM_EFORMAT, "header length field");
    /* Header length 99999 in a 2.0 file much shorter than that. */
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x02\x00\x9f\x86\x01\x00{}", 14), 0);
    expect_reject(p, SIM_EFORMAT, "header length 99999 exceeds file");
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x01\x00\xff\xff{}", 12), 0);
    expect_reject(p, SIM_EFORMAT, "header length 65535 exceeds file");
    /* A corrupt 4-byte length is refused from the file size, before any allocation. */
    assert_int_equal(tfs_write_file(p, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14), 0);
    expect_reject(p, SIM_EFORMAT, "header length 4294967295 exceeds file");
}

static void test_read_io_errors(void **state)
{
    (void)state;
    const char *p = scratch("does-not-exist.npy");
    expect_reject(p, SIM_EIO, strerror(ENOENT));
    expect_reject(g_dir, SIM_EIO, strerror(EISDIR));
    struct sim_npy a;
    char err[SIM_ERRLEN];
    assert_int_equal(sim_npy_read(fixture("f8_5.npy"), NULL, err), SIM_EARG);
    assert_int_equal(sim_npy_read(NULL, &a, err), SIM_EARG);
    sim_npy_free(NULL);
}

/* Feed bytes through a FIFO, where the reader cannot learn the size in advance. */
static int read_through_fifo(const void *bytes, size_t len, struct sim_npy *a, char *err)
{
    const char *fifo = scratch("fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN); /* the reader may stop early; a write error is fine then */
        FILE *f = fopen(fifo, "wb");
        size_t w = f ? fwrite(bytes, 1, len, f) : 0;
        _exit(f && w == len && fclose(f) == 0 ? 0 : 1);
    }
    int st = sim_npy_read(fifo, a, err);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    unlink(fifo);
    return st;
}

static void test_read_fifo(void **state)
{
    (void)state;
    size_t len;
    unsigned char *good = slurp(fixture("f8_234.npy"), &len);
    struct sim_npy a;
    char err[SIM_ERRLEN];
    int st = read_through_fifo(good, len, &a, err);
    if (st != SIM_OK)
        print_error("%s\n", err);
    assert_int_equal(st, SIM_OK);
    assert_int_equal(a.count, 24);
    assert_true(a.data[23] == 11 * 0.125);
    sim_npy_free(&a);

    assert_int_equal(read_through_fifo(good, len - 3, &a, err), SIM_EFORMAT);
    assert_msg(err, "data truncated: expected 192 bytes, found 189");
    assert_null(a.data);

    unsigned char *more = malloc(len + 5);
    assert_non_null(more);
    memcpy(more, good, len);
    memset(more + len, 0, 5);
    assert_int_equal(read_through_fifo(more, len + 5, &a, err), SIM_EFORMAT);
    assert_msg(err, "extra bytes after the data");
    free(more);

    /* Header length beyond the end of the stream. */
    assert_int_equal(read_through_fifo("\x93NUMPY\x01\x00\x00\x01{}", 12, &a, err), SIM_EFORMAT);
    assert_msg(err, "header length 256 exceeds file");
    /* Without a file size, an absurd header length is refused before allocating it. */
    assert_int_equal(read_through_fifo("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14, &a, err),
                     SIM_EFORMAT);
    assert_msg(err, "header length 4294967295 exceeds the limit");
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_dataset_path),
        cmocka_unit_test(test_read_numpy_f8),
        cmocka_unit_test(test_read_numpy_f4),
        cmocka_unit_test(test_read_numpy_v2_v3),
        cmocka_unit_test(test_reject_numpy_files),
        cmocka_unit_test(test_write_matches_numpy),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_write_overwrites_with_default_mode),
        cmocka_unit_test(test_write_bad_arguments),
        cmocka_unit_test(test_write_unwritable),
        cmocka_unit_test(test_header_variants),
        cmocka_unit_test(test_reject_headers),
        cmocka_unit_test(test_reject_preamble),
        cmocka_unit_test(test_read_io_errors),
        cmocka_unit_test(test_read_fifo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
