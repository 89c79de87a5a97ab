/* test_cl_matmul.c - fused decode + matmul against the uncompressed kernel
 * (bit for bit) and a float64 reference (within the fp32 accumulation bound),
 * for E4M3, E5M2 and BF16 weights, batch sizes 1, 3, 17 and 64, shapes that
 * are not multiples of 128, every chunk geometry (bands of rows, row
 * segments, partial last band), zero and NaN/Inf weights, a real
 * checkpoint's Linear weights, and the validation errors; weights in stream
 * layout 1 (lane streams) against the uncompressed kernel and layout 0,
 * through the lane-stream kernels and the raw-weight fallback; the lane
 * order (the GPU-shaped kernels, matmul_lanes 1) against a host
 * computation of that order, bit for bit; every scale
 * form of the FP8 families (F32/BF16/F16/E8M0/U8 scalars, per-row scales,
 * 128x128, 32x32 and 1x32 blocks) on real and synthetic weights, and the
 * scale shapes and dtypes refused.  Skips when no OpenCL device exists. */
#include "testutil.h"

#include "ecf8_cl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "testutil_cl.h"

/* ---- host-side reference ------------------------------------------------------ */
/* Checks y against sum_k x*w*s in float64: |y - ref| <= (128 + nkb + 2) u
 * sum |x w s| + tiny, the first-order bound of fp32 accumulation in blocks
 * of 128 (u = 2^-24).  Non-finite references are skipped (NaN/Inf inputs
 * are checked bit for bit against the uncompressed engine instead). */
static void check_reference(ecf8_dtype dt, const uint8_t *w, const float *scale, const float *x,
                            const float *y, size_t m, size_t n, size_t k)
{
    size_t nkb = (k + 127) / 128;
    double gamma = (128.0 + (double)nkb + 2.0) * ldexp(1.0, -24) * 1.01;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (size_t c = 0; c < k; c++) {
                double s = scale ? scale[(j / 128) * nkb + c / 128] : 1.0;
                double t = (double)x[i * k + c] * (double)ecf8_element_to_float(dt, w, j * k + c) * s;
                ref += t;
                mag += fabs(t);
            }
            if (!isfinite(ref)) continue;
            double err = fabs((double)y[i * n + j] - ref), bound = gamma * mag + 1e-35;
            if (!(err <= bound)) {
                print_error("y[%zu,%zu] = %.9g, reference %.17g, error %.3g > bound %.3g\n", i, j,
                            (double)y[i * n + j], ref, err, bound);
                fail();
            }
        }
}

/* The lane order (ecf8_cl.h, ECF8_CL_REDUCTION_LANES) computed on the
 * host with the same fp32 operations: y must equal it bit for bit.
 * scale_at(ctx, r, c) is the scale of element (r, c) (ignored for BF16). */
typedef double (*scale_fn)(const void *ctx, size_t r, size_t c);
static void check_lane_order(ecf8_dtype dt, const uint8_t *w, scale_fn scale_at, const void *ctx,
                             const float *x, const float *y, size_t m, size_t n, size_t k)
{
    const size_t q = 4 / ecf8_dtype_size(dt);
    assert_int_equal(k % 128, 0);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float a[32] = {0};
            for (size_t k0 = 0; k0 < k; k0 += 32 * q)
                for (size_t l = 0; l < 32; l++) {
                    size_t c = k0 + l * q;
                    float p = 0.0f;
                    for (size_t t = 0; t < q; t++)
                        p = fmaf(x[i * k + c + t], ecf8_element_to_float(dt, w, j * k + c + t), p);
                    a[l] = dt == ECF8_DTYPE_BF16 ? a[l] + p : fmaf(p, (float)scale_at(ctx, j, c), a[l]);
                }
            for (size_t h = 16; h > 0; h /= 2)
                for (size_t l = 0; l < h; l++) a[l] = a[l] + a[l + h];
            if (memcmp(&a[0], &y[i * n + j], 4)) {
                print_error("%s %zux%zu m=%zu: y[%zu,%zu] = %.9g, the lane order gives %.9g\n",
                            ecf8_dtype_name(dt), n, k, m, i, j, (double)y[i * n + j], (double)a[0]);
                fail();
            }
        }
}

/* ---- tensors -------------------------------------------------------------------- */
typedef struct weight {
    ecf8_dtype dtype;
    size_t n, k;
    uint8_t *data;
    float *scale;
    ecf8_encoded *enc;
    ecf8_tensor_info info, scale_info;
} weight;

static void weight_encode(weight *w, const ecf8_compress_options *o)
{
    assert_int_equal(ecf8_tensor_encode(w->dtype, w->data, w->n, w->k, o, &w->enc), ECF8_OK);
    assert_int_equal(ecf8_encoded_tensor_info(w->enc, "test.weight", w->dtype, w->data, w->n, w->k, &w->info),
                     ECF8_OK);
    if (w->dtype != ECF8_DTYPE_BF16) {
        size_t nb = (w->n + 127) / 128, kb = (w->k + 127) / 128;
        ecf8_tensor_info *s = &w->scale_info;
        memset(s, 0, sizeof *s);
        s->name = "test.weight_scale_inv";
        s->dtype = ECF8_DTYPE_OTHER;
        s->dtype_name = "F32";
        s->split = ECF8_SPLIT_STORED;
        s->ndim = 2;
        s->shape[0] = nb, s->shape[1] = kb;
        s->n_elements = nb * kb;
        s->source_bytes = s->payload_bytes = nb * kb * 4;
        s->payload = w->scale;
        s->checksum = XXH3_64bits(w->scale, nb * kb * 4);
    }
}

/* Weights drawn like trained ones (concentrated exponents). */
static void weight_init(weight *w, ecf8_dtype dt, size_t n, size_t k, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->dtype = dt, w->n = n, w->k = k;
    size_t es = ecf8_dtype_size(dt), count = n * k;
    w->data = malloc(count * es + 1);
    assert_non_null(w->data);
    uint64_t s = seed | 1;
    if (dt == ECF8_DTYPE_F8_E4M3) {
        tu_fill_weights_e4m3(w->data, count, seed);
    } else if (dt == ECF8_DTYPE_F8_E5M2) {
        for (size_t i = 0; i < count; i++) {
            uint64_t r = tu_rand(&s);
            int e = 15 - (int)(__builtin_ctzll(r | (1ull << 12)) / 2); /* geometric */
            if (e < 0) e = 0;
            w->data[i] = (uint8_t)((r >> 63) << 7 | (unsigned)e << 2 | ((r >> 40) & 3));
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t r = tu_rand(&s);
            unsigned e = 124 - (unsigned)(__builtin_ctzll(r | (1ull << 10)) / 2);
            unsigned h = (unsigned)(r >> 63) << 15 | e << 7 | (unsigned)((r >> 32) & 0x7F);
            w->data[2 * i] = (uint8_t)h, w->data[2 * i + 1] = (uint8_t)(h >> 8);
        }
    }
    size_t nb = (n + 127) / 128, kb = (k + 127) / 128;
    w->scale = malloc(nb * kb * sizeof(float));
    assert_non_null(w->scale);
    for (size_t i = 0; i < nb * kb; i++) w->scale[i] = (float)ldexp(1.0 + (double)(tu_rand(&s) % 1000) / 1000.0, -9);
}

static void weight_free(weight *w)
{
    ecf8_encoded_free(w->enc);
    free(w->data);
    free(w->scale);
}

static const ecf8_tensor_info *scale_of(const weight *w)
{
    return w->dtype == ECF8_DTYPE_BF16 ? NULL : &w->scale_info;
}

/* The weight's own F32 128x128 scale of element (r, c). */
static double weight_scale_at(const void *ctx, size_t r, size_t c)
{
    const weight *w = ctx;
    return w->scale[(r / 128) * ((w->k + 127) / 128) + c / 128];
}

/* t = w's info with one bit of its coded stream flipped, in a copy of the
 * payload that the caller frees (the return value). */
