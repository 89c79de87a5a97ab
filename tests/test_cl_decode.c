/* test_cl_decode.c - OpenCL decode against the CPU decoder and the original
 * bytes: every dtype and split, every kernel (the CPU pairs and lanes
 * kernels, the portable one, the cooperative GPU one), edge cases (all 256
 * FP8 codes, NaN/Inf/+-0/subnormals, one element, odd lengths, one-symbol
 * code_bits 0 tensors, chunk counts that do not fill a work-group,
 * misaligned output offsets), many small tensors in one container, the
 * real slices in tests/data, corrupt tensors (a clear error and no write
 * outside the output range), events and wait lists, the program caches
 * and device choice.  Skips when no OpenCL device exists. */
#include "testutil.h"

#include "ecf8_cl.h"
#include "internal.h"
#include "opencl/runtime.h"
#include "stream_decode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "testutil_cl.h"


/* The kernels: "" (automatic: on CPUs the pairs kernel for FP8 tensors of
 * few chunks, the lanes kernel for the others), the pairs kernel forced
 * onto every FP8 stream it decodes, portable, and the cooperative GPU
 * kernel forced onto this device. */
static const char *const KERNELS[] = {"", "pairs", "portable", "coop"};

/* The tuning the tensors under test are created with (kernel and lane
 * shape forced through ecf8_cl_tensor_create_ex). */
static ecf8_cl_tuning g_tuning = {.struct_size = sizeof g_tuning};

static void use_kernel(const char *which)
{
    g_tuning.decode_kernel = which[0] ? which : NULL;
}

/* ---- data -------------------------------------------------------------------- */
static double gauss(uint64_t *s)
{
    double u1 = ((double)(tu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(tu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int e = (int)((u >> 23) & 0xFF) - 127 + 15;
    if (e <= 0) return (uint16_t)(sign | ((u >> 13) & 0x3FF) >> (1 - e)); /* subnormal */
    if (e >= 31) return (uint16_t)(sign | 0x7BFF);
    return (uint16_t)(sign | (uint32_t)e << 10 | ((u >> 13) & 0x3FF));
}

/* Trained-weight-like data of any coded dtype, with a sprinkling of
 * specials (NaN, Inf, +-0, subnormals) when `specials` is set. */
static uint8_t *make_weights(ecf8_dtype d, size_t n, uint64_t seed, bool specials)
{
    unsigned w = ecf8_dtype_size(d);
    uint8_t *p = malloc(n * w + 1);
    uint64_t s = seed * 2654435761u + 1;
    assert_non_null(p);
    if (d == ECF8_DTYPE_F8_E4M3) {
        tu_fill_weights_e4m3(p, n, seed);
    } else if (d == ECF8_DTYPE_F8_E5M2) {
        for (size_t i = 0; i < n; i++) {
            double g = gauss(&s) * 0.05;
            int e = (int)floor(log2(fabs(g) + 1e-30)) + 15;
            if (e < 0) e = 0;
            if (e > 30) e = 30;
            p[i] = (uint8_t)((g < 0) << 7 | e << 2 | (tu_rand(&s) & 3));
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float f = (float)(gauss(&s) * 0.02);
            uint16_t v = d == ECF8_DTYPE_BF16 ? to_bf16(f) : to_f16(f);
            p[2 * i] = (uint8_t)v, p[2 * i + 1] = (uint8_t)(v >> 8);
        }
    }
    if (specials && n > 16) {
        static const uint8_t f8[] = {0x00, 0x80, 0x7F, 0xFF, 0x7C, 0xFC, 0x01, 0x81, 0x07, 0x03};
        static const uint16_t bf[] = {0x0000, 0x8000, 0x7FC0, 0xFFC0, 0x7F80, 0xFF80, 0x0001, 0x8001, 0x007F};
        static const uint16_t hf[] = {0x0000, 0x8000, 0x7E00, 0xFE00, 0x7C00, 0xFC00, 0x0001, 0x8001, 0x03FF};
        for (size_t k = 0; k < n / 16; k++) {
            size_t i = tu_rand(&s) % n;
            if (w == 1) {
                p[i] = f8[k % sizeof f8];
            } else {
                uint16_t v = d == ECF8_DTYPE_BF16 ? bf[k % 9] : hf[k % 9];
                p[2 * i] = (uint8_t)v, p[2 * i + 1] = (uint8_t)(v >> 8);
            }
        }
    }
    return p;
}

/* A tensor_info over an in-memory encoding (stream or stored). */
static ecf8_tensor_info info_of(const ecf8_encoded *enc, ecf8_dtype d, const void *data,
                                uint64_t rows, uint64_t cols, const char *name)
{
    ecf8_tensor_info t;
    assert_int_equal(ecf8_encoded_tensor_info(enc, name, d, data, rows, cols, &t), ECF8_OK);
    return t;
}

static unsigned g_stream_layout; /* what encode() writes */

static ecf8_encoded *encode(ecf8_dtype d, const void *data, uint64_t rows, uint64_t cols,
                            ecf8_split split, uint32_t chunk, unsigned max_bits)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = split;
    o.stream_layout = g_stream_layout;
    if (chunk) o.chunk_elements = chunk;
    if (max_bits) o.max_code_bits = max_bits;
    ecf8_encoded *enc = NULL;
    int st = ecf8_tensor_encode(d, data, rows, cols, &o, &enc);
    if (st) fail_msg("encode: %s", ecf8_last_error());
    return enc;
}

/* ---- checks -------------------------------------------------------------------- */
#define GUARD 256
#define GUARD_BYTE 0xA5

/* Decodes `t` on the device into a guard-filled buffer at out_offset and
 * returns the status; *region gets the decoded bytes, and the guards are
 * checked to be untouched whatever the status. */
static int decode_guarded(ecf8_cl_tensor *ct, const ecf8_tensor_info *t, size_t misalign,
                          uint8_t *region)
{
    size_t n = (size_t)t->source_bytes, total = GUARD + misalign + n + GUARD;
    uint8_t *host = malloc(total);
    assert_non_null(host);
    memset(host, GUARD_BYTE, total);
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, total, host, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_event ev = NULL;
    int st = ecf8_cl_enqueue_decode(ct, g_queue, buf, GUARD + misalign, 0, NULL, &ev);
    if (st == ECF8_OK) {
        assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
        clReleaseEvent(ev);
    }
    memset(host, 0, total);
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, total, host, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < GUARD + misalign; i++)
        if (host[i] != GUARD_BYTE) fail_msg("'%s': byte %zu before the output written", t->name, i);
    for (size_t i = GUARD + misalign + n; i < total; i++)
        if (host[i] != GUARD_BYTE) fail_msg("'%s': byte %zu after the output written", t->name, i);
    memcpy(region, host + GUARD + misalign, n);
    clReleaseMemObject(buf);
    free(host);
    return st;
}

/* Does the pairs kernel decode this tensor: FP8 elements of 1 to 13 bits? */
static bool pairs_fit(const ecf8_tensor_info *t)
{
    ecf8_split_layout l;
    if (t->split == ECF8_SPLIT_STORED || ecf8_split_layout_get(t->dtype, t->split, &l)) return false;
    unsigned bits = t->stream.code_bits + l.raw_bits;
    return l.element_bits == 8 && bits >= 1 && bits <= ECF8_PAIR_BITS;
}

/* Device decode (decode_to_host and guarded enqueues at a few offsets) ==
 * CPU decoder == original bytes, for every kernel; a forced CPU kernel
 * runs where it applies. */
static void check_tensor(const ecf8_tensor_info *t, const void *original)
{
    ecf8_cl_device_caps caps;
    assert_int_equal(ecf8_cl_device_caps_get(g_dev, &caps), ECF8_OK);
    size_t n = (size_t)t->source_bytes;
    uint8_t *cpu = malloc(n + 1), *dev = malloc(n + 1);
    assert_non_null(cpu);
    assert_non_null(dev);
    if (t->split != ECF8_SPLIT_STORED) {
        assert_int_equal(ecf8_stream_decode(&t->stream, cpu, n, 0), ECF8_OK);
        if (original) assert_memory_equal(cpu, original, n);
    } else {
        memcpy(cpu, t->payload, n);
    }
    for (size_t k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++) {
        use_kernel(KERNELS[k]);
        ecf8_cl_tensor *ct = NULL;
        int st = ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, t, &g_tuning, &ct);
        if (st) fail_msg("'%s' create: %s", t->name, ecf8_last_error());
        assert_int_equal(ecf8_cl_tensor_decoded_bytes(ct), n);
        assert_true(ecf8_cl_tensor_device_bytes(ct) >= (t->split == ECF8_SPLIT_STORED ? n : 1));
        const char *ran = ecf8_cl_tensor_kernel(ct, 0);
        if (caps.is_cpu && !strcmp(KERNELS[k], "pairs") && pairs_fit(t))
            assert_string_equal(ran, "pairs");
        if (!pairs_fit(t)) assert_string_not_equal(ran, "pairs");
        memset(dev, 0x5A, n);
        st = ecf8_cl_decode_to_host(ct, g_queue, dev, n);
        if (st) fail_msg("'%s' (%s kernel): %s", t->name, k ? KERNELS[k] : "default", ecf8_last_error());
        if (memcmp(dev, cpu, n)) {
            size_t i = 0;
            while (dev[i] == cpu[i]) i++;
            fail_msg("'%s' (%s kernel): byte %zu is %02x, CPU decoder gives %02x", t->name,
                     k ? KERNELS[k] : "default", i, dev[i], cpu[i]);
        }
        static const size_t offsets[] = {0, 1, 3, 4, 64};
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            memset(dev, 0x5A, n);
            assert_int_equal(decode_guarded(ct, t, offsets[o], dev), ECF8_OK);
            if (memcmp(dev, cpu, n)) fail_msg("'%s': wrong bytes at output offset %zu", t->name, offsets[o]);
        }
        ecf8_cl_tensor_free(ct);
    }
    use_kernel("");
    free(cpu);
    free(dev);
}

