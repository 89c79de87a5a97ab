/* test_cl_load.c - the loading API on a real device: non-blocking create
 * (ecf8_cl_tensor_create_async), whole-file loads with a per-tensor
 * callback (ecf8_cl_load) and the full check (ecf8_cl_tensor_verify).
 *
 * Every tensor of a real checkpoint slice is loaded without blocking and
 * decoded bit for bit against the original bytes, on the in-order queue and
 * on an out-of-order one, with and without the ready events in the wait
 * lists; an upload held back by a user event waits for it; the bad files
 * that open but fail to decode fail cleanly through the async path (the
 * device's chunk check for damaged code bits, ecf8_cl_tensor_verify for
 * the rest), and a structurally broken tensor fails in the call with no
 * object and no event. */
#include "testutil.h"
#include "testutil_cl.h"
#include "testutil_originals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static originals g_orig;

static int setup(void **state)
{
    group_setup(state);
    originals_load(&g_orig, "minilm-slice-e4m3");
    return 0;
}

static int teardown(void **state)
{
    originals_free(&g_orig);
    return group_teardown(state);
}

static cl_command_queue out_of_order_queue(void)
{
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(g_ctx, g_dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE,
                                              &err);
    assert_int_equal(err, CL_SUCCESS);
    return q;
}

/* Decodes t on `queue` into a device buffer at a 64-byte offset (after
 * `wait` when given), reads it back and compares it with original i. */
static void expect_original(ecf8_cl_tensor *t, cl_command_queue queue, cl_event wait, size_t i)
{
    size_t bytes = ecf8_cl_tensor_decoded_bytes(t);
    assert_int_equal(bytes, g_orig.size[i]);
    cl_int err;
    cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, bytes + 64, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_event done = NULL;
    assert_int_equal(ecf8_cl_enqueue_decode(t, queue, buf, 64, wait ? 1 : 0, wait ? &wait : NULL,
                                            &done),
                     ECF8_OK);
    uint8_t *host = malloc(bytes + 1);
    assert_int_equal(clEnqueueReadBuffer(queue, buf, CL_TRUE, 64, bytes, host, 1, &done, NULL),
                     CL_SUCCESS);
    assert_int_equal(ecf8_cl_tensor_check(t, queue), ECF8_OK);
    if (memcmp(host, g_orig.bytes[i], bytes)) fail_msg("tensor %zu differs", i);
    free(host);
    clReleaseEvent(done);
    clReleaseMemObject(buf);
}

static void test_async_create(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_command_queue ooo = out_of_order_queue();
    for (int pass = 0; pass < 3; pass++) {
        /* 0: in-order queue, no wait list; 1: out-of-order queue with the
         * ready event; 2: out-of-order, the decode orders itself. */
        cl_command_queue q = pass ? ooo : g_queue;
        ecf8_cl_tensor **t = calloc(g_orig.n, sizeof *t);
        cl_event *ready = calloc(g_orig.n, sizeof *ready);
        for (size_t i = 0; i < g_orig.n; i++) {
            ecf8_tensor_info info;
            assert_int_equal(ecf8_file_tensor(g_orig.file, i, &info), ECF8_OK);
            if (ecf8_cl_tensor_create_async(g_ctx, g_dev, q, &info, NULL, 0, NULL, &t[i],
                                            pass == 2 ? NULL : &ready[i]))
                fail_msg("create %zu: %s", i, ecf8_last_error());
            assert_true(pass == 2 || ready[i] != NULL);
        }
        for (size_t i = 0; i < g_orig.n; i++) {
            expect_original(t[i], q, pass == 1 ? ready[i] : NULL, i);
            if (ready[i]) clReleaseEvent(ready[i]);
            ecf8_cl_tensor_free(t[i]);
        }
        free(t);
        free(ready);
    }
    clReleaseCommandQueue(ooo);
}

