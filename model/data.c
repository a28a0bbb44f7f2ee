/* data.c: finding and loading the .npy datasets of SPEC §2 (from nbody-gen or the reference
 * generator), with shape and value checks, and gathering task samples into batches. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sim.h"

#define MAX_SUFFIXES 16

/* Parse "_{sim}{n}_initvel1{tag}" into kind and n; 0 on success. */
static int parse_suffix(const char *suf, int *kind, int *n)
{
    if (suf[0] != '_')
        return -1;
    const char *name;
    for (int k = 0; (name = sim_kind_name(k)) != NULL; k++) {
        size_t len = strlen(name);
        if (strncmp(suf + 1, name, len) != 0)
            continue;
        const char *p = suf + 1 + len;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 2 || v > 100000 || strncmp(end, "_initvel1", 9) != 0)
            return -1;
        *kind = k;
        *n = (int)v;
        return 0;
    }
    return -1;
}

/* Find the single dataset suffix in dir (see clofnet.h). */
int cn_data_find(const char *dir, char *suffix, size_t len, int *kind, int *n,
                 char err[CN_ERRLEN])
{
    DIR *d = opendir(dir);
    if (!d)
        return cn_fail(err, CN_EIO, "cannot open data directory %s: %s", dir, strerror(errno));
    char found[MAX_SUFFIXES][256];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (l <= 13 || strncmp(nm, "loc_train", 9) != 0 || strcmp(nm + l - 4, ".npy") != 0)
            continue;
        if (l - 13 >= sizeof found[0])
            continue;
        if (count < MAX_SUFFIXES) {
            memcpy(found[count], nm + 9, l - 13);
            found[count][l - 13] = '\0';
        }
        count++;
    }
    closedir(d);
    if (count == 0)
        return cn_fail(err, CN_EIO,
                       "no dataset in %s: no file loc_train_<sim><n>_initvel1<tag>.npy", dir);
    if (count > 1) {
        char list[CN_ERRLEN / 2] = "";
        for (int i = 0; i < count && i < MAX_SUFFIXES; i++) {
            size_t u = strlen(list);
            snprintf(list + u, sizeof list - u, "%s%.60s", i ? ", " : "", found[i]);
        }
        return cn_fail(err, CN_EIO, "several datasets in %s (%d suffixes: %s); "
                       "point --data at a directory holding one", dir, count, list);
    }
    if (parse_suffix(found[0], kind, n) != 0)
        return cn_fail(err, CN_EFORMAT, "cannot parse dataset suffix '%s' in %s "
                       "(expected _<charged|static|dynamic><n>_initvel1<tag>)", found[0], dir);
    if (strlen(found[0]) >= len)
        return cn_fail(err, CN_EARG, "dataset suffix too long");
    strcpy(suffix, found[0]);
    return CN_OK;
}

/* Largest |value| a dataset may hold. The network computes in float, and its local frames
 * multiply three coordinates, which must stay far below FLT_MAX (3.4e38); the benchmark's
 * values stay below 1e3. (Converting a double beyond float's range to float is undefined.) */
#define DATA_MAX_ABS 1e8

/* First value of an array that is not finite or beyond DATA_MAX_ABS, or -1. */
static long first_bad_value(const struct sim_npy *a)
{
    for (size_t k = 0; k < a->count; k++)
        if (!(fabs(a->data[k]) <= DATA_MAX_ABS))
            return (long)k;
    return -1;
}

/* Flat index k of an array as "[i, j, ...]". */
static void index_str(const struct sim_npy *a, size_t k, char *buf, size_t len)
{
    size_t idx[SIM_NPY_MAXDIM], u = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        size_t dim = a->shape[d] > 0 ? (size_t)a->shape[d] : 1;
        idx[d] = k % dim;
        k /= dim;
    }
    u += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < a->ndim && u < len; d++)
        u += (size_t)snprintf(buf + u, len - u, "%s%zu", d ? ", " : "", idx[d]);
    if (u < len)
        snprintf(buf + u, len - u, "]");
}

/* One file against the folder's sidecar (nbody-gen's dataset.json): listed, and the same
 * size (when known, bytes >= 0) and SHA-256; CN_OK or CN_EDATA naming the file and the run. */
