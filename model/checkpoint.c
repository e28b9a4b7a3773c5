#include "model/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "model/model_dir.h"

#define SINGLE_NAME "model.safetensors"
#define INDEX_NAME "model.safetensors.index.json"
#define SHARD_PATTERN "model-*-of-*.safetensors"
#define EMBED_NAME "model.embed_tokens.weight"
#define HEAD_NAME "lm_head.weight"
enum { COMPARE_CHUNK = 1 << 20 };

// The safetensors files of one checkpoint, each opened once.
typedef struct {
    st_file *files;
    char **names; // file name of each (plain name inside the directory)
    size_t n_files;
} shard_set;

// Where a layout tensor was found.
typedef struct {
    const st_file *file;
    const st_tensor *tensor;
} located;

static void shard_set_free(shard_set *s) {
    for (size_t i = 0; i < s->n_files; i++) {
        st_close(&s->files[i]);
        free(s->names[i]);
    }
    free(s->files);
    free(s->names);
    memset(s, 0, sizeof *s);
}

// Opens dir/name as file number s->n_files (s->files and s->names have room).
static int open_shard(const char *dir, const char *name, shard_set *s, gk_err *err) {
    char *path = path_join(dir, name);
    char *copy = strdup(name);
    int rc = path && copy ? st_open(path, &s->files[s->n_files], err) : gk_fail(err, GK_ENOMEM, "out of memory");
    free(path);
    if (rc) {
        free(copy);
        return -1;
    }
    s->names[s->n_files++] = copy;
    return 0;
}

static int alloc_files(shard_set *s, size_t n, gk_err *err) {
    s->files = gk_calloc(n, sizeof *s->files, err);
    s->names = gk_calloc(n, sizeof *s->names, err);
    return s->files && s->names ? 0 : -1;
}

static size_t file_index(const shard_set *s, const char *name) {
    for (size_t i = 0; i < s->n_files; i++)
        if (!strcmp(s->names[i], name)) return i;
    return s->n_files;
}

// weight_map: every value a plain file name; no duplicate or NUL-holding keys.
static int check_weight_map(const char *index, const json_value *map, gk_err *err) {
    if (!map || map->type != JSON_OBJECT) return gk_fail(err, GK_EINPUT, "%s: 'weight_map' must be an object", index);
    const char *dup = json_duplicate_key(map);
    if (dup) return gk_fail(err, GK_EINPUT, "%s: weight_map lists tensor '%s' twice", index, dup);
    for (size_t i = 0; i < map->count; i++) {
        const json_value *v = map->items[i];
        if (strlen(map->keys[i]) != map->key_lengths[i])
            return gk_fail(err, GK_EINPUT, "%s:%d: weight_map key contains a NUL character", index, v->line);
        if (v->type != JSON_STRING)
            return gk_fail(err, GK_EINPUT, "%s:%d: weight_map['%s'] must be a file name string", index, v->line,
                           map->keys[i]);
        if (strlen(v->string) != v->length || !v->length || strchr(v->string, '/') || !strcmp(v->string, ".") ||
            !strcmp(v->string, ".."))
            return gk_fail(err, GK_EINPUT, "%s:%d: weight_map['%s']: shard name '%s' must be a plain file name", index,
                           v->line, map->keys[i], v->string);
    }
    return 0;
}

// The union of the shards' tensors must equal the weight_map keys, each in its named shard.
static int check_shards_match_map(const char *index, const json_value *map, const shard_set *s, gk_err *err) {
    for (size_t i = 0; i < s->n_files; i++) {
        for (size_t k = 0; k < s->files[i].n_tensors; k++) {
            const char *name = s->files[i].tensors[k].name;
            for (size_t j = 0; j < i; j++)
                if (st_find(&s->files[j], name))
                    return gk_fail(err, GK_EINPUT, "%s: tensor '%s' is in two shards, %s and %s", index, name,
                                   s->names[j], s->names[i]);
            const json_value *v = json_get(map, name);
            if (!v)
                return gk_fail(err, GK_EINPUT, "%s: tensor '%s' in shard %s is not listed in weight_map", index, name,
                               s->names[i]);
            if (strcmp(v->string, s->names[i]))
                return gk_fail(err, GK_EINPUT, "%s: tensor '%s' is in shard %s but weight_map puts it in %s", index,
                               name, s->names[i], v->string);
        }
    }
    for (size_t i = 0; i < map->count; i++) {
        const char *shard = map->items[i]->string;
        if (!st_find(&s->files[file_index(s, shard)], map->keys[i]))
            return gk_fail(err, GK_EINPUT, "%s: weight_map puts tensor '%s' in %s, which does not contain it", index,
                           map->keys[i], shard);
    }
    return 0;
}

