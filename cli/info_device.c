#include "cli/info_device.h"

#include <stdio.h>
#include <string.h>

#include "model/config.h"

static const double GIB = 1024.0 * 1024 * 1024;

const char *info_grouped(size_t v, char *buf) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

bool info_device_wanted(const arg_spec *specs, int n) {
    static const char *names[] = {"ranks", "zero", "ema", "teacher", "teacher-precision", "device-memory"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (arg_get(specs, n, names[i])) return true;
    return false;
}

// --teacher and --teacher-precision: the teacher runs on the student's device.
static int parse_teacher(const arg_spec *specs, int n, engine_backend student, device_plan *d, gk_err *err) {
    const char *t = arg_get(specs, n, "teacher"), *prec = arg_get(specs, n, "teacher-precision");
    d->teacher_cached = t && !strcmp(t, "cache");
    d->teacher = t && !d->teacher_cached ? t : NULL;
    if (prec && !d->teacher)
        return gk_fail(err, GK_EUSAGE, "--teacher-precision: needs --teacher CONFIG (an in-process teacher)");
    engine_backend tb;
    if (engine_backend_names(engine_device_name(student.device), prec ? prec : engine_precision_name(student.precision),
                             "--teacher-precision", &tb, err))
        return -1;
    d->teacher_bf16 = tb.precision == PRECISION_BF16;
    return 0;
}

int info_device_parse(const arg_spec *specs, int n, engine_backend student, device_plan *d, gk_err *err) {
    memset(d, 0, sizeof *d);
    long long ranks = 1, zero = 0;
    const char *s;
    if ((s = arg_get(specs, n, "ranks")) && parse_int("ranks", s, 1, 1 << 20, &ranks, err)) return -1;
    if ((s = arg_get(specs, n, "zero")) && parse_int("zero", s, 0, 1, &zero, err)) return -1;
    if ((s = arg_get(specs, n, "device-memory")) && parse_size("device-memory", s, &d->device_memory, err)) return -1;
    d->device_memory_text = s;
    d->setup = (rank_setup){.ranks = (int)ranks, .zero = zero == 1, .bf16 = student.precision == PRECISION_BF16,
                            .cuda = student.device == DEVICE_CUDA, .ema = arg_flag(specs, n, "ema")};
    return parse_teacher(specs, n, student, d, err);
}

int info_device_compute(device_plan *d, const model_config *cfg, const model_plan *student, int batch, int seq_len,
                        gk_err *err) {
    if (d->teacher) {
        model_config tc;
        if (model_config_load(d->teacher, &tc, err)) return gk_wrap(err, "--teacher");
        if (tc.vocab_size != cfg->vocab_size) // the distillation head compares the two rows id by id
            return gk_fail(err, GK_EUSAGE, "--teacher: %s has a vocabulary of %d, the student's is %d", d->teacher,
                           tc.vocab_size, cfg->vocab_size);
        if (model_plan_forward(&tc, batch, seq_len, d->teacher_bf16, &d->teacher_plan, err)) return gk_wrap(err, "--teacher");
    }
    return rank_plan_compute(student, d->teacher ? &d->teacher_plan : NULL, &d->setup, &d->plan, err);
}

// "fits in 80GB       yes: 12.345 GiB free" or "no: 3.210 GiB short".
static void print_fit(const device_plan *d) {
    if (!d->device_memory) return;
    const rank_plan *r = &d->plan;
    bool fits = r->bytes_total <= d->device_memory;
    size_t gap = fits ? d->device_memory - r->bytes_total : r->bytes_total - d->device_memory;
    printf("  fits in %-10s %s: %.3f GiB %s (of %.3f GiB)\n", d->device_memory_text, fits ? "yes" : "no", gap / GIB,
           fits ? "free" : "short", d->device_memory / GIB);
}

static void print_teacher(const device_plan *d) {
    const rank_plan *r = &d->plan;
    char a[40];
    if (!d->teacher) {
        printf("  teacher           %s: nothing on the device\n",
               d->teacher_cached ? "a teacher cache (read on the host)" : "none in process (scratch or a cache)");
        return;
    }
    printf("  teacher weights   %8.3f GiB (%s, %s parameters, whole on every rank)\n", r->bytes_teacher_weights / GIB,
           d->teacher_bf16 ? "bf16" : "float32", info_grouped(d->teacher_plan.params_total, a));
    printf("  teacher forward   %8.3f GiB (one layer's buffers reused, its final hidden states, a float32 logits tile)\n",
           r->bytes_teacher_activations / GIB);
}

void info_device_print_text(const device_plan *d, int batch, int seq_len) {
    const rank_setup *s = &d->setup;
    const rank_plan *r = &d->plan;
    const char *whole = s->ranks > 1 ? "whole on every rank" : "whole";
    char a[40];
    printf("memory per device, %d rank%s, ZeRO-%d, %s on %s, %d x %d tokens per micro-batch per rank\n", s->ranks,
           s->ranks > 1 ? "s" : "", s->zero, s->bf16 ? "bf16" : "float32", s->cuda ? "cuda" : "cpu", batch, seq_len);
    if (s->zero) printf("  rank 0's block    %s parameters (the largest of %d)\n", info_grouped(r->shard, a), s->ranks);
    printf("  weights           %8.3f GiB (%s, %s)\n", r->bytes_weights / GIB,
           s->bf16 ? "bf16, what the products read" : "float32, the master weights", whole);
    if (s->bf16)
        printf("  master weights    %8.3f GiB (float32, %s)\n", r->bytes_master / GIB,
               r->master_sharded ? "rank 0's block" : s->cuda ? whole : "whole, on the host");
    printf("  gradients         %8.3f GiB (%s, %s)\n", r->bytes_grads / GIB, s->bf16 ? "bf16" : "float32", whole);
    printf("  AdamW m and v     %8.3f GiB (float32, %s)\n", r->bytes_adamw / GIB, s->zero ? "rank 0's block" : whole);
    if (s->ema) printf("  EMA               %8.3f GiB (float32, %s)\n", r->bytes_ema / GIB, s->zero ? "rank 0's block" : whole);
    printf("  state             %8.3f GiB (the lines above)\n", r->bytes_state / GIB);
    printf("  activations       %8.3f GiB (one micro-batch)\n", r->bytes_activations / GIB);
    print_teacher(d);
    printf("  total             %8.3f GiB\n", r->bytes_total / GIB);
    print_fit(d);
}

void info_device_print_json(const device_plan *d) {
    const rank_setup *s = &d->setup;
    const rank_plan *r = &d->plan;
    printf(", \"ranks\": %d, \"zero\": %d, \"device\": \"%s\", \"precision\": \"%s\", \"ema\": %s, \"shard_params\": %zu, "
           "\"master_sharded\": %s",
           s->ranks, s->zero, s->cuda ? "cuda" : "cpu", s->bf16 ? "bf16" : "fp32", s->ema ? "true" : "false", r->shard,
           r->master_sharded ? "true" : "false");
    printf(", \"per_device\": {\"weights\": %zu, \"master\": %zu, \"grads\": %zu, \"adamw\": %zu, \"ema\": %zu, "
           "\"state\": %zu, \"activations\": %zu, \"teacher_weights\": %zu, \"teacher_activations\": %zu}",
           r->bytes_weights, r->bytes_master, r->bytes_grads, r->bytes_adamw, r->bytes_ema, r->bytes_state,
           r->bytes_activations, r->bytes_teacher_weights, r->bytes_teacher_activations);
    if (d->teacher) // its path is the caller's own --teacher
        printf(", \"teacher\": \"in_process\", \"teacher_params\": %zu, \"teacher_precision\": \"%s\"",
               d->teacher_plan.params_total, d->teacher_bf16 ? "bf16" : "fp32");
    else printf(", \"teacher\": \"%s\", \"teacher_params\": 0", d->teacher_cached ? "cache" : "none");
    printf(", \"bytes_per_device\": %zu", r->bytes_total);
    if (!d->device_memory) {
        printf(", \"device_memory\": null, \"fits\": null");
        return;
    }
    bool fits = r->bytes_total <= d->device_memory;
    // bytes_free < 0: short by that much
    printf(", \"device_memory\": %zu, \"fits\": %s, \"bytes_free\": %lld", d->device_memory, fits ? "true" : "false",
           (long long)d->device_memory - (long long)r->bytes_total);
}
