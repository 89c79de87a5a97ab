/* cli_opencl.c - the device commands of the ecf8 tool: `decompress --engine
 * opencl|cpu`, `devices`, `bench decode`, and the dispatch of `matmul` and
 * `bench matmul` (cli_matmul.c).  Errors are one line, "ecf8: FILE: what
 * is wrong", and exit status 1; usage errors exit 2. */
#include "cli.h"

#include "ecf8_cl.h"
#include "opencl/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* ---- helpers ------------------------------------------------------------------ */
static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* "ecf8: WHAT: <library detail or fallback>", exit status 1. */
static int fail_with(const char *what, const char *fallback)
{
    const char *d = ecf8_last_error();
    return cli_error("%s: %s", what, d[0] ? d : fallback);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double event_seconds(cl_event ev)
{
    cl_ulong a = 0, b = 0;
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
    return b > a ? (double)(b - a) * 1e-9 : 0;
}

static double gbps(double bytes, double seconds) { return seconds > 0 ? bytes / seconds * 1e-9 : 0; }


/* ---- engine choice -------------------------------------------------------------- */
typedef enum engine { ENGINE_DEFAULT, ENGINE_OPENCL, ENGINE_CPU } engine;
static engine g_engine = ENGINE_DEFAULT;

int cli_decompress_engine_args(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--engine")) continue;
        if (i + 1 >= *argc) return cli_usage_error("--engine needs a value (opencl or cpu)");
        const char *v = argv[i + 1];
        if (!strcmp(v, "opencl")) g_engine = ENGINE_OPENCL;
        else if (!strcmp(v, "cpu")) g_engine = ENGINE_CPU;
        else return cli_usage_error("unknown engine '%s' (opencl or cpu)", v);
        memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
        *argc -= 2;
        i--;
    }
    return -1;
}

/* ---- decompress on the device ----------------------------------------------------- */
typedef struct device {
    cl_context context;
    cl_device_id device;
    cl_command_queue queue;
} device;

static void device_close(device *d)
{
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->context) clReleaseContext(d->context);
    memset(d, 0, sizeof *d);
}

int cli_decompress(const char *in, const char *out, const ecf8_decode_options *o)
{
    device d = {0};
    if (g_engine != ENGINE_CPU) {
        if (ecf8_cl_open_default(&d.context, &d.device, &d.queue)) {
            if (g_engine == ENGINE_OPENCL) {
                const char *why = ecf8_last_error();
                return cli_error("%s: --engine opencl: %s", in, why[0] ? why : "no OpenCL device");
            }
            cli_error("note: %s; decompressing on the CPU", ecf8_last_error());
            d.context = NULL;
        }
    }
    if (!d.context) {
        ecf8_clear_error();
        int st = ecf8_decompress_path_ex(in, out, o);
        return st ? cli_fail(st, "decompression failed") : 0;
    }
    ecf8_clear_error();
    int st = ecf8_cl_decompress_path(d.context, d.device, d.queue, in, out, o);
    device_close(&d);
    return st ? cli_fail(st, "decompression failed") : 0;
}

/* ---- devices ------------------------------------------------------------------------- */
static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

