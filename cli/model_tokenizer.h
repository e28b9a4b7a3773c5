// The tokenizer a command runs a model with (generate, chat, eval): --tokenizer
// or the model dir's own, checked against what the model dir records.
#ifndef GK_CLI_MODEL_TOKENIZER_H
#define GK_CLI_MODEL_TOKENIZER_H

#include <stdbool.h>

#include "common/error.h"
#include "data/tokenizer/tokenizer.h"

// The tokenizer for a model: `path` when given, else a tokenizer.json or
// tokenizer.model in the model dir (*tok = NULL when neither, an error naming
// --tokenizer when required); it must be the one the model records, when it records one.
int tokenizer_for_model(const char *model_dir, const char *path, bool required, tokenizer **tok, gk_err *err);

#endif
