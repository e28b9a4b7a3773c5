// One step of `gemmakd train` with SGD (lr 1, no clipping, no weight decay,
// constant schedule) moves every weight by minus PyTorch autograd's gradient
// of the same loss on the same window (scripts/reference/sgd_step_fixture.py):
// a packed window of three documents, the same window as SFT data whose loss
// mask hides some targets, and distillation from an in-process teacher
// (forward KL with temperature, tau^2 and CE mixing; JSD(0.3)) and from a
// teacher cache holding the whole distribution (top-k with k = vocabulary); and
// on-policy distillation on the student's own greedy continuations of prompts.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "data/shards.h"
#include "distill/teacher_cache_build.h"
#include "model/checkpoint.h"
#include "model/model_dir.h"
#include "tests/check.h"
#include "tests/fixtures.h"
#include "train/trainer.h"

const char *test_program = "test_train_step";

typedef struct {
    st_file f;
    size_t n_tokens, n_docs;
    uint32_t tokens[64];
    int64_t starts[8];
    uint8_t mask[64];
} window;

static int window_load(window *w, gk_err *err) {
    if (st_open(fixture_path("sgd_step/window.safetensors"), &w->f, err) ||
        test_read_docs(&w->f, w->tokens, 64, &w->n_tokens, w->starts, 8, &w->n_docs, err))
        return -1;
    const st_tensor *m = st_find(&w->f, "loss_mask");
    if (!m || m->numel != w->n_tokens) return gk_fail(err, GK_EINPUT, "bad sgd_step fixture");
    memcpy(w->mask, m->data, m->numel);
    return 0;
}

// The window as one shard, a document per start; with_mask makes it a chat shard.
static int write_shard(const window *w, const char *path, bool with_mask, gk_err *err) {
    return test_write_shard(path, w->tokens, w->n_tokens, w->starts, w->n_docs, with_mask ? w->mask : NULL, 40, err);
}

typedef struct {
    bool sft;
    const char *grad;  // fixture prefix of the expected gradient
    bool distill;      // distil with kd.loss `loss`, else plain cross-entropy
    kd_divergence loss;
    double alpha, temperature, beta;
    bool t2_scale;
    bool from_cache;   // distil from a full-vocabulary top-k cache instead of the in-process teacher
    const char *precision, *teacher_precision; // model.precision / teacher.precision ("" or NULL: fp32)
    double tolerance;  // of the weight change against -grad, relative to the gradient's largest value (0: 1e-4)
} variant;

// A copy of the fixture teacher whose gemmakd.json records tokenizer `sha`
// (the shards of write_shard use 64 'a's).
static int teacher_copy(const char *dir, char sha_char, char *out, size_t cap, gk_err *err) {
    snprintf(out, cap, "%s/teacher", dir);
    const char *files[] = {"config.json", "model.safetensors"};
    if (dir_create(out, err)) return -1;
    for (int i = 0; i < 2; i++) {
        char src[512], dst[512], *data;
        size_t len;
        snprintf(src, sizeof src, "%s/%s", fixture_path("sgd_step/teacher"), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out, files[i]);
        if (file_read_all(src, &data, &len, err)) return -1;
        int rc = file_write_atomic(dst, data, len, err);
        free(data);
        if (rc) return -1;
    }
    char sha[65];
    memset(sha, sha_char, 64);
    sha[64] = 0;
    return model_dir_write_tokenizer(out, sha, err);
}

// One step on the fixture window from the fixture model, run dir and shard in a
// new temporary dir; false (and a failed case) when the setup fails.
static bool one_step_config(test_case *tc, char dir[20], window *w, char shard[128], run_config *rc) {
    gk_err err = {0};
    if (test_scratch_dir(tc, "step", dir, 20) || window_load(w, &err)) {
        CHECK(tc, 0, "setup: %s", err.msg);
        return false;
    }
    snprintf(shard, 128, "%s/train-0.h5", dir);
    run_config_defaults(rc);
    snprintf(rc->run_dir, RC_PATH, "%s/run", dir);
    snprintf(rc->model.from, RC_PATH, "%s", fixture_path("sgd_step/model"));
    snprintf(rc->data.train.items[0], RC_PATH, "%s", shard);
    rc->data.train.count = 1;
    rc->data.seq_len = (int)w->n_tokens - 1;
    rc->batch.size = 1;
    rc->train.steps = 1;
    return true;
}

