#include "model/average.h"

#include <math.h>
#include <stdlib.h>

void average_accumulate(double *acc, const float *x, double w, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) acc[i] += w * (double)x[i];
}

void average_finish(const double *acc, double total, float *out, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = (float)(acc[i] / total);
}

void average_ema_weights(double decay, int n, double *w) {
    double keep = 1; // decay^(n - i) for the model i counted from 1
    for (int i = n - 1; i >= 1; i--) {
        w[i] = (1 - decay) * keep;
        keep *= decay;
    }
    if (n > 0) w[0] = keep;
}

void slerp_tensor(const float *a, const float *b, size_t n, double t, float *out) {
    double ab = 0, aa = 0, bb = 0;
#pragma omp parallel for simd reduction(+ : ab, aa, bb) schedule(static)
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    double wa = 1 - t, wb = t; // linear unless the angle is well defined
    if (aa > 0 && bb > 0) {
        double c = ab / sqrt(aa * bb);
        if (fabs(c) <= SLERP_LINEAR_ABOVE) {
            double theta = acos(c), s = sin(theta);
            wa = sin((1 - t) * theta) / s;
            wb = sin(t * theta) / s;
        }
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = (float)(wa * a[i] + wb * b[i]);
}

int average_model_dirs(char *const *dirs, const double *w, size_t n, model_state *m, gk_err *err) {
    size_t len = m->layout.n_floats;
    double *acc = gk_calloc(len, sizeof *acc, err), total = 0;
    int rc = acc ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (w[i] == 0) continue;
        rc = model_load_weights(dirs[i], &m->layout, m->params, err);
        if (rc == 0) average_accumulate(acc, m->params, w[i], len);
        total += w[i];
    }
    if (rc == 0) average_finish(acc, total, m->params, len);
    free(acc);
    return rc;
}

int slerp_model_dirs(const char *a_dir, const char *b_dir, double t, model_state *m, gk_err *err) {
    float *a = param_buffer_alloc(&m->layout, err), *b = a ? param_buffer_alloc(&m->layout, err) : NULL;
    int rc = a && b ? 0 : -1;
    if (rc == 0) rc = model_load_weights(a_dir, &m->layout, a, err);
    if (rc == 0) rc = model_load_weights(b_dir, &m->layout, b, err);
    for (int i = 0; rc == 0 && i < m->layout.n_tensors; i++) {
        const param_tensor *p = &m->layout.tensors[i];
        slerp_tensor(a + p->offset, b + p->offset, p->numel, t, m->params + p->offset);
    }
    free(a);
    free(b);
    return rc;
}
