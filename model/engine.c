// The model handle's dispatch: a backend name to its table of operations
// (model/engine_ops.h), and what runs its products on this machine.
#include "model/engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dist.h"
#include "model/cpu/products.h"
#include "model/engine_ops.h"
#ifdef GK_WITH_CUDA
#include "model/cuda/cuda.h"
#endif

struct engine {
    engine_backend backend;
    bool training;
    const engine_ops *ops;
    void *impl;
};

const char *engine_device_name(engine_device d) { return d == DEVICE_CUDA ? "cuda" : "cpu"; }
const char *engine_precision_name(engine_precision p) { return p == PRECISION_BF16 ? "bf16" : "fp32"; }

int engine_backend_names(const char *device, const char *precision, const char *what, engine_backend *b,
                         gk_err *err) {
    *b = (engine_backend){DEVICE_CPU, PRECISION_FP32};
    if (device && *device && strcmp(device, "cpu")) {
        if (strcmp(device, "cuda"))
            return gk_fail(err, GK_EUSAGE, "%s: device '%s' is not one of %s", what, device, ENGINE_DEVICES);
        b->device = DEVICE_CUDA;
    }
    if (precision && *precision && strcmp(precision, "fp32")) {
        if (strcmp(precision, "bf16"))
            return gk_fail(err, GK_EUSAGE, "%s: precision '%s' is not one of %s", what, precision, ENGINE_PRECISIONS);
        b->precision = PRECISION_BF16;
    }
    if (b->device == DEVICE_CUDA && b->precision != PRECISION_BF16)
        return gk_fail(err, GK_EUSAGE, "%s: the cuda device runs bf16 only (give precision bf16)", what);
    return 0;
}

int engine_backend_parse(const char *device, const char *precision, const char *what, engine_backend *b,
                         gk_err *err) {
    if (engine_backend_names(device, precision, what, b, err)) return -1;
#ifndef GK_WITH_CUDA
    if (b->device == DEVICE_CUDA)
        return gk_fail(err, GK_EUSAGE, "%s: this gemmakd was built without CUDA; build it with make GPU=1", what);
#endif
    return 0;
}

static const engine_ops *ops_for(engine_backend b) {
#ifdef GK_WITH_CUDA
    if (b.device == DEVICE_CUDA) return &engine_ops_cuda;
#endif
    return b.precision == PRECISION_BF16 ? &engine_ops_bf16 : &engine_ops_f32;
}

int engine_backend_describe(engine_backend b, char *text, size_t n, bool *generic, gk_err *err) {
    *generic = false;
    const char *name = engine_precision_name(b.precision);
    if (b.device == DEVICE_CUDA) {
#ifdef GK_WITH_CUDA
        char device[256];
        if (gk_cuda_probe(device, sizeof device)) return gk_fail(err, GK_EINPUT, "cuda: %s", device);
        snprintf(text, n, "cuda %s: %s, cuBLASLt (bf16 products, float32 accumulation)", name, device);
        return 0;
#else
        return gk_fail(err, GK_EUSAGE, "cuda: this gemmakd was built without CUDA");
#endif
    }
    char products[256];
    bool widened;
    product_type in = b.precision == PRECISION_BF16 ? PRODUCT_BF16 : PRODUCT_F32;
    cpu_products_describe(in, in, products, sizeof products, generic, &widened);
    snprintf(text, n, "cpu %s: %s", name, products);
    *generic = *generic || widened; // bf16 at float32's speed at best: worth a warning too
    return 0;
}

static void warn_generic(engine_backend b, const char *role) {
    if (b.precision == PRECISION_BF16)
        fprintf(stderr, "gemmakd: warning: %s: this CPU has no bf16 matrix kernel (no AVX512-BF16 or AMX): bf16 runs "
                        "no faster than fp32 here; --precision fp32 is the faster choice\n", role);
    else
        fprintf(stderr, "gemmakd: warning: %s: the matrix products run a generic (unoptimised) kernel on this CPU; "
                        "expect them to be slow\n", role);
}

int engine_backend_report(engine_backend b, const char *role, gk_err *err) {
    char text[512];
    bool generic;
    if (engine_backend_describe(b, text, sizeof text, &generic, err)) return -1;
    fprintf(stderr, "%s: %s\n", role, text);
    if (generic) warn_generic(b, role);
    return 0;
}

int engine_backend_warn(engine_backend b, const char *role, gk_err *err) {
    char text[512];
    bool generic;
    if (engine_backend_describe(b, text, sizeof text, &generic, err)) return -1;
    if (generic) warn_generic(b, role);
    return 0;
}

