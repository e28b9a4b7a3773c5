// Optimizer state over the flat parameter buffer: AdamW (decoupled weight
// decay, as torch.optim.AdamW; none on norms and the embedding) or plain SGD,
// and gradient clipping by global norm as torch.nn.utils.clip_grad_norm_.
// The state here is host memory (what checkpoints hold); the model handle
// (model/engine.h) applies the updates, per backend, with the kernels of
// model/kernels_api.inc through optimizer_step_* below.
#ifndef GK_OPTIM_H
#define GK_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "model/kernels.h"
#include "model/params.h"

typedef enum { OPTIM_ADAMW, OPTIM_SGD } optim_kind;

// Values per partial sum of the gradient norm (FN(grad_chunk_squares)): a fixed grid of the flat
// buffer, so the norm is the same whoever sums which chunks.
enum { GRAD_NORM_CHUNK = 1 << 16 };

typedef struct {
    optim_kind kind;
    double beta1, beta2, eps, weight_decay;
    const param_layout *layout;
    float *m, *v;  // AdamW moments [n] of flat indices lo..lo+n-1 (NULL for SGD); device memory in a GPU backend's copy
    size_t lo, n;  // the moments' range: all of the layout, or one rank's block (ZeRO-1)
    int64_t steps; // updates taken (AdamW bias correction)
} optimizer;

int optimizer_init(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                   const param_layout *layout, gk_err *err);
// The moments of flat indices [lo, lo + n) only (one rank's block under ZeRO-1).
int optimizer_init_range(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                         const param_layout *layout, size_t lo, size_t n, gk_err *err);
void optimizer_free(optimizer *o);

// What AdamW applies to one tensor at update o->steps: weight decay only on matrices.
adamw_coeffs optimizer_adamw_coeffs(const optimizer *o, const param_tensor *p, double lr);
// The factor clipping multiplies the gradients by: max_norm / (norm + 1e-6) when
// norm > max_norm (max_norm 0 = off), else 1.
double grad_clip_scale(double norm, double max_norm);

#define GK_TEMPLATE "model/optim_api.inc"
#include "model/precisions.h"

#endif
