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
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
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
