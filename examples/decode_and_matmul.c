/* decode_and_matmul.c - the first ecf8 program to copy.
 *
 * Opens a compressed checkpoint (.ecf8), decodes one weight tensor on the
 * default OpenCL device, then multiplies a random activation batch by it
 * with the fused decode+matmul kernel, which reads the compressed weight
 * directly (the decoded matrix never exists in device memory).
 *
 *   ecf8 compress model.safetensors model.ecf8        # once, with the CLI
 *   ./decode_and_matmul model.ecf8 [TENSOR] [BATCH]
 *
 * TENSOR defaults to the first 2-D F8_E4M3/F8_E5M2/BF16 "*.weight" tensor;
 * an FP8 weight needs its block scales "<TENSOR>_scale_inv" (the
 * DeepSeek-V3 / Qwen3-FP8 layout: F32 [ceil(N/128), ceil(K/128)]), which
 * ecf8_file_find_scale finds.
 * ECF8_PLATFORM / ECF8_DEVICE pick another device (index or name part).
 *
 * Build against an installed ecf8 with examples/CMakeLists.txt, or:
 *   cc decode_and_matmul.c $(pkg-config --cflags --libs ecf8) -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ecf8.h>
#include <ecf8_cl.h> /* includes CL/cl.h */

/* Every ecf8 call returns ECF8_OK (0) or a status; ecf8_last_error() says
 * what went wrong in words ("tensor 'w': chunk 12 ends past its stream"). */
