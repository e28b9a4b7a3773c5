// HDF5 token shards: the atomic writer and the validating reader.
//
// One file per shard (docs/DESIGN.md "Files the tool reads and writes"):
//   /tokens      uint32 LE [n_tokens], chunked (SHARD_CHUNK_TOKENS), zstd (filter 32015), extendible
//   /doc_starts  uint64 LE [n_docs]: where each document starts; 0 first, strictly increasing, < n_tokens
//   /loss_mask   uint8 [n_tokens], chat shards only: 1 = the token is a training target
//   root attributes (scalar): format "gemmakd-tokens", format_version 1, tokenizer_sha256 (64 hex digits),
//     vocab_size, bos_id, eos_id, pad_id (int64; -1 = none), n_tokens, n_docs (uint64),
//     has_loss_mask (uint8 0/1), source, created_by (variable-length UTF-8 strings: str in h5py).
// Documents never span shards. Readers accept any chunk size and zstd level (h5py's files included).
#ifndef GK_SHARDS_H
#define GK_SHARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SHARD_FORMAT "gemmakd-tokens"

enum {
    SHARD_FORMAT_VERSION = 1,
    // 65536 tokens x 4 B = 256 KiB per /tokens chunk (the h5py guidance is 10 KiB..1 MiB):
    // large enough for zstd to find repeats across documents and to keep the chunk
    // index small (400 chunks per 10^8-token shard), small enough that a random
    // window read decompresses at most ~0.5 MiB. /loss_mask chunks hold the same
    // number of elements (64 KiB) so both datasets' chunk boundaries coincide.
    SHARD_CHUNK_TOKENS = 65536,
    SHARD_ZSTD_LEVEL = 3,
};

// Shard attributes other than the counts.
typedef struct {
    char tokenizer_sha256[65];      // 64 lowercase hex digits + NUL
    int64_t vocab_size;             // 1 .. 2^31-1; every token is < vocab_size
    int64_t bos_id, eos_id, pad_id; // -1 (none) .. vocab_size-1
    bool has_loss_mask;             // chat shard: /loss_mask present
    const char *source;             // free text: input files and options (writer: NULL = "")
    const char *created_by;         // e.g. "gemmakd tokenize" (writer: NULL = "gemmakd")
                                    // (the writer replaces bytes that are not valid UTF-8 by '?')
    int zstd_level;                 // writer only: 0 = SHARD_ZSTD_LEVEL, else 1..22
} shard_meta;

// ---------------------------------------------------------------- writer

// Writes "<path>.tmp-<pid>"; close renames it to path. Documents are buffered
// and appended in whole chunks, so each chunk is compressed exactly once.
typedef struct shard_writer shard_writer;

// Validates meta (sha256 format, id ranges) and creates the temporary file.
int shard_writer_open(shard_writer **w, const char *path, const shard_meta *meta, gk_err *err);
// Appends one document: tokens[n] and, for chat shards (meta.has_loss_mask), mask[n]
// of 0/1 values; mask must be NULL otherwise. Empty documents, tokens >= vocab_size
// and mask values other than 0/1 are rejected with a message naming the document
// index; after such a rejection the writer is unchanged and still usable. After an
// I/O failure every later call fails; close or abort the writer.
int shard_writer_add_doc(shard_writer *w, const uint32_t *tokens, const uint8_t *mask, size_t n, gk_err *err);
uint64_t shard_writer_tokens(const shard_writer *w); // tokens added so far (roll shards on this)
uint64_t shard_writer_docs(const shard_writer *w);
const char *shard_writer_tmp_path(const shard_writer *w);
const char *shard_writer_path(const shard_writer *w); // the final name
// Flushes, writes /doc_starts and the attributes, closes, fsyncs and renames
// the file to its final name. A shard without documents is an error. Always
// frees w; on error the temporary file is removed and no final file appears.
int shard_writer_close(shard_writer *w, gk_err *err);
// Closes and removes the temporary file, frees w. NULL is fine.
void shard_writer_abort(shard_writer *w);

// ---------------------------------------------------------------- reader

typedef struct shard_h5 shard_h5; // open HDF5 handles (private)

typedef struct {
    char *path;
    shard_meta meta;       // strings owned by this struct; zstd_level is 0
    uint64_t n_tokens;     // >= 1
    uint64_t n_docs;       // >= 1
    uint64_t *doc_starts;  // [n_docs]: 0 first, strictly increasing, < n_tokens
    shard_h5 *h5;
} shard_file;

// Opens and validates a shard: format and version, every attribute's type and
// range, dataset types and shapes, doc_starts, counts that agree with the
// datasets, /loss_mask presence and length. Messages start with the path and
// name the dataset or attribute. Nothing is printed (HDF5's error stack
// included); on error nothing stays open.
int shard_open(const char *path, shard_file *s, gk_err *err);
void shard_close(shard_file *s);

// Reads tokens [start, start+count) into out[count] (or mask values; reading the
// mask of a shard without one is an error). Each dataset has a chunk cache of
// four chunks, so sequential (overlapping) window reads decompress each chunk once;
// a random read of a short range decompresses the one or two chunks it touches.
int shard_read_tokens(shard_file *s, uint64_t start, size_t count, uint32_t *out, gk_err *err);
int shard_read_mask(shard_file *s, uint64_t start, size_t count, uint8_t *out, gk_err *err);

// Checks the shard against the tokenizer a run uses: sha256 (NULL to skip, compared
// case-insensitively) and vocab_size (0 to skip). The message names both values.
int shard_check_tokenizer(const shard_file *s, const char *tokenizer_sha256, int64_t vocab_size, gk_err *err);

#endif
