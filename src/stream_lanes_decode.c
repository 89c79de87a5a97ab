/* stream_lanes_decode.c - the CPU decoder of stream layout 1 (lane
 * streams, docs/FORMAT.md 4.4); stream_reference.c has the bit-at-a-time
 * oracle it is tested against.
 *
 * A chunk's 32 lanes are independent Huffman streams, so a core decodes
 * four of them side by side in scalar code: four dependency chains
 * (load entry -> shift the bit buffer) in flight hide each other's
 * latency, which a single chain cannot (the same reason layout 0 decodes
 * several chunks at once).  The lanes wait in a queue and a lane that is
 * done hands its way to the next one, so the ways stay busy however
 * unequal the lanes' code lengths are; a lane runs whole rounds to its
 * end (where it really stopped is worked out from the code lengths of the
 * symbols it decoded too many), with no tail of single lookups.  A lookup
 * of the next multi_bits bits (>= the longest code; the width chosen per
 * stream, multi_bits_choose) yields up to three symbols (entry: symbols in
 * bytes 0-2, stored as a word; bits consumed in 24-29; count in 30-31), so
 * short codes such as the exponents of trained weights cost one lookup per
 * two or three elements.  The symbols go to a per-lane scratch row; a
 * second pass joins them with the raw plane into output words (lane l,
 * row k -> word 32k + l), four FP8 elements at a time in SWAR where the
 * split allows; for the byte splits of 8-bit dtypes it is a transpose, in
 * SSE2.  On x86-64 CPUs with BMI2 the four ways run in an assembly loop
 * (ecf8_lanes4_bmi2) that keeps their state in registers and refills a
 * done lane's way from the queue itself.
 *
 * Where the time goes (this machine's EPYC, family 25, one thread, 2 MB of
 * llm-e4m3 decoded in L2/L3; variants timed, not kept): the loop writing
 * its symbols to one stack slot instead of the rows ran 13% faster, and
 * lookups confined to 1 KB of the table also 13%: the 13-bit table (32
 * KB) is all of L1, so each line of rows and lane bits the loop brings in
 * evicts a table line (cachegrind's model of a 32 KB 8-way L1: 18% of
 * the table loads miss).  Six ways in assembly (idle ones doubling an
 * active lane at a chunk's end) ran slower, 0.91 GB/s against 1.06, and
 * four in assembly with 9% fewer instructions than the C loop no faster:
 * neither the chains' latency nor the instruction count bounds it.  A
 * 12-bit table (16 KB, fits) still decodes 3-5% slower than the 13-bit
 * one, and a queue running across chunks (the next chunk's lanes on the
 * ways a chunk's last lanes leave idle, two chunks' rows in flight) 2.6%
 * slower on all of llm-e4m3: the second chunk's rows cost more L1 than
 * the idle ways did.
 *
 * Measured and not kept (ecf8-bench-codec --layout 1 --clock cpu --stat
 * min, LLM-shaped E4M3, one thread, Zen 1): an AVX2 path (eight lanes per
 * vector, one symbol per lane per step, the stream dword and the table
 * entry gathered): 0.34 GB/s with VPGATHERDD and 0.41 with the gathers as
 * eight scalar loads, against 0.79 for the four ways of scalar code then:
 * a lookup here yields up to three symbols and costs no gather.  An
 * AVX-512 host (cheaper gathers, 16 lanes) may differ; it is not measured
 * yet.  Four ways, not eight: eight spill their pointers and measured no
 * faster; two leave the chains exposed.  Four lanes that started together
 * and ran to the end of the shortest, then finished in single lookups
 * (the decoder before the queue): a fifth of the instructions went to
 * those tails. */
#include "stream.h"
#include "cpu_features.h"
#include "stream_decode.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MULTI_MAX_BITS 13 /* >= ECF8_MAX_CODE_BITS: every code decodes in one lookup */
#define MULTI_MIN_BITS 11 /* fewer bits leave short codes one symbol per lookup */
#define WAYS 4            /* lanes decoded side by side */
#define ROUND_LOOKUPS 4   /* lookups per refill: 4 x 13 bits fit the 56 a refill gives */
#define ROUND_MOST (ROUND_LOOKUPS * 3) /* symbols a round may write */
#define CHECK_ROUNDS 2    /* rounds of four ways between two looks at the lanes' ends */
#define LANES_GROUP 8     /* chunks per task */
/* Outputs of at least this size (twice Zen 1's 8 MB L3 of four cores) are
 * written with non-temporal stores where the join pass is a transpose:
 * what a consumer reads first was evicted by the time the output is done,
 * and the stores skip reading every line before writing it (+3.5-4.5%,
 * paired A/B on llm-e4m3, one thread).  glibc's memcpy does the same
 * past a size its L3 sets. */
#define STREAM_OUT_BYTES (16u << 20)
/* Scratch row per lane: a lane's symbols, plus room for the symbols its
 * last rounds decode too many (< CHECK_ROUNDS * ROUND_MOST) and the word
 * a lookup stores whole. */
#define ROW_CAP(q_max) \
    ((ECF8_MAX_LANE_CHUNK_ELEMENTS / 4 / ECF8_LANES) * (q_max) + CHECK_ROUNDS * ROUND_MOST + 8)
#define ROW_BYTES ROW_CAP(4)

