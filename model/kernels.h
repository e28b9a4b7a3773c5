// Compute kernels, declared per instantiation (model/precisions.h): _f32,
// _f64 and _bf16 on the CPU (model/cpu/), _cuda on the GPU (model/cuda/).
// Shapes are explicit; backward kernels add into parameter gradients.
#ifndef GK_KERNELS_H
#define GK_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

// Geometry of one attention call over a batch of B rows of T tokens.
typedef struct {
    int B, T, n_heads, n_kv_heads, head_dim;
    int window;               // keys allowed: 0 <= i - j < window (0 = no window)
    double scale;             // query_pre_attn_scalar^-1/2
    double softcap;           // 0 = off
    const int32_t *doc_begin; // [B*T] document start (index in row) of each query
    int n_threads;            // threads the work space was sized for (the kernels use at most these)
} attn_shape;

enum { ATTN_BLOCK = 64 }; // queries per block in the attention kernels
enum { ATTN_CACHED_MAX_HEAD_DIM = 256 }; // attention_cached: a head in a stack array (CPU) or registers (GPU)
enum { NORM_CHUNK = 64 };  // tokens per partial sum in rmsnorm_backward (fixed: results do not depend on threads)

static inline int rmsnorm_partial_rows(int n) { return (n + NORM_CHUNK - 1) / NORM_CHUNK; }

// What AdamW applies to one tensor at one step (as torch.optim.AdamW): decoupled
// weight decay lr * wd, bias corrections folded into step_size and bc2_sqrt.
typedef struct {
    float lr, wd, beta1, beta2, eps, step_size, bc2_sqrt;
} adamw_coeffs;

// Cross-entropy over a chunked head (xent_fused, xent_head): targets[i] is the
// token predicted at position i, or -1 for no loss there.
typedef struct {
    const int32_t *targets; // [B*T] (device memory on the GPU)
    double scale;           // each token's loss is multiplied by this (1/count for a mean)
    float *logprobs;        // optional host [B*T]: log p(target) per position (NaN where target < 0)
} xent_ctx;

#define GK_TEMPLATE "model/kernels_api.inc"
#include "model/precisions.h"

#endif
