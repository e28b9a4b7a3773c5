// The tied output head, chunked over tokens so that [tokens x vocab] logits
// never exist for a whole batch: logits -> final softcap -> loss -> gradients.
// Logits and the loss's gradient are real_acc; the gradient is rounded to
// storage once, by the soft-cap's backward, before the products.
#include "model/real.h"

void FN(model_logits)(const model_config *cfg, const real *embed, const real *x, int n, real_acc *out) {
    FN(matmul_forward_acc)(out, x, embed, n, cfg->d_model, cfg->vocab_size);
    FN(softcap_forward)(out, (size_t)n * cfg->vocab_size, cfg->final_softcap);
}

int FN(model_head)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads, FN(head_fn) fn,
                   void *ctx, int chunk, double *loss, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model, V = (size_t)cfg->vocab_size;
    if (chunk <= 0 || (size_t)chunk > N) chunk = (int)N;
    size_t cells, bytes;
    // [chunk, V] logits, their gradient (real_acc) and, where storage differs, the gradient in storage.
    size_t per_cell = grads ? 2 * sizeof(real_acc) + (REAL_IS_ACC ? 0 : sizeof(real)) : sizeof(real_acc);
    if (!gk_mul_ok((size_t)chunk, V, &cells) || !gk_mul_ok(cells, per_cell, &bytes))
        return gk_fail(err, GK_ENOMEM, "head chunk too large");
    // Freed before the backward pass touches its work space: keeping it across
    // calls measured no faster and raised peak memory by its size.
    real_acc *logits = FN(buffer_alloc)(bytes, err);
    if (!logits) return -1;
    real_acc *dlogits = grads ? logits + cells : NULL;
    real *dx = grads ? (REAL_IS_ACC ? (real *)dlogits : (real *)(dlogits + cells)) : NULL;
    double total = 0;
    for (size_t first = 0; first < N; first += (size_t)chunk) {
        size_t count = N - first < (size_t)chunk ? N - first : (size_t)chunk;
        const real *x = a->xn_final + first * d; // [count, d]
        FN(model_logits)(cfg, w->embed, x, (int)count, logits);
        total += fn(ctx, logits, dlogits, first, count, (int)V);
        if (!grads) continue;
        FN(softcap_backward)(dx, dlogits, logits, count * V, cfg->final_softcap);
        FN(matmul_backward)(a->d_xn_final + first * d, grads->embed, dx, x, w->embed, (int)count, (int)d, (int)V, false);
    }
    FN(buffer_free)(logits);
    *loss = total;
    return 0;
}
