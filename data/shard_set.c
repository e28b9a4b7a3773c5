#include "data/shard_set.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/strbuf.h"

char *shard_set_manifest_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 16;
    char *path = malloc(n);
    if (path) snprintf(path, n, "%s/%s.shards.json", dir, name);
    return path;
}

// ---------------------------------------------------------------- writing

static int write_manifest(const char *dir, const char *name, const strbuf *sb, gk_err *err) {
    char *path = shard_set_manifest_path(dir, name);
    int rc = !path || sb->failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb->data, sb->len, err);
    free(path);
    return rc;
}

int shard_set_begin(const char *dir, const char *name, gk_err *err) {
    strbuf sb = {0};
    sb_printf(&sb, "{\"format\": \"%s\", \"complete\": false, \"pid\": %ld}\n", SHARD_SET_FORMAT, (long)getpid());
    int rc = write_manifest(dir, name, &sb, err);
    sb_free(&sb);
    return rc;
}

int shard_set_finish(const char *dir, const char *name, const shard_set_entry *shards, size_t n, gk_err *err) {
    strbuf sb = {0};
    sb_printf(&sb, "{\"format\": \"%s\", \"complete\": true, \"shards\": [", SHARD_SET_FORMAT);
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(shards[i].path, '/'), *file = slash ? slash + 1 : shards[i].path;
        sb_printf(&sb, "%s\n  {\"file\": ", i ? "," : "");
        sb_json_string(&sb, file, strlen(file));
        sb_printf(&sb, ", \"tokens\": %" PRIu64 ", \"docs\": %" PRIu64 "}", shards[i].tokens, shards[i].docs);
    }
    sb_puts(&sb, "\n]}\n");
    int rc = write_manifest(dir, name, &sb, err);
    sb_free(&sb);
    return rc;
}

// ---------------------------------------------------------------- checking

// The manifest of the set a shard path DIR/NAME-NNNNN.h5 would belong to (malloc'd), or NULL
// when the name is not of that form. *file points at the shard's file name in path.
static char *manifest_for(const char *path, const char **file) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t len = strlen(base);
    *file = base;
    if (len < 4 || strcmp(base + len - 3, ".h5")) return NULL;
    const char *dash = base + len - 3;
    while (dash > base && dash[-1] >= '0' && dash[-1] <= '9') dash--;
    if (dash == base + len - 3 || dash == base || dash[-1] != '-') return NULL;
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup("."), *name = strndup(base, (size_t)(dash - 1 - base));
    char *manifest = dir && name ? shard_set_manifest_path(dir, name) : NULL;
    free(dir);
    free(name);
    return manifest;
}

// One manifest, read once for the consecutive shards of its set.
typedef struct {
    char *path;
    json_doc doc;
    const json_value *shards; // the "shards" array of a complete set
} set_manifest;

static void set_manifest_free(set_manifest *m) {
    if (m->path) json_free(&m->doc);
    free(m->path);
    memset(m, 0, sizeof *m);
}

// Every shard the manifest lists is there (dir: the manifest's directory).
static int check_listed(const set_manifest *m, gk_err *err) {
    char *dir = path_dirname(m->path);
    int rc = dir ? 0 : gk_fail(err, GK_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < m->shards->count; i++) {
        const json_value *file = json_get(m->shards->items[i], "file");
        char *path = file && file->type == JSON_STRING ? path_join(dir, file->string) : NULL;
        if (!file || file->type != JSON_STRING) rc = gk_fail(err, GK_EINPUT, "%s: shard %zu has no \"file\"", m->path, i);
        else if (!path) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        else if (!path_exists(path))
            rc = gk_fail(err, GK_EINPUT, "%s: shard %s of this set is missing (an incomplete set); tokenize it again",
                         m->path, path);
        free(path);
    }
    free(dir);
    return rc;
}

// Reads path into m: a complete set whose listed shards are all there.
static int set_manifest_load(set_manifest *m, char *path, gk_err *err) {
    char *text;
    size_t len;
    m->path = path;
    if (file_read_all(path, &text, &len, err)) {
        free(path);
        m->path = NULL;
        return -1;
    }
    int rc = json_parse(text, len, path, &m->doc, err);
    free(text);
    if (rc) {
        free(path);
        m->path = NULL;
        return -1;
    }
    const json_value *format = json_get(m->doc.root, "format"), *complete = json_get(m->doc.root, "complete");
    const json_value *pid = json_get(m->doc.root, "pid");
    m->shards = json_get(m->doc.root, "shards");
    if (!format || format->type != JSON_STRING || strcmp(format->string, SHARD_SET_FORMAT))
        return gk_fail(err, GK_EINPUT, "%s: not a shard set manifest (\"format\" is not \"%s\")", path, SHARD_SET_FORMAT);
    if (!complete || complete->type != JSON_BOOL || !complete->boolean)
        return gk_fail(err, GK_EINPUT, "%s: an incomplete shard set (tokenize pid %lld did not finish); remove its "
                       "shards and this file, and tokenize again", path, pid && pid->is_integer ? pid->integer : 0);
    if (!m->shards || m->shards->type != JSON_ARRAY) return gk_fail(err, GK_EINPUT, "%s: no \"shards\" list", path);
    return check_listed(m, err);
}

// The shard is listed, with its token count.
static int check_member(const set_manifest *m, const shard_file *s, const char *file, gk_err *err) {
    for (size_t i = 0; i < m->shards->count; i++) {
        const json_value *f = json_get(m->shards->items[i], "file"), *tokens = json_get(m->shards->items[i], "tokens");
        if (strcmp(f->string, file)) continue; // check_listed saw every "file"
        if (!tokens || !tokens->is_integer || (uint64_t)tokens->integer != s->n_tokens)
            return gk_fail(err, GK_EINPUT, "%s: %" PRIu64 " tokens, but its shard set %s lists %lld (a shard of another run?)",
                           s->path, s->n_tokens, m->path, tokens && tokens->is_integer ? tokens->integer : -1);
        return 0;
    }
    return gk_fail(err, GK_EINPUT, "%s: not in its shard set %s (a shard of another run?)", s->path, m->path);
}

int shard_set_check(const shard_file *shards, size_t n, gk_err *err) {
    set_manifest m = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *file;
        char *path = manifest_for(shards[i].path, &file);
        if (!path || !path_exists(path)) { // no set: a shard from before manifests, or another tool's
            free(path);
            continue;
        }
        if (m.path && !strcmp(m.path, path)) {
            free(path);
        } else {
            set_manifest_free(&m);
            rc = set_manifest_load(&m, path, err);
        }
        if (rc == 0) rc = check_member(&m, &shards[i], file, err);
    }
    set_manifest_free(&m);
    return rc;
}
