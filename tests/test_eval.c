// gemmakd eval against references computed here on the float64 build of the
// model: loss over the loader's windows (batched, partial last batch, a
// narrowed sliding window), the exact byte count of the evaluated text, KL and
// top-1 agreement with a teacher in process and from a full-vocabulary cache,
// and multiple-choice / log-likelihood requests scored one sequence at a time
// (gemmakd packs them). Bad input is refused naming the file and line.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "data/shards.h"
#include "data/tokenizer/tokenizer.h"
#include "model/checkpoint.h"
#include "model/gemma2.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_eval";

static char gemmakd[1024], work[64], student_dir[128], teacher_dir[128], shard[128], tok_path[512];
static tokenizer *tok;
static model_state student, teacher;
static int32_t *all_ids; // the shard's tokens
static size_t n_ids;
static int64_t doc_starts[16];
static size_t n_docs;
static size_t text_bytes; // UTF-8 bytes of the documents' text

static const char *docs[] = {
    "In the beginning God created the heaven and the earth.",
    "Turbidity, n. Turbidness. \"A pale, wan face\" -- and 42 digits: 3141592653.",
    "Zwölf Boxkämpfer jagen Viktor über den Deich; ça va? 人人生而自由 🙂 done.",
    "And the evening and the morning were the first day.\nAnd God said, Let there be light.",
};

static int make_model(const char *dir, int d, int layers, uint64_t seed, model_state *m, gk_err *err) {
    int rc = tiny_model(&(tiny_shape){d, 2 * d, layers, 2, 1, 8, 8000, 512}, seed, m, err);
    if (rc == 0) {
        const param_tensor *e = param_find(&m->layout, "model.embed_tokens.weight");
        for (size_t i = 0; i < e->numel; i++) m->params[e->offset + i] *= 4; // peaked distributions
        rc = model_create_dir(dir, m, ST_F32, 0, tokenizer_sha256(tok), err);
    }
    return rc;
}

