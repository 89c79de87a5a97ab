/* stream_codec.c - the chunked tensor codec: analysis, encoder, validation,
 * the fast CPU decoder and the simple reference decoder.
 *
 * A coded element is its symbol's code word followed by its raw bits, LSB
 * first; a chunk is the concatenation of its elements' bit strings, padded
 * to a byte.  Chunks are independent, so encoder and decoder parallelise
 * over chunks, and the decoder interleaves several chunks per thread to
 * hide the table-lookup latency of one stream. */
#include "internal.h"
#include "stream_decode.h"

#include <math.h>
#include <stdlib.h>

/* Hostile files must not make the decoder allocate or loop without bound. */
#define MAX_CHUNK_ELEMENTS (1u << 22)

/* ---- geometry ------------------------------------------------------------ */
void ecf8_chunk_geometry(uint64_t rows, uint64_t cols, uint64_t target, uint64_t *chunk_rows,
                         uint64_t *chunk_cols, uint64_t *n_chunks)
{
    if (target == 0) target = ECF8_DEFAULT_CHUNK_ELEMENTS;
    if (target > MAX_CHUNK_ELEMENTS) target = MAX_CHUNK_ELEMENTS; /* what decoders accept */
    if (rows == 0 || cols == 0) {
        *chunk_rows = 1, *chunk_cols = 1, *n_chunks = 0;
        return;
    }
    if (cols <= target) {
        /* Whole rows per chunk: a GEMV work-group owns whole output rows. */
        *chunk_cols = cols;
        *chunk_rows = target / cols;
        if (*chunk_rows > rows) *chunk_rows = rows;
    } else {
        /* Long rows are cut into nearly equal segments, 64-aligned so that
         * matmul tiles never straddle two chunks needlessly. */
        uint64_t segs = (cols + target - 1) / target;
        uint64_t c = ecf8_align_up((cols + segs - 1) / segs, 64);
        *chunk_rows = 1;
        *chunk_cols = c < cols ? c : cols;
    }
    *n_chunks = ecf8_ceil_div(rows, *chunk_rows) * ecf8_ceil_div(cols, *chunk_cols);
}

uint64_t ecf8_chunk_start(const ecf8_stream *s, uint64_t chunk)
{
    uint64_t segs = ecf8_ceil_div(s->cols, s->chunk_cols);
    uint64_t row0 = chunk / segs * s->chunk_rows, col0 = chunk % segs * s->chunk_cols;
    return row0 * s->cols + col0;
}

uint64_t ecf8_chunk_count(const ecf8_stream *s, uint64_t chunk)
{
    uint64_t segs = ecf8_ceil_div(s->cols, s->chunk_cols);
    uint64_t row0 = chunk / segs * s->chunk_rows, col0 = chunk % segs * s->chunk_cols;
    uint64_t nr = s->rows - row0 < s->chunk_rows ? s->rows - row0 : s->chunk_rows;
    uint64_t nc = s->cols - col0 < s->chunk_cols ? s->cols - col0 : s->chunk_cols;
    return nr * nc;
}

bool ecf8_payload_layout_compute(unsigned n_symbols, uint64_t n_chunks, uint64_t coded_bytes,
                                 ecf8_payload_layout *out)
{
    uint64_t offsets_bytes, end;
    out->lengths_offset = 0;
    out->offsets_offset = ecf8_align_up(n_symbols / 2, 8); /* lengths: 4 bits each */
    if (!ecf8_add_u64(n_chunks, 1, &offsets_bytes) || !ecf8_mul_u64(offsets_bytes, 8, &offsets_bytes))
        return false;
    if (!ecf8_add_u64(out->offsets_offset, offsets_bytes, &out->coded_offset)) return false;
    if (!ecf8_add_u64(out->coded_offset, coded_bytes, &end)) return false;
    out->total_bytes = end;
    return true;
}

/* ---- element <-> (symbol, raw) ------------------------------------------ */
static inline unsigned load_element(const uint8_t *data, uint64_t i, unsigned width)
{
    if (width == 1) return data[i];
    return (unsigned)data[2 * i] | (unsigned)data[2 * i + 1] << 8;
}

