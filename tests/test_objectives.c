// Distillation objectives against a float64 reference written from their
// definitions (distill/objectives.h), with gradients by central differences
// of that reference; and the sampled estimator's gradient, averaged over many
// draws, approaching the full-teacher gradient (top-k does not: it is biased).
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "distill/objectives.h"
#include "tests/check.h"
#include "tests/kd_reference.h"

const char *test_program = "test_objectives";

enum { V = 97 };

// ---------------------------------------------------------------- comparisons

static void random_logits(uint64_t seed, double scale, float *f, double *d) {
    for (int i = 0; i < V; i++) {
        double v = scale * hash_normal(seed, (uint64_t)i);
        v = 30 * tanh(v / 30); // as after Gemma's final soft-cap
        f[i] = (float)v;
        d[i] = f[i];
    }
}

static void compare(test_case *tc, const char *what, const ref_problem *p, const double *s_d, const float *s_f,
                    const float *t_f) {
    float ds[V];
    kd_sums sums = {0};
    double weight = 0.5;
    double loss = p->t ? kd_row_dense(p->c, s_f, t_f, V, p->target, weight, ds, &sums)
                       : kd_row_sparse(p->c, p->obj, s_f, p->sp, V, p->target, weight, ds, &sums);
    double want = ref_loss(p, s_d), g[V], gf[V], closed[V];
    ref_grad_differences(p, s_d, 1e-6, g);
    ref_grad(p, s_d, closed);
    double rel_closed = rel_error_f64(closed, g, V);
    CHECK(tc, rel_closed <= 1e-6, "%s: the reference's closed-form gradient differs from its differences by %.3g", what,
          rel_closed);
    CHECK(tc, fabs(loss / weight - want) <= 1e-5 * fmax(1, fabs(want)), "%s: loss %.9g, float64 reference %.9g", what,
          loss / weight, want);
    for (int i = 0; i < V; i++) gf[i] = ds[i] / weight;
    double rel = rel_error_f64(gf, g, V);
    CHECK(tc, rel <= 1e-4, "%s: gradient differs from float64 central differences by %.3g", what, rel);
    double loss_only = p->t ? kd_row_dense(p->c, s_f, t_f, V, p->target, weight, NULL, NULL)
                            : kd_row_sparse(p->c, p->obj, s_f, p->sp, V, p->target, weight, NULL, NULL);
    CHECK(tc, fabs(loss_only - loss) <= 1e-6 * fabs(loss), "%s: loss without gradient %.9g vs %.9g", what, loss_only, loss);
}

static const kd_config configs[] = {
    {KD_FORWARD_KL, 1.0, 1.0, 0.5, false}, {KD_FORWARD_KL, 0.3, 2.5, 0.5, true}, {KD_REVERSE_KL, 1.0, 1.0, 0.5, false},
    {KD_REVERSE_KL, 0.7, 2.0, 0.5, true},  {KD_JSD, 1.0, 1.0, 0.5, false},       {KD_JSD, 0.6, 1.5, 0.2, false},
};

static void dense_objectives(test_case *tc) {
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        float sf[V], tf[V];
        double sd[V], td[V];
        random_logits(10 + k, 4.0, sf, sd);
        random_logits(50 + k, 6.0, tf, td);
        ref_problem p = {.c = &configs[k], .V = V, .t = td, .target = (int32_t)(13 * k % V)};
        char what[64];
        snprintf(what, sizeof what, "divergence %d alpha %.1f tau %.1f t2 %d", configs[k].divergence, configs[k].alpha,
                 configs[k].temperature, configs[k].t2_scale);
        compare(tc, what, &p, sd, sf, tf);
    }
}

// Top-k rows from a teacher distribution: the k most likely ids, their log-probs, the rest's mass.
static sparse_row top_k(const double *lt, int k, int32_t *ids, float *lps) {
    bool used[V] = {false};
    double covered = 0;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < V; i++)
            if (!used[i] && (best < 0 || lt[i] > lt[best])) best = i;
        used[best] = true;
        ids[j] = best;
        lps[j] = (float)lt[best];
        covered += exp((double)lps[j]);
    }
    return (sparse_row){.k = k, .ids = ids, .logprobs = lps, .leftover = (float)fmax(0, 1 - covered)};
}

