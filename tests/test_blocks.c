/* test_blocks.c: every block of model/nn_*.h (embedding, frames and scalarization, centring,
 * edge MLP, coordinate message with its clamp, velocity scaling, node update, LayerNorm)
 * checked alone: its backward against central finite differences of its forward, in double. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The blocks are static functions of typed templates: instantiate them here in double, as
 * net_d.c does (the float instantiation is checked against this one in test_model). */
#include "nn_double.h"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "nn_kernels.h"
#include "nn_frame.h"
#include "nn_embed.h"
#include "nn_edge.h"
#include "nn_coord.h"
#include "nn_vel.h"
#include "nn_node.h"
#include "nn_layernorm.h"
#include "nn_radial.h"
#include "nn_project.h"

#include "sim.h"

/* Central-difference step: truncation ~h^2 |f'''| / 6 ~ 1e-10 and rounding ~eps |f| / h ~
 * 1e-11 for O(1) values balance near 1e-5. */
#define FD_STEP 1e-5
/* Per array: max |fd - g| / (max |g| + GRAD_FLOOR). Below GRAD_FLOOR an array's gradients are
 * compared in absolute terms (the differences carry ~1e-10 of rounding noise). */
#define GRAD_FLOOR 1e-3
/* Measured errors are 1e-11..1e-8 (printed); a wrong or missing term is >= 1e-4. */
#define GRAD_TOL 1e-6
/* The projected centroid against its prescription: sums of 4 O(1) doubles, rounding ~1e-15. */
#define PROJ_TOL 1e-12

/* Sizes: 2 graphs of 4 bodies, width 8. */
enum { G = 2, NB = 4, N = G * NB, NM1 = NB - 1, E = N * NM1, H = 8, H2 = H / 2, EI = 19 };

static struct sim_rng g_rng;
static int g_row[E], g_col[E];

/* An array the loss depends on, with its analytic gradient. */
struct arr {
    const char *name;
    double *x, *g;
    long n;
};

/* A block under test: loss() runs the forward and returns a fixed random linear functional
 * of its outputs; grad() runs the forward, then the backward into the arrays' g. */
struct blk {
    const char *name;
    int na;
    struct arr a[10];
    double (*loss)(void);
    void (*grad)(void);
};

/* A fresh array of n N(0, s^2) values (and its zeroed gradient when g). */
static double *rnd(long n, double s)
{
    double *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (long k = 0; k < n; k++)
        p[k] = s * sim_rng_randn(&g_rng);
    return p;
}
static double *zeros(long n)
{
    double *p = calloc(n, sizeof *p);
    assert_non_null(p);
    return p;
}

/* Parameters and gradients of one Linear layer. */
struct lin_pg {
    struct lin_d p, g;
};
static struct lin_pg make_lin(int in, int out, int bias)
{
    struct lin_pg l;
    double s = 1.0 / sqrt((double)in);
    l.p = (struct lin_d){rnd((long)in * out, s), bias ? rnd(out, s) : NULL, in, out};
    l.g = (struct lin_d){zeros((long)in * out), bias ? zeros(out) : NULL, in, out};
    return l;
}
static void free_lin(struct lin_pg *l)
{
    free(l->p.w); free(l->p.b); free(l->g.w); free(l->g.b);
}

/* <w, y> over n values. */
static double dotn(long n, const double *w, const double *y)
{
    double s = 0;
    for (long k = 0; k < n; k++)
        s += w[k] * y[k];
    return s;
}

/* Check every element of every array of b against central differences. */
static void fd_check(struct blk *b)
{
    for (int i = 0; i < b->na; i++)
        memset(b->a[i].g, 0, b->a[i].n * sizeof(double));
    b->grad();
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < b->na; i++) {
        struct arr *a = &b->a[i];
        double scale = 0, e = 0;
        for (long k = 0; k < a->n; k++)
            scale = fmax(scale, fabs(a->g[k]));
        if (scale == 0)
            fail_msg("%s: the gradient of %s is identically 0", b->name, a->name);
        for (long k = 0; k < a->n; k++) {
            double keep = a->x[k];
            a->x[k] = keep + FD_STEP;
            double lp = b->loss();
            a->x[k] = keep - FD_STEP;
            double lm = b->loss();
            a->x[k] = keep;
            e = fmax(e, fabs((lp - lm) / (2 * FD_STEP) - a->g[k]) / (scale + GRAD_FLOOR));
        }
        if (e >= worst) {
            worst = e;
            worst_name = a->name;
        }
    }
    print_message("%-28s max error %.3g (worst %s)\n", b->name, worst, worst_name);
    assert_true(worst < GRAD_TOL);
}

/* Edges grouped by receiver, as cn_ws_create builds them. */
static int setup(void **state)
{
    (void)state;
    sim_rng_seed(&g_rng, 2024);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < NB; i++)
            for (int t = 0; t < NM1; t++) {
                int e = (g * NB + i) * NM1 + t;
                g_row[e] = g * NB + i;
                g_col[e] = g * NB + (t < i ? t : t + 1);
            }
    return 0;
}

