/* matmul.c - fused decode + matmul (cl/matmul.cl) and its uncompressed
 * baseline.
 *
 * ecf8_cl_matmul_create validates everything on the host before a kernel can
 * see it: W's shape and dtype, the scale tensor's dtype, shape and checksum,
 * the coded stream (ecf8_stream_validate: every offset and code length) and,
 * for every engine, W decoded once on the host against its checksum.  The
 * fused kernel has no error word of its own: a flipped payload bit that
 * keeps every code length decodes "successfully" on the device, so the host
 * decode at create is the only place such a tensor can be caught.  It
 * uploads, per engine:
 *   fused         the coded stream (zero-padded so that even a corrupt chunk
 *                 cannot make a kernel read outside it), the chunk offsets as
 *                 uint32, a decode table in the kernel's format (below) and
 *                 the block scales;
 *   uncompressed  the raw elements (the host decode above), rows padded to
 *                 an odd number of 64-byte lines, and the scales.
 * Programs are specialised by -D options per (dtype, split, code length,
 * X type) and built on first use; the runtime caches them.  The kernel picks
 * its lane count (16 with AVX-512 gathers, else 1) and reports it through a
 * probe kernel.
 *
 * Stream layout 1 (lane streams): on a CPU device, where every chunk row
 * piece is a multiple of 128 columns (K % 128 == 0, and CC % 128 == 0 for
 * row segments), the fused engine runs the lane-stream kernels
 * (ECF8_MM_STREAMS, ecf8_mm_sgemv1..4 / ecf8_mm_sgemm: 8 or 16 chunks per
 * vector, reported as the lane count), on the stream padded for a whole
 * band's worth of over-decoding.  On other devices (and with the
 * matmul_lanes 1 tuning) the same shapes take the lane order
 * (ECF8_CL_REDUCTION_LANES): the GPU-shaped kernels ecf8_mm_lgemv/lgemm,
 * one work-item per lane stream, on the same padded stream, and the
 * uncompressed engine runs their raw twin, so both engines keep one
 * contract.  Other layout-1 shapes fall back to the uncompressed kernel on
 * the raw weights, from the create-time host decode or decoded on the
 * device per call into scratch (fused_bytes says which). */
#include "runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MM_BLOCK 128       /* scale block and reduction block */
#define MM_MAX_GEMV_M 4    /* ecf8_mm_gemv1..4; larger batches use ecf8_mm_gemm */
#define MM_LIMIT (1u << 31) /* kernels index with 32-bit arithmetic */

enum { MM_GEMV1, MM_GEMV2, MM_GEMV3, MM_GEMV4, MM_GEMM, MM_DEQUANT,
       MM_SGEMV1, MM_SGEMV2, MM_SGEMV3, MM_SGEMV4, MM_SGEMM, MM_LGEMV, MM_LGEMM, MM_LDECODE,
       MM_N_KERNELS };
static const char *const kernel_names[MM_N_KERNELS] = {
    "ecf8_mm_gemv1", "ecf8_mm_gemv2", "ecf8_mm_gemv3", "ecf8_mm_gemv4", "ecf8_mm_gemm",
    "ecf8_mm_dequant", "ecf8_mm_sgemv1", "ecf8_mm_sgemv2", "ecf8_mm_sgemv3", "ecf8_mm_sgemv4",
    "ecf8_mm_sgemm", "ecf8_mm_lgemv", "ecf8_mm_lgemm", "ecf8_mm_ldecode"};

#define MM_LANE_GROUP 4 /* bands per work-group of the lane-order kernels (x 32 lanes) */
#define MM_LANE_ROWS 4  /* rows of X per pass of ecf8_mm_lgemm (cl/matmul.cl LMT) */

/* One built variant: its program (lanes chosen by the kernel source) and
 * the kernels, created on first use. */
typedef struct mm_variant {
    int built;
    unsigned lanes, interleave;
    cl_program prog;
    cl_kernel kernels[MM_N_KERNELS];
} mm_variant;

struct ecf8_cl_matmul {
    cl_context context;
    cl_device_id device;
    ecf8_cl_device_caps caps;
    ecf8_dtype dtype;
    ecf8_split split;
    ecf8_split_layout layout;
    unsigned code_bits;
    unsigned engines;
    /* Stream layout 1: streams = the fused engine runs the lane-stream
     * kernels (CPU device, whole 128-column row pieces); fused_raw = it runs
     * the uncompressed kernel on the raw weights instead (any other layout-1
     * case: GPUs, other shapes, matmul_lanes 1): those of `raw` where the
     * uncompressed engine holds them, else decoded per call into a scratch
     * buffer from `wdec`, W kept coded on the device between calls. */
    int streams, fused_raw;
    /* lane_order: both engines run the lane-order kernels (the GPU shape of
     * a layout-1 W whose rows are whole 128-column steps), so fused and
     * uncompressed share the lane-order contract. */
    int lane_order;
    ecf8_cl_tensor *wdec;
    uint32_t n, k, cr, cc, segs, nkb;
    uint32_t srs, sk, sstride; /* the scale grid: row shift, block columns, row stride */
    uint32_t raw_stride; /* elements from one raw row to the next */
    cl_mem coded, offsets, table, scale, raw;
    uint64_t fused_bytes, raw_bytes, scale_bytes;
    mm_variant variants[2][2]; /* [engine][x is bf16] */
    ecf8_cl_tuning tuning;     /* its matmul_* fields shape the programs */
};

/* ---- host-side element values (the kernels' formulas) ----------------------- */
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* fp32 bits of an FP8 element as cl/matmul.cl computes them: its exact
 * value, NaN codes as the quiet NaN with their sign (ecf8_element_to_float). */
static uint32_t fp8_bits(ecf8_dtype dtype, unsigned b)
{
    const uint8_t byte = (uint8_t)b;
    return f32_bits(ecf8_element_to_float(dtype, &byte, 0));
}

/* The kernel's decode table: bits 0-3 the code length, above them a value
 * part (FP8 byte split: the element's fp32 bits, whose low 20 are zero,
 * with the byte itself in bits 4-11; FP8 exponent split: symbol << 4;
 * BF16: the symbol where it sits in the fp32 bits). */
static int build_table(const ecf8_stream *s, const ecf8_split_layout *l, uint32_t **out,
                       size_t *entries)
{
    uint16_t *t16 = malloc(sizeof(uint16_t) << ECF8_MAX_CODE_BITS);
    size_t n = (size_t)1 << s->code_bits;
    uint32_t *t = malloc(n * sizeof *t);
    int st = t16 && t ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a decode table");
    if (!st) st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, t16);
    for (size_t i = 0; !st && i < n; i++) {
        unsigned sym = t16[i] >> 4, len = t16[i] & 15u;
        uint32_t v;
        if (s->dtype == ECF8_DTYPE_BF16) v = (uint32_t)sym << (16 + l->symbol_shift);
        else if (l->raw_bits == 0) v = fp8_bits(s->dtype, sym) | (uint32_t)sym << 4;
        else v = (uint32_t)sym << 4;
        t[i] = v | len;
    }
    free(t16);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    *entries = n;
    return ECF8_OK;
}

/* ---- validation ---------------------------------------------------------------- */
static const char *tensor_name(const ecf8_tensor_info *t) { return t->name ? t->name : "(unnamed)"; }

