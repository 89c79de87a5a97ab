/* test_badinput.c - truncated, corrupted and hostile .safetensors and .ecf8
 * files: each gives its specific status and a one-line message naming the
 * file, never a crash, never a partial output.
 *
 * The golden broken files in tests/data/bad/ come from
 * tests/data/make_bad_files.py, which lists in MANIFEST.tsv what each must
 * give; the sweeps below add every truncation point and every index byte
 * changed with the checksums recomputed. */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct bad_case {
    char file[128], kind[16], status[16], stage[16], needle[128];
} bad_case;

static bad_case cases[256];
static size_t n_cases;

static int status_code(const char *name)
{
    static const struct { const char *name; int code; } map[] = {
        {"CORRUPT", ECF8_ERR_CORRUPT}, {"CHECKSUM", ECF8_ERR_CHECKSUM}, {"VERSION", ECF8_ERR_VERSION},
        {"UNSUPPORTED", ECF8_ERR_UNSUPPORTED}, {"IO", ECF8_ERR_IO},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].name, name)) return map[i].code;
    fail_msg("MANIFEST.tsv: unknown status %s", name);
    return 0;
}

static int load_manifest(void **state)
{
    (void)state;
    size_t size;
    char *text = (char *)tu_read_file(tu_data_path("bad/MANIFEST.tsv"), &size);
    if (!text) return -1;
    text = realloc(text, size + 1);
    text[size] = 0;
    n_cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        bad_case *c = &cases[n_cases];
        char *f[5] = {0};
        int k = 0;
        for (char *p = line; k < 5; k++) {
            f[k] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                k++;
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (k < 4) continue;
        snprintf(c->file, sizeof c->file, "%s", f[0]);
        snprintf(c->kind, sizeof c->kind, "%s", f[1]);
        snprintf(c->status, sizeof c->status, "%s", f[2]);
        snprintf(c->stage, sizeof c->stage, "%s", f[3]);
        snprintf(c->needle, sizeof c->needle, "%s", f[4] ? f[4] : "");
        if (++n_cases == sizeof cases / sizeof cases[0]) break;
    }
    free(text);
    return n_cases > 0 ? 0 : -1;
}

/* The message of a failed path-level call: one line, about `path`.
 * Returns NULL or what is wrong (static buffer). */
static const char *message_problem(const char *path, const char *needle)
{
    static char why[1024];
    const char *m = ecf8_last_error();
    size_t pl = strlen(path);
    why[0] = 0;
    if (strncmp(m, path, pl) != 0 || strncmp(m + pl, ": ", 2) != 0)
        snprintf(why, sizeof why, "message '%s' does not start with '%s: '", m, path);
    else if (strchr(m, '\n'))
        snprintf(why, sizeof why, "message '%s' has a newline", m);
    else if (needle[0] && !strstr(m, needle))
        snprintf(why, sizeof why, "message '%s' lacks '%s'", m, needle);
    return why[0] ? why : NULL;
}

static void check_message(const char *path, const char *needle, const char *what)
{
    const char *why = message_problem(path, needle);
    if (why) fail_msg("%s: %s", what, why);
}

static char *copy_to(const char *dir, const char *file)
{
    char *dst = strdup(tu_path(dir, file));
    assert_int_equal(tu_copy_file(tu_data_path(tu_path("bad", file)), dst), 0);
    return dst;
}


/* Runs one golden case through every entry point; returns NULL or what
 * went wrong, *step naming the entry point. */
