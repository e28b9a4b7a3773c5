// The tokenizer a model runs with (generate, chat, eval, on-policy training): --tokenizer
// or the model dir's own, checked against what the model dir records.
#ifndef GK_GEN_MODEL_TOKENIZER_H
#define GK_GEN_MODEL_TOKENIZER_H

#include <stdbool.h>

#include "common/error.h"
#include "data/tokenizer/tokenizer.h"
#include "model/config.h"

// The tokenizer for a model: `path` when given, else a tokenizer.json or
// tokenizer.model in the model dir (*tok = NULL when neither, an error naming
// --tokenizer when required); it must be the one the model records, when it records one.
int tokenizer_for_model(const char *model_dir, const char *path, bool required, tokenizer **tok, gk_err *err);

// The ids that end an answer: the config's <eos> and the tokenizer's <end_of_turn> (when there
// is a tokenizer and it has one).
size_t stop_ids_for(const model_config *cfg, const tokenizer *tok, int32_t stops[2]);

#endif
