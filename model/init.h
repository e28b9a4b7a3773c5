// Random initialisation for training from scratch.
//
// Scheme (deterministic for a seed, independent of thread count):
//   embedding        N(0, 1/d)        so E[tok] * sqrt(d) has unit-variance entries
//                                     and initial tied-head logits have unit scale
//   q, k, v, gate, up  N(0, 1/d)      fan-in scaling: unit-scale outputs from unit-RMS inputs
//   o_proj           N(0, 1/(H*hd))
//   down_proj        N(0, 1/ff)
//   every RMSNorm    0                 the (1 + w) scale starts at 1
// Each value is drawn from a counter-based generator keyed by (seed, tensor index, element).
#ifndef GK_INIT_H
#define GK_INIT_H

#include <stdint.h>

#include "model/params.h"

void model_init_random(const model_config *cfg, const param_layout *layout, float *params, uint64_t seed);

#endif
