#include "data/zstd_filter.h"

#include <hdf5.h>
#include <stdint.h>
#include <zstd.h>

#include "data/h5util.h"

// HDF5 refuses chunks of 4 GiB or more, so no valid frame decodes to more.
#define ZSTD_FILTER_MAX_CHUNK ((unsigned long long)UINT32_MAX)

// The H5Z filter callback. Forward (flags without H5Z_FLAG_REVERSE): compress
// buf[0..nbytes) into one frame at level cd_values[0]. Reverse: decompress one
// frame whose header records its content size. Returns the number of valid
// bytes in the new *buf, or 0 on failure with *buf and *buf_size untouched.
// Buffers are allocated and freed with HDF5's allocator, as the library
// expects of filters.
static size_t zstd_filter_apply(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                                size_t *buf_size, void **buf) {
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
        if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > ZSTD_FILTER_MAX_CHUNK)
            return 0;
        void *out = H5allocate_memory(size ? (size_t)size : 1, 0);
        if (!out) return 0;
        size_t got = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
        if (ZSTD_isError(got) || got != size) {
            H5free_memory(out);
            return 0;
        }
        H5free_memory(*buf);
        *buf = out;
        *buf_size = (size_t)size;
        return got;
    }
    int level = ZSTD_FILTER_DEFAULT_LEVEL;
    if (cd_nelmts >= 1) level = cd_values[0] > 22 ? 22 : (int)cd_values[0];
    if (level < 1) level = 1;
    size_t bound = ZSTD_compressBound(nbytes);
    if (ZSTD_isError(bound)) return 0;
    void *out = H5allocate_memory(bound, 0);
    if (!out) return 0;
    size_t got = ZSTD_compress(out, bound, *buf, nbytes, level);
    if (ZSTD_isError(got)) {
        H5free_memory(out);
        return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = bound;
    return got;
}

static const H5Z_class2_t zstd_filter_class = {
    .version = H5Z_CLASS_T_VERS,
    .id = (H5Z_filter_t)ZSTD_FILTER_ID,
    .encoder_present = 1,
    .decoder_present = 1,
    .name = "Zstandard (gemmakd, in-process)",
    .can_apply = NULL,
    .set_local = NULL,
    .filter = zstd_filter_apply,
};

int zstd_filter_register(gk_err *err) {
    // Keep HDF5 from printing its error stack, and keep H5Zfilter_avail from
    // loading a filter plugin found through HDF5_PLUGIN_PATH (this build's
    // filter is the one to use); restore both settings afterwards.
    h5_quiet quiet;
    unsigned old_plugins = 0;
    h5_quiet_begin(&quiet);
    int have_state = H5PLget_loading_state(&old_plugins) >= 0;
    if (have_state) H5PLset_loading_state(old_plugins & ~(unsigned)H5PL_FILTER_PLUGIN);
    int rc = 0;
    htri_t avail = H5Zfilter_avail((H5Z_filter_t)ZSTD_FILTER_ID);
    if (avail <= 0 && H5Zregister(&zstd_filter_class) < 0)
        rc = gk_fail(err, GK_EINTERNAL, "cannot register the zstd filter (HDF5 filter %d)", ZSTD_FILTER_ID);
    if (have_state) H5PLset_loading_state(old_plugins);
    h5_quiet_end(&quiet);
    return rc;
}
