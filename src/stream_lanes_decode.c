/* stream_lanes_decode.c - the CPU decoder of stream layout 1 (lane
 * streams, docs/FORMAT.md 4.4); stream_reference.c has the bit-at-a-time
 * oracle it is tested against.
 *
 * A chunk's 32 lanes are independent Huffman streams, so a core decodes
 * four of them side by side in scalar code: four dependency chains
 * (load entry -> shift the bit buffer) in flight hide each other's
 * latency, which a single chain cannot (the same reason layout 0 decodes
 * several chunks at once).  A lookup of the next multi_bits bits (>= the
 * longest code) yields up to three symbols (entry: symbols in bytes 0-2, stored as
 * a word; bits consumed in 24-29; count in 30-31), so short codes such as
 * the exponents of trained weights cost one lookup per two or three
 * elements.  The symbols go to a per-lane scratch row; a second pass joins
 * them with the raw plane into output words (lane l, row k -> word
 * 32k + l), four FP8 elements at a time in SWAR where the split allows.
 *
 * No AVX2 path: one was built and measured on Zen 1 (eight lanes per
 * vector, one symbol per lane per step, the stream dword and the table
 * entry gathered): 0.34 GB/s with VPGATHERDD and 0.41 with the gathers as
 * eight scalar loads, against 0.79 for this code (ecf8-bench-codec
 * --layout 1 --clock cpu --stat min, LLM-shaped E4M3, one thread): a
 * lookup here yields up to three symbols and costs no gather.  An AVX-512
 * host (cheaper gathers, 16 lanes) may differ; it is not measured yet.
 * Four ways, not eight: eight spill their pointers and measured no
 * faster; two leave the chains exposed. */
#include "stream.h"
#include "cpu_features.h"
#include "stream_decode.h"

#include <stdlib.h>
#include <string.h>

#define MULTI_MAX_BITS 13 /* >= ECF8_MAX_CODE_BITS: every code decodes in one lookup */
#define MULTI_MIN_BITS 11 /* fewer bits leave short codes one symbol per lookup */
#define WAYS 4            /* lanes decoded side by side */
#define ROUND_LOOKUPS 4   /* lookups per refill: 4 x 13 bits fit the 56 a refill gives */
#define ROUND_MOST (ROUND_LOOKUPS * 3) /* symbols a round may write */
#define LANES_GROUP 8     /* chunks per task */
/* Scratch row per lane: a lane's symbols, plus room for the last word a
 * lookup stores whole. */
#define ROW_CAP(q_max) ((ECF8_MAX_LANE_CHUNK_ELEMENTS / 4 / ECF8_LANES) * (q_max) + 8)
#define ROW_BYTES ROW_CAP(4)

typedef void (*combine_fn)(const uint8_t *rows, const uint8_t *plane, uint8_t *out, uint64_t count);

typedef struct fast_job {
    const ecf8_stream *s;
    ecf8_split_layout l;
    uint8_t *out;
    combine_fn combine;
    int (*lanes)(const struct fast_job *j, uint64_t c, const uint8_t *lanes,
                 const struct ecf8_lane_chunk *lc, unsigned q, uint8_t *rows);
    unsigned multi_bits;
    uint32_t multi[1u << MULTI_MAX_BITS];   /* symbols | consumed << 24 | count << 30 */
    uint16_t single[1u << ECF8_MAX_CODE_BITS]; /* length | symbol << 4 */
} fast_job;

static inline uint32_t load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- joining symbols and raw bits into words --------------------------------- */
/* Element i of the chunk is rows[lane * ROW_BYTES + row * q + j] for word
 * w = i / q = 32 row + lane, j = i % q, joined with raw bits i*R.. of the
 * plane.  One instance per split layout, its fields constants. */
