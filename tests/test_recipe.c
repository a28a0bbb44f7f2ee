/* test_recipe.c: the recipe options of the accuracy sweep (issue 14): the one-cycle schedule
 * against PyTorch's OneCycleLR, global-norm clipping, warm-up, and training the
 * reflection-averaged model: its gradient (the float production path, cn_trainer_grad on two
 * threads) against central differences of the averaged loss in double, its exact E(3)
 * equivariance wherever a prediction is made (cn_trainer_predict, cn_integrator_step), and the
 * nbody-train flags end to end (history columns, resume, refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clofnet.h"
#include "sim.h"
#include "tfs.h"
#include "tmodel.h"

/* The schedule is double arithmetic of a few operations: PyTorch's values (1.13, printed with
 * repr) agree to rounding; a wrong phase boundary or divisor is off by > 1e-3 relative. */
#define SCHEDULE_TOL 1e-12
/* Clipping rescales floats by one float factor: the new norm is max_norm to float rounding. */
#define CLIP_TOL 1e-6
/* Central differences of the double loss (see test_unroll.c): steps near 1e-5 balance
 * truncation and rounding for O(1) values. */
#define FD_STEP 1e-5
/* |fd - g| / (max |fd| + GRAD_FLOOR) per sampled parameter: the float path carries float
 * rounding (fast exp, float sgemm) through two networks, ~1e-6; a missing mirror half or a
 * wrong factor 1/2 moves the gradient by the mirror half's share of it, printed and required
 * to exceed MIRROR_MIN, so that the check would see it. */
#define GRAD_TOL 1e-4
#define GRAD_FLOOR 1e-3
#define MIRROR_MIN (10 * GRAD_TOL)
/* An averaged model's prediction on the mirror image, mirrored back, against its prediction:
 * float rounding of O(1) outputs, the two halves summed in the other order, ~1e-7; ClofNet
 * alone differs by ~1e-2 with random weights (checked to exceed ASYM_MIN). */
#define EQUIV_TOL 1e-5
#define ASYM_MIN (100 * EQUIV_TOL)

static struct sim_rng g_rng;

/* ------------------------------------------------------------ schedules */

/* cn_onecyclelr against torch.optim.lr_scheduler.OneCycleLR(max_lr=0.01, total_steps=230,
 * cycle_momentum=False), the lr before each of the steps below. */
static void test_onecycle_matches_pytorch(void **state)
{
    (void)state;
    const struct {
        long step;
        double lr;
    } ref[] = {{0, 0.0003999999999999993},   {1, 0.0004051217209486112},
               {33, 0.004978319398500449},   {68, 0.01},
               {69, 0.009999048141297814},   {70, 0.0099961929276067},
               {100, 0.009056527365173699},  {150, 0.004853693996613918},
               {228, 9.918587021865976e-07}, {229, 4e-08}};
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        const double lr = cn_onecyclelr(0.01, ref[k].step, 230);
        assert_true(fabs(lr - ref[k].lr) <= SCHEDULE_TOL * ref[k].lr);
    }
    /* up to the peak, then down, never outside [lr / 25 / 1e4, lr] */
    double prev = 0;
    for (long i = 0; i < 230; i++) {
        const double lr = cn_onecyclelr(0.01, i, 230);
        assert_true(lr >= 4e-8 * (1 - SCHEDULE_TOL) && lr <= 0.01 * (1 + SCHEDULE_TOL));
        if (i <= 68)
            assert_true(lr > prev);
        else
            assert_true(lr < prev);
        prev = lr;
    }
}

/* Clipping: above the bound the norm becomes the bound and the direction is kept; at or below
 * it, and with the bound 0 (off), nothing changes. */
