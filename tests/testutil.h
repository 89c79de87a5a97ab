/* testutil.h - small helpers shared by the CMocka tests. */
#ifndef ECF8_TESTUTIL_H
#define ECF8_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ecf8.h"

/* Path of a file in tests/data (ECF8_TEST_DATA); static buffer. */
const char *tu_data_path(const char *name);
/* A fresh empty directory under the build tree (or /tmp); static buffer. */
const char *tu_temp_dir(void);
/* Joins dir/name into a static rotating buffer. */
const char *tu_path(const char *dir, const char *name);
/* Whole file into malloc'd memory (NULL on failure), followed by a 0 byte
 * not counted in *size, so a text file is a C string. */
uint8_t *tu_read_file(const char *path, size_t *size);
int tu_write_file(const char *path, const void *data, size_t size);
/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t tu_rand(uint64_t *state);
/* FP8 E4M3 bytes drawn like trained weights: |w| ~ Laplace around 2^-4,
 * exponents concentrated, random sign and mantissa. */
void tu_fill_weights_e4m3(uint8_t *out, size_t n, uint64_t seed);

/* ---- appended for the codec/container/bad-input suites ------------------ */
/* Non-zero when path exists (any kind of file). */
int tu_exists(const char *path);
/* Entries of dir named like a temporary output (".ecf8-XXXXXX", or the
 * ".tmp." of older versions): leftover partial outputs. */
int tu_count_tmp_files(const char *dir);
/* Entries of dir (not counting . and ..); -1 when it cannot be read. */
int tu_count_entries(const char *dir);
int tu_copy_file(const char *from, const char *to);
/* Non-zero when both files exist and hold the same bytes. */
int tu_files_equal(const char *a, const char *b);
/* ecf8_compress_path and ecf8_decompress_path with overwrite set, for
 * tests that write the same output name again on purpose. */
int tu_compress_over(const char *in, const char *out, const ecf8_compress_options *options);
int tu_decompress_over(const char *in, const char *out, unsigned threads);
/* Removes a file or a directory tree (best effort). */
void tu_remove_tree(const char *path);
/* Recomputes the index checksum (when the header's index range lies inside
 * the buffer) and the header checksum of an .ecf8 image in memory, so a
 * test can change a field and reach the check behind the checksums. */
void tu_ecf8_rehash(uint8_t *buf, size_t size);
/* One tensor of a synthetic safetensors file. */
typedef struct tu_tensor {
    const char *name;
    const char *dtype;        /* written verbatim */
    unsigned ndim;
    uint64_t shape[9];
    const void *data;
    size_t bytes;
} tu_tensor;
/* A safetensors image: u64 header length, JSON header (optional
 * "__metadata__" object text first, tensors in the given order, offsets
 * laid out in that order), space padding to 8 bytes, then the data.
 * malloc'd; *size receives its length. */
uint8_t *tu_make_safetensors(const tu_tensor *t, size_t n, const char *metadata_json,
                             size_t *size);
/* A test that sees a bug reported and fixed earlier come back (its id,
 * "BUG-N name", ties it to the history): fails with both.  No bug is known
 * and open: the suite carries no skip-on-bug hooks. */
void tu_bug_returned(const char *id, const char *what);

/* ---- shared by the split codec, container and OpenCL suites ------------- */
/* The real checkpoint slices in tests/data (file names). */
extern const char *const TU_SLICES[3];
/* strdup that fails the test when out of memory. */
char *tu_strdup(const char *s);
/* tu_compress_over, failing the test with the library's error. */
void tu_compress_ok(const char *src, const char *dst, const ecf8_compress_options *options);
/* Trained-weight-like data of any coded dtype (FP8 E4M3/E5M2, BF16, F16):
 * n elements, little-endian, Gaussian values (tiny F16 ones subnormal);
 * malloc'd with one spare byte. */
void *tu_make_weights(ecf8_dtype dtype, size_t n, uint64_t seed);

#endif
