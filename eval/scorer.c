#include "eval/scorer.h"

#include <stdlib.h>

int scorer_init(scorer *s, const model_state *m, engine_backend backend, int B, int T, int window, gk_err *err) {
    *s = (scorer){.m = m, .B = B, .T = T, .window = window};
    size_t n = (size_t)B * T;
    // Opened without training buffers, the engine only reads the weights.
    if (engine_open(&s->engine, (model_state *)m, backend, B, T, false, err)) return -1;
    s->tokens = gk_calloc(n, sizeof *s->tokens, err);
    s->doc_begin = gk_calloc(n, sizeof *s->doc_begin, err);
    s->targets = gk_calloc(n, sizeof *s->targets, err);
    s->logprob = gk_calloc(n, sizeof *s->logprob, err);
    s->greedy = gk_calloc(n, 1, err);
    s->top1 = gk_calloc(n, 1, err);
    if (!(s->tokens && s->doc_begin && s->targets && s->logprob && s->greedy && s->top1)) return -1;
    s->head = (eval_head_ctx){.targets = s->targets, .logprob = s->logprob, .greedy = s->greedy};
    return eval_head_init(&s->head, n, err);
}

int scorer_run(scorer *s, kd_head_ctx *teacher, double *nll, gk_err *err) {
    token_batch batch = {.B = s->B, .T = s->T, .tokens = s->tokens, .doc_begin = s->doc_begin};
    if (engine_forward(s->engine, &batch, s->window, err)) return -1;
    s->head.teacher = teacher;
    s->head.top1 = teacher ? s->top1 : NULL;
    head_loss head = eval_head_loss(&s->head);
    return engine_head(s->engine, &head, nll, err);
}

void scorer_free(scorer *s) {
    engine_close(s->engine);
    free(s->tokens);
    free(s->doc_begin);
    free(s->targets);
    free(s->logprob);
    free(s->greedy);
    free(s->top1);
    eval_head_free(&s->head);
}
