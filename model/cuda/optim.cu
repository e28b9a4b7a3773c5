// The optimizer's GPU kernels: AdamW on fp32 master weights with bf16
// gradients (the update of train/optim.c, element for element), the gradient
// norm's sum of squares, and clipping's scale.
#include "model/cuda/common.cuh"

enum { THREADS = 256, SUM_BLOCKS = 1024 };

// As torch.optim.AdamW: decay, moments, then p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
__global__ void adamw_kernel(float *p, bf16 *w, const bf16 *grad, float *m, float *v, size_t n, float decay, float b1,
                             float b2, float eps, float step_size, float bc2_sqrt) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = __bfloat162float(grad[i]), pi = p[i] * decay;
    float mi = b1 * m[i] + (1 - b1) * g, vi = b2 * v[i] + (1 - b2) * g * g;
    pi -= step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    p[i] = pi, m[i] = mi, v[i] = vi;
    w[i] = __float2bfloat16(pi);
}

extern "C" void gk_cuda_adamw(float *master, gk_bf16 *w, const gk_bf16 *grad, float *m, float *v, size_t n, float lr,
                              float wd, float beta1, float beta2, float eps, float step_size, float bc2_sqrt) {
    if (!n) return;
    adamw_kernel<<<blocks_for(n, THREADS), THREADS>>>(master, dev(w), dev(grad), m, v, n, 1 - lr * wd, beta1, beta2, eps,
                                                      step_size, bc2_sqrt);
    CUDA_LAUNCHED();
}

// partial[b] = sum of squares over the grid-stride elements of block b, in a fixed tree order.
__global__ void sum_squares_kernel(double *partial, const bf16 *x, size_t n) {
    __shared__ double lanes[THREADS];
    double s = 0;
    for (size_t i = (size_t)blockIdx.x * THREADS + threadIdx.x; i < n; i += (size_t)gridDim.x * THREADS) {
        double v = __bfloat162float(x[i]);
        s += v * v;
    }
    lanes[threadIdx.x] = s;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) lanes[threadIdx.x] += lanes[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = lanes[0];
}

extern "C" double gk_cuda_sum_squares(const gk_bf16 *x, size_t n) {
    if (!n) return 0;
    static double *partial_dev; // kept: called every step
    double partial[SUM_BLOCKS];
    if (!partial_dev) CUDA_CHECK(cudaMalloc(&partial_dev, sizeof partial));
    sum_squares_kernel<<<SUM_BLOCKS, THREADS>>>(partial_dev, dev(x), n);
    CUDA_LAUNCHED();
    CUDA_CHECK(cudaMemcpy(partial, partial_dev, sizeof partial, cudaMemcpyDeviceToHost));
    double total = 0;
    for (int b = 0; b < SUM_BLOCKS; b++) total += partial[b];
    return total;
}

__global__ void scale_kernel(bf16 *x, size_t n, float s) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = __float2bfloat16(__bfloat162float(x[i]) * s);
}

extern "C" void gk_cuda_scale_bf16(gk_bf16 *x, size_t n, float s) {
    if (!n) return;
    scale_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(x), n, s);
    CUDA_LAUNCHED();
}
