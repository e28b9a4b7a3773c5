// Path and directory helpers of common/file: path_dirname against hand-written
// expectations (dirname(1) semantics), dir_create_parents in a scratch directory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_file";

typedef struct {
    const char *path, *want;
} dirname_case;

static void check_dirnames(test_case *tc, const dirname_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *got = path_dirname(cases[i].path);
        CHECK(tc, got != NULL, "path_dirname(\"%s\") returned NULL", cases[i].path);
        CHECK(tc, !got || strcmp(got, cases[i].want) == 0, "path_dirname(\"%s\") = \"%s\", want \"%s\"", cases[i].path,
              got ? got : "", cases[i].want);
        free(got);
    }
}

static void path_dirname_examples(test_case *tc) {
    static const dirname_case cases[] = {
        {"a/b/c", "a/b"},
        {"c", "."},
        {"/c", "/"},
        {"a/b/", "a"},
        {"/a/b", "/a"},
        {"../x", ".."},
    };
    check_dirnames(tc, cases, sizeof cases / sizeof cases[0]);
}

static void path_dirname_edge_cases(test_case *tc) {
    static const dirname_case cases[] = {
        {"", "."},
        {"/", "/"},
        {"//", "/"},
        {"a", "."},
        {"a/", "."},
        {"./a", "."},
        {"a//b", "a"},
        {"a/b//c//", "a/b"},
        {"/a//", "/"},
    };
    check_dirnames(tc, cases, sizeof cases / sizeof cases[0]);
}

// ---------------------------------------------------------------- dir_create_parents

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void dir_create_parents_nested(test_case *tc) {
    char dir[64], p[256];
    if (test_scratch_dir(tc, "file", dir, sizeof dir) < 0) return;
    gk_err err = {0};
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    CHECK(tc, dir_create_parents(p, &err) == 0, "%s: %s", p, err.msg);
    const char *want[] = {"a", "a/b", "a/b/c"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, want[i]);
        CHECK(tc, is_dir(p), "%s is not a directory", p);
    }
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    CHECK(tc, dir_create_parents(p, &err) == 0, "existing %s: %s", p, err.msg);
    snprintf(p, sizeof p, "%s/a/x/y/", dir); // a trailing slash
    CHECK(tc, dir_create_parents(p, &err) == 0, "%s: %s", p, err.msg);
    snprintf(p, sizeof p, "%s/a/x/y", dir);
    CHECK(tc, is_dir(p), "%s is not a directory", p);
    dir_remove_tree(dir, &err);
}

static void dir_create_parents_file_is_error(test_case *tc) {
    char dir[64], file[256], p[256];
    if (test_scratch_dir(tc, "file", dir, sizeof dir) < 0) return;
    snprintf(file, sizeof file, "%s/f", dir);
    FILE *f = fopen(file, "w");
    CHECK(tc, f != NULL, "cannot create %s", file);
    if (f) fclose(f);
    gk_err err = {0};
    CHECK(tc, dir_create_parents(file, &err) == -1, "%s (a file) accepted", file);
    CHECK(tc, strstr(err.msg, file) != NULL, "message does not name %s: %s", file, err.msg);
    snprintf(p, sizeof p, "%s/sub", file);
    err = (gk_err){0};
    CHECK(tc, dir_create_parents(p, &err) == -1, "%s (under a file) accepted", p);
    CHECK(tc, err.msg[0] != 0, "no message for %s", p);
    CHECK(tc, is_file(file), "%s is no longer a regular file", file);
    dir_remove_tree(dir, &err);
}

// A named pipe without a writer (or a directory) where a file is read: refused at once with
// "not a regular file" naming it; open() used to block forever on the pipe.
static void readers_refuse_non_regular_files(test_case *tc) {
    char dir[64], fifo[256], file[256];
    if (test_scratch_dir(tc, "file", dir, sizeof dir) < 0) return;
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    snprintf(file, sizeof file, "%s/plain", dir);
    gk_err err = {0};
    CHECK(tc, mkfifo(fifo, 0600) == 0 && file_write_atomic(file, "abc", 3, &err) == 0, "setup: %s", err.msg);
    alarm(20); // a reader that blocks ends the test here (SIGALRM) instead of hanging the suite
    const char *bad[2] = {fifo, dir};
    for (int i = 0; !tc->failed && i < 2; i++) {
        char *data = NULL;
        size_t len;
        file_map map;
        err = (gk_err){0};
        CHECK(tc, file_read_all(bad[i], &data, &len, &err) == -1 && strstr(err.msg, bad[i]) &&
                      strstr(err.msg, "not a regular file"),
              "file_read_all(%s): %s", bad[i], err.msg);
        err = (gk_err){0};
        CHECK(tc, file_map_open(bad[i], &map, &err) == -1 && strstr(err.msg, bad[i]) && strstr(err.msg, "not a regular file"),
              "file_map_open(%s): %s", bad[i], err.msg);
        free(data);
    }
    char *data = NULL;
    size_t len = 0;
    file_map map = {0};
    CHECK(tc, file_read_all(file, &data, &len, &err) == 0 && len == 3 && !memcmp(data, "abc", 3), "read: %s", err.msg);
    CHECK(tc, file_map_open(file, &map, &err) == 0 && map.size == 3 && !memcmp(map.data, "abc", 3), "map: %s", err.msg);
    alarm(0);
    free(data);
    file_map_close(&map);
    dir_remove_tree(dir, &err);
}

int main(void) {
    test_run("path_dirname_examples", path_dirname_examples);
    test_run("path_dirname_edge_cases", path_dirname_edge_cases);
    test_run("dir_create_parents_nested", dir_create_parents_nested);
    test_run("dir_create_parents_file_is_error", dir_create_parents_file_is_error);
    test_run("readers_refuse_non_regular_files", readers_refuse_non_regular_files);
    return test_main_result();
}
