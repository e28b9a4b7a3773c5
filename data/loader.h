// The batch loader: training windows over a set of token shards, in a
// deterministic (optionally shuffled) order per epoch, with a resumable cursor.
//
// A shard with n tokens has (n - 1) / seq_len windows; window w covers tokens
// [w*T, w*T + T + 1) (T = seq_len): inputs are its first T tokens, targets its
// last T, and consecutive windows share one token. Windows never cross shards;
// a shard shorter than T + 1 tokens has none. Global window ids number the
// windows shard by shard (shards sorted by path).
//
// Order: without shuffle, epoch after epoch of 0, 1, ..., N-1. With shuffle,
// epoch e visits window perm_e(i) at position i, where perm_e is a bijection
// of [0, N) drawn from (seed, e): a 6-round Feistel network keyed by
// hash64(seed) ^ hash64(e), cycle-walked into [0, N). It needs no memory, any
// position is computed directly (cheap resume), and it depends on nothing but
// (seed, e, N) -- not on threads or batch size.
//
// Cost: each window is one shard_read_tokens (+ shard_read_mask) of T + 1
// values. Unshuffled, the per-dataset chunk cache makes that a copy; shuffled,
// a window decompresses the one or two 256 KiB chunks it touches (about
// 0.1-0.3 ms each), so a batch of B windows costs ~B x 0.3 ms. All shards stay
// open: each holds one file descriptor, its doc_starts (8 B per document), and
// up to 1.25 MiB of chunk cache once read from (1 MiB for /tokens, 256 KiB for
// /loss_mask), so 100 shards cost ~125 MiB of cache at most.
//
// Not thread-safe (the HDF5 library is the serial build): call from one thread.
#ifndef GK_LOADER_H
#define GK_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "data/shards.h"

typedef struct {
    size_t seq_len;               // T >= 1
    bool shuffle;
    uint64_t seed;
    const char *tokenizer_sha256; // every shard must have it (NULL: they must agree with each other)
    int64_t vocab_size;           // every shard must have it (0: they must agree with each other)
    int64_t max_vocab;            // > 0: the model's vocabulary; shards with a larger one are refused
    bool require_targets;         // refuse shards whose windows hold no target (loss masks of zeros)
} loader_options;

// Where the stream stands: the next window is position `index` of epoch
// `epoch`'s order. The other fields identify the stream; loader_set_cursor
// rejects a cursor whose seed, shuffle, seq_len or total_windows differ.
typedef struct {
    uint64_t epoch;
    uint64_t index;         // 0 .. total_windows-1
    uint64_t step;          // batches delivered so far
    uint64_t seed;
    uint64_t total_windows;
    uint64_t seq_len;
    bool shuffle;
} loader_cursor;

// One batch. Rows are windows; buffers are allocated for `capacity` rows.
typedef struct {
    size_t capacity;       // rows allocated
    size_t batch_size;     // B: rows filled by the last loader_next
    size_t seq_len;        // T
    int32_t *tokens;       // [capacity, T+1]: inputs tokens[b][0..T), targets tokens[b][1..T]
    int32_t *doc_begin;    // [capacity, T]: index in the window where input t's document starts (0 if before the window)
    uint8_t *target_mask;  // [capacity, T]: 1 = train on predicting tokens[b][t+1] from position t
    uint32_t *shard;       // [capacity]: index into the loader's sorted shard list
    uint64_t *window;      // [capacity]: window index within that shard (its tokens start at window*T)
    uint64_t *row_epoch;   // [capacity]: the epoch each row was drawn in
    uint64_t epoch;        // epoch of row 0
    uint64_t step;         // 0-based number of this batch
} loader_batch;

int loader_batch_alloc(loader_batch *b, size_t capacity, size_t seq_len, gk_err *err);
void loader_batch_free(loader_batch *b);
// A model's inputs from the batch, padded to B >= batch_size rows (padding: token 0,
// no targets): tokens, doc_begin [B, T] (doc_begin may be b->doc_begin itself) and
// targets [B, T] (when not NULL), the next token where target_mask is set, else -1.
void loader_batch_stage(const loader_batch *b, size_t B, int32_t *tokens, int32_t *doc_begin, int32_t *targets);
// How many targets the batch has (target_mask set).
size_t loader_batch_targets(const loader_batch *b);

typedef struct loader loader;

// Opens the shards named by paths[n_paths]: file names and glob patterns
// (sorted, duplicates removed; a pattern or name that matches nothing is an
// error naming it). Every shard is validated (shard_open) and all must share
// one tokenizer (sha256 and vocab_size); shards of a set that tokenize did not
// finish are refused (data/shard_set.h). Zero windows in total is an error; so is,
// with require_targets, no target in any window (the scan stops at the first one).
int loader_open(loader **out, const char *const *paths, size_t n_paths, const loader_options *opt, gk_err *err);
void loader_close(loader *l);

uint64_t loader_total_windows(const loader *l);
size_t loader_n_shards(const loader *l);
const shard_file *loader_shard(const loader *l, size_t i);
uint64_t loader_shard_windows(const loader *l, size_t i);
// The global window id at position `index` (< total windows) of epoch `epoch`'s order.
uint64_t loader_order(const loader *l, uint64_t epoch, uint64_t index);

// Fills rows 0..B-1 of batch (B <= capacity, batch->seq_len == T) with the
// next B windows, continuing into the next epoch's order when one ends.
// For input position t of a row starting at shard token s:
//   doc_begin[t]   = max(0, start of the document holding token s+t - s)
//   target_mask[t] = token s+t+1 is not a document start, and (chat shards)
//                    loss_mask[s+t+1] == 1.
// A token >= the shard's vocab_size is an error naming the shard and position.
// On error the loader's position is unchanged.
int loader_next(loader *l, size_t B, loader_batch *batch, gk_err *err);

// Moves past the next `windows` windows without reading them (another rank's rows) and adds
// `batches` (negative: takes some away) to the batches delivered, so every rank's cursor stays
// the one of a single process.
void loader_skip(loader *l, uint64_t windows, int64_t batches);

void loader_get_cursor(const loader *l, loader_cursor *c);
int loader_set_cursor(loader *l, const loader_cursor *c, gk_err *err);

// {"epoch":E,"index":I,"step":S,"seed":"SEED","total_windows":N,"seq_len":T,"shuffle":true}
// (the seed is a decimal string: it may exceed JSON's exact integer range).
void loader_cursor_to_json(const loader_cursor *c, strbuf *sb);
int loader_cursor_from_json(const json_value *v, loader_cursor *c, gk_err *err);
int loader_cursor_parse(const char *text, size_t len, loader_cursor *c, gk_err *err);

#endif
