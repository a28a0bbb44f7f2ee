/* nn_project.h: the momentum projection of a step model (struct cn_config.momentum). Unit masses
 * and Coulomb forces that cancel in pairs leave the total momentum to the external field, and in
 * every setting the reference's kick-drift scheme (SPEC §1) then fixes it exactly from what a
 * step model sees, its input (x, v) and its output (x', v') H simulation steps later:
 *
 * Centroid mode (charged: a = 0; static: a = g along +z). The centroid moves as a free particle
 * under the uniform acceleration a:
 *     mean v' = mean v + H dt a,        mean x' = mean x + H dt mean v + dt^2 H (H + 1) / 2 a.
 * The projection replaces the centroid of the network's raw output (x^, v^) by exactly that:
 *     x'_i = x^_i - mean_j x^_j + mean x + tau mean v + sx,   v'_i = v^_i - mean_j v^_j + mean v + sv,
 * with tau = H dt, sv = H dt a, sx = dt^2 H (H + 1) / 2 a (cn_config_set_momentum).
 *
 * Lorentz mode (dynamic: F_i = Coulomb + q_i v_i x B). Kick s of a step uses the velocity u_s
 * the drift before it used, so the magnetic impulse dt sum_s q_i u_s x B telescopes into the
 * step's displacement: with h = dt,
 *     sum_i v'_i + h sum_i q_i v'_i x B = sum_i v_i + sum_i q_i (x'_i - x_i + h v_i) x B,
 * three linear equations in v' for any H. The projection keeps x' = x^ and shifts every
 * velocity of a graph by one vector c, the solution of
 *     n c + h Q c x B = r,   r = sum_i (v_i - v^_i) + q_i (x^_i - x_i + h (v_i - v^_i)) x B,
 * Q = sum_i q_i: the matrix M = n I - h Q [B]x is invertible (its eigenvalues n, n +- i h Q |B|).
 *
 * Both are linear and commute with the rotations that keep the field (a or B) and with
 * translations, so an equivariant network stays equivariant. Only the force clamp of SPEC §1
 * at close encounters breaks the laws. */

/* Solve the 3x3 system (a I + b [B]x) c = r by Cramer's rule ([B]x c = B x c). */
static void SUF(solve_shift)(double a, double b, const double B[3], const double r[3],
                             double c[3])
{
    const double m[3][3] = {{a, -b * B[2], b * B[1]}, {b * B[2], a, -b * B[0]},
                            {-b * B[1], b * B[0], a}};
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                       m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    for (int k = 0; k < 3; k++) {
        double t[3][3];
        memcpy(t, m, sizeof(t));
        for (int i = 0; i < 3; i++)
            t[i][k] = r[i];
        c[k] = (t[0][0] * (t[1][1] * t[2][2] - t[1][2] * t[2][1]) -
                t[0][1] * (t[1][0] * t[2][2] - t[1][2] * t[2][0]) +
                t[0][2] * (t[1][0] * t[2][1] - t[1][1] * t[2][0])) / det;
    }
}

