/*
 * ecf8_cl.h - decode and fused matmul of ecf8 tensors on any OpenCL device.
 *
 * The library uses the caller's context and queue; nothing here creates
 * global state except an in-memory program cache (per context, device and
 * options; ecf8_cl_release_context empties it for a context) and an
 * on-disk binary cache (ecf8_cl_set_disk_cache).  Everything that shapes a
 * call is an argument: the device (ecf8_cl_open), the kernels' tuning
 * (ecf8_cl_tuning, to the _ex calls).  Only the 1.0 entry points marked
 * "compatibility" below read environment variables, as 1.0 did.
 * Enqueue functions take buffers with byte offsets, a wait list and
 * an optional output event, like clFFT.  Status: ECF8_OK, an OpenCL error
 * code passed through, or an ECF8_ERR_* code; ecf8_status_string() names
 * any of them and ecf8_last_error() names the failing OpenCL call or
 * carries the program build log.
 *
 * Threads: an ecf8_cl_tensor or ecf8_cl_matmul is used by one thread at a
 * time (its calls set kernel arguments on its own kernels); different
 * objects may be used from different threads at once, on one context and
 * queue or several.  The program and disk caches are thread-safe.
 * Lifetimes: an object keeps its context alive until freed; wait for the
 * commands it enqueued (their events) before freeing it.  Loading:
 * ecf8_cl_tensor_create_async and ecf8_cl_load upload without blocking
 * (the payload must stay valid until the ready event completes);
 * ecf8_cl_tensor_verify is the full content check.
 */
#ifndef ECF8_CL_H
#define ECF8_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "ecf8.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device choice (for tools, tests and examples) --------------------- */
/* Picks a device: `platform` and `device` (each NULL or "" for no
 * preference; an index or a name substring, case-insensitive: platform
 * indices as clGetPlatformIDs lists them, device indices across all
 * platforms, as `ecf8 devices` lists them), else the first GPU, else the
 * first device.  ECF8_ERR_NOT_FOUND when a preference matches nothing
 * ("device 'X' matches no OpenCL device"), ECF8_ERR_NO_DEVICE when there
 * is no device at all. */
ECF8_API int ecf8_cl_select(const char *platform, const char *device,
                            cl_platform_id *platform_out, cl_device_id *device_out);
/* A context and an in-order queue with profiling on the device
 * ecf8_cl_select picks. */
ECF8_API int ecf8_cl_open(const char *platform, const char *device, cl_context *context,
                          cl_device_id *device_out, cl_command_queue *queue);
/* Compatibility (1.0): ecf8_cl_select / ecf8_cl_open with the preferences
 * read from the environment variables ECF8_PLATFORM and ECF8_DEVICE. */
ECF8_API int ecf8_cl_select_device(cl_platform_id *platform, cl_device_id *device);
ECF8_API int ecf8_cl_open_default(cl_context *context, cl_device_id *device,
                                  cl_command_queue *queue);

/* ---- tuning ------------------------------------------------------------------ */
/* Overrides of the kernels' automatic choices, for measurements and
 * workarounds: a zero (NULL) field leaves that choice to the library, and a
 * NULL tuning leaves them all.  Start from ecf8_cl_tuning_init, which sets
 * struct_size to sizeof(ecf8_cl_tuning): fields past struct_size read as
 * zero, so a caller built against an older, shorter struct keeps working
 * when fields are added at the end.  The library only reads a tuning, and
 * keeps no pointer into it past the call that took it. */
typedef struct ecf8_cl_tuning {
    size_t struct_size;        /* sizeof(ecf8_cl_tuning) */
    /* Decode (ecf8_cl_tensor_create_ex, ecf8_cl_decompress_path_ex). */
    const char *decode_kernel; /* "portable" (no CPU or cooperative kernel),
                                  "coop" (the cooperative kernel on any device),
                                  "pairs" (the pairs kernel on CPUs for every FP8
                                  stream it can decode), "lanes" (the lanes kernel
                                  where the pairs kernel would run); stream
                                  layout 1 always runs the streams kernel */
    unsigned decode_vw;        /* lanes and streams kernels: vector width 8 or 16
                                  (capped by the device's vector registers);
                                  streams kernel: 1 = one lane per work-item */
    unsigned decode_nsets;     /* lanes kernel: independent vector sets, 1-8;
                                  streams kernel: vectors per work-item, a
                                  divisor of 32 / vector width */
    unsigned decode_reader;    /* lanes and streams kernels: stream reader,
                                  1 words, 2 qwords */
    unsigned decode_nl;        /* pairs kernel: chunks per work-item */
    unsigned decode_wg;        /* portable kernel: work-group size */
    /* Fused matmul (ecf8_cl_matmul_create_ex). */
    unsigned matmul_lanes;     /* 1: the portable one-lane path (GPUs' code) */
    unsigned matmul_interleave; /* lane groups one work-item interleaves, 1-16 */
    unsigned matmul_rows;      /* rows of X per GEMM pass, 1-32 */
    unsigned matmul_prefetch;  /* stream prefetch distance in bytes, 1-4096 */
    unsigned matmul_path;      /* lane order's fused engine (library 1.4): 0 the
                                  predicted one, 1 the fused kernel, 2 decode to a
                                  buffer then the uncompressed kernel */
} ecf8_cl_tuning;
/* Every field zero (the library's choices) and struct_size set. */
ECF8_API void ecf8_cl_tuning_init(ecf8_cl_tuning *tuning);

