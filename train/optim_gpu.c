// The optimizer on the GPU (GPU builds only): the moments live in device
// memory; each tensor's update runs as one kernel with optimizer_step's coefficients.
#ifdef GK_WITH_CUDA
#include <string.h>

#include "model/cuda/cuda.h"
#include "model/kernels.h"
#include "train/optim.h"

int optimizer_init_cuda(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                        const param_layout *layout, gk_err *err) {
    *o = (optimizer){kind, beta1, beta2, eps, weight_decay, layout, NULL, NULL, 0};
    if (kind != OPTIM_ADAMW) return gk_fail(err, GK_EINPUT, "the GPU optimizer is AdamW only (plain SGD has no kernel yet)");
    size_t bytes = layout->n_floats * sizeof(float);
    o->m = buffer_alloc_cuda(bytes, err);
    o->v = o->m ? buffer_alloc_cuda(bytes, err) : NULL;
    if (!o->v) {
        optimizer_free_cuda(o);
        return -1;
    }
    gk_cuda_zero(o->m, bytes);
    gk_cuda_zero(o->v, bytes);
    return 0;
}

void optimizer_free_cuda(optimizer *o) {
    buffer_free_cuda(o->m);
    buffer_free_cuda(o->v);
    o->m = o->v = NULL;
}

void optimizer_step_cuda(optimizer *o, float *master, gk_bf16 *w, const gk_bf16 *grads, double lr) {
    const param_layout *L = o->layout;
    GK_ASSERT(o->kind == OPTIM_ADAMW); // optimizer_init_cuda refuses the others
    o->steps++;
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        adamw_coeffs c = optimizer_adamw_coeffs(o, p, lr);
        gk_cuda_adamw(master + p->offset, w + p->offset, grads + p->offset, o->m + p->offset, o->v + p->offset,
                      p->numel, c.lr, c.wd, c.beta1, c.beta2, c.eps, c.step_size, c.bc2_sqrt);
    }
}
#endif
