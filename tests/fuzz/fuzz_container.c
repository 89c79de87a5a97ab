/* fuzz_container.c - the .ecf8 reader.
 *
 * Each input is tried as it is and, when that fails, again with its file
 * size, index checksum and header checksum fixed up: otherwise almost
 * every mutation would stop at the checksums and the index parser behind
 * them would never be reached.  For a file that opens:
 *   - every coded tensor's stream must validate and its chunks tile it,
 *   - every tensor is read (fast decoder, checksum) and, for coded ones,
 *     decoded again by the reference decoder; the two must agree,
 *   - ecf8_verify_path and ecf8_decompress_path must agree on success,
 *     and a decompressed file has the size the index gives,
 *   - ecf8_inspect_path runs on it.
 * Tensors larger than FUZZ_MAX_DECODED are listed but not decoded: the
 * format lets a few bytes describe a huge all-zero tensor, on purpose. */
#include "fuzz_common.h"

#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_stream(const ecf8_tensor_info *t)
{
    const ecf8_stream *s = &t->stream;
    FUZZ_CHECK(ecf8_stream_validate(s) == ECF8_OK, "tensor '%s': opened stream fails validation",
               t->name);
    if (fuzz_known_chunk_wrap(s)) return;
    uint64_t at = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        FUZZ_CHECK(ecf8_chunk_start(s, c) == at, "tensor '%s': chunk %llu out of order", t->name,
                   (unsigned long long)c);
        at += ecf8_chunk_elements(s, c);
    }
    FUZZ_CHECK(at == s->n_elements && s->n_elements == t->n_elements,
               "tensor '%s': %llu chunks cover %llu of %llu elements", t->name,
               (unsigned long long)s->n_chunks, (unsigned long long)at,
               (unsigned long long)t->n_elements);
}

/* Reads every tensor of an open file; returns the largest tensor size. */
static uint64_t read_all(const ecf8_file *f)
{
    uint64_t largest = 0;
    size_t n = ecf8_file_tensor_count(f);
    for (size_t i = 0; i < n; i++) {
        ecf8_tensor_info t;
        FUZZ_CHECK(ecf8_file_tensor(f, i, &t) == ECF8_OK, "tensor %zu", i);
        FUZZ_CHECK(t.ndim <= ECF8_MAX_DIMS && t.split <= ECF8_SPLIT_BYTE, "tensor %zu fields", i);
        FUZZ_CHECK(t.source_file < ecf8_file_source_count(f), "tensor %zu source", i);
        size_t found;
        FUZZ_CHECK(ecf8_file_find(f, t.name, &found) == ECF8_OK && found <= i, "find '%s'", t.name);
        if (t.source_bytes > largest) largest = t.source_bytes;
        bool coded = t.split != ECF8_SPLIT_STORED;
        if (coded) check_stream(&t);
        if (t.source_bytes > FUZZ_MAX_DECODED) continue;
        size_t bytes = (size_t)t.source_bytes;
        uint8_t *out = malloc(bytes ? bytes : 1);
        uint8_t *ref = malloc(bytes ? bytes : 1);
        FUZZ_CHECK(out && ref, "out of memory");
        int st = ecf8_file_read_tensor(f, i, out, bytes, 1);
        if (st == ECF8_OK)
            FUZZ_CHECK(XXH3_64bits(out, bytes) == t.checksum, "'%s' read with a bad checksum", t.name);
        if (coded) {
            int st_ref = ecf8_stream_decode_reference(&t.stream, ref, bytes);
            /* A checksum failure still means the fast decoder succeeded. */
            bool fast_ok = st == ECF8_OK || st == ECF8_ERR_CHECKSUM;
            FUZZ_CHECK(fast_ok == (st_ref == ECF8_OK), "'%s': fast %d, reference %d", t.name, st,
                       st_ref);
            if (fast_ok) FUZZ_CHECK(!memcmp(out, ref, bytes), "'%s': decoders disagree", t.name);
        }
        free(out);
        free(ref);
    }
    return largest;
}

/* Size of a file or the sum over a directory's files. */
static uint64_t tree_bytes(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return (uint64_t)sb.st_size;
    uint64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *de;
    char child[512];
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        total += tree_bytes(child);
    }
    if (d) closedir(d);
    return total;
}

static void exercise(const char *path)
{
    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f) != ECF8_OK) {
        FUZZ_CHECK(f == NULL, "failed open left a file object");
        return;
    }
    size_t n_sources = ecf8_file_source_count(f);
    uint64_t total = 0;
    bool duplicate = false;
    for (size_t i = 0; i < n_sources; i++) {
        const char *sp = ecf8_file_source_path(f, i);
        FUZZ_CHECK(sp && !strchr(sp, '/') && strcmp(sp, "..") && strcmp(sp, "."),
                   "unsafe source path accepted");
        total += ecf8_file_source_bytes(f, i);
        for (size_t k = 0; k < i; k++) duplicate = duplicate || !strcmp(sp, ecf8_file_source_path(f, k));
    }
    if (duplicate && fuzz_known_duplicate_sources()) { /* known bug 4 */
        ecf8_file_close(f);
        return;
    }
    FUZZ_CHECK(!duplicate, "two sources with the same path");
    FUZZ_CHECK(ecf8_file_source_path(f, n_sources) == NULL, "source past the end");
    uint64_t largest = read_all(f);
    ecf8_file_close(f);
    if (largest > FUZZ_MAX_DECODED || total > 4ull * FUZZ_MAX_DECODED || n_sources > 64) return;

    int verified = ecf8_verify_path(path, NULL, 1);
    const char *out = fuzz_path("out");
    fuzz_remove_tree(out);
    int decompressed = ecf8_decompress_path(path, out, 1);
    FUZZ_CHECK((verified == ECF8_OK) == (decompressed == ECF8_OK), "verify %d, decompress %d",
               verified, decompressed);
    if (decompressed == ECF8_OK) {
        FUZZ_CHECK(tree_bytes(out) == total, "decompressed %llu bytes, index says %llu",
                   (unsigned long long)tree_bytes(out), (unsigned long long)total);
        FUZZ_CHECK(ecf8_verify_path(path, out, 1) == ECF8_OK, "verify against own output");
    }
    fuzz_remove_tree(out);

    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1;
    ecf8_report rep;
    int st = ecf8_inspect_path(path, &o, &rep);
    if (st == ECF8_OK) {
        FUZZ_CHECK(rep.is_container, "container inspected as safetensors");
        ecf8_report_free(&rep);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(fuzz_write("in.ecf8", data, size));
    if (size < 64) return 0;
    /* Again with the size and checksums made consistent. */
    uint8_t *p = malloc(size);
    if (!p) return 0;
    memcpy(p, data, size);
    uint64_t v = size;
    memcpy(p + 16, &v, 8);
    uint64_t meta_off, meta_len;
    memcpy(&meta_off, p + 24, 8);
    memcpy(&meta_len, p + 32, 8);
    if (meta_off <= size && meta_len <= size - meta_off) {
        v = XXH3_64bits(p + meta_off, (size_t)meta_len);
        memcpy(p + 40, &v, 8);
    }
    v = XXH3_64bits(p, 56);
    memcpy(p + 56, &v, 8);
    if (memcmp(p, data, size) != 0) exercise(fuzz_write("fixed.ecf8", p, size));
    free(p);
    return 0;
}
