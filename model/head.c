// The tied output head, chunked over tokens so that [tokens x vocab] logits
// never exist for a whole batch: logits -> final softcap -> loss -> gradients.
// Logits and the loss's gradient are real_acc; the gradient is rounded to
// storage once, before the products. Cross-entropy runs fused (xent_fused:
// soft-cap, loss and gradient in one pass over each row); other losses are
// callbacks over the capped logits.
#include "model/real.h"

void FN(model_logits)(const model_config *cfg, const real *embed, const real *x, int n, real_acc *out) {
    FN(matmul_forward_acc)(out, x, embed, n, cfg->d_model, cfg->vocab_size);
    FN(softcap_forward)(out, (size_t)n * cfg->vocab_size, cfg->final_softcap);
}

// What a chunk's loss is: the fused cross-entropy, or a callback.
typedef struct {
    const xent_ctx *xent;
    FN(head_fn) fn;
    void *ctx;
} head_loss_of;

// The chunk buffers, kept in the activations between calls (a fresh
// allocation of this size is fresh pages; faulting them in cost 10% of a bf16
// step): z [chunk, V] logits, g [chunk, V] a callback's gradient in real_acc,
// dx [chunk, V] the gradient in storage (aliasing g, or z for the fused
// cross-entropy, where the types agree).
typedef struct {
    real_acc *z, *g;
    real *dx;
} head_buffers;

static int head_buffers_get(FN(acts) *a, size_t cells, bool grads, bool fused, head_buffers *b, gk_err *err) {
    size_t n_acc = grads && !fused ? 2 : 1, bytes;
    size_t per_cell = n_acc * sizeof(real_acc) + (grads && !REAL_IS_ACC ? sizeof(real) : 0);
    if (!gk_mul_ok(cells, per_cell, &bytes)) return gk_fail(err, GK_ENOMEM, "head chunk too large");
    if (bytes > a->head_bytes) {
        if (a->head_block) FN(buffer_free)(a->head_block);
        a->head_bytes = (a->head_block = FN(buffer_alloc)(bytes, err)) ? bytes : 0;
        if (!a->head_block) return -1;
    }
    b->z = a->head_block;
    b->g = grads && !fused ? b->z + cells : NULL;
    real_acc *last = b->g ? b->g : b->z;
    b->dx = !grads ? NULL : REAL_IS_ACC ? (real *)last : (real *)(b->z + n_acc * cells);
    return 0;
}

static int head_run(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads,
                    const head_loss_of *op, int chunk, double *loss, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model, V = (size_t)cfg->vocab_size;
    if (chunk <= 0 || (size_t)chunk > N) chunk = (int)N;
    head_buffers b = {0};
    size_t cells;
    if (!gk_mul_ok((size_t)chunk, V, &cells)) return gk_fail(err, GK_ENOMEM, "head chunk too large");
    if (head_buffers_get(a, cells, grads != NULL, op->xent != NULL, &b, err)) return -1;
    double total = 0;
    for (size_t first = 0; first < N; first += (size_t)chunk) {
        size_t count = N - first < (size_t)chunk ? N - first : (size_t)chunk;
        const real *x = a->xn_final + first * d; // [count, d]
        if (op->xent) {
            FN(matmul_forward_acc)(b.z, x, w->embed, (int)count, (int)d, (int)V);
            total += FN(xent_fused)(op->xent, b.z, b.dx, first, count, (int)V, cfg->final_softcap);
        } else {
            FN(model_logits)(cfg, w->embed, x, (int)count, b.z);
            total += op->fn(op->ctx, b.z, b.g, first, count, (int)V);
            if (grads) FN(softcap_backward)(b.dx, b.g, b.z, count * V, cfg->final_softcap);
        }
        if (grads)
            FN(matmul_backward)(a->d_xn_final + first * d, grads->embed, b.dx, x, w->embed, (int)count, (int)d, (int)V,
                                false);
    }
    *loss = total;
    return 0;
}

int FN(model_head)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads, FN(head_fn) fn,
                   void *ctx, int chunk, double *loss, gk_err *err) {
    head_loss_of op = {NULL, fn, ctx};
    return head_run(cfg, w, a, grads, &op, chunk, loss, err);
}

int FN(model_head_xent)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads,
                        const xent_ctx *xent, int chunk, double *loss, gk_err *err) {
    head_loss_of op = {xent, NULL, NULL};
    return head_run(cfg, w, a, grads, &op, chunk, loss, err);
}
