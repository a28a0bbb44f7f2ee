/* train.c: the training loop of nbody-train (the paper's protocol by default): shuffled
 * batches, AdamW + StepLR, validation, best-model checkpoint, loss history and exact resume. */
#include <dirent.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "internal.h"
#include "sim.h"

#define BLOB_VERSION 6 /* 5: before the first-step weight; 4: before the energy term; 3: before warm-up, one-cycle, clipping,
                          reflection averaging; 2: before rollout-aware training (all still read) */

/* Defaults: the paper's ES(5) protocol. */
void cn_train_opts_default(struct cn_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->task = CN_TASK_POSITION;
    o->hidden = 64;
    o->layers = 4;
    o->epochs = 400;
    o->batch = 128;
    o->max_train = 3000;
    o->lr = 0.01;
    o->weight_decay = 1e-12;
    o->gamma = 0.9;
    o->lr_step = 0;
    o->val_every = 5;
    o->seed = 1;
    o->threads = 0;
    o->pairs_per_epoch = 20000;
    o->eval_pairs = 10000;
    o->traj_step = 100;
    o->stop_after = 0;
    o->reflect = 0;
    o->cosine = 0;
    o->lr_min = 0;
    o->ema = 0;
    o->no_field = 0;
    o->unroll = 1;
    o->pushforward = 0;
    o->input_noise = 0;
    o->unroll_first = 1;
    o->momentum = 0;
    o->val_rollout = 0;
    o->unroll_every = 0;
    o->warmup = 0;
    o->one_cycle = 0;
    o->clip = 0;
    o->reflect_avg = 0;
}

/* --------------------------------------------- resume record (blob) */

/* A growable little-endian byte buffer. */
struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int bad;
};

