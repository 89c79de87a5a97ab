/* stream_encode.c - the encoder: analysis (histograms, code lengths and
 * size estimates per split, the split choice) and the two-pass chunked
 * encode (sizes, then code words written in place), parallel over chunks.
 * The format it writes is docs/FORMAT.md's; stream.c holds its rules. */
#include "stream.h"

#include <math.h>
#include <stdlib.h>

/* One load of a 16-bit element (a little-endian host, as enc_element). */
static inline unsigned load_element(const uint8_t *data, uint64_t i, unsigned width)
{
    if (width == 1) return data[i];
    uint16_t v;
    memcpy(&v, data + 2 * i, 2);
    return v;
}

/* ---- analysis --------------------------------------------------------------- */
#define HIST_BLOCK (1u << 20)

typedef struct hist_job {
    const uint8_t *data;
    uint64_t n;
    unsigned width;
    ecf8_split_layout exp_layout;
    uint64_t (*hists)[2][256]; /* per block: exponent field, coded byte */
} hist_job;

/* Elements [begin, end) of j into the histograms he (exponent field) and
 * hb (coded byte), added to what they hold. */
static void hist_range(const hist_job *j, uint64_t begin, uint64_t end, uint64_t *he, uint64_t *hb)
{
    const unsigned sh = j->exp_layout.symbol_shift, m = (1u << j->exp_layout.symbol_bits) - 1;
    if (j->width == 1) {
        /* Four sub-histograms break the store-to-load chain on runs of one
         * value; a small range takes two, less to clear and to add up. */
        uint32_t h[4][256];
        const unsigned subs = end - begin >= 16384 ? 4 : 2;
        memset(h, 0, subs * sizeof h[0]);
        uint64_t i = begin;
        if (subs == 4)
            for (; i + 4 <= end; i += 4) {
                h[0][j->data[i]]++, h[1][j->data[i + 1]]++;
                h[2][j->data[i + 2]]++, h[3][j->data[i + 3]]++;
            }
        for (; i + 2 <= end; i += 2) h[0][j->data[i]]++, h[1][j->data[i + 1]]++;
        for (; i < end; i++) h[0][j->data[i]]++;
        for (unsigned v = 0; v < 256; v++) {
            uint64_t c = (uint64_t)h[0][v] + h[1][v];
            if (subs == 4) c += (uint64_t)h[2][v] + h[3][v];
            hb[v] += c;
            he[(v >> sh) & m] += c;
        }
        return;
    }
    /* 16-bit elements: the high byte (byte split) and the exponent field
     * both lie in the bits from f = min(sh, 8) up, one histogram of those
     * (512 bins for BF16, 256 for F16) gives both. */
    const unsigned f = sh < 8 ? sh : 8, bins = 1u << (16 - f);
    if (bins <= 1024) {
        uint32_t h[2][1024];
        memset(h[0], 0, bins * sizeof h[0][0]);
        memset(h[1], 0, bins * sizeof h[1][0]);
        uint64_t i = begin;
        for (; i + 2 <= end; i += 2)
            h[0][load_element(j->data, i, 2) >> f]++, h[1][load_element(j->data, i + 1, 2) >> f]++;
        for (; i < end; i++) h[0][load_element(j->data, i, 2) >> f]++;
        for (unsigned v = 0; v < bins; v++) {
            uint64_t c = (uint64_t)h[0][v] + h[1][v];
            hb[(v << f) >> 8] += c;
            he[((v << f) >> sh) & m] += c;
        }
        return;
    }
    uint32_t hh[2][256] = {{0}}, hx[2][256] = {{0}};
    uint64_t i = begin;
    for (; i + 2 <= end; i += 2) {
        unsigned a = load_element(j->data, i, 2), b = load_element(j->data, i + 1, 2);
        hh[0][a >> 8]++, hh[1][b >> 8]++;
        hx[0][(a >> sh) & m]++, hx[1][(b >> sh) & m]++;
    }
    for (; i < end; i++) {
        unsigned a = load_element(j->data, i, 2);
        hh[0][a >> 8]++, hx[0][(a >> sh) & m]++;
    }
    for (unsigned v = 0; v < 256; v++) {
        hb[v] += (uint64_t)hh[0][v] + hh[1][v];
        he[v] += (uint64_t)hx[0][v] + hx[1][v];
    }
}

static int hist_task(void *ctx, uint64_t block)
{
    hist_job *j = ctx;
    uint64_t begin = block * HIST_BLOCK, end = begin + HIST_BLOCK;
    if (end > j->n) end = j->n;
    hist_range(j, begin, end, j->hists[block][0], j->hists[block][1]);
    return ECF8_OK;
}

/* Histograms of the exponent field and the coded byte over the tensor. */
static int histograms(ecf8_dtype dtype, const void *data, uint64_t n, unsigned threads,
                      uint64_t exp_hist[256], uint64_t byte_hist[256])
{
    hist_job j = {.data = data, .n = n, .width = ecf8_dtype_size(dtype)};
    int st = ecf8_field_layout(dtype, &j.exp_layout);
    if (st) return st;
    uint64_t blocks = (n + HIST_BLOCK - 1) / HIST_BLOCK;
    memset(exp_hist, 0, 256 * sizeof(uint64_t));
    memset(byte_hist, 0, 256 * sizeof(uint64_t));
    if (blocks <= 1) { /* a small tensor: no per-block histograms */
        hist_range(&j, 0, n, exp_hist, byte_hist);
        return ECF8_OK;
    }
    j.hists = calloc(blocks, sizeof *j.hists);
    if (!j.hists) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for histograms");
    st = ecf8_parallel_for(threads, blocks, hist_task, &j);
    for (uint64_t b = 0; b < blocks; b++)
        for (unsigned v = 0; v < 256; v++) {
            exp_hist[v] += j.hists[b][0][v];
            byte_hist[v] += j.hists[b][1][v];
        }
    free(j.hists);
    return st;
}

static double entropy_bits(const uint64_t *hist, unsigned n_symbols, uint64_t total)
{
    double h = 0;
    for (unsigned s = 0; s < n_symbols; s++)
        if (hist[s]) {
            double p = (double)hist[s] / (double)total;
            h -= (double)hist[s] * log2(p);
        }
    return h;
}

