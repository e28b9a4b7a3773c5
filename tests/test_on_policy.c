// On-policy distillation's sampled rows (train/on_policy.h): which targets a
// sampled row trains, how many rows each step samples, and that a row's
// continuation depends on its place in the run, not on how the run is batched
// nor on which engine of the model samples it. (The whole step against
// autograd: tests/test_train_step.c; killed and resumed: tests/test_train_resume.c.)
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "tests/check.h"
#include "tests/fixtures.h"
#include "train/on_policy.h"

const char *test_program = "test_on_policy";

// Prompt 2 5 6, continuation 7 8, padded to 8: only the positions whose next token was
// sampled (6 -> 7 and 7 -> 8) are trained.
static void targets_exclude_prompt_and_padding(test_case *tc) {
    int32_t tokens[8] = {2, 5, 6, 7, 8, 0, 0, 0}, targets[8];
    const int32_t want[8] = {-1, -1, 7, 8, -1, -1, -1, -1};
    on_policy_row_targets(tokens, 3, 2, 8, targets);
    for (int t = 0; t < 8; t++) CHECK(tc, targets[t] == want[t], "position %d: target %d, want %d", t, targets[t], want[t]);
    // A one-token prompt whose continuation fills the row: every position but the last.
    int32_t full[4] = {2, 9, 10, 11}, want_full[4] = {9, 10, 11, -1};
    on_policy_row_targets(full, 1, 3, 4, targets);
    for (int t = 0; t < 4; t++) CHECK(tc, targets[t] == want_full[t], "full row, position %d: %d", t, targets[t]);
}

// Over S steps the rows add up to floor(S f B), each step's between 0 and B.
static void rows_per_step_add_up(test_case *tc) {
    const double fractions[] = {0.1, 0.25, 0.3, 1.0 / 3, 0.5, 0.9, 1};
    const int batches[] = {1, 3, 8};
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 3; j++) {
            on_policy op = {.fraction = fractions[i], .B = batches[j]};
            int64_t sum = 0;
            for (int64_t s = 0; s < 60; s++) {
                int rows = on_policy_rows_at(&op, s);
                CHECK(tc, rows >= 0 && rows <= op.B, "f %g, B %d, step %lld: %d rows", op.fraction, op.B, (long long)s,
                      rows);
                sum += rows;
                int64_t want = (int64_t)((double)(s + 1) * fractions[i] * batches[j] + 1e-9);
                CHECK(tc, sum == want, "f %g, B %d: %lld rows in %lld steps, want %lld", op.fraction, op.B,
                      (long long)sum, (long long)s + 1, (long long)want);
                if (tc->failed) return;
            }
        }
}

// Five prompts of 1 to 5 tokens, to be continued by 6 sampled tokens in rows of 12.
static void prompts_of(on_policy *op, int B, double fraction) {
    *op = (on_policy){.T = 12, .B = B, .max_new = 6, .fraction = fraction, .seed = 17,
                      .sampling = {.temperature = 1.0, .top_p = 0.9}};
    op->n = 5;
    op->prompts = malloc(op->n * sizeof *op->prompts);
    op->n_prompt = malloc(op->n * sizeof *op->n_prompt);
    for (size_t p = 0; p < op->n; p++) {
        op->n_prompt[p] = p + 1;
        op->prompts[p] = malloc(op->n_prompt[p] * sizeof(int32_t));
        for (size_t i = 0; i < op->n_prompt[p]; i++) op->prompts[p][i] = (int32_t)(2 + 7 * p + 3 * i);
    }
    op->tokens = malloc((size_t)B * op->T * sizeof *op->tokens);
    op->targets = malloc((size_t)B * op->T * sizeof *op->targets);
}