static const char *run_case(const bad_case *c, const char *dir, const char **step)
{
    static char why[1400];
    int want = status_code(c->status);
    char *in = copy_to(dir, c->file);
    char *out = strdup(tu_path(dir, "out.bin"));
    const char *p = NULL;
    int st;
    ecf8_report r = {0};
#define STEP(name, call)                                                                      \
    do {                                                                                      \
        *step = name;                                                                         \
        st = (call);                                                                          \
        if (st != want) {                                                                     \
            snprintf(why, sizeof why, "%s gave %d (%s), want %s", name, st, ecf8_last_error(), \
                     c->status);                                                              \
            goto done;                                                                        \
        }                                                                                     \
        if ((p = message_problem(in, c->needle))) {                                           \
            snprintf(why, sizeof why, "%s: %s", name, p);                                     \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)
    why[0] = 0;
    if (!strcmp(c->kind, "safetensors")) {
        STEP("compress", ecf8_compress_path(in, out, NULL));
        STEP("inspect", ecf8_inspect_path(in, NULL, &r));
        if (r.n_tensors || r.tensors) snprintf(why, sizeof why, "inspect left a report behind");
    } else {
        ecf8_file *f = (ecf8_file *)1;
        *step = "open";
        st = ecf8_file_open(in, &f);
        if (!strcmp(c->stage, "open")) {
            if (st != want) {
                snprintf(why, sizeof why, "open gave %d (%s), want %s", st, ecf8_last_error(), c->status);
                if (st == ECF8_OK) ecf8_file_close(f);
                goto done;
            }
            if (c->needle[0] && !strstr(ecf8_last_error(), c->needle)) {
                snprintf(why, sizeof why, "open message '%s' lacks '%s'", ecf8_last_error(), c->needle);
                goto done;
            }
            if (f) snprintf(why, sizeof why, "open failed but set *out");
        } else {
            if (st != ECF8_OK) {
                snprintf(why, sizeof why, "open gave %d (%s), should open", st, ecf8_last_error());
                goto done;
            }
            /* The damaged tensor fails to read; the others read. */
            int bad = 0;
            *step = "read_tensor";
            for (size_t t = 0; t < ecf8_file_tensor_count(f); t++) {
                ecf8_tensor_info info;
                ecf8_file_tensor(f, t, &info);
                uint8_t *buf = malloc(info.source_bytes + 1);
                int rs = ecf8_file_read_tensor(f, t, buf, info.source_bytes, 1);
                free(buf);
                if (rs && rs != want) snprintf(why, sizeof why, "read_tensor gave %d, want %s", rs, c->status);
                bad += rs != 0;
            }
            ecf8_file_close(f);
            if (!why[0] && bad != 1) snprintf(why, sizeof why, "%d tensors fail to read, want 1", bad);
            if (why[0]) goto done;
        }
        STEP("verify", ecf8_verify_path(in, NULL, 0));
        STEP("verify-original", ecf8_verify_path(in, tu_data_path("bad/good.safetensors"), 1));
        STEP("decompress", ecf8_decompress_path(in, out, 0));
        /* info tells the kinds apart by the magic: others are read as
         * safetensors (and fail as such). */
        size_t n = 0;
        uint8_t *head = tu_read_file(in, &n);
        bool container = head && n >= 5 && !memcmp(head + 1, "ECF8", 4);
        free(head);
        /* inspect reads a container's index only: what opens, inspects. */
        if (container && !strcmp(c->stage, "open")) {
            STEP("inspect", ecf8_inspect_path(in, NULL, &r));
            if (r.n_tensors || r.tensors) snprintf(why, sizeof why, "inspect left a report behind");
        } else if (container) {
            *step = "inspect";
            st = ecf8_inspect_path(in, NULL, &r);
            if (st) snprintf(why, sizeof why, "inspect gave %d (%s), should read the index", st, ecf8_last_error());
            ecf8_report_free(&r);
        }
    }
done:
    ecf8_report_free(&r); /* filled only when inspect wrongly succeeded */
    if (!why[0] && tu_exists(out)) snprintf(why, sizeof why, "a partial output was left behind");
    if (!why[0] && tu_count_tmp_files(dir)) snprintf(why, sizeof why, "a temporary file was left behind");
    tu_remove_tree(out);
    for (size_t i = 0; i < n_cases; i++) remove(tu_path(dir, cases[i].file));
    free(in);
    free(out);
#undef STEP
    return why[0] ? why : NULL;
}

/* Every golden broken file gives its status through every entry point:
 * compress and inspect for safetensors; open, read_tensor, verify (with and
 * without the original), decompress and inspect (which reads the index only,
 * so it fails only where open does) for containers. */
static void test_golden_bad_files(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    size_t st_n = 0, ecf8_n = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const bad_case *c = &cases[i];
        st_n += !strcmp(c->kind, "safetensors");
        ecf8_n += !strcmp(c->kind, "ecf8");
        const char *step = "";
        const char *why = run_case(c, dir, &step);
        if (!why) continue;
        fail_msg("%s (%s, %s, %s): %s", c->file, c->status, c->stage, step, why);
    }
    assert_true(st_n >= 20);
    assert_true(ecf8_n >= 40);
    tu_remove_tree(dir);
    free(dir);
}

