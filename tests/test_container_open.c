/* test_container_open.c - reading containers: ecf8_inspect_path agrees with
 * the container, and ecf8_file_open_memory agrees with the path reader
 * (tensors, payload offsets, decoded bytes, and the same errors with the
 * same detail on every bad input, golden file and truncation). */
#include "testutil.h"

#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* ecf8_inspect_path on both kinds of file agrees with the container. */
static void test_inspect(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[0]);
    char *ecf = tu_strdup(tu_path(d, "i.ecf8"));
    tu_compress_ok(src, ecf, NULL);
    ecf8_report a, b;
    assert_int_equal(ecf8_inspect_path(src, NULL, &a), ECF8_OK);
    assert_int_equal(ecf8_inspect_path(ecf, NULL, &b), ECF8_OK);
    assert_int_equal(a.is_container, 0);
    assert_int_equal(b.is_container, 1);
    assert_int_equal(a.n_tensors, b.n_tensors);
    assert_int_equal(a.source_bytes, b.source_bytes);
    struct stat sb;
    assert_int_equal(stat(ecf, &sb), 0);
    assert_int_equal(b.file_bytes, (uint64_t)sb.st_size);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    for (size_t i = 0; i < a.n_tensors; i++) {
        assert_string_equal(a.tensors[i].name, b.tensors[i].name);
        ecf8_tensor_info info;
        ecf8_file_tensor(f, i, &info);
        assert_int_equal(b.tensors[i].split, info.split);
        assert_int_equal(b.tensors[i].compressed_bytes, info.payload_bytes);
        /* The prediction for the source is auto's choice. */
        assert_int_equal(a.tensors[i].split, info.split);
    }
    ecf8_file_close(f);
    ecf8_report_free(&a);
    ecf8_report_free(&b);
    tu_remove_tree(d);
    free(d), free(ecf);
}

/* ---- containers in memory ---------------------------------------------------- */
/* A tensor of a memory-opened file equals the path reader's, its payload at
 * the same offset from the start of the container. */
static void assert_same_tensor(const ecf8_tensor_info *a, const uint8_t *base_a,
                               const ecf8_tensor_info *b, const uint8_t *base_b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->dtype_name, b->dtype_name);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->split, b->split);
    assert_int_equal(a->ndim, b->ndim);
    assert_memory_equal(a->shape, b->shape, sizeof a->shape);
    assert_int_equal(a->n_elements, b->n_elements);
    assert_int_equal(a->source_bytes, b->source_bytes);
    assert_int_equal(a->payload_bytes, b->payload_bytes);
    assert_int_equal(a->checksum, b->checksum);
    assert_int_equal(a->source_file, b->source_file);
    assert_int_equal((const uint8_t *)a->payload - base_a, (const uint8_t *)b->payload - base_b);
    if (a->split == ECF8_SPLIT_STORED) return;
    const ecf8_stream *x = &a->stream, *y = &b->stream;
    assert_int_equal(x->code_bits, y->code_bits);
    assert_int_equal(x->rows, y->rows);
    assert_int_equal(x->cols, y->cols);
    assert_int_equal(x->chunk_rows, y->chunk_rows);
    assert_int_equal(x->chunk_cols, y->chunk_cols);
    assert_int_equal(x->n_chunks, y->n_chunks);
    assert_int_equal(x->coded_bytes, y->coded_bytes);
    assert_memory_equal(x->lengths, y->lengths, sizeof x->lengths);
    assert_memory_equal(x->chunk_offsets, y->chunk_offsets, (x->n_chunks + 1) * sizeof(uint64_t));
    assert_int_equal(x->coded - base_a, y->coded - base_b);
}

/* Both index formats of every real slice: the same sources, tensors and
 * decoded bytes from memory as from the path, and the caller's bytes are
 * only read. */
static void test_open_memory_matches_path(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    for (size_t s = 0; s < sizeof TU_SLICES / sizeof TU_SLICES[0]; s++)
        for (int plain = 0; plain < 2; plain++) {
            char *ecf = tu_strdup(tu_path(d, "m.ecf8"));
            ecf8_compress_options o;
            ecf8_compress_options_init(&o);
            o.plain_index = plain;
            tu_compress_ok(tu_data_path(TU_SLICES[s]), ecf, &o);
            size_t size;
            uint8_t *mem = tu_read_file(ecf, &size), *copy = malloc(size);
            assert_non_null(mem);
            assert_non_null(copy);
            memcpy(copy, mem, size);
            ecf8_file *fp = NULL, *fm = NULL;
            assert_int_equal(ecf8_file_open(ecf, &fp), ECF8_OK);
            assert_int_equal(ecf8_file_open_memory(mem, size, &fm), ECF8_OK);
            assert_int_equal(ecf8_file_size(fm), size);
            assert_int_equal(ecf8_file_is_directory(fm), ecf8_file_is_directory(fp));
            assert_int_equal(ecf8_file_source_count(fm), ecf8_file_source_count(fp));
            size_t pa, pb;
            const uint8_t *prefix = ecf8_file_source_prefix(fm, 0, &pa);
            assert_int_equal(ecf8_file_source_bytes(fm, 0), ecf8_file_source_bytes(fp, 0));
            assert_non_null(ecf8_file_source_prefix(fp, 0, &pb));
            assert_int_equal(pa, pb);
            assert_memory_equal(prefix, ecf8_file_source_prefix(fp, 0, &pb), pa);
            /* A format 1.0 prefix points into the caller's bytes, not a copy. */
            if (plain) assert_true(prefix >= mem && prefix + pa <= mem + size);
            ecf8_tensor_info first;
            assert_int_equal(ecf8_file_tensor(fp, 0, &first), ECF8_OK);
            const uint8_t *base_p = (const uint8_t *)first.payload;
            assert_int_equal(ecf8_file_tensor(fm, 0, &first), ECF8_OK);
            const uint8_t *base_m = (const uint8_t *)first.payload;
            assert_int_equal(ecf8_file_tensor_count(fm), ecf8_file_tensor_count(fp));
            for (size_t i = 0; i < ecf8_file_tensor_count(fp); i++) {
                ecf8_tensor_info a, b;
                assert_int_equal(ecf8_file_tensor(fm, i, &a), ECF8_OK);
                assert_int_equal(ecf8_file_tensor(fp, i, &b), ECF8_OK);
                assert_same_tensor(&a, base_m, &b, base_p);
                assert_true((const uint8_t *)a.payload >= mem &&
                            (const uint8_t *)a.payload + a.payload_bytes <= mem + size);
                uint8_t *x = malloc(a.source_bytes + 1), *y = malloc(b.source_bytes + 1);
                assert_int_equal(ecf8_file_read_tensor(fm, i, x, a.source_bytes, 0), ECF8_OK);
                assert_int_equal(ecf8_file_read_tensor(fp, i, y, b.source_bytes, 0), ECF8_OK);
                assert_memory_equal(x, y, a.source_bytes);
                free(x), free(y);
            }
            ecf8_file_close(fm);
            ecf8_file_close(fp);
            assert_memory_equal(mem, copy, size); /* read only, and closing frees nothing of it */
            free(mem), free(copy);
            remove(ecf);
            free(ecf);
        }
    tu_remove_tree(d);
    free(d);
}

