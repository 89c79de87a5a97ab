/* codebook_build.c - optimal length-limited Huffman code lengths
 * (package-merge) for the encoder; not in a decode-only build, whose
 * decoders take the lengths from the container. */
#include "internal.h"

/* Package-merge (Larmore & Hirschberg) in its list form: level L holds the
 * leaves sorted by weight; every shallower level merges the leaves with the
 * pairs ("packages") of the level below.  Taking the 2n-2 cheapest items of
 * level 1 and expanding packages level by level gives each symbol's code
 * length as the number of levels on which it is selected. */
__extension__ typedef unsigned __int128 pm_weight;

typedef struct pm_item {
    /* A package can sum max_bits copies of every count: 128 bits never
     * overflow, whatever counts the caller passes. */
    pm_weight weight;
    int16_t symbol; /* >= 0 for a leaf, -1 for a package */
} pm_item;

/* Sorts the leaves by weight, stably: built in symbol order, they end up
 * ordered by (weight, symbol).  A bottom-up merge sort with the comparison
 * inline: qsort's callback on 128-bit weights was a quarter of the time of
 * a small tensor's codebook. */
static void sort_leaves(pm_item *a, unsigned n)
{
    pm_item tmp[256], *src = a, *dst = tmp;
    for (unsigned width = 1; width < n; width *= 2) {
        for (unsigned lo = 0; lo < n; lo += 2 * width) {
            unsigned mid = lo + width < n ? lo + width : n;
            unsigned hi = lo + 2 * width < n ? lo + 2 * width : n;
            unsigned i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = src[j].weight < src[i].weight ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        pm_item *t = src;
        src = dst, dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* Levels l = 0 (deepest, = the leaves) .. max_bits - 1 (level 1): each
 * merges the leaves with the packages (pairs) of the level below, both
 * ascending; only the previous level's weights are kept, and every
 * level's items as symbols (-1 for a package) for the expansion: the
 * 2n - 2 cheapest items of level 1, then on each deeper level twice as
 * many items as packages were taken above.  A symbol's code length is the
 * number of levels that take it. */
#define DEFINE_PACKAGE_MERGE(NAME, WEIGHT)                                                  \
    static void NAME(const pm_item *leaves, unsigned n, unsigned max_bits, uint8_t *lengths) \
    {                                                                                        \
        WEIGHT wa[512], wb[512], *prev = wa, *cur = wb;                                      \
        int16_t sym[ECF8_MAX_CODE_BITS][512];                                                \
        unsigned len[ECF8_MAX_CODE_BITS];                                                    \
        for (unsigned i = 0; i < n; i++) prev[i] = (WEIGHT)leaves[i].weight, sym[0][i] = leaves[i].symbol; \
        len[0] = n;                                                                          \
        for (unsigned l = 1; l < max_bits; l++) {                                            \
            unsigned npk = len[l - 1] / 2, i = 0, j = 0, k = 0;                              \
            while (i < n || j < npk) {                                                       \
                bool have_pk = j < npk;                                                      \
                WEIGHT pw = have_pk ? prev[2 * j] + prev[2 * j + 1] : 0;                     \
                if (i < n && (!have_pk || (WEIGHT)leaves[i].weight <= pw))                   \
                    cur[k] = (WEIGHT)leaves[i].weight, sym[l][k++] = leaves[i++].symbol;     \
                else                                                                         \
                    cur[k] = pw, sym[l][k++] = -1, j++;                                      \
            }                                                                                \
            len[l] = k;                                                                      \
            WEIGHT *t = prev;                                                                \
            prev = cur, cur = t;                                                             \
        }                                                                                    \
        unsigned take = 2 * n - 2;                                                           \
        for (unsigned l = max_bits; l-- > 0;) {                                              \
            unsigned packages = 0;                                                           \
            for (unsigned i = 0; i < take && i < len[l]; i++) {                              \
                if (sym[l][i] >= 0)                                                          \
                    lengths[sym[l][i]]++;                                                    \
                else                                                                         \
                    packages++;                                                              \
            }                                                                                \
            take = 2 * packages;                                                             \
        }                                                                                    \
    }
DEFINE_PACKAGE_MERGE(package_merge64, uint64_t)
DEFINE_PACKAGE_MERGE(package_merge128, pm_weight)
#undef DEFINE_PACKAGE_MERGE

int ecf8_codebook_build(const uint64_t *counts, unsigned n_symbols, unsigned max_bits,
                        uint8_t *lengths)
{
    if (!counts || !lengths || n_symbols == 0 || n_symbols > 256)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "codebook: bad alphabet size %u", n_symbols);
    if (max_bits < 1 || max_bits > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "codebook: max code length %u outside 1..%d",
                         max_bits, ECF8_MAX_CODE_BITS);
    memset(lengths, 0, n_symbols);

    pm_item leaves[256];
    unsigned n = 0;
    for (unsigned s = 0; s < n_symbols; s++)
        if (counts[s]) leaves[n++] = (pm_item){counts[s], (int16_t)s};
    if (n == 0) return ECF8_OK;
    if (n == 1) {
        lengths[leaves[0].symbol] = 1; /* the encoder then emits no bits at all */
        return ECF8_OK;
    }
    if (n > (1u << max_bits))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "codebook: %u symbols do not fit %u-bit codes", n,
                         max_bits);
    sort_leaves(leaves, n);

    /* Item weights never exceed max_bits times the sum of the counts: when
     * that fits 64 bits (any real tensor), the merge runs on 64-bit
     * weights, half the work of the 128-bit ones. */
    pm_weight total = 0;
    for (unsigned i = 0; i < n; i++) total += leaves[i].weight;
    if (total * ECF8_MAX_CODE_BITS <= UINT64_MAX)
        package_merge64(leaves, n, max_bits, lengths);
    else
        package_merge128(leaves, n, max_bits, lengths);
    return ECF8_OK;
}
