// The optimizer step and gradient norm, written once over the instantiation's
// kernels (model/cpu/optim.c on the CPU, model/cuda/optim.cu on the GPU).
#include "model/real.h"
#include "model/optim.h"

void FN(optimizer_step)(optimizer *o, float *master, real *w, const real *grads, double lr, float grad_scale) {
    const param_layout *L = o->layout;
    if (o->kind == OPTIM_ADAMW) o->steps++;
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        if (o->kind == OPTIM_SGD) {
            FN(sgd_update)(master + p->offset, w + p->offset, grads + p->offset, p->numel, (float)lr, grad_scale);
            continue;
        }
        adamw_coeffs c = optimizer_adamw_coeffs(o, p, lr);
        FN(adamw_update)(master + p->offset, w + p->offset, grads + p->offset, o->m + p->offset, o->v + p->offset,
                         p->numel, &c, grad_scale);
    }
}

double FN(grad_norm)(const param_layout *L, const real *grads) {
    double total = 0;
    for (int t = 0; t < L->n_tensors; t++) total += FN(sum_squares)(grads + L->tensors[t].offset, L->tensors[t].numel);
    return sqrt(total);
}