// Every weight of `after` moved from `before` by minus the fixture's gradient <prefix>.<name>
// (lr 1), within tolerance (0: 1e-4) relative to the gradient's largest value.
static void check_moved_by_minus_grad(test_case *tc, st_file *f, const char *prefix, const model_state *before,
                                      const model_state *after, double tolerance) {
    gk_err err = {0};
    for (int t = 0; t < before->layout.n_tensors && !tc->failed; t++) {
        const param_tensor *p = &before->layout.tensors[t];
        char key[160];
        snprintf(key, sizeof key, "%s.%s", prefix, p->name);
        const st_tensor *g = st_find(f, key);
        CHECK(tc, g && g->numel == p->numel, "fixture lacks %s", key);
        if (!g) break;
        float *grad = malloc(p->numel * sizeof *grad);
        st_to_f32(f, g, grad, &err);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < p->numel; i++) {
            double w0 = before->params[p->offset + i], w1 = after->params[p->offset + i];
            double ulps = 2 * 6e-8 * fabs(w0); // float rounding of w0 - g itself
            worst = fmax(worst, fmax(0, fabs((w1 - w0) + grad[i]) - ulps));
            scale = fmax(scale, fabs(grad[i]));
        }
        double tol = tolerance > 0 ? tolerance : 1e-4;
        CHECK(tc, worst <= tol * scale, "%s: weight change differs from -grad by %.3g (relative)", p->name,
              worst / scale);
        free(grad);
    }
}

static void check_step(test_case *tc, const variant *v) {
    bool sft = v->sft;
    char dir[20], shard[128], ckpt[160];
    window w;
    gk_err err = {0};
    run_config rc;
    if (!one_step_config(tc, dir, &w, shard, &rc)) return;
    snprintf(ckpt, sizeof ckpt, "%s/step-000001", rc.run_dir);
    rc.optim.kind = OPTIM_SGD;
    rc.optim.lr = 1;
    rc.optim.grad_clip = 0;
    rc.optim.weight_decay = 0;
    rc.schedule.kind = SCHEDULE_CONSTANT;
    model_state before = {0}, after = {0};
    int r = write_shard(&w, shard, sft, &err);
    if (r == 0 && v->distill) {
        r = teacher_copy(dir, 'a', rc.teacher.model, RC_PATH, &err);
        if (r == 0 && v->from_cache) { // k = vocabulary, float32: the cache holds the whole distribution
            const char *data[] = {shard};
            teacher_cache_job job = {.teacher_dir = rc.teacher.model, .data = data, .n_data = 1,
                                     .seq_len = (size_t)rc.data.seq_len, .method = TEACHER_CACHE_TOPK, .k = 40,
                                     .temperature = v->temperature, .n_parts = 1, .batch = 1,
                                     .logprob_bytes = 4};
            teacher_cache_build_stats st;
            snprintf(rc.teacher.cache, RC_PATH, "%s/cache", dir);
            job.out_dir = rc.teacher.cache;
            r = teacher_cache_build(&job, &st, &err);
            rc.teacher.model[0] = 0;
            rc.kd.sparse = SPARSE_TOPK_BUCKET;
        }
        rc.kd.loss = v->loss;
        rc.kd.alpha = v->alpha;
        rc.kd.temperature = v->temperature;
        rc.kd.beta = v->beta;
        rc.kd.t2_scale = v->t2_scale;
    }
    snprintf(rc.model.precision, RC_NAME, "%s", v->precision ? v->precision : "fp32");
    snprintf(rc.teacher.precision, RC_NAME, "%s", v->teacher_precision ? v->teacher_precision : "");
    if (r == 0) r = run_config_validate(&rc, "test", &err);
    if (r == 0) r = trainer_run(&rc, false, false, &err);
    if (r == 0) r = model_load_dir(rc.model.from, &before, &err);
    if (r == 0) r = model_load_dir(ckpt, &after, &err);
    CHECK(tc, r == 0, "%s", err.msg);
    if (r == 0) check_moved_by_minus_grad(tc, &w.f, v->grad, &before, &after, v->tolerance);
    model_state_free(&before);
    model_state_free(&after);
    st_close(&w.f);
    dir_remove_tree(dir, &err);
}

