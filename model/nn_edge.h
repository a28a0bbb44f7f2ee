/* nn_edge.h: the edge MLP of a message-passing layer: ClofNet's m_ij = MLP_edge([h_i, h_j, |x_i - x_j|^2, e_ij])
 * (161 -> 64 -> 64 -> 64, SiLU after each; SPEC §3 step 5), and EGNN's ([h_i, h_j, r_ij,
 * edge attributes], 131 -> 64 -> 64). */

/* First layer after its e_ij product: z = z + P_i + Q_j + w_r r2 + b, then SiLU. */
CN_CLONES static void SUF(edge1_silu)(int E, int H, const int *row, const int *col,
                                      const REAL *PQ, const REAL *r2, const REAL *wr,
                                      const REAL *b, REAL *restrict z, REAL *restrict s,
                                      REAL *restrict m)
{
    for (int e = 0; e < E; e++) {
        const REAL *Pi = PQ + (size_t)row[e] * 2 * H, *Qj = PQ + (size_t)col[e] * 2 * H + H;
        const REAL re = r2[e];
        REAL *ze = z + (size_t)e * H, *se = s + (size_t)e * H, *me = m + (size_t)e * H;
        for (int k = 0; k < H; k++) {
            REAL zz = ze[k] + Pi[k] + Qj[k] + wr[k] * re + b[k];
            REAL sg = CN_SIGMOID(zz);
            ze[k] = zz;
            se[k] = sg;
            me[k] = zz * sg;
        }
    }
}

/* Backward of edge1_silu after the SiLU: dw_r += dz r2, dP_i += dz, dQ_j += dz (edge order),
 * dr2 = dz . w_r. */
CN_CLONES static void SUF(edge1_back)(int E, int H, const int *row, const int *col,
                                      const REAL *dz1, const REAL *r2, const REAL *wr,
                                      REAL *restrict dwr, REAL *restrict dPQ, REAL *restrict dr2)
{
    for (int e = 0; e < E; e++) {
        const REAL *dz = dz1 + (size_t)e * H;
        const REAL re = r2[e];
        REAL *dP = dPQ + (size_t)row[e] * 2 * H, *dQ = dPQ + (size_t)col[e] * 2 * H + H;
        for (int k = 0; k < H; k++) {
            dwr[k] += dz[k] * re;
            dP[k] += dz[k];
        }
        for (int k = 0; k < H; k++)
            dQ[k] += dz[k];
        dr2[e] = SUF(dot_lanes)(H, dz, wr);
    }
}

/* Scratch of the edge MLP: node-level products PQ[N][2H], the r2 column w_r and its
 * gradient wr[2H], their gradient dPQ[N][2H], and two [E][H] gradient buffers. */
struct SUF(edge_scratch) {
    REAL *PQ, *wr, *dPQ, *d1, *d2;
};

/* m_ij on E edges (row = receiver i, col = sender j) of N nodes through nl layers e[0..nl)
 * (SiLU after each). The first layer is not applied to the concatenation: its h_i and h_j
 * column blocks are multiplied per node (PQ) and gathered per edge, its r2 column is a scaled
 * add, and its last columns multiply attr[E][K], K = in - 2H - 1. e[0]'s columns are
 * [h_i (H), h_j (H), r2 (1), attr (K)]: ClofNet's attr is e_ij (K = H/2, nl = 3), EGNN's the
 * edge attributes (K = 2, nl = 2). a[nl - 1].m is m_ij. */
static void SUF(edge_mlp_forward)(int E, int N, const int *row, const int *col, int nl,
                                  const struct SUF(lin) *e, const REAL *h, const REAL *attr,
                                  const REAL *r2, const struct SUF(silu_act) *a,
                                  const struct SUF(edge_scratch) *sc)
{
    const int H = e[0].out, E1 = e[0].in, K = E1 - 2 * H - 1;
    const REAL *W1 = e[0].w;
    SUF(gemm_nt)(N, H, H, h, H, W1, E1, 0, sc->PQ, 2 * H);
    SUF(gemm_nt)(N, H, H, h, H, W1 + H, E1, 0, sc->PQ + H, 2 * H);
    SUF(gemm_nt)(E, H, K, attr, K, W1 + 2 * H + 1, E1, 0, a[0].z, H);
    for (int k = 0; k < H; k++)
        sc->wr[k] = W1[(size_t)k * E1 + 2 * H];
    SUF(edge1_silu)(E, H, row, col, sc->PQ, r2, sc->wr, e[0].b, a[0].z, a[0].s, a[0].m);
    for (int k = 1; k < nl; k++)
        SUF(silu_linear_forward)(E, &e[k], a[k - 1].m, H, &a[k]);
}

/* Backward of edge_mlp_forward from dm[E][H] (the gradient of m_ij; overwritten): adds the
 * gradients of e[0..nl) into g[0..nl), adds into dattr[E][K] and dh[N][H], writes dr2[E]. */
static void SUF(edge_mlp_backward)(int E, int N, const int *row, const int *col, int nl,
                                   const struct SUF(lin) *e, const struct SUF(lin) *g,
                                   const REAL *h, const REAL *attr, const REAL *r2,
                                   const struct SUF(silu_act) *a,
                                   const struct SUF(edge_scratch) *sc, REAL *dm, REAL *dattr,
                                   REAL *dh, REAL *dr2)
{
    const int H = e[0].out, E1 = e[0].in, K = E1 - 2 * H - 1;
    REAL *buf[2] = {sc->d1, sc->d2}, *d = dm;
    for (int k = nl - 1, w = 0; k >= 1; k--, w ^= 1) {
        SUF(silu_linear_backward)(E, &e[k], &g[k], a[k - 1].m, H, &a[k], d, buf[w], H, 0);
        d = buf[w];
    }
    SUF(silu_back)(E, H, a[0].z, a[0].s, d, d, g[0].b);
    const REAL *dz1 = d, *W1 = e[0].w;
    REAL *dW1 = g[0].w;
    /* attribute block */
    SUF(linear_back)(E, H, K, dz1, attr, K, W1 + 2 * H + 1, E1, dW1 + 2 * H + 1, dattr, K, 1);
    /* r2 column, and the node-level h_i / h_j blocks */
    for (int k = 0; k < H; k++)
        sc->wr[k] = W1[(size_t)k * E1 + 2 * H];
    REAL *dwr = sc->wr + H;
    memset(dwr, 0, sizeof(REAL) * H);
    memset(sc->dPQ, 0, sizeof(REAL) * N * 2 * H);
    SUF(edge1_back)(E, H, row, col, dz1, r2, sc->wr, dwr, sc->dPQ, dr2);
    for (int k = 0; k < H; k++)
        dW1[(size_t)k * E1 + 2 * H] += dwr[k];
    SUF(gemm_tn_acc)(H, H, N, sc->dPQ, 2 * H, h, H, dW1, E1);
    SUF(gemm_tn_acc)(H, H, N, sc->dPQ + H, 2 * H, h, H, dW1 + H, E1);
    SUF(gemm_nn)(N, H, H, sc->dPQ, 2 * H, W1, E1, 1, dh, H);
    SUF(gemm_nn)(N, H, H, sc->dPQ + H, 2 * H, W1 + H, E1, 1, dh, H);
}
