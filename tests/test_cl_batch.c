/* test_cl_batch.c - ecf8_cl_batch: many layout-1 tensors decoded by one
 * enqueue.  Every coded tensor of the three real checkpoint slices
 * (tests/data) with synthetic tensors of every dtype and both splits
 * (several build classes, column chunks, short last bands, a constant
 * tensor) in one batch, in the CPU shape and the GPU shape (one lane per
 * work-item, tables in local memory), decoded at odd offsets between
 * guard bytes: bit-identical to the CPU decode, nothing else written; a
 * corrupt chunk is reported naming its tensor and chunk; layout-0 and
 * stored tensors and bad arguments are refused.  Skips without a device. */
#include "testutil_cl_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct set {
    ecf8_tensor_info t[64];
    const uint8_t *ref[64];
    size_t n;
    ecf8_encoded *enc[16];
    uint8_t *owned[64];
    size_t n_enc, n_owned;
    ecf8_file *files[3];
    char paths[3][4200];
} set;

/* The coded tensors of the real slices compressed with layout 1. */
static void add_slices(set *s)
{
    static const char *const names[] = {"minilm-slice-e4m3", "minilm-slice-e5m2", "minilm-slice-bf16"};
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    for (size_t k = 0; k < 3; k++) {
        char src[4096];
        snprintf(src, sizeof src, "%s.safetensors", tu_data_path(names[k]));
        snprintf(s->paths[k], sizeof s->paths[k], "%s/%s-batch.ecf8", dir, names[k]);
        ecf8_compress_options co;
        ecf8_compress_options_init(&co);
        co.stream_layout = ECF8_STREAM_LAYOUT_LANES;
        if (ecf8_compress_path(src, s->paths[k], &co)) fail_msg("compress %s: %s", src, ecf8_last_error());
        assert_int_equal(ecf8_file_open(s->paths[k], &s->files[k]), ECF8_OK);
        for (size_t i = 0; i < ecf8_file_tensor_count(s->files[k]); i++) {
            ecf8_tensor_info t;
            assert_int_equal(ecf8_file_tensor(s->files[k], i, &t), ECF8_OK);
            if (t.split == ECF8_SPLIT_STORED || !t.source_bytes) continue;
            uint8_t *ref = malloc((size_t)t.source_bytes);
            assert_non_null(ref);
            assert_int_equal(ecf8_file_read_tensor(s->files[k], i, ref, (size_t)t.source_bytes, 1), ECF8_OK);
            assert_true(s->n < 64);
            s->t[s->n] = t, s->ref[s->n++] = ref, s->owned[s->n_owned++] = ref;
        }
    }
}

static void add_synthetic(set *s, ecf8_dtype d, uint64_t rows, uint64_t cols, ecf8_split split,
                          uint32_t chunk, uint64_t seed, bool constant, const char *name)
{
    uint8_t *w = make_weights(d, rows * cols, seed, !constant);
    if (constant) memset(w, 0x3c, (size_t)(rows * cols * ecf8_dtype_size(d)));
    g_stream_layout = ECF8_STREAM_LAYOUT_LANES;
    ecf8_encoded *enc = encode(d, w, rows, cols, split, chunk, 0);
    g_stream_layout = ECF8_STREAM_LAYOUT_SERIAL;
    ecf8_tensor_info t = info_of(enc, d, w, rows, cols, name);
    assert_true(s->n < 64 && s->n_enc < 16);
    s->enc[s->n_enc++] = enc;
    s->owned[s->n_owned++] = w;
    if (t.split == ECF8_SPLIT_STORED) fail_msg("'%s' is stored", name);
    assert_int_equal(t.stream.stream_layout, ECF8_STREAM_LAYOUT_LANES);
    s->t[s->n] = t, s->ref[s->n++] = w;
}

