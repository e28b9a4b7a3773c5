// Branch-free expf and tanhf that GCC vectorises inside `omp simd` loops.
// Both stay within 2 ulp of the correctly rounded result (tests/test_fastmath.c).
#ifndef GK_FASTMATH_H
#define GK_FASTMATH_H

#include <stdint.h>
#include <string.h>

// e^x: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n by exponent bits.
static inline float fast_expf(float x) {
    x = x < -103.0f ? -103.0f : (x > 88.72f ? 88.72f : x);
    const float shifter = 12582912.0f; // 1.5 * 2^23: adding it rounds to the nearest integer
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693145751953125f; // ln2 split in two for an exact product
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.98412698412698413e-4f;
    p = p * r + 1.38888888888888889e-3f;
    p = p * r + 8.33333333333333333e-3f;
    p = p * r + 4.16666666666666667e-2f;
    p = p * r + 1.66666666666666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n in two steps so that n down to -149 (subnormals) and up to 128 works.
    int32_t ni = (int32_t)n, half = ni / 2;
    uint32_t a = (uint32_t)(half + 127) << 23, b = (uint32_t)(ni - half + 127) << 23;
    float fa, fb;
    memcpy(&fa, &a, 4);
    memcpy(&fb, &b, 4);
    return p * fa * fb;
}

// tanh: odd Taylor polynomial for |x| < 0.55, else 1 - 2/(e^{2|x|} + 1).
static inline float fast_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float x2 = x * x;
    float p = -0.00145583438705131827f;    // -929569/638512875
    p = p * x2 + 0.00359212803657248102f;  // 21844/6081075
    p = p * x2 - 0.00886323552990219657f;  // -1382/155925
    p = p * x2 + 0.0218694885361552028f;   // 62/2835
    p = p * x2 - 0.0539682539682539683f;   // -17/315
    p = p * x2 + 0.133333333333333333f;    // 2/15
    p = p * x2 - 0.333333333333333333f;    // -1/3
    float small = x + x * x2 * p;
    float e = fast_expf(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.55f ? small : big;
}

#endif
