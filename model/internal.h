/* internal.h: declarations shared by the model/ sources and not part of the public API:
 * the workspace struct, error helpers, little-endian I/O and the CRC used by checkpoints. */
#ifndef CN_INTERNAL_H
#define CN_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "clofnet.h"

/* Workspace of one batch: sizes, edge lists and the typed activation buffers. */
struct cn_ws {
    int precision;       /* enum cn_precision */
    struct cn_config cfg;
    struct cn_layout lay;
    int max_graphs, n;
    int graphs;          /* graphs of the last forward; 0 before the first */
    int *row, *col;      /* receiver and sender node of every edge, max_graphs*n*(n-1) */
    void *typed;         /* struct cn_wsp_f / _d (ClofNet) or struct egnn_wsp_f / _d */
    size_t bytes;
};

/* Allocate the typed part of a workspace (net_f.c, net_d.c); cn_wsp_free_f/_d frees either
 * architecture's. */
int cn_wsp_alloc_f(struct cn_ws *ws);
void cn_wsp_free_f(struct cn_ws *ws);
int cn_wsp_alloc_d(struct cn_ws *ws);
void cn_wsp_free_d(struct cn_ws *ws);
int cn_egnn_wsp_alloc_f(struct cn_ws *ws);
int cn_egnn_wsp_alloc_d(struct cn_ws *ws);

/* printf into an error buffer; returns status so callers can `return cn_fail(...)`. */
int cn_fail(char err[CN_ERRLEN], int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CRC-32 (IEEE 802.3, as zlib), continued from crc (0 to start). */
uint32_t cn_crc32(uint32_t crc, const void *data, size_t len);

/* Round up to a multiple of 16 elements so that every array starts 64-byte aligned. */
static inline size_t cn_round16(size_t k) { return (k + 15) & ~(size_t)15; }

/* exp(x) in float, vectorisable: Cody-Waite reduction by ln 2 and Cephes' degree-6
 * polynomial (about 1 ulp on [-87, 88]); x is clamped to that range, where 2^n stays a
 * normal float, which is all a sigmoid needs (so exp(+-Inf) is exp(88) or exp(-87)). Plain
 * IEEE operations only, so the result is the same scalar or vectorised. Defined for every
 * input: a NaN fails both comparisons of the clamp, so the integer part is computed from the
 * finite -87 (converting a NaN to int, and shifting the negative result, would be undefined),
 * and the last line returns the NaN itself. */
static inline float cn_expf(float x)
{
    float c = x >= -87.0f ? (x <= 88.0f ? x : 88.0f) : -87.0f;
    float fn = c * 1.44269504088896341f + 12582912.0f; /* round(c / ln 2) via 1.5 * 2^23 */
    fn -= 12582912.0f;
    float r = c - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union { uint32_t u; float f; } sc;
    sc.u = (uint32_t)((int32_t)fn + 127) << 23; /* fn in [-126, 127]: a biased exponent 1..254 */
    float y = p * sc.f;
    return x == x ? y : x;
}

/* The mirror x -> -x of G*n vectors, src to dst (may be the same). */
void cn_mirror_x(size_t nodes, const float *src, float *dst);
/* A prediction's forward pass: cn_forward, or for a reflection-averaged config
 * (ws->cfg.reflect_avg) the mean of f(x) and R f(R x), both on ws (so no backward after it).
 * scratch: 4 * graphs * n * 3 floats when averaging, else unused (may be NULL). */
int cn_forward_predict(struct cn_ws *ws, const float *param, int graphs, const float *x,
                       const float *v, const float *q, const float *field, float *x_out,
                       float *v_out, float *scratch);

/* Parse a resume record (the blob of a .state checkpoint, train.c) and free it: CN_OK,
 * CN_EFORMAT or CN_ENOMEM. For the fuzzing harness of tests/fuzz/. */
int cn_record_parse_check(const void *blob, size_t len);

/* Logistic sigmoid in float through cn_expf (NaN in, NaN out; 0 and 1 at -Inf and +Inf). */
static inline float cn_sigmoidf(float z) { return 1.0f / (1.0f + cn_expf(-z)); }

#endif