/* An upload after a user event runs only once the event is set. */
static void test_wait_list(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_command_queue ooo = out_of_order_queue();
    cl_int err;
    cl_event gate = clCreateUserEvent(g_ctx, &err);
    assert_int_equal(err, CL_SUCCESS);
    size_t i = g_orig.n - 1;
    ecf8_tensor_info info;
    assert_int_equal(ecf8_file_tensor(g_orig.file, i, &info), ECF8_OK);
    ecf8_cl_tensor *t = NULL;
    cl_event ready = NULL;
    assert_int_equal(ecf8_cl_tensor_create_async(g_ctx, g_dev, ooo, &info, NULL, 1, &gate, &t, &ready),
                     ECF8_OK);
    clFlush(ooo);
    cl_int status = 0;
    assert_int_equal(clGetEventInfo(ready, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status,
                                    NULL),
                     CL_SUCCESS);
    assert_true(status > CL_COMPLETE); /* held back */
    assert_int_equal(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
    assert_int_equal(clWaitForEvents(1, &ready), CL_SUCCESS);
    expect_original(t, ooo, NULL, i);
    assert_int_equal(ecf8_cl_tensor_verify(t, ooo), ECF8_OK);
    /* a wait list and its count that disagree */
    ecf8_cl_tensor *u = (ecf8_cl_tensor *)1;
    assert_int_equal(ecf8_cl_tensor_create_async(g_ctx, g_dev, ooo, &info, NULL, 1, NULL, &u, NULL),
                     ECF8_ERR_ARGUMENT);
    clReleaseEvent(ready);
    clReleaseEvent(gate);
    ecf8_cl_tensor_free(t);
    clReleaseCommandQueue(ooo);
}

/* ---- ecf8_cl_load --------------------------------------------------------- */
typedef struct loaded {
    size_t n, stop_after;
    size_t *index;
    ecf8_cl_tensor **tensor;
    cl_event *ready;
} loaded;

static int keep(void *user, size_t index, ecf8_cl_tensor *tensor, cl_event ready)
{
    loaded *l = user;
    l->index[l->n] = index;
    l->tensor[l->n] = tensor;
    l->ready[l->n++] = ready;
    return l->n == l->stop_after ? ECF8_ERR_MISMATCH : ECF8_OK;
}

static void loaded_init(loaded *l, size_t n)
{
    *l = (loaded){0};
    l->index = calloc(n + 1, sizeof *l->index);
    l->tensor = calloc(n + 1, sizeof *l->tensor);
    l->ready = calloc(n + 1, sizeof *l->ready);
}

static void loaded_free(loaded *l)
{
    for (size_t k = 0; k < l->n; k++) {
        ecf8_cl_tensor_free(l->tensor[k]);
        if (l->ready[k]) clReleaseEvent(l->ready[k]);
    }
    free(l->index);
    free(l->tensor);
    free(l->ready);
}

static void test_load(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_command_queue ooo = out_of_order_queue();
    loaded l;
    /* the whole file */
    loaded_init(&l, g_orig.n);
    assert_int_equal(ecf8_cl_load(g_ctx, g_dev, ooo, g_orig.file, NULL, 0, NULL, keep, &l), ECF8_OK);
    assert_int_equal(l.n, g_orig.n);
    for (size_t k = 0; k < l.n; k++) {
        assert_int_equal(l.index[k], k);
        expect_original(l.tensor[k], ooo, l.ready[k], k);
        assert_int_equal(ecf8_cl_tensor_verify(l.tensor[k], ooo), ECF8_OK);
    }
    loaded_free(&l);
    /* a list, in its order, repeats allowed */
    size_t list[] = {g_orig.n - 1, 0, g_orig.n / 2, 0};
    loaded_init(&l, 4);
    assert_int_equal(ecf8_cl_load(g_ctx, g_dev, g_queue, g_orig.file, list, 4, NULL, keep, &l), ECF8_OK);
    assert_int_equal(l.n, 4);
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(l.index[k], list[k]);
        expect_original(l.tensor[k], g_queue, NULL, list[k]);
    }
    loaded_free(&l);
    /* an index out of range stops the load there */
    size_t bad_list[] = {1, g_orig.n, 2};
    loaded_init(&l, 3);
    assert_int_equal(ecf8_cl_load(g_ctx, g_dev, g_queue, g_orig.file, bad_list, 3, NULL, keep, &l),
                     ECF8_ERR_ARGUMENT);
    assert_int_equal(l.n, 1);
    loaded_free(&l);
    /* the callback's status stops it */
    loaded_init(&l, g_orig.n);
    l.stop_after = 2;
    assert_int_equal(ecf8_cl_load(g_ctx, g_dev, g_queue, g_orig.file, NULL, 0, NULL, keep, &l),
                     ECF8_ERR_MISMATCH);
    assert_int_equal(l.n, 2);
    loaded_free(&l);
    assert_int_equal(ecf8_cl_load(g_ctx, g_dev, g_queue, g_orig.file, NULL, 0, NULL, NULL, NULL),
                     ECF8_ERR_ARGUMENT);
    clFinish(g_queue);
    clReleaseCommandQueue(ooo);
}

