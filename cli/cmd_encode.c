// gemmakd encode / decode: the tokenizer round trip from the command line
// (data/tokenizer/tokenizer.h), and `encode --bench`, which times encoding.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/file.h"
#include "common/strbuf.h"
#include "common/timer.h"
#include "data/tokenizer/tokenizer.h"

static int print_ids(const int32_t *ids, const size_t *offsets, size_t n, gk_err *err) {
    strbuf sb = {0};
    sb_puts(&sb, offsets ? "{\"ids\": [" : "[");
    for (size_t i = 0; i < n; i++) sb_printf(&sb, i ? ", %d" : "%d", ids[i]);
    if (offsets) {
        sb_puts(&sb, "], \"offsets\": [");
        for (size_t i = 0; i < n; i++) sb_printf(&sb, i ? ", [%zu, %zu]" : "[%zu, %zu]", offsets[2 * i], offsets[2 * i + 1]);
        sb_puts(&sb, "]");
    }
    sb_puts(&sb, offsets ? "}\n" : "]\n");
    int rc = sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory printing %zu ids", n) : 0;
    if (rc == 0 && fwrite(sb.data, 1, sb.len, stdout) != sb.len) rc = gk_fail(err, GK_EIO, "cannot write to stdout");
    sb_free(&sb);
    return rc;
}

// Encodes the documents of `text` (split at `separator`, as Python's str.split)
// `rounds` times across the OpenMP threads and prints the throughput.
static int bench(const tokenizer *t, const char *text, size_t len, const char *separator, long long rounds,
                 double load_seconds, gk_err *err) {
    typedef struct {
        size_t start, len;
    } span;
    span *docs = NULL; // [n_docs]
    size_t n_docs = 0, cap = 0, sep = strlen(separator), bytes = 0;
    for (size_t at = 0;;) {
        const char *hit = sep ? memmem(text + at, len - at, separator, sep) : NULL;
        size_t end = hit ? (size_t)(hit - text) : len;
        if (n_docs == cap) {
            cap = cap ? 2 * cap : 1024;
            span *g = realloc(docs, cap * sizeof *g);
            if (!g) {
                free(docs);
                return gk_fail(err, GK_ENOMEM, "out of memory splitting the text");
            }
            docs = g;
        }
        docs[n_docs++] = (span){at, end - at};
        bytes += end - at;
        if (!hit) break;
        at = end + sep;
    }
    long long tokens = 0, failures = 0;
    double t0 = 0;
    for (long long r = -1; r < rounds; r++) { // round -1 warms up
        if (r == 0) t0 = now_seconds(), tokens = 0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : tokens, failures)
        for (size_t i = 0; i < n_docs; i++) {
            int32_t *ids;
            size_t n;
            gk_err e = {0};
            if (tokenizer_encode(t, text + docs[i].start, docs[i].len, false, &ids, NULL, &n, &e)) {
                failures++;
                continue;
            }
            tokens += (long long)n;
            free(ids);
        }
    }
    double s = now_seconds() - t0;
    free(docs);
    if (failures) return gk_fail(err, GK_EINPUT, "%lld documents failed to encode", failures);
    double mb = (double)bytes * (double)rounds / 1e6;
    printf("encoded %zu documents (%.3f MB) x %lld with %d threads in %.3f s: %.2f MB/s, %.0f tokens/s "
           "(tokenizer loaded in %.3f s)\n",
           n_docs, (double)bytes / 1e6, rounds, omp_get_max_threads(), s, mb / s, (double)tokens / s, load_seconds);
    return 0;
}

