// gemmakd bench --device cuda (GPU builds only): one step of the bf16 model on
// the GPU (forward, cross-entropy head, backward; with --optimizer adamw also
// gradient norm, clipping and AdamW on fp32 master weights), its MFU against the bf16
// matrix rate measured on the same device, and peak GPU memory.
#ifdef GK_WITH_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_gpu.h"
#include "common/rng.h"
#include "common/timer.h"
#include "model/cuda/cuda.h"
#include "model/gemma2.h"
#include "model/init.h"
#include "model/kernels.h"
#include "model/plan.h"
#include "train/optim.h"

enum { GPU_HEAD_CHUNK = 1024 }; // [chunk, V] float logits + bf16 gradients: 1.5 GiB at V = 256k

typedef struct {
    model_config cfg;
    param_layout layout;
    gk_bf16 *params, *grads; // device
    float *master;           // device fp32 master weights
    weights_cuda w, g;
    acts_cuda acts;
    int32_t *tokens;         // host [B*T]
    int32_t *targets;        // device [B*T]
    optimizer opt;
    bool with_opt;
} gpu_bench;

static int gpu_setup(gpu_bench *b, const char *config, int B, int T, bool with_opt, gk_err *err) {
    memset(b, 0, sizeof *b);
    b->with_opt = with_opt;
    if (model_config_load(config, &b->cfg, err) || param_layout_build(&b->cfg, &b->layout, err)) return -1;
    size_t nf = b->layout.n_floats, N = (size_t)B * T;
    float *host = param_buffer_alloc(&b->layout, err);
    int32_t *targets = gk_malloc(N * sizeof *targets, err);
    b->tokens = gk_malloc(N * sizeof *b->tokens, err);
    if (!host || !targets || !b->tokens) goto fail;
    model_init_random(&b->cfg, &b->layout, host, 1);
    b->params = buffer_alloc_cuda(nf * sizeof(gk_bf16), err);
    b->grads = b->params ? buffer_alloc_cuda(nf * sizeof(gk_bf16), err) : NULL;
    b->master = b->grads ? buffer_alloc_cuda(nf * sizeof(float), err) : NULL;
    b->targets = b->master ? buffer_alloc_cuda(N * sizeof(int32_t), err) : NULL;
    if (!b->targets || gk_cuda_upload_bf16(b->params, host, nf, err)) goto fail;
    buffer_upload_cuda(b->master, host, nf * sizeof(float));
    rng_state r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < N; i++) b->tokens[i] = (int32_t)(rng_next(&r) % (uint64_t)b->cfg.vocab_size);
    for (size_t i = 0; i < N; i++) targets[i] = b->tokens[(i + 1) % N];
    buffer_upload_cuda(b->targets, targets, N * sizeof(int32_t));
    weights_point_cuda(&b->layout, b->params, &b->w);
    weights_point_cuda(&b->layout, b->grads, &b->g);
    free(host);
    free(targets);
    if (with_opt && optimizer_init_cuda(&b->opt, OPTIM_ADAMW, 0.9, 0.95, 1e-8, 0.1, &b->layout, err)) return -1;
    return acts_init_cuda(&b->acts, &b->cfg, B, T, true, err);
fail:
    free(host);
    free(targets);
    return -1;
}

static void gpu_free(gpu_bench *b) {
    optimizer_free_cuda(&b->opt);
    acts_free_cuda(&b->acts);
    buffer_free_cuda(b->params);
    buffer_free_cuda(b->grads);
    buffer_free_cuda(b->master);
    buffer_free_cuda(b->targets);
    free(b->tokens);
    param_layout_free(&b->layout);
}

typedef struct {
    double forward, head, backward, optimizer; // seconds, summed over steps
} gpu_times;

static int gpu_step(gpu_bench *b, gpu_times *t, gk_err *err) {
    token_batch batch = {.B = b->acts.B, .T = b->acts.T, .tokens = b->tokens};
    xent_ctx xent = {.targets = b->targets, .scale = 1.0 / ((double)batch.B * batch.T)};
    gk_cuda_zero(b->grads, b->layout.n_floats * sizeof(gk_bf16));
    gk_cuda_sync();
    double t0 = now_seconds(), loss;
    if (model_forward_cuda(&b->cfg, &b->w, &b->acts, &batch, 0, err)) return -1;
    gk_cuda_sync();
    double t1 = now_seconds();
    if (model_head_cuda(&b->cfg, &b->w, &b->acts, &b->g, xent_head_cuda, &xent, GPU_HEAD_CHUNK, &loss, err)) return -1;
    gk_cuda_sync();
    double t2 = now_seconds();
    model_backward_cuda(&b->cfg, &b->w, &b->g, &b->acts, 0);
    gk_cuda_sync();
    double t3 = now_seconds();
    if (b->with_opt) { // as the trainer: norm, clip, AdamW
        double norm = sqrt(gk_cuda_sum_squares(b->grads, b->layout.n_floats));
        if (norm > 1.0) gk_cuda_scale_bf16(b->grads, b->layout.n_floats, (float)(1.0 / (norm + 1e-6)));
        optimizer_step_cuda(&b->opt, b->master, b->params, b->grads, 1e-4);
    }
    gk_cuda_sync();
    double t4 = now_seconds();
    t->forward += t1 - t0;
    t->head += t2 - t1;
    t->backward += t3 - t2;
    t->optimizer += t4 - t3;
    return 0;
}

