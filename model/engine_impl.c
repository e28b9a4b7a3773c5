// One backend of the model handle (model/engine.h), written once over the
// instantiation's layer sequence and kernels: engine_ops_f32 and
// engine_ops_bf16 on the CPU, engine_ops_cuda on the GPU. On the CPU the
// kernels work on host memory, so the master weights, optimizer moments and
// EMA are the caller's own buffers; on the GPU they are device copies.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/collectives.h"
#include "common/rng.h"
#include "common/timer.h"
#include "model/real.h"
#include "model/engine_ops.h"
#include "model/xent_tiled.h"
#ifdef GK_REAL_CUDA
#include "model/cuda/cuda.h"
#endif

typedef struct {
    model_state *m;
    const model_config *cfg;
    size_t n_floats;
    float *master;  // [hi - lo] master weights of flat indices lo.. where the kernels run (m->params + lo on the CPU)
    real *weights;  // [n_floats] in storage precision (master itself on cpu fp32)
    real *grads;    // [n_floats] when training
    FN(weights) w, g;
    FN(acts) acts;  // [B, T] when B*T > 0
    bool has_acts, has_cache;
    FN(kv_cache) cache;
    optimizer *host_opt; // the caller's state (host)
    optimizer opt;       // the same where the kernels run (device moments on the GPU)
    float *host_ema, *ema;
    double ema_decay;
    int32_t *targets;    // GPU: device copy of the cross-entropy targets [B*T]
    const collectives *ranks; // data parallel: gradients summed over these ranks (NULL: one process)
    bool zero;                // ZeRO-1: this rank keeps and updates only [lo, hi) of the flat buffer
    size_t lo, hi;            // the block it updates: [0, n_floats) without ZeRO-1
} FN(engine_impl);

typedef FN(engine_impl) impl_t;

// Float buffers the kernels use in place of host ones: the host buffer itself
// on the CPU, a device copy on the GPU (uploaded when `upload`).
static float *kernel_floats(float *host, size_t n, bool upload, gk_err *err) {
    if (!GK_ON_DEVICE) return host;
    float *d = FN(buffer_alloc)(n * sizeof *d, err);
    if (d && upload) FN(buffer_upload)(d, host, n * sizeof *d);
    return d;
}

static void kernel_floats_free(float *kernel, const float *host) {
    if (kernel && kernel != host) FN(buffer_free)(kernel);
}

static void point(impl_t *s, real *weights) { FN(weights_point)(&s->m->layout, weights, &s->w); }

static void close_impl(void *p) {
    impl_t *s = p;
    if (!s) return;
    if (s->has_acts) FN(acts_free)(&s->acts);
    if (s->has_cache) FN(kv_cache_free)(&s->cache);
    if ((void *)s->weights != (void *)s->m->params) FN(buffer_free)(s->weights); // cpu fp32 computes on m->params
    kernel_floats_free(s->master, s->m->params + s->lo);
    if (s->grads) FN(buffer_free)(s->grads);
    kernel_floats_free(s->opt.m, s->host_opt ? s->host_opt->m : NULL);
    kernel_floats_free(s->opt.v, s->host_opt ? s->host_opt->v : NULL);
    kernel_floats_free(s->ema, s->host_ema);
    if (s->targets) FN(buffer_free)(s->targets);
    free(s);
}

