// Log-likelihood tasks from JSONL, in the lm-evaluation-harness style:
//   multiple choice   {"context": "...", "choices": ["...", ...], "label": i}
//   log-likelihood    {"context": "...", "continuation": "..."}
// A request scores continuation given context: like the harness, trailing
// spaces of the context move to the front of the continuation, the whole
// text and the context are encoded (context with <bos>), and the continuation
// is the whole's tokens after the context's. Choices are appended to the
// context as given. Multiple choice: acc takes the choice of highest
// log-likelihood; acc_norm divides it by the choice's length in characters.
#ifndef GK_EVAL_TASKS_H
#define GK_EVAL_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"
#include "data/tokenizer/tokenizer.h"
#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    double loglikelihood; // summed log p over the continuation tokens
    bool is_greedy;       // every continuation token is the model's top choice
    int tokens;           // continuation tokens
} ll_result;

typedef struct {
    const model_state *m;
    const tokenizer *tok;
    int window; // > 0: sliding-window override
    int batch;  // rows per forward pass
    engine_backend backend;
} task_runner;

// Multiple choice: appends {"file", "examples", "acc", "acc_norm"} to out.
int task_multiple_choice(const task_runner *r, const char *path, strbuf *out, gk_err *err);
// Log-likelihood pairs: appends {"file", "examples", "loglikelihood", "results": [{...}, ...]} to out.
int task_loglikelihood(const task_runner *r, const char *path, strbuf *out, gk_err *err);

// Scores n (context, continuation) pairs (packed into rows); used by both tasks.
int score_requests(const task_runner *r, const char *const *contexts, const char *const *continuations, size_t n,
                   ll_result *out, gk_err *err);

#endif
