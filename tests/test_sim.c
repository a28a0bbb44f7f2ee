/* test_sim.c: physics of the simulator (forces, invariants, energy) and the
 * reference integration scheme (kick-drift order, which steps are saved). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Sums of a few O(1..100) terms in double: a few ulps of the largest term. */
#define FORCE_ROUNDING 1e-13
/* Momentum after 2000 steps of a well-separated system: each step adds at most
 * ~5 ulps of an O(1) force times dt, summed over 2000 steps. */
#define MOMENTUM_DRIFT 1e-12
/* Relative energy error of the kick-drift (leapfrog with half-step velocities)
 * scheme at dt = 1e-3 on the gentle, well-separated system below: O((dt w)^2)
 * with w ~ 0.03 is ~1e-9; measured 1.3e-9, bound at 8x that. A first-order
 * (non-symplectic) scheme would drift ~1e-4 here. */
#define ENERGY_DRIFT 1e-8
/* A product of O(1) doubles. */
#define EXACT_ISH 1e-15
/* Kicks of the pure-field test: |v_perp|^2 grows by (1 + 7.5e-7)^2000 - 1 = 1.5e-3. */
#define LORENTZ_KICKS 2000
/* O(1) velocities after LORENTZ_KICKS kicks, each adding a few ulps: ~2000 * 4e-16 = 1e-12,
 * bound at 10x that; still 1e5 times below the growth the test measures. */
#define LORENTZ_STEPPED 1e-11

/* Scratch of sim_forces for the small systems of these tests. */
static double scratch[SIM_FORCES_WORK(64)];

static void random_system(struct sim_system *s, unsigned seed, double spread)
{
    srand(seed);
    for (int k = 0; k < 3 * s->n; k++) {
        s->x[k] = spread * (2.0 * rand() / RAND_MAX - 1.0);
        s->v[k] = 2.0 * rand() / RAND_MAX - 1.0;
    }
    for (int i = 0; i < s->n; i++)
        s->q[i] = (rand() & 1) ? 1.0 : -1.0;
}

static double max_abs_force(const struct sim_system *s)
{
    double m = 0;
    for (int k = 0; k < 3 * s->n; k++)
        m = fmax(m, fabs(s->f[k]));
    return m;
}

/* Two charges: F on body 0 is q0 q1 (x0 - x1) / (r^2 + eps)^(3/2). */
static void test_two_charges_analytic(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 2), SIM_OK);
    const double r[3] = {0.7, -0.4, 1.1};
    for (int c = 0; c < 3; c++) {
        s.x[c * 2 + 0] = 0.3;
        s.x[c * 2 + 1] = 0.3 + r[c];
    }
    for (int sign = -1; sign <= 1; sign += 2) {
        s.q[0] = 1.0;
        s.q[1] = sign;
        sim_forces(s.kind, 2, s.x, s.v, s.q, s.f, scratch);
        double r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + SIM_SOFTENING;
        for (int c = 0; c < 3; c++) {
            double expect0 = sign * (-r[c]) / pow(r2, 1.5);
            assert_true(fabs(s.f[c * 2 + 0] - expect0) <= FORCE_ROUNDING * fabs(expect0) + 1e-300);
            assert_true(fabs(s.f[c * 2 + 1] + expect0) <= FORCE_ROUNDING * fabs(expect0) + 1e-300);
        }
        /* Like charges repel: body 0 is pushed away from body 1. */
        double along = 0;
        for (int c = 0; c < 3; c++)
            along += s.f[c * 2] * r[c];
        assert_true(sign > 0 ? along < 0 : along > 0);
    }
    sim_system_free(&s);
}

/* Newton's third law: forces sum to zero, and momentum is conserved by a run. */
static void test_momentum_conserved(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 5), SIM_OK);
    random_system(&s, 7, 4.0);
    sim_forces(s.kind, s.n, s.x, s.v, s.q, s.f, scratch);
    assert_true(max_abs_force(&s) < SIM_MAX_F); /* clamp inactive */
    for (int c = 0; c < 3; c++) {
        double sum = 0;
        for (int i = 0; i < s.n; i++)
            sum += s.f[c * s.n + i];
        assert_true(fabs(sum) <= FORCE_ROUNDING * max_abs_force(&s));
    }
    double p0[3], p1[3];
    sim_momentum(s.n, s.v, p0);
    sim_kick(&s);
    sim_advance(&s, 2000);
    assert_true(max_abs_force(&s) < SIM_MAX_F);
    sim_momentum(s.n, s.v, p1);
    for (int c = 0; c < 3; c++)
        assert_true(fabs(p1[c] - p0[c]) <= MOMENTUM_DRIFT);
    sim_system_free(&s);
}

