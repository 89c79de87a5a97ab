/* test_codebook.c - length-limited Huffman builder and one-lookup decode
 * tables: Kraft equality, the length limit, optimality against brute force
 * and an independent dynamic program, degenerate alphabets, table contents
 * and the rejection of malformed code lengths. */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* ---- independent references ------------------------------------------------ */
/* Kraft sum of the used symbols' lengths, in units of 2^-16. */
static uint64_t kraft16(const uint8_t *len, unsigned n)
{
    uint64_t k = 0;
    for (unsigned s = 0; s < n; s++)
        if (len[s]) k += 1ull << (16 - len[s]);
    return k;
}

static u128 cost(const uint64_t *counts, const uint8_t *len, unsigned n)
{
    u128 c = 0;
    for (unsigned s = 0; s < n; s++) c += (u128)counts[s] * len[s];
    return c;
}

/* Checks everything the builder promises for counts and max_bits. */
static void check_code(const uint64_t *counts, unsigned n, unsigned max_bits, const uint8_t *len)
{
    unsigned used = 0;
    for (unsigned s = 0; s < n; s++) {
        if (!counts[s]) {
            assert_int_equal(len[s], 0);
            continue;
        }
        used++;
        assert_true(len[s] >= 1);
        assert_true(len[s] <= max_bits);
    }
    if (used >= 2) assert_int_equal(kraft16(len, n), 1ull << 16); /* complete code */
    if (used == 1)
        for (unsigned s = 0; s < n; s++)
            if (counts[s]) assert_int_equal(len[s], 1);
}

/* Minimal cost of any prefix code with lengths in 1..max_bits over the
 * (all non-zero) counts, by enumerating every length vector (n <= 6). */