static uint8_t *flip_coded_bit(const weight *w, ecf8_tensor_info *t)
{
    size_t pb;
    const uint8_t *payload = ecf8_encoded_payload(w->enc, &pb);
    uint8_t *copy = malloc(pb);
    assert_non_null(copy);
    memcpy(copy, payload, pb);
    *t = w->info;
    const uint8_t *coded = t->stream.coded;
    assert_true(coded >= payload && coded + t->stream.coded_bytes <= payload + pb);
    t->payload = copy;
    t->stream.coded = copy + (coded - payload);
    ((uint8_t *)t->stream.coded)[t->stream.coded_bytes / 2] ^= 0x10;
    return copy;
}

/* ---- running ----------------------------------------------------------------------- */
static cl_mem buffer(size_t bytes, const void *data)
{
    cl_int err;
    cl_mem b = clCreateBuffer(g_ctx, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)data, &err);
    assert_int_equal(err, CL_SUCCESS);
    return b;
}

/* Y from one engine; x is fp32 unless xbf16 (then bf16 bits in x16). */
static void run(ecf8_cl_matmul *mm, ecf8_cl_engine e, const void *x, size_t xbytes, int xbf16,
                size_t m, size_t n, float *y)
{
    cl_mem bx = buffer(xbytes, x), by = buffer(m * n * 4, NULL);
    int st = ecf8_cl_enqueue_matmul(mm, e, g_queue, m, bx, 0, xbf16 ? ECF8_CL_INPUT_BF16 : 0, by, 0,
                                    0, NULL, NULL);
    if (st) print_error("matmul: %s: %s\n", ecf8_status_string(st), ecf8_last_error());
    assert_int_equal(st, ECF8_OK);
    assert_int_equal(clEnqueueReadBuffer(g_queue, by, CL_TRUE, 0, m * n * 4, y, 0, NULL, NULL),
                     CL_SUCCESS);
    clReleaseMemObject(bx);
    clReleaseMemObject(by);
}

static float *make_x(size_t m, size_t k, uint64_t seed)
{
    float *x = malloc(m * k * sizeof *x);
    assert_non_null(x);
    uint64_t s = seed | 1;
    for (size_t i = 0; i < m * k; i++)
        x[i] = (float)((double)(int64_t)(tu_rand(&s) >> 40) / (double)(1 << 23)); /* [-1, 1) */
    return x;
}

/* The tuning check_weight creates its matmuls with. */
static ecf8_cl_tuning g_tuning = {.struct_size = sizeof g_tuning};

/* Runs every batch size on w with both engines: bit-identical, and within
 * the bound of the float64 reference when `reference`. */
static void check_weight(weight *w, const size_t *ms, size_t n_ms, int reference)
{
    ecf8_cl_matmul *mm = NULL;
    int st = ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &w->info, scale_of(w), 0, &g_tuning, &mm);
    if (st) print_error("create: %s: %s\n", ecf8_status_string(st), ecf8_last_error());
    assert_int_equal(st, ECF8_OK);
    for (size_t t = 0; t < n_ms; t++) {
        size_t m = ms[t];
        float *x = make_x(m, w->k, 1000 + m), *yf = malloc(m * w->n * 4), *yu = malloc(m * w->n * 4);
        assert_non_null(yf);
        assert_non_null(yu);
        run(mm, ECF8_CL_ENGINE_FUSED, x, m * w->k * 4, 0, m, w->n, yf);
        run(mm, ECF8_CL_ENGINE_UNCOMPRESSED, x, m * w->k * 4, 0, m, w->n, yu);
        if (memcmp(yf, yu, m * w->n * 4)) {
            for (size_t i = 0; i < m * w->n; i++)
                if (memcmp(&yf[i], &yu[i], 4)) {
                    print_error("%s %zux%zu split %s m=%zu: y[%zu] fused %.9g != uncompressed %.9g\n",
                                ecf8_dtype_name(w->dtype), w->n, w->k,
                                ecf8_split_name(w->info.split), m, i, (double)yf[i], (double)yu[i]);
                    break;
                }
            fail();
        }
        if (reference) check_reference(w->dtype, w->data, scale_of(w) ? w->scale : NULL, x, yf, m, w->n, w->k);
        if (ecf8_cl_matmul_reduction(mm) == ECF8_CL_REDUCTION_LANES)
            check_lane_order(w->dtype, w->data, weight_scale_at, w, x, yf, m, w->n, w->k);
        free(x);
        free(yf);
        free(yu);
    }
    if (g_tuning.matmul_lanes == 1) { /* the tuning reached the programs */
        ecf8_cl_matmul_info info;
        assert_int_equal(ecf8_cl_matmul_get_info(mm, &info), ECF8_OK);
        assert_int_equal(info.lanes, 1);
    }
    ecf8_cl_matmul_free(mm);
}

static const size_t all_ms[] = {1, 3, 17, 64};

/* The first `count` of these shapes: (n, k) not multiples of 128; 4500
 * columns are cut into row segments. */
static void shapes_for(ecf8_dtype dt, ecf8_split split, size_t count)
{
    static const size_t shapes[][2] = {{200, 300}, {131, 4500}, {5, 70}, {300, 129}};
    for (size_t i = 0; i < count && i < sizeof shapes / sizeof shapes[0]; i++) {
        weight w;
        weight_init(&w, dt, shapes[i][0], shapes[i][1], 7 + i);
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.split = split;
        weight_encode(&w, &o);
        if (split != ECF8_SPLIT_AUTO && w.info.split != ECF8_SPLIT_STORED) assert_int_equal(w.info.split, split);
        check_weight(&w, all_ms, 4, 1);
        weight_free(&w);
    }
}

static void test_e4m3(void **state)
{
    (void)state;
    NEED_DEVICE();
    shapes_for(ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_BYTE, 4);
    shapes_for(ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_EXPONENT, 2);
}

static void test_e5m2(void **state)
{
    (void)state;
    NEED_DEVICE();
    shapes_for(ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_AUTO, 4);
}

static void test_bf16(void **state)
{
    (void)state;
    NEED_DEVICE();
    shapes_for(ECF8_DTYPE_BF16, ECF8_SPLIT_EXPONENT, 4);
    shapes_for(ECF8_DTYPE_BF16, ECF8_SPLIT_BYTE, 2);
}

/* Small chunks: bands of several rows, a partial last band, and segments
 * that are 64- but not 128-aligned. */
static void test_chunk_geometries(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const struct { size_t n, k; uint32_t chunk; } cases[] = {
        {77, 100, 256},   /* 2 rows per chunk, last band partial */
        {40, 9, 64},      /* 7 rows per chunk */
        {19, 300, 128},   /* segments of 128 columns (3 per row) */
        {33, 300, 200},   /* segments of 192: 64- but not 128-aligned */
        {50, 900, 200},   /* 5 segments of 192 */
        {3, 20000, 4096}, /* long rows: 5 segments of 4032 */
    };
    const ecf8_dtype dts[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_BF16};
    for (size_t d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            weight w;
            weight_init(&w, dts[d], cases[i].n, cases[i].k, 31 + i);
            ecf8_compress_options o;
            ecf8_compress_options_init(&o);
            o.chunk_elements = cases[i].chunk;
            weight_encode(&w, &o);
            assert_int_not_equal(w.info.split, ECF8_SPLIT_STORED);
            const size_t ms[] = {1, 3, 17};
            check_weight(&w, ms, 3, 1);
            weight_free(&w);
        }
}

/* The portable one-lane kernels (the GPU path) on every shape. */
static void test_one_lane(void **state)
{
    (void)state;
    NEED_DEVICE();
    g_tuning.matmul_lanes = 1;
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 150, 4500, 99);
    weight_encode(&w, NULL);
    check_weight(&w, all_ms, 4, 1);
    weight_free(&w);
    weight_init(&w, ECF8_DTYPE_F8_E5M2, 77, 100, 98);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.chunk_elements = 256;
    weight_encode(&w, &o);
    check_weight(&w, all_ms, 4, 1);
    weight_free(&w);
    g_tuning.matmul_lanes = 0;
}

/* Batches larger than the GEMM kernel's chunk of X rows (64): W is decoded
 * once per chunk, the result does not change. */
static void test_large_batch(void **state)
{
    (void)state;
    NEED_DEVICE();
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 70, 300, 13);
    weight_encode(&w, NULL);
    const size_t ms[] = {130};
    check_weight(&w, ms, 1, 1);
    weight_free(&w);
}

