#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN_FLOATS = 16 };

// Per-layer tensors in the order they sit in the buffer (LAYER_TENSORS).
static const struct {
    const char *suffix;
    param_kind kind;
} layer_tensors[LAYER_N_TENSORS] = {
#define LAYER_TENSOR_ROW(field, suffix, kind, rows, cols) {suffix, kind},
    LAYER_TENSORS(LAYER_TENSOR_ROW)
#undef LAYER_TENSOR_ROW
};

static void layer_shape(const model_config *c, layer_tensor i, size_t shape[2], int *ndim) {
    size_t d = (size_t)c->d_model, q = (size_t)cfg_q_dim(c), kv = (size_t)cfg_kv_dim(c), ff = (size_t)c->d_ff;
    const size_t shapes[LAYER_N_TENSORS][2] = {
#define LAYER_TENSOR_SHAPE(field, suffix, kind, rows, cols) {rows, cols},
        LAYER_TENSORS(LAYER_TENSOR_SHAPE)
#undef LAYER_TENSOR_SHAPE
    };
    shape[0] = shapes[i][0];
    shape[1] = shapes[i][1];
    *ndim = shape[1] ? 2 : 1;
}

static void add_tensor(param_layout *L, const char *name, int ndim, const size_t shape[2], int layer, int field,
                       param_kind kind) {
    param_tensor *t = &L->tensors[L->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 0;
    t->numel = shape[0] * (ndim == 2 ? shape[1] : 1);
    t->offset = L->n_floats;
    t->layer = layer;
    t->field = field;
    t->kind = kind;
    L->n_params += t->numel;
    L->n_floats += (t->numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

int param_layout_build(const model_config *c, param_layout *L, gk_err *err) {
    memset(L, 0, sizeof *L);
    L->tensors = gk_calloc((size_t)c->n_layers * LAYER_N_TENSORS + 2, sizeof *L->tensors, err);
    if (!L->tensors) return -1;
    size_t embed_shape[2] = {(size_t)c->vocab_size, (size_t)c->d_model}, norm_shape[2] = {(size_t)c->d_model, 0};
    add_tensor(L, "model.embed_tokens.weight", 2, embed_shape, -1, -1, PARAM_EMBEDDING);
    for (int l = 0; l < c->n_layers; l++) {
        for (layer_tensor i = 0; i < LAYER_N_TENSORS; i++) {
            char name[96];
            size_t shape[2];
            int ndim;
            snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_tensors[i].suffix);
            layer_shape(c, i, shape, &ndim);
            add_tensor(L, name, ndim, shape, l, (int)i, layer_tensors[i].kind);
        }
    }
    add_tensor(L, "model.norm.weight", 1, norm_shape, -1, -1, PARAM_NORM);
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
