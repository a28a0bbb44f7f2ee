/* nbody_view.c: the nbody-view program: parse the command line and run the viewer
 * (ground-truth simulator left, learned ClofNet integrator right). */
#include "viz.h"
#include "clofnet.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    cn_blas_reexec(argv); /* returns only when the BLAS kernels fit the CPU, or on failure */
    cn_fp_policy();       /* before any thread: subnormal floats flushed to zero */
    struct viz_options o;
    char err[VIZ_ERRLEN] = "";
    if (viz_options_parse(&o, argc, argv, err) != VIZ_OK) {
        fprintf(stderr, "nbody-view: %s\n", err);
        return 2;
    }
    if (o.help) {
        fputs(viz_usage(), stdout);
        return 0;
    }
    int rc = viz_run(&o, stdout, stderr, err);
    if (rc != VIZ_OK) {
        fprintf(stderr, "nbody-view: %s\n", err);
        return 1;
    }
    return 0;
}
