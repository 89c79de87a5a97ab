/* bench_matmul.c - ecf8-bench-matmul: Y = X W^T for one weight of an .ecf8
 * file timed on three engines -- fused (decode inside the matmul kernel),
 * uncompressed (the same kernels reading raw weights) and clblast (decode,
 * dequantise to fp32, CLBlast SGEMV/SGEMM; only in builds with CLBlast) --
 * weights cold, checked against a float64 reference.  Was `ecf8 bench
 * matmul`: the same arguments and output.  Errors are one line,
 * "ecf8-bench-matmul: FILE: what is wrong", exit status 1; usage errors
 * exit 2. */
#include "bench_util.h"
#include "cli.h" /* mm_weight_find (src/cli/cli_weight.c) */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#if defined(ECF8_HAVE_CLBLAST)
#include <clblast_c.h>
#define HAVE_CLBLAST 1
#else
#define HAVE_CLBLAST 0
#endif

typedef bench_device device;

/* Looks the weight (NULL: the file's largest Linear weight) and its scales
 * up; prints the error itself. */
static int find_weight(const ecf8_file *f, const char *path, const char *name, mm_weight *out)
{
    char why[1200];
    if (mm_weight_find(f, name, out, why, sizeof why)) return bench_file_error(path, "%s", why);
    return 0;
}

/* ---- engines ---------------------------------------------------------------------------- */
typedef enum { ENG_FUSED, ENG_UNCOMPRESSED, ENG_CLBLAST, ENG_COUNT } engine_id;
static const char *const engine_names[ENG_COUNT] = {"fused", "uncompressed", "clblast"};

/* State of the decode + dequantise + CLBlast baseline; the events of its
 * last run give the time of each stage. */
typedef struct clblast_state {
    ecf8_cl_tensor *tensor;
    cl_mem raw, wf32;
    cl_event ev[3];
    uint8_t *check; /* host copy for clblast_check */
} clblast_state;

static void clblast_events_release(clblast_state *c)
{
    for (int i = 0; i < 3; i++)
        if (c->ev[i]) clReleaseEvent(c->ev[i]), c->ev[i] = NULL;
}

/* Milliseconds of stage i of the last run (0 when unknown): decode and
 * dequantise from their events; BLAS from the end of the dequantisation to
 * the end of CLBlast's last kernel (the queue is in order, and CLBlast may
 * run several kernels but returns one event). */
static double clblast_stage_ms(const clblast_state *c, int i)
{
    cl_ulong a = 0, b = 0;
    int from_end = i == 2;
    const cl_event ea = from_end ? c->ev[1] : c->ev[i], eb = c->ev[i];
    if (!ea || !eb ||
        clGetEventProfilingInfo(ea, from_end ? CL_PROFILING_COMMAND_END : CL_PROFILING_COMMAND_START,
                                sizeof a, &a, NULL) ||
        clGetEventProfilingInfo(eb, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL) || b < a)
        return 0;
    return (double)(b - a) * 1e-6;
}

static void clblast_free(clblast_state *c)
{
    clblast_events_release(c);
    ecf8_cl_tensor_free(c->tensor);
    if (c->raw) clReleaseMemObject(c->raw);
    if (c->wf32) clReleaseMemObject(c->wf32);
    free(c->check);
    memset(c, 0, sizeof *c);
}

static int clblast_prepare(const device *d, const ecf8_tensor_info *w, clblast_state *c)
{
    memset(c, 0, sizeof *c);
#if HAVE_CLBLAST
    if (ecf8_cl_tensor_create_ex(d->ctx, d->dev, d->queue, w, &d->tuning, &c->tensor))
        return bench_lib_error(d->path, "tensor upload failed");
    size_t n = (size_t)w->shape[0] * w->shape[1];
    c->raw = bench_buffer(d, n * ecf8_dtype_size(w->dtype) + 64, NULL, "decoded weights");
    c->wf32 = c->raw ? bench_buffer(d, n * sizeof(float), NULL, "fp32 weights") : NULL;
    c->check = malloc(ecf8_cl_tensor_decoded_bytes(c->tensor) + 1);
    if (!c->check) bench_file_error(d->path, "out of memory");
    if (!c->raw || !c->wf32 || !c->check) {
        clblast_free(c);
        return 1;
    }
    return 0;
#else
    (void)d, (void)w;
    return bench_file_error(d->path, "this build has no CLBlast: the clblast engine is unavailable");
#endif
}

