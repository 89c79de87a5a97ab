/* container.h - what the container's writer (container_write.c), reader
 * (container_read.c) and rebuild (container_rebuild.c) share: the format's
 * constants and limits (docs/FORMAT.md), the open file, and a few small
 * string helpers.
 *
 * Layout (docs/FORMAT.md): a 64-byte header, the tensor payloads each
 * aligned to 64 bytes, then the index ("meta"): source-file table, tensor
 * table and a blob area holding names and the verbatim safetensors header
 * bytes of each source.  The index goes last so the writer streams
 * payloads without knowing their sizes in advance. */
#ifndef ECF8_CONTAINER_H
#define ECF8_CONTAINER_H

#include "internal.h"
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const uint8_t ECF8_MAGIC[8] = {0x89, 'E', 'C', 'F', '8', '\r', '\n', 0x1a};
#define HEADER_BYTES 64
#define VERSION_END 10 /* magic and version_major: the bytes every format version keeps */
#define PAYLOAD_ALIGN 64
#define META_HEADER_BYTES 32
#define SOURCE_ENTRY_BYTES 48
#define TENSOR_ENTRY_BYTES 192
#define FLAG_DIRECTORY 1u
#define HEADER_FLAG_ZSTD_INDEX 1u /* format 1.1: the index is one zstd frame */
#define HEADER_FLAG_LANES 2u      /* format 1.2: some tensor has stream layout 1 */
#define HEADER_FLAG_DTYPES_1_3 4u /* format 1.3: some tensor has a dtype code >= 5 */
#define HEADER_FLAGS_KNOWN (HEADER_FLAG_ZSTD_INDEX | HEADER_FLAG_LANES | HEADER_FLAG_DTYPES_1_3)
/* The first dtype code of format 1.3.  A tensor of those dtypes that is
 * stored verbatim keeps code 0, as format 1.0-1.2 writers gave it, so a
 * file becomes 1.3 only when it codes one. */
#define FIRST_DTYPE_1_3 ECF8_DTYPE_F8_E4M3FNUZ
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

static inline bool index_expansion_ok(uint64_t raw_bytes, uint64_t stored_bytes)
{
    return raw_bytes / MAX_INDEX_EXPANSION <= stored_bytes || raw_bytes <= MAX_INDEX_RAW_ANY;
}

/* The tensor table alone expands no more than 1024x, whatever the index
 * size: a real entry holds a checksum and offsets that zstd cannot shrink
 * that much, and the bound keeps the reader's per-tensor memory in
 * proportion to the file (1.4 M empty tensors in 24 KB took `ecf8 info`
 * 4.2 GB). */
static inline bool tensor_table_expansion_ok(uint64_t n_tensors, uint64_t stored_bytes)
{
    return n_tensors / MAX_INDEX_EXPANSION * TENSOR_ENTRY_BYTES <= stored_bytes;
}
static inline int ecf8_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline bool ecf8_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* "dir/name" in a new allocation (NULL when out of memory). */
static inline char *ecf8_join_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

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
     * on disk (fd) and are read one at a time (ecf8_file_payload_read):
     * the tensors' payload pointers point into the reserved range, so only
     * container_*.c use them (ecf8_file_tensor hands out NULL instead). */
    bool payloads_on_disk;
    int fd;
    struct stat opened; /* the file's version when opened */
    uint8_t *index; /* the decompressed index of a format 1.1 file, else NULL */
    uint32_t flags;
    uint32_t header_flags;
    unsigned format_minor;
    source_info *sources;
    size_t n_sources;
    ecf8_tensor_info *tensors;
    size_t n_tensors;
    /* Format 1.0: each coded tensor's chunk offsets, copied out of the
     * container bytes (NULL for the others). */
    uint64_t **offsets;
};

/* Tensor t as it is used to decode it: itself, or, with its payload on
 * disk (ecf8_file_open_index), a copy pointing at the payload read into
 * *buf (grown as needed). */
int ecf8_file_payload_read(const ecf8_file *f, const ecf8_tensor_info *t, uint8_t **buf,
                           size_t *cap, ecf8_tensor_info *view);
/* After a pass over a file opened by ecf8_file_open_index: ECF8_ERR_IO
 * unless the payloads read were all of the version whose index was checked. */
int ecf8_file_payloads_unchanged(const ecf8_file *f);

#endif
