// Grouped-query attention with soft-capping, sliding windows and document
// masks. Each (row, head) gathers its query, key and value rows into
// contiguous real_acc buffers, then goes over blocks of ATTN_BLOCK queries;
// each block multiplies only the key range its mask allows. The forward keeps
// the log-sum-exp per query so the backward recomputes probabilities instead
// of storing [T x T] matrices.
#include <omp.h>
#include <string.h>

#include "model/real.h"
#include "model/cpu/acc_gemm.h"

enum { ROW_ALIGN = 16 }; // score rows start on a 64-byte boundary: whole-row loops vectorise without scalar ends

static int round_up(int n) { return (n + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN; }

// real_acc values of one thread's work space.
static size_t thread_floats(const attn_shape *s, bool backward) {
    size_t head = (size_t)s->T * s->head_dim, block = (size_t)ATTN_BLOCK * round_up(s->T);
    return backward ? 5 * head + 3 * block : 4 * head + block;
}

size_t FN(attention_scratch)(const attn_shape *s, bool backward) {
    size_t per_head_grads = backward ? 2 * (size_t)s->B * s->n_heads * s->T * s->head_dim : 0;
    return ACC_REALS(per_head_grads + (size_t)s->n_threads * thread_floats(s, backward));
}

// First key query i of row b may attend to.
static inline int first_key(const attn_shape *s, int b, int i) {
    int lo = s->doc_begin ? s->doc_begin[(size_t)b * s->T + i] : 0;
    if (s->window > 0 && i - s->window + 1 > lo) lo = i - s->window + 1;
    return lo;
}

// Query block [i0, i0+m) and the keys [lo, lo+nk) its mask allows; its scores
// are [m, ld] with ld = nk rounded up (the columns past nk are never used).
typedef struct {
    int i0, m, lo, nk, ld;
} block_span;

static block_span block_at(const attn_shape *s, int b, int i0) {
    int i1 = i0 + ATTN_BLOCK < s->T ? i0 + ATTN_BLOCK : s->T, lo = first_key(s, b, i0);
    return (block_span){i0, i1 - i0, lo, i1 - lo, round_up(i1 - lo)};
}

// dst [T, hd] (real_acc) = the head's columns of x [B*T, ld] for row b.
static void gather_head(real_acc *dst, const real *x, int ld, int b, int col, const attn_shape *s) {
    int hd = s->head_dim;
    for (int t = 0; t < s->T; t++) {
        const real *src = x + ((size_t)b * s->T + t) * ld + col;
        real_acc *d = dst + (size_t)t * hd;
#pragma omp simd
        for (int e = 0; e < hd; e++) d[e] = to_acc(src[e]);
    }
}

// The head's columns of x [B*T, ld] for row b = src [T, hd].
static void scatter_head(real *x, const real_acc *src, int ld, int b, int col, const attn_shape *s) {
    int hd = s->head_dim;
    for (int t = 0; t < s->T; t++) {
        real *d = x + ((size_t)b * s->T + t) * ld + col;
        const real_acc *r = src + (size_t)t * hd;
#pragma omp simd
        for (int e = 0; e < hd; e++) d[e] = to_real(r[e]);
    }
}

// One (row, head)'s inputs, gathered: [T, hd] each.
typedef struct {
    real_acc *q, *k, *v;
} head_rows;

static void gather_qkv(head_rows *h, const real *q, const real *k, const real *v, int b, int head,
                       const attn_shape *s) {
    int hd = s->head_dim, g = head / (s->n_heads / s->n_kv_heads);
    gather_head(h->q, q, s->n_heads * hd, b, head * hd, s);
    gather_head(h->k, k, s->n_kv_heads * hd, b, g * hd, s);
    gather_head(h->v, v, s->n_kv_heads * hd, b, g * hd, s);
}

// S[m, nk] = softcap(scale * Q_blk . K^T): the capped scores of a block.
static void block_scores(real_acc *S, const head_rows *h, const attn_shape *s, const block_span *sp) {
    int hd = s->head_dim;
    acc_gemm(false, true, sp->m, sp->nk, hd, (real_acc)s->scale, h->q + (size_t)sp->i0 * hd, hd,
             h->k + (size_t)sp->lo * hd, hd, 0, S, sp->ld);
    if (s->softcap > 0) {
        real_acc cap = (real_acc)s->softcap;
        size_t n = (size_t)sp->m * sp->ld;
#pragma omp simd
        for (size_t x = 0; x < n; x++) S[x] = ACC_TANH(S[x] / cap) * cap;
    }
}

// Scores of the block -> probabilities in place (zero outside each query's
// keys); lse per query. The loops run over whole rows with the mask as a
// condition, which vectorises better than short ranges with ragged ends.
static void block_softmax(real_acc *S, real_acc *lse_bh, const attn_shape *s, int b, const block_span *sp) {
    for (int r = 0; r < sp->m; r++) {
        int i = sp->i0 + r, j0 = first_key(s, b, i) - sp->lo, j1 = i - sp->lo + 1; // allowed keys [j0, j1)
        real_acc *row = S + (size_t)r * sp->ld, mx = row[j0], sum = 0;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < sp->ld; j++) mx = j >= j0 && j < j1 && row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < sp->ld; j++) {
            real_acc e = ACC_EXP(row[j] - mx);
            row[j] = j >= j0 && j < j1 ? e : 0;
            sum += row[j];
        }
        real_acc inv = 1 / sum;
#pragma omp simd
        for (int j = 0; j < sp->ld; j++) row[j] *= inv;
        lse_bh[i] = mx + ACC_LOG(sum);
    }
}