/* ------------------------------------------------------- node embedding */

static struct {
    struct lin_pg emb;
    double *v, *dv, *q, *vn, *u, *h, *w;
} ne;
static double ne_loss(void)
{
    node_embed_forward_d(N, &ne.emb.p, ne.v, ne.q, ne.vn, ne.u, ne.h);
    return dotn(N * H, ne.w, ne.h);
}
static void ne_grad(void)
{
    ne_loss();
    node_embed_backward_d(N, &ne.emb.p, &ne.emb.g, ne.v, ne.vn, ne.u, ne.w, ne.dv);
}
static void test_node_embed(void **state)
{
    (void)state;
    ne.emb = make_lin(2, H, 1);
    ne.v = rnd(3 * N, 0.5);
    ne.dv = zeros(3 * N);
    ne.q = rnd(N, 1);
    ne.vn = zeros(N);
    ne.u = zeros(2 * N);
    ne.h = zeros(N * H);
    ne.w = rnd(N * H, 1);
    struct blk b = {"node embedding", 3,
                    {{"emb.w", ne.emb.p.w, ne.emb.g.w, 2 * H}, {"emb.b", ne.emb.p.b, ne.emb.g.b, H},
                     {"v", ne.v, ne.dv, 3 * N}},
                    ne_loss, ne_grad};
    fd_check(&b);
    free_lin(&ne.emb);
    free(ne.v); free(ne.dv); free(ne.q); free(ne.vn); free(ne.u); free(ne.h); free(ne.w);
}

/* ----------------------------------------------- edge-attribute embedding */

static struct {
    struct lin_pg f1, f2;
    double *ein, *din, *w, *de, *d1;
    struct silu_act_d a1, a2;
} ee;
static double ee_loss(void)
{
    edge_embed_forward_d(E, &ee.f1.p, &ee.f2.p, ee.ein, &ee.a1, &ee.a2);
    return dotn(E * H2, ee.w, ee.a2.m);
}
static void ee_grad(void)
{
    ee_loss();
    memcpy(ee.de, ee.w, E * H2 * sizeof(double));
    edge_embed_backward_d(E, &ee.f1.p, &ee.f2.p, &ee.f1.g, &ee.f2.g, ee.ein, &ee.a1, &ee.a2,
                          ee.de, ee.d1, ee.din);
}
static struct silu_act_d make_act(long n)
{
    return (struct silu_act_d){zeros(n), zeros(n), zeros(n)};
}
static void free_act(struct silu_act_d *a)
{
    free(a->z); free(a->s); free(a->m);
}
static void test_edge_embed(void **state)
{
    (void)state;
    ee.f1 = make_lin(EI, H2, 1);
    ee.f2 = make_lin(H2, H2, 1);
    ee.ein = rnd(E * EI, 1);
    ee.din = zeros(E * EI);
    ee.w = rnd(E * H2, 1);
    ee.de = zeros(E * H2);
    ee.d1 = zeros(E * H2);
    ee.a1 = make_act(E * H2);
    ee.a2 = make_act(E * H2);
    struct blk b = {"edge-attribute embedding", 5,
                    {{"f1.w", ee.f1.p.w, ee.f1.g.w, EI * H2}, {"f1.b", ee.f1.p.b, ee.f1.g.b, H2},
                     {"f2.w", ee.f2.p.w, ee.f2.g.w, H2 * H2}, {"f2.b", ee.f2.p.b, ee.f2.g.b, H2},
                     {"edge inputs", ee.ein, ee.din, E * EI}},
                    ee_loss, ee_grad};
    fd_check(&b);
    free_lin(&ee.f1);
    free_lin(&ee.f2);
    free_act(&ee.a1);
    free_act(&ee.a2);
    free(ee.ein); free(ee.din); free(ee.w); free(ee.de); free(ee.d1);
}

/* ------------------------------------------- frames and scalarization */

