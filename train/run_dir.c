#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/file.h"
#include "train/ckpt.h"

#define LOCK_NAME "train.lock"

// ---------------------------------------------------------------- the lock

// The pid written in a lock file (0 when there is none yet: its holder is between flock and write).
static long lock_holder(int fd) {
    char text[32] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    return n > 0 ? strtol(text, NULL, 10) : 0;
}

// The lock is taken: says who holds it.
static int in_use(const char *run_dir, const char *path, int fd, gk_err *err) {
    long pid = lock_holder(fd);
    if (pid > 0) return gk_fail(err, GK_EINPUT, "%s: run_dir in use by pid %ld (another gemmakd train)", run_dir, pid);
    return gk_fail(err, GK_EINPUT, "%s: run_dir in use by another process (%s is locked)", run_dir, path);
}

int run_dir_lock(const char *run_dir, int *fd, gk_err *err) {
    *fd = -1;
    char *path = path_join(run_dir, LOCK_NAME);
    if (!path) return gk_fail(err, GK_ENOMEM, "out of memory");
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666), rc = 0;
    if (f < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? in_use(run_dir, path, f, err)
                                  : gk_fail(err, GK_EIO, "%s: cannot lock: %s", path, strerror(errno));
    } else {
        char text[32];
        int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
        if (ftruncate(f, 0) != 0 || pwrite(f, text, (size_t)n, 0) != n)
            rc = gk_fail(err, GK_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    if (rc && f >= 0) close(f); // closing releases the lock
    if (rc == 0) *fd = f;
    free(path);
    return rc;
}

void run_dir_unlock(int fd) {
    if (fd >= 0) close(fd); // the file stays: removing it would let a waiting process lock an orphan
}

// ---------------------------------------------------------------- temporaries of killed runs

// The pid in a temporary's name "NAME.tmp-PID", or 0 when name is not one.
static long tmp_pid(const char *name) {
    const char *at = strstr(name, ".tmp-"), *next;
    while (at && (next = strstr(at + 1, ".tmp-"))) at = next;
    if (!at || !at[5]) return 0;
    char *end;
    long pid = strtol(at + 5, &end, 10);
    return *end || pid <= 0 ? 0 : pid;
}

static bool process_gone(long pid) { return kill((pid_t)pid, 0) == -1 && errno == ESRCH; }

int run_dir_remove_stale(const char *run_dir, size_t *removed, gk_err *err) {
    *removed = 0;
    DIR *d = opendir(run_dir);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list: %s", run_dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        long pid = tmp_pid(e->d_name);
        if (!pid || pid == (long)getpid() || !process_gone(pid)) continue;
        char *path = path_join(run_dir, e->d_name);
        rc = path ? dir_remove_tree(path, err) : gk_fail(err, GK_ENOMEM, "out of memory");
        *removed += rc == 0;
        free(path);
    }
    closedir(d);
    return rc;
}

// ---------------------------------------------------------------- an earlier run's checkpoints

// What an earlier run wrote beside its checkpoints: latest, metrics.jsonl, average-last-*.
static int remove_outputs(const char *run_dir, gk_err *err) {
    DIR *d = opendir(run_dir);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list: %s", run_dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *n = e->d_name;
        if (strcmp(n, "latest") && strcmp(n, "metrics.jsonl") && strncmp(n, "average-last-", 13)) continue;
        char *path = path_join(run_dir, n);
        rc = path ? dir_remove_tree(path, err) : gk_fail(err, GK_ENOMEM, "out of memory");
        free(path);
    }
    closedir(d);
    return rc;
}

int run_dir_prepare_fresh(const char *run_dir, bool overwrite, gk_err *err) {
    char **dirs;
    size_t n;
    if (ckpt_list_dirs(run_dir, &dirs, &n, err)) return -1;
    int rc = 0;
    if (n && !overwrite) {
        const char *newest = strrchr(dirs[n - 1], '/');
        rc = gk_fail(err, GK_EINPUT, "%s: holds %zu checkpoint(s) of an earlier run (newest %s); continue it with --resume, "
                     "or start over with --overwrite (removes them)", run_dir, n, newest ? newest + 1 : dirs[n - 1]);
    }
    if (rc == 0 && overwrite) rc = remove_outputs(run_dir, err); // latest first: it names a checkpoint
    for (size_t i = 0; rc == 0 && overwrite && i < n; i++) rc = dir_remove_tree(dirs[i], err);
    for (size_t i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    return rc;
}
