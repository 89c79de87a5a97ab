/* stream.c - the format rules every reader and writer of a coded stream
 * follows (docs/FORMAT.md, "Tensor payload"): chunk geometry, the payload
 * layout, validation, and opening a stream over a payload or its parts.
 *
 * A coded element is its symbol's code word followed by its raw bits, LSB
 * first; a chunk is the concatenation of its elements' bit strings, padded
 * to a byte.  Chunks are independent, so encoder and decoders parallelise
 * over chunks.  The encoder is stream_encode.c, the fast decoder
 * stream_decode.c, the reference decoder stream_reference.c. */
#include "stream.h"

#include <stdlib.h>

/* ---- geometry ------------------------------------------------------------ */
void ecf8_chunk_geometry(uint64_t rows, uint64_t cols, uint64_t target, uint64_t *chunk_rows,
                         uint64_t *chunk_cols, uint64_t *n_chunks)
{
    if (target == 0) target = ECF8_DEFAULT_CHUNK_ELEMENTS;
    if (target > ECF8_MAX_CHUNK_ELEMENTS) target = ECF8_MAX_CHUNK_ELEMENTS; /* what decoders accept */
    if (rows == 0 || cols == 0) {
        *chunk_rows = 1, *chunk_cols = 1, *n_chunks = 0;
        return;
    }
    if (cols <= target) {
        /* Whole rows per chunk: a GEMV work-group owns whole output rows. */
        *chunk_cols = cols;
        *chunk_rows = target / cols;
        if (*chunk_rows > rows) *chunk_rows = rows;
    } else {
        /* Long rows are cut into nearly equal segments, 64-aligned so that
         * matmul tiles never straddle two chunks needlessly. */
        uint64_t segs = (cols + target - 1) / target;
        uint64_t c = ecf8_align_up((cols + segs - 1) / segs, 64);
        *chunk_rows = 1;
        *chunk_cols = c < cols ? c : cols;
    }
    *n_chunks = ecf8_ceil_div(rows, *chunk_rows) * ecf8_ceil_div(cols, *chunk_cols);
}

uint64_t ecf8_chunk_start(const ecf8_stream *s, uint64_t chunk)
{
    uint64_t segs = ecf8_ceil_div(s->cols, s->chunk_cols);
    uint64_t row0 = chunk / segs * s->chunk_rows, col0 = chunk % segs * s->chunk_cols;
    return row0 * s->cols + col0;
}

uint64_t ecf8_chunk_elements(const ecf8_stream *s, uint64_t chunk)
{
    uint64_t segs = ecf8_ceil_div(s->cols, s->chunk_cols);
    uint64_t row0 = chunk / segs * s->chunk_rows, col0 = chunk % segs * s->chunk_cols;
    uint64_t nr = s->rows - row0 < s->chunk_rows ? s->rows - row0 : s->chunk_rows;
    uint64_t nc = s->cols - col0 < s->chunk_cols ? s->cols - col0 : s->chunk_cols;
    return nr * nc;
}

ecf8_stream ecf8_stream_band(const ecf8_stream *s, uint64_t band0, uint64_t band1)
{
    ecf8_stream b = *s;
    const uint64_t segs = ecf8_ceil_div(s->cols, s->chunk_cols), row0 = band0 * s->chunk_rows;
    uint64_t row1 = band1 * s->chunk_rows;
    if (row1 > s->rows) row1 = s->rows;
    b.rows = row1 - row0;
    b.n_elements = b.rows * s->cols;
    b.n_chunks = (band1 - band0) * segs;
    b.chunk_offsets = s->chunk_offsets + band0 * segs; /* offsets stay relative to coded */
    return b;
}

/* The 1.0 name of ecf8_chunk_elements, still exported (deprecated). */
uint64_t ecf8_chunk_count(const ecf8_stream *s, uint64_t chunk)
{
    return ecf8_chunk_elements(s, chunk);
}

