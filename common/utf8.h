// UTF-8 validation and encoding, shared by the JSON readers and the tokenizer.
#ifndef GK_UTF8_H
#define GK_UTF8_H

#include <stddef.h>
#include <stdint.h>

// Length (1..4) of the valid UTF-8 character at s[0..avail), or 0 when it is
// invalid; then, if bad is not NULL, *bad = the length of its maximal invalid
// subpart (Unicode 15, 3.9: what one U+FFFD replaces, as Python's
// errors="replace" does).
size_t utf8_scan(const unsigned char *s, size_t avail, size_t *bad);
// Writes code point cp (<= 0x10FFFF, not a surrogate) as UTF-8; returns its length.
size_t utf8_encode(uint32_t cp, char out[4]);

#endif