static int validate_weight(const ecf8_tensor_info *w)
{
    const char *name = tensor_name(w);
    if (w->dtype != ECF8_DTYPE_F8_E4M3 && w->dtype != ECF8_DTYPE_F8_E5M2 &&
        w->dtype != ECF8_DTYPE_BF16)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED,
                         "tensor '%s': dtype %s has no matmul (F8_E4M3, F8_E5M2 or BF16)", name,
                         w->dtype_name ? w->dtype_name : ecf8_dtype_name(w->dtype));
    if (w->ndim != 2)
        return ecf8_fail(ECF8_ERR_SHAPE, "tensor '%s': a Linear weight is 2-D, this one has %u dims",
                         name, w->ndim);
    uint64_t n = w->shape[0], k = w->shape[1], es = ecf8_dtype_size(w->dtype);
    if (n == 0 || k == 0)
        return ecf8_fail(ECF8_ERR_SHAPE, "tensor '%s': empty shape [%llu, %llu]", name,
                         (unsigned long long)n, (unsigned long long)k);
    if (n >= MM_LIMIT || k >= MM_LIMIT || n * k >= MM_LIMIT / es || w->n_elements != n * k)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED,
                         "tensor '%s': [%llu, %llu] is too large for the matmul kernels (2 GiB)",
                         name, (unsigned long long)n, (unsigned long long)k);
    if (!w->payload)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': no payload", name);
    if (w->split == ECF8_SPLIT_STORED) {
        if (w->payload_bytes != n * k * es)
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stored payload is %llu bytes, expected %llu",
                             name, (unsigned long long)w->payload_bytes,
                             (unsigned long long)(n * k * es));
        return ECF8_OK;
    }
    const ecf8_stream *s = &w->stream;
    if (s->dtype != w->dtype || s->split != w->split || s->rows != n || s->cols != k)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': stream geometry disagrees with the tensor",
                         name);
    int st = ecf8_stream_validate(s);
    if (st) return ecf8_fail_context(st, "tensor '%s'", name);
    if (s->coded_bytes >= MM_LIMIT / 2)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "tensor '%s': coded stream over 1 GiB", name);
    /* Layout 1 (lane streams) takes any geometry: the shapes its kernels
     * do not cover run on the raw weights (ecf8_cl_matmul_create). */
    if (s->stream_layout == ECF8_STREAM_LAYOUT_SERIAL && s->chunk_cols < s->cols &&
        s->chunk_cols % 64)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED,
                         "tensor '%s': row segments of %llu columns are not 64-aligned", name,
                         (unsigned long long)s->chunk_cols);
    return ECF8_OK;
}

/* ---- scales --------------------------------------------------------------------- */
/* The scale forms of the FP8 families (ecf8.h, ecf8_file_find_scale), the
 * dequantised weight being q * scale in each:
 *   dtypes   F32, BF16, F16, F8_E8M0 and U8 read as E8M0 (2^(e - 127), e = 255
 *            NaN), stored or (BF16, F16) coded;
 *   shapes   scalar [] or [1]; per-row [N] or [N, 1]; blocks
 *            [ceil(N/bn), ceil(K/bk)] of bn x bk = 128x128, 32x32 or 1x32
 *            (MXFP8), edge blocks partial.
 * The host widens each to F32 exactly and hands the kernels a grid
 * [ceil(N / 2^srs), ceil(K / sk)] (the contract of cl/matmul.cl): 128x128
 * blocks as they are (F32 ones uploaded as stored: the 1.x path), a scalar
 * as a 128x128 grid, per-row scales as a [N, ceil(K/128)] grid, 32x32 and
 * 1x32 blocks as their own grid with sk 32 (the scale applied per 32-column
 * block).  Where shapes of two forms coincide (N <= 32 and K <= 32, or
 * N = 1) they mean the same scales and the same reduction order. */
enum { SF_SCALAR, SF_ROW, SF_BLOCKS };

typedef struct scale_plan {
    int form;
    unsigned bn, bk;       /* SF_BLOCKS: the block */
    unsigned es;           /* bytes per stored element: 4, 2 or 1 */
    int e8m0;              /* 1-byte elements are E8M0 */
    unsigned srs, sk;      /* the kernels' grid: rows n >> srs, columns of sk */
    uint64_t grid_rows, grid_cols;
    float *grid;           /* the widened grid; NULL: upload the stored F32 as is */
} scale_plan;

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* "[a, b]" of a tensor's shape into buf. */
static void shape_text(const ecf8_tensor_info *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (unsigned i = 0; i < t->ndim && i < ECF8_MAX_DIMS && used + 24 < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%llu", i ? ", " : "",
                                 (unsigned long long)t->shape[i]);
    snprintf(buf + used, size - used, "]");
}

static int plan_scale(const ecf8_tensor_info *w, const ecf8_tensor_info *sc, scale_plan *p)
{
    const char *name = tensor_name(w);
    memset(p, 0, sizeof *p);
    if (w->dtype == ECF8_DTYPE_BF16) {
        if (sc)
            return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': BF16 weights take no scale tensor",
                             name);
        p->srs = 7, p->sk = MM_BLOCK;
        return ECF8_OK;
    }
    if (!sc)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': FP8 weights need their scale tensor",
                         name);
    const char *sname = tensor_name(sc);
    const char *dn = sc->dtype_name ? sc->dtype_name : ecf8_dtype_name(sc->dtype);
    if (sc->dtype == ECF8_DTYPE_BF16 || sc->dtype == ECF8_DTYPE_F16) p->es = 2;
    else if (sc->dtype == ECF8_DTYPE_OTHER && dn && !strcmp(dn, "F32")) p->es = 4;
    else if (sc->dtype == ECF8_DTYPE_F8_E8M0 || sc->dtype == ECF8_DTYPE_U8 ||
             (sc->dtype == ECF8_DTYPE_OTHER && dn && (!strcmp(dn, "F8_E8M0") || !strcmp(dn, "U8"))))
        p->es = 1, p->e8m0 = 1;
    else
        return ecf8_fail(ECF8_ERR_SHAPE,
                         "scale tensor '%s' of '%s' is %s, expected F32, BF16, F16, F8_E8M0 or U8 "
                         "(E8M0)", sname, name, dn ? dn : "?");
    uint64_t n = w->shape[0], k = w->shape[1];
    const uint64_t *sh = sc->shape;
    if (sc->ndim == 0 || (sc->ndim == 1 && sh[0] == 1)) {
        p->form = SF_SCALAR;
    } else if (sc->ndim == 1 && sh[0] == n) {
        p->form = SF_ROW;
    } else if (sc->ndim == 2 && sh[0] == ceil_div(n, 128) && sh[1] == ceil_div(k, 128)) {
        p->form = SF_BLOCKS, p->bn = 128, p->bk = 128;
    } else if (sc->ndim == 2 && sh[0] == n && sh[1] == 1) {
        p->form = SF_ROW;
    } else if (sc->ndim == 2 && sh[0] == ceil_div(n, 32) && sh[1] == ceil_div(k, 32)) {
        p->form = SF_BLOCKS, p->bn = 32, p->bk = 32;
    } else if (sc->ndim == 2 && sh[0] == n && sh[1] == ceil_div(k, 32)) {
        p->form = SF_BLOCKS, p->bn = 1, p->bk = 32;
    } else {
        char got[96];
        shape_text(sc, got, sizeof got);
        unsigned long long N = n, K = k;
        return ecf8_fail(ECF8_ERR_SHAPE,
                         "scale tensor '%s' has shape %s, weight '%s' [%llu, %llu] takes a scalar "
                         "[] or [1], per-row [%llu] or [%llu, 1], or blocks: 128x128 needs "
                         "[%llu, %llu], 32x32 [%llu, %llu], 1x32 [%llu, %llu]",
                         sname, got, name, N, K, N, N, (unsigned long long)ceil_div(n, 128),
                         (unsigned long long)ceil_div(k, 128), (unsigned long long)ceil_div(n, 32),
                         (unsigned long long)ceil_div(k, 32), N, (unsigned long long)ceil_div(k, 32));
    }
    uint64_t count = 1;
    for (unsigned i = 0; i < sc->ndim; i++) count *= sh[i];
    if (sc->n_elements != count || sc->source_bytes != count * p->es || !sc->payload ||
        (sc->split == ECF8_SPLIT_STORED && sc->payload_bytes != count * p->es))
        return ecf8_fail(ECF8_ERR_CORRUPT,
                         "scale tensor '%s': %llu elements in %llu payload bytes, expected %llu %s "
                         "elements (%llu bytes)", sname, (unsigned long long)sc->n_elements,
                         (unsigned long long)sc->payload_bytes, (unsigned long long)count, dn,
                         (unsigned long long)(count * p->es));
    switch (p->form) {
    case SF_SCALAR: p->srs = 7, p->sk = 128; break;
    case SF_ROW: p->srs = 0, p->sk = 128; break;
    default: p->srs = p->bn == 128 ? 7 : p->bn == 32 ? 5 : 0, p->sk = p->bk; break;
    }
    p->grid_rows = ceil_div(n, (uint64_t)1 << p->srs);
    p->grid_cols = ceil_div(k, p->sk);
    return ECF8_OK;
}

