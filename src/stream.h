/* stream.h - the format rules the stream_*.c files share: split layouts by
 * row of split_layouts.def, element <-> (symbol, raw bits), the chunk size
 * limit.  What other parts of the library call (stream geometry, payload
 * layout, opening a stream) is in internal.h. */
#ifndef ECF8_STREAM_H
#define ECF8_STREAM_H

#include "internal.h"

/* Hostile files must not make the decoder allocate or loop without bound:
 * the most elements a chunk may have (encoders never make larger ones). */
#define ECF8_MAX_CHUNK_ELEMENTS (1u << 22)

/* The rows of split_layouts.def, in order. */
enum ecf8_split_layout_row {
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SYMBOL_SHIFT, SYMBOL_BITS) \
    ECF8_LAYOUT_##NAME,
#include "split_layouts.def"
    ECF8_LAYOUT_COUNT
};

/* The row of (dtype, split) in split_layouts.def, -1 when there is none;
 * *out (may be NULL) gets its layout. */
int ecf8_split_layout_row(ecf8_dtype dtype, ecf8_split split, ecf8_split_layout *out);

/* The layout of the field ecf8_tensor_analysis counts as "exponent": the
 * exponent split's, or the byte split's for a dtype that has no exponent
 * split (U8, I8, F8_E8M0: the whole byte). */
static inline int ecf8_field_layout(ecf8_dtype dtype, ecf8_split_layout *out)
{
    if (ecf8_split_layout_row(dtype, ECF8_SPLIT_EXPONENT, out) >= 0) return ECF8_OK;
    return ecf8_split_layout_get(dtype, ECF8_SPLIT_BYTE, out);
}

/* The coded symbol of element x. */
static inline unsigned ecf8_element_symbol(unsigned x, const ecf8_split_layout *l)
{
    return (x >> l->symbol_shift) & ((1u << l->symbol_bits) - 1);
}

/* The element of symbol `sym` and raw bits `raw` (the bits below the
 * symbol first, then those above it). */
static inline unsigned ecf8_element_join(unsigned sym, unsigned raw, const ecf8_split_layout *l)
{
    unsigned low = raw & ((1u << l->symbol_shift) - 1);
    return (raw >> l->symbol_shift) << (l->symbol_shift + l->symbol_bits) |
           sym << l->symbol_shift | low;
}

/* ECF8_ERR_CORRUPT for chunk c of s, which decoded to `bits` bits that do
 * not fill exactly its bytes (what every decoder checks at a chunk's end). */
int ecf8_chunk_length_error(const ecf8_stream *s, uint64_t c, uint64_t bits);

/* ---- layout 1, lane streams (stream_lanes.c) ---------------------------- */
#define ECF8_LANES 32
#define ECF8_LANE_ESCAPE 0xffffu /* lane-table base that says 32 u16 lengths follow */
/* Where the parts of layout-1 chunk c lie, from its lane table. */
typedef struct ecf8_lane_chunk {
    uint64_t count;                 /* elements */
    uint32_t start[ECF8_LANES + 1]; /* lane bit offsets from the first lane's start */
    unsigned table_bytes;           /* 36, or 68 with the escape */
    uint64_t raw_offset;            /* raw plane, bytes from the chunk start */
} ecf8_lane_chunk;
/* Elements lane `lane` codes of a chunk of `count` elements, q a word. */
uint64_t ecf8_lane_elements(uint64_t count, unsigned q, unsigned lane);
/* Reads and checks chunk c's lane table (lengths within what its symbols
 * can take, sizes adding up to the chunk): ECF8_ERR_CORRUPT otherwise. */
int ecf8_lane_chunk_parse(const ecf8_stream *s, const ecf8_split_layout *l, uint64_t c,
                          ecf8_lane_chunk *out);
/* The decoder (stream_lanes_decode.c; `row` is the split layout's row,
 * `portable` as for ecf8_stream_decode_isa). */
int ecf8_lanes_decode(const ecf8_stream *s, const ecf8_split_layout *l, int row, void *out,
                      unsigned threads, bool portable);
int ecf8_lanes_decode_reference(const ecf8_stream *s, const ecf8_split_layout *l, void *out);

#endif
