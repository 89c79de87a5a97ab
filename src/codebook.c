/* codebook.c - dtypes, symbol splits, canonical codes and one-lookup
 * decode tables: what decoding needs (the encoder's code construction is in
 * codebook_build.c). */
#include "stream.h"
#include "stream_decode.h"

#include <stdlib.h>

ecf8_dtype ecf8_dtype_from_name(const char *name)
{
    if (!name) return ECF8_DTYPE_OTHER;
    if (!strcmp(name, "F8_E4M3")) return ECF8_DTYPE_F8_E4M3;
    if (!strcmp(name, "F8_E5M2")) return ECF8_DTYPE_F8_E5M2;
    if (!strcmp(name, "BF16")) return ECF8_DTYPE_BF16;
    if (!strcmp(name, "F16")) return ECF8_DTYPE_F16;
    if (!strcmp(name, "F8_E4M3FNUZ")) return ECF8_DTYPE_F8_E4M3FNUZ;
    if (!strcmp(name, "F8_E5M2FNUZ")) return ECF8_DTYPE_F8_E5M2FNUZ;
    if (!strcmp(name, "U8")) return ECF8_DTYPE_U8;
    if (!strcmp(name, "I8")) return ECF8_DTYPE_I8;
    if (!strcmp(name, "F8_E8M0")) return ECF8_DTYPE_F8_E8M0;
    return ECF8_DTYPE_OTHER;
}

const char *ecf8_dtype_name(ecf8_dtype dtype)
{
    switch (dtype) {
    case ECF8_DTYPE_F8_E4M3: return "F8_E4M3";
    case ECF8_DTYPE_F8_E5M2: return "F8_E5M2";
    case ECF8_DTYPE_BF16: return "BF16";
    case ECF8_DTYPE_F16: return "F16";
    case ECF8_DTYPE_F8_E4M3FNUZ: return "F8_E4M3FNUZ";
    case ECF8_DTYPE_F8_E5M2FNUZ: return "F8_E5M2FNUZ";
    case ECF8_DTYPE_U8: return "U8";
    case ECF8_DTYPE_I8: return "I8";
    case ECF8_DTYPE_F8_E8M0: return "F8_E8M0";
    default: return "OTHER";
    }
}

const char *ecf8_split_name(ecf8_split split)
{
    switch (split) {
    case ECF8_SPLIT_STORED: return "stored";
    case ECF8_SPLIT_EXPONENT: return "exponent";
    case ECF8_SPLIT_BYTE: return "byte";
    case ECF8_SPLIT_AUTO: return "auto";
    default: return "?";
    }
}

unsigned ecf8_dtype_size(ecf8_dtype dtype)
{
    switch (dtype) {
    case ECF8_DTYPE_F8_E4M3:
    case ECF8_DTYPE_F8_E5M2:
    case ECF8_DTYPE_F8_E4M3FNUZ:
    case ECF8_DTYPE_F8_E5M2FNUZ:
    case ECF8_DTYPE_U8:
    case ECF8_DTYPE_I8:
    case ECF8_DTYPE_F8_E8M0: return 1;
    case ECF8_DTYPE_BF16:
    case ECF8_DTYPE_F16: return 2;
    default: return 0;
    }
}

/* split_layouts.def as data: one row per (dtype, split). */
static const struct {
    ecf8_dtype dtype;
    ecf8_split split;
    ecf8_split_layout layout;
} split_layouts[ECF8_LAYOUT_COUNT] = {
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SYMBOL_SHIFT, SYMBOL_BITS) \
    {DTYPE, SPLIT, {ELEMENT_BITS, SYMBOL_SHIFT, SYMBOL_BITS, (ELEMENT_BITS) - (SYMBOL_BITS)}},
#include "split_layouts.def"
};

int ecf8_split_layout_row(ecf8_dtype dtype, ecf8_split split, ecf8_split_layout *out)
{
    for (int r = 0; r < ECF8_LAYOUT_COUNT; r++)
        if (split_layouts[r].dtype == dtype && split_layouts[r].split == split) {
            if (out) *out = split_layouts[r].layout;
            return r;
        }
    return -1;
}

int ecf8_split_layout_get(ecf8_dtype dtype, ecf8_split split, ecf8_split_layout *out)
{
    if (ecf8_split_layout_row(dtype, split, out) >= 0) return ECF8_OK;
    /* Every coded dtype has the byte split. */
    if (ecf8_split_layout_row(dtype, ECF8_SPLIT_BYTE, NULL) < 0)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "dtype cannot be coded");
    if (split == ECF8_SPLIT_EXPONENT)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "%s has no exponent split", ecf8_dtype_name(dtype));
    return ecf8_fail(ECF8_ERR_ARGUMENT, "split %d has no symbol layout", (int)split);
}

