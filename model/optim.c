#include "model/optim.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// n floats, zero, on a cache line (as param_buffer_alloc).
static float *zeroed_floats(size_t n, gk_err *err) {
    void *p = NULL;
    if (n > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, (n ? n : 1) * sizeof(float))) {
        gk_fail(err, GK_ENOMEM, "out of memory allocating %zu optimizer moments", n);
        return NULL;
    }
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

int optimizer_init(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                   const param_layout *layout, gk_err *err) {
    return optimizer_init_range(o, kind, beta1, beta2, eps, weight_decay, layout, 0, layout->n_floats, err);
}

int optimizer_init_range(optimizer *o, optim_kind kind, double beta1, double beta2, double eps, double weight_decay,
                         const param_layout *layout, size_t lo, size_t n, gk_err *err) {
    memset(o, 0, sizeof *o);
    *o = (optimizer){kind, beta1, beta2, eps, weight_decay, layout, NULL, NULL, lo, n, 0};
    if (kind != OPTIM_ADAMW) return 0;
    o->m = zeroed_floats(n, err);
    o->v = o->m ? zeroed_floats(n, err) : NULL;
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

adamw_coeffs optimizer_adamw_coeffs(const optimizer *o, const param_tensor *p, double lr) {
    double bc1 = 1 - pow(o->beta1, (double)o->steps), bc2 = 1 - pow(o->beta2, (double)o->steps);
    float wd = p->kind == PARAM_MATRIX ? (float)o->weight_decay : 0.0f; // none on norms and the embedding
    return (adamw_coeffs){(float)lr, wd, (float)o->beta1, (float)o->beta2, (float)o->eps, (float)(lr / bc1),
                          (float)sqrt(bc2)};
}

double grad_clip_scale(double norm, double max_norm) {
    return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}
