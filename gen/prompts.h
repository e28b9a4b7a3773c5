// Teacher-written chat data: prompts in (JSONL: {"messages": [...]},
// {"prompt": "..."} or LMSYS-Chat {"conversation": [...]}), the model's
// answers out. The system and user turns of a record are kept and its
// original answers dropped; the user turns are answered in order, each with the
// model's own earlier answers in the context (round r answers turn r of every
// record that has one). Output lines, round by round, each round's records
// (those whose last user turn it answers) in input order:
//   {"messages": [..., {"role": "assistant", "content": ...}, ...],
//    "meta": {"record": LINE, "model": DIR, "sampling": {...}, "tokens": N, "finish": "stop"|"length"}}
// They are appended to OUT.tmp (after a line of the settings that change
// answers, gen/answers.h) a chunk of requests at a time; a rerun with the same settings reads
// it (and OUT) and answers only the records not there yet; OUT appears once
// every record is answered. Each record draws from its own seed, so the answers
// do not depend on batching or on which records a rerun skips. Under mpirun
// every rank answers a contiguous block of each chunk (gen/answer_share.h) and
// rank 0 alone reads and writes OUT.tmp and OUT: the same bytes as one process.
#ifndef GK_GEN_PROMPTS_H
#define GK_GEN_PROMPTS_H

#include <stdbool.h>

#include "data/chat.h"
#include "data/tokenizer/tokenizer.h"
#include "gen/generate.h"

typedef struct {
    const char *in, *out, *model;
    const tokenizer *tok;
    int max_new;
    uint64_t seed;
    bool skip_bad; // malformed records are counted and skipped instead of stopping the run
} prompts_job;

int prompts_answer(const generator *g, const prompts_job *job, gk_err *err);

// <bos> and the chat template of messages[n] with the generation prompt, as ids (*ids malloc'd).
int chat_prompt_ids(const tokenizer *tok, const chat_message *m, size_t n, int32_t **ids, size_t *n_ids, gk_err *err);
// The text of a generated answer (without its stop id), malloc'd.
int answer_text(const tokenizer *tok, const gen_output *out, char **text, gk_err *err);

#endif
