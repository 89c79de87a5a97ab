/* test_threads.c - the API from several threads at once, each with its own
 * objects (ecf8.h: "thread-safe on distinct objects").
 *
 * Every thread opens the same container itself, reads and checks every
 * tensor (fast and reference decoders, with 1 or 2 pool threads, so jobs
 * from several callers meet in the shared pool), encodes and decodes its
 * own tensor, compresses and verifies the checkpoint to its own file,
 * inspects it, and provokes a failure to check that ecf8_last_error() is
 * per thread.  With OpenCL, each thread also decodes every coded tensor on
 * the default device through its own queue on a shared context.  Meant to
 * run under ThreadSanitizer too (-DECF8_TSAN=ON).
 *
 * CMocka's assertions are not thread-safe, so threads record the first
 * failure in their own slot and the main thread asserts. */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ECF8_HAVE_OPENCL
#include "ecf8_cl.h"
#endif

/* LeakSanitizer: the OpenCL runtime (PoCL and its LLVM) keeps compiler
 * state for the life of the process; those are not ecf8's leaks.  Weak, so
 * that a shared definition (e.g. in testutil.c) takes precedence. */
const char *__lsan_default_suppressions(void);
__attribute__((weak)) const char *__lsan_default_suppressions(void)
{
    return "leak:libpocl.so\nleak:libLLVM\nleak:libOpenCL.so\n";
}

#define N_THREADS 4
#define ITERATIONS 2

typedef struct shared_state {
    char src[4096], ecf[4096], dir[4096];
    size_t n_tensors;
    uint8_t **expect;    /* original bytes per tensor */
    size_t *expect_bytes;
#ifdef ECF8_HAVE_OPENCL
    int have_cl;
    cl_context context;
    cl_device_id device;
#endif
} shared_state;

typedef struct thread_slot {
    const shared_state *sh;
    unsigned id;
    char failure[512]; /* first failure, empty when none */
    unsigned checks;
} thread_slot;

#define CHECK(slot, cond, ...)                                                     \
    do {                                                                           \
        (slot)->checks++;                                                          \
        if (!(cond) && !(slot)->failure[0]) {                                      \
            int k_ = snprintf((slot)->failure, sizeof (slot)->failure,             \
                              "thread %u, line %d: ", (slot)->id, __LINE__);       \
            snprintf((slot)->failure + k_, sizeof (slot)->failure - (size_t)k_,    \
                     __VA_ARGS__);                                                 \
        }                                                                          \
    } while (0)

static void read_tensors(thread_slot *me)
{
    const shared_state *sh = me->sh;
    ecf8_file *f = NULL;
    int st = ecf8_file_open(sh->ecf, &f);
    CHECK(me, st == ECF8_OK, "open: %s", ecf8_last_error());
    if (st) return;
    CHECK(me, ecf8_file_tensor_count(f) == sh->n_tensors, "tensor count");
    for (size_t i = 0; i < sh->n_tensors; i++) {
        ecf8_tensor_info t;
        CHECK(me, ecf8_file_tensor(f, i, &t) == ECF8_OK, "tensor %zu", i);
        uint8_t *buf = malloc(sh->expect_bytes[i] + 1);
        st = ecf8_file_read_tensor(f, i, buf, sh->expect_bytes[i], 1 + (me->id + (unsigned)i) % 2);
        CHECK(me, st == ECF8_OK, "read '%s': %s", t.name, ecf8_last_error());
        CHECK(me, !memcmp(buf, sh->expect[i], sh->expect_bytes[i]), "'%s' differs", t.name);
        if (t.split != ECF8_SPLIT_STORED) {
            memset(buf, 0, sh->expect_bytes[i]);
            st = ecf8_stream_decode_reference(&t.stream, buf, sh->expect_bytes[i]);
            CHECK(me, st == ECF8_OK && !memcmp(buf, sh->expect[i], sh->expect_bytes[i]),
                  "reference decode of '%s'", t.name);
        }
        free(buf);
    }
    ecf8_file_close(f);
}

