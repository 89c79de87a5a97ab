/* container.c - the .ecf8 container: writer (compress), validating reader,
 * byte-exact reconstruction (decompress) and verification.
 *
 * Layout (docs/FORMAT.md): a 64-byte header, the tensor payloads each
 * aligned to 64 bytes, then the index ("meta"): source-file table, tensor
 * table and a blob area holding names and the verbatim safetensors header
 * bytes of each source.  The index goes last so the writer streams
 * payloads without knowing their sizes in advance. */
#define _GNU_SOURCE
#include "internal.h"
#include "io.h"
#include "safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

static const uint8_t ECF8_MAGIC[8] = {0x89, 'E', 'C', 'F', '8', '\r', '\n', 0x1a};
#define HEADER_BYTES 64
#define VERSION_END 10 /* magic and version_major: the bytes every format version keeps */
#define PAYLOAD_ALIGN 64
#define META_HEADER_BYTES 32
#define SOURCE_ENTRY_BYTES 48
#define TENSOR_ENTRY_BYTES 192
#define FLAG_DIRECTORY 1u
#define HEADER_FLAG_ZSTD_INDEX 1u /* format 1.1: the index is one zstd frame */
/* Format 1.1 tensor flags: code lengths and chunk offsets in the blob (both
 * or neither: the payload is then the coded stream alone). */
#define TENSOR_FLAGS_PARTS_IN_INDEX 3u
/* A compressed index may expand at most 1024x, or to 256 MiB whatever it
 * holds: real indexes (fixed-size entries, names, JSON headers) shrink
 * 3-10x, a safetensors header of repetitive metadata far more, and the
 * bound keeps a hostile header from making the reader allocate much more
 * than the file holds.  The writer checks the same rule. */
#define MAX_INDEX_EXPANSION 1024
#define MAX_INDEX_RAW_ANY ((uint64_t)256 << 20)
#define MAX_SOURCES 65536

bool ecf8_has_container_magic(const void *data, size_t size)
{
    return size >= sizeof ECF8_MAGIC && !memcmp(data, ECF8_MAGIC, sizeof ECF8_MAGIC);
}

static bool index_expansion_ok(uint64_t raw_bytes, uint64_t stored_bytes)
{
    return raw_bytes / MAX_INDEX_EXPANSION <= stored_bytes || raw_bytes <= MAX_INDEX_RAW_ANY;
}

/* The tensor table alone expands no more than 1024x, whatever the index
 * size: a real entry holds a checksum and offsets that zstd cannot shrink
 * that much, and the bound keeps the reader's per-tensor memory in
 * proportion to the file (1.4 M empty tensors in 24 KB took `ecf8 info`
 * 4.2 GB). */
static bool tensor_table_expansion_ok(uint64_t n_tensors, uint64_t stored_bytes)
{
    return n_tensors / MAX_INDEX_EXPANSION * TENSOR_ENTRY_BYTES <= stored_bytes;
}

/* ---- growable byte buffer for the index ----------------------------------- */
typedef struct bytebuf {
    uint8_t *data;
    size_t len, cap;
} bytebuf;

static int bb_reserve(bytebuf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return ECF8_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    b->data = p;
    b->cap = cap;
    return ECF8_OK;
}

static int bb_append(bytebuf *b, const void *p, size_t n, uint64_t *offset)
{
    int st = bb_reserve(b, n);
    if (st) return st;
    if (offset) *offset = b->len;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return ECF8_OK;
}

/* ---- writer ------------------------------------------------------------------ */
typedef struct source_rec {
    uint64_t path_off, path_len, prefix_off, prefix_len, source_bytes;
    uint32_t first_tensor, n_tensors;
} source_rec;

typedef struct writer {
    ecf8_outfile out;
    bytebuf blob;
    bytebuf tensors; /* TENSOR_ENTRY_BYTES each */
    source_rec *sources;
    size_t n_sources;
    uint64_t n_tensors;
    uint64_t codable_tensors; /* of a dtype ecf8 codes, not empty */
    const ecf8_compress_options *options;
    uint64_t done, total;
} writer;

static void put_u64(uint8_t *p, size_t at, uint64_t v) { ecf8_store_le64(p + at, v); }
static void put_u32(uint8_t *p, size_t at, uint32_t v) { ecf8_store_le32(p + at, v); }

static int write_tensor(writer *w, st_file *sf, const st_tensor *t, uint64_t source_base)
{
    const uint8_t *data;
    int st = ecf8_st_read_tensor(sf, t, &data);
    if (st) return st;
    uint8_t e[TENSOR_ENTRY_BYTES] = {0};
    uint64_t off;
    st = bb_append(&w->blob, t->name, strlen(t->name), &off);
    if (st) return st;
    put_u64(e, 0, off);
    put_u32(e, 8, (uint32_t)strlen(t->name));
    put_u32(e, 12, (uint32_t)strlen(t->dtype_name));
    if ((st = bb_append(&w->blob, t->dtype_name, strlen(t->dtype_name), &off))) return st;
    put_u64(e, 16, off);
    e[24] = (uint8_t)t->dtype;
    e[26] = (uint8_t)t->ndim;
    for (unsigned d = 0; d < t->ndim; d++) put_u64(e, 32 + 8 * d, t->shape[d]);
    put_u64(e, 96, t->offset - source_base);
    put_u64(e, 104, t->bytes);
    put_u64(e, 168, ecf8_hash64(data, t->bytes));

    ecf8_encoded *enc = NULL;
    ecf8_split split = ECF8_SPLIT_STORED;
    const void *payload = data;
    size_t payload_bytes = t->bytes;
    if (t->dtype != ECF8_DTYPE_OTHER && t->n_elements > 0) {
        w->codable_tensors++;
        uint64_t rows, cols;
        ecf8_st_tensor_view(t, &rows, &cols);
        st = ecf8_tensor_encode(t->dtype, data, rows, cols, w->options, &enc);
        if (st) return ecf8_fail_context(st, "tensor '%s'", t->name);
        split = ecf8_encoded_split(enc);
        payload = ecf8_encoded_payload(enc, &payload_bytes);
        const ecf8_stream *s = ecf8_encoded_stream(enc);
        if (s) {
            /* With a compressed index the code lengths and the chunk
             * offsets move into it: zstd stores them in a quarter of their
             * size (lengths are alike across tensors, offsets grow slowly),
             * about 0.3% of a checkpoint.  The payload is the coded stream. */
            if (!w->options->plain_index) {
                uint8_t packed[128] = {0};
                uint64_t off_at;
                for (unsigned i = 0; i < s->n_symbols; i++) packed[i / 2] |= (uint8_t)(s->lengths[i] << (4 * (i & 1)));
                static const uint8_t zeros[8] = {0};
                st = bb_append(&w->blob, packed, s->n_symbols / 2, &off);
                if (!st) st = bb_append(&w->blob, zeros, ecf8_align_up(w->blob.len, 8) - w->blob.len, NULL);
                if (!st) st = bb_append(&w->blob, s->chunk_offsets, (s->n_chunks + 1) * 8, &off_at);
                if (st) {
                    ecf8_encoded_free(enc);
                    return st;
                }
                e[28] = TENSOR_FLAGS_PARTS_IN_INDEX;
                put_u64(e, 176, off);
                put_u64(e, 184, off_at);
                size_t skip = (size_t)(s->coded - (const uint8_t *)payload);
                payload = s->coded;
                payload_bytes -= skip;
            }
            e[27] = (uint8_t)s->code_bits;
            put_u64(e, 128, s->rows);
            put_u64(e, 136, s->cols);
            put_u64(e, 144, s->chunk_rows);
            put_u64(e, 152, s->chunk_cols);
            put_u64(e, 160, s->coded_bytes);
        }
    }
    e[25] = (uint8_t)split;
    st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN);
    put_u64(e, 112, w->out.pos);
    put_u64(e, 120, payload_bytes);
    if (!st) st = ecf8_outfile_write(&w->out, payload, payload_bytes);
    ecf8_encoded_free(enc);
    if (!st) st = bb_append(&w->tensors, e, sizeof e, NULL);
    w->n_tensors++;
    w->done += t->bytes;
    if (w->options && w->options->progress)
        w->options->progress(w->options->progress_user, w->done, w->total);
    return st;
}