static void test_clip(void **state)
{
    (void)state;
    sim_rng_seed(&g_rng, 5);
    const long n = 1000;
    float *g = malloc(n * sizeof *g), *keep = malloc(n * sizeof *keep);
    assert_true(g && keep);
    double s = 0;
    for (long k = 0; k < n; k++) {
        g[k] = (float)sim_rng_randn(&g_rng);
        s += (double)g[k] * g[k];
    }
    memcpy(keep, g, n * sizeof *g);
    const double norm = sqrt(s);
    assert_true(fabs(cn_clip_grad(g, n, 0) - norm) <= CLIP_TOL * norm);
    assert_memory_equal(g, keep, n * sizeof *g);
    assert_true(fabs(cn_clip_grad(g, n, 2 * norm) - norm) <= CLIP_TOL * norm);
    assert_memory_equal(g, keep, n * sizeof *g);
    assert_true(fabs(cn_clip_grad(g, n, 3.0) - norm) <= CLIP_TOL * norm);
    double s2 = 0;
    for (long k = 0; k < n; k++)
        s2 += (double)g[k] * g[k];
    assert_true(fabs(sqrt(s2) - 3.0) <= CLIP_TOL * 3.0);
    for (long k = 0; k < n; k++) /* the same direction */
        assert_true(fabs(g[k] - keep[k] * 3.0 / norm) <= CLIP_TOL * fabs(keep[k]) + 1e-12);
    free(g);
    free(keep);
}

/* ------------------------------------------------- reflection averaging */

/* A small reflection-averaged config of a task (H 8, 2 layers). */
static struct cn_config small_avg(int task)
{
    struct cn_config c;
    cn_config_default(&c, task);
    c.hidden = 8;
    c.layers = 2;
    c.reflect_avg = 1;
    return c;
}

/* Random parameters off their initial values, so every term matters, and far enough that
 * ClofNet's mirror asymmetry (small at initialisation) shows in the gradient. */
#define PERTURB 0.3
static float *rand_params(const struct cn_config *c, uint32_t seed)
{
    const long P = cn_param_count(c);
    float *p = malloc((size_t)P * sizeof *p);
    assert_non_null(p);
    cn_param_init(c, p, seed);
    for (long k = 0; k < P; k++)
        p[k] += (float)(PERTURB * sim_rng_randn(&g_rng));
    return p;
}

struct batch {
    int G, n;
    float *x, *v, *q, *xt, *vt;
};
static void make_batch(struct batch *b, int G, int n)
{
    const size_t nb = (size_t)G * n * 3;
    b->G = G, b->n = n;
    b->x = malloc(nb * sizeof(float));
    b->v = malloc(nb * sizeof(float));
    b->q = malloc((size_t)G * n * sizeof(float));
    b->xt = malloc(nb * sizeof(float));
    b->vt = malloc(nb * sizeof(float));
    assert_true(b->x && b->v && b->q && b->xt && b->vt);
    for (size_t k = 0; k < nb; k++) {
        b->x[k] = (float)sim_rng_randn(&g_rng);
        b->v[k] = (float)(0.5 * sim_rng_randn(&g_rng));
        b->xt[k] = (float)(b->x[k] + 0.1 * b->v[k] + 0.05 * sim_rng_randn(&g_rng));
        b->vt[k] = (float)(b->v[k] + 0.05 * sim_rng_randn(&g_rng));
    }
    for (int k = 0; k < G * n; k++)
        b->q[k] = sim_rng_random_sample(&g_rng) < 0.5 ? -1.0f : 1.0f;
}
static void free_batch(struct batch *b)
{
    free(b->x); free(b->v); free(b->q); free(b->xt); free(b->vt);
}

/* The averaged model's loss in double: outputs (f(x) + M f(M x)) / 2, M the mirror x -> -x,
 * the mean squared error of positions (and velocities, STEP) as cn_trainer_grad's. */
