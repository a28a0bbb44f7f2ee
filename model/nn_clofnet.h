/* nn_clofnet.h: the ClofNet network as a composition of the blocks of nn_*.h: named views of
 * the flat parameters, the saved activations of a batch, the forward pass as a loop over
 * layers and the backward pass as its mirror. */

/* --------------------------------------------------------------- views */

/* One message-passing layer's parameters (or gradients). */
struct SUF(layer_p) {
    struct SUF(lin) e[3];       /* MLP_edge: (2H + 1 + H/2) -> H -> H -> H */
    struct SUF(lin) c1, c2;     /* MLP_coord: H -> H, H -> 3 (6 for STEP), no bias */
    struct SUF(lin) v1, v2;     /* MLP_vel: H -> H -> 1 */
    struct SUF(lin) n1, n2;     /* MLP_node: 2H -> H -> H */
    REAL *ln_g, *ln_b;          /* LayerNorm scale and shift [H] */
};

/* The whole network's parameters (or gradients). */
struct SUF(net_p) {
    struct SUF(lin) emb;    /* node embedding node_in -> H */
    struct SUF(lin) f1, f2; /* edge-attribute MLP edge_in -> H/2 -> H/2 */
    struct SUF(layer_p) layer[CN_MAX_LAYERS];
};

/* A Linear view at offsets w, b (b < 0: no bias) of base. */
static struct SUF(lin) SUF(lin_at)(REAL *base, long w, long b, int in, int out)
{
    struct SUF(lin) l = {base + w, b >= 0 ? base + b : NULL, in, out};
    return l;
}

/* Resolve every view of a flat buffer laid out as lay (the only place offsets are added). */
static void SUF(net_views)(const struct cn_config *c, const struct cn_layout *lay,
                           const REAL *buffer, struct SUF(net_p) *p)
{
    REAL *base = (REAL *)buffer; /* parameter views are only read */
    const int H = c->hidden, H2 = H / 2, CO = cn_coord_out(c);
    p->emb = SUF(lin_at)(base, lay->emb_w, lay->emb_b, c->node_in, H);
    p->f1 = SUF(lin_at)(base, lay->f1_w, lay->f1_b, cn_edge_in(c), H2);
    p->f2 = SUF(lin_at)(base, lay->f2_w, lay->f2_b, H2, H2);
    for (int l = 0; l < c->layers; l++) {
        const struct cn_layer_layout *o = &lay->layer[l];
        struct SUF(layer_p) *y = &p->layer[l];
        y->e[0] = SUF(lin_at)(base, o->e1_w, o->e1_b, 2 * H + 1 + H2, H);
        y->e[1] = SUF(lin_at)(base, o->e2_w, o->e2_b, H, H);
        y->e[2] = SUF(lin_at)(base, o->e3_w, o->e3_b, H, H);
        y->c1 = SUF(lin_at)(base, o->c1_w, o->c1_b, H, H);
        y->c2 = SUF(lin_at)(base, o->c2_w, -1, H, CO);
        y->v1 = SUF(lin_at)(base, o->v1_w, o->v1_b, H, H);
        y->v2 = SUF(lin_at)(base, o->v2_w, o->v2_b, H, 1);
        y->n1 = SUF(lin_at)(base, o->n1_w, o->n1_b, 2 * H, H);
        y->n2 = SUF(lin_at)(base, o->n2_w, o->n2_b, H, H);
        y->ln_g = base + o->ln_g;
        y->ln_b = base + o->ln_b;
    }
}

/* --------------------------------------------------------- activations */

