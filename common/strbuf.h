// A growable byte string for building JSON, headers and messages.
#ifndef GK_STRBUF_H
#define GK_STRBUF_H

#include <stddef.h>

typedef struct {
    char *data; // always NUL-terminated when non-NULL
    size_t len, cap;
    int failed; // an allocation failed; further appends are ignored
} strbuf;

void sb_append(strbuf *sb, const char *bytes, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends s[0..n) as a quoted JSON string with the required escapes.
void sb_json_string(strbuf *sb, const char *s, size_t n);
void sb_free(strbuf *sb);

#endif
