/* net.c: configuration, parameter layout and initialisation of ClofNet, workspaces and the
 * typed forward/backward entry points, MSE, the flat training state and AdamW/StepLR. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sim.h"

/* The typed passes of net_f.c and net_d.c. */
int cn_forward_impl_f(struct cn_ws *ws, const float *P, int G, const float *x, const float *v,
                      const float *q, const float *field, float *x_out, float *v_out);
int cn_backward_impl_f(struct cn_ws *ws, const float *P, const float *dx_out,
                       const float *dv_out, float *Gr, float *dx_in, float *dv_in);
int cn_forward_impl_d(struct cn_ws *ws, const double *P, int G, const double *x,
                      const double *v, const double *q, const double *field, double *x_out,
                      double *v_out);
int cn_backward_impl_d(struct cn_ws *ws, const double *P, const double *dx_out,
                       const double *dv_out, double *Gr, double *dx_in, double *dv_in);
int cn_egnn_forward_impl_f(struct cn_ws *ws, const float *P, int G, const float *x,
                           const float *v, const float *q, float *x_out, float *v_out);
int cn_egnn_backward_impl_f(struct cn_ws *ws, const float *P, const float *dx_out,
                            const float *dv_out, float *Gr, float *dx_in, float *dv_in);
int cn_egnn_forward_impl_d(struct cn_ws *ws, const double *P, int G, const double *x,
                           const double *v, const double *q, double *x_out, double *v_out);
int cn_egnn_backward_impl_d(struct cn_ws *ws, const double *P, const double *dx_out,
                            const double *dv_out, double *Gr, double *dx_in, double *dv_in);

/* Short name of a status code. */
const char *cn_strerror(int status)
{
    switch (status) {
    case CN_OK: return "ok";
    case CN_EARG: return "invalid argument";
    case CN_ENOMEM: return "out of memory";
    case CN_EIO: return "I/O error";
    case CN_EFORMAT: return "bad format";
    case CN_EDATA: return "bad data";
    case CN_EINTR: return "interrupted";
    default: return "unknown status";
    }
}