typedef struct split_plan {
    ecf8_split split;
    ecf8_split_layout layout;
    uint8_t lengths[256];
    unsigned code_bits;      /* 0 for a one-symbol code */
    uint64_t payload_bytes;  /* estimate: exact bits, half a pad byte per chunk */
    uint64_t entropy_bytes;
    double entropy_bits;     /* of the symbols */
    uint64_t bits;           /* exact: code words and raw bits of all the elements */
} split_plan;

/* Per-chunk bytes plan_split's estimate adds beyond the code's bits.
 * Layout 1: a 36-byte lane table and two 4-byte pads (half full) per chunk. */
static double estimate_per_chunk(unsigned layout, const ecf8_split_layout *l)
{
    return layout == ECF8_STREAM_LAYOUT_LANES ? 36 + 1.5 + (l->raw_bits ? 1.5 : 0) : 0.5;
}

/* plan_split's payload estimate for `bits` of code words and raw bits
 * (0 when the layout overflows). */
static uint64_t estimate_payload(const split_plan *p, double bits, uint64_t n_chunks, unsigned layout)
{
    ecf8_payload_layout lay;
    uint64_t coded = (uint64_t)ceil(bits / 8 + (double)n_chunks * estimate_per_chunk(layout, &p->layout)) + 8;
    return ecf8_payload_layout_compute(1u << p->layout.symbol_bits, n_chunks, coded, &lay) ? lay.total_bytes : 0;
}

/* The first half of plan_split: the split's layout and entropy bound, and
 * in *lower a bound that its payload estimate never goes below.  No prefix
 * code spends fewer bits than the entropy; the bound gives the computed
 * entropy a relative 1e-9 and a byte of slack for its rounding. */
static int plan_bound(ecf8_split split, ecf8_dtype dtype, const uint64_t *hist, uint64_t n,
                      uint64_t n_chunks, unsigned layout, split_plan *p, uint64_t *lower)
{
    p->split = split;
    int st = ecf8_split_layout_get(dtype, split, &p->layout);
    if (st) return st;
    double h = p->entropy_bits = entropy_bits(hist, 1u << p->layout.symbol_bits, n);
    p->entropy_bytes = (uint64_t)ceil((h + (double)n * p->layout.raw_bits) / 8);
    p->payload_bytes = 0; /* 0: this split is unavailable */
    uint64_t est = estimate_payload(p, h * (1 - 1e-9) + (double)n * p->layout.raw_bits, n_chunks, layout);
    *lower = est > 1 ? est - 1 : 0;
    return ECF8_OK;
}

/* The second half: the code and its payload estimate. */
static int plan_code(const uint64_t *hist, uint64_t n, uint64_t n_chunks, unsigned max_bits,
                     unsigned layout, split_plan *p)
{
    unsigned nsym = 1u << p->layout.symbol_bits;
    unsigned present = 0;
    for (unsigned s = 0; s < nsym; s++) present += hist[s] != 0;
    if (present > (1u << max_bits)) return ECF8_OK; /* no code that short exists */
    int st = ecf8_codebook_build(hist, nsym, max_bits, p->lengths);
    if (st) return st;
    unsigned used = 0, maxlen = 0;
    double bits = 0;
    uint64_t exact = 0;
    for (unsigned s = 0; s < nsym; s++)
        if (hist[s]) {
            used++;
            if (p->lengths[s] > maxlen) maxlen = p->lengths[s];
            bits += (double)hist[s] * p->lengths[s];
            exact += hist[s] * p->lengths[s];
        }
    p->code_bits = used <= 1 ? 0 : maxlen;
    if (used <= 1) bits = 0, exact = 0;
    bits += (double)n * p->layout.raw_bits;
    p->bits = exact + n * p->layout.raw_bits;
    p->payload_bytes = estimate_payload(p, bits, n_chunks, layout);
    if (!p->payload_bytes) return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor too large");
    return ECF8_OK;
}

/* The stream layout the options ask for (0 when struct_size ends before it). */
static unsigned options_layout(const ecf8_compress_options *o)
{
    if (!o || (o->struct_size && o->struct_size < offsetof(ecf8_compress_options, stream_layout) +
                                                       sizeof o->stream_layout))
        return ECF8_STREAM_LAYOUT_SERIAL;
    return o->stream_layout;
}

/* The chunk target of the options for their layout. */
static uint64_t options_chunk_target(const ecf8_compress_options *o)
{
    return ecf8_layout_chunk_target(options_layout(o), o ? o->chunk_elements : 0);
}

static unsigned options_code_bits(const ecf8_compress_options *o)
{
    return o && o->max_code_bits ? o->max_code_bits : ECF8_DEFAULT_CODE_BITS;
}

static int analyze_histograms(ecf8_dtype dtype, uint64_t n, uint64_t rows, uint64_t cols,
                              const ecf8_compress_options *options, const uint64_t byte_hist[256],
                              bool prune, ecf8_tensor_analysis *out, split_plan plans[3]);

static int analyze(ecf8_dtype dtype, const void *data, uint64_t n, uint64_t rows, uint64_t cols,
                   const ecf8_compress_options *options, bool prune, ecf8_tensor_analysis *out,
                   split_plan plans[3])
{
    memset(out, 0, sizeof *out);
    unsigned width = ecf8_dtype_size(dtype);
    out->source_bytes = n * width;
    out->payload_bytes[ECF8_SPLIT_STORED] = n * width;
    out->entropy_bound_bytes[ECF8_SPLIT_STORED] = n * width;
    out->best_split = ECF8_SPLIT_STORED;
    if (width == 0 || n == 0) return ECF8_OK;

    if (options_code_bits(options) > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "max code length %u > %d", options_code_bits(options),
                         ECF8_MAX_CODE_BITS);
    uint64_t byte_hist[256];
    int st = histograms(dtype, data, n, options ? options->threads : 0, out->exponent_histogram,
                        byte_hist);
    if (st) return st;
    return analyze_histograms(dtype, n, rows, cols, options, byte_hist, prune, out, plans);
}

/* analyze's choice from the histograms (out->exponent_histogram, set, and
 * byte_hist) of the tensor's n elements. */
