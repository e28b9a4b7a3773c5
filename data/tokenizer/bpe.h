// The BPE merge engine shared by both tokenizer formats: a hash map from an
// adjacent symbol pair to (priority, merged symbol), and the heap-driven merge
// of one word, as Hugging Face tokenizers (`Word::merge_all`) and SentencePiece
// (`bpe::Model::SampleEncode`) do it: always merge the pair of lowest rank,
// ties to the leftmost pair, skipping queue entries that went stale.
#ifndef GK_DATA_BPE_H
#define GK_DATA_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define BPE_NONE (-1)          // "no symbol" in prev/next links
#define BPE_NO_ID 0x7fffffff   // id of a symbol that takes part in no pair
#define BPE_REV 0x80000000u    // flag on a pair value: remember how it was split (SentencePiece UNUSED)

// Pair (left id, right id) -> (rank, merged id); ids are < 2^31.
typedef struct {
    uint64_t key;   // left << 32 | right; UINT64_MAX = empty slot
    uint32_t rank;  // smaller merges first
    uint32_t value; // merged id, possibly | BPE_REV
} bpe_pair_slot;

typedef struct {
    bpe_pair_slot *slots; // [mask + 1]
    size_t mask, count;
    // Which ids occur on the left / right of any pair: most merged tokens never
    // merge again, and a bit test (32 KB for a 262k vocabulary, cache-resident)
    // saves the cache miss of probing the big table.
    uint64_t *left_bits, *right_bits; // [bit_words]
    size_t bit_words;
} bpe_pairs;

int bpe_pairs_init(bpe_pairs *p, size_t expected, gk_err *err);
void bpe_pairs_free(bpe_pairs *p);
// Inserts or overwrites (a later duplicate wins, as in the tokenizers library).
int bpe_pairs_put(bpe_pairs *p, int32_t left, int32_t right, uint32_t rank, uint32_t value, gk_err *err);
const bpe_pair_slot *bpe_pairs_get(const bpe_pairs *p, int32_t left, int32_t right);

// One symbol of the word being merged: a run [start, start + len) of bytes.
typedef struct {
    int32_t id;       // vocabulary id / merge key (BPE_NO_ID: never merges)
    uint32_t start;   // byte offset of the symbol in the word's text
    uint32_t len;     // bytes; 0 = merged into its left neighbour
    int32_t prev, next;
} bpe_symbol;

typedef struct {
    uint64_t key;     // rank << 32 | left position
    uint32_t value;   // merged id (with BPE_REV)
    uint32_t len;     // combined length when queued (stale test)
} bpe_entry;

// Where a merged UNUSED piece was last split (SentencePiece's rev_merge).
typedef struct {
    int32_t id;
    uint32_t left_len;
} bpe_rev;

// Per-call scratch (never shared between threads).
typedef struct {
    bpe_symbol *sym; // [n_sym]
    size_t n_sym, cap_sym;
    bpe_entry *heap; // [n_heap], capacity 3 * n_sym
    size_t n_heap, cap_heap;
    bpe_rev *rev;    // [n_rev] in push order
    size_t n_rev, cap_rev;
} bpe_work;

// Which queued pairs are still valid when popped.
typedef enum {
    BPE_STALE_BY_PAIR,   // tokenizers: the pair now at that position must merge to the same id
    BPE_STALE_BY_LENGTH, // SentencePiece: both symbols must still have their lengths when queued
} bpe_stale_rule;

// Appends a symbol (links it after the previous one).
int bpe_work_push(bpe_work *w, int32_t id, uint32_t start, uint32_t len, gk_err *err);
void bpe_work_reset(bpe_work *w);
void bpe_work_free(bpe_work *w);

// Merges w->sym[0..n_sym) in place; the result is the chain from sym[0]
// following `next` (merged-away symbols have len 0).
int bpe_merge(const bpe_pairs *pairs, bpe_work *w, bpe_stale_rule rule, gk_err *err);

#endif