static u128 brute_force_cost(const uint64_t *counts, unsigned n, unsigned max_bits)
{
    unsigned lim = max_bits < n - 1 ? max_bits : n - 1; /* longer never helps */
    if (lim < 1) lim = 1;
    uint8_t len[8];
    for (unsigned s = 0; s < n; s++) len[s] = 1;
    u128 best = ~(u128)0;
    for (;;) {
        if (kraft16(len, n) <= (1ull << 16)) {
            u128 c = cost(counts, len, n);
            if (c < best) best = c;
        }
        unsigned s = 0;
        while (s < n && len[s] == lim) len[s++] = 1;
        if (s == n) break;
        len[s]++;
    }
    return best;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Optimal length-limited cost by dynamic programming over levels: the
 * symbols sorted by falling count take non-decreasing lengths; at level l
 * with `a` open nodes, k of them become the next k leaves and the other
 * a-k split into 2(a-k) nodes of level l+1.  Independent of package-merge. */
#define DP_MAX 48
static u128 dp_memo[ECF8_MAX_CODE_BITS + 2][DP_MAX + 1][DP_MAX + 1];
static unsigned char dp_done[ECF8_MAX_CODE_BITS + 2][DP_MAX + 1][DP_MAX + 1];
static uint64_t dp_sorted[DP_MAX];
static unsigned dp_n, dp_L;
static const u128 DP_INF = ~(u128)0;

static u128 dp(unsigned l, unsigned i, unsigned a)
{
    if (i == dp_n) return a == 0 ? 0 : DP_INF; /* complete codes only */
    if (l > dp_L || a == 0 || a > dp_n - i) return DP_INF;
    if (dp_done[l][i][a]) return dp_memo[l][i][a];
    u128 best = DP_INF, placed = 0;
    for (unsigned k = 0; k <= a && i + k <= dp_n; k++) {
        if (k) placed += (u128)dp_sorted[i + k - 1] * l;
        unsigned next = 2 * (a - k);
        if (next > DP_MAX) continue;
        u128 rest = dp(l + 1, i + k, next);
        if (rest != DP_INF && placed + rest < best) best = placed + rest;
    }
    dp_done[l][i][a] = 1;
    dp_memo[l][i][a] = best;
    return best;
}

static u128 dp_cost(const uint64_t *counts, unsigned n_symbols, unsigned max_bits)
{
    dp_n = 0;
    for (unsigned s = 0; s < n_symbols; s++)
        if (counts[s]) dp_sorted[dp_n++] = counts[s];
    qsort(dp_sorted, dp_n, sizeof dp_sorted[0], cmp_desc);
    dp_L = max_bits;
    memset(dp_done, 0, sizeof dp_done);
    return dp(1, 0, 2);
}

/* Plain (unlimited) Huffman cost: sum of the merged weights. */
static u128 huffman_cost(const uint64_t *counts, unsigned n, unsigned *depth_out)
{
    u128 w[512];
    unsigned depth[512], m = 0;
    for (unsigned s = 0; s < n; s++)
        if (counts[s]) w[m] = counts[s], depth[m++] = 0;
    u128 total = 0;
    unsigned maxd = 0;
    while (m > 1) {
        unsigned a = 0, b = 1;
        if (w[b] < w[a]) a = 1, b = 0;
        for (unsigned i = 2; i < m; i++) {
            if (w[i] < w[a]) b = a, a = i;
            else if (w[i] < w[b]) b = i;
        }
        u128 merged = w[a] + w[b];
        unsigned d = (depth[a] > depth[b] ? depth[a] : depth[b]) + 1;
        total += merged;
        unsigned lo = a < b ? a : b, hi = a < b ? b : a;
        w[lo] = merged, depth[lo] = d;
        w[hi] = w[m - 1], depth[hi] = depth[m - 1];
        m--;
        if (d > maxd) maxd = d;
    }
    if (depth_out) *depth_out = maxd;
    return total;
}

/* Canonical code words, MSB first, from the textbook definition. */
static void canonical_msb(const uint8_t *len, unsigned n, unsigned *code)
{
    unsigned next = 0, prev_len = 0;
    for (unsigned l = 1; l <= 15; l++)
        for (unsigned s = 0; s < n; s++)
            if (len[s] == l) {
                next <<= (l - prev_len);
                prev_len = l;
                code[s] = next++;
            }
}

static unsigned reverse(unsigned v, unsigned bits)
{
    unsigned r = 0;
    for (unsigned i = 0; i < bits; i++) r = r << 1 | ((v >> i) & 1);
    return r;
}

static void random_counts(uint64_t *rng, uint64_t *counts, unsigned n, int zeros, int skew)
{
    for (unsigned s = 0; s < n; s++) {
        uint64_t r = tu_rand(rng);
        if (zeros && r % 5 == 0) {
            counts[s] = 0;
            continue;
        }
        switch (skew) {
        case 0: counts[s] = 1 + r % 100; break;
        case 1: counts[s] = 1ull << (r % 40); break;                 /* spans many magnitudes */
        default: counts[s] = 1 + (r >> 3) % ((1ull << (r % 30)) + 1); break;
        }
    }
}

/* ---- builder ------------------------------------------------------------------ */
static void test_kraft_sum_is_one(void **state)
{
    (void)state;
    uint64_t rng = 11, counts[256];
    uint8_t len[256];
    for (int it = 0; it < 600; it++) {
        unsigned n = 2 + (unsigned)(tu_rand(&rng) % 255);
        random_counts(&rng, counts, n, it % 3 == 0, it % 3);
        unsigned used = 0;
        for (unsigned s = 0; s < n; s++) used += counts[s] != 0;
        if (used < 2) counts[0] = counts[1] = 1, used = 2;
        unsigned need = 0;
        while ((1u << need) < used) need++;
        for (unsigned mb = need ? need : 1; mb <= ECF8_MAX_CODE_BITS; mb += 1 + it % 3) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
        }
    }
}

/* Fibonacci counts make an unlimited Huffman code as deep as it can be, so
 * the limit binds at every max_bits. */