/* Element i of stored scale bytes as the exact F32 value. */
static float scale_value(const scale_plan *p, const ecf8_tensor_info *sc, const uint8_t *b,
                         size_t i)
{
    uint32_t u;
    float f;
    if (p->es == 4) {
        memcpy(&f, b + 4 * i, 4);
        return f;
    }
    if (p->es == 2) return ecf8_element_to_float(sc->dtype == ECF8_DTYPE_F16 ? ECF8_DTYPE_F16 : ECF8_DTYPE_BF16, b, i);
    /* E8M0: 2^(e - 127); e = 0 is 2^-127, an fp32 subnormal; 255 is NaN */
    u = b[i] == 255 ? 0x7FC00000u : b[i] ? (uint32_t)b[i] << 23 : 0x00400000u;
    memcpy(&f, &u, 4);
    return f;
}

/* The scales checked against their checksum (every engine reads them as
 * they are: a flipped bit there changes Y as surely as one in W) and, for
 * every form but stored F32 128x128 blocks, widened into p->grid. */
static int load_scale(const ecf8_tensor_info *w, const ecf8_tensor_info *sc, scale_plan *p)
{
    if (!sc) return ECF8_OK;
    if (p->form == SF_BLOCKS && p->bn == 128 && p->es == 4 && sc->split == ECF8_SPLIT_STORED) {
        if (ecf8_hash64(sc->payload, (size_t)sc->payload_bytes) != sc->checksum)
            return ecf8_fail(ECF8_ERR_CHECKSUM, "scale tensor '%s' of '%s': checksum mismatch",
                             tensor_name(sc), tensor_name(w));
        return ECF8_OK; /* uploaded as stored */
    }
    size_t bytes = (size_t)sc->source_bytes;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint64_t cells = p->grid_rows * p->grid_cols;
    p->grid = malloc((size_t)cells * sizeof *p->grid);
    if (!raw || !p->grid) {
        free(raw);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for the scales of '%s'", tensor_name(w));
    }
    int st;
    if (sc->split == ECF8_SPLIT_STORED) {
        st = ecf8_hash64(sc->payload, bytes) == sc->checksum ? ECF8_OK : ECF8_ERR_CHECKSUM;
        if (!st) memcpy(raw, sc->payload, bytes);
    } else {
        st = ecf8_tensor_decode_checked(sc, raw, bytes, 0);
    }
    if (st) {
        free(raw);
        if (st == ECF8_ERR_CHECKSUM)
            return ecf8_fail(ECF8_ERR_CHECKSUM, "scale tensor '%s' of '%s': checksum mismatch",
                             tensor_name(sc), tensor_name(w));
        return ecf8_fail_context(st, "scale tensor '%s' of '%s'", tensor_name(sc), tensor_name(w));
    }
    uint64_t gr = p->grid_rows, gc = p->grid_cols;
    for (uint64_t r = 0; r < gr; r++)
        for (uint64_t c = 0; c < gc; c++) {
            size_t i = p->form == SF_SCALAR ? 0 : p->form == SF_ROW ? (size_t)r : (size_t)(r * gc + c);
            p->grid[r * gc + c] = scale_value(p, sc, raw, i);
        }
    free(raw);
    return ECF8_OK;
}

/* ---- creation ---------------------------------------------------------------------- */
static int make_buffer(ecf8_cl_matmul *mm, size_t bytes, const void *data, cl_mem *out,
                       const char *what)
{
    cl_int err;
    *out = clCreateBuffer(mm->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                          (void *)data, &err);
    if (err != CL_SUCCESS) {
        char call[96];
        snprintf(call, sizeof call, "clCreateBuffer(matmul %s, %zu bytes)", what, bytes);
        return ecf8_cl_fail(err, call);
    }
    return ECF8_OK;
}

/* Coded stream + zero padding: a kernel decodes a chunk's elements whatever
 * their bits, so a corrupt chunk reads at most count * (code + raw) bits
 * from its start. */
static int upload_fused(ecf8_cl_matmul *mm, const ecf8_tensor_info *w)
{
    const ecf8_stream *s = &w->stream;
    uint64_t max_count = 0;
    for (uint64_t c = 0; c < s->n_chunks; c++) {
        uint64_t cnt = ecf8_chunk_elements(s, c);
        if (cnt > max_count) max_count = cnt;
    }
    uint64_t pad = (max_count * (s->code_bits + mm->layout.raw_bits) + 7) / 8 + 16;
    /* Layout 1: the lanes of a band past a partial last band's rows, or of
     * a clamped band, decode on past their lane's end (results never
     * stored): from the chunk's lane area, up to the band's element count
     * times 15 bits (the longest code), and raw plane loads up to count *
     * raw bits past it, plus an 8-byte load. */
    if (mm->streams || mm->lane_order)
        pad = ((uint64_t)mm->cr * (mm->segs > 1 ? mm->cc : mm->k) *
                   (ECF8_MAX_CODE_BITS + mm->layout.raw_bits) + 7) / 8 + 128;
    uint64_t total = s->coded_bytes + pad;
    if (total >= MM_LIMIT)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "tensor '%s': padded stream over 2 GiB",
                         tensor_name(w));
    uint8_t *coded = calloc(1, total);
    uint32_t *offs = malloc((s->n_chunks + 1) * sizeof *offs);
    uint32_t *table = NULL;
    size_t entries = 0;
    int st = coded && offs ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) {
        memcpy(coded, s->coded, s->coded_bytes);
        for (uint64_t c = 0; c <= s->n_chunks; c++) offs[c] = (uint32_t)s->chunk_offsets[c];
        st = build_table(s, &mm->layout, &table, &entries);
    }
    if (!st) st = make_buffer(mm, total, coded, &mm->coded, "stream");
    if (!st) st = make_buffer(mm, (s->n_chunks + 1) * sizeof *offs, offs, &mm->offsets, "offsets");
    if (!st) st = make_buffer(mm, entries * sizeof *table, table, &mm->table, "table");
    if (!st)
        mm->fused_bytes = s->coded_bytes + (s->n_chunks + 1) * sizeof *offs +
                          entries * sizeof *table + mm->scale_bytes;
    free(coded);
    free(offs);
    free(table);
    return st;
}