static void roundtrip(ecf8_dtype d, const void *data, uint64_t rows, uint64_t cols,
                      ecf8_split split, uint32_t chunk, unsigned max_bits, const char *name)
{
    ecf8_encoded *enc = encode(d, data, rows, cols, split, chunk, max_bits);
    ecf8_tensor_info t = info_of(enc, d, data, rows, cols, name);
    check_tensor(&t, data);
    ecf8_encoded_free(enc);
}

/* ---- tests ------------------------------------------------------------------------ */
static const ecf8_dtype DTYPES[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16,
                                    ECF8_DTYPE_F16};

typedef struct shape_case {
    uint64_t rows, cols;
    uint32_t chunk;
} shape_case;

/* Every dtype and split over the shapes, weights seeded by seed_step *
 * shape + dtype + seed_add, names starting with prefix. */
static void roundtrip_shapes(const shape_case *shapes, size_t n_shapes, unsigned seed_step,
                             unsigned seed_add, const char *prefix)
{
    char name[64];
    for (size_t di = 0; di < 4; di++)
        for (ecf8_split sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++)
            for (size_t si = 0; si < n_shapes; si++) {
                uint64_t n = shapes[si].rows * shapes[si].cols;
                uint8_t *w = make_weights(DTYPES[di], n, seed_step * si + di + seed_add, si % 2 == 0);
                snprintf(name, sizeof name, "%s%s/%s/%llux%llu", prefix, ecf8_dtype_name(DTYPES[di]),
                         ecf8_split_name(sp), (unsigned long long)shapes[si].rows,
                         (unsigned long long)shapes[si].cols);
                roundtrip(DTYPES[di], w, shapes[si].rows, shapes[si].cols, sp, shapes[si].chunk,
                          0, name);
                free(w);
            }
}