int cli_devices(int argc, char **argv)
{
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else return cli_usage_error("unknown argument '%s' for devices (usage: ecf8 devices [--json])", argv[i]);
    }
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0) {
        fprintf(stderr, "ecf8: no OpenCL platform is installed (install an ICD, e.g. pocl-opencl-icd)\n");
        return 1;
    }
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats || clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) {
        free(plats);
        fprintf(stderr, "ecf8: clGetPlatformIDs failed\n");
        return 1;
    }
    cl_platform_id sel_p = NULL;
    cl_device_id sel_d = NULL;
    bool have_sel = ecf8_cl_select_device(&sel_p, &sel_d) == ECF8_OK;
    const char *sel_err = have_sel ? "" : ecf8_last_error();
    if (json) printf("{\"platforms\": [");
    unsigned flat = 0;
    for (cl_uint p = 0; p < np; p++) {
        char pname[256] = "", pvendor[256] = "", pversion[256] = "";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VENDOR, sizeof pvendor - 1, pvendor, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VERSION, sizeof pversion - 1, pversion, NULL);
        if (json) {
            printf("%s\n  {\"index\": %u, \"name\": ", p ? "," : "", p);
            cli_json_string(stdout, pname);
            printf(", \"vendor\": ");
            cli_json_string(stdout, pvendor);
            printf(", \"version\": ");
            cli_json_string(stdout, pversion);
            printf(", \"devices\": [");
        } else {
            printf("platform %u: %s (%s), %s\n", p, pname, pvendor, pversion);
        }
        cl_uint nd = 0;
        cl_device_id *devs = NULL;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) == CL_SUCCESS && nd) {
            devs = calloc(nd, sizeof *devs);
            if (!devs || clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) nd = 0;
        }
        if (!nd && !json) printf("  (no devices)\n");
        for (cl_uint i = 0; i < nd; i++, flat++) {
            ecf8_cl_device_caps c;
            if (ecf8_cl_device_caps_get(devs[i], &c)) continue;
            bool sel = have_sel && devs[i] == sel_d;
            const char *kernel = c.is_cpu ? "lanes (vector gathers across chunks); pairs (pair "
                                            "lookups) for FP8 tensors of under 16 chunks"
                                          : "coop (a work-group per chunk, segments in parallel)";
            if (json) {
                printf("%s\n    {\"index\": %u, \"name\": ", i ? "," : "", flat);
                cli_json_string(stdout, c.name);
                printf(", \"vendor\": ");
                cli_json_string(stdout, c.vendor);
                printf(", \"version\": ");
                cli_json_string(stdout, c.version);
                printf(", \"driver\": ");
                cli_json_string(stdout, c.driver);
                printf(", \"type\": \"%s\", \"compute_units\": %u, \"global_mem_bytes\": %llu, "
                       "\"local_mem_bytes\": %llu, \"max_work_group\": %zu, \"fp16\": %s, "
                       "\"subgroups\": %s, \"decode_kernel\": \"%s\", \"selected\": %s}",
                       type_name(c.type), c.compute_units, (unsigned long long)c.global_mem_bytes,
                       (unsigned long long)c.local_mem_bytes, c.max_work_group,
                       c.has_fp16 ? "true" : "false", c.has_subgroups ? "true" : "false",
                       c.is_cpu ? "lanes+pairs" : "coop", sel ? "true" : "false");
            } else {
                printf("  %s device %u: %s\n", sel ? "*" : " ", flat, c.name);
                printf("      %s, %u compute units, %.1f GiB global memory, %llu KiB local memory, "
                       "work-groups up to %zu\n",
                       type_name(c.type), c.compute_units, (double)c.global_mem_bytes / (1 << 30),
                       (unsigned long long)c.local_mem_bytes / 1024, c.max_work_group);
                printf("      %s, driver %s, vendor %s\n", c.version, c.driver, c.vendor);
                printf("      fp16 arithmetic: %s, sub-groups: %s; decode kernel: %s\n",
                       c.has_fp16 ? "yes" : "no", c.has_subgroups ? "yes" : "no", kernel);
            }
        }
        free(devs);
        if (json) printf("]}");
    }
    if (json) {
        printf("\n], \"selection_error\": ");
        cli_json_string(stdout, sel_err);
        printf("}\n");
    } else if (have_sel) {
        printf("* = the device ecf8 uses (ECF8_PLATFORM / ECF8_DEVICE choose another)\n");
    } else {
        printf("no device selected: %s\n", sel_err);
    }
    free(plats);
    return have_sel ? 0 : 1; /* the listing is there; what ecf8 would use is not */
}

/* ---- bench decode ------------------------------------------------------------------- */
typedef struct tensor_result {
    const char *name;
    ecf8_dtype dtype;
    ecf8_split split;
    uint64_t bytes, payload_bytes, zstd_bytes;
    double kernel_s, wall_s, copy_s, cpu_s, zstd_s; /* medians */
} tensor_result;

typedef struct totals {
    uint64_t bytes, payload_bytes, zstd_bytes;
    size_t count;
    double kernel_s, wall_s, copy_s, cpu_s, zstd_s;
} totals;

