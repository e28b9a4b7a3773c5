// gemmakd tokenize: text and JSONL files -> HDF5 token shards.
//
// Inputs: a file ending in .jsonl or .json holds one record per line
// (data/records.h); its first record decides whether it is a text file
// ({"text"}) or a chat file ({"messages"}, {"conversation"}, {"prompt"}),
// and every record must be of that kind. Any other file is plain text: one
// document, or several split on `doc_separator`.
//
// Documents: text becomes <bos> text <eos>; a conversation becomes <bos> and
// the Gemma chat template, with a loss mask that is 1 on model turns (content
// and <end_of_turn>). Shards carry /loss_mask when any input is a chat file
// (text documents then have a mask of ones).
//
// Output: out_dir/<name>-00000.h5, -00001.h5, ... of about shard_tokens
// tokens each, and with val_fraction > 0 a share of the documents (chosen by a
// hash of their text, so the same documents on every run) in
// out_dir/<val_name>-*.h5. Documents are encoded in parallel and written in
// input order: the output does not depend on the thread count. Each split's
// out_dir/<name>.shards.json says "incomplete" from before its first shard and
// lists the shards once all are written (data/shard_set.h), so that readers
// refuse what a killed run left.
#ifndef GK_TOKENIZE_H
#define GK_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct {
    const char *tokenizer_path;
    const char *const *inputs;
    size_t n_inputs;
    const char *out_dir;
    const char *name;          // shard name prefix (default "train")
    const char *val_name;      // validation prefix (default "val")
    double val_fraction;       // 0 .. 1
    uint64_t shard_tokens;     // tokens per shard before starting the next one
    const char *doc_separator; // plain text: split on this (NULL: one document per file)
    bool skip_bad;             // count and skip malformed records instead of stopping
    int zstd_level;            // 0: default
    bool progress;             // a progress line on stderr
} tokenize_options;

typedef struct {
    uint64_t docs, chat_docs, val_docs, tokens, val_tokens, bytes, bad_records, shards;
} tokenize_stats;

int tokenize_run(const tokenize_options *o, tokenize_stats *stats, gk_err *err);

#endif
