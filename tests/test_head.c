// The output head tiled over the vocabulary against today's chunked head (the
// same model through the model handle, every logit of a chunk at once) and
// the float64 twin's chunked head: the loss and every parameter's gradient
// (the head's dL/dE directly, its dL/dhidden through the backward pass), for
// cross-entropy, every distillation objective (an in-process teacher, and
// sparse teacher rows) and evaluation; for tile sizes that do not divide the
// vocabulary, a vocabulary that is not a multiple of 16, masked targets and
// a row with none.
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "distill/kd_head.h"
#include "eval/scorer.h"
#include "model/engine.h"
#include "tests/check.h"
#include "tests/fixtures.h"
#include "tests/kd_reference.h"

const char *test_program = "test_head";

enum { B = 3, T = 20, N = B * T };
static const tiny_shape SHAPE = {32, 64, 2, 4, 2, 8, 1003, 64}; // vocab 1003: no multiple of 16
static const tiny_shape TEACHER = {48, 96, 2, 6, 2, 8, 1003, 64};
static const tile_shape SHAPES[] = {{0, 0}, {7, 97}, {64, 1003}, {1, 1000}, {N, 16}};
enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0] };

// Tokens in three rows: row 1 holds two documents, row 2 has no target at all;
// row 0 masks every third target (an SFT mask).
typedef struct {
    int32_t tokens[N], doc_begin[N], targets[N];
} batch_data;

static void make_batch(batch_data *d, int vocab) {
    for (int i = 0; i < N; i++) d->tokens[i] = (int32_t)(hash64(77 + (uint64_t)i) % (uint64_t)vocab);
    for (int t = 0; t < T; t++) {
        d->doc_begin[t] = d->doc_begin[2 * T + t] = 0;
        d->doc_begin[T + t] = t < 9 ? 0 : 9;
    }
    for (int i = 0; i < N; i++) {
        int r = i / T, t = i % T;
        bool end = t == T - 1 || (r == 1 && t == 8);
        d->targets[i] = end || r == 2 || (r == 0 && t % 3 == 0) ? -1 : d->tokens[i + 1];
    }
}

static size_t count_targets(const batch_data *d) {
    size_t n = 0;
    for (int i = 0; i < N; i++) n += d->targets[i] >= 0;
    return n;
}

// Loss and all gradients [n_floats] of one step on backend be with head h (its xent ctx from d).
typedef struct {
    double loss;
    float *grads;
} result;

static result run(model_state *m, engine_backend be, const batch_data *d, head_loss h, gk_err *err) {
    result r = {NAN, calloc(m->layout.n_floats, sizeof(float))};
    xent_ctx xent = {.targets = d->targets, .scale = 1.0 / (double)count_targets(d)};
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    if (h.kind == HEAD_XENT) h.xent = &xent;
    if (h.kind == HEAD_CALLBACK && !h.ctx) h.ctx = &xent;
    h.grads = true;
    engine *e = NULL;
    int rc = engine_open(&e, m, be, B, T, true, err);
    if (rc == 0) rc = engine_forward(e, &batch, 0, err);
    if (rc == 0) rc = engine_head(e, &h, &r.loss, err);
    if (rc == 0) rc = engine_backward(e, err);
    if (rc == 0) rc = engine_grads(e, r.grads, err);
    engine_close(e);
    if (rc) r.loss = NAN;
    return r;
}

