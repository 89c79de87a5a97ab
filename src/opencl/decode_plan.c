/* decode_plan.c - the decode kernels and program options for a stream on a
 * device (decode_plan.h).
 *
 * CPU devices run the pairs kernel (a few chunks per work-item in scalar
 * code, one or two elements per lookup) on FP8 tensors of few chunks whose
 * elements fit its 13-bit lookups, else the lanes kernel (many chunks per
 * work-item in vector lanes) when the chunk outputs are 4-byte aligned and
 * the device has vector registers of 256 bits or more; every other case
 * the portable kernel.  GPUs run the cooperative kernel.  Stream layout 1
 * runs the streams kernel on every device (plan_streams).  Vector widths
 * come from the device (CL_DEVICE_NATIVE_VECTOR_WIDTH_INT), never from the
 * tensor alone: a 16-lane uint vector on an AVX2 host is emulated, slowly,
 * and PoCL's compiler prints ABI warnings for it on stderr. */
#include "decode_plan.h"
#include "stream_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pairs kernel: chunks per work-item (4 measured fastest on PoCL, 3 to
 * 6 tried: more lanes spill), and the chunk count from which the lanes
 * kernel is faster: it fills its vectors there, and its gathers then beat
 * scalar lookups (PoCL on a 2-core Xeon, FP8 chunks of 4096 elements,
 * medians of 5: pairs 1.5-2.8x the lanes kernel from 4 to 12 chunks, 0.88x
 * at 16, 0.44-0.65x from 24 to 96). */
#define PAIRS_NL 4
#define PAIRS_BELOW_CHUNKS 16

/* Tensors of at most this many elements (biases, norms: a few chunks)
 * share one program per element layout, built for the longest code class
 * (the table mask is a kernel argument, so any shorter code decodes with
 * it).  Their decode takes microseconds whatever the unrolling, while each
 * distinct program costs a build (on PoCL about a second from source,
 * several milliseconds from the binary caches), and a checkpoint's small
 * tensors spread over every code length (MiniLM's 141 tensors: 6 programs
 * with this rule, 12 without). */
#define SMALL_TENSOR_ELEMENTS 16384

/* The lanes kernel's shape for `n_chunks` chunks on `units` compute units
 * with vectors of at most `max_vw` lanes: VW x NSETS lanes per work-item.
 * A work-item costs its full lane count whatever it holds, and up to three
 * full vectors' worth of lanes still overlap more gathers (more spill:
 * each set keeps seven vectors live, and AVX2 has half the registers of
 * AVX-512, at half the width), so: work-items of at most 3 * max_vw
 * lanes, each as full as 8-lane steps allow (16-lane vectors where they
 * pack as tightly and the device has them), and a multiple of the unit
 * count of them when there are several (PoCL hands each thread its share
 * at once).  A tensor of that many chunks or fewer stays one work-item:
 * split, its halves are shorter than PoCL takes to wake a second thread
 * (measured: two 30 us work-groups run one after the other). */
static void lanes_shape(uint64_t n_chunks, cl_uint units, unsigned max_vw,
                        const ecf8_cl_tuning *tuning, unsigned *vw, unsigned *nsets)
{
    uint64_t max_lanes = 3u * max_vw;
    uint64_t items = n_chunks > max_lanes ? (n_chunks + max_lanes - 1) / max_lanes : 1;
    if (items > 1 && units > 1) items = (items + units - 1) / units * units;
    uint64_t lanes = (n_chunks + items - 1) / items;
    unsigned want = lanes % 16 == 0 || lanes % 16 > 8 ? 16 : 8;
    if (tuning->decode_vw) want = tuning->decode_vw == 16 ? 16 : 8;
    *vw = want > max_vw ? max_vw : want;
    uint64_t sets = tuning->decode_nsets ? tuning->decode_nsets : (lanes + *vw - 1) / *vw;
    *nsets = (unsigned)(sets > 8 ? 8 : sets ? sets : 1);
}

/* Can the lanes kernel decode this stream?  Its chunk outputs must be
 * 4-byte aligned (given a 4-byte aligned offset), and the stream of every
 * group of `lanes` chunks, plus what a runaway decode of corrupt data may
 * read past it, must fit its 32-bit bit positions. */
static bool lanes_usable(const ecf8_stream *s, unsigned width, unsigned elem_bits, uint64_t lanes)
{
    if ((s->cols * width) % 4 || (s->chunk_cols * width) % 4) return false;
    uint64_t runaway = (s->chunk_rows * s->chunk_cols * elem_bits + 7) / 8 + 8;
    for (uint64_t c = 0; c < s->n_chunks; c += lanes) {
        uint64_t end = c + lanes < s->n_chunks ? c + lanes : s->n_chunks;
        if (s->chunk_offsets[end] - s->chunk_offsets[c] + runaway >= (1u << 28)) return false;
    }
    return true;
}