static struct {
    double *X, *dX, *v, *dV, *q, field[3], *fr, *ein, *pn, *w, *dF, *dr2, *w9, *wr;
    int has_field;
} fs;
static double frame_loss(void)
{
    frame_forward_d(E, g_row, g_col, fs.X, fs.fr);
    double s = 0;
    for (int e = 0; e < E; e++) {
        const double *f = fs.fr + (size_t)e * FR;
        for (int k = 0; k < 3; k++)
            s += fs.w9[9 * e + k] * f[FR_A + k] + fs.w9[9 * e + 3 + k] * f[FR_B + k] +
                 fs.w9[9 * e + 6 + k] * f[FR_C + k];
        s += fs.wr[e] * f[FR_R2];
    }
    return s;
}
static void frame_grad(void)
{
    frame_loss();
    frame_backward_d(E, g_row, g_col, fs.X, fs.fr, fs.w9, fs.wr, fs.dX);
}
static double scal_loss(void)
{
    frame_forward_d(E, g_row, g_col, fs.X, fs.fr);
    scalarize_forward_d(E, EI, fs.has_field, g_row, g_col, fs.fr, fs.X, fs.v, fs.q, fs.field,
                        fs.ein, fs.pn);
    return dotn(E * EI, fs.w, fs.ein);
}
static void scal_grad(void)
{
    scal_loss();
    scalarize_backward_d(E, EI, fs.has_field, g_row, g_col, fs.fr, fs.X, fs.v, fs.field, fs.ein,
                         fs.pn, fs.w, fs.dF, fs.dr2, fs.dX, fs.dV);
    frame_backward_d(E, g_row, g_col, fs.X, fs.fr, fs.dF, fs.dr2, fs.dX);
}
static void test_frames_and_scalarization(void **state)
{
    (void)state;
    fs.X = rnd(3 * N, 1);
    fs.dX = zeros(3 * N);
    fs.v = rnd(3 * N, 0.5);
    fs.dV = zeros(3 * N);
    fs.q = rnd(N, 1);
    fs.field[0] = 0.3;
    fs.field[1] = -0.7;
    fs.field[2] = 0.5;
    fs.fr = zeros(E * FR);
    fs.ein = zeros(E * EI);
    fs.pn = zeros(E * 3);
    fs.w = rnd(E * EI, 1);
    fs.dF = zeros(E * 9);
    fs.dr2 = zeros(E);
    fs.w9 = rnd(E * 9, 1);
    fs.wr = rnd(E, 1);
    struct blk f = {"local frame (a, b, c, r2)", 1, {{"x", fs.X, fs.dX, 3 * N}}, frame_loss,
                    frame_grad};
    fd_check(&f);
    for (fs.has_field = 0; fs.has_field <= 1; fs.has_field++) {
        struct blk b = {fs.has_field ? "frames + scalarization+field" : "frames + scalarization",
                        2, {{"x", fs.X, fs.dX, 3 * N}, {"v", fs.v, fs.dV, 3 * N}}, scal_loss,
                        scal_grad};
        fd_check(&b);
    }
    free(fs.X); free(fs.dX); free(fs.v); free(fs.dV); free(fs.q); free(fs.fr); free(fs.ein);
    free(fs.pn); free(fs.w); free(fs.dF); free(fs.dr2); free(fs.w9); free(fs.wr);
}

/* ------------------------------------------------------------ centring */

static struct {
    double *x, *dx, *X, *cent, *wX, *wo, *dX;
} ce;
/* The network's use of centring: X = x - mean feeds the layers, the output adds the mean
 * back; here the layers are the identity, so the output is X + cent. */
static double centre_loss(void)
{
    centre_forward_d(G, NB, ce.x, ce.cent, ce.X);
    double s = dotn(3 * N, ce.wX, ce.X);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < NB; i++)
            for (int k = 0; k < 3; k++) {
                int j = 3 * (g * NB + i) + k;
                s += ce.wo[j] * (ce.X[j] + ce.cent[3 * g + k]);
            }
    return s;
}
static void centre_grad(void)
{
    centre_loss();
    for (int k = 0; k < 3 * N; k++)
        ce.dX[k] = ce.wX[k] + ce.wo[k];
    centre_backward_d(G, NB, ce.dX, ce.wo, ce.dx);
}
static void test_centring(void **state)
{
    (void)state;
    ce.x = rnd(3 * N, 1);
    ce.dx = zeros(3 * N);
    ce.X = zeros(3 * N);
    ce.cent = zeros(3 * G);
    ce.wX = rnd(3 * N, 1);
    ce.wo = rnd(3 * N, 1);
    ce.dX = zeros(3 * N);
    struct blk b = {"centring", 1, {{"x", ce.x, ce.dx, 3 * N}}, centre_loss, centre_grad};
    fd_check(&b);
    free(ce.x); free(ce.dx); free(ce.X); free(ce.cent); free(ce.wX); free(ce.wo); free(ce.dX);
}

/* ------------------------------------------------------------ edge MLP */

static struct {
    struct lin_pg e1, e2, e3;
    int nl, K;
    double *h, *dh, *eij, *de, *r2, *dr2, *w, *dm;
    struct silu_act_d a[3];
    struct edge_scratch_d sc;
} em;
static double em_loss(void)
{
    struct lin_d e[3] = {em.e1.p, em.e2.p, em.e3.p};
    edge_mlp_forward_d(E, N, g_row, g_col, em.nl, e, em.h, em.eij, em.r2, em.a, &em.sc);
    return dotn(E * H, em.w, em.a[em.nl - 1].m);
}
static void em_grad(void)
{
    em_loss();
    memcpy(em.dm, em.w, E * H * sizeof(double));
    struct lin_d e[3] = {em.e1.p, em.e2.p, em.e3.p}, g[3] = {em.e1.g, em.e2.g, em.e3.g};
    edge_mlp_backward_d(E, N, g_row, g_col, em.nl, e, g, em.h, em.eij, em.r2, em.a, &em.sc,
                        em.dm, em.de, em.dh, em.dr2);
}
/* ClofNet's edge MLP (3 layers, attribute block e_ij of H/2) or EGNN's (2 layers, the 2 edge
 * attributes). */
