// gemmakd train: the training loop for scratch training and SFT (cross-entropy
// on the targets the loader marks: same document, and model turns in chat
// shards). A step accumulates batch.size / batch.micro micro-batches; the
// loss is the mean over every trained target of the step. Checkpoints,
// exact resume, metrics.jsonl, evaluation and a progress line.
#ifndef GK_TRAINER_H
#define GK_TRAINER_H

#include <stdbool.h>

#include "train/run_config.h"

// Runs to completion; with resume, continues from the newest valid checkpoint
// in run_dir (a run without one starts fresh).
int trainer_run(const run_config *rc, bool resume, gk_err *err);

#endif
