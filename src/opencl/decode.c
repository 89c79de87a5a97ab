/* decode.c - ecf8 tensors on an OpenCL device: upload and chunk-parallel
 * decode (cl/decode_*.cl).
 *
 * A tensor is validated on the host (ecf8_stream_validate: every offset,
 * length and code), planned (decode_plan.c: which kernels, which program
 * options, from the device's capabilities and the stream; each kernel is a
 * program of its own, the portable one made only when a decode needs it),
 * then its whole
 * payload goes into one device buffer followed by zero padding and the
 * decode tables the host builds from the code lengths (16-bit entries for
 * the portable kernel's local memory and the streams kernel, 32-bit ones
 * for the lanes kernel's gathers, and the pair table for the pairs
 * kernel).  A tensor of stream layout 1 uploads as it is and decodes with
 * the streams kernel (cl/decode_streams.cl) at any output offset.  A chunk whose decode
 * does not consume exactly its stored bytes is recorded in an error buffer
 * that decode_to_host checks.  Stored tensors are a device copy. */
#include "decode_plan.h"
#include "runtime.h"
#include "stream_decode.h"

#include <stdio.h>
#include <stdlib.h>

#define PAYLOAD_PAD ECF8_CL_STREAM_PAD
#define ERROR_WORDS ECF8_CL_ERROR_WORDS

struct ecf8_cl_tensor {
    cl_context context;
    cl_device_id device;
    ecf8_dtype dtype;
    ecf8_split split;
    unsigned width;           /* bytes per element */
    uint64_t n_elements;
    size_t decoded_bytes;
    size_t device_bytes;
    uint64_t checksum;
    char name[128];
    cl_mem data;              /* payload + pad + tables, or the stored bytes */
    /* coded tensors */
    ecf8_stream geom;         /* geometry only; pointers cleared */
    uint64_t offsets_at, coded_at, table16_at, table32_at, pairs_at;
    cl_mem error;             /* first failing chunk + 1 (0: none), its bits, its bytes */
    /* By ecf8_cl_decode_kernel: the kernels the plan uses (the portable one
     * made at the first decode that runs it), NULL for the others. */
    cl_kernel kernel[ECF8_CL_DECODE_KERNELS];
    size_t global[ECF8_CL_DECODE_KERNELS], local[ECF8_CL_DECODE_KERNELS];
    bool use[ECF8_CL_DECODE_KERNELS]; /* the plan's choice (portable: always possible) */
    char portable_options[sizeof((ecf8_cl_decode_plan *)0)->options[0]];
    unsigned portable_wg;     /* the plan's work-group size, before the device cap */
    unsigned streams_vw, streams_nsets, units; /* the streams kernel's shape, compute units */
    /* The queues (retained, each once) holding decodes whose error word is
     * unread: the check waits for all of them. */
    cl_command_queue *pending;
    size_t n_pending;
    /* The first chunk of the decodes pending (a row-range decode's kernels
     * count chunks from its first band): pending_c0 while pending_c0_state
     * is 1, 0 none pending, 2 decodes of different first chunks. */
    uint64_t pending_c0;
    int pending_c0_state;
    /* Row ranges (ecf8_cl_enqueue_decode_rows): the 2-D view's rows and the
     * bytes of one row; coded tensors: the lanes kernel's chunks per
     * work-item and whether every run of that many chunks (not only the
     * aligned groups the plan checked) fits its bit positions, the pairs
     * kernel's chunks per work-item. */
    uint64_t rows, row_bytes;
    unsigned lanes_per_item, pairs_nl;
    bool lanes_any_run;
    /* ecf8_cl_tensor_create_async: the upload (NULL once seen complete),
     * which the tensor's own commands wait for, and while creating, how the
     * upload is enqueued (NULL: blocking). */
    cl_event ready;
    struct upload *upload;
};

/* The upload's writes, ordered after the caller's wait list; blocking
 * unless t->upload (defined with the async create, at the end). */
static int upload_write(ecf8_cl_tensor *t, cl_command_queue queue, cl_mem buf, size_t offset,
                        size_t bytes, const void *src, const char *what);
/* Ends the upload: waits for it (blocking), or joins its writes into
 * t->ready, `owned` (host memory the writes read) freed when they are done. */
static int upload_end(ecf8_cl_tensor *t, cl_command_queue queue, int st, void *owned);
/* The caller's wait list plus the tensor's upload while it may run. */
static int ready_wait_list(ecf8_cl_tensor *t, cl_uint *n, const cl_event **list,
                           cl_event **alloc);

/* The arguments every decode kernel takes (DECODE_KERNEL_ARGS in
 * cl/decode_common.cl); only the table differs by kernel. */
static int set_args(ecf8_cl_tensor *t, ecf8_cl_decode_kernel which, cl_mem out, size_t out_offset,
                    uint64_t c0, uint64_t n_chunks, uint64_t rows)
{
    cl_kernel k = t->kernel[which];
    /* The streams kernel: the 16-bit table, which CPUs gather from (half
     * the cache of the 32-bit one) and GPUs copy to local memory. */
    cl_ulong table_at = which == ECF8_CL_DECODE_STREAMS ? t->table16_at
                        : which == ECF8_CL_DECODE_LANES ? t->table32_at
                        : which == ECF8_CL_DECODE_PAIRS ? t->pairs_at
                                                        : t->table16_at;
    /* A range of chunks from c0 (whole bands): the offsets from c0's on
     * (they stay relative to the coded stream) and the range's geometry,
     * as ecf8_stream_band does on the host. */
    cl_ulong a[10] = {t->offsets_at + 8 * c0, t->coded_at, t->geom.coded_bytes, table_at,
                      out_offset, n_chunks, rows, t->geom.cols, t->geom.chunk_rows,
                      t->geom.chunk_cols};
    ECF8_CL_CHECK(clSetKernelArg(k, 0, sizeof(cl_mem), &t->data), "clSetKernelArg(decode)");
    ECF8_CL_CHECK(clSetKernelArg(k, 1, sizeof(cl_mem), &out), "clSetKernelArg(decode)");
    ECF8_CL_CHECK(clSetKernelArg(k, 2, sizeof(cl_mem), &t->error), "clSetKernelArg(decode)");
    for (cl_uint i = 0; i < 10; i++)
        ECF8_CL_CHECK(clSetKernelArg(k, 3 + i, sizeof(cl_ulong), &a[i]), "clSetKernelArg(decode)");
    cl_uint mask = (1u << t->geom.code_bits) - 1;
    ECF8_CL_CHECK(clSetKernelArg(k, 13, sizeof mask, &mask), "clSetKernelArg(decode)");
    return ECF8_OK;
}