static int check_digest(const struct sim_manifest *man, const char *path,
                        const unsigned char digest[32], int64_t bytes, char err[CN_ERRLEN])
{
    const char *slash = strrchr(path, '/');
    const struct sim_manifest_file *mf = sim_manifest_find(man, slash ? slash + 1 : path);
    if (!mf)
        return cn_fail(err, CN_EDATA, "%s is not listed in %s (run %s): the folder mixes files of "
                       "different datasets or runs", path, SIM_MANIFEST_NAME, man->run_id);
    if ((bytes >= 0 && bytes != mf->bytes) || memcmp(digest, mf->sha256, 32) != 0)
        return cn_fail(err, CN_EDATA, "%s does not match %s (run %s): the folder mixes files of "
                       "different runs, or the file changed after nbody-gen wrote it", path,
                       SIM_MANIFEST_NAME, man->run_id);
    return CN_OK;
}

/* A sim status as the model's. */
static int from_sim(int st)
{
    return st == SIM_EFORMAT ? CN_EFORMAT : st == SIM_ENOMEM ? CN_ENOMEM : CN_EIO;
}

/* Read one quantity of one split and check it is finite (and, with a sidecar, its digest);
 * the file's SHA-256 into digest. */
static int read_q(const char *dir, const char *qty, const char *split, const char *suffix,
                  const struct sim_manifest *man, struct sim_npy *a, char *path, size_t plen,
                  unsigned char digest[32], char err[CN_ERRLEN])
{
    snprintf(path, plen, "%s/%s_%s%s.npy", dir, qty, split, suffix);
    char serr[SIM_ERRLEN];
    int st = sim_npy_read_hashed(path, a, digest, serr);
    if (st != SIM_OK)
        return cn_fail(err, from_sim(st), "%s", serr);
    if (man && (st = check_digest(man, path, digest, -1, err)) != CN_OK) {
        sim_npy_free(a);
        return st;
    }
    long bad = first_bad_value(a);
    if (bad >= 0) {
        char at[128];
        index_str(a, (size_t)bad, at, sizeof at);
        const double v = a->data[bad];
        int st = isfinite(v) ? cn_fail(err, CN_EDATA, "%s: value %g at index %s is beyond "
                                       "+-%g, the largest this program accepts (its network "
                                       "computes in float)", path, v, at, DATA_MAX_ABS)
                             : cn_fail(err, CN_EDATA, "%s: non-finite value (%g) at index %s",
                                       path, v, at);
        sim_npy_free(a);
        return st;
    }
    return CN_OK;
}

/* Shape as text, for messages. */
static void shape_str(const struct sim_npy *a, char *buf, size_t len)
{
    size_t u = 0;
    u += (size_t)snprintf(buf + u, len - u, "(");
    for (int k = 0; k < a->ndim && u < len; k++)
        u += (size_t)snprintf(buf + u, len - u, "%s%lld", k ? ", " : "", (long long)a->shape[k]);
    if (u < len)
        snprintf(buf + u, len - u, ")");
}

/* The four files of a split agree: loc (T, F, 3, n) with T >= min_t, vel as loc, charges
 * (T, n, 1) or (T, n), edges (T, n, n); CN_OK or CN_EDATA naming the file. */
static int check_split_shapes(const struct sim_npy *loc, const struct sim_npy *vel,
                              const struct sim_npy *chg, const struct sim_npy *edg,
                              char p[4][1200], int n, int min_t, char err[CN_ERRLEN])
{
    char s1[96], s2[96];
    const int st = CN_EDATA;
    if (loc->ndim != 4 || loc->shape[2] != 3 || loc->shape[3] != n || loc->shape[0] < min_t ||
        loc->shape[1] < 2) {
        shape_str(loc, s1, sizeof s1);
        return cn_fail(err, st, "%s: shape %s, expected (trajectories, frames, 3, %d)", p[0], s1,
                       n);
    }
    if (vel->ndim != 4 || memcmp(vel->shape, loc->shape, 4 * sizeof loc->shape[0]) != 0) {
        shape_str(loc, s1, sizeof s1);
        shape_str(vel, s2, sizeof s2);
        return cn_fail(err, st, "%s: shape %s does not match loc %s", p[1], s2, s1);
    }
    int64_t T = loc->shape[0];
    if (!((chg->ndim == 3 && chg->shape[0] == T && chg->shape[1] == n && chg->shape[2] == 1) ||
          (chg->ndim == 2 && chg->shape[0] == T && chg->shape[1] == n))) {
        shape_str(chg, s1, sizeof s1);
        return cn_fail(err, st, "%s: shape %s, expected (%lld, %d, 1)", p[2], s1, (long long)T, n);
    }
    if (edg->ndim != 3 || edg->shape[0] != T || edg->shape[1] != n || edg->shape[2] != n) {
        shape_str(edg, s1, sizeof s1);
        return cn_fail(err, st, "%s: shape %s, expected (%lld, %d, %d)", p[3], s1, (long long)T,
                       n, n);
    }
    return CN_OK;
}

