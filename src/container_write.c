/* container_write.c - the .ecf8 container's writer: ecf8_compress_path
 * reads safetensors files (or a checkpoint directory), codes their tensors
 * and streams the payloads, then writes the index (zstd-compressed unless
 * plain_index) and last the header that points at it. */
#define _GNU_SOURCE
#include "container.h"
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <xxhash.h>
#include <zstd.h>

/* ---- growable byte buffer for the index ----------------------------------- */
typedef struct bytebuf {
    uint8_t *data;
    size_t len, cap;
} bytebuf;

static int bb_reserve(bytebuf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return ECF8_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    b->data = p;
    b->cap = cap;
    return ECF8_OK;
}

static int bb_append(bytebuf *b, const void *p, size_t n, uint64_t *offset)
{
    int st = bb_reserve(b, n);
    if (st) return st;
    if (offset) *offset = b->len;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return ECF8_OK;
}

/* ---- writer ------------------------------------------------------------------ */
typedef struct source_rec {
    uint64_t path_off, path_len, prefix_off, prefix_len, source_bytes;
    uint32_t first_tensor, n_tensors;
} source_rec;

typedef struct writer {
    ecf8_outfile out;
    bytebuf blob;
    bytebuf tensors; /* TENSOR_ENTRY_BYTES each */
    source_rec *sources;
    size_t n_sources;
    uint64_t n_tensors;
    uint64_t codable_tensors; /* of a dtype ecf8 codes, not empty */
    uint64_t lane_tensors;    /* coded with stream layout 1: header flag bit 1, format 1.2 */
    uint64_t dtype_1_3_tensors; /* coded, with a dtype code >= 5: header flag bit 2, format 1.3 */
    const ecf8_compress_options *options;
    uint64_t done, total;
    bool quiet; /* entries written off the caller's thread: it reports progress */
} writer;

static void put_u64(uint8_t *p, size_t at, uint64_t v) { ecf8_store_le64(p + at, v); }
static void put_u32(uint8_t *p, size_t at, uint32_t v) { ecf8_store_le32(p + at, v); }

/* The entry fields every tensor has (name, dtype, shape, where it was in
 * its source, checksum), the names appended to the blob. */
static int entry_start(writer *w, uint8_t *e, const char *name, const char *dtype_name,
                       ecf8_dtype dtype, unsigned ndim, const uint64_t *shape,
                       uint64_t source_offset, uint64_t bytes, uint64_t checksum)
{
    uint64_t off;
    int st = bb_append(&w->blob, name, strlen(name), &off);
    if (st) return st;
    put_u64(e, 0, off);
    put_u32(e, 8, (uint32_t)strlen(name));
    put_u32(e, 12, (uint32_t)strlen(dtype_name));
    if ((st = bb_append(&w->blob, dtype_name, strlen(dtype_name), &off))) return st;
    put_u64(e, 16, off);
    e[24] = dtype < FIRST_DTYPE_1_3 ? (uint8_t)dtype : 0; /* entry_code_fields: when coded */
    e[26] = (uint8_t)ndim;
    for (unsigned d = 0; d < ndim; d++) put_u64(e, 32 + 8 * d, shape[d]);
    put_u64(e, 96, source_offset);
    put_u64(e, 104, bytes);
    put_u64(e, 168, checksum);
    return ECF8_OK;
}

/* The fields of entry e that describe the code of stream s; with a
 * compressed index, its code lengths and chunk offsets go into the index
 * (the payload is then the coded stream alone). */
static int entry_code_fields(writer *w, uint8_t *e, const ecf8_stream *s)
{
    /* With a compressed index the code lengths and the chunk
     * offsets move into it: zstd stores them in a quarter of their
     * size (lengths are alike across tensors, offsets grow slowly),
     * about 0.3% of a checkpoint.  The payload is the coded stream. */
    if (!w->options->plain_index) {
        uint8_t packed[128] = {0};
        uint64_t off, off_at;
        for (unsigned i = 0; i < s->n_symbols; i++) packed[i / 2] |= (uint8_t)(s->lengths[i] << (4 * (i & 1)));
        static const uint8_t zeros[8] = {0};
        int st = bb_append(&w->blob, packed, s->n_symbols / 2, &off);
        if (!st) st = bb_append(&w->blob, zeros, ecf8_align_up(w->blob.len, 8) - w->blob.len, NULL);
        if (!st) st = bb_append(&w->blob, s->chunk_offsets, (s->n_chunks + 1) * 8, &off_at);
        if (st) return st;
        e[28] = TENSOR_FLAGS_PARTS_IN_INDEX;
        put_u64(e, 176, off);
        put_u64(e, 184, off_at);
    }
    e[27] = (uint8_t)s->code_bits;
    e[29] = (uint8_t)s->stream_layout;
    if (s->stream_layout) w->lane_tensors++;
    if (s->dtype >= FIRST_DTYPE_1_3) e[24] = (uint8_t)s->dtype, w->dtype_1_3_tensors++;
    put_u64(e, 128, s->rows);
    put_u64(e, 136, s->cols);
    put_u64(e, 144, s->chunk_rows);
    put_u64(e, 152, s->chunk_cols);
    put_u64(e, 160, s->coded_bytes);
    return ECF8_OK;
}