static int add_source(writer *w, const char *rel_path, const char *full_path, bool is_safetensors)
{
    source_rec *r = realloc(w->sources, (w->n_sources + 1) * sizeof *r);
    if (!r) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    w->sources = r;
    r = &w->sources[w->n_sources++];
    memset(r, 0, sizeof *r);
    r->first_tensor = (uint32_t)w->n_tensors;
    int st = bb_append(&w->blob, rel_path, strlen(rel_path), &r->path_off);
    if (st) return st;
    r->path_len = strlen(rel_path);

    if (!is_safetensors) { /* e.g. the shard index json: kept verbatim */
        ecf8_file_copy m;
        if ((st = ecf8_file_copy_read(full_path, &m))) return ecf8_fail_context(st, "%s", full_path);
        r->prefix_len = r->source_bytes = m.size;
        st = bb_append(&w->blob, m.data, m.size, &r->prefix_off);
        w->done += m.size;
        if (w->options && w->options->progress)
            w->options->progress(w->options->progress_user, w->done, w->total);
        ecf8_file_copy_free(&m);
        return st;
    }
    st_file sf;
    if ((st = ecf8_st_open(full_path, &sf))) return ecf8_fail_context(st, "%s", full_path);
    r->source_bytes = sf.size;
    r->prefix_len = sf.data_start;
    st = bb_append(&w->blob, sf.prefix, sf.data_start, &r->prefix_off);
    const uint64_t done_before = w->done;
    w->done += sf.data_start;
    if (w->options && w->options->progress)
        w->options->progress(w->options->progress_user, w->done, w->total);
    for (size_t i = 0; i < sf.n_tensors && !st; i++) st = write_tensor(w, &sf, &sf.tensors[i], 0);
    /* The tensors were read one at a time: all from the version opened. */
    if (!st) st = ecf8_st_check_unchanged(&sf);
    if (!st && w->done != done_before + sf.size) {
        /* The total counts whole files: the gaps between tensors too. */
        w->done = done_before + sf.size;
        if (w->options && w->options->progress)
            w->options->progress(w->options->progress_user, w->done, w->total);
    }
    if (st && !w->out.failed) st = ecf8_fail_context(st, "%s", full_path);
    r = &w->sources[w->n_sources - 1];
    r->n_tensors = (uint32_t)(w->n_tensors - r->first_tensor);
    ecf8_st_close(&sf);
    return st;
}

static int finish(writer *w, uint32_t flags)
{
    int st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN);
    if (st) return st;
    uint64_t meta_offset = w->out.pos;
    uint8_t mh[META_HEADER_BYTES] = {0};
    put_u32(mh, 0, (uint32_t)w->n_sources);
    put_u32(mh, 4, flags);
    put_u64(mh, 8, w->n_tensors);
    uint64_t blob_offset = META_HEADER_BYTES + w->n_sources * SOURCE_ENTRY_BYTES + w->tensors.len;
    put_u64(mh, 16, blob_offset);
    put_u64(mh, 24, w->blob.len);
    bytebuf meta = {0};
    st = bb_append(&meta, mh, sizeof mh, NULL);
    for (size_t i = 0; i < w->n_sources && !st; i++) {
        const source_rec *r = &w->sources[i];
        uint8_t e[SOURCE_ENTRY_BYTES];
        put_u64(e, 0, r->path_off);
        put_u64(e, 8, r->path_len);
        put_u64(e, 16, r->prefix_off);
        put_u64(e, 24, r->prefix_len);
        put_u64(e, 32, r->source_bytes);
        put_u32(e, 40, r->first_tensor);
        put_u32(e, 44, r->n_tensors);
        st = bb_append(&meta, e, sizeof e, NULL);
    }
    if (!st) st = bb_append(&meta, w->tensors.data, w->tensors.len, NULL);
    if (!st) st = bb_append(&meta, w->blob.data, w->blob.len, NULL);
    /* The index is mostly fixed-size entries with zero fields, names and the
     * JSON headers: zstd shrinks it 3-10x, which is 1-2% of a checkpoint made
     * of many small tensors.  Level 19 costs a few ms per 100 KB of index;
     * huge indexes (very large JSON headers) get a faster level. */
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    bool zstd_index = !st && !w->options->plain_index;
    if (zstd_index) {
        size_t cap = ZSTD_compressBound(meta.len);
        packed = malloc(cap);
        if (!packed) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        if (!st) {
            packed_len = ZSTD_compress(packed, cap, meta.data, meta.len, meta.len <= (8u << 20) ? 19 : 9);
            if (ZSTD_isError(packed_len))
                st = ecf8_fail(ECF8_ERR_NOMEM, "compressing the index: %s", ZSTD_getErrorName(packed_len));
            else if (!index_expansion_ok(meta.len, packed_len) ||
                     !tensor_table_expansion_ok(w->n_tensors, packed_len))
                st = ecf8_fail(ECF8_ERR_ARGUMENT,
                               "the index (%zu bytes) compresses to %zu, more than readers accept; "
                               "write it uncompressed (--plain-index)", meta.len, packed_len);
        }
    }
    const uint8_t *index = zstd_index ? packed : meta.data;
    size_t index_len = zstd_index ? packed_len : meta.len;
    if (!st) st = ecf8_outfile_write(&w->out, index, index_len);
    if (!st) {
        uint8_t h[HEADER_BYTES] = {0};
        memcpy(h, ECF8_MAGIC, 8);
        h[8] = ECF8_FORMAT_VERSION; /* u16 major */
        h[10] = zstd_index ? ECF8_FORMAT_MINOR : 0;
        put_u32(h, 12, zstd_index ? HEADER_FLAG_ZSTD_INDEX : 0);
        put_u64(h, 16, w->out.pos);
        put_u64(h, 24, meta_offset);
        put_u64(h, 32, index_len);
        put_u64(h, 40, ecf8_hash64(index, index_len));
        put_u64(h, 48, zstd_index ? meta.len : 0);
        put_u64(h, 56, ecf8_hash64(h, 56));
        st = ecf8_outfile_pwrite(&w->out, h, sizeof h, 0);
    }
    free(packed);
    free(meta.data);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int ecf8_checkpoint_file_name(const char *name)
{
    return name && name[0] != '.' && !strchr(name, '/') &&
           (ends_with(name, ".safetensors") || ends_with(name, ".json"));
}

static bool is_subdirectory(DIR *d, const struct dirent *de)
{
    if (de->d_type != DT_UNKNOWN) return de->d_type == DT_DIR;
    struct stat sb;
    return fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && S_ISDIR(sb.st_mode);
}