/* A task's scratch rows, and the symbols of each lane for chunks of
 * `count` elements (the same for all but a tensor's edge chunks, so
 * worked out once per size instead of per lane). */
typedef struct lane_rows {
    uint8_t *rows;
    uint64_t count;
    uint32_t n[ECF8_LANES];
} lane_rows;

/* Two symbols of each entry, then byte 3 of it (consumed | count << 6). */
typedef struct lane_pairs {
    uint16_t symbols[1u << MULTI_MAX_BITS];
    uint8_t meta[1u << MULTI_MAX_BITS];
} lane_pairs;

typedef void (*combine_fn)(const uint8_t *rows, const uint8_t *plane, uint8_t *out, uint64_t count,
                           bool stream);

typedef struct fast_job {
    const ecf8_stream *s;
    ecf8_split_layout l;
    uint8_t *out;
    combine_fn combine;
    int (*lanes)(const struct fast_job *j, uint64_t c, const uint8_t *lanes,
                 const struct ecf8_lane_chunk *lc, uint32_t limit, const struct lane_rows *lr);
    unsigned multi_bits;
    bool stream; /* output past the caches: written with non-temporal stores where it can be */
    uint32_t multi[1u << MULTI_MAX_BITS];   /* symbols | consumed << 24 | count << 30 */
    bool pairs; /* no entry has three symbols: pair holds them all */
    lane_pairs pair;
    uint16_t single[1u << ECF8_MAX_CODE_BITS]; /* length | symbol << 4 */
} fast_job;

static inline uint32_t load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- joining symbols and raw bits into words --------------------------------- */
#if defined(__SSE2__)
/* Rows 0..rows4 - 1 (a multiple of 4 of them: the number returned) of the
 * scratch rows into output words, four words of four lanes at a time,
 * 4 x 4 in SSE2 (a fifth of the instructions of a word at a time).  With
 * `stream`, non-temporal stores (out 16-byte aligned). */
static inline __attribute__((always_inline)) uint64_t
transpose_words(const uint8_t *rows, uint8_t *out, uint64_t n_rows, const bool stream)
{
    uint64_t k = 0;
    for (; k + 4 <= n_rows; k += 4)
        for (unsigned l = 0; l < ECF8_LANES; l += 4) {
            const uint8_t *src = rows + l * ROW_BYTES + k * 4;
            __m128i a = _mm_loadu_si128((const __m128i *)src);
            __m128i b = _mm_loadu_si128((const __m128i *)(src + ROW_BYTES));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + 2 * ROW_BYTES));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + 3 * ROW_BYTES));
            __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
            __m128i cd0 = _mm_unpacklo_epi32(c, d), cd1 = _mm_unpackhi_epi32(c, d);
            __m128i v[4] = {_mm_unpacklo_epi64(ab0, cd0), _mm_unpackhi_epi64(ab0, cd0),
                            _mm_unpacklo_epi64(ab1, cd1), _mm_unpackhi_epi64(ab1, cd1)};
            __m128i *dst = (__m128i *)(out + 4 * (k * ECF8_LANES + l));
            for (unsigned r = 0; r < 4; r++) {
                if (stream) _mm_stream_si128(dst + r * ECF8_LANES / 4, v[r]);
                else _mm_storeu_si128(dst + r * ECF8_LANES / 4, v[r]);
            }
        }
    return k;
}
#endif

/* Element i of the chunk is rows[lane * ROW_BYTES + row * q + j] for word
 * w = i / q = 32 row + lane, j = i % q, joined with raw bits i*R.. of the
 * plane.  One instance per split layout, its fields constants. */
static inline __attribute__((always_inline)) void
combine_words(const uint8_t *rows, const uint8_t *plane, uint8_t *out, uint64_t count, bool stream,
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
    uint64_t w = 0, k = 0;
#if defined(__SSE2__)
    /* Where the symbol is the element (the byte splits of 8-bit dtypes),
     * the pass is a transpose in SSE2. */
    if (W == 1 && R == 0) {
        if (stream && !((uintptr_t)out & 15)) {
            k = transpose_words(rows, out, full / ECF8_LANES, true);
            _mm_sfence(); /* the streamed stores ordered before whatever follows */
        } else {
            k = transpose_words(rows, out, full / ECF8_LANES, false);
        }
        w = k * ECF8_LANES;
    }
#else
    (void)stream;
#endif
    for (; k < full / ECF8_LANES; k++)
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
                               uint64_t count, bool stream)                                    \
    {                                                                                          \
        combine_words(rows, plane, out, count, stream, (ELEMENT_BITS) / 8, SHIFT, SYMBOL_BITS, \
                      (ELEMENT_BITS) - (SYMBOL_BITS));                                         \
    }
#include "split_layouts.def"

static const combine_fn combiners[ECF8_LAYOUT_COUNT] = {
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS) combine_##NAME,
#include "split_layouts.def"
};

/* ---- the lanes ------------------------------------------------------------------ */
/* `cut`: the lane ran to the end of its chunk and was stopped there, so
 * `bits` is a lower bound. */
static int lane_error(uint64_t c, unsigned lane, uint64_t bits, uint64_t want, bool cut)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu lane %u decodes to %s%llu bits, its lane table says %llu",
                     (unsigned long long)c, lane, cut ? "more than " : "",
                     (unsigned long long)bits, (unsigned long long)want);
}