static void packed_window(test_case *tc) { check_step(tc, &(variant){false, "grad", false, 0, 0, 1, 0, false, false, NULL, NULL, 0}); }
static void sft_window(test_case *tc) { check_step(tc, &(variant){true, "grad_sft", false, 0, 0, 1, 0, false, false, NULL, NULL, 0}); }
static void distill_forward_kl(test_case *tc) {
    check_step(tc, &(variant){false, "grad_fkl", true, KD_FORWARD_KL, 0.7, 2.0, 0.5, true, false, NULL, NULL, 0});
}
static void distill_from_cache(test_case *tc) {
    check_step(tc, &(variant){false, "grad_fkl", true, KD_FORWARD_KL, 0.7, 2.0, 0.5, true, true, NULL, NULL, 0});
}
static void distill_jsd(test_case *tc) { check_step(tc, &(variant){false, "grad_jsd", true, KD_JSD, 1.0, 1.0, 0.3, false, false, NULL, NULL, 0}); }
// The bf16 recipe (bf16 weights into the products, bf16 gradients, float32 master
// weights): the same step within what bf16 allows, for a bf16 student and for a
// bf16 teacher of an fp32 student.
static void bf16_student(test_case *tc) {
    check_step(tc, &(variant){false, "grad", false, 0, 0, 1, 0, false, false, "bf16", NULL, 5e-2});
}
static void bf16_teacher(test_case *tc) {
    check_step(tc, &(variant){false, "grad_fkl", true, KD_FORWARD_KL, 0.7, 2.0, 0.5, true, false, "fp32", "bf16", 2e-2});
}

