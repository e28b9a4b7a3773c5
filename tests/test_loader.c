// The batch loader: every window once per epoch, deterministic orders, exact
// resumption from a saved cursor, and doc_begin / target_mask compared with a
// brute-force computation from the arrays the shards were written from.
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "data/loader.h"
#include "data/shards.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_loader";

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define VOCAB 50000

// ---------------------------------------------------------------- shard sets

typedef struct {
    uint32_t *tokens; // [n_tokens]
    uint8_t *mask;    // [n_tokens] or NULL
    uint64_t *starts; // [n_docs]
    size_t n_tokens, n_docs;
} shard_data;

typedef struct {
    char dir[64];
    char paths[8][128]; // sorted by name: s0.h5, s1.h5, ...
    shard_data data[8];
    size_t n;
} shard_set;

static void set_free(shard_set *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->data[i].tokens);
        free(set->data[i].mask);
        free(set->data[i].starts);
    }
    gk_err err;
    if (set->dir[0]) dir_remove_tree(set->dir, &err);
    memset(set, 0, sizeof *set);
}

// Adds a shard with documents of the given lengths (random tokens; a chat
// mask when with_mask) and writes it. Returns 0 or -1 with err.
static int set_add(shard_set *set, const size_t *lens, size_t n_docs, int with_mask, uint64_t seed, const char *sha,
                   gk_err *err) {
    if (!set->dir[0]) {
        if (test_scratch_dir(NULL, "loader", set->dir, sizeof set->dir))
            return gk_fail(err, GK_EIO, "cannot make a scratch directory under /tmp");
    }
    size_t k = set->n++;
    shard_data *d = &set->data[k];
    char dir[sizeof set->dir];
    memcpy(dir, set->dir, sizeof dir);
    snprintf(set->paths[k], sizeof set->paths[k], "%s/s%zu.h5", dir, k);
    size_t total = 0;
    for (size_t i = 0; i < n_docs; i++) total += lens[i];
    d->n_tokens = total;
    d->n_docs = n_docs;
    d->tokens = malloc(total * sizeof *d->tokens);
    d->mask = with_mask ? malloc(total) : NULL;
    d->starts = malloc(n_docs * sizeof *d->starts);
    rng_state r;
    rng_seed(&r, seed);
    size_t at = 0;
    for (size_t i = 0; i < n_docs; i++) {
        d->starts[i] = at;
        for (size_t j = 0; j < lens[i]; j++, at++) {
            d->tokens[at] = j == 0 ? 2 : (uint32_t)(rng_next(&r) % VOCAB);
            if (with_mask) d->mask[at] = (rng_next(&r) % 3) != 0;
        }
    }
    shard_meta m = {.vocab_size = VOCAB, .bos_id = 2, .eos_id = 1, .pad_id = 0, .has_loss_mask = with_mask,
                    .source = "test_loader", .created_by = "test_loader"};
    snprintf(m.tokenizer_sha256, sizeof m.tokenizer_sha256, "%s", sha);
    shard_writer *w;
    if (shard_writer_open(&w, set->paths[k], &m, err) < 0) return -1;
    for (size_t i = 0; i < n_docs; i++) {
        if (shard_writer_add_doc(w, d->tokens + d->starts[i], d->mask ? d->mask + d->starts[i] : NULL, lens[i], err) < 0) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// Random document lengths in 1..max_len adding up to about `tokens`.
static int set_add_random(shard_set *set, size_t tokens, size_t max_len, int with_mask, uint64_t seed, gk_err *err) {
    size_t lens[4096], n = 0, total = 0;
    rng_state r;
    rng_seed(&r, seed * 7919 + 1);
    while (total < tokens && n < 4096) {
        size_t len = 1 + rng_next(&r) % max_len;
        if (len > tokens - total) len = tokens - total;
        lens[n++] = len;
        total += len;
    }
    return set_add(set, lens, n, with_mask, seed, SHA_A, err);
}

// ---------------------------------------------------------------- reference

// Checks row b of a batch against a direct computation from the written arrays:
// the window's tokens, doc_begin from a scan over all document starts, and
// target_mask from membership in the start list and the raw loss mask.
static void check_row(test_case *tc, const shard_set *set, const loader_batch *batch, size_t b) {
    size_t T = batch->seq_len;
    const shard_data *d = &set->data[batch->shard[b]];
    uint64_t s = batch->window[b] * T;
    CHECK(tc, s + T + 1 <= d->n_tokens, "window %" PRIu64 " of shard %u runs past its end", batch->window[b],
          batch->shard[b]);
    if (tc->failed) return;
    for (size_t t = 0; t <= T && !tc->failed; t++)
        CHECK(tc, batch->tokens[b * (T + 1) + t] == (int32_t)d->tokens[s + t], "row %zu token %zu", b, t);
    for (size_t t = 0; t < T && !tc->failed; t++) {
        int32_t want_begin = 0;
        int next_is_start = 0;
        for (size_t i = 0; i < d->n_docs; i++) {
            if (d->starts[i] > s && d->starts[i] <= s + t) want_begin = (int32_t)(d->starts[i] - s);
            if (d->starts[i] == s + t + 1) next_is_start = 1;
        }
        uint8_t want_target = !next_is_start && (!d->mask || d->mask[s + t + 1]);
        CHECK(tc, batch->doc_begin[b * T + t] == want_begin, "shard %u window %" PRIu64 " t=%zu: doc_begin %d, want %d",
              batch->shard[b], batch->window[b], t, batch->doc_begin[b * T + t], want_begin);
        CHECK(tc, batch->target_mask[b * T + t] == want_target, "shard %u window %" PRIu64 " t=%zu: target %u, want %u",
              batch->shard[b], batch->window[b], t, batch->target_mask[b * T + t], want_target);
    }
}

// The windows delivered by n_batches batches of B rows: (shard, window, epoch) triples.
typedef struct {
    uint32_t shard;
    uint64_t window, epoch;
} row_id;

static row_id *collect(test_case *tc, loader *l, const shard_set *set, size_t B, size_t n_batches, int check_rows) {
    row_id *rows = calloc(B * n_batches, sizeof *rows);
    loader_batch batch;
    gk_err err = {0};
    loader_cursor c;
    loader_get_cursor(l, &c);
    uint64_t step0 = c.step;
    if (loader_batch_alloc(&batch, B, c.seq_len, &err) < 0) {
        CHECK(tc, 0, "batch alloc: %s", err.msg);
        free(rows);
        return NULL;
    }
    for (size_t k = 0; k < n_batches && !tc->failed; k++) {
        CHECK(tc, loader_next(l, B, &batch, &err) == 0, "loader_next: %s", err.msg);
        CHECK(tc, batch.batch_size == B && batch.step == step0 + k && batch.epoch == batch.row_epoch[0],
              "batch %zu: size %zu step %" PRIu64 " epoch %" PRIu64, k, batch.batch_size, batch.step, batch.epoch);
        for (size_t b = 0; b < B && !tc->failed; b++) {
            rows[k * B + b] = (row_id){batch.shard[b], batch.window[b], batch.row_epoch[b]};
            if (check_rows && set) check_row(tc, set, &batch, b);
        }
    }
    loader_batch_free(&batch);
    return rows;
}

static loader *open_set(test_case *tc, const shard_set *set, size_t T, int shuffle, uint64_t seed) {
    const char *paths[8];
    for (size_t i = 0; i < set->n; i++) paths[i] = set->paths[i];
    loader_options opt = {.seq_len = T, .shuffle = shuffle, .seed = seed};
    loader *l = NULL;
    gk_err err = {0};
    CHECK(tc, loader_open(&l, paths, set->n, &opt, &err) == 0, "loader_open: %s", err.msg);
    return l;
}

// ---------------------------------------------------------------- tests

// Two epochs for several shard sets, seq_lens and seeds: each epoch visits
// every window exactly once, rows match the reference, and epochs roll over
// inside a batch.
static void test_epoch_coverage(test_case *tc) {
    gk_err err = {0};
    shard_set sets[3] = {0};
    // Set 0: a plain shard, a one-token shard (never a window), a chat shard,
    // a 3-token shard (windows only at seq_len 1 or 2).
    size_t one[1] = {1}, three[2] = {2, 1};
    CHECK(tc, set_add_random(&sets[0], 700, 90, 0, 1, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add(&sets[0], one, 1, 0, 2, SHA_A, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add_random(&sets[0], 1300, 300, 1, 3, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add(&sets[0], three, 2, 1, 4, SHA_A, &err) == 0, "%s", err.msg);
    // Set 1: one shard spanning several chunks.
    CHECK(tc, set_add_random(&sets[1], 150000, 5000, 1, 5, &err) == 0, "%s", err.msg);
    // Set 2: five small shards.
    for (uint64_t i = 0; i < 5; i++) CHECK(tc, set_add_random(&sets[2], 100 + 37 * i, 20, (int)(i & 1), 10 + i, &err) == 0, "%s", err.msg);
    const size_t seq_lens[4] = {1, 7, 64, 200};
    const uint64_t seeds[3] = {1, 2, 0xFFFFFFFFFFFFFFFFull};
    for (int si = 0; si < 3 && !tc->failed; si++) {
        for (int ti = 0; ti < 4 && !tc->failed; ti++) {
            size_t T = seq_lens[ti];
            uint64_t want_total = 0;
            for (size_t i = 0; i < sets[si].n; i++) want_total += (sets[si].data[i].n_tokens - 1) / T;
            if (want_total == 0) continue; // covered by test_errors
            if (si == 1 && T < 64) continue; // 10^5 random single-window reads: slow, and nothing new
            for (int shuffle = 0; shuffle < 2 && !tc->failed; shuffle++) {
                for (int ki = 0; ki < (shuffle ? 3 : 1) && !tc->failed; ki++) {
                    loader *l = open_set(tc, &sets[si], T, shuffle, seeds[ki]);
                    if (!l) break;
                    uint64_t N = loader_total_windows(l);
                    CHECK(tc, N == want_total, "set %d T=%zu: %" PRIu64 " windows, want %" PRIu64, si, T, N, want_total);
                    for (size_t i = 0; i < sets[si].n; i++)
                        CHECK(tc, loader_shard_windows(l, i) == (sets[si].data[i].n_tokens - 1) / T, "shard %zu windows", i);
                    size_t B = 5, n_batches = (size_t)((2 * N + B - 1) / B);
                    if (N > 3000) n_batches = (size_t)((N + B - 1) / B) + 2; // one epoch and a bit
                    row_id *rows = collect(tc, l, &sets[si], B, n_batches, N <= 3000 || T >= 64);
                    uint64_t epochs = N > 3000 ? 1 : 2;
                    uint8_t *seen = calloc(N, 1);
                    for (uint64_t e = 0; e < epochs && rows && !tc->failed; e++) {
                        memset(seen, 0, N);
                        for (uint64_t i = 0; i < N && !tc->failed; i++) {
                            row_id r = rows[e * N + i];
                            CHECK(tc, r.epoch == e, "position %" PRIu64 " of epoch %" PRIu64 " is marked epoch %" PRIu64, i,
                                  e, r.epoch);
                            uint64_t g = 0;
                            for (uint32_t s = 0; s < r.shard; s++) g += loader_shard_windows(l, s);
                            g += r.window;
                            CHECK(tc, r.window < loader_shard_windows(l, r.shard) && !seen[g],
                                  "set %d T=%zu shuffle %d: window (%u, %" PRIu64 ") twice or out of range in epoch %" PRIu64,
                                  si, T, shuffle, r.shard, r.window, e);
                            if (!tc->failed) seen[g] = 1;
                            if (!shuffle) CHECK(tc, g == i, "unshuffled position %" PRIu64 " holds window %" PRIu64, i, g);
                        }
                    }
                    free(seen);
                    free(rows);
                    loader_close(l);
                }
            }
        }
    }
    for (int i = 0; i < 3; i++) set_free(&sets[i]);
}

static int same_order(const loader *a, const loader *b, uint64_t epoch_a, uint64_t epoch_b) {
    uint64_t N = loader_total_windows(a);
    for (uint64_t i = 0; i < N; i++)
        if (loader_order(a, epoch_a, i) != loader_order(b, epoch_b, i)) return 0;
    return 1;
}

static void test_orders(test_case *tc) {
    gk_err err = {0};
    shard_set set = {0};
    CHECK(tc, set_add_random(&set, 3000, 50, 0, 1, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add_random(&set, 2000, 50, 1, 2, &err) == 0, "%s", err.msg);
    loader *a = tc->failed ? NULL : open_set(tc, &set, 16, 1, 1);
    loader *a2 = tc->failed ? NULL : open_set(tc, &set, 16, 1, 1);
    loader *b = tc->failed ? NULL : open_set(tc, &set, 16, 1, 2);
    loader *plain = tc->failed ? NULL : open_set(tc, &set, 16, 0, 1);
    if (a && a2 && b && plain) {
        uint64_t N = loader_total_windows(a);
        CHECK(tc, N == 2999 / 16 + 1999 / 16, "N = %" PRIu64, N);
        CHECK(tc, same_order(a, a2, 0, 0) && same_order(a, a2, 5, 5), "the same seed gave different orders");
        CHECK(tc, !same_order(a, b, 0, 0), "seeds 1 and 2 gave the same order");
        CHECK(tc, !same_order(a, a, 0, 1), "epochs 0 and 1 have the same order");
        uint64_t fixed = 0, far = 0;
        for (uint64_t i = 0; i < N; i++) {
            CHECK(tc, loader_order(plain, 3, i) == i, "unshuffled order at %" PRIu64, i);
            uint64_t g = loader_order(a, 0, i);
            fixed += g == i;
            far += (g > i ? g - i : i - g) > N / 4;
        }
        CHECK(tc, fixed < N / 20 && far > N / 4, "the shuffle looks unshuffled: %" PRIu64 " fixed points, %" PRIu64
                                                   " moved far, of %" PRIu64, fixed, far, N);
        // The stream does not depend on the batch size.
        row_id *by1 = collect(tc, a, &set, 1, (size_t)N + 10, 0);
        row_id *by7 = collect(tc, a2, &set, 7, (size_t)(N + 10 + 6) / 7, 0);
        for (size_t i = 0; by1 && by7 && i < N + 10 && !tc->failed; i++)
            CHECK(tc, by1[i].shard == by7[i].shard && by1[i].window == by7[i].window && by1[i].epoch == by7[i].epoch,
                  "position %zu differs between batch sizes 1 and 7", i);
        free(by1);
        free(by7);
    }
    loader_close(a);
    loader_close(a2);
    loader_close(b);
    loader_close(plain);
    set_free(&set);
}

// Saves a cursor after `k` batches of B, round-trips it through JSON, restores
// it in a fresh loader, and compares the next rows (continued with batch size
// B2 in the fresh loader) with the original loader's continuation.
static void check_resume(test_case *tc, const shard_set *set, size_t T, int shuffle, uint64_t seed, size_t B,
                         size_t k, size_t B2, size_t n_rows) {
    loader *a = open_set(tc, set, T, shuffle, seed);
    loader *b = open_set(tc, set, T, shuffle, seed);
    if (!a || !b) goto done;
    free(collect(tc, a, NULL, B, k, 0));
    loader_cursor c, parsed;
    loader_get_cursor(a, &c);
    strbuf sb = {0};
    loader_cursor_to_json(&c, &sb);
    gk_err err = {0};
    CHECK(tc, loader_cursor_parse(sb.data, sb.len, &parsed, &err) == 0, "parse '%s': %s", sb.data, err.msg);
    CHECK(tc, c.epoch == parsed.epoch && c.index == parsed.index && c.step == parsed.step && c.seed == parsed.seed &&
                  c.total_windows == parsed.total_windows && c.seq_len == parsed.seq_len && c.shuffle == parsed.shuffle,
          "cursor changed in JSON: %s", sb.data);
    sb_free(&sb);
    CHECK(tc, loader_set_cursor(b, &parsed, &err) == 0, "set_cursor: %s", err.msg);
    if (tc->failed) goto done;
    loader_batch ba, bb;
    loader_batch_alloc(&ba, 1, T, &err);
    loader_batch_alloc(&bb, B2, T, &err);
    // Continue a one row at a time and b in batches of B2; rows must agree.
    size_t done_rows = 0;
    while (done_rows < n_rows && !tc->failed) {
        CHECK(tc, loader_next(b, B2, &bb, &err) == 0, "b: %s", err.msg);
        CHECK(tc, bb.step == c.step + done_rows / B2, "resumed step %" PRIu64 ", want %" PRIu64, bb.step,
              c.step + done_rows / B2);
        for (size_t r = 0; r < B2 && !tc->failed; r++, done_rows++) {
            CHECK(tc, loader_next(a, 1, &ba, &err) == 0, "a: %s", err.msg);
            CHECK(tc, ba.shard[0] == bb.shard[r] && ba.window[0] == bb.window[r] && ba.row_epoch[0] == bb.row_epoch[r],
                  "row %zu after resume: (%u, %" PRIu64 ", epoch %" PRIu64 ") vs (%u, %" PRIu64 ", epoch %" PRIu64 ")",
                  done_rows, ba.shard[0], ba.window[0], ba.row_epoch[0], bb.shard[r], bb.window[r], bb.row_epoch[r]);
            CHECK(tc, memcmp(ba.tokens, bb.tokens + r * (T + 1), (T + 1) * 4) == 0 &&
                          memcmp(ba.doc_begin, bb.doc_begin + r * T, T * 4) == 0 &&
                          memcmp(ba.target_mask, bb.target_mask + r * T, T) == 0,
                  "row %zu contents differ after resume", done_rows);
            if (!tc->failed) check_row(tc, set, &bb, r);
        }
    }
    loader_batch_free(&ba);
    loader_batch_free(&bb);
done:
    loader_close(a);
    loader_close(b);
}

static void test_resume(test_case *tc) {
    gk_err err = {0};
    shard_set set = {0};
    CHECK(tc, set_add_random(&set, 900, 70, 0, 1, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add_random(&set, 600, 40, 1, 2, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add_random(&set, 5, 5, 0, 3, &err) == 0, "%s", err.msg);
    if (tc->failed) goto done;
    size_t T = 16;
    uint64_t N = 899 / 16 + 599 / 16; // 56 + 37 = 93
    // Mid-epoch, same batch size.
    check_resume(tc, &set, T, 1, 7, 4, 3, 4, 40);
    // Mid-epoch, a different batch size after resuming.
    check_resume(tc, &set, T, 1, 7, 4, 3, 5, 40);
    // A cursor saved two windows before the end of epoch 0: the next batch spans the boundary.
    check_resume(tc, &set, T, 1, 8, 1, (size_t)N - 2, 5, 30);
    // Saved exactly at an epoch boundary (after 3 batches of 31 = 93 windows), into epoch 1 and 2.
    check_resume(tc, &set, T, 1, 9, 31, 3, 6, 120);
    // Unshuffled.
    check_resume(tc, &set, T, 0, 0, 10, 5, 3, 60);
done:
    set_free(&set);
}

// Hand-computed doc_begin / target_mask for windows that start mid-document,
// hold several documents, and (chat) follow the loss mask.
static void test_doc_masks(test_case *tc) {
    gk_err err = {0};
    shard_set set = {0};
    size_t lens[5] = {3, 10, 1, 1, 20}; // starts 0, 3, 13, 14, 15; 35 tokens
    CHECK(tc, set_add(&set, lens, 5, 0, 1, SHA_A, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add(&set, lens, 5, 1, 2, SHA_A, &err) == 0, "%s", err.msg);
    if (tc->failed) goto done;
    // Give the chat shard the mask i % 3 != 0 by rewriting it.
    shard_data *chat = &set.data[1];
    for (size_t i = 0; i < chat->n_tokens; i++) chat->mask[i] = i % 3 != 0;
    {
        shard_meta m = {.vocab_size = VOCAB, .bos_id = 2, .eos_id = 1, .pad_id = 0, .has_loss_mask = 1};
        snprintf(m.tokenizer_sha256, sizeof m.tokenizer_sha256, "%s", SHA_A);
        shard_writer *w;
        CHECK(tc, shard_writer_open(&w, set.paths[1], &m, &err) == 0, "%s", err.msg);
        for (size_t i = 0; i < 5 && !tc->failed; i++)
            CHECK(tc, shard_writer_add_doc(w, chat->tokens + chat->starts[i], chat->mask + chat->starts[i], lens[i], &err) == 0,
                  "%s", err.msg);
        CHECK(tc, shard_writer_close(w, &err) == 0, "%s", err.msg);
    }
    loader *l = tc->failed ? NULL : open_set(tc, &set, 8, 0, 0);
    if (!l) goto done;
    CHECK(tc, loader_total_windows(l) == 8, "%" PRIu64 " windows", loader_total_windows(l));
    loader_batch batch;
    loader_batch_alloc(&batch, 8, 8, &err);
    CHECK(tc, loader_next(l, 8, &batch, &err) == 0, "%s", err.msg);
    if (!tc->failed) {
        // Window 0 of the plain shard: tokens 0..8; documents start at 0 and 3.
        const int32_t begin0[8] = {0, 0, 0, 3, 3, 3, 3, 3};
        const uint8_t target0[8] = {1, 1, 0, 1, 1, 1, 1, 1};
        // Window 1: tokens 8..16, starting inside document 1; documents start at 13, 14, 15.
        const int32_t begin1[8] = {0, 0, 0, 0, 0, 5, 6, 7};
        const uint8_t target1[8] = {1, 1, 1, 1, 0, 0, 0, 1};
        // The same window of the chat shard: targets 9..16 also need (i % 3 != 0).
        const uint8_t target1_chat[8] = {0, 1, 1, 0, 0, 0, 0, 1};
        CHECK(tc, batch.shard[0] == 0 && batch.window[0] == 0 && batch.shard[5] == 1 && batch.window[5] == 1,
              "natural order");
        CHECK(tc, memcmp(batch.doc_begin, begin0, sizeof begin0) == 0, "window 0 doc_begin");
        CHECK(tc, memcmp(batch.target_mask, target0, sizeof target0) == 0, "window 0 target_mask");
        CHECK(tc, memcmp(batch.doc_begin + 8, begin1, sizeof begin1) == 0, "window 1 doc_begin");
        CHECK(tc, memcmp(batch.target_mask + 8, target1, sizeof target1) == 0, "window 1 target_mask");
        CHECK(tc, memcmp(batch.doc_begin + 5 * 8, begin1, sizeof begin1) == 0, "chat window 1 doc_begin");
        CHECK(tc, memcmp(batch.target_mask + 5 * 8, target1_chat, sizeof target1_chat) == 0, "chat window 1 target_mask");
        for (size_t b = 0; b < 8; b++) check_row(tc, &set, &batch, b);
    }
    loader_batch_free(&batch);
    loader_close(l);
done:
    set_free(&set);
}

static void expect_open_error(test_case *tc, const char *const *paths, size_t n, const loader_options *opt,
                              const char *needle1, const char *needle2) {
    loader *l = NULL;
    gk_err err = {0};
    int rc = loader_open(&l, paths, n, opt, &err);
    if (rc == 0) loader_close(l);
    CHECK(tc, rc == -1 && l == NULL, "accepted (expected '%s')", needle1);
    CHECK(tc, strstr(err.msg, needle1) && (!needle2 || strstr(err.msg, needle2)), "message '%s' lacks '%s' / '%s'",
          err.msg, needle1, needle2 ? needle2 : "");
}

static void test_errors(test_case *tc) {
    gk_err err = {0};
    shard_set set = {0}, other = {0};
    CHECK(tc, set_add_random(&set, 200, 30, 0, 1, &err) == 0, "%s", err.msg);
    CHECK(tc, set_add_random(&set, 10, 5, 0, 2, &err) == 0, "%s", err.msg);
    size_t lens[1] = {50};
    CHECK(tc, set_add(&other, lens, 1, 0, 3, SHA_B, &err) == 0, "%s", err.msg);
    if (tc->failed) goto done;
    loader_options opt = {.seq_len = 16, .shuffle = 1, .seed = 5};
    char pattern[200], missing[200], dotted[200];
    snprintf(pattern, sizeof pattern, "%s/*.h5", set.dir);
    snprintf(missing, sizeof missing, "%s/nothing-*.h5", set.dir);
    snprintf(dotted, sizeof dotted, "%s/./s0.h5", set.dir);

    // Duplicates through a glob, a repeated name and another spelling count once.
    const char *dup[4] = {pattern, set.paths[0], dotted, set.paths[1]};
    loader *l = NULL;
    CHECK(tc, loader_open(&l, dup, 4, &opt, &err) == 0, "%s", err.msg);
    if (l) {
        CHECK(tc, loader_n_shards(l) == 2, "%zu shards after removing duplicates", loader_n_shards(l));
        CHECK(tc, strcmp(loader_shard(l, 0)->path, set.paths[0]) == 0 || strcmp(loader_shard(l, 0)->path, dotted) == 0,
              "shard order");
        CHECK(tc, loader_total_windows(l) == 199 / 16, "windows");
        // Cursors that do not fit.
        loader_cursor c;
        loader_get_cursor(l, &c);
        loader_cursor bad = c;
        bad.total_windows = 999;
        CHECK(tc, loader_set_cursor(l, &bad, &err) == -1 && strstr(err.msg, "999") && strstr(err.msg, "12"),
              "total mismatch: '%s'", err.msg);
        bad = c;
        bad.seed = 6;
        CHECK(tc, loader_set_cursor(l, &bad, &err) == -1 && strstr(err.msg, "seed 6") && strstr(err.msg, "seed 5"),
              "seed mismatch: '%s'", err.msg);
        bad = c;
        bad.seq_len = 32;
        CHECK(tc, loader_set_cursor(l, &bad, &err) == -1 && strstr(err.msg, "seq_len 32") && strstr(err.msg, "16"),
              "seq_len mismatch: '%s'", err.msg);
        bad = c;
        bad.shuffle = 0;
        CHECK(tc, loader_set_cursor(l, &bad, &err) == -1 && strstr(err.msg, "shuffle off"), "shuffle: '%s'", err.msg);
        bad = c;
        bad.index = 12;
        CHECK(tc, loader_set_cursor(l, &bad, &err) == -1 && strstr(err.msg, "index 12"), "index: '%s'", err.msg);
        loader_cursor parsed;
        const char *bad_json[] = {"[]", "{\"epoch\":1}", "{\"epoch\":-1,\"index\":0,\"step\":0,\"seed\":\"1\","
                                                         "\"total_windows\":1,\"seq_len\":1,\"shuffle\":true}",
                                  "{\"epoch\":0,\"index\":0,\"step\":0,\"seed\":\"99999999999999999999\","
                                  "\"total_windows\":1,\"seq_len\":1,\"shuffle\":true}",
                                  "{\"epoch\":0,\"index\":0,\"step\":0,\"seed\":1,\"total_windows\":1,\"seq_len\":1,"
                                  "\"shuffle\":1}",
                                  "{"};
        for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
            CHECK(tc, loader_cursor_parse(bad_json[i], strlen(bad_json[i]), &parsed, &err) == -1,
                  "accepted cursor %s", bad_json[i]);
        // A seed beyond 2^63 survives JSON.
        c.seed = UINT64_MAX;
        c.epoch = 123456789012ull;
        strbuf sb = {0};
        loader_cursor_to_json(&c, &sb);
        CHECK(tc, loader_cursor_parse(sb.data, sb.len, &parsed, &err) == 0 && parsed.seed == UINT64_MAX &&
                      parsed.epoch == c.epoch,
              "seed round trip: %s", sb.data);
        sb_free(&sb);
        // Batch shapes.
        loader_batch batch;
        CHECK(tc, loader_batch_alloc(&batch, 2, 16, &err) == 0, "%s", err.msg);
        CHECK(tc, loader_next(l, 3, &batch, &err) == -1 && strstr(err.msg, "capacity"), "B > capacity: '%s'", err.msg);
        CHECK(tc, loader_next(l, 0, &batch, &err) == -1, "B = 0 accepted");
        loader_batch_free(&batch);
        CHECK(tc, loader_batch_alloc(&batch, 2, 8, &err) == 0, "%s", err.msg);
        CHECK(tc, loader_next(l, 2, &batch, &err) == -1 && strstr(err.msg, "seq_len"), "seq_len mismatch: '%s'",
              err.msg);
        loader_get_cursor(l, &c);
        CHECK(tc, c.index == 0 && c.step == 0, "a failed loader_next moved the cursor");
        loader_batch_free(&batch);
        loader_close(l);
    }

    const char *one_missing[1] = {missing};
    expect_open_error(tc, one_missing, 1, &opt, "no files match", missing);
    const char *absent[2] = {set.paths[0], "/nonexistent/dir/x.h5"};
    expect_open_error(tc, absent, 2, &opt, "/nonexistent/dir/x.h5", "cannot open");
    expect_open_error(tc, absent, 0, &opt, "no shard files", NULL);
    // Only the 10-token shard: no window at seq_len 16.
    const char *short_only[1] = {set.paths[1]};
    expect_open_error(tc, short_only, 1, &opt, "no training windows", "seq_len + 1 = 17");
    // Shards of two tokenizers.
    const char *mixed[2] = {set.paths[0], other.paths[0]};
    expect_open_error(tc, mixed, 2, &opt, SHA_A, SHA_B);
    // Options that name the run's tokenizer.
    loader_options want = opt;
    want.tokenizer_sha256 = SHA_B;
    const char *first[1] = {set.paths[0]};
    expect_open_error(tc, first, 1, &want, SHA_A, SHA_B);
    want = opt;
    want.vocab_size = 256000;
    expect_open_error(tc, first, 1, &want, "256000", "50000");
    want = opt;
    want.seq_len = 0;
    expect_open_error(tc, first, 1, &want, "seq_len 0", NULL);
done:
    set_free(&set);
    set_free(&other);
}

int main(void) {
    test_run("epoch_coverage", test_epoch_coverage);
    test_run("orders", test_orders);
    test_run("resume", test_resume);
    test_run("doc_masks", test_doc_masks);
    test_run("errors", test_errors);
    return test_main_result();
}
