// gemmakd average against float64 references computed here from the input
// weights: uniform, weighted, last-k and EMA (by its recursion), SLERP per
// tensor (and its linear fallback for nearly parallel tensors); run dirs as
// inputs in step order; and the refusals (other config, other tokenizer, bad
// flags) that must leave no output behind.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "model/checkpoint.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_average";

enum { N_MODELS = 4 };
static const int steps[N_MODELS] = {1, 2, 10, 20}; // step-000010 must sort after step-000002
static char gemmakd[1024], work[64], run_dir[128], model_dirs[N_MODELS][160];
static model_state inputs[N_MODELS]; // what the checkpoints hold, oldest first
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int make_model(const char *dir, int vocab, uint64_t seed, const char *sha, model_state *keep, gk_err *err) {
    model_state m;
    int rc = tiny_model(&(tiny_shape){16, 24, 2, 2, 1, 4, vocab, 64}, seed, &m, err);
    if (rc == 0) {
        // Norm weights start at 0; give them values so that every tensor is averaged visibly.
        for (int i = 0; i < m.layout.n_tensors; i++)
            if (m.layout.tensors[i].kind == PARAM_NORM)
                for (size_t j = 0; j < m.layout.tensors[i].numel; j++)
                    m.params[m.layout.tensors[i].offset + j] = (float)sin((double)(seed * 31 + j));
        rc = model_create_dir(dir, &m, ST_F32, 0, sha, err);
    }
    if (rc == 0 && keep) *keep = m;
    else model_state_free(&m);
    return rc;
}

static int run_average(const char *errfile, const char *const *args) {
    const char *argv[24] = {gemmakd, "average"};
    int n = 2;
    while (*args && n < 23) argv[n++] = *args++;
    argv[n] = NULL;
    return test_spawn(argv, NULL, errfile);
}

static const char *wpath(const char *name) { return test_join(work, name); } // work/name

// Runs average into work/out-NAME and compares every weight with ref (float64).
static void expect_average(test_case *tc, const char *name, const char *const *args, const double *ref) {
    char out[256];
    snprintf(out, sizeof out, "%s/out-%s", work, name);
    const char *argv[20] = {"--out", out};
    int n = 2;
    while (*args && n < 19) argv[n++] = *args++;
    argv[n] = NULL;
    int st = run_average(wpath("err"), argv);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", name, st);
    model_state got = {0};
    gk_err err = {0};
    if (model_load_dir(out, &got, &err)) {
        CHECK(tc, 0, "%s: %s", name, err.msg);
        return;
    }
    double worst = 0;
    for (size_t i = 0; i < got.layout.n_floats; i++) { // float rounding of the double result: half an ulp
        double e = fabs((double)got.params[i] - ref[i]) / (fabs(ref[i]) + 1e-30);
        if (fabs((double)got.params[i] - ref[i]) > 1e-12 && e > worst) worst = e;
    }
    CHECK(tc, worst <= 6e-8, "%s: relative error %.3g against the float64 reference", name, worst);
    model_state_free(&got);
}

static size_t n_floats(void) { return inputs[0].layout.n_floats; }

static void weighted_ref(const double *w, double *ref) {
    double total = 0;
    for (int k = 0; k < N_MODELS; k++) total += w[k];
    for (size_t i = 0; i < n_floats(); i++) {
        double s = 0;
        for (int k = 0; k < N_MODELS; k++) s += w[k] * inputs[k].params[i];
        ref[i] = s / total;
    }
}

static void linear_methods(test_case *tc) {
    double *ref = calloc(n_floats(), sizeof *ref);
    double ones[N_MODELS] = {1, 1, 1, 1};
    weighted_ref(ones, ref);
    expect_average(tc, "uniform-run-dir", (const char *[]){run_dir, NULL}, ref);
    expect_average(tc, "uniform-dirs", (const char *[]){"--method", "uniform", model_dirs[0], model_dirs[1], model_dirs[2], model_dirs[3], NULL}, ref);

    double w[N_MODELS] = {1, 0, 2, 0.5};
    weighted_ref(w, ref);
    expect_average(tc, "weighted", (const char *[]){"--method", "weighted", "--weights", "1,0,2,0.5", run_dir, NULL}, ref);

    double last2[N_MODELS] = {0, 0, 1, 1};
    weighted_ref(last2, ref);
    expect_average(tc, "last-k", (const char *[]){"--method", "last-k", "--k", "2", run_dir, NULL}, ref);

    // EMA by its recursion, in the checkpoints' step order.
    const double d = 0.8;
    for (size_t i = 0; i < n_floats(); i++) {
        double e = inputs[0].params[i];
        for (int k = 1; k < N_MODELS; k++) e = d * e + (1 - d) * inputs[k].params[i];
        ref[i] = e;
    }
    expect_average(tc, "ema", (const char *[]){"--method", "ema", "--decay", "0.8", run_dir, NULL}, ref);
    free(ref);
}

