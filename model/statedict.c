/* statedict.c: a network's parameters as the state_dict() of the reference PyTorch modules
 * (ClofNet_vel and EGNN_vel of mouthful/ClofNet), written to and read from NumPy .npz files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "npz.h"

/* Our tensor names (cn_tensor_list, per layer after "layerL.") and the reference module's. */
static const struct {
    const char *ours, *torch;
} layer_names[] = {
    /* in the order Clof_GCL / E_GCL_vel register their modules: edge_mlp, node_mlp, coord_mlp,
     * coord_mlp_vel, layer_norm (Clof_GCL replaces E_GCL's edge_mlp in place) */
    {"edge1.w", "edge_mlp.0.weight"},  {"edge1.b", "edge_mlp.0.bias"},
    {"edge2.w", "edge_mlp.2.weight"},  {"edge2.b", "edge_mlp.2.bias"},
    {"edge3.w", "edge_mlp.4.weight"},  {"edge3.b", "edge_mlp.4.bias"},
    {"node1.w", "node_mlp.0.weight"},  {"node1.b", "node_mlp.0.bias"},
    {"node2.w", "node_mlp.2.weight"},  {"node2.b", "node_mlp.2.bias"},
    {"coord1.w", "coord_mlp.0.weight"}, {"coord1.b", "coord_mlp.0.bias"},
    {"coord2.w", "coord_mlp.2.weight"}, {"vel1.w", "coord_mlp_vel.0.weight"},
    {"vel1.b", "coord_mlp_vel.0.bias"}, {"vel2.w", "coord_mlp_vel.2.weight"},
    {"vel2.b", "coord_mlp_vel.2.bias"}, {"ln.g", "layer_norm.weight"},
    {"ln.b", "layer_norm.bias"},
};
#define N_LAYER_NAMES ((int)(sizeof layer_names / sizeof layer_names[0]))

/* Whether a config has a counterpart among the reference modules; CN_OK or CN_EARG. */
int cn_torch_check(const struct cn_config *c, char err[CN_ERRLEN])
{
    if (c->task != CN_TASK_POSITION)
        return cn_fail(err, CN_EARG, "a step model (learned integrator) has no counterpart in "
                       "the reference PyTorch code, whose ClofNet_vel and EGNN_vel are position "
                       "models (frame 30 -> 40)");
    if (c->node_in != 1 || c->has_field)
        return cn_fail(err, CN_EARG, "a model with %s has no counterpart in the reference "
                       "PyTorch code (node input |v_i| only, no field)",
                       c->has_field ? "the field input" : "charges as node input");
    return CN_OK;
}

/* The state_dict key of one of our tensors; 0, or -1 when it has none. */
static int torch_key(const struct cn_config *c, const char *ours, char *key, size_t len)
{
    const int egnn = c->arch == CN_ARCH_EGNN;
    const char *w = strrchr(ours, '.');
    const char *suffix = w && strcmp(w, ".w") == 0 ? "weight" : "bias";
    if (strncmp(ours, "embed.", 6) == 0)
        return snprintf(key, len, "%s.%s", egnn ? "embedding" : "embedding_node", suffix) < 0;
    if (strncmp(ours, "fuse1.", 6) == 0)
        return snprintf(key, len, "fuse_edge.0.%s", suffix) < 0;
    if (strncmp(ours, "fuse2.", 6) == 0)
        return snprintf(key, len, "fuse_edge.2.%s", suffix) < 0;
    int l, at = 0;
    if (sscanf(ours, "layer%d.%n", &l, &at) == 1 && at > 0)
        for (int k = 0; k < N_LAYER_NAMES; k++)
            if (strcmp(ours + at, layer_names[k].ours) == 0)
                return snprintf(key, len, "gcl_%d.%s", l, layer_names[k].torch) < 0;
    return -1;
}

/* Position of a key in the reference's state_dict order (for writing in that order). */
static int torch_rank(const char *key)
{
    int l, at = 0;
    if (strncmp(key, "embedding", 9) == 0)
        return strstr(key, "bias") ? 1 : 0;
    if (strncmp(key, "fuse_edge.", 10) == 0)
        return 2 + (key[10] == '2') * 2 + (strstr(key, "bias") != NULL);
    if (sscanf(key, "gcl_%d.%n", &l, &at) == 1 && at > 0)
        for (int k = 0; k < N_LAYER_NAMES; k++)
            if (strcmp(key + at, layer_names[k].torch) == 0)
                return 6 + l * N_LAYER_NAMES + k;
    return 1 << 30;
}