/* The decode kernel records a chunk that does not decode to its stored
 * length in an error word that only ecf8_cl_decode_to_host reads: it checks
 * the decodes enqueued so far, then decodes once more and checks the
 * checksum.  Called once the runs whose Y is used are done, outside timed
 * code. */
static int clblast_check(const device *d, clblast_state *c)
{
    if (!c->tensor) return 0;
    if (ecf8_cl_decode_to_host(c->tensor, d->queue, c->check, ecf8_cl_tensor_decoded_bytes(c->tensor)))
        return bench_lib_error(d->path, "device decode for the clblast engine failed");
    return 0;
}

/* Enqueues decode, dequantise and SGEMV (m = 1) or SGEMM. */
static int clblast_enqueue(const device *d, ecf8_cl_matmul *mm, clblast_state *c, size_t m,
                           size_t n, size_t k, cl_mem x, cl_mem y)
{
#if HAVE_CLBLAST
    clblast_events_release(c);
    /* CLBlast's GEMV kernels compute alpha*A*x + beta*y even for beta = 0,
     * so Y must hold numbers: garbage in a fresh buffer came out as NaN rows.
     * The fill is enqueued first, outside the three timed stages. */
    const float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(d->queue, y, &zero, sizeof zero, 0, m * n * sizeof(float), 0, NULL,
                                     NULL);
    if (err != CL_SUCCESS)
        return bench_file_error(d->path, "clEnqueueFillBuffer (Y of the clblast engine): %s", ecf8_status_string(err));
    if (ecf8_cl_enqueue_decode(c->tensor, d->queue, c->raw, 0, 0, NULL, &c->ev[0]) ||
        ecf8_cl_enqueue_dequantize(mm, d->queue, c->raw, 0, c->wf32, 0, 0, NULL, &c->ev[1]))
        return bench_lib_error(d->path, "decode for the clblast engine failed");
    cl_command_queue q = d->queue;
    CLBlastStatusCode s;
    if (m == 1)
        s = CLBlastSgemv(CLBlastLayoutRowMajor, CLBlastTransposeNo, n, k, 1.0f, c->wf32, 0, k, x, 0, 1,
                         0.0f, y, 0, 1, &q, &c->ev[2]);
    else
        s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, n, k, 1.0f,
                         x, 0, k, c->wf32, 0, k, 0.0f, y, 0, n, &q, &c->ev[2]);
    if (s != CLBlastSuccess)
        return bench_file_error(d->path, "CLBlast %s failed with status %d", m == 1 ? "SGEMV" : "SGEMM", (int)s);
    return 0;
#else
    (void)d, (void)mm, (void)c, (void)m, (void)n, (void)k, (void)x, (void)y;
    return 1;
#endif
}

static int engine_enqueue(const device *d, engine_id e, ecf8_cl_matmul *mm, clblast_state *c,
                          size_t m, size_t n, size_t k, cl_mem x, cl_mem y)
{
    if (e == ENG_CLBLAST) return clblast_enqueue(d, mm, c, m, n, k, x, y);
    ecf8_cl_engine ce = e == ENG_FUSED ? ECF8_CL_ENGINE_FUSED : ECF8_CL_ENGINE_UNCOMPRESSED;
    if (ecf8_cl_enqueue_matmul(mm, ce, d->queue, m, x, 0, 0, y, 0, 0, NULL, NULL))
        return bench_lib_error(d->path, "matmul failed");
    return 0;
}

