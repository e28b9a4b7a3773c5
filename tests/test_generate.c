// Generation with a KV cache: greedy output equals transformers' generate
// (scripts/reference/generate_fixture.py); the logits behind every generated
// token equal a full-sequence forward pass of the float64 build, well past the
// sliding window and with continuous batching; the samplers against their
// definitions; sampled output independent of the batch; and the JSONL prompt
// pipeline: answers in place of the original ones, resume, bad records.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/rng.h"
#include "gen/generate.h"
#include "model/gemma2.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_generate";

static char gemmakd[1024], work[64];

static const char *wpath(const char *name) { return test_join(work, name); } // work/name

// Runs gemmakd with argv (after the binary), stdin from infile (or /dev/null),
// stdout to outfile, stderr to work/err; returns the wait status.
static int run_io(const char *infile, const char *outfile, const char *const *args) {
    const char *argv[40] = {gemmakd};
    int n = 1;
    while (*args && n < 39) argv[n++] = *args++;
    argv[n] = NULL;
    return test_spawn_io(argv, NULL, infile, outfile, test_join(work, "err"));
}

static int run_to(const char *outfile, const char *const *args) { return run_io(NULL, outfile, args); }

static int make_model(const char *dir, int vocab, int window, model_state *m, gk_err *err) {
    int rc = tiny_model(&(tiny_shape){32, 48, 3, 4, 2, window, vocab, 96}, 5, m, err);
    if (rc == 0) {
        tiny_model_random_norms(m, 0.5, 77); // varied continuations
        if (dir) rc = model_create_dir(dir, m, ST_F32, 0, NULL, err);
    }
    return rc;
}

// ---------------------------------------------------------------- against transformers