/* A split that is not loaded still belongs to the folder: with a sidecar, each file's size and
 * SHA-256; always, the four headers' shapes (read without the data). */
static int check_other_split(const char *dir, const char *split, const char *suffix, int n,
                             const struct sim_manifest *man, char err[CN_ERRLEN])
{
    static const char *const qty[4] = {"loc", "vel", "charges", "edges"};
    struct sim_npy h[4];
    char p[4][1200], serr[SIM_ERRLEN];
    memset(h, 0, sizeof h);
    for (int k = 0; k < 4; k++) {
        snprintf(p[k], sizeof p[k], "%s/%s_%s%s.npy", dir, qty[k], split, suffix);
        int st;
        if (man) {
            unsigned char digest[32];
            int64_t bytes = 0;
            if ((st = sim_file_sha256(p[k], digest, &bytes, serr)) != SIM_OK)
                return cn_fail(err, from_sim(st), "%s", serr);
            if ((st = check_digest(man, p[k], digest, bytes, err)) != CN_OK)
                return st;
        }
        if ((st = sim_npy_read_header(p[k], &h[k], serr)) != SIM_OK)
            return cn_fail(err, from_sim(st), "%s", serr);
    }
    return check_split_shapes(&h[0], &h[1], &h[2], &h[3], p, n, 0, err); /* may be empty */
}

/* Load and check one split, converting to float node-major. */
static int load_split(const char *dir, const char *split, const char *suffix, int n,
                      int max_count, const struct sim_manifest *man, struct cn_split *sp,
                      char err[CN_ERRLEN])
{
    struct sim_npy loc = {0}, vel = {0}, chg = {0}, edg = {0};
    char p[4][1200];
    unsigned char dg[4][32];
    int st;
    memset(sp, 0, sizeof *sp);
    if ((st = read_q(dir, "loc", split, suffix, man, &loc, p[0], sizeof p[0], dg[0], err)) ||
        (st = read_q(dir, "vel", split, suffix, man, &vel, p[1], sizeof p[1], dg[1], err)) ||
        (st = read_q(dir, "charges", split, suffix, man, &chg, p[2], sizeof p[2], dg[2], err)) ||
        (st = read_q(dir, "edges", split, suffix, man, &edg, p[3], sizeof p[3], dg[3], err)))
        goto done;
    if ((st = check_split_shapes(&loc, &vel, &chg, &edg, p, n, 1, err)) != CN_OK)
        goto done;
    st = CN_EDATA;
    int64_t T = loc.shape[0];
    /* edges must be q q^T: the network takes q_i q_j from the charges */
    for (int64_t t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double qq = chg.data[t * n + i] * chg.data[t * n + j];
                double e = edg.data[(t * n + i) * n + j];
                if (fabs(e - qq) > 1e-6 * (1 + fabs(qq))) {
                    cn_fail(err, st, "%s: trajectory %lld: edges[%d][%d] = %g but q_i q_j = %g",
                            p[3], (long long)t, i, j, e, qq);
                    goto done;
                }
            }
    int count = (int)(max_count > 0 && max_count < T ? max_count : T);
    int F = (int)loc.shape[1];
    size_t per = (size_t)F * n * 3;
    sp->count = count;
    sp->frames = F;
    sp->n = n;
    struct sim_sha256 h;
    sim_sha256_init(&h);
    sim_sha256_update(&h, dg, sizeof dg);
    sim_sha256_final(&h, sp->sha256);
    sp->loc = malloc((size_t)count * per * sizeof(float));
    sp->vel = malloc((size_t)count * per * sizeof(float));
    sp->q = malloc((size_t)count * n * sizeof(float));
    if (!sp->loc || !sp->vel || !sp->q) {
        st = cn_fail(err, CN_ENOMEM, "out of memory for the %s split", split);
        goto done;
    }
    for (int t = 0; t < count; t++) {
        for (int f = 0; f < F; f++) {
            const size_t frame = ((size_t)t * F + f) * 3 * n; /* same offset in both layouts */
            sim_axis_to_node(n, loc.data + frame, sp->loc + frame);
            sim_axis_to_node(n, vel.data + frame, sp->vel + frame);
        }
        for (int i = 0; i < n; i++)
            sp->q[(size_t)t * n + i] = (float)chg.data[(size_t)t * n + i];
    }
    st = CN_OK;
done:
    sim_npy_free(&loc);
    sim_npy_free(&vel);
    sim_npy_free(&chg);
    sim_npy_free(&edg);
    if (st) {
        free(sp->loc);
        free(sp->vel);
        free(sp->q);
        memset(sp, 0, sizeof *sp);
    }
    return st;
}

