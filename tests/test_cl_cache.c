/* test_cl_cache.c - the in-memory program cache lets contexts go: after
 * ecf8_cl_release_context (or ecf8_cl_cache_clear) no program built for a
 * context is left in it and the library holds no reference to the context,
 * over create/release cycles and from several threads at once; the build
 * hook hears of the builds the cache does not serve. */
#include "testutil_cl.h"

#include "opencl/runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static ecf8_file *g_file;
static ecf8_tensor_info g_info; /* a coded tensor: decoding it builds a program */
static char *g_dir;

static int setup(void **state)
{
    group_setup(state);
    if (!g_ctx) return 0;
    g_dir = strdup(tu_temp_dir());
    char ecf[4096];
    snprintf(ecf, sizeof ecf, "%s", tu_path(g_dir, "cache.ecf8"));
    if (ecf8_compress_path(tu_data_path("minilm-slice-e4m3.safetensors"), ecf, NULL) ||
        ecf8_file_open(ecf, &g_file))
        return -1;
    for (size_t i = 0; i < ecf8_file_tensor_count(g_file); i++) {
        ecf8_file_tensor(g_file, i, &g_info);
        if (g_info.split != ECF8_SPLIT_STORED) return 0;
    }
    return -1;
}

static int teardown(void **state)
{
    ecf8_file_close(g_file);
    if (g_dir) tu_remove_tree(g_dir);
    free(g_dir);
    return group_teardown(state);
}

/* No cmocka assertions in the helpers the threads call: a failure there
 * cannot unwind another thread's stack. */
static cl_uint context_refs(cl_context ctx)
{
    cl_uint refs = 0;
    if (clGetContextInfo(ctx, CL_CONTEXT_REFERENCE_COUNT, sizeof refs, &refs, NULL) != CL_SUCCESS)
        return 0;
    return refs;
}

/* The context's reference count once it has dropped to `want`, or what it
 * still is after 5 s: PoCL lets go of the references of finished commands
 * (and of a released queue) from its own threads, a moment later. */
static cl_uint settled_refs(cl_context ctx, cl_uint want)
{
    cl_uint refs = context_refs(ctx);
    for (int ms = 0; refs != want && ms < 5000; ms++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        refs = context_refs(ctx);
    }
    return refs;
}

/* Uploads and decodes g_info on ctx, which builds (or finds) its program.
 * With `keep` the tensor is returned there, else freed. */
static int try_decode(cl_context ctx, ecf8_cl_tensor **keep)
{
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(ctx, g_dev, 0, &err);
    if (err != CL_SUCCESS) return err;
    ecf8_cl_tensor *t = NULL;
    void *out = malloc(g_info.source_bytes);
    int st = out ? ecf8_cl_tensor_create(ctx, g_dev, q, &g_info, &t) : ECF8_ERR_NOMEM;
    if (!st) st = ecf8_cl_decode_to_host(t, q, out, g_info.source_bytes);
    free(out);
    clReleaseCommandQueue(q);
    if (!st && keep)
        *keep = t;
    else
        ecf8_cl_tensor_free(t);
    return st;
}

static cl_context new_context(void)
{
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return ctx;
}

static void decode_ok(cl_context ctx, ecf8_cl_tensor **keep)
{
    int st = try_decode(ctx, keep);
    if (st) fail_msg("decode: %d %s", st, ecf8_last_error());
}

static void test_release_context_cycles(void **state)
{
    (void)state;
    NEED_DEVICE();
    size_t before = ecf8_cl_cache_entries(NULL);
    for (int cycle = 0; cycle < 3; cycle++) {
        cl_context ctx = new_context();
        decode_ok(ctx, NULL);
        decode_ok(ctx, NULL); /* the second use finds the cached program */
        assert_int_equal(ecf8_cl_cache_entries(ctx), 1);
        assert_int_equal(ecf8_cl_cache_entries(NULL), before + 1);
        assert_true(settled_refs(ctx, 2) > 1); /* the cached program holds the context */
        assert_int_equal(ecf8_cl_release_context(ctx), ECF8_OK);
        assert_int_equal(ecf8_cl_cache_entries(ctx), 0);
        assert_int_equal(ecf8_cl_cache_entries(NULL), before);
        assert_int_equal(settled_refs(ctx, 1), 1);
        assert_int_equal(ecf8_cl_release_context(ctx), ECF8_OK); /* nothing left: harmless */
        clReleaseContext(ctx);
    }
    assert_int_equal(ecf8_cl_release_context(NULL), ECF8_ERR_ARGUMENT);
}

