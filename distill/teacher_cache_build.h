// Writing a teacher cache (`gemmakd teacher-logits`): the teacher runs forward
// over every training window of the token shards (the loader's windows and
// document masking), and each segment of windows becomes one HDF5 file
// (format: distill/teacher_cache.h), written under a temporary name and
// renamed when complete. A rerun skips the segments already there (after
// checking that their attributes match this run) and redoes the others, so a
// killed run resumes; parts (--part i/n) split the segments between jobs.
// Under mpirun the ranks split each segment into contiguous blocks of its
// batches (the batches one process forms), rank 0 gathers the rows and alone
// looks at and writes OUT: the files are the bytes one process writes.
// Also the per-row math (top-k with leftover mass; sampling), exposed for tests.
#ifndef GK_TEACHER_CACHE_BUILD_H
#define GK_TEACHER_CACHE_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "distill/teacher_cache.h"
#include "model/engine.h"

typedef struct {
    const char *teacher_dir;
    const char *const *data;  // token shard files or glob patterns
    size_t n_data;
    size_t seq_len;
    teacher_cache_method method;
    int k;                    // top-k: ids per row (<= vocab); sample: draws per row; 1..SPARSE_MAX_K
    double temperature;       // > 0
    uint64_t seed;            // sample
    int part, n_parts;        // writes the segments g (numbered over all shards) with g % n_parts == part
    int batch;                // windows per teacher forward (>= 1)
    const char *out_dir;      // created if missing
    uint64_t segment_windows; // 0: about 64 MB of uncompressed data per segment
    int logprob_bytes;        // 2: float16, 4: float32
    bool progress;            // progress line on stderr (rank 0's)
    engine_backend backend;   // where the teacher runs
} teacher_cache_job;

typedef struct {
    uint64_t segments_written, segments_present; // of this part's segments (counted on rank 0)
    uint64_t windows, tokens;                    // computed by this run (all ranks)
    uint64_t bytes;                              // size of the files written (on rank 0)
    double seconds;                              // wall time of the whole run
    double teacher_seconds;                      // of which forward + head + rows (the slowest rank's)
} teacher_cache_build_stats;

// Environment hook for tests: GEMMAKD_TEST_KILL_AFTER_SEGMENTS=N raises
// SIGKILL right after this process has completed its N-th segment.
int teacher_cache_build(const teacher_cache_job *job, teacher_cache_build_stats *st, gk_err *err);

// ---------------------------------------------------------------- one row

typedef struct {
    float value;
    int32_t id;
} teacher_cand;

// Work space for one row: V and k as passed to alloc.
typedef struct {
    float *expv;         // [V] exp((l - max) / tau)
    double *blocks;      // [ceil(V / 256)] sums of expv per block of 256 ids
    teacher_cand *heap;  // [k]
    double *targets;     // [k]
} teacher_row_work;

int teacher_row_work_alloc(teacher_row_work *w, int V, int k, gk_err *err);
void teacher_row_work_free(teacher_row_work *w);

// Top-k of softmax(logits / tau) over logits[V]: ids[k] by logit descending,
// equal logits by smaller id; logprobs[k] = l_i / tau - logsumexp(l / tau);
// *leftover = the probability of the other ids, summed directly (accurate when
// it is tiny). Returns -1 when the row is not finite.
int teacher_topk_row(const float *logits, int V, double tau, int k, teacher_row_work *w, uint32_t *ids,
                     float *logprobs, float *leftover);
// k draws from softmax(logits / tau) with the uniforms hash_uniform(key, j):
// the distinct ids ascending in ids[0..n), their counts (summing to k) and
// log-probs; slots n..k-1 get id 0, count 0, log-prob 0. Returns n, or -1
// when the row is not finite.
int teacher_sample_row(const float *logits, int V, double tau, int k, uint64_t key, teacher_row_work *w,
                       uint32_t *ids, float *logprobs, uint16_t *counts);

#endif
