/* without_mpi.c: sim_mpi where MPI is absent (CMake found none): one process, rank 0 of 1;
 * a job of several ranks started by a launcher is refused rather than run R times. */
#include "sim_mpi.h"

#include <stdlib.h>

/* Stay rank 0 of 1 (see sim_mpi.h). */
int sim_mpi_init(struct sim_mpi *p, int *argc, char ***argv, char err[SIM_ERRLEN])
{
    (void)argc;
    (void)argv;
    *p = (struct sim_mpi){.rank = 0, .size = 1, .first_failed = -1, .real_stderr = -1};
    const char *vars[2] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (int k = 0; k < 2; k++) {
        const char *v = getenv(vars[k]);
        if (v && atoi(v) > 1) {
            /* R copies of one run would each write the same files */
            snprintf(err, SIM_ERRLEN, "started as one of %s ranks (%s), but built without MPI: "
                     "install libopenmpi-dev (scripts/deps.sh) and rebuild", v, vars[k]);
            return SIM_EARG;
        }
    }
    return SIM_OK;
}

/* One rank: its status is everyone's (see sim_mpi.h). */
int sim_mpi_agree(void *p, int status)
{
    (void)p;
    return status;
}

/* The only rank always reports (see sim_mpi.h). */
int sim_mpi_reports(const struct sim_mpi *p)
{
    (void)p;
    return 1;
}

/* Nothing to leave (see sim_mpi.h). */
int sim_mpi_finish(struct sim_mpi *p, int rc)
{
    (void)p;
    return rc;
}

/* Share of a rank (see sim_mpi.h). */
void sim_mpi_range(long count, int rank, int size, long *lo, long *hi)
{
    *lo = (long)((int64_t)count * rank / size);
    *hi = (long)((int64_t)count * (rank + 1) / size);
}

/* Nobody to differ from (see sim_mpi.h). */
int sim_mpi_differs(struct sim_mpi *p, const void *buf, size_t len)
{
    (void)p;
    (void)buf;
    (void)len;
    return 0;
}

/* Rank 0 already holds everything (see sim_mpi.h). */
int sim_mpi_gather(struct sim_mpi *p, const double *mine, double *all, long count, size_t unit,
                   char err[SIM_ERRLEN])
{
    (void)p, (void)mine, (void)all, (void)count, (void)unit, (void)err;
    return SIM_OK;
}

/* Never called with one rank; fails if it were (see sim_mpi.h). */
int sim_mpi_alltoallv(void *p, const float *send, const int *send_counts, const int *send_displs,
                      float *recv, const int *recv_counts, const int *recv_displs)
{
    (void)p, (void)send, (void)send_counts, (void)send_displs;
    (void)recv, (void)recv_counts, (void)recv_displs;
    return 1;
}

/* Never called with one rank; fails if it were (see sim_mpi.h). */
int sim_mpi_allgatherv(void *p, const void *send, int send_bytes, void *recv,
                       const int *recv_bytes, const int *recv_displs)
{
    (void)p, (void)send, (void)send_bytes, (void)recv, (void)recv_bytes, (void)recv_displs;
    return 1;
}