static void totals_add(totals *t, const tensor_result *r)
{
    t->bytes += r->bytes, t->payload_bytes += r->payload_bytes, t->zstd_bytes += r->zstd_bytes;
    t->count++;
    t->kernel_s += r->kernel_s, t->wall_s += r->wall_s, t->copy_s += r->copy_s;
    t->cpu_s += r->cpu_s, t->zstd_s += r->zstd_s;
}

static void print_rates_json(FILE *o, const totals *t)
{
    fprintf(o,
            "\"tensors\": %zu, \"decoded_bytes\": %llu, \"ecf8_ratio\": %.4f, \"zstd_ratio\": %.4f, "
            "\"opencl_decode_gbps\": %.3f, \"opencl_decode_wall_gbps\": %.3f, "
            "\"opencl_copy_gbps\": %.3f, \"cpu_decode_gbps\": %.3f, \"zstd_decode_gbps\": %.3f",
            t->count, (unsigned long long)t->bytes,
            t->bytes ? (double)t->payload_bytes / (double)t->bytes : 0,
            t->bytes ? (double)t->zstd_bytes / (double)t->bytes : 0, gbps((double)t->bytes, t->kernel_s),
            gbps((double)t->bytes, t->wall_s), gbps((double)t->bytes, t->copy_s),
            gbps((double)t->bytes, t->cpu_s), gbps((double)t->bytes, t->zstd_s));
}

/* A whole file decoded back to back (bench_batch): tensors, decoded bytes,
 * median device span and wall time. */
typedef struct batch_result {
    size_t count;
    uint64_t bytes;
    double span_s, wall_s;
} batch_result;

/* The batch figures inside a rates object: decodes queued back to back,
 * on the out-of-order queue (b; the in-order one where the device has no
 * out-of-order queues) and on the in-order one. */
static void print_batch_json(FILE *o, const batch_result *b, const batch_result *in_order)
{
    fprintf(o,
            ", \"batch_tensors\": %zu, \"batch_opencl_decode_gbps\": %.3f, "
            "\"batch_opencl_decode_wall_gbps\": %.3f, \"batch_in_order_opencl_decode_gbps\": %.3f",
            b->count, gbps((double)b->bytes, b->span_s), gbps((double)b->bytes, b->wall_s),
            gbps((double)in_order->bytes, in_order->span_s));
}

/* Measures one coded tensor: device decode (kernel time from profiling,
 * and wall time of upload + decode), a device copy of the same size, the
 * CPU decoder on all cores and libzstd single-threaded on the same bytes
 * compressed at `level`.  Checks the device result against the CPU. */
