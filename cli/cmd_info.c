// gemmakd info: parameter counts, FLOPs per token and a training memory plan.
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/info_device.h"
#include "model/engine.h"
#include "model/plan.h"

static void print_model(const char *path, const model_config *c, const model_plan *p, int seq_len) {
    char a[40], b[40], e[40];
    int local = 0;
    for (int l = 0; l < c->n_layers; l++) local += c->is_local[l];
    printf("config              %s\n", path);
    printf("shape               d_model %d, d_ff %d, heads %d (kv %d, head_dim %d), vocab %d\n", c->d_model, c->d_ff,
           c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size);
    printf("layers              %d: %d local (window %d), %d global\n", c->n_layers, local, c->sliding_window,
           c->n_layers - local);
    printf("parameters          %s\n", info_grouped(p->params_total, a));
    printf("  embedding         %s (%d x %d, tied with the output head)\n", info_grouped(p->params_embedding, b),
           c->vocab_size, c->d_model);
    printf("  non-embedding     %s\n", info_grouped(p->params_non_embedding, e));
    printf("FLOPs per token at seq_len %d\n", seq_len);
    printf("  forward           %.4g (matmul %.4g, attention %.4g)\n", p->flops_fwd, p->flops_matmul_fwd,
           p->flops_attention_fwd);
    printf("  training          %.4g (forward + backward)\n", p->flops_train);
}

static void print_memory(const model_plan *p, int batch, int seq_len, bool bf16) {
    const double gib = 1024.0 * 1024 * 1024;
    printf("training memory, %s, %d x %d tokens per micro-batch\n", bf16 ? "bf16" : "float32", batch, seq_len);
    printf("  weights           %8.3f GiB%s\n", p->bytes_weights / gib, bf16 ? " (bf16, what the products read)" : "");
    if (bf16) printf("  master weights    %8.3f GiB (float32)\n", p->bytes_master / gib);
    printf("  gradients         %8.3f GiB\n", p->bytes_grads / gib);
    printf("  AdamW m and v     %8.3f GiB\n", p->bytes_adamw / gib);
    printf("  activations       %8.3f GiB\n", p->bytes_activations / gib);
    printf("  total             %8.3f GiB\n", p->bytes_total / gib);
}

// One JSON object; with d, the memory per device's fields too.
static void print_json(const model_config *c, const model_plan *p, int batch, int seq_len, const device_plan *d) {
    printf("{\"params_total\": %zu, \"params_embedding\": %zu, \"params_non_embedding\": %zu, ", p->params_total,
           p->params_embedding, p->params_non_embedding);
    printf("\"seq_len\": %d, \"batch\": %d, \"flops_forward_per_token\": %.17g, \"flops_train_per_token\": %.17g, ",
           seq_len, batch, p->flops_fwd, p->flops_train);
    printf("\"bytes_weights\": %zu, \"bytes_master\": %zu, \"bytes_grads\": %zu, \"bytes_adamw\": %zu, "
           "\"bytes_activations\": %zu, ",
           p->bytes_weights, p->bytes_master, p->bytes_grads, p->bytes_adamw, p->bytes_activations);
    printf("\"n_layers\": %d, \"vocab_size\": %d", c->n_layers, c->vocab_size);
    if (d) info_device_print_json(d);
    printf("}\n");
}

int cmd_info(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "model config (config.json)", NULL},
        {"seq-len", "T", "tokens per sequence for FLOPs and activations (default 4096)", NULL},
        {"batch", "B", "sequences per micro-batch for the memory plan (default 1)", NULL},
        {"head-chunk", "N", "tokens per output-head chunk on the GPU (default 1024; the CPU's head is tiled)", NULL},
        {"device", "cpu|cuda", "the memory plan of this device (default cpu)", NULL},
        {"precision", "fp32|bf16", "the memory plan of this precision (default fp32)", NULL},
        {"json", NULL, "print one JSON object instead of text", NULL},
        INFO_DEVICE_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, "gemmakd info --config FILE [--seq-len T] [--batch B] [--device cpu|cuda] [--precision fp32|bf16] [--json]\n"
                                          "       [--ranks N] [--zero 0|1] [--ema] [--teacher CONFIG|cache [--teacher-precision fp32|bf16]]\n"
                                          "       [--device-memory SIZE]", specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *path = arg_get(specs, n, "config");
    if (!path) return gk_fail(err, GK_EUSAGE, "info needs --config");
    long long seq_len = 4096, batch = 1, chunk = 1024;
    const char *s;
    if ((s = arg_get(specs, n, "seq-len")) && parse_int("seq-len", s, 1, 1 << 24, &seq_len, err)) return -1;
    if ((s = arg_get(specs, n, "batch")) && parse_int("batch", s, 1, 1 << 20, &batch, err)) return -1;
    if ((s = arg_get(specs, n, "head-chunk")) && parse_int("head-chunk", s, 1, 1 << 24, &chunk, err)) return -1;
    if (batch * seq_len > ENGINE_MAX_TOKENS)
        return gk_fail(err, GK_EUSAGE, "--batch x --seq-len: %lld x %lld tokens per micro-batch exceed the %lld one pass holds",
                       batch, seq_len, ENGINE_MAX_TOKENS);
    engine_backend backend;
    if (engine_backend_names(arg_get(specs, n, "device"), arg_get(specs, n, "precision"), "--device/--precision",
                             &backend, err)) // a plan: cuda plans in a build without CUDA too
        return -1;
    device_plan dev, *d = info_device_wanted(specs, n) ? &dev : NULL;
    if (d && info_device_parse(specs, n, backend, d, err)) return -1;
    if (backend.device == DEVICE_CPU) chunk = 0; // tiled over the vocabulary
    bool bf16 = backend.precision == PRECISION_BF16;
    model_config cfg;
    model_plan plan;
    if (model_config_load(path, &cfg, err)) return -1;
    if (model_plan_compute(&cfg, (int)batch, (int)seq_len, (int)chunk, bf16, &plan, err)) return -1;
    if (d && info_device_compute(d, &cfg, &plan, (int)batch, (int)seq_len, err)) return -1;
    if (arg_flag(specs, n, "json")) {
        print_json(&cfg, &plan, (int)batch, (int)seq_len, d);
        return 0;
    }
    print_model(path, &cfg, &plan, (int)seq_len);
    if (d) info_device_print_text(d, (int)batch, (int)seq_len); // in place of the one-process plan
    else print_memory(&plan, (int)batch, (int)seq_len, bf16);
    return 0;
}
