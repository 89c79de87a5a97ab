/* test_container.c - the .ecf8 container: byte-exact compress/decompress of
 * the real slices and of synthetic files with every kind of tensor, both
 * index formats, sharded directories (and their odd members), verify with
 * and without the original, the ecf8_file_* accessors and the progress
 * callbacks.  Output rules: test_outputs.c; ecf8_inspect_path and
 * containers in memory: test_container_open.c. */
#define _GNU_SOURCE /* memmem */
#include "testutil.h"

#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

/* compress -> decompress -> identical bytes; verify with and without the
 * original.  Returns the container size. */
static size_t roundtrip_file(const char *src, const char *dir, const ecf8_compress_options *o)
{
    char *ecf = tu_strdup(tu_path(dir, "rt.ecf8")), *out = tu_strdup(tu_path(dir, "rt.safetensors"));
    tu_compress_ok(src, ecf, o);
    assert_int_equal(tu_count_tmp_files(dir), 0);
    int st = tu_decompress_over(ecf, out, 0);
    if (st) fail_msg("decompress: %s", ecf8_last_error());
    assert_true(tu_files_equal(src, out));
    assert_int_equal(ecf8_verify_path(ecf, NULL, 0), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, src, 1), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, out, 3), ECF8_OK);
    assert_int_equal(tu_count_tmp_files(dir), 0);
    struct stat sb;
    assert_int_equal(stat(ecf, &sb), 0);
    remove(out);
    remove(ecf);
    free(ecf);
    free(out);
    return (size_t)sb.st_size;
}

/* ---- real data ------------------------------------------------------------- */
static void test_real_slices_roundtrip(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char *d = tu_strdup(dir);
    for (size_t i = 0; i < 3; i++) {
        const char *src = tu_data_path(TU_SLICES[i]);
        struct stat sb;
        assert_int_equal(stat(src, &sb), 0);
        size_t size = roundtrip_file(src, d, NULL);
        assert_true(size < (size_t)sb.st_size); /* real weights do shrink */
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        const ecf8_split splits[] = {ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE, ECF8_SPLIT_STORED};
        for (size_t k = 0; k < 3; k++) {
            o.split = splits[k];
            o.threads = (unsigned)k + 1;
            /* Stored tensors do not shrink; only the compressed index would
             * make the file smaller, so measure that with a plain one. */
            o.plain_index = splits[k] == ECF8_SPLIT_STORED;
            size_t s2 = roundtrip_file(src, d, &o);
            if (splits[k] == ECF8_SPLIT_STORED) assert_true(s2 >= (size_t)sb.st_size);
            o.plain_index = 0;
        }
        o.split = ECF8_SPLIT_AUTO;
        o.max_code_bits = 13, o.chunk_elements = 1000;
        roundtrip_file(src, d, &o);
    }
    tu_remove_tree(d);
    free(d);
}

/* The container does not depend on the thread count, nor on the run. */
static void test_deterministic_output(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[0]);
    char *a = tu_strdup(tu_path(d, "a.ecf8")), *b = tu_strdup(tu_path(d, "b.ecf8"));
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1;
    tu_compress_ok(src, a, &o);
    const unsigned threads[] = {2, 5, 0};
    for (size_t i = 0; i < 3; i++) {
        o.threads = threads[i];
        tu_compress_ok(src, b, &o);
        assert_true(tu_files_equal(a, b));
    }
    tu_remove_tree(d);
    free(a), free(b), free(d);
}

/* Format 1.1 compresses the index and keeps code lengths and chunk offsets in it;
 * --plain-index writes format 1.0.  Both hold the same streams and rebuild
 * the same file. */
static void test_plain_and_compressed_index(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const char *src = tu_data_path(TU_SLICES[0]);
    char *z = tu_strdup(tu_path(d, "z.ecf8")), *p = tu_strdup(tu_path(d, "p.ecf8"));
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    tu_compress_ok(src, z, &o);
    o.plain_index = 1;
    tu_compress_ok(src, p, &o);
    size_t nz, np;
    uint8_t *iz = tu_read_file(z, &nz), *ip = tu_read_file(p, &np);
    assert_non_null(iz);
    assert_non_null(ip);
    /* header: version 1.1 + flag 1 + raw index size, or 1.0 with zeros */
    assert_int_equal(ecf8_load_le32(iz + 8), 1 | 1u << 16);
    assert_int_equal(ecf8_load_le32(iz + 12), 1);
    assert_true(ecf8_load_le64(iz + 48) > ecf8_load_le64(iz + 32)); /* it did shrink */
    assert_int_equal(ecf8_load_le32(ip + 8), 1);
    assert_int_equal(ecf8_load_le32(ip + 12), 0);
    assert_int_equal(ecf8_load_le64(ip + 48), 0);
    assert_true(nz < np);
    /* An options struct older than plain_index is refused, nothing written. */
    char *old = tu_strdup(tu_path(d, "old.ecf8"));
    o.struct_size = offsetof(ecf8_compress_options, plain_index);
    assert_int_equal(ecf8_compress_path(src, old, &o), ECF8_ERR_ARGUMENT);
    assert_false(tu_exists(old));
    free(old);
    ecf8_file *fz, *fp;
    assert_int_equal(ecf8_file_open(z, &fz), ECF8_OK);
    assert_int_equal(ecf8_file_open(p, &fp), ECF8_OK);
    assert_int_equal(ecf8_file_tensor_count(fz), ecf8_file_tensor_count(fp));
    for (size_t i = 0; i < ecf8_file_tensor_count(fz); i++) {
        ecf8_tensor_info a, b;
        assert_int_equal(ecf8_file_tensor(fz, i, &a), ECF8_OK);
        assert_int_equal(ecf8_file_tensor(fp, i, &b), ECF8_OK);
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.checksum, b.checksum);
        assert_int_equal(a.split, b.split);
        if (a.split == ECF8_SPLIT_STORED) {
            assert_int_equal(a.payload_bytes, b.payload_bytes);
            continue;
        }
        /* the payload is the coded stream: lengths and offsets are in the index */
        assert_int_equal(a.stream.n_chunks, b.stream.n_chunks);
        assert_int_equal(a.stream.coded_bytes, b.stream.coded_bytes);
        assert_memory_equal(a.stream.lengths, b.stream.lengths, sizeof a.stream.lengths);
        assert_memory_equal(a.stream.chunk_offsets, b.stream.chunk_offsets, 8 * (a.stream.n_chunks + 1));
        assert_memory_equal(a.stream.coded, b.stream.coded, a.stream.coded_bytes);
        assert_ptr_equal(a.payload, a.stream.coded);
        assert_int_equal(a.payload_bytes, a.stream.coded_bytes);
    }
    size_t hz, hp;
    const void *pz = ecf8_file_source_prefix(fz, 0, &hz), *pp = ecf8_file_source_prefix(fp, 0, &hp);
    assert_int_equal(hz, hp);
    assert_memory_equal(pz, pp, hz);
    ecf8_file_close(fz);
    ecf8_file_close(fp);
    assert_int_equal(ecf8_verify_path(z, src, 0), ECF8_OK);
    assert_int_equal(ecf8_verify_path(p, src, 0), ECF8_OK);
    free(iz), free(ip);
    tu_remove_tree(d);
    free(z), free(p), free(d);
}

/* ---- synthetic files ------------------------------------------------------------ */
typedef struct synth {
    tu_tensor t[20];
    size_t n;
    uint8_t *bufs[20];
} synth;

static void *rand_bytes(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(tu_rand(&s) >> 56);
    return p;
}

