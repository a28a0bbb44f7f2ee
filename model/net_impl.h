/* net_impl.h: the ClofNet forward and backward passes, written once for a real type REAL
 * and included by net_f.c (float, OpenBLAS sgemm) and net_d.c (double, for gradient checks). */

/* The including file defines REAL, SUF(name), GEMM, CN_SQRT(x) and CN_SIGMOID(z). */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "internal.h"

/* Typed activation buffers of a workspace (see struct cn_ws). */
struct SUF(cn_wsp) {
    REAL *buf;
    /* inputs and the scalarization of the centred input positions */
    REAL *x, *v, *q, *field, *cent, *u, *vn;
    REAL *fr0, *ein, *pn;
    REAL *fz1, *fs1, *fm1, *fz2, *fs2, *fm2;
    /* per layer */
    REAL *X[CN_MAX_LAYERS + 1], *Hh[CN_MAX_LAYERS + 1];
    REAL *fr[CN_MAX_LAYERS], *r2[CN_MAX_LAYERS];
    REAL *z1[CN_MAX_LAYERS], *s1[CN_MAX_LAYERS], *m1[CN_MAX_LAYERS];
    REAL *z2[CN_MAX_LAYERS], *s2[CN_MAX_LAYERS], *m2[CN_MAX_LAYERS];
    REAL *z3[CN_MAX_LAYERS], *s3[CN_MAX_LAYERS], *m3[CN_MAX_LAYERS];
    REAL *zc[CN_MAX_LAYERS], *sc[CN_MAX_LAYERS], *mc[CN_MAX_LAYERS];
    REAL *coef[CN_MAX_LAYERS], *tpre[CN_MAX_LAYERS];
    REAL *zv[CN_MAX_LAYERS], *sv[CN_MAX_LAYERS], *mv[CN_MAX_LAYERS], *sN[CN_MAX_LAYERS];
    REAL *catn[CN_MAX_LAYERS], *zn[CN_MAX_LAYERS], *sn[CN_MAX_LAYERS], *mn[CN_MAX_LAYERS];
    REAL *xhat[CN_MAX_LAYERS], *rstd[CN_MAX_LAYERS];
    REAL *vacc;
    /* scratch of the forward and backward passes */
    REAL *PQ, *tN, *dH, *dhacc, *dy, *dcat, *dX, *dV, *dm, *dz, *dza, *de, *dF, *dr2, *dcoef,
        *dein, *dsN, *dmv, *dPQ, *wr;
};

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

/* Carve count elements from a buffer (base NULL: only count). */
static REAL *SUF(carve)(REAL *base, size_t *off, size_t count)
{
    REAL *p = base ? base + *off : NULL;
    *off += cn_round16(count);
    return p;
}