/* The golden good files still read, so old containers stay readable. */
static void test_golden_good_files(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    const char *orig = tu_data_path("bad/good.safetensors");
    char *o = strdup(orig);
    char *out = strdup(tu_path(dir, "good.safetensors"));
    char *ecf = strdup(tu_data_path("bad/good.ecf8"));
    assert_int_equal(ecf8_verify_path(ecf, o, 0), ECF8_OK);
    assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_OK);
    assert_true(tu_files_equal(o, out));
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    assert_int_equal(ecf8_file_tensor_count(f), 2);
    ecf8_tensor_info info;
    assert_int_equal(ecf8_file_tensor(f, 0, &info), ECF8_OK);
    assert_int_equal(info.split, ECF8_SPLIT_EXPONENT);
    assert_int_equal(info.stream.n_chunks, 2);
    ecf8_file_close(f);
    /* The same file with the zstd-compressed index of format 1.1. */
    free(ecf);
    ecf = strdup(tu_data_path("bad/good-z.ecf8"));
    assert_int_equal(ecf8_verify_path(ecf, o, 0), ECF8_OK);
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    assert_int_equal(ecf8_file_tensor(f, 0, &info), ECF8_OK);
    assert_int_equal(info.stream.n_chunks, 2);
    ecf8_file_close(f);
    char *dirout = strdup(tu_path(dir, "ckpt"));
    free(ecf);
    ecf = strdup(tu_data_path("bad/good-dir.ecf8"));
    assert_int_equal(ecf8_decompress_path(ecf, dirout, 0), ECF8_OK);
    assert_true(tu_files_equal(o, tu_path(dirout, "model.safetensors")));
    assert_true(tu_exists(tu_path(dirout, "model.safetensors.index.json")));
    assert_int_equal(ecf8_verify_path(ecf, dirout, 0), ECF8_OK);
    tu_remove_tree(dir);
    free(dir), free(o), free(out), free(ecf), free(dirout);
}

/* A failed decompress leaves an existing output file as it was. */
static void test_failed_decompress_keeps_existing_output(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *out = strdup(tu_path(dir, "keep.safetensors"));
    const char *bad[] = {"ecf8-payload-raw-bit.ecf8", "ecf8-payload-ones.ecf8", "ecf8-version-2.ecf8"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tu_write_file(out, "precious", 8), 0);
        char *in = copy_to(dir, bad[i]);
        assert_int_not_equal(tu_decompress_over(in, out, 0), ECF8_OK);
        size_t n;
        uint8_t *b = tu_read_file(out, &n);
        assert_non_null(b);
        assert_int_equal(n, 8);
        assert_memory_equal(b, "precious", 8);
        free(b);
        remove(in);
        free(in);
        assert_int_equal(tu_count_tmp_files(dir), 0);
    }
    /* Same for compress over an existing container. */
    char *ecf = strdup(tu_path(dir, "keep.ecf8"));
    assert_int_equal(tu_write_file(ecf, "precious", 8), 0);
    char *in = copy_to(dir, "st-overlap.safetensors");
    assert_int_equal(tu_compress_over(in, ecf, NULL), ECF8_ERR_CORRUPT);
    assert_true(tu_files_equal(ecf, out));
    assert_int_equal(tu_count_tmp_files(dir), 0);
    tu_remove_tree(dir);
    free(dir), free(out), free(ecf), free(in);
}

/* Every truncation of a good file is refused. */
static void test_truncation_sweep(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *path = strdup(tu_path(dir, "t.ecf8")), *out = strdup(tu_path(dir, "t.out"));
    size_t n;
    uint8_t *img;
    const char *goods[] = {"bad/good.ecf8", "bad/good-z.ecf8"}; /* plain and compressed index */
    for (size_t g = 0; g < 2; g++) {
        img = tu_read_file(tu_data_path(goods[g]), &n);
        assert_non_null(img);
        for (size_t cut = 0; cut < n; cut++) {
            remove(path); /* a fresh file: overwriting in place makes ext4 flush */
            assert_int_equal(tu_write_file(path, img, cut), 0);
            ecf8_file *f = NULL;
            int st = ecf8_file_open(path, &f);
            if (st != ECF8_ERR_CORRUPT)
                fail_msg("%s cut at %zu: status %d (%s)", goods[g], cut, st, ecf8_last_error());
            assert_null(f);
        }
        free(img);
    }
    img = tu_read_file(tu_data_path("bad/good.safetensors"), &n);
    for (size_t cut = 0; cut < n; cut += (cut < 200 ? 1 : 13)) {
        remove(path); /* a fresh file: overwriting in place makes ext4 flush */
        assert_int_equal(tu_write_file(path, img, cut), 0);
        int st = ecf8_compress_path(path, out, NULL);
        if (st != ECF8_ERR_CORRUPT) fail_msg("safetensors cut at %zu: status %d (%s)", cut, st, ecf8_last_error());
        check_message(path, "", "truncated safetensors");
        assert_false(tu_exists(out));
    }
    assert_int_equal(tu_count_tmp_files(dir), 0);
    free(img);
    tu_remove_tree(dir);
    free(dir), free(path), free(out);
}