static int analyze_histograms(ecf8_dtype dtype, uint64_t n, uint64_t rows, uint64_t cols,
                              const ecf8_compress_options *options, const uint64_t byte_hist[256],
                              bool prune, ecf8_tensor_analysis *out, split_plan plans[3])
{
    unsigned width = ecf8_dtype_size(dtype), max_bits = options_code_bits(options);
    int st;
    uint64_t chunk_rows, chunk_cols, n_chunks;
    ecf8_chunk_geometry(rows, cols, options_chunk_target(options), &chunk_rows, &chunk_cols,
                        &n_chunks);

    ecf8_split_layout el;
    ecf8_field_layout(dtype, &el);
    out->exponent_symbols = 1u << el.symbol_bits;
    out->exponent_entropy_bits =
        entropy_bits(out->exponent_histogram, out->exponent_symbols, n) / (double)n;

    /* A split the dtype does not have (the exponent split of U8) leaves
     * the choice to the ones it has: one option serves a whole file. */
    ecf8_split want = options ? options->split : ECF8_SPLIT_AUTO;
    if ((want == ECF8_SPLIT_EXPONENT || want == ECF8_SPLIT_BYTE) && ecf8_split_layout_row(dtype, want, NULL) < 0)
        want = ECF8_SPLIT_AUTO;
    const unsigned layout = options_layout(options);
    uint64_t lower[3] = {0, UINT64_MAX, UINT64_MAX};
    bool has[3] = {false, false, false};
    for (int sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
        if (ecf8_split_layout_row(dtype, (ecf8_split)sp, NULL) < 0) { /* payload_bytes 0: n/a */
            memset(&plans[sp], 0, sizeof plans[sp]);
            plans[sp].split = (ecf8_split)sp;
            continue;
        }
        has[sp] = true;
        const uint64_t *h = sp == ECF8_SPLIT_EXPONENT ? out->exponent_histogram : byte_hist;
        if ((st = plan_bound((ecf8_split)sp, dtype, h, n, n_chunks, layout, &plans[sp], &lower[sp])))
            return st;
        out->entropy_bound_bytes[sp] = plans[sp].entropy_bytes;
    }
    /* The code of the split with the lower bound first; with `prune`, the
     * other's code (package-merge: most of a small tensor's encode time)
     * only when its bound leaves it a chance of being chosen or measured
     * (ecf8_tensor_encode measures a split within nc + 1 bytes of the
     * best), and not at all when the options name the other split.  A split
     * skipped stays at payload 0, as one without a code. */
    ecf8_split order[2] = {ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE};
    if (lower[ECF8_SPLIT_BYTE] < lower[ECF8_SPLIT_EXPONENT])
        order[0] = ECF8_SPLIT_BYTE, order[1] = ECF8_SPLIT_EXPONENT;
    for (int k = 0; k < 2; k++) {
        ecf8_split sp = order[k], first = order[0];
        if (!has[sp]) continue;
        const uint64_t *h = sp == ECF8_SPLIT_EXPONENT ? out->exponent_histogram : byte_hist;
        if (prune && want != ECF8_SPLIT_AUTO && want != sp) continue;
        if (k == 1 && prune && want == ECF8_SPLIT_AUTO && plans[first].payload_bytes &&
            lower[sp] > plans[first].payload_bytes + n_chunks + 1)
            continue;
        if ((st = plan_code(h, n, n_chunks, max_bits, layout, &plans[sp]))) return st;
    }
    uint64_t best = n * width;
    for (int sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
        out->payload_bytes[sp] = plans[sp].payload_bytes;
        bool allowed = want == ECF8_SPLIT_AUTO || want == (ecf8_split)sp;
        if (allowed && plans[sp].payload_bytes && plans[sp].payload_bytes < best) {
            best = plans[sp].payload_bytes;
            out->best_split = (ecf8_split)sp;
        }
    }
    return ECF8_OK;
}

int ecf8_tensor_analyze(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                        const ecf8_compress_options *options, ecf8_tensor_analysis *out)
{
    uint64_t n;
    if (!out || !ecf8_mul_u64(rows, cols, &n) || (!data && n))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "analyze: bad arguments");
    split_plan plans[3];
    return analyze(dtype, data, n, rows, cols, options, false, out, plans);
}

/* ---- encoder ---------------------------------------------------------------- */
void (*ecf8_test_hook_between_encode_passes)(const void *data, uint64_t bytes);

struct ecf8_encoded {
    uint8_t *payload;        /* owned; NULL for STORED (points at the source) */
    const uint8_t *stored;
    size_t payload_bytes;
    ecf8_split split;
    ecf8_stream stream;
};

/* What the encoder's write pass puts in a chunk's sized space: the number
 * of bytes, or one of these when the elements are not the ones the size
 * pass (or the histogram the code was built from) saw. */
#define ENC_OVERFLOW UINT64_MAX       /* they need more bytes than were sized */
#define ENC_NO_CODE (UINT64_MAX - 1)  /* a symbol the code has no word for */
/* A write-pass word (encode_job.words): bits 0-31 what goes out,
 * WORD_BITS_SHIFT its length, WORD_CODE_SHIFT the code word's length, and
 * WORD_ABSENT for a symbol the code has no word for. */
#define WORD_BITS_SHIFT 32
#define WORD_CODE_SHIFT 40
#define WORD_ABSENT (1ull << 63)
/* The table covers the element's bits from word_shift() up: at most 10. */
#define WORD_INDEX_BITS 10

typedef uint64_t (*enc_bits_fn)(const uint8_t *data, uint64_t count, const uint8_t *lengths);
typedef uint64_t (*enc_write_fn)(const uint8_t *data, uint64_t count, const uint64_t *words,
                                 uint8_t *dst, uint64_t capacity, uint64_t *bits);

