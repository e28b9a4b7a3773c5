#include "distill/kd_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fastmath.h"
#include "model/xent_tiled.h"

static tiled_loss kd_tiled_loss(kd_head_ctx *k);

int kd_head_init(kd_head_ctx *k, const kd_config *kd, size_t positions, gk_err *err) {
    *k = (kd_head_ctx){.kd = *kd, .positions = positions};
    k->pos = gk_calloc(positions, sizeof *k->pos, err);
    return k->pos ? 0 : -1;
}

void kd_head_use_teacher(kd_head_ctx *k, const online_teacher *t) { kd_head_use_engine(k, t->engine); }

void kd_head_use_engine(kd_head_ctx *k, engine *teacher) { k->teacher = teacher; }

int kd_head_use_cache(kd_head_ctx *k, sparse_objective obj, const teacher_cache_rows *rows, gk_err *err) {
    size_t cells;
    k->sparse = obj;
    k->rows = rows;
    k->k = rows->k < SPARSE_MAX_K ? rows->k : SPARSE_MAX_K;
    if (!gk_mul_ok(k->positions, (size_t)k->k, &cells)) return gk_fail(err, GK_ENOMEM, "teacher cache rows too large");
    k->s_ids = gk_malloc(cells * sizeof *k->s_ids, err);
    k->g_ids = gk_malloc(cells * sizeof *k->g_ids, err);
    return k->s_ids && k->g_ids ? 0 : -1;
}

head_loss kd_head_loss(kd_head_ctx *k, bool grads) {
    k->loss = kd_tiled_loss(k);
    return (head_loss){.kind = HEAD_TILED, .tiled = &k->loss, .grads = grads};
}

void kd_head_free(kd_head_ctx *k) {
    free(k->pos);
    free(k->s_ids);
    free(k->g_ids);
    *k = (kd_head_ctx){0};
}

// ---------------------------------------------------------------- the tiled loss

static bool unit_temperature(const kd_head_ctx *k) { return k->kd.temperature == 1.0; }

// The logged KL(softmax(t) || softmax(s)) is the divergence itself at tau 1 for forward KL.
static bool kl_is_kd(const kd_head_ctx *k) { return unit_temperature(k) && k->kd.divergence == KD_FORWARD_KL; }

static double kd_scale(const kd_head_ctx *k) { return k->kd.t2_scale ? k->kd.temperature * k->kd.temperature : 1.0; }

static void begin(void *ctx, size_t first, size_t count) {
    kd_head_ctx *k = ctx;
    GK_ASSERT(first + count <= k->positions);
    for (size_t i = first; i < first + count; i++)
        k->pos[i] = (kd_position){.m_a = -INFINITY, .m_s = -INFINITY, .m_b = -INFINITY, .m_t = -INFINITY,
                                  .s_target = NAN};
}

// The sparse row of position i (its ids at most k).
static sparse_row row_of(const kd_head_ctx *k, size_t i) {
    sparse_row row;
    GK_ASSERT(teacher_cache_row(k->rows, i, &row) == 0); // the cache's rows were read for this batch
    if (row.k > k->k) row.k = k->k;
    return row;
}

// Pass 0: every online sum of one position's tile row (s, t: [width], ids v0..).
static void first_pass_row(kd_head_ctx *k, size_t i, const float *s, const float *t, int v0, int width) {
    kd_position *p = &k->pos[i];
    float it = (float)(1.0 / k->kd.temperature);
    bool forward = k->kd.divergence == KD_FORWARD_KL, reverse = k->kd.divergence == KD_REVERSE_KL;
    bool dense = k->teacher != NULL;
    lse_fold(s, dense && reverse ? t : NULL, it, width, &p->m_a, &p->z_a, reverse ? &p->w_kd : NULL);
    if (!unit_temperature(k)) lse_fold(s, NULL, 1, width, &p->m_s, &p->z_s, NULL);
    if (dense) {
        lse_fold(t, forward ? s : NULL, it, width, &p->m_b, &p->z_b, forward ? &p->w_kd : NULL);
        if (!kl_is_kd(k)) lse_fold(t, s, 1, width, &p->m_t, &p->z_t, &p->w_kl);
    } else { // the student's logits at the row's ids in this tile
        sparse_row row = row_of(k, i);
        for (int j = 0; j < row.k; j++)
            if (row.ids[j] >= v0 && row.ids[j] < v0 + width) k->s_ids[i * k->k + j] = s[row.ids[j] - v0];
    }
    int32_t target = k->targets[i];
    if (target >= v0 && target < v0 + width) p->s_target = s[target - v0];
}

