#include "common/dist_work.h"

#include <stdlib.h>
#include <string.h>

#include "common/dist.h"

int dist_gather_rows(void *buf, size_t row_bytes, uint64_t lo, uint64_t hi, gk_err *err) {
    if (dist_size() <= 1) return 0;
    void *all;
    size_t total;
    if (dist_gather_bytes((char *)buf + lo * row_bytes, (hi - lo) * row_bytes, &all, &total, err)) return -1;
    if (dist_is_root()) memcpy(buf, all, total);
    free(all);
    return 0;
}

int dist_share_bytes(const void *in, size_t bytes, void **out, size_t *total, gk_err *err) {
    if (dist_gather_bytes(in, bytes, out, total, err)) return -1;
    if (dist_size() <= 1) return 0;
    uint64_t n = *total;
    dist_bcast(&n, sizeof n, 0);
    bool ok = dist_is_root() || (*out = malloc(n ? n : 1)) != NULL;
    if (!dist_all_ok(ok)) { // every rank leaves together
        free(*out);
        *out = NULL;
        return ok ? gk_fail(err, GK_EIO, "a rank could not receive %llu shared bytes", (unsigned long long)n)
                  : gk_fail(err, GK_ENOMEM, "out of memory receiving %llu shared bytes", (unsigned long long)n);
    }
    dist_bcast(*out, n, 0);
    *total = n;
    return 0;
}
