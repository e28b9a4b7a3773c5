// Rotary position embedding, half-split layout: x[j] pairs with x[j + hd/2].
#include "model/real.h"

// As transformers: inv_freq = 1 / theta^(2i/hd), angle = pos * inv_freq, both
// rounded to the statistics' precision, then cos/sin of that angle.
void FN(rope_tables)(real_acc *cos_t, real_acc *sin_t, int T, int head_dim, double theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        real_acc exponent = (real_acc)(2 * i) / (real_acc)head_dim;
        real_acc inv_freq = (real_acc)1 / (real_acc)pow((real_acc)theta, exponent);
        for (int p = 0; p < T; p++) {
            real_acc angle = (real_acc)p * inv_freq;
            cos_t[(size_t)p * half + i] = (real_acc)cos((double)angle);
            sin_t[(size_t)p * half + i] = (real_acc)sin((double)angle);
        }
    }
}

void FN(rope_apply)(real *x, const int32_t *pos, const real_acc *cos_t, const real_acc *sin_t, int n, int n_heads,
                    int head_dim, bool inverse) {
    int half = head_dim / 2;
    real_acc sign = inverse ? -1 : 1; // the inverse rotation is the transpose: sin -> -sin
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n; t++) {
        const real_acc *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            real *v = x + ((size_t)t * n_heads + h) * head_dim;
#pragma omp simd
            for (int j = 0; j < half; j++) {
                real_acc a = to_acc(v[j]), b = to_acc(v[j + half]), sj = sign * s[j];
                v[j] = to_real(a * c[j] - b * sj);
                v[j + half] = to_real(b * c[j] + a * sj);
            }
        }
    }
}