/* The longest code length that unrolls like `code_bits` does (same
 * elements per window in both kernels): tensors of one class share a
 * program, so a checkpoint needs a handful of builds, not one per length. */
static unsigned code_bits_class(unsigned code_bits, unsigned raw_bits)
{
    unsigned e = code_bits + raw_bits, e1 = e ? e : 1;
    unsigned best = code_bits;
    for (unsigned c = code_bits + 1; c <= ECF8_MAX_CODE_BITS; c++) {
        unsigned f = c + raw_bits;
        if (32 / f != 32 / e1 || 33 / f != 33 / e1) break;
        best = c;
    }
    return best;
}

static bool tuned(const ecf8_cl_tuning *tuning, const char *kernel)
{
    return tuning->decode_kernel && !strcmp(tuning->decode_kernel, kernel);
}

unsigned ecf8_cl_decode_vector_lanes(const ecf8_cl_device_caps *caps)
{
    if (!caps->is_cpu) return 0;
    return caps->vector_bits >= 512 ? 16 : caps->vector_bits >= 256 ? 8 : 0;
}

/* Stream layout 1: the streams kernel whatever the tuning's kernel (the
 * others decode layout 0 only), with the widest vectors the device has
 * (or decode_vw below that; decode_vw 1: the GPU shape) on CPUs, one chunk per work-item unless
 * decode_nsets asks for fewer vectors (a divisor of 32 / VW); one lane per
 * work-item elsewhere.  Any output alignment (byte stores where a chunk's
 * output is not 4-byte aligned), so no fallback is needed.  Its code
 * length class counts the code bits only: the raw bits are in the plane,
 * not in the lane streams. */
static void plan_streams(const ecf8_cl_device_caps *caps, const ecf8_stream *s, unsigned width,
                         const ecf8_split_layout *l, bool small, const ecf8_cl_tuning *tuning,
                         ecf8_cl_decode_plan *plan)
{
    unsigned max_vw = ecf8_cl_decode_vector_lanes(caps);
    unsigned vw = 1;
    if (max_vw && tuning->decode_vw != 1) {
        vw = max_vw;
        if (tuning->decode_vw == 8 || tuning->decode_vw == 16)
            vw = tuning->decode_vw < max_vw ? tuning->decode_vw : max_vw;
    }
    unsigned nsets = vw > 1 ? 32 / vw : 1; /* a chunk per work-item on CPUs */
    if (vw > 1 && tuning->decode_nsets && tuning->decode_nsets <= 32 / vw &&
        (32 / vw) % tuning->decode_nsets == 0)
        nsets = tuning->decode_nsets;
    /* CPUs: the qword reader (one load per output word of codes up to 14
     * bits, where the word queue needs two; measured about 10% faster on
     * an AVX2 host with PoCL, FP8 byte split, 4 sets) unless the tuning
     * asks for words. */
    plan->streams_reader = vw > 1 && tuning->decode_reader != 1;
    plan->streams = true;
    plan->streams_vw = vw;
    plan->streams_nsets = nsets;
    plan->code_bits_class = code_bits_class(small ? ECF8_MAX_CODE_BITS : s->code_bits, 0);
    snprintf(plan->options[ECF8_CL_DECODE_STREAMS], sizeof plan->options[0],
             "-DECF8_WIDTH=%u -DECF8_CODE_BITS=%u -DECF8_RAW_BITS=%u -DECF8_SYMBOL_SHIFT=%u "
             "-DECF8_SYMBOL_BITS=%u -DECF8_VW=%u -DECF8_NSETS=%u -DECF8_READER=%u",
             width, plan->code_bits_class, l->raw_bits, l->symbol_shift, l->symbol_bits, vw, nsets,
             plan->streams_reader);
}

