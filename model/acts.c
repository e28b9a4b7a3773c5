// Activation buffers: one allocation sliced into the arrays of gemma2_api.inc
// (host memory on the CPU, device memory on the GPU).
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/real.h"
#include "model/carve.h"

// Where a layer tensor's pointer goes: the field LAYER_TENSORS names for it.
static void point_layer_tensor(FN(layer_weights) *lw, layer_tensor field, real *at) {
    switch (field) {
#define LAYER_TENSOR_POINT(name, suffix, kind, rows, cols) \
    case LAYER_##name: lw->name = at; break;
        LAYER_TENSORS(LAYER_TENSOR_POINT)
#undef LAYER_TENSOR_POINT
    case LAYER_N_TENSORS: GK_ASSERT(!"not a layer tensor");
    }
}

void FN(weights_point)(const param_layout *L, real *base, FN(weights) *w) {
    memset(w, 0, sizeof *w);
    for (int t = 0; t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        real *at = base + p->offset;
        if (p->layer >= 0) point_layer_tensor(&w->layers[p->layer], (layer_tensor)p->field, at);
        else if (p->kind == PARAM_EMBEDDING) w->embed = at;
        else w->final_norm = at; // the one other tensor outside the layers
    }
}

static void layout_acts(FN(acts) *a, const model_config *cfg, bool training, carver *c) {
    size_t N = (size_t)a->B * a->T, d = cfg->d_model, ff = cfg->d_ff, qd = cfg_q_dim(cfg), kvd = cfg_kv_dim(cfg);
    a->tokens = carve_ints(c, N);
    a->pos = carve_ints(c, N);
    a->doc_begin = carve_ints(c, N);
    for (int s = 0; s < a->n_slots; s++) {
        FN(layer_acts) *l = &a->layers[s];
        l->resid_in = carve(c, N * d);
        l->rstd_in = carve_acc(c, N);
        l->xn_attn = carve(c, N * d);
        l->q = carve(c, N * qd);
        l->k = carve(c, N * kvd);
        l->v = carve(c, N * kvd);
        l->attn = carve(c, N * qd);
        l->lse = carve_acc(c, N * cfg->n_heads);
        l->o = carve(c, N * d);
        l->rstd_post_attn = carve_acc(c, N);
        l->resid_mid = carve(c, N * d);
        l->rstd_pre_ffw = carve_acc(c, N);
        l->xn_ffw = carve(c, N * d);
        l->gate = carve(c, N * ff);
        l->up = carve(c, N * ff);
        l->act = carve(c, N * ff);
        l->mlp_out = carve(c, N * d);
        l->rstd_post_ffw = carve_acc(c, N);
    }
    a->resid_final = carve(c, N * d);
    a->rstd_final = carve_acc(c, N);
    a->xn_final = carve(c, N * d);
    a->d_xn_final = training ? carve(c, N * d) : NULL;
    a->rope_cos = carve_acc(c, (size_t)a->rope_len * cfg->head_dim / 2);
    a->rope_sin = carve_acc(c, (size_t)a->rope_len * cfg->head_dim / 2);
    attn_shape shape = {.B = a->B, .T = a->T, .n_heads = cfg->n_heads, .n_kv_heads = cfg->n_kv_heads,
                        .head_dim = cfg->head_dim, .n_threads = a->n_threads};
    a->scratch_floats = FN(attention_scratch)(&shape, false);
    if (training) { // the backward pass's work space, counted by the layout backward.c uses
        carver count = {0};
        grad_space g;
        carve_grad_space(&g, cfg, N, &shape, &count);
        a->scratch_floats = count.used;
    }
    a->scratch = carve(c, a->scratch_floats);
}

size_t FN(acts_floats)(const model_config *cfg, int B, int T, bool training) {
    FN(acts) a = {.B = B, .T = T, .rope_len = T, .n_slots = training ? cfg->n_layers : 1,
                  .n_threads = omp_get_max_threads()};
    a.layers = calloc((size_t)a.n_slots, sizeof *a.layers);
    if (!a.layers) return 0;
    carver count = {0};
    layout_acts(&a, cfg, training, &count);
    free(a.layers);
    return count.used;
}

// Host copies of tokens, positions and document starts: the arrays themselves
// where kernels run on the host, a separate block where they run on the GPU.
static bool host_ids(FN(acts) *a, size_t N, gk_err *err) {
#ifdef GK_REAL_CUDA
    if (!(a->host_block = gk_calloc(3 * N, sizeof(int32_t), err))) return false;
    a->tokens_host = a->host_block;
    a->pos_host = a->host_block + N;
    a->doc_begin_host = a->host_block + 2 * N;
#else
    (void)N, (void)err;
    a->tokens_host = a->tokens;
    a->pos_host = a->pos;
    a->doc_begin_host = a->doc_begin;
#endif
    return true;
}

int FN(acts_init)(FN(acts) *a, const model_config *cfg, int B, int T, bool training, gk_err *err) {
    return FN(acts_init_rope)(a, cfg, B, T, training, T, err);
}

int FN(acts_init_rope)(FN(acts) *a, const model_config *cfg, int B, int T, bool training, int rope_len, gk_err *err) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->rope_len = rope_len;
    a->n_slots = training ? cfg->n_layers : 1;
    a->n_threads = omp_get_max_threads();
    a->layers = gk_calloc((size_t)a->n_slots, sizeof *a->layers, err);
    if (!a->layers) return -1;
    carver count = {0};
    layout_acts(a, cfg, training, &count);
    size_t bytes, N = (size_t)B * T;
    if (!gk_mul_ok(count.used, sizeof(real), &bytes) || !(a->block = FN(buffer_alloc)(bytes, NULL))) {
        FN(acts_free)(a);
        return gk_fail(err, GK_ENOMEM, "out of memory allocating %.1f MiB of activations for %d x %d tokens",
                       (double)count.used * sizeof(real) / (1 << 20), B, T);
    }
    carver fill = {a->block, 0};
    layout_acts(a, cfg, training, &fill);
    if (!host_ids(a, N, err)) {
        FN(acts_free)(a);
        return -1;
    }
    FN(rope_tables)(a->rope_cos, a->rope_sin, rope_len, cfg->head_dim, cfg->rope_theta);
    return 0;
}

void FN(acts_free)(FN(acts) *a) {
    if (a->block) FN(buffer_free)(a->block);
    if (a->head_block) FN(buffer_free)(a->head_block);
    free(a->head_host);
    free(a->host_block);
    free(a->layers);
    memset(a, 0, sizeof *a);
}
