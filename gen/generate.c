#include "gen/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"
#include "common/rng.h"
#include "common/timer.h"

typedef struct {
    long req;     // request index, -1 = free
    int32_t pos;  // position fed in the next step
    gen_output out;
} row_state;

typedef struct {
    const generator *g;
    const gen_request *reqs;
    size_t n, next;     // requests, the next one to start
    engine *engine;     // the model with a KV cache of [B, max_len]
    row_state *rows;
    int32_t *tokens, *pos; // [B]
    float *logits;         // [B, V] logits of the rows that choose a token this step
    int *choosing;         // [B] those rows
    sample_cand *work;     // [V]
    gen_output *outs;
    gen_stats *st;
} gen_run;

static int32_t token_at(const gen_run *r, const row_state *s) {
    const gen_request *q = &r->reqs[s->req];
    return (size_t)s->pos < q->n_prompt ? q->prompt[s->pos] : s->out.tokens[(size_t)s->pos - q->n_prompt];
}

static bool is_stop(const generator *g, int32_t id) {
    for (size_t i = 0; i < g->n_stop; i++)
        if (g->stop_ids[i] == id) return true;
    return false;
}

// Logits l [V] with a NaN or an infinity come from broken weights (or an overflow):
// an error naming the model, not a draw from them.
static int check_finite(const gen_run *r, const row_state *s, const float *l, int V, gk_err *err) {
    for (int i = 0; i < V; i++)
        if (!isfinite(l[i]))
            return gk_fail(err, GK_EINPUT, "%s: the logits are not finite (%g for id %d) at new token %zu of request %ld; "
                           "its weights may hold NaN or infinity",
                           r->g->model_name ? r->g->model_name : "the model", (double)l[i], i, s->out.n + 1, s->req + 1);
    return 0;
}

// Appends the token row b chooses from logits l [V]; finishes the request when due.
static int emit(gen_run *r, int b, const float *l, gk_err *err) {
    row_state *s = &r->rows[b];
    const gen_request *q = &r->reqs[s->req];
    int V = r->g->m->cfg.vocab_size;
    if (check_finite(r, s, l, V, err)) return -1;
    if (r->g->on_logits) r->g->on_logits(r->g->ctx, (size_t)s->req, s->out.n, l, V);
    int drawable = r->g->vocab_limit > 0 && r->g->vocab_limit < V ? r->g->vocab_limit : V;
    int32_t id = sample_token(l, drawable, &r->g->sampling, hash_uniform(q->seed, s->out.n), r->work);
    s->out.tokens[s->out.n++] = id; // room for max_new since the request started
    r->st->new_tokens++;
    bool stop = is_stop(r->g, id);
    if (!stop && s->out.n < (size_t)q->max_new) return 0;
    s->out.finish = stop ? GEN_STOP : GEN_LENGTH;
    int rc = r->g->on_done ? r->g->on_done(r->g->ctx, (size_t)s->req, &s->out, err) : 0;
    if (r->outs) r->outs[s->req] = s->out;
    else free(s->out.tokens);
    s->req = -1;
    return rc;
}

// Puts the next request on free row b, with room for all of its new tokens, and
// prefills its prompt (stepwise_prompts: empties the row for the steps to feed it).
static int start_row(gen_run *r, int b, gk_err *err) {
    row_state *s = &r->rows[b];
    const gen_request *q = &r->reqs[r->next];
    int32_t *tokens = gk_malloc((size_t)q->max_new * sizeof *tokens, err);
    if (!tokens) return -1;
    *s = (row_state){.req = (long)r->next++, .out.tokens = tokens};
    r->st->prompt_tokens += (int64_t)q->n_prompt;
    if (r->g->stepwise_prompts) {
        engine_decode_reset_row(r->engine, b);
        return 0;
    }
    s->pos = (int32_t)q->n_prompt; // the first step feeds the first new token
    return engine_decode_prefill(r->engine, b, q->prompt, (int)q->n_prompt, err);
}

// Starts requests on the free rows. Prefilled rows choose their first token at
// once; one that this finishes (a stop id, max_new 1) takes the next request.
static int start_rows(gen_run *r, gk_err *err) {
    size_t V = (size_t)r->g->m->cfg.vocab_size;
    for (;;) {
        int n = 0;
        for (int b = 0; b < r->g->batch && r->next < r->n; b++) {
            if (r->rows[b].req >= 0) continue;
            if (start_row(r, b, err)) return -1;
            r->choosing[n++] = b;
        }
        if (n == 0 || r->g->stepwise_prompts) return 0;
        if (engine_decode_logits(r->engine, r->choosing, n, r->logits, err)) return -1;
        for (int k = 0; k < n; k++)
            if (emit(r, r->choosing[k], r->logits + k * V, err)) return -1;
    }
}

