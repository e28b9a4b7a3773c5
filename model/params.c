#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TENSORS_PER_LAYER = 11, ALIGN_FLOATS = 16 };

// Per-layer tensors in the order they sit in the buffer.
static const struct {
    const char *suffix;
    param_kind kind;
} layer_tensors[TENSORS_PER_LAYER] = {
    {"input_layernorm.weight", PARAM_NORM},
    {"self_attn.q_proj.weight", PARAM_MATRIX},
    {"self_attn.k_proj.weight", PARAM_MATRIX},
    {"self_attn.v_proj.weight", PARAM_MATRIX},
    {"self_attn.o_proj.weight", PARAM_MATRIX},
    {"post_attention_layernorm.weight", PARAM_NORM},
    {"pre_feedforward_layernorm.weight", PARAM_NORM},
    {"mlp.gate_proj.weight", PARAM_MATRIX},
    {"mlp.up_proj.weight", PARAM_MATRIX},
    {"mlp.down_proj.weight", PARAM_MATRIX},
    {"post_feedforward_layernorm.weight", PARAM_NORM},
};

static void layer_shape(const model_config *c, int i, size_t shape[2], int *ndim) {
    size_t d = (size_t)c->d_model, q = (size_t)cfg_q_dim(c), kv = (size_t)cfg_kv_dim(c), ff = (size_t)c->d_ff;
    const size_t shapes[TENSORS_PER_LAYER][2] = {{d, 0}, {q, d},  {kv, d}, {kv, d}, {d, q}, {d, 0},
                                                 {d, 0}, {ff, d}, {ff, d}, {d, ff}, {d, 0}};
    shape[0] = shapes[i][0];
    shape[1] = shapes[i][1];
    *ndim = shape[1] ? 2 : 1;
}

static void add_tensor(param_layout *L, const char *name, int ndim, const size_t shape[2], int layer,
                       param_kind kind) {
    param_tensor *t = &L->tensors[L->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 0;
    t->numel = shape[0] * (ndim == 2 ? shape[1] : 1);
    t->offset = L->n_floats;
    t->layer = layer;
    t->kind = kind;
    L->n_params += t->numel;
    L->n_floats += (t->numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

int param_layout_build(const model_config *c, param_layout *L, gk_err *err) {
    memset(L, 0, sizeof *L);
    L->tensors = gk_calloc((size_t)c->n_layers * TENSORS_PER_LAYER + 2, sizeof *L->tensors, err);
    if (!L->tensors) return -1;
    size_t embed_shape[2] = {(size_t)c->vocab_size, (size_t)c->d_model}, norm_shape[2] = {(size_t)c->d_model, 0};
    add_tensor(L, "model.embed_tokens.weight", 2, embed_shape, -1, PARAM_EMBEDDING);
    for (int l = 0; l < c->n_layers; l++) {
        for (int i = 0; i < TENSORS_PER_LAYER; i++) {
            char name[96];
            size_t shape[2];
            int ndim;
            snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_tensors[i].suffix);
            layer_shape(c, i, shape, &ndim);
            add_tensor(L, name, ndim, shape, l, layer_tensors[i].kind);
        }
    }
    add_tensor(L, "model.norm.weight", 1, norm_shape, -1, PARAM_NORM);
    return 0;
}

void param_layout_free(param_layout *L) {
    free(L->tensors);
    memset(L, 0, sizeof *L);
}

const param_tensor *param_find(const param_layout *L, const char *name) {
    for (int i = 0; i < L->n_tensors; i++)
        if (!strcmp(L->tensors[i].name, name)) return &L->tensors[i];
    return NULL;
}

float *param_buffer_alloc(const param_layout *L, gk_err *err) {
    size_t bytes;
    if (!gk_mul_ok(L->n_floats, sizeof(float), &bytes)) {
        gk_fail(err, GK_ENOMEM, "parameter buffer size overflows");
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        gk_fail(err, GK_ENOMEM, "out of memory allocating %zu bytes of parameters", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}
