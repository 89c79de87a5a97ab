/* batch.c - many layout-1 tensors decoded by one enqueue
 * (ecf8_cl_batch_*, kernel ecf8_decode_streams_batch in
 * cl/decode_streams.cl).
 *
 * A launch per tensor costs a driver round trip and, on a GPU, a grid that
 * small tensors cannot fill; on PoCL it costs tens of microseconds, more
 * than decoding a tensor of a few thousand elements.  A batch therefore
 * holds its tensors in one device buffer, each as the streams kernel reads
 * a tensor (coded stream, zero pad, chunk offsets, 16-bit decode table),
 * and a table of jobs, one per tensor, that the kernel searches by chunk:
 * the batch numbers every chunk of every tensor, and a work-item finds its
 * tensor by binary search over the jobs' first chunks.  Tensors whose
 * streams kernel builds differ (split, width, code length class) cannot
 * share a program: the batch sorts them into build classes, each a
 * contiguous range of the numbering and one launch. */
#include "decode_plan.h"
#include "runtime.h"
#include "stream_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_PAD ECF8_CL_STREAM_PAD
#define ERROR_WORDS ECF8_CL_ERROR_WORDS
/* cl/decode_streams.cl's job record. */
#define JOB_WORDS 11
enum { J_OFFSETS, J_CODED, J_CODED_BYTES, J_TABLE, J_CHUNKS, J_ROWS, J_COLS, J_CHUNK_ROWS,
       J_CHUNK_COLS, J_MASK, J_FIRST };

typedef struct batch_tensor {
    char name[128];
    size_t decoded_bytes;
    uint64_t first, n_chunks; /* its chunks in the batch's numbering */
    size_t job;               /* its position in the job table */
    size_t cls;               /* its build class */
} batch_tensor;

typedef struct batch_class {
    char options[sizeof((ecf8_cl_decode_plan *)0)->options[0]];
    cl_kernel kernel;
    size_t global, local;
    uint32_t job0, n_jobs;
    uint64_t first_unit, end_unit;
} batch_class;

struct ecf8_cl_batch {
    cl_context context;
    cl_device_id device;
    cl_mem data, jobs, error;
    size_t n, n_cls, device_bytes;
    batch_tensor *t;
    size_t *order;   /* job position -> tensor */
    batch_class *cls;
};

void ecf8_cl_batch_free(ecf8_cl_batch *b)
{
    if (!b) return;
    for (size_t k = 0; k < b->n_cls; k++)
        if (b->cls[k].kernel) clReleaseKernel(b->cls[k].kernel);
    if (b->data) clReleaseMemObject(b->data);
    if (b->jobs) clReleaseMemObject(b->jobs);
    if (b->error) clReleaseMemObject(b->error);
    if (b->context) clReleaseContext(b->context);
    free(b->t);
    free(b->order);
    free(b->cls);
    free(b);
}

size_t ecf8_cl_batch_count(const ecf8_cl_batch *b) { return b ? b->n : 0; }

size_t ecf8_cl_batch_launches(const ecf8_cl_batch *b)
{
    size_t n = 0;
    for (size_t k = 0; b && k < b->n_cls; k++) n += b->cls[k].global > 0;
    return n;
}

size_t ecf8_cl_batch_decoded_bytes(const ecf8_cl_batch *b, size_t i)
{
    return b && i < b->n ? b->t[i].decoded_bytes : 0;
}

size_t ecf8_cl_batch_device_bytes(const ecf8_cl_batch *b) { return b ? b->device_bytes : 0; }

/* Tensor i checked as the streams kernel needs it and planned on `caps`:
 * its build options into cls_options, its data bytes into *bytes. */
static int plan_tensor(const ecf8_tensor_info *info, const ecf8_cl_device_caps *caps,
                       const ecf8_cl_tuning *tuning, char *cls_options, size_t size,
                       uint64_t *bytes, unsigned *vw, unsigned *nsets)
{
    const ecf8_stream *s = &info->stream;
    unsigned width = ecf8_dtype_size(info->dtype);
    if (info->split == ECF8_SPLIT_STORED || s->stream_layout != ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "%s tensor: a batch decodes coded tensors of stream "
                         "layout 1 only (decode it with ecf8_cl_enqueue_decode)",
                         info->split == ECF8_SPLIT_STORED ? "stored" : "layout-0");
    if (!s->coded || !s->chunk_offsets)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "its stream is not in memory (a file opened with "
                         "ecf8_file_open_index: read it with ecf8_file_read_tensor)");
    uint64_t decoded;
    if (!width || !ecf8_mul_u64(s->n_elements, width, &decoded) || decoded != info->source_bytes ||
        decoded > SIZE_MAX)
        return ecf8_fail(ECF8_ERR_CORRUPT, "stream of %llu elements for %llu source bytes",
                         (unsigned long long)s->n_elements, (unsigned long long)info->source_bytes);
    int st = ecf8_stream_validate(s);
    ecf8_cl_decode_plan plan;
    if (!st) st = ecf8_cl_decode_plan_make(caps, s, width, tuning, &plan);
    if (st) return st;
    snprintf(cls_options, size, "%s", plan.options[ECF8_CL_DECODE_STREAMS]);
    *vw = plan.streams_vw, *nsets = plan.streams_nsets;
    /* stream | pad | offsets | table */
    *bytes = ecf8_align_up(ecf8_align_up(s->coded_bytes + STREAM_PAD, 8) + (s->n_chunks + 1) * 8, 64) +
             ecf8_align_up(((uint64_t)2 << s->code_bits), 64);
    return ECF8_OK;
}

