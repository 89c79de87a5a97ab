/* stream_lanes.c - stream layout 1, "lane streams" (docs/FORMAT.md 4.4):
 * the lane tables and their checks, and the plain
 * bit writer that builds a payload of either layout from elements and a
 * code (the layout-1 encoder, and transcoding between layouts).  The
 * decoder is stream_lanes_decode.c.
 *
 * A layout-1 chunk is its lane table (36 bytes: u16 base and 32 u8
 * deltas, or 68: base 0xffff and 32 u16 lengths, each with 2 zero bytes),
 * then 32 bit streams concatenated bit-contiguously in lane order and
 * padded to 4 bytes, then (R > 0) the raw plane: count * R bits in element
 * order, padded to 4 bytes.  Lane l codes the symbols of the chunk's
 * 32-bit words l, l + 32, ... (4 FP8 or 2 16-bit elements per word; the
 * last word may be partial and codes only the elements there are). */
#include "stream.h"
#include "stream_decode.h"

#include <stdlib.h>

uint64_t ecf8_layout_chunk_target(unsigned stream_layout, uint64_t chunk_elements)
{
    if (stream_layout != ECF8_STREAM_LAYOUT_LANES) return chunk_elements;
    if (chunk_elements == 0 || chunk_elements == ECF8_DEFAULT_CHUNK_ELEMENTS)
        return ECF8_DEFAULT_LANE_CHUNK_ELEMENTS;
    return chunk_elements > ECF8_MAX_LANE_CHUNK_ELEMENTS ? ECF8_MAX_LANE_CHUNK_ELEMENTS
                                                         : chunk_elements;
}

uint64_t ecf8_lane_elements(uint64_t count, unsigned q, unsigned lane)
{
    uint64_t words = ecf8_ceil_div(count, q);
    if (words <= lane) return 0;
    uint64_t n = (words - lane + ECF8_LANES - 1) / ECF8_LANES * q;
    if ((words - 1) % ECF8_LANES == lane) n -= words * q - count;
    return n;
}

static uint64_t align4_bits(uint64_t bits) { return ecf8_align_up(ecf8_ceil_div(bits, 8), 4); }

int ecf8_lane_chunk_parse(const ecf8_stream *s, const ecf8_split_layout *l, uint64_t c,
                          ecf8_lane_chunk *out)
{
    const unsigned long long cc = (unsigned long long)c;
    const uint64_t off = s->chunk_offsets[c], bytes = s->chunk_offsets[c + 1] - off;
    const uint8_t *p = s->coded + off;
    const unsigned q = 32 / l->element_bits;
    out->count = ecf8_chunk_elements(s, c);
    if (off % 4 || bytes % 4)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu spans bytes %llu..%llu, not on 4-byte boundaries",
                         cc, (unsigned long long)off, (unsigned long long)(off + bytes));
    if (bytes < 36)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu: %llu bytes, too short for its lane table", cc,
                         (unsigned long long)bytes);
    unsigned base = p[0] | (unsigned)p[1] << 8, lens[ECF8_LANES];
    bool escape = base == ECF8_LANE_ESCAPE;
    out->table_bytes = escape ? 68 : 36;
    if (bytes < out->table_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu: %llu bytes, too short for its lane table", cc,
                         (unsigned long long)bytes);
    for (unsigned k = 0; k < ECF8_LANES; k++)
        lens[k] = escape ? (unsigned)p[2 + 2 * k] | (unsigned)p[3 + 2 * k] << 8 : base + p[2 + k];
    if (p[out->table_bytes - 2] || p[out->table_bytes - 1])
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu: lane table padding not zero", cc);
    out->start[0] = 0;
    for (unsigned k = 0; k < ECF8_LANES; k++) {
        uint64_t most = ecf8_lane_elements(out->count, q, k) * s->code_bits;
        if (lens[k] > most)
            return ecf8_fail(ECF8_ERR_CORRUPT,
                             "chunk %llu lane %u: %u bits, more than its symbols can take (%llu)",
                             cc, k, lens[k], (unsigned long long)most);
        out->start[k + 1] = out->start[k] + lens[k];
    }
    out->raw_offset = out->table_bytes + align4_bits(out->start[ECF8_LANES]);
    uint64_t want = out->raw_offset + align4_bits(out->count * l->raw_bits);
    if (want != bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT,
                         "chunk %llu: lane table gives %u lane bits and %llu bytes, the chunk holds %llu",
                         cc, out->start[ECF8_LANES], (unsigned long long)want,
                         (unsigned long long)bytes);
    return ECF8_OK;
}

