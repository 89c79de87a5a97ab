/* bench_codec.c - sizes and speeds of the ecf8 codec on real checkpoints,
 * side by side with zstd -19, the ECF8 paper's layout and the order-0
 * entropy bound (the "Done means" figures of issue 2).
 *
 * Usage: ecf8-bench-codec FILE.safetensors [...] [--threads N] [--repeat R]
 *                         [--json] [--mode all|decode|encode] [--no-zstd] [--layout 0|1]
 *
 * Per file, in one run:
 *   sizes   source; .ecf8 (ecf8_compress_path, default options); zstd -19 of
 *           the whole file (libzstd, one thread, cached); the ECF8 paper
 *           layout; the order-0 entropy bound.
 *   speeds  medians of R repeats (CLOCK_MONOTONIC), interleaved so drift
 *           hits every figure alike: ecf8_tensor_encode and
 *           ecf8_stream_decode over every coded tensor with 1 thread (the
 *           per-core figure) and with all threads; whole-file reconstruction
 *           in memory; verified decode from the .ecf8 container; zstd -d of
 *           the level-19 frame (ZSTD_decompressDCtx, one thread).
 *
 * The ECF8 paper layout (arXiv 2510.02676, its published implementation):
 * per F8_E4M3 tensor, exponent Huffman bits (code lengths from our optimal
 * builder capped at 13 bits: the paper caps at 16 with a heuristic, and 13
 * never binds on a 16-symbol alphabet) + 4 raw bits per element packed two
 * per byte + a 4-bit gap per 8 bytes of the exponent stream + one 64-bit
 * output position per 4 KiB block of the exponent stream (a block of 512
 * threads x 8 bytes); its codebooks are not counted.  Tensors the paper
 * does not compress and the safetensors header count as their bytes.
 * "all dtypes" applies the same layout to every coded dtype (E5M2, BF16 as
 * DFloat11 does, F16): this is the stronger baseline and the one the pass
 * check uses.
 *
 * Order-0 bound: per coded tensor the min over splits (stored, exponent,
 * byte) of ecf8_tensor_analysis.entropy_bound_bytes; other tensors and the
 * safetensors header at their size.
 *
 * This file reads the checkpoint and measures; bench_codec_report.c prints
 * the results (JSON, table, summary); bench_codec.h is what both share. */
#include "bench_codec.h"
#include "bench_util.h"
#include "ecf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define PAPER_CODE_BITS 13u      /* the paper caps at 16; our builder at 13 */
#define PAPER_THREAD_BYTES 8u    /* coded bytes per GPU thread */
#define PAPER_GAP_BITS 4u        /* bit offset of a thread's first code */
#define PAPER_BLOCK_BYTES 4096u  /* coded bytes per block (one u64 position) */
#define ZSTD_LEVEL 19
#define MAX_REPEAT 1000

/* ---- small helpers ------------------------------------------------------ */
static const char *prog = "ecf8-bench-codec";
/* The temporary .ecf8 and its directory, removed on failure too. */
static char g_tmp_dir[4096], g_tmp_file[4200];

static void remove_temp(void)
{
    if (g_tmp_file[0]) remove(g_tmp_file);
    if (g_tmp_dir[0]) rmdir(g_tmp_dir);
    g_tmp_file[0] = g_tmp_dir[0] = 0;
}

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    remove_temp();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) die("out of memory");
    return p;
}

/* CLOCK_MONOTONIC by default; --clock cpu uses the calling thread's CPU
 * time, which a busy shared machine does not inflate (1-thread figures only). */
clockid_t g_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --stat min reports the fastest repeat instead of the median: the better
 * estimate of the uncontended cost when comparing two builds on a busy box. */
bool g_stat_min = false;
/* --layout: the stream layout every .ecf8 and encoded tensor is made with. */
static unsigned g_layout = ECF8_STREAM_LAYOUT_SERIAL;

