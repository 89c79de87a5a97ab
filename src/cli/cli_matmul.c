/* cli_matmul.c - `ecf8 matmul`: Y = X W^T for one tensor of an .ecf8 file,
 * .npy in and out, on the fused or the uncompressed engine.  Its timing
 * against decode + dequantise + CLBlast is ecf8-bench-matmul (bench/). */
#include "cli.h"

#include "cli_env.h"
#include "ecf8_cl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ----------------------------------------------------------- */
static int file_error(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int file_error(const char *path, const char *fmt, ...)
{
    char what[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cli_error("%s: %s", path, what);
}

static int lib_error(const char *path, const char *what)
{
    const char *d = ecf8_last_error();
    return cli_error("%s: %s", path, d[0] ? d : what);
}

/* ---- weights and their scales ---------------------------------------------------- */
/* Looks the weight and (for FP8) its scale up; prints the error itself. */
static int load_weight(const ecf8_file *f, const char *path, const char *name, mm_weight *out)
{
    char why[1200];
    if (mm_weight_find(f, name, out, why, sizeof why)) return file_error(path, "%s", why);
    return 0;
}

/* ---- .npy ----------------------------------------------------------------------------- */
/* Reads a little-endian fp32 .npy of shape (k,) or (m, k), C order. */
static int npy_read(const char *path, float **data, size_t *m, size_t *k, int *ndim)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return file_error(path, "cannot open: %s", strerror(errno));
    unsigned char pre[12];
    int rc = 1;
    char *hdr = NULL;
    *data = NULL;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        file_error(path, "not a .npy file (bad magic)");
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            file_error(path, "truncated .npy header");
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        file_error(path, ".npy format version %u is not supported", pre[6]);
        goto done;
    }
    if (hlen > 1u << 20 || !(hdr = calloc(1, hlen + 1)) || fread(hdr, 1, hlen, fp) != hlen) {
        file_error(path, "truncated or oversized .npy header");
        goto done;
    }
    const char *d = strstr(hdr, "'descr'"), *fo = strstr(hdr, "'fortran_order'"), *sh = strstr(hdr, "'shape'");
    if (!d || !fo || !sh) {
        file_error(path, ".npy header lacks descr, fortran_order or shape");
        goto done;
    }
    char descr[16] = "";
    if (sscanf(d, "'descr' : '%15[^']'", descr) != 1 && sscanf(d, "'descr': '%15[^']'", descr) != 1) {
        file_error(path, "unreadable .npy descr");
        goto done;
    }
    if (strcmp(descr, "<f4")) {
        file_error(path, "dtype '%s', expected little-endian float32 ('<f4')", descr);
        goto done;
    }
    if (strstr(fo, "True") && strstr(fo, "True") < sh) {
        file_error(path, "Fortran-order arrays are not supported (save with C order)");
        goto done;
    }
    const char *p = strchr(sh, '(');
    if (!p) {
        file_error(path, "unreadable .npy shape");
        goto done;
    }
    unsigned long long dims[3];
    int nd = 0;
    for (p++; nd < 3;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        char *end;
        dims[nd++] = strtoull(p, &end, 10);
        if (end == p) {
            nd = -1;
            break;
        }
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
    }
    if (nd < 1 || nd > 2) {
        file_error(path, "array has %s dimensions; expected (K,) or (M, K)", nd == 0 ? "0" : "more than 2");
        goto done;
    }
    *ndim = nd;
    *m = nd == 2 ? dims[0] : 1;
    *k = nd == 2 ? dims[1] : dims[0];
    if (*m == 0 || *k == 0 || *m > (1ull << 31) / *k) {
        file_error(path, "array shape (%llu%s%llu) is empty or too large", dims[0], nd == 2 ? ", " : "",
                   nd == 2 ? dims[1] : 0ull);
        goto done;
    }
    size_t count = *m * *k;
    *data = malloc(count * sizeof(float) + 1);
    if (!*data) {
        file_error(path, "out of memory");
        goto done;
    }
    size_t got = fread(*data, sizeof(float), count, fp);
    char extra;
    if (got != count) {
        file_error(path, "data holds %zu of the %zu floats its shape needs", got, count);
        goto done;
    }
    if (fread(&extra, 1, 1, fp) == 1) {
        file_error(path, "trailing bytes after the array data");
        goto done;
    }
    rc = 0;
done:
    if (rc) {
        free(*data);
        *data = NULL;
    }
    free(hdr);
    fclose(fp);
    return rc;
}