/* The kernel of class k and its launch size: CPUs a work-item per chunk
 * (or IPC per chunk), GPUs groups of up to 32 x ECF8_STREAMS_WG_CHUNKS
 * lanes looping over the class's chunks, at most 16 groups per compute
 * unit (as the single-tensor decode). */
static int make_class_kernel(ecf8_cl_batch *b, batch_class *c, unsigned vw, unsigned nsets,
                             cl_uint units)
{
    cl_program program = NULL;
    int st = ecf8_cl_program_get(b->context, b->device, "decode_streams", c->options, &program);
    if (st) return st;
    cl_int err;
    c->kernel = clCreateKernel(program, "ecf8_decode_streams_batch", &err);
    clReleaseProgram(program);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateKernel(ecf8_decode_streams_batch)");
    uint64_t units_n = c->end_unit - c->first_unit;
    if (vw > 1) {
        c->local = 1;
        c->global = (size_t)(units_n * (32 / (vw * nsets)));
    } else {
        size_t wg = 32 * ECF8_STREAMS_WG_CHUNKS, max_wg = 0;
        if (clGetKernelWorkGroupInfo(c->kernel, b->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg,
                                     &max_wg, NULL) == CL_SUCCESS)
            while (wg > 1 && wg > max_wg) wg /= 2;
        uint64_t groups = units_n * 32 / wg, most = (uint64_t)(units ? units : 1) * 16;
        c->local = wg;
        c->global = (size_t)((groups < most ? groups : most) * wg);
    }
    cl_kernel k = c->kernel;
    cl_uint job0 = c->job0, n_jobs = c->n_jobs;
    cl_ulong first = c->first_unit, end = c->end_unit;
    ECF8_CL_CHECK(clSetKernelArg(k, 0, sizeof(cl_mem), &b->data), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 2, sizeof(cl_mem), &b->error), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 3, sizeof(cl_mem), &b->jobs), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 5, sizeof job0, &job0), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 6, sizeof n_jobs, &n_jobs), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 7, sizeof first, &first), "clSetKernelArg(batch)");
    ECF8_CL_CHECK(clSetKernelArg(k, 8, sizeof end, &end), "clSetKernelArg(batch)");
    return ECF8_OK;
}

/* Writes tensor `info`'s stream, offsets and table at `at` of host image
 * `img`, and its job record. */
static int place_tensor(const ecf8_tensor_info *info, uint8_t *img, uint64_t at, uint64_t first,
                        cl_ulong *job)
{
    const ecf8_stream *s = &info->stream;
    uint64_t offsets_at = ecf8_align_up(at + s->coded_bytes + STREAM_PAD, 8);
    uint64_t table_at = ecf8_align_up(offsets_at + (s->n_chunks + 1) * 8, 64);
    uint16_t table[1u << ECF8_MAX_CODE_BITS];
    int st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, table);
    if (st) return st;
    memcpy(img + at, s->coded, (size_t)s->coded_bytes);
    for (uint64_t c = 0; c <= s->n_chunks; c++) ecf8_store_le64(img + offsets_at + 8 * c, s->chunk_offsets[c]);
    for (size_t i = 0; i < ((size_t)1 << s->code_bits); i++) memcpy(img + table_at + 2 * i, &table[i], 2);
    job[J_OFFSETS] = offsets_at;
    job[J_CODED] = at;
    job[J_CODED_BYTES] = s->coded_bytes;
    job[J_TABLE] = table_at;
    job[J_CHUNKS] = s->n_chunks;
    job[J_ROWS] = s->rows;
    job[J_COLS] = s->cols;
    job[J_CHUNK_ROWS] = s->chunk_rows;
    job[J_CHUNK_COLS] = s->chunk_cols;
    job[J_MASK] = (1u << s->code_bits) - 1;
    job[J_FIRST] = first;
    return ECF8_OK;
}