/* What the forward pass of one layer keeps for the backward pass. */
struct SUF(layer_act) {
    REAL *fr, *r2;               /* frame of the layer's positions [E][FR], |x_i - x_j|^2 [E] */
    struct SUF(silu_act) e[3];   /* MLP_edge layers [E][H]; e[2].m is m_ij */
    struct SUF(silu_act) c;      /* MLP_coord hidden layer [E][H] */
    REAL *coef, *tpre;           /* MLP_coord outputs and unclamped messages [E][CO] */
    struct SUF(silu_act) v;      /* MLP_vel hidden layer [N][H] */
    REAL *sN;                    /* MLP_vel output [N] */
    REAL *cat;                   /* [h_i, agg_i] [N][2H] */
    struct SUF(silu_act) n;      /* MLP_node hidden layer [N][H] */
    REAL *xhat, *rstd;           /* LayerNorm [N][H], [N] */
};

/* Typed buffers of a workspace (see struct cn_ws). */
struct SUF(cn_wsp) {
    REAL *buf;
    /* inputs, centring, node embedding, scalarization of the centred input positions */
    REAL *x, *v, *q, *field, *cent, *u, *vn;
    REAL *fr0, *ein, *pn;
    struct SUF(silu_act) f1, f2; /* edge-attribute MLP; f2.m is e_ij [E][H/2] */
    REAL *X[CN_MAX_LAYERS + 1], *Hh[CN_MAX_LAYERS + 1]; /* positions, features per layer */
    struct SUF(layer_act) L[CN_MAX_LAYERS];
    REAL *vacc; /* STEP: v + the velocity messages */
    REAL *dxp, *dvp, *pgx, *pgv; /* momentum projection: raw-output gradients [N][3], input
                                    gradients through the centroid [G][3] */
    /* scratch of the passes */
    REAL *tN, *dH, *dhacc, *dy, *d1, *dcat, *dX, *dV, *dm, *dz, *dza, *de, *dF, *dr2, *dcoef,
        *dein, *dsN, *dmv;
    struct SUF(edge_scratch) es;
};

/* Lay out (base NULL: size) every array of the workspace; returns the element count. */
static size_t SUF(layout_ws)(void *typed, REAL *base, const struct cn_ws *ws)
{
    struct SUF(cn_wsp) *w = typed;
    const struct cn_config *c = &ws->cfg;
    size_t G = (size_t)ws->max_graphs, n = (size_t)ws->n;
    size_t N = G * n, E = G * n * (n - 1), H = (size_t)c->hidden, H2 = H / 2;
    size_t EI = (size_t)cn_edge_in(c), CO = (size_t)cn_coord_out(c), NI = (size_t)c->node_in;
    size_t off = 0;
    w->x = SUF(carve)(base, &off, N * 3);
    w->v = SUF(carve)(base, &off, N * 3);
    w->q = SUF(carve)(base, &off, N);
    w->field = SUF(carve)(base, &off, 3);
    w->cent = SUF(carve)(base, &off, G * 3);
    w->u = SUF(carve)(base, &off, N * NI);
    w->vn = SUF(carve)(base, &off, N);
    w->fr0 = SUF(carve)(base, &off, E * FR);
    w->ein = SUF(carve)(base, &off, E * EI);
    w->pn = SUF(carve)(base, &off, E * 3);
    w->f1 = SUF(carve_act)(base, &off, E * H2);
    w->f2 = SUF(carve_act)(base, &off, E * H2);
    for (int l = 0; l <= c->layers; l++) {
        w->X[l] = SUF(carve)(base, &off, N * 3);
        w->Hh[l] = SUF(carve)(base, &off, N * H);
    }
    for (int l = 0; l < c->layers; l++) {
        struct SUF(layer_act) *a = &w->L[l];
        a->fr = SUF(carve)(base, &off, E * FR);
        a->r2 = SUF(carve)(base, &off, E);
        for (int k = 0; k < 3; k++)
            a->e[k] = SUF(carve_act)(base, &off, E * H);
        a->c = SUF(carve_act)(base, &off, E * H);
        a->coef = SUF(carve)(base, &off, E * CO);
        a->tpre = SUF(carve)(base, &off, E * CO);
        a->v = SUF(carve_act)(base, &off, N * H);
        a->sN = SUF(carve)(base, &off, N);
        a->cat = SUF(carve)(base, &off, N * 2 * H);
        a->n = SUF(carve_act)(base, &off, N * H);
        a->xhat = SUF(carve)(base, &off, N * H);
        a->rstd = SUF(carve)(base, &off, N);
    }
    w->vacc = SUF(carve)(base, &off, N * 3);
    w->dxp = SUF(carve)(base, &off, N * 3);
    w->dvp = SUF(carve)(base, &off, N * 3);
    w->pgx = SUF(carve)(base, &off, G * 3);
    w->pgv = SUF(carve)(base, &off, G * 3);
    w->tN = SUF(carve)(base, &off, N * H);
    w->dH = SUF(carve)(base, &off, N * H);
    w->dhacc = SUF(carve)(base, &off, N * H);
    w->dy = SUF(carve)(base, &off, N * H);
    w->d1 = SUF(carve)(base, &off, N * H);
    w->dcat = SUF(carve)(base, &off, N * 2 * H);
    w->dX = SUF(carve)(base, &off, N * 3);
    w->dV = SUF(carve)(base, &off, N * 3);
    w->dm = SUF(carve)(base, &off, E * H);
    w->dz = SUF(carve)(base, &off, E * H);
    w->dza = SUF(carve)(base, &off, E * H);
    w->de = SUF(carve)(base, &off, E * H2);
    w->dF = SUF(carve)(base, &off, E * 9);
    w->dr2 = SUF(carve)(base, &off, E);
    w->dcoef = SUF(carve)(base, &off, E * CO);
    w->dein = SUF(carve)(base, &off, E * EI);
    w->dsN = SUF(carve)(base, &off, N);
    w->dmv = SUF(carve)(base, &off, N * H);
    w->es.PQ = SUF(carve)(base, &off, N * 2 * H);
    w->es.dPQ = SUF(carve)(base, &off, N * 2 * H);
    w->es.wr = SUF(carve)(base, &off, 2 * H);
    w->es.d1 = w->dz;
    w->es.d2 = w->dza;
    return off;
}