static double avg_loss_d(struct cn_ws *ws, const struct cn_config *c, const double *p,
                         const struct batch *b)
{
    const int step = c->task == CN_TASK_STEP;
    const size_t nb = (size_t)b->G * b->n * 3;
    double *buf = malloc(8 * nb * sizeof(double)), *q = malloc((size_t)b->G * b->n * sizeof *q);
    assert_true(buf && q);
    double *x = buf, *v = x + nb, *mx = v + nb, *mv = mx + nb;
    double *xo = mv + nb, *vo = xo + nb, *xm = vo + nb, *vm = xm + nb;
    for (size_t k = 0; k < nb; k++) {
        const double s = k % 3 == 0 ? -1.0 : 1.0;
        x[k] = b->x[k];
        v[k] = b->v[k];
        mx[k] = s * x[k];
        mv[k] = s * v[k];
    }
    for (int k = 0; k < b->G * b->n; k++)
        q[k] = b->q[k];
    assert_int_equal(cn_forward_d(ws, p, b->G, x, v, q, NULL, xo, step ? vo : NULL), CN_OK);
    assert_int_equal(cn_forward_d(ws, p, b->G, mx, mv, q, NULL, xm, step ? vm : NULL), CN_OK);
    double loss = 0;
    for (size_t k = 0; k < nb; k++) {
        const double s = k % 3 == 0 ? -1.0 : 1.0;
        const double dx = 0.5 * (xo[k] + s * xm[k]) - b->xt[k];
        loss += dx * dx;
        if (step) {
            const double dv = 0.5 * (vo[k] + s * vm[k]) - b->vt[k];
            loss += dv * dv;
        }
    }
    free(buf);
    free(q);
    return loss / (double)nb;
}

/* The float averaged gradient of a task against central differences of avg_loss_d on three
 * parameters of every tensor; and the share of it that the mirror half makes (the gradient of
 * the same weights trained without averaging differs by at least MIRROR_MIN). */
static void avg_grad_case(int task, uint32_t seed)
{
    sim_rng_seed(&g_rng, seed);
    const int G = 20, n = 4; /* 20 graphs: two shares, the second partial */
    struct cn_config c = small_avg(task), plain = c;
    plain.reflect_avg = 0;
    char err[CN_ERRLEN];
    struct cn_state s;
    assert_int_equal(cn_state_init(&s, &c, err), CN_OK);
    float *p = rand_params(&c, seed);
    memcpy(s.param, p, (size_t)s.n_params * sizeof(float));
    struct batch b;
    make_batch(&b, G, n);
    const int step = task == CN_TASK_STEP;
    struct cn_trainer *t, *tp;
    assert_int_equal(cn_trainer_create(&c, G, n, 2, &t, err), CN_OK);
    assert_int_equal(cn_trainer_create(&plain, G, n, 2, &tp, err), CN_OK);
    double loss = 0, lp = 0;
    const long P = s.n_params;
    float *g = malloc((size_t)P * sizeof(float));
    assert_non_null(g);
    assert_int_equal(cn_trainer_grad(tp, &s, G, b.x, b.v, b.q, NULL, b.xt, step ? b.vt : NULL, &lp),
                     CN_OK);
    memcpy(g, s.grad, (size_t)P * sizeof(float));
    assert_int_equal(cn_trainer_grad(t, &s, G, b.x, b.v, b.q, NULL, b.xt, step ? b.vt : NULL, &loss),
                     CN_OK);

    struct cn_ws *ws;
    assert_int_equal(cn_ws_create(&c, G, n, CN_F64, &ws, err), CN_OK);
    double *pd = malloc((size_t)P * sizeof(double));
    assert_non_null(pd);
    for (long k = 0; k < P; k++)
        pd[k] = p[k];
    const double l0 = avg_loss_d(ws, &c, pd, &b);
    print_message("task %d: float averaged loss %.9g, double %.9g (plain %.9g)\n", task, loss, l0,
                  lp);
    assert_true(fabs(loss - l0) <= GRAD_TOL * l0);

    struct cn_tensor tl[CN_MAX_TENSORS];
    const int nt = cn_tensor_list(&c, tl, CN_MAX_TENSORS);
    double *fd = malloc((size_t)P * sizeof(double));
    long *which = malloc((size_t)P * sizeof(long)), checked = 0;
    assert_true(fd && which);
    double fdmax = 0;
    for (int i = 0; i < nt; i++) {
        const long cnt = (long)tl[i].rows * tl[i].cols;
        for (int r = 0; r < 3 && r < cnt; r++) {
            const long k = tl[i].offset + (long)(sim_rng_random_sample(&g_rng) * cnt);
            const double keep = pd[k];
            pd[k] = keep + FD_STEP;
            const double up = avg_loss_d(ws, &c, pd, &b);
            pd[k] = keep - FD_STEP;
            const double dn = avg_loss_d(ws, &c, pd, &b);
            pd[k] = keep;
            fd[checked] = (up - dn) / (2 * FD_STEP);
            which[checked++] = k;
            fdmax = fmax(fdmax, fabs(fd[checked - 1]));
        }
    }
    double worst = 0, mirror = 0, gmax = 0;
    for (long m = 0; m < checked; m++) {
        const long k = which[m];
        worst = fmax(worst, fabs(fd[m] - s.grad[k]) / (fdmax + GRAD_FLOOR));
        mirror = fmax(mirror, fabs(s.grad[k] - g[k]));
        gmax = fmax(gmax, fabs(s.grad[k]));
    }
    print_message("task %d: %ld parameters: max error %.3g; the mirror half moves the gradient "
                  "by %.3g of it\n", task, checked, worst, mirror / gmax);
    assert_true(worst < GRAD_TOL);
    assert_true(mirror / gmax > MIRROR_MIN);
    free(fd); free(which); free(pd); free(g); free(p);
    cn_ws_free(ws);
    cn_trainer_free(t);
    cn_trainer_free(tp);
    cn_state_free(&s);
    free_batch(&b);
}