// Opens each distinct shard named in the index once.
static int open_indexed(const char *dir, const char *index, const json_value *root, shard_set *s, gk_err *err) {
    if (root->type != JSON_OBJECT) return gk_fail(err, GK_EINPUT, "%s: expected a JSON object", index);
    const json_value *map = json_get(root, "weight_map");
    if (check_weight_map(index, map, err) || alloc_files(s, map->count, err)) return -1;
    for (size_t i = 0; i < map->count; i++) {
        const char *shard = map->items[i]->string;
        if (file_index(s, shard) < s->n_files) continue;
        if (open_shard(dir, shard, s, err)) {
            char *path = path_join(dir, shard);
            if (path && !path_exists(path))
                gk_fail(err, GK_EINPUT, "%s: weight_map names shard %s, which does not exist", index, shard);
            free(path);
            return -1;
        }
    }
    return check_shards_match_map(index, map, s, err);
}

static int open_weights(const char *dir, shard_set *s, gk_err *err) {
    char *index = path_join(dir, INDEX_NAME), *single = path_join(dir, SINGLE_NAME);
    int rc = -1;
    if (!index || !single) {
        rc = gk_fail(err, GK_ENOMEM, "out of memory");
    } else if (path_exists(index)) {
        char *text;
        size_t len;
        json_doc doc;
        if (file_read_all(index, &text, &len, err) == 0) {
            if (json_parse(text, len, index, &doc, err) == 0) {
                rc = open_indexed(dir, index, doc.root, s, err);
                json_free(&doc);
            }
            free(text);
        }
    } else if (path_exists(single)) {
        rc = alloc_files(s, 1, err) ? -1 : open_shard(dir, SINGLE_NAME, s, err);
    } else {
        rc = gk_fail(err, GK_EINPUT, "%s: no weights: neither %s nor %s exists", dir, SINGLE_NAME, INDEX_NAME);
    }
    free(index);
    free(single);
    return rc;
}

static int same_shape(const st_tensor *t, int ndim, const size_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d]) return 0;
    return 1;
}

// Every file tensor is in the layout (or is lm_head.weight); every layout tensor is present with its shape.
static int locate_all(const char *dir, const shard_set *s, const param_layout *L, located *where, gk_err *err) {
    for (size_t i = 0; i < s->n_files; i++) {
        const st_file *f = &s->files[i];
        for (size_t k = 0; k < f->n_tensors; k++) {
            const char *name = f->tensors[k].name;
            if (!param_find(L, name) && strcmp(name, HEAD_NAME))
                return gk_fail(err, GK_EINPUT, "%s: unexpected tensor '%s' (not in the Gemma 2 layout of this config)",
                               f->path, name);
        }
    }
    for (int p = 0; p < L->n_tensors; p++) {
        const param_tensor *pt = &L->tensors[p];
        char want[128], got[128];
        where[p].tensor = NULL;
        for (size_t i = 0; i < s->n_files && !where[p].tensor; i++) {
            where[p].file = &s->files[i];
            where[p].tensor = st_find(&s->files[i], pt->name);
        }
        if (!where[p].tensor)
            return gk_fail(err, GK_EINPUT, "%s: missing tensor '%s' (expected shape %s)", dir, pt->name,
                           st_shape_str(want, sizeof want, pt->ndim, pt->shape));
        if (!same_shape(where[p].tensor, pt->ndim, pt->shape))
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s' has shape %s, expected %s", where[p].file->path, pt->name,
                           st_shape_str(got, sizeof got, where[p].tensor->ndim, where[p].tensor->shape),
                           st_shape_str(want, sizeof want, pt->ndim, pt->shape));
    }
    return 0;
}

