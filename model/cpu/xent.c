// The cross-entropy callback of the chunked head (model/head.c) on the CPU:
// logits and their gradient in real_acc.
#include <stdlib.h>
#include <string.h>

#include "model/real.h"

// One row: returns -log softmax(z)[target]; dz = softmax(z) - onehot, times scale.
static real_acc xent_row(const real_acc *z, real_acc *dz, int32_t target, int vocab, real_acc scale) {
    real_acc mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < vocab; j++) mx = z[j] > mx ? z[j] : mx;
    real_acc sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < vocab; j++) sum += ACC_EXP(z[j] - mx);
    real_acc lse = mx + ACC_LOG(sum);
    if (dz) {
#pragma omp simd
        for (int j = 0; j < vocab; j++) dz[j] = ACC_EXP(z[j] - lse) * scale;
        dz[target] -= scale;
    }
    return lse - z[target];
}

double FN(xent_head)(void *ctx_, const real_acc *logits, real_acc *dlogits, size_t first, size_t count, int vocab) {
    const xent_ctx *ctx = ctx_;
    double *row_loss = malloc(count * sizeof *row_loss); // summed in order below: same result for any thread count
    bool parallel = row_loss != NULL;
#pragma omp parallel for schedule(static) if (parallel)
    for (size_t r = 0; r < count; r++) {
        int32_t target = ctx->targets[first + r];
        real_acc *dz = dlogits ? dlogits + r * vocab : NULL;
        real_acc nll = 0;
        if (target >= 0) {
            nll = xent_row(logits + r * vocab, dz, target, vocab, (real_acc)ctx->scale);
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
