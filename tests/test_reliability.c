/* test_reliability.c: bad inputs and interruptions of the model programs (issue 12): every
 * exp and sigmoid input defined, checkpoint headers and arrays range-checked, non-finite and
 * huge data named, messages that name the file, signals under threads. */
#define _GNU_SOURCE /* tfs_on_small_disk: a tmpfs in a mount namespace */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clofnet.h"
#include "internal.h"
#include "sim.h"
#include "tfs.h"

#define GEN BIN_DIR "/sim/nbody-gen"
#define TRAIN BIN_DIR "/model/nbody-train"
#define EVAL BIN_DIR "/model/nbody-eval"
#define STEP_CHARGED ASSETS_DIR "/models/step-charged5.ckpt"
#define STEP_DYNAMIC ASSETS_DIR "/models/step-dynamic5.ckpt"

/* cn_expf against libm's expf on [-87, 88]: Cephes' polynomial is good to about 1 ulp, and 4
 * ulp of slack keeps the test about definedness and gross error, not libm's last bit. */
#define EXPF_REL_TOL (4 * FLT_EPSILON)
/* Byte offsets in a checkpoint (model/ckpt.c, pack_header): int32 fields from 12 (task,
 * hidden, layers, node_in, has_field, sim_kind, n_bodies, horizon, with_opt, arch), n_params
 * (int64) at 76, step (int64) at 84; the arrays start at 96 and a CRC-32 ends the file. */
#define OFF_SIM_KIND 32
#define OFF_N_BODIES 36
#define OFF_HORIZON 40
#define OFF_WITH_OPT 44
#define OFF_N_PARAMS 76
#define OFF_STEP 84
#define OFF_ARRAYS 136 /* version 2: the 96-byte header, then the 40-byte training-data record */

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    return tfs_mkdtemp(g_dir, sizeof g_dir, "test_reliability");
}

static int teardown(void **state)
{
    (void)state;
    tfs_remove_tree(g_dir);
    return 0;
}

/* The stderr a command left in g_dir/stderr.txt, into buf (one line expected). */
static void last_stderr(char *buf, size_t len)
{
    char p[300];
    snprintf(p, sizeof p, "%s/stderr.txt", g_dir);
    size_t n = 0;
    unsigned char *b = tfs_slurp(p, &n);
    snprintf(buf, len, "%s", b ? (char *)b : "");
    free(b);
}

/* Exactly one line, non-empty. */
static void assert_one_line(const char *msg)
{
    const char *nl = strchr(msg, '\n');
    if (!nl || nl == msg || nl[1] != '\0')
        fail_msg("expected one line, got \"%s\"", msg);
}

/* ------------------------------------------------------------ exp */

/* cn_expf and cn_sigmoidf: NaN in, NaN out; +-Inf clamped; finite inputs accurate. (Under
 * UBSan the NaN case used to abort: a NaN converted to int and a negative value shifted.) */
static void test_expf_defined(void **state)
{
    (void)state;
    const float nan = NAN, inf = INFINITY;
    assert_true(isnan(cn_expf(nan)));
    assert_true(isnan(cn_expf(-nan)));
    assert_true(isnan(cn_sigmoidf(nan)));
    assert_true(isfinite(cn_expf(inf)) && cn_expf(inf) == cn_expf(88.0f));
    assert_true(cn_expf(-inf) == cn_expf(-87.0f) && cn_expf(-inf) > 0);
    assert_true(cn_sigmoidf(inf) == 1.0f);
    assert_true(cn_sigmoidf(-inf) >= 0 && cn_sigmoidf(-inf) < 1e-37f);
    for (float x = -87.0f; x <= 88.0f; x += 0.173f) {
        const float y = cn_expf(x), want = expf(x);
        if (!(fabsf(y - want) <= EXPF_REL_TOL * want))
            fail_msg("cn_expf(%.9g) = %.9g, expf gives %.9g", (double)x, (double)y, (double)want);
    }
}

/* ------------------------------------------------------------ checkpoints */