/* Entry e of a tensor whose payload is written at payload_pos, into the
 * tensor table. */
static int entry_add(writer *w, uint8_t *e, ecf8_split split, uint64_t payload_pos,
                     uint64_t payload_bytes, uint64_t source_bytes)
{
    e[25] = (uint8_t)split;
    put_u64(e, 112, payload_pos);
    put_u64(e, 120, payload_bytes);
    int st = bb_append(&w->tensors, e, TENSOR_ENTRY_BYTES, NULL);
    w->n_tensors++;
    w->done += source_bytes;
    if (w->options && w->options->progress && !w->quiet)
        w->options->progress(w->options->progress_user, w->done, w->total);
    return st;
}

/* The rest of entry e and the payload: `payload` is the tensor's bytes
 * (STORED) or the payload that stream s describes. */
static int entry_finish(writer *w, uint8_t *e, ecf8_split split, const void *payload,
                        size_t payload_bytes, const ecf8_stream *s, uint64_t source_bytes)
{
    int st = ECF8_OK;
    if (s) {
        if ((st = entry_code_fields(w, e, s))) return st;
        if (!w->options->plain_index) {
            size_t skip = (size_t)(s->coded - (const uint8_t *)payload);
            payload = s->coded;
            payload_bytes -= skip;
        }
    }
    st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN);
    uint64_t pos = w->out.pos;
    if (!st) st = ecf8_outfile_write(&w->out, payload, payload_bytes);
    int st2 = entry_add(w, e, split, pos, payload_bytes, source_bytes);
    return st ? st : st2;
}

static int write_tensor_windowed(writer *w, st_file *sf, const st_tensor *t, uint64_t window);
static uint64_t encode_window_bytes(void);

/* Tensor t's index entry and payload: `enc` its encoding (NULL: stored as
 * `data`), `checksum` of its source bytes. */
static int write_entry(writer *w, const st_tensor *t, uint64_t source_offset, const uint8_t *data,
                       uint64_t checksum, const ecf8_encoded *enc)
{
    uint8_t e[TENSOR_ENTRY_BYTES] = {0};
    int st = entry_start(w, e, t->name, t->dtype_name, t->dtype, t->ndim, t->shape, source_offset,
                         t->bytes, checksum);
    if (st) return st;
    size_t payload_bytes = (size_t)t->bytes;
    const void *payload = data;
    if (enc) {
        w->codable_tensors++;
        payload = ecf8_encoded_payload(enc, &payload_bytes);
    }
    return entry_finish(w, e, enc ? ecf8_encoded_split(enc) : ECF8_SPLIT_STORED, payload,
                        payload_bytes, enc ? ecf8_encoded_stream(enc) : NULL, t->bytes);
}

static int write_tensor(writer *w, st_file *sf, const st_tensor *t, uint64_t source_base)
{
    if (t->bytes > encode_window_bytes() && source_base == 0)
        return write_tensor_windowed(w, sf, t, encode_window_bytes());
    const uint8_t *data;
    int st = ecf8_st_read_tensor(sf, t, &data);
    if (st) return st;
    ecf8_encoded *enc = NULL;
    if (t->dtype != ECF8_DTYPE_OTHER && t->n_elements > 0) {
        uint64_t rows, cols;
        ecf8_st_tensor_view(t, &rows, &cols);
        st = ecf8_tensor_encode(t->dtype, data, rows, cols, w->options, &enc);
        if (st) return ecf8_fail_context(st, "tensor '%s'", t->name);
    }
    st = write_entry(w, t, t->offset - source_base, data, ecf8_hash64(data, t->bytes), enc);
    ecf8_encoded_free(enc);
    return st;
}

/* ---- a tensor larger than a window ------------------------------------------
 * Read, coded and written a window at a time, so that memory stays
 * O(window) whatever the tensor's size: a first pass over the file builds
 * the histograms (the code needs the whole tensor's statistics), a second
 * measures the coded sizes where the choice of split needs them exactly,
 * and the last codes each window's chunks and writes them out at once,
 * hashing the bytes it coded.  The bytes are those of the tensor coded
 * whole (ecf8_tensor_encode).  A format 1.0 payload's chunk offsets come
 * before the coded stream: their place is written as zeros and filled at
 * the end. */
#define ENCODE_WINDOW_BYTES ((uint64_t)64 << 20)
uint64_t ecf8_test_encode_window_bytes;

static uint64_t encode_window_bytes(void)
{
    return ecf8_test_encode_window_bytes ? ecf8_test_encode_window_bytes : ENCODE_WINDOW_BYTES;
}

typedef struct window_buf {
    uint8_t *data;
    size_t cap;
} window_buf;

/* n bytes of sf at `at` into wb (grown as needed). */
static int window_read(st_file *sf, window_buf *wb, uint64_t at, uint64_t n)
{
    if (n > wb->cap) {
        free(wb->data);
        wb->cap = 0;
        if (!(wb->data = malloc((size_t)n))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        wb->cap = (size_t)n;
    }
    size_t got;
    int st = ecf8_read_at(sf->fd, wb->data, (size_t)n, at, &got);
    if (!st && got < n) st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    return st;
}

/* Between passes over the tensor: the file must be the version opened. */
static int passes_unchanged(const st_file *sf)
{
    struct stat now;
    if (fstat(sf->fd, &now) != 0) return ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!ecf8_same_file_version(&sf->opened, &now))
        return ecf8_fail(ECF8_ERR_IO, "input changed during compression");
    return ECF8_OK;
}

