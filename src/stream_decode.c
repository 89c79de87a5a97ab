/* stream_decode.c - the fast CPU decoder: tables, scheduling over chunks
 * and threads, and the choice of loops by layout and instruction set.  The
 * loops themselves are in stream_decode_impl.h, compiled here once per
 * instruction set; stream_reference.c is the simple decoder they are
 * tested against.
 *
 * Bits are read LSB first.  A way keeps a byte pointer `q` and a 64-bit
 * buffer `b` loaded from it with a marker bit on top (bit 63 of the load,
 * then shifted down by the bit offset into that byte): at least 56 bits of
 * data below the marker.  Decoding only shifts `b` right, so the marker
 * counts what was consumed: the next refill moves q by clz(b) / 8 bytes and
 * skips clz(b) % 8 bits, with no count kept per element.  One lookup chain
 * is latency-bound (load, shift, load...), so up to DECODE_WAYS chunks
 * ("ways") are decoded side by side by one thread.  Lookups never reach
 * the marker: a round between refills consumes at most 56 bits and its
 * last lookup starts at most 56 - 13 bits in. */
#include "cpu_features.h"
#include "stream.h"
#include "stream_decode.h"

#include <stdlib.h>

#define DECODE_WAYS 6 /* chunks one thread decodes side by side, at most */
#define CLZ(b) ((unsigned)__builtin_clzll(b)) /* b != 0: the marker is in it */
#define REFILL(k)                                                           \
    do {                                                                    \
        unsigned c_ = CLZ(b[k]);                                            \
        q[k] += c_ >> 3;                                                    \
        b[k] = (ecf8_load_le64(q[k]) | 1ull << 63) >> (c_ & 7);             \
    } while (0)

/* One chunk being decoded: where it is in its stream and its output.  A
 * loop copies the fields it needs into locals (WAY_LOCALS) on entry and
 * back on return. */
typedef struct way_state {
    const uint8_t *src; /* the chunk's stream */
    const uint8_t *q;   /* byte of the last refill */
    uint64_t b;         /* bit buffer, marker on top */
    uint8_t *o, *end;   /* output cursor and end */
    uint64_t chunk;
    int scratch;        /* scratch slot holding a padded copy of src, or -1 */
} way_state;

#define WAY_LOCALS                                                          \
    const uint8_t *q[DECODE_WAYS];                                          \
    uint8_t *o[DECODE_WAYS], *end[DECODE_WAYS];                             \
    uint64_t b[DECODE_WAYS]
#define WAYS_LOAD(k) (q[k] = L[k].q, b[k] = L[k].b, o[k] = L[k].o, end[k] = L[k].end)
#define WAYS_SAVE(k) (L[k].q = q[k], L[k].b = b[k], L[k].o = o[k])

/* fn(n, ...) for n = ways, each call with n a constant (1..DECODE_WAYS). */
#define FOR_WAYS(ways, fn, ...)                                             \
    switch (ways) {                                                         \
    case 1: fn(1, __VA_ARGS__); break;                                      \
    case 2: fn(2, __VA_ARGS__); break;                                      \
    case 3: fn(3, __VA_ARGS__); break;                                      \
    case 4: fn(4, __VA_ARGS__); break;                                      \
    case 5: fn(5, __VA_ARGS__); break;                                      \
    default: fn(6, __VA_ARGS__); break;                                     \
    }
_Static_assert(DECODE_WAYS == 6, "FOR_WAYS has a case per number of ways");

/* As if refilled at the chunk start with nothing read. */
static inline void way_start(way_state *l, const uint8_t *src, uint8_t *out, uint64_t bytes)
{
    l->src = l->q = src;
    l->b = 1ull << 63;
    l->o = out, l->end = out + bytes;
}

static inline uint64_t way_used_bits(const way_state *l)
{
    return (uint64_t)(l->q - l->src) * 8 + CLZ(l->b);
}

typedef struct decode_job decode_job;
/* Decodes ways L[0..ways-1] side by side while every one has at least its
 * decoder set's `tail` bytes of output left, then returns. */
typedef void (*ways_fn)(const decode_job *j, way_state *L, int ways);
/* Decodes the rest of one way alone. */
typedef void (*finish_fn)(const decode_job *j, way_state *l);

typedef struct decoder_set {
    ways_fn run;
    finish_fn finish;
    unsigned tail; /* output bytes below which run stops */
} decoder_set;