static void encode_own(thread_slot *me)
{
    const size_t rows = 64, cols = 1000, n = rows * cols;
    uint8_t *w = malloc(n), *back = malloc(n);
    tu_fill_weights_e4m3(w, n, 1000 + me->id);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 2;
    o.split = me->id % 2 ? ECF8_SPLIT_EXPONENT : ECF8_SPLIT_BYTE;
    ecf8_encoded *enc = NULL;
    int st = ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, w, rows, cols, &o, &enc);
    CHECK(me, st == ECF8_OK, "encode: %s", ecf8_last_error());
    if (!st) {
        const ecf8_stream *s = ecf8_encoded_stream(enc);
        CHECK(me, s != NULL, "encoded tensor is stored");
        if (s) {
            st = ecf8_stream_decode(s, back, n, 2);
            CHECK(me, st == ECF8_OK && !memcmp(w, back, n), "own tensor round trip");
        }
    }
    ecf8_encoded_free(enc);
    free(w);
    free(back);
}

static void compress_own(thread_slot *me)
{
    const shared_state *sh = me->sh;
    char out[4200];
    snprintf(out, sizeof out, "%s/thread%u.ecf8", sh->dir, me->id);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1 + me->id % 2;
    int st = ecf8_compress_path(sh->src, out, &o);
    CHECK(me, st == ECF8_OK, "compress: %s", ecf8_last_error());
    st = ecf8_verify_path(out, sh->src, o.threads);
    CHECK(me, st == ECF8_OK, "verify: %s", ecf8_last_error());
    ecf8_report rep;
    st = ecf8_inspect_path(out, &o, &rep);
    CHECK(me, st == ECF8_OK && rep.n_tensors == sh->n_tensors, "inspect: %s", ecf8_last_error());
    if (!st) ecf8_report_free(&rep);
    remove(out);
}

/* A failure in this thread leaves its own message, whatever others do. */
static void own_errors(thread_slot *me)
{
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing-%u.ecf8", me->sh->dir, me->id);
    ecf8_file *f = NULL;
    int st = ecf8_file_open(missing, &f);
    CHECK(me, st == ECF8_ERR_IO, "open of a missing file gave %d", st);
    const char *suffix = strrchr(missing, '/') + 1;
    ecf8_report rep;
    st = ecf8_inspect_path(missing, NULL, &rep);
    CHECK(me, st != ECF8_OK && strstr(ecf8_last_error(), suffix),
          "error detail '%s' is not this thread's", ecf8_last_error());
}

#ifdef ECF8_HAVE_OPENCL
static void decode_on_device(thread_slot *me)
{
    const shared_state *sh = me->sh;
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(sh->context, sh->device, 0, &err);
    CHECK(me, err == CL_SUCCESS, "clCreateCommandQueue: %d", err);
    if (err != CL_SUCCESS) return;
    ecf8_file *f = NULL;
    int st = ecf8_file_open(sh->ecf, &f);
    CHECK(me, st == ECF8_OK, "open");
    for (size_t i = 0; !st && i < sh->n_tensors; i++) {
        ecf8_tensor_info t;
        ecf8_file_tensor(f, i, &t);
        if (t.split == ECF8_SPLIT_STORED) continue;
        ecf8_cl_tensor *ct = NULL;
        int s2 = ecf8_cl_tensor_create(sh->context, sh->device, q, &t, &ct);
        CHECK(me, s2 == ECF8_OK, "cl tensor '%s': %s", t.name, ecf8_last_error());
        if (s2) continue;
        uint8_t *buf = malloc(sh->expect_bytes[i]);
        s2 = ecf8_cl_decode_to_host(ct, q, buf, sh->expect_bytes[i]);
        CHECK(me, s2 == ECF8_OK && !memcmp(buf, sh->expect[i], sh->expect_bytes[i]),
              "device decode of '%s': %d %s", t.name, s2, ecf8_last_error());
        free(buf);
        ecf8_cl_tensor_free(ct);
    }
    ecf8_file_close(f);
    clReleaseCommandQueue(q);
}
#endif

