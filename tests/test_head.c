// The output head tiled over the vocabulary against today's chunked head (the
// same model through the model handle, every logit of a chunk at once) and
// the float64 twin's chunked head: the loss and every parameter's gradient
// (the head's dL/dE directly, its dL/dhidden through the backward pass), for
// tile sizes that do not divide the vocabulary, a vocabulary that is not a
// multiple of 16, masked targets and a row with none.
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/engine.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_head";

enum { B = 3, T = 20, N = B * T };
static const tiny_shape SHAPE = {32, 64, 2, 4, 2, 8, 1003, 64}; // vocab 1003: no multiple of 16

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
    if (h.kind == HEAD_CALLBACK) h.ctx = &xent;
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

// The float64 twin's chunked cross-entropy on the same weights: loss and gradients.
static result run_f64(model_state *m, const batch_data *d) {
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
    GK_ASSERT(model_head_f64(&m->cfg, &w, &a, &gw, xent_head_f64, &xent, 7, &r.loss, NULL) == 0);
    model_backward_f64(&m->cfg, &w, &gw, &a, 0);
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
    const tile_shape shapes[] = {{0, 0}, {7, 97}, {64, 1003}, {1, 1000}, {N, 16}};
    result twin = run_f64(&m, &d);
    for (int b = 0; b < 2 && !tc->failed; b++) {
        head_loss chunked = {.kind = HEAD_CALLBACK, .fn = xent_host, .chunk = 11};
        result want = run(&m, backends[b], &d, chunked, &err);
        CHECK(tc, !isnan(want.loss), "%s", err.msg);
        if (b == 0) expect_same(tc, &m, &want, &twin, 1e-6, 1e-5, "chunked float32 against the float64 twin");
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0] && !tc->failed; k++) {
            head_loss tiled = {.kind = HEAD_XENT, .tiles = shapes[k]};
            result got = run(&m, backends[b], &d, tiled, &err);
            char what[128];
            snprintf(what, sizeof what, "%s, blocks of %d, tiles of %d", b ? "bf16" : "float32", shapes[k].block,
                     shapes[k].tile);
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

int main(void) {
    test_run("cross_entropy_tiled_against_chunked_and_float64", cross_entropy);
    return test_main_result();
}
