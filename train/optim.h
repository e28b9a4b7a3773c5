// Optimizers over the flat parameter buffer: AdamW (decoupled weight decay,
// as torch.optim.AdamW; none on norms and the embedding) and plain SGD.
// Gradient clipping by global norm as torch.nn.utils.clip_grad_norm_.
#ifndef GK_OPTIM_H
#define GK_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "model/params.h"

typedef enum { OPTIM_ADAMW, OPTIM_SGD } optim_kind;

typedef struct {
    optim_kind kind;
    double beta1, beta2, eps, weight_decay;
    const param_layout *layout;
    float *m, *v;  // AdamW moments [layout->n_floats] (NULL for SGD)
    int64_t steps; // updates taken (AdamW bias correction)
} optimizer;

int optimizer_init(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                   const param_layout *layout, gk_err *err);
void optimizer_free(optimizer *o);
// params -= update(grads) at learning rate lr.
void optimizer_step(optimizer *o, float *params, const float *grads, double lr);

// Global L2 norm of the gradients, accumulated in double in layout order.
double grad_norm(const param_layout *layout, const float *grads);
// Scales grads by max_norm / (norm + 1e-6) when norm > max_norm (max_norm 0 = off); returns the scale.
double grad_clip(const param_layout *layout, float *grads, double norm, double max_norm);
// True when every gradient is finite.
bool grads_finite(const param_layout *layout, const float *grads);

#endif