typedef struct encode_job {
    const uint8_t *data;
    unsigned width;
    ecf8_split_layout layout;
    ecf8_stream stream;
    uint8_t lengths[256]; /* emitted lengths: 0 everywhere for a one-symbol code */
    /* The write pass's table, by element >> word_shift (0 for bytes, the
     * symbol's shift for 16-bit elements): the element's code word and raw
     * bits above word_shift as they go out, their length and the code
     * word's (WORD_* below); the caller's storage, 8 KiB that a job's
     * zero initialisation would otherwise clear for every tensor. */
    uint64_t *words;
    uint64_t *chunk_bytes; /* index c - c0 */
    uint8_t *coded;
    uint64_t *offsets;     /* index c - c0: chunk c at coded + offsets[c - c0] */
    uint64_t c0, c1;       /* the chunks coded: [c0, c1) */
    uint64_t base;         /* element index of data[0] (chunk c0's first) */
    enc_bits_fn bits;
    enc_write_fn write;
} encode_job;

#define ENCODE_GROUP 16 /* chunks per parallel task */

/* The encoder's two inner loops, instantiated per row of split_layouts.def
 * with the field layout as constants (like the decoder's).  Locals only: stores through
 * uint8_t* may alias anything the compiler would otherwise reload. */
static inline __attribute__((always_inline)) unsigned enc_element(const uint8_t *data, uint64_t i,
                                                                  const unsigned W)
{
    if (W == 1) return data[i];
    uint16_t v;
    memcpy(&v, data + 2 * i, 2);
    return v;
}

static inline __attribute__((always_inline)) uint64_t
enc_bits(const unsigned W, const unsigned SH, const unsigned S, const unsigned R,
         const uint8_t *data, uint64_t count, const uint8_t *lengths)
{
    uint64_t bits = count * R;
    for (uint64_t i = 0; i < count; i++)
        bits += lengths[(enc_element(data, i, W) >> SH) & ((1u << S) - 1)];
    return bits;
}

/* The write table's index is the element >> word_shift(): a byte whole,
 * a 16-bit element from its symbol up (the bits below go out as they are). */
static inline __attribute__((always_inline)) unsigned word_shift(const unsigned W, const unsigned SH)
{
    return W == 1 ? 0 : SH;
}

/* Writes the chunk into the `capacity` bytes the size pass gave it, and
 * never past them: the elements may not be the ones that pass saw (a
 * caller's buffer changing under the encoder), which is reported, not
 * written out of bounds or coded with a word another symbol owns.  An
 * element goes out as the code word of its symbol, then its raw bits (the
 * bits below the symbol first, then those above): one table look-up by the
 * element's bits from L up gives all but the L lowest raw bits.  *bits
 * (unless NULL): the bits written. */
static inline __attribute__((always_inline)) uint64_t
enc_write(const unsigned W, const unsigned SH, const uint8_t *data, uint64_t count,
          const uint64_t *words, uint8_t *dst, uint64_t capacity, uint64_t *bits)
{
    const unsigned L = word_shift(W, SH);
    uint8_t *const begin = dst, *const end = dst + capacity;
    uint64_t acc = 0, absent = 0;
    unsigned nbits = 0;
    for (uint64_t i = 0; i < count; i++) {
        unsigned x = enc_element(data, i, W);
        uint64_t e = words[x >> L];
        absent |= e;
        uint64_t low = (uint64_t)(x & ((1u << L) - 1)) << ((e >> WORD_CODE_SHIFT) & 31);
        acc |= ((uint64_t)(uint32_t)e | low) << nbits;
        nbits += (unsigned)(e >> WORD_BITS_SHIFT) & 63;
        if (nbits >= 32) {
            if (ECF8_UNLIKELY(end - dst < 4)) return ENC_OVERFLOW;
            ecf8_store_le32(dst, (uint32_t)acc);
            dst += 4, acc >>= 32, nbits -= 32;
        }
    }
    if (bits) *bits = (uint64_t)(dst - begin) * 8 + nbits;
    for (; nbits > 0; nbits = nbits > 8 ? nbits - 8 : 0) {
        if (ECF8_UNLIKELY(dst == end)) return ENC_OVERFLOW;
        *dst++ = (uint8_t)acc, acc >>= 8;
    }
    if (absent & WORD_ABSENT) return ENC_NO_CODE;
    return (uint64_t)(dst - begin);
}

/* One pair of loops per row of split_layouts.def. */
#define ECF8_SPLIT_LAYOUT(NAME, DTYPE, SPLIT, ELEMENT_BITS, SHIFT, SYMBOL_BITS)                    \
    static uint64_t NAME##_bits(const uint8_t *data, uint64_t count, const uint8_t *lengths)   \
    {                                                                                          \
        return enc_bits((ELEMENT_BITS) / 8, SHIFT, SYMBOL_BITS, (ELEMENT_BITS) - (SYMBOL_BITS), \
                        data, count, lengths);                                                 \
    }                                                                                          \
    static uint64_t NAME##_write(const uint8_t *data, uint64_t count, const uint64_t *words,   \
                                 uint8_t *dst, uint64_t capacity, uint64_t *bits)              \
    {                                                                                          \
        _Static_assert((ELEMENT_BITS) - ((ELEMENT_BITS) == 8 ? 0 : (SHIFT)) <= WORD_INDEX_BITS, \
                       #NAME ": the write table would need more than 2^10 entries");           \
        return enc_write((ELEMENT_BITS) / 8, SHIFT, data, count, words, dst, capacity, bits);  \
    }
#include "split_layouts.def"

static const struct {
    enc_bits_fn bits;
    enc_write_fn write;
} encoders[ECF8_LAYOUT_COUNT] = {
#define ECF8_SPLIT_LAYOUT(NAME, ...) {NAME##_bits, NAME##_write},
#include "split_layouts.def"
};

static int input_changed(uint64_t c, uint64_t wrote)
{
    return ecf8_fail(ECF8_ERR_IO, "input changed during compression (chunk %llu: %s)", (unsigned long long)c,
                     wrote == ENC_NO_CODE ? "a symbol the code has no word for" : "not the size it had");
}

/* Chunks [group * ENCODE_GROUP, ...) through one pass: the size pass
 * while j->offsets is NULL (bytes per chunk into j->chunk_bytes), then the
 * write pass into the sized space. */
static int encode_task(void *ctx, uint64_t group)
{
    encode_job *j = ctx;
    uint64_t c0 = j->c0 + group * ENCODE_GROUP, c1 = c0 + ENCODE_GROUP;
    if (c1 > j->c1) c1 = j->c1;
    for (uint64_t c = c0; c < c1; c++) {
        uint64_t start = ecf8_chunk_start(&j->stream, c), count = ecf8_chunk_elements(&j->stream, c);
        const uint8_t *data = j->data + (start - j->base) * j->width;
        const uint64_t k = c - j->c0;
        if (!j->offsets) {
            j->chunk_bytes[k] = (j->bits(data, count, j->lengths) + 7) / 8;
            continue;
        }
        uint64_t sized = j->offsets[k + 1] - j->offsets[k];
        uint64_t wrote = j->write(data, count, j->words, j->coded + j->offsets[k], sized, NULL);
        if (wrote != sized) return input_changed(c, wrote);
    }
    return ECF8_OK;
}

/* A small tensor of several chunks is coded in one pass instead of two:
 * each chunk into scratch space its worst case fits (the longest word and
 * the raw bits, every element), back to back, then copied into place.
 * The elements are checked against the plan instead of against a size
 * pass: every symbol has a word, and the bits add up to those the
 * histogram counted. */
#define ONE_PASS_BYTES (1u << 20)

static int encode_one_pass(encode_job *j, const split_plan *plan, uint8_t **scratch)
{
    const ecf8_stream *s = &j->stream;
    const uint64_t per = plan->code_bits + plan->layout.raw_bits; /* bits per element, at most */
    uint64_t cap = 0, at = 0, bits = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) cap += (ecf8_chunk_elements(s, c) * per + 7) / 8;
    if (!(*scratch = malloc(cap + 1))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        const uint64_t count = ecf8_chunk_elements(s, c);
        const uint8_t *data = j->data + ecf8_chunk_start(s, c) * j->width;
        uint64_t chunk_bits = 0;
        uint64_t wrote = j->write(data, count, j->words, *scratch + at, (count * per + 7) / 8, &chunk_bits);
        if (wrote == ENC_NO_CODE || wrote == ENC_OVERFLOW) return input_changed(c, wrote);
        j->chunk_bytes[c] = wrote;
        at += wrote, bits += chunk_bits;
    }
    return bits == plan->bits ? ECF8_OK : input_changed(s->n_chunks - 1, ENC_OVERFLOW);
}

