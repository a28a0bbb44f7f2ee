/* test_npz.c: PyTorch state_dict archives (.npz) both ways, the bounds of the zip reader on
 * malformed, truncated and bomb-sized archives, checkpoints' training-data record, and the
 * programs nbody-export / nbody-import / nbody-eval's training-data note. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clofnet.h"
#include "npz.h"
#include "sim.h"
#include "tfs.h"

#define NPZ_DIR TEST_DATA_DIR "/npz"
#define EXPORT BIN_DIR "/model/nbody-export"
#define IMPORT BIN_DIR "/model/nbody-import"
#define EVAL BIN_DIR "/model/nbody-eval"
#define TRAIN BIN_DIR "/model/nbody-train"
#define GEN BIN_DIR "/sim/nbody-gen"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_npz.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name into buf. */
static const char *tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
    return buf;
}

/* A whole file into memory (size in *len). */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A small config of an architecture (hidden 8, `layers` layers), parameters from cn_param_init. */
static void state_of(struct cn_state *s, int arch, int layers, uint32_t seed)
{
    struct cn_config c;
    cn_config_default(&c, CN_TASK_POSITION);
    c.arch = arch;
    c.hidden = 8;
    c.layers = layers;
    char err[CN_ERRLEN];
    assert_int_equal(cn_state_init(s, &c, err), CN_OK);
    cn_param_init(&c, s->param, seed);
}

static void small_state(struct cn_state *s, int arch, uint32_t seed) { state_of(s, arch, 3, seed); }

/* Export then import: the same config and the same parameter bits, stored or deflated; and
 * exporting the imported state writes the same bytes. */
static void test_round_trip_bitwise(void **state)
{
    (void)state;
    for (int arch = 0; arch < CN_ARCH_COUNT; arch++)
        for (int compress = 0; compress < 2; compress++) {
            struct cn_state s, r;
            small_state(&s, arch, 11u + (uint32_t)arch);
            char p1[512], p2[512], err[CN_ERRLEN];
            tpath(p1, sizeof p1, "a.npz");
            tpath(p2, sizeof p2, "b.npz");
            assert_int_equal(cn_npz_export(p1, &s, compress, err), CN_OK);
            int st = cn_npz_import(p1, arch, &r, err);
            if (st)
                print_message("%s\n", err);
            assert_int_equal(st, CN_OK);
            assert_int_equal(r.cfg.hidden, s.cfg.hidden);
            assert_int_equal(r.cfg.layers, s.cfg.layers);
            assert_int_equal(r.cfg.arch, arch);
            assert_int_equal(r.n_params, s.n_params);
            assert_memory_equal(r.param, s.param, (size_t)s.n_params * sizeof(float));
            assert_int_equal(cn_npz_export(p2, &r, compress, err), CN_OK);
            size_t l1, l2;
            unsigned char *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
            assert_int_equal(l1, l2);
            assert_memory_equal(b1, b2, l1);
            free(b1);
            free(b2);
            cn_state_free(&s);
            cn_state_free(&r);
        }
}

/* Which state_dict entry (its index in the reference's order) each of our tensors is, written
 * out here independently of model/statedict.c: the archives under tests/data/npz were saved by
 * NumPy from the real reference modules (ClofNet_vel, EGNN_vel; hidden 4, 2 layers) with
 * element i of entry t set to t * 1000 + i. */
static int torch_index(int arch, const char *ours)
{
    static const char *const clof[19] = {"edge1.w", "edge1.b", "edge2.w", "edge2.b", "edge3.w",
                                         "edge3.b", "node1.w", "node1.b", "node2.w", "node2.b",
                                         "coord1.w", "coord1.b", "coord2.w", "vel1.w", "vel1.b",
                                         "vel2.w", "vel2.b", "ln.g", "ln.b"};
    static const char *const egnn[15] = {"edge1.w", "edge1.b", "edge2.w", "edge2.b", "node1.w",
                                         "node1.b", "node2.w", "node2.b", "coord1.w", "coord1.b",
                                         "coord2.w", "vel1.w", "vel1.b", "vel2.w", "vel2.b"};
    static const char *const head[6] = {"embed.w", "embed.b", "fuse1.w", "fuse1.b", "fuse2.w",
                                        "fuse2.b"};
    const int nhead = arch == CN_ARCH_EGNN ? 2 : 6, per = arch == CN_ARCH_EGNN ? 15 : 19;
    for (int k = 0; k < nhead; k++)
        if (strcmp(ours, head[k]) == 0)
            return k;
    int l, at = 0;
    if (sscanf(ours, "layer%d.%n", &l, &at) == 1 && at > 0)
        for (int k = 0; k < per; k++)
            if (strcmp(ours + at, arch == CN_ARCH_EGNN ? egnn[k] : clof[k]) == 0)
                return nhead + l * per + k;
    return -1;
}