/* Sorted names of the *.safetensors and *.json files of a directory. */
static int list_checkpoint_dir(const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d) return ecf8_fail(ECF8_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int st = ECF8_OK;
    struct dirent *de;
    size_t n_safetensors = 0;
    char subdir[256] = ""; /* one subdirectory, to name when there are no shards */
    while ((de = readdir(d)) && !st) {
        if (!subdir[0] && de->d_name[0] != '.' && is_subdirectory(d, de))
            snprintf(subdir, sizeof subdir, "%s", de->d_name);
        if (!ecf8_checkpoint_file_name(de->d_name)) continue;
        n_safetensors += ends_with(de->d_name, ".safetensors");
        if (n == MAX_SOURCES) {
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: more than %d checkpoint files", dir, MAX_SOURCES);
            break;
        }
        char **p = realloc(names, (n + 1) * sizeof *names);
        if (!p || !(p[n] = strdup(de->d_name))) {
            if (p) names = p;
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
            break;
        }
        names = p;
        n++;
    }
    closedir(d);
    /* A directory of subdirectories (a diffusers pipeline: unet/, vae/,
     * ... beside a model_index.json) would become a container of its json
     * files alone. */
    if (!st && n_safetensors == 0 && subdir[0])
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "%s: no .safetensors files in the directory itself; "
                       "subdirectories such as '%s' are not read (compress each one)", dir, subdir);
    else if (!st && n_safetensors == 0)
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "%s: no .safetensors files in directory", dir);
    if (st) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return st;
    }
    qsort(names, n, sizeof *names, cmp_str);
    *names_out = names;
    *n_out = n;
    return ECF8_OK;
}

static uint64_t path_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void ecf8_compress_options_init(ecf8_compress_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->split = ECF8_SPLIT_AUTO;
    o->max_code_bits = ECF8_DEFAULT_CODE_BITS;
    o->chunk_elements = ECF8_DEFAULT_CHUNK_ELEMENTS;
}

int ecf8_compress_path(const char *in_path, const char *out_path,
                       const ecf8_compress_options *options)
{
    uint64_t codable;
    return ecf8_compress_path_counted(in_path, out_path, options, &codable);
}

int ecf8_compress_path_counted(const char *in_path, const char *out_path,
                               const ecf8_compress_options *options, uint64_t *codable_tensors)
{
    ecf8_clear_error();
    if (codable_tensors) *codable_tensors = 0;
    ecf8_compress_options defaults;
    if (!options) {
        ecf8_compress_options_init(&defaults);
        options = &defaults;
    }
    if (!in_path || !out_path) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    if (!in_path[0] || !out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    /* The writer itself reads plain_index, a field older callers lack:
     * check here, not only in the encoder (a file may have nothing to code). */
    if (options->struct_size && options->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "compress: options struct too small");
    struct stat sb;
    if (stat(in_path, &sb) != 0)
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
    bool is_dir = S_ISDIR(sb.st_mode);
    char **names = NULL;
    size_t n_names = 0;
    int st;
    if (is_dir && (st = list_checkpoint_dir(in_path, &names, &n_names))) return st;

    /* overwrite came after the first version of the struct. */
    bool overwrite = options->overwrite && (options->struct_size == 0 ||
                                            options->struct_size >= offsetof(ecf8_compress_options, overwrite) + sizeof(int));
    writer w = {.options = options};
    if ((st = ecf8_outfile_open(&w.out, out_path, in_path, overwrite))) goto done;
    uint8_t zero[HEADER_BYTES] = {0};
    st = ecf8_outfile_write(&w.out, zero, sizeof zero);
    if (!is_dir) {
        w.total = (uint64_t)sb.st_size;
        if (!st) st = add_source(&w, "", in_path, true); /* names in_path on failure */
    } else {
        size_t dl = strlen(in_path);
        for (size_t i = 0; i < n_names; i++) {
            char *full = malloc(dl + strlen(names[i]) + 2);
            if (!full) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
            sprintf(full, "%s/%s", in_path, names[i]);
            w.total += path_size(full);
            free(full);
        }
        for (size_t i = 0; i < n_names && !st; i++) {
            char *full = malloc(dl + strlen(names[i]) + 2);
            if (!full) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
            sprintf(full, "%s/%s", in_path, names[i]);
            st = add_source(&w, names[i], full, ends_with(names[i], ".safetensors"));
            if (st && !w.out.failed && !strstr(ecf8_last_error(), in_path))
                st = ecf8_fail_context(st, "%s", full);
            free(full);
        }
    }
    if (!st) st = finish(&w, is_dir ? FLAG_DIRECTORY : 0);
    if (!st) {
        st = ecf8_outfile_commit(&w.out);
    } else {
        ecf8_outfile_abort(&w.out);
    }
done:
    if (!st && codable_tensors) *codable_tensors = w.codable_tensors;
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(w.blob.data);
    free(w.tensors.data);
    free(w.sources);
    return st;
}

/* ---- reader ------------------------------------------------------------------ */
typedef struct source_info {
    char *path;
    const uint8_t *prefix;
    uint64_t prefix_bytes, source_bytes;
    uint32_t first_tensor, n_tensors;
} source_info;

struct ecf8_file {
    ecf8_file_copy bytes; /* the container's bytes: read from a file, or the caller's */
    bool owns_bytes;      /* false for ecf8_file_open_memory: the caller frees them */
    /* Opened by ecf8_file_open_index: `bytes` is an address range reserved
     * for the whole file, holding its header and index only; payloads stay
     * on disk (fd) and are read one at a time (tensor_payload_read). */
    bool payloads_on_disk;
    int fd;
    struct stat opened; /* the file's version when opened */
    uint8_t *index; /* the decompressed index of a format 1.1 file, else NULL */
    uint32_t flags;
    source_info *sources;
    size_t n_sources;
    ecf8_tensor_info *tensors;
    size_t n_tensors;
    /* Format 1.0: each coded tensor's chunk offsets, copied out of the
     * container bytes (NULL for the others). */
    uint64_t **offsets;
};

static int read_into_reserved(ecf8_file *f, uint64_t offset, uint64_t n);

/* A string of the blob, copied into *out: ECF8_ERR_CORRUPT out of bounds
 * or with a NUL inside, ECF8_ERR_NOMEM when the copy does not fit. */
static int blob_string(const uint8_t *blob, uint64_t blob_len, uint64_t off, uint64_t len,
                       const char *what, char **out)
{
    if (off > blob_len || len > blob_len - off || memchr(blob + off, 0, len))
        return ecf8_fail(ECF8_ERR_CORRUPT, "%s out of bounds", what);
    if (!(*out = strndup((const char *)blob + off, len))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    return ECF8_OK;
}

/* Adds a length to the total of the blob ranges the entries reference:
 * each string and prefix is its own range (the writer appends each), so
 * they cannot add up to more than the blob.  That bounds what the reader
 * copies out and what decompress writes of prefixes by the index size: 4096
 * sources naming one 1 MiB prefix would otherwise be 4 GiB from 7 KB. */
static bool blob_share_ok(uint64_t *total, uint64_t len, uint64_t blob_len)
{
    return ecf8_add_u64(*total, len, total) && *total <= blob_len;
}

static int blob_shared_error(uint64_t blob_len)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "names and headers in the index add up to more than its "
                     "%llu-byte blob (entries share bytes)", (unsigned long long)blob_len);
}