/* Whether a and b name one existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Writes fp32 (n,) or (m, n) to `out` (opened, and checked, before the
 * work: see cli_matmul_run) and renames it into place. */
static int npy_write(ecf8_output *out, const float *y, size_t m, size_t n, int ndim)
{
    char hdr[256], shape[96];
    if (ndim == 1) snprintf(shape, sizeof shape, "(%zu,)", n);
    else snprintf(shape, sizeof shape, "(%zu, %zu)", m, n);
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t total = ((size_t)len + 10 + 1 + 63) / 64 * 64; /* magic + header + '\n', 64-aligned */
    size_t hlen = total - 10;
    memset(hdr + len, ' ', hlen - 1 - (size_t)len);
    hdr[hlen - 1] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hlen,
                             (unsigned char)(hlen >> 8)};
    int st = ecf8_output_write(out, pre, sizeof pre);
    if (!st) st = ecf8_output_write(out, hdr, hlen);
    if (!st) st = ecf8_output_write(out, y, m * n * sizeof(float));
    if (!st) return ecf8_output_commit(out) ? cli_error("%s", ecf8_last_error()) : 0;
    ecf8_output_abort(out);
    return cli_error("%s", ecf8_last_error());
}

/* ---- engines ---------------------------------------------------------------------------- */
typedef enum { ENG_FUSED, ENG_UNCOMPRESSED, ENG_COUNT } engine_id;
static const char *const engine_names[ENG_COUNT] = {"fused", "uncompressed"};


typedef struct device {
    cl_context ctx;
    cl_device_id dev;
    cl_command_queue queue;
    ecf8_cl_tuning tuning; /* ECF8_MATMUL_* (cli_env.c) */
    const char *path; /* the .ecf8 file worked on: every error names it */
} device;

static int device_open(device *d, const char *path)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    cli_env_tuning(&d->tuning);
    if (cli_env_open(&d->ctx, &d->dev, &d->queue)) return lib_error(path, "no OpenCL device");
    return 0;
}

static void device_close(device *d)
{
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->ctx) clReleaseContext(d->ctx);
}

static cl_mem make_buffer(const device *d, size_t bytes, const void *data, const char *what)
{
    cl_int err;
    cl_mem b = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)data, &err);
    if (err != CL_SUCCESS) {
        file_error(d->path, "cannot allocate %zu bytes for %s on the device (%s)", bytes, what,
                   ecf8_status_string(err));
        return NULL;
    }
    return b;
}

static int engine_enqueue(const device *d, engine_id e, ecf8_cl_matmul *mm, size_t m, cl_mem x, cl_mem y)
{
    ecf8_cl_engine ce = e == ENG_FUSED ? ECF8_CL_ENGINE_FUSED : ECF8_CL_ENGINE_UNCOMPRESSED;
    if (ecf8_cl_enqueue_matmul(mm, ce, d->queue, m, x, 0, 0, y, 0, 0, NULL, NULL))
        return lib_error(d->path, "matmul failed");
    return 0;
}

static int parse_engine(const char *s, engine_id *e)
{
    for (int i = 0; i < ENG_COUNT; i++)
        if (!strcmp(s, engine_names[i])) {
            *e = (engine_id)i;
            return 1;
        }
    return 0;
}

