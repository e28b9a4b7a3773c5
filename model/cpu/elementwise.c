// Elementwise kernels: GeGLU, embedding lookup and gradient, soft-capping,
// residual add. Arithmetic in real_acc; one rounding to storage per result.
#include <stdlib.h>
#include <string.h>

#include "model/real.h"

// As torch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
static const real_acc GELU_BETA = (real_acc)0.7978845608028654, GELU_KAPPA = (real_acc)0.044715;

void FN(geglu_forward)(real *act, const real *gate, const real *up, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real_acc x = to_acc(gate[i]), inner = GELU_BETA * (x + GELU_KAPPA * (x * x * x));
        act[i] = to_real((real_acc)0.5 * x * (1 + ACC_TANH(inner)) * to_acc(up[i]));
    }
}

void FN(geglu_backward)(real *dgate, real *dup, const real *dact, const real *gate, const real *up, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real_acc x = to_acc(gate[i]), t = ACC_TANH(GELU_BETA * (x + GELU_KAPPA * (x * x * x)));
        real_acc gelu = (real_acc)0.5 * x * (1 + t);
        real_acc dgelu =
            (real_acc)0.5 * (1 + t) + (real_acc)0.5 * x * (1 - t * t) * GELU_BETA * (1 + 3 * GELU_KAPPA * x * x);
        real_acc g = to_acc(dact[i]); // dgate may alias dact: read before writing
        dup[i] = to_real(g * gelu);
        dgate[i] = to_real(g * to_acc(up[i]) * dgelu);
    }
}

// sqrt(d) rounded to storage, as transformers' Gemma2 normaliser in the model's dtype.
static real_acc embed_normalizer(int d) { return to_acc(to_real(sqrt((double)d))); }

void FN(embed_forward)(real *x, const real *E, const int32_t *tokens, int n, int d) {
    real_acc s = embed_normalizer(d);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *e = E + (size_t)tokens[i] * d;
        real *xi = x + (size_t)i * d;
#pragma omp simd
        for (int j = 0; j < d; j++) xi[j] = to_real(to_acc(e[j]) * s);
    }
}

typedef struct {
    int32_t token, position;
} token_at;

static int by_token(const void *a, const void *b) {
    const token_at *x = a, *y = b;
    return x->token != y->token ? (x->token > y->token) - (x->token < y->token) : x->position - y->position;
}

// The positions grouped by token (sorted, in position order within a token):
// each row of dE gets one sum, in real_acc, added once: no race between
// threads, and bf16 gradients see one rounding per row instead of one per position.
void FN(embed_backward)(real *dE, const real *dx, const int32_t *tokens, int n, int d, int pad_id, int32_t *work) {
    real_acc s = embed_normalizer(d);
    token_at *order = (token_at *)work;
    for (int i = 0; i < n; i++) order[i] = (token_at){tokens[i], i};
    qsort(order, (size_t)n, sizeof *order, by_token);
#pragma omp parallel
    {
        real_acc sum[d]; // a row: d is at most MODEL_MAX_D_MODEL
#pragma omp for schedule(dynamic, 16)
        for (int g = 0; g < n; g++) {
            if (order[g].token == pad_id || (g > 0 && order[g - 1].token == order[g].token)) continue;
            memset(sum, 0, sizeof sum);
            for (int k = g; k < n && order[k].token == order[g].token; k++) {
                const real *row = dx + (size_t)order[k].position * d;
#pragma omp simd
                for (int j = 0; j < d; j++) sum[j] += to_acc(row[j]) * s;
            }
            real *e = dE + (size_t)order[g].token * d;
#pragma omp simd
            for (int j = 0; j < d; j++) e[j] = to_real(to_acc(e[j]) + sum[j]);
        }
    }
}

// x / cap as x times 1 / cap (a division per element was a third of the head's
// soft-cap time): the argument of tanh may differ from x / cap by an ulp.
void FN(softcap_forward)(real_acc *x, size_t n, double cap) {
    if (cap <= 0) return;
    real_acc c = (real_acc)cap, inv = (real_acc)(1 / cap);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = ACC_TANH(x[i] * inv) * c;
}

void FN(softcap_backward)(real *dx, const real_acc *g, const real_acc *y, size_t n, double cap) {
    real_acc inv = (real_acc)(cap > 0 ? 1 / cap : 0); // 0: no cap, dx = g
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        real_acc t = y[i] * inv;
        dx[i] = to_real(g[i] * (1 - t * t));
    }
}

void FN(add)(real *y, const real *a, const real *b, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = to_real(to_acc(a[i]) + to_acc(b[i]));
}

void FN(add_acc)(real *y, const real_acc *x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = to_real(to_acc(y[i]) + x[i]);
}
