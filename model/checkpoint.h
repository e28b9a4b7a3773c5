// Model directories in the Hugging Face layout: config.json plus
// model.safetensors, or shards with model.safetensors.index.json.
// Loading checks that the files hold exactly the tensors of the layout.
#ifndef GK_CHECKPOINT_H
#define GK_CHECKPOINT_H

#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"

// A loaded model: config, layout and a flat float32 parameter buffer.
typedef struct {
    model_config cfg;
    param_layout layout;
    float *params; // [layout.n_floats]
} model_state;

// Reads DIR/config.json and the weights (single file or sharded). Every
// tensor of the layout must be present once with its shape; unknown tensors
// are rejected, except lm_head.weight when it equals the embedding (tied).
int model_load_dir(const char *dir, model_state *m, gk_err *err);
// Loads weights only, into an existing layout/buffer.
int model_load_weights(const char *dir, const param_layout *layout, float *params, gk_err *err);
// huggingface_hub's default largest weights file.
#define MODEL_SHARD_BYTES 5000000000ull

// Writes DIR/config.json and weights (dtype ST_F32 or ST_BF16); shards of at
// most max_shard_bytes (0 = one file) with an index, as huggingface_hub does;
// and DIR/gemmakd.json when tokenizer_sha256 is not NULL or "". DIR must
// exist; each file is written atomically.
int model_save_dir(const char *dir, const model_state *m, st_dtype dtype, size_t max_shard_bytes,
                   const char *tokenizer_sha256, gk_err *err);
// The same as a complete model dir that must not exist yet: written into
// "DIR.tmp-<pid>", then renamed to DIR, so DIR never holds half a model.
int model_create_dir(const char *dir, const model_state *m, st_dtype dtype, size_t max_shard_bytes,
                     const char *tokenizer_sha256, gk_err *err);
void model_state_free(model_state *m);

#endif