static inline void store_element(uint8_t *out, uint64_t i, unsigned width, unsigned v)
{
    if (width == 1) {
        out[i] = (uint8_t)v;
    } else {
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
}

static inline unsigned element_symbol(unsigned x, const ecf8_split_layout *l)
{
    return (x >> l->symbol_shift) & ((1u << l->symbol_bits) - 1);
}

static inline unsigned element_join(unsigned sym, unsigned raw, const ecf8_split_layout *l)
{
    unsigned low = raw & ((1u << l->symbol_shift) - 1);
    return (raw >> l->symbol_shift) << (l->symbol_shift + l->symbol_bits) |
           sym << l->symbol_shift | low;
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

static int hist_task(void *ctx, uint64_t block)
{
    hist_job *j = ctx;
    uint64_t begin = block * HIST_BLOCK, end = begin + HIST_BLOCK;
    if (end > j->n) end = j->n;
    uint64_t *he = j->hists[block][0], *hb = j->hists[block][1];
    if (j->width == 1) {
        /* Four sub-histograms break the store-to-load chain on runs of one value. */
        uint32_t h[4][256] = {{0}};
        uint64_t i = begin;
        for (; i + 4 <= end; i += 4) {
            h[0][j->data[i]]++, h[1][j->data[i + 1]]++;
            h[2][j->data[i + 2]]++, h[3][j->data[i + 3]]++;
        }
        for (; i < end; i++) h[0][j->data[i]]++;
        for (unsigned v = 0; v < 256; v++) {
            uint64_t c = (uint64_t)h[0][v] + h[1][v] + h[2][v] + h[3][v];
            hb[v] += c;
            he[element_symbol(v, &j->exp_layout)] += c;
        }
    } else {
        /* 16-bit elements: the high byte (byte split) and the exponent field. */
        uint32_t hh[2][256] = {{0}}, hx[2][256] = {{0}};
        const unsigned sh = j->exp_layout.symbol_shift, m = (1u << j->exp_layout.symbol_bits) - 1;
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
    return ECF8_OK;
}

/* Histograms of the exponent field and the coded byte over the tensor. */
static int histograms(ecf8_dtype dtype, const void *data, uint64_t n, unsigned threads,
                      uint64_t exp_hist[256], uint64_t byte_hist[256])
{
    hist_job j = {.data = data, .n = n, .width = ecf8_dtype_size(dtype)};
    int st = ecf8_split_layout_get(dtype, ECF8_SPLIT_EXPONENT, &j.exp_layout);
    if (st) return st;
    uint64_t blocks = (n + HIST_BLOCK - 1) / HIST_BLOCK;
    memset(exp_hist, 0, 256 * sizeof(uint64_t));
    memset(byte_hist, 0, 256 * sizeof(uint64_t));
    if (blocks == 0) return ECF8_OK;
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
} split_plan;

static int plan_split(ecf8_split split, ecf8_dtype dtype, const uint64_t *hist, uint64_t n,
                      uint64_t n_chunks, unsigned max_bits, split_plan *p)
{
    p->split = split;
    int st = ecf8_split_layout_get(dtype, split, &p->layout);
    if (st) return st;
    unsigned nsym = 1u << p->layout.symbol_bits;
    p->entropy_bytes =
        (uint64_t)ceil((entropy_bits(hist, nsym, n) + (double)n * p->layout.raw_bits) / 8);
    p->payload_bytes = 0; /* 0: this split is unavailable */
    unsigned present = 0;
    for (unsigned s = 0; s < nsym; s++) present += hist[s] != 0;
    if (present > (1u << max_bits)) return ECF8_OK; /* no code that short exists */
    st = ecf8_codebook_build(hist, nsym, max_bits, p->lengths);
    if (st) return st;
    unsigned used = 0, maxlen = 0;
    double bits = 0;
    for (unsigned s = 0; s < nsym; s++)
        if (hist[s]) {
            used++;
            if (p->lengths[s] > maxlen) maxlen = p->lengths[s];
            bits += (double)hist[s] * p->lengths[s];
        }
    p->code_bits = used <= 1 ? 0 : maxlen;
    if (used <= 1) bits = 0;
    bits += (double)n * p->layout.raw_bits;
    ecf8_payload_layout lay;
    uint64_t coded = (uint64_t)ceil(bits / 8 + (double)n_chunks * 0.5) + 8;
    if (!ecf8_payload_layout_compute(nsym, n_chunks, coded, &lay))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor too large");
    p->payload_bytes = lay.total_bytes;
    return ECF8_OK;
}

static unsigned options_code_bits(const ecf8_compress_options *o)
{
    return o && o->max_code_bits ? o->max_code_bits : ECF8_DEFAULT_CODE_BITS;
}

static int analyze(ecf8_dtype dtype, const void *data, uint64_t n, uint64_t rows, uint64_t cols,
                   const ecf8_compress_options *options, ecf8_tensor_analysis *out,
                   split_plan plans[3])
{
    memset(out, 0, sizeof *out);
    unsigned width = ecf8_dtype_size(dtype);
    out->source_bytes = n * width;
    out->payload_bytes[ECF8_SPLIT_STORED] = n * width;
    out->entropy_bound_bytes[ECF8_SPLIT_STORED] = n * width;
    out->best_split = ECF8_SPLIT_STORED;
    if (width == 0 || n == 0) return ECF8_OK;

    unsigned max_bits = options_code_bits(options);
    if (max_bits > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "max code length %u > %d", max_bits, ECF8_MAX_CODE_BITS);
    uint64_t byte_hist[256];
    int st = histograms(dtype, data, n, options ? options->threads : 0, out->exponent_histogram,
                        byte_hist);
    if (st) return st;
    uint64_t chunk_rows, chunk_cols, n_chunks;
    ecf8_chunk_geometry(rows, cols, options ? options->chunk_elements : 0, &chunk_rows,
                        &chunk_cols, &n_chunks);

    ecf8_split_layout el;
    ecf8_split_layout_get(dtype, ECF8_SPLIT_EXPONENT, &el);
    out->exponent_symbols = 1u << el.symbol_bits;
    out->exponent_entropy_bits =
        entropy_bits(out->exponent_histogram, out->exponent_symbols, n) / (double)n;

    ecf8_split want = options ? options->split : ECF8_SPLIT_AUTO;
    uint64_t best = n * width;
    for (int sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
        const uint64_t *h = sp == ECF8_SPLIT_EXPONENT ? out->exponent_histogram : byte_hist;
        st = plan_split((ecf8_split)sp, dtype, h, n, n_chunks, max_bits, &plans[sp]);
        if (st) return st;
        out->payload_bytes[sp] = plans[sp].payload_bytes;
        out->entropy_bound_bytes[sp] = plans[sp].entropy_bytes;
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
    return analyze(dtype, data, n, rows, cols, options, out, plans);
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
/* Write-pass table entry of a symbol: code word | length << 16, and
 * ENC_ABSENT for a symbol the code has no word for. */
#define ENC_ABSENT (1u << 31)

typedef uint64_t (*enc_bits_fn)(const uint8_t *data, uint64_t count, const uint8_t *lengths);
typedef uint64_t (*enc_write_fn)(const uint8_t *data, uint64_t count, const uint32_t *entries,
                                 uint8_t *dst, uint64_t capacity);

typedef struct encode_job {
    const uint8_t *data;
    unsigned width;
    ecf8_split_layout layout;
    ecf8_stream stream;
    uint8_t lengths[256]; /* emitted lengths: 0 everywhere for a one-symbol code */
    uint32_t entries[256]; /* the same with the code words, for the write pass */
    uint64_t *chunk_bytes;
    uint8_t *coded;
    uint64_t *offsets;
    enc_bits_fn bits;
    enc_write_fn write;
} encode_job;

#define ENCODE_GROUP 16 /* chunks per parallel task */

/* The encoder's two inner loops, instantiated per (dtype, split) with the
 * field layout as constants (like the decoder).  Locals only: stores through
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

/* Writes the chunk into the `capacity` bytes the size pass gave it, and
 * never past them: the elements may not be the ones that pass saw (a
 * caller's buffer changing under the encoder), which is reported, not
 * written out of bounds or coded with a word another symbol owns. */
static inline __attribute__((always_inline)) uint64_t
enc_write(const unsigned W, const unsigned SH, const unsigned S, const unsigned R,
          const uint8_t *data, uint64_t count, const uint32_t *entries, uint8_t *dst,
          uint64_t capacity)
{
    uint8_t *const begin = dst, *const end = dst + capacity;
    uint64_t acc = 0;
    unsigned nbits = 0;
    uint32_t absent = 0;
    for (uint64_t i = 0; i < count; i++) {
        unsigned x = enc_element(data, i, W);
        uint32_t e = entries[(x >> SH) & ((1u << S) - 1)];
        unsigned len = (e >> 16) & 31;
        unsigned raw = (x >> (SH + S)) << SH | (x & ((1u << SH) - 1));
        absent |= e;
        acc |= ((uint64_t)(e & 0xffff) | (uint64_t)raw << len) << nbits;
        nbits += len + R;
        if (nbits >= 32) {
            if (ECF8_UNLIKELY(end - dst < 4)) return ENC_OVERFLOW;
            ecf8_store_le32(dst, (uint32_t)acc);
            dst += 4, acc >>= 32, nbits -= 32;
        }
    }
    for (; nbits > 0; nbits = nbits > 8 ? nbits - 8 : 0) {
        if (ECF8_UNLIKELY(dst == end)) return ENC_OVERFLOW;
        *dst++ = (uint8_t)acc, acc >>= 8;
    }
    if (absent & ENC_ABSENT) return ENC_NO_CODE;
    return (uint64_t)(dst - begin);
}

#define DEFINE_ENCODERS(NAME, W, SH, S, R)                                                   \
    static uint64_t NAME##_bits(const uint8_t *data, uint64_t count, const uint8_t *lengths) \
    {                                                                                        \
        return enc_bits(W, SH, S, R, data, count, lengths);                                  \
    }                                                                                        \
    static uint64_t NAME##_write(const uint8_t *data, uint64_t count,                       \
                                 const uint32_t *entries, uint8_t *dst, uint64_t capacity)   \
    {                                                                                        \
        return enc_write(W, SH, S, R, data, count, entries, dst, capacity);                  \
    }

DEFINE_ENCODERS(enc_e4m3_exp, 1, 3, 4, 4)
DEFINE_ENCODERS(enc_e5m2_exp, 1, 2, 5, 3)
DEFINE_ENCODERS(enc_fp8_byte, 1, 0, 8, 0)
DEFINE_ENCODERS(enc_bf16_exp, 2, 7, 8, 8)
DEFINE_ENCODERS(enc_f16_exp, 2, 10, 5, 11)
DEFINE_ENCODERS(enc_16_byte, 2, 8, 8, 8)

static void pick_encoders(ecf8_dtype dtype, ecf8_split split, enc_bits_fn *bits, enc_write_fn *write)
{
#define PICK(NAME) (*bits = NAME##_bits, *write = NAME##_write)
    bool byte = split == ECF8_SPLIT_BYTE;
    switch (dtype) {
    case ECF8_DTYPE_F8_E4M3: byte ? PICK(enc_fp8_byte) : PICK(enc_e4m3_exp); break;
    case ECF8_DTYPE_F8_E5M2: byte ? PICK(enc_fp8_byte) : PICK(enc_e5m2_exp); break;
    case ECF8_DTYPE_BF16: byte ? PICK(enc_16_byte) : PICK(enc_bf16_exp); break;
    default: byte ? PICK(enc_16_byte) : PICK(enc_f16_exp); break;
    }
#undef PICK
}

static int encode_size_task(void *ctx, uint64_t group)
{
    encode_job *j = ctx;
    uint64_t c0 = group * ENCODE_GROUP, c1 = c0 + ENCODE_GROUP;
    if (c1 > j->stream.n_chunks) c1 = j->stream.n_chunks;
    for (uint64_t c = c0; c < c1; c++) {
        uint64_t start = ecf8_chunk_start(&j->stream, c), count = ecf8_chunk_count(&j->stream, c);
        uint64_t bits = j->bits(j->data + start * j->width, count, j->lengths);
        j->chunk_bytes[c] = (bits + 7) / 8;
    }
    return ECF8_OK;
}

static int encode_write_task(void *ctx, uint64_t group)
{
    encode_job *j = ctx;
    uint64_t c0 = group * ENCODE_GROUP, c1 = c0 + ENCODE_GROUP;
    if (c1 > j->stream.n_chunks) c1 = j->stream.n_chunks;
    for (uint64_t c = c0; c < c1; c++) {
        uint64_t start = ecf8_chunk_start(&j->stream, c), count = ecf8_chunk_count(&j->stream, c);
        uint64_t sized = j->offsets[c + 1] - j->offsets[c];
        uint64_t wrote = j->write(j->data + start * j->width, count, j->entries,
                                  j->coded + j->offsets[c], sized);
        if (wrote != sized)
            return ecf8_fail(ECF8_ERR_IO, "input changed during compression (chunk %llu: %s)",
                             (unsigned long long)c,
                             wrote == ENC_NO_CODE ? "a symbol the code has no word for"
                                                  : "not the size it had");
    }
    return ECF8_OK;
}

static int encode_coded(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                        const ecf8_compress_options *options, const split_plan *plan,
                        ecf8_encoded *enc)
{
    encode_job j = {.data = data, .width = ecf8_dtype_size(dtype), .layout = plan->layout};
    ecf8_stream *s = &j.stream;
    s->dtype = dtype;
    s->split = plan->split;
    s->code_bits = plan->code_bits;
    s->n_symbols = 1u << plan->layout.symbol_bits;
    s->n_elements = rows * cols;
    s->rows = rows, s->cols = cols;
    ecf8_chunk_geometry(rows, cols, options ? options->chunk_elements : 0, &s->chunk_rows,
                        &s->chunk_cols, &s->n_chunks);
    unsigned threads = options ? options->threads : 0;

    pick_encoders(dtype, plan->split, &j.bits, &j.write);
    uint16_t codes[256];
    int st = ecf8_canonical_codes(plan->lengths, s->n_symbols, codes);
    if (st) return st;
    for (unsigned i = 0; i < s->n_symbols; i++) {
        j.lengths[i] = plan->code_bits ? plan->lengths[i] : 0;
        j.entries[i] = !plan->lengths[i] ? ENC_ABSENT
                     : plan->code_bits ? codes[i] | (uint32_t)j.lengths[i] << 16 : 0;
    }

    j.chunk_bytes = malloc((s->n_chunks + 1) * sizeof(uint64_t));
    if (!j.chunk_bytes) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    uint64_t groups = (s->n_chunks + ENCODE_GROUP - 1) / ENCODE_GROUP;
    st = ecf8_parallel_for(threads, groups, encode_size_task, &j);
    if (st) goto done;

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
    if (ecf8_test_hook_between_encode_passes) ecf8_test_hook_between_encode_passes(data, rows * cols * j.width);
    st = ecf8_parallel_for(threads, groups, encode_write_task, &j);
    if (st) goto done;
    memcpy(s->lengths, plan->lengths, s->n_symbols);
    s->chunk_offsets = j.offsets;
    s->coded = j.coded;
    enc->stream = *s;
    enc->split = plan->split;
done:
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
    *out = NULL;
    ecf8_encoded *enc = calloc(1, sizeof *enc);
    if (!enc) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    unsigned width = ecf8_dtype_size(dtype);

    ecf8_tensor_analysis an;
    split_plan plans[3];
    int st = analyze(dtype, data, n, rows, cols, options, &an, plans);
    if (st) goto fail;
    if (an.best_split != ECF8_SPLIT_STORED) {
        st = encode_coded(dtype, data, rows, cols, options, &plans[an.best_split], enc);
        if (st) goto fail;
        /* Auto chose on estimates, each off by less than a byte per chunk:
         * when the other split is that close, measure it as well. */
        ecf8_split other = an.best_split == ECF8_SPLIT_EXPONENT ? ECF8_SPLIT_BYTE : ECF8_SPLIT_EXPONENT;
        uint64_t cr, cc, nc;
        ecf8_chunk_geometry(rows, cols, options ? options->chunk_elements : 0, &cr, &cc, &nc);
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

/* ---- validation ------------------------------------------------------------ */
int ecf8_stream_validate(const ecf8_stream *s)
{
    if (!s) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL stream");
    ecf8_split_layout l;
    if (s->split != ECF8_SPLIT_EXPONENT && s->split != ECF8_SPLIT_BYTE)
        return ecf8_fail(ECF8_ERR_CORRUPT, "split %d is not a coded split", (int)s->split);
    if (ecf8_split_layout_get(s->dtype, s->split, &l))
        return ecf8_fail(ECF8_ERR_CORRUPT, "dtype %d cannot be coded", (int)s->dtype);
    if (s->n_symbols != 1u << l.symbol_bits)
        return ecf8_fail(ECF8_ERR_CORRUPT, "alphabet of %u symbols, expected %u", s->n_symbols,
                         1u << l.symbol_bits);
    if (s->code_bits > ECF8_MAX_CODE_BITS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "code length %u > %d", s->code_bits, ECF8_MAX_CODE_BITS);
    uint64_t n;
    if (!ecf8_mul_u64(s->rows, s->cols, &n) || n != s->n_elements || n == 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "shape %llux%llu does not hold %llu elements",
                         (unsigned long long)s->rows, (unsigned long long)s->cols,
                         (unsigned long long)s->n_elements);
    if (s->chunk_rows == 0 || s->chunk_cols == 0 || s->chunk_rows > s->rows ||
        s->chunk_cols > s->cols || (s->chunk_cols < s->cols && s->chunk_rows != 1))
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk geometry %llux%llu invalid for %llux%llu",
                         (unsigned long long)s->chunk_rows, (unsigned long long)s->chunk_cols,
                         (unsigned long long)s->rows, (unsigned long long)s->cols);
    uint64_t chunk_elems;
    if (!ecf8_mul_u64(s->chunk_rows, s->chunk_cols, &chunk_elems) || chunk_elems > MAX_CHUNK_ELEMENTS)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunks of %llux%llu elements exceed the limit of %u",
                         (unsigned long long)s->chunk_rows, (unsigned long long)s->chunk_cols,
                         MAX_CHUNK_ELEMENTS);
    uint64_t expect = ecf8_ceil_div(s->rows, s->chunk_rows) * ecf8_ceil_div(s->cols, s->chunk_cols);
    if (s->n_chunks != expect)
        return ecf8_fail(ECF8_ERR_CORRUPT, "%llu chunks, geometry gives %llu",
                         (unsigned long long)s->n_chunks, (unsigned long long)expect);
    if (s->coded_bytes < 8 || !s->chunk_offsets || !s->coded)
        return ecf8_fail(ECF8_ERR_CORRUPT, "coded stream missing or shorter than its padding");
    uint16_t table[1u << ECF8_MAX_CODE_BITS];
    int st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, table);
    if (st) return ecf8_fail_context(st, "code lengths");
    unsigned longest = 0;
    for (unsigned i = 0; i < s->n_symbols; i++)
        if (s->lengths[i] > longest) longest = s->lengths[i];
    if (s->code_bits && s->code_bits != longest)
        return ecf8_fail(ECF8_ERR_CORRUPT, "code_bits %u, longest code %u", s->code_bits, longest);
    /* Every chunk lies inside the stream and is no longer than its longest
     * possible coding, so decoders need no per-symbol bounds checks. */
    const uint64_t limit = s->coded_bytes - 8, elem_bits = s->code_bits + l.raw_bits;
    if (s->chunk_offsets[0] != 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "first chunk offset %llu, expected 0",
                         (unsigned long long)s->chunk_offsets[0]);
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        uint64_t a = s->chunk_offsets[c], b = s->chunk_offsets[c + 1];
        if (b < a || b > limit)
            return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu spans bytes %llu..%llu of a %llu-byte stream",
                             (unsigned long long)c, (unsigned long long)a, (unsigned long long)b,
                             (unsigned long long)limit);
        if (b - a > (ecf8_chunk_count(s, c) * elem_bits + 7) / 8)
            return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu is longer than any coding of it",
                             (unsigned long long)c);
    }
    if (s->chunk_offsets[s->n_chunks] != limit)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunks end at byte %llu, stream has %llu",
                         (unsigned long long)s->chunk_offsets[s->n_chunks],
                         (unsigned long long)limit);
    return ECF8_OK;
}