static void *open_impl(model_state *m, int B, int T, bool training, gk_err *err) {
    impl_t *s = gk_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->m = m;
    s->cfg = &m->cfg;
    s->n_floats = m->layout.n_floats;
    s->hi = s->n_floats;
    size_t bytes = s->n_floats * sizeof(real);
    bool ok = (s->master = kernel_floats(m->params, s->n_floats, true, err)) != NULL;
    if (ok && !GK_ON_DEVICE && REAL_IS_ACC) s->weights = (real *)s->master; // cpu fp32 computes on the master weights
    else if (ok && !(s->weights = FN(buffer_alloc)(bytes, err))) ok = false;
    if (ok) FN(round_weights)(s->weights, s->master, s->n_floats);
    if (ok && !training && (void *)s->weights != (void *)s->master) { // it computes on its own copy from now on
        kernel_floats_free(s->master, m->params);
        s->master = NULL;
    }
    if (ok && training && (s->grads = FN(buffer_alloc)(bytes, err))) FN(buffer_zero)(s->grads, bytes);
    if (ok && training && !s->grads) ok = false;
    if (ok && B > 0 && T > 0) ok = (s->has_acts = FN(acts_init)(&s->acts, s->cfg, B, T, training, err) == 0);
    if (ok && GK_ON_DEVICE && B > 0 && T > 0)
        ok = (s->targets = FN(buffer_alloc)((size_t)B * T * sizeof *s->targets, err)) != NULL;
    if (!ok) {
        close_impl(s);
        return NULL;
    }
    point(s, s->weights);
    if (s->grads) FN(weights_point)(&m->layout, s->grads, &s->g);
    return s;
}

static int need_acts(const impl_t *s, gk_err *err) {
    return s->has_acts ? 0 : gk_fail(err, GK_EINTERNAL, "the model was opened for decoding only (no batch shape)");
}

static int forward_impl(void *p, const token_batch *batch, int window, gk_err *err) {
    impl_t *s = p;
    if (need_acts(s, err)) return -1;
    return FN(model_forward)(s->cfg, &s->w, &s->acts, batch, window, err);
}

#ifdef GK_REAL_CUDA
// A host callback over device logits: each chunk's logits come to the host,
// and its gradient goes back, as float32.
typedef struct {
    const head_loss *h;
    float *logits, *dlogits; // host [chunk, V]
} host_head;

static double host_head_fn(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    host_head *c = ctx;
    size_t bytes = count * (size_t)vocab * sizeof(float);
    FN(buffer_download)(c->logits, logits, bytes);
    double loss = c->h->fn(c->h->ctx, c->logits, dlogits ? c->dlogits : NULL, first, count, vocab);
    if (dlogits) FN(buffer_upload)(dlogits, c->dlogits, bytes);
    return loss;
}

static int callback_head(impl_t *s, const head_loss *h, double *loss, gk_err *err) {
    size_t N = (size_t)s->acts.B * s->acts.T, chunk = h->chunk > 0 && (size_t)h->chunk < N ? (size_t)h->chunk : N;
    size_t cells = chunk * (size_t)s->cfg->vocab_size;
    host_head c = {h, gk_malloc(cells * sizeof(float), err), h->grads ? gk_malloc(cells * sizeof(float), err) : NULL};
    int rc = c.logits && (c.dlogits || !h->grads) ? FN(model_head)(s->cfg, &s->w, &s->acts, h->grads ? &s->g : NULL,
                                                                   host_head_fn, &c, (int)chunk, loss, err)
                                                  : -1;
    free(c.logits);
    free(c.dlogits);
    return rc;
}

// Cross-entropy on the GPU: the targets go to the device; the fused kernel runs there.
static int xent_head(impl_t *s, const head_loss *h, double *loss, gk_err *err) {
    size_t N = (size_t)s->acts.B * s->acts.T;
    FN(buffer_upload)(s->targets, h->xent->targets, N * sizeof *s->targets);
    xent_ctx x = *h->xent;
    x.targets = s->targets;
    return FN(model_head_xent)(s->cfg, &s->w, &s->acts, h->grads ? &s->g : NULL, &x, h->chunk, loss, err);
}
#else
// On the CPU the logits are host float32 already: the callback runs on them directly.
static int callback_head(impl_t *s, const head_loss *h, double *loss, gk_err *err) {
    return FN(model_head)(s->cfg, &s->w, &s->acts, h->grads ? &s->g : NULL, h->fn, h->ctx, h->chunk, loss, err);
}