/* ---- the bench ----------------------------------------------------------------------------- */
/* A flush kernel that reads and writes a buffer larger than the device's
 * last-level cache, so the next run reads its weights from memory. */
static const char flush_source[] =
    "__kernel void ecf8_flush(__global uint *b) { size_t i = get_global_id(0); b[i] = b[i] * 3u + 1u; }\n";

typedef struct flusher {
    cl_program prog;
    cl_kernel kernel;
    cl_mem buf;
    size_t bytes;
} flusher;

static int flusher_init(const device *d, flusher *fl)
{
    memset(fl, 0, sizeof *fl);
    cl_ulong cache = 0;
    clGetDeviceInfo(d->dev, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof cache, &cache, NULL);
    size_t bytes = (size_t)cache * 2;
    if (bytes < (256u << 20)) bytes = 256u << 20;
    cl_ulong maxalloc = 0;
    clGetDeviceInfo(d->dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    if (maxalloc && bytes > maxalloc) bytes = (size_t)maxalloc;
    bytes = bytes / 4096 * 4096;
    cl_int err;
    const char *src = flush_source;
    fl->prog = clCreateProgramWithSource(d->ctx, 1, &src, NULL, &err);
    if (!err) err = clBuildProgram(fl->prog, 1, &d->dev, "", NULL, NULL);
    if (!err) fl->kernel = clCreateKernel(fl->prog, "ecf8_flush", &err);
    if (!err) fl->buf = bench_buffer(d, bytes, NULL, "the cache flush");
    if (err) return bench_file_error(d->path, "cannot set up the cache flush (%s)", ecf8_status_string(err));
    if (!fl->buf) return 1; /* make_buffer said why */
    unsigned zero = 0;
    clEnqueueFillBuffer(d->queue, fl->buf, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
    clSetKernelArg(fl->kernel, 0, sizeof(cl_mem), &fl->buf);
    fl->bytes = bytes;
    return 0;
}

static void flusher_run(const device *d, const flusher *fl)
{
    size_t g = fl->bytes / 4;
    clEnqueueNDRangeKernel(d->queue, fl->kernel, 1, NULL, &g, NULL, 0, NULL, NULL);
    clFinish(d->queue);
}

static void flusher_free(flusher *fl)
{
    if (fl->kernel) clReleaseKernel(fl->kernel);
    if (fl->prog) clReleaseProgram(fl->prog);
    if (fl->buf) clReleaseMemObject(fl->buf);
}

/* The weight a bench run multiplies: the file's tensor or a tiled one. */
typedef struct bench_weight {
    ecf8_tensor_info info, scale;
    int has_scale;
    uint8_t *raw;       /* N x K elements, for the reference */
    float *scales;      /* [ceil(N/128), ceil(K/128)] or NULL */
    ecf8_encoded *enc;  /* when tiled */
    char name[1100];
} bench_weight;

static void bench_weight_free(bench_weight *b)
{
    free(b->raw);
    if (b->enc) free(b->scales); /* else it points into the file */
    ecf8_encoded_free(b->enc);
}

/* Tiles the file's weight to n x k (W'[r][c] = W[r % N][c % K], scales the
 * same way per 128-block) and encodes it in memory. */
static int bench_tile(const char *path, const mm_weight *src, const uint8_t *raw, uint64_t n, uint64_t k,
                      bench_weight *b)
{
    ecf8_dtype dt = src->w.dtype;
    size_t es = ecf8_dtype_size(dt), n0 = (size_t)src->w.shape[0], k0 = (size_t)src->w.shape[1];
    b->raw = malloc((size_t)n * k * es);
    if (!b->raw) return bench_file_error(path, "out of memory");
    for (size_t r = 0; r < n; r++) {
        uint8_t *dst = b->raw + r * k * es;
        const uint8_t *row = raw + (r % n0) * k0 * es;
        for (size_t c = 0; c < k; c += k0) {
            size_t len = k - c < k0 ? k - c : k0;
            memcpy(dst + c * es, row, len * es);
        }
    }
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    /* Coded like the file's tensor: its split, and codes no longer than
     * its longest (the tiled weight has the same byte statistics, so this
     * only matters for a file made with --split or --max-code-bits, which
     * is then measured as it was made). */
    if (src->w.split == ECF8_SPLIT_EXPONENT || src->w.split == ECF8_SPLIT_BYTE) {
        o.split = src->w.split;
        if (src->w.stream.code_bits > 0) o.max_code_bits = src->w.stream.code_bits;
        o.stream_layout = src->w.stream.stream_layout; /* lane streams stay lane streams */
    }
    if (ecf8_tensor_encode(dt, b->raw, n, k, &o, &b->enc)) return bench_lib_error(path, "encoding the tiled weight failed");
    snprintf(b->name, sizeof b->name, "%s (tiled to %llux%llu)", src->w.name, (unsigned long long)n,
             (unsigned long long)k);
    if (ecf8_encoded_tensor_info(b->enc, b->name, dt, b->raw, n, k, &b->info))
        return bench_lib_error(path, "describing the tiled weight failed");
    if (src->has_scale) {
        size_t snb = (size_t)src->s.shape[0], skb = (size_t)src->s.shape[1];
        size_t nb = (size_t)(n + 127) / 128, kb = (size_t)(k + 127) / 128;
        const float *ss = src->s.payload;
        b->scales = malloc(nb * kb * sizeof(float));
        if (!b->scales) return bench_file_error(path, "out of memory");
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < kb; j++) memcpy(&b->scales[i * kb + j], &ss[(i % snb) * skb + j % skb], 4);
        b->scale = src->s;
        b->scale.shape[0] = nb, b->scale.shape[1] = kb;
        b->scale.n_elements = nb * kb;
        b->scale.source_bytes = b->scale.payload_bytes = nb * kb * 4;
        b->scale.payload = b->scales;
        b->scale.checksum = XXH3_64bits(b->scales, nb * kb * sizeof(float));
        b->has_scale = 1;
    }
    return 0;
}

/* max |y - ref| over the reference columns (every `stride`-th output
 * column, all rows of X); NaN when a finite reference meets a non-finite y. */
static double max_abs_err(const bench_weight *b, const float *x, const float *y, const double *ref,
                          size_t m, size_t n, size_t stride)
{
    (void)b, (void)x;
    double e = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j += stride) {
            double r = ref[i * ((n + stride - 1) / stride) + j / stride];
            if (!isfinite(r)) continue;
            double d = fabs((double)y[i * n + j] - r);
            if (isnan(d)) return d; /* or a later finite d would replace it */
            if (d > e) e = d;
        }
    return e;
}