static void synth_add(synth *s, const char *name, const char *dtype, unsigned ndim, const uint64_t *shape,
                      void *data, size_t bytes)
{
    tu_tensor *t = &s->t[s->n];
    t->name = name, t->dtype = dtype, t->ndim = ndim;
    for (unsigned i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data, t->bytes = bytes;
    s->bufs[s->n++] = data;
}

static void synth_free(synth *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->bufs[i]);
}

/* Every kind of tensor a checkpoint may hold. */
static void make_every_dtype(synth *s)
{
    memset(s, 0, sizeof *s);
    size_t n8 = 64 * 96;
    uint8_t *w8 = malloc(n8);
    tu_fill_weights_e4m3(w8, n8, 17);
    synth_add(s, "layer.0.weight", "F8_E4M3", 2, (uint64_t[]){64, 96}, w8, n8);
    synth_add(s, "layer.0.weight_scale_inv", "F32", 2, (uint64_t[]){1, 1}, rand_bytes(4, 2), 4);
    uint8_t *e5 = malloc(3 * 5 * 40);
    tu_fill_weights_e4m3(e5, 600, 18);
    for (size_t i = 0; i < 600; i++) e5[i] = (uint8_t)((e5[i] & 0x80) | ((e5[i] >> 1) & 0x3C) | (e5[i] & 3));
    synth_add(s, "conv.e5m2", "F8_E5M2", 3, (uint64_t[]){3, 5, 40}, e5, 600);
    uint16_t *bf = malloc(2000 * 2);
    uint64_t r = 5;
    for (size_t i = 0; i < 2000; i++) bf[i] = (uint16_t)(0x3C00 + (tu_rand(&r) >> 54) - 512 + ((tu_rand(&r) & 1) << 15));
    synth_add(s, "embed.bf16", "BF16", 1, (uint64_t[]){2000}, bf, 4000);
    uint16_t *h = malloc(10 * 100 * 2);
    for (size_t i = 0; i < 1000; i++) h[i] = (uint16_t)(0x2000 + (tu_rand(&r) >> 53));
    synth_add(s, "head.f16", "F16", 2, (uint64_t[]){10, 100}, h, 2000);
    synth_add(s, "scale.f32", "F32", 2, (uint64_t[]){7, 3}, rand_bytes(84, 3), 84);
    synth_add(s, "ids.i64", "I64", 1, (uint64_t[]){5}, rand_bytes(40, 4), 40);
    synth_add(s, "mask.bool", "BOOL", 1, (uint64_t[]){3}, rand_bytes(3, 5), 3);
    /* A coded 16-bit tensor at an odd file offset (after the 3 bytes). */
    uint16_t *odd = malloc(32 * 64 * 2);
    for (size_t i = 0; i < 32 * 64; i++) odd[i] = (uint16_t)(0xBC00 + (tu_rand(&r) >> 55));
    synth_add(s, "odd.bf16", "BF16", 2, (uint64_t[]){32, 64}, odd, 32 * 64 * 2);
    synth_add(s, "empty.f8", "F8_E4M3", 2, (uint64_t[]){0, 16}, malloc(1), 0);
    synth_add(s, "scalar.bf16", "BF16", 0, NULL, rand_bytes(2, 6), 2);
    synth_add(s, "quant.unknown", "Q4_WEIRD", 1, (uint64_t[]){16}, rand_bytes(10, 7), 10);
    synth_add(s, "scale.e8m0", "F8_E8M0", 1, (uint64_t[]){4}, rand_bytes(4, 8), 4);
    synth_add(s, "deep.f8", "F8_E4M3", 8, (uint64_t[]){2, 1, 2, 1, 2, 1, 2, 64}, malloc(1024), 1024);
    tu_fill_weights_e4m3(s->bufs[s->n - 1], 1024, 19);
    synth_add(s, "tail.f64", "F64", 1, (uint64_t[]){3}, rand_bytes(24, 9), 24);
}

static const char *METADATA = "{\"format\":\"pt\",\"note\":\"quoted \\\"text\\\" and \\u00e9\"}";

static void check_accessors(const char *ecf, const char *src, const synth *s)
{
    ecf8_file *f = NULL;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    struct stat sb, ss;
    assert_int_equal(stat(ecf, &sb), 0);
    assert_int_equal(stat(src, &ss), 0);
    assert_int_equal(ecf8_file_size(f), (uint64_t)sb.st_size);
    assert_int_equal(ecf8_file_source_count(f), 1);
    assert_string_equal(ecf8_file_source_path(f, 0), "");
    assert_null(ecf8_file_source_path(f, 1));
    assert_int_equal(ecf8_file_source_bytes(f, 0), (uint64_t)ss.st_size);
    assert_int_equal(ecf8_file_source_bytes(f, 1), 0);
    assert_int_equal(ecf8_file_is_directory(f), 0);
    assert_int_equal(ecf8_file_tensor_count(f), s->n);
    for (size_t i = 0; i < s->n; i++) {
        const tu_tensor *t = &s->t[i];
        size_t idx = 999;
        assert_int_equal(ecf8_file_find(f, t->name, &idx), ECF8_OK);
        ecf8_tensor_info info;
        assert_int_equal(ecf8_file_tensor(f, idx, &info), ECF8_OK);
        assert_string_equal(info.name, t->name);
        assert_string_equal(info.dtype_name, t->dtype);
        assert_int_equal(info.dtype, ecf8_dtype_from_name(t->dtype));
        assert_int_equal(info.ndim, t->ndim);
        uint64_t n = 1;
        for (unsigned d = 0; d < ECF8_MAX_DIMS; d++) {
            assert_int_equal(info.shape[d], d < t->ndim ? t->shape[d] : 0);
            if (d < t->ndim) n *= t->shape[d];
        }
        assert_int_equal(info.n_elements, n);
        assert_int_equal(info.source_bytes, t->bytes);
        assert_int_equal(info.checksum, XXH3_64bits(t->data, t->bytes));
        assert_int_equal(info.source_file, 0);
        assert_true((uintptr_t)info.payload % 64 == 0); /* mmap base + 64-aligned offset */
        if (info.dtype == ECF8_DTYPE_OTHER || n == 0) assert_int_equal(info.split, ECF8_SPLIT_STORED);
        if (info.split == ECF8_SPLIT_STORED) {
            assert_int_equal(info.payload_bytes, t->bytes);
            if (t->bytes) assert_memory_equal(info.payload, t->data, t->bytes);
        } else {
            assert_true(info.split == ECF8_SPLIT_EXPONENT || info.split == ECF8_SPLIT_BYTE);
            assert_true(info.payload_bytes < info.source_bytes);
            assert_int_equal(info.stream.split, info.split);
            assert_int_equal(info.stream.n_elements, n);
            assert_int_equal(ecf8_stream_validate(&info.stream), ECF8_OK);
        }
        uint8_t *buf = malloc(t->bytes + 1);
        assert_int_equal(ecf8_file_read_tensor(f, idx, buf, t->bytes, 0), ECF8_OK);
        if (t->bytes) assert_memory_equal(buf, t->data, t->bytes);
        if (t->bytes) assert_int_equal(ecf8_file_read_tensor(f, idx, buf, t->bytes - 1, 0), ECF8_ERR_ARGUMENT);
        free(buf);
    }
    /* Tensors appear in source order, payloads in file order. */
    uint64_t prev = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info info;
        assert_int_equal(ecf8_file_tensor(f, i, &info), ECF8_OK);
        uint64_t at = (uint64_t)(uintptr_t)info.payload;
        assert_true(at >= prev);
        prev = at + info.payload_bytes;
    }
    size_t idx;
    ecf8_tensor_info info;
    assert_int_equal(ecf8_file_find(f, "no.such.tensor", &idx), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), "no.such.tensor"));
    assert_int_equal(ecf8_file_tensor(f, s->n, &info), ECF8_ERR_ARGUMENT);
    uint8_t one[8];
    assert_int_equal(ecf8_file_read_tensor(f, s->n, one, 8, 0), ECF8_ERR_ARGUMENT);
    ecf8_file_close(f);
    ecf8_file_close(NULL);
}