static int open_tensor(ecf8_file *f, const uint8_t *e, const uint8_t *blob, uint64_t blob_len,
                       uint64_t payload_end, bool format_1_1, ecf8_tensor_info *t)
{
    int st = blob_string(blob, blob_len, ecf8_load_le64(e), ecf8_load_le32(e + 8), "tensor name",
                         (char **)&t->name);
    if (!st) st = blob_string(blob, blob_len, ecf8_load_le64(e + 16), ecf8_load_le32(e + 12),
                              "tensor name", (char **)&t->dtype_name);
    if (st) return st;
    if (e[24] > ECF8_DTYPE_F16 || e[25] > ECF8_SPLIT_BYTE || e[26] > ECF8_MAX_DIMS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': bad dtype, split or rank", t->name);
    /* Tensor flags: format 1.1 and coded tensors only. */
    bool parts_in_index = e[28] == TENSOR_FLAGS_PARTS_IN_INDEX && format_1_1 && e[25] != ECF8_SPLIT_STORED;
    for (size_t i = parts_in_index ? 29 : 28; i < 32; i++)
        if (e[i]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': reserved bytes set", t->name);
    for (size_t i = parts_in_index ? 192 : 176; i < TENSOR_ENTRY_BYTES; i++)
        if (e[i]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': reserved bytes set", t->name);
    t->dtype = (ecf8_dtype)e[24];
    t->split = (ecf8_split)e[25];
    t->ndim = e[26];
    if (t->dtype != ecf8_dtype_from_name(t->dtype_name))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': dtype code disagrees with '%s'", t->name,
                         t->dtype_name);
    t->n_elements = 1;
    for (unsigned d = 0; d < ECF8_MAX_DIMS; d++) {
        t->shape[d] = ecf8_load_le64(e + 32 + 8 * d);
        if (d >= t->ndim && t->shape[d])
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape beyond its rank", t->name);
        if (d < t->ndim && !ecf8_mul_u64(t->n_elements, t->shape[d], &t->n_elements))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape overflows", t->name);
    }
    t->source_bytes = ecf8_load_le64(e + 104);
    uint64_t payload_off = ecf8_load_le64(e + 112);
    t->payload_bytes = ecf8_load_le64(e + 120);
    t->checksum = ecf8_load_le64(e + 168);
    unsigned width = ecf8_dtype_size(t->dtype);
    uint64_t need;
    if (width && (!ecf8_mul_u64(t->n_elements, width, &need) || need != t->source_bytes))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape needs %llu bytes, entry says %llu",
                         t->name, (unsigned long long)(t->n_elements * width),
                         (unsigned long long)t->source_bytes);
    if (payload_off < HEADER_BYTES || payload_off % PAYLOAD_ALIGN || payload_off > payload_end ||
        t->payload_bytes > payload_end - payload_off)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': payload at %llu+%llu outside the data area",
                         t->name, (unsigned long long)payload_off,
                         (unsigned long long)t->payload_bytes);
    t->payload = f->bytes.data + payload_off;
    if (t->split == ECF8_SPLIT_STORED) {
        if (t->payload_bytes != t->source_bytes)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stored payload of %llu bytes, expected %llu",
                             t->name, (unsigned long long)t->payload_bytes,
                             (unsigned long long)t->source_bytes);
        for (size_t i = 128; i < 168; i++)
            if (e[i] || e[27]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stored tensor has a code", t->name);
        return ECF8_OK;
    }
    if (!width) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': dtype %s cannot be coded", t->name, t->dtype_name);
    uint64_t rows = ecf8_load_le64(e + 128), cols = ecf8_load_le64(e + 136), nn;
    if (!ecf8_mul_u64(rows, cols, &nn) || nn != t->n_elements || rows != (t->ndim >= 2 ? t->shape[0] : 1))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': view %llux%llu does not match its shape",
                         t->name, (unsigned long long)rows, (unsigned long long)cols);
    if (!parts_in_index) {
        /* A payload with its offsets inside, in a file whose payloads
         * stay on disk (format 1.1 allows it): this one is read now. */
        if (f->payloads_on_disk && (st = read_into_reserved(f, payload_off, t->payload_bytes))) return st;
        /* Format 1.0 keeps the offsets in the payload, i.e. in the
         * container bytes, which the caller of ecf8_file_open_memory could
         * change after the check (a file is read into a private copy):
         * the decoders (and device uploads) use a checked copy.  Format
         * 1.1 offsets are in the decompressed index already. */
        st = ecf8_stream_from_payload_copy(t->dtype, t->split, e[27], rows, cols,
                                           ecf8_load_le64(e + 144), ecf8_load_le64(e + 152),
                                           ecf8_load_le64(e + 160), t->payload, t->payload_bytes,
                                           &t->stream, &f->offsets[t - f->tensors]);
    } else {
        ecf8_split_layout l;
        if (ecf8_split_layout_get(t->dtype, t->split, &l))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': split invalid for its dtype", t->name);
        uint64_t len_at = ecf8_load_le64(e + 176), off_at = ecf8_load_le64(e + 184);
        if (len_at > blob_len || (1u << l.symbol_bits) / 2 > blob_len - len_at)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': code lengths out of bounds", t->name);
        if (off_at > blob_len)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': chunk offsets out of bounds", t->name);
        st = ecf8_stream_from_parts(t->dtype, t->split, e[27], rows, cols, ecf8_load_le64(e + 144),
                                    ecf8_load_le64(e + 152), ecf8_load_le64(e + 160), blob + len_at,
                                    blob + off_at, blob_len - off_at, t->payload, t->payload_bytes,
                                    &t->stream);
    }
    if (st) return ecf8_fail_context(st, "tensor '%s'", t->name);
    return ECF8_OK;
}