static int bench_tensor(device *d, const ecf8_tensor_info *t, unsigned repeat, int level,
                        tensor_result *r)
{
    size_t n = (size_t)t->source_bytes;
    memset(r, 0, sizeof *r);
    r->name = t->name, r->dtype = t->dtype, r->split = t->split;
    r->bytes = n, r->payload_bytes = t->payload_bytes;
    double *times = calloc(repeat, sizeof *times);
    uint8_t *ref = malloc(n), *dev = malloc(n);
    size_t zcap = ZSTD_compressBound(n);
    uint8_t *z = malloc(zcap);
    cl_int err;
    cl_mem src = clCreateBuffer(d->context, CL_MEM_READ_WRITE, n, NULL, &err);
    cl_mem dst = err == CL_SUCCESS ? clCreateBuffer(d->context, CL_MEM_READ_WRITE, n, NULL, &err) : NULL;
    ecf8_cl_tensor *ct = NULL;
    int st = ECF8_OK;
    if (!times || !ref || !dev || !z) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    else if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(bench)");
    /* CPU decoder, all cores; its output is the reference. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        double a = now_seconds();
        st = ecf8_stream_decode(&t->stream, ref, n, 0);
        times[i] = now_seconds() - a;
    }
    if (!st) r->cpu_s = median(times, repeat);
    if (!st && ecf8_checksum64(ref, n) != t->checksum)
        st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t->name);
    /* Device: wall time of upload + decode, with a fresh tensor each time. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        double a = now_seconds();
        st = ecf8_cl_tensor_create(d->context, d->device, d->queue, t, &ct);
        if (!st) st = ecf8_cl_enqueue_decode(ct, d->queue, dst, 0, 0, NULL, NULL);
        if (!st && (err = clFinish(d->queue)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish");
        times[i] = now_seconds() - a;
        if (i + 1 < repeat) {
            ecf8_cl_tensor_free(ct);
            ct = NULL;
        }
    }
    if (!st) r->wall_s = median(times, repeat);
    if (!st) st = ecf8_cl_decode_to_host(ct, d->queue, dev, n);
    if (!st && memcmp(dev, ref, n))
        st = ecf8_fail(ECF8_ERR_MISMATCH, "tensor '%s': device decode differs from the CPU decoder", t->name);
    /* Kernel time from profiling events. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        cl_event ev = NULL;
        st = ecf8_cl_enqueue_decode(ct, d->queue, dst, 0, 0, NULL, &ev);
        if (!st && (err = clWaitForEvents(1, &ev)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clWaitForEvents");
        if (!st) times[i] = event_seconds(ev);
        if (ev) clReleaseEvent(ev);
    }
    if (!st) r->kernel_s = median(times, repeat);
    /* A plain device copy of the same size. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        cl_event ev = NULL;
        err = clEnqueueCopyBuffer(d->queue, src, dst, 0, 0, n, 0, NULL, &ev);
        if (err == CL_SUCCESS) err = clWaitForEvents(1, &ev);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueCopyBuffer");
        else times[i] = event_seconds(ev);
        if (ev) clReleaseEvent(ev);
    }
    if (!st) r->copy_s = median(times, repeat);
    /* libzstd, one thread, on the same bytes. */
    if (!st) {
        size_t zn = ZSTD_compress(z, zcap, ref, n, level);
        if (ZSTD_isError(zn)) st = ecf8_fail(ECF8_ERR_IO, "zstd: %s", ZSTD_getErrorName(zn));
        r->zstd_bytes = zn;
        ZSTD_DCtx *dctx = st ? NULL : ZSTD_createDCtx();
        for (unsigned i = 0; i < repeat && !st; i++) {
            double a = now_seconds();
            size_t got = ZSTD_decompressDCtx(dctx, dev, n, z, zn);
            times[i] = now_seconds() - a;
            if (ZSTD_isError(got) || got != n)
                st = ecf8_fail(ECF8_ERR_IO, "zstd round trip failed");
        }
        ZSTD_freeDCtx(dctx);
        if (!st) r->zstd_s = median(times, repeat);
    }
    ecf8_cl_tensor_free(ct);
    if (src) clReleaseMemObject(src);
    if (dst) clReleaseMemObject(dst);
    free(times);
    free(ref);
    free(dev);
    free(z);
    return st;
}

/* A whole file decoded as a user decodes it: every coded tensor uploaded
 * once (batch_set_open), then, per measurement, the decodes of all of them
 * or of one dtype enqueued back to back and waited for once (bench_batch).
 * Device time runs from the earliest start to the latest end; wall time
 * from the first enqueue to the finish (no upload).  This differs from the
 * sum of bench_tensor's kernel times: there each kernel runs alone, and a
 * CPU device's worker threads may sleep and wake between them. */
typedef struct batch_set {
    size_t count;
    ecf8_cl_tensor **tensor;
    ecf8_dtype *dtype;
    uint64_t *checksum, *bytes;
    size_t *at;  /* output offset of each tensor in out, 256-byte aligned */
    size_t total;
    cl_mem out;
} batch_set;

static void batch_set_close(batch_set *b)
{
    for (size_t i = 0; b->tensor && i < b->count; i++) ecf8_cl_tensor_free(b->tensor[i]);
    if (b->out) clReleaseMemObject(b->out);
    free(b->tensor);
    free(b->dtype);
    free(b->checksum);
    free(b->bytes);
    free(b->at);
    memset(b, 0, sizeof *b);
}

