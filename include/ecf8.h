/*
 * ecf8.h - lossless compression of FP8/BF16/FP16 neural-network weights.
 *
 * The exponent field of trained weights carries far less information than
 * its width.  ecf8 entropy-codes it (or the whole byte holding it) with a
 * length-limited canonical Huffman code per tensor, keeps the remaining bits
 * raw, and cuts every tensor into independently decodable chunks so that a
 * GPU (or any OpenCL device) can decode one chunk per work-item.
 *
 * This header is the host library: codebooks, the chunked tensor codec, the
 * `.ecf8` container and the safetensors bridge.  It needs no OpenCL; the
 * device side lives in ecf8_cl.h.  All functions are thread-safe on distinct
 * objects; on one object, see each type (ecf8_file: any number of threads
 * may read one open file at once; ecf8_decoder, ecf8_encoded, ecf8_output:
 * one thread at a time).  Every function returning int returns ECF8_OK (0) on success or a
 * negative status; ecf8_status_string() names it and ecf8_last_error()
 * gives the detail of this thread's most recent failure.
 *
 * A decode-only build of the library (CMake -DECF8_DECODE_ONLY=ON) defines
 * ECF8_DECODE_ONLY for its users (CMake targets, pkg-config cflags).  It
 * declares everything here, but the encoder's functions - ecf8_codebook_build,
 * ecf8_tensor_analyze, ecf8_tensor_encode, ecf8_compress_path(_counted),
 * ecf8_compress_dir - fail there with ECF8_ERR_UNSUPPORTED (ecf8_encoded_*
 * see NULL only), ecf8_inspect_path takes .ecf8 files only, and
 * ecf8_decompress_dir and ecf8_verify_dir do not check shard indexes (no
 * JSON reader).
 */
#ifndef ECF8_H
#define ECF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions.  The shared library is built with
 * -fvisibility=hidden and exports these only, so its internal functions can
 * neither be called nor clash with an application's; in a static library
 * the mark changes nothing.  Define ECF8_API before including to override. */
#ifndef ECF8_API
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#define ECF8_API __attribute__((visibility("default")))
#else
#define ECF8_API
#endif
#endif

/* Marks a public function kept for compatibility that new code should not
 * call; compilers that know the attribute warn at each use. */
#ifndef ECF8_DEPRECATED
#if defined(__has_attribute)
#if __has_attribute(deprecated)
#define ECF8_DEPRECATED(why) __attribute__((deprecated(why)))
#endif
#endif
#endif
#ifndef ECF8_DEPRECATED
#define ECF8_DEPRECATED(why)
#endif

#define ECF8_VERSION_MAJOR 1
#define ECF8_VERSION_MINOR 4
#define ECF8_VERSION_PATCH 0
#define ECF8_VERSION_STRING "1.4.0"

/* Container format version written by this library (see docs/FORMAT.md):
 * major 1; minor 3 when it codes a tensor of a format 1.3 dtype (FNUZ, U8,
 * I8, F8_E8M0), else 2 with layout-1 tensors, else 1 when the index is
 * compressed, 0 otherwise (the highest this library writes). */
#define ECF8_FORMAT_VERSION 1
#define ECF8_FORMAT_MINOR 3

/* Longest code the decoder accepts: a 2^13-entry table of uint16 is 16 KiB,
 * small enough for the local memory of every OpenCL device. */
#define ECF8_MAX_CODE_BITS 13
#define ECF8_DEFAULT_CODE_BITS 12
#define ECF8_DEFAULT_CHUNK_ELEMENTS 4096
/* Stream layouts (docs/FORMAT.md 4.4): 0 serial chunks, 1 lane streams
 * (format 1.2), whose chunks default to 8192 and hold at most 65536 elements. */
#define ECF8_STREAM_LAYOUT_SERIAL 0
#define ECF8_STREAM_LAYOUT_LANES 1
#define ECF8_DEFAULT_LANE_CHUNK_ELEMENTS 8192
#define ECF8_MAX_LANE_CHUNK_ELEMENTS 65536
#define ECF8_MAX_DIMS 8

/* ---- status codes ------------------------------------------------------ */
/* 0 is success, OpenCL error codes (-1 .. -1999) are passed through
 * unchanged, and the library's own live in -3000 .. -3099. */
enum {
    ECF8_OK = 0,
    ECF8_ERR_IO = -3001,          /* open/read/write/rename failed */
    ECF8_ERR_CORRUPT = -3002,     /* malformed or inconsistent input */
    ECF8_ERR_CHECKSUM = -3003,    /* decoded data does not match its checksum */
    ECF8_ERR_VERSION = -3004,     /* container version this library cannot read */
    ECF8_ERR_NOMEM = -3005,       /* allocation failed */
    ECF8_ERR_ARGUMENT = -3006,    /* invalid argument from the caller */
    ECF8_ERR_UNSUPPORTED = -3007, /* valid but not supported (dtype, host) */
    ECF8_ERR_NOT_FOUND = -3008,   /* no tensor/device of that name */
    ECF8_ERR_NO_DEVICE = -3009,   /* no OpenCL platform or device */
    ECF8_ERR_BUILD = -3010,       /* OpenCL program failed to build */
    ECF8_ERR_MISMATCH = -3011,    /* reconstruction differs from the original */
    ECF8_ERR_SHAPE = -3012,       /* operand shapes do not agree */
    ECF8_ERR_EXISTS = -3013       /* the output exists and overwrite was not asked for */
};

/* Name of a status code (library, OpenCL or success); never NULL. */
ECF8_API const char *ecf8_status_string(int status);