static int open_index(ecf8_file *f)
{
    const uint8_t *p = f->bytes.data;
    uint64_t size = f->bytes.size;
    /* Magic and major version come before the header size and checksum:
     * another major version may lay out (and hash) its header differently,
     * and must be reported as a version, not as corruption. */
    if (size < VERSION_END)
        return ecf8_fail(ECF8_ERR_CORRUPT, "too short for an .ecf8 file (%llu bytes)", (unsigned long long)size);
    if (memcmp(p, ECF8_MAGIC, 8) != 0) return ecf8_fail(ECF8_ERR_CORRUPT, "not an .ecf8 file (bad magic)");
    unsigned major = (unsigned)p[8] | (unsigned)p[9] << 8;
    if (major != ECF8_FORMAT_VERSION)
        return ecf8_fail(ECF8_ERR_VERSION, "format version %u, this library reads version %d", major,
                         ECF8_FORMAT_VERSION);
    if (size < HEADER_BYTES)
        return ecf8_fail(ECF8_ERR_CORRUPT, "too short for an .ecf8 file (%llu bytes)", (unsigned long long)size);
    if (ecf8_hash64(p, 56) != ecf8_load_le64(p + 56))
        return ecf8_fail(ECF8_ERR_CHECKSUM, "header checksum mismatch");
    uint32_t header_flags = ecf8_load_le32(p + 12);
    uint64_t index_raw = ecf8_load_le64(p + 48);
    if ((header_flags & ~HEADER_FLAG_ZSTD_INDEX) || (!header_flags && index_raw))
        return ecf8_fail(ECF8_ERR_VERSION, "unknown header flags");
    if (ecf8_load_le64(p + 16) != size)
        return ecf8_fail(ECF8_ERR_CORRUPT, "file is %llu bytes, header says %llu (truncated?)",
                         (unsigned long long)size, (unsigned long long)ecf8_load_le64(p + 16));
    uint64_t meta_off = ecf8_load_le64(p + 24), meta_len = ecf8_load_le64(p + 32);
    uint64_t min_len = header_flags ? 1 : META_HEADER_BYTES;
    if (meta_off < HEADER_BYTES || meta_off > size || meta_len > size - meta_off || meta_len < min_len)
        return ecf8_fail(ECF8_ERR_CORRUPT, "index at %llu+%llu lies outside the file",
                         (unsigned long long)meta_off, (unsigned long long)meta_len);
    if (meta_off % PAYLOAD_ALIGN)
        return ecf8_fail(ECF8_ERR_CORRUPT, "index at %llu is not 64-byte aligned",
                         (unsigned long long)meta_off);
    const uint8_t *m = p + meta_off;
    if (ecf8_hash64(m, meta_len) != ecf8_load_le64(p + 40))
        return ecf8_fail(ECF8_ERR_CHECKSUM, "index checksum mismatch");
    if (header_flags & HEADER_FLAG_ZSTD_INDEX) {
        unsigned long long frame = ZSTD_getFrameContentSize(m, meta_len);
        if (index_raw < META_HEADER_BYTES || !index_expansion_ok(index_raw, meta_len) ||
            index_raw > SIZE_MAX || frame != index_raw)
            return ecf8_fail(ECF8_ERR_CORRUPT, "compressed index of %llu bytes does not hold the %llu "
                             "bytes the header announces", (unsigned long long)meta_len,
                             (unsigned long long)index_raw);
        if (!(f->index = malloc(index_raw))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        size_t got = ZSTD_decompress(f->index, index_raw, m, meta_len);
        if (ZSTD_isError(got) || got != index_raw)
            return ecf8_fail(ECF8_ERR_CORRUPT, "compressed index does not decompress: %s",
                             ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame");
        /* One frame and nothing after it (ZSTD_decompress would also take
         * skippable or empty frames that the format does not allow). */
        if (ZSTD_findFrameCompressedSize(m, meta_len) != meta_len)
            return ecf8_fail(ECF8_ERR_CORRUPT, "compressed index: bytes after its zstd frame");
        m = f->index;
        meta_len = index_raw;
    }
    const uint64_t stored_index_bytes = ecf8_load_le64(p + 32);
    f->n_sources = ecf8_load_le32(m);
    f->flags = ecf8_load_le32(m + 4);
    uint64_t n_tensors = ecf8_load_le64(m + 8), blob_off = ecf8_load_le64(m + 16),
             blob_len = ecf8_load_le64(m + 24);
    if (f->flags & ~FLAG_DIRECTORY) return ecf8_fail(ECF8_ERR_VERSION, "unknown index flags");
    if (f->n_sources == 0 || f->n_sources > MAX_SOURCES ||
        n_tensors > (meta_len - META_HEADER_BYTES) / TENSOR_ENTRY_BYTES ||
        blob_off != META_HEADER_BYTES + f->n_sources * SOURCE_ENTRY_BYTES + n_tensors * TENSOR_ENTRY_BYTES ||
        blob_off > meta_len || blob_len != meta_len - blob_off)
        return ecf8_fail(ECF8_ERR_CORRUPT, "index tables do not fit the index");
    if (f->index && !tensor_table_expansion_ok(n_tensors, stored_index_bytes))
        return ecf8_fail(ECF8_ERR_CORRUPT, "index lists %llu tensors in %llu bytes, more than %dx "
                         "expansion", (unsigned long long)n_tensors,
                         (unsigned long long)stored_index_bytes, MAX_INDEX_EXPANSION);
    if (!(f->flags & FLAG_DIRECTORY) && f->n_sources != 1)
        return ecf8_fail(ECF8_ERR_CORRUPT, "single-file container with %zu sources", f->n_sources);
    const uint8_t *blob = m + blob_off;
    uint64_t blob_referenced = 0;
    f->sources = calloc(f->n_sources, sizeof *f->sources);
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    f->offsets = calloc(n_tensors ? n_tensors : 1, sizeof *f->offsets);
    if (!f->sources || !f->tensors || !f->offsets) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");

    const uint8_t *te = m + META_HEADER_BYTES + f->n_sources * SOURCE_ENTRY_BYTES;
    for (uint64_t i = 0; i < n_tensors; i++) {
        int st = open_tensor(f, te + i * TENSOR_ENTRY_BYTES, blob, blob_len, meta_off, f->index != NULL,
                             &f->tensors[i]);
        f->n_tensors = i + 1;
        if (st) return st;
        const uint8_t *e = te + i * TENSOR_ENTRY_BYTES;
        if (!blob_share_ok(&blob_referenced, ecf8_load_le32(e + 8), blob_len) ||
            !blob_share_ok(&blob_referenced, ecf8_load_le32(e + 12), blob_len))
            return blob_shared_error(blob_len);
    }
    /* Payloads must not overlap (a flipped offset could alias two tensors). */
    uint64_t next_tensor = 0;
    for (size_t i = 0; i < f->n_sources; i++) {
        const uint8_t *e = m + META_HEADER_BYTES + i * SOURCE_ENTRY_BYTES;
        source_info *s = &f->sources[i];
        int st = blob_string(blob, blob_len, ecf8_load_le64(e), ecf8_load_le64(e + 8), "path", &s->path);
        if (st) return ecf8_fail_context(st, "source %zu", i);
        uint64_t poff = ecf8_load_le64(e + 16);
        s->prefix_bytes = ecf8_load_le64(e + 24);
        s->source_bytes = ecf8_load_le64(e + 32);
        s->first_tensor = ecf8_load_le32(e + 40);
        s->n_tensors = ecf8_load_le32(e + 44);
        bool dir = f->flags & FLAG_DIRECTORY;
        if (dir ? !ecf8_checkpoint_file_name(s->path) : s->path[0] != '\0')
            return ecf8_fail(ECF8_ERR_CORRUPT, "source %zu: unsafe path '%s'", i, s->path);
        if (poff > blob_len || s->prefix_bytes > blob_len - poff)
            return ecf8_fail(ECF8_ERR_CORRUPT, "source '%s': header bytes out of bounds", s->path);
        s->prefix = blob + poff;
        if (!blob_share_ok(&blob_referenced, ecf8_load_le64(e + 8), blob_len) ||
            !blob_share_ok(&blob_referenced, s->prefix_bytes, blob_len))
            return blob_shared_error(blob_len);
        if (s->first_tensor != next_tensor || s->n_tensors > n_tensors - next_tensor)
            return ecf8_fail(ECF8_ERR_CORRUPT, "source '%s': tensor range does not follow", s->path);
        /* Its tensors tile the source after the header, in order. */
        uint64_t pos = s->prefix_bytes;
        for (uint32_t k = 0; k < s->n_tensors; k++) {
            ecf8_tensor_info *t = &f->tensors[s->first_tensor + k];
            const uint8_t *tentry = te + (uint64_t)(s->first_tensor + k) * TENSOR_ENTRY_BYTES;
            t->source_file = (unsigned)i;
            if (ecf8_load_le64(tentry + 96) != pos || !ecf8_add_u64(pos, t->source_bytes, &pos))
                return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' is not where its source expects", t->name);
        }
        if (pos != s->source_bytes)
            return ecf8_fail(ECF8_ERR_CORRUPT, "source '%s': tensors end at %llu, source is %llu bytes",
                             s->path, (unsigned long long)pos, (unsigned long long)s->source_bytes);
        next_tensor += s->n_tensors;
    }
    if (next_tensor != n_tensors) return ecf8_fail(ECF8_ERR_CORRUPT, "tensors outside every source");
    /* Distinct paths: two sources must never be written to one file. */
    char **paths = malloc(f->n_sources * sizeof *paths);
    if (!paths) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n_sources; i++) paths[i] = f->sources[i].path;
    qsort(paths, f->n_sources, sizeof *paths, cmp_str);
    for (size_t i = 1; i < f->n_sources; i++)
        if (!strcmp(paths[i - 1], paths[i])) {
            int st = ecf8_fail(ECF8_ERR_CORRUPT, "two sources named '%s'", paths[i]);
            free(paths);
            return st;
        }
    free(paths);
    uint64_t prev_end = HEADER_BYTES;
    for (size_t i = 0; i < f->n_tensors; i++) { /* written in order */
        uint64_t off = (uint64_t)((const uint8_t *)f->tensors[i].payload - p);
        if (off < prev_end)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': payload overlaps the previous one", f->tensors[i].name);
        prev_end = off + f->tensors[i].payload_bytes;
    }
    return ECF8_OK;
}

static int file_alloc(ecf8_file **out)
{
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    if (!(*out = calloc(1, sizeof **out))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    (*out)->fd = -1;
    return ECF8_OK;
}

/* The one parser both openers share, so bytes in memory pass exactly the
 * checks a file does.  Takes f over: closes it on failure. */
static int file_parse(ecf8_file *f, ecf8_file **out)
{
    int st = open_index(f);
    if (st) {
        ecf8_file_close(f);
        return st;
    }
    *out = f;
    return ECF8_OK;
}

int ecf8_file_open(const char *path, ecf8_file **out)
{
    ecf8_clear_error();
    if (!path || !out) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL argument");
    *out = NULL;
    ecf8_file *f;
    int st = file_alloc(&f);
    if (st) return st;
    f->owns_bytes = true;
    if ((st = ecf8_file_copy_read(path, &f->bytes))) {
        ecf8_file_close(f);
        return st;
    }
    return file_parse(f, out);
}

/* Reads n bytes at offset into the reserved range, made readable first. */
static int read_into_reserved(ecf8_file *f, uint64_t offset, uint64_t n)
{
    if (n == 0) return ECF8_OK;
    const uint64_t page = 4096, begin = offset / page * page;
    const uint64_t end = ecf8_align_up(offset + n, page);
    if (mprotect((uint8_t *)f->bytes.data + begin, (size_t)(end - begin), PROT_READ | PROT_WRITE) != 0)
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory: %s", strerror(errno));
    size_t got;
    int st = ecf8_read_at(f->fd, (uint8_t *)f->bytes.data + offset, (size_t)n, offset, &got);
    if (!st && got < n) st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    return st;
}

int ecf8_file_open_index(const char *path, ecf8_file **out)
{
    *out = NULL;
    ecf8_file *f;
    int st = file_alloc(&f);
    if (st) return st;
    if ((st = ecf8_open_regular_file(path, &f->fd, &f->opened))) {
        ecf8_file_close(f);
        return st;
    }
    if (ecf8_test_hook_before_read) ecf8_test_hook_before_read(f->fd, path);
    /* Format 1.0 keeps each coded tensor's chunk offsets in its payload,
     * which the open validates, and a file too short or too odd for a
     * header is reported by the full open: those are read whole. */
    uint8_t head[HEADER_BYTES];
    size_t got = 0;
    uint64_t size = (uint64_t)f->opened.st_size;
    st = ecf8_read_at(f->fd, head, sizeof head, 0, &got);
    uint64_t meta_off = ecf8_load_le64(head + 24), meta_len = ecf8_load_le64(head + 32);
    if (st || got < sizeof head || !ecf8_has_container_magic(head, got) ||
        !(ecf8_load_le32(head + 12) & HEADER_FLAG_ZSTD_INDEX) || meta_off > size ||
        meta_len > size - meta_off || size > SIZE_MAX / 2) {
        ecf8_file_close(f);
        return ecf8_file_open(path, out);
    }
    /* Reserved, not allocated: the payloads' pages are never touched. */
    void *range = mmap(NULL, (size_t)size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) {
        ecf8_file_close(f);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory: %s", strerror(errno));
    }
    f->bytes.data = range;
    f->bytes.size = (size_t)size;
    f->payloads_on_disk = true;
    st = read_into_reserved(f, 0, HEADER_BYTES);
    if (!st) st = read_into_reserved(f, meta_off, meta_len);
    if (st) {
        ecf8_file_close(f);
        return st;
    }
    return file_parse(f, out);
}

/* Tensor t as it is used to decode it: itself, or, with its payload on
 * disk, a copy pointing at the payload read into *buf (grown as needed). */
static int tensor_payload_read(const ecf8_file *f, const ecf8_tensor_info *t, uint8_t **buf,
                               size_t *cap, ecf8_tensor_info *view)
{
    *view = *t;
    if (!f->payloads_on_disk) return ECF8_OK;
    size_t need = t->payload_bytes ? (size_t)t->payload_bytes : 1;
    if (need > *cap) {
        uint8_t *p = realloc(*buf, need);
        if (!p) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %zu-byte payload", need);
        *buf = p, *cap = need;
    }
    const uint8_t *at = t->payload;
    size_t got;
    int st = ecf8_read_at(f->fd, *buf, (size_t)t->payload_bytes, (uint64_t)(at - f->bytes.data), &got);
    if (st) return st;
    if (got < t->payload_bytes) return ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    view->payload = *buf;
    if (t->split != ECF8_SPLIT_STORED) view->stream.coded = *buf + (t->stream.coded - at);
    return ECF8_OK;
}

/* After a pass over a file opened by ecf8_file_open_index: the payloads
 * read were all of the version whose index was checked. */
static int payloads_unchanged(const ecf8_file *f)
{
    struct stat now;
    if (!f->payloads_on_disk) return ECF8_OK;
    if (fstat(f->fd, &now) != 0) return ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!ecf8_same_file_version(&f->opened, &now))
        return ecf8_fail(ECF8_ERR_IO, "input changed while being read");
    return ECF8_OK;
}

int ecf8_file_open_memory(const void *data, size_t size, ecf8_file **out)
{
    ecf8_clear_error();
    if (out) *out = NULL;
    if (!out || (!data && size)) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL argument");
    /* Chunk offsets are read as uint64_t in place (a file's copy is page-aligned). */
    if ((uintptr_t)data % 8)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "container bytes at %p are not 8-byte aligned", data);
    ecf8_file *f;
    int st = file_alloc(&f);
    if (st) return st;
    f->bytes.data = data;
    f->bytes.size = size;
    return file_parse(f, out);
}

