// gemmakd bench: time a training step of a model on a backend (forward,
// cross-entropy or distillation head, backward and optionally the AdamW
// update) and compare its FLOP rate with the backend's own matrix products
// on the step's shapes and, on the CPU, with the cores' FMA peak. With
// --prompt-len, generation's prompt processing instead (cli/bench_prompt.h).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/bench_prompt.h"
#include "cli/commands.h"
#include "cli/fma_peak.h"
#include "common/rng.h"
#include "common/timer.h"
#include "distill/kd_head.h"
#include "model/engine.h"
#include "model/init.h"
#include "model/plan.h"

typedef struct {
    double forward, teacher, head, backward, optimizer; // seconds, summed over steps
} step_times;

typedef struct {
    int B, T, head_chunk;
    bool with_opt;
    engine_backend backend;
    model_state student, teacher; // random weights
    engine *se, *te;              // te: NULL without a teacher
    optimizer opt;
    kd_head_ctx kd;
    int32_t *tokens, *targets;    // [B*T]
} bench_run;

static int random_model(const char *config, uint64_t seed, model_state *m, gk_err *err) {
    if (model_config_load(config, &m->cfg, err) || param_layout_build(&m->cfg, &m->layout, err)) return -1;
    if (!(m->params = param_buffer_alloc(&m->layout, err))) return -1;
    model_init_random(&m->cfg, &m->layout, m->params, seed);
    return 0;
}

static int bench_setup(bench_run *b, const char *config, const char *teacher_config, engine_backend teacher_backend,
                       gk_err *err) {
    int N = b->B * b->T;
    if (random_model(config, 1, &b->student, err) ||
        engine_open(&b->se, &b->student, b->backend, b->B, b->T, true, err))
        return -1;
    if (b->with_opt && (optimizer_init(&b->opt, OPTIM_ADAMW, 0.9, 0.95, 1e-8, 0.1, &b->student.layout, err) ||
                        engine_attach_optimizer(b->se, &b->opt, NULL, 0, err)))
        return -1;
    b->tokens = gk_malloc((size_t)N * sizeof(int32_t), err);
    b->targets = gk_malloc((size_t)N * sizeof(int32_t), err);
    if (!b->tokens || !b->targets) return -1;
    rng_state r;
    rng_seed(&r, 7);
    for (int i = 0; i < N; i++) b->tokens[i] = (int32_t)(rng_next(&r) % (uint64_t)b->student.cfg.vocab_size);
    for (int i = 0; i < N; i++) b->targets[i] = b->tokens[(i + 1) % N];
    if (!teacher_config) return 0;
    kd_config kd = {.divergence = KD_FORWARD_KL, .alpha = 1, .temperature = 1, .beta = 0.5};
    if (random_model(teacher_config, 2, &b->teacher, err)) return gk_wrap(err, "--teacher-config");
    if (b->teacher.cfg.vocab_size != b->student.cfg.vocab_size)
        return gk_fail(err, GK_EUSAGE, "--teacher-config: vocabulary %d, the student's is %d", b->teacher.cfg.vocab_size,
                       b->student.cfg.vocab_size);
    if (engine_open(&b->te, &b->teacher, teacher_backend, b->B, b->T, false, err) ||
        kd_head_init(&b->kd, &kd, (size_t)N, err))
        return -1;
    if (!engine_holds_params(b->te)) { // as the trainer's teacher (distill/teacher.c)
        free(b->teacher.params);
        b->teacher.params = NULL;
    }
    kd_head_use_engine(&b->kd, b->te);
    b->kd.targets = b->targets;
    b->kd.scale = 1.0 / N;
    return 0;
}

static void bench_free(bench_run *b) {
    engine_close(b->se);
    engine_close(b->te);
    kd_head_free(&b->kd);
    optimizer_free(&b->opt);
    model_state_free(&b->student);
    model_state_free(&b->teacher);
    free(b->tokens);
    free(b->targets);
}