/* Is `at` a source's prefix offset field or inside its prefix bytes? */
static bool is_header_content(const uint8_t *img, size_t at)
{
    uint64_t meta = ecf8_load_le64(img + 24);
    uint32_t ns = ecf8_load_le32(img + meta);
    uint64_t blob = meta + ecf8_load_le64(img + meta + 16);
    for (uint32_t i = 0; i < ns; i++) {
        uint64_t e = meta + 32 + 48 * (uint64_t)i;
        uint64_t off = ecf8_load_le64(img + e + 16), len = ecf8_load_le64(img + e + 24);
        if (at >= e + 16 && at < e + 24) return true;
        if (at >= blob + off && at < blob + off + len) return true;
    }
    return false;
}

/* Every byte of the header and the index changed, checksums recomputed:
 * the structural checks catch it, or the file still rebuilds the original
 * exactly (a name or an unused field may change harmlessly). */
static void test_index_mutation_sweep(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *path = strdup(tu_path(dir, "m.ecf8")), *out = strdup(tu_path(dir, "m.out"));
    const char *orig = tu_data_path("bad/good.safetensors");
    char *o = strdup(orig);
    const char *goods[] = {"bad/good.ecf8", "bad/good-dir.ecf8"};
    static const char *SOURCES[] = {"model.safetensors", "model.safetensors.index.json"};
    char *ref = strdup(tu_path(dir, "ref"));
    assert_int_equal(ecf8_decompress_path(tu_data_path(goods[1]), ref, 0), ECF8_OK);
    size_t detected = 0, harmless = 0;
    for (size_t g = 0; g < 2; g++) {
        size_t n;
        uint8_t *img = tu_read_file(tu_data_path(goods[g]), &n);
        assert_non_null(img);
        uint64_t meta = ecf8_load_le64(img + 24), meta_len = ecf8_load_le64(img + 32);
        uint8_t *m = malloc(n);
        const uint8_t vals[] = {0x01, 0x80, 0xFF, 0x40};
        for (size_t at = 8; at < n; at++) {
            if (at >= 40 && at < 48) continue;        /* the index checksum: recomputed */
            if (at >= 56 && at < meta) continue;      /* header checksum, payloads */
            if (at >= meta + meta_len) break;
            for (size_t v = 0; v < 4; v++) {
                memcpy(m, img, n);
                if (v < 2) m[at] ^= vals[v];
                else m[at] = m[at] == vals[v] ? 0 : vals[v];
                tu_ecf8_rehash(m, n);
                remove(path); /* a fresh file: overwriting in place makes ext4 flush */
                assert_int_equal(tu_write_file(path, m, n), 0);
                int st = ecf8_verify_path(path, NULL, 0);
                if (st != ECF8_OK) {
                    if (!ecf8_last_error()[0]) fail_msg("byte %zu: status %d without a message", at, st);
                    assert_false(st == ECF8_ERR_NOMEM || st == ECF8_ERR_ARGUMENT || st == ECF8_ERR_IO);
                    detected++;
                    continue;
                }
                /* Verifies: the reconstruction must be the original, unless
                 * the byte is part of what the index hash alone protects and
                 * no structure constrains: a source's verbatim safetensors
                 * header bytes and their offset (a forged index can point
                 * them anywhere; re-hashing forges it). */
                if (is_header_content(img, at)) {
                    harmless++;
                    continue;
                }
                if (g == 0) {
                    st = ecf8_verify_path(path, o, 0);
                } else {
                    /* Each source rebuilt as it was (a renamed source is fine). */
                    tu_remove_tree(out);
                    st = ecf8_decompress_path(path, out, 0);
                    ecf8_file *f = NULL;
                    if (!st) st = ecf8_file_open(path, &f);
                    if (!st && tu_count_entries(out) != (int)ecf8_file_source_count(f)) st = ECF8_ERR_MISMATCH;
                    for (size_t i = 0; !st && i < ecf8_file_source_count(f); i++)
                        if (!tu_files_equal(tu_path(ref, SOURCES[i]), tu_path(out, ecf8_file_source_path(f, i))))
                            st = ECF8_ERR_MISMATCH;
                    ecf8_file_close(f);
                }
                if (st != ECF8_OK)
                    fail_msg("%s byte %zu set to %#x: verifies but does not rebuild the original (%d %s)",
                             goods[g], at, m[at], st, ecf8_last_error());
                harmless++;
            }
        }
        free(m);
        free(img);
    }
    assert_true(detected > harmless);
    assert_int_equal(tu_count_tmp_files(dir), 0);
    tu_remove_tree(dir);
    free(dir), free(path), free(out), free(o), free(ref);
}

/* Every byte of a safetensors header replaced by JSON-significant
 * characters: a clean refusal, or a container that rebuilds the
 * (changed) input byte for byte. */
