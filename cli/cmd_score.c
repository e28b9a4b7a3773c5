// gemmakd score: run a model on token ids and write float32 logits [T, V]
// (and per-position target log-probs) to a safetensors file.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/file.h"
#include "common/timer.h"
#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    int32_t *tokens, *doc_begin, *targets; // [T]
    int T;
} score_input;

static void input_free(score_input *in) {
    free(in->tokens);
    free(in->doc_begin);
    free(in->targets);
}

static int read_tokens(const arg_spec *specs, int n, const model_config *cfg, const char *model_dir, score_input *in,
                       gk_err *err) {
    int vocab = cfg->vocab_size;
    const char *list = arg_get(specs, n, "tokens"), *file = arg_get(specs, n, "tokens-file");
    if (!list == !file) return gk_fail(err, GK_EUSAGE, "score needs exactly one of --tokens and --tokens-file");
    char *text = NULL;
    size_t len;
    if (file && file_read_all(file, &text, &len, err)) return -1;
    int64_t *ids;
    size_t count;
    int rc = parse_id_list(file ? "tokens-file" : "tokens", file ? text : list, &ids, &count, err);
    if (rc && file) { // a bad file is bad input, not a bad flag
        gk_wrap(err, "%s", file);
        err->code = GK_EINPUT;
    }
    free(text);
    if (rc) return -1;
    if (count > (1u << 24) || model_config_check_seq_len(cfg, (int64_t)count, file ? file : "--tokens", model_dir, err)) {
        free(ids);
        return count > (1u << 24) ? gk_fail(err, GK_EINPUT, "%zu tokens is more than score handles in one sequence", count) : -1;
    }
    in->T = (int)count;
    in->tokens = gk_malloc(count * sizeof(int32_t), err);
    for (size_t i = 0; in->tokens && i < count; i++) {
        if (ids[i] >= vocab) {
            rc = gk_fail(err, GK_EINPUT, "token %lld at position %zu is outside the vocabulary of %s (%d ids)",
                         (long long)ids[i], i, model_dir, vocab);
            break;
        }
        in->tokens[i] = (int32_t)ids[i];
    }
    free(ids);
    return in->tokens ? rc : -1;
}

// Documents and targets: target t is token t+1 of the same document, else none (-1).
static int read_documents(const arg_spec *specs, int n, score_input *in, gk_err *err) {
    const char *starts_s = arg_get(specs, n, "doc-starts");
    int64_t *starts = NULL;
    size_t n_starts = 0;
    if (starts_s && parse_id_list("doc-starts", starts_s, &starts, &n_starts, err)) return -1;
    in->doc_begin = gk_malloc((size_t)in->T * sizeof(int32_t), err);
    in->targets = gk_malloc((size_t)in->T * sizeof(int32_t), err);
    int rc = in->doc_begin && in->targets ? doc_begin_from_starts(starts, n_starts, in->T, in->doc_begin, err) : -1;
    if (rc && starts_s) { // the starts came from a flag: a usage error
        gk_wrap(err, "--doc-starts");
        err->code = GK_EUSAGE;
    }
    for (int t = 0; rc == 0 && t < in->T; t++)
        in->targets[t] = t + 1 < in->T && in->doc_begin[t + 1] == in->doc_begin[t] ? in->tokens[t + 1] : -1;
    free(starts);
    return rc;
}

typedef struct {
    xent_ctx xent;
    float *logits; // [T, V]
} score_ctx;

static double keep_logits(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    score_ctx *c = ctx_;
    memcpy(c->logits + first * vocab, logits, count * vocab * sizeof *logits);
    return xent_host(&c->xent, logits, dlogits, first, count, vocab);
}

static int write_output(const char *path, const float *logits, const float *logprobs, int T, int V, bool with_logprobs,
                        gk_err *err) {
    st_out_tensor out[2] = {{.name = "logits", .ndim = 2, .shape = {(size_t)T, (size_t)V}, .data = logits},
                            {.name = "logprobs", .ndim = 1, .shape = {(size_t)(T - 1)}, .data = logprobs}};
    return st_write(path, out, with_logprobs ? 2 : 1, ST_F32, err);
}

