// Prefill (model_prefill, engine_decode_prefill): a prompt run through every
// layer at once leaves what feeding it one position per step leaves.
//   - the float64 twin, below the model handle: a prefilled row's cache slots
//     and outputs equal a stepped row's (1e-12), for a prompt past the sliding
//     window, prefilled over an earlier sequence, and through the steps after;
//   - generate() on cpu fp32 and bf16: the logits behind every generated token
//     and the greedy ids equal the one-position path's, with local layers' rings
//     shorter than the prompts and with every layer keeping every position;
//   - continuous batching: rows prefilled at different times, among rows that
//     are decoding, give what they give alone;
//   - bad input (a prompt longer than the cache, an id outside the vocabulary,
//     no tokens, a row outside the cache) is an error, and the engine goes on.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "gen/generate.h"
#include "model/gemma2.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_prefill";

enum { VOCAB = 600, MAX_POS = 96 };

// A tiny model of 3 layers (local, global, local) with the given sliding window.
static int make_model(int window, model_state *m, gk_err *err) {
    int rc = tiny_model(&(tiny_shape){32, 48, 3, 4, 2, window, VOCAB, MAX_POS}, 5, m, err);
    if (rc == 0) tiny_model_random_norms(m, 0.5, 77);
    return rc;
}

static int32_t token(uint64_t seed, int i) { return (int32_t)(3 + hash64(seed * 1000 + (uint64_t)i) % (VOCAB - 3)); }

