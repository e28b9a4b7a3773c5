// What a model dir holds about its tokenizer: gemmakd.json, {"tokenizer_sha256": ...}
// (the tokenizer of the data the model was trained on; teachers and students
// are checked against it), and the tokenizer files of the Hugging Face layout
// (tokenizer.json or tokenizer.model).
#ifndef GK_MODEL_DIR_H
#define GK_MODEL_DIR_H

#include <stdbool.h>

#include "common/error.h"

// Writes DIR/gemmakd.json recording tokenizer_sha256.
int model_dir_write_tokenizer(const char *dir, const char *tokenizer_sha256, gk_err *err);
// The dir's tokenizer file: DIR/tokenizer.json, else DIR/tokenizer.model
// (malloc'd); NULL when it has neither.
char *model_dir_tokenizer_file(const char *dir);
// The tokenizer a model dir was trained with: sha256 of its tokenizer.json or
// tokenizer.model, else the "tokenizer_sha256" of its gemmakd.json. *found is
// false when the dir records none.
int model_dir_tokenizer(const char *dir, char sha256[65], bool *found, gk_err *err);

#endif