/* The bad files that open: loading succeeds (their structure is sound);
 * damaged code bits fail the device's chunk check, the rest only the
 * checksum of ecf8_cl_tensor_verify. */
static void test_bad_files(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_command_queue ooo = out_of_order_queue();
    for (size_t b = 0; b < N_BAD_DECODES; b++) {
        ecf8_file *f = open_bad(BAD_DECODES[b].file);
        size_t n = ecf8_file_tensor_count(f);
        loaded l;
        loaded_init(&l, n);
        assert_int_equal(ecf8_cl_load(g_ctx, g_dev, ooo, f, NULL, 0, NULL, keep, &l), ECF8_OK);
        int worst_check = ECF8_OK, worst_verify = ECF8_OK;
        for (size_t k = 0; k < l.n; k++) {
            size_t bytes = ecf8_cl_tensor_decoded_bytes(l.tensor[k]);
            cl_int err;
            cl_mem buf = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE, bytes + 64, NULL, &err);
            assert_int_equal(err, CL_SUCCESS);
            assert_int_equal(ecf8_cl_enqueue_decode(l.tensor[k], ooo, buf, 0, 1, &l.ready[k], NULL),
                             ECF8_OK);
            int st = ecf8_cl_tensor_check(l.tensor[k], ooo);
            if (st) {
                assert_int_equal(st, ECF8_ERR_CORRUPT);
                assert_non_null(strstr(ecf8_last_error(), "chunk"));
                worst_check = st;
            }
            st = ecf8_cl_tensor_verify(l.tensor[k], ooo);
            if (st) worst_verify = st;
            clReleaseMemObject(buf);
        }
        int expect = BAD_DECODES[b].status;
        if (worst_verify != expect || worst_check != (expect == ECF8_ERR_CORRUPT ? expect : ECF8_OK))
            fail_msg("%s: check %s, verify %s, expected %s", BAD_DECODES[b].file,
                     ecf8_status_string(worst_check), ecf8_status_string(worst_verify),
                     ecf8_status_string(expect));
        loaded_free(&l);
        ecf8_file_close(f);
    }
    /* A structurally broken tensor fails in the call: no object, no event. */
    ecf8_tensor_info info;
    size_t coded = 0;
    while (coded < g_orig.n && (ecf8_file_tensor(g_orig.file, coded, &info), info.split == ECF8_SPLIT_STORED))
        coded++;
    assert_true(coded < g_orig.n);
    info.stream.n_chunks++;
    ecf8_cl_tensor *t = (ecf8_cl_tensor *)1;
    cl_event ready = (cl_event)1;
    assert_int_equal(ecf8_cl_tensor_create_async(g_ctx, g_dev, ooo, &info, NULL, 0, NULL, &t, &ready),
                     ECF8_ERR_CORRUPT);
    assert_null(t);
    assert_null(ready);
    clReleaseCommandQueue(ooo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_create),
        cmocka_unit_test(test_wait_list),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
