// SHA-256 (FIPS 180-4): names tokenizers, token shards and teacher caches by content.
#ifndef GK_SHA256_H
#define GK_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct {
    uint32_t state[8];
    uint64_t bytes;         // message length so far
    unsigned char buf[64];  // pending partial block
    size_t buf_len;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char digest[32]);

// digest of data[0..len) as 64 lowercase hex digits + NUL
void sha256_hex(const void *data, size_t len, char hex[65]);
// The same of a file's bytes (memory-mapped); -1 with err naming the file when it cannot be read.
int sha256_file(const char *path, char hex[65], gk_err *err);
// True when s is exactly 64 lowercase hex digits (a digest as sha256_hex writes it).
int sha256_hex_valid(const char *s);

// Use the CPU's SHA extensions when on and the CPU has them (the default); returns whether they
// are used. Not thread-safe: for the tests, which check both paths.
int sha256_set_hardware(int on);

#endif
