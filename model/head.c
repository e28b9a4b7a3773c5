// The tied output head. Two forms: chunked over tokens, [chunk x vocab]
// logits at a time (model_head: callbacks that need whole rows; and a fused
// cross-entropy), and tiled over the vocabulary as well (model_head_tiled:
// a block of positions x a tile of ids at a time, for any vocabulary size).
// Logits and the loss's gradient are real_acc; the gradient is rounded to
// storage once, before the products.
#include <stdlib.h>

#include "model/real.h"

void FN(model_logits_tile)(const model_config *cfg, const real *embed, const real *x, int n, int v0, int width,
                           real_acc *out) {
    FN(matmul_forward_acc)(out, x, embed + (size_t)v0 * cfg->d_model, n, cfg->d_model, width);
    FN(softcap_forward)(out, (size_t)n * width, cfg->final_softcap);
}

void FN(model_logits)(const model_config *cfg, const real *embed, const real *x, int n, real_acc *out) {
    FN(model_logits_tile)(cfg, embed, x, n, 0, cfg->vocab_size, out);
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
static int grow_kernel_block(FN(acts) *a, size_t bytes, gk_err *err) {
    if (bytes <= a->head_bytes) return 0;
    if (a->head_block) FN(buffer_free)(a->head_block);
    a->head_bytes = (a->head_block = FN(buffer_alloc)(bytes, err)) ? bytes : 0;
    return a->head_block ? 0 : -1;
}
typedef struct {
    real_acc *z, *g;
    real *dx;
} head_buffers;

static int head_buffers_get(FN(acts) *a, size_t cells, bool grads, bool fused, head_buffers *b, gk_err *err) {
    size_t n_acc = grads && !fused ? 2 : 1, bytes;
    size_t per_cell = n_acc * sizeof(real_acc) + (grads && !REAL_IS_ACC ? sizeof(real) : 0);
    if (!gk_mul_ok(cells, per_cell, &bytes)) return gk_fail(err, GK_ENOMEM, "head chunk too large");
    if (grow_kernel_block(a, bytes, err)) return -1;
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

// ---------------------------------------------------------------- the tiled head
//
// Tiles reach the losses as host float32, so there is no float64 tiled head:
// the tests check the tiled head against the chunked one of the float64 twin.
#ifndef GK_REAL_F64

// A tile's buffers: z, g [block, tile] in real_acc and dx in storage where the
// kernels run, and the gradient's float32 accumulators dh [N, d] and dE
// [tile, d]; s, ds host views of z and g (the same memory on the CPU), t the
// teacher's tile (host).
typedef struct {
    real_acc *z, *g, *dh, *dE;
    real *dx;
    float *s, *ds, *t;
} tile_buffers;

static int tile_buffers_get(FN(acts) *a, const model_config *cfg, size_t block, size_t tile, bool grads, bool teacher,
                            tile_buffers *b, gk_err *err) {
    size_t cells = block * tile, N = (size_t)a->B * a->T, d = (size_t)cfg->d_model;
    size_t acc = cells * (grads ? 2 : 1) + (grads ? N * d + tile * d : 0);
    size_t kernel = acc * sizeof(real_acc) + (grads && !REAL_IS_ACC ? cells * sizeof(real) : 0);
    size_t host = cells * sizeof(float) * ((teacher ? 1 : 0) + (GK_ON_DEVICE ? (grads ? 2 : 1) : 0));
    if (grow_kernel_block(a, kernel, err)) return -1;
    if (host > a->head_host_bytes) {
        free(a->head_host);
        a->head_host_bytes = (a->head_host = gk_malloc(host, err)) ? host : 0;
        if (!a->head_host) return -1;
    }
    b->z = a->head_block;
    b->g = grads ? b->z + cells : NULL;
    b->dh = grads ? b->g + cells : NULL;
    b->dE = grads ? b->dh + N * d : NULL;
    b->dx = !grads ? NULL : REAL_IS_ACC ? (real *)b->g : (real *)(b->dE + tile * d);
    float *h = a->head_host;
    b->t = teacher ? h : NULL;
    h += teacher ? cells : 0;
    b->s = GK_ON_DEVICE ? h : (float *)b->z;
    b->ds = !grads ? NULL : GK_ON_DEVICE ? h + cells : (float *)b->g;
    return 0;
}

// The model's (and the teacher's) capped logits of a block for ids v0..v0+width-1, on the host.
static int tile_logits(const model_config *cfg, const FN(weights) *w, const real *x, const tiled_loss *L,
                       const tile_buffers *b, size_t first, size_t count, int v0, int width, gk_err *err) {
    FN(model_logits_tile)(cfg, w->embed, x, (int)count, v0, width, b->z);
    FN(buffer_download)(b->s, b->z, count * (size_t)width * sizeof(float));
    return L->teacher_tile ? L->teacher_tile(L->teacher, first, count, v0, width, b->t, err) : 0;
}

// One (block, tile)'s share of the gradient from its logits in b: dL/dlogits
// from the loss, through the soft-cap, then added to dL/dhidden of the block's
// rows (dh) and to dL/dE of the tile (dE), both float32.
static void tile_gradient(const model_config *cfg, const FN(weights) *w, const real *x, const tiled_loss *L,
                          const tile_buffers *b, real_acc *dh, size_t first, size_t count, int v0, int width) {
    size_t d = (size_t)cfg->d_model, cells = count * (size_t)width;
    L->grad(L->ctx, b->s, b->t, b->ds, first, count, v0, width);
    FN(buffer_upload)(b->g, b->ds, cells * sizeof(float));
    FN(softcap_backward)(b->dx, b->g, b->z, cells, cfg->final_softcap);
    FN(matmul_backward_acc)(dh, b->dE, b->dx, x, w->embed + (size_t)v0 * d, (int)count, (int)d, width, true);
}

// dL/dhidden from its float32 sums, rounded once.
static void hidden_gradient(const model_config *cfg, FN(acts) *a, const tile_buffers *b) {
    size_t n = (size_t)a->B * a->T * (size_t)cfg->d_model;
    FN(buffer_zero)(a->d_xn_final, n * sizeof *a->d_xn_final);
    FN(add_acc)(a->d_xn_final, b->dh, n);
}

// The gradient pass, a tile at a time: each tile's logits are recomputed block
// by block, and its dL/dE summed over every block in float before it is added
// to the gradients once (a bf16 gradient sees one rounding per tile, not one
// per block); dL/dhidden likewise over the tiles.
static int tiled_gradients(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads,
                           const tiled_loss *L, const tile_buffers *b, int block, int tile, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model;
    int V = cfg->vocab_size;
    FN(buffer_zero)(b->dh, N * d * sizeof *b->dh);
    for (int v0 = 0; v0 < V; v0 += tile) {
        int width = V - v0 < tile ? V - v0 : tile;
        FN(buffer_zero)(b->dE, (size_t)width * d * sizeof *b->dE);
        for (size_t first = 0; first < N; first += (size_t)block) {
            size_t count = N - first < (size_t)block ? N - first : (size_t)block;
            const real *x = a->xn_final + first * d; // [count, d]
            if (tile_logits(cfg, w, x, L, b, first, count, v0, width, err)) return -1;
            tile_gradient(cfg, w, x, L, b, b->dh + first * d, first, count, v0, width);
        }
        FN(add_acc)(grads->embed + (size_t)v0 * d, b->dE, (size_t)width * d);
    }
    hidden_gradient(cfg, a, b);
    return 0;
}

// Whole rows (one tile spans the vocabulary): each block's logits serve its
// statistics and, once the block is finished, its gradient; nothing is
// computed twice. dL/dE is summed over the blocks in float32, as above.
static int whole_row_head(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads,
                          const tiled_loss *L, const tile_buffers *b, int block, double *total, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model;
    int V = cfg->vocab_size;
    if (grads) FN(buffer_zero)(b->dh, N * d * sizeof *b->dh);
    if (grads) FN(buffer_zero)(b->dE, (size_t)V * d * sizeof *b->dE);
    for (size_t first = 0; first < N; first += (size_t)block) {
        size_t count = N - first < (size_t)block ? N - first : (size_t)block;
        const real *x = a->xn_final + first * d; // [count, d]
        L->begin(L->ctx, first, count);
        if (tile_logits(cfg, w, x, L, b, first, count, 0, V, err)) return -1;
        for (int pass = 0; pass < L->passes; pass++) L->stats(L->ctx, pass, b->s, b->t, first, count, 0, V);
        *total += L->finish(L->ctx, first, count);
        if (grads) tile_gradient(cfg, w, x, L, b, b->dh + first * d, first, count, 0, V);
    }
    if (!grads) return 0;
    FN(add_acc)(grads->embed, b->dE, (size_t)V * d);
    hidden_gradient(cfg, a, b);
    return 0;
}

int FN(model_head_tiled)(const model_config *cfg, const FN(weights) *w, FN(acts) *a, FN(weights) *grads,
                         const tiled_loss *L, tile_shape shape, double *total, gk_err *err) {
    size_t N = (size_t)a->B * a->T, d = (size_t)cfg->d_model;
    int V = cfg->vocab_size;
    tile_shape t = head_tile_shape(V, shape);
    tile_buffers b;
    if (tile_buffers_get(a, cfg, (size_t)t.block, (size_t)t.tile, grads != NULL, L->teacher_tile != NULL, &b, err))
        return -1;
    *total = 0;
    if (t.tile == V) return whole_row_head(cfg, w, a, grads, L, &b, t.block, total, err);
    for (size_t first = 0; first < N; first += (size_t)t.block) { // the statistics, a block of positions at a time
        size_t count = N - first < (size_t)t.block ? N - first : (size_t)t.block;
        const real *x = a->xn_final + first * d; // [count, d]
        L->begin(L->ctx, first, count);
        for (int pass = 0; pass < L->passes; pass++)
            for (int v0 = 0; v0 < V; v0 += t.tile) {
                int width = V - v0 < t.tile ? V - v0 : t.tile;
                if (tile_logits(cfg, w, x, L, &b, first, count, v0, width, err)) return -1;
                L->stats(L->ctx, pass, b.s, b.t, first, count, v0, width);
            }
        *total += L->finish(L->ctx, first, count);
    }
    return grads ? tiled_gradients(cfg, w, a, grads, L, &b, t.block, t.tile, err) : 0;
}
#endif
