/* test_outputs.c - what compress and decompress may write, and how: verify
 * finds a mismatch, outputs are all or nothing (no partial file, no
 * temporary left behind), never a link, a device, a FIFO or a directory, an
 * existing file only with overwrite; the public output-file API under the
 * same rules; ecf8_remove_temporary_files as a signal handler uses it. */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- verify and outputs ------------------------------------------------------------ */
static void test_verify_detects_mismatch(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[1]);
    char *ecf = tu_strdup(tu_path(d, "v.ecf8")), *orig = tu_strdup(tu_path(d, "orig.safetensors"));
    tu_compress_ok(src, ecf, NULL);
    size_t n;
    uint8_t *b = tu_read_file(src, &n);
    size_t flips[] = {0, 7, 8, 500, n / 2, n - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        b[flips[i]] ^= 0x10;
        assert_int_equal(tu_write_file(orig, b, n), 0);
        assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_ERR_MISMATCH);
        char want[64];
        snprintf(want, sizeof want, "at byte %zu", flips[i]);
        assert_non_null(strstr(ecf8_last_error(), want));
        assert_non_null(strstr(ecf8_last_error(), orig));
        b[flips[i]] ^= 0x10;
    }
    assert_int_equal(tu_write_file(orig, b, n - 1), 0); /* shorter */
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_ERR_MISMATCH);
    uint8_t *longer = malloc(n + 3);
    memcpy(longer, b, n);
    memset(longer + n, 0, 3);
    assert_int_equal(tu_write_file(orig, longer, n + 3), 0); /* longer */
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_ERR_MISMATCH);
    assert_non_null(strstr(ecf8_last_error(), "3 more bytes"));
    assert_int_equal(tu_write_file(orig, "", 0), 0); /* empty */
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_ERR_MISMATCH);
    remove(orig);
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_ERR_IO);
    assert_non_null(strstr(ecf8_last_error(), orig));
    assert_int_equal(ecf8_verify_path(ecf, d, 0), ECF8_ERR_IO); /* a directory */
    /* A different but valid original. */
    assert_int_equal(ecf8_verify_path(ecf, tu_data_path(TU_SLICES[2]), 0), ECF8_ERR_MISMATCH);
    assert_int_equal(tu_write_file(orig, b, n), 0);
    assert_int_equal(ecf8_verify_path(ecf, orig, 0), ECF8_OK);
    free(b), free(longer);
    tu_remove_tree(d);
    free(d), free(ecf), free(orig);
}

/* What may be an output: never a link, a device, a FIFO or a directory
 * (left as they were), an existing file only with overwrite, never "". */
/* The public output files: all or nothing, the same rules. */
static void test_output_api(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *path = tu_strdup(tu_path(d, "y.bin")), *fifo = tu_strdup(tu_path(d, "fifo"));
    ecf8_output *o = NULL;
    assert_int_equal(ecf8_output_open(path, NULL, 0, &o), ECF8_OK);
    assert_int_equal(ecf8_output_write(o, "abc", 3), ECF8_OK);
    assert_int_equal(ecf8_output_write(o, "def", 3), ECF8_OK);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* nothing in place before the commit */
    assert_int_equal(ecf8_output_commit(o), ECF8_OK);
    size_t n = 0;
    uint8_t *got = tu_read_file(path, &n);
    assert_non_null(got);
    assert_int_equal(n, 6);
    assert_memory_equal(got, "abcdef", 6);
    free(got);
    /* An existing file needs overwrite; an aborted one leaves it as it was. */
    assert_int_equal(ecf8_output_open(path, NULL, 0, &o), ECF8_ERR_EXISTS);
    assert_null(o);
    assert_int_equal(ecf8_output_open(path, NULL, 1, &o), ECF8_OK);
    assert_int_equal(ecf8_output_write(o, "x", 1), ECF8_OK);
    ecf8_output_abort(o);
    got = tu_read_file(path, &n);
    assert_non_null(got);
    assert_int_equal(n, 6);
    free(got);
    /* The input itself, a FIFO, an empty name: refused. */
    assert_int_equal(ecf8_output_open(path, path, 1, &o), ECF8_ERR_ARGUMENT);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ecf8_output_open(fifo, NULL, 1, &o), ECF8_ERR_ARGUMENT);
    assert_non_null(strstr(ecf8_last_error(), "not a regular file"));
    assert_int_equal(ecf8_output_open("", NULL, 1, &o), ECF8_ERR_ARGUMENT);
    tu_remove_tree(d);
    free(d), free(path), free(fifo);
}

