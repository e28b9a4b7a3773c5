// Shared by the CUDA kernel files: includes, the check macro, bf16 views.
#ifndef GK_CUDA_COMMON_CUH
#define GK_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "model/cuda/cuda.h"
#include "model/gemma2.h"
#include "model/kernels.h"
}

// A failed CUDA call leaves the device in an unknown state: report and exit.
#define CUDA_CHECK(call) gk_cuda_check((call), __FILE__, __LINE__)
static inline void gk_cuda_check(cudaError_t e, const char *file, int line) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "gemmakd: CUDA error at %s:%d: %s\n", file, line, cudaGetErrorString(e));
    exit(1);
}
// After a launch: catches bad launch configurations at once (execution errors surface at the next sync).
#define CUDA_LAUNCHED() CUDA_CHECK(cudaGetLastError())

typedef __nv_bfloat16 bf16;
static inline bf16 *dev(gk_bf16 *p) { return reinterpret_cast<bf16 *>(p); }
static inline const bf16 *dev(const gk_bf16 *p) { return reinterpret_cast<const bf16 *>(p); }

static inline unsigned blocks_for(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

// Sum over the 32 lanes of a warp; every lane gets the result.
__device__ inline float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ inline float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

#endif
