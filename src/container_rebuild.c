/* container_rebuild.c - byte-exact reconstruction of the original files
 * from a container (ecf8_decompress_path*: all or nothing, through
 * temporary files) and verification (ecf8_verify_path*: rebuilt and
 * compared with the originals piece by piece, or decoded and checked). */
#define _GNU_SOURCE
#include "container.h"

#include <errno.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

/* ecf8_decode_options as of the first version: older callers pass this much. */
#define DECODE_OPTIONS_V1_BYTES (offsetof(ecf8_decode_options, progress_user) + sizeof(void *))

void ecf8_decode_options_init(ecf8_decode_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

/* NULL options are the defaults; a struct smaller than the first version's
 * is refused rather than read past its end. */
int ecf8_decode_options_read(const ecf8_decode_options *options, ecf8_decode_options *out)
{
    ecf8_decode_options_init(out);
    if (!options) return ECF8_OK;
    if (options->struct_size < DECODE_OPTIONS_V1_BYTES)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "decode options struct too small (struct_size %zu)",
                         options->struct_size);
    /* Fields after the caller's struct_size keep their defaults. */
    memcpy(out, options, options->struct_size < sizeof *out ? options->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    return ECF8_OK;
}

/* Bytes of the original file(s) rebuilt so far, reported to the caller. */
typedef struct progress_state {
    const ecf8_decode_options *options;
    uint64_t done, total;
    uint64_t tensor_done; /* of the tensor being decoded, reported band by band */
} progress_state;

static void progress_start(progress_state *p, const ecf8_decode_options *o, const ecf8_file *f)
{
    p->options = o;
    p->done = p->total = p->tensor_done = 0;
    for (size_t i = 0; i < f->n_sources; i++) p->total += f->sources[i].source_bytes;
    if (o->progress) o->progress(o->progress_user, 0, p->total);
}

static void progress_add(progress_state *p, uint64_t bytes)
{
    if (!p) return; /* a tensor of a batch: reported when it is written */
    p->done += bytes;
    if (p->options->progress) p->options->progress(p->options->progress_user, p->done, p->total);
}

/* The output a rebuild decodes at a time: the window of a file whose
 * payloads stay on disk, and the step of the progress reports. */
#define WINDOW_BYTES (16u << 20)

/* ecf8_tensor_decode_checked on the CPU, a band of chunk rows of about
 * WINDOW_BYTES at a time when there is a progress callback, so that
 * the bar moves within a large tensor (the checksum still covers the whole
 * tensor, after its last band). */
static int decode_in_bands(const ecf8_tensor_info *t, void *out, size_t out_bytes, unsigned threads,
                           progress_state *progress)
{
    const ecf8_stream *s = &t->stream;
    const uint64_t bands = ecf8_ceil_div(s->rows, s->chunk_rows);
    const uint64_t band_bytes = s->chunk_rows * s->cols * ecf8_dtype_size(s->dtype);
    if (!progress->options->progress || t->source_bytes < 2 * WINDOW_BYTES || bands < 2 ||
        out_bytes < t->source_bytes)
        return ecf8_tensor_decode_checked(t, out, out_bytes, threads);
    const uint64_t step = band_bytes >= WINDOW_BYTES ? 1 : WINDOW_BYTES / band_bytes;
    const char *name = t->name ? t->name : "";
    for (uint64_t b0 = 0; b0 < bands; b0 += step) {
        uint64_t b1 = b0 + step < bands ? b0 + step : bands;
        ecf8_stream band = ecf8_stream_band(s, b0, b1);
        size_t at = (size_t)(b0 * band_bytes), bytes = (size_t)(band.n_elements * ecf8_dtype_size(s->dtype));
        int st = ecf8_stream_decode(&band, (uint8_t *)out + at, bytes, threads);
        if (st) return ecf8_fail_context(st, "tensor '%s'", name);
        progress_add(progress, bytes);
        progress->tensor_done += bytes;
    }
    if (ecf8_hash64(out, t->source_bytes) != t->checksum)
        return ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", name);
    return ECF8_OK;
}

/* Streams source file i: its header bytes, then each tensor decoded and
 * checked.  `sink` receives the bytes in order (a file or a comparator). */
typedef int (*sink_fn)(void *ctx, const void *data, size_t n);

/* A file opened with its payloads on disk is rebuilt a window at a time:
 * a stored tensor WINDOW_BYTES of it, a coded one a band of chunk rows of
 * about WINDOW_BYTES of output (more only where one band is larger), its
 * coded bytes read for that band alone and its checksum hashed as the
 * bands go, so memory stays O(window) whatever the tensor's size. */
typedef struct window {
    uint8_t *coded, *out;
    uint64_t *offsets;
    size_t coded_cap, out_cap, offsets_cap;
    XXH3_state_t *hash;
    const uint8_t *span; /* bytes span_at.. of the file, read at once (a batch), or NULL */
    uint64_t span_at, span_bytes;
} window;

static int grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap) return ECF8_OK;
    void *q = realloc(*p, need);
    if (!q) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %zu-byte window", need);
    *p = q, *cap = need;
    return ECF8_OK;
}