/* Allocate the typed buffers of ws (sizes already set). */
int SUF(cn_wsp_alloc)(struct cn_ws *ws)
{
    return SUF(typed_alloc)(ws, sizeof(struct SUF(cn_wsp)), SUF(layout_ws));
}

/* Free what typed_alloc made (either architecture). */
void SUF(cn_wsp_free)(struct cn_ws *ws)
{
    if (ws->typed) {
        free(*(REAL **)ws->typed);
        free(ws->typed);
    }
    ws->typed = NULL;
}

/* ------------------------------------------------------------- forward */

/* Layer l: frame of X_l, m_ij, the coordinate message and velocity scaling into X_{l+1}
 * (and vacc), and, but for the last layer whose h is never used, the node update. */
static void SUF(layer_forward)(struct cn_ws *ws, struct SUF(cn_wsp) *w,
                               const struct SUF(layer_p) *p, int l, int G)
{
    const struct cn_config *c = &ws->cfg;
    const int n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1, H = c->hidden;
    const int *row = ws->row, *col = ws->col;
    struct SUF(layer_act) *a = &w->L[l];
    const REAL *X = w->X[l], *h = w->Hh[l];
    REAL *Xn = w->X[l + 1];
    SUF(frame_forward)(E, row, col, X, a->fr);
    for (int e = 0; e < E; e++)
        a->r2[e] = a->fr[(size_t)e * FR + FR_R2];
    SUF(edge_mlp_forward)(E, N, row, col, 3, p->e, h, w->f2.m, a->r2, a->e, &w->es);
    SUF(coord_forward)(E, nm1, &p->c1, &p->c2, a->e[2].m, a->fr, X, &a->c, a->coef, a->tpre,
                       Xn, w->vacc);
    SUF(vel_forward)(N, &p->v1, &p->v2, h, w->v, &a->v, a->sN, Xn);
    if (l == c->layers - 1)
        return;
    SUF(node_forward)(N, nm1, &p->n1, &p->n2, 2, h, a->e[2].m, a->cat, &a->n, w->tN);
    SUF(layernorm_forward)(N, H, w->tN, p->ln_g, p->ln_b, w->Hh[l + 1], a->xhat, a->rstd);
}

