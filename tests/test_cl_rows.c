/* test_cl_rows.c - ecf8_cl_enqueue_decode_rows: row ranges of a tensor kept
 * coded on the device.  Random ranges of the real checkpoint slices
 * (tests/data) in both stream layouts, through every decode kernel, at odd
 * output offsets, decode bit-identical to the same rows of the CPU decode,
 * and nothing outside the covering bands is written; a corrupt chunk inside
 * a range is reported by ecf8_cl_tensor_check (naming the tensor's chunk),
 * one outside it is not decoded and not reported; bad arguments are
 * ECF8_ERR_ARGUMENT.  Skips when no OpenCL device exists. */
#include "testutil_cl_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes rows [r, r + n) of ct into a guard-filled buffer at out_offset
 * and compares the covering bands with `ref` (the whole tensor). */
static void check_range(ecf8_cl_tensor *ct, const char *name, const uint8_t *ref, uint64_t r,
                        uint64_t n, size_t out_offset, const char *what)
{
    uint64_t rows = ecf8_cl_tensor_rows(ct), b0 = 0, bn = 0;
    size_t row_bytes = ecf8_cl_tensor_decoded_bytes(ct) / (size_t)rows;
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, r, n, &b0, &bn), ECF8_OK);
    assert_true(b0 <= r && b0 + bn >= r + n && b0 + bn <= rows);
    size_t bytes = (size_t)bn * row_bytes, total = out_offset + bytes + GUARD;
    uint8_t *host = NULL;
    cl_mem buf = guarded_buffer(total, &host);
    cl_event ev = NULL;
    int st = ecf8_cl_enqueue_decode_rows(ct, g_queue, r, n, buf, out_offset, 0, NULL, &ev);
    if (st) fail_msg("%s %s rows %llu+%llu: %s", what, name, (unsigned long long)r,
                     (unsigned long long)n, ecf8_last_error());
    assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
    clReleaseEvent(ev);
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, total, host, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < out_offset; i++)
        if (host[i] != GUARD_BYTE) fail_msg("%s %s: byte %zu before the output written", what, name, i);
    for (size_t i = out_offset + bytes; i < total; i++)
        if (host[i] != GUARD_BYTE) fail_msg("%s %s: byte %zu after the bands written", what, name, i);
    if (memcmp(host + out_offset, ref + b0 * row_bytes, bytes))
        fail_msg("%s %s rows %llu+%llu (bands %llu+%llu) at offset %zu: differ from the CPU decode",
                 what, name, (unsigned long long)r, (unsigned long long)n, (unsigned long long)b0,
                 (unsigned long long)bn, out_offset);
    int chk = ecf8_cl_tensor_check(ct, g_queue);
    if (chk) fail_msg("%s %s: check: %s", what, name, ecf8_last_error());
    clReleaseMemObject(buf);
    free(host);
}

/* Every 2-D tensor of the slice compressed with `layout`: random ranges,
 * and the first and last rows, through each kernel. */
