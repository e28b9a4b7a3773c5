#include "tests/kd_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_log_softmax(const double *x, int n, double scale, double *out) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, x[i] * scale);
    for (int i = 0; i < n; i++) sum += exp(x[i] * scale - mx);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale - mx - log(sum);
}

static double kl(const double *lp, const double *lq, int n) { // KL(p || q) from log-probs
    double k = 0;
    for (int i = 0; i < n; i++) k += exp(lp[i]) * (lp[i] - lq[i]);
    return k;
}

// The sparse row's teacher weights on its ids (renormalised, as stored, or draws / N) into w [k].
static void sparse_weights(const ref_problem *p, double *w) {
    const sparse_row *r = p->sp;
    double z = 0, n = 0;
    for (int j = 0; j < r->k; j++) z += exp(r->logprobs[j]), n += r->counts ? r->counts[j] : 0;
    for (int j = 0; j < r->k; j++)
        w[j] = p->obj == SPARSE_TOPK_RENORM ? exp(r->logprobs[j]) / z
             : p->obj == SPARSE_TOPK_BUCKET ? exp(r->logprobs[j])
                                            : r->counts[j] / n;
}

static double divergence(const ref_problem *p, const double *ls, double *lt) {
    int V = p->V;
    if (p->t) {
        ref_log_softmax(p->t, V, 1 / p->c->temperature, lt);
        if (p->c->divergence == KD_FORWARD_KL) return kl(lt, ls, V);
        if (p->c->divergence == KD_REVERSE_KL) return kl(ls, lt, V);
        double b = p->c->beta, *lm = malloc((size_t)V * sizeof *lm);
        for (int i = 0; i < V; i++) lm[i] = log(b * exp(lt[i]) + (1 - b) * exp(ls[i]));
        double kd = b * kl(lt, lm, V) + (1 - b) * kl(ls, lm, V);
        free(lm);
        return kd;
    }
    const sparse_row *r = p->sp;
    double kd = 0, qk = 0, w[SPARSE_MAX_K];
    sparse_weights(p, w);
    for (int j = 0; j < r->k; j++) {
        double lp = p->obj == SPARSE_SAMPLED ? r->logprobs[j] : log(w[j]);
        kd += w[j] * (lp - ls[r->ids[j]]);
        qk += exp(ls[r->ids[j]]);
    }
    if (p->obj == SPARSE_TOPK_BUCKET && r->leftover > 0) kd += r->leftover * log(r->leftover / (1 - qk));
    return kd;
}

double ref_kd(const ref_problem *p, const double *s) {
    double *ls = malloc((size_t)p->V * sizeof *ls), *lt = malloc((size_t)p->V * sizeof *lt);
    ref_log_softmax(s, p->V, 1 / p->c->temperature, ls);
    double kd = divergence(p, ls, lt);
    free(ls);
    free(lt);
    return kd;
}

double ref_true_kl(const ref_problem *p, const double *s) {
    double *ls = malloc((size_t)p->V * sizeof *ls), *lt = malloc((size_t)p->V * sizeof *lt);
    ref_log_softmax(s, p->V, 1, ls);
    ref_log_softmax(p->t, p->V, 1, lt);
    double k = kl(lt, ls, p->V);
    free(ls);
    free(lt);
    return k;
}

static double kd_scale(const kd_config *c) { return c->t2_scale ? c->temperature * c->temperature : 1; }

double ref_loss(const ref_problem *p, const double *s) {
    double *ls1 = malloc((size_t)p->V * sizeof *ls1);
    ref_log_softmax(s, p->V, 1, ls1);
    double ce = -ls1[p->target];
    free(ls1);
    return p->c->alpha * kd_scale(p->c) * ref_kd(p, s) + (1 - p->c->alpha) * ce;
}

void ref_grad_differences(const ref_problem *p, const double *s, double h, double *g) {
    double *x = malloc((size_t)p->V * sizeof *x);
    memcpy(x, s, (size_t)p->V * sizeof *x);
    for (int i = 0; i < p->V; i++) {
        x[i] = s[i] + h;
        double up = ref_loss(p, x);
        x[i] = s[i] - h;
        double down = ref_loss(p, x);
        x[i] = s[i];
        g[i] = (up - down) / (2 * h);
    }
    free(x);
}

// dKD/da at a = s / tau into g [V], from the log-probabilities ls, lt at tau.
static void divergence_grad(const ref_problem *p, const double *ls, const double *lt, double kd, double *g) {
    int V = p->V;
    double b = p->c->beta, inner = 0;
    for (int i = 0; i < V; i++) {
        double ps = exp(ls[i]);
        if (!p->t) g[i] = ps;
        else if (p->c->divergence == KD_FORWARD_KL) g[i] = ps - exp(lt[i]);
        else if (p->c->divergence == KD_REVERSE_KL) g[i] = ps * (ls[i] - lt[i] - kd);
        else g[i] = (1 - b) * (ls[i] - log(b * exp(lt[i]) + (1 - b) * ps)), inner += ps * g[i]; // h_i
    }
    if (p->t && p->c->divergence == KD_JSD)
        for (int i = 0; i < V; i++) g[i] = exp(ls[i]) * (g[i] - inner);
    if (p->t) return;
    const sparse_row *r = p->sp; // p_S - w on the ids; the bucket scales p_S outside them by 1 - r / q_r
    double w[SPARSE_MAX_K], qk = 0;
    sparse_weights(p, w);
    for (int j = 0; j < r->k; j++) qk += exp(ls[r->ids[j]]);
    if (p->obj == SPARSE_TOPK_BUCKET && r->leftover > 0)
        for (int i = 0; i < V; i++) g[i] *= 1 - r->leftover / (1 - qk);
    for (int j = 0; j < r->k; j++) g[r->ids[j]] = exp(ls[r->ids[j]]) - w[j];
}

void ref_grad(const ref_problem *p, const double *s, double *g) {
    int V = p->V;
    double *ls = malloc((size_t)V * sizeof *ls), *lt = malloc((size_t)V * sizeof *lt);
    double *ls1 = malloc((size_t)V * sizeof *ls1), tau = p->c->temperature, alpha = p->c->alpha;
    ref_log_softmax(s, V, 1 / tau, ls);
    ref_log_softmax(s, V, 1, ls1);
    double kd = divergence(p, ls, lt);
    divergence_grad(p, ls, lt, kd, g);
    for (int i = 0; i < V; i++) g[i] = alpha * kd_scale(p->c) / tau * g[i] + (1 - alpha) * exp(ls1[i]);
    g[p->target] -= 1 - alpha;
    free(ls);
    free(lt);
    free(ls1);
}
