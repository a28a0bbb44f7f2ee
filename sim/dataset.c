/* dataset.c: whole trajectories and datasets from per-trajectory seeds, in the
 * reference's layout, generated in parallel with results independent of threads. */
#include "sim.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

int sim_trajectory(int kind, int n, int length, int sample_freq, uint32_t seed,
                   double *loc, double *vel, double *edges, double *charges)
{
    struct sim_system s;
    int st = sim_system_init(&s, kind, n);
    if (st != SIM_OK)
        return st;
    sim_initial_state(&s, seed);
    for (int i = 0; i < n; i++) {
        if (charges)
            charges[i] = s.q[i];
        if (edges)
            for (int j = 0; j < n; j++)
                edges[(size_t)i * n + j] = s.q[i] * s.q[j];
    }
    st = sim_run(&s, length, sample_freq, loc, vel);
    sim_system_free(&s);
    return st;
}

int sim_generate(int kind, int n, int length, int sample_freq, long count,
                 const uint32_t *seeds, int threads, double *loc, double *vel,
                 double *edges, double *charges, sim_progress_fn progress, void *ctx)
{
    int frames = sim_frame_count(length, sample_freq);
    if (frames < 1 || n < 2 || count < 0 || !sim_kind_name(kind))
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
            int st = sim_trajectory(kind, n, length, sample_freq, seeds[t],
                                    loc ? loc + t * traj : NULL, vel ? vel + t * traj : NULL,
                                    edges ? edges + (size_t)t * n * n : NULL,
                                    charges ? charges + (size_t)t * n : NULL);
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