static void test_safetensors_header_sweep(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *path = strdup(tu_path(dir, "h.safetensors")), *ecf = strdup(tu_path(dir, "h.ecf8")),
         *out = strdup(tu_path(dir, "h.out"));
    size_t n;
    uint8_t *img = tu_read_file(tu_data_path("bad/good.safetensors"), &n);
    assert_non_null(img);
    uint64_t hl = ecf8_load_le64(img);
    const char repl[] = "09\"{}[],:-e. \\\x00\x80";
    size_t ok = 0, refused = 0;
    for (size_t at = 0; at < 8 + hl; at++)
        for (size_t k = 0; k < sizeof repl - 1 + (at < 8); k++) {
            uint8_t save = img[at];
            img[at] = at < 8 ? (uint8_t)(save ^ (1u << (k % 8))) : (uint8_t)repl[k];
            if (img[at] == save) {
                img[at] = save;
                continue;
            }
            remove(path); /* a fresh file: overwriting in place makes ext4 flush */
            assert_int_equal(tu_write_file(path, img, n), 0);
            int st = ecf8_compress_path(path, ecf, NULL);
            if (st == ECF8_OK) {
                assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_OK);
                if (!tu_files_equal(path, out)) fail_msg("header byte %zu = %#x: not rebuilt exactly", at, img[at]);
                remove(ecf);
                remove(out);
                ok++;
            } else {
                if (st != ECF8_ERR_CORRUPT && st != ECF8_ERR_UNSUPPORTED)
                    fail_msg("header byte %zu = %#x: status %d (%s)", at, img[at], st, ecf8_last_error());
                check_message(path, "", "mutated header");
                assert_false(tu_exists(ecf));
                refused++;
            }
            img[at] = save;
        }
    assert_true(ok > 0 && refused > 0);
    assert_int_equal(tu_count_tmp_files(dir), 0);
    free(img);
    tu_remove_tree(dir);
    free(dir), free(path), free(ecf), free(out);
}

/* The safetensors header reader against JSON's grammar: each header below
 * (one 4-byte F8 tensor, data_offsets [0,4], unless it says otherwise) is
 * either read, the tensor's name and shape as given, or refused with the
 * message given.  The reader keeps what cJSON, which it replaced, took:
 * whole numbers written "4.0", "4e0" or "-0", any member order, unknown and
 * repeated members (the first counts), escapes decoded, bytes after the
 * object ignored. */
typedef struct header_case {
    const char *json;
    const char *error;  /* NULL: read */
    const char *name;   /* the tensor's, when read */
    unsigned ndim;
    uint64_t shape0;
} header_case;

