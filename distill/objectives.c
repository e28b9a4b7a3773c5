#include "distill/objectives.h"

#include <math.h>

#include "common/fastmath.h"

static float row_max(const float *x, int V) {
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// log sum_i exp(x_i * scale) for a row whose maximum is mx.
static double row_lse(const float *x, int V, float mx, float scale) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; i++) sum += fast_expf((x[i] - mx) * scale);
    return (double)mx * scale + log(sum);
}

// KL(softmax(t) || softmax(s)) at temperature 1, for logging.
static double true_kl(const float *s, const float *t, int V, double lse_s, double lse_t) {
    double kl = 0;
#pragma omp simd reduction(+ : kl)
    for (int i = 0; i < V; i++) {
        float lpt = t[i] - (float)lse_t, lps = s[i] - (float)lse_s;
        kl += fast_expf(lpt) * (lpt - lps);
    }
    return kl;
}

typedef struct {
    float inv_tau;
    double lse_a, lse_b; // of s / tau and t / tau
} tempered;

// The divergence and its gradient with respect to the tempered student logits a = s / tau, written to g.
static double divergence(const kd_config *c, const float *s, const float *t, int V, const tempered *z, float *g) {
    float it = z->inv_tau, la = (float)z->lse_a, lb = (float)z->lse_b;
    double kd = 0, inner = 0;
    float beta = (float)c->beta, lb1 = logf(beta), lb2 = logf(1 - beta);
    switch (c->divergence) {
    case KD_FORWARD_KL:
#pragma omp simd reduction(+ : kd)
        for (int i = 0; i < V; i++) {
            float lps = s[i] * it - la, lpt = t[i] * it - lb, pt = fast_expf(lpt);
            kd += pt * (lpt - lps);
            g[i] = fast_expf(lps) - pt;
        }
        return kd;
    case KD_REVERSE_KL: // d/da_i = p_S,i (log p_S,i - log p_T,i - KD)
#pragma omp simd reduction(+ : kd)
        for (int i = 0; i < V; i++) {
            float lps = s[i] * it - la, lpt = t[i] * it - lb, ps = fast_expf(lps);
            kd += ps * (lps - lpt);
            g[i] = ps * (lps - lpt);
        }
        {
            float k = (float)kd;
#pragma omp simd
            for (int i = 0; i < V; i++) g[i] -= fast_expf(s[i] * it - la) * k;
        }
        return kd;
    case KD_JSD: // with h_i = (1 - beta) log(p_S,i / M_i): d/da_i = p_S,i (h_i - sum_j p_S,j h_j)
        for (int i = 0; i < V; i++) {
            float lps = s[i] * it - la, lpt = t[i] * it - lb, ps = fast_expf(lps), pt = fast_expf(lpt);
            float x = lb1 + lpt, y = lb2 + lps, hi = x > y ? x : y;
            float lm = hi + log1pf(fast_expf(-fabsf(x - y))); // log M_i
            kd += c->beta * pt * (lpt - lm) + (1 - c->beta) * ps * (lps - lm);
            g[i] = (1 - beta) * (lps - lm);
            inner += ps * g[i];
        }
        {
            float k = (float)inner;
#pragma omp simd
            for (int i = 0; i < V; i++) g[i] = fast_expf(s[i] * it - la) * (g[i] - k);
        }
        return kd;
    }
    return 0;
}

// ds = weight * (alpha * kd_scale * g / tau + (1 - alpha) * (softmax(s) - onehot)); g may be ds itself.
static void combine(const kd_config *c, const float *s, const float *g, int V, int32_t target, double lse_s,
                    double weight, float *ds) {
    double kd_scale = c->t2_scale ? c->temperature * c->temperature : 1.0;
    float wk = (float)(weight * c->alpha * kd_scale / c->temperature), wc = (float)(weight * (1 - c->alpha));
    float ls = (float)lse_s;
    if (wc == 0) {
#pragma omp simd
        for (int i = 0; i < V; i++) ds[i] = wk * g[i];
        return;
    }
#pragma omp simd
    for (int i = 0; i < V; i++) ds[i] = wk * g[i] + wc * fast_expf(s[i] - ls);
    ds[target] -= wc;
}

