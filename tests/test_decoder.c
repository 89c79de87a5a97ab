/* test_decoder.c - ecf8_decoder: CPU decoding on the caller's threads.
 *
 * Every tensor of a real checkpoint slice decoded bit for bit against the
 * original bytes by decoders of 1, 2 and all threads; several threads each
 * with its own decoder on one open file at once; a decoder never sends work
 * to the process-wide pool (pool.c counts the jobs it runs); the bad files
 * that fail only when decoded fail the same way through a decoder. */
#include "testutil.h"
#include "testutil_originals.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

static originals g_orig;

static int setup(void **state)
{
    (void)state;
    originals_load(&g_orig, "minilm-slice-e4m3");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    originals_free(&g_orig);
    return 0;
}

/* Every tensor through d, compared with the originals: 0, or the index of
 * the first tensor that differs or fails, plus one. */
static size_t decode_all(ecf8_decoder *d)
{
    for (size_t i = 0; i < g_orig.n; i++) {
        uint8_t *out = malloc(g_orig.size[i] + 1);
        int st = ecf8_decoder_read_tensor(d, g_orig.file, i, out, g_orig.size[i]);
        bool same = !st && !memcmp(out, g_orig.bytes[i], g_orig.size[i]);
        free(out);
        if (!same) return i + 1;
    }
    return 0;
}

static void test_bit_exact(void **state)
{
    (void)state;
    static const unsigned threads[] = {1, 2, 0};
    for (size_t k = 0; k < 3; k++) {
        ecf8_decoder *d = ecf8_decoder_create(threads[k]);
        assert_non_null(d);
        assert_int_equal(ecf8_decoder_threads(d), threads[k] ? threads[k] : ecf8_default_threads());
        assert_int_equal(decode_all(d), 0);
        assert_int_equal(decode_all(d), 0); /* the pool again, once started */
        ecf8_decoder_free(d);
    }
    ecf8_decoder_free(NULL);
    assert_int_equal(ecf8_decoder_threads(NULL), 0);
}

static void test_arguments(void **state)
{
    (void)state;
    ecf8_decoder *d = ecf8_decoder_create(1);
    uint8_t byte;
    assert_int_equal(ecf8_decoder_read_tensor(NULL, g_orig.file, 0, &byte, 1), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decoder_read_tensor(d, g_orig.file, g_orig.n, &byte, 1), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decoder_read_tensor(d, NULL, 0, &byte, 1), ECF8_ERR_ARGUMENT);
    /* too small an output */
    assert_int_equal(ecf8_decoder_read_tensor(d, g_orig.file, 0, &byte, 0), ECF8_ERR_ARGUMENT);
    ecf8_decoder_free(d);
}

/* The hook: the shared pool counts its jobs.  File reads with threads > 1
 * use it; decoders, single-threaded or with a pool of their own, never. */
static void test_shared_pool_untouched(void **state)
{
    (void)state;
    uint64_t before = atomic_load(&ecf8_shared_pool_jobs);
    uint8_t *out = malloc(g_orig.size[0] + 1);
    for (size_t i = 0; i < g_orig.n; i++) {
        out = realloc(out, g_orig.size[i] + 1);
        assert_int_equal(ecf8_file_read_tensor(g_orig.file, i, out, g_orig.size[i], 4), ECF8_OK);
    }
    free(out);
    uint64_t after_shared = atomic_load(&ecf8_shared_pool_jobs);
    assert_true(after_shared > before); /* the hook sees the shared pool's jobs */

    static const unsigned threads[] = {1, 4};
    for (size_t k = 0; k < 2; k++) {
        ecf8_decoder *d = ecf8_decoder_create(threads[k]);
        assert_int_equal(decode_all(d), 0);
        ecf8_decoder_free(d);
        assert_int_equal(atomic_load(&ecf8_shared_pool_jobs), after_shared);
    }
}

/* Several threads, each with its own decoder, on one open file. */
#define N_THREADS 4
#define ITERATIONS 3

typedef struct slot {
    unsigned threads;
    size_t failed;  /* decode_all's result of the first failing pass */
    int created;
} slot;

static void *worker(void *arg)
{
    slot *s = arg;
    ecf8_decoder *d = ecf8_decoder_create(s->threads);
    s->created = d != NULL;
    for (int it = 0; d && it < ITERATIONS && !s->failed; it++) s->failed = decode_all(d);
    ecf8_decoder_free(d);
    return NULL;
}

static void test_concurrent_decoders(void **state)
{
    (void)state;
    uint64_t before = atomic_load(&ecf8_shared_pool_jobs);
    pthread_t tid[N_THREADS];
    slot slots[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        slots[i] = (slot){.threads = i % 2 ? 2 : 1};
        assert_int_equal(pthread_create(&tid[i], NULL, worker, &slots[i]), 0);
    }
    for (unsigned i = 0; i < N_THREADS; i++) pthread_join(tid[i], NULL);
    for (unsigned i = 0; i < N_THREADS; i++) {
        assert_true(slots[i].created);
        if (slots[i].failed) fail_msg("thread %u: tensor %zu differs", i, slots[i].failed - 1);
    }
    assert_int_equal(atomic_load(&ecf8_shared_pool_jobs), before);
}

/* The bad files that open but fail to decode: the same status through a
 * decoder as through ecf8_file_read_tensor, on one thread and on a pool. */
static void test_bad_files(void **state)
{
    (void)state;
    for (size_t b = 0; b < N_BAD_DECODES; b++) {
        ecf8_file *f = open_bad(BAD_DECODES[b].file);
        for (unsigned threads = 1; threads <= 2; threads++) {
            ecf8_decoder *d = ecf8_decoder_create(threads);
            int worst = ECF8_OK;
            for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
                ecf8_tensor_info t;
                assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
                uint8_t *out = malloc(t.source_bytes + 1);
                int st = ecf8_decoder_read_tensor(d, f, i, out, t.source_bytes);
                assert_int_equal(st, ecf8_file_read_tensor(f, i, out, t.source_bytes, 1));
                if (st) worst = st;
                free(out);
            }
            if (worst != BAD_DECODES[b].status)
                fail_msg("%s: %s, expected %s", BAD_DECODES[b].file, ecf8_status_string(worst),
                         ecf8_status_string(BAD_DECODES[b].status));
            ecf8_decoder_free(d);
        }
        ecf8_file_close(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_exact),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_shared_pool_untouched),
        cmocka_unit_test(test_concurrent_decoders),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