static int encode_windows(writer *w, st_file *sf, const st_tensor *t, ecf8_window_encoder *enc,
                          window_buf *wb, uint64_t window, XXH3_state_t *hash, uint64_t *payload_pos,
                          uint64_t *payload_bytes)
{
    const unsigned width = ecf8_dtype_size(t->dtype);
    const uint64_t step = window / width * width;
    int st = ECF8_OK;
    /* Pass 1: the histograms. */
    for (uint64_t at = 0; at < t->bytes && !st; at += step) {
        uint64_t n = t->bytes - at < step ? t->bytes - at : step;
        if (!(st = window_read(sf, wb, t->offset + at, n))) st = ecf8_wenc_histogram(enc, wb->data, n / width);
    }
    bool need_sizes = false;
    if (!st) st = ecf8_wenc_plan(enc, &need_sizes);
    const uint64_t n_chunks = ecf8_wenc_chunks(enc);
    /* Pass 2, where the choice needs them: the exact sizes. */
    for (uint64_t c0 = 0, c1; need_sizes && c0 < n_chunks && !st; c0 = c1) {
        uint64_t first, count;
        c1 = ecf8_wenc_window(enc, c0, window, &first, &count);
        if (!(st = passes_unchanged(sf)) && !(st = window_read(sf, wb, t->offset + first * width, count * width)))
            st = ecf8_wenc_size(enc, wb->data, c0, c1);
    }
    if (!st && need_sizes) st = ecf8_wenc_choose(enc);
    if (!st) st = passes_unchanged(sf);
    if (st) return st;
    if ((st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN))) return st;
    *payload_pos = w->out.pos;
    if (ecf8_wenc_split(enc) == ECF8_SPLIT_STORED) return ECF8_OK; /* the caller copies it */
    /* Pass 3: the code, window by window. */
    const ecf8_stream *s = ecf8_wenc_stream(enc);
    ecf8_payload_layout lay;
    uint8_t *head = NULL;
    if (!ecf8_payload_layout_compute(s->n_symbols, n_chunks, 0, &lay))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tensor too large");
    if (w->options->plain_index) { /* lengths, then the offsets' place */
        if (!(head = calloc(1, (size_t)lay.coded_offset))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        for (unsigned i = 0; i < s->n_symbols; i += 2)
            head[lay.lengths_offset + i / 2] = (uint8_t)(s->lengths[i] | s->lengths[i + 1] << 4);
        st = ecf8_outfile_write(&w->out, head, (size_t)lay.coded_offset);
    }
    uint64_t done = 0;
    for (uint64_t c0 = 0, c1; c0 < n_chunks && !st; c0 = c1) {
        uint64_t first, count;
        const uint8_t *coded;
        size_t coded_bytes;
        c1 = ecf8_wenc_window(enc, c0, window, &first, &count);
        if ((st = window_read(sf, wb, t->offset + first * width, count * width))) break;
        XXH3_64bits_update(hash, wb->data, (size_t)(count * width));
        if ((st = ecf8_wenc_code(enc, wb->data, c0, c1, &coded, &coded_bytes)) ||
            (st = ecf8_outfile_write(&w->out, coded, coded_bytes)))
            break;
        done += count * width;
        if (w->options->progress && c1 < n_chunks)
            w->options->progress(w->options->progress_user, w->done + done, w->total);
    }
    static const uint8_t pad[8] = {0}; /* the coded stream's zero pad */
    if (!st) st = ecf8_outfile_write(&w->out, pad, sizeof pad);
    if (!st && head)
        st = ecf8_outfile_pwrite(&w->out, s->chunk_offsets, (size_t)(n_chunks + 1) * 8,
                                 *payload_pos + lay.offsets_offset);
    free(head);
    *payload_bytes = w->out.pos - *payload_pos; /* 1.0: with lengths and offsets */
    return st;
}

