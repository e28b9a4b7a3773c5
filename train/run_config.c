#include "train/run_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/file.h"
#include "common/nearest.h"
#include "common/threads.h"

typedef enum { K_STRING, K_INT, K_INT64, K_DOUBLE, K_BOOL, K_PATHS, K_PAIR, K_CHOICE } key_type;

// A K_CHOICE key's names and the enum values they stand for; lists end with {NULL}.
typedef struct {
    const char *name;
    int value;
} choice;

static const choice optimizers[] = {{"adamw", OPTIM_ADAMW}, {"sgd", OPTIM_SGD}, {NULL, 0}};
static const choice schedules[] = {{"cosine", SCHEDULE_COSINE}, {"linear", SCHEDULE_LINEAR},
                                   {"constant", SCHEDULE_CONSTANT}, {"wsd", SCHEDULE_WSD}, {NULL, 0}};
static const choice divergences[] = {{"forward_kl", KD_FORWARD_KL}, {"reverse_kl", KD_REVERSE_KL}, {"jsd", KD_JSD},
                                     {NULL, 0}};
static const choice sparse_objectives[] = {{"auto", KD_SPARSE_AUTO}, {"topk_renorm", SPARSE_TOPK_RENORM},
                                           {"topk_bucket", SPARSE_TOPK_BUCKET}, {"sampled", SPARSE_SAMPLED},
                                           {NULL, 0}};
// K_CHOICE fields are enums written as int.
_Static_assert(sizeof(optim_kind) == sizeof(int) && sizeof(schedule_kind) == sizeof(int) &&
                   sizeof(kd_divergence) == sizeof(int),
               "choice fields are int-sized");

typedef struct {
    const char *path;      // "section.key"
    key_type type;
    size_t offset;         // into run_config
    const char *choices;   // K_STRING: "a|b|c" allowed values, or NULL
    const choice *names;   // K_CHOICE: the names and their values
} key_spec;