#define T4(name_json, body) "{" name_json ":{" body "}}"
/* Tensor w with these shape and data_offsets; a tensor with this name. */
#define W_WITH(shape, offsets) T4("\"w\"", "\"dtype\":\"F8_E4M3\",\"shape\":" shape ",\"data_offsets\":" offsets)
#define NAMED(name_json) T4(name_json, "\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]")
#define REFUSED(json, why) {json, why, NULL, 0, 0}
static const header_case header_cases[] = {
    {NAMED("\"w\""), NULL, "w", 1, 4},
    {T4("\"w\"", "\"data_offsets\":[0,4],\"shape\":[2,2],\"dtype\":\"F8_E4M3\""), NULL, "w", 2, 2},
    {" \t\r\n{ \"w\" : { \"dtype\" : \"F8_E4M3\" , \"shape\" : [ 4 ] , \"data_offsets\" : [ 0 , 4 ] } }  ", NULL, "w", 1, 4},
    {"\xef\xbb\xbf" NAMED("\"w\""), NULL, "w", 1, 4},
    {NAMED("\"a\\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00\\n\""), NULL,
     "a\"b\\c/d\xc3\xa9\xf0\x9f\x98\x80\n", 1, 4},
    {T4("\"w\"", "\"dt\\u0079pe\":\"F8\\u005fE4M3\",\"shape\":[4.0],\"data_offsets\":[-0,4e0]"), NULL, "w", 1, 4},
    {T4("\"w\"", "\"shape\":[40E-1],\"dtype\":\"F8_E4M3\",\"data_offsets\":[0.0e5,0.4e1]"), NULL, "w", 1, 4},
    {T4("\"w\"", "\"x\":{\"y\":[1,{\"z\":null}]},\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4],\"b\":true"), NULL, "w", 1, 4},
    {T4("\"w\"", "\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4],\"dtype\":7,\"shape\":\"x\""), NULL, "w", 1, 4},
    {"{\"__metadata__\":{\"format\":\"pt\",\"n\":[1,2.5e-3,-7]}," "\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}"
     "garbage after the object", NULL, "w", 1, 4},
    /* The syntax: any error anywhere, before any error in a tensor. */
    REFUSED("", "not a JSON object"),
    REFUSED("[]", "not a JSON object"),
    REFUSED(W_WITH("[04]", "[0,4]"), "not a JSON object"),
    REFUSED(W_WITH("[4.]", "[0,4]"), "not a JSON object"),
    REFUSED(W_WITH("[+4]", "[0,4]"), "not a JSON object"),
    REFUSED(W_WITH("[4e]", "[0,4]"), "not a JSON object"),
    REFUSED(W_WITH("[4]", "[0,4],}"), "not a JSON object"),
    REFUSED(NAMED("\"w\\ud800\""), "not a JSON object"),
    REFUSED(NAMED("\"w\\udc00\""), "not a JSON object"),
    REFUSED(NAMED("\"w\\x\""), "not a JSON object"),
    REFUSED(NAMED("\"w\\u12g4\""), "not a JSON object"),
    REFUSED("{\"v\":[1,2],\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]},\"x\":tru}", "not a JSON object"),
    REFUSED("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}", "not a JSON object"),
    /* A tensor's members. */
    REFUSED(W_WITH("[4]", "[0,4.5]"), "bad data_offsets"),
    REFUSED(W_WITH("[4]", "[0,9007199254740993]"), "bad data_offsets"),
    REFUSED(W_WITH("[4]", "[0,1e400]"), "bad data_offsets"),
    REFUSED(W_WITH("[4]", "[0,\"4\"]"), "bad data_offsets"),
    REFUSED(W_WITH("[-4]", "[0,4]"), "bad shape"),
    REFUSED(W_WITH("[[4]]", "[0,4]"), "bad shape"),
    REFUSED(W_WITH("{}", "[0,4]"), "lacks dtype"),
    REFUSED(W_WITH("[4]", "[0,4,4]"), "lacks dtype"),
    REFUSED(T4("\"w\"", "\"dtype\":\"F8_E4M3\\u0000\",\"shape\":[4],\"data_offsets\":[0,4]"), "unknown dtype"),
    REFUSED(NAMED("\"w\\u0000x\""), "NUL character"),
    REFUSED("{\"w\":[1]}", "tensor 'w' is not an object"),
    REFUSED("{\"__metadata__\":[]}", "__metadata__ is not an object"),
    /* The first error in the header's order is told. */
    REFUSED("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[-1],\"data_offsets\":[0,4]},\"__metadata__\":7}", "bad shape"),
    REFUSED("{\"__metadata__\":7,\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "__metadata__ is not"),
};

static void test_safetensors_header_grammar(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *path = strdup(tu_path(dir, "g.safetensors")), *ecf = strdup(tu_path(dir, "g.ecf8"));
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const header_case *c = &header_cases[i];
        size_t len = strlen(c->json), padded = (len + 7) / 8 * 8;
        uint8_t *img = malloc(8 + padded + 4);
        assert_non_null(img);
        ecf8_store_le64(img, padded);
        memcpy(img + 8, c->json, len);
        memset(img + 8 + len, ' ', padded - len);
        memcpy(img + 8 + padded, "\x38\x40\xb8\x01", 4);
        remove(path);
        assert_int_equal(tu_write_file(path, img, 8 + padded + 4), 0);
        free(img);
        int st = ecf8_compress_path(path, ecf, NULL);
        if (c->error) {
            if (st == ECF8_OK) fail_msg("header %zu (%s): read, expected '%s'", i, c->json, c->error);
            if (!strstr(ecf8_last_error(), c->error))
                fail_msg("header %zu (%s): '%s', expected '%s'", i, c->json, ecf8_last_error(), c->error);
            assert_false(tu_exists(ecf));
            continue;
        }
        if (st) fail_msg("header %zu (%s): %s", i, c->json, ecf8_last_error());
        ecf8_file *f;
        assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
        assert_int_equal(ecf8_file_tensor_count(f), 1);
        ecf8_tensor_info ti;
        assert_int_equal(ecf8_file_tensor(f, 0, &ti), ECF8_OK);
        assert_string_equal(ti.name, c->name);
        assert_int_equal(ti.dtype, ECF8_DTYPE_F8_E4M3);
        assert_int_equal(ti.ndim, c->ndim);
        assert_int_equal(ti.shape[0], c->shape0);
        assert_int_equal(ti.n_elements, 4);
        ecf8_file_close(f);
        remove(ecf);
    }
    tu_remove_tree(dir);
    free(dir), free(path), free(ecf);
}

/* A header of 256 KiB or more is parsed in two halves when there are
 * threads: with 1 and 2 threads a large header gives the same container or
 * the same error, wherever the error is and whatever strings lie around the
 * cut (names holding quotes, braces, commas and backslashes). */