int ecf8_stream_from_parts(ecf8_dtype dtype, ecf8_split split, unsigned code_bits, uint64_t rows,
                           uint64_t cols, uint64_t chunk_rows, uint64_t chunk_cols,
                           uint64_t coded_bytes, const uint8_t *packed_lengths,
                           const void *offsets, uint64_t offsets_bytes, const void *coded,
                           uint64_t coded_avail, ecf8_stream *out)
{
    ecf8_stream s = {.dtype = dtype, .split = split, .code_bits = code_bits, .rows = rows,
                     .cols = cols, .chunk_rows = chunk_rows, .chunk_cols = chunk_cols,
                     .coded_bytes = coded_bytes};
    ecf8_split_layout l;
    if (ecf8_split_layout_get(dtype, split, &l))
        return ecf8_fail(ECF8_ERR_CORRUPT, "split %d invalid for dtype %d", (int)split, (int)dtype);
    s.n_symbols = 1u << l.symbol_bits;
    if (!ecf8_mul_u64(rows, cols, &s.n_elements) || s.n_elements == 0 || chunk_rows == 0 ||
        chunk_cols == 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "bad tensor geometry");
    s.n_chunks = ecf8_ceil_div(rows, chunk_rows) * ecf8_ceil_div(cols, chunk_cols);
    if (s.n_chunks >= offsets_bytes / 8) /* n_chunks + 1 offsets must fit */
        return ecf8_fail(ECF8_ERR_CORRUPT, "%llu chunks need %llu offset bytes, %llu are there",
                         (unsigned long long)s.n_chunks, (unsigned long long)(s.n_chunks + 1) * 8,
                         (unsigned long long)offsets_bytes);
    if (coded_avail != coded_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "coded stream is %llu bytes, the entry says %llu",
                         (unsigned long long)coded_avail, (unsigned long long)coded_bytes);
    for (unsigned i = 0; i < s.n_symbols; i++)
        s.lengths[i] = (packed_lengths[i / 2] >> (4 * (i & 1))) & 15;
    s.chunk_offsets = offsets;
    s.coded = coded;
    if ((uintptr_t)s.chunk_offsets % 8)
        return ecf8_fail(ECF8_ERR_CORRUPT, "chunk offsets not 8-byte aligned");
    int st = ecf8_stream_validate(&s);
    if (st) return st;
    *out = s;
    return ECF8_OK;
}

