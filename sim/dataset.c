/* dataset.c: whole trajectories and datasets from per-trajectory seeds, in the
 * reference's layout, generated in parallel with results independent of threads. */
#include "sim.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Edges q q^T (diagonal 1, as the reference writes it) and charges of a system. */
static void write_charges(const struct sim_system *s, double *edges, double *charges)
{
    int n = s->n;
    for (int i = 0; i < n; i++) {
        if (charges)
            charges[i] = s->q[i];
        if (edges)
            for (int j = 0; j < n; j++)
                edges[(size_t)i * n + j] = s->q[i] * s->q[j];
    }
}

int sim_trajectory(int kind, int n, int length, int sample_freq, uint32_t seed,
                   double *loc, double *vel, double *edges, double *charges)
{
    struct sim_system s;
    int st = sim_system_init(&s, kind, n);
    if (st != SIM_OK)
        return st;
    sim_initial_state(&s, seed);
    write_charges(&s, edges, charges);
    st = sim_run(&s, length, sample_freq, loc, vel);
    sim_system_free(&s);
    return st;
}

/* One trajectory from its initial state (q, x, v; SIM_STATE_DOUBLES(n)). */
static int trajectory_from_state(int kind, int n, int length, int sample_freq, int unsoftened,
                                 const double *state, double *loc, double *vel, double *edges,
                                 double *charges)
{
    struct sim_system s;
    int st = sim_system_init(&s, kind, n);
    if (st != SIM_OK)
        return st;
    s.unsoftened = unsoftened;
    memcpy(s.q, state, (size_t)n * sizeof(double));
    memcpy(s.x, state + n, 3 * (size_t)n * sizeof(double));
    memcpy(s.v, state + 4 * (size_t)n, 3 * (size_t)n * sizeof(double));
    write_charges(&s, edges, charges);
    st = sim_run(&s, length, sample_freq, loc, vel);
    sim_system_free(&s);
    return st;
}

/* Both entry points: trajectory t from seeds[t] or from states + t * SIM_STATE_DOUBLES(n). */
static int generate(int kind, int n, int length, int sample_freq, int unsoftened, long count,
                    const uint32_t *seeds, const double *states, int threads, double *loc,
                    double *vel, double *edges, double *charges, sim_progress_fn progress,
                    void *ctx)
{
    int frames = sim_frame_count(length, sample_freq);
    if (frames < 1 || n < 2 || count < 0 || !sim_kind_name(kind) ||
        (count > 0 && !seeds && !states))
        return SIM_EARG;
    size_t traj = (size_t)frames * 3 * n;
    long done = 0;
    int status = SIM_OK;
    if (threads <= 0)
        threads = omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 4)
        for (long t = 0; t < count; t++) {
            double *l = loc ? loc + t * traj : NULL, *v = vel ? vel + t * traj : NULL;
            double *e = edges ? edges + (size_t)t * n * n : NULL;
            double *c = charges ? charges + (size_t)t * n : NULL;
            int st = seeds ? sim_trajectory(kind, n, length, sample_freq, seeds[t], l, v, e, c)
                           : trajectory_from_state(kind, n, length, sample_freq, unsoftened,
                                                   states + (size_t)t * SIM_STATE_DOUBLES(n),
                                                   l, v, e, c);
            long d;
#pragma omp atomic capture
            d = ++done;
            if (st != SIM_OK) {
#pragma omp atomic write
                status = st;
            }
            if (progress && omp_get_thread_num() == 0)
                progress(ctx, d, count);
        }
    }
    if (progress)
        progress(ctx, count, count);
    return status;
}

int sim_generate(int kind, int n, int length, int sample_freq, long count,
                 const uint32_t *seeds, int threads, double *loc, double *vel,
                 double *edges, double *charges, sim_progress_fn progress, void *ctx)
{
    if (count > 0 && !seeds)
        return SIM_EARG;
    return generate(kind, n, length, sample_freq, 0, count, seeds, NULL, threads, loc, vel,
                    edges, charges, progress, ctx);
}

int sim_generate_states(int kind, int n, int length, int sample_freq, int unsoftened,
                        long count, const double *states, int threads, double *loc,
                        double *vel, double *edges, double *charges, sim_progress_fn progress,
                        void *ctx)
{
    if (count > 0 && !states)
        return SIM_EARG;
    return generate(kind, n, length, sample_freq, unsoftened != 0, count, NULL, states,
                    threads, loc, vel, edges, charges, progress, ctx);
}
