/* ckpt.c: checkpoint files (magic, version, dimensions, raw little-endian arrays, CRC-32,
 * written atomically) and the model API of the viewer contract (load, info, integrator). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "sim.h"

/* Flags in the high half of the header's arch field. */
#define CKPT_FLAG_MOMENTUM 1 /* the step model's outputs are momentum-projected (nn_project.h) */
#define CKPT_FLAG_REFLECT 2  /* the model is reflection-averaged (cn_config.reflect_avg) */
#define CKPT_FLAGS_KNOWN (CKPT_FLAG_MOMENTUM | CKPT_FLAG_REFLECT)

#define HEADER_BYTES 96 /* magic 8, version 4, 10 int32, 3 double, 2 int64, blob length (pack_header) */
/* Version 2 follows the header with the training data's record: has_data and data_count
 * (uint32 each) and the split's SHA-256. Version 1 files have none and still load. */
#define DATA_BYTES 40

/* 1 on a little-endian host. */
static int host_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Little-endian encoders and decoders. */
static void put_u32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v |= (uint32_t)p[k] << (8 * k);
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}
static void put_f64(unsigned char *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(p, v);
}
static double get_f64(const unsigned char *p)
{
    uint64_t v = get_u64(p);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* The fixed-size header of a checkpoint. */
struct header {
    uint32_t version;
    int32_t task, hidden, layers, node_in, has_field, sim_kind, n_bodies, horizon, with_opt;
    int32_t arch; /* bits 0-15 enum cn_arch (files before EGNN hold 0 here, ClofNet); bits
                     16-30 flags, CKPT_FLAG_* (older files hold 0) */
    double field[3];
    int64_t n_params, step, blob_len;
};

/* Serialise a header into HEADER_BYTES bytes. */
static void pack_header(unsigned char *b, const struct header *h)
{
    memcpy(b, CN_CKPT_MAGIC, 8);
    put_u32(b + 8, h->version);
    const int32_t iv[10] = {h->task, h->hidden, h->layers, h->node_in, h->has_field,
                            h->sim_kind, h->n_bodies, h->horizon, h->with_opt, h->arch};
    for (int k = 0; k < 10; k++)
        put_u32(b + 12 + 4 * k, (uint32_t)iv[k]);
    for (int k = 0; k < 3; k++)
        put_f64(b + 52 + 8 * k, h->field[k]);
    put_u64(b + 76, (uint64_t)h->n_params);
    put_u64(b + 84, (uint64_t)h->step);
    put_u32(b + 92, (uint32_t)h->blob_len); /* blob length fits 32 bits */
}

/* Parse a header (magic already checked). */
static void unpack_header(const unsigned char *b, struct header *h)
{
    h->version = get_u32(b + 8);
    int32_t iv[10];
    for (int k = 0; k < 10; k++)
        iv[k] = (int32_t)get_u32(b + 12 + 4 * k);
    h->task = iv[0];
    h->hidden = iv[1];
    h->layers = iv[2];
    h->node_in = iv[3];
    h->has_field = iv[4];
    h->sim_kind = iv[5];
    h->n_bodies = iv[6];
    h->horizon = iv[7];
    h->with_opt = iv[8];
    h->arch = iv[9];
    for (int k = 0; k < 3; k++)
        h->field[k] = get_f64(b + 52 + 8 * k);
    h->n_params = (int64_t)get_u64(b + 76);
    h->step = (int64_t)get_u64(b + 84);
    h->blob_len = get_u32(b + 92);
}

/* Write that also feeds the CRC. */
static int put_bytes(struct sim_atomic *f, const void *p, size_t len, uint32_t *crc)
{
    *crc = cn_crc32(*crc, p, len);
    return sim_atomic_write(f, p, len);
}

/* Write a float array little-endian (swapping in chunks on a big-endian host). */
static int put_floats(struct sim_atomic *f, const float *a, long count, uint32_t *crc)
{
    if (host_le())
        return put_bytes(f, a, (size_t)count * 4, crc);
    unsigned char buf[4096];
    for (long k = 0; k < count;) {
        long c = count - k < 1024 ? count - k : 1024;
        for (long j = 0; j < c; j++) {
            uint32_t u;
            memcpy(&u, a + k + j, 4);
            put_u32(buf + 4 * j, u);
        }
        if (put_bytes(f, buf, (size_t)c * 4, crc))
            return -1;
        k += c;
    }
    return 0;
}

/* Save a checkpoint atomically (see clofnet.h). */
int cn_ckpt_save(const char *path, const struct cn_state *s, const struct cn_meta *meta,
                 int with_optimizer, const void *blob, size_t blob_len, char err[CN_ERRLEN])
{
    if (blob_len > 0x7fffffff)
        return cn_fail(err, CN_EARG, "checkpoint blob too large");
    struct sim_atomic at, *f = &at;
    char serr[SIM_ERRLEN];
    int ost = sim_atomic_open(f, path, serr);
    if (ost != SIM_OK)
        return cn_fail(err, ost == SIM_EARG ? CN_EARG : CN_EIO, "cannot write checkpoint %s", serr);
    struct header h = {0};
    h.version = CN_CKPT_VERSION;
    h.task = s->cfg.task;
    h.hidden = s->cfg.hidden;
    h.layers = s->cfg.layers;
    h.node_in = s->cfg.node_in;
    h.has_field = s->cfg.has_field;
    h.arch = s->cfg.arch | (s->cfg.momentum ? CKPT_FLAG_MOMENTUM << 16 : 0) |
             (s->cfg.reflect_avg ? CKPT_FLAG_REFLECT << 16 : 0);
    h.sim_kind = meta->sim_kind;
    h.n_bodies = meta->n_bodies;
    h.horizon = meta->horizon_steps;
    h.with_opt = with_optimizer ? 1 : 0;
    memcpy(h.field, s->cfg.field, sizeof h.field);
    h.n_params = s->n_params;
    h.step = s->step;
    h.blob_len = (int64_t)blob_len;
    unsigned char hb[HEADER_BYTES];
    pack_header(hb, &h);
    unsigned char db[DATA_BYTES];
    put_u32(db, meta->has_data ? 1 : 0);
    put_u32(db + 4, meta->has_data ? (uint32_t)meta->data_count : 0);
    if (meta->has_data)
        memcpy(db + 8, meta->data_sha256, 32);
    else
        memset(db + 8, 0, 32);
    uint32_t crc = 0;
    int bad = put_bytes(f, hb, sizeof hb, &crc) || put_bytes(f, db, sizeof db, &crc) ||
              put_floats(f, s->param, s->n_params, &crc);
    if (!bad && with_optimizer)
        bad = put_floats(f, s->m, s->n_params, &crc) || put_floats(f, s->v, s->n_params, &crc);
    if (!bad && blob_len)
        bad = put_bytes(f, blob, blob_len, &crc);
    unsigned char cb[4];
    put_u32(cb, crc);
    if (!bad)
        sim_atomic_write(f, cb, 4);
    /* A failed write is kept in the writer: the commit reports it and removes the temporary. */
    if (sim_atomic_commit(f, serr) != SIM_OK)
        return cn_fail(err, CN_EIO, "cannot write checkpoint %s", serr);
    return CN_OK;
}

/* Read a float array written by put_floats. */
static void get_floats(const unsigned char *p, float *a, long count)
{
    if (host_le()) {
        memcpy(a, p, (size_t)count * 4);
        return;
    }
    for (long k = 0; k < count; k++) {
        uint32_t u = get_u32(p + 4 * k);
        memcpy(a + k, &u, 4);
    }
}

/* Load a checkpoint (see clofnet.h). */
int cn_ckpt_load(const char *path, const struct cn_config *want, struct cn_state *s,
                 struct cn_meta *meta, int *has_optimizer, void **blob, size_t *blob_len,
                 char err[CN_ERRLEN])
{
    memset(s, 0, sizeof *s);
    if (blob)
        *blob = NULL;
    if (blob_len)
        *blob_len = 0;
    /* A directory opens for reading and reports a huge size: say what it is instead. */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return cn_fail(err, CN_EIO, "%s is %s, not a checkpoint file", path,
                       S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(err, CN_EIO, "cannot open checkpoint %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    int st = CN_OK;
    if (fseek(f, 0, SEEK_END) != 0) {
        st = cn_fail(err, CN_EIO, "cannot read checkpoint %s: %s", path, strerror(errno));
        goto done;
    }
    long size = ftell(f);
    rewind(f);
    if (size < 0) {
        st = cn_fail(err, CN_EIO, "cannot read checkpoint %s", path);
        goto done;
    }
    if (size < 8 + 4) {
        st = cn_fail(err, CN_EFORMAT, "%s: not a ClofNet checkpoint (%ld bytes)", path, size);
        goto done;
    }
    buf = malloc((size_t)size);
    if (!buf) {
        st = cn_fail(err, CN_ENOMEM, "out of memory reading %s", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        st = cn_fail(err, CN_EIO, "cannot read checkpoint %s", path);
        goto done;
    }
    if (memcmp(buf, CN_CKPT_MAGIC, 8) != 0) {
        st = cn_fail(err, CN_EFORMAT, "%s: not a ClofNet checkpoint (bad magic)", path);
        goto done;
    }
    if (size < HEADER_BYTES + 4) {
        st = cn_fail(err, CN_EFORMAT, "%s: truncated checkpoint (%ld bytes, header alone is %d)",
                     path, size, HEADER_BYTES + 4);
        goto done;
    }
    struct header h;
    unpack_header(buf, &h);
    if (h.version != 1 && h.version != CN_CKPT_VERSION) {
        st = cn_fail(err, CN_EFORMAT, "%s: checkpoint version %u, this program reads versions "
                     "1..%d", path, h.version, CN_CKPT_VERSION);
        goto done;
    }
    const long data_bytes = h.version >= 2 ? DATA_BYTES : 0;
    struct cn_config c;
    memset(&c, 0, sizeof c);
    c.task = h.task;
    c.hidden = h.hidden;
    c.layers = h.layers;
    c.node_in = h.node_in;
    c.has_field = h.has_field;
    c.arch = h.arch & 0xffff;
    const int flags = (int)((uint32_t)h.arch >> 16);
    c.reflect_avg = (flags & CKPT_FLAG_REFLECT) ? 1 : 0;
    memcpy(c.field, h.field, sizeof c.field);
    char cerr[CN_ERRLEN];
    if (!cn_arch_name(c.arch)) {
        st = cn_fail(err, CN_EFORMAT, "%s: unknown architecture %d in checkpoint (this program "
                     "knows clofnet and egnn)", path, c.arch);
        goto done;
    }
    if (flags & ~CKPT_FLAGS_KNOWN) {
        st = cn_fail(err, CN_EFORMAT, "%s: unknown model flags 0x%x in checkpoint (written by a "
                     "newer program?)", path, flags);
        goto done;
    }
    if (cn_config_check(&c, cerr) != CN_OK) {
        st = cn_fail(err, CN_EFORMAT, "%s: bad dimensions in checkpoint: %s", path, cerr);
        goto done;
    }
    if (h.n_params != cn_param_count(&c)) {
        st = cn_fail(err, CN_EFORMAT, "%s: %lld parameters stored, but hidden %d, %d layers "
                     "needs %ld", path, (long long)h.n_params, c.hidden, c.layers,
                     cn_param_count(&c));
        goto done;
    }
    {
        /* Each field against what the programs support, the first bad one named. Bodies: the
         * data loader's limit (model/data.c). Horizon: simulation steps per model step (100
         * for a step model, 1000 for a position model); beyond 10^6 no dataset has frames that
         * far apart, and the viewer would simulate for hours per step. Step: AdamW's count,
         * exact in a double and far from overflowing when incremented. */
        const struct {
            const char *name;
            long long value, lo, hi;
        } field[] = {{"sim_kind", h.sim_kind, 0, 2},
                     {"n_bodies", h.n_bodies, 2, 100000},
                     {"horizon", h.horizon, 1, 1000000},
                     {"with_opt", h.with_opt, 0, 1},
                     {"step", (long long)h.step, 0, 1LL << 53}};
        for (size_t k = 0; k < sizeof field / sizeof field[0]; k++)
            if (field[k].value < field[k].lo || field[k].value > field[k].hi) {
                st = cn_fail(err, CN_EFORMAT, "%s: checkpoint header field %s is %lld, outside "
                             "%lld..%lld", path, field[k].name, field[k].value, field[k].lo,
                             field[k].hi);
                goto done;
            }
    }
    if ((flags & CKPT_FLAG_MOMENTUM) &&
        cn_config_set_momentum(&c, 1, h.sim_kind, h.horizon, cerr) != CN_OK) {
        st = cn_fail(err, CN_EFORMAT, "%s: %s", path, cerr);
        goto done;
    }
    if (want && want->arch != c.arch) {
        st = cn_fail(err, CN_EFORMAT, "%s: this is a%s %s checkpoint; expected %s", path,
                     c.arch == CN_ARCH_EGNN ? "n" : "", cn_arch_name(c.arch),
                     cn_arch_name(want->arch));
        goto done;
    }
    if (want && (want->task != c.task || want->hidden != c.hidden || want->layers != c.layers ||
                 want->node_in != c.node_in || want->has_field != c.has_field ||
                 want->momentum != c.momentum)) {
        st = cn_fail(err, CN_EFORMAT, "%s: checkpoint has task %d, hidden %d, %d layers, node "
                     "inputs %d, field %d, momentum projection %d; expected task %d, hidden %d, "
                     "%d layers, node inputs %d, field %d, momentum projection %d", path, c.task,
                     c.hidden, c.layers, c.node_in, c.has_field, c.momentum, want->task,
                     want->hidden, want->layers, want->node_in, want->has_field, want->momentum);
        goto done;
    }
    long expect = HEADER_BYTES + data_bytes + 4 * (long)h.n_params * (h.with_opt ? 3 : 1) +
                  h.blob_len + 4;
    if (size < expect) {
        st = cn_fail(err, CN_EFORMAT, "%s: truncated checkpoint (%ld of %ld bytes)", path, size,
                     expect);
        goto done;
    }
    if (size > expect) {
        st = cn_fail(err, CN_EFORMAT, "%s: %ld unexpected trailing bytes", path, size - expect);
        goto done;
    }
    if (cn_crc32(0, buf, (size_t)size - 4) != get_u32(buf + size - 4)) {
        st = cn_fail(err, CN_EFORMAT, "%s: corrupted checkpoint (checksum mismatch)", path);
        goto done;
    }
    if ((st = cn_state_init(s, &c, cerr)) != CN_OK) {
        cn_fail(err, st, "%s: %s", path, cerr);
        goto done;
    }
    struct cn_meta dm = {0};
    if (data_bytes) {
        const unsigned char *q = buf + HEADER_BYTES;
        dm.has_data = (int)get_u32(q);
        dm.data_count = (int)get_u32(q + 4);
        memcpy(dm.data_sha256, q + 8, 32);
        if (get_u32(q) > 1 || get_u32(q + 4) > 100000000u) {
            st = cn_fail(err, CN_EFORMAT, "%s: bad training data record (flag %u, %u "
                         "trajectories)", path, get_u32(q), get_u32(q + 4));
            cn_state_free(s);
            goto done;
        }
    }
    const unsigned char *p = buf + HEADER_BYTES + data_bytes;
    get_floats(p, s->param, s->n_params);
    p += 4 * s->n_params;
    if (h.with_opt) {
        get_floats(p, s->m, s->n_params);
        p += 4 * s->n_params;
        get_floats(p, s->v, s->n_params);
        p += 4 * s->n_params;
    }
    {
        /* Every stored array finite; parameters within what any trained network holds (its
         * float forward pass overflows long before), second moments >= 0 (AdamW's sqrt). */
        const float max_param = 1e8f;
        const struct {
            const char *name;
            const float *a;
        } arr[3] = {{"parameter", s->param}, {"AdamW first moment", s->m},
                    {"AdamW second moment", s->v}};
        for (int j = 0; j < (h.with_opt ? 3 : 1); j++)
            for (long k = 0; k < s->n_params; k++) {
                const float x = arr[j].a[k];
                const char *why = !isfinite(x)                          ? "non-finite"
                                  : j == 0 && fabsf(x) > max_param      ? "out-of-range"
                                  : j == 2 && x < 0                     ? "negative"
                                                                        : NULL;
                if (!why)
                    continue;
                st = cn_fail(err, CN_EFORMAT, "%s: %s %s (%g) at index %ld of %ld%s", path, why,
                             arr[j].name, (double)x, k, s->n_params,
                             j == 0 && isfinite(x) ? " (|p| must be <= 1e8)" : "");
                cn_state_free(s);
                goto done;
            }
    }
    s->step = h.step;
    if (meta) {
        meta->sim_kind = h.sim_kind;
        meta->n_bodies = h.n_bodies;
        meta->horizon_steps = h.horizon;
        meta->has_data = dm.has_data;
        meta->data_count = dm.data_count;
        memcpy(meta->data_sha256, dm.data_sha256, 32);
    }
    if (has_optimizer)
        *has_optimizer = h.with_opt;
    if (blob && h.blob_len > 0) {
        *blob = malloc((size_t)h.blob_len);
        if (!*blob) {
            st = cn_fail(err, CN_ENOMEM, "out of memory reading %s", path);
            cn_state_free(s);
            goto done;
        }
        memcpy(*blob, p, (size_t)h.blob_len);
        if (blob_len)
            *blob_len = (size_t)h.blob_len;
    }
done:
    free(buf);
    fclose(f);
    return st;
}

/* ------------------------------------------------------------ model API */

/* A loaded network with a workspace for one system. */
struct cn_model {
    struct cn_state s;
    struct cn_meta meta;
    struct cn_ws *ws;
    int ws_n;
    float *x, *v, *q, *xo, *vo;
    float *rs; /* scratch of a reflection-averaged model's forward (12 n floats) */
};

/* Load a checkpoint as a model (viewer contract). */
int cn_model_load(const char *path, struct cn_model **out, char err[CN_ERRLEN])
{
    *out = NULL;
    struct cn_model *m = calloc(1, sizeof *m);
    if (!m)
        return cn_fail(err, CN_ENOMEM, "out of memory");
    cn_blas_policy();
    int st = cn_ckpt_load(path, NULL, &m->s, &m->meta, NULL, NULL, NULL, err);
    if (st) {
        free(m);
        return st;
    }
    *out = m;
    return CN_OK;
}

/* Free the per-system buffers of a model. */
static void model_buffers_free(struct cn_model *m)
{
    cn_ws_free(m->ws);
    free(m->x);
    free(m->v);
    free(m->q);
    free(m->xo);
    free(m->rs);
    free(m->vo);
    m->ws = NULL;
    m->x = m->v = m->q = m->xo = m->vo = m->rs = NULL;
    m->ws_n = 0;
}

/* Free a model. */
void cn_model_free(struct cn_model *m)
{
    if (!m)
        return;
    model_buffers_free(m);
    cn_state_free(&m->s);
    free(m);
}

/* What a model is and was trained on. */
void cn_model_get_info(const struct cn_model *m, struct cn_model_info *info)
{
    info->task = m->s.cfg.task;
    info->arch = m->s.cfg.arch;
    info->sim_kind = m->meta.sim_kind;
    info->n_bodies = m->meta.n_bodies;
    info->horizon_steps = m->meta.horizon_steps;
    info->hidden = m->s.cfg.hidden;
    info->layers = m->s.cfg.layers;
    info->n_params = m->s.n_params;
}

/* A model's parameters and meta. */
const struct cn_state *cn_model_state(const struct cn_model *m) { return &m->s; }
const struct cn_meta *cn_model_meta(const struct cn_model *m) { return &m->meta; }

/* Advance one system by the model's horizon (see clofnet.h). */
int cn_integrator_step(struct cn_model *m, int n, const double *q, double *x, double *v)
{
    if (!m || n < 2 || !q || !x || !v)
        return CN_EARG;
    for (int k = 0; k < 3 * n; k++)
        if (!isfinite(x[k]) || !isfinite(v[k]))
            return CN_EDATA;
    for (int i = 0; i < n; i++)
        if (!isfinite(q[i]))
            return CN_EDATA;
    if (m->ws_n != n) {
        model_buffers_free(m);
        char err[CN_ERRLEN];
        if (cn_ws_create(&m->s.cfg, 1, n, CN_F32, &m->ws, err) != CN_OK)
            return CN_ENOMEM;
        m->x = malloc(sizeof(float) * 3 * n);
        m->v = malloc(sizeof(float) * 3 * n);
        m->q = malloc(sizeof(float) * n);
        m->xo = malloc(sizeof(float) * 3 * n);
        m->vo = malloc(sizeof(float) * 3 * n);
        m->rs = m->s.cfg.reflect_avg ? malloc(sizeof(float) * 12 * n) : NULL;
        if (!m->x || !m->v || !m->q || !m->xo || !m->vo || (m->s.cfg.reflect_avg && !m->rs)) {
            model_buffers_free(m);
            return CN_ENOMEM;
        }
        m->ws_n = n;
    }
    for (int i = 0; i < n; i++)
        m->q[i] = (float)q[i];
    sim_axis_to_node(n, x, m->x);
    sim_axis_to_node(n, v, m->v);
    const float field[3] = {(float)m->s.cfg.field[0], (float)m->s.cfg.field[1],
                            (float)m->s.cfg.field[2]};
    const int step = m->s.cfg.task == CN_TASK_STEP;
    int st = cn_forward_predict(m->ws, m->s.param, 1, m->x, m->v, m->q,
                                m->s.cfg.has_field ? field : NULL, m->xo, step ? m->vo : NULL,
                                m->rs);
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            if (!isfinite(m->xo[3 * i + c]) || (step && !isfinite(m->vo[3 * i + c])))
                return CN_EDATA;
        }
    sim_node_to_axis(n, m->xo, x);
    if (step)
        sim_node_to_axis(n, m->vo, v);
    return CN_OK;
}