static void greedy_matches_transformers(test_case *tc) {
    char *text = test_read_text(fixture_path("generate/cases.json"));
    json_doc doc;
    gk_err err = {0};
    if (json_parse(text, strlen(text), "cases.json", &doc, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        free(text);
        return;
    }
    const json_value *cases = json_get(doc.root, "cases");
    for (size_t c = 0; c < cases->count; c++) {
        const json_value *p = json_get(cases->items[c], "prompt"), *want = json_get(cases->items[c], "generated");
        strbuf ids = {0};
        for (size_t i = 0; i < p->count; i++) sb_printf(&ids, "%s%lld", i ? "," : "", p->items[i]->integer);
        char n[16];
        snprintf(n, sizeof n, "%zu", want->count);
        int st = run_to(wpath("out"), (const char *[]){"generate", "--model", fixture_path("generate"), "--tokens", ids.data,
                                                      "--max-new-tokens", n, "--greedy", "--no-stop", NULL});
        char *got = test_read_text(wpath("out"));
        json_doc g;
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && json_parse(got, strlen(got), "output", &g, &err) == 0;
        CHECK(tc, ok, "case %zu: status %d: %s", c, st, got);
        if (ok) {
            bool same = g.root->count == want->count;
            for (size_t i = 0; same && i < want->count; i++) same = g.root->items[i]->integer == want->items[i]->integer;
            CHECK(tc, same, "case %zu: %s differs from transformers", c, got);
            json_free(&g);
        }
        free(got);
        sb_free(&ids);
    }
    json_free(&doc);
    free(text);
}

// ---------------------------------------------------------------- against the full forward pass

enum { N_REQ = 3, MAX_NEW = 40 };
static float hooked[N_REQ][MAX_NEW][600]; // the logits behind each generated token

static void keep_logits(void *ctx, size_t request, size_t index, const float *logits, int V) {
    (void)ctx;
    memcpy(hooked[request][index], logits, (size_t)V * sizeof *logits);
}

static double head_rows(void *ctx, const double *logits, double *dl, size_t first, size_t count, int V) {
    (void)dl;
    memcpy((double *)ctx + first * (size_t)V, logits, count * (size_t)V * sizeof *logits);
    return 0;
}

// Logits [n, V] of a sequence, float64 build.
static double *full_logits(const model_state *m, const int32_t *ids, int n, gk_err *err) {
    int V = m->cfg.vocab_size;
    double *p = malloc(m->layout.n_floats * sizeof *p), *out = malloc((size_t)n * V * sizeof *out), loss;
    for (size_t i = 0; i < m->layout.n_floats; i++) p[i] = m->params[i];
    weights_f64 w;
    weights_point_f64(&m->layout, p, &w);
    acts_f64 a;
    token_batch b = {.B = 1, .T = n, .tokens = ids};
    int rc = acts_init_f64(&a, &m->cfg, 1, n, false, err);
    if (rc == 0) rc = model_forward_f64(&m->cfg, &w, &a, &b, 0, err);
    if (rc == 0) rc = model_head_f64(&m->cfg, &w, &a, NULL, head_rows, out, n, &loss, err);
    acts_free_f64(&a);
    free(p);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static void decode_logits_match_full_forward(test_case *tc) {
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, make_model(NULL, 600, 4, &m, &err) == 0, "%s", err.msg);
    int32_t p0[] = {2}, p1[] = {2, 10, 20, 30, 40}, p2[] = {2, 9, 8, 7, 6, 5, 4, 3, 300, 301};
    gen_request reqs[N_REQ] = {{p0, 1, MAX_NEW, 1}, {p1, 5, MAX_NEW, 2}, {p2, 10, 25, 3}};
    generator g = {.m = &m, .sampling = {.greedy = true}, .batch = 2, .on_logits = keep_logits}; // continuous batching
    gen_output outs[N_REQ];
    gen_stats st;
    CHECK(tc, generate(&g, reqs, N_REQ, outs, &st, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    int V = m.cfg.vocab_size;
    for (int r = 0; r < N_REQ; r++) {
        int n = (int)(reqs[r].n_prompt + outs[r].n);
        int32_t ids[128];
        memcpy(ids, reqs[r].prompt, reqs[r].n_prompt * sizeof *ids);
        memcpy(ids + reqs[r].n_prompt, outs[r].tokens, outs[r].n * sizeof *ids);
        CHECK(tc, outs[r].n == (size_t)reqs[r].max_new && outs[r].finish == GEN_LENGTH, "request %d: %zu tokens", r, outs[r].n);
        double *full = full_logits(&m, ids, n, &err);
        CHECK(tc, full, "%s", err.msg);
        double worst = 0, scale = 0;
        for (size_t i = 0; full && i < outs[r].n; i++) { // token i was chosen at position n_prompt - 1 + i
            const double *want = full + (reqs[r].n_prompt - 1 + i) * (size_t)V;
            for (int v = 0; v < V; v++) {
                worst = fmax(worst, fabs(hooked[r][i][v] - want[v]));
                scale = fmax(scale, fabs(want[v]));
            }
        }
        CHECK(tc, worst <= 1e-5 * scale, "request %d: decode logits differ from the full forward by %.3g (scale %.3g)", r,
              worst, scale);
        free(full);
    }
    int distinct = 0; // the test means something only if the continuation varies
    for (size_t i = 1; i < outs[1].n; i++) distinct += outs[1].tokens[i] != outs[1].tokens[i - 1];
    CHECK(tc, distinct >= 5, "request 1 repeats itself (%d changes); the model is too degenerate for this test", distinct);
    gen_outputs_free(outs, N_REQ);
    model_state_free(&m);
}

// ---------------------------------------------------------------- sampling

static void samplers_follow_their_definitions(test_case *tc) {
    enum { V = 6, DRAWS = 100000 };
    float logits[V] = {2.0f, 1.0f, 0.5f, 0.5f, -1.0f, -3.0f};
    double p[V], z = 0;
    for (int i = 0; i < V; i++) z += p[i] = exp(logits[i] / 0.7);
    for (int i = 0; i < V; i++) p[i] /= z;
    sample_cand work[V];
    struct {
        sampling s;
        bool keep[V]; // the tokens each setting may draw
    } cases[] = {
        {{.temperature = 0.7, .top_p = 1}, {1, 1, 1, 1, 1, 1}},
        {{.temperature = 0.7, .top_k = 3, .top_p = 1}, {1, 1, 1, 0, 0, 0}}, // tie at rank 3: the lower id
        {{.temperature = 0.7, .top_p = 0.8}, {1, 1, 0, 0, 0, 0}},
        {{.temperature = 0.7, .top_p = 1, .min_p = 0.2}, {1, 1, 0, 0, 0, 0}}, // p2 / p0 = 0.12
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double mass = 0;
        for (int i = 0; i < V; i++) mass += cases[c].keep[i] ? p[i] : 0;
        int count[V] = {0};
        for (int d = 0; d < DRAWS; d++) count[sample_token(logits, V, &cases[c].s, (d + 0.5) / DRAWS, work)]++;
        for (int i = 0; i < V; i++) {
            double want = cases[c].keep[i] ? p[i] / mass : 0;
            CHECK(tc, fabs(count[i] / (double)DRAWS - want) <= 2.0 / DRAWS, "case %zu token %d: frequency %.5f, expected %.5f",
                  c, i, count[i] / (double)DRAWS, want);
        }
    }
    // A long tail (61 tokens sharing 5% of the mass): the filters must see the
    // whole vocabulary's sums even though the tail tokens never survive them.
    enum { VL = 64 };
    float tail_logits[VL];
    double tail_p[VL];
    for (int i = 0; i < VL; i++) tail_p[i] = i == 0 ? 0.5 : i == 1 ? 0.3 : i == 2 ? 0.15 : 0.05 / (VL - 3);
    for (int i = 0; i < VL; i++) tail_logits[i] = (float)log(tail_p[i]);
    sample_cand tail_work[VL];
    struct {
        sampling s;
        int kept; // tokens 0..kept-1 may be drawn, in proportion to tail_p
    } tail_cases[] = {
        {{.temperature = 1, .top_p = 0.82}, 3},             // 0.5 + 0.3 < 0.82 of the full mass
        {{.temperature = 1, .top_p = 1, .min_p = 0.01}, 3}, // the tail is below 0.01 x 0.5
        {{.temperature = 1, .top_k = 10, .top_p = 0.82}, 2}, // 0.8 >= 0.82 x (0.95 + 7 tail tokens)
        {{.temperature = 1, .top_k = 10, .top_p = 0.84, .min_p = 0.01}, 3}, // 0.8 < 0.84 x 0.9557: min-p must not thin top-k first
    };
    for (size_t c = 0; c < sizeof tail_cases / sizeof tail_cases[0]; c++) {
        double mass = 0;
        for (int i = 0; i < tail_cases[c].kept; i++) mass += tail_p[i];
        int count[VL] = {0};
        for (int d = 0; d < DRAWS; d++)
            count[sample_token(tail_logits, VL, &tail_cases[c].s, (d + 0.5) / DRAWS, tail_work)]++;
        for (int i = 0; i < VL; i++) {
            double want = i < tail_cases[c].kept ? tail_p[i] / mass : 0;
            CHECK(tc, fabs(count[i] / (double)DRAWS - want) <= 2.0 / DRAWS,
                  "long-tail case %zu token %d: frequency %.5f, expected %.5f", c, i, count[i] / (double)DRAWS, want);
        }
    }
    sampling greedy = {.greedy = true};
    float tie[4] = {0, 3, 3, 1};
    CHECK(tc, sample_token(tie, 4, &greedy, 0.9, work) == 1, "greedy: the lowest id among equal maxima");
}

// The top-p cut where the mass lands exactly on it: transformers' TopPLogitsWarper removes the
// tokens whose ascending cumulative probability is <= 1 - top_p, so four equal tokens at
// top_p 0.5 keep two (a "kept <= cut" loop would keep three).
static void top_p_boundary_keeps_exact_mass(test_case *tc) {
    enum { V = 6, DRAWS = 1000 };
    float logits[V] = {1.0f, 1.0f, 1.0f, 1.0f, -2.0f, -3.0f};
    sample_cand work[V];
    const sampling cases[] = {
        {.temperature = 1, .top_p = 0.5},             // cut at 0.5 of the whole mass: ids 0 and 1
        {.temperature = 1, .top_k = 4, .top_p = 0.5}, // top-k keeps the four equal ones, top-p half of them
    };
    float equal[4] = {0, 0, 0, 0};
    for (size_t c = 0; c < 2; c++) {
        int count[V] = {0};
        for (int d = 0; d < DRAWS; d++) count[sample_token(c == 0 ? equal : logits, c == 0 ? 4 : V, &cases[c], (d + 0.5) / DRAWS, work)]++;
        CHECK(tc, count[0] == DRAWS / 2 && count[1] == DRAWS / 2, "case %zu: ids 0 and 1 drawn %d and %d times of %d", c,
              count[0], count[1], DRAWS);
        for (int i = 2; i < V; i++) CHECK(tc, count[i] == 0, "case %zu: id %d drawn %d times", c, i, count[i]);
    }
}

// Non-finite logits: every filter may drop every candidate, yet the sampler returns an id
// of the row and reads nothing outside its work space (ASan: heap-buffer-overflow before).
static void non_finite_rows_stay_in_bounds(test_case *tc) {
    enum { V = 5 };
    const float rows[3][V] = {{NAN, NAN, NAN, NAN, NAN}, {INFINITY, 0, 1, INFINITY, 2}, {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    const sampling cases[] = {{.temperature = 1, .top_p = 1, .min_p = 0.1},
                              {.temperature = 1, .top_p = 0.9},
                              {.temperature = 1, .top_k = 2, .top_p = 0.9, .min_p = 0.5},
                              {.temperature = 1, .top_p = 1}};
    sample_cand *work = malloc(V * sizeof *work); // on the heap, where ASan sees a read past it
    for (int r = 0; r < 3; r++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int d = 0; d < 4; d++) {
                int32_t id = sample_token(rows[r], V, &cases[c], d / 4.0, work);
                CHECK(tc, id >= 0 && id < V, "row %d case %zu draw %d: id %d", r, c, d, id);
            }
    free(work);
}

// The logits behind every token of a request, bit for bit, do not depend on the batch or on which
// requests share it (fp32 and bf16 on the CPU): what lets ranks split requests without changing answers.
static void logits_bits_independent_of_batch(test_case *tc) {
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, make_model(NULL, 600, 4, &m, &err) == 0, "%s", err.msg);
    int32_t p0[] = {2, 7}, p1[] = {2, 10, 20, 30, 40}, p2[] = {2, 9, 8, 7, 6, 5, 4, 3, 300, 301};
    gen_request reqs[N_REQ] = {{p0, 2, MAX_NEW, 1}, {p1, 5, 17, 2}, {p2, 10, 25, 3}};
    static float alone[N_REQ][MAX_NEW][600];
    for (int precision = 0; !tc->failed && precision < 2; precision++) {
        generator g = {.m = &m, .sampling = {.greedy = true}, .on_logits = keep_logits,
                       .backend = {.precision = precision ? PRECISION_BF16 : PRECISION_FP32}};
        gen_output outs[N_REQ];
        gen_stats st;
        g.batch = 1; // each request alone: only request r in the call
        for (int r = 0; !tc->failed && r < N_REQ; r++) {
            gen_request one = reqs[r];
            CHECK(tc, generate(&g, &one, 1, outs, &st, &err) == 0, "%s", err.msg);
            if (tc->failed) break;
            memcpy(alone[r], hooked[0], outs[0].n * sizeof hooked[0][0]);
            gen_outputs_free(outs, 1);
        }
        for (int batch = 2; !tc->failed && batch <= 4; batch++) {
            g.batch = batch;
            CHECK(tc, generate(&g, reqs, N_REQ, outs, &st, &err) == 0, "%s", err.msg);
            for (int r = 0; !tc->failed && r < N_REQ; r++)
                CHECK(tc, !memcmp(alone[r], hooked[r], outs[r].n * sizeof hooked[0][0]),
                      "%s: request %d's logits differ between alone and batch %d", precision ? "bf16" : "fp32", r, batch);
            if (!tc->failed) gen_outputs_free(outs, N_REQ);
        }
    }
    model_state_free(&m);
}

static void sampled_output_independent_of_batch(test_case *tc) {
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, make_model(NULL, 600, 4, &m, &err) == 0, "%s", err.msg);
    int32_t a[] = {2, 5}, b[] = {2, 7, 9, 11}, c[] = {2};
    gen_request reqs[3] = {{a, 2, 20, 11}, {b, 4, 12, 12}, {c, 1, 30, 13}};
    generator g = {.m = &m, .sampling = {.temperature = 0.9, .top_k = 50, .top_p = 0.95}, .batch = 1};
    gen_output one[3], three[3];
    gen_stats st;
    CHECK(tc, generate(&g, reqs, 3, one, &st, &err) == 0, "%s", err.msg);
    g.batch = 3;
    CHECK(tc, generate(&g, reqs, 3, three, &st, &err) == 0, "%s", err.msg);
    for (int r = 0; !tc->failed && r < 3; r++)
        CHECK(tc, one[r].n == three[r].n && !memcmp(one[r].tokens, three[r].tokens, one[r].n * sizeof(int32_t)),
              "request %d differs between batch 1 and batch 3", r);
    int32_t stop = one[2].tokens[3]; // a stop id ends the request there, kept as its last token
    g.stop_ids = &stop;
    g.n_stop = 1;
    gen_output stopped[3];
    CHECK(tc, generate(&g, reqs, 3, stopped, &st, &err) == 0, "%s", err.msg);
    size_t first = 0;
    while (first < one[2].n && one[2].tokens[first] != stop) first++;
    CHECK(tc, !tc->failed && stopped[2].finish == GEN_STOP && stopped[2].n == first + 1, "stop id: %zu tokens, expected %zu",
          stopped[2].n, first + 1);
    g.stop_ids = NULL; // a padded vocabulary: only ids below the tokenizer's are drawn
    g.n_stop = 0;
    g.vocab_limit = 40;
    gen_output limited[3];
    CHECK(tc, generate(&g, reqs, 3, limited, &st, &err) == 0, "%s", err.msg);
    for (int r = 0; !tc->failed && r < 3; r++)
        for (size_t i = 0; i < limited[r].n; i++) CHECK(tc, limited[r].tokens[i] < 40, "id %d drawn past the limit", limited[r].tokens[i]);
    if (!tc->failed) gen_outputs_free(limited, 3);
    if (!tc->failed) {
        gen_outputs_free(stopped, 3);
        gen_outputs_free(one, 3);
        gen_outputs_free(three, 3);
    }
    model_state_free(&m);
}

// ---------------------------------------------------------------- the JSONL pipeline

static char model_dir[256], prompts_path[256], out_path[256];

static const char *prompt_lines[] = {
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Who begat Enos?\"}, "
    "{\"role\": \"assistant\", \"content\": \"ORIGINAL\"}, {\"role\": \"user\", \"content\": \"And then?\"}, "
    "{\"role\": \"assistant\", \"content\": \"ORIGINAL\"}]}",
    "{\"prompt\": \"Define turbidity.\"}",
    "",
    "{\"conversation\": [{\"role\": \"user\", \"content\": \"Hello there\"}, {\"role\": \"assistant\", \"content\": \"ORIGINAL\"}]}",
    "{\"text\": \"plain text has nothing to answer\"}",
    "{\"prompt\": \"What is a fortune?\"}",
};

static int write_prompts(size_t n) {
    strbuf sb = {0};
    for (size_t i = 0; i < n; i++) sb_printf(&sb, "%s\n", prompt_lines[i]);
    gk_err err;
    int rc = file_write_atomic(prompts_path, sb.data, sb.len, &err);
    sb_free(&sb);
    return rc;
}

enum { ARG_PROMPTS = 7, ARG_MAX_NEW = 11, ARG_TEMPERATURE = 13, ARG_SEED = 15, ARG_BATCH = 16, ARG_LAST = 18 };

// generate --prompts with the pipeline's settings, args[i] replaced by the non-NULL set[i];
// max_file_bytes > 0: on a disk that is full past that size.
static int answer_with(const char *out, const char *const set[20], long long max_file_bytes) {
    const char *args[20] = {gemmakd, "generate", "--model", model_dir, "--tokenizer",
                            fixture_path("tokenizer/spm_bpe.model"), "--prompts", prompts_path, "--out", out,
                            "--max-new-tokens", "12", "--temperature", "0.8", "--seed", "4", "--batch", "2", NULL, NULL};
    for (int i = 0; set && i < 20; i++)
        if (set[i]) args[i] = set[i];
    if (max_file_bytes > 0) return test_spawn_full_disk(args, max_file_bytes, wpath("err"));
    return test_spawn_io(args, NULL, NULL, wpath("stdout"), wpath("err"));
}

static int answer(const char *out, bool skip_bad) {
    return answer_with(out, (const char *[20]){[ARG_LAST] = skip_bad ? "--skip-bad" : NULL}, 0);
}

// The output lines of a file by record number (line i of the input at index i).
static int by_record(const char *path, char *lines[8]) {
    char *text = test_read_text(path);
    int n = 0;
    for (char *p = text, *end; *p; p = end + 1) {
        end = strchr(p, '\n');
        if (!end) break;
        const char *r = strstr(p, "\"record\": ");
        int rec = r && r < end ? atoi(r + 10) : 0;
        if (rec > 0 && rec < 8) lines[rec] = strndup(p, (size_t)(end - p)), n++;
    }
    free(text);
    return n;
}

static void prompts_pipeline(test_case *tc) {
    CHECK(tc, write_prompts(5) == 0, "cannot write prompts");
    int st = answer(out_path, false); // line 5 is a text record
    char *msg = test_read_text(wpath("err"));
    char want[300];
    snprintf(want, sizeof want, "%s:5:", prompts_path);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, want) && !path_exists(out_path),
          "a bad record: status %d, %s", st, msg);
    free(msg);
    st = answer(out_path, true);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "--skip-bad: status %d", st);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    CHECK(tc, path_exists(out_path) && !path_exists(tmp), "output not renamed into place");
    char *first[8] = {0};
    CHECK(tc, by_record(out_path, first) == 3 && first[1] && first[2] && first[4], "expected records 1, 2 and 4");
    if (tc->failed) return;
    // Original answers dropped; one assistant turn after each user turn; the system message kept.
    json_doc d;
    gk_err err;
    CHECK(tc, json_parse(first[1], strlen(first[1]), "line", &d, &err) == 0, "%s", err.msg);
    const json_value *msgs = json_get(d.root, "messages");
    const char *roles[] = {"system", "user", "assistant", "user", "assistant"};
    CHECK(tc, msgs && msgs->count == 5 && !strstr(first[1], "ORIGINAL"), "record 1: %s", first[1]);
    for (size_t i = 0; !tc->failed && i < 5; i++)
        CHECK(tc, !strcmp(json_get(msgs->items[i], "role")->string, roles[i]), "record 1 message %zu", i);
    const json_value *meta = json_get(d.root, "meta");
    CHECK(tc, meta && json_get(meta, "tokens")->integer >= 2 && json_get(meta, "finish"), "record 1 meta: %s", first[1]);
    json_free(&d);
    // Resume: two records more; the answered ones are kept as they are, the new ones
    // equal a fresh run's (each record draws from its own seed).
    CHECK(tc, write_prompts(6) == 0, "cannot write prompts");
    st = answer(out_path, true);
    char *second[8] = {0};
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && by_record(out_path, second) == 4, "resume: status %d", st);
    char fresh_path[300];
    snprintf(fresh_path, sizeof fresh_path, "%s", wpath("fresh.jsonl"));
    st = answer(fresh_path, true);
    char *fresh[8] = {0};
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && by_record(fresh_path, fresh) == 4, "fresh run: status %d", st);
    for (int r = 1; !tc->failed && r < 7; r++) {
        if (!fresh[r]) continue;
        CHECK(tc, second[r] && !strcmp(second[r], fresh[r]), "record %d differs between the resumed and a fresh run", r);
        CHECK(tc, !first[r] || !strcmp(first[r], second[r]), "record %d changed on resume", r);
    }
    // A full disk (or a kill) while writing: OUT.tmp ends in half a line; the rerun answers that record again.
    char *all = test_read_text(fresh_path);
    unlink(fresh_path);
    st = answer_with(fresh_path, (const char *[20]){[ARG_LAST] = "--skip-bad"}, (long long)strlen(all) * 2 / 3);
    snprintf(tmp, sizeof tmp, "%s.tmp", fresh_path);
    char *cut = test_read_text(tmp);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && !path_exists(fresh_path) && cut[0] && cut[strlen(cut) - 1] != '\n',
          "a full disk: status %d, OUT.tmp '%s'", st, cut);
    free(cut);
    st = answer(fresh_path, true);
    char *again[8] = {0};
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && by_record(fresh_path, again) == 4, "after a cut line: status %d", st);
    for (int r = 1; !tc->failed && r < 7; r++) CHECK(tc, !fresh[r] == !again[r] && (!fresh[r] || !strcmp(fresh[r], again[r])), "record %d after a cut line", r);
    free(all);
    for (int r = 0; r < 8; r++) free(first[r]), free(second[r]), free(fresh[r]), free(again[r]);
}