/* Y of the fused engine for w coded with options o (weight re-encoded). */
static void fused_y(weight *w, const ecf8_compress_options *o, const float *x, size_t m, float *y,
                    unsigned *lanes)
{
    ecf8_encoded_free(w->enc);
    w->enc = NULL;
    weight_encode(w, o);
    ecf8_cl_matmul *mm = NULL;
    int st = ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &w->info, scale_of(w),
                                      ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED), &g_tuning, &mm);
    if (st) print_error("create: %s: %s\n", ecf8_status_string(st), ecf8_last_error());
    assert_int_equal(st, ECF8_OK);
    run(mm, ECF8_CL_ENGINE_FUSED, x, m * w->k * 4, 0, m, w->n, y);
    ecf8_cl_matmul_info info;
    assert_int_equal(ecf8_cl_matmul_get_info(mm, &info), ECF8_OK);
    if (lanes) *lanes = info.lanes;
    /* Fused only: W stays coded on the device, also where the fused engine
     * runs the uncompressed kernel (decoded per call into scratch). */
    assert_int_equal(info.uncompressed_bytes, 0);
    ecf8_cl_matmul_free(mm);
}

/* The weights of the layout-1 tests: each FP8 dtype in both splits, BF16. */
static const struct { ecf8_dtype dt; ecf8_split split; } lane_kinds[] = {
    {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_BYTE},  {ECF8_DTYPE_F8_E4M3, ECF8_SPLIT_EXPONENT},
    {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_BYTE},  {ECF8_DTYPE_F8_E5M2, ECF8_SPLIT_EXPONENT},
    {ECF8_DTYPE_BF16, ECF8_SPLIT_EXPONENT}, {ECF8_DTYPE_BF16, ECF8_SPLIT_BYTE},
};
#define N_LANE_KINDS (sizeof lane_kinds / sizeof lane_kinds[0])

/* w (n x k, drawn from seed) coded in stream layout 1 with kind d's split
 * and chunks of `chunk` elements (0: the default); o receives the options. */
static void lane_weight(weight *w, size_t d, size_t n, size_t k, uint32_t chunk, uint64_t seed,
                        ecf8_compress_options *o)
{
    weight_init(w, lane_kinds[d].dt, n, k, seed);
    ecf8_compress_options_init(o);
    o->split = lane_kinds[d].split;
    if (chunk) o->chunk_elements = chunk;
    o->stream_layout = ECF8_STREAM_LAYOUT_LANES;
    weight_encode(w, o);
    assert_int_equal(w->info.split, lane_kinds[d].split);
    assert_int_equal(w->info.stream.stream_layout, 1);
}

/* Stream layout 1 (lane streams): the fused engine gives Y bit-identical to
 * the uncompressed kernel and to the layout-0 fused kernel, for M = 1, 2, 4
 * and 64, both FP8 dtypes and both splits, BF16, bands of rows (a partial
 * last band), row segments of 128-multiples (the lane-stream kernels: 8 or
 * 16 lanes on a CPU device) and shapes they do not take (K % 128 != 0,
 * segments of 4032: the raw-weight fallback), and the one-lane tuning (the
 * GPU path, also the fallback). */
static void test_lane_streams(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const struct { size_t n, k; uint32_t chunk; int kernel; } cases[] = {
        {200, 256, 0, 1},     /* 32-row bands, partial last band */
        {131, 4096, 0, 1},    /* 2-row bands, odd N */
        {70, 1024, 1000, 1},  /* one-row chunks (target under a row) */
        {9, 16384, 0, 1},     /* row segments of 8192 */
        {5, 640, 256, 1},     /* segments of 256, the last of 128 */
        {33, 384, 200, 0},    /* segments of 192: fallback */
        {33, 300, 0, 0},      /* K % 128 != 0: fallback */
        {3, 20000, 4096, 0},  /* segments of 4032: fallback */
    };
    static const size_t ms[] = {1, 2, 4, 64};
    for (size_t d = 0; d < N_LANE_KINDS; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            weight w;
            ecf8_compress_options o;
            lane_weight(&w, d, cases[c].n, cases[c].k, cases[c].chunk, 41 + c, &o);
            int whole = w.info.stream.cols % 128 == 0 &&
                        (w.info.stream.chunk_cols == w.info.stream.cols ||
                         w.info.stream.chunk_cols % 128 == 0);
            if (whole != cases[c].kernel) print_error("%zux%zu chunk %u: cr %llu cc %llu\n", w.n, w.k, cases[c].chunk, (unsigned long long)w.info.stream.chunk_rows, (unsigned long long)w.info.stream.chunk_cols);
            assert_int_equal(whole, cases[c].kernel);
            /* layout 1: fused == uncompressed (and the float64 bound) */
            check_weight(&w, ms, cases[c].n * cases[c].k > 200000 ? 3 : 4, 1);
            for (size_t t = 0; t < 4; t++) {
                size_t m = ms[t];
                float *x = make_x(m, w.k, 500 + m), *y1 = malloc(m * w.n * 4), *y0 = malloc(m * w.n * 4);
                unsigned lanes1 = 0;
                fused_y(&w, &o, x, m, y1, &lanes1);
                if (whole && g_tuning.matmul_lanes != 1) assert_true(lanes1 == 8 || lanes1 == 16);
                ecf8_compress_options o0 = o;
                o0.stream_layout = ECF8_STREAM_LAYOUT_SERIAL;
                fused_y(&w, &o0, x, m, y0, NULL);
                if (memcmp(y1, y0, m * w.n * 4)) {
                    print_error("%s %zux%zu split %s m=%zu: layout 1 != layout 0\n",
                                ecf8_dtype_name(w.dtype), w.n, w.k, ecf8_split_name(w.info.split), m);
                    fail();
                }
                free(x), free(y1), free(y0);
            }
            weight_free(&w);
        }
}

/* The longest codes the encoder writes (13 bits, a geometric symbol
 * distribution): four of them still fit the lane-stream kernels' one
 * 64-bit load per word.  (Files with 15-bit codes, which other encoders
 * may write, take ECF8_MM_SRELOAD, a second load: built by test_cl_kernels,
 * not run here.) */
static void test_lane_streams_long_codes(void **state)
{
    (void)state;
    NEED_DEVICE();
    weight w;
    size_t n = 64, k = 4096, count = n * k;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, n, k, 17);
    size_t at = 0;
    for (unsigned sym = 0; at < count; sym++) {
        size_t c = sym < 17 ? count >> (sym + 1) : 1;
        for (size_t i = 0; i < c && at < count; i++) w.data[at++] = (uint8_t)(0x30 + sym);
    }
    uint64_t r = 9;
    for (size_t i = count - 1; i > 0; i--) { /* shuffle */
        size_t j = (size_t)(tu_rand(&r) % (i + 1));
        uint8_t t = w.data[i];
        w.data[i] = w.data[j], w.data[j] = t;
    }
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.split = ECF8_SPLIT_BYTE;
    o.max_code_bits = 13;
    o.stream_layout = ECF8_STREAM_LAYOUT_LANES;
    weight_encode(&w, &o);
    assert_int_equal(w.info.stream.code_bits, 13);
    const size_t ms[] = {1, 4, 64};
    check_weight(&w, ms, 3, 1);
    weight_free(&w);
}

static void test_lane_streams_one_lane(void **state)
{
    g_tuning.matmul_lanes = 1;
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 131, 4096, 3);
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = ECF8_STREAM_LAYOUT_LANES;
    weight_encode(&w, &o);
    (void)state;
    check_weight(&w, all_ms, 4, 0);
    weight_free(&w);
    g_tuning.matmul_lanes = 0;
}