typedef struct engine_result {
    int ran;
    double median_ms, min_ms, cpu_ms;
    double stage_ms[3]; /* clblast: median decode, dequantise, BLAS (device time) */
    double err;
    uint64_t weight_bytes;
    float *y;
} engine_result;

static void json_engine(const char *name, const engine_result *r, double flops, int *first)
{
    if (!r->ran) return;
    printf("%s\"%s\": {\"median_ms\": %.4f, \"min_ms\": %.4f, \"cpu_ms\": %.4f, \"gflops\": %.3f, "
           "\"weight_gbps\": %.3f, \"weight_bytes\": %llu, \"max_abs_err\": %.6g",
           *first ? "" : ", ", name, r->median_ms, r->min_ms, r->cpu_ms, flops / r->median_ms * 1e-6,
           (double)r->weight_bytes / r->median_ms * 1e-6, (unsigned long long)r->weight_bytes, r->err);
    if (r->stage_ms[0] + r->stage_ms[1] + r->stage_ms[2] > 0)
        printf(", \"decode_ms\": %.4f, \"dequantize_ms\": %.4f, \"blas_ms\": %.4f", r->stage_ms[0],
               r->stage_ms[1], r->stage_ms[2]);
    printf("}");
    *first = 0;
}

static int bench_one(const device *d, const bench_weight *b, size_t m, unsigned repeat, int warm,
                     const flusher *fl, int use_clblast, int json)
{
    const ecf8_tensor_info *t = &b->info;
    size_t n = (size_t)t->shape[0], k = (size_t)t->shape[1];
    ecf8_cl_matmul *mm = NULL;
    clblast_state cb = {0};
    engine_result res[ENG_COUNT] = {{0}};
    int rc = 0;
    if (ecf8_cl_matmul_create_ex(d->ctx, d->dev, d->queue, t, b->has_scale ? &b->scale : NULL, 0,
                                 &d->tuning, &mm))
        return bench_lib_error(d->path, "cannot prepare the matmul");
    ecf8_cl_matmul_info info;
    ecf8_cl_matmul_get_info(mm, &info);
    if (use_clblast && clblast_prepare(d, t, &cb)) rc = 1;
    float *x = rc ? NULL : malloc(m * k * sizeof(float));
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; x && i < m * k; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        x[i] = (float)((double)(int64_t)(seed >> 40) / (double)(1 << 23));
    }
    if (!rc && !x) rc = bench_file_error(d->path, "out of memory");
    cl_mem bx = x ? bench_buffer(d, m * k * sizeof(float), x, "X") : NULL;
    cl_mem by = bx ? bench_buffer(d, m * n * sizeof(float), NULL, "Y") : NULL;
    if (x && (!bx || !by)) rc = 1; /* make_buffer said why */
    engine_id order[ENG_COUNT];
    int n_eng = 0;
    order[n_eng++] = ENG_FUSED;
    order[n_eng++] = ENG_UNCOMPRESSED;
    if (use_clblast) order[n_eng++] = ENG_CLBLAST;
    res[ENG_FUSED].weight_bytes = info.fused_bytes;
    res[ENG_UNCOMPRESSED].weight_bytes = info.uncompressed_bytes;
    if (use_clblast) res[ENG_CLBLAST].weight_bytes = ecf8_cl_tensor_device_bytes(cb.tensor) +
                                                     (b->has_scale ? b->scale.payload_bytes : 0);
    double *times = calloc((size_t)(2 * ENG_COUNT + 3) * repeat, sizeof(double));
    double *cpu = times ? times + (size_t)ENG_COUNT * repeat : NULL;
    double *stages = times ? cpu + (size_t)ENG_COUNT * repeat : NULL;
    if (!rc && !times) rc = bench_file_error(d->path, "out of memory");
    /* Warm-up (builds programs), then rounds that alternate the engines so
     * that background load hits them alike. */
    for (int e = 0; !rc && e < n_eng; e++) {
        rc = engine_enqueue(d, order[e], mm, &cb, m, n, k, bx, by);
        if (!rc) clFinish(d->queue);
        res[order[e]].y = malloc(m * n * sizeof(float));
        if (!rc && (!res[order[e]].y ||
                    clEnqueueReadBuffer(d->queue, by, CL_TRUE, 0, m * n * 4, res[order[e]].y, 0, NULL, NULL)))
            rc = bench_file_error(d->path, "reading the result from the device failed");
        res[order[e]].ran = !rc;
    }
    if (!rc && use_clblast) rc = clblast_check(d, &cb);
    ecf8_cl_matmul_get_info(mm, &info); /* lanes are known once a kernel is built */
    for (unsigned r = 0; !rc && r < repeat; r++)
        for (int e = 0; !rc && e < n_eng; e++) {
            if (!warm) flusher_run(d, fl);
            double t0 = bench_now_seconds(), c0 = bench_cpu_seconds();
            rc = engine_enqueue(d, order[e], mm, &cb, m, n, k, bx, by);
            if (!rc && clFinish(d->queue)) rc = bench_file_error(d->path, "clFinish failed");
            times[(size_t)order[e] * repeat + r] = (bench_now_seconds() - t0) * 1e3;
            cpu[(size_t)order[e] * repeat + r] = (bench_cpu_seconds() - c0) * 1e3;
            if (!rc && order[e] == ENG_CLBLAST)
                for (int st = 0; st < 3; st++) stages[(size_t)st * repeat + r] = clblast_stage_ms(&cb, st);
        }
    if (!rc && use_clblast) rc = clblast_check(d, &cb);
    /* Fused speed relative to each baseline, paired within a round (the
     * engines run back to back), median over rounds: robust to background
     * load that drifts between rounds. */
    double paired[ENG_COUNT] = {0}, paired_cpu = 0;
    double *ratio = rc ? NULL : malloc(repeat * sizeof *ratio);
    if (!rc && !ratio) rc = bench_file_error(d->path, "out of memory");
    for (int e = 1; !rc && e < n_eng; e++) {
        for (unsigned r = 0; r < repeat; r++)
            ratio[r] = times[(size_t)order[e] * repeat + r] / times[(size_t)ENG_FUSED * repeat + r];
        paired[order[e]] = bench_median(ratio, repeat);
    }
    if (!rc) {
        for (unsigned r = 0; r < repeat; r++)
            ratio[r] = cpu[(size_t)ENG_UNCOMPRESSED * repeat + r] / cpu[(size_t)ENG_FUSED * repeat + r];
        paired_cpu = bench_median(ratio, repeat);
    }
    free(ratio);
    if (!rc) {
        for (int e = 0; e < n_eng; e++) {
            res[order[e]].median_ms = bench_median(times + (size_t)order[e] * repeat, repeat);
            res[order[e]].min_ms = times[(size_t)order[e] * repeat];
            res[order[e]].cpu_ms = bench_median(cpu + (size_t)order[e] * repeat, repeat);
        }
        for (int st = 0; use_clblast && st < 3; st++)
            res[ENG_CLBLAST].stage_ms[st] = bench_median(stages + (size_t)st * repeat, repeat);
        /* float64 reference over a subset of columns when the product is big. */
        uint64_t work = (uint64_t)m * n * k;
        size_t stride = work > (1ull << 30) ? (size_t)((work + (1ull << 30) - 1) >> 30) : 1;
        size_t cols = (n + stride - 1) / stride, nkb = (k + 127) / 128;
        double *ref = malloc(m * cols * sizeof(double));
        if (!ref) rc = bench_file_error(d->path, "out of memory");
        for (size_t j = 0; !rc && j < n; j += stride) {
            double *wrow = malloc(k * sizeof(double));
            if (!wrow) {
                rc = bench_file_error(d->path, "out of memory");
                break;
            }
            for (size_t c = 0; c < k; c++) {
                double s = 1.0;
                if (b->has_scale) {
                    float f;
                    memcpy(&f, (const uint8_t *)b->scale.payload + 4 * ((j / 128) * nkb + c / 128), 4);
                    s = f;
                }
                wrow[c] = (double)ecf8_element_to_float(t->dtype, b->raw, j * k + c) * s; /* exact */
            }
            for (size_t i = 0; i < m; i++) {
                double acc = 0;
                for (size_t c = 0; c < k; c++) acc += (double)x[i * k + c] * wrow[c];
                ref[i * cols + j / stride] = acc;
            }
            free(wrow);
        }
        for (int e = 0; !rc && e < n_eng; e++)
            res[order[e]].err = max_abs_err(b, x, res[order[e]].y, ref, m, n, stride);
        free(ref);
        int identical = !rc && !memcmp(res[ENG_FUSED].y, res[ENG_UNCOMPRESSED].y, m * n * sizeof(float));
        double flops = 2.0 * (double)m * (double)n * (double)k;
        char cold[128];
        if (warm) snprintf(cold, sizeof cold, "warm (no flush)");
        else snprintf(cold, sizeof cold, "flush: %zu MiB read+written before each timed run", fl->bytes >> 20);
        if (!rc && json) {
            /* Names come from the file: escaped, whatever they hold. */
            printf("{\"tensor\": ");
            bench_json_string(stdout, t->name);
            printf(", \"dtype\": ");
            bench_json_string(stdout, t->dtype_name);
            printf(", \"split\": \"%s\", \"m\": %zu, \"n\": %zu, \"k\": %zu, \"bit_identical\": %s, "
                   "\"repeat\": %u, \"weights\": \"%s\", \"reference_columns\": %zu, \"lanes\": %u, "
                   "\"engines\": {",
                   ecf8_split_name(t->split), m, n, k, identical ? "true" : "false", repeat, cold, cols,
                   info.lanes);
            int first = 1;
            for (int e = 0; e < ENG_COUNT; e++) json_engine(engine_names[e], &res[e], flops, &first);
            printf("}, \"fused_speedup_paired\": {\"vs_uncompressed\": %.3f, \"vs_uncompressed_cpu\": %.3f",
                   paired[ENG_UNCOMPRESSED], paired_cpu);
            if (res[ENG_CLBLAST].ran) printf(", \"vs_clblast\": %.3f", paired[ENG_CLBLAST]);
            printf("}}\n");
        } else if (!rc) {
            printf("%s [%zu x %zu] %s (split %s), m = %zu, %u runs, weights %s\n", t->name, n, k,
                   t->dtype_name, ecf8_split_name(t->split), m, repeat, cold);
            printf("  %-13s %10s %10s %12s %12s %12s\n", "engine", "median ms", "min ms", "GFLOP/s",
                   "weight GB/s", "max abs err");
            for (int e = 0; e < ENG_COUNT; e++)
                if (res[e].ran)
                    printf("  %-13s %10.3f %10.3f %12.2f %12.2f %12.3g\n", engine_names[e], res[e].median_ms,
                           res[e].min_ms, flops / res[e].median_ms * 1e-6,
                           (double)res[e].weight_bytes / res[e].median_ms * 1e-6, res[e].err);
            printf("  fused vs uncompressed: bit-identical %s, speed %.2fx", identical ? "yes" : "NO",
                   res[ENG_UNCOMPRESSED].median_ms / res[ENG_FUSED].median_ms);
            if (res[ENG_CLBLAST].ran)
                printf("; fused vs clblast: %.2fx", res[ENG_CLBLAST].median_ms / res[ENG_FUSED].median_ms);
            printf("\n  paired per round (median): fused vs uncompressed %.2fx", paired[ENG_UNCOMPRESSED]);
            if (res[ENG_CLBLAST].ran) printf(", vs clblast %.2fx", paired[ENG_CLBLAST]);
            printf("; CPU time: fused vs uncompressed %.2fx", paired_cpu);
            printf("\n");
            if (res[ENG_CLBLAST].ran)
                printf("  clblast stages (device time, median): decode %.3f ms, dequantise %.3f ms, %s %.3f ms\n",
                       res[ENG_CLBLAST].stage_ms[0], res[ENG_CLBLAST].stage_ms[1], m == 1 ? "SGEMV" : "SGEMM",
                       res[ENG_CLBLAST].stage_ms[2]);
        }
        fflush(stdout);
    }
    for (int e = 0; e < ENG_COUNT; e++) free(res[e].y);
    free(times);
    free(x);
    if (bx) clReleaseMemObject(bx);
    if (by) clReleaseMemObject(by);
    clblast_free(&cb);
    ecf8_cl_matmul_free(mm);
    return rc;
}

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: ecf8-bench-matmul FILE.ecf8 [--tensor NAME] [--batch M[,M...]] [--shape NxK]\n"
            "                         [--repeat N] [--warm] [--no-clblast] [--json]\n"
            "Times Y = X W^T on three engines: fused (decode inside the matmul), uncompressed\n"
            "(the same kernels reading raw weights) and clblast (decode, dequantise to fp32,\n"
            "CLBlast SGEMV/SGEMM).  Each timed run is preceded by a kernel that reads and\n"
            "writes a buffer of twice the device's reported global-memory cache (at least\n"
            "256 MiB), so weights come from DRAM (--warm skips it).  The median of --repeat\n"
            "runs (default 10) is reported; max_abs_err is against a float64 reference.\n"
            "The engines alternate within each round; fused_speedup_paired is the median\n"
            "over rounds of (baseline ms / fused ms), robust to drifting background load.\n"
            "--shape tiles the tensor to NxK (real byte statistics) and compresses it in\n"
            "memory with the tensor's split and stream layout and no longer codes than the\n"
            "tensor's.  Default tensor: the file's largest 2-D FP8 (with scales) or BF16\n"
            "weight.\n");
    if (!HAVE_CLBLAST) fprintf(f, "This build has no CLBlast: the clblast engine is left out.\n");
}

