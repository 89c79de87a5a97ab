/* bench_codec.h - what the two halves of ecf8-bench-codec share:
 * bench_codec.c (reading the file, the measurements, main) fills a
 * `results` per file; bench_codec_report.c prints it (JSON, the table, the
 * summary of several files). */
#ifndef ECF8_BENCH_CODEC_H
#define ECF8_BENCH_CODEC_H

#include "ecf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* The "Done means" targets (issue 2): the table's PASS/FAIL verdicts. */
#define TARGET_BOUND_RATIO 1.01
#define TARGET_ENCODE_MBPS 150.0
#define TARGET_DECODE_GBPS 1.0

/* --clock: CLOCK_MONOTONIC or CLOCK_THREAD_CPUTIME_ID; --stat min: the
 * fastest repeat instead of the median.  Defined in bench_codec.c. */
extern clockid_t g_clock;
extern bool g_stat_min;

static inline double rate(uint64_t bytes, double seconds, double unit)
{
    return seconds > 0 ? (double)bytes / seconds / unit : 0;
}

static inline const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- the safetensors file ---------------------------------------------- */
typedef struct tensor tensor; /* one tensor's figures: bench_codec.c */

typedef struct model {
    const char *path;
    uint8_t *data;
    size_t size;
    uint64_t header_bytes; /* 8 + JSON header */
    tensor *t;
    size_t nt;
    time_t mtime_s;
    long mtime_ns;
} model;

/* ---- groups (dtype, split) for the breakdown ---------------------------- */
#define MAX_GROUPS 16
typedef struct group {
    ecf8_dtype dtype;
    ecf8_split split;
    unsigned tensors;
    uint64_t elements, source_bytes, payload_bytes, bound_bytes;
    double enc1_s, dec1_s; /* medians */
} group;

/* ---- options ------------------------------------------------------------ */
typedef enum { MODE_ALL, MODE_DECODE, MODE_ENCODE } bench_mode;

typedef struct bench_opts {
    unsigned threads; /* the "all threads" figure: 0 = one per core */
    unsigned repeat;
    bool json, zstd;
    bench_mode mode;
} bench_opts;

/* ---- results ----------------------------------------------------------- */
typedef struct results {
    uint64_t source_bytes, header_bytes, coded_source_bytes, stored_bytes;
    uint64_t ecf8_bytes, ecf8_payload_bytes, zstd19_bytes;
    uint64_t paper_e4m3_bytes, paper_all_bytes, bound_bytes;
    unsigned n_tensors, n_coded;
    bool roundtrip_file_ok, roundtrip_mem_ok, zstd_cached;
    double zstd19_compress_s;
    /* medians, seconds */
    double enc1, encA, dec1, decA, file1, fileA, verified1, zstd_dec, compress_file;
    unsigned threads_all;
    /* ecf8_bytes - entropy_bound_bytes, by cause (bytes) */
    double ov_split, ov_huffman, ov_chunk_pad, ov_offsets, ov_lengths, ov_stream_pad,
        ov_stored, ov_container;
    group groups[MAX_GROUPS];
    unsigned n_groups;
} results;

/* ---- output (bench_codec_report.c) --------------------------------------- */
/* One JSON object per file on stdout (--json). */
void print_json(const model *m, const results *r, const bench_opts *o);
/* The human-readable table of one file. */
void print_table(const model *m, const results *r, const bench_opts *o);
/* One line per file: every "Done means" figure and its verdict. */
void print_summary(const char *const *files, const results *r, size_t nf, const bench_opts *o);

#endif
