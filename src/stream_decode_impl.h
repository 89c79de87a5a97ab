/* stream_decode_impl.h - the fast decoder's loops (stream_decode.c), one
 * source for every instruction set.  stream_decode.c includes it once per
 * instance with
 *   ISA         the suffix of the names made here (portable, bmi2)
 *   ISA_TARGET  the attribute that compiles them for that instruction set
 *               (__attribute__((target(...))); empty for the baseline)
 *   ISA_BMI2    1 where BZHI may be used, else 0
 * defined, and gets `static const decoder_set decoders_<ISA>[DECODE_SETS]`:
 * one set per row of split_layouts.def, then the FP8 pair-table set.
 * It undefines those three and its own macros at its end.
 *
 * Every (layout, ways) instance has the field layout and the number of
 * ways as constants and the ways' state in locals (byte stores may alias
 * anything reached through a pointer, which would force reloads). */
#define FN(name) FN_(name, ISA)
#define FN_(name, isa) FN__(name, isa)
#define FN__(name, isa) name##_##isa
#define INLINE static inline __attribute__((always_inline)) ISA_TARGET

/* The low `bits` bits of b, the table index: one BZHI where there is BMI2
 * instead of a copy and an AND (compilers do not form it from a mask kept
 * in a register).  Inline assembly, so that the portable instance needs no
 * BMI2 intrinsics. */
INLINE uint64_t FN(low_bits)(uint64_t b, unsigned bits)
{
#if ISA_BMI2
    uint64_t r;
    __asm__("bzhi %2, %1, %0" : "=r"(r) : "r"(b), "r"((uint64_t)bits));
    return r;
#else
    return b & ((1ull << bits) - 1);
#endif
}

/* Generic entries (one element per lookup, indexed by code_bits bits):
 * the code length in the low byte, above it the symbol already shifted to
 * its place in the element.  The raw bits of an exponent split are the
 * sign above the low bits, so one lookup in raw_map places them both.
 * Element u after o[k]. */
#define ELEMENT(k, u)                                                                    \
    do {                                                                                 \
        uint64_t e = table[FN(low_bits)(b[k], tbits)];                                   \
        b[k] >>= e & 63;                                                                 \
        unsigned raw = (unsigned)b[k] & ((1u << R) - 1);                                 \
        b[k] >>= R;                                                                      \
        unsigned x = (unsigned)(e >> 8) | (R > SH ? raw_map[raw] : raw);                 \
        if (W == 1) {                                                                    \
            o[k][u] = (uint8_t)x;                                                        \
        } else {                                                                         \
            uint16_t v16 = (uint16_t)x;                                                  \
            memcpy(o[k] + 2 * (u), &v16, 2);                                             \
        }                                                                                \
    } while (0)
#define GENERIC_LOCALS                                                                   \
    const uint32_t *table = j->table;                                                    \
    const uint16_t *raw_map = j->raw_map;                                                \
    const unsigned tbits = j->s->code_bits;                                              \
    WAY_LOCALS

INLINE void FN(decode_generic)(const int ways, const unsigned W, const unsigned SH,
                               const unsigned R, const decode_job *j, way_state *L)
{
    const unsigned N = GENERIC_N(R);
    GENERIC_LOCALS;
    uint64_t common = UINT64_MAX;
    _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) {
        WAYS_LOAD(k);
        uint64_t n = (uint64_t)(end[k] - o[k]) / W;
        if (n < common) common = n;
    }
    for (uint64_t i = common / N; i; i--) {
        _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) REFILL(k);
        _Pragma("GCC unroll 4") for (unsigned u = 0; u < N; u++)
            _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) ELEMENT(k, u);
        _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) o[k] += W * N;
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) WAYS_SAVE(k);
}

INLINE void FN(finish_generic)(const unsigned W, const unsigned SH, const unsigned R,
                               const decode_job *j, way_state *L)
{
    const unsigned N = GENERIC_N(R);
    GENERIC_LOCALS;
    WAYS_LOAD(0);
    while ((uint64_t)(end[0] - o[0]) >= W * N) {
        REFILL(0);
        _Pragma("GCC unroll 4") for (unsigned u = 0; u < N; u++) ELEMENT(0, u);
        o[0] += W * N;
    }
    for (; o[0] < end[0]; o[0] += W) {
        REFILL(0);
        ELEMENT(0, 0);
    }
    WAYS_SAVE(0);
}