// SLERP of one tensor in float64: the angle between the two as vectors, and
// sin-weights; linear interpolation when they are nearly parallel.
static void slerp_ref(const float *a, const float *b, size_t n, double t, double *out) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    double c = ab / sqrt(aa) / sqrt(bb), theta = acos(fmin(1, fmax(-1, c)));
    bool linear = fabs(c) > 0.9995;
    for (size_t i = 0; i < n; i++)
        out[i] = linear ? (1 - t) * a[i] + t * b[i]
                        : (sin((1 - t) * theta) * a[i] + sin(t * theta) * b[i]) / sin(theta);
}

static void slerp_between(test_case *tc) {
    double *ref = calloc(n_floats(), sizeof *ref);
    const param_layout *L = &inputs[0].layout;
    for (int i = 0; i < L->n_tensors; i++) {
        const param_tensor *p = &L->tensors[i];
        slerp_ref(inputs[0].params + p->offset, inputs[3].params + p->offset, p->numel, 0.3, ref + p->offset);
    }
    expect_average(tc, "slerp", (const char *[]){"--method", "slerp", "--t", "0.3", model_dirs[0], model_dirs[3], NULL}, ref);
    // A guard on the case itself (it reads the reference, not gemmakd's output):
    // random tensors are nearly orthogonal, so the SLERP path is not the straight
    // line, and the comparison above could not pass with linear interpolation.
    const param_tensor *e = param_find(L, "model.embed_tokens.weight");
    double na = 0, nm = 0;
    for (size_t i = 0; i < e->numel; i++) {
        double a = inputs[0].params[e->offset + i], b = inputs[3].params[e->offset + i];
        na += a * a;
        nm += ((1 - 0.3) * a + 0.3 * b) * ((1 - 0.3) * a + 0.3 * b);
    }
    double ns = 0;
    for (size_t i = 0; i < e->numel; i++) ns += ref[e->offset + i] * ref[e->offset + i];
    CHECK(tc, ns > 1.15 * nm && fabs(sqrt(ns / na) - 1) < 0.1, "slerp norm %.4g, linear %.4g, input %.4g", sqrt(ns),
          sqrt(nm), sqrt(na));
    free(ref);
}