/* Detail of the most recent failure on the calling thread, e.g.
 * "tensor 'w': chunk 12 ends past its stream".  Empty when none. */
ECF8_API const char *ecf8_last_error(void);
/* Empties ecf8_last_error() on the calling thread (before a call whose
 * failure should not be read with an earlier one's detail). */
ECF8_API void ecf8_clear_error(void);

/* ---- element types and symbol splits ------------------------------------ */
typedef enum ecf8_dtype {
    ECF8_DTYPE_OTHER = 0, /* any dtype ecf8 does not code: stored verbatim */
    ECF8_DTYPE_F8_E4M3 = 1,
    ECF8_DTYPE_F8_E5M2 = 2,
    ECF8_DTYPE_BF16 = 3,
    ECF8_DTYPE_F16 = 4,
    /* Format 1.3 (docs/FORMAT.md): the FNUZ variants (bias 8 / 16, 0x80 the
     * only NaN, no infinities, no negative zero) are coded as their
     * siblings are; U8, I8 and F8_E8M0 (MX scales; FP4 packed two to a
     * byte) have the byte split only (the whole byte is the symbol). */
    ECF8_DTYPE_F8_E4M3FNUZ = 5,
    ECF8_DTYPE_F8_E5M2FNUZ = 6,
    ECF8_DTYPE_U8 = 7,
    ECF8_DTYPE_I8 = 8,
    ECF8_DTYPE_F8_E8M0 = 9
} ecf8_dtype;

typedef enum ecf8_split {
    ECF8_SPLIT_STORED = 0,   /* bytes kept verbatim */
    ECF8_SPLIT_EXPONENT = 1, /* exponent field coded, sign+mantissa raw */
    ECF8_SPLIT_BYTE = 2,     /* whole 8-bit element / high byte of 16-bit coded */
    ECF8_SPLIT_AUTO = 3      /* encoder option only: smallest measured */
} ecf8_split;

/* safetensors dtype string ("F8_E4M3", "BF16", ...) to ecf8_dtype. */
ECF8_API ecf8_dtype ecf8_dtype_from_name(const char *name);
/* The safetensors dtype string of a coded dtype ("F8_E4M3", "F8_E5M2",
 * "BF16", "F16", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "U8", "I8", "F8_E8M0"),
 * "OTHER" for anything else; a static string, never NULL. */
ECF8_API const char *ecf8_dtype_name(ecf8_dtype dtype);
/* "stored", "exponent", "byte" or "auto"; "?" for a value outside
 * ecf8_split.  A static string, never NULL. */
ECF8_API const char *ecf8_split_name(ecf8_split split);
/* Bytes per element of a coded dtype (1 or 2), 0 for ECF8_DTYPE_OTHER. */
ECF8_API unsigned ecf8_dtype_size(ecf8_dtype dtype);

/* How a (dtype, split) pair cuts an element of `element_bits` bits: the
 * coded symbol is bits [symbol_shift, symbol_shift+symbol_bits), the other
 * raw_bits = element_bits - symbol_bits are stored verbatim after it. */
typedef struct ecf8_split_layout {
    unsigned element_bits;
    unsigned symbol_shift;
    unsigned symbol_bits;
    unsigned raw_bits;
} ecf8_split_layout;
/* Fills *out for a coded dtype and split EXPONENT or BYTE.  Fails, leaving
 * *out unwritten, with ECF8_ERR_UNSUPPORTED for ECF8_DTYPE_OTHER (or any
 * value outside ecf8_dtype) or a split the dtype does not have (U8, I8 and
 * F8_E8M0 have BYTE only), and ECF8_ERR_ARGUMENT for STORED or AUTO. */
ECF8_API int ecf8_split_layout_get(ecf8_dtype dtype, ecf8_split split, ecf8_split_layout *out);

/* ---- codebooks ----------------------------------------------------------- */
/* Optimal length-limited code lengths for `n_symbols` counts (package-merge).
 * lengths[s] = 0 for unused symbols.  One used symbol gets length 1 (the
 * encoder then emits no bits for it: table_bits 0 below); two or more give
 * a complete code (Kraft sum exactly 1) with no length above max_bits.
 * Fails when 2^max_bits < used symbols. */
ECF8_API int ecf8_codebook_build(const uint64_t *counts, unsigned n_symbols,
                                 unsigned max_bits, uint8_t *lengths);

/* One-lookup decode table from code lengths: entry i (for the next
 * `table_bits` stream bits, LSB first) = symbol << 4 | code length.
 * table must hold 1 << table_bits entries (<= 16 KiB).  Rejects over- or
 * under-full codes and lengths above table_bits.  table_bits 0 is the
 * one-symbol code: one entry, length 0. */
ECF8_API int ecf8_decode_table_build(const uint8_t *lengths, unsigned n_symbols,
                                     unsigned table_bits, uint16_t *table);

/* ---- coded tensors -------------------------------------------------------- */
/* Everything needed to decode one tensor: geometry plus pointers into its
 * payload (see docs/FORMAT.md, "Tensor payload").  Element e of chunk c
 * lives at flat index ecf8_chunk_start(s, c) + e. */
