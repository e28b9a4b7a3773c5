#include "cli/args.h"

#include <errno.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/nearest.h"

static void print_help(const char *usage, const arg_spec *specs, int n) {
    printf("usage: %s\n\nflags:\n", usage);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", specs[i].name, specs[i].metavar ? " " : "",
                 specs[i].metavar ? specs[i].metavar : "");
        printf("  %-28s %s\n", left, specs[i].help);
    }
}

static int unknown_flag(const char *name, const arg_spec *specs, int n, gk_err *err) {
    const char *names[64];
    int k = n < 64 ? n : 64;
    for (int i = 0; i < k; i++) names[i] = specs[i].name;
    int near = nearest_word(name, names, k);
    if (near >= 0)
        return gk_fail(err, GK_EUSAGE, "unknown flag --%s (did you mean --%s?)", name, names[near]);
    return gk_fail(err, GK_EUSAGE, "unknown flag --%s", name);
}

static int parse(int argc, char **argv, const char *usage, arg_spec *specs, int n, const char **pos, int *n_pos,
                 gk_err *err) {
    for (int i = 0; i < n; i++) specs[i].value = NULL;
    if (n_pos) *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(usage, specs, n);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 && pos) {
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return gk_fail(err, GK_EUSAGE, "unexpected argument '%s' (usage: %s)", a, usage);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) return gk_fail(err, GK_EUSAGE, "unknown flag %s", a);
        memcpy(name, a + 2, len);
        name[len] = 0;
        arg_spec *s = NULL;
        for (int j = 0; j < n && !s; j++)
            if (!strcmp(specs[j].name, name)) s = &specs[j];
        if (!s) return unknown_flag(name, specs, n, err);
        if (s->value) return gk_fail(err, GK_EUSAGE, "--%s given twice", name);
        if (!s->metavar) {
            if (eq) return gk_fail(err, GK_EUSAGE, "--%s takes no value", name);
            s->value = "1";
        } else if (eq) {
            s->value = eq + 1;
        } else {
            if (i + 1 >= argc) return gk_fail(err, GK_EUSAGE, "--%s needs a value (%s)", name, s->metavar);
            s->value = argv[++i];
        }
    }
    return 0;
}

int args_parse(int argc, char **argv, const char *usage, arg_spec *specs, int n, gk_err *err) {
    return parse(argc, argv, usage, specs, n, NULL, NULL, err);
}

int args_parse_positional(int argc, char **argv, const char *usage, arg_spec *specs, int n, const char **pos, int *n_pos,
                          gk_err *err) {
    return parse(argc, argv, usage, specs, n, pos, n_pos, err);
}

const char *arg_get(const arg_spec *specs, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(specs[i].name, name)) return specs[i].value;
    return NULL;
}

bool arg_flag(const arg_spec *specs, int n, const char *name) { return arg_get(specs, n, name) != NULL; }

int parse_int(const char *flag, const char *text, long long min, long long max, long long *out, gk_err *err) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return gk_fail(err, GK_EUSAGE, "--%s: expected an integer in [%lld, %lld], got '%s'", flag, min, max, text);
    *out = v;
    return 0;
}

int parse_double(const char *flag, const char *text, double *out, gk_err *err) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
        return gk_fail(err, GK_EUSAGE, "--%s: expected a number, got '%s'", flag, text);
    *out = v;
    return 0;
}

static bool is_separator(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int parse_id_list(const char *flag, const char *text, int64_t **out, size_t *n_out, gk_err *err) {
    const char *p = text, *end = text + strlen(text);
    while (p < end && is_separator(*p)) p++;
    while (end > p && is_separator(end[-1])) end--;
    if (p < end && *p == '[' && end[-1] == ']') p++, end--; // a JSON array
    size_t cap = 1;
    for (const char *q = p; q < end; q++) cap += *q == ',' || *q == ' ' || *q == '\n';
    int64_t *ids = gk_malloc(cap * sizeof *ids, err);
    if (!ids) return -1;
    size_t n = 0;
    while (p < end) {
        while (p < end && is_separator(*p)) p++;
        if (p == end) break;
        char *stop;
        errno = 0;
        long long v = strtoll(p, &stop, 10);
        if (errno || stop == p || v < 0 || (stop < end && !is_separator(*stop))) {
            free(ids);
            return gk_fail(err, GK_EUSAGE, "--%s: item %zu is not a non-negative integer", flag, n + 1);
        }
        ids[n++] = v;
        p = stop;
    }
    if (n == 0) {
        free(ids);
        return gk_fail(err, GK_EUSAGE, "--%s: no token ids given", flag);
    }
    *out = ids;
    *n_out = n;
    return 0;
}

int set_threads(const char *value, gk_err *err) {
    if (!value) return 0;
    long long n = 0;
    if (parse_int("threads", value, 1, MAX_THREADS, &n, err)) return -1;
    omp_set_num_threads((int)n);
    return 0;
}

int parse_size(const char *flag, const char *text, size_t *out, gk_err *err) {
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {{"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
                 {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},           {"TB", 1e12},
                 {"K", 1e3},      {"M", 1e6},         {"G", 1e9},            {"T", 1e12}, // K, M, G, T: as KB, MB, GB, TB
                 {"B", 1},        {"", 1}};
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (errno || end == text || strcasecmp(end, units[i].suffix) != 0) continue;
        double bytes = v * units[i].scale;
        if (!(bytes >= 1) || bytes > 1e18) break;
        *out = (size_t)bytes;
        return 0;
    }
    return gk_fail(err, GK_EUSAGE, "--%s: expected a size such as 5GB, 200MB or 1048576, got '%s'", flag, text);
}

int split_commas(const char *flag, const char *text, char **buf, const char ***items, size_t *n, gk_err *err) {
    *n = 0;
    *buf = strdup(text);
    *items = calloc(strlen(text) + 1, sizeof **items);
    if (!*buf || !*items) return gk_fail(err, GK_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(*buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) (*items)[(*n)++] = tok;
    return *n ? 0 : gk_fail(err, GK_EUSAGE, "--%s names nothing", flag);
}
