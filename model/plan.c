#include "model/plan.h"

#include "model/gemma2.h"
#include "model/params.h"

double attended_keys(int seq_len, int window) {
    double sum = 0;
    for (int i = 0; i < seq_len; i++) sum += window > 0 && i + 1 > window ? window : i + 1;
    return sum / seq_len;
}

// The head's work space. Tiled (model_head_tiled): a block x tile of float32
// logits and their gradient (and its copy in storage), dL/dhidden [N, d] and
// dL/dE [tile, d] in float32. Chunked (the fused cross-entropy): [chunk, V]
// float32 logits and their gradient in storage (over them in float32).
static size_t head_bytes(const model_config *cfg, size_t N, int head_chunk, size_t storage) {
    size_t V = (size_t)cfg->vocab_size, d = (size_t)cfg->d_model, extra = storage < sizeof(float) ? storage : 0;
    if (head_chunk <= 0) {
        size_t tile = V < HEAD_TILE_WIDTH ? V : HEAD_TILE_WIDTH, cells = (size_t)HEAD_TILE_BLOCK * tile;
        return cells * (2 * sizeof(float) + extra) + (N + tile) * d * sizeof(float);
    }
    size_t chunk = (size_t)head_chunk < N ? (size_t)head_chunk : N;
    return chunk * V * (sizeof(float) + extra);
}

int model_plan_compute(const model_config *cfg, int batch, int seq_len, int head_chunk, bool bf16, model_plan *p,
                       gk_err *err) {
    param_layout layout;
    if (param_layout_build(cfg, &layout, err)) return -1;
    p->params_total = layout.n_params;
    p->params_embedding = layout.tensors[0].numel;
    p->params_non_embedding = p->params_total - p->params_embedding;
    double matmul = 0;
    for (int i = 0; i < layout.n_tensors; i++)
        if (layout.tensors[i].ndim == 2) matmul += (double)layout.tensors[i].numel; // the embedding counts as the head
    param_layout_free(&layout);
    p->flops_matmul_fwd = 2 * matmul;
    p->flops_attention_fwd = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        p->flops_attention_fwd +=
            4.0 * cfg_q_dim(cfg) * attended_keys(seq_len, cfg->is_local[l] ? cfg->sliding_window : 0);
    p->flops_fwd = p->flops_matmul_fwd + p->flops_attention_fwd;
    p->flops_train = 3 * p->flops_fwd;
    size_t storage = bf16 ? sizeof(gk_bf16) : sizeof(float);
    p->bytes_weights = p->params_total * storage;
    p->bytes_master = bf16 ? p->params_total * sizeof(float) : 0;
    p->bytes_grads = p->params_total * storage;
    p->bytes_adamw = 2 * p->params_total * sizeof(float);
    size_t reals = bf16 ? acts_floats_bf16(cfg, batch, seq_len, true) : acts_floats_f32(cfg, batch, seq_len, true);
    if (!reals) return gk_fail(err, GK_ENOMEM, "out of memory");
    p->bytes_activations = reals * storage + head_bytes(cfg, (size_t)batch * seq_len, head_chunk, storage);
    return 0;
}
