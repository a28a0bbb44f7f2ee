/* util.c: the small helpers every program shares, each defined once: command-line numbers,
 * quantiles, and the conversion between the files' [3][n] and the network's [n][3] layout. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* 1 if c is an ASCII decimal digit (isdigit depends on the locale). */
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parse a decimal integer in [lo, hi] (see sim.h). */
int sim_parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !out)
        return SIM_EARG;
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p)
        return SIM_EARG;
    for (; *p; p++)
        if (!is_digit(*p))
            return SIM_EARG; /* also rules out the spaces strtol would skip */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return SIM_EARG;
    *out = v;
    return SIM_OK;
}

/* Parse a finite decimal number (see sim.h). */
int sim_parse_double(const char *s, double *out)
{
    if (!s || !out)
        return SIM_EARG;
    /* [+-] digits [. digits] | [+-] . digits, then [eE [+-] digits]: only characters whose
     * meaning no locale changes, so strtod reads them as the "C" locale does or stops early. */
    const char *p = s + (*s == '+' || *s == '-');
    int mant = 0;
    while (is_digit(*p))
        p++, mant++;
    if (*p == '.') {
        p++;
        while (is_digit(*p))
            p++, mant++;
    }
    if (!mant)
        return SIM_EARG;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '+' || *p == '-';
        if (!is_digit(*p))
            return SIM_EARG;
        while (is_digit(*p))
            p++;
    }
    if (*p)
        return SIM_EARG;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return SIM_EARG;
    *out = v;
    return SIM_OK;
}

/* Linear-interpolation quantile of sorted values (see sim.h). */
double sim_quantile(const double *sorted, long n, double p)
{
    if (!sorted || n < 1 || !(p >= 0.0 && p <= 1.0))
        return NAN;
    double pos = p * (double)(n - 1);
    long i = (long)pos;
    if (i >= n - 1)
        return sorted[n - 1];
    double t = pos - (double)i, a = sorted[i], b = sorted[i + 1];
    if (t == 0.0 || a == b)
        return a;
    /* rounding could step an ulp outside [a, b]; a quantile never leaves its two ranks */
    double r = (1.0 - t) * a + t * b;
    return r < a ? a : r > b ? b : r;
}

/* Axis-major doubles to node-major floats (see sim.h). */
void sim_axis_to_node(int n, const double *axis, float *node)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            node[3 * i + c] = (float)axis[(size_t)c * n + i];
}

/* Node-major floats to axis-major doubles (see sim.h). */
void sim_node_to_axis(int n, const float *node, double *axis)
{
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < n; i++)
            axis[(size_t)c * n + i] = node[3 * i + c];
}