#define KEY(p, t, field, choices) {p, t, offsetof(run_config, field), choices, NULL}
#define CHOICE(p, field, names) {p, K_CHOICE, offsetof(run_config, field), NULL, names}
static const key_spec keys[] = {
    KEY("run_dir", K_STRING, run_dir, NULL),
    KEY("seed", K_INT64, seed, NULL),
    KEY("threads", K_INT, threads, NULL),
    KEY("model.config", K_STRING, model.config, NULL),
    KEY("model.from", K_STRING, model.from, NULL),
    KEY("model.init_seed", K_INT64, model.init_seed, NULL),
    KEY("model.device", K_STRING, model.device, ENGINE_DEVICES),
    KEY("model.precision", K_STRING, model.precision, ENGINE_PRECISIONS),
    KEY("data.train", K_PATHS, data.train, NULL),
    KEY("data.val", K_PATHS, data.val, NULL),
    KEY("data.seq_len", K_INT, data.seq_len, NULL),
    KEY("batch.size", K_INT, batch.size, NULL),
    KEY("batch.micro", K_INT, batch.micro, NULL),
    KEY("train.steps", K_INT64, train.steps, NULL),
    KEY("train.tokens", K_INT64, train.tokens, NULL),
    KEY("train.head_chunk", K_INT, train.head_chunk, NULL),
    KEY("train.max_bad_steps", K_INT, train.max_bad_steps, NULL),
    CHOICE("optim.name", optim.kind, optimizers),
    KEY("optim.lr", K_DOUBLE, optim.lr, NULL),
    KEY("optim.betas", K_PAIR, optim.betas, NULL),
    KEY("optim.eps", K_DOUBLE, optim.eps, NULL),
    KEY("optim.weight_decay", K_DOUBLE, optim.weight_decay, NULL),
    KEY("optim.grad_clip", K_DOUBLE, optim.grad_clip, NULL),
    CHOICE("schedule.name", schedule.kind, schedules),
    KEY("schedule.warmup", K_INT64, schedule.warmup, NULL),
    KEY("schedule.min_lr_ratio", K_DOUBLE, schedule.min_lr_ratio, NULL),
    KEY("schedule.decay_fraction", K_DOUBLE, schedule.decay_fraction, NULL),
    KEY("teacher.model", K_STRING, teacher.model, NULL),
    KEY("teacher.cache", K_STRING, teacher.cache, NULL),
    KEY("teacher.device", K_STRING, teacher.device, ENGINE_DEVICES),
    KEY("teacher.precision", K_STRING, teacher.precision, ENGINE_PRECISIONS),
    CHOICE("kd.loss", kd.loss, divergences),
    CHOICE("kd.sparse", kd.sparse, sparse_objectives),
    KEY("kd.alpha", K_DOUBLE, kd.alpha, NULL),
    KEY("kd.temperature", K_DOUBLE, kd.temperature, NULL),
    KEY("kd.beta", K_DOUBLE, kd.beta, NULL),
    KEY("kd.t2_scale", K_BOOL, kd.t2_scale, NULL),
    KEY("kd.seq_kd", K_BOOL, kd.seq_kd, NULL),
    KEY("kd.on_policy.fraction", K_DOUBLE, kd.on_policy.fraction, NULL),
    KEY("kd.on_policy.prompts", K_PATHS, kd.on_policy.prompts, NULL),
    KEY("kd.on_policy.tokenizer", K_STRING, kd.on_policy.tokenizer, NULL),
    KEY("kd.on_policy.max_new_tokens", K_INT, kd.on_policy.max_new_tokens, NULL),
    KEY("kd.on_policy.temperature", K_DOUBLE, kd.on_policy.temperature, NULL),
    KEY("kd.on_policy.top_p", K_DOUBLE, kd.on_policy.top_p, NULL),
    KEY("eval.every", K_INT64, eval.every, NULL),
    KEY("eval.tokens", K_INT64, eval.tokens, NULL),
    KEY("checkpoint.every", K_INT64, checkpoint.every, NULL),
    KEY("checkpoint.keep", K_INT, checkpoint.keep, NULL),
    KEY("log.every", K_INT64, log.every, NULL),
    KEY("ema.decay", K_DOUBLE, ema.decay, NULL),
    KEY("average.last_k", K_INT, average.last_k, NULL),
    KEY("parallel.zero", K_INT, parallel.zero, NULL),
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

void run_config_defaults(run_config *rc) {
    memset(rc, 0, sizeof *rc);
    rc->model.init_seed = -1; // = seed
    snprintf(rc->model.device, RC_NAME, "cpu");
    snprintf(rc->model.precision, RC_NAME, "fp32");
    rc->batch.size = 8;
    rc->train.head_chunk = 1024;
    rc->train.max_bad_steps = 10;
    rc->parallel.zero = 1;
    rc->optim.kind = OPTIM_ADAMW;
    rc->optim.lr = 3e-4;
    rc->optim.betas[0] = 0.9;
    rc->optim.betas[1] = 0.95;
    rc->optim.eps = 1e-8;
    rc->optim.weight_decay = 0.1;
    rc->optim.grad_clip = 1.0;
    rc->schedule.kind = SCHEDULE_COSINE;
    rc->schedule.min_lr_ratio = 0.1;
    rc->schedule.decay_fraction = 0.2;
    rc->kd.loss = KD_FORWARD_KL;
    rc->kd.sparse = KD_SPARSE_AUTO;
    rc->kd.alpha = 1.0;
    rc->kd.temperature = 1.0;
    rc->kd.beta = 0.5;
    rc->kd.on_policy.max_new_tokens = 64;
    rc->kd.on_policy.temperature = 1.0;
    rc->kd.on_policy.top_p = 1.0;
    rc->checkpoint.keep = 3;
    rc->log.every = 1;
}

// ---------------------------------------------------------------- setting values

typedef struct {
    const char *source; // file name or "command line"
    int line;           // 0 for the command line
    gk_err *err;
} origin;

__attribute__((format(printf, 2, 3))) static int fail_at(const origin *o, const char *fmt, ...) {
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (o->line) return gk_fail(o->err, GK_EINPUT, "%s:%d: %s", o->source, o->line, what);
    return gk_fail(o->err, GK_EUSAGE, "%s: %s", o->source, what);
}

static const key_spec *find_key(const char *path) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].path, path)) return &keys[i];
    return NULL;
}

// Whether path names a section ("kd", "kd.on_policy"): a prefix of keys, up to a dot.
static bool is_section(const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < N_KEYS; i++)
        if (!strncmp(keys[i].path, path, n) && keys[i].path[n] == '.') return true;
    return false;
}