static void edge_mlp_case(int nl, int K, const char *name)
{
    em.nl = nl;
    em.K = K;
    em.e1 = make_lin(2 * H + 1 + K, H, 1);
    em.e2 = make_lin(H, H, 1);
    em.e3 = make_lin(H, H, 1);
    em.h = rnd(N * H, 1);
    em.dh = zeros(N * H);
    em.eij = rnd(E * K, 1);
    em.de = zeros(E * K);
    em.r2 = rnd(E, 1);
    for (int e = 0; e < E; e++)
        em.r2[e] = fabs(em.r2[e]);
    em.dr2 = zeros(E);
    em.w = rnd(E * H, 1);
    em.dm = zeros(E * H);
    for (int k = 0; k < 3; k++)
        em.a[k] = make_act(E * H);
    em.sc = (struct edge_scratch_d){zeros(N * 2 * H), zeros(2 * H), zeros(N * 2 * H),
                                    zeros(E * H), zeros(E * H)};
    struct blk b = {name, 9,
                    {{"e1.w", em.e1.p.w, em.e1.g.w, (2 * H + 1 + K) * H},
                     {"e1.b", em.e1.p.b, em.e1.g.b, H},
                     {"e2.w", em.e2.p.w, em.e2.g.w, H * H}, {"e2.b", em.e2.p.b, em.e2.g.b, H},
                     {"h", em.h, em.dh, N * H}, {"attributes", em.eij, em.de, E * K},
                     {"r2", em.r2, em.dr2, E},
                     {"e3.w", em.e3.p.w, em.e3.g.w, H * H}, {"e3.b", em.e3.p.b, em.e3.g.b, H}},
                    em_loss, em_grad};
    if (nl == 2)
        b.na = 7; /* e3 is not part of a 2-layer MLP */
    fd_check(&b);
    free_lin(&em.e1); free_lin(&em.e2); free_lin(&em.e3);
    for (int k = 0; k < 3; k++)
        free_act(&em.a[k]);
    free(em.sc.PQ); free(em.sc.wr); free(em.sc.dPQ); free(em.sc.d1); free(em.sc.d2);
    free(em.h); free(em.dh); free(em.eij); free(em.de); free(em.r2); free(em.dr2); free(em.w);
    free(em.dm);
}
static void test_edge_mlp(void **state)
{
    (void)state;
    edge_mlp_case(3, H2, "edge MLP (ClofNet)");
    edge_mlp_case(2, 2, "edge MLP (EGNN)");
}

/* --------------------------------------------------- coordinate message */

static struct {
    struct lin_pg c1, c2;
    int co;
    double *m, *dm, *X, *dX, *fr, *coef, *tpre, *Xn, *vacc, *wx, *wv, *dF, *dcoef, *dz;
    struct silu_act_d ac;
} cm;
static double cm_loss(void)
{
    frame_forward_d(E, g_row, g_col, cm.X, cm.fr);
    memset(cm.vacc, 0, 3 * N * sizeof(double));
    coord_forward_d(E, NM1, &cm.c1.p, &cm.c2.p, cm.m, cm.fr, cm.X, &cm.ac, cm.coef, cm.tpre,
                    cm.Xn, cm.vacc);
    return dotn(3 * N, cm.wx, cm.Xn) + (cm.co == 6 ? dotn(3 * N, cm.wv, cm.vacc) : 0);
}
static void cm_grad(void)
{
    cm_loss();
    coord_backward_d(E, NM1, g_row, &cm.c1.p, &cm.c2.p, &cm.c1.g, &cm.c2.g, cm.m, cm.fr, &cm.ac,
                     cm.coef, cm.tpre, cm.wx, cm.co == 6 ? cm.wv : NULL, cm.dF, cm.dcoef, cm.dz,
                     cm.dm);
    /* the identity path X -> Xn, then the frames */
    for (int k = 0; k < 3 * N; k++)
        cm.dX[k] += cm.wx[k];
    frame_backward_d(E, g_row, g_col, cm.X, cm.fr, cm.dF, NULL, cm.dX);
}
/* Run the check with CO outputs; scale multiplies MLP_coord's last layer (a large scale puts
 * messages beyond the clamp, where they must pass no gradient). Returns the clamped share. */
