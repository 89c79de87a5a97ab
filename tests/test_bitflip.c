/* test_bitflip.c - every single-bit corruption of a small .ecf8 file is
 * caught or harmless.
 *
 * A tiny checkpoint (an F8_E4M3 tensor, a BF16 tensor and an F32 tensor,
 * each coded tensor cut into several chunks) is compressed to a few KB,
 * then every bit of the container is flipped in turn.  Each flip must be
 * either
 *   - detected: ecf8_verify_path fails with a non-zero status and a
 *     message in ecf8_last_error(), or
 *   - provably harmless: the file still verifies, and decompressing it
 *     gives exactly the original bytes (padding between payloads, the zero
 *     bits after a chunk's last code and the stream's pad bytes are not
 *     covered by any checksum and are not read).
 * A flip that verifies but reconstructs different bytes would be silent
 * corruption, the one outcome the format must rule out. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A safetensors file of the given tensors, written to path. */
typedef struct tiny_tensor {
    const char *name, *dtype;
    unsigned rows, cols, width;
    uint8_t *data;
} tiny_tensor;

static size_t write_safetensors(const char *path, const tiny_tensor *t, size_t n)
{
    char header[1024];
    size_t len = 0, off = 0;
    len += (size_t)snprintf(header + len, sizeof header - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i].rows * t[i].cols * t[i].width;
        len += (size_t)snprintf(header + len, sizeof header - len,
                                ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]}",
                                t[i].name, t[i].dtype, t[i].rows, t[i].cols, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    while (len % 8) header[len++] = ' ';
    size_t total = 8 + len + off;
    uint8_t *file = malloc(total);
    assert_non_null(file);
    uint64_t hl = len;
    memcpy(file, &hl, 8);
    memcpy(file + 8, header, len);
    size_t pos = 8 + len;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i].rows * t[i].cols * t[i].width;
        memcpy(file + pos, t[i].data, bytes);
        pos += bytes;
    }
    assert_int_equal(tu_write_file(path, file, total), 0);
    free(file);
    return total;
}

/* BF16 values like trained weights: float32 from a Laplace-ish law, top half. */
static void fill_bf16(uint8_t *out, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        double u = ((double)(tu_rand(&s) >> 11) + 0.5) / 9007199254740992.0;
        float f = (float)((u < 0.5 ? -1 : 1) * 0.02 * -log(2 * (u < 0.5 ? u : 1 - u)));
        uint32_t b;
        memcpy(&b, &f, 4);
        out[2 * i] = (uint8_t)(b >> 16);
        out[2 * i + 1] = (uint8_t)(b >> 24);
    }
}

static void test_every_bit_flip(void **state)
{
    (void)state;
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char src[4096], ecf[4096], bad[4096], out[4096];
    snprintf(src, sizeof src, "%s", tu_path(dir, "tiny.safetensors"));
    snprintf(ecf, sizeof ecf, "%s", tu_path(dir, "tiny.ecf8"));
    snprintf(bad, sizeof bad, "%s", tu_path(dir, "flipped.ecf8"));
    snprintf(out, sizeof out, "%s", tu_path(dir, "flipped.safetensors"));

    uint8_t fp8[32 * 48], bf16[16 * 40 * 2], f32[4 * 4 * 4];
    tu_fill_weights_e4m3(fp8, sizeof fp8, 11);
    fill_bf16(bf16, sizeof bf16 / 2, 12);
    for (size_t i = 0; i < sizeof f32 / 4; i++) {
        float v = 1.0f / (float)(i + 3);
        memcpy(f32 + 4 * i, &v, 4);
    }
    const tiny_tensor tensors[] = {
        {"layer.weight", "F8_E4M3", 32, 48, 1, fp8},
        {"layer.weight_scale_inv", "F32", 4, 4, 4, f32},
        {"norm.weight", "BF16", 16, 40, 2, bf16},
    };
    size_t src_bytes = write_safetensors(src, tensors, 3);

    /* Small chunks: several per tensor, so chunk offsets and tails get hit. */
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.chunk_elements = 256;
    o.threads = 1;
    assert_int_equal(ecf8_compress_path(src, ecf, &o), ECF8_OK);
    assert_int_equal(ecf8_verify_path(ecf, src, 1), ECF8_OK);

    /* Both coded tensors must really be coded, else the test proves little. */
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(ecf, &f), ECF8_OK);
    unsigned coded = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        if (t.split != ECF8_SPLIT_STORED) {
            coded++;
            assert_true(t.stream.n_chunks > 1);
        }
    }
    ecf8_file_close(f);
    assert_int_equal(coded, 2);

    size_t size;
    uint8_t *orig = tu_read_file(src, NULL), *good = tu_read_file(ecf, &size);
    assert_non_null(orig);
    assert_non_null(good);
    assert_true(size < 8192);
    assert_int_equal(tu_write_file(bad, good, size), 0);
    int fd = open(bad, O_WRONLY);
    assert_true(fd >= 0);

    uint64_t tried = 0, detected = 0, harmless = 0, neither = 0;
    uint64_t by_status[16] = {0}; /* -3000 - status */
    for (size_t byte = 0; byte < size; byte++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            uint8_t v = (uint8_t)(good[byte] ^ (1u << bit));
            assert_int_equal(pwrite(fd, &v, 1, (off_t)byte), 1);
            tried++;
            int st = ecf8_verify_path(bad, NULL, 1);
            if (st != ECF8_OK) {
                assert_true(ecf8_last_error()[0] != '\0');
                detected++;
                if (st <= -3000 && st > -3016) by_status[-3000 - st]++;
            } else {
                /* Harmless only if the reconstruction is the original. */
                int d = tu_decompress_over(bad, out, 1);
                size_t n = 0;
                uint8_t *rebuilt = d == ECF8_OK ? tu_read_file(out, &n) : NULL;
                if (rebuilt && n == src_bytes && !memcmp(rebuilt, orig, n)) {
                    harmless++;
                } else {
                    neither++;
                    print_message("silent corruption: byte %zu bit %u (decompress %d)\n", byte,
                                  bit, d);
                }
                free(rebuilt);
            }
        }
        assert_int_equal(pwrite(fd, &good[byte], 1, (off_t)byte), 1);
    }
    close(fd);
    print_message("bit flips of a %zu-byte .ecf8: tried %llu, detected %llu, harmless %llu, "
                  "neither %llu\n",
                  size, (unsigned long long)tried, (unsigned long long)detected,
                  (unsigned long long)harmless, (unsigned long long)neither);
    print_message("  detected as: corrupt %llu, checksum %llu, version %llu, other %llu\n",
                  (unsigned long long)by_status[2], (unsigned long long)by_status[3],
                  (unsigned long long)by_status[4],
                  (unsigned long long)(detected - by_status[2] - by_status[3] - by_status[4]));
    assert_int_equal(tried, (uint64_t)size * 8);
    assert_int_equal(neither, 0);
    assert_int_equal(detected + harmless, tried);
    assert_true(detected > 0);
    unlink(bad);
    unlink(out);
    unlink(src);
    unlink(ecf);
    rmdir(dir);
    free(orig);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_bit_flip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
