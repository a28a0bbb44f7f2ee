/* nbody_eval.c: nbody-eval, the MSE of a trained ClofNet checkpoint on one split of a dataset,
 * with its spread over samples; --json prints one JSON object (a thin main over the library). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clofnet.h"
#include "eval_rollout.h"
#include "sim.h"

/* Print the usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: nbody-eval --model CKPT --data DIR [--split test|valid|train] [--json]\n"
            "Mean squared error of a ClofNet checkpoint on a dataset split: position task,\n"
            "frame 30 -> 40 of every trajectory; step task, frame pairs k -> k+1 (positions +\n"
            "velocities). Also the spread over samples (std, standard error, quantiles).\n"
            "\n"
            "  --model CKPT     checkpoint written by nbody-train\n"
            "  --data DIR       dataset directory\n"
            "  --split S        test, valid or train [test]\n"
            "  --max-samples N  step task: pairs evaluated, spread over the split, 0 = all [0]\n"
            "  --threads N      threads [1]\n"
            "  --json           one line of JSON: {\"mse\": ..., ...}\n"
            "  --reflect-average  evaluate (f(x) + R f(R x)) / 2 with R the mirror x -> -x: the\n"
            "                   model made exactly E(3)-equivariant (charged and static data)\n"
            "  --predictions F.npy  position task: write the predicted frame-40 positions of\n"
            "                   every trajectory, float64 [N, 3, n] like loc (for comparing\n"
            "                   with another implementation, e.g. scripts/check-torch.py)\n"
            "The evaluated split is compared with the data the model was trained on (recorded\n"
            "in checkpoints since version 2): when they are the same, a note says so.\n"
            "\n"
            "Rollout mode (step models): run the learned integrator free, fed only its own\n"
            "predictions, and compare with the ground truth and with x + v t:\n"
            "  --rollout K      model steps to roll out (K <= 48 - F)\n"
            "  --start F        dataset frame to start from [0]\n"
            "  --max-traj N     trajectories rolled out, 0 = the whole split [0]\n"
            "  --plot PREFIX    writes PREFIX.csv and PREFIX.png [rollout]\n"
            "  --project-energy after every learned step, rescale the velocities relative to\n"
            "                   the centroid's so that the total energy is the start frame's\n"
            "                   (energy is conserved in all three settings)\n"
            "  With --json: {\"clofnet\": [...], \"constant_velocity\": [...], ...}\n"
            "  --help           this text\n");
}

/* Parse an integer option in [lo, hi] or exit. */
static long parse_int(const char *name, const char *s, long lo, long hi)
{
    long v;
    if (sim_parse_long(s, lo, hi, &v) != SIM_OK) {
        fprintf(stderr, "nbody-eval: --%s '%s' must be an integer in %ld..%ld\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

/* qsort order of doubles. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The predicted frame-40 positions of every trajectory of sp as path, [count, 3, n] float64
 * axis-major like the dataset's loc; 0 or 1 with a message printed. */
static int write_predictions(struct cn_trainer *t, const struct cn_state *s,
                             const struct cn_split *sp, const char *path)
{
    const int n = sp->n, B = 128;
    const size_t nb = (size_t)n * 3;
    long idx[128];
    float *x = malloc(B * nb * sizeof *x), *v = malloc(B * nb * sizeof *v),
          *q = malloc((size_t)B * n * sizeof *q), *xo = malloc(B * nb * sizeof *xo);
    double *out = malloc((size_t)sp->count * nb * sizeof *out);
    int rc = 1;
    if (!x || !v || !q || !xo || !out) {
        fprintf(stderr, "nbody-eval: out of memory for the predictions\n");
        goto done;
    }
    for (long t0 = 0; t0 < sp->count; t0 += B) {
        int g = sp->count - t0 < B ? (int)(sp->count - t0) : B;
        for (int k = 0; k < g; k++)
            idx[k] = t0 + k;
        cn_gather(sp, CN_TASK_POSITION, idx, g, x, v, q, NULL, NULL);
        int st = cn_trainer_predict(t, s->param, g, x, v, q, NULL, NULL, NULL, xo, NULL, NULL);
        if (st != CN_OK) {
            fprintf(stderr, "nbody-eval: prediction failed: %s\n", cn_strerror(st));
            goto done;
        }
        for (int k = 0; k < g; k++) {
            double *dst = out + (size_t)(t0 + k) * nb;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < 3; c++)
                    dst[(size_t)c * n + i] = xo[(size_t)k * nb + 3 * i + c];
        }
    }
    const int64_t shape[3] = {sp->count, 3, n};
    char serr[SIM_ERRLEN];
    if (sim_npy_write(path, SIM_NPY_F8, 3, shape, out, serr) != SIM_OK) {
        fprintf(stderr, "nbody-eval: %s\n", serr);
        goto done;
    }
    rc = 0;
done:
    free(x);
    free(v);
    free(q);
    free(xo);
    free(out);
    return rc;
}

/* Ctrl-C, kill or hang-up: end now. The signal thread runs this only between the files the
 * rollout writes (sim_signals_hold), so no temporary of them is left. */
static void on_signal(int sig, void *user)
{
    (void)user;
    sim_signals_exit(sig);
}

/* Parse options, load model and split, print the MSE and its spread. */
int main(int argc, char **argv)
{
    cn_blas_reexec(argv); /* returns only when the BLAS kernels fit the CPU, or on failure */
    cn_fp_policy();       /* before any thread: subnormal floats flushed to zero */
    /* before any thread exists (OpenMP, BLAS), so that every thread has the signals blocked */
    if (sim_signals_start(on_signal, NULL) != SIM_OK) {
        fprintf(stderr, "nbody-eval: cannot set up the signal handling thread\n");
        return 1;
    }
    const char *model = NULL, *data = NULL, *split = "test";
    int json = 0, threads = 1, reflect = 0;
    long max_samples = 0, max_traj = 0;
    int rollout = 0, start = 0, project_energy = 0;
    const char *plot = "rollout", *predictions = NULL;
    static const struct option lo[] = {
        {"rollout", required_argument, 0, 'R'}, {"start", required_argument, 0, 'S'},
        {"max-traj", required_argument, 0, 'T'}, {"plot", required_argument, 0, 'P'},
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, 's'}, {"json", no_argument, 0, 'J'},
        {"threads", required_argument, 0, 'j'}, {"max-samples", required_argument, 0, 'n'},
        {"predictions", required_argument, 0, 'p'}, {"reflect-average", no_argument, 0, 'F'},
        {"project-energy", no_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'J': json = 1; break;
        case 'j': threads = (int)parse_int("threads", optarg, 1, 64); break;
        case 'n': max_samples = parse_int("max-samples", optarg, 0, 1L << 40); break;
        case 'R': rollout = (int)parse_int("rollout", optarg, 1, 100000); break;
        case 'S': start = (int)parse_int("start", optarg, 0, 100000); break;
        case 'T': max_traj = parse_int("max-traj", optarg, 0, 1L << 40); break;
        case 'P': plot = optarg; break;
        case 'p': predictions = optarg; break;
        case 'F': reflect = 1; break;
        case 'E': project_energy = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nbody-eval: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !data) {
        fprintf(stderr, "nbody-eval: --model CKPT and --data DIR are required (see --help)\n");
        return 2;
    }
    int which = strcmp(split, "test") == 0    ? CN_SPLIT_TEST
                : strcmp(split, "valid") == 0 ? CN_SPLIT_VALID
                : strcmp(split, "train") == 0 ? CN_SPLIT_TRAIN
                                              : 0;
    if (!which) {
        fprintf(stderr, "nbody-eval: --split '%s' must be test, valid or train\n", split);
        return 2;
    }
    if (rollout && reflect) {
        fprintf(stderr, "nbody-eval: --reflect-average is for the one-step evaluation, not for "
                "--rollout\n");
        return 2;
    }
    if (project_energy && !rollout) {
        fprintf(stderr, "nbody-eval: --project-energy acts on rollouts: give --rollout K\n");
        return 2;
    }
    if (rollout && predictions) {
        fprintf(stderr, "nbody-eval: --predictions is for the position task, not --rollout\n");
        return 2;
    }
    if (rollout) {
        struct eval_rollout_opts ro = {.model = model, .data = data, .split = split,
                                       .prefix = plot, .start = start, .steps = rollout,
                                       .threads = threads, .json = json, .max_traj = max_traj,
                                       .project_energy = project_energy};
        return eval_rollout(&ro);
    }
    char err[CN_ERRLEN];
    struct cn_model *m;
    if (cn_model_load(model, &m, err)) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        return 1;
    }
    const struct cn_state *s = cn_model_state(m);
    struct cn_data d;
    if (cn_data_load(data, which, 0, &d, err)) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        cn_model_free(m);
        return 1;
    }
    const struct cn_split *sp = which == CN_SPLIT_TEST ? &d.test
                                : which == CN_SPLIT_VALID ? &d.valid : &d.train;
    int rc = 1;
    double *mse = NULL;
    struct cn_trainer *t = NULL;
    /* refused as --rollout refuses it: a model is evaluated on the setting it learned */
    const struct cn_meta *meta = cn_model_meta(m);
    if (d.kind != meta->sim_kind) {
        fprintf(stderr, "nbody-eval: the model was trained on the %s setting but %s holds %s data\n",
                sim_kind_name(meta->sim_kind), data, sim_kind_name(d.kind));
        goto done;
    }
    long total = cn_task_samples(sp, s->cfg.task);
    if (total < 1) {
        fprintf(stderr, "nbody-eval: the %s split has no sample for this task (%d frames; the "
                "position task needs frame %d)\n", split, sp->frames, CN_FRAME_OUT);
        goto done;
    }
    if (cn_trainer_create(&s->cfg, 128, d.n, threads, &t, err)) {
        fprintf(stderr, "nbody-eval: %s\n", err);
        goto done;
    }
    mse = malloc((size_t)total * sizeof *mse);
    if (!mse) {
        fprintf(stderr, "nbody-eval: out of memory\n");
        goto done;
    }
    if (predictions && s->cfg.task != CN_TASK_POSITION) {
        fprintf(stderr, "nbody-eval: --predictions needs a position model; %s is a step model\n",
                model);
        goto done;
    }
    /* the split is the training data when its files are (checkpoints since version 2) */
    const int trained_on = meta->has_data && memcmp(meta->data_sha256, sp->sha256, 32) == 0;
    if (trained_on)
        fprintf(stderr, "nbody-eval: note: the %s split of %s is the data this model was trained "
                "on (its first %d trajectories): this MSE is a training error, not a test error\n",
                split, data, meta->data_count);
    if (predictions && write_predictions(t, s, sp, predictions) != 0)
        goto done;
    long cnt = 0;
    if (reflect && d.kind == SIM_DYNAMIC) {
        fprintf(stderr, "nbody-eval: --reflect-average: a mirror is no symmetry of the dynamic "
                "setting (the magnetic field is an axial vector fixed in the lab)\n");
        goto done;
    }
    int est = cn_eval_split_reflect(t, s->param, &s->cfg, sp, max_samples, reflect, mse, &cnt);
    if (est != CN_OK) {
        fprintf(stderr, "nbody-eval: evaluation failed: %s\n", cn_strerror(est));
        goto done;
    }
    double sum = 0, sq = 0;
    for (long k = 0; k < cnt; k++)
        sum += mse[k];
    double mean = sum / (double)cnt;
    for (long k = 0; k < cnt; k++)
        sq += (mse[k] - mean) * (mse[k] - mean);
    double sd = cnt > 1 ? sqrt(sq / (double)(cnt - 1)) : 0, se = sd / sqrt((double)cnt);
    if (!isfinite(mean)) {
        fprintf(stderr, "nbody-eval: the MSE is not finite (%g)\n", mean);
        goto done;
    }
    qsort(mse, (size_t)cnt, sizeof *mse, cmp_double);
    const double med = sim_quantile(mse, cnt, 0.5), p90 = sim_quantile(mse, cnt, 0.9);
    const char *task = s->cfg.task == CN_TASK_STEP ? "step" : "position";
    if (json)
        printf("{\"mse\": %.9g, \"std\": %.9g, \"stderr\": %.9g, \"median\": %.9g, \"p90\": %.9g, "
               "\"max\": %.9g, \"samples\": %ld, \"split\": \"%s\", \"task\": \"%s\", "
               "\"dataset\": \"%s\", \"n_params\": %ld, \"arch\": \"%s\", "
               "\"training_data\": %s}\n",
               mean, sd, se, med, p90, mse[cnt - 1], cnt, split, task, d.suffix, s->n_params,
               cn_arch_name(s->cfg.arch),
               trained_on ? "true" : meta->has_data ? "false" : "null");
    else
        printf("%s MSE %.6f over %ld samples (%s task): std %.6f, standard error %.6f, median "
               "%.6f, 90%% %.6f, max %.6f\n",
               split, mean, cnt, task, sd, se, med, p90, mse[cnt - 1]);
    rc = 0;
done:
    free(mse);
    cn_trainer_free(t);
    cn_data_free(&d);
    cn_model_free(m);
    return rc;
}