bool ecf8_payload_layout_compute(unsigned n_symbols, uint64_t n_chunks, uint64_t coded_bytes,
                                 ecf8_payload_layout *out)
{
    uint64_t offsets_bytes, end;
    out->lengths_offset = 0;
    out->offsets_offset = ecf8_align_up(n_symbols / 2, 8); /* lengths: 4 bits each */
    if (!ecf8_add_u64(n_chunks, 1, &offsets_bytes) || !ecf8_mul_u64(offsets_bytes, 8, &offsets_bytes))
        return false;
    if (!ecf8_add_u64(out->offsets_offset, offsets_bytes, &out->coded_offset)) return false;
    if (!ecf8_add_u64(out->coded_offset, coded_bytes, &end)) return false;
    out->total_bytes = end;
    return true;
}

int ecf8_chunk_length_error(const ecf8_stream *s, uint64_t c, uint64_t bits)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu decodes to %llu bits, its stream holds %llu bytes",
                     (unsigned long long)c, (unsigned long long)bits,
                     (unsigned long long)(s->chunk_offsets[c + 1] - s->chunk_offsets[c]));
}

/* ---- validation ------------------------------------------------------------ */
int ecf8_stream_validate(const ecf8_stream *s) { return ecf8_stream_check(s, true); }

int ecf8_stream_check(const ecf8_stream *s, bool lane_tables)
{
    if (!s) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL stream");
    if (!s->coded || !s->chunk_offsets) /* CORRUPT, as ecf8.h says of every stream it refuses */
        return ecf8_fail(ECF8_ERR_CORRUPT, "stream without its coded bytes or chunk offsets (a tensor "
                         "of a file opened with ecf8_file_open_index: ecf8_file_read_tensor reads it)");
    ecf8_split_layout l;
    if (s->split != ECF8_SPLIT_EXPONENT && s->split != ECF8_SPLIT_BYTE)
        return ecf8_fail(ECF8_ERR_CORRUPT, "split %d is not a coded split", (int)s->split);
    if (ecf8_split_layout_get(s->dtype, s->split, &l))
        return ecf8_fail(ECF8_ERR_CORRUPT, "dtype %d cannot be coded", (int)s->dtype);
    if (s->n_symbols != 1u << l.symbol_bits)
        return ecf8_fail(ECF8_ERR_CORRUPT, "alphabet of %u symbols, expected %u", s->n_symbols,
                         1u << l.symbol_bits);
    if (s->code_bits > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "code length %u > %d", s->code_bits, ECF8_MAX_CODE_BITS);
    uint64_t n;
    if (!ecf8_mul_u64(s->rows, s->cols, &n) || n != s->n_elements || n == 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "shape %llux%llu does not hold %llu elements",
                         (unsigned long long)s->rows, (unsigned long long)s->cols,
                         (unsigned long long)s->n_elements);
    if (s->chunk_rows == 0 || s->chunk_cols == 0 || s->chunk_rows > s->rows ||
        s->chunk_cols > s->cols || (s->chunk_cols < s->cols && s->chunk_rows != 1))
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk geometry %llux%llu invalid for %llux%llu",
                         (unsigned long long)s->chunk_rows, (unsigned long long)s->chunk_cols,
                         (unsigned long long)s->rows, (unsigned long long)s->cols);
    uint64_t chunk_elems;
    if (!ecf8_mul_u64(s->chunk_rows, s->chunk_cols, &chunk_elems) || chunk_elems > ECF8_MAX_CHUNK_ELEMENTS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunks of %llux%llu elements exceed the limit of %u",
                         (unsigned long long)s->chunk_rows, (unsigned long long)s->chunk_cols,
                         ECF8_MAX_CHUNK_ELEMENTS);
    uint64_t expect = ecf8_ceil_div(s->rows, s->chunk_rows) * ecf8_ceil_div(s->cols, s->chunk_cols);
    if (s->n_chunks != expect)
        return ecf8_fail(ECF8_ERR_CORRUPT, "%llu chunks, geometry gives %llu",
                         (unsigned long long)s->n_chunks, (unsigned long long)expect);
    if (s->coded_bytes < 8 || !s->chunk_offsets || !s->coded)
        return ecf8_fail(ECF8_ERR_CORRUPT, "coded stream missing or shorter than its padding");
    uint16_t table[1u << ECF8_MAX_CODE_BITS];
    int st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, table);
    if (st) return ecf8_fail_context(st, "code lengths");
    unsigned longest = 0;
    for (unsigned i = 0; i < s->n_symbols; i++)
        if (s->lengths[i] > longest) longest = s->lengths[i];
    if (s->code_bits && s->code_bits != longest)
        return ecf8_fail(ECF8_ERR_CORRUPT, "code_bits %u, longest code %u", s->code_bits, longest);
    /* Every chunk lies inside the stream and is no longer than its longest
     * possible coding, so decoders need no per-symbol bounds checks. */
    const uint64_t limit = s->coded_bytes - 8, elem_bits = s->code_bits + l.raw_bits;
    if (s->chunk_offsets[0] != 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "first chunk offset %llu, expected 0",
                         (unsigned long long)s->chunk_offsets[0]);
    if (s->stream_layout > ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_CORRUPT, "unknown stream layout %u", s->stream_layout);
    const bool lanes = s->stream_layout == ECF8_STREAM_LAYOUT_LANES;
    if (lanes && chunk_elems > ECF8_MAX_LANE_CHUNK_ELEMENTS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "layout-1 chunks of %llu elements exceed the limit of %u",
                         (unsigned long long)chunk_elems, ECF8_MAX_LANE_CHUNK_ELEMENTS);
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        uint64_t a = s->chunk_offsets[c], b = s->chunk_offsets[c + 1];
        if (b < a || b > limit)
            return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu spans bytes %llu..%llu of a %llu-byte stream",
                             (unsigned long long)c, (unsigned long long)a, (unsigned long long)b,
                             (unsigned long long)limit);
        if (lanes && !lane_tables) {
            if (a % 4 || b % 4) /* what ecf8_lane_chunk_parse checks first */
                return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu spans bytes %llu..%llu, not on 4-byte boundaries",
                                 (unsigned long long)c, (unsigned long long)a, (unsigned long long)b);
            continue;
        }
        if (lanes) {
            ecf8_lane_chunk lc;
            int st2 = ecf8_lane_chunk_parse(s, &l, c, &lc);
            if (st2) return st2;
            continue;
        }
        if (b - a > (ecf8_chunk_elements(s, c) * elem_bits + 7) / 8)
            return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu is longer than any coding of it",
                             (unsigned long long)c);
    }
    if (s->chunk_offsets[s->n_chunks] != limit)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunks end at byte %llu, stream has %llu",
                         (unsigned long long)s->chunk_offsets[s->n_chunks],
                         (unsigned long long)limit);
    return ECF8_OK;
}