/* Median (or minimum, --stat min) of n values (sorts a copy). */
static double median(const double *v, size_t n)
{
    if (n == 0) return 0;
    double *c = xmalloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, bench_cmp_double);
    double m = g_stat_min ? c[0] : n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            buf[i] = c;
        }
    }
    return 0;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = xmalloc(n);
    if (n && fread(p, 1, n, f) != n) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = n;
    return p;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- the safetensors file ---------------------------------------------- */
struct tensor {
    char *name;
    char dtype_name[32];
    ecf8_dtype dtype;
    uint64_t rows, cols, n, offset, bytes; /* offset: absolute in the file */
    ecf8_tensor_analysis *an;              /* coded dtypes only */
    ecf8_encoded *enc;
    const ecf8_stream *stream;             /* NULL when stored */
    size_t payload_bytes;
    uint64_t bound_bytes;
    uint64_t paper_bytes;                  /* paper layout, this dtype coded */
    int group;
};

static int parse_safetensors(model *m)
{
    if (m->size < 8) return -1;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)m->data[i] << (8 * i);
    if (hlen > m->size - 8) return -1;
    m->header_bytes = 8 + hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)m->data + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -1;
    }
    size_t cap = (size_t)cJSON_GetArraySize(root);
    m->t = xcalloc(cap, sizeof *m->t);
    m->nt = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        if (!strcmp(it->string, "__metadata__")) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) ||
            cJSON_GetArraySize(of) != 2)
            goto bad;
        tensor *t = &m->t[m->nt++];
        t->name = strdup(it->string);
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
        t->dtype = ecf8_dtype_from_name(dt->valuestring);
        uint64_t n = 1, first = 1;
        int nd = cJSON_GetArraySize(sh), d = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, sh)
        {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0) goto bad;
            uint64_t v = (uint64_t)e->valuedouble;
            if (d++ == 0) first = v;
            n *= v;
        }
        t->n = n;
        /* The codec's 2-D view: rows = shape[0], cols = the rest. */
        t->rows = nd >= 2 ? first : 1;
        t->cols = nd >= 2 ? (first ? n / first : 0) : n;
        uint64_t a = (uint64_t)cJSON_GetArrayItem(of, 0)->valuedouble;
        uint64_t b = (uint64_t)cJSON_GetArrayItem(of, 1)->valuedouble;
        if (b < a || m->header_bytes + b > m->size) goto bad;
        t->offset = m->header_bytes + a;
        t->bytes = b - a;
        unsigned w = ecf8_dtype_size(t->dtype);
        if (w && t->bytes != n * w) goto bad;
    }
    cJSON_Delete(root);
    return 0;
bad:
    cJSON_Delete(root);
    return -1;
}

/* ---- the ECF8 paper layout ---------------------------------------------- */
/* Bytes of one tensor (`bytes` as it is) in the paper's layout with its
 * exponent field coded; a dtype with no exponent field (U8, I8, F8_E8M0)
 * the paper does not code: its bytes. */
static uint64_t paper_layout_bytes(ecf8_dtype dtype, const ecf8_tensor_analysis *an, uint64_t n,
                                   uint64_t bytes)
{
    ecf8_split_layout l;
    if (ecf8_split_layout_get(dtype, ECF8_SPLIT_EXPONENT, &l) != ECF8_OK) return bytes;
    unsigned nsym = 1u << l.symbol_bits;
    uint8_t lengths[256] = {0};
    if (ecf8_codebook_build(an->exponent_histogram, nsym, PAPER_CODE_BITS, lengths) != ECF8_OK)
        die("codebook build failed: %s", ecf8_last_error());
    uint64_t code_bits = 0;
    for (unsigned s = 0; s < nsym; s++) code_bits += an->exponent_histogram[s] * lengths[s];
    uint64_t exp_bytes = (code_bits + 7) / 8;
    uint64_t raw_bytes = (n * l.raw_bits + 7) / 8;
    uint64_t threads = (exp_bytes + PAPER_THREAD_BYTES - 1) / PAPER_THREAD_BYTES;
    uint64_t gap_bytes = (threads * PAPER_GAP_BITS + 7) / 8;
    uint64_t pos_bytes = 8 * ((exp_bytes + PAPER_BLOCK_BYTES - 1) / PAPER_BLOCK_BYTES);
    return exp_bytes + raw_bytes + gap_bytes + pos_bytes;
}