/* Refill: the 64 bits from byte pos / 8 on, bit 63 replaced by a sentinel
 * and shifted to `pos`, so that the bits a round consumed are counted from
 * where the sentinel went (pos = pos / 8 * 8 + leading zeros) instead of
 * adding up every lookup.  At least 56 bits lie below the sentinel. */
static inline __attribute__((always_inline)) uint64_t refill(const uint8_t *lanes, uint32_t pos)
{
    return (ecf8_load_le64(lanes + pos / 8) | 1ull << 63) >> (pos & 7);
}

/* One lookup: the entry of the low bits of the buffer b (mask: those
 * bits set), its symbols stored whole to the row, its bits consumed from
 * b, its count added to the row pointer.  With BMI2 two of its
 * instructions are shifts instead of four: this machine's EPYC (family
 * 25) runs SHR, SHRX, RORX and BZHI 1.3-2 a cycle against 3 or more for
 * ADD and ANDN (independent ones, a loop of twelve), so the index is an
 * ANDN and the consumed bits come from a byte load of the entry (a load
 * port) instead of a rotate.  +2% (ecf8-bench-codec --layout 1 --clock cpu
 * --stat min, 2 MB of llm-e4m3, five alternated runs). */
static inline __attribute__((always_inline)) void lookup(uint64_t *b, uint8_t **o, const uint32_t *multi,
                                                         uint64_t mask, bool bmi2)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (bmi2) {
        uint64_t i, e;
        __asm__("andn %[b], %[not_mask], %[i]\n\t"
                "movl (%[multi],%[i],4), %k[e]\n\t"
                "movzbl 3(%[multi],%[i],4), %k[i]\n\t"
                "movl %k[e], %[row]\n\t"
                "shrx %[i], %[b], %[b]\n\t"
                "shr $30, %k[e]\n\t"
                "add %[e], %[o]"
                : [b] "+r"(*b), [o] "+r"(*o), [i] "=&r"(i), [e] "=&r"(e),
                  [row] "=m"(*(uint8_t(*)[4]) * o)
                : [multi] "r"(multi), [not_mask] "r"(~mask),
                  "m"(*(const uint32_t(*)[1u << MULTI_MAX_BITS])multi)
                : "cc");
        return;
    }
#endif
    (void)bmi2;
    uint32_t e = multi[*b & mask];
    memcpy(*o, &e, 4);
    *o += e >> 30;
    *b >>= (e >> 24) & 63;
}

/* Rounds of ROUND_LOOKUPS lookups on each of `ways` lanes side by side,
 * `per_check` at a time, until a lane has all its symbols or after `n`
 * times per_check rounds (two rounds between looks at the ends save the
 * look's 14 instructions on every other round of 193).  Only the bit
 * buffer and row pointer of each way live in registers through a round
 * (four ways: eight of them; eight ways spilled).  A lookup stores its
 * entry whole: the symbol bytes it holds, then junk that the next store
 * or the row's slack takes. */
static inline __attribute__((always_inline)) void
lane_rounds(const unsigned ways, const unsigned per_check, uint64_t n, const uint8_t *lanes,
            const uint32_t *multi, const unsigned mbits, uint32_t *pos_io, uint8_t **o_io,
            uint8_t *const *stop, const bool bmi2)
{
    const uint64_t mmask = (1u << mbits) - 1;
    uint32_t pos[WAYS];
    uint8_t *o[WAYS];
    for (unsigned k = 0; k < ways; k++) pos[k] = pos_io[k], o[k] = o_io[k];
    intptr_t left;
    do {
        _Pragma("GCC unroll 2") for (unsigned r = 0; r < per_check; r++) {
            uint64_t b[WAYS];
            for (unsigned k = 0; k < ways; k++) b[k] = refill(lanes, pos[k]);
            _Pragma("GCC unroll 4") for (unsigned u = 0; u < ROUND_LOOKUPS; u++)
                _Pragma("GCC unroll 8") for (unsigned k = 0; k < ways; k++) {
                    lookup(&b[k], &o[k], multi, mmask, bmi2);
                }
            for (unsigned k = 0; k < ways; k++) pos[k] = (pos[k] & ~7u) + (uint32_t)__builtin_clzll(b[k]);
        }
        /* Negative while every lane has symbols left: one test, no
         * branch per way. */
        left = -1;
        for (unsigned k = 0; k < ways; k++) left &= o[k] - stop[k];
    } while (left < 0 && --n);
    for (unsigned k = 0; k < ways; k++) pos_io[k] = pos[k], o_io[k] = o[k];
}

/* The lanes of a chunk in flight: ways 0..active-1 decode lanes lane[],
 * queue slots next.. wait (the lanes with symbols, in order); end[] is
 * where each lane stopped, bad (cut) the lanes found corrupt (stopped at
 * the chunk's end), got[] where they stopped.  Positions are bit
 * addresses (lanes * 8 + bit position).  The fields up to end[] are
 * ecf8_lanes4_bmi2's, at the offsets it reads them. */
