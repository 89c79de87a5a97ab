/* test_large.c - tensors past 4 GiB and allocation failure.
 *
 * Always run (seconds, little memory):
 *   - a hand-built container (docs/FORMAT.md) holding a 5 GiB all-zero
 *     F8_E4M3 tensor as a one-symbol code in 10 KB: it opens, its geometry
 *     has element offsets past 2^32, and too-small outputs are refused;
 *   - allocation failure returns ECF8_ERR_NOMEM (or another error), never
 *     an abort: in a forked child under setrlimit(RLIMIT_AS), verify and
 *     decompress of that container (each needs a 5 GiB buffer; inspect
 *     reads the index only and succeeds), encoding a tensor whose payload
 *     does not fit, compressing a file whose tensor cannot be read into memory, and
 *     one whose header cJSON has no memory to parse ("out of memory", not
 *     "not a JSON object").  Skipped under ASan/TSan, which reserve
 *     terabytes of address space and cannot run with RLIMIT_AS.
 *
 * Opt-in (ECF8_TEST_LARGE=1): a real round trip of a sparse safetensors
 * file holding a 5 GiB all-zero F8_E4M3 tensor followed by a small BF16
 * tensor (so its data starts past 4 GiB): compress, verify against the
 * original byte for byte, and decode the big tensor with
 * ecf8_file_read_tensor.  The sparse source costs no disk and the
 * container is 11 MB, but the library needs one tensor-sized buffer to
 * rebuild a tensor (rebuild_source) and the source is read into memory
 * whole (it was mapped when this was measured): measured 2 min 18 s on 2 (busy) cores, peak RSS
 * 10 GiB (compress 43 s, verify 52 s, read 40 s), hence opt-in. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define BIG_ROWS 1280ull
#define BIG_COLS (1ull << 22) /* one chunk per row: the largest chunk allowed */
#define BIG_BYTES (BIG_ROWS * BIG_COLS) /* 5 GiB of F8_E4M3 */

static char work_dir[4096];

static const char *work_path(const char *name)
{
    if (!work_dir[0]) {
        const char *d = tu_temp_dir();
        assert_non_null(d);
        snprintf(work_dir, sizeof work_dir, "%s", d);
    }
    return tu_path(work_dir, name);
}

/* XXH3-64 of n zero bytes, streamed (and remembered: 5 GiB take a while
 * under valgrind). */
static uint64_t hash_zeros(uint64_t n)
{
    static uint64_t cached_n, cached;
    if (cached_n == n) return cached;
    static const uint8_t zeros[1 << 20];
    XXH3_state_t *st = XXH3_createState();
    assert_non_null(st);
    XXH3_64bits_reset(st);
    for (uint64_t left = n; left;) {
        size_t k = left < sizeof zeros ? (size_t)left : sizeof zeros;
        XXH3_64bits_update(st, zeros, k);
        left -= k;
    }
    cached = XXH3_64bits_digest(st);
    cached_n = n;
    XXH3_freeState(st);
    return cached;
}

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The safetensors header of the big tensor alone: u64 length + JSON. */
static size_t big_safetensors_prefix(uint8_t *out, size_t cap)
{
    char json[256];
    int n = snprintf(json, sizeof json,
                     "{\"w.zero\":{\"dtype\":\"F8_E4M3\",\"shape\":[%llu,%llu],"
                     "\"data_offsets\":[0,%llu]}}",
                     BIG_ROWS, BIG_COLS, BIG_BYTES);
    size_t len = (size_t)n;
    while (len % 8) json[len++] = ' ';
    assert_true(8 + len <= cap);
    put64(out, len);
    memcpy(out + 8, json, len);
    return 8 + len;
}

/* Writes an .ecf8 holding the 5 GiB zero tensor as a one-symbol byte code
 * (FORMAT.md sections 2-4): 1280 chunks of one row each, no coded bits. */