// "learning_rate" -> "lr"
static void initials(const char *word, char *out, size_t cap) {
    size_t n = 0;
    for (const char *c = word; *c && n + 1 < cap; c++)
        if (c == word || c[-1] == '_') out[n++] = *c;
    out[n] = 0;
}

// The valid key closest to `path`: same section first; a spelled-out name
// whose initials or prefix give a key ("learning_rate" -> "lr") counts as closest.
static const char *suggest_key(const char *path) {
    const char *dot = strchr(path, '.'), *names[N_KEYS];
    size_t section = dot ? (size_t)(dot - path) : 0;
    int n = 0;
    for (int i = 0; i < N_KEYS; i++)
        if (dot && !strncmp(keys[i].path, path, section + 1)) names[n++] = keys[i].path + section + 1;
    if (n == 0) {
        for (int i = 0; i < N_KEYS; i++) names[i] = keys[i].path;
        return names[nearest_word(path, names, N_KEYS)];
    }
    const char *word = dot + 1;
    char abbrev[64];
    initials(word, abbrev, sizeof abbrev);
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], abbrev) || (strlen(word) >= 2 && !strncmp(names[i], word, strlen(word))))
            return names[i] - section - 1;
    return names[nearest_word(word, names, n)] - section - 1;
}

static int unknown_key(const origin *o, const char *path) {
    return fail_at(o, "unknown key '%s' (did you mean '%s'?)", path, suggest_key(path));
}

// Sets a K_CHOICE field to the value of the name `text`.
static int set_choice(const key_spec *k, const char *text, int *field, const origin *o) {
    char allowed[128] = "";
    for (const choice *c = k->names; c->name; c++) {
        if (!strcmp(text, c->name)) return *field = c->value, 0;
        size_t n = strlen(allowed);
        snprintf(allowed + n, sizeof allowed - n, "%s%s", n ? "|" : "", c->name);
    }
    return fail_at(o, "'%s' must be one of %s", k->path, allowed);
}

// The name of a K_CHOICE field's value.
static const char *choice_name(const key_spec *k, int value) {
    for (const choice *c = k->names; c->name; c++)
        if (c->value == value) return c->name;
    GK_ASSERT(!"a choice field holds no named value");
    return "";
}

static int parse_scalar(const key_spec *k, const char *text, void *field, const origin *o) {
    char *end;
    errno = 0;
    switch (k->type) {
    case K_INT:
    case K_INT64: {
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end) { // also accept 1e6-style integers
            double d = strtod(text, &end);
            if (end == text || *end || d != floor(d) || fabs(d) > 9e18)
                return fail_at(o, "'%s' must be an integer, not '%s'", k->path, text);
            v = (long long)d;
        }
        if (k->type == K_INT64) {
            *(int64_t *)field = v;
        } else if (v < -2147483647LL || v > 2147483647LL) {
            return fail_at(o, "'%s' is out of range: %s", k->path, text);
        } else {
            *(int *)field = (int)v;
        }
        return 0;
    }
    case K_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v))
            return fail_at(o, "'%s' must be a number, not '%s'", k->path, text);
        *(double *)field = v;
        return 0;
    }
    case K_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(text, yes[i])) return *(bool *)field = true, 0;
            if (!strcasecmp(text, no[i])) return *(bool *)field = false, 0;
        }
        return fail_at(o, "'%s' must be true or false, not '%s'", k->path, text);
    }
    case K_STRING:
        if (strlen(text) >= RC_PATH) return fail_at(o, "'%s' is too long", k->path);
        if (k->choices && *text) {
            char allowed[128];
            snprintf(allowed, sizeof allowed, "|%s|", k->choices);
            char probe[RC_PATH + 2];
            snprintf(probe, sizeof probe, "|%s|", text);
            if (!strstr(allowed, probe))
                return fail_at(o, "'%s' must be one of %s", k->path, k->choices);
        }
        snprintf(field, k->choices ? RC_NAME : RC_PATH, "%s", text);
        return 0;
    case K_CHOICE: return set_choice(k, text, field, o);
    default: return fail_at(o, "'%s' needs a list", k->path);
    }
}