static int batch_build(ecf8_cl_batch *b, cl_command_queue queue, const ecf8_tensor_info *const *tensors,
                       const ecf8_cl_tuning *tuning)
{
    ecf8_cl_device_caps caps;
    int st = ecf8_cl_device_caps_get(b->device, &caps);
    if (st) return st;
    const size_t n = b->n;
    char (*options)[sizeof b->cls[0].options] = calloc(n, sizeof *options);
    uint64_t *bytes = calloc(n, sizeof *bytes);
    b->t = calloc(n, sizeof *b->t);
    b->order = calloc(n, sizeof *b->order);
    b->cls = calloc(n, sizeof *b->cls);
    if (!options || !bytes || !b->t || !b->order || !b->cls)
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    unsigned vw = 1, nsets = 1;
    for (size_t i = 0; i < n && !st; i++) {
        const ecf8_tensor_info *info = tensors[i];
        snprintf(b->t[i].name, sizeof b->t[i].name, "%s", info && info->name ? info->name : "");
        if (!info) {
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "batch create: tensor %zu is NULL", i);
            break;
        }
        st = plan_tensor(info, &caps, tuning, options[i], sizeof options[i], &bytes[i], &vw, &nsets);
        if (st) st = ecf8_fail_context(st, "tensor '%s'", b->t[i].name);
        b->t[i].decoded_bytes = (size_t)info->source_bytes;
        b->t[i].n_chunks = info->stream.n_chunks;
        /* Its class: the first tensor with the same build. */
        size_t k = 0;
        while (k < b->n_cls && strcmp(b->cls[k].options, options[i])) k++;
        if (k == b->n_cls) memcpy(b->cls[b->n_cls++].options, options[i], sizeof options[i]);
        b->t[i].cls = k;
    }
    /* Class by class, in the given order within each: jobs, numbering
     * (GPUs: every job on a group boundary), data offsets. */
    const uint64_t align = vw > 1 ? 1 : ECF8_STREAMS_WG_CHUNKS;
    uint64_t total = 0, unit = 0;
    size_t pos = 0;
    for (size_t k = 0; k < b->n_cls && !st; k++) {
        batch_class *c = &b->cls[k];
        c->job0 = (uint32_t)pos, c->first_unit = unit;
        for (size_t i = 0; i < n; i++) {
            if (b->t[i].cls != k) continue;
            b->order[pos] = i, b->t[i].job = pos++;
            b->t[i].first = unit;
            unit += ecf8_align_up(b->t[i].n_chunks, align);
            total += bytes[i];
        }
        c->n_jobs = (uint32_t)(pos - c->job0), c->end_unit = unit;
    }
    uint8_t *img = NULL;
    cl_ulong *jobs = NULL;
    if (!st && (total >= (1ull << 62) || n > UINT32_MAX))
        st = ecf8_fail(ECF8_ERR_UNSUPPORTED, "batch of %llu bytes: too large", (unsigned long long)total);
    if (!st && (!(img = calloc(1, (size_t)total)) || !(jobs = calloc(n * JOB_WORDS, sizeof *jobs))))
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte batch", (unsigned long long)total);
    uint64_t at = 0;
    for (size_t p = 0; p < n && !st; p++) {
        size_t i = b->order[p];
        st = place_tensor(tensors[i], img, at, b->t[i].first, jobs + p * JOB_WORDS);
        if (st) st = ecf8_fail_context(st, "tensor '%s'", b->t[i].name);
        at += bytes[i];
    }
    cl_int err = CL_SUCCESS;
    if (!st) {
        b->data = clCreateBuffer(b->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)total, img, &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(batch)");
    }
    if (!st) {
        b->jobs = clCreateBuffer(b->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                 n * JOB_WORDS * sizeof *jobs, jobs, &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(batch jobs)");
    }
    static const cl_uint zero[ERROR_WORDS] = {0};
    if (!st) {
        b->error = clCreateBuffer(b->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof zero,
                                  (void *)zero, &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(error word)");
    }
    b->device_bytes = (size_t)total + n * JOB_WORDS * sizeof *jobs + sizeof zero;
    for (size_t k = 0; k < b->n_cls && !st; k++)
        st = make_class_kernel(b, &b->cls[k], vw, nsets, caps.compute_units);
    (void)queue; /* the buffers are initialised from host memory at creation */
    free(img);
    free(jobs);
    free(options);
    free(bytes);
    return st;
}

int ecf8_cl_batch_create(cl_context context, cl_device_id device, cl_command_queue queue,
                         const ecf8_tensor_info *const *tensors, size_t n,
                         const ecf8_cl_tuning *tuning_in, ecf8_cl_batch **out)
{
    if (!context || !device || !queue || !tensors || !n || !out)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "batch create: NULL argument or no tensors");
    *out = NULL;
    ecf8_cl_tuning tuning;
    int st = ecf8_cl_tuning_read(tuning_in, &tuning);
    if (st) return st;
    ecf8_cl_batch *b = calloc(1, sizeof *b);
    if (!b) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    b->context = context;
    b->device = device;
    clRetainContext(context);
    b->n = n;
    st = batch_build(b, queue, tensors, &tuning);
    if (st) {
        ecf8_cl_batch_free(b);
        return st;
    }
    *out = b;
    return ECF8_OK;
}

