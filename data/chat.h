// The Gemma chat template and its loss mask.
//
//   <bos><start_of_turn>user\n{system\n\n}{content}<end_of_turn>\n
//        <start_of_turn>model\n{content}<end_of_turn>\n ... [<start_of_turn>model\n]
//
// As the template in Gemma's tokenizer_config.json: "assistant" is written
// "model"; a leading system message is put, untrimmed and followed by a blank
// line, in front of the first user turn; contents are trimmed of Unicode
// whitespace (Jinja's trim = Python's str.strip); roles must alternate,
// starting with user. The rendered text leaves out <bos>: the caller prepends
// the id (a SentencePiece <bos> is a control piece, never matched in text).
#ifndef GK_CHAT_H
#define GK_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef enum { ROLE_SYSTEM, ROLE_USER, ROLE_MODEL } chat_role;

typedef struct {
    chat_role role;
    const char *content; // UTF-8, not necessarily NUL-terminated
    size_t len;
} chat_message;

// Byte range [begin, end) of the rendered text.
typedef struct {
    size_t begin, end;
} text_span;

typedef struct {
    char *text;          // rendered, NUL-terminated
    size_t len;
    text_span *trained;  // model turns: content and their <end_of_turn>
    size_t n_trained;
} chat_rendered;

// Parses "user", "assistant", "model" or "system" (else an error naming it).
int chat_role_parse(const char *name, size_t len, chat_role *role, gk_err *err);
int chat_render(const chat_message *messages, size_t n, bool add_generation_prompt, chat_rendered *out, gk_err *err);
void chat_rendered_free(chat_rendered *r);

// mask[i] = 1 when token i's byte range [offsets[2i], offsets[2i+1]) lies inside a trained span
// (offsets as tokenizer_encode gives them).
void chat_loss_mask(const size_t *offsets, size_t n_tokens, const chat_rendered *r, uint8_t *mask);

// Python's str.strip(): the length of s without leading/trailing Unicode whitespace.
const char *unicode_strip(const char *s, size_t len, size_t *out_len);

#endif