// Cross-entropy on the CPU: tiled over the vocabulary (its logits stay in cache).
static int xent_head(impl_t *s, const head_loss *h, double *loss, gk_err *err) {
    xent_tiled c;
    if (xent_tiled_init(&c, h->xent, (size_t)s->acts.B * s->acts.T, err)) return -1;
    tiled_loss L = xent_tiled_loss(&c);
    int rc = FN(model_head_tiled)(s->cfg, &s->w, &s->acts, h->grads ? &s->g : NULL, &L, h->tiles, loss, err);
    xent_tiled_free(&c);
    return rc;
}
#endif

static int head_impl(void *p, const head_loss *h, double *loss, gk_err *err) {
    impl_t *s = p;
    if (need_acts(s, err)) return -1;
    if (h->kind == HEAD_XENT) return xent_head(s, h, loss, err);
    if (h->kind == HEAD_CALLBACK) return callback_head(s, h, loss, err);
    return FN(model_head_tiled)(s->cfg, &s->w, &s->acts, h->grads ? &s->g : NULL, h->tiled, h->tiles, loss, err);
}

static int backward_impl(void *p, gk_err *err) {
    impl_t *s = p;
    if (!s->grads || s->acts.n_slots != s->cfg->n_layers)
        return gk_fail(err, GK_EINTERNAL, "backward on a model opened without training buffers");
    FN(model_backward)(s->cfg, &s->w, &s->g, &s->acts);
    return 0;
}

// Logits [n, width] of the hidden states x [n, d] (where the kernels run) for ids v0.., into host out.
static int logits_of(impl_t *s, const real *x, size_t n, int v0, int width, float *out, gk_err *err) {
    size_t cells = n * (size_t)width;
    float *logits = kernel_floats(out, cells, false, err);
    if (!logits) return -1;
    FN(model_logits_tile)(s->cfg, s->w.embed, x, (int)n, v0, width, logits);
    FN(buffer_download)(out, logits, cells * sizeof *out);
    kernel_floats_free(logits, out);
    return 0;
}

static int logits_impl(void *p, size_t first, size_t count, int v0, int width, float *out, gk_err *err) {
    impl_t *s = p;
    if (need_acts(s, err)) return -1;
    int V = s->cfg->vocab_size;
    if (width > V - v0) width = V - v0;
    if (first + count > (size_t)s->acts.B * s->acts.T || v0 < 0 || width <= 0)
        return gk_fail(err, GK_EINTERNAL, "logits of positions %zu..%zu, ids %d.., of a batch of %d", first,
                       first + count, v0, s->acts.B * s->acts.T);
    return logits_of(s, s->acts.xn_final + first * (size_t)s->cfg->d_model, count, v0, width, out, err);
}

static int decode_init_impl(void *p, int B, int max_len, gk_err *err) {
    impl_t *s = p;
    if (s->has_cache) FN(kv_cache_free)(&s->cache);
    s->has_cache = FN(kv_cache_init)(&s->cache, s->cfg, B, max_len, err) == 0;
    if (!s->has_cache) FN(kv_cache_free)(&s->cache);
    return s->has_cache ? 0 : -1;
}

static void decode_reset_row_impl(void *p, int row) {
    impl_t *s = p;
    FN(kv_cache_reset_row)(&s->cache, s->cfg, row);
}

static int decode_step_impl(void *p, const int32_t *tokens, const int32_t *pos, gk_err *err) {
    impl_t *s = p;
    if (!s->has_cache) return gk_fail(err, GK_EINTERNAL, "decode step before engine_decode_init");
    return FN(model_decode_step)(s->cfg, &s->w, &s->cache, tokens, pos, err);
}

static int decode_prefill_impl(void *p, int row, const int32_t *tokens, int n, gk_err *err) {
    impl_t *s = p;
    if (!s->has_cache) return gk_fail(err, GK_EINTERNAL, "prefill before engine_decode_init");
    return FN(model_prefill)(s->cfg, &s->w, &s->cache, row, tokens, n, err);
}