/* A small step-model checkpoint at path, with the AdamW moments (a .state's layout) if opt. */
static void write_ckpt(const char *path, int opt)
{
    struct cn_config c;
    cn_config_default(&c, CN_TASK_STEP);
    c.hidden = 8;
    c.layers = 1;
    struct cn_state s;
    char err[CN_ERRLEN];
    assert_int_equal(cn_state_init(&s, &c, err), CN_OK);
    cn_param_init(&c, s.param, 3);
    for (long k = 0; k < s.n_params; k++) {
        s.m[k] = 1e-3f * (float)(k % 7);
        s.v[k] = 1e-6f * (float)(k % 5);
    }
    s.step = 12;
    const struct cn_meta meta = {.sim_kind = SIM_CHARGED, .n_bodies = 5, .horizon_steps = 100};
    if (cn_ckpt_save(path, &s, &meta, opt, NULL, 0, err) != CN_OK)
        fail_msg("%s", err);
    cn_state_free(&s);
}

/* Overwrite 4 or 8 bytes of a checkpoint at off and put the CRC right again, so that the
 * loader's own checks, not the checksum, see the change. */
static void patch_ckpt(const char *path, size_t off, const void *bytes, size_t n)
{
    size_t len = 0;
    unsigned char *b = tfs_slurp(path, &len);
    assert_non_null(b);
    assert_true(off + n + 4 <= len);
    memcpy(b + off, bytes, n);
    uint32_t crc = cn_crc32(0, b, len - 4);
    for (int k = 0; k < 4; k++)
        b[len - 4 + k] = (unsigned char)(crc >> (8 * k));
    assert_int_equal(tfs_write_file(path, b, len), 0);
    free(b);
}

/* Little-endian int32 / int64 / float of a value, for patch_ckpt. */
static void le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}
static void le64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* Load path expecting CN_EFORMAT with a message naming the file and every string given. */
static void expect_load_refused(const char *path, const char *a, const char *b)
{
    struct cn_state s;
    struct cn_meta m;
    char err[CN_ERRLEN];
    int st = cn_ckpt_load(path, NULL, &s, &m, NULL, NULL, NULL, err);
    if (st == CN_OK) {
        cn_state_free(&s);
        fail_msg("%s loaded; expected a refusal naming '%s'", path, a);
    }
    if (!strstr(err, path) || !strstr(err, a) || (b && !strstr(err, b)))
        fail_msg("message \"%s\" should name %s, '%s' and '%s'", err, path, a, b ? b : "");
}