/* Format a message into err and hand back the status. */
int cn_fail(char err[CN_ERRLEN], int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CN_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* The CRC-32 table (reflected polynomial 0xEDB88320), filled once. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_fill(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* CRC-32 as zlib's, continued from crc; the table is built by the first caller of any
 * thread (pthread_once: no data race when threads save checkpoints concurrently). */
uint32_t cn_crc32(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_table_fill);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------- config */

/* Defaults of a task. */
void cn_config_default(struct cn_config *c, int task)
{
    memset(c, 0, sizeof *c);
    c->task = task;
    c->hidden = 64;
    c->layers = 4;
    c->node_in = task == CN_TASK_STEP ? 2 : 1;
    c->has_field = 0;
}

/* The momentum projection's constants for a setting (see clofnet.h, nn_project.h). */
int cn_config_set_momentum(struct cn_config *c, int on, int sim_kind, int steps,
                           char err[CN_ERRLEN])
{
    c->momentum = 0;
    c->proj_tau = 0;
    c->proj_lorentz = 0;
    c->proj_h = 0;
    for (int k = 0; k < 3; k++)
        c->proj_dx[k] = c->proj_dv[k] = c->proj_b[k] = 0;
    if (!on)
        return CN_OK;
    if (c->task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "the momentum projection is for step models (--task step)");
    if (steps < 1)
        return cn_fail(err, CN_EARG, "the momentum projection needs >= 1 simulation step per "
                       "model step (got %d)", steps);
    double a[3] = {0, 0, 0};
    if (sim_kind == SIM_DYNAMIC) {
        c->momentum = 1;
        c->proj_lorentz = 1;
        c->proj_h = SIM_DT;
        for (int k = 0; k < 3; k++)
            c->proj_b[k] = SIM_BFIELD;
        return CN_OK;
    }
    if (sim_kind == SIM_STATIC)
        a[2] = SIM_GRAVITY;
    else if (sim_kind != SIM_CHARGED)
        return cn_fail(err, CN_EARG, "no momentum projection for setting %d", sim_kind);
    const double H = steps;
    c->momentum = 1;
    c->proj_tau = H * SIM_DT;
    for (int k = 0; k < 3; k++) {
        c->proj_dv[k] = H * SIM_DT * a[k];
        c->proj_dx[k] = SIM_DT * SIM_DT * H * (H + 1) / 2 * a[k];
    }
    return CN_OK;
}

/* Validate every field of a config. */
int cn_config_check(const struct cn_config *c, char err[CN_ERRLEN])
{
    if (!cn_arch_name(c->arch))
        return cn_fail(err, CN_EARG, "unknown architecture %d", c->arch);
    if (c->task != CN_TASK_POSITION && c->task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "unknown task %d", c->task);
    if (c->arch == CN_ARCH_EGNN &&
        (c->has_field || c->node_in != (c->task == CN_TASK_STEP ? 2 : 1)))
        return cn_fail(err, CN_EARG, "EGNN takes node inputs |v_i| (position task) or |v_i|, q_i "
                       "(step task) and no field input");
    if (c->hidden < 2 || c->hidden > CN_MAX_HIDDEN || c->hidden % 2)
        return cn_fail(err, CN_EARG, "hidden width %d must be even and in 2..%d", c->hidden,
                       CN_MAX_HIDDEN);
    if (c->layers < 1 || c->layers > CN_MAX_LAYERS)
        return cn_fail(err, CN_EARG, "layers %d must be in 1..%d", c->layers, CN_MAX_LAYERS);
    if (c->node_in != 1 && c->node_in != 2)
        return cn_fail(err, CN_EARG, "node inputs %d must be 1 (|v|) or 2 (|v|, q)", c->node_in);
    if (c->has_field != 0 && c->has_field != 1)
        return cn_fail(err, CN_EARG, "has_field %d must be 0 or 1", c->has_field);
    for (int k = 0; k < 3; k++)
        if (!isfinite(c->field[k]))
            return cn_fail(err, CN_EARG, "field vector is not finite");
    if (c->momentum != 0 && c->momentum != 1)
        return cn_fail(err, CN_EARG, "momentum %d must be 0 or 1", c->momentum);
    if (c->momentum && c->task != CN_TASK_STEP)
        return cn_fail(err, CN_EARG, "the momentum projection is for step models only");
    if (c->proj_lorentz != 0 && c->proj_lorentz != 1)
        return cn_fail(err, CN_EARG, "proj_lorentz %d must be 0 or 1", c->proj_lorentz);
    if (c->proj_lorentz && !(c->proj_h > 0 && isfinite(c->proj_h)))
        return cn_fail(err, CN_EARG, "the Lorentz projection's step is not finite and > 0");
    for (int k = 0; k < 3; k++)
        if (!isfinite(c->proj_b[k]))
            return cn_fail(err, CN_EARG, "the Lorentz projection's field is not finite");
    if (!isfinite(c->proj_tau) || !(c->proj_tau >= 0))
        return cn_fail(err, CN_EARG, "momentum projection time is not finite and >= 0");
    for (int k = 0; k < 3; k++)
        if (!isfinite(c->proj_dx[k]) || !isfinite(c->proj_dv[k]))
            return cn_fail(err, CN_EARG, "momentum projection constants are not finite");
    if (c->reflect_avg != 0 && c->reflect_avg != 1)
        return cn_fail(err, CN_EARG, "reflection averaging %d must be 0 or 1", c->reflect_avg);
    if (c->reflect_avg && c->has_field)
        return cn_fail(err, CN_EARG, "reflection averaging needs a model without a field input "
                       "(the field is not mirrored with the bodies)");
    return CN_OK;
}

/* Names of the architectures. */
static const char *const arch_names[CN_ARCH_COUNT] = {"clofnet", "egnn"};

const char *cn_arch_name(int arch)
{
    return arch >= 0 && arch < CN_ARCH_COUNT ? arch_names[arch] : NULL;
}

int cn_arch_parse(const char *s)
{
    for (int k = 0; s && k < CN_ARCH_COUNT; k++)
        if (strcmp(s, arch_names[k]) == 0)
            return k;
    return -1;
}

/* Edge inputs and coordinate outputs of a config. */
int cn_edge_in(const struct cn_config *c)
{
    return c->arch == CN_ARCH_EGNN ? 2 : c->has_field ? 19 : 16;
}
int cn_coord_out(const struct cn_config *c)
{
    const int step = c->task == CN_TASK_STEP;
    return c->arch == CN_ARCH_EGNN ? (step ? 2 : 1) : (step ? 6 : 3);
}

/* Append one tensor to the list (if room) and advance the offset. */
static void add_tensor(struct cn_tensor *out, int max, int *k, long *off, const char *name,
                       int rows, int cols, int init, int fan_in, int fan_out)
{
    if (out && *k < max) {
        struct cn_tensor *t = &out[*k];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->offset = *off;
        t->rows = rows;
        t->cols = cols;
        t->init = init;
        t->fan_in = fan_in;
        t->fan_out = fan_out;
    }
    (*k)++;
    *off += (long)rows * cols;
}

/* A Linear layer: weight (out, in) then bias (out). */
static void add_linear(struct cn_tensor *out, int max, int *k, long *off, const char *name,
                       int in, int outd, int bias)
{
    char nm[32];
    snprintf(nm, sizeof nm, "%s.w", name);
    add_tensor(out, max, k, off, nm, outd, in, CN_INIT_LINEAR_W, in, outd);
    if (bias) {
        snprintf(nm, sizeof nm, "%s.b", name);
        add_tensor(out, max, k, off, nm, outd, 1, CN_INIT_LINEAR_B, in, outd);
    }
}

/* The tensors of a config in buffer order. */
int cn_tensor_list(const struct cn_config *c, struct cn_tensor *out, int max)
{
    int k = 0;
    long off = 0;
    const int H = c->hidden, H2 = H / 2, CO = cn_coord_out(c), egnn = c->arch == CN_ARCH_EGNN;
    add_linear(out, max, &k, &off, "embed", c->node_in, H, 1);
    if (!egnn) {
        add_linear(out, max, &k, &off, "fuse1", cn_edge_in(c), H2, 1);
        add_linear(out, max, &k, &off, "fuse2", H2, H2, 1);
    }
    for (int l = 0; l < c->layers; l++) {
        char nm[32];
#define LIN(tag, in, o, bias) \
    snprintf(nm, sizeof nm, "layer%d.%s", l, tag); \
    add_linear(out, max, &k, &off, nm, in, o, bias)
        if (egnn) {
            LIN("edge1", 2 * H + 1 + cn_edge_in(c), H, 1);
            LIN("edge2", H, H, 1);
        } else {
            LIN("edge1", 2 * H + 1 + H2, H, 1);
            LIN("edge2", H, H, 1);
            LIN("edge3", H, H, 1);
        }
        LIN("coord1", H, H, 1);
        snprintf(nm, sizeof nm, "layer%d.coord2.w", l);
        add_tensor(out, max, &k, &off, nm, CO, H, CN_INIT_XAVIER_SMALL, H, CO);
        LIN("vel1", H, H, 1);
        LIN("vel2", H, 1, 1);
        LIN("node1", 2 * H, H, 1);
        LIN("node2", H, H, 1);
#undef LIN
        if (!egnn) {
            snprintf(nm, sizeof nm, "layer%d.ln.g", l);
            add_tensor(out, max, &k, &off, nm, H, 1, CN_INIT_ONES, H, H);
            snprintf(nm, sizeof nm, "layer%d.ln.b", l);
            add_tensor(out, max, &k, &off, nm, H, 1, CN_INIT_ZEROS, H, H);
        }
    }
    return k;
}

/* Offset of the tensor called name (-1 if the config has none). */
static long tensor_offset(const struct cn_tensor *t, int k, const char *name)
{
    for (int i = 0; i < k; i++)
        if (strcmp(t[i].name, name) == 0)
            return t[i].offset;
    return -1;
}

/* Offsets of every tensor, by name from the list cn_tensor_list makes. */
void cn_layout_build(const struct cn_config *c, struct cn_layout *lay)
{
    struct cn_tensor t[CN_MAX_TENSORS];
    int k = cn_tensor_list(c, t, CN_MAX_TENSORS);
    memset(lay, 0, sizeof *lay);
    lay->emb_w = tensor_offset(t, k, "embed.w");
    lay->emb_b = tensor_offset(t, k, "embed.b");
    lay->f1_w = tensor_offset(t, k, "fuse1.w");
    lay->f1_b = tensor_offset(t, k, "fuse1.b");
    lay->f2_w = tensor_offset(t, k, "fuse2.w");
    lay->f2_b = tensor_offset(t, k, "fuse2.b");
    static const char *const names[19] = {
        "edge1.w", "edge1.b", "edge2.w", "edge2.b", "edge3.w", "edge3.b", "coord1.w",
        "coord1.b", "coord2.w", "vel1.w", "vel1.b", "vel2.w", "vel2.b", "node1.w", "node1.b",
        "node2.w", "node2.b", "ln.g", "ln.b"};
    for (int l = 0; l < c->layers; l++) {
        long o[19];
        for (int i = 0; i < 19; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "layer%d.%s", l, names[i]);
            o[i] = tensor_offset(t, k, nm);
        }
        struct cn_layer_layout *y = &lay->layer[l];
        y->e1_w = o[0], y->e1_b = o[1], y->e2_w = o[2], y->e2_b = o[3], y->e3_w = o[4];
        y->e3_b = o[5], y->c1_w = o[6], y->c1_b = o[7], y->c2_w = o[8], y->v1_w = o[9];
        y->v1_b = o[10], y->v2_w = o[11], y->v2_b = o[12], y->n1_w = o[13], y->n1_b = o[14];
        y->n2_w = o[15], y->n2_b = o[16], y->ln_g = o[17], y->ln_b = o[18];
    }
    lay->total = t[k - 1].offset + (long)t[k - 1].rows * t[k - 1].cols;
}

/* Total number of parameters. */
long cn_param_count(const struct cn_config *c)
{
    struct cn_layout lay;
    cn_layout_build(c, &lay);
    return lay.total;
}

/* PyTorch's default initialisation from MT19937 uniforms (tensors in buffer order). */
void cn_param_init(const struct cn_config *c, float *param, uint32_t seed)
{
    struct cn_tensor t[CN_MAX_TENSORS];
    int k = cn_tensor_list(c, t, CN_MAX_TENSORS);
    struct sim_rng rng;
    sim_rng_seed(&rng, seed);
    for (int i = 0; i < k; i++) {
        double bound = 0;
        switch (t[i].init) {
        case CN_INIT_LINEAR_W:
        case CN_INIT_LINEAR_B: bound = 1.0 / sqrt((double)t[i].fan_in); break;
        case CN_INIT_XAVIER_SMALL: bound = 0.001 * sqrt(6.0 / (t[i].fan_in + t[i].fan_out)); break;
        default: break;
        }
        float *p = param + t[i].offset;
        long cnt = (long)t[i].rows * t[i].cols;
        for (long j = 0; j < cnt; j++) {
            if (t[i].init == CN_INIT_ONES)
                p[j] = 1.0f;
            else if (t[i].init == CN_INIT_ZEROS)
                p[j] = 0.0f;
            else
                p[j] = (float)(bound * (2.0 * sim_rng_random_sample(&rng) - 1.0));
        }
    }
}

/* ---------------------------------------------------------- workspace */

/* Create a workspace (see clofnet.h). */
int cn_ws_create(const struct cn_config *c, int max_graphs, int n, int precision,
                 struct cn_ws **out, char err[CN_ERRLEN])
{
    *out = NULL;
    int st = cn_config_check(c, err);
    if (st)
        return st;
    if (max_graphs < 1 || n < 2)
        return cn_fail(err, CN_EARG, "a batch needs >= 1 graph of >= 2 bodies (got %d of %d)",
                       max_graphs, n);
    if ((double)max_graphs * n * (n - 1) * c->hidden > (double)INT_MAX / 4)
        return cn_fail(err, CN_EARG, "batch of %d graphs of %d bodies is too large", max_graphs, n);
    if (precision != CN_F32 && precision != CN_F64)
        return cn_fail(err, CN_EARG, "unknown precision %d", precision);
    struct cn_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return cn_fail(err, CN_ENOMEM, "out of memory for a workspace");
    ws->precision = precision;
    ws->cfg = *c;
    cn_layout_build(c, &ws->lay);
    ws->max_graphs = max_graphs;
    ws->n = n;
    size_t E = (size_t)max_graphs * n * (n - 1);
    ws->row = malloc(E * sizeof(int));
    ws->col = malloc(E * sizeof(int));
    if (!ws->row || !ws->col) {
        cn_ws_free(ws);
        return cn_fail(err, CN_ENOMEM, "out of memory for a workspace");
    }
    /* edges grouped by receiver: e = (g n + i)(n - 1) + t, sender j = t < i ? t : t + 1 */
    for (int g = 0; g < max_graphs; g++)
        for (int i = 0; i < n; i++)
            for (int t = 0; t < n - 1; t++) {
                size_t e = ((size_t)g * n + i) * (n - 1) + t;
                ws->row[e] = g * n + i;
                ws->col[e] = g * n + (t < i ? t : t + 1);
            }
    ws->bytes = sizeof *ws + 2 * E * sizeof(int);
    if (c->arch == CN_ARCH_EGNN)
        st = precision == CN_F32 ? cn_egnn_wsp_alloc_f(ws) : cn_egnn_wsp_alloc_d(ws);
    else
        st = precision == CN_F32 ? cn_wsp_alloc_f(ws) : cn_wsp_alloc_d(ws);
    if (st) {
        cn_ws_free(ws);
        return cn_fail(err, st, "out of memory for a workspace of %d graphs", max_graphs);
    }
    *out = ws;
    return CN_OK;
}

/* Free a workspace. */
void cn_ws_free(struct cn_ws *ws)
{
    if (!ws)
        return;
    if (ws->precision == CN_F32)
        cn_wsp_free_f(ws);
    else
        cn_wsp_free_d(ws);
    free(ws->row);
    free(ws->col);
    free(ws);
}

/* Bytes held by a workspace. */
size_t cn_ws_bytes(const struct cn_ws *ws) { return ws->bytes; }

/* Float forward pass (checks the workspace precision). */
int cn_forward(struct cn_ws *ws, const float *param, int graphs, const float *x,
               const float *v, const float *q, const float *field, float *x_out, float *v_out)
{
    if (!ws || ws->precision != CN_F32 || !param)
        return CN_EARG;
    if (ws->cfg.arch == CN_ARCH_EGNN)
        return field ? CN_EARG : cn_egnn_forward_impl_f(ws, param, graphs, x, v, q, x_out, v_out);
    return cn_forward_impl_f(ws, param, graphs, x, v, q, field, x_out, v_out);
}

/* Mirror x -> -x. */
void cn_mirror_x(size_t nodes, const float *src, float *dst)
{
    for (size_t i = 0; i < nodes; i++) {
        dst[3 * i] = -src[3 * i];
        dst[3 * i + 1] = src[3 * i + 1];
        dst[3 * i + 2] = src[3 * i + 2];
    }
}

/* Forward of a prediction, reflection-averaged when the config says so (see internal.h). */
int cn_forward_predict(struct cn_ws *ws, const float *param, int graphs, const float *x,
                       const float *v, const float *q, const float *field, float *x_out,
                       float *v_out, float *scratch)
{
    int st = cn_forward(ws, param, graphs, x, v, q, field, x_out, v_out);
    if (st || !ws->cfg.reflect_avg)
        return st;
    if (!scratch)
        return CN_EARG;
    const size_t nodes = (size_t)graphs * ws->n, nb = 3 * nodes;
    float *mx = scratch, *mv = mx + nb, *xm = mv + nb, *vm = xm + nb;
    cn_mirror_x(nodes, x, mx);
    cn_mirror_x(nodes, v, mv);
    if ((st = cn_forward(ws, param, graphs, mx, mv, q, field, xm, v_out ? vm : NULL)))
        return st;
    for (size_t k = 0; k < nb; k++) { /* the mirror's predictions, mirrored back */
        const float s = k % 3 == 0 ? -1.0f : 1.0f;
        x_out[k] = 0.5f * (x_out[k] + s * xm[k]);
        if (v_out)
            v_out[k] = 0.5f * (v_out[k] + s * vm[k]);
    }
    return CN_OK;
}

/* Float backward pass. */
int cn_backward(struct cn_ws *ws, const float *param, const float *dx_out, const float *dv_out,
                float *grad, float *dx_in, float *dv_in)
{
    if (!ws || ws->precision != CN_F32 || !param)
        return CN_EARG;
    if (ws->cfg.arch == CN_ARCH_EGNN)
        return cn_egnn_backward_impl_f(ws, param, dx_out, dv_out, grad, dx_in, dv_in);
    return cn_backward_impl_f(ws, param, dx_out, dv_out, grad, dx_in, dv_in);
}

/* Double forward pass. */
int cn_forward_d(struct cn_ws *ws, const double *param, int graphs, const double *x,
                 const double *v, const double *q, const double *field, double *x_out,
                 double *v_out)
{
    if (!ws || ws->precision != CN_F64 || !param)
        return CN_EARG;
    if (ws->cfg.arch == CN_ARCH_EGNN)
        return field ? CN_EARG : cn_egnn_forward_impl_d(ws, param, graphs, x, v, q, x_out, v_out);
    return cn_forward_impl_d(ws, param, graphs, x, v, q, field, x_out, v_out);
}

/* Double backward pass. */
int cn_backward_d(struct cn_ws *ws, const double *param, const double *dx_out,
                  const double *dv_out, double *grad, double *dx_in, double *dv_in)
{
    if (!ws || ws->precision != CN_F64 || !param)
        return CN_EARG;
    if (ws->cfg.arch == CN_ARCH_EGNN)
        return cn_egnn_backward_impl_d(ws, param, dx_out, dv_out, grad, dx_in, dv_in);
    return cn_backward_impl_d(ws, param, dx_out, dv_out, grad, dx_in, dv_in);
}

/* Mean squared error and optionally its scaled gradient. */
double cn_mse(long count, const float *pred, const float *target, double scale, float *dpred)
{
    double s = 0;
    for (long k = 0; k < count; k++) {
        double d = (double)pred[k] - (double)target[k];
        s += d * d;
        if (dpred)
            dpred[k] = (float)(scale * 2.0 * d / (double)count);
    }
    return count > 0 ? s / (double)count : 0;
}

/* -------------------------------------------------------------- AdamW */

/* Allocate parameters, gradients and moments as views of one zeroed buffer. */
int cn_state_init(struct cn_state *s, const struct cn_config *c, char err[CN_ERRLEN])
{
    memset(s, 0, sizeof *s);
    int st = cn_config_check(c, err);
    if (st)
        return st;
    s->cfg = *c;
    cn_layout_build(c, &s->lay);
    s->n_params = s->lay.total;
    size_t per = cn_round16((size_t)s->n_params);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, 4 * per * sizeof(float)) != 0)
        return cn_fail(err, CN_ENOMEM, "out of memory for %ld parameters", s->n_params);
    memset(mem, 0, 4 * per * sizeof(float));
    s->mem = mem;
    s->param = s->mem;
    s->grad = s->mem + per;
    s->m = s->mem + 2 * per;
    s->v = s->mem + 3 * per;
    s->step = 0;
    return CN_OK;
}