typedef struct lane_slot {
    uint64_t p;
    uint8_t *o, *stop;
    uint64_t lane;
} lane_slot;
typedef struct lane_queue {
    uint64_t p[WAYS];
    uint8_t *o[WAYS], *stop[WAYS];
    uint64_t lane[WAYS];
    const void *table; /* fast_job's multi, or its pair */
    uint64_t mask;
    uint64_t n; /* pairs of rounds the ways may run before one loads past limit */
    uint64_t next, queued;
    uint64_t limit; /* the last bit address a load may start from */
    lane_slot q[ECF8_LANES];
    struct lane_end {
        uint64_t p;
        const uint8_t *o;
    } end[ECF8_LANES];
    unsigned active;
    uint32_t bad, cut, got[ECF8_LANES];
} lane_queue;

/* Way k takes the next lane of the queue; false when none is left. */
static inline __attribute__((always_inline)) bool take_lane(lane_queue *lq, unsigned k)
{
    if (lq->next == lq->queued) return false;
    const lane_slot *t = &lq->q[lq->next++];
    lq->p[k] = t->p, lq->o[k] = t->o, lq->stop[k] = t->stop, lq->lane[k] = t->lane;
    return true;
}

#if defined(__x86_64__) && defined(__LP64__) && defined(__GNUC__) && defined(__ELF__)
#define LANES_ASM 1
/* Four ways' pairs of rounds for BMI2 CPUs (lane_rounds(4, CHECK_ROUNDS,
 * ...)), a lane that is done handing its way to the next lane of the
 * queue without leaving the loop, as one assembly function.  In C a done
 * lane left the loop every four or five pairs (a chunk's lanes are a few
 * hundred bits), and the way back in (state to the stack and back, the
 * look at every way, the queue) was 12% of the decoder's instructions;
 * C also kept a fifth of the loop's instructions moving ways' state
 * between registers and the stack.  5.5% fewer instructions in all
 * (callgrind, llm-e4m3), 3% faster (ecf8-bench-codec, one thread).  Here each way's bit buffer, row
 * pointer and position stay in registers (B, O, P: 12 of the 15, with the
 * table and two temporaries); the table mask, the ends and the round
 * count live in the frame.  The sentinel goes in after the shift, so the
 * leading zeros at a round's end are the bits it consumed.  Returns when
 * the queue is empty and a lane done, or after n pairs (loads stay before
 * limit), the state in *lq; the lanes done inside are in lq->end. */
_Static_assert(offsetof(lane_queue, o) == 32 && offsetof(lane_queue, stop) == 64 &&
                   offsetof(lane_queue, lane) == 96 && offsetof(lane_queue, table) == 128 &&
                   offsetof(lane_queue, mask) == 136 && offsetof(lane_queue, n) == 144 &&
                   offsetof(lane_queue, next) == 152 && offsetof(lane_queue, queued) == 160 &&
                   offsetof(lane_queue, limit) == 168 && offsetof(lane_queue, q) == 176 &&
                   sizeof(lane_slot) == 32 && offsetof(lane_queue, end) == 1200 &&
                   sizeof(struct lane_end) == 16 && WAYS == 4 && CHECK_ROUNDS == 2,
               "ecf8_lanes4_bmi2 reads the queue at these offsets and runs pairs of rounds of four ways");
__attribute__((visibility("hidden"))) void ecf8_lanes4_bmi2(lane_queue *lq);
/* The same with the entries in two tables (lq->table a lane_pairs), for
 * streams where none has three symbols: 24 KB at 13 bits instead of 32,
 * so fewer of the table's lines are evicted (+1.5%, 2 MB of llm-e4m3). */
__attribute__((visibility("hidden"))) void ecf8_lanes4_pairs_bmi2(lane_queue *lq);

/* Registers: B %r8-%r11, O %r12-%r15, P %rbx %rbp %rsi %rdi, the table
 * %rdx, temporaries %rax %rcx.  Frame: lq at 0(%rsp), the mask at 8, the
 * sentinel at 16, way k's end at 24 + 8k and lane at 64 + 8k, the pairs
 * left at 56, next at 96, queued at 104, limit at 112.  X: the function's
 * name (its labels) or lookup. */
#define LA_EACH(M, X)                                                                       \
    M(X, "%r8", "%r12", "%rbx", "0") M(X, "%r9", "%r13", "%rbp", "8")                       \
    M(X, "%r10", "%r14", "%rsi", "16") M(X, "%r11", "%r15", "%rdi", "24")
#define LA_IN(X, B, O, P, K)                                                                \
    "mov 64+" K "(%rdi), %rax\n\tmov %rax, 24+" K "(%rsp)\n\t"                              \
    "mov 96+" K "(%rdi), %rax\n\tmov %rax, 64+" K "(%rsp)\n\tmov 32+" K "(%rdi), " O "\n\t"
#define LA_IN_P(X, B, O, P, K) "mov " K "(%rdi), " P "\n\t"
#define LA_OUT(X, B, O, P, K)                                                               \
    "mov " P ", " K "(%rax)\n\tmov " O ", 32+" K "(%rax)\n\t"                              \
    "mov 24+" K "(%rsp), %rcx\n\tmov %rcx, 64+" K "(%rax)\n\t"                             \
    "mov 64+" K "(%rsp), %rcx\n\tmov %rcx, 96+" K "(%rax)\n\t"
#define LA_REFILL(X, B, O, P, K)                                                            \
    "mov " P ", %rax\n\tshr $3, %rax\n\tmov (%rax), " B "\n\tmov " P ", %rcx\n\t"          \
    "and $7, %ecx\n\tshrx %rcx, " B ", " B "\n\tor 16(%rsp), " B "\n\t"