/* Every dtype and split over geometries that cover whole-row bands with a
 * partial last band, row segments with a partial last segment, one chunk,
 * odd lengths and chunk counts that do not fill a work-group. */
static void test_dtypes_and_splits(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const shape_case shapes[] = {
        {1000, 384, 4096}, /* bands of 10 rows, last band 0 rows short */
        {997, 129, 1000},  /* bands of 7 rows, odd row length, partial band */
        {9, 5000, 4096},   /* segments of 2560 + 2440 */
        {3, 70001, 0},     /* long odd rows in 18 segments */
        {17, 300, 300},    /* 17 chunks: less than one group of lanes */
        {1, 100003, 1000}, /* one row, odd length */
        {40, 7, 64},       /* tiny chunks of 63 elements */
    };
    roundtrip_shapes(shapes, sizeof shapes / sizeof shapes[0], 7, 1, "");
}

/* Stream layout 1 (lane streams): the tensor is transcoded to layout 0 on
 * the host and decodes on the device like any other. */
static void test_stream_layout_1(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const shape_case shapes[] = {{997, 129, 1000}, {3, 70001, 0}, {40, 7, 64}};
    g_stream_layout = ECF8_STREAM_LAYOUT_LANES;
    roundtrip_shapes(shapes, sizeof shapes / sizeof shapes[0], 5, 3, "layout 1 ");
    g_stream_layout = ECF8_STREAM_LAYOUT_SERIAL;
}

/* The lanes kernel in shapes the automatic choice may not pick here (it
 * depends on the chunk count and the compute units): 8- and 16-lane
 * vectors, one to eight sets, over chunks of unequal lengths. */
static void test_lane_shapes(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const unsigned shapes[][2] = {{8, 1}, {8, 3}, {8, 5}, {16, 1}, {16, 3}, {16, 8}};
    char name[64];
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        g_tuning.decode_vw = shapes[k][0];
        g_tuning.decode_nsets = shapes[k][1];
        for (size_t di = 0; di < 4; di += 2) { /* F8_E4M3 byte split, BF16 exponent split */
            uint8_t *w = make_weights(DTYPES[di], 997 * 129, 11 + k, true);
            snprintf(name, sizeof name, "%s/%ux%u", ecf8_dtype_name(DTYPES[di]), shapes[k][0],
                     shapes[k][1]);
            roundtrip(DTYPES[di], w, 997, 129, di ? ECF8_SPLIT_EXPONENT : ECF8_SPLIT_BYTE, 1000,
                      0, name);
            free(w);
        }
    }
    g_tuning.decode_vw = 0;
    g_tuning.decode_nsets = 0;
}

/* Every code length limit, so every unrolling class of the kernels runs. */
static void test_code_lengths(void **state)
{
    (void)state;
    NEED_DEVICE();
    char name[64];
    for (size_t di = 0; di < 4; di++)
        for (ecf8_split sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++)
            for (unsigned bits = 4; bits <= ECF8_MAX_CODE_BITS; bits++) {
                size_t n = 64 * 1000;
                uint8_t *w = make_weights(DTYPES[di], n, bits * 31 + di, true);
                snprintf(name, sizeof name, "%s/%s/max%u", ecf8_dtype_name(DTYPES[di]),
                         ecf8_split_name(sp), bits);
                ecf8_compress_options o;
                ecf8_compress_options_init(&o);
                o.split = sp;
                o.max_code_bits = bits;
                ecf8_encoded *enc = NULL;
                if (ecf8_tensor_encode(DTYPES[di], w, 64, 1000, &o, &enc)) {
                    /* More symbols in use than 2^bits codes: not encodable. */
                    assert_true(bits < 8);
                    free(w);
                    continue;
                }
                ecf8_tensor_info t = info_of(enc, DTYPES[di], w, 64, 1000, name);
                if (t.split != ECF8_SPLIT_STORED) assert_true(t.stream.code_bits <= bits);
                check_tensor(&t, w);
                ecf8_encoded_free(enc);
                free(w);
            }
}

/* All 256 FP8 codes (NaN, Inf, +-0, subnormals included), shuffled. */
static void test_all_fp8_codes(void **state)
{
    (void)state;
    NEED_DEVICE();
    size_t rows = 300, cols = 256, n = rows * cols;
    uint8_t *w = malloc(n);
    assert_non_null(w);
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) w[i] = (uint8_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = tu_rand(&s) % (i + 1);
        uint8_t x = w[i];
        w[i] = w[j], w[j] = x;
    }
    for (int d = ECF8_DTYPE_F8_E4M3; d <= ECF8_DTYPE_F8_E5M2; d++)
        for (ecf8_split sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
            /* Uniform bytes do not compress: a skewed copy does, and
             * still holds every code. */
            uint8_t *v = malloc(n);
            assert_non_null(v);
            for (size_t i = 0; i < n; i++) v[i] = i % 4 == 0 ? w[i] : (uint8_t)(0x30 + (w[i] & 0x0F));
            roundtrip((ecf8_dtype)d, v, rows, cols, sp, 2048, 0, "all-codes");
            ecf8_encoded *enc = encode((ecf8_dtype)d, w, rows, cols, sp, 2048, 0);
            ecf8_tensor_info t = info_of(enc, (ecf8_dtype)d, w, rows, cols, "uniform");
            check_tensor(&t, w); /* stored, most likely */
            ecf8_encoded_free(enc);
            free(v);
        }
    free(w);
}

/* One symbol only: code_bits 0, so the exponent split keeps only raw bits
 * and the byte split of FP8 keeps no bits at all. */