/* ---- opening a stream over a payload ------------------------------------------ */
/* A (dtype, split) pair split_layouts.def has no row for (U8 claiming the
 * exponent split). */
static int split_invalid(const ecf8_stream_geometry *g)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "%s split invalid for dtype %s", ecf8_split_name(g->split),
                     ecf8_dtype_name(g->dtype));
}

int ecf8_stream_open_parts(const ecf8_stream_geometry *g, const uint8_t *packed_lengths,
                           const void *offsets, uint64_t offsets_bytes, const void *coded,
                           uint64_t coded_avail, ecf8_stream *out)
{
    ecf8_stream s = {.dtype = g->dtype, .split = g->split, .code_bits = g->code_bits,
                     .rows = g->rows, .cols = g->cols, .chunk_rows = g->chunk_rows,
                     .chunk_cols = g->chunk_cols, .coded_bytes = g->coded_bytes,
                     .stream_layout = g->stream_layout};
    ecf8_split_layout l;
    if (ecf8_split_layout_row(g->dtype, g->split, &l) < 0) return split_invalid(g);
    s.n_symbols = 1u << l.symbol_bits;
    if (!ecf8_mul_u64(g->rows, g->cols, &s.n_elements) || s.n_elements == 0 ||
        g->chunk_rows == 0 || g->chunk_cols == 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "bad tensor geometry");
    s.n_chunks = ecf8_ceil_div(g->rows, g->chunk_rows) * ecf8_ceil_div(g->cols, g->chunk_cols);
    if (s.n_chunks >= offsets_bytes / 8) /* n_chunks + 1 offsets must fit */
        return ecf8_fail(ECF8_ERR_CORRUPT, "%llu chunks need %llu offset bytes, %llu are there",
                         (unsigned long long)s.n_chunks, (unsigned long long)(s.n_chunks + 1) * 8,
                         (unsigned long long)offsets_bytes);
    if (coded_avail != g->coded_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "coded stream is %llu bytes, the entry says %llu",
                         (unsigned long long)coded_avail, (unsigned long long)g->coded_bytes);
    for (unsigned i = 0; i < s.n_symbols; i++)
        s.lengths[i] = (packed_lengths[i / 2] >> (4 * (i & 1))) & 15;
    s.chunk_offsets = offsets;
    s.coded = coded;
    if ((uintptr_t)s.chunk_offsets % 8)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk offsets not 8-byte aligned");
    int st = ecf8_stream_check(&s, !g->coded_later);
    if (st) return st;
    *out = s;
    return ECF8_OK;
}