int ecf8_stream_from_payload(ecf8_dtype dtype, ecf8_split split, unsigned code_bits,
                             uint64_t rows, uint64_t cols, uint64_t chunk_rows,
                             uint64_t chunk_cols, uint64_t coded_bytes, const void *payload,
                             uint64_t payload_bytes, ecf8_stream *out)
{
    return ecf8_stream_from_payload_copy(dtype, split, code_bits, rows, cols, chunk_rows, chunk_cols,
                                         coded_bytes, payload, payload_bytes, out, NULL);
}

int ecf8_stream_from_payload_copy(ecf8_dtype dtype, ecf8_split split, unsigned code_bits,
                                  uint64_t rows, uint64_t cols, uint64_t chunk_rows,
                                  uint64_t chunk_cols, uint64_t coded_bytes, const void *payload,
                                  uint64_t payload_bytes, ecf8_stream *out, uint64_t **offsets_copy)
{
    ecf8_split_layout l;
    uint64_t n_chunks;
    if (ecf8_split_layout_get(dtype, split, &l))
        return ecf8_fail(ECF8_ERR_CORRUPT, "split %d invalid for dtype %d", (int)split, (int)dtype);
    if (chunk_rows == 0 || chunk_cols == 0 ||
        !ecf8_mul_u64(ecf8_ceil_div(rows, chunk_rows), ecf8_ceil_div(cols, chunk_cols), &n_chunks))
        return ecf8_fail(ECF8_ERR_CORRUPT, "bad tensor geometry");
    ecf8_payload_layout lay = {0}; /* printed below even when the layout overflows */
    if (!ecf8_payload_layout_compute(1u << l.symbol_bits, n_chunks, coded_bytes, &lay) ||
        lay.total_bytes != payload_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "payload is %llu bytes, its layout needs %llu",
                         (unsigned long long)payload_bytes, (unsigned long long)lay.total_bytes);
    const uint8_t *p = payload;
    const void *offsets = p + lay.offsets_offset;
    uint64_t offsets_bytes = lay.coded_offset - lay.offsets_offset;
    uint64_t *copy = NULL;
    if (offsets_copy && n_chunks < offsets_bytes / 8) { /* else from_parts reports it */
        offsets_bytes = (n_chunks + 1) * 8;
        if (!(copy = malloc((size_t)offsets_bytes))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        memcpy(copy, offsets, (size_t)offsets_bytes);
        offsets = copy;
    }
    int st = ecf8_stream_from_parts(dtype, split, code_bits, rows, cols, chunk_rows, chunk_cols,
                                    coded_bytes, p + lay.lengths_offset, offsets, offsets_bytes,
                                    p + lay.coded_offset, payload_bytes - lay.coded_offset, out);
    if (st) free(copy);
    else if (offsets_copy) *offsets_copy = copy;
    return st;
}

/* ---- fast decoder --------------------------------------------------------- */
/* Bits are read LSB first.  A lane keeps a byte pointer `q` and a 64-bit
 * buffer `b` loaded from it with a marker bit on top (bit 63 of the load,
 * then shifted down by the bit offset into that byte): at least 56 bits of
 * data below the marker.  Decoding only shifts `b` right, so the marker
 * counts what was consumed: the next refill moves q by clz(b) / 8 bytes and
 * skips clz(b) % 8 bits, with no count kept per element.  One lookup chain
 * is latency-bound (load, shift, load...), so up to LANES chunks are
 * decoded side by side; every (dtype, split) and lane count has its own
 * instance, with the field layout as constants and the lane state in
 * locals (byte stores may alias anything reached through a pointer, which
 * would force reloads).  Lookups never reach the marker: a round between
 * refills consumes at most 56 bits and its last lookup starts at most
 * 56 - 13 bits in. */
#define LANES 6
#define CLZ(b) ((unsigned)__builtin_clzll(b)) /* b != 0: the marker is in it */
#define REFILL(k)                                                           \
    do {                                                                    \
        unsigned c_ = CLZ(b[k]);                                            \
        q[k] += c_ >> 3;                                                    \
        b[k] = (ecf8_load_le64(q[k]) | 1ull << 63) >> (c_ & 7);             \
    } while (0)

/* One chunk being decoded: where it is in its stream and its output.  A
 * lane function copies the fields it needs into locals on entry and back
 * on return. */
typedef struct lane_state {
    const uint8_t *src; /* the chunk's stream */
    const uint8_t *q;   /* byte of the last refill */
    uint64_t b;         /* bit buffer, marker on top */
    uint8_t *o, *end;   /* output cursor and end */
    uint64_t chunk;
    int scratch;        /* scratch slot holding a padded copy of src, or -1 */
} lane_state;

/* As if refilled at the chunk start with nothing read. */
static inline void lane_start(lane_state *l, const uint8_t *src, uint8_t *out, uint64_t bytes)
{
    l->src = l->q = src;
    l->b = 1ull << 63;
    l->o = out, l->end = out + bytes;
}

static inline uint64_t lane_used_bits(const lane_state *l)
{
    return (uint64_t)(l->q - l->src) * 8 + CLZ(l->b);
}
#define LANES_LOAD(k) (q[k] = L[k].q, b[k] = L[k].b, o[k] = L[k].o, end[k] = L[k].end)
#define LANES_SAVE(k) (L[k].q = q[k], L[k].b = b[k], L[k].o = o[k])

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <stdatomic.h>
#define DECODE_BMI2 1
#else
#define DECODE_BMI2 0
#endif

/* The low `bits` bits of b, the table index: one BZHI in the BMI2
 * instances instead of a copy and an AND (compilers do not form it from a
 * mask kept in a register).  Inline assembly, so that the portable
 * instances, where `bmi2` is false, need no BMI2 intrinsics. */
static inline __attribute__((always_inline)) uint64_t low_bits(const bool bmi2, uint64_t b,
                                                               unsigned bits)
{
#if DECODE_BMI2
    if (bmi2) {
        uint64_t r;
        __asm__("bzhi %2, %1, %0" : "=r"(r) : "r"(b), "r"((uint64_t)bits));
        return r;
    }
#else
    (void)bmi2;
#endif
    return b & ((1ull << bits) - 1);
}

typedef struct decode_job decode_job;
/* Decodes lanes L[0..n-1] side by side while every one has at least its
 * decoder set's `tail` bytes of output left, then returns. */
typedef void (*lanes_fn)(const decode_job *j, lane_state *L);
/* Decodes the rest of one lane alone. */
typedef void (*finish_fn)(const decode_job *j, lane_state *l);

typedef struct decoder_set {
    lanes_fn run[LANES]; /* by lane count - 1 */
    finish_fn finish;
    unsigned tail;       /* output bytes below which run stops */
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

/* Generic entries (one element per lookup, indexed by code_bits bits):
 * the code length in the low byte, above it the symbol already shifted to
 * its place in the element.  The raw bits of an exponent split are the
 * sign above the low bits, so one lookup in raw_map places them both.
 * Element u after o[k]. */
#define ELEMENT(k, u)                                                                    \
    do {                                                                                 \
        uint64_t e = table[low_bits(bmi2, b[k], tbits)];                                \
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
    const uint8_t *q[LANES];                                                             \
    uint8_t *o[LANES], *end[LANES];                                                      \
    uint64_t b[LANES]
/* Elements per refill for the longest legal code: a constant, so the
 * loops unroll. */
#define GENERIC_N(R) (56 / (ECF8_MAX_CODE_BITS + (R)))

static inline __attribute__((always_inline)) void
decode_generic(const int lanes, const bool bmi2, const unsigned W, const unsigned SH,
               const unsigned R, const decode_job *j, lane_state *L)
{
    const unsigned N = GENERIC_N(R);
    GENERIC_LOCALS;
    uint64_t common = UINT64_MAX;
    _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) {
        LANES_LOAD(k);
        uint64_t n = (uint64_t)(end[k] - o[k]) / W;
        if (n < common) common = n;
    }
    for (uint64_t i = common / N; i; i--) {
        _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) REFILL(k);
        _Pragma("GCC unroll 4") for (unsigned u = 0; u < N; u++)
            _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) ELEMENT(k, u);
        _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) o[k] += W * N;
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) LANES_SAVE(k);
}

