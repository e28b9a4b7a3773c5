// On-policy distillation (GKD) and sequence-level KD: rows of a training step
// whose continuations a model samples from prompts, trained on the sampled
// tokens only (run config kd.on_policy, kd.seq_kd).
//
// Step s (0-based) samples floor((s+1) f B) - floor(s f B) of its B rows (f =
// kd.on_policy.fraction), so every f gives that share of rows over a run and a
// step's count depends on s alone. The c-th sampled row of the run continues
// prompt order[c mod n] (one seeded shuffle of the n prompts) with draws seeded
// by (seed, c): a resumed run samples what the uninterrupted one did, whatever
// the batching. The student samples with its weights of that step (the teacher
// with seq_kd); the in-process teacher then scores prompt and continuation.
//
// A sampled row holds prompt p[0..P) and continuation g[0..G) (ending in a stop
// id, or at max_new_tokens), padded to T with id 0; its target at position t
// is the next token where that token was sampled (P-1 <= t < P-1+G), -1 elsewhere:
// the prompt and the padding are never trained.
#ifndef GK_TRAIN_ON_POLICY_H
#define GK_TRAIN_ON_POLICY_H

#include <stdint.h>

#include "gen/generate.h"
#include "train/run_config.h"

typedef struct {
    int32_t **prompts;  // [n] the prompts, in their seeded order
    size_t *n_prompt;   // [n]
    size_t n;
    int T, B, max_new;
    double fraction;
    uint64_t seed;
    sampling sampling;
    int32_t stops[2];
    size_t n_stop;
    // The step sampled last: its rows sampled rows, of which this process holds first..first+count-1
    // (all of them in one process; a rank's share under mpirun): [count, T] each.
    int rows, first, count;
    int32_t *tokens, *targets;
    int64_t new_tokens;  // sampled tokens in the rows held
    double seconds;      // the time their sampling took
} on_policy;

// Loads the prompts of rc->kd.on_policy: token shards (each document a prompt: a
// chat shard's document up to its first trained token, the model's turn; any
// other document whole) or one JSONL file of records ("messages", "conversation"
// or "prompt": the system turn and the first user turn, in the chat template
// with the generation prompt; "text": the text after <bos>), tokenized with the
// teacher's tokenizer (kd.on_policy.tokenizer, else the teacher model dir's).
// Prompts with fewer than max_new_tokens positions left in seq_len are skipped,
// counted on stderr; none left is an error. vocab: the student's;
// tokenizer_sha256: the training shards'.
int on_policy_open(on_policy *op, const run_config *rc, const model_config *student, const char *tokenizer_sha256,
                   gk_err *err);
void on_policy_close(on_policy *op);

// The sampled rows of step s.
int on_policy_rows_at(const on_policy *op, int64_t step);

// Samples step s's rows with g (its engine, model and backend set; sampling and
// stops come from op) into op->tokens / op->targets.
int on_policy_sample(on_policy *op, const generator *g, int64_t step, gk_err *err);
// The same for rows first..first+count-1 of the step's sampled rows only (a rank's share): each
// row is the one all of them sampled at once give.
int on_policy_sample_part(on_policy *op, const generator *g, int64_t step, int first, int count, gk_err *err);

// Copies the step's sampled row i (one of those held) into a staged row: tokens [T], targets [T], doc_begin [T].
void on_policy_stage_row(const on_policy *op, int i, int32_t *tokens, int32_t *targets, int32_t *doc_begin);

// The targets of a row of prompt P and continuation G padded to T (targets [T]; see above).
void on_policy_row_targets(const int32_t *tokens, size_t P, size_t G, int T, int32_t *targets);

#endif
