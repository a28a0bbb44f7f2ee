/* nn_layernorm.h: LayerNorm over the feature axis with learned scale and shift (eps
 * CN_LN_EPS), as torch.nn.LayerNorm: out = (y - mean) / sqrt(var + eps) g + b. */

/* y[N][H] -> out[N][H], keeping xhat[N][H] and 1/std rstd[N]. */
static void SUF(layernorm_forward)(int N, int H, const REAL *y, const REAL *g, const REAL *b,
                                   REAL *out, REAL *xhat, REAL *rstd)
{
    for (int i = 0; i < N; i++) {
        const REAL *yi = y + (size_t)i * H;
        REAL mu = 0, var = 0;
        for (int k = 0; k < H; k++)
            mu += yi[k];
        mu /= H;
        for (int k = 0; k < H; k++) {
            REAL t = yi[k] - mu;
            var += t * t;
        }
        var /= H;
        REAL rs = 1 / CN_SQRT(var + (REAL)CN_LN_EPS);
        rstd[i] = rs;
        for (int k = 0; k < H; k++) {
            REAL xh = (yi[k] - mu) * rs;
            xhat[(size_t)i * H + k] = xh;
            out[(size_t)i * H + k] = xh * g[k] + b[k];
        }
    }
}

/* Backward of layernorm_forward: dy[N][H] from dout; adds dg, db. */
static void SUF(layernorm_backward)(int N, int H, const REAL *dout, const REAL *xhat,
                                    const REAL *rstd, const REAL *g, REAL *dy, REAL *dg,
                                    REAL *db)
{
    for (int i = 0; i < N; i++) {
        const REAL *d = dout + (size_t)i * H, *xh = xhat + (size_t)i * H;
        REAL s1 = 0, s2 = 0;
        for (int k = 0; k < H; k++) {
            REAL dxh = d[k] * g[k];
            s1 += dxh;
            s2 += dxh * xh[k];
            dg[k] += d[k] * xh[k];
            db[k] += d[k];
        }
        s1 /= H;
        s2 /= H;
        for (int k = 0; k < H; k++)
            dy[(size_t)i * H + k] = rstd[i] * (d[k] * g[k] - s1 - xh[k] * s2);
    }
}
