// The float32 model, through the model handle, against Hugging Face
// transformers (Gemma2ForCausalLM, eager attention, float32): logits, loss and
// every parameter's gradient of a cross-entropy loss; and the float64 twin
// below the handle. Fixtures: scripts/reference/gemma2_fixtures.py.
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "model/engine.h"
#include "tests/check.h"

const char *test_program = "test_hf_fixtures";

typedef struct {
    model_state model;
    st_file expected;
    int B, T, V;
    int32_t *tokens, *doc_begin, *targets; // [B*T]
    float *logits;                          // [B*T, V] from transformers
    double loss;
} fixture;

static int32_t *read_ints(const st_file *f, const char *name, size_t n) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != ST_I32 || t->numel != n) return NULL;
    int32_t *out = malloc(n * sizeof *out);
    memcpy(out, t->data, n * sizeof *out);
    return out;
}

static float *read_floats(const st_file *f, const char *name, size_t n) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->numel != n) return NULL;
    float *out = malloc(n * sizeof *out);
    gk_err err;
    if (st_to_f32(f, t, out, &err)) {
        free(out);
        return NULL;
    }
    return out;
}

static int fixture_load(test_case *tc, const char *name, fixture *fx) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", fixture_path("gemma2"));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    gk_err err = {0};
    memset(fx, 0, sizeof *fx);
    if (model_load_dir(dir, &fx->model, &err) || st_open(path, &fx->expected, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return -1;
    }
    const st_tensor *lg = st_find(&fx->expected, "logits");
    CHECK(tc, lg && lg->ndim == 3, "%s: no logits [B, T, V]", path);
    if (tc->failed) return -1;
    fx->B = (int)lg->shape[0], fx->T = (int)lg->shape[1], fx->V = (int)lg->shape[2];
    size_t N = (size_t)fx->B * fx->T;
    fx->tokens = read_ints(&fx->expected, "tokens", N);
    fx->doc_begin = read_ints(&fx->expected, "doc_begin", N);
    fx->targets = read_ints(&fx->expected, "targets", N);
    fx->logits = read_floats(&fx->expected, "logits", N * fx->V);
    const st_tensor *loss = st_find(&fx->expected, "loss");
    CHECK(tc, fx->tokens && fx->doc_begin && fx->targets && fx->logits && loss && loss->dtype == ST_F64,
          "%s: incomplete fixture", path);
    if (tc->failed) return -1;
    memcpy(&fx->loss, loss->data, sizeof fx->loss);
    return 0;
}

static void fixture_free(fixture *fx) {
    model_state_free(&fx->model);
    st_close(&fx->expected);
    free(fx->tokens);
    free(fx->doc_begin);
    free(fx->targets);
    free(fx->logits);
}

// Head callback: keep the logits and compute cross-entropy.
typedef struct {
    xent_ctx xent;
    float *logits_out; // [N, V]
} capture_ctx;

static double capture(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    capture_ctx *c = ctx_;
    memcpy(c->logits_out + first * vocab, logits, count * vocab * sizeof *logits);
    return xent_host(&c->xent, logits, dlogits, first, count, vocab);
}

static size_t count_targets(const fixture *fx) {
    size_t n = 0;
    for (int i = 0; i < fx->B * fx->T; i++) n += fx->targets[i] >= 0;
    return n;
}

// The float32 model through the model handle: logits [N, V] and loss; with
// grads [n_floats], also a backward pass. window > 0: the sliding-window override.
static int run_model(fixture *fx, int window, int chunk, float *logits, double *loss, float *grads, gk_err *err) {
    engine *e = NULL;
    engine_backend fp32 = {DEVICE_CPU, PRECISION_FP32};
    token_batch batch = {.B = fx->B, .T = fx->T, .tokens = fx->tokens, .doc_begin = fx->doc_begin};
    capture_ctx ctx = {.xent = {.targets = fx->targets, .scale = 1.0 / (double)count_targets(fx)}, .logits_out = logits};
    head_loss head = {.kind = HEAD_CALLBACK, .fn = capture, .ctx = &ctx, .chunk = chunk, .grads = grads != NULL};
    int rc = engine_open(&e, &fx->model, fp32, fx->B, fx->T, grads != NULL, err);
    if (rc == 0) rc = engine_forward(e, &batch, window, err);
    if (rc == 0) rc = engine_head(e, &head, loss, err);
    if (rc == 0 && grads) rc = engine_backward(e, err);
    if (rc == 0 && grads) rc = engine_grads(e, grads, err);
    engine_close(e);
    return rc;
}

