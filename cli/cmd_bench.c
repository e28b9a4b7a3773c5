// gemmakd bench: time a forward+backward step (embedding to embedding
// gradient, cross-entropy head included) and compare its FLOP rate with
// OpenBLAS sgemm on the same matrix shapes and thread count, and with the
// cores' float32 FMA rate.
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/bench_gpu.h"
#include "cli/commands.h"
#include "cli/fma_peak.h"
#include "common/rng.h"
#include "common/timer.h"
#include "model/gemma2.h"
#include "model/init.h"
#include "model/plan.h"
#include "train/optim.h"

enum { BENCH_HEAD_CHUNK = 512 };

typedef struct {
    double forward, head, backward, optimizer; // seconds per step
} step_times;

typedef struct {
    model_config cfg;
    param_layout layout;
    float *params, *grads;
    weights_f32 w, g;
    acts_f32 acts;
    int32_t *tokens, *targets;
    optimizer opt;  // with --optimizer adamw: the step is a whole training step
    bool with_opt;
} bench_model;

static int bench_setup(bench_model *b, const char *config, int B, int T, bool with_opt, gk_err *err) {
    memset(b, 0, sizeof *b);
    b->with_opt = with_opt;
    if (model_config_load(config, &b->cfg, err) || param_layout_build(&b->cfg, &b->layout, err)) return -1;
    b->params = param_buffer_alloc(&b->layout, err);
    b->grads = b->params ? param_buffer_alloc(&b->layout, err) : NULL;
    b->tokens = gk_malloc((size_t)B * T * sizeof(int32_t), err);
    b->targets = gk_malloc((size_t)B * T * sizeof(int32_t), err);
    if (!b->grads || !b->tokens || !b->targets) return -1;
    model_init_random(&b->cfg, &b->layout, b->params, 1);
    weights_point_f32(&b->layout, b->params, &b->w);
    weights_point_f32(&b->layout, b->grads, &b->g);
    rng_state r;
    rng_seed(&r, 7);
    for (int i = 0; i < B * T; i++) b->tokens[i] = (int32_t)(rng_next(&r) % (uint64_t)b->cfg.vocab_size);
    for (int i = 0; i < B * T; i++) b->targets[i] = b->tokens[(i + 1) % (B * T)];
    if (b->with_opt && optimizer_init(&b->opt, OPTIM_ADAMW, 0.9, 0.95, 1e-8, 0.1, &b->layout, err)) return -1;
    return acts_init_f32(&b->acts, &b->cfg, B, T, true, err);
}

static void bench_free(bench_model *b) {
    optimizer_free(&b->opt);
    acts_free_f32(&b->acts);
    param_layout_free(&b->layout);
    free(b->params);
    free(b->grads);
    free(b->tokens);
    free(b->targets);
}

static int run_step(bench_model *b, step_times *t, gk_err *err) {
    token_batch batch = {.B = b->acts.B, .T = b->acts.T, .tokens = b->tokens};
    xent_ctx xent = {.targets = b->targets, .scale = 1.0 / ((double)batch.B * batch.T)};
    memset(b->grads, 0, b->layout.n_floats * sizeof(float));
    double t0 = now_seconds(), loss;
    if (model_forward_f32(&b->cfg, &b->w, &b->acts, &batch, 0, err)) return -1;
    double t1 = now_seconds();
    if (model_head_f32(&b->cfg, &b->w, &b->acts, &b->g, xent_head_f32, &xent, BENCH_HEAD_CHUNK, &loss, err)) return -1;
    double t2 = now_seconds();
    model_backward_f32(&b->cfg, &b->w, &b->g, &b->acts, 0);
    double t3 = now_seconds();
    if (b->with_opt) { // as the trainer: norm, clip, AdamW
        double norm = grad_norm(&b->layout, b->grads);
        grad_clip(&b->layout, b->grads, norm, 1.0);
        optimizer_step(&b->opt, b->params, b->grads, 1e-4);
    }
    double t4 = now_seconds();
    t->forward += t1 - t0;
    t->head += t2 - t1;
    t->backward += t3 - t2;
    t->optimizer += t4 - t3;
    return 0;
}

// One weight product of the step: C[m, n] = op(A) op(B) with inner size k.
typedef struct {
    int m, n, k;
    bool ta, tb;
    int count; // times per step
} gemm_shape;

