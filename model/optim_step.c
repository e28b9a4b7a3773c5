// The optimizer step and gradient norm, written once over the instantiation's
// kernels (model/cpu/optim.c on the CPU, model/cuda/optim.cu on the GPU).
#include <stdlib.h>

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

// Sums of squares of the flat buffer's chunks of GRAD_NORM_CHUNK values that meet [lo, hi) into
// part[c] (lo a multiple of the chunk); the others stay 0.
static void chunk_squares(const real *grads, size_t lo, size_t hi, double *part) {
    long first = (long)(lo / GRAD_NORM_CHUNK), last = (long)((hi + GRAD_NORM_CHUNK - 1) / GRAD_NORM_CHUNK);
#pragma omp parallel for schedule(static) if (!GK_ON_DEVICE) // on the GPU each sum is its own launch
    for (long c = first; c < last; c++) {
        size_t a = (size_t)c * GRAD_NORM_CHUNK, b = a + GRAD_NORM_CHUNK < hi ? a + GRAD_NORM_CHUNK : hi;
        part[c] = FN(sum_squares)(grads + a, b - a);
    }
}

double FN(grad_norm_range)(const param_layout *L, const real *grads, size_t lo, size_t hi, void (*meet)(double *, size_t)) {
    size_t chunks = (L->n_floats + GRAD_NORM_CHUNK - 1) / GRAD_NORM_CHUNK;
    double *part = calloc(chunks ? chunks : 1, sizeof *part), total = 0;
    GK_ASSERT(part != NULL && lo % GRAD_NORM_CHUNK == 0);
    chunk_squares(grads, lo, hi, part);
    if (meet) meet(part, chunks);
    for (size_t c = 0; c < chunks; c++) total += part[c];
    free(part);
    return sqrt(total);
}

double FN(grad_norm)(const param_layout *L, const real *grads) {
    return FN(grad_norm_range)(L, grads, 0, L->n_floats, NULL);
}