static void test_avg_gradient(void **state)
{
    (void)state;
    avg_grad_case(CN_TASK_POSITION, 61);
    avg_grad_case(CN_TASK_STEP, 62);
}

/* max |M f(M x) - f(x)| / max |f(x)| of a trainer's predictions (f averaged or not). */
static double mirror_gap(struct cn_trainer *t, const float *p, const struct batch *b, int step)
{
    const size_t nb = (size_t)b->G * b->n * 3;
    float *buf = malloc(6 * nb * sizeof(float));
    assert_non_null(buf);
    float *mx = buf, *mv = mx + nb, *xo = mv + nb, *vo = xo + nb, *xm = vo + nb, *vm = xm + nb;
    for (size_t k = 0; k < nb; k++) {
        const float s = k % 3 == 0 ? -1.0f : 1.0f;
        mx[k] = s * b->x[k];
        mv[k] = s * b->v[k];
    }
    assert_int_equal(cn_trainer_predict(t, p, b->G, b->x, b->v, b->q, NULL, NULL, NULL, xo,
                                        step ? vo : NULL, NULL), CN_OK);
    assert_int_equal(cn_trainer_predict(t, p, b->G, mx, mv, b->q, NULL, NULL, NULL, xm,
                                        step ? vm : NULL, NULL), CN_OK);
    double gap = 0, big = 0;
    for (size_t k = 0; k < nb; k++) {
        const float s = k % 3 == 0 ? -1.0f : 1.0f;
        gap = fmax(gap, fabs(s * xm[k] - xo[k]));
        big = fmax(big, fabs(xo[k]));
        if (step) {
            gap = fmax(gap, fabs(s * vm[k] - vo[k]));
            big = fmax(big, fabs(vo[k]));
        }
    }
    free(buf);
    return gap / big;
}

/* The averaged model is E(3)-equivariant at prediction, on any number of threads; the plain
 * ClofNet of the same weights is not (so the check is not vacuous). */
