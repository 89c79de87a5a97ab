/* container_read.c - the .ecf8 container's validating reader: header and
 * index (format 1.0 plain, 1.1 zstd-compressed) checked in full before any
 * tensor is handed out; tensor lookup and checked reads.  The three
 * openers (a file read whole, a file's index with payloads left on disk,
 * bytes in memory) share one parser. */
#define _GNU_SOURCE
#include "container.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

bool ecf8_has_container_magic(const void *data, size_t size)
{
    return size >= sizeof ECF8_MAGIC && !memcmp(data, ECF8_MAGIC, sizeof ECF8_MAGIC);
}

int ecf8_checkpoint_file_name(const char *name)
{
    return name && name[0] != '.' && !strchr(name, '/') &&
           (ecf8_ends_with(name, ".safetensors") || ecf8_ends_with(name, ".json"));
}

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
    if (e[24] > ECF8_DTYPE_F8_E8M0 || e[25] > ECF8_SPLIT_BYTE || e[26] > ECF8_MAX_DIMS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': bad dtype, split or rank", t->name);
    /* Tensor flags: format 1.1 and coded tensors only. */
    bool parts_in_index = e[28] == TENSOR_FLAGS_PARTS_IN_INDEX && format_1_1 && e[25] != ECF8_SPLIT_STORED;
    if (e[29] > ECF8_STREAM_LAYOUT_LANES || (e[29] && e[25] == ECF8_SPLIT_STORED))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stream layout %u invalid", t->name, e[29]);
    if (e[29] && !(f->header_flags & HEADER_FLAG_LANES))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stream layout 1 in a file whose header "
                         "does not announce lane streams (flag bit 1)", t->name);
    if (!parts_in_index && e[28])
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': reserved bytes set", t->name);
    for (size_t i = 30; i < 32; i++)
        if (e[i]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': reserved bytes set", t->name);
    for (size_t i = parts_in_index ? 192 : 176; i < TENSOR_ENTRY_BYTES; i++)
        if (e[i]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': reserved bytes set", t->name);
    if (e[24] >= FIRST_DTYPE_1_3 && !(f->header_flags & HEADER_FLAG_DTYPES_1_3))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': dtype code %u in a file whose header does "
                         "not announce format 1.3 dtypes (flag bit 2)", t->name, e[24]);
    /* The dtype is the name's.  A format 1.3 dtype stored verbatim may
     * have code 0: what 1.0-1.2 writers (and this one, for stored
     * tensors) give it. */
    t->dtype = ecf8_dtype_from_name(t->dtype_name);
    t->split = (ecf8_split)e[25];
    t->ndim = e[26];
    if (e[24] != t->dtype &&
        !(e[24] == 0 && t->dtype >= FIRST_DTYPE_1_3 && t->split == ECF8_SPLIT_STORED))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': dtype code %u disagrees with '%s'", t->name,
                         e[24], t->dtype_name);
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
    const ecf8_stream_geometry g = {.dtype = t->dtype, .split = t->split, .code_bits = e[27],
                                    .rows = rows, .cols = cols,
                                    .chunk_rows = ecf8_load_le64(e + 144),
                                    .chunk_cols = ecf8_load_le64(e + 152),
                                    .coded_bytes = ecf8_load_le64(e + 160),
                                    .stream_layout = e[29],
                                    .coded_later = f->payloads_on_disk && parts_in_index};
    if (!parts_in_index) {
        /* A payload with its offsets inside, in a file whose payloads
         * stay on disk (format 1.1 allows it): this one is read now. */
        if (f->payloads_on_disk && (st = read_into_reserved(f, payload_off, t->payload_bytes))) return st;
        /* Format 1.0 keeps the offsets in the payload, i.e. in the
         * container bytes, which the caller of ecf8_file_open_memory could
         * change after the check (a file is read into a private copy):
         * the decoders (and device uploads) use a checked copy.  Format
         * 1.1 offsets are in the decompressed index already. */
        st = ecf8_stream_open_payload(&g, t->payload, t->payload_bytes, &t->stream,
                                      &f->offsets[t - f->tensors]);
    } else {
        ecf8_split_layout l;
        if (ecf8_split_layout_get(t->dtype, t->split, &l))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': %s split invalid for dtype %s", t->name,
                             ecf8_split_name(t->split), t->dtype_name);
        uint64_t len_at = ecf8_load_le64(e + 176), off_at = ecf8_load_le64(e + 184);
        if (len_at > blob_len || (1u << l.symbol_bits) / 2 > blob_len - len_at)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': code lengths out of bounds", t->name);
        if (off_at > blob_len)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': chunk offsets out of bounds", t->name);
        st = ecf8_stream_open_parts(&g, blob + len_at, blob + off_at, blob_len - off_at,
                                    t->payload, t->payload_bytes, &t->stream);
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
    f->format_minor = (unsigned)p[10] | (unsigned)p[11] << 8;
    if (header_flags & ~HEADER_FLAGS_KNOWN)
        return ecf8_fail(ECF8_ERR_VERSION, "unknown header flags 0x%x (feature bits 0x%x are newer than "
                         "this library, which reads bit 0, zstd index, bit 1, lane streams, and bit 2, format 1.3 "
                         "dtypes)",
                         header_flags, header_flags & ~HEADER_FLAGS_KNOWN);
    if (!(header_flags & HEADER_FLAG_ZSTD_INDEX) && index_raw)
        return ecf8_fail(ECF8_ERR_VERSION, "unknown header flags");
    if (ecf8_load_le64(p + 16) != size)
        return ecf8_fail(ECF8_ERR_CORRUPT, "file is %llu bytes, header says %llu (truncated?)",
                         (unsigned long long)size, (unsigned long long)ecf8_load_le64(p + 16));
    uint64_t meta_off = ecf8_load_le64(p + 24), meta_len = ecf8_load_le64(p + 32);
    uint64_t min_len = header_flags & HEADER_FLAG_ZSTD_INDEX ? 1 : META_HEADER_BYTES;
    f->header_flags = header_flags;
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
    uint64_t dtype_1_3_codes = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        int st = open_tensor(f, te + i * TENSOR_ENTRY_BYTES, blob, blob_len, meta_off, f->index != NULL,
                             &f->tensors[i]);
        f->n_tensors = i + 1;
        if (st) return st;
        const uint8_t *e = te + i * TENSOR_ENTRY_BYTES;
        dtype_1_3_codes += e[24] >= FIRST_DTYPE_1_3;
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
    if (f->header_flags & HEADER_FLAG_LANES) {
        size_t lanes = 0;
        for (size_t i = 0; i < f->n_tensors; i++)
            lanes += f->tensors[i].split != ECF8_SPLIT_STORED &&
                     f->tensors[i].stream.stream_layout == ECF8_STREAM_LAYOUT_LANES;
        if (!lanes)
            return ecf8_fail(ECF8_ERR_CORRUPT, "header flag bit 1 (lane streams) set, no tensor has stream layout 1");
    }
    if ((f->header_flags & HEADER_FLAG_DTYPES_1_3) && !dtype_1_3_codes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "header flag bit 2 (format 1.3 dtypes) set, no tensor has a "
                         "dtype code >= %d", FIRST_DTYPE_1_3);
    /* Distinct paths: two sources must never be written to one file. */
    char **paths = malloc(f->n_sources * sizeof *paths);
    if (!paths) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n_sources; i++) paths[i] = f->sources[i].path;
    qsort(paths, f->n_sources, sizeof *paths, ecf8_cmp_str);
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