static void print_summary(const char *dir, const float *logprobs, int T, double seconds) {
    double sum = 0;
    int counted = 0;
    for (int t = 0; t + 1 < T; t++)
        if (!isnan(logprobs[t])) sum += logprobs[t], counted++;
    printf("scored %d tokens with %s in %.3f s (%.0f tokens/s)", T, dir, seconds, T / seconds);
    if (counted)
        printf("; mean log-prob %.4f over %d predicted tokens (perplexity %.2f)", sum / counted, counted,
               exp(-sum / counted));
    printf("\n");
}

static int run_score(model_state *m, engine_backend backend, const score_input *in, int window, const char *dir,
                     const char *out, bool with_logprobs, gk_err *err) {
    int T = in->T, V = m->cfg.vocab_size;
    size_t cells;
    if (!gk_mul_ok((size_t)T, (size_t)V, &cells))
        return gk_fail(err, GK_ENOMEM, "logits for %d tokens x %d ids do not fit in memory", T, V);
    score_ctx ctx = {.xent = {.targets = in->targets, .scale = 1}};
    ctx.logits = gk_malloc(cells * sizeof(float), err);
    ctx.xent.logprobs = gk_malloc((size_t)T * sizeof(float), err);
    engine *e = NULL;
    token_batch batch = {.B = 1, .T = T, .tokens = in->tokens, .doc_begin = in->doc_begin};
    head_loss head = {.kind = HEAD_CALLBACK, .fn = keep_logits, .ctx = &ctx, .chunk = 256};
    double loss, start = now_seconds();
    int rc = ctx.logits && ctx.xent.logprobs ? engine_open(&e, m, backend, 1, T, false, err) : -1;
    if (rc == 0) rc = engine_forward(e, &batch, window, err);
    if (rc == 0) rc = engine_head(e, &head, &loss, err);
    double seconds = now_seconds() - start;
    if (rc == 0) rc = write_output(out, ctx.logits, ctx.xent.logprobs, T, V, with_logprobs && T > 1, err);
    if (rc == 0) print_summary(dir, ctx.xent.logprobs, T, seconds);
    engine_close(e);
    free(ctx.logits);
    free(ctx.xent.logprobs);
    return rc;
}

int cmd_score(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"model", "DIR", "model directory (config.json + safetensors)", NULL},
        {"tokens", "IDS", "token ids, e.g. 2,651,10", NULL},
        {"tokens-file", "FILE", "file of token ids (commas, whitespace or a JSON array)", NULL},
        {"doc-starts", "IDX", "positions where packed documents start, e.g. 0,17 (default: one document)", NULL},
        {"sliding-window", "N", "override the sliding window of local layers (inference ablation)", NULL},
        {"out", "FILE", "output safetensors: logits [T, V] float32", NULL},
        {"logprobs", NULL, "also write logprobs [T-1]: log p(token t+1 | its document up to t), NaN across documents",
         NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        BACKEND_FLAG_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv,
                        "gemmakd score --model DIR (--tokens IDS | --tokens-file FILE) [--doc-starts IDX] "
                        "[--sliding-window N] [--logprobs] [--device cpu|cuda] [--precision fp32|bf16] --out FILE",
                        specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *dir = arg_get(specs, n, "model"), *out = arg_get(specs, n, "out"), *win_s;
    if (!dir || !out) return gk_fail(err, GK_EUSAGE, "score needs --model and --out");
    long long window = 0;
    if ((win_s = arg_get(specs, n, "sliding-window")) && parse_int("sliding-window", win_s, 1, 1 << 30, &window, err))
        return -1;
    engine_backend backend;
    if (set_threads(arg_get(specs, n, "threads"), err) || backend_from_flags(specs, n, &backend, err)) return -1;
    model_state m = {0};
    score_input in = {0};
    rc = model_load_dir(dir, &m, err);
    if (rc == 0) rc = read_tokens(specs, n, &m.cfg, dir, &in, err);
    if (rc == 0) rc = read_documents(specs, n, &in, err);
    if (rc == 0) rc = run_score(&m, backend, &in, (int)window, dir, out, arg_flag(specs, n, "logprobs"), err);
    input_free(&in);
    model_state_free(&m);
    return rc;
}
