/* fuzz_codebook.c - the codebook builder and the decode table builder.
 *
 * Mode 0 (first byte even): ecf8_codebook_build on fuzzed counts.  A
 * success must give lengths that are 0 exactly for unused symbols, at most
 * max_bits, a complete code (accepted by ecf8_decode_table_build) or the
 * one-symbol code, and an optimal one: as cheap as an unrestricted Huffman
 * code whenever that code fits in max_bits (checked when the counts are
 * small enough for exact sums).  It may fail only for invalid arguments or
 * more used symbols than 2^max_bits codes.
 *
 * Mode 1 (first byte odd): ecf8_decode_table_build on fuzzed lengths,
 * compared with an independent model: it must accept exactly the complete
 * codes with lengths <= table_bits (or the one-symbol code for table_bits
 * 0), fill every entry, and map each index to the canonical code word it
 * starts with.
 *
 * Input: u8 mode, u8 bits, u16 n_symbols (mod 258), then
 *   mode 0: u8 count width w (1 + v % 8), n_symbols counts of w bytes;
 *   mode 1: n_symbols lengths, one byte each. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Unrestricted Huffman code cost (sum of count * length) and its longest
 * length, by repeatedly merging the two lightest trees.  n <= 256. */
static void huffman_cost(const uint64_t *counts, unsigned n, uint64_t *cost, unsigned *depth)
{
    uint64_t w[512];
    int parent[512];
    unsigned m = 0, leaves = 0;
    for (unsigned s = 0; s < n; s++)
        if (counts[s]) w[m] = counts[s], parent[m++] = -1, leaves++;
    bool alive[512];
    for (unsigned i = 0; i < m; i++) alive[i] = true;
    for (unsigned k = 1; k < leaves; k++) {
        int a = -1, b = -1;
        for (unsigned i = 0; i < m; i++) {
            if (!alive[i]) continue;
            if (a < 0 || w[i] < w[a]) b = a, a = (int)i;
            else if (b < 0 || w[i] < w[b]) b = (int)i;
        }
        alive[a] = alive[b] = false;
        w[m] = w[a] + w[b];
        parent[m] = -1;
        alive[m] = true;
        parent[a] = parent[b] = (int)m;
        m++;
    }
    *cost = 0;
    *depth = 0;
    for (unsigned i = 0; i < leaves; i++) {
        unsigned d = 0;
        for (int p = parent[i]; p >= 0; p = parent[p]) d++;
        *cost += w[i] * d;
        if (d > *depth) *depth = d;
    }
}

static void fuzz_codebook(fuzz_reader *r)
{
    unsigned max_bits = (unsigned)(fuzz_take(r, 1) % 16);
    unsigned n = (unsigned)(fuzz_take(r, 2) % 258);
    unsigned w = 1 + (unsigned)(fuzz_take(r, 1) % 8);
    uint64_t counts[257] = {0};
    unsigned used = 0;
    bool small = true;
    uint64_t total = 0;
    for (unsigned s = 0; s < n; s++) {
        counts[s] = fuzz_take(r, w);
        used += counts[s] != 0;
        small = small && counts[s] < (1ull << 40);
        if (__builtin_add_overflow(total, counts[s], &total)) total = UINT64_MAX;
    }
    uint8_t lengths[257];
    memset(lengths, 0xEE, sizeof lengths);
    int st = ecf8_codebook_build(counts, n, max_bits, lengths);
    bool args_ok = n >= 1 && n <= 256 && max_bits >= 1 && max_bits <= ECF8_MAX_CODE_BITS;
    bool fits = used <= 1 || used <= (1u << (max_bits < 16 ? max_bits : 15));
    FUZZ_CHECK((st == ECF8_OK) == (args_ok && fits),
               "codebook_build(n=%u, max_bits=%u, used=%u) returned %d", n, max_bits, used, st);
    if (st) return;
    FUZZ_CHECK(lengths[n] == 0xEE || n == 257, "wrote past n_symbols");
    unsigned maxlen = 0;
    uint64_t cost = 0;
    for (unsigned s = 0; s < n; s++) {
        FUZZ_CHECK((counts[s] == 0) == (lengths[s] == 0), "symbol %u: count %llu, length %u", s,
                   (unsigned long long)counts[s], lengths[s]);
        FUZZ_CHECK(lengths[s] <= max_bits, "symbol %u: length %u > %u", s, lengths[s], max_bits);
        if (lengths[s] > maxlen) maxlen = lengths[s];
        cost += counts[s] * lengths[s];
    }
    uint16_t table[1u << ECF8_MAX_CODE_BITS];
    if (used == 0) return;
    if (fuzz_known_codebook_overflow(total)) return; /* known bug 3 */
    if (used == 1) {
        FUZZ_CHECK(maxlen == 1, "one-symbol code has length %u", maxlen);
        FUZZ_CHECK(ecf8_decode_table_build(lengths, n, 0, table) == ECF8_OK, "one-symbol table");
        return;
    }
    FUZZ_CHECK(ecf8_decode_table_build(lengths, n, maxlen, table) == ECF8_OK,
               "lengths do not form a complete code");
    FUZZ_CHECK(ecf8_decode_table_build(lengths, n, max_bits, table) == ECF8_OK,
               "lengths rejected at table_bits = max_bits");
    if (small) {
        uint64_t hcost;
        unsigned hdepth;
        huffman_cost(counts, n, &hcost, &hdepth);
        FUZZ_CHECK(cost >= hcost, "cost %llu below Huffman's %llu", (unsigned long long)cost,
                   (unsigned long long)hcost);
        if (hdepth <= max_bits)
            FUZZ_CHECK(cost == hcost, "cost %llu, Huffman %llu fits %u bits",
                       (unsigned long long)cost, (unsigned long long)hcost, max_bits);
    }
}