static void test_length_limit_every_max_bits(void **state)
{
    (void)state;
    uint64_t fib[64], counts[256];
    fib[0] = fib[1] = 1;
    for (int i = 2; i < 64; i++) fib[i] = fib[i - 1] + fib[i - 2];
    uint8_t len[256];
    for (unsigned mb = 1; mb <= ECF8_MAX_CODE_BITS; mb++) {
        unsigned sizes[] = {2, 3, 5, 17, 40, 64, 100, 200, 256};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            unsigned n = sizes[k];
            for (unsigned s = 0; s < n; s++) counts[s] = s < 60 ? fib[s] : fib[59] + s;
            int st = ecf8_codebook_build(counts, n, mb, len);
            if (n > (1u << mb)) {
                /* Infeasible: more symbols than 2^max_bits code words. */
                assert_int_equal(st, ECF8_ERR_ARGUMENT);
                assert_non_null(strstr(ecf8_last_error(), "do not fit"));
                continue;
            }
            assert_int_equal(st, ECF8_OK);
            check_code(counts, n, mb, len);
            if (n == (1u << mb)) /* exactly full: every length equals max_bits */
                for (unsigned s = 0; s < n; s++) assert_int_equal(len[s], mb);
            if (n <= DP_MAX) assert_true(cost(counts, len, n) == dp_cost(counts, n, mb));
        }
    }
}

static void test_optimal_against_brute_force(void **state)
{
    (void)state;
    uint64_t rng = 5, counts[8];
    uint8_t len[8];
    for (int it = 0; it < 400; it++) {
        unsigned n = 2 + (unsigned)(tu_rand(&rng) % 5); /* 2..6 symbols */
        random_counts(&rng, counts, n, 0, it % 3);
        unsigned need = 0;
        while ((1u << need) < n) need++;
        for (unsigned mb = need; mb <= 6; mb++) {
            if (mb == 0) continue;
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
            u128 got = cost(counts, len, n), want = brute_force_cost(counts, n, mb);
            if (got != want)
                fail_msg("n=%u max_bits=%u: cost %llu, optimum %llu", n, mb,
                         (unsigned long long)got, (unsigned long long)want);
        }
    }
}

/* Zero counts anywhere in the alphabet do not change the code of the rest. */
static void test_optimal_with_unused_symbols(void **state)
{
    (void)state;
    uint64_t rng = 77, counts[16], packed[16];
    uint8_t len[16], plen[16];
    for (int it = 0; it < 300; it++) {
        unsigned n = 16, m = 0;
        random_counts(&rng, counts, n, 1, it % 3);
        for (unsigned s = 0; s < n; s++)
            if (counts[s]) packed[m++] = counts[s];
        if (m < 2) continue;
        unsigned need = 0;
        while ((1u << need) < m) need++;
        for (unsigned mb = need ? need : 1; mb <= 8; mb++) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
            assert_int_equal(ecf8_codebook_build(packed, m, mb, plen), ECF8_OK);
            assert_true(cost(counts, len, n) == cost(packed, plen, m));
            if (m <= 6) assert_true(cost(counts, len, n) == brute_force_cost(packed, m, mb));
        }
    }
}

/* Against the DP on medium alphabets and against plain Huffman when the
 * limit does not bind. */
static void test_optimal_against_references(void **state)
{
    (void)state;
    uint64_t rng = 99, counts[256];
    uint8_t len[256];
    for (int it = 0; it < 120; it++) {
        unsigned n = 7 + (unsigned)(tu_rand(&rng) % (DP_MAX - 6));
        random_counts(&rng, counts, n, 0, 1 + it % 2);
        unsigned need = 0;
        while ((1u << need) < n) need++;
        for (unsigned mb = need; mb <= ECF8_MAX_CODE_BITS; mb += 2) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
            assert_true(cost(counts, len, n) == dp_cost(counts, n, mb));
        }
    }
    for (int it = 0; it < 200; it++) {
        unsigned n = 2 + (unsigned)(tu_rand(&rng) % 255), depth;
        random_counts(&rng, counts, n, it % 2, 0);
        unsigned used = 0;
        for (unsigned s = 0; s < n; s++) used += counts[s] != 0;
        if (used < 2) continue;
        u128 h = huffman_cost(counts, n, &depth);
        if (depth > ECF8_MAX_CODE_BITS) continue;
        assert_int_equal(ecf8_codebook_build(counts, n, ECF8_MAX_CODE_BITS, len), ECF8_OK);
        assert_true(cost(counts, len, n) == h);
    }
}

