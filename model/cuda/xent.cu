// The cross-entropy callback of the chunked head (model/head.c) on the GPU: a
// block per row of float logits; loss per row back to the host, summed there
// in row order (the same total on every run).
#include "model/cuda/common.cuh"

enum { THREADS = 256 };

// Block-wide reduction of one value per thread; every thread gets the result.
__device__ float block_reduce(float x, bool is_max) {
    __shared__ float lanes[THREADS / 32];
    __shared__ float result;
    x = is_max ? warp_max(x) : warp_sum(x);
    if (threadIdx.x % 32 == 0) lanes[threadIdx.x / 32] = x;
    __syncthreads();
    if (threadIdx.x == 0) {
        float r = lanes[0];
        for (int w = 1; w < THREADS / 32; w++) r = is_max ? fmaxf(r, lanes[w]) : r + lanes[w];
        result = r;
    }
    __syncthreads();
    return result;
}

// nll[r] = lse(z) - z[target]; dz = (softmax(z) - onehot) * scale (zeros where target < 0).
__global__ void xent_kernel(float *nll, bf16 *dlogits, const float *logits, const int32_t *targets, int vocab,
                            float scale) {
    size_t r = blockIdx.x;
    const float *z = logits + r * vocab;
    bf16 *dz = dlogits ? dlogits + r * vocab : NULL;
    int target = targets[r];
    if (target < 0) {
        for (int j = threadIdx.x; dz && j < vocab; j += THREADS) dz[j] = __float2bfloat16(0.0f);
        if (threadIdx.x == 0) nll[r] = 0;
        return;
    }
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += THREADS) mx = fmaxf(mx, z[j]);
    mx = block_reduce(mx, true);
    float sum = 0;
    for (int j = threadIdx.x; j < vocab; j += THREADS) sum += expf(z[j] - mx);
    float lse = mx + logf(block_reduce(sum, false));
    if (threadIdx.x == 0) nll[r] = lse - z[target];
    for (int j = threadIdx.x; dz && j < vocab; j += THREADS)
        dz[j] = __float2bfloat16((expf(z[j] - lse) - (j == target ? 1.0f : 0.0f)) * scale);
}

extern "C" double xent_head_cuda(void *ctx_, const float *logits, gk_bf16 *dlogits, size_t first, size_t count,
                                 int vocab) {
    const xent_ctx *ctx = (const xent_ctx *)ctx_;
    if (!count) return 0;
    float *nll_dev = NULL;
    CUDA_CHECK(cudaMalloc(&nll_dev, count * sizeof *nll_dev));
    xent_kernel<<<(unsigned)count, THREADS>>>(nll_dev, dlogits ? dev(dlogits) : NULL, logits, ctx->targets + first,
                                              vocab, (float)ctx->scale);
    CUDA_LAUNCHED();
    float *nll = (float *)malloc(count * sizeof *nll);
    int32_t *targets = (int32_t *)malloc(count * sizeof *targets);
    if (!nll || !targets) {
        fprintf(stderr, "gemmakd: out of memory for %zu row losses\n", count);
        exit(1);
    }
    CUDA_CHECK(cudaMemcpy(nll, nll_dev, count * sizeof *nll, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(targets, ctx->targets + first, count * sizeof *targets, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(nll_dev));
    double total = 0;
    for (size_t r = 0; r < count; r++) {
        if (ctx->logprobs) ctx->logprobs[first + r] = targets[r] >= 0 ? -nll[r] : NAN;
        if (targets[r] >= 0) total += (double)nll[r] * ctx->scale;
    }
    free(nll);
    free(targets);
    return total;
}
