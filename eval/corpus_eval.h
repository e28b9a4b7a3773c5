// Perplexity and bits per byte of a model on token shards, and its agreement
// with a teacher (in process or from a teacher cache) on the same tokens.
// The shards are cut into the loader's windows of seq_len + 1 tokens, in order
// (consecutive windows share one token, so every token after a shard's first
// is predicted once, with the context of its window and document); document
// starts are not predicted.
#ifndef GK_EVAL_CORPUS_EVAL_H
#define GK_EVAL_CORPUS_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    const char *const *data; // shard names or glob patterns
    size_t n_data;
    int seq_len;
    int64_t max_tokens;           // > 0: only the first windows holding about this many tokens
    int window;                   // > 0: sliding-window override
    int batch;                    // windows per forward pass
    const uint32_t *token_bytes;  // [vocab] (eval/token_bytes.h), or NULL: no byte count
    const char *tokenizer_sha256; // the model's tokenizer (checked against the shards'), or NULL
    const char *teacher_dir;      // NULL, or a teacher model dir
    const char *cache_dir;        // NULL, or a teacher cache of these shards at this seq_len
    engine_backend backend;       // of the model and of an in-process teacher
} corpus_eval_job;

typedef struct {
    int64_t windows, tokens, bytes; // tokens: predicted positions; bytes: their text (-1 without token_bytes)
    double nll;                     // summed -log p, nats
    bool teacher;
    double kl;                      // summed KL(teacher || model) (a cache: its sparse estimate)
    int64_t top1_agree, top1_known; // positions where the top choices agree / where the teacher's is known
    char cache_method[16];          // "topk" or "sample" with a cache
} corpus_eval_result;

int corpus_eval(const model_state *m, const corpus_eval_job *j, corpus_eval_result *r, gk_err *err);

#endif