/* a x b into o. */
static void SUF(cross_d)(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

/* Project G graphs of n bodies in place (c->momentum set): xo, vo [G n 3] raw outputs, x, v the
 * inputs, q the charges [G n]. */
static void SUF(project_forward)(const struct cn_config *c, int G, int n, const REAL *x,
                                 const REAL *v, const REAL *q, REAL *xo, REAL *vo)
{
    for (int g = 0; g < G; g++) {
        const size_t o = (size_t)g * n * 3;
        if (c->proj_lorentz) {
            const double h = c->proj_h;
            double r[3] = {0, 0, 0}, Q = 0, shift[3];
            for (int i = 0; i < n; i++) {
                const size_t b = o + 3 * (size_t)i;
                const double qi = q[(size_t)g * n + i];
                double a[3], axb[3];
                for (int k = 0; k < 3; k++) {
                    const double dv = (double)v[b + k] - vo[b + k];
                    r[k] += dv;
                    a[k] = qi * ((double)xo[b + k] - x[b + k] + h * dv);
                }
                SUF(cross_d)(a, c->proj_b, axb);
                for (int k = 0; k < 3; k++)
                    r[k] += axb[k];
                Q += qi;
            }
            SUF(solve_shift)(n, -h * Q, c->proj_b, r, shift);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    vo[o + 3 * i + k] += (REAL)shift[k];
            continue;
        }
        for (int k = 0; k < 3; k++) {
            REAL mx = 0, mv = 0, mxo = 0, mvo = 0;
            for (int i = 0; i < n; i++) {
                mx += x[o + 3 * i + k];
                mv += v[o + 3 * i + k];
                mxo += xo[o + 3 * i + k];
                mvo += vo[o + 3 * i + k];
            }
            mx /= n;
            mv /= n;
            mxo /= n;
            mvo /= n;
            const REAL cx = mx + (REAL)c->proj_tau * mv + (REAL)c->proj_dx[k] - mxo,
                       cv = mv + (REAL)c->proj_dv[k] - mvo;
            for (int i = 0; i < n; i++) {
                xo[o + 3 * i + k] += cx;
                vo[o + 3 * i + k] += cv;
            }
        }
    }
}

/* Backward of project_forward: from the gradients dx, dv of the projected outputs, the
 * gradients of the raw outputs into dxr, dvr and, per graph, what the inputs receive into
 * gx[G][3], gv[G][3] (project_inputs_backward spreads them over the bodies). Centroid mode: the
 * per-graph mean removed from dx, dv; gx = mean dx, gv = tau mean dx + mean dv. Lorentz mode:
 * with l = M^-T sum_i dv_i and w = B x l, dvr_i = dv_i - l - h q_i w, dxr_i = dx_i + q_i w;
 * gx = l, gv = w. */
static void SUF(project_backward)(const struct cn_config *c, int G, int n, const REAL *q,
                                  const REAL *dx, const REAL *dv, REAL *dxr, REAL *dvr, REAL *gx,
                                  REAL *gv)
{
    for (int g = 0; g < G; g++) {
        const size_t o = (size_t)g * n * 3;
        if (c->proj_lorentz) {
            const double h = c->proj_h;
            double sdv[3] = {0, 0, 0}, Q = 0, l[3], w[3];
            for (int i = 0; i < n; i++) {
                Q += q[(size_t)g * n + i];
                for (int k = 0; k < 3; k++)
                    sdv[k] += dv[o + 3 * i + k];
            }
            SUF(solve_shift)(n, h * Q, c->proj_b, sdv, l); /* M^T = n I + h Q [B]x */
            SUF(cross_d)(c->proj_b, l, w);
            for (int i = 0; i < n; i++) {
                const double qi = q[(size_t)g * n + i];
                for (int k = 0; k < 3; k++) {
                    dvr[o + 3 * i + k] = (REAL)(dv[o + 3 * i + k] - l[k] - h * qi * w[k]);
                    dxr[o + 3 * i + k] = (REAL)(dx[o + 3 * i + k] + qi * w[k]);
                }
            }
            for (int k = 0; k < 3; k++) {
                gx[3 * g + k] = (REAL)l[k];
                gv[3 * g + k] = (REAL)w[k];
            }
            continue;
        }
        for (int k = 0; k < 3; k++) {
            REAL mdx = 0, mdv = 0;
            for (int i = 0; i < n; i++) {
                mdx += dx[o + 3 * i + k];
                mdv += dv[o + 3 * i + k];
            }
            mdx /= n;
            mdv /= n;
            for (int i = 0; i < n; i++) {
                dxr[o + 3 * i + k] = dx[o + 3 * i + k] - mdx;
                dvr[o + 3 * i + k] = dv[o + 3 * i + k] - mdv;
            }
            gx[3 * g + k] = mdx;
            gv[3 * g + k] = (REAL)c->proj_tau * mdx + mdv;
        }
    }
}

/* The second half of project_backward: the input gradients dx_in, dv_in [G n 3] (either may be
 * NULL) receive what gx, gv hold. Centroid mode: gx[g], gv[g] on every body of graph g.
 * Lorentz mode: dx_in_i -= q_i w, dv_in_i += l + h q_i w (l = gx[g], w = gv[g]). */
static void SUF(project_inputs_backward)(const struct cn_config *c, int G, int n, const REAL *q,
                                         const REAL *gx, const REAL *gv, REAL *dx_in,
                                         REAL *dv_in)
{
    for (int k = 0; k < 3 * G * n; k++) {
        const int gk = 3 * (k / (3 * n)) + k % 3;
        if (c->proj_lorentz) {
            const double qi = q[k / 3];
            if (dx_in)
                dx_in[k] -= (REAL)(qi * gv[gk]);
            if (dv_in)
                dv_in[k] += (REAL)(gx[gk] + c->proj_h * qi * gv[gk]);
            continue;
        }
        if (dx_in)
            dx_in[k] += gx[gk];
        if (dv_in)
            dv_in[k] += gv[gk];
    }
}