/* BF16 X is converted on load: same result as the fp32 X it rounds to. */
static void test_bf16_input(void **state)
{
    (void)state;
    NEED_DEVICE();
    /* the serial order (layout 0, K not a multiple of 128), and the lane
     * order (layout 1, GPU-shaped kernels) */
    for (int lanes = 0; lanes <= 1; lanes++) {
        weight w;
        weight_init(&w, ECF8_DTYPE_F8_E4M3, 96, lanes ? 256 : 260, 5);
        ecf8_compress_options o;
        ecf8_compress_options_init(&o);
        o.stream_layout = lanes ? ECF8_STREAM_LAYOUT_LANES : ECF8_STREAM_LAYOUT_SERIAL;
        weight_encode(&w, &o);
        g_tuning.matmul_lanes = lanes ? 1 : 0;
        ecf8_cl_matmul *mm;
        assert_int_equal(ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &w.info, &w.scale_info, 0,
                                                  &g_tuning, &mm),
                         ECF8_OK);
        assert_int_equal(ecf8_cl_matmul_reduction(mm),
                         lanes ? ECF8_CL_REDUCTION_LANES : ECF8_CL_REDUCTION_SERIAL);
        for (size_t t = 0; t < 4; t++) {
            size_t m = all_ms[t];
            float *x = make_x(m, w.k, 77);
            uint16_t *xh = malloc(m * w.k * 2);
            for (size_t i = 0; i < m * w.k; i++) {
                uint32_t b;
                memcpy(&b, &x[i], 4);
                xh[i] = (uint16_t)(b >> 16);
                b &= 0xFFFF0000u;
                memcpy(&x[i], &b, 4);
            }
            float *y1 = malloc(m * w.n * 4), *y2 = malloc(m * w.n * 4), *y3 = malloc(m * w.n * 4);
            run(mm, ECF8_CL_ENGINE_FUSED, xh, m * w.k * 2, 1, m, w.n, y1);
            run(mm, ECF8_CL_ENGINE_FUSED, x, m * w.k * 4, 0, m, w.n, y2);
            run(mm, ECF8_CL_ENGINE_UNCOMPRESSED, xh, m * w.k * 2, 1, m, w.n, y3);
            assert_memory_equal(y1, y2, m * w.n * 4);
            assert_memory_equal(y1, y3, m * w.n * 4);
            if (lanes) check_lane_order(w.dtype, w.data, weight_scale_at, &w, x, y1, m, w.n, w.k);
            free(x), free(xh), free(y1), free(y2), free(y3);
        }
        ecf8_cl_matmul_free(mm);
        weight_free(&w);
    }
    g_tuning.matmul_lanes = 0;
}

/* The path prediction: the fused kernel for M <= 4, and for FP8 byte
 * splits at any M; decode + GEMM for M > 4 otherwise; serial-order objects
 * always fused. */
static void test_path_prediction(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const struct { size_t kind; int decode_at_5; } cases[] = {
        {0, 0}, {1, 1}, {2, 0}, {3, 1}, {4, 1}, {5, 1}}; /* lane_kinds */
    for (int lanes = 0; lanes <= 1; lanes++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            weight w;
            ecf8_compress_options o;
            lane_weight(&w, cases[c].kind, 64, 256, 0, 7, &o);
            g_tuning.matmul_lanes = lanes ? 1 : 0;
            ecf8_cl_matmul *mm = NULL;
            assert_int_equal(ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &w.info, scale_of(&w),
                                                      0, &g_tuning, &mm),
                             ECF8_OK);
            ecf8_cl_matmul_path decode_at_5 =
                lanes && cases[c].decode_at_5 ? ECF8_CL_PATH_DECODE_GEMM : ECF8_CL_PATH_FUSED;
            assert_int_equal(ecf8_cl_matmul_predict(mm, 1), ECF8_CL_PATH_FUSED);
            assert_int_equal(ecf8_cl_matmul_predict(mm, 4), ECF8_CL_PATH_FUSED);
            assert_int_equal(ecf8_cl_matmul_predict(mm, 5), decode_at_5);
            assert_int_equal(ecf8_cl_matmul_predict(mm, 64), decode_at_5);
            ecf8_cl_matmul_free(mm);
            weight_free(&w);
        }
    g_tuning.matmul_lanes = 0;
    assert_int_equal(ecf8_cl_matmul_predict(NULL, 64), ECF8_CL_PATH_FUSED);
}

/* The lane order: the GPU-shaped kernels, forced on this device by the
 * matmul_lanes 1 tuning.  Both engines equal the host computation of the
 * order bit for bit (check_weight), for both FP8 dtypes in both splits and
 * BF16, bands of rows (a partial last band), one-row chunks and row
 * segments of 128-column multiples, M = 1, 2, 5 and 64 (passes of 4 rows
 * of X; the predicted path); a fused-only object keeps W coded and gives
 * the same Y on either path (fused kernel, or decode + the raw twin). */
static void test_lane_order(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const struct { size_t n, k; uint32_t chunk; } cases[] = {
        {200, 256, 0},    /* 32-row bands, partial last band */
        {131, 4096, 0},   /* 2-row bands, odd N */
        {70, 1024, 1000}, /* one-row chunks */
        {9, 16384, 0},    /* row segments of 8192 */
        {5, 640, 256},    /* segments of 256, the last of 128 */
    };
    static const size_t ms[] = {1, 2, 5, 64};
    g_tuning.matmul_lanes = 1;
    for (size_t d = 0; d < N_LANE_KINDS; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            weight w;
            ecf8_compress_options o;
            lane_weight(&w, d, cases[c].n, cases[c].k, cases[c].chunk, 141 + c, &o);
            size_t n_ms = cases[c].n * cases[c].k > 200000 ? 3 : 4;
            check_weight(&w, ms, n_ms, 1);
            /* fused only, M = 1 and 5, each path forced */
            for (size_t t = 0; t < n_ms; t += 2)
                for (unsigned path = ECF8_CL_PATH_FUSED; path <= ECF8_CL_PATH_DECODE_GEMM; path++) {
                    size_t m = ms[t];
                    float *x = make_x(m, w.k, 1000 + m), *y = malloc(m * w.n * 4);
                    g_tuning.matmul_path = path;
                    fused_y(&w, &o, x, m, y, NULL);
                    g_tuning.matmul_path = 0;
                    check_lane_order(w.dtype, w.data, weight_scale_at, &w, x, y, m, w.n, w.k);
                    free(x), free(y);
                }
            weight_free(&w);
        }
    /* A fused-only object checks W through its own decode kernel: a wrong
     * checksum, or a flipped bit in the lane streams, is refused at create. */
    weight w;
    ecf8_compress_options o;
    lane_weight(&w, 0, 64, 256, 0, 5, &o);
    const unsigned fused = ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED);
    ecf8_cl_matmul *mm = NULL;
    ecf8_tensor_info t = w.info;
    t.checksum ^= 1;
    assert_int_equal(ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &t, &w.scale_info, fused,
                                              &g_tuning, &mm),
                     ECF8_ERR_CHECKSUM);
    assert_null(mm);
    assert_non_null(strstr(ecf8_last_error(), "'test.weight': checksum mismatch"));
    uint8_t *copy = flip_coded_bit(&w, &t);
    int st = ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &t, &w.scale_info, fused, &g_tuning,
                                      &mm);
    assert_true(st == ECF8_ERR_CHECKSUM || st == ECF8_ERR_CORRUPT);
    assert_null(mm);
    free(copy);
    weight_free(&w);
    g_tuning.matmul_lanes = 0;
}

/* All-zero weights (a one-symbol code: no bits per element) give exact 0. */
static void test_zero_weights(void **state)
{
    (void)state;
    NEED_DEVICE();
    const ecf8_dtype dts[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++) {
        weight w;
        weight_init(&w, dts[d], 130, 200, 3);
        memset(w.data, 0, 130 * 200 * ecf8_dtype_size(dts[d]));
        weight_encode(&w, NULL);
        assert_int_not_equal(w.info.split, ECF8_SPLIT_STORED);
        check_weight(&w, all_ms, 4, 1);
        ecf8_cl_matmul *mm;
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, scale_of(&w), 0, &mm), ECF8_OK);
        float *x = make_x(3, 200, 1), y[3 * 130];
        run(mm, ECF8_CL_ENGINE_FUSED, x, 3 * 200 * 4, 0, 3, 130, y);
        for (size_t i = 0; i < 3 * 130; i++) assert_true(y[i] == 0.0f);
        free(x);
        ecf8_cl_matmul_free(mm);
        weight_free(&w);
    }
}

/* Every element code, NaN and Inf included: both engines agree bit for bit
 * (NaN payloads too), finite rows match the reference. */