// Sets key k from a YAML node (a scalar, or a sequence for list keys).
static int set_from_node(run_config *rc, const key_spec *k, yaml_document_t *doc, yaml_node_t *node, const origin *o) {
    void *field = (char *)rc + k->offset;
    if (node->type == YAML_SCALAR_NODE) {
        const char *text = (const char *)node->data.scalar.value;
        bool null = !strcmp(text, "~") || !strcmp(text, "null") || (!*text && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
        if (k->type == K_PATHS) { // one pattern
            rc_paths *p = field;
            p->count = 0;
            if (null) return 0;
            if (strlen(text) >= RC_PATH) return fail_at(o, "'%s': a path is too long", k->path);
            snprintf(p->items[p->count++], RC_PATH, "%s", text);
            return 0;
        }
        if (k->type == K_PAIR) return fail_at(o, "'%s' needs a list of two numbers, e.g. [0.9, 0.95]", k->path);
        if (null) {
            if (k->type != K_STRING) return fail_at(o, "'%s' needs a value", k->path);
            *(char *)field = 0;
            return 0;
        }
        return parse_scalar(k, text, field, o);
    }
    if (node->type != YAML_SEQUENCE_NODE || (k->type != K_PATHS && k->type != K_PAIR))
        return fail_at(o, "'%s' must be a single value", k->path);
    yaml_node_item_t *it = node->data.sequence.items.start, *end = node->data.sequence.items.top;
    int n = (int)(end - it);
    if (k->type == K_PAIR && n != 2) return fail_at(o, "'%s' needs exactly two numbers", k->path);
    if (k->type == K_PATHS && n > RC_MAX_PATTERNS) return fail_at(o, "'%s' has too many entries", k->path);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, it[i]);
        if (!item || item->type != YAML_SCALAR_NODE) return fail_at(o, "'%s' must list plain values", k->path);
        const char *text = (const char *)item->data.scalar.value;
        if (k->type == K_PAIR) {
            key_spec one = {k->path, K_DOUBLE, 0, NULL, NULL};
            if (parse_scalar(&one, text, (double *)field + i, o)) return -1;
        } else {
            if (strlen(text) >= RC_PATH) return fail_at(o, "'%s': a path is too long", k->path);
            snprintf(((rc_paths *)field)->items[i], RC_PATH, "%s", text);
        }
    }
    if (k->type == K_PATHS) ((rc_paths *)field)->count = n;
    return 0;
}

// ---------------------------------------------------------------- YAML

typedef struct {
    yaml_parser_t parser;
    yaml_document_t doc;
    bool loaded;
} yaml_input;

static int yaml_load(yaml_input *y, const char *text, size_t len, const origin *o) {
    memset(y, 0, sizeof *y);
    if (!yaml_parser_initialize(&y->parser)) return gk_fail(o->err, GK_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&y->parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&y->parser, &y->doc)) {
        int rc = gk_fail(o->err, o->line ? GK_EINPUT : GK_EUSAGE, "%s:%zu: invalid YAML: %s", o->source,
                         y->parser.problem_mark.line + 1, y->parser.problem ? y->parser.problem : "syntax error");
        yaml_parser_delete(&y->parser);
        return rc;
    }
    y->loaded = true;
    return 0;
}

static void yaml_unload(yaml_input *y) {
    if (y->loaded) yaml_document_delete(&y->doc);
    yaml_parser_delete(&y->parser);
}

static const char *scalar_of(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

// The line of an earlier pair of map with the key `name` (0: none before p).
static int earlier_line(yaml_document_t *doc, yaml_node_t *map, const yaml_node_pair_t *p, const char *name) {
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *kn = yaml_document_get_node(doc, q->key);
        const char *other = scalar_of(kn);
        if (other && !strcmp(other, name)) return (int)kn->start_mark.line + 1;
    }
    return 0;
}

static int duplicate_key(const origin *o, const char *path, int first) {
    return fail_at(o, "duplicate key '%s' (first given on line %d)", path, first);
}