/* Reads n bytes of f at `at` (an address in its reserved range) into dst:
 * from w's span where it holds them. */
static int read_payload(const ecf8_file *f, const window *w, const void *at, void *dst, size_t n)
{
    size_t got;
    const uint64_t pos = (uint64_t)((const uint8_t *)at - f->bytes.data);
    if (w->span && pos >= w->span_at && pos - w->span_at <= w->span_bytes && n <= w->span_bytes - (pos - w->span_at)) {
        memcpy(dst, w->span + (pos - w->span_at), n);
        return ECF8_OK;
    }
    int st = ecf8_read_at(f->fd, dst, n, pos, &got);
    if (!st && got < n) st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    return st;
}

static int rebuild_tensor_windowed(const ecf8_file *f, const ecf8_tensor_info *t, unsigned threads,
                                   sink_fn sink, void *ctx, progress_state *progress, window *w)
{
    const char *name = t->name ? t->name : "";
    const unsigned width = ecf8_dtype_size(t->dtype);
    int st = XXH3_64bits_reset(w->hash) == XXH_OK ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (t->split == ECF8_SPLIT_STORED) {
        for (uint64_t at = 0; at < t->source_bytes && !st; at += WINDOW_BYTES) {
            size_t n = (size_t)(t->source_bytes - at < WINDOW_BYTES ? t->source_bytes - at : WINDOW_BYTES);
            if (!(st = grow((void **)&w->out, &w->out_cap, n)) &&
                !(st = read_payload(f, w, (const uint8_t *)t->payload + at, w->out, n))) {
                XXH3_64bits_update(w->hash, w->out, n);
                if (!(st = sink(ctx, w->out, n))) progress_add(progress, n);
            }
        }
    } else {
        const ecf8_stream *s = &t->stream;
        const uint64_t bands = ecf8_ceil_div(s->rows, s->chunk_rows), segs = ecf8_ceil_div(s->cols, s->chunk_cols);
        const uint64_t band_bytes = s->chunk_rows * s->cols * width;
        const uint64_t step = band_bytes >= WINDOW_BYTES ? 1 : WINDOW_BYTES / band_bytes;
        for (uint64_t b0 = 0; b0 < bands && !st; b0 += step) {
            const uint64_t b1 = b0 + step < bands ? b0 + step : bands;
            const uint64_t c0 = b0 * segs, c1 = b1 * segs < s->n_chunks ? b1 * segs : s->n_chunks;
            const uint64_t from = s->chunk_offsets[c0], coded = s->chunk_offsets[c1] - from;
            ecf8_stream band = ecf8_stream_band(s, b0, b1);
            const size_t bytes = (size_t)(band.n_elements * width);
            if ((st = grow((void **)&w->coded, &w->coded_cap, (size_t)coded + 8)) ||
                (st = grow((void **)&w->offsets, &w->offsets_cap, (size_t)(c1 - c0 + 1) * sizeof *w->offsets)) ||
                (st = grow((void **)&w->out, &w->out_cap, bytes ? bytes : 1)) ||
                (st = read_payload(f, w, s->coded + from, w->coded, (size_t)coded)))
                break;
            memset(w->coded + coded, 0, 8); /* the stream's zero pad, as after its last chunk */
            for (uint64_t c = c0; c <= c1; c++) w->offsets[c - c0] = s->chunk_offsets[c] - from;
            band.coded = w->coded, band.chunk_offsets = w->offsets, band.coded_bytes = coded + 8;
            if ((st = ecf8_stream_decode(&band, w->out, bytes, threads))) {
                st = ecf8_fail_context(st, "tensor '%s'", name);
                break;
            }
            XXH3_64bits_update(w->hash, w->out, bytes);
            if (!(st = sink(ctx, w->out, bytes))) progress_add(progress, bytes);
        }
    }
    if (!st && XXH3_64bits_digest(w->hash) != t->checksum)
        st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", name);
    if (!st && !t->source_bytes) progress_add(progress, 0); /* one report per tensor at least */
    return st;
}