/* The clamp breaks the third law on purpose: a close pair is capped at 100. */
static void test_clamp(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 2), SIM_OK);
    s.x[0] = 0.0;
    s.x[1] = 0.01; /* 1/r^2 = 1e4 > 100 */
    s.q[0] = s.q[1] = 1.0;
    sim_forces(s.kind, 2, s.x, s.v, s.q, s.f, scratch);
    assert_true(s.f[0] == -SIM_MAX_F);
    assert_true(s.f[1] == SIM_MAX_F);
    sim_system_free(&s);
}

/* The softening is the only thing sim_forces_softened changes: with SIM_SOFTENING it is
 * sim_forces bit for bit; with 0 (the EGNN generator's physics) a pair's force is q1 q2 dx / d^3
 * with d^2 expanded as the reference expands it, nothing added; and a kick of a system marked
 * unsoftened uses that force. */
static void test_softening(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 2), SIM_OK);
    const double x[6] = {0.3, -0.2, 0.1, 0.25, 0.4, -0.1};
    memcpy(s.x, x, sizeof x);
    s.q[0] = 1.0;
    s.q[1] = -1.0;
    double f0[6], fs[6];
    sim_forces(SIM_CHARGED, 2, s.x, s.v, s.q, s.f, scratch);
    sim_forces_softened(SIM_CHARGED, 2, SIM_SOFTENING, s.x, s.v, s.q, fs, scratch);
    assert_memory_equal(s.f, fs, sizeof fs);
    sim_forces_softened(SIM_CHARGED, 2, 0.0, s.x, s.v, s.q, f0, scratch);
    double n0 = (x[0] * x[0] + x[2] * x[2]) + x[4] * x[4];
    double n1 = (x[1] * x[1] + x[3] * x[3]) + x[5] * x[5];
    double dot = fma(x[4], x[5], fma(x[2], x[3], x[0] * x[1]));
    double d2 = (n0 + n1) - 2.0 * dot;
    double sij = (s.q[0] * s.q[1]) / (d2 * sqrt(d2));
    for (int c = 0; c < 3; c++) {
        double dx = x[2 * c] - x[2 * c + 1];
        assert_true(f0[2 * c] == 0.0 + sij * dx);
        assert_true(f0[2 * c + 1] == sij * -dx + 0.0);
        assert_true(f0[2 * c] != fs[2 * c]); /* 1e-6 against d2 = 0.4 shows in the bits */
    }
    s.unsoftened = 1;
    sim_kick(&s);
    for (int k = 0; k < 6; k++)
        assert_true(s.v[k] == SIM_DT * f0[k]);
    sim_system_free(&s);
}

/* Static setting: the field adds exactly 0.098 along +z to every body, whatever its charge. */
static void test_static_field(void **state)
{
    (void)state;
    struct sim_system a, b;
    assert_int_equal(sim_system_init(&a, SIM_CHARGED, 6), SIM_OK);
    assert_int_equal(sim_system_init(&b, SIM_STATIC, 6), SIM_OK);
    random_system(&a, 3, 3.0);
    sim_forces(SIM_CHARGED, 6, a.x, a.v, a.q, a.f, scratch);
    sim_forces(SIM_STATIC, 6, a.x, a.v, a.q, b.f, scratch);
    for (int i = 0; i < 6; i++) {
        assert_true(b.f[i] == a.f[i]);
        assert_true(b.f[6 + i] == a.f[6 + i]);
        assert_true(fabs((b.f[12 + i] - a.f[12 + i]) - SIM_GRAVITY) <= FORCE_ROUNDING);
    }
    /* Uncharged bodies feel exactly the field: acceleration (0, 0, 0.098). */
    memset(a.q, 0, 6 * sizeof *a.q);
    sim_forces(SIM_STATIC, 6, a.x, a.v, a.q, b.f, scratch);
    for (int i = 0; i < 6; i++) {
        assert_true(b.f[i] == 0.0 && b.f[6 + i] == 0.0);
        assert_true(b.f[12 + i] == SIM_GRAVITY);
    }
    sim_system_free(&a);
    sim_system_free(&b);
}

/* Dynamic setting: the extra force sim_forces adds is q (v x B) computed here independently,
 * perpendicular to v, so it does no work. */
