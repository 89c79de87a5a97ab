/* test_shards.c - ecf8_compress_dir, ecf8_decompress_dir and
 * ecf8_verify_dir through the library: a round trip of a small published
 * layout (shards, index, a file in a subdirectory), the progress over the
 * whole directory, overwrite, bad arguments, and
 * ecf8_remove_temporary_files in the middle of a directory (the staged tree,
 * subdirectory included, is removed and nothing is renamed into place).
 * tests/cli_shards.sh covers the rest through the CLI. */
#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* DIR/ck: the three slices as model-0000N-of-00003.safetensors, their
 * index (one tensor name per shard: the names are not checked against the
 * shards), config.json and a/notes.txt (first in name order). */
static char *make_checkpoint(const char *dir)
{
    char *ck = tu_strdup(tu_path(dir, "ck"));
    assert_int_equal(mkdir(ck, 0777), 0);
    assert_int_equal(mkdir(tu_path(ck, "a"), 0777), 0);
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", i + 1);
        assert_int_equal(tu_copy_file(tu_data_path(TU_SLICES[i]), tu_path(ck, name)), 0);
    }
    static const char index[] = "{\"metadata\": {}, \"weight_map\": {"
                                "\"a\": \"model-00001-of-00003.safetensors\", "
                                "\"b\": \"model-00002-of-00003.safetensors\", "
                                "\"c\": \"model-00003-of-00003.safetensors\"}}\n";
    assert_int_equal(tu_write_file(tu_path(ck, "model.safetensors.index.json"), index, strlen(index)), 0);
    assert_int_equal(tu_write_file(tu_path(ck, "config.json"), "{}\n", 3), 0);
    assert_int_equal(tu_write_file(tu_path(ck, "a/notes.txt"), "notes\n", 6), 0);
    return ck;
}

typedef struct progress_log {
    uint64_t last_done, total;
    int calls;
    int backwards;
} progress_log;

static void log_progress(void *user, uint64_t done, uint64_t total)
{
    progress_log *p = user;
    if (p->calls++ && (done < p->last_done || total != p->total)) p->backwards++;
    p->last_done = done;
    p->total = total;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *ck = make_checkpoint(d);
    char *out = tu_strdup(tu_path(d, "out")), *back = tu_strdup(tu_path(d, "back"));
    ecf8_compress_options co;
    ecf8_compress_options_init(&co);
    co.threads = 2;
    progress_log log = {0};
    co.progress = log_progress;
    co.progress_user = &log;
    assert_int_equal(ecf8_compress_dir(ck, out, &co, NULL), ECF8_OK);
    assert_int_equal(log.backwards, 0);
    assert_true(log.calls > 2);
    assert_int_equal(log.last_done, log.total);
    struct stat sb;
    uint64_t in_bytes = 6 + 3;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(stat(tu_data_path(TU_SLICES[i]), &sb), 0);
        in_bytes += (uint64_t)sb.st_size;
    }
    assert_int_equal(stat(tu_path(ck, "model.safetensors.index.json"), &sb), 0);
    assert_int_equal(log.total, in_bytes + (uint64_t)sb.st_size);
    assert_int_equal(tu_count_entries(out), 6); /* a/, config, index, 3 containers */
    assert_true(tu_files_equal(tu_path(ck, "a/notes.txt"), tu_path(out, "a/notes.txt")));
    assert_int_equal(ecf8_verify_path(tu_path(out, "model-00002-of-00003.ecf8"), tu_data_path(TU_SLICES[1]), 0),
                     ECF8_OK);
    assert_int_equal(ecf8_verify_dir(out, ck, NULL), ECF8_OK);
    assert_int_equal(ecf8_verify_dir(out, NULL, NULL), ECF8_OK);
    ecf8_decode_options dopt;
    ecf8_decode_options_init(&dopt);
    dopt.threads = 1;
    assert_int_equal(ecf8_decompress_dir(out, back, &dopt), ECF8_OK);
    assert_int_equal(tu_count_entries(back), 6);
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", i + 1);
        assert_true(tu_files_equal(tu_data_path(TU_SLICES[i]), tu_path(back, name)));
    }
    assert_true(tu_files_equal(tu_path(ck, "model.safetensors.index.json"), tu_path(back, "model.safetensors.index.json")));
    /* An existing output: refused, or replaced whole with overwrite. */
    assert_int_equal(ecf8_decompress_dir(out, back, NULL), ECF8_ERR_EXISTS);
    assert_non_null(strstr(ecf8_last_error(), back));
    assert_int_equal(tu_write_file(tu_path(back, "stale"), "x", 1), 0);
    dopt.overwrite = 1;
    assert_int_equal(ecf8_decompress_dir(out, back, &dopt), ECF8_OK);
    assert_false(tu_exists(tu_path(back, "stale")));
    assert_int_equal(tu_count_entries(back), 6);
    assert_int_equal(tu_count_tmp_files(d), 0);
    tu_remove_tree(d);
    free(d), free(ck), free(out), free(back);
}