static int decode_logits_impl(void *p, const int *rows, int n, float *out, gk_err *err) {
    impl_t *s = p;
    if (n <= 0) return 0;
#ifdef GK_REAL_CUDA
    // Every row's logits on the device, then the wanted rows to the host.
    size_t V = (size_t)s->cfg->vocab_size;
    int B = s->cache.B;
    float *all = gk_malloc((size_t)B * V * sizeof *all, err);
    int rc = all ? logits_of(s, s->cache.acts.xn_final, (size_t)B, 0, (int)V, all, err) : -1;
    for (int k = 0; rc == 0 && k < n; k++) memcpy(out + k * V, all + (size_t)rows[k] * V, V * sizeof *out);
    free(all);
    return rc;
#else
    // Only the rows that choose a token (host memory: gathered in place).
    size_t d = (size_t)s->cfg->d_model;
    real *x = gk_malloc((size_t)n * d * sizeof *x, err);
    if (!x) return -1;
    for (int k = 0; k < n; k++) memcpy(x + k * d, s->cache.acts.xn_final + (size_t)rows[k] * d, d * sizeof *x);
    int rc = logits_of(s, x, (size_t)n, 0, s->cfg->vocab_size, out, err);
    free(x);
    return rc;
#endif
}

static coll_type weight_type(void) { return sizeof(real) == 2 ? COLL_BF16 : COLL_F32; }

// The storage weights from the master weights: this rank's block, and under ZeRO-1 every other
// rank's block from its owner (cpu fp32 computes on the master weights: nothing to round).
static int round_master(impl_t *s, gk_err *err) {
    if ((void *)s->weights == (void *)s->m->params) return 0;
    FN(round_weights)(s->weights + s->lo, s->master, s->hi - s->lo);
    return s->zero ? s->ranks->all_gather(s->ranks, s->weights, s->n_floats, weight_type(), err) : 0;
}

static int load_weights_impl(void *p, const float *params, gk_err *err) {
    impl_t *s = p;
    if (!params) { // back to the master weights
        if (!s->master) return gk_fail(err, GK_EINTERNAL, "a model opened without training keeps no master weights");
        point(s, s->weights);
        return round_master(s, err);
    }
#if defined(GK_REAL_CUDA)
    return gk_cuda_upload_bf16(s->weights, params, s->n_floats, err);
#elif REAL_IS_ACC
    (void)err;
    point(s, (real *)params); // float32: computed on in place
    return 0;
#else
    (void)err;
    FN(round_weights)(s->weights, params, s->n_floats);
    return 0;
#endif
}

static int attach_optimizer_impl(void *p, optimizer *o, float *ema, double ema_decay, gk_err *err) {
    impl_t *s = p;
    if (!s->grads) return gk_fail(err, GK_EINTERNAL, "an optimizer on a model opened without training buffers");
    s->host_opt = o;
    s->opt = *o;
    s->host_ema = ema;
    s->ema_decay = ema_decay;
    bool adamw = o->kind == OPTIM_ADAMW;
    if (o->lo != s->lo || o->n != s->hi - s->lo)
        return gk_fail(err, GK_EINTERNAL, "optimizer state of flat indices %zu.. (%zu) for an engine updating %zu.. (%zu)",
                       o->lo, o->n, s->lo, s->hi - s->lo);
    if (adamw && (!(s->opt.m = kernel_floats(o->m, o->n, true, err)) || !(s->opt.v = kernel_floats(o->v, o->n, true, err))))
        return -1;
    if (ema && !(s->ema = kernel_floats(ema, s->hi - s->lo, true, err))) return -1; // ema [hi - lo] too
    return 0;
}

static void zero_grads_impl(void *p) {
    impl_t *s = p;
    FN(buffer_zero)(s->grads, s->n_floats * sizeof *s->grads);
}

