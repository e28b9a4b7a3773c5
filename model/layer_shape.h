// Attention geometry of a layer, shared by the forward and backward passes.
// Include after model/real.h.
#ifndef GK_LAYER_SHAPE_H
#define GK_LAYER_SHAPE_H

// window > 0 overrides the config's sliding window on local layers.
static inline attn_shape FN(layer_attention_shape)(const model_config *cfg, const FN(acts) *a, int layer, int window) {
    attn_shape s = {.B = a->B, .T = a->T, .n_heads = cfg->n_heads, .n_kv_heads = cfg->n_kv_heads,
                    .head_dim = cfg->head_dim, .scale = 1.0 / sqrt(cfg->query_pre_attn_scalar),
                    .softcap = cfg->attn_softcap, .doc_begin = a->doc_begin, .n_threads = a->n_threads};
    s.window = cfg->is_local[layer] ? (window > 0 ? window : cfg->sliding_window) : 0;
    return s;
}

#endif