/* Lay out (base NULL: size) every array of the workspace; returns the element count. */
static size_t SUF(layout_ws)(struct SUF(cn_wsp) *w, REAL *base, const struct cn_ws *ws)
{
    const struct cn_config *c = &ws->cfg;
    size_t G = (size_t)ws->max_graphs, n = (size_t)ws->n;
    size_t N = G * n, E = G * n * (n - 1), H = (size_t)c->hidden, H2 = H / 2;
    size_t EI = (size_t)cn_edge_in(c), CO = (size_t)cn_coord_out(c), NI = (size_t)c->node_in;
    size_t off = 0;
    w->x = SUF(carve)(base, &off, N * 3);
    w->v = SUF(carve)(base, &off, N * 3);
    w->q = SUF(carve)(base, &off, N);
    w->field = SUF(carve)(base, &off, 3);
    w->cent = SUF(carve)(base, &off, G * 3);
    w->u = SUF(carve)(base, &off, N * NI);
    w->vn = SUF(carve)(base, &off, N);
    w->fr0 = SUF(carve)(base, &off, E * FR);
    w->ein = SUF(carve)(base, &off, E * EI);
    w->pn = SUF(carve)(base, &off, E * 3);
    w->fz1 = SUF(carve)(base, &off, E * H2);
    w->fs1 = SUF(carve)(base, &off, E * H2);
    w->fm1 = SUF(carve)(base, &off, E * H2);
    w->fz2 = SUF(carve)(base, &off, E * H2);
    w->fs2 = SUF(carve)(base, &off, E * H2);
    w->fm2 = SUF(carve)(base, &off, E * H2);
    for (int l = 0; l <= c->layers; l++) {
        w->X[l] = SUF(carve)(base, &off, N * 3);
        w->Hh[l] = SUF(carve)(base, &off, N * H);
    }
    for (int l = 0; l < c->layers; l++) {
        w->fr[l] = SUF(carve)(base, &off, E * FR);
        w->r2[l] = SUF(carve)(base, &off, E);
        w->z1[l] = SUF(carve)(base, &off, E * H);
        w->s1[l] = SUF(carve)(base, &off, E * H);
        w->m1[l] = SUF(carve)(base, &off, E * H);
        w->z2[l] = SUF(carve)(base, &off, E * H);
        w->s2[l] = SUF(carve)(base, &off, E * H);
        w->m2[l] = SUF(carve)(base, &off, E * H);
        w->z3[l] = SUF(carve)(base, &off, E * H);
        w->s3[l] = SUF(carve)(base, &off, E * H);
        w->m3[l] = SUF(carve)(base, &off, E * H);
        w->zc[l] = SUF(carve)(base, &off, E * H);
        w->sc[l] = SUF(carve)(base, &off, E * H);
        w->mc[l] = SUF(carve)(base, &off, E * H);
        w->coef[l] = SUF(carve)(base, &off, E * CO);
        w->tpre[l] = SUF(carve)(base, &off, E * CO);
        w->zv[l] = SUF(carve)(base, &off, N * H);
        w->sv[l] = SUF(carve)(base, &off, N * H);
        w->mv[l] = SUF(carve)(base, &off, N * H);
        w->sN[l] = SUF(carve)(base, &off, N);
        w->catn[l] = SUF(carve)(base, &off, N * 2 * H);
        w->zn[l] = SUF(carve)(base, &off, N * H);
        w->sn[l] = SUF(carve)(base, &off, N * H);
        w->mn[l] = SUF(carve)(base, &off, N * H);
        w->xhat[l] = SUF(carve)(base, &off, N * H);
        w->rstd[l] = SUF(carve)(base, &off, N);
    }
    w->vacc = SUF(carve)(base, &off, N * 3);
    w->PQ = SUF(carve)(base, &off, N * 2 * H);
    w->tN = SUF(carve)(base, &off, N * H);
    w->dH = SUF(carve)(base, &off, N * H);
    w->dhacc = SUF(carve)(base, &off, N * H);
    w->dy = SUF(carve)(base, &off, N * H);
    w->dcat = SUF(carve)(base, &off, N * 2 * H);
    w->dX = SUF(carve)(base, &off, N * 3);
    w->dV = SUF(carve)(base, &off, N * 3);
    w->dm = SUF(carve)(base, &off, E * H);
    w->dz = SUF(carve)(base, &off, E * H);
    w->dza = SUF(carve)(base, &off, E * H);
    w->de = SUF(carve)(base, &off, E * H2);
    w->dF = SUF(carve)(base, &off, E * 9);
    w->dr2 = SUF(carve)(base, &off, E);
    w->dcoef = SUF(carve)(base, &off, E * CO);
    w->dein = SUF(carve)(base, &off, E * EI);
    w->dsN = SUF(carve)(base, &off, N);
    w->dmv = SUF(carve)(base, &off, N * H);
    w->dPQ = SUF(carve)(base, &off, N * 2 * H);
    w->wr = SUF(carve)(base, &off, 2 * H);
    return off;
}

/* Allocate the typed buffers of ws (sizes already set). */
int SUF(cn_wsp_alloc)(struct cn_ws *ws)
{
    struct SUF(cn_wsp) *w = calloc(1, sizeof *w);
    if (!w)
        return CN_ENOMEM;
    size_t count = SUF(layout_ws)(w, NULL, ws);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, count * sizeof(REAL)) != 0) {
        free(w);
        return CN_ENOMEM;
    }
    memset(mem, 0, count * sizeof(REAL));
    SUF(layout_ws)(w, mem, ws);
    w->buf = mem;
    ws->typed = w;
    ws->bytes += count * sizeof(REAL) + sizeof *w;
    return CN_OK;
}

/* Free the typed buffers of ws. */
void SUF(cn_wsp_free)(struct cn_ws *ws)
{
    struct SUF(cn_wsp) *w = ws->typed;
    if (w) {
        free(w->buf);
        free(w);
    }
    ws->typed = NULL;
}

/* ------------------------------------------------------------ kernels */

/* C[M][N] = A[M][K] B[N][K]^T + beta C: a Linear layer with weights stored (out, in). */
static void SUF(gemm_nt)(int M, int N, int K, const REAL *A, int lda, const REAL *B, int ldb,
                         REAL beta, REAL *C, int ldc)
{
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}

/* C[M][N] = A[M][K] B[K][N] + beta C: input gradient dX = dY W. */
static void SUF(gemm_nn)(int M, int N, int K, const REAL *A, int lda, const REAL *B, int ldb,
                         REAL beta, REAL *C, int ldc)
{
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}

/* C[M][N] += A[K][M]^T B[K][N]: weight gradient dW += dY^T X. */
static void SUF(gemm_tn_acc)(int M, int N, int K, const REAL *A, int lda, const REAL *B,
                             int ldb, REAL *C, int ldc)
{
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1, A, lda, B, ldb, 1, C, ldc);
}

/* db[k] += sum over rows of dY[r][k], in row order. */
static void SUF(colsum_acc)(int R, int C, const REAL *dY, REAL *db)
{
    for (int r = 0; r < R; r++) {
        const REAL *y = dY + (size_t)r * C;
        for (int k = 0; k < C; k++)
            db[k] += y[k];
    }
}

/* Dot product in 16 fixed lanes summed in a fixed order: vectorisable without reassociating
 * (same bits at any vector width). */