static int write_tensor_windowed(writer *w, st_file *sf, const st_tensor *t, uint64_t window)
{
    XXH3_state_t *hash = XXH3_createState();
    window_buf wb = {0};
    ecf8_window_encoder *enc = NULL;
    uint64_t payload_pos = 0, payload_bytes = 0;
    int st = hash && XXH3_64bits_reset(hash) == XXH_OK ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    const bool coded = t->dtype != ECF8_DTYPE_OTHER && t->n_elements > 0;
    if (!st && coded) {
        uint64_t rows, cols;
        ecf8_st_tensor_view(t, &rows, &cols);
        st = ecf8_wenc_create(t->dtype, rows, cols, w->options, &enc);
        if (!st) st = encode_windows(w, sf, t, enc, &wb, window, hash, &payload_pos, &payload_bytes);
        if (st && !w->out.failed) st = ecf8_fail_context(st, "tensor '%s'", t->name);
    }
    const bool stored = !coded || ecf8_wenc_split(enc) == ECF8_SPLIT_STORED;
    if (!st && stored) { /* the tensor as it is */
        if (!coded && !(st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN))) payload_pos = w->out.pos;
        for (uint64_t at = 0; at < t->bytes && !st; at += window) {
            uint64_t n = t->bytes - at < window ? t->bytes - at : window;
            if (!(st = window_read(sf, &wb, t->offset + at, n))) {
                XXH3_64bits_update(hash, wb.data, (size_t)n);
                st = ecf8_outfile_write(&w->out, wb.data, (size_t)n);
            }
        }
        payload_bytes = t->bytes;
    }
    uint8_t e[TENSOR_ENTRY_BYTES] = {0};
    if (!st) st = entry_start(w, e, t->name, t->dtype_name, t->dtype, t->ndim, t->shape, t->offset,
                              t->bytes, XXH3_64bits_digest(hash));
    if (!st && coded) w->codable_tensors++;
    if (!st && !stored) st = entry_code_fields(w, e, ecf8_wenc_stream(enc));
    if (!st) st = entry_add(w, e, stored ? ECF8_SPLIT_STORED : ecf8_wenc_split(enc), payload_pos,
                            payload_bytes, t->bytes);
    ecf8_wenc_free(enc);
    XXH3_freeState(hash);
    free(wb.data);
    return st;
}

/* ---- many small tensors at once ------------------------------------------- */
/* A tensor codes in parallel over its chunks, which a small one has too few
 * of: runs of small tensors are read together (in file order, one read
 * each), then coded side by side, one tensor per thread, and written in
 * order.  A batch holds at most BATCH_BYTES of input and BATCH_TENSORS.
 *
 * The batches of a run go through a pipeline, so that no thread waits on
 * the file or on the writes while there is coding to do: one parallel job
 * writes the batch coded before (one item, which alone touches the
 * writer), reads the next (one item) and codes this one (an item a
 * tensor).  The writes stay in file order: batch k's entries go out in
 * job k + 1, before any of batch k + 1's.  With one thread the items run
 * in that order, one after the other.  Each job ends in a wait for the
 * slower thread and starts with a wake-up (~0.1 ms each in a VM): batches
 * of 2 MiB make 17 jobs of the 11.6 K tensors of many-e4m3, not 44. */
#define SMALL_TENSOR_BYTES (1u << 20)
#define BATCH_BYTES (2u << 20)
#define BATCH_TENSORS 2048

typedef struct batch_item {
    const st_tensor *t;
    const uint8_t *data; /* in the batch's span */
    uint64_t checksum;
    ecf8_encoded *enc;
} batch_item;

typedef struct batch {
    batch_item item[BATCH_TENSORS];
    size_t n;
    uint64_t bytes;
    uint8_t *span; /* the batch's tensors, read at once: they tile the file */
    size_t span_cap;
} batch;

typedef struct pipeline {
    writer *w;
    st_file *sf;
    batch slot[3];
    batch *write, *read, *code; /* in this job: written, read, coded (n == 0: none) */
    ecf8_compress_options one_thread;
} pipeline;

/* Plans batch b as the small tensors of sf from `first` on (none when
 * tensor `first` is large or past the end); returns the index after them. */
static size_t batch_plan(batch *b, const st_file *sf, size_t first)
{
    b->bytes = 0;
    size_t i = first;
    for (; i < sf->n_tensors && i - first < BATCH_TENSORS; i++) {
        const st_tensor *t = &sf->tensors[i];
        if (t->bytes >= SMALL_TENSOR_BYTES || b->bytes + t->bytes > BATCH_BYTES) break;
        b->item[i - first] = (batch_item){.t = t};
        b->bytes += t->bytes;
    }
    b->n = i - first;
    return i;
}

static int batch_read(batch *b, st_file *sf)
{
    if (!b->n) return ECF8_OK;
    if (b->bytes > b->span_cap) {
        free(b->span);
        b->span_cap = 0;
        if (!(b->span = malloc((size_t)b->bytes))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        b->span_cap = (size_t)b->bytes;
    }
    size_t got = 0;
    int st = ECF8_OK;
    if (b->bytes && !(st = ecf8_read_at(sf->fd, b->span, (size_t)b->bytes, b->item[0].t->offset, &got)) &&
        got < b->bytes)
        st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    for (size_t k = 0, at = 0; k < b->n; k++) {
        b->item[k].data = b->span + at;
        at += (size_t)b->item[k].t->bytes;
    }
    return st;
}

static int batch_write(writer *w, const batch *b)
{
    int st = ECF8_OK;
    for (size_t k = 0; k < b->n && !st; k++)
        st = write_entry(w, b->item[k].t, b->item[k].t->offset, b->item[k].data, b->item[k].checksum,
                         b->item[k].enc);
    return st;
}

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++) ecf8_encoded_free(b->item[i].enc);
    b->n = 0;
}

enum { ITEM_WRITE, ITEM_READ, ITEM_CODE };