/* Creates kernel `which` of t from its program built with `options`, and
 * for the portable kernel its sizes (the work-group capped by what the
 * device runs of it). */
static int make_kernel(ecf8_cl_tensor *t, ecf8_cl_decode_kernel which, const char *options)
{
    cl_program program = NULL;
    int st = ecf8_cl_program_get(t->context, t->device, ecf8_cl_decode_program(which), options,
                                 &program);
    if (st) return st;
    cl_int err;
    const char *function = ecf8_cl_decode_function(which);
    cl_kernel k = clCreateKernel(program, function, &err);
    clReleaseProgram(program);
    if (err != CL_SUCCESS) {
        char call[64];
        snprintf(call, sizeof call, "clCreateKernel(%s)", function);
        return ecf8_cl_fail(err, call);
    }
    if (which == ECF8_CL_DECODE_PORTABLE) {
        size_t wg = t->portable_wg, max_wg = 0;
        if (clGetKernelWorkGroupInfo(k, t->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg,
                                     &max_wg, NULL) == CL_SUCCESS &&
            max_wg > 0 && wg > max_wg)
            wg = max_wg;
        /* A fixed size even for small tensors: PoCL compiles a kernel per
         * distinct local size, idle work-items cost nothing much. */
        t->local[which] = wg;
        t->global[which] = (size_t)ecf8_align_up(t->geom.n_chunks, wg);
    }
    if (which == ECF8_CL_DECODE_STREAMS) {
        /* Work-items loop over the chunks, 32 / (VW x NSETS) per chunk. */
        uint64_t per_chunk = 32 / (t->streams_vw * t->streams_nsets), n = t->geom.n_chunks;
        if (t->streams_vw > 1) {
            /* CPUs: a chunk per work-group of one (8K elements, several
             * microseconds: PoCL's cost per work-group is small beside
             * it, and the threads balance well when another process
             * takes a core; a few work-items per core looping over their
             * shares were no faster). */
            t->local[which] = 1;
            t->global[which] = (size_t)(n * per_chunk);
        } else {
            /* ECF8_STREAMS_WG_CHUNKS chunks per work-group (fewer where the
             * device cannot run that many: any power of two works), enough
             * groups to fill the device several times over, each copying
             * the decode table into local memory once. */
            size_t wg = 32 * ECF8_STREAMS_WG_CHUNKS, max_wg = 0;
            if (clGetKernelWorkGroupInfo(k, t->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg,
                                         &max_wg, NULL) == CL_SUCCESS)
                while (wg > 1 && wg > max_wg) wg /= 2;
            uint64_t groups = (n + ECF8_STREAMS_WG_CHUNKS - 1) / ECF8_STREAMS_WG_CHUNKS;
            uint64_t most = (uint64_t)t->units * 16;
            t->local[which] = wg;
            t->global[which] = (size_t)((groups < most ? groups : most) * 32 * ECF8_STREAMS_WG_CHUNKS);
        }
    }
    t->kernel[which] = k;
    return ECF8_OK;
}