void FN(attention_forward)(real *out, real_acc *lse, const real *q, const real *k, const real *v, const attn_shape *s,
                           real *scratch) {
    int n_blocks = (s->T + ATTN_BLOCK - 1) / ATTN_BLOCK, hd = s->head_dim;
    size_t head = (size_t)s->T * hd;
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_threads)
    for (int bh = 0; bh < s->B * s->n_heads; bh++) {
        int b = bh / s->n_heads, h = bh % s->n_heads;
        real_acc *space = (real_acc *)scratch + (size_t)omp_get_thread_num() * thread_floats(s, false);
        head_rows rows = {space, space + head, space + 2 * head};
        real_acc *o = space + 3 * head, *S = space + 4 * head; // [T, hd], [m, nk]
        gather_qkv(&rows, q, k, v, b, h, s);
        for (int blk = 0; blk < n_blocks; blk++) {
            block_span sp = block_at(s, b, blk * ATTN_BLOCK);
            block_scores(S, &rows, s, &sp);
            block_softmax(S, lse + (size_t)bh * s->T, s, b, &sp);
            acc_gemm(false, false, sp.m, hd, sp.nk, 1, S, sp.ld, rows.v + (size_t)sp.lo * hd, hd, 0,
                     o + (size_t)sp.i0 * hd, hd);
        }
        scatter_head(out, o, s->n_heads * hd, b, h * hd, s);
    }
}

// From capped scores C and dP (= dO . V^T) builds P = exp(C - lse) and the
// gradient of the raw scaled scores, written over dP:
// dS = P (dP - rowsum(P dP)) (1 - (C/cap)^2) * scale.
static void block_score_grads(real_acc *P, real_acc *dP, const real_acc *C, const real_acc *lse_bh,
                              const attn_shape *s, int b, const block_span *sp) {
    real_acc cap = (real_acc)s->softcap, scale = (real_acc)s->scale, inv_cap = cap > 0 ? 1 / cap : 0;
    for (int r = 0; r < sp->m; r++) {
        int i = sp->i0 + r, j0 = first_key(s, b, i) - sp->lo, j1 = i - sp->lo + 1;
        size_t row = (size_t)r * sp->ld;
        real_acc *p = P + row, *dp = dP + row, l = lse_bh[i], dot = 0;
        const real_acc *c = C + row;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < sp->ld; j++) { // columns past nk hold whatever was there: masked, never multiplied
            bool in = j >= j0 && j < j1;
            real_acc e = ACC_EXP(c[j] - l);
            p[j] = in ? e : 0;
            dot += in ? p[j] * dp[j] : 0;
        }
#pragma omp simd
        for (int j = 0; j < sp->ld; j++) {
            real_acc t = c[j] * inv_cap; // 0 without a cap: the factor is 1
            dp[j] = j >= j0 && j < j1 ? p[j] * (dp[j] - dot) * (1 - t * t) * scale : 0;
        }
    }
}

