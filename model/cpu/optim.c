// The optimizer's kernels on the CPU: AdamW and SGD updates of float32
// master weights from gradients in storage precision, the gradient norm's sum
// of squares, the weight EMA, and master weights rounded to storage.
#include "model/real.h"

// As torch.optim.AdamW (single-tensor path): decay, moments, then
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), with g = grad * grad_scale.
void FN(adamw_update)(float *master, real *w, const real *grad, float *m, float *v, size_t n, const adamw_coeffs *c,
                      float grad_scale) {
    float decay = 1 - c->lr * c->wd, b1 = c->beta1, b2 = c->beta2, eps = c->eps, step = c->step_size;
    float bc2_sqrt = c->bc2_sqrt;
    bool copy = (void *)w != (void *)master;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = (float)to_acc(grad[i]) * grad_scale, p = master[i] * decay;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p -= step * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
        master[i] = p;
        if (copy) w[i] = to_real(p);
    }
}

void FN(sgd_update)(float *master, real *w, const real *grad, size_t n, float lr, float grad_scale) {
    bool copy = (void *)w != (void *)master;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = master[i] - lr * ((float)to_acc(grad[i]) * grad_scale);
        master[i] = p;
        if (copy) w[i] = to_real(p);
    }
}

enum { SUM_CHUNK = 1 << 16 }; // values per partial sum: fixed, so the total does not depend on threads

double FN(sum_squares)(const real *x, size_t n) {
    size_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double total = 0;
#pragma omp parallel for ordered schedule(static, 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t end = (c + 1) * SUM_CHUNK < n ? (c + 1) * SUM_CHUNK : n;
        double sum = 0;
        for (size_t i = c * SUM_CHUNK; i < end; i++) {
            double v = to_acc(x[i]);
            sum += v * v;
        }
#pragma omp ordered
        total += sum;
    }
    return total;
}

void FN(ema_update)(float *ema, const float *master, double decay, size_t n) {
    float d = (float)decay, r = (float)(1 - decay);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) ema[i] = d * ema[i] + r * master[i];
}

#ifdef GK_REAL_BF16
#include <immintrin.h>

// VCVTNEPS2BF16 where the CPU has AVX512-BF16: the same round-to-nearest-even
// as bf16_round for every normal value (it treats float32 denormals, never
// weights in practice, as zero). Returns how many values it converted.
__attribute__((target("avx512f,avx512bf16"))) static size_t round_hw(gk_bf16 *w, const float *x, size_t n) {
    size_t blocks = n / 16;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + 16 * b));
        _mm256_storeu_si256((__m256i *)(w + 16 * b), (__m256i)r);
    }
    return blocks * 16;
}

static size_t round_fast(gk_bf16 *w, const float *x, size_t n) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? round_hw(w, x, n) : 0;
}
#else
static size_t round_fast(real *w, const float *x, size_t n) {
    (void)w, (void)x, (void)n;
    return 0;
}
#endif

void FN(round_weights)(real *w, const float *master, size_t n) {
    if ((const void *)w == (const void *)master) return;
    size_t done = round_fast(w, master, n);
#pragma omp parallel for simd schedule(static)
    for (size_t i = done; i < n; i++) w[i] = to_real(master[i]);
}