static int pipeline_task(void *ctx, uint64_t i)
{
    pipeline *p = ctx;
    if (i == ITEM_WRITE) { /* then the batch is freed here, not between jobs */
        int st = batch_write(p->w, p->write);
        batch_clear(p->write);
        return st;
    }
    if (i == ITEM_READ) return batch_read(p->read, p->sf);
    batch_item *it = &p->code->item[i - ITEM_CODE];
    it->checksum = ecf8_hash64(it->data, it->t->bytes);
    if (it->t->dtype == ECF8_DTYPE_OTHER || it->t->n_elements == 0) return ECF8_OK;
    uint64_t rows, cols;
    ecf8_st_tensor_view(it->t, &rows, &cols);
    int st = ecf8_tensor_encode(it->t->dtype, it->data, rows, cols, &p->one_thread, &it->enc);
    return st ? ecf8_fail_context(st, "tensor '%s'", it->t->name) : ECF8_OK;
}

/* Reads, codes and writes the run of small tensors of sf from `first` on;
 * *next is the index after it. */
static int write_small_run(writer *w, pipeline *p, st_file *sf, size_t first, size_t *next)
{
    p->w = w, p->sf = sf;
    p->code = &p->slot[0], p->read = &p->slot[1], p->write = &p->slot[2];
    size_t i = batch_plan(p->code, sf, first);
    int st = batch_read(p->code, sf);
    /* The writer reports progress from the caller's thread, once a job. */
    w->quiet = true;
    while (!st && p->code->n) {
        i = batch_plan(p->read, sf, i);
        st = ecf8_parallel_for(w->options->threads, ITEM_CODE + p->code->n, pipeline_task, p);
        if (!st && w->options->progress) w->options->progress(w->options->progress_user, w->done, w->total);
        batch *written = p->write; /* written and cleared by the job */
        p->write = p->code, p->code = p->read, p->read = written;
    }
    if (!st) st = batch_write(w, p->write);
    w->quiet = false;
    if (!st && w->options->progress) w->options->progress(w->options->progress_user, w->done, w->total);
    for (int k = 0; k < 3; k++) batch_clear(&p->slot[k]);
    *next = i;
    return st;
}

static int add_source(writer *w, const char *rel_path, const char *full_path, bool is_safetensors)
{
    source_rec *r = realloc(w->sources, (w->n_sources + 1) * sizeof *r);
    if (!r) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    w->sources = r;
    r = &w->sources[w->n_sources++];
    memset(r, 0, sizeof *r);
    r->first_tensor = (uint32_t)w->n_tensors;
    int st = bb_append(&w->blob, rel_path, strlen(rel_path), &r->path_off);
    if (st) return st;
    r->path_len = strlen(rel_path);

    if (!is_safetensors) { /* e.g. the shard index json: kept verbatim */
        ecf8_file_copy m;
        if ((st = ecf8_file_copy_read(full_path, &m))) return ecf8_fail_context(st, "%s", full_path);
        r->prefix_len = r->source_bytes = m.size;
        st = bb_append(&w->blob, m.data, m.size, &r->prefix_off);
        w->done += m.size;
        if (w->options && w->options->progress)
            w->options->progress(w->options->progress_user, w->done, w->total);
        ecf8_file_copy_free(&m);
        return st;
    }
    st_file sf;
    if ((st = ecf8_st_open_threads(full_path, w->options->threads, &sf))) return ecf8_fail_context(st, "%s", full_path);
    r->source_bytes = sf.size;
    r->prefix_len = sf.data_start;
    st = bb_append(&w->blob, sf.prefix, sf.data_start, &r->prefix_off);
    const uint64_t done_before = w->done;
    w->done += sf.data_start;
    if (w->options && w->options->progress)
        w->options->progress(w->options->progress_user, w->done, w->total);
    pipeline *p = NULL;
    for (size_t i = 0; i < sf.n_tensors && !st;) {
        if (sf.tensors[i].bytes >= SMALL_TENSOR_BYTES) {
            st = write_tensor(w, &sf, &sf.tensors[i], 0);
            i++;
            continue;
        }
        if (!p) {
            if (!(p = calloc(1, sizeof *p))) {
                st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
                break;
            }
            p->one_thread = *w->options;
            p->one_thread.threads = 1, p->one_thread.progress = NULL;
        }
        st = write_small_run(w, p, &sf, i, &i);
    }
    if (p)
        for (int k = 0; k < 3; k++) free(p->slot[k].span);
    free(p);
    /* The tensors were read one at a time: all from the version opened. */
    if (!st) st = ecf8_st_check_unchanged(&sf);
    if (!st && w->done != done_before + sf.size) {
        /* The total counts whole files: the gaps between tensors too. */
        w->done = done_before + sf.size;
        if (w->options && w->options->progress)
            w->options->progress(w->options->progress_user, w->done, w->total);
    }
    if (st && !w->out.failed) st = ecf8_fail_context(st, "%s", full_path);
    r = &w->sources[w->n_sources - 1];
    r->n_tensors = (uint32_t)(w->n_tensors - r->first_tensor);
    ecf8_st_close(&sf);
    return st;
}

static int index_level(size_t index_bytes, uint64_t input_bytes)
{
    return index_bytes <= (256u << 10) || (uint64_t)index_bytes * 256 <= input_bytes ? 19 : 1;
}

/* The index: the meta header and source entries, the tensor table, the
 * blob (docs/FORMAT.md 3). */
#define INDEX_PARTS 3
typedef struct index_parts {
    const void *data[INDEX_PARTS];
    size_t len[INDEX_PARTS];
} index_parts;