static void test_arguments(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *ck = make_checkpoint(d);
    char *out = tu_strdup(tu_path(d, "out"));
    assert_int_equal(ecf8_compress_dir(NULL, out, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_compress_dir(ck, NULL, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decompress_dir(ck, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_verify_dir(NULL, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_compress_dir(ck, "", NULL, NULL), ECF8_ERR_ARGUMENT);
    /* options structs older than any version are refused, not read past */
    ecf8_compress_options tiny_c;
    ecf8_compress_options_init(&tiny_c);
    tiny_c.struct_size = sizeof(size_t);
    assert_int_equal(ecf8_compress_dir(ck, out, &tiny_c, NULL), ECF8_ERR_ARGUMENT);
    ecf8_decode_options tiny_d;
    ecf8_decode_options_init(&tiny_d);
    tiny_d.struct_size = sizeof(size_t);
    assert_int_equal(ecf8_decompress_dir(out, out, &tiny_d), ECF8_ERR_ARGUMENT);
    ecf8_dir_options o;
    ecf8_dir_options_init(&o);
    assert_int_equal(o.max_file_bytes, ECF8_HUB_FILE_LIMIT);
    o.struct_size = sizeof o - 1;
    assert_int_equal(ecf8_compress_dir(ck, out, NULL, &o), ECF8_ERR_ARGUMENT);
    /* Patterns, and a limit that the largest container passes over. */
    ecf8_dir_options_init(&o);
    const char *exclude[] = {"a", "*.json"};
    o.exclude = exclude;
    o.n_exclude = 2;
    assert_int_equal(ecf8_compress_dir(ck, out, NULL, &o), ECF8_OK);
    assert_int_equal(tu_count_entries(out), 3);
    tu_remove_tree(out);
    o.max_file_bytes = 1000000;
    assert_int_equal(ecf8_compress_dir(ck, out, NULL, &o), ECF8_ERR_ARGUMENT);
    assert_non_null(strstr(ecf8_last_error(), "over the limit of 1000000 bytes"));
    assert_false(tu_exists(out));
    /* A missing shard, and a container of a single file given as a directory. */
    assert_int_equal(remove(tu_path(ck, "model-00003-of-00003.safetensors")), 0);
    assert_int_equal(ecf8_compress_dir(ck, out, NULL, NULL), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), "which is missing"));
    assert_int_equal(ecf8_decompress_dir(tu_data_path(TU_SLICES[0]), out, NULL), ECF8_ERR_ARGUMENT);
    assert_non_null(strstr(ecf8_last_error(), "not a directory"));
    assert_false(tu_exists(out));
    assert_int_equal(tu_count_tmp_files(d), 0);
    tu_remove_tree(d);
    free(d), free(ck), free(out);
}

/* Progress callback that plays a fatal signal arriving once half of the
 * directory is done (a/notes.txt, a file in a staged subdirectory, and the
 * first shards are then in the staged tree): the handler removes the
 * temporaries and the process dies, so what is left is what the registry
 * alone removed.  With `user` NULL it returns instead, and the call goes on
 * to fail. */
static void remove_temporaries_halfway(void *user, uint64_t done, uint64_t total)
{
    int *removed = user;
    if (removed && *removed) return;
    if (done < total / 2) return;
    ecf8_remove_temporary_files();
    if (!removed) _exit(0);
    *removed = 1;
}

/* In a child (the removal is for good): compress with the callback above,
 * dying in it (`die`) or going on; 0 when all went as expected. */
static int compress_interrupted(const char *ck, const char *out, bool die)
{
    alarm(120);
    int removed = 0;
    ecf8_compress_options co;
    ecf8_compress_options_init(&co);
    co.threads = 1;
    co.progress = remove_temporaries_halfway;
    co.progress_user = die ? NULL : &removed;
    int st = ecf8_compress_dir(ck, out, &co, NULL);
    if (die) return 3; /* the callback did not end the process */
    int again = ecf8_compress_dir(ck, out, NULL, NULL);
    return removed && st == ECF8_ERR_IO && again == ECF8_ERR_IO && strstr(ecf8_last_error(), "interrupted") ? 0 : 4;
}

static void test_remove_temporary_files(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *ck = make_checkpoint(d);
    char *out = tu_strdup(tu_path(d, "out"));
    for (int die = 0; die < 2; die++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(compress_interrupted(ck, out, die));
        int wst = 0;
        assert_int_equal(waitpid(pid, &wst, 0), pid);
        assert_true(WIFEXITED(wst));
        assert_int_equal(WEXITSTATUS(wst), 0);
        assert_false(tu_exists(out));
        assert_int_equal(tu_count_entries(d), 1); /* ck alone */
    }
    tu_remove_tree(d);
    free(d), free(ck), free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_remove_temporary_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
