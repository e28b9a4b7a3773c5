// Path and directory helpers of common/file: path_dirname against hand-written
// expectations (dirname(1) semantics), dir_create_parents in a scratch directory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/checksum.h"
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

// A file's checksum, read in 1 MiB pieces, is that of its bytes in memory: for
// sizes around the 32-byte blocks and the pieces (a tail left in the last
// piece, a file of whole pieces, an empty file); a missing file is an error.
static void checksum_file_in_pieces(test_case *tc) {
    char dir[64], path[256];
    if (test_scratch_dir(tc, "file", dir, sizeof dir) < 0) return;
    snprintf(path, sizeof path, "%s/data", dir);
    const size_t sizes[] = {0, 31, 32, 33, 1 << 20, (1 << 20) + 5, 2 << 20, (2 << 20) + 33};
    size_t max = (2 << 20) + 33;
    unsigned char *bytes = malloc(max);
    for (size_t i = 0; i < max; i++) bytes[i] = (unsigned char)(i * 131 + (i >> 9));
    gk_err err = {0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && !tc->failed; k++) {
        FILE *f = fopen(path, "wb");
        CHECK(tc, f && fwrite(bytes, 1, sizes[k], f) == sizes[k] && fclose(f) == 0, "cannot write %s", path);
        uint64_t sum = 0, size = 0;
        CHECK(tc, checksum_file(path, &sum, &size, &err) == 0, "%s: %s", path, err.msg);
        CHECK(tc, size == sizes[k] && sum == checksum_bytes(bytes, sizes[k]),
              "%zu bytes: file checksum %016llx (size %llu), in memory %016llx", sizes[k], (unsigned long long)sum,
              (unsigned long long)size, (unsigned long long)checksum_bytes(bytes, sizes[k]));
    }
    snprintf(path, sizeof path, "%s/missing", dir);
    uint64_t sum, size;
    CHECK(tc, checksum_file(path, &sum, &size, &err) == -1 && strstr(err.msg, path), "missing file: '%s'", err.msg);
    free(bytes);
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

// Resident pages of this process (from /proc/self/statm).
static long resident_pages(void) {
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    if (f) fclose(f);
    return resident;
}

// file_map_drop takes a read region's pages out of the resident set, and the
// data reads back the same afterwards (mapped again from the file).
static void file_map_drop_releases_pages(test_case *tc) {
    char dir[64], path[256];
    if (test_scratch_dir(tc, "file", dir, sizeof dir) < 0) return;
    snprintf(path, sizeof path, "%s/data", dir);
    size_t n = 32u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *bytes = malloc(n);
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)(i * 7 + (i >> 12));
    gk_err err = {0};
    CHECK(tc, file_write_atomic(path, (const char *)bytes, n, &err) == 0, "%s", err.msg);
    file_map map = {0};
    CHECK(tc, file_map_open(path, &map, &err) == 0, "%s", err.msg);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += page) sum += map.data[i]; // every page resident
    long before = resident_pages();
    file_map_drop(&map, map.data, n);
    long after = resident_pages();
    CHECK(tc, before > 0 && before - after >= (long)(n / page) * 9 / 10, "resident pages %ld before the drop, %ld after (%u)",
          before, after, sum);
    CHECK(tc, !memcmp(map.data, bytes, n), "the data read after the drop differs from the file");
    file_map_close(&map);
    free(bytes);
    dir_remove_tree(dir, &err);
}

int main(void) {
    test_run("path_dirname_examples", path_dirname_examples);
    test_run("path_dirname_edge_cases", path_dirname_edge_cases);
    test_run("dir_create_parents_nested", dir_create_parents_nested);
    test_run("dir_create_parents_file_is_error", dir_create_parents_file_is_error);
    test_run("checksum_file_in_pieces", checksum_file_in_pieces);
    test_run("file_map_drop_releases_pages", file_map_drop_releases_pages);
    test_run("readers_refuse_non_regular_files", readers_refuse_non_regular_files);
    return test_main_result();
}