/* Absurd header fields are refused, each named with its value. */
static void test_ckpt_header_ranges(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/h.ckpt", g_dir);
    const struct {
        size_t off;
        int64_t value;
        int wide;
        const char *field, *shown;
    } cases[] = {
        {OFF_N_BODIES, 1, 0, "n_bodies", "is 1"},
        {OFF_N_BODIES, 2000000000, 0, "n_bodies", "is 2000000000"},
        {OFF_N_BODIES, -5, 0, "n_bodies", "is -5"},
        {OFF_HORIZON, 0, 0, "horizon", "is 0"},
        {OFF_HORIZON, 2147483647, 0, "horizon", "is 2147483647"},
        {OFF_SIM_KIND, 7, 0, "sim_kind", "is 7"},
        {OFF_WITH_OPT, 2, 0, "with_opt", "is 2"},
        {OFF_STEP, -1, 1, "step", "is -1"},
        {OFF_STEP, INT64_MAX, 1, "step", "is 9223372036854775807"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_ckpt(path, 0);
        unsigned char b[8];
        if (cases[k].wide)
            le64(b, (uint64_t)cases[k].value);
        else
            le32(b, (uint32_t)(int32_t)cases[k].value);
        patch_ckpt(path, cases[k].off, b, cases[k].wide ? 8 : 4);
        expect_load_refused(path, cases[k].field, cases[k].shown);
    }
    /* and the unpatched file loads */
    write_ckpt(path, 1);
    struct cn_state s;
    char err[CN_ERRLEN];
    assert_int_equal(cn_ckpt_load(path, NULL, &s, NULL, NULL, NULL, NULL, err), CN_OK);
    cn_state_free(&s);
}

/* NaN, Inf and huge values in the parameters and moments are refused, the array and the first
 * bad index named. */
static void test_ckpt_bad_values(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/v.ckpt", g_dir);
    write_ckpt(path, 1);
    size_t len;
    unsigned char *b = tfs_slurp(path, &len);
    assert_non_null(b);
    long np = 0;
    for (int k = 0; k < 8; k++)
        np |= (long)b[OFF_N_PARAMS + k] << (8 * k);
    free(b);
    assert_true(np > 10);
    const struct {
        int array; /* 0 parameters, 1 first moment, 2 second moment */
        long index;
        float value;
        const char *what, *name;
    } cases[] = {
        {0, 3, NAN, "non-finite", "parameter"},
        {0, 0, INFINITY, "non-finite", "parameter"},
        {0, 9, -INFINITY, "non-finite", "parameter"},
        {0, 5, 1e30f, "out-of-range", "parameter"},
        {0, 5, -3e38f, "out-of-range", "parameter"},
        {1, 7, NAN, "non-finite", "first moment"},
        {2, 2, -1.0f, "negative", "second moment"},
        {2, 4, INFINITY, "non-finite", "second moment"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_ckpt(path, 1);
        unsigned char v[4];
        uint32_t u;
        memcpy(&u, &cases[k].value, 4);
        le32(v, u);
        patch_ckpt(path, OFF_ARRAYS + 4 * ((size_t)cases[k].array * np + cases[k].index), v, 4);
        char at[64];
        snprintf(at, sizeof at, "index %ld of %ld", cases[k].index, np);
        expect_load_refused(path, cases[k].what, cases[k].name);
        expect_load_refused(path, at, NULL);
    }
}

/* A directory (or a device) given as a checkpoint is named as what it is. */
static void test_ckpt_not_a_file(void **state)
{
    (void)state;
    char err[CN_ERRLEN], msg[1024];
    struct cn_state s;
    assert_int_equal(cn_ckpt_load(g_dir, NULL, &s, NULL, NULL, NULL, NULL, err), CN_EIO);
    if (!strstr(err, g_dir) || !strstr(err, "is a directory"))
        fail_msg("message \"%s\"", err);
    assert_int_equal(cn_ckpt_load("/dev/null", NULL, &s, NULL, NULL, NULL, NULL, err), CN_EIO);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(tfs_run(EVAL " --model '%s' --data '%s' 2> '%s/stderr.txt'", g_dir, g_dir, g_dir),
                     1);
    last_stderr(msg, sizeof msg);
    assert_one_line(msg);
    if (!strstr(msg, "is a directory") || strstr(msg, "memory"))
        fail_msg("nbody-eval --model DIR said \"%s\"", msg);
}

/* ------------------------------------------------------------ datasets */

static const char *const splits[3] = {"train", "valid", "test"};

/* A dataset folder as the reference generator makes one (the 12 .npy files, no sidecar):
 * counts[s] trajectories of F frames of n bodies, small positions and velocities. */
static void write_dataset(const char *dir, int kind, int n, const int counts[3], int F)
{
    assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
    srand(11);
    for (int s = 0; s < 3; s++) {
        const int T = counts[s];
        const size_t lv = (size_t)T * F * 3 * n;
        double *loc = malloc(lv * sizeof *loc), *vel = malloc(lv * sizeof *vel);
        double *q = malloc((size_t)T * n * sizeof *q), *e = malloc((size_t)T * n * n * sizeof *e);
        assert_true(loc && vel && q && e);
        for (size_t k = 0; k < lv; k++) {
            loc[k] = 2.0 * rand() / RAND_MAX - 1.0;
            vel[k] = 0.5 * rand() / RAND_MAX - 0.25;
        }
        for (int t = 0; t < T; t++)
            for (int i = 0; i < n; i++)
                q[t * n + i] = rand() % 2 ? 1.0 : -1.0;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    e[((size_t)t * n + i) * n + j] = q[t * n + i] * q[t * n + j];
        const int64_t slv[4] = {T, F, 3, n}, se[3] = {T, n, n}, sq[3] = {T, n, 1};
        const struct {
            const char *name;
            int ndim;
            const int64_t *shape;
            const double *data;
        } f[4] = {{"loc", 4, slv, loc}, {"vel", 4, slv, vel}, {"edges", 3, se, e},
                  {"charges", 3, sq, q}};
        for (int k = 0; k < 4; k++) {
            char path[600], err[SIM_ERRLEN];
            sim_dataset_path(path, sizeof path, dir, f[k].name, splits[s], kind, n, "small");
            if (sim_npy_write(path, SIM_NPY_F8, f[k].ndim, f[k].shape, f[k].data, err) != SIM_OK)
                fail_msg("%s", err);
        }
        free(loc);
        free(vel);
        free(q);
        free(e);
    }
}

/* Set one value of one file of a dataset written by write_dataset. */
static void set_value(const char *dir, const char *qty, const char *split, size_t index, double v)
{
    char path[600], err[SIM_ERRLEN];
    sim_dataset_path(path, sizeof path, dir, qty, split, SIM_CHARGED, 5, "small");
    struct sim_npy a;
    assert_int_equal(sim_npy_read(path, &a, err), SIM_OK);
    assert_true(index < a.count);
    a.data[index] = v;
    assert_int_equal(sim_npy_write(path, SIM_NPY_F8, a.ndim, a.shape, a.data, err), SIM_OK);
    sim_npy_free(&a);
}

/* NaN, +-Inf and +-1e300 in loc, vel or charges: cn_data_load, nbody-eval and nbody-train
 * each refuse with one message naming the file and the first bad index, and write nothing. */
static void test_data_bad_values(void **state)
{
    (void)state;
    const int counts[3] = {40, 8, 8}, F = 6, n = 5;
    const struct {
        const char *qty, *split;
        int t, f, c, i; /* loc / vel [t, f, c, i]; charges [t, i, 0] (f, c unused) */
        double value;
        const char *what;
    } cases[] = {
        {"loc", "test", 3, 2, 1, 4, NAN, "non-finite"},
        {"vel", "test", 7, 5, 2, 0, INFINITY, "non-finite"},
        {"loc", "test", 0, 0, 0, 0, -INFINITY, "non-finite"},
        {"vel", "test", 5, 1, 0, 3, 1e300, "beyond"},
        {"loc", "test", 2, 4, 2, 2, -1e300, "beyond"},
        {"charges", "test", 6, 0, 0, 2, NAN, "non-finite"},
        {"loc", "train", 39, 5, 2, 4, 1e300, "beyond"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char dir[400], path[600], at[64], msg[2048], err[CN_ERRLEN];
        snprintf(dir, sizeof dir, "%s/bad%zu", g_dir, k);
        write_dataset(dir, SIM_CHARGED, n, counts, F);
        int charges = !strcmp(cases[k].qty, "charges");
        size_t idx = charges ? (size_t)cases[k].t * n + cases[k].i
                             : (((size_t)cases[k].t * F + cases[k].f) * 3 + cases[k].c) * n +
                                   cases[k].i;
        set_value(dir, cases[k].qty, cases[k].split, idx, cases[k].value);
        if (charges)
            snprintf(at, sizeof at, "index [%d, %d, 0]", cases[k].t, cases[k].i);
        else
            snprintf(at, sizeof at, "index [%d, %d, %d, %d]", cases[k].t, cases[k].f, cases[k].c,
                     cases[k].i);
        sim_dataset_path(path, sizeof path, dir, cases[k].qty, cases[k].split, SIM_CHARGED, n,
                         "small");
        struct cn_data d;
        assert_int_equal(cn_data_load(dir, CN_SPLIT_TRAIN | CN_SPLIT_VALID | CN_SPLIT_TEST, 0, &d,
                                      err), CN_EDATA);
        if (!strstr(err, path) || !strstr(err, at) || !strstr(err, cases[k].what))
            fail_msg("case %zu: message \"%s\" should name %s, %s, %s", k, err, path, at,
                     cases[k].what);
        const int entries = tfs_count_entries(dir);
        /* the programs: nbody-eval on the test split, nbody-train on all three */
        if (!strcmp(cases[k].split, "test")) {
            assert_int_equal(tfs_run("cd '%s' && " EVAL " --model " STEP_CHARGED " --data '%s' "
                                 "2> '%s/stderr.txt'", dir, dir, g_dir), 1);
            last_stderr(msg, sizeof msg);
            assert_one_line(msg);
            if (!strstr(msg, path) || !strstr(msg, at))
                fail_msg("nbody-eval said \"%s\"", msg);
        }
        assert_int_equal(tfs_run(TRAIN " --data '%s' --out '%s/m.ckpt' --task step --epochs 1 "
                             "--hidden 8 --layers 1 --batch 8 2> '%s/stderr.txt' > /dev/null",
                             dir, dir, g_dir), 1);
        last_stderr(msg, sizeof msg);
        assert_one_line(msg);
        if (!strstr(msg, path) || !strstr(msg, at))
            fail_msg("nbody-train said \"%s\"", msg);
        assert_int_equal(tfs_count_entries(dir), entries); /* nothing written */
    }
}

/* Copy one file. */
static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    unsigned char *b = tfs_slurp(from, &len);
    assert_non_null(b);
    assert_int_equal(tfs_write_file(to, b, len), 0);
    free(b);
}

/* A folder holding files of two runs (a file of run B among run A's, A's sidecar) is refused
 * by cn_data_load, nbody-eval and nbody-train, naming the file and the run, whether the
 * foreign file is in a split they load or not; the sidecar itself damaged is refused naming
 * it. Without a sidecar (the reference generator's folders), shapes that disagree between
 * the files of a split are refused, loaded or not. */
static void test_mixed_folder(void **state)
{
    (void)state;
    char a[400], b[400], mix[400], msg[2048], err[CN_ERRLEN];
    snprintf(a, sizeof a, "%s/runA", g_dir);
    snprintf(b, sizeof b, "%s/runB", g_dir);
    snprintf(mix, sizeof mix, "%s/mixed", g_dir);
    const char *small = "--train 40 --valid 8 --test 8 --length 600 --sample-freq 100";
    assert_int_equal(tfs_run(GEN " %s --seed 1 --out '%s' 2> /dev/null", small, a), 0);
    assert_int_equal(tfs_run(GEN " %s --seed 2 --out '%s' 2> /dev/null", small, b), 0);
    struct sim_manifest m;
    int present;
    char serr[SIM_ERRLEN];
    assert_int_equal(sim_manifest_read(a, &m, &present, serr), SIM_OK);
    assert_true(present);
    struct cn_data d;
    assert_int_equal(cn_data_load(a, 7, 0, &d, err), CN_OK); /* each run alone loads */
    cn_data_free(&d);
    const char *swaps[] = {"loc_test", "charges_test", "vel_train", "edges_valid"};
    for (size_t k = 0; k < sizeof swaps / sizeof swaps[0]; k++) {
        tfs_remove_tree(mix);
        assert_int_equal(tfs_run("cp -r '%s' '%s'", a, mix), 0);
        char from[600], to[600];
        snprintf(from, sizeof from, "%s/%s_charged5_initvel1small.npy", b, swaps[k]);
        snprintf(to, sizeof to, "%s/%s_charged5_initvel1small.npy", mix, swaps[k]);
        copy_file(from, to);
        /* the library, loading only the test split */
        assert_int_equal(cn_data_load(mix, CN_SPLIT_TEST, 0, &d, err), CN_EDATA);
        if (!strstr(err, to) || !strstr(err, "does not match dataset.json") ||
            !strstr(err, m.run_id))
            fail_msg("%s: \"%s\"", swaps[k], err);
        /* the programs */
        assert_int_equal(tfs_run(EVAL " --model " STEP_CHARGED " --data '%s' 2> '%s/stderr.txt'", mix,
                             g_dir), 1);
        last_stderr(msg, sizeof msg);
        assert_one_line(msg);
        if (!strstr(msg, to) || !strstr(msg, "mixes files of different runs"))
            fail_msg("nbody-eval on %s: \"%s\"", swaps[k], msg);
        assert_int_equal(tfs_run(TRAIN " --data '%s' --out '%s/m.ckpt' --task step --epochs 1 "
                             "--hidden 8 --layers 1 --batch 8 2> '%s/stderr.txt' > /dev/null",
                             mix, g_dir, g_dir), 1);
        last_stderr(msg, sizeof msg);
        assert_one_line(msg);
        assert_non_null(strstr(msg, to));
        char mck[400];
        snprintf(mck, sizeof mck, "%s/m.ckpt", g_dir);
        assert_false(tfs_exists(mck));
    }
    /* a damaged sidecar is named with the place of the damage */
    tfs_remove_tree(mix);
    assert_int_equal(tfs_run("cp -r '%s' '%s'", a, mix), 0);
    char side[600];
    snprintf(side, sizeof side, "%s/dataset.json", mix);
    assert_int_equal(tfs_write_file(side, "{\"format\": \"nbody-dataset 1\", \"files\": [", 36),
                     0);
    assert_int_equal(cn_data_load(mix, CN_SPLIT_TEST, 0, &d, err), CN_EFORMAT);
    if (!strstr(err, side) || !strstr(err, "at byte"))
        fail_msg("damaged sidecar: \"%s\"", err);
    /* no sidecar: the same-shaped mix loads (nothing tells the runs apart), a split whose
     * files disagree in shape does not, even one that is not loaded */
    assert_int_equal(unlink(side), 0);
    assert_int_equal(cn_data_load(mix, CN_SPLIT_TEST, 0, &d, err), CN_OK);
    cn_data_free(&d);
    char other[400], from[600], to[600];
    snprintf(other, sizeof other, "%s/runC", g_dir);
    assert_int_equal(tfs_run(GEN " --train 41 --valid 8 --test 8 --length 600 --sample-freq 100 "
                         "--out '%s' 2> /dev/null", other), 0);
    snprintf(from, sizeof from, "%s/vel_train_charged5_initvel1small.npy", other);
    snprintf(to, sizeof to, "%s/vel_train_charged5_initvel1small.npy", mix);
    copy_file(from, to);
    assert_int_equal(cn_data_load(mix, CN_SPLIT_TEST, 0, &d, err), CN_EDATA);
    if (!strstr(err, to) || !strstr(err, "does not match loc"))
        fail_msg("no sidecar, shapes: \"%s\"", err);
}

/* ------------------------------------------------------------ training states */

/* A bad option stored in a .state is refused naming the .state and the option (or, for one
 * the record's layout depends on, the record). */
static void test_state_bad_option(void **state)
{
    (void)state;
    char dir[400], out[500], spath[600], msg[2048];
    snprintf(dir, sizeof dir, "%s/state", g_dir);
    const int counts[3] = {40, 8, 8};
    write_dataset(dir, SIM_CHARGED, 5, counts, 6);
    snprintf(out, sizeof out, "%s/m.ckpt", dir);
    snprintf(spath, sizeof spath, "%s.state", out);
    /* blob offsets (model/train.c, record_pack): int64 version, task, hidden, layers, epochs,
     * batch at 40, max_train, then the double lr at 56 */
    const struct {
        size_t off;
        uint64_t bits;
        const char *option;
    } cases[] = {
        {40, 0, "batch"},
        {40, (uint64_t)-3, "batch"},
        {32, 0, "resume record"}, /* epochs sizes the history: the record does not parse */
        {56, 0xbff0000000000000ull /* -1.0 */, "lr"},
        {56, 0x7ff8000000000000ull /* NaN */, "lr"},
        {16, 7, "hidden"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(tfs_run(TRAIN " --data '%s' --out '%s' --task step --epochs 3 --stop-after 1 "
                             "--hidden 8 --layers 1 --batch 8 --threads 1 --quiet > /dev/null "
                             "2>&1", dir, out), 0);
        size_t len;
        unsigned char *b = tfs_slurp(spath, &len);
        assert_non_null(b);
        long np = 0;
        for (int j = 0; j < 8; j++)
            np |= (long)b[OFF_N_PARAMS + j] << (8 * j);
        free(b);
        unsigned char v[8];
        le64(v, cases[k].bits);
        patch_ckpt(spath, OFF_ARRAYS + 12 * (size_t)np + cases[k].off, v, 8);
        assert_int_not_equal(tfs_run(TRAIN " --data '%s' --out '%s' --resume --quiet 2> "
                                 "'%s/stderr.txt' > /dev/null", dir, out, g_dir), 0);
        last_stderr(msg, sizeof msg);
        assert_one_line(msg);
        if (!strstr(msg, spath) || !strstr(msg, cases[k].option))
            fail_msg("case %zu: nbody-train --resume said \"%s\"", k, msg);
        assert_int_equal(tfs_run("rm -f '%s'*", out), 0);
    }
}

/* ------------------------------------------------------------ settings */

/* A step model of one setting on another setting's data: refused with one wording, with and
 * without --rollout. */
static void test_eval_other_setting(void **state)
{
    (void)state;
    char dir[400], a[1024], b[1024];
    snprintf(dir, sizeof dir, "%s/setting", g_dir);
    const int counts[3] = {4, 4, 6};
    write_dataset(dir, SIM_CHARGED, 5, counts, 6);
    assert_int_equal(tfs_run("cd '%s' && " EVAL " --model " STEP_DYNAMIC " --data '%s' 2> "
                         "'%s/stderr.txt'", dir, dir, g_dir), 1);
    last_stderr(a, sizeof a);
    assert_int_equal(tfs_run("cd '%s' && " EVAL " --model " STEP_DYNAMIC " --data '%s' --rollout 2 "
                         "--plot '%s/r' 2> '%s/stderr.txt'", dir, dir, dir, g_dir), 1);
    last_stderr(b, sizeof b);
    assert_one_line(a);
    assert_string_equal(a, b);
    if (!strstr(a, "trained on the dynamic setting") || !strstr(a, "charged data"))
        fail_msg("nbody-eval said \"%s\"", a);
    /* the matching pair is evaluated */
    assert_int_equal(tfs_run(EVAL " --model " STEP_CHARGED " --data '%s' > /dev/null", dir), 0);
}

/* In the child of tfs_on_small_disk: nbody-eval --rollout writing into the full disk. */
struct full_disk_case {
    const char *data;
    char msg[2048];
};
static int rollout_on_full_disk(const char *dir, void *arg)
{
    struct full_disk_case *c = arg;
    char csv[600], png[600];
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    snprintf(png, sizeof png, "%s/r.png", dir);
    int rc = tfs_run(EVAL " --model " STEP_CHARGED " --data '%s' --rollout 3 --plot '%s/r' > "
                 "/dev/null 2> '%s/stderr.txt'", c->data, dir, g_dir);
    last_stderr(c->msg, sizeof c->msg);
    if (rc != 1 || !strstr(c->msg, png) || !strstr(c->msg, strerror(ENOSPC)) ||
        strstr(c->msg, "Write Error")) {
        fprintf(stderr, "exit %d, \"%s\"\n", rc, c->msg);
        return 1;
    }
    if (!tfs_exists(csv) || tfs_count_entries(dir) != 1) { /* the table, nothing else */
        fprintf(stderr, "%d files left\n", tfs_count_entries(dir));
        return 1;
    }
    return 0;
}

/* The rollout's PNG on a full disk (a 16 KiB tmpfs: the table fits, the image does not): one
 * line naming the PNG and the reason; the complete table stays, no temporary. */
static void test_eval_full_disk(void **state)
{
    (void)state;
    char data[400], disk[400];
    snprintf(data, sizeof data, "%s/fulldata", g_dir);
    snprintf(disk, sizeof disk, "%s/disk", g_dir);
    const int counts[3] = {4, 4, 6};
    write_dataset(data, SIM_CHARGED, 5, counts, 6);
    assert_int_equal(mkdir(disk, 0755), 0);
    struct full_disk_case c = {data, ""};
    int rc = tfs_on_small_disk(disk, 16, rollout_on_full_disk, &c);
    if (rc == TFS_NO_MOUNT)
        skip();
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------ signals */

/* Longest wait for a training run to reach an epoch. */
#define EPOCH_TIMEOUT_S 300.0
#define POLL_NS 5000000L

/* Seconds since t0. */
static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* 1 if dir holds a name containing ".tmp." (a temporary of sim_atomic). */
static int has_temporary(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

/* Run nbody-train with the arguments of test_train_signals and out, logging into log. */
static pid_t spawn_train(const char *data, const char *out, const char *log, int resume)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        if (resume)
            execl(TRAIN, TRAIN, "--data", data, "--out", out, "--resume", "--quiet", (char *)NULL);
        else
            execl(TRAIN, TRAIN, "--data", data, "--out", out, "--task", "step", "--epochs", "24",
                  "--val-every", "1", "--hidden", "8", "--layers", "1", "--batch", "8",
                  "--threads", "2", "--pairs-per-epoch", "400", "--eval-pairs", "16",
                  (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* SIGINT, SIGTERM and SIGHUP sent to nbody-train on 2 threads at points spread over its
 * epochs: it stops with status 130 and the resume hint, leaves no temporary, and --resume
 * then finishes the run with the same checkpoint bytes as a run never interrupted. */
static void test_train_signals(void **state)
{
    (void)state;
    char dir[400], out[500], spath[600], ref[500], log[600];
    snprintf(dir, sizeof dir, "%s/signals", g_dir);
    const int counts[3] = {200, 8, 8};
    write_dataset(dir, SIM_CHARGED, 5, counts, 6);
    snprintf(out, sizeof out, "%s/m.ckpt", dir);
    snprintf(spath, sizeof spath, "%s.state", out);
    snprintf(ref, sizeof ref, "%s/ref.ckpt", dir);
    snprintf(log, sizeof log, "%s/train.log", dir);
    int status;
    pid_t pid = spawn_train(dir, ref, log, 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t rlen = 0;
    unsigned char *want = tfs_slurp(ref, &rlen);
    assert_non_null(want);
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    /* delays after the first state appears, in ms: at once, and later in the run */
    const int delay_ms[9] = {0, 3, 17, 40, 90, 150, 1, 25, 60};
    int interrupted = 0;
    for (int k = 0; k < 9; k++) {
        const int sig = sigs[k % 3];
        assert_int_equal(tfs_run("rm -f '%s'*", out), 0);
        pid = spawn_train(dir, out, log, 0);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!tfs_exists(spath) && since(&t0) < EPOCH_TIMEOUT_S)
            nanosleep(&(struct timespec){0, POLL_NS}, NULL);
        assert_true(tfs_exists(spath));
        nanosleep(&(struct timespec){delay_ms[k] / 1000, (delay_ms[k] % 1000) * 1000000L}, NULL);
        kill(pid, sig);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 130 && WEXITSTATUS(status) != 0))
            fail_msg("signal %d after %d ms: status 0x%x", sig, delay_ms[k], status);
        assert_false(has_temporary(dir));
        if (WEXITSTATUS(status) == 130) {
            interrupted++;
            assert_int_equal(tfs_run("grep -q 'continue with --resume' '%s'", log), 0);
            pid = spawn_train(dir, out, log, 1);
            assert_int_equal(waitpid(pid, &status, 0), pid);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        size_t len = 0;
        unsigned char *got = tfs_slurp(out, &len);
        assert_non_null(got);
        if (len != rlen || memcmp(got, want, len) != 0)
            fail_msg("signal %d after %d ms: the resumed run's checkpoint differs", sig,
                     delay_ms[k]);
        free(got);
    }
    free(want);
    print_message("nbody-train: %d of 9 runs interrupted, each resumed to identical bytes\n",
                  interrupted);
    assert_true(interrupted >= 3); /* the test interrupts, mostly (9 of 9 here) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_defined),
        cmocka_unit_test(test_ckpt_header_ranges),
        cmocka_unit_test(test_ckpt_bad_values),
        cmocka_unit_test(test_ckpt_not_a_file),
        cmocka_unit_test(test_data_bad_values),
        cmocka_unit_test(test_mixed_folder),
        cmocka_unit_test(test_state_bad_option),
        cmocka_unit_test(test_eval_other_setting),
        cmocka_unit_test(test_eval_full_disk),
        cmocka_unit_test(test_train_signals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