static int step(gen_run *r, gk_err *err) {
    int B = r->g->batch;
    for (int b = 0; b < B; b++) {
        row_state *s = &r->rows[b];
        r->pos[b] = s->req >= 0 ? s->pos : -1;
        r->tokens[b] = s->req >= 0 ? token_at(r, s) : 0;
    }
    if (engine_decode_step(r->engine, r->tokens, r->pos, err)) return -1;
    size_t V = (size_t)r->g->m->cfg.vocab_size;
    int n = 0; // rows whose position predicts a new token (not idle, past their prompt): only they need logits
    for (int b = 0; b < B; b++) {
        row_state *s = &r->rows[b];
        if (s->req < 0) continue;
        if ((size_t)s->pos + 1 >= r->reqs[s->req].n_prompt) r->choosing[n++] = b;
        s->pos++;
    }
    if (n && engine_decode_logits(r->engine, r->choosing, n, r->logits, err)) return -1;
    for (int k = 0; k < n; k++)
        if (emit(r, r->choosing[k], r->logits + k * V, err)) return -1;
    return 0;
}

static int check_requests(const model_config *cfg, const gen_request *reqs, size_t n, int *max_len, gk_err *err) {
    *max_len = 1;
    for (size_t i = 0; i < n; i++) {
        size_t need = reqs[i].n_prompt + (size_t)reqs[i].max_new;
        if (reqs[i].n_prompt < 1 || reqs[i].max_new < 1)
            return gk_fail(err, GK_EINPUT, "request %zu: needs a prompt of at least one token and max_new >= 1", i + 1);
        if (need > (size_t)cfg->max_seq_len)
            return gk_fail(err, GK_EINPUT, "request %zu: %zu prompt + %d new tokens exceed the model's %d positions", i + 1,
                           reqs[i].n_prompt, reqs[i].max_new, cfg->max_seq_len);
        for (size_t t = 0; t < reqs[i].n_prompt; t++)
            if (reqs[i].prompt[t] < 0 || reqs[i].prompt[t] >= cfg->vocab_size)
                return gk_fail(err, GK_EINPUT, "request %zu: token %d is outside the vocabulary [0, %d)", i + 1,
                               reqs[i].prompt[t], cfg->vocab_size);
        if ((int)need > *max_len) *max_len = (int)need;
    }
    return 0;
}

int generate(const generator *g, const gen_request *reqs, size_t n, gen_output *outs, gen_stats *st, gk_err *err) {
    const model_config *cfg = &g->m->cfg;
    memset(st, 0, sizeof *st);
    if (outs) memset(outs, 0, n * sizeof *outs);
    int max_len, B = g->batch;
    if (check_requests(cfg, reqs, n, &max_len, err) || sampling_check(&g->sampling, err)) return -1;
    gen_run r = {.g = g, .reqs = reqs, .n = n, .outs = outs, .st = st};
    // Opened for decoding only, the engine only reads the weights.
    r.engine = g->engine;
    int rc = g->engine ? 0 : engine_open(&r.engine, (model_state *)g->m, g->backend, 0, 0, false, err);
    if (rc == 0) rc = engine_decode_init(r.engine, B, max_len, err);
    r.rows = gk_calloc((size_t)B, sizeof *r.rows, err);
    r.tokens = gk_calloc((size_t)B, sizeof *r.tokens, err);
    r.pos = gk_calloc((size_t)B, sizeof *r.pos, err);
    r.logits = gk_malloc((size_t)B * cfg->vocab_size * sizeof *r.logits, err);
    r.choosing = gk_calloc((size_t)B, sizeof *r.choosing, err);
    r.work = gk_malloc((size_t)cfg->vocab_size * sizeof *r.work, err);
    if (rc == 0 && (!r.rows || !r.tokens || !r.pos || !r.logits || !r.choosing || !r.work)) rc = -1;
    for (int b = 0; r.rows && b < B; b++) r.rows[b].req = -1;
    progress prog;
    progress_init(&prog, 2.0);
    double start = now_seconds();
    for (bool busy = true; rc == 0 && busy;) {
        if ((rc = start_rows(&r, err))) break;
        busy = false;
        for (int b = 0; b < B; b++) busy = busy || r.rows[b].req >= 0;
        if (busy) rc = step(&r, err);
        double t = now_seconds() - start;
        if (g->progress)
            progress_show(&prog, !busy, "generate: %zu/%zu requests started, %lld new tokens, %.1f tokens/s", r.next, n,
                          (long long)st->new_tokens, t > 0 ? (double)st->new_tokens / t : 0.0);
    }
    if (g->progress && rc) progress_clear(&prog);
    else if (g->progress) progress_done(&prog);
    st->seconds = now_seconds() - start;
    for (int b = 0; r.rows && b < B; b++)
        if (r.rows[b].req >= 0) free(r.rows[b].out.tokens); // an error stopped it
    if (!g->engine) engine_close(r.engine);
    free(r.rows);
    free(r.tokens);
    free(r.pos);
    free(r.logits);
    free(r.choosing);
    free(r.work);
    if (rc && outs) gen_outputs_free(outs, n);
    return rc;
}

void gen_outputs_free(gen_output *outs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(outs[i].tokens);
        outs[i].tokens = NULL;
    }
}