static inline __attribute__((always_inline)) void
combine_words(const uint8_t *rows, const uint8_t *plane, uint8_t *out, uint64_t count,
              const unsigned W, const unsigned SH, const unsigned S, const unsigned R)
{
    const unsigned q = 4 / W, EB = 8 * W;
    const uint64_t full = count / q; /* whole words */
    /* A word's q elements at once: the raw bits spread to one field of EB
     * bits each, then joined with the symbols as one element would be
     * (symbol and low bits in place, the bits above the symbol moved up). */
    const uint32_t rep = W == 1 ? 0x01010101u : 0x00010001u;
    const uint32_t lo = ((1u << SH) - 1) * rep, hi = (R > SH ? (1u << (R - SH)) - 1 : 0) * rep;
    const uint32_t m = (1u << R) - 1;
#define COMBINE_WORD(w, src)                                                                  \
    do {                                                                                      \
        uint32_t sym = W == 1 ? load_u32(src) : (uint32_t)(src)[0] | (uint32_t)(src)[1] << 16, x; \
        if (R == 0) {                                                                         \
            x = sym << SH;                                                                    \
        } else {                                                                              \
            uint64_t rb = (w) * q * R;                                                        \
            uint32_t r = (uint32_t)(ecf8_load_le64(plane + rb / 8) >> (rb & 7)), spread = 0;  \
            for (unsigned f = 0; f < q; f++) spread |= ((r >> (f * R)) & m) << (f * EB);      \
            x = ((spread >> SH) & hi) << (SH + S) | sym << SH | (spread & lo);                \
        }                                                                                     \
        memcpy(out + 4 * (w), &x, 4);                                                         \
    } while (0)
    /* Row by row, lane by lane: the words in output order. */
    uint64_t w = 0;
    for (uint64_t k = 0; k < full / ECF8_LANES; k++)
        for (unsigned l = 0; l < ECF8_LANES; l++, w++) COMBINE_WORD(w, rows + l * ROW_BYTES + k * q);
    for (; w < full; w++) COMBINE_WORD(w, rows + (w & 31) * ROW_BYTES + (w >> 5) * q);
#undef COMBINE_WORD
    for (uint64_t i = full * q; i < count; i++) { /* the partial last word */
        uint64_t wi = i / q, rb = i * R;
        unsigned sym = rows[(wi & 31) * ROW_BYTES + (wi >> 5) * q + i % q];
        unsigned raw = R ? (unsigned)(ecf8_load_le64(plane + rb / 8) >> (rb & 7)) & ((1u << R) - 1) : 0;
        unsigned x = (raw >> SH) << (SH + S) | sym << SH | (raw & ((1u << SH) - 1));
        if (W == 1) out[i] = (uint8_t)x;
        else out[2 * i] = (uint8_t)x, out[2 * i + 1] = (uint8_t)(x >> 8);
    }
}

#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS)                \
    static void combine_##NAME(const uint8_t *rows, const uint8_t *plane, uint8_t *out,       \
                               uint64_t count)                                                 \
    {                                                                                          \
        combine_words(rows, plane, out, count, (ELEMENT_BITS) / 8, SHIFT, SYMBOL_BITS,         \
                      (ELEMENT_BITS) - (SYMBOL_BITS));                                         \
    }
#include "split_layouts.def"

static const combine_fn combiners[ECF8_LAYOUT_COUNT] = {
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS) combine_##NAME,
#include "split_layouts.def"
};

/* ---- the lanes ------------------------------------------------------------------ */
static int lane_error(uint64_t c, unsigned lane, uint64_t bits, uint64_t want)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu lane %u decodes to %s%llu bits, its lane table says %llu",
                     (unsigned long long)c, lane, bits > want ? "more than " : "",
                     (unsigned long long)bits, (unsigned long long)want);
}

/* Refill: the 56 bits from lane bit `pos` on, and a sentinel bit above
 * them, so that the bits a round consumed are counted from where the
 * sentinel went (leading zeros - 7) instead of adding up every lookup. */
#define SENTINEL_BITS 56
static inline __attribute__((always_inline)) uint64_t refill(const uint8_t *lanes, uint32_t pos)
{
    uint64_t b = ecf8_load_le64(lanes + pos / 8) >> (pos & 7);
    return (b & ((1ull << SENTINEL_BITS) - 1)) | 1ull << SENTINEL_BITS;
}

/* The low `bits` bits of b (mask: the same as a mask): one BZHI where the
 * caller is compiled for BMI2 (compilers do not form it from a mask kept in
 * a register), a copy and an AND otherwise. */
static inline __attribute__((always_inline)) uint64_t low_bits(uint64_t b, unsigned bits,
                                                               uint64_t mask, bool bmi2)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (bmi2) {
        uint64_t r;
        __asm__("bzhi %2, %1, %0" : "=r"(r) : "r"(b), "r"((uint64_t)bits));
        return r;
    }
#endif
    (void)bits, (void)bmi2;
    return b & mask;
}