struct decode_job {
    const ecf8_stream *s;
    unsigned width, raw_bits;
    const decoder_set *decode;
    uint8_t *out;
    uint16_t table16[1u << ECF8_MAX_CODE_BITS]; /* FORMAT.md's table: checks the code */
    uint32_t table[1u << ECF8_MAX_CODE_BITS];   /* the fast path's entries */
    uint16_t raw_map[1u << 11];                 /* raw bits -> their places (exponent split) */
};

/* Elements per refill of the generic loops for the longest legal code: a
 * constant, so the loops unroll. */
#define GENERIC_N(R) (56 / (ECF8_MAX_CODE_BITS + (R)))
#define PAIR_BITS ECF8_PAIR_BITS
#define PAIR_TAIL 8 /* output bytes a round of four pair lookups may write */
#define DECODE_SETS (ECF8_LAYOUT_COUNT + 1)
#define DECODE_PAIRS_SET ECF8_LAYOUT_COUNT

/* The loops for the baseline instruction set, and on x86-64 for CPUs with
 * BMI1/2 and LZCNT, whose three-operand shifts by a register (shrx), BZHI
 * and LZCNT they are made of: the baseline ISA shifts only by %cl and
 * counts leading zeros in two steps.  Chosen at run time. */
#define ISA portable
#define ISA_TARGET
#define ISA_BMI2 0
#include "stream_decode_impl.h"
#if defined(__x86_64__) && defined(__GNUC__)
#define DECODE_HAVE_BMI2 1
#define ISA bmi2
#define ISA_TARGET __attribute__((target("bmi,bmi2,lzcnt")))
#define ISA_BMI2 1
#include "stream_decode_impl.h"
#else
#define DECODE_HAVE_BMI2 0
#endif

/* The decoders of layout `row` (or of the pair table); `portable` leaves
 * out the BMI2 set (tests run both). */
static const decoder_set *pick_decoders(int row, bool pairs, bool portable)
{
    const decoder_set *sets = decoders_portable;
#if DECODE_HAVE_BMI2
    const unsigned need = ECF8_CPU_BMI2 | ECF8_CPU_LZCNT;
    if (!portable && (ecf8_cpu_features() & need) == need) sets = decoders_bmi2;
#else
    (void)portable;
#endif
    return &sets[pairs ? DECODE_PAIRS_SET : row];
}


/* The pair table grows by doubling like ecf8_decode_table_build: at level
 * L (2^L entries) the elements of length L get their single entries and
 * every pair of total length L its entry; shorter ones are already there,
 * repeated by the copies.  About 2^PAIR_BITS stores in all, so it pays off
 * on tensors of a few chunks. */
static void build_pair_table(const ecf8_stream *s, const ecf8_split_layout *l, uint32_t *pairs);

int ecf8_pair_table_build(const ecf8_stream *s, uint32_t *pairs)
{
    ecf8_split_layout l;
    int st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    unsigned elem_max = s->code_bits + l.raw_bits;
    if (l.element_bits != 8 || elem_max < 1 || elem_max > PAIR_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "no pair table for %u-bit elements of up to %u bits",
                         l.element_bits, elem_max);
    st = ecf8_code_check(s->lengths, s->n_symbols, s->code_bits);
    if (!st) build_pair_table(s, &l, pairs);
    return st;
}

