// Rotary position embedding on the GPU, half-split layout: x[j] pairs with
// x[j + hd/2]; tables from model/cuda/memory.cu (the CPU's float32 tables).
#include "model/cuda/common.cuh"

// A thread per (token, head, pair); sign -1 rotates back (the backward).
__global__ void rope_kernel(bf16 *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n, int n_heads,
                            int half, float sign) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n * n_heads * half) return;
    int j = (int)(i % half);
    size_t th = i / half, t = th / n_heads; // th = t * n_heads + h
    bf16 *v = x + th * 2 * half;
    size_t at = (size_t)pos[t] * half + j;
    float c = cos_t[at], s = sign * sin_t[at], a = __bfloat162float(v[j]), b = __bfloat162float(v[j + half]);
    v[j] = __float2bfloat16(a * c - b * s);
    v[j + half] = __float2bfloat16(b * c + a * s);
}

extern "C" void rope_apply_cuda(gk_bf16 *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                                int n_heads, int head_dim, bool inverse) {
    size_t total = (size_t)n * n_heads * (head_dim / 2);
    if (!total) return;
    rope_kernel<<<blocks_for(total, 256), 256>>>(dev(x), pos, cos_t, sin_t, n, n_heads, head_dim / 2,
                                                 inverse ? -1.0f : 1.0f);
    CUDA_LAUNCHED();
}
