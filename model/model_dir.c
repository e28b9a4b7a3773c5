#include "model/model_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "common/sha256.h"

int model_dir_write_tokenizer(const char *dir, const char *tokenizer_sha256, gk_err *err) {
    char text[128], *path = path_join(dir, "gemmakd.json");
    if (!path) return gk_fail(err, GK_ENOMEM, "out of memory");
    snprintf(text, sizeof text, "{\"tokenizer_sha256\": \"%s\"}\n", tokenizer_sha256);
    int rc = file_write_atomic(path, text, strlen(text), err);
    free(path);
    return rc;
}

char *model_dir_tokenizer_file(const char *dir) {
    const char *names[] = {"tokenizer.json", "tokenizer.model"};
    for (int i = 0; i < 2; i++) {
        char *path = path_join(dir, names[i]);
        if (path && path_exists(path)) return path;
        free(path);
    }
    return NULL;
}

// The "tokenizer_sha256" of gemmakd.json at path, when it holds one.
static int recorded_tokenizer(const char *path, char sha256[65], bool *found, gk_err *err) {
    char *text;
    size_t len;
    json_doc doc;
    if (file_read_all(path, &text, &len, err)) return -1;
    int rc = json_parse(text, len, path, &doc, err);
    free(text); // the parsed document holds copies
    if (rc) return -1;
    const json_value *v = json_get(doc.root, "tokenizer_sha256");
    if (v && v->type == JSON_STRING && v->length == 64) {
        memcpy(sha256, v->string, 65);
        *found = true;
    }
    json_free(&doc);
    return 0;
}

int model_dir_tokenizer(const char *dir, char sha256[65], bool *found, gk_err *err) {
    *found = false;
    char *file = model_dir_tokenizer_file(dir);
    if (file) {
        int rc = sha256_file(file, sha256, err);
        free(file);
        if (rc) return -1;
        *found = true;
        return 0;
    }
    char *path = path_join(dir, "gemmakd.json");
    int rc = path && path_exists(path) ? recorded_tokenizer(path, sha256, found, err) : 0;
    free(path);
    return rc;
}