typedef struct split_case {
    const char *what;
    size_t bad_shape_at, bad_syntax_at, n; /* tensor indices (n: none) */
    bool metadata_last_bad;
    const char *error; /* NULL: compresses */
} split_case;

static char *big_header_file(const char *dir, const split_case *c, size_t n)
{
    size_t cap = n * 160 + 256, len = 0;
    char *json = malloc(cap);
    assert_non_null(json);
    len += (size_t)snprintf(json + len, cap - len, "{");
    for (size_t i = 0; i < n; i++) {
        /* Every third name holds JSON's structural characters, escaped quotes and backslashes. */
        const char *odd = i % 3 == 0 ? "\\\"},{\\\"x\\\":[1,\\\\" : i % 3 == 1 ? "\\\\\\\\" : "";
        len += (size_t)snprintf(json + len, cap - len, "%s\"t%05zu%s\":{\"dtype\":\"F8_E4M3\",\"shape\":[%s]%s,"
                                "\"data_offsets\":[%zu,%zu]}", i ? "," : "", i, odd,
                                i == c->bad_shape_at ? "-1" : "1", i == c->bad_syntax_at ? "," : "", i, i + 1);
    }
    len += (size_t)snprintf(json + len, cap - len, "%s}", c->metadata_last_bad ? ",\"__metadata__\":[]" : "");
    size_t padded = (len + 7) / 8 * 8;
    uint8_t *img = malloc(8 + padded + n);
    assert_non_null(img);
    ecf8_store_le64(img, padded);
    memcpy(img + 8, json, len);
    memset(img + 8 + len, ' ', padded - len);
    for (size_t i = 0; i < n; i++) img[8 + padded + i] = (uint8_t)(0x30 + i % 17);
    char *path = strdup(tu_path(dir, "big.safetensors"));
    remove(path);
    assert_int_equal(tu_write_file(path, img, 8 + padded + n), 0);
    free(img), free(json);
    return path;
}

static void test_safetensors_header_halves(void **state)
{
    (void)state;
    const size_t n = 6000; /* ~450 KB of header */
    const split_case cases[] = {
        {"valid", n, n, n, false, NULL},
        {"bad shape in the second half", 4500, n, n, false, "bad shape"},
        {"bad shape in the first half", 700, n, n, false, "bad shape"},
        {"bad shape, then a syntax error", 700, 5500, n, false, "not a JSON object"},
        {"syntax error in the first half", n, 1000, n, false, "not a JSON object"},
        {"__metadata__ last, not an object", n, n, n, true, "__metadata__ is not an object"},
        {"bad shape in the first half, __metadata__ last", 700, n, n, true, "bad shape"},
    };
    char *dir = strdup(tu_temp_dir());
    char *out[2] = {strdup(tu_path(dir, "t1.ecf8")), strdup(tu_path(dir, "t2.ecf8"))};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const split_case *c = &cases[k];
        char *path = big_header_file(dir, c, n);
        char error[2][1024];
        int st[2];
        for (unsigned th = 1; th <= 2; th++) {
            ecf8_compress_options o;
            ecf8_compress_options_init(&o);
            o.threads = th;
            remove(out[th - 1]);
            st[th - 1] = ecf8_compress_path(path, out[th - 1], &o);
            snprintf(error[th - 1], sizeof error[0], "%s", ecf8_last_error());
        }
        if (st[0] != st[1] || strcmp(error[0], error[1]))
            fail_msg("%s: 1 thread %d '%s', 2 threads %d '%s'", c->what, st[0], error[0], st[1], error[1]);
        if (!c->error) {
            if (st[0]) fail_msg("%s: %s", c->what, error[0]);
            assert_true(tu_files_equal(out[0], out[1]));
            ecf8_file *f;
            assert_int_equal(ecf8_file_open(out[1], &f), ECF8_OK);
            assert_int_equal(ecf8_file_tensor_count(f), n);
            ecf8_tensor_info ti;
            assert_int_equal(ecf8_file_tensor(f, 3, &ti), ECF8_OK);
            assert_string_equal(ti.name, "t00003\"},{\"x\":[1,\\");
            assert_int_equal(ecf8_file_tensor(f, 4, &ti), ECF8_OK);
            assert_string_equal(ti.name, "t00004\\\\");
            ecf8_file_close(f);
        } else if (!strstr(error[0], c->error)) {
            fail_msg("%s: '%s', expected '%s'", c->what, error[0], c->error);
        }
        free(path);
    }
    tu_remove_tree(dir);
    free(dir), free(out[0]), free(out[1]);
}

