// The tied output head, chunked over tokens so that [tokens x vocab] logits
// never exist for a whole batch: logits -> final softcap -> loss -> gradients.
#include "model/real.h"

void FN(model_logits)(const model_config *cfg, const real *embed, const real *x, int n, real_acc *out) {
    FN(matmul_forward_acc)(out, x, embed, n, cfg->d_model, cfg->vocab_size);
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
    real_acc *logits = FN(buffer_alloc)(cells * (sizeof *logits + (grads ? sizeof(real) : 0)), err);
    if (!logits) return -1;
    real *dlogits = grads ? (real *)(logits + cells) : NULL;
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
    FN(buffer_free)(logits);
    *loss = total;
    return 0;
}