/* Exact code bits (no padding) of a coded tensor's chosen split. */
static double coded_bits(const uint8_t *data, uint64_t n, const ecf8_stream *s)
{
    ecf8_split_layout l;
    if (ecf8_split_layout_get(s->dtype, s->split, &l) != ECF8_OK) return 0;
    uint64_t hist[256] = {0};
    unsigned mask = (1u << l.symbol_bits) - 1;
    if (l.element_bits == 8)
        for (uint64_t i = 0; i < n; i++) hist[(data[i] >> l.symbol_shift) & mask]++;
    else
        for (uint64_t i = 0; i < n; i++) {
            unsigned x = (unsigned)data[2 * i] | (unsigned)data[2 * i + 1] << 8;
            hist[(x >> l.symbol_shift) & mask]++;
        }
    double bits = (double)n * l.raw_bits;
    if (s->code_bits)
        for (unsigned v = 0; v <= mask; v++) bits += (double)hist[v] * s->lengths[v];
    return bits;
}

/* ---- zstd -19 with an on-disk cache ------------------------------------- */
static void cache_path(const model *m, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/ecf8/bench", xdg);
    else
        snprintf(dir, sizeof dir, "%s/.cache/ecf8/bench", home && *home ? home : "/tmp");
    if (mkdir_p(dir) != 0) die("%s: cannot create cache directory", dir);
    snprintf(out, cap, "%s/%s.%zu.%lld.%09ld.zstd%d", dir, base_name(m->path), m->size,
             (long long)m->mtime_s, m->mtime_ns, ZSTD_LEVEL);
}

/* The level-19 frame of the whole file, from the cache or compressed now. */
static uint8_t *zstd19_frame(const model *m, size_t *frame_bytes, bool *cached, double *comp_s)
{
    char path[4400];
    cache_path(m, path, sizeof path);
    size_t n = 0;
    uint8_t *f = read_file(path, &n);
    *comp_s = 0;
    if (f && ZSTD_getFrameContentSize(f, n) == (unsigned long long)m->size) {
        *cached = true;
        *frame_bytes = n;
        return f;
    }
    free(f);
    *cached = false;
    size_t cap = ZSTD_compressBound(m->size);
    f = xmalloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!cc) die("ZSTD_createCCtx failed");
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_nbWorkers, 0);
    double t0 = now_s();
    size_t r = ZSTD_compress2(cc, f, cap, m->data, m->size);
    *comp_s = now_s() - t0;
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r)) die("%s: zstd: %s", m->path, ZSTD_getErrorName(r));
    *frame_bytes = r;
    /* All or nothing (ecf8_output): a reader never finds half a frame. */
    ecf8_output *out = NULL;
    int st = ecf8_output_open(path, NULL, 1, &out);
    if (st == ECF8_OK) {
        st = ecf8_output_write(out, f, r);
        if (st == ECF8_OK)
            st = ecf8_output_commit(out);
        else
            ecf8_output_abort(out);
    }
    if (st != ECF8_OK) fprintf(stderr, "%s: warning: cannot write cache %s\n", prog, path);
    return f;
}

/* ---- results ------------------------------------------------------------ */
static int group_of(results *r, ecf8_dtype dtype, ecf8_split split)
{
    for (unsigned g = 0; g < r->n_groups; g++)
        if (r->groups[g].dtype == dtype && r->groups[g].split == split) return (int)g;
    if (r->n_groups == MAX_GROUPS) die("too many groups");
    r->groups[r->n_groups] = (group){.dtype = dtype, .split = split};
    return (int)r->n_groups++;
}

static void check(int st, const char *what, const char *path)
{
    if (st != ECF8_OK)
        die("%s: %s: %s (%s)", path, what, ecf8_status_string(st), ecf8_last_error());
}