static inline __attribute__((always_inline)) void
finish_generic(const bool bmi2, const unsigned W, const unsigned SH, const unsigned R,
               const decode_job *j, lane_state *L)
{
    const unsigned N = GENERIC_N(R);
    GENERIC_LOCALS;
    LANES_LOAD(0);
    while ((uint64_t)(end[0] - o[0]) >= W * N) {
        REFILL(0);
        _Pragma("GCC unroll 4") for (unsigned u = 0; u < N; u++) ELEMENT(0, u);
        o[0] += W * N;
    }
    for (; o[0] < end[0]; o[0] += W) {
        REFILL(0);
        ELEMENT(0, 0);
    }
    LANES_SAVE(0);
}
#undef ELEMENT
#undef GENERIC_LOCALS

/* FP8, both splits: an element (code word and raw bits) is at most
 * code_bits + raw_bits <= PAIR_BITS long, so one lookup of the next
 * PAIR_BITS bits decodes one whole element, and two when both fit (most
 * lookups: trained weights code to about 6.5 bits per element).  Entry
 * (ecf8_pair_table_build): the output bytes in bits 0-15 (stored as they
 * are), the bits consumed in 16-21 (the buffer shifts by the entry rotated
 * by 16: one RORX), the length of the first element alone in 24-27, the
 * element count (1 or 2) in 30-31. */
