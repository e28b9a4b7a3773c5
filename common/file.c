#include "common/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t mode) {
    return S_ISFIFO(mode) ? "a named pipe" : S_ISDIR(mode) ? "a directory" : S_ISSOCK(mode) ? "a socket"
         : S_ISCHR(mode) || S_ISBLK(mode) ? "a device" : "not a file";
}

int file_open_regular(const char *path, size_t *size, gk_err *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return gk_fail(err, GK_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int flags;
    if (fstat(fd, &st) != 0 || (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return gk_fail(err, GK_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gk_fail(err, GK_EIO, "%s: not a regular file (%s)", path, kind_of(st.st_mode));
    }
    if (size) *size = (size_t)st.st_size;
    return fd;
}

// Reads f to its end into a NUL-terminated malloc'd buffer; closes f.
static int read_stream(FILE *f, const char *path, char **data, size_t *len, gk_err *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return gk_fail(err, GK_ENOMEM, "%s: out of memory reading file", path);
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) free(buf);
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return gk_fail(err, GK_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int file_read_all(const char *path, char **data, size_t *len, gk_err *err) {
    int fd = file_open_regular(path, NULL, err);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return gk_fail(err, GK_ENOMEM, "%s: out of memory reading file", path);
    }
    return read_stream(f, path, data, len, err);
}

int file_read_stream(const char *path, char **data, size_t *len, gk_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gk_fail(err, GK_EIO, "%s: cannot open: %s", path, strerror(errno));
    return read_stream(f, path, data, len, err);
}

int file_map_open(const char *path, file_map *map, gk_err *err) {
    map->data = NULL;
    map->size = 0;
    size_t size;
    int fd = file_open_regular(path, &size, err);
    if (fd < 0) return -1;
    if (size > 0) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return gk_fail(err, GK_EIO, "%s: cannot map: %s", path, strerror(errno));
        }
        map->data = p;
        map->size = size;
    }
    close(fd);
    return 0;
}

void file_map_drop(const file_map *map, const void *p, size_t len) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)p + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)p + len) / page * page, end = (uintptr_t)map->data + map->size;
    if (!map->data || (uintptr_t)p < (uintptr_t)map->data || (uintptr_t)p + len > end || hi <= lo) return;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void file_map_close(file_map *map) {
    if (map->data) munmap((void *)map->data, map->size);
    map->data = NULL;
    map->size = 0;
}

char *file_tmp_path(const char *path) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (tmp) snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    return tmp;
}

int atomic_file_open(atomic_file *af, const char *path, gk_err *err) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    af->tmp_path = file_tmp_path(path);
    if (!af->path || !af->tmp_path) {
        atomic_file_abort(af);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        int e = errno;
        atomic_file_abort(af);
        return gk_fail(err, GK_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

int file_publish(const char *tmp_path, const char *path, uint64_t *bytes, gk_err *err) {
    int fd = open(tmp_path, O_RDONLY);
    struct stat st;
    int bad = fd < 0 || fsync(fd) != 0 || fstat(fd, &st) != 0, e = errno;
    if (fd >= 0) close(fd);
    if (bad || rename(tmp_path, path) != 0)
        return gk_fail(err, GK_EIO, "%s: cannot %s: %s", path, bad ? "sync" : "rename into place",
                       strerror(bad ? e : errno));
    if (bytes) *bytes = (uint64_t)st.st_size;
    char *dir = path_dirname(path);
    if (dir) dir_sync(dir);
    free(dir);
    return 0;
}

int atomic_file_commit(atomic_file *af, gk_err *err) {
    int bad = fflush(af->f) != 0 || ferror(af->f), e = errno;
    if (fclose(af->f) != 0 && !bad) bad = 1, e = errno;
    af->f = NULL;
    if (bad) gk_fail(err, GK_EIO, "%s: write failed: %s", af->path, strerror(e));
    if (bad || file_publish(af->tmp_path, af->path, NULL, err)) {
        atomic_file_abort(af);
        return -1;
    }
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return 0;
}

void atomic_file_abort(atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int file_write_atomic(const char *path, const void *data, size_t len, gk_err *err) {
    atomic_file af;
    if (atomic_file_open(&af, path, err)) return -1;
    if (len && fwrite(data, 1, len, af.f) != len) {
        atomic_file_abort(&af);
        return gk_fail(err, GK_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    return atomic_file_commit(&af, err);
}

int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int path_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int dir_create(const char *path, gk_err *err) {
    if (mkdir(path, 0777) == 0 || (errno == EEXIST && dir_exists(path))) return 0;
    return gk_fail(err, GK_EIO, "%s: cannot create directory: %s", path, strerror(errno));
}

int dir_create_parents(const char *path, gk_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return gk_fail(err, GK_EINPUT, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return gk_fail(err, GK_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    return dir_create(path, err);
}

int dir_remove_tree(const char *path, gk_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : gk_fail(err, GK_EIO, "%s: cannot remove: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) { // a symbolic link is removed, never followed
        if (unlink(path) == 0 || errno == ENOENT) return 0;
        return gk_fail(err, GK_EIO, "%s: cannot remove: %s", path, strerror(errno));
    }
    DIR *d = opendir(path);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot remove: %s", path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *child = path_join(path, e->d_name);
        if (!child) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        else rc = dir_remove_tree(child, err);
        free(child);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0) rc = gk_fail(err, GK_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return rc;
}

int dir_sync(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

char *path_dirname(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; // trailing slashes (a lone "/" stays)
    while (n > 0 && path[n - 1] != '/') n--; // the last component
    if (n == 0) return strdup(".");
    while (n > 1 && path[n - 1] == '/') n--; // the slashes before it
    return strndup(path, n);
}

char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", dir, name);
    return out;
}