/* ---- the disk cache ------------------------------------------------------------ */
typedef enum ecf8_cl_disk_cache {
    ECF8_CL_DISK_CACHE_AUTO = 0, /* where the driver keeps no program cache of
                                    its own (PoCL does: POCL_CACHE_DIR) */
    ECF8_CL_DISK_CACHE_OFF = 1,
    ECF8_CL_DISK_CACHE_ON = 2    /* on every device */
} ecf8_cl_disk_cache;
/* Program binaries are cached on disk, in `dir` (created when missing;
 * NULL: $XDG_CACHE_HOME/ecf8/kernels, else ~/.cache/ecf8/kernels), per
 * `policy`.  Process-wide and thread-safe: builds that start after the call
 * returns follow it (a build in progress finishes under the old setting);
 * the string is copied.  Until the first call the compatibility default
 * applies: AUTO in the default directory, ECF8_CACHE=0/off/no in the
 * environment meaning OFF and 1/on/yes ON, as in 1.0.  ECF8_ERR_ARGUMENT
 * for an unknown policy or a directory name over 4000 bytes. */
ECF8_API int ecf8_cl_set_disk_cache(ecf8_cl_disk_cache policy, const char *dir);

/* Told of each OpenCL program the library builds from source (one neither
 * its in-memory nor its disk cache holds): `done` 0 just before the build
 * and 1 after it, on the thread that builds, `program` its name (e.g.
 * "decode_streams").  For a notice such as "building OpenCL kernels": a
 * driver with a cache of its own (PoCL) makes these builds quick after the
 * first run, so a notice should wait a moment and speak only if the build
 * is still going.  Process-wide and thread-safe; NULL removes the hook. */
typedef void (*ecf8_cl_build_hook)(void *user, const char *program, int done);
ECF8_API void ecf8_cl_set_build_hook(ecf8_cl_build_hook hook, void *user);

/* Facts about a device, as `ecf8 devices` lists them.  The caller sets
 * struct_size to sizeof(ecf8_cl_device_info); fields past struct_size are
 * not written, so a caller built against an older, shorter struct keeps
 * working when fields are added at the end.  Strings are NUL-terminated
 * (truncated to fit); a string the driver does not report is empty. */
typedef struct ecf8_cl_device_info {
    size_t struct_size;         /* sizeof(ecf8_cl_device_info) */
    char name[256];             /* CL_DEVICE_NAME */
    char vendor[128];           /* CL_DEVICE_VENDOR */
    char version[128];          /* CL_DEVICE_VERSION */
    char driver[128];           /* CL_DRIVER_VERSION */
    cl_device_type type;        /* CL_DEVICE_TYPE */
    cl_ulong global_mem_bytes;  /* CL_DEVICE_GLOBAL_MEM_SIZE */
    cl_ulong local_mem_bytes;   /* CL_DEVICE_LOCAL_MEM_SIZE */
    size_t max_work_group;      /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    cl_uint compute_units;      /* CL_DEVICE_MAX_COMPUTE_UNITS */
    int has_fp16;               /* cl_khr_fp16 */
    int has_subgroups;          /* cl_khr_subgroups, or OpenCL C 2.0 */
    int is_cpu;                 /* type includes CL_DEVICE_TYPE_CPU */
    unsigned vector_bits;       /* native int vector width x 32 (256 on AVX2,
                                   512 on AVX-512) */
    unsigned decode_vector_lanes; /* lanes per vector of the CPU decode
                                     kernels (8 or 16), 0 on GPUs and on CPUs
                                     they do not vectorise (library 1.3) */
} ecf8_cl_device_info;
/* Fills info for `device`.  ECF8_ERR_ARGUMENT for NULL arguments or a
 * struct_size smaller than offsetof(ecf8_cl_device_info, type); an OpenCL
 * error when the device cannot be queried. */