#define PAIR_BITS ECF8_PAIR_BITS
#define PAIR(k)                                                 \
    do {                                                        \
        uint64_t e = pairs[low_bits(bmi2, b[k], PAIR_BITS)];    \
        uint16_t v = (uint16_t)e;                               \
        memcpy(o[k], &v, 2);                                    \
        b[k] >>= (e >> 16 | e << 48) & 63;                      \
        o[k] += e >> 30;                                        \
    } while (0)
#define PAIR_LOCALS                                             \
    const uint32_t *pairs = j->table;                           \
    const uint8_t *q[LANES];                                    \
    uint8_t *o[LANES], *end[LANES];                             \
    uint64_t b[LANES]
/* Output bytes a round of four lookups may write. */
#define PAIR_TAIL 8

static inline __attribute__((always_inline)) void
decode_pairs(const int lanes, const bool bmi2, const decode_job *j, lane_state *L)
{
    PAIR_LOCALS;
    _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) LANES_LOAD(k);
    /* Rounds of four lookups per lane (4 x PAIR_BITS <= 56 bits) write at
     * most 8 bytes per lane: as many as the lane nearest its end allows,
     * then look again. */
    for (;;) {
        uint64_t room = UINT64_MAX;
        _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) {
            uint64_t r = (uint64_t)(end[k] - o[k]);
            if (r < room) room = r;
        }
        if (room < PAIR_TAIL) break;
        for (uint64_t rounds = room / PAIR_TAIL; rounds; rounds--) {
            _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) REFILL(k);
            _Pragma("GCC unroll 4") for (int u = 0; u < 4; u++)
                _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) PAIR(k);
        }
    }
    _Pragma("GCC unroll 8") for (int k = 0; k < lanes; k++) LANES_SAVE(k);
}

