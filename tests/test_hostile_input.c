/* test_hostile_input.c - inputs that change while they are read or
 * encoded, and inputs that are not regular files: each is a clean error
 * (ECF8_ERR_IO, a message saying what happened), never a crash, a hang or
 * a container made from bytes that were not there.
 *
 * The races are made deterministic with the library's test hooks: the file
 * is changed between the loader's first fstat and its reads, the elements
 * between the encoder's size pass and its write pass.  tests/cli_hostile_input.sh
 * races a real writer against the CLI. */
#include "testutil.h"

#include "internal.h"
#include "io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *dup_path(const char *p)
{
    char *s = strdup(p);
    assert_non_null(s);
    return s;
}

static void expect_error(int st, int want, const char *needle)
{
    if (st != want || !strstr(ecf8_last_error(), needle))
        fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, ecf8_last_error(), needle);
}

/* A copy of a real slice in a fresh directory, its mtime set far in the
 * past: a write by a hook then changes the mtime even within the kernel's
 * coarse timestamp tick. */
static char *fresh_input(const char *dir, const char *name)
{
    char *path = dup_path(tu_path(dir, name));
    assert_int_equal(tu_copy_file(tu_data_path("minilm-slice-e4m3.safetensors"), path), 0);
    const struct timespec past[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, past, 0), 0);
    return path;
}

static void hook_truncate(int fd, const char *path)
{
    (void)fd;
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
}

static void hook_rewrite(int fd, const char *path)
{
    (void)fd;
    int w = open(path, O_WRONLY);
    assert_true(w >= 0);
    static const uint8_t junk[4096] = {1, 2, 3};
    assert_int_equal(pwrite(w, junk, sizeof junk, 1 << 20), (ssize_t)sizeof junk);
    close(w);
}

static void hook_grow(int fd, const char *path)
{
    (void)fd;
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputs("more", f);
    fclose(f);
}

static void test_loader_file_shrinks(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    char *path = fresh_input(dir, "in.safetensors");
    ecf8_file_copy copy;
    ecf8_test_hook_before_read = hook_truncate;
    int st = ecf8_file_copy_read(path, &copy);
    ecf8_test_hook_before_read = NULL;
    expect_error(st, ECF8_ERR_IO, "file shrank while being read");
    assert_null(copy.data);
    free(path);
    tu_remove_tree(dir);
}

static void test_loader_file_rewritten_or_grown(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    void (*hooks[])(int, const char *) = {hook_rewrite, hook_grow};
    for (size_t i = 0; i < 2; i++) {
        char *path = fresh_input(dir, "in.safetensors");
        ecf8_file_copy copy;
        ecf8_test_hook_before_read = hooks[i];
        int st = ecf8_file_copy_read(path, &copy);
        ecf8_test_hook_before_read = NULL;
        expect_error(st, ECF8_ERR_IO, "input changed while being read");
        assert_null(copy.data);
        free(path);
    }
    tu_remove_tree(dir);
}

static void test_loader_reads_whole_file(void **state)
{
    (void)state;
    size_t size;
    uint8_t *want = tu_read_file(tu_data_path("minilm-slice-e4m3.safetensors"), &size);
    assert_non_null(want);
    ecf8_file_copy copy;
    assert_int_equal(ecf8_file_copy_read(tu_data_path("minilm-slice-e4m3.safetensors"), &copy), 0);
    assert_int_equal(copy.size, size);
    assert_true((uintptr_t)copy.data % 64 == 0);
    assert_memory_equal(copy.data, want, size);
    ecf8_file_copy_free(&copy);
    assert_null(copy.data);
    free(want);
}

