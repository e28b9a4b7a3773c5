// gemmakd average: one model from several checkpoints (methods: model/average.h).
// Each input is a model dir, or a run dir standing for its step-* checkpoints
// oldest first. All must share one config; the output is a new model dir.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/file.h"
#include "model/average.h"
#include "model/checkpoint.h"
#include "model/model_dir.h"
#include "train/ckpt.h"

typedef enum { AVG_UNIFORM, AVG_WEIGHTED, AVG_LAST_K, AVG_EMA, AVG_SLERP } avg_method;

typedef struct {
    char **dirs; // [n] model dirs in order
    size_t n;
} input_list;

static void inputs_free(input_list *in) {
    for (size_t i = 0; i < in->n; i++) free(in->dirs[i]);
    free(in->dirs);
}

static int inputs_add(input_list *in, const char *dir, gk_err *err) {
    char **bigger = realloc(in->dirs, (in->n + 1) * sizeof *bigger);
    if (!bigger) return gk_fail(err, GK_ENOMEM, "out of memory");
    in->dirs = bigger;
    if (!(in->dirs[in->n] = strdup(dir))) return gk_fail(err, GK_ENOMEM, "out of memory");
    in->n++;
    return 0;
}

// A model dir (has config.json) as itself; a run dir as its checkpoints.
static int inputs_expand(input_list *in, const char *arg, gk_err *err) {
    char *config = path_join(arg, "config.json");
    int is_model = config && path_exists(config);
    free(config);
    if (is_model) return inputs_add(in, arg, err);
    char **steps;
    size_t n;
    if (ckpt_list_dirs(arg, &steps, &n, err)) return -1;
    int rc = n ? 0 : gk_fail(err, GK_EINPUT, "%s: neither a model dir (no config.json) nor a run dir with step-* checkpoints", arg);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) rc = inputs_add(in, steps[i], err);
        free(steps[i]);
    }
    free(steps);
    return rc;
}

// Every input's config equals the first's (returned in *cfg); the tokenizer
// record is the same in all that have one (sha256[0] == 0 when none has).
static int check_inputs(const input_list *in, model_config *cfg, char sha256[65], gk_err *err) {
    sha256[0] = 0;
    const char *sha_from = NULL;
    for (size_t i = 0; i < in->n; i++) {
        model_config c;
        char *path = path_join(in->dirs[i], "config.json"), what[160];
        int rc = path ? model_config_load(path, i ? &c : cfg, err) : gk_fail(err, GK_ENOMEM, "out of memory");
        free(path);
        if (rc) return -1;
        if (i && model_config_difference(cfg, &c, what, sizeof what))
            return gk_fail(err, GK_EINPUT, "%s and %s have different configs: %s", in->dirs[0], in->dirs[i], what);
        char sha[65];
        bool found;
        if (model_dir_tokenizer(in->dirs[i], sha, &found, err)) return -1;
        if (found && sha_from && strcmp(sha, sha256))
            return gk_fail(err, GK_EINPUT, "%s and %s were trained with different tokenizers (sha256 %.12s... vs %.12s...)",
                           sha_from, in->dirs[i], sha256, sha);
        if (found && !sha_from) {
            memcpy(sha256, sha, 65);
            sha_from = in->dirs[i];
        }
    }
    return 0;
}

