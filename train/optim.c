#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optimizer_init(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                   const param_layout *layout, gk_err *err) {
    memset(o, 0, sizeof *o);
    *o = (optimizer){kind, beta1, beta2, eps, weight_decay, layout, NULL, NULL, 0};
    if (kind != OPTIM_ADAMW) return 0;
    o->m = param_buffer_alloc(layout, err);
    o->v = o->m ? param_buffer_alloc(layout, err) : NULL;
    if (!o->v) {
        optimizer_free(o);
        return -1;
    }
    return 0;
}

void optimizer_free(optimizer *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

// As torch.optim.AdamW (single-tensor path): decay, moments, then
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
static void adamw_tensor(float *p, const float *g, float *m, float *v, size_t n, float lr, float wd, float b1, float b2,
                         float eps, float step_size, float bc2_sqrt) {
    float decay = 1 - lr * wd;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

void optimizer_step(optimizer *o, float *params, const float *grads, double lr) {
    const param_layout *L = o->layout;
    if (o->kind == OPTIM_SGD) {
        float rate = (float)lr;
        for (int t = 0; t < L->n_tensors; t++) {
            const param_tensor *p = &L->tensors[t];
            float *w = params + p->offset;
            const float *g = grads + p->offset;
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < p->numel; i++) w[i] -= rate * g[i];
        }
        return;
    }
    o->steps++;
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        adamw_coeffs c = optimizer_adamw_coeffs(o, p, lr);
        adamw_tensor(params + p->offset, grads + p->offset, o->m + p->offset, o->v + p->offset, p->numel, c.lr, c.wd,
                     c.beta1, c.beta2, c.eps, c.step_size, c.bc2_sqrt);
    }
}

adamw_coeffs optimizer_adamw_coeffs(const optimizer *o, const param_tensor *p, double lr) {
    double bc1 = 1 - pow(o->beta1, (double)o->steps), bc2 = 1 - pow(o->beta2, (double)o->steps);
    float wd = p->kind == PARAM_MATRIX ? (float)o->weight_decay : 0.0f; // none on norms and the embedding
    return (adamw_coeffs){(float)lr, wd, (float)o->beta1, (float)o->beta2, (float)o->eps, (float)(lr / bc1),
                          (float)sqrt(bc2)};
}

double grad_norm(const param_layout *L, const float *grads) {
    double total = 0;
    for (int t = 0; t < L->n_tensors; t++) { // tensor by tensor, in order: the same sum for any thread count
        const param_tensor *p = &L->tensors[t];
        const float *g = grads + p->offset;
        double sum = 0;
        for (size_t i = 0; i < p->numel; i++) sum += (double)g[i] * g[i];
        total += sum;
    }
    return sqrt(total);
}

double grad_clip(const param_layout *L, float *grads, double norm, double max_norm) {
    if (max_norm <= 0 || !(norm > max_norm)) return 1.0;
    double scale = max_norm / (norm + 1e-6);
    float s = (float)scale;
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        float *g = grads + p->offset;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < p->numel; i++) g[i] *= s;
    }
    return scale;
}

bool grads_finite(const param_layout *L, const float *grads) {
    int bad = 0;
    for (int t = 0; t < L->n_tensors && !bad; t++) {
        const param_tensor *p = &L->tensors[t];
        const float *g = grads + p->offset;
#pragma omp parallel for simd reduction(| : bad) schedule(static)
        for (size_t i = 0; i < p->numel; i++) bad |= !isfinite(g[i]);
    }
    return !bad;
}
