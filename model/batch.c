// Token batches: per-token document starts for packed sequences.
#include "model/gemma2.h"

int doc_begin_from_starts(const int64_t *starts, size_t n_starts, int T, int32_t *doc_begin, gk_err *err) {
    for (size_t i = 0; i < n_starts; i++) {
        if (starts[i] < 0 || starts[i] >= T)
            return gk_fail(err, GK_EINPUT, "document start %lld is outside the sequence [0, %d)", (long long)starts[i], T);
        if (i && starts[i] <= starts[i - 1])
            return gk_fail(err, GK_EINPUT, "document starts must be increasing (%lld after %lld)",
                           (long long)starts[i], (long long)starts[i - 1]);
    }
    size_t next = 0;
    int32_t begin = 0;
    for (int t = 0; t < T; t++) {
        if (next < n_starts && starts[next] == t) begin = t, next++;
        doc_begin[t] = begin;
    }
    return 0;
}