/* ---- building a payload of either layout ------------------------------------ */
#define LANES_GROUP 8 /* chunks per task */

typedef struct build_job {
    const uint8_t *data;   /* the elements from chunk c0's first */
    ecf8_split_layout l;
    const ecf8_stream *s;
    uint64_t c0, c1;       /* the chunks built: [c0, c1) */
    uint64_t base;         /* element index of data[0]: chunk c0's start */
    uint32_t entries[256]; /* code word | length << 16; ENTRY_ABSENT: no word */
    uint64_t *chunk_bytes; /* size pass; index c - c0 */
    uint32_t *lane_bits;   /* layout 1: 32 per chunk, index (c - c0) * 32 */
    const uint64_t *offsets; /* write pass: chunk c at coded + offsets[c - c0] */
    uint8_t *coded;        /* write pass, when set */
} build_job;

#define ENTRY_ABSENT (1u << 31)

static inline unsigned element_at(const uint8_t *d, uint64_t i, unsigned W)
{
    return W == 1 ? d[i] : (unsigned)d[2 * i] | (unsigned)d[2 * i + 1] << 8;
}

/* ORs the n (<= 24) low bits of v in at bit *pos, byte by byte: chunks are
 * written in parallel, so no store may touch a byte outside this one's. */
static inline void put_bits(uint8_t *dst, uint64_t *pos, uint32_t v, unsigned n)
{
    if (!n) return;
    uint8_t *p = dst + *pos / 8;
    uint32_t w = v << (*pos & 7);
    for (unsigned have = (unsigned)(*pos & 7) + n; ; have -= 8, w >>= 8) {
        *p++ |= (uint8_t)w;
        if (have <= 8) break;
    }
    *pos += n;
}