/* Forward pass (see clofnet.h). */
int SUF(cn_forward_impl)(struct cn_ws *ws, const REAL *P, int G, const REAL *x, const REAL *v,
                         const REAL *q, const REAL *field, REAL *x_out, REAL *v_out)
{
    struct SUF(cn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    if (G < 1 || G > ws->max_graphs || !x || !v || !q || !x_out)
        return CN_EARG;
    if ((c->has_field && !field) || (c->task == CN_TASK_STEP && !v_out))
        return CN_EARG;
    const int n = ws->n, N = G * n, E = G * n * (n - 1);
    const int step = c->task == CN_TASK_STEP;
    struct SUF(net_p) p;
    SUF(net_views)(c, &ws->lay, P, &p);
    ws->graphs = G;

    memcpy(w->x, x, sizeof(REAL) * 3 * N);
    memcpy(w->v, v, sizeof(REAL) * 3 * N);
    memcpy(w->q, q, sizeof(REAL) * N);
    if (c->has_field)
        memcpy(w->field, field, sizeof(REAL) * 3);
    SUF(node_embed_forward)(N, &p.emb, v, q, w->vn, w->u, w->Hh[0]);
    SUF(centre_forward)(G, n, x, w->cent, w->X[0]);
    SUF(frame_forward)(E, ws->row, ws->col, w->X[0], w->fr0);
    SUF(scalarize_forward)(E, cn_edge_in(c), c->has_field, ws->row, ws->col, w->fr0, w->X[0], v,
                           q, field, w->ein, w->pn);
    SUF(edge_embed_forward)(E, &p.f1, &p.f2, w->ein, &w->f1, &w->f2);
    if (step)
        memcpy(w->vacc, v, sizeof(REAL) * 3 * N);
    for (int l = 0; l < c->layers; l++)
        SUF(layer_forward)(ws, w, &p.layer[l], l, G);

    const REAL *XL = w->X[c->layers];
    for (int g = 0; g < G; g++)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                x_out[3 * (g * n + i) + k] = XL[3 * (g * n + i) + k] + w->cent[3 * g + k];
    if (step)
        memcpy(v_out, w->vacc, sizeof(REAL) * 3 * N);
    if (step && c->momentum)
        SUF(project_forward)(c, G, n, x, v, q, x_out, v_out);
    return CN_OK;
}

/* ------------------------------------------------------------ backward */

/* Mirror of layer_forward: from dX (the gradient of X_{l+1}, becomes that of X_l) and dH
 * (of h_{l+1}, becomes that of h_l; unused in the last layer), dV += through v. */
static void SUF(layer_backward)(struct cn_ws *ws, struct SUF(cn_wsp) *w,
                                const struct SUF(layer_p) *p, const struct SUF(layer_p) *g,
                                int l, const REAL *dv_out)
{
    const struct cn_config *c = &ws->cfg;
    const int G = ws->graphs, n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1;
    const int H = c->hidden;
    const int *row = ws->row, *col = ws->col;
    const struct SUF(layer_act) *a = &w->L[l];
    const REAL *X = w->X[l], *h = w->Hh[l], *m = a->e[2].m;

    if (l == c->layers - 1) {
        /* the last layer's node update is not computed (its h is unused) */
        memset(w->dhacc, 0, sizeof(REAL) * N * H);
        memset(w->dm, 0, sizeof(REAL) * E * H);
    } else {
        SUF(layernorm_backward)(N, H, w->dH, a->xhat, a->rstd, p->ln_g, w->dy, g->ln_g, g->ln_b);
        SUF(node_backward)(N, nm1, &p->n1, &p->n2, &g->n1, &g->n2, 2, a->cat, &a->n, w->dy,
                           w->d1, w->dcat, w->dhacc, w->dm);
    }
    SUF(vel_backward)(N, &p->v1, &p->v2, &g->v1, &g->v2, h, w->v, &a->v, a->sN, w->dX, w->dsN,
                      w->dmv, w->dV, w->dhacc);
    SUF(coord_backward)(E, nm1, row, &p->c1, &p->c2, &g->c1, &g->c2, m, a->fr, &a->c, a->coef,
                        a->tpre, w->dX, dv_out, w->dF, w->dcoef, w->dz, w->dm);
    SUF(edge_mlp_backward)(E, N, row, col, 3, p->e, g->e, h, w->f2.m, a->r2, a->e, &w->es,
                           w->dm, w->de, w->dhacc, w->dr2);
    SUF(frame_backward)(E, row, col, X, a->fr, w->dF, w->dr2, w->dX);
    memcpy(w->dH, w->dhacc, sizeof(REAL) * N * H);
}

/* Backward pass (see clofnet.h). */
int SUF(cn_backward_impl)(struct cn_ws *ws, const REAL *P, const REAL *dx_out,
                          const REAL *dv_out, REAL *Gr, REAL *dx_in, REAL *dv_in)
{
    struct SUF(cn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    const int G = ws->graphs;
    const int step = c->task == CN_TASK_STEP;
    if (G < 1 || !dx_out || !Gr || (step && !dv_out))
        return CN_EARG;
    const int n = ws->n, N = G * n, E = G * n * (n - 1), H = c->hidden;
    const int want_in = dx_in || dv_in;
    struct SUF(net_p) p, g;
    SUF(net_views)(c, &ws->lay, P, &p);
    SUF(net_views)(c, &ws->lay, Gr, &g);
    const int proj = step && c->momentum;
    if (proj) { /* from here on the gradients of the raw outputs */
        SUF(project_backward)(c, G, n, w->q, dx_out, dv_out, w->dxp, w->dvp, w->pgx, w->pgv);
        dx_out = w->dxp;
        dv_out = w->dvp;
    }

    memcpy(w->dX, dx_out, sizeof(REAL) * 3 * N);
    memset(w->dH, 0, sizeof(REAL) * N * H);
    memset(w->dV, 0, sizeof(REAL) * 3 * N);
    memset(w->de, 0, sizeof(REAL) * E * (H / 2));
    for (int l = c->layers - 1; l >= 0; l--)
        SUF(layer_backward)(ws, w, &p.layer[l], &g.layer[l], l, step ? dv_out : NULL);
    SUF(edge_embed_backward)(E, &p.f1, &p.f2, &g.f1, &g.f2, w->ein, &w->f1, &w->f2, w->de,
                             w->dza, want_in ? w->dein : NULL);
    SUF(node_embed_backward)(N, &p.emb, &g.emb, w->v, w->vn, w->u, w->dH,
                             want_in ? w->dV : NULL);
    if (!want_in)
        return CN_OK;
    SUF(scalarize_backward)(E, cn_edge_in(c), c->has_field, ws->row, ws->col, w->fr0, w->X[0],
                            w->v, w->field, w->ein, w->pn, w->dein, w->dF, w->dr2, w->dX, w->dV);
    SUF(frame_backward)(E, ws->row, ws->col, w->X[0], w->fr0, w->dF, w->dr2, w->dX);
    if (dx_in)
        SUF(centre_backward)(G, n, w->dX, dx_out, dx_in);
    if (dv_in)
        for (int k = 0; k < 3 * N; k++)
            dv_in[k] = w->dV[k] + (step ? dv_out[k] : 0);
    if (proj)
        SUF(project_inputs_backward)(c, G, n, w->q, w->pgx, w->pgv, dx_in, dv_in);
    return CN_OK;
}
