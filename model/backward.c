// The Gemma 2 backward pass: from the head's gradient a->d_xn_final through
// the final norm and every layer down to the embedding. Gradients are added.
#include "model/real.h"
#include "model/carve.h"
#include "model/layer_shape.h"

static grad_space carve_space(const model_config *cfg, const FN(acts) *a, const attn_shape *shape) {
    grad_space g;
    carver c = {a->scratch, 0};
    carve_grad_space(&g, cfg, (size_t)a->B * a->T, shape, &c);
    GK_ASSERT(c.used <= a->scratch_floats);
    return g;
}

// On entry g->d_resid holds dL/d(layer output); on exit dL/d(layer input).
static void layer_backward(const model_config *cfg, const FN(layer_weights) *w, FN(layer_weights) *dw,
                           const FN(layer_acts) *l, const FN(acts) *a, const attn_shape *shape, grad_space *g) {
    int N = a->B * a->T, d = cfg->d_model, ff = cfg->d_ff, qd = cfg_q_dim(cfg), kvd = cfg_kv_dim(cfg);
    // out = resid_mid + PostNorm(down(gelu(gate) * up)); the identity path keeps d_resid.
    FN(rmsnorm_backward)(g->d_a, dw->post_ffw_norm, g->d_resid, l->mlp_out, w->post_ffw_norm, l->rstd_post_ffw, N, d,
                         false, g->partials);
    FN(matmul_backward)(g->d_ff1, dw->w_down, g->d_a, l->act, w->w_down, N, ff, d, false);
    FN(geglu_backward)(g->d_ff1, g->d_ff2, g->d_ff1, l->gate, l->up, (size_t)N * ff);
    FN(matmul_backward)(g->d_b, dw->w_gate, g->d_ff1, l->xn_ffw, w->w_gate, N, d, ff, false);
    FN(matmul_backward)(g->d_b, dw->w_up, g->d_ff2, l->xn_ffw, w->w_up, N, d, ff, true);
    FN(rmsnorm_backward)(g->d_resid, dw->pre_ffw_norm, g->d_b, l->resid_mid, w->pre_ffw_norm, l->rstd_pre_ffw, N, d,
                         true, g->partials);
    // resid_mid = resid_in + PostNorm(o_proj(attention(rope(q), rope(k), v)))
    FN(rmsnorm_backward)(g->d_a, dw->post_attn_norm, g->d_resid, l->o, w->post_attn_norm, l->rstd_post_attn, N, d,
                         false, g->partials);
    FN(matmul_backward)(g->d_attn, dw->wo, g->d_a, l->attn, w->wo, N, qd, d, false);
    FN(attention_backward)(g->dq, g->dk, g->dv, g->d_attn, l->q, l->k, l->v, l->lse, shape, g->attn);
    FN(rope_apply)(g->dq, a->pos, a->rope_cos, a->rope_sin, N, cfg->n_heads, cfg->head_dim, true);
    FN(rope_apply)(g->dk, a->pos, a->rope_cos, a->rope_sin, N, cfg->n_kv_heads, cfg->head_dim, true);
    FN(matmul_backward)(g->d_b, dw->wq, g->dq, l->xn_attn, w->wq, N, d, qd, false);
    FN(matmul_backward)(g->d_b, dw->wk, g->dk, l->xn_attn, w->wk, N, d, kvd, true);
    FN(matmul_backward)(g->d_b, dw->wv, g->dv, l->xn_attn, w->wv, N, d, kvd, true);
    FN(rmsnorm_backward)(g->d_resid, dw->input_norm, g->d_b, l->resid_in, w->input_norm, l->rstd_in, N, d, true,
                         g->partials);
}

void FN(model_backward)(const model_config *cfg, const FN(weights) *w, FN(weights) *grads, FN(acts) *a) {
    GK_ASSERT(a->n_slots == cfg->n_layers && a->d_xn_final);
    int N = a->B * a->T, d = cfg->d_model;
    attn_shape shape0 = FN(layer_attention_shape)(cfg, a, 0, 0); // window 0: the config's
    grad_space g = carve_space(cfg, a, &shape0);
    FN(rmsnorm_backward)(g.d_resid, grads->final_norm, a->d_xn_final, a->resid_final, w->final_norm, a->rstd_final, N,
                         d, false, g.partials);
    for (int l = cfg->n_layers - 1; l >= 0; l--) {
        attn_shape shape = FN(layer_attention_shape)(cfg, a, l, 0);
        layer_backward(cfg, &w->layers[l], &grads->layers[l], &a->layers[l], a, &shape, &g);
    }
    FN(embed_backward)(grads->embed, g.d_resid, a->tokens, N, d, cfg->pad_id, g.embed_work);
}
