/* fuzz_common.h - helpers shared by the libFuzzer targets.
 *
 * The library reads files through mmap, so each input is written to a file
 * in a private tmpfs directory (/dev/shm, else $TMPDIR or /tmp) that lives
 * as long as the fuzzing process.  Caps keep a small hostile input from
 * making the harness (not the library) allocate gigabytes: the format lets
 * a few bytes describe a huge all-zero tensor on purpose. */
#ifndef ECF8_FUZZ_COMMON_H
#define ECF8_FUZZ_COMMON_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ecf8.h"

/* Largest decoded size a target will allocate for one input. */
#define FUZZ_MAX_DECODED (64u << 20)

/* Stops the process so libFuzzer records the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s: ", __FILE__, __LINE__, \
                    #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, " (last error: %s)\n", ecf8_last_error());          \
            abort();                                                             \
        }                                                                        \
    } while (0)

static char fuzz_dir[256];

static inline void fuzz_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        char child[512];
        while (d && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(child, sizeof child, "%s/%s", path, de->d_name);
            fuzz_remove_tree(child);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline void fuzz_cleanup(void)
{
    if (fuzz_dir[0]) fuzz_remove_tree(fuzz_dir);
}

/* The private scratch directory, created on first use. */
static inline const char *fuzz_scratch_dir(void)
{
    if (fuzz_dir[0]) return fuzz_dir;
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!bases[i]) continue;
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ecf8-fuzz-XXXXXX", bases[i]);
        if (mkdtemp(fuzz_dir)) {
            atexit(fuzz_cleanup);
            return fuzz_dir;
        }
    }
    fprintf(stderr, "fuzz: cannot create a scratch directory\n");
    abort();
}

/* dir/name inside the scratch directory (static rotating buffer). */
static inline const char *fuzz_path(const char *name)
{
    static char bufs[4][512];
    static unsigned k;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", fuzz_scratch_dir(), name);
    return b;
}

/* Writes data to the scratch file `name` and returns its path. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
    return path;
}

/* FNV-1a: derives harness choices (options, thread counts) from the input
 * so that every run of one input takes the same path. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

/* Little-endian reader that yields zeros past the end of the input. */
typedef struct fuzz_reader {
    const uint8_t *p;
    size_t n, pos;
} fuzz_reader;

static inline uint64_t fuzz_take(fuzz_reader *r, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++, r->pos++)
        if (r->pos < r->n) v |= (uint64_t)r->p[r->pos] << (8 * i);
    return v;
}

static inline size_t fuzz_left(const fuzz_reader *r) { return r->pos < r->n ? r->n - r->pos : 0; }

/* ---- known bugs ------------------------------------------------------------
 * Each known library bug (tests/fuzz/README.md, inputs in crashes/) would
 * stop a fuzzing run at once and hide everything behind it, so the targets
 * skip the inputs that trigger it -- but only while the bug is there: each
 * gate first probes the library with the bug's minimal input, once per
 * process, and turns itself off when the library rejects it (the bug is
 * fixed).  -DFUZZ_STRICT turns every gate off. */
enum { FUZZ_PROBE_UNKNOWN = 0, FUZZ_PROBE_BUGGY = 1, FUZZ_PROBE_FIXED = 2 };

/* Bug 1: the chunk count ceil(rows / chunk_rows) * ceil(cols / chunk_cols)
 * is computed as (rows + chunk_rows - 1) / chunk_rows, which wraps to 0 for
 * rows (or cols) near 2^64: a stream of 0 chunks "covering" ~2^64 elements
 * validates. */
static inline bool fuzz_chunk_wrap_is_buggy(void)
{
    static int probe;
    if (!probe) {
        static const uint64_t offsets[1] = {0};
        static const uint8_t coded[8] = {0};
        ecf8_stream s;
        memset(&s, 0, sizeof s);
        s.dtype = ECF8_DTYPE_F8_E4M3;
        s.split = ECF8_SPLIT_BYTE;
        s.n_symbols = 256;
        s.lengths[0] = 1;
        s.rows = s.n_elements = UINT64_MAX;
        s.cols = 1;
        s.chunk_rows = 2;
        s.chunk_cols = 1;
        s.coded_bytes = 8;
        s.chunk_offsets = offsets;
        s.coded = coded;
        probe = ecf8_stream_validate(&s) == ECF8_OK ? FUZZ_PROBE_BUGGY : FUZZ_PROBE_FIXED;
    }
    return probe == FUZZ_PROBE_BUGGY;
}