static void build_pair_table(const ecf8_stream *s, const ecf8_split_layout *l, uint32_t *pairs)
{
    uint16_t codes[256];
    ecf8_canonical_codes(s->lengths, s->n_symbols, codes); /* lengths already checked */
    /* Elements (code word + raw bits) counting-sorted by length: code and
     * output byte, also where it goes as the second of a pair. */
    unsigned first[PAIR_BITS + 2] = {0}, next[PAIR_BITS + 1];
    uint16_t el_code[256];
    uint32_t el_value[256], el_first[256], el_second[256];
    const unsigned R = l->raw_bits;
    for (unsigned sym = 0; sym < s->n_symbols; sym++)
        if (s->lengths[sym]) first[(s->code_bits ? s->lengths[sym] : 0) + R + 1] += 1u << R;
    for (unsigned len = 1; len <= PAIR_BITS + 1; len++) first[len] += first[len - 1];
    memcpy(next, first, sizeof next);
    for (unsigned sym = 0; sym < s->n_symbols; sym++) {
        if (!s->lengths[sym]) continue;
        unsigned cl = s->code_bits ? s->lengths[sym] : 0, code = s->code_bits ? codes[sym] : 0;
        for (unsigned raw = 0; raw < (1u << R); raw++) {
            unsigned i = next[cl + R]++;
            el_code[i] = (uint16_t)(code | raw << cl);
            el_value[i] = ecf8_element_join(sym, raw, l);
            el_first[i] = el_value[i] | 2u << 30;
            el_second[i] = el_value[i] << 8;
        }
    }
    pairs[0] = 0;
    for (unsigned len = 1, size = 1; len <= PAIR_BITS; len++, size *= 2) {
        memcpy(pairs + size, pairs, size * sizeof *pairs);
        for (unsigned i = first[len]; i < first[len + 1]; i++)
            pairs[el_code[i]] = el_value[i] | len << 16 | len << 24 | 1u << 30;
        /* Pairs of total length len, the hot loop of the build: for each
         * second element, all the first ones of length l1 (no shift by a
         * variable count inside). */
        for (unsigned l1 = 1; l1 < len; l1++) {
            const unsigned i0 = first[l1], i1 = first[l1 + 1];
            for (unsigned k = first[len - l1]; k < first[len - l1 + 1]; k++) {
                uint32_t *col = pairs + ((unsigned)el_code[k] << l1);
                const uint32_t v = len << 16 | l1 << 24 | el_second[k];
                _Pragma("GCC unroll 4") for (unsigned i = i0; i < i1; i++)
                    col[el_code[i]] = el_first[i] | v;
            }
        }
    }
}

static inline bool chunk_bits_ok(const ecf8_stream *s, uint64_t c, uint64_t bits)
{
    return (bits + 7) / 8 == s->chunk_offsets[c + 1] - s->chunk_offsets[c];
}

/* Worst case the reader touches: every element at its longest, plus the
 * 8-byte refill load and its slack. */
static uint64_t chunk_read_bytes(const decode_job *j, uint64_t count)
{
    return (count * (j->s->code_bits + j->raw_bits) + 7) / 8 + 16;
}

#define DECODE_GROUP 24 /* chunks per parallel task, at most */

typedef struct decode_range {
    const decode_job *j;
    uint64_t per_task; /* chunks per task */
} decode_range;

/* Starts chunk c in way l, from a zero-padded copy in a free scratch slot
 * when the reader's worst case runs past the stream. */
static int way_load(const decode_job *j, way_state *l, uint64_t c, uint8_t **scratch,
                    unsigned *free_slots, uint64_t stride)
{
    const ecf8_stream *s = j->s;
    uint64_t off = s->chunk_offsets[c], count = ecf8_chunk_elements(s, c);
    const uint8_t *src = s->coded + off;
    uint64_t need = chunk_read_bytes(j, count);
    l->chunk = c;
    l->scratch = -1;
    if (off + need > s->coded_bytes) {
        if (!*scratch && !(*scratch = malloc(DECODE_WAYS * stride)))
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        int slot = __builtin_ctz(*free_slots); /* a way never holds two */
        *free_slots &= ~(1u << slot);
        uint8_t *copy = *scratch + (uint64_t)slot * stride;
        memcpy(copy, src, s->coded_bytes - off);
        memset(copy + (s->coded_bytes - off), 0, need - (s->coded_bytes - off));
        src = copy;
        l->scratch = slot;
    }
    way_start(l, src, j->out + ecf8_chunk_start(s, c) * j->width, count * j->width);
    return ECF8_OK;
}

/* A pool of up to DECODE_WAYS chunks decoded side by side: whenever one is
 * all but done, it is finished alone and the next chunk of the task takes
 * its way, so the ways stay full through chunks of unequal length (the
 * last of a row block, a short edge segment) and only the task's last few
 * chunks run in fewer ways. */