static void test_one_symbol(void **state)
{
    (void)state;
    uint64_t counts[256] = {0};
    uint8_t len[256];
    uint16_t table[1];
    for (unsigned n = 1; n <= 256; n = n * 3 + 1) {
        for (unsigned which = 0; which < n; which += 1 + n / 4) {
            memset(counts, 0, sizeof counts);
            counts[which] = 12345;
            for (unsigned mb = 1; mb <= ECF8_MAX_CODE_BITS; mb += 6) {
                memset(len, 0xAA, sizeof len);
                assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
                for (unsigned s = 0; s < n; s++) assert_int_equal(len[s], s == which ? 1 : 0);
                /* The zero-bit table: one entry, the symbol with length 0. */
                table[0] = 0xFFFF;
                assert_int_equal(ecf8_decode_table_build(len, n, 0, table), ECF8_OK);
                assert_int_equal(table[0], which << 4);
                /* A table with index bits needs two symbols. */
                uint16_t t2[2];
                assert_int_equal(ecf8_decode_table_build(len, n, 1, t2), ECF8_ERR_CORRUPT);
            }
        }
    }
    /* Count 1 or UINT64_MAX alike. */
    memset(counts, 0, sizeof counts);
    counts[255] = UINT64_MAX;
    assert_int_equal(ecf8_codebook_build(counts, 256, 1, len), ECF8_OK);
    assert_int_equal(len[255], 1);
}

static void test_all_equal(void **state)
{
    (void)state;
    uint64_t counts[256];
    uint8_t len[256];
    for (unsigned n = 2; n <= 256; n++) {
        for (unsigned s = 0; s < n; s++) counts[s] = 1000;
        unsigned k = 0;
        while ((2u << k) <= n) k++; /* k = floor(log2 n) */
        /* Optimal: 2^(k+1) - n symbols of length k, the rest k+1. */
        unsigned want_short = (n == (1u << k)) ? n : (2u << k) - n;
        for (unsigned mb = k + (n != (1u << k)); mb <= ECF8_MAX_CODE_BITS; mb += 4) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
            unsigned short_n = 0;
            for (unsigned s = 0; s < n; s++) {
                assert_true(len[s] == k || len[s] == k + 1);
                short_n += len[s] == k;
            }
            assert_int_equal(short_n, want_short);
        }
        if (n > 2 && n != (1u << k)) { /* one bit short of room */
            assert_int_equal(ecf8_codebook_build(counts, n, k, len), ECF8_ERR_ARGUMENT);
        }
    }
}

static void test_all_zero_and_bad_arguments(void **state)
{
    (void)state;
    uint64_t counts[300] = {0};
    uint8_t len[300];
    memset(len, 9, sizeof len);
    assert_int_equal(ecf8_codebook_build(counts, 256, 12, len), ECF8_OK);
    for (int s = 0; s < 256; s++) assert_int_equal(len[s], 0);
    counts[0] = counts[1] = 1;
    assert_int_equal(ecf8_codebook_build(counts, 0, 12, len), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_codebook_build(counts, 257, 12, len), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_codebook_build(counts, 2, 0, len), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_codebook_build(counts, 2, ECF8_MAX_CODE_BITS + 1, len), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_codebook_build(NULL, 2, 12, len), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_codebook_build(counts, 2, 12, NULL), ECF8_ERR_ARGUMENT);
    assert_true(strlen(ecf8_last_error()) > 0);
    /* Two symbols, one bit: both length 1. */
    assert_int_equal(ecf8_codebook_build(counts, 2, 1, len), ECF8_OK);
    assert_int_equal(len[0], 1);
    assert_int_equal(len[1], 1);
}

/* Counts near 2^64 (package weights overflow 64 bits): the result must
 * still be a valid, complete, length-limited and optimal code. */
static bool code_ok(const uint64_t *counts, unsigned n, unsigned max_bits, const uint8_t *len)
{
    unsigned used = 0;
    for (unsigned s = 0; s < n; s++) {
        if (!counts[s] && len[s]) return false;
        if (counts[s] && (len[s] < 1 || len[s] > max_bits)) return false;
        used += counts[s] != 0;
    }
    return used < 2 || kraft16(len, n) == (1ull << 16);
}