static void test_one_symbol(void **state)
{
    (void)state;
    NEED_DEVICE();
    size_t n = 50000;
    for (size_t di = 0; di < 4; di++) {
        unsigned wdt = ecf8_dtype_size(DTYPES[di]);
        uint8_t *w = malloc(n * wdt);
        assert_non_null(w);
        uint64_t s = 9;
        for (size_t i = 0; i < n; i++) {
            if (wdt == 1) {
                w[i] = DTYPES[di] == ECF8_DTYPE_F8_E4M3 ? 0x38 : 0x3C;
            } else { /* same exponent and sign, random mantissa */
                uint16_t v = (uint16_t)(DTYPES[di] == ECF8_DTYPE_BF16 ? 0x3F80 | (tu_rand(&s) & 0x7F)
                                                                     : 0x3C00 | (tu_rand(&s) & 0x3FF));
                w[2 * i] = (uint8_t)v, w[2 * i + 1] = (uint8_t)(v >> 8);
            }
        }
        ecf8_encoded *enc = encode(DTYPES[di], w, 100, 500, wdt == 1 ? ECF8_SPLIT_BYTE
                                                                      : ECF8_SPLIT_EXPONENT, 0, 0);
        ecf8_tensor_info t = info_of(enc, DTYPES[di], w, 100, 500, "one-symbol");
        assert_int_not_equal(t.split, ECF8_SPLIT_STORED);
        assert_int_equal(t.stream.code_bits, 0);
        check_tensor(&t, w);
        ecf8_encoded_free(enc);
        free(w);
    }
}

/* A hand-written coded tensor of a single element (the encoder would store
 * it): two used symbols of length 1 each. */
/* A tensor of no elements (stored, as the encoder keeps it): create,
 * decode to host and enqueue all succeed, and the output is untouched. */
static void test_empty_tensor(void **state)
{
    (void)state;
    NEED_DEVICE();
    ecf8_tensor_info t;
    memset(&t, 0, sizeof t);
    t.name = "empty";
    t.dtype = ECF8_DTYPE_F8_E4M3;
    t.split = ECF8_SPLIT_STORED;
    t.checksum = ecf8_checksum64(NULL, 0);
    for (size_t k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++) {
        use_kernel(KERNELS[k]);
        ecf8_cl_tensor *ct = NULL;
        assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &t, &g_tuning, &ct), ECF8_OK);
        assert_int_equal(ecf8_cl_tensor_decoded_bytes(ct), 0);
        assert_int_equal(ecf8_cl_decode_to_host(ct, g_queue, NULL, 0), ECF8_OK);
        uint8_t guard[16];
        memset(guard, 0x77, sizeof guard);
        cl_int err;
        cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof guard,
                                    guard, &err);
        assert_int_equal(err, CL_SUCCESS);
        cl_event ev = NULL;
        assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, buf, 16, 0, NULL, &ev), ECF8_OK);
        assert_non_null(ev);
        assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
        assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
        uint8_t back[16];
        assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL),
                         CL_SUCCESS);
        assert_memory_equal(back, guard, sizeof guard);
        clReleaseEvent(ev);
        clReleaseMemObject(buf);
        ecf8_cl_tensor_free(ct);
    }
    use_kernel("");
}

static void test_one_element(void **state)
{
    (void)state;
    NEED_DEVICE();
    for (int bit = 0; bit < 2; bit++) {
        ecf8_payload_layout lay;
        assert_true(ecf8_payload_layout_compute(256, 1, 9, &lay));
        uint8_t *payload = calloc(1, lay.total_bytes);
        assert_non_null(payload);
        payload[0x38 / 2] |= 1u << (4 * (0x38 & 1)); /* symbol 0x38: length 1, code 0 */
        payload[0xB8 / 2] |= 1u << (4 * (0xB8 & 1)); /* symbol 0xB8: length 1, code 1 */
        ecf8_store_le64(payload + lay.offsets_offset, 0);
        ecf8_store_le64(payload + lay.offsets_offset + 8, 1);
        payload[lay.coded_offset] = (uint8_t)bit;
        ecf8_tensor_info t;
        memset(&t, 0, sizeof t);
        const ecf8_stream_geometry g = {.dtype = ECF8_DTYPE_F8_E4M3, .split = ECF8_SPLIT_BYTE,
                                        .code_bits = 1, .rows = 1, .cols = 1, .chunk_rows = 1,
                                        .chunk_cols = 1, .coded_bytes = 9};
        assert_int_equal(ecf8_stream_open_payload(&g, payload, lay.total_bytes, &t.stream, NULL),
                         ECF8_OK);
        uint8_t expect = bit ? 0xB8 : 0x38;
        t.name = "one-element";
        t.dtype = ECF8_DTYPE_F8_E4M3;
        t.split = ECF8_SPLIT_BYTE;
        t.n_elements = 1, t.source_bytes = 1;
        t.payload = payload, t.payload_bytes = lay.total_bytes;
        t.checksum = ecf8_hash64(&expect, 1);
        check_tensor(&t, &expect);
        free(payload);
    }
}

/* ---- safetensors in memory, for container tests ------------------------------ */
typedef struct st_builder {
    char header[65536];
    size_t hlen;
    uint8_t *data;
    size_t dlen;
} st_builder;

static void st_add(st_builder *b, const char *name, const char *dtype, uint64_t rows,
                   uint64_t cols, const void *bytes, size_t n)
{
    b->hlen += (size_t)snprintf(b->header + b->hlen, sizeof b->header - b->hlen,
                                "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],"
                                "\"data_offsets\":[%zu,%zu]}",
                                b->hlen > 1 ? "," : "", name, dtype, (unsigned long long)rows,
                                (unsigned long long)cols, b->dlen, b->dlen + n);
    b->data = realloc(b->data, b->dlen + n);
    assert_non_null(b->data);
    memcpy(b->data + b->dlen, bytes, n);
    b->dlen += n;
}

