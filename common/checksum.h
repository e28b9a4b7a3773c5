// A fast 64-bit checksum of files, for checkpoint manifests (detects torn or
// corrupted writes; not a cryptographic hash).
#ifndef GK_CHECKSUM_H
#define GK_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

uint64_t checksum_bytes(const void *data, size_t len);
// Checksum and size of a whole file.
int checksum_file(const char *path, uint64_t *sum, uint64_t *size, gk_err *err);

#endif