static double coord_case(int co, double scale, const char *name)
{
    cm.co = co;
    cm.c1 = make_lin(H, H, 1);
    cm.c2 = make_lin(H, co, 0);
    for (int k = 0; k < H * co; k++)
        cm.c2.p.w[k] *= scale;
    cm.m = rnd(E * H, 1);
    cm.dm = zeros(E * H);
    cm.X = rnd(3 * N, 1);
    cm.dX = zeros(3 * N);
    cm.fr = zeros(E * FR);
    cm.coef = zeros(E * co);
    cm.tpre = zeros(E * co);
    cm.Xn = zeros(3 * N);
    cm.vacc = zeros(3 * N);
    cm.wx = rnd(3 * N, 1);
    cm.wv = rnd(3 * N, 1);
    cm.dF = zeros(9 * E);
    cm.dcoef = zeros(E * co);
    cm.dz = zeros(E * H);
    cm.ac = make_act(E * H);
    struct blk b = {name, 5,
                    {{"c1.w", cm.c1.p.w, cm.c1.g.w, H * H}, {"c1.b", cm.c1.p.b, cm.c1.g.b, H},
                     {"c2.w", cm.c2.p.w, cm.c2.g.w, H * co}, {"m_ij", cm.m, cm.dm, E * H},
                     {"x", cm.X, cm.dX, 3 * N}},
                    cm_loss, cm_grad};
    fd_check(&b);
    int clamped = 0;
    for (int k = 0; k < E * co; k++)
        clamped += fabs(cm.tpre[k]) > CN_CLAMP;
    free_lin(&cm.c1); free_lin(&cm.c2); free_act(&cm.ac);
    free(cm.m); free(cm.dm); free(cm.X); free(cm.dX); free(cm.fr); free(cm.coef); free(cm.tpre);
    free(cm.Xn); free(cm.vacc); free(cm.wx); free(cm.wv); free(cm.dF); free(cm.dcoef); free(cm.dz);
    return (double)clamped / (E * co);
}
/* Scale of MLP_coord's last layer that pushes a fraction of the messages past the clamp. */
#define CLAMP_SCALE 1000.0
static void test_coord_message(void **state)
{
    (void)state;
    assert_true(coord_case(3, 1, "coordinate message") == 0);
    assert_true(coord_case(6, 1, "coordinate + velocity message") == 0);
    double f = coord_case(6, CLAMP_SCALE, "messages past the clamp");
    print_message("  %.0f%% of the message components clamped\n", 100 * f);
    assert_true(f > 0.1 && f < 0.9);
}

/* ----------------------------------------------------- velocity scaling */

static struct {
    struct lin_pg v1, v2;
    double *h, *dh, *v, *dV, *sN, *Xn, *w, *ds, *dmv;
    struct silu_act_d av;
} vs;
static double vs_loss(void)
{
    memset(vs.Xn, 0, 3 * N * sizeof(double));
    vel_forward_d(N, &vs.v1.p, &vs.v2.p, vs.h, vs.v, &vs.av, vs.sN, vs.Xn);
    return dotn(3 * N, vs.w, vs.Xn);
}
static void vs_grad(void)
{
    vs_loss();
    vel_backward_d(N, &vs.v1.p, &vs.v2.p, &vs.v1.g, &vs.v2.g, vs.h, vs.v, &vs.av, vs.sN, vs.w,
                   vs.ds, vs.dmv, vs.dV, vs.dh);
}
static void test_velocity_scaling(void **state)
{
    (void)state;
    vs.v1 = make_lin(H, H, 1);
    vs.v2 = make_lin(H, 1, 1);
    vs.h = rnd(N * H, 1);
    vs.dh = zeros(N * H);
    vs.v = rnd(3 * N, 0.5);
    vs.dV = zeros(3 * N);
    vs.sN = zeros(N);
    vs.Xn = zeros(3 * N);
    vs.w = rnd(3 * N, 1);
    vs.ds = zeros(N);
    vs.dmv = zeros(N * H);
    vs.av = make_act(N * H);
    struct blk b = {"velocity scaling", 6,
                    {{"v1.w", vs.v1.p.w, vs.v1.g.w, H * H}, {"v1.b", vs.v1.p.b, vs.v1.g.b, H},
                     {"v2.w", vs.v2.p.w, vs.v2.g.w, H}, {"v2.b", vs.v2.p.b, vs.v2.g.b, 1},
                     {"h", vs.h, vs.dh, N * H}, {"v", vs.v, vs.dV, 3 * N}},
                    vs_loss, vs_grad};
    fd_check(&b);
    free_lin(&vs.v1); free_lin(&vs.v2); free_act(&vs.av);
    free(vs.h); free(vs.dh); free(vs.v); free(vs.dV); free(vs.sN); free(vs.Xn); free(vs.w);
    free(vs.ds); free(vs.dmv);
}

/* --------------------------------------------------------- node update */

