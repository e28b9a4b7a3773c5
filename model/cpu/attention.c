// Grouped-query attention with soft-capping, sliding windows and document
// masks. Queries go in blocks of ATTN_BLOCK; each block multiplies only the
// key range its mask allows. The forward keeps the log-sum-exp per query so the
// backward recomputes probabilities instead of storing [T x T] matrices.
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "model/real.h"

size_t FN(attention_scratch)(const attn_shape *s, bool backward) {
    size_t per_thread = (size_t)ATTN_BLOCK * s->T * (backward ? 3 : 1);
    size_t per_head_grads = backward ? 2 * (size_t)s->B * s->n_heads * s->T * s->head_dim : 0;
    return per_head_grads + (size_t)s->n_threads * per_thread;
}

// First key query i (absolute index b*T + i in doc_begin) may attend to.
static inline int first_key(const attn_shape *s, int b, int i) {
    int lo = s->doc_begin ? s->doc_begin[(size_t)b * s->T + i] : 0;
    if (s->window > 0 && i - s->window + 1 > lo) lo = i - s->window + 1;
    return lo;
}

// Pointers to the rows of query block [i0, i0+m) of head h and its keys from lo.
typedef struct {
    int m, lo, nk; // queries in block, first key, number of keys
    size_t q_off, kv_off;
} block_span;

static block_span block_at(const attn_shape *s, int b, int h, int i0) {
    block_span sp;
    int i1 = i0 + ATTN_BLOCK < s->T ? i0 + ATTN_BLOCK : s->T;
    sp.m = i1 - i0;
    sp.lo = first_key(s, b, i0);
    sp.nk = i1 - sp.lo;
    int g = h / (s->n_heads / s->n_kv_heads);
    sp.q_off = ((size_t)b * s->T + i0) * s->n_heads * s->head_dim + (size_t)h * s->head_dim;
    sp.kv_off = ((size_t)b * s->T + sp.lo) * s->n_kv_heads * s->head_dim + (size_t)g * s->head_dim;
    return sp;
}

// S[m, nk] = softcap(scale * Q_blk . K^T): the capped scores of a block.
static void block_scores(real *S, const real *q, const real *k, const attn_shape *s, const block_span *sp) {
    int ldq = s->n_heads * s->head_dim, ldk = s->n_kv_heads * s->head_dim;
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, sp->m, sp->nk, s->head_dim, (real)s->scale, q + sp->q_off, ldq,
         k + sp->kv_off, ldk, 0, S, sp->nk);
    if (s->softcap > 0) {
        real cap = (real)s->softcap;
        size_t n = (size_t)sp->m * sp->nk;
#pragma omp simd
        for (size_t x = 0; x < n; x++) S[x] = REAL_TANH(S[x] / cap) * cap;
    }
}

void FN(attention_forward)(real *out, real_acc *lse, const real *q, const real *k, const real *v, const attn_shape *s,
                           real *scratch) {
    int n_blocks = (s->T + ATTN_BLOCK - 1) / ATTN_BLOCK, ldq = s->n_heads * s->head_dim;
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_threads)
    for (int bh = 0; bh < s->B * s->n_heads; bh++) {
        int b = bh / s->n_heads, h = bh % s->n_heads;
        real *S = scratch + (size_t)omp_get_thread_num() * ATTN_BLOCK * s->T; // [m, nk]
        for (int blk = 0; blk < n_blocks; blk++) {
            int i0 = blk * ATTN_BLOCK;
            block_span sp = block_at(s, b, h, i0);
            block_scores(S, q, k, s, &sp);
            for (int r = 0; r < sp.m; r++) {
                int i = i0 + r, j0 = first_key(s, b, i) - sp.lo, j1 = i - sp.lo + 1; // allowed keys [j0, j1)
                real *row = S + (size_t)r * sp.nk;
                real mx = row[j0];
#pragma omp simd reduction(max : mx)
                for (int j = j0; j < j1; j++) mx = row[j] > mx ? row[j] : mx;
                real sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int j = j0; j < j1; j++) {
                    row[j] = REAL_EXP(row[j] - mx);
                    sum += row[j];
                }
                real inv = 1 / sum;
                for (int j = 0; j < j0; j++) row[j] = 0;
#pragma omp simd
                for (int j = j0; j < j1; j++) row[j] *= inv;
                for (int j = j1; j < sp.nk; j++) row[j] = 0;
                lse[(size_t)bh * s->T + i] = mx + REAL_LOG(sum);
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, sp.m, s->head_dim, sp.nk, 1, S, sp.nk, v + sp.kv_off,
                 s->n_kv_heads * s->head_dim, 0, out + sp.q_off, ldq);
        }
    }
}

