// The chunked head's fused cross-entropy (xent_fused) on the GPU: a block per
// row of float logits; loss per row back to the host, summed there in row
// order (the same total on every run).
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

// One row of raw products z: capped in place (cap > 0); nll[r] = lse - z[target]
// (NaN where target < 0: no loss there); dx = (softmax - onehot) * scale *
// (1 - (capped / cap)^2) in bf16 (zeros where target < 0).
__global__ void xent_fused_kernel(float *nll, bf16 *dx, float *logits, const int32_t *targets, int vocab, float cap,
                                  float scale) {
    size_t r = blockIdx.x;
    float *z = logits + r * vocab, inv_cap = cap > 0 ? 1 / cap : 0;
    bf16 *d = dx ? dx + r * vocab : NULL;
    int target = targets[r];
    if (target < 0) {
        for (int j = threadIdx.x; d && j < vocab; j += THREADS) d[j] = __float2bfloat16(0.0f);
        if (threadIdx.x == 0) nll[r] = NAN;
        return;
    }
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += THREADS) {
        if (cap > 0) z[j] = tanhf(z[j] * inv_cap) * cap;
        mx = fmaxf(mx, z[j]);
    }
    mx = block_reduce(mx, true); // its barriers also order the capped writes before the reads below
    float sum = 0;
    for (int j = threadIdx.x; j < vocab; j += THREADS) sum += expf(z[j] - mx);
    float lse = mx + logf(block_reduce(sum, false));
    if (threadIdx.x == 0) nll[r] = lse - z[target];
    for (int j = threadIdx.x; d && j < vocab; j += THREADS) {
        float t = z[j] * inv_cap;
        d[j] = __float2bfloat16((expf(z[j] - lse) - (j == target ? 1.0f : 0.0f)) * scale * (1 - t * t));
    }
}

// Row losses of a chunk: device and host buffers kept between calls (the head
// calls once per chunk of every step), grown to the largest chunk.
static float *nll_dev, *nll_host;
static size_t rows_held;

static void hold_rows(size_t count) {
    if (count <= rows_held) return;
    if (nll_dev) CUDA_CHECK(cudaFree(nll_dev));
    free(nll_host);
    CUDA_CHECK(cudaMalloc(&nll_dev, count * sizeof *nll_dev));
    nll_host = (float *)malloc(count * sizeof *nll_host);
    if (!nll_host) {
        fprintf(stderr, "gemmakd: out of memory for %zu row losses\n", count);
        exit(1);
    }
    rows_held = count;
}

extern "C" double xent_fused_cuda(const xent_ctx *ctx, float *z, gk_bf16 *dx, size_t first, size_t count, int vocab,
                                  double cap) {
    if (!count) return 0;
    hold_rows(count);
    xent_fused_kernel<<<(unsigned)count, THREADS>>>(nll_dev, dx ? dev(dx) : NULL, z, ctx->targets + first, vocab,
                                                    (float)cap, (float)ctx->scale);
    CUDA_LAUNCHED();
    CUDA_CHECK(cudaMemcpy(nll_host, nll_dev, count * sizeof *nll_host, cudaMemcpyDeviceToHost));
    double total = 0;
    for (size_t r = 0; r < count; r++) {
        if (ctx->logprobs) ctx->logprobs[first + r] = -nll_host[r]; // NaN where there is no target
        if (!isnan(nll_host[r])) total += (double)nll_host[r] * ctx->scale;
    }
    return total;
}