int ecf8_cl_enqueue_decode_batch(ecf8_cl_batch *b, cl_command_queue queue, cl_mem out,
                                 const size_t *out_offsets, cl_uint num_wait_events,
                                 const cl_event *wait_events, cl_event *out_event)
{
    if (out_event) *out_event = NULL;
    if (!b || !queue || !out || !out_offsets || (num_wait_events && !wait_events) ||
        (!num_wait_events && wait_events))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "batch decode: NULL argument or wait list mismatch");
    size_t out_size = 0;
    ECF8_CL_CHECK(clGetMemObjectInfo(out, CL_MEM_SIZE, sizeof out_size, &out_size, NULL),
                  "clGetMemObjectInfo(output)");
    cl_ulong *outs = malloc(b->n * sizeof *outs);
    cl_event *done = calloc(b->n_cls, sizeof *done);
    int st = outs && done ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < b->n && !st; i++) {
        if (out_offsets[i] > out_size || b->t[i].decoded_bytes > out_size - out_offsets[i])
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': %zu bytes at offset %zu of a %zu-byte output",
                           b->t[i].name, b->t[i].decoded_bytes, out_offsets[i], out_size);
        else
            outs[b->t[i].job] = out_offsets[i];
    }
    /* The offsets of this enqueue in a buffer of its own, copied at
     * creation and released here: OpenCL keeps it until the launches that
     * use it are done. */
    cl_int err = CL_SUCCESS;
    cl_mem outs_buf = NULL;
    if (!st) {
        outs_buf = clCreateBuffer(b->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                  b->n * sizeof *outs, outs, &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(batch offsets)");
    }
    size_t launched = 0;
    for (size_t k = 0; k < b->n_cls && !st; k++) {
        batch_class *c = &b->cls[k];
        if (!c->global) continue; /* a class of empty tensors */
        if ((err = clSetKernelArg(c->kernel, 1, sizeof(cl_mem), &out)) != CL_SUCCESS ||
            (err = clSetKernelArg(c->kernel, 4, sizeof(cl_mem), &outs_buf)) != CL_SUCCESS) {
            st = ecf8_cl_fail(err, "clSetKernelArg(batch)");
            break;
        }
        err = clEnqueueNDRangeKernel(queue, c->kernel, 1, NULL, &c->global, &c->local, num_wait_events,
                                     wait_events, out_event ? &done[launched] : NULL);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueNDRangeKernel(ecf8_decode_streams_batch)");
        else launched++;
    }
    if (outs_buf) clReleaseMemObject(outs_buf);
    /* One event for the caller: the launch's, or a marker joining them
     * (an out-of-order queue may run them in any order). */
    if (!st && out_event) {
        if (launched == 1) {
            *out_event = done[0], done[0] = NULL;
        } else {
            err = clEnqueueMarkerWithWaitList(queue, (cl_uint)(launched ? launched : num_wait_events),
                                              launched ? done : wait_events, out_event);
            if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueMarkerWithWaitList(batch)");
        }
    }
    for (size_t k = 0; done && k < launched; k++)
        if (done[k]) clReleaseEvent(done[k]);
    free(done);
    free(outs);
    return st;
}

int ecf8_cl_batch_check(ecf8_cl_batch *b, cl_command_queue queue)
{
    if (!b || !queue) return ecf8_fail(ECF8_ERR_ARGUMENT, "batch check: NULL argument");
    ECF8_CL_CHECK(clFinish(queue), "clFinish(batch queue)");
    cl_uint word[ERROR_WORDS] = {0};
    static const cl_uint zero[ERROR_WORDS] = {0};
    ECF8_CL_CHECK(clEnqueueReadBuffer(queue, b->error, CL_TRUE, 0, sizeof word, word, 0, NULL, NULL),
                  "clEnqueueReadBuffer(error word)");
    if (word[0] == 0) return ECF8_OK;
    ECF8_CL_CHECK(clEnqueueWriteBuffer(queue, b->error, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL),
                  "clEnqueueWriteBuffer(error word)");
    /* The failing chunk's number in the batch names its tensor. */
    uint64_t u = word[0] - 1;
    for (size_t i = 0; i < b->n; i++)
        if (u >= b->t[i].first && u - b->t[i].first < b->t[i].n_chunks)
            return ecf8_cl_error_record_fail(b->t[i].name, u - b->t[i].first, "", word);
    return ecf8_fail(ECF8_ERR_CORRUPT, "batch: a chunk failed its length check (chunk %llu of the batch)",
                     (unsigned long long)u);
}
