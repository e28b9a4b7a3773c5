// gemmakd teacher-logits: run a teacher over token shards and write the HDF5
// teacher cache (distill/teacher_cache_build.h; format: distill/teacher_cache.h).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/backend_flags.h"
#include "cli/commands.h"
#include "common/dist.h"
#include "distill/teacher_cache_build.h"

static const char *USAGE = "gemmakd teacher-logits --teacher DIR --data SHARDS --seq-len T --method topk|sample --k K "
                           "--out DIR [--temperature TAU] [--seed S] [--part i/n] [--batch B] [--threads N] "
                           "[--device cpu|cuda] [--precision fp32|bf16]";

static int parse_part(const char *s, int *part, int *n_parts, gk_err *err) {
    int i, n, used = 0;
    if (sscanf(s, "%d/%d%n", &i, &n, &used) != 2 || s[used] || n < 1 || i < 0 || i >= n || n > 1000000)
        return gk_fail(err, GK_EUSAGE, "--part: expected i/n with 0 <= i < n (e.g. 0/4), got '%s'", s);
    *part = i;
    *n_parts = n;
    return 0;
}

int cmd_teacher_logits(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"teacher", "DIR", "teacher model directory (config.json + safetensors; its tokenizer must be the shards')", NULL},
        {"data", "SHARDS", "token shards: comma-separated files or glob patterns", NULL},
        {"seq-len", "T", "window length, as in the training run's data.seq_len", NULL},
        {"method", "M", "topk (the k most likely ids + leftover mass) or sample (k draws: ids + counts)", NULL},
        {"k", "K", "ids per position (topk) or draws per position (sample), 1..1024", NULL},
        {"out", "DIR", "cache directory (created; a rerun resumes, skipping finished segments)", NULL},
        {"temperature", "TAU", "teacher temperature of the stored log-probs and of the draws (default 1)", NULL},
        {"seed", "S", "sampling seed (default 0)", NULL},
        {"part", "i/n", "write only segments i, i+n, i+2n, ... (n jobs share the work; default 0/1; under mpirun the "
                        "ranks split each segment of the part)", NULL},
        {"batch", "B", "windows per teacher forward (default 8)", NULL},
        {"segment-windows", "N", "windows per segment file (default: about 64 MB of data per file)", NULL},
        {"logprob-dtype", "D", "float16 (default) or float32", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
        BACKEND_FLAG_SPECS,
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, USAGE, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    teacher_cache_job job = {.teacher_dir = arg_get(specs, n, "teacher"), .out_dir = arg_get(specs, n, "out"),
                             .temperature = 1.0, .n_parts = 1, .batch = 8, .logprob_bytes = 2, .progress = true};
    const char *data = arg_get(specs, n, "data"), *method = arg_get(specs, n, "method"), *s;
    const char *seq_len = arg_get(specs, n, "seq-len"), *k = arg_get(specs, n, "k");
    if (!job.teacher_dir || !data || !seq_len || !method || !k || !job.out_dir)
        return gk_fail(err, GK_EUSAGE, "teacher-logits needs --teacher, --data, --seq-len, --method, --k and --out (usage: %s)",
                       USAGE);
    if (teacher_cache_method_parse(method, &job.method))
        return gk_fail(err, GK_EUSAGE, "--method: expected topk or sample, got '%s'", method);
    long long v;
    if (parse_int("seq-len", seq_len, 1, 1 << 20, &v, err)) return -1;
    job.seq_len = (size_t)v;
    if (parse_int("k", k, 1, SPARSE_MAX_K, &v, err)) return -1;
    job.k = (int)v;
    if ((s = arg_get(specs, n, "temperature")) && (parse_double("temperature", s, &job.temperature, err) ||
                                                   !(job.temperature > 0 && job.temperature < 1e6)))
        return gk_fail(err, GK_EUSAGE, "--temperature: expected a number > 0, got '%s'", s);
    if ((s = arg_get(specs, n, "seed"))) {
        char *end;
        job.seed = strtoull(s, &end, 10);
        if (!*s || *end || *s == '-') return gk_fail(err, GK_EUSAGE, "--seed: expected a non-negative integer, got '%s'", s);
    }
    if ((s = arg_get(specs, n, "part")) && parse_part(s, &job.part, &job.n_parts, err)) return -1;
    if ((s = arg_get(specs, n, "batch"))) {
        if (parse_int("batch", s, 1, 4096, &v, err)) return -1;
        job.batch = (int)v;
    }
    if ((s = arg_get(specs, n, "segment-windows"))) {
        if (parse_int("segment-windows", s, 1, 1LL << 40, &v, err)) return -1;
        job.segment_windows = (uint64_t)v;
    }
    if ((s = arg_get(specs, n, "logprob-dtype"))) {
        if (strcmp(s, "float16") && strcmp(s, "float32"))
            return gk_fail(err, GK_EUSAGE, "--logprob-dtype: expected float16 or float32, got '%s'", s);
        job.logprob_bytes = strcmp(s, "float16") ? 4 : 2;
    }
    if (set_threads(arg_get(specs, n, "threads"), err) || backend_from_flags(specs, n, &job.backend, err)) return -1;
    char *list = NULL;
    const char **files = NULL;
    rc = split_commas("data", data, &list, &files, &job.n_data, err);
    job.data = files;
    teacher_cache_build_stats st;
    if (rc == 0) rc = teacher_cache_build(&job, &st, err);
    if (rc == 0 && dist_is_root()) { // the job's summary, once
        printf("teacher-logits: %" PRIu64 " segment(s) written, %" PRIu64 " already present (part %d/%d) in %s; "
               "%" PRIu64 " windows, %" PRIu64 " tokens in %.1f s (teacher %.0f tokens/s); %.2f MB written, %.2f bytes/token\n",
               st.segments_written, st.segments_present, job.part, job.n_parts, job.out_dir, st.windows, st.tokens,
               st.seconds, st.teacher_seconds > 0 ? (double)st.tokens / st.teacher_seconds : 0.0, (double)st.bytes / 1e6,
               st.tokens ? (double)st.bytes / (double)st.tokens : 0.0);
    }
    free(list);
    free(files);
    return rc;
}