// The forward product y = x w^T and its two backward products, for x [rows, in], w [out, in].
static int add_linear(gemm_shape *s, int at, int rows, int in, int out, int count) {
    s[at++] = (gemm_shape){rows, out, in, false, true, count}; // y = x w^T
    s[at++] = (gemm_shape){rows, in, out, false, false, count}; // dx = dy w
    s[at++] = (gemm_shape){out, in, rows, true, false, count}; // dw = dy^T x
    return at;
}

static int step_gemms(const model_config *c, int rows, gemm_shape *s) {
    int n = 0, L = c->n_layers, d = c->d_model;
    n = add_linear(s, n, rows, d, cfg_q_dim(c), L);
    n = add_linear(s, n, rows, d, cfg_kv_dim(c), 2 * L);
    n = add_linear(s, n, rows, cfg_q_dim(c), d, L);
    n = add_linear(s, n, rows, d, c->d_ff, 2 * L);
    n = add_linear(s, n, rows, c->d_ff, d, L);
    int chunk = rows < BENCH_HEAD_CHUNK ? rows : BENCH_HEAD_CHUNK, full = rows / chunk, rest = rows % chunk;
    n = add_linear(s, n, chunk, d, c->vocab_size, full);
    if (rest) n = add_linear(s, n, rest, d, c->vocab_size, 1);
    return n;
}

// Seconds sgemm takes for all of the step's weight products; *flops gets their count.
static double time_sgemm(const gemm_shape *s, int n, double *flops, gk_err *err) {
    double total = 0;
    *flops = 0;
    for (int i = 0; i < n; i++) {
        size_t a_n = (size_t)s[i].m * s[i].k, b_n = (size_t)s[i].k * s[i].n, c_n = (size_t)s[i].m * s[i].n;
        float *a = gk_calloc(a_n + b_n + c_n, sizeof(float), err);
        if (!a) return -1;
        for (size_t j = 0; j < a_n + b_n; j++) a[j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
        float *b = a + a_n, *c = b + b_n;
        int lda = s[i].ta ? s[i].m : s[i].k, ldb = s[i].tb ? s[i].k : s[i].n, reps = 3;
        cblas_sgemm(CblasRowMajor, s[i].ta ? CblasTrans : CblasNoTrans, s[i].tb ? CblasTrans : CblasNoTrans, s[i].m,
                    s[i].n, s[i].k, 1, a, lda, b, ldb, 0, c, s[i].n); // warm-up
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, s[i].ta ? CblasTrans : CblasNoTrans, s[i].tb ? CblasTrans : CblasNoTrans,
                        s[i].m, s[i].n, s[i].k, 1, a, lda, b, ldb, 0, c, s[i].n);
        total += (now_seconds() - t0) / reps * s[i].count;
        *flops += 2.0 * s[i].m * s[i].n * s[i].k * s[i].count;
        free(a);
    }
    return total;
}

static void report(const char *config, const model_config *cfg, int B, int T, int steps, const step_times *t,
                   double flops_per_step, double matmul_flops, double sgemm_s, bool json) {
    double step = (t->forward + t->head + t->backward + t->optimizer) / steps, tokens = (double)B * T;
    double rate = flops_per_step / step / 1e9, sgemm_rate = matmul_flops / sgemm_s / 1e9;
    double peak = fma_peak_gflops(omp_get_max_threads());
    if (json) {
        printf("{\"config\": \"%s\", \"batch\": %d, \"seq_len\": %d, \"threads\": %d, \"steps\": %d, "
               "\"step_s\": %.6f, \"forward_s\": %.6f, \"head_s\": %.6f, \"backward_s\": %.6f, \"optimizer_s\": %.6f, "
               "\"tokens_per_s\": %.2f, \"gflops\": %.3f, \"sgemm_gflops\": %.3f, \"fraction_of_sgemm\": %.4f, \"fma_peak_gflops\": %.3f}\n",
               config, B, T, omp_get_max_threads(), steps, step, t->forward / steps, t->head / steps,
               t->backward / steps, t->optimizer / steps, tokens / step, rate, sgemm_rate, rate / sgemm_rate, peak);
        return;
    }
    printf("bench: %s (d_model %d, %d layers, vocab %d), batch %d x %d tokens, %d threads, %d steps\n", config,
           cfg->d_model, cfg->n_layers, cfg->vocab_size, B, T, omp_get_max_threads(), steps);
    printf("step          %.3f s (forward %.3f, head %.3f, backward %.3f, optimizer %.3f)\n", step,
           t->forward / steps, t->head / steps, t->backward / steps, t->optimizer / steps);
    printf("throughput    %.1f tokens/s\n", tokens / step);
    printf("compute       %.3g model FLOPs per step = %.1f GFLOP/s\n", flops_per_step, rate);
    printf("sgemm         %.1f GFLOP/s on the step's weight-matrix shapes (same threads)\n", sgemm_rate);
    printf("ratio         %.0f%% of the sgemm rate\n", 100 * rate / sgemm_rate);
    if (peak > 0)
        printf("fma peak      %.1f GFLOP/s (float32 FMA on registers, same threads): step at %.0f%%, sgemm at %.0f%%\n",
               peak, 100 * rate / peak, 100 * sgemm_rate / peak);
}

