/* bench_decode.c - ecf8-bench-decode: device decode of every coded tensor
 * of an .ecf8 file (kernel time, upload + decode wall time, a device copy of
 * the same size), beside the CPU decoder and libzstd, and the whole file
 * decoded as a user decodes it, queued back to back on an out-of-order and
 * an in-order queue.  Was `ecf8 bench decode`: the same arguments and
 * output.  Errors are one line, "ecf8-bench-decode: FILE: what is wrong",
 * exit status 1; usage errors exit 2. */
#include "bench_util.h"

#include "opencl/runtime.h" /* ecf8_fail, ecf8_cl_fail */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* ---- bench decode ------------------------------------------------------------------- */
typedef struct tensor_result {
    const char *name;
    const char *kernel; /* the decode kernel that ran ("streams", "lanes", ...; NULL: stored) */
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
            t->bytes ? (double)t->zstd_bytes / (double)t->bytes : 0, bench_gbps((double)t->bytes, t->kernel_s),
            bench_gbps((double)t->bytes, t->wall_s), bench_gbps((double)t->bytes, t->copy_s),
            bench_gbps((double)t->bytes, t->cpu_s), bench_gbps((double)t->bytes, t->zstd_s));
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
            b->count, bench_gbps((double)b->bytes, b->span_s), bench_gbps((double)b->bytes, b->wall_s),
            bench_gbps((double)in_order->bytes, in_order->span_s));
}

/* Measures one coded tensor: device decode (kernel time from profiling,
 * and wall time of upload + decode), a device copy of the same size, the
 * CPU decoder on all cores and libzstd single-threaded on the same bytes
 * compressed at `level`.  Checks the device result against the CPU. */