// From capped scores C and dP (= dO . V^T) builds P = exp(C - lse) and the
// gradient of the raw scaled scores, written over dP:
// dS = P (dP - rowsum(P dP)) (1 - (C/cap)^2) * scale.
static void block_score_grads(real *P, real *dP, const real *C, const real_acc *lse_bh, const attn_shape *s, int b, int i0,
                              const block_span *sp) {
    real cap = (real)s->softcap, scale = (real)s->scale;
    for (int r = 0; r < sp->m; r++) {
        int i = i0 + r, j0 = first_key(s, b, i) - sp->lo, j1 = i - sp->lo + 1;
        size_t row = (size_t)r * sp->nk;
        real *p = P + row, *dp = dP + row, l = lse_bh[i], dot = 0;
        const real *c = C + row;
#pragma omp simd reduction(+ : dot)
        for (int j = j0; j < j1; j++) {
            p[j] = REAL_EXP(c[j] - l);
            dot += p[j] * dp[j];
        }
        if (cap > 0) {
#pragma omp simd
            for (int j = j0; j < j1; j++) {
                real t = c[j] / cap;
                dp[j] = p[j] * (dp[j] - dot) * (1 - t * t) * scale;
            }
        } else {
#pragma omp simd
            for (int j = j0; j < j1; j++) dp[j] = p[j] * (dp[j] - dot) * scale;
        }
        for (int j = 0; j < j0; j++) p[j] = dp[j] = 0;
        for (int j = j1; j < sp->nk; j++) p[j] = dp[j] = 0;
    }
}

void FN(attention_backward)(real *dq, real *dk, real *dv, const real *dout, const real *q, const real *k, const real *v,
                            const real_acc *lse, const attn_shape *s, real *scratch) {
    int n_blocks = (s->T + ATTN_BLOCK - 1) / ATTN_BLOCK, hd = s->head_dim;
    int ldq = s->n_heads * hd, ldkv = s->n_kv_heads * hd, group = s->n_heads / s->n_kv_heads;
    size_t head_grads = (size_t)s->B * s->n_heads * s->T * hd;
    real *dk_heads = scratch, *dv_heads = scratch + head_grads; // [B, H, T, hd] each
    real *thread_space = scratch + 2 * head_grads;
    memset(dk_heads, 0, 2 * head_grads * sizeof *scratch);
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_threads)
    for (int bh = 0; bh < s->B * s->n_heads; bh++) {
        int b = bh / s->n_heads, h = bh % s->n_heads;
        size_t block_floats = (size_t)ATTN_BLOCK * s->T;
        real *P = thread_space + (size_t)omp_get_thread_num() * 3 * block_floats; // [m, nk] each
        real *dP = P + block_floats, *C = dP + block_floats;
        real *dk_h = dk_heads + (size_t)bh * s->T * hd, *dv_h = dv_heads + (size_t)bh * s->T * hd; // [T, hd]
        for (int blk = 0; blk < n_blocks; blk++) {
            int i0 = blk * ATTN_BLOCK;
            block_span sp = block_at(s, b, h, i0);
            block_scores(C, q, k, s, &sp);
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, sp.m, sp.nk, hd, 1, dout + sp.q_off, ldq, v + sp.kv_off, ldkv,
                 0, dP, sp.nk);
            block_score_grads(P, dP, C, lse + (size_t)bh * s->T, s, b, i0, &sp);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, sp.m, hd, sp.nk, 1, dP, sp.nk, k + sp.kv_off, ldkv, 0,
                 dq + sp.q_off, ldq);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, sp.nk, hd, sp.m, 1, dP, sp.nk, q + sp.q_off, ldq, 1,
                 dk_h + (size_t)sp.lo * hd, hd);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, sp.nk, hd, sp.m, 1, P, sp.nk, dout + sp.q_off, ldq, 1,
                 dv_h + (size_t)sp.lo * hd, hd);
        }
    }
    // Sum the query heads of each group into their shared key/value head.
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < s->B * s->T; bt++) {
        int b = bt / s->T, t = bt % s->T;
        for (int g = 0; g < s->n_kv_heads; g++) {
            real *dk_out = dk + (size_t)bt * ldkv + (size_t)g * hd, *dv_out = dv + (size_t)bt * ldkv + (size_t)g * hd;
            memset(dk_out, 0, hd * sizeof *dk_out);
            memset(dv_out, 0, hd * sizeof *dv_out);
            for (int h = g * group; h < (g + 1) * group; h++) {
                size_t off = (((size_t)b * s->n_heads + h) * s->T + t) * hd;
                for (int e = 0; e < hd; e++) {
                    dk_out[e] += dk_heads[off + e];
                    dv_out[e] += dv_heads[off + e];
                }
            }
        }
    }
}