/* ---- the measurements --------------------------------------------------- */
/* Encodes every coded tensor (threads), summing per-tensor times into
 * group_s[group] and returning the total. */
static double time_encode(model *m, unsigned threads, double *group_s)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.stream_layout = g_layout;
    o.threads = threads;
    double total = 0;
    for (size_t i = 0; i < m->nt; i++) {
        tensor *t = &m->t[i];
        if (!t->an) continue;
        ecf8_encoded *enc = NULL;
        double t0 = now_s();
        int st = ecf8_tensor_encode(t->dtype, m->data + t->offset, t->rows, t->cols, &o, &enc);
        double dt = now_s() - t0;
        check(st, "encode", m->path);
        ecf8_encoded_free(enc);
        total += dt;
        if (group_s) group_s[t->group] += dt;
    }
    return total;
}

/* Rebuilds the whole file in out (header, stored tensors by memcpy, coded
 * ones by ecf8_stream_decode); *coded_s gets the decode time alone. */
static double time_reconstruct(model *m, uint8_t *out, unsigned threads, double *coded_s,
                               double *group_s)
{
    double total = 0, coded = 0, t0 = now_s();
    memcpy(out, m->data, m->header_bytes);
    total += now_s() - t0;
    for (size_t i = 0; i < m->nt; i++) {
        tensor *t = &m->t[i];
        t0 = now_s();
        if (t->stream) {
            int st = ecf8_stream_decode(t->stream, out + t->offset, t->bytes, threads);
            double dt = now_s() - t0;
            check(st, "decode", m->path);
            coded += dt, total += dt;
            if (group_s) group_s[t->group] += dt;
        } else {
            memcpy(out + t->offset, m->data + t->offset, t->bytes);
            double dt = now_s() - t0;
            total += dt;
            if (group_s && t->an) group_s[t->group] += dt;
        }
    }
    if (coded_s) *coded_s = coded;
    return total;
}

/* Decodes every tensor of the container with its checksum check. */
static double time_verified(ecf8_file *f, model *m, const size_t *map, uint8_t *out,
                            unsigned threads)
{
    double t0 = now_s();
    memcpy(out, m->data, m->header_bytes);
    size_t n = ecf8_file_tensor_count(f);
    for (size_t i = 0; i < n; i++) {
        tensor *t = &m->t[map[i]];
        check(ecf8_file_read_tensor(f, i, out + t->offset, t->bytes, threads), "read_tensor",
              m->path);
    }
    return now_s() - t0;
}