/* FP8, both splits: an element (code word and raw bits) is at most
 * code_bits + raw_bits <= PAIR_BITS long, so one lookup of the next
 * PAIR_BITS bits decodes one whole element, and two when both fit (most
 * lookups: trained weights code to about 6.5 bits per element).  Entry
 * (ecf8_pair_table_build): the output bytes in bits 0-15 (stored as they
 * are), the bits consumed in 16-21 (the buffer shifts by the entry rotated
 * by 16: one RORX), the length of the first element alone in 24-27, the
 * element count (1 or 2) in 30-31. */
#define PAIR(k)                                                 \
    do {                                                        \
        uint64_t e = pairs[FN(low_bits)(b[k], PAIR_BITS)];      \
        uint16_t v = (uint16_t)e;                               \
        memcpy(o[k], &v, 2);                                    \
        b[k] >>= (e >> 16 | e << 48) & 63;                      \
        o[k] += e >> 30;                                        \
    } while (0)
#define PAIR_LOCALS                                             \
    const uint32_t *pairs = j->table;                           \
    WAY_LOCALS

INLINE void FN(decode_pairs)(const int ways, const decode_job *j, way_state *L)
{
    PAIR_LOCALS;
    _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) WAYS_LOAD(k);
    /* Rounds of four lookups per way (4 x PAIR_BITS <= 56 bits) write at
     * most 8 bytes per way: as many as the way nearest its end allows,
     * then look again. */
    for (;;) {
        uint64_t room = UINT64_MAX;
        _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) {
            uint64_t r = (uint64_t)(end[k] - o[k]);
            if (r < room) room = r;
        }
        if (room < PAIR_TAIL) break;
        for (uint64_t rounds = room / PAIR_TAIL; rounds; rounds--) {
            _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) REFILL(k);
            _Pragma("GCC unroll 4") for (int u = 0; u < 4; u++)
                _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) PAIR(k);
        }
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < ways; k++) WAYS_SAVE(k);
}

/* Rounds while 8 bytes fit, pairs while two do, a single element last. */
INLINE void FN(finish_pairs)(const decode_job *j, way_state *L)
{
    PAIR_LOCALS;
    WAYS_LOAD(0);
    while (end[0] - o[0] >= PAIR_TAIL) {
        REFILL(0);
        PAIR(0);
        PAIR(0);
        PAIR(0);
        PAIR(0);
    }
    while (end[0] - o[0] >= 2) {
        REFILL(0);
        PAIR(0);
    }
    if (o[0] < end[0]) {
        REFILL(0);
        uint64_t e = pairs[FN(low_bits)(b[0], PAIR_BITS)];
        *o[0]++ = (uint8_t)e;
        b[0] >>= (e >> 24) & 15;
    }
    WAYS_SAVE(0);
}

/* The decoder set of each row of split_layouts.def, and of the pair table:
 * `run` takes the number of ways as an argument and switches to the
 * instance made for it. */
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS)                  \
    static ISA_TARGET void FN(NAME##_run)(const decode_job *j, way_state *L, int ways)       \
    {                                                                                        \
        FOR_WAYS(ways, FN(decode_generic), (ELEMENT_BITS) / 8, SHIFT,                        \
                 (ELEMENT_BITS) - (SYMBOL_BITS), j, L);                                      \
    }                                                                                        \
    static ISA_TARGET void FN(NAME##_finish)(const decode_job *j, way_state *l)              \
    {                                                                                        \
        FN(finish_generic)((ELEMENT_BITS) / 8, SHIFT, (ELEMENT_BITS) - (SYMBOL_BITS), j, l); \
    }
#include "split_layouts.def"

static ISA_TARGET void FN(pairs_run)(const decode_job *j, way_state *L, int ways)
{
    FOR_WAYS(ways, FN(decode_pairs), j, L);
}

static ISA_TARGET void FN(pairs_finish)(const decode_job *j, way_state *l)
{
    FN(finish_pairs)(j, l);
}

static const decoder_set FN(decoders)[DECODE_SETS] = {
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS) \
    {FN(NAME##_run), FN(NAME##_finish),                                         \
     (ELEMENT_BITS) / 8 * GENERIC_N((ELEMENT_BITS) - (SYMBOL_BITS))},
#include "split_layouts.def"
    {FN(pairs_run), FN(pairs_finish), PAIR_TAIL},
};

#undef ELEMENT
#undef GENERIC_LOCALS
#undef PAIR
#undef PAIR_LOCALS
#undef INLINE
#undef FN
#undef FN_
#undef FN__
#undef ISA
#undef ISA_TARGET
#undef ISA_BMI2
