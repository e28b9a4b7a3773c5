// RMSNorm with the Gemma (1 + w) scale on the GPU: a warp per row, statistics
// in float. The weight gradient goes through per-chunk partial sums reduced in
// chunk order, as on the CPU, so it does not depend on scheduling.
#include "model/cuda/common.cuh"

enum { WARPS = 8 }; // rows per block of 256 threads

__global__ void rmsnorm_forward_kernel(bf16 *y, float *rstd, const bf16 *x, const bf16 *w, int n, int d, float eps) {
    int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= n) return;
    const bf16 *xi = x + (size_t)row * d;
    bf16 *yi = y + (size_t)row * d;
    float ss = 0;
    for (int j = lane; j < d; j += 32) {
        float v = __bfloat162float(xi[j]);
        ss += v * v;
    }
    float r = rsqrtf(warp_sum(ss) / d + eps);
    if (lane == 0) rstd[row] = r;
    for (int j = lane; j < d; j += 32) yi[j] = __float2bfloat16(__bfloat162float(xi[j]) * r * (1 + __bfloat162float(w[j])));
}

extern "C" void rmsnorm_forward_cuda(gk_bf16 *y, float *rstd, const gk_bf16 *x, const gk_bf16 *w, int n, int d,
                                     double eps) {
    if (n <= 0) return;
    rmsnorm_forward_kernel<<<blocks_for((size_t)n, WARPS), 32 * WARPS>>>(dev(y), rstd, dev(x), dev(w), n, d, (float)eps);
    CUDA_LAUNCHED();
}

// dx_j = r g_j dy_j - x_j r^3 / d * sum_k g_k dy_k x_k with g = 1 + w.
__global__ void rmsnorm_dx_kernel(bf16 *dx, const bf16 *dy, const bf16 *x, const bf16 *w, const float *rstd, int n,
                                  int d, bool accumulate) {
    int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= n) return;
    const bf16 *xi = x + (size_t)row * d, *dyi = dy + (size_t)row * d;
    bf16 *dxi = dx + (size_t)row * d;
    float dot = 0;
    for (int j = lane; j < d; j += 32)
        dot += (1 + __bfloat162float(w[j])) * __bfloat162float(dyi[j]) * __bfloat162float(xi[j]);
    float r = rstd[row], coef = warp_sum(dot) * r * r * r / d;
    for (int j = lane; j < d; j += 32) {
        float g = r * (1 + __bfloat162float(w[j])) * __bfloat162float(dyi[j]) - coef * __bfloat162float(xi[j]);
        dxi[j] = __float2bfloat16(accumulate ? __bfloat162float(dxi[j]) + g : g);
    }
}

// partials[c, j] = sum over the rows of chunk c of dy_j x_j r (a thread per column).
__global__ void rmsnorm_dw_partials_kernel(float *partials, const bf16 *dy, const bf16 *x, const float *rstd, int n,
                                           int d) {
    int c = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    int end = min((c + 1) * NORM_CHUNK, n);
    float sum = 0;
    for (int i = c * NORM_CHUNK; i < end; i++)
        sum += __bfloat162float(dy[(size_t)i * d + j]) * __bfloat162float(x[(size_t)i * d + j]) * rstd[i];
    partials[(size_t)c * d + j] = sum;
}

__global__ void rmsnorm_dw_reduce_kernel(bf16 *dw, const float *partials, int n_chunks, int d) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float sum = 0;
    for (int c = 0; c < n_chunks; c++) sum += partials[(size_t)c * d + j];
    dw[j] = __float2bfloat16(__bfloat162float(dw[j]) + sum);
}

extern "C" void rmsnorm_backward_cuda(gk_bf16 *dx, gk_bf16 *dw, const gk_bf16 *dy, const gk_bf16 *x, const gk_bf16 *w,
                                      const float *rstd, int n, int d, bool accumulate_dx, float *partials) {
    if (n <= 0) return;
    rmsnorm_dx_kernel<<<blocks_for((size_t)n, WARPS), 32 * WARPS>>>(dev(dx), dev(dy), dev(x), dev(w), rstd, n, d,
                                                                    accumulate_dx);
    CUDA_LAUNCHED();
    int n_chunks = rmsnorm_partial_rows(n);
    dim3 grid(blocks_for((size_t)d, 256), n_chunks);
    rmsnorm_dw_partials_kernel<<<grid, 256>>>(partials, dev(dy), dev(x), rstd, n, d);
    CUDA_LAUNCHED();
    rmsnorm_dw_reduce_kernel<<<blocks_for((size_t)d, 256), 256>>>(dev(dw), partials, n_chunks, d);
    CUDA_LAUNCHED();
}