// max |a - b| / max |b| over n values.
static double rel_apart(const double *a, const double *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(a[i] - b[i]));
        scale = fmax(scale, fabs(b[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

// ---------------------------------------------------------------- the float64 twin

// Row `got` of cache c against row `want`: every layer's slot positions, and the
// keys and values of the slots that hold one.
static double rows_apart(const model_config *cfg, const kv_cache_f64 *c, int got, int want, bool *same_slots) {
    size_t kvd = (size_t)cfg_kv_dim(cfg);
    double worst = 0;
    *same_slots = true;
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t S = (size_t)c->slots[l];
        const int32_t *pg = c->slot_pos[l] + got * S, *pw = c->slot_pos[l] + want * S;
        *same_slots = *same_slots && !memcmp(pg, pw, S * sizeof *pg);
        for (size_t j = 0; j < S; j++) {
            if (pw[j] < 0) continue;
            size_t g = (got * S + j) * kvd, w = (want * S + j) * kvd;
            worst = fmax(worst, rel_apart(c->k[l] + g, c->k[l] + w, kvd));
            worst = fmax(worst, rel_apart(c->v[l] + g, c->v[l] + w, kvd));
        }
    }
    return worst;
}

static int step2(const model_state *m, const weights_f64 *w, kv_cache_f64 *c, int32_t t0, int32_t p0, int32_t t1,
                 int32_t p1, gk_err *err) {
    return model_decode_step_f64(&m->cfg, w, c, (int32_t[]){t0, t1}, (int32_t[]){p0, p1}, err);
}

static void twin_prefill_equals_steps(test_case *tc) {
    enum { MAX_LEN = 40, EARLIER = 30, PROMPT = 11, AFTER = 8 };
    model_state m;
    gk_err err = {0};
    CHECK(tc, make_model(4, &m, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    double *p = malloc(m.layout.n_floats * sizeof *p);
    for (size_t i = 0; i < m.layout.n_floats; i++) p[i] = m.params[i];
    weights_f64 w;
    weights_point_f64(&m.layout, p, &w);
    kv_cache_f64 c;
    int rc = kv_cache_init_f64(&c, &m.cfg, 2, MAX_LEN, &err);
    int32_t ids[PROMPT + AFTER];
    for (int t = 0; t < PROMPT + AFTER; t++) ids[t] = token(1, t);
    for (int t = 0; rc == 0 && t < EARLIER; t++) rc = step2(&m, &w, &c, token(2, t), t, 0, -1, &err); // row 0: another sequence
    for (int t = 0; rc == 0 && t < PROMPT; t++) rc = step2(&m, &w, &c, 0, -1, ids[t], t, &err);       // row 1: the prompt, stepped
    if (rc == 0) rc = model_prefill_f64(&m.cfg, &w, &c, 0, ids, PROMPT, &err); // row 0: prefilled over it, no reset
    CHECK(tc, rc == 0, "%s", err.msg);
    size_t d = (size_t)m.cfg.d_model;
    bool same_slots;
    for (int s = 0; !tc->failed && s <= AFTER; s++) {
        const char *when = s == 0 ? "after the prefill" : "after a step";
        double out = rel_apart(c.acts.xn_final, c.acts.xn_final + d, d), kv = rows_apart(&m.cfg, &c, 0, 1, &same_slots);
        CHECK(tc, out <= 1e-12, "%s (position %d): the prefilled row's output is %.3g from the stepped row's", when,
              PROMPT - 1 + s, out);
        CHECK(tc, same_slots && kv <= 1e-12, "%s (position %d): slots %s, keys and values %.3g apart", when,
              PROMPT - 1 + s, same_slots ? "the same" : "differ", kv);
        if (s < AFTER && step2(&m, &w, &c, ids[PROMPT + s], PROMPT + s, ids[PROMPT + s], PROMPT + s, &err))
            CHECK(tc, 0, "%s", err.msg);
    }
    kv_cache_free_f64(&c);
    free(p);
    model_state_free(&m);
}

// ---------------------------------------------------------------- through generate()

enum { N_REQ = 7, MAX_NEW = 24 };
static const int PROMPT_LEN[N_REQ] = {1, 3, 4, 5, 9, 17, 30}; // around and past a window of 4
static const int NEW[N_REQ] = {12, 20, 5, 1, 16, 24, 10};    // 1: the request ends with its prefill

typedef struct {
    int32_t prompts[N_REQ][32];
    gen_request reqs[N_REQ];
} request_set;

static void make_requests(request_set *r) {
    for (int q = 0; q < N_REQ; q++) {
        for (int t = 0; t < PROMPT_LEN[q]; t++) r->prompts[q][t] = t == 0 ? 2 : token(10 + (uint64_t)q, t);
        r->reqs[q] = (gen_request){r->prompts[q], (size_t)PROMPT_LEN[q], NEW[q], (uint64_t)q};
    }
}

// The logits behind every generated token: [N_REQ, MAX_NEW, VOCAB].
typedef struct {
    gen_output outs[N_REQ];
    float logits[N_REQ][MAX_NEW][VOCAB];
} gen_log;

static void log_logits(void *ctx, size_t request, size_t index, const float *logits, int V) {
    gen_log *log = ctx;
    memcpy(log->logits[request][index], logits, (size_t)V * sizeof *logits);
}

// Greedy generation of the requests, batch rows at a time; log->outs to free with gen_outputs_free.
static int run_logged(const model_state *m, engine_backend be, const request_set *r, int batch, bool stepwise,
                      gen_log *log, gk_err *err) {
    generator g = {.m = m, .backend = be, .sampling = {.greedy = true}, .batch = batch, .on_logits = log_logits,
                   .ctx = log, .stepwise_prompts = stepwise};
    gen_stats st;
    return generate(&g, r->reqs, N_REQ, log->outs, &st, err);
}

// How far run `got` is from run `want`: the largest logit difference relative to the
// largest |logit|, over each request's tokens up to where their ids part (*same: nowhere).
static double runs_apart(const gen_log *got, const gen_log *want, bool *same) {
    double worst = 0, scale = 0;
    *same = true;
    for (int q = 0; q < N_REQ; q++) {
        const gen_output *a = &got->outs[q], *b = &want->outs[q];
        *same = *same && a->n == b->n;
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            for (int v = 0; v < VOCAB; v++) {
                worst = fmax(worst, fabs(got->logits[q][i][v] - want->logits[q][i][v]));
                scale = fmax(scale, fabs(want->logits[q][i][v]));
            }
            if (a->tokens[i] != b->tokens[i]) {
                *same = false;
                break;
            }
        }
    }
    return scale > 0 ? worst / scale : worst;
}

static const struct {
    const char *name;
    engine_backend backend;
    double tol; // logits, relative to the largest
} BACKENDS[] = {
    {"fp32", {DEVICE_CPU, PRECISION_FP32}, 1e-5},
    {"bf16", {DEVICE_CPU, PRECISION_BF16}, 2e-3}, // bf16 activations: the two attentions may round apart
};

// Runs `got` and `want` (batch, stepwise) on each backend, on a model with that
// sliding window, and compares them.
static void compare_runs(test_case *tc, int window, int got_batch, bool got_stepwise, int want_batch,
                         bool want_stepwise, const char *what) {
    model_state m;
    gk_err err = {0};
    CHECK(tc, make_model(window, &m, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    request_set r;
    make_requests(&r);
    gen_log *got = malloc(sizeof *got), *want = malloc(sizeof *want);
    for (size_t b = 0; !tc->failed && b < sizeof BACKENDS / sizeof BACKENDS[0]; b++) {
        int rc = run_logged(&m, BACKENDS[b].backend, &r, got_batch, got_stepwise, got, &err);
        if (rc == 0) rc = run_logged(&m, BACKENDS[b].backend, &r, want_batch, want_stepwise, want, &err);
        CHECK(tc, rc == 0, "%s: %s", BACKENDS[b].name, err.msg);
        if (rc) break;
        bool same;
        double apart = runs_apart(got, want, &same);
        CHECK(tc, same, "%s, %s: the greedy ids differ", BACKENDS[b].name, what);
        CHECK(tc, apart <= BACKENDS[b].tol, "%s, %s: logits %.3g apart (relative), more than %.3g", BACKENDS[b].name,
              what, apart, BACKENDS[b].tol);
        gen_outputs_free(got->outs, N_REQ);
        gen_outputs_free(want->outs, N_REQ);
    }
    free(got);
    free(want);
    model_state_free(&m);
}

static void prefill_matches_stepwise(test_case *tc) {
    const int windows[] = {4, 2 * MAX_POS}; // rings of 4 slots on local layers; every layer keeping every position
    for (int i = 0; i < 2 && !tc->failed; i++) {
        char what[96];
        snprintf(what, sizeof what, "window %d: prefill against one position per step, batch 3", windows[i]);
        compare_runs(tc, windows[i], 3, false, 3, true, what);
    }
}

static void prefilled_rows_match_alone(test_case *tc) {
    compare_runs(tc, 4, 3, false, 1, false, "batch 3 (rows prefilled between other rows' steps) against batch 1");
}

// ---------------------------------------------------------------- bad input

static void bad_prompts_are_errors(test_case *tc) {
    model_state m;
    gk_err err = {0};
    CHECK(tc, make_model(4, &m, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    int32_t ids[9] = {2, 5, 6, 7, 8, 9, 10, 11, 12}, bad[3] = {2, VOCAB, 5}, negative[2] = {2, -1};
    const struct {
        int row, n;
        const int32_t *tokens;
        int code;
        const char *want;
    } cases[] = {
        {0, 9, ids, GK_EINPUT, "the cache holds 1 to 8 positions"},
        {1, 3, bad, GK_EINPUT, "token 600 at position 1 is outside the vocabulary [0, 600)"},
        {0, 2, negative, GK_EINPUT, "token -1 at position 1"},
        {0, 0, ids, GK_EINPUT, "a prompt of 0 tokens"},
        {2, 3, ids, GK_EINTERNAL, "row 2 of a 2-row cache"},
        {-1, 3, ids, GK_EINTERNAL, "row -1"},
    };
    for (size_t b = 0; !tc->failed && b < sizeof BACKENDS / sizeof BACKENDS[0]; b++) {
        engine *e = NULL;
        CHECK(tc, engine_open(&e, &m, BACKENDS[b].backend, 0, 0, false, &err) == 0 &&
                      engine_decode_init(e, 2, 8, &err) == 0, "%s", err.msg);
        for (size_t i = 0; !tc->failed && i < sizeof cases / sizeof cases[0]; i++) {
            err = (gk_err){0};
            int rc = engine_decode_prefill(e, cases[i].row, cases[i].tokens, cases[i].n, &err);
            CHECK(tc, rc == -1 && err.code == cases[i].code && strstr(err.msg, cases[i].want), "%s case %zu: rc %d, %s",
                  BACKENDS[b].name, i, rc, err.msg);
        }
        float logits[2 * VOCAB]; // the engine goes on: a prompt that fits, in both rows
        bool finite = true;
        int rc = engine_decode_prefill(e, 0, ids, 8, &err);
        if (rc == 0) rc = engine_decode_prefill(e, 1, ids, 1, &err);
        if (rc == 0) rc = engine_decode_logits(e, (int[]){0, 1}, 2, logits, &err);
        for (int v = 0; rc == 0 && v < 2 * VOCAB; v++) finite = finite && isfinite(logits[v]);
        CHECK(tc, rc == 0 && finite, "%s: a good prompt after the bad ones: %s", BACKENDS[b].name,
              rc ? err.msg : "non-finite logits");
        engine_close(e);
    }
    model_state_free(&m);
}

int main(void) {
    test_run("twin_prefill_equals_steps", twin_prefill_equals_steps);
    test_run("prefill_matches_stepwise", prefill_matches_stepwise);
    test_run("prefilled_rows_match_alone", prefilled_rows_match_alone);
    test_run("bad_prompts_are_errors", bad_prompts_are_errors);
    return test_main_result();
}
