#include "model/plan.h"

#include <stdint.h>

#include "model/engine.h"
#include "model/gemma2.h"
#include "model/params.h"

double attended_keys(int seq_len, int window) {
    double sum = 0;
    for (int i = 0; i < seq_len; i++) sum += window > 0 && i + 1 > window ? window : i + 1;
    return sum / seq_len;
}

// The head's work space; 0 when it does not fit in 64 bits. Tiled
// (model_head_tiled, its default shape): a block x tile of float32 logits and
// their gradient (and its copy in storage), dL/dhidden [N, d] and dL/dE [tile,
// d] in float32.
// Chunked (the fused cross-entropy): [chunk, V] float32 logits and their
// gradient in storage (over them in float32).
static size_t head_bytes(const model_config *cfg, size_t N, int head_chunk, size_t storage) {
    size_t V = (size_t)cfg->vocab_size, d = (size_t)cfg->d_model, extra = storage < sizeof(float) ? storage : 0, out;
    if (head_chunk <= 0) {
        tile_shape t = head_tile_shape((int)V, (tile_shape){0, 0});
        size_t block = (size_t)t.block < N ? (size_t)t.block : N, cells = block * (size_t)t.tile, rows;
        if (!gk_add_ok(N, (size_t)t.tile, &rows) || !gk_mul_ok(rows, d * sizeof(float), &out) ||
            !gk_add_ok(out, cells * (2 * sizeof(float) + extra), &out))
            return 0;
        return out;
    }
    size_t chunk = (size_t)head_chunk < N ? (size_t)head_chunk : N;
    return gk_mul_ok(chunk, V * (sizeof(float) + extra), &out) ? out : 0;
}

// total = the sum of n sizes; 0 when it overflows.
static int add_all(const size_t *v, int n, size_t *total) {
    *total = 0;
    for (int i = 0; i < n; i++)
        if (!gk_add_ok(*total, v[i], total)) return 0;
    return 1;
}

// The training memory of p's parameters and of a micro-batch of N tokens (activations, the head's work space).
static int plan_bytes(const model_config *cfg, size_t N, size_t reals, int head_chunk, bool bf16, model_plan *p) {
    size_t storage = bf16 ? sizeof(gk_bf16) : sizeof(float), P = p->params_total;
    p->bytes_master = bf16 ? P * sizeof(float) : 0; // P < 2^57 under the config limits: no overflow here
    p->bytes_weights = P * storage;
    p->bytes_grads = P * storage;
    p->bytes_adamw = 2 * P * sizeof(float);
    size_t head = head_bytes(cfg, N, head_chunk, storage), acts;
    if (!head || !gk_mul_ok(reals, storage, &acts) || !gk_add_ok(acts, head, &p->bytes_activations))
        return 0;
    size_t all[5] = {p->bytes_weights, p->bytes_master, p->bytes_grads, p->bytes_adamw, p->bytes_activations};
    return add_all(all, 5, &p->bytes_total);
}

// batch x seq_len tokens of a micro-batch, within what one pass holds.
static int micro_batch_tokens(int batch, int seq_len, size_t *N, gk_err *err) {
    *N = (size_t)batch * (size_t)seq_len;
    if (batch < 1 || seq_len < 1 || *N > (size_t)ENGINE_MAX_TOKENS)
        return gk_fail(err, GK_EINPUT, "a micro-batch of %d x %d tokens is not in 1..%lld", batch, seq_len, ENGINE_MAX_TOKENS);
    return 0;
}

int model_plan_compute(const model_config *cfg, int batch, int seq_len, int head_chunk, bool bf16, model_plan *p,
                       gk_err *err) {
    size_t N; // tokens per micro-batch
    if (micro_batch_tokens(batch, seq_len, &N, err)) return -1;
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
            4.0 * (double)cfg_q_dim(cfg) * attended_keys(seq_len, cfg->is_local[l] ? cfg->sliding_window : 0);
    p->flops_fwd = p->flops_matmul_fwd + p->flops_attention_fwd;
    p->flops_train = 3 * p->flops_fwd;
    size_t reals = bf16 ? acts_floats_bf16(cfg, batch, seq_len, true) : acts_floats_f32(cfg, batch, seq_len, true);
    if (!reals) return gk_fail(err, GK_ENOMEM, "out of memory");
    if (reals == SIZE_MAX || !plan_bytes(cfg, N, reals, head_chunk, bf16, p))
        return gk_fail(err, GK_EINPUT, "the training memory of %d x %d tokens does not fit in 64 bits", batch, seq_len);
    return 0;
}

// One tile of the tiled head's float32 logits for N tokens: [min(block, N), tile].
static size_t logits_tile_bytes(const model_config *cfg, size_t N) {
    tile_shape t = head_tile_shape(cfg->vocab_size, (tile_shape){0, 0});
    size_t block = (size_t)t.block < N ? (size_t)t.block : N;
    return block * (size_t)t.tile * sizeof(float);
}

int model_plan_forward(const model_config *cfg, int batch, int seq_len, bool bf16, forward_plan *f, gk_err *err) {
    size_t N; // tokens per micro-batch
    if (micro_batch_tokens(batch, seq_len, &N, err)) return -1;
    param_layout layout;
    if (param_layout_build(cfg, &layout, err)) return -1;
    f->params_total = layout.n_params;
    param_layout_free(&layout);
    size_t storage = bf16 ? sizeof(gk_bf16) : sizeof(float), acts;
    f->bytes_weights = f->params_total * storage; // < 2^59 under the config limits
    size_t reals = bf16 ? acts_floats_bf16(cfg, batch, seq_len, false) : acts_floats_f32(cfg, batch, seq_len, false);
    if (!reals) return gk_fail(err, GK_ENOMEM, "out of memory");
    if (reals == SIZE_MAX || !gk_mul_ok(reals, storage, &acts) ||
        !gk_add_ok(acts, logits_tile_bytes(cfg, N), &f->bytes_activations) ||
        !gk_add_ok(f->bytes_weights, f->bytes_activations, &f->bytes_total))
        return gk_fail(err, GK_EINPUT, "the forward memory of %d x %d tokens does not fit in 64 bits", batch, seq_len);
    return 0;
}