static void test_output_rules(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[0]);
    char *ecf = tu_strdup(tu_path(d, "r.ecf8")), *target = tu_strdup(tu_path(d, "target"));
    char *link = tu_strdup(tu_path(d, "link")), *fifo = tu_strdup(tu_path(d, "fifo"));
    tu_compress_ok(src, ecf, NULL);
    assert_int_equal(tu_write_file(target, "precious", 8), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.overwrite = 1;
    ecf8_decode_options dopt;
    ecf8_decode_options_init(&dopt);
    dopt.overwrite = 1;
    const char *refused[] = {link, fifo, "/dev/null", d};
    for (size_t i = 0; i < 4; i++) {
        struct stat before, after;
        assert_int_equal(lstat(refused[i], &before), 0);
        assert_int_equal(ecf8_compress_path(src, refused[i], &o), ECF8_ERR_ARGUMENT);
        assert_non_null(strstr(ecf8_last_error(), "not a regular file"));
        assert_int_equal(ecf8_decompress_path_ex(ecf, refused[i], &dopt), ECF8_ERR_ARGUMENT);
        assert_non_null(strstr(ecf8_last_error(), refused[i]));
        assert_int_equal(lstat(refused[i], &after), 0);
        assert_int_equal(after.st_ino, before.st_ino);
        assert_int_equal(after.st_mode, before.st_mode);
    }
    assert_true(tu_files_equal(target, link)); /* the link's target is untouched too */
    /* An existing file: refused by default, replaced with overwrite. */
    assert_int_equal(ecf8_compress_path(src, target, NULL), ECF8_ERR_EXISTS);
    assert_non_null(strstr(ecf8_last_error(), "already exists"));
    assert_int_equal(ecf8_decompress_path(ecf, target, 0), ECF8_ERR_EXISTS);
    uint8_t *kept = tu_read_file(target, NULL);
    assert_int_equal(kept[0], 'p');
    free(kept);
    assert_int_equal(ecf8_decompress_path_ex(ecf, target, &dopt), ECF8_OK);
    assert_true(tu_files_equal(src, target));
    /* A struct_size from before overwrite existed reads overwrite as 0. */
    o.struct_size = ECF8_COMPRESS_OPTIONS_V1_BYTES;
    assert_int_equal(ecf8_compress_path(src, ecf, &o), ECF8_ERR_EXISTS);
    /* Empty names. */
    assert_int_equal(ecf8_compress_path(src, "", NULL), ECF8_ERR_ARGUMENT);
    assert_string_equal(ecf8_last_error(), "empty file name");
    assert_int_equal(ecf8_decompress_path(ecf, "", 0), ECF8_ERR_ARGUMENT);
    assert_string_equal(ecf8_last_error(), "empty file name");
    /* A 250-byte name: its temporary's name is short. */
    char name[251];
    memset(name, 'n', 250);
    name[250] = '\0';
    char *longname = tu_strdup(tu_path(d, name));
    tu_compress_ok(src, longname, NULL);
    assert_int_equal(tu_decompress_over(longname, target, 0), ECF8_OK);
    assert_true(tu_files_equal(src, target));
    assert_int_equal(tu_count_tmp_files(d), 0);
    tu_remove_tree(d);
    free(d), free(ecf), free(target), free(link), free(fifo), free(longname);
}