int cmd_encode(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"tokenizer", "FILE", "tokenizer.json or tokenizer.model", NULL},
        {"text", "S", "the text to encode", NULL},
        {"text-file", "FILE", "encode the bytes of FILE", NULL},
        {"add-bos", NULL, "add <bos> (tokenizer.json: what its post_processor adds)", NULL},
        {"offsets", NULL, "print {\"ids\": [...], \"offsets\": [[start, end], ...]}: each token's input bytes", NULL},
        {"bench", "N", "speed check: encode the documents N times (no ids printed) and print MB/s", NULL},
        {"bench-separator", "S", "with --bench: documents are split at S (default: a blank line; '' = one document)",
         NULL},
        {"threads", "N", "threads for --bench (default: all cores)", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    static const char *usage = "gemmakd encode --tokenizer FILE (--text S | --text-file FILE) [--add-bos] [--offsets] "
                               "[--bench N [--bench-separator S] [--threads N]]";
    int rc = args_parse(argc, argv, usage, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *path = arg_get(specs, n, "tokenizer"), *text = arg_get(specs, n, "text"),
               *file = arg_get(specs, n, "text-file"), *bench_s = arg_get(specs, n, "bench"),
               *sep = arg_get(specs, n, "bench-separator");
    if (!path) return gk_fail(err, GK_EUSAGE, "encode needs --tokenizer (usage: %s)", usage);
    if (!text == !file) return gk_fail(err, GK_EUSAGE, "encode needs exactly one of --text and --text-file");
    long long rounds = 0;
    if (bench_s && parse_int("bench", bench_s, 1, 1000000, &rounds, err)) return -1;
    if (sep && !bench_s) return gk_fail(err, GK_EUSAGE, "--bench-separator goes with --bench");
    if (set_threads(arg_get(specs, n, "threads"), err)) return -1;
    char *data = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && file_read_all(file, &data, &len, err)) return -1;
    tokenizer *t = NULL;
    double t0 = now_seconds();
    rc = tokenizer_load(path, &t, err);
    double load_seconds = now_seconds() - t0;
    const char *src = file ? data : text;
    if (rc == 0 && bench_s) {
        rc = bench(t, src, len, sep ? sep : "\n\n", rounds, load_seconds, err);
    } else if (rc == 0) {
        int32_t *ids = NULL;
        size_t *offsets = NULL, count;
        bool want_offsets = arg_flag(specs, n, "offsets");
        rc = tokenizer_encode(t, src, len, arg_flag(specs, n, "add-bos"), &ids, want_offsets ? &offsets : NULL, &count, err);
        if (rc == 0) rc = print_ids(ids, offsets, count, err);
        free(ids);
        free(offsets);
    }
    tokenizer_free(t);
    free(data);
    return rc;
}

int cmd_decode(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"tokenizer", "FILE", "tokenizer.json or tokenizer.model", NULL},
        {"ids", "IDS", "token ids, e.g. 2,651,10 or [2, 651, 10]", NULL},
        {"ids-file", "FILE", "file of token ids (commas, whitespace or a JSON array)", NULL},
        {"skip-special", NULL, "leave out special tokens (tokenizer.json; .model always drops control pieces)", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    static const char *usage = "gemmakd decode --tokenizer FILE (--ids IDS | --ids-file FILE) [--skip-special]";
    int rc = args_parse(argc, argv, usage, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *path = arg_get(specs, n, "tokenizer"), *list = arg_get(specs, n, "ids"), *file = arg_get(specs, n, "ids-file");
    if (!path) return gk_fail(err, GK_EUSAGE, "decode needs --tokenizer (usage: %s)", usage);
    if (!list == !file) return gk_fail(err, GK_EUSAGE, "decode needs exactly one of --ids and --ids-file");
    char *data = NULL;
    size_t len;
    if (file && file_read_all(file, &data, &len, err)) return -1;
    int64_t *ids64 = NULL;
    size_t count = 0;
    rc = parse_id_list(file ? "ids-file" : "ids", file ? data : list, &ids64, &count, err);
    if (rc && file) { // a bad file is bad input, not a bad flag
        gk_wrap(err, "%s", file);
        err->code = GK_EINPUT;
    }
    free(data);
    if (rc) return -1;
    tokenizer *t = NULL;
    char *text = NULL;
    size_t text_len = 0;
    int32_t *ids = malloc((count + 1) * sizeof *ids);
    rc = ids ? tokenizer_load(path, &t, err) : gk_fail(err, GK_ENOMEM, "out of memory for %zu ids", count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (ids64[i] >= tokenizer_vocab_size(t))
            rc = gk_fail(err, GK_EINPUT, "token %lld at position %zu is outside the vocabulary of %s (%d ids)",
                         (long long)ids64[i], i, path, tokenizer_vocab_size(t));
        else
            ids[i] = (int32_t)ids64[i];
    }
    free(ids64);
    if (rc == 0) rc = tokenizer_decode(t, ids, count, arg_flag(specs, n, "skip-special"), &text, &text_len, err);
    if (rc == 0 && (fwrite(text, 1, text_len, stdout) != text_len || fputc('\n', stdout) == EOF))
        rc = gk_fail(err, GK_EIO, "cannot write to stdout");
    free(text);
    free(ids);
    tokenizer_free(t);
    return rc;
}
