// Every bf16 backend of the model handle against cpu fp32, through the handle
// (model/engine.h): cpu bf16 always, cuda bf16 in GPU builds (skipped, with
// the reason, where no CUDA device can be used). Both sides start from the
// same weights, rounded to bf16 first, so the differences measured are the
// bf16 recipe's: bf16 weights and activations into the products, float32
// statistics, bf16 gradients.
//   - a tiny model's loss (1e-2 relative) and every gradient tensor (5e-2);
//   - forward KL, reverse KL and JSD with an in-process teacher, a bf16
//     teacher for an fp32 student among them;
//   - a 50-step AdamW loss curve within 2% of fp32's at every step;
//   - greedy generation from a trained model: at least 90% of tokens agree;
//   - prefill against feeding prompts one position per step, on the backend
//     itself: the same logits (2e-2 of the largest) and greedy ids, but where
//     the two logits that decide differ by less than that.
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "distill/kd_head.h"
#include "model/bf16.h"
#include "model/engine.h"
#include "gen/generate.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_backends";

static const engine_backend FP32 = {DEVICE_CPU, PRECISION_FP32};

typedef struct {
    const char *name;
    engine_backend backend;
} backend_case;

static const backend_case CASES[] = {
    {"cpu_bf16", {DEVICE_CPU, PRECISION_BF16}},
#ifdef GK_WITH_CUDA
    {"cuda_bf16", {DEVICE_CUDA, PRECISION_BF16}},
#endif
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

static const backend_case *current; // the backend under test

// Skips the case when the backend cannot run here (a GPU build without a device).
#define NEEDS_BACKEND(tc)                                                                                           \
    do {                                                                                                            \
        engine *_e = NULL;                                                                                          \
        model_state _m;                                                                                             \
        gk_err _err = {0};                                                                                          \
        tiny_shape _s = {8, 8, 1, 1, 1, 4, 16, 16};                                                                 \
        GK_ASSERT(tiny_model(&_s, 1, &_m, NULL) == 0);                                                             \
        int _rc = engine_open(&_e, &_m, current->backend, 1, 1, false, &_err);                                      \
        engine_close(_e);                                                                                           \
        model_state_free(&_m);                                                                                      \
        if (_rc) {                                                                                                  \
            SKIP(tc, "%s cannot run here: %s", current->name, _err.msg);                                           \
            return;                                                                                                 \
        }                                                                                                           \
    } while (0)

static void round_params_to_bf16(model_state *m) {
    for (size_t i = 0; i < m->layout.n_floats; i++) m->params[i] = bf16_load(bf16_round(m->params[i]));
}

// A model of the shape with random weights (norm scales too, so that they matter), rounded to bf16.
static model_state bf16_model(const tiny_shape *s, uint64_t seed) {
    model_state m;
    GK_ASSERT(tiny_model(s, seed, &m, NULL) == 0);
    tiny_model_random_norms(&m, 0.3, seed + 99);
    round_params_to_bf16(&m);
    return m;
}

static const tiny_shape STUDENT = {64, 128, 4, 4, 2, 16, 384, 128}; // local/global layers, GQA, window < T
static const tiny_shape TEACHER = {96, 192, 4, 6, 2, 16, 384, 128};
enum { B = 2, T = 48 };

// Two rows of tokens, the second holding two documents.
typedef struct {
    int32_t tokens[B * T], doc_begin[B * T], targets[B * T];
} batch_data;

static void make_batch(batch_data *d, int vocab, uint64_t seed) {
    for (int i = 0; i < B * T; i++) d->tokens[i] = (int32_t)(hash64(seed + (uint64_t)i) % (uint64_t)vocab);
    for (int t = 0; t < T; t++) d->doc_begin[t] = 0, d->doc_begin[T + t] = t < 20 ? 0 : 20;
    for (int i = 0; i < B * T; i++) {
        bool last = i % T == T - 1 || (i >= T && i % T == 19);
        d->targets[i] = last ? -1 : d->tokens[i + 1];
    }
}

// Loss and gradients [n_floats] of one cross-entropy (kd NULL) or distillation step.
typedef struct {
    double loss;
    float *grads;
} step_result;

static step_result run_step(model_state *m, engine_backend be, const batch_data *d, kd_head_ctx *kd, gk_err *err) {
    step_result r = {NAN, calloc(m->layout.n_floats, sizeof(float))};
    engine *e = NULL;
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    xent_ctx xent = {.targets = d->targets, .scale = 1.0 / (B * T)};
    head_loss head = kd ? kd_head_loss(kd, true) : (head_loss){.kind = HEAD_XENT, .xent = &xent, .grads = true};
    int rc = engine_open(&e, m, be, B, T, true, err);
    if (rc == 0) rc = engine_forward(e, &batch, 0, err);
    if (rc == 0) rc = engine_head(e, &head, &r.loss, err);
    if (rc == 0) rc = engine_backward(e, err);
    if (rc == 0) rc = engine_grads(e, r.grads, err);
    engine_close(e);
    if (rc) r.loss = NAN;
    return r;
}

// The backend's loss within loss_tol and each gradient tensor within grad_tol of fp32's.
static void compare_steps(test_case *tc, const model_state *m, const step_result *want, const step_result *got,
                          double loss_tol, double grad_tol, const char *what) {
    double rel = fabs(got->loss - want->loss) / fabs(want->loss);
    CHECK(tc, rel <= loss_tol, "%s: %s loss %.9g, fp32 %.9g (relative %.3g)", what, current->name, got->loss,
          want->loss, rel);
    for (int t = 0; t < m->layout.n_tensors; t++) {
        const param_tensor *p = &m->layout.tensors[t];
        double e = rel_error_f32(got->grads + p->offset, want->grads + p->offset, p->numel);
        CHECK(tc, e <= grad_tol, "%s: gradient of %s differs by %.3g (relative to its largest value)", what, p->name, e);
    }
}

static void loss_and_gradients(test_case *tc) {
    NEEDS_BACKEND(tc);
    model_state m = bf16_model(&STUDENT, 11);
    batch_data d;
    make_batch(&d, STUDENT.vocab, 5);
    gk_err err = {0};
    step_result want = run_step(&m, FP32, &d, NULL, &err), got = run_step(&m, current->backend, &d, NULL, &err);
    CHECK(tc, !isnan(want.loss) && !isnan(got.loss), "%s", err.msg);
    if (!tc->failed) compare_steps(tc, &m, &want, &got, 1e-2, 5e-2, "cross-entropy");
    free(want.grads);
    free(got.grads);
    model_state_free(&m);
}

// Forward KL, reverse KL and JSD at temperature 2 with half hard-label CE: the
// student and teacher on the backend under test against both in fp32; and the
// teacher alone on it (a bf16 teacher for an fp32 student).
static void distillation(test_case *tc) {
    NEEDS_BACKEND(tc);
    model_state s = bf16_model(&STUDENT, 21), t = bf16_model(&TEACHER, 22);
    batch_data d;
    make_batch(&d, STUDENT.vocab, 6);
    const kd_divergence divs[] = {KD_FORWARD_KL, KD_REVERSE_KL, KD_JSD};
    const char *names[] = {"forward_kl", "reverse_kl", "jsd"};
    gk_err err = {0};
    for (int k = 0; k < 3 && !tc->failed; k++) {
        kd_config cfg = {.divergence = divs[k], .alpha = 0.5, .temperature = 2, .beta = 0.5};
        step_result r[3];
        for (int side = 0; side < 3; side++) { // fp32/fp32, backend/backend, fp32 student / backend teacher
            engine_backend sb = side == 1 ? current->backend : FP32, tb = side == 0 ? FP32 : current->backend;
            engine *te = NULL;
            kd_head_ctx kd = {0};
            token_batch batch = {.B = B, .T = T, .tokens = d.tokens, .doc_begin = d.doc_begin};
            int rc = engine_open(&te, &t, tb, B, T, false, &err);
            if (rc == 0) rc = engine_forward(te, &batch, 0, &err);
            if (rc == 0) rc = kd_head_init(&kd, &cfg, (size_t)B * T, &err);
            kd_head_use_engine(&kd, te);
            kd.targets = d.targets;
            kd.scale = 1.0 / (B * T);
            r[side] = rc == 0 ? run_step(&s, sb, &d, &kd, &err) : (step_result){NAN, NULL};
            CHECK(tc, !isnan(r[side].loss), "%s: %s", names[k], err.msg);
            kd_head_free(&kd);
            engine_close(te);
        }
        char what[96];
        snprintf(what, sizeof what, "%s, student and teacher", names[k]);
        if (!tc->failed) compare_steps(tc, &s, &r[0], &r[1], 1e-2, 5e-2, what);
        snprintf(what, sizeof what, "%s, fp32 student with the teacher on the backend", names[k]);
        if (!tc->failed) compare_steps(tc, &s, &r[0], &r[2], 1e-2, 5e-2, what);
        for (int side = 0; side < 3; side++) free(r[side].grads);
    }
    model_state_free(&s);
    model_state_free(&t);
}

// ---------------------------------------------------------------- training

// Text from a fixed random Markov chain: each token's successor is next[token]
// nine times in ten; a small model learns it within a few hundred steps.
static void markov_batch(int32_t *tokens, int32_t *targets, int rows, int len, int vocab, uint64_t seed) {
    for (int r = 0; r < rows; r++) {
        int32_t tok = (int32_t)(hash64(seed * 1000 + (uint64_t)r) % (uint64_t)vocab);
        for (int t = 0; t <= len; t++) {
            if (t < len) tokens[r * len + t] = tok;
            if (t > 0) targets[r * len + t - 1] = tok;
            uint64_t h = hash64(seed * 7919 + (uint64_t)(r * (len + 1) + t));
            tok = h % 10 ? (int32_t)((tok * 37 + 11) % vocab) : (int32_t)((h >> 8) % (uint64_t)vocab);
        }
    }
}

static const tiny_shape LEARNER = {64, 128, 2, 4, 2, 16, 128, 128};
enum { TB = 8, TT = 32 };

// steps AdamW steps on the Markov text; losses[steps] when not NULL.
static int train(model_state *m, engine_backend be, int steps, double lr, double *losses, gk_err *err) {
    engine *e = NULL;
    optimizer o;
    int32_t tokens[TB * TT], targets[TB * TT];
    int rc = optimizer_init(&o, OPTIM_ADAMW, 0.9, 0.95, 1e-8, 0.1, &m->layout, err);
    if (rc == 0) rc = engine_open(&e, m, be, TB, TT, true, err);
    if (rc == 0) rc = engine_attach_optimizer(e, &o, NULL, 0, err);
    for (int s = 0; rc == 0 && s < steps; s++) {
        markov_batch(tokens, targets, TB, TT, m->cfg.vocab_size, (uint64_t)s);
        token_batch batch = {.B = TB, .T = TT, .tokens = tokens};
        xent_ctx xent = {.targets = targets, .scale = 1.0 / (TB * TT)};
        head_loss head = {.kind = HEAD_XENT, .xent = &xent, .grads = true};
        double loss;
        engine_zero_grads(e);
        rc = engine_forward(e, &batch, 0, err);
        if (rc == 0) rc = engine_head(e, &head, &loss, err);
        if (rc == 0) rc = engine_backward(e, err);
        if (rc == 0) rc = engine_optimizer_step(e, lr, (float)grad_clip_scale(engine_grad_norm(e), 1.0), err);
        if (losses) losses[s] = loss;
    }
    if (rc == 0) rc = engine_sync_host(e, err);
    engine_close(e);
    optimizer_free(&o);
    return rc;
}

static void loss_curve(test_case *tc) {
    NEEDS_BACKEND(tc);
    enum { STEPS = 50 };
    model_state a = bf16_model(&LEARNER, 31), b = bf16_model(&LEARNER, 31);
    double want[STEPS], got[STEPS];
    gk_err err = {0};
    CHECK(tc, train(&a, FP32, STEPS, 3e-3, want, &err) == 0 && train(&b, current->backend, STEPS, 3e-3, got, &err) == 0,
          "%s", err.msg);
    double worst = 0;
    int at = 0;
    for (int s = 0; !tc->failed && s < STEPS; s++) {
        double rel = fabs(got[s] - want[s]) / want[s];
        if (rel > worst) worst = rel, at = s;
    }
    CHECK(tc, worst <= 0.02, "step %d: %s loss %.6g, fp32 %.6g (%.2f%% apart)", at + 1, current->name, got[at], want[at],
          100 * worst);
    CHECK(tc, want[STEPS - 1] < 0.7 * want[0], "the curve does not fall (%.4g -> %.4g): nothing was compared",
          want[0], want[STEPS - 1]);
    model_state_free(&a);
    model_state_free(&b);
}

static void greedy_generation(test_case *tc) {
    NEEDS_BACKEND(tc);
    model_state m = bf16_model(&LEARNER, 41);
    gk_err err = {0};
    CHECK(tc, train(&m, FP32, 300, 3e-3, NULL, &err) == 0, "%s", err.msg);
    enum { PROMPTS = 6, NEW = 40 };
    gen_request reqs[PROMPTS];
    int32_t prompts[PROMPTS][4];
    for (int p = 0; p < PROMPTS; p++) {
        for (int t = 0; t < 4; t++) prompts[p][t] = (int32_t)(hash64(500 + (uint64_t)(p * 4 + t)) % LEARNER.vocab);
        reqs[p] = (gen_request){prompts[p], 4, NEW, (uint64_t)p};
    }
    gen_output want[PROMPTS], got[PROMPTS];
    gen_stats st;
    generator g = {.m = &m, .backend = FP32, .sampling = {.greedy = true}, .batch = 3};
    int rc = tc->failed ? -1 : generate(&g, reqs, PROMPTS, want, &st, &err);
    g.backend = current->backend;
    if (rc == 0) rc = generate(&g, reqs, PROMPTS, got, &st, &err);
    CHECK(tc, rc == 0, "%s", err.msg);
    int same = 0, total = 0, learned = 0;
    for (int p = 0; rc == 0 && p < PROMPTS; p++)
        for (int t = 0; t < NEW; t++) {
            same += want[p].tokens[t] == got[p].tokens[t];
            int32_t prev = t ? want[p].tokens[t - 1] : prompts[p][3];
            learned += want[p].tokens[t] == (prev * 37 + 11) % LEARNER.vocab;
            total++;
        }
    CHECK(tc, !total || learned >= total * 9 / 10, "the fp32 model did not learn the chain (%d of %d tokens follow it)",
          learned, total);
    CHECK(tc, !total || same >= total * 9 / 10, "%s agrees with fp32 on %d of %d greedy tokens", current->name, same,
          total);
    if (rc == 0) gen_outputs_free(want, PROMPTS), gen_outputs_free(got, PROMPTS);
    model_state_free(&m);
}

enum { PF_REQ = 4, PF_NEW = 12, PF_V = 384 }; // PF_V: STUDENT's vocabulary
typedef float pf_log[PF_REQ][PF_NEW][PF_V];    // the logits behind each generated token
static pf_log pf_logits[2];                    // stepwise, prefill

static void keep_pf_logits(void *ctx, size_t request, size_t index, const float *logits, int V) {
    pf_log *log = ctx;
    memcpy((*log)[request][index], logits, (size_t)V * sizeof *logits);
}

static void prefill_matches_stepwise(test_case *tc) {
    NEEDS_BACKEND(tc);
    model_state m = bf16_model(&STUDENT, 51);
    int V = STUDENT.vocab;
    GK_ASSERT(V == PF_V);
    static const int lengths[PF_REQ] = {1, 5, 23, 40}; // past the window of 16
    int32_t prompts[PF_REQ][40];
    gen_request reqs[PF_REQ];
    for (int p = 0; p < PF_REQ; p++) {
        for (int t = 0; t < lengths[p]; t++) prompts[p][t] = (int32_t)(hash64(700 + (uint64_t)(p * 40 + t)) % V);
        reqs[p] = (gen_request){prompts[p], (size_t)lengths[p], PF_NEW, (uint64_t)p};
    }
    gen_output outs[2][PF_REQ];
    gen_stats st;
    gk_err err = {0};
    int rc = 0;
    for (int way = 0; rc == 0 && way < 2; way++) {
        generator g = {.m = &m, .backend = current->backend, .sampling = {.greedy = true}, .batch = 3,
                       .on_logits = keep_pf_logits, .ctx = &pf_logits[way], .stepwise_prompts = way == 0};
        rc = generate(&g, reqs, PF_REQ, outs[way], &st, &err);
        if (rc && way == 1) gen_outputs_free(outs[0], PF_REQ);
    }
    CHECK(tc, rc == 0, "%s", err.msg);
    for (int p = 0; rc == 0 && p < PF_REQ; p++) {
        double worst = 0, scale = 0;
        for (int i = 0; i < PF_NEW; i++) {
            const float *want = pf_logits[0][p][i], *got = pf_logits[1][p][i];
            for (int v = 0; v < V; v++) worst = fmax(worst, fabs(got[v] - want[v])), scale = fmax(scale, fabs(want[v]));
            int32_t a = outs[0][p].tokens[i], b = outs[1][p].tokens[i];
            if (a == b) continue;
            double gap = fabs(want[a] - want[b]); // ids part: only where the stepwise run nearly tied them
            CHECK(tc, gap <= 2e-2 * scale, "request %d token %d: %d with prefill, %d stepwise, %.3g apart in logits", p, i,
                  b, a, gap);
            break;
        }
        CHECK(tc, worst <= 2e-2 * scale, "request %d: %s prefill logits %.3g from stepwise (largest %.3g)", p,
              current->name, worst, scale);
    }
    if (rc == 0) gen_outputs_free(outs[0], PF_REQ), gen_outputs_free(outs[1], PF_REQ);
    model_state_free(&m);
}

int main(void) {
    for (int c = 0; c < N_CASES; c++) {
        current = &CASES[c];
        char name[96];
        const struct {
            const char *what;
            void (*fn)(test_case *);
        } tests[] = {{"loss_and_gradients", loss_and_gradients},
                     {"distillation_objectives", distillation},
                     {"adamw_loss_curve_50_steps", loss_curve},
                     {"greedy_generation_of_a_trained_model", greedy_generation},
                     {"prefill_matches_stepwise", prefill_matches_stepwise}};
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
            snprintf(name, sizeof name, "%s_%s", current->name, tests[i].what);
            test_run(name, tests[i].fn);
        }
    }
    return test_main_result();
}