/* Through the public calls: the message names the file and what happened. */
static void test_compress_and_open_see_the_change(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    char *in = fresh_input(dir, "in.safetensors"), *out = dup_path(tu_path(dir, "out.ecf8"));
    ecf8_test_hook_before_read = hook_truncate;
    int st = ecf8_compress_path(in, out, NULL);
    ecf8_test_hook_before_read = NULL;
    expect_error(st, ECF8_ERR_IO, "file shrank while being read");
    assert_non_null(strstr(ecf8_last_error(), in));
    assert_false(tu_exists(out));
    assert_int_equal(tu_count_tmp_files(dir), 0);

    free(in);
    in = fresh_input(dir, "in.safetensors");
    assert_int_equal(tu_compress_over(in, out, NULL), 0);
    ecf8_file *f = NULL;
    ecf8_test_hook_before_read = hook_truncate;
    st = ecf8_file_open(out, &f);
    ecf8_test_hook_before_read = NULL;
    expect_error(st, ECF8_ERR_IO, "file shrank while being read");
    assert_null(f);
    ecf8_test_hook_before_read = hook_grow;
    st = ecf8_verify_path(out, in, 0);
    ecf8_test_hook_before_read = NULL;
    expect_error(st, ECF8_ERR_IO, "input changed while being read");

    /* decompress and verify read the payloads one at a time, after the
     * index: a rewrite of one meanwhile, or a truncation, is named as such
     * (not as the checksum mismatch it also causes). */
    char *rebuilt = dup_path(tu_path(dir, "rebuilt.safetensors"));
    void (*hooks[])(int, const char *) = {hook_rewrite, hook_truncate};
    const char *says[] = {"input changed while being read", "file shrank while being read"};
    for (size_t i = 0; i < 2; i++) {
        free(in);
        in = fresh_input(dir, "in.safetensors");
        assert_int_equal(tu_compress_over(in, out, NULL), 0);
        const struct timespec past[2] = {{1000000000, 0}, {1000000000, 0}};
        assert_int_equal(utimensat(AT_FDCWD, out, past, 0), 0);
        ecf8_test_hook_before_read = hooks[i];
        st = ecf8_decompress_path(out, rebuilt, 0);
        ecf8_test_hook_before_read = NULL;
        expect_error(st, ECF8_ERR_IO, says[i]);
        assert_false(tu_exists(rebuilt));
        assert_int_equal(tu_compress_over(in, out, NULL), 0);
        assert_int_equal(utimensat(AT_FDCWD, out, past, 0), 0);
        ecf8_test_hook_before_read = hooks[i];
        st = ecf8_verify_path(out, NULL, 0);
        ecf8_test_hook_before_read = NULL;
        expect_error(st, ECF8_ERR_IO, says[i]);
    }
    assert_int_equal(tu_count_tmp_files(dir), 0);
    free(rebuilt);
    free(in);
    free(out);
    tu_remove_tree(dir);
}

static void test_fifo_is_not_read(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    char *fifo = dup_path(tu_path(dir, "pipe.safetensors"));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    ecf8_file_copy copy;
    expect_error(ecf8_file_copy_read(fifo, &copy), ECF8_ERR_IO, "not a regular file");
    ecf8_file *f = NULL;
    expect_error(ecf8_file_open(fifo, &f), ECF8_ERR_IO, "not a regular file");
    ecf8_report r;
    expect_error(ecf8_inspect_path(fifo, NULL, &r), ECF8_ERR_IO, "not a regular file");
    free(fifo);
    tu_remove_tree(dir);
}

/* ---- the encoder's write pass against elements that changed ------------- */
static uint8_t g_new_value;
static size_t g_change_count;

static void hook_change_elements(const void *data, uint64_t bytes)
{
    size_t n = g_change_count < bytes ? g_change_count : (size_t)bytes;
    memset((void *)data, g_new_value, n); /* the test owns the buffer */
}

/* A tensor of up to 1 MiB is coded in one pass (checked against its
 * histogram's bits), a larger one in a size pass and a write pass: both. */
static void elements_change(size_t rows);

static void test_encoder_elements_change_between_passes(void **state)
{
    (void)state;
    elements_change(64);  /* 256 KiB: one pass */
    elements_change(512); /* 2 MiB: two passes */
}

static void elements_change(size_t rows)
{
    const size_t cols = 4096, n = rows * cols;
    uint8_t *w = malloc(n);
    assert_non_null(w);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = ECF8_SPLIT_BYTE;
    o.threads = 2;
    for (int kind = 0; kind < 2; kind++) {
        tu_fill_weights_e4m3(w, n, 7);
        uint64_t hist[256] = {0};
        for (size_t i = 0; i < n; i++) hist[w[i]]++;
        /* kind 0: a byte that never occurs (no code word); kind 1: the
         * rarest byte that does (the longest word), over a whole chunk so
         * that the chunk outgrows its sized space. */
        int pick = -1;
        for (int v = 0; v < 256; v++) {
            if (kind == 0 && hist[v] == 0) pick = v;
            if (kind == 1 && hist[v] && (pick < 0 || hist[v] < hist[pick])) pick = v;
        }
        assert_true(pick >= 0);
        g_new_value = (uint8_t)pick;
        g_change_count = kind == 0 ? 1 : cols;
        ecf8_encoded *enc = NULL;
        ecf8_test_hook_between_encode_passes = hook_change_elements;
        int st = ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, w, rows, cols, &o, &enc);
        ecf8_test_hook_between_encode_passes = NULL;
        expect_error(st, ECF8_ERR_IO, "input changed during compression");
        assert_non_null(strstr(ecf8_last_error(), kind == 0 ? "no word" : "not the size"));
        assert_null(enc);
    }
    /* Unchanged elements still encode (the hook left out). */
    tu_fill_weights_e4m3(w, n, 7);
    ecf8_encoded *enc = NULL;
    assert_int_equal(ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, w, rows, cols, &o, &enc), 0);
    ecf8_encoded_free(enc);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_file_shrinks),
        cmocka_unit_test(test_loader_file_rewritten_or_grown),
        cmocka_unit_test(test_loader_reads_whole_file),
        cmocka_unit_test(test_compress_and_open_see_the_change),
        cmocka_unit_test(test_fifo_is_not_read),
        cmocka_unit_test(test_encoder_elements_change_between_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