static void set_free(set *s)
{
    for (size_t i = 0; i < s->n_enc; i++) ecf8_encoded_free(s->enc[i]);
    for (size_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    for (size_t k = 0; k < 3; k++)
        if (s->files[k]) {
            ecf8_file_close(s->files[k]);
            remove(s->paths[k]);
        }
}

/* The batch of s decoded into one guard-filled buffer, tensor i at an
 * offset of i mod 7 bytes past the last one's end plus a gap; compared
 * with the references and the guards. */
static void decode_and_compare(const set *s, const ecf8_cl_tuning *tuning, const char *what)
{
    const ecf8_tensor_info *ptrs[64];
    for (size_t i = 0; i < s->n; i++) ptrs[i] = &s->t[i];
    ecf8_cl_batch *b = NULL;
    if (ecf8_cl_batch_create(g_ctx, g_dev, g_queue, ptrs, s->n, tuning, &b))
        fail_msg("%s: create: %s", what, ecf8_last_error());
    assert_int_equal(ecf8_cl_batch_count(b), s->n);
    assert_true(ecf8_cl_batch_launches(b) >= 1 && ecf8_cl_batch_launches(b) <= s->n);
    assert_true(ecf8_cl_batch_device_bytes(b) > 0);
    size_t offsets[64], total = GUARD;
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(ecf8_cl_batch_decoded_bytes(b, i), s->t[i].source_bytes);
        offsets[i] = total + i % 7;
        total = offsets[i] + (size_t)s->t[i].source_bytes + 13;
    }
    total += GUARD;
    uint8_t *host = NULL;
    cl_mem buf = guarded_buffer(total, &host);
    for (int round = 0; round < 2; round++) { /* the object is reusable */
        cl_event ev = NULL;
        if (ecf8_cl_enqueue_decode_batch(b, g_queue, buf, offsets, 0, NULL, &ev))
            fail_msg("%s: enqueue: %s", what, ecf8_last_error());
        assert_non_null(ev);
        assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
        clReleaseEvent(ev);
        if (ecf8_cl_batch_check(b, g_queue)) fail_msg("%s: check: %s", what, ecf8_last_error());
    }
    memset(host, 0, total);
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, total, host, 0, NULL, NULL), CL_SUCCESS);
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        for (; at < offsets[i]; at++)
            if (host[at] != GUARD_BYTE) fail_msg("%s: byte %zu before tensor %zu written", what, at, i);
        if (memcmp(host + offsets[i], s->ref[i], (size_t)s->t[i].source_bytes))
            fail_msg("%s: tensor '%s' differs from the CPU decode", what, s->t[i].name);
        at = offsets[i] + (size_t)s->t[i].source_bytes;
    }
    for (; at < total; at++)
        if (host[at] != GUARD_BYTE) fail_msg("%s: byte %zu after the last tensor written", what, at);
    clReleaseMemObject(buf);
    free(host);
    ecf8_cl_batch_free(b);
}

static void test_mixed_batch(void **state)
{
    (void)state;
    NEED_DEVICE();
    set s = {0};
    add_slices(&s);
    size_t real = s.n;
    assert_true(real >= 3);
    for (size_t di = 0; di < 4; di++) {
        add_synthetic(&s, DTYPES[di], 37, 5000, ECF8_SPLIT_EXPONENT, 2048, di + 1, false, "columns");
        add_synthetic(&s, DTYPES[di], 301, 24, ECF8_SPLIT_BYTE, 2048, di + 9, false, "bands");
    }
    add_synthetic(&s, ECF8_DTYPE_BF16, 3, 100, ECF8_SPLIT_EXPONENT, 0, 1, false, "small");
    add_synthetic(&s, ECF8_DTYPE_BF16, 64, 64, ECF8_SPLIT_EXPONENT, 0, 1, true, "constant");
    ecf8_cl_tuning cpu = {.struct_size = sizeof cpu}, gpu = cpu, sets2 = cpu;
    gpu.decode_vw = 1;     /* the GPU shape: a work-item per lane */
    sets2.decode_nsets = 2; /* two work-items per chunk on CPUs */
    decode_and_compare(&s, &cpu, "default shape");
    decode_and_compare(&s, &gpu, "one lane per work-item");
    decode_and_compare(&s, &sets2, "two sets per work-item");
    /* One tensor alone, and the real ones alone (one class each). */
    set one = s;
    one.n = 1;
    decode_and_compare(&one, &gpu, "one tensor");
    one.n = real;
    decode_and_compare(&one, &cpu, "real slices");
    set_free(&s);
}

/* A corrupt chunk in the middle tensor: named with its chunk, in both
 * shapes; the record clears. */
static void test_corrupt_chunk(void **state)
{
    (void)state;
    NEED_DEVICE();
    set s = {0};
    add_synthetic(&s, ECF8_DTYPE_BF16, 100, 256, ECF8_SPLIT_EXPONENT, 2048, 3, false, "before");
    add_synthetic(&s, ECF8_DTYPE_BF16, 400, 256, ECF8_SPLIT_EXPONENT, 2048, 4, false, "mangled");
    add_synthetic(&s, ECF8_DTYPE_BF16, 50, 256, ECF8_SPLIT_EXPONENT, 2048, 5, false, "after");
    ecf8_tensor_info *t = &s.t[1];
    assert_int_equal(t->stream.chunk_rows, 8);
    uint8_t *copy = malloc(t->payload_bytes);
    assert_non_null(copy);
    memcpy(copy, t->payload, t->payload_bytes);
    size_t coded_at = (size_t)(t->stream.coded - (const uint8_t *)t->payload);
    uint64_t a = t->stream.chunk_offsets[31], e = t->stream.chunk_offsets[32];
    for (uint64_t k = a + 72; k < a + 72 + (e - a) / 8; k++) copy[coded_at + k] = 0xFF;
    t->payload = copy;
    t->stream.coded = copy + coded_at;
    s.owned[s.n_owned++] = copy;
    const ecf8_tensor_info *ptrs[] = {&s.t[0], &s.t[1], &s.t[2]};
    size_t offsets[] = {0, 100 * 256 * 2, 500 * 256 * 2};
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, 550 * 256 * 2, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    for (int shape = 0; shape < 2; shape++) {
        ecf8_cl_tuning tu = {.struct_size = sizeof tu, .decode_vw = shape ? 1 : 0};
        ecf8_cl_batch *b = NULL;
        assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, ptrs, 3, &tu, &b), ECF8_OK);
        assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, offsets, 0, NULL, NULL), ECF8_OK);
        assert_int_equal(ecf8_cl_batch_check(b, g_queue), ECF8_ERR_CORRUPT);
        if (!strstr(ecf8_last_error(), "tensor 'mangled': chunk 31 lane "))
            fail_msg("shape %d: %s", shape, ecf8_last_error());
        assert_int_equal(ecf8_cl_batch_check(b, g_queue), ECF8_OK); /* cleared */
        ecf8_cl_batch_free(b);
    }
    clReleaseMemObject(buf);
    set_free(&s);
}

