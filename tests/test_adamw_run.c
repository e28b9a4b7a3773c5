// Ten steps of `gemmakd train` with AdamW against the same run in PyTorch
// (scripts/reference/adamw_run_fixture.py: transformers' Gemma2ForCausalLM,
// torch.optim.AdamW, clip_grad_norm_, LambdaLR): cosine schedule with warmup,
// clipping on some steps, two micro-batches per step whose trained targets
// differ in number, weight decay on the matrices. Every step's logged loss,
// learning rate and gradient norm, and the final weights, within 1e-5.
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_adamw_run";

enum { STEPS = 10, MAX_TOKENS = 128, MAX_DOCS = 32, VOCAB = 40 };
#define TOLERANCE 1e-5

static char gemmakd[512];

// The fixture's shard (tokens and document starts) and its per-step reference values.
typedef struct {
    st_file f;
    uint32_t tokens[MAX_TOKENS];
    int64_t starts[MAX_DOCS];
    size_t n_tokens, n_docs;
    double loss[STEPS], lr[STEPS], grad_norm[STEPS];
} reference;

static int read_f64(const st_file *f, const char *name, double *out, size_t n, gk_err *err) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != ST_F64 || t->numel != n) return gk_fail(err, GK_EINPUT, "adamw_run fixture: bad '%s'", name);
    memcpy(out, t->data, n * sizeof *out);
    return 0;
}

static int reference_load(reference *r, gk_err *err) {
    if (st_open(fixture_path("adamw_run/run.safetensors"), &r->f, err) ||
        test_read_docs(&r->f, r->tokens, MAX_TOKENS, &r->n_tokens, r->starts, MAX_DOCS, &r->n_docs, err) ||
        read_f64(&r->f, "loss", r->loss, STEPS, err) || read_f64(&r->f, "lr", r->lr, STEPS, err))
        return -1;
    return read_f64(&r->f, "grad_norm", r->grad_norm, STEPS, err);
}

// |got - want| <= tol |want|.
static bool close_rel(double got, double want, double tol) { return fabs(got - want) <= tol * fabs(want); }

// gemmakd train with the fixture's run config, its model and a shard of its tokens, in dir.
static int run_gemmakd(const reference *r, const char *dir, gk_err *err) {
    char shard[256], run_dir[256], model[256], data[256];
    snprintf(shard, sizeof shard, "%s/train-0.h5", dir);
    if (test_write_shard(shard, r->tokens, r->n_tokens, r->starts, r->n_docs, NULL, VOCAB, err)) return -1;
    snprintf(run_dir, sizeof run_dir, "run_dir=%s/run", dir);
    snprintf(model, sizeof model, "model.from=%s", fixture_path("adamw_run/model"));
    snprintf(data, sizeof data, "data.train=%s", shard);
    const char *argv[] = {gemmakd, "train", "--config", fixture_path("adamw_run/run.yaml"), run_dir, model, data, NULL};
    const char *errfile = test_join(dir, "stderr");
    if (test_spawn(argv, NULL, errfile) == 0) return 0;
    char *msg = test_read_text(errfile);
    gk_fail(err, GK_EINPUT, "gemmakd train failed: %s", msg);
    free(msg);
    return -1;
}

// One logged step against the reference: loss, lr and gradient norm (before clipping).
static void check_step(test_case *tc, const reference *r, const json_value *m) {
    const json_value *step = json_get(m, "step"), *loss = json_get(m, "loss"), *lr = json_get(m, "lr"),
                     *norm = json_get(m, "grad_norm");
    CHECK(tc, step && loss && lr && norm && step->is_integer && step->integer >= 1 && step->integer <= STEPS,
          "metrics line %d: no step, loss, lr and grad_norm", m->line);
    if (tc->failed) return;
    int k = (int)step->integer - 1;
    CHECK(tc, close_rel(lr->number, r->lr[k], 1e-7), "step %d: lr %.9g, torch %.9g", k + 1, lr->number, r->lr[k]);
    CHECK(tc, close_rel(norm->number, r->grad_norm[k], TOLERANCE), "step %d: gradient norm %.9g, torch %.9g", k + 1,
          norm->number, r->grad_norm[k]);
    CHECK(tc, close_rel(loss->number, r->loss[k], TOLERANCE), "step %d: loss %.9g, torch %.9g", k + 1, loss->number,
          r->loss[k]);
}

static void check_metrics(test_case *tc, const reference *r, const char *dir) {
    char *text = test_read_text(test_join(dir, "run/metrics.jsonl"));
    int steps = 0;
    for (char *line = strtok(text, "\n"); line && !tc->failed; line = strtok(NULL, "\n")) {
        json_doc doc;
        gk_err err = {0};
        CHECK(tc, json_parse(line, strlen(line), "metrics.jsonl", &doc, &err) == 0, "%s", err.msg);
        if (tc->failed) break;
        if (json_get(doc.root, "loss")) {
            check_step(tc, r, doc.root);
            steps++;
        }
        json_free(&doc);
    }
    CHECK(tc, steps == STEPS, "metrics.jsonl logs %d steps, not %d", steps, STEPS);
    free(text);
}

// Every tensor after the last step against torch's, relative to the tensor's largest value.
static void check_weights(test_case *tc, const reference *r, const char *dir) {
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/run/step-%06d", dir, STEPS);
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, model_load_dir(ckpt, &m, &err) == 0, "%s", err.msg);
    for (int t = 0; !tc->failed && t < m.layout.n_tensors; t++) {
        const param_tensor *p = &m.layout.tensors[t];
        char key[160];
        snprintf(key, sizeof key, "final.%s", p->name);
        const st_tensor *want = st_find(&r->f, key);
        CHECK(tc, want && want->numel == p->numel, "fixture lacks %s", key);
        if (tc->failed) break;
        float *ref = malloc(p->numel * sizeof *ref);
        CHECK(tc, ref && st_to_f32(&r->f, want, ref, &err) == 0, "%s: %s", key, err.msg);
        double e = tc->failed ? 0 : rel_error_f32(m.params + p->offset, ref, p->numel);
        CHECK(tc, e <= TOLERANCE, "%s after %d steps: relative error %.3g against torch", p->name, STEPS, e);
        free(ref);
    }
    model_state_free(&m);
}

static void adamw_run_matches_torch(test_case *tc) {
    reference r = {0};
    char dir[64];
    gk_err err = {0};
    if (test_scratch_dir(tc, "adamw-run", dir, sizeof dir)) return;
    CHECK(tc, reference_load(&r, &err) == 0 && run_gemmakd(&r, dir, &err) == 0, "%s", err.msg);
    if (!tc->failed) check_metrics(tc, &r, dir);
    if (!tc->failed) check_weights(tc, &r, dir);
    st_close(&r.f);
    dir_remove_tree(dir, &err);
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    test_run("ten_adamw_steps_match_torch", adamw_run_matches_torch);
    return test_main_result();
}