/* Raw elements for the uncompressed engine (and for a stored W), from the
 * n * k elements `raw` that verify_weight checked.  A work-item reads
 * 16 * IL rows side by side; at a row pitch that is a multiple of 4 KiB
 * (K = 4096 FP8) they all fall into one L1 set and evict each other
 * (measured: the GEMV ran 1.8x slower than at K = 4032), so rows start an
 * odd number of cache lines apart. */
static int upload_raw(ecf8_cl_matmul *mm, const uint8_t *raw)
{
    size_t es = ecf8_dtype_size(mm->dtype), row = (size_t)mm->k * es, bytes = mm->n * row;
    size_t pitch = (row + 63) / 64 | 1; /* in lines */
    if ((uint64_t)mm->n * pitch * 64 + 16 >= MM_LIMIT) pitch = 0; /* no room: unpadded */
    pitch = pitch ? pitch * 64 : row;
    mm->raw_stride = (uint32_t)(pitch / es);
    /* +16: 32-bit loads read up to 3 bytes past the last row */
    uint8_t *dev = calloc(1, mm->n * pitch + 16);
    if (!dev) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for %zu raw weight bytes", bytes);
    for (size_t r = 0; r < mm->n; r++) memcpy(dev + r * pitch, raw + r * row, row);
    int st = make_buffer(mm, mm->n * pitch + 16, dev, &mm->raw, "raw weights");
    if (!st) mm->raw_bytes = bytes + mm->scale_bytes;
    free(dev);
    return st;
}

/* W's elements decoded on the host and checked against its checksum, the
 * way ecf8_file_read_tensor checks them.  *raw points at the stored payload
 * or at a decoded copy, which *owned holds for the caller to free. */
static int verify_weight(const ecf8_tensor_info *w, const uint8_t **raw, uint8_t **owned)
{
    size_t bytes = (size_t)w->n_elements * ecf8_dtype_size(w->dtype);
    *raw = NULL;
    *owned = NULL;
    if (w->split == ECF8_SPLIT_STORED) { /* checked in place, no copy */
        if (ecf8_hash64(w->payload, bytes) != w->checksum)
            return ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", tensor_name(w));
        *raw = w->payload;
        return ECF8_OK;
    }
    uint8_t *buf = malloc(bytes);
    if (!buf) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for %zu decoded weight bytes", bytes);
    int st = ecf8_tensor_decode_checked(w, buf, bytes, 0);
    if (st) {
        free(buf);
        return st;
    }
    *raw = *owned = buf;
    return ECF8_OK;
}

static int get_variant(ecf8_cl_matmul *mm, ecf8_cl_engine engine, int xbf16, mm_variant **out);
static int get_kernel(mm_variant *v, int which, cl_kernel *out);
static int enqueue_lane_decode(const ecf8_cl_matmul *mm, cl_kernel dk, cl_command_queue queue,
                               cl_mem raw, cl_uint num_wait_events, const cl_event *wait_events,
                               cl_event *event);

/* W's content through the lane-order program itself, for a fused-only
 * lane-order object: its uploaded stream decoded by ecf8_mm_ldecode into
 * scratch, read back and hashed.  So W is uploaded once, and no decode
 * program is built for the check. */
static int verify_lane_streams(ecf8_cl_matmul *mm, cl_command_queue queue,
                               const ecf8_tensor_info *w)
{
    mm_variant *v = NULL;
    cl_kernel dk = NULL;
    int st = get_variant(mm, ECF8_CL_ENGINE_FUSED, 0, &v);
    if (!st) st = get_kernel(v, MM_LDECODE, &dk);
    if (st) return st;
    size_t bytes = (size_t)mm->n * mm->k * ecf8_dtype_size(mm->dtype);
    uint8_t *host = malloc(bytes);
    if (!host) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for %zu decoded weight bytes", bytes);
    cl_int err;
    cl_mem scratch = clCreateBuffer(mm->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(matmul check)");
    if (!st) st = enqueue_lane_decode(mm, dk, queue, scratch, 0, NULL, NULL);
    if (!st && (err = clEnqueueReadBuffer(queue, scratch, CL_TRUE, 0, bytes, host, 0, NULL,
                                          NULL)) != CL_SUCCESS)
        st = ecf8_cl_fail(err, "clEnqueueReadBuffer(matmul check)");
    if (!st && ecf8_hash64(host, bytes) != w->checksum)
        st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", tensor_name(w));
    if (scratch) clReleaseMemObject(scratch);
    free(host);
    return st;
}

/* W decoded on the device into scratch, read back and checked against its
 * checksum (ecf8_cl_tensor_verify): the content check of a W whose raw
 * elements are not needed, at device decode speed and without a host
 * decode.  *keep (if not NULL) receives the device tensor. */
static int verify_on_device(const ecf8_cl_matmul *mm, cl_command_queue queue,
                            const ecf8_tensor_info *w, ecf8_cl_tensor **keep)
{
    ecf8_cl_tensor *t = NULL;
    int st = ecf8_cl_tensor_create_ex(mm->context, mm->device, queue, w, &mm->tuning, &t);
    if (!st) st = ecf8_cl_tensor_verify(t, queue);
    if (!st && keep) *keep = t, t = NULL;
    ecf8_cl_tensor_free(t);
    return st;
}

int ecf8_cl_matmul_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *weight, const ecf8_tensor_info *scale_inv,
                          unsigned engines, ecf8_cl_matmul **out)
{
    return ecf8_cl_matmul_create_ex(context, device, queue, weight, scale_inv, engines, NULL, out);
}