static void test_avg_equivariance(void **state)
{
    (void)state;
    for (int task = 0; task < 2; task++) {
        sim_rng_seed(&g_rng, 70 + task);
        struct cn_config c = small_avg(task), plain = c;
        plain.reflect_avg = 0;
        float *p = rand_params(&c, 70 + task);
        struct batch b;
        make_batch(&b, 37, 5);
        char err[CN_ERRLEN];
        struct cn_trainer *t1, *t2, *tp;
        assert_int_equal(cn_trainer_create(&c, 37, 5, 1, &t1, err), CN_OK);
        assert_int_equal(cn_trainer_create(&c, 37, 5, 2, &t2, err), CN_OK);
        assert_int_equal(cn_trainer_create(&plain, 37, 5, 2, &tp, err), CN_OK);
        const double g1 = mirror_gap(t1, p, &b, task), g2 = mirror_gap(t2, p, &b, task);
        const double gp = mirror_gap(tp, p, &b, task);
        print_message("task %d: mirror gap averaged %.3g (1 thread) %.3g (2), plain %.3g\n", task,
                      g1, g2, gp);
        assert_true(g1 < EQUIV_TOL && g2 < EQUIV_TOL);
        assert_true(gp > ASYM_MIN);
        /* unrolled training is refused for an averaged config */
        struct cn_state s;
        assert_int_equal(cn_state_init(&s, &c, err), CN_OK);
        double loss;
        if (task == CN_TASK_STEP) {
            assert_int_equal(cn_trainer_set_unroll(t2, 2, err), CN_OK);
            assert_int_equal(cn_trainer_grad_unroll(t2, &s, 37, 2, 0, b.x, b.v, b.q, NULL, b.xt,
                                                    b.vt, &loss), CN_EARG);
        }
        cn_state_free(&s);
        cn_trainer_free(t1);
        cn_trainer_free(t2);
        cn_trainer_free(tp);
        free_batch(&b);
        free(p);
    }
    /* a field is not mirrored with the bodies: refused */
    struct cn_config c = small_avg(CN_TASK_STEP);
    c.has_field = 1;
    c.field[2] = 1;
    char err[CN_ERRLEN];
    assert_int_equal(cn_config_check(&c, err), CN_EARG);
    assert_non_null(strstr(err, "field"));
}

/* ---------------------------------------------------------- programs */

#define TRAIN BIN_DIR "/model/nbody-train"
#define EVAL BIN_DIR "/model/nbody-eval"
#define GEN BIN_DIR "/sim/nbody-gen"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_recipe.%ld", (long)getpid());
    mkdir(g_dir, 0755);
    if (tfs_run(GEN " --out %s/c5 --train 48 --valid 20 --test 20 --threads 2 > /dev/null 2>&1", g_dir) ||
        tfs_run(GEN " --out %s/d5 --sim dynamic --train 48 --valid 20 --test 20 --threads 2 > /dev/null "
            "2>&1", g_dir))
        return -1;
    return 0;
}
static int teardown(void **state)
{
    (void)state;
    tfs_run("rm -rf %s", g_dir);
    return 0;
}

/* 48 training trajectories in batches of 16: 3 steps an epoch; StepLR off (--lr-step 100) */
#define ARGS "--epochs 4 --batch 16 --lr 0.01 --lr-step 100 --val-every 1 --hidden 16 --layers 2 --quiet"
#define STEPS_PER_EPOCH 3

/* The lr column (5th) of a history, epoch by epoch. */
static int read_lrs(const char *csv, double *lr, int max, int *cols)
{
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    assert_non_null(fgets(line, sizeof line, f));
    *cols = 1;
    for (const char *c = line; *c; c++)
        *cols += *c == ',';
    while (n < max && fgets(line, sizeof line, f)) {
        const char *c = line;
        for (int k = 0; k < 4; k++)
            c = strchr(c, ',') + 1;
        lr[n++] = strtod(c, NULL);
    }
    fclose(f);
    return n;
}

/* --warmup and --one-cycle give the learning rates they promise (the history records each
 * epoch's last step); --clip records the fraction clipped, and a bound never reached is the
 * same training bit for bit. */