// dq of one (row, head), and its dk, dv before the group sum ([T, hd] each).
static void head_backward(real_acc *dq_h, real_acc *dk_h, real_acc *dv_h, const head_rows *rows, const real_acc *dout,
                          const real_acc *lse_bh, real_acc *P, const attn_shape *s, int b) {
    int n_blocks = (s->T + ATTN_BLOCK - 1) / ATTN_BLOCK, hd = s->head_dim;
    size_t block = (size_t)ATTN_BLOCK * round_up(s->T);
    real_acc *dP = P + block, *C = dP + block; // [m, ld] each
    for (int blk = 0; blk < n_blocks; blk++) {
        block_span sp = block_at(s, b, blk * ATTN_BLOCK);
        const real_acc *q_blk = rows->q + (size_t)sp.i0 * hd, *do_blk = dout + (size_t)sp.i0 * hd;
        const real_acc *k_keys = rows->k + (size_t)sp.lo * hd, *v_keys = rows->v + (size_t)sp.lo * hd;
        block_scores(C, rows, s, &sp);
        acc_gemm(false, true, sp.m, sp.nk, hd, 1, do_blk, hd, v_keys, hd, 0, dP, sp.ld);
        block_score_grads(P, dP, C, lse_bh, s, b, &sp);
        acc_gemm(false, false, sp.m, hd, sp.nk, 1, dP, sp.ld, k_keys, hd, 0, dq_h + (size_t)sp.i0 * hd, hd);
        acc_gemm(true, false, sp.nk, hd, sp.m, 1, dP, sp.ld, q_blk, hd, 1, dk_h + (size_t)sp.lo * hd, hd);
        acc_gemm(true, false, sp.nk, hd, sp.m, 1, P, sp.ld, do_blk, hd, 1, dv_h + (size_t)sp.lo * hd, hd);
    }
}

// Sums the query heads of each group into their shared key/value head: dk, dv [B*T, KV*hd].
static void sum_groups(real *dk, real *dv, const real_acc *dk_heads, const real_acc *dv_heads, const attn_shape *s) {
    int hd = s->head_dim, ldkv = s->n_kv_heads * hd, group = s->n_heads / s->n_kv_heads;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < s->B * s->T; bt++) {
        int b = bt / s->T, t = bt % s->T;
        for (int g = 0; g < s->n_kv_heads; g++) {
            real *dk_out = dk + (size_t)bt * ldkv + (size_t)g * hd, *dv_out = dv + (size_t)bt * ldkv + (size_t)g * hd;
            for (int e = 0; e < hd; e++) {
                real_acc sk = 0, sv = 0;
                for (int h = g * group; h < (g + 1) * group; h++) {
                    size_t off = (((size_t)b * s->n_heads + h) * s->T + t) * hd + e;
                    sk += dk_heads[off];
                    sv += dv_heads[off];
                }
                dk_out[e] = to_real(sk);
                dv_out[e] = to_real(sv);
            }
        }
    }
}

void FN(attention_backward)(real *dq, real *dk, real *dv, const real *dout, const real *q, const real *k, const real *v,
                            const real_acc *lse, const attn_shape *s, real *scratch) {
    int hd = s->head_dim;
    size_t head = (size_t)s->T * hd, head_grads = (size_t)s->B * s->n_heads * head;
    real_acc *dk_heads = (real_acc *)scratch, *dv_heads = dk_heads + head_grads; // [B, H, T, hd] each
    real_acc *thread_space = dv_heads + head_grads;
    memset(dk_heads, 0, 2 * head_grads * sizeof *dk_heads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_threads)
    for (int bh = 0; bh < s->B * s->n_heads; bh++) {
        int b = bh / s->n_heads, h = bh % s->n_heads;
        real_acc *space = thread_space + (size_t)omp_get_thread_num() * thread_floats(s, true);
        head_rows rows = {space, space + head, space + 2 * head};
        real_acc *dout_h = space + 3 * head, *dq_h = space + 4 * head, *P = space + 5 * head;
        gather_qkv(&rows, q, k, v, b, h, s);
        gather_head(dout_h, dout, s->n_heads * hd, b, h * hd, s);
        head_backward(dq_h, dk_heads + (size_t)bh * head, dv_heads + (size_t)bh * head, &rows, dout_h,
                      lse + (size_t)bh * s->T, P, s, b);
        scatter_head(dq, dq_h, s->n_heads * hd, b, h * hd, s);
    }
    sum_groups(dk, dv, dk_heads, dv_heads, s);
}
