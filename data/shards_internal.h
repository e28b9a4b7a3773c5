// Declarations shared by shards.c (the reader) and shard_writer.c; not public.
#ifndef GK_SHARDS_INTERNAL_H
#define GK_SHARDS_INTERNAL_H

#include "common/error.h"
#include "data/shards.h"

// Checks the meta fields both the writer and the reader require: tokenizer_sha256
// is 64 lowercase hex digits, vocab_size in 1..2^31-1, bos/eos/pad ids in
// -1..vocab_size-1. `where` (a path) prefixes messages.
int shard_meta_check(const shard_meta *m, const char *where, gk_err *err);

#endif
