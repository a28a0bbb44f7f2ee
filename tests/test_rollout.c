/* test_rollout.c: free rollouts of the shipped learned integrators: shapes, determinism,
 * argument checks, that each beats the constant-velocity baseline at horizon 10, and nbody-eval
 * --rollout end to end (including a one-step rollout and a plot that cannot be written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "clofnet.h"
#include "sim.h"

#define MODELS_DIR ASSETS_DIR "/models"
/* Test systems: fresh trajectories from a global seed no shipped model was trained on. */
#define TEST_TRAJ 64
#define TEST_SEED 20261127u
#define HORIZON 10

/* A split of TEST_TRAJ fresh 5-body trajectories of the given setting, node-major float. */
static void make_split(int kind, struct cn_split *sp)
{
    const int n = 5, frames = sim_frame_count(5000, 100);
    uint32_t seeds[TEST_TRAJ];
    assert_int_equal(sim_seeds(TEST_SEED, TEST_TRAJ, 0, seeds), SIM_OK);
    size_t per = (size_t)frames * 3 * n;
    double *loc = malloc(sizeof(double) * TEST_TRAJ * per);
    double *vel = malloc(sizeof(double) * TEST_TRAJ * per);
    double *ch = malloc(sizeof(double) * TEST_TRAJ * n);
    assert_non_null(loc);
    assert_non_null(vel);
    assert_non_null(ch);
    assert_int_equal(sim_generate(kind, n, 5000, 100, TEST_TRAJ, seeds, 1, loc, vel, NULL, ch,
                                  NULL, NULL), SIM_OK);
    sp->count = TEST_TRAJ;
    sp->frames = frames;
    sp->n = n;
    sp->loc = malloc(sizeof(float) * TEST_TRAJ * per);
    sp->vel = malloc(sizeof(float) * TEST_TRAJ * per);
    sp->q = malloc(sizeof(float) * TEST_TRAJ * n);
    for (int t = 0; t < TEST_TRAJ; t++) {
        for (int i = 0; i < n; i++)
            sp->q[t * n + i] = (float)ch[t * n + i];
        for (int f = 0; f < frames; f++) {
            const size_t frame = ((size_t)t * frames + f) * 3 * n;
            sim_axis_to_node(n, loc + frame, sp->loc + frame);
            sim_axis_to_node(n, vel + frame, sp->vel + frame);
        }
    }
    free(loc);
    free(vel);
    free(ch);
}

static void free_split(struct cn_split *sp)
{
    free(sp->loc);
    free(sp->vel);
    free(sp->q);
}

/* Roll out one shipped model twice and check everything the issue asks. */
static void check_model(const char *file, int kind)
{
    char path[512], err[CN_ERRLEN];
    snprintf(path, sizeof path, "%s/%s", MODELS_DIR, file);
    struct cn_state s;
    struct cn_meta meta;
    int has_opt;
    if (cn_ckpt_load(path, NULL, &s, &meta, &has_opt, NULL, NULL, err) != CN_OK)
        fail_msg("%s", err);
    assert_int_equal(s.cfg.task, CN_TASK_STEP);
    assert_int_equal(meta.sim_kind, kind);
    struct cn_split sp;
    make_split(kind, &sp);
    struct cn_trainer *t;
    assert_int_equal(cn_trainer_create(&s.cfg, 128, sp.n, 1, &t, err), CN_OK);
    struct cn_rollout a, b;
    if (cn_rollout_run(t, &s, &meta, &sp, 0, HORIZON, 0, &a, NULL, NULL, err) != CN_OK)
        fail_msg("%s: %s", file, err);
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 0, HORIZON, 0, &b, NULL, NULL, err), CN_OK);
    assert_int_equal(a.steps, HORIZON);
    assert_int_equal(a.trajectories, TEST_TRAJ);
    assert_memory_equal(a.mse_model, b.mse_model, HORIZON * sizeof(double));
    assert_memory_equal(a.mse_cv, b.mse_cv, HORIZON * sizeof(double));
    assert_memory_equal(a.drift_model, b.drift_model, HORIZON * sizeof(double));
    for (int k = 0; k < HORIZON; k++) {
        assert_true(isfinite(a.mse_model[k]) && a.mse_model[k] >= 0);
        assert_true(isfinite(a.drift_truth[k]));
    }
    /* Errors grow with the horizon for the baseline (a sanity check of the bookkeeping). */
    assert_true(a.mse_cv[HORIZON - 1] > a.mse_cv[0]);
    print_message("%s: horizon %d position MSE %.4g (constant velocity %.4g)\n", file, HORIZON,
                  a.mse_model[HORIZON - 1], a.mse_cv[HORIZON - 1]);
    assert_true(a.mse_model[HORIZON - 1] < a.mse_cv[HORIZON - 1]);
    /* Arguments: past the last frame, and a start before 0 (nothing allocated then). */
    cn_rollout_free(&b);
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 40, 10, 0, &b, NULL, NULL, err), CN_EARG);
    assert_non_null(strstr(err, "frames"));
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, -1, 5, 0, &b, NULL, NULL, err), CN_EARG);
    cn_rollout_free(&a);
    cn_rollout_free(&b);
    cn_trainer_free(t);
    cn_state_free(&s);
    free_split(&sp);
}