// lm_head.weight, when present, must equal the (already loaded) embedding bit for bit.
static int check_tied_head(const shard_set *s, const param_layout *L, const float *params, gk_err *err) {
    const st_file *f = NULL;
    const st_tensor *head = NULL;
    for (size_t i = 0; i < s->n_files && !head; i++) head = st_find(f = &s->files[i], HEAD_NAME);
    const param_tensor *embed = param_find(L, EMBED_NAME);
    if (!head) return 0;
    GK_ASSERT(embed);
    char want[128], got[128];
    if (!same_shape(head, embed->ndim, embed->shape))
        return gk_fail(err, GK_EINPUT, "%s: tensor '" HEAD_NAME "' has shape %s, expected %s (tied to " EMBED_NAME ")",
                       f->path, st_shape_str(got, sizeof got, head->ndim, head->shape),
                       st_shape_str(want, sizeof want, embed->ndim, embed->shape));
    float *buf = gk_malloc(COMPARE_CHUNK * sizeof *buf, err); // [COMPARE_CHUNK]
    if (!buf) return -1;
    int rc = 0;
    for (size_t start = 0; start < head->numel && rc == 0; start += COMPARE_CHUNK) {
        st_tensor part = *head; // a view of elements [start, start + part.numel)
        part.numel = head->numel - start < COMPARE_CHUNK ? head->numel - start : COMPARE_CHUNK;
        part.data = head->data + start * st_dtype_size(head->dtype);
        rc = st_to_f32(f, &part, buf, err);
        if (rc == 0 && memcmp(buf, params + embed->offset + start, part.numel * sizeof *buf))
            rc = gk_fail(err, GK_EINPUT,
                         "%s: '" HEAD_NAME "' differs from '" EMBED_NAME "'; gemmakd ties the output head to the "
                         "embedding and cannot load a separate one",
                         f->path);
    }
    free(buf);
    return rc;
}

int model_load_weights(const char *dir, const param_layout *L, float *params, gk_err *err) {
    shard_set s = {0};
    located *where = gk_calloc((size_t)L->n_tensors, sizeof *where, err);
    int rc = where ? open_weights(dir, &s, err) : -1;
    if (rc == 0) rc = locate_all(dir, &s, L, where, err);
    for (int p = 0; p < L->n_tensors && rc == 0; p++)
        rc = st_to_f32(where[p].file, where[p].tensor, params + L->tensors[p].offset, err);
    if (rc == 0) rc = check_tied_head(&s, L, params, err);
    free(where);
    shard_set_free(&s);
    return rc;
}

int model_load_dir(const char *dir, model_state *m, gk_err *err) {
    memset(m, 0, sizeof *m);
    char *config = path_join(dir, "config.json");
    int rc = config ? model_config_load(config, &m->cfg, err) : gk_fail(err, GK_ENOMEM, "out of memory");
    free(config);
    if (rc == 0) rc = param_layout_build(&m->cfg, &m->layout, err);
    if (rc == 0 && !(m->params = param_buffer_alloc(&m->layout, err))) rc = -1;
    if (rc == 0) rc = model_load_weights(dir, &m->layout, m->params, err);
    if (rc) model_state_free(m);
    return rc;
}

void model_state_free(model_state *m) {
    free(m->params);
    param_layout_free(&m->layout);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- saving

// Greedy fill in layout order, as huggingface_hub does; a tensor larger than
// the limit gets a shard of its own. Returns the number of shards.
static int plan_shards(const param_layout *L, size_t elem, size_t max_bytes, int *shard_of) {
    int shard = 0;
    size_t used = 0, count = 0;
    for (int p = 0; p < L->n_tensors; p++) {
        size_t bytes = L->tensors[p].numel * elem;
        // An oversize tensor starts a new shard and, since used > max_bytes, closes it.
        if (max_bytes && count && used + bytes > max_bytes) {
            shard++;
            used = count = 0;
        }
        shard_of[p] = shard;
        used += bytes;
        count++;
    }
    return shard + 1;
}

static void shard_name(char *buf, size_t cap, int k, int n) {
    snprintf(buf, cap, "model-%05d-of-%05d.safetensors", k + 1, n);
}

// Removes files of an earlier save that a loader would pick up instead of, or
// mixed with, this one: the other layout's entry file and unused shard names.
static int remove_stale(const char *dir, int n_shards, gk_err *err) {
    DIR *d = opendir(dir);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        int stale = !strcmp(e->d_name, n_shards > 1 ? SINGLE_NAME : INDEX_NAME);
        if (!stale && !fnmatch(SHARD_PATTERN, e->d_name, 0)) {
            stale = 1;
            for (int k = 0; k < n_shards && n_shards > 1 && stale; k++) {
                char name[64];
                shard_name(name, sizeof name, k, n_shards);
                stale = strcmp(name, e->d_name) != 0;
            }
        }
        if (!stale) continue;
        char *path = path_join(dir, e->d_name);
        if (!path) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        else if (unlink(path) && errno != ENOENT)
            rc = gk_fail(err, GK_EIO, "%s: cannot remove stale file: %s", path, strerror(errno));
        free(path);
    }
    closedir(d);
    dir_sync(dir);
    return rc;
}