static void test_synthetic_every_dtype(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    synth s;
    make_every_dtype(&s);
    size_t size;
    uint8_t *img = tu_make_safetensors(s.t, s.n, METADATA, &size);
    char *src = tu_strdup(tu_path(d, "every.safetensors")), *ecf = tu_strdup(tu_path(d, "every.ecf8"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    roundtrip_file(src, d, NULL);
    tu_compress_ok(src, ecf, NULL);
    check_accessors(ecf, src, &s);
    /* The F8/BF16/F16 weights are coded. */
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    const char *coded[] = {"layer.0.weight", "deep.f8", "odd.bf16"};
    for (size_t i = 0; i < 3; i++) {
        size_t idx;
        ecf8_tensor_info info;
        assert_int_equal(ecf8_file_find(f, coded[i], &idx), ECF8_OK);
        assert_int_equal(ecf8_file_tensor(f, idx, &info), ECF8_OK);
        assert_int_not_equal(info.split, ECF8_SPLIT_STORED);
    }
    ecf8_file_close(f);
    /* A subset without metadata. */
    free(img);
    img = tu_make_safetensors(s.t + 4, 4, NULL, &size);
    assert_int_equal(tu_write_file(src, img, size), 0);
    roundtrip_file(src, d, NULL);
    /* No tensors at all: just a header. */
    free(img);
    img = tu_make_safetensors(NULL, 0, METADATA, &size);
    assert_int_equal(tu_write_file(src, img, size), 0);
    roundtrip_file(src, d, NULL);
    free(img);
    img = tu_make_safetensors(NULL, 0, NULL, &size);
    assert_int_equal(tu_write_file(src, img, size), 0);
    roundtrip_file(src, d, NULL);
    free(img);
    synth_free(&s);
    tu_remove_tree(d);
    free(src), free(ecf), free(d);
}

/* A byte drawn from a skewed law: the sum of four 2-bit draws (0..12, most
 * near 6) shifted by `base`, as packed FP4 nibbles, E8M0 exponents and
 * small integers are. */
static uint8_t skewed(uint64_t *r, unsigned base)
{
    uint64_t x = tu_rand(r);
    return (uint8_t)(base + (x >> 62) + (x >> 60 & 3) + (x >> 58 & 3) + (x >> 56 & 3) * 2);
}

/* The dtypes of format 1.3: FNUZ weights, FP4 packed two to a byte in U8,
 * E8M0 scales, I8; a random U8 tensor that does not shrink (stored). */
static void make_dtypes_1_3(synth *s)
{
    memset(s, 0, sizeof *s);
    uint64_t r = 41;
    uint8_t *e4 = malloc(48 * 256), *e5 = malloc(8 * 500), *fp4 = malloc(64 * 128), *e8 = malloc(64 * 8),
            *i8 = malloc(3 * 7 * 33);
    tu_fill_weights_e4m3(e4, 48 * 256, 23);
    tu_fill_weights_e4m3(e5, 8 * 500, 24);
    for (size_t i = 0; i < 8 * 500; i++) e5[i] = (uint8_t)((e5[i] & 0x80) | ((e5[i] >> 1) & 0x3C) | (e5[i] & 3));
    for (size_t i = 0; i < 64 * 128; i++) fp4[i] = (uint8_t)(skewed(&r, 0) >> 1 | (skewed(&r, 0) >> 1) << 4);
    for (size_t i = 0; i < 64 * 8; i++) e8[i] = skewed(&r, 116);
    for (size_t i = 0; i < 3 * 7 * 33; i++) i8[i] = (uint8_t)(skewed(&r, 0) - 6);
    synth_add(s, "a.weight", "F8_E4M3FNUZ", 2, (uint64_t[]){48, 256}, e4, 48 * 256);
    synth_add(s, "b.weight", "F8_E5M2FNUZ", 1, (uint64_t[]){8 * 500}, e5, 8 * 500);
    synth_add(s, "mlp.weight_packed", "U8", 2, (uint64_t[]){64, 128}, fp4, 64 * 128);
    synth_add(s, "mlp.weight_scale", "F8_E8M0", 2, (uint64_t[]){64, 8}, e8, 64 * 8);
    synth_add(s, "q.weight", "I8", 3, (uint64_t[]){3, 7, 33}, i8, 3 * 7 * 33);
    synth_add(s, "noise", "U8", 1, (uint64_t[]){100}, rand_bytes(100, 12), 100);
}

/* Every format 1.3 dtype round-trips byte for byte in both stream layouts,
 * both index formats and with each split asked for; the coded ones make a
 * 1.3 file, a file whose U8 tensor is stored stays what it was before. */
static void test_dtypes_1_3_roundtrip(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    synth s;
    make_dtypes_1_3(&s);
    size_t size;
    uint8_t *img = tu_make_safetensors(s.t, s.n, NULL, &size);
    char *src = tu_strdup(tu_path(d, "v13.safetensors")), *ecf = tu_strdup(tu_path(d, "v13.ecf8"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    free(img);
    const ecf8_split splits[] = {ECF8_SPLIT_AUTO, ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE};
    for (unsigned layout = 0; layout < 2; layout++)
        for (size_t k = 0; k < 3; k++)
            for (int plain = 0; plain < 2; plain++) {
                ecf8_compress_options o;
                ecf8_compress_options_init(&o);
                o.split = splits[k], o.stream_layout = layout, o.plain_index = plain;
                o.chunk_elements = 512;
                roundtrip_file(src, d, &o);
                tu_compress_ok(src, ecf, &o);
                ecf8_file *f;
                assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
                unsigned major, minor;
                ecf8_file_format_version(f, &major, &minor);
                assert_int_equal(minor, 3);
                for (size_t i = 0; i < s.n; i++) {
                    ecf8_tensor_info t;
                    assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
                    assert_int_equal(t.dtype, ecf8_dtype_from_name(s.t[i].dtype));
                    bool byte_only = t.dtype == ECF8_DTYPE_U8 || t.dtype == ECF8_DTYPE_I8 ||
                                     t.dtype == ECF8_DTYPE_F8_E8M0;
                    if (!strcmp(t.name, "noise")) {
                        assert_int_equal(t.split, ECF8_SPLIT_STORED);
                    } else if (byte_only) {
                        /* whatever was asked; the small ones may not repay 36-byte lane tables */
                        assert_int_not_equal(t.split, ECF8_SPLIT_EXPONENT);
                        if (!layout || !strcmp(t.name, "mlp.weight_packed")) assert_int_equal(t.split, ECF8_SPLIT_BYTE);
                    } else {
                        assert_int_not_equal(t.split, ECF8_SPLIT_STORED);
                        if (splits[k] != ECF8_SPLIT_AUTO) assert_int_equal(t.split, splits[k]);
                    }
                    if (t.split != ECF8_SPLIT_STORED) assert_int_equal(t.stream.stream_layout, layout);
                }
                ecf8_file_close(f);
            }
    /* Only the stored U8 tensor and an F8_E4M3 weight: format 1.1 as before. */
    synth one;
    memset(&one, 0, sizeof one);
    synth_add(&one, "w", "F8_E4M3", 2, (uint64_t[]){48, 256}, malloc(48 * 256), 48 * 256);
    tu_fill_weights_e4m3(one.bufs[0], 48 * 256, 23);
    synth_add(&one, "noise", "U8", 1, (uint64_t[]){100}, rand_bytes(100, 12), 100);
    img = tu_make_safetensors(one.t, one.n, NULL, &size);
    assert_int_equal(tu_write_file(src, img, size), 0);
    free(img);
    tu_compress_ok(src, ecf, NULL);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    unsigned major, minor;
    ecf8_file_format_version(f, &major, &minor);
    assert_int_equal(minor, 1);
    ecf8_tensor_info t;
    assert_int_equal(ecf8_file_tensor(f, 1, &t), ECF8_OK);
    assert_int_equal(t.dtype, ECF8_DTYPE_U8); /* code 0 on disk, the name's dtype read */
    assert_int_equal(t.split, ECF8_SPLIT_STORED);
    ecf8_file_close(f);
    synth_free(&one);
    synth_free(&s);
    tu_remove_tree(d);
    free(src), free(ecf), free(d);
}

/* A hand-written header: keys out of data order, odd spacing, a metadata
 * object in the middle, trailing padding. */
static void test_header_verbatim(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    uint8_t w[64 * 64];
    tu_fill_weights_e4m3(w, sizeof w, 4);
    const char *json = "{ \"b\" : {\"dtype\":\"F8_E4M3\", \"shape\":[64,64], \"data_offsets\":[8,4104]},\n"
                       "  \"__metadata__\": {\"k\": \"v\"},\n"
                       "  \"a\":{\"data_offsets\":[0,8],\"shape\":[2],\"dtype\":\"F32\"}}\n     ";
    size_t hl = strlen(json), size = 8 + hl + 8 + sizeof w;
    uint8_t *img = malloc(size);
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)(hl >> (8 * i));
    memcpy(img + 8, json, hl);
    memset(img + 8 + hl, 0x3F, 8);
    memcpy(img + 16 + hl, w, sizeof w);
    char *src = tu_strdup(tu_path(d, "h.safetensors"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    roundtrip_file(src, d, NULL);
    free(img);
    tu_remove_tree(d);
    free(src), free(d);
}

/* An empty tensor may share its offset with the next tensor; the header
 * may list it after that tensor. */
static void test_empty_tensor_shares_offset(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    uint8_t data[16] = {1, 2, 3};
    const char *orders[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
        "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
        "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}",
    };
    char *src = tu_strdup(tu_path(d, "e.safetensors"));
    int failed = -1;
    for (int k = 0; k < 3 && failed < 0; k++) {
        size_t hl = strlen(orders[k]);
        uint8_t *img = malloc(8 + hl + 16);
        for (int i = 0; i < 8; i++) img[i] = (uint8_t)(hl >> (8 * i));
        memcpy(img + 8, orders[k], hl);
        memcpy(img + 8 + hl, data, 16);
        assert_int_equal(tu_write_file(src, img, 8 + hl + 16), 0);
        free(img);
        char *ecf = tu_strdup(tu_path(d, "e.ecf8"));
        if (tu_compress_over(src, ecf, NULL) != ECF8_OK) failed = k;
        else roundtrip_file(src, d, NULL);
        free(ecf);
    }
    tu_remove_tree(d);
    free(src), free(d);
    if (failed >= 0)
        tu_bug_returned("BUG-5 empty-tensor-order",
                     "ecf8_st_open sorts tensors by offset only; a zero-size tensor listed after the "
                     "tensor that starts at the same offset is reported as overlapping");
}

/* Names longer than 64 KiB are legal safetensors. */
static void test_long_tensor_name(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    size_t nl = 70000;
    char *name = malloc(nl + 1);
    for (size_t i = 0; i < nl; i++) name[i] = (char)('a' + i % 26);
    name[nl] = 0;
    uint8_t *w = malloc(4096);
    tu_fill_weights_e4m3(w, 4096, 9);
    tu_tensor t[2] = {{.name = name, .dtype = "F8_E4M3", .ndim = 2, .shape = {64, 64}, .data = w, .bytes = 4096},
                      {.name = "short", .dtype = "F32", .ndim = 1, .shape = {1}, .data = w, .bytes = 4}};
    size_t size;
    uint8_t *img = tu_make_safetensors(t, 2, NULL, &size);
    char *src = tu_strdup(tu_path(d, "n.safetensors")), *ecf = tu_strdup(tu_path(d, "n.ecf8"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    int cst = ecf8_compress_path(src, ecf, NULL);
    ecf8_file *f = NULL;
    int ost = cst == ECF8_OK ? ecf8_file_open(ecf, &f) : cst;
    ecf8_file_close(f);
    free(img), free(w), free(name);
    if (cst == ECF8_OK && ost != ECF8_OK) {
        tu_remove_tree(d);
        free(src), free(ecf), free(d);
        tu_bug_returned("BUG-6 long-name",
                     "tensor names over 65535 bytes are written by compress but refused by "
                     "ecf8_file_open ('tensor name out of bounds'): an unreadable container");
    }
    /* Either refused up front with no output, or a readable container. */
    if (cst == ECF8_OK) roundtrip_file(src, d, NULL);
    else assert_false(tu_exists(ecf));
    tu_remove_tree(d);
    free(src), free(ecf), free(d);
}

/* ---- sharded checkpoints ------------------------------------------------------ */
static const char *INDEX_JSON =
    "{\n  \"metadata\": {\"total_size\": 1},\n  \"weight_map\": {\n"
    "    \"encoder.layer.1.attention.output.dense.weight\": \"model-00001-of-00002.safetensors\",\n"
    "    \"layer.0.weight\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";

static char *make_shard_dir(const char *base)
{
    char *dir = tu_strdup(tu_path(base, "ckpt"));
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(tu_copy_file(tu_data_path(TU_SLICES[1]), tu_path(dir, "model-00001-of-00002.safetensors")), 0);
    synth s;
    make_every_dtype(&s);
    size_t size;
    uint8_t *img = tu_make_safetensors(s.t, s.n, METADATA, &size);
    assert_int_equal(tu_write_file(tu_path(dir, "model-00002-of-00002.safetensors"), img, size), 0);
    free(img);
    synth_free(&s);
    assert_int_equal(tu_write_file(tu_path(dir, "model.safetensors.index.json"), INDEX_JSON, strlen(INDEX_JSON)), 0);
    assert_int_equal(tu_write_file(tu_path(dir, "README.md"), "not part of it\n", 15), 0);
    return dir;
}

static const char *SHARDS[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                               "model.safetensors.index.json"};

static void test_sharded_directory(void **state)
{
    (void)state;
    char *base = tu_strdup(tu_temp_dir());
    char *dir = make_shard_dir(base);
    char *ecf = tu_strdup(tu_path(base, "ckpt.ecf8")), *out = tu_strdup(tu_path(base, "restored"));
    tu_compress_ok(dir, ecf, NULL);
    assert_int_equal(tu_count_tmp_files(base), 0);
    assert_int_equal(tu_count_tmp_files(dir), 0);

    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    assert_int_equal(ecf8_file_is_directory(f), 1);
    assert_int_equal(ecf8_file_source_count(f), 3);
    size_t tensors = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(ecf8_file_source_path(f, i), SHARDS[i]);
        struct stat sb;
        assert_int_equal(stat(tu_path(dir, SHARDS[i]), &sb), 0);
        assert_int_equal(ecf8_file_source_bytes(f, i), (uint64_t)sb.st_size);
    }
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info info;
        assert_int_equal(ecf8_file_tensor(f, i, &info), ECF8_OK);
        assert_true(info.source_file < 2); /* the json holds no tensors */
        tensors++;
    }
    assert_int_equal(tensors, 8 + 15);
    size_t idx;
    ecf8_tensor_info info;
    assert_int_equal(ecf8_file_find(f, "layer.0.weight", &idx), ECF8_OK);
    assert_int_equal(ecf8_file_tensor(f, idx, &info), ECF8_OK);
    assert_int_equal(info.source_file, 1);
    ecf8_file_close(f);

    assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_OK);
    for (size_t i = 0; i < 3; i++) assert_true(tu_files_equal(tu_path(dir, SHARDS[i]), tu_path(out, SHARDS[i])));
    assert_false(tu_exists(tu_path(out, "README.md")));
    assert_int_equal(tu_count_entries(out), 3);
    /* Again over the existing directory: its files are refused, all of them
     * before anything is written, unless overwrite is set. */
    assert_int_equal(ecf8_decompress_path(ecf, out, 1), ECF8_ERR_EXISTS);
    assert_non_null(strstr(ecf8_last_error(), "already exists"));
    assert_int_equal(tu_count_tmp_files(out), 0);
    assert_int_equal(tu_decompress_over(ecf, out, 1), ECF8_OK);
    assert_int_equal(tu_count_entries(out), 3);
    assert_int_equal(ecf8_verify_path(ecf, NULL, 0), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, dir, 0), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, out, 2), ECF8_OK);

    /* A changed shard is a mismatch naming that shard. */
    char *shard = tu_strdup(tu_path(out, SHARDS[1]));
    size_t n;
    uint8_t *b = tu_read_file(shard, &n);
    b[n - 1] ^= 1;
    assert_int_equal(tu_write_file(shard, b, n), 0);
    assert_int_equal(ecf8_verify_path(ecf, out, 0), ECF8_ERR_MISMATCH);
    assert_non_null(strstr(ecf8_last_error(), shard));
    /* A missing shard cannot be compared. */
    remove(shard);
    assert_int_equal(ecf8_verify_path(ecf, out, 0), ECF8_ERR_IO);
    assert_non_null(strstr(ecf8_last_error(), shard));
    free(b);
    free(shard);

    /* A directory without checkpoint files. */
    char *empty = tu_strdup(tu_path(base, "empty"));
    assert_int_equal(mkdir(empty, 0755), 0);
    char *e2 = tu_strdup(tu_path(base, "empty.ecf8"));
    assert_int_equal(ecf8_compress_path(empty, e2, NULL), ECF8_ERR_NOT_FOUND);
    assert_non_null(strstr(ecf8_last_error(), empty));
    assert_false(tu_exists(e2));
    assert_int_equal(tu_count_tmp_files(base), 0);
    tu_remove_tree(base);
    free(empty), free(e2), free(base), free(dir), free(ecf), free(out);
}

/* A failing decompress of a directory container leaves no directory and
 * no shard behind: all or nothing, like a single file. */
static void test_sharded_decompress_all_or_nothing(void **state)
{
    (void)state;
    char *base = tu_strdup(tu_temp_dir());
    char *dir = make_shard_dir(base);
    char *ecf = tu_strdup(tu_path(base, "ckpt.ecf8")), *out = tu_strdup(tu_path(base, "restored"));
    tu_compress_ok(dir, ecf, NULL);
    /* Corrupt the stored payload of the last tensor of the second shard
     * (payloads are covered by their tensor checksum only). */
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    size_t idx;
    ecf8_tensor_info info;
    assert_int_equal(ecf8_file_find(f, "tail.f64", &idx), ECF8_OK);
    assert_int_equal(ecf8_file_tensor(f, idx, &info), ECF8_OK);
    assert_int_equal(info.source_file, 1);
    size_t n, off = SIZE_MAX;
    uint8_t *img = tu_read_file(ecf, &n);
    for (size_t i = 64; i + info.payload_bytes <= n; i += 64) /* payloads are 64-aligned */
        if (!memcmp(img + i, info.payload, info.payload_bytes)) off = i;
    assert_true(off != SIZE_MAX);
    img[off] ^= 0x40;
    ecf8_file_close(f);
    assert_int_equal(tu_write_file(ecf, img, n), 0);
    free(img);
    int st = ecf8_decompress_path(ecf, out, 0);
    assert_int_equal(st, ECF8_ERR_CHECKSUM);
    assert_non_null(strstr(ecf8_last_error(), "tail.f64"));
    assert_int_equal(tu_count_tmp_files(base), 0);
    int leftovers = tu_exists(out) ? tu_count_entries(out) : 0;
    assert_int_equal(tu_exists(out) ? tu_count_tmp_files(out) : 0, 0);
    bool dir_left = tu_exists(out);
    tu_remove_tree(base);
    free(base), free(dir), free(ecf), free(out);
    if (dir_left)
        tu_bug_returned("BUG-8 partial-directory",
                     leftovers ? "decompress of a directory container that fails on a later shard "
                                 "leaves the output directory with the earlier shards in it"
                               : "decompress of a directory container that fails leaves an empty "
                                 "output directory behind");
}

/* The progress callbacks: from the calling thread, monotonic, ending at the
 * announced total. */
typedef struct progress_log {
    pthread_t caller;
    int calls, other_thread, backwards, beyond;
    uint64_t last_done, last_total;
} progress_log;

static void on_progress(void *user, uint64_t done, uint64_t total)
{
    progress_log *l = user;
    l->calls++;
    if (!pthread_equal(pthread_self(), l->caller)) l->other_thread++;
    if (done < l->last_done) l->backwards++;
    if (done > total) l->beyond++;
    l->last_done = done, l->last_total = total;
}

static void assert_progress_sane(const progress_log *l, int min_calls)
{
    assert_true(l->calls >= min_calls);
    assert_int_equal(l->other_thread, 0);
    assert_int_equal(l->backwards, 0);
    assert_int_equal(l->beyond, 0);
}

/* Decompress and verify (with and without the original) report the bytes
 * of the original file(s): from 0 up to exactly their total, one call per
 * header and tensor at least. */
static void check_decode_progress(const char *ecf, const char *original, const char *out)
{
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < ecf8_file_source_count(f); i++) total += ecf8_file_source_bytes(f, i);
    int min_calls = 1 + (int)ecf8_file_source_count(f) + (int)ecf8_file_tensor_count(f);
    ecf8_file_close(f);
    for (int call = 0; call < 3; call++) {
        progress_log log = {.caller = pthread_self()};
        ecf8_decode_options o = {
            .struct_size = sizeof o, .threads = 4, .progress = on_progress, .progress_user = &log};
        int st = call == 0 ? ecf8_decompress_path_ex(ecf, out, &o)
                 : call == 1 ? ecf8_verify_path_ex(ecf, NULL, &o)
                             : ecf8_verify_path_ex(ecf, original, &o);
        if (st) fail_msg("call %d: %d %s", call, st, ecf8_last_error());
        assert_progress_sane(&log, min_calls);
        assert_int_equal(log.last_total, total);
        assert_int_equal(log.last_done, total);
    }
    /* NULL options are the defaults; a struct too small is refused. */
    assert_int_equal(ecf8_verify_path_ex(ecf, original, NULL), ECF8_OK);
    ecf8_decode_options small;
    ecf8_decode_options_init(&small);
    small.struct_size = offsetof(ecf8_decode_options, progress);
    assert_int_equal(ecf8_verify_path_ex(ecf, NULL, &small), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_decompress_path_ex(ecf, out, &small), ECF8_ERR_ARGUMENT);
}

static void test_progress_callback(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *dir = make_shard_dir(d);
    const char *inputs[] = {tu_data_path(TU_SLICES[0]), dir};
    char *ecf = tu_strdup(tu_path(d, "p.ecf8"));
    for (size_t i = 0; i < 2; i++) {
        char *in = tu_strdup(inputs[i]);
        progress_log log = {.caller = pthread_self()};
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.progress = on_progress;
        o.progress_user = &log;
        o.threads = 4;
        tu_compress_ok(in, ecf, &o);
        /* Up to the whole input, gaps between tensors included. */
        assert_progress_sane(&log, 1);
        assert_int_equal(log.last_done, log.last_total);
        char *out = tu_strdup(tu_path(d, i ? "restored" : "restored.safetensors"));
        check_decode_progress(ecf, in, out);
        tu_remove_tree(out);
        free(out);
        free(in);
    }
    tu_remove_tree(d);
    free(d), free(dir), free(ecf);
}

/* A tensor of several progress bands (40 MiB, either layout) moves the
 * bar within itself: at least two reports between its start and its end,
 * and the output is still the original byte for byte. */
static void test_progress_within_tensor(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const size_t rows = 4096, cols = 10240, n = rows * cols;
    uint8_t *w = malloc(n);
    assert_non_null(w);
    tu_fill_weights_e4m3(w, n, 7);
    tu_tensor t = {"big.weight", "F8_E4M3", 2, {rows, cols}, w, n};
    size_t size;
    uint8_t *img = tu_make_safetensors(&t, 1, NULL, &size);
    char *src = tu_strdup(tu_path(d, "big.safetensors")), *ecf = tu_strdup(tu_path(d, "big.ecf8"));
    char *out = tu_strdup(tu_path(d, "big.out.safetensors"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    for (unsigned layout = 0; layout <= 1; layout++) {
        ecf8_compress_options co;
        ecf8_compress_options_init(&co);
        co.stream_layout = layout, co.overwrite = 1;
        tu_compress_ok(src, ecf, &co);
        progress_log log = {.caller = pthread_self()};
        ecf8_decode_options o = {.struct_size = sizeof o, .progress = on_progress, .progress_user = &log};
        assert_int_equal(ecf8_decompress_path_ex(ecf, out, &o), ECF8_OK);
        assert_progress_sane(&log, 5); /* 0, the header, >= 2 bands inside, the end */
        assert_int_equal(log.last_done, size);
        size_t got_size;
        uint8_t *got = tu_read_file(out, &got_size);
        assert_int_equal(got_size, size);
        assert_memory_equal(got, img, size);
        free(got);
        remove(out);
    }
    free(w), free(img), free(src), free(ecf), free(out);
    tu_remove_tree(d);
    free(d);
}

/* ecf8_file_open_index: the same tensors, geometry and format version as
 * ecf8_file_open, no payloads in its infos (decoding them is an argument
 * error, not a crash), and ecf8_file_read_tensor reads each from disk. */
static void test_open_index(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *ecf = tu_strdup(tu_path(d, "oi.ecf8"));
    for (unsigned layout = 0; layout <= 1; layout++) {
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.stream_layout = layout, o.overwrite = 1;
        tu_compress_ok(tu_data_path(TU_SLICES[0]), ecf, &o);
        ecf8_file *whole, *index;
        assert_int_equal(ecf8_file_open(ecf, &whole), ECF8_OK);
        assert_int_equal(ecf8_file_open_index(ecf, &index), ECF8_OK);
        unsigned major, minor;
        ecf8_file_format_version(index, &major, &minor);
        assert_int_equal(major, 1);
        assert_int_equal(minor, layout ? 2 : 1);
        assert_int_equal(ecf8_file_tensor_count(index), ecf8_file_tensor_count(whole));
        for (size_t i = 0; i < ecf8_file_tensor_count(whole); i++) {
            ecf8_tensor_info a, b;
            assert_int_equal(ecf8_file_tensor(whole, i, &a), ECF8_OK);
            assert_int_equal(ecf8_file_tensor(index, i, &b), ECF8_OK);
            assert_string_equal(a.name, b.name);
            assert_int_equal(a.checksum, b.checksum);
            assert_null(b.payload);
            uint8_t *x = malloc(a.source_bytes + 1), *y = malloc(a.source_bytes + 1);
            assert_int_equal(ecf8_file_read_tensor(whole, i, x, a.source_bytes, 1), ECF8_OK);
            assert_int_equal(ecf8_file_read_tensor(index, i, y, a.source_bytes, 1), ECF8_OK);
            assert_memory_equal(x, y, a.source_bytes);
            if (b.split != ECF8_SPLIT_STORED) {
                assert_int_equal(b.stream.stream_layout, layout);
                assert_int_equal(b.stream.n_chunks, a.stream.n_chunks);
                assert_null(b.stream.coded);
                assert_int_equal(ecf8_stream_decode(&b.stream, y, a.source_bytes, 1), ECF8_ERR_ARGUMENT);
                assert_int_equal(ecf8_stream_validate(&b.stream), ECF8_ERR_CORRUPT);
            }
            free(x), free(y);
        }
        ecf8_file_close(whole);
        ecf8_file_close(index);
    }
    tu_remove_tree(d);
    free(d), free(ecf);
}

/* ecf8_inspect_path reports the bytes of tensors analysed: from 0, one call
 * per tensor at least, ending at the sum of the tensors' sizes. */
static void test_inspect_progress(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    char *src = tu_strdup(tu_data_path(TU_SLICES[1])), *ecf = tu_strdup(tu_path(d, "ip.ecf8"));
    tu_compress_ok(src, ecf, NULL);
    const char *inputs[] = {src, ecf};
    for (size_t i = 0; i < 2; i++) {
        progress_log log = {.caller = pthread_self()};
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.threads = 4;
        o.progress = on_progress;
        o.progress_user = &log;
        ecf8_report r;
        int st = ecf8_inspect_path(inputs[i], &o, &r);
        if (st) fail_msg("inspect %s: %d %s", inputs[i], st, ecf8_last_error());
        uint64_t total = 0;
        for (size_t k = 0; k < r.n_tensors; k++) total += r.tensors[k].source_bytes;
        assert_true(total > 0);
        assert_progress_sane(&log, 1 + (int)r.n_tensors);
        assert_int_equal(log.last_total, total);
        assert_int_equal(log.last_done, total);
        ecf8_report_free(&r);
    }
    /* An options struct too small to hold the callback is refused. */
    ecf8_compress_options small;
    ecf8_compress_options_init(&small);
    small.struct_size = offsetof(ecf8_compress_options, progress);
    ecf8_report r;
    assert_int_equal(ecf8_inspect_path(src, &small, &r), ECF8_ERR_ARGUMENT);
    assert_int_equal(r.n_tensors, 0);
    tu_remove_tree(d);
    free(d), free(src), free(ecf);
}

/* Directories: an empty .json shard index, a header-only shard. */
static void test_directory_odd_members(void **state)
{
    (void)state;
    char *base = tu_strdup(tu_temp_dir());
    char *dir = tu_strdup(tu_path(base, "odd")), *ecf = tu_strdup(tu_path(base, "odd.ecf8")),
         *out = tu_strdup(tu_path(base, "odd.out"));
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(tu_write_file(tu_path(dir, "empty.json"), "", 0), 0);
    size_t size;
    uint8_t *img = tu_make_safetensors(NULL, 0, METADATA, &size);
    assert_int_equal(tu_write_file(tu_path(dir, "header-only.safetensors"), img, size), 0);
    free(img);
    assert_int_equal(tu_copy_file(tu_data_path(TU_SLICES[2]), tu_path(dir, "weights.safetensors")), 0);
    tu_compress_ok(dir, ecf, NULL);
    assert_int_equal(ecf8_decompress_path(ecf, out, 0), ECF8_OK);
    const char *names[] = {"empty.json", "header-only.safetensors", "weights.safetensors"};
    for (size_t i = 0; i < 3; i++) assert_true(tu_files_equal(tu_path(dir, names[i]), tu_path(out, names[i])));
    /* Verify against the originals, in a child: comparing the empty member
     * passes NULL to memcmp (undefined behaviour that UBSan aborts on). */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* one thread: the pool's locks may be held by threads fork dropped */
        alarm(120);
        _exit(ecf8_verify_path(ecf, dir, 1) == ECF8_OK ? 0 : 3);
    }
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    bool crashed = !WIFEXITED(wst) || (WEXITSTATUS(wst) != 0 && WEXITSTATUS(wst) != 3);
    if (!crashed) assert_int_equal(WEXITSTATUS(wst), 0);
    /* A single-file container decompressed onto a directory: refused. */
    char *single = tu_strdup(tu_path(base, "single.ecf8"));
    tu_compress_ok(tu_data_path(TU_SLICES[1]), single, NULL);
    assert_int_equal(ecf8_decompress_path(single, out, 0), ECF8_ERR_ARGUMENT);
    assert_non_null(strstr(ecf8_last_error(), out));
    assert_non_null(strstr(ecf8_last_error(), "not a regular file"));
    assert_int_equal(tu_count_entries(out), 3);
    assert_int_equal(tu_count_tmp_files(base), 0);
    tu_remove_tree(base);
    free(base), free(dir), free(ecf), free(out), free(single);
    if (crashed)
        tu_bug_returned("BUG-13 verify-empty-member",
                        "sink_compare (container_rebuild.c) calls memcmp(NULL + 0, data, 0) for an "
                        "empty original file: undefined behaviour, an abort under UBSan");
}


/* ---- tensors larger than the encode window ----------------------------------
 * A tensor larger than the compressor's window is read, coded and written
 * a window at a time (issue 14): the container must be byte for byte the
 * one the whole-tensor path makes, in every layout, index format, split
 * and thread count, for tensors coded, stored (incompressible), of a
 * dtype not coded, of one symbol, nearly incompressible (where the choice
 * needs exact sizes), of long rows cut into chunks and of 1-D shape. */
static uint8_t *near_random_e4m3(size_t n, unsigned skew, uint64_t seed)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint64_t rs = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = tu_rand(&rs);
        uint8_t b = (uint8_t)(r >> 8);
        if (r % skew == 0) b &= 0x87; /* exponent field 0 a little more often */
        p[i] = b;
    }
    return p;
}

