// bfloat16 and IEEE float16 <-> float32 conversions (round to nearest even).
#ifndef GK_HALF_H
#define GK_HALF_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); // quiet NaN
    u += 0x7FFFu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, u;
    if (exp == 0x1F) {
        u = sign | 0x7F800000u | (mant << 13);
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant) { // subnormal: normalise
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00;               // NaN
    if (a >= 0x477FF000u) return sign | 0x7C00;              // overflow to inf (rounds up past 65504)
    if (a < 0x38800000u) {                                   // subnormal or zero in f16
        if (a < 0x33000000u) return sign;                    // below half the smallest subnormal
        uint32_t mant = (a & 0x7FFFFF) | 0x800000, shift = 126 - (a >> 23);
        uint32_t half = 1u << (shift - 1), rem = mant & ((1u << shift) - 1), q = mant >> shift;
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = a - 0x38000000u; // rebias exponent 127 -> 15
    q += 0xFFF + ((q >> 13) & 1);
    return sign | (uint16_t)(q >> 13);
}

#endif