typedef struct ecf8_stream {
    ecf8_dtype dtype;
    ecf8_split split;          /* EXPONENT or BYTE for coded streams */
    unsigned code_bits;        /* longest code = decode table index bits */
    unsigned n_symbols;        /* 1 << symbol_bits */
    uint64_t n_elements;
    uint64_t rows, cols;       /* 2-D view: rows = shape[0], cols = rest */
    uint64_t chunk_rows;       /* rows per chunk (1 when chunk_cols < cols) */
    uint64_t chunk_cols;       /* columns per chunk (== cols in row mode) */
    uint64_t n_chunks;
    uint64_t coded_bytes;      /* coded stream incl. its 8 zero pad bytes */
    uint8_t lengths[256];      /* code length per symbol (0 = unused) */
    const uint64_t *chunk_offsets; /* n_chunks + 1 byte offsets into coded */
    const uint8_t *coded;      /* the chunk bit streams */
    /* ECF8_STREAM_LAYOUT_SERIAL (0, as a zeroed struct reads) or _LANES:
     * how a chunk's bits are arranged (docs/FORMAT.md 4.4).  Added in
     * library 1.1 at the end (ecf8_tensor_info grows with it: the shared
     * library's SONAME became libecf8.so.2). */
    unsigned stream_layout;
} ecf8_stream;

/* First flat element index of chunk c (c < n_chunks; not checked). */
ECF8_API uint64_t ecf8_chunk_start(const ecf8_stream *s, uint64_t chunk);
/* Number of elements of chunk c (c < n_chunks; not checked): chunk_rows *
 * chunk_cols, fewer in the last row band and the last column segment. */
ECF8_API uint64_t ecf8_chunk_elements(const ecf8_stream *s, uint64_t chunk);
/* Deprecated: the name of ecf8_chunk_elements in ecf8 1.0 (it counts
 * elements, not chunks). */
ECF8_API ECF8_DEPRECATED("use ecf8_chunk_elements") uint64_t
ecf8_chunk_count(const ecf8_stream *s, uint64_t chunk);

/* Checks every field of *s: split and dtype, alphabet size, code_bits,
 * shape against n_elements, chunk geometry and n_chunks, the code lengths
 * (as ecf8_decode_table_build with code_bits; code_bits must be the longest
 * length), and that chunk_offsets start
 * at 0, never decrease, end at coded_bytes - 8 and give no chunk more bytes
 * than any coding of it; for stream_layout 1 also chunks of at most
 * ECF8_MAX_LANE_CHUNK_ELEMENTS, on 4-byte boundaries, whose lane tables
 * (read from `coded`) fit their symbols and add up to the chunk.  It trusts that `coded` holds coded_bytes bytes
 * and chunk_offsets n_chunks + 1 entries (it cannot see the buffers'
 * sizes); given that, the decoders and kernels cannot read or write out of
 * bounds.  ECF8_ERR_CORRUPT on the first rule broken, ECF8_ERR_ARGUMENT
 * for NULL. */
ECF8_API int ecf8_stream_validate(const ecf8_stream *s);

/* Decodes the whole tensor into out (n_elements * element size bytes)
 * using `threads` threads (0 = one per core).  ECF8_ERR_CORRUPT when a
 * chunk (layout 1: a lane) does not consume exactly its bytes (bits).  `s` must have passed
 * ecf8_stream_validate (streams from ecf8_file_tensor and
 * ecf8_encoded_stream have): the decoders trust its offsets and lengths. */
ECF8_API int ecf8_stream_decode(const ecf8_stream *s, void *out, size_t out_bytes,
                                unsigned threads);
/* The simple bit-at-a-time reference decoder the fast paths are tested
 * against; single-threaded. */
ECF8_API int ecf8_stream_decode_reference(const ecf8_stream *s, void *out, size_t out_bytes);

/* ---- encoding ------------------------------------------------------------- */
typedef struct ecf8_compress_options {
    size_t struct_size;       /* sizeof(ecf8_compress_options) */
    ecf8_split split;         /* AUTO (default), EXPONENT or BYTE; a dtype
                               * without it (U8: no exponent split) gets AUTO */
    unsigned max_code_bits;   /* 1..13, default 12 */
    uint32_t chunk_elements;  /* target elements per chunk, default 4096 */
    unsigned threads;         /* 0 = one per core */
    /* Called from the calling thread with bytes done / total; may be NULL. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
    /* Non-zero: write the index uncompressed, a format 1.0 file that
     * version 1.0 readers open (1.3 when it codes a FNUZ, U8, I8 or
     * F8_E8M0 tensor).  Default 0: the index is zstd-compressed
     * (format 1.1), which matters for checkpoints of many small tensors. */
    int plain_index;
    /* Non-zero: ecf8_compress_path may replace an existing regular file at
     * out_path.  Default 0: it fails with ECF8_ERR_EXISTS instead.  (Added
     * after plain_index: a struct_size that ends at plain_index reads as 0.) */
    int overwrite;
    /* ECF8_STREAM_LAYOUT_SERIAL (default) or ECF8_STREAM_LAYOUT_LANES (a
     * format 1.2 file).  With layout 1 a chunk_elements of 0 or
     * ECF8_DEFAULT_CHUNK_ELEMENTS means ECF8_DEFAULT_LANE_CHUNK_ELEMENTS and
     * targets above ECF8_MAX_LANE_CHUNK_ELEMENTS are lowered to it.  The
     * same code lengths as layout 0; only the bit arrangement differs.
     * (Added after overwrite: a struct_size that ends there reads as 0.) */
    unsigned stream_layout;
} ecf8_compress_options;

/* Sets every field to its default: struct_size = sizeof(ecf8_compress_options),
 * split AUTO, max_code_bits ECF8_DEFAULT_CODE_BITS (12), chunk_elements
 * ECF8_DEFAULT_CHUNK_ELEMENTS (4096), threads 0 (one per core), no progress
 * callback, plain_index 0 (format 1.1), overwrite 0.  ecf8_tensor_analyze,
 * ecf8_tensor_encode, ecf8_compress_path and ecf8_inspect_path take NULL
 * options for these defaults. */
ECF8_API void ecf8_compress_options_init(ecf8_compress_options *options);

