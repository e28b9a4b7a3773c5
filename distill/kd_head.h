// The distillation head: the objectives of distill/objectives.h as a loss
// over vocabulary tiles (HEAD_TILED, tiled_loss in model/gemma2.h). The
// teacher's logits come tile by tile in the same pass (dense: an in-process
// teacher's last forward over the same positions) or from the rows of a
// teacher cache (sparse). Neither model's row of logits ever exists whole.
//
// Per position it keeps online log-sum-exps of the student (a = s / tau, and s
// for the cross-entropy) and of the teacher (b = t / tau, and t for the logged
// KL), and the sums that give the divergence without a second look at the row:
//   forward KL  KD = sum e^(b - m_b) (b - a) / Z_b - lse_b + lse_a
//   reverse KL  KD = sum e^(a - m_a) (a - b) / Z_a - lse_a + lse_b
// (m the running maximum, Z the running sum of e^(x - m)). JSD needs both
// normalisers inside a logarithm, so it takes a second statistics pass. The
// gradient pass gives, per id,
//   scale (alpha kd_scale / tau dKD/da + (1 - alpha) (softmax(s) - onehot)).
#ifndef GK_KD_HEAD_H
#define GK_KD_HEAD_H

#include "distill/objectives.h"
#include "distill/teacher.h"
#include "distill/teacher_cache.h"
#include "model/engine.h"

// One position's running sums (m: maxima, z: sums of e^(x - m), w: weighted sums) and results.
typedef struct {
    float m_a, m_s, m_b, m_t; // running maxima of a, s, b, t
    float s_target;           // the student's logit at the target
    double z_a, z_s, z_b, z_t;
    double w_kd, w_kl;                 // the divergence's and the logged KL's weighted sums
    double lse_a, lse_s, lse_b, lse_t; // set once the sums are complete
    double kd;                         // the divergence
    double inner;                      // JSD: sum p_S h; sparse: the factor of p_S outside the row's ids
} kd_position;

typedef struct {
    kd_config kd;
    const int32_t *targets; // [positions] hard labels; < 0: no loss at this position (neither CE nor KD)
    double scale;           // each position's loss is multiplied by this (1 / trained positions)
    engine *teacher;        // dense teacher: its last forward covers the same positions
    sparse_objective sparse;
    const teacher_cache_rows *rows; // sparse teacher: row i is position i of the batch
    size_t positions;
    kd_position *pos;       // [positions]
    float *s_ids, *g_ids;   // sparse: the student's logits at each row's ids, then dKD/da there [positions, k]
    int k;                  // ids per sparse row
    kd_sums sums;           // accumulated over the calls (weighted by scale)
    tiled_loss loss;
} kd_head_ctx;

// Sets the objective for batches of up to `positions` positions.
int kd_head_init(kd_head_ctx *k, const kd_config *kd, size_t positions, gk_err *err);
// The dense teacher: an open in-process teacher, or any model handle whose last
// forward covers the student's positions.
void kd_head_use_teacher(kd_head_ctx *k, const online_teacher *t);
void kd_head_use_engine(kd_head_ctx *k, engine *teacher);
// The sparse teacher: rows of a teacher cache, scored with `obj`.
int kd_head_use_cache(kd_head_ctx *k, sparse_objective obj, const teacher_cache_rows *rows, gk_err *err);
// The engine head running this context (with gradients when `grads`).
head_loss kd_head_loss(kd_head_ctx *k, bool grads);
void kd_head_free(kd_head_ctx *k);

#endif
