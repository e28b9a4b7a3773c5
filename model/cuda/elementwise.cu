// Elementwise kernels on the GPU: GeGLU, embedding, soft-capping, residual add.
// Math in float from bf16 storage, as model/cpu/elementwise.c does it in float.
#include <limits.h>

#include "model/cuda/common.cuh"

enum { THREADS = 256 };

#define FOR_EACH_INDEX(n)                                                  \
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;             \
    if (i >= (n)) return

// torch's gelu(approximate="tanh") constants.
__device__ const float GELU_BETA = 0.7978845608028654f, GELU_KAPPA = 0.044715f;

__global__ void geglu_forward_kernel(bf16 *act, const bf16 *gate, const bf16 *up, size_t n) {
    FOR_EACH_INDEX(n);
    float x = __bfloat162float(gate[i]), t = tanhf(GELU_BETA * (x + GELU_KAPPA * (x * x * x)));
    act[i] = __float2bfloat16(0.5f * x * (1 + t) * __bfloat162float(up[i]));
}

__global__ void geglu_backward_kernel(bf16 *dgate, bf16 *dup, const bf16 *dact, const bf16 *gate, const bf16 *up,
                                      size_t n) {
    FOR_EACH_INDEX(n);
    float x = __bfloat162float(gate[i]), t = tanhf(GELU_BETA * (x + GELU_KAPPA * (x * x * x)));
    float gelu = 0.5f * x * (1 + t);
    float dgelu = 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * GELU_BETA * (1 + 3 * GELU_KAPPA * x * x);
    float g = __bfloat162float(dact[i]); // dgate may alias dact: read before writing
    dup[i] = __float2bfloat16(g * gelu);
    dgate[i] = __float2bfloat16(g * __bfloat162float(up[i]) * dgelu);
}

extern "C" void geglu_forward_cuda(gk_bf16 *act, const gk_bf16 *gate, const gk_bf16 *up, size_t n) {
    if (!n) return;
    geglu_forward_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(act), dev(gate), dev(up), n);
    CUDA_LAUNCHED();
}

extern "C" void geglu_backward_cuda(gk_bf16 *dgate, gk_bf16 *dup, const gk_bf16 *dact, const gk_bf16 *gate,
                                    const gk_bf16 *up, size_t n) {
    if (!n) return;
    geglu_backward_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(dgate), dev(dup), dev(dact), dev(gate), dev(up), n);
    CUDA_LAUNCHED();
}

// sqrt(d) rounded to bf16, as transformers' Gemma2 normaliser in the compute dtype.
static float embed_normalizer(int d) { return __bfloat162float(__float2bfloat16(sqrtf((float)d))); }

__global__ void embed_forward_kernel(bf16 *x, const bf16 *E, const int32_t *tokens, int n, int d, float s) {
    FOR_EACH_INDEX((size_t)n * d);
    size_t row = i / d, col = i % d;
    x[i] = __float2bfloat16(__bfloat162float(E[(size_t)tokens[row] * d + col]) * s);
}

extern "C" void embed_forward_cuda(gk_bf16 *x, const gk_bf16 *E, const int32_t *tokens, int n, int d) {
    size_t total = (size_t)n * d;
    if (!total) return;
    embed_forward_kernel<<<blocks_for(total, THREADS), THREADS>>>(dev(x), dev(E), tokens, n, d, embed_normalizer(d));
    CUDA_LAUNCHED();
}

// The embedding gradient without atomics, in two kernels. First, for each
// position i, next[i] = the next position holding the same token (-1: none) and
// has_prev[next[i]] = 1: a block per position scans the later ones (O(n^2)
// integer compares from cache, once per step). Then each token's first
// occurrence follows its chain, summing the occurrences' gradients in position
// order in float, and adds the sum to the token's row once: O(n d) in all.
__global__ void embed_chain_kernel(int *next, int *has_prev, const int32_t *tokens, int n) {
    int i = blockIdx.x, token = tokens[i];
    __shared__ int found;
    if (threadIdx.x == 0) found = INT_MAX;
    __syncthreads();
    for (int j = i + 1 + threadIdx.x; j < n; j += blockDim.x)
        if (tokens[j] == token) { // this thread's first match is its smallest
            atomicMin(&found, j);
            break;
        }
    __syncthreads();
    if (threadIdx.x == 0) {
        next[i] = found == INT_MAX ? -1 : found;
        if (found != INT_MAX) has_prev[found] = 1;
    }
}

