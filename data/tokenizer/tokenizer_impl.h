// Internals shared by the tokenizer files (data/tokenizer/); not an API.
// tokenizer.c: the public API; tokenizer_util.c: string map, byte trie, UTF-8
// repair, output vector; bpe.c: the merge engine; tokenizer_json.c: the
// streaming JSON reader; tokenizer_hf.c (+ _pipeline.c, _encode.c): tokenizer.json;
// tokenizer_spm.c (+ _encode.c): tokenizer.model.
#ifndef GK_DATA_TOKENIZER_IMPL_H
#define GK_DATA_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer.h"

#define TOK_MAX_TEXT ((size_t)1 << 30) // bytes per encode call (positions stay < 2^32)
#define TOK_MAX_IDS (1 << 24)          // vocabulary ids must be below this

// ---------------------------------------------------------------- string -> id map

typedef struct {
    uint32_t off, len; // key bytes at arena + off
    uint32_t hash;
    int32_t value;     // -1 = empty slot
} tok_strslot;

typedef struct {
    tok_strslot *slots; // [mask + 1]
    size_t mask, count;
    char *arena;        // key bytes, NUL after each key
    size_t arena_len, arena_cap;
} tok_strmap;

int strmap_init(tok_strmap *m, size_t expected, gk_err *err);
void strmap_free(tok_strmap *m);
// Adds key -> value (value >= 0). When the key is already there nothing
// changes and *old gets its value; otherwise *old = -1.
int strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value, int32_t *old, gk_err *err);
int32_t strmap_get(const tok_strmap *m, const char *key, size_t len); // -1 if absent

// ---------------------------------------------------------------- byte trie

// Longest-prefix matching of a set of byte strings (added tokens, user-defined pieces).
typedef struct {
    int32_t first[256]; // node after the first byte (-1 none)
    bpe_pairs edges;    // (node, byte) -> child node
    int32_t *value;     // [n_nodes] pattern value, -1 when no pattern ends here
    size_t n_nodes, cap_nodes;
    size_t n_patterns;
} tok_trie;

int trie_init(tok_trie *t, gk_err *err);
void trie_free(tok_trie *t);
// Adds a non-empty pattern; a duplicate keeps the first value.
int trie_add(tok_trie *t, const char *s, size_t len, int32_t value, gk_err *err);
// Length of the longest pattern that prefixes s[0..n) (0 if none) and its value.
size_t trie_longest(const tok_trie *t, const char *s, size_t n, int32_t *value);

// ---------------------------------------------------------------- UTF-8

// Byte length of the character whose (valid) lead byte is c.
static inline size_t utf8_char_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
// Code point of the valid character at s (length utf8_char_len(s[0])).
static inline uint32_t utf8_code_point(const unsigned char *s) {
    if (s[0] < 0x80) return s[0];
    if (s[0] < 0xE0) return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    if (s[0] < 0xF0) return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}
// True when s[0..n) is valid UTF-8.
bool utf8_is_valid(const char *s, size_t n);
// The repair described in tokenizer.h; when the text needed it, *map gets
// [*out_len + 1] input offsets (out byte i came from the input character at map[i]).
int utf8_repair(const char *text, size_t len, char **out, size_t *out_len, uint32_t **map, gk_err *err);

// ---------------------------------------------------------------- encode output

typedef struct {
    int32_t *ids;  // [n]
    size_t *offs;  // [n, 2] when want_offsets
    size_t n, cap;
    bool want_offsets;
} tok_out;

int tok_out_push(tok_out *o, int32_t id, size_t start, size_t end, gk_err *err);

// ---------------------------------------------------------------- the tokenizer

typedef struct hf_model hf_model;
typedef struct spm_model spm_model;

struct tokenizer {
    tokenizer_format format;
    char *name;            // file name for messages
    char sha256[65];
    int32_t vocab_size;
    char *strings;         // id -> token text: strings[string_off[id] .. string_off[id + 1])
    size_t *string_off;    // [vocab_size + 1]
    uint8_t *assigned;     // [vocab_size] 1 when the id has a token
    int32_t bos_id, eos_id, pad_id, unk_id;
    hf_model *hf;
    spm_model *spm;
};

// Fills strings/string_off from (text, len) per id; ids with text == NULL are unassigned.
int tok_set_strings(tokenizer *t, int32_t vocab_size, const char *const *text, const size_t *len, gk_err *err);

int hf_load(tokenizer *t, const char *json, size_t len, gk_err *err);
void hf_free(hf_model *m);
int hf_encode(const tokenizer *t, const char *s, size_t n, bool add_bos, tok_out *out, gk_err *err);
int hf_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special, strbuf *text, gk_err *err);
int32_t hf_token_id(const tokenizer *t, const char *token, size_t len);

int spm_load(tokenizer *t, const unsigned char *data, size_t len, gk_err *err);
void spm_free(spm_model *m);
int spm_encode(const tokenizer *t, const char *s, size_t n, bool add_bos, tok_out *out, gk_err *err);
int spm_decode(const tokenizer *t, const int32_t *ids, size_t n, strbuf *text, gk_err *err);
int32_t spm_token_id(const tokenizer *t, const char *token, size_t len);

#endif