static void test_special_values(void **state)
{
    (void)state;
    NEED_DEVICE();
    const ecf8_dtype dts[] = {ECF8_DTYPE_F8_E4M3, ECF8_DTYPE_F8_E5M2, ECF8_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++) {
        weight w;
        size_t n = 70, k = 300;
        weight_init(&w, dts[d], n, k, 11);
        uint64_t s = 5;
        for (size_t r = 0; r < n; r++) {
            if (r % 3 == 0) continue; /* keep some rows finite */
            for (size_t c = 0; c < k; c++) {
                size_t i = r * k + c;
                if (dts[d] == ECF8_DTYPE_BF16) {
                    static const uint16_t special[] = {0x7F80, 0xFF80, 0x7FC0, 0xFF81, 0x0001, 0x8000};
                    if (tu_rand(&s) % 8 == 0) {
                        uint16_t h = special[tu_rand(&s) % 6];
                        w.data[2 * i] = (uint8_t)h, w.data[2 * i + 1] = (uint8_t)(h >> 8);
                    }
                } else {
                    w.data[i] = (uint8_t)((r * 131 + c) & 0xFF); /* every code */
                }
            }
        }
        weight_encode(&w, NULL);
        check_weight(&w, all_ms, 4, 1);
        weight_free(&w);
    }
}

/* Linear weights of a real checkpoint slice, through the .ecf8 container. */
static void real_file(const char *fixture, unsigned stream_layout)
{
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/slice.ecf8", dir);
    ecf8_compress_options co;
    ecf8_compress_options_init(&co);
    co.stream_layout = stream_layout;
    assert_int_equal(ecf8_compress_path(tu_data_path(fixture), out, &co), ECF8_OK);
    ecf8_file *f;
    assert_int_equal(ecf8_file_open(out, &f), ECF8_OK);
    int tested = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t, sc;
        assert_int_equal(ecf8_file_tensor(f, i, &t), ECF8_OK);
        if (t.split != ECF8_SPLIT_STORED) assert_int_equal(t.stream.stream_layout, stream_layout);
        size_t len = strlen(t.name);
        if (t.ndim != 2 || len < 7 || strcmp(t.name + len - 7, ".weight") ||
            (t.dtype != ECF8_DTYPE_F8_E4M3 && t.dtype != ECF8_DTYPE_F8_E5M2 && t.dtype != ECF8_DTYPE_BF16))
            continue;
        if (strstr(t.name, "embeddings")) continue;
        const ecf8_tensor_info *scp = NULL;
        float *scale = NULL;
        if (t.dtype != ECF8_DTYPE_BF16) {
            size_t si;
            assert_int_equal(ecf8_file_find_scale(f, i, &si), ECF8_OK);
            assert_int_equal(ecf8_file_tensor(f, si, &sc), ECF8_OK);
            scp = &sc;
            scale = (float *)sc.payload;
        }
        size_t n = t.shape[0], k = t.shape[1], es = ecf8_dtype_size(t.dtype);
        uint8_t *wdata = malloc(n * k * es);
        assert_int_equal(ecf8_file_read_tensor(f, i, wdata, n * k * es, 0), ECF8_OK);
        ecf8_cl_matmul *mm;
        int st = ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, scp, 0, &mm);
        if (st) print_error("%s: %s\n", t.name, ecf8_last_error());
        assert_int_equal(st, ECF8_OK);
        const size_t ms[] = {1, 2, 4, 17, 64};
        for (size_t q = 0; q < (stream_layout ? 5u : 2u); q++) {
            size_t m = ms[q];
            float *x = make_x(m, k, 3 + q), *yf = malloc(m * n * 4), *yu = malloc(m * n * 4);
            run(mm, ECF8_CL_ENGINE_FUSED, x, m * k * 4, 0, m, n, yf);
            run(mm, ECF8_CL_ENGINE_UNCOMPRESSED, x, m * k * 4, 0, m, n, yu);
            assert_memory_equal(yf, yu, m * n * 4);
            check_reference(t.dtype, wdata, scale, x, yf, m, n, k);
            free(x), free(yf), free(yu);
        }
        ecf8_cl_matmul_free(mm);
        free(wdata);
        tested++;
    }
    assert_true(tested > 0);
    ecf8_file_close(f);
}

static void test_real_checkpoint(void **state)
{
    (void)state;
    NEED_DEVICE();
    for (unsigned layout = 0; layout <= 1; layout++) {
        real_file("minilm-slice-e4m3.safetensors", layout);
        real_file("minilm-slice-e5m2.safetensors", layout);
        real_file("minilm-slice-bf16.safetensors", layout);
    }
}

/* Dequantize gives w * scale rounded once. */
static void test_dequantize(void **state)
{
    (void)state;
    NEED_DEVICE();
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E5M2, 140, 150, 21);
    weight_encode(&w, NULL);
    ecf8_cl_matmul *mm;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &w.scale_info, 0, &mm), ECF8_OK);
    cl_mem raw = buffer(140 * 150, w.data), out = buffer(140 * 150 * 4, NULL);
    assert_int_equal(ecf8_cl_enqueue_dequantize(mm, g_queue, raw, 0, out, 0, 0, NULL, NULL), ECF8_OK);
    float *y = malloc(140 * 150 * 4);
    assert_int_equal(clEnqueueReadBuffer(g_queue, out, CL_TRUE, 0, 140 * 150 * 4, y, 0, NULL, NULL), CL_SUCCESS);
    for (size_t r = 0; r < 140; r++)
        for (size_t c = 0; c < 150; c++) {
            float want = ecf8_element_to_float(w.dtype, w.data, r * 150 + c) * w.scale[(r / 128) * 2 + c / 128];
            assert_memory_equal(&y[r * 150 + c], &want, 4);
        }
    free(y);
    clReleaseMemObject(raw);
    clReleaseMemObject(out);
    ecf8_cl_matmul_free(mm);
    weight_free(&w);
}

/* ---- scale forms (issue 14) ------------------------------------------------------ */
/* The scale dtypes and layouts of the FP8 families (ecf8.h's table): each
 * built as a tensor of its own from exact values, the weight multiplied
 * with both engines (bit for bit, both stream layouts, M = 1 and 64) and
 * checked against a float64 reference that applies the family's
 * convention (w = q * scale) straight from the stored scale bytes. */
enum { SD_F32, SD_BF16, SD_F16, SD_E8M0, SD_U8, SD_COUNT };
static const char *const sd_names[SD_COUNT] = {"F32", "BF16", "F16", "F8_E8M0", "U8"};
static const unsigned sd_size[SD_COUNT] = {4, 2, 2, 1, 1};
enum { SL_SCALAR0, SL_SCALAR1, SL_ROW1, SL_ROW2, SL_B128, SL_B32, SL_MX, SL_COUNT };
static const char *const sl_names[SL_COUNT] = {"[]", "[1]", "[N]", "[N,1]", "128x128", "32x32", "1x32"};

typedef struct scale_form {
    int sd, sl;
    size_t k; /* columns of the W it scales */
    unsigned ndim;
    uint64_t shape[2];
    size_t count;
    uint8_t *bytes;      /* stored elements */
    ecf8_encoded *enc;   /* BF16/F16/E8M0/U8 coded by ecf8 (coded = 1) */
    ecf8_tensor_info info;
} scale_form;

/* The scale value of stored element i, decoded here independently of the
 * library (float64; E8M0: 2^(e - 127), 255 NaN). */
static double sf_value(const scale_form *f, size_t i)
{
    const uint8_t *b = f->bytes;
    switch (f->sd) {
    case SD_F32: {
        float v;
        memcpy(&v, b + 4 * i, 4);
        return v;
    }
    case SD_BF16: {
        uint32_t u = (uint32_t)(b[2 * i] | b[2 * i + 1] << 8) << 16;
        float v;
        memcpy(&v, &u, 4);
        return v;
    }
    case SD_F16: {
        unsigned h = b[2 * i] | b[2 * i + 1] << 8, e = h >> 10 & 31, m = h & 1023;
        double v = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        return h >> 15 ? -v : v;
    }
    default:
        return b[i] == 255 ? NAN : ldexp(1.0, (int)b[i] - 127);
    }
}

