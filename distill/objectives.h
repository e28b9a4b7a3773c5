// Distillation objectives for one position (a row of the vocabulary).
//
// S, T: student and teacher logits after Gemma's final soft-cap; temperature
// tau divides both: p_S = softmax(S / tau), p_T = softmax(T / tau).
//   forward_kl   KD = sum_i p_T,i (log p_T,i - log p_S,i)             (Gemma 2's objective)
//   reverse_kl   KD = sum_i p_S,i (log p_S,i - log p_T,i)
//   jsd(beta)    KD = beta KL(p_T || M) + (1 - beta) KL(p_S || M),  M = beta p_T + (1 - beta) p_S,
//                0 < beta < 1 (beta = 0.5: the symmetric Jensen-Shannon divergence)
// With t2_scale, KD is multiplied by tau^2 (gradient magnitudes then do not
// shrink with tau). The loss mixes in hard-label cross-entropy at tau = 1:
//   loss = alpha * KD + (1 - alpha) * CE,  CE = -log softmax(S)[target].
// Logged beside them: the true KL(softmax(T) || softmax(S)) at tau = 1.
//
// Sparse teachers (a cache, distill/teacher_cache.h) give per position
// K ids with teacher log-probs lp_i (at the cache's temperature) and the
// leftover mass r = 1 - sum_i exp(lp_i):
//   topk_renorm  KD = sum_K p~_i (log p~_i - log p_S,i), p~ = p_T restricted to K, renormalised
//   topk_bucket  KD = sum_K p_i log(p_i / p_S,i) + r log(r / q_r), q_r = student mass outside K
//   sampled      K draws from p_T stored as ids with counts c_i (N = sum c_i):
//                KD = sum_i (c_i / N) (lp_i - log p_S,i), an unbiased estimate of forward KL
//                whose gradient equals the full-teacher gradient in expectation
#ifndef GK_OBJECTIVES_H
#define GK_OBJECTIVES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

typedef enum { KD_FORWARD_KL, KD_REVERSE_KL, KD_JSD } kd_divergence;
typedef enum { SPARSE_TOPK_RENORM, SPARSE_TOPK_BUCKET, SPARSE_SAMPLED } sparse_objective;

typedef struct {
    kd_divergence divergence;
    double alpha, temperature, beta;
    bool t2_scale;
} kd_config;

// Sums over rows, each multiplied by the row's weight (for logging).
typedef struct {
    double loss, ce, kd, kl;
} kd_sums;

enum { SPARSE_MAX_K = 1024 }; // the most ids a sparse teacher row may hold

// A sparse teacher row: k <= SPARSE_MAX_K entries with distinct ids.
typedef struct {
    int k;
    const int32_t *ids;    // [k]
    const float *logprobs; // [k] teacher log-probabilities at the cache temperature
    const float *counts;   // [k] draws per id (sampled), NULL for top-k
    float leftover;        // teacher mass outside the k ids (top-k)
} sparse_row;

// One position with a dense teacher. s, t: [V] logits; target: the hard label
// (>= 0). Writes weight * dloss/ds into ds[V] (when not NULL); returns weight * loss
// and adds weight * (loss, ce, kd, kl) to sums.
double kd_row_dense(const kd_config *c, const float *s, const float *t, int V, int32_t target, double weight,
                    float *ds, kd_sums *sums);
// The same with a sparse teacher (the KD term is the sparse objective).
double kd_row_sparse(const kd_config *c, sparse_objective obj, const float *s, const sparse_row *t, int V,
                     int32_t target, double weight, float *ds, kd_sums *sums);

#endif
