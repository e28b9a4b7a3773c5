// How many bytes of text each token id stands for, for bits per byte: the
// UTF-8 length of what the tokenizer decodes the id to, alone ("▁" is one
// space; a byte-fallback token <0xHH> is one byte; special and control
// tokens are 0). Summed over a document's ids this is the document's length.
#ifndef GK_EVAL_TOKEN_BYTES_H
#define GK_EVAL_TOKEN_BYTES_H

#include <stdint.h>

#include "data/tokenizer/tokenizer.h"

// *out gets [vocab] byte counts (malloc'd); ids the tokenizer lacks count 0.
int token_byte_lengths(const tokenizer *t, int32_t vocab, uint32_t **out, gk_err *err);

#endif