static void write_big_container(const char *path)
{
    uint8_t prefix[256];
    size_t prefix_len = big_safetensors_prefix(prefix, sizeof prefix);
    const uint64_t n_chunks = BIG_ROWS;
    const size_t lengths_bytes = 128, offsets_at = 128;
    const size_t payload_bytes = offsets_at + 8 * (n_chunks + 1) + 8;
    const size_t payload_at = 64, meta_at = (payload_at + payload_bytes + 63) / 64 * 64;
    const char *name = "w.zero", *dtype = "F8_E4M3";
    const size_t blob_bytes = strlen(name) + strlen(dtype) + prefix_len;
    const size_t meta_bytes = 32 + 48 + 192 + blob_bytes, size = meta_at + meta_bytes;
    uint8_t *f = calloc(1, size);
    assert_non_null(f);

    uint8_t *payload = f + payload_at; /* offsets and the 8 pad bytes stay 0 */
    (void)lengths_bytes;
    payload[0] = 1; /* symbol 0 (the byte 0x00) has length 1, all others 0 */

    uint8_t *m = f + meta_at, *src = m + 32, *t = src + 48, *blob = t + 192;
    put32(m, 1);
    put32(m + 4, 0);
    put64(m + 8, 1);
    put64(m + 16, 32 + 48 + 192);
    put64(m + 24, blob_bytes);
    memcpy(blob, name, strlen(name));
    memcpy(blob + strlen(name), dtype, strlen(dtype));
    memcpy(blob + strlen(name) + strlen(dtype), prefix, prefix_len);
    put64(src, 0); /* empty path: a single-file container */
    put64(src + 8, 0);
    put64(src + 16, strlen(name) + strlen(dtype));
    put64(src + 24, prefix_len);
    put64(src + 32, prefix_len + BIG_BYTES);
    put32(src + 40, 0);
    put32(src + 44, 1);
    put64(t, 0);
    put32(t + 8, (uint32_t)strlen(name));
    put32(t + 12, (uint32_t)strlen(dtype));
    put64(t + 16, strlen(name));
    t[24] = ECF8_DTYPE_F8_E4M3;
    t[25] = ECF8_SPLIT_BYTE;
    t[26] = 2;
    t[27] = 0; /* code_bits 0: one-symbol code */
    put64(t + 32, BIG_ROWS);
    put64(t + 40, BIG_COLS);
    put64(t + 96, prefix_len);
    put64(t + 104, BIG_BYTES);
    put64(t + 112, payload_at);
    put64(t + 120, payload_bytes);
    put64(t + 128, BIG_ROWS);
    put64(t + 136, BIG_COLS);
    put64(t + 144, 1);
    put64(t + 152, BIG_COLS);
    put64(t + 160, 8);
    put64(t + 168, hash_zeros(BIG_BYTES));

    static const uint8_t magic[8] = {0x89, 'E', 'C', 'F', '8', '\r', '\n', 0x1a};
    memcpy(f, magic, 8);
    f[8] = 1;
    put64(f + 16, size);
    put64(f + 24, meta_at);
    put64(f + 32, meta_bytes);
    put64(f + 40, XXH3_64bits(m, meta_bytes));
    put64(f + 56, XXH3_64bits(f, 56));
    assert_int_equal(tu_write_file(path, f, size), 0);
    free(f);
}