/* Validates, uploads payload and tables, and prepares the kernels. */
static int prepare_coded(ecf8_cl_tensor *t, cl_command_queue queue, const ecf8_tensor_info *info,
                          const ecf8_cl_tuning *tuning)
{
    const ecf8_stream *s = &info->stream;
    int st = ecf8_stream_validate(s);
    if (st) return st;
    ecf8_split_layout l;
    st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    /* The coded stream lies in the payload; so do the chunk offsets of a
     * format 1.0 file, while 1.1 keeps them in the index: then a copy goes
     * after the payload, and the kernels find both by their offsets. */
    const uint8_t *payload = info->payload, *offsets = (const uint8_t *)s->chunk_offsets;
    uint64_t offsets_bytes = (s->n_chunks + 1) * 8;
    bool offsets_inside = payload && offsets >= payload && offsets < payload + info->payload_bytes;
    if (!payload || s->coded < payload)
        return ecf8_fail(ECF8_ERR_CORRUPT, "stream does not point into its payload");
    t->offsets_at = offsets_inside ? (uint64_t)(offsets - payload) : 0;
    t->coded_at = (uint64_t)(s->coded - payload);
    if (t->offsets_at % 8 || t->coded_at % 8 ||
        (offsets_inside && t->offsets_at + offsets_bytes > info->payload_bytes) ||
        t->coded_at + s->coded_bytes > info->payload_bytes)
        return ecf8_fail(ECF8_ERR_CORRUPT, "payload layout inconsistent with its stream");

    ecf8_cl_device_caps caps;
    st = ecf8_cl_device_caps_get(t->device, &caps);
    if (st) return st;
    ecf8_cl_decode_plan plan;
    st = ecf8_cl_decode_plan_make(&caps, s, t->width, tuning, &plan);
    if (st) return st;

    /* Device buffer: payload | zero pad | [offsets] | uint16 table | uint32 table |
     * [pair table] | pad. */
    size_t entries = (size_t)1 << s->code_bits;
    uint64_t after = ecf8_align_up(info->payload_bytes, 64) + PAYLOAD_PAD;
    if (!offsets_inside) {
        t->offsets_at = after;
        after = ecf8_align_up(after + offsets_bytes, 64);
    }
    t->table16_at = after;
    t->table32_at = ecf8_align_up(t->table16_at + entries * 2, 64);
    after = t->table32_at + entries * 4;
    size_t pair_entries = plan.pairs ? (size_t)1 << ECF8_PAIR_BITS : 0;
    if (plan.pairs) {
        t->pairs_at = ecf8_align_up(after, 64);
        after = t->pairs_at + pair_entries * 4;
    }
    size_t tail = (size_t)(after - info->payload_bytes) + PAYLOAD_PAD;
    t->device_bytes = (size_t)info->payload_bytes + tail;
    uint8_t *host_tail = calloc(1, tail);
    if (!host_tail) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!offsets_inside) memcpy(host_tail + (t->offsets_at - info->payload_bytes), offsets, offsets_bytes);
    uint16_t table[1u << ECF8_MAX_CODE_BITS];
    st = ecf8_decode_table_build(s->lengths, s->n_symbols, s->code_bits, table);
    for (size_t i = 0; !st && i < entries; i++) {
        memcpy(host_tail + (t->table16_at - info->payload_bytes) + 2 * i, &table[i], 2);
        ecf8_store_le32(host_tail + (t->table32_at - info->payload_bytes) + 4 * i, table[i]);
    }
    if (!st && plan.pairs) {
        uint32_t *pairs = malloc(pair_entries * 4);
        st = pairs ? ecf8_pair_table_build(s, pairs) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        /* The kernel's layout (cl/decode_pairs.cl): bits consumed in 0-5, output
         * bytes in 8-23, the rest in place. */
        for (size_t i = 0; !st && i < pair_entries; i++)
            ecf8_store_le32(host_tail + (t->pairs_at - info->payload_bytes) + 4 * i,
                            (pairs[i] & 0xff000000u) | (pairs[i] & 0xffffu) << 8 |
                                (pairs[i] >> 16 & 63));
        free(pairs);
    }

    cl_int err = CL_SUCCESS;
    if (!st) {
        t->data = clCreateBuffer(t->context, CL_MEM_READ_ONLY, t->device_bytes, NULL, &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(payload)");
    }
    if (!st) {
        t->error = clCreateBuffer(t->context, CL_MEM_READ_WRITE, ERROR_WORDS * sizeof(cl_uint), NULL,
                                  &err);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(error word)");
    }
    static const cl_uint zero[ERROR_WORDS] = {0};
    if (!st) st = upload_write(t, queue, t->data, 0, info->payload_bytes, payload, "payload");
    if (!st) st = upload_write(t, queue, t->data, info->payload_bytes, tail, host_tail,
                               "decode tables");
    if (!st) st = upload_write(t, queue, t->error, 0, sizeof zero, zero, "error word");
    /* Blocking, or with the async create once the writes are done: the
     * payload may live in a mapping the caller closes next, and host_tail
     * is freed then; after a failed enqueue too, the writes already queued
     * must end first. */
    st = upload_end(t, queue, st, host_tail);
    if (st) return st;

    t->geom = *s;
    t->geom.chunk_offsets = NULL;
    t->geom.coded = NULL;
    t->rows = s->rows;
    t->row_bytes = s->cols * t->width;
    t->pairs_nl = plan.nl;
    if (plan.lanes) {
        /* The plan checked the groups from multiples of the lanes; a row
         * range starts anywhere: every run of that many chunks. */
        uint64_t lanes = (uint64_t)plan.vw * plan.nsets;
        uint64_t runaway = (s->chunk_rows * s->chunk_cols * (s->code_bits + l.raw_bits) + 7) / 8 + 8;
        t->lanes_per_item = (unsigned)lanes;
        t->lanes_any_run = true;
        for (uint64_t c = 0; c < s->n_chunks && t->lanes_any_run; c++) {
            uint64_t end = c + lanes < s->n_chunks ? c + lanes : s->n_chunks;
            if (s->chunk_offsets[end] - s->chunk_offsets[c] + runaway >= (1u << 28))
                t->lanes_any_run = false;
        }
    }
    t->use[ECF8_CL_DECODE_LANES] = plan.lanes;
    t->use[ECF8_CL_DECODE_PAIRS] = plan.pairs;
    t->use[ECF8_CL_DECODE_COOP] = plan.coop;
    t->use[ECF8_CL_DECODE_STREAMS] = plan.streams;
    t->streams_vw = plan.streams_vw;
    t->streams_nsets = plan.streams_nsets;
    t->units = caps.compute_units ? caps.compute_units : 1;
    memcpy(t->portable_options, plan.options[ECF8_CL_DECODE_PORTABLE], sizeof t->portable_options);
    t->portable_wg = plan.wg;
    /* One work-item per group: on a CPU a work-item is already a thread's
     * worth of vector work. */
    if (plan.lanes) {
        t->local[ECF8_CL_DECODE_LANES] = 1;
        t->global[ECF8_CL_DECODE_LANES] =
            (size_t)((s->n_chunks + plan.vw * plan.nsets - 1) / (plan.vw * plan.nsets));
    }
    /* One work-item per group of NL chunks, one per work-group like the
     * lanes kernel. */
    t->local[ECF8_CL_DECODE_PAIRS] = 1;
    if (plan.nl) t->global[ECF8_CL_DECODE_PAIRS] = (size_t)((s->n_chunks + plan.nl - 1) / plan.nl);
    /* Enough groups to fill the device several times over; each loops
     * over its chunks and loads the decode table once. */
    uint64_t groups = (uint64_t)(caps.compute_units ? caps.compute_units : 1) * 16;
    if (groups > s->n_chunks) groups = s->n_chunks ? s->n_chunks : 1;
    t->local[ECF8_CL_DECODE_COOP] = ECF8_COOP_WG;
    t->global[ECF8_CL_DECODE_COOP] = (size_t)groups * ECF8_COOP_WG;

    /* The planned kernels now, so that a build failure shows at create;
     * the portable one only where the plan chose it. */
    for (int k = ECF8_CL_DECODE_COOP; !st && k < ECF8_CL_DECODE_KERNELS; k++)
        if (t->use[k]) st = make_kernel(t, (ecf8_cl_decode_kernel)k, plan.options[k]);
    if (st) return st;
    if (t->kernel[ECF8_CL_DECODE_COOP]) {
        /* A device that cannot run a work-group of ECF8_COOP_WG keeps the
         * portable kernel. */
        size_t max_coop = 0;
        if (clGetKernelWorkGroupInfo(t->kernel[ECF8_CL_DECODE_COOP], t->device,
                                     CL_KERNEL_WORK_GROUP_SIZE, sizeof max_coop, &max_coop,
                                     NULL) != CL_SUCCESS ||
            max_coop < ECF8_COOP_WG) {
            clReleaseKernel(t->kernel[ECF8_CL_DECODE_COOP]);
            t->kernel[ECF8_CL_DECODE_COOP] = NULL;
            t->use[ECF8_CL_DECODE_COOP] = false;
        }
    }
    t->use[ECF8_CL_DECODE_PORTABLE] = !t->use[ECF8_CL_DECODE_LANES] &&
                                      !t->use[ECF8_CL_DECODE_PAIRS] && !t->use[ECF8_CL_DECODE_COOP] &&
                                      !t->use[ECF8_CL_DECODE_STREAMS];
    if (t->use[ECF8_CL_DECODE_PORTABLE]) st = make_kernel(t, ECF8_CL_DECODE_PORTABLE, t->portable_options);
    return st;
}


