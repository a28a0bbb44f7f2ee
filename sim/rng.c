/* rng.c: NumPy's legacy RandomState (MT19937, random_sample, polar gauss, masked bounded
 * integers, choice with p) bit for bit, and the reference generator's initial conditions. */
#include <math.h>
#include <stdlib.h>

#include "sim.h"

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

/* init_genrand: NumPy seeds an integer this way (not init_by_array), and drops the cached gauss. */
void sim_rng_seed(struct sim_rng *r, uint32_t seed)
{
    uint32_t s = seed;
    for (int i = 0; i < MT_N; i++) {
        r->mt[i] = s;
        s = 1812433253u * (s ^ (s >> 30)) + (uint32_t)i + 1u;
    }
    r->pos = MT_N;
    r->has_gauss = 0;
    r->gauss = 0.0;
}

/* Regenerate all 624 words at once, as the reference MT19937 does. */
static void mt_generate(struct sim_rng *r)
{
    uint32_t *mt = r->mt;
    uint32_t y;
    int i;
    for (i = 0; i < MT_N - MT_M; i++) {
        y = (mt[i] & MT_UPPER) | (mt[i + 1] & MT_LOWER);
        mt[i] = mt[i + MT_M] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
    }
    for (; i < MT_N - 1; i++) {
        y = (mt[i] & MT_UPPER) | (mt[i + 1] & MT_LOWER);
        mt[i] = mt[i + MT_M - MT_N] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
    }
    y = (mt[MT_N - 1] & MT_UPPER) | (mt[0] & MT_LOWER);
    mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ ((0u - (y & 1u)) & MT_MATRIX_A);
    r->pos = 0;
}

