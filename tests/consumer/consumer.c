/* consumer.c: a program outside the tree, built against the installed libraries only: it
 * generates a small dataset with the simulator and steps the shipped learned integrator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "clofnet.h"
#include "sim.h"

#define TRAJ 16
#define BODIES 5
#define LENGTH 5000
#define FREQ 100

/* usage: consumer STEP_MODEL.ckpt OUT.npy: writes the trajectories' positions, then checks that
 * one learned step from frame 0 beats the constant-velocity guess x + v t on every trajectory
 * taken together; exit 0 when it does, 1 otherwise. */
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: consumer STEP_MODEL.ckpt OUT.npy\n");
        return 2;
    }
    const int frames = sim_frame_count(LENGTH, FREQ);
    const size_t per = (size_t)frames * 3 * BODIES;
    double *loc = malloc(TRAJ * per * sizeof *loc), *vel = malloc(TRAJ * per * sizeof *vel);
    double edges[BODIES * BODIES], q[TRAJ][BODIES];
    uint32_t seeds[TRAJ];
    if (!loc || !vel || sim_seeds(43, TRAJ, 0, seeds) != SIM_OK)
        return 1;
    for (int t = 0; t < TRAJ; t++)
        if (sim_trajectory(SIM_CHARGED, BODIES, LENGTH, FREQ, seeds[t], loc + t * per,
                           vel + t * per, edges, q[t]) != SIM_OK)
            return 1;
    char err[CN_ERRLEN > SIM_ERRLEN ? CN_ERRLEN : SIM_ERRLEN];
    const int64_t shape[4] = {TRAJ, frames, 3, BODIES};
    if (sim_npy_write(argv[2], SIM_NPY_F8, 4, shape, loc, err) != SIM_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    struct cn_model *m;
    if (cn_model_load(argv[1], &m, err) != CN_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    struct cn_model_info info;
    cn_model_get_info(m, &info);
    if (info.task != CN_TASK_STEP || info.horizon_steps != FREQ) {
        fprintf(stderr, "consumer: %s is not a learned integrator of %d steps\n", argv[1], FREQ);
        return 1;
    }
    double e_model = 0, e_cv = 0;
    for (int t = 0; t < TRAJ; t++) {
        double x[3 * BODIES], v[3 * BODIES];
        const double *x0 = loc + t * per, *v0 = vel + t * per, *x1 = x0 + 3 * BODIES;
        for (int k = 0; k < 3 * BODIES; k++)
            x[k] = x0[k], v[k] = v0[k];
        if (cn_integrator_step(m, BODIES, q[t], x, v) != CN_OK) {
            fprintf(stderr, "consumer: the integrator failed\n");
            return 1;
        }
        for (int k = 0; k < 3 * BODIES; k++) {
            e_model += (x[k] - x1[k]) * (x[k] - x1[k]);
            const double cv = x0[k] + v0[k] * SIM_DT * FREQ;
            e_cv += (cv - x1[k]) * (cv - x1[k]);
        }
    }
    e_model /= TRAJ * 3 * BODIES;
    e_cv /= TRAJ * 3 * BODIES;
    printf("consumer: %d trajectories, one step of %d: MSE learned %.3g, constant velocity %.3g\n",
           TRAJ, FREQ, e_model, e_cv);
    cn_model_free(m);
    free(loc);
    free(vel);
    return isfinite(e_model) && e_model < e_cv ? 0 : 1;
}