ECF8_API int ecf8_cl_device_describe(cl_device_id device, ecf8_cl_device_info *info);

/* ---- the program cache ----------------------------------------------------- */
/* Programs are built once per (context, device, options) and kept in a
 * process-wide cache (thread-safe), and each holds a reference to its
 * context: a context the library has used is not freed by clReleaseContext
 * alone.  Call ecf8_cl_release_context(context) before releasing it: it
 * drops every program cached for that context, and with them the library's
 * references.  Tensors and matmuls made on it hold their own until freed
 * and keep working.  The next use of the context builds its programs again
 * (from the disk cache when enabled).  ECF8_ERR_ARGUMENT for NULL. */
ECF8_API int ecf8_cl_release_context(cl_context context);
/* The same for every context: empties the in-memory cache. */
ECF8_API void ecf8_cl_cache_clear(void);

/* ---- tensors on a device ------------------------------------------------- */
typedef struct ecf8_cl_tensor ecf8_cl_tensor;

/* Validates a tensor of an open container on the host (every offset,
 * length and code) and uploads its payload and decode table.  Works for
 * coded and stored tensors.  Blocking.  A tensor object holds the kernels
 * its decodes set arguments on: one tensor must not be used by two threads
 * at once (different tensors may, on one context and queue or several).
 *
 * Lifetimes: a tensor keeps its context alive (retained) and needs nothing
 * of the file or info it came from once its upload is done.  Before
 * ecf8_cl_tensor_free, wait for every decode of it that is still queued
 * (its out_event, clFinish or ecf8_cl_tensor_check): the device buffers
 * outlive the free until those commands end, but their error word is no
 * longer read, and a decode enqueued after the free is a use after free.
 * ecf8_cl_tensor_free waits for the tensor's own upload, if still running. */
ECF8_API int ecf8_cl_tensor_create(cl_context context, cl_device_id device, cl_command_queue queue,
                                   const ecf8_tensor_info *info, ecf8_cl_tensor **out);
/* The same with the decode_* fields of `tuning` (NULL: none).
 * ECF8_ERR_ARGUMENT for a struct_size too small to hold struct_size. */
ECF8_API int ecf8_cl_tensor_create_ex(cl_context context, cl_device_id device,
                                      cl_command_queue queue, const ecf8_tensor_info *info,
                                      const ecf8_cl_tuning *tuning, ecf8_cl_tensor **out);
/* The same without blocking: everything checked on the host (arguments,
 * tuning, the stream's structure: every offset, code length and the chunk
 * geometry, as ecf8_cl_tensor_create) happens in the call, and an invalid
 * tensor fails here with no object and nothing enqueued.  The upload is
 * then enqueued on `queue` (in order or out of order) after the
 * `num_wait_events` events of `wait_events`, and *ready (NULL: not wanted;
 * else the caller releases it) completes when the tensor can be decoded.
 * info->payload (valid while its ecf8_file is open) must stay valid and
 * unchanged until *ready completes; everything else the upload reads is
 * copied in the call.  The kernels are built (or found in the program
 * cache) in the call, as ecf8_cl_tensor_create_ex does.  Decodes of the tensor wait for the
 * upload themselves (ecf8_cl_enqueue_decode adds it to their wait list
 * while it may still run), so any queue of the context may decode it
 * straight away; commands of the caller's own that read what a decode
 * wrote follow the decode's event as usual.  A failed upload (its event's
 * status negative) is returned by the next decode of the tensor. */
ECF8_API int ecf8_cl_tensor_create_async(cl_context context, cl_device_id device,
                                         cl_command_queue queue, const ecf8_tensor_info *info,
                                         const ecf8_cl_tuning *tuning, cl_uint num_wait_events,
                                         const cl_event *wait_events, ecf8_cl_tensor **out,
                                         cl_event *ready);
ECF8_API void ecf8_cl_tensor_free(ecf8_cl_tensor *tensor);
/* Bytes the decoded tensor occupies (n_elements * element size). */
ECF8_API size_t ecf8_cl_tensor_decoded_bytes(const ecf8_cl_tensor *tensor);
/* Bytes held on the device for it (payload + table). */
ECF8_API size_t ecf8_cl_tensor_device_bytes(const ecf8_cl_tensor *tensor);