/* The layout-0 loops and tables of plan's code into j. */
static int serial_tables(ecf8_dtype dtype, const split_plan *plan, encode_job *j)
{
    int row = ecf8_split_layout_row(dtype, plan->split, NULL); /* plan_split found it */
    j->bits = encoders[row].bits;
    j->write = encoders[row].write;
    uint16_t codes[256];
    const unsigned n_symbols = 1u << plan->layout.symbol_bits;
    int st = ecf8_canonical_codes(plan->lengths, n_symbols, codes);
    if (st) return st;
    for (unsigned i = 0; i < n_symbols; i++) j->lengths[i] = plan->code_bits ? plan->lengths[i] : 0;
    const ecf8_split_layout *l = &plan->layout;
    const unsigned width_bits = 8 * ecf8_dtype_size(dtype);
    const unsigned L = width_bits == 8 ? 0 : l->symbol_shift;
    /* Per symbol: its word, lengths and flag; then every table index as
     * (bits above the symbol, symbol, bits below it down to L): the raw
     * bits are those above, then those below, under the symbol's word. */
    uint64_t head[256];
    for (unsigned sym = 0; sym < n_symbols; sym++) {
        const unsigned len = j->lengths[sym];
        const uint64_t word = plan->code_bits && plan->lengths[sym] ? codes[sym] : 0;
        head[sym] = word | (uint64_t)(len + l->raw_bits) << WORD_BITS_SHIFT | (uint64_t)len << WORD_CODE_SHIFT |
                    (plan->lengths[sym] ? 0 : WORD_ABSENT);
    }
    const unsigned below = l->symbol_shift - L, above = width_bits - l->symbol_shift - l->symbol_bits;
    for (unsigned hi = 0; hi < 1u << above; hi++)
        for (unsigned sym = 0; sym < n_symbols; sym++) {
            const unsigned len = j->lengths[sym];
            uint64_t *w = j->words + (((uint64_t)hi << l->symbol_bits | sym) << below);
            for (unsigned lo = 0; lo < 1u << below; lo++)
                w[lo] = head[sym] | ((uint64_t)hi << l->symbol_shift | (uint64_t)lo << L) << len;
        }
    return ECF8_OK;
}