static void test_huge_counts(void **state)
{
    (void)state;
    uint64_t rng = 3, counts[256];
    uint8_t len[256];
    /* Sums up to 2^56 stay exact: the builder must be optimal there. */
    for (int it = 0; it < 200; it++) {
        unsigned n = 2 + (unsigned)(tu_rand(&rng) % 5);
        for (unsigned s = 0; s < n; s++) counts[s] = 1 + (tu_rand(&rng) >> 11);
        for (unsigned mb = 3; mb <= 6; mb++) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            check_code(counts, n, mb, len);
            assert_true(cost(counts, len, n) == brute_force_cost(counts, n, mb));
        }
    }
    /* Counts near UINT64_MAX. */
    char why[160] = "";
    for (int it = 0; it < 300 && !why[0]; it++) {
        unsigned n = 2 + (unsigned)(tu_rand(&rng) % (it < 200 ? 5 : 200));
        for (unsigned s = 0; s < n; s++) {
            uint64_t r = tu_rand(&rng);
            counts[s] = r % 3 == 0 ? UINT64_MAX - r % 1000 : r % 3 == 1 ? (r >> 1) | (1ull << 62) : 1 + r % 7;
        }
        unsigned need = 0;
        while ((1u << need) < n) need++;
        for (unsigned mb = need ? need : 1; mb <= ECF8_MAX_CODE_BITS && !why[0]; mb += 3) {
            assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
            if (!code_ok(counts, n, mb, len))
                snprintf(why, sizeof why, "n=%u max_bits=%u: invalid code (Kraft %llu/65536)", n, mb,
                         (unsigned long long)kraft16(len, n));
            else if (n <= 6 && mb <= 6 && cost(counts, len, n) != brute_force_cost(counts, n, mb))
                snprintf(why, sizeof why, "n=%u max_bits=%u: code not optimal", n, mb);
        }
    }
    if (why[0])
        tu_bug_returned("BUG-1 codebook-overflow",
                     "ecf8_codebook_build sums package weights in uint64_t; counts near 2^64 "
                     "wrap and give an incomplete or suboptimal code");
    assert_string_equal(why, "");
}

/* ---- canonical codes and decode tables -------------------------------------- */
static void check_table(const uint8_t *len, unsigned n, unsigned tbits)
{
    static uint16_t table[1u << ECF8_MAX_CODE_BITS];
    unsigned code[256] = {0}, hits[256] = {0};
    uint16_t lib_codes[256];
    memset(table, 0xFF, sizeof table);
    assert_int_equal(ecf8_decode_table_build(len, n, tbits, table), ECF8_OK);
    canonical_msb(len, n, code);
    assert_int_equal(ecf8_canonical_codes(len, n, lib_codes), ECF8_OK);
    for (unsigned s = 0; s < n; s++)
        if (len[s]) assert_int_equal(lib_codes[s], reverse(code[s], len[s]));
    for (unsigned i = 0; i < (1u << tbits); i++) {
        unsigned sym = table[i] >> 4, l = table[i] & 15;
        assert_true(sym < n);
        assert_int_equal(l, len[sym]);
        assert_true(l >= 1);
        /* The stream is LSB first: the first `l` bits read are the code
         * word's MSB first. */
        assert_int_equal(i & ((1u << l) - 1), reverse(code[sym], l));
        hits[sym]++;
    }
    for (unsigned s = 0; s < n; s++)
        assert_int_equal(hits[s], len[s] ? 1u << (tbits - len[s]) : 0);
}