/* Decodes the whole tensor into out at out_offset (bytes): one command on
 * `queue`, ordered against the caller's commands by the wait list and
 * out_event only.  The queue may be out of order (the library orders its
 * own commands with events): decodes of different tensors enqueued there
 * without dependencies may run at the same time, which on a CPU device
 * (PoCL) keeps every core busy with small tensors whose one decode would
 * occupy one core (`ecf8-bench-decode` measures both queues).  A chunk that
 * fails its length check is recorded on the device and reported as
 * ECF8_ERR_CORRUPT by the next ecf8_cl_tensor_check or
 * ecf8_cl_decode_to_host of this tensor.  Kernels are built when the
 * tensor is created, except the portable one of a tensor planned for
 * another (a CPU's vector kernel), built at its first decode to an offset
 * that is not a multiple of 4: that decode may take a build and return
 * its errors (ECF8_ERR_BUILD).  Alignment: an out_offset that is a
 * multiple of 4 (better: 64) keeps the fast kernel; any other offset runs
 * the slower portable kernel (bit-identical output). */
ECF8_API int ecf8_cl_enqueue_decode(ecf8_cl_tensor *tensor, cl_command_queue queue, cl_mem out,
                                    size_t out_offset, cl_uint num_wait_events,
                                    const cl_event *wait_events, cl_event *out_event);
/* Row ranges, for a table whose rows are used a few at a time (an
 * embedding lookup): the tensor stays coded on the device and a decode
 * writes only the chunk-row bands that cover the rows asked for.  Rows are
 * those of the tensor's 2-D view (shape[0], a row being the rest of the
 * shape, row bytes = decoded_bytes / rows; a 0-D or 1-D tensor is one
 * row); a band is chunk_rows rows
 * (docs/FORMAT.md 4.2: chunks are row-aligned, a band is every chunk of
 * its rows); a stored tensor's band is one row.
 *
 * ecf8_cl_tensor_rows: the rows of the 2-D view (0 for NULL).
 * ecf8_cl_tensor_row_bands: the rows ecf8_cl_enqueue_decode_rows writes
 * for rows [first_row, first_row + n_rows): rows [*band_first_row,
 * *band_first_row + *band_n_rows) of the tensor, first_row rounded down
 * and the end rounded up to bands (the end capped at the tensor's rows);
 * stored tensors: the range itself.  ECF8_ERR_ARGUMENT for NULL, n_rows 0
 * or a range past the tensor's rows. */
ECF8_API uint64_t ecf8_cl_tensor_rows(const ecf8_cl_tensor *tensor);
ECF8_API int ecf8_cl_tensor_row_bands(const ecf8_cl_tensor *tensor, uint64_t first_row,
                                      uint64_t n_rows, uint64_t *band_first_row,
                                      uint64_t *band_n_rows);
/* Decodes the bands covering rows [first_row, first_row + n_rows) into out
 * at out_offset: out_offset receives row *band_first_row of
 * ecf8_cl_tensor_row_bands, and the *band_n_rows * row bytes from there
 * are those rows' bytes exactly as ecf8_cl_enqueue_decode writes them
 * (row first_row is at out_offset + (first_row - *band_first_row) * row
 * bytes); nothing else of out is written.  A stored tensor: exactly the
 * rows asked for, copied.  One command, queues, wait lists, out_event,
 * kernels, alignment (any out_offset; a multiple of 4 keeps the fast
 * kernel) and the error record as ecf8_cl_enqueue_decode: a failing chunk
 * of the range shows in the next ecf8_cl_tensor_check (its message counts
 * chunks of the whole tensor when every decode it checks began at the same
 * band).  ECF8_ERR_ARGUMENT for NULL arguments, a wait list and count that
 * disagree, a range as ecf8_cl_tensor_row_bands refuses it, or an output
 * that cannot hold the bands at out_offset. */
ECF8_API int ecf8_cl_enqueue_decode_rows(ecf8_cl_tensor *tensor, cl_command_queue queue,
                                         uint64_t first_row, uint64_t n_rows, cl_mem out,
                                         size_t out_offset, cl_uint num_wait_events,
                                         const cl_event *wait_events, cl_event *out_event);
/* Waits for the decodes of `tensor` enqueued so far (on every queue they
 * went to) and
 * returns ECF8_ERR_CORRUPT if a chunk failed its length check, then clears
 * the record; ECF8_OK otherwise.  A corrupt bit that keeps every code length
 * passes this check: compare ecf8_checksum64 of the output with the
 * tensor's checksum for that (ecf8_cl_decode_to_host does both). */
ECF8_API int ecf8_cl_tensor_check(ecf8_cl_tensor *tensor, cl_command_queue queue);
/* Decodes the tensor on the device into a scratch buffer, reads it back
 * and checks it against the tensor's XXH3-64 checksum: the full content
 * check ecf8_cl_load leaves out (see there).  Blocking; needs
 * decoded_bytes of host memory for the call.  ECF8_ERR_CORRUPT (a chunk
 * failed its length check) or ECF8_ERR_CHECKSUM, ecf8_last_error() naming
 * the tensor. */
