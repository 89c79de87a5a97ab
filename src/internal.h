/* internal.h - helpers shared by the library's translation units. */
#ifndef ECF8_INTERNAL_H
#define ECF8_INTERNAL_H

#include "ecf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define ECF8_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ECF8_LIKELY(x) __builtin_expect(!!(x), 1)
#define ECF8_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define ECF8_PRINTF(f, a)
#define ECF8_LIKELY(x) (x)
#define ECF8_UNLIKELY(x) (x)
#endif

/* Records a detail message for ecf8_last_error() and returns status, so a
 * failure reads `return ecf8_fail(ECF8_ERR_CORRUPT, "chunk %zu ...", c);`. */
int ecf8_fail(int status, const char *fmt, ...) ECF8_PRINTF(2, 3);
/* Prefixes the current detail with "what: " (keeps the status). */
int ecf8_fail_context(int status, const char *fmt, ...) ECF8_PRINTF(2, 3);
void ecf8_clear_error(void);

/* ecf8_compress_options as of format 1.1 (up to plain_index): older callers
 * pass this much; later fields read as their defaults. */
#define ECF8_COMPRESS_OPTIONS_V1_BYTES (offsetof(ecf8_compress_options, plain_index) + sizeof(int))

/* The caller's options (NULL: the defaults) as this library's struct:
 * fields past the caller's struct_size keep their defaults, and a
 * struct_size under the first version's is ECF8_ERR_ARGUMENT ("WHAT:
 * options struct too small").  A compress struct_size of 0 reads as the
 * whole struct (as every reader of it always has). */
int ecf8_compress_options_read(const ecf8_compress_options *in, ecf8_compress_options *out,
                               const char *what);
int ecf8_decode_options_read(const ecf8_decode_options *in, ecf8_decode_options *out);

static inline uint64_t ecf8_load_le64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v); /* little-endian hosts only (checked at open) */
    return v;
}
static inline uint32_t ecf8_load_le32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void ecf8_store_le64(void *p, uint64_t v) { memcpy(p, &v, sizeof v); }
static inline void ecf8_store_le32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

/* Overflow-checked arithmetic: false when the result does not fit. */
static inline bool ecf8_mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}
static inline bool ecf8_add_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}
static inline uint64_t ecf8_align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
/* ceil(a / b) for b > 0 without the overflow of (a + b - 1) / b. */
static inline uint64_t ecf8_ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

uint64_t ecf8_hash64(const void *data, size_t len);

/* Canonical code words, bit-reversed for the LSB-first stream. */
int ecf8_canonical_codes(const uint8_t *lengths, unsigned n_symbols, uint16_t *codes);


/* Whether bytes start with the .ecf8 magic (docs/FORMAT.md 2). */
bool ecf8_has_container_magic(const void *data, size_t size);

/* Test hook, NULL in normal use: the encoder calls it with a tensor's
 * elements between its size pass and its write pass, so a test can change
 * them exactly there (what a caller's buffer changing underneath does). */
extern void (*ecf8_test_hook_between_encode_passes)(const void *data, uint64_t bytes);

/* ---- the windowed encoder (stream_encode.c) --------------------------------
 * Codes a tensor given a window (a run of whole chunks) at a time, into
 * the bytes ecf8_tensor_encode makes of it whole:
 *   create; histogram(every element, in windows of any size, in order or
 *   not); plan -> need_sizes; when need_sizes: size(each window of
 *   chunks), then choose; then split(): STORED, or code(each window of
 *   chunks, in order) giving its coded bytes, which follow each other in
 *   the coded stream (then 8 zero bytes of pad); stream() at the end is the
 *   code and geometry, chunk_offsets into the coded stream and coded_bytes
 *   (coded NULL).  window() gives the chunks c0..*return of at most
 *   max_bytes (one chunk at least) and the elements they hold. */
typedef struct ecf8_window_encoder ecf8_window_encoder;
/* Test hook, 0 in normal use: the window (bytes) of the compressor's
 * windowed path, which codes tensors larger than it (64 MiB by default). */
extern uint64_t ecf8_test_encode_window_bytes;
int ecf8_wenc_create(ecf8_dtype dtype, uint64_t rows, uint64_t cols,
                     const ecf8_compress_options *options, ecf8_window_encoder **out);