/* ---- many small tensors at once ------------------------------------------- */
/* A tensor decodes in parallel over its chunks, which a small one has too
 * few of (and waking the pool for each costs more than its decode): runs
 * of small tensors are rebuilt side by side, BATCH_GROUP tensors per task,
 * each as rebuild_tensor_windowed does alone, into one buffer, then passed
 * to the sink in order.  A batch holds at most BATCH_BYTES of output and
 * BATCH_TENSORS.  The error reported is that of the first tensor in file
 * order that fails, as one thread reports it: items are claimed in order
 * and a failure stops the claiming, so every earlier tensor has run. */
#define SMALL_TENSOR_BYTES (1u << 20)
#define BATCH_BYTES (1u << 20)
#define BATCH_TENSORS 512

#define BATCH_GROUP 8 /* tensors per task, rebuilt in order through one window */

typedef struct rebuild_item {
    const ecf8_tensor_info *t;
    uint8_t *out; /* in the batch's buffer */
    int status;
    char error[512];
} rebuild_item;

typedef struct rebuild_batch {
    const ecf8_file *f;
    rebuild_item item[BATCH_TENSORS];
    size_t n;
    uint8_t *buf, *span_buf; /* the output; the payloads read at once */
    size_t cap, span_cap;
    const uint8_t *span;      /* span_buf when it holds them, else NULL */
    uint64_t span_at, span_bytes;
} rebuild_batch;

static int sink_memory(void *ctx, const void *data, size_t n)
{
    uint8_t **at = ctx;
    memcpy(*at, data, n);
    *at += n;
    return ECF8_OK;
}

/* Windows for the group tasks, kept from one to the next: made and freed
 * for every group, their buffers were pages the allocator gave back and
 * faulted in again (three times the page faults of one thread). */
#define SPARE_WINDOWS 64

typedef struct window_pool {
    pthread_mutex_t lock;
    window *spare[SPARE_WINDOWS];
    size_t n;
} window_pool;

static void window_free(window *w)
{
    if (!w) return;
    XXH3_freeState(w->hash);
    free(w->coded), free(w->out), free(w->offsets);
    free(w);
}

static window *window_take(window_pool *wp)
{
    pthread_mutex_lock(&wp->lock);
    window *w = wp->n ? wp->spare[--wp->n] : NULL;
    pthread_mutex_unlock(&wp->lock);
    if (w) return w;
    if ((w = calloc(1, sizeof *w)) && !(w->hash = XXH3_createState())) {
        free(w);
        w = NULL;
    }
    return w;
}

static void window_give(window_pool *wp, window *w)
{
    pthread_mutex_lock(&wp->lock);
    if (wp->n < SPARE_WINDOWS) wp->spare[wp->n++] = w, w = NULL;
    pthread_mutex_unlock(&wp->lock);
    window_free(w);
}