int ecf8_cl_tensor_create(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_tensor_info *info, ecf8_cl_tensor **out)
{
    return ecf8_cl_tensor_create_ex(context, device, queue, info, NULL, out);
}

static int tensor_create(cl_context context, cl_device_id device, cl_command_queue queue,
                         const ecf8_tensor_info *info, const ecf8_cl_tuning *tuning_in,
                         struct upload *upload, ecf8_cl_tensor **out)
{
    if (!context || !device || !queue || !info || !out)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor create: NULL argument");
    *out = NULL;
    ecf8_cl_tuning tuning;
    int tst = ecf8_cl_tuning_read(tuning_in, &tuning);
    if (tst) return tst;
    unsigned width = ecf8_dtype_size(info->dtype);
    if (info->split == ECF8_SPLIT_STORED && info->source_bytes && !info->payload)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': its payload is not in memory (a file opened "
                         "with ecf8_file_open_index)", info->name ? info->name : "");
    if (info->split != ECF8_SPLIT_STORED && width == 0)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': coded tensor of an uncoded dtype",
                         info->name ? info->name : "");
    ecf8_cl_tensor *t = calloc(1, sizeof *t);
    if (!t) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    t->context = context;
    t->device = device;
    clRetainContext(context);
    t->dtype = info->dtype;
    t->split = info->split;
    t->width = width;
    t->n_elements = info->n_elements;
    t->checksum = info->checksum;
    t->upload = upload;
    snprintf(t->name, sizeof t->name, "%s", info->name ? info->name : "");
    int st = ECF8_OK;
    if (info->split == ECF8_SPLIT_STORED) {
        t->decoded_bytes = (size_t)info->source_bytes;
        t->device_bytes = t->decoded_bytes;
        /* Rows as the 2-D view of a coded stream counts them: shape[0],
         * one row for 0-D and 1-D tensors. */
        t->rows = info->ndim >= 2 ? info->shape[0] : 1;
        t->row_bytes = t->rows ? t->decoded_bytes / t->rows : 0;
        if (t->rows && t->row_bytes * t->rows != t->decoded_bytes) t->rows = t->row_bytes = 0;
        if (info->payload_bytes != info->source_bytes || (!info->payload && info->source_bytes))
            st = ecf8_fail(ECF8_ERR_CORRUPT, "stored payload of %llu bytes for %llu source bytes",
                           (unsigned long long)info->payload_bytes,
                           (unsigned long long)info->source_bytes);
        cl_int err = CL_SUCCESS;
        if (!st && t->device_bytes) {
            t->data = clCreateBuffer(context, CL_MEM_READ_ONLY, t->device_bytes, NULL, &err);
            if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(stored)");
            else st = upload_write(t, queue, t->data, 0, t->device_bytes, info->payload, "stored");
        }
        st = upload_end(t, queue, st, NULL);
    } else {
        uint64_t bytes;
        if (!ecf8_mul_u64(info->stream.n_elements, width, &bytes) || bytes != info->source_bytes ||
            bytes > SIZE_MAX)
            st = ecf8_fail(ECF8_ERR_CORRUPT, "stream of %llu elements for %llu source bytes",
                           (unsigned long long)info->stream.n_elements,
                           (unsigned long long)info->source_bytes);
        t->decoded_bytes = (size_t)info->source_bytes;
        if (!st) st = prepare_coded(t, queue, info, &tuning);
    }
    if (st) {
        if (t->name[0]) st = ecf8_fail_context(st, "tensor '%s'", t->name);
        ecf8_cl_tensor_free(t);
        return st;
    }
    t->upload = NULL;
    *out = t;
    return ECF8_OK;
}

int ecf8_cl_tensor_create_ex(cl_context context, cl_device_id device, cl_command_queue queue,
                             const ecf8_tensor_info *info, const ecf8_cl_tuning *tuning_in,
                             ecf8_cl_tensor **out)
{
    return tensor_create(context, device, queue, info, tuning_in, NULL, out);
}

/* The queues with decodes whose error word is unread. */
static void pending_release(ecf8_cl_tensor *t)
{
    for (size_t i = 0; i < t->n_pending; i++) clReleaseCommandQueue(t->pending[i]);
    free(t->pending);
    t->pending = NULL;
    t->n_pending = 0;
    t->pending_c0_state = 0;
}

static int pending_add(ecf8_cl_tensor *t, cl_command_queue queue, uint64_t c0)
{
    if (t->pending_c0_state == 0 || (t->pending_c0_state == 1 && t->pending_c0 == c0)) {
        t->pending_c0 = c0;
        t->pending_c0_state = 1;
    } else {
        t->pending_c0_state = 2;
    }
    for (size_t i = 0; i < t->n_pending; i++)
        if (t->pending[i] == queue) return ECF8_OK;
    cl_command_queue *p = realloc(t->pending, (t->n_pending + 1) * sizeof *p);
    if (!p) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    t->pending = p;
    clRetainCommandQueue(queue);
    p[t->n_pending++] = queue;
    return ECF8_OK;
}

void ecf8_cl_tensor_free(ecf8_cl_tensor *t)
{
    if (!t) return;
    for (int k = 0; k < ECF8_CL_DECODE_KERNELS; k++)
        if (t->kernel[k]) clReleaseKernel(t->kernel[k]);
    pending_release(t);
    if (t->ready) {
        /* The upload may still read the caller's payload: done when this returns. */
        clWaitForEvents(1, &t->ready);
        clReleaseEvent(t->ready);
    }
    if (t->data) clReleaseMemObject(t->data);
    if (t->error) clReleaseMemObject(t->error);
    if (t->context) clReleaseContext(t->context);
    free(t);
}

size_t ecf8_cl_tensor_decoded_bytes(const ecf8_cl_tensor *t) { return t ? t->decoded_bytes : 0; }
size_t ecf8_cl_tensor_device_bytes(const ecf8_cl_tensor *t) { return t ? t->device_bytes : 0; }

/* The kernel a decode to `out_offset` runs. */
static ecf8_cl_decode_kernel pick_kernel(const ecf8_cl_tensor *t, size_t out_offset)
{
    if (t->use[ECF8_CL_DECODE_STREAMS]) return ECF8_CL_DECODE_STREAMS; /* any offset */
    if (t->use[ECF8_CL_DECODE_COOP]) return ECF8_CL_DECODE_COOP;
    if (t->use[ECF8_CL_DECODE_PAIRS]) return ECF8_CL_DECODE_PAIRS;
    if (t->use[ECF8_CL_DECODE_LANES] && out_offset % 4 == 0) return ECF8_CL_DECODE_LANES;
    return ECF8_CL_DECODE_PORTABLE;
}

