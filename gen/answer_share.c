#include "gen/answer_share.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dist.h"
#include "common/strbuf.h"

// One answer on the wire: u64 text length, i32 tokens, i32 finish, the text.
typedef struct {
    uint64_t len;
    int32_t tokens, finish;
} wire_head;

static int pack(const chunk_answer *a, size_t lo, size_t hi, strbuf *sb, gk_err *err) {
    for (size_t i = lo; i < hi; i++) {
        wire_head h = {strlen(a[i].text), a[i].tokens, (int32_t)a[i].finish};
        sb_append(sb, (const char *)&h, sizeof h);
        sb_append(sb, a[i].text, (size_t)h.len);
    }
    return sb->failed ? gk_fail(err, GK_ENOMEM, "out of memory") : 0;
}

// Every answer of bytes [0, total) into all[0, n), but for the rank's own block [lo, hi), already there.
static int unpack(const char *bytes, size_t total, chunk_answer *all, size_t n, size_t lo, size_t hi, gk_err *err) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        wire_head h;
        if (total - at < sizeof h) return gk_fail(err, GK_EINTERNAL, "shared answers: %zu bytes, cut short", total);
        memcpy(&h, bytes + at, sizeof h);
        at += sizeof h;
        if (total - at < h.len) return gk_fail(err, GK_EINTERNAL, "shared answers: answer %zu cut short", i);
        if (i < lo || i >= hi) {
            if (!(all[i].text = malloc(h.len + 1))) return gk_fail(err, GK_ENOMEM, "out of memory");
            memcpy(all[i].text, bytes + at, h.len);
            all[i].text[h.len] = '\0';
            all[i].tokens = h.tokens;
            all[i].finish = (gen_finish)h.finish;
        }
        at += h.len;
    }
    return at == total ? 0 : gk_fail(err, GK_EINTERNAL, "shared answers: %zu bytes left over", total - at);
}

int chunk_answers_share(chunk_answer *all, size_t n, size_t lo, size_t hi, gk_err *err) {
    if (dist_size() <= 1) return 0;
    strbuf sb = {0};
    int rc = dist_check(pack(all, lo, hi, &sb, err), err);
    void *bytes = NULL;
    size_t total = 0;
    if (rc == 0) rc = dist_share_bytes(sb.data ? sb.data : "", sb.len, &bytes, &total, err);
    if (rc == 0) rc = unpack(bytes, total, all, n, lo, hi, err);
    free(bytes);
    sb_free(&sb);
    return rc;
}

void chunk_answers_free(chunk_answer *all, size_t n) {
    for (size_t i = 0; all && i < n; i++) free(all[i].text);
    free(all);
}
