/* nn_embed.h: the embedding blocks: node features h = Linear([|v_i|(, q_i)]) (SPEC §3 step 1)
 * and the edge-attribute MLP e_ij = SiLU(Linear(SiLU(Linear(scalars)))) (step 4). */

/* ------------------------------------------------------ node embedding */

/* Node inputs u[N][NI] = [|v_i|] or [|v_i|, q_i] (vn[N] keeps |v_i|) and h[N][H] = u W^T + b,
 * by hand: NI is 1 or 2. */
static void SUF(node_embed_forward)(int N, const struct SUF(lin) *p, const REAL *v,
                                    const REAL *q, REAL *vn, REAL *u, REAL *h)
{
    const int NI = p->in, H = p->out;
    for (int i = 0; i < N; i++) {
        REAL n = CN_SQRT(SUF(dot3)(v + 3 * i, v + 3 * i));
        vn[i] = n;
        u[(size_t)i * NI] = n;
        if (NI == 2)
            u[(size_t)i * NI + 1] = q[i];
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < H; k++) {
            REAL s = p->b[k];
            for (int t = 0; t < NI; t++)
                s += p->w[k * NI + t] * u[(size_t)i * NI + t];
            h[(size_t)i * H + k] = s;
        }
}

/* Backward of node_embed_forward: adds dW, db into g; when dV is not NULL adds the gradient
 * through |v_i| (0 as the subgradient at v_i = 0). The charge input has no gradient. */
static void SUF(node_embed_backward)(int N, const struct SUF(lin) *p, const struct SUF(lin) *g,
                                     const REAL *v, const REAL *vn, const REAL *u,
                                     const REAL *dh, REAL *dV)
{
    const int NI = p->in, H = p->out;
    for (int i = 0; i < N; i++) {
        const REAL *d = dh + (size_t)i * H;
        REAL dvn = 0;
        for (int k = 0; k < H; k++) {
            for (int t = 0; t < NI; t++)
                g->w[k * NI + t] += d[k] * u[(size_t)i * NI + t];
            g->b[k] += d[k];
            dvn += d[k] * p->w[k * NI];
        }
        if (dV && vn[i] > 0)
            for (int k = 0; k < 3; k++)
                dV[3 * i + k] += dvn * v[3 * i + k] / vn[i];
    }
}

/* ------------------------------------------- edge-attribute embedding */

/* e_ij = SiLU(f2 SiLU(f1 ein)) on E edges: ein[E][EI] -> a1, a2 [E][H/2]; a2.m is e_ij. */
static void SUF(edge_embed_forward)(int E, const struct SUF(lin) *f1, const struct SUF(lin) *f2,
                                    const REAL *ein, const struct SUF(silu_act) *a1,
                                    const struct SUF(silu_act) *a2)
{
    SUF(silu_linear_forward)(E, f1, ein, f1->in, a1);
    SUF(silu_linear_forward)(E, f2, a1->m, f2->in, a2);
}

/* Backward of edge_embed_forward from de[E][H/2] (overwritten), with scratch d1[E][H/2]:
 * adds the gradients of f1, f2 into g1, g2 and writes din[E][EI] when din is not NULL. */
static void SUF(edge_embed_backward)(int E, const struct SUF(lin) *f1, const struct SUF(lin) *f2,
                                     const struct SUF(lin) *g1, const struct SUF(lin) *g2,
                                     const REAL *ein, const struct SUF(silu_act) *a1,
                                     const struct SUF(silu_act) *a2, REAL *de, REAL *d1,
                                     REAL *din)
{
    SUF(silu_linear_backward)(E, f2, g2, a1->m, f2->in, a2, de, d1, f2->in, 0);
    SUF(silu_linear_backward)(E, f1, g1, ein, f1->in, a1, d1, din, f1->in, 0);
}
