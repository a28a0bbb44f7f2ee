/* sim_mpi.h: the ranks of an MPI job for the programs nbody-gen and nbody-train (sim_mpi), or one
 * process where MPI is absent (mpi/without_mpi.c): status agreement, gathers and the collectives. */
#ifndef SIM_SIM_MPI_H
#define SIM_SIM_MPI_H

#include <stddef.h>

#include "sim.h"

/* A program's place in its job. Without a launcher (mpirun, srun) MPI is never initialised
 * and the program is rank 0 of 1, exactly as a build without MPI. Failures follow one rule:
 * every rank passes the same sequence of sim_mpi_agree calls (a rank that leaves early passes
 * its last one in sim_mpi_finish), so an error on any rank stops all of them at the next
 * agreement, and only the lowest failing rank's messages reach the terminal: ranks above 0
 * write stderr into a private file, replayed by sim_mpi_finish only when that rank is the
 * one to report, and their stdout goes to /dev/null (output and progress come from rank 0). */
struct sim_mpi {
    int rank, size;   /* this process and how many there are: 0 and 1 without a launcher */
    int active;       /* 1 when MPI was initialised (and must be finalised) */
    int stopped;      /* 1 once an agreement said that some rank stops */
    int first_failed; /* lowest rank with a non-zero status at that agreement, -1 if none */
    int real_stderr;  /* ranks above 0: the terminal's stderr while fd 2 is captured, else -1 */
    FILE *capture;    /* ranks above 0: where fd 2 goes */
};

/* Join the job (MPI_Init_thread, funnelled: only the main thread calls MPI) when started by a
 * launcher, else stay rank 0 of 1. Call it first in main, after sim_signals_start. SIM_OK, or
 * SIM_EARG with a message (a job of several ranks for a build without MPI; MPI failed). */
int sim_mpi_init(struct sim_mpi *p, int *argc, char ***argv, char err[SIM_ERRLEN]);
/* Collective: every rank passes its status (0: fine, continuing). Returns 0 when every rank
 * passed 0; else the status to stop with: this rank's own when non-zero, else the largest
 * of the others' (1 if a rank left with status 0). p is a struct sim_mpi (a void pointer so
 * that it serves as the agree hook of the trainer's communicator, model/clofnet.h). */
int sim_mpi_agree(void *p, int status);
/* 1 when this rank is to print the message of a failure it has: no agreement has stopped
 * the job yet, or the one that did found this rank the lowest failing one. */
int sim_mpi_reports(const struct sim_mpi *p);
/* Leave the job with exit status rc: agree on it (unless a stop was already agreed), replay
 * the captured stderr when this rank reports, finalise MPI. Returns the exit status: rc, or
 * 1 when rc is 0 but another rank failed. */
int sim_mpi_finish(struct sim_mpi *p, int rc);
/* The contiguous share [*lo, *hi) of count items that `rank` of `size` computes: the first
 * count * rank / size items are the lower ranks'. */
void sim_mpi_range(long count, int rank, int size, long *lo, long *hi);
/* Collective: 1 on the ranks whose `len` bytes at buf differ from rank 0's, else 0. */
int sim_mpi_differs(struct sim_mpi *p, const void *buf, size_t len);
/* Collective: each rank's share (sim_mpi_range) of an array of count units of `unit` doubles,
 * onto rank 0: rank 0 passes the whole array as `all` (its own share already at its start),
 * the others their share as `mine` (all may be NULL there). SIM_OK, or SIM_EARG when a unit
 * is too large for one MPI count. */
int sim_mpi_gather(struct sim_mpi *p, const double *mine, double *all, long count, size_t unit,
                   char err[SIM_ERRLEN]);

/* The trainer's collectives (struct cn_comm of model/clofnet.h), on MPI_COMM_WORLD. Both
 * return 0, or 1 when MPI failed. */
/* MPI_Alltoallv of floats: counts and displacements in floats, one per rank. */
int sim_mpi_alltoallv(void *p, const float *send, const int *send_counts, const int *send_displs,
                      float *recv, const int *recv_counts, const int *recv_displs);
/* MPI_Allgatherv of bytes: every rank's send_bytes into recv at recv_displs[rank]; send may
 * be recv + recv_displs[rank] (in place). */
int sim_mpi_allgatherv(void *p, const void *send, int send_bytes, void *recv,
                       const int *recv_bytes, const int *recv_displs);

#endif