/* Free the flat training state. */
void cn_state_free(struct cn_state *s)
{
    free(s->mem);
    memset(s, 0, sizeof *s);
}

/* PyTorch's AdamW defaults. */
void cn_adamw_default(struct cn_adamw *o)
{
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 1e-2;
    o->threads = 1;
}

/* torch.optim.AdamW (single-tensor path), element by element in float. */
void cn_adamw_step(struct cn_state *s, const struct cn_adamw *o, double lr)
{
    s->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)s->step);
    const double bc2 = 1.0 - pow(o->beta2, (double)s->step);
    const float decay = (float)(1.0 - lr * o->weight_decay);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float a1 = (float)(1.0 - o->beta1), a2 = (float)(1.0 - o->beta2);
    const float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    float *restrict p = s->param, *restrict m = s->m, *restrict v = s->v;
    const float *restrict g = s->grad;
    /* elementwise, so the thread count cannot change a result */
    const int threads = o->threads > 1 && s->n_params > 65536 ? o->threads : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (long k = 0; k < s->n_params; k++) {
        p[k] *= decay;
        m[k] = m[k] * b1 + g[k] * a1;
        v[k] = v[k] * b2 + a2 * (g[k] * g[k]);
        float denom = sqrtf(v[k]) / bc2s + eps;
        p[k] += -step_size * (m[k] / denom);
    }
}

