// Cross-entropy on the CPU: the head's fused chunk (soft-cap, loss and its
// gradient in one pass over each row while it is in cache), and the callback
// form over capped logits (for callers that also keep the logits).
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

// One row of raw products z [V]: caps it in place, returns -log softmax[target]
// and, with dx, writes (softmax - onehot) * scale * dcap/dz rounded to storage.
// e [V]: work space for exp(z - max), so that each value is exponentiated once.
static real_acc xent_fused_row(real_acc *z, real *dx, real_acc *e, int32_t target, int vocab, real_acc cap,
                               real_acc scale) {
    real_acc mx = -INFINITY, sum = 0, inv_cap = cap > 0 ? 1 / cap : 0;
    if (cap > 0) {
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < vocab; j++) {
            z[j] = ACC_TANH(z[j] * inv_cap) * cap;
            mx = z[j] > mx ? z[j] : mx;
        }
    } else {
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < vocab; j++) mx = z[j] > mx ? z[j] : mx;
    }
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < vocab; j++) {
        e[j] = ACC_EXP(z[j] - mx);
        sum += e[j];
    }
    real_acc nll = mx + ACC_LOG(sum) - z[target], inv_sum = 1 / sum;
    if (!dx) return nll;
#pragma omp simd
    for (int j = 0; j < vocab; j++) {
        real_acc t = z[j] * inv_cap, p = e[j] * inv_sum - (j == target ? 1 : 0);
        dx[j] = to_real(p * scale * (1 - t * t)); // dx may be z itself (float32): z[j] is read first
    }
    return nll;
}

double FN(xent_fused)(const xent_ctx *ctx, real_acc *z, real *dx, size_t first, size_t count, int vocab, double cap) {
    double total = 0; // summed in row order (the ordered region): the same for any thread count
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        real_acc *e = malloc((size_t)vocab * sizeof *e); // a row: small beside the chunk's [count, V]
        failed = !e;
#pragma omp for schedule(static, 1) ordered
        for (size_t r = 0; r < count; r++) {
            int32_t target = ctx->targets[first + r];
            real_acc *zr = z + r * vocab;
            real *dxr = dx ? dx + r * vocab : NULL;
            double loss = 0;
            if (target >= 0 && e) {
                real_acc nll = xent_fused_row(zr, dxr, e, target, vocab, (real_acc)cap, (real_acc)ctx->scale);
                loss = (double)nll * ctx->scale;
                if (ctx->logprobs) ctx->logprobs[first + r] = (float)-nll;
            } else {
                for (int j = 0; dxr && j < vocab; j++) dxr[j] = to_real(0);
                if (ctx->logprobs) ctx->logprobs[first + r] = NAN;
            }
#pragma omp ordered
            total += loss;
        }
        free(e);
    }
    return failed ? NAN : total; // NaN: no memory for a row (the step is then skipped as non-finite)
}