// On-policy distillation (scripts/reference/on_policy_fixture.py): the fixture's three prompts
// as a shard, every row of the step sampled greedily by the student (temperature 0), the
// divergence trained on the 24 sampled tokens only. The weights move by minus autograd's
// gradient of that loss on the student's own greedy continuations, which gemmakd must
// therefore have sampled too.
static void check_on_policy_step(test_case *tc, kd_divergence loss, const char *grad) {
    char dir[32], shard[128], data[128], ckpt[160], metrics[160];
    gk_err err = {0};
    st_file f;
    window w;
    if (test_scratch_dir(tc, "onpolicy", dir, sizeof dir) || window_load(&w, &err) ||
        st_open(fixture_path("on_policy/sequences.safetensors"), &f, &err)) {
        CHECK(tc, 0, "setup: %s", err.msg);
        return;
    }
    uint32_t tokens[64];
    int64_t starts[3];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "prompt%d", i);
        const st_tensor *p = st_find(&f, key);
        CHECK(tc, p && n + p->numel <= 64, "fixture lacks %s", key);
        if (!p) return;
        starts[i] = (int64_t)n;
        for (size_t j = 0; j < p->numel; j++) tokens[n++] = (uint32_t)((const int32_t *)p->data)[j];
    }
    run_config rc;
    run_config_defaults(&rc);
    snprintf(shard, sizeof shard, "%s/prompts-0.h5", dir);
    snprintf(data, sizeof data, "%s/train-0.h5", dir);
    snprintf(rc.run_dir, RC_PATH, "%s/run", dir);
    snprintf(rc.model.from, RC_PATH, "%s", fixture_path("sgd_step/model"));
    snprintf(rc.data.train.items[0], RC_PATH, "%s", data); // opened, but every row is sampled: none is read
    rc.data.train.count = 1;
    snprintf(rc.kd.on_policy.prompts.items[0], RC_PATH, "%s", shard);
    rc.kd.on_policy.prompts.count = 1;
    rc.data.seq_len = 16;
    rc.batch.size = 3;
    rc.train.steps = 1;
    rc.optim.kind = OPTIM_SGD;
    rc.optim.lr = 1;
    rc.optim.grad_clip = 0;
    rc.optim.weight_decay = 0;
    rc.schedule.kind = SCHEDULE_CONSTANT;
    rc.kd.loss = loss;
    rc.kd.beta = 0.3;
    rc.kd.on_policy.fraction = 1;
    rc.kd.on_policy.max_new_tokens = 8;
    rc.kd.on_policy.temperature = 0;
    model_state before = {0}, after = {0};
    int r = test_write_shard(shard, tokens, n, starts, 3, NULL, 40, &err);
    if (r == 0) r = write_shard(&w, data, false, &err);
    if (r == 0) r = teacher_copy(dir, 'a', rc.teacher.model, RC_PATH, &err);
    if (r == 0) r = run_config_validate(&rc, "test", &err);
    if (r == 0) r = trainer_run(&rc, false, false, &err);
    snprintf(ckpt, sizeof ckpt, "%s/step-000001", rc.run_dir);
    if (r == 0) r = model_load_dir(rc.model.from, &before, &err);
    if (r == 0) r = model_load_dir(ckpt, &after, &err);
    CHECK(tc, r == 0, "%s", err.msg);
    char *log = NULL;
    size_t len;
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", rc.run_dir);
    if (r == 0) file_read_all(metrics, &log, &len, &err);
    CHECK(tc, log && strstr(log, "\"sampled_rows\": 3, \"sampled_tokens\": 24,"), "metrics: %s", log ? log : err.msg);
    if (r == 0) check_moved_by_minus_grad(tc, &f, grad, &before, &after, 0);
    free(log);
    model_state_free(&before);
    model_state_free(&after);
    st_close(&f);
    st_close(&w.f);
    dir_remove_tree(dir, &err);
}
static void on_policy_jsd(test_case *tc) { check_on_policy_step(tc, KD_JSD, "grad_jsd"); }
static void on_policy_reverse_kl(test_case *tc) { check_on_policy_step(tc, KD_REVERSE_KL, "grad_rkl"); }

// A teacher trained with another tokenizer is refused, naming both.
static void teacher_tokenizer_mismatch(test_case *tc) {
    char dir[20], shard[128];
    window w;
    gk_err err = {0};
    run_config rc;
    if (!one_step_config(tc, dir, &w, shard, &rc)) return;
    int r = write_shard(&w, shard, false, &err);
    if (r == 0) r = teacher_copy(dir, 'b', rc.teacher.model, RC_PATH, &err);
    CHECK(tc, r == 0, "setup: %s", err.msg);
    CHECK(tc, trainer_run(&rc, false, false, &err) != 0, "a teacher with another tokenizer was accepted");
    CHECK(tc, strstr(err.msg, "bbbbbbbb") && strstr(err.msg, "aaaaaaaa"), "message does not name both: %s", err.msg);
    st_close(&w.f);
    dir_remove_tree(dir, &err);
}

int main(void) {
    test_run("sgd_step_equals_minus_autograd", packed_window);
    test_run("sgd_step_sft_mask_equals_minus_autograd", sft_window);
    test_run("sgd_step_distill_forward_kl_tau2_alpha", distill_forward_kl);
    test_run("sgd_step_distill_jsd", distill_jsd);
    test_run("sgd_step_distill_from_full_cache", distill_from_cache);
    test_run("sgd_step_bf16_student_near_minus_autograd", bf16_student);
    test_run("sgd_step_bf16_teacher_fp32_student_near_minus_autograd", bf16_teacher);
    test_run("sgd_step_on_policy_jsd_equals_minus_autograd", on_policy_jsd);
    test_run("sgd_step_on_policy_reverse_kl_equals_minus_autograd", on_policy_reverse_kl);
    test_run("teacher_tokenizer_mismatch_refused", teacher_tokenizer_mismatch);
    return test_main_result();
}