/* Scale of weight element (r, c) under the form (row/column block). */
static double sf_at(const scale_form *f, size_t r, size_t c, size_t k)
{
    switch (f->sl) {
    case SL_SCALAR0: case SL_SCALAR1: return sf_value(f, 0);
    case SL_ROW1: case SL_ROW2: return sf_value(f, r);
    case SL_B128: return sf_value(f, (r / 128) * ((k + 127) / 128) + c / 128);
    case SL_B32: return sf_value(f, (r / 32) * ((k + 31) / 32) + c / 32);
    default: return sf_value(f, r * ((k + 31) / 32) + c / 32);
    }
}

/* sf_at for check_lane_order (ctx: the form; k fixed by the form's W). */
static double form_scale_at(const void *ctx, size_t r, size_t c)
{
    const scale_form *f = ctx;
    return sf_at(f, r, c, f->k);
}

/* A scale tensor of dtype sd and layout sl for W [n, k], values in
 * [2^-12, 2^-6) (finite, exact in every dtype); coded: BF16/F16/E8M0/U8
 * coded by ecf8 where it compresses. */
static void sf_make(scale_form *f, int sd, int sl, size_t n, size_t k, uint64_t seed, int coded)
{
    memset(f, 0, sizeof *f);
    f->sd = sd, f->sl = sl, f->k = k;
    switch (sl) {
    case SL_SCALAR0: f->ndim = 0; break;
    case SL_SCALAR1: f->ndim = 1, f->shape[0] = 1; break;
    case SL_ROW1: f->ndim = 1, f->shape[0] = n; break;
    case SL_ROW2: f->ndim = 2, f->shape[0] = n, f->shape[1] = 1; break;
    case SL_B128: f->ndim = 2, f->shape[0] = (n + 127) / 128, f->shape[1] = (k + 127) / 128; break;
    case SL_B32: f->ndim = 2, f->shape[0] = (n + 31) / 32, f->shape[1] = (k + 31) / 32; break;
    default: f->ndim = 2, f->shape[0] = n, f->shape[1] = (k + 31) / 32; break;
    }
    f->count = 1;
    for (unsigned i = 0; i < f->ndim; i++) f->count *= f->shape[i];
    size_t es = sd_size[sd];
    f->bytes = malloc(f->count * es);
    assert_non_null(f->bytes);
    uint64_t s = seed | 1;
    for (size_t i = 0; i < f->count; i++) {
        uint64_t r = tu_rand(&s);
        unsigned e = 115 + (unsigned)(r % 6); /* 2^-12 .. 2^-7 */
        if (sd == SD_F32) {
            uint32_t u = e << 23 | (uint32_t)(r >> 20 & 0x7FFFFF);
            memcpy(f->bytes + 4 * i, &u, 4);
        } else if (sd == SD_BF16) {
            unsigned h = e << 7 | (unsigned)(r >> 30 & 0x7F);
            f->bytes[2 * i] = (uint8_t)h, f->bytes[2 * i + 1] = (uint8_t)(h >> 8);
        } else if (sd == SD_F16) {
            unsigned h = (e - 112) << 10 | (unsigned)(r >> 30 & 0x3FF);
            f->bytes[2 * i] = (uint8_t)h, f->bytes[2 * i + 1] = (uint8_t)(h >> 8);
        } else {
            f->bytes[i] = (uint8_t)e;
        }
    }
    ecf8_tensor_info *t = &f->info;
    t->name = "test.weight_scale";
    t->dtype_name = sd_names[sd];
    t->dtype = sd == SD_BF16 ? ECF8_DTYPE_BF16 : sd == SD_F16 ? ECF8_DTYPE_F16 : ECF8_DTYPE_OTHER;
    /* Coded E8M0 / U8 scales (format 1.3, byte split) carry their dtype
     * code; stored ones keep OTHER with the name, as before 1.3. */
    if (coded && f->ndim == 2 && (sd == SD_E8M0 || sd == SD_U8))
        t->dtype = sd == SD_E8M0 ? ECF8_DTYPE_F8_E8M0 : ECF8_DTYPE_U8;
    if (coded && sd != SD_F32 && f->ndim == 2) {
        assert_int_equal(ecf8_tensor_encode(t->dtype, f->bytes, f->shape[0], f->shape[1], NULL, &f->enc),
                         ECF8_OK);
        assert_int_equal(ecf8_encoded_tensor_info(f->enc, t->name, t->dtype, f->bytes, f->shape[0],
                                                  f->shape[1], t), ECF8_OK);
        t->dtype_name = sd_names[sd];
        /* the 1x32 E8M0 scales (six exponents) shrink: the decode path is taken */
        if (sl == SL_MX && sd != SD_BF16 && sd != SD_F16) assert_int_equal(t->split, ECF8_SPLIT_BYTE);
    } else {
        t->split = ECF8_SPLIT_STORED;
        t->payload = f->bytes;
        t->payload_bytes = f->count * es;
    }
    t->ndim = f->ndim;
    t->shape[0] = f->shape[0], t->shape[1] = f->shape[1];
    t->n_elements = f->count;
    t->source_bytes = f->count * es;
    t->checksum = XXH3_64bits(f->bytes, f->count * es);
}

static void sf_free(scale_form *f)
{
    ecf8_encoded_free(f->enc);
    free(f->bytes);
}

/* Checks y against sum_k x q s in float64 within the fp32 bound of the
 * contract: blocks of sk columns, then one fma per block. */
static void check_reference_form(ecf8_dtype dt, const uint8_t *w, const scale_form *f, const float *x,
                                 const float *y, size_t m, size_t n, size_t k)
{
    size_t sk = f->sl == SL_B32 || f->sl == SL_MX ? 32 : 128, nkb = (k + sk - 1) / sk;
    double gamma = ((double)sk + (double)nkb + 2.0) * ldexp(1.0, -24) * 1.01;
    double *sc = malloc(n * k * sizeof *sc);
    assert_non_null(sc);
    for (size_t j = 0; j < n; j++)
        for (size_t c = 0; c < k; c++)
            sc[j * k + c] = (double)ecf8_element_to_float(dt, w, j * k + c) * sf_at(f, j, c, k);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (size_t c = 0; c < k; c++) {
                double t = (double)x[i * k + c] * sc[j * k + c];
                ref += t;
                mag += fabs(t);
            }
            if (!isfinite(ref)) continue;
            double err = fabs((double)y[i * n + j] - ref), bound = gamma * mag + 1e-35;
            if (!(err <= bound)) {
                print_error("scale %s %s: y[%zu,%zu] = %.9g, reference %.17g, error %.3g > bound %.3g\n",
                            sd_names[f->sd], sl_names[f->sl], i, j, (double)y[i * n + j], ref, err, bound);
                fail();
            }
        }
    free(sc);
}

/* Both engines on w with scale form f: bit-identical; the reference when
 * `reference`.  y_out (m = ms[0]'s Y of the fused engine) if not NULL. */
static void check_form(weight *w, const scale_form *f, const size_t *ms, size_t n_ms, int reference,
                       float *y_out)
{
    ecf8_cl_matmul *mm = NULL;
    int st = ecf8_cl_matmul_create_ex(g_ctx, g_dev, g_queue, &w->info, &f->info, 0, &g_tuning, &mm);
    if (st) print_error("create (scale %s %s): %s: %s\n", sd_names[f->sd], sl_names[f->sl],
                        ecf8_status_string(st), ecf8_last_error());
    assert_int_equal(st, ECF8_OK);
    for (size_t t = 0; t < n_ms; t++) {
        size_t m = ms[t];
        float *x = make_x(m, w->k, 2000 + m), *yf = malloc(m * w->n * 4), *yu = malloc(m * w->n * 4);
        assert_non_null(yf);
        assert_non_null(yu);
        run(mm, ECF8_CL_ENGINE_FUSED, x, m * w->k * 4, 0, m, w->n, yf);
        run(mm, ECF8_CL_ENGINE_UNCOMPRESSED, x, m * w->k * 4, 0, m, w->n, yu);
        if (memcmp(yf, yu, m * w->n * 4)) {
            for (size_t i = 0; i < m * w->n; i++)
                if (memcmp(&yf[i], &yu[i], 4)) {
                    print_error("scale %s %s, %s %zux%zu layout %u m=%zu: y[%zu] fused %.9g != "
                                "uncompressed %.9g\n", sd_names[f->sd], sl_names[f->sl],
                                ecf8_dtype_name(w->dtype), w->n, w->k,
                                w->info.split == ECF8_SPLIT_STORED ? 0u : w->info.stream.stream_layout,
                                m, i, (double)yf[i], (double)yu[i]);
                    break;
                }
            fail();
        }
        if (reference) check_reference_form(w->dtype, w->data, f, x, yf, m, w->n, w->k);
        if (ecf8_cl_matmul_reduction(mm) == ECF8_CL_REDUCTION_LANES)
            check_lane_order(w->dtype, w->data, form_scale_at, f, x, yf, m, w->n, w->k);
        if (y_out && t == 0) memcpy(y_out, yf, m * w->n * 4);
        free(x), free(yf), free(yu);
    }
    ecf8_cl_matmul_free(mm);
}