__global__ void embed_backward_kernel(bf16 *dE, const bf16 *dx, const int32_t *tokens, const int *next,
                                      const int *has_prev, int d, int pad_id, float s) {
    int i = blockIdx.x, token = tokens[i];
    if (token == pad_id || has_prev[i]) return;
    for (int col = threadIdx.x; col < d; col += blockDim.x) {
        float sum = 0;
        for (int j = i; j >= 0; j = next[j]) sum += __bfloat162float(dx[(size_t)j * d + col]);
        bf16 *e = dE + (size_t)token * d + col;
        *e = __float2bfloat16(__bfloat162float(*e) + sum * s);
    }
}

extern "C" void embed_backward_cuda(gk_bf16 *dE, const gk_bf16 *dx, const int32_t *tokens, int n, int d, int pad_id,
                                    int32_t *work) {
    if (n <= 0 || d <= 0) return;
    int *chain = work; // next [n] then has_prev [n]
    CUDA_CHECK(cudaMemset(chain + n, 0, (size_t)n * sizeof *chain));
    embed_chain_kernel<<<n, THREADS>>>(chain, chain + n, tokens, n);
    CUDA_LAUNCHED();
    embed_backward_kernel<<<n, THREADS>>>(dev(dE), dev(dx), tokens, chain, chain + n, d, pad_id, embed_normalizer(d));
    CUDA_LAUNCHED();
}

__global__ void softcap_forward_kernel(float *x, size_t n, float cap) {
    FOR_EACH_INDEX(n);
    x[i] = tanhf(x[i] / cap) * cap;
}

// cap 0 (no soft-cap): keep 0 and dx = g, rounded.
__global__ void softcap_backward_kernel(bf16 *dx, const float *g, const float *y, size_t n, float cap, float keep) {
    FOR_EACH_INDEX(n);
    float t = keep * y[i] / cap;
    dx[i] = __float2bfloat16(g[i] * (1 - t * t));
}

extern "C" void softcap_forward_cuda(float *x, size_t n, double cap) {
    if (cap <= 0 || !n) return;
    softcap_forward_kernel<<<blocks_for(n, THREADS), THREADS>>>(x, n, (float)cap);
    CUDA_LAUNCHED();
}

extern "C" void softcap_backward_cuda(gk_bf16 *dx, const float *g, const float *y, size_t n, double cap) {
    if (!n) return;
    softcap_backward_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(dx), g, y, n, cap > 0 ? (float)cap : 1.0f,
                                                                 cap > 0 ? 1.0f : 0.0f);
    CUDA_LAUNCHED();
}

__global__ void add_kernel(bf16 *y, const bf16 *a, const bf16 *b, size_t n) {
    FOR_EACH_INDEX(n);
    y[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

extern "C" void add_cuda(gk_bf16 *y, const gk_bf16 *a, const gk_bf16 *b, size_t n) {
    if (!n) return;
    add_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(y), dev(a), dev(b), n);
    CUDA_LAUNCHED();
}

__global__ void add_acc_kernel(bf16 *y, const float *x, size_t n) {
    FOR_EACH_INDEX(n);
    y[i] = __float2bfloat16(__bfloat162float(y[i]) + x[i]);
}

extern "C" void add_acc_cuda(gk_bf16 *y, const float *x, size_t n) {
    if (!n) return;
    add_acc_kernel<<<blocks_for(n, THREADS), THREADS>>>(dev(y), x, n);
    CUDA_LAUNCHED();
}