static void test_charged(void **state)
{
    (void)state;
    check_model("step-charged5.ckpt", SIM_CHARGED);
}

static void test_static(void **state)
{
    (void)state;
    check_model("step-static5.ckpt", SIM_STATIC);
}

static void test_dynamic(void **state)
{
    (void)state;
    check_model("step-dynamic5.ckpt", SIM_DYNAMIC);
}

/* A position model (frame 30 -> 40) cannot be rolled out. */
static void test_position_model_rejected(void **state)
{
    (void)state;
    char err[CN_ERRLEN];
    struct cn_state s;
    struct cn_meta meta;
    int has_opt;
    if (cn_ckpt_load(MODELS_DIR "/clofnet-es5.ckpt", NULL, &s, &meta, &has_opt, NULL, NULL, err))
        fail_msg("%s", err);
    struct cn_split sp;
    make_split(SIM_CHARGED, &sp);
    struct cn_trainer *t;
    assert_int_equal(cn_trainer_create(&s.cfg, 128, sp.n, 1, &t, err), CN_OK);
    struct cn_rollout r;
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 0, 5, 0, &r, NULL, NULL, err), CN_EARG);
    assert_non_null(strstr(err, "step model"));
    cn_trainer_free(t);
    cn_state_free(&s);
    free_split(&sp);
}