/* Dropping the cache's reference leaves objects made earlier working: they
 * hold their own, and the context goes when they are freed. */
static void test_release_context_keeps_live_objects(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_context ctx = new_context();
    ecf8_cl_tensor *t = NULL;
    decode_ok(ctx, &t);
    assert_int_equal(ecf8_cl_release_context(ctx), ECF8_OK);
    assert_int_equal(ecf8_cl_cache_entries(ctx), 0);
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(ctx, g_dev, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    void *out = malloc(g_info.source_bytes);
    assert_int_equal(ecf8_cl_decode_to_host(t, q, out, g_info.source_bytes), ECF8_OK);
    free(out);
    clReleaseCommandQueue(q);
    ecf8_cl_tensor_free(t);
    assert_int_equal(settled_refs(ctx, 1), 1);
    clReleaseContext(ctx);
}

static void test_cache_clear(void **state)
{
    (void)state;
    NEED_DEVICE();
    cl_context a = new_context(), b = new_context();
    decode_ok(a, NULL);
    decode_ok(b, NULL);
    assert_int_equal(ecf8_cl_cache_entries(a), 1);
    assert_int_equal(ecf8_cl_cache_entries(b), 1);
    ecf8_cl_cache_clear();
    assert_int_equal(ecf8_cl_cache_entries(NULL), 0);
    assert_int_equal(settled_refs(a, 1), 1);
    assert_int_equal(settled_refs(b, 1), 1);
    ecf8_cl_cache_clear(); /* empty: harmless */
    clReleaseContext(a);
    clReleaseContext(b);
}

/* The build hook hears of every build from source, before and after, and
 * of none that the in-memory cache serves; NULL removes it. */
typedef struct build_log {
    int started, done, open;
    char last[64];
} build_log;

static void on_build(void *user, const char *program, int done)
{
    build_log *l = user;
    if (done) l->done++, l->open--;
    else l->started++, l->open++;
    snprintf(l->last, sizeof l->last, "%s", program);
}

static void test_build_hook(void **state)
{
    (void)state;
    NEED_DEVICE();
    build_log log = {0};
    ecf8_cl_set_build_hook(on_build, &log);
    cl_context ctx = new_context();
    decode_ok(ctx, NULL);
    assert_true(log.started >= 1);
    assert_int_equal(log.started, log.done);
    assert_int_equal(log.open, 0);
    assert_int_equal(strncmp(log.last, "decode_", 7), 0);
    int before = log.started;
    decode_ok(ctx, NULL); /* the same program, from the in-memory cache */
    assert_int_equal(log.started, before);
    ecf8_cl_set_build_hook(NULL, NULL);
    assert_int_equal(ecf8_cl_release_context(ctx), ECF8_OK);
    decode_ok(ctx, NULL); /* built again, unheard */
    assert_int_equal(log.started, before);
    ecf8_cl_release_context(ctx);
    clReleaseContext(ctx);
}

/* Threads filling and releasing the cache at once, each with its own
 * contexts, leave nothing behind. */
static void *thread_cycles(void *arg)
{
    (void)arg;
    for (int cycle = 0; cycle < 2; cycle++) {
        cl_int err;
        cl_context ctx = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
        if (err != CL_SUCCESS) return (void *)"clCreateContext";
        const char *bad = NULL;
        if (try_decode(ctx, NULL)) bad = "decode";
        else if (ecf8_cl_cache_entries(ctx) != 1) bad = "no cache entry";
        else if (ecf8_cl_release_context(ctx) || ecf8_cl_cache_entries(ctx) != 0) bad = "entry kept";
        else if (settled_refs(ctx, 1) != 1) bad = "context reference kept";
        clReleaseContext(ctx);
        if (bad) return (void *)bad;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    NEED_DEVICE();
    size_t before = ecf8_cl_cache_entries(NULL);
    pthread_t th[4];
    for (size_t i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, thread_cycles, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        if (r) fail_msg("thread %zu: %s", i, (const char *)r);
    }
    assert_int_equal(ecf8_cl_cache_entries(NULL), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_context_cycles),
        cmocka_unit_test(test_release_context_keeps_live_objects),
        cmocka_unit_test(test_cache_clear),
        cmocka_unit_test(test_build_hook),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
