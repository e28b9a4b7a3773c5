#include "model/init.h"

#include <math.h>

#include "common/rng.h"

static double init_std(const model_config *cfg, const param_tensor *t) {
    if (t->kind == PARAM_NORM) return 0;
    if (t->kind == PARAM_EMBEDDING) return 1.0 / sqrt(cfg->d_model);
    return 1.0 / sqrt((double)t->shape[1]); // fan-in of an [out, in] matrix
}

void model_init_random(const model_config *cfg, const param_layout *layout, float *params, uint64_t seed) {
    for (int i = 0; i < layout->n_tensors; i++) {
        const param_tensor *t = &layout->tensors[i];
        double std = init_std(cfg, t);
        uint64_t key = hash64(seed) ^ hash64(0x51ED270B7A3Cull + (uint64_t)i);
        float *out = params + t->offset;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < t->numel; j++) out[j] = std > 0 ? (float)(std * hash_normal(key, j)) : 0.0f;
    }
}