/* Run a shell command; its exit status, stdout into out. */
static int run(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Number of elements of the JSON array after "key": [ in s, or -1. */
static int json_array_len(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(s, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    int n = *p == ']' ? 0 : 1;
    for (; *p && *p != ']'; p++)
        n += *p == ',';
    return n;
}

/* nbody-eval --rollout end to end: JSON arrays of K values, CSV and PNG written; a
 * position model and a wrong setting are refused with one message and exit 1. */
static void test_eval_program(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_rollout.XXXXXX", cmd[2048], out[8192];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, BIN_DIR "/sim/nbody-gen --sim static --train 2 --valid 2 --test 6 "
             "--seed 5 --out %s/data 2>&1", dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, BIN_DIR "/model/nbody-eval --model " MODELS_DIR "/step-static5.ckpt "
             "--data %s/data --rollout 7 --start 3 --plot %s/r --json", dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_int_equal(json_array_len(out, "clofnet"), 7);
    assert_int_equal(json_array_len(out, "constant_velocity"), 7);
    assert_int_equal(json_array_len(out, "energy_drift_truth"), 7);
    assert_non_null(strstr(out, "\"trajectories\": 6"));
    struct stat st;
    char path[300];
    snprintf(path, sizeof path, "%s/r.csv", dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/r.png", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 1000);
    snprintf(cmd, sizeof cmd, BIN_DIR "/model/nbody-eval --model " MODELS_DIR "/clofnet-es5.ckpt "
             "--data %s/data --rollout 5 --plot %s/p 2>&1", dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "step model"));
    snprintf(cmd, sizeof cmd, BIN_DIR "/model/nbody-eval --model " MODELS_DIR "/step-dynamic5.ckpt "
             "--data %s/data --rollout 5 --plot %s/p 2>&1", dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "dynamic"));
    snprintf(path, sizeof path, "%s/p.png", dir);
    assert_int_not_equal(stat(path, &st), 0); /* nothing written on failure */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Big-endian 32-bit value. */
static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 if path is a whole PNG file: the signature, IHDR first (its size into w, h), chunks that
 * fit, and IEND as the last bytes; 0 otherwise. (test_plot decodes PNGs with libpng; this
 * test links only the model library.) */
static int png_valid(const char *path, uint32_t *w, uint32_t *h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static unsigned char buf[1 << 22];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 + 25 || memcmp(buf, sig, 8) != 0 || memcmp(buf + 12, "IHDR", 4) != 0 ||
        be32(buf + 8) != 13)
        return 0;
    *w = be32(buf + 16);
    *h = be32(buf + 20);
    size_t pos = 8;
    while (pos + 12 <= len) {
        uint32_t clen = be32(buf + pos);
        if (clen > len - pos - 12)
            return 0;
        int iend = memcmp(buf + pos + 4, "IEND", 4) == 0;
        pos += 12 + clen;
        if (iend)
            return pos == len;
    }
    return 0;
}

/* Whole text file into buf (at most len - 1 bytes); its length, or -1. */
static long slurp_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

/* nbody-eval --rollout 1 (a one-point plot): a CSV of one row and a valid PNG. When the PNG
 * cannot be written, the correct CSV stays, the message names the PNG, and the exit is 1. */
static void test_eval_rollout_one(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_rollout1.XXXXXX", cmd[2048], out[8192], path[500], csv[4096];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, BIN_DIR "/sim/nbody-gen --train 2 --valid 2 --test 4 --seed 6 "
             "--out %s/data 2>&1", dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, BIN_DIR "/model/nbody-eval --model " MODELS_DIR "/step-charged5.ckpt "
             "--data %s/data --rollout 1 --plot %s/one --json 2>&1", dir, dir);
    int st = run(cmd, out, sizeof out);
    if (st != 0)
        fail_msg("--rollout 1: exit %d: %s", st, out);
    assert_int_equal(json_array_len(out, "clofnet"), 1);
    snprintf(path, sizeof path, "%s/one.csv", dir);
    assert_true(slurp_text(path, csv, sizeof csv) > 0);
    char *row = strchr(csv, '\n');
    assert_non_null(row);
    row++;
    assert_int_equal(strncmp(row, "1,", 2), 0); /* horizon 1 */
    char *end = strchr(row, '\n');
    assert_non_null(end);
    assert_int_equal(end[1], '\0'); /* header and exactly one row */
    snprintf(path, sizeof path, "%s/one.png", dir);
    uint32_t w = 0, h = 0;
    assert_true(png_valid(path, &w, &h));
    assert_true(w > 0 && h > 0);

    /* The PNG's path is a non-empty directory: the plot fails, the table stays. */
    char blocker[400];
    snprintf(blocker, sizeof blocker, "%s/blocked.png", dir);
    assert_int_equal(mkdir(blocker, 0755), 0);
    snprintf(path, sizeof path, "%s/keep", blocker);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(cmd, sizeof cmd, BIN_DIR "/model/nbody-eval --model " MODELS_DIR "/step-charged5.ckpt "
             "--data %s/data --rollout 2 --plot %s/blocked 2>&1 >/dev/null", dir, dir);
    st = run(cmd, out, sizeof out);
    assert_int_equal(st, 1);
    if (!strstr(out, blocker))
        fail_msg("the message does not name %s: %s", blocker, out);
    snprintf(path, sizeof path, "%s/blocked.csv", dir);
    assert_true(slurp_text(path, csv, sizeof csv) > 0);
    assert_non_null(strstr(csv, "\n2,")); /* both rows */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    cn_fp_policy(); /* the programs' float mode, before any thread (see clofnet.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charged),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_position_model_rejected),
        cmocka_unit_test(test_eval_program),
        cmocka_unit_test(test_eval_rollout_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