static void *thread_main(void *arg)
{
    thread_slot *me = arg;
    for (int it = 0; it < ITERATIONS && !me->failure[0]; it++) {
        /* Different threads start with different work. */
        for (unsigned k = 0; k < 4; k++) {
            switch ((k + me->id) % 4) {
            case 0: read_tensors(me); break;
            case 1: encode_own(me); break;
            case 2: compress_own(me); break;
            default: own_errors(me); break;
            }
        }
#ifdef ECF8_HAVE_OPENCL
        if (me->sh->have_cl) decode_on_device(me);
#endif
    }
    return NULL;
}

static void test_concurrent_use(void **state)
{
    (void)state;
    static shared_state sh;
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    snprintf(sh.dir, sizeof sh.dir, "%s", dir);
    snprintf(sh.src, sizeof sh.src, "%s", tu_data_path("minilm-slice-e5m2.safetensors"));
    snprintf(sh.ecf, sizeof sh.ecf, "%s/shared.ecf8", sh.dir);
    assert_int_equal(ecf8_compress_path(sh.src, sh.ecf, NULL), ECF8_OK);

    /* Expected tensor bytes come from the source file itself. */
    ecf8_report rep;
    assert_int_equal(ecf8_inspect_path(sh.src, NULL, &rep), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(sh.ecf, &f), ECF8_OK);
    sh.n_tensors = ecf8_file_tensor_count(f);
    assert_int_equal(sh.n_tensors, rep.n_tensors);
    size_t src_size;
    uint8_t *src = tu_read_file(sh.src, &src_size);
    assert_non_null(src);
    uint64_t header;
    memcpy(&header, src, 8);
    size_t pos = 8 + (size_t)header;
    sh.expect = calloc(sh.n_tensors, sizeof *sh.expect);
    sh.expect_bytes = calloc(sh.n_tensors, sizeof *sh.expect_bytes);
    for (size_t i = 0; i < sh.n_tensors; i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        sh.expect_bytes[i] = (size_t)t.source_bytes;
        sh.expect[i] = malloc(t.source_bytes + 1);
        assert_true(pos + t.source_bytes <= src_size);
        memcpy(sh.expect[i], src + pos, t.source_bytes); /* tensors tile the file in order */
        pos += t.source_bytes;
    }
    ecf8_file_close(f);
    ecf8_report_free(&rep);
    free(src);

#ifdef ECF8_HAVE_OPENCL
    cl_command_queue q0;
    sh.have_cl = ecf8_cl_open_default(&sh.context, &sh.device, &q0) == ECF8_OK;
    if (sh.have_cl)
        clReleaseCommandQueue(q0);
    else
        print_message("no OpenCL device (%s): host part only\n", ecf8_last_error());
#endif

    pthread_t th[N_THREADS];
    thread_slot slots[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        memset(&slots[i], 0, sizeof slots[i]);
        slots[i].sh = &sh;
        slots[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &slots[i]), 0);
    }
    unsigned checks = 0;
    for (unsigned i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        checks += slots[i].checks;
    }
    for (unsigned i = 0; i < N_THREADS; i++)
        if (slots[i].failure[0]) fail_msg("%s", slots[i].failure);
    print_message("%u threads, %u checks passed\n", N_THREADS, checks);

#ifdef ECF8_HAVE_OPENCL
    if (sh.have_cl) clReleaseContext(sh.context);
#endif
    for (size_t i = 0; i < sh.n_tensors; i++) free(sh.expect[i]);
    free(sh.expect);
    free(sh.expect_bytes);
    remove(sh.ecf);
    rmdir(sh.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_concurrent_use)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