/* w's data re-encoded in stream layout `layout`. */
static void weight_reencode(weight *w, unsigned layout)
{
    ecf8_encoded_free(w->enc);
    w->enc = NULL;
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = layout;
    weight_encode(w, &o);
}

/* Every (dtype, layout) form on w, both stream layouts, M = 1 and 64. */
static void all_forms(weight *w)
{
    static const size_t ms[] = {1, 64};
    for (unsigned layout = 0; layout <= 1; layout++) {
        weight_reencode(w, layout);
        for (int sd = 0; sd < SD_COUNT; sd++)
            for (int sl = 0; sl < SL_COUNT; sl++) {
                scale_form f;
                sf_make(&f, sd, sl, w->n, w->k, 100 + 10 * (uint64_t)sd + (uint64_t)sl, layout);
                check_form(w, &f, ms, 2, 1, NULL);
                sf_free(&f);
            }
    }
}

/* A real checkpoint's weight from a slice in tests/data (its own scales
 * replaced by each form). */
static void real_weight(weight *w, const char *fixture, const char *name)
{
    const char *dir = tu_temp_dir();
    assert_non_null(dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/forms.ecf8", dir);
    ecf8_compress_options co;
    ecf8_compress_options_init(&co);
    co.overwrite = 1;
    int st = ecf8_compress_path(tu_data_path(fixture), out, &co);
    if (st) print_error("%s: %s\n", fixture, ecf8_last_error());
    assert_int_equal(st, ECF8_OK);
    ecf8_file *file;
    assert_int_equal(ecf8_file_open(out, &file), ECF8_OK);
    size_t i;
    assert_int_equal(ecf8_file_find(file, name, &i), ECF8_OK);
    ecf8_tensor_info t;
    assert_int_equal(ecf8_file_tensor(file, i, &t), ECF8_OK);
    memset(w, 0, sizeof *w);
    w->dtype = t.dtype, w->n = t.shape[0], w->k = t.shape[1];
    w->data = malloc(w->n * w->k);
    assert_non_null(w->data);
    assert_int_equal(ecf8_file_read_tensor(file, i, w->data, w->n * w->k, 0), ECF8_OK);
    ecf8_file_close(file);
    w->scale = malloc(((w->n + 127) / 128) * ((w->k + 127) / 128) * sizeof(float));
    for (size_t c = 0; c < ((w->n + 127) / 128) * ((w->k + 127) / 128); c++) w->scale[c] = 1.0f;
}

static void test_scale_forms(void **state)
{
    (void)state;
    NEED_DEVICE();
    /* real weights: the E4M3 slice's FFN output [384, 1536], the E5M2
     * slice's key projection [384, 384] */
    weight w;
    real_weight(&w, "minilm-slice-e4m3.safetensors", "encoder.layer.0.output.dense.weight");
    all_forms(&w);
    weight_free(&w);
    real_weight(&w, "minilm-slice-e5m2.safetensors", "encoder.layer.1.attention.self.key.weight");
    all_forms(&w);
    weight_free(&w);
    /* partial edge blocks everywhere: N = 70, K = 300 (layout 1: the
     * raw-weight fallback) */
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 70, 300, 61);
    all_forms(&w);
    weight_free(&w);
}

/* The 32-column forms on the portable one-lane kernels (the GPU path) and
 * on row segments (layout 0: segments of 192 columns, layout 1 of 256). */
static void test_scale_forms_one_lane(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t ms[] = {1, 3, 64};
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 77, 640, 62);
    for (int lanes1 = 1; lanes1 >= 0; lanes1--)
        for (unsigned layout = 0; layout <= 1; layout++) {
            g_tuning.matmul_lanes = lanes1 ? 1 : 0;
            ecf8_encoded_free(w.enc);
            w.enc = NULL;
            ecf8_compress_options o;
            ecf8_compress_options_init(&o);
            o.stream_layout = layout;
            o.chunk_elements = lanes1 ? 0 : 200;
            weight_encode(&w, &o);
            for (int sl = SL_ROW2; sl < SL_COUNT; sl++) {
                scale_form f;
                sf_make(&f, sl == SL_MX ? SD_U8 : SD_BF16, sl, w.n, w.k, 7 + (uint64_t)sl, 0);
                check_form(&w, &f, ms, 3, 1, NULL);
                sf_free(&f);
            }
        }
    g_tuning.matmul_lanes = 0;
    weight_free(&w);
}

/* A scalar or per-row scale gives the Y of the F32 128x128 grid that holds
 * the same values, bit for bit (the same contract); NaN, Inf and zero
 * scales go through both engines alike. */
static void test_scale_forms_equivalent(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t m1[] = {1}, m64[] = {64};
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 200, 300, 63);
    size_t nb = 2, kb = 3;
    for (unsigned layout = 0; layout <= 1; layout++) {
        weight_reencode(&w, layout);
        for (int mi = 0; mi < 2; mi++) {
            const size_t *ms = mi ? m64 : m1;
            size_t m = ms[0];
            float *ya = malloc(m * w.n * 4), *yb = malloc(m * w.n * 4);
            scale_form f;
            sf_make(&f, SD_E8M0, SL_SCALAR0, w.n, w.k, 3, 0);
            check_form(&w, &f, ms, 1, 1, ya);
            for (size_t i = 0; i < nb * kb; i++) w.scale[i] = (float)sf_value(&f, 0);
            w.scale_info.checksum = XXH3_64bits(w.scale, nb * kb * 4);
            sf_free(&f);
            check_weight(&w, ms, 1, 0); /* the 1.x path */
            ecf8_cl_matmul *mm;
            assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &w.scale_info, 0, &mm), ECF8_OK);
            float *x = make_x(m, w.k, 2000 + m);
            run(mm, ECF8_CL_ENGINE_FUSED, x, m * w.k * 4, 0, m, w.n, yb);
            ecf8_cl_matmul_free(mm);
            assert_memory_equal(ya, yb, m * w.n * 4);
            free(x), free(ya), free(yb);
        }
        /* special scale values: per-row and 1x32 F32 with NaN, +-Inf, 0, -0,
         * a subnormal; E8M0 with 255 (NaN) and 0 (2^-127) */
        for (int sl = SL_ROW1; sl < SL_COUNT; sl++) {
            scale_form f;
            sf_make(&f, SD_F32, sl, w.n, w.k, 11, 0);
            static const uint32_t special[] = {0x7FC00000u, 0x7F800000u, 0xFF800000u, 0, 0x80000000u, 1, 0xFFC12345u};
            for (size_t i = 0; i < f.count; i += 5)
                memcpy(f.bytes + 4 * i, &special[(i / 5) % 7], 4);
            f.info.checksum = XXH3_64bits(f.bytes, f.count * 4);
            check_form(&w, &f, m64, 1, 1, NULL);
            sf_free(&f);
            sf_make(&f, SD_E8M0, sl, w.n, w.k, 12, 0);
            for (size_t i = 0; i < f.count; i += 4) f.bytes[i] = i % 8 ? 255 : 0;
            f.info.checksum = XXH3_64bits(f.bytes, f.count);
            check_form(&w, &f, m1, 1, 1, NULL);
            sf_free(&f);
        }
    }
    weight_free(&w);
}

/* Scale shapes and dtypes that fit no form are refused, naming the tensor
 * and what was expected. */