/* NumPy's own archives (np.savez: stored with zip64 extra fields; np.savez_compressed:
 * deflated) of the real modules' state_dicts import, every value where it belongs. */
static void test_numpy_archives(void **state)
{
    (void)state;
    const struct {
        const char *file;
        int arch;
    } cases[] = {{NPZ_DIR "/egnn_h4_l2.npz", CN_ARCH_EGNN},
                 {NPZ_DIR "/clofnet_h4_l2_deflated.npz", CN_ARCH_CLOFNET}};
    for (size_t c = 0; c < 2; c++) {
        struct cn_state s;
        char err[CN_ERRLEN];
        int st = cn_npz_import(cases[c].file, cases[c].arch, &s, err);
        if (st)
            print_message("%s\n", err);
        assert_int_equal(st, CN_OK);
        assert_int_equal(s.cfg.hidden, 4);
        assert_int_equal(s.cfg.layers, 2);
        struct cn_tensor t[CN_MAX_TENSORS];
        int k = cn_tensor_list(&s.cfg, t, CN_MAX_TENSORS);
        assert_int_equal(k, cases[c].arch == CN_ARCH_EGNN ? 2 + 2 * 15 : 6 + 2 * 19);
        for (int i = 0; i < k; i++) {
            int ti = torch_index(cases[c].arch, t[i].name);
            assert_true(ti >= 0);
            for (long j = 0; j < (long)t[i].rows * t[i].cols; j++)
                assert_true(s.param[t[i].offset + j] == (float)(ti * 1000 + j));
        }
        cn_state_free(&s);
    }
}

/* Import must fail with status want and a message containing what. */
static void expect_import_fails(const char *path, int arch, int want, const char *what)
{
    struct cn_state s;
    char err[CN_ERRLEN] = "";
    int st = cn_npz_import(path, arch, &s, err);
    if (st != want || !strstr(err, what))
        print_message("status %d, message: %s (wanted %d, '%s')\n", st, err, want, what);
    assert_int_equal(st, want);
    assert_non_null(strstr(err, what));
    assert_null(s.param);
}

/* The arrays of a small EGNN as cn_npz_write takes them, from an export read back. */
struct arrays {
    struct cn_npz z;
    struct cn_npz_array a[CN_MAX_TENSORS + 1];
    float *data[CN_MAX_TENSORS + 1];
    int count;
};

static void arrays_of(struct arrays *A, int arch)
{
    struct cn_state s;
    small_state(&s, arch, 5);
    char p[512], err[CN_ERRLEN];
    tpath(p, sizeof p, "base.npz");
    assert_int_equal(cn_npz_export(p, &s, 0, err), CN_OK);
    cn_state_free(&s);
    assert_int_equal(cn_npz_read(p, &A->z, err), CN_OK);
    A->count = A->z.count;
    for (int k = 0; k < A->count; k++) {
        const struct sim_npy *y = &A->z.entry[k].arr;
        A->data[k] = malloc((y->count + 1) * sizeof(float));
        for (size_t i = 0; i < y->count; i++)
            A->data[k][i] = (float)y->data[i];
        memset(&A->a[k], 0, sizeof A->a[k]);
        A->a[k].name = A->z.entry[k].name;
        A->a[k].ndim = y->ndim;
        memcpy(A->a[k].shape, y->shape, sizeof y->shape);
        A->a[k].data = A->data[k];
    }
}

static void arrays_free(struct arrays *A)
{
    for (int k = 0; k < A->count; k++)
        free(A->data[k]);
    cn_npz_free(&A->z);
}