static double finish(const kd_config *c, double kd, double ce, double kl, double weight, kd_sums *sums) {
    double kd_scale = c->t2_scale ? c->temperature * c->temperature : 1.0;
    double loss = c->alpha * kd_scale * kd + (1 - c->alpha) * ce;
    if (sums) {
        sums->loss += weight * loss;
        sums->ce += weight * ce;
        sums->kd += weight * kd;
        sums->kl += weight * kl;
    }
    return weight * loss;
}

double kd_row_dense(const kd_config *c, const float *s, const float *t, int V, int32_t target, double weight,
                    float *ds, kd_sums *sums) {
    float ms = row_max(s, V), mt = row_max(t, V), it = (float)(1.0 / c->temperature);
    tempered z = {it, row_lse(s, V, ms, it), row_lse(t, V, mt, it)};
    bool unit = c->temperature == 1.0;
    double lse_s = unit ? z.lse_a : row_lse(s, V, ms, 1), lse_t = unit ? z.lse_b : row_lse(t, V, mt, 1), kd = 0;
    if (ds) {
        kd = divergence(c, s, t, V, &z, ds);
    } else { // loss only: the divergence is a sum over the row, so take it in pieces
        enum { PIECE = 2048 };
        float scratch[PIECE];
        for (int off = 0; off < V; off += PIECE)
            kd += divergence(c, s + off, t + off, V - off < PIECE ? V - off : PIECE, &z, scratch);
    }
    double ce = -((double)s[target] - lse_s);
    double kl = unit && c->divergence == KD_FORWARD_KL ? kd : true_kl(s, t, V, lse_s, lse_t);
    if (ds) combine(c, s, ds, V, target, lse_s, weight, ds);
    return finish(c, kd, ce, kl, weight, sums);
}

double kd_row_sparse(const kd_config *c, sparse_objective obj, const float *s, const sparse_row *t, int V,
                     int32_t target, double weight, float *ds, kd_sums *sums) {
    float ms = row_max(s, V), it = (float)(1.0 / c->temperature);
    double lse_a = row_lse(s, V, ms, it), lse_s = c->temperature == 1.0 ? lse_a : row_lse(s, V, ms, 1);
    // Teacher weights on the k ids and the student's mass on them.
    double w[SPARSE_MAX_K], lpt_norm = 0, q_k = 0, kd = 0;
    int k = t->k < SPARSE_MAX_K ? t->k : SPARSE_MAX_K;
    if (obj == SPARSE_TOPK_RENORM) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < k; j++) mx = fmax(mx, t->logprobs[j]);
        for (int j = 0; j < k; j++) sum += exp(t->logprobs[j] - mx);
        lpt_norm = mx + log(sum); // renormalisation
    }
    double n_draws = 0;
    for (int j = 0; obj == SPARSE_SAMPLED && j < k; j++) n_draws += t->counts[j];
    for (int j = 0; j < k; j++) {
        double lps = (double)s[t->ids[j]] * it - lse_a, lpt = t->logprobs[j];
        q_k += exp(lps);
        if (obj == SPARSE_TOPK_RENORM) w[j] = exp(lpt - lpt_norm), kd += w[j] * (lpt - lpt_norm - lps);
        else if (obj == SPARSE_TOPK_BUCKET) w[j] = exp(lpt), kd += w[j] * (lpt - lps);
        else w[j] = t->counts[j] / n_draws, kd += w[j] * (lpt - lps);
    }
    double r = obj == SPARSE_TOPK_BUCKET ? t->leftover : 0, q_r = fmax(1 - q_k, 1e-30);
    if (r > 0) kd += r * (log(r) - log(q_r));
    double ce = -((double)s[target] - lse_s);
    if (ds) { // d/da_j: q_j - w_j on the k ids; the bucket adds -r q_j / q_r outside them
        float outside = (float)(r > 0 ? 1 - r / q_r : 1), la = (float)lse_a;
#pragma omp simd
        for (int i = 0; i < V; i++) ds[i] = fast_expf(s[i] * it - la) * outside;
        for (int j = 0; j < k; j++) ds[t->ids[j]] = (float)(exp((double)s[t->ids[j]] * it - lse_a) - w[j]);
        combine(c, s, ds, V, target, lse_s, weight, ds);
    }
    return finish(c, kd, ce, kd, weight, sums);
}
