// The evaluation head: a loss over vocabulary tiles (HEAD_TILED) that
// records, per position with a target, log p(target) and whether the target
// is the model's top choice; with a teacher (a kd_head_ctx set up for forward
// KL at temperature 1), also KL(teacher || model) in its sums and whether
// both models' top choices agree. No row of logits exists whole.
#ifndef GK_EVAL_HEAD_H
#define GK_EVAL_HEAD_H

#include <stdint.h>

#include "distill/kd_head.h"

enum { TOP1_DISAGREE = 0, TOP1_AGREE = 1, TOP1_UNKNOWN = 2 }; // a sampled cache has no teacher argmax

// One position's running log-sum-exp and top choices (the lowest id among equal logits).
typedef struct {
    float max, target_logit, best, teacher_best;
    double sum;
    int best_id, teacher_best_id;
} eval_position;

typedef struct {
    const int32_t *targets; // [positions] < 0: nothing to score at this position
    double *logprob;        // [positions] out: log p(target) (NaN where no target)
    uint8_t *greedy;        // [positions] out: 1 when target == argmax of the model's logits
    kd_head_ctx *teacher;   // NULL, or the teacher (its targets are set to these, scale 1)
    uint8_t *top1;          // [positions] out with a teacher: TOP1_*
    tile_shape tiles;       // positions per block, ids per tile (0: the head's defaults)
    size_t positions;
    eval_position *pos;     // [positions] work space
    tiled_loss loss;
} eval_head_ctx;

int eval_head_init(eval_head_ctx *c, size_t positions, gk_err *err);
// The engine head (no gradients); its loss is the summed -log p(target).
head_loss eval_head_loss(eval_head_ctx *c);
void eval_head_free(eval_head_ctx *c);

#endif