static void sparse_objectives(test_case *tc) {
    const sparse_objective objs[] = {SPARSE_TOPK_RENORM, SPARSE_TOPK_BUCKET, SPARSE_SAMPLED};
    for (int o = 0; o < 3; o++) {
        for (int ci = 0; ci < 2; ci++) {
            kd_config c = configs[ci]; // forward KL, tau 1 and 2.5
            float sf[V], tf[V], lps[16], counts[16];
            double sd[V], td[V], lt[V];
            int32_t ids[16];
            random_logits(90 + (uint64_t)o, 4.0, sf, sd);
            random_logits(70 + (uint64_t)o, 6.0, tf, td);
            ref_log_softmax(td, V, 1 / c.temperature, lt);
            sparse_row r = top_k(lt, 12, ids, lps);
            for (int j = 0; j < 12; j++) counts[j] = (float)(1 + (j * 7) % 4); // draws: arbitrary counts
            if (objs[o] == SPARSE_SAMPLED) r.counts = counts;
            ref_problem p = {.c = &c, .V = V, .sp = &r, .obj = objs[o], .target = 5};
            char what[64];
            snprintf(what, sizeof what, "sparse objective %d tau %.1f", o, c.temperature);
            compare(tc, what, &p, sd, sf, NULL);
        }
    }
}

// The sampled estimator is unbiased: its gradient averaged over many draws
// approaches the full-teacher forward-KL gradient; top-k's does not.
static void sampled_estimator_unbiased(test_case *tc) {
    kd_config c = {KD_FORWARD_KL, 1.0, 1.0, 0.5, false};
    float sf[V], tf[V], full[V], ds[V];
    double sd[V], td[V], lt[V], mean[V] = {0};
    random_logits(300, 3.0, sf, sd);
    random_logits(301, 3.0, tf, td);
    ref_log_softmax(td, V, 1, lt);
    kd_row_dense(&c, sf, tf, V, 0, 1.0, full, NULL);
    rng_state rng;
    rng_seed(&rng, 7);
    const int trials = 20000, draws = 12;
    for (int n = 0; n < trials; n++) {
        int32_t ids[12];
        float lps[12], counts[12];
        int k = 0;
        for (int d = 0; d < draws; d++) { // sample an id from p_T, merge repeats into counts
            double u = rng_uniform(&rng), acc = 0;
            int id = V - 1;
            for (int i = 0; i < V; i++)
                if ((acc += exp(lt[i])) > u) {
                    id = i;
                    break;
                }
            int j = 0;
            while (j < k && ids[j] != id) j++;
            if (j == k) ids[k] = id, lps[k] = (float)lt[id], counts[k++] = 0;
            counts[j] += 1;
        }
        sparse_row r = {.k = k, .ids = ids, .logprobs = lps, .counts = counts};
        kd_row_sparse(&c, SPARSE_SAMPLED, sf, &r, V, 0, 1.0, ds, NULL);
        for (int i = 0; i < V; i++) mean[i] += ds[i];
    }
    // The draws are multinomial: the mean gradient's standard error is sqrt(p (1 - p) / (draws * trials)).
    double worst = 0;
    for (int i = 0; i < V; i++) {
        double m = mean[i] / trials, p = exp(lt[i]), se = sqrt(p * (1 - p) / ((double)draws * trials));
        worst = fmax(worst, fabs(m - full[i]) / se);
    }
    CHECK(tc, worst < 5.0, "sampled gradient mean is %.1f standard errors from the full-teacher gradient", worst);
    int32_t ids[12];
    float lps[12];
    sparse_row top = top_k(lt, 12, ids, lps);
    kd_row_sparse(&c, SPARSE_TOPK_RENORM, sf, &top, V, 0, 1.0, ds, NULL);
    double bias = 0;
    for (int i = 0; i < V; i++) bias = fmax(bias, fabs(ds[i] - full[i]));
    CHECK(tc, bias > 1e-3, "top-k renormalised gradient is unexpectedly unbiased (%.3g)", bias);
}

int main(void) {
    test_run("dense_objectives_match_float64", dense_objectives);
    test_run("sparse_objectives_match_float64", sparse_objectives);
    test_run("sampled_estimator_is_unbiased", sampled_estimator_unbiased);
    return test_main_result();
}
