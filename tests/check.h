// Minimal test harness. Each test program runs named cases and prints one line
// per case: "PASS <prog>/<case>", "FAIL <prog>/<case>: <why>" or
// "SKIP <prog>/<case>: <reason>". tests/run.sh adds the lines up.
#ifndef GK_TEST_CHECK_H
#define GK_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

// Failure messages quote error messages that may be long; cutting them is fine.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

typedef struct {
    int failed, skipped;
    char why[1024];
} test_case;

// Records the first failure of a case and continues.
#define CHECK(tc, cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond) && !(tc)->failed) {                                                      \
            (tc)->failed = 1;                                                                \
            int _n = snprintf((tc)->why, sizeof (tc)->why, "%s:%d: ", __FILE__, __LINE__);   \
            snprintf((tc)->why + _n, sizeof (tc)->why - (size_t)_n, __VA_ARGS__);            \
        }                                                                                    \
    } while (0)

#define SKIP(tc, ...)                                                                        \
    do {                                                                                     \
        (tc)->skipped = 1;                                                                   \
        snprintf((tc)->why, sizeof (tc)->why, __VA_ARGS__);                                  \
    } while (0)

void test_run(const char *name, void (*fn)(test_case *));
int test_main_result(void); // 0 when no case failed

// Path to a fixture under tests/fixtures (fixed buffer per call site).
const char *fixture_path(const char *name);

// Number of entries in a directory (without . and ..), or -1 if it cannot be read.
int dir_entry_count(const char *dir);

// max|a-b| / max|b| over n values (the "relative error" used throughout the tests).
double rel_error_f32(const float *a, const float *b, size_t n);
double rel_error_f64(const double *a, const double *b, size_t n);

// dir/name in one of 8 rotating buffers: a few results may be live at once
// (copy one that must outlive the next eight calls).
const char *test_join(const char *dir, const char *name);

// The gemmakd binary beside a test binary: build/tests/test_x -> build/gemmakd.
void test_gemmakd_path(const char *argv0, char *out, size_t n);
// Runs argv (argv[0] the program, NULL-terminated) with an optional "NAME=value"
// environment entry, stdout to /dev/null, stderr to errfile (or /dev/null);
// returns the wait status.
int test_spawn(const char *const *argv, const char *env, const char *errfile);
// The same with stdin from infile and stdout to outfile (NULL: /dev/null).
int test_spawn_io(const char *const *argv, const char *env, const char *infile, const char *outfile, const char *errfile);
// test_spawn on a "full disk": files the program writes cannot grow past max_file_bytes
// (RLIMIT_FSIZE; the write fails with EFBIG instead of raising SIGXFSZ).
int test_spawn_full_disk(const char *const *argv, long long max_file_bytes, const char *errfile);
// A file's contents as a malloc'd string ("" when it cannot be read).
char *test_read_text(const char *path);
// msg is exactly one line ending in '\n' (how every command reports an error).
int test_one_line(const char *msg);

#endif