ECF8_API int ecf8_cl_tensor_verify(ecf8_cl_tensor *tensor, cl_command_queue queue);

/* ---- batches: many tensors, one enqueue ----------------------------------- */
/* The coded tensors of a layer or a file region, decoded by one enqueue:
 * their coded streams, chunk offsets and decode tables in one device
 * buffer, and one kernel launch per build class (tensors of one split and
 * code-length class share a build: a layer of one dtype takes one or two
 * launches), where ecf8_cl_enqueue_decode takes a launch per tensor.  On
 * small tensors a launch costs more than the decode; `ecf8-bench-decode`
 * measures both.  Tensors of stream layout 1 (lane streams) only:
 * ECF8_ERR_UNSUPPORTED names a tensor of layout 0 or a stored one (decode
 * those with ecf8_cl_enqueue_decode).
 *
 * ecf8_cl_batch_create validates every tensor as ecf8_cl_tensor_create
 * does (its stream structure: offsets, lane tables, code lengths) and
 * uploads them, blocking; the infos need not outlive it.  `tuning` (NULL:
 * none) as for ecf8_cl_tensor_create_ex.  ECF8_ERR_ARGUMENT for NULL
 * arguments or n of 0; an invalid tensor: its error, the message naming
 * it; no object then. */
typedef struct ecf8_cl_batch ecf8_cl_batch;
ECF8_API int ecf8_cl_batch_create(cl_context context, cl_device_id device, cl_command_queue queue,
                                  const ecf8_tensor_info *const *tensors, size_t n,
                                  const ecf8_cl_tuning *tuning, ecf8_cl_batch **out);
ECF8_API void ecf8_cl_batch_free(ecf8_cl_batch *batch);
/* Tensors of the batch; bytes tensor i decodes to; device bytes held;
 * kernel launches one enqueue makes (its build classes). */
ECF8_API size_t ecf8_cl_batch_count(const ecf8_cl_batch *batch);
ECF8_API size_t ecf8_cl_batch_launches(const ecf8_cl_batch *batch);
ECF8_API size_t ecf8_cl_batch_decoded_bytes(const ecf8_cl_batch *batch, size_t i);
ECF8_API size_t ecf8_cl_batch_device_bytes(const ecf8_cl_batch *batch);
/* Decodes tensor i of the batch (in the order given to create) into out
 * at out_offsets[i], any byte offset, each range inside out (else
 * ECF8_ERR_ARGUMENT; overlapping ranges are the caller's mistake and give
 * unspecified bytes there).  Every launch waits for the wait list;
 * out_event (may be NULL) completes when all have.  A chunk that fails
 * its length check is recorded and reported by ecf8_cl_batch_check. */
ECF8_API int ecf8_cl_enqueue_decode_batch(ecf8_cl_batch *batch, cl_command_queue queue, cl_mem out,
                                          const size_t *out_offsets, cl_uint num_wait_events,
                                          const cl_event *wait_events, cl_event *out_event);
/* Waits for `queue` (clFinish: pass the queue the decodes ran on) and
 * returns ECF8_ERR_CORRUPT, ecf8_last_error() naming the tensor, chunk
 * and lane, if a chunk of a decode since the last check failed its length
 * check, then clears the record; ECF8_OK otherwise.  As with
 * ecf8_cl_tensor_check, damage that keeps every code length passes: the
 * tensors' checksums catch it. */
ECF8_API int ecf8_cl_batch_check(ecf8_cl_batch *batch, cl_command_queue queue);

/* ---- loading a file onto a device ------------------------------------------ */
/* Called once per tensor loaded, on the calling thread of ecf8_cl_load, in
 * the order of `indices`: `index` is the tensor's index in the file,
 * `tensor` and `ready` (as ecf8_cl_tensor_create_async's) are the
 * callback's to keep and free/release.  A non-zero return stops the load
 * and is ecf8_cl_load's result. */
typedef int (*ecf8_cl_load_callback)(void *user, size_t index, ecf8_cl_tensor *tensor,
                                     cl_event ready);