/* An encoded tensor payload owned by the library. */
typedef struct ecf8_encoded ecf8_encoded;

/* Per-split size analysis of one tensor, the "to compress or not?" answer. */
typedef struct ecf8_tensor_analysis {
    ecf8_split best_split;            /* STORED when coding would not shrink it */
    uint64_t source_bytes;
    uint64_t payload_bytes[3];        /* by split: STORED, EXPONENT, BYTE (0 = n/a) */
    uint64_t entropy_bound_bytes[3];  /* order-0 entropy + raw bits, no metadata */
    /* The exponent field; for U8, I8 and F8_E8M0 (no exponent split) the
     * whole byte. */
    double exponent_entropy_bits;     /* entropy of the exponent field */
    uint64_t exponent_histogram[256]; /* counts of the exponent field values */
    unsigned exponent_symbols;        /* number of exponent field values */
} ecf8_tensor_analysis;

/* Measures a rows x cols tensor of `dtype` (data little-endian) exactly as
 * ecf8_tensor_encode would cut it, without encoding. */
ECF8_API int ecf8_tensor_analyze(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                                 const ecf8_compress_options *options,
                                 ecf8_tensor_analysis *out);

/* Encodes a tensor viewed as rows x cols (rows * cols elements).  split
 * AUTO picks the smallest payload; the result may be STORED. */
ECF8_API int ecf8_tensor_encode(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                                const ecf8_compress_options *options, ecf8_encoded **out);
/* Frees an encoded tensor and the payload the library made for it; NULL
 * is a no-op.  Pointers from ecf8_encoded_payload and ecf8_encoded_stream
 * are invalid afterwards. */
ECF8_API void ecf8_encoded_free(ecf8_encoded *enc);
/* The payload bytes and the stream describing them (pointers into the
 * payload, valid until ecf8_encoded_free). */
ECF8_API const void *ecf8_encoded_payload(const ecf8_encoded *enc, size_t *bytes);
/* The split the payload uses: EXPONENT or BYTE, or STORED when it holds the
 * tensor's bytes verbatim (never AUTO). */
ECF8_API ecf8_split ecf8_encoded_split(const ecf8_encoded *enc);
/* The stream describing a coded payload; NULL for a STORED one.  A STORED
 * payload is not a copy: ecf8_encoded_payload returns the `data` pointer
 * given to ecf8_tensor_encode, valid only as long as the caller keeps it. */
ECF8_API const ecf8_stream *ecf8_encoded_stream(const ecf8_encoded *enc);

/* ---- the .ecf8 container ------------------------------------------------- */
typedef struct ecf8_file ecf8_file;

typedef struct ecf8_tensor_info {
    const char *name;
    const char *dtype_name;   /* as in the source safetensors */
    ecf8_dtype dtype;         /* the name's (a stored U8 too, whose code is 0 on disk) */
    ecf8_split split;
    unsigned ndim;
    uint64_t shape[ECF8_MAX_DIMS];
    uint64_t n_elements;
    uint64_t source_bytes;    /* size of the tensor's original bytes */
    uint64_t payload_bytes;   /* bytes of its payload in the container (format 1.1:
                               * the coded stream; offsets and lengths are in the index) */
    uint64_t checksum;        /* XXH3-64 of the original bytes */
    unsigned source_file;     /* index of the source file it belongs to */
    const void *payload;      /* into the container's bytes in memory */
    ecf8_stream stream;       /* valid when split is EXPONENT or BYTE; its pointers
                               * stay valid until ecf8_file_close */
} ecf8_tensor_info;

/* Reads the whole container into private memory (read(), not mmap: a file
 * truncated or rewritten meanwhile is an ECF8_ERR_IO, never a SIGBUS or
 * bytes changing under the decoder) and fully validates its header and
 * index.  Needs memory for the whole file (ecf8_decompress_path and
 * ecf8_verify_path read one payload at a time instead). */
ECF8_API int ecf8_file_open(const char *path, ecf8_file **out);
/* Reads only the header and index of a container (memory for the index,
 * not the payloads: listing a checkpoint of any size is quick), validated
 * as ecf8_file_open validates them.  Tensor infos from such a file have
 * payload and stream.coded NULL (the geometry, code lengths and chunk
 * offsets are there); ecf8_file_read_tensor reads a payload from the file
 * when asked, and a payload changed on disk since the open is an
 * ECF8_ERR_IO.  A format 1.0 file (plain index, offsets in the payloads)
 * is read whole, as by ecf8_file_open. */
ECF8_API int ecf8_file_open_index(const char *path, ecf8_file **out);
/* The container's format version (docs/FORMAT.md: major 1; minor 0, 1 or 2). */
ECF8_API void ecf8_file_format_version(const ecf8_file *file, unsigned *major, unsigned *minor);
/* The same for a container already in memory (read into a buffer, or your
 * own mapping): `size` bytes at `data`, checked exactly as ecf8_file_open
 * checks a file, with the same status for the same bytes.  Nothing is
 * copied: the caller keeps the bytes alive and unchanged until
 * ecf8_file_close, and every pointer the file hands out points into them.
 * `data` must be 8-byte aligned (as malloc and mmap memory is), else
 * ECF8_ERR_ARGUMENT; NULL with size 0 is an empty (corrupt) container. */
ECF8_API int ecf8_file_open_memory(const void *data, size_t size, ecf8_file **out);
/* Frees the container's bytes (a file's copy; memory given to
 * ecf8_file_open_memory is left to the caller) and frees everything the
 * open made; NULL is a no-op.  Every pointer obtained from the file (tensor infos, names,
 * streams, payloads, source paths and prefixes) is invalid afterwards. */
