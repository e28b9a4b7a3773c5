// Run configs: YAML files (configs/runs/*.yaml) with `section.key=value`
// overrides from the command line. One table of keys drives parsing,
// defaults, validation, "did you mean" suggestions and the resolved copy
// saved in the run directory. Named choices (optimizer, schedule, KD loss,
// sparse objective) become enums here, once.
#ifndef GK_RUN_CONFIG_H
#define GK_RUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "distill/objectives.h"
#include "model/engine.h"
#include "model/optim.h"
#include "train/schedule.h"

enum { RC_MAX_PATTERNS = 16, RC_PATH = 512, RC_NAME = 32 };

// kd.sparse "auto": the cache's method picks the objective (sampled, else topk_bucket).
enum { KD_SPARSE_AUTO = -1 };

typedef struct {
    char items[RC_MAX_PATTERNS][RC_PATH]; // file names or glob patterns
    int count;
} rc_paths;

typedef struct {
    char run_dir[RC_PATH];
    int64_t seed;
    int threads; // 0 = all cores
    struct {
        char config[RC_PATH]; // new model from a config.json ...
        char from[RC_PATH];   // ... or continue from a model dir
        int64_t init_seed;    // seed of the random init (default: seed)
        char device[RC_NAME]; // cpu | cuda
        char precision[RC_NAME]; // fp32 | bf16
    } model;
    struct {
        rc_paths train, val;
        int seq_len;
    } data;
    struct {
        int size, micro; // sequences per optimizer step / per forward-backward
    } batch;
    struct {
        int64_t steps, tokens; // exactly one is set
        int head_chunk;        // tokens per output-head chunk
        int max_bad_steps;     // non-finite steps in a row that stop the run
    } train;
    struct {
        optim_kind kind; // name: adamw | sgd
        double lr, betas[2], eps, weight_decay, grad_clip;
    } optim;
    struct {
        schedule_kind kind; // name: cosine | linear | constant | wsd
        int64_t warmup;
        double min_lr_ratio, decay_fraction; // decay_fraction: the final share of steps that wsd decays over
    } schedule;
    struct {
        char model[RC_PATH], cache[RC_PATH];
        char device[RC_NAME], precision[RC_NAME]; // of an in-process teacher; "" = the student's
    } teacher;
    struct {
        kd_divergence loss; // forward_kl | reverse_kl | jsd
        int sparse;         // with teacher.cache: a sparse_objective (topk_renorm | topk_bucket | sampled) or KD_SPARSE_AUTO
        double alpha, temperature, beta;
        bool t2_scale;
        // On-policy distillation (train/on_policy.h): that fraction of each step's rows are
        // continuations of prompts sampled by the student (by the teacher with seq_kd),
        // trained on their generated tokens only.
        struct {
            double fraction;        // 0 = off
            rc_paths prompts;       // token shards (each document a prompt) or one JSONL file of records
            char tokenizer[RC_PATH]; // for JSONL prompts; "" = the teacher model dir's
            int max_new_tokens;
            double temperature;     // 0 = greedy
            double top_p;
        } on_policy;
        bool seq_kd; // the teacher samples the continuations (sequence-level KD)
    } kd;
    struct {
        int64_t every, tokens;
    } eval;
    struct {
        int64_t every;
        int keep;
    } checkpoint;
    struct {
        int64_t every; // steps between metrics lines
    } log;
    struct {
        double decay;
    } ema;
    struct {
        int last_k;
    } average;
    struct {
        int zero; // under mpirun: 1 = ZeRO-1 (each rank keeps a block of the optimizer state), 0 = all of it
    } parallel;
} run_config;

// Reads `path` (YAML), applies overrides ("optim.lr=1e-3", "data.train=[a.h5, b.h5]") and validates.
int run_config_load(const char *path, char *const *overrides, int n_overrides, run_config *rc, gk_err *err);
// Defaults for every key (then the required ones still need values).
void run_config_defaults(run_config *rc);
int run_config_validate(const run_config *rc, const char *source, gk_err *err);
// The resolved config as YAML, every key written out.
void run_config_to_yaml(const run_config *rc, strbuf *out);
// The backends of the student (model.device, model.precision) and of an in-process
// teacher (teacher.device, teacher.precision, each defaulting to the student's).
int run_config_backend(const run_config *rc, engine_backend *b, gk_err *err);
int run_config_teacher_backend(const run_config *rc, engine_backend *b, gk_err *err);

#endif
