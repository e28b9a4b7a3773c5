// The teacher-logit cache: sparse teacher rows (top-k or sampled ids with
// log-probs) stored in HDF5 beside the token shards, and the reader that the
// trainer uses for the sparse objectives (distill/objectives.h). The writer
// (`gemmakd teacher-logits`) is in distill/teacher_cache_build.h.
//
// Layout. A cache is a directory of segment files. Each covers the windows
// [first, end) of one token shard (the loader's windows, data/loader.h):
//   DIR/<shard file stem>.<first:06>-<end:06>.h5
// Row r = (w - first) * seq_len + t holds window w's position t, the teacher's
// distribution for the token that follows input position t (predicting shard
// token w*seq_len + t + 1), with the same per-document attention as training.
//
// Datasets (rows = n_windows * seq_len, k = the attribute):
//   /ids       uint32 [rows, k]   top-k: by log-prob descending, ties by smaller id;
//                                 sample: the distinct drawn ids ascending, then 0s
//   /logprobs  float16 [rows, k]  (float32 with --logprob-dtype float32) teacher
//                                 log-softmax(logits / temperature) of each id; 0 in unused slots
//   /leftover  float32 [rows]     top-k only: teacher mass outside the k ids, summed directly
//   /counts    uint8 [rows, k]    sample only (uint16 when k > 255): draws per id, 0 = unused
//                                 slot; a row's counts sum to k
// Chunks hold whole windows ([windows_per_chunk * seq_len, k], about 64 KiB of
// ids), so reading one window decompresses one chunk; filters: byte shuffle,
// then zstd level 3 (HDF5 filter 32015; h5py reads it after `import hdf5plugin`).
//
// Root attributes (strings are variable-length UTF-8; integers int64 unless noted):
//   format "gemmakd-teacher-cache", format_version 1, method "topk" | "sample",
//   k, seq_len, temperature (float64), seed (uint64, sample only), teacher (the
//   directory as given), teacher_sha256 (teacher_fingerprint below), teacher_precision
//   ("fp32" | "bf16": what computed the logits; absent in older files = "fp32"), final_softcap
//   (float64), vocab_size, tokenizer_sha256, token_shard (file name), token_shard_sha256
//   (sha256 of the shard file's bytes), first_window, n_windows, shard_windows,
//   segment_windows (uint64: the segment size of the run), created_by.
//
// Sampling: draw j (0 <= j < k) of position t of window w uses
//   u = hash_uniform(teacher_draw_key(seed, shard_key, w, t), j)   (common/rng.h)
// with shard_key = the first 16 hex digits of token_shard_sha256, so a draw
// depends on the shard's contents but not on threads, batches, parts or resumes.
// The draw is id i when C(i-1) <= u * S < C(i), C the running sum of
// exp((l - max l) / temperature) in id order and S its total.
#ifndef GK_TEACHER_CACHE_H
#define GK_TEACHER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "data/loader.h"
#include "distill/objectives.h"

#define TEACHER_CACHE_FORMAT "gemmakd-teacher-cache"

enum { TEACHER_CACHE_FORMAT_VERSION = 1 };

typedef enum { TEACHER_CACHE_TOPK, TEACHER_CACHE_SAMPLE } teacher_cache_method;

// "topk" / "sample"; parse returns -1 for other names.
const char *teacher_cache_method_name(teacher_cache_method m);
int teacher_cache_method_parse(const char *name, teacher_cache_method *out);

// What every segment of one cache shares.
typedef struct {
    teacher_cache_method method;
    int k;                      // ids per row (top-k) or draws per row (sample), 1..SPARSE_MAX_K
    uint64_t seq_len;
    double temperature;
    uint64_t seed;              // sample only (0 for top-k)
    char teacher[1024];         // teacher directory as given to the writer
    char teacher_sha256[65];
    char teacher_precision[8];  // "fp32" | "bf16"
    double final_softcap;
    int64_t vocab_size;
    char tokenizer_sha256[65];
    uint64_t segment_windows;
} teacher_cache_meta;