void ecf8_file_close(ecf8_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) {
        free((char *)f->tensors[i].name);
        free((char *)f->tensors[i].dtype_name);
        if (f->offsets) free(f->offsets[i]);
    }
    free(f->offsets);
    if (f->sources)
        for (size_t i = 0; i < f->n_sources; i++) free(f->sources[i].path);
    free(f->tensors);
    free(f->sources);
    free(f->index);
    if (f->payloads_on_disk) munmap((void *)f->bytes.data, f->bytes.size);
    else if (f->owns_bytes) ecf8_file_copy_free(&f->bytes);
    if (f->fd >= 0) close(f->fd);
    free(f);
}

size_t ecf8_file_tensor_count(const ecf8_file *f) { return f->n_tensors; }
size_t ecf8_file_source_count(const ecf8_file *f) { return f->n_sources; }
const char *ecf8_file_source_path(const ecf8_file *f, size_t i)
{
    return i < f->n_sources ? f->sources[i].path : NULL;
}
uint64_t ecf8_file_source_bytes(const ecf8_file *f, size_t i)
{
    return i < f->n_sources ? f->sources[i].source_bytes : 0;
}
const void *ecf8_file_source_prefix(const ecf8_file *f, size_t i, size_t *bytes)
{
    if (i >= f->n_sources) return NULL;
    if (bytes) *bytes = (size_t)f->sources[i].prefix_bytes;
    return f->sources[i].prefix;
}
uint64_t ecf8_file_size(const ecf8_file *f) { return f->bytes.size; }
int ecf8_file_is_directory(const ecf8_file *f) { return (f->flags & FLAG_DIRECTORY) != 0; }

