/* sim.c: forces, energy diagnostics and the kick-drift scheme of the reference
 * charged-particle generator, with its floating-point evaluation order. */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"charged", "static", "dynamic"};

int sim_kind_parse(const char *name)
{
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

const char *sim_kind_name(int kind)
{
    return kind >= 0 && kind < 3 ? kind_names[kind] : NULL;
}

int sim_system_init(struct sim_system *s, int kind, int n)
{
    memset(s, 0, sizeof *s);
    if (n < 2 || n > 100000 || !sim_kind_name(kind))
        return SIM_EARG;
    s->kind = kind;
    s->n = n;
    s->x = calloc((size_t)3 * n, sizeof *s->x);
    s->v = calloc((size_t)3 * n, sizeof *s->v);
    s->q = calloc((size_t)n, sizeof *s->q);
    s->f = calloc((size_t)3 * n, sizeof *s->f);
    s->work = calloc(SIM_FORCES_WORK(n), sizeof *s->work);
    if (!s->x || !s->v || !s->q || !s->f || !s->work) {
        sim_system_free(s);
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

void sim_system_free(struct sim_system *s)
{
    free(s->x);
    free(s->v);
    free(s->q);
    free(s->f);
    free(s->work);
    memset(s, 0, sizeof *s);
}

/* NumPy's pairwise_sum, which its add.reduce applies to each contiguous row, of the force row
 * terms s[j] (xi - x[j]): a plain loop below 8 terms, 8 interleaved accumulators up to 128,
 * halves (rounded to a multiple of 8) beyond. Same order, same bits as the reference. Each
 * term is made as it is added: a row stored and read back at once stalled store forwarding on
 * an Emerald Rapids Xeon (256-bit stores, 128-bit loads), 9-10x slower at 20 bodies. */
static double row_pairwise_sum(const double *s, const double *x, double xi, int n)
{
    if (n < 8) {
        double res = 0.0;
        for (int j = 0; j < n; j++)
            res += s[j] * (xi - x[j]);
        return res;
    }
    if (n <= 128) {
        double acc[8];
        int j;
        for (int k = 0; k < 8; k++)
            acc[k] = s[k] * (xi - x[k]);
        for (j = 8; j < n - (n % 8); j += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += s[j + k] * (xi - x[j + k]);
        double res = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; j < n; j++)
            res += s[j] * (xi - x[j]);
        return res;
    }
    int n2 = n / 2;
    n2 -= n2 % 8;
    return row_pairwise_sum(s, x, xi, n2) + row_pairwise_sum(s + n2, x + n2, xi, n - n2);
}

/* x_i . x_j as the reference's OpenBLAS dgemm computes it on machines with FMA
 * (k = 3: fma(a2, b2, fma(a1, b1, a0 b0))). fma() is correctly rounded
 * everywhere, so this is also the result on machines without FMA hardware. */
static inline double dot3(double a0, double a1, double a2, double b0, double b1, double b2)
{
    return fma(a2, b2, fma(a1, b1, a0 * b0));
}

/* Cloned for FMA hardware, where fma() is one instruction instead of a libm
 * call; fma() is correctly rounded either way, so both clones give the same bits. */
__attribute__((target_clones("fma", "default")))
void sim_forces_softened(int kind, int n, double softening, const double *restrict x,
                         const double *restrict v, const double *restrict q,
                         double *restrict f, double *restrict work)
{
    /* restrict: the scratch never overlaps the inputs or f, which lets the loops vectorise */
    double *restrict nrm = work, *restrict s = work + n;
    const double *x0 = x, *x1 = x + n, *x2 = x + 2 * n;
    for (int i = 0; i < n; i++)
        nrm[i] = (x0[i] * x0[i] + x1[i] * x1[i]) + x2[i] * x2[i];
    /* s_ij = q_i q_j / d_ij^3 with the reference's expansion of d^2; symmetric
     * bit for bit, so each pair is evaluated once. */
    for (int i = 0; i < n; i++) {
        s[(size_t)i * n + i] = 0.0;
        for (int j = i + 1; j < n; j++) {
            double dot = dot3(x0[i], x1[i], x2[i], x0[j], x1[j], x2[j]);
            double d2 = ((nrm[i] + nrm[j]) - 2.0 * dot) + softening;
            /* d^3 as d2 sqrt(d2): within an ulp of pow(d2, 1.5), several times
             * cheaper. The reference's own pow is NumPy's SIMD one, which is not
             * libm's either, so neither choice is bitwise the reference. */
            double sij = (q[i] * q[j]) / (d2 * sqrt(d2));
            s[(size_t)i * n + j] = sij;
            s[(size_t)j * n + i] = sij;
        }
    }
    for (int c = 0; c < 3; c++) {
        const double *xc = x + (size_t)c * n;
        for (int i = 0; i < n; i++)
            f[(size_t)c * n + i] = row_pairwise_sum(s + (size_t)i * n, xc, xc[i], n);
    }
    if (kind == SIM_STATIC) {
        for (int i = 0; i < n; i++)
            f[2 * (size_t)n + i] += SIM_GRAVITY;
    } else if (kind == SIM_DYNAMIC) {
        /* Lorentz force q (v x B) with B = (b, b, b), NumPy's cross order. */
        const double b = SIM_BFIELD;
        const double *v0 = v, *v1 = v + n, *v2 = v + 2 * n;
        for (int i = 0; i < n; i++) {
            double c0 = v1[i] * b - v2[i] * b;
            double c1 = v2[i] * b - v0[i] * b;
            double c2 = v0[i] * b - v1[i] * b;
            f[i] += c0 * q[i];
            f[(size_t)n + i] += c1 * q[i];
            f[2 * (size_t)n + i] += c2 * q[i];
        }
    }
    for (int k = 0; k < 3 * n; k++) {
        if (f[k] > SIM_MAX_F)
            f[k] = SIM_MAX_F;
        else if (f[k] < -SIM_MAX_F)
            f[k] = -SIM_MAX_F;
    }
}

void sim_forces(int kind, int n, const double *x, const double *v, const double *q, double *f,
                double *work)
{
    sim_forces_softened(kind, n, SIM_SOFTENING, x, v, q, f, work);
}

double sim_kinetic_energy(int n, const double *v)
{
    double k = 0.0;
    for (int i = 0; i < 3 * n; i++)
        k += v[i] * v[i];
    return 0.5 * k;
}

double sim_potential_energy(int kind, int n, const double *x, const double *q)
{
    double u = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double d2 = SIM_SOFTENING;
            for (int c = 0; c < 3; c++) {
                double d = x[c * n + i] - x[c * n + j];
                d2 += d * d;
            }
            u += q[i] * q[j] / sqrt(d2);
        }
        if (kind == SIM_STATIC)
            u -= SIM_GRAVITY * x[2 * n + i];
    }
    return u;
}

void sim_momentum(int n, const double *v, double p[3])
{
    for (int c = 0; c < 3; c++) {
        p[c] = 0.0;
        for (int i = 0; i < n; i++)
            p[c] += v[c * n + i];
    }
}

int sim_frame_count(int length, int sample_freq)
{
    if (length <= 0 || sample_freq <= 0 || length % sample_freq != 0)
        return -1;
    return length / sample_freq - 1;
}

/* The kick is v += dt * F(x, v). For the dynamic setting F contains q (v x B)
 * evaluated at the velocity before the kick, which lags x by half a step: the
 * reference's scheme is therefore an explicit (not time-symmetric) update of the
 * magnetic term, and the magnitude of v is not exactly conserved by it. We keep
 * it as the reference has it, since the datasets are defined by it. */
void sim_kick(struct sim_system *s)
{
    sim_forces_softened(s->kind, s->n, s->unsoftened ? 0.0 : SIM_SOFTENING, s->x, s->v, s->q,
                        s->f, s->work);
    for (int k = 0; k < 3 * s->n; k++)
        s->v[k] += SIM_DT * s->f[k];
}

void sim_drift(struct sim_system *s)
{
    for (int k = 0; k < 3 * s->n; k++)
        s->x[k] += SIM_DT * s->v[k];
}

void sim_advance(struct sim_system *s, int steps)
{
    for (int i = 0; i < steps; i++) {
        sim_drift(s);
        sim_kick(s);
    }
}

int sim_run(struct sim_system *s, int length, int sample_freq, double *loc, double *vel)
{
    if (sim_frame_count(length, sample_freq) < 0)
        return SIM_EARG;
    size_t frame = 3 * (size_t)s->n;
    int counter = 0;
    sim_kick(s);
    for (int i = 1; i < length; i++) {
        sim_drift(s);
        if (i % sample_freq == 0) {
            if (loc)
                memcpy(loc + counter * frame, s->x, frame * sizeof(double));
            if (vel)
                memcpy(vel + counter * frame, s->v, frame * sizeof(double));
            counter++;
        }
        sim_kick(s);
    }
    return SIM_OK;
}