static void test_big_container_geometry(void **state)
{
    (void)state;
    const char *path = work_path("big-zero.ecf8");
    write_big_container(path);
    ecf8_file *f;
    int st = ecf8_file_open(path, &f);
    assert_int_equal(st, ECF8_OK);
    assert_true(ecf8_file_size(f) < 16384);
    ecf8_tensor_info t;
    assert_int_equal(ecf8_file_tensor(f, 0, &t), ECF8_OK);
    assert_int_equal(t.source_bytes, BIG_BYTES);
    assert_int_equal(t.n_elements, BIG_BYTES);
    assert_int_equal(t.split, ECF8_SPLIT_BYTE);
    assert_int_equal(t.stream.code_bits, 0);
    assert_int_equal(t.stream.n_chunks, BIG_ROWS);
    assert_int_equal(ecf8_stream_validate(&t.stream), ECF8_OK);
    /* Element offsets past 2^32 are computed in 64 bits. */
    assert_int_equal(ecf8_chunk_start(&t.stream, BIG_ROWS - 1), (BIG_ROWS - 1) * BIG_COLS);
    assert_int_equal(ecf8_chunk_elements(&t.stream, BIG_ROWS - 1), BIG_COLS);
    uint64_t total = 0;
    for (uint64_t c = 0; c < t.stream.n_chunks; c++) total += ecf8_chunk_elements(&t.stream, c);
    assert_int_equal(total, BIG_BYTES);
    uint8_t prefix[256];
    assert_int_equal(ecf8_file_source_bytes(f, 0), big_safetensors_prefix(prefix, sizeof prefix) + BIG_BYTES);

    /* Too-small outputs are refused before anything is written. */
    uint8_t small[64];
    memset(small, 0x77, sizeof small);
    assert_int_equal(ecf8_file_read_tensor(f, 0, small, sizeof small, 1), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_stream_decode(&t.stream, small, sizeof small, 1), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_stream_decode_reference(&t.stream, small, sizeof small), ECF8_ERR_ARGUMENT);
    for (size_t i = 0; i < sizeof small; i++) assert_int_equal(small[i], 0x77);
    ecf8_file_close(f);
    unlink(path);
}

/* ---- allocation failure in a child under RLIMIT_AS ----------------------- */
static uint64_t address_space_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (fp) {
        if (fscanf(fp, "%lu", &pages) != 1) pages = 0;
        fclose(fp);
    }
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int limit_address_space(uint64_t headroom)
{
    uint64_t now = address_space_bytes();
    if (!now) return 0;
    struct rlimit rl = {.rlim_cur = now + headroom, .rlim_max = now + headroom};
    return setrlimit(RLIMIT_AS, &rl) == 0;
}

/* Runs fn in a child; the child's exit code is fn's (0 = as expected).
 * A signal (abort, segfault) in the child fails the test. */
static void in_limited_child(int (*fn)(void), const char *what)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fn());
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (WIFSIGNALED(ws)) fail_msg("%s: child killed by signal %d (abort instead of an error?)", what, WTERMSIG(ws));
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0) fail_msg("%s: child check %d failed", what, WEXITSTATUS(ws));
}

static int expect_failure(int st, int code)
{
    if (st == ECF8_OK) return code;
    if (!ecf8_last_error()[0]) return 100 + code;
    fprintf(stderr, "  (expected) %s: %s\n", ecf8_status_string(st), ecf8_last_error());
    return 0;
}

static char big_path[4096], out_path[4096], sparse_path[4096];

static int child_big_container(void)
{
    if (!limit_address_space(1ull << 30)) return 90; /* 1 GiB for a 5 GiB tensor */
    int r;
    if ((r = expect_failure(ecf8_verify_path(big_path, NULL, 1), 1))) return r;
    if (ecf8_verify_path(big_path, NULL, 1) != ECF8_ERR_NOMEM) return 2;
    if ((r = expect_failure(ecf8_decompress_path(big_path, out_path, 1), 3))) return r;
    if (access(out_path, F_OK) == 0) return 4; /* a failed run leaves no output */
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1;
    ecf8_report rep;
    /* inspect reads the index only: a 5 GiB tensor costs it nothing. */
    if (ecf8_inspect_path(big_path, &o, &rep) != ECF8_OK || rep.n_tensors != 1) return 5;
    ecf8_report_free(&rep);
    return 0;
}