/* StepLR's learning rate at an epoch. */
double cn_steplr(double lr0, int epoch, int step_size, double gamma)
{
    if (step_size < 1)
        step_size = 1;
    return lr0 * pow(gamma, (double)(epoch / step_size));
}

/* Cosine annealing's learning rate at an epoch. */
double cn_cosinelr(double lr0, double lr_min, int epoch, int epochs)
{
    const double pi = 3.14159265358979323846;
    if (epochs < 1)
        return lr0;
    return lr_min + (lr0 - lr_min) * 0.5 * (1.0 + cos(pi * (double)epoch / (double)epochs));
}

/* One-cycle's learning rate at step i of total (PyTorch's OneCycleLR: pct_start 0.3,
 * div_factor 25, final_div_factor 1e4, cosine annealing). */
double cn_onecyclelr(double lr_max, long i, long total)
{
    const double pi = 3.14159265358979323846;
    const double lr0 = lr_max / 25.0, lr_end = lr0 / 1e4;
    const double end1 = 0.3 * (double)total - 1.0, end2 = (double)total - 1.0;
    double a, b, pct;
    if ((double)i <= end1) {
        a = lr0, b = lr_max, pct = end1 > 0 ? (double)i / end1 : 1.0;
    } else {
        a = lr_max, b = lr_end, pct = end2 > end1 ? ((double)i - end1) / (end2 - end1) : 1.0;
    }
    if (pct > 1)
        pct = 1;
    return b + (a - b) * 0.5 * (1.0 + cos(pi * pct));
}

/* Global-norm gradient clipping. */
double cn_clip_grad(float *g, long n, double max_norm)
{
    double s = 0;
    for (long k = 0; k < n; k++)
        s += (double)g[k] * (double)g[k];
    const double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        const float f = (float)(max_norm / norm);
        for (long k = 0; k < n; k++)
            g[k] *= f;
    }
    return norm;
}
