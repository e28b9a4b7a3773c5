// The output files of generate --prompts. OUT.tmp holds, in order,
//   {"gemmakd_generate": {"prompts_sha256": ..., "model": ..., ...}}   the settings line
//   one answered record per line                                        (gen/prompts.h)
// A rerun continues OUT.tmp only when every setting that changes answers is
// the same (the prompts file's sha256, model, tokenizer, sampling, seed,
// max_new_tokens, stop ids, device, precision); else it stops naming the first
// setting that differs with both values. A finished OUT (records only) is
// continued when its records' "meta" (model, sampling, seed, max_new_tokens)
// match this run's. OUT is OUT.tmp's records without the settings line.
#ifndef GK_GEN_ANSWERS_H
#define GK_GEN_ANSWERS_H

#include <stdbool.h>
#include <stdio.h>

#include "gen/generate.h"
#include "gen/prompts.h"

enum { ANSWER_SETTINGS = 9 };

// name -> value as text, in a fixed order (the settings line's keys).
typedef struct {
    const char *name[ANSWER_SETTINGS];
    char value[ANSWER_SETTINGS][1024];
} answer_settings;

// This run's settings (hashes job->in).
int answer_settings_make(const generator *g, const prompts_job *job, answer_settings *s, gk_err *err);

// Opens tmp (OUT.tmp) for appending: a stopped run's OUT.tmp with the same settings, else a finished
// out's records, else a new file; done[rec] (n_done entries, malloc'd) is set for the records answered.
// A last line cut short by a kill is dropped (answered again).
int answers_open(const char *out, const char *tmp, const answer_settings *s, bool **done, size_t *n_done, FILE **f,
                 gk_err *err);

// Writes out (atomically): tmp's records without its settings line; then removes tmp.
int answers_publish(const char *tmp, const char *out, gk_err *err);

#endif