int cmd_bench(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "model config (default configs/models/bench-d512.json)", NULL},
        {"batch", "B", "sequences per step (default 2)", NULL},
        {"seq-len", "T", "tokens per sequence (default 512)", NULL},
        {"steps", "N", "timed steps after one warm-up step (default 3)", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        {"optimizer", "adamw|none", "include grad norm, clipping and an AdamW update in the step (default none)", NULL},
        {"device", "cpu|cuda", "where the step runs (default cpu; cuda needs a build with make GPU=1)", NULL},
        {"json", NULL, "print one JSON object", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, "gemmakd bench [--config FILE] [--batch B] [--seq-len T] [--steps N] [--optimizer adamw|none] [--device cpu|cuda] [--json]",
                        specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *config = arg_get(specs, n, "config"), *s;
    if (!config) config = "configs/models/bench-d512.json";
    long long B = 2, T = 512, steps = 3;
    if ((s = arg_get(specs, n, "batch")) && parse_int("batch", s, 1, 4096, &B, err)) return -1;
    if ((s = arg_get(specs, n, "seq-len")) && parse_int("seq-len", s, 1, 1 << 20, &T, err)) return -1;
    if ((s = arg_get(specs, n, "steps")) && parse_int("steps", s, 1, 100000, &steps, err)) return -1;
    if (set_threads(arg_get(specs, n, "threads"), err)) return -1;
    const char *opt = arg_get(specs, n, "optimizer");
    if (opt && strcmp(opt, "adamw") && strcmp(opt, "none"))
        return gk_fail(err, GK_EUSAGE, "--optimizer: expected adamw or none, got '%s'", opt);
    const char *device = arg_get(specs, n, "device");
    if (device && strcmp(device, "cpu") && strcmp(device, "cuda"))
        return gk_fail(err, GK_EUSAGE, "--device: expected cpu or cuda, got '%s'", device);
    if (device && !strcmp(device, "cuda")) {
#ifdef GK_WITH_CUDA
        return bench_gpu(config, (int)B, (int)T, (int)steps, opt && !strcmp(opt, "adamw"), arg_flag(specs, n, "json"),
                         err);
#else
        return gk_fail(err, GK_EUSAGE, "--device cuda: this gemmakd was built without CUDA; build it with make GPU=1");
#endif
    }
    bench_model b;
    step_times warm = {0}, t = {0};
    rc = bench_setup(&b, config, (int)B, (int)T, opt && !strcmp(opt, "adamw"), err);
    if (rc == 0) rc = run_step(&b, &warm, err);
    for (long long i = 0; rc == 0 && i < steps; i++) rc = run_step(&b, &t, err);
    model_plan plan;
    if (rc == 0) rc = model_plan_compute(&b.cfg, (int)B, (int)T, BENCH_HEAD_CHUNK, &plan, err);
    if (rc == 0) {
        gemm_shape shapes[24];
        double matmul_flops, sgemm_s = time_sgemm(shapes, step_gemms(&b.cfg, (int)(B * T), shapes), &matmul_flops, err);
        if (sgemm_s < 0) rc = -1;
        else report(config, &b.cfg, (int)B, (int)T, (int)steps, &t, plan.flops_train * B * T, matmul_flops, sgemm_s,
                    arg_flag(specs, n, "json"));
    }
    bench_free(&b);
    return rc;
}
