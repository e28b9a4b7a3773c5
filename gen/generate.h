// Generation with a KV cache: requests (prompt ids, a token budget, a seed)
// are decoded `batch` rows at a time; a row that finishes takes the next
// request at once (continuous batching). A row that takes a request prefills
// its prompt: every layer over all of the prompt's positions in one pass, which
// leaves their keys and values in the row's cache and gives the first new
// token; each step then feeds every row its latest token. A request's draws
// come from its own seed, so its output does not depend on the batch or on the
// other requests.
#ifndef GK_GEN_GENERATE_H
#define GK_GEN_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "gen/sample.h"
#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    const int32_t *prompt; // [n_prompt] >= 1 ids
    size_t n_prompt;
    int max_new;           // >= 1
    uint64_t seed;
} gen_request;

typedef enum { GEN_STOP, GEN_LENGTH } gen_finish; // a stop id (kept as the last token) / max_new reached

typedef struct {
    int32_t *tokens; // [n] generated ids (malloc'd)
    size_t n;
    gen_finish finish;
} gen_output;

// Called with the logits [V] (after the soft-cap) that chose generated token `index` of `request`.
typedef void (*gen_logits_fn)(void *ctx, size_t request, size_t index, const float *logits, int V);
// Called when request `request` is finished; out stays owned by the generator until generate returns.
typedef int (*gen_done_fn)(void *ctx, size_t request, const gen_output *out, gk_err *err);

typedef struct {
    const model_state *m;
    const char *model_name;  // names the model in errors (its directory); NULL: "the model"
    engine_backend backend;
    engine *engine;          // optional: an open engine of m to decode with (a trainer's, with its weights as
                             // they are now); NULL: one is opened on `backend` for the run
    sampling sampling;
    const int32_t *stop_ids; // ids that end a request (none: n_stop 0)
    size_t n_stop;
    int batch;
    int vocab_limit;         // > 0: draw only ids below it (a model vocabulary padded past its tokenizer's)
    gen_logits_fn on_logits; // optional
    gen_done_fn on_done;     // optional
    void *ctx;
    bool progress;           // a progress line on stderr
    bool stepwise_prompts;   // feed prompts one position per step (the path before prefill; bench baseline)
} generator;

typedef struct {
    int64_t prompt_tokens, new_tokens;
    double seconds;
} gen_stats;

// outs[n] (may be NULL when on_done consumes the results; else free with gen_outputs_free).
int generate(const generator *g, const gen_request *reqs, size_t n, gen_output *outs, gen_stats *st, gk_err *err);
void gen_outputs_free(gen_output *outs, size_t n);

#endif