static void set_lse(kd_head_ctx *k, kd_position *p) {
    p->lse_a = p->m_a + log(p->z_a);
    p->lse_s = unit_temperature(k) ? p->lse_a : p->m_s + log(p->z_s);
    if (!k->teacher) return;
    p->lse_b = p->m_b + log(p->z_b);
    p->lse_t = kl_is_kd(k) ? p->lse_b : p->m_t + log(p->z_t);
}

// log M = log(beta p_T + (1 - beta) p_S) from the log-probabilities.
static inline float log_mixture(float lpt, float lps, float log_beta, float log_rest) {
    float x = log_beta + lpt, y = log_rest + lps, hi = x > y ? x : y;
    return hi + log1pf(fast_expf(-fabsf(x - y)));
}

// Pass 1 (JSD only): the divergence and sum p_S h, h = (1 - beta) log(p_S / M), with both normalisers known.
static void jsd_pass_row(kd_head_ctx *k, kd_position *p, const float *s, const float *t, int width) {
    float it = (float)(1.0 / k->kd.temperature), beta = (float)k->kd.beta, lb1 = logf(beta), lb2 = logf(1 - beta);
    float la = (float)p->lse_a, lb = (float)p->lse_b;
    double kd = 0, inner = 0;
    for (int j = 0; j < width; j++) {
        float lps = s[j] * it - la, lpt = t[j] * it - lb, ps = fast_expf(lps), pt = fast_expf(lpt);
        float lm = log_mixture(lpt, lps, lb1, lb2), h = (1 - beta) * (lps - lm);
        kd += k->kd.beta * pt * (lpt - lm) + (1 - k->kd.beta) * ps * (lps - lm);
        inner += ps * h;
    }
    p->kd += kd;
    p->inner += inner;
}

static void stats(void *ctx, int pass, const float *s, const float *t, size_t first, size_t count, int v0, int width) {
    kd_head_ctx *k = ctx;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r, off = r * (size_t)width;
        if (k->targets[i] < 0) continue;
        if (pass == 0) {
            first_pass_row(k, i, s + off, t ? t + off : NULL, v0, width);
            continue;
        }
        if (v0 == 0) set_lse(k, &k->pos[i]);
        jsd_pass_row(k, &k->pos[i], s + off, t + off, width);
    }
}

// The sparse objective of position i from its ids' logits (as kd_row_sparse): returns the divergence;
// leaves dKD/da at the ids in g_ids and the factor of p_S outside them in inner.
static double sparse_kd(kd_head_ctx *k, size_t i) {
    sparse_row row = row_of(k, i);
    kd_position *p = &k->pos[i];
    float it = (float)(1.0 / k->kd.temperature);
    double lpt_norm = 0, q_k = 0, kd = 0, n_draws = 0, w[SPARSE_MAX_K];
    const float *sid = k->s_ids + i * k->k;
    if (k->sparse == SPARSE_TOPK_RENORM) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < row.k; j++) mx = fmax(mx, row.logprobs[j]);
        for (int j = 0; j < row.k; j++) sum += exp(row.logprobs[j] - mx);
        lpt_norm = mx + log(sum);
    }
    for (int j = 0; k->sparse == SPARSE_SAMPLED && j < row.k; j++) n_draws += row.counts[j];
    for (int j = 0; j < row.k; j++) {
        double lps = (double)sid[j] * it - p->lse_a, lpt = row.logprobs[j];
        q_k += exp(lps);
        if (k->sparse == SPARSE_TOPK_RENORM) w[j] = exp(lpt - lpt_norm), kd += w[j] * (lpt - lpt_norm - lps);
        else if (k->sparse == SPARSE_TOPK_BUCKET) w[j] = exp(lpt), kd += w[j] * (lpt - lps);
        else w[j] = row.counts[j] / n_draws, kd += w[j] * (lpt - lps);
    }
    double r = k->sparse == SPARSE_TOPK_BUCKET ? row.leftover : 0, q_r = fmax(1 - q_k, 1e-30);
    if (r > 0) kd += r * (log(r) - log(q_r));
    p->inner = r > 0 ? 1 - r / q_r : 1;
    for (int j = 0; j < row.k; j++) k->g_ids[i * k->k + j] = (float)(exp((double)sid[j] * it - p->lse_a) - w[j]);
    return kd;
}

// The divergence of a dense position once its sums are complete.
static double dense_kd(const kd_head_ctx *k, const kd_position *p) {
    switch (k->kd.divergence) {
    case KD_FORWARD_KL: return p->w_kd / p->z_b - p->lse_b + p->lse_a;
    case KD_REVERSE_KL: return p->w_kd / p->z_a - p->lse_a + p->lse_b;
    case KD_JSD: return p->kd;
    }
    return NAN;
}