static void test_schedule_flags(void **state)
{
    (void)state;
    char csv[512], a[512], b[512];
    double lr[8];
    int cols;
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/w.ckpt " ARGS " --warmup 2 > /dev/null",
                             g_dir, g_dir), 0);
    snprintf(csv, sizeof csv, "%s/w.ckpt.csv", g_dir);
    assert_int_equal(read_lrs(csv, lr, 8, &cols), 4);
    assert_int_equal(cols, 6);
    assert_true(fabs(lr[0] - 0.005) <= SCHEDULE_TOL * 0.005); /* step 3 of 6 */
    assert_true(fabs(lr[1] - 0.01) <= SCHEDULE_TOL * 0.01);
    assert_true(fabs(lr[3] - 0.01) <= SCHEDULE_TOL * 0.01);

    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/o.ckpt " ARGS " --one-cycle > /dev/null",
                             g_dir, g_dir), 0);
    snprintf(csv, sizeof csv, "%s/o.ckpt.csv", g_dir);
    assert_int_equal(read_lrs(csv, lr, 8, &cols), 4);
    for (int e = 0; e < 4; e++) {
        const double want = cn_onecyclelr(0.01, (e + 1) * STEPS_PER_EPOCH - 1, 4 * STEPS_PER_EPOCH);
        assert_true(fabs(lr[e] - want) <= 1e-8 * want); /* the CSV prints 9 digits */
    }

    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/p.ckpt " ARGS " > /dev/null", g_dir, g_dir), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/big.ckpt " ARGS " --clip 1e30 > /dev/null",
                             g_dir, g_dir), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/tiny.ckpt " ARGS " --clip 1e-6 > /dev/null",
                             g_dir, g_dir), 0);
    assert_int_equal(tfs_run("head -n 1 %s/big.ckpt.csv | grep -q ',clipped$'", g_dir), 0);
    assert_int_equal(tfs_run("awk -F, 'NR > 1 && $7 != 0 { bad = 1 } END { exit bad }' %s/big.ckpt.csv",
                             g_dir), 0);
    assert_int_equal(tfs_run("awk -F, 'NR > 1 && $7 != 1 { bad = 1 } END { exit bad }' %s/tiny.ckpt.csv",
                             g_dir), 0);
    snprintf(a, sizeof a, "%s/p.ckpt.state", g_dir);
    snprintf(b, sizeof b, "%s/big.ckpt.state", g_dir);
    assert_true(tm_same_state(a, b));
    snprintf(b, sizeof b, "%s/tiny.ckpt.state", g_dir);
    assert_false(tm_same_state(a, b));
}

/* Every new flag, interrupted and resumed twice, is one run's bytes; the averaged model is in
 * the checkpoint, equivariant in cn_integrator_step, and nbody-eval evaluates it. */