#define CHECK(call)                                                                   \
    do {                                                                              \
        int st_ = (call);                                                             \
        if (st_ != ECF8_OK) {                                                         \
            fprintf(stderr, "%s failed: %s: %s\n", #call, ecf8_status_string(st_),   \
                    ecf8_last_error());                                               \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_CL(err, what)                                                           \
    do {                                                                              \
        if ((err) != CL_SUCCESS) {                                                    \
            fprintf(stderr, "%s failed: %s\n", what, ecf8_status_string(err));        \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static int is_linear_weight(const ecf8_tensor_info *t)
{
    size_t n = strlen(t->name);
    return t->ndim == 2 && n > 7 && !strcmp(t->name + n - 7, ".weight") &&
           (t->dtype == ECF8_DTYPE_F8_E4M3 || t->dtype == ECF8_DTYPE_F8_E5M2 ||
            t->dtype == ECF8_DTYPE_BF16);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.ecf8 [TENSOR] [BATCH]\n", argv[0]);
        return 2;
    }
    const size_t m = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 4; /* batch rows of X */

    /* 1. Open the container: maps the file and validates its whole index
     *    (every offset, length and code table) before anything is decoded. */
    ecf8_file *file;
    CHECK(ecf8_file_open(argv[1], &file));

    /* 2. Find the weight W[n, k] and, for FP8, its block scales. */
    size_t wi = 0, si = 0;
    ecf8_tensor_info w, scale;
    if (argc > 2) {
        CHECK(ecf8_file_find(file, argv[2], &wi));
    } else {
        /* Prefer an FP8 weight that has its scales, else any BF16 one. */
        size_t count = ecf8_file_tensor_count(file), bf16 = count;
        for (wi = 0; wi < count; wi++) {
            CHECK(ecf8_file_tensor(file, wi, &w));
            if (!is_linear_weight(&w)) continue;
            if (w.dtype == ECF8_DTYPE_BF16) {
                if (bf16 == count) bf16 = wi;
            } else if (ecf8_file_find_scale(file, wi, &si) == ECF8_OK) {
                break;
            }
        }
        if (wi == count) wi = bf16;
        if (wi == count) {
            fprintf(stderr, "no 2-D F8/BF16 *.weight tensor in %s\n", argv[1]);
            return 1;
        }
    }
    CHECK(ecf8_file_tensor(file, wi, &w));
    const size_t n = (size_t)w.shape[0], k = (size_t)w.shape[1];
    const int fp8 = w.dtype == ECF8_DTYPE_F8_E4M3 || w.dtype == ECF8_DTYPE_F8_E5M2;
    printf("weight %s: %s [%zu, %zu], %s split, %llu -> %llu bytes\n", w.name, w.dtype_name, n, k,
           ecf8_split_name(w.split), (unsigned long long)w.source_bytes,
           (unsigned long long)w.payload_bytes);
    float *scales = NULL;
    if (fp8) {
        CHECK(ecf8_file_find_scale(file, wi, &si));
        CHECK(ecf8_file_tensor(file, si, &scale));
        scales = malloc(scale.source_bytes);
        CHECK(ecf8_file_read_tensor(file, si, scales, scale.source_bytes, 0));
    }

    /* 3. The default OpenCL device: ECF8_PLATFORM/ECF8_DEVICE, else the
     *    first GPU, else the first device.  The library works on your own
     *    context and queue too; this is the shortcut. */
    cl_context ctx;
    cl_device_id dev;
    cl_command_queue queue;
    CHECK(ecf8_cl_open_default(&ctx, &dev, &queue));
    char dev_name[256] = "?";
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dev_name, dev_name, NULL);
    printf("device: %s\n", dev_name);

    /* 4. Decode on the device.  ecf8_cl_tensor_create validates the tensor
     *    on the host and uploads the compressed payload plus its decode
     *    table; ecf8_cl_decode_to_host runs the decode kernel, copies the
     *    result back and checks it against the tensor's checksum. */
    ecf8_cl_tensor *dw;
    CHECK(ecf8_cl_tensor_create(ctx, dev, queue, &w, &dw));
    printf("on device: %zu bytes for %zu decoded bytes\n", ecf8_cl_tensor_device_bytes(dw),
           ecf8_cl_tensor_decoded_bytes(dw));
    uint8_t *wbytes = malloc(w.source_bytes);
    CHECK(ecf8_cl_decode_to_host(dw, queue, wbytes, w.source_bytes));
    printf("decoded on the device, checksum OK\n");
    /* (To decode into your own cl_mem instead: ecf8_cl_enqueue_decode.) */
    ecf8_cl_tensor_free(dw);

    /* 5. Fused decode + matmul: Y[m, n] = X[m, k] * W[n, k]^T, X and Y
     *    row-major fp32 buffers.  The fused engine decodes only the tiles
     *    it multiplies, straight from the compressed payload. */
    ecf8_cl_matmul *mm;
    CHECK(ecf8_cl_matmul_create(ctx, dev, queue, &w, fp8 ? &scale : NULL, ECF8_CL_ENGINE_FUSED,
                                &mm));
    float *x = malloc(m * k * sizeof *x), *y = malloc(m * n * sizeof *y);
    uint64_t seed = 42;
    for (size_t i = 0; i < m * k; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5);
    }
    cl_int err;
    cl_mem xbuf = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, m * k * sizeof *x, x, &err);
    CHECK_CL(err, "clCreateBuffer(X)");
    cl_mem ybuf = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, m * n * sizeof *y, NULL, &err);
    CHECK_CL(err, "clCreateBuffer(Y)");
    cl_event done;
    CHECK(ecf8_cl_enqueue_matmul(mm, ECF8_CL_ENGINE_FUSED, queue, m, xbuf, 0, 0, ybuf, 0, 0, NULL,
                                 &done));
    CHECK_CL(clEnqueueReadBuffer(queue, ybuf, CL_TRUE, 0, m * n * sizeof *y, y, 1, &done, NULL),
             "clEnqueueReadBuffer(Y)");
    cl_ulong t0 = 0, t1 = 0; /* the default queue has profiling on */
    clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    printf("fused matmul [%zu x %zu] * [%zu x %zu]^T: %.3f ms\n", m, k, n, k, (double)(t1 - t0) * 1e-6);

    /* 6. Check a few outputs on the CPU from the decoded weight. */
    const size_t kb = (k + 127) / 128;
    double worst = 0;
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < n && j < 8; j++) {
            double ref = 0, mag = 0;
            for (size_t i = 0; i < k; i++) {
                /* the exact value of the element, times its block's scale */
                double wv = ecf8_element_to_float(w.dtype, wbytes, j * k + i) *
                            (fp8 ? scales[(j / 128) * kb + i / 128] : 1.0f);
                ref += x[r * k + i] * wv;
                mag += fabs(x[r * k + i] * wv);
            }
            double e = fabs(y[r * n + j] - ref) / (mag > 0 ? mag : 1);
            if (e > worst) worst = e;
        }
    printf("Y[0, 0..3] = %g %g %g %g; worst relative error vs CPU %.2e\n", y[0], n > 1 ? y[1] : 0,
           n > 2 ? y[2] : 0, n > 3 ? y[3] : 0, worst);

    clReleaseEvent(done);
    clReleaseMemObject(xbuf);
    clReleaseMemObject(ybuf);
    ecf8_cl_matmul_free(mm);
    clReleaseCommandQueue(queue);
    ecf8_cl_release_context(ctx); /* the library's cached programs hold the context */
    clReleaseContext(ctx);
    ecf8_file_close(file);
    free(x);
    free(y);
    free(wbytes);
    free(scales);
    return worst < 1e-3 ? 0 : 1;
}
