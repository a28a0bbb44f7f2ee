/* with_mpi.c: sim_mpi over MPI (built where CMake finds MPI): joining the job, status agreement
 * with one report, the trajectory gather of nbody-gen and the trainer's collectives. */
#include "sim_mpi.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

/* The one job of this process, for the exit hook. */
static struct sim_mpi *current;

/* 1 when a launcher started this process as a rank of a job (then MPI_Init must be called;
 * without one it is not, so that the program runs exactly as a build without MPI). */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
           getenv("PMI_SIZE");
}

/* exit() before sim_mpi_finish (--help): leave the job as status 0 would. */
static void at_exit(void)
{
    if (current && current->active)
        sim_mpi_finish(current, 0);
}

/* Join the job (see sim_mpi.h). */
int sim_mpi_init(struct sim_mpi *p, int *argc, char ***argv, char err[SIM_ERRLEN])
{
    *p = (struct sim_mpi){.rank = 0, .size = 1, .first_failed = -1, .real_stderr = -1};
    if (!launched())
        return SIM_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        snprintf(err, SIM_ERRLEN, "MPI_Init_thread failed");
        return SIM_EARG;
    }
    p->active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &p->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p->size);
    current = p;
    atexit(at_exit);
    if (p->rank > 0) {
        /* output and progress come from rank 0; this rank's messages wait for the verdict */
        fflush(stdout);
        fflush(stderr);
        if (!freopen("/dev/null", "w", stdout))
            clearerr(stdout);
        p->capture = tmpfile();
        p->real_stderr = p->capture ? dup(2) : -1;
        if (p->real_stderr >= 0 && dup2(fileno(p->capture), 2) < 0) {
            close(p->real_stderr);
            p->real_stderr = -1;
        }
    }
    return SIM_OK;
}

/* Agree on a status, stop flag and the lowest failing rank (one MPI_Allreduce of 3 ints). */
static int agree(struct sim_mpi *p, int status, int stop)
{
    if (!p->active)
        return status;
    /* max over ranks of: stop, status, and size-1-rank on the failing ranks */
    int mine[3] = {stop || status != 0, status, status != 0 ? p->size - 1 - p->rank : -1}, all[3];
    if (MPI_Allreduce(mine, all, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (!all[0])
        return 0;
    p->stopped = 1;
    p->first_failed = all[2] >= 0 ? p->size - 1 - all[2] : -1;
    if (status)
        return status;
    return all[1] ? all[1] : 1;
}

/* Collective status agreement (see sim_mpi.h). */
int sim_mpi_agree(void *p, int status) { return agree(p, status, 0); }

/* This rank prints its failure (see sim_mpi.h). */
int sim_mpi_reports(const struct sim_mpi *p)
{
    return !p->stopped || p->first_failed == p->rank;
}

/* Leave the job (see sim_mpi.h). */
int sim_mpi_finish(struct sim_mpi *p, int rc)
{
    if (!p->active)
        return rc;
    if (!p->stopped)
        agree(p, rc, 1);
    const int st = rc ? rc : p->first_failed >= 0;
    fflush(stdout);
    fflush(stderr);
    if (p->real_stderr >= 0) {
        /* the captured messages, to the terminal only from the rank that reports */
        if (rc && p->first_failed == p->rank && fseek(p->capture, 0, SEEK_SET) == 0) {
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, p->capture)) > 0)
                if (write(p->real_stderr, buf, n) < 0)
                    break;
        }
        dup2(p->real_stderr, 2);
        close(p->real_stderr);
        p->real_stderr = -1;
    }
    if (p->capture)
        fclose(p->capture);
    p->capture = NULL;
    p->active = 0;
    MPI_Finalize();
    return st;
}

/* Share of a rank (see sim_mpi.h). */
void sim_mpi_range(long count, int rank, int size, long *lo, long *hi)
{
    *lo = (long)((int64_t)count * rank / size);
    *hi = (long)((int64_t)count * (rank + 1) / size);
}

/* Compare with rank 0's bytes (see sim_mpi.h). */
int sim_mpi_differs(struct sim_mpi *p, const void *buf, size_t len)
{
    if (!p->active || len > INT_MAX)
        return 0;
    unsigned char *root = malloc(len ? len : 1);
    if (!root)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (p->rank == 0)
        memcpy(root, buf, len);
    MPI_Bcast(root, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
    int differs = memcmp(root, buf, len) != 0;
    free(root);
    return differs;
}

/* Gather the ranks' shares of trajectories on rank 0 (see sim_mpi.h). */
int sim_mpi_gather(struct sim_mpi *p, const double *mine, double *all, long count, size_t unit,
                   char err[SIM_ERRLEN])
{
    if (!p->active || p->size == 1)
        return SIM_OK;
    if (unit > INT_MAX || count > INT_MAX) {
        /* every rank sees the same sizes, so every rank returns here */
        snprintf(err, SIM_ERRLEN, "a trajectory of %zu numbers is more than one MPI message "
                 "count can hold", unit);
        return SIM_EARG;
    }
    MPI_Datatype traj;
    MPI_Type_contiguous((int)unit, MPI_DOUBLE, &traj);
    MPI_Type_commit(&traj);
    int *counts = NULL, *displs = NULL;
    long lo, hi;
    if (p->rank == 0) {
        counts = malloc((size_t)p->size * sizeof *counts);
        displs = malloc((size_t)p->size * sizeof *displs);
        if (!counts || !displs)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (int r = 0; r < p->size; r++) {
            sim_mpi_range(count, r, p->size, &lo, &hi);
            counts[r] = (int)(hi - lo);
            displs[r] = (int)lo;
        }
    }
    sim_mpi_range(count, p->rank, p->size, &lo, &hi);
    int rc;
    if (p->rank == 0)
        rc = MPI_Gatherv(MPI_IN_PLACE, 0, traj, all, counts, displs, traj, 0, MPI_COMM_WORLD);
    else
        rc = MPI_Gatherv(mine, (int)(hi - lo), traj, NULL, NULL, NULL, traj, 0, MPI_COMM_WORLD);
    MPI_Type_free(&traj);
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS) {
        snprintf(err, SIM_ERRLEN, "MPI_Gatherv of the trajectories failed");
        return SIM_EIO;
    }
    return SIM_OK;
}

/* MPI_Alltoallv of floats (see sim_mpi.h). */
int sim_mpi_alltoallv(void *p, const float *send, const int *send_counts, const int *send_displs,
                      float *recv, const int *recv_counts, const int *recv_displs)
{
    (void)p;
    return MPI_Alltoallv(send, send_counts, send_displs, MPI_FLOAT, recv, recv_counts,
                         recv_displs, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS;
}

/* MPI_Allgatherv of bytes (see sim_mpi.h). */
int sim_mpi_allgatherv(void *p, const void *send, int send_bytes, void *recv,
                       const int *recv_bytes, const int *recv_displs)
{
    const struct sim_mpi *m = p;
    const void *s = send == (const char *)recv + recv_displs[m->rank] ? MPI_IN_PLACE : send;
    return MPI_Allgatherv(s, send_bytes, MPI_BYTE, recv, recv_bytes, recv_displs, MPI_BYTE,
                          MPI_COMM_WORLD) != MPI_SUCCESS;
}