/* Missing, unexpected, misshapen, float64, int64 and non-finite arrays, the wrong --arch. */
static void test_bad_contents(void **state)
{
    (void)state;
    struct arrays A;
    arrays_of(&A, CN_ARCH_EGNN);
    char p[512], err[CN_ERRLEN];
    tpath(p, sizeof p, "bad.npz");
    /* missing: every array but one (the last, then one in the middle) */
    assert_int_equal(cn_npz_write(p, A.a, A.count - 1, 0, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EFORMAT, "missing array 'gcl_2.coord_mlp_vel.2.bias'");
    struct cn_npz_array b[CN_MAX_TENSORS + 1];
    memcpy(b, A.a, sizeof(A.a[0]) * (size_t)A.count);
    memmove(b + 5, b + 6, sizeof b[0] * (size_t)(A.count - 6));
    assert_int_equal(cn_npz_write(p, b, A.count - 1, 1, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EFORMAT, "missing array 'gcl_0.edge_mlp.2.bias'");
    /* unexpected key (strict=True refuses it too) */
    memcpy(b, A.a, sizeof(A.a[0]) * (size_t)A.count);
    b[A.count] = A.a[0];
    b[A.count].name = "gcl_0.coords_range";
    assert_int_equal(cn_npz_write(p, b, A.count + 1, 0, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EFORMAT, "unexpected array 'gcl_0.coords_range'");
    /* wrong shape: a weight transposed; a bias 2-D as our checkpoints hold it */
    memcpy(b, A.a, sizeof(A.a[0]) * (size_t)A.count);
    b[2].shape[0] = A.a[2].shape[1];
    b[2].shape[1] = A.a[2].shape[0];
    assert_int_equal(cn_npz_write(p, b, A.count, 0, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EFORMAT, "'gcl_0.edge_mlp.0.weight' has shape (19, 8), expected (8, 19)");
    memcpy(b, A.a, sizeof(A.a[0]) * (size_t)A.count);
    b[3].ndim = 2;
    b[3].shape[1] = 1;
    assert_int_equal(cn_npz_write(p, b, A.count, 0, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EFORMAT, "'gcl_0.edge_mlp.0.bias' has shape (8, 1), expected (8,)");
    /* non-finite */
    A.data[4][3] = NAN;
    assert_int_equal(cn_npz_write(p, A.a, A.count, 0, err), CN_OK);
    expect_import_fails(p, CN_ARCH_EGNN, CN_EDATA, "'gcl_0.edge_mlp.2.weight' holds nan at index 3");
    /* the other architecture's archive */
    expect_import_fails(NPZ_DIR "/egnn_h4_l2.npz", CN_ARCH_CLOFNET, CN_EFORMAT,
                        "this is an EGNN_vel state_dict (use --arch egnn)");
    expect_import_fails(NPZ_DIR "/clofnet_h4_l2_deflated.npz", CN_ARCH_EGNN, CN_EFORMAT,
                        "this is a ClofNet_vel state_dict (use --arch clofnet)");
    /* dtypes (NumPy's archives): float64, and an int64 entry */
    expect_import_fails(NPZ_DIR "/egnn_h4_l2_float64.npz", CN_ARCH_EGNN, CN_EFORMAT,
                        "is float64, expected float32");
    expect_import_fails(NPZ_DIR "/egnn_h4_l2_int64.npz", CN_ARCH_EGNN, CN_EFORMAT,
                        "array 'gcl_1.node_mlp.2.bias'");
    expect_import_fails(NPZ_DIR "/no-such.npz", CN_ARCH_EGNN, CN_EIO, "cannot open");
    expect_import_fails(tmpdir, CN_ARCH_EGNN, CN_EIO, "is a directory");
    arrays_free(&A);
}

/* Offsets in a stored archive written by cn_npz_write: the end record, first central entry. */
static size_t eocd_of(const unsigned char *b, size_t len) { (void)b; return len - 22; }
static uint32_t u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* Every truncation of an archive is refused with a message (never a crash or a success). */
static void test_truncated(void **state)
{
    (void)state;
    for (int compress = 0; compress < 2; compress++) {
        struct cn_state e1;
        state_of(&e1, CN_ARCH_EGNN, 1, 9); /* one layer: a small file, cut at every length */
        char p[512], q[512], err[CN_ERRLEN];
        tpath(p, sizeof p, "whole.npz");
        tpath(q, sizeof q, "cut.npz");
        assert_int_equal(cn_npz_export(p, &e1, compress, err), CN_OK);
        size_t len;
        unsigned char *b = slurp(p, &len);
        for (size_t cut = 0; cut < len; cut++) {
            spit(q, b, cut);
            struct cn_state r;
            err[0] = '\0';
            int st = cn_npz_import(q, CN_ARCH_EGNN, &r, err);
            if (st != CN_EFORMAT)
                print_message("cut at %zu of %zu: status %d: %s\n", cut, len, st, err);
            assert_int_equal(st, CN_EFORMAT);
            assert_true(strlen(err) > 10);
        }
        free(b);
        cn_state_free(&e1);
    }
}

/* Headers that claim too much, corrupt data, other methods: refused before any large
 * allocation, each with its message. */
static void test_bomb_and_corrupt(void **state)
{
    (void)state;
    struct cn_state s;
    small_state(&s, CN_ARCH_EGNN, 3);
    char p[512], q[512], err[CN_ERRLEN];
    tpath(p, sizeof p, "stored.npz");
    tpath(q, sizeof q, "patched.npz");
    assert_int_equal(cn_npz_export(p, &s, 0, err), CN_OK);
    size_t len;
    unsigned char *b = slurp(p, &len), *c = malloc(len);
    const size_t eo = eocd_of(b, len), cd = u32(b + eo + 16);
    assert_int_equal(u32(b + eo), 0x06054b50u);
    assert_int_equal(u32(b + cd), 0x02014b50u);
    const uint32_t usize = u32(b + cd + 24);
    /* 1. the first entry claims 4 GiB - 16 uncompressed (stored: and as many compressed) */
    memcpy(c, b, len);
    put32(c + cd + 20, 0xFFFFFFF0u);
    put32(c + cd + 24, 0xFFFFFFF0u);
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "claims 4294967280 bytes uncompressed");
    /* 2. the end record claims 65534 entries in a directory that holds a few */
    memcpy(c, b, len);
    c[eo + 8] = c[eo + 10] = 0xFE;
    c[eo + 9] = c[eo + 11] = 0xFF;
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "65534 entries in a central directory");
    /* 3. the directory lies beyond the file */
    memcpy(c, b, len);
    put32(c + eo + 16, (uint32_t)len);
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "lies outside the file");
    /* 4. a flipped data byte */
    memcpy(c, b, len);
    c[30 + (b[26] | (size_t)b[27] << 8) + 100] ^= 1; /* inside the first entry's .npy image */
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "CRC-32 mismatch");
    /* 5. bzip2 (method 12) */
    memcpy(c, b, len);
    c[cd + 10] = 12;
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "compression method 12");
    /* 6. the second entry's local header offset pointing into the first entry */
    memcpy(c, b, len);
    size_t cd2 = cd + 46 + (c[cd + 28] | (size_t)c[cd + 29] << 8);
    put32(c + cd2 + 42, 10);
    spit(q, c, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "no local header at offset 10");
    /* 7. not a zip at all */
    spit(q, "\x93NUMPY\x01\x00", 8);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "not a .npz archive");
    free(b);
    free(c);
    /* 8. a deflated entry that inflates past what its headers declare (a zip bomb's shape) */
    tpath(p, sizeof p, "deflated.npz");
    assert_int_equal(cn_npz_export(p, &s, 1, err), CN_OK);
    b = slurp(p, &len);
    size_t cdd = u32(b + len - 22 + 16);
    put32(b + cdd + 24, usize / 2);
    spit(q, b, len);
    expect_import_fails(q, CN_ARCH_EGNN, CN_EFORMAT, "inflates to more than");
    free(b);
    cn_state_free(&s);
}

