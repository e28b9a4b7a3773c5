#include "train/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"

// Rewrites the file without the lines past keep_through_step (atomically).
static int truncate_after(const char *path, int64_t keep_through_step, gk_err *err) {
    char *text;
    size_t len;
    if (!path_exists(path)) return 0;
    if (file_read_all(path, &text, &len, err)) return -1;
    strbuf kept = {0};
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl) break; // a torn last line (killed mid-write) is dropped
        json_doc doc;
        gk_err ignored;
        if (json_parse(p, (size_t)(nl - p), path, &doc, &ignored)) continue;
        const json_value *step = json_get(doc.root, "step");
        if (step && step->is_integer && step->integer <= keep_through_step) sb_append(&kept, p, (size_t)(nl - p) + 1);
        json_free(&doc);
    }
    free(text);
    int rc = kept.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, kept.data ? kept.data : "", kept.len, err);
    sb_free(&kept);
    return rc;
}

int metrics_open(metrics_log *m, const char *run_dir, int64_t keep_through_step, gk_err *err) {
    memset(m, 0, sizeof *m);
    m->path = path_join(run_dir, "metrics.jsonl");
    if (!m->path) return gk_fail(err, GK_ENOMEM, "out of memory");
    int rc = truncate_after(m->path, keep_through_step, err);
    if (rc == 0 && !(m->f = fopen(m->path, "a"))) rc = gk_fail(err, GK_EIO, "%s: cannot open: %s", m->path, strerror(errno));
    if (rc) {
        free(m->path);
        m->path = NULL;
    }
    return rc;
}

int metrics_write(metrics_log *m, const strbuf *line, gk_err *err) {
    if (!m->f) return 0; // never opened: a rank other than 0, which logs nothing
    if (line->failed) return gk_fail(err, GK_ENOMEM, "out of memory");
    if (fprintf(m->f, "%s\n", line->data) < 0 || fflush(m->f) != 0)
        return gk_fail(err, GK_EIO, "%s: write failed: %s", m->path, strerror(errno));
    return 0;
}

void metrics_close(metrics_log *m) {
    if (m->f) fclose(m->f);
    free(m->path);
    memset(m, 0, sizeof *m);
}