/* Opens `bytes` both ways: the path reader on a file holding them and
 * ecf8_file_open_memory on an aligned copy must agree on the status and the
 * detail. */
static void assert_open_agrees(const char *dir, const char *what, const uint8_t *bytes, size_t size)
{
    const char *path = tu_path(dir, "cut.ecf8");
    assert_int_equal(tu_write_file(path, bytes, size), 0);
    ecf8_file *fp = NULL, *fm = NULL;
    int sp = ecf8_file_open(path, &fp);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ecf8_last_error());
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    if (size) memcpy(copy, bytes, size);
    int sm = ecf8_file_open_memory(copy, size, &fm);
    if (sp != sm || strcmp(msg, ecf8_last_error()))
        fail_msg("%s (%zu bytes): path %d '%s', memory %d '%s'", what, size, sp, msg, sm,
                 ecf8_last_error());
    assert_true(sp ? fp == NULL && fm == NULL : fp != NULL && fm != NULL);
    ecf8_file_close(fp);
    ecf8_file_close(fm);
    free(copy);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Every bad-input file, every golden container and truncations of both
 * index formats: ecf8_file_open_memory fails (or succeeds) exactly as
 * ecf8_file_open does, with the same detail. */
static void test_open_memory_same_errors(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *dirs[] = {"bad", "golden"};
    size_t checked = 0;
    for (size_t k = 0; k < 2; k++) {
        char *dir_path = tu_strdup(tu_data_path(dirs[k]));
        DIR *dir = opendir(dir_path);
        assert_non_null(dir);
        for (struct dirent *e; (e = readdir(dir));) {
            if (!has_suffix(e->d_name, ".ecf8")) continue;
            size_t size;
            uint8_t *bytes = tu_read_file(tu_path(dir_path, e->d_name), &size);
            assert_true(bytes || size == 0);
            assert_open_agrees(d, e->d_name, bytes, size);
            free(bytes);
            checked++;
        }
        closedir(dir);
        free(dir_path);
    }
    assert_true(checked > 60);
    for (int plain = 0; plain < 2; plain++) {
        char *ecf = tu_strdup(tu_path(d, "t.ecf8"));
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.plain_index = plain;
        tu_compress_ok(tu_data_path(TU_SLICES[0]), ecf, &o);
        size_t size;
        uint8_t *full = tu_read_file(ecf, &size);
        assert_non_null(full);
        /* Every length through the header, then a spread over the rest,
         * the index at the end included. */
        for (size_t n = 0; n <= size; n += n < 80 ? 1 : n > size - 600 ? 37 : size / 97)
            assert_open_agrees(d, plain ? "truncated format 1.0" : "truncated format 1.1", full, n);
        assert_open_agrees(d, "whole", full, size);
        free(full);
        remove(ecf);
        free(ecf);
    }
    tu_remove_tree(d);
    free(d);
}

/* Arguments only the memory opener has. */
static void test_open_memory_arguments(void **state)
{
    (void)state;
    ecf8_file *f = (ecf8_file *)&f;
    assert_int_equal(ecf8_file_open_memory(NULL, 16, &f), ECF8_ERR_ARGUMENT);
    assert_null(f);
    uint64_t words[16] = {0};
    assert_int_equal(ecf8_file_open_memory(words, sizeof words, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_file_open_memory((const uint8_t *)words + 1, 64, &f), ECF8_ERR_ARGUMENT);
    assert_non_null(strstr(ecf8_last_error(), "aligned"));
    /* NULL and 0 is an empty container, as an empty file is. */
    assert_int_equal(ecf8_file_open_memory(NULL, 0, &f), ECF8_ERR_CORRUPT);
    assert_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_open_memory_matches_path),
        cmocka_unit_test(test_open_memory_same_errors),
        cmocka_unit_test(test_open_memory_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
