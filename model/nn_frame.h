/* nn_frame.h: the geometric blocks of ClofNet: centring per graph, the local frame of every
 * edge (a, b, c), and the scalarization of the input state on the frames (SPEC §3 steps 2-4). */

/* Frame cache of an edge: d[3] r2 rn a[3] cr[3] crn b[3] c[3]. */
#define FR 18
#define FR_D 0
#define FR_R2 3
#define FR_RN 4
#define FR_A 5
#define FR_CR 8
#define FR_CRN 11
#define FR_B 12
#define FR_C 15

/* ------------------------------------------------------------ centring */

/* X[G][n][3] = x - the centroid cent[G][3] of each graph. */
static void SUF(centre_forward)(int G, int n, const REAL *x, REAL *cent, REAL *X)
{
    for (int g = 0; g < G; g++) {
        REAL *cg = cent + 3 * g;
        for (int k = 0; k < 3; k++) {
            REAL s = 0;
            for (int i = 0; i < n; i++)
                s += x[3 * (g * n + i) + k];
            cg[k] = s / n;
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                X[3 * (g * n + i) + k] = x[3 * (g * n + i) + k] - cg[k];
    }
}

/* Backward of centring, with the centroid added back to the output (x_out = X_L + cent):
 * dx = dX - mean(dX) + mean(dx_out) per graph. */
static void SUF(centre_backward)(int G, int n, const REAL *dX, const REAL *dx_out, REAL *dx)
{
    for (int g = 0; g < G; g++) {
        REAL mc[3] = {0, 0, 0}, mo[3] = {0, 0, 0};
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) {
                mc[k] += dX[3 * (g * n + i) + k];
                mo[k] += dx_out[3 * (g * n + i) + k];
            }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                dx[3 * (g * n + i) + k] = dX[3 * (g * n + i) + k] - mc[k] / n + mo[k] / n;
    }
}

/* -------------------------------------------------------- local frame */

/* Local frame of every edge from positions X: a = d/(|d|+1), b = cr/(|cr|+1), c = a x b with
 * d = x_i - x_j, cr = x_i x x_j; fr[E][FR] keeps the intermediate values. */
static void SUF(frame_forward)(int E, const int *row, const int *col, const REAL *X, REAL *fr)
{
    for (int e = 0; e < E; e++) {
        const REAL *xi = X + 3 * row[e], *xj = X + 3 * col[e];
        REAL *f = fr + (size_t)e * FR;
        for (int k = 0; k < 3; k++)
            f[FR_D + k] = xi[k] - xj[k];
        REAL r2 = SUF(dot3)(f + FR_D, f + FR_D);
        REAL rn = CN_SQRT(r2);
        f[FR_R2] = r2;
        f[FR_RN] = rn;
        for (int k = 0; k < 3; k++)
            f[FR_A + k] = f[FR_D + k] / (rn + 1);
        SUF(cross)(xi, xj, f + FR_CR);
        REAL crn = CN_SQRT(SUF(dot3)(f + FR_CR, f + FR_CR));
        f[FR_CRN] = crn;
        for (int k = 0; k < 3; k++)
            f[FR_B + k] = f[FR_CR + k] / (crn + 1);
        SUF(cross)(f + FR_A, f + FR_B, f + FR_C);
    }
}

/* Backward of frame_forward: from dF[E][9] = (da, db, dc) and dr2[E] (may be NULL), the
 * gradient of |x_i - x_j|^2, adds the position gradients into dX. Norms have no derivative
 * at 0; there the limit of the enclosing expression is used (both are C1 at 0). */
static void SUF(frame_backward)(int E, const int *row, const int *col, const REAL *X,
                                const REAL *fr, const REAL *dF, const REAL *dr2, REAL *dX)
{
    for (int e = 0; e < E; e++) {
        const REAL *f = fr + (size_t)e * FR;
        const REAL *xi = X + 3 * row[e], *xj = X + 3 * col[e];
        REAL da[3], db[3], t[3], dcr[3], dd[3];
        for (int k = 0; k < 3; k++) {
            da[k] = dF[9 * (size_t)e + k];
            db[k] = dF[9 * (size_t)e + 3 + k];
        }
        const REAL *dc = dF + 9 * (size_t)e + 6;
        /* c = a x b */
        SUF(cross)(f + FR_B, dc, t);
        for (int k = 0; k < 3; k++)
            da[k] += t[k];
        SUF(cross)(dc, f + FR_A, t);
        for (int k = 0; k < 3; k++)
            db[k] += t[k];
        /* b = cr / (|cr| + 1); the second term vanishes as cr -> 0 (C1 at 0) */
        REAL crn = f[FR_CRN], ib = 1 / (crn + 1);
        for (int k = 0; k < 3; k++)
            dcr[k] = db[k] * ib;
        if (crn > 0) {
            REAL s = SUF(dot3)(f + FR_CR, db) * ib * ib / crn;
            for (int k = 0; k < 3; k++)
                dcr[k] -= f[FR_CR + k] * s;
        }
        /* cr = x_i x x_j */
        REAL *gi = dX + 3 * row[e], *gj = dX + 3 * col[e];
        SUF(cross)(xj, dcr, t);
        for (int k = 0; k < 3; k++)
            gi[k] += t[k];
        SUF(cross)(dcr, xi, t);
        for (int k = 0; k < 3; k++)
            gj[k] += t[k];
        /* a = d / (|d| + 1), same limit at d = 0 */
        REAL rn = f[FR_RN], ia = 1 / (rn + 1);
        for (int k = 0; k < 3; k++)
            dd[k] = da[k] * ia;
        if (rn > 0) {
            REAL s = SUF(dot3)(f + FR_D, da) * ia * ia / rn;
            for (int k = 0; k < 3; k++)
                dd[k] -= f[FR_D + k] * s;
        }
        if (dr2) {
            REAL g = 2 * dr2[e];
            for (int k = 0; k < 3; k++)
                dd[k] += g * f[FR_D + k];
        }
        for (int k = 0; k < 3; k++) {
            gi[k] += dd[k];
            gj[k] -= dd[k];
        }
    }
}