/* Append bytes, growing the buffer. */
static void w_bytes(struct wbuf *b, const void *src, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
/* Append a little-endian 64-bit integer. */
static void w_u64(struct wbuf *b, uint64_t v)
{
    unsigned char t[8];
    for (int k = 0; k < 8; k++)
        t[k] = (unsigned char)(v >> (8 * k));
    w_bytes(b, t, 8);
}
/* Append a signed integer as 64 bits. */
static void w_i(struct wbuf *b, long v) { w_u64(b, (uint64_t)(int64_t)v); }
/* Append a double as its 64 bits. */
static void w_f(struct wbuf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    w_u64(b, v);
}

/* Reader over a blob; sets bad on overrun. */
struct rbuf {
    const unsigned char *p;
    size_t len, off;
    int bad;
};
/* Read a little-endian 64-bit integer. */
static uint64_t r_u64(struct rbuf *b)
{
    if (b->bad || b->off + 8 > b->len) {
        b->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)b->p[b->off + k] << (8 * k);
    b->off += 8;
    return v;
}
/* Read a signed integer written by w_i. */
static long r_i(struct rbuf *b) { return (long)(int64_t)r_u64(b); }
/* Read a double written by w_f. */
static double r_f(struct rbuf *b)
{
    uint64_t v = r_u64(b);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* Everything besides parameters and moments that an exact resume needs. */
struct record {
    struct cn_train_opts o;
    char suffix[256];
    int train_count, n;
    int next_epoch;
    struct sim_rng rng;
    double best_val, best_test;
    int best_epoch;
    int hist_len;
    struct cn_epoch_record *hist; /* o.epochs entries */
    long n_ema;                   /* parameters in ema (0 when off) */
    float *ema;                   /* moving average of the parameters */
};

/* Serialise a record. */
static int record_pack(const struct record *r, struct wbuf *b)
{
    const struct cn_train_opts *o = &r->o;
    w_i(b, BLOB_VERSION);
    w_i(b, o->task);
    w_i(b, o->hidden);
    w_i(b, o->layers);
    w_i(b, o->epochs);
    w_i(b, o->batch);
    w_i(b, o->max_train);
    w_f(b, o->lr);
    w_f(b, o->weight_decay);
    w_f(b, o->gamma);
    w_i(b, o->lr_step);
    w_i(b, o->val_every);
    w_i(b, (long)o->seed);
    w_i(b, o->threads);
    w_i(b, o->pairs_per_epoch);
    w_i(b, o->eval_pairs);
    w_i(b, o->traj_step);
    w_i(b, o->reflect);
    w_i(b, o->cosine);
    w_f(b, o->lr_min);
    w_f(b, o->ema);
    w_i(b, o->no_field);
    w_i(b, o->unroll);
    w_i(b, o->pushforward);
    w_f(b, o->input_noise);
    w_i(b, o->momentum);
    w_i(b, o->val_rollout);
    w_i(b, o->unroll_every);
    w_i(b, o->warmup);
    w_i(b, o->one_cycle);
    w_f(b, o->clip);
    w_i(b, o->reflect_avg);
    w_f(b, o->energy_weight);
    w_f(b, o->unroll_first);
    w_bytes(b, r->suffix, sizeof r->suffix);
    w_i(b, r->train_count);
    w_i(b, r->n);
    w_i(b, r->next_epoch);
    for (int k = 0; k < 624; k++)
        w_i(b, (long)r->rng.mt[k]);
    w_i(b, r->rng.pos);
    w_i(b, r->rng.has_gauss);
    w_f(b, r->rng.gauss);
    w_f(b, r->best_val);
    w_f(b, r->best_test);
    w_i(b, r->best_epoch);
    w_i(b, r->hist_len);
    for (int k = 0; k < r->hist_len; k++) {
        const struct cn_epoch_record *h = &r->hist[k];
        w_i(b, h->epoch);
        w_f(b, h->train_loss);
        w_f(b, h->val_mse);
        w_f(b, h->test_mse);
        w_f(b, h->lr);
        w_f(b, h->seconds);
        w_f(b, h->val_rollout);
        w_f(b, h->clipped);
    }
    w_i(b, r->n_ema);
    for (long k = 0; k < r->n_ema; k++) {
        uint32_t u;
        memcpy(&u, &r->ema[k], 4);
        w_i(b, (long)u);
    }
    return b->bad ? CN_ENOMEM : CN_OK;
}

/* Parse a record; hist is allocated for o.epochs entries. */
static int record_unpack(struct record *r, const void *blob, size_t len)
{
    struct rbuf b = {blob, len, 0, 0};
    memset(r, 0, sizeof *r);
    const long version = r_i(&b);
    if (version < 2 || version > BLOB_VERSION)
        return CN_EFORMAT;
    const size_t hist_bytes = version >= 4 ? 64 : version >= 3 ? 56 : 48; /* per entry */
    struct cn_train_opts *o = &r->o;
    cn_train_opts_default(o);
    o->task = (int)r_i(&b);
    o->hidden = (int)r_i(&b);
    o->layers = (int)r_i(&b);
    o->epochs = (int)r_i(&b);
    o->batch = (int)r_i(&b);
    o->max_train = (int)r_i(&b);
    o->lr = r_f(&b);
    o->weight_decay = r_f(&b);
    o->gamma = r_f(&b);
    o->lr_step = (int)r_i(&b);
    o->val_every = (int)r_i(&b);
    o->seed = (uint32_t)r_i(&b);
    o->threads = (int)r_i(&b);
    o->pairs_per_epoch = r_i(&b);
    o->eval_pairs = r_i(&b);
    o->traj_step = (int)r_i(&b);
    o->reflect = (int)r_i(&b);
    o->cosine = (int)r_i(&b);
    o->lr_min = r_f(&b);
    o->ema = r_f(&b);
    o->no_field = (int)r_i(&b);
    if (version >= 3) {
        o->unroll = (int)r_i(&b);
        o->pushforward = (int)r_i(&b);
        o->input_noise = r_f(&b);
        o->momentum = (int)r_i(&b);
        o->val_rollout = (int)r_i(&b);
        o->unroll_every = (int)r_i(&b);
    }
    if (version >= 4) {
        o->warmup = (int)r_i(&b);
        o->one_cycle = (int)r_i(&b);
        o->clip = r_f(&b);
        o->reflect_avg = (int)r_i(&b);
    }
    if (version >= 5)
        o->energy_weight = r_f(&b);
    if (version >= 6)
        o->unroll_first = r_f(&b);
    if (b.bad || b.off + sizeof r->suffix > len)
        return CN_EFORMAT;
    memcpy(r->suffix, b.p + b.off, sizeof r->suffix);
    r->suffix[sizeof r->suffix - 1] = '\0';
    b.off += sizeof r->suffix;
    r->train_count = (int)r_i(&b);
    r->n = (int)r_i(&b);
    r->next_epoch = (int)r_i(&b);
    for (int k = 0; k < 624; k++)
        r->rng.mt[k] = (uint32_t)r_i(&b);
    r->rng.pos = (int)r_i(&b);
    r->rng.has_gauss = (int)r_i(&b);
    r->rng.gauss = r_f(&b);
    r->best_val = r_f(&b);
    r->best_test = r_f(&b);
    r->best_epoch = (int)r_i(&b);
    r->hist_len = (int)r_i(&b);
    /* epochs as nbody-train accepts them; the history's bytes (hist_bytes an entry) must be
     * there before anything is allocated for it */
    if (b.bad || o->epochs < 1 || o->epochs > 1000000 || r->hist_len < 0 ||
        r->hist_len > o->epochs || r->next_epoch < 0 || r->next_epoch > o->epochs ||
        r->rng.pos < 0 || r->rng.pos > 624 || (size_t)r->hist_len > (len - b.off) / hist_bytes)
        return CN_EFORMAT;
    r->hist = calloc((size_t)o->epochs, sizeof *r->hist);
    if (!r->hist)
        return CN_ENOMEM;
    for (int k = 0; k < r->hist_len; k++) {
        struct cn_epoch_record *h = &r->hist[k];
        h->epoch = (int)r_i(&b);
        h->train_loss = r_f(&b);
        h->val_mse = r_f(&b);
        h->test_mse = r_f(&b);
        h->lr = r_f(&b);
        h->seconds = r_f(&b);
        h->val_rollout = version >= 3 ? r_f(&b) : NAN;
        h->clipped = version >= 4 ? r_f(&b) : NAN;
    }
    r->n_ema = r_i(&b);
    if (b.bad || r->n_ema < 0 || (size_t)r->n_ema > len / 8) {
        free(r->hist);
        r->hist = NULL;
        return CN_EFORMAT;
    }
    if (r->n_ema > 0) {
        r->ema = malloc((size_t)r->n_ema * sizeof(float));
        if (!r->ema) {
            free(r->hist);
            r->hist = NULL;
            return CN_ENOMEM;
        }
        for (long k = 0; k < r->n_ema; k++) {
            uint32_t u = (uint32_t)r_i(&b);
            memcpy(&r->ema[k], &u, 4);
        }
    }
    if (b.bad || b.off != len) {
        free(r->hist);
        free(r->ema);
        r->hist = NULL;
        r->ema = NULL;
        return CN_EFORMAT;
    }
    return CN_OK;
}

/* ------------------------------------------------------------- helpers */

/* Monotonic clock in seconds. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Write the loss history CSV atomically. */
static int write_csv(const char *path, const struct record *r, char err[CN_ERRLEN])
{
    struct sim_atomic a;
    char serr[SIM_ERRLEN];
    if (sim_atomic_open(&a, path, serr) != SIM_OK)
        return cn_fail(err, CN_EIO, "cannot write %s", serr);
    FILE *f = a.f;
    /* the rollout and clipping columns only where they are computed */
    const int ro = r->o.val_rollout > 0, cl = r->o.clip > 0;
    fprintf(f, "epoch,train_loss,val_mse,test_mse,lr,seconds%s%s\n", ro ? ",val_rollout" : "",
            cl ? ",clipped" : "");
    for (int k = 0; k < r->hist_len; k++) {
        const struct cn_epoch_record *h = &r->hist[k];
        fprintf(f, "%d,%.9g,", h->epoch, h->train_loss);
        if (!isnan(h->val_mse))
            fprintf(f, "%.9g", h->val_mse);
        fprintf(f, ",");
        if (!isnan(h->test_mse))
            fprintf(f, "%.9g", h->test_mse);
        fprintf(f, ",%.9g,%.4f", h->lr, h->seconds);
        if (ro) {
            fprintf(f, ",");
            if (!isnan(h->val_rollout))
                fprintf(f, "%.9g", h->val_rollout);
        }
        if (cl)
            fprintf(f, ",%.6g", h->clipped);
        fprintf(f, "\n");
    }
    /* the commit sees a failed fprintf through ferror and removes the temporary */
    if (sim_atomic_commit(&a, serr) != SIM_OK)
        return cn_fail(err, CN_EIO, "cannot write %s", serr);
    return CN_OK;
}

/* The network config a run trains: the task's defaults, the widths, and for the STEP task
 * on a setting with an external field, that field as a lab-frame vector. */
static void run_config(const struct cn_train_opts *o, int kind, struct cn_config *c)
{
    cn_config_default(c, o->task);
    c->arch = o->arch;
    c->hidden = o->hidden;
    c->layers = o->layers;
    /* EGNN is E(3)-equivariant: a lab-frame vector has no place in it (its step model leaves
     * the field to the momentum projection, where the field is exact) */
    const int sees_field = !o->no_field && o->arch == CN_ARCH_CLOFNET &&
                           (o->task == CN_TASK_STEP || o->field_input);
    if (!sees_field) {
        /* the paper's position task, or the ablation: the network does not see the field */
    } else if (kind == SIM_STATIC) {
        c->has_field = 1; /* gravity along +z, given as a unit vector */
        c->field[2] = 1.0;
    } else if (kind == SIM_DYNAMIC) {
        c->has_field = 1; /* the magnetic field B itself */
        c->field[0] = c->field[1] = c->field[2] = SIM_BFIELD;
    }
    char err[CN_ERRLEN]; /* check_opts has refused what this could refuse */
    cn_config_set_momentum(c, o->momentum, kind, o->traj_step, err);
    c->reflect_avg = o->reflect_avg;
}

/* Training samples of a split: trajectories (POSITION), or every start frame of a run of
 * `unroll` steps (STEP; unroll 1: the pairs of cn_task_samples, in the same order). */
static long train_samples(const struct cn_split *sp, const struct cn_train_opts *o)
{
    if (o->task != CN_TASK_STEP)
        return cn_task_samples(sp, o->task);
    return (long)sp->count * (sp->frames - o->unroll);
}

/* Gather STEP samples for K chained steps: sample s starts at frame s % (F - K) of trajectory
 * s / (F - K); targets [K][graphs n 3] are frames f0 + 1 .. f0 + K. */
static void gather_unroll(const struct cn_split *sp, const long *idx, int graphs, int K, float *x,
                          float *v, float *q, float *xt, float *vt)
{
    const int n = sp->n, F = sp->frames;
    const size_t nb = (size_t)n * 3, stride = (size_t)graphs * nb;
    for (int g = 0; g < graphs; g++) {
        const long t = idx[g] / (F - K);
        const int f0 = (int)(idx[g] % (F - K));
        const float *L = sp->loc + (size_t)t * F * nb, *V = sp->vel + (size_t)t * F * nb;
        memcpy(x + g * nb, L + f0 * nb, nb * sizeof(float));
        memcpy(v + g * nb, V + f0 * nb, nb * sizeof(float));
        memcpy(q + (size_t)g * n, sp->q + (size_t)t * n, (size_t)n * sizeof(float));
        for (int k = 0; k < K; k++) {
            memcpy(xt + k * stride + g * nb, L + (f0 + 1 + k) * nb, nb * sizeof(float));
            memcpy(vt + k * stride + g * nb, V + (f0 + 1 + k) * nb, nb * sizeof(float));
        }
    }
}

/* The rollout validation error of a model (see cn_train_opts.val_rollout): +Inf when a
 * rollout leaves the finite numbers (a diverging model is the worst, not an error). */
static int rollout_error(struct cn_trainer *tr, const struct cn_state *model,
                         const struct cn_meta *meta, const struct cn_split *sp, long trajectories,
                         double *out, char err[CN_ERRLEN])
{
    const int starts[] = CN_VAL_ROLLOUT_STARTS;
    double sum = 0;
    for (int k = 0; k < CN_VAL_ROLLOUT_NSTARTS; k++) {
        struct cn_rollout ro;
        int st = cn_rollout_run(tr, model, meta, sp, starts[k], CN_VAL_ROLLOUT_STEPS,
                                trajectories, &ro, NULL, NULL, err);
        if (st == CN_EDATA) {
            *out = INFINITY;
            return CN_OK;
        }
        if (st)
            return st;
        for (int h = 0; h < CN_VAL_ROLLOUT_STEPS; h++)
            sum += ro.mse_model[h];
        cn_rollout_free(&ro);
    }
    *out = sum / (CN_VAL_ROLLOUT_NSTARTS * CN_VAL_ROLLOUT_STEPS);
    return CN_OK;
}

/* Check options against the data. */
static int check_opts(const struct cn_train_opts *o, const struct cn_data *d, char err[CN_ERRLEN])
{
    if (o->task != CN_TASK_POSITION && o->task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "unknown task %d", o->task);
    if (!cn_arch_name(o->arch))
        return cn_fail(err, CN_EARG, "unknown architecture %d", o->arch);
    if (o->field_input && o->arch != CN_ARCH_CLOFNET)
        return cn_fail(err, CN_EARG, "the field input is implemented for ClofNet only");
    if (o->field_input && o->no_field)
        return cn_fail(err, CN_EARG, "--field-input and --no-field exclude each other");
    if (o->field_input && d->kind == SIM_CHARGED)
        return cn_fail(err, CN_EARG, "the charged setting has no external field to give as an "
                       "input (--field-input is for static and dynamic data)");
    const int step = o->task == CN_TASK_STEP;
    if (o->unroll < 1 || o->unroll > CN_MAX_UNROLL)
        return cn_fail(err, CN_EARG, "unroll %d must be in 1..%d", o->unroll, CN_MAX_UNROLL);
    if (o->unroll > 1 && !step)
        return cn_fail(err, CN_EARG, "--unroll chains learned steps: it needs --task step");
    if (o->pushforward != 0 && o->pushforward != 1)
        return cn_fail(err, CN_EARG, "pushforward must be 0 or 1");
    if (!(o->energy_weight >= 0) || !isfinite(o->energy_weight))
        return cn_fail(err, CN_EARG, "energy weight must be finite and >= 0");
    if (o->energy_weight > 0 && !step)
        return cn_fail(err, CN_EARG, "--energy-weight is for step models (--task step)");
    if (!(o->unroll_first > 0) || !isfinite(o->unroll_first))
        return cn_fail(err, CN_EARG, "the first-step weight must be finite and > 0");
    if (o->unroll_first != 1 && (o->unroll < 2 || o->pushforward))
        return cn_fail(err, CN_EARG, "--unroll-first weighs the first of several chained steps: "
                       "it needs --unroll 2 or more, without --pushforward");
    if (o->pushforward && o->unroll < 2)
        return cn_fail(err, CN_EARG, "--pushforward needs --unroll 2 or more");
    if (o->unroll_every < 0 || (o->unroll_every > 0 && o->unroll < 2))
        return cn_fail(err, CN_EARG, "--unroll-every needs --unroll 2 or more");
    if (!(o->input_noise >= 0) || !isfinite(o->input_noise))
        return cn_fail(err, CN_EARG, "input noise must be finite and >= 0");
    if (o->input_noise > 0 && !step)
        return cn_fail(err, CN_EARG, "--input-noise is for step models (--task step)");
    if (o->momentum != 0 && o->momentum != 1)
        return cn_fail(err, CN_EARG, "momentum must be 0 or 1");
    if (o->momentum && !step)
        return cn_fail(err, CN_EARG, "--project-momentum is for step models (--task step)");
    if (o->val_rollout < 0)
        return cn_fail(err, CN_EARG, "rollout validation trajectories must be >= 0");
    if (o->val_rollout > 0 && !step)
        return cn_fail(err, CN_EARG, "--val-rollout needs a step model (--task step)");
    if (o->epochs < 1 || o->epochs > 1000000)
        return cn_fail(err, CN_EARG, "epochs %d must be in 1..1000000", o->epochs);
    if (o->batch < 1 || o->batch > 65536)
        return cn_fail(err, CN_EARG, "batch %d must be in 1..65536", o->batch);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return cn_fail(err, CN_EARG, "learning rate must be > 0");
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return cn_fail(err, CN_EARG, "weight decay must be >= 0");
    if (!(o->gamma > 0) || !(o->gamma <= 1))
        return cn_fail(err, CN_EARG, "gamma must be in (0, 1]");
    if (o->lr_step < 0 || o->val_every < 1)
        return cn_fail(err, CN_EARG, "lr step must be >= 0 and validation period >= 1");
    if (o->threads < 0 || o->threads > 64)
        return cn_fail(err, CN_EARG, "threads %d must be in 0..64", o->threads);
    if (o->traj_step < 1)
        return cn_fail(err, CN_EARG, "steps per frame must be >= 1");
    if (o->reflect != 0 && o->reflect != 1)
        return cn_fail(err, CN_EARG, "reflect must be 0 or 1");
    if (o->reflect && d->kind != SIM_CHARGED)
        return cn_fail(err, CN_EARG, "reflection augmentation needs mirror-symmetric physics: "
                       "the %s setting has an external field", sim_kind_name(d->kind));
    if (o->cosine && (!(o->lr_min >= 0) || !(o->lr_min <= o->lr)))
        return cn_fail(err, CN_EARG, "the cosine schedule needs 0 <= lr_min <= lr");
    if (!(o->ema >= 0) || !(o->ema < 1))
        return cn_fail(err, CN_EARG, "ema must be in [0, 1)");
    if (o->warmup < 0 || o->warmup > o->epochs)
        return cn_fail(err, CN_EARG, "warm-up %d must be in 0..epochs (%d)", o->warmup, o->epochs);
    if (o->one_cycle != 0 && o->one_cycle != 1)
        return cn_fail(err, CN_EARG, "one-cycle must be 0 or 1");
    if (o->one_cycle && o->cosine)
        return cn_fail(err, CN_EARG, "--one-cycle and --cosine are two schedules: choose one");
    if (o->one_cycle && o->warmup)
        return cn_fail(err, CN_EARG, "--one-cycle has its own warm-up (30%% of the steps): "
                       "leave --warmup out");
    if (!(o->clip >= 0) || !isfinite(o->clip))
        return cn_fail(err, CN_EARG, "the gradient clipping norm must be finite and >= 0");
    if (o->reflect_avg != 0 && o->reflect_avg != 1)
        return cn_fail(err, CN_EARG, "reflect-average must be 0 or 1");
    if (o->reflect_avg && d->kind != SIM_CHARGED)
        return cn_fail(err, CN_EARG, "reflection averaging needs mirror-symmetric physics: the "
                       "%s setting has an external field", sim_kind_name(d->kind));
    if (o->reflect_avg && (o->unroll > 1 || o->pushforward || o->energy_weight > 0))
        return cn_fail(err, CN_EARG, "reflection averaging trains on one-step pairs only (not "
                       "with --unroll, --pushforward or --energy-weight)");
    if (!d->train.count || !d->valid.count || !d->test.count)
        return cn_fail(err, CN_EARG, "training needs the train, valid and test splits");
    if (step && d->train.frames <= o->unroll)
        return cn_fail(err, CN_EDATA, "--unroll %d needs trajectories of more than %d frames; "
                       "the dataset has %d", o->unroll, o->unroll, d->train.frames);
    if (o->val_rollout > 0) {
        const int starts[] = CN_VAL_ROLLOUT_STARTS;
        const int need = starts[CN_VAL_ROLLOUT_NSTARTS - 1] + CN_VAL_ROLLOUT_STEPS + 1;
        if (d->valid.frames < need)
            return cn_fail(err, CN_EDATA, "rollout validation needs %d frames per validation "
                           "trajectory; the dataset has %d", need, d->valid.frames);
    }
    if (o->task == CN_TASK_POSITION && (d->train.frames <= CN_FRAME_OUT ||
                                        d->valid.frames <= CN_FRAME_OUT ||
                                        d->test.frames <= CN_FRAME_OUT))
        return cn_fail(err, CN_EDATA, "the position task needs frame %d, but the dataset has "
                       "%d frames", CN_FRAME_OUT, d->train.frames);
    long avail = train_samples(&d->train, o);
    if (o->task == CN_TASK_STEP && o->pairs_per_epoch > 0 && o->pairs_per_epoch < avail)
        avail = o->pairs_per_epoch;
    if (avail < o->batch)
        return cn_fail(err, CN_EARG, "only %ld training samples per epoch, fewer than one batch "
                       "of %d", avail, o->batch);
    return CN_OK;
}

/* Mean of an array. */
static double mean(const double *a, long n)
{
    double s = 0;
    for (long k = 0; k < n; k++)
        s += a[k];
    return n > 0 ? s / (double)n : NAN;
}

/* Remove temporaries {out}[.state|.csv].tmp.<pid>.<n> left by a killed run (SIGKILL during a
 * write cannot clean up; the completed files beside them are intact). */
static void remove_stale_tmp(const char *out)
{
    char dir[4096];
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    if (slash) {
        size_t l = (size_t)(slash - out);
        if (l >= sizeof dir)
            return;
        memcpy(dir, out, l);
        dir[l] = '\0';
        if (l == 0)
            strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    char bases[3][4200];
    snprintf(bases[0], sizeof bases[0], "%s", base);
    snprintf(bases[1], sizeof bases[1], "%s.state", base);
    snprintf(bases[2], sizeof bases[2], "%s.csv", base);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        int mine = 0;
        for (int k = 0; k < 3 && !mine; k++)
            mine = sim_atomic_is_temp(nm, bases[k]);
        if (!mine)
            continue;
        /* "{base}.tmp.{pid}.{counter}": keep the temporaries of a process still running */
        const char *t = strstr(nm + strlen(base), ".tmp.");
        long pid = t ? strtol(t + 5, NULL, 10) : 0;
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == 0)
            continue;
        char path[8200];
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        unlink(path);
    }
    closedir(d);
}

/* Options stored in a training state (see clofnet.h). */
int cn_train_stored_opts(const char *out, struct cn_train_opts *o, char err[CN_ERRLEN])
{
    char state_path[4096];
    if (snprintf(state_path, sizeof state_path, "%s.state", out) >= (int)sizeof state_path)
        return cn_fail(err, CN_EARG, "output path too long");
    if (access(state_path, F_OK) != 0)
        return cn_fail(err, CN_EIO, "nothing to resume: %s does not exist", state_path);
    struct cn_state s;
    void *blob = NULL;
    size_t blen = 0;
    int has_opt = 0;
    int st = cn_ckpt_load(state_path, NULL, &s, NULL, &has_opt, &blob, &blen, err);
    if (st)
        return st;
    /* the architecture and the field input are in the state's header */
    const int arch = s.cfg.arch, field_input = s.cfg.task == CN_TASK_POSITION && s.cfg.has_field;
    cn_state_free(&s);
    struct record r;
    st = blob && has_opt ? record_unpack(&r, blob, blen) : CN_EFORMAT;
    free(blob);
    if (st)
        return cn_fail(err, st, "%s: not a training state (no resume record, or a damaged one)",
                       state_path);
    /* Every stored option in the range nbody-train accepts, so that a damaged or edited state
     * is refused naming itself and the option, before any data is loaded. */
    const struct cn_train_opts *so = &r.o;
    const struct {
        const char *name;
        double value;
        int ok;
    } opt[] = {
        {"task", so->task, so->task == CN_TASK_POSITION || so->task == CN_TASK_STEP},
        {"hidden (even, 2..1024)", so->hidden,
         so->hidden >= 2 && so->hidden <= CN_MAX_HIDDEN && so->hidden % 2 == 0},
        {"layers (1..16)", so->layers, so->layers >= 1 && so->layers <= CN_MAX_LAYERS},
        {"epochs (1..1000000)", so->epochs, so->epochs >= 1 && so->epochs <= 1000000},
        {"batch (1..65536)", so->batch, so->batch >= 1 && so->batch <= 65536},
        {"max-train (>= 1)", so->max_train, so->max_train >= 1},
        {"lr (> 0)", so->lr, so->lr > 0 && isfinite(so->lr)},
        {"weight-decay (>= 0)", so->weight_decay, so->weight_decay >= 0 && isfinite(so->weight_decay)},
        {"gamma (0 < gamma <= 1)", so->gamma, so->gamma > 0 && so->gamma <= 1},
        {"lr-step (0..1000000)", so->lr_step, so->lr_step >= 0 && so->lr_step <= 1000000},
        {"val-every (1..1000000)", so->val_every, so->val_every >= 1 && so->val_every <= 1000000},
        {"threads (0..64)", so->threads, so->threads >= 0 && so->threads <= 64},
        {"pairs-per-epoch (>= 0)", (double)so->pairs_per_epoch, so->pairs_per_epoch >= 0},
        {"eval-pairs (>= 0)", (double)so->eval_pairs, so->eval_pairs >= 0},
        {"steps per frame (1..1000000)", so->traj_step, so->traj_step >= 1 && so->traj_step <= 1000000},
        {"reflect (0 or 1)", so->reflect, so->reflect == 0 || so->reflect == 1},
        {"cosine (0 or 1)", so->cosine, so->cosine == 0 || so->cosine == 1},
        {"lr-min (0 <= lr-min <= lr)", so->lr_min, !so->cosine || (so->lr_min >= 0 && so->lr_min <= so->lr)},
        {"ema (0 <= ema < 1)", so->ema, so->ema >= 0 && so->ema < 1},
        {"no-field (0 or 1)", so->no_field, so->no_field == 0 || so->no_field == 1},
        {"unroll (1..16)", so->unroll, so->unroll >= 1 && so->unroll <= CN_MAX_UNROLL},
        {"pushforward (0 or 1)", so->pushforward, so->pushforward == 0 || so->pushforward == 1},
        {"input-noise (>= 0)", so->input_noise, so->input_noise >= 0 && isfinite(so->input_noise)},
        {"project-momentum (0 or 1)", so->momentum, so->momentum == 0 || so->momentum == 1},
        {"val-rollout (>= 0)", so->val_rollout, so->val_rollout >= 0},
        {"unroll-every (>= 0)", so->unroll_every, so->unroll_every >= 0},
        {"warmup (0..epochs)", so->warmup, so->warmup >= 0 && so->warmup <= so->epochs},
        {"one-cycle (0 or 1)", so->one_cycle, so->one_cycle == 0 || so->one_cycle == 1},
        {"clip (>= 0)", so->clip, so->clip >= 0 && isfinite(so->clip)},
        {"reflect-average (0 or 1)", so->reflect_avg, so->reflect_avg == 0 || so->reflect_avg == 1},
        {"energy-weight (>= 0)", so->energy_weight,
         so->energy_weight >= 0 && isfinite(so->energy_weight)},
        {"unroll-first (> 0)", so->unroll_first,
         so->unroll_first > 0 && isfinite(so->unroll_first)},
    };
    for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++)
        if (!opt[k].ok) {
            free(r.hist);
            free(r.ema);
            return cn_fail(err, CN_EFORMAT, "%s: stored option %s is %g: the training state is "
                           "damaged", state_path, opt[k].name, opt[k].value);
        }
    *o = r.o;
    o->arch = arch;
    o->field_input = field_input;
    free(r.hist);
    free(r.ema);
    return CN_OK;
}

