/* nn_egnn.h: EGNN_vel (SPEC §3, the paper's baseline) as a composition of the blocks of nn_*.h:
 * views of its flat parameters, the saved activations of a batch, the forward pass as a loop
 * over layers and the backward pass as its mirror. No centring, no frames, no LayerNorm. */

/* One EGNN layer's parameters (or gradients). */
struct SUF(egnn_layer_p) {
    struct SUF(lin) e[2];   /* MLP_edge: (2H + 1 + 2) -> H -> H */
    struct SUF(lin) c1, c2; /* phi_x: H -> H, H -> 1 (2 for STEP: phi_v), no bias */
    struct SUF(lin) v1, v2; /* MLP_vel: H -> H -> 1 */
    struct SUF(lin) n1, n2; /* MLP_node: 2H -> H -> H */
};

/* The whole network's parameters (or gradients). */
struct SUF(egnn_p) {
    struct SUF(lin) emb; /* node embedding 1 -> H */
    struct SUF(egnn_layer_p) layer[CN_MAX_LAYERS];
};

/* Resolve every view of a flat EGNN buffer laid out as lay. */
static void SUF(egnn_views)(const struct cn_config *c, const struct cn_layout *lay,
                            const REAL *buffer, struct SUF(egnn_p) *p)
{
    REAL *base = (REAL *)buffer; /* parameter views are only read */
    const int H = c->hidden, EA = cn_edge_in(c);
    p->emb = SUF(lin_at)(base, lay->emb_w, lay->emb_b, c->node_in, H);
    for (int l = 0; l < c->layers; l++) {
        const struct cn_layer_layout *o = &lay->layer[l];
        struct SUF(egnn_layer_p) *y = &p->layer[l];
        y->e[0] = SUF(lin_at)(base, o->e1_w, o->e1_b, 2 * H + 1 + EA, H);
        y->e[1] = SUF(lin_at)(base, o->e2_w, o->e2_b, H, H);
        y->c1 = SUF(lin_at)(base, o->c1_w, o->c1_b, H, H);
        y->c2 = SUF(lin_at)(base, o->c2_w, -1, H, cn_coord_out(c));
        y->v1 = SUF(lin_at)(base, o->v1_w, o->v1_b, H, H);
        y->v2 = SUF(lin_at)(base, o->v2_w, o->v2_b, H, 1);
        y->n1 = SUF(lin_at)(base, o->n1_w, o->n1_b, 2 * H, H);
        y->n2 = SUF(lin_at)(base, o->n2_w, o->n2_b, H, H);
    }
}

/* What the forward pass of one EGNN layer keeps for the backward pass. */
struct SUF(egnn_layer_act) {
    REAL *geo, *r;             /* radial geometry of the layer's positions [E][RG], r [E] */
    struct SUF(silu_act) e[2]; /* MLP_edge layers [E][H]; e[1].m is m_ij */
    struct SUF(silu_act) c;    /* phi_x hidden layer [E][H] */
    REAL *coef, *tpre;         /* phi_x (and phi_v) [E][CO], unclamped messages [E][3 CO] */
    struct SUF(silu_act) v;    /* MLP_vel hidden layer [N][H] */
    REAL *sN;                  /* MLP_vel output [N] */
    REAL *cat;                 /* [h_i, agg_i] [N][2H] */
    struct SUF(silu_act) n;    /* MLP_node hidden layer [N][H] */
};

/* Typed buffers of an EGNN workspace. */
struct SUF(egnn_wsp) {
    REAL *buf;
    REAL *x, *v, *q, *u, *vn;
    REAL *attr;                                          /* [q_i q_j, r_ij of the input] [E][2] */
    REAL *X[CN_MAX_LAYERS + 1], *Hh[CN_MAX_LAYERS + 1]; /* positions, features per layer */
    struct SUF(egnn_layer_act) L[CN_MAX_LAYERS];
    REAL *vacc;                  /* STEP: v + the velocity messages */
    REAL *dxp, *dvp, *pgx, *pgv; /* momentum projection (see nn_clofnet.h) */
    /* scratch of the passes */
    REAL *dH, *dhacc, *d1, *dcat, *dX, *dV, *dm, *dz, *dza, *dattr, *du, *dr, *dcoef, *dsN, *dmv;
    struct SUF(edge_scratch) es;
};

