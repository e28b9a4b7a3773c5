// `gemmakd train` killed with SIGKILL and resumed ends exactly where an
// uninterrupted run ends: byte-identical weights and optimizer state, the same
// logged losses. Three interruptions: after a step, in the middle of writing a
// checkpoint, and a corrupted newest checkpoint (skipped with a warning); and
// the same for a bf16 run (model.precision=bf16), whose checkpoints hold its
// float32 master weights. And what a run_dir tolerates: a fresh run over an
// earlier run's checkpoints (refused, or --overwrite), --resume over only invalid
// checkpoints (refused, nothing changed), a second process (refused by the lock),
// the temporaries of killed runs (removed on resume).
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "common/strbuf.h"
#include "data/shards.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_train_resume";

static char gemmakd[1024], work[64];

// Learnable pseudo-text: documents of a few hundred tokens.
static int write_shard(const char *path, unsigned seed, gk_err *err) {
    shard_meta meta = {.vocab_size = 512, .bos_id = 2, .eos_id = 1, .pad_id = 0};
    memset(meta.tokenizer_sha256, 'b', 64);
    shard_writer *w;
    if (shard_writer_open(&w, path, &meta, err)) return -1;
    for (int d = 0; d < 60; d++) {
        uint32_t doc[400];
        int n = 100 + (int)(seed % 250);
        doc[0] = 2;
        for (int i = 1; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            doc[i] = 3 + (i % 5 == 0 ? (seed >> 16) % 400 : (doc[i - 1] * 13 + 7) % 400);
        }
        if (shard_writer_add_doc(w, doc, NULL, (size_t)n, err)) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// Runs gemmakd train for `run` with an optional environment variable and up to
// six extra arguments (overrides, --resume; NULL-terminated), stderr to errfile
// (NULL: /dev/null); returns the wait status.
static int train_err(const char *run, const char *env, const char *const *extra, const char *errfile) {
    char config[128], run_dir[128];
    snprintf(config, sizeof config, "%s/run.yaml", work);
    snprintf(run_dir, sizeof run_dir, "run_dir=%s/%s", work, run);
    const char *argv[12] = {gemmakd, "train", "--config", config, run_dir};
    for (int i = 0; i < 6 && extra[i]; i++) argv[5 + i] = extra[i];
    return test_spawn(argv, env, errfile);
}
static int train_args(const char *run, const char *env, const char *const *extra) {
    return train_err(run, env, extra, NULL);
}
static int train(const char *run, const char *env, const char *extra) {
    return train_args(run, env, (const char *[]){extra, NULL});
}

static bool same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    gk_err err;
    if (file_read_all(a, &x, &nx, &err)) return false;
    if (file_read_all(b, &y, &ny, &err)) {
        free(x);
        return false;
    }
    bool same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

// The "step"/"loss"/"val_loss" values of metrics.jsonl (timings differ between runs).
static char *losses(const char *run) {
    char path[256], *text;
    size_t len;
    gk_err err;
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", work, run);
    if (file_read_all(path, &text, &len, &err)) return NULL;
    strbuf out = {0};
    for (char *p = text; (p = strstr(p, "\"step\": ")); p++) {
        char *end = strstr(p, ", \"lr\"");
        char *nl = strchr(p, '\n');
        if (!nl) break;
        if (!end || end > nl) end = strstr(p, ", \"val_targets\"");
        if (end && end < nl) sb_append(&out, p, (size_t)(end - p)), sb_puts(&out, "\n");
    }
    free(text);
    return out.data;
}

static void compare_runs(test_case *tc, const char *straight, const char *run) {
    const char *files[] = {"model.safetensors", "optimizer.safetensors", "ema/model.safetensors"};
    for (int i = 0; i < 3; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/%s/step-000012/%s", work, straight, files[i]);
        snprintf(b, sizeof b, "%s/%s/step-000012/%s", work, run, files[i]);
        CHECK(tc, same_file(a, b), "%s: %s differs from the uninterrupted run's", run, files[i]);
    }
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/%s/average-last-2/model.safetensors", work, straight);
    snprintf(b, sizeof b, "%s/%s/average-last-2/model.safetensors", work, run);
    CHECK(tc, same_file(a, b), "%s: the average of the last checkpoints differs from the uninterrupted run's", run);
    char *x = losses(straight), *y = losses(run);
    CHECK(tc, x && y && strlen(x) > 100 && !strcmp(x, y), "%s: logged losses differ:\n%s\nvs\n%s", run, x, y);
    free(x);
    free(y);
}

static void killed_after_step(test_case *tc) {
    int st = train("after_step", "GEMMAKD_TEST_KILL_AFTER_STEP=6", NULL);
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run was not killed (status %d)", st);
    st = train("after_step", NULL, "--resume");
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume failed (status %d)", st);
    compare_runs(tc, "straight", "after_step");
}

// How many entries of dir match the glob pattern.
static size_t count_matches(const char *dir, const char *pattern) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, pattern);
    glob_t g;
    size_t n = glob(p, GLOB_PERIOD, NULL, &g) == 0 ? g.gl_pathc : 0;
    globfree(&g);
    return n;
}