int main(int argc, char **argv)
{
    bench_prog = "ecf8-bench-matmul";
    argc--, argv++;
    const char *path = NULL, *name = NULL, *batch = "1";
    unsigned long long shape_n = 0, shape_k = 0, repeat = 10;
    int json = 0, warm = 0, use_clblast = HAVE_CLBLAST;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tensor") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            const char *s = argv[++i];
            char *end;
            shape_n = strtoull(s, &end, 10);
            if (end == s || (*end != 'x' && *end != 'X')) return bench_usage_error("bad --shape '%s' (NxK)", s);
            const char *s2 = end + 1;
            shape_k = strtoull(s2, &end, 10);
            if (end == s2 || *end || !shape_n || !shape_k || shape_n > (1u << 20) || shape_k > (1u << 20))
                return bench_usage_error("bad --shape '%s' (NxK)", s);
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            if (!bench_parse_uint(argv[++i], 100000, &repeat) || !repeat)
                return bench_usage_error("bad --repeat '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--warm")) warm = 1;
        else if (!strcmp(argv[i], "--no-clblast")) use_clblast = 0;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bench_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1])
            return bench_unknown_option(argv[i], i + 1 == argc,
                                        (const char *const[]){"--tensor", "--batch", "--shape", "--repeat", NULL});
        else if (!path) path = argv[i];
        else return bench_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!path) {
        bench_usage(stderr);
        return 2;
    }
    size_t batches[32], n_batches = 0;
    for (const char *p = batch; *p;) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || !v || v > (1u << 20) || n_batches == 32 || (*end && *end != ','))
            return bench_usage_error("bad --batch '%s' (M or M,M,...)", batch);
        batches[n_batches++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    ecf8_file *f;
    if (ecf8_file_open(path, &f)) return bench_lib_error(path, "cannot open");
    mm_weight w;
    int rc = find_weight(f, path, name, &w);
    bench_weight b;
    memset(&b, 0, sizeof b);
    uint8_t *raw = NULL;
    if (!rc) {
        size_t i, bytes = (size_t)w.w.source_bytes;
        ecf8_file_find(f, w.w.name, &i);
        raw = malloc(bytes ? bytes : 1);
        if (!raw || ecf8_file_read_tensor(f, i, raw, bytes, 0)) rc = bench_lib_error(path, "cannot read the tensor");
    }
    if (!rc && shape_n) {
        rc = bench_tile(path, &w, raw, shape_n, shape_k, &b);
    } else if (!rc) {
        b.info = w.w;
        b.scale = w.s;
        b.has_scale = w.has_scale;
        b.raw = raw;
        raw = NULL;
    }
    device d = {0};
    flusher fl = {0};
    if (!rc) rc = bench_device_open(&d, path);
    if (!rc && !warm) rc = flusher_init(&d, &fl);
    for (size_t i = 0; !rc && i < n_batches; i++)
        rc = bench_one(&d, &b, batches[i], (unsigned)repeat, warm, &fl, use_clblast, json);
    flusher_free(&fl);
    bench_device_close(&d);
    bench_weight_free(&b);
    free(raw);
    ecf8_file_close(f);
    return rc;
}