static double finish(void *ctx, size_t first, size_t count) {
    kd_head_ctx *k = ctx;
    double total = 0, w = k->scale;
    bool dense = k->teacher != NULL, jsd = dense && k->kd.divergence == KD_JSD;
    for (size_t i = first; i < first + count; i++) { // in order: the same sums for any thread count
        kd_position *p = &k->pos[i];
        if (k->targets[i] < 0) continue;
        if (!jsd) set_lse(k, p); // JSD's second pass set them
        double kd = dense ? dense_kd(k, p) : sparse_kd(k, i), ce = p->lse_s - p->s_target;
        double kl = !dense || kl_is_kd(k) ? kd : p->w_kl / p->z_t - p->lse_t + p->lse_s;
        double loss = k->kd.alpha * kd_scale(k) * kd + (1 - k->kd.alpha) * ce;
        p->kd = kd;
        k->sums.loss += w * loss;
        k->sums.ce += w * ce;
        k->sums.kd += w * kd;
        k->sums.kl += w * kl;
        total += w * loss;
    }
    return total;
}

// dKD/da over a dense tile row into g.
static void dense_grad_row(const kd_head_ctx *k, const kd_position *p, const float *s, const float *t, int width,
                           float *g) {
    float it = (float)(1.0 / k->kd.temperature), la = (float)p->lse_a, lb = (float)p->lse_b, kd = (float)p->kd;
    float beta = (float)k->kd.beta, lb1 = logf(beta), lb2 = logf(1 - beta), inner = (float)p->inner;
    switch (k->kd.divergence) {
    case KD_FORWARD_KL:
#pragma omp simd
        for (int j = 0; j < width; j++) g[j] = fast_expf(s[j] * it - la) - fast_expf(t[j] * it - lb);
        break;
    case KD_REVERSE_KL: // p_S (log p_S - log p_T - KD)
#pragma omp simd
        for (int j = 0; j < width; j++) {
            float lps = s[j] * it - la, lpt = t[j] * it - lb;
            g[j] = fast_expf(lps) * (lps - lpt - kd);
        }
        break;
    case KD_JSD: // p_S (h - sum p_S h)
        for (int j = 0; j < width; j++) {
            float lps = s[j] * it - la, lpt = t[j] * it - lb;
            g[j] = fast_expf(lps) * ((1 - beta) * (lps - log_mixture(lpt, lps, lb1, lb2)) - inner);
        }
        break;
    }
}

// dKD/da over a sparse tile row: p_S times the outside factor; the ids' own values where they fall in the tile.
static void sparse_grad_row(const kd_head_ctx *k, size_t i, const float *s, int v0, int width, float *g) {
    const kd_position *p = &k->pos[i];
    float it = (float)(1.0 / k->kd.temperature), la = (float)p->lse_a, outside = (float)p->inner;
#pragma omp simd
    for (int j = 0; j < width; j++) g[j] = fast_expf(s[j] * it - la) * outside;
    sparse_row row = row_of(k, i);
    for (int j = 0; j < row.k; j++)
        if (row.ids[j] >= v0 && row.ids[j] < v0 + width) g[row.ids[j] - v0] = k->g_ids[i * k->k + j];
}

static void grad(void *ctx, const float *s, const float *t, float *ds, size_t first, size_t count, int v0, int width) {
    kd_head_ctx *k = ctx;
    float wk = (float)(k->scale * k->kd.alpha * kd_scale(k) / k->kd.temperature);
    float wc = (float)(k->scale * (1 - k->kd.alpha));
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r, off = r * (size_t)width;
        const float *row = s + off;
        float *g = ds + off, ls = (float)k->pos[i].lse_s;
        int32_t target = k->targets[i];
        if (target < 0) {
            memset(g, 0, (size_t)width * sizeof *g);
            continue;
        }
        if (k->teacher) dense_grad_row(k, &k->pos[i], row, t + off, width, g);
        else sparse_grad_row(k, i, row, v0, width, g);
        if (wc == 0) {
#pragma omp simd
            for (int j = 0; j < width; j++) g[j] *= wk;
            continue;
        }
#pragma omp simd
        for (int j = 0; j < width; j++) g[j] = wk * g[j] + wc * fast_expf(row[j] - ls);
        if (target >= v0 && target < v0 + width) g[target - v0] -= wc;
    }
}

static tiled_loss kd_tiled_loss(kd_head_ctx *k) {
    bool dense = k->teacher != NULL;
    return (tiled_loss){.passes = dense && k->kd.divergence == KD_JSD ? 2 : 1, .ctx = k, .begin = begin,
                        .stats = stats, .finish = finish, .grad = grad,
                        .teacher_tile = dense ? engine_teacher_tile : NULL, .teacher = k->teacher};
}