/* index, entry, its consumed bits (byte 3's low 6) by a second load
 * instead of a rotate (shifts run on two ALUs only), symbols stored
 * whole, count (bits 30-31) added */
#define LA_LOOKUP(X, B, O, P, K)                                                            \
    "mov " B ", %rax\n\tand 8(%rsp), %rax\n\tmov (%rdx,%rax,4), %ecx\n\t"                  \
    "movzbl 3(%rdx,%rax,4), %eax\n\tmov %ecx, (" O ")\n\tshrx %rax, " B ", " B "\n\t"       \
    "shr $30, %ecx\n\tadd %rcx, " O "\n\t"
/* the same from lane_pairs: two symbols, then consumed | count << 6 */
#define LA_LOOKUP_PAIRS(X, B, O, P, K)                                                      \
    "mov " B ", %rax\n\tand 8(%rsp), %rax\n\tmovzwl (%rdx,%rax,2), %ecx\n\t"               \
    "movzbl 16384(%rdx,%rax), %eax\n\tmov %ecx, (" O ")\n\tshrx %rax, " B ", " B "\n\t"     \
    "shr $6, %eax\n\tadd %rax, " O "\n\t"
#define LA_ADVANCE(X, B, O, P, K) "lzcnt " B ", %rax\n\tadd %rax, " P "\n\t"
#define LA_ROUND(LOOKUP)                                                                    \
    LA_EACH(LA_REFILL, ) LA_EACH(LOOKUP, ) LA_EACH(LOOKUP, ) LA_EACH(LOOKUP, )              \
    LA_EACH(LOOKUP, ) LA_EACH(LA_ADVANCE, )
#define LA_CHECK(X, B, O, P, K)                                                             \
    "cmp 24+" K "(%rsp), " O "\n\tjae .L" X "_done" K "\n.L" X "_back" K ":\n\t"
/* Way K is done: where it stopped to end[lane], the next lane of the
 * queue in (none: return), the pairs left cut to what its start allows
 * ((limit - P + 64) / 128 from here; the B registers are free here). */
#define LA_DONE(X, B, O, P, K)                                                              \
    ".L" X "_done" K ":\n\t"                                                                \
    "mov 0(%rsp), %rax\n\tmov 64+" K "(%rsp), %rcx\n\tshl $4, %rcx\n\t"                     \
    "mov " P ", 1200(%rax,%rcx)\n\tmov " O ", 1208(%rax,%rcx)\n\t"                          \
    "mov 96(%rsp), %rcx\n\tcmp 104(%rsp), %rcx\n\tjae .L" X "_exit\n\t"                     \
    "lea 1(%rcx), %r8\n\tmov %r8, 96(%rsp)\n\tshl $5, %rcx\n\tlea 176(%rax,%rcx), %rax\n\t" \
    "mov 0(%rax), " P "\n\tmov 8(%rax), " O "\n\tmov 16(%rax), %r8\n\tmov %r8, 24+" K "(%rsp)\n\t" \
    "mov 24(%rax), %r8\n\tmov %r8, 64+" K "(%rsp)\n\t"                                    \
    "mov 112(%rsp), %r8\n\tsub " P ", %r8\n\tjb .L" X "_exit\n\t"                           \
    "add $64, %r8\n\tshr $7, %r8\n\tinc %r8\n\tcmp 56(%rsp), %r8\n\tjae .L" X "_back" K "\n\t" \
    "mov %r8, 56(%rsp)\n\tjmp .L" X "_back" K "\n\t"
