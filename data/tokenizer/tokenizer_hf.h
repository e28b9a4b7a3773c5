// The tokenizer.json model shared by its loader (tokenizer_hf.c) and its
// encoder/decoder (tokenizer_hf_encode.c). Internal.
#ifndef GK_DATA_TOKENIZER_HF_H
#define GK_DATA_TOKENIZER_HF_H

#include "common/json.h"
#include "data/tokenizer/tokenizer_impl.h"

typedef struct {
    char *content;       // [len] (owned)
    size_t len;
    int32_t id;
    bool special, normalized, lstrip, rstrip, single_word;
} hf_added;

// normalizer steps (a Sequence is flattened)
typedef enum { HF_NORM_REPLACE, HF_NORM_PREPEND } hf_norm_op;
// decoder steps
typedef enum { HF_DEC_REPLACE, HF_DEC_BYTE_FALLBACK, HF_DEC_FUSE } hf_dec_op;
// pre_tokenizer Split behaviours
typedef enum {
    HF_SPLIT_REMOVED,
    HF_SPLIT_ISOLATED,
    HF_SPLIT_MERGED_WITH_PREVIOUS,
    HF_SPLIT_MERGED_WITH_NEXT,
    HF_SPLIT_CONTIGUOUS,
} hf_split_behavior;

typedef struct {
    int op;                  // hf_norm_op or hf_dec_op
    char *pattern;           // Replace / Split: the String pattern [pattern_len] (owned)
    size_t pattern_len;
    char *content;           // Replace: replacement; Prepend: the prefix [content_len] (owned)
    size_t content_len;
} hf_step;

struct hf_model {
    // BPE model
    tok_strmap vocab;        // token -> id
    int32_t *bmp_ids;        // [0x10000] id of the one-character token per code point, -1 none
    int32_t byte_ids[256];   // "<0xXX>" tokens, -1 when missing
    int32_t unk;             // -1: unknown characters are dropped (unk_token null)
    bool fuse_unk, byte_fallback, ignore_merges;
    bpe_pairs merges;        // (left, right) -> (rank = list position, merged id)

    // added tokens
    hf_added *added;         // [n_added], in file order
    size_t n_added;
    tok_strmap added_ids;    // content -> id
    tok_trie raw_trie;       // normalized == false tokens, matched on the input (value: index in added)
    tok_trie norm_trie;      // normalized == true tokens, matched on normalized text
    uint8_t *special;        // [vocab_size] 1: decode(skip_special) drops it

    // pipeline
    hf_step *norm;           // [n_norm]
    size_t n_norm;
    bool split;              // pre_tokenizer Split with a String pattern
    hf_step split_pattern;
    hf_split_behavior split_behavior;
    bool split_invert;
    bool has_decoder;
    hf_step *dec;            // [n_dec]
    size_t n_dec;
    bool has_template;       // post_processor TemplateProcessing: ids before/after $A
    int32_t *tmpl_before, *tmpl_after;
    size_t n_before, n_after;
};

// Reading the pipeline parts of the file (tokenizer_hf_pipeline.c): each takes
// the part's (non-null) tree; `base` is the file line of the tree's line 1.
typedef struct {
    const tokenizer *t; // name, vocab_size, assigned
    hf_model *m;
    gk_err *err;
} hf_parse;
// "<file>:<line>: <message>" as a GK_EINPUT error; returns -1.
// s[0..n) and a NUL in a new allocation (JSON strings may hold NULs: not strndup).
char *hf_dup_bytes(const char *s, size_t n, gk_err *err);
int hf_fail_line(const char *file, gk_err *err, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int hf_read_normalizer(hf_parse *p, const json_value *v, int base, int depth);
int hf_read_pre_tokenizer(hf_parse *p, const json_value *v, int base, int depth);
int hf_read_decoder(hf_parse *p, const json_value *v, int base, int depth);
int hf_read_post_processor(hf_parse *p, const json_value *v, int base, int depth);

// Normalizes text[0..n) with the model's steps into a malloc'd string (for the
// patterns of normalized added tokens).
int hf_normalize_string(const hf_model *m, const char *text, size_t n, char **out, size_t *out_len, gk_err *err);

#endif