// The float64 twin's chunked head on the same weights: loss and gradients, with head fn
// (cross-entropy when NULL; its ctx then the batch's xent_ctx).
static result run_f64(model_state *m, const batch_data *d, head_fn_f64 fn, void *ctx) {
    size_t n = m->layout.n_floats;
    double *p = malloc(n * sizeof *p), *g = calloc(n, sizeof *g);
    for (size_t i = 0; i < n; i++) p[i] = m->params[i];
    weights_f64 w, gw;
    weights_point_f64(&m->layout, p, &w);
    weights_point_f64(&m->layout, g, &gw);
    acts_f64 a;
    xent_ctx xent = {.targets = d->targets, .scale = 1.0 / (double)count_targets(d)};
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    result r = {NAN, malloc(n * sizeof(float))};
    GK_ASSERT(acts_init_f64(&a, &m->cfg, B, T, true, NULL) == 0);
    GK_ASSERT(model_forward_f64(&m->cfg, &w, &a, &batch, 0, NULL) == 0);
    GK_ASSERT(model_head_f64(&m->cfg, &w, &a, &gw, fn ? fn : xent_head_f64, fn ? ctx : &xent, 7, &r.loss, NULL) == 0);
    model_backward_f64(&m->cfg, &w, &gw, &a);
    for (size_t i = 0; i < n; i++) r.grads[i] = (float)g[i];
    acts_free_f64(&a);
    free(p);
    free(g);
    return r;
}

static void expect_same(test_case *tc, const model_state *m, const result *got, const result *want, double loss_tol,
                        double grad_tol, const char *what) {
    double rel = fabs(got->loss - want->loss) / fabs(want->loss);
    CHECK(tc, rel <= loss_tol, "%s: loss %.12g, reference %.12g (relative %.3g)", what, got->loss, want->loss, rel);
    for (int t = 0; t < m->layout.n_tensors && !tc->failed; t++) {
        const param_tensor *p = &m->layout.tensors[t];
        double e = rel_error_f32(got->grads + p->offset, want->grads + p->offset, p->numel);
        CHECK(tc, e <= grad_tol, "%s: gradient of %s differs by %.3g (relative to its largest value)", what, p->name, e);
    }
}

static model_state test_model(void) {
    model_state m;
    GK_ASSERT(tiny_model(&SHAPE, 5, &m, NULL) == 0);
    for (int t = 0; t < m.layout.n_tensors; t++) { // norm scales away from 1, so that they matter
        const param_tensor *p = &m.layout.tensors[t];
        for (size_t i = 0; p->kind == PARAM_NORM && i < p->numel; i++)
            m.params[p->offset + i] = (float)(0.3 * hash_normal(9 + (uint64_t)t, i));
    }
    return m;
}

// Cross-entropy (with an SFT mask and a row without targets) tiled against chunked and the float64 twin,
// in float32 and in bf16, for several block and tile sizes.
static void cross_entropy(test_case *tc) {
    model_state m = test_model();
    batch_data d;
    make_batch(&d, SHAPE.vocab);
    gk_err err = {0};
    const engine_backend backends[] = {{DEVICE_CPU, PRECISION_FP32}, {DEVICE_CPU, PRECISION_BF16}};
    result twin = run_f64(&m, &d, NULL, NULL);
    for (int b = 0; b < 2 && !tc->failed; b++) {
        head_loss chunked = {.kind = HEAD_CALLBACK, .fn = xent_host, .chunk = 11};
        result want = run(&m, backends[b], &d, chunked, &err);
        CHECK(tc, !isnan(want.loss), "%s", err.msg);
        if (b == 0) expect_same(tc, &m, &want, &twin, 1e-6, 1e-5, "chunked float32 against the float64 twin");
        for (int k = 0; k < N_SHAPES && !tc->failed; k++) {
            head_loss tiled = {.kind = HEAD_XENT, .tiles = SHAPES[k]};
            result got = run(&m, backends[b], &d, tiled, &err);
            char what[128];
            snprintf(what, sizeof what, "%s, blocks of %d, tiles of %d", b ? "bf16" : "float32", SHAPES[k].block,
                     SHAPES[k].tile);
            CHECK(tc, !isnan(got.loss), "%s: %s", what, err.msg);
            if (!tc->failed) expect_same(tc, &m, &got, &want, b ? 1e-5 : 1e-6, b ? 1e-2 : 1e-5, what);
            if (b == 0 && !tc->failed) expect_same(tc, &m, &got, &twin, 1e-6, 1e-5, what);
            free(got.grads);
        }
        free(want.grads);
    }
    free(twin.grads);
    model_state_free(&m);
}