static int batch_set_open(device *d, ecf8_file *f, batch_set *b)
{
    memset(b, 0, sizeof *b);
    size_t nt = ecf8_file_tensor_count(f), n = nt ? nt : 1;
    b->tensor = calloc(n, sizeof *b->tensor);
    b->dtype = calloc(n, sizeof *b->dtype);
    b->checksum = calloc(n, sizeof *b->checksum);
    b->bytes = calloc(n, sizeof *b->bytes);
    b->at = calloc(n, sizeof *b->at);
    int st = b->tensor && b->dtype && b->checksum && b->bytes && b->at
                 ? ECF8_OK
                 : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nt && !st; i++) {
        ecf8_tensor_info t;
        st = ecf8_file_tensor(f, i, &t);
        if (st || t.split == ECF8_SPLIT_STORED) continue;
        st = ecf8_cl_tensor_create(d->context, d->device, d->queue, &t, &b->tensor[b->count]);
        if (st) break;
        b->dtype[b->count] = t.dtype, b->checksum[b->count] = t.checksum;
        b->bytes[b->count] = t.source_bytes, b->at[b->count++] = b->total;
        b->total += ((size_t)t.source_bytes + 255) & ~(size_t)255;
    }
    cl_int err = CL_SUCCESS;
    if (!st && b->total) b->out = clCreateBuffer(d->context, CL_MEM_READ_WRITE, b->total, NULL, &err);
    if (!st && err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(bench batch)");
    if (st) batch_set_close(b);
    return st;
}

/* The tensors of `dtype` (0: all) of set b, decoded on `queue`: one
 * unmeasured round, then `repeat` measured ones; then every decode's error
 * word and every output's checksum checked. */
static int bench_batch(const batch_set *b, cl_command_queue queue, int dtype, unsigned repeat,
                       batch_result *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < b->count; i++)
        if (!dtype || (int)b->dtype[i] == dtype) r->count++, r->bytes += b->bytes[i];
    if (!r->count) return ECF8_OK;
    cl_event *ev = calloc(b->count, sizeof *ev);
    double *span = calloc(repeat, sizeof *span), *wall = calloc(repeat, sizeof *wall);
    int st = ev && span && wall ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    cl_int err;
    for (unsigned rep = 0; rep <= repeat && !st; rep++) {
        double t_enqueue = now_seconds();
        for (size_t i = 0; i < b->count && !st; i++)
            if (!dtype || (int)b->dtype[i] == dtype)
                st = ecf8_cl_enqueue_decode(b->tensor[i], queue, b->out, b->at[i], 0, NULL, &ev[i]);
        if (!st && (err = clFinish(queue)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish");
        double t_done = now_seconds();
        cl_ulong first = ~(cl_ulong)0, last = 0;
        for (size_t i = 0; i < b->count; i++) {
            if (!ev[i]) continue;
            cl_ulong u = 0, v = 0;
            clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_START, sizeof u, &u, NULL);
            clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_END, sizeof v, &v, NULL);
            first = u < first ? u : first, last = v > last ? v : last;
            clReleaseEvent(ev[i]);
            ev[i] = NULL;
        }
        if (!st && rep > 0) {
            span[rep - 1] = last > first ? (double)(last - first) * 1e-9 : 0;
            wall[rep - 1] = t_done - t_enqueue;
        }
    }
    /* Error words (a chunk that failed its length check), then checksums
     * of what the last round wrote. */
    uint8_t *host = !st ? malloc(b->total) : NULL;
    if (!st && !host) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < b->count && !st; i++)
        if (!dtype || (int)b->dtype[i] == dtype) st = ecf8_cl_tensor_check(b->tensor[i], queue);
    if (!st && (err = clEnqueueReadBuffer(queue, b->out, CL_TRUE, 0, b->total, host, 0, NULL, NULL)) !=
                   CL_SUCCESS)
        st = ecf8_cl_fail(err, "clEnqueueReadBuffer(bench batch)");
    for (size_t i = 0; i < b->count && !st; i++)
        if ((!dtype || (int)b->dtype[i] == dtype) &&
            ecf8_checksum64(host + b->at[i], (size_t)b->bytes[i]) != b->checksum[i])
            st = ecf8_fail(ECF8_ERR_MISMATCH, "batched device decode: coded tensor %zu differs from its checksum", i);
    if (!st) r->span_s = median(span, repeat), r->wall_s = median(wall, repeat);
    free(host);
    free(ev);
    free(span);
    free(wall);
    return st;
}

/* Start-up in a fresh context: program (from the caches) + upload and first
 * decode of `t`, in milliseconds. */