ECF8_API void ecf8_file_close(ecf8_file *file);
/* Number of tensors, over all source files. */
ECF8_API size_t ecf8_file_tensor_count(const ecf8_file *file);
/* Number of source files: 1 for a container made from one .safetensors
 * file, one per *.safetensors and *.json file of a directory otherwise. */
ECF8_API size_t ecf8_file_source_count(const ecf8_file *file);
/* Relative path of source file i ("" for a single-file container). */
ECF8_API const char *ecf8_file_source_path(const ecf8_file *file, size_t i);
/* Size of source file i as it was (and as decompress rebuilds it); 0 when
 * i is out of range. */
ECF8_API uint64_t ecf8_file_source_bytes(const ecf8_file *file, size_t i);
/* The original bytes of source file i before its first tensor (the
 * safetensors header, or a whole non-tensor file); NULL when i is out of
 * range.  Points into the container's bytes. */
ECF8_API const void *ecf8_file_source_prefix(const ecf8_file *file, size_t i, size_t *bytes);
/* Size of the container file in bytes. */
ECF8_API uint64_t ecf8_file_size(const ecf8_file *file);
/* Non-zero when the container was made from a directory of shards. */
ECF8_API int ecf8_file_is_directory(const ecf8_file *file);
/* Copies the description of tensor `index` (0 .. tensor_count - 1, in
 * file order) into *out.  Its pointers (name, dtype_name, payload, the
 * stream's) point into the open file and stay valid until ecf8_file_close.
 * ECF8_ERR_ARGUMENT when index is out of range. */
ECF8_API int ecf8_file_tensor(const ecf8_file *file, size_t index, ecf8_tensor_info *out);
/* Index of the first tensor whose name is exactly `name`.  On a miss
 * returns ECF8_ERR_NOT_FOUND and leaves *index unchanged. */
ECF8_API int ecf8_file_find(const ecf8_file *file, const char *name, size_t *index);
/* Decodes tensor `index` into out (source_bytes) and checks its checksum. */
ECF8_API int ecf8_file_read_tensor(const ecf8_file *file, size_t index, void *out,
                                   size_t out_bytes, unsigned threads);
/* Threads: an open ecf8_file is read-only.  Any number of threads may call
 * the functions above on one file at once (ecf8_file_tensor,
 * ecf8_file_find, ecf8_file_read_tensor, ...) and decode its tensors
 * side by side; only ecf8_file_close must wait until they all returned.
 * ecf8_file_read_tensor with threads != 1 decodes on the process-wide pool,
 * which runs one decode at a time (a second caller waits for it): loader
 * threads that decode in parallel each use an ecf8_decoder instead. */

/* ---- decoders: CPU decoding on the caller's threads ---------------------- */
/* A decoding context that owns its threads, like zstd's ZSTD_DCtx.
 * `threads` 1 decodes on the calling thread and never uses a pool, so N
 * loader threads with one single-threaded decoder each decode N tensors at
 * once; `threads` > 1 gives the decoder a private pool of threads - 1
 * helper threads (started at its first decode that uses them, ended by
 * ecf8_decoder_free), the calling thread being the last; 0 is one per
 * core.  Decoders never use or wait for the process-wide pool.  One decoder
 * must not be used by two threads at once (different decoders may be, on
 * the same file).  NULL when out of memory. */
typedef struct ecf8_decoder ecf8_decoder;
ECF8_API ecf8_decoder *ecf8_decoder_create(unsigned threads);
/* The decoder's thread count (0 resolved to the core count); 0 for NULL. */
ECF8_API unsigned ecf8_decoder_threads(const ecf8_decoder *decoder);
/* ecf8_file_read_tensor on the decoder's threads: tensor `index` of `file`
 * decoded into out (out_bytes >= its source_bytes) and checked against its
 * checksum; the same statuses. */
ECF8_API int ecf8_decoder_read_tensor(ecf8_decoder *decoder, const ecf8_file *file, size_t index,
                                      void *out, size_t out_bytes);
/* Ends the decoder's threads and frees it; NULL is a no-op.  Not while a
 * ecf8_decoder_read_tensor on it runs. */
ECF8_API void ecf8_decoder_free(ecf8_decoder *decoder);

/* The format's per-tensor checksum of `bytes` decoded bytes (XXH3-64, seed
 * 0; ecf8_tensor_info.checksum): for callers that decode on a device with
 * ecf8_cl_enqueue_decode and check the result themselves. */
ECF8_API uint64_t ecf8_checksum64(const void *data, size_t bytes);

/* ---- helpers: scales, in-memory tensors, element values ------------------- */
/* Where an FP8 weight keeps its scales: the naming rules of the published
 * FP8 checkpoint families, where the dequantised weight is q * scale.  For a
 * weight "A.weight" (or "A.kernel", read as "A.weight") the conventions
 * name these tensors:
 *
 *   conv.  scale tensor        family: scale dtype and shape
 *   0      A.weight_scale_inv  DeepSeek-V3: F32 [ceil(N/128), ceil(K/128)] blocks
 *                              Qwen3-FP8: BF16/F16 blocks
 *                              Mistral (HF): F32 scalar []
 *   1      A.weight_scale      compressed-tensors, AutoFP8, ModelOpt, fbgemm:
 *                              scalar [] or [1], per-channel [N, 1], blocks,
 *                              MXFP8 U8 (E8M0) [N, K/32]
 *   2      A.qscale_weight     Mistral native (consolidated.safetensors)
 *   3      A.scale             DeepSeek-V4: F8_E8M0 128x128 or 32x32 blocks
 *
 * A weight N with neither suffix has conventions 0 and 1 only: N_scale_inv,
 * N_scale.  ("_scale_inv" is a historical name: every family multiplies.)
 *
 * ecf8_scale_name writes the scale name of `weight_name` under `convention`
 * into out: ECF8_ERR_NOT_FOUND (out "") for a convention past the table or
 * one that does not apply to the name (2 and 3 without the suffix),
 * ECF8_ERR_ARGUMENT when it does not fit in out_size bytes (out is then
 * ""), e.g. for error messages and files other than containers. */