// Killed while writing step 8: no step-000008 appears, the resume removes the killed
// process's .step-000008.tmp-PID (but not a live process's temporary) and ends as if never stopped.
static void killed_in_checkpoint(test_case *tc) {
    int st = train("in_ckpt", "GEMMAKD_TEST_KILL_IN_CHECKPOINT=8", NULL);
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run was not killed (status %d)", st);
    char path[256], dir[256], live[300];
    snprintf(dir, sizeof dir, "%s/in_ckpt", work);
    snprintf(path, sizeof path, "%s/step-000008", dir);
    CHECK(tc, !path_exists(path), "a checkpoint killed while written appeared under its final name");
    CHECK(tc, count_matches(dir, ".step-000008.tmp-*") == 1, "the killed checkpoint's temporary is not there");
    snprintf(live, sizeof live, "%s/.step-000004.tmp-%ld", dir, (long)getpid()); // this test is alive
    gk_err err;
    CHECK(tc, dir_create(live, &err) == 0, "%s", err.msg);
    st = train("in_ckpt", NULL, "--resume");
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume failed (status %d)", st);
    CHECK(tc, count_matches(dir, ".step-000008.tmp-*") == 0, "the killed run's temporary was left behind");
    CHECK(tc, dir_exists(live), "a live process's temporary was removed");
    rmdir(live);
    compare_runs(tc, "straight", "in_ckpt");
}

static void flip_byte(test_case *tc, const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    CHECK(tc, f != NULL, "cannot open %s", path);
}

static bool same_text(const char *path, const char *text) {
    char *now = test_read_text(path);
    bool same = !strcmp(now, text);
    free(now);
    return same;
}

// A fresh run in a run_dir with checkpoints is refused (a later --resume would continue the
// earlier run's newer checkpoints); --overwrite removes them first and equals a fresh run.
static void fresh_run_over_checkpoints(test_case *tc) {
    char dir[256], metrics[300], errfile[300], p[320];
    snprintf(dir, sizeof dir, "%s/earlier", work);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    snprintf(errfile, sizeof errfile, "%s/earlier.err", work);
    int st = train_args("earlier", NULL, (const char *[]){"train.steps=8", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "the earlier run failed (status %d)", st);
    char *before = test_read_text(metrics);
    st = train_err("earlier", NULL, (const char *[]){"train.steps=4", NULL}, errfile);
    char *msg = test_read_text(errfile);
    snprintf(p, sizeof p, "%s/step-000008", dir);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "step-000008") && strstr(msg, "--resume") &&
                  strstr(msg, "--overwrite") && test_one_line(msg),
          "a fresh run over checkpoints: status %d: %s", st, msg);
    CHECK(tc, dir_exists(p) && same_text(metrics, before), "the refused run changed the run_dir");
    free(msg);
    st = train_err("earlier", NULL, (const char *[]){"train.steps=4", "--resume", "--overwrite", NULL}, errfile);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 2, "--resume with --overwrite: status %d", st);
    st = train_args("earlier", NULL, (const char *[]){"train.steps=4", "--overwrite", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "--overwrite failed (status %d)", st);
    st = train_args("fresh4", NULL, (const char *[]){"train.steps=4", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "a fresh 4-step run failed (status %d)", st);
    char *now = test_read_text(metrics), a[300], b[300];
    CHECK(tc, !dir_exists(p) && !strstr(now, "\"step\": 8,") && strstr(now, "\"step\": 4,"),
          "--overwrite kept the earlier run's checkpoints or metrics");
    snprintf(a, sizeof a, "%s/latest/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/fresh4/step-000004/model.safetensors", work);
    CHECK(tc, same_file(a, b), "the overwritten run's weights differ from a fresh run's");
    free(now);
    free(before);
}

// --resume when every checkpoint fails verification: an error naming how many were
// skipped, and the run_dir as it was (no fresh start over the damaged checkpoints).
static void resume_with_only_invalid_checkpoints(test_case *tc) {
    char dir[256], errfile[300], p[320];
    snprintf(dir, sizeof dir, "%s/invalid", work);
    snprintf(errfile, sizeof errfile, "%s/invalid.err", work);
    int st = train_args("invalid", NULL, (const char *[]){"train.steps=8", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "the run failed (status %d)", st);
    const char *kept[] = {"metrics.jsonl", "config.yaml", "step-000004/model.safetensors", "step-000008/trainer_state.json"};
    flip_byte(tc, test_join(dir, "step-000004/model.safetensors"), 4000);
    flip_byte(tc, test_join(dir, "step-000008/trainer_state.json"), 3);
    char *before[4];
    for (int i = 0; i < 4; i++) before[i] = test_read_text(test_join(dir, kept[i]));
    st = train_err("invalid", NULL, (const char *[]){"train.steps=8", "--resume", NULL}, errfile);
    char *msg = test_read_text(errfile), *last = strstr(msg, "gemmakd: error: ");
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && last && strstr(last, "no valid checkpoint (2 skipped)") &&
                  test_one_line(last),
          "resume over invalid checkpoints: status %d: %s", st, msg);
    for (int i = 0; i < 4; i++) {
        CHECK(tc, same_text(test_join(dir, kept[i]), before[i]), "%s changed", kept[i]);
        free(before[i]);
    }
    free(msg);
    st = train_args("new_resumed", NULL, (const char *[]){"train.steps=2", "--resume", NULL});
    snprintf(p, sizeof p, "%s/new_resumed/step-000002", work);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && dir_exists(p), "--resume in a new run_dir: status %d", st);
}