static void st_write(st_builder *b, const char *path)
{
    b->header[b->hlen++] = '}';
    while ((8 + b->hlen) % 8) b->header[b->hlen++] = ' ';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t h = b->hlen;
    assert_int_equal(fwrite(&h, 8, 1, f), 1);
    assert_int_equal(fwrite(b->header, 1, b->hlen, f), b->hlen);
    assert_int_equal(fwrite(b->data, 1, b->dlen, f), b->dlen);
    assert_int_equal(fclose(f), 0);
    free(b->data);
}

/* Decodes every tensor of a container on the device and compares with
 * ecf8_file_read_tensor (which checks the checksums on the CPU). */
static void check_container(const char *path)
{
    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f)) fail_msg("%s: %s", path, ecf8_last_error());
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        uint8_t *ref = malloc((size_t)t.source_bytes + 1);
        assert_non_null(ref);
        assert_int_equal(ecf8_file_read_tensor(f, i, ref, (size_t)t.source_bytes, 0), ECF8_OK);
        check_tensor(&t, ref);
        free(ref);
    }
    ecf8_file_close(f);
}

/* Many small tensors of every dtype (and an uncoded one) in one file. */
static void test_many_small_tensors(void **state)
{
    (void)state;
    NEED_DEVICE();
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    st_builder *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->header[b->hlen++] = '{';
    char name[32];
    for (int i = 0; i < 60; i++) {
        ecf8_dtype d = DTYPES[i % 4];
        uint64_t rows = 1 + (uint64_t)(i * 7) % 23, cols = 64 + (uint64_t)(i * 37) % 700;
        uint8_t *w = make_weights(d, rows * cols, (uint64_t)i + 100, i % 3 == 0);
        snprintf(name, sizeof name, "t%02d", i);
        st_add(b, name, ecf8_dtype_name(d), rows, cols, w, rows * cols * ecf8_dtype_size(d));
        free(w);
    }
    int32_t ints[100];
    for (int i = 0; i < 100; i++) ints[i] = i * i;
    st_add(b, "ints", "I32", 10, 10, ints, sizeof ints);
    const char *src = tu_path(dir, "many.safetensors"), *dst = tu_path(dir, "many.ecf8");
    st_write(b, src);
    free(b);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.chunk_elements = 512;
    if (ecf8_compress_path(src, dst, &o)) fail_msg("compress: %s", ecf8_last_error());
    check_container(dst);
}

/* CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE where the device has it, else 0. */
static cl_command_queue_properties out_of_order_flag(void)
{
    cl_command_queue_properties p = 0;
    clGetDeviceInfo(g_dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof p, &p, NULL);
    return p & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE;
}

/* Every tensor of a container decoded on an out-of-order queue: all decodes
 * into one buffer with no dependencies between them (they may run at the
 * same time), then each compared with the CPU decoder; and decode_to_host
 * on that queue. */
static void decode_all_out_of_order(const char *path)
{
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(g_ctx, g_dev, out_of_order_flag(), &err);
    assert_int_equal(err, CL_SUCCESS);
    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f)) fail_msg("open %s: %s", path, ecf8_last_error());
    size_t nt = ecf8_file_tensor_count(f), total = 0;
    ecf8_cl_tensor **ct = calloc(nt, sizeof *ct);
    size_t *at = calloc(nt, sizeof *at);
    assert_non_null(ct);
    assert_non_null(at);
    for (size_t i = 0; i < nt; i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        if (ecf8_cl_tensor_create(g_ctx, g_dev, q, &t, &ct[i])) fail_msg("create: %s", ecf8_last_error());
        at[i] = total;
        total += ((size_t)t.source_bytes + 63) & ~(size_t)63;
    }
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, total ? total : 1, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    for (size_t i = 0; i < nt; i++) assert_int_equal(ecf8_cl_enqueue_decode(ct[i], q, buf, at[i], 0, NULL, NULL), ECF8_OK);
    assert_int_equal(clFinish(q), CL_SUCCESS);
    uint8_t *dev = malloc(total ? total : 1);
    assert_non_null(dev);
    assert_int_equal(clEnqueueReadBuffer(q, buf, CL_TRUE, 0, total, dev, 0, NULL, NULL), CL_SUCCESS);
    for (size_t i = 0; i < nt; i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        size_t n = (size_t)t.source_bytes;
        assert_int_equal(ecf8_cl_tensor_check(ct[i], q), ECF8_OK);
        if (ecf8_checksum64(dev + at[i], n) != t.checksum) fail_msg("'%s' decoded out of order differs", t.name);
        uint8_t *one = malloc(n + 1);
        assert_non_null(one);
        memset(one, 0x5A, n);
        if (ecf8_cl_decode_to_host(ct[i], q, one, n)) fail_msg("'%s': %s", t.name, ecf8_last_error());
        assert_memory_equal(one, dev + at[i], n);
        free(one);
        ecf8_cl_tensor_free(ct[i]);
    }
    free(dev);
    free(ct);
    free(at);
    clReleaseMemObject(buf);
    clReleaseCommandQueue(q);
    ecf8_file_close(f);
}

/* The real checkpoint slices in tests/data. */
static void test_real_slices(void **state)
{
    (void)state;
    NEED_DEVICE();
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    static const char *const names[] = {"minilm-slice-e4m3", "minilm-slice-e5m2", "minilm-slice-bf16"};
    for (size_t i = 0; i < 3; i++) {
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s.safetensors", tu_data_path(names[i]));
        snprintf(dst, sizeof dst, "%s/%s.ecf8", dir, names[i]);
        if (ecf8_compress_path(src, dst, NULL)) fail_msg("compress %s: %s", src, ecf8_last_error());
        check_container(dst);
        decode_all_out_of_order(dst);
        /* The whole file rebuilt through the device, byte for byte (a
         * corrupt file through the same path: tests/cli_opencl.sh). */
        char back[4096];
        snprintf(back, sizeof back, "%s/%s.back", dir, names[i]);
        if (ecf8_cl_decompress_path(g_ctx, g_dev, g_queue, dst, back, NULL))
            fail_msg("device decompress %s: %s", dst, ecf8_last_error());
        assert_true(tu_files_equal(src, back));
        remove(back);
    }
}

