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

// What AdamW applies to one tensor at update o->steps: weight decay only on
// matrices, bias corrections folded into step_size and bc2_sqrt.
typedef struct {
    float lr, wd, beta1, beta2, eps, step_size, bc2_sqrt;
} adamw_coeffs;
adamw_coeffs optimizer_adamw_coeffs(const optimizer *o, const param_tensor *p, double lr);

#ifdef GK_WITH_CUDA
#include "model/bf16.h"
// optimizer_step on the GPU: fp32 master weights, bf16 gradients, fp32 moments
// (o->m, o->v device buffers from optimizer_init_cuda); w gets the master
// weights rounded to bf16. The same update as optimizer_step, element for element.
int optimizer_init_cuda(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                        const param_layout *layout, gk_err *err);
void optimizer_free_cuda(optimizer *o);
void optimizer_step_cuda(optimizer *o, float *master, gk_bf16 *w, const gk_bf16 *grads, double lr);
#endif

// Global L2 norm of the gradients, accumulated in double in layout order.
double grad_norm(const param_layout *layout, const float *grads);
// Scales grads by max_norm / (norm + 1e-6) when norm > max_norm (max_norm 0 = off); returns the scale.
double grad_clip(const param_layout *layout, float *grads, double norm, double max_norm);
// True when every gradient is finite.
bool grads_finite(const param_layout *layout, const float *grads);

#endif