/* Lay out (base NULL: size) every array of an EGNN workspace; returns the element count. */
static size_t SUF(egnn_layout_ws)(void *typed, REAL *base, const struct cn_ws *ws)
{
    struct SUF(egnn_wsp) *w = typed;
    const struct cn_config *c = &ws->cfg;
    size_t G = (size_t)ws->max_graphs, n = (size_t)ws->n;
    size_t N = G * n, E = G * n * (n - 1), H = (size_t)c->hidden, EA = (size_t)cn_edge_in(c);
    size_t CO = (size_t)cn_coord_out(c);
    size_t off = 0;
    w->x = SUF(carve)(base, &off, N * 3);
    w->v = SUF(carve)(base, &off, N * 3);
    w->q = SUF(carve)(base, &off, N);
    w->u = SUF(carve)(base, &off, N * (size_t)c->node_in);
    w->vn = SUF(carve)(base, &off, N);
    w->attr = SUF(carve)(base, &off, E * EA);
    for (int l = 0; l <= c->layers; l++) {
        w->X[l] = SUF(carve)(base, &off, N * 3);
        w->Hh[l] = SUF(carve)(base, &off, N * H);
    }
    for (int l = 0; l < c->layers; l++) {
        struct SUF(egnn_layer_act) *a = &w->L[l];
        a->geo = SUF(carve)(base, &off, E * RG);
        a->r = SUF(carve)(base, &off, E);
        for (int k = 0; k < 2; k++)
            a->e[k] = SUF(carve_act)(base, &off, E * H);
        a->c = SUF(carve_act)(base, &off, E * H);
        a->coef = SUF(carve)(base, &off, E * CO);
        a->tpre = SUF(carve)(base, &off, E * 3 * CO);
        a->v = SUF(carve_act)(base, &off, N * H);
        a->sN = SUF(carve)(base, &off, N);
        a->cat = SUF(carve)(base, &off, N * 2 * H);
        a->n = SUF(carve_act)(base, &off, N * H);
    }
    w->vacc = SUF(carve)(base, &off, N * 3);
    w->dxp = SUF(carve)(base, &off, N * 3);
    w->dvp = SUF(carve)(base, &off, N * 3);
    w->pgx = SUF(carve)(base, &off, G * 3);
    w->pgv = SUF(carve)(base, &off, G * 3);
    w->dH = SUF(carve)(base, &off, N * H);
    w->dhacc = SUF(carve)(base, &off, N * H);
    w->d1 = SUF(carve)(base, &off, N * H);
    w->dcat = SUF(carve)(base, &off, N * 2 * H);
    w->dX = SUF(carve)(base, &off, N * 3);
    w->dV = SUF(carve)(base, &off, N * 3);
    w->dm = SUF(carve)(base, &off, E * H);
    w->dz = SUF(carve)(base, &off, E * H);
    w->dza = SUF(carve)(base, &off, E * H);
    w->dattr = SUF(carve)(base, &off, E * EA);
    w->du = SUF(carve)(base, &off, E * 3);
    w->dr = SUF(carve)(base, &off, E);
    w->dcoef = SUF(carve)(base, &off, E * CO);
    w->dsN = SUF(carve)(base, &off, N);
    w->dmv = SUF(carve)(base, &off, N * H);
    w->es.PQ = SUF(carve)(base, &off, N * 2 * H);
    w->es.dPQ = SUF(carve)(base, &off, N * 2 * H);
    w->es.wr = SUF(carve)(base, &off, 2 * H);
    w->es.d1 = w->dz;
    w->es.d2 = w->dza;
    return off;
}

/* Allocate the typed buffers of an EGNN workspace (sizes already set; freed by cn_wsp_free). */
int SUF(cn_egnn_wsp_alloc)(struct cn_ws *ws)
{
    return SUF(typed_alloc)(ws, sizeof(struct SUF(egnn_wsp)), SUF(egnn_layout_ws));
}

