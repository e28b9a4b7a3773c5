// What a backend of the model handle provides (model/engine.h): one table of
// operations per instantiation, defined by model/engine_impl.c (compiled as
// engine_ops_f32, engine_ops_bf16 and, in GPU builds, engine_ops_cuda).
#ifndef GK_ENGINE_OPS_H
#define GK_ENGINE_OPS_H

#include "model/engine.h"

typedef struct {
    void *(*open)(model_state *m, int B, int T, bool training, gk_err *err);
    void (*close)(void *impl);
    int (*forward)(void *impl, const token_batch *batch, int window, gk_err *err);
    int (*head)(void *impl, const head_loss *h, double *loss, gk_err *err);
    int (*backward)(void *impl, gk_err *err);
    int (*logits)(void *impl, size_t first, size_t count, int v0, int width, float *out, gk_err *err);
    int (*decode_init)(void *impl, int B, int max_len, gk_err *err);
    void (*decode_reset_row)(void *impl, int row);
    int (*decode_step)(void *impl, const int32_t *tokens, const int32_t *pos, gk_err *err);
    int (*decode_prefill)(void *impl, int row, const int32_t *tokens, int n, gk_err *err);
    int (*decode_logits)(void *impl, const int *rows, int n, float *out, gk_err *err);
    int (*load_weights)(void *impl, const float *params, gk_err *err);
    int (*attach_optimizer)(void *impl, optimizer *o, float *ema, double ema_decay, gk_err *err);
    void (*zero_grads)(void *impl);
    double (*grad_norm)(void *impl);
    int (*reduce_grads)(void *impl, gk_err *err);
    int (*attach_ranks)(void *impl, const collectives *c, bool zero, gk_err *err);
    int (*optimizer_step)(void *impl, double lr, float grad_scale, gk_err *err);
    int (*sync_host)(void *impl, gk_err *err);
    int (*sync_device)(void *impl, gk_err *err);
    int (*grads)(void *impl, float *out, gk_err *err);
    // Not tied to an open model:
    void (*wait)(void);
    int (*time_linear)(int rows, int in, int out, int reps, double seconds[3], gk_err *err);
    size_t (*peak_bytes)(void);
} engine_ops;

extern const engine_ops engine_ops_f32, engine_ops_bf16;
#ifdef GK_WITH_CUDA
extern const engine_ops engine_ops_cuda;
#endif

#endif