static void test_decode_table_consistent(void **state)
{
    (void)state;
    uint64_t rng = 42, counts[256];
    uint8_t len[256];
    for (int it = 0; it < 150; it++) {
        unsigned n = (it % 4 == 0) ? 256 : (it % 4 == 1) ? 32 : (it % 4 == 2) ? 16 : 2 + (unsigned)(tu_rand(&rng) % 255);
        random_counts(&rng, counts, n, it % 2, it % 3);
        unsigned used = 0;
        for (unsigned s = 0; s < n; s++) used += counts[s] != 0;
        if (used < 2) counts[0] = counts[n - 1] = 1;
        unsigned mb = 8 + (unsigned)(it % 6);
        assert_int_equal(ecf8_codebook_build(counts, n, mb, len), ECF8_OK);
        unsigned maxlen = 0;
        for (unsigned s = 0; s < n; s++)
            if (len[s] > maxlen) maxlen = len[s];
        check_table(len, n, maxlen);            /* as the encoder stores it */
        check_table(len, n, ECF8_MAX_CODE_BITS); /* wider tables work too */
    }
    /* Hand-made codes. */
    const uint8_t a[] = {1, 2, 3, 3};
    check_table(a, 4, 3);
    const uint8_t b[] = {0, 2, 0, 2, 2, 2};
    check_table(b, 6, 2);
    uint8_t c[256];
    memset(c, 8, sizeof c);
    check_table(c, 256, 8);
    uint8_t d[16] = {0};
    d[3] = 1, d[9] = 1;
    check_table(d, 16, 1);
}

static void test_decode_table_rejects(void **state)
{
    (void)state;
    static uint16_t table[1u << ECF8_MAX_CODE_BITS];
    const uint8_t over[] = {1, 1, 1};
    assert_int_equal(ecf8_decode_table_build(over, 3, 2, table), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "over-subscribed"));
    const uint8_t incomplete[] = {1, 2};
    assert_int_equal(ecf8_decode_table_build(incomplete, 2, 2, table), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "incomplete"));
    const uint8_t incomplete2[] = {2, 2, 2, 0, 3};
    assert_int_equal(ecf8_decode_table_build(incomplete2, 5, 3, table), ECF8_ERR_CORRUPT);
    const uint8_t too_long[] = {1, 2, 3, 3};
    assert_int_equal(ecf8_decode_table_build(too_long, 4, 2, table), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "exceeds"));
    uint8_t long15[16] = {0};
    long15[0] = 1, long15[1] = 15;
    assert_int_equal(ecf8_decode_table_build(long15, 16, 13, table), ECF8_ERR_CORRUPT);
    const uint8_t none[4] = {0};
    assert_int_equal(ecf8_decode_table_build(none, 4, 0, table), ECF8_ERR_CORRUPT);
    assert_int_equal(ecf8_decode_table_build(none, 4, 3, table), ECF8_ERR_CORRUPT);
    const uint8_t two[] = {1, 1};
    assert_int_equal(ecf8_decode_table_build(two, 2, 0, table), ECF8_ERR_CORRUPT);
    assert_int_equal(ecf8_decode_table_build(two, 2, 1, table), ECF8_OK);
    assert_int_equal(ecf8_decode_table_build(two, 2, ECF8_MAX_CODE_BITS + 1, table), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decode_table_build(two, 0, 1, table), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decode_table_build(two, 257, 1, table), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decode_table_build(NULL, 2, 1, table), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decode_table_build(two, 2, 1, NULL), ECF8_ERR_ARGUMENT);
    uint16_t codes[4];
    const uint8_t bad16[] = {16, 1};
    assert_int_equal(ecf8_canonical_codes(bad16, 2, codes), ECF8_ERR_CORRUPT);
}

/* Every 4-bit length vector over a small alphabet: the table builder
 * accepts exactly the complete codes within the table width. */
static void test_decode_table_exhaustive_small(void **state)
{
    (void)state;
    static uint16_t table[1u << ECF8_MAX_CODE_BITS];
    uint8_t len[4];
    for (unsigned v = 0; v < 16 * 16 * 16 * 16; v++) {
        for (int s = 0; s < 4; s++) len[s] = (v >> (4 * s)) & 15;
        unsigned used = 0, maxlen = 0;
        for (int s = 0; s < 4; s++) {
            used += len[s] != 0;
            if (len[s] > maxlen) maxlen = len[s];
        }
        for (unsigned tb = 1; tb <= 5; tb += 2) {
            bool ok = used >= 2 && maxlen <= tb && kraft16(len, 4) == (1ull << 16);
            int st = ecf8_decode_table_build(len, 4, tb, table);
            assert_int_equal(st, ok ? ECF8_OK : ECF8_ERR_CORRUPT);
            if (ok) check_table(len, 4, tb);
        }
    }
}

