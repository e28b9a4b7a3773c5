#include "tests/check.h"

#include "common/file.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *program_name(void) {
    extern const char *test_program;
    return test_program;
}

static int n_failed;

void test_run(const char *name, void (*fn)(test_case *)) {
    test_case tc = {0};
    fn(&tc);
    if (tc.failed) {
        n_failed++;
        printf("FAIL %s/%s: %s\n", program_name(), name, tc.why);
    } else if (tc.skipped) {
        printf("SKIP %s/%s: %s\n", program_name(), name, tc.why);
    } else {
        printf("PASS %s/%s\n", program_name(), name);
    }
    fflush(stdout);
}

int test_main_result(void) { return n_failed ? 1 : 0; }

const char *fixture_path(const char *name) {
    static char buf[4][1024]; // a few live at once in one expression
    static int next;
    char *out = buf[next++ % 4];
    const char *dir = getenv("GK_FIXTURES");
    snprintf(out, 1024, "%s/%s", dir ? dir : "tests/fixtures", name);
    return out;
}

double rel_error_f32(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]), m = fabs((double)b[i]);
        if (isnan(d)) return NAN;
        if (d > num) num = d;
        if (m > den) den = m;
    }
    return den > 0 ? num / den : num;
}

double rel_error_f64(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]), m = fabs(b[i]);
        if (isnan(d)) return NAN;
        if (d > num) num = d;
        if (m > den) den = m;
    }
    return den > 0 ? num / den : num;
}

int dir_entry_count(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

void test_gemmakd_path(const char *argv0, char *out, size_t n) {
    snprintf(out, n, "%s", argv0);
    char *slash = strrchr(out, '/');
    if (slash) *slash = 0; // build/tests
    slash = strrchr(out, '/');
    size_t at = slash ? (size_t)(slash + 1 - out) : 0;
    snprintf(out + at, n - at, "gemmakd");
}

int test_spawn(const char *const *argv, const char *env, const char *errfile) {
    return test_spawn_io(argv, env, NULL, NULL, errfile);
}

// Runs argv; max_file_bytes > 0 limits the size of files it writes (RLIMIT_FSIZE, SIGXFSZ
// ignored: writes past it fail with EFBIG, as on a full disk).
static int spawn(const char *const *argv, const char *env, const char *infile, const char *outfile, const char *errfile,
                 long long max_file_bytes) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (env) putenv((char *)env);
        if (!freopen(infile ? infile : "/dev/null", "r", stdin) || !freopen(outfile ? outfile : "/dev/null", "w", stdout) ||
            !freopen(errfile ? errfile : "/dev/null", "w", stderr))
            _exit(126);
        struct rlimit limit = {(rlim_t)max_file_bytes, (rlim_t)max_file_bytes};
        if (max_file_bytes > 0 && (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit(RLIMIT_FSIZE, &limit) != 0)) _exit(125);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    if (pid > 0) waitpid(pid, &status, 0);
    return status;
}

int test_spawn_io(const char *const *argv, const char *env, const char *infile, const char *outfile, const char *errfile) {
    return spawn(argv, env, infile, outfile, errfile, 0);
}

int test_spawn_full_disk(const char *const *argv, long long max_file_bytes, const char *errfile) {
    return spawn(argv, NULL, NULL, NULL, errfile, max_file_bytes);
}

const char *test_join(const char *dir, const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

char *test_read_text(const char *path) {
    char *text = NULL;
    size_t len;
    gk_err err;
    return file_read_all(path, &text, &len, &err) ? strdup("") : text;
}

int test_one_line(const char *msg) {
    const char *nl = strchr(msg, '\n');
    return nl && nl > msg && !nl[1];
}
