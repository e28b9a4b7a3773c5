// The Gemma 2 forward pass: embedding, layers, final norm.
#include <string.h>

#include "model/real.h"
#include "model/layer_shape.h"

static int copy_batch(const model_config *cfg, FN(acts) *a, const token_batch *batch, gk_err *err) {
    if (batch->B != a->B || batch->T != a->T)
        return gk_fail(err, GK_EINTERNAL, "batch is %d x %d but activations were sized for %d x %d", batch->B, batch->T,
                       a->B, a->T);
    for (int b = 0; b < a->B; b++) {
        for (int t = 0; t < a->T; t++) {
            size_t i = (size_t)b * a->T + t;
            int32_t tok = batch->tokens[i], begin = batch->doc_begin ? batch->doc_begin[i] : 0;
            if (tok < 0 || tok >= cfg->vocab_size)
                return gk_fail(err, GK_EINPUT, "token %d at position %zu is outside the vocabulary [0, %d)", tok, i,
                               cfg->vocab_size);
            // A token continues its predecessor's document or starts one itself.
            if (t == 0 ? begin != 0 : begin != a->doc_begin_host[i - 1] && begin != t)
                return gk_fail(err, GK_EINPUT, "position %d of row %d: document start %d is neither %d nor %d", t, b,
                               begin, t == 0 ? 0 : a->doc_begin_host[i - 1], t);
            a->tokens_host[i] = tok;
            a->doc_begin_host[i] = begin;
            a->pos_host[i] = t - begin;
        }
    }
    return 0;
}

// Hands the host-written ids to the kernels (a no-op where they run on the host).
static void upload_ids(FN(acts) *a) {
    size_t bytes = (size_t)a->B * a->T * sizeof(int32_t);
    FN(buffer_upload)(a->tokens, a->tokens_host, bytes);
    FN(buffer_upload)(a->pos, a->pos_host, bytes);
    FN(buffer_upload)(a->doc_begin, a->doc_begin_host, bytes);
}

// The attention step of a layer: l->q, l->k, l->v (after RoPE) -> l->attn. Training
// and scoring attend within the batch; decoding (model/decode.inc) through a KV cache.
typedef void (*attend_fn)(void *ctx, FN(layer_acts) *l, int layer);

typedef struct {
    const model_config *cfg;
    FN(acts) *a;
    int window;
} batch_attention;

static void attend_in_batch(void *ctx, FN(layer_acts) *l, int layer) {
    batch_attention *b = ctx;
    attn_shape shape = FN(layer_attention_shape)(b->cfg, b->a, layer, b->window);
    FN(attention_forward)(l->attn, l->lse, l->q, l->k, l->v, &shape, b->a->scratch);
}

// One decoder layer: x -> x + PostNorm(Attn(Norm(x))) -> + PostNorm(MLP(Norm(.))).
static void layer_forward(const model_config *cfg, const FN(layer_weights) *w, FN(layer_acts) *l, real *out,
                          const FN(acts) *a, int layer, attend_fn attend, void *attend_ctx) {
    int N = a->B * a->T, d = cfg->d_model, ff = cfg->d_ff, qd = cfg_q_dim(cfg), kvd = cfg_kv_dim(cfg);
    FN(rmsnorm_forward)(l->xn_attn, l->rstd_in, l->resid_in, w->input_norm, N, d, cfg->rms_eps);
    FN(matmul_forward)(l->q, l->xn_attn, w->wq, N, d, qd);
    FN(matmul_forward)(l->k, l->xn_attn, w->wk, N, d, kvd);
    FN(matmul_forward)(l->v, l->xn_attn, w->wv, N, d, kvd);
    FN(rope_apply)(l->q, a->pos, a->rope_cos, a->rope_sin, N, cfg->n_heads, cfg->head_dim, false);
    FN(rope_apply)(l->k, a->pos, a->rope_cos, a->rope_sin, N, cfg->n_kv_heads, cfg->head_dim, false);
    attend(attend_ctx, l, layer);
    FN(matmul_forward)(l->o, l->attn, w->wo, N, qd, d);
    FN(rmsnorm_forward)(l->resid_mid, l->rstd_post_attn, l->o, w->post_attn_norm, N, d, cfg->rms_eps);
    FN(add)(l->resid_mid, l->resid_mid, l->resid_in, (size_t)N * d);
    FN(rmsnorm_forward)(l->xn_ffw, l->rstd_pre_ffw, l->resid_mid, w->pre_ffw_norm, N, d, cfg->rms_eps);
    FN(matmul_forward)(l->gate, l->xn_ffw, w->w_gate, N, d, ff);
    FN(matmul_forward)(l->up, l->xn_ffw, w->w_up, N, d, ff);
    FN(geglu_forward)(l->act, l->gate, l->up, (size_t)N * ff);
    FN(matmul_forward)(l->mlp_out, l->act, w->w_down, N, ff, d);
    // `out` may be this slot's resid_in (forward only), which is no longer needed here.
    FN(rmsnorm_forward)(out, l->rstd_post_ffw, l->mlp_out, w->post_ffw_norm, N, d, cfg->rms_eps);
    FN(add)(out, out, l->resid_mid, (size_t)N * d);
}

// Embedding and every layer over a->tokens at positions a->pos: leaves a->resid_final.
static void run_layers(const model_config *cfg, const FN(weights) *w, FN(acts) *a, attend_fn attend, void *ctx) {
    int N = a->B * a->T, d = cfg->d_model;
    FN(embed_forward)(a->layers[0].resid_in, w->embed, a->tokens, N, d);
    for (int l = 0; l < cfg->n_layers; l++) {
        FN(layer_acts) *la = &a->layers[l % a->n_slots];
        real *out = l + 1 < cfg->n_layers ? a->layers[(l + 1) % a->n_slots].resid_in : a->resid_final;
        layer_forward(cfg, &w->layers[l], la, out, a, l, attend, ctx);
    }
}

// The final norm of n positions: out [n, d] = RMSNorm(x [n, d]) (rstd [n] kept for backward).
static void final_norm(const model_config *cfg, const FN(weights) *w, real *out, real_acc *rstd, const real *x, int n) {
    FN(rmsnorm_forward)(out, rstd, x, w->final_norm, n, cfg->d_model, cfg->rms_eps);
}

int FN(model_forward)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, const token_batch *batch, int window,
                      gk_err *err) {
    if (copy_batch(cfg, a, batch, err)) return -1;
    upload_ids(a);
    batch_attention ctx = {cfg, a, window};
    run_layers(cfg, w, a, attend_in_batch, &ctx);
    final_norm(cfg, w, a->xn_final, a->rstd_final, a->resid_final, a->B * a->T);
    return 0;
}

#include "model/decode.inc" // the same layers through a KV cache