int ecf8_cl_decode_plan_make(const ecf8_cl_device_caps *caps, const ecf8_stream *s,
                             unsigned width, const ecf8_cl_tuning *tuning,
                             ecf8_cl_decode_plan *plan)
{
    static const ecf8_cl_tuning untuned = {.struct_size = sizeof untuned};
    if (!tuning) tuning = &untuned;
    memset(plan, 0, sizeof *plan);
    ecf8_split_layout l;
    int st = ecf8_split_layout_get(s->dtype, s->split, &l);
    if (st) return st;
    bool small = s->cols <= SMALL_TENSOR_ELEMENTS && s->rows <= SMALL_TENSOR_ELEMENTS / s->cols;
    if (s->stream_layout == ECF8_STREAM_LAYOUT_LANES) {
        plan_streams(caps, s, width, &l, small, tuning, plan);
        return ECF8_OK;
    }
    bool portable_only = tuned(tuning, "portable"), coop_anywhere = tuned(tuning, "coop");
    unsigned elem_bits = s->code_bits + l.raw_bits;

    plan->nl = tuning->decode_nl ? tuning->decode_nl : PAIRS_NL;
    plan->pairs = caps->is_cpu && width == 1 && elem_bits >= 1 && elem_bits <= ECF8_PAIR_BITS &&
                  (tuned(tuning, "pairs") ||
                   (s->n_chunks < PAIRS_BELOW_CHUNKS && !portable_only && !coop_anywhere &&
                    !tuned(tuning, "lanes")));
    /* The lanes kernel is compiled only where it can run well: CPUs with
     * vector registers of 8 or 16 uint lanes. */
    unsigned max_vw = ecf8_cl_decode_vector_lanes(caps);
    if (max_vw) {
        lanes_shape(s->n_chunks, caps->compute_units, max_vw, tuning, &plan->vw, &plan->nsets);
        /* 64-bit loads on the decode chain need 3 or more independent sets
         * to hide their latency (measured on PoCL: about 5% faster with 3
         * to 5 sets, 10-20% slower with 2); the word queue keeps its loads
         * off the chain.  The qword reader holds a lane's window in 64 bits:
         * vectors of 8 ulongs, which only AVX-512 hosts have. */
        bool qwords_fit = caps->vector_bits >= 512;
        plan->reader = qwords_fit &&
                       (tuning->decode_reader ? tuning->decode_reader == 2 : plan->nsets >= 3);
        plan->lanes = !plan->pairs && !portable_only && !coop_anywhere &&
                      lanes_usable(s, width, elem_bits, (uint64_t)plan->vw * plan->nsets);
    }
    /* GPUs: a work-group per chunk (cl/decode_coop.cl), unless elements take no
     * bits (a constant tensor: the portable kernel fills it). */
    plan->coop = elem_bits > 0 && (coop_anywhere || (!caps->is_cpu && !portable_only));
    plan->wg = tuning->decode_wg ? tuning->decode_wg : caps->is_cpu ? 8 : 64;

    plan->code_bits_class = code_bits_class(small ? ECF8_MAX_CODE_BITS : s->code_bits, l.raw_bits);
    /* One program per kernel and (width, split, code length class, its own
     * parameters). */
    char(*o)[sizeof plan->options[0]] = plan->options;
    char code[128]; /* what every kernel but the pairs one is built for */
    snprintf(code, sizeof code,
             "-DECF8_WIDTH=%u -DECF8_CODE_BITS=%u -DECF8_RAW_BITS=%u -DECF8_SYMBOL_SHIFT=%u "
             "-DECF8_SYMBOL_BITS=%u",
             width, plan->code_bits_class, l.raw_bits, l.symbol_shift, l.symbol_bits);
    snprintf(o[ECF8_CL_DECODE_PORTABLE], sizeof o[0], "%s", code);
    if (plan->coop)
        snprintf(o[ECF8_CL_DECODE_COOP], sizeof o[0], "%s -DECF8_COOP_WG=%d", code, ECF8_COOP_WG);
    if (plan->lanes)
        snprintf(o[ECF8_CL_DECODE_LANES], sizeof o[0], "%s -DECF8_VW=%u -DECF8_NSETS=%u -DECF8_READER=%u",
                 code, plan->vw, plan->nsets ? plan->nsets : 1, plan->reader);
    /* The pairs kernel reads its own table: nothing of the code shapes it. */
    if (plan->pairs)
        snprintf(o[ECF8_CL_DECODE_PAIRS], sizeof o[0], "-DECF8_WIDTH=1 -DECF8_NL=%u", plan->nl);
    return ECF8_OK;
}

static const char *const decode_names[ECF8_CL_DECODE_KERNELS][3] = {
    {"decode_portable", "ecf8_decode", "portable"},
    {"decode_coop", "ecf8_decode_coop", "coop"},
    {"decode_lanes", "ecf8_decode_lanes", "lanes"},
    {"decode_pairs", "ecf8_decode_pairs", "pairs"},
    {"decode_streams", "ecf8_decode_streams", "streams"},
};

const char *ecf8_cl_decode_program(ecf8_cl_decode_kernel k) { return decode_names[k][0]; }
const char *ecf8_cl_decode_function(ecf8_cl_decode_kernel k) { return decode_names[k][1]; }
const char *ecf8_cl_decode_kernel_name(ecf8_cl_decode_kernel k) { return decode_names[k][2]; }
