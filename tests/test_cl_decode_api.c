/* test_cl_decode_api.c - OpenCL decode beyond the happy path: corrupt
 * tensors (a clear error and no write outside the output range; structural
 * damage rejected at upload), argument checks, wait lists and output
 * events, device choice (ecf8_cl_select and the 1.0 defaults) and the
 * program caches (in memory per context, on disk).  Skips when no OpenCL
 * device exists. */
#include "testutil_cl_decode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