static int reduce_grads_impl(void *p, gk_err *err) {
    impl_t *s = p;
    if (!s->ranks) return 0;
    coll_type t = weight_type(); // gradients are in storage precision
    return s->zero ? s->ranks->reduce_scatter(s->ranks, s->grads, s->n_floats, t, err)
                   : s->ranks->all_reduce(s->ranks, s->grads, s->n_floats, t, err);
}

// Blocks start on the norm's chunks: a block's chunk sums are the whole buffer's.
_Static_assert(COLLECTIVES_ALIGN % GRAD_NORM_CHUNK == 0, "ZeRO-1 blocks must start on gradient-norm chunks");

// The gradients' L2 norm. Under ZeRO-1 only this rank's block is reduced: each rank sums the
// squares of its block's chunks, the chunk sums meet in one sum over ranks (each is nonzero on
// one rank: exact) and are added in order, which is grad_norm of the whole buffer, bit for bit.
static double grad_norm_impl(void *p) {
    impl_t *s = p;
    return s->zero ? FN(grad_norm_range)(&s->m->layout, s->grads, s->lo, s->hi, s->ranks->sum_host)
                   : FN(grad_norm)(&s->m->layout, s->grads);
}

static int optimizer_step_impl(void *p, double lr, float grad_scale, gk_err *err) {
    impl_t *s = p;
    FN(optimizer_step_range)(&s->opt, s->master, s->weights, s->grads, lr, grad_scale);
    s->host_opt->steps = s->opt.steps;
    if (s->ema) FN(ema_update)(s->ema, s->master, s->ema_decay, s->hi - s->lo);
    if (!s->zero) return 0;
    return s->ranks->all_gather(s->ranks, s->weights, s->n_floats, weight_type(), err); // every block from its owner
}

// Data parallelism over c (before the optimizer is attached); ZeRO-1 keeps only this rank's block
// of the master weights where the kernels run.
static int attach_ranks_impl(void *p, const collectives *c, bool zero, gk_err *err) {
    impl_t *s = p;
    if (!s->grads || s->host_opt) return gk_fail(err, GK_EINTERNAL, "ranks attached to a model without training "
                                                 "buffers or after its optimizer");
    s->ranks = c;
    s->zero = zero;
    if (!zero) return 0;
    size_t lo, hi;
    collectives_range(s->n_floats, c->size, c->rank, &lo, &hi);
    float *block = kernel_floats(s->m->params + lo, hi - lo, true, err);
    if (!block) return -1;
    kernel_floats_free(s->master, s->m->params);
    s->master = block;
    s->lo = lo;
    s->hi = hi;
    return 0;
}

// Each pair (host, kernel copy) of the training state, copied one way: this rank's block of
// the master weights and EMA, and its optimizer moments.
static void sync_state(impl_t *s, bool to_host) {
    size_t block = (s->hi - s->lo) * sizeof(float), moments = s->opt.n * sizeof(float);
    float *host[4] = {s->m->params + s->lo, s->host_opt ? s->host_opt->m : NULL, s->host_opt ? s->host_opt->v : NULL,
                      s->host_ema};
    float *kernel[4] = {s->master, s->opt.m, s->opt.v, s->ema};
    size_t bytes[4] = {block, moments, moments, block};
    for (int i = 0; i < 4; i++) {
        if (!host[i] || !kernel[i]) continue;
        if (to_host) FN(buffer_download)(host[i], kernel[i], bytes[i]);
        else FN(buffer_upload)(kernel[i], host[i], bytes[i]);
    }
}

static int sync_host_impl(void *p, gk_err *err) {
    (void)err;
    sync_state(p, true);
    return 0;
}

static int sync_device_impl(void *p, gk_err *err) {
    impl_t *s = p;
    sync_state(s, false);
    if (s->host_opt) s->opt.steps = s->host_opt->steps;
    return load_weights_impl(s, NULL, err);
}