static void fuzz_table(fuzz_reader *r)
{
    unsigned tb = (unsigned)(fuzz_take(r, 1) % 16);
    unsigned n = (unsigned)(fuzz_take(r, 2) % 258);
    uint8_t lengths[257] = {0};
    for (unsigned s = 0; s < n; s++) lengths[s] = (uint8_t)fuzz_take(r, 1);

    /* The model: which inputs are valid (FORMAT.md 4.3).  table_bits 0 is
     * the one-symbol code, whose one length must be 1 -- unless the known
     * bug 2 (fuzz_common.h) is still there, which accepted any length. */
    bool valid = n >= 1 && n <= 256 && tb <= ECF8_MAX_CODE_BITS;
    unsigned used = 0, count[256] = {0};
    uint64_t kraft = 0;
    for (unsigned s = 0; s < n && valid; s++) {
        if (!lengths[s]) continue;
        used++;
        if (tb == 0 && lengths[s] != 1 && !fuzz_one_symbol_is_buggy()) valid = false;
        else if (tb && lengths[s] > tb) valid = false;
        else if (tb) kraft += 1ull << (tb - lengths[s]), count[lengths[s]]++;
    }
    if (valid) valid = tb == 0 ? used == 1 : used >= 2 && kraft == (1ull << tb);

    static uint16_t table[1u << ECF8_MAX_CODE_BITS];
    memset(table, 0xFF, sizeof table);
    int st = ecf8_decode_table_build(lengths, n, tb, table);
    FUZZ_CHECK((st == ECF8_OK) == valid, "table_build(n=%u, bits=%u, used=%u) returned %d", n, tb,
               used, st);
    if (st) return;
    if (tb == 0) {
        unsigned sym = 0;
        while (!lengths[sym]) sym++;
        FUZZ_CHECK(table[0] == sym << 4, "one-symbol entry %#x for symbol %u", table[0], sym);
        return;
    }
    /* Canonical codes, MSB-first values, as DEFLATE assigns them. */
    unsigned next[16] = {0}, code = 0, value[256] = {0};
    for (unsigned len = 1; len < 16; len++) {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    for (unsigned s = 0; s < n; s++)
        if (lengths[s]) value[s] = next[lengths[s]]++;
    for (unsigned i = 0; i < (1u << tb); i++) {
        unsigned e = table[i], len = e & 15, sym = e >> 4;
        FUZZ_CHECK(e != 0xFFFF && len >= 1 && len <= tb && sym < n && lengths[sym] == len,
                   "entry %u = %#x", i, e);
        /* The first len stream bits (LSB first) are the code word, MSB first. */
        unsigned word = 0;
        for (unsigned b = 0; b < len; b++) word = word << 1 | ((i >> b) & 1);
        FUZZ_CHECK(word == value[sym], "entry %u: symbol %u has code %#x, index spells %#x", i,
                   sym, value[sym], word);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size, 0};
    if (fuzz_take(&r, 1) & 1)
        fuzz_table(&r);
    else
        fuzz_codebook(&r);
    return 0;
}
