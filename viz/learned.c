/* learned.c: the viewer's only contact with model/: load a checkpoint through clofnet.h (a
 * learned integrator or a frame-30 -> 40 position model) and wrap it as a viz_stepper; the
 * constant-velocity baseline; a dataset split for replay (cn_data_load). */
#include "viz.h"

#include "clofnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int viz_model_open(struct viz_model *vm, const char *path, char err[VIZ_ERRLEN])
{
    memset(vm, 0, sizeof *vm);
    char cerr[CN_ERRLEN] = "";
    struct cn_model *m = NULL;
    int rc = cn_model_load(path, &m, cerr);
    if (rc != 0 || !m) {
        snprintf(err, VIZ_ERRLEN, "cannot load model '%s': %s", path, cerr[0] ? cerr : "unknown error");
        if (m)
            cn_model_free(m);
        return VIZ_EMODEL;
    }
    struct cn_model_info info;
    memset(&info, 0, sizeof info);
    cn_model_get_info(m, &info);
    if (info.task != CN_TASK_STEP && info.task != CN_TASK_POSITION) {
        snprintf(err, VIZ_ERRLEN, "model '%s' has an unknown task %d", path, info.task);
        cn_model_free(m);
        return VIZ_EMODEL;
    }
    if (info.horizon_steps <= 0 || !sim_kind_name(info.sim_kind)) {
        snprintf(err, VIZ_ERRLEN, "model '%s' has an invalid horizon (%d steps) or setting (%d)", path,
                 info.horizon_steps, info.sim_kind);
        cn_model_free(m);
        return VIZ_EMODEL;
    }
    vm->model = m;
    vm->arch = info.arch;
    vm->position = info.task == CN_TASK_POSITION;
    vm->sim_kind = info.sim_kind;
    vm->n_bodies = info.n_bodies;
    vm->horizon_steps = info.horizon_steps;
    vm->n_params = info.n_params;
    snprintf(vm->path, sizeof vm->path, "%s", path);
    return VIZ_OK;
}

void viz_model_close(struct viz_model *vm)
{
    if (vm->model)
        cn_model_free(vm->model);
    memset(vm, 0, sizeof *vm);
}

/* viz_stepper callback: one cn_integrator_step. */
static int model_step(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN])
{
    struct viz_model *vm = ctx;
    int rc = cn_integrator_step(vm->model, n, q, x, v);
    if (rc != 0)
        snprintf(err, VIZ_ERRLEN, "cn_integrator_step: %s (status %d)", cn_strerror(rc), rc);
    return rc;
}

void viz_model_stepper(struct viz_model *vm, struct viz_stepper *out)
{
    out->step = model_step;
    out->ctx = vm;
    out->horizon = vm->horizon_steps;
}

const char *viz_model_arch_name(const struct viz_model *vm)
{
    return vm->arch == CN_ARCH_EGNN ? "EGNN" : "ClofNet";
}

/* viz_stepper callback of the baseline: x += v t over VIZ_BASELINE_HORIZON steps, v kept. */
static int baseline_step(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN])
{
    (void)ctx, (void)q, (void)err;
    for (int k = 0; k < 3 * n; k++)
        x[k] += v[k] * (VIZ_BASELINE_HORIZON * SIM_DT);
    return 0;
}

void viz_baseline_stepper(struct viz_stepper *out)
{
    out->step = baseline_step;
    out->ctx = NULL;
    out->horizon = VIZ_BASELINE_HORIZON;
}

int viz_dataset_load(struct viz_dataset *d, const char *dir, const char *split, char err[VIZ_ERRLEN])
{
    memset(d, 0, sizeof *d);
    int which = !strcmp(split, "train") ? CN_SPLIT_TRAIN : !strcmp(split, "valid") ? CN_SPLIT_VALID
              : !strcmp(split, "test")  ? CN_SPLIT_TEST : 0;
    if (!which) {
        snprintf(err, VIZ_ERRLEN, "--split '%.100s': expected train, valid or test", split);
        return VIZ_EARG;
    }
    struct cn_data data;
    char cerr[CN_ERRLEN] = "";
    int rc = cn_data_load(dir, which, 0, &data, cerr);
    if (rc != CN_OK) {
        snprintf(err, VIZ_ERRLEN, "cannot replay dataset '%.300s': %s", dir, cerr[0] ? cerr : cn_strerror(rc));
        return rc == CN_EIO ? VIZ_EIO : rc == CN_ENOMEM ? VIZ_ENOMEM : VIZ_EFORMAT;
    }
    struct cn_split *sp = which == CN_SPLIT_TRAIN ? &data.train : which == CN_SPLIT_VALID ? &data.valid : &data.test;
    if (sp->count < 1 || sp->frames < 2) {
        snprintf(err, VIZ_ERRLEN, "cannot replay dataset '%.300s': its %s split has %d trajectories of %d frames "
                 "(need 1 of 2 at least)", dir, split, sp->count, sp->frames);
        cn_data_free(&data);
        return VIZ_EFORMAT;
    }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    snprintf(d->split, sizeof d->split, "%s", split);
    d->kind = data.kind;
    d->n = data.n;
    d->count = sp->count;
    d->frames = sp->frames;
    /* Take the split's arrays over; the other splits were only checked, not loaded. */
    d->loc = sp->loc, d->vel = sp->vel, d->q = sp->q;
    sp->loc = sp->vel = sp->q = NULL;
    cn_data_free(&data);
    return VIZ_OK;
}

void viz_dataset_free(struct viz_dataset *d)
{
    free(d->loc);
    free(d->vel);
    free(d->q);
    memset(d, 0, sizeof *d);
}
