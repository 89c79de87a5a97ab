/* stream_decode.h - what the CPU decoder (stream_decode.c) shares with
 * codebook.c, the OpenCL runtime and the tests. */
#ifndef ECF8_STREAM_DECODE_H
#define ECF8_STREAM_DECODE_H

#include "ecf8.h"

#include <stdbool.h>
#include <stdint.h>

/* ecf8_stream_decode, which picks the fastest decoder the CPU runs; with
 * `portable` the one for the baseline instruction set instead (the tests
 * run both). */
int ecf8_stream_decode_isa(const ecf8_stream *s, void *out, size_t out_bytes, unsigned threads,
                           bool portable);

/* The checks of ecf8_decode_table_build without the table: lengths within
 * table_bits forming a complete code (or the one-symbol code of 0 bits). */
int ecf8_code_check(const uint8_t *lengths, unsigned n_symbols, unsigned table_bits);

/* The pair table of an FP8 stream whose elements (code word + raw bits)
 * are at most ECF8_PAIR_BITS long: indexed by the next ECF8_PAIR_BITS bits
 * of the stream (LSB first), an entry decodes one element, or two when
 * both fit.  Entry: the output bytes in bits 0-15 (the second byte is
 * meaningful only for two elements), the bits consumed in 16-21, the
 * length of the first element alone in 24-27, the element count (1 or 2)
 * in 30-31.  Used by the CPU decoder and uploaded for the OpenCL CPU
 * kernel.  Checks the code lengths; ECF8_ERR_ARGUMENT for streams it does
 * not fit. */
#define ECF8_PAIR_BITS 13
int ecf8_pair_table_build(const ecf8_stream *s, uint32_t *pairs);

#endif