int ecf8_cl_matmul_create_ex(cl_context context, cl_device_id device, cl_command_queue queue,
                             const ecf8_tensor_info *weight, const ecf8_tensor_info *scale_inv,
                             unsigned engines, const ecf8_cl_tuning *tuning, ecf8_cl_matmul **out)
{
    /* Uploads go through host pointers at creation; `queue` runs the
     * device-side content check of a W only the fused engine reads. */
    if (!context || !device || !weight || !out)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul create: NULL argument");
    *out = NULL;
    ecf8_cl_tuning tuned;
    int tst = ecf8_cl_tuning_read(tuning, &tuned);
    if (tst) return tst;
    const unsigned all = ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED) |
                         ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_UNCOMPRESSED);
    if (engines == 0) engines = all;
    if (engines & ~all) return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul create: unknown engine mask 0x%x", engines);
    scale_plan sp = {0};
    int st = validate_weight(weight);
    if (!st) st = plan_scale(weight, scale_inv, &sp);
    if (!st) st = load_scale(weight, scale_inv, &sp);
    const uint8_t *raw = NULL;
    uint8_t *raw_owned = NULL;
    if (st) {
        free(sp.grid);
        return st;
    }

    ecf8_cl_matmul *mm = calloc(1, sizeof *mm);
    if (!mm) {
        free(raw_owned);
        free(sp.grid);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    mm->context = context;
    mm->device = device;
    mm->tuning = tuned;
    clRetainContext(context);
    mm->dtype = weight->dtype;
    mm->split = weight->split;
    mm->engines = engines;
    mm->n = (uint32_t)weight->shape[0];
    mm->k = (uint32_t)weight->shape[1];
    mm->nkb = (mm->k + MM_BLOCK - 1) / MM_BLOCK;
    mm->srs = sp.srs, mm->sk = sp.sk;
    mm->sstride = (uint32_t)sp.grid_cols;
    if (weight->split == ECF8_SPLIT_STORED) {
        mm->cr = 1, mm->cc = mm->k, mm->segs = 1;
    } else {
        const ecf8_stream *s = &weight->stream;
        mm->code_bits = s->code_bits;
        mm->cr = (uint32_t)s->chunk_rows;
        mm->cc = (uint32_t)s->chunk_cols;
        mm->segs = (uint32_t)((s->cols + s->chunk_cols - 1) / s->chunk_cols);
        st = ecf8_split_layout_get(s->dtype, s->split, &mm->layout);
    }
    if (!st) st = ecf8_cl_device_caps_get(device, &mm->caps);
    if (!st && weight->split != ECF8_SPLIT_STORED &&
        weight->stream.stream_layout == ECF8_STREAM_LAYOUT_LANES) {
        /* The lane-stream kernels are CPU-shaped (vector gathers, unaligned
         * 64-bit loads) and walk whole 32-lane steps: 128 columns of a row
         * per step (FP8; two steps for BF16). */
        int whole = mm->k % MM_BLOCK == 0 && (mm->segs == 1 || mm->cc % MM_BLOCK == 0);
        int gpu_shape = !mm->caps.is_cpu || mm->tuning.matmul_lanes == 1;
        mm->streams = !gpu_shape && whole;
        mm->lane_order = gpu_shape && whole;
        mm->fused_raw = !mm->streams && !mm->lane_order;
    }
    if (!st && sp.grid) {
        mm->scale_bytes = sp.grid_rows * sp.grid_cols * sizeof(float);
        st = make_buffer(mm, (size_t)mm->scale_bytes, sp.grid, &mm->scale, "scales");
    } else if (!st && scale_inv) {
        mm->scale_bytes = scale_inv->payload_bytes;
        st = make_buffer(mm, (size_t)scale_inv->payload_bytes, scale_inv->payload, &mm->scale, "scales");
    } else if (!st) {
        float one = 1.0f; /* BF16: never read, but the argument needs a buffer */
        st = make_buffer(mm, sizeof one, &one, &mm->scale, "scales");
    }
    /* A stored W has no stream: the fused engine reads the raw buffer.  A
     * layout-1 W the lane-stream kernels do not take stays coded on the
     * device (decoded per call into scratch) unless the uncompressed engine
     * uploads its raw elements anyway or there is no queue to check it on. */
    const bool fused = (engines & ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED)) != 0;
    const bool uncompressed = (engines & ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_UNCOMPRESSED)) != 0;
    const bool decode_per_call = mm->fused_raw && fused && !uncompressed && queue;
    int need_raw = uncompressed || weight->split == ECF8_SPLIT_STORED ||
                   (mm->fused_raw && fused && !decode_per_call);
    /* W's content against its checksum: decoded on the host where the raw
     * elements are uploaded anyway, else on the device (no host decode). */
    /* A fused-only lane-order W is checked after its one upload. */
    const bool check_lanes = mm->lane_order && !need_raw && queue;
    if (!st && (need_raw || !queue)) st = verify_weight(weight, &raw, &raw_owned);
    else if (!st && !check_lanes)
        st = verify_on_device(mm, queue, weight, decode_per_call ? &mm->wdec : NULL);
    if (!st && need_raw) st = upload_raw(mm, raw);
    if (!st && fused) {
        if (weight->split == ECF8_SPLIT_STORED || mm->fused_raw)
            mm->fused_bytes = (uint64_t)mm->n * mm->k * ecf8_dtype_size(mm->dtype) + mm->scale_bytes;
        else
            st = upload_fused(mm, weight);
    }
    if (!st && check_lanes) st = verify_lane_streams(mm, queue, weight);
    /* Per call: the decode reads the coded tensor and writes the scratch
     * the raw kernel reads. */
    if (!st && mm->wdec) mm->fused_bytes += ecf8_cl_tensor_device_bytes(mm->wdec) +
                                             (uint64_t)mm->n * mm->k * ecf8_dtype_size(mm->dtype);
    free(raw_owned);
    free(sp.grid);
    if (st) {
        ecf8_cl_matmul_free(mm);
        return st;
    }
    *out = mm;
    return ECF8_OK;
}

static void variant_release(mm_variant *v)
{
    for (int i = 0; i < MM_N_KERNELS; i++)
        if (v->kernels[i]) clReleaseKernel(v->kernels[i]);
    if (v->prog) clReleaseProgram(v->prog);
    memset(v, 0, sizeof *v);
}

void ecf8_cl_matmul_free(ecf8_cl_matmul *mm)
{
    if (!mm) return;
    for (int e = 0; e < 2; e++)
        for (int b = 0; b < 2; b++) variant_release(&mm->variants[e][b]);
    cl_mem bufs[] = {mm->coded, mm->offsets, mm->table, mm->scale, mm->raw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) clReleaseMemObject(bufs[i]);
    ecf8_cl_tensor_free(mm->wdec);
    if (mm->context) clReleaseContext(mm->context);
    free(mm);
}

int ecf8_cl_matmul_get_info(const ecf8_cl_matmul *mm, ecf8_cl_matmul_info *info)
{
    if (!mm || !info) return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul info: NULL argument");
    memset(info, 0, sizeof *info);
    info->n = mm->n, info->k = mm->k;
    info->dtype = mm->dtype;
    info->split = mm->split;
    info->fused_bytes = mm->fused_bytes;
    info->uncompressed_bytes = mm->raw ? mm->raw_bytes : 0;
    const mm_variant *v = &mm->variants[ECF8_CL_ENGINE_FUSED][0];
    if (!v->built) v = &mm->variants[ECF8_CL_ENGINE_UNCOMPRESSED][0];
    info->lanes = v->lanes;
    info->interleave = v->interleave;
    return ECF8_OK;
}

ecf8_cl_reduction ecf8_cl_matmul_reduction(const ecf8_cl_matmul *mm)
{
    return mm && mm->lane_order ? ECF8_CL_REDUCTION_LANES : ECF8_CL_REDUCTION_SERIAL;
}

/* sm_90 SASS instructions per 32-bit word of W in the inner loops of the
 * lane-order kernels (bench/gpu_loops.sh: clang-15 + libclc -> ptxas ->
 * nvdisasm; docs/BENCHMARKS.md "lane order"): the fused GEMV (m = 1) and
 * GEMM (per pass of 4 rows of X), the uncompressed GEMV and GEMM on raw
 * weights, and the decode to a buffer; FP8 rows are the worst code-length
 * class and the mean of E4M3 and E5M2. */
static const struct lane_costs {
    unsigned fused1, fused4, raw1, raw4, decode;
} lane_costs_fp8_raw_plane = {135, 168, 68, 112, 78}, /* exponent splits */
  lane_costs_fp8_byte = {63, 104, 68, 112, 54},
  lane_costs_bf16_exponent = {48, 76, 14, 39, 43},
  lane_costs_bf16_byte = {44, 72, 14, 39, 37};

ecf8_cl_matmul_path ecf8_cl_matmul_predict(const ecf8_cl_matmul *mm, size_t m)
{
    if (!mm || !mm->lane_order || mm->split == ECF8_SPLIT_STORED || m == 0)
        return ECF8_CL_PATH_FUSED;
    const struct lane_costs *c =
        mm->dtype == ECF8_DTYPE_BF16
            ? (mm->split == ECF8_SPLIT_BYTE ? &lane_costs_bf16_byte : &lane_costs_bf16_exponent)
            : (mm->layout.raw_bits ? &lane_costs_fp8_raw_plane : &lane_costs_fp8_byte);
    uint64_t passes = m == 1 ? 1 : (m + MM_LANE_ROWS - 1) / MM_LANE_ROWS;
    uint64_t fused = m == 1 ? c->fused1 : passes * c->fused4;
    uint64_t decode = c->decode + (m == 1 ? c->raw1 : passes * c->raw4);
    return decode < fused ? ECF8_CL_PATH_DECODE_GEMM : ECF8_CL_PATH_FUSED;
}