static void test_avg_program_and_resume(void **state)
{
    (void)state;
    const char *flags = "--reflect-average --warmup 2 --clip 0.05 --ema 0.9";
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/u.ckpt " ARGS " %s > /dev/null", g_dir,
                             g_dir, flags), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/r.ckpt " ARGS " %s --stop-after 1 > /dev/null",
                             g_dir, g_dir, flags), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/r.ckpt --resume --stop-after 2 --quiet > /dev/null",
                             g_dir, g_dir), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/r.ckpt --resume --quiet > /dev/null", g_dir,
                             g_dir), 0);
    assert_int_equal(tfs_run("cmp -s %s/u.ckpt %s/r.ckpt", g_dir, g_dir), 0);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/u.ckpt.state", g_dir);
    snprintf(b, sizeof b, "%s/r.ckpt.state", g_dir);
    assert_true(tm_same_state(a, b));
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/q.ckpt " ARGS " --one-cycle --stop-after 2 "
                             "> /dev/null", g_dir, g_dir), 0);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s/q.ckpt --resume --quiet > /dev/null", g_dir,
                             g_dir), 0);
    assert_int_equal(tfs_run("cmp -s %s/o.ckpt %s/q.ckpt", g_dir, g_dir), 0);

    /* the loaded model is the average: mirror in, mirror out */
    struct cn_model *m;
    char err[CN_ERRLEN];
    snprintf(a, sizeof a, "%s/u.ckpt", g_dir);
    assert_int_equal(cn_model_load(a, &m, err), CN_OK);
    assert_int_equal(cn_model_state(m)->cfg.reflect_avg, 1);
    sim_rng_seed(&g_rng, 91);
    const int n = 5;
    double x[15], v[15], q[5], mx[15], mv[15];
    for (int k = 0; k < 15; k++) {
        x[k] = sim_rng_randn(&g_rng);
        v[k] = 0.5 * sim_rng_randn(&g_rng);
    }
    for (int i = 0; i < n; i++)
        q[i] = i % 2 ? 1 : -1;
    for (int k = 0; k < 15; k++) { /* sim's axis-major layout: x of every body first */
        mx[k] = k < n ? -x[k] : x[k];
        mv[k] = k < n ? -v[k] : v[k];
    }
    assert_int_equal(cn_integrator_step(m, n, q, x, v), CN_OK);
    assert_int_equal(cn_integrator_step(m, n, q, mx, mv), CN_OK);
    double gap = 0, big = 0;
    for (int k = 0; k < 15; k++) {
        gap = fmax(gap, fabs((k < n ? -mx[k] : mx[k]) - x[k]));
        big = fmax(big, fabs(x[k]));
    }
    print_message("cn_integrator_step of the averaged model: mirror gap %.3g\n", gap / big);
    assert_true(gap / big < EQUIV_TOL);
    cn_model_free(m);
    assert_int_equal(tfs_run(EVAL " --model %s/u.ckpt --data %s/c5 --json > %s/e.json", g_dir, g_dir,
                             g_dir), 0);
    assert_int_equal(tfs_run("grep -q '\"mse\"' %s/e.json", g_dir), 0);
}

/* nbody-train on DATA with ARGS and args fails, says msg, and writes no checkpoint. */
static void expect_refused(const char *data, const char *args, const char *msg)
{
    assert_int_not_equal(tfs_run(TRAIN " --data %s/%s --out %s/bad.ckpt " ARGS " %s > %s/o.txt 2>&1",
                                 g_dir, data, g_dir, args, g_dir), 0);
    assert_int_equal(tfs_run("grep -q -e '%s' %s/o.txt", msg, g_dir), 0);
    assert_int_not_equal(tfs_run("test -e %s/bad.ckpt", g_dir), 0);
}

/* --init's learning rate: every AdamW step moves a parameter by about lr (at most a few lr),
 * so 12 steps at this rate leave the starting weights as they were to far below INIT_TOL. */
#define INIT_LR "1e-30"
#define INIT_TOL 1e-24
/* A run from its seed's initialisation at that rate is that far from a trained model */
#define TRAINED_MOVED 1e-3

/* Largest |a - b| over the parameters of two checkpoints of the same network. */
static double param_dist(const char *a, const char *b)
{
    struct cn_state sa, sb;
    char err[CN_ERRLEN];
    assert_int_equal(cn_ckpt_load(a, NULL, &sa, NULL, NULL, NULL, NULL, err), CN_OK);
    assert_int_equal(cn_ckpt_load(b, NULL, &sb, NULL, NULL, NULL, NULL, err), CN_OK);
    assert_int_equal(sa.n_params, sb.n_params);
    double d = 0;
    for (long k = 0; k < sa.n_params; k++)
        d = fmax(d, fabs((double)sa.param[k] - sb.param[k]));
    cn_state_free(&sa);
    cn_state_free(&sb);
    return d;
}