// A rerun continues OUT.tmp (or a finished OUT) only with the settings that wrote it: any other
// prompts file, sampler, seed, budget, stop ids or precision is refused naming the setting and
// both values, and the file is left as it was.
static void prompts_resume_needs_same_settings(test_case *tc) {
    char out[300], tmp[320], other[300];
    snprintf(out, sizeof out, "%s", wpath("settings.jsonl"));
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(other, sizeof other, "%s", wpath("other-prompts.jsonl"));
    const char *other_text = "{\"prompt\": \"Something else entirely.\"}\n";
    gk_err err;
    CHECK(tc, write_prompts(6) == 0 && file_write_atomic(other, other_text, strlen(other_text), &err) == 0, "setup");
    int st = answer_with(out, (const char *[20]){[ARG_LAST] = "--skip-bad"}, 1200); // stopped after a record or two
    char *before = test_read_text(tmp);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(before, "\"record\": ") && !path_exists(out),
          "the stopped run: status %d, OUT.tmp '%s'", st, before);
    const struct {
        const char *set[20], *needle;
    } cases[] = {
        {{[ARG_PROMPTS] = other}, "prompts_sha256 "},
        {{[ARG_MAX_NEW] = "10"}, "max_new_tokens 12, but this run has max_new_tokens 10"},
        {{[ARG_TEMPERATURE] = "0.7"}, "sampling temperature 0.8, top_k 0, top_p 1, min_p 0, but this run has sampling "
                                      "temperature 0.7"},
        {{[ARG_TEMPERATURE - 1] = "--greedy", [ARG_TEMPERATURE] = "--skip-bad"}, "but this run has sampling greedy"},
        {{[ARG_SEED] = "5"}, "seed 4, but this run has seed 5"},
        {{[ARG_LAST] = "--no-stop"}, "but this run has stop_ids none"},
        {{[ARG_BATCH] = "--precision", [ARG_BATCH + 1] = "bf16"}, "precision fp32, but this run has precision bf16"},
    };
    for (size_t i = 0; !tc->failed && i < sizeof cases / sizeof cases[0]; i++) {
        st = answer_with(out, cases[i].set, 0);
        char *msg = test_read_text(wpath("err")), *after = test_read_text(tmp);
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, cases[i].needle) && strstr(msg, tmp) &&
                      test_one_line(msg) && !strcmp(before, after) && !path_exists(out),
              "case %zu: status %d: %s", i, st, msg);
        free(msg);
        free(after);
    }
    st = answer_with(out, (const char *[20]){[ARG_LAST] = "--skip-bad"}, 0);
    char *lines[8] = {0};
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && by_record(out, lines) == 4 && !path_exists(tmp),
          "the same settings: status %d", st);
    st = answer_with(out, (const char *[20]){[ARG_SEED] = "5", [ARG_LAST] = "--skip-bad"}, 0); // a finished OUT
    char *msg = test_read_text(wpath("err")), want[340];
    snprintf(want, sizeof want, "%s:1: answered with seed 4, but this run has seed 5", out);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, want), "a finished OUT, another seed: status %d: %s",
          st, msg);
    for (int r = 0; r < 8; r++) free(lines[r]);
    free(msg);
    free(before);
}