#define ECF8_SCALE_CONVENTIONS 4
ECF8_API int ecf8_scale_name(const char *weight_name, unsigned convention, char *out,
                             size_t out_size);
/* Index of the scale tensor of tensor `weight_index`: the one tensor named
 * by a convention of the table above.  ECF8_ERR_NOT_FOUND when there is
 * none (ecf8_last_error() names every candidate), ECF8_ERR_CORRUPT when
 * more than one exists (which applies is ambiguous; the message names each
 * one present), ECF8_ERR_ARGUMENT for an index out of range; *scale_index is
 * written on success only.  Neither dtype nor shape is checked:
 * ecf8_cl_matmul_create checks the scales it is given. */
ECF8_API int ecf8_file_find_scale(const ecf8_file *file, size_t weight_index, size_t *scale_index);

/* Describes an in-memory encoding as ecf8_file_tensor describes a
 * container's tensor, e.g. for ecf8_cl_tensor_create and
 * ecf8_cl_matmul_create: `dtype`, `data`, `rows` and `cols` are the ones
 * given to ecf8_tensor_encode (data for the checksum), and the tensor is
 * 2-D [rows, cols] with source_file 0.  *out points into `enc` (payload,
 * stream; a STORED payload is `data` itself) and at `name` (NULL: ""), and
 * stays valid as long as they do.  ECF8_ERR_ARGUMENT when the encoding is
 * not of that dtype and shape, or for NULL. */
ECF8_API int ecf8_encoded_tensor_info(const ecf8_encoded *enc, const char *name, ecf8_dtype dtype,
                                      const void *data, uint64_t rows, uint64_t cols,
                                      ecf8_tensor_info *out);

/* The exact value of element `index` of little-endian `data` of a coded
 * dtype as a float (every value of every coded dtype is one): subnormals
 * exactly, signed zeros and E5M2/F16 infinities kept.  A NaN keeps its
 * sign; FP8 NaNs (E4M3 S.1111.111, E5M2 S.11111.xx, the FNUZ 0x80, E8M0
 * 0xFF) read as the quiet NaN, BF16 and F16 NaNs keep their payload (BF16
 * bit for bit).  F8_E8M0 is 2^(e-127); U8 and I8 their integer value.
 * NaN for ECF8_DTYPE_OTHER or NULL data. */
ECF8_API float ecf8_element_to_float(ecf8_dtype dtype, const void *data, size_t index);
/* The same for elements 0 .. n-1 into out[0 .. n-1].  ECF8_ERR_UNSUPPORTED
 * for ECF8_DTYPE_OTHER, ECF8_ERR_ARGUMENT for NULL with n > 0. */
ECF8_API int ecf8_elements_to_float(ecf8_dtype dtype, const void *data, size_t n, float *out);

/* Compresses a .safetensors file, or a directory holding a sharded
 * checkpoint (*.safetensors plus *.json), into out_path.  The output is
 * written to a temporary name (".ecf8-XXXXXX" in out_path's directory) and
 * renamed only on success.  Output rules, checked before any work (and, for
 * an existing file, again at the rename), shared with ecf8_decompress_path:
 *  - an empty path is refused (ECF8_ERR_ARGUMENT, "empty file name");
 *  - an out_path that exists and is not a regular file is refused
 *    (ECF8_ERR_ARGUMENT, "not a regular file"), whatever `overwrite` says:
 *    a symbolic link (even to a regular file: the rename would replace the
 *    link), a device such as /dev/null or /dev/stdout, a FIFO, a socket or
 *    a directory is never replaced;
 *  - an out_path that names in_path is refused;
 *  - an existing regular file is replaced only with options->overwrite,
 *    else ECF8_ERR_EXISTS ("PATH: already exists").
 * Failures name the file at fault: a full disk names out_path. */
ECF8_API int ecf8_compress_path(const char *in_path, const char *out_path,
                                const ecf8_compress_options *options);
/* Re-lays the container at in_path as a new one at out_path with every
 * coded tensor in options->stream_layout, keeping its code lengths (no new
 * statistics: a lossless bit reshuffle), split, names and sources; the
 * index stays plain or compressed as it was.  Tensors already in that
 * layout keep their chunks; others get chunks of the layout's target
 * (chunk_elements as ecf8_compress_path reads it), so converting a default
 * layout-0 file to 1 and back gives it byte for byte.  Reads options'
 * stream_layout, chunk_elements, threads, progress and overwrite; the
 * output follows ecf8_compress_path's rules.  A decode-only library
 * returns ECF8_ERR_UNSUPPORTED. */
ECF8_API int ecf8_convert_path(const char *in_path, const char *out_path,
                               const ecf8_compress_options *options);
/* ecf8_compress_path that also gives the number of tensors whose dtype
 * ecf8 codes (F8_E4M3, F8_E5M2, BF16, F16; empty ones not counted): 0 means
 * the container only stores the checkpoint, a little larger than it was. */
ECF8_API int ecf8_compress_path_counted(const char *in_path, const char *out_path,
                                        const ecf8_compress_options *options,
                                        uint64_t *codable_tensors);
