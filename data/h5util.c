// HDF5 plumbing shared by the HDF5 file formats; see h5util.h.
#include "data/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"

// No library shutdown at exit: after a failed write (a full disk, a file size limit)
// HDF5 1.10 cannot close the file, and its exit handler then crashes in H5F__close_cb
// on the half-closed file after the error was reported. Every file gemmakd writes is
// closed (or abandoned and removed) explicitly, so nothing is lost. Runs before main,
// ahead of any HDF5 call, which it must.
__attribute__((constructor)) static void h5_no_exit_handler(void) { H5dont_atexit(); }

void h5_quiet_begin(h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_quiet_end(h5_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

// One line from an HDF5 description into buf[cap]. The sec2 driver's I/O errors embed
// ctime() (which ends in a newline) among a dozen fields: "file write failed: time =
// ...\n, filename = ..., errno = 28, error message = 'No space left on device', buf = ..."
// becomes "file write failed: No space left on device"; other line breaks become spaces.
static void one_line(const char *desc, char *buf, size_t cap) {
    const char *key = "error message = '", *at = strstr(desc, key), *colon = strchr(desc, ':');
    if (at && colon && colon < at) {
        const char *msg = at + strlen(key), *end = strchr(msg, '\'');
        snprintf(buf, cap, "%.*s: %.*s", (int)(colon - desc), desc, (int)(end ? end - msg : (ptrdiff_t)strlen(msg)), msg);
    } else {
        snprintf(buf, cap, "%s", desc);
    }
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
}

typedef struct {
    char *buf;
    size_t cap;
} detail_ctx;

// Walking upward visits the innermost (most specific) error first.
static herr_t detail_walk(unsigned n, const H5E_error2_t *e, void *data) {
    detail_ctx *ctx = data;
    if (n == 0 && e->desc && e->desc[0]) one_line(e->desc, ctx->buf, ctx->cap);
    return 0;
}

const char *h5_detail(char *buf, size_t cap) {
    detail_ctx ctx = {buf, cap};
    snprintf(buf, cap, "HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_walk, &ctx);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

void h5_close(hid_t *id) {
    if (*id < 0) return;
    hid_t saved = H5Eget_num(H5E_DEFAULT) > 0 ? H5Eget_current_stack() : H5I_INVALID_HID;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
    if (saved >= 0) H5Eset_current_stack(saved);
}

hid_t h5_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    H5Pset_file_locking(fapl, 1, 1);
    return fapl;
}

hid_t h5_create(const char *path, gk_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666); // HDF5 would only say "unable to open file"
    if (fd < 0) return gk_fail(err, GK_EIO, "%s: cannot create: %s", path, strerror(errno));
    close(fd);
    hid_t fapl = h5_fapl();
    hid_t f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    h5_close(&fapl);
    char detail[256];
    if (f < 0) return gk_fail(err, GK_EIO, "%s: cannot create: %s", path, h5_detail(detail, sizeof detail));
    return f;
}

hid_t h5_open_read(const char *path, gk_err *err) {
    int fd = file_open_regular(path, NULL, err);
    if (fd < 0) return -1;
    char self[64]; // the descriptor's file, whatever path names by now (without /proc: path itself)
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    hid_t fapl = h5_fapl();
    hid_t f = fapl < 0 ? -1 : H5Fopen(access(self, R_OK) == 0 ? self : path, H5F_ACC_RDONLY, fapl);
    h5_close(&fapl);
    close(fd);
    char detail[256];
    if (f < 0) return gk_fail(err, GK_EINPUT, "%s: not a readable HDF5 file (%s)", path, h5_detail(detail, sizeof detail));
    return f;
}

const char *h5_type_name(hid_t t, char *buf, size_t cap) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER: snprintf(buf, cap, "%s%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits); break;
    case H5T_FLOAT: snprintf(buf, cap, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, cap, "string"); break;
    case H5T_ENUM: snprintf(buf, cap, "enum (bool?)"); break;
    case H5T_COMPOUND: snprintf(buf, cap, "compound"); break;
    default: snprintf(buf, cap, "a non-numeric type"); break;
    }
    return buf;
}

// ---------------------------------------------------------------- attributes

int h5_write_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = space < 0 ? -1 : H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = attr >= 0 && H5Awrite(attr, mem_type, value) >= 0 ? 0 : -1;
    h5_close(&attr);
    h5_close(&space);
    return rc;
}

int h5_write_attr_i64(hid_t loc, const char *name, int64_t v) {
    return h5_write_attr(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int h5_write_attr_u64(hid_t loc, const char *name, uint64_t v) {
    return h5_write_attr(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

int h5_write_attr_str(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int rc = -1;
    if (H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0) rc = h5_write_attr(loc, name, t, t, &s);
    H5Tclose(t);
    return rc;
}

hid_t h5_open_attr(hid_t loc, const char *path, const char *name, hid_t *type, gk_err *err) {
    htri_t exists = H5Aexists(loc, name);
    if (exists <= 0) {
        gk_fail(err, GK_EINPUT, "%s: missing attribute '%s'", path, name);
        return -1;
    }
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    hssize_t npoints = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    h5_close(&space);
    *type = attr < 0 ? -1 : H5Aget_type(attr);
    if (attr < 0 || *type < 0 || npoints != 1) {
        h5_close(type);
        h5_close(&attr);
        char d[256];
        gk_fail(err, GK_EINPUT, "%s: attribute '%s' %s", path, name,
                npoints >= 0 && npoints != 1 ? "is not a scalar" : h5_detail(d, sizeof d));
        return -1;
    }
    return attr;
}

int h5_read_attr_int(hid_t loc, const char *path, const char *name, int64_t *out, gk_err *err) {
    hid_t type;
    hid_t attr = h5_open_attr(loc, path, name, &type, err);
    if (attr < 0) return -1;
    int rc = 0;
    char tn[32];
    if (H5Tget_class(type) != H5T_INTEGER) {
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected an integer", path, name,
                     h5_type_name(type, tn, sizeof tn));
    } else if (H5Aread(attr, H5T_NATIVE_INT64, out) < 0) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    }
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

int h5_read_attr_str(hid_t loc, const char *path, const char *name, char **out, gk_err *err) {
    *out = NULL;
    hid_t type;
    hid_t attr = h5_open_attr(loc, path, name, &type, err);
    if (attr < 0) return -1;
    int rc = 0, h5_failed = 0;
    char tn[32];
    hid_t mem = -1;
    if (H5Tget_class(type) != H5T_STRING) {
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected a string", path, name,
                     h5_type_name(type, tn, sizeof tn));
    } else if ((mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, H5Tget_cset(type)) < 0) {
        h5_failed = 1;
    } else if (H5Tis_variable_str(type) > 0) {
        char *s = NULL;
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &s) < 0) {
            h5_failed = 1;
        } else {
            *out = strdup(s ? s : "");
            if (s) H5free_memory(s);
            if (!*out) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        }
    } else {
        size_t n = H5Tget_size(type);
        if (n > (1u << 24)) {
            rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is a %zu-byte string", path, name, n);
        } else if (!(*out = gk_calloc(n + 1, 1, err))) {
            rc = -1;
        } else if (H5Tset_size(mem, n + 1) < 0 || H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0 ||
                   H5Aread(attr, mem, *out) < 0) {
            h5_failed = 1;
        }
    }
    if (h5_failed) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    }
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    h5_close(&mem);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}