const char *ecf8_cl_tensor_kernel(const ecf8_cl_tensor *t, size_t out_offset)
{
    if (t->split == ECF8_SPLIT_STORED) return "copy";
    return ecf8_cl_decode_kernel_name(pick_kernel(t, out_offset));
}

static int decode_enqueue(ecf8_cl_tensor *t, cl_command_queue queue, cl_mem out,
                          size_t out_offset, cl_uint num_wait_events,
                          const cl_event *wait_events, cl_event *out_event);

int ecf8_cl_enqueue_decode(ecf8_cl_tensor *t, cl_command_queue queue, cl_mem out,
                           size_t out_offset, cl_uint num_wait_events,
                           const cl_event *wait_events, cl_event *out_event)
{
    if (!t || !queue || !out) return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: NULL argument");
    if ((num_wait_events > 0) != (wait_events != NULL))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: wait list and its count disagree");
    size_t out_size = 0;
    ECF8_CL_CHECK(clGetMemObjectInfo(out, CL_MEM_SIZE, sizeof out_size, &out_size, NULL),
                  "clGetMemObjectInfo(CL_MEM_SIZE)");
    if (out_offset > out_size || out_size - out_offset < t->decoded_bytes)
        return ecf8_fail(ECF8_ERR_ARGUMENT,
                         "decode: output of %zu bytes at offset %zu cannot hold %zu bytes", out_size,
                         out_offset, t->decoded_bytes);
    cl_event *with_ready = NULL;
    int rst = ready_wait_list(t, &num_wait_events, &wait_events, &with_ready);
    if (rst) return rst;
    int st = decode_enqueue(t, queue, out, out_offset, num_wait_events, wait_events, out_event);
    free(with_ready);
    return st;
}

/* ---- row ranges ----------------------------------------------------------- */
uint64_t ecf8_cl_tensor_rows(const ecf8_cl_tensor *t) { return t ? t->rows : 0; }

/* Rows per band: a coded tensor's chunk_rows (chunks are row-aligned), one
 * row for a stored tensor. */
static uint64_t band_rows_of(const ecf8_cl_tensor *t)
{
    return t->split == ECF8_SPLIT_STORED ? 1 : t->geom.chunk_rows;
}

int ecf8_cl_tensor_row_bands(const ecf8_cl_tensor *t, uint64_t first_row, uint64_t n_rows,
                             uint64_t *band_first_row, uint64_t *band_n_rows)
{
    if (!t || !band_first_row || !band_n_rows)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "row bands: NULL argument");
    if (n_rows == 0 || first_row >= t->rows || n_rows > t->rows - first_row)
        return ecf8_fail(ECF8_ERR_ARGUMENT,
                         "tensor '%s': rows %llu + %llu out of its %llu rows", t->name,
                         (unsigned long long)first_row, (unsigned long long)n_rows,
                         (unsigned long long)t->rows);
    uint64_t br = band_rows_of(t), r0 = first_row / br * br;
    uint64_t r1 = ecf8_ceil_div(first_row + n_rows, br) * br;
    if (r1 > t->rows) r1 = t->rows;
    *band_first_row = r0;
    *band_n_rows = r1 - r0;
    return ECF8_OK;
}

/* Work-items of kernel k for n chunks, as make_kernel and prepare_coded
 * size them for the whole tensor. */
static size_t range_global(const ecf8_cl_tensor *t, ecf8_cl_decode_kernel k, uint64_t n)
{
    switch (k) {
    case ECF8_CL_DECODE_PORTABLE:
        return (size_t)ecf8_align_up(n, t->local[k]);
    case ECF8_CL_DECODE_COOP: {
        uint64_t groups = t->global[k] / ECF8_COOP_WG;
        return (size_t)((groups < n ? groups : n) * ECF8_COOP_WG);
    }
    case ECF8_CL_DECODE_LANES:
        return (size_t)ecf8_ceil_div(n, t->lanes_per_item);
    case ECF8_CL_DECODE_PAIRS:
        return (size_t)ecf8_ceil_div(n, t->pairs_nl);
    case ECF8_CL_DECODE_STREAMS: {
        uint64_t per_chunk = 32 / (t->streams_vw * t->streams_nsets);
        if (t->streams_vw > 1) return (size_t)(n * per_chunk);
        uint64_t most = (uint64_t)t->units * 16, groups = ecf8_ceil_div(n, ECF8_STREAMS_WG_CHUNKS);
        return (size_t)((groups < most ? groups : most) * 32 * ECF8_STREAMS_WG_CHUNKS);
    }
    default:
        return 0;
    }
}

