/* test_cl_decode.c - OpenCL decode against the CPU decoder and the original
 * bytes: every dtype and split, every kernel (the CPU pairs and lanes
 * kernels, the portable one, the cooperative GPU one), edge cases (all 256
 * FP8 codes, NaN/Inf/+-0/subnormals, one element, odd lengths, one-symbol
 * code_bits 0 tensors, chunk counts that do not fill a work-group,
 * misaligned output offsets), many small tensors in one container (on an
 * out-of-order queue too) and the real slices in tests/data.  Corrupt
 * tensors, the API, device choice and the program caches:
 * test_cl_decode_api.c.  Skips when no OpenCL device exists. */
#include "testutil_cl_decode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- checks -------------------------------------------------------------------- */
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
        bool lanes1 = t->split != ECF8_SPLIT_STORED && t->stream.stream_layout == ECF8_STREAM_LAYOUT_LANES;
        if (lanes1) assert_string_equal(ran, "streams"); /* whatever the tuning asks */
        else if (caps.is_cpu && !strcmp(KERNELS[k], "pairs") && pairs_fit(t))
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

/* Stream layout 1 (lane streams): the streams kernel, uploaded as it is,
 * in the device's own shape and in every other it can be built in here:
 * one lane per work-item (the GPU shape) and on vector CPUs 1, 2 and 4
 * vectors per work-item and the word reader; chunks of odd sizes (partial
 * words, lanes without words) at odd output offsets (byte stores). */
static void test_stream_layout_1(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const shape_case shapes[] = {{997, 129, 1000}, {3, 70001, 0}, {40, 7, 64}, {5, 1, 0}};
    static const unsigned tunings[][3] = {{0, 0, 0}, {1, 0, 0}, {8, 1, 0}, {8, 2, 1}, {8, 4, 1}};
    char name[64];
    g_stream_layout = ECF8_STREAM_LAYOUT_LANES;
    for (size_t k = 0; k < sizeof tunings / sizeof tunings[0]; k++) {
        g_tuning.decode_vw = tunings[k][0];
        g_tuning.decode_nsets = tunings[k][1];
        g_tuning.decode_reader = tunings[k][2];
        snprintf(name, sizeof name, "layout 1 (vw %u, nsets %u, reader %u) ", tunings[k][0],
                 tunings[k][1], tunings[k][2]);
        roundtrip_shapes(shapes, sizeof shapes / sizeof shapes[0], 5 + (unsigned)k, 3, name);
    }
    g_tuning.decode_vw = g_tuning.decode_nsets = g_tuning.decode_reader = 0;
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
        /* Layout 1: its small tensors decoded ahead by one batch. */
        ecf8_compress_options co;
        ecf8_compress_options_init(&co);
        co.stream_layout = ECF8_STREAM_LAYOUT_LANES;
        co.overwrite = 1;
        if (ecf8_compress_path(src, dst, &co)) fail_msg("compress %s: %s", src, ecf8_last_error());
        if (ecf8_cl_decompress_path(g_ctx, g_dev, g_queue, dst, back, NULL))
            fail_msg("device decompress %s (layout 1): %s", dst, ecf8_last_error());
        assert_true(tu_files_equal(src, back));
        remove(back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