static inline REAL SUF(dot_lanes)(int H, const REAL *restrict a, const REAL *restrict b)
{
    REAL acc[16] = {0};
    int h = 0;
    for (; h + 16 <= H; h += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += a[h + j] * b[h + j];
    REAL tail = 0;
    for (; h < H; h++)
        tail += a[h] * b[h];
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0] + tail;
}

/* z[R][C] += b (when b), then s = sigmoid(z), m = z s (SiLU). Cloned for AVX-512 and AVX2
 * (chosen at load time): the same IEEE operations on wider vectors, the same bits. */
CN_CLONES static void SUF(bias_silu)(int R, int C, REAL *restrict z, const REAL *restrict b,
                                     REAL *restrict s, REAL *restrict m)
{
    for (int r = 0; r < R; r++) {
        REAL *zr = z + (size_t)r * C, *sr = s + (size_t)r * C, *mr = m + (size_t)r * C;
        if (b)
            for (int k = 0; k < C; k++)
                zr[k] += b[k];
        for (int k = 0; k < C; k++) {
            REAL sg = CN_SIGMOID(zr[k]);
            sr[k] = sg;
            mr[k] = zr[k] * sg;
        }
    }
}

/* dz = dm * dSiLU/dz = dm s (1 + z (1 - s)) (dz may be dm), and db += column sums of dz in row
 * order when db. */
CN_CLONES static void SUF(silu_back)(int R, int C, const REAL *z, const REAL *s, const REAL *dm,
                                     REAL *dz, REAL *restrict db)
{
    for (int r = 0; r < R; r++) {
        const size_t o = (size_t)r * C;
        for (int k = 0; k < C; k++)
            dz[o + k] = dm[o + k] * (s[o + k] * ((REAL)1 + z[o + k] * ((REAL)1 - s[o + k])));
        if (db)
            for (int k = 0; k < C; k++)
                db[k] += dz[o + k];
    }
}

/* First MLP_edge layer after its e_ij product: z = z + P_i + Q_j + w_r r2 + b, then SiLU. */
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

/* Y[R][CO] = X[R][H] W[CO][H]^T for a few outputs (MLP_coord's last layer, MLP_vel's), by
 * hand: sgemm is slow when one dimension is 1..6. */
static void SUF(small_out)(int R, int CO, int H, const REAL *X, const REAL *W, REAL *Y)
{
    for (int r = 0; r < R; r++)
        for (int k = 0; k < CO; k++)
            Y[(size_t)r * CO + k] = SUF(dot_lanes)(H, X + (size_t)r * H, W + (size_t)k * H);
}

/* Backward of small_out: dW += dY^T X (rows in order) and dX = dY W (+ dX when acc). */
CN_CLONES static void SUF(small_out_back)(int R, int CO, int H, const REAL *dY, const REAL *X,
                                          const REAL *W, REAL *restrict dW, REAL *restrict dX,
                                          int acc)
{
    for (int r = 0; r < R; r++) {
        const REAL *x = X + (size_t)r * H, *dy = dY + (size_t)r * CO;
        REAL *dx = dX + (size_t)r * H;
        for (int k = 0; k < CO; k++) {
            REAL *dw = dW + (size_t)k * H;
            const REAL *wk = W + (size_t)k * H;
            const REAL g = dy[k];
            for (int h = 0; h < H; h++)
                dw[h] += g * x[h];
            if (k == 0 && !acc)
                for (int h = 0; h < H; h++)
                    dx[h] = g * wk[h];
            else
                for (int h = 0; h < H; h++)
                    dx[h] += g * wk[h];
        }
    }
}

/* Cross product o = a x b. */
static inline void SUF(cross)(const REAL *a, const REAL *b, REAL *o)
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

/* Dot product of 3-vectors. */
static inline REAL SUF(dot3)(const REAL *a, const REAL *b)
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* Local frame of every edge from positions X: a = d/(|d|+1), b = cr/(|cr|+1), c = a x b. */
static void SUF(frames)(int E, const int *row, const int *col, const REAL *X, REAL *fr)
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

/* Backward of frames(): dF[e] = (da, db, dc), dr2[e] (may be NULL) the gradient of
 * |x_i - x_j|^2; adds the position gradients into dX. */