/* ------------------------------------------------------ scalarization */

/* Edge inputs ein[E][EI] from the frames fr of the centred positions X, velocities v, charges
 * q and the field (when has_field): [q_i q_j, r2, sin, cos, p_i (3), p_j (3), proj v_i (3),
 * proj v_j (3), (proj field (3))]; pn[E][3] keeps |p_i|, |p_j| and 1 - cos^2. */
static void SUF(scalarize_forward)(int E, int EI, int has_field, const int *row, const int *col,
                                   const REAL *fr, const REAL *X, const REAL *v, const REAL *q,
                                   const REAL *field, REAL *ein, REAL *pn)
{
    for (int e = 0; e < E; e++) {
        const REAL *f = fr + (size_t)e * FR;
        const REAL *F[3] = {f + FR_A, f + FR_B, f + FR_C};
        const int i = row[e], j = col[e];
        const REAL *xi = X + 3 * i, *xj = X + 3 * j;
        REAL *in = ein + (size_t)e * EI;
        in[0] = q[i] * q[j];
        in[1] = f[FR_R2];
        for (int k = 0; k < 3; k++) {
            in[4 + k] = SUF(dot3)(F[k], xi);
            in[7 + k] = SUF(dot3)(F[k], xj);
            in[10 + k] = SUF(dot3)(F[k], v + 3 * i);
            in[13 + k] = SUF(dot3)(F[k], v + 3 * j);
            if (has_field)
                in[16 + k] = SUF(dot3)(F[k], field);
        }
        REAL ni = CN_SQRT(SUF(dot3)(in + 4, in + 4)), nj = CN_SQRT(SUF(dot3)(in + 7, in + 7));
        REAL cs = SUF(dot3)(in + 4, in + 7) / (ni + (REAL)CN_NORM_EPS) / (nj + (REAL)CN_NORM_EPS);
        REAL s2 = 1 - cs * cs;
        in[2] = CN_SQRT(s2 > 0 ? s2 : 0);
        in[3] = cs;
        pn[3 * (size_t)e] = ni;
        pn[3 * (size_t)e + 1] = nj;
        pn[3 * (size_t)e + 2] = s2;
    }
}

/* Backward of scalarize_forward: from din[E][EI], writes dF[E][9] (the frame gradients) and
 * dr2[E], and adds into dX and dV. The pseudo-sine's derivative -cos/sin is taken with sin^2
 * floored at CN_SIN_FLOOR (see clofnet.h); |p| = 0 uses 0 as its subgradient. */
static void SUF(scalarize_backward)(int E, int EI, int has_field, const int *row,
                                    const int *col, const REAL *fr, const REAL *X,
                                    const REAL *v, const REAL *field, const REAL *ein,
                                    const REAL *pn, const REAL *din, REAL *dF, REAL *dr2,
                                    REAL *dX, REAL *dV)
{
    for (int e = 0; e < E; e++) {
        const REAL *f = fr + (size_t)e * FR;
        const REAL *F[3] = {f + FR_A, f + FR_B, f + FR_C};
        const int i = row[e], j = col[e];
        const REAL *xi = X + 3 * i, *xj = X + 3 * j;
        const REAL *vi = v + 3 * i, *vj = v + 3 * j;
        const REAL *in = ein + (size_t)e * EI, *dn = din + (size_t)e * EI;
        REAL dpi[3], dpj[3];
        const REAL ni = pn[3 * (size_t)e], nj = pn[3 * (size_t)e + 1];
        const REAL s2 = pn[3 * (size_t)e + 2], cs = in[3];
        REAL s2g = s2 > (REAL)CN_SIN_FLOOR ? s2 : (REAL)CN_SIN_FLOOR;
        REAL dcos = dn[3] - dn[2] * cs / CN_SQRT(s2g);
        REAL A = ni + (REAL)CN_NORM_EPS, B = nj + (REAL)CN_NORM_EPS;
        REAL ddot = dcos / A / B, dA = -dcos * cs / A, dB = -dcos * cs / B;
        for (int k = 0; k < 3; k++) {
            dpi[k] = dn[4 + k] + ddot * in[7 + k] + (ni > 0 ? dA * in[4 + k] / ni : 0);
            dpj[k] = dn[7 + k] + ddot * in[4 + k] + (nj > 0 ? dB * in[7 + k] / nj : 0);
        }
        REAL *g9 = dF + 9 * (size_t)e;
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++) {
                REAL g = dpi[r] * xi[k] + dpj[r] * xj[k] + dn[10 + r] * vi[k] + dn[13 + r] * vj[k];
                if (has_field)
                    g += dn[16 + r] * field[k];
                g9[3 * r + k] = g;
            }
        for (int k = 0; k < 3; k++) {
            REAL gxi = 0, gxj = 0, gvi = 0, gvj = 0;
            for (int r = 0; r < 3; r++) {
                gxi += F[r][k] * dpi[r];
                gxj += F[r][k] * dpj[r];
                gvi += F[r][k] * dn[10 + r];
                gvj += F[r][k] * dn[13 + r];
            }
            dX[3 * i + k] += gxi;
            dX[3 * j + k] += gxj;
            dV[3 * i + k] += gvi;
            dV[3 * j + k] += gvj;
        }
        dr2[e] = dn[1];
    }
}