/* Rounds while 8 bytes fit, pairs while two do, a single element last. */
static inline __attribute__((always_inline)) void finish_pairs(const bool bmi2,
                                                               const decode_job *j,
                                                               lane_state *L)
{
    PAIR_LOCALS;
    LANES_LOAD(0);
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
        uint64_t e = pairs[low_bits(bmi2, b[0], PAIR_BITS)];
        *o[0]++ = (uint8_t)e;
        b[0] >>= (e >> 24) & 15;
    }
    LANES_SAVE(0);
}
#undef PAIR
#undef PAIR_LOCALS

/* One instance per (dtype, split, pair table) and lane count, with the
 * lone-lane finisher, in a decoder_set; on x86-64 a second set for CPUs
 * with BMI1/2 and LZCNT, whose three-operand shifts by a register (shrx),
 * BZHI and LZCNT this code is made of: the baseline ISA shifts only by %cl
 * and counts leading zeros in two steps.  Chosen at run time. */
#define DECODER(NAME, n, ATTR, BMI2, W, SH, R, PAIRS)                                     \
    ATTR static void NAME##_##n(const decode_job *j, lane_state *L)                          \
    {                                                                                        \
        if (PAIRS)                                                                           \
            decode_pairs(n, BMI2, j, L);                                                     \
        else                                                                                 \
            decode_generic(n, BMI2, W, SH, R, j, L);                                         \
    }