static int child_encode(void)
{
    /* 64 Mi elements from 16 byte values: a ~32 MiB byte-split payload. */
    const size_t n = 64u << 20;
    uint8_t *w = malloc(n);
    if (!w) return 91;
    uint64_t s = 7;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = tu_rand(&s) & 0x0f0f0f0f0f0f0f0full;
        memcpy(w + i, &x, 8);
    }
    if (!limit_address_space(8u << 20)) return 90;
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1;
    o.split = ECF8_SPLIT_BYTE;
    ecf8_encoded *enc = NULL;
    int st = ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, w, 1024, n / 1024, &o, &enc);
    if (st != ECF8_ERR_NOMEM) return 1;
    if (enc) return 2;
    fprintf(stderr, "  (expected) %s: %s\n", ecf8_status_string(st), ecf8_last_error());
    free(w);
    return 0;
}

static int child_compress_unreadable(void)
{
    if (!limit_address_space(64u << 20)) return 90; /* no room to read its 512 MiB tensor */
    int r = expect_failure(ecf8_compress_path(sparse_path, out_path, NULL), 1);
    if (r) return r;
    return access(out_path, F_OK) == 0 ? 2 : 0;
}

static char header_path[4096];

/* A header of 400 K empty tensors is 25 MB of JSON that asks for ~50 MB of
 * tensor records: with 48 MiB to spare the parse fails for want of memory,
 * which must read "out of memory", not "header is not a JSON object". */
static int child_header_parse(void)
{
    if (!limit_address_space(48u << 20)) return 90;
    int r = expect_failure(ecf8_compress_path(header_path, out_path, NULL), 1);
    if (r) return r;
    if (!strstr(ecf8_last_error(), "out of memory parsing the")) return 2;
    return access(out_path, F_OK) == 0 ? 3 : 0;
}

static void write_big_header(const char *path)
{
    const size_t entries = 400000;
    char *text = malloc(entries * 64 + 64);
    assert_non_null(text);
    size_t len = (size_t)sprintf(text, "{");
    for (size_t i = 0; i < entries; i++)
        len += (size_t)sprintf(text + len, "%s\"t%07zu\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[0,0]}",
                               i ? "," : "", i);
    len += (size_t)sprintf(text + len, "}");
    while (len % 8) text[len++] = ' ';
    uint8_t head[8];
    put64(head, len);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, 8, f), 8);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    free(text);
}

static void test_allocation_failure(void **state)
{
    (void)state;
    if (UNDER_SANITIZER) {
        skip(); /* RLIMIT_AS and sanitizer shadow memory do not mix */
    }
    snprintf(big_path, sizeof big_path, "%s", work_path("big-zero.ecf8"));
    snprintf(out_path, sizeof out_path, "%s", work_path("out.bin"));
    snprintf(sparse_path, sizeof sparse_path, "%s", work_path("sparse-512m.safetensors"));
    write_big_container(big_path);
    in_limited_child(child_big_container, "verify/decompress of a 5 GiB tensor, inspect of its index");
    in_limited_child(child_encode, "encode with no room for the payload");

    /* A 512 MiB sparse safetensors file (one zero F8 tensor). */
    uint8_t prefix[256];
    char json[200];
    int n = snprintf(json, sizeof json,
                     "{\"z\":{\"dtype\":\"F8_E4M3\",\"shape\":[512,1048576],\"data_offsets\":[0,%llu]}}",
                     512ull << 20);
    size_t len = (size_t)n;
    while (len % 8) json[len++] = ' ';
    put64(prefix, len);
    memcpy(prefix + 8, json, len);
    int fd = open(sparse_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, prefix, 8 + len), (ssize_t)(8 + len));
    assert_int_equal(ftruncate(fd, (off_t)(8 + len + (512ull << 20))), 0);
    close(fd);
    in_limited_child(child_compress_unreadable, "compress of a tensor too large to read into memory");
    snprintf(header_path, sizeof header_path, "%s", work_path("big-header.safetensors"));
    write_big_header(header_path);
    in_limited_child(child_header_parse, "compress of a header too large to parse in memory");
    unlink(header_path);
    unlink(sparse_path);
    unlink(big_path);
}