static int encode_coded(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                        const ecf8_compress_options *options, const split_plan *plan,
                        ecf8_encoded *enc)
{
    uint64_t words[1u << WORD_INDEX_BITS];
    encode_job j = {.data = data, .width = ecf8_dtype_size(dtype), .layout = plan->layout, .words = words};
    ecf8_stream *s = &j.stream;
    s->dtype = dtype;
    s->split = plan->split;
    s->code_bits = plan->code_bits;
    s->n_symbols = 1u << plan->layout.symbol_bits;
    s->n_elements = rows * cols;
    s->rows = rows, s->cols = cols;
    ecf8_chunk_geometry(rows, cols, options_chunk_target(options), &s->chunk_rows,
                        &s->chunk_cols, &s->n_chunks);
    j.c1 = s->n_chunks;
    unsigned threads = options ? options->threads : 0;
    if (options_layout(options) == ECF8_STREAM_LAYOUT_LANES) {
        s->stream_layout = ECF8_STREAM_LAYOUT_LANES;
        memcpy(s->lengths, plan->lengths, s->n_symbols);
        int st = ecf8_stream_build(s, data, threads, &enc->payload, &enc->payload_bytes, &enc->stream);
        if (!st) enc->split = plan->split;
        return st;
    }

    int st = serial_tables(dtype, plan, &j);
    if (st) return st;

    j.chunk_bytes = malloc((s->n_chunks + 1) * sizeof(uint64_t));
    if (!j.chunk_bytes) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    uint64_t groups = (s->n_chunks + ENCODE_GROUP - 1) / ENCODE_GROUP;
    /* One chunk (a small tensor) holds all the bits the plan counted from
     * the histogram: no size pass.  Elements changed since then are still
     * caught by the write pass, which must fill the space exactly. */
    uint8_t *scratch = NULL;
    if (s->n_chunks == 1) {
        j.chunk_bytes[0] = (plan->bits + 7) / 8;
    } else if (rows * cols * j.width <= ONE_PASS_BYTES) {
        if (ecf8_test_hook_between_encode_passes)
            ecf8_test_hook_between_encode_passes(data, rows * cols * j.width);
        if ((st = encode_one_pass(&j, plan, &scratch))) goto done;
    } else if ((st = ecf8_parallel_for(threads, groups, encode_task, &j))) { /* sizes */
        goto done;
    }

    uint64_t total = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) total += j.chunk_bytes[c];
    s->coded_bytes = total + 8; /* zero pad: decoders may load 8 bytes past the end */
    ecf8_payload_layout lay;
    if (!ecf8_payload_layout_compute(s->n_symbols, s->n_chunks, s->coded_bytes, &lay)) {
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "tensor too large");
        goto done;
    }
    enc->payload = calloc(1, lay.total_bytes);
    if (!enc->payload) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte payload",
                       (unsigned long long)lay.total_bytes);
        goto done;
    }
    enc->payload_bytes = lay.total_bytes;
    for (unsigned i = 0; i < s->n_symbols; i += 2)
        enc->payload[lay.lengths_offset + i / 2] = (uint8_t)(plan->lengths[i] | plan->lengths[i + 1] << 4);
    /* calloc'd, and offsets_offset is a multiple of 8: aligned. */
    j.offsets = (uint64_t *)(void *)(enc->payload + lay.offsets_offset);
    j.coded = enc->payload + lay.coded_offset;
    uint64_t off = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        j.offsets[c] = off;
        off += j.chunk_bytes[c];
    }
    j.offsets[s->n_chunks] = off;
    if (scratch) {
        memcpy(j.coded, scratch, (size_t)total);
    } else {
        if (ecf8_test_hook_between_encode_passes) ecf8_test_hook_between_encode_passes(data, rows * cols * j.width);
        if ((st = ecf8_parallel_for(threads, groups, encode_task, &j))) goto done; /* code words */
    }
    memcpy(s->lengths, plan->lengths, s->n_symbols);
    s->chunk_offsets = j.offsets;
    s->coded = j.coded;
    enc->stream = *s;
    enc->split = plan->split;
done:
    free(scratch);
    free(j.chunk_bytes);
    return st;
}