static int build_chunk(build_job *j, uint64_t c)
{
    const ecf8_stream *s = j->s;
    const unsigned W = j->l.element_bits / 8, q = 4 / W, R = j->l.raw_bits;
    const unsigned SH = j->l.symbol_shift, S = j->l.symbol_bits;
    const uint64_t n = ecf8_chunk_elements(s, c), k0 = c - j->c0;
    const uint8_t *d = j->data + (ecf8_chunk_start(s, c) - j->base) * W;
    uint32_t absent = 0;
    if (s->stream_layout == ECF8_STREAM_LAYOUT_SERIAL) {
        uint64_t pos = 0;
        uint8_t *dst = j->coded ? j->coded + j->offsets[k0] : NULL;
        for (uint64_t i = 0; i < n; i++) {
            unsigned x = element_at(d, i, W);
            uint32_t e = j->entries[(x >> SH) & ((1u << S) - 1)];
            absent |= e;
            if (!dst) {
                pos += ((e >> 16) & 31) + R;
                continue;
            }
            if (ecf8_ceil_div(pos + ((e >> 16) & 31) + R, 8) > j->chunk_bytes[k0]) return ECF8_ERR_IO;
            put_bits(dst, &pos, e & 0xffff, (e >> 16) & 31);
            put_bits(dst, &pos, (x >> (SH + S)) << SH | (x & ((1u << SH) - 1)), R);
        }
        if (absent & ENTRY_ABSENT) return ECF8_ERR_IO;
        if (!dst) j->chunk_bytes[k0] = ecf8_ceil_div(pos, 8);
        else if (ecf8_ceil_div(pos, 8) != j->chunk_bytes[k0]) return ECF8_ERR_IO;
        return ECF8_OK;
    }
    uint32_t *lens = j->lane_bits + k0 * ECF8_LANES;
    const uint64_t words = ecf8_ceil_div(n, q);
    if (!j->coded) {
        uint64_t total = 0;
        for (unsigned k = 0; k < ECF8_LANES; k++) {
            uint64_t bits = 0;
            for (uint64_t w = k; w < words; w += ECF8_LANES)
                for (uint64_t i = w * q; i < (w + 1) * q && i < n; i++) {
                    uint32_t e = j->entries[(element_at(d, i, W) >> SH) & ((1u << S) - 1)];
                    absent |= e;
                    bits += (e >> 16) & 31;
                }
            lens[k] = (uint32_t)bits;
            total += bits;
        }
        if (absent & ENTRY_ABSENT) return ECF8_ERR_IO;
        unsigned lo = UINT32_MAX, hi = 0;
        for (unsigned k = 0; k < ECF8_LANES; k++) {
            if (lens[k] < lo) lo = lens[k];
            if (lens[k] > hi) hi = lens[k];
        }
        j->chunk_bytes[k0] = (hi - lo > 255 ? 68 : 36) + align4_bits(total) + align4_bits(n * R);
        return ECF8_OK;
    }
    uint8_t *dst = j->coded + j->offsets[k0];
    unsigned lo = UINT32_MAX, hi = 0;
    uint64_t total = 0;
    for (unsigned k = 0; k < ECF8_LANES; k++) {
        if (lens[k] < lo) lo = lens[k];
        if (lens[k] > hi) hi = lens[k];
        total += lens[k];
    }
    unsigned table = hi - lo > 255 ? 68 : 36;
    if (table == 36) {
        dst[0] = (uint8_t)lo, dst[1] = (uint8_t)(lo >> 8);
        for (unsigned k = 0; k < ECF8_LANES; k++) dst[2 + k] = (uint8_t)(lens[k] - lo);
    } else {
        dst[0] = dst[1] = 0xff;
        for (unsigned k = 0; k < ECF8_LANES; k++)
            dst[2 + 2 * k] = (uint8_t)lens[k], dst[3 + 2 * k] = (uint8_t)(lens[k] >> 8);
    }
    uint8_t *lanes = dst + table, *plane = lanes + align4_bits(total);
    uint64_t pos = 0, rpos = 0, lane_end = 0;
    for (unsigned k = 0; k < ECF8_LANES; k++) {
        lane_end += lens[k];
        for (uint64_t w = k; w < words; w += ECF8_LANES)
            for (uint64_t i = w * q; i < (w + 1) * q && i < n; i++) {
                uint32_t e = j->entries[(element_at(d, i, W) >> SH) & ((1u << S) - 1)];
                if (pos + ((e >> 16) & 31) > lane_end || (e & ENTRY_ABSENT)) return ECF8_ERR_IO;
                put_bits(lanes, &pos, e & 0xffff, (e >> 16) & 31);
            }
        if (pos != lane_end) return ECF8_ERR_IO;
    }
    for (uint64_t i = 0; i < n && R; i++) {
        unsigned x = element_at(d, i, W);
        put_bits(plane, &rpos, (x >> (SH + S)) << SH | (x & ((1u << SH) - 1)), R);
    }
    return ECF8_OK;
}

static int build_task(void *ctx, uint64_t group)
{
    build_job *j = ctx;
    uint64_t c1 = j->c0 + (group + 1) * LANES_GROUP;
    if (c1 > j->c1) c1 = j->c1;
    for (uint64_t c = j->c0 + group * LANES_GROUP; c < c1; c++)
        if (build_chunk(j, c))
            return ecf8_fail(ECF8_ERR_IO, "input changed during compression (chunk %llu: "
                             "not the size it had, or a symbol the code has no word for)",
                             (unsigned long long)c);
    return ECF8_OK;
}

/* The bit writer's table of the code in s (its lengths and code_bits). */
static int build_entries(const ecf8_stream *s, uint32_t entries[256])
{
    uint16_t codes[256];
    int st = ecf8_canonical_codes(s->lengths, s->n_symbols, codes);
    if (st) return st;
    for (unsigned i = 0; i < s->n_symbols; i++)
        entries[i] = !s->lengths[i] ? ENTRY_ABSENT
                   : s->code_bits ? codes[i] | (uint32_t)s->lengths[i] << 16 : 0;
    return ECF8_OK;
}

