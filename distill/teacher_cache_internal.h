// Shared by the teacher-cache reader and writer (not for other modules): a
// segment file's attributes and dataset layout, read and compared.
#ifndef GK_TEACHER_CACHE_INTERNAL_H
#define GK_TEACHER_CACHE_INTERNAL_H

#include <hdf5.h>

#include "distill/teacher_cache.h"

enum {
    TC_ZSTD_LEVEL = 3,
    TC_CHUNK_IDS_BYTES = 64 << 10,     // target size of one /ids chunk (whole windows, at least one)
    TC_SEGMENT_BYTES = 64 << 20,       // default segment: about this many bytes of uncompressed data
};

// Everything a segment file records, plus its datasets' element sizes.
typedef struct {
    teacher_cache_meta meta;
    char token_shard[256];       // file name of the token shard
    char token_shard_sha256[65];
    uint64_t first_window, n_windows, shard_windows;
    int logprob_bytes;           // 2 (float16) or 4 (float32)
    int count_bytes;             // sample: 1 or 2; top-k: 0
    uint64_t chunk_rows;         // rows per chunk of /ids
} tc_segment;

// Opens a segment file, reads and validates its attributes and datasets
// (types, shapes), and closes it. Messages name the file and the attribute or
// dataset. Returns 1 (err set too) for an HDF5 file whose 'format' attribute
// names another format, such as a token shard.
int tc_segment_read(const char *path, tc_segment *s, gk_err *err);
// sha[i] = the SHA-256 of shard i of l, hashed in parallel; the first failure is reported.
int tc_hash_shards(const loader *l, char (*sha)[65], gk_err *err);

// Compares the shared attributes: "PATH: attribute 'k' is 8, but OTHER has 32"
// (other: e.g. "this run uses" or "x.h5 has"). Top-k files compare no seed;
// segment_windows is left out (segments of different sizes may tile a shard).
int tc_meta_compare(const char *path, const teacher_cache_meta *got, const char *other,
                    const teacher_cache_meta *want, gk_err *err);
// The same for every attribute of a segment (the writer's resume check).
int tc_segment_compare(const char *path, const tc_segment *got, const char *other, const tc_segment *want,
                       gk_err *err);

// One segment's rows, as the writer holds them (rows = n_windows * seq_len).
typedef struct {
    const uint32_t *ids;      // [rows, k]
    const uint16_t *logprobs_f16; // [rows, k] when logprob_bytes == 2
    const float *logprobs;    // [rows, k] when logprob_bytes == 4
    const uint16_t *counts;   // [rows, k] (sample)
    const float *leftover;    // [rows] (top-k)
} tc_segment_data;

// Writes a complete segment file: "<path>.tmp-<pid>" with the datasets
// (chunks of chunk_rows rows, shuffle + zstd) and the attributes of s, synced
// and renamed to path. *bytes = the file's size. On error nothing stays behind.
int tc_write_segment(const char *path, const tc_segment *s, const tc_segment_data *d, uint64_t chunk_rows,
                     uint64_t *bytes, gk_err *err);

// The IEEE half-precision file type (as h5py writes float16). Close with h5_close.
hid_t tc_f16_type(void);

// "<stem>.<first:06>-<end:06>.h5" for a shard path, malloc'd; NULL on allocation failure.
char *tc_segment_name(const char *shard_path, uint64_t first, uint64_t end);
// The file name part of a path (a pointer into it).
const char *tc_basename(const char *path);

#endif
