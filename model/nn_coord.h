/* nn_coord.h: the coordinate message of a ClofNet layer, x_i += mean_j clamp(c1 a + c2 b +
 * c3 c) with (c1, c2, c3) = MLP_coord(m_ij) (SPEC §3 step 5); for the step task also the
 * velocity message from three more outputs. */

/* MLP_coord on E edges of N = E / (n - 1) receivers (edges grouped by receiver), the clamped
 * frame messages averaged per receiver: Xn = X + mean_j clamp(...), and with CO = 6 also
 * vacc += mean_j clamp(c4 a + c5 b + c6 c). Keeps ac, coef[E][CO] and the unclamped
 * messages tpre[E][CO]. */
static void SUF(coord_forward)(int E, int nm1, const struct SUF(lin) *c1,
                               const struct SUF(lin) *c2, const REAL *m, const REAL *fr,
                               const REAL *X, const struct SUF(silu_act) *ac, REAL *coef,
                               REAL *tpre, REAL *Xn, REAL *vacc)
{
    const int H = c1->out, CO = c2->out, N = E / nm1, step = CO == 6;
    SUF(silu_linear_forward)(E, c1, m, c1->in, ac);
    SUF(small_out)(E, CO, H, ac->m, c2->w, coef);
    for (int i = 0; i < N; i++) {
        REAL ax[3] = {0, 0, 0}, av[3] = {0, 0, 0};
        for (int t = 0; t < nm1; t++) {
            const int e = i * nm1 + t;
            const REAL *f = fr + (size_t)e * FR, *cf = coef + (size_t)e * CO;
            REAL *tp = tpre + (size_t)e * CO;
            for (int k = 0; k < 3; k++) {
                REAL tr = cf[0] * f[FR_A + k] + cf[1] * f[FR_B + k] + cf[2] * f[FR_C + k];
                tp[k] = tr;
                ax[k] += SUF(clamp)(tr);
                if (step) {
                    REAL tv = cf[3] * f[FR_A + k] + cf[4] * f[FR_B + k] + cf[5] * f[FR_C + k];
                    tp[3 + k] = tv;
                    av[k] += SUF(clamp)(tv);
                }
            }
        }
        for (int k = 0; k < 3; k++) {
            Xn[3 * i + k] = X[3 * i + k] + ax[k] / nm1;
            if (step)
                vacc[3 * i + k] += av[k] / nm1;
        }
    }
}

/* Backward of coord_forward from dXn[N][3] (and dvacc when CO = 6, else NULL): writes the
 * frame gradients dF[E][9], adds the gradients of c1, c2 into g1, g2 and dm[E][H] += the
 * gradient of m_ij. A clamped component passes no gradient. Scratch: dcoef[E][CO],
 * dz[E][H]. The identity path X -> Xn is the caller's (dX = dXn). */
static void SUF(coord_backward)(int E, int nm1, const int *row, const struct SUF(lin) *c1,
                                const struct SUF(lin) *c2, const struct SUF(lin) *g1,
                                const struct SUF(lin) *g2, const REAL *m, const REAL *fr,
                                const struct SUF(silu_act) *ac, const REAL *coef,
                                const REAL *tpre, const REAL *dXn, const REAL *dvacc, REAL *dF,
                                REAL *dcoef, REAL *dz, REAL *dm)
{
    const int H = c1->out, CO = c2->out, step = CO == 6;
    for (int e = 0; e < E; e++) {
        const int i = row[e];
        const REAL *f = fr + (size_t)e * FR, *cf = coef + (size_t)e * CO;
        const REAL *tp = tpre + (size_t)e * CO;
        REAL *dcf = dcoef + (size_t)e * CO, *g9 = dF + 9 * (size_t)e;
        REAL dt[3], dtv[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++) {
            dt[k] = (tp[k] >= -CN_CLAMP && tp[k] <= CN_CLAMP) ? dXn[3 * i + k] / nm1 : 0;
            if (step)
                dtv[k] = (tp[3 + k] >= -CN_CLAMP && tp[3 + k] <= CN_CLAMP)
                             ? dvacc[3 * i + k] / nm1 : 0;
        }
        dcf[0] = SUF(dot3)(dt, f + FR_A);
        dcf[1] = SUF(dot3)(dt, f + FR_B);
        dcf[2] = SUF(dot3)(dt, f + FR_C);
        if (step) {
            dcf[3] = SUF(dot3)(dtv, f + FR_A);
            dcf[4] = SUF(dot3)(dtv, f + FR_B);
            dcf[5] = SUF(dot3)(dtv, f + FR_C);
        }
        for (int k = 0; k < 3; k++) {
            g9[k] = cf[0] * dt[k];
            g9[3 + k] = cf[1] * dt[k];
            g9[6 + k] = cf[2] * dt[k];
            if (step) {
                g9[k] += cf[3] * dtv[k];
                g9[3 + k] += cf[4] * dtv[k];
                g9[6 + k] += cf[5] * dtv[k];
            }
        }
    }
    SUF(small_out_back)(E, CO, H, dcoef, ac->m, c2->w, g2->w, dz, 0);
    SUF(silu_linear_backward)(E, c1, g1, m, c1->in, ac, dz, dm, H, 1);
}