static void real_slice(const char *fixture, unsigned layout, uint64_t *seed)
{
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char src[4096], dst[4200];
    snprintf(src, sizeof src, "%s.safetensors", tu_data_path(fixture));
    snprintf(dst, sizeof dst, "%s/%s-%u.ecf8", dir, fixture, layout);
    ecf8_compress_options co;
    ecf8_compress_options_init(&co);
    co.stream_layout = layout;
    if (ecf8_compress_path(src, dst, &co)) fail_msg("compress %s: %s", src, ecf8_last_error());
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(dst, &f), ECF8_OK);
    int coded = 0, stored = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        if (t.source_bytes == 0) continue;
        if (t.split != ECF8_SPLIT_STORED) assert_int_equal(t.stream.stream_layout, layout);
        size_t n = (size_t)t.source_bytes;
        uint8_t *ref = malloc(n);
        assert_non_null(ref);
        assert_int_equal(ecf8_file_read_tensor(f, i, ref, n, 1), ECF8_OK);
        /* Layout 1 runs the streams kernel whatever the tuning asks. */
        size_t n_kernels = layout || t.split == ECF8_SPLIT_STORED ? 1 : sizeof KERNELS / sizeof KERNELS[0];
        for (size_t k = 0; k < n_kernels; k++) {
            use_kernel(KERNELS[k]);
            ecf8_cl_tensor *ct = NULL;
            if (ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &t, &g_tuning, &ct))
                fail_msg("create %s: %s", t.name, ecf8_last_error());
            uint64_t rows = ecf8_cl_tensor_rows(ct);
            assert_int_equal(rows, t.ndim >= 2 ? t.shape[0] : 1);
            char what[96];
            snprintf(what, sizeof what, "layout %u kernel '%s'", layout, KERNELS[k]);
            static const size_t offsets[] = {0, 1, 3, 4, 64, 67, 130};
            for (int trial = 0; trial < 8; trial++) {
                uint64_t r, m;
                if (trial == 0) r = 0, m = 1;
                else if (trial == 1) r = rows - 1, m = 1;
                else if (trial == 2) r = 0, m = rows;
                else {
                    r = tu_rand(seed) % rows;
                    m = 1 + tu_rand(seed) % (rows - r < 40 ? rows - r : 40);
                }
                check_range(ct, t.name, ref, r, m, offsets[(trial + k) % 7], what);
            }
            ecf8_cl_tensor_free(ct);
        }
        if (t.split == ECF8_SPLIT_STORED) stored++;
        else coded++;
        free(ref);
    }
    assert_true(coded > 0);
    (void)stored;
    ecf8_file_close(f);
    remove(dst);
}

static void test_real_slices(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const char *const names[] = {"minilm-slice-e4m3", "minilm-slice-e5m2", "minilm-slice-bf16"};
    uint64_t seed = 15;
    for (unsigned layout = 0; layout <= 1; layout++)
        for (size_t i = 0; i < 3; i++) real_slice(names[i], layout, &seed);
}

/* Column-chunked tensors (several chunks per band, chunk_rows 1) and short
 * last bands, in both layouts, every dtype. */
static void test_column_chunks(void **state)
{
    (void)state;
    NEED_DEVICE();
    uint64_t seed = 7;
    for (unsigned layout = 0; layout <= 1; layout++)
        for (size_t di = 0; di < 4; di++) {
            g_stream_layout = layout;
            uint64_t rows = 37, cols = 5000; /* chunks of 2048: 3 per row */
            uint8_t *w = make_weights(DTYPES[di], rows * cols, di + 3, true);
            ecf8_encoded *enc = encode(DTYPES[di], w, rows, cols, ECF8_SPLIT_EXPONENT, 2048, 0);
            ecf8_tensor_info t = info_of(enc, DTYPES[di], w, rows, cols, "columns");
            uint64_t rows2 = 301, cols2 = 24; /* 85 rows a chunk: a short last band */
            ecf8_encoded *enc2 = encode(DTYPES[di], w, rows2, cols2, ECF8_SPLIT_EXPONENT, 2048, 0);
            ecf8_tensor_info t2 = info_of(enc2, DTYPES[di], w, rows2, cols2, "bands");
            assert_int_not_equal(t.split, ECF8_SPLIT_STORED);
            assert_true(t.stream.chunk_cols < cols);
            assert_true(t2.stream.chunk_rows > 1);
            const ecf8_tensor_info *ts[] = {&t, &t2};
            for (size_t j = 0; j < 2; j++) {
                size_t n_kernels = layout ? 1 : sizeof KERNELS / sizeof KERNELS[0];
                for (size_t k = 0; k < n_kernels; k++) {
                    use_kernel(KERNELS[k]);
                    ecf8_cl_tensor *ct = NULL;
                    assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, ts[j], &g_tuning, &ct), ECF8_OK);
                    uint64_t rr = ts[j]->stream.rows;
                    char what[96];
                    snprintf(what, sizeof what, "layout %u %s kernel '%s'", layout,
                             ecf8_dtype_name(DTYPES[di]), KERNELS[k]);
                    for (int trial = 0; trial < 6; trial++) {
                        uint64_t r = trial == 0 ? rr - 1 : tu_rand(&seed) % rr;
                        uint64_t m = 1 + tu_rand(&seed) % (rr - r);
                        check_range(ct, ts[j]->name, w, r, m, 1 + (size_t)(tu_rand(&seed) % 67), what);
                    }
                    ecf8_cl_tensor_free(ct);
                }
            }
            ecf8_encoded_free(enc);
            ecf8_encoded_free(enc2);
            free(w);
        }
    g_stream_layout = ECF8_STREAM_LAYOUT_SERIAL;
    use_kernel("");
}