int ecf8_cl_enqueue_decode_rows(ecf8_cl_tensor *t, cl_command_queue queue, uint64_t first_row,
                                uint64_t n_rows, cl_mem out, size_t out_offset,
                                cl_uint num_wait_events, const cl_event *wait_events,
                                cl_event *out_event)
{
    if (!t || !queue || !out) return ecf8_fail(ECF8_ERR_ARGUMENT, "decode rows: NULL argument");
    if ((num_wait_events > 0) != (wait_events != NULL))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode rows: wait list and its count disagree");
    uint64_t r0, nr;
    int st = ecf8_cl_tensor_row_bands(t, first_row, n_rows, &r0, &nr);
    if (st) return st;
    if (t->split == ECF8_SPLIT_STORED) r0 = first_row, nr = n_rows; /* exactly the rows */
    size_t bytes = (size_t)(nr * t->row_bytes), out_size = 0;
    ECF8_CL_CHECK(clGetMemObjectInfo(out, CL_MEM_SIZE, sizeof out_size, &out_size, NULL),
                  "clGetMemObjectInfo(CL_MEM_SIZE)");
    if (out_offset > out_size || out_size - out_offset < bytes)
        return ecf8_fail(ECF8_ERR_ARGUMENT,
                         "decode rows: output of %zu bytes at offset %zu cannot hold %zu bytes",
                         out_size, out_offset, bytes);
    cl_event *with_ready = NULL;
    st = ready_wait_list(t, &num_wait_events, &wait_events, &with_ready);
    if (st) return st;
    cl_int err;
    if (bytes == 0) { /* rows of no columns: nothing to write, still an ordered event */
        err = clEnqueueMarkerWithWaitList(queue, num_wait_events, wait_events, out_event);
        free(with_ready);
        return err == CL_SUCCESS ? ECF8_OK : ecf8_cl_fail(err, "clEnqueueMarkerWithWaitList");
    }
    if (t->split == ECF8_SPLIT_STORED) {
        err = clEnqueueCopyBuffer(queue, t->data, out, (size_t)(r0 * t->row_bytes), out_offset,
                                  bytes, num_wait_events, wait_events, out_event);
        free(with_ready);
        return err == CL_SUCCESS ? ECF8_OK : ecf8_cl_fail(err, "clEnqueueCopyBuffer(stored rows)");
    }
    /* Bands [b0, b1): chunks [b0 * segs, b1 * segs). */
    uint64_t segs = ecf8_ceil_div(t->geom.cols, t->geom.chunk_cols);
    uint64_t c0 = r0 / t->geom.chunk_rows * segs;
    uint64_t n = ecf8_ceil_div(nr, t->geom.chunk_rows) * segs;
    ecf8_cl_decode_kernel k = pick_kernel(t, out_offset);
    /* A run of lanes-kernel chunks that may not fit its bit positions: the
     * portable kernel (bit-identical). */
    if (k == ECF8_CL_DECODE_LANES && !t->lanes_any_run) k = ECF8_CL_DECODE_PORTABLE;
    st = t->kernel[k] ? ECF8_OK : make_kernel(t, k, t->portable_options);
    if (!st) st = set_args(t, k, out, out_offset, c0, n, nr);
    if (!st) st = pending_add(t, queue, c0); /* before the decode exists, so none goes unchecked */
    if (!st) {
        size_t global = range_global(t, k, n);
        err = clEnqueueNDRangeKernel(queue, t->kernel[k], 1, NULL, &global, &t->local[k],
                                     num_wait_events, wait_events, out_event);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueNDRangeKernel(ecf8_decode rows)");
    }
    free(with_ready);
    return st;
}

static int decode_enqueue(ecf8_cl_tensor *t, cl_command_queue queue, cl_mem out,
                          size_t out_offset, cl_uint num_wait_events,
                          const cl_event *wait_events, cl_event *out_event)
{
    cl_int err;
    if (t->split == ECF8_SPLIT_STORED) {
        if (t->decoded_bytes == 0) {
            /* Nothing to copy; still give the caller an ordered event. */
            err = clEnqueueMarkerWithWaitList(queue, num_wait_events, wait_events, out_event);
            return err == CL_SUCCESS ? ECF8_OK : ecf8_cl_fail(err, "clEnqueueMarkerWithWaitList");
        }
        err = clEnqueueCopyBuffer(queue, t->data, out, 0, out_offset, t->decoded_bytes,
                                  num_wait_events, wait_events, out_event);
        return err == CL_SUCCESS ? ECF8_OK : ecf8_cl_fail(err, "clEnqueueCopyBuffer(stored)");
    }
    ecf8_cl_decode_kernel k = pick_kernel(t, out_offset);
    /* The portable kernel of a tensor planned for another: built now, at
     * its first decode to an unaligned offset. */
    int st = t->kernel[k] ? ECF8_OK : make_kernel(t, k, t->portable_options);
    if (!st) st = set_args(t, k, out, out_offset, 0, t->geom.n_chunks, t->geom.rows);
    if (!st) st = pending_add(t, queue, 0); /* before the decode exists, so none goes unchecked */
    if (st) return st;
    err = clEnqueueNDRangeKernel(queue, t->kernel[k], 1, NULL, &t->global[k], &t->local[k],
                                 num_wait_events, wait_events, out_event);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clEnqueueNDRangeKernel(ecf8_decode)");
    return ECF8_OK;
}

/* Reads and clears the error words once the queue has run the decodes. */
static int check_error_word(ecf8_cl_tensor *t, cl_command_queue queue)
{
    if (!t->error || !t->n_pending) return ECF8_OK;
    cl_uint word[ERROR_WORDS] = {0};
    static const cl_uint zero[ERROR_WORDS] = {0};
    /* The decodes ran on the pending queues, which may not include `queue`,
     * and on an out-of-order queue the read below could overtake them:
     * wait for them first. */
    cl_int err = CL_SUCCESS;
    for (size_t i = 0; i < t->n_pending && err == CL_SUCCESS; i++) err = clFinish(t->pending[i]);
    /* The kernels count chunks from their range's first: known when every
     * decode checked here started at the same chunk. */
    uint64_t c0 = t->pending_c0_state == 1 ? t->pending_c0 : 0;
    const char *which =
        t->pending_c0_state == 2 ? " (counted from the first chunk of a row-range decode)" : "";
    pending_release(t);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clFinish(decode queue)");
    ECF8_CL_CHECK(clEnqueueReadBuffer(queue, t->error, CL_TRUE, 0, sizeof word, word, 0, NULL, NULL),
                  "clEnqueueReadBuffer(error word)");
    if (word[0] == 0) return ECF8_OK;
    ECF8_CL_CHECK(clEnqueueWriteBuffer(queue, t->error, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL),
                  "clEnqueueWriteBuffer(error word)");
    return ecf8_cl_error_record_fail(t->name, c0 + word[0] - 1, which, word);
}

int ecf8_cl_error_record_fail(const char *name, uint64_t chunk, const char *which,
                              const cl_uint word[ECF8_CL_ERROR_WORDS])
{
    if (word[4])
        return ecf8_fail(ECF8_ERR_CORRUPT,
                         "tensor '%s': chunk %llu%s lane %u decodes to %u bits, its lane table says %u",
                         name, (unsigned long long)chunk, which, word[4] - 1, word[1], word[3]);
    return ecf8_fail(ECF8_ERR_CORRUPT,
                     "tensor '%s': chunk %llu%s decodes to %llu bits, its stream holds %u bytes", name,
                     (unsigned long long)chunk, which,
                     (unsigned long long)word[1] | (unsigned long long)word[2] << 32, word[3]);
}

int ecf8_cl_tensor_check(ecf8_cl_tensor *t, cl_command_queue queue)
{
    if (!t || !queue) return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor check: NULL argument");
    return check_error_word(t, queue);
}

