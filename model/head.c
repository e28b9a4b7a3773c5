// The tied output head, chunked over tokens so that [tokens x vocab] logits
// never exist for a whole batch: logits -> final softcap -> loss -> gradients.
#include <stdlib.h>
#include <string.h>

#include "model/real.h"

void FN(model_logits)(const model_config *cfg, const real *embed, const real *x, int n, real *out) {
    FN(matmul_forward)(out, x, embed, n, cfg->d_model, cfg->vocab_size);
    FN(softcap_forward)(out, (size_t)n * cfg->vocab_size, cfg->final_softcap);
}

int FN(model_head)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads, FN(head_fn) fn,
                   void *ctx, int chunk, double *loss, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model, V = (size_t)cfg->vocab_size;
    if (chunk <= 0 || (size_t)chunk > N) chunk = (int)N;
    size_t cells;
    if (!gk_mul_ok((size_t)chunk, V, &cells)) return gk_fail(err, GK_ENOMEM, "head chunk too large");
    // [chunk, V] logits (+ gradients), freed before the backward pass touches its work space:
    // keeping it across calls measured no faster and raised peak memory by its size.
    real *logits = gk_malloc(cells * sizeof *logits * (grads ? 2 : 1), err);
    if (!logits) return -1;
    real *dlogits = grads ? logits + cells : NULL;
    double total = 0;
    for (size_t first = 0; first < N; first += (size_t)chunk) {
        size_t count = N - first < (size_t)chunk ? N - first : (size_t)chunk;
        const real *x = a->xn_final + first * d; // [count, d]
        FN(model_logits)(cfg, w->embed, x, (int)count, logits);
        total += fn(ctx, logits, dlogits, first, count, (int)V);
        if (!grads) continue;
        FN(softcap_backward)(dlogits, logits, count * V, cfg->final_softcap);
        FN(matmul_backward)(a->d_xn_final + first * d, grads->embed, dlogits, x, w->embed, (int)count, (int)d, (int)V,
                            false);
    }
    free(logits);
    *loss = total;
    return 0;
}

// One row: returns -log softmax(z)[target]; dz = softmax(z) - onehot, times scale.
static real xent_row(const real *z, real *dz, int32_t target, int vocab, real scale) {
    real mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < vocab; j++) mx = z[j] > mx ? z[j] : mx;
    real sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < vocab; j++) sum += REAL_EXP(z[j] - mx);
    real lse = mx + REAL_LOG(sum);
    if (dz) {
#pragma omp simd
        for (int j = 0; j < vocab; j++) dz[j] = REAL_EXP(z[j] - lse) * scale;
        dz[target] -= scale;
    }
    return lse - z[target];
}

double FN(xent_head)(void *ctx_, const real *logits, real *dlogits, size_t first, size_t count, int vocab) {
    const xent_ctx *ctx = ctx_;
    double *row_loss = malloc(count * sizeof *row_loss); // summed in order below: same result for any thread count
    bool parallel = row_loss != NULL;
#pragma omp parallel for schedule(static) if (parallel)
    for (size_t r = 0; r < count; r++) {
        int32_t target = ctx->targets[first + r];
        real *dz = dlogits ? dlogits + r * vocab : NULL;
        real nll = 0;
        if (target >= 0) {
            nll = xent_row(logits + r * vocab, dz, target, vocab, (real)ctx->scale);
        } else if (dz) {
            memset(dz, 0, (size_t)vocab * sizeof *dz);
        }
        if (ctx->logprobs) ctx->logprobs[first + r] = target >= 0 ? (float)-nll : NAN;
        if (row_loss) row_loss[r] = target >= 0 ? (double)nll * ctx->scale : 0;
    }
    double total = 0;
    if (row_loss) {
        for (size_t r = 0; r < count; r++) total += row_loss[r];
    } else { // no memory for the row sums: recompute the losses serially
        for (size_t r = 0; r < count; r++) {
            int32_t target = ctx->targets[first + r];
            if (target >= 0) total += (double)xent_row(logits + r * vocab, NULL, target, vocab, 0) * ctx->scale;
        }
    }
    free(row_loss);
    return total;
}