/* Decodes lanes first..first+WAYS-1 of a chunk into their scratch rows.
 * Only the bit buffer and output pointer of each way live in registers
 * through a round (four ways: eight of them; eight ways spilled). */
static inline __attribute__((always_inline)) int
decode_ways(const fast_job *j, uint64_t c, const uint8_t *lanes, const ecf8_lane_chunk *lc,
            const unsigned q, unsigned first, uint8_t *rows, const bool bmi2)
{
    const uint32_t *multi = j->multi;
    const unsigned mbits = j->multi_bits; /* a local: the stores below may alias *j */
    const uint64_t mmask = (1u << mbits) - 1;
    uint32_t pos[WAYS], end[WAYS];
    uint8_t *o[WAYS], *stop[WAYS];
    for (unsigned k = 0; k < WAYS; k++) {
        pos[k] = lc->start[first + k], end[k] = lc->start[first + k + 1];
        o[k] = rows + (first + k) * ROW_BYTES;
        stop[k] = o[k] + ecf8_lane_elements(lc->count, q, first + k);
    }
    /* Rounds while every lane has room for the most a round writes: the
     * lanes of a chunk differ by at most a word, so this is nearly all. */
    for (;;) {
        uint64_t room = UINT64_MAX;
        for (unsigned k = 0; k < WAYS; k++) {
            uint64_t r = (uint64_t)(stop[k] - o[k]);
            if (r < room) room = r;
        }
        if (room < ROUND_MOST) break;
        for (uint64_t rounds = room / ROUND_MOST; rounds; rounds--) {
            uint64_t b[WAYS];
            unsigned past = 0;
            for (unsigned k = 0; k < WAYS; k++) past |= pos[k] > end[k];
            if (ECF8_UNLIKELY(past)) goto check; /* keeps the loads inside the chunk */
            for (unsigned k = 0; k < WAYS; k++) b[k] = refill(lanes, pos[k]);
            _Pragma("GCC unroll 4") for (unsigned u = 0; u < ROUND_LOOKUPS; u++)
                _Pragma("GCC unroll 8") for (unsigned k = 0; k < WAYS; k++) {
                    uint32_t e = multi[low_bits(b[k], mbits, mmask, bmi2)];
                    memcpy(o[k], &e, 4);
                    o[k] += e >> 30;
                    b[k] >>= (e >> 24 | e << 8) & 63; /* one RORX with BMI2 */
                }
            for (unsigned k = 0; k < WAYS; k++)
                pos[k] += (uint32_t)__builtin_clzll(b[k]) - (63 - SENTINEL_BITS);
        }
    }
    /* Then the last symbols of every lane, still side by side, one lookup
     * per refill: a whole lookup where three symbols fit, a single symbol
     * (in the same entry form) where fewer do, nothing where the lane is
     * done, chosen without branches, so that each lane stops exactly at
     * its last symbol. */
    const uint16_t *single = j->single;
    const uint64_t smask = (1u << j->s->code_bits) - 1;
    for (;;) {
        unsigned live = 0, past = 0;
        for (unsigned k = 0; k < WAYS; k++) live |= o[k] < stop[k], past |= pos[k] > end[k];
        if (!live || past) break;
        _Pragma("GCC unroll 8") for (unsigned k = 0; k < WAYS; k++) {
            uint64_t b = ecf8_load_le64(lanes + pos[k] / 8) >> (pos[k] & 7);
            uint64_t room = (uint64_t)(stop[k] - o[k]);
            uint32_t t = single[b & smask];
            uint32_t e = room >= 3 ? multi[b & mmask] : (t >> 4) | (t & 15) << 24 | 1u << 30;
            e = room ? e : 0;
            memcpy(o[k], &e, 4);
            o[k] += e >> 30;
            pos[k] += (e >> 24) & 63;
        }
    }
check:
    /* A lane past its end stopped the others where they were: name it. */
    for (unsigned k = 0; k < WAYS; k++)
        if (pos[k] > end[k])
            return lane_error(c, first + k, pos[k] - lc->start[first + k],
                              end[k] - lc->start[first + k]);
    for (unsigned k = 0; k < WAYS; k++)
        if (pos[k] != end[k] || o[k] != stop[k])
            return lane_error(c, first + k, pos[k] - lc->start[first + k],
                              end[k] - lc->start[first + k]);
    return ECF8_OK;
}

