// Kernel buffers on the CPU: plain aligned host memory; uploads are copies.
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model/real.h"

void *FN(buffer_alloc)(size_t bytes, gk_err *err) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        gk_fail(err, GK_ENOMEM, "out of memory allocating %.1f MiB", (double)bytes / (1 << 20));
        return NULL;
    }
    return p;
}

void FN(buffer_free)(void *p) { free(p); }

void FN(buffer_upload)(void *dst, const void *host_src, size_t bytes) {
    if (dst != host_src) memcpy(dst, host_src, bytes);
}

void FN(buffer_download)(void *host_dst, const void *src, size_t bytes) {
    if (host_dst != src) memcpy(host_dst, src, bytes);
}

void FN(buffer_zero)(void *p, size_t bytes) { memset(p, 0, bytes); }

void FN(buffer_sync)(void) {}

size_t FN(buffer_peak_bytes)(void) {
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) ? 0 : (size_t)u.ru_maxrss * 1024; // Linux reports KiB
}

void FN(fill_i32)(int32_t *x, int32_t value, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = value;
}