// ---------------------------------------------------------------- distillation

// The teacher's logits for the batch: float32 from its engine (kept open: the
// tiled head computes its tiles from it) and float64 from the twin, [N, V] each.
typedef struct {
    model_state m;
    engine *e;
    float *logits;
    double *logits_f64;
    sparse_row rows[N]; // top-k rows of the float64 teacher at the objective's temperature
    int32_t ids[N][12];
    float logprobs[N][12], counts[N][12];
    teacher_cache_rows cache;
} teacher_data;

static void teacher_f64_logits(model_state *m, const batch_data *d, double *out) {
    size_t n = m->layout.n_floats;
    double *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = m->params[i];
    weights_f64 w;
    weights_point_f64(&m->layout, p, &w);
    acts_f64 a;
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    GK_ASSERT(acts_init_f64(&a, &m->cfg, B, T, false, NULL) == 0);
    GK_ASSERT(model_forward_f64(&m->cfg, &w, &a, &batch, 0, NULL) == 0);
    model_logits_f64(&m->cfg, w.embed, a.xn_final, N, out);
    acts_free_f64(&a);
    free(p);
}

static int teacher_open(teacher_data *t, const batch_data *d, gk_err *err) {
    int V = TEACHER.vocab;
    GK_ASSERT(tiny_model(&TEACHER, 6, &t->m, NULL) == 0);
    t->logits = malloc((size_t)N * V * sizeof *t->logits);
    t->logits_f64 = malloc((size_t)N * V * sizeof *t->logits_f64);
    teacher_f64_logits(&t->m, d, t->logits_f64);
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    engine_backend fp32 = {DEVICE_CPU, PRECISION_FP32};
    if (engine_open(&t->e, &t->m, fp32, B, T, false, err) || engine_forward(t->e, &batch, 0, err)) return -1;
    return engine_logits(t->e, 0, N, t->logits, err);
}

// Sparse rows of the teacher at temperature tau: the 12 most likely ids, their
// log-probabilities, the mass left outside, and counts as if drawn.
static void teacher_rows(teacher_data *t, double tau, bool sampled) {
    int V = TEACHER.vocab;
    double *lt = malloc((size_t)V * sizeof *lt);
    for (int i = 0; i < N; i++) {
        ref_log_softmax(t->logits_f64 + (size_t)i * V, V, 1 / tau, lt);
        double covered = 0;
        for (int j = 0; j < 12; j++) {
            int best = -1;
            for (int v = 0; v < V; v++)
                if (lt[v] > -INFINITY && (best < 0 || lt[v] > lt[best])) best = v;
            t->ids[i][j] = best;
            t->logprobs[i][j] = (float)lt[best];
            t->counts[i][j] = (float)(1 + (i + j * 7) % 4);
            covered += exp((double)t->logprobs[i][j]);
            lt[best] = -INFINITY;
        }
        t->rows[i] = (sparse_row){.k = 12, .ids = t->ids[i], .logprobs = t->logprobs[i],
                                  .counts = sampled ? t->counts[i] : NULL, .leftover = (float)fmax(0, 1 - covered)};
    }
    t->cache = (teacher_cache_rows){.windows = B, .T = T, .k = 12, .rows = t->rows};
    free(lt);
}

static void teacher_close(teacher_data *t) {
    engine_close(t->e);
    model_state_free(&t->m);
    free(t->logits);
    free(t->logits_f64);
}

// Today's chunked distillation head (a callback over whole rows) and the float64 twin's.
typedef struct {
    const kd_config *kd;
    const batch_data *d;
    const teacher_data *t;
    bool sparse;
    sparse_objective obj;
    double scale;
} kd_problem;

