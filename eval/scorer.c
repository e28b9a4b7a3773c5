#include "eval/scorer.h"

#include <stdlib.h>

int scorer_head_chunk(int vocab, int tokens) {
    int chunk = (int)((32u << 20) / sizeof(float) / (unsigned)vocab);
    if (chunk < 1) chunk = 1;
    return chunk < tokens ? chunk : tokens;
}

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
    return s->tokens && s->doc_begin && s->targets && s->logprob && s->greedy && s->top1 ? 0 : -1;
}

int scorer_run(scorer *s, kd_head_ctx *teacher, double *nll, gk_err *err) {
    token_batch batch = {.B = s->B, .T = s->T, .tokens = s->tokens, .doc_begin = s->doc_begin};
    if (engine_forward(s->engine, &batch, s->window, err)) return -1;
    eval_head_ctx c = {.targets = s->targets, .logprob = s->logprob, .greedy = s->greedy, .teacher = teacher,
                       .top1 = teacher ? s->top1 : NULL};
    if (teacher) teacher->targets = s->targets;
    head_loss head = {.kind = HEAD_CALLBACK, .fn = eval_head, .ctx = &c,
                      .chunk = scorer_head_chunk(s->m->cfg.vocab_size, s->B * s->T)};
    if (teacher) teacher->failed = 0;
    if (engine_head(s->engine, &head, nll, err)) return -1;
    return teacher ? kd_head_check(teacher, err) : 0;
}

void scorer_free(scorer *s) {
    engine_close(s->engine);
    free(s->tokens);
    free(s->doc_begin);
    free(s->targets);
    free(s->logprob);
    free(s->greedy);
    free(s->top1);
}