/* All lanes of a chunk, compiled for the baseline and (x86-64) for CPUs
 * with BMI1/2 and LZCNT: shifts by a register without %cl, BZHI for the
 * table index, LZCNT for the sentinel.  Chosen at run time. */
#define DECODE_LANES(NAME, BMI2)                                                                   \
    static int NAME(const fast_job *j, uint64_t c, const uint8_t *lanes,                        \
                    const ecf8_lane_chunk *lc, unsigned q, uint8_t *rows)                       \
    {                                                                                              \
        int st = ECF8_OK;                                                                          \
        for (unsigned first = 0; first < ECF8_LANES && !st; first += WAYS)                         \
            st = decode_ways(j, c, lanes, lc, q, first, rows, BMI2);                               \
        return st;                                                                                 \
    }
DECODE_LANES(decode_lanes_base, false)
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("bmi,bmi2,lzcnt"))) DECODE_LANES(decode_lanes_bmi2, true)
#endif
#undef DECODE_LANES

static int fast_chunk(const fast_job *j, uint64_t c, uint8_t *rows)
{
    const ecf8_stream *s = j->s;
    const unsigned W = j->l.element_bits / 8, q = 4 / W;
    ecf8_lane_chunk lc;
    int st = ecf8_lane_chunk_parse(s, &j->l, c, &lc);
    if (st) return st;
    const uint8_t *chunk = s->coded + s->chunk_offsets[c];
    if (s->code_bits == 0) { /* one symbol: no lane has bits (the parse checked) */
        unsigned sym = 0;
        while (!s->lengths[sym]) sym++;
        for (unsigned k = 0; k < ECF8_LANES; k++)
            memset(rows + k * ROW_BYTES, (int)sym, ecf8_lane_elements(lc.count, q, k));
    } else {
        if ((st = j->lanes(j, c, chunk + lc.table_bytes, &lc, q, rows))) return st;
    }
    j->combine(rows, chunk + lc.raw_offset, j->out + ecf8_chunk_start(s, c) * W, lc.count);
    return ECF8_OK;
}

static int fast_task(void *ctx, uint64_t group)
{
    const fast_job *j = ctx;
    uint8_t *rows = malloc((size_t)ECF8_LANES * ROW_BYTES);
    if (!rows) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    uint64_t c1 = (group + 1) * LANES_GROUP;
    if (c1 > j->s->n_chunks) c1 = j->s->n_chunks;
    int st = ECF8_OK;
    for (uint64_t c = group * LANES_GROUP; c < c1 && !st; c++) st = fast_chunk(j, c, rows);
    free(rows);
    return st;
}

/* Entry i: the symbols the bits of i decode to, as many (<= 3) as are
 * whole within them; the first always is (multi_bits >= code_bits). */
static void build_multi(fast_job *j)
{
    const unsigned cb = j->s->code_bits, P = j->multi_bits;
    for (uint32_t i = 0; i < (1u << P); i++) {
        uint32_t e = 0, used = 0, n = 0;
        while (n < 3) {
            uint16_t t = j->single[(i >> used) & ((1u << cb) - 1)];
            if (used + (t & 15u) > P) break;
            e |= (uint32_t)(t >> 4) << (8 * n);
            used += t & 15u, n++;
        }
        j->multi[i] = e | used << 24 | n << 30;
    }
}

int ecf8_lanes_decode(const ecf8_stream *s, const ecf8_split_layout *l, int row, void *out,
                      unsigned threads, bool portable)
{
    fast_job *j = malloc(sizeof *j);
    if (!j) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    j->s = s, j->l = *l, j->out = out, j->combine = combiners[row];
    j->lanes = decode_lanes_base;
#if defined(__x86_64__) && defined(__GNUC__)
    const unsigned need = ECF8_CPU_BMI2 | ECF8_CPU_LZCNT;
    if (!portable && (ecf8_cpu_features() & need) == need) j->lanes = decode_lanes_bmi2;
#else
    (void)portable;
#endif
    j->multi_bits = s->code_bits < MULTI_MIN_BITS ? MULTI_MIN_BITS : s->code_bits;
    int st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, j->single);
    if (!st && s->code_bits) build_multi(j);
    if (!st) st = ecf8_parallel_for(threads, ecf8_ceil_div(s->n_chunks, LANES_GROUP), fast_task, j);
    free(j);
    return st;
}