static int write_data(gk_err *err) {
    shard_meta meta = {.vocab_size = 8000, .bos_id = tokenizer_bos_id(tok), .eos_id = tokenizer_eos_id(tok), .pad_id = 0};
    memcpy(meta.tokenizer_sha256, tokenizer_sha256(tok), 65);
    shard_writer *w;
    if (shard_writer_open(&w, shard, &meta, err)) return -1;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        int32_t *ids;
        size_t n;
        if (tokenizer_encode(tok, docs[d], strlen(docs[d]), true, &ids, NULL, &n, err)) return -1;
        uint32_t u[512];
        for (size_t i = 0; i < n; i++) u[i] = (uint32_t)ids[i];
        all_ids = realloc(all_ids, (n_ids + n) * sizeof *all_ids);
        memcpy(all_ids + n_ids, ids, n * sizeof *ids);
        doc_starts[n_docs++] = (int64_t)n_ids;
        n_ids += n;
        text_bytes += strlen(docs[d]);
        free(ids);
        if (shard_writer_add_doc(w, u, NULL, n, err)) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// ---------------------------------------------------------------- the float64 reference

typedef struct {
    double *lp;  // [N] log p(next token) per position
    int *best;   // [N] argmax
    double *lse; // [N]
    double *logits; // [N, V] kept for KL
    const int32_t *next;
} ref_rows;

static double keep_rows(void *ctx, const double *logits, double *dl, size_t first, size_t count, int V) {
    ref_rows *r = ctx;
    (void)dl;
    for (size_t i = 0; i < count; i++) {
        const double *s = logits + i * (size_t)V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (s[v] > s[best]) best = v;
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp(s[v] - s[best]);
        r->best[first + i] = best;
        r->lse[first + i] = s[best] + log(sum);
        r->lp[first + i] = r->next[first + i] >= 0 ? s[r->next[first + i]] - r->lse[first + i] : NAN;
        if (r->logits) memcpy(r->logits + (first + i) * (size_t)V, s, (size_t)V * sizeof *s);
    }
    return 0;
}

// One sequence tokens[0..n) with document starts, in float64; rows get n positions.
static int forward64(const model_state *m, const int32_t *tokens, const int32_t *doc_begin, const int32_t *next, int n,
                     int window, ref_rows *r, gk_err *err) {
    double *p = malloc(m->layout.n_floats * sizeof *p);
    for (size_t i = 0; i < m->layout.n_floats; i++) p[i] = m->params[i];
    weights_f64 w;
    weights_point_f64(&m->layout, p, &w);
    acts_f64 a;
    token_batch b = {.B = 1, .T = n, .tokens = tokens, .doc_begin = doc_begin};
    r->next = next;
    double loss;
    int rc = acts_init_f64(&a, &m->cfg, 1, n, false, err);
    if (rc == 0) rc = model_forward_f64(&m->cfg, &w, &a, &b, window, err);
    if (rc == 0) rc = model_head_f64(&m->cfg, &w, &a, NULL, keep_rows, r, n, &loss, err);
    acts_free_f64(&a);
    free(p);
    return rc;
}

static void rows_alloc(ref_rows *r, size_t n, bool logits) {
    r->lp = calloc(n, sizeof *r->lp);
    r->best = calloc(n, sizeof *r->best);
    r->lse = calloc(n, sizeof *r->lse);
    r->logits = logits ? calloc(n * 8000, sizeof *r->logits) : NULL;
}

static void rows_free(ref_rows *r) {
    free(r->lp);
    free(r->best);
    free(r->lse);
    free(r->logits);
}

static bool is_doc_start(size_t pos) {
    for (size_t d = 0; d < n_docs; d++)
        if ((size_t)doc_starts[d] == pos) return true;
    return false;
}

typedef struct {
    double nll, kl;
    int64_t tokens, agree;
} corpus_ref;

static const double *sort_base;
static int by_value_desc(const void *a, const void *b) {
    double x = sort_base[*(const int *)a], y = sort_base[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : *(const int *)a - *(const int *)b;
}

// KL from the teacher's k most likely ids plus one bucket for the rest (kd.sparse topk_bucket).
static double bucket_kl(const double *lt, const double *ls, int k) {
    static int order[8000];
    for (int v = 0; v < 8000; v++) order[v] = v;
    sort_base = lt;
    qsort(order, 8000, sizeof *order, by_value_desc);
    double kl = 0, pt = 0, ps = 0;
    for (int i = 0; i < k; i++) {
        int v = order[i];
        kl += exp(lt[v]) * (lt[v] - ls[v]);
        pt += exp(lt[v]);
        ps += exp(ls[v]);
    }
    double r = 1 - pt, q = 1 - ps;
    return r > 0 ? kl + r * log(r / q) : kl;
}

// The loader's windows of T + 1 tokens, each scored on its own, in float64;
// with a teacher, exact KL (bucket_k 0) or the top-k + bucket estimate.
static int corpus_reference(int T, int window, bool with_teacher, int bucket_k, corpus_ref *out, gk_err *err) {
    memset(out, 0, sizeof *out);
    size_t windows = (n_ids - 1) / (size_t)T;
    int32_t tokens[512], begin[512], next[512];
    for (size_t w = 0; w < windows; w++) {
        size_t s0 = w * (size_t)T;
        int32_t doc = 0;
        for (int t = 0; t < T; t++) {
            if (is_doc_start(s0 + t)) doc = t;
            tokens[t] = all_ids[s0 + t];
            begin[t] = doc;
            next[t] = is_doc_start(s0 + t + 1) ? -1 : all_ids[s0 + t + 1];
        }
        ref_rows rs = {0}, rt = {0};
        rows_alloc(&rs, (size_t)T, with_teacher);
        rows_alloc(&rt, (size_t)T, with_teacher);
        int rc = forward64(&student, tokens, begin, next, T, window, &rs, err);
        if (rc == 0 && with_teacher) rc = forward64(&teacher, tokens, begin, next, T, 0, &rt, err);
        for (int t = 0; rc == 0 && t < T; t++) {
            if (next[t] < 0) continue;
            out->nll -= rs.lp[t];
            out->tokens++;
            if (!with_teacher) continue;
            out->agree += rs.best[t] == rt.best[t];
            static double lt[8000], ls[8000];
            for (int v = 0; v < 8000; v++) {
                lt[v] = rt.logits[(size_t)t * 8000 + v] - rt.lse[t];
                ls[v] = rs.logits[(size_t)t * 8000 + v] - rs.lse[t];
            }
            if (bucket_k) {
                out->kl += bucket_kl(lt, ls, bucket_k);
            } else {
                for (int v = 0; v < 8000; v++) out->kl += exp(lt[v]) * (lt[v] - ls[v]); // KL(teacher || student)
            }
        }
        rows_free(&rs);
        rows_free(&rt);
        if (rc) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- running gemmakd eval

static const char *wpath(const char *name) { return test_join(work, name); } // work/name

// Runs eval with args into work/NAME.json; parses it into doc (caller frees). Returns the wait status.
static int run_eval(const char *name, const char *const *args, json_doc *doc, char **text) {
    char out[256], errf[256];
    snprintf(out, sizeof out, "%s/%s.json", work, name);
    snprintf(errf, sizeof errf, "%s/err", work);
    const char *argv[32] = {gemmakd, "eval", "--out", out, "--tokenizer", tok_path};
    int n = 6;
    while (*args && n < 31) argv[n++] = *args++;
    argv[n] = NULL;
    int st = test_spawn(argv, NULL, errf);
    size_t len;
    gk_err err;
    *text = NULL;
    if (doc && file_read_all(out, text, &len, &err) == 0 && json_parse(*text, len, out, doc, &err)) {
        free(*text);
        *text = NULL;
    }
    return st;
}

static double num(const json_value *o, const char *a, const char *b) {
    const json_value *v = json_get(o, a);
    v = b ? json_get(v, b) : v;
    return v && v->type == JSON_NUMBER ? v->number : NAN;
}

static void check_corpus(test_case *tc, const char *what, int T, int window, const char *batch, bool teacher_model,
                         bool teacher_cache) {
    char seq[16], win[16];
    snprintf(seq, sizeof seq, "%d", T);
    snprintf(win, sizeof win, "%d", window);
    const char *args[16] = {"--model", student_dir, "--data", shard, "--seq-len", seq, "--batch", batch};
    int n = 8;
    if (window) args[n++] = "--sliding-window", args[n++] = win;
    if (teacher_model) args[n++] = "--teacher", args[n++] = teacher_dir;
    if (teacher_cache) args[n++] = "--teacher-cache", args[n++] = wpath("cache");
    args[n] = NULL;
    json_doc doc;
    char *text;
    int st = run_eval(what, args, &doc, &text);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && text, "%s: status %d", what, st);
    if (!text) return;
    corpus_ref ref;
    gk_err err = {0};
    CHECK(tc, corpus_reference(T, window, teacher_model || teacher_cache, teacher_cache ? 1024 : 0, &ref, &err) == 0,
          "reference: %s", err.msg);
    double loss = ref.nll / (double)ref.tokens;
    const json_value *root = doc.root;
    CHECK(tc, num(root, "data", "tokens") == (double)ref.tokens, "%s: %g tokens, reference %lld", what,
          num(root, "data", "tokens"), (long long)ref.tokens);
    CHECK(tc, fabs(num(root, "data", "loss") - loss) <= 1e-5 * loss, "%s: loss %.9g, float64 %.9g", what,
          num(root, "data", "loss"), loss);
    CHECK(tc, fabs(num(root, "data", "perplexity") - exp(loss)) <= 2e-5 * exp(loss), "%s: perplexity", what);
    if (teacher_model || teacher_cache) {
        double kl = ref.kl / (double)ref.tokens, agree = (double)ref.agree / (double)ref.tokens;
        CHECK(tc, fabs(num(root, "teacher", "kl") - kl) <= 1e-4 * kl, "%s: kl %.9g, float64 %.9g", what,
              num(root, "teacher", "kl"), kl);
        CHECK(tc, fabs(num(root, "teacher", "top1_agreement") - agree) <= 1e-9, "%s: top-1 agreement %.9g, float64 %.9g", what,
              num(root, "teacher", "top1_agreement"), agree);
    }
    json_free(&doc);
    free(text);
}

static void corpus_loss_batches_and_window(test_case *tc) {
    check_corpus(tc, "batch3", 16, 0, "3", false, false);
    check_corpus(tc, "batch1", 16, 0, "1", false, false);
    check_corpus(tc, "window4", 16, 4, "2", false, false);
}

// One window over every token: the bytes are exactly the documents' text.
static void bits_per_byte_counts_every_byte(test_case *tc) {
    char seq[16];
    snprintf(seq, sizeof seq, "%zu", n_ids - 1);
    json_doc doc;
    char *text;
    int st = run_eval("all", (const char *[]){"--model", student_dir, "--data", shard, "--seq-len", seq, NULL}, &doc, &text);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && text, "status %d", st);
    if (!text) return;
    double bytes = num(doc.root, "data", "bytes"), tokens = num(doc.root, "data", "tokens");
    CHECK(tc, bytes == (double)text_bytes, "%g bytes, the documents have %zu", bytes, text_bytes);
    CHECK(tc, tokens == (double)(n_ids - n_docs), "%g tokens, expected %zu", tokens, n_ids - n_docs);
    corpus_ref ref; // bits per byte from the float64 reference's loss and the documents' length
    gk_err err = {0};
    CHECK(tc, corpus_reference((int)n_ids - 1, 0, false, 0, &ref, &err) == 0, "reference: %s", err.msg);
    double bpb = ref.nll / log(2.0) / (double)text_bytes;
    CHECK(tc, fabs(num(doc.root, "data", "bits_per_byte") - bpb) <= 1e-5 * bpb, "bits per byte %.9g, reference %.9g",
          num(doc.root, "data", "bits_per_byte"), bpb);
    json_free(&doc);
    free(text);
}

static void teacher_agreement(test_case *tc) {
    check_corpus(tc, "teacher", 16, 0, "3", true, false);
    // A top-1024 cache (float32 log-probs): the KL of the top-k + leftover-bucket objective, the same top-1.
    const char *argv[] = {gemmakd, "teacher-logits", "--teacher", teacher_dir, "--data", shard, "--seq-len", "16",
                          "--method", "topk", "--k", "1024", "--logprob-dtype", "float32", "--out", wpath("cache"), NULL};
    int st = test_spawn(argv, NULL, NULL);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "teacher-logits: status %d", st);
    check_corpus(tc, "cache", 16, 0, "2", false, true);
}

// ---------------------------------------------------------------- tasks

// log p(continuation | context) of one request on its own, as the harness splits it.
static double request_reference(const char *context, const char *continuation, bool *greedy, int *n_cont) {
    size_t lc = strlen(context), keep = lc;
    while (keep && strchr(" \t\n\r\f\v", context[keep - 1])) keep--;
    char whole[1024];
    snprintf(whole, sizeof whole, "%s%s", context, continuation);
    int32_t *ids, *ctx_ids;
    size_t n, nc;
    gk_err err;
    tokenizer_encode(tok, whole, strlen(whole), true, &ids, NULL, &n, &err);
    tokenizer_encode(tok, context, keep, true, &ctx_ids, NULL, &nc, &err);
    int32_t begin[512] = {0}, next[512];
    for (size_t t = 0; t + 1 < n; t++) next[t] = ids[t + 1];
    ref_rows r = {0};
    rows_alloc(&r, n - 1, false);
    forward64(&student, ids, begin, next, (int)(n - 1), 0, &r, &err);
    double ll = 0;
    *greedy = true;
    for (size_t t = nc - 1; t + 1 < n; t++) {
        ll += r.lp[t];
        *greedy = *greedy && r.best[t] == ids[t + 1];
    }
    *n_cont = (int)(n - nc);
    rows_free(&r);
    free(ids);
    free(ctx_ids);
    return ll;
}

static const char *mc_lines[][6] = { // context, four choices
    {"In the beginning God created", " the heaven and the earth.", " a dog", " 42", " und Viktor"},
    {"Turbidity, n. ", "Turbidness.", "Lightness of heart.", "A small boat.", "See Viktor."},
    {"And God said,", " Let there be light.", " nothing", " ça va?", " the first day"},
};
static const int mc_labels[] = {0, 0, 0};

static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void multiple_choice_and_loglikelihood(test_case *tc) {
    strbuf mc = {0}, ll = {0};
    for (int i = 0; i < 3; i++) {
        sb_puts(&mc, "{\"context\": ");
        sb_json_string(&mc, mc_lines[i][0], strlen(mc_lines[i][0]));
        sb_puts(&mc, ", \"choices\": [");
        for (int k = 1; k <= 4; k++) {
            sb_puts(&mc, k > 1 ? ", " : "");
            sb_json_string(&mc, mc_lines[i][k], strlen(mc_lines[i][k]));
            sb_puts(&ll, "{\"context\": ");
            sb_json_string(&ll, mc_lines[i][0], strlen(mc_lines[i][0]));
            sb_puts(&ll, ", \"continuation\": ");
            sb_json_string(&ll, mc_lines[i][k], strlen(mc_lines[i][k]));
            sb_puts(&ll, "}\n");
        }
        sb_printf(&mc, "], \"label\": %d}\n\n", mc_labels[i]);
    }
    // Request 1/0 with the context's trailing space moved to the continuation by hand: the harness
    // does that move itself, so both must score the same tokens (equal up to float32 rounding: the
    // two sit at different places of the packed batch).
    sb_puts(&ll, "{\"context\": \"Turbidity, n.\", \"continuation\": \" Turbidness.\"}\n");
    gk_err err = {0};
    CHECK(tc, file_write_atomic(wpath("mc.jsonl"), mc.data, mc.len, &err) == 0 &&
                  file_write_atomic(wpath("ll.jsonl"), ll.data, ll.len, &err) == 0,
          "%s", err.msg);
    sb_free(&mc);
    sb_free(&ll);
    json_doc doc;
    char *text, mcp[256], llp[256];
    snprintf(mcp, sizeof mcp, "%s", wpath("mc.jsonl"));
    snprintf(llp, sizeof llp, "%s", wpath("ll.jsonl"));
    int st = run_eval("tasks", (const char *[]){"--model", student_dir, "--tasks", mcp, "--loglikelihood", llp, "--batch", "2", NULL},
                      &doc, &text);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && text, "status %d", st);
    if (!text) return;
    const json_value *results = json_get(json_get(doc.root, "loglikelihood")->items[0], "results");
    int correct = 0, correct_norm = 0;
    for (int i = 0; i < 3; i++) {
        double lls[4];
        int best = 0, best_norm = 0;
        for (int k = 0; k < 4; k++) {
            bool greedy;
            int n_cont;
            lls[k] = request_reference(mc_lines[i][0], mc_lines[i][k + 1], &greedy, &n_cont);
            const json_value *r = results->items[i * 4 + k];
            CHECK(tc, fabs(num(r, "loglikelihood", NULL) - lls[k]) <= 1e-5 * fabs(lls[k]) + 1e-6,
                  "request %d/%d: log-likelihood %.9g, float64 %.9g", i, k, num(r, "loglikelihood", NULL), lls[k]);
            CHECK(tc, json_get(r, "is_greedy")->boolean == greedy && num(r, "tokens", NULL) == n_cont,
                  "request %d/%d: is_greedy or token count", i, k);
            if (lls[k] > lls[best]) best = k;
            if (lls[k] / chars(mc_lines[i][k + 1]) > lls[best_norm] / chars(mc_lines[i][best_norm + 1])) best_norm = k;
        }
        correct += best == mc_labels[i];
        correct_norm += best_norm == mc_labels[i];
    }
    const json_value *moved = results->items[12], *kept = results->items[4];
    CHECK(tc, fabs(num(moved, "loglikelihood", NULL) - num(kept, "loglikelihood", NULL)) <= 1e-6 * fabs(num(kept, "loglikelihood", NULL)) &&
                  num(moved, "tokens", NULL) == num(kept, "tokens", NULL),
          "\"Turbidity, n. \" + \"Turbidness.\" scores %.9g over %g tokens, \"Turbidity, n.\" + \" Turbidness.\" %.9g over %g",
          num(kept, "loglikelihood", NULL), num(kept, "tokens", NULL), num(moved, "loglikelihood", NULL),
          num(moved, "tokens", NULL));
    const json_value *task = json_get(doc.root, "tasks")->items[0];
    CHECK(tc, fabs(num(task, "acc", NULL) - correct / 3.0) < 1e-6 && fabs(num(task, "acc_norm", NULL) - correct_norm / 3.0) < 1e-6,
          "acc %g acc_norm %g, reference %d/3 %d/3", num(task, "acc", NULL), num(task, "acc_norm", NULL), correct,
          correct_norm);
    json_free(&doc);
    free(text);
}

