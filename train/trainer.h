// gemmakd train: the training loop for scratch training and SFT (cross-entropy
// on the targets the loader marks: same document, and model turns in chat
// shards). A step accumulates batch.size / batch.micro micro-batches; the
// loss is the mean over every trained target of the step. Checkpoints,
// exact resume, metrics.jsonl, evaluation and a progress line.
#ifndef GK_TRAINER_H
#define GK_TRAINER_H

#include <stdbool.h>

#include "train/run_config.h"

// Runs to completion, holding run_dir's lock (train/run_dir.h) throughout. With
// resume, continues from the newest valid checkpoint in run_dir: a run_dir without
// checkpoints starts fresh, one whose checkpoints are all invalid is an error that
// changes nothing. Without, a run_dir holding checkpoints is refused unless
// overwrite (they are removed first).
int trainer_run(const run_config *rc, bool resume, bool overwrite, gk_err *err);

#endif