// The device's bf16 matrix rate (TFLOP/s): an n x n x n product with float
// accumulation on random operands (zeros draw less power and would flatter it).
static double bf16_matmul_rate(gk_err *err) {
    const int n = 8192, reps = 10;
    size_t cells = (size_t)n * n;
    gk_bf16 *a = buffer_alloc_cuda(3 * cells * sizeof *a, err);
    float *host = a ? gk_malloc(2 * cells * sizeof *host, err) : NULL;
    if (!host) {
        buffer_free_cuda(a);
        return -1;
    }
    for (size_t i = 0; i < 2 * cells; i++) host[i] = (float)hash_normal(3, i);
    int rc = gk_cuda_upload_bf16(a, host, 2 * cells, err);
    free(host);
    if (rc) {
        buffer_free_cuda(a);
        return -1;
    }
    matmul_forward_cuda(a + 2 * cells, a, a + cells, n, n, n); // warm-up (cuBLASLt heuristics, clocks)
    gk_cuda_sync();
    double t0 = now_seconds();
    for (int r = 0; r < reps; r++) matmul_forward_cuda(a + 2 * cells, a, a + cells, n, n, n);
    gk_cuda_sync();
    double seconds = (now_seconds() - t0) / reps;
    buffer_free_cuda(a);
    return 2.0 * n * n * n / seconds / 1e12;
}

int bench_gpu(const char *config, int B, int T, int steps, bool with_opt, bool json, gk_err *err) {
    char device[256];
    if (gk_cuda_probe(device, sizeof device)) return gk_fail(err, GK_EINPUT, "--device cuda: %s", device);
    gpu_bench b;
    gpu_times warm = {0}, t = {0};
    int rc = gpu_setup(&b, config, B, T, with_opt, err);
    if (rc == 0) rc = gpu_step(&b, &warm, err);
    for (int i = 0; rc == 0 && i < steps; i++) rc = gpu_step(&b, &t, err);
    size_t peak = gk_cuda_peak_bytes();
    model_plan plan;
    if (rc == 0) rc = model_plan_compute(&b.cfg, B, T, GPU_HEAD_CHUNK, &plan, err);
    gpu_free(&b);
    if (rc) return -1;
    double rate = bf16_matmul_rate(err);
    if (rate < 0) return -1;
    double step = (t.forward + t.head + t.backward + t.optimizer) / steps, tokens = (double)B * T;
    double tflops = plan.flops_train * tokens / step / 1e12;
    if (json) {
        printf("{\"device\": \"%s\", \"config\": \"%s\", \"batch\": %d, \"seq_len\": %d, \"steps\": %d, "
               "\"step_s\": %.6f, \"forward_s\": %.6f, \"head_s\": %.6f, \"backward_s\": %.6f, \"optimizer_s\": %.6f, "
               "\"tokens_per_s\": %.2f, \"tflops\": %.3f, \"bf16_matmul_tflops\": %.3f, \"mfu\": %.4f, "
               "\"peak_gpu_bytes\": %zu}\n",
               device, config, B, T, steps, step, t.forward / steps, t.head / steps, t.backward / steps,
               t.optimizer / steps, tokens / step, tflops, rate, tflops / rate, peak);
        return 0;
    }
    printf("bench: %s on %s, batch %d x %d tokens, %d steps\n", config, device, B, T, steps);
    printf("step          %.4f s (forward %.4f, head %.4f, backward %.4f, optimizer %.4f)\n", step, t.forward / steps,
           t.head / steps, t.backward / steps, t.optimizer / steps);
    printf("throughput    %.1f tokens/s\n", tokens / step);
    printf("compute       %.1f TFLOP/s of model FLOPs; bf16 matmul rate %.1f TFLOP/s; MFU %.1f%%\n", tflops, rate,
           100 * tflops / rate);
    printf("memory        %.2f GiB peak of gemmakd's GPU buffers\n", (double)peak / (1 << 30));
    return 0;
}
#endif