/* Non-zero when a directory entry of this name goes into a container made
 * from its directory: a *.safetensors or *.json file whose name does not
 * start with '.' (docs/FORMAT.md 3.1); the reader accepts no other source
 * names, so a container never writes other files. */
ECF8_API int ecf8_checkpoint_file_name(const char *name);
/* Rebuilds the original file (or directory) byte for byte, checking every
 * tensor's checksum, with `threads` decoder threads (0 = one per core).  A
 * directory container writes its files into out_path, created if missing
 * (other files there are left alone; a symbolic link to a directory is
 * followed, anything else there that is not a directory is refused).  Each
 * output file follows ecf8_compress_path's rules, all checked before
 * anything is decoded; ecf8_decompress_path never replaces an existing file
 * (ECF8_ERR_EXISTS): use ecf8_decompress_path_ex with overwrite.  All or nothing: each output file is
 * written under a temporary name next to its destination, and they are
 * renamed into place only once every one is complete; on failure the
 * temporaries are removed, existing files keep their contents and a
 * directory made by the call is removed.  Only a rename failing after
 * others succeeded can leave a partial result. */
ECF8_API int ecf8_decompress_path(const char *in_path, const char *out_path, unsigned threads);
/* Decodes every tensor and checks every checksum; with original_path,
 * also compares the reconstruction with it byte for byte. */
ECF8_API int ecf8_verify_path(const char *in_path, const char *original_path, unsigned threads);

/* Options of ecf8_decompress_path_ex and ecf8_verify_path_ex. */
typedef struct ecf8_decode_options {
    size_t struct_size;       /* sizeof(ecf8_decode_options); a smaller one is refused */
    unsigned threads;         /* decoder threads, 0 = one per core */
    /* Called from the calling thread with bytes of the original file(s)
     * rebuilt (or compared) so far and their total: first with 0, then
     * after each source's header bytes and each tensor.  `done` never
     * decreases, and a call that succeeds ends with done == total.  May be
     * NULL. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
    /* Decompress only: non-zero lets existing regular output files be
     * replaced (see ecf8_decompress_path).  Default 0: ECF8_ERR_EXISTS.
     * (Added after progress_user: a struct_size ending there reads as 0.) */
    int overwrite;
} ecf8_decode_options;

/* Sets every field to its default: struct_size, threads 0, no progress,
 * overwrite 0. */
ECF8_API void ecf8_decode_options_init(ecf8_decode_options *options);
/* ecf8_decompress_path and ecf8_verify_path with options (NULL: the
 * defaults); the functions without _ex are these with threads only. */
ECF8_API int ecf8_decompress_path_ex(const char *in_path, const char *out_path,
                                     const ecf8_decode_options *options);
ECF8_API int ecf8_verify_path_ex(const char *in_path, const char *original_path,
                                 const ecf8_decode_options *options);

/* ---- checkpoint directories: one container per shard -------------------- */
/* A checkpoint as it is published (Hugging Face Hub): a directory of
 * shards (model-00001-of-00003.safetensors ...), their index
 * (model.safetensors.index.json: which shard holds which tensor), config
 * and tokenizer files, sometimes original/ or a consolidated.safetensors.
 * ecf8_compress_dir writes a directory of the same layout in which every
 * *.safetensors file is replaced by its container, NAME.safetensors ->
 * NAME.ecf8 (made as ecf8_compress_path makes one, a single-file
 * container), and every other file is copied verbatim, so each output file
 * stays below the Hub's size limit and decompress rebuilds the directory
 * byte for byte.  Which files:
 *  - regular files at any depth below in_dir, symbolic links followed (a
 *    Hugging Face cache snapshot is made of them); entries whose name starts
 *    with '.' (.git, .cache, temporaries) are skipped, with all below them;
 *  - include/exclude: shell patterns (fnmatch(3), no flags: '*' also
 *    matches '/') on the path relative to in_dir.  A file is taken when it
 *    matches no exclude pattern and, if any include pattern is given, one
 *    of those; a directory that matches an exclude pattern is skipped whole.
 *    Default: everything.  Usual exclusions: "original" (a directory of
 *    the same weights in another format) and "consolidated.safetensors"
 *    (a duplicate of the shards);
 *  - anything else taken that is not a regular file, and a file named
 *    *.ecf8 (decompress would take it for a shard), is an error.
 * Every *.safetensors.index.json taken is checked first (its "weight_map"
 * only: the tensor names are not looked up in the shards).  A malformed
 * index (not JSON, no "weight_map" object, a value that is not a
 * *.safetensors path below the index's directory), a shard it names that is
 * missing, names PREFIX-NNNNN-of-MMMMM that are not all MMMMM shards, and a
 * shard of that PREFIX in its directory that it does not name are
 * ECF8_ERR_CORRUPT; a shard it names that the patterns leave out is
 * ECF8_ERR_ARGUMENT.  Each output file must be
 * at most max_file_bytes (a container is at most its shard plus a small
 * index; a copied file is its size): a larger one fails the call
 * (ECF8_ERR_ARGUMENT), nothing is split.
 *
 * The output directory is written all or nothing: it is built under a
 * hidden temporary name beside out_dir (".ecf8-XXXXXX"), every file synced,
 * then renamed into place.  An existing out_dir is ECF8_ERR_EXISTS unless
 * options->overwrite, which replaces it only once the new one is complete
 * (swapped in one rename where the file system can, the old one removed
 * after).  Refused whatever overwrite says: an out_dir that is a symbolic
 * link or not a directory, the input or a directory holding it, and one
 * inside the input.  On failure, and when ecf8_remove_temporary_files runs
 * from a signal handler, the staged tree is removed: nothing partial is
 * left.  A trailing '/' on out_dir is allowed. */
