// bfloat16 as the C code sees it: 16 opaque bits (the top half of a float32).
// The C layer sequence only moves pointers to it; arithmetic on it happens in
// the CUDA kernels, which read it as __nv_bfloat16 (same size and layout).
#ifndef GK_BF16_H
#define GK_BF16_H

#include <stdint.h>

typedef struct {
    uint16_t bits;
} gk_bf16;

#endif