#define LA_PUSH(R) "push " R "\n\t.cfi_adjust_cfa_offset 8\n\t.cfi_rel_offset " R ", 0\n\t"
#define LA_POP(R) "pop " R "\n\t.cfi_adjust_cfa_offset -8\n\t.cfi_restore " R "\n\t"
#define LA_FUNCTION(NAME, LOOKUP)                                                           \
    __asm__(".pushsection .text\n"                                                          \
            ".p2align 5\n"                                                                  \
            ".globl " NAME "\n"                                                             \
            ".hidden " NAME "\n"                                                            \
            ".type " NAME ", @function\n" NAME ":\n\t"                                      \
            ".cfi_startproc\n\t"                                                            \
            LA_PUSH("%rbx") LA_PUSH("%rbp") LA_PUSH("%r12") LA_PUSH("%r13") LA_PUSH("%r14") \
            LA_PUSH("%r15")                                                                 \
            "sub $120, %rsp\n\t.cfi_adjust_cfa_offset 120\n\t"                              \
            "mov %rdi, 0(%rsp)\n\tmov 136(%rdi), %rax\n\tmov %rax, 8(%rsp)\n\t"             \
            "movabs $0x8000000000000000, %rax\n\tmov %rax, 16(%rsp)\n\t"                    \
            "mov 144(%rdi), %rax\n\tmov %rax, 56(%rsp)\n\t"                                 \
            "mov 152(%rdi), %rax\n\tmov %rax, 96(%rsp)\n\t"                                 \
            "mov 160(%rdi), %rax\n\tmov %rax, 104(%rsp)\n\t"                                \
            "mov 168(%rdi), %rax\n\tmov %rax, 112(%rsp)\n\t"                                \
            "mov 128(%rdi), %rdx\n\t"                                                       \
            LA_EACH(LA_IN, ) LA_EACH(LA_IN_P, ) /* %rdi last */                             \
            ".p2align 4\n"                                                                  \
            ".L" NAME "_pair:\n\t"                                                          \
            LA_ROUND(LOOKUP) LA_ROUND(LOOKUP)                                               \
            LA_EACH(LA_CHECK, NAME)                                                         \
            "decq 56(%rsp)\n\tjnz .L" NAME "_pair\n"                                        \
            ".L" NAME "_exit:\n\t"                                                          \
            "mov 0(%rsp), %rax\n\t"                                                         \
            LA_EACH(LA_OUT, )                                                               \
            "mov 96(%rsp), %rcx\n\tmov %rcx, 152(%rax)\n\t"                                 \
            "add $120, %rsp\n\t.cfi_adjust_cfa_offset -120\n\t"                             \
            LA_POP("%r15") LA_POP("%r14") LA_POP("%r13") LA_POP("%r12") LA_POP("%rbp")     \
            LA_POP("%rbx")                                                                  \
            "ret\n\t"                                                                       \
            ".cfi_adjust_cfa_offset 168\n\t" /* the done blocks run inside the frame */     \
            ".cfi_offset %rbx, -16\n\t.cfi_offset %rbp, -24\n\t.cfi_offset %r12, -32\n\t"  \
            ".cfi_offset %r13, -40\n\t.cfi_offset %r14, -48\n\t.cfi_offset %r15, -56\n\t"  \
            LA_EACH(LA_DONE, NAME)                                                          \
            ".cfi_endproc\n"                                                                \
            ".size " NAME ", .-" NAME "\n"                                                  \
            ".popsection\n");
/* Each function is one string literal, past the 4095 characters ISO C
 * promises (clang warns under -Wpedantic); GCC and clang take it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
LA_FUNCTION("ecf8_lanes4_bmi2", LA_LOOKUP)
LA_FUNCTION("ecf8_lanes4_pairs_bmi2", LA_LOOKUP_PAIRS)
#pragma GCC diagnostic pop
_Static_assert(offsetof(lane_pairs, meta) == 16384, "LA_LOOKUP_PAIRS reads meta at 16384");
#undef LA_EACH
#undef LA_IN
#undef LA_IN_P
#undef LA_OUT
#undef LA_REFILL
#undef LA_LOOKUP
#undef LA_LOOKUP_PAIRS
#undef LA_ADVANCE
#undef LA_ROUND
#undef LA_CHECK
#undef LA_DONE
#undef LA_PUSH
#undef LA_POP
#undef LA_FUNCTION
#else
#define LANES_ASM 0
#endif

/* Decodes the 32 lanes of a chunk into their scratch rows, WAYS at a time
 * from a queue: a lane that is done hands its way to the next lane, so the
 * ways stay busy until the last lanes of the chunk (fewer ways then).
 * Lanes decode whole rounds past their last symbol (four ways look at
 * their ends every CHECK_ROUNDS rounds: at most CHECK_ROUNDS * ROUND_MOST
 * - 1 symbols into the row's slack): where a lane stops is its position less
 * the code lengths of the symbols it decoded too many, so no lane needs a
 * tail of single lookups.  Errors wait until every lane is done and name
 * the lowest lane that did not consume exactly its length.  `limit`: the
 * last lane bit from which an 8-byte load ends inside the chunk. */