/* ---- programs ----------------------------------------------------------------------- */
/* Whether `engine` decodes (the fused engine on a coded W). */
static int engine_decodes(const ecf8_cl_matmul *mm, ecf8_cl_engine engine)
{
    return engine == ECF8_CL_ENGINE_FUSED && mm->split != ECF8_SPLIT_STORED && !mm->fused_raw;
}

void ecf8_cl_matmul_program_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                    unsigned code_bits, int fused, int xbf16, unsigned scale_k,
                                    const ecf8_cl_tuning *tuning, char *opts, size_t size)
{
    static const ecf8_cl_tuning untuned = {.struct_size = sizeof untuned};
    if (!tuning) tuning = &untuned;
    char base[320];
    /* The code length is a kernel argument; only the number of elements one
     * 32-bit load serves (>= 25 valid bits) is compiled in. */
    unsigned elem_bits = code_bits + (layout ? layout->raw_bits : 0);
    unsigned grp = elem_bits <= 6 ? 4 : elem_bits <= 12 ? 2 : 1;
    if (fused && layout)
        snprintf(base, sizeof base,
                 "-cl-std=CL1.2 -DECF8_MM_WDT=%d -DECF8_MM_FUSED=1 -DECF8_MM_GRP=%u "
                 "-DECF8_MM_RAW_BITS=%u -DECF8_MM_SYM_SHIFT=%u -DECF8_MM_SYM_BITS=%u "
                 "-DECF8_MM_XBF16=%d",
                 (int)dtype, grp, layout->raw_bits, layout->symbol_shift, layout->symbol_bits,
                 xbf16);
    else
        snprintf(base, sizeof base,
                 "-cl-std=CL1.2 -DECF8_MM_WDT=%d -DECF8_MM_FUSED=0 -DECF8_MM_XBF16=%d", (int)dtype,
                 xbf16);
    /* Tunables (ecf8_cl_tuning), out-of-range values ignored: matmul_lanes
     * 1 forces the portable one-lane path (tests, GPUs' code on a CPU),
     * matmul_interleave the interleaved lane groups, matmul_rows the rows
     * of X per GEMM pass, matmul_prefetch the prefetch distance in bytes. */
    int one_lane = tuning->matmul_lanes == 1;
    unsigned il = tuning->matmul_interleave <= 16 ? tuning->matmul_interleave : 0;
    unsigned mb = tuning->matmul_rows <= 32 ? tuning->matmul_rows : 0;
    unsigned ahead = tuning->matmul_prefetch <= 4096 ? tuning->matmul_prefetch : 0;
    char extra[96] = "";
    if (il) snprintf(extra, sizeof extra, " -DECF8_MM_IL=%u", il);
    if (mb) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " -DECF8_MM_MB=%u", mb);
    if (ahead)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " -DECF8_MM_PREFETCH=%u", ahead);
    /* Scale blocks of 32 columns (FP8 only; 128, the default, adds nothing,
     * so the 128x128 programs are the ones of 1.x). */
    const char *sk = scale_k == 32 && dtype != ECF8_DTYPE_BF16 ? " -DECF8_MM_SK=32" : "";
    snprintf(opts, size, "%s%s%s%s", base, one_lane ? " -DECF8_MM_LANES=1" : "", sk, extra);
}

void ecf8_cl_matmul_streams_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                    unsigned code_bits, int xbf16, unsigned scale_k,
                                    const ecf8_cl_tuning *tuning, char *opts, size_t size)
{
    /* Code length 0 for the base options: their ECF8_MM_GRP is the layout-0
     * reader's, unused here, so one program serves every code length but
     * the longest. */
    ecf8_cl_matmul_program_options(dtype, layout, 0, 1, xbf16, scale_k, tuning, opts, size);
    /* A 64-bit load holds >= 57 valid bits: four FP8 codes of 15 bits need
     * a second one. */
    int reload = ecf8_dtype_size(dtype) == 1 && 4 * code_bits > 57;
    size_t used = strlen(opts);
    snprintf(opts + used, size - used, " -DECF8_MM_STREAMS=1 -DECF8_MM_SRELOAD=%d", reload);
}

void ecf8_cl_matmul_lane_order_options(ecf8_dtype dtype, const ecf8_split_layout *layout,
                                       unsigned code_bits, int fused, int xbf16, unsigned scale_k,
                                       const ecf8_cl_tuning *tuning, char *opts, size_t size)
{
    ecf8_cl_matmul_program_options(dtype, layout, code_bits, fused, xbf16, scale_k, tuning, opts,
                                   size);
    /* The code length sets how many codes one 32-bit window of a lane's
     * reader serves, as far as a word's 4 or 2 codes need (one program per
     * class, not per length). */
    size_t used = strlen(opts);
    unsigned per_word = 4 / ecf8_dtype_size(dtype), spw = 32 / (code_bits ? code_bits : 1);
    snprintf(opts + used, size - used, " -DECF8_MM_LORDER=1 -DECF8_MM_LG=%d", MM_LANE_GROUP);
    used = strlen(opts);
    if (fused)
        snprintf(opts + used, size - used, " -DECF8_MM_LSPW=%u", spw < per_word ? spw : per_word);
}

static int build_variant(ecf8_cl_matmul *mm, ecf8_cl_engine engine, int xbf16, mm_variant *v)
{
    char opts[400];
    if (mm->lane_order)
        ecf8_cl_matmul_lane_order_options(mm->dtype, &mm->layout, mm->code_bits,
                                          engine_decodes(mm, engine), xbf16, mm->sk, &mm->tuning,
                                          opts, sizeof opts);
    else if (engine_decodes(mm, engine) && mm->streams)
        ecf8_cl_matmul_streams_options(mm->dtype, &mm->layout, mm->code_bits, xbf16, mm->sk,
                                       &mm->tuning, opts, sizeof opts);
    else
        ecf8_cl_matmul_program_options(mm->dtype, &mm->layout, mm->code_bits,
                                       engine_decodes(mm, engine), xbf16, mm->sk, &mm->tuning,
                                       opts, sizeof opts);
    int st = ecf8_cl_program_get(mm->context, mm->device, "matmul", opts, &v->prog);
    cl_int err = CL_SUCCESS;
    cl_kernel probe = NULL;
    if (!st) {
        probe = clCreateKernel(v->prog, "ecf8_mm_probe", &err);
        if (err) st = ecf8_cl_fail(err, "clCreateKernel(ecf8_mm_probe)");
    }
    size_t wg[3] = {0, 0, 0};
    if (!st) {
        err = clGetKernelWorkGroupInfo(probe, mm->device, CL_KERNEL_COMPILE_WORK_GROUP_SIZE,
                                       sizeof wg, wg, NULL);
        if (err) st = ecf8_cl_fail(err, "clGetKernelWorkGroupInfo(ecf8_mm_probe)");
        else if (wg[0] != 1 && wg[0] != 8 && wg[0] != 16)
            st = ecf8_fail(ECF8_ERR_BUILD, "matmul kernels report %zu lanes", wg[0]);
    }
    if (probe) clReleaseKernel(probe);
    if (st) {
        variant_release(v);
        return st;
    }
    v->lanes = (unsigned)wg[0];
    v->interleave = (unsigned)(wg[1] ? wg[1] : 1);
    v->built = 1;
    return ECF8_OK;
}

