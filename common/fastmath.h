// Branch-free expf, expm1f and tanhf that GCC vectorises inside `omp simd`
// loops, for the model's kernels (model/real.h) and the distillation
// objectives and caches (distill/). Each stays within 2 ulp of the correctly
// rounded result (tests/test_kernels.c, case fast_exp_tanh_accuracy).
#ifndef GK_FASTMATH_H
#define GK_FASTMATH_H

#include <stdint.h>
#include <string.h>

// x = n ln2 + r with n the nearest integer to x / ln2 (so |r| <= ln2/2); returns n.
static inline float exp_reduce(float x, float *r) {
    const float shifter = 12582912.0f; // 1.5 * 2^23: adding it rounds to the nearest integer
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float t = x - n * 0.693145751953125f; // ln2 split in two for an exact product
    *r = t - n * 1.42860682030941723212e-6f;
    return n;
}

// e^r - 1 for |r| <= ln2/2: r + r^2 (1/2 + r/6 + ... + r^5/7!), without the
// constant term, so that small r keep their relative accuracy.
static inline float expm1_reduced(float r) {
    float p = 1.98412698412698413e-4f;
    p = p * r + 1.38888888888888889e-3f;
    p = p * r + 8.33333333333333333e-3f;
    p = p * r + 4.16666666666666667e-2f;
    p = p * r + 1.66666666666666667e-1f;
    p = p * r + 0.5f;
    return r + r * r * p;
}

static inline float exponent_bits(int32_t n) { // 2^n for -126 <= n <= 127
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// e^x: e^r by the polynomial, 2^n by exponent bits.
static inline float fast_expf(float x) {
    x = x < -103.0f ? -103.0f : (x > 88.72f ? 88.72f : x);
    float r, n = exp_reduce(x, &r);
    float p = 1.0f + expm1_reduced(r);
    int32_t ni = (int32_t)n, half = ni / 2; // 2^n in two steps: n down to -149 (subnormals) and up to 128
    return p * exponent_bits(half) * exponent_bits(ni - half);
}

// e^x - 1 for x in [-87, 88].
static inline float fast_expm1f(float x) {
    float r, n = exp_reduce(x, &r);
    float s = exponent_bits((int32_t)n);
    return s * expm1_reduced(r) + (s - 1.0f);
}

// tanh(x) = (e^{2|x|} - 1) / (e^{2|x|} + 1) with the sign of x; |x| >= 9 is +-1 in float.
static inline float fast_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    ax = ax > 9.0f ? 9.0f : ax;
    float e = fast_expm1f(2.0f * ax);
    float t = e / (e + 2.0f);
    return x < 0 ? -t : t;
}

#endif