// A model and the same scaled by 1.5: every tensor pair is parallel, so SLERP is linear.
static void slerp_parallel_is_linear(test_case *tc) {
    gk_err err = {0};
    model_state m = {0};
    CHECK(tc, model_load_dir(model_dirs[1], &m, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < m.layout.n_floats; i++) m.params[i] *= 1.5f;
    CHECK(tc, model_create_dir(wpath("scaled"), &m, ST_F32, 0, SHA_A, &err) == 0, "%s", err.msg);
    double *ref = calloc(n_floats(), sizeof *ref);
    for (size_t i = 0; i < n_floats(); i++) ref[i] = 0.75 * inputs[1].params[i] + 0.25 * (double)m.params[i];
    expect_average(tc, "slerp-parallel", (const char *[]){"--method", "slerp", "--t", "0.25", model_dirs[1], wpath("scaled"), NULL}, ref);
    free(ref);
    model_state_free(&m);
}

static void output_records_tokenizer(test_case *tc) {
    char *text = NULL;
    size_t len;
    gk_err err = {0};
    CHECK(tc, file_read_all(wpath("out-ema/gemmakd.json"), &text, &len, &err) == 0 && strstr(text, SHA_A),
          "gemmakd.json of the average: %s", text ? text : err.msg);
    free(text);
}

// Refusals: one line on stderr naming the problem; no output directory.
static void refusals(test_case *tc) {
    gk_err err = {0};
    char other_vocab[256], other_tok[256], empty_run[256], nowhere[256];
    snprintf(other_vocab, sizeof other_vocab, "%s", wpath("other-vocab"));
    snprintf(other_tok, sizeof other_tok, "%s", wpath("other-tokenizer"));
    snprintf(empty_run, sizeof empty_run, "%s", wpath("empty-run"));
    snprintf(nowhere, sizeof nowhere, "%s", wpath("nowhere"));
    CHECK(tc, make_model(other_vocab, 40, 9, SHA_A, NULL, &err) == 0, "%s", err.msg);
    CHECK(tc, make_model(other_tok, 32, 9, SHA_B, NULL, &err) == 0, "%s", err.msg);
    CHECK(tc, dir_create(empty_run, &err) == 0, "%s", err.msg);
    const struct {
        const char *args[8];
        int status;
        const char *want;
    } cases[] = {
        {{model_dirs[0], other_vocab}, 1, "have different configs: vocab_size 32 vs 40"},
        {{model_dirs[0], other_tok}, 1, "different tokenizers"},
        {{"--method", "slerp", model_dirs[0], model_dirs[1], model_dirs[2]}, 2, "exactly two checkpoints, got 3"},
        {{"--method", "weighted", "--weights", "1,2", run_dir}, 2, "--weights: 2 weights for 4 checkpoints"},
        {{"--method", "weighted", "--weights", "1,-2,1,1", run_dir}, 2, "is not a finite weight >= 0"},
        {{"--method", "weighted", "--weights", "0,0,0,0", run_dir}, 2, "sum to 0"},
        // Each weight finite, their sum not: the average came out all zero (x / inf) with status 0.
        {{"--method", "weighted", "--weights", "1e308,1e308,0,1", run_dir}, 2, "--weights: the weights sum to inf"},
        {{"--method", "last-k", "--k", "5", run_dir}, 2, "--k"},
        {{"--method", "ema", "--decay", "1", run_dir}, 2, "--decay"},
        {{"--method", "mean", run_dir}, 2, "--method: expected uniform"},
        {{"--t", "0.5", run_dir}, 2, "--t goes with --method slerp"},
        {{empty_run}, 1, "neither a model dir"},
        {{nowhere}, 1, "nowhere"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[12] = {"--out", wpath("refused")};
        int n = 2;
        for (int j = 0; cases[i].args[j]; j++) argv[n++] = cases[i].args[j];
        argv[n] = NULL;
        int st = run_average(wpath("err"), argv);
        char *msg = test_read_text(wpath("err"));
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == cases[i].status && strstr(msg, cases[i].want) && test_one_line(msg),
              "case %zu: status %d, stderr: %s", i, st, msg);
        CHECK(tc, access(wpath("refused"), F_OK) != 0, "case %zu left %s behind", i, wpath("refused"));
        free(msg);
    }
    // An existing output is never overwritten.
    int st = run_average(wpath("err"), (const char *[]){"--out", model_dirs[0], model_dirs[1], NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1, "existing --out: status %d", st);
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    if (test_scratch_dir(NULL, "average", work, sizeof work)) return 1;
    snprintf(run_dir, sizeof run_dir, "%s/run", work);
    gk_err err = {0};
    int rc = dir_create(run_dir, &err);
    for (int k = 0; rc == 0 && k < N_MODELS; k++) {
        snprintf(model_dirs[k], sizeof model_dirs[k], "%s/step-%06d", run_dir, steps[k]);
        rc = make_model(model_dirs[k], 32, (uint64_t)(100 + k), SHA_A, &inputs[k], &err);
    }
    if (rc) {
        printf("FAIL %s/setup: %s\n", test_program, err.msg);
        return 1;
    }
    test_run("linear_methods", linear_methods);
    test_run("slerp_between", slerp_between);
    test_run("slerp_parallel_is_linear", slerp_parallel_is_linear);
    test_run("output_records_tokenizer", output_records_tokenizer);
    test_run("refusals", refusals);
    for (int k = 0; k < N_MODELS; k++) model_state_free(&inputs[k]);
    if (test_main_result() == 0) dir_remove_tree(work, &err);
    return test_main_result();
}
