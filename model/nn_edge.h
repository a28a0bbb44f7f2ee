/* nn_edge.h: the edge MLP of a ClofNet layer, m_ij = MLP_edge([h_i, h_j, |x_i - x_j|^2, e_ij])
 * (161 -> 64 -> 64 -> 64, SiLU after each; SPEC §3 step 5). */

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

/* m_ij on E edges (row = receiver i, col = sender j) of N nodes. The first layer is not
 * applied to the 161-wide concatenation: its h_i and h_j column blocks are multiplied per
 * node (PQ) and gathered per edge, its r2 column is a scaled add. e1's columns are
 * [h_i (H), h_j (H), r2 (1), e_ij (H/2)]. a[2].m is m_ij. */
static void SUF(edge_mlp_forward)(int E, int N, const int *row, const int *col,
                                  const struct SUF(lin) *e1, const struct SUF(lin) *e2,
                                  const struct SUF(lin) *e3, const REAL *h, const REAL *eij,
                                  const REAL *r2, const struct SUF(silu_act) a[3],
                                  const struct SUF(edge_scratch) *sc)
{
    const int H = e1->out, E1 = e1->in, H2 = E1 - 2 * H - 1;
    const REAL *W1 = e1->w;
    SUF(gemm_nt)(N, H, H, h, H, W1, E1, 0, sc->PQ, 2 * H);
    SUF(gemm_nt)(N, H, H, h, H, W1 + H, E1, 0, sc->PQ + H, 2 * H);
    SUF(gemm_nt)(E, H, H2, eij, H2, W1 + 2 * H + 1, E1, 0, a[0].z, H);
    for (int k = 0; k < H; k++)
        sc->wr[k] = W1[(size_t)k * E1 + 2 * H];
    SUF(edge1_silu)(E, H, row, col, sc->PQ, r2, sc->wr, e1->b, a[0].z, a[0].s, a[0].m);
    SUF(silu_linear_forward)(E, e2, a[0].m, H, &a[1]);
    SUF(silu_linear_forward)(E, e3, a[1].m, H, &a[2]);
}

/* Backward of edge_mlp_forward from dm[E][H] (the gradient of m_ij; overwritten): adds the
 * gradients of e1..e3 into g1..g3, adds into de[E][H/2] and dh[N][H], writes dr2[E]. */
static void SUF(edge_mlp_backward)(int E, int N, const int *row, const int *col,
                                   const struct SUF(lin) *e1, const struct SUF(lin) *e2,
                                   const struct SUF(lin) *e3, const struct SUF(lin) *g1,
                                   const struct SUF(lin) *g2, const struct SUF(lin) *g3,
                                   const REAL *h, const REAL *eij, const REAL *r2,
                                   const struct SUF(silu_act) a[3],
                                   const struct SUF(edge_scratch) *sc, REAL *dm, REAL *de,
                                   REAL *dh, REAL *dr2)
{
    const int H = e1->out, E1 = e1->in, H2 = E1 - 2 * H - 1;
    SUF(silu_linear_backward)(E, e3, g3, a[1].m, H, &a[2], dm, sc->d1, H, 0);
    SUF(silu_linear_backward)(E, e2, g2, a[0].m, H, &a[1], sc->d1, sc->d2, H, 0);
    SUF(silu_back)(E, H, a[0].z, a[0].s, sc->d2, sc->d2, g1->b);
    const REAL *dz1 = sc->d2, *W1 = e1->w;
    REAL *dW1 = g1->w;
    /* e_ij block */
    SUF(linear_back)(E, H, H2, dz1, eij, H2, W1 + 2 * H + 1, E1, dW1 + 2 * H + 1, de, H2, 1);
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
