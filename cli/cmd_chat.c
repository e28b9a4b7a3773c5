// gemmakd chat: a multi-turn conversation with a model on the terminal. Each
// line of standard input is a user turn; the answer is printed on a line of
// its own. "/reset" starts a new conversation, "/quit" or end of input ends. A turn
// that does not fit the model's positions is dropped with a notice; the session goes on.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "cli/gen_flags.h"
#include "gen/model_tokenizer.h"
#include "common/rng.h"
#include "gen/prompts.h"

typedef struct {
    chat_message *turns; // alternating user / model; contents malloc'd
    size_t n;
} transcript;

static void transcript_clear(transcript *t) {
    for (size_t i = 0; i < t->n; i++) free((void *)t->turns[i].content);
    free(t->turns);
    *t = (transcript){0};
}

static int transcript_add(transcript *t, chat_role role, char *content, gk_err *err) {
    chat_message *bigger = realloc(t->turns, (t->n + 1) * sizeof *bigger);
    if (!bigger) {
        free(content);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    t->turns = bigger;
    t->turns[t->n++] = (chat_message){role, content, strlen(content)};
    return 0;
}

// Drops the last turn (the user turn that did not fit).
static void transcript_drop_last(transcript *t) {
    if (t->n) free((void *)t->turns[--t->n].content);
}

// The model's answer to the transcript (which ends with a user turn): 0 with *text, -1 on
// error, 1 when the conversation leaves no room for an answer (*tokens: its length).
static int answer(const generator *g, const tokenizer *tok, const transcript *t, int max_new, uint64_t seed, char **text,
                  size_t *tokens, gk_err *err) {
    int32_t *ids;
    size_t n;
    if (chat_prompt_ids(tok, t->turns, t->n, &ids, &n, err)) return -1;
    *tokens = n;
    if (n >= (size_t)g->m->cfg.max_seq_len) {
        free(ids);
        return 1;
    }
    int room = g->m->cfg.max_seq_len - (int)n;
    gen_request q = {ids, n, max_new < room ? max_new : room, seed};
    gen_output out;
    gen_stats st;
    int rc = generate(g, &q, 1, &out, &st, err);
    if (rc == 0) {
        rc = answer_text(tok, &out, text, err);
        gen_outputs_free(&out, 1);
    }
    free(ids);
    return rc;
}

int cmd_chat(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"model", "DIR", "model directory", NULL},
        {"tokenizer", "FILE", "tokenizer.json or .model (default: the model dir's)", NULL},
        {"max-new-tokens", "N", "at most N tokens per answer (default 256)", NULL},
        SAMPLING_FLAG_SPECS,
        {"seed", "S", "sampling seed (default 0)", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        BACKEND_FLAG_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, "gemmakd chat --model DIR [--tokenizer FILE] [--greedy | --temperature T ...]", specs, n,
                        err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *model = arg_get(specs, n, "model"), *v;
    long long max_new = 256, seed = 0;
    if (!model) return gk_fail(err, GK_EUSAGE, "chat needs --model");
    if ((v = arg_get(specs, n, "max-new-tokens")) && parse_int("max-new-tokens", v, 1, 1 << 24, &max_new, err)) return -1;
    if ((v = arg_get(specs, n, "seed")) && parse_int("seed", v, 0, INT64_MAX, &seed, err)) return -1;
    generator g = {.batch = 1};
    if (sampling_from_flags(specs, n, &g.sampling, err) || set_threads(arg_get(specs, n, "threads"), err) ||
        backend_from_flags(specs, n, &g.backend, err))
        return -1;
    model_state m = {0};
    tokenizer *tok = NULL;
    if (model_load_dir(model, &m, err)) return -1;
    rc = tokenizer_for_model(model, arg_get(specs, n, "tokenizer"), true, &tok, err);
    int32_t stops[2];
    g.m = &m;
    g.model_name = model;
    g.n_stop = tok ? stop_ids_for(&m.cfg, tok, stops) : 0;
    g.stop_ids = stops;
    g.vocab_limit = tok ? tokenizer_vocab_size(tok) : 0;
    bool tty = isatty(0);
    if (rc == 0 && tty) fprintf(stderr, "chatting with %s; /reset starts over, /quit or Ctrl-D ends\n", model);
    transcript t = {0};
    char *line = NULL;
    size_t cap = 0;
    for (uint64_t turn = 0; rc == 0;) {
        if (tty) fprintf(stderr, "> ");
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) break;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            transcript_clear(&t);
            continue;
        }
        if (!len) continue;
        char *text;
        size_t tokens = 0;
        rc = transcript_add(&t, ROLE_USER, strdup(line), err);
        if (rc == 0) rc = answer(&g, tok, &t, (int)max_new, hash64((uint64_t)seed ^ hash64(turn++)), &text, &tokens, err);
        if (rc == 1) { // told, not fatal: the turn is dropped and the session goes on
            fprintf(stderr, "chat: the conversation with this turn (%zu tokens) fills the model's %d positions; "
                            "/reset to start again\n", tokens, m.cfg.max_seq_len);
            transcript_drop_last(&t);
            rc = 0;
            continue;
        }
        if (rc == 0) {
            printf("%s\n", text);
            fflush(stdout);
            rc = transcript_add(&t, ROLE_MODEL, text, err);
        }
    }
    free(line);
    transcript_clear(&t);
    tokenizer_free(tok);
    model_state_free(&m);
    return rc;
}
