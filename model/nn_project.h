/* nn_project.h: the momentum projection of a step model (struct cn_config.momentum). With unit
 * masses and forces that cancel in pairs (Coulomb), the centroid of a system moves as a free
 * particle under the uniform acceleration a of the setting (static: g along +z; charged: 0):
 * over H simulation steps of the kick-drift scheme (SPEC §1) from a recorded state (x, v),
 *     mean v' = mean v + H dt a,        mean x' = mean x + H dt mean v + dt^2 H (H + 1) / 2 a.
 * The projection replaces the centroid of the network's raw output by exactly that, per graph:
 *     x'_i = x^_i - mean_j x^_j + mean x + tau mean v + sx,   v'_i = v^_i - mean_j v^_j + mean v + sv,
 * with tau = H dt, sv = H dt a, sx = dt^2 H (H + 1) / 2 a (cn_config_set_momentum). It is linear,
 * commutes with rotations about the field's axis and with translations, so an equivariant
 * network stays equivariant. Only the clamp of SPEC §1 at close encounters breaks the law. */

/* Project G graphs of n bodies in place: xo, vo [G n 3] raw outputs, x, v the inputs. */
static void SUF(project_forward)(int G, int n, double tau, const double sx[3], const double sv[3],
                                 const REAL *x, const REAL *v, REAL *xo, REAL *vo)
{
    for (int g = 0; g < G; g++) {
        const size_t o = (size_t)g * n * 3;
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
            const REAL cx = mx + (REAL)tau * mv + (REAL)sx[k] - mxo, cv = mv + (REAL)sv[k] - mvo;
            for (int i = 0; i < n; i++) {
                xo[o + 3 * i + k] += cx;
                vo[o + 3 * i + k] += cv;
            }
        }
    }
}

/* Backward of project_forward: from the gradients dx, dv of the projected outputs, the
 * gradients of the raw outputs into dxr, dvr (the per-graph mean removed) and, per graph and
 * axis, the gradients the inputs receive through the centroid terms: mean dx for every x_i,
 * tau mean dx + mean dv for every v_i, into gx[G][3], gv[G][3]. */
static void SUF(project_backward)(int G, int n, double tau, const REAL *dx, const REAL *dv,
                                  REAL *dxr, REAL *dvr, REAL *gx, REAL *gv)
{
    for (int g = 0; g < G; g++) {
        const size_t o = (size_t)g * n * 3;
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
            gv[3 * g + k] = (REAL)tau * mdx + mdv;
        }
    }
}

/* The second half of project_backward: every body of graph g receives the centroid terms
 * gx[g], gv[g] into its input gradients dx_in, dv_in [G n 3] (either may be NULL). */
static void SUF(project_inputs_backward)(int G, int n, const REAL *gx, const REAL *gv,
                                         REAL *dx_in, REAL *dv_in)
{
    for (int k = 0; k < 3 * G * n; k++) {
        const int gk = 3 * (k / (3 * n)) + k % 3;
        if (dx_in)
            dx_in[k] += gx[gk];
        if (dv_in)
            dv_in[k] += gv[gk];
    }
}