/* ---- ecf8 matmul ------------------------------------------------------------------------ */
int cli_matmul_run(int argc, char **argv)
{
    const char *path = NULL, *name = NULL, *in = NULL, *outp = NULL;
    engine_id eng = ENG_FUSED;
    bool force = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tensor") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) force = true;
        else if (!strcmp(argv[i], "--input") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(argv[i], "--output") && i + 1 < argc) outp = argv[++i];
        else if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
            if (!strcmp(argv[++i], "clblast"))
                return cli_usage_error("matmul: the clblast engine moved to ecf8-bench-matmul (its "
                                       "decode + dequantise + CLBlast baseline)");
            if (!parse_engine(argv[i], &eng))
                return cli_usage_error("unknown engine '%s' (fused or uncompressed)", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_unknown_option("matmul", argv[i], i + 1 == argc, "--tensor --input --output --engine");
        else if (!path) path = argv[i];
        else return cli_usage_error("matmul: unexpected argument '%s'", argv[i]);
    }
    if (!path || !name || !in || !outp)
        return cli_usage_error("usage: ecf8 matmul FILE.ecf8 --tensor NAME --input X.npy --output Y.npy "
                               "[--engine fused|uncompressed] [--force]");
    if (!path[0] || !in[0] || !outp[0]) return cli_usage_error("empty file name");
    /* The output is checked (and its temporary made) before any work; it
     * may replace neither input. */
    if (same_file(outp, path)) return cli_error("%s: the output would replace the input %s", outp, path);
    ecf8_output *out;
    int st = ecf8_output_open(outp, in, force, &out);
    if (st) return cli_fail(st, "cannot create the output");
    ecf8_file *f;
    if (ecf8_file_open(path, &f)) {
        ecf8_output_abort(out);
        return lib_error(path, "cannot open");
    }
    mm_weight w;
    float *x = NULL, *y = NULL;
    size_t m = 0, k = 0;
    int ndim = 0, rc = load_weight(f, path, name, &w);
    if (!rc) rc = npy_read(in, &x, &m, &k, &ndim);
    size_t n = (size_t)w.w.shape[0];
    if (!rc && k != w.w.shape[1]) {
        char got[64];
        if (ndim == 2) snprintf(got, sizeof got, "(%zu, %zu)", m, k);
        else snprintf(got, sizeof got, "(%zu,)", k);
        rc = file_error(in, "array of shape %s does not match tensor '%s' [%llu, %llu]: expected (%llu,) or (M, %llu)",
                        got, name, (unsigned long long)w.w.shape[0], (unsigned long long)w.w.shape[1],
                        (unsigned long long)w.w.shape[1], (unsigned long long)w.w.shape[1]);
    }
    device d = {0};
    ecf8_cl_matmul *mm = NULL;
    cl_mem bx = NULL, by = NULL;
    if (!rc) rc = device_open(&d, path);
    if (!rc) {
        unsigned mask = eng == ENG_UNCOMPRESSED ? ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_UNCOMPRESSED)
                                                : ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED);
        if (ecf8_cl_matmul_create_ex(d.ctx, d.dev, d.queue, &w.w, w.has_scale ? &w.s : NULL, mask,
                                     &d.tuning, &mm))
            rc = lib_error(path, "cannot prepare the matmul");
    }
    if (!rc) {
        bx = make_buffer(&d, m * k * sizeof(float), x, "X");
        by = bx ? make_buffer(&d, m * n * sizeof(float), NULL, "Y") : NULL;
        y = by ? malloc(m * n * sizeof(float)) : NULL;
        if (!bx || !by) rc = 1; /* make_buffer said why */
        else if (!y) rc = file_error(path, "out of memory");
    }
    if (!rc) rc = engine_enqueue(&d, eng, mm, m, bx, by);
    cl_int err = CL_SUCCESS;
    if (!rc && (err = clEnqueueReadBuffer(d.queue, by, CL_TRUE, 0, m * n * sizeof(float), y, 0, NULL, NULL)))
        rc = file_error(path, "reading the result from the device failed (%s)", ecf8_status_string(err));
    if (!rc) rc = npy_write(out, y, m, n, ndim);
    else ecf8_output_abort(out);
    if (bx) clReleaseMemObject(bx);
    if (by) clReleaseMemObject(by);
    ecf8_cl_matmul_free(mm);
    device_close(&d);
    free(x);
    free(y);
    ecf8_file_close(f);
    return rc;
}