// ---------------------------------------------------------------- reader
//
// Use (trainer, one thread for the reads; the rows are then read-only):
//   teacher_cache *cache;
//   teacher_cache_expect e = {tokenizer_sha256, vocab_size, 0, kd.temperature, TEACHER_CACHE_TOPK};
//   teacher_cache_open(&cache, dir, train_loader, &e, err);
//   teacher_cache_rows rows;
//   teacher_cache_rows_alloc(cache, micro_batch, &rows, err);
//   kd_head_use_cache(&kd, SPARSE_TOPK_BUCKET, &rows, err);      // distill/kd_head.h
//   each micro-batch: loader_next(...); teacher_cache_batch(cache, batch, &rows, err);
//                     engine_forward(...); head = kd_head_loss(&kd, true); engine_head(student, &head, ...)
//   teacher_cache_rows_free(&rows); teacher_cache_close(cache);

typedef struct teacher_cache teacher_cache;

// What the run expects; open fails with both values named when the cache differs.
typedef struct {
    const char *tokenizer_sha256; // NULL: not checked
    int64_t vocab_size;           // 0: not checked
    size_t seq_len;               // 0: the loader's (any other value must equal the loader's)
    double temperature;           // must match (relative 1e-9); 0: not checked
    teacher_cache_method method;
    bool any_method;              // accept either method (then read it from teacher_cache_info)
} teacher_cache_expect;

// Finds DIR/*.h5, reads every segment's attributes and dataset shapes, and
// checks: the expectations; that segments agree with each other (teacher,
// method, k, ...); for every loader shard, that the segments made from a file
// of that name were made from these bytes (sha256) and cover each of its
// windows exactly once (a gap or an overlap names the shard and the windows).
// Segments of shards the loader does not hold are ignored. Hashes the loader's
// shard files (in parallel); nothing stays open but the directory listing.
int teacher_cache_open(teacher_cache **c, const char *dir, loader *l, const teacher_cache_expect *e, gk_err *err);
void teacher_cache_close(teacher_cache *c);
const teacher_cache_meta *teacher_cache_info(const teacher_cache *c);

// Rows for `windows` windows of T positions: storage and the sparse_row views.
typedef struct {
    size_t windows, T;
    int k;
    int32_t *ids;      // [windows*T, k]
    float *logprobs;   // [windows*T, k]
    float *counts;     // [windows*T, k] (sample) or NULL
    float *leftover;   // [windows*T] (top-k) or NULL
    sparse_row *rows;  // [windows*T]: row slot*T + t views the entries above
    void *raw;         // [T, k] staging for one window's file values
    int32_t *sorted;   // [k] a row's ids, sorted to find repeats
} teacher_cache_rows;

int teacher_cache_rows_alloc(const teacher_cache *c, size_t windows, teacher_cache_rows *r, gk_err *err);
void teacher_cache_rows_free(teacher_cache_rows *r);

// Reads window `window` of loader shard `shard` into rows slot*T .. slot*T+T-1.
// Validates what it reads (ids < vocab and distinct within a row, counts summing to k,
// finite values, probabilities (with the leftover) summing to at most 1 up to rounding);
// errors name the file, the row and its window and position.
// Not thread-safe (HDF5): call from one thread. Keeps up to 64 segment files open.
int teacher_cache_window(teacher_cache *c, size_t shard, uint64_t window, teacher_cache_rows *r, size_t slot,
                         gk_err *err);
// Reads rows 0..b->batch_size-1 of a loader batch into slots 0..batch_size-1.
int teacher_cache_batch(teacher_cache *c, const loader_batch *b, teacher_cache_rows *r, gk_err *err);
// Row i = slot * T + t of a filled teacher_cache_rows; -1 past its end.
// Thread-safe: it only hands out pointers.
int teacher_cache_row(const teacher_cache_rows *r, size_t row, sparse_row *out);

// ---------------------------------------------------------------- shared


// A cheap fingerprint of a model directory: sha256 over config.json's bytes, then
// for each weight file (model.safetensors, or model.safetensors.index.json and
// the files its weight_map names, in name order): its name, NUL, its size (8
// bytes LE), its first 8 + N bytes (the safetensors header) and 64 blocks of 4
// KiB spaced evenly over the rest (all of it when smaller). Changes whenever the
// config, a tensor's name/shape/dtype or (in practice) any retraining does.
int teacher_fingerprint(const char *dir, char hex[65], gk_err *err);

// The sampling key of position t of window w (see above).
uint64_t teacher_draw_key(uint64_t seed, uint64_t shard_key, uint64_t window, uint64_t t);
// shard_key from a sha256 hex string: its first 16 hex digits.
uint64_t teacher_shard_key(const char *sha256_hex);

#endif