static int bench_startup(const device *d, const ecf8_tensor_info *t, double *ms)
{
    double a = now_seconds();
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &d->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateContext");
    cl_command_queue q = clCreateCommandQueue(ctx, d->device, 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(ctx);
        return ecf8_cl_fail(err, "clCreateCommandQueue");
    }
    uint8_t *out = malloc((size_t)t->source_bytes);
    ecf8_cl_tensor *ct = NULL;
    int st = out ? ecf8_cl_tensor_create(ctx, d->device, q, t, &ct) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) st = ecf8_cl_decode_to_host(ct, q, out, (size_t)t->source_bytes);
    *ms = (now_seconds() - a) * 1e3;
    ecf8_cl_tensor_free(ct);
    free(out);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return st;
}

static int bench_decode(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    unsigned long long repeat = 5, min_bytes = 256 * 1024, level = 19;
    const char *usage = "usage: ecf8 bench decode FILE.ecf8 [--json] [--repeat N] [--min-bytes B] "
                        "[--zstd-level L]";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1000, &repeat) || repeat == 0)
                return cli_usage_error("bad --repeat '%s' (1..1000)", argv[i]);
        } else if (!strcmp(argv[i], "--min-bytes") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1ull << 40, &min_bytes))
                return cli_usage_error("bad --min-bytes '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--zstd-level") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 22, &level) || level == 0)
                return cli_usage_error("bad --zstd-level '%s' (1..22)", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown_option("bench decode", argv[i], i + 1 == argc,
                                      "--repeat --min-bytes --zstd-level");
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("%s", usage);
        }
    }
    if (!path) return cli_usage_error("%s", usage);

    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f)) return fail_with(path, "cannot open");
    device d = {0};
    if (ecf8_cl_open_default(&d.context, &d.device, &d.queue)) {
        ecf8_file_close(f);
        return fail_with(path, "no OpenCL device");
    }
    ecf8_cl_device_caps caps;
    ecf8_cl_device_caps_get(d.device, &caps);
    size_t nt = ecf8_file_tensor_count(f);
    tensor_result *res = calloc(nt ? nt : 1, sizeof *res);
    int st = res ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");

    /* Start-up: the smallest coded tensor, twice in fresh contexts (the
     * second finds every cache warm). */
    ecf8_tensor_info small;
    bool have_small = false;
    for (size_t i = 0; i < nt; i++) {
        ecf8_tensor_info t;
        if (ecf8_file_tensor(f, i, &t) || t.split == ECF8_SPLIT_STORED) continue;
        if (!have_small || t.source_bytes < small.source_bytes) small = t, have_small = true;
    }
    double startup_first = 0, startup = 0;
    if (!st && have_small) st = bench_startup(&d, &small, &startup_first);
    if (!st && have_small) st = bench_startup(&d, &small, &startup);

    totals all = {0}, by_dtype[5] = {{0}};
    size_t nres = 0;
    uint64_t stored_bytes = 0;
    for (size_t i = 0; i < nt && !st; i++) {
        ecf8_tensor_info t;
        st = ecf8_file_tensor(f, i, &t);
        if (st) break;
        if (t.split == ECF8_SPLIT_STORED) {
            stored_bytes += t.source_bytes;
            continue;
        }
        if (!json && isatty(2)) fprintf(stderr, "\rmeasuring %zu/%zu %-50.50s", i + 1, nt, t.name);
        st = bench_tensor(&d, &t, (unsigned)repeat, (int)level, &res[nres]);
        if (st) break;
        totals_add(&all, &res[nres]);
        totals_add(&by_dtype[t.dtype], &res[nres]);
        nres++;
    }
    /* Whole file and each dtype, decodes queued back to back. */
    /* Whole file and each dtype, decodes queued back to back: on an
     * out-of-order queue where the device has one (decodes of different
     * tensors may then overlap), and on the in-order queue. */
    batch_result batch_all = {0}, batch_dtype[5] = {{0}}, inorder_all = {0}, inorder_dtype[5] = {{0}};
    cl_command_queue_properties qp = 0;
    clGetDeviceInfo(d.device, CL_DEVICE_QUEUE_PROPERTIES, sizeof qp, &qp, NULL);
    bool have_ooo = (qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    cl_command_queue bq = d.queue;
    if (!st && have_ooo) {
        cl_int e2;
        bq = clCreateCommandQueue(d.context, d.device,
                                  CL_QUEUE_PROFILING_ENABLE | CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &e2);
        if (e2 != CL_SUCCESS) st = ecf8_cl_fail(e2, "clCreateCommandQueue(out of order)");
    }
    batch_set set = {0};
    if (!st) st = batch_set_open(&d, f, &set);
    for (int dt = 0; dt <= 4 && !st; dt++) {
        if (dt && !(by_dtype[dt].count && by_dtype[dt].count < all.count)) continue;
        st = bench_batch(&set, bq, dt, (unsigned)repeat, dt ? &batch_dtype[dt] : &batch_all);
        if (!st && have_ooo)
            st = bench_batch(&set, d.queue, dt, (unsigned)repeat, dt ? &inorder_dtype[dt] : &inorder_all);
    }
    batch_set_close(&set);
    if (bq && bq != d.queue) clReleaseCommandQueue(bq);
    if (!have_ooo) {
        inorder_all = batch_all;
        memcpy(inorder_dtype, batch_dtype, sizeof batch_dtype);
    }
    if (!json && isatty(2)) fprintf(stderr, "\r%80s\r", "");
    if (st) {
        free(res);
        device_close(&d);
        ecf8_file_close(f);
        return fail_with(path, "benchmark failed");
    }
    unsigned threads = 0;
    {
        long nproc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nproc > 0 ? (unsigned)nproc : 1;
    }
    if (json) {
        printf("{\"file\": ");
        cli_json_string(stdout, path);
        printf(", \"device\": ");
        cli_json_string(stdout, caps.name);
        printf(", \"device_version\": ");
        cli_json_string(stdout, caps.version);
        printf(", \"decode_kernel\": \"%s\", \"repeat\": %llu, \"cpu_threads\": %u, \"zstd_level\": %llu, "
               "\"startup_ms\": %.2f, \"startup_first_ms\": %.2f, \"stored_bytes\": %llu, ",
               caps.is_cpu ? "lanes+pairs" : "coop", repeat, threads, level, startup, startup_first,
               (unsigned long long)stored_bytes);
        print_rates_json(stdout, &all);
        print_batch_json(stdout, &batch_all, &inorder_all);
        printf(", \"by_dtype\": {");
        bool first = true;
        for (int dt = 1; dt <= 4; dt++) {
            if (!by_dtype[dt].count) continue;
            printf("%s\"%s\": {", first ? "" : ", ", ecf8_dtype_name((ecf8_dtype)dt));
            print_rates_json(stdout, &by_dtype[dt]);
            if (batch_dtype[dt].count) print_batch_json(stdout, &batch_dtype[dt], &inorder_dtype[dt]);
            else print_batch_json(stdout, &batch_all, &inorder_all);
            printf("}");
            first = false;
        }
        printf("}, \"per_tensor\": [");
        first = true;
        for (size_t i = 0; i < nres; i++) {
            const tensor_result *r = &res[i];
            if (r->bytes < min_bytes) continue;
            printf("%s\n  {\"name\": ", first ? "" : ",");
            cli_json_string(stdout, r->name);
            printf(", \"dtype\": \"%s\", \"split\": \"%s\", \"bytes\": %llu, \"ecf8_ratio\": %.4f, "
                   "\"zstd_ratio\": %.4f, \"opencl_decode_gbps\": %.3f, \"opencl_decode_wall_gbps\": %.3f, "
                   "\"opencl_copy_gbps\": %.3f, \"cpu_decode_gbps\": %.3f, \"zstd_decode_gbps\": %.3f}",
                   ecf8_dtype_name(r->dtype), ecf8_split_name(r->split), (unsigned long long)r->bytes,
                   (double)r->payload_bytes / (double)r->bytes, (double)r->zstd_bytes / (double)r->bytes,
                   gbps((double)r->bytes, r->kernel_s), gbps((double)r->bytes, r->wall_s),
                   gbps((double)r->bytes, r->copy_s), gbps((double)r->bytes, r->cpu_s),
                   gbps((double)r->bytes, r->zstd_s));
            first = false;
        }
        printf("\n]}\n");
    } else {
        printf("%s on %s (%s), medians of %llu runs, GB/s of decoded output\n", path, caps.name,
               caps.is_cpu ? "lanes kernel, pairs for FP8 tensors of under 16 chunks" : "coop kernel",
               repeat);
        printf("%-44s %-8s %10s %7s %7s %7s %7s %7s %7s\n", "tensor", "dtype", "bytes", "ocl",
               "ocl+up", "copy", "cpu", "zstd", "ratio");
        for (size_t i = 0; i < nres; i++) {
            const tensor_result *r = &res[i];
            if (r->bytes < min_bytes) continue;
            printf("%-44.44s %-8s %10llu %7.2f %7.2f %7.2f %7.2f %7.2f %7.3f\n", r->name,
                   ecf8_dtype_name(r->dtype), (unsigned long long)r->bytes,
                   gbps((double)r->bytes, r->kernel_s), gbps((double)r->bytes, r->wall_s),
                   gbps((double)r->bytes, r->copy_s), gbps((double)r->bytes, r->cpu_s),
                   gbps((double)r->bytes, r->zstd_s), (double)r->payload_bytes / (double)r->bytes);
        }
        for (int dt = 0; dt <= 4; dt++) {
            const totals *t = dt ? &by_dtype[dt] : &all;
            if (!t->count || (dt && t->count == all.count)) continue;
            char label[64];
            snprintf(label, sizeof label, "%s (%zu tensors)", dt ? ecf8_dtype_name((ecf8_dtype)dt) : "all coded",
                     t->count);
            printf("%-44s %-8s %10llu %7.2f %7.2f %7.2f %7.2f %7.2f %7.3f\n", label, "",
                   (unsigned long long)t->bytes, gbps((double)t->bytes, t->kernel_s),
                   gbps((double)t->bytes, t->wall_s), gbps((double)t->bytes, t->copy_s),
                   gbps((double)t->bytes, t->cpu_s), gbps((double)t->bytes, t->zstd_s),
                   (double)t->payload_bytes / (double)t->bytes);
        }
        for (int dt = 0; dt <= 4; dt++) {
            const batch_result *b = dt ? &batch_dtype[dt] : &batch_all;
            const batch_result *io = dt ? &inorder_dtype[dt] : &inorder_all;
            if (!b->count) continue;
            printf("queued back to back, %s (%zu tensors, %llu bytes): %s queue %.2f GB/s device "
                   "(%.2f wall)",
                   dt ? ecf8_dtype_name((ecf8_dtype)dt) : "all coded", b->count, (unsigned long long)b->bytes,
                   have_ooo ? "out-of-order" : "in-order", gbps((double)b->bytes, b->span_s),
                   gbps((double)b->bytes, b->wall_s));
            if (have_ooo) printf(", in-order queue %.2f", gbps((double)io->bytes, io->span_s));
            printf("\n");
        }
        printf("zstd: level %llu, one thread, ratio %.3f; cpu: ecf8 decoder on %u threads; "
               "%llu stored bytes not timed\n",
               level, all.bytes ? (double)all.zstd_bytes / (double)all.bytes : 0, threads,
               (unsigned long long)stored_bytes);
        printf("start-up (program from cache + first decode of a %llu-byte tensor): %.1f ms "
               "(first in this process: %.1f ms)\n",
               have_small ? (unsigned long long)small.source_bytes : 0ull, startup, startup_first);
    }
    free(res);
    device_close(&d);
    ecf8_file_close(f);
    return 0;
}

int cli_bench(int argc, char **argv)
{
    if (argc < 1) return cli_usage_error("usage: ecf8 bench decode|matmul FILE.ecf8 ...");
    if (!strcmp(argv[0], "decode")) return bench_decode(argc - 1, argv + 1);
    if (!strcmp(argv[0], "matmul")) return cli_bench_matmul(argc - 1, argv + 1);
    return cli_usage_error("unknown benchmark '%s' (decode or matmul)", argv[0]);
}

int cli_matmul(int argc, char **argv) { return cli_matmul_run(argc, argv); }
