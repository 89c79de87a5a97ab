/* stream_decode.h - the CPU decoder's instruction-set choice, for tests. */
#ifndef ECF8_STREAM_DECODE_H
#define ECF8_STREAM_DECODE_H

#include "ecf8.h"

#include <stdbool.h>

/* ecf8_stream_decode, which picks the fastest decoder the CPU runs; with
 * `portable` the one for the baseline instruction set instead. */
int ecf8_stream_decode_isa(const ecf8_stream *s, void *out, size_t out_bytes, unsigned threads,
                           bool portable);

#endif