static void test_lorentz_force(void **state)
{
    (void)state;
    struct sim_system s;
    double fc[15], fd[15];
    assert_int_equal(sim_system_init(&s, SIM_DYNAMIC, 5), SIM_OK);
    random_system(&s, 11, 3.0);
    sim_forces(SIM_CHARGED, 5, s.x, s.v, s.q, fc, scratch);
    sim_forces(SIM_DYNAMIC, 5, s.x, s.v, s.q, fd, scratch);
    const double B = SIM_BFIELD;
    for (int i = 0; i < 5; i++) {
        double v0 = s.v[i], v1 = s.v[5 + i], v2 = s.v[10 + i];
        double fb[3] = {fd[i] - fc[i], fd[5 + i] - fc[5 + i], fd[10 + i] - fc[10 + i]};
        double cross[3] = {s.q[i] * (v1 * B - v2 * B), s.q[i] * (v2 * B - v0 * B),
                           s.q[i] * (v0 * B - v1 * B)};
        for (int c = 0; c < 3; c++)
            assert_true(fabs(fb[c] - cross[c]) <= FORCE_ROUNDING);
        double power = fb[0] * v0 + fb[1] * v1 + fb[2] * v2;
        assert_true(fabs(power) <= FORCE_ROUNDING);
    }
    sim_system_free(&s);
}

/* B alone, stepped by the project's scheme: one charged body and an uncharged partner (so no
 * Coulomb force at all), LORENTZ_KICKS kicks of sim_kick / sim_advance. The explicit kick
 * v += dt q (v x B) is not a rotation: v.B stays, |v_perp|^2 grows by exactly
 * (1 + dt^2 q^2 |B|^2) per kick (1.5e-3 in all, far above the rounding; a rotating
 * integrator such as Boris would keep it), the velocity follows an independent loop of
 * that kick, and the uncharged body feels nothing. */
static void test_lorentz_stepped(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_DYNAMIC, 2), SIM_OK);
    const double v0[3] = {0.3, -0.2, 0.5}, v1[3] = {0.1, 0.05, -0.15};
    const double x0[3] = {0.0, 0.5, -0.3}, x1[3] = {2.0, -1.0, 1.0};
    for (int c = 0; c < 3; c++) {
        s.x[c * 2] = x0[c];
        s.x[c * 2 + 1] = x1[c];
        s.v[c * 2] = v0[c];
        s.v[c * 2 + 1] = v1[c];
    }
    s.q[0] = 1.0;
    s.q[1] = 0.0;
    const double B = SIM_BFIELD, B2 = 3 * B * B;
    double w[3] = {v0[0], v0[1], v0[2]}; /* the reference loop */
    for (int k = 0; k < LORENTZ_KICKS; k++) {
        double cr[3] = {w[1] * B - w[2] * B, w[2] * B - w[0] * B, w[0] * B - w[1] * B};
        for (int c = 0; c < 3; c++)
            w[c] += SIM_DT * cr[c];
    }
    sim_kick(&s);
    sim_advance(&s, LORENTZ_KICKS - 1);
    const double v[3] = {s.v[0], s.v[2], s.v[4]};
    for (int c = 0; c < 3; c++) {
        assert_true(fabs(v[c] - w[c]) <= LORENTZ_STEPPED);
        assert_true(s.v[c * 2 + 1] == v1[c]); /* q = 0: no force at all */
    }
    double par0 = B * (v0[0] + v0[1] + v0[2]), par = B * (v[0] + v[1] + v[2]);
    double perp0 = v0[0] * v0[0] + v0[1] * v0[1] + v0[2] * v0[2] - par0 * par0 / B2;
    double perp = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - par * par / B2;
    double growth = pow(1 + SIM_DT * SIM_DT * B2, LORENTZ_KICKS);
    print_message("Lorentz: |v_perp|^2 grew by %.6g over %d kicks, expected %.6g\n", perp / perp0,
                  LORENTZ_KICKS, growth);
    assert_true(fabs(par - par0) <= LORENTZ_STEPPED);
    assert_true(fabs(perp / perp0 - growth) <= LORENTZ_STEPPED);
    assert_true(perp / perp0 - 1 > 1000 * LORENTZ_STEPPED); /* the growth is measurable */
    sim_system_free(&s);
}

/* Total energy with velocities brought back half a kick, level with positions. */
static double synced_energy(struct sim_system *s)
{
    double vs[3 * 64];
    sim_forces(s->kind, s->n, s->x, s->v, s->q, s->f, scratch);
    for (int k = 0; k < 3 * s->n; k++)
        vs[k] = s->v[k] - 0.5 * SIM_DT * s->f[k];
    return sim_kinetic_energy(s->n, vs) + sim_potential_energy(s->kind, s->n, s->x, s->q);
}