/* A directory whose second shard is broken: no container at all. */
static void test_bad_shard_in_directory(void **state)
{
    (void)state;
    char *base = strdup(tu_temp_dir());
    char *ckpt = strdup(tu_path(base, "ckpt")), *ecf = strdup(tu_path(base, "ckpt.ecf8"));
    assert_int_equal(mkdir(ckpt, 0755), 0);
    assert_int_equal(tu_copy_file(tu_data_path("bad/good.safetensors"), tu_path(ckpt, "a.safetensors")), 0);
    char *bad = strdup(tu_path(ckpt, "b.safetensors"));
    assert_int_equal(tu_copy_file(tu_data_path("bad/st-shape-mismatch.safetensors"), bad), 0);
    assert_int_equal(ecf8_compress_path(ckpt, ecf, NULL), ECF8_ERR_CORRUPT);
    assert_non_null(strstr(ecf8_last_error(), bad));
    assert_non_null(strstr(ecf8_last_error(), "shape needs"));
    assert_false(tu_exists(ecf));
    assert_int_equal(tu_count_tmp_files(base), 0);
    /* A shard that is not a regular file. */
    remove(bad);
    assert_int_equal(mkdir(bad, 0755), 0);
    assert_int_not_equal(ecf8_compress_path(ckpt, ecf, NULL), ECF8_OK);
    assert_non_null(strstr(ecf8_last_error(), bad));
    assert_false(tu_exists(ecf));
    assert_int_equal(tu_count_tmp_files(base), 0);
    tu_remove_tree(base);
    free(base), free(ckpt), free(ecf), free(bad);
}

/* The message of a failed compress names the input once:
 * "IN: what is wrong", not "IN: IN: what is wrong". */
static void test_compress_message_names_file_once(void **state)
{
    (void)state;
    char *dir = strdup(tu_temp_dir());
    char *in = copy_to(dir, "st-invalid-json.safetensors");
    char *out = strdup(tu_path(dir, "x.ecf8"));
    assert_int_equal(ecf8_compress_path(in, out, NULL), ECF8_ERR_CORRUPT);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ecf8_last_error());
    tu_remove_tree(dir);
    size_t pl = strlen(in);
    int twice = strstr(msg + pl, in) != NULL;
    free(dir), free(out);
    if (twice) {
        free(in);
        tu_bug_returned("BUG-7 compress-message-dup",
                     "ecf8_compress_path adds the input path to a message that add_source already "
                     "prefixed with it: 'ecf8: IN: IN: header is not a JSON object'");
    }
    assert_non_null(strstr(msg, "header is not a JSON object"));
    free(in);
}

/* A chunk that fails on a pool thread still explains itself. */
static void test_error_detail_from_worker_threads(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    uint8_t *x = malloc(n);
    tu_fill_weights_e4m3(x, n, 8);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = ECF8_SPLIT_BYTE;
    ecf8_encoded *e;
    assert_int_equal(ecf8_tensor_encode(ECF8_DTYPE_F8_E4M3, x, 1024, 1024, &o, &e), ECF8_OK);
    ecf8_stream s = *ecf8_encoded_stream(e);
    uint8_t *coded = (uint8_t *)(uintptr_t)s.coded;
    uint64_t c = s.n_chunks / 2; /* one chunk in the middle */
    memset(coded + s.chunk_offsets[c], 0xFF, s.chunk_offsets[c + 1] - s.chunk_offsets[c]);
    uint8_t *out = malloc(n);
    int empty = 0;
    for (unsigned threads = 2; threads <= 16; threads++) {
        ecf8_clear_error();
        assert_int_equal(ecf8_stream_decode(&s, out, n, threads), ECF8_ERR_CORRUPT);
        if (!ecf8_last_error()[0]) empty++;
        else assert_non_null(strstr(ecf8_last_error(), "chunk"));
    }
    ecf8_encoded_free(e);
    free(x), free(out);
    if (empty)
        tu_bug_returned("BUG-9 worker-error-detail",
                     "ecf8_parallel_for returns a worker's status but its ecf8_last_error() detail "
                     "stays in the worker's thread-local buffer: the caller sees an empty message");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bad_files),
        cmocka_unit_test(test_golden_good_files),
        cmocka_unit_test(test_failed_decompress_keeps_existing_output),
        cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_index_mutation_sweep),
        cmocka_unit_test(test_safetensors_header_sweep),
        cmocka_unit_test(test_safetensors_header_grammar),
        cmocka_unit_test(test_safetensors_header_halves),
        cmocka_unit_test(test_bad_shard_in_directory),
        cmocka_unit_test(test_compress_message_names_file_once),
        cmocka_unit_test(test_error_detail_from_worker_threads),
    };
    return cmocka_run_group_tests(tests, load_manifest, NULL);
}