static inline __attribute__((always_inline)) int
decode_chunk_lanes(const fast_job *j, uint64_t c, const uint8_t *lanes, const ecf8_lane_chunk *lc,
                   uint32_t limit, const lane_rows *lr, const bool bmi2)
{
    const uint32_t *multi = j->multi;
    const unsigned mbits = j->multi_bits; /* a local: the stores below may alias *j */
    const uint8_t *lengths = j->s->lengths;
    const uint64_t base = (uint64_t)(uintptr_t)lanes * 8;
    lane_queue lq;
    lq.table = LANES_ASM && bmi2 && j->pairs ? (const void *)&j->pair : multi;
    lq.mask = (1u << mbits) - 1, lq.limit = base + limit;
    lq.next = 0, lq.queued = 0, lq.active = 0, lq.bad = 0, lq.cut = 0;
    for (unsigned l = 0; l < ECF8_LANES; l++) {
        if (lr->n[l]) { /* a lane without symbols must have no bits */
            uint8_t *row = lr->rows + l * ROW_BYTES;
            lq.q[lq.queued++] = (lane_slot){base + lc->start[l], row, row + lr->n[l], l};
        } else if (lc->start[l] != lc->start[l + 1]) {
            lq.bad |= 1u << l, lq.got[l] = lc->start[l];
        }
    }
    while (lq.active < WAYS && take_lane(&lq, lq.active)) lq.active++;
    while (lq.active) {
        /* Rounds until a lane is done, at most as many as keep every load
         * inside the chunk (a round consumes at most ROUND_LOOKUPS *
         * mbits <= 64 bits): only a corrupt lane runs past its length,
         * and one past the limit is stopped. */
        uint64_t far = 0;
        for (unsigned k = 0; k < lq.active; k++)
            if (lq.p[k] > far) far = lq.p[k];
        if (ECF8_LIKELY(far <= lq.limit)) {
            uint64_t n = (lq.limit - far) / 64 + 1;
            if (LANES_ASM && bmi2 && lq.active == WAYS && n >= CHECK_ROUNDS) {
#if LANES_ASM
                lq.n = n / CHECK_ROUNDS;
                if (j->pairs) ecf8_lanes4_pairs_bmi2(&lq);
                else ecf8_lanes4_bmi2(&lq);
#endif
            } else {
                uint32_t pos[WAYS];
                for (unsigned k = 0; k < lq.active; k++) pos[k] = (uint32_t)(lq.p[k] - base);
                switch (lq.active) {
                case 4:
                    if (n >= CHECK_ROUNDS)
                        lane_rounds(4, CHECK_ROUNDS, n / CHECK_ROUNDS, lanes, multi, mbits, pos, lq.o,
                                    lq.stop, bmi2);
                    else
                        lane_rounds(4, 1, n, lanes, multi, mbits, pos, lq.o, lq.stop, bmi2);
                    break;
                case 3: lane_rounds(3, 1, n, lanes, multi, mbits, pos, lq.o, lq.stop, bmi2); break;
                case 2: lane_rounds(2, 1, n, lanes, multi, mbits, pos, lq.o, lq.stop, bmi2); break;
                default: lane_rounds(1, 1, n, lanes, multi, mbits, pos, lq.o, lq.stop, bmi2); break;
                }
                for (unsigned k = 0; k < lq.active; k++) lq.p[k] = base + pos[k];
            }
        }
        for (unsigned k = 0; k < lq.active;) {
            unsigned l = (unsigned)lq.lane[k];
            if (lq.o[k] >= lq.stop[k]) { /* done */
                lq.end[l].p = lq.p[k], lq.end[l].o = lq.o[k];
            } else if (lq.p[k] > lq.limit) { /* corrupt: stopped where it got to */
                lq.bad |= 1u << l, lq.cut |= 1u << l, lq.got[l] = (uint32_t)(lq.p[k] - base);
            } else {
                k++;
                continue;
            }
            if (!take_lane(&lq, k)) {
                unsigned last = --lq.active;
                lq.lane[k] = lq.lane[last], lq.p[k] = lq.p[last];
                lq.o[k] = lq.o[last], lq.stop[k] = lq.stop[last];
            }
        }
    }
    /* Where each lane that ran to its end stopped: its position less the
     * symbols it decoded too many. */
    for (unsigned t = 0; t < lq.queued; t++) {
        unsigned l = (unsigned)lq.q[t].lane;
        if (lq.cut >> l & 1) continue;
        uint32_t at = (uint32_t)(lq.end[l].p - base);
        for (const uint8_t *p = lq.q[t].stop; p < lq.end[l].o; p++) at -= lengths[*p];
        if (at != lc->start[l + 1]) lq.bad |= 1u << l, lq.got[l] = at;
    }
    if (lq.bad) {
        unsigned l = (unsigned)__builtin_ctz(lq.bad);
        return lane_error(c, l, lq.got[l] - lc->start[l], lc->start[l + 1] - lc->start[l], lq.cut >> l & 1);
    }
    return ECF8_OK;
}

/* All lanes of a chunk, compiled for the baseline and (x86-64) for CPUs
 * with BMI1/2 and LZCNT: shifts by a register without %cl, BZHI for the
 * table index, LZCNT for the sentinel.  Chosen at run time. */
#define DECODE_LANES(NAME, BMI2)                                                                   \
    static int NAME(const fast_job *j, uint64_t c, const uint8_t *lanes,                        \
                    const ecf8_lane_chunk *lc, uint32_t limit, const lane_rows *lr)             \
    {                                                                                              \
        return decode_chunk_lanes(j, c, lanes, lc, limit, lr, BMI2);                               \
    }
DECODE_LANES(decode_lanes_base, false)
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("bmi,bmi2,lzcnt"))) DECODE_LANES(decode_lanes_bmi2, true)
#endif
#undef DECODE_LANES

static int fast_chunk(const fast_job *j, uint64_t c, lane_rows *lr)
{
    const ecf8_stream *s = j->s;
    const unsigned W = j->l.element_bits / 8, q = 4 / W;
    ecf8_lane_chunk lc;
    int st = ecf8_lane_chunk_parse(s, &j->l, c, &lc);
    if (st) return st;
    if (lr->count != lc.count) {
        lr->count = lc.count;
        for (unsigned k = 0; k < ECF8_LANES; k++) lr->n[k] = (uint32_t)ecf8_lane_elements(lc.count, q, k);
    }
    const uint8_t *chunk = s->coded + s->chunk_offsets[c];
    if (s->code_bits == 0) { /* one symbol: no lane has bits (the parse checked) */
        unsigned sym = 0;
        while (!s->lengths[sym]) sym++;
        for (unsigned k = 0; k < ECF8_LANES; k++) memset(lr->rows + k * ROW_BYTES, (int)sym, lr->n[k]);
    } else {
        /* Loads from lane bit `limit` on still end inside the chunk. */
        uint32_t limit = (uint32_t)(s->chunk_offsets[c + 1] - s->chunk_offsets[c] - lc.table_bytes) * 8;
        if ((st = j->lanes(j, c, chunk + lc.table_bytes, &lc, limit, lr))) return st;
    }
    j->combine(lr->rows, chunk + lc.raw_offset, j->out + ecf8_chunk_start(s, c) * W, lc.count, j->stream);
    return ECF8_OK;
}

