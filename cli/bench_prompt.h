// gemmakd bench --prompt-len N: how fast generation takes in its prompts, the
// way generate() feeds them (gen/generate.h): prefilled, every layer over a
// whole prompt at once, against the one-position-per-step path it replaced.
#ifndef GK_CLI_BENCH_PROMPT_H
#define GK_CLI_BENCH_PROMPT_H

#include <stdbool.h>

#include "model/engine.h"

typedef struct {
    const char *config, *machine; // for the report
    engine_backend backend;
    int prompt_len;               // tokens per prompt
    int prompts;                  // timed prompts, after one untimed
    int batch;                    // rows decoding together
} prompt_bench;

// Generates one token after each of b->prompts random prompts of m, both ways,
// and prints the prompt tokens per second of each (one JSON object with json).
int bench_prompts(const model_state *m, const prompt_bench *b, bool json, gk_err *err);

#endif
