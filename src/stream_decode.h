/* stream_decode.h - what the CPU decoder shares with codebook.c and the
 * tests. */
#ifndef ECF8_STREAM_DECODE_H
#define ECF8_STREAM_DECODE_H

#include "ecf8.h"

#include <stdbool.h>
#include <stdint.h>

/* ecf8_stream_decode, which picks the fastest decoder the CPU runs; with
 * `portable` the one for the baseline instruction set instead. */
int ecf8_stream_decode_isa(const ecf8_stream *s, void *out, size_t out_bytes, unsigned threads,
                           bool portable);

/* The checks of ecf8_decode_table_build without the table: lengths within
 * table_bits forming a complete code (or the one-symbol code of 0 bits). */
int ecf8_code_check(const uint8_t *lengths, unsigned n_symbols, unsigned table_bits);

#endif
