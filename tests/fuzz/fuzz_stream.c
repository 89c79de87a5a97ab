/* fuzz_stream.c - the chunk decoder.
 *
 * Builds an ecf8_stream directly from the input (geometry, code lengths,
 * chunk offsets and coded bytes), so that the checks of
 * ecf8_stream_validate are attacked without the container in front of
 * them.  When the stream validates:
 *   - its chunks must tile the tensor (contiguous, covering n_elements),
 *   - ecf8_stream_decode and ecf8_stream_decode_reference must agree:
 *     both fail, or both succeed with identical output,
 *   - neither may touch memory outside the coded bytes or the output (ASan).
 *
 * Input layout (little-endian, zeros past the end):
 *   u8 dtype (mod 10), u8 split (mod 4), u8 code_bits (mod 16), u8 flags
 *   flags bit 0: code lengths as n_symbols raw bytes, else 4-bit nibbles
 *         bit 1: geometry as 4 x u64 (rows, cols, chunk_rows, chunk_cols),
 *                else 4 x u16
 *         bit 2: n_chunks as a raw u64, else computed like the reader does
 *         bit 3: chunk offsets as raw u64s and coded_bytes = the rest + 8,
 *                else u16 chunk sizes and coded_bytes = their sum + 8
 *         bit 4: n_elements as a raw u64, else rows * cols (wrapping)
 *         bit 5: decode with 2 threads, else 1
 *   geometry, [n_elements], [n_chunks], lengths, offsets, coded bytes. */
#include "fuzz_common.h"

#define MAX_CHUNKS (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size, 0};
    ecf8_stream s;
    memset(&s, 0, sizeof s);
    s.dtype = (ecf8_dtype)(fuzz_take(&r, 1) % 10);
    s.split = (ecf8_split)(fuzz_take(&r, 1) % 4);
    s.code_bits = (unsigned)(fuzz_take(&r, 1) % 16);
    unsigned flags = (unsigned)fuzz_take(&r, 1);
    unsigned gw = flags & 2 ? 8 : 2;
    s.rows = fuzz_take(&r, gw);
    s.cols = fuzz_take(&r, gw);
    s.chunk_rows = fuzz_take(&r, gw);
    s.chunk_cols = fuzz_take(&r, gw);
    s.n_elements = flags & 16 ? fuzz_take(&r, 8) : s.rows * s.cols;
    ecf8_split_layout l;
    s.n_symbols = ecf8_split_layout_get(s.dtype, s.split, &l) == ECF8_OK ? 1u << l.symbol_bits : 256;
    if (flags & 1) {
        for (unsigned i = 0; i < s.n_symbols; i++) s.lengths[i] = (uint8_t)fuzz_take(&r, 1);
    } else {
        for (unsigned i = 0; i < s.n_symbols; i += 2) {
            unsigned b = (unsigned)fuzz_take(&r, 1);
            s.lengths[i] = b & 15;
            s.lengths[i + 1] = (uint8_t)(b >> 4);
        }
    }
    if (flags & 4) {
        s.n_chunks = fuzz_take(&r, 8);
    } else if (s.chunk_rows && s.chunk_cols) {
        /* As ecf8_stream_open_payload computes it (wrapping arithmetic). */
        s.n_chunks = ((s.rows + s.chunk_rows - 1) / s.chunk_rows) *
                     ((s.cols + s.chunk_cols - 1) / s.chunk_cols);
    }
    if (s.n_chunks >= MAX_CHUNKS) return 0; /* the harness cannot supply the offsets */

    uint64_t *offsets = calloc(s.n_chunks + 1, sizeof *offsets);
    if (!offsets) return 0;
    uint8_t *coded = NULL;
    if (flags & 8) {
        for (uint64_t c = 0; c <= s.n_chunks; c++) offsets[c] = fuzz_take(&r, 8);
        size_t left = fuzz_left(&r);
        s.coded_bytes = left + 8;
        coded = malloc(s.coded_bytes);
        if (left) memcpy(coded, data + r.pos, left);
        memset(coded + left, 0, 8);
    } else {
        for (uint64_t c = 0; c < s.n_chunks; c++) offsets[c + 1] = offsets[c] + fuzz_take(&r, 2);
        size_t left = fuzz_left(&r);
        s.coded_bytes = offsets[s.n_chunks] + 8;
        if (s.coded_bytes > FUZZ_MAX_DECODED) {
            free(offsets);
            return 0;
        }
        coded = calloc(s.coded_bytes, 1);
        if (coded) memcpy(coded, data + r.pos, left < s.coded_bytes ? left : s.coded_bytes);
    }
    if (!coded) {
        free(offsets);
        return 0;
    }
    s.chunk_offsets = offsets;
    s.coded = coded;

    int valid = ecf8_stream_validate(&s);
    if (getenv("ECF8_FUZZ_VERBOSE"))
        fprintf(stderr, "stream %llux%llu in %llux%llu, %llu chunks: validate %d %s\n",
                (unsigned long long)s.rows, (unsigned long long)s.cols,
                (unsigned long long)s.chunk_rows, (unsigned long long)s.chunk_cols,
                (unsigned long long)s.n_chunks, valid, ecf8_last_error());
    if (valid == ECF8_OK && !fuzz_known_chunk_wrap(&s) && !fuzz_known_long_one_symbol(&s)) {
        /* Chunks are contiguous ranges in order and cover the tensor. */
        uint64_t at = 0;
        for (uint64_t c = 0; c < s.n_chunks; c++) {
            uint64_t start = ecf8_chunk_start(&s, c), count = ecf8_chunk_elements(&s, c);
            FUZZ_CHECK(start == at, "chunk %llu starts at %llu, previous ended at %llu",
                       (unsigned long long)c, (unsigned long long)start, (unsigned long long)at);
            FUZZ_CHECK(count > 0 && count <= s.chunk_rows * s.chunk_cols,
                       "chunk %llu holds %llu elements", (unsigned long long)c,
                       (unsigned long long)count);
            at += count;
        }
        FUZZ_CHECK(at == s.n_elements,
                   "validated stream: %llu chunks cover %llu of %llu elements (%llux%llu in %llux%llu)",
                   (unsigned long long)s.n_chunks, (unsigned long long)at,
                   (unsigned long long)s.n_elements, (unsigned long long)s.rows,
                   (unsigned long long)s.cols, (unsigned long long)s.chunk_rows,
                   (unsigned long long)s.chunk_cols);
        size_t out_bytes = (size_t)s.n_elements * ecf8_dtype_size(s.dtype);
        /* Small outputs keep the run fast; the container target decodes big ones. */
        if (out_bytes <= (4u << 20)) {
            uint8_t *fast = malloc(out_bytes ? out_bytes : 1);
            uint8_t *ref = malloc(out_bytes ? out_bytes : 1);
            if (fast && ref) {
                memset(fast, 0xA5, out_bytes);
                memset(ref, 0x5A, out_bytes);
                int st_fast = ecf8_stream_decode(&s, fast, out_bytes, flags & 32 ? 2 : 1);
                int st_ref = ecf8_stream_decode_reference(&s, ref, out_bytes);
                FUZZ_CHECK((st_fast == ECF8_OK) == (st_ref == ECF8_OK),
                           "fast decoder says %d, reference says %d", st_fast, st_ref);
                if (st_fast == ECF8_OK)
                    FUZZ_CHECK(!memcmp(fast, ref, out_bytes), "decoders disagree on the output");
            }
            free(fast);
            free(ref);
        }
    }
    free(offsets);
    free(coded);
    return 0;
}