/* Kernel `which` of a variant, created once. */
static int get_kernel(mm_variant *v, int which, cl_kernel *out)
{
    if (!v->kernels[which]) {
        cl_int err;
        v->kernels[which] = clCreateKernel(v->prog, kernel_names[which], &err);
        if (err) {
            v->kernels[which] = NULL;
            char call[80];
            snprintf(call, sizeof call, "clCreateKernel(%s)", kernel_names[which]);
            return ecf8_cl_fail(err, call);
        }
    }
    *out = v->kernels[which];
    return ECF8_OK;
}

static int get_variant(ecf8_cl_matmul *mm, ecf8_cl_engine engine, int xbf16, mm_variant **out)
{
    mm_variant *v = &mm->variants[engine][xbf16];
    if (!v->built) {
        int st = build_variant(mm, engine, xbf16, v);
        if (st) return st;
    }
    *out = v;
    return ECF8_OK;
}

/* ---- enqueue ------------------------------------------------------------------------ */
static int buffer_size(cl_mem b, size_t *size, const char *what)
{
    cl_int err = clGetMemObjectInfo(b, CL_MEM_SIZE, sizeof *size, size, NULL);
    if (err != CL_SUCCESS) {
        char call[64];
        snprintf(call, sizeof call, "clGetMemObjectInfo(%s)", what);
        return ecf8_cl_fail(err, call);
    }
    return ECF8_OK;
}

/* Checks that [offset, offset + bytes) lies in buffer b. */
static int check_range(cl_mem b, size_t offset, uint64_t bytes, size_t align, const char *what)
{
    if (offset % align)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: %s offset %zu is not a multiple of %zu", what,
                         offset, align);
    size_t size;
    int st = buffer_size(b, &size, what);
    if (st) return st;
    if (offset > size || bytes > size - offset)
        return ecf8_fail(ECF8_ERR_SHAPE, "matmul: %s needs %llu bytes from offset %zu, buffer has %zu",
                         what, (unsigned long long)bytes, offset, size);
    return ECF8_OK;
}

typedef struct launch_args {
    cl_mem w;
    cl_mem x, y;
    cl_ulong x_off, y_off;
    cl_uint m, bands;
    cl_uint raw_stride; /* elements from one raw row of w to the next */
} launch_args;

static int set_args(const ecf8_cl_matmul *mm, cl_kernel k, const launch_args *a)
{
    cl_mem none = mm->scale; /* any buffer: raw kernels ignore offsets and table */
    cl_mem offs = mm->offsets ? mm->offsets : none, table = mm->table ? mm->table : none;
    cl_int err = CL_SUCCESS;
    cl_uint i = 0;
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &a->w);
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &offs);
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &table);
    cl_uint tmask = (1u << mm->code_bits) - 1u;
    err |= clSetKernelArg(k, i++, sizeof tmask, &tmask);
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &mm->scale);
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &a->x);
    err |= clSetKernelArg(k, i++, sizeof(cl_ulong), &a->x_off);
    err |= clSetKernelArg(k, i++, sizeof(cl_mem), &a->y);
    err |= clSetKernelArg(k, i++, sizeof(cl_ulong), &a->y_off);
    const cl_uint dims[] = {a->m,    mm->n,   mm->k,    mm->cr,         mm->cc,
                            mm->segs, mm->nkb, a->bands, a->raw_stride, mm->srs};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        err |= clSetKernelArg(k, i++, sizeof(cl_uint), &dims[d]);
    if (err != CL_SUCCESS) return ecf8_cl_fail(CL_INVALID_KERNEL_ARGS, "clSetKernelArg(matmul)");
    return ECF8_OK;
}

/* W's bands: CR whole rows each (or one row in SEGS segments). */
static uint32_t mm_bands(const ecf8_cl_matmul *mm) { return (mm->n + mm->cr - 1) / mm->cr; }

/* The fused engine's path for m rows: the tuning's, else the prediction. */
static ecf8_cl_matmul_path lane_path(const ecf8_cl_matmul *mm, size_t m)
{
    if (mm->tuning.matmul_path == ECF8_CL_PATH_FUSED ||
        mm->tuning.matmul_path == ECF8_CL_PATH_DECODE_GEMM)
        return (ecf8_cl_matmul_path)mm->tuning.matmul_path;
    return ecf8_cl_matmul_predict(mm, m);
}

/* The lane-order kernels' launch: 32 lanes x MM_LANE_GROUP bands per
 * work-group, the bands rounded up to whole groups. */
static void lane_shape(const ecf8_cl_matmul *mm, size_t *global, size_t *local)
{
    size_t bands = mm_bands(mm);
    local[0] = 32, local[1] = MM_LANE_GROUP;
    global[0] = 32, global[1] = (bands + MM_LANE_GROUP - 1) / MM_LANE_GROUP * MM_LANE_GROUP;
}

/* ecf8_mm_ldecode (kernel dk) of W into raw. */
static int enqueue_lane_decode(const ecf8_cl_matmul *mm, cl_kernel dk, cl_command_queue queue,
                               cl_mem raw, cl_uint num_wait_events, const cl_event *wait_events,
                               cl_event *event)
{
    size_t global[2], local[2];
    lane_shape(mm, global, local);
    cl_uint tmask = (1u << mm->code_bits) - 1u, bands = mm_bands(mm);
    const cl_uint dims[] = {mm->n, mm->k, mm->cr, mm->cc, mm->segs, bands};
    cl_uint i = 0;
    cl_int err = clSetKernelArg(dk, i++, sizeof(cl_mem), &mm->coded);
    err |= clSetKernelArg(dk, i++, sizeof(cl_mem), &mm->offsets);
    err |= clSetKernelArg(dk, i++, sizeof(cl_mem), &mm->table);
    err |= clSetKernelArg(dk, i++, sizeof tmask, &tmask);
    err |= clSetKernelArg(dk, i++, sizeof(cl_mem), &raw);
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        err |= clSetKernelArg(dk, i++, sizeof(cl_uint), &dims[d]);
    if (err != CL_SUCCESS) return ecf8_cl_fail(CL_INVALID_KERNEL_ARGS, "clSetKernelArg(matmul decode)");
    err = clEnqueueNDRangeKernel(queue, dk, 2, NULL, global, local, num_wait_events, wait_events,
                                 event);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clEnqueueNDRangeKernel(matmul decode)");
    return ECF8_OK;
}