/* Loads tensors `indices[0 .. n-1]` of `file` (indices NULL: all of them,
 * n ignored) onto `device` with ecf8_cl_tensor_create_async on `queue`:
 * every tensor's structure is validated on the host before its upload is
 * enqueued, the uploads do not block, so they overlap each other, the host
 * work of the next tensors and the caller's decodes; nothing is decoded on
 * the host.  Returns once every upload is enqueued: `file` must stay open
 * until every ready event has completed (or clFinish(queue)).  On the
 * first failure (an index out of range: ECF8_ERR_ARGUMENT; an invalid
 * tensor: ECF8_ERR_CORRUPT naming it) the load stops; the tensors already
 * handed to the callback stay valid and the callback's.
 *
 * What is checked, without a full host checksum: ecf8_file_open checked
 * the header, index and each coded tensor's stream structure (offsets,
 * code lengths, chunk geometry); create checks them again.  On the device,
 * each decode checks every chunk: a chunk passes when the bits its elements
 * consume, rounded up to bytes, equal its stored byte length (chunk
 * offsets[c + 1] - offsets[c]); else ECF8_ERR_CORRUPT from the tensor's
 * next ecf8_cl_tensor_check or ecf8_cl_decode_to_host.  Detected: damage
 * that changes how many bits a chunk decodes to - most flipped code bits,
 * zeroed or filled payload, shifted chunk offsets.  Not detected: a flipped
 * raw (sign / mantissa) bit, a code word turned into another code word of
 * the same length, a change in a chunk's padding bits, and any damage to a
 * stored (uncoded) tensor: those decode without error to wrong values.
 * ecf8_cl_tensor_verify (or ecf8_cl_decode_to_host) compares the checksum
 * and catches them all.  (ecf8_cl_matmul_create checks W in full the same
 * way, because the fused kernel has no per-chunk check.) */
ECF8_API int ecf8_cl_load(cl_context context, cl_device_id device, cl_command_queue queue,
                          const ecf8_file *file, const size_t *indices, size_t n,
                          const ecf8_cl_tuning *tuning, ecf8_cl_load_callback callback,
                          void *user);

/* ecf8_decompress_path_ex with every coded tensor decoded on the device
 * (checked against its checksum): the original file or directory rebuilt
 * byte for byte through temporary files, renamed only once all are
 * complete; progress, output rules (options->overwrite) and errors as
 * ecf8_decompress_path_ex (options->threads is unused). */
ECF8_API int ecf8_cl_decompress_path(cl_context context, cl_device_id device,
                                     cl_command_queue queue, const char *in_path,
                                     const char *out_path, const ecf8_decode_options *options);
/* The same with every tensor created through ecf8_cl_tensor_create_ex with
 * `tuning` (NULL: none). */
ECF8_API int ecf8_cl_decompress_path_ex(cl_context context, cl_device_id device,
                                        cl_command_queue queue, const char *in_path,
                                        const char *out_path, const ecf8_decode_options *options,
                                        const ecf8_cl_tuning *tuning);
/* Decode into host memory and check the tensor's checksum.  Blocking. */
ECF8_API int ecf8_cl_decode_to_host(ecf8_cl_tensor *tensor, cl_command_queue queue, void *out,
                                    size_t out_bytes);

/* ---- fused decode + matmul ----------------------------------------------- */
/* Y[m, n] = X[m, k] * W[n, k]^T for a Linear weight W (2-D, F8_E4M3 or
 * F8_E5M2 with its scale tensor `scale_inv`, the dequantised weight being
 * w * scale, or BF16 with scale_inv NULL).  Scale forms: dtype F32, BF16,
 * F16 (stored or coded), F8_E8M0 or U8 read as E8M0 (2^(e - 127), 255 NaN);
 * shape [] or [1] (scalar), [n] or [n, 1] (per row), or blocks
 * [ceil(n/bn), ceil(k/bk)] of bn x bk = 128x128, 32x32 or 1x32 (MXFP8),
 * edge blocks partial.  The host widens them to F32 exactly.  X and Y
 * are row-major fp32 (X may be BF16 with ECF8_CL_INPUT_BF16).  The fused
 * engine decodes only the tiles it multiplies; the uncompressed engine reads the same weights stored raw and
 * uses the same reduction order, so both give bit-identical Y.
 *
 * Reduction order (both engines, any batch size): for each k-block b of SK
 * columns, p = sum over its columns in ascending order of fma(x, w, p) with
 * w the exact fp32 value of the stored element; then acc = fma(p, s, acc)
 * with s the scale of row n and block b (BF16: acc + p).  SK is 128 for
 * 128x128 blocks, scalars and per-row scales (the 1.x contract: F32 128x128
 * scales give the Y they always gave; a scalar or per-row scale gives the Y
 * of the 128x128 grid holding its values), 32 for 32x32 and 1x32 blocks.
 * FP8 NaN codes read as a quiet NaN, E5M2 +-Inf as +-Inf, subnormals
 * exactly; NaN, Inf and zero scales enter the fma as they are. */