/* Energy of a well-separated ES system stays within ENERGY_DRIFT over 5000 steps. */
static void test_energy_drift(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 4), SIM_OK);
    /* Four like charges on a tetrahedron of edge ~5, slow: they drift apart gently. */
    const double pos[4][3] = {{2, 2, 2}, {2, -2, -2}, {-2, 2, -2}, {-2, -2, 2}};
    for (int i = 0; i < 4; i++) {
        s.q[i] = 1.0;
        for (int c = 0; c < 3; c++) {
            s.x[c * 4 + i] = pos[i][c];
            s.v[c * 4 + i] = 0.1 * ((i + c) % 3 - 1);
        }
    }
    sim_kick(&s);
    double e0 = synced_energy(&s), worst = 0;
    for (int k = 0; k < 50; k++) {
        sim_advance(&s, 100);
        worst = fmax(worst, fabs(synced_energy(&s) - e0) / fabs(e0));
    }
    print_message("energy: relative drift %.3g over 5000 steps\n", worst);
    assert_true(worst <= ENERGY_DRIFT);
    assert_true(worst > 0); /* the diagnostic does measure something */
    sim_system_free(&s);
}

/* Hand-checked scheme: uncharged bodies in the static field. After the first
 * kick v_1 = v0 + dt g; step i drifts with v_i then kicks, so the frame saved at
 * step i holds x0 + dt sum_{k=1..i} v_k = x0 + i dt v0 + dt^2 g i(i+1)/2 and
 * v_i = v0 + i dt g. Frame k is step sample_freq (k + 1). */
static void test_scheme_hand_checked(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_STATIC, 2), SIM_OK);
    const double x0[6] = {0.5, -1.0, 2.0, 0.25, 1.0, -3.0}, v0[6] = {0.1, 0.2, -0.3, 0.0, 0.4, 0.05};
    memcpy(s.x, x0, sizeof x0);
    memcpy(s.v, v0, sizeof v0);
    s.q[0] = s.q[1] = 0.0;
    const int length = 10, freq = 2, frames = sim_frame_count(length, freq);
    assert_int_equal(frames, 4);
    double loc[4 * 6], vel[4 * 6];
    assert_int_equal(sim_run(&s, length, freq, loc, vel), SIM_OK);
    for (int k = 0; k < frames; k++) {
        int i = freq * (k + 1);
        for (int c = 0; c < 3; c++)
            for (int b = 0; b < 2; b++) {
                double g = c == 2 ? SIM_GRAVITY : 0.0;
                double ex = x0[c * 2 + b] + i * SIM_DT * v0[c * 2 + b] + SIM_DT * SIM_DT * g * i * (i + 1) / 2;
                double ev = v0[c * 2 + b] + i * SIM_DT * g;
                assert_true(fabs(loc[k * 6 + c * 2 + b] - ex) <= 100 * EXACT_ISH);
                assert_true(fabs(vel[k * 6 + c * 2 + b] - ev) <= 100 * EXACT_ISH);
            }
    }
    /* Final state: the loop ends after step length-1's kick. */
    assert_true(fabs(s.v[4] - (v0[4] + length * SIM_DT * SIM_GRAVITY)) <= 100 * EXACT_ISH);
    sim_system_free(&s);
}

/* NumPy's pairwise_sum of a row (the order the reference's add.reduce uses), for the oracle. */
static double oracle_pairwise(const double *a, int n)
{
    if (n < 8) {
        double r = 0.0;
        for (int i = 0; i < n; i++)
            r += a[i];
        return r;
    }
    if (n <= 128) {
        double acc[8];
        int i;
        for (int k = 0; k < 8; k++)
            acc[k] = a[k];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += a[i + k];
        double r = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < n; i++)
            r += a[i];
        return r;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return oracle_pairwise(a, n2) + oracle_pairwise(a + n2, n - n2);
}

/* The charged force rows are the reference's expression summed in NumPy's pairwise order, bit
 * for bit, at every row length the summation treats differently (below 8, one block of 8
 * accumulators with and without a tail, up to 128, halves beyond): the oracle builds each row
 * of terms and sums it; sim_forces sums the terms as it makes them. */
