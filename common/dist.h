// The ranks of a data-parallel job. Under mpirun (or srun) every process
// joins MPI_COMM_WORLD; started any other way, gemmakd is one rank of one and
// never touches MPI. Scalars and host buffers go through MPI here; the
// gradient and weight collectives of a training engine go through
// model/collectives.h (MPI on the CPU, NCCL on the GPU).
#ifndef GK_DIST_H
#define GK_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/collectives.h"
#include "common/error.h"

// Joins the job when the environment says a launcher started us (OpenMPI's
// OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, PMI's PMI_SIZE). Call once, first. Ranks on one
// machine then default to their share of its cores as OpenMP threads (not with OMP_NUM_THREADS).
int dist_init(int *argc, char ***argv, gk_err *err);
// Leaves the job (a no-op for one process).
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
bool dist_is_root(void); // rank 0: the one that writes shared files and prints progress

// Ends every rank at once: prints "gemmakd: error (rank R of N): message" and aborts the job
// with exit status code. For one process it only returns (the caller exits as usual).
void dist_abort(int code, const char *message);

// Rows [lo, hi) of n that rank `rank` of `size` owns: contiguous blocks, the first n % size one longer.
void dist_split(uint64_t n, int rank, int size, uint64_t *lo, uint64_t *hi);

// Collectives on host memory; each is a no-op for one process. An MPI failure aborts the job
// (MPI's own error handler): nothing returns half done.
void dist_sum_f64(double *x, size_t n);  // in place, over every rank
void dist_sum_i64(int64_t *x, size_t n);
void dist_max_f64(double *x, size_t n);
// Every rank's rc at once (a collective; rc itself for one process): 0 when every rank passed;
// else -1 on every rank, a failing rank keeping its own error and the others getting GK_EPEER
// "rank R failed" (R the lowest failing rank), so no rank goes on into a collective alone and
// the job prints the failing rank's message.
int dist_check(int rc, gk_err *err);
void dist_bcast(void *buf, size_t bytes, int root);
// Rows [lo, hi) of buf (row_bytes each) from every rank to rank 0, where the ranks' [lo, hi)
// tile [0, n) in rank order (dist_split's blocks): rank 0's buf then holds rows [0, n); the
// other ranks' buf is unchanged. A no-op for one process.
int dist_gather_rows(void *buf, size_t row_bytes, uint64_t lo, uint64_t hi, gk_err *err);
// Every rank's bytes, in rank order, to every rank: *out (malloc'd) of *total bytes (a copy of
// in for one process). Each rank's part and the whole stay below 2 GiB.
int dist_share_bytes(const void *in, size_t bytes, void **out, size_t *total, gk_err *err);

// Rank 0 gets every rank's block (collectives_range) of a flat float buffer of n into out [n]
// (rank 0 only; NULL elsewhere): block [hi - lo] is this rank's.
void dist_gather_blocks(const float *block, size_t n, float *out);
// A string from rank 0 to every rank (*s malloc'd on the others; NULL stays NULL).
int dist_bcast_string(char **s, gk_err *err);

// The collectives of host buffers (MPI): what a CPU engine reduces and gathers with.
const collectives *dist_host_collectives(void);

#endif