/* The state_dict of a config: keys, shapes (biases and LayerNorm 1-D, as PyTorch holds them)
 * and offsets, in the reference's order; returns how many. */
struct torch_tensor {
    char key[64];
    int ndim;
    int64_t shape[2];
    long offset, count;
};

static int cmp_rank(const void *a, const void *b)
{
    int x = torch_rank(((const struct torch_tensor *)a)->key);
    int y = torch_rank(((const struct torch_tensor *)b)->key);
    return (x > y) - (x < y);
}

static int torch_tensors(const struct cn_config *c, struct torch_tensor *out)
{
    struct cn_tensor t[CN_MAX_TENSORS];
    int k = cn_tensor_list(c, t, CN_MAX_TENSORS);
    for (int i = 0; i < k; i++) {
        torch_key(c, t[i].name, out[i].key, sizeof out[i].key);
        const int vec = t[i].cols == 1 && strstr(t[i].name, ".w") == NULL;
        out[i].ndim = vec ? 1 : 2;
        out[i].shape[0] = t[i].rows;
        out[i].shape[1] = t[i].cols;
        out[i].offset = t[i].offset;
        out[i].count = (long)t[i].rows * t[i].cols;
    }
    qsort(out, (size_t)k, sizeof *out, cmp_rank);
    return k;
}

/* Write a model's parameters as the reference module's state_dict (see clofnet.h). */
int cn_npz_export(const char *path, const struct cn_state *s, int compress, char err[CN_ERRLEN])
{
    char why[CN_ERRLEN];
    if (cn_torch_check(&s->cfg, why) != CN_OK)
        return cn_fail(err, CN_EARG, "cannot export: %s", why);
    struct torch_tensor t[CN_MAX_TENSORS];
    struct cn_npz_array a[CN_MAX_TENSORS];
    int k = torch_tensors(&s->cfg, t);
    for (int i = 0; i < k; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].name = t[i].key;
        a[i].ndim = t[i].ndim;
        a[i].shape[0] = t[i].shape[0];
        a[i].shape[1] = t[i].shape[1];
        a[i].data = s->param + t[i].offset;
    }
    return cn_npz_write(path, a, k, compress, err);
}

/* Shape as text, for messages. */
static void shape_text(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t u = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < ndim && u < len; d++)
        u += (size_t)snprintf(buf + u, len - u, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (u < len)
        snprintf(buf + u, len - u, "%s)", ndim == 1 ? "," : "");
}