// A second train on a run_dir in use is refused naming the first one's pid, before it changes anything.
static void second_process_refused(test_case *tc) {
    char config[128], run_dir[128], yaml[256], errfile[300], want[64];
    snprintf(config, sizeof config, "%s/run.yaml", work);
    snprintf(run_dir, sizeof run_dir, "run_dir=%s/busy", work);
    snprintf(yaml, sizeof yaml, "%s/busy/config.yaml", work);
    snprintf(errfile, sizeof errfile, "%s/busy.err", work);
    const char *argv[] = {gemmakd, "train", "--config", config, run_dir, "train.steps=1000000", NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 600 && !path_exists(yaml); i++) usleep(100000); // until it has started
    CHECK(tc, path_exists(yaml), "the first run did not start");
    const char *second[][3] = {{"train.steps=1", "--resume", NULL}, {"train.steps=1", "--overwrite", NULL}};
    snprintf(want, sizeof want, "run_dir in use by pid %ld", (long)pid);
    for (int k = 0; k < 2 && !tc->failed; k++) {
        int st = train_err("busy", NULL, second[k], errfile);
        char *msg = test_read_text(errfile);
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, want) && test_one_line(msg),
              "a second train %s: status %d: %s", second[k][1], st, msg);
        free(msg);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int st = train_args("busy", NULL, (const char *[]){"train.steps=2", "--overwrite", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "after the first was killed: status %d", st);
}

static void corrupt_checkpoint_skipped(test_case *tc) {
    int st = train("corrupt", "GEMMAKD_TEST_KILL_AFTER_STEP=9", NULL);
    CHECK(tc, WIFSIGNALED(st), "the run was not killed (status %d)", st);
    char path[256];
    snprintf(path, sizeof path, "%s/corrupt/step-000008/model.safetensors", work);
    flip_byte(tc, path, 4000); // a byte in the middle of the weights
    st = train("corrupt", NULL, "--resume"); // falls back to step 4 and redoes 5..12
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume failed (status %d)", st);
    compare_runs(tc, "straight", "corrupt");
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (f) fclose(f);
    return n;
}