#define ECF8_HUB_FILE_LIMIT 50000000000ull /* 50 GB, the Hub's limit per file */
typedef struct ecf8_dir_options {
    size_t struct_size;          /* sizeof(ecf8_dir_options); a smaller one is refused */
    const char *const *include;  /* n_include patterns (see above) */
    size_t n_include;
    const char *const *exclude;  /* n_exclude patterns */
    size_t n_exclude;
    uint64_t max_file_bytes;     /* largest output file; 0 = ECF8_HUB_FILE_LIMIT */
} ecf8_dir_options;
/* struct_size, no patterns, max_file_bytes ECF8_HUB_FILE_LIMIT. */
ECF8_API void ecf8_dir_options_init(ecf8_dir_options *options);
/* Compresses the checkpoint directory in_dir into out_dir as above, one
 * shard after the other, each with options->threads (split, chunk,
 * max_code_bits and layout as ecf8_compress_path reads them; progress
 * counts the bytes of the files of in_dir).  options or dir_options NULL:
 * the defaults.  Failures name the file at fault. */
ECF8_API int ecf8_compress_dir(const char *in_dir, const char *out_dir,
                               const ecf8_compress_options *options,
                               const ecf8_dir_options *dir_options);
/* Rebuilds the checkpoint directory from one written by
 * ecf8_compress_dir: every *.ecf8 file below in_dir (a single-file
 * container; a directory container is refused) is decompressed to
 * *.safetensors, every other file copied, names starting with '.' skipped,
 * the shard indexes checked as above against the containers present
 * (NAME.safetensors is there when NAME.ecf8 is).  All or nothing, with
 * out_dir's rules and options->overwrite as in ecf8_compress_dir; decoded
 * on the CPU with options->threads. */
ECF8_API int ecf8_decompress_dir(const char *in_dir, const char *out_dir,
                                 const ecf8_decode_options *options);
/* Checks a directory written by ecf8_compress_dir without writing
 * anything: the indexes, and every container's checksums; with
 * original_dir also that each file it covers (NAME.safetensors for
 * NAME.ecf8, the copied files themselves) is there and identical
 * (ECF8_ERR_MISMATCH).  Files of original_dir that in_dir does not cover
 * are not looked at. */
ECF8_API int ecf8_verify_dir(const char *in_dir, const char *original_dir,
                             const ecf8_decode_options *options);

/* Removes every temporary output file (and every output directory it made)
 * that ecf8 calls of this process have created and not yet renamed into
 * place or removed, for a signal handler on the way out: it is
 * async-signal-safe and may interrupt any thread, even one in an ecf8 call.
 * From its first call on, ecf8 creates no more outputs (the calls fail with
 * ECF8_ERR_IO, "interrupted"): call it only when the process is about to
 * end, e.g. a SIGINT handler that then restores the default action and
 * raises the signal again.  Temporaries are named ".ecf8-XXXXXX" in the
 * output's directory; a process killed by SIGKILL leaves its own. */
ECF8_API void ecf8_remove_temporary_files(void);

/* Output files of your own under the same rules (ecf8_compress_path's):
 * ecf8_output_open checks `path` (an empty name, anything there that is not
 * a regular file, the file `input` itself (NULL: no check), and an existing
 * file unless `overwrite`) and creates its temporary; write appends;
 * commit renames it into place, abort removes it; both free `out`.  The
 * temporary is in the registry ecf8_remove_temporary_files empties.  The
 * CLI's `matmul --output` writes through it. */
typedef struct ecf8_output ecf8_output;
ECF8_API int ecf8_output_open(const char *path, const char *input, int overwrite,
                              ecf8_output **out);
ECF8_API int ecf8_output_write(ecf8_output *out, const void *data, size_t bytes);
ECF8_API int ecf8_output_commit(ecf8_output *out);
ECF8_API void ecf8_output_abort(ecf8_output *out);

/* ---- inspection ("to compress or not?") --------------------------------- */
typedef struct ecf8_tensor_report {
    char *name;
    char *dtype_name;
    ecf8_dtype dtype;
    unsigned ndim;
    uint64_t shape[ECF8_MAX_DIMS];
    uint64_t n_elements;
    ecf8_split split;             /* as stored (.ecf8) or as auto would store it */
    uint64_t source_bytes;
    uint64_t compressed_bytes;    /* payload bytes, actual or predicted */
    uint64_t entropy_bound_bytes; /* min over splits of the order-0 bound (0: container) */
    ecf8_tensor_analysis analysis; /* zeroed for dtypes ecf8 does not code and
                                    * for a container's tensors */
} ecf8_tensor_report;

typedef struct ecf8_report {
    uint64_t file_bytes;          /* size of the inspected file(s) */
    uint64_t source_bytes;        /* size of the original safetensors file(s) */
    int is_container;             /* 1 for .ecf8 input */
    size_t n_tensors;
    ecf8_tensor_report *tensors;
} ecf8_report;

/* Per-tensor analysis of a .safetensors file, or the description of an
 * .ecf8 file from its index (validated; its tensors are not decoded, so
 * their analysis is zeroed and entropy_bound_bytes 0: decoding and
 * checking every tensor is ecf8_verify_path's job). */
ECF8_API int ecf8_inspect_path(const char *path, const ecf8_compress_options *options,
                               ecf8_report *out);
/* Frees the report's tensors and names and zeroes *report, so a second call
 * (or one on a zeroed report) is harmless; NULL is a no-op. */
ECF8_API void ecf8_report_free(ecf8_report *report);

#ifdef __cplusplus
}
#endif
#endif /* ECF8_H */