static void SUF(frames_back)(int E, const int *row, const int *col, const REAL *X,
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

/* y[N][H] -> LayerNorm(y) g + b into out, keeping xhat and 1/std. */
static void SUF(layernorm)(int N, int H, const REAL *y, const REAL *g, const REAL *b,
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

/* Backward of layernorm(): dy from dout; adds dg, db. */
static void SUF(layernorm_back)(int N, int H, const REAL *dout, const REAL *xhat,
                                const REAL *rstd, const REAL *g, REAL *dy, REAL *dg, REAL *db)
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

/* ------------------------------------------------------------ forward */

/* Forward pass (see clofnet.h). */
int SUF(cn_forward_impl)(struct cn_ws *ws, const REAL *P, int G, const REAL *x, const REAL *v,
                         const REAL *q, const REAL *field, REAL *x_out, REAL *v_out)
{
    struct SUF(cn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    const struct cn_layout *lay = &ws->lay;
    if (G < 1 || G > ws->max_graphs || !x || !v || !q || !x_out)
        return CN_EARG;
    if ((c->has_field && !field) || (c->task == CN_TASK_STEP && !v_out))
        return CN_EARG;
    const int n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1;
    const int H = c->hidden, H2 = H / 2, EI = cn_edge_in(c), CO = cn_coord_out(c);
    const int NI = c->node_in, E1 = 2 * H + 1 + H2;
    const int *row = ws->row, *col = ws->col;
    const int step = c->task == CN_TASK_STEP;
    ws->graphs = G;

    memcpy(w->x, x, sizeof(REAL) * 3 * N);
    memcpy(w->v, v, sizeof(REAL) * 3 * N);
    memcpy(w->q, q, sizeof(REAL) * N);
    if (c->has_field)
        memcpy(w->field, field, sizeof(REAL) * 3);

    /* node inputs [|v_i|] or [|v_i|, q_i], embedded (in -> H, by hand: in is 1 or 2) */
    for (int i = 0; i < N; i++) {
        REAL vn = CN_SQRT(SUF(dot3)(v + 3 * i, v + 3 * i));
        w->vn[i] = vn;
        w->u[(size_t)i * NI] = vn;
        if (NI == 2)
            w->u[(size_t)i * NI + 1] = q[i];
    }
    {
        const REAL *W = P + lay->emb_w, *b = P + lay->emb_b;
        REAL *h = w->Hh[0];
        for (int i = 0; i < N; i++)
            for (int k = 0; k < H; k++) {
                REAL s = b[k];
                for (int t = 0; t < NI; t++)
                    s += W[k * NI + t] * w->u[(size_t)i * NI + t];
                h[(size_t)i * H + k] = s;
            }
    }

    /* centre positions per graph */
    for (int g = 0; g < G; g++) {
        REAL *cg = w->cent + 3 * g;
        for (int k = 0; k < 3; k++) {
            REAL s = 0;
            for (int i = 0; i < n; i++)
                s += x[3 * (g * n + i) + k];
            cg[k] = s / n;
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                w->X[0][3 * (g * n + i) + k] = x[3 * (g * n + i) + k] - cg[k];
    }

    /* scalarization: edge attributes, projections on the frame, pseudo-angle */
    SUF(frames)(E, row, col, w->X[0], w->fr0);
    for (int e = 0; e < E; e++) {
        const REAL *f = w->fr0 + (size_t)e * FR;
        const REAL *F[3] = {f + FR_A, f + FR_B, f + FR_C};
        const int i = row[e], j = col[e];
        const REAL *xi = w->X[0] + 3 * i, *xj = w->X[0] + 3 * j;
        REAL *in = w->ein + (size_t)e * EI;
        in[0] = q[i] * q[j];
        in[1] = f[FR_R2];
        for (int k = 0; k < 3; k++) {
            in[4 + k] = SUF(dot3)(F[k], xi);
            in[7 + k] = SUF(dot3)(F[k], xj);
            in[10 + k] = SUF(dot3)(F[k], v + 3 * i);
            in[13 + k] = SUF(dot3)(F[k], v + 3 * j);
            if (c->has_field)
                in[16 + k] = SUF(dot3)(F[k], field);
        }
        REAL ni = CN_SQRT(SUF(dot3)(in + 4, in + 4)), nj = CN_SQRT(SUF(dot3)(in + 7, in + 7));
        REAL cs = SUF(dot3)(in + 4, in + 7) / (ni + (REAL)CN_NORM_EPS) / (nj + (REAL)CN_NORM_EPS);
        REAL s2 = 1 - cs * cs;
        in[2] = CN_SQRT(s2 > 0 ? s2 : 0);
        in[3] = cs;
        w->pn[3 * (size_t)e] = ni;
        w->pn[3 * (size_t)e + 1] = nj;
        w->pn[3 * (size_t)e + 2] = s2;
    }
    SUF(gemm_nt)(E, H2, EI, w->ein, EI, P + lay->f1_w, EI, 0, w->fz1, H2);
    SUF(bias_silu)(E, H2, w->fz1, P + lay->f1_b, w->fs1, w->fm1);
    SUF(gemm_nt)(E, H2, H2, w->fm1, H2, P + lay->f2_w, H2, 0, w->fz2, H2);
    SUF(bias_silu)(E, H2, w->fz2, P + lay->f2_b, w->fs2, w->fm2);
    const REAL *eij = w->fm2;

    if (step)
        memcpy(w->vacc, v, sizeof(REAL) * 3 * N);

    for (int l = 0; l < c->layers; l++) {
        const struct cn_layer_layout *ll = &lay->layer[l];
        const REAL *X = w->X[l], *h = w->Hh[l];
        REAL *Xn = w->X[l + 1];
        SUF(frames)(E, row, col, X, w->fr[l]);

        /* MLP_edge layer 1 on [h_i, h_j, r2, e_ij] without building the concatenation:
         * the h_i and h_j blocks are node-level products gathered per edge */
        const REAL *W1 = P + ll->e1_w, *b1 = P + ll->e1_b;
        SUF(gemm_nt)(N, H, H, h, H, W1, E1, 0, w->PQ, 2 * H);
        SUF(gemm_nt)(N, H, H, h, H, W1 + H, E1, 0, w->PQ + H, 2 * H);
        REAL *z1 = w->z1[l];
        SUF(gemm_nt)(E, H, H2, eij, H2, W1 + 2 * H + 1, E1, 0, z1, H);
        for (int k = 0; k < H; k++)
            w->wr[k] = W1[(size_t)k * E1 + 2 * H];
        for (int e = 0; e < E; e++)
            w->r2[l][e] = w->fr[l][(size_t)e * FR + FR_R2];
        SUF(edge1_silu)(E, H, row, col, w->PQ, w->r2[l], w->wr, b1, z1, w->s1[l], w->m1[l]);
        SUF(gemm_nt)(E, H, H, w->m1[l], H, P + ll->e2_w, H, 0, w->z2[l], H);
        SUF(bias_silu)(E, H, w->z2[l], P + ll->e2_b, w->s2[l], w->m2[l]);
        SUF(gemm_nt)(E, H, H, w->m2[l], H, P + ll->e3_w, H, 0, w->z3[l], H);
        SUF(bias_silu)(E, H, w->z3[l], P + ll->e3_b, w->s3[l], w->m3[l]);
        const REAL *m = w->m3[l];

        /* MLP_coord and the clamped, averaged frame messages */
        SUF(gemm_nt)(E, H, H, m, H, P + ll->c1_w, H, 0, w->zc[l], H);
        SUF(bias_silu)(E, H, w->zc[l], P + ll->c1_b, w->sc[l], w->mc[l]);
        SUF(small_out)(E, CO, H, w->mc[l], P + ll->c2_w, w->coef[l]);
        for (int i = 0; i < N; i++) {
            REAL ax[3] = {0, 0, 0}, av[3] = {0, 0, 0};
            for (int t = 0; t < nm1; t++) {
                const int e = i * nm1 + t;
                const REAL *f = w->fr[l] + (size_t)e * FR, *cf = w->coef[l] + (size_t)e * CO;
                REAL *tp = w->tpre[l] + (size_t)e * CO;
                for (int k = 0; k < 3; k++) {
                    REAL tr = cf[0] * f[FR_A + k] + cf[1] * f[FR_B + k] + cf[2] * f[FR_C + k];
                    tp[k] = tr;
                    ax[k] += tr < -CN_CLAMP ? (REAL)-CN_CLAMP : tr > CN_CLAMP ? (REAL)CN_CLAMP : tr;
                    if (step) {
                        REAL tv = cf[3] * f[FR_A + k] + cf[4] * f[FR_B + k] + cf[5] * f[FR_C + k];
                        tp[3 + k] = tv;
                        av[k] += tv < -CN_CLAMP ? (REAL)-CN_CLAMP : tv > CN_CLAMP ? (REAL)CN_CLAMP : tv;
                    }
                }
            }
            for (int k = 0; k < 3; k++) {
                Xn[3 * i + k] = X[3 * i + k] + ax[k] / nm1;
                if (step)
                    w->vacc[3 * i + k] += av[k] / nm1;
            }
        }

        /* MLP_vel(h_i) v_i */
        SUF(gemm_nt)(N, H, H, h, H, P + ll->v1_w, H, 0, w->zv[l], H);
        SUF(bias_silu)(N, H, w->zv[l], P + ll->v1_b, w->sv[l], w->mv[l]);
        {
            const REAL *W2 = P + ll->v2_w, b2 = P[ll->v2_b];
            for (int i = 0; i < N; i++) {
                REAL s = SUF(dot_lanes)(H, w->mv[l] + (size_t)i * H, W2) + b2;
                w->sN[l][i] = s;
                for (int k = 0; k < 3; k++)
                    Xn[3 * i + k] += s * v[3 * i + k];
            }
        }

        /* MLP_node([h_i, sum_j m_ij]) and h <- LayerNorm(2 h + u); the last layer's h is never
         * used (the output is x), so it is not computed */
        if (l == c->layers - 1)
            continue;
        REAL *cat = w->catn[l];
        for (int i = 0; i < N; i++) {
            REAL *ci = cat + (size_t)i * 2 * H;
            memcpy(ci, h + (size_t)i * H, sizeof(REAL) * H);
            REAL *agg = ci + H;
            memcpy(agg, m + (size_t)i * nm1 * H, sizeof(REAL) * H);
            for (int t = 1; t < nm1; t++) {
                const REAL *me = m + ((size_t)i * nm1 + t) * H;
                for (int k = 0; k < H; k++)
                    agg[k] += me[k];
            }
        }
        SUF(gemm_nt)(N, H, 2 * H, cat, 2 * H, P + ll->n1_w, 2 * H, 0, w->zn[l], H);
        SUF(bias_silu)(N, H, w->zn[l], P + ll->n1_b, w->sn[l], w->mn[l]);
        SUF(gemm_nt)(N, H, H, w->mn[l], H, P + ll->n2_w, H, 0, w->tN, H);
        {
            const REAL *b2 = P + ll->n2_b;
            for (int i = 0; i < N; i++)
                for (int k = 0; k < H; k++)
                    w->tN[(size_t)i * H + k] += b2[k] + 2 * h[(size_t)i * H + k];
        }
        SUF(layernorm)(N, H, w->tN, P + ll->ln_g, P + ll->ln_b, w->Hh[l + 1], w->xhat[l],
                       w->rstd[l]);
    }

    for (int g = 0; g < G; g++)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                x_out[3 * (g * n + i) + k] = w->X[c->layers][3 * (g * n + i) + k] + w->cent[3 * g + k];
    if (step)
        memcpy(v_out, w->vacc, sizeof(REAL) * 3 * N);
    return CN_OK;
}

/* ----------------------------------------------------------- backward */

/* Linear backward without bias: dW += dY^T X and dX = dY W (+ dX when acc) if dX. */
static void SUF(linear_back)(int R, int out, int in, const REAL *dY, const REAL *X, int ldx,
                             const REAL *W, int ldw, REAL *dW, REAL *dX, int lddx, int acc)
{
    SUF(gemm_tn_acc)(out, in, R, dY, out, X, ldx, dW, ldw);
    if (dX)
        SUF(gemm_nn)(R, in, out, dY, out, W, ldw, acc ? 1 : 0, dX, lddx);
}

/* Backward pass (see clofnet.h). */
int SUF(cn_backward_impl)(struct cn_ws *ws, const REAL *P, const REAL *dx_out,
                          const REAL *dv_out, REAL *Gr, REAL *dx_in, REAL *dv_in)
{
    struct SUF(cn_wsp) *w = ws->typed;
    const struct cn_config *c = &ws->cfg;
    const struct cn_layout *lay = &ws->lay;
    const int G = ws->graphs;
    const int step = c->task == CN_TASK_STEP;
    if (G < 1 || !dx_out || !Gr || (step && !dv_out))
        return CN_EARG;
    const int n = ws->n, nm1 = n - 1, N = G * n, E = G * n * nm1;
    const int H = c->hidden, H2 = H / 2, EI = cn_edge_in(c), CO = cn_coord_out(c);
    const int NI = c->node_in, E1 = 2 * H + 1 + H2;
    const int *row = ws->row, *col = ws->col;
    const int want_in = dx_in || dv_in;

    memcpy(w->dX, dx_out, sizeof(REAL) * 3 * N);
    memset(w->dH, 0, sizeof(REAL) * N * H);
    memset(w->dV, 0, sizeof(REAL) * 3 * N);
    memset(w->de, 0, sizeof(REAL) * E * H2);

    for (int l = c->layers - 1; l >= 0; l--) {
        const struct cn_layer_layout *ll = &lay->layer[l];
        const REAL *X = w->X[l], *h = w->Hh[l], *m = w->m3[l];

        if (l == c->layers - 1) {
            /* the last layer's node update is not computed (its h is unused) */
            memset(w->dhacc, 0, sizeof(REAL) * N * H);
            memset(w->dm, 0, sizeof(REAL) * E * H);
        } else {
            /* h' = LayerNorm(2 h + u) */
            SUF(layernorm_back)(N, H, w->dH, w->xhat[l], w->rstd[l], P + ll->ln_g, w->dy,
                                Gr + ll->ln_g, Gr + ll->ln_b);
            for (size_t k = 0; k < (size_t)N * H; k++)
                w->dhacc[k] = 2 * w->dy[k];
            /* u = MLP_node([h, agg]) */
            SUF(colsum_acc)(N, H, w->dy, Gr + ll->n2_b);
            SUF(linear_back)(N, H, H, w->dy, w->mn[l], H, P + ll->n2_w, H, Gr + ll->n2_w,
                             w->tN, H, 0);
            SUF(silu_back)(N, H, w->zn[l], w->sn[l], w->tN, w->tN, Gr + ll->n1_b);
            SUF(linear_back)(N, H, 2 * H, w->tN, w->catn[l], 2 * H, P + ll->n1_w, 2 * H,
                             Gr + ll->n1_w, w->dcat, 2 * H, 0);
            for (int i = 0; i < N; i++) {
                const REAL *dc = w->dcat + (size_t)i * 2 * H;
                REAL *dh = w->dhacc + (size_t)i * H;
                for (int k = 0; k < H; k++)
                    dh[k] += dc[k];
                /* agg_i = sum_j m_ij */
                for (int t = 0; t < nm1; t++)
                    memcpy(w->dm + ((size_t)i * nm1 + t) * H, dc + H, sizeof(REAL) * H);
            }
        }

        /* x' += s_i v_i with s = MLP_vel(h) */
        {
            for (int i = 0; i < N; i++) {
                const REAL *dx = w->dX + 3 * i, *vi = w->v + 3 * i;
                REAL ds = SUF(dot3)(dx, vi);
                const REAL s = w->sN[l][i];
                for (int k = 0; k < 3; k++)
                    w->dV[3 * i + k] += s * dx[k];
                w->dsN[i] = ds;
                Gr[ll->v2_b] += ds;
            }
            SUF(small_out_back)(N, 1, H, w->dsN, w->mv[l], P + ll->v2_w, Gr + ll->v2_w, w->dmv, 0);
            SUF(silu_back)(N, H, w->zv[l], w->sv[l], w->dmv, w->dmv, Gr + ll->v1_b);
            SUF(linear_back)(N, H, H, w->dmv, h, H, P + ll->v1_w, H, Gr + ll->v1_w, w->dhacc, H,
                             1);
        }

        /* x' = x + mean_j clamp(c1 a + c2 b + c3 c) (STEP: v_out += the same with c4..c6) */
        memset(w->dF, 0, sizeof(REAL) * 9 * E);
        for (int e = 0; e < E; e++) {
            const int i = row[e];
            const REAL *f = w->fr[l] + (size_t)e * FR, *cf = w->coef[l] + (size_t)e * CO;
            const REAL *tp = w->tpre[l] + (size_t)e * CO;
            REAL *dcf = w->dcoef + (size_t)e * CO, *dF = w->dF + 9 * (size_t)e;
            REAL dt[3], dtv[3] = {0, 0, 0};
            for (int k = 0; k < 3; k++) {
                dt[k] = (tp[k] >= -CN_CLAMP && tp[k] <= CN_CLAMP) ? w->dX[3 * i + k] / nm1 : 0;
                if (step)
                    dtv[k] = (tp[3 + k] >= -CN_CLAMP && tp[3 + k] <= CN_CLAMP)
                                 ? dv_out[3 * i + k] / nm1 : 0;
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
                dF[k] = cf[0] * dt[k];
                dF[3 + k] = cf[1] * dt[k];
                dF[6 + k] = cf[2] * dt[k];
                if (step) {
                    dF[k] += cf[3] * dtv[k];
                    dF[3 + k] += cf[4] * dtv[k];
                    dF[6 + k] += cf[5] * dtv[k];
                }
            }
        }
        SUF(small_out_back)(E, CO, H, w->dcoef, w->mc[l], P + ll->c2_w, Gr + ll->c2_w, w->dz, 0);
        SUF(silu_back)(E, H, w->zc[l], w->sc[l], w->dz, w->dz, Gr + ll->c1_b);
        SUF(linear_back)(E, H, H, w->dz, m, H, P + ll->c1_w, H, Gr + ll->c1_w, w->dm, H, 1);

        /* MLP_edge */
        SUF(silu_back)(E, H, w->z3[l], w->s3[l], w->dm, w->dz, Gr + ll->e3_b);
        SUF(linear_back)(E, H, H, w->dz, w->m2[l], H, P + ll->e3_w, H, Gr + ll->e3_w, w->dza, H,
                         0);
        SUF(silu_back)(E, H, w->z2[l], w->s2[l], w->dza, w->dza, Gr + ll->e2_b);
        SUF(linear_back)(E, H, H, w->dza, w->m1[l], H, P + ll->e2_w, H, Gr + ll->e2_w, w->dz, H,
                         0);
        SUF(silu_back)(E, H, w->z1[l], w->s1[l], w->dz, w->dz, Gr + ll->e1_b);
        const REAL *dz1 = w->dz;
        const REAL *W1 = P + ll->e1_w;
        REAL *dW1 = Gr + ll->e1_w;
        /* e_ij block */
        SUF(linear_back)(E, H, H2, dz1, w->fm2, H2, W1 + 2 * H + 1, E1, dW1 + 2 * H + 1, w->de,
                         H2, 1);
        /* r2 column, and the node-level h_i / h_j blocks */
        for (int k = 0; k < H; k++)
            w->wr[k] = W1[(size_t)k * E1 + 2 * H];
        REAL *dwr = w->wr + H;
        memset(dwr, 0, sizeof(REAL) * H);
        memset(w->dPQ, 0, sizeof(REAL) * N * 2 * H);
        SUF(edge1_back)(E, H, row, col, dz1, w->r2[l], w->wr, dwr, w->dPQ, w->dr2);
        for (int k = 0; k < H; k++)
            dW1[(size_t)k * E1 + 2 * H] += dwr[k];
        SUF(gemm_tn_acc)(H, H, N, w->dPQ, 2 * H, h, H, dW1, E1);
        SUF(gemm_tn_acc)(H, H, N, w->dPQ + H, 2 * H, h, H, dW1 + H, E1);
        SUF(gemm_nn)(N, H, H, w->dPQ, 2 * H, W1, E1, 1, w->dhacc, H);
        SUF(gemm_nn)(N, H, H, w->dPQ + H, 2 * H, W1 + H, E1, 1, w->dhacc, H);

        /* through this layer's frames and r2 into the positions */
        SUF(frames_back)(E, row, col, X, w->fr[l], w->dF, w->dr2, w->dX);
        memcpy(w->dH, w->dhacc, sizeof(REAL) * N * H);
    }

    /* edge fuse MLP */
    SUF(silu_back)(E, H2, w->fz2, w->fs2, w->de, w->de, Gr + lay->f2_b);
    SUF(linear_back)(E, H2, H2, w->de, w->fm1, H2, P + lay->f2_w, H2, Gr + lay->f2_w, w->dza,
                     H2, 0);
    SUF(silu_back)(E, H2, w->fz1, w->fs1, w->dza, w->dza, Gr + lay->f1_b);
    SUF(linear_back)(E, H2, EI, w->dza, w->ein, EI, P + lay->f1_w, EI, Gr + lay->f1_w,
                     want_in ? w->dein : NULL, EI, 0);
    /* node embedding */
    {
        const REAL *W = P + lay->emb_w;
        REAL *dW = Gr + lay->emb_w, *db = Gr + lay->emb_b;
        for (int i = 0; i < N; i++) {
            const REAL *dh = w->dH + (size_t)i * H;
            REAL dvn = 0;
            for (int k = 0; k < H; k++) {
                for (int t = 0; t < NI; t++)
                    dW[k * NI + t] += dh[k] * w->u[(size_t)i * NI + t];
                db[k] += dh[k];
                dvn += dh[k] * W[k * NI];
            }
            /* |v_i| */
            if (want_in && w->vn[i] > 0)
                for (int k = 0; k < 3; k++)
                    w->dV[3 * i + k] += dvn * w->v[3 * i + k] / w->vn[i];
        }
    }
    if (!want_in)
        return CN_OK;

    /* scalarization inputs: pseudo-angle, projections, r2 */
    memset(w->dF, 0, sizeof(REAL) * 9 * E);
    for (int e = 0; e < E; e++) {
        const REAL *f = w->fr0 + (size_t)e * FR;
        const REAL *F[3] = {f + FR_A, f + FR_B, f + FR_C};
        const int i = row[e], j = col[e];
        const REAL *xi = w->X[0] + 3 * i, *xj = w->X[0] + 3 * j;
        const REAL *vi = w->v + 3 * i, *vj = w->v + 3 * j;
        const REAL *in = w->ein + (size_t)e * EI, *din = w->dein + (size_t)e * EI;
        REAL dpi[3], dpj[3];
        const REAL ni = w->pn[3 * (size_t)e], nj = w->pn[3 * (size_t)e + 1];
        const REAL s2 = w->pn[3 * (size_t)e + 2], cs = in[3];
        REAL s2g = s2 > (REAL)CN_SIN_FLOOR ? s2 : (REAL)CN_SIN_FLOOR;
        REAL dcos = din[3] - din[2] * cs / CN_SQRT(s2g);
        REAL A = ni + (REAL)CN_NORM_EPS, B = nj + (REAL)CN_NORM_EPS;
        REAL ddot = dcos / A / B, dA = -dcos * cs / A, dB = -dcos * cs / B;
        for (int k = 0; k < 3; k++) {
            dpi[k] = din[4 + k] + ddot * in[7 + k] + (ni > 0 ? dA * in[4 + k] / ni : 0);
            dpj[k] = din[7 + k] + ddot * in[4 + k] + (nj > 0 ? dB * in[7 + k] / nj : 0);
        }
        REAL *dF = w->dF + 9 * (size_t)e;
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++) {
                REAL g = dpi[r] * xi[k] + dpj[r] * xj[k] + din[10 + r] * vi[k] + din[13 + r] * vj[k];
                if (c->has_field)
                    g += din[16 + r] * w->field[k];
                dF[3 * r + k] = g;
            }
        for (int k = 0; k < 3; k++) {
            REAL gxi = 0, gxj = 0, gvi = 0, gvj = 0;
            for (int r = 0; r < 3; r++) {
                gxi += F[r][k] * dpi[r];
                gxj += F[r][k] * dpj[r];
                gvi += F[r][k] * din[10 + r];
                gvj += F[r][k] * din[13 + r];
            }
            w->dX[3 * i + k] += gxi;
            w->dX[3 * j + k] += gxj;
            w->dV[3 * i + k] += gvi;
            w->dV[3 * j + k] += gvj;
        }
        w->dr2[e] = din[1];
    }
    SUF(frames_back)(E, row, col, w->X[0], w->fr0, w->dF, w->dr2, w->dX);

    /* centring: X0 = x - mean(x); the output adds the mean back */
    for (int g = 0; g < G; g++) {
        REAL mc[3] = {0, 0, 0}, mo[3] = {0, 0, 0};
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) {
                mc[k] += w->dX[3 * (g * n + i) + k];
                mo[k] += dx_out[3 * (g * n + i) + k];
            }
        if (dx_in)
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    dx_in[3 * (g * n + i) + k] = w->dX[3 * (g * n + i) + k] - mc[k] / n + mo[k] / n;
    }
    if (dv_in)
        for (int k = 0; k < 3 * N; k++)
            dv_in[k] = w->dV[k] + (step ? dv_out[k] : 0);
    return CN_OK;
}
