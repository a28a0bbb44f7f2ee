/* nn_kernels.h: the typed primitives every block is made of (Linear through BLAS, SiLU,
 * fixed-lane dot products, 3-vectors) and the view of a Linear layer's parameters. */

/* Included by every nn_*.h after the including file has defined REAL, SUF(name), GEMM,
 * CN_SQRT(x), CN_SIGMOID(z) and CN_CLONES (net_f.c: float, net_d.c: double). */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "internal.h"

/* A Linear layer as a view into a flat buffer: weight (out, in) row-major as in PyTorch,
 * bias (out) or NULL. The same view type serves the parameters (never written through)
 * and the gradients (accumulated into). */
struct SUF(lin) {
    REAL *w, *b;
    int in, out;
};

/* Saved activations of a Linear layer followed by SiLU: z pre-activation, s = sigmoid(z),
 * m = z s the output; each [rows][out]. */
struct SUF(silu_act) {
    REAL *z, *s, *m;
};

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

/* Linear backward without its bias: dW += dY^T X, and dX = dY W (+ dX when acc) if dX. */
static void SUF(linear_back)(int R, int out, int in, const REAL *dY, const REAL *X, int ldx,
                             const REAL *W, int ldw, REAL *dW, REAL *dX, int lddx, int acc)
{
    SUF(gemm_tn_acc)(out, in, R, dY, out, X, ldx, dW, ldw);
    if (dX)
        SUF(gemm_nn)(R, in, out, dY, out, W, ldw, acc ? 1 : 0, dX, lddx);
}

/* Linear + SiLU forward on R rows of X[R][ldx]: a = SiLU(X W^T + b), [R][out]. */
static void SUF(silu_linear_forward)(int R, const struct SUF(lin) *p, const REAL *X, int ldx,
                                     const struct SUF(silu_act) *a)
{
    SUF(gemm_nt)(R, p->out, p->in, X, ldx, p->w, p->in, 0, a->z, p->out);
    SUF(bias_silu)(R, p->out, a->z, p->b, a->s, a->m);
}

/* Backward of silu_linear_forward: from dm [R][out] (overwritten with dz), adds dW, db into
 * g, and writes dX (adds when acc) when dX is not NULL. */
static void SUF(silu_linear_backward)(int R, const struct SUF(lin) *p, const struct SUF(lin) *g,
                                      const REAL *X, int ldx, const struct SUF(silu_act) *a,
                                      REAL *dm, REAL *dX, int lddx, int acc)
{
    SUF(silu_back)(R, p->out, a->z, a->s, dm, dm, g->b);
    SUF(linear_back)(R, p->out, p->in, dm, X, ldx, p->w, p->in, g->w, dX, lddx, acc);
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

/* Clamp of one message component to [-CN_CLAMP, CN_CLAMP]. */
static inline REAL SUF(clamp)(REAL t)
{
    return t < -CN_CLAMP ? (REAL)-CN_CLAMP : t > CN_CLAMP ? (REAL)CN_CLAMP : t;
}

/* ------------------------------------------------------- workspaces */

/* Carve count elements from a buffer (base NULL: only count). */
static REAL *SUF(carve)(REAL *base, size_t *off, size_t count)
{
    REAL *p = base ? base + *off : NULL;
    *off += cn_round16(count);
    return p;
}

/* A SiLU activation of rows x cols. */
static struct SUF(silu_act) SUF(carve_act)(REAL *base, size_t *off, size_t count)
{
    struct SUF(silu_act) a;
    a.z = SUF(carve)(base, off, count);
    a.s = SUF(carve)(base, off, count);
    a.m = SUF(carve)(base, off, count);
    return a;
}

/* Allocate ws->typed: a zeroed struct of struct_size bytes whose first member is REAL *buf,
 * and one 64-byte-aligned zeroed buffer that layout (called with base NULL to size it, then to
 * carve it) splits into the struct's arrays. */
static int SUF(typed_alloc)(struct cn_ws *ws, size_t struct_size,
                            size_t (*layout)(void *typed, REAL *base, const struct cn_ws *ws))
{
    void *w = calloc(1, struct_size);
    if (!w)
        return CN_ENOMEM;
    size_t count = layout(w, NULL, ws);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, count * sizeof(REAL)) != 0) {
        free(w);
        return CN_ENOMEM;
    }
    memset(mem, 0, count * sizeof(REAL));
    layout(w, mem, ws);
    *(REAL **)w = mem;
    ws->typed = w;
    ws->bytes += count * sizeof(REAL) + struct_size;
    return CN_OK;
}