/* Layout-0 and stored tensors, NULLs, outputs too small: refused. */
static void test_refused(void **state)
{
    (void)state;
    NEED_DEVICE();
    set s = {0};
    add_synthetic(&s, ECF8_DTYPE_F8_E4M3, 100, 64, ECF8_SPLIT_EXPONENT, 1024, 5, false, "lanes");
    uint8_t *w = make_weights(ECF8_DTYPE_F8_E4M3, 100 * 64, 6, false);
    s.owned[s.n_owned++] = w;
    ecf8_encoded *enc0 = encode(ECF8_DTYPE_F8_E4M3, w, 100, 64, ECF8_SPLIT_EXPONENT, 1024, 0);
    s.enc[s.n_enc++] = enc0;
    ecf8_tensor_info serial = info_of(enc0, ECF8_DTYPE_F8_E4M3, w, 100, 64, "serial");
    ecf8_tensor_info stored = serial;
    stored.name = "verbatim";
    stored.split = ECF8_SPLIT_STORED;
    stored.payload = w;
    stored.payload_bytes = stored.source_bytes;
    memset(&stored.stream, 0, sizeof stored.stream);
    ecf8_cl_batch *b = (ecf8_cl_batch *)1;
    const ecf8_tensor_info *p0[] = {&s.t[0], &serial};
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p0, 2, NULL, &b), ECF8_ERR_UNSUPPORTED);
    assert_null(b);
    assert_non_null(strstr(ecf8_last_error(), "tensor 'serial'"));
    const ecf8_tensor_info *p1[] = {&stored};
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p1, 1, NULL, &b), ECF8_ERR_UNSUPPORTED);
    assert_non_null(strstr(ecf8_last_error(), "tensor 'verbatim'"));
    const ecf8_tensor_info *p2[] = {&s.t[0], NULL};
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p2, 2, NULL, &b), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p2, 0, NULL, &b), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_batch_create(NULL, g_dev, g_queue, p2, 1, NULL, &b), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p2, 1, NULL, NULL), ECF8_ERR_ARGUMENT);
    /* A corrupt lane table is refused at create. */
    ecf8_tensor_info bad = s.t[0];
    uint8_t *copy = malloc(bad.payload_bytes);
    assert_non_null(copy);
    memcpy(copy, bad.payload, bad.payload_bytes);
    size_t coded_at = (size_t)(bad.stream.coded - (const uint8_t *)bad.payload);
    copy[coded_at + 3] ^= 0x40; /* a lane length delta of chunk 0 */
    bad.payload = copy, bad.stream.coded = copy + coded_at, bad.name = "bad lanes";
    s.owned[s.n_owned++] = copy;
    const ecf8_tensor_info *p3[] = {&bad};
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p3, 1, NULL, &b), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "tensor 'bad lanes'"));

    const ecf8_tensor_info *p4[] = {&s.t[0]};
    assert_int_equal(ecf8_cl_batch_create(g_ctx, g_dev, g_queue, p4, 1, NULL, &b), ECF8_OK);
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, 100 * 64 + 3, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    size_t off[] = {4};
    cl_event ev = (cl_event)1;
    assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, off, 0, NULL, &ev), ECF8_ERR_ARGUMENT);
    assert_null(ev);
    off[0] = SIZE_MAX;
    assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, off, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    off[0] = 3;
    assert_int_equal(ecf8_cl_enqueue_decode_batch(NULL, g_queue, buf, off, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, off, 1, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, NULL, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_decode_batch(b, g_queue, buf, off, 0, NULL, NULL), ECF8_OK);
    assert_int_equal(ecf8_cl_batch_check(b, g_queue), ECF8_OK);
    uint8_t host[100 * 64];
    assert_int_equal(clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 3, sizeof host, host, 0, NULL, NULL), CL_SUCCESS);
    assert_memory_equal(host, s.ref[0], sizeof host);
    assert_int_equal(ecf8_cl_batch_check(NULL, g_queue), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_batch_count(NULL), 0);
    assert_int_equal(ecf8_cl_batch_launches(b), 1);
    assert_int_equal(ecf8_cl_batch_launches(NULL), 0);
    assert_int_equal(ecf8_cl_batch_decoded_bytes(b, 1), 0);
    ecf8_cl_batch_free(b);
    ecf8_cl_batch_free(NULL);
    clReleaseMemObject(buf);
    set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_corrupt_chunk),
        cmocka_unit_test(test_mixed_batch),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