/* Layer l: radial geometry of X_l, m_ij, the coordinate message and velocity scaling into
 * X_{l+1}, and, but for the last layer whose h is never used, h <- h + MLP_node. */
static void SUF(egnn_layer_forward)(struct cn_ws *ws, struct SUF(egnn_wsp) *w,
                                    const struct SUF(egnn_layer_p) *p, int l, int G)
{
    const struct cn_config *c = &ws->cfg;
    const int n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1;
    const int *row = ws->row, *col = ws->col;
    struct SUF(egnn_layer_act) *a = &w->L[l];
    const REAL *X = w->X[l], *h = w->Hh[l];
    REAL *Xn = w->X[l + 1];
    if (l > 0) /* layer 0's geometry was computed for the edge attributes */
        SUF(radial_forward)(E, row, col, X, a->geo);
    for (int e = 0; e < E; e++)
        a->r[e] = a->geo[(size_t)e * RG + RG_R];
    SUF(edge_mlp_forward)(E, N, row, col, 2, p->e, h, w->attr, a->r, a->e, &w->es);
    SUF(radial_coord_forward)(E, nm1, &p->c1, &p->c2, a->e[1].m, a->geo, X, &a->c, a->coef,
                              a->tpre, Xn, w->vacc);
    SUF(vel_forward)(N, &p->v1, &p->v2, h, w->v, &a->v, a->sN, Xn);
    if (l < c->layers - 1)
        SUF(node_forward)(N, nm1, &p->n1, &p->n2, 1, h, a->e[1].m, a->cat, &a->n, w->Hh[l + 1]);
}