// A bf16 run killed after step 6 and resumed ends where its uninterrupted run
// ends; its checkpoints are float32 master weights (the fp32 run's size), and
// other values than the fp32 run's (the precision took effect).
static void bf16_killed_after_step(test_case *tc) {
    const char *bf16 = "model.precision=bf16";
    int st = train_args("bf16_straight", NULL, (const char *[]){bf16, NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "the uninterrupted bf16 run failed (status %d)", st);
    st = train_args("bf16_after_step", "GEMMAKD_TEST_KILL_AFTER_STEP=6", (const char *[]){bf16, NULL});
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run was not killed (status %d)", st);
    st = train_args("bf16_after_step", NULL, (const char *[]){bf16, "--resume", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume failed (status %d)", st);
    if (tc->failed) return;
    compare_runs(tc, "bf16_straight", "bf16_after_step");
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/straight/step-000012/model.safetensors", work);
    snprintf(b, sizeof b, "%s/bf16_straight/step-000012/model.safetensors", work);
    CHECK(tc, file_size(a) > 0 && file_size(a) == file_size(b), "the bf16 run's checkpoint has %ld bytes, fp32's %ld",
          file_size(b), file_size(a));
    CHECK(tc, !same_file(a, b), "the bf16 run ended with the fp32 run's weights");
}

// Short prompts (3 to 12 tokens after <bos>) for on-policy distillation.
static int write_prompt_shard(const char *path, gk_err *err) {
    shard_meta meta = {.vocab_size = 512, .bos_id = 2, .eos_id = 1, .pad_id = 0};
    memset(meta.tokenizer_sha256, 'b', 64);
    shard_writer *w;
    if (shard_writer_open(&w, path, &meta, err)) return -1;
    for (int d = 0; d < 10; d++) {
        uint32_t doc[13] = {2};
        int n = 4 + d % 10;
        for (int i = 1; i < n; i++) doc[i] = 3 + (uint32_t)((d * 37 + i * 11) % 400);
        if (shard_writer_add_doc(w, doc, NULL, (size_t)n, err)) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// On-policy distillation (half of each step's rows sampled by the student, at temperature
// 1 and top-p 0.9, from an in-process teacher: the uninterrupted run's step 4) killed and
// resumed ends with the weights of the uninterrupted on-policy run: the sampled rows are
// the same, drawn from the same weights with the same seeds.
static void on_policy_killed_after_step(test_case *tc) {
    char prompts[160], teacher[160], shard[160];
    gk_err err = {0};
    snprintf(shard, sizeof shard, "%s/prompts-0.h5", work);
    snprintf(prompts, sizeof prompts, "kd.on_policy.prompts=%s", shard);
    snprintf(teacher, sizeof teacher, "teacher.model=%s/straight/step-000004", work);
    CHECK(tc, write_prompt_shard(shard, &err) == 0, "%s", err.msg);
    const char *args[] = {teacher, "kd.on_policy.fraction=0.5", prompts, "kd.on_policy.top_p=0.9",
                          "kd.on_policy.max_new_tokens=12", NULL, NULL};
    int st = train_args("policy_straight", NULL, args);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "the uninterrupted on-policy run failed (status %d)", st);
    st = train_args("policy_after_step", "GEMMAKD_TEST_KILL_AFTER_STEP=6", args);
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run was not killed (status %d)", st);
    args[5] = "--resume";
    st = train_args("policy_after_step", NULL, args);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume failed (status %d)", st);
    if (tc->failed) return;
    compare_runs(tc, "policy_straight", "policy_after_step");
    char path[256], *log = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/policy_straight/metrics.jsonl", work);
    CHECK(tc, file_read_all(path, &log, &len, &err) == 0 && strstr(log, "\"sampled_rows\": 2"),
          "the on-policy run logged no sampled rows: %s", log ? log : err.msg);
    free(log);
}

// Loads the weights of a model dir under work/ (NULL on failure).
static float *load_weights(const char *rel, model_state *m) {
    char dir[256];
    gk_err err;
    snprintf(dir, sizeof dir, "%s/%s", work, rel);
    return model_load_dir(dir, m, &err) ? NULL : m->params;
}

// A run that checkpoints every step: the EMA it keeps equals the recursion
// e_0 = initial weights, e_s = d e_(s-1) + (1 - d) w_s over the checkpointed
// weights (in double), and average-last-3 the mean of the last three checkpoints.
static void ema_and_average_match_references(test_case *tc) {
    int st = train_args("every_step", NULL,
                        (const char *[]){"checkpoint.every=1", "checkpoint.keep=12", "average.last_k=3", NULL});
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "training failed (status %d)", st);
    model_state init = {0}, m = {0};
    gk_err err = {0};
    char p[256];
    snprintf(p, sizeof p, "%s/model.json", work);
    CHECK(tc, model_config_load(p, &init.cfg, &err) == 0 && param_layout_build(&init.cfg, &init.layout, &err) == 0 &&
                  (init.params = param_buffer_alloc(&init.layout, &err)),
          "%s", err.msg);
    if (tc->failed) return;
    model_init_random(&init.cfg, &init.layout, init.params, 3); // the run's seed
    size_t n = init.layout.n_floats;
    double *e = calloc(n, sizeof *e), *mean = calloc(n, sizeof *mean), d = 0.75;
    for (size_t i = 0; i < n; i++) e[i] = init.params[i];
    for (int s = 1; s <= 12 && !tc->failed; s++) {
        snprintf(p, sizeof p, "every_step/step-%06d", s);
        float *w = load_weights(p, &m);
        CHECK(tc, w, "cannot load %s", p);
        for (size_t i = 0; w && i < n; i++) e[i] = d * e[i] + (1 - d) * w[i];
        for (size_t i = 0; w && s >= 10 && i < n; i++) mean[i] += w[i] / 3.0;
        model_state_free(&m);
    }
    const char *dirs[] = {"every_step/step-000012/ema", "every_step/average-last-3"};
    const double *refs[] = {e, mean}, tolerance[] = {1e-6, 1e-7}; // the trainer's EMA runs in float
    for (int k = 0; k < 2 && !tc->failed; k++) {
        float *got = load_weights(dirs[k], &m);
        double worst = 0, scale = 0;
        for (size_t i = 0; got && i < n; i++) {
            worst = fmax(worst, fabs(got[i] - refs[k][i]));
            scale = fmax(scale, fabs(refs[k][i]));
        }
        CHECK(tc, got && worst <= tolerance[k] * scale, "%s: max error %.3g (scale %.3g) against float64", dirs[k], worst,
              scale);
        model_state_free(&m);
    }
    char *text = losses("every_step");
    CHECK(tc, text && strstr(text, "\"val_loss_ema\"") && strstr(text, "\"val_loss_average\""),
          "metrics.jsonl lacks the EMA or average validation loss:\n%s", text);
    free(text);
    free(e);
    free(mean);
    model_state_free(&init);
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    gk_err err = {0};
    char p[128], yaml[2048];
    if (test_scratch_dir(NULL, "resume", work, sizeof work)) return 1;
    snprintf(p, sizeof p, "%s/train-0.h5", work);
    int ok = write_shard(p, 1, &err) == 0;
    snprintf(p, sizeof p, "%s/val-0.h5", work);
    ok = ok && write_shard(p, 77, &err) == 0;
    snprintf(yaml, sizeof yaml,
             "run_dir: unset\nseed: 3\nthreads: 2\nmodel: {config: %s/model.json}\n"
             "data: {train: %s/train-*.h5, val: %s/val-*.h5, seq_len: 32}\nbatch: {size: 4, micro: 2}\n"
             "train: {steps: 12}\noptim: {lr: 1.0e-2}\nschedule: {warmup: 3}\neval: {every: 4, tokens: 512}\n"
             "checkpoint: {every: 4, keep: 5}\nlog: {every: 1}\nema: {decay: 0.75}\naverage: {last_k: 2}\n",
             work, work, work);
    char model[1024];
    tiny_config_json(&(tiny_shape){32, 64, 2, 4, 2, 8, 512, 256}, model, sizeof model);
    snprintf(p, sizeof p, "%s/run.yaml", work);
    ok = ok && file_write_atomic(p, yaml, strlen(yaml), &err) == 0;
    snprintf(p, sizeof p, "%s/model.json", work);
    ok = ok && file_write_atomic(p, model, strlen(model), &err) == 0;
    int st = ok ? train("straight", NULL, NULL) : -1;
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL %s/setup: %s (uninterrupted run status %d, binary %s)\n", test_program, err.msg, st, gemmakd);
        return 1;
    }
    test_run("killed_after_a_step", killed_after_step);
    test_run("killed_while_writing_a_checkpoint", killed_in_checkpoint);
    test_run("corrupt_newest_checkpoint_skipped", corrupt_checkpoint_skipped);
    test_run("ema_and_average_match_references", ema_and_average_match_references);
    test_run("bf16_killed_after_a_step", bf16_killed_after_step);
    test_run("on_policy_killed_after_a_step", on_policy_killed_after_step);
    test_run("fresh_run_over_checkpoints", fresh_run_over_checkpoints);
    test_run("resume_with_only_invalid_checkpoints", resume_with_only_invalid_checkpoints);
    test_run("second_process_refused", second_process_refused);
    dir_remove_tree(work, &err);
    return test_main_result();
}