/* The lane order (ECF8_CL_REDUCTION_LANES), a second contract, is taken
 * where lane streams meet a GPU: a stream-layout-1 W whose K is a multiple
 * of 128 (and whose row segments, if any, are too) on a device that is not
 * a CPU (or any device with the matmul_lanes 1 tuning).  Lane l (0..31) of
 * row n owns the 32-bit words l, l + 32, ... of the row, q = 4 FP8 or 2
 * BF16 elements each (columns c = 32 q j + q l .. + q - 1), the words lane
 * l of a layout-1 chunk codes; per lane, words ascending: p = 0, p =
 * fma(x, w, p) over the word's columns ascending, then a[l] = fma(p,
 * s(n, c), a[l]) (BF16: a[l] + p), with s the scale of row n at column c
 * of the same widened grid; then y = a fixed tree: a[l] = a[l] + a[l + h]
 * for h = 16, 8, 4, 2, 1 and l < h, y = a[0].  Both engines of such an
 * object use it (ecf8_cl_matmul_reduction says which order an object
 * uses), so fused and uncompressed Y stay bit-identical; against the
 * serial order Y differs by rounding only. */
typedef enum ecf8_cl_reduction {
    ECF8_CL_REDUCTION_SERIAL = 0, /* the order above (every other case) */
    ECF8_CL_REDUCTION_LANES = 1   /* the lane order */
} ecf8_cl_reduction;

typedef enum ecf8_cl_engine {
    ECF8_CL_ENGINE_FUSED = 0,
    ECF8_CL_ENGINE_UNCOMPRESSED = 1
} ecf8_cl_engine;

/* Engine masks for ecf8_cl_matmul_create (0 means both). */
#define ECF8_CL_ENGINE_BIT(engine) (1u << (engine))

#define ECF8_CL_INPUT_BF16 1u

typedef struct ecf8_cl_matmul ecf8_cl_matmul;

/* Validates W and its scales on the host and prepares W for `engines`.
 *
 * What is checked when: at create, every engine's input is checked in full
 * before it is used -- W's shape, dtype and coded stream (every offset and
 * code length), W decoded once against its XXH3 checksum, and the scale
 * tensor's bytes against its checksum.  W is decoded on the host (as
 * ecf8_file_read_tensor does) where its raw elements are uploaded anyway
 * (the uncompressed engine, a stored W) or `queue` is NULL; otherwise on
 * the device, on `queue` (ecf8_cl_tensor_verify: decoded into scratch,
 * read back, hashed; a lane-order object decodes its own upload instead,
 * so W goes to the device once), so a fused-only load does no host decode.
 *
 * Stream layout 1 (lane streams): where K and every chunk's row piece are
 * multiples of 128 columns the fused engine decodes the lane streams as it
 * multiplies: the CPU-shaped kernels on CPU devices (serial order), the
 * GPU-shaped lane-order kernels elsewhere (one work-item per lane, see
 * ECF8_CL_REDUCTION_LANES; the uncompressed engine then runs in the lane
 * order too).  Other shapes run the uncompressed kernel: on the raw
 * elements where the uncompressed engine is prepared too (or `queue` is
 * NULL), else on W decoded per call into a scratch buffer of n * k
 * elements that the call allocates and releases (W stays coded on the
 * device between calls; the same Y, bit for bit).  A tensor that fails returns
 * ECF8_ERR_CORRUPT or ECF8_ERR_CHECKSUM (ecf8_last_error() names the
 * tensor) and no object.  The check is a one-time cost at load, always
 * done, because the fused kernel has no check of its own: a flipped payload
 * bit that keeps every code length would decode on the device without an
 * error and give a wrong Y.
 * Callers that build ecf8_tensor_info themselves must fill in `checksum`
 * for W and for scale_inv (XXH3-64 of their original bytes).
 *
 * Then the fused engine uploads the compressed payload and a decode table;
 * the uncompressed engine uploads the raw elements of the host decode as
 * its baseline.  Shapes: W [n, k] with n, k >= 1 and every device buffer
 * under 2 GiB; scale_inv in one of the forms above for FP8 (another shape
 * or dtype: ECF8_ERR_SHAPE, the message naming the tensor and the shapes
 * W takes), NULL for BF16 (ECF8_ERR_ARGUMENT otherwise).  A stored (uncoded)
 * W is accepted: the fused engine then reads it raw.  Blocking.  One object
 * must not be used by two threads at once. */
ECF8_API int ecf8_cl_matmul_create(cl_context context, cl_device_id device,
                                   cl_command_queue queue, const ecf8_tensor_info *weight,
                                   const ecf8_tensor_info *scale_inv, unsigned engines,
                                   ecf8_cl_matmul **out);