/* Mangled chunk bytes: a clear error (corrupt chunk or checksum), the
 * guards around the output untouched; and structural damage rejected at
 * upload. */
static void test_corrupt(void **state)
{
    (void)state;
    NEED_DEVICE();
    for (size_t di = 0; di < 4; di++)
        for (ecf8_split sp = ECF8_SPLIT_EXPONENT; sp <= ECF8_SPLIT_BYTE; sp++) {
            uint64_t rows = 200, cols = 700;
            uint8_t *w = make_weights(DTYPES[di], rows * cols, di + 77, false);
            ecf8_encoded *enc = encode(DTYPES[di], w, rows, cols, sp, 2048, 0);
            ecf8_tensor_info t = info_of(enc, DTYPES[di], w, rows, cols, "mangled");
            assert_int_not_equal(t.split, ECF8_SPLIT_STORED);
            size_t n = (size_t)t.source_bytes;
            uint8_t *copy = malloc(t.payload_bytes), *out = malloc(n);
            assert_non_null(copy);
            assert_non_null(out);
            uint64_t s = di * 2 + sp;
            for (int trial = 0; trial < 12; trial++) {
                memcpy(copy, t.payload, t.payload_bytes);
                ecf8_tensor_info bad = t;
                bad.payload = copy;
                size_t coded_at = (size_t)(t.stream.coded - (const uint8_t *)t.payload);
                bad.stream.coded = copy + coded_at;
                bad.stream.chunk_offsets =
                    (const uint64_t *)(const void *)(copy + ((const uint8_t *)t.stream.chunk_offsets -
                                                             (const uint8_t *)t.payload));
                /* Mangle a run of bytes inside one chunk (offsets intact);
                 * first the last one, whose runaway decode reads against
                 * the end of the stream. */
                uint64_t c = trial ? tu_rand(&s) % t.stream.n_chunks : t.stream.n_chunks - 1;
                uint64_t a = t.stream.chunk_offsets[c], e = t.stream.chunk_offsets[c + 1];
                for (uint64_t k = a + (e - a) / 3; k < e && k < a + (e - a) / 3 + 6; k++)
                    copy[coded_at + k] ^= (uint8_t)(0x5B + trial);
                for (size_t k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++) {
                    use_kernel(KERNELS[k]);
                    ecf8_cl_tensor *ct = NULL;
                    assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &bad, &g_tuning, &ct), ECF8_OK);
                    int st = ecf8_cl_decode_to_host(ct, g_queue, out, n);
                    if (st != ECF8_ERR_CORRUPT && st != ECF8_ERR_CHECKSUM)
                        fail_msg("mangled chunk %llu: status %d (%s)", (unsigned long long)c, st,
                                 ecf8_last_error());
                    assert_non_null(strstr(ecf8_last_error(), "mangled"));
                    /* The same through enqueue: guards intact, and either the
                     * length check or the checksum of the output says so. */
                    assert_int_equal(decode_guarded(ct, &bad, k, out), ECF8_OK);
                    int chk = ecf8_cl_tensor_check(ct, g_queue);
                    assert_true(chk == ECF8_ERR_CORRUPT ||
                                (chk == ECF8_OK && ecf8_checksum64(out, n) != t.checksum));
                    st = ecf8_cl_decode_to_host(ct, g_queue, out, n);
                    assert_true(st == ECF8_ERR_CORRUPT || st == ECF8_ERR_CHECKSUM);
                    ecf8_cl_tensor_free(ct);
                }
            }
            /* Chunk boundaries moved: still a valid layout, wrong lengths. */
            if (t.stream.n_chunks > 2) {
                memcpy(copy, t.payload, t.payload_bytes);
                ecf8_tensor_info bad = t;
                bad.payload = copy;
                uint64_t *offs = (uint64_t *)(void *)(copy + ((const uint8_t *)t.stream.chunk_offsets -
                                                            (const uint8_t *)t.payload));
                bad.stream.chunk_offsets = offs;
                bad.stream.coded = copy + (t.stream.coded - (const uint8_t *)t.payload);
                offs[1] -= 3;
                offs[2] += 2;
                for (size_t k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++) {
                    use_kernel(KERNELS[k]);
                    ecf8_cl_tensor *ct = NULL;
                    assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &bad, &g_tuning, &ct), ECF8_OK);
                    assert_int_equal(decode_guarded(ct, &bad, 0, out), ECF8_OK);
                    /* Enqueue-only users learn it from ecf8_cl_tensor_check,
                     * once: the record is cleared. */
                    assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_ERR_CORRUPT);
                    assert_non_null(strstr(ecf8_last_error(), "chunk"));
                    assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
                    assert_int_equal(ecf8_cl_decode_to_host(ct, g_queue, out, n), ECF8_ERR_CORRUPT);
                    assert_non_null(strstr(ecf8_last_error(), "chunk"));
                    /* A decode enqueued on another queue is still reported,
                     * and on an out-of-order one the check waits for it. */
                    cl_int err;
                    cl_command_queue q2 = clCreateCommandQueue(g_ctx, g_dev, out_of_order_flag(), &err);
                    assert_int_equal(err, CL_SUCCESS);
                    cl_mem ob = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, n, NULL, &err);
                    assert_int_equal(ecf8_cl_enqueue_decode(ct, q2, ob, 0, 0, NULL, NULL), ECF8_OK);
                    assert_int_equal(ecf8_cl_tensor_check(ct, q2), ECF8_ERR_CORRUPT);
                    assert_int_equal(ecf8_cl_enqueue_decode(ct, q2, ob, 0, 0, NULL, NULL), ECF8_OK);
                    clReleaseCommandQueue(q2); /* the tensor keeps it until checked */
                    assert_int_equal(ecf8_cl_decode_to_host(ct, g_queue, out, n), ECF8_ERR_CORRUPT);
                    /* Decodes on two queues, the first held back by a user
                     * event until the second is queued: the check waits for
                     * both, not only the last queue's. */
                    cl_event gate = clCreateUserEvent(g_ctx, &err), first = NULL;
                    assert_int_equal(err, CL_SUCCESS);
                    cl_command_queue qa = clCreateCommandQueue(g_ctx, g_dev, 0, &err);
                    assert_int_equal(err, CL_SUCCESS);
                    cl_mem ob2 = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, n, NULL, &err);
                    assert_int_equal(err, CL_SUCCESS);
                    assert_int_equal(ecf8_cl_enqueue_decode(ct, qa, ob2, 0, 1, &gate, &first), ECF8_OK);
                    assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, ob, 0, 0, NULL, NULL), ECF8_OK);
                    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
                    assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_ERR_CORRUPT);
                    cl_int first_status = -1;
                    assert_int_equal(clGetEventInfo(first, CL_EVENT_COMMAND_EXECUTION_STATUS,
                                                    sizeof first_status, &first_status, NULL),
                                     CL_SUCCESS);
                    assert_int_equal(first_status, CL_COMPLETE);
                    assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
                    clReleaseEvent(first);
                    clReleaseEvent(gate);
                    clReleaseCommandQueue(qa);
                    clReleaseMemObject(ob2);
                    clReleaseMemObject(ob);
                    ecf8_cl_tensor_free(ct);
                }
                /* An offset past the stream: rejected before any upload. */
                offs[1] = t.stream.coded_bytes + 100;
                ecf8_cl_tensor *ct = NULL;
                assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &bad, &g_tuning, &ct),
                                 ECF8_ERR_CORRUPT);
                assert_null(ct);
                assert_non_null(strstr(ecf8_last_error(), "mangled"));
            }
            use_kernel("");
            free(copy);
            free(out);
            ecf8_encoded_free(enc);
            free(w);
        }
}