/* A corrupt chunk: a range over its band reports it (the whole tensor's
 * chunk index), a range elsewhere decodes clean. */
static void test_corrupt_range(void **state)
{
    (void)state;
    NEED_DEVICE();
    for (unsigned layout = 0; layout <= 1; layout++) {
        g_stream_layout = layout;
        uint64_t rows = 400, cols = 256; /* 8 rows a chunk of 2048 */
        uint8_t *w = make_weights(ECF8_DTYPE_BF16, rows * cols, 99, false);
        ecf8_encoded *enc = encode(ECF8_DTYPE_BF16, w, rows, cols, ECF8_SPLIT_EXPONENT, 2048, 0);
        ecf8_tensor_info t = info_of(enc, ECF8_DTYPE_BF16, w, rows, cols, "mangled rows");
        assert_int_equal(t.stream.chunk_rows, 8);
        uint8_t *copy = malloc(t.payload_bytes);
        assert_non_null(copy);
        memcpy(copy, t.payload, t.payload_bytes);
        ecf8_tensor_info bad = t;
        bad.payload = copy;
        size_t coded_at = (size_t)(t.stream.coded - (const uint8_t *)t.payload);
        bad.stream.coded = copy + coded_at;
        bad.stream.chunk_offsets = (const uint64_t *)(const void *)(copy + ((const uint8_t *)t.stream.chunk_offsets -
                                                                           (const uint8_t *)t.payload));
        uint64_t c = 31; /* rows 248-255 */
        uint64_t a = t.stream.chunk_offsets[c], e = t.stream.chunk_offsets[c + 1];
        /* A filled run where the code words are (layout 1: the lane
         * streams after the lane table, before the raw plane): code
         * lengths change (a flip that keeps them passes the length check,
         * see ecf8_cl_load). */
        for (uint64_t k = a + 72; k < a + 72 + (e - a) / 8; k++) copy[coded_at + k] = 0xFF;
        size_t n_kernels = layout ? 1 : sizeof KERNELS / sizeof KERNELS[0];
        for (size_t k = 0; k < n_kernels; k++) {
            use_kernel(KERNELS[k]);
            ecf8_cl_tensor *ct = NULL;
            assert_int_equal(ecf8_cl_tensor_create_ex(g_ctx, g_dev, g_queue, &bad, &g_tuning, &ct), ECF8_OK);
            cl_int err;
            cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, rows * cols * 2 + 64, NULL, &err);
            assert_int_equal(err, CL_SUCCESS);
            /* Elsewhere: clean, and the same bytes as the original. */
            uint8_t *host = malloc(16 * cols * 2);
            assert_non_null(host);
            assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 3, 200, buf, 1, 0, NULL, NULL), ECF8_OK);
            assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
            assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 256, 20, buf, 1, 0, NULL, NULL), ECF8_OK);
            assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 1, 16 * cols * 2, host, 0, NULL, NULL), CL_SUCCESS);
            assert_memory_equal(host, w + 256 * cols * 2, 16 * cols * 2);
            assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
            free(host);
            /* Over it: reported, with the chunk's index in the tensor. */
            assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 250, 3, buf, 0, 0, NULL, NULL), ECF8_OK);
            int chk = ecf8_cl_tensor_check(ct, g_queue);
            if (chk != ECF8_ERR_CORRUPT) {
                assert_int_equal(ecf8_cl_enqueue_decode(ct, g_queue, buf, 0, 0, NULL, NULL), ECF8_OK);
                fail_msg("layout %u kernel '%s': not reported (whole decode: %d)", layout, KERNELS[k],
                         ecf8_cl_tensor_check(ct, g_queue));
            }
            if (!strstr(ecf8_last_error(), "chunk 31 "))
                fail_msg("layout %u kernel '%s': %s", layout, KERNELS[k], ecf8_last_error());
            assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 200, 100, buf, 0, 0, NULL, NULL), ECF8_OK);
            assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_ERR_CORRUPT);
            assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK); /* cleared */
            clReleaseMemObject(buf);
            ecf8_cl_tensor_free(ct);
        }
        free(copy);
        ecf8_encoded_free(enc);
        free(w);
    }
    g_stream_layout = ECF8_STREAM_LAYOUT_SERIAL;
    use_kernel("");
}