// One step, as the trainer runs it; each phase waits for the device before its clock stops.
static int run_step(bench_run *b, step_times *t, gk_err *err) {
    token_batch batch = {.B = b->B, .T = b->T, .tokens = b->tokens};
    xent_ctx xent = {.targets = b->targets, .scale = 1.0 / ((double)b->B * b->T)};
    head_loss head = {.kind = HEAD_XENT, .xent = &xent, .chunk = b->head_chunk, .grads = true};
    if (b->te) head = kd_head_loss(&b->kd, true);
    engine_zero_grads(b->se);
    engine_wait(b->se);
    double t0 = now_seconds(), loss;
    if (engine_forward(b->se, &batch, 0, err)) return -1;
    engine_wait(b->se);
    double t1 = now_seconds();
    if (b->te && engine_forward(b->te, &batch, 0, err)) return -1;
    if (b->te) engine_wait(b->te);
    double t2 = now_seconds();
    if (engine_head(b->se, &head, &loss, err)) return -1;
    engine_wait(b->se);
    double t3 = now_seconds();
    if (engine_backward(b->se, err)) return -1;
    engine_wait(b->se);
    double t4 = now_seconds();
    if (b->with_opt) { // as the trainer: norm, clip, AdamW
        double norm = engine_grad_norm(b->se);
        if (engine_optimizer_step(b->se, 1e-4, (float)grad_clip_scale(norm, 1.0), err)) return -1;
    }
    engine_wait(b->se);
    double t5 = now_seconds();
    *t = (step_times){t->forward + t1 - t0, t->teacher + t2 - t1, t->head + t3 - t2, t->backward + t4 - t3,
                      t->optimizer + t5 - t4};
    return 0;
}

// Seconds the backend's products of one linear layer take in a step (forward,
// and with backward both gradients), times `count`; *flops gets their FLOPs.
static int linear_seconds(engine_backend be, int rows, int in, int out, double count, bool backward, double *seconds,
                          double *flops, gk_err *err) {
    double s[3];
    if (engine_time_linear(be, rows, in, out, 3, s, err)) return -1;
    *seconds += count * (s[0] + (backward ? s[1] + s[2] : 0));
    *flops += count * 2.0 * rows * in * out * (backward ? 3 : 1);
    return 0;
}

// The output head's own products on `rows` positions (logits, and with backward
// dL/dhidden and dL/dE) at the shapes it runs them: blocks of positions x tiles
// of the vocabulary (chunk 0, the CPU's tiled head) or chunks of whole rows.
static int head_products(engine_backend be, const model_config *c, int rows, int chunk, bool backward, double *seconds,
                         double *flops, gk_err *err) {
    int V = c->vocab_size, d = c->d_model;
    tile_shape t = head_tile_shape(V, (tile_shape){chunk, chunk > 0 ? V : 0});
    int block = t.block < rows ? t.block : rows, width = t.tile;
    double count = (double)rows / block * ((double)V / width); // the FLOPs of rows x V in blocks x tiles
    return linear_seconds(be, block, d, width, count, backward, seconds, flops, err);
}

// The weight products of a model's step on B*T rows: the layers' and the head's.
static int model_products(engine_backend be, const model_config *c, int rows, int chunk, bool backward,
                          double *seconds, double *flops, gk_err *err) {
    int L = c->n_layers, d = c->d_model;
    if (linear_seconds(be, rows, d, cfg_q_dim(c), L, backward, seconds, flops, err) ||
        linear_seconds(be, rows, d, cfg_kv_dim(c), 2 * L, backward, seconds, flops, err) ||
        linear_seconds(be, rows, cfg_q_dim(c), d, L, backward, seconds, flops, err) ||
        linear_seconds(be, rows, d, c->d_ff, 2 * L, backward, seconds, flops, err) ||
        linear_seconds(be, rows, c->d_ff, d, L, backward, seconds, flops, err))
        return -1;
    return head_products(be, c, rows, chunk, backward, seconds, flops, err);
}

static void cpu_model_name(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        snprintf(out, n, "%s", colon + 2);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    if (f) fclose(f);
}

typedef struct {
    const char *config, *teacher_config;
    int steps;
    double flops, products_s, products_flops, peak, peak_bytes;
    double head_products_s; // the output head's own products (the teacher's logits among them)
    const char *peak_unit;
    char machine[256], kernels[512];
} bench_report;

