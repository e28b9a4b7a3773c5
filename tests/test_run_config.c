// Run configs: YAML parsing, command-line overrides, defaults, validation
// with "did you mean" suggestions, and the resolved copy reading back the same.
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "tests/check.h"
#include "train/run_config.h"

const char *test_program = "test_run_config";

static const char *FULL =
    "# a full run config\n"
    "run_dir: runs/tiny-distill\n"
    "seed: 1234\n"
    "model:   {config: configs/models/tiny.json}\n"
    "data:    {train: \"data/corpus/train-*.h5\", val: [\"data/corpus/val-*.h5\", x.h5], seq_len: 256}\n"
    "batch:   {size: 16, micro: 4}\n"
    "train:   {steps: 2000}\n"
    "optim:   {name: adamw, lr: 3.0e-3, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.1, grad_clip: 1.0}\n"
    "schedule: {name: cosine, warmup: 100, min_lr_ratio: 0.1}\n"
    "teacher: {model: runs/teacher/latest}\n"
    "kd:      {loss: forward_kl, alpha: 1.0, temperature: 2.0, t2_scale: yes}\n"
    "eval:    {every: 200, tokens: 2e5}\n"
    "checkpoint:\n"
    "  every: 500\n"
    "  keep: 3\n"
    "ema:     {decay: 0.0}\n"
    "average: {last_k: 0}\n";

// Writes text to a temporary file; returns its path (static buffer per call site).
static const char *write_temp(const char *text, char *path) {
    strcpy(path, "/tmp/gk_rc_XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) path[0] = 0;
        close(fd);
    }
    return path;
}

static int load_text(const char *text, char *const *ov, int n_ov, run_config *rc, gk_err *err) {
    char path[64];
    write_temp(text, path);
    int r = run_config_load(path, ov, n_ov, rc, err);
    unlink(path);
    return r;
}

static void full_file(test_case *tc) {
    run_config rc;
    gk_err err = {0};
    CHECK(tc, load_text(FULL, NULL, 0, &rc, &err) == 0, "%s", err.msg);
    CHECK(tc, !strcmp(rc.run_dir, "runs/tiny-distill") && rc.seed == 1234 && rc.model.init_seed == 1234, "run_dir/seed");
    CHECK(tc, rc.data.train.count == 1 && !strcmp(rc.data.train.items[0], "data/corpus/train-*.h5"), "data.train");
    CHECK(tc, rc.data.val.count == 2 && !strcmp(rc.data.val.items[1], "x.h5") && rc.data.seq_len == 256, "data.val");
    CHECK(tc, rc.batch.size == 16 && rc.batch.micro == 4 && rc.train.steps == 2000 && rc.train.tokens == 0, "batch/train");
    CHECK(tc, rc.optim.kind == OPTIM_ADAMW && rc.optim.lr == 3e-3 && rc.optim.betas[0] == 0.9 &&
                  rc.optim.betas[1] == 0.95 && rc.optim.eps == 1e-8 && rc.optim.weight_decay == 0.1,
          "optim");
    CHECK(tc, rc.schedule.kind == SCHEDULE_COSINE && rc.schedule.warmup == 100 && rc.schedule.min_lr_ratio == 0.1, "schedule");
    CHECK(tc, !strcmp(rc.teacher.model, "runs/teacher/latest") && rc.kd.temperature == 2.0 && rc.kd.t2_scale, "kd");
    CHECK(tc, rc.eval.every == 200 && rc.eval.tokens == 200000 && rc.checkpoint.every == 500 && rc.checkpoint.keep == 3,
          "eval/checkpoint");
}

static void overrides_apply(test_case *tc) {
    char *ov[] = {"optim.lr=1e-3", "optim.betas=[0.8, 0.99]", "data.train=[a.h5, b.h5, c.h5]", "batch.micro=8",
                  "teacher.model=", "teacher.cache=data/teacher", "kd.sparse=sampled", "train.steps=5", "seed=7"};
    run_config rc;
    gk_err err = {0};
    CHECK(tc, load_text(FULL, ov, 9, &rc, &err) == 0, "%s", err.msg);
    CHECK(tc, rc.optim.lr == 1e-3 && rc.optim.betas[0] == 0.8 && rc.optim.betas[1] == 0.99, "optim overrides");
    CHECK(tc, rc.data.train.count == 3 && !strcmp(rc.data.train.items[2], "c.h5"), "list override");
    CHECK(tc, rc.batch.micro == 8 && !rc.teacher.model[0] && !strcmp(rc.teacher.cache, "data/teacher"), "teacher");
    CHECK(tc, rc.kd.sparse == SPARSE_SAMPLED && rc.train.steps == 5 && rc.seed == 7, "others");
    CHECK(tc, rc.model.init_seed == 7, "init_seed follows seed: %lld", (long long)rc.model.init_seed);
}

