/* nn_vel.h: the velocity scaling of a ClofNet layer, x_i += MLP_vel(h_i) v_i with MLP_vel
 * 64 -> 64, SiLU, 64 -> 1 (SPEC §3 step 5). */

/* s_i = v2 SiLU(v1 h_i) + b (sN[N] keeps s, av the hidden layer), then Xn += s_i v_i. */
static void SUF(vel_forward)(int N, const struct SUF(lin) *v1, const struct SUF(lin) *v2,
                             const REAL *h, const REAL *v, const struct SUF(silu_act) *av,
                             REAL *sN, REAL *Xn)
{
    const int H = v1->out;
    SUF(silu_linear_forward)(N, v1, h, v1->in, av);
    const REAL *W2 = v2->w, b2 = v2->b[0];
    for (int i = 0; i < N; i++) {
        REAL s = SUF(dot_lanes)(H, av->m + (size_t)i * H, W2) + b2;
        sN[i] = s;
        for (int k = 0; k < 3; k++)
            Xn[3 * i + k] += s * v[3 * i + k];
    }
}

/* Backward of vel_forward from dXn[N][3]: dV += s dXn, adds the gradients of v1, v2 into
 * g1, g2 and dh[N][H] += the gradient of h. Scratch: ds[N], dmv[N][H]. */
static void SUF(vel_backward)(int N, const struct SUF(lin) *v1, const struct SUF(lin) *v2,
                              const struct SUF(lin) *g1, const struct SUF(lin) *g2,
                              const REAL *h, const REAL *v, const struct SUF(silu_act) *av,
                              const REAL *sN, const REAL *dXn, REAL *ds, REAL *dmv, REAL *dV,
                              REAL *dh)
{
    const int H = v1->out;
    for (int i = 0; i < N; i++) {
        const REAL *dx = dXn + 3 * i, *vi = v + 3 * i;
        REAL d = SUF(dot3)(dx, vi);
        const REAL s = sN[i];
        for (int k = 0; k < 3; k++)
            dV[3 * i + k] += s * dx[k];
        ds[i] = d;
        g2->b[0] += d;
    }
    SUF(small_out_back)(N, 1, H, ds, av->m, v2->w, g2->w, dmv, 0);
    SUF(silu_linear_backward)(N, v1, g1, h, H, av, dmv, dh, H, 1);
}