void ecf8_wenc_free(ecf8_window_encoder *w);
uint64_t ecf8_wenc_chunks(const ecf8_window_encoder *w);
uint64_t ecf8_wenc_window(const ecf8_window_encoder *w, uint64_t c0, uint64_t max_bytes,
                          uint64_t *first_element, uint64_t *n_elements);
int ecf8_wenc_histogram(ecf8_window_encoder *w, const void *data, uint64_t n_elements);
int ecf8_wenc_plan(ecf8_window_encoder *w, bool *need_sizes);
int ecf8_wenc_size(ecf8_window_encoder *w, const void *data, uint64_t c0, uint64_t c1);
int ecf8_wenc_choose(ecf8_window_encoder *w);
ecf8_split ecf8_wenc_split(const ecf8_window_encoder *w);
int ecf8_wenc_code(ecf8_window_encoder *w, const void *data, uint64_t c0, uint64_t c1,
                   const uint8_t **coded, size_t *bytes);
const ecf8_stream *ecf8_wenc_stream(ecf8_window_encoder *w);

/* ---- a fixed pool of worker threads ------------------------------------ */
/* ecf8_parallel_for runs fn(ctx, i) for i in [0, n) on up to `threads`
 * threads (0 = one per core), the caller's thread included, and returns
 * the first non-zero status any call returned (remaining work is skipped). */
typedef int (*ecf8_task_fn)(void *ctx, uint64_t index);
int ecf8_parallel_for(unsigned threads, uint64_t n, ecf8_task_fn fn, void *ctx);
unsigned ecf8_default_threads(void);
/* A private pool of up to `helpers` helper threads (started at its first
 * job, joined by ecf8_pool_free), for an ecf8_decoder.  ecf8_pool_use makes
 * the calling thread's ecf8_parallel_for run on p (NULL: the shared pool)
 * and returns the pool it used before. */
typedef struct ecf8_pool ecf8_pool;
int ecf8_pool_create(unsigned helpers, ecf8_pool **out);
void ecf8_pool_free(ecf8_pool *p);
ecf8_pool *ecf8_pool_use(ecf8_pool *p);
/* Jobs the shared pool has run (tests: a 1-thread or private-pool decode
 * must not add to it). */
extern _Atomic uint_fast64_t ecf8_shared_pool_jobs;

/* ---- tensor payload layout (docs/FORMAT.md) ---------------------------- */
/* Byte offsets inside a coded payload, derived from its counts. */
typedef struct ecf8_payload_layout {
    uint64_t lengths_offset;  /* n_symbols 4-bit code lengths */
    uint64_t offsets_offset;  /* (n_chunks + 1) u64 */
    uint64_t coded_offset;    /* coded stream */
    uint64_t total_bytes;
} ecf8_payload_layout;
bool ecf8_payload_layout_compute(unsigned n_symbols, uint64_t n_chunks,
                                 uint64_t coded_bytes, ecf8_payload_layout *out);

/* The chunk target a layout uses for the option `chunk_elements` (0: the
 * default): layout 1 reads 0 and the layout-0 default as 8192 and caps it
 * at ECF8_MAX_LANE_CHUNK_ELEMENTS, which keeps lane lengths in 16 bits. */
uint64_t ecf8_layout_chunk_target(unsigned stream_layout, uint64_t chunk_elements);

/* A coded payload (lengths | offsets | coded stream, docs/FORMAT.md 4.3)
 * of the elements at `data` under the code, geometry and stream_layout of
 * *code (its lengths, code_bits, chunk_rows/cols; pointers unused), made
 * with a plain bit writer: what transcoding between layouts and the
 * layout-1 encoder use.  *payload (malloc'd) and *out (pointing into it)
 * on success; ECF8_ERR_IO when an element has no code word. */
int ecf8_stream_build(const ecf8_stream *code, const void *data, unsigned threads,
                      uint8_t **payload, size_t *payload_bytes, ecf8_stream *out);
/* Chunks [c0, c1) of the stream s describes (its code, geometry,
 * stream_layout and n_symbols; pointers unused), whose elements are at
 * `data` from chunk c0's first on (chunks are consecutive runs of
 * elements), built as ecf8_stream_build builds them: the size pass when
 * coded is NULL (bytes of chunk c into chunk_bytes[c - c0], layout 1 its
 * lane lengths into lane_bits[(c - c0) * 32...]), else the write pass
 * (chunk c at coded + offsets[c - c0], into zeroed space of the sizes the
 * size pass gave, with the same lane_bits).  ECF8_ERR_IO "input changed
 * during compression" when an element has no code word or a chunk is not
 * the size it had. */
