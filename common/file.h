// Reading, mapping and atomically writing files and directories.
// Outputs are written under a temporary name, synced, then renamed, so a
// crash or an error never leaves a half-written file under its final name.
#ifndef GK_FILE_H
#define GK_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "common/error.h"

// Opens path for reading when it is a regular file: opened non-blocking, checked with
// fstat (a named pipe, device or directory is refused: "not a regular file"), then
// made blocking again, so that open() never waits for a pipe's writer and nothing can
// swap the file between the check and the read. Returns the descriptor (its size in
// *size when size is not NULL), or -1 with err naming path.
int file_open_regular(const char *path, size_t *size, gk_err *err);

// Reads a whole regular file into a NUL-terminated malloc'd buffer.
int file_read_all(const char *path, char **data, size_t *len, gk_err *err);
// The same for any file, pipes included (tokenize's plain-text input, `<(zcat ...)`).
int file_read_stream(const char *path, char **data, size_t *len, gk_err *err);

// A read-only memory map of a whole regular file (an empty file maps to NULL, 0).
typedef struct {
    const unsigned char *data;
    size_t size;
} file_map;
int file_map_open(const char *path, file_map *map, gk_err *err);
void file_map_close(file_map *map);
// Gives back the mapped pages that lie wholly inside [p, p + len) of map: they leave the
// resident set (a later read maps them again from the file). For data read once.
void file_map_drop(const file_map *map, const void *p, size_t len);

// "<path>.tmp-<pid>": the name an output is written under until it is complete
// (malloc'd; NULL when out of memory).
char *file_tmp_path(const char *path);

// An output file written to file_tmp_path(path) and renamed on commit.
typedef struct {
    FILE *f;
    char *path, *tmp_path;
} atomic_file;
int atomic_file_open(atomic_file *af, const char *path, gk_err *err);
int atomic_file_commit(atomic_file *af, gk_err *err); // flush, fsync, close, rename
void atomic_file_abort(atomic_file *af);              // close and unlink the temporary file

// Makes the closed file tmp_path durable and puts it at path: fsync, rename, fsync of
// path's directory. *bytes (when not NULL) gets its size. On failure tmp_path is left
// for the caller to remove and path is untouched.
int file_publish(const char *tmp_path, const char *path, uint64_t *bytes, gk_err *err);

// Writes data to path atomically.
int file_write_atomic(const char *path, const void *data, size_t len, gk_err *err);

// Directory helpers.
int dir_exists(const char *path);
int path_exists(const char *path);
int dir_create(const char *path, gk_err *err);     // mkdir; an existing directory is fine
int dir_create_parents(const char *path, gk_err *err); // mkdir -p
int dir_remove_tree(const char *path, gk_err *err); // rm -r (a symbolic link: the link, not what it names)
int dir_sync(const char *path);                    // fsync a directory's entry list
// "<dir>/<name>" in a malloc'd string (NULL on allocation failure).
char *path_join(const char *dir, const char *name);
// The directory part of path, like dirname(1), in a malloc'd string (NULL on
// allocation failure): "a/b/c" -> "a/b", "a/b/" -> "a", "c" -> ".", "" -> ".",
// "/c" -> "/", "/" -> "/", "a//b" -> "a".
char *path_dirname(const char *path);

#endif