// Walks a mapping: scalars are "key", mappings are "section" with "section.key" inside (sections nest).
// A key given twice (in one mapping, or as "section.key" and inside "section") is refused;
// seen_line[i] is the line where keys[i] was set (0: not yet).
static int apply_mapping(run_config *rc, yaml_document_t *doc, yaml_node_t *map, const char *prefix, const char *source,
                         int *seen_line, gk_err *err) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
        origin o = {source, (int)kn->start_mark.line + 1, err};
        const char *name = scalar_of(kn);
        if (!name) return fail_at(&o, "keys must be plain names");
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
        int first = earlier_line(doc, map, p, name);
        if (first) return duplicate_key(&o, path, first);
        if (vn->type == YAML_MAPPING_NODE && !find_key(path) && is_section(path)) {
            if (apply_mapping(rc, doc, vn, path, source, seen_line, err)) return -1;
            continue;
        }
        const key_spec *k = find_key(path);
        if (!k) return unknown_key(&o, path);
        if (seen_line[k - keys]) return duplicate_key(&o, path, seen_line[k - keys]);
        seen_line[k - keys] = o.line;
        if (set_from_node(rc, k, doc, vn, &o)) return -1;
    }
    return 0;
}

static int apply_override(run_config *rc, const char *arg, gk_err *err) {
    origin o = {"command line", 0, err};
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return fail_at(&o, "expected section.key=value, got '%s'", arg);
    char path[128];
    snprintf(path, sizeof path, "%.*s", (int)(eq - arg) < 127 ? (int)(eq - arg) : 127, arg);
    const key_spec *k = find_key(path);
    if (!k) return unknown_key(&o, path);
    yaml_input y;
    const char *value = eq + 1;
    if (yaml_load(&y, value, strlen(value), &o)) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&y.doc);
    int rc_ = 0;
    if (!root) { // "key=" clears a string or list
        yaml_node_t empty = {.type = YAML_SCALAR_NODE};
        empty.data.scalar.value = (yaml_char_t *)"";
        empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
        rc_ = set_from_node(rc, k, &y.doc, &empty, &o);
    } else {
        rc_ = set_from_node(rc, k, &y.doc, root, &o);
    }
    yaml_unload(&y);
    return rc_;
}

int run_config_load(const char *path, char *const *overrides, int n_overrides, run_config *rc, gk_err *err) {
    run_config_defaults(rc);
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    origin o = {path, 1, err};
    yaml_input y;
    int result = yaml_load(&y, text, len, &o);
    if (result == 0) {
        yaml_node_t *root = yaml_document_get_root_node(&y.doc);
        if (!root || root->type != YAML_MAPPING_NODE) result = gk_fail(err, GK_EINPUT, "%s: expected a mapping of keys", path);
        else result = apply_mapping(rc, &y.doc, root, "", path, (int[N_KEYS]){0}, err);
        yaml_unload(&y);
    }
    free(text);
    for (int i = 0; result == 0 && i < n_overrides; i++) result = apply_override(rc, overrides[i], err);
    if (result == 0 && rc->model.init_seed < 0) rc->model.init_seed = rc->seed;
    return result ? -1 : run_config_validate(rc, path, err);
}

// ---------------------------------------------------------------- validation and output