/* ---- dtypes and split layouts -------------------------------------------------- */
static void test_split_layouts(void **state)
{
    (void)state;
    static const struct {
        ecf8_dtype d;
        ecf8_split s;
        unsigned bits, shift, sym, raw;
    } want[] = {
        {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_EXPONENT, 8, 3, 4, 4},
        {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_EXPONENT, 8, 2, 5, 3},
        {ECF8_DTYPE_BF16, ECF8_SPLIT_EXPONENT, 16, 7, 8, 8},
        {ECF8_DTYPE_F16, ECF8_SPLIT_EXPONENT, 16, 10, 5, 11},
        {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_BYTE, 8, 0, 8, 0},
        {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_BYTE, 8, 0, 8, 0},
        {ECF8_DTYPE_BF16, ECF8_SPLIT_BYTE, 16, 8, 8, 8},
        {ECF8_DTYPE_F16, ECF8_SPLIT_BYTE, 16, 8, 8, 8},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ecf8_split_layout l;
        assert_int_equal(ecf8_split_layout_get(want[i].d, want[i].s, &l), ECF8_OK);
        assert_int_equal(l.element_bits, want[i].bits);
        assert_int_equal(l.symbol_shift, want[i].shift);
        assert_int_equal(l.symbol_bits, want[i].sym);
        assert_int_equal(l.raw_bits, want[i].raw);
        assert_int_equal(ecf8_dtype_size(want[i].d) * 8, want[i].bits);
    }
    ecf8_split_layout l;
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_OTHER, ECF8_SPLIT_EXPONENT, &l), ECF8_ERR_UNSUPPORTED);
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_BF16, ECF8_SPLIT_STORED, &l), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_split_layout_get(ECF8_DTYPE_BF16, ECF8_SPLIT_AUTO, &l), ECF8_ERR_ARGUMENT);
    const char *names[] = {"F8_E4M3", "F8_E5M2", "BF16", "F16"};
    for (int d = 1; d <= 4; d++) {
        assert_int_equal(ecf8_dtype_from_name(names[d - 1]), d);
        assert_string_equal(ecf8_dtype_name((ecf8_dtype)d), names[d - 1]);
    }
    assert_int_equal(ecf8_dtype_from_name("F32"), ECF8_DTYPE_OTHER);
    assert_int_equal(ecf8_dtype_from_name("f8_e4m3"), ECF8_DTYPE_OTHER);
    assert_int_equal(ecf8_dtype_from_name(NULL), ECF8_DTYPE_OTHER);
    assert_int_equal(ecf8_dtype_size(ECF8_DTYPE_OTHER), 0);
    assert_string_equal(ecf8_split_name(ECF8_SPLIT_STORED), "stored");
    assert_string_equal(ecf8_split_name(ECF8_SPLIT_EXPONENT), "exponent");
    assert_string_equal(ecf8_split_name(ECF8_SPLIT_BYTE), "byte");
    assert_string_equal(ecf8_split_name(ECF8_SPLIT_AUTO), "auto");
    assert_string_equal(ecf8_status_string(ECF8_ERR_CORRUPT), "corrupt or malformed data");
    assert_non_null(ecf8_status_string(-2999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kraft_sum_is_one),
        cmocka_unit_test(test_length_limit_every_max_bits),
        cmocka_unit_test(test_optimal_against_brute_force),
        cmocka_unit_test(test_optimal_with_unused_symbols),
        cmocka_unit_test(test_optimal_against_references),
        cmocka_unit_test(test_one_symbol),
        cmocka_unit_test(test_all_equal),
        cmocka_unit_test(test_all_zero_and_bad_arguments),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_decode_table_consistent),
        cmocka_unit_test(test_decode_table_rejects),
        cmocka_unit_test(test_decode_table_exhaustive_small),
        cmocka_unit_test(test_split_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