// The c-th sampled row of a run is the same whether steps sample 4 rows (B 4, f 1),
// 2 (B 4, f 0.5) or 1 at a time (B 2, f 0.5), and whether a decode-only engine or the
// trainer's (opened for training) samples it.
static void rows_independent_of_batching(test_case *tc) {
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, tiny_model(&(tiny_shape){32, 48, 2, 4, 2, 4, 300, 64}, 9, &m, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    int32_t want[8][12];
    on_policy all;
    prompts_of(&all, 4, 1.0);
    generator g = {.m = &m};
    for (int s = 0; s < 2 && !tc->failed; s++) { // rows 0-3, then 4-7
        CHECK(tc, on_policy_sample(&all, &g, s, &err) == 0 && all.rows == 4, "%s (%d rows)", err.msg, all.rows);
        memcpy(want[4 * s], all.tokens, 4 * sizeof want[0]);
    }
    const struct { int B; double f; bool trainer_engine; } ways[] = {{4, 0.5, false}, {2, 0.5, false}, {4, 0.5, true}};
    for (int w = 0; w < 3 && !tc->failed; w++) {
        on_policy op;
        prompts_of(&op, ways[w].B, ways[w].f);
        engine *e = NULL;
        if (ways[w].trainer_engine)
            CHECK(tc, engine_open(&e, &m, (engine_backend){0}, 2, 12, true, &err) == 0, "%s", err.msg);
        generator h = {.m = &m, .engine = e};
        for (int s = 0, row = 0; row < 8 && !tc->failed; s++) {
            CHECK(tc, on_policy_sample(&op, &h, s, &err) == 0, "%s", err.msg);
            for (int i = 0; i < op.rows && !tc->failed; i++, row++)
                CHECK(tc, !memcmp(op.tokens + i * op.T, want[row], sizeof want[0]),
                      "B %d, f %g%s: row %d differs from the run sampling 4 rows a step", ways[w].B, ways[w].f,
                      ways[w].trainer_engine ? ", the trainer's engine" : "", row);
        }
        engine_close(e);
        on_policy_close(&op);
    }
    // The rows differ from each other (the seeds are the rows', not one for all).
    CHECK(tc, memcmp(want[0] + 1, want[5] + 1, 6 * sizeof(int32_t)), "rows 0 and 5 (the same prompt) sampled alike");
    on_policy_close(&all);
    model_state_free(&m);
}

// A step's sampled rows drawn in parts (a rank's share each: rows 0, 1-2 and 3 of 4) are the rows
// drawn all at once.
static void parts_are_rows_of_the_whole(test_case *tc) {
    model_state m = {0};
    gk_err err = {0};
    CHECK(tc, tiny_model(&(tiny_shape){32, 48, 2, 4, 2, 4, 300, 64}, 9, &m, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    on_policy all, part;
    prompts_of(&all, 4, 1.0);
    prompts_of(&part, 4, 1.0);
    generator g = {.m = &m};
    const int first[] = {0, 1, 3}, count[] = {1, 2, 1};
    for (int s = 0; s < 2 && !tc->failed; s++) {
        CHECK(tc, on_policy_sample(&all, &g, s, &err) == 0, "%s", err.msg);
        for (int p = 0; p < 3 && !tc->failed; p++) {
            CHECK(tc, on_policy_sample_part(&part, &g, s, first[p], count[p], &err) == 0, "%s", err.msg);
            for (int i = first[p]; i < first[p] + count[p] && !tc->failed; i++) {
                int32_t a[12], b[12], ta[12], tb[12], d[12];
                on_policy_stage_row(&all, i, a, ta, d);
                on_policy_stage_row(&part, i, b, tb, d);
                CHECK(tc, !memcmp(a, b, sizeof a) && !memcmp(ta, tb, sizeof ta),
                      "step %d, row %d sampled in a part of %d differs from the whole step's", s, i, count[p]);
            }
        }
    }
    on_policy_close(&all);
    on_policy_close(&part);
    model_state_free(&m);
}

int main(void) {
    test_run("targets_exclude_prompt_and_padding", targets_exclude_prompt_and_padding);
    test_run("rows_per_step_add_up", rows_per_step_add_up);
    test_run("rows_independent_of_batching", rows_independent_of_batching);
    test_run("parts_are_rows_of_the_whole", parts_are_rows_of_the_whole);
    return test_main_result();
}
