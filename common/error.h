// Errors returned to callers: a code and one human-readable line.
// Functions that can fail on input take a `gk_err *` and return 0 or -1;
// only gemmakd.c and test drivers print errors and exit.
#ifndef GK_ERROR_H
#define GK_ERROR_H

#include <stddef.h>

enum {
    GK_OK = 0,
    GK_EINPUT,    // malformed user input (file contents, flags)
    GK_EIO,       // the operating system refused (open, read, write, rename)
    GK_ENOMEM,    // allocation failed
    GK_EINTERNAL, // a bug: an invariant the code relies on does not hold
    GK_EUSAGE,    // bad command-line flags (exit status 2)
    GK_EPEER,     // another rank of the job failed (its own message is the one to print)
};

typedef struct {
    int code;
    char msg[1024];
} gk_err;

// Sets *err (when err is not NULL) and returns -1, so callers can write
// `return gk_fail(err, GK_EINPUT, "%s: bad header", path);`.
int gk_fail(gk_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Prefixes an existing message: "context: old message". Returns -1.
int gk_wrap(gk_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Allocation helpers that report GK_ENOMEM with the size asked for.
void *gk_malloc(size_t bytes, gk_err *err);
void *gk_calloc(size_t count, size_t size, gk_err *err);

// Checked size arithmetic: return 0 on overflow (and leave *out unchanged).
static inline int gk_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int gk_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

// Aborts with file:line for broken internal invariants (never for input errors).
#define GK_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) gk_abort(__FILE__, __LINE__, #cond);                                \
    } while (0)
__attribute__((noreturn)) void gk_abort(const char *file, int line, const char *what); // also read by nvcc

#endif