static int decode_task(void *ctx, uint64_t task)
{
    const decode_range *r = ctx;
    const decode_job *j = r->j;
    const ecf8_stream *s = j->s;
    const decoder_set *d = j->decode;
    uint64_t next = task * r->per_task, c1 = next + r->per_task;
    if (c1 > s->n_chunks) c1 = s->n_chunks;
    const uint64_t stride = chunk_read_bytes(j, s->chunk_rows * s->chunk_cols);
    uint8_t *scratch = NULL;
    unsigned free_slots = (1u << DECODE_WAYS) - 1, active = 0;
    way_state L[DECODE_WAYS];
    int st = ECF8_OK;
    for (;;) {
        for (; active < DECODE_WAYS && next < c1 && !st; active++)
            st = way_load(j, &L[active], next++, &scratch, &free_slots, stride);
        if (st || !active) break;
        d->run(j, L, (int)active);
        for (unsigned k = 0; k < active;) {
            if ((uint64_t)(L[k].end - L[k].o) >= d->tail) {
                k++;
                continue;
            }
            d->finish(j, &L[k]);
            uint64_t used = way_used_bits(&L[k]);
            if (!chunk_bits_ok(s, L[k].chunk, used) && !st) st = ecf8_chunk_length_error(s, L[k].chunk, used);
            if (L[k].scratch >= 0) free_slots |= 1u << L[k].scratch;
            L[k] = L[--active];
        }
        if (st) break;
    }
    free(scratch);
    return st;
}

int ecf8_stream_decode_isa(const ecf8_stream *s, void *out, size_t out_bytes, unsigned threads,
                           bool portable)
{
    if (!s || !out || !s->coded || !s->chunk_offsets)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: NULL argument%s",
                         s && !s->coded ? " (the stream's coded bytes: a tensor of a file opened with "
                                          "ecf8_file_open_index, which ecf8_file_read_tensor reads)" : "");
    ecf8_split_layout l;
    int st, row = ecf8_split_layout_row(s->dtype, s->split, &l);
    if (row < 0) return ecf8_split_layout_get(s->dtype, s->split, &l); /* the reason */
    if (out_bytes < s->n_elements * (l.element_bits / 8))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: output of %zu bytes, need %llu", out_bytes,
                         (unsigned long long)(s->n_elements * (l.element_bits / 8)));
    if (s->stream_layout == ECF8_STREAM_LAYOUT_LANES)
        return ecf8_lanes_decode(s, &l, row, out, threads, portable);
    unsigned width = l.element_bits / 8;
    if (s->code_bits == 0 && l.raw_bits == 0 && width == 1 && s->chunk_offsets[s->n_chunks] == 0) {
        /* A constant FP8 tensor (one symbol, no raw bits): validation has
         * already required every chunk to be empty, so this is a fill. */
        for (unsigned sym = 0; sym < s->n_symbols; sym++)
            if (s->lengths[sym]) memset(out, (int)sym, s->n_elements);
        return ECF8_OK;
    }
    decode_job *j = malloc(sizeof *j);
    if (!j) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    j->s = s;
    j->out = out;
    j->width = width;
    j->raw_bits = l.raw_bits;
    /* FP8 elements that fit a pair lookup, on tensors large enough to
     * repay the 2^PAIR_BITS-entry table. */
    unsigned elem_max = s->code_bits + l.raw_bits;
    bool pairs = width == 1 && elem_max >= 1 && elem_max <= PAIR_BITS &&
                 s->n_elements >= (1u << PAIR_BITS);
    j->decode = pick_decoders(row, pairs, portable);
    if (pairs) {
        st = ecf8_code_check(s->lengths, s->n_symbols, s->code_bits);
        if (!st) build_pair_table(s, &l, j->table);
    } else if (!(st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, j->table16))) {
        for (uint32_t i = 0; i < (1u << s->code_bits); i++)
            j->table[i] = (j->table16[i] & 15u) | (uint32_t)(j->table16[i] >> 4) << (l.symbol_shift + 8);
        if (l.raw_bits > l.symbol_shift)
            for (unsigned raw = 0; raw < (1u << l.raw_bits); raw++)
                j->raw_map[raw] = (uint16_t)ecf8_element_join(0, raw, &l);
    }
    if (!st) {
        /* Tasks of nearly equal size, as few as keep the threads busy:
         * each ends with its last chunks in fewer ways. */
        unsigned t = threads ? threads : ecf8_default_threads();
        uint64_t tasks = t <= 1 ? 1 : (s->n_chunks + DECODE_GROUP - 1) / DECODE_GROUP;
        decode_range r = {.j = j, .per_task = (s->n_chunks + tasks - 1) / tasks};
        st = ecf8_parallel_for(threads, (s->n_chunks + r.per_task - 1) / r.per_task,
                               decode_task, &r);
    }
    free(j);
    return st;
}

int ecf8_stream_decode(const ecf8_stream *s, void *out, size_t out_bytes, unsigned threads)
{
    return ecf8_stream_decode_isa(s, out, out_bytes, threads, false);
}