/* Checkpoints record the training split (version 2); a version 1 file (the shipped models)
 * still loads, without a record. */
static void test_ckpt_data_record(void **state)
{
    (void)state;
    struct cn_state s, r;
    small_state(&s, CN_ARCH_CLOFNET, 4);
    struct cn_meta m = {.sim_kind = SIM_CHARGED, .n_bodies = 5, .horizon_steps = 1000,
                        .has_data = 1, .data_count = 3000};
    for (int k = 0; k < 32; k++)
        m.data_sha256[k] = (unsigned char)(7 * k + 1);
    char p[512], err[CN_ERRLEN];
    tpath(p, sizeof p, "rec.ckpt");
    assert_int_equal(cn_ckpt_save(p, &s, &m, 0, NULL, 0, err), CN_OK);
    struct cn_meta g;
    memset(&g, 0xAB, sizeof g);
    assert_int_equal(cn_ckpt_load(p, NULL, &r, &g, NULL, NULL, NULL, err), CN_OK);
    assert_int_equal(g.has_data, 1);
    assert_int_equal(g.data_count, 3000);
    assert_memory_equal(g.data_sha256, m.data_sha256, 32);
    assert_memory_equal(r.param, s.param, (size_t)s.n_params * sizeof(float));
    cn_state_free(&r);
    struct cn_state a;
    memset(&g, 0xAB, sizeof g);
    assert_int_equal(cn_ckpt_load(ASSETS_DIR "/models/clofnet-es5.ckpt", NULL, &a, &g, NULL, NULL,
                                  NULL, err), CN_OK);
    assert_int_equal(g.has_data, 0);
    assert_int_equal(g.sim_kind, SIM_CHARGED);
    assert_int_equal(g.horizon_steps, 1000);
    cn_state_free(&a);
    cn_state_free(&s);
}