static struct {
    struct lin_pg n1, n2;
    double resid;
    double *h, *dh, *m, *dm, *cat, *t, *w, *d1, *dcat;
    struct silu_act_d an;
} nu;
static double nu_loss(void)
{
    node_forward_d(N, NM1, &nu.n1.p, &nu.n2.p, nu.resid, nu.h, nu.m, nu.cat, &nu.an, nu.t);
    return dotn(N * H, nu.w, nu.t);
}
static void nu_grad(void)
{
    nu_loss();
    node_backward_d(N, NM1, &nu.n1.p, &nu.n2.p, &nu.n1.g, &nu.n2.g, nu.resid, nu.cat, &nu.an,
                    nu.w, nu.d1, nu.dcat, nu.dh, nu.dm);
}
static void test_node_update(void **state)
{
    (void)state;
    for (int r = 1; r <= 2; r++) {
        nu.resid = r; /* ClofNet adds the residual twice, EGNN once */
        nu.n1 = make_lin(2 * H, H, 1);
        nu.n2 = make_lin(H, H, 1);
        nu.h = rnd(N * H, 1);
        nu.dh = zeros(N * H);
        nu.m = rnd(E * H, 1);
        nu.dm = zeros(E * H);
        nu.cat = zeros(N * 2 * H);
        nu.t = zeros(N * H);
        nu.w = rnd(N * H, 1);
        nu.d1 = zeros(N * H);
        nu.dcat = zeros(N * 2 * H);
        nu.an = make_act(N * H);
        struct blk b = {r == 2 ? "node update (residual x2)" : "node update (residual x1)", 6,
                        {{"n1.w", nu.n1.p.w, nu.n1.g.w, 2 * H * H}, {"n1.b", nu.n1.p.b, nu.n1.g.b, H},
                         {"n2.w", nu.n2.p.w, nu.n2.g.w, H * H}, {"n2.b", nu.n2.p.b, nu.n2.g.b, H},
                         {"h", nu.h, nu.dh, N * H}, {"m_ij", nu.m, nu.dm, E * H}},
                        nu_loss, nu_grad};
        fd_check(&b);
        free_lin(&nu.n1); free_lin(&nu.n2); free_act(&nu.an);
        free(nu.h); free(nu.dh); free(nu.m); free(nu.dm); free(nu.cat); free(nu.t); free(nu.w);
        free(nu.d1); free(nu.dcat);
    }
}

/* ------------------------------------------------------------ LayerNorm */

static struct {
    double *y, *dy, *g, *dg, *b, *db, *out, *xhat, *rstd, *w;
} ln;
static double ln_loss(void)
{
    layernorm_forward_d(N, H, ln.y, ln.g, ln.b, ln.out, ln.xhat, ln.rstd);
    return dotn(N * H, ln.w, ln.out);
}
static void ln_grad(void)
{
    ln_loss();
    layernorm_backward_d(N, H, ln.w, ln.xhat, ln.rstd, ln.g, ln.dy, ln.dg, ln.db);
}
static void test_layernorm(void **state)
{
    (void)state;
    ln.y = rnd(N * H, 2);
    ln.dy = zeros(N * H);
    ln.g = rnd(H, 1);
    ln.dg = zeros(H);
    ln.b = rnd(H, 1);
    ln.db = zeros(H);
    ln.out = zeros(N * H);
    ln.xhat = zeros(N * H);
    ln.rstd = zeros(N);
    ln.w = rnd(N * H, 1);
    /* layernorm_backward writes dy (fd_check zeroes it first) and adds dg, db */
    struct blk b = {"LayerNorm", 3,
                    {{"y", ln.y, ln.dy, N * H}, {"g", ln.g, ln.dg, H}, {"b", ln.b, ln.db, H}},
                    ln_loss, ln_grad};
    fd_check(&b);
    free(ln.y); free(ln.dy); free(ln.g); free(ln.dg); free(ln.b); free(ln.db); free(ln.out);
    free(ln.xhat); free(ln.rstd); free(ln.w);
}

/* ------------------------------------------------- EGNN's radial blocks */

