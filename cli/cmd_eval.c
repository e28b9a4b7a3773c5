// gemmakd eval: one JSON result for a model: perplexity and bits per byte on
// token shards (optionally with a narrowed sliding window), agreement with a
// teacher or teacher cache, multiple-choice tasks and log-likelihood pairs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "gen/model_tokenizer.h"
#include "common/file.h"
#include "eval/corpus_eval.h"
#include "eval/tasks.h"
#include "eval/token_bytes.h"

static const char *USAGE = "gemmakd eval --model DIR [--data SHARDS --seq-len T [--tokens N]] [--teacher DIR | "
                           "--teacher-cache DIR] [--tasks F,...] [--loglikelihood F,...] [--tokenizer F] "
                           "[--sliding-window N] [--out RESULT.json]";

typedef struct {
    const char *model, *data, *teacher, *cache, *tasks, *ll, *tokenizer_path, *out;
    long long seq_len, tokens, window, batch;
    engine_backend backend;
} eval_args;

static void corpus_json(const eval_args *a, const model_state *m, const corpus_eval_result *r, strbuf *out) {
    double loss = r->tokens ? r->nll / (double)r->tokens : NAN;
    sb_puts(out, ",\n  \"data\": {\"shards\": ");
    sb_json_string(out, a->data, strlen(a->data));
    sb_printf(out, ", \"seq_len\": %lld, \"sliding_window\": %d, \"windows\": %lld, \"tokens\": %lld, ", a->seq_len,
              a->window > 0 ? (int)a->window : m->cfg.sliding_window, (long long)r->windows, (long long)r->tokens);
    if (r->bytes >= 0)
        sb_printf(out, "\"bytes\": %lld, \"loss\": %.9g, \"perplexity\": %.9g, \"bits_per_byte\": %.9g}",
                  (long long)r->bytes, loss, exp(loss), r->bytes ? r->nll / log(2.0) / (double)r->bytes : NAN);
    else
        sb_printf(out, "\"bytes\": null, \"loss\": %.9g, \"perplexity\": %.9g, \"bits_per_byte\": null}", loss, exp(loss));
    if (!r->teacher) return;
    sb_printf(out, ",\n  \"teacher\": {\"%s\": ", a->teacher ? "model" : "cache");
    const char *src = a->teacher ? a->teacher : a->cache;
    sb_json_string(out, src, strlen(src));
    if (a->cache) sb_printf(out, ", \"method\": \"%s\"", r->cache_method);
    sb_printf(out, ", \"kl\": %.9g, ", r->tokens ? r->kl / (double)r->tokens : NAN);
    if (r->top1_known) sb_printf(out, "\"top1_agreement\": %.9g, \"positions\": %lld}", (double)r->top1_agree / (double)r->top1_known,
                                 (long long)r->top1_known);
    else sb_printf(out, "\"top1_agreement\": null, \"positions\": %lld}", (long long)r->tokens);
}

static int run_data(const eval_args *a, const model_state *m, const tokenizer *tok, strbuf *out, gk_err *err) {
    char *list = NULL;
    const char **files = NULL;
    uint32_t *bytes = NULL;
    corpus_eval_job j = {.seq_len = (int)a->seq_len, .max_tokens = a->tokens, .window = (int)a->window,
                         .batch = (int)a->batch, .teacher_dir = a->teacher, .cache_dir = a->cache,
                         .backend = a->backend};
    int rc = model_config_check_seq_len(&m->cfg, a->seq_len, "--seq-len", a->model, err);
    if (rc == 0) rc = split_commas("data", a->data, &list, &files, &j.n_data, err);
    if (rc == 0 && tok) {
        rc = token_byte_lengths(tok, m->cfg.vocab_size, &bytes, err);
        j.token_bytes = bytes;
        j.tokenizer_sha256 = tokenizer_sha256(tok);
    }
    j.data = files;
    corpus_eval_result r;
    if (rc == 0) rc = corpus_eval(m, &j, &r, err);
    if (rc == 0) corpus_json(a, m, &r, out);
    free(list);
    free(files);
    free(bytes);
    return rc;
}

// --tasks / --loglikelihood: a JSON list of one result per file.
static int run_files(const char *key, const char *flag, const char *value, const task_runner *t, strbuf *out,
                     int (*fn)(const task_runner *, const char *, strbuf *, gk_err *), gk_err *err) {
    char *list = NULL;
    const char **files = NULL;
    size_t n;
    int rc = split_commas(flag, value, &list, &files, &n, err);
    sb_printf(out, ",\n  \"%s\": [", key);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i) sb_puts(out, ",\n    ");
        rc = fn(t, files[i], out, err);
    }
    sb_puts(out, "]");
    free(list);
    free(files);
    return rc;
}