/* ---- one file ------------------------------------------------------------- */
static void bench_file(const char *path, const bench_opts *o, results *r)
{
    model m = {.path = path};
    memset(r, 0, sizeof *r);
    m.data = read_file(path, &m.size);
    if (!m.data) die("%s: cannot read: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0) die("%s: cannot stat", path);
    m.mtime_s = st.st_mtim.tv_sec;
    m.mtime_ns = st.st_mtim.tv_nsec;
    if (parse_safetensors(&m) != 0) die("%s: not a valid safetensors file", path);
    r->threads_all = o->threads;
    if (r->threads_all == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        r->threads_all = nc > 0 ? (unsigned)nc : 1;
    }
    r->source_bytes = m.size;
    r->header_bytes = m.header_bytes;
    r->n_tensors = (unsigned)m.nt;

    /* Analysis, the encoded streams, the bounds and the paper layout. */
    ecf8_compress_options opts;
    ecf8_compress_options_init(&opts);
    opts.stream_layout = g_layout;
    r->bound_bytes = r->paper_e4m3_bytes = r->paper_all_bytes = r->ecf8_payload_bytes =
        m.header_bytes;
    for (size_t i = 0; i < m.nt; i++) {
        tensor *t = &m.t[i];
        if (t->dtype == ECF8_DTYPE_OTHER || t->n == 0) {
            r->bound_bytes += t->bytes;
            r->paper_e4m3_bytes += t->bytes;
            r->paper_all_bytes += t->bytes;
            r->ecf8_payload_bytes += t->bytes;
            r->stored_bytes += t->bytes;
            continue;
        }
        t->an = xmalloc(sizeof *t->an);
        const void *data = m.data + t->offset;
        check(ecf8_tensor_analyze(t->dtype, data, t->rows, t->cols, &opts, t->an), "analyze", path);
        t->bound_bytes = t->an->entropy_bound_bytes[ECF8_SPLIT_STORED];
        for (int s = ECF8_SPLIT_EXPONENT; s <= ECF8_SPLIT_BYTE; s++)
            if (t->an->entropy_bound_bytes[s] && t->an->entropy_bound_bytes[s] < t->bound_bytes)
                t->bound_bytes = t->an->entropy_bound_bytes[s];
        r->bound_bytes += t->bound_bytes;
        t->paper_bytes = paper_layout_bytes(t->dtype, t->an, t->n, t->bytes);
        r->paper_all_bytes += t->paper_bytes;
        r->paper_e4m3_bytes += t->dtype == ECF8_DTYPE_F8_E4M3 ? t->paper_bytes : t->bytes;
        check(ecf8_tensor_encode(t->dtype, data, t->rows, t->cols, &opts, &t->enc), "encode", path);
        t->stream = ecf8_encoded_stream(t->enc);
        ecf8_encoded_payload(t->enc, &t->payload_bytes);
        r->ecf8_payload_bytes += t->payload_bytes;
        r->coded_source_bytes += t->bytes;
        if (t->stream) {
            const ecf8_stream *s = t->stream;
            double cb = coded_bits(data, t->n, s) / 8;
            uint64_t chosen = t->an->entropy_bound_bytes[s->split];
            uint64_t lengths = ((s->n_symbols / 2) + 7) / 8 * 8;
            r->ov_split += (double)(chosen - t->bound_bytes);
            r->ov_huffman += cb - (double)chosen;
            r->ov_chunk_pad += (double)(s->coded_bytes - 8) - cb;
            r->ov_offsets += 8.0 * (double)(s->n_chunks + 1);
            r->ov_lengths += (double)lengths;
            r->ov_stream_pad += 8.0 + (double)t->payload_bytes -
                                (double)(lengths + 8 * (s->n_chunks + 1) + s->coded_bytes);
        } else {
            r->ov_stored += (double)(t->payload_bytes - t->bound_bytes);
        }
        r->n_coded++;
        t->group = group_of(r, t->dtype, ecf8_encoded_split(t->enc));
        group *G = &r->groups[t->group];
        G->tensors++;
        G->elements += t->n;
        G->source_bytes += t->bytes;
        G->payload_bytes += t->payload_bytes;
        G->bound_bytes += t->bound_bytes;
    }

    /* The real container, its size and a byte-exact round trip. */
    char *dir = g_tmp_dir, *out_path = g_tmp_file;
    ecf8_file *cf = NULL;
    size_t *map = NULL;
    if (o->mode == MODE_ALL) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof g_tmp_dir, "%s/ecf8-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) die("cannot create a temporary directory: %s", strerror(errno));
        snprintf(out_path, sizeof g_tmp_file, "%s/out.ecf8", dir);
        opts.overwrite = 1; /* the timed repeats below rewrite out.ecf8 */
        check(ecf8_compress_path(path, out_path, &opts), "compress", path);
        r->ecf8_bytes = file_size(out_path);
        r->ov_container = (double)r->ecf8_bytes - (double)r->ecf8_payload_bytes;
        r->roundtrip_file_ok = ecf8_verify_path(out_path, path, 0) == ECF8_OK;
        check(ecf8_file_open(out_path, &cf), "open .ecf8", path);
        size_t n = ecf8_file_tensor_count(cf);
        map = xcalloc(n, sizeof *map);
        for (size_t i = 0; i < n; i++) {
            ecf8_tensor_info ti;
            check(ecf8_file_tensor(cf, i, &ti), "tensor info", path);
            size_t k = 0;
            while (k < m.nt && strcmp(m.t[k].name, ti.name)) k++;
            if (k == m.nt) die("%s: tensor '%s' of the container not in the source", path, ti.name);
            map[i] = k;
        }
    }

    uint8_t *zframe = NULL;
    size_t zbytes = 0;
    ZSTD_DCtx *dctx = NULL;
    if (o->mode == MODE_ALL && o->zstd) {
        zframe = zstd19_frame(&m, &zbytes, &r->zstd_cached, &r->zstd19_compress_s);
        r->zstd19_bytes = zbytes;
        dctx = ZSTD_createDCtx();
        if (!dctx) die("ZSTD_createDCtx failed");
    }

    /* Output buffers, touched first. */
    uint8_t *recon = xmalloc(m.size);
    memset(recon, 0, m.size);

    unsigned R = o->repeat, G = r->n_groups;
    double *v[9];
    for (int k = 0; k < 9; k++) v[k] = xcalloc(R, sizeof(double));
    double *genc = xcalloc((size_t)R * (G ? G : 1), sizeof(double));
    double *gdec = xcalloc((size_t)R * (G ? G : 1), sizeof(double));
    r->roundtrip_mem_ok = true;
    for (unsigned rep = 0; rep < R; rep++) {
        if (o->mode != MODE_DECODE) {
            v[0][rep] = time_encode(&m, 1, genc + (size_t)rep * G);
            if (g_clock == CLOCK_MONOTONIC) v[1][rep] = time_encode(&m, o->threads, NULL);
        }
        if (o->mode != MODE_ENCODE) {
            v[4][rep] = time_reconstruct(&m, recon, 1, &v[2][rep], gdec + (size_t)rep * G);
            if (rep == 0 && memcmp(recon, m.data, m.size) != 0) r->roundtrip_mem_ok = false;
            memset(recon, 0, m.size);
            if (g_clock == CLOCK_MONOTONIC) {
                v[5][rep] = time_reconstruct(&m, recon, o->threads, &v[3][rep], NULL);
                if (rep == 0 && memcmp(recon, m.data, m.size) != 0) r->roundtrip_mem_ok = false;
            }
        }
        if (o->mode == MODE_ALL) {
            v[6][rep] = time_verified(cf, &m, map, recon, 1);
            if (rep == 0 && memcmp(recon, m.data, m.size) != 0) r->roundtrip_mem_ok = false;
            if (dctx) {
                double t0 = now_s();
                size_t z = ZSTD_decompressDCtx(dctx, recon, m.size, zframe, zbytes);
                v[7][rep] = now_s() - t0;
                if (ZSTD_isError(z) || z != m.size) die("%s: zstd -d failed", path);
                if (rep == 0 && memcmp(recon, m.data, m.size) != 0)
                    die("%s: zstd round trip differs (stale cache?)", path);
            }
            if (g_clock == CLOCK_MONOTONIC) {
                double t0 = now_s();
                check(ecf8_compress_path(path, out_path, &opts), "compress", path);
                v[8][rep] = now_s() - t0;
            }
        }
    }
    r->enc1 = median(v[0], R), r->encA = median(v[1], R);
    r->dec1 = median(v[2], R), r->decA = median(v[3], R);
    r->file1 = median(v[4], R), r->fileA = median(v[5], R);
    r->verified1 = median(v[6], R), r->zstd_dec = median(v[7], R);
    r->compress_file = median(v[8], R);
    double *col = xcalloc(R, sizeof(double));
    for (unsigned g = 0; g < G; g++) {
        for (unsigned rep = 0; rep < R; rep++) col[rep] = genc[(size_t)rep * G + g];
        r->groups[g].enc1_s = median(col, R);
        for (unsigned rep = 0; rep < R; rep++) col[rep] = gdec[(size_t)rep * G + g];
        r->groups[g].dec1_s = median(col, R);
    }
    free(col);

    if (o->json)
        print_json(&m, r, o);
    else
        print_table(&m, r, o);

    for (int k = 0; k < 9; k++) free(v[k]);
    free(genc), free(gdec), free(recon), free(zframe), free(map);
    ZSTD_freeDCtx(dctx);
    if (cf) ecf8_file_close(cf);
    remove_temp();
    for (size_t i = 0; i < m.nt; i++) {
        free(m.t[i].name);
        free(m.t[i].an);
        ecf8_encoded_free(m.t[i].enc);
    }
    free(m.t);
    free(m.data);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s FILE.safetensors [...] [--threads N] [--repeat R] [--json]\n"
            "       [--mode all|decode|encode] [--no-zstd] [--clock wall|cpu] [--layout 0|1]\n"
            "       [--stat median|min]\n"
            "  --threads N  threads for the \"all\" figures (default: one per core)\n"
            "  --layout L   stream layout of every coded tensor: 0 serial chunks (default), 1 lane streams\n"
            "  --repeat R   repeats per timing, the median is reported (default 5)\n"
            "  --json       one JSON object per file on stdout\n"
            "  --mode       decode/encode: time only that (for profilers)\n"
            "  --no-zstd    skip the zstd -19 comparison\n"
            "  --clock cpu  time with this thread's CPU time instead of CLOCK_MONOTONIC\n"
            "               (robust on a busy machine; multi-thread figures then omitted)\n"
            "  --stat min   report the fastest repeat instead of the median (A/B runs)\n",
            prog);
    exit(2);
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) usage();
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    bench_opts o = {.threads = 0, .repeat = 5, .json = false, .zstd = true, .mode = MODE_ALL};
    const char **files = xcalloc((size_t)argc, sizeof *files);
    size_t nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc)
            o.threads = parse_uint(argv[++i], 0, 256);
        else if (!strcmp(a, "--repeat") && i + 1 < argc)
            o.repeat = parse_uint(argv[++i], 1, MAX_REPEAT);
        else if (!strcmp(a, "--json"))
            o.json = true;
        else if (!strcmp(a, "--layout") && i + 1 < argc)
            g_layout = parse_uint(argv[++i], 0, ECF8_STREAM_LAYOUT_LANES);
        else if (!strcmp(a, "--clock") && i + 1 < argc) {
            const char *c = argv[++i];
            if (!strcmp(c, "wall")) g_clock = CLOCK_MONOTONIC;
            else if (!strcmp(c, "cpu")) g_clock = CLOCK_THREAD_CPUTIME_ID;
            else usage();
        } else if (!strcmp(a, "--stat") && i + 1 < argc) {
            const char *c = argv[++i];
            if (!strcmp(c, "median")) g_stat_min = false;
            else if (!strcmp(c, "min")) g_stat_min = true;
            else usage();
        } else if (!strcmp(a, "--no-zstd"))
            o.zstd = false;
        else if (!strcmp(a, "--mode") && i + 1 < argc) {
            const char *mm = argv[++i];
            if (!strcmp(mm, "all")) o.mode = MODE_ALL;
            else if (!strcmp(mm, "decode")) o.mode = MODE_DECODE;
            else if (!strcmp(mm, "encode")) o.mode = MODE_ENCODE;
            else usage();
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help") || a[0] == '-')
            usage();
        else
            files[nf++] = a;
    }
    if (nf == 0) usage();
    if (!o.json) {
        printf("ecf8 %s codec benchmark; zstd %s level %d; targets: size <= %.2f x bound, "
               "< zstd -19, < ECF8 layout; encode >= %.0f MB/s/core; decode >= %.1f GB/s/core "
               "and > zstd -d\n",
               ECF8_VERSION_STRING, ZSTD_versionString(), ZSTD_LEVEL, TARGET_BOUND_RATIO,
               TARGET_ENCODE_MBPS, TARGET_DECODE_GBPS);
    }
    results *r = xcalloc(nf, sizeof *r);
    for (size_t i = 0; i < nf; i++) bench_file(files[i], &o, &r[i]);
    if (!o.json && o.mode == MODE_ALL && nf > 1) print_summary(files, r, nf, &o);
    free(r);
    free(files);
    return 0;
}