int ecf8_cl_decode_to_host(ecf8_cl_tensor *t, cl_command_queue queue, void *out, size_t out_bytes)
{
    if (!t || !queue || (!out && t->decoded_bytes))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode: NULL argument");
    if (out_bytes < t->decoded_bytes)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': output of %zu bytes, need %zu", t->name,
                         out_bytes, t->decoded_bytes);
    int st = check_error_word(t, queue); /* an earlier enqueued decode */
    if (st) return st;
    if (t->decoded_bytes == 0) return ECF8_OK;
    cl_int err;
    if (t->split == ECF8_SPLIT_STORED) {
        cl_uint n_wait = 0;
        const cl_event *wait = NULL;
        cl_event *with_ready = NULL;
        st = ready_wait_list(t, &n_wait, &wait, &with_ready);
        if (st) return st;
        err = clEnqueueReadBuffer(queue, t->data, CL_TRUE, 0, t->decoded_bytes, out, n_wait, wait,
                                  NULL);
        free(with_ready);
        if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clEnqueueReadBuffer(stored)");
    } else {
        /* The host memory itself as the output buffer: no copy on devices
         * that share it (CPUs), a map/unmap transfer elsewhere. */
        cl_mem buf = clCreateBuffer(t->context, CL_MEM_WRITE_ONLY | CL_MEM_USE_HOST_PTR,
                                    t->decoded_bytes, out, &err);
        if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateBuffer(host output)");
        cl_event decoded = NULL; /* the map waits for it: the queue may be out of order */
        st = ecf8_cl_enqueue_decode(t, queue, buf, 0, 0, NULL, &decoded);
        void *p = NULL;
        if (!st) {
            p = clEnqueueMapBuffer(queue, buf, CL_TRUE, CL_MAP_READ, 0, t->decoded_bytes, 1, &decoded,
                                   NULL, &err);
            if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueMapBuffer(host output)");
        }
        /* The kernel writes the caller's memory: it must be done before
         * this returns, whatever failed. */
        if (decoded && !p) clWaitForEvents(1, &decoded);
        if (decoded) clReleaseEvent(decoded);
        if (p) {
            if (p != out) memcpy(out, p, t->decoded_bytes);
            clEnqueueUnmapMemObject(queue, buf, p, 0, NULL, NULL);
        }
        clReleaseMemObject(buf);
        if (!st) st = check_error_word(t, queue);
        if (st) return st;
    }
    if (ecf8_hash64(out, t->decoded_bytes) != t->checksum)
        return ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t->name);
    return ECF8_OK;
}

/* ---- whole files ----------------------------------------------------------- */
/* Tensors are decoded one at a time, in file order, each read back and
 * checked against its checksum.  A run of small lane-stream tensors (the
 * norms, biases and small projections of a model, or a file of thousands
 * of them) is decoded ahead by one ecf8_cl_batch instead: one upload, one
 * enqueue, one read-back, where a launch per tensor costs more than its
 * decode (ecf8-bench-decode's "one enqueue" line measures the two). */
#define AHEAD_TENSOR_BYTES (1u << 20) /* "small" */
#define AHEAD_BYTES (32u << 20)       /* decoded bytes held at once */
#define AHEAD_TENSORS 4096

typedef struct device_decoder {
    cl_context context;
    cl_device_id device;
    cl_command_queue queue;
    const ecf8_cl_tuning *tuning;
    /* The run decoded ahead: tensors first .. first + count - 1 of the
     * file, tensor first + k at host + at[k] (SIZE_MAX: stored, not in it). */
    size_t first, count;
    size_t *at;
    uint8_t *host;
} device_decoder;

static bool decodes_ahead(const ecf8_tensor_info *t)
{
    return t->split != ECF8_SPLIT_STORED && t->stream.stream_layout == ECF8_STREAM_LAYOUT_LANES &&
           t->stream.coded && t->source_bytes <= AHEAD_TENSOR_BYTES;
}

static void ahead_clear(device_decoder *d)
{
    free(d->at);
    free(d->host);
    d->at = NULL, d->host = NULL, d->first = d->count = 0;
}

/* Decodes the run of small lane-stream tensors from `index` on (stored
 * tensors between them are passed over) into d's host buffer; leaves
 * count 0 where the run holds fewer than two. */
static int decode_ahead(device_decoder *d, const ecf8_file *f, size_t index)
{
    ahead_clear(d);
    size_t nt = ecf8_file_tensor_count(f), cap = nt - index < AHEAD_TENSORS ? nt - index : AHEAD_TENSORS;
    ecf8_tensor_info *infos = malloc(cap * sizeof *infos);
    const ecf8_tensor_info **ptrs = malloc(cap * sizeof *ptrs);
    size_t *offs = malloc(cap * sizeof *offs);
    d->at = malloc(cap * sizeof *d->at);
    int st = infos && ptrs && offs && d->at ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    size_t n = 0, k = 0, total = 0;
    for (; k < cap && !st; k++) {
        ecf8_tensor_info *t = &infos[n];
        if ((st = ecf8_file_tensor(f, index + k, t))) break;
        if (t->split == ECF8_SPLIT_STORED) {
            d->at[k] = SIZE_MAX;
            continue;
        }
        if (!decodes_ahead(t) || total + t->source_bytes > AHEAD_BYTES) break;
        d->at[k] = offs[n] = total;
        total += (size_t)t->source_bytes;
        ptrs[n] = t, n++;
    }
    ecf8_cl_batch *b = NULL;
    cl_mem out = NULL;
    cl_int err = CL_SUCCESS;
    if (!st && n >= 2) {
        st = ecf8_cl_batch_create(d->context, d->device, d->queue, ptrs, n, d->tuning, &b);
        if (!st && !(d->host = malloc(total))) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        if (!st) {
            out = clCreateBuffer(d->context, CL_MEM_WRITE_ONLY, total, NULL, &err);
            if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clCreateBuffer(decode ahead)");
        }
        if (!st) st = ecf8_cl_enqueue_decode_batch(b, d->queue, out, offs, 0, NULL, NULL);
        if (!st) st = ecf8_cl_batch_check(b, d->queue);
        if (!st && (err = clEnqueueReadBuffer(d->queue, out, CL_TRUE, 0, total, d->host, 0, NULL, NULL)))
            st = ecf8_cl_fail(err, "clEnqueueReadBuffer(decode ahead)");
        if (!st) d->first = index, d->count = k;
    }
    if (out) clReleaseMemObject(out);
    ecf8_cl_batch_free(b);
    free(infos);
    free(ptrs);
    free(offs);
    if (st || !d->count) ahead_clear(d);
    return st;
}

