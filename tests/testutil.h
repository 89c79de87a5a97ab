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
/* Whole file into malloc'd memory (NULL on failure). */
uint8_t *tu_read_file(const char *path, size_t *size);
int tu_write_file(const char *path, const void *data, size_t size);
/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t tu_rand(uint64_t *state);
/* FP8 E4M3 bytes drawn like trained weights: |w| ~ Laplace around 2^-4,
 * exponents concentrated, random sign and mantissa. */
void tu_fill_weights_e4m3(uint8_t *out, size_t n, uint64_t seed);

#endif
