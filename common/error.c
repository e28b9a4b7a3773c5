#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gk_fail(gk_err *err, int code, const char *fmt, ...) {
    if (!err) return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int gk_wrap(gk_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    // Messages are cut at the buffer size; build "prefix: old" by hand.
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t cap = sizeof err->msg - 1, n = strlen(prefix), m = strlen(old);
    if (n > cap) n = cap;
    memcpy(err->msg, prefix, n);
    if (n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
        if (m > cap - n) m = cap - n;
        memcpy(err->msg + n, old, m);
        n += m;
    }
    err->msg[n] = 0;
    return -1;
}

void *gk_malloc(size_t bytes, gk_err *err) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) gk_fail(err, GK_ENOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *gk_calloc(size_t count, size_t size, gk_err *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) gk_fail(err, GK_ENOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void gk_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "gemmakd: internal error at %s:%d: %s\n", file, line, what);
    abort();
}
