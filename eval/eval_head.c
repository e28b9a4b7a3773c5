#include "eval/eval_head.h"

#include <math.h>

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// The teacher's top choice for row r of the chunk: its logits (in process) or the
// first id of a top-k cache row (they are stored most likely first); -1 if unknown.
static int teacher_argmax(const eval_head_ctx *c, size_t first, size_t r, int vocab) {
    kd_head_ctx *k = c->teacher;
    if (k->teacher) return argmax(k->teacher_logits + r * (size_t)vocab, vocab);
    sparse_row row;
    if (k->sparse == SPARSE_SAMPLED || k->rows(k->rows_ctx, first + r, &row) || row.k < 1) return -1; // draws: no argmax
    return row.ids[0];
}

double eval_head(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    eval_head_ctx *c = ctx_;
    (void)dlogits;
    if (c->teacher && isnan(kd_head(c->teacher, logits, NULL, first, count, vocab))) return NAN;
    double nll = 0;
#pragma omp parallel for schedule(static) reduction(+ : nll)
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        int32_t target = c->targets[i];
        if (target < 0) {
            c->logprob[i] = NAN;
            c->greedy[i] = 0;
            if (c->top1) c->top1[i] = TOP1_UNKNOWN;
            continue;
        }
        const float *s = logits + r * (size_t)vocab;
        int best = argmax(s, vocab);
        double sum = 0;
        for (int v = 0; v < vocab; v++) sum += exp((double)s[v] - s[best]);
        c->logprob[i] = (double)s[target] - s[best] - log(sum);
        c->greedy[i] = best == target;
        nll -= c->logprob[i];
        if (c->teacher) {
            int t = teacher_argmax(c, first, r, vocab);
            c->top1[i] = t < 0 ? TOP1_UNKNOWN : t == best ? TOP1_AGREE : TOP1_DISAGREE;
        }
    }
    return nll;
}
