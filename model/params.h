// Parameter layout: one contiguous float buffer with a table of Hugging Face
// names and shapes. Weights, gradients, optimizer moments and averaged copies
// all use the same layout, so code that walks the table works on any of them.
#ifndef GK_MODEL_PARAMS_H
#define GK_MODEL_PARAMS_H

#include <stddef.h>

#include "model/config.h"

typedef enum { PARAM_EMBEDDING, PARAM_MATRIX, PARAM_NORM } param_kind;

// The tensors of one layer, in the order they sit in the buffer:
// X(field of layer_weights, Hugging Face name suffix, kind, rows, cols). The
// shape is [rows, cols] ([rows] when cols is 0), in d = d_model,
// q = n_heads*head_dim, kv = n_kv_heads*head_dim and ff = d_ff. The layer
// struct (model/gemma2_api.inc), the parameter table (model/params.c) and
// weights_point (model/acts.c) are all generated from this one list.
#define LAYER_TENSORS(X)                                                      \
    X(input_norm, "input_layernorm.weight", PARAM_NORM, d, 0)                 \
    X(wq, "self_attn.q_proj.weight", PARAM_MATRIX, q, d)                      \
    X(wk, "self_attn.k_proj.weight", PARAM_MATRIX, kv, d)                     \
    X(wv, "self_attn.v_proj.weight", PARAM_MATRIX, kv, d)                     \
    X(wo, "self_attn.o_proj.weight", PARAM_MATRIX, d, q)                      \
    X(post_attn_norm, "post_attention_layernorm.weight", PARAM_NORM, d, 0)    \
    X(pre_ffw_norm, "pre_feedforward_layernorm.weight", PARAM_NORM, d, 0)     \
    X(w_gate, "mlp.gate_proj.weight", PARAM_MATRIX, ff, d)                    \
    X(w_up, "mlp.up_proj.weight", PARAM_MATRIX, ff, d)                        \
    X(w_down, "mlp.down_proj.weight", PARAM_MATRIX, d, ff)                    \
    X(post_ffw_norm, "post_feedforward_layernorm.weight", PARAM_NORM, d, 0)

// A layer tensor's field: LAYER_input_norm, LAYER_wq, ...
typedef enum {
#define LAYER_TENSOR_ENUM(field, suffix, kind, rows, cols) LAYER_##field,
    LAYER_TENSORS(LAYER_TENSOR_ENUM)
#undef LAYER_TENSOR_ENUM
    LAYER_N_TENSORS
} layer_tensor;

typedef struct {
    char name[96];   // Hugging Face name, e.g. "model.layers.3.mlp.up_proj.weight"
    int ndim;        // 1 or 2
    size_t shape[2]; // [out, in] for matrices (nn.Linear layout), [d] for norms
    size_t numel;
    size_t offset;   // in floats from the start of the buffer (64-byte aligned)
    int layer;       // -1 for embedding and final norm
    int field;       // a layer tensor's layer_tensor; -1 for embedding and final norm
    param_kind kind;
} param_tensor;

typedef struct {
    param_tensor *tensors;
    int n_tensors;
    size_t n_floats; // buffer length including alignment padding
    size_t n_params; // sum of numel
} param_layout;

int param_layout_build(const model_config *cfg, param_layout *layout, gk_err *err);
void param_layout_free(param_layout *layout);
const param_tensor *param_find(const param_layout *layout, const char *name);
// 64-byte aligned, zero-filled buffer of layout->n_floats floats.
float *param_buffer_alloc(const param_layout *layout, gk_err *err);

#endif
