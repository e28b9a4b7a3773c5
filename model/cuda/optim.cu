// The optimizer's kernels on the GPU (model/kernels_api.inc, suffix _cuda):
// AdamW and SGD on fp32 master weights from bf16 gradients (the updates of
// model/cpu/optim.c, element for element), the gradient norm's sum of
// squares, the weight EMA, and master weights rounded to bf16.
#include "model/cuda/common.cuh"

enum { THREADS = 256, SUM_BLOCKS = 1024 };

// As torch.optim.AdamW: decay, moments, then p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
__global__ void adamw_kernel(float *p, bf16 *w, const bf16 *grad, float *m, float *v, size_t n, float decay, float b1,
                             float b2, float eps, float step_size, float bc2_sqrt, float grad_scale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = __bfloat162float(grad[i]) * grad_scale, pi = p[i] * decay;
    float mi = b1 * m[i] + (1 - b1) * g, vi = b2 * v[i] + (1 - b2) * g * g;
    pi -= step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    p[i] = pi, m[i] = mi, v[i] = vi;
    w[i] = __float2bfloat16(pi);
}

extern "C" void adamw_update_cuda(float *master, gk_bf16 *w, const gk_bf16 *grad, float *m, float *v, size_t n,
                                  const adamw_coeffs *c, float grad_scale) {
    if (!n) return;
    adamw_kernel<<<blocks_for(n, THREADS), THREADS>>>(master, dev(w), dev(grad), m, v, n, 1 - c->lr * c->wd, c->beta1,
                                                      c->beta2, c->eps, c->step_size, c->bc2_sqrt, grad_scale);
    CUDA_LAUNCHED();
}

__global__ void sgd_kernel(float *p, bf16 *w, const bf16 *grad, size_t n, float lr, float grad_scale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float pi = p[i] - lr * (__bfloat162float(grad[i]) * grad_scale);
    p[i] = pi;
    w[i] = __float2bfloat16(pi);
}

extern "C" void sgd_update_cuda(float *master, gk_bf16 *w, const gk_bf16 *grad, size_t n, float lr, float grad_scale) {
    if (!n) return;
    sgd_kernel<<<blocks_for(n, THREADS), THREADS>>>(master, dev(w), dev(grad), n, lr, grad_scale);
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

extern "C" double sum_squares_cuda(const gk_bf16 *x, size_t n) {
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

__global__ void ema_kernel(float *ema, const float *master, size_t n, float d, float r) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) ema[i] = d * ema[i] + r * master[i];
}

extern "C" void ema_update_cuda(float *ema, const float *master, double decay, size_t n) {
    if (!n) return;
    ema_kernel<<<blocks_for(n, THREADS), THREADS>>>(ema, master, n, (float)decay, (float)(1 - decay));
    CUDA_LAUNCHED();
}

__global__ void round_kernel(bf16 *w, const float *master, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) w[i] = __float2bfloat16(master[i]);
}

extern "C" void round_weights_cuda(gk_bf16 *w, const float *master, size_t n) {
    if (!n) return;
    round_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(w), master, n);
    CUDA_LAUNCHED();
}