int ecf8_file_payload_read(const ecf8_file *f, const ecf8_tensor_info *t, uint8_t **buf,
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

int ecf8_file_payloads_unchanged(const ecf8_file *f)
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
    if (f->payloads_on_disk) { /* on disk: ecf8_file_read_tensor reads it */
        out->payload = NULL;
        out->stream.coded = NULL;
    }
    return ECF8_OK;
}

void ecf8_file_format_version(const ecf8_file *f, unsigned *major, unsigned *minor)
{
    if (major) *major = f ? ECF8_FORMAT_VERSION : 0;
    if (minor) *minor = f ? f->format_minor : 0;
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
    if (!f->payloads_on_disk) return ecf8_tensor_decode_checked(t, out, out_bytes, threads);
    uint8_t *buf = NULL;
    size_t cap = 0;
    ecf8_tensor_info view;
    int st = ecf8_file_payload_read(f, t, &buf, &cap, &view);
    if (!st) st = ecf8_tensor_decode_checked(&view, out, out_bytes, threads);
    if (!st) st = ecf8_file_payloads_unchanged(f);
    free(buf);
    return st;
}

int ecf8_tensor_decode_checked(const ecf8_tensor_info *t, void *out, size_t out_bytes,
                               unsigned threads)
{
    int st = ECF8_OK;
    if (t->source_bytes && (t->split == ECF8_SPLIT_STORED ? !t->payload : !t->stream.coded))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': its payload is not in memory (a file opened "
                         "with ecf8_file_open_index: ecf8_file_read_tensor reads it)", t->name ? t->name : "");
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