static void report(const bench_run *b, const bench_report *r, const step_times *t, bool json) {
    int S = r->steps;
    double step = (t->forward + t->teacher + t->head + t->backward + t->optimizer) / S, tokens = (double)b->B * b->T;
    double rate = r->flops / step / 1e9, products = r->products_flops / r->products_s / 1e9;
    if (json) {
        printf("{\"config\": \"%s\", \"teacher_config\": %s%s%s, \"device\": \"%s\", \"precision\": \"%s\", "
               "\"machine\": \"%s\", \"kernels\": \"%s\", \"batch\": %d, \"seq_len\": %d, \"threads\": %d, \"steps\": %d, "
               "\"step_s\": %.6f, \"forward_s\": %.6f, \"teacher_s\": %.6f, \"head_s\": %.6f, \"backward_s\": %.6f, "
               "\"optimizer_s\": %.6f, \"head_products_s\": %.6f, \"tokens_per_s\": %.2f, \"gflops\": %.3f, \"products_gflops\": %.3f, "
               "\"fraction_of_products\": %.4f, \"fma_peak_gflops\": %.3f, \"fma_unit\": \"%s\", \"peak_bytes\": %.0f}\n",
               r->config, r->teacher_config ? "\"" : "", r->teacher_config ? r->teacher_config : "null",
               r->teacher_config ? "\"" : "", engine_device_name(b->backend.device),
               engine_precision_name(b->backend.precision), r->machine, r->kernels, b->B, b->T, omp_get_max_threads(),
               S, step, t->forward / S, t->teacher / S, t->head / S, t->backward / S, t->optimizer / S, r->head_products_s,
               tokens / step,
               rate, products, rate / products, r->peak, r->peak_unit, r->peak_bytes);
        return;
    }
    const model_config *c = &b->student.cfg;
    printf("bench: %s (d_model %d, %d layers, vocab %d)%s%s, batch %d x %d tokens, %d threads, %d steps\n", r->config,
           c->d_model, c->n_layers, c->vocab_size, r->teacher_config ? ", distilled from " : "",
           r->teacher_config ? r->teacher_config : "", b->B, b->T, omp_get_max_threads(), S);
    printf("machine       %s\n", r->machine);
    printf("kernels       %s\n", r->kernels);
    printf("step          %.4f s (forward %.4f, teacher %.4f, head %.4f, backward %.4f, optimizer %.4f)\n", step,
           t->forward / S, t->teacher / S, t->head / S, t->backward / S, t->optimizer / S);
    printf("throughput    %.1f tokens/s\n", tokens / step);
    printf("head          %.4f s = %.2f x its own matrix products (%.4f s alone)\n", t->head / S,
           t->head / S / r->head_products_s, r->head_products_s);
    printf("compute       %.3g model FLOPs per step = %.1f GFLOP/s\n", r->flops, rate);
    printf("products      %.1f GFLOP/s: the backend's matrix products on the step's shapes alone; the step runs at "
           "%.0f%% of that\n", products, 100 * rate / products);
    if (r->peak > 0)
        printf("fma peak      %.1f GFLOP/s (float32 %s FMA on registers, same threads): step at %.0f%%, products at "
               "%.0f%%\n", r->peak, r->peak_unit, 100 * rate / r->peak, 100 * products / r->peak);
    printf("memory        %.2f GiB peak (%s)\n", r->peak_bytes / (1 << 30),
           b->backend.device == DEVICE_CUDA ? "GPU buffers" : "process resident set");
}

static int measure(bench_run *b, bench_report *r, step_times *t, gk_err *err) {
    step_times warm = {0};
    *t = (step_times){0};
    if (run_step(b, &warm, err)) return -1;
    for (int i = 0; i < r->steps; i++)
        if (run_step(b, t, err)) return -1;
    r->peak_bytes = (double)engine_peak_bytes(b->backend);
    model_plan plan;
    int N = b->B * b->T;
    if (model_plan_compute(&b->student.cfg, b->B, b->T, b->head_chunk, false, &plan, err)) return -1;
    r->flops = plan.flops_train * N;
    // Tiled heads (chunk 0): the CPU's, and distillation's everywhere; the GPU's cross-entropy in chunks.
    int chunk = b->backend.device == DEVICE_CPU || b->te ? 0 : b->head_chunk < N ? b->head_chunk : N;
    double head_flops = 0;
    if (model_products(b->backend, &b->student.cfg, N, chunk, true, &r->products_s, &r->products_flops, err) ||
        head_products(b->backend, &b->student.cfg, N, chunk, true, &r->head_products_s, &head_flops, err))
        return -1;
    if (b->te) { // the teacher's forward (its logits in the student's head): its products, and its FLOPs in the step's
        engine_backend tb = engine_backend_of(b->te);
        if (model_plan_compute(&b->teacher.cfg, b->B, b->T, 0, false, &plan, err) ||
            model_products(tb, &b->teacher.cfg, N, 0, false, &r->products_s, &r->products_flops, err) ||
            head_products(tb, &b->teacher.cfg, N, 0, false, &r->head_products_s, &head_flops, err))
            return -1;
        r->flops += plan.flops_fwd * N;
    }
    bool generic; // warned about by backend_from_flags
    cpu_model_name(r->machine, sizeof r->machine);
    if (engine_backend_describe(b->backend, r->kernels, sizeof r->kernels, &generic, err)) return -1;
    r->peak = b->backend.device == DEVICE_CPU ? fma_peak_gflops(omp_get_max_threads(), &r->peak_unit) : 0;
    return 0;
}

