// Parameter layout: one contiguous float buffer with a table of Hugging Face
// names and shapes. Weights, gradients, optimizer moments and averaged copies
// all use the same layout, so code that walks the table works on any of them.
#ifndef GK_MODEL_PARAMS_H
#define GK_MODEL_PARAMS_H

#include <stddef.h>

#include "model/config.h"

typedef enum { PARAM_EMBEDDING, PARAM_MATRIX, PARAM_NORM } param_kind;

typedef struct {
    char name[96];   // Hugging Face name, e.g. "model.layers.3.mlp.up_proj.weight"
    int ndim;        // 1 or 2
    size_t shape[2]; // [out, in] for matrices (nn.Linear layout), [d] for norms
    size_t numel;
    size_t offset;   // in floats from the start of the buffer (64-byte aligned)
    int layer;       // -1 for embedding and final norm
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