static double kd_chunked(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    const kd_problem *p = ctx;
    double loss = 0;
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        const float *s = logits + r * vocab;
        float *ds = dlogits + r * vocab;
        int32_t target = p->d->targets[i];
        if (target < 0) {
            memset(ds, 0, (size_t)vocab * sizeof *ds);
            continue;
        }
        loss += p->sparse ? kd_row_sparse(p->kd, p->obj, s, &p->t->rows[i], vocab, target, p->scale, ds, NULL)
                          : kd_row_dense(p->kd, s, p->t->logits + i * vocab, vocab, target, p->scale, ds, NULL);
    }
    return loss;
}

static double kd_twin(void *ctx, const double *logits, double *dlogits, size_t first, size_t count, int vocab) {
    const kd_problem *p = ctx;
    double loss = 0;
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        double *g = dlogits + r * vocab;
        ref_problem q = {.c = p->kd, .V = vocab, .t = p->sparse ? NULL : p->t->logits_f64 + i * vocab,
                         .sp = &p->t->rows[i], .obj = p->obj, .target = p->d->targets[i]};
        if (q.target < 0) {
            memset(g, 0, (size_t)vocab * sizeof *g);
            continue;
        }
        loss += p->scale * ref_loss(&q, logits + r * vocab);
        ref_grad(&q, logits + r * vocab, g);
        for (int v = 0; v < vocab; v++) g[v] *= p->scale;
    }
    return loss;
}

// One objective: tiled (every tile shape, float32 and bf16) against chunked, and float32 against the twin.
static void kd_compare(test_case *tc, model_state *m, const batch_data *d, teacher_data *t, kd_problem *p,
                       const char *name) {
    const engine_backend backends[] = {{DEVICE_CPU, PRECISION_FP32}, {DEVICE_CPU, PRECISION_BF16}};
    gk_err err = {0};
    result twin = run_f64(m, d, kd_twin, p);
    for (int b = 0; b < 2 && !tc->failed; b++) {
        result want = run(m, backends[b], d, (head_loss){.kind = HEAD_CALLBACK, .fn = kd_chunked, .ctx = p, .chunk = 11},
                          &err);
        CHECK(tc, !isnan(want.loss), "%s: %s", name, err.msg);
        char what[160];
        snprintf(what, sizeof what, "%s: chunked float32 against the float64 twin", name);
        if (b == 0 && !tc->failed) expect_same(tc, m, &want, &twin, 1e-6, 1e-5, what);
        for (int k = 0; k < N_SHAPES && !tc->failed; k++) {
            kd_head_ctx kd;
            GK_ASSERT(kd_head_init(&kd, p->kd, N, NULL) == 0);
            if (p->sparse) GK_ASSERT(kd_head_use_cache(&kd, p->obj, &t->cache, NULL) == 0);
            else kd_head_use_engine(&kd, t->e);
            kd.targets = d->targets;
            kd.scale = p->scale;
            head_loss h = kd_head_loss(&kd, true);
            h.tiles = SHAPES[k];
            result got = run(m, backends[b], d, h, &err);
            snprintf(what, sizeof what, "%s, %s, blocks of %d, tiles of %d", name, b ? "bf16" : "float32",
                     SHAPES[k].block, SHAPES[k].tile);
            CHECK(tc, !isnan(got.loss), "%s: %s", what, err.msg);
            double logged = kd.sums.loss;
            CHECK(tc, fabs(logged - got.loss) <= 1e-12 * fabs(got.loss), "%s: summed loss %.12g, head's %.12g", what,
                  logged, got.loss);
            if (!tc->failed) expect_same(tc, m, &got, &want, b ? 1e-5 : 1e-6, b ? 1e-2 : 1e-5, what);
            if (b == 0 && !tc->failed) expect_same(tc, m, &got, &twin, 1e-6, 1e-5, what);
            free(got.grads);
            kd_head_free(&kd);
        }
        free(want.grads);
    }
    free(twin.grads);
}

// The student, the batch and the teacher the distillation tests share.
typedef struct {
    model_state m;
    batch_data d;
    teacher_data t;
} kd_setup;