int ecf8_stream_build_range(const ecf8_stream *s, const void *data, uint64_t c0, uint64_t c1,
                            unsigned threads, uint64_t *chunk_bytes, uint32_t *lane_bits,
                            const uint64_t *offsets, uint8_t *coded);
/* Re-lays stream s as `layout` with the same code lengths (a lossless
 * reshuffle; no new statistics): decodes it and rebuilds with chunks of
 * ecf8_layout_chunk_target(layout, chunk_elements). */
int ecf8_stream_relayout(const ecf8_stream *s, unsigned layout, uint64_t chunk_elements,
                         unsigned threads, uint8_t **payload, size_t *payload_bytes,
                         ecf8_stream *out);

/* Chooses the chunk geometry of a rows x cols tensor for a target size. */
void ecf8_chunk_geometry(uint64_t rows, uint64_t cols, uint64_t target,
                         uint64_t *chunk_rows, uint64_t *chunk_cols, uint64_t *n_chunks);

/* What a container entry says about a coded tensor's stream before its
 * payload is read: the fields of ecf8_stream that are neither derived
 * (n_symbols, n_elements, n_chunks) nor in the payload. */
typedef struct ecf8_stream_geometry {
    ecf8_dtype dtype;
    ecf8_split split;
    unsigned code_bits;
    uint64_t rows, cols;
    uint64_t chunk_rows, chunk_cols;
    uint64_t coded_bytes;
    unsigned stream_layout; /* tensor-entry byte 29 */
    /* The coded bytes are not there yet (read later): layout-1 lane tables
     * are then checked by the decoders, which parse each chunk's anyway. */
    bool coded_later;
} ecf8_stream_geometry;

/* ecf8_stream_validate, with layout-1 lane tables (which are in the coded
 * bytes) checked or not. */
int ecf8_stream_check(const ecf8_stream *s, bool lane_tables);

/* Builds an ecf8_stream of geometry g over a payload in memory (pointers
 * into it) and validates it.  With offsets_copy, the chunk offsets are
 * copied out of the payload first (*offsets_copy, for the caller to free)
 * and the copy validated and used: for a payload in a mapping another
 * writer of the file could change. */
int ecf8_stream_open_payload(const ecf8_stream_geometry *g, const void *payload,
                             uint64_t payload_bytes, ecf8_stream *out, uint64_t **offsets_copy);
/* The same from its parts wherever they are, as a format 1.1 container
 * keeps them: the code lengths (4 bits per symbol, packed as in a payload),
 * `offsets_bytes` bytes holding at least the n_chunks + 1 u64 chunk offsets
 * (8-byte aligned), and the coded stream of exactly `coded_avail` bytes. */
int ecf8_stream_open_parts(const ecf8_stream_geometry *g, const uint8_t *packed_lengths,
                           const void *offsets, uint64_t offsets_bytes, const void *coded,
                           uint64_t coded_avail, ecf8_stream *out);
/* Tensor t (stored or coded) into out (source_bytes, out_bytes >= that),
 * checked against its checksum: what ecf8_file_read_tensor does once it has
 * found t, for callers that hold an ecf8_tensor_info (the matmul). */
int ecf8_tensor_decode_checked(const ecf8_tensor_info *t, void *out, size_t out_bytes,
                               unsigned threads);

/* ecf8_decompress_path_ex with the coded tensors decoded by `decode`
 * (NULL: the CPU decoder): it writes tensor `index` of f (source_bytes)
 * into out and checks its checksum.  The OpenCL runtime passes a device
 * decoder (ecf8_cl_decompress_path); everything else - temporary files,
 * all or nothing, progress - is shared. */
/* The chunk rows (bands of chunk_rows rows) band0..band1-1 of s as a
 * stream of their own: its elements are those rows of s, contiguous in
 * s's output from row band0 * chunk_rows on.  Shares s's buffers. */
ecf8_stream ecf8_stream_band(const ecf8_stream *s, uint64_t band0, uint64_t band1);

typedef int (*ecf8_tensor_decode_fn)(void *ctx, const ecf8_file *f, size_t index, void *out,
                                     size_t out_bytes);
int ecf8_decompress_path_with(const char *in_path, const char *out_path,
                              const ecf8_decode_options *options, ecf8_tensor_decode_fn decode,
                              void *decode_ctx);

#endif