/* The programs: --help, bad flags, a step model refused, --compress, --sim and --bodies. */
static void test_programs(void **state)
{
    (void)state;
    char out[512], ck[512], lg[512];
    tpath(out, sizeof out, "p.npz");
    tpath(ck, sizeof ck, "p.ckpt");
    tpath(lg, sizeof lg, "log");
    assert_int_equal(tfs_run("%s --help > /dev/null", EXPORT), 0);
    assert_int_equal(tfs_run("%s --help > /dev/null", IMPORT), 0);
    assert_int_equal(tfs_run("%s --bogus 2> /dev/null", EXPORT), 2);
    assert_int_equal(tfs_run("%s --model x 2> /dev/null", EXPORT), 2);
    assert_int_equal(tfs_run("%s --npz x --arch gnn --out y 2> /dev/null", IMPORT), 2);
    assert_int_equal(tfs_run("%s --npz x --arch egnn --out y --sim wind 2> /dev/null", IMPORT), 2);
    assert_int_equal(tfs_run("%s --npz x --arch egnn --out y --bodies 1 2> /dev/null", IMPORT), 2);
    /* a learned integrator has no reference counterpart: refused, nothing written */
    assert_int_equal(tfs_run("%s --model %s/models/step-charged5.ckpt --npz %s 2> %s", EXPORT,
                         ASSETS_DIR, out, lg), 1);
    assert_int_equal(tfs_run("grep -q 'step model' %s", lg), 0);
    assert_int_equal(access(out, F_OK), -1);
    /* shipped EGNN -> deflated .npz -> checkpoint of a static 7-body model, same parameters */
    assert_int_equal(tfs_run("%s --model %s/models/egnn-es5.ckpt --npz %s --compress 2> /dev/null",
                         EXPORT, ASSETS_DIR, out), 0);
    size_t len;
    unsigned char *b = slurp(out, &len);
    assert_int_equal(b[8], 8); /* method of the first entry: deflated */
    free(b);
    assert_int_equal(tfs_run("%s --npz %s --arch egnn --out %s --sim static --bodies 7 2> /dev/null",
                         IMPORT, out, ck), 0);
    struct cn_state a, r;
    struct cn_meta m;
    char err[CN_ERRLEN];
    assert_int_equal(cn_ckpt_load(ASSETS_DIR "/models/egnn-es5.ckpt", NULL, &a, NULL, NULL, NULL,
                                  NULL, err), CN_OK);
    assert_int_equal(cn_ckpt_load(ck, NULL, &r, &m, NULL, NULL, NULL, err), CN_OK);
    assert_int_equal(m.sim_kind, SIM_STATIC);
    assert_int_equal(m.n_bodies, 7);
    assert_int_equal(m.horizon_steps, 1000);
    assert_int_equal(m.has_data, 0);
    assert_int_equal(r.cfg.arch, CN_ARCH_EGNN);
    assert_memory_equal(r.param, a.param, (size_t)a.n_params * sizeof(float));
    cn_state_free(&a);
    cn_state_free(&r);
    /* a malformed archive: one message, exit 1, no checkpoint */
    assert_int_equal(tfs_run("head -c 1000 %s > %s.cut && %s --npz %s.cut --arch egnn --out %s.x "
                         "2> %s", out, out, IMPORT, out, ck, lg), 1);
    assert_int_equal(tfs_run("test $(wc -l < %s) -eq 1 && grep -q 'not a .npz archive' %s", lg, lg), 0);
    assert_int_equal(tfs_run("test ! -e %s.x", ck), 0);
}

