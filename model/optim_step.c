// The optimizer step and gradient norm, written once over the instantiation's
// kernels (model/cpu/optim.c on the CPU, model/cuda/optim.cu on the GPU).
#include "model/real.h"
#include "model/optim.h"

void FN(optimizer_step_range)(optimizer *o, float *master, real *w, const real *grads, double lr, float grad_scale) {
    const param_layout *L = o->layout;
    size_t lo = o->lo, hi = o->lo + o->n;
    if (o->kind == OPTIM_ADAMW) o->steps++;
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        size_t a = p->offset > lo ? p->offset : lo, b = p->offset + p->numel < hi ? p->offset + p->numel : hi;
        if (a >= b) continue; // the tensor lies outside the range
        if (o->kind == OPTIM_SGD) {
            FN(sgd_update)(master + (a - lo), w + a, grads + a, b - a, (float)lr, grad_scale);
            continue;
        }
        adamw_coeffs c = optimizer_adamw_coeffs(o, p, lr);
        FN(adamw_update)(master + (a - lo), w + a, grads + a, o->m + (a - lo), o->v + (a - lo), b - a, &c, grad_scale);
    }
}

void FN(optimizer_step)(optimizer *o, float *master, real *w, const real *grads, double lr, float grad_scale) {
    GK_ASSERT(o->lo == 0 && o->n == o->layout->n_floats);
    FN(optimizer_step_range)(o, master, w, grads, lr, grad_scale);
}

double FN(grad_norm)(const param_layout *L, const real *grads) {
    double total = 0;
    for (int t = 0; t < L->n_tensors; t++) total += FN(sum_squares)(grads + L->tensors[t].offset, L->tensors[t].numel);
    return sqrt(total);
}