/* ---------------------------------------------------------------- loop */

/* Train (see clofnet.h). */
int cn_train(const struct cn_train_opts *o, const struct cn_data *d, const char *out, int resume,
             volatile sig_atomic_t *interrupt, cn_progress_fn progress, void *user,
             struct cn_train_result *res, char err[CN_ERRLEN])
{
    return cn_train_dist(o, d, out, resume, interrupt, progress, user, res, NULL, err);
}

/* The parameters of a fine-tune's starting checkpoint into s (cn_train_opts.init). */
static int load_init(const char *path, const struct cn_config *cfg, struct cn_state *s,
                     char err[CN_ERRLEN])
{
    struct cn_state from;
    char lerr[CN_ERRLEN];
    int st = cn_ckpt_load(path, cfg, &from, NULL, NULL, NULL, NULL, lerr);
    if (st)
        return cn_fail(err, st, "--init %s: %s", path, lerr);
    if (from.n_params != s->n_params)
        st = cn_fail(err, CN_EFORMAT, "--init %s: %ld parameters, the network has %ld", path,
                     from.n_params, s->n_params);
    else
        memcpy(s->param, from.param, (size_t)s->n_params * sizeof(float));
    cn_state_free(&from);
    return st;
}

/* Train as one rank of comm (see clofnet.h). */
int cn_train_dist(const struct cn_train_opts *o_in, const struct cn_data *d, const char *out,
                  int resume, volatile sig_atomic_t *interrupt, cn_progress_fn progress,
                  void *user, struct cn_train_result *res, const struct cn_comm *comm,
                  char err[CN_ERRLEN])
{
    if (comm && comm->size <= 1)
        comm = NULL;
    const int root = !comm || comm->rank == 0; /* the rank that writes files */
    char state_path[4096], csv_path[4096];
    if (snprintf(state_path, sizeof state_path, "%s.state", out) >= (int)sizeof state_path ||
        snprintf(csv_path, sizeof csv_path, "%s.csv", out) >= (int)sizeof csv_path)
        return cn_fail(err, CN_EARG, "output path too long");
    struct record r;
    memset(&r, 0, sizeof r);
    struct cn_state s;
    memset(&s, 0, sizeof s);
    struct cn_trainer *tr = NULL;
    long *perm = NULL;
    double *mse = NULL;
    float *bx = NULL, *bv = NULL, *bq = NULL, *bxt = NULL, *bvt = NULL;
    struct cn_config cfg;
    int st;

    if (root)
        remove_stale_tmp(out); /* another rank's, on another machine, could be in use */
    if (resume) {
        void *blob = NULL;
        size_t blen = 0;
        struct cn_meta m0;
        int has_opt = 0;
        if (access(state_path, F_OK) != 0)
            return cn_fail(err, CN_EIO, "nothing to resume: %s does not exist", state_path);
        st = cn_ckpt_load(state_path, NULL, &s, &m0, &has_opt, &blob, &blen, err);
        if (st)
            return st;
        st = blob && has_opt ? record_unpack(&r, blob, blen) : CN_EFORMAT;
        free(blob);
        if (st) {
            cn_state_free(&s);
            return cn_fail(err, st, "%s: not a training state (no resume record)", state_path);
        }
        if (o_in->threads > 0)
            r.o.threads = o_in->threads;
        r.o.stop_after = o_in->stop_after;
        if (strcmp(r.suffix, d->suffix) != 0 || r.train_count != d->train.count || r.n != d->n) {
            st = cn_fail(err, CN_EARG, "%s was trained on dataset %s (%d training trajectories of "
                         "%d bodies), not on %s (%d of %d)", state_path, r.suffix, r.train_count,
                         r.n, d->suffix, d->train.count, d->n);
            goto done;
        }
        /* recorded in the state's header, not in the resume record */
        r.o.arch = s.cfg.arch;
        r.o.field_input = s.cfg.task == CN_TASK_POSITION && s.cfg.has_field;
        run_config(&r.o, d->kind, &cfg);
        if (s.cfg.task != cfg.task || s.cfg.hidden != cfg.hidden || s.cfg.layers != cfg.layers ||
            s.cfg.reflect_avg != cfg.reflect_avg) {
            st = cn_fail(err, CN_EFORMAT, "%s: network does not match its resume record",
                         state_path);
            goto done;
        }
    } else {
        r.o = *o_in;
        if ((st = check_opts(&r.o, d, err)))
            return st;
        if (r.o.threads == 0)
            r.o.threads = omp_get_num_procs() >= 2 ? 2 : 1;
        run_config(&r.o, d->kind, &cfg);
        if ((st = cn_state_init(&s, &cfg, err)))
            return st;
        cn_param_init(&cfg, s.param, r.o.seed);
        if (r.o.init && (st = load_init(r.o.init, &cfg, &s, err)))
            goto done;
        snprintf(r.suffix, sizeof r.suffix, "%s", d->suffix);
        r.train_count = d->train.count;
        r.n = d->n;
        r.next_epoch = 0;
        sim_rng_seed(&r.rng, r.o.seed + 1u); /* shuffling stream, apart from initialisation */
        r.best_val = INFINITY;
        r.best_test = NAN;
        r.best_epoch = -1;
        r.hist = calloc((size_t)r.o.epochs, sizeof *r.hist);
        if (!r.hist) {
            st = cn_fail(err, CN_ENOMEM, "out of memory");
            goto done;
        }
        if (r.o.ema > 0) {
            r.n_ema = s.n_params;
            r.ema = malloc((size_t)s.n_params * sizeof(float));
            if (!r.ema) {
                st = cn_fail(err, CN_ENOMEM, "out of memory");
                goto done;
            }
            memcpy(r.ema, s.param, (size_t)s.n_params * sizeof(float));
        }
    }
    if ((r.o.ema > 0) != (r.n_ema > 0) || (r.n_ema > 0 && r.n_ema != s.n_params)) {
        st = cn_fail(err, CN_EFORMAT, "%s: moving average does not match the network", state_path);
        goto done;
    }
    if ((st = check_opts(&r.o, d, err)))
        goto done;
    const struct cn_train_opts *o = &r.o;
    const int task = o->task, n = d->n, B = o->batch;
    const int step_size = o->lr_step > 0 ? o->lr_step : (o->epochs / 8 > 0 ? o->epochs / 8 : 1);
    struct cn_meta meta = {.sim_kind = d->kind, .n_bodies = n,
                           .horizon_steps = task == CN_TASK_STEP
                                                ? o->traj_step
                                                : o->traj_step * (CN_FRAME_OUT - CN_FRAME_IN)};
    meta.has_data = 1; /* the training split's identity, for nbody-eval */
    meta.data_count = d->train.count;
    memcpy(meta.data_sha256, d->train.sha256, sizeof meta.data_sha256);
    struct cn_adamw aw;
    cn_adamw_default(&aw);
    aw.weight_decay = o->weight_decay;
    aw.threads = o->threads;
    const int K = o->unroll;
    const int energy = o->energy_weight > 0;
    if (comm && (K > 1 || o->pushforward || energy)) {
        st = cn_fail(err, CN_EARG, "--unroll, --pushforward and --energy-weight run on threads "
                     "only, not yet across MPI ranks");
        goto done;
    }
    if ((st = cn_trainer_create(&cfg, B, n, o->threads, &tr, err)) ||
        (st = cn_trainer_set_comm(tr, comm, err)) ||
        ((K > 1 || o->pushforward || energy) && (st = cn_trainer_set_unroll(tr, K, err))) ||
        (energy && (st = cn_trainer_set_energy(tr, o->energy_weight, d->kind, err))) ||
        (K > 1 && (st = cn_trainer_set_first_weight(tr, o->unroll_first, err))))
        goto done;
    struct cn_train_opts one = *o;
    one.unroll = 1;
    const long max_train = train_samples(&d->train, &one); /* the most samples of any epoch */
    long n_eval = cn_task_samples(&d->valid, task) > cn_task_samples(&d->test, task)
                      ? cn_task_samples(&d->valid, task) : cn_task_samples(&d->test, task);
    perm = malloc((size_t)max_train * sizeof *perm);
    mse = malloc((size_t)n_eval * sizeof *mse);
    size_t nb = (size_t)B * n * 3;
    bx = malloc(nb * sizeof(float));
    bv = malloc(nb * sizeof(float));
    bxt = malloc((size_t)K * nb * sizeof(float)); /* [K][B n 3] */
    bvt = malloc((size_t)K * nb * sizeof(float));
    bq = malloc((size_t)B * n * sizeof(float));
    if (!perm || !mse || !bx || !bv || !bxt || !bvt || !bq) {
        st = cn_fail(err, CN_ENOMEM, "out of memory");
        goto done;
    }
    const float field[3] = {(float)cfg.field[0], (float)cfg.field[1], (float)cfg.field[2]};
    const long eval_max = task == CN_TASK_STEP ? o->eval_pairs : 0;
    int ran = 0;

    for (int epoch = r.next_epoch; epoch < o->epochs; epoch++) {
        if (o->stop_after > 0 && ran >= o->stop_after)
            break;
        double t0 = now_s();
        const double lr_epoch = o->cosine ? cn_cosinelr(o->lr, o->lr_min, epoch, o->epochs)
                                          : cn_steplr(o->lr, epoch, step_size, o->gamma);
        double lr = lr_epoch; /* this batch's; the history records the epoch's last */
        /* this epoch's chain: the curriculum adds a step every unroll_every epochs */
        struct cn_train_opts eo = *o;
        if (o->unroll_every > 0 && 1 + epoch / o->unroll_every < K)
            eo.unroll = 1 + epoch / o->unroll_every;
        const int Ke = eo.unroll, chained = Ke > 1 || energy;
        const long n_train = train_samples(&d->train, &eo);
        long per_epoch = n_train;
        if (task == CN_TASK_STEP && o->pairs_per_epoch > 0 && o->pairs_per_epoch < n_train)
            per_epoch = o->pairs_per_epoch;
        const int n_batches = (int)(per_epoch / B);
        /* a fresh permutation every epoch, so that only the RNG state carries over */
        for (long k = 0; k < n_train; k++)
            perm[k] = k;
        for (long k = 0; k < per_epoch && k < n_train - 1; k++) {
            long j = k + (long)sim_rng_bounded(&r.rng, (uint64_t)(n_train - 1 - k));
            long t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        double loss_sum = 0;
        long clipped = 0;
        for (int b = 0; b < n_batches; b++) {
            const long it = (long)epoch * n_batches + b; /* steps before this one */
            if (o->one_cycle)
                lr = cn_onecyclelr(o->lr, it, (long)o->epochs * n_batches);
            if (o->warmup > 0 && epoch < o->warmup)
                lr = lr_epoch * (double)(it + 1) / ((double)o->warmup * n_batches);
            int stop = interrupt && *interrupt ? CN_EINTR : CN_OK;
            /* the ranks agree here: any rank's interrupt or failure stops all at this batch */
            if (comm && (stop = comm->agree(comm->ctx, stop)) && stop != CN_EINTR) {
                st = cn_fail(err, stop, "stopped at epoch %d batch %d: another rank failed",
                             epoch, b);
                goto done;
            }
            if (stop) {
                st = cn_fail(err, CN_EINTR, "interrupted during epoch %d; %s holds epoch %d",
                             epoch, state_path, epoch - 1);
                goto done;
            }
            if (chained)
                gather_unroll(&d->train, perm + (size_t)b * B, B, Ke, bx, bv, bq, bxt, bvt);
            else
                cn_gather(&d->train, task, perm + (size_t)b * B, B, bx, bv, bq, bxt, bvt);
            if (o->reflect)
                for (int g = 0; g < B; g++) {
                    if (sim_rng_bounded(&r.rng, 1) == 0)
                        continue;
                    /* z -> -z of every vector of the sample: positions, velocities, targets */
                    for (int i = 0; i < n; i++) {
                        size_t z = ((size_t)g * n + i) * 3 + 2;
                        bx[z] = -bx[z];
                        bv[z] = -bv[z];
                        for (int k = 0; k < (chained ? Ke : 1); k++) {
                            bxt[k * nb + z] = -bxt[k * nb + z];
                            bvt[k * nb + z] = -bvt[k * nb + z];
                        }
                    }
                }
            if (o->input_noise > 0) /* the inputs only: the targets stay the truth */
                for (size_t k = 0; k < nb; k++) {
                    bx[k] = (float)(bx[k] + o->input_noise * sim_rng_randn(&r.rng));
                    bv[k] = (float)(bv[k] + o->input_noise * sim_rng_randn(&r.rng));
                }
            double loss = NAN;
            const float *fp = cfg.has_field ? field : NULL;
            st = chained ? cn_trainer_grad_unroll(tr, &s, B, Ke, o->pushforward, bx, bv, bq, fp,
                                                  bxt, bvt, &loss)
                         : cn_trainer_grad(tr, &s, B, bx, bv, bq, fp, bxt,
                                           task == CN_TASK_STEP ? bvt : NULL, &loss);
            if (st) {
                cn_fail(err, st, "the network failed (%s) at epoch %d batch %d",
                        cn_strerror(st), epoch, b);
                goto done;
            }
            if (!isfinite(loss)) {
                st = cn_fail(err, CN_EDATA, "training diverged: loss %g at epoch %d batch %d",
                             loss, epoch, b);
                goto done;
            }
            if (o->clip > 0 && cn_clip_grad(s.grad, s.n_params, o->clip) > o->clip)
                clipped++;
            cn_adamw_step(&s, &aw, lr);
            if (r.n_ema > 0) {
                const float beta = (float)o->ema, a = (float)(1.0 - o->ema);
                for (long k = 0; k < r.n_ema; k++)
                    r.ema[k] = beta * r.ema[k] + a * s.param[k];
            }
            loss_sum += loss * B;
        }
        struct cn_epoch_record h = {epoch, loss_sum / ((double)n_batches * B), NAN, NAN, lr, 0,
                                    NAN, o->clip > 0 ? (double)clipped / n_batches : NAN};
        int improved = 0;
        /* the model that is validated, tested and saved: the parameters or their average */
        struct cn_state model = s;
        if (r.n_ema > 0)
            model.param = r.ema;
        if (epoch % o->val_every == 0) {
            long nv = 0, nt = 0;
            if ((st = cn_eval_split(tr, model.param, &cfg, &d->valid, eval_max, mse, &nv)) == CN_OK)
                h.val_mse = mean(mse, nv);
            if (st == CN_OK &&
                (st = cn_eval_split(tr, model.param, &cfg, &d->test, eval_max, mse, &nt)) == CN_OK)
                h.test_mse = mean(mse, nt);
            if (st) {
                cn_fail(err, st, "evaluation failed (%s) at epoch %d", cn_strerror(st), epoch);
                goto done;
            }
            char rerr[CN_ERRLEN];
            if (o->val_rollout > 0 &&
                (st = rollout_error(tr, &model, &meta, &d->valid, o->val_rollout, &h.val_rollout,
                                    rerr))) {
                cn_fail(err, st, "rollout validation failed at epoch %d: %s", epoch, rerr);
                goto done;
            }
            /* selection by what users see when asked, else by the one-step loss */
            const double score = o->val_rollout > 0 ? h.val_rollout : h.val_mse;
            if (score < r.best_val) {
                r.best_val = score;
                r.best_test = h.test_mse;
                r.best_epoch = epoch;
                improved = 1;
            }
        }
        h.seconds = now_s() - t0;
        r.hist[r.hist_len++] = h;
        r.next_epoch = epoch + 1;
        if (root && improved && (st = cn_ckpt_save(out, &model, &meta, 0, NULL, 0, err)))
            goto done;
        struct wbuf wb = {0};
        if (root && (st = record_pack(&r, &wb))) {
            free(wb.p);
            cn_fail(err, st, "out of memory");
            goto done;
        }
        if (root)
            st = cn_ckpt_save(state_path, &s, &meta, 1, wb.p, wb.len, err);
        free(wb.p);
        if (st || (root && (st = write_csv(csv_path, &r, err))))
            goto done;
        ran++;
        if (progress)
            progress(user, &h, o->epochs, r.best_val, r.best_test, r.best_epoch);
    }
    st = CN_OK;
done:
    if (res) {
        res->epochs_done = r.next_epoch;
        res->best_val = r.best_val;
        res->best_test = r.best_test;
        res->best_epoch = r.best_epoch;
        res->n_params = s.n_params;
    }
    cn_trainer_free(tr);
    cn_state_free(&s);
    free(r.hist);
    free(r.ema);
    free(perm);
    free(mse);
    free(bx);
    free(bv);
    free(bxt);
    free(bvt);
    free(bq);
    return st;
}

/* The resume-record parser alone (see internal.h): parse the blob, free what it made. */
int cn_record_parse_check(const void *blob, size_t len)
{
    struct record r;
    int st = record_unpack(&r, blob, len);
    if (st == CN_OK) {
        free(r.hist);
        free(r.ema);
    }
    return st;
}
