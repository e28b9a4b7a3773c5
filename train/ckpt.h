// Training checkpoints. run_dir/step-NNNNNN/ holds
//   config.json, model.safetensors  the model (a Hugging Face model dir)
//   optimizer.safetensors           AdamW moments: exp_avg.<name>, exp_avg_sq.<name>
//   trainer_state.json              step, tokens, counters, the loader cursor
//   gemmakd.json                    {"tokenizer_sha256": ...} of the data it was trained on
//   ema/                            the weight EMA (ema.decay > 0), a model dir of its own
//   manifest.json                   size and checksum of each file above
// It is written as run_dir/.step-NNNNNN.tmp-<pid>, synced, renamed, and only
// then is the symlink run_dir/latest switched to it. Loading checks the
// manifest; a checkpoint that fails is skipped with a warning in favour of
// the previous one.
#ifndef GK_CKPT_H
#define GK_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "data/loader.h"
#include "model/checkpoint.h"
#include "model/optim.h"

typedef struct {
    int64_t step;        // optimizer steps taken (including skipped non-finite ones)
    int64_t tokens_seen; // input tokens consumed
    int64_t bad_steps;   // non-finite steps skipped in total
    double elapsed;      // training seconds so far, over all resumes
    loader_cursor cursor;
} trainer_state;

// Writes step-<state->step> (with ema/ when ema is not NULL); keeps the newest `keep` step directories.
int ckpt_save(const char *run_dir, const model_state *m, const optimizer *o, const trainer_state *s, const float *ema,
              const char *tokenizer_sha256, int keep, gk_err *err);

typedef void (*ckpt_warn_fn)(void *ctx, const char *message);
// The newest valid checkpoint directory (malloc'd) in *dir, or NULL when there is none;
// *skipped counts the newer ones that failed verification (each reported through warn).
int ckpt_find_latest(const char *run_dir, char **dir, size_t *skipped, ckpt_warn_fn warn, void *ctx, gk_err *err);
// Loads into an allocated model (layout must match), optimizer and state.
int ckpt_load(const char *dir, model_state *m, optimizer *o, trainer_state *s, gk_err *err);
// The step directories of run_dir, oldest first (malloc'd strings in a malloc'd array).
int ckpt_list_dirs(const char *run_dir, char ***dirs, size_t *n, gk_err *err);
// Loads dir/ema into ema[layout.n_floats]; *found is false (and ema untouched) when it has none.
int ckpt_load_ema(const char *dir, const model_state *m, float *ema, bool *found, gk_err *err);
// Checks the manifest of dir (sizes and checksums).
int ckpt_verify(const char *dir, gk_err *err);

#endif