/* ---- opt-in: a real > 4 GiB round trip ------------------------------------ */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_large_roundtrip(void **state)
{
    (void)state;
    const char *env = getenv("ECF8_TEST_LARGE");
    if (!env || !*env || !strcmp(env, "0")) {
        print_message("set ECF8_TEST_LARGE=1 for the 5 GiB round trip\n");
        skip();
    }
    char src[4096], ecf[4096];
    snprintf(src, sizeof src, "%s", work_path("large.safetensors"));
    snprintf(ecf, sizeof ecf, "%s", work_path("large.ecf8"));

    /* Sparse source: header, 5 GiB hole (the zero tensor), then 1 MiB of
     * BF16 data that starts past 4 GiB. */
    const uint64_t small_elems = 1u << 19, small_bytes = 2 * small_elems;
    char json[512];
    int n = snprintf(json, sizeof json,
                     "{\"a.zero\":{\"dtype\":\"F8_E4M3\",\"shape\":[%llu,%llu],\"data_offsets\":[0,%llu]},"
                     "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[512,1024],\"data_offsets\":[%llu,%llu]}}",
                     BIG_ROWS, BIG_COLS, BIG_BYTES, BIG_BYTES, BIG_BYTES + small_bytes);
    size_t len = (size_t)n;
    while (len % 8) json[len++] = ' ';
    uint8_t hdr[8];
    put64(hdr, len);
    uint8_t *bf16 = malloc(small_bytes);
    assert_non_null(bf16);
    tu_fill_weights_e4m3(bf16, small_bytes, 5); /* arbitrary bytes with skewed high bytes */
    int fd = open(src, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hdr, 8), 8);
    assert_int_equal(write(fd, json, len), (ssize_t)len);
    off_t data = (off_t)(8 + len);
    assert_int_equal(pwrite(fd, bf16, small_bytes, data + (off_t)BIG_BYTES), (ssize_t)small_bytes);
    close(fd);

    double t0 = now_s();
    assert_int_equal(ecf8_compress_path(src, ecf, NULL), ECF8_OK);
    double t1 = now_s();
    struct stat sb;
    assert_int_equal(stat(ecf, &sb), 0);
    assert_true(sb.st_size < (64 << 20));
    assert_int_equal(ecf8_verify_path(ecf, src, 0), ECF8_OK);
    double t2 = now_s();

    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    ecf8_tensor_info t;
    assert_int_equal(ecf8_file_tensor(f, 0, &t), ECF8_OK);
    assert_int_equal(t.source_bytes, BIG_BYTES);
    assert_int_not_equal(t.split, ECF8_SPLIT_STORED);
    uint8_t *big = malloc(BIG_BYTES);
    assert_non_null(big);
    big[BIG_BYTES - 1] = 0x55;
    assert_int_equal(ecf8_file_read_tensor(f, 0, big, BIG_BYTES, 0), ECF8_OK);
    assert_int_equal(big[BIG_BYTES - 1], 0);
    assert_int_equal(big[(1ull << 32) + 12345], 0);
    free(big);
    assert_int_equal(ecf8_file_tensor(f, 1, &t), ECF8_OK);
    uint8_t *back = malloc(small_bytes);
    assert_int_equal(ecf8_file_read_tensor(f, 1, back, small_bytes, 0), ECF8_OK);
    assert_memory_equal(back, bf16, small_bytes);
    free(back);
    ecf8_file_close(f);
    double t3 = now_s();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    print_message("5 GiB round trip: container %lld bytes; compress %.1f s, verify %.1f s, "
                  "read %.1f s; peak RSS %.2f GiB\n",
                  (long long)sb.st_size, t1 - t0, t2 - t1, t3 - t2,
                  (double)ru.ru_maxrss / (1024.0 * 1024.0));
    free(bf16);
    unlink(ecf);
    unlink(src);
}

static int teardown(void **state)
{
    (void)state;
    if (work_dir[0]) rmdir(work_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocation_failure), /* first: no pool threads yet */
        cmocka_unit_test(test_big_container_geometry),
        cmocka_unit_test(test_large_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
