// Shard sets: the manifest tokenize writes beside its shards, and the check readers make.
//
//   DIR/NAME.shards.json  {"format": "gemmakd-shard-set", "complete": false, "pid": P}
//                         from before tokenize writes its first shard, then, written last,
//                         {"format": "gemmakd-shard-set", "complete": true,
//                          "shards": [{"file": "NAME-00000.h5", "tokens": N, "docs": D}, ...]}
//
// A shard DIR/NAME-NNNNN.h5 belongs to the set of DIR/NAME.shards.json when that
// file exists. Readers (the loader: train, eval, teacher-logits) refuse a shard
// whose set is incomplete (tokenize was killed, or failed to clean up), one the
// manifest does not list or lists with another token count (a shard of another
// run), and a set one of whose shards is gone. Shards without a manifest (written
// before sets had one, or by other tools such as h5py) are read as they are.
#ifndef GK_SHARD_SET_H
#define GK_SHARD_SET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "data/shards.h"

#define SHARD_SET_FORMAT "gemmakd-shard-set"

// DIR/NAME.shards.json (malloc'd; NULL when out of memory).
char *shard_set_manifest_path(const char *dir, const char *name);

// The "incomplete" manifest, written before the set's first shard.
int shard_set_begin(const char *dir, const char *name, gk_err *err);

typedef struct {
    const char *path; // the shard (its file name is recorded)
    uint64_t tokens, docs;
} shard_set_entry;

// The complete manifest listing shards[n], written (atomically) once they are all in place.
int shard_set_finish(const char *dir, const char *name, const shard_set_entry *shards, size_t n, gk_err *err);

// Checks open shards (sorted by path, as the loader keeps them) against their sets' manifests.
int shard_set_check(const shard_file *shards, size_t n, gk_err *err);

#endif