/* Tensor `index` of f decoded on the device into out, checksum checked. */
static int decode_on_device(void *ctx, const ecf8_file *f, size_t index, void *out, size_t out_bytes)
{
    device_decoder *d = ctx;
    ecf8_tensor_info t;
    int st = ecf8_file_tensor(f, index, &t);
    if (st) return st;
    if (!(d->count && index >= d->first && index - d->first < d->count) && decodes_ahead(&t))
        st = decode_ahead(d, f, index);
    if (st) return st;
    if (d->count && index >= d->first && index - d->first < d->count && d->at[index - d->first] != SIZE_MAX) {
        if (out_bytes < t.source_bytes)
            return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor '%s': output of %zu bytes, need %llu", t.name,
                             out_bytes, (unsigned long long)t.source_bytes);
        memcpy(out, d->host + d->at[index - d->first], (size_t)t.source_bytes);
        if (ecf8_hash64(out, (size_t)t.source_bytes) != t.checksum)
            return ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t.name);
        return ECF8_OK;
    }
    ecf8_cl_tensor *ct = NULL;
    st = ecf8_cl_tensor_create_ex(d->context, d->device, d->queue, &t, d->tuning, &ct);
    if (!st) st = ecf8_cl_decode_to_host(ct, d->queue, out, out_bytes);
    ecf8_cl_tensor_free(ct);
    return st;
}

int ecf8_cl_decompress_path(cl_context context, cl_device_id device, cl_command_queue queue,
                            const char *in_path, const char *out_path,
                            const ecf8_decode_options *options)
{
    return ecf8_cl_decompress_path_ex(context, device, queue, in_path, out_path, options, NULL);
}

int ecf8_cl_decompress_path_ex(cl_context context, cl_device_id device, cl_command_queue queue,
                               const char *in_path, const char *out_path,
                               const ecf8_decode_options *options, const ecf8_cl_tuning *tuning_in)
{
    if (!context || !device || !queue || !in_path || !out_path)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decompress: NULL argument");
    ecf8_cl_tuning tuning;
    int st = ecf8_cl_tuning_read(tuning_in, &tuning);
    if (st) return st;
    device_decoder d = {context, device, queue, &tuning, 0, 0, NULL, NULL};
    st = ecf8_decompress_path_with(in_path, out_path, options, decode_on_device, &d);
    ahead_clear(&d);
    return st;
}

/* ---- non-blocking create ----------------------------------------------------- */
struct upload {
    cl_uint n_wait;
    const cl_event *wait;
    cl_event ev[3]; /* payload, tables, error word (stored: one) */
    cl_uint n_ev;
};

static int upload_write(ecf8_cl_tensor *t, cl_command_queue queue, cl_mem buf, size_t offset,
                        size_t bytes, const void *src, const char *what)
{
    struct upload *u = t->upload;
    cl_int err = u ? clEnqueueWriteBuffer(queue, buf, CL_FALSE, offset, bytes, src, u->n_wait,
                                          u->wait, &u->ev[u->n_ev])
                   : clEnqueueWriteBuffer(queue, buf, CL_FALSE, offset, bytes, src, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char call[64];
        snprintf(call, sizeof call, "clEnqueueWriteBuffer(%s)", what);
        return ecf8_cl_fail(err, call);
    }
    if (u) u->n_ev++;
    return ECF8_OK;
}

static void CL_CALLBACK free_when_done(cl_event event, cl_int status, void *owned)
{
    (void)event;
    (void)status;
    free(owned);
}

static int upload_end(ecf8_cl_tensor *t, cl_command_queue queue, int st, void *owned)
{
    struct upload *u = t->upload;
    cl_int err;
    if (!u) {
        err = clFinish(queue);
        if (!st && err != CL_SUCCESS) st = ecf8_cl_fail(err, "clFinish(upload)");
        free(owned);
        return st;
    }
    if (!st) {
        /* One event for the whole upload (a stored tensor of 0 bytes: a
         * marker after the caller's wait list). */
        err = u->n_ev ? clEnqueueMarkerWithWaitList(queue, u->n_ev, u->ev, &t->ready)
                      : clEnqueueMarkerWithWaitList(queue, u->n_wait, u->wait, &t->ready);
        if (err != CL_SUCCESS) st = ecf8_cl_fail(err, "clEnqueueMarkerWithWaitList(upload)");
    }
    if (!st && owned && clSetEventCallback(t->ready, CL_COMPLETE, free_when_done, owned) == CL_SUCCESS)
        owned = NULL;
    /* After a failure, and where no callback frees `owned`, the writes
     * already queued must end first. */
    if ((st || owned) && u->n_ev) clWaitForEvents(u->n_ev, u->ev);
    for (cl_uint i = 0; i < u->n_ev; i++) clReleaseEvent(u->ev[i]);
    u->n_ev = 0;
    free(owned);
    return st;
}

static int ready_wait_list(ecf8_cl_tensor *t, cl_uint *n, const cl_event **list, cl_event **alloc)
{
    *alloc = NULL;
    if (!t->ready) return ECF8_OK;
    cl_int status = CL_QUEUED;
    ECF8_CL_CHECK(clGetEventInfo(t->ready, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                                 &status, NULL),
                  "clGetEventInfo(upload)");
    if (status < 0) return ecf8_cl_fail(status, "tensor upload");
    if (status == CL_COMPLETE) {
        clReleaseEvent(t->ready);
        t->ready = NULL;
        return ECF8_OK;
    }
    cl_event *l = malloc((*n + 1) * sizeof *l);
    if (!l) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (*n) memcpy(l, *list, *n * sizeof *l);
    l[(*n)++] = t->ready;
    *list = *alloc = l;
    return ECF8_OK;
}

int ecf8_cl_tensor_create_async(cl_context context, cl_device_id device, cl_command_queue queue,
                                const ecf8_tensor_info *info, const ecf8_cl_tuning *tuning,
                                cl_uint num_wait_events, const cl_event *wait_events,
                                ecf8_cl_tensor **out, cl_event *ready)
{
    if (ready) *ready = NULL;
    if ((num_wait_events > 0) != (wait_events != NULL))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor create: wait list and its count disagree");
    struct upload u = {.n_wait = num_wait_events, .wait = wait_events};
    int st = tensor_create(context, device, queue, info, tuning, &u, out);
    if (!st && ready) {
        *ready = (*out)->ready;
        clRetainEvent(*ready);
    }
    return st;
}
