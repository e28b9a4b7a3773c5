// Who may write a run directory, and what an earlier run left in it.
//   run_dir/train.lock  flock'ed by the one train process writing run_dir, for
//                       its whole run; holds that process's pid
//   *.tmp-PID           temporaries (checkpoints being written, atomic files)
//                       of process PID; a killed run leaves them behind
// A fresh run (no --resume) does not start over a run_dir holding checkpoints
// unless told to (--overwrite): resuming later would mix the two runs.
#ifndef GK_RUN_DIR_H
#define GK_RUN_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

// Takes run_dir/train.lock and writes this process's pid in it; *fd holds the lock until
// run_dir_unlock (or the process ends). Another process holding it: "RUN_DIR: run_dir in use by pid N".
int run_dir_lock(const char *run_dir, int *fd, gk_err *err);
void run_dir_unlock(int fd);

// Removes run_dir's temporaries ("NAME.tmp-PID", files or directories) whose process is gone
// (*removed counts them); a live process's are kept.
int run_dir_remove_stale(const char *run_dir, size_t *removed, gk_err *err);

// Before a fresh run: a run_dir with checkpoints is refused, or with overwrite cleared of them
// and of what the earlier run wrote beside them (latest, metrics.jsonl, average-last-*).
int run_dir_prepare_fresh(const char *run_dir, bool overwrite, gk_err *err);

#endif