static int grads_impl(void *p, float *out, gk_err *err) {
    impl_t *s = p;
    if (!s->grads) return gk_fail(err, GK_EINTERNAL, "gradients of a model opened without training buffers");
#if defined(GK_REAL_CUDA)
    return gk_cuda_download_bf16(out, s->grads, s->n_floats, err);
#else
    (void)err;
    for (size_t i = 0; i < s->n_floats; i++) out[i] = (float)to_acc(s->grads[i]);
    return 0;
#endif
}

// n random values (hash_normal * scale) in storage precision where the kernels run.
static real *random_buffer(size_t n, double scale, uint64_t seed, gk_err *err) {
    float *host = gk_malloc(n * sizeof *host, err);
    real *buf = host ? FN(buffer_alloc)(n * sizeof *buf, err) : NULL;
    float *k = buf ? kernel_floats(host, n, false, err) : NULL;
    if (k) {
        for (size_t i = 0; i < n; i++) host[i] = (float)(scale * hash_normal(seed, i));
        FN(buffer_upload)(k, host, n * sizeof *host);
        FN(round_weights)(buf, k, n);
    }
    kernel_floats_free(k, host);
    free(host);
    if (!k && buf) FN(buffer_free)(buf);
    return k ? buf : NULL;
}

static int time_linear_impl(int rows, int in, int out, int reps, double seconds[3], gk_err *err) {
    size_t nx = (size_t)rows * in, nw = (size_t)out * in, ny = (size_t)rows * out;
    real *x = random_buffer(nx, 1, 1, err), *w = x ? random_buffer(nw, 0.05, 2, err) : NULL;
    real *y = w ? random_buffer(ny, 1, 3, err) : NULL, *dx = y ? random_buffer(nx, 1, 4, err) : NULL;
    real *dw = dx ? random_buffer(nw, 1, 5, err) : NULL;
    int rc = dw ? 0 : -1;
    for (int p = 0; rc == 0 && p < 3; p++) {
        seconds[p] = 1e30;
        for (int r = 0; r <= reps; r++) { // the first run warms up (and picks a kernel)
            FN(buffer_sync)();
            double t0 = now_seconds();
            if (p == 0) FN(matmul_forward)(y, x, w, rows, in, out);
            else if (p == 1) FN(matmul_backward)(dx, NULL, y, x, w, rows, in, out, false);
            else FN(matmul_backward)(NULL, dw, y, x, w, rows, in, out, false);
            FN(buffer_sync)();
            double t = now_seconds() - t0;
            if (r > 0 && t < seconds[p]) seconds[p] = t;
        }
    }
    real *all[] = {x, w, y, dx, dw};
    for (int i = 0; i < 5; i++)
        if (all[i]) FN(buffer_free)(all[i]);
    return rc;
}

const engine_ops FN(engine_ops) = {
    .open = open_impl,
    .close = close_impl,
    .forward = forward_impl,
    .head = head_impl,
    .backward = backward_impl,
    .logits = logits_impl,
    .decode_init = decode_init_impl,
    .decode_reset_row = decode_reset_row_impl,
    .decode_step = decode_step_impl,
    .decode_prefill = decode_prefill_impl,
    .decode_logits = decode_logits_impl,
    .load_weights = load_weights_impl,
    .attach_optimizer = attach_optimizer_impl,
    .zero_grads = zero_grads_impl,
    .grad_norm = grad_norm_impl,
    .reduce_grads = reduce_grads_impl,
    .attach_ranks = attach_ranks_impl,
    .optimizer_step = optimizer_step_impl,
    .sync_host = sync_host_impl,
    .sync_device = sync_device_impl,
    .grads = grads_impl,
    .wait = FN(buffer_sync),
    .time_linear = time_linear_impl,
    .peak_bytes = FN(buffer_peak_bytes),
};