// Logits (and with training, loss and gradients) of the float32 model.
static void check_f32(test_case *tc, const char *name, bool training) {
    fixture fx;
    if (fixture_load(tc, name, &fx)) return;
    size_t N = (size_t)fx.B * fx.T;
    float *grad_buf = training ? param_buffer_alloc(&fx.model.layout, NULL) : NULL;
    float *logits = calloc(N * fx.V, sizeof(float));
    gk_err err = {0};
    double loss = 0;
    int rc = run_model(&fx, 0, 7, logits, &loss, grad_buf, &err);
    CHECK(tc, rc == 0, "%s: %s", name, err.msg);
    if (rc == 0) {
        double rel = rel_error_f32(logits, fx.logits, N * fx.V);
        CHECK(tc, rel <= 1e-5, "%s: logits differ from transformers by %.3g (relative)", name, rel);
        CHECK(tc, fabs(loss - fx.loss) <= 1e-5 * fabs(fx.loss), "%s: loss %.9g, transformers %.9g", name, loss, fx.loss);
    }
    for (int t = 0; rc == 0 && training && t < fx.model.layout.n_tensors && !tc->failed; t++) {
        const param_tensor *p = &fx.model.layout.tensors[t];
        char key[128];
        snprintf(key, sizeof key, "grad.%s", p->name);
        float *want = read_floats(&fx.expected, key, p->numel);
        CHECK(tc, want != NULL, "%s: fixture has no %s", name, key);
        if (!want) break;
        double rel = rel_error_f32(grad_buf + p->offset, want, p->numel);
        CHECK(tc, rel <= 1e-4, "%s: gradient of %s differs from autograd by %.3g (relative)", name, p->name, rel);
        free(want);
    }
    free(grad_buf);
    free(logits);
    fixture_free(&fx);
}

// Inference with the sliding window narrowed to 2 keys (the report's Table 10 ablation).
static void check_window_override(test_case *tc, const char *name) {
    fixture fx;
    if (fixture_load(tc, name, &fx)) return;
    size_t N = (size_t)fx.B * fx.T;
    float *want = read_floats(&fx.expected, "logits_window2", N * fx.V), *logits = calloc(N * fx.V, sizeof(float));
    CHECK(tc, want != NULL, "%s: fixture has no logits_window2", name);
    gk_err err = {0};
    double loss;
    int rc = want ? run_model(&fx, 2, 64, logits, &loss, NULL, &err) : -1;
    CHECK(tc, rc == 0, "%s: %s", name, err.msg);
    if (rc == 0) {
        double rel = rel_error_f32(logits, want, N * fx.V);
        CHECK(tc, rel <= 1e-5, "%s: window-2 logits differ from transformers by %.3g (relative)", name, rel);
        CHECK(tc, rel_error_f32(logits, fx.logits, N * fx.V) > 1e-3, "%s: the override changed nothing", name);
    }
    free(want);
    free(logits);
    fixture_free(&fx);
}

// The float64 twin on the same weights: agrees with transformers' float32 run.
static void check_f64(test_case *tc, const char *name) {
    fixture fx;
    if (fixture_load(tc, name, &fx)) return;
    const model_config *cfg = &fx.model.cfg;
    size_t N = (size_t)fx.B * fx.T;
    double *params = malloc(fx.model.layout.n_floats * sizeof *params);
    for (size_t i = 0; i < fx.model.layout.n_floats; i++) params[i] = fx.model.params[i];
    weights_f64 w;
    weights_point_f64(&fx.model.layout, params, &w);
    acts_f64 a;
    gk_err err = {0};
    token_batch batch = {.B = fx.B, .T = fx.T, .tokens = fx.tokens, .doc_begin = fx.doc_begin};
    int rc = acts_init_f64(&a, cfg, fx.B, fx.T, false, &err);
    rc = rc ? rc : model_forward_f64(cfg, &w, &a, &batch, 0, &err);
    CHECK(tc, rc == 0, "%s: %s", name, err.msg);
    if (rc == 0) { // logits of the twin: final norm output times the embedding, capped
        double worst = 0, scale = 0, cap = cfg->final_softcap;
        for (size_t i = 0; i < N; i++) {
            for (int v = 0; v < fx.V; v++) {
                double z = 0;
                for (int j = 0; j < cfg->d_model; j++)
                    z += a.xn_final[i * cfg->d_model + j] * w.embed[(size_t)v * cfg->d_model + j];
                z = cap > 0 ? cap * tanh(z / cap) : z;
                double ref = fx.logits[i * fx.V + v];
                worst = fmax(worst, fabs(z - ref));
                scale = fmax(scale, fabs(ref));
            }
        }
        CHECK(tc, worst <= 1e-5 * scale, "%s: float64 logits differ from transformers by %.3g (relative)", name,
              worst / scale);
    }
    acts_free_f64(&a);
    free(params);
    fixture_free(&fx);
}

static void gqa2_window(test_case *tc) { check_f32(tc, "gqa2_window", true); }
static void mha_odd(test_case *tc) { check_f32(tc, "mha_odd", true); }
static void gqa4_packed(test_case *tc) { check_f32(tc, "gqa4_packed", true); }
static void forward_only(test_case *tc) {
    check_f32(tc, "gqa2_window", false);
    check_f32(tc, "gqa4_packed", false);
}
static void window_override(test_case *tc) {
    check_window_override(tc, "gqa2_window");
    check_window_override(tc, "mha_odd");
}
static void twin_f64(test_case *tc) {
    check_f64(tc, "gqa2_window");
    check_f64(tc, "mha_odd");
    check_f64(tc, "gqa4_packed");
}

int main(void) {
    test_run("gqa2_window_logits_loss_grads", gqa2_window);
    test_run("mha_odd_sizes_logits_loss_grads", mha_odd);
    test_run("gqa4_packed_docs_logits_loss_grads", gqa4_packed);
    test_run("forward_only_single_slot_logits", forward_only);
    test_run("float64_twin_logits", twin_f64);
    test_run("sliding_window_override_logits", window_override);
    return test_main_result();
}
