/* testutil.c - small helpers shared by the CMocka tests. */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tu_data_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("ECF8_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

const char *tu_temp_dir(void)
{
    static char buf[4096];
    const char *base = getenv("ECF8_BUILD_DIR");
    snprintf(buf, sizeof buf, "%s/test-tmp-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        snprintf(buf, sizeof buf, "/tmp/ecf8-test-XXXXXX");
        if (!mkdtemp(buf)) return NULL;
    }
    return buf;
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

uint8_t *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* One byte more, always 0: text files read this way are C strings. */
    uint8_t *p = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) p[n > 0 ? n : 0] = 0;
    fclose(f);
    if (p && size) *size = (size_t)n;
    return p;
}

int tu_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return fclose(f) == 0 && w == size ? 0 : -1;
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void tu_fill_weights_e4m3(uint8_t *out, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        double u = ((double)(tu_rand(&s) >> 11) + 0.5) / 9007199254740992.0;
        int e = 7 - (int)floor(-log2(u) * 0.8); /* geometric: concentrated exponents */
        if (e < 0) e = 0;
        if (e > 15) e = 15;
        unsigned m = (unsigned)(tu_rand(&s) & 7), sign = (unsigned)(tu_rand(&s) >> 63);
        uint8_t b = (uint8_t)(sign << 7 | (unsigned)e << 3 | m);
        if ((b & 0x7F) == 0x7F) b &= 0xFE; /* keep NaN out of "weights" */
        out[i] = b;
    }
}

/* ---- appended for the codec/container/bad-input suites ------------------ */
#include <dirent.h>
#include <ftw.h>
#include <xxhash.h>

int tu_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int tu_count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.") || !strncmp(de->d_name, ".ecf8-", 6)) n++;
    closedir(d);
    return n;
}

int tu_compress_over(const char *in, const char *out, const ecf8_compress_options *options)
{
    ecf8_compress_options o;
    if (options) o = *options;
    else ecf8_compress_options_init(&o);
    o.overwrite = 1;
    return ecf8_compress_path(in, out, &o);
}

int tu_decompress_over(const char *in, const char *out, unsigned threads)
{
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    o.overwrite = 1;
    return ecf8_decompress_path_ex(in, out, &o);
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

int tu_copy_file(const char *from, const char *to)
{
    size_t n = 0;
    uint8_t *p = tu_read_file(from, &n);
    if (!p) return -1;
    int rc = tu_write_file(to, p, n);
    free(p);
    return rc;
}

int tu_files_equal(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    uint8_t *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    int eq = x && y && na == nb && (na == 0 || memcmp(x, y, na) == 0);
    free(x);
    free(y);
    return eq;
}

static int tu_remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void tu_remove_tree(const char *path)
{
    if (path && tu_exists(path)) nftw(path, tu_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t tu_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void tu_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void tu_ecf8_rehash(uint8_t *buf, size_t size)
{
    if (size < 64) return;
    uint64_t off = tu_le64(buf + 24), len = tu_le64(buf + 32);
    if (off <= size && len <= size - off) tu_put_le64(buf + 40, XXH3_64bits(buf + off, (size_t)len));
    tu_put_le64(buf + 56, XXH3_64bits(buf, 56));
}

static void tu_json_string(char **p, const char *s)
{
    *(*p)++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *(*p)++ = '\\';
        *(*p)++ = *s;
    }
    *(*p)++ = '"';
}

uint8_t *tu_make_safetensors(const tu_tensor *t, size_t n, const char *metadata_json,
                             size_t *size)
{
    size_t cap = 64 + (metadata_json ? strlen(metadata_json) : 0), data = 0;
    for (size_t i = 0; i < n; i++) cap += 2 * strlen(t[i].name) + strlen(t[i].dtype) + 300, data += t[i].bytes;
    char *h = malloc(cap), *p = h;
    if (!h) return NULL;
    *p++ = '{';
    if (metadata_json) p += sprintf(p, "\"__metadata__\":%s", metadata_json);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[-1] != '{') *p++ = ',';
        tu_json_string(&p, t[i].name);
        p += sprintf(p, ":{\"dtype\":");
        tu_json_string(&p, t[i].dtype);
        p += sprintf(p, ",\"shape\":[");
        for (unsigned d = 0; d < t[i].ndim; d++)
            p += sprintf(p, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
        p += sprintf(p, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].bytes);
        off += t[i].bytes;
    }
    *p++ = '}';
    while ((p - h) % 8) *p++ = ' ';
    size_t hlen = (size_t)(p - h);
    uint8_t *out = malloc(8 + hlen + data + 1);
    if (!out) {
        free(h);
        return NULL;
    }
    tu_put_le64(out, hlen);
    memcpy(out + 8, h, hlen);
    free(h);
    size_t pos = 8 + hlen;
    for (size_t i = 0; i < n; i++) {
        if (t[i].bytes) memcpy(out + pos, t[i].data, t[i].bytes);
        pos += t[i].bytes;
    }
    *size = pos;
    return out;
}

void tu_bug_returned(const char *id, const char *what)
{
    fail_msg("fixed bug %s is back: %s", id, what);
}

const char *const TU_SLICES[3] = {"minilm-slice-e4m3.safetensors", "minilm-slice-e5m2.safetensors",
                                  "minilm-slice-bf16.safetensors"};

char *tu_strdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

void tu_compress_ok(const char *src, const char *dst, const ecf8_compress_options *options)
{
    int st = tu_compress_over(src, dst, options);
    if (st) fail_msg("compress %s: %d %s", src, st, ecf8_last_error());
}

static double tu_gauss(uint64_t *s)
{
    double u1 = ((double)(tu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(tu_rand(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint16_t tu_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static uint16_t tu_to_f16(float f) /* truncating; tiny values become subnormals */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int e = (int)((u >> 23) & 0xFF) - 127 + 15;
    if (e <= 0) return (uint16_t)(sign | ((u >> 13) & 0x3FF) >> (1 - e));
    if (e >= 31) return (uint16_t)(sign | 0x7BFF);
    return (uint16_t)(sign | (uint32_t)e << 10 | ((u >> 13) & 0x3FF));
}

void *tu_make_weights(ecf8_dtype dtype, size_t n, uint64_t seed)
{
    unsigned w = ecf8_dtype_size(dtype);
    uint8_t *p = malloc(n * w + 1);
    uint64_t s = seed * 2654435761u + 1;
    assert_non_null(p);
    if (dtype == ECF8_DTYPE_F8_E4M3) {
        tu_fill_weights_e4m3(p, n, seed);
    } else if (dtype == ECF8_DTYPE_F8_E5M2) {
        for (size_t i = 0; i < n; i++) {
            double g = tu_gauss(&s) * 0.05;
            int e = (int)floor(log2(fabs(g) + 1e-30)) + 15;
            if (e < 0) e = 0;
            if (e > 30) e = 30;
            p[i] = (uint8_t)((g < 0) << 7 | e << 2 | (tu_rand(&s) & 3));
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float f = (float)(tu_gauss(&s) * 0.02);
            uint16_t v = dtype == ECF8_DTYPE_BF16 ? tu_to_bf16(f) : tu_to_f16(f);
            p[2 * i] = (uint8_t)v, p[2 * i + 1] = (uint8_t)(v >> 8);
        }
    }
    return p;
}