// Refusals: one line naming the file (and line), exit 1 or 2, no result file.
static void refusals(test_case *tc) {
    gk_err err = {0};
    const char *bad = "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 0}\n{\"context\": \"a\", \"choices\": [\"b\"], \"label\": 0}\n";
    const char *badjson = "{\"context\": \"a\", \"continuation\": \"b\"}\n\n{\"context\": \"a\", \"continuation\": \n";
    const char *badlabel = "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 2}\n";
    char p1[256], p2[256], p3[256];
    snprintf(p1, sizeof p1, "%s", wpath("bad.jsonl"));
    snprintf(p2, sizeof p2, "%s", wpath("badjson.jsonl"));
    snprintf(p3, sizeof p3, "%s", wpath("badlabel.jsonl"));
    CHECK(tc, file_write_atomic(p1, bad, strlen(bad), &err) == 0 && file_write_atomic(p2, badjson, strlen(badjson), &err) == 0 &&
                  file_write_atomic(p3, badlabel, strlen(badlabel), &err) == 0,
          "%s", err.msg);
    char want1[300], want2[300], want3[300], nowhere[256];
    snprintf(nowhere, sizeof nowhere, "%s", wpath("nowhere"));
    snprintf(want1, sizeof want1, "%s:2: needs \"choices\"", p1);
    snprintf(want2, sizeof want2, "%s:3", p2);
    snprintf(want3, sizeof want3, "%s:1: \"label\" must be an index", p3);
    const struct {
        const char *args[12];
        int status;
        const char *want;
    } cases[] = {
        {{"--model", student_dir, "--tasks", p1}, 1, want1},
        {{"--model", student_dir, "--loglikelihood", p2}, 1, want2},
        {{"--model", student_dir, "--tasks", p3}, 1, want3},
        {{"--model", student_dir}, 2, "needs something to evaluate"},
        {{"--model", student_dir, "--data", shard}, 2, "--data needs --seq-len"},
        {{"--model", student_dir, "--tasks", p1, "--teacher", teacher_dir}, 2, "measured on --data"},
        {{"--model", student_dir, "--data", shard, "--seq-len", "16", "--teacher", teacher_dir, "--teacher-cache", teacher_dir},
         2, "not both"},
        {{"--model", nowhere, "--tasks", p1}, 1, "nowhere"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text;
        unlink(wpath("refused.json"));
        int st = run_eval("refused", cases[i].args, NULL, &text);
        char *msg = test_read_text(wpath("err"));
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == cases[i].status && strstr(msg, cases[i].want) &&
                      test_one_line(msg),
              "case %zu: status %d, stderr: %s", i, st, msg);
        CHECK(tc, access(wpath("refused.json"), F_OK) != 0, "case %zu wrote a result", i);
        free(msg);
    }
    // A tokenizer other than the one the model records is refused.
    const char *argv[] = {gemmakd, "eval", "--model", student_dir, "--tasks", p1, "--tokenizer",
                          fixture_path("tokenizer/spm_bpe_defaults.model"), NULL};
    int st = test_spawn(argv, NULL, wpath("err"));
    char *msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "trained with another tokenizer"), "other tokenizer: %s", msg);
    free(msg);
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    snprintf(tok_path, sizeof tok_path, "%s", fixture_path("tokenizer/spm_bpe.model"));
    if (test_scratch_dir(NULL, "eval", work, sizeof work)) return 1;
    snprintf(student_dir, sizeof student_dir, "%s/student", work);
    snprintf(teacher_dir, sizeof teacher_dir, "%s/teacher", work);
    snprintf(shard, sizeof shard, "%s/data.h5", work);
    gk_err err = {0};
    int rc = tokenizer_load(tok_path, &tok, &err);
    if (rc == 0) rc = make_model(student_dir, 16, 2, 7, &student, &err);
    if (rc == 0) rc = make_model(teacher_dir, 24, 2, 8, &teacher, &err);
    if (rc == 0) rc = write_data(&err);
    if (rc) {
        printf("FAIL %s/setup: %s\n", test_program, err.msg);
        return 1;
    }
    test_run("corpus_loss_batches_and_window", corpus_loss_batches_and_window);
    test_run("bits_per_byte_counts_every_byte", bits_per_byte_counts_every_byte);
    test_run("teacher_agreement", teacher_agreement);
    test_run("multiple_choice_and_loglikelihood", multiple_choice_and_loglikelihood);
    test_run("refusals", refusals);
    model_state_free(&student);
    model_state_free(&teacher);
    tokenizer_free(tok);
    free(all_ids);
    if (test_main_result() == 0) dir_remove_tree(work, &err);
    return test_main_result();
}