/* Inline core shared by every draw below, so the hot loops avoid a call per word. */
static inline uint32_t mt_next(struct sim_rng *r)
{
    if (r->pos >= MT_N)
        mt_generate(r);
    uint32_t y = r->mt[r->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* Public wrapper of the raw word. */
uint32_t sim_rng_u32(struct sim_rng *r)
{
    return mt_next(r);
}

/* NumPy's next_uint64 for MT19937: the first word is the high half. */
static inline uint64_t mt_next64(struct sim_rng *r)
{
    uint64_t hi = mt_next(r);
    uint64_t lo = mt_next(r);
    return (hi << 32) | lo;
}

/* 27 + 26 bits from two words; the expression order matters for bit equality. */
static inline double mt_next_double(struct sim_rng *r)
{
    int32_t a = (int32_t)(mt_next(r) >> 5);
    int32_t b = (int32_t)(mt_next(r) >> 6);
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* Public wrapper of the 53-bit double. */
double sim_rng_random_sample(struct sim_rng *r)
{
    return mt_next_double(r);
}

/* Legacy gauss: the polar method returns f*x2 and keeps f*x1 for the next call. */
double sim_rng_randn(struct sim_rng *r)
{
    if (r->has_gauss) {
        double g = r->gauss;
        r->has_gauss = 0;
        r->gauss = 0.0;
        return g;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * mt_next_double(r) - 1.0;
        x2 = 2.0 * mt_next_double(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = 1;
    return f * x2;
}

/* Smallest 2^k - 1 covering max, the rejection mask of the legacy (use_masked) path. */
static uint64_t bounded_mask(uint64_t max)
{
    uint64_t m = max;
    m |= m >> 1;
    m |= m >> 2;
    m |= m >> 4;
    m |= m >> 8;
    m |= m >> 16;
    m |= m >> 32;
    return m;
}

/* Mirrors NumPy's random_bounded_uint64_fill with use_masked: the special cases draw
 * nothing (max 0) or one unmasked word, and ranges that fit 32 bits use 32-bit words. */
uint64_t sim_rng_bounded(struct sim_rng *r, uint64_t max)
{
    if (max == 0)
        return 0;
    if (max <= 0xffffffffu) {
        if (max == 0xffffffffu)
            return mt_next(r);
        uint32_t mask = (uint32_t)bounded_mask(max);
        uint32_t v;
        while ((v = (mt_next(r) & mask)) > max) {
        }
        return v;
    }
    if (max == UINT64_MAX)
        return mt_next64(r);
    uint64_t mask = bounded_mask(max);
    uint64_t v;
    while ((v = (mt_next64(r) & mask)) > max) {
    }
    return v;
}

/* The cdf is rebuilt per draw instead of stored, so no allocation: the same sequential
 * cumsum and the same division by its last entry give the same doubles as NumPy's array,
 * and counting entries <= u equals searchsorted(side='right') on a non-decreasing cdf.
 * p must be non-negative with a positive finite sum (NumPy rejects anything else). */
void sim_rng_choice_p(struct sim_rng *r, const double *p, int k, int count, int *out)
{
    if (k <= 0)
        return;
    double total = 0.0;
    for (int j = 0; j < k; j++)
        total += p[j];
    for (int d = 0; d < count; d++) {
        double u = mt_next_double(r);
        double cum = 0.0;
        int idx = 0;
        while (idx < k) {
            cum += p[idx];
            if (cum / total > u)
                break;
            idx++;
        }
        /* Unreachable for valid p (the last cdf entry is exactly 1 > u); keeps out in range. */
        out[d] = idx < k ? idx : k - 1;
    }
}

/* Reference order: seed, then the draws of sim_initial_state_rng. */
void sim_initial_state(struct sim_system *s, uint32_t seed)
{
    struct sim_rng r;
    sim_rng_seed(&r, seed);
    sim_initial_state_rng(s, &r);
}

/* Thrown-away normals still run the polar method's rejection loop, which decides how many words
 * each pair takes; only the pair whose second value stays cached needs its log and sqrt. */
void sim_rng_skip_randn(struct sim_rng *r, size_t count)
{
    if (count > 0 && r->has_gauss) {
        r->has_gauss = 0;
        r->gauss = 0.0;
        count--;
    }
    for (; count >= 2; count -= 2) {
        double x1, x2, r2;
        do {
            x1 = 2.0 * mt_next_double(r) - 1.0;
            x2 = 2.0 * mt_next_double(r) - 1.0;
            r2 = x1 * x1 + x2 * x2;
        } while (r2 >= 1.0 || r2 == 0.0);
    }
    if (count == 1)
        (void)sim_rng_randn(r); /* leaves the pair's other value cached, as NumPy does */
}

/* Reference order: charges, positions, velocities, then one reflection at the box. */
void sim_initial_state_rng(struct sim_system *s, struct sim_rng *rng)
{
    static const double charge_p[3] = {0.5, 0.0, 0.5};
    struct sim_rng *r = rng;
    int n = s->n;

    for (int i = 0; i < n; i++) {
        int idx;
        sim_rng_choice_p(r, charge_p, 3, 1, &idx);
        s->q[i] = (double)idx - 1.0; /* charge types {-1, 0, +1} */
    }

    /* (n / 5.) ** (1 / 3) in Python is C pow on doubles; 1.0 * keeps the reference's product. */
    double loc_std = SIM_LOC_STD_5 * pow((double)n / 5.0, 1.0 / 3.0);
    for (int c = 0; c < 3 * n; c++)
        s->x[c] = sim_rng_randn(r) * loc_std;
    for (int c = 0; c < 3 * n; c++)
        s->v[c] = sim_rng_randn(r);

    /* NumPy's axis-0 sum of the squares adds the rows in order: (x^2 + y^2) + z^2;
     * vel * 0.5 / norm evaluates left to right. */
    for (int i = 0; i < n; i++) {
        double vx = s->v[i], vy = s->v[n + i], vz = s->v[2 * n + i];
        double norm = sqrt((vx * vx + vy * vy) + vz * vz);
        for (int c = 0; c < 3; c++)
            s->v[c * n + i] = s->v[c * n + i] * SIM_VEL_NORM / norm;
    }

    /* Reflection per coordinate: the upper wall first, then the lower, as the reference
     * applies its two masks; a reflected coordinate's velocity points back inside. */
    for (int c = 0; c < 3 * n; c++) {
        if (s->x[c] > SIM_BOX) {
            s->x[c] = 2.0 * SIM_BOX - s->x[c];
            s->v[c] = -fabs(s->v[c]);
        }
        if (s->x[c] < -SIM_BOX) {
            s->x[c] = -2.0 * SIM_BOX - s->x[c];
            s->v[c] = fabs(s->v[c]);
        }
    }
}

/* Distinct mode keeps a bitmap of the SIM_SEED_RANGE values already handed out. */
int sim_seeds(uint32_t global_seed, int count, int reference, uint32_t *seeds)
{
    if (count < 0 || (count > 0 && seeds == NULL))
        return SIM_EARG;
    if (!reference && count > SIM_SEED_RANGE)
        return SIM_EARG;
    struct sim_rng *r = malloc(sizeof *r);
    if (r == NULL)
        return SIM_ENOMEM;
    sim_rng_seed(r, global_seed);
    if (reference) {
        for (int i = 0; i < count; i++)
            seeds[i] = (uint32_t)sim_rng_bounded(r, SIM_SEED_RANGE - 1);
        free(r);
        return SIM_OK;
    }
    unsigned char *used = calloc((SIM_SEED_RANGE + 7) / 8, 1);
    if (used == NULL) {
        free(r);
        return SIM_ENOMEM;
    }
    for (int i = 0; i < count;) {
        uint32_t v = (uint32_t)sim_rng_bounded(r, SIM_SEED_RANGE - 1);
        unsigned char bit = (unsigned char)(1u << (v & 7u));
        if (used[v >> 3] & bit)
            continue;
        used[v >> 3] |= bit;
        seeds[i++] = v;
    }
    free(used);
    free(r);
    return SIM_OK;
}
