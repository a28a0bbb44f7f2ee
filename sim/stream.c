/* stream.c: the published seed streams (SPEC §1): the initial states of a whole dataset drawn
 * as mouthful/ClofNet (pool or serial) or vgsatorras/egnn draw them, in one serial pass. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const stream_names[SIM_STREAM_COUNT] = {"distinct", "clofnet",
                                                           "clofnet-serial", "egnn"};

int sim_stream_parse(const char *name)
{
    for (int k = 0; name && k < SIM_STREAM_COUNT; k++)
        if (!strcmp(name, stream_names[k]))
            return k;
    return -1;
}

const char *sim_stream_name(int stream)
{
    return stream >= 0 && stream < SIM_STREAM_COUNT ? stream_names[stream] : NULL;
}

/* The EGNN generator's ChargedParticlesSim is its only setting (its SpringSim is another task). */
int sim_stream_has_kind(int stream, int kind)
{
    if (!sim_stream_name(stream) || !sim_kind_name(kind))
        return 0;
    return stream != SIM_STREAM_EGNN || kind == SIM_CHARGED;
}

/* The EGNN generator's _l2 has no "+ 1e-6"; mouthful/ClofNet added it. */
double sim_stream_softening(int stream)
{
    return stream == SIM_STREAM_EGNN ? 0.0 : SIM_SOFTENING;
}

/* ClofNet's script generates valid, test, train; EGNN's train, valid, test. */
const int *sim_stream_order(int stream)
{
    static const int clofnet[3] = {SIM_SPLIT_VALID, SIM_SPLIT_TEST, SIM_SPLIT_TRAIN};
    static const int egnn[3] = {SIM_SPLIT_TRAIN, SIM_SPLIT_VALID, SIM_SPLIT_TEST};
    return stream == SIM_STREAM_EGNN ? egnn : clofnet;
}

/* A system's state into its slot: q, x, v. */
static void store(const struct sim_system *s, double *slot)
{
    size_t n = (size_t)s->n;
    memcpy(slot, s->q, n * sizeof(double));
    memcpy(slot + n, s->x, 3 * n * sizeof(double));
    memcpy(slot + 4 * n, s->v, 3 * n * sizeof(double));
}

int sim_stream_states(int stream, uint32_t global_seed, int n, int frames, const long counts[3],
                      double *const states[3])
{
    if (!sim_stream_name(stream) || n < 2 || !counts || !states)
        return SIM_EARG;
    long total = 0;
    for (int k = 0; k < 3; k++) {
        if (counts[k] < 0 || (counts[k] > 0 && !states[k]) ||
            __builtin_add_overflow(total, counts[k], &total))
            return SIM_EARG;
    }
    if (stream == SIM_STREAM_EGNN && frames < 1)
        return SIM_EARG;
    if ((stream == SIM_STREAM_DISTINCT && total > SIM_SEED_RANGE) || total > INT_MAX)
        return SIM_EARG; /* sim_seeds counts in int */
    const int *order = sim_stream_order(stream);
    struct sim_system s;
    int st = sim_system_init(&s, SIM_CHARGED, n);
    if (st != SIM_OK)
        return st;
    struct sim_rng *r = malloc(sizeof *r);
    uint32_t *seeds = NULL;
    if (!r) {
        sim_system_free(&s);
        return SIM_ENOMEM;
    }
    if (stream == SIM_STREAM_DISTINCT || stream == SIM_STREAM_CLOFNET) {
        /* the parent draws every seed before any trajectory runs (sim_seeds) */
        seeds = malloc(sizeof *seeds * (size_t)(total > 0 ? total : 1));
        st = seeds ? sim_seeds(global_seed, (int)total, stream == SIM_STREAM_CLOFNET, seeds)
                   : SIM_ENOMEM;
    }
    sim_rng_seed(r, global_seed);
    /* noise: randn(frames, 3, n) for loc, then the same for vel, though the variance is 0 */
    size_t noise = 2 * (size_t)frames * 3 * (size_t)n;
    long t = 0;
    for (int o = 0; o < 3 && st == SIM_OK; o++) {
        int split = order[o];
        for (long k = 0; k < counts[split]; k++, t++) {
            switch (stream) {
            case SIM_STREAM_DISTINCT:
            case SIM_STREAM_CLOFNET:
                sim_initial_state(&s, seeds[t]);
                break;
            case SIM_STREAM_CLOFNET_SERIAL:
                /* choice(list(range(1000000))) from the global stream, which the trajectory
                 * then reseeds and draws from */
                sim_rng_seed(r, (uint32_t)sim_rng_bounded(r, SIM_SEED_RANGE - 1));
                sim_initial_state_rng(&s, r);
                break;
            default: /* SIM_STREAM_EGNN */
                sim_initial_state_rng(&s, r);
                sim_rng_skip_randn(r, noise);
                break;
            }
            store(&s, states[split] + (size_t)k * SIM_STATE_DOUBLES(n));
        }
    }
    free(seeds);
    free(r);
    sim_system_free(&s);
    return st;
}