int run_config_validate(const run_config *rc, const char *src, gk_err *err) {
#define NEED(cond, ...)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            char _m[400];                                                                                              \
            snprintf(_m, sizeof _m, __VA_ARGS__);                                                                      \
            return gk_fail(err, GK_EINPUT, "%s: %s", src, _m);                                                         \
        }                                                                                                              \
    } while (0)
    NEED(rc->run_dir[0], "'run_dir' is missing");
    NEED(!rc->model.config[0] != !rc->model.from[0], "set exactly one of 'model.config' and 'model.from'");
    NEED(rc->data.train.count > 0, "'data.train' is missing");
    NEED(rc->data.seq_len > 0, "'data.seq_len' must be positive");
    NEED(!rc->train.steps != !rc->train.tokens, "set exactly one of 'train.steps' and 'train.tokens'");
    NEED(rc->train.steps >= 0 && rc->train.tokens >= 0, "'train.steps' and 'train.tokens' must be positive");
    NEED(rc->batch.size > 0, "'batch.size' must be positive");
    NEED(rc->batch.micro >= 0 && (rc->batch.micro == 0 || rc->batch.size % rc->batch.micro == 0),
         "'batch.size' (%d) must be a multiple of 'batch.micro' (%d)", rc->batch.size, rc->batch.micro);
    NEED(rc->optim.lr >= 0, "'optim.lr' must not be negative");
    NEED(rc->optim.betas[0] >= 0 && rc->optim.betas[0] < 1 && rc->optim.betas[1] >= 0 && rc->optim.betas[1] < 1,
         "'optim.betas' must lie in [0, 1)");
    NEED(rc->optim.eps > 0, "'optim.eps' must be positive");
    NEED(rc->optim.weight_decay >= 0 && rc->optim.grad_clip >= 0, "'optim.weight_decay' and 'optim.grad_clip' must not be negative");
    NEED(rc->schedule.warmup >= 0, "'schedule.warmup' must not be negative");
    NEED(rc->schedule.min_lr_ratio >= 0 && rc->schedule.min_lr_ratio <= 1, "'schedule.min_lr_ratio' must lie in [0, 1]");
    NEED(rc->schedule.decay_fraction >= 0 && rc->schedule.decay_fraction <= 1, "'schedule.decay_fraction' must lie in [0, 1]");
    NEED(!(rc->teacher.model[0] && rc->teacher.cache[0]), "set at most one of 'teacher.model' and 'teacher.cache'");
    NEED(rc->kd.alpha >= 0 && rc->kd.alpha <= 1, "'kd.alpha' must lie in [0, 1]");
    NEED(rc->kd.temperature > 0, "'kd.temperature' must be positive");
    NEED(rc->kd.beta >= 0 && rc->kd.beta <= 1, "'kd.beta' must lie in [0, 1]");
    NEED(rc->kd.loss != KD_JSD || (rc->kd.beta > 0 && rc->kd.beta < 1),
         "'kd.beta' must lie strictly between 0 and 1 for jsd (forward_kl and reverse_kl are the end points)");
    NEED(!rc->teacher.cache[0] || rc->kd.loss == KD_FORWARD_KL,
         "a teacher cache trains forward-KL objectives (kd.sparse), so 'kd.loss' must be forward_kl");
    NEED(rc->kd.on_policy.fraction >= 0 && rc->kd.on_policy.fraction <= 1, "'kd.on_policy.fraction' must lie in [0, 1]");
    NEED(rc->kd.on_policy.fraction == 0 || rc->teacher.model[0],
         "on-policy distillation ('kd.on_policy.fraction' > 0) needs an in-process teacher ('teacher.model')");
    NEED(rc->kd.on_policy.fraction == 0 || rc->kd.on_policy.prompts.count > 0, "'kd.on_policy.prompts' is missing");
    NEED(!rc->kd.seq_kd || rc->kd.on_policy.fraction > 0,
         "'kd.seq_kd' trains on teacher-sampled rows, so it needs 'kd.on_policy.fraction' > 0 (the share of rows sampled)");
    NEED(rc->kd.on_policy.fraction == 0 ||
             (rc->kd.on_policy.max_new_tokens >= 1 && rc->kd.on_policy.max_new_tokens < rc->data.seq_len),
         "'kd.on_policy.max_new_tokens' must lie in 1..%d (below 'data.seq_len', which holds prompt and answer)",
         rc->data.seq_len - 1);
    NEED(rc->kd.on_policy.temperature >= 0, "'kd.on_policy.temperature' must not be negative (0 = greedy)");
    NEED(rc->kd.on_policy.top_p > 0 && rc->kd.on_policy.top_p <= 1, "'kd.on_policy.top_p' must lie in (0, 1]");
    NEED(rc->eval.every >= 0 && rc->eval.tokens >= 0 && rc->checkpoint.every >= 0, "intervals must not be negative");
    NEED(rc->checkpoint.keep >= 1, "'checkpoint.keep' must be at least 1");
    NEED(rc->log.every >= 1, "'log.every' must be at least 1");
    NEED(rc->ema.decay >= 0 && rc->ema.decay < 1, "'ema.decay' must lie in [0, 1)");
    NEED(rc->average.last_k >= 0, "'average.last_k' must not be negative");
    NEED(rc->parallel.zero == 0 || rc->parallel.zero == 1, "'parallel.zero' must be 0 or 1");
    NEED(rc->average.last_k <= rc->checkpoint.keep, "'average.last_k' must not exceed 'checkpoint.keep' (the checkpoints kept)");
    NEED(rc->threads >= 0 && rc->threads <= MAX_THREADS, "'threads' must lie in 0..%d (0 = all cores), not %d", MAX_THREADS,
         rc->threads);
    NEED(rc->train.head_chunk > 0 && rc->train.max_bad_steps > 0, "'train.head_chunk' and 'train.max_bad_steps' must be positive");