// (A failed CHECK leaves tc->failed set: the callers' loops then do nothing.)
static void kd_setup_open(test_case *tc, kd_setup *k) {
    gk_err err = {0};
    k->m = test_model();
    make_batch(&k->d, SHAPE.vocab);
    k->t = (teacher_data){0};
    CHECK(tc, teacher_open(&k->t, &k->d, &err) == 0, "%s", err.msg);
}

static void kd_setup_close(kd_setup *k) {
    teacher_close(&k->t);
    model_state_free(&k->m);
}

// Forward KL, reverse KL and JSD(beta) with an in-process teacher, at tau 1 and
// above, with and without tau^2, alone and mixed with hard-label cross-entropy.
static void distillation_dense(test_case *tc) {
    static const kd_config configs[] = {
        {KD_FORWARD_KL, 1.0, 1.0, 0.5, false}, {KD_FORWARD_KL, 0.3, 2.5, 0.5, true}, {KD_REVERSE_KL, 1.0, 1.0, 0.5, false},
        {KD_REVERSE_KL, 0.7, 2.0, 0.5, true},  {KD_JSD, 1.0, 1.0, 0.5, false},       {KD_JSD, 0.6, 1.5, 0.2, false},
    };
    static const char *names[] = {"forward KL", "reverse KL", "JSD"};
    kd_setup k;
    kd_setup_open(tc, &k);
    for (size_t c = 0; c < sizeof configs / sizeof configs[0] && !tc->failed; c++) {
        kd_problem p = {.kd = &configs[c], .d = &k.d, .t = &k.t, .scale = 1.0 / (double)count_targets(&k.d)};
        char name[96];
        snprintf(name, sizeof name, "%s, alpha %.1f, tau %.1f%s", names[configs[c].divergence], configs[c].alpha,
                 configs[c].temperature, configs[c].t2_scale ? ", tau^2" : "");
        kd_compare(tc, &k.m, &k.d, &k.t, &p, name);
    }
    kd_setup_close(&k);
}

// The sparse objectives on top-k rows (renormalised, with the leftover bucket) and on drawn counts.
static void distillation_sparse(test_case *tc) {
    static const char *names[] = {"topk_renorm", "topk_bucket", "sampled"};
    kd_setup k;
    kd_setup_open(tc, &k);
    for (int o = 0; o < 3 && !tc->failed; o++) {
        kd_config c = {KD_FORWARD_KL, o == 1 ? 0.8 : 1.0, o == 2 ? 1.0 : 2.0, 0.5, o == 0};
        teacher_rows(&k.t, c.temperature, o == SPARSE_SAMPLED);
        kd_problem p = {.kd = &c, .d = &k.d, .t = &k.t, .sparse = true, .obj = (sparse_objective)o,
                        .scale = 1.0 / (double)count_targets(&k.d)};
        kd_compare(tc, &k.m, &k.d, &k.t, &p, names[o]);
    }
    kd_setup_close(&k);
}

// ---------------------------------------------------------------- evaluation