// A prompt longer than the model's positions is a bad record like a malformed one:
// an error naming file:line, or with --skip-bad skipped and counted while the others are answered.
static void overlong_prompt(test_case *tc) {
    char in[300], out[300], want[320];
    snprintf(in, sizeof in, "%s", wpath("long-prompts.jsonl"));
    snprintf(out, sizeof out, "%s", wpath("long-answers.jsonl"));
    strbuf sb = {0};
    sb_puts(&sb, "{\"prompt\": \"Define turbidity.\"}\n{\"prompt\": \"");
    for (int i = 0; i < 60; i++) sb_puts(&sb, "many words "); // well past the model's 96 positions
    sb_puts(&sb, "\"}\n{\"prompt\": \"What is a fortune?\"}\n");
    gk_err err;
    CHECK(tc, file_write_atomic(in, sb.data, sb.len, &err) == 0, "%s", err.msg);
    sb_free(&sb);
    const char *tokfile = fixture_path("tokenizer/spm_bpe.model");
    const char *args[] = {"generate", "--model", model_dir, "--tokenizer", tokfile, "--prompts", in, "--out", out,
                          "--max-new-tokens", "8", "--greedy", NULL, NULL};
    int st = run_to(wpath("stdout"), args);
    char *msg = test_read_text(wpath("err"));
    snprintf(want, sizeof want, "gemmakd: error: %s:2: ", in);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, want) && strstr(msg, "96 positions") &&
                  !path_exists(out),
          "without --skip-bad: status %d, %s", st, msg);
    free(msg);
    args[12] = "--skip-bad";
    st = run_to(wpath("stdout"), args);
    msg = test_read_text(wpath("err"));
    char *lines[8] = {0};
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "--skip-bad: status %d, %s", st, msg);
    CHECK(tc, by_record(out, lines) == 2 && lines[1] && lines[3], "--skip-bad: expected records 1 and 3");
    CHECK(tc, strstr(msg, "1 skipped"), "--skip-bad: the skipped record is not counted: %s", msg);
    for (int r = 0; r < 8; r++) free(lines[r]);
    free(msg);
}