int engine_open(engine **e, model_state *m, engine_backend b, int B, int T, bool training, gk_err *err) {
    *e = NULL;
    if ((long long)B * T > ENGINE_MAX_TOKENS)
        return gk_fail(err, GK_EINPUT, "a batch of %d x %d tokens exceeds the %lld one pass holds", B, T, ENGINE_MAX_TOKENS);
#ifdef GK_WITH_CUDA
    char device[256];
    if (b.device == DEVICE_CUDA && gk_cuda_probe(device, sizeof device))
        return gk_fail(err, GK_EINPUT, "--device cuda: %s", device);
#endif
    engine *x = gk_calloc(1, sizeof *x, err);
    if (!x) return -1;
    x->backend = b;
    x->training = training;
    x->ops = ops_for(b);
    if (!(x->impl = x->ops->open(m, B, T, training, err))) {
        free(x);
        return -1;
    }
    *e = x;
    return 0;
}

void engine_close(engine *e) {
    if (!e) return;
    e->ops->close(e->impl);
    free(e);
}

engine_backend engine_backend_of(const engine *e) { return e->backend; }

int engine_forward(engine *e, const token_batch *batch, int window, gk_err *err) {
    return e->ops->forward(e->impl, batch, window, err);
}

double xent_host(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    return xent_head_f32(ctx, logits, dlogits, first, count, vocab); // the float32 CPU kernel: host memory
}

bool engine_holds_params(const engine *e) {
    return e->training || (e->backend.device == DEVICE_CPU && e->backend.precision == PRECISION_FP32);
}

int engine_head(engine *e, const head_loss *h, double *loss, gk_err *err) { return e->ops->head(e->impl, h, loss, err); }
int engine_backward(engine *e, gk_err *err) { return e->ops->backward(e->impl, err); }

int engine_logits(engine *e, size_t first, size_t count, float *out, gk_err *err) {
    return e->ops->logits(e->impl, first, count, 0, INT32_MAX, out, err);
}

int engine_teacher_tile(void *e_, size_t first, size_t count, int v0, int width, float *out, gk_err *err) {
    engine *e = e_;
    return e->ops->logits(e->impl, first, count, v0, width, out, err);
}

int engine_decode_init(engine *e, int B, int max_len, gk_err *err) { return e->ops->decode_init(e->impl, B, max_len, err); }
void engine_decode_reset_row(engine *e, int row) { e->ops->decode_reset_row(e->impl, row); }

int engine_decode_step(engine *e, const int32_t *tokens, const int32_t *pos, gk_err *err) {
    return e->ops->decode_step(e->impl, tokens, pos, err);
}

int engine_decode_prefill(engine *e, int row, const int32_t *tokens, int n, gk_err *err) {
    return e->ops->decode_prefill(e->impl, row, tokens, n, err);
}

int engine_decode_logits(engine *e, const int *rows, int n, float *out, gk_err *err) {
    return e->ops->decode_logits(e->impl, rows, n, out, err);
}

int engine_load_weights(engine *e, const float *params, gk_err *err) { return e->ops->load_weights(e->impl, params, err); }

int engine_attach_optimizer(engine *e, optimizer *o, float *ema, double ema_decay, gk_err *err) {
    return e->ops->attach_optimizer(e->impl, o, ema, ema_decay, err);
}

void engine_zero_grads(engine *e) { e->ops->zero_grads(e->impl); }
double engine_grad_norm(engine *e) { return e->ops->grad_norm(e->impl); }
int engine_optimizer_step(engine *e, double lr, float grad_scale, gk_err *err) {
    return e->ops->optimizer_step(e->impl, lr, grad_scale, err);
}
int engine_use_rank_device(engine_backend b, gk_err *err) {
#ifdef GK_WITH_CUDA
    if (b.device == DEVICE_CUDA && dist_size() > 1) return gk_cuda_use_rank_device(err);
#endif
    (void)b;
    (void)err;
    return 0;
}

int engine_ranks_collectives(engine_backend b, const collectives **c, gk_err *err) {
#ifdef GK_WITH_CUDA
    if (b.device == DEVICE_CUDA) return engine_use_rank_device(b, err) || !(*c = gk_nccl_collectives(err)) ? -1 : 0;
#endif
    (void)b;
    (void)err;
    *c = dist_host_collectives();
    return 0;
}

int engine_reduce_grads(engine *e, gk_err *err) { return e->ops->reduce_grads(e->impl, err); }
int engine_attach_ranks(engine *e, const collectives *c, bool zero, gk_err *err) {
    return e->ops->attach_ranks(e->impl, c, zero, err);
}
int engine_sync_host(engine *e, gk_err *err) { return e->ops->sync_host(e->impl, err); }
int engine_sync_device(engine *e, gk_err *err) { return e->ops->sync_device(e->impl, err); }
int engine_grads(engine *e, float *out, gk_err *err) { return e->ops->grads(e->impl, out, err); }
void engine_wait(engine *e) { e->ops->wait(); }

int engine_time_linear(engine_backend b, int rows, int in, int out, int reps, double seconds[3], gk_err *err) {
    return ops_for(b)->time_linear(rows, in, out, reps, seconds, err);
}

size_t engine_peak_bytes(engine_backend b) { return ops_for(b)->peak_bytes(); }
