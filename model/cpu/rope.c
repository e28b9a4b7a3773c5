// Rotary position embedding, half-split layout: x[j] pairs with x[j + hd/2].
#include "model/real.h"

// As transformers: inv_freq = 1 / theta^(2i/hd), angle = pos * inv_freq, both
// rounded to the compute precision, then cos/sin of that angle.
void FN(rope_tables)(real_acc *cos_t, real_acc *sin_t, int T, int head_dim, double theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        real exponent = (real)(2 * i) / (real)head_dim;
        real inv_freq = (real)1 / (real)pow((real)theta, exponent);
        for (int p = 0; p < T; p++) {
            real angle = (real)p * inv_freq;
            cos_t[(size_t)p * half + i] = (real)cos((double)angle);
            sin_t[(size_t)p * half + i] = (real)sin((double)angle);
        }
    }
}

void FN(rope_apply)(real *x, const int32_t *pos, const real_acc *cos_t, const real_acc *sin_t, int n, int n_heads,
                    int head_dim, bool inverse) {
    int half = head_dim / 2;
    real sign = inverse ? -1 : 1; // the inverse rotation is the transpose: sin -> -sin
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        const real_acc *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            real *v = x + ((size_t)t * n_heads + h) * head_dim;
#pragma omp simd
            for (int j = 0; j < half; j++) {
                real a = v[j], b = v[j + half], sj = sign * s[j];
                v[j] = a * c[j] - b * sj;
                v[j + half] = b * c[j] + a * sj;
            }
        }
    }
}