/* The parts as one zstd frame, streamed part after part with their total
 * pledged, without joining them.  With libzstd 1.5 this is byte for byte
 * the frame ZSTD_compress made of them joined: scripts/make_golden.py
 * rewrites every golden file unchanged. */
static int index_compress(const index_parts *parts, size_t raw_len, int level, uint8_t **out, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(raw_len);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    uint8_t *packed = malloc(cap);
    size_t r = !cc || !packed ? 0 : ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (cc && packed && !ZSTD_isError(r)) r = ZSTD_CCtx_setPledgedSrcSize(cc, raw_len);
    ZSTD_outBuffer ob = {packed, cap, 0};
    for (size_t i = 0; i < INDEX_PARTS && cc && packed && !ZSTD_isError(r); i++) {
        ZSTD_inBuffer ib = {parts->data[i], parts->len[i], 0};
        ZSTD_EndDirective end = i + 1 == INDEX_PARTS ? ZSTD_e_end : ZSTD_e_continue;
        /* The output has room for the whole frame: each call makes progress. */
        do r = ZSTD_compressStream2(cc, &ob, &ib, end);
        while (!ZSTD_isError(r) && (end == ZSTD_e_end ? r != 0 : ib.pos < ib.size));
    }
    ZSTD_freeCCtx(cc);
    if (!cc || !packed || ZSTD_isError(r)) {
        free(packed);
        return ecf8_fail(ECF8_ERR_NOMEM, "compressing the index: %s",
                         !cc || !packed ? "out of memory" : ZSTD_getErrorName(r));
    }
    *out = packed, *out_len = ob.pos;
    return ECF8_OK;
}

static int finish(writer *w, uint32_t flags)
{
    int st = ecf8_outfile_pad_to(&w->out, PAYLOAD_ALIGN);
    /* The payloads go to the disk while the index is built and compressed
     * (7-12 ms for 11.6 K tensors): the fsync then waits for the index. */
    if (!st) st = ecf8_outfile_writeback(&w->out);
    if (st) return st;
    uint64_t meta_offset = w->out.pos;
    uint8_t mh[META_HEADER_BYTES] = {0};
    put_u32(mh, 0, (uint32_t)w->n_sources);
    put_u32(mh, 4, flags);
    put_u64(mh, 8, w->n_tensors);
    uint64_t blob_offset = META_HEADER_BYTES + w->n_sources * SOURCE_ENTRY_BYTES + w->tensors.len;
    put_u64(mh, 16, blob_offset);
    put_u64(mh, 24, w->blob.len);
    bytebuf head = {0}; /* the index's first part: the meta header and the source entries */
    st = bb_append(&head, mh, sizeof mh, NULL);
    for (size_t i = 0; i < w->n_sources && !st; i++) {
        const source_rec *r = &w->sources[i];
        uint8_t e[SOURCE_ENTRY_BYTES];
        put_u64(e, 0, r->path_off);
        put_u64(e, 8, r->path_len);
        put_u64(e, 16, r->prefix_off);
        put_u64(e, 24, r->prefix_len);
        put_u64(e, 32, r->source_bytes);
        put_u32(e, 40, r->first_tensor);
        put_u32(e, 44, r->n_tensors);
        st = bb_append(&head, e, sizeof e, NULL);
    }
    /* The index is its three parts in a row, never joined in memory (for
     * 11.6 K tensors that was 4.7 MB of fresh pages, 4 ms). */
    const index_parts parts = {{head.data, w->tensors.data, w->blob.data}, {head.len, w->tensors.len, w->blob.len}};
    const size_t raw_len = head.len + w->tensors.len + w->blob.len;
    /* The index is mostly fixed-size entries with zero fields, names and the
     * JSON headers: zstd shrinks it 3-10x, which is 1-2% of a checkpoint made
     * of many small tensors.  Level 19 takes 30-60 ms per 100 KB of index:
     * it is kept for an index small in itself or beside the data it
     * describes (< 1/256 of the input); a larger one (many small tensors)
     * gets level 1, 1/500 of the time for an index 12% larger (many-e4m3,
     * 11.6 K tensors, 4.7 MB of index: 3.4 s -> 6.3 ms, 0.43 -> 0.48 MB;
     * level 3 takes 9.3 ms for 0.50 MB; `zstd -b` of the index),
     * so that such a checkpoint is not coded at the speed of its index. */
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    uint64_t index_hash = 0;
    bool zstd_index = !st && !w->options->plain_index;
    if (zstd_index) {
        st = index_compress(&parts, raw_len, index_level(raw_len, w->total), &packed, &packed_len);
        if (!st && (!index_expansion_ok(raw_len, packed_len) || !tensor_table_expansion_ok(w->n_tensors, packed_len)))
            st = ecf8_fail(ECF8_ERR_ARGUMENT,
                           "the index (%zu bytes) compresses to %zu, more than readers accept; "
                           "write it uncompressed (--plain-index)", raw_len, packed_len);
        if (!st) st = ecf8_outfile_write(&w->out, packed, packed_len);
        index_hash = ecf8_hash64(packed, packed_len);
    } else if (!st) {
        XXH3_state_t *hash = XXH3_createState();
        if (!hash || XXH3_64bits_reset(hash) != XXH_OK) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < INDEX_PARTS && !st; i++) {
            st = ecf8_outfile_write(&w->out, parts.data[i], parts.len[i]);
            if (parts.len[i]) XXH3_64bits_update(hash, parts.data[i], parts.len[i]);
        }
        if (!st) index_hash = XXH3_64bits_digest(hash);
        XXH3_freeState(hash);
    }
    size_t index_len = zstd_index ? packed_len : raw_len;
    if (!st) {
        uint8_t h[HEADER_BYTES] = {0};
        memcpy(h, ECF8_MAGIC, 8);
        h[8] = ECF8_FORMAT_VERSION; /* u16 major */
        h[10] = w->dtype_1_3_tensors ? 3 : w->lane_tensors ? 2 : zstd_index ? 1 : 0;
        put_u32(h, 12, (zstd_index ? HEADER_FLAG_ZSTD_INDEX : 0) | (w->lane_tensors ? HEADER_FLAG_LANES : 0) |
                           (w->dtype_1_3_tensors ? HEADER_FLAG_DTYPES_1_3 : 0));
        put_u64(h, 16, w->out.pos);
        put_u64(h, 24, meta_offset);
        put_u64(h, 32, index_len);
        put_u64(h, 40, index_hash);
        put_u64(h, 48, zstd_index ? raw_len : 0);
        put_u64(h, 56, ecf8_hash64(h, 56));
        st = ecf8_outfile_pwrite(&w->out, h, sizeof h, 0);
    }
    free(packed);
    free(head.data);
    return st;
}

