// Zstandard as HDF5 filter 32015, registered in-process (no plugin .so, no
// HDF5_PLUGIN_PATH). Each chunk is one complete zstd frame with its content
// size in the header, as the HDF Group plugin and hdf5plugin write it, so
// files open in h5py with `import hdf5plugin` and h5py's files read here
// (docs/DESIGN.md, "Files the tool reads and writes").
#ifndef GK_ZSTD_FILTER_H
#define GK_ZSTD_FILTER_H

#include "common/error.h"

enum {
    ZSTD_FILTER_ID = 32015,
    ZSTD_FILTER_DEFAULT_LEVEL = 3, // cd_values[0] when absent; levels clamp to 1..22
};

// Registers the filter with HDF5 unless filter 32015 is already available
// (registered by an earlier call or loaded as a plugin). Safe to call any
// number of times; prints nothing.
int zstd_filter_register(gk_err *err);

#endif