static int bench_tensor(bench_device *d, const ecf8_tensor_info *t, unsigned repeat, int level,
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
    cl_mem src = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, n, NULL, &err);
    cl_mem dst = err == CL_SUCCESS ? clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, n, NULL, &err) : NULL;
    ecf8_cl_tensor *ct = NULL;
    int st = ECF8_OK;
    if (!times || !ref || !dev || !z) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    else if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(bench)");
    /* CPU decoder, all cores; its output is the reference. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        double a = bench_now_seconds();
        st = ecf8_stream_decode(&t->stream, ref, n, 0);
        times[i] = bench_now_seconds() - a;
    }
    if (!st) r->cpu_s = bench_median(times, repeat);
    if (!st && ecf8_checksum64(ref, n) != t->checksum)
        st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t->name);
    /* Device: wall time of upload + decode, with a fresh tensor each time. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        double a = bench_now_seconds();
        st = ecf8_cl_tensor_create_ex(d->ctx, d->dev, d->queue, t, &d->tuning, &ct);
        if (!st) st = ecf8_cl_enqueue_decode(ct, d->queue, dst, 0, 0, NULL, NULL);
        if (!st && (err = clFinish(d->queue)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish");
        times[i] = bench_now_seconds() - a;
        if (i + 1 < repeat) {
            ecf8_cl_tensor_free(ct);
            ct = NULL;
        }
    }
    if (!st) r->wall_s = bench_median(times, repeat);
    if (!st) r->kernel = ecf8_cl_tensor_kernel(ct, 0);
    if (!st) st = ecf8_cl_decode_to_host(ct, d->queue, dev, n);
    if (!st && memcmp(dev, ref, n))
        st = ecf8_fail(ECF8_ERR_MISMATCH, "tensor '%s': device decode differs from the CPU decoder", t->name);
    /* Kernel time from profiling events. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        cl_event ev = NULL;
        st = ecf8_cl_enqueue_decode(ct, d->queue, dst, 0, 0, NULL, &ev);
        if (!st && (err = clWaitForEvents(1, &ev)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clWaitForEvents");
        if (!st) times[i] = bench_event_seconds(ev);
        if (ev) clReleaseEvent(ev);
    }
    if (!st) r->kernel_s = bench_median(times, repeat);
    /* A plain device copy of the same size. */
    for (unsigned i = 0; i < repeat && !st; i++) {
        cl_event ev = NULL;
        err = clEnqueueCopyBuffer(d->queue, src, dst, 0, 0, n, 0, NULL, &ev);
        if (err == CL_SUCCESS) err = clWaitForEvents(1, &ev);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueCopyBuffer");
        else times[i] = bench_event_seconds(ev);
        if (ev) clReleaseEvent(ev);
    }
    if (!st) r->copy_s = bench_median(times, repeat);
    /* libzstd, one thread, on the same bytes. */
    if (!st) {
        size_t zn = ZSTD_compress(z, zcap, ref, n, level);
        if (ZSTD_isError(zn)) st = ecf8_fail(ECF8_ERR_IO, "zstd: %s", ZSTD_getErrorName(zn));
        r->zstd_bytes = zn;
        ZSTD_DCtx *dctx = st ? NULL : ZSTD_createDCtx();
        for (unsigned i = 0; i < repeat && !st; i++) {
            double a = bench_now_seconds();
            size_t got = ZSTD_decompressDCtx(dctx, dev, n, z, zn);
            times[i] = bench_now_seconds() - a;
            if (ZSTD_isError(got) || got != n)
                st = ecf8_fail(ECF8_ERR_IO, "zstd round trip failed");
        }
        ZSTD_freeDCtx(dctx);
        if (!st) r->zstd_s = bench_median(times, repeat);
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

static int batch_set_open(bench_device *d, ecf8_file *f, batch_set *b)
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
        st = ecf8_cl_tensor_create_ex(d->ctx, d->dev, d->queue, &t, &d->tuning,
                                      &b->tensor[b->count]);
        if (st) break;
        b->dtype[b->count] = t.dtype, b->checksum[b->count] = t.checksum;
        b->bytes[b->count] = t.source_bytes, b->at[b->count++] = b->total;
        b->total += ((size_t)t.source_bytes + 255) & ~(size_t)255;
    }
    cl_int err = CL_SUCCESS;
    if (!st && b->total) b->out = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, b->total, NULL, &err);
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
        double t_enqueue = bench_now_seconds();
        for (size_t i = 0; i < b->count && !st; i++)
            if (!dtype || (int)b->dtype[i] == dtype)
                st = ecf8_cl_enqueue_decode(b->tensor[i], queue, b->out, b->at[i], 0, NULL, &ev[i]);
        if (!st && (err = clFinish(queue)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish");
        double t_done = bench_now_seconds();
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
    if (!st) r->span_s = bench_median(span, repeat), r->wall_s = bench_median(wall, repeat);
    free(host);
    free(ev);
    free(span);
    free(wall);
    return st;
}

/* The same coded tensors (set b, all of stream layout 1) decoded by one
 * ecf8_cl_enqueue_decode_batch per round (ecf8_cl_batch: one launch per
 * build class) on `queue`: wall time from the enqueue to the finish, one
 * unmeasured round, then `repeat`; then the error record and every
 * output's checksum.  r->count stays 0 where a coded tensor has layout 0. */
static int bench_one_enqueue(bench_device *d, ecf8_file *f, const batch_set *b, unsigned repeat,
                             batch_result *r, size_t *launches)
{
    memset(r, 0, sizeof *r);
    size_t nt = ecf8_file_tensor_count(f), n = 0;
    ecf8_tensor_info *infos = calloc(nt ? nt : 1, sizeof *infos);
    const ecf8_tensor_info **ptrs = calloc(nt ? nt : 1, sizeof *ptrs);
    double *wall = calloc(repeat, sizeof *wall);
    int st = infos && ptrs && wall ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    bool all_lanes = true;
    for (size_t i = 0; i < nt && !st; i++) {
        if ((st = ecf8_file_tensor(f, i, &infos[n])) || infos[n].split == ECF8_SPLIT_STORED) continue;
        all_lanes = all_lanes && infos[n].stream.stream_layout == ECF8_STREAM_LAYOUT_LANES;
        ptrs[n] = &infos[n], n++;
    }
    ecf8_cl_batch *batch = NULL;
    if (!st && all_lanes && n && n == b->count) st = ecf8_cl_batch_create(d->ctx, d->dev, d->queue, ptrs, n, &d->tuning, &batch);
    cl_int err;
    for (unsigned rep = 0; batch && rep <= repeat && !st; rep++) {
        double t0 = bench_now_seconds();
        st = ecf8_cl_enqueue_decode_batch(batch, d->queue, b->out, b->at, 0, NULL, NULL);
        if (!st && (err = clFinish(d->queue)) != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish");
        if (!st && rep > 0) wall[rep - 1] = bench_now_seconds() - t0;
    }
    uint8_t *host = batch && !st ? malloc(b->total) : NULL;
    if (batch && !st && !host) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (host) st = ecf8_cl_batch_check(batch, d->queue);
    if (host && !st &&
        (err = clEnqueueReadBuffer(d->queue, b->out, CL_TRUE, 0, b->total, host, 0, NULL, NULL)) != CL_SUCCESS)
        st = ecf8_cl_fail(err, "clEnqueueReadBuffer(bench batch)");
    for (size_t i = 0; host && i < b->count && !st; i++)
        if (ecf8_checksum64(host + b->at[i], (size_t)b->bytes[i]) != b->checksum[i])
            st = ecf8_fail(ECF8_ERR_MISMATCH, "one-enqueue device decode: coded tensor %zu differs from its checksum", i);
    if (batch && !st) {
        r->count = b->count;
        for (size_t i = 0; i < b->count; i++) r->bytes += b->bytes[i];
        r->wall_s = r->span_s = bench_median(wall, repeat);
        *launches = ecf8_cl_batch_launches(batch);
    }
    ecf8_cl_batch_free(batch);
    free(host);
    free(infos);
    free(ptrs);
    free(wall);
    return st;
}

/* Start-up in a fresh context: program (from the caches) + upload and first
 * decode of `t`, in milliseconds. */
static int bench_startup(const bench_device *d, const ecf8_tensor_info *t, double *ms)
{
    double a = bench_now_seconds();
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &d->dev, NULL, NULL, &err);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateContext");
    cl_command_queue q = clCreateCommandQueue(ctx, d->dev, 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(ctx);
        return ecf8_cl_fail(err, "clCreateCommandQueue");
    }
    uint8_t *out = malloc((size_t)t->source_bytes);
    ecf8_cl_tensor *ct = NULL;
    int st = out ? ecf8_cl_tensor_create_ex(ctx, d->dev, q, t, &d->tuning, &ct)
                 : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) st = ecf8_cl_decode_to_host(ct, q, out, (size_t)t->source_bytes);
    *ms = (bench_now_seconds() - a) * 1e3;
    ecf8_cl_tensor_free(ct);
    free(out);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return st;
}