int ecf8_stream_build_range(const ecf8_stream *s, const void *data, uint64_t c0, uint64_t c1,
                            unsigned threads, uint64_t *chunk_bytes, uint32_t *lane_bits,
                            const uint64_t *offsets, uint8_t *coded)
{
    build_job j = {.data = data, .s = s, .c0 = c0, .c1 = c1, .base = ecf8_chunk_start(s, c0),
                   .chunk_bytes = chunk_bytes, .lane_bits = lane_bits, .offsets = offsets,
                   .coded = coded};
    int st = ecf8_split_layout_get(s->dtype, s->split, &j.l);
    if (!st) st = build_entries(s, j.entries);
    if (!st) st = ecf8_parallel_for(threads, ecf8_ceil_div(c1 - c0, LANES_GROUP), build_task, &j);
    return st;
}

int ecf8_stream_build(const ecf8_stream *code, const void *data, unsigned threads,
                      uint8_t **payload, size_t *payload_bytes, ecf8_stream *out)
{
    ecf8_stream s = *code;
    build_job j = {.data = data, .s = &s};
    int st = ecf8_split_layout_get(s.dtype, s.split, &j.l);
    if (st) return st;
    s.n_symbols = 1u << j.l.symbol_bits;
    s.n_elements = s.rows * s.cols;
    s.n_chunks = ecf8_ceil_div(s.rows, s.chunk_rows) * ecf8_ceil_div(s.cols, s.chunk_cols);
    j.c1 = s.n_chunks;
    if ((st = build_entries(&s, j.entries))) return st;
    j.chunk_bytes = malloc((s.n_chunks + 1) * sizeof *j.chunk_bytes);
    j.lane_bits = malloc((s.n_chunks + 1) * ECF8_LANES * sizeof *j.lane_bits);
    uint8_t *p = NULL;
    if (!j.chunk_bytes || !j.lane_bits) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        goto done;
    }
    const uint64_t groups = ecf8_ceil_div(s.n_chunks, LANES_GROUP);
    if ((st = ecf8_parallel_for(threads, groups, build_task, &j))) goto done; /* sizes */
    uint64_t total = 0;
    for (uint64_t c = 0; c < s.n_chunks; c++) total += j.chunk_bytes[c];
    s.coded_bytes = total + 8;
    ecf8_payload_layout lay;
    if (!ecf8_payload_layout_compute(s.n_symbols, s.n_chunks, s.coded_bytes, &lay)) {
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "tensor too large");
        goto done;
    }
    if (!(p = calloc(1, lay.total_bytes))) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte payload",
                       (unsigned long long)lay.total_bytes);
        goto done;
    }
    for (unsigned i = 0; i < s.n_symbols; i += 2)
        p[lay.lengths_offset + i / 2] = (uint8_t)(s.lengths[i] | s.lengths[i + 1] << 4);
    uint64_t *offsets = (uint64_t *)(void *)(p + lay.offsets_offset), off = 0;
    for (uint64_t c = 0; c <= s.n_chunks; c++) {
        offsets[c] = off;
        if (c < s.n_chunks) off += j.chunk_bytes[c];
    }
    s.chunk_offsets = j.offsets = offsets;
    s.coded = j.coded = p + lay.coded_offset;
    if ((st = ecf8_parallel_for(threads, groups, build_task, &j))) goto done; /* bits */
    *payload = p, *payload_bytes = lay.total_bytes, *out = s;
    p = NULL;
done:
    free(p);
    free(j.chunk_bytes);
    free(j.lane_bits);
    return st;
}

int ecf8_stream_relayout(const ecf8_stream *s, unsigned layout, uint64_t chunk_elements,
                         unsigned threads, uint8_t **payload, size_t *payload_bytes,
                         ecf8_stream *out)
{
    if (layout > ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "stream layout %u (0 or 1)", layout);
    unsigned width = ecf8_dtype_size(s->dtype);
    uint8_t *elements = malloc(s->n_elements ? (size_t)(s->n_elements * width) : 1);
    if (!elements) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    int st = ecf8_stream_decode(s, elements, (size_t)(s->n_elements * width), threads);
    if (!st) {
        ecf8_stream code = *s;
        uint64_t nc;
        code.stream_layout = layout;
        ecf8_chunk_geometry(s->rows, s->cols, ecf8_layout_chunk_target(layout, chunk_elements),
                            &code.chunk_rows, &code.chunk_cols, &nc);
        st = ecf8_stream_build(&code, elements, threads, payload, payload_bytes, out);
    }
    free(elements);
    return st;
}
