// Cross-entropy as a loss over vocabulary tiles (tiled_loss, model/gemma2.h):
// an online log-sum-exp per position in the statistics pass, then
// (softmax - onehot) * scale in the gradient pass. Host float32 tiles.
#ifndef GK_XENT_TILED_H
#define GK_XENT_TILED_H

#include "model/gemma2.h"

typedef struct {
    const xent_ctx *x;     // host targets, scale, optional logprobs
    size_t rows;           // positions of the batch: the head's B * T
    float *max;            // [rows] running maximum of the row's logits
    double *sum;           // [rows] sum of exp(logit - max)
    float *target_logit;   // [rows]
    float *lse;            // [rows] set by finish
} xent_tiled;

int xent_tiled_init(xent_tiled *c, const xent_ctx *x, size_t rows, gk_err *err);
void xent_tiled_free(xent_tiled *c);
tiled_loss xent_tiled_loss(xent_tiled *c);

// Online log-sum-exp over tiles: folds a tile row x [width], scaled (u = x * scale), into
// (max, sum of exp(u - max)); with y (else NULL), also wsum = sum exp(u - max) (u - y * scale).
// All three are rescaled when the maximum grows.
void lse_fold(const float *x, const float *y, float scale, int width, float *max, double *sum, double *wsum);

#endif