/* Load the requested splits of the dataset in dir (see clofnet.h). */
int cn_data_load(const char *dir, int which, int max_train, struct cn_data *d,
                 char err[CN_ERRLEN])
{
    memset(d, 0, sizeof *d);
    int st = cn_data_find(dir, d->suffix, sizeof d->suffix, &d->kind, &d->n, err);
    if (st)
        return st;
    /* The twelve files must belong together: nbody-gen's sidecar gives each one's SHA-256 (a
     * folder holding files of two runs is refused); a folder without one (the reference
     * generator's) is checked for shapes that agree. */
    struct sim_manifest man;
    int present = 0;
    char serr[SIM_ERRLEN];
    if ((st = sim_manifest_read(dir, &man, &present, serr)) != SIM_OK)
        return cn_fail(err, st == SIM_EIO ? CN_EIO : CN_EFORMAT, "%s", serr);
    const struct sim_manifest *mp = present ? &man : NULL;
    static const char *const names[3] = {"train", "valid", "test"};
    const int bits[3] = {CN_SPLIT_TRAIN, CN_SPLIT_VALID, CN_SPLIT_TEST};
    struct cn_split *sp[3] = {&d->train, &d->valid, &d->test};
    for (int k = 0; k < 3; k++) {
        st = which & bits[k] ? load_split(dir, names[k], d->suffix, d->n, k == 0 ? max_train : 0,
                                          mp, sp[k], err)
                             : check_other_split(dir, names[k], d->suffix, d->n, mp, err);
        if (st)
            goto fail;
    }
    return CN_OK;
fail:
    cn_data_free(d);
    return st;
}

/* Free one split. */
static void split_free(struct cn_split *s)
{
    free(s->loc);
    free(s->vel);
    free(s->q);
    memset(s, 0, sizeof *s);
}

/* Free every split of a dataset. */
void cn_data_free(struct cn_data *d)
{
    split_free(&d->train);
    split_free(&d->valid);
    split_free(&d->test);
}

/* Samples of a split for a task. */
long cn_task_samples(const struct cn_split *sp, int task)
{
    if (task == CN_TASK_STEP)
        return (long)sp->count * (sp->frames - 1);
    return sp->frames > CN_FRAME_OUT ? sp->count : 0;
}

/* Gather samples into node-major batch arrays. */
void cn_gather(const struct cn_split *sp, int task, const long *idx, int graphs, float *x,
               float *v, float *q, float *x_target, float *v_target)
{
    const int n = sp->n, F = sp->frames;
    const size_t nb = (size_t)n * 3;
    for (int g = 0; g < graphs; g++) {
        long t = idx[g];
        int f0 = CN_FRAME_IN, f1 = CN_FRAME_OUT;
        if (task == CN_TASK_STEP) {
            f0 = (int)(idx[g] % (F - 1));
            f1 = f0 + 1;
            t = idx[g] / (F - 1);
        }
        const float *L = sp->loc + (size_t)t * F * nb, *V = sp->vel + (size_t)t * F * nb;
        memcpy(x + g * nb, L + f0 * nb, nb * sizeof(float));
        memcpy(v + g * nb, V + f0 * nb, nb * sizeof(float));
        memcpy(q + (size_t)g * n, sp->q + (size_t)t * n, (size_t)n * sizeof(float));
        if (x_target)
            memcpy(x_target + g * nb, L + f1 * nb, nb * sizeof(float));
        if (v_target)
            memcpy(v_target + g * nb, V + f1 * nb, nb * sizeof(float));
    }
}