static void minimal_defaults(test_case *tc) {
    run_config rc;
    gk_err err = {0};
    const char *min = "run_dir: r\nmodel: {from: m}\ndata: {train: t.h5, seq_len: 8}\ntrain: {tokens: 1000}\n";
    CHECK(tc, load_text(min, NULL, 0, &rc, &err) == 0, "%s", err.msg);
    CHECK(tc, rc.batch.size == 8 && rc.optim.kind == OPTIM_ADAMW && rc.schedule.kind == SCHEDULE_COSINE &&
                  rc.kd.loss == KD_FORWARD_KL && rc.kd.sparse == KD_SPARSE_AUTO && rc.checkpoint.keep == 3 &&
                  rc.train.head_chunk == 1024 && rc.log.every == 1,
          "defaults");
}

// Every name of the four choices loads as its enum value, and the resolved YAML writes it back.
static void choices_become_enums(test_case *tc) {
    const struct {
        const char *key;
        size_t offset; // of the int-sized field in run_config
        const char *names[4];
        int values[4];
    } keys[] = {
        {"optim.name", offsetof(run_config, optim.kind), {"adamw", "sgd"}, {OPTIM_ADAMW, OPTIM_SGD}},
        {"schedule.name", offsetof(run_config, schedule.kind), {"constant", "cosine", "linear", "wsd"},
         {SCHEDULE_CONSTANT, SCHEDULE_COSINE, SCHEDULE_LINEAR, SCHEDULE_WSD}},
        {"kd.loss", offsetof(run_config, kd.loss), {"forward_kl", "reverse_kl", "jsd"},
         {KD_FORWARD_KL, KD_REVERSE_KL, KD_JSD}},
        {"kd.sparse", offsetof(run_config, kd.sparse), {"auto", "topk_renorm", "topk_bucket", "sampled"},
         {KD_SPARSE_AUTO, SPARSE_TOPK_RENORM, SPARSE_TOPK_BUCKET, SPARSE_SAMPLED}},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        for (int j = 0; j < 4 && keys[i].names[j]; j++) {
            char override[64], written[64];
            snprintf(override, sizeof override, "%s=%s", keys[i].key, keys[i].names[j]);
            snprintf(written, sizeof written, "  %s: \"%s\"\n", strchr(keys[i].key, '.') + 1, keys[i].names[j]);
            run_config rc;
            gk_err err = {0};
            char *ov[1] = {override};
            CHECK(tc, load_text(FULL, ov, 1, &rc, &err) == 0, "%s: %s", override, err.msg);
            int got;
            memcpy(&got, (const char *)&rc + keys[i].offset, sizeof got);
            CHECK(tc, got == keys[i].values[j], "%s gave %d, want %d", override, got, keys[i].values[j]);
            strbuf sb = {0};
            run_config_to_yaml(&rc, &sb);
            CHECK(tc, sb.data && strstr(sb.data, written), "%s is not written as %s", override, written);
            sb_free(&sb);
        }
    }
}

typedef struct {
    const char *text;     // file contents (FULL when NULL)
    const char *override; // or one bad override
    const char *message;  // expected in the error
} bad_case;

#define MINIMAL "run_dir: r\nmodel: {config: c}\ndata: {train: t, seq_len: 4}\ntrain: {steps: 1}\n"