#undef NEED
    engine_backend b;
    if (run_config_backend(rc, &b, err) || run_config_teacher_backend(rc, &b, err)) {
        err->code = GK_EINPUT;
        return gk_wrap(err, "%s", src);
    }
    return 0;
}

int run_config_backend(const run_config *rc, engine_backend *b, gk_err *err) {
    return engine_backend_parse(rc->model.device, rc->model.precision, "model.device/model.precision", b, err);
}

int run_config_teacher_backend(const run_config *rc, engine_backend *b, gk_err *err) {
    const char *device = rc->teacher.device[0] ? rc->teacher.device : rc->model.device;
    const char *precision = rc->teacher.precision[0] ? rc->teacher.precision : rc->model.precision;
    return engine_backend_parse(device, precision, "teacher.device/teacher.precision", b, err);
}

static void yaml_string(strbuf *sb, const char *s) { sb_json_string(sb, s, strlen(s)); } // JSON strings are YAML

// A number that every YAML reader takes for a float and reads back exactly: the shortest %g
// that round-trips, with a '.' in the mantissa (YAML 1.1 readers, PyYAML among them, read
// "1e-08" as a string and "1" as an integer).
static void yaml_double(strbuf *sb, double v) {
    char text[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v) break;
    }
    if (strchr(text, '.')) {
        sb_puts(sb, text);
        return;
    }
    const char *exponent = strchr(text, 'e');
    int mantissa = exponent ? (int)(exponent - text) : (int)strlen(text);
    sb_printf(sb, "%.*s.0%s", mantissa, text, exponent ? exponent : "");
}

// The length of the section part of `path` ("kd.on_policy" of "kd.on_policy.fraction"; 0: none).
static size_t section_len(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? (size_t)(dot - path) : 0;
}

// Writes the headers of the sections of `path` that `previous` (the key written before, or NULL)
// is not in, each indented by its depth.
static void section_headers(strbuf *sb, const char *path, const char *previous) {
    size_t len = section_len(path), prev_len = previous ? section_len(previous) : 0, common = 0;
    for (size_t i = 1; previous && i <= len && i <= prev_len; i++) // the longest run of whole sections both share
        if ((i == len || path[i] == '.') && (i == prev_len || previous[i] == '.') && !strncmp(path, previous, i))
            common = i;
    if (previous && common == len && len == prev_len) return; // the same section
    int depth = 0;
    for (size_t i = 0; i < common; i++) depth += path[i] == '.';
    depth += common > 0;
    for (size_t start = common ? common + 1 : 0; start < len;) {
        const char *dot = memchr(path + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - path) : len;
        sb_printf(sb, "%*s%.*s:\n", 2 * depth++, "", (int)(end - start), path + start);
        start = end + 1;
    }
}

void run_config_to_yaml(const run_config *rc, strbuf *sb) {
    sb_puts(sb, "# resolved by gemmakd: every key, with defaults filled in\n");
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        const void *field = (const char *)rc + k->offset;
        section_headers(sb, k->path, i ? keys[i - 1].path : NULL);
        int depth = 0;
        for (const char *c = k->path; *c; c++) depth += *c == '.';
        const char *name = k->path + section_len(k->path) + (depth > 0);
        sb_printf(sb, "%*s%s: ", 2 * depth, "", name);
        switch (k->type) {
        case K_STRING: yaml_string(sb, field); break;
        case K_CHOICE: yaml_string(sb, choice_name(k, *(const int *)field)); break;
        case K_INT: sb_printf(sb, "%d", *(const int *)field); break;
        case K_INT64: sb_printf(sb, "%lld", (long long)*(const int64_t *)field); break;
        case K_DOUBLE: yaml_double(sb, *(const double *)field); break;
        case K_BOOL: sb_puts(sb, *(const bool *)field ? "true" : "false"); break;
        case K_PAIR:
            sb_puts(sb, "[");
            yaml_double(sb, ((const double *)field)[0]);
            sb_puts(sb, ", ");
            yaml_double(sb, ((const double *)field)[1]);
            sb_puts(sb, "]");
            break;
        case K_PATHS: {
            const rc_paths *p = field;
            sb_puts(sb, "[");
            for (int j = 0; j < p->count; j++) {
                if (j) sb_puts(sb, ", ");
                yaml_string(sb, p->items[j]);
            }
            sb_puts(sb, "]");
            break;
        }
        }
        sb_puts(sb, "\n");
    }
}