// chat answers a conversation as generate --prompts does (greedy: the same text).
static void chat_matches_prompts(test_case *tc) {
    const char *rec = "{\"messages\": [{\"role\": \"user\", \"content\": \"Who begat Enos?\"}, "
                      "{\"role\": \"assistant\", \"content\": \"ORIGINAL\"}, {\"role\": \"user\", \"content\": \"And then?\"}]}\n";
    const char *input = "Who begat Enos?\nAnd then?\n";
    char in[300], chat_in[300], out[300], chat_out[300];
    snprintf(in, sizeof in, "%s", wpath("chat-prompts.jsonl"));
    snprintf(chat_in, sizeof chat_in, "%s", wpath("chat-in.txt"));
    snprintf(out, sizeof out, "%s", wpath("chat-answers.jsonl"));
    snprintf(chat_out, sizeof chat_out, "%s", wpath("chat-out.txt"));
    gk_err err;
    CHECK(tc, file_write_atomic(in, rec, strlen(rec), &err) == 0 && file_write_atomic(chat_in, input, strlen(input), &err) == 0,
          "%s", err.msg);
    const char *tokfile = fixture_path("tokenizer/spm_bpe.model");
    int st = run_to(wpath("stdout"), (const char *[]){"generate", "--model", model_dir, "--tokenizer", tokfile, "--prompts", in,
                                                      "--out", out, "--greedy", "--max-new-tokens", "10", NULL});
    int st2 = run_io(chat_in, chat_out, (const char *[]){"chat", "--model", model_dir, "--tokenizer", tokfile, "--greedy",
                                                        "--max-new-tokens", "10", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "status %d / %d", st, st2);
    char *line = test_read_text(out), *said = test_read_text(chat_out);
    json_doc d;
    if (!tc->failed && json_parse(line, strlen(line), "answers", &d, &err) == 0) {
        const json_value *m = json_get(d.root, "messages");
        strbuf want = {0};
        sb_printf(&want, "%s\n%s\n", json_get(m->items[1], "content")->string, json_get(m->items[3], "content")->string);
        CHECK(tc, strlen(said) > 6 && !strcmp(want.data, said), "chat said:\n%s\ngenerate --prompts answered:\n%s", said, want.data);
        sb_free(&want);
        json_free(&d);
    } else {
        CHECK(tc, 0, "cannot read %s: %s", out, line);
    }
    free(line);
    free(said);
}

// A turn that does not fit the model's positions is refused with a notice, and the
// session goes on: the next turn is answered as in a fresh conversation.
static void chat_full_context_keeps_session(test_case *tc) {
    char in[300], fresh_in[300], out[300], fresh_out[300];
    snprintf(in, sizeof in, "%s", wpath("full-in.txt"));
    snprintf(fresh_in, sizeof fresh_in, "%s", wpath("full-fresh-in.txt"));
    snprintf(out, sizeof out, "%s", wpath("full-out.txt"));
    snprintf(fresh_out, sizeof fresh_out, "%s", wpath("full-fresh-out.txt"));
    strbuf sb = {0};
    for (int i = 0; i < 60; i++) sb_puts(&sb, "Who begat Enos and who begat Cainan? ");
    sb_puts(&sb, "\nWho begat Enos?\n");
    const char *fresh = "Who begat Enos?\n";
    gk_err err;
    CHECK(tc, file_write_atomic(in, sb.data, sb.len, &err) == 0 && file_write_atomic(fresh_in, fresh, strlen(fresh), &err) == 0,
          "%s", err.msg);
    sb_free(&sb);
    const char *tokfile = fixture_path("tokenizer/spm_bpe.model");
    int st = run_io(in, out, (const char *[]){"chat", "--model", model_dir, "--tokenizer", tokfile, "--greedy",
                                              "--max-new-tokens", "10", NULL});
    char *msg = test_read_text(wpath("err"));
    int st2 = run_io(fresh_in, fresh_out, (const char *[]){"chat", "--model", model_dir, "--tokenizer", tokfile, "--greedy",
                                                           "--max-new-tokens", "10", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(msg, "fills the model's 96 positions") && strstr(msg, "/reset"),
          "a turn past the positions: status %d: %s", st, msg);
    char *said = test_read_text(out), *want = test_read_text(fresh_out);
    CHECK(tc, WIFEXITED(st2) && WEXITSTATUS(st2) == 0 && strlen(want) > 1 && !strcmp(said, want),
          "after the refused turn chat said \"%s\", a fresh chat \"%s\"", said, want);
    free(msg);
    free(said);
    free(want);
}

// A model whose weights hold a NaN gives non-finite logits: generation stops with an
// error naming the model instead of sampling from them (greedy or not).
static void non_finite_logits_are_an_error(test_case *tc) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", wpath("nan-model"));
    model_state m = {0};
    gk_err err = {0};
    int rc = make_model(NULL, 600, 4, &m, &err);
    if (rc == 0) {
        m.params[m.layout.tensors[m.layout.n_tensors - 1].offset] = NAN; // the final norm: every logit NaN
        rc = model_create_dir(dir, &m, ST_F32, 0, NULL, &err);
    }
    model_state_free(&m);
    CHECK(tc, rc == 0, "%s", err.msg);
    const char *flags[][4] = {{"--temperature", "1", "--min-p", "0.1"}, {"--greedy", NULL}};
    for (int i = 0; !tc->failed && i < 2; i++) {
        const char *args[] = {"generate", "--model", dir, "--tokens", "2,5", "--max-new-tokens", "3", "--no-stop",
                              flags[i][0], flags[i][1], flags[i][2], flags[i][3], NULL};
        int st = run_to(wpath("stdout"), args);
        char *msg = test_read_text(wpath("err"));
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, dir) && strstr(msg, "not finite") && test_one_line(msg),
              "%s: status %d: %s", flags[i][0], st, msg);
        free(msg);
    }
}