/* Bad arguments: ECF8_ERR_ARGUMENT and nothing enqueued. */
static void test_arguments(void **state)
{
    (void)state;
    NEED_DEVICE();
    uint64_t rows = 100, cols = 64;
    uint8_t *w = make_weights(ECF8_DTYPE_F8_E4M3, rows * cols, 5, false);
    ecf8_encoded *enc = encode(ECF8_DTYPE_F8_E4M3, w, rows, cols, ECF8_SPLIT_EXPONENT, 1024, 0);
    ecf8_tensor_info t = info_of(enc, ECF8_DTYPE_F8_E4M3, w, rows, cols, "args");
    assert_int_equal(t.stream.chunk_rows, 16);
    ecf8_cl_tensor *ct = NULL;
    assert_int_equal(ecf8_cl_tensor_create(g_ctx, g_dev, g_queue, &t, &ct), ECF8_OK);
    assert_int_equal(ecf8_cl_tensor_rows(ct), rows);
    assert_int_equal(ecf8_cl_tensor_rows(NULL), 0);
    uint64_t b0 = 9, bn = 9;
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 17, 3, &b0, &bn), ECF8_OK);
    assert_int_equal(b0, 16);
    assert_int_equal(bn, 16);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 95, 5, &b0, &bn), ECF8_OK);
    assert_int_equal(b0, 80);
    assert_int_equal(bn, 20); /* the short last band */
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 15, 2, &b0, &bn), ECF8_OK);
    assert_int_equal(b0, 0);
    assert_int_equal(bn, 32);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 0, 0, &b0, &bn), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 100, 1, &b0, &bn), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 99, 2, &b0, &bn), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 1, UINT64_MAX, &b0, &bn), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_row_bands(NULL, 0, 1, &b0, &bn), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 0, 1, NULL, &bn), ECF8_ERR_ARGUMENT);
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, 16 * cols + 3, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_event ev = (cl_event)1;
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 0, 0, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 100, 1, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 90, 11, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(NULL, g_queue, 0, 1, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, NULL, 0, 1, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 0, 1, NULL, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 0, 1, buf, 0, 1, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 0, 1, buf, 0, 0, &ev, NULL), ECF8_ERR_ARGUMENT);
    /* One band fits at offset 3, not at 4; two bands do not fit. */
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 20, 5, buf, 4, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 15, 2, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 20, 5, buf, 3, 0, NULL, &ev), ECF8_OK);
    assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
    clReleaseEvent(ev);
    uint8_t host[16 * 64];
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 3, sizeof host, host, 0, NULL, NULL), CL_SUCCESS);
    assert_memory_equal(host, w + 16 * cols, sizeof host);
    assert_int_equal(ecf8_cl_tensor_check(ct, g_queue), ECF8_OK);
    ecf8_cl_tensor_free(ct);

    /* A stored tensor: exactly the rows. */
    ecf8_tensor_info s = t;
    s.split = ECF8_SPLIT_STORED;
    s.payload = w;
    s.payload_bytes = s.source_bytes;
    memset(&s.stream, 0, sizeof s.stream);
    assert_int_equal(ecf8_cl_tensor_create(g_ctx, g_dev, g_queue, &s, &ct), ECF8_OK);
    assert_int_equal(ecf8_cl_tensor_rows(ct), rows);
    assert_int_equal(ecf8_cl_tensor_row_bands(ct, 17, 3, &b0, &bn), ECF8_OK);
    assert_int_equal(b0, 17);
    assert_int_equal(bn, 3);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 17, 3, buf, 1, 0, NULL, NULL), ECF8_OK);
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 1, 3 * cols, host, 0, NULL, NULL), CL_SUCCESS);
    assert_memory_equal(host, w + 17 * cols, 3 * cols);
    assert_int_equal(ecf8_cl_enqueue_decode_rows(ct, g_queue, 99, 2, buf, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    ecf8_cl_tensor_free(ct);
    clReleaseMemObject(buf);
    ecf8_encoded_free(enc);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_corrupt_range),
        cmocka_unit_test(test_column_chunks),
        cmocka_unit_test(test_real_slices),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