/* A trained model knows its training split: nbody-eval says so for that split only, also when
 * the same files are in another folder; --predictions writes [N, 3, n]. */
static void test_eval_training_data(void **state)
{
    (void)state;
    char data[512], copy[512], ck[512], js[512], pr[512];
    tpath(data, sizeof data, "ds");
    tpath(copy, sizeof copy, "copy");
    tpath(ck, sizeof ck, "m.ckpt");
    tpath(js, sizeof js, "eval.json");
    tpath(pr, sizeof pr, "pred.npy");
    assert_int_equal(tfs_run("%s --train 64 --valid 16 --test 16 --length 4200 --out %s > /dev/null "
                         "2>&1", GEN, data), 0);
    assert_int_equal(tfs_run("%s --data %s --out %s --epochs 1 --batch 32 --hidden 8 --layers 1 "
                         "--val-every 1 --threads 1 > /dev/null 2>&1", TRAIN, data, ck), 0);
    struct cn_state s;
    struct cn_meta m;
    char err[CN_ERRLEN];
    assert_int_equal(cn_ckpt_load(ck, NULL, &s, &m, NULL, NULL, NULL, err), CN_OK);
    assert_int_equal(m.has_data, 1);
    assert_int_equal(m.data_count, 64);
    cn_state_free(&s);
    assert_int_equal(tfs_run("%s --model %s --data %s --split train --json > %s 2> %s.err", EVAL, ck,
                         data, js, js), 0);
    assert_int_equal(tfs_run("grep -q '\"training_data\": true' %s", js), 0);
    assert_int_equal(tfs_run("grep -q 'is the data this model was trained on' %s.err", js), 0);
    assert_int_equal(tfs_run("%s --model %s --data %s --split test --json --predictions %s > %s "
                         "2> %s.err", EVAL, ck, data, pr, js, js), 0);
    assert_int_equal(tfs_run("grep -q '\"training_data\": false' %s", js), 0);
    assert_int_equal(tfs_run("grep -q 'trained on' %s.err", js), 1);
    struct sim_npy y;
    char serr[SIM_ERRLEN];
    assert_int_equal(sim_npy_read(pr, &y, serr), SIM_OK);
    assert_int_equal(y.ndim, 3);
    assert_int_equal(y.shape[0], 16);
    assert_int_equal(y.shape[1], 3);
    assert_int_equal(y.shape[2], 5);
    sim_npy_free(&y);
    /* the training files, renamed as another folder's test split: recognised by content */
    assert_int_equal(tfs_run("mkdir %s && for q in loc vel charges edges; do for s in train valid; "
                         "do cp %s/${q}_${s}_charged5_initvel1small.npy %s/; done; cp "
                         "%s/${q}_train_charged5_initvel1small.npy "
                         "%s/${q}_test_charged5_initvel1small.npy; done", copy, data, copy, data,
                         copy), 0);
    assert_int_equal(tfs_run("%s --model %s --data %s --split test --json > %s 2> %s.err", EVAL, ck,
                         copy, js, js), 0);
    assert_int_equal(tfs_run("grep -q '\"training_data\": true' %s", js), 0);
    /* the shipped (version 1) models know nothing of their data: null, no note */
    assert_int_equal(tfs_run("%s --model %s/models/clofnet-es5.ckpt --data %s --json > %s 2> %s.err",
                         EVAL, ASSETS_DIR, data, js, js), 0);
    assert_int_equal(tfs_run("grep -q '\"training_data\": null' %s", js), 0);
    assert_int_equal(tfs_run("%s --model %s --data %s --rollout 2 --predictions %s 2> /dev/null",
                         EVAL, ck, data, pr), 2);
}

int main(void)
{
    cn_fp_policy(); /* the programs' float mode, before any thread (see clofnet.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bitwise),
        cmocka_unit_test(test_numpy_archives),
        cmocka_unit_test(test_bad_contents),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bomb_and_corrupt),
        cmocka_unit_test(test_ckpt_data_record),
        cmocka_unit_test(test_programs),
        cmocka_unit_test(test_eval_training_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