int ecf8_cl_enqueue_matmul(ecf8_cl_matmul *mm, ecf8_cl_engine engine, cl_command_queue queue,
                           size_t m, cl_mem x, size_t x_offset, unsigned x_flags, cl_mem y,
                           size_t y_offset, cl_uint num_wait_events, const cl_event *wait_events,
                           cl_event *out_event)
{
    if (!mm || !queue || !x || !y)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: NULL argument");
    if (engine != ECF8_CL_ENGINE_FUSED && engine != ECF8_CL_ENGINE_UNCOMPRESSED)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: unknown engine %d", (int)engine);
    if (!(mm->engines & ECF8_CL_ENGINE_BIT(engine)))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: the %s engine was not prepared at create",
                         engine == ECF8_CL_ENGINE_FUSED ? "fused" : "uncompressed");
    if (x_flags & ~ECF8_CL_INPUT_BF16)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: unknown input flags 0x%x", x_flags);
    if ((num_wait_events == 0) != (wait_events == NULL))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "matmul: wait list and its count disagree");
    if (m == 0) return ecf8_fail(ECF8_ERR_SHAPE, "matmul: batch of 0 rows");
    int xbf16 = (x_flags & ECF8_CL_INPUT_BF16) != 0;
    size_t xes = xbf16 ? 2 : 4;
    if (m >= MM_LIMIT || (uint64_t)m * mm->k >= MM_LIMIT || (uint64_t)m * mm->n >= MM_LIMIT)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED,
                         "matmul: batch of %zu rows is too large for 32-bit indexing; split it", m);
    int st = check_range(x, x_offset, (uint64_t)m * mm->k * xes, xes, "input X");
    if (!st) st = check_range(y, y_offset, (uint64_t)m * mm->n * 4, 4, "output Y");
    mm_variant *v = NULL;
    if (!st) st = get_variant(mm, engine, xbf16, &v);
    if (st) return st;

    int which = m <= MM_MAX_GEMV_M ? MM_GEMV1 + (int)m - 1 : MM_GEMM;
    if (engine_decodes(mm, engine) && mm->streams)
        which = m <= MM_MAX_GEMV_M ? MM_SGEMV1 + (int)m - 1 : MM_SGEMM;
    if (mm->lane_order) which = m == 1 ? MM_LGEMV : MM_LGEMM;
    launch_args a = {engine_decodes(mm, engine) ? mm->coded : mm->raw, x, y, x_offset / xes,
                     y_offset / 4, (cl_uint)m, mm_bands(mm), mm->raw_stride};
    /* A work-item takes lanes * interleave bands (CR whole rows each, or
     * one row in SEGS segments); the kernel clamps the lanes past the last
     * band.  Work-groups of one item on CPUs (PoCL runs each on a thread),
     * 64 elsewhere; fixed local sizes compile one kernel per shape. */
    size_t per_item = (size_t)v->lanes * v->interleave;
    size_t local[2] = {v->lanes > 1 || mm->caps.is_cpu ? 1 : 64, 1};
    size_t global[2] = {(a.bands + per_item - 1) / per_item, 1};
    global[0] = (global[0] + local[0] - 1) / local[0] * local[0];
    cl_uint dims = 1;
    if (mm->lane_order) {
        lane_shape(mm, global, local);
        dims = 2;
    }
    /* The lane order's decode path runs the raw twin: its kernel, not the
     * fused one, is the one to launch. */
    const bool lane_decode = engine == ECF8_CL_ENGINE_FUSED && mm->lane_order &&
                             mm->split != ECF8_SPLIT_STORED &&
                             lane_path(mm, m) == ECF8_CL_PATH_DECODE_GEMM;
    mm_variant *kv = v;
    if (lane_decode) st = get_variant(mm, ECF8_CL_ENGINE_UNCOMPRESSED, xbf16, &kv);
    cl_kernel k = NULL;
    if (!st) st = get_kernel(kv, which, &k);
    if (st) return st;
    /* W kept coded (fused_raw without raw weights): decoded into a scratch
     * buffer of this call, rows contiguous (+16: the raw kernel's 32-bit
     * loads read up to 3 bytes past the last row), which the raw kernel
     * then reads; the scratch is released here and freed by OpenCL once
     * both commands are done. */
    cl_mem scratch = NULL;
    cl_event decoded = NULL;
    cl_int err = CL_SUCCESS;
    if (lane_decode) {
        /* Decode into scratch with the fused program's ecf8_mm_ldecode, then
         * the raw twin over it (the same contract, so the same Y). */
        cl_kernel dk = NULL;
        st = get_kernel(v, MM_LDECODE, &dk);
        if (st) return st;
        size_t bytes = (size_t)mm->n * mm->k * ecf8_dtype_size(mm->dtype);
        scratch = clCreateBuffer(mm->context, CL_MEM_READ_WRITE, bytes + 16, NULL, &err);
        if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateBuffer(matmul scratch)");
        st = enqueue_lane_decode(mm, dk, queue, scratch, num_wait_events, wait_events, &decoded);
        a.w = scratch, a.raw_stride = mm->k;
        num_wait_events = decoded ? 1 : 0, wait_events = decoded ? &decoded : NULL;
    } else if (engine == ECF8_CL_ENGINE_FUSED && mm->wdec) {
        size_t bytes = ecf8_cl_tensor_decoded_bytes(mm->wdec);
        scratch = clCreateBuffer(mm->context, CL_MEM_READ_WRITE, bytes + 16, NULL, &err);
        if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateBuffer(matmul scratch)");
        st = ecf8_cl_enqueue_decode(mm->wdec, queue, scratch, 0, num_wait_events, wait_events, &decoded);
        a.w = scratch, a.raw_stride = mm->k;
        num_wait_events = decoded ? 1 : 0, wait_events = decoded ? &decoded : NULL;
    }
    if (!st) st = set_args(mm, k, &a);
    if (!st && (err = clEnqueueNDRangeKernel(queue, k, dims, NULL, global, local, num_wait_events,
                                            wait_events, out_event)) != CL_SUCCESS)
        st = ecf8_cl_fail(err, "clEnqueueNDRangeKernel(matmul)");
    if (decoded) clReleaseEvent(decoded);
    if (scratch) clReleaseMemObject(scratch);
    return st;
}

int ecf8_cl_enqueue_dequantize(ecf8_cl_matmul *mm, cl_command_queue queue, cl_mem raw,
                               size_t raw_offset, cl_mem out, size_t out_offset,
                               cl_uint num_wait_events, const cl_event *wait_events,
                               cl_event *out_event)
{
    if (!mm || !queue || !raw || !out)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "dequantize: NULL argument");
    if ((num_wait_events == 0) != (wait_events == NULL))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "dequantize: wait list and its count disagree");
    uint64_t es = ecf8_dtype_size(mm->dtype), count = (uint64_t)mm->n * mm->k;
    int st = check_range(raw, raw_offset, count * es, 1, "raw weights");
    if (!st) st = check_range(out, out_offset, count * 4, 4, "fp32 weights");
    if (!st && raw_offset)
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "dequantize: raw offset must be 0 (use a sub-buffer)");
    mm_variant *v = NULL;
    cl_kernel k = NULL;
    if (!st) st = get_variant(mm, ECF8_CL_ENGINE_UNCOMPRESSED, 0, &v);
    if (!st) st = get_kernel(v, MM_DEQUANT, &k);
    if (st) return st;
    cl_ulong off = out_offset / 4;
    cl_uint n = mm->n, kk = mm->k, nkb = mm->sstride, srs = mm->srs;
    cl_int err = clSetKernelArg(k, 0, sizeof(cl_mem), &raw);
    err |= clSetKernelArg(k, 1, sizeof(cl_mem), &mm->scale);
    err |= clSetKernelArg(k, 2, sizeof(cl_mem), &out);
    err |= clSetKernelArg(k, 3, sizeof off, &off);
    err |= clSetKernelArg(k, 4, sizeof n, &n);
    err |= clSetKernelArg(k, 5, sizeof kk, &kk);
    err |= clSetKernelArg(k, 6, sizeof nkb, &nkb);
    err |= clSetKernelArg(k, 7, sizeof srs, &srs);
    if (err) return ecf8_cl_fail(CL_INVALID_KERNEL_ARGS, "clSetKernelArg(dequantize)");
    size_t global[2] = {(mm->k + 15) / 16, mm->n};
    err = clEnqueueNDRangeKernel(queue, k, 2, NULL, global, NULL, num_wait_events, wait_events,
                                 out_event);
    if (err) return ecf8_cl_fail(err, "clEnqueueNDRangeKernel(dequantize)");
    return ECF8_OK;
}