static void usage_errors(test_case *tc) {
    const struct {
        const char *args[12];
        int status;
        const char *want;
    } cases[] = {
        {{"generate", "--model", model_dir, "--tokens", "2,5", "--greedy", "--temperature", "0.5"}, 2, "--greedy takes no"},
        {{"generate", "--model", model_dir, "--tokens", "2,99999"}, 1, "outside the vocabulary"},
        {{"generate", "--model", model_dir, "--tokens", "2,5", "--max-new-tokens", "200"}, 1, "exceed the model's 96 positions"},
        {{"generate", "--model", model_dir, "--prompts", prompts_path}, 2, "--prompts needs --out"},
        {{"generate", "--model", model_dir, "--tokens", "2", "--top-p", "0"}, 2, "--top-p"},
        {{"generate", "--model", model_dir, "--prompts", prompts_path, "--out", wpath("x.jsonl")}, 2, "no tokenizer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = run_to(wpath("stdout"), cases[i].args);
        char *msg = test_read_text(wpath("err"));
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == cases[i].status && strstr(msg, cases[i].want) && test_one_line(msg),
              "case %zu: status %d: %s", i, st, msg);
        free(msg);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    if (test_scratch_dir(NULL, "generate", work, sizeof work)) return 1;
    snprintf(model_dir, sizeof model_dir, "%s/model", work);
    snprintf(prompts_path, sizeof prompts_path, "%s/prompts.jsonl", work);
    snprintf(out_path, sizeof out_path, "%s/answers.jsonl", work);
    model_state m = {0};
    gk_err err = {0};
    if (make_model(model_dir, 8000, 4, &m, &err)) {
        printf("FAIL %s/setup: %s\n", test_program, err.msg);
        return 1;
    }
    model_state_free(&m);
    test_run("greedy_matches_transformers", greedy_matches_transformers);
    test_run("decode_logits_match_full_forward", decode_logits_match_full_forward);
    test_run("samplers_follow_their_definitions", samplers_follow_their_definitions);
    test_run("top_p_boundary_keeps_exact_mass", top_p_boundary_keeps_exact_mass);
    test_run("non_finite_rows_stay_in_bounds", non_finite_rows_stay_in_bounds);
    test_run("logits_bits_independent_of_batch", logits_bits_independent_of_batch);
    test_run("sampled_output_independent_of_batch", sampled_output_independent_of_batch);
    test_run("prompts_pipeline", prompts_pipeline);
    test_run("prompts_resume_needs_same_settings", prompts_resume_needs_same_settings);
    test_run("overlong_prompt", overlong_prompt);
    test_run("chat_matches_prompts", chat_matches_prompts);
    test_run("chat_full_context_keeps_session", chat_full_context_keeps_session);
    test_run("non_finite_logits_are_an_error", non_finite_logits_are_an_error);
    test_run("usage_errors", usage_errors);
    if (test_main_result() == 0) dir_remove_tree(work, &err);
    return test_main_result();
}