static int parse_method(const char *s, avg_method *m, gk_err *err) {
    static const char *names[] = {"uniform", "weighted", "last-k", "ema", "slerp"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return *m = (avg_method)i, 0;
    return gk_fail(err, GK_EUSAGE, "--method: expected uniform, weighted, last-k, ema or slerp, got '%s'", s);
}

// Scales w[n] by a power of two so that the largest is below 1: the same average to the
// last bit (power-of-two scaling is exact), and sums of w x that cannot overflow.
static void scale_to_unit(double *w, size_t n) {
    double largest = 0;
    for (size_t i = 0; i < n; i++) largest = w[i] > largest ? w[i] : largest;
    int e;
    frexp(largest, &e);
    for (size_t i = 0; i < n; i++) w[i] = ldexp(w[i], -e);
}

// Weights w[n] for the linear methods (zero for inputs left out).
static int method_weights(avg_method m, const arg_spec *specs, int ns, size_t n, double *w, gk_err *err) {
    for (size_t i = 0; i < n; i++) w[i] = 1;
    const char *ws = arg_get(specs, ns, "weights"), *ks = arg_get(specs, ns, "k"), *ds = arg_get(specs, ns, "decay");
    if (m != AVG_WEIGHTED && ws) return gk_fail(err, GK_EUSAGE, "--weights goes with --method weighted");
    if (m != AVG_LAST_K && ks) return gk_fail(err, GK_EUSAGE, "--k goes with --method last-k");
    if (m != AVG_EMA && ds) return gk_fail(err, GK_EUSAGE, "--decay goes with --method ema");
    if (m == AVG_WEIGHTED) {
        if (!ws) return gk_fail(err, GK_EUSAGE, "--method weighted needs --weights w1,w2,... (one per checkpoint)");
        char *list = NULL;
        const char **items = NULL;
        size_t k = 0;
        int rc = split_commas("weights", ws, &list, &items, &k, err);
        if (rc == 0 && k != n) rc = gk_fail(err, GK_EUSAGE, "--weights: %zu weights for %zu checkpoints", k, n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (parse_double("weights", items[i], &w[i], err)) rc = -1;
            else if (!(w[i] >= 0 && isfinite(w[i])))
                rc = gk_fail(err, GK_EUSAGE, "--weights: '%s' is not a finite weight >= 0", items[i]);
        }
        free(list);
        free(items);
        if (rc) return -1;
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += w[i];
        if (!isfinite(sum)) // the average would divide by it: x / inf = 0 everywhere
            return gk_fail(err, GK_EUSAGE, "--weights: the weights sum to %g, past the largest number; scale them down", sum);
        if (!(sum > 0)) return gk_fail(err, GK_EUSAGE, "--weights: the weights sum to 0");
        scale_to_unit(w, n);
    } else if (m == AVG_LAST_K) {
        long long k;
        if (!ks) return gk_fail(err, GK_EUSAGE, "--method last-k needs --k K");
        if (parse_int("k", ks, 1, (long long)n, &k, err)) return -1;
        for (size_t i = 0; i + (size_t)k < n; i++) w[i] = 0;
    } else if (m == AVG_EMA) {
        double d = 0.9;
        if (ds && parse_double("decay", ds, &d, err)) return -1;
        if (!(d >= 0 && d < 1)) return gk_fail(err, GK_EUSAGE, "--decay: expected a number in [0, 1), got '%s'", ds);
        average_ema_weights(d, (int)n, w);
    }
    return 0;
}

int cmd_average(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"out", "DIR", "new model directory for the result", NULL},
        {"method", "M", "uniform (default), weighted, last-k, ema or slerp", NULL},
        {"weights", "W1,W2,...", "weighted: one weight >= 0 per checkpoint (normalised to sum 1)", NULL},
        {"k", "K", "last-k: average the K newest checkpoints", NULL},
        {"decay", "D", "ema: e = D e + (1 - D) x over the checkpoints in order (default 0.9)", NULL},
        {"t", "T", "slerp: position between the two checkpoints, 0 = first, 1 = second (default 0.5)", NULL},
        {"dtype", "float32|bfloat16", "storage type of the result (default float32)", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
    };
    int ns = sizeof specs / sizeof specs[0], npos;
    const char **pos = gk_calloc((size_t)argc + 1, sizeof *pos, err);
    if (!pos) return -1;
    int rc = args_parse_positional(argc, argv,
                                   "gemmakd average --out DIR [--method uniform|weighted|last-k|ema|slerp] "
                                   "[--weights W,...] [--k K] [--decay D] [--t T] CKPT...",
                                   specs, ns, pos, &npos, err);
    if (rc) {
        free(pos);
        return rc > 0 ? 0 : -1;
    }
    const char *out = arg_get(specs, ns, "out"), *ms = arg_get(specs, ns, "method"), *ts = arg_get(specs, ns, "t");
    const char *dtype_s = arg_get(specs, ns, "dtype");
    avg_method method = AVG_UNIFORM;
    st_dtype dtype = ST_F32;
    double t = 0.5;
    input_list in = {0};
    model_state m = {0};
    double *w = NULL;
    char sha[65];
    if (!out || npos == 0) rc = gk_fail(err, GK_EUSAGE, "average needs --out and at least one checkpoint");
    if (rc == 0) rc = set_threads(arg_get(specs, ns, "threads"), err);
    if (rc == 0 && ms) rc = parse_method(ms, &method, err);
    if (rc == 0 && ts && method != AVG_SLERP) rc = gk_fail(err, GK_EUSAGE, "--t goes with --method slerp");
    if (rc == 0 && ts && parse_double("t", ts, &t, err)) rc = -1;
    if (rc == 0 && !(t >= 0 && t <= 1)) rc = gk_fail(err, GK_EUSAGE, "--t: expected a number in [0, 1], got '%s'", ts);
    if (rc == 0 && dtype_s && !strcmp(dtype_s, "bfloat16")) dtype = ST_BF16;
    else if (rc == 0 && dtype_s && strcmp(dtype_s, "float32"))
        rc = gk_fail(err, GK_EUSAGE, "--dtype: expected float32 or bfloat16, got '%s'", dtype_s);
    if (rc == 0 && path_exists(out)) rc = gk_fail(err, GK_EINPUT, "%s already exists; choose a new directory", out);
    for (int i = 0; rc == 0 && i < npos; i++) rc = inputs_expand(&in, pos[i], err);
    if (rc == 0 && method == AVG_SLERP && in.n != 2)
        rc = gk_fail(err, GK_EUSAGE, "--method slerp takes exactly two checkpoints, got %zu", in.n);
    if (rc == 0 && !(w = gk_calloc(in.n, sizeof *w, err))) rc = -1;
    if (rc == 0 && method != AVG_SLERP) rc = method_weights(method, specs, ns, in.n, w, err);
    if (rc == 0) rc = check_inputs(&in, &m.cfg, sha, err);
    if (rc == 0) rc = param_layout_build(&m.cfg, &m.layout, err);
    if (rc == 0 && !(m.params = param_buffer_alloc(&m.layout, err))) rc = -1;
    if (rc == 0) rc = method == AVG_SLERP ? slerp_model_dirs(in.dirs[0], in.dirs[1], t, &m, err) : average_model_dirs(in.dirs, w, in.n, &m, err);
    if (rc == 0) rc = model_create_dir(out, &m, dtype, MODEL_SHARD_BYTES, sha, err);
    size_t used = method == AVG_SLERP ? 2 : 0;
    for (size_t i = 0; method != AVG_SLERP && w && i < in.n; i++) used += w[i] > 0;
    if (rc == 0) printf("averaged %zu of %zu checkpoint(s) (%s) into %s\n", used, in.n, ms ? ms : "uniform", out);
    model_state_free(&m);
    inputs_free(&in);
    free(w);
    free(pos);
    return rc;
}
