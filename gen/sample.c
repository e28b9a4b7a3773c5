#include "gen/sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

int sampling_check(const sampling *s, gk_err *err) {
    if (s->greedy) return 0;
    if (!(s->temperature > 0)) return gk_fail(err, GK_EUSAGE, "--temperature must be > 0 (or use --greedy)");
    if (s->top_k < 0) return gk_fail(err, GK_EUSAGE, "--top-k must be >= 0");
    if (!(s->top_p > 0 && s->top_p <= 1)) return gk_fail(err, GK_EUSAGE, "--top-p must lie in (0, 1]");
    if (!(s->min_p >= 0 && s->min_p < 1)) return gk_fail(err, GK_EUSAGE, "--min-p must lie in [0, 1)");
    return 0;
}

static int by_p_desc(const void *a, const void *b) {
    const sample_cand *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : x->id - y->id;
}

// Moves the tokens that min-p and top-p could keep to the front and returns
// their count, so that only those are sorted. The best token has p = 1, so
// min-p keeps p >= min_p. A token in the top-p nucleus has at least (1 - top_p)
// of the mass at or after it, spread over at most V tokens no more likely than
// it: p >= (1 - top_p) sum / V (halved against rounding). With top-k and top-p
// together nothing is filtered here. The best token (id best) is always kept, so
// at least one candidate is left even when the probabilities are not numbers.
static int keep_candidates(sample_cand *work, int V, const sampling *s, double sum, bool top_k, int best) {
    if (top_k && s->top_p < 1) return V; // top-p then sums over top-k's k tokens, which min-p must not thin
    double floor = s->min_p > 0 ? s->min_p : 0;
    if (s->top_p < 1 && !top_k) floor = fmax(floor, 0.5 * (1 - s->top_p) * sum / V);
    if (floor <= 0) return V;
    int kept = 0;
    for (int i = 0; i < V; i++) // work[i] is still token i: swaps only move tokens already passed
        if (work[i].p >= floor || work[i].id == best) {
            sample_cand c = work[kept];
            work[kept++] = work[i];
            work[i] = c;
        }
    return kept;
}

int32_t sample_token(const float *logits, int V, const sampling *s, double u, sample_cand *work) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->greedy) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        work[i] = (sample_cand){exp(((double)logits[i] - logits[best]) / s->temperature), i};
        sum += work[i].p;
    }
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    bool top_k = n < V;
    if (top_k || s->top_p < 1 || s->min_p > 0) { // the filters need the tokens by probability; a plain draw does not
        int kept = keep_candidates(work, V, s, sum, top_k, best);
        qsort(work, (size_t)kept, sizeof *work, by_p_desc);
        if (n > kept) n = kept;
    }
    if (top_k) { // top-p works on what top-k left
        sum = 0;
        for (int i = 0; i < n; i++) sum += work[i].p;
    }
    if (s->top_p < 1) { // top-p: stop once the mass reaches p
        double kept = 0, cut = s->top_p * sum;
        int m = 0;
        while (m < n && (m == 0 || kept < cut)) kept += work[m++].p;
        n = m;
    }
    while (s->min_p > 0 && n > 1 && work[n - 1].p < s->min_p * work[0].p) n--; // min-p, relative to the most likely
    double total = 0;
    for (int i = 0; i < n; i++) total += work[i].p;
    double target = u * total, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += work[i].p;
        if (target < acc) return work[i].id;
    }
    return work[n - 1].id;
}
