// The evaluation head: an engine_head callback that records, per position
// with a target, log p(target) and whether the target is the model's top
// choice; with a teacher (a kd_head_ctx set up for forward KL at temperature
// 1), also KL(teacher || model) and whether both models' top choices agree.
#ifndef GK_EVAL_HEAD_H
#define GK_EVAL_HEAD_H

#include <stdint.h>

#include "distill/kd_head.h"

enum { TOP1_DISAGREE = 0, TOP1_AGREE = 1, TOP1_UNKNOWN = 2 }; // a sampled cache has no teacher argmax

typedef struct {
    const int32_t *targets; // [N] < 0: nothing to score at this position
    double *logprob;        // [N] out: log p(target) (NaN where no target)
    uint8_t *greedy;        // [N] out: 1 when target == argmax of the model's logits
    kd_head_ctx *teacher;   // NULL, or the teacher (its targets must be these targets, scale 1)
    uint8_t *top1;          // [N] out with a teacher: TOP1_*
} eval_head_ctx;

// engine_head_fn (dlogits must be NULL); returns the chunk's summed -log p(target).
double eval_head(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab);

#endif
