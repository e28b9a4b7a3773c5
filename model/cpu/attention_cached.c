// Attention of one new token per row against a KV cache, and the stores that
// fill the cache: a step's keys and values, or a whole prompt's (generation).
#include <string.h>

#include "model/real.h"

void FN(attention_cached)(real *out, const real *q, const real *k, const real *v, const int32_t *slot_pos,
                          const int32_t *pos, int B, int S, const attn_shape *s) {
    int H = s->n_heads, KV = s->n_kv_heads, hd = s->head_dim, group = H / KV, qd = H * hd, kvd = KV * hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            real *o = out + (size_t)b * qd + (size_t)h * hd;
            for (int i = 0; i < hd; i++) o[i] = to_real(0);
            if (pos[b] < 0) continue;
            const real *qh = q + (size_t)b * qd + (size_t)h * hd;
            double acc[ATTN_CACHED_MAX_HEAD_DIM] = {0}, m = -INFINITY, l = 0; // online softmax: running max m, sum l
            for (int j = 0; j < S; j++) {
                int32_t p = slot_pos[(size_t)b * S + j];
                if (p < 0 || p > pos[b] || (s->window > 0 && pos[b] - p >= s->window)) continue;
                const real *kj = k + ((size_t)b * S + j) * kvd + (size_t)(h / group) * hd;
                const real *vj = v + ((size_t)b * S + j) * kvd + (size_t)(h / group) * hd;
                double score = 0;
                for (int i = 0; i < hd; i++) score += (double)to_acc(qh[i]) * to_acc(kj[i]);
                score *= s->scale;
                if (s->softcap > 0) score = s->softcap * tanh(score / s->softcap);
                if (score > m) {
                    double shrink = exp(m - score);
                    for (int i = 0; i < hd; i++) acc[i] *= shrink;
                    l *= shrink;
                    m = score;
                }
                double w = exp(score - m);
                l += w;
                for (int i = 0; i < hd; i++) acc[i] += w * to_acc(vj[i]);
            }
            for (int i = 0; l > 0 && i < hd; i++) o[i] = to_real(acc[i] / l);
        }
}

void FN(kv_store)(real *cache_k, real *cache_v, int32_t *slot_pos, const real *k, const real *v, const int32_t *pos,
                  int B, int S, int kvd) {
    for (int b = 0; b < B; b++) {
        if (pos[b] < 0) continue;
        size_t slot = (size_t)b * S + (size_t)pos[b] % S;
        memcpy(cache_k + slot * kvd, k + (size_t)b * kvd, (size_t)kvd * sizeof(real));
        memcpy(cache_v + slot * kvd, v + (size_t)b * kvd, (size_t)kvd * sizeof(real));
        slot_pos[slot] = pos[b];
    }
}

void FN(kv_store_prompt)(real *cache_k, real *cache_v, int32_t *slot_pos, const real *k, const real *v, int n, int S,
                         int kvd) {
    for (int j = 0; j < S; j++) {
        int32_t p = j < n ? j + (n - 1 - j) / S * S : -1; // the last position p < n with p % S == j
        slot_pos[j] = p;
        if (p < 0) continue;
        memcpy(cache_k + (size_t)j * kvd, k + (size_t)p * kvd, (size_t)kvd * sizeof(real));
        memcpy(cache_v + (size_t)j * kvd, v + (size_t)p * kvd, (size_t)kvd * sizeof(real));
    }
}
