// Text <-> token ids for Gemma's two tokenizer files, behind one API:
//   * Hugging Face tokenizer.json (model type BPE), as the `tokenizers` library runs it;
//   * SentencePiece tokenizer.model (ModelProto, model_type BPE), as libsentencepiece runs it.
// A loaded tokenizer is immutable: encode and decode may run on many threads at once.
//
// Invalid UTF-8 in the input text: each maximal invalid subpart is read as one
// U+FFFD, exactly as Python's bytes.decode("utf-8", errors="replace"); the
// reference libraries take Python strings, so they see that same text.
#ifndef GK_DATA_TOKENIZER_H
#define GK_DATA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct tokenizer tokenizer;

typedef enum {
    TOKENIZER_HF_JSON = 1,   // tokenizer.json
    TOKENIZER_SPM_MODEL = 2, // tokenizer.model
} tokenizer_format;

// Loads a tokenizer file. The format is read from the content (a JSON object,
// else a protobuf); a ".model" name picks the protobuf reading for a file that
// starts with a newline byte (which is also how a ModelProto starts).
int tokenizer_load(const char *path, tokenizer **out, gk_err *err);
// The same from bytes in memory; `name` stands for the file in messages.
int tokenizer_load_bytes(const void *data, size_t len, const char *name, tokenizer **out, gk_err *err);
void tokenizer_free(tokenizer *t);

// Encodes text[0..len) (len < 1 GiB). *ids gets *n ids (malloc'd). When
// `offsets` is not NULL it gets [*n, 2] byte ranges [start, end) into `text`:
// the input bytes each token came from. Byte-fallback tokens of one character
// all get that character's range; an added/user-defined token covers its match;
// tokens the template adds (BOS) get [0, 0). add_bos: add what the
// tokenizer.json post_processor adds (Gemma: <bos>), or the model's BOS id for
// a .model (or for a tokenizer.json without a post_processor).
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids,
                     size_t **offsets, size_t *n, gk_err *err);

// Decodes ids into malloc'd, NUL-terminated UTF-8 text (*len bytes), the way the
// reference library decodes: tokenizer.json through its decoder chain
// (skip_special drops special added tokens, as tokenizers' decode(ids,
// skip_special_tokens=True)); .model as SentencePieceProcessor.decode
// (control pieces are always dropped; skip_special is ignored). An id outside
// the vocabulary is an error (tokenizers would skip it silently).
int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **text,
                     size_t *len, gk_err *err);

tokenizer_format tokenizer_kind(const tokenizer *t);
// Ids are 0 .. vocab_size-1 (a tokenizer.json may leave some unassigned).
int32_t tokenizer_vocab_size(const tokenizer *t);
// Id of an exact token string ("<end_of_turn>"), or -1.
int32_t tokenizer_token_id(const tokenizer *t, const char *token);
// The string of an id (HF token / SentencePiece piece, "▁" as stored) and its
// length in *len (not NUL-terminated; may contain NUL bytes), or NULL.
const char *tokenizer_token_text(const tokenizer *t, int32_t id, size_t *len);
// -1 when the tokenizer has none. tokenizer.json: <bos> from the template (else a
// "<bos>"/"<s>" token), "<eos>"/"</s>", "<pad>", the model's unk_token;
// .model: bos/eos/pad pieces as SentencePieceProcessor::bos_id() etc.
int32_t tokenizer_bos_id(const tokenizer *t);
int32_t tokenizer_eos_id(const tokenizer *t);
int32_t tokenizer_pad_id(const tokenizer *t);
int32_t tokenizer_unk_id(const tokenizer *t);
// SHA-256 of the file bytes, 64 lowercase hex digits.
const char *tokenizer_sha256(const tokenizer *t);

// The input reading described at the top: returns 0 and *out = NULL when
// text[0..len) is valid UTF-8; otherwise a malloc'd repaired copy (*out_len
// bytes, NUL-terminated). Exposed for tests and for callers that store text.
int tokenizer_repair_utf8(const char *text, size_t len, char **out, size_t *out_len, gk_err *err);

#endif
