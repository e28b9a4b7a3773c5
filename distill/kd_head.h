// The distillation head: a loss callback for engine_head (HEAD_CALLBACK)
// that, for each chunk of tokens, gets the teacher's logits for the same
// tokens (dense: from an in-process teacher's last forward; sparse: rows of a
// teacher cache) and applies the objectives of distill/objectives.h. Neither
// model's [tokens x vocab] logits exist for more than one chunk.
#ifndef GK_KD_HEAD_H
#define GK_KD_HEAD_H

#include "distill/objectives.h"
#include "distill/teacher.h"
#include "distill/teacher_cache.h"
#include "model/engine.h"

// Per-position teacher rows for the sparse objectives: row i of the batch.
typedef int (*sparse_row_fn)(void *ctx, size_t row, sparse_row *out);

typedef struct {
    kd_config kd;
    const int32_t *targets; // [N] hard labels; < 0: no loss at this position (neither CE nor KD)
    double scale;           // each position's loss is multiplied by this (1 / trained positions)
    // Dense teacher (in-process): its last forward covers the same N positions.
    engine *teacher;
    float *teacher_logits;       // work space [chunk, V]
    // Sparse teacher (cache):
    sparse_objective sparse;
    sparse_row_fn rows;
    void *rows_ctx;
    kd_sums sums;      // accumulated over the calls (weighted by scale)
    kd_sums *row_sums; // work space [chunk]: per-row sums, added in order (same result for any thread count)
    int failed;        // set (with err) when the teacher's logits could not be had; the loss is then NaN
    gk_err err;
} kd_head_ctx;

// Sets the objective and allocates the per-row work space for chunks of up to `chunk` rows.
int kd_head_init(kd_head_ctx *k, const kd_config *kd, size_t chunk, gk_err *err);
// The dense teacher: an open in-process teacher (or any model handle whose last forward
// covers the student's positions), and its [chunk, vocab] logits work space.
int kd_head_use_teacher(kd_head_ctx *k, const online_teacher *t, size_t chunk, int vocab, gk_err *err);
int kd_head_use_engine(kd_head_ctx *k, engine *teacher, size_t chunk, int vocab, gk_err *err);
// A head_loss running this context (with gradients when `grads`).
head_loss kd_head_loss(kd_head_ctx *k, int chunk, bool grads);
// After engine_head: the teacher's failure, if there was one (then -1 with its message).
int kd_head_check(kd_head_ctx *k, gk_err *err);
void kd_head_free(kd_head_ctx *k);
// The sparse teacher: rows of a teacher cache, scored with `obj`.
void kd_head_use_cache(kd_head_ctx *k, sparse_objective obj, teacher_cache_rows *rows);

// The engine_head_fn; ctx is a kd_head_ctx.
double kd_head(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab);

#endif
