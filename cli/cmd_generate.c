// gemmakd generate: sampling with a KV cache (gen/generate.h). Two forms:
//   --tokens 2,5,9           raw ids in, the generated ids out as a JSON array;
//   --prompts IN --out OUT   chat prompts (JSONL) in, answered conversations out (gen/prompts.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "cli/gen_flags.h"
#include "common/dist.h"
#include "gen/model_tokenizer.h"
#include "common/rng.h"
#include "gen/generate.h"
#include "gen/prompts.h"

static const char *USAGE = "gemmakd generate --model DIR (--tokens IDS | --prompts IN.jsonl --out OUT.jsonl) "
                           "[--max-new-tokens N] [--greedy | --temperature T [--top-k K] [--top-p P] [--min-p M]] "
                           "[--seed S] [--no-stop] [--batch B] [--tokenizer FILE] [--device cpu|cuda] [--precision fp32|bf16]";

// The raw form: one request, the generated ids printed as a JSON array.
static int generate_ids(const generator *g, const char *ids_text, int max_new, uint64_t seed, gk_err *err) {
    int64_t *ids;
    size_t n;
    if (parse_id_list("tokens", ids_text, &ids, &n, err)) return -1;
    int32_t *prompt = gk_calloc(n, sizeof *prompt, err); // parse_id_list refuses an empty list
    int rc = prompt ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i] >= g->m->cfg.vocab_size)
            rc = gk_fail(err, GK_EINPUT, "--tokens: id %lld is outside the vocabulary [0, %d)", (long long)ids[i],
                         g->m->cfg.vocab_size);
        else prompt[i] = (int32_t)ids[i];
    }
    gen_request q = {prompt, n, max_new, seed};
    gen_output out;
    gen_stats st;
    if (rc == 0) rc = generate(g, &q, 1, &out, &st, err);
    if (rc == 0) {
        printf("[");
        for (size_t i = 0; i < out.n; i++) printf("%s%d", i ? ", " : "", out.tokens[i]);
        printf("]\n");
        gen_outputs_free(&out, 1);
    }
    free(prompt);
    free(ids);
    return rc;
}

int cmd_generate(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"model", "DIR", "model directory", NULL},
        {"tokens", "IDS", "prompt token ids, e.g. 2,5,9: prints the generated ids as a JSON array", NULL},
        {"prompts", "FILE", "JSONL of {\"messages\"}, {\"prompt\"} or LMSYS {\"conversation\"} records", NULL},
        {"out", "FILE", "JSONL of the answered conversations (a rerun skips the records already answered)", NULL},
        {"tokenizer", "FILE", "tokenizer.json or .model (default: the model dir's)", NULL},
        {"max-new-tokens", "N", "at most N new tokens per answer (default 256)", NULL},
        SAMPLING_FLAG_SPECS,
        {"seed", "S", "sampling seed (default 0); each record draws from its own stream", NULL},
        {"no-stop", NULL, "do not stop at <end_of_turn> or <eos>", NULL},
        {"batch", "B", "sequences decoded together (default 16)", NULL},
        {"skip-bad", NULL, "skip malformed prompt records (counted) instead of stopping", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        BACKEND_FLAG_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, USAGE, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *model = arg_get(specs, n, "model"), *ids = arg_get(specs, n, "tokens"), *v;
    const char *prompts = arg_get(specs, n, "prompts"), *out = arg_get(specs, n, "out");
    long long max_new = 256, seed = 0, batch = 16;
    if (!model || !ids == !prompts) return gk_fail(err, GK_EUSAGE, "generate needs --model and one of --tokens and --prompts");
    if (prompts && !out) return gk_fail(err, GK_EUSAGE, "--prompts needs --out");
    if (ids && dist_size() > 1) // one request: nothing to split
        return gk_fail(err, GK_EUSAGE, "generate --tokens runs as one process; start it without mpirun (generate "
                       "--prompts splits its prompts across ranks)");
    if ((v = arg_get(specs, n, "max-new-tokens")) && parse_int("max-new-tokens", v, 1, 1 << 24, &max_new, err)) return -1;
    if ((v = arg_get(specs, n, "seed")) && parse_int("seed", v, 0, INT64_MAX, &seed, err)) return -1;
    if ((v = arg_get(specs, n, "batch")) && parse_int("batch", v, 1, 4096, &batch, err)) return -1;
    generator g = {.batch = (int)batch, .progress = prompts != NULL};
    if (sampling_from_flags(specs, n, &g.sampling, err) || set_threads(arg_get(specs, n, "threads"), err) ||
        backend_from_flags(specs, n, &g.backend, err))
        return -1;
    model_state m = {0};
    if (model_load_dir(model, &m, err)) return -1;
    g.m = &m;
    g.model_name = model;
    tokenizer *tok = NULL;
    rc = tokenizer_for_model(model, arg_get(specs, n, "tokenizer"), prompts != NULL, &tok, err);
    if (tok) g.vocab_limit = tokenizer_vocab_size(tok);
    int32_t stops[2];
    if (rc == 0 && !arg_flag(specs, n, "no-stop")) {
        g.n_stop = stop_ids_for(&m.cfg, tok, stops);
        g.stop_ids = stops;
    }
    if (rc == 0 && ids) rc = generate_ids(&g, ids, (int)max_new, hash64((uint64_t)seed), err);
    prompts_job job = {.in = prompts, .out = out, .model = model, .tok = tok, .max_new = (int)max_new,
                       .seed = (uint64_t)seed, .skip_bad = arg_flag(specs, n, "skip-bad")};
    if (rc == 0 && prompts) rc = prompts_answer(&g, &job, err);
    tokenizer_free(tok);
    model_state_free(&m);
    return rc;
}