/* Argument checks, wait lists and output events. */
static void test_api(void **state)
{
    (void)state;
    NEED_DEVICE();
    uint64_t rows = 64, cols = 1024;
    uint8_t *w = make_weights(ECF8_DTYPE_F8_E4M3, rows * cols, 5, false);
    ecf8_encoded *enc = encode(ECF8_DTYPE_F8_E4M3, w, rows, cols, ECF8_SPLIT_BYTE, 0, 0);
    ecf8_tensor_info t = info_of(enc, ECF8_DTYPE_F8_E4M3, w, rows, cols, "api");
    size_t n = (size_t)t.source_bytes;
    ecf8_cl_tensor *ct = NULL;
    assert_int_equal(ecf8_cl_tensor_create(NULL, g_dev, g_queue, &t, &ct), ECF8_ERR_ARGUMENT);
    /* A tuning must at least hold its struct_size; an older, shorter
     * struct reads as zero past it. */
    ecf8_cl_tuning bad_tuning = {.struct_size = 1}, short_tuning;
    ecf8_cl_tuning_init(&short_tuning);
    short_tuning.decode_kernel = "no kernel of that name";
    short_tuning.struct_size = offsetof(ecf8_cl_tuning, decode_kernel);
    assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &t, &bad_tuning, &ct),
                     ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &t, &short_tuning, &ct), ECF8_OK);
    ecf8_cl_tensor_free(ct);
    assert_int_equal(ecf8_cl_tensor_create(g_ctx, g_dev, g_queue, &t, &ct), ECF8_OK);
    cl_int err;
    cl_mem small = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, n - 1, NULL, &err);
    cl_mem big = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, 2 * n, NULL, &err);
    assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, small, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, big, n + 1, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, big, 0, 1, NULL, NULL), ECF8_ERR_ARGUMENT);
    uint8_t *out = malloc(n);
    assert_int_equal(ecf8_cl_decode_to_host(ct, g_queue, out, n - 1), ECF8_ERR_ARGUMENT);

    /* A decode waits for a user event, and reports its own event. */
    cl_event gate = clCreateUserEvent(g_ctx, &err), done = NULL;
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, big, n, 1, &gate, &done), ECF8_OK);
    cl_int status = 0;
    assert_int_equal(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL),
                     CL_SUCCESS);
    assert_true(status != CL_COMPLETE);
    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
    assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(g_queue, big, CL_TRUE, n, n, out, 0, NULL, NULL), CL_SUCCESS);
    assert_memory_equal(out, w, n);
    clReleaseEvent(gate);
    clReleaseEvent(done);
    clReleaseMemObject(small);
    clReleaseMemObject(big);
    ecf8_cl_tensor_free(ct);
    ecf8_cl_tensor_free(NULL);
    free(out);
    ecf8_encoded_free(enc);
    free(w);
}

/* Device choice: explicit preferences (ecf8_cl_select), and the 1.0
 * entry point that reads them from ECF8_DEVICE. */
static void test_select_device(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_platform_id p;
    cl_device_id d;
    assert_int_equal(ecf8_cl_select(NULL, "0", &p, &d), ECF8_OK);
    ecf8_cl_device_caps caps;
    assert_int_equal(ecf8_cl_device_caps_get(d, &caps), ECF8_OK);
    assert_true(caps.name[0] != '\0');
    char sub[8];
    snprintf(sub, sizeof sub, "%.5s", caps.name);
    assert_int_equal(ecf8_cl_select("", sub, &p, &d), ECF8_OK);
    assert_int_equal(ecf8_cl_select(NULL, "no such device anywhere", &p, &d), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), "device 'no such device anywhere' matches no"));
    assert_int_equal(ecf8_cl_select("99", NULL, &p, &d), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), "platform '99'"));
    /* Compatibility: the environment, as 1.0 read it. */
    setenv("ECF8_DEVICE", "no such device anywhere", 1);
    assert_int_equal(ecf8_cl_select_device(&p, &d), ECF8_ERR_NOT_FOUND);
    unsetenv("ECF8_DEVICE");
    assert_int_equal(ecf8_cl_select_device(&p, &d), ECF8_OK);
}