static int fast_task(void *ctx, uint64_t group)
{
    const fast_job *j = ctx;
    lane_rows lr = {.rows = malloc((size_t)ECF8_LANES * ROW_BYTES), .count = UINT64_MAX};
    if (!lr.rows) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    uint64_t c1 = (group + 1) * LANES_GROUP;
    if (c1 > j->s->n_chunks) c1 = j->s->n_chunks;
    int st = ECF8_OK;
    for (uint64_t c = group * LANES_GROUP; c < c1 && !st; c++) st = fast_chunk(j, c, &lr);
    free(lr.rows);
    return st;
}

/* Entry i: the symbols the bits of i decode to, as many (<= 3) as are
 * whole within them; the first always is (multi_bits >= code_bits). */
static void build_multi(fast_job *j)
{
    const unsigned cb = j->s->code_bits, P = j->multi_bits;
    j->pairs = true;
    for (uint32_t i = 0; i < (1u << P); i++) {
        uint32_t e = 0, used = 0, n = 0;
        while (n < 3) {
            uint16_t t = j->single[(i >> used) & ((1u << cb) - 1)];
            if (used + (t & 15u) > P) break;
            e |= (uint32_t)(t >> 4) << (8 * n);
            used += t & 15u, n++;
        }
        j->multi[i] = e | used << 24 | n << 30;
        j->pairs &= n < 3;
        j->pair.symbols[i] = (uint16_t)e, j->pair.meta[i] = (uint8_t)(used | n << 6);
    }
}

/* The table width: from max(code_bits, MULTI_MIN_BITS) one bit more
 * while that decodes at least MULTI_STEP_GAIN times as many symbols per
 * lookup, for a tensor large enough to pay for building the bigger
 * table.  Each bit doubles the table (13 bits: 32 KB, all of Zen 1's L1),
 * and short codes already yield three symbols in 11 bits: on the exponent
 * splits of the minilm and esrgan fixtures a 13-bit table decoded 6-12%
 * slower than an 11-bit one, while the byte split of LLM-shaped E4M3
 * (codes of 6-12 bits) gets 1.64 symbols per 13-bit lookup against 1.39
 * per 12-bit one (by this model) and decoded 5-13% faster (paired A/B,
 * one thread, CPU time).  Symbols per lookup, for random
 * bits (which a Huffman code's bits are): the chance that the first one,
 * two, three codes fit in the width, from the distribution of code lengths
 * convolved with itself. */
#define MULTI_STEP_GAIN 1.08
static unsigned multi_bits_choose(const ecf8_stream *s)
{
    double f1[MULTI_MAX_BITS + 1] = {0}, f2[MULTI_MAX_BITS + 1] = {0}, f3[MULTI_MAX_BITS + 1] = {0};
    for (unsigned i = 0; i < s->n_symbols; i++)
        if (s->lengths[i] && s->lengths[i] <= MULTI_MAX_BITS)
            f1[s->lengths[i]] += 1.0 / (1u << s->lengths[i]);
    for (unsigned a = 1; a <= MULTI_MAX_BITS; a++)
        for (unsigned b = 1; a + b <= MULTI_MAX_BITS; b++) f2[a + b] += f1[a] * f1[b];
    for (unsigned a = 2; a <= MULTI_MAX_BITS; a++)
        for (unsigned b = 1; a + b <= MULTI_MAX_BITS; b++) f3[a + b] += f2[a] * f1[b];
    unsigned bits = s->code_bits < MULTI_MIN_BITS ? MULTI_MIN_BITS : s->code_bits;
    double fit = 0, next;
    for (unsigned w = 1; w <= bits; w++) fit += f1[w] + f2[w] + f3[w];
    for (; bits < MULTI_MAX_BITS && s->n_elements >= (16ull << bits); bits++, fit = next) {
        next = fit + f1[bits + 1] + f2[bits + 1] + f3[bits + 1];
        if (next < fit * MULTI_STEP_GAIN) break;
    }
    return bits;
}

int ecf8_lanes_decode(const ecf8_stream *s, const ecf8_split_layout *l, int row, void *out,
                      unsigned threads, bool portable)
{
    fast_job *j = malloc(sizeof *j);
    if (!j) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    j->s = s, j->l = *l, j->out = out, j->combine = combiners[row];
    j->stream = s->n_elements * (l->element_bits / 8) >= STREAM_OUT_BYTES;
    j->lanes = decode_lanes_base;
#if defined(__x86_64__) && defined(__GNUC__)
    const unsigned need = ECF8_CPU_BMI2 | ECF8_CPU_LZCNT;
    if (!portable && (ecf8_cpu_features() & need) == need) j->lanes = decode_lanes_bmi2;
#else
    (void)portable;
#endif
    j->multi_bits = multi_bits_choose(s);
    j->pairs = false;
    int st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, j->single);
    if (!st && s->code_bits) build_multi(j);
    if (!st) st = ecf8_parallel_for(threads, ecf8_ceil_div(s->n_chunks, LANES_GROUP), fast_task, j);
    free(j);
    return st;
}