#define DECODER_SET(NAME, ATTR, BMI2, W, SH, R, PAIRS)                                       \
    DECODER(NAME, 1, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    DECODER(NAME, 2, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    DECODER(NAME, 3, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    DECODER(NAME, 4, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    DECODER(NAME, 5, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    DECODER(NAME, 6, ATTR, BMI2, W, SH, R, PAIRS)                                            \
    ATTR static void NAME##_finish(const decode_job *j, lane_state *l)                       \
    {                                                                                        \
        if (PAIRS)                                                                           \
            finish_pairs(BMI2, j, l);                                                        \
        else                                                                                 \
            finish_generic(BMI2, W, SH, R, j, l);                                            \
    }                                                                                        \
    static const decoder_set NAME = {                                                        \
        {NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6},                        \
        NAME##_finish,                                                                       \
        PAIRS ? PAIR_TAIL : W * GENERIC_N(R)};
#if DECODE_BMI2
#define DEFINE_DECODERS(NAME, ...)                                                           \
    DECODER_SET(NAME, , false, __VA_ARGS__)                                                  \
    DECODER_SET(NAME##_bmi2, __attribute__((target("bmi,bmi2,lzcnt"))), true, __VA_ARGS__)
#else
#define DEFINE_DECODERS(NAME, ...) DECODER_SET(NAME, , false, __VA_ARGS__)
#endif

DEFINE_DECODERS(dec_e4m3_exp, 1, 3, 4, false)
DEFINE_DECODERS(dec_e5m2_exp, 1, 2, 3, false)
DEFINE_DECODERS(dec_fp8_byte, 1, 0, 0, false)
DEFINE_DECODERS(dec_bf16_exp, 2, 7, 8, false)
DEFINE_DECODERS(dec_f16_exp, 2, 10, 11, false)
DEFINE_DECODERS(dec_16_byte, 2, 8, 8, false)
DEFINE_DECODERS(dec_pairs, 1, 0, 0, true)
#undef DEFINE_DECODERS
#undef DECODER_SET
#undef DECODER
#undef CLZ
#undef REFILL
#undef LANES_LOAD
#undef LANES_SAVE
#undef GENERIC_N

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
            el_value[i] = element_join(sym, raw, l);
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

/* The decoders of a (dtype, split), by lane count; `portable` leaves out
 * the BMI2 set (tests run both). */
#if DECODE_BMI2
/* BMI1, BMI2 and LZCNT (its own CPUID bit, which compilers' feature tests
 * do not all know); asked once. */
static bool cpu_has_bmi2(void)
{
    static _Atomic int known = -1;
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    if (v < 0) {
        unsigned a, b, c, d;
        v = __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
            __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LZCNT);
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v;
}
#endif

static const decoder_set *pick_decoders(ecf8_dtype dtype, ecf8_split split, bool pairs,
                                     bool portable)
{
#if DECODE_BMI2
    bool bmi2 = !portable && cpu_has_bmi2();
#define PICK(NAME) (bmi2 ? &NAME##_bmi2 : &NAME)
#else
    (void)portable;
#define PICK(NAME) (&NAME)
#endif
    bool byte = split == ECF8_SPLIT_BYTE;
    if (pairs) return PICK(dec_pairs);
    switch (dtype) {
    case ECF8_DTYPE_F8_E4M3: return byte ? PICK(dec_fp8_byte) : PICK(dec_e4m3_exp);
    case ECF8_DTYPE_F8_E5M2: return byte ? PICK(dec_fp8_byte) : PICK(dec_e5m2_exp);
    case ECF8_DTYPE_BF16: return byte ? PICK(dec_16_byte) : PICK(dec_bf16_exp);
    default: return byte ? PICK(dec_16_byte) : PICK(dec_f16_exp);
    }
#undef PICK
}

static int chunk_error(const ecf8_stream *s, uint64_t c, uint64_t bits)
{
    return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu decodes to %llu bits, its stream holds %llu bytes",
                     (unsigned long long)c, (unsigned long long)bits,
                     (unsigned long long)(s->chunk_offsets[c + 1] - s->chunk_offsets[c]));
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

/* Starts chunk c in lane l, from a zero-padded copy in a free scratch slot
 * when the reader's worst case runs past the stream. */
static int lane_load(const decode_job *j, lane_state *l, uint64_t c, uint8_t **scratch,
                     unsigned *free_slots, uint64_t stride)
{
    const ecf8_stream *s = j->s;
    uint64_t off = s->chunk_offsets[c], count = ecf8_chunk_count(s, c);
    const uint8_t *src = s->coded + off;
    uint64_t need = chunk_read_bytes(j, count);
    l->chunk = c;
    l->scratch = -1;
    if (off + need > s->coded_bytes) {
        if (!*scratch && !(*scratch = malloc(LANES * stride)))
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        int slot = __builtin_ctz(*free_slots); /* a lane never holds two */
        *free_slots &= ~(1u << slot);
        uint8_t *copy = *scratch + (uint64_t)slot * stride;
        memcpy(copy, src, s->coded_bytes - off);
        memset(copy + (s->coded_bytes - off), 0, need - (s->coded_bytes - off));
        src = copy;
        l->scratch = slot;
    }
    lane_start(l, src, j->out + ecf8_chunk_start(s, c) * j->width, count * j->width);
    return ECF8_OK;
}

/* A pool of up to LANES chunks decoded side by side: whenever one is all
 * but done, it is finished alone and the next chunk of the task takes its
 * lane, so lanes stay full through chunks of unequal length (the last of a
 * row block, a short edge segment) and only the task's last few chunks run
 * with fewer lanes. */
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
    unsigned free_slots = (1u << LANES) - 1, active = 0;
    lane_state L[LANES];
    int st = ECF8_OK;
    for (;;) {
        for (; active < LANES && next < c1 && !st; active++)
            st = lane_load(j, &L[active], next++, &scratch, &free_slots, stride);
        if (st || !active) break;
        d->run[active - 1](j, L);
        for (unsigned k = 0; k < active;) {
            if ((uint64_t)(L[k].end - L[k].o) >= d->tail) {
                k++;
                continue;
            }
            d->finish(j, &L[k]);
            uint64_t used = lane_used_bits(&L[k]);
            if (!chunk_bits_ok(s, L[k].chunk, used) && !st) st = chunk_error(s, L[k].chunk, used);
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
    if (!s || !out) return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: NULL argument");
    ecf8_split_layout l;
    int st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    if (out_bytes < s->n_elements * (l.element_bits / 8))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: output of %zu bytes, need %llu", out_bytes,
                         (unsigned long long)(s->n_elements * (l.element_bits / 8)));
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
    j->decode = pick_decoders(s->dtype, s->split, pairs, portable);
    if (pairs) {
        st = ecf8_code_check(s->lengths, s->n_symbols, s->code_bits);
        if (!st) build_pair_table(s, &l, j->table);
    } else if (!(st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, j->table16))) {
        for (uint32_t i = 0; i < (1u << s->code_bits); i++)
            j->table[i] = (j->table16[i] & 15u) | (uint32_t)(j->table16[i] >> 4) << (l.symbol_shift + 8);
        if (l.raw_bits > l.symbol_shift)
            for (unsigned raw = 0; raw < (1u << l.raw_bits); raw++)
                j->raw_map[raw] = (uint16_t)element_join(0, raw, &l);
    }
    if (!st) {
        /* Tasks of nearly equal size, as few as keep the threads busy:
         * each ends with its last chunks in fewer lanes. */
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

/* ---- reference decoder ------------------------------------------------------ */
/* Canonical decoding one bit at a time (first code per length), no tables:
 * independent of the fast path, which is tested against it. */
int ecf8_stream_decode_reference(const ecf8_stream *s, void *out, size_t out_bytes)
{
    ecf8_split_layout l;
    int st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    unsigned width = ecf8_dtype_size(s->dtype);
    if (out_bytes < s->n_elements * width)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: output too small");
    /* Symbols sorted by (length, symbol) and the count per length. */
    unsigned count[16] = {0}, sorted[256], ns = 0;
    for (unsigned len = 1; len < 16; len++)
        for (unsigned sym = 0; sym < s->n_symbols; sym++)
            if (s->lengths[sym] == len) sorted[ns++] = sym, count[len]++;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        const uint8_t *src = s->coded + s->chunk_offsets[c];
        uint64_t avail_bits = (s->chunk_offsets[c + 1] - s->chunk_offsets[c]) * 8, pos = 0;
        uint64_t start = ecf8_chunk_start(s, c), n = ecf8_chunk_count(s, c);
#define NEXT_BIT() (pos < avail_bits ? (src[pos / 8] >> (pos % 8)) & 1u : 2u)
        for (uint64_t i = 0; i < n; i++) {
            unsigned sym = 0;
            if (s->code_bits == 0) {
                sym = sorted[0];
            } else {
                unsigned code = 0, first = 0, index = 0, len;
                for (len = 1; len <= s->code_bits; len++) {
                    unsigned b = NEXT_BIT();
                    if (b > 1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
                    pos++;
                    code = code | b;
                    if (code - first < count[len]) {
                        sym = sorted[index + code - first];
                        break;
                    }
                    index += count[len];
                    first = (first + count[len]) << 1;
                    code <<= 1;
                }
                if (len > s->code_bits) return ecf8_fail(ECF8_ERR_CORRUPT, "invalid code");
            }
            unsigned raw = 0;
            for (unsigned k = 0; k < l.raw_bits; k++) {
                unsigned b = NEXT_BIT();
                if (b > 1) return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %llu ends early", (unsigned long long)c);
                pos++;
                raw |= b << k;
            }
            store_element(out, start + i, width, element_join(sym, raw, &l));
        }
#undef NEXT_BIT
        if ((pos + 7) / 8 != avail_bits / 8) return chunk_error(s, c, pos);
    }
    return ECF8_OK;
}