static int rebuild_group(window_pool *wp, rebuild_batch *b, uint64_t g)
{
    window *w = window_take(wp);
    int st = w ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (w) w->span = b->span, w->span_at = b->span_at, w->span_bytes = b->span_bytes;
    for (size_t i = g * BATCH_GROUP; i < b->n && i < (g + 1) * BATCH_GROUP; i++) {
        rebuild_item *it = &b->item[i];
        uint8_t *at = it->out;
        if (!st) st = rebuild_tensor_windowed(b->f, it->t, 1, sink_memory, &at, NULL, w);
        if (st) {
            snprintf(it->error, sizeof it->error, "%s", ecf8_last_error());
            it->status = st;
            break;
        }
    }
    if (w) window_give(wp, w);
    return st;
}

/* The payloads of the batch's tensors, read in one piece when that piece
 * is not much more than they are (the index could place them anywhere);
 * else, or when the read falls short, each tensor reads its own (and
 * reports what is wrong with it, as one thread would). */
static void read_span(rebuild_batch *b)
{
    uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
    b->span = NULL;
    for (size_t k = 0; k < b->n; k++) {
        const ecf8_tensor_info *t = b->item[k].t;
        if (!t->payload_bytes) continue;
        uint64_t at = (uint64_t)((const uint8_t *)t->payload - b->f->bytes.data);
        if (at < lo) lo = at;
        if (at + t->payload_bytes > hi) hi = at + t->payload_bytes;
        sum += t->payload_bytes;
    }
    if (hi <= lo || hi - lo > 2 * sum + b->n * 64 || hi - lo > 2 * (uint64_t)BATCH_BYTES) return;
    const size_t n = (size_t)(hi - lo);
    if (n > b->span_cap) {
        free(b->span_buf);
        b->span_cap = 0;
        if (!(b->span_buf = malloc(n))) return;
        b->span_cap = n;
    }
    size_t got;
    if (ecf8_read_at(b->f->fd, b->span_buf, n, lo, &got) || got < n) return;
    b->span = b->span_buf, b->span_at = lo, b->span_bytes = n;
}

/* Plans batch b as the small tensors of f from `first` on (up to `end`;
 * none when tensor `first` is large); *next: the index after them. */