static struct {
    struct lin_pg c1, c2;
    double *X, *dX, *geo, *wu, *wr, *m, *dm, *coef, *tpre, *Xn, *wx, *du, *dcoef, *dz;
    double *vacc, *wv; /* the step task's velocity message (CO = 2) and its loss weights */
    int co;
    struct silu_act_d ac;
} rc;
/* The geometry alone: a linear functional of u and r. */
static double radial_loss(void)
{
    radial_forward_d(E, g_row, g_col, rc.X, rc.geo);
    double s = 0;
    for (int e = 0; e < E; e++) {
        for (int k = 0; k < 3; k++)
            s += rc.wu[3 * e + k] * rc.geo[e * RG + RG_U + k];
        s += rc.wr[e] * rc.geo[e * RG + RG_R];
    }
    return s;
}
static void radial_grad(void)
{
    radial_loss();
    radial_backward_d(E, g_row, g_col, rc.geo, rc.wu, rc.wr, rc.dX);
}
/* The coordinate message through the geometry: x -> u -> x + mean clamp(u phi_x(m)). */
static double rcoord_loss(void)
{
    radial_forward_d(E, g_row, g_col, rc.X, rc.geo);
    if (rc.co == 2)
        memset(rc.vacc, 0, sizeof(double) * 3 * N);
    radial_coord_forward_d(E, NM1, &rc.c1.p, &rc.c2.p, rc.m, rc.geo, rc.X, &rc.ac, rc.coef,
                           rc.tpre, rc.Xn, rc.co == 2 ? rc.vacc : NULL);
    return dotn(3 * N, rc.wx, rc.Xn) + (rc.co == 2 ? dotn(3 * N, rc.wv, rc.vacc) : 0);
}
static void rcoord_grad(void)
{
    rcoord_loss();
    radial_coord_backward_d(E, NM1, g_row, &rc.c1.p, &rc.c2.p, &rc.c1.g, &rc.c2.g, rc.m, rc.geo,
                            &rc.ac, rc.coef, rc.tpre, rc.wx, rc.co == 2 ? rc.wv : NULL, rc.du,
                            rc.dcoef, rc.dz, rc.dm);
    for (int k = 0; k < 3 * N; k++)
        rc.dX[k] += rc.wx[k]; /* the identity path */
    radial_backward_d(E, g_row, g_col, rc.geo, rc.du, NULL, rc.dX);
}
static void radial_case(int co)
{
    rc.co = co;
    rc.c1 = make_lin(H, H, 1);
    rc.c2 = make_lin(H, co, 0);
    rc.vacc = zeros(3 * N);
    rc.wv = rnd(3 * N, 1);
    rc.X = rnd(3 * N, 1);
    rc.dX = zeros(3 * N);
    rc.geo = zeros(E * RG);
    rc.wu = rnd(3 * E, 1);
    rc.wr = rnd(E, 1);
    rc.m = rnd(E * H, 1);
    rc.dm = zeros(E * H);
    rc.coef = zeros(E * co);
    rc.tpre = zeros(3 * E * co);
    rc.Xn = zeros(3 * N);
    rc.wx = rnd(3 * N, 1);
    rc.du = zeros(3 * E);
    rc.dcoef = zeros(E * co);
    rc.dz = zeros(E * H);
    rc.ac = make_act(E * H);
    struct blk g = {"radial geometry (u, r)", 1, {{"x", rc.X, rc.dX, 3 * N}}, radial_loss,
                    radial_grad};
    fd_check(&g);
    struct blk b = {co == 2 ? "radial coordinate and velocity messages (step)"
                            : "radial coordinate message", 4,
                    {{"c1.w", rc.c1.p.w, rc.c1.g.w, H * H}, {"c1.b", rc.c1.p.b, rc.c1.g.b, H},
                     {"c2.w", rc.c2.p.w, rc.c2.g.w, H * co}, {"m_ij", rc.m, rc.dm, E * H}},
                    rcoord_loss, rcoord_grad};
    fd_check(&b);
    /* x as well (the messages move with it); then past the clamp */
    b.a[b.na++] = (struct arr){"x", rc.X, rc.dX, 3 * N};
    fd_check(&b);
    for (int k = 0; k < H * co; k++)
        rc.c2.p.w[k] *= CLAMP_SCALE;
    b.name = "radial messages past the clamp";
    fd_check(&b);
    int clamped = 0;
    for (int k = 0; k < 3 * E * co; k++)
        clamped += fabs(rc.tpre[k]) > CN_CLAMP;
    print_message("  %d%% of the message components clamped\n", 100 * clamped / (3 * E * co));
    assert_true(clamped > 3 * E * co / 10 && clamped < 9 * 3 * E * co / 10);
    free_lin(&rc.c1); free_lin(&rc.c2); free_act(&rc.ac);
    free(rc.X); free(rc.dX); free(rc.geo); free(rc.wu); free(rc.wr); free(rc.m); free(rc.dm);
    free(rc.coef); free(rc.tpre); free(rc.Xn); free(rc.wx); free(rc.du); free(rc.dcoef);
    free(rc.dz); free(rc.vacc); free(rc.wv);
}
static void test_radial(void **state)
{
    (void)state;
    radial_case(1); /* the position task */
    radial_case(2); /* the step task: phi_v as well */
}

/* ------------------------------------------------ the momentum projection */

static struct {
    double *x, *v, *q, *xo, *vo, *px, *pv, *wx, *wv, *dx, *dv, *dxo, *dvo, *gx, *gv;
    struct cn_config c;
} pj;
/* A linear functional of the projected outputs of G graphs. */
static double project_loss(void)
{
    memcpy(pj.px, pj.xo, sizeof(double) * 3 * N);
    memcpy(pj.pv, pj.vo, sizeof(double) * 3 * N);
    project_forward_d(&pj.c, G, NB, pj.x, pj.v, pj.q, pj.px, pj.pv);
    return dotn(3 * N, pj.wx, pj.px) + dotn(3 * N, pj.wv, pj.pv);
}
static void project_grad(void)
{
    project_loss();
    project_backward_d(&pj.c, G, NB, pj.q, pj.wx, pj.wv, pj.dxo, pj.dvo, pj.gx, pj.gv);
    memset(pj.dx, 0, sizeof(double) * 3 * N);
    memset(pj.dv, 0, sizeof(double) * 3 * N);
    project_inputs_backward_d(&pj.c, G, NB, pj.q, pj.gx, pj.gv, pj.dx, pj.dv);
}
/* The Lorentz law of nn_project.h for graph g of (x, v) -> (x', v'): the largest component of
 * sum v' + h sum q v' x B - sum v - sum q (x' - x + h v) x B. */