// The scorer's tiled evaluation head against the model's whole rows of logits
// in float64: log p(target), top-1, the teacher's top-1 and KL(teacher || model).
static void evaluation(test_case *tc) {
    kd_setup k;
    kd_setup_open(tc, &k);
    model_state *m = &k.m;
    const batch_data *d = &k.d;
    teacher_data *t = &k.t;
    gk_err err = {0};
    int V = SHAPE.vocab;
    engine_backend fp32 = {DEVICE_CPU, PRECISION_FP32};
    float *logits = malloc((size_t)N * V * sizeof *logits);
    double *row = malloc((size_t)V * sizeof *row), *trow = malloc((size_t)V * sizeof *trow);
    engine *e = NULL;
    token_batch batch = {.B = B, .T = T, .tokens = d->tokens, .doc_begin = d->doc_begin};
    CHECK(tc, engine_open(&e, m, fp32, B, T, false, &err) == 0 && engine_forward(e, &batch, 0, &err) == 0 &&
                  engine_logits(e, 0, N, logits, &err) == 0, "%s", err.msg);
    static const kd_config kl1 = {KD_FORWARD_KL, 1, 1, 0.5, false};
    for (int sparse = 0; sparse < 2 && !tc->failed; sparse++) {
        teacher_rows(t, 1, false);
        for (int sh = 0; sh < N_SHAPES && !tc->failed; sh++) {
            scorer s;
            kd_head_ctx kd;
            CHECK(tc, scorer_init(&s, m, fp32, B, T, 0, &err) == 0, "%s", err.msg);
            GK_ASSERT(kd_head_init(&kd, &kl1, N, NULL) == 0);
            if (sparse) GK_ASSERT(kd_head_use_cache(&kd, SPARSE_TOPK_BUCKET, &t->cache, NULL) == 0);
            else kd_head_use_engine(&kd, t->e);
            memcpy(s.tokens, d->tokens, sizeof d->tokens);
            memcpy(s.doc_begin, d->doc_begin, sizeof d->doc_begin);
            memcpy(s.targets, d->targets, sizeof d->targets);
            s.head.tiles = SHAPES[sh];
            double nll = NAN, want_nll = 0, want_kl = 0;
            CHECK(tc, scorer_run(&s, &kd, &nll, &err) == 0, "%s", err.msg);
            for (int i = 0; i < N && !tc->failed; i++) {
                int32_t target = d->targets[i];
                if (target < 0) {
                    CHECK(tc, isnan(s.logprob[i]) && !s.greedy[i] && s.top1[i] == TOP1_UNKNOWN,
                          "position %d without a target was scored", i);
                    continue;
                }
                int best = 0, tbest = 0;
                for (int v = 0; v < V; v++) {
                    row[v] = logits[(size_t)i * V + v];
                    best = row[v] > row[best] ? v : best;
                    tbest = t->logits[(size_t)i * V + v] > t->logits[(size_t)i * V + tbest] ? v : tbest;
                }
                ref_problem q = {.c = &kl1, .V = V, .t = sparse ? NULL : t->logits_f64 + (size_t)i * V,
                                 .sp = &t->rows[i], .obj = SPARSE_TOPK_BUCKET, .target = target};
                ref_log_softmax(row, V, 1, trow);
                want_nll -= trow[target];
                want_kl += sparse ? ref_kd(&q, row) : ref_true_kl(&q, row);
                if (sparse) tbest = t->rows[i].ids[0];
                CHECK(tc, fabs(s.logprob[i] - trow[target]) <= 1e-5 * fmax(1, fabs(trow[target])),
                      "position %d: log p(target) %.9g, float64 %.9g", i, s.logprob[i], trow[target]);
                CHECK(tc, s.greedy[i] == (best == target), "position %d: greedy %d, argmax %d, target %d", i,
                      s.greedy[i], best, target);
                CHECK(tc, s.top1[i] == (best == tbest ? TOP1_AGREE : TOP1_DISAGREE),
                      "position %d: top-1 agreement %d, model %d, teacher %d", i, s.top1[i], best, tbest);
            }
            CHECK(tc, fabs(nll - want_nll) <= 1e-6 * want_nll, "%s, tiles of %d: summed nll %.9g, float64 %.9g",
                  sparse ? "cache" : "teacher", SHAPES[sh].tile, nll, want_nll);
            CHECK(tc, fabs(kd.sums.kl - want_kl) <= 1e-5 * want_kl, "%s, tiles of %d: summed KL %.9g, float64 %.9g",
                  sparse ? "cache" : "teacher", SHAPES[sh].tile, kd.sums.kl, want_kl);
            kd_head_free(&kd);
            scorer_free(&s);
        }
    }
    engine_close(e);
    free(logits);
    free(row);
    free(trow);
    kd_setup_close(&k);
}

int main(void) {
    test_run("cross_entropy_tiled_against_chunked_and_float64", cross_entropy);
    test_run("distillation_dense_tiled_against_chunked_and_float64", distillation_dense);
    test_run("distillation_sparse_tiled_against_chunked_and_float64", distillation_sparse);
    test_run("evaluation_tiled_against_float64_rows", evaluation);
    return test_main_result();
}
