#include "cli/bench_prompt.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/rng.h"
#include "gen/generate.h"

// Seconds generate() takes for n prompts of len random ids [n, len] with one new
// token each, after the engine is open (gen_stats.seconds): prompt processing.
static int time_prompts(const model_state *m, const prompt_bench *b, const int32_t *ids, int n, bool stepwise,
                        double *seconds, gk_err *err) {
    gen_request *reqs = gk_calloc((size_t)n, sizeof *reqs, err);
    gen_output *outs = reqs ? gk_calloc((size_t)n, sizeof *outs, err) : NULL;
    int rc = outs ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++)
        reqs[i] = (gen_request){ids + (size_t)i * b->prompt_len, (size_t)b->prompt_len, 1, (uint64_t)i};
    generator g = {.m = m, .backend = b->backend, .sampling = {.greedy = true}, .batch = b->batch,
                   .stepwise_prompts = stepwise};
    gen_stats st;
    if (rc == 0) rc = generate(&g, reqs, (size_t)n, outs, &st, err);
    if (rc == 0) *seconds = st.seconds;
    if (rc == 0) gen_outputs_free(outs, (size_t)n);
    free(reqs);
    free(outs);
    return rc;
}

// Prompt tokens per second of one way: an untimed prompt first (kernels chosen, memory touched).
static int prompt_rate(const model_state *m, const prompt_bench *b, const int32_t *ids, bool stepwise, double *rate,
                       gk_err *err) {
    double warm, seconds;
    if (time_prompts(m, b, ids, 1, stepwise, &warm, err) ||
        time_prompts(m, b, ids + b->prompt_len, b->prompts, stepwise, &seconds, err))
        return -1;
    *rate = (double)b->prompts * b->prompt_len / seconds;
    return 0;
}

int bench_prompts(const model_state *m, const prompt_bench *b, bool json, gk_err *err) {
    if (b->prompt_len + 1 > m->cfg.max_seq_len)
        return gk_fail(err, GK_EUSAGE, "--prompt-len: %d tokens and one new exceed the model's %d positions",
                       b->prompt_len, m->cfg.max_seq_len);
    size_t n = (size_t)(b->prompts + 1) * b->prompt_len;
    int32_t *ids = gk_malloc(n * sizeof *ids, err);
    if (!ids) return -1;
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(hash64(i) % (uint64_t)m->cfg.vocab_size);
    double stepwise, prefill;
    int rc = prompt_rate(m, b, ids, true, &stepwise, err);
    if (rc == 0) rc = prompt_rate(m, b, ids, false, &prefill, err);
    free(ids);
    if (rc) return -1;
    const char *device = engine_device_name(b->backend.device), *precision = engine_precision_name(b->backend.precision);
    if (json) {
        printf("{\"config\": \"%s\", \"device\": \"%s\", \"precision\": \"%s\", \"machine\": \"%s\", \"threads\": %d, "
               "\"prompt_len\": %d, \"prompts\": %d, \"batch\": %d, \"stepwise_tokens_per_s\": %.1f, "
               "\"prefill_tokens_per_s\": %.1f}\n",
               b->config, device, precision, b->machine, omp_get_max_threads(), b->prompt_len, b->prompts, b->batch,
               stepwise, prefill);
        return 0;
    }
    printf("bench: %s (d_model %d, %d layers, vocab %d), %s %s, %d prompts of %d tokens, batch %d, %d threads\n",
           b->config, m->cfg.d_model, m->cfg.n_layers, m->cfg.vocab_size, device, precision, b->prompts, b->prompt_len,
           b->batch, omp_get_max_threads());
    printf("machine       %s\n", b->machine);
    printf("prompt        %.1f tokens/s fed one position per step\n", stepwise);
    printf("prompt        %.1f tokens/s prefilled (%.1fx)\n", prefill, prefill / stepwise);
    return 0;
}