static inline bool fuzz_known_chunk_wrap(const ecf8_stream *s)
{
#ifdef FUZZ_STRICT
    (void)s;
    return false;
#else
    uint64_t t;
    return (__builtin_add_overflow(s->rows, s->chunk_rows, &t) ||
            __builtin_add_overflow(s->cols, s->chunk_cols, &t)) &&
           fuzz_chunk_wrap_is_buggy();
#endif
}

/* Bug 2: for code_bits 0 (the one-symbol code) ecf8_decode_table_build
 * accepts any length of the used symbol, even above 15, where the reference
 * decoder then finds no symbol and reads an uninitialised one.  Only
 * reachable through a hand-built ecf8_stream (file lengths are 4-bit). */
static inline bool fuzz_one_symbol_is_buggy(void)
{
#ifdef FUZZ_STRICT
    return false;
#else
    static int probe;
    if (!probe) {
        uint8_t lengths[16] = {16};
        uint16_t table[1];
        probe = ecf8_decode_table_build(lengths, 16, 0, table) == ECF8_OK ? FUZZ_PROBE_BUGGY
                                                                          : FUZZ_PROBE_FIXED;
    }
    return probe == FUZZ_PROBE_BUGGY;
#endif
}

static inline bool fuzz_known_long_one_symbol(const ecf8_stream *s)
{
#ifdef FUZZ_STRICT
    (void)s;
    return false;
#else
    if (!fuzz_one_symbol_is_buggy() || s->code_bits != 0) return false;
    for (unsigned i = 0; i < s->n_symbols && i < 256; i++)
        if (s->lengths[i] > 15) return true;
    return false;
#endif
}

/* Bug 3: package weights in ecf8_codebook_build wrap around when the counts
 * sum to more than ~2^60, and the lengths then are not a complete code. */
static inline bool fuzz_known_codebook_overflow(uint64_t total_count)
{
#ifdef FUZZ_STRICT
    (void)total_count;
    return false;
#else
    static int probe;
    if (!probe) {
        const uint64_t counts[4] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, 1};
        uint8_t lengths[4];
        static uint16_t table[1u << ECF8_MAX_CODE_BITS];
        probe = ecf8_codebook_build(counts, 4, 13, lengths) == ECF8_OK &&
                        ecf8_decode_table_build(lengths, 4, 13, table) != ECF8_OK
                    ? FUZZ_PROBE_BUGGY
                    : FUZZ_PROBE_FIXED;
    }
    return total_count > (UINT64_MAX >> 4) && probe == FUZZ_PROBE_BUGGY;
#endif
}

/* Bug 4: two sources of a directory container may have the same name; the
 * second then overwrites the first on decompression.  Probed with the saved
 * input (FUZZ_CRASHES_DIR is set by tests/fuzz/CMakeLists.txt). */
static inline bool fuzz_known_duplicate_sources(void)
{
#if defined(FUZZ_STRICT) || !defined(FUZZ_CRASHES_DIR)
    return false;
#else
    static int probe;
    if (!probe) {
        ecf8_file *f = NULL;
        int st = ecf8_file_open(FUZZ_CRASHES_DIR "/fuzz_container/duplicate_source_path.ecf8", &f);
        ecf8_file_close(f);
        probe = st == ECF8_OK ? FUZZ_PROBE_BUGGY : FUZZ_PROBE_FIXED;
    }
    return probe == FUZZ_PROBE_BUGGY;
#endif
}

/* Bug 5: a max_code_bits too small for a split's alphabet (e.g. 4 bits for
 * 24 BF16 exponents) fails the whole tensor ("N symbols do not fit B-bit
 * codes") instead of skipping that split or storing the tensor. */
static inline bool fuzz_known_code_bits_too_small(void)
{
#ifdef FUZZ_STRICT
    return false;
#else
    static int probe;
    if (!probe) {
        uint8_t data[256];
        for (unsigned i = 0; i < sizeof data; i++) data[i] = (uint8_t)i; /* all 16 exponents */
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.max_code_bits = 2;
        o.threads = 1;
        ecf8_encoded *enc = NULL;
        int st = ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, data, 1, sizeof data, &o, &enc);
        ecf8_encoded_free(enc);
        probe = st != ECF8_OK ? FUZZ_PROBE_BUGGY : FUZZ_PROBE_FIXED;
    }
    return probe == FUZZ_PROBE_BUGGY;
#endif
}

#endif
