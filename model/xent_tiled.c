#include "model/xent_tiled.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fastmath.h"

void lse_fold(const float *x, const float *y, float scale, int width, float *max, double *sum, double *wsum) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < width; j++) m = x[j] * scale > m ? x[j] * scale : m;
    if (m > *max) { // a new maximum: rescale what was summed against the old one
        double shrink = exp((double)*max - m);
        *sum *= shrink;
        if (wsum) *wsum *= shrink;
        *max = m;
    }
    float part = 0, wpart = 0, mx = *max;
    if (y) {
#pragma omp simd reduction(+ : part, wpart)
        for (int j = 0; j < width; j++) {
            float u = x[j] * scale, e = fast_expf(u - mx);
            part += e;
            wpart += e * (u - y[j] * scale);
        }
        *wsum += wpart;
    } else {
#pragma omp simd reduction(+ : part)
        for (int j = 0; j < width; j++) part += fast_expf(x[j] * scale - mx);
    }
    *sum += part;
}

int xent_tiled_init(xent_tiled *c, const xent_ctx *x, size_t rows, gk_err *err) {
    *c = (xent_tiled){.x = x, .rows = rows};
    c->max = gk_malloc(rows * sizeof *c->max, err);
    c->sum = gk_malloc(rows * sizeof *c->sum, err);
    c->target_logit = gk_malloc(rows * sizeof *c->target_logit, err);
    c->lse = gk_malloc(rows * sizeof *c->lse, err);
    if (c->max && c->sum && c->target_logit && c->lse) return 0;
    xent_tiled_free(c);
    return -1;
}

void xent_tiled_free(xent_tiled *c) {
    free(c->max);
    free(c->sum);
    free(c->target_logit);
    free(c->lse);
    *c = (xent_tiled){0};
}

static void begin(void *ctx, size_t first, size_t count) {
    xent_tiled *c = ctx;
    GK_ASSERT(first + count <= c->rows);
    for (size_t r = first; r < first + count; r++) c->max[r] = -INFINITY, c->sum[r] = 0, c->target_logit[r] = NAN;
}

static void stats(void *ctx, int pass, const float *s, const float *t, size_t first, size_t count, int v0, int width) {
    xent_tiled *c = ctx;
    (void)pass, (void)t;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        int32_t target = c->x->targets[i];
        if (target < 0) continue;
        const float *row = s + r * (size_t)width;
        lse_fold(row, NULL, 1, width, &c->max[i], &c->sum[i], NULL);
        if (target >= v0 && target < v0 + width) c->target_logit[i] = row[target - v0];
    }
}

static double finish(void *ctx, size_t first, size_t count) {
    xent_tiled *c = ctx;
    double total = 0; // in row order: the same for any thread count
    for (size_t i = first; i < first + count; i++) {
        int32_t target = c->x->targets[i];
        c->lse[i] = c->max[i] + (float)log(c->sum[i]);
        double nll = target >= 0 ? (double)c->lse[i] - c->target_logit[i] : NAN;
        if (c->x->logprobs) c->x->logprobs[i] = (float)-nll;
        if (target >= 0) total += nll * c->x->scale;
    }
    return total;
}

static void grad(void *ctx, const float *s, const float *t, float *ds, size_t first, size_t count, int v0, int width) {
    xent_tiled *c = ctx;
    (void)t;
    float scale = (float)c->x->scale;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < count; r++) {
        int32_t target = c->x->targets[first + r];
        const float *row = s + r * (size_t)width;
        float *g = ds + r * (size_t)width, lse = c->lse[first + r];
        if (target < 0) { // no loss at this position
            memset(g, 0, (size_t)width * sizeof *g);
            continue;
        }
#pragma omp simd
        for (int j = 0; j < width; j++) g[j] = fast_expf(row[j] - lse) * scale;
        if (target >= v0 && target < v0 + width) g[target - v0] -= scale;
    }
}

tiled_loss xent_tiled_loss(xent_tiled *c) {
    return (tiled_loss){.passes = 1, .ctx = c, .begin = begin, .stats = stats, .finish = finish, .grad = grad};
}
