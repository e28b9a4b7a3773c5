// bfloat16 storage: 16 bits, the top half of a float32. A struct, so that
// arithmetic on it does not compile: the bf16 instantiations of the model
// convert explicitly (bf16_load / bf16_round) and compute in float. The CUDA
// kernels read the same bits as __nv_bfloat16 (same size and layout).
#ifndef GK_BF16_H
#define GK_BF16_H

#include <stdint.h>
#include <string.h>

typedef struct {
    uint16_t bits;
} gk_bf16;

static inline float bf16_load(gk_bf16 x) {
    uint32_t u = (uint32_t)x.bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// Round to nearest even; NaN stays a (quiet) NaN. Branch-free, so `omp simd` loops vectorise it.
static inline gk_bf16 bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1)) >> 16, nan = (u >> 16) | 0x40;
    gk_bf16 r = {(uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded)};
    return r;
}

#endif
