#include "common/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(strbuf *sb, size_t extra) {
    if (sb->failed) return -1;
    if (sb->len + extra + 1 <= sb->cap) return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) cap *= 2;
    char *d = realloc(sb->data, cap);
    if (!d) {
        sb->failed = 1;
        return -1;
    }
    sb->data = d;
    sb->cap = cap;
    return 0;
}

void sb_append(strbuf *sb, const char *bytes, size_t n) {
    if (reserve(sb, n)) return;
    memcpy(sb->data + sb->len, bytes, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && reserve(sb, (size_t)n) == 0) {
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

void sb_json_string(strbuf *sb, const char *s, size_t n) {
    sb_append(sb, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') sb_append(sb, "\\\"", 2);
        else if (c == '\\') sb_append(sb, "\\\\", 2);
        else if (c == '\n') sb_append(sb, "\\n", 2);
        else if (c == '\r') sb_append(sb, "\\r", 2);
        else if (c == '\t') sb_append(sb, "\\t", 2);
        else if (c < 0x20) sb_printf(sb, "\\u%04x", c);
        else sb_append(sb, (const char *)&c, 1);
    }
    sb_append(sb, "\"", 1);
}

void sb_free(strbuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = 0;
}
