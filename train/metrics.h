// metrics.jsonl: one JSON object per logged step (and per evaluation),
// flushed as written. On resume, lines after the resumed step are dropped,
// so a resumed run's log reads as if it had never stopped.
#ifndef GK_METRICS_H
#define GK_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/strbuf.h"

typedef struct {
    FILE *f;
    char *path;
} metrics_log;

// Opens run_dir/metrics.jsonl, keeping only lines whose "step" is <= keep_through_step.
int metrics_open(metrics_log *m, const char *run_dir, int64_t keep_through_step, gk_err *err);
// Appends one line (a JSON object without the trailing newline) and flushes.
int metrics_write(metrics_log *m, const strbuf *line, gk_err *err);
void metrics_close(metrics_log *m);

#endif