static const char usage_text[] =
    "usage: ecf8-bench-decode FILE.ecf8 [--json] [--repeat N] [--min-bytes B] [--zstd-level L]\n"
    "Decodes every coded tensor of FILE on the OpenCL device ECF8_PLATFORM / ECF8_DEVICE\n"
    "select, beside a device copy of the same size, the CPU decoder on all cores and\n"
    "libzstd (one thread, level L, default 19); then the whole file queued back to back.\n"
    "Figures are medians of N runs (default 5); --min-bytes (default 256 KiB) limits the\n"
    "per-tensor rows, not the totals.  bench/README.md describes every figure.\n";

int main(int argc, char **argv)
{
    bench_prog = "ecf8-bench-decode";
    argc--, argv++;
    const char *path = NULL;
    bool json = false;
    unsigned long long repeat = 5, min_bytes = 256 * 1024, level = 19;
    const char *usage = "usage: ecf8-bench-decode FILE.ecf8 [--json] [--repeat N] [--min-bytes B] "
                        "[--zstd-level L]";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            if (!bench_parse_uint(argv[++i], 1000, &repeat) || repeat == 0)
                return bench_usage_error("bad --repeat '%s' (1..1000)", argv[i]);
        } else if (!strcmp(argv[i], "--min-bytes") && i + 1 < argc) {
            if (!bench_parse_uint(argv[++i], 1ull << 40, &min_bytes))
                return bench_usage_error("bad --min-bytes '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--zstd-level") && i + 1 < argc) {
            if (!bench_parse_uint(argv[++i], 22, &level) || level == 0)
                return bench_usage_error("bad --zstd-level '%s' (1..22)", argv[i]);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return bench_unknown_option(argv[i], i + 1 == argc,
                                        (const char *const[]){"--repeat", "--min-bytes", "--zstd-level", NULL});
        } else if (!path) {
            path = argv[i];
        } else {
            return bench_usage_error("%s", usage);
        }
    }
    if (!path) return bench_usage_error("%s", usage);

    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f)) return bench_lib_error(path, "cannot open");
    bench_device d;
    if (bench_device_open(&d, path)) {
        ecf8_file_close(f);
        return 1;
    }
    ecf8_cl_device_info caps = {.struct_size = sizeof caps};
    ecf8_cl_device_describe(d.dev, &caps);
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
    clGetDeviceInfo(d.dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof qp, &qp, NULL);
    bool have_ooo = (qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    cl_command_queue bq = d.queue;
    if (!st && have_ooo) {
        cl_int e2;
        bq = clCreateCommandQueue(d.ctx, d.dev,
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
    batch_result one = {0};
    size_t one_launches = 0;
    if (!st) st = bench_one_enqueue(&d, f, &set, (unsigned)repeat, &one, &one_launches);
    batch_set_close(&set);
    if (bq && bq != d.queue) clReleaseCommandQueue(bq);
    if (!have_ooo) {
        inorder_all = batch_all;
        memcpy(inorder_dtype, batch_dtype, sizeof batch_dtype);
    }
    if (!json && isatty(2)) fprintf(stderr, "\r%80s\r", "");
    if (st) {
        free(res);
        bench_device_close(&d);
        ecf8_file_close(f);
        return bench_lib_error(path, "benchmark failed");
    }
    unsigned threads = 0;
    {
        long nproc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nproc > 0 ? (unsigned)nproc : 1;
    }
    if (json) {
        printf("{\"file\": ");
        bench_json_string(stdout, path);
        printf(", \"device\": ");
        bench_json_string(stdout, caps.name);
        printf(", \"device_version\": ");
        bench_json_string(stdout, caps.version);
        printf(", \"decode_kernel\": \"%s\", \"repeat\": %llu, \"cpu_threads\": %u, \"zstd_level\": %llu, "
               "\"startup_ms\": %.2f, \"startup_first_ms\": %.2f, \"stored_bytes\": %llu, ",
               caps.is_cpu ? "lanes+pairs" : "coop", repeat, threads, level, startup, startup_first,
               (unsigned long long)stored_bytes);
        print_rates_json(stdout, &all);
        print_batch_json(stdout, &batch_all, &inorder_all);
        if (one.count)
            printf(", \"one_enqueue_wall_gbps\": %.3f, \"one_enqueue_launches\": %zu",
                   bench_gbps((double)one.bytes, one.wall_s), one_launches);
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
            bench_json_string(stdout, r->name);
            printf(", \"kernel\": \"%s\"", r->kernel ? r->kernel : "copy");
            printf(", \"dtype\": \"%s\", \"split\": \"%s\", \"bytes\": %llu, \"ecf8_ratio\": %.4f, "
                   "\"zstd_ratio\": %.4f, \"opencl_decode_gbps\": %.3f, \"opencl_decode_wall_gbps\": %.3f, "
                   "\"opencl_copy_gbps\": %.3f, \"cpu_decode_gbps\": %.3f, \"zstd_decode_gbps\": %.3f}",
                   ecf8_dtype_name(r->dtype), ecf8_split_name(r->split), (unsigned long long)r->bytes,
                   (double)r->payload_bytes / (double)r->bytes, (double)r->zstd_bytes / (double)r->bytes,
                   bench_gbps((double)r->bytes, r->kernel_s), bench_gbps((double)r->bytes, r->wall_s),
                   bench_gbps((double)r->bytes, r->copy_s), bench_gbps((double)r->bytes, r->cpu_s),
                   bench_gbps((double)r->bytes, r->zstd_s));
            first = false;
        }
        printf("\n]}\n");
    } else {
        printf("%s on %s, medians of %llu runs, GB/s of decoded output\n", path, caps.name, repeat);
        printf("%-44s %-8s %10s %7s %7s %7s %7s %7s %7s %s\n", "tensor", "dtype", "bytes", "ocl",
               "ocl+up", "copy", "cpu", "zstd", "ratio", "kernel");
        for (size_t i = 0; i < nres; i++) {
            const tensor_result *r = &res[i];
            if (r->bytes < min_bytes) continue;
            printf("%-44.44s %-8s %10llu %7.2f %7.2f %7.2f %7.2f %7.2f %7.3f %s\n", r->name,
                   ecf8_dtype_name(r->dtype), (unsigned long long)r->bytes,
                   bench_gbps((double)r->bytes, r->kernel_s), bench_gbps((double)r->bytes, r->wall_s),
                   bench_gbps((double)r->bytes, r->copy_s), bench_gbps((double)r->bytes, r->cpu_s),
                   bench_gbps((double)r->bytes, r->zstd_s), (double)r->payload_bytes / (double)r->bytes,
                   r->kernel ? r->kernel : "copy");
        }
        for (int dt = 0; dt <= 4; dt++) {
            const totals *t = dt ? &by_dtype[dt] : &all;
            if (!t->count || (dt && t->count == all.count)) continue;
            char label[64];
            snprintf(label, sizeof label, "%s (%zu tensors)", dt ? ecf8_dtype_name((ecf8_dtype)dt) : "all coded",
                     t->count);
            printf("%-44s %-8s %10llu %7.2f %7.2f %7.2f %7.2f %7.2f %7.3f\n", label, "",
                   (unsigned long long)t->bytes, bench_gbps((double)t->bytes, t->kernel_s),
                   bench_gbps((double)t->bytes, t->wall_s), bench_gbps((double)t->bytes, t->copy_s),
                   bench_gbps((double)t->bytes, t->cpu_s), bench_gbps((double)t->bytes, t->zstd_s),
                   (double)t->payload_bytes / (double)t->bytes);
        }
        for (int dt = 0; dt <= 4; dt++) {
            const batch_result *b = dt ? &batch_dtype[dt] : &batch_all;
            const batch_result *io = dt ? &inorder_dtype[dt] : &inorder_all;
            if (!b->count) continue;
            printf("queued back to back, %s (%zu tensors, %llu bytes): %s queue %.2f GB/s device "
                   "(%.2f wall)",
                   dt ? ecf8_dtype_name((ecf8_dtype)dt) : "all coded", b->count, (unsigned long long)b->bytes,
                   have_ooo ? "out-of-order" : "in-order", bench_gbps((double)b->bytes, b->span_s),
                   bench_gbps((double)b->bytes, b->wall_s));
            if (have_ooo) printf(", in-order queue %.2f", bench_gbps((double)io->bytes, io->span_s));
            printf("\n");
        }
        if (one.count)
            printf("one enqueue (ecf8_cl_enqueue_decode_batch), all coded (%zu tensors, %llu bytes): "
                   "%.2f GB/s wall, %zu launches\n",
                   one.count, (unsigned long long)one.bytes, bench_gbps((double)one.bytes, one.wall_s),
                   one_launches);
        printf("zstd: level %llu, one thread, ratio %.3f; cpu: ecf8 decoder on %u threads; "
               "%llu stored bytes not timed\n",
               level, all.bytes ? (double)all.zstd_bytes / (double)all.bytes : 0, threads,
               (unsigned long long)stored_bytes);
        printf("start-up (program from cache + first decode of a %llu-byte tensor): %.1f ms "
               "(first in this process: %.1f ms)\n",
               have_small ? (unsigned long long)small.source_bytes : 0ull, startup, startup_first);
    }
    free(res);
    bench_device_close(&d);
    ecf8_file_close(f);
    return 0;
}