int ecf8_file_tensor(const ecf8_file *f, size_t index, ecf8_tensor_info *out)
{
    if (!f || !out || index >= f->n_tensors)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor index %zu out of range", index);
    *out = f->tensors[index];
    return ECF8_OK;
}

int ecf8_file_find(const ecf8_file *f, const char *name, size_t *index)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) {
            *index = i;
            return ECF8_OK;
        }
    return ecf8_fail(ECF8_ERR_NOT_FOUND, "no tensor named '%s'", name);
}

int ecf8_file_read_tensor(const ecf8_file *f, size_t index, void *out, size_t out_bytes,
                          unsigned threads)
{
    if (!f || index >= f->n_tensors) return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor index out of range");
    const ecf8_tensor_info *t = &f->tensors[index];
    if (out_bytes < t->source_bytes)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': output of %zu bytes, need %llu", t->name,
                         out_bytes, (unsigned long long)t->source_bytes);
    return ecf8_tensor_decode_checked(t, out, out_bytes, threads);
}

int ecf8_tensor_decode_checked(const ecf8_tensor_info *t, void *out, size_t out_bytes,
                               unsigned threads)
{
    int st = ECF8_OK;
    if (t->split == ECF8_SPLIT_STORED)
        memcpy(out, t->payload, t->source_bytes);
    else
        st = ecf8_stream_decode(&t->stream, out, out_bytes, threads);
    const char *name = t->name ? t->name : ""; /* infos built by hand may have none */
    if (st) return ecf8_fail_context(st, "tensor '%s'", name);
    if (ecf8_hash64(out, t->source_bytes) != t->checksum)
        return ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", name);
    return ECF8_OK;
}

/* ---- reconstruction ---------------------------------------------------------- */
/* ecf8_decode_options as of the first version: older callers pass this much. */
#define DECODE_OPTIONS_V1_BYTES (offsetof(ecf8_decode_options, progress_user) + sizeof(void *))