/* Read a state_dict .npz into a fresh state (see clofnet.h). */
int cn_npz_import(const char *path, int arch, struct cn_state *s, char err[CN_ERRLEN])
{
    memset(s, 0, sizeof *s);
    if (!cn_arch_name(arch))
        return cn_fail(err, CN_EARG, "unknown architecture %d", arch);
    struct cn_npz z;
    int st = cn_npz_read(path, &z, err);
    if (st != CN_OK)
        return st;
    const char *emb = arch == CN_ARCH_EGNN ? "embedding.weight" : "embedding_node.weight";
    const char *other = arch == CN_ARCH_EGNN ? "embedding_node.weight" : "embedding.weight";
    const struct cn_npz_entry *e = cn_npz_find(&z, emb);
    struct cn_config c;
    cn_config_default(&c, CN_TASK_POSITION);
    c.arch = arch;
    char sh[96], sh2[96], cerr[CN_ERRLEN];
    if (!e) {
        st = cn_fail(err, CN_EFORMAT, "%s: no array '%s'%s", path, emb,
                     cn_npz_find(&z, other) ? arch == CN_ARCH_EGNN
                                                  ? ": this is a ClofNet_vel state_dict (use "
                                                    "--arch clofnet)"
                                                  : ": this is an EGNN_vel state_dict (use "
                                                    "--arch egnn)"
                                            : " (not a state_dict of ClofNet_vel or EGNN_vel)");
        goto done;
    }
    /* The width from the embedding (H, 1), the depth from the layers present. */
    if (e->arr.ndim != 2 || e->arr.shape[1] != 1 || e->arr.shape[0] < 2 ||
        e->arr.shape[0] > CN_MAX_HIDDEN || e->arr.shape[0] % 2) {
        shape_text(e->arr.ndim, e->arr.shape, sh, sizeof sh);
        st = cn_fail(err, CN_EFORMAT, "%s: array '%s' has shape %s, expected (H, 1) with H even "
                     "in 2..%d", path, emb, sh, CN_MAX_HIDDEN);
        goto done;
    }
    c.hidden = (int)e->arr.shape[0];
    c.layers = 0;
    for (int l = 0; l < CN_MAX_LAYERS; l++) {
        char key[64];
        snprintf(key, sizeof key, "gcl_%d.edge_mlp.0.weight", l);
        if (!cn_npz_find(&z, key))
            break;
        c.layers = l + 1;
    }
    if (c.layers == 0) {
        st = cn_fail(err, CN_EFORMAT, "%s: no array 'gcl_0.edge_mlp.0.weight' (no layer)", path);
        goto done;
    }
    if (cn_config_check(&c, cerr) != CN_OK) {
        st = cn_fail(err, CN_EFORMAT, "%s: %s", path, cerr);
        goto done;
    }
    struct torch_tensor t[CN_MAX_TENSORS];
    int k = torch_tensors(&c, t);
    /* strict, as load_state_dict(strict=True): every key present with its shape, no other */
    for (int i = 0; i < z.count; i++) {
        int known = 0;
        for (int j = 0; j < k && !known; j++)
            known = strcmp(z.entry[i].name, t[j].key) == 0;
        if (!known) {
            st = cn_fail(err, CN_EFORMAT, "%s: unexpected array '%s' for a %d-layer %s of width "
                         "%d", path, z.entry[i].name, c.layers,
                         arch == CN_ARCH_EGNN ? "EGNN_vel" : "ClofNet_vel", c.hidden);
            goto done;
        }
    }
    for (int j = 0; j < k; j++) {
        const struct cn_npz_entry *a = cn_npz_find(&z, t[j].key);
        if (!a) {
            st = cn_fail(err, CN_EFORMAT, "%s: missing array '%s' (a %d-layer %s of width %d "
                         "has %d)", path, t[j].key, c.layers,
                         arch == CN_ARCH_EGNN ? "EGNN_vel" : "ClofNet_vel", c.hidden, k);
            goto done;
        }
        if (a->arr.ndim != t[j].ndim || a->arr.shape[0] != t[j].shape[0] ||
            (t[j].ndim == 2 && a->arr.shape[1] != t[j].shape[1])) {
            shape_text(a->arr.ndim, a->arr.shape, sh, sizeof sh);
            shape_text(t[j].ndim, t[j].shape, sh2, sizeof sh2);
            st = cn_fail(err, CN_EFORMAT, "%s: array '%s' has shape %s, expected %s", path,
                         t[j].key, sh, sh2);
            goto done;
        }
        if (a->arr.dtype != SIM_NPY_F4) {
            st = cn_fail(err, CN_EFORMAT, "%s: array '%s' is float64, expected float32 (as a "
                         "PyTorch model's state_dict holds it; convert with model.float())",
                         path, t[j].key);
            goto done;
        }
    }
    if ((st = cn_state_init(s, &c, cerr)) != CN_OK) {
        cn_fail(err, st, "%s", cerr);
        goto done;
    }
    /* Values as the checkpoint loader accepts them: finite and |p| <= 1e8. */
    const double max_param = 1e8;
    for (int j = 0; j < k; j++) {
        const struct cn_npz_entry *a = cn_npz_find(&z, t[j].key);
        for (long i = 0; i < t[j].count; i++) {
            const double v = a->arr.data[i];
            if (!isfinite(v) || fabs(v) > max_param) {
                st = cn_fail(err, CN_EDATA, "%s: array '%s' holds %g at index %ld (values must "
                             "be finite and at most 1e8 in magnitude)", path, t[j].key, v, i);
                cn_state_free(s);
                goto done;
            }
            s->param[t[j].offset + i] = (float)v; /* exact: the array is float32 */
        }
    }
done:
    cn_npz_free(&z);
    return st;
}