static int write_index(const char *dir, const param_layout *L, const int *shard_of, int n_shards, size_t elem,
                       gk_err *err) {
    strbuf sb = {0};
    size_t total = 0;
    for (int p = 0; p < L->n_tensors; p++) total += L->tensors[p].numel * elem;
    sb_printf(&sb, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {", total);
    for (int p = 0; p < L->n_tensors; p++) {
        char name[64];
        shard_name(name, sizeof name, shard_of[p], n_shards);
        sb_puts(&sb, p ? ",\n    " : "\n    ");
        sb_json_string(&sb, L->tensors[p].name, strlen(L->tensors[p].name));
        sb_printf(&sb, ": \"%s\"", name);
    }
    sb_puts(&sb, "\n  }\n}\n");
    char *path = path_join(dir, INDEX_NAME);
    int rc =
        sb.failed || !path ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb.data, sb.len, err);
    free(path);
    sb_free(&sb);
    return rc;
}

// Writes the shards (tensors of shard k are contiguous in layout order), then the index.
static int write_weights(const char *dir, const param_layout *L, const st_out_tensor *outs, const int *shard_of,
                         int n_shards, st_dtype dtype, gk_err *err) {
    int first = 0, rc = 0;
    for (int k = 0; k < n_shards && rc == 0; k++) {
        int last = first;
        while (last < L->n_tensors && shard_of[last] == k) last++;
        char name[64];
        if (n_shards == 1) snprintf(name, sizeof name, SINGLE_NAME);
        else shard_name(name, sizeof name, k, n_shards);
        char *path = path_join(dir, name);
        rc = path ? st_write(path, outs + first, (size_t)(last - first), dtype, err)
                  : gk_fail(err, GK_ENOMEM, "out of memory");
        free(path);
        first = last;
    }
    if (rc == 0 && n_shards > 1) rc = write_index(dir, L, shard_of, n_shards, st_dtype_size(dtype), err);
    return rc;
}

int model_save_dir(const char *dir, const model_state *m, st_dtype dtype, size_t max_shard_bytes,
                   const char *tokenizer_sha256, gk_err *err) {
    if (dtype != ST_F32 && dtype != ST_BF16)
        return gk_fail(err, GK_EINPUT, "%s: cannot save weights as %s (F32 or BF16 only)", dir, st_dtype_name(dtype));
    const param_layout *L = &m->layout;
    char *config = path_join(dir, "config.json");
    int rc = config ? model_config_save(&m->cfg, config, dtype == ST_BF16 ? "bfloat16" : "float32", err)
                    : gk_fail(err, GK_ENOMEM, "out of memory");
    free(config);
    if (rc) return -1;
    int *shard_of = gk_calloc((size_t)L->n_tensors, sizeof *shard_of, err);
    st_out_tensor *outs = gk_calloc((size_t)L->n_tensors, sizeof *outs, err);
    rc = shard_of && outs ? 0 : -1;
    for (int p = 0; p < L->n_tensors && rc == 0; p++) {
        const param_tensor *t = &L->tensors[p];
        outs[p] = (st_out_tensor){.name = t->name, .ndim = t->ndim, .data = m->params + t->offset};
        memcpy(outs[p].shape, t->shape, sizeof t->shape);
    }
    int n_shards = rc == 0 ? plan_shards(L, st_dtype_size(dtype), max_shard_bytes, shard_of) : 0;
    if (rc == 0) rc = write_weights(dir, L, outs, shard_of, n_shards, dtype, err);
    if (rc == 0) rc = remove_stale(dir, n_shards, err);
    if (rc == 0 && tokenizer_sha256 && tokenizer_sha256[0]) rc = model_dir_write_tokenizer(dir, tokenizer_sha256, err);
    free(shard_of);
    free(outs);
    return rc;
}

int model_create_dir(const char *dir_arg, const model_state *m, st_dtype dtype, size_t max_shard_bytes,
                     const char *tokenizer_sha256, gk_err *err) {
    if (path_exists(dir_arg)) return gk_fail(err, GK_EINPUT, "%s already exists; choose a new directory", dir_arg);
    char *dir = strdup(dir_arg), *tmp = NULL;
    if (dir) for (size_t len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--) dir[len - 1] = 0; // "out/m/" -> "out/m"
    if (!dir || !(tmp = file_tmp_path(dir))) {
        free(dir);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    gk_err ignored;
    dir_remove_tree(tmp, &ignored); // left over from a killed run with the same pid
    int rc = dir_create(tmp, err);
    if (rc == 0) rc = model_save_dir(tmp, m, dtype, max_shard_bytes, tokenizer_sha256, err);
    if (rc == 0 && rename(tmp, dir) != 0)
        rc = gk_fail(err, GK_EIO, "%s: cannot rename from %s: %s", dir, tmp, strerror(errno));
    if (rc) {
        dir_remove_tree(tmp, &ignored);
    } else {
        char *parent = path_dirname(dir);
        if (parent) dir_sync(parent);
        free(parent);
    }
    free(dir);
    free(tmp);
    return rc;
}