static int batch_plan(rebuild_batch *b, size_t first, size_t end, size_t *next)
{
    uint64_t bytes = 0;
    size_t i = first;
    for (; i < end && i - first < BATCH_TENSORS; i++) {
        const ecf8_tensor_info *t = &b->f->tensors[i];
        if (t->source_bytes >= SMALL_TENSOR_BYTES || bytes + t->source_bytes > BATCH_BYTES) break;
        bytes += t->source_bytes;
    }
    *next = i;
    b->n = i - first;
    b->span = NULL;
    if (bytes > b->cap) {
        free(b->buf);
        b->cap = 0;
        if (!(b->buf = malloc((size_t)bytes))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        b->cap = (size_t)bytes;
    }
    for (size_t k = 0, at = 0; k < b->n; k++) {
        const ecf8_tensor_info *t = &b->f->tensors[first + k];
        b->item[k] = (rebuild_item){.t = t, .out = b->buf + at};
        at += (size_t)t->source_bytes;
    }
    return ECF8_OK;
}

/* The batches of a run of small tensors go through a pipeline, as the
 * compressor's do: one parallel job passes the batch rebuilt before to the
 * sink (one item, the only one that touches it, so the output stays in
 * order), reads the next batch's payloads (one item) and rebuilds this one
 * (an item per BATCH_GROUP tensors). */
typedef struct rebuild_pipeline {
    rebuild_batch slot[3];
    rebuild_batch *out, *read, *code; /* in this job: to the sink, read, rebuilt */
    window_pool windows;
    sink_fn sink;
    void *ctx;
    int sink_status;
    char sink_error[512];
} rebuild_pipeline;

enum { ITEM_SINK, ITEM_READ, ITEM_GROUPS };

/* Batch b's first n tensors to the sink, in order. */
static int batch_sink(rebuild_pipeline *p, const rebuild_batch *b, size_t n)
{
    int st = ECF8_OK;
    for (size_t k = 0; k < n && !st; k++) st = p->sink(p->ctx, b->item[k].out, (size_t)b->item[k].t->source_bytes);
    return st;
}

static void batch_progress(progress_state *progress, const rebuild_batch *b, size_t n)
{
    for (size_t k = 0; k < n; k++) progress_add(progress, b->item[k].t->source_bytes);
}

static int pipeline_task(void *ctx, uint64_t i)
{
    rebuild_pipeline *p = ctx;
    if (i == ITEM_SINK) {
        int st = batch_sink(p, p->out, p->out->n);
        if (st) snprintf(p->sink_error, sizeof p->sink_error, "%s", ecf8_last_error());
        return p->sink_status = st;
    }
    if (i == ITEM_READ) {
        read_span(p->read);
        return ECF8_OK;
    }
    return rebuild_group(&p->windows, p->code, i - ITEM_GROUPS);
}

/* Rebuilds the run of small tensors of f from `first` on (up to `end`);
 * *next: the index after it.  The first error in file order is the one
 * reported: the sink's on an earlier batch, else a tensor's, after the
 * tensors before it went to the sink (as one thread does it). */
static int rebuild_small_run(rebuild_pipeline *p, size_t first, size_t end, unsigned threads,
                             progress_state *progress, size_t *next)
{
    p->code = &p->slot[0], p->read = &p->slot[1], p->out = &p->slot[2];
    p->out->n = 0;
    size_t i;
    int st = batch_plan(p->code, first, end, &i);
    if (!st) read_span(p->code);
    while (!st && p->code->n) {
        if ((st = batch_plan(p->read, i, end, &i))) break;
        p->sink_status = ECF8_OK;
        ecf8_parallel_for(threads, ITEM_GROUPS + ecf8_ceil_div(p->code->n, BATCH_GROUP), pipeline_task, p);
        if (p->sink_status) {
            st = ecf8_fail(p->sink_status, "%s", p->sink_error);
            break;
        }
        batch_progress(progress, p->out, p->out->n);
        for (size_t k = 0; k < p->code->n && !st; k++) {
            const rebuild_item *it = &p->code->item[k];
            if (!it->status) continue;
            if (!(st = batch_sink(p, p->code, k))) st = ecf8_fail(it->status, "%s", it->error);
        }
        rebuild_batch *done = p->out;
        p->out = p->code, p->code = p->read, p->read = done;
    }
    if (!st && !(st = batch_sink(p, p->out, p->out->n))) batch_progress(progress, p->out, p->out->n);
    *next = i;
    return st;
}

static int rebuild_source(const ecf8_file *f, size_t i, unsigned threads, sink_fn sink, void *ctx,
                          progress_state *progress, ecf8_tensor_decode_fn decode, void *decode_ctx)
{
    const source_info *s = &f->sources[i];
    int st = sink(ctx, s->prefix, s->prefix_bytes);
    if (!st) progress_add(progress, s->prefix_bytes);
    if (f->payloads_on_disk && !decode) {
        window w = {.hash = XXH3_createState()};
        rebuild_pipeline *p = NULL;
        if (!w.hash && !st) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        const size_t end = (size_t)s->first_tensor + s->n_tensors;
        for (size_t k = s->first_tensor; k < end && !st;) {
            const ecf8_tensor_info *t = &f->tensors[k];
            if (threads == 1 || t->source_bytes >= SMALL_TENSOR_BYTES) { /* one thread: the oracle */
                st = rebuild_tensor_windowed(f, t, threads, sink, ctx, progress, &w);
                k++;
                continue;
            }
            if (!p) {
                if (!(p = calloc(1, sizeof *p))) {
                    st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
                    break;
                }
                pthread_mutex_init(&p->windows.lock, NULL);
            }
            for (int s3 = 0; s3 < 3; s3++) p->slot[s3].f = f;
            p->sink = sink, p->ctx = ctx;
            st = rebuild_small_run(p, k, end, threads, progress, &k);
        }
        if (p) {
            for (int s3 = 0; s3 < 3; s3++) free(p->slot[s3].buf), free(p->slot[s3].span_buf);
            while (p->windows.n) window_free(p->windows.spare[--p->windows.n]);
            pthread_mutex_destroy(&p->windows.lock);
        }
        free(p);
        XXH3_freeState(w.hash);
        free(w.coded), free(w.out), free(w.offsets);
        return st;
    }
    uint64_t max = 0;
    for (uint32_t k = 0; k < s->n_tensors; k++) {
        const ecf8_tensor_info *t = &f->tensors[s->first_tensor + k];
        if (t->split != ECF8_SPLIT_STORED && t->source_bytes > max) max = t->source_bytes;
    }
    uint8_t *buf = max ? malloc(max) : NULL;
    if (max && !buf) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte tensor", (unsigned long long)max);
    uint8_t *payload = NULL; /* a file opened by ecf8_file_open_index: one payload at a time */
    size_t payload_cap = 0;
    for (uint32_t k = 0; k < s->n_tensors && !st; k++) {
        size_t ti = s->first_tensor + k;
        ecf8_tensor_info t;
        if ((st = ecf8_file_payload_read(f, &f->tensors[ti], &payload, &payload_cap, &t))) break;
        if (t.split == ECF8_SPLIT_STORED) {
            if (ecf8_hash64(t.payload, t.source_bytes) != t.checksum)
                st = ecf8_fail(ECF8_ERR_CHECKSUM, "tensor '%s': checksum mismatch", t.name);
            else
                st = sink(ctx, t.payload, t.source_bytes);
        } else {
            st = decode ? decode(decode_ctx, f, ti, buf, max)
                        : decode_in_bands(&t, buf, max, threads, progress);
            if (!st) st = sink(ctx, buf, t.source_bytes);
        }
        if (!st) progress_add(progress, t.source_bytes - progress->tensor_done);
        progress->tensor_done = 0;
    }
    free(payload);
    free(buf);
    return st;
}

static int sink_outfile(void *ctx, const void *data, size_t n)
{
    return ecf8_outfile_write(ctx, data, n);
}

/* The output rules of ecf8_output_check for every file the container
 * rebuilds, and for a directory container an out_path that is a directory
 * (or a link to one) or absent. */
static int check_outputs(const ecf8_file *f, const char *in_path, const char *out_path, bool overwrite)
{
    if (!ecf8_file_is_directory(f)) return ecf8_output_check(out_path, in_path, overwrite);
    if (!out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    struct stat sb;
    if (stat(out_path, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a directory (the container holds a directory)", out_path);
    int st = ECF8_OK;
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        char *path = ecf8_join_path(out_path, f->sources[i].path);
        st = path ? ecf8_output_check(path, in_path, overwrite) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        free(path);
    }
    return st;
}

/* A container can expand without bound (a constant tensor is a one-symbol
 * code of no bits: 236 bytes can be 3 GiB): refuses, before writing
 * anything, an output larger than the free space of the filesystem it goes
 * to (out_path when it is a directory, else the directory it is in), and
 * says how large it would be. */
static int check_output_space(const ecf8_file *f, const char *out_path, uint64_t output_bytes)
{
    char *where = strdup(out_path);
    if (!where) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(out_path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(where, '/');
        if (!slash) strcpy(where, ".");
        else if (slash == where) slash[1] = '\0';
        else *slash = '\0';
    }
    struct statvfs vfs;
    int st = ECF8_OK;
    /* Where statvfs cannot tell, opening the output reports the problem. */
    if (statvfs(where, &vfs) == 0) {
        uint64_t free_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        if (output_bytes > free_bytes)
            st = ecf8_fail(ECF8_ERR_IO, "%s: the output would be %llu bytes (from a %llu-byte "
                           "container), the filesystem has %llu bytes free", out_path,
                           (unsigned long long)output_bytes, (unsigned long long)f->bytes.size,
                           (unsigned long long)free_bytes);
    }
    free(where);
    return st;
}

int ecf8_decompress_path(const char *in_path, const char *out_path, unsigned threads)
{
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    return ecf8_decompress_path_ex(in_path, out_path, &o);
}

int ecf8_decompress_path_ex(const char *in_path, const char *out_path, const ecf8_decode_options *options)
{
    return ecf8_decompress_path_with(in_path, out_path, options, NULL, NULL);
}

int ecf8_decompress_path_with(const char *in_path, const char *out_path,
                              const ecf8_decode_options *options, ecf8_tensor_decode_fn decode,
                              void *decode_ctx)
{
    ecf8_clear_error();
    ecf8_decode_options o;
    if (!in_path || !out_path) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    if (!in_path[0] || !out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    int st = ecf8_decode_options_read(options, &o);
    if (st) return st;
    unsigned threads = o.threads;
    ecf8_file *f;
    /* The CPU decoder reads one payload at a time; a device decoder is
     * handed the open file, its payloads in memory. */
    st = decode ? ecf8_file_open(in_path, &f) : ecf8_file_open_index(in_path, &f);
    if (st) return ecf8_fail_context(st, "%s", in_path);
    progress_state progress;
    progress_start(&progress, &o, f);
    bool dir = ecf8_file_is_directory(f);
    _Atomic(ecf8_temp *) *made_dir = NULL; /* a directory this call created */
    ecf8_outfile *outs = NULL;
    size_t opened = 0;
    /* Every output is checked before anything is decoded or created, and
     * the expansion against the free space. */
    if ((st = check_outputs(f, in_path, out_path, o.overwrite != 0))) goto done;
    if ((st = check_output_space(f, out_path, progress.total))) goto done;
    if (dir && ecf8_temp_create_dir(out_path, &made_dir) != 0 && errno != EEXIST) {
        st = ecf8_fail(ECF8_ERR_IO, "%s: cannot create directory: %s", out_path,
                       errno == EINTR ? "interrupted" : strerror(errno));
        goto done;
    }
    /* Every source is written under a temporary name first; they are put in
     * place only once all of them are complete (all or nothing). */
    outs = calloc(f->n_sources, sizeof *outs);
    if (!outs) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        char *path = dir ? ecf8_join_path(out_path, f->sources[i].path) : strdup(out_path);
        if (!path) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
        st = ecf8_outfile_open(&outs[i], path, in_path, o.overwrite != 0);
        if (!st) {
            opened = i + 1;
            st = rebuild_source(f, i, threads, sink_outfile, &outs[i], &progress, decode, decode_ctx);
            if (st && !outs[i].failed) st = ecf8_fail_context(st, "%s", in_path);
            else if (!st) st = ecf8_outfile_finish(&outs[i]);
        }
        free(path);
    }
    /* A file that changed meanwhile explains any other failure too. */
    int changed = ecf8_file_payloads_unchanged(f);
    if (changed) st = ecf8_fail_context(changed, "%s", in_path);
    for (size_t i = 0; i < opened; i++) {
        if (st) ecf8_outfile_abort(&outs[i]);
        else st = ecf8_outfile_commit(&outs[i]);
    }
    if (st && made_dir) rmdir(out_path);
    ecf8_temp_release(made_dir);
done:
    free(outs);
    ecf8_file_close(f);
    return st;
}

/* The original is read piece by piece beside the reconstruction, not
 * copied whole: verify already holds the container in memory. */
#define COMPARE_PIECE ((size_t)4 << 20)

typedef struct compare_ctx {
    int fd;
    struct stat before; /* the original's version when opened */
    uint64_t pos;
    uint8_t *piece;     /* COMPARE_PIECE bytes */
    bool original_failed; /* the error is about the original (name it) */
} compare_ctx;

static int sink_compare(void *ctx, const void *data, size_t n)
{
    compare_ctx *c = ctx;
    const uint8_t *d = data;
    while (n) {
        size_t want = n < COMPARE_PIECE ? n : COMPARE_PIECE, got;
        int st = ecf8_read_at(c->fd, c->piece, want, c->pos, &got);
        if (st) {
            c->original_failed = true;
            return st;
        }
        if (got < want || memcmp(c->piece, d, want) != 0) {
            size_t at = 0;
            while (at < got && c->piece[at] == d[at]) at++;
            c->original_failed = true;
            return ecf8_fail(ECF8_ERR_MISMATCH, "reconstruction differs from the original at byte %llu",
                             (unsigned long long)(c->pos + at));
        }
        c->pos += want, d += want, n -= want;
    }
    return ECF8_OK;
}

/* Rebuilds source i of f and compares it with the file at path. */
static int compare_source(const ecf8_file *f, size_t i, const char *path, unsigned threads,
                          progress_state *progress, compare_ctx *c)
{
    int st = ecf8_open_regular_file(path, &c->fd, &c->before);
    if (st) {
        c->original_failed = true;
        return st;
    }
    if (!(c->piece = malloc(COMPARE_PIECE))) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) st = rebuild_source(f, i, threads, sink_compare, c, progress, NULL, NULL);
    uint64_t size = (uint64_t)c->before.st_size;
    if (!st && c->pos != size) {
        c->original_failed = true;
        st = c->pos < size ? ecf8_fail(ECF8_ERR_MISMATCH, "original has %llu more bytes",
                                       (unsigned long long)(size - c->pos))
                           : ecf8_fail(ECF8_ERR_MISMATCH, "reconstruction differs from the "
                                       "original at byte %llu", (unsigned long long)size);
    }
    /* A mismatch with an original that changed meanwhile says nothing. */
    struct stat after;
    if ((!st || c->original_failed) && fstat(c->fd, &after) == 0 &&
        !ecf8_same_file_version(&c->before, &after)) {
        c->original_failed = true;
        st = ecf8_fail(ECF8_ERR_IO, "input changed while being read");
    }
    close(c->fd);
    free(c->piece);
    return st;
}

static int sink_discard(void *ctx, const void *data, size_t n)
{
    (void)ctx, (void)data, (void)n;
    return ECF8_OK;
}

int ecf8_verify_path(const char *in_path, const char *original_path, unsigned threads)
{
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    return ecf8_verify_path_ex(in_path, original_path, &o);
}

int ecf8_verify_path_ex(const char *in_path, const char *original_path, const ecf8_decode_options *options)
{
    ecf8_clear_error();
    ecf8_decode_options o;
    int st = ecf8_decode_options_read(options, &o);
    if (st) return st;
    unsigned threads = o.threads;
    ecf8_file *f;
    st = ecf8_file_open_index(in_path, &f);
    if (st) return ecf8_fail_context(st, "%s", in_path);
    progress_state progress;
    progress_start(&progress, &o, f);
    bool dir = ecf8_file_is_directory(f);
    for (size_t i = 0; i < f->n_sources && !st; i++) {
        if (!original_path) {
            st = rebuild_source(f, i, threads, sink_discard, NULL, &progress, NULL, NULL);
            if (st) st = ecf8_fail_context(st, "%s", in_path);
            continue;
        }
        char *path = dir ? ecf8_join_path(original_path, f->sources[i].path) : strdup(original_path);
        compare_ctx c = {0};
        if (!path) { st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory"); break; }
        st = compare_source(f, i, path, threads, &progress, &c);
        if (st) st = ecf8_fail_context(st, "%s", c.original_failed ? path : in_path);
        free(path);
    }
    int changed = ecf8_file_payloads_unchanged(f); /* explains any other failure too */
    if (changed) st = ecf8_fail_context(changed, "%s", in_path);
    ecf8_file_close(f);
    return st;
}
