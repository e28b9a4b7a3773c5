// Gemma 2 model configuration: read from and written to Hugging Face config.json.
#ifndef GK_MODEL_CONFIG_H
#define GK_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"

// d_model: a row of it fits a kernel's stack. q_dim (heads x head_dim, also the widest kv_dim):
// its products with positions and tokens stay far inside the ints the kernels index with.
enum { MODEL_MAX_LAYERS = 512, MODEL_MAX_D_MODEL = 32768, MODEL_MAX_Q_DIM = 1 << 17 };

typedef struct {
    int d_model;                 // hidden_size
    int d_ff;                    // intermediate_size (per GeGLU branch)
    int n_layers;                // num_hidden_layers
    int n_heads;                 // num_attention_heads
    int n_kv_heads;              // num_key_value_heads
    int head_dim;                // head_dim
    int vocab_size;              // vocab_size
    int max_seq_len;             // max_position_embeddings
    int sliding_window;          // keys allowed on local layers: 0 <= i - j < sliding_window
    double query_pre_attn_scalar; // attention scores are scaled by its -1/2 power
    double attn_softcap;         // attn_logit_softcapping; 0 = off (null in config.json)
    double final_softcap;        // final_logit_softcapping; 0 = off
    double rope_theta;           // RoPE base
    double rms_eps;              // rms_norm_eps
    int pad_id, eos_id, bos_id;
    bool is_local[MODEL_MAX_LAYERS]; // sliding-window layer (default: even layer index)
} model_config;

// Parses and validates a config.json text; `source` names it in errors.
int model_config_parse(const char *text, size_t len, const char *source, model_config *cfg, gk_err *err);
int model_config_load(const char *path, model_config *cfg, gk_err *err);
// Checks internal consistency (used after parsing and for configs built in code).
int model_config_validate(const model_config *cfg, const char *source, gk_err *err);
// Writes a config.json that transformers loads as Gemma2ForCausalLM.
void model_config_to_json(const model_config *cfg, const char *torch_dtype, strbuf *out);
int model_config_save(const model_config *cfg, const char *path, const char *torch_dtype, gk_err *err);

// Sequences of seq_len tokens must fit the model's positions (max_position_embeddings):
// else an error "<source>: sequences of N tokens exceed the M positions (...) of <model>".
int model_config_check_seq_len(const model_config *cfg, int64_t seq_len, const char *source, const char *model,
                               gk_err *err);

// Names the first field (by its config.json name) in which a and b differ,
// with both values, into what[n]; returns 0 when they describe the same model.
int model_config_difference(const model_config *a, const model_config *b, char *what, size_t n);

// Derived sizes (model_config_validate keeps them below MODEL_MAX_Q_DIM).
static inline int cfg_q_dim(const model_config *c) { return c->n_heads * c->head_dim; }
static inline int cfg_kv_dim(const model_config *c) { return c->n_kv_heads * c->head_dim; }

#endif