// --prompt-len: generation's prompts on a random model of r->config (b: the backend), batch rows at a time.
static int prompt_mode(bench_report *r, const bench_run *b, const char *len, int batch, bool json, gk_err *err) {
    long long prompt_len;
    if (parse_int("prompt-len", len, 1, 1 << 24, &prompt_len, err)) return -1;
    if (r->teacher_config) return gk_fail(err, GK_EUSAGE, "--prompt-len times generation: it takes no --teacher-config");
    cpu_model_name(r->machine, sizeof r->machine);
    prompt_bench pb = {.config = r->config, .machine = r->machine, .backend = b->backend, .prompt_len = (int)prompt_len,
                       .prompts = r->steps, .batch = batch};
    model_state m = {0};
    int rc = random_model(r->config, 1, &m, err);
    if (rc == 0) rc = bench_prompts(&m, &pb, json, err);
    model_state_free(&m);
    return rc;
}

int cmd_bench(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "model config (default configs/models/bench-d512.json)", NULL},
        {"teacher-config", "FILE", "distillation step: an in-process teacher of this config (random weights)", NULL},
        {"teacher-precision", "fp32|bf16", "the teacher's precision (default: the student's)", NULL},
        {"batch", "B", "sequences per step (default 2)", NULL},
        {"seq-len", "T", "tokens per sequence (default 512)", NULL},
        {"steps", "N", "timed steps after one warm-up step (default 3)", NULL},
        {"head-chunk", "N", "tokens per [chunk, vocab] block of the output head (default 512)", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        {"optimizer", "adamw|none", "include grad norm, clipping and an AdamW update in the step (default none)", NULL},
        {"prompt-len", "N", "time generation's prompts instead: --steps prompts of N tokens, --batch rows at a time "
                            "(default 1), fed one position per step and prefilled", NULL},
        BACKEND_FLAG_SPECS,
        {"json", NULL, "print one JSON object", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv,
                        "gemmakd bench [--config FILE] [--teacher-config FILE] [--batch B] [--seq-len T] [--steps N] "
                        "[--optimizer adamw|none] [--prompt-len N] [--device cpu|cuda] [--precision fp32|bf16] [--json]",
                        specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    bench_report r = {.config = arg_get(specs, n, "config"), .teacher_config = arg_get(specs, n, "teacher-config"),
                      .steps = 3, .peak_unit = "none"};
    if (!r.config) r.config = "configs/models/bench-d512.json";
    long long B = 2, T = 512, steps = 3, chunk = 512;
    const char *s;
    if ((s = arg_get(specs, n, "batch")) && parse_int("batch", s, 1, 4096, &B, err)) return -1;
    if ((s = arg_get(specs, n, "seq-len")) && parse_int("seq-len", s, 1, 1 << 20, &T, err)) return -1;
    if ((s = arg_get(specs, n, "steps")) && parse_int("steps", s, 1, 100000, &steps, err)) return -1;
    if ((s = arg_get(specs, n, "head-chunk")) && parse_int("head-chunk", s, 1, 1 << 24, &chunk, err)) return -1;
    if (set_threads(arg_get(specs, n, "threads"), err)) return -1;
    const char *opt = arg_get(specs, n, "optimizer");
    if (opt && strcmp(opt, "adamw") && strcmp(opt, "none"))
        return gk_fail(err, GK_EUSAGE, "--optimizer: expected adamw or none, got '%s'", opt);
    bench_run b = {.B = (int)B, .T = (int)T, .head_chunk = (int)chunk, .with_opt = opt && !strcmp(opt, "adamw")};
    engine_backend teacher_backend;
    const char *tp = arg_get(specs, n, "teacher-precision");
    if (backend_from_flags(specs, n, &b.backend, err) ||
        engine_backend_parse(arg_get(specs, n, "device"), tp ? tp : arg_get(specs, n, "precision"),
                             "--teacher-precision", &teacher_backend, err))
        return -1;
    r.steps = (int)steps;
    if ((s = arg_get(specs, n, "prompt-len"))) return prompt_mode(&r, &b, s, arg_get(specs, n, "batch") ? (int)B : 1,
                                                                 arg_flag(specs, n, "json"), err);
    step_times t;
    rc = bench_setup(&b, r.config, r.teacher_config, teacher_backend, err);
    if (rc == 0) rc = measure(&b, &r, &t, err);
    if (rc == 0) report(&b, &r, &t, arg_flag(specs, n, "json"));
    bench_free(&b);
    return rc;
}