int ecf8_tensor_encode(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                       const ecf8_compress_options *options, ecf8_encoded **out)
{
    uint64_t n;
    if (!out || !ecf8_mul_u64(rows, cols, &n) || (!data && n))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: bad arguments");
    if (options && options->struct_size && options->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: options struct too small");
    if (options_layout(options) > ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: stream layout %u (0 or 1)", options_layout(options));
    *out = NULL;
    ecf8_encoded *enc = calloc(1, sizeof *enc);
    if (!enc) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    unsigned width = ecf8_dtype_size(dtype);

    ecf8_tensor_analysis an;
    split_plan plans[3];
    int st = analyze(dtype, data, n, rows, cols, options, true, &an, plans);
    if (st) goto fail;
    if (an.best_split != ECF8_SPLIT_STORED) {
        st = encode_coded(dtype, data, rows, cols, options, &plans[an.best_split], enc);
        if (st) goto fail;
        /* Auto chose on estimates, each off by less than a byte per chunk:
         * when the other split is that close, measure it as well. */
        ecf8_split other = an.best_split == ECF8_SPLIT_EXPONENT ? ECF8_SPLIT_BYTE : ECF8_SPLIT_EXPONENT;
        uint64_t cr, cc, nc;
        ecf8_chunk_geometry(rows, cols, options_chunk_target(options), &cr, &cc, &nc);
        if ((!options || options->split == ECF8_SPLIT_AUTO) && an.payload_bytes[other] &&
            an.payload_bytes[other] <= an.payload_bytes[an.best_split] + nc + 1) {
            ecf8_encoded alt = {0};
            st = encode_coded(dtype, data, rows, cols, options, &plans[other], &alt);
            if (st) {
                free(alt.payload);
                goto fail;
            }
            if (alt.payload_bytes < enc->payload_bytes) {
                free(enc->payload);
                *enc = alt;
            } else {
                free(alt.payload);
            }
        }
        if (enc->payload_bytes < n * width) {
            *out = enc;
            return ECF8_OK;
        }
        free(enc->payload); /* the estimate was optimistic: store instead */
        enc->payload = NULL;
    }
    enc->split = ECF8_SPLIT_STORED;
    enc->stored = data;
    enc->payload_bytes = n * width;
    if (width == 0) enc->payload_bytes = 0;
    *out = enc;
    return ECF8_OK;
fail:
    free(enc->payload);
    free(enc);
    return st;
}

void ecf8_encoded_free(ecf8_encoded *enc)
{
    if (!enc) return;
    free(enc->payload);
    free(enc);
}

const void *ecf8_encoded_payload(const ecf8_encoded *enc, size_t *bytes)
{
    if (bytes) *bytes = enc->payload_bytes;
    return enc->payload ? enc->payload : enc->stored;
}

ecf8_split ecf8_encoded_split(const ecf8_encoded *enc) { return enc->split; }

const ecf8_stream *ecf8_encoded_stream(const ecf8_encoded *enc)
{
    return enc->split == ECF8_SPLIT_STORED ? NULL : &enc->stream;
}

/* ---- windowed encoder --------------------------------------------------------
 * The same choices and bytes as ecf8_tensor_encode for a tensor that is
 * given a window (a run of whole chunks) at a time: the histograms of the
 * whole tensor first, then, where the choice needs exact sizes (the other
 * split within a byte per chunk, or a payload possibly not smaller than
 * the tensor), a size pass, then the chunks coded window by window. */
struct ecf8_window_encoder {
    ecf8_dtype dtype;
    unsigned width, layout, threads;
    uint64_t rows, cols, n;
    const ecf8_compress_options *options;
    uint64_t exp_hist[256], byte_hist[256];
    ecf8_tensor_analysis an;
    split_plan plans[3];
    ecf8_split cand[2];    /* splits that may be chosen, best estimate first */
    unsigned n_cand;
    uint64_t cand_coded[2]; /* their coded bytes after the size pass */
    ecf8_stream s;         /* geometry; once chosen the code, and offsets as coded */
    encode_job job;        /* layout 0: loops and tables of the chosen code */
    uint64_t words[1u << WORD_INDEX_BITS]; /* job.words */
    uint64_t *offsets;     /* n_chunks + 1 */
    uint64_t coded_so_far, next_chunk;
    uint64_t *chunk_bytes, *rel; /* per window */
    uint32_t *lane_bits;
    size_t scratch_chunks;
    uint8_t *coded;
    size_t coded_cap;
};

int ecf8_wenc_create(ecf8_dtype dtype, uint64_t rows, uint64_t cols,
                     const ecf8_compress_options *options, ecf8_window_encoder **out)
{
    uint64_t n;
    *out = NULL;
    if (!ecf8_mul_u64(rows, cols, &n) || n == 0 || ecf8_dtype_size(dtype) == 0)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: bad arguments");
    if (options && options->struct_size && options->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: options struct too small");
    if (options_layout(options) > ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: stream layout %u (0 or 1)", options_layout(options));
    ecf8_window_encoder *w = calloc(1, sizeof *w);
    if (!w) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    w->dtype = dtype, w->width = ecf8_dtype_size(dtype), w->rows = rows, w->cols = cols, w->n = n;
    w->options = options;
    w->layout = options_layout(options);
    w->threads = options ? options->threads : 0;
    w->s.dtype = dtype;
    w->s.rows = rows, w->s.cols = cols, w->s.n_elements = n;
    w->s.stream_layout = w->layout;
    ecf8_chunk_geometry(rows, cols, options_chunk_target(options), &w->s.chunk_rows,
                        &w->s.chunk_cols, &w->s.n_chunks);
    w->an.best_split = ECF8_SPLIT_STORED;
    *out = w;
    return ECF8_OK;
}

void ecf8_wenc_free(ecf8_window_encoder *w)
{
    if (!w) return;
    free(w->offsets), free(w->chunk_bytes), free(w->rel), free(w->lane_bits), free(w->coded);
    free(w);
}

uint64_t ecf8_wenc_chunks(const ecf8_window_encoder *w) { return w->s.n_chunks; }

uint64_t ecf8_wenc_window(const ecf8_window_encoder *w, uint64_t c0, uint64_t max_bytes,
                          uint64_t *first, uint64_t *count)
{
    /* Chunks are runs of consecutive elements: whole rows (chunk_cols ==
     * cols) or pieces of one row (chunk_rows == 1). */
    const ecf8_stream *s = &w->s;
    const uint64_t per = s->chunk_rows * s->chunk_cols * w->width; /* a whole chunk, at most */
    uint64_t c1 = c0 + (per >= max_bytes ? 1 : max_bytes / per);
    if (c1 > s->n_chunks) c1 = s->n_chunks;
    *first = ecf8_chunk_start(s, c0);
    *count = (c1 == s->n_chunks ? s->n_elements : ecf8_chunk_start(s, c1)) - *first;
    return c1;
}

int ecf8_wenc_histogram(ecf8_window_encoder *w, const void *data, uint64_t n_elements)
{
    uint64_t e[256], b[256];
    int st = histograms(w->dtype, data, n_elements, w->threads, e, b);
    for (unsigned v = 0; v < 256 && !st; v++) w->exp_hist[v] += e[v], w->byte_hist[v] += b[v];
    return st;
}

/* A bound on the coded bytes of plan p: chunks round up to a byte
 * (layout 0), or add at most a 68-byte lane table and two 4-byte pads. */
static uint64_t coded_bound(const ecf8_window_encoder *w, const split_plan *p)
{
    uint64_t per_chunk = w->layout == ECF8_STREAM_LAYOUT_LANES ? 68 + 4 + 4 : 1;
    return p->bits / 8 + 1 + w->s.n_chunks * per_chunk + 8;
}

static uint64_t payload_total(const ecf8_window_encoder *w, ecf8_split split, uint64_t coded)
{
    ecf8_payload_layout lay;
    if (!ecf8_payload_layout_compute(1u << w->plans[split].layout.symbol_bits, w->s.n_chunks, coded, &lay))
        return UINT64_MAX;
    return lay.total_bytes;
}

/* Makes the code of `split` the one that chunks are sized and coded with. */
static int use_code(ecf8_window_encoder *w, ecf8_split split)
{
    const split_plan *p = &w->plans[split];
    w->s.split = split;
    w->s.code_bits = p->code_bits;
    w->s.n_symbols = 1u << p->layout.symbol_bits;
    memcpy(w->s.lengths, p->lengths, w->s.n_symbols);
    w->job = (encode_job){.width = w->width, .layout = p->layout, .stream = w->s, .words = w->words};
    return w->layout == ECF8_STREAM_LAYOUT_LANES ? ECF8_OK : serial_tables(w->dtype, p, &w->job);
}

/* Settles on `split` (STORED: the tensor as it is) for the windows. */
static int choose(ecf8_window_encoder *w, ecf8_split split)
{
    w->n_cand = 0;
    w->s.split = split;
    if (split == ECF8_SPLIT_STORED) return ECF8_OK;
    int st = use_code(w, split);
    if (st) return st;
    if (!(w->offsets = malloc((w->s.n_chunks + 1) * sizeof *w->offsets)))
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    w->offsets[0] = 0;
    return ECF8_OK;
}

int ecf8_wenc_plan(ecf8_window_encoder *w, bool *need_sizes)
{
    ecf8_tensor_analysis *an = &w->an;
    memset(an, 0, sizeof *an);
    an->source_bytes = w->n * w->width;
    an->payload_bytes[ECF8_SPLIT_STORED] = an->entropy_bound_bytes[ECF8_SPLIT_STORED] = w->n * w->width;
    an->best_split = ECF8_SPLIT_STORED;
    *need_sizes = false;
    if (options_code_bits(w->options) > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "max code length %u > %d", options_code_bits(w->options),
                         ECF8_MAX_CODE_BITS);
    memcpy(an->exponent_histogram, w->exp_hist, sizeof w->exp_hist);
    int st = analyze_histograms(w->dtype, w->n, w->rows, w->cols, w->options, w->byte_hist, true, an,
                                w->plans);
    if (st || an->best_split == ECF8_SPLIT_STORED) return st ? st : choose(w, ECF8_SPLIT_STORED);
    /* As ecf8_tensor_encode: the other split when its estimate is close. */
    ecf8_split best = an->best_split;
    ecf8_split other = best == ECF8_SPLIT_EXPONENT ? ECF8_SPLIT_BYTE : ECF8_SPLIT_EXPONENT;
    w->cand[0] = best, w->n_cand = 1;
    if ((!w->options || w->options->split == ECF8_SPLIT_AUTO) && an->payload_bytes[other] &&
        an->payload_bytes[other] <= an->payload_bytes[best] + w->s.n_chunks + 1)
        w->cand[w->n_cand++] = other;
    if (w->n_cand == 1 && payload_total(w, best, coded_bound(w, &w->plans[best])) < w->n * w->width)
        return choose(w, best);
    *need_sizes = true;
    w->cand_coded[0] = w->cand_coded[1] = 0;
    return ECF8_OK;
}

static int grow_scratch(ecf8_window_encoder *w, uint64_t chunks)
{
    if (chunks + 1 <= w->scratch_chunks) return ECF8_OK;
    size_t n = (size_t)chunks + 1;
    free(w->chunk_bytes), free(w->rel), free(w->lane_bits);
    w->chunk_bytes = malloc(n * sizeof *w->chunk_bytes);
    w->rel = malloc(n * sizeof *w->rel);
    w->lane_bits = malloc(n * ECF8_LANES * sizeof *w->lane_bits);
    w->scratch_chunks = n;
    if (w->chunk_bytes && w->rel && w->lane_bits) return ECF8_OK;
    w->scratch_chunks = 0;
    return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
}

/* The size pass of chunks [c0, c1) under the code w->s (layout 1) or
 * w->job (layout 0): bytes per chunk into w->chunk_bytes. */
static int size_chunks(ecf8_window_encoder *w, const void *data, uint64_t c0, uint64_t c1)
{
    int st = grow_scratch(w, c1 - c0);
    if (st) return st;
    if (w->layout == ECF8_STREAM_LAYOUT_LANES)
        return ecf8_stream_build_range(&w->s, data, c0, c1, w->threads, w->chunk_bytes, w->lane_bits,
                                       NULL, NULL);
    encode_job *j = &w->job;
    j->data = data, j->c0 = c0, j->c1 = c1, j->base = ecf8_chunk_start(&w->s, c0);
    j->chunk_bytes = w->chunk_bytes, j->offsets = NULL, j->coded = NULL;
    return ecf8_parallel_for(w->threads, ecf8_ceil_div(c1 - c0, ENCODE_GROUP), encode_task, j);
}

int ecf8_wenc_size(ecf8_window_encoder *w, const void *data, uint64_t c0, uint64_t c1)
{
    for (unsigned k = 0; k < w->n_cand; k++) {
        int st = use_code(w, w->cand[k]);
        if (!st) st = size_chunks(w, data, c0, c1);
        if (st) return st;
        for (uint64_t c = c0; c < c1; c++) w->cand_coded[k] += w->chunk_bytes[c - c0];
    }
    return ECF8_OK;
}

int ecf8_wenc_choose(ecf8_window_encoder *w)
{
    if (!w->n_cand) return ECF8_OK; /* ecf8_wenc_plan chose */
    ecf8_split pick = w->cand[0];
    uint64_t best = payload_total(w, pick, w->cand_coded[0] + 8);
    if (w->n_cand == 2 && payload_total(w, w->cand[1], w->cand_coded[1] + 8) < best)
        pick = w->cand[1], best = payload_total(w, pick, w->cand_coded[1] + 8);
    return choose(w, best < w->n * w->width ? pick : ECF8_SPLIT_STORED);
}

ecf8_split ecf8_wenc_split(const ecf8_window_encoder *w) { return w->s.split; }

int ecf8_wenc_code(ecf8_window_encoder *w, const void *data, uint64_t c0, uint64_t c1,
                   const uint8_t **coded, size_t *bytes)
{
    if (w->s.split == ECF8_SPLIT_STORED || c0 != w->next_chunk || c1 > w->s.n_chunks || c1 <= c0)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encode: windows out of order");
    int st = size_chunks(w, data, c0, c1);
    if (st) return st;
    uint64_t total = 0;
    for (uint64_t c = c0; c < c1; c++) {
        w->rel[c - c0] = total;
        total += w->chunk_bytes[c - c0];
    }
    w->rel[c1 - c0] = total;
    if (total + 1 > w->coded_cap) {
        free(w->coded);
        w->coded_cap = 0;
        if (!(w->coded = malloc((size_t)total + 1))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        w->coded_cap = (size_t)total + 1;
    }
    memset(w->coded, 0, (size_t)total);
    if (ecf8_test_hook_between_encode_passes)
        ecf8_test_hook_between_encode_passes(
            data, ((c1 == w->s.n_chunks ? w->n : ecf8_chunk_start(&w->s, c1)) - ecf8_chunk_start(&w->s, c0)) *
                      w->width);
    if (w->layout == ECF8_STREAM_LAYOUT_LANES) {
        st = ecf8_stream_build_range(&w->s, data, c0, c1, w->threads, w->chunk_bytes, w->lane_bits,
                                     w->rel, w->coded);
    } else {
        encode_job *j = &w->job;
        j->offsets = w->rel, j->coded = w->coded;
        st = ecf8_parallel_for(w->threads, ecf8_ceil_div(c1 - c0, ENCODE_GROUP), encode_task, j);
    }
    if (st) return st;
    for (uint64_t c = c0; c < c1; c++) w->offsets[c + 1] = w->coded_so_far + w->rel[c + 1 - c0];
    w->coded_so_far += total;
    w->next_chunk = c1;
    if (c1 == w->s.n_chunks) w->s.coded_bytes = w->coded_so_far + 8; /* and the zero pad */
    *coded = w->coded, *bytes = (size_t)total;
    return ECF8_OK;
}

const ecf8_stream *ecf8_wenc_stream(ecf8_window_encoder *w)
{
    w->s.chunk_offsets = w->offsets;
    w->s.coded = NULL;
    return &w->s;
}