/* The program caches: built once per context in memory; on disk in the
 * directory ecf8_cl_set_disk_cache names (on PoCL, which caches programs
 * itself, only with ECF8_CL_DISK_CACHE_ON), a damaged entry rebuilt,
 * ECF8_CL_DISK_CACHE_OFF honoured; a failed build returns its log. */
static void test_program_cache(void **state)
{
    (void)state;
    NEED_DEVICE();
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char kdir[4096];
    snprintf(kdir, sizeof kdir, "%s", tu_path(dir, "kernels"));
    assert_int_equal(ecf8_cl_set_disk_cache((ecf8_cl_disk_cache)7, kdir), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_set_disk_cache(ECF8_CL_DISK_CACHE_AUTO, kdir), ECF8_OK);
    char version[256] = "";
    clGetDeviceInfo(g_dev, CL_DEVICE_VERSION, sizeof version, version, NULL);
    if (strstr(version, "PoCL")) {
        /* Left to PoCL's own cache: nothing of ours on disk. */
        cl_program p = NULL;
        assert_int_equal(ecf8_cl_program_get(g_ctx, g_dev, "decode_portable", "-DECF8_TEST_AUTO=1", &p),
                         ECF8_OK);
        clReleaseProgram(p);
        char probe[4200];
        snprintf(probe, sizeof probe, "test ! -e %s", kdir);
        assert_int_equal(system(probe), 0);
    }
    assert_int_equal(ecf8_cl_set_disk_cache(ECF8_CL_DISK_CACHE_ON, kdir), ECF8_OK);
    char options[128];
    uint64_t nonce = (uint64_t)(uintptr_t)dir ^ 0x1234567;
    snprintf(options, sizeof options, "-DECF8_TEST_NONCE=%llu", (unsigned long long)nonce);
    cl_int err;
    cl_context c1 = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_program a = NULL, b = NULL;
    assert_int_equal(ecf8_cl_program_get(c1, g_dev, "decode_portable", options, &a), ECF8_OK);
    assert_int_equal(ecf8_cl_program_get(c1, g_dev, "decode_portable", options, &b), ECF8_OK);
    assert_ptr_equal(a, b); /* in-memory cache */
    clReleaseProgram(a);
    clReleaseProgram(b);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls %s/decode_portable-*.bin >/dev/null 2>&1", kdir);
    assert_int_equal(system(cmd), 0);
    /* Damage every entry; a new context must still build (from source). */
    snprintf(cmd, sizeof cmd, "for f in %s/decode_portable-*.bin; do printf 'garbage' > \"$f\"; done", kdir);
    assert_int_equal(system(cmd), 0);
    cl_context c2 = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
    assert_int_equal(ecf8_cl_program_get(c2, g_dev, "decode_portable", options, &a), ECF8_OK);
    cl_kernel k = clCreateKernel(a, "ecf8_decode", &err);
    assert_int_equal(err, CL_SUCCESS);
    clReleaseKernel(k);
    clReleaseProgram(a);
    snprintf(cmd, sizeof cmd, "grep -q ECF8BIN1 %s/decode_portable-*.bin", kdir); /* rewritten */
    assert_int_equal(system(cmd), 0);
    /* Disabled: nothing new on disk. */
    assert_int_equal(ecf8_cl_set_disk_cache(ECF8_CL_DISK_CACHE_OFF, kdir), ECF8_OK);
    assert_int_equal(ecf8_cl_program_get(c2, g_dev, "decode_portable", "-DECF8_TEST_OTHER=1", &a), ECF8_OK);
    clReleaseProgram(a);
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", kdir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ecf8_cl_set_disk_cache(ECF8_CL_DISK_CACHE_ON, kdir), ECF8_OK);
    /* A build failure carries the log. */
    assert_int_equal(ecf8_cl_program_get(c2, g_dev, "decode_lanes", "-DECF8_VW=5", &a), ECF8_ERR_BUILD);
    assert_non_null(strstr(ecf8_last_error(), "ECF8_VW must be 8 or 16"));
    assert_int_equal(ecf8_cl_program_get(c2, g_dev, "no-such-kernel", "", &a), ECF8_ERR_NOT_FOUND);
    /* A program is the family's common part followed by its own file. */
    assert_null(ecf8_cl_source("decode"));
    assert_null(ecf8_cl_source("decode_common"));
    const char *lanes = ecf8_cl_source("decode_lanes");
    assert_non_null(lanes);
    const char *common = strstr(lanes, "#ifndef ECF8_WIDTH"), *own = strstr(lanes, "#line 1 \"decode_lanes.cl\"");
    assert_non_null(common);
    assert_non_null(own);
    assert_true(common < own && strstr(own, "__kernel void ecf8_decode_lanes"));
    assert_null(strstr(lanes, "__kernel void ecf8_decode_pairs"));
    clReleaseContext(c1);
    clReleaseContext(c2);
    assert_int_equal(ecf8_cl_set_disk_cache(ECF8_CL_DISK_CACHE_AUTO, NULL), ECF8_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_device),
        cmocka_unit_test(test_program_cache),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_empty_tensor),
        cmocka_unit_test(test_one_element),
        cmocka_unit_test(test_one_symbol),
        cmocka_unit_test(test_all_fp8_codes),
        cmocka_unit_test(test_dtypes_and_splits),
        cmocka_unit_test(test_stream_layout_1),
        cmocka_unit_test(test_lane_shapes),
        cmocka_unit_test(test_code_lengths),
        cmocka_unit_test(test_many_small_tensors),
        cmocka_unit_test(test_real_slices),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
