// Elementwise kernels: GeGLU, embedding lookup, soft-capping, residual add.
#include <string.h>

#include "model/real.h"

// As torch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
static const real GELU_BETA = (real)0.7978845608028654, GELU_KAPPA = (real)0.044715;

void FN(geglu_forward)(real *act, const real *gate, const real *up, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = gate[i], inner = GELU_BETA * (x + GELU_KAPPA * (x * x * x));
        act[i] = (real)0.5 * x * (1 + REAL_TANH(inner)) * up[i];
    }
}

void FN(geglu_backward)(real *dgate, real *dup, const real *dact, const real *gate, const real *up, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = gate[i], t = REAL_TANH(GELU_BETA * (x + GELU_KAPPA * (x * x * x)));
        real gelu = (real)0.5 * x * (1 + t);
        real dgelu = (real)0.5 * (1 + t) + (real)0.5 * x * (1 - t * t) * GELU_BETA * (1 + 3 * GELU_KAPPA * x * x);
        real g = dact[i]; // dgate may alias dact: read before writing
        dup[i] = g * gelu;
        dgate[i] = g * up[i] * dgelu;
    }
}

static real embed_normalizer(int d) { return (real)sqrt((double)d); }

void FN(embed_forward)(real *x, const real *E, const int32_t *tokens, int n, int d) {
    real s = embed_normalizer(d);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *e = E + (size_t)tokens[i] * d;
        real *xi = x + (size_t)i * d;
        for (int j = 0; j < d; j++) xi[j] = e[j] * s;
    }
}

// Serial over tokens (rows of dE may repeat) but vectorised along d.
void FN(embed_backward)(real *dE, const real *dx, const int32_t *tokens, int n, int d, int pad_id) {
    real s = embed_normalizer(d);
    for (int i = 0; i < n; i++) {
        if (tokens[i] == pad_id) continue;
        real *e = dE + (size_t)tokens[i] * d;
        const real *g = dx + (size_t)i * d;
#pragma omp simd
        for (int j = 0; j < d; j++) e[j] += g[j] * s;
    }
}

void FN(softcap_forward)(real_acc *x, size_t n, double cap) {
    if (cap <= 0) return;
    real c = (real)cap;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = REAL_TANH(x[i] / c) * c;
}

void FN(softcap_backward)(real *dx, const real_acc *y, size_t n, double cap) {
    if (cap <= 0) return;
    real c = (real)cap;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real t = y[i] / c;
        dx[i] *= 1 - t * t;
    }
}

void FN(add)(real *y, const real *a, const real *b, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
