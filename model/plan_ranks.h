// The memory of one device (one rank) in a data-parallel run: the student's
// state as the trainer lays it out over N ranks (ZeRO-1 shards by
// collectives_block), its activations and an in-process teacher.
#ifndef GK_PLAN_RANKS_H
#define GK_PLAN_RANKS_H

#include <stdbool.h>
#include <stddef.h>

#include "model/plan.h"

typedef struct {
    int ranks;   // >= 1
    bool zero;   // ZeRO-1: AdamW m and v, the EMA and (cuda bf16) the master weights sharded
    bool bf16;   // the student's precision
    bool cuda;   // the device (on the cpu the host keeps the whole float32 master)
    bool ema;    // an EMA of the weights is kept
} rank_setup;

typedef struct {
    size_t shard;           // elements of rank 0's block (the largest): collectives_block(P, ranks), at most P
    bool master_sharded;    // the float32 master weights are rank 0's block, not all P
    // Bytes on one device. P = the student's parameters, S = shard when zero, else P.
    size_t bytes_weights;   // 2P (bf16) or 4P (float32: they are the master weights)
    size_t bytes_master;    // bf16: 4 x shard (zero on cuda) or 4P; float32: 0
    size_t bytes_grads;     // 2P (bf16) or 4P, whole: every rank's backward writes all of them
    size_t bytes_adamw;     // 8S: m and v in float32
    size_t bytes_ema;       // 4S with ema, else 0
    size_t bytes_state;     // the five above
    size_t bytes_activations;                          // one micro-batch (model_plan.bytes_activations)
    size_t bytes_teacher_weights, bytes_teacher_activations; // 0 without an in-process teacher
    size_t bytes_total;
} rank_plan;

// student: model_plan_compute's plan; teacher: NULL when cached or absent.
int rank_plan_compute(const model_plan *student, const forward_plan *teacher, const rank_setup *s, rank_plan *r,
                      gk_err *err);

#endif
