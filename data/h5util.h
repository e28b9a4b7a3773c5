// HDF5 plumbing for the modules that read and write HDF5 files (token shards,
// the teacher-logit cache): quiet error handling, the most specific error
// detail, handle cleanup, the file-access property list, and scalar attributes.
// `path` arguments only name the file in error messages.
#ifndef GK_H5UTIL_H
#define GK_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

// Silences HDF5's automatic error printing between begin and end (one public
// call); end clears the error stack and restores the caller's handler.
typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet;
void h5_quiet_begin(h5_quiet *q);
void h5_quiet_end(h5_quiet *q);

// The most specific message on HDF5's error stack ("file signature not found",
// "file write failed: No space left on device") as one line in buf[cap], or
// "HDF5 error" when the stack is empty. Clears the stack. Returns buf.
const char *h5_detail(char *buf, size_t cap);

// Closes an HDF5 object of any kind (file, dataset, dataspace, datatype,
// attribute, property list) and sets *id to H5I_INVALID_HID; a negative *id is
// fine. Keeps the error stack as it was, so a failure's detail survives the
// cleanup after it.
void h5_close(hid_t *id);

// A file-access property list: the sec2 driver, close everything with the
// file, and no failure on file systems without flock. Close it with h5_close.
hid_t h5_fapl(void);
// A new HDF5 file at path with those properties, or -1 with err naming path (the OS's own
// message when the path cannot be created at all). Call between h5_quiet_begin and _end.
hid_t h5_create(const char *path, gk_err *err);

// An HDF5 file at path opened read-only, or -1 with err naming path. Only a regular file
// is opened (file_open_regular: a named pipe would block in HDF5's open); HDF5 then opens
// the very file checked, through /proc/self/fd. Call between h5_quiet_begin and _end.
hid_t h5_open_read(const char *path, gk_err *err);

// "uint32", "int64", "float32", "string", ... for messages. Returns buf.
const char *h5_type_name(hid_t type, char *buf, size_t cap);

// Writes a scalar attribute of file_type on loc (a file, group or dataset) from
// *value in mem_type. Return 0 or -1 (detail on HDF5's error stack: h5_detail).
int h5_write_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value);
int h5_write_attr_i64(hid_t loc, const char *name, int64_t v); // int64 LE
int h5_write_attr_u64(hid_t loc, const char *name, uint64_t v); // uint64 LE
// Variable-length UTF-8: h5py returns these as str (fixed-length ones as bytes).
int h5_write_attr_str(hid_t loc, const char *name, const char *s);

// Opens a scalar (one-element) attribute of loc. Returns the attribute and
// stores its file type in *type (close both with h5_close), or returns -1 with
// err naming path and the attribute (missing, not a scalar, unreadable).
hid_t h5_open_attr(hid_t loc, const char *path, const char *name, hid_t *type, gk_err *err);

// Reads a scalar attribute of any integer type as int64. Another type, or a
// missing attribute, is an error naming path and the attribute.
int h5_read_attr_int(hid_t loc, const char *path, const char *name, int64_t *out, gk_err *err);
// Reads a scalar variable- or fixed-length string attribute into a malloc'd
// string (*out is NULL on error).
int h5_read_attr_str(hid_t loc, const char *path, const char *name, char **out, gk_err *err);

#endif
