/* test_rollout.c: free rollouts of the shipped learned integrators: shapes, determinism,
 * argument checks, and that each beats the constant-velocity baseline at horizon 10. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
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
        for (int f = 0; f < frames; f++)
            for (int i = 0; i < n; i++)
                for (int c = 0; c < 3; c++) {
                    size_t src = ((size_t)t * frames + f) * 3 * n + (size_t)c * n + i;
                    size_t dst = (((size_t)t * frames + f) * n + i) * 3 + c;
                    sp->loc[dst] = (float)loc[src];
                    sp->vel[dst] = (float)vel[src];
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
    if (cn_rollout_run(t, &s, &meta, &sp, 0, HORIZON, 0, &a, err) != CN_OK)
        fail_msg("%s: %s", file, err);
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 0, HORIZON, 0, &b, err), CN_OK);
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
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 40, 10, 0, &b, err), CN_EARG);
    assert_non_null(strstr(err, "frames"));
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, -1, 5, 0, &b, err), CN_EARG);
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
    assert_int_equal(cn_rollout_run(t, &s, &meta, &sp, 0, 5, 0, &r, err), CN_EARG);
    assert_non_null(strstr(err, "step model"));
    cn_trainer_free(t);
    cn_state_free(&s);
    free_split(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charged),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_position_model_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
