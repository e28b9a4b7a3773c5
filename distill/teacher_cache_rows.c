// One row of the teacher cache from one row of teacher logits: top-k with the
// leftover mass, or k draws (distill/teacher_cache_build.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fastmath.h"
#include "common/rng.h"
#include "distill/teacher_cache_build.h"

enum { BLOCK = 256 }; // ids per partial sum of the sampling CDF

int teacher_row_work_alloc(teacher_row_work *w, int V, int k, gk_err *err) {
    memset(w, 0, sizeof *w);
    w->expv = gk_malloc((size_t)V * sizeof *w->expv, err);
    w->blocks = w->expv ? gk_malloc(((size_t)V / BLOCK + 1) * sizeof *w->blocks, err) : NULL;
    w->heap = w->blocks ? gk_malloc((size_t)k * sizeof *w->heap, err) : NULL;
    w->targets = w->heap ? gk_malloc((size_t)k * sizeof *w->targets, err) : NULL;
    if (w->targets) return 0;
    teacher_row_work_free(w);
    return -1;
}

void teacher_row_work_free(teacher_row_work *w) {
    free(w->expv);
    free(w->blocks);
    free(w->heap);
    free(w->targets);
    memset(w, 0, sizeof *w);
}

// expv[i] = exp((l_i - m) / tau) (0 below e^-103, where float underflows), the
// block sums, and their total in block order. *max = m. Returns the total, or
// NaN when the row is not finite.
static double exp_row(const float *restrict l, int V, double tau, teacher_row_work *w, float *max) {
    float m = l[0];
#pragma omp simd reduction(max : m)
    for (int i = 0; i < V; i++) m = l[i] > m ? l[i] : m;
    *max = m;
    if (!isfinite(m)) return NAN;
    float it = (float)(1.0 / tau);
    float *restrict e = w->expv;
#pragma omp simd
    for (int i = 0; i < V; i++) {
        float x = (l[i] - m) * it;
        e[i] = x < -103.0f ? 0.0f : fast_expf(x);
    }
    double total = 0;
    for (int b = 0; b * BLOCK < V; b++) {
        int end = (b + 1) * BLOCK < V ? (b + 1) * BLOCK : V;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = b * BLOCK; i < end; i++) s += e[i];
        w->blocks[b] = s;
        total += s;
    }
    return isfinite(total) ? total : NAN; // a NaN logit makes its block sum NaN
}

// The heap keeps the k best seen so far with the worst at the root.
static inline int worse(teacher_cand a, teacher_cand b) { return a.value < b.value || (a.value == b.value && a.id > b.id); }

static void sift_down(teacher_cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(h[l], h[w])) w = l;
        if (r < n && worse(h[r], h[w])) w = r;
        if (w == i) return;
        teacher_cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(teacher_cand *h, int i) {
    while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
        teacher_cand t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int better_first(const void *a, const void *b) {
    teacher_cand x = *(const teacher_cand *)a, y = *(const teacher_cand *)b;
    return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

int teacher_topk_row(const float *l, int V, double tau, int k, teacher_row_work *w, uint32_t *ids, float *logprobs,
                     float *leftover) {
    float m;
    double S = exp_row(l, V, tau, w, &m);
    if (isnan(S) || k > V) return -1;
    teacher_cand *h = w->heap;
    int n = 0;
    for (int i0 = 0; i0 < V; i0 += 16) { // ids ascend, so an equal logit never beats the root
        int i1 = i0 + 16 < V ? i0 + 16 : V;
        if (n == k) { // skip 16 ids at once when none beats the root
            float bm = l[i0];
#pragma omp simd reduction(max : bm)
            for (int i = i0; i < i1; i++) bm = l[i] > bm ? l[i] : bm;
            if (bm <= h[0].value) continue;
        }
        for (int i = i0; i < i1; i++) {
            if (n < k) {
                h[n] = (teacher_cand){l[i], i};
                sift_up(h, n++);
            } else if (l[i] > h[0].value) {
                h[0] = (teacher_cand){l[i], i};
                sift_down(h, k, 0);
            }
        }
    }
    qsort(h, (size_t)k, sizeof *h, better_first);
    float lk = h[k - 1].value;
    int32_t idk = h[k - 1].id;
    // The mass outside the top k, summed term by term: ids below the k-th logit,
    // and ids equal to it after the k-th id.
    const float *e = w->expv;
    double tail = 0;
#pragma omp simd reduction(+ : tail)
    for (int i = 0; i < V; i++) tail += l[i] < lk ? e[i] : 0.0f;
#pragma omp simd reduction(+ : tail)
    for (int i = idk + 1; i < V; i++) tail += l[i] == lk ? e[i] : 0.0f;
    double log_s = log(S);
    for (int j = 0; j < k; j++) {
        ids[j] = (uint32_t)h[j].id;
        logprobs[j] = (float)(((double)h[j].value - m) / tau - log_s);
    }
    *leftover = (float)(tail / S);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void add_draw(uint32_t id, uint32_t *ids, uint16_t *counts, int *n) {
    if (*n > 0 && ids[*n - 1] == id) {
        counts[*n - 1]++;
    } else {
        ids[*n] = id;
        counts[(*n)++] = 1;
    }
}

int teacher_sample_row(const float *l, int V, double tau, int k, uint64_t key, teacher_row_work *w, uint32_t *ids,
                       float *logprobs, uint16_t *counts) {
    float m;
    double S = exp_row(l, V, tau, w, &m);
    if (isnan(S)) return -1;
    double *t = w->targets; // sorted u_j * S
    for (int j = 0; j < k; j++) t[j] = hash_uniform(key, (uint64_t)j) * S;
    qsort(t, (size_t)k, sizeof *t, cmp_double);
    int n = 0, j = 0, last = -1; // last: the largest id with expv > 0 so far
    double c = 0;                // C at the start of the block
    for (int b = 0; b * BLOCK < V && j < k; b++) {
        int end = (b + 1) * BLOCK < V ? (b + 1) * BLOCK : V;
        if (t[j] < c + w->blocks[b]) {
            double ci = c;
            for (int i = b * BLOCK; i < end && j < k; i++) {
                if (w->expv[i] == 0) continue;
                ci += w->expv[i];
                last = i;
                while (j < k && t[j] < ci) add_draw((uint32_t)i, ids, counts, &n), j++;
            }
            // Rounding between the block sum and the running sum: the block's last possible id.
            for (double e = c + w->blocks[b]; j < k && t[j] < e && last >= 0; j++) add_draw((uint32_t)last, ids, counts, &n);
        } else {
            for (int i = end - 1; i >= b * BLOCK; i--)
                if (w->expv[i] > 0) {
                    last = i;
                    break;
                }
        }
        c += w->blocks[b];
    }
    for (; j < k; j++) add_draw((uint32_t)last, ids, counts, &n); // u * S rounded up to S
    double log_s = log(S);
    for (int i = 0; i < n; i++) logprobs[i] = (float)(((double)l[ids[i]] - m) / tau - log_s);
    for (int i = n; i < k; i++) ids[i] = 0, counts[i] = 0, logprobs[i] = 0;
    return n;
}