/* Each byte value with its bits reversed, generated two bits at a time. */
#define REV2(n) n, n + 2 * 64, n + 1 * 64, n + 3 * 64
#define REV4(n) REV2(n), REV2(n + 2 * 16), REV2(n + 1 * 16), REV2(n + 3 * 16)
#define REV6(n) REV4(n), REV4(n + 2 * 4), REV4(n + 1 * 4), REV4(n + 3 * 4)
static const uint8_t reversed_byte[256] = {REV6(0), REV6(2), REV6(1), REV6(3)};
#undef REV2
#undef REV4
#undef REV6

/* The low n (1..16) bits of v reversed. */
static unsigned reverse_bits(unsigned v, unsigned n)
{
    return ((unsigned)reversed_byte[v & 255] << 8 | reversed_byte[v >> 8 & 255]) >> (16 - n);
}

/* Canonical codes: ordered by (length, symbol), consecutive values per length,
 * bit-reversed because the stream is read LSB first. */
int ecf8_canonical_codes(const uint8_t *lengths, unsigned n_symbols, uint16_t *codes)
{
    unsigned count[16] = {0}, next[16];
    for (unsigned s = 0; s < n_symbols; s++) {
        if (lengths[s] > 15) return ecf8_fail(ECF8_ERR_CORRUPT, "code length %u > 15", lengths[s]);
        count[lengths[s]]++;
    }
    count[0] = 0;
    unsigned code = 0;
    for (unsigned len = 1; len < 16; len++) {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    for (unsigned s = 0; s < n_symbols; s++) {
        unsigned len = lengths[s];
        codes[s] = len ? (uint16_t)reverse_bits(next[len]++, len) : 0;
    }
    return ECF8_OK;
}

int ecf8_code_check(const uint8_t *lengths, unsigned n_symbols, unsigned table_bits)
{
    if (!lengths || n_symbols == 0 || n_symbols > 256 || table_bits > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode table: bad arguments");
    /* One pass (this runs once per decoded tensor); the loop below only
     * names the culprit. */
    const unsigned max_len = table_bits ? table_bits : 1;
    unsigned used = 0, bad = 0;
    uint32_t kraft = 0; /* in units of 2^-16: exact for lengths <= 15 */
    for (unsigned s = 0; s < n_symbols; s++) {
        unsigned len = lengths[s];
        bad |= len > max_len;
        used += len != 0;
        kraft += len ? 0x10000u >> (len & 15) : 0;
    }
    if (bad) {
        for (unsigned s = 0; s < n_symbols; s++)
            if (lengths[s] > max_len)
                return ecf8_fail(ECF8_ERR_CORRUPT, "code length %u of symbol %u exceeds %u bits",
                                 lengths[s], s, max_len);
    }
    if (table_bits == 0) {
        /* Degenerate one-symbol code (FORMAT.md): the symbol is implied and
         * costs no bits. */
        if (used != 1) return ecf8_fail(ECF8_ERR_CORRUPT, "zero-bit code must have one symbol");
        return ECF8_OK;
    }
    if (used < 2)
        return ecf8_fail(ECF8_ERR_CORRUPT, "a %u-bit code needs at least two symbols", table_bits);
    if (kraft != 0x10000u)
        return ecf8_fail(ECF8_ERR_CORRUPT, "code lengths are %s (Kraft sum %llu/%llu)",
                         kraft > 0x10000u ? "over-subscribed" : "incomplete",
                         (unsigned long long)(kraft >> (16 - table_bits)), 1ull << table_bits);
    return ECF8_OK;
}

int ecf8_decode_table_build(const uint8_t *lengths, unsigned n_symbols, unsigned table_bits,
                            uint16_t *table)
{
    if (!table) return ecf8_fail(ECF8_ERR_ARGUMENT, "decode table: bad arguments");
    int st = ecf8_code_check(lengths, n_symbols, table_bits);
    if (st) return st;
    if (table_bits == 0) {
        /* The one-symbol code's table is one entry of length 0. */
        for (unsigned s = 0; s < n_symbols; s++)
            if (lengths[s]) table[0] = (uint16_t)(s << 4);
        return ECF8_OK;
    }
    uint16_t codes[256];
    st = ecf8_canonical_codes(lengths, n_symbols, codes);
    if (st) return st;
    /* The entries of the codes of length <= len repeat every 2^len, so the
     * table grows by doubling (a copy of itself) and each symbol writes one
     * entry at the level of its length: one copy of the table instead of a
     * store per entry, which matters for small tensors. */
    unsigned first[17] = {0}, next[16], order[256]; /* symbols by length: a counting sort */
    for (unsigned s = 0; s < n_symbols; s++) first[lengths[s] + 1]++;
    for (unsigned len = 1; len <= 16; len++) first[len] += first[len - 1];
    memcpy(next, first, sizeof next);
    for (unsigned s = 0; s < n_symbols; s++) order[next[lengths[s]]++] = s;
    table[0] = 0;
    for (unsigned len = 1, size = 1; len <= table_bits; len++, size *= 2) {
        memcpy(table + size, table, size * sizeof *table);
        for (unsigned i = first[len]; i < first[len + 1]; i++)
            table[codes[order[i]]] = (uint16_t)(order[i] << 4 | len);
    }
    return ECF8_OK;
}