static void test_scale_form_errors(void **state)
{
    (void)state;
    NEED_DEVICE();
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 200, 300, 64);
    weight_encode(&w, NULL);
    ecf8_cl_matmul *mm = NULL;
    scale_form f;
    sf_make(&f, SD_F32, SL_B32, w.n, w.k, 1, 0);
    ecf8_tensor_info bad = f.info;
    static const struct { unsigned ndim; uint64_t a, b; } shapes[] = {
        {1, 199, 0}, {2, 200, 2}, {2, 7, 9}, {2, 1, 1}, {2, 2, 10}, {3, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        bad.ndim = shapes[i].ndim;
        bad.shape[0] = shapes[i].a, bad.shape[1] = shapes[i].b, bad.shape[2] = 1;
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_SHAPE);
        assert_null(mm);
        const char *e = ecf8_last_error();
        assert_non_null(strstr(e, "scale tensor 'test.weight_scale'"));
        assert_non_null(strstr(e, "weight 'test.weight' [200, 300] takes a scalar [] or [1], per-row [200] or "
                                  "[200, 1], or blocks: 128x128 needs [2, 3], 32x32 [7, 10], 1x32 [200, 10]"));
    }
    static const char *const dtypes[] = {"I32", "F64", "F8_E4M3", "BOOL"};
    for (size_t i = 0; i < 4; i++) {
        bad = f.info;
        bad.dtype_name = dtypes[i];
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_SHAPE);
        assert_non_null(strstr(ecf8_last_error(), "expected F32, BF16, F16, F8_E8M0 or U8"));
        assert_non_null(strstr(ecf8_last_error(), "of 'test.weight'"));
    }
    /* a payload that does not hold the shape's elements */
    bad = f.info;
    bad.payload_bytes -= 4;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_CORRUPT);
    /* the checksum of a widened form is checked too */
    bad = f.info;
    bad.checksum ^= 1;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_CHECKSUM);
    assert_non_null(strstr(ecf8_last_error(), "scale tensor 'test.weight_scale' of 'test.weight': checksum mismatch"));
    sf_free(&f);
    weight_free(&w);
}

/* Shape and argument errors are refused before any kernel runs. */
static void test_errors(void **state)
{
    (void)state;
    NEED_DEVICE();
    weight w;
    weight_init(&w, ECF8_DTYPE_F8_E4M3, 200, 300, 1);
    weight_encode(&w, NULL);
    ecf8_cl_matmul *mm = NULL;
    /* wrong scale shape */
    ecf8_tensor_info bad = w.scale_info;
    bad.shape[1] = 2;
    bad.payload_bytes = 2 * 2 * 4;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_SHAPE);
    assert_non_null(strstr(ecf8_last_error(), "needs [2, 3]"));
    bad = w.scale_info;
    bad.dtype_name = "BF16";
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, 0, &mm), ECF8_ERR_SHAPE);
    /* missing scales for FP8 */
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, NULL, 0, &mm), ECF8_ERR_ARGUMENT);
    /* a 1-D or 3-D weight */
    ecf8_tensor_info t = w.info;
    t.ndim = 1;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, &w.scale_info, 0, &mm), ECF8_ERR_SHAPE);
    /* a dtype without matmul */
    t = w.info;
    t.dtype = ECF8_DTYPE_F16;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, &w.scale_info, 0, &mm), ECF8_ERR_UNSUPPORTED);
    /* FNUZ weights (bias 8 / 16, 0x80 NaN) are refused by name, never
     * read as their siblings. */
    const ecf8_dtype fnuz[] = {ECF8_DTYPE_F8_E4M3FNUZ, ECF8_DTYPE_F8_E5M2FNUZ};
    for (size_t i = 0; i < 2; i++) {
        t = w.info;
        t.dtype = fnuz[i];
        t.dtype_name = ecf8_dtype_name(fnuz[i]);
        t.stream.dtype = fnuz[i];
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, &w.scale_info, 0, &mm),
                         ECF8_ERR_UNSUPPORTED);
        assert_null(mm);
        char want[64];
        snprintf(want, sizeof want, "dtype %s has no matmul", ecf8_dtype_name(fnuz[i]));
        assert_non_null(strstr(ecf8_last_error(), want));
    }
    /* A checksum that does not match, of W or of its scales: refused for
     * every engine, the fused one included (checked by a decode on the
     * device when only the fused engine is asked for). */
    const unsigned masks[] = {0, ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED),
                              ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_UNCOMPRESSED)};
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        t = w.info;
        t.checksum ^= 1;
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, &w.scale_info, masks[i], &mm),
                         ECF8_ERR_CHECKSUM);
        assert_null(mm);
        assert_non_null(strstr(ecf8_last_error(), "'test.weight': checksum mismatch"));
        bad = w.scale_info;
        bad.checksum ^= 1;
        assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &bad, masks[i], &mm),
                         ECF8_ERR_CHECKSUM);
        assert_null(mm);
        assert_non_null(strstr(ecf8_last_error(), "scale tensor 'test.weight_scale_inv'"));
    }
    /* Without a queue the fused engine's content check runs on the host. */
    t = w.info;
    t.checksum ^= 1;
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, NULL, &t, &w.scale_info,
                                           ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED), &mm),
                     ECF8_ERR_CHECKSUM);
    assert_null(mm);
    /* One flipped bit in the coded stream: whatever it does to the code
     * words, the fused engine refuses the tensor at create. */
    {
        uint8_t *copy = flip_coded_bit(&w, &t);
        int st = ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &t, &w.scale_info,
                                       ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED), &mm);
        assert_true(st == ECF8_ERR_CHECKSUM || st == ECF8_ERR_CORRUPT);
        assert_null(mm);
        free(copy);
    }

    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &w.scale_info,
                                           ECF8_CL_ENGINE_BIT(ECF8_CL_ENGINE_FUSED), &mm), ECF8_OK);
    cl_mem x = buffer(3 * 300 * 4, NULL), y = buffer(3 * 200 * 4, NULL);
    /* X too small for 4 rows, Y too small, M = 0, misaligned offset, engine not prepared */
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 4, x, 0, 0, y, 0, 0, NULL, NULL), ECF8_ERR_SHAPE);
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 3, x, 0, 0, y, 4, 0, NULL, NULL), ECF8_ERR_SHAPE);
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 0, x, 0, 0, y, 0, 0, NULL, NULL), ECF8_ERR_SHAPE);
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 1, x, 2, 0, y, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_UNCOMPRESSED, g_queue, 1, x, 0, 0, y, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 1, x, 0, 7, y, 0, 0, NULL, NULL), ECF8_ERR_ARGUMENT);
    /* offsets inside the buffers work */
    assert_int_equal(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, g_queue, 2, x, 300 * 4, 0, y, 200 * 4, 0, NULL, NULL), ECF8_OK);
    assert_int_equal(clFinish(g_queue), CL_SUCCESS);
    clReleaseMemObject(x);
    clReleaseMemObject(y);
    ecf8_cl_matmul_free(mm);
    ecf8_cl_matmul_free(NULL);
    weight_free(&w);

    /* BF16 takes no scales */
    weight_init(&w, ECF8_DTYPE_BF16, 10, 10, 1);
    weight_encode(&w, NULL);
    ecf8_tensor_info sc = {0};
    assert_int_equal(ecf8_cl_matmul_create(g_ctx, g_dev, g_queue, &w.info, &sc, 0, &mm), ECF8_ERR_ARGUMENT);
    weight_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_e4m3),
        cmocka_unit_test(test_e5m2),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_chunk_geometries),
        cmocka_unit_test(test_one_lane),
        cmocka_unit_test(test_large_batch),
        cmocka_unit_test(test_bf16_input),
        cmocka_unit_test(test_lane_streams),
        cmocka_unit_test(test_lane_streams_long_codes),
        cmocka_unit_test(test_lane_streams_one_lane),
        cmocka_unit_test(test_lane_order),
        cmocka_unit_test(test_path_prediction),
        cmocka_unit_test(test_zero_weights),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_dequantize),
        cmocka_unit_test(test_real_checkpoint),
        cmocka_unit_test(test_scale_forms),
        cmocka_unit_test(test_scale_forms_one_lane),
        cmocka_unit_test(test_scale_forms_equivalent),
        cmocka_unit_test(test_scale_form_errors),
    };
    const char *only = getenv("ECF8_TEST_FILTER"); /* e.g. test_lane_streams* */
    if (only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
