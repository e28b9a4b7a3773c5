// Writing one teacher-cache segment file atomically (format: distill/teacher_cache.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "data/h5util.h"
#include "data/zstd_filter.h"
#include "distill/teacher_cache_internal.h"

// A fixed-size chunked dataset with byte shuffle + zstd, written in one call.
static int write_dataset(hid_t f, const char *name, hid_t file_type, hid_t mem_type, int rank, const hsize_t *dims,
                         const hsize_t *chunk, const void *data) {
    unsigned level = TC_ZSTD_LEVEL;
    hid_t space = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 && H5Pset_shuffle(dcpl) >= 0 &&
        H5Pset_filter(dcpl, ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level) >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(f, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 ? 0 : -1;
    h5_close(&d);
    h5_close(&dcpl);
    h5_close(&space);
    return rc;
}

static int write_f64(hid_t f, const char *name, double v) {
    return h5_write_attr(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

static int write_attributes(hid_t f, const tc_segment *s) {
    const teacher_cache_meta *m = &s->meta;
    int bad = h5_write_attr_str(f, "format", TEACHER_CACHE_FORMAT) < 0 ||
              h5_write_attr_i64(f, "format_version", TEACHER_CACHE_FORMAT_VERSION) < 0 ||
              h5_write_attr_str(f, "method", teacher_cache_method_name(m->method)) < 0 ||
              h5_write_attr_i64(f, "k", m->k) < 0 || h5_write_attr_u64(f, "seq_len", m->seq_len) < 0 ||
              write_f64(f, "temperature", m->temperature) < 0 ||
              (m->method == TEACHER_CACHE_SAMPLE && h5_write_attr_u64(f, "seed", m->seed) < 0) ||
              h5_write_attr_str(f, "teacher", m->teacher) < 0 ||
              h5_write_attr_str(f, "teacher_sha256", m->teacher_sha256) < 0 ||
              h5_write_attr_str(f, "teacher_precision", m->teacher_precision) < 0 ||
              write_f64(f, "final_softcap", m->final_softcap) < 0 || h5_write_attr_i64(f, "vocab_size", m->vocab_size) < 0 ||
              h5_write_attr_str(f, "tokenizer_sha256", m->tokenizer_sha256) < 0 ||
              h5_write_attr_str(f, "token_shard", s->token_shard) < 0 ||
              h5_write_attr_str(f, "token_shard_sha256", s->token_shard_sha256) < 0 ||
              h5_write_attr_u64(f, "first_window", s->first_window) < 0 ||
              h5_write_attr_u64(f, "n_windows", s->n_windows) < 0 ||
              h5_write_attr_u64(f, "shard_windows", s->shard_windows) < 0 ||
              h5_write_attr_u64(f, "segment_windows", m->segment_windows) < 0 ||
              h5_write_attr_str(f, "created_by", "gemmakd teacher-logits") < 0;
    return bad ? -1 : 0;
}

static int write_contents(hid_t f, const tc_segment *s, const tc_segment_data *d, uint64_t chunk_rows) {
    hsize_t rows = s->n_windows * s->meta.seq_len, k = (hsize_t)s->meta.k;
    hsize_t dims[2] = {rows, k}, chunk[2] = {chunk_rows < rows ? chunk_rows : rows, k};
    if (write_dataset(f, "ids", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, dims, chunk, d->ids) < 0) return -1;
    int rc;
    if (s->logprob_bytes == 2) {
        hid_t f16 = tc_f16_type();
        rc = f16 >= 0 ? write_dataset(f, "logprobs", f16, f16, 2, dims, chunk, d->logprobs_f16) : -1;
        h5_close(&f16);
    } else {
        rc = write_dataset(f, "logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, chunk, d->logprobs);
    }
    if (rc < 0) return -1;
    if (s->meta.method == TEACHER_CACHE_TOPK)
        rc = write_dataset(f, "leftover", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, chunk, d->leftover);
    else
        rc = write_dataset(f, "counts", s->count_bytes == 1 ? H5T_STD_U8LE : H5T_STD_U16LE, H5T_NATIVE_UINT16, 2, dims,
                           chunk, d->counts);
    return rc < 0 ? -1 : write_attributes(f, s);
}

int tc_write_segment(const char *path, const tc_segment *s, const tc_segment_data *d, uint64_t chunk_rows,
                     uint64_t *bytes, gk_err *err) {
    if (zstd_filter_register(err)) return -1;
    char *tmp = file_tmp_path(path);
    if (!tmp) return gk_fail(err, GK_ENOMEM, "out of memory");
    h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = h5_create(tmp, err);
    char detail[256];
    int rc = f < 0 ? -1 : 0;
    if (rc == 0 && write_contents(f, s, d, chunk_rows) < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot write: %s", tmp, h5_detail(detail, sizeof detail));
        h5_close(&f);
    } else if (rc == 0 && H5Fclose(f) < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot close: %s", tmp, h5_detail(detail, sizeof detail));
    }
    h5_quiet_end(&q);
    if (rc == 0) rc = file_publish(tmp, path, bytes, err);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}