static bool is_subdirectory(DIR *d, const struct dirent *de)
{
    if (de->d_type != DT_UNKNOWN) return de->d_type == DT_DIR;
    struct stat sb;
    return fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && S_ISDIR(sb.st_mode);
}

/* Sorted names of the *.safetensors and *.json files of a directory. */
static int list_checkpoint_dir(const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d) return ecf8_fail(ECF8_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int st = ECF8_OK;
    struct dirent *de;
    size_t n_safetensors = 0;
    char subdir[256] = ""; /* one subdirectory, to name when there are no shards */
    while ((de = readdir(d)) && !st) {
        if (!subdir[0] && de->d_name[0] != '.' && is_subdirectory(d, de))
            snprintf(subdir, sizeof subdir, "%s", de->d_name);
        if (!ecf8_checkpoint_file_name(de->d_name)) continue;
        n_safetensors += ecf8_ends_with(de->d_name, ".safetensors");
        if (n == MAX_SOURCES) {
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: more than %d checkpoint files", dir, MAX_SOURCES);
            break;
        }
        char **p = realloc(names, (n + 1) * sizeof *names);
        if (!p || !(p[n] = strdup(de->d_name))) {
            if (p) names = p;
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
            break;
        }
        names = p;
        n++;
    }
    closedir(d);
    /* A directory of subdirectories (a diffusers pipeline: unet/, vae/,
     * ... beside a model_index.json) would become a container of its json
     * files alone. */
    if (!st && n_safetensors == 0 && subdir[0])
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "%s: no .safetensors files in the directory itself; "
                       "subdirectories such as '%s' are not read (compress each one)", dir, subdir);
    else if (!st && n_safetensors == 0)
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "%s: no .safetensors files in directory", dir);
    if (st) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return st;
    }
    qsort(names, n, sizeof *names, ecf8_cmp_str);
    *names_out = names;
    *n_out = n;
    return ECF8_OK;
}

static uint64_t path_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

int ecf8_compress_path(const char *in_path, const char *out_path,
                       const ecf8_compress_options *options)
{
    uint64_t codable;
    return ecf8_compress_path_counted(in_path, out_path, options, &codable);
}

int ecf8_compress_path_counted(const char *in_path, const char *out_path,
                               const ecf8_compress_options *options, uint64_t *codable_tensors)
{
    ecf8_clear_error();
    if (codable_tensors) *codable_tensors = 0;
    ecf8_compress_options defaults;
    if (!options) {
        ecf8_compress_options_init(&defaults);
        options = &defaults;
    }
    if (!in_path || !out_path) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    if (!in_path[0] || !out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    /* The writer itself reads plain_index, a field older callers lack:
     * check here, not only in the encoder (a file may have nothing to code). */
    if (options->struct_size && options->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "compress: options struct too small");
    struct stat sb;
    if (stat(in_path, &sb) != 0)
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno));
    bool is_dir = S_ISDIR(sb.st_mode);
    char **names = NULL;
    size_t n_names = 0;
    int st;
    if (is_dir && (st = list_checkpoint_dir(in_path, &names, &n_names))) return st;

    /* overwrite came after the first version of the struct. */
    bool overwrite = options->overwrite && (options->struct_size == 0 ||
                                            options->struct_size >= offsetof(ecf8_compress_options, overwrite) + sizeof(int));
    writer w = {.options = options};
    if ((st = ecf8_outfile_open(&w.out, out_path, in_path, overwrite))) goto done;
    uint8_t zero[HEADER_BYTES] = {0};
    st = ecf8_outfile_write(&w.out, zero, sizeof zero);
    if (!is_dir) {
        w.total = (uint64_t)sb.st_size;
        if (!st) st = add_source(&w, "", in_path, true); /* names in_path on failure */
    } else {
        for (size_t i = 0; i < n_names; i++) {
            char *full = ecf8_join_path(in_path, names[i]);
            if (!full) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
            w.total += path_size(full);
            free(full);
        }
        for (size_t i = 0; i < n_names && !st; i++) {
            char *full = ecf8_join_path(in_path, names[i]);
            if (!full) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
            st = add_source(&w, names[i], full, ecf8_ends_with(names[i], ".safetensors"));
            if (st && !w.out.failed && !strstr(ecf8_last_error(), in_path))
                st = ecf8_fail_context(st, "%s", full);
            free(full);
        }
    }
    if (!st) st = finish(&w, is_dir ? FLAG_DIRECTORY : 0);
    if (!st) {
        st = ecf8_outfile_commit(&w.out);
    } else {
        ecf8_outfile_abort(&w.out);
    }
