// A model scoring packed batches of B rows x T tokens for evaluation: the
// caller fills tokens, doc_begin and targets; scorer_run fills logprob and
// greedy (and top1 with a teacher) per position. No gradients, no [B*T x V].
#ifndef GK_EVAL_SCORER_H
#define GK_EVAL_SCORER_H

#include "eval/eval_head.h"
#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    const model_state *m;
    engine *engine;   // forward only: [B, T]
    int B, T, window; // window > 0 overrides the local layers' sliding window
    int32_t *tokens, *doc_begin, *targets; // [B*T] inputs, document starts within the row, targets (-1: none)
    double *logprob;                       // [B*T] out
    uint8_t *greedy, *top1;                // [B*T] out
    eval_head_ctx head;
} scorer;

int scorer_init(scorer *s, const model_state *m, engine_backend backend, int B, int T, int window, gk_err *err);
// Scores the batch; with a teacher (its logits or rows ready for this batch),
// also KL sums (in teacher->sums) and top1. *nll: summed -log p(target).
int scorer_run(scorer *s, kd_head_ctx *teacher, double *nll, gk_err *err);
void scorer_free(scorer *s);

#endif