/* --init starts from a checkpoint's weights (a fine-tune), and refuses another network. */
static void test_init(void **state)
{
    (void)state;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/i0.ckpt", g_dir);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s " ARGS " > /dev/null", g_dir, a), 0);
    snprintf(b, sizeof b, "%s/i1.ckpt", g_dir);
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s " ARGS " --init %s --lr " INIT_LR
                             " > /dev/null", g_dir, b, a), 0);
    assert_true(param_dist(a, b) <= INIT_TOL);
    /* the same run without --init starts from the seed's weights, not the trained ones */
    assert_int_equal(tfs_run(TRAIN " --data %s/c5 --out %s " ARGS " --lr " INIT_LR " > /dev/null",
                             g_dir, b), 0);
    assert_true(param_dist(a, b) > TRAINED_MOVED);

    const struct {
        const char *args, *msg;
    } bad[] = {
        {"--init %s/i0.ckpt --hidden 8", "hidden"},
        {"--init %s/i0.ckpt --arch egnn", "egnn"},
        {"--init %s/none.ckpt", "none.ckpt"},
        {"--init %s/i0.ckpt --resume", "--resume continues"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char args[600];
        snprintf(args, sizeof args, bad[k].args, g_dir);
        expect_refused("c5", args, bad[k].msg);
    }
}

/* Misuse is refused with a message naming it, and nothing is written. */
static void test_refusals(void **state)
{
    (void)state;
    const struct {
        const char *data, *args, *msg;
    } bad[] = {
        {"c5", "--one-cycle --cosine", "two schedules"},
        {"c5", "--one-cycle --warmup 2", "own warm-up"},
        {"c5", "--warmup 5", "warm-up 5"},
        {"c5", "--warmup -1", "warmup"},
        {"c5", "--clip -1", "clipping"},
        {"c5", "--clip nan", "not a number"},
        {"d5", "--reflect-average", "mirror-symmetric"},
        {"c5", "--reflect-average --task step --unroll 2", "one-step pairs"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        expect_refused(bad[k].data, bad[k].args, bad[k].msg);
}

/* A training state of the previous resume-record version (3, written by the build before
 * this one: tests/data/resume_v3.ckpt.state, after epoch 0 of 3 on the dataset regenerated
 * here) resumes to the parameters, moments and step count that build reached uninterrupted
 * (tests/data/resume_v3_final.ckpt.state). Both files were written on OpenBLAS's Haswell
 * kernels (an AMD Zen 3, whose "Zen" set uses them); other kernels sum the matrix products in
 * other orders, so the resumed run is pinned to them, and the test is skipped on a CPU without
 * AVX2 and FMA, which cannot run them. */
static void test_resume_older_record(void **state)
{
    (void)state;
    if ((cn_cpu_features() & (CN_CPU_AVX2 | CN_CPU_FMA)) != (CN_CPU_AVX2 | CN_CPU_FMA)) {
        print_message("no AVX2 and FMA: the golden bits need OpenBLAS's Haswell kernels; skipped\n");
        skip();
    }
    assert_int_equal(tfs_run(GEN " --out %s/v3d --train 32 --valid 8 --test 8 --seed 5 > /dev/null 2>&1",
                             g_dir), 0);
    assert_int_equal(tfs_run("cp " TEST_DATA_DIR "/resume_v3.ckpt.state %s/v3.ckpt.state", g_dir), 0);
    assert_int_equal(tfs_run("OPENBLAS_CORETYPE=Haswell " TRAIN " --data %s/v3d --out %s/v3.ckpt "
                             "--resume --quiet > /dev/null", g_dir, g_dir), 0);
    char got[512];
    snprintf(got, sizeof got, "%s/v3.ckpt.state", g_dir);
    assert_true(tm_same_state(TEST_DATA_DIR "/resume_v3_final.ckpt.state", got));
}

int main(void)
{
    cn_fp_policy(); /* the programs' float mode, before any thread (see clofnet.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onecycle_matches_pytorch),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_avg_gradient),
        cmocka_unit_test(test_avg_equivariance),
        cmocka_unit_test(test_schedule_flags),
        cmocka_unit_test(test_avg_program_and_resume),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_resume_older_record),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