/* The same with the matmul_* fields of `tuning` (NULL: none), which shape
 * the programs its enqueues build. */
ECF8_API int ecf8_cl_matmul_create_ex(cl_context context, cl_device_id device,
                                      cl_command_queue queue, const ecf8_tensor_info *weight,
                                      const ecf8_tensor_info *scale_inv, unsigned engines,
                                      const ecf8_cl_tuning *tuning, ecf8_cl_matmul **out);
ECF8_API void ecf8_cl_matmul_free(ecf8_cl_matmul *mm);

typedef struct ecf8_cl_matmul_info {
    uint64_t n, k;
    ecf8_dtype dtype;
    ecf8_split split;            /* of W; STORED: the fused engine reads raw bytes */
    uint64_t fused_bytes;        /* weight bytes one fused call reads: stream, offsets,
                                    table, scales; with W decoded per call, the
                                    coded tensor and the scratch too (0 if not
                                    prepared) */
    uint64_t uncompressed_bytes; /* n * k * element size + scales (0 if not prepared) */
    unsigned lanes;              /* rows one work-item decodes side by side */
    unsigned interleave;         /* lane groups one work-item interleaves */
} ecf8_cl_matmul_info;
ECF8_API int ecf8_cl_matmul_get_info(const ecf8_cl_matmul *mm, ecf8_cl_matmul_info *info);
/* The reduction order both engines of mm use (NULL: SERIAL). */
ECF8_API ecf8_cl_reduction ecf8_cl_matmul_reduction(const ecf8_cl_matmul *mm);

/* The two ways the fused engine of a lane-order object computes Y, which
 * give the same Y bit for bit: the fused kernel, which decodes W once per
 * 4 rows of X (once for m = 1), or a decode of W into a buffer of n * k
 * elements (allocated and released by the call) followed by the
 * uncompressed kernel.  Unless the matmul_path tuning says otherwise the
 * call takes the one this predicts for m rows: the one that issues fewer
 * instructions, by the per-word instruction counts of the kernels' inner
 * loops (sm_90, docs/BENCHMARKS.md), since on GPUs both are bound by
 * instruction issue rather than memory.  Predicted: the fused kernel for
 * m <= 4, and for FP8 byte splits at any m; the decode path for m > 4
 * otherwise.  Objects in the serial order always run the fused kernels
 * (on CPU devices they beat decode + GEMM at every m, as measured). */
typedef enum ecf8_cl_matmul_path {
    ECF8_CL_PATH_FUSED = 1,
    ECF8_CL_PATH_DECODE_GEMM = 2
} ecf8_cl_matmul_path;
ECF8_API ecf8_cl_matmul_path ecf8_cl_matmul_predict(const ecf8_cl_matmul *mm, size_t m);

/* Y = X W^T on `engine` for m >= 1 rows of X: x holds m * k elements (fp32,
 * or BF16 with ECF8_CL_INPUT_BF16) from x_offset bytes, y receives m * n
 * floats from y_offset bytes; offsets are multiples of the element size and
 * both buffers must be large enough (ECF8_ERR_SHAPE otherwise).  Programs
 * are built on first use (ecf8_cl_matmul_get_info's lanes is 0 until then).
 * One kernel launch; out_event is its event.  Nothing of W is checked here
 * or in the kernel: create checked it once. */
ECF8_API int ecf8_cl_enqueue_matmul(ecf8_cl_matmul *mm, ecf8_cl_engine engine,
                                    cl_command_queue queue, size_t m, cl_mem x, size_t x_offset,
                                    unsigned x_flags, cl_mem y, size_t y_offset,
                                    cl_uint num_wait_events, const cl_event *wait_events,
                                    cl_event *out_event);

/* The middle step of the "decode, dequantise, SGEMM" baseline: the n * k raw
 * elements of W in `raw` (as ecf8_cl_enqueue_decode writes them) to fp32
 * [n, k] at out_offset, w * scale_inv rounded once (BF16: w).  Needs the
 * uncompressed engine's programs (any mm).  The scales are the ones create
 * checked; a corrupt chunk of the decode that wrote `raw` shows only in
 * that decode's error word (ecf8_cl_enqueue_decode). */
ECF8_API int ecf8_cl_enqueue_dequantize(ecf8_cl_matmul *mm, cl_command_queue queue, cl_mem raw,
                                        size_t raw_offset, cl_mem out, size_t out_offset,
                                        cl_uint num_wait_events, const cl_event *wait_events,
                                        cl_event *out_event);

#ifdef __cplusplus
}
#endif
#endif /* ECF8_CL_H */