done:
    if (!st && codable_tensors) *codable_tensors = w.codable_tensors;
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(w.blob.data);
    free(w.tensors.data);
    free(w.sources);
    return st;
}

/* ---- re-laying a container ------------------------------------------------ */
/* Tensor i of f into w: stored ones as they are, coded ones with the same
 * code lengths in `layout` (their chunk geometry kept when the layout is). */
static int convert_tensor(writer *w, const ecf8_file *f, size_t i, uint64_t source_offset,
                          unsigned layout)
{
    const ecf8_tensor_info *t = &f->tensors[i];
    uint8_t e[TENSOR_ENTRY_BYTES] = {0};
    int st = entry_start(w, e, t->name, t->dtype_name, t->dtype, t->ndim, t->shape, source_offset,
                         t->source_bytes, t->checksum);
    if (st) return st;
    if (t->split == ECF8_SPLIT_STORED)
        return entry_finish(w, e, t->split, t->payload, t->payload_bytes, NULL, t->source_bytes);
    uint8_t *elements = malloc(t->source_bytes), *payload = NULL;
    if (!elements) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    st = ecf8_tensor_decode_checked(t, elements, t->source_bytes, w->options->threads);
    ecf8_stream code = t->stream, s;
    size_t payload_bytes = 0;
    if (!st && code.stream_layout != layout) {
        uint64_t n_chunks;
        code.stream_layout = layout;
        ecf8_chunk_geometry(code.rows, code.cols,
                            ecf8_layout_chunk_target(layout, w->options->chunk_elements),
                            &code.chunk_rows, &code.chunk_cols, &n_chunks);
    }
    if (!st) st = ecf8_stream_build(&code, elements, w->options->threads, &payload, &payload_bytes, &s);
    if (!st) st = entry_finish(w, e, t->split, payload, payload_bytes, &s, t->source_bytes);
    free(payload);
    free(elements);
    return st ? ecf8_fail_context(st, "tensor '%s'", t->name) : ECF8_OK;
}

int ecf8_convert_path(const char *in_path, const char *out_path, const ecf8_compress_options *options)
{
    ecf8_clear_error();
    ecf8_compress_options o;
    int rst = ecf8_compress_options_read(options, &o, "convert");
    if (rst) return rst;
    if (!in_path || !out_path) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    if (!in_path[0] || !out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    if (o.stream_layout > ECF8_STREAM_LAYOUT_LANES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "convert: stream layout %u (0 or 1)", o.stream_layout);
    ecf8_file *f;
    int st = ecf8_file_open(in_path, &f);
    if (st) return ecf8_fail_context(st, "%s", in_path);
    o.plain_index = f->index == NULL; /* the index stays as it was */
    writer w = {.options = &o};
    for (size_t i = 0; i < f->n_sources; i++) w.total += f->sources[i].source_bytes;
    if ((st = ecf8_outfile_open(&w.out, out_path, in_path, o.overwrite != 0))) goto done;
    uint8_t zero[HEADER_BYTES] = {0};
    st = ecf8_outfile_write(&w.out, zero, sizeof zero);
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        const source_info *src = &f->sources[i];
        source_rec *r = realloc(w.sources, (w.n_sources + 1) * sizeof *r);
        if (!r) {
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
            break;
        }
        w.sources = r;
        r = &w.sources[w.n_sources++];
        memset(r, 0, sizeof *r);
        r->first_tensor = (uint32_t)w.n_tensors;
        r->path_len = strlen(src->path);
        r->prefix_len = src->prefix_bytes;
        r->source_bytes = src->source_bytes;
        st = bb_append(&w.blob, src->path, r->path_len, &r->path_off);
        if (!st) st = bb_append(&w.blob, src->prefix, src->prefix_bytes, &r->prefix_off);
        w.done += src->prefix_bytes;
        uint64_t pos = src->prefix_bytes;
        for (uint32_t k = 0; k < src->n_tensors && !st; k++) {
            st = convert_tensor(&w, f, src->first_tensor + k, pos, o.stream_layout);
            pos += f->tensors[src->first_tensor + k].source_bytes;
        }
        w.sources[w.n_sources - 1].n_tensors = src->n_tensors;
    }
    if (!st) st = finish(&w, f->flags);
    if (!st) st = ecf8_outfile_commit(&w.out);
    else ecf8_outfile_abort(&w.out);
done:
    ecf8_file_close(f);
    free(w.blob.data);
    free(w.tensors.data);
    free(w.sources);
    return st;
}
