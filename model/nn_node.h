/* nn_node.h: the node update of a layer, t_i = resid h_i + MLP_node([h_i, sum_j m_ij])
 * (128 -> 64, SiLU, 64 -> 64; ClofNet adds the residual twice, resid = 2, SPEC §3 step 5),
 * and the LayerNorm that follows it in ClofNet. */

/* cat[N][2H] = [h_i, sum_j m_ij] over the nm1 edges of each receiver (in edge order), an
 * = SiLU(n1 cat), t[N][H] = n2 an + (b2 + resid h). */
static void SUF(node_forward)(int N, int nm1, const struct SUF(lin) *n1,
                              const struct SUF(lin) *n2, REAL resid, const REAL *h,
                              const REAL *m, REAL *cat, const struct SUF(silu_act) *an, REAL *t)
{
    const int H = n2->out;
    for (int i = 0; i < N; i++) {
        REAL *ci = cat + (size_t)i * 2 * H;
        memcpy(ci, h + (size_t)i * H, sizeof(REAL) * H);
        REAL *agg = ci + H;
        memcpy(agg, m + (size_t)i * nm1 * H, sizeof(REAL) * H);
        for (int u = 1; u < nm1; u++) {
            const REAL *me = m + ((size_t)i * nm1 + u) * H;
            for (int k = 0; k < H; k++)
                agg[k] += me[k];
        }
    }
    SUF(silu_linear_forward)(N, n1, cat, 2 * H, an);
    SUF(gemm_nt)(N, H, H, an->m, H, n2->w, H, 0, t, H);
    const REAL *b2 = n2->b;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < H; k++)
            t[(size_t)i * H + k] += b2[k] + resid * h[(size_t)i * H + k];
}

/* Backward of node_forward from dt[N][H]: WRITES dh[N][H] (the gradient of h through the
 * residual and the concatenation) and dm[E][H] (every edge of receiver i gets d agg_i),
 * adds the gradients of n1, n2 into g1, g2. Scratch: d1[N][H], dcat[N][2H]. */
static void SUF(node_backward)(int N, int nm1, const struct SUF(lin) *n1,
                               const struct SUF(lin) *n2, const struct SUF(lin) *g1,
                               const struct SUF(lin) *g2, REAL resid, const REAL *cat,
                               const struct SUF(silu_act) *an, const REAL *dt, REAL *d1,
                               REAL *dcat, REAL *dh, REAL *dm)
{
    const int H = n2->out;
    for (size_t k = 0; k < (size_t)N * H; k++)
        dh[k] = resid * dt[k];
    SUF(colsum_acc)(N, H, dt, g2->b);
    SUF(linear_back)(N, H, H, dt, an->m, H, n2->w, H, g2->w, d1, H, 0);
    SUF(silu_linear_backward)(N, n1, g1, cat, 2 * H, an, d1, dcat, 2 * H, 0);
    for (int i = 0; i < N; i++) {
        const REAL *dc = dcat + (size_t)i * 2 * H;
        REAL *d = dh + (size_t)i * H;
        for (int k = 0; k < H; k++)
            d[k] += dc[k];
        for (int u = 0; u < nm1; u++)
            memcpy(dm + ((size_t)i * nm1 + u) * H, dc + H, sizeof(REAL) * H);
    }
}