static void test_windowed_encode_identical(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const size_t rows = 384, cols = 4000, n = rows * cols; /* 1.5 MB of FP8: not a small tensor */
    uint8_t *e4 = tu_make_weights(ECF8_DTYPE_F8_E4M3, n, 11);
    uint8_t *e5 = tu_make_weights(ECF8_DTYPE_F8_E5M2, n, 12);
    uint8_t *bf = tu_make_weights(ECF8_DTYPE_BF16, n, 13);
    uint8_t *f16 = tu_make_weights(ECF8_DTYPE_F16, n, 14);
    uint8_t *noise = malloc(n), *zeros = calloc(1, n);
    assert_non_null(noise), assert_non_null(zeros);
    uint64_t rs = 99;
    for (size_t i = 0; i < n; i++) noise[i] = (uint8_t)(tu_rand(&rs) >> 16);
    uint8_t *near8 = near_random_e4m3(n, 8, 5), *near16 = near_random_e4m3(n, 16, 6);
    tu_tensor t[] = {
        {"e4m3", "F8_E4M3", 2, {rows, cols}, e4, n},
        {"e5m2.long_rows", "F8_E5M2", 2, {3, n / 3}, e5, n},
        {"bf16", "BF16", 3, {rows, 20, cols / 20}, bf, 2 * n},
        {"f16.flat", "F16", 1, {n}, f16, 2 * n},
        {"noise", "F8_E4M3", 2, {rows, cols}, noise, n},
        {"zeros", "F8_E4M3", 2, {rows, cols}, zeros, n},
        {"near8", "F8_E4M3", 2, {rows, cols}, near8, n},
        {"near16", "F8_E4M3", 2, {rows, cols}, near16, n},
        {"f32", "F32", 2, {rows, cols / 4}, e4, n},
        {"small", "F8_E4M3", 2, {10, 100}, e4, 1000},
    };
    size_t size;
    uint8_t *img = tu_make_safetensors(t, sizeof t / sizeof t[0], METADATA, &size);
    char *src = tu_strdup(tu_path(d, "big.safetensors"));
    char *whole = tu_strdup(tu_path(d, "whole.ecf8")), *win = tu_strdup(tu_path(d, "win.ecf8"));
    char *out = tu_strdup(tu_path(d, "out.safetensors"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    const uint64_t windows[] = {70000, 4096 * 3 + 2};
    for (unsigned combo = 0; combo < 24; combo++) {
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.stream_layout = combo & 1;
        o.plain_index = (combo >> 1) & 1;
        o.split = (ecf8_split[]){ECF8_SPLIT_AUTO, ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE}[(combo >> 2) % 3];
        o.threads = combo >= 12 ? 3 : 1;
        if (combo == 23) o.chunk_elements = 1000; /* rows of 4000 cut in 4; 1-D in pieces */
        ecf8_test_encode_window_bytes = 0;
        tu_compress_ok(src, whole, &o);
        ecf8_test_encode_window_bytes = windows[combo & 1];
        tu_compress_ok(src, win, &o);
        ecf8_test_encode_window_bytes = 0;
        if (!tu_files_equal(whole, win)) fail_msg("combo %u: windowed output differs", combo);
    }
    /* What it wrote rebuilds the input. */
    ecf8_test_encode_window_bytes = 50000;
    roundtrip_file(src, d, NULL);
    ecf8_test_encode_window_bytes = 0;
    free(img);
    free(e4), free(e5), free(bf), free(f16), free(noise), free(zeros), free(near8), free(near16);
    tu_remove_tree(d);
    free(src), free(whole), free(win), free(out), free(d);
}

/* The windowed path keeps the encoder's check: elements that are not
 * those its size pass saw are "input changed during compression", and
 * nothing is left behind. */
static void flip_window(const void *data, uint64_t bytes)
{
    uint8_t *p = (uint8_t *)data;
    for (uint64_t i = 0; i < bytes; i++) p[i] = 0x7e; /* one long code word, many times */
}

static void test_windowed_encode_input_changed(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    const size_t n = 2u << 20;
    uint8_t *e4 = tu_make_weights(ECF8_DTYPE_F8_E4M3, n, 21);
    tu_tensor t[] = {{"w", "F8_E4M3", 2, {512, n / 512}, e4, n}};
    size_t size;
    uint8_t *img = tu_make_safetensors(t, 1, NULL, &size);
    char *src = tu_strdup(tu_path(d, "w.safetensors")), *ecf = tu_strdup(tu_path(d, "w.ecf8"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    for (unsigned layout = 0; layout < 2; layout++) {
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.stream_layout = layout;
        ecf8_test_encode_window_bytes = 1u << 18;
        ecf8_test_hook_between_encode_passes = flip_window;
        int st = ecf8_compress_path(src, ecf, &o);
        ecf8_test_hook_between_encode_passes = NULL;
        ecf8_test_encode_window_bytes = 0;
        assert_int_equal(st, ECF8_ERR_IO);
        assert_non_null(strstr(ecf8_last_error(), "input changed during compression"));
        assert_non_null(strstr(ecf8_last_error(), "tensor 'w'"));
        assert_false(tu_exists(ecf));
        assert_int_equal(tu_count_tmp_files(d), 0);
    }
    free(img), free(e4);
    tu_remove_tree(d);
    free(src), free(ecf), free(d);
}

/* ---- many small tensors ------------------------------------------------------ */
/* Small tensors are coded and rebuilt side by side, a batch at a time: a
 * checkpoint of more of them than a batch holds gives the same container
 * with 1 and 2 threads and rebuilds with 1, 2 and all threads; with two of
 * its tensors damaged, every thread count fails naming the first of them,
 * with the message one thread gives. */
static void test_many_small_tensors(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    enum { N = 1100 };
    static tu_tensor t[N];
    static char names[N][32];
    void *data[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "layer.%zu.weight", i);
        ecf8_dtype dt = i % 3 == 0 ? ECF8_DTYPE_F8_E4M3 : ECF8_DTYPE_BF16;
        const uint64_t rows = 4 + i % 13, cols = i % 3 == 2 ? 3 : 96;
        data[i] = tu_make_weights(dt, rows * cols, 11 + i);
        t[i] = (tu_tensor){names[i], i % 3 == 0 ? "F8_E4M3" : i % 3 == 1 ? "BF16" : "F16", 2, {rows, cols},
                           data[i], rows * cols * (i % 3 == 0 ? 1 : 2)};
    }
    size_t size;
    uint8_t *img = tu_make_safetensors(t, N, NULL, &size);
    char *src = tu_strdup(tu_path(d, "many.safetensors")), *a = tu_strdup(tu_path(d, "a.ecf8"));
    char *b = tu_strdup(tu_path(d, "b.ecf8")), *out = tu_strdup(tu_path(d, "out.safetensors"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1;
    tu_compress_ok(src, a, &o);
    o.threads = 2;
    tu_compress_ok(src, b, &o);
    assert_true(tu_files_equal(a, b));
    const unsigned threads[] = {1, 2, 0};
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(tu_decompress_over(a, out, threads[k]), ECF8_OK);
        assert_true(tu_files_equal(src, out));
        assert_int_equal(ecf8_verify_path(a, src, threads[k]), ECF8_OK);
    }
    /* Damage the coded payloads of tensors 699 and 6 (in that order, the
     * later one first: a parallel run may meet either first). */
    size_t csize;
    uint8_t *c = tu_read_file(a, &csize);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open_memory(c, csize, &f), ECF8_OK);
    const size_t bad[] = {699, 6};
    size_t at[2];
    for (size_t k = 0; k < 2; k++) {
        ecf8_tensor_info info;
        assert_int_equal(ecf8_file_tensor(f, bad[k], &info), ECF8_OK);
        if (info.split == ECF8_SPLIT_STORED) fail_msg("%zu %s %u %llu", bad[k], info.name, info.split, (unsigned long long)info.payload_bytes);
        at[k] = (size_t)((const uint8_t *)info.payload - c) + info.payload_bytes / 2;
    }
    ecf8_file_close(f);
    for (size_t k = 0; k < 2; k++) c[at[k]] ^= 0x5a;
    assert_int_equal(tu_write_file(b, c, csize), 0);
    char first[1024] = "";
    for (size_t k = 0; k < 3; k++) {
        int st = tu_decompress_over(b, out, threads[k]);
        assert_int_not_equal(st, ECF8_OK);
        assert_non_null(strstr(ecf8_last_error(), "'layer.6.weight'"));
        if (k == 0) snprintf(first, sizeof first, "%s", ecf8_last_error());
        else assert_string_equal(ecf8_last_error(), first);
        assert_int_not_equal(ecf8_verify_path(b, NULL, threads[k]), ECF8_OK);
        assert_non_null(strstr(ecf8_last_error(), "'layer.6.weight'"));
    }
    assert_int_equal(tu_count_tmp_files(d), 0);
    for (size_t i = 0; i < N; i++) free(data[i]);
    free(img), free(c), free(src), free(a), free(b), free(out);
    tu_remove_tree(d);
    free(d);
}

/* A header of many tensors (over 256 KiB) is parsed in two halves with
 * more threads: the same container as with one, and whatever is wrong with
 * it, in either half or both, the message one thread gives. */
static void test_large_header_threads(void **state)
{
    (void)state;
    char *d = tu_strdup(tu_temp_dir());
    enum { N = 4000 };
    static tu_tensor t[N];
    static char names[N][32];
    static const uint8_t twelve[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "block.%zu.scale", i);
        t[i] = (tu_tensor){names[i], "F32", 1, {3}, twelve, 12};
    }
    size_t size;
    uint8_t *img = tu_make_safetensors(t, N, "{\"format\":\"pt\"}", &size);
    assert_true(ecf8_load_le64(img) > (256u << 10));
    char *src = tu_strdup(tu_path(d, "h.safetensors")), *a = tu_strdup(tu_path(d, "a.ecf8"));
    char *b = tu_strdup(tu_path(d, "b.ecf8"));
    assert_int_equal(tu_write_file(src, img, size), 0);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.overwrite = 1;
    o.threads = 1;
    tu_compress_ok(src, a, &o);
    o.threads = 2;
    tu_compress_ok(src, b, &o);
    assert_true(tu_files_equal(a, b));
    /* Damage (same length): shapes that do not fit the bytes, in the
     * first half, the second or both, and a syntax error in the second. */
    static const struct { const char *at[2], *from, *to, *want; } cases[] = {
        {{"\"block.3500.scale\"", NULL}, "[3]", "[4]", "'block.3500.scale'"},
        {{"\"block.100.scale\"", "\"block.3500.scale\""}, "[3]", "[4]", "'block.100.scale'"},
        {{"\"block.3500.scale\"", NULL}, "\":{", "\";{", "not a JSON object"},
        {{"\"block.3999.scale\"", NULL}, "[3]", "[4]", "'block.3999.scale'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *bad = malloc(size);
        assert_non_null(bad);
        memcpy(bad, img, size);
        for (size_t k = 0; k < 2 && cases[c].at[k]; k++) {
            char *name = memmem(bad, size, cases[c].at[k], strlen(cases[c].at[k]));
            assert_non_null(name);
            char *from = memmem(name, (size_t)(bad + size - (uint8_t *)name), cases[c].from, strlen(cases[c].from));
            assert_non_null(from);
            memcpy(from, cases[c].to, strlen(cases[c].to));
        }
        assert_int_equal(tu_write_file(src, bad, size), 0);
        char first[1024] = "";
        for (unsigned threads = 1; threads <= 2; threads++) {
            o.threads = threads;
            assert_int_not_equal(ecf8_compress_path(src, a, &o), ECF8_OK);
            if (!strstr(ecf8_last_error(), cases[c].want)) fail_msg("case %zu: %s", c, ecf8_last_error());
            if (threads == 1) snprintf(first, sizeof first, "%s", ecf8_last_error());
            else assert_string_equal(ecf8_last_error(), first);
        }
        free(bad);
    }
    free(img), free(src), free(a), free(b);
    tu_remove_tree(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_slices_roundtrip),
        cmocka_unit_test(test_deterministic_output),
        cmocka_unit_test(test_plain_and_compressed_index),
        cmocka_unit_test(test_synthetic_every_dtype),
        cmocka_unit_test(test_dtypes_1_3_roundtrip),
        cmocka_unit_test(test_header_verbatim),
        cmocka_unit_test(test_empty_tensor_shares_offset),
        cmocka_unit_test(test_long_tensor_name),
        cmocka_unit_test(test_sharded_directory),
        cmocka_unit_test(test_sharded_decompress_all_or_nothing),
        cmocka_unit_test(test_progress_callback),
        cmocka_unit_test(test_progress_within_tensor),
        cmocka_unit_test(test_open_index),
        cmocka_unit_test(test_inspect_progress),
        cmocka_unit_test(test_directory_odd_members),
        cmocka_unit_test(test_windowed_encode_identical),
        cmocka_unit_test(test_windowed_encode_input_changed),
        cmocka_unit_test(test_many_small_tensors),
        cmocka_unit_test(test_large_header_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
