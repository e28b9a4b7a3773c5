// Optimizers and clipping against torch.optim.AdamW and clip_grad_norm_
// (scripts/reference/optim_fixtures.py); SGD and the LR schedules against
// values worked out by hand. The float32 step is the one the cpu fp32 model
// handle runs (optimizer_step_f32 over the master weights in place).
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"
#include "tests/check.h"
#include "model/optim.h"
#include "train/schedule.h"

const char *test_program = "test_optim";

// The tiny Gemma 2 of the fixture (its tensors carry the same names).
static model_config fixture_config(void) {
    model_config c = {.d_model = 8, .d_ff = 12, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                      .vocab_size = 16, .max_seq_len = 64, .sliding_window = 3, .query_pre_attn_scalar = 4,
                      .rope_theta = 10000, .rms_eps = 1e-6};
    return c;
}

// Reads "<prefix>.<name>" for every tensor of the layout into buf.
static int read_all(const st_file *f, const param_layout *L, const char *prefix, float *buf, gk_err *err) {
    for (int t = 0; t < L->n_tensors; t++) {
        char key[160];
        snprintf(key, sizeof key, "%s.%s", prefix, L->tensors[t].name);
        const st_tensor *x = st_find(f, key);
        if (!x || x->numel != L->tensors[t].numel) return gk_fail(err, GK_EINPUT, "fixture lacks %s", key);
        if (st_to_f32(f, x, buf + L->tensors[t].offset, err)) return -1;
    }
    return 0;
}

static void adamw_matches_torch(test_case *tc) {
    model_config cfg = fixture_config();
    param_layout L;
    st_file f;
    gk_err err = {0};
    if (param_layout_build(&cfg, &L, &err) || st_open(fixture_path("optim/adamw.safetensors"), &f, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    float *p = param_buffer_alloc(&L, NULL), *g = param_buffer_alloc(&L, NULL), *want = param_buffer_alloc(&L, NULL);
    optimizer o;
    CHECK(tc, optimizer_init(&o, OPTIM_ADAMW, 0.9, 0.95, 1e-8, 0.1, &L, &err) == 0, "%s", err.msg);
    CHECK(tc, read_all(&f, &L, "init", p, &err) == 0, "%s", err.msg);
    for (int k = 0; k < 5 && !tc->failed; k++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "grad%d", k);
        CHECK(tc, read_all(&f, &L, prefix, g, &err) == 0, "%s", err.msg);
        double norm = grad_norm_f32(&L, g), want_norm;
        snprintf(prefix, sizeof prefix, "norm%d", k);
        memcpy(&want_norm, st_find(&f, prefix)->data, sizeof want_norm);
        CHECK(tc, fabs(norm - want_norm) <= 1e-6 * want_norm, "step %d: norm %.9g, torch %.9g", k, norm, want_norm);
        optimizer_step_f32(&o, p, p, g, 1e-2, (float)grad_clip_scale(norm, 1.0));
        snprintf(prefix, sizeof prefix, "after%d", k);
        CHECK(tc, read_all(&f, &L, prefix, want, &err) == 0, "%s", err.msg);
        for (int t = 0; t < L.n_tensors; t++) {
            const param_tensor *x = &L.tensors[t];
            double rel = rel_error_f32(p + x->offset, want + x->offset, x->numel);
            CHECK(tc, rel <= 1e-6, "step %d: %s differs from torch by %.3g", k, x->name, rel);
        }
    }
    optimizer_free(&o);
    free(p);
    free(g);
    free(want);
    st_close(&f);
    param_layout_free(&L);
}

static void sgd_and_finiteness(test_case *tc) {
    model_config cfg = fixture_config();
    param_layout L;
    gk_err err;
    param_layout_build(&cfg, &L, &err);
    float *p = param_buffer_alloc(&L, NULL), *g = param_buffer_alloc(&L, NULL);
    for (size_t i = 0; i < L.n_floats; i++) p[i] = (float)i * 0.5f, g[i] = (float)(i % 7) - 3.0f;
    optimizer o;
    optimizer_init(&o, OPTIM_SGD, 0, 0, 0, 0.1, &L, &err);
    optimizer_step_f32(&o, p, p, g, 0.25, 1.0f);
    int wrong = 0;
    for (int t = 0; t < L.n_tensors; t++)
        for (size_t i = L.tensors[t].offset; i < L.tensors[t].offset + L.tensors[t].numel; i++)
            wrong += p[i] != (float)i * 0.5f - 0.25f * ((float)(i % 7) - 3.0f);
    CHECK(tc, wrong == 0, "%d SGD updates differ from p - lr g (no weight decay in SGD)", wrong);
    CHECK(tc, isfinite(grad_norm_f32(&L, g)), "finite gradients gave a non-finite norm");
    g[L.tensors[3].offset + 2] = NAN;
    CHECK(tc, isnan(grad_norm_f32(&L, g)), "NaN not detected by the norm");
    g[L.tensors[3].offset + 2] = INFINITY;
    CHECK(tc, isinf(grad_norm_f32(&L, g)), "inf not detected by the norm");
    CHECK(tc, grad_clip_scale(2.0, 1.0) == 1.0 / (2.0 + 1e-6) && grad_clip_scale(0.5, 1.0) == 1.0 &&
                  grad_clip_scale(5.0, 0.0) == 1.0, "clip scale as clip_grad_norm_ (and 0 = off)");
    optimizer_free(&o);
    free(p);
    free(g);
    param_layout_free(&L);
}

static void schedules(test_case *tc) {
    // lr 1, warmup 10, 111 steps: the 101 post-warmup steps run p = 0, 0.01, ..., 1.
    lr_schedule s = {SCHEDULE_COSINE, 1.0, 0.1, 0.2, 10, 111};
    const struct {
        schedule_kind kind;
        int64_t step;
        double want;
    } cases[] = {
        {SCHEDULE_COSINE, 0, 0.1},   {SCHEDULE_COSINE, 9, 1.0},    {SCHEDULE_COSINE, 10, 1.0},
        {SCHEDULE_COSINE, 60, 0.55}, {SCHEDULE_COSINE, 110, 0.1},  {SCHEDULE_COSINE, 500, 0.1},
        {SCHEDULE_LINEAR, 4, 0.5},   {SCHEDULE_LINEAR, 60, 0.55},  {SCHEDULE_LINEAR, 110, 0.1},
        {SCHEDULE_CONSTANT, 3, 0.4}, {SCHEDULE_CONSTANT, 110, 1.0}, {SCHEDULE_WSD, 90, 1.0},
        {SCHEDULE_WSD, 100, 0.55},   {SCHEDULE_WSD, 110, 0.1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s.kind = cases[i].kind;
        double got = schedule_lr(&s, cases[i].step);
        CHECK(tc, fabs(got - cases[i].want) < 1e-12, "kind %d step %lld: %.15g, want %.15g", (int)cases[i].kind,
              (long long)cases[i].step, got, cases[i].want);
    }
}

int main(void) {
    test_run("adamw_and_clipping_match_torch", adamw_matches_torch);
    test_run("sgd_and_finiteness", sgd_and_finiteness);
    test_run("schedules", schedules);
    return test_main_result();
}
