/* learned.c: the viewer's only contact with model/: load a ClofNet checkpoint through
 * clofnet.h, check that it is a learned integrator, and wrap its step as a viz_stepper. */
#include "viz.h"

#include "clofnet.h"

#include <stdio.h>
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
    if (info.task != CN_TASK_STEP) {
        snprintf(err, VIZ_ERRLEN,
                 "model '%s' predicts frame-40 positions (task %d), not a learned integrator: "
                 "the viewer needs a step model such as step-charged5.ckpt",
                 path, info.task);
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