/* Progress callback that plays a signal handler arriving mid-compress. */
static void remove_temporaries_now(void *user, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    int *calls = user;
    if ((*calls)++ == 1) ecf8_remove_temporary_files();
}

/* ecf8_remove_temporary_files removes the temporary of a compress in
 * progress, and no output is made after it (in a child: it is for good). */
static void test_remove_temporary_files(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *ecf = tu_strdup(tu_path(d, "x.ecf8"));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(120);
        int calls = 0;
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.threads = 1;
        o.progress = remove_temporaries_now;
        o.progress_user = &calls;
        int st = ecf8_compress_path(tu_data_path(TU_SLICES[0]), ecf, &o);
        int again = ecf8_compress_path(tu_data_path(TU_SLICES[0]), ecf, NULL);
        _exit(calls > 1 && st == ECF8_ERR_IO && again == ECF8_ERR_IO &&
                      strstr(ecf8_last_error(), "interrupted") ? 0 : 3);
    }
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 0);
    assert_false(tu_exists(ecf));
    assert_int_equal(tu_count_entries(d), 0);
    tu_remove_tree(d);
    free(d), free(ecf);
}

static void test_outputs(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[1]);
    char *ecf = tu_strdup(tu_path(d, "o.ecf8")), *out = tu_strdup(tu_path(d, "o.safetensors"));
    /* An existing output is replaced whole. */
    assert_int_equal(tu_write_file(ecf, "old contents", 12), 0);
    tu_compress_ok(src, ecf, NULL);
    assert_int_equal(tu_write_file(out, "old", 3), 0);
    assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_ERR_EXISTS);
    assert_int_equal(tu_decompress_over(ecf, out, 0), ECF8_OK);
    assert_true(tu_files_equal(src, out));
    assert_int_equal(tu_count_tmp_files(d), 0);
    /* Outputs into a directory that does not exist fail and name the path. */
    char *bad = tu_strdup(tu_path(d, "no/such/dir/x.ecf8"));
    assert_int_equal(ecf8_compress_path(src, bad, NULL), ECF8_ERR_IO);
    assert_non_null(strstr(ecf8_last_error(), bad));
    assert_int_equal(ecf8_decompress_path(ecf, bad, 0), ECF8_ERR_IO);
    assert_non_null(strstr(ecf8_last_error(), bad));
    /* Missing inputs. */
    char *missing = tu_strdup(tu_path(d, "missing.safetensors"));
    assert_int_equal(ecf8_compress_path(missing, ecf, NULL), ECF8_ERR_IO);
    assert_non_null(strstr(ecf8_last_error(), missing));
    assert_true(tu_exists(ecf)); /* the previous output is untouched */
    assert_int_equal(ecf8_decompress_path(missing, out, 0), ECF8_ERR_IO);
    assert_int_equal(ecf8_verify_path(missing, NULL, 0), ECF8_ERR_IO);
    assert_int_equal(ecf8_compress_path(NULL, ecf, NULL), ECF8_ERR_ARGUMENT);
    ecf8_file *f = (ecf8_file *)1;
    assert_int_equal(ecf8_file_open(NULL, &f), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_file_open(missing, &f), ECF8_ERR_IO);
    assert_null(f);
    assert_int_equal(ecf8_file_open(d, &f), ECF8_ERR_IO); /* a directory */
    /* Compressing a container or decompressing a safetensors file. */
    char *x = tu_strdup(tu_path(d, "x"));
    assert_int_equal(ecf8_compress_path(ecf, x, NULL), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "is already an ecf8 container"));
    assert_int_equal(ecf8_decompress_path(src, x, 0), ECF8_ERR_CORRUPT);
    assert_false(tu_exists(x));
    assert_int_equal(tu_count_tmp_files(d), 0);
    tu_remove_tree(d);
    free(d), free(ecf), free(out), free(bad), free(missing), free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_detects_mismatch),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_output_rules),
        cmocka_unit_test(test_output_api),
        cmocka_unit_test(test_remove_temporary_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
