// Choosing the next token from a row of logits (after the final soft-cap), in
// the order Hugging Face's generate applies its warpers: temperature, top-k,
// top-p (the smallest most-likely set holding at least p of the mass), min-p
// (drop tokens below min_p times the most likely one's probability); then a
// draw from what is left, renormalised. Greedy takes the argmax (lowest id on ties).
#ifndef GK_GEN_SAMPLE_H
#define GK_GEN_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

typedef struct {
    bool greedy;
    double temperature; // > 0
    int top_k;          // 0 = off
    double top_p;       // 1 = off
    double min_p;       // 0 = off
} sampling;

typedef struct {
    double p;
    int32_t id;
} sample_cand;

// Checks the settings; errors name the flag.
int sampling_check(const sampling *s, gk_err *err);
// The token for logits [V]; u uniform in [0, 1); work [V]. Always an id in [0, V), even for
// non-finite logits (which callers should refuse: the draw then means nothing).
int32_t sample_token(const float *logits, int V, const sampling *s, double u, sample_cand *work);

#endif