static void rejections(test_case *tc) {
    const bad_case cases[] = {
        {"run_dir: r\noptim: {learning_rate: 1}\n", NULL, ":2: unknown key 'optim.learning_rate' (did you mean 'optim.lr'?)"},
        {"run_dir: r\nsed: 3\n", NULL, "unknown key 'sed' (did you mean 'seed'?)"},
        {NULL, "optim.lrr=1", "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"},
        {NULL, "optim.lr", "expected section.key=value"},
        {NULL, "optim.lr=fast", "'optim.lr' must be a number"},
        {NULL, "batch.size=2.5", "'batch.size' must be an integer"},
        {NULL, "optim.name=adam", "'optim.name' must be one of adamw|sgd"},
        {NULL, "schedule.name=cos", "'schedule.name' must be one of cosine|linear|constant|wsd"},
        {NULL, "kd.loss=kl", "'kd.loss' must be one of forward_kl|reverse_kl|jsd"},
        {NULL, "kd.sparse=topk", "'kd.sparse' must be one of auto|topk_renorm|topk_bucket|sampled"},
        {NULL, "kd.loss=", "'kd.loss' needs a value"},
        {NULL, "kd.t2_scale=maybe", "must be true or false"},
        {NULL, "optim.betas=0.9", "needs a list of two numbers"},
        {NULL, "optim.betas=[0.9]", "exactly two numbers"},
        {NULL, "batch.micro=5", "must be a multiple of 'batch.micro'"},
        {NULL, "model.from=x", "exactly one of 'model.config' and 'model.from'"},
        {NULL, "train.tokens=5", "exactly one of 'train.steps' and 'train.tokens'"},
        {NULL, "teacher.cache=c", "at most one of 'teacher.model' and 'teacher.cache'"},
        {NULL, "kd.alpha=1.5", "'kd.alpha' must lie in [0, 1]"},
        {NULL, "data.seq_len=0", "'data.seq_len' must be positive"},
        {NULL, "ema.decay=1", "'ema.decay' must lie in [0, 1)"},
        {NULL, "average.last_k=9", "'average.last_k' must not exceed 'checkpoint.keep'"},
        {MINIMAL "teacher: {model: t}\nkd: {loss: jsd, beta: 1.0}\n", NULL, "strictly between 0 and 1 for jsd"},
        {MINIMAL "teacher: {cache: c}\nkd: {loss: reverse_kl}\n", NULL, "'kd.loss' must be forward_kl"},
        {NULL, "optim.lr=[1, 2]", "must be a single value"},
        {"run_dir: [unclosed\n", NULL, "invalid YAML"},
        {"- a\n- b\n", NULL, "expected a mapping"},
        {"model: {config: c}\ndata: {train: t, seq_len: 4}\ntrain: {steps: 1}\n", NULL, "'run_dir' is missing"},
        {NULL, "model.precision=fp16", "'model.precision' must be one of fp32|bf16"},
        {NULL, "teacher.device=tpu", "'teacher.device' must be one of cpu|cuda"},
        {NULL, "model.device=cuda", "model.device/model.precision: the cuda device runs bf16 only"},
        // A key given twice in the file was taken silently (the last one won).
        {MINIMAL "seed: 1\nseed: 2\n", NULL, ":6: duplicate key 'seed' (first given on line 5)"},
        {MINIMAL "optim: {lr: 1, lr: 2}\n", NULL, ":5: duplicate key 'optim.lr' (first given on line 5)"},
        {MINIMAL "optim: {lr: 1}\noptim.lr: 2\n", NULL, ":6: duplicate key 'optim.lr' (first given on line 5)"},
        {MINIMAL "optim: {lr: 1}\noptim: {eps: 1}\n", NULL, ":6: duplicate key 'optim' (first given on line 5)"},
        {"run_dir: r\nmodel: {config: c}\ndata: {train: t, seq_len: 4}\ntrain: {steps: 1}\ndata: {seq_len: 8}\n", NULL,
         ":5: duplicate key 'data' (first given on line 3)"},
        {NULL, "threads=100000", "'threads' must lie in 0..4096 (0 = all cores)"}, // 100000 overflowed libgomp's stack
        {NULL, "threads=-1", "'threads' must lie in 0..4096 (0 = all cores)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_config rc;
        gk_err err = {0};
        char *ov[1] = {(char *)cases[i].override};
        int r = load_text(cases[i].text ? cases[i].text : FULL, ov, cases[i].override ? 1 : 0, &rc, &err);
        CHECK(tc, r != 0, "case %zu accepted", i);
        CHECK(tc, strstr(err.msg, cases[i].message) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].message);
    }
}

// The resolved YAML reads back to the same config (compared through its own YAML, key by key).
static void resolved_round_trip(test_case *tc) {
    char *ov[] = {"data.train=[a b.h5, \"c:d.h5\"]", "optim.lr=0.000123456789012345", "run_dir=runs/with \"quotes\""};
    run_config a, b;
    gk_err err = {0};
    CHECK(tc, load_text(FULL, ov, 3, &a, &err) == 0, "%s", err.msg);
    strbuf first = {0}, second = {0};
    run_config_to_yaml(&a, &first);
    CHECK(tc, load_text(first.data, NULL, 0, &b, &err) == 0, "resolved YAML does not load: %s\n%s", err.msg, first.data);
    run_config_to_yaml(&b, &second);
    CHECK(tc, first.len == second.len && !memcmp(first.data, second.data, first.len), "differs:\n%s\n---\n%s",
          first.data, second.data);
    // One mapping per section: a section name written twice is a duplicate key to other YAML readers.
    const char *sections[] = {"\nmodel:\n", "\ndata:\n", "\noptim:\n", "\nteacher:\n", "\nkd:\n"};
    for (int i = 0; i < 5; i++) {
        const char *at = strstr(first.data, sections[i]);
        CHECK(tc, at && !strstr(at + 1, sections[i]), "section %s written %s", sections[i] + 1, at ? "twice" : "never");
    }
    CHECK(tc, b.optim.lr == a.optim.lr && !strcmp(b.run_dir, "runs/with \"quotes\"") &&
                  !strcmp(b.data.train.items[0], "a b.h5") && !strcmp(b.data.train.items[1], "c:d.h5"),
          "values");
    sb_free(&first);
    sb_free(&second);
}

int main(void) {
    test_run("full_file", full_file);
    test_run("overrides_apply", overrides_apply);
    test_run("minimal_file_gets_defaults", minimal_defaults);
    test_run("choices_become_enums", choices_become_enums);
    test_run("rejections_name_the_key", rejections);
    test_run("resolved_yaml_round_trip", resolved_round_trip);
    return test_main_result();
}