void ecf8_decode_options_init(ecf8_decode_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

/* NULL options are the defaults; a struct smaller than the first version's
 * is refused rather than read past its end. */
static int decode_options_get(const ecf8_decode_options *options, ecf8_decode_options *out)
{
    ecf8_decode_options_init(out);
    if (!options) return ECF8_OK;
    if (options->struct_size < DECODE_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode options struct too small (struct_size %zu)",
                         options->struct_size);
    /* Fields after the caller's struct_size keep their defaults. */
    memcpy(out, options, options->struct_size < sizeof *out ? options->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    return ECF8_OK;
}

/* Bytes of the original file(s) rebuilt so far, reported to the caller. */
typedef struct progress_state {
    const ecf8_decode_options *options;
    uint64_t done, total;
} progress_state;

static void progress_start(progress_state *p, const ecf8_decode_options *o, const ecf8_file *f)
{
    p->options = o;
    p->done = p->total = 0;
    for (size_t i = 0; i < f->n_sources; i++) p->total += f->sources[i].source_bytes;
    if (o->progress) o->progress(o->progress_user, 0, p->total);
}

static void progress_add(progress_state *p, uint64_t bytes)
{
    p->done += bytes;
    if (p->options->progress) p->options->progress(p->options->progress_user, p->done, p->total);
}

/* Streams source file i: its header bytes, then each tensor decoded and
 * checked.  `sink` receives the bytes in order (a file or a comparator). */
typedef int (*sink_fn)(void *ctx, const void *data, size_t n);

static int rebuild_source(const ecf8_file *f, size_t i, unsigned threads, sink_fn sink, void *ctx,
                          progress_state *progress, ecf8_tensor_decode_fn decode, void *decode_ctx)
{
    const source_info *s = &f->sources[i];
    int st = sink(ctx, s->prefix, s->prefix_bytes);
    if (!st) progress_add(progress, s->prefix_bytes);
    uint64_t max = 0;
    for (uint32_t k = 0; k < s->n_tensors; k++) {
        const ecf8_tensor_info *t = &f->tensors[s->first_tensor + k];
        if (t->split != ECF8_SPLIT_STORED && t->source_bytes > max) max = t->source_bytes;
    }
    uint8_t *buf = max ? malloc(max) : NULL;
    if (max && !buf) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte tensor", (unsigned long long)max);
    uint8_t *payload = NULL; /* a file opened by ecf8_file_open_index: one payload at a time */
    size_t payload_cap = 0;
    for (uint32_t k = 0; k < s->n_tensors && !st; k++) {
        size_t ti = s->first_tensor + k;
        ecf8_tensor_info t;
        if ((st = tensor_payload_read(f, &f->tensors[ti], &payload, &payload_cap, &t))) break;
        if (t.split == ECF8_SPLIT_STORED) {
            if (ecf8_hash64(t.payload, t.source_bytes) != t.checksum)
                st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t.name);
            else
                st = sink(ctx, t.payload, t.source_bytes);
        } else {
            st = decode ? decode(decode_ctx, f, ti, buf, max)
                        : ecf8_tensor_decode_checked(&t, buf, max, threads);
            if (!st) st = sink(ctx, buf, t.source_bytes);
        }
        if (!st) progress_add(progress, t.source_bytes);
    }
    free(payload);
    free(buf);
    return st;
}

static int sink_outfile(void *ctx, const void *data, size_t n)
{
    return ecf8_outfile_write(ctx, data, n);
}

static char *join_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

/* The output rules of ecf8_output_check for every file the container
 * rebuilds, and for a directory container an out_path that is a directory
 * (or a link to one) or absent. */
static int check_outputs(const ecf8_file *f, const char *in_path, const char *out_path, bool overwrite)
{
    if (!ecf8_file_is_directory(f)) return ecf8_output_check(out_path, in_path, overwrite);
    if (!out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    struct stat sb;
    if (stat(out_path, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a directory (the container holds a directory)", out_path);
    int st = ECF8_OK;
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        char *path = join_path(out_path, f->sources[i].path);
        st = path ? ecf8_output_check(path, in_path, overwrite) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        free(path);
    }
    return st;
}

/* A container can expand without bound (a constant tensor is a one-symbol
 * code of no bits: 236 bytes can be 3 GiB): refuses, before writing
 * anything, an output larger than the free space of the filesystem it goes
 * to (out_path when it is a directory, else the directory it is in), and
 * says how large it would be. */
static int check_output_space(const ecf8_file *f, const char *out_path, uint64_t output_bytes)
{
    char *where = strdup(out_path);
    if (!where) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(out_path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(where, '/');
        if (!slash) strcpy(where, ".");
        else if (slash == where) slash[1] = '\0';
        else *slash = '\0';
    }
    struct statvfs vfs;
    int st = ECF8_OK;
    /* Where statvfs cannot tell, opening the output reports the problem. */
    if (statvfs(where, &vfs) == 0) {
        uint64_t free_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        if (output_bytes > free_bytes)
            st = ecf8_fail(ECF8_ERR_IO, "%s: the output would be %llu bytes (from a %llu-byte "
                           "container), the filesystem has %llu bytes free", out_path,
                           (unsigned long long)output_bytes, (unsigned long long)f->bytes.size,
                           (unsigned long long)free_bytes);
    }
    free(where);
    return st;
}

int ecf8_decompress_path(const char *in_path, const char *out_path, unsigned threads)
{
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    return ecf8_decompress_path_ex(in_path, out_path, &o);
}

int ecf8_decompress_path_ex(const char *in_path, const char *out_path, const ecf8_decode_options *options)
{
    return ecf8_decompress_path_with(in_path, out_path, options, NULL, NULL);
}

int ecf8_decompress_path_with(const char *in_path, const char *out_path,
                              const ecf8_decode_options *options, ecf8_tensor_decode_fn decode,
                              void *decode_ctx)
{
    ecf8_clear_error();
    ecf8_decode_options o;
    if (!in_path || !out_path) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    if (!in_path[0] || !out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    int st = decode_options_get(options, &o);
    if (st) return st;
    unsigned threads = o.threads;
    ecf8_file *f;
    /* The CPU decoder reads one payload at a time; a device decoder is
     * handed the open file, its payloads in memory. */
    st = decode ? ecf8_file_open(in_path, &f) : ecf8_file_open_index(in_path, &f);
    if (st) return ecf8_fail_context(st, "%s", in_path);
    progress_state progress;
    progress_start(&progress, &o, f);
    bool dir = ecf8_file_is_directory(f);
    _Atomic(ecf8_temp *) *made_dir = NULL; /* a directory this call created */
    ecf8_outfile *outs = NULL;
    size_t opened = 0;
    /* Every output is checked before anything is decoded or created, and
     * the expansion against the free space. */
    if ((st = check_outputs(f, in_path, out_path, o.overwrite != 0))) goto done;
    if ((st = check_output_space(f, out_path, progress.total))) goto done;
    if (dir && ecf8_temp_create_dir(out_path, &made_dir) != 0 && errno != EEXIST) {
        st = ecf8_fail(ECF8_ERR_IO, "%s: cannot create directory: %s", out_path,
                       errno == EINTR ? "interrupted" : strerror(errno));
        goto done;
    }
    /* Every source is written under a temporary name first; they are put in
     * place only once all of them are complete (all or nothing). */
    outs = calloc(f->n_sources, sizeof *outs);
    if (!outs) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        char *path = dir ? join_path(out_path, f->sources[i].path) : strdup(out_path);
        if (!path) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
        st = ecf8_outfile_open(&outs[i], path, in_path, o.overwrite != 0);
        if (!st) {
            opened = i + 1;
            st = rebuild_source(f, i, threads, sink_outfile, &outs[i], &progress, decode, decode_ctx);
            if (st && !outs[i].failed) st = ecf8_fail_context(st, "%s", in_path);
            else if (!st) st = ecf8_outfile_finish(&outs[i]);
        }
        free(path);
    }
    /* A file that changed meanwhile explains any other failure too. */
    int changed = payloads_unchanged(f);
    if (changed) st = ecf8_fail_context(changed, "%s", in_path);
    for (size_t i = 0; i < opened; i++) {
        if (st) ecf8_outfile_abort(&outs[i]);
        else st = ecf8_outfile_commit(&outs[i]);
    }
    if (st && made_dir) rmdir(out_path);
    ecf8_temp_release(made_dir);
done:
    free(outs);
    ecf8_file_close(f);
    return st;
}

/* The original is read piece by piece beside the reconstruction, not
 * copied whole: verify already holds the container in memory. */
#define COMPARE_PIECE ((size_t)4 << 20)

typedef struct compare_ctx {
    int fd;
    struct stat before; /* the original's version when opened */
    uint64_t pos;
    uint8_t *piece;     /* COMPARE_PIECE bytes */
    bool original_failed; /* the error is about the original (name it) */
} compare_ctx;

static int sink_compare(void *ctx, const void *data, size_t n)
{
    compare_ctx *c = ctx;
    const uint8_t *d = data;
    while (n) {
        size_t want = n < COMPARE_PIECE ? n : COMPARE_PIECE, got;
        int st = ecf8_read_at(c->fd, c->piece, want, c->pos, &got);
        if (st) {
            c->original_failed = true;
            return st;
        }
        if (got < want || memcmp(c->piece, d, want) != 0) {
            size_t at = 0;
            while (at < got && c->piece[at] == d[at]) at++;
            c->original_failed = true;
            return ecf8_fail(ECF8_ERR_MISMATCH, "reconstruction differs from the original at byte %llu",
                             (unsigned long long)(c->pos + at));
        }
        c->pos += want, d += want, n -= want;
    }
    return ECF8_OK;
}

/* Rebuilds source i of f and compares it with the file at path. */
static int compare_source(const ecf8_file *f, size_t i, const char *path, unsigned threads,
                          progress_state *progress, compare_ctx *c)
{
    int st = ecf8_open_regular_file(path, &c->fd, &c->before);
    if (st) {
        c->original_failed = true;
        return st;
    }
    if (!(c->piece = malloc(COMPARE_PIECE))) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) st = rebuild_source(f, i, threads, sink_compare, c, progress, NULL, NULL);
    uint64_t size = (uint64_t)c->before.st_size;
    if (!st && c->pos != size) {
        c->original_failed = true;
        st = c->pos < size ? ecf8_fail(ECF8_ERR_MISMATCH, "original has %llu more bytes",
                                       (unsigned long long)(size - c->pos))
                           : ecf8_fail(ECF8_ERR_MISMATCH, "reconstruction differs from the "
                                       "original at byte %llu", (unsigned long long)size);
    }
    /* A mismatch with an original that changed meanwhile says nothing. */
    struct stat after;
    if ((!st || c->original_failed) && fstat(c->fd, &after) == 0 &&
        !ecf8_same_file_version(&c->before, &after)) {
        c->original_failed = true;
        st = ecf8_fail(ECF8_ERR_IO, "input changed while being read");
    }
    close(c->fd);
    free(c->piece);
    return st;
}

static int sink_discard(void *ctx, const void *data, size_t n)
{
    (void)ctx, (void)data, (void)n;
    return ECF8_OK;
}

int ecf8_verify_path(const char *in_path, const char *original_path, unsigned threads)
{
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    return ecf8_verify_path_ex(in_path, original_path, &o);
}

int ecf8_verify_path_ex(const char *in_path, const char *original_path, const ecf8_decode_options *options)
{
    ecf8_clear_error();
    ecf8_decode_options o;
    int st = decode_options_get(options, &o);
    if (st) return st;
    unsigned threads = o.threads;
    ecf8_file *f;
    st = ecf8_file_open_index(in_path, &f);
    if (st) return ecf8_fail_context(st, "%s", in_path);
    progress_state progress;
    progress_start(&progress, &o, f);
    bool dir = ecf8_file_is_directory(f);
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        if (!original_path) {
            st = rebuild_source(f, i, threads, sink_discard, NULL, &progress, NULL, NULL);
            if (st) st = ecf8_fail_context(st, "%s", in_path);
            continue;
        }
        char *path = dir ? join_path(original_path, f->sources[i].path) : strdup(original_path);
        compare_ctx c = {0};
        if (!path) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
        st = compare_source(f, i, path, threads, &progress, &c);
        if (st) st = ecf8_fail_context(st, "%s", c.original_failed ? path : in_path);
        free(path);
    }
    int changed = payloads_unchanged(f); /* explains any other failure too */
    if (changed) st = ecf8_fail_context(changed, "%s", in_path);
    ecf8_file_close(f);
    return st;
}