/* EGNN forward pass (see cn_forward in clofnet.h). */
int SUF(cn_egnn_forward_impl)(struct cn_ws *ws, const REAL *P, int G, const REAL *x,
                              const REAL *v, const REAL *q, REAL *x_out, REAL *v_out)
{
    struct SUF(egnn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    const int step = c->task == CN_TASK_STEP;
    if (G < 1 || G > ws->max_graphs || !x || !v || !q || !x_out || (step && !v_out))
        return CN_EARG;
    const int n = ws->n, N = G * n, E = G * n * (n - 1);
    struct SUF(egnn_p) p;
    SUF(egnn_views)(c, &ws->lay, P, &p);
    ws->graphs = G;
    memcpy(w->x, x, sizeof(REAL) * 3 * N);
    memcpy(w->v, v, sizeof(REAL) * 3 * N);
    memcpy(w->q, q, sizeof(REAL) * N);
    memcpy(w->X[0], x, sizeof(REAL) * 3 * N);
    SUF(node_embed_forward)(N, &p.emb, v, q, w->vn, w->u, w->Hh[0]);
    SUF(radial_forward)(E, ws->row, ws->col, w->X[0], w->L[0].geo);
    for (int e = 0; e < E; e++) {
        w->attr[2 * (size_t)e] = q[ws->row[e]] * q[ws->col[e]];
        w->attr[2 * (size_t)e + 1] = w->L[0].geo[(size_t)e * RG + RG_R];
    }
    if (step)
        memcpy(w->vacc, v, sizeof(REAL) * 3 * N);
    for (int l = 0; l < c->layers; l++)
        SUF(egnn_layer_forward)(ws, w, &p.layer[l], l, G);
    memcpy(x_out, w->X[c->layers], sizeof(REAL) * 3 * N);
    if (step)
        memcpy(v_out, w->vacc, sizeof(REAL) * 3 * N);
    if (step && c->momentum)
        SUF(project_forward)(c, G, n, x, v, q, x_out, v_out);
    return CN_OK;
}

/* Mirror of egnn_layer_forward: dX from the gradient of X_{l+1} to that of X_l, dH from h_{l+1}
 * to h_l (unused in the last layer), dV += through v, dattr += through the edge attributes. */
static void SUF(egnn_layer_backward)(struct cn_ws *ws, struct SUF(egnn_wsp) *w,
                                     const struct SUF(egnn_layer_p) *p,
                                     const struct SUF(egnn_layer_p) *g, int l, const REAL *dv_out)
{
    const struct cn_config *c = &ws->cfg;
    const int G = ws->graphs, n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1;
    const int H = c->hidden;
    const int *row = ws->row, *col = ws->col;
    const struct SUF(egnn_layer_act) *a = &w->L[l];
    const REAL *h = w->Hh[l], *m = a->e[1].m;
    if (l == c->layers - 1) {
        memset(w->dhacc, 0, sizeof(REAL) * N * H);
        memset(w->dm, 0, sizeof(REAL) * E * H);
    } else {
        SUF(node_backward)(N, nm1, &p->n1, &p->n2, &g->n1, &g->n2, 1, a->cat, &a->n, w->dH,
                           w->d1, w->dcat, w->dhacc, w->dm);
    }
    SUF(vel_backward)(N, &p->v1, &p->v2, &g->v1, &g->v2, h, w->v, &a->v, a->sN, w->dX, w->dsN,
                      w->dmv, w->dV, w->dhacc);
    SUF(radial_coord_backward)(E, nm1, row, &p->c1, &p->c2, &g->c1, &g->c2, m, a->geo, &a->c,
                               a->coef, a->tpre, w->dX, dv_out, w->du, w->dcoef, w->dz, w->dm);
    SUF(edge_mlp_backward)(E, N, row, col, 2, p->e, g->e, h, w->attr, a->r, a->e, &w->es, w->dm,
                           w->dattr, w->dhacc, w->dr);
    SUF(radial_backward)(E, row, col, a->geo, w->du, w->dr, w->dX);
    memcpy(w->dH, w->dhacc, sizeof(REAL) * N * H);
}

/* EGNN backward pass (see cn_backward in clofnet.h). */
int SUF(cn_egnn_backward_impl)(struct cn_ws *ws, const REAL *P, const REAL *dx_out,
                               const REAL *dv_out, REAL *Gr, REAL *dx_in, REAL *dv_in)
{
    struct SUF(egnn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    const int G = ws->graphs, step = c->task == CN_TASK_STEP;
    if (G < 1 || !dx_out || !Gr || (step && !dv_out))
        return CN_EARG;
    const int n = ws->n, N = G * n, E = G * n * (n - 1), H = c->hidden;
    const int want_in = dx_in || dv_in;
    struct SUF(egnn_p) p, g;
    SUF(egnn_views)(c, &ws->lay, P, &p);
    SUF(egnn_views)(c, &ws->lay, Gr, &g);
    const int proj = step && c->momentum;
    if (proj) { /* from here on the gradients of the raw outputs */
        SUF(project_backward)(c, G, n, w->q, dx_out, dv_out, w->dxp, w->dvp, w->pgx, w->pgv);
        dx_out = w->dxp;
        dv_out = w->dvp;
    }
    memcpy(w->dX, dx_out, sizeof(REAL) * 3 * N);
    memset(w->dH, 0, sizeof(REAL) * N * H);
    memset(w->dV, 0, sizeof(REAL) * 3 * N);
    memset(w->dattr, 0, sizeof(REAL) * E * 2);
    for (int l = c->layers - 1; l >= 0; l--)
        SUF(egnn_layer_backward)(ws, w, &p.layer[l], &g.layer[l], l, step ? dv_out : NULL);
    SUF(node_embed_backward)(N, &p.emb, &g.emb, w->v, w->vn, w->u, w->dH, want_in ? w->dV : NULL);
    if (!want_in)
        return CN_OK;
    /* the edge attribute r_ij of the input positions (charges have no gradient) */
    for (int e = 0; e < E; e++)
        w->dr[e] = w->dattr[2 * (size_t)e + 1];
    SUF(radial_backward)(E, ws->row, ws->col, w->L[0].geo, NULL, w->dr, w->dX);
    if (dx_in)
        memcpy(dx_in, w->dX, sizeof(REAL) * 3 * N);
    if (dv_in)
        for (int k = 0; k < 3 * N; k++)
            dv_in[k] = w->dV[k] + (step ? dv_out[k] : 0); /* the identity path v -> vacc */
    if (proj)
        SUF(project_inputs_backward)(c, G, n, w->q, w->pgx, w->pgv, dx_in, dv_in);
    return CN_OK;
}