static int parse_eval_args(arg_spec *specs, int n, eval_args *a, gk_err *err) {
    const char *v;
    *a = (eval_args){.model = arg_get(specs, n, "model"), .data = arg_get(specs, n, "data"),
                     .teacher = arg_get(specs, n, "teacher"), .cache = arg_get(specs, n, "teacher-cache"),
                     .tasks = arg_get(specs, n, "tasks"), .ll = arg_get(specs, n, "loglikelihood"),
                     .tokenizer_path = arg_get(specs, n, "tokenizer"), .out = arg_get(specs, n, "out"), .batch = 8};
    if (!a->model) return gk_fail(err, GK_EUSAGE, "eval needs --model (usage: %s)", USAGE);
    if (!a->data && !a->tasks && !a->ll)
        return gk_fail(err, GK_EUSAGE, "eval needs something to evaluate: --data, --tasks or --loglikelihood");
    if (a->teacher && a->cache) return gk_fail(err, GK_EUSAGE, "give --teacher or --teacher-cache, not both");
    if ((a->teacher || a->cache) && !a->data) return gk_fail(err, GK_EUSAGE, "teacher agreement is measured on --data");
    if ((v = arg_get(specs, n, "seq-len")) && parse_int("seq-len", v, 1, 1 << 20, &a->seq_len, err)) return -1;
    if (a->data && !a->seq_len) return gk_fail(err, GK_EUSAGE, "--data needs --seq-len");
    if ((v = arg_get(specs, n, "tokens")) && parse_int("tokens", v, 1, INT64_MAX, &a->tokens, err)) return -1;
    if ((v = arg_get(specs, n, "sliding-window")) && parse_int("sliding-window", v, 1, 1 << 30, &a->window, err)) return -1;
    if ((v = arg_get(specs, n, "batch")) && parse_int("batch", v, 1, 4096, &a->batch, err)) return -1;
    if (backend_from_flags(specs, n, &a->backend, err)) return -1;
    return set_threads(arg_get(specs, n, "threads"), err);
}

int cmd_eval(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"model", "DIR", "model directory to evaluate", NULL},
        {"data", "SHARDS", "token shards (comma-separated files or globs): loss, perplexity, bits per byte", NULL},
        {"seq-len", "T", "window length for --data", NULL},
        {"tokens", "N", "evaluate only the first windows holding about N tokens (default: all)", NULL},
        {"sliding-window", "N", "override the local layers' sliding window (the Table 10 ablation)", NULL},
        {"teacher", "DIR", "also KL(teacher || model) and top-1 agreement on --data, teacher in process (same backend)",
         NULL},
        {"teacher-cache", "DIR", "the same from a teacher cache of --data at --seq-len (temperature 1)", NULL},
        {"tasks", "F,...", "multiple-choice JSONL: {\"context\", \"choices\": [...], \"label\"} -> acc, acc_norm", NULL},
        {"loglikelihood", "F,...", "JSONL of {\"context\", \"continuation\"} -> log-likelihood, is_greedy", NULL},
        {"tokenizer", "FILE", "tokenizer.json or .model (default: the model dir's); needed for bytes and tasks", NULL},
        {"batch", "B", "windows or packed rows per forward pass (default 8)", NULL},
        {"out", "FILE", "write the JSON result here (default: stdout)", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        BACKEND_FLAG_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, USAGE, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    eval_args a;
    if (parse_eval_args(specs, n, &a, err)) return -1;
    if (a.out && path_exists(a.out) && dir_exists(a.out)) return gk_fail(err, GK_EUSAGE, "--out %s is a directory", a.out);
    model_state m = {0};
    tokenizer *tok = NULL;
    strbuf out = {0};
    rc = model_load_dir(a.model, &m, err);
    if (rc == 0) rc = tokenizer_for_model(a.model, a.tokenizer_path, a.tasks || a.ll, &tok, err);
    sb_puts(&out, "{\"model\": ");
    sb_json_string(&out, a.model, strlen(a.model));
    if (rc == 0 && a.data) rc = run_data(&a, &m, tok, &out, err);
    task_runner t = {.m = &m, .tok = tok, .window = (int)a.window, .batch = (int)a.batch, .backend = a.backend};
    if (rc == 0 && a.tasks) rc = run_files("tasks", "tasks", a.tasks, &t, &out, task_multiple_choice, err);
    if (rc == 0 && a.ll) rc = run_files("loglikelihood", "loglikelihood", a.ll, &t, &out, task_loglikelihood, err);
    sb_puts(&out, "\n}\n");
    if (rc == 0 && out.failed) rc = gk_fail(err, GK_ENOMEM, "out of memory");
    if (rc == 0 && a.out) rc = file_write_atomic(a.out, out.data, out.len, err);
    else if (rc == 0) fwrite(out.data, 1, out.len, stdout);
    sb_free(&out);
    tokenizer_free(tok);
    model_state_free(&m);
    return rc;
}
