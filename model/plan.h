// What a config costs: parameters, FLOPs per token and a memory plan.
#ifndef GK_PLAN_H
#define GK_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "model/config.h"

typedef struct {
    size_t params_total, params_embedding, params_non_embedding;
    // Model FLOPs per token at seq_len (causal attention counts only allowed keys).
    double flops_matmul_fwd;    // 2 x (all weight matrices, the tied head included)
    double flops_attention_fwd; // QK^T and PV over the keys each query may see
    double flops_fwd, flops_train; // training = forward + backward = 3 x forward
    // Training memory in bytes: the weights the products read (float32, or a bf16
    // copy), the float32 master weights beside a bf16 copy (0 in float32, where
    // they are the weights), gradients (float32 / bf16), AdamW m and v (float32),
    // activations of a micro-batch with the output head's work space.
    size_t bytes_weights, bytes_master, bytes_grads, bytes_adamw, bytes_activations;
    size_t bytes_total; // their sum
} model_plan;

// Average number of keys a query attends to in a sequence of seq_len tokens.
double attended_keys(int seq_len, int window);
// batch sequences of seq_len tokens; the head tiled over the vocabulary (head_chunk
// 0: the CPU's) or head_chunk tokens of [chunk, V] logits at a time (the GPU's
// cross-entropy); bf16: the memory of the bf16 backends (model/engine.h), else float32's.
// Sizes are 64-bit; a plan whose bytes do not fit in 64 bits is an error.
int model_plan_compute(const model_config *cfg, int batch, int seq_len, int head_chunk, bool bf16, model_plan *plan,
                       gk_err *err);

// An in-process teacher: its parameters and what a forward pass over a micro-batch holds.
typedef struct {
    size_t params_total;
    size_t bytes_weights;     // params_total x 2 (bf16) or 4 (float32): the one copy its products read
    // Forward only: one layer's buffers reused layer after layer, the final hidden states and
    // norm, the attention work space and RoPE tables (acts_floats(.., training false)) in its
    // storage type, plus one [block, tile] float32 tile of its logits (the tiled head's shape).
    size_t bytes_activations;
    size_t bytes_total;
} forward_plan;

// The same micro-batch as model_plan_compute; bf16: the teacher's precision.
int model_plan_forward(const model_config *cfg, int batch, int seq_len, bool bf16, forward_plan *f, gk_err *err);

#endif
