// A training run over the ranks of an MPI job (mpirun -np N gemmakd train):
// the global batch split into contiguous blocks of rows, one per rank, the
// loader's cursor kept the one of a single process, and the ZeRO-1 state
// (each rank's block of the AdamW moments and EMA) made whole on rank 0 for
// checkpoints and split again on resume, so checkpoints do not depend on the
// rank count.
#ifndef GK_DATA_PARALLEL_H
#define GK_DATA_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#include "data/loader.h"
#include "model/checkpoint.h"
#include "model/optim.h"
#include "train/ckpt.h"
#include "train/run_config.h"

typedef struct {
    int rank, ranks;
    int rows;         // this rank's rows per step: batch.size / ranks
    int micro, accum; // rows per forward-backward (the largest divisor of rows within batch.micro), micro-batches per step
    int global_micro; // rows per micro-batch of one process (batch.micro, else batch.size): the loader's count
    bool zero;        // ZeRO-1 (parallel.zero with more than one rank)
    size_t lo, hi;    // this rank's block of the flat parameters ([0, n) without ZeRO-1)
} dp_plan;

// The split of rc's batch over the job's ranks; an error when batch.size does not divide.
int dp_plan_make(dp_plan *p, const run_config *rc, size_t n_floats, gk_err *err);

// Loader positions around this rank's rows of a step whose first `data` rows come from the data
// (the rest are sampled): the data rows of the ranks before it, and after its `batches` calls to
// loader_next those of the ranks after it, the batch count caught up to one process's.
void dp_skip_before(const dp_plan *p, loader *l, int data);
void dp_skip_after(const dp_plan *p, loader *l, int data, int batches);

// Writes the checkpoint of step s (rank 0; the others send their blocks): the whole master
// weights (all-gathered when ZeRO-1 left them current per block), moments and EMA. Every rank
// returns once it is written (or with the failure).
int dp_save(const dp_plan *p, const char *run_dir, model_state *m, const optimizer *o, const trainer_state *s,
            const float *ema, const char *tokenizer_sha256, int keep, gk_err *err);
// Loads checkpoint dir on every rank, keeping this rank's block of the moments and EMA (a
// checkpoint of any rank count). *ema_found: whether it had an EMA.
int dp_load(const dp_plan *p, const char *dir, model_state *m, optimizer *o, trainer_state *s, float *ema,
            bool *ema_found, gk_err *err);
// ZeRO-1: the whole EMA on every rank (for evaluation): out [n]; ema is this rank's block.
int dp_whole_ema(const dp_plan *p, const float *ema, size_t n, float *out, gk_err *err);

#endif
