/* nn_radial.h: EGNN's geometric blocks: the radial geometry of every edge (d = x_i - x_j,
 * r = |d|^2, u = d / (|d| + 1)) and its coordinate message x_i += mean_j clamp(u_ij phi_x(m_ij))
 * (SPEC §3, EGNN_vel step 2). */

/* Geometry cache of an edge: d[3] r rn u[3]. */
#define RG 8
#define RG_D 0
#define RG_R 3
#define RG_RN 4
#define RG_U 5

/* d, r = |d|^2, |d| and u = d / (|d| + 1) of every edge from positions X. */
static void SUF(radial_forward)(int E, const int *row, const int *col, const REAL *X, REAL *geo)
{
    for (int e = 0; e < E; e++) {
        const REAL *xi = X + 3 * row[e], *xj = X + 3 * col[e];
        REAL *g = geo + (size_t)e * RG;
        for (int k = 0; k < 3; k++)
            g[RG_D + k] = xi[k] - xj[k];
        REAL r = SUF(dot3)(g + RG_D, g + RG_D), rn = CN_SQRT(r);
        g[RG_R] = r;
        g[RG_RN] = rn;
        for (int k = 0; k < 3; k++)
            g[RG_U + k] = g[RG_D + k] / (rn + 1);
    }
}

/* Backward of radial_forward from du[E][3] (may be NULL) and dr[E] (may be NULL): adds the
 * position gradients into dX. u is C1 at d = 0, where its derivative is the identity. */
static void SUF(radial_backward)(int E, const int *row, const int *col, const REAL *geo,
                                 const REAL *du, const REAL *dr, REAL *dX)
{
    for (int e = 0; e < E; e++) {
        const REAL *g = geo + (size_t)e * RG;
        REAL dd[3] = {0, 0, 0};
        if (du) {
            const REAL *d = du + 3 * (size_t)e, rn = g[RG_RN], ia = 1 / (rn + 1);
            for (int k = 0; k < 3; k++)
                dd[k] = d[k] * ia;
            if (rn > 0) {
                REAL s = SUF(dot3)(g + RG_D, d) * ia * ia / rn;
                for (int k = 0; k < 3; k++)
                    dd[k] -= g[RG_D + k] * s;
            }
        }
        if (dr) {
            REAL t = 2 * dr[e];
            for (int k = 0; k < 3; k++)
                dd[k] += t * g[RG_D + k];
        }
        REAL *gi = dX + 3 * row[e], *gj = dX + 3 * col[e];
        for (int k = 0; k < 3; k++) {
            gi[k] += dd[k];
            gj[k] -= dd[k];
        }
    }
}

/* phi_x(m_ij) = c2 SiLU(c1 m_ij) (no bias; CO = c2->out outputs) on E edges grouped by
 * receiver, and Xn = X + mean_j clamp(u_ij phi_x); for the step task (CO = 2) also
 * vacc += mean_j clamp(u_ij phi_v) from the second output. Keeps ac, coef[E][CO] and the
 * unclamped messages tpre[E][3 CO]. */
static void SUF(radial_coord_forward)(int E, int nm1, const struct SUF(lin) *c1,
                                      const struct SUF(lin) *c2, const REAL *m, const REAL *geo,
                                      const REAL *X, const struct SUF(silu_act) *ac, REAL *coef,
                                      REAL *tpre, REAL *Xn, REAL *vacc)
{
    const int H = c1->out, N = E / nm1, CO = c2->out;
    SUF(silu_linear_forward)(E, c1, m, c1->in, ac);
    SUF(small_out)(E, CO, H, ac->m, c2->w, coef);
    for (int i = 0; i < N; i++) {
        REAL ax[3] = {0, 0, 0}, av[3] = {0, 0, 0};
        for (int t = 0; t < nm1; t++) {
            const int e = i * nm1 + t;
            const REAL *u = geo + (size_t)e * RG + RG_U, *cf = coef + (size_t)e * CO;
            REAL *tp = tpre + 3 * (size_t)e * CO;
            for (int k = 0; k < 3; k++) {
                tp[k] = u[k] * cf[0];
                ax[k] += SUF(clamp)(tp[k]);
                if (CO == 2) {
                    tp[3 + k] = u[k] * cf[1];
                    av[k] += SUF(clamp)(tp[3 + k]);
                }
            }
        }
        for (int k = 0; k < 3; k++) {
            Xn[3 * i + k] = X[3 * i + k] + ax[k] / nm1;
            if (CO == 2)
                vacc[3 * i + k] += av[k] / nm1;
        }
    }
}

/* Backward of radial_coord_forward from dXn[N][3] (and dvacc[N][3] when CO = 2, else NULL):
 * writes du[E][3], adds the gradients of c1, c2 into g1, g2 and dm[E][H] += the gradient of
 * m_ij; a clamped component passes no gradient. Scratch: dcoef[E][CO], dz[E][H]. The identity
 * paths X -> Xn and vacc are the caller's. */
static void SUF(radial_coord_backward)(int E, int nm1, const int *row,
                                       const struct SUF(lin) *c1, const struct SUF(lin) *c2,
                                       const struct SUF(lin) *g1, const struct SUF(lin) *g2,
                                       const REAL *m, const REAL *geo,
                                       const struct SUF(silu_act) *ac, const REAL *coef,
                                       const REAL *tpre, const REAL *dXn, const REAL *dvacc,
                                       REAL *du, REAL *dcoef, REAL *dz, REAL *dm)
{
    const int H = c1->out, CO = c2->out;
    for (int e = 0; e < E; e++) {
        const int i = row[e];
        const REAL *u = geo + (size_t)e * RG + RG_U, *tp = tpre + 3 * (size_t)e * CO;
        const REAL *cf = coef + (size_t)e * CO;
        REAL dt[3], dtv[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++) {
            dt[k] = (tp[k] >= -CN_CLAMP && tp[k] <= CN_CLAMP) ? dXn[3 * i + k] / nm1 : 0;
            if (CO == 2)
                dtv[k] = (tp[3 + k] >= -CN_CLAMP && tp[3 + k] <= CN_CLAMP)
                             ? dvacc[3 * i + k] / nm1 : 0;
        }
        dcoef[(size_t)e * CO] = SUF(dot3)(dt, u);
        if (CO == 2)
            dcoef[(size_t)e * CO + 1] = SUF(dot3)(dtv, u);
        for (int k = 0; k < 3; k++)
            du[3 * (size_t)e + k] = cf[0] * dt[k] + (CO == 2 ? cf[1] * dtv[k] : 0);
    }
    SUF(small_out_back)(E, CO, H, dcoef, ac->m, c2->w, g2->w, dz, 0);
    SUF(silu_linear_backward)(E, c1, g1, m, c1->in, ac, dz, dm, H, 1);
}