static double lorentz_residual(const struct cn_config *c, int n, const double *q,
                               const double *x, const double *v, const double *x1,
                               const double *v1)
{
    double r[3] = {0, 0, 0};
    const double *B = c->proj_b, h = c->proj_h;
    for (int i = 0; i < n; i++) {
        double a[3], b[3];
        for (int k = 0; k < 3; k++) {
            r[k] += v1[3 * i + k] - v[3 * i + k];
            a[k] = q[i] * (h * v1[3 * i + k]);
            b[k] = q[i] * (x1[3 * i + k] - x[3 * i + k] + h * v[3 * i + k]);
        }
        r[0] += a[1] * B[2] - a[2] * B[1] - (b[1] * B[2] - b[2] * B[1]);
        r[1] += a[2] * B[0] - a[0] * B[2] - (b[2] * B[0] - b[0] * B[2]);
        r[2] += a[0] * B[1] - a[1] * B[0] - (b[0] * B[1] - b[1] * B[0]);
    }
    return fmax(fabs(r[0]), fmax(fabs(r[1]), fabs(r[2])));
}
/* The projection in both modes: finite differences through every input, and the law it is for.
 * The Lorentz case uses h = 0.05 and |B| ~ 1 so that its h terms are far above the FD noise. */
static void test_momentum_projection(void **state)
{
    (void)state;
    pj.x = rnd(3 * N, 1); pj.v = rnd(3 * N, 1); pj.xo = rnd(3 * N, 1); pj.vo = rnd(3 * N, 1);
    pj.px = zeros(3 * N); pj.pv = zeros(3 * N); pj.wx = rnd(3 * N, 1); pj.wv = rnd(3 * N, 1);
    pj.dx = zeros(3 * N); pj.dv = zeros(3 * N); pj.dxo = zeros(3 * N); pj.dvo = zeros(3 * N);
    pj.gx = zeros(3 * G); pj.gv = zeros(3 * G);
    pj.q = zeros(N);
    /* charges that do not sum to zero in graph 0 (Q = 2) and do in graph 1 */
    const double qs[N] = {1, 1, -1, 1, -1, 1, -1, 1};
    memcpy(pj.q, qs, sizeof(qs));
    for (int mode = 0; mode < 2; mode++) {
        memset(&pj.c, 0, sizeof(pj.c));
        pj.c.momentum = 1;
        if (mode == 0) {
            pj.c.proj_tau = 0.1;
            for (int k = 0; k < 3; k++) {
                pj.c.proj_dx[k] = 0.01 * (k + 1);
                pj.c.proj_dv[k] = -0.02 * (k + 1);
            }
        } else {
            pj.c.proj_lorentz = 1;
            pj.c.proj_h = 0.05;
            pj.c.proj_b[0] = 0.5; pj.c.proj_b[1] = -0.7; pj.c.proj_b[2] = 0.6;
        }
        struct blk b = {mode ? "momentum projection (Lorentz)" : "momentum projection (centroid)",
                        4,
                        {{"x", pj.x, pj.dx, 3 * N}, {"v", pj.v, pj.dv, 3 * N},
                         {"raw x out", pj.xo, pj.dxo, 3 * N}, {"raw v out", pj.vo, pj.dvo, 3 * N}},
                        project_loss, project_grad};
        fd_check(&b);
        /* what it is for: every graph's momentum changes exactly as prescribed */
        project_loss();
        for (int g = 0; g < G; g++) {
            const size_t o = (size_t)g * NB * 3;
            if (mode == 1) {
                double raw = lorentz_residual(&pj.c, NB, pj.q + g * NB, pj.x + o, pj.v + o,
                                              pj.xo + o, pj.vo + o);
                double res = lorentz_residual(&pj.c, NB, pj.q + g * NB, pj.x + o, pj.v + o,
                                              pj.px + o, pj.pv + o);
                assert_true(raw > 0.1); /* the raw outputs break the law */
                assert_true(res < PROJ_TOL);
                for (size_t k = 0; k < 3 * NB; k++) /* positions untouched */
                    assert_true(pj.px[o + k] == pj.xo[o + k]);
                continue;
            }
            for (int k = 0; k < 3; k++) {
                double mx = 0, mv = 0, mpx = 0, mpv = 0;
                for (int i = 0; i < NB; i++) {
                    const int j = 3 * (g * NB + i) + k;
                    mx += pj.x[j] / NB; mv += pj.v[j] / NB;
                    mpx += pj.px[j] / NB; mpv += pj.pv[j] / NB;
                }
                assert_true(fabs(mpv - (mv + pj.c.proj_dv[k])) < PROJ_TOL);
                assert_true(fabs(mpx - (mx + pj.c.proj_tau * mv + pj.c.proj_dx[k])) < PROJ_TOL);
            }
        }
    }
    free(pj.x); free(pj.v); free(pj.q); free(pj.xo); free(pj.vo); free(pj.px); free(pj.pv);
    free(pj.wx); free(pj.wv); free(pj.dx); free(pj.dv); free(pj.dxo); free(pj.dvo); free(pj.gx);
    free(pj.gv);
}

int main(void)
{
    cn_fp_policy(); /* the programs' float mode, before any thread (see clofnet.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_embed),
        cmocka_unit_test(test_edge_embed),
        cmocka_unit_test(test_frames_and_scalarization),
        cmocka_unit_test(test_centring),
        cmocka_unit_test(test_edge_mlp),
        cmocka_unit_test(test_coord_message),
        cmocka_unit_test(test_velocity_scaling),
        cmocka_unit_test(test_node_update),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_radial),
        cmocka_unit_test(test_momentum_projection),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
