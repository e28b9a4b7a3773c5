// The in-process teacher: a model dir loaded beside the student and run
// forward only on the student's batches, keeping one layer's activations at a
// time (its logits feed the distillation head, distill/kd_head.h), on a backend
// of its own (a bf16 teacher may teach an fp32 student). It must share the
// student's vocabulary and the data's tokenizer.
#ifndef GK_TEACHER_H
#define GK_TEACHER_H

#include "model/checkpoint.h"
#include "model/engine.h"

typedef struct {
    model_state model;
    engine *engine; // forward only: [B, T]
} online_teacher;

// Opens dir on `backend` for batches of B x T tokens. vocab_size: the student's;
// tokenizer_sha256: the token shards' (a mismatch in either stops with both values named);
// T must fit the teacher's positions. On failure nothing stays allocated.
int online_teacher_open(online_teacher *t, const char *dir, engine_backend backend, int vocab_size,
                        const char *tokenizer_sha256, int B, int T, gk_err *err);
// Runs the teacher on a batch; its logits are then engine_logits(t->engine, ...).
int online_teacher_forward(online_teacher *t, const token_batch *batch, gk_err *err);
void online_teacher_close(online_teacher *t);

#endif