static void test_force_rows_pairwise_order(void **state)
{
    (void)state;
    const int sizes[] = {5, 8, 9, 15, 16, 20, 64, 127, 128, 129, 200};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const int n = sizes[t];
        double *x = malloc(sizeof(double) * 3 * n), *v = calloc(3 * (size_t)n, sizeof(double));
        double *q = malloc(sizeof(double) * n), *f = malloc(sizeof(double) * 3 * n);
        double *work = malloc(sizeof(double) * SIM_FORCES_WORK(n));
        double *row = malloc(sizeof(double) * n);
        assert_true(x && v && q && f && work && row);
        struct sim_rng r;
        sim_rng_seed(&r, 1000u + (uint32_t)n);
        for (int k = 0; k < 3 * n; k++)
            x[k] = 2.0 * sim_rng_randn(&r);
        for (int i = 0; i < n; i++)
            q[i] = sim_rng_random_sample(&r) < 0.5 ? -1.0 : 1.0;
        sim_forces(SIM_CHARGED, n, x, v, q, f, work);
        int same = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0.0;
                    if (j != i) {
                        const double ni = (x[i] * x[i] + x[n + i] * x[n + i]) + x[2 * n + i] * x[2 * n + i];
                        const double nj = (x[j] * x[j] + x[n + j] * x[n + j]) + x[2 * n + j] * x[2 * n + j];
                        const int a = i < j ? i : j, b = i < j ? j : i; /* the pair once, as i < j */
                        const double dot = fma(x[2 * n + a], x[2 * n + b],
                                               fma(x[n + a], x[n + b], x[a] * x[b]));
                        const double d2 = (((i < j ? ni : nj) + (i < j ? nj : ni)) - 2.0 * dot) + SIM_SOFTENING;
                        s = (q[a] * q[b]) / (d2 * sqrt(d2));
                    }
                    row[j] = s * (x[c * n + i] - x[c * n + j]);
                }
                double want = oracle_pairwise(row, n);
                want = want > SIM_MAX_F ? SIM_MAX_F : want < -SIM_MAX_F ? -SIM_MAX_F : want;
                same += memcmp(&want, &f[c * n + i], sizeof want) == 0;
            }
        print_message("n = %d: %d of %d force components bitwise equal to the oracle\n", n, same,
                      3 * n);
        assert_int_equal(same, 3 * n);
        free(x), free(v), free(q), free(f), free(work), free(row);
    }
}

/* sim_run equals a hand-written kick/drift loop bit for bit, for every setting. */
static void test_run_matches_primitives(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        struct sim_system a, b;
        assert_int_equal(sim_system_init(&a, kind, 5), SIM_OK);
        assert_int_equal(sim_system_init(&b, kind, 5), SIM_OK);
        sim_initial_state(&a, 1234);
        memcpy(b.x, a.x, 15 * sizeof(double));
        memcpy(b.v, a.v, 15 * sizeof(double));
        memcpy(b.q, a.q, 5 * sizeof(double));
        double loc[9 * 15], vel[9 * 15];
        assert_int_equal(sim_run(&a, 1000, 100, loc, vel), SIM_OK);
        sim_kick(&b);
        for (int k = 0; k < 9; k++) {
            sim_advance(&b, 99);
            sim_drift(&b);
            assert_memory_equal(loc + k * 15, b.x, sizeof b.x[0] * 15);
            assert_memory_equal(vel + k * 15, b.v, sizeof b.v[0] * 15);
            sim_kick(&b);
        }
        sim_system_free(&a);
        sim_system_free(&b);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct sim_system s;
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 1), SIM_EARG);
    assert_int_equal(sim_system_init(&s, 7, 5), SIM_EARG);
    assert_int_equal(sim_frame_count(5000, 100), 49);
    assert_int_equal(sim_frame_count(5000, 300), -1);
    assert_int_equal(sim_frame_count(0, 100), -1);
    assert_int_equal(sim_kind_parse("dynamic"), SIM_DYNAMIC);
    assert_int_equal(sim_kind_parse("springs"), -1);
    assert_int_equal(sim_system_init(&s, SIM_CHARGED, 3), SIM_OK);
    assert_int_equal(sim_run(&s, 1000, 300, NULL, NULL), SIM_EARG);
    sim_system_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_charges_analytic),
        cmocka_unit_test(test_momentum_conserved),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_softening),
        cmocka_unit_test(test_static_field),
        cmocka_unit_test(test_lorentz_force),
        cmocka_unit_test(test_lorentz_stepped),
        cmocka_unit_test(test_energy_drift),
        cmocka_unit_test(test_scheme_hand_checked),
        cmocka_unit_test(test_run_matches_primitives),
        cmocka_unit_test(test_force_rows_pairwise_order),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