int ecf8_stream_open_payload(const ecf8_stream_geometry *g, const void *payload,
                             uint64_t payload_bytes, ecf8_stream *out, uint64_t **offsets_copy)
{
    ecf8_split_layout l;
    uint64_t n_chunks;
    if (ecf8_split_layout_row(g->dtype, g->split, &l) < 0) return split_invalid(g);
    if (g->chunk_rows == 0 || g->chunk_cols == 0 ||
        !ecf8_mul_u64(ecf8_ceil_div(g->rows, g->chunk_rows), ecf8_ceil_div(g->cols, g->chunk_cols),
                      &n_chunks))
        return ecf8_fail(ECF8_ERR_CORRUPT, "bad tensor geometry");
    ecf8_payload_layout lay = {0}; /* printed below even when the layout overflows */
    if (!ecf8_payload_layout_compute(1u << l.symbol_bits, n_chunks, g->coded_bytes, &lay) ||
        lay.total_bytes != payload_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "payload is %llu bytes, its layout needs %llu",
                         (unsigned long long)payload_bytes, (unsigned long long)lay.total_bytes);
    const uint8_t *p = payload;
    const void *offsets = p + lay.offsets_offset;
    uint64_t offsets_bytes = lay.coded_offset - lay.offsets_offset;
    uint64_t *copy = NULL;
    if (offsets_copy && n_chunks < offsets_bytes / 8) { /* else open_parts reports it */
        offsets_bytes = (n_chunks + 1) * 8;
        if (!(copy = malloc((size_t)offsets_bytes))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        memcpy(copy, offsets, (size_t)offsets_bytes);
        offsets = copy;
    }
    int st = ecf8_stream_open_parts(g, p + lay.lengths_offset, offsets, offsets_bytes,
                                    p + lay.coded_offset, payload_bytes - lay.coded_offset, out);
    if (st) free(copy);
    else if (offsets_copy) *offsets_copy = copy;
    return st;
}

/* The encoder's options, here so that a decode-only build (which has no
 * encoder) still fills them for ecf8_inspect_path. */
void ecf8_compress_options_init(ecf8_compress_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->split = ECF8_SPLIT_AUTO;
    o->max_code_bits = ECF8_DEFAULT_CODE_BITS;
    o->chunk_elements = ECF8_DEFAULT_CHUNK_ELEMENTS;
}

int ecf8_compress_options_read(const ecf8_compress_options *in, ecf8_compress_options *out,
                               const char *what)
{
    ecf8_compress_options_init(out);
    if (!in) return ECF8_OK;
    if (in->struct_size && in->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: options struct too small", what);
    memcpy(out, in, in->struct_size && in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    return ECF8_OK;
}
