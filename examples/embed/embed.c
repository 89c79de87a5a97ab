/* ecf8-embed - all-MiniLM-L6-v2 sentence embeddings on an OpenCL device,
 * with the Linear weights used straight from an ecf8 container.
 *
 *   ecf8-embed MODEL VOCAB --text "..." [--text ...]
 *              [--weights fused|decoded|uncompressed] [--json] [--repeat N]
 *
 * MODEL is a .ecf8 container or a .safetensors file of the BERT encoder
 * (the sentence-transformers layout: embeddings.*, encoder.layer.N.*), its
 * Linear weights F8_E4M3/F8_E5M2 with F32 "<prefix>.weight_scale_inv"
 * 128x128 block scales, BF16, or (uncompressed only) F32/F16.  VOCAB is the
 * model's vocab.txt.  Each text becomes one 384-d, L2-normalised vector
 * (mean of the last hidden states over its tokens): one line of numbers,
 * or with --json {"embeddings": [[...]], "tokens": [[...]], "weights",
 * "device", "device_weight_bytes", "peak_device_bytes", "ms", "decode_ms",
 * "passes", "layer_ms"}.  peak_device_bytes: the most device memory the
 * program held at once (every buffer it creates, weights, activations and
 * scratch, a running total kept where they are created and released, the
 * library's weight objects at the bytes they report); layer_ms: the device
 * time (profiling events of every command of the pass) of the embeddings
 * (with their LayerNorm), each of the 6 encoder layers and the pooling,
 * [8] in that order, the mean of the timed passes (ms, like decode_ms).
 *
 * --weights (how every Linear layer gets its weight):
 *   uncompressed  the library's uncompressed matmul engine: raw weights on
 *                 the device as in the source file (F32/F16 weights: a
 *                 plain fp32 kernel of this program instead);
 *   decoded       the coded weights stay on the device; just before each
 *                 Linear, ecf8_cl_enqueue_decode writes its weight into one
 *                 scratch buffer, which this program's matmul_raw kernel
 *                 multiplies in the reduction order of the library's
 *                 engines (ecf8_cl.h: the engine itself only takes weights
 *                 from the host);
 *   fused         (default) the library's fused decode+matmul engine.
 * The three give bit-identical embeddings.  The word-embedding table is on
 * the device too: raw as in the file (uncompressed), or (decoded, fused)
 * kept coded, each forward pass decoding only the chunk-row bands that hold
 * its tokens' rows (ecf8_cl_enqueue_decode_rows) into a 256 KiB scratch;
 * the embedding sum runs on the device (embed_rows).  The position and
 * token-type tables and the other non-Linear weights (LayerNorm, biases)
 * are widened to F32 and uploaded.  device_weight_bytes counts every
 * weight byte the device holds (for decoded: coded tensors, their scales,
 * the Linear scratch buffer; decoded and fused: the coded word table and
 * its band scratch).
 * --repeat N runs the batch N more times after a warm-up and reports the
 * mean (for benchmarks).  ECF8_PLATFORM / ECF8_DEVICE pick the device.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strdup, mmap */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ecf8.h>
#include <ecf8_cl.h>

#include "embed_cl_source.h"
#include "embed.h"

enum { D = 384, H = 12, HD = 32, FF = 1536, LAYERS = 6, MAX_POS = 512, MAX_TOKENS = 256 };
static const float LN_EPS = 1e-12f;

typedef enum mode { MODE_FUSED, MODE_DECODED, MODE_UNCOMPRESSED } mode;
static const char *const MODE_NAMES[] = {"fused", "decoded", "uncompressed"};

static const char *g_model_path = "";

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ecf8-embed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(int st, const char *what)
{
    if (st != ECF8_OK) die("%s: %s: %s", what, ecf8_status_string(st), ecf8_last_error());
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- the device ----------------------------------------------------------------- */
typedef struct gpu {
    cl_context ctx;
    cl_device_id dev;
    cl_command_queue q;
    cl_program prog;
    cl_kernel k_layernorm, k_bias_act, k_attention, k_pool, k_mm_f32, k_mm_raw, k_embed;
    uint64_t weight_bytes; /* every weight byte held on the device */
    uint64_t dev_bytes, dev_peak; /* device bytes held now, and the most at once */
    /* The pass's profiled commands: event, segment (0 embeddings, 1 + layer,
     * LAYERS + 1 pooling) and whether it is a decode. */
    struct prof {
        cl_event ev;
        int seg, decode;
    } *prof;
    size_t n_prof, cap_prof;
    int seg; /* the segment commands enqueued now belong to */
} gpu;

static void dev_add(gpu *g, uint64_t bytes)
{
    g->dev_bytes += bytes;
    if (g->dev_bytes > g->dev_peak) g->dev_peak = g->dev_bytes;
}

/* A weight held by a library object (bytes as the library reports them). */
static void weight_add(gpu *g, uint64_t bytes)
{
    g->weight_bytes += bytes;
    dev_add(g, bytes);
}

static void release(gpu *g, cl_mem m)
{
    size_t bytes = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    g->dev_bytes -= bytes;
    clReleaseMemObject(m);
}

static void prof_add(gpu *g, cl_event ev, int decode)
{
    if (g->n_prof == g->cap_prof) {
        g->cap_prof = g->cap_prof ? 2 * g->cap_prof : 256;
        g->prof = realloc(g->prof, g->cap_prof * sizeof *g->prof);
        if (!g->prof) {
            fprintf(stderr, "ecf8-embed: out of memory\n");
            exit(1);
        }
    }
    g->prof[g->n_prof++] = (struct prof){ev, g->seg, decode};
}

static cl_mem upload(gpu *g, const void *data, size_t bytes, int is_weight)
{
    cl_int err;
    cl_mem m = clCreateBuffer(g->ctx, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)data, &err);
    check(err, "clCreateBuffer");
    if (is_weight) g->weight_bytes += bytes;
    dev_add(g, bytes);
    return m;
}

static cl_kernel kernel(gpu *g, const char *name)
{
    cl_int err;
    cl_kernel k = clCreateKernel(g->prog, name, &err);
    check(err, name);
    return k;
}

static void gpu_open(gpu *g)
{
    check(ecf8_cl_open_default(&g->ctx, &g->dev, &g->q), "no OpenCL device");
    const char *src = EMBED_CL_SOURCE;
    size_t len = sizeof EMBED_CL_SOURCE - 1;
    cl_int err;
    g->prog = clCreateProgramWithSource(g->ctx, 1, &src, &len, &err);
    check(err, "clCreateProgramWithSource");
    if ((err = clBuildProgram(g->prog, 1, &g->dev, "-cl-std=CL1.2", NULL, NULL)) != CL_SUCCESS) {
        char log[8192] = "";
        clGetProgramBuildInfo(g->prog, g->dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        die("building embed.cl: %s\n%s", ecf8_status_string(err), log);
    }
    g->k_layernorm = kernel(g, "add_layernorm");
    g->k_bias_act = kernel(g, "bias_act");
    g->k_attention = kernel(g, "attention");
    g->k_pool = kernel(g, "mean_pool");
    g->k_mm_f32 = kernel(g, "matmul_f32");
    g->k_mm_raw = kernel(g, "matmul_raw");
    g->k_embed = kernel(g, "embed_rows");
}

/* Sets the kernel's arguments from (size, pointer) pairs and enqueues it
 * over a 1-D or 2-D range. */
static void launch(gpu *g, cl_kernel k, size_t g0, size_t g1, unsigned nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    for (unsigned i = 0; i < nargs; i++) {
        size_t size = va_arg(ap, size_t);
        const void *value = va_arg(ap, const void *);
        check(clSetKernelArg(k, i, size, value), "clSetKernelArg");
    }
    va_end(ap);
    size_t global[2] = {g0, g1};
    cl_event ev;
    check(clEnqueueNDRangeKernel(g->q, k, g1 ? 2 : 1, NULL, global, NULL, 0, NULL, &ev),
          "clEnqueueNDRangeKernel");
    prof_add(g, ev, 0);
}
#define ARG(v) sizeof(v), (const void *)&(v)

/* ---- weights ----------------------------------------------------------------------- */
/* Tensor `name`, which must have `ndim` dims equal to shape[] (0 = any). */
static void find_tensor(model_file *f, const char *name, unsigned ndim, const uint64_t *shape,
                        ecf8_tensor_info *t)
{
    int rc = model_file_find(f, name, t);
    if (rc == ECF8_ERR_NOT_FOUND) die("%s: no tensor '%s'", g_model_path, name);
    if (rc != ECF8_OK) die("%s: %s", g_model_path, model_file_error(f));
    int ok = t->ndim == ndim;
    for (unsigned d = 0; ok && d < ndim; d++) ok = !shape[d] || t->shape[d] == shape[d];
    if (!ok) {
        char got[128] = "", want[128] = "";
        for (unsigned d = 0; d < t->ndim && d < 4; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? ", " : "",
                     (unsigned long long)t->shape[d]);
        for (unsigned d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%llu", d ? ", " : "",
                     (unsigned long long)shape[d]);
        die("%s: tensor '%s' has shape [%s], not MiniLM's [%s]", g_model_path, name, got, want);
    }
}

/* A float tensor of the file widened to F32 (host memory, malloc'd). */
static float *read_f32(model_file *f, const ecf8_tensor_info *t)
{
    uint8_t *raw = xmalloc((size_t)t->source_bytes);
    check(model_file_read(f, t, raw, (size_t)t->source_bytes), t->name);
    size_t n = (size_t)t->n_elements;
    float *out = xmalloc(n * sizeof *out);
    if (!strcmp(t->dtype_name, "F32")) {
        memcpy(out, raw, n * 4);
    } else if (t->dtype == ECF8_DTYPE_BF16 || t->dtype == ECF8_DTYPE_F16) {
        check(ecf8_elements_to_float(t->dtype, raw, n, out), t->name);
    } else {
        die("%s: tensor '%s' is %s: want F32, BF16 or F16", g_model_path, t->name, t->dtype_name);
    }
    free(raw);
    return out;
}

/* A 1-D vector [n] as an F32 device buffer. */
static cl_mem load_vector(gpu *g, model_file *f, const char *name, uint64_t n)
{
    ecf8_tensor_info t;
    find_tensor(f, name, 1, &n, &t);
    float *v = read_f32(f, &t);
    cl_mem m = upload(g, v, (size_t)n * sizeof *v, 1);
    free(v);
    return m;
}

typedef struct linear {
    uint32_t n, k;
    cl_mem bias;
    ecf8_cl_matmul *mm;   /* fused / uncompressed engine */
    cl_mem w32;           /* F32 weight for matmul_f32 */
    ecf8_cl_tensor *coded; /* decoded mode: the coded weight ... */
    cl_mem scale;         /* ... its F32 block scales (FP8) */
    uint32_t wdt;         /* ... and its dtype for matmul_raw */
} linear;

/* Scratch for the word-embedding bands of one gather round (decoded and
 * fused modes): as many whole bands as fit, at least one. */
#define EMBED_SCRATCH_BYTES (256u << 10)

typedef struct model {
    mode mode;
    uint64_t vocab;
    /* The word-embedding table on the device: raw as in the file
     * (uncompressed), or kept coded (decoded, fused) with a scratch of
     * word_slots bands of word_band_rows rows that a forward pass decodes
     * the tokens' bands into, a round of word_slots bands at a time. */
    cl_mem word_raw;
    ecf8_cl_tensor *word_coded;
    cl_mem word_scratch;
    uint64_t word_band_rows, word_slots;
    uint32_t word_dt;         /* embed_rows' wdt: 0 F32, 1 BF16, 2 F16 */
    cl_mem pos, type;         /* F32 [MAX_POS, D], [2, D] */
    cl_mem emb_g, emb_b;
    struct layer {
        linear q, k, v, o, i, out;
        cl_mem ln1_g, ln1_b, ln2_g, ln2_b;
    } layer[LAYERS];
    cl_mem scratch; /* decoded mode: one Linear weight at a time */
    size_t scratch_bytes;
} model;

static void load_linear(gpu *g, model *md, model_file *f, const char *prefix, uint32_t n,
                        uint32_t k, linear *L)
{
    char name[256];
    const uint64_t shape[2] = {n, k}, bshape = n;
    ecf8_tensor_info w, s;
    L->n = n, L->k = k;
    snprintf(name, sizeof name, "%s.bias", prefix);
    L->bias = load_vector(g, f, name, bshape);
    snprintf(name, sizeof name, "%s.weight", prefix);
    find_tensor(f, name, 2, shape, &w);
    int fp8 = w.dtype == ECF8_DTYPE_F8_E4M3 || w.dtype == ECF8_DTYPE_F8_E5M2;
    if (!fp8 && w.dtype != ECF8_DTYPE_BF16) {
        if (md->mode != MODE_UNCOMPRESSED)
            die("%s: tensor '%s' is %s: --weights %s needs F8_E4M3, F8_E5M2 or BF16 Linear "
                "weights (use --weights uncompressed)",
                g_model_path, name, w.dtype_name, MODE_NAMES[md->mode]);
        float *v = read_f32(f, &w);
        L->w32 = upload(g, v, (size_t)n * k * sizeof *v, 1);
        free(v);
        return;
    }
    if (fp8) {
        const uint64_t sshape[2] = {(n + 127) / 128, (k + 127) / 128};
        check(ecf8_scale_name(w.name, 0, name, sizeof name), w.name); /* "<prefix>.weight_scale_inv" */
        find_tensor(f, name, 2, sshape, &s);
        if (strcmp(s.dtype_name, "F32"))
            die("%s: tensor '%s' is %s, not F32", g_model_path, name, s.dtype_name);
    }
    if (md->mode != MODE_DECODED) {
        ecf8_cl_engine e = md->mode == MODE_FUSED ? ECF8_CL_ENGINE_FUSED : ECF8_CL_ENGINE_UNCOMPRESSED;
        check(ecf8_cl_matmul_create(g->ctx, g->dev, g->q, &w, fp8 ? &s : NULL, ECF8_CL_ENGINE_BIT(e),
                                    &L->mm),
              w.name);
        ecf8_cl_matmul_info info;
        check(ecf8_cl_matmul_get_info(L->mm, &info), w.name);
        weight_add(g, e == ECF8_CL_ENGINE_FUSED ? info.fused_bytes : info.uncompressed_bytes);
        return;
    }
    /* decoded: the coded tensor on the device, decoded once now into host
     * memory to check its checksum (the engines check theirs at create). */
    check(ecf8_cl_tensor_create(g->ctx, g->dev, g->q, &w, &L->coded), w.name);
    size_t bytes = ecf8_cl_tensor_decoded_bytes(L->coded);
    void *tmp = xmalloc(bytes);
    check(ecf8_cl_decode_to_host(L->coded, g->q, tmp, bytes), w.name);
    free(tmp);
    weight_add(g, ecf8_cl_tensor_device_bytes(L->coded));
    if (bytes > md->scratch_bytes) md->scratch_bytes = bytes;
    L->wdt = (uint32_t)w.dtype;
    if (fp8) {
        float *sv = xmalloc((size_t)s.source_bytes);
        check(model_file_read(f, &s, sv, (size_t)s.source_bytes), s.name);
        L->scale = upload(g, sv, (size_t)s.source_bytes, 1);
        free(sv);
    } else {
        L->scale = upload(g, NULL, 4, 1); /* unused by BF16 */
    }
}

/* The word-embedding table t [vocab, D] onto the device (see model). */
static void load_word_table(gpu *g, model *md, model_file *f, const ecf8_tensor_info *t)
{
    if (!strcmp(t->dtype_name, "F32")) md->word_dt = 0;
    else if (t->dtype == ECF8_DTYPE_BF16) md->word_dt = 1;
    else if (t->dtype == ECF8_DTYPE_F16) md->word_dt = 2;
    else die("%s: tensor '%s' is %s: want F32, BF16 or F16", g_model_path, t->name, t->dtype_name);
    size_t bytes = (size_t)t->source_bytes;
    if (md->mode == MODE_UNCOMPRESSED) {
        void *raw = xmalloc(bytes);
        check(model_file_read(f, t, raw, bytes), t->name);
        md->word_raw = upload(g, raw, bytes, 1);
        free(raw);
        return;
    }
    /* decoded, fused: coded on the device (a stored tensor: raw), decoded
     * once now into host memory to check its checksum. */
    check(ecf8_cl_tensor_create(g->ctx, g->dev, g->q, t, &md->word_coded), t->name);
    void *tmp = xmalloc(bytes);
    check(ecf8_cl_decode_to_host(md->word_coded, g->q, tmp, bytes), t->name);
    free(tmp);
    weight_add(g, ecf8_cl_tensor_device_bytes(md->word_coded));
    uint64_t b0, row_bytes = bytes / t->shape[0];
    check(ecf8_cl_tensor_row_bands(md->word_coded, 0, 1, &b0, &md->word_band_rows), t->name);
    uint64_t band_bytes = md->word_band_rows * row_bytes;
    md->word_slots = EMBED_SCRATCH_BYTES / band_bytes ? EMBED_SCRATCH_BYTES / band_bytes : 1;
    md->word_scratch = upload(g, NULL, (size_t)(md->word_slots * band_bytes), 1);
}

static void model_load(gpu *g, model *md, model_file *f, const wp_vocab *vocab)
{
    ecf8_tensor_info t;
    uint64_t shape[2] = {wp_vocab_size(vocab), D};
    find_tensor(f, "embeddings.word_embeddings.weight", 2, shape, &t);
    md->vocab = shape[0];
    load_word_table(g, md, f, &t);
    shape[0] = MAX_POS;
    find_tensor(f, "embeddings.position_embeddings.weight", 2, shape, &t);
    float *v = read_f32(f, &t);
    md->pos = upload(g, v, MAX_POS * D * sizeof *v, 1);
    free(v);
    shape[0] = 2;
    find_tensor(f, "embeddings.token_type_embeddings.weight", 2, shape, &t);
    v = read_f32(f, &t);
    md->type = upload(g, v, 2 * D * sizeof *v, 1);
    free(v);
    md->emb_g = load_vector(g, f, "embeddings.LayerNorm.weight", D);
    md->emb_b = load_vector(g, f, "embeddings.LayerNorm.bias", D);
    for (int l = 0; l < LAYERS; l++) {
        struct layer *L = &md->layer[l];
        char p[128], name[192];
#define LIN(field, sub, n, k)                                                     \
    snprintf(p, sizeof p, "encoder.layer.%d.%s", l, sub);                         \
    load_linear(g, md, f, p, n, k, &L->field)
        LIN(q, "attention.self.query", D, D);
        LIN(k, "attention.self.key", D, D);
        LIN(v, "attention.self.value", D, D);
        LIN(o, "attention.output.dense", D, D);
        LIN(i, "intermediate.dense", FF, D);
        LIN(out, "output.dense", D, FF);
#undef LIN
#define VEC(field, sub)                                                           \
    snprintf(name, sizeof name, "encoder.layer.%d.%s", l, sub);                   \
    L->field = load_vector(g, f, name, D)
        VEC(ln1_g, "attention.output.LayerNorm.weight");
        VEC(ln1_b, "attention.output.LayerNorm.bias");
        VEC(ln2_g, "output.LayerNorm.weight");
        VEC(ln2_b, "output.LayerNorm.bias");
#undef VEC
    }
    if (md->scratch_bytes) md->scratch = upload(g, NULL, md->scratch_bytes, 1);
}

static void linear_free(linear *L)
{
    clReleaseMemObject(L->bias);
    if (L->mm) ecf8_cl_matmul_free(L->mm);
    if (L->w32) clReleaseMemObject(L->w32);
    if (L->coded) ecf8_cl_tensor_free(L->coded);
    if (L->scale) clReleaseMemObject(L->scale);
}

static void model_free(model *md)
{
    if (md->word_raw) clReleaseMemObject(md->word_raw);
    if (md->word_coded) ecf8_cl_tensor_free(md->word_coded);
    if (md->word_scratch) clReleaseMemObject(md->word_scratch);
    clReleaseMemObject(md->pos);
    clReleaseMemObject(md->type);
    clReleaseMemObject(md->emb_g);
    clReleaseMemObject(md->emb_b);
    for (int l = 0; l < LAYERS; l++) {
        struct layer *L = &md->layer[l];
        linear *lins[] = {&L->q, &L->k, &L->v, &L->o, &L->i, &L->out};
        for (int j = 0; j < 6; j++) linear_free(lins[j]);
        cl_mem vecs[] = {L->ln1_g, L->ln1_b, L->ln2_g, L->ln2_b};
        for (int j = 0; j < 4; j++) clReleaseMemObject(vecs[j]);
    }
    if (md->scratch) clReleaseMemObject(md->scratch);
}

/* ---- the forward pass ---------------------------------------------------------- */
/* y[m, n] = x[m, k] W^T + bias, GELU'd when gelu. */
static void linear_forward(gpu *g, model *md, linear *L, cl_mem x, cl_mem y, uint32_t m, uint32_t gelu)
{
    if (L->mm) {
        ecf8_cl_engine e = md->mode == MODE_FUSED ? ECF8_CL_ENGINE_FUSED : ECF8_CL_ENGINE_UNCOMPRESSED;
        cl_event ev;
        check(ecf8_cl_enqueue_matmul(L->mm, e, g->q, m, x, 0, 0, y, 0, 0, NULL, &ev), "matmul");
        prof_add(g, ev, 0);
    } else if (L->w32) {
        launch(g, g->k_mm_f32, L->n, m, 5, ARG(x), ARG(L->w32), ARG(y), ARG(L->n), ARG(L->k));
    } else {
        cl_event ev;
        check(ecf8_cl_enqueue_decode(L->coded, g->q, md->scratch, 0, 0, NULL, &ev), "decode");
        prof_add(g, ev, 1);
        launch(g, g->k_mm_raw, L->n, m, 7, ARG(x), ARG(md->scratch), ARG(L->scale), ARG(y),
               ARG(L->n), ARG(L->k), ARG(L->wdt));
    }
    launch(g, g->k_bias_act, L->n, m, 4, ARG(y), ARG(L->bias), ARG(L->n), ARG(gelu));
}

static void layernorm(gpu *g, cl_mem a, cl_mem bias, cl_mem res, uint32_t flags, cl_mem gamma,
                      cl_mem beta, cl_mem out, uint32_t t)
{
    const uint32_t d = D;
    const float eps = LN_EPS;
    launch(g, g->k_layernorm, t, 0, 9, ARG(a), ARG(bias), ARG(res), ARG(flags), ARG(gamma),
           ARG(beta), ARG(out), ARG(d), ARG(eps));
}

/* A token's place in the gather: its word row's band (first row, rows),
 * its row in the batch and its position. */
typedef struct tok_ref {
    uint64_t b0, bn, id;
    uint32_t t, p;
} tok_ref;

static int tok_ref_cmp(const void *a, const void *b)
{
    const tok_ref *x = a, *y = b;
    return x->b0 < y->b0 ? -1 : x->b0 > y->b0 ? 1 : (x->t > y->t) - (x->t < y->t);
}

/* X[T, D] = the embedding sums of the batch's tokens on the device.  With
 * the table coded: the distinct bands holding the tokens' rows, in order,
 * word_slots at a time: each round decodes its bands (runs of adjacent
 * bands in one call) into the scratch, then embed_rows reads its tokens'
 * rows from there (the queue is in order: a round's decodes wait for the
 * previous round's reads). */
static void embed_tokens(gpu *g, model *md, int *const *ids, const int *lens, size_t n_seq,
                         size_t T, cl_mem X, cl_mem *bufs)
{
    tok_ref *r = xmalloc(T * sizeof *r);
    size_t t = 0;
    for (size_t s = 0; s < n_seq; s++)
        for (int p = 0; p < lens[s]; p++, t++) {
            r[t].id = (uint64_t)ids[s][p], r[t].t = (uint32_t)t, r[t].p = (uint32_t)p;
            r[t].b0 = r[t].id, r[t].bn = 1;
            if (md->word_coded)
                check(ecf8_cl_tensor_row_bands(md->word_coded, r[t].id, 1, &r[t].b0, &r[t].bn),
                      "word embedding rows");
        }
    if (md->word_coded) qsort(r, T, sizeof *r, tok_ref_cmp);
    cl_ulong *row = xmalloc(T * sizeof *row);
    cl_uint *tok = xmalloc(T * sizeof *tok), *pos = xmalloc(T * sizeof *pos);
    /* Slot of each distinct band, counted over the whole batch. */
    size_t *slot = xmalloc(T * sizeof *slot), n_bands = 0;
    for (size_t i = 0; i < T; i++) {
        if (i == 0 || r[i].b0 != r[i - 1].b0) n_bands++;
        slot[i] = n_bands - 1;
        uint64_t in_scratch = md->word_coded
                                  ? (slot[i] % md->word_slots) * md->word_band_rows + (r[i].id - r[i].b0)
                                  : r[i].id;
        row[i] = in_scratch * D, tok[i] = r[i].t, pos[i] = r[i].p;
    }
    bufs[0] = upload(g, row, T * sizeof *row, 0);
    bufs[1] = upload(g, tok, T * sizeof *tok, 0);
    bufs[2] = upload(g, pos, T * sizeof *pos, 0);
    const uint32_t d = D;
    size_t row_bytes = (size_t)D * (md->word_dt == 0 ? 4 : 2);
    cl_mem w = md->word_coded ? md->word_scratch : md->word_raw;
    for (size_t first = 0; first < T;) {
        size_t end = first;
        if (md->word_coded) {
            /* This round: the tokens of bands slot[first] .. + word_slots - 1. */
            size_t round_end = (slot[first] / md->word_slots + 1) * md->word_slots;
            while (end < T && slot[end] < round_end) end++;
            for (size_t i = first; i < end;) {
                /* A run of adjacent bands in adjacent slots: one decode. */
                size_t j = i;
                uint64_t run_end = r[i].b0 + r[i].bn;
                while (j + 1 < end && (r[j + 1].b0 == r[j].b0 || r[j + 1].b0 == run_end)) {
                    j++;
                    run_end = r[j].b0 + r[j].bn;
                }
                size_t at = (size_t)((slot[i] % md->word_slots) * md->word_band_rows) * row_bytes;
                cl_event ev;
                check(ecf8_cl_enqueue_decode_rows(md->word_coded, g->q, r[i].b0, run_end - r[i].b0,
                                                  md->word_scratch, at, 0, NULL, &ev),
                      "word embedding rows");
                prof_add(g, ev, 1);
                i = j + 1;
            }
        } else {
            end = T;
        }
        const uint32_t first32 = (uint32_t)first;
        launch(g, g->k_embed, D, end - first, 10, ARG(w), ARG(md->word_dt), ARG(bufs[0]),
               ARG(bufs[1]), ARG(bufs[2]), ARG(first32), ARG(md->type), ARG(md->pos), ARG(X),
               ARG(d));
        first = end;
    }
    free(r);
    free(row);
    free(tok);
    free(pos);
    free(slot);
}

/* Embeddings of n_seq token sequences (ids[s] of lens[s] tokens) into
 * out[n_seq, D], L2-normalised.  Returns the summed decode time (ms) of
 * the decodes (word-table bands, decoded mode's Linears), 0 if none; adds
 * each segment's device time (ms, see gpu.prof) to seg_ms[LAYERS + 2]
 * unless NULL. */
static double forward(gpu *g, model *md, int *const *ids, const int *lens, size_t n_seq, float *out,
                      double *seg_ms)
{
    size_t T = 0;
    for (size_t s = 0; s < n_seq; s++) T += (size_t)lens[s];
    cl_int *seq = xmalloc(T * 2 * sizeof *seq), *starts = xmalloc(n_seq * sizeof *starts),
           *counts = xmalloc(n_seq * sizeof *counts);
    size_t t = 0;
    for (size_t s = 0; s < n_seq; s++) {
        starts[s] = (cl_int)t, counts[s] = lens[s];
        for (int p = 0; p < lens[s]; p++, t++) seq[2 * t] = starts[s], seq[2 * t + 1] = lens[s];
    }
    cl_mem X = upload(g, NULL, T * D * 4, 0), SEQ = upload(g, seq, T * 8, 0),
           ST = upload(g, starts, n_seq * 4, 0), CN = upload(g, counts, n_seq * 4, 0);
    cl_mem Hb = upload(g, NULL, T * D * 4, 0), H2 = upload(g, NULL, T * D * 4, 0),
           Q = upload(g, NULL, T * D * 4, 0), K = upload(g, NULL, T * D * 4, 0),
           V = upload(g, NULL, T * D * 4, 0), A = upload(g, NULL, T * D * 4, 0),
           I = upload(g, NULL, T * FF * 4, 0), P = upload(g, NULL, n_seq * D * 4, 0);
    const uint32_t tt = (uint32_t)T, d = D, hd = HD, no = 0;
    const float scale = 1.0f / sqrtf((float)HD);
    g->n_prof = 0;
    g->seg = 0;
    cl_mem EMB[3];
    embed_tokens(g, md, ids, lens, n_seq, T, X, EMB);

    layernorm(g, X, md->emb_g, X, 0, md->emb_g, md->emb_b, Hb, tt);
    for (int l = 0; l < LAYERS; l++) {
        struct layer *L = &md->layer[l];
        g->seg = 1 + l;
        linear_forward(g, md, &L->q, Hb, Q, tt, no);
        linear_forward(g, md, &L->k, Hb, K, tt, no);
        linear_forward(g, md, &L->v, Hb, V, tt, no);
        launch(g, g->k_attention, T, H, 8, ARG(Q), ARG(K), ARG(V), ARG(SEQ), ARG(A), ARG(d),
               ARG(hd), ARG(scale));
        linear_forward(g, md, &L->o, A, Q, tt, no);
        layernorm(g, Q, L->o.bias, Hb, 2, L->ln1_g, L->ln1_b, H2, tt); /* bias added already */
        linear_forward(g, md, &L->i, H2, I, tt, 1);
        linear_forward(g, md, &L->out, I, Q, tt, no);
        layernorm(g, Q, L->out.bias, H2, 2, L->ln2_g, L->ln2_b, Hb, tt);
    }
    g->seg = LAYERS + 1;
    launch(g, g->k_pool, D, n_seq, 5, ARG(Hb), ARG(ST), ARG(CN), ARG(P), ARG(d));
    check(clEnqueueReadBuffer(g->q, P, CL_TRUE, 0, n_seq * D * 4, out, 0, NULL, NULL),
          "clEnqueueReadBuffer");
    double decode_ms = 0;
    for (size_t i = 0; i < g->n_prof; i++) {
        cl_ulong t0 = 0, t1 = 0;
        clGetEventProfilingInfo(g->prof[i].ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(g->prof[i].ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        double dt = (double)(t1 - t0) * 1e-6;
        if (g->prof[i].decode) decode_ms += dt;
        if (seg_ms) seg_ms[g->prof[i].seg] += dt;
        clReleaseEvent(g->prof[i].ev);
    }
    g->n_prof = 0;
    if (md->word_coded) check(ecf8_cl_tensor_check(md->word_coded, g->q), "word embedding rows");
    if (md->mode == MODE_DECODED)
        for (int l = 0; l < LAYERS; l++) {
            struct layer *L = &md->layer[l];
            linear *lins[] = {&L->q, &L->k, &L->v, &L->o, &L->i, &L->out};
            for (int j = 0; j < 6; j++) check(ecf8_cl_tensor_check(lins[j]->coded, g->q), "decode");
        }
    cl_mem bufs[] = {X, SEQ, ST, CN, Hb, H2, Q, K, V, A, I, P, EMB[0], EMB[1], EMB[2]};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) release(g, bufs[i]);
    free(seq);
    free(starts);
    free(counts);
    for (size_t s = 0; s < n_seq; s++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)out[s * D + i] * out[s * D + i];
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int i = 0; i < D; i++) out[s * D + i] *= inv;
    }
    return decode_ms;
}

/* ---- output ------------------------------------------------------------------- */
static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void usage(void)
{
    printf("usage: ecf8-embed MODEL VOCAB --text TEXT [--text TEXT ...]\n"
                "                  [--weights fused|decoded|uncompressed] [--json] [--repeat N]\n"
                "  MODEL  all-MiniLM-L6-v2 as .ecf8 or .safetensors; VOCAB its vocab.txt\n");
}

int main(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    const char **texts = xmalloc((size_t)argc * sizeof *texts);
    size_t n_texts = 0, n_paths = 0;
    int json = 0;
    long repeat = 0;
    mode md_mode = MODE_FUSED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--text") || !strcmp(a, "--weights") || !strcmp(a, "--repeat")) {
            if (i + 1 >= argc) die("%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--text")) {
                texts[n_texts++] = v;
            } else if (!strcmp(a, "--repeat")) {
                char *end;
                repeat = strtol(v, &end, 10);
                if (*end || repeat < 0 || repeat > 1000000) die("--repeat: not a count: %s", v);
            } else {
                int m = 0;
                while (m < 3 && strcmp(v, MODE_NAMES[m])) m++;
                if (m == 3) die("--weights: %s: want fused, decoded or uncompressed", v);
                md_mode = (mode)m;
            }
        } else if (a[0] == '-' && a[1]) {
            die("unknown option %s (--help for usage)", a);
        } else if (n_paths < 2) {
            paths[n_paths++] = a;
        } else {
            die("unexpected argument %s (one MODEL and one VOCAB)", a);
        }
    }
    if (n_paths < 2) die("MODEL and VOCAB are required (--help for usage)");
    if (!n_texts) die("no --text given (--help for usage)");
    g_model_path = paths[0];

    char err[512];
    wp_vocab *vocab = wp_vocab_load(paths[1], err, sizeof err);
    if (!vocab) die("%s: %s", paths[1], err);
    int **ids = xmalloc(n_texts * sizeof *ids), *lens = xmalloc(n_texts * sizeof *lens);
    int warned = 0;
    for (size_t s = 0; s < n_texts; s++) {
        int full;
        ids[s] = xmalloc(MAX_TOKENS * sizeof **ids);
        lens[s] = wp_tokenize(vocab, texts[s], ids[s], MAX_TOKENS, &full);
        if (lens[s] < 0) die("--text %zu: not valid UTF-8", s + 1);
        if (full > lens[s] && !warned++)
            fprintf(stderr, "ecf8-embed: --text %zu: %d tokens, truncated to %d\n", s + 1, full,
                    MAX_TOKENS);
    }

    model_file *f = model_file_open(paths[0], err, sizeof err);
    if (!f) die("%s: %s", paths[0], err);
    gpu g = {0};
    gpu_open(&g);
    model md = {.mode = md_mode};
    model_load(&g, &md, f, vocab);

    /* With --repeat, a first pass builds the programs and warms the caches,
     * then `repeat` passes are timed. */
    float *emb = xmalloc(n_texts * D * sizeof *emb);
    if (repeat) forward(&g, &md, ids, lens, n_texts, emb, NULL);
    long passes = repeat ? repeat : 1;
    double decode_ms = 0, seg_ms[LAYERS + 2] = {0}, t0 = now_ms();
    for (long r = 0; r < passes; r++) decode_ms += forward(&g, &md, ids, lens, n_texts, emb, seg_ms);
    double ms = (now_ms() - t0) / (double)passes;
    decode_ms /= (double)passes;

    char dev_name[256] = "?";
    clGetDeviceInfo(g.dev, CL_DEVICE_NAME, sizeof dev_name, dev_name, NULL);
    if (json) {
        printf("{\"embeddings\": [");
        for (size_t s = 0; s < n_texts; s++) {
            printf("%s[", s ? ", " : "");
            for (int i = 0; i < D; i++) printf("%s%.9g", i ? ", " : "", emb[s * D + i]);
            printf("]");
        }
        printf("], \"tokens\": [");
        for (size_t s = 0; s < n_texts; s++) {
            printf("%s[", s ? ", " : "");
            for (int i = 0; i < lens[s]; i++) printf("%s%d", i ? ", " : "", ids[s][i]);
            printf("]");
        }
        printf("], \"weights\": \"%s\", \"device\": ", MODE_NAMES[md_mode]);
        json_string(dev_name);
        printf(", \"device_weight_bytes\": %llu, \"peak_device_bytes\": %llu, \"ms\": %.3f, "
               "\"decode_ms\": %.3f, \"passes\": %ld, \"layer_ms\": [",
               (unsigned long long)g.weight_bytes, (unsigned long long)g.dev_peak, ms, decode_ms,
               passes);
        for (int i = 0; i < LAYERS + 2; i++)
            printf("%s%.3f", i ? ", " : "", seg_ms[i] / (double)passes);
        printf("]}\n");
    } else {
        for (size_t s = 0; s < n_texts; s++)
            for (int i = 0; i < D; i++) printf("%.9g%c", emb[s * D + i], i == D - 1 ? '\n' : ' ');
    }
    if (fflush(stdout) || ferror(stdout)) die("writing the output failed");

    model_free(&md);
    cl_kernel ks[] = {g.k_layernorm, g.k_bias_act, g.k_attention, g.k_pool, g.k_mm_f32, g.k_mm_raw,
                      g.k_embed};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) clReleaseKernel(ks[i]);
    clReleaseProgram(g.prog);
    free(g.prof);
    clReleaseCommandQueue(g.q);
    ecf8_cl_release_context(g.ctx);
    clReleaseContext(g.ctx);
    model_file_close(f);
    wp_vocab_free(vocab);
    for (size_t s = 0; s < n_texts; s++) free(ids[s]);
    free(ids);
    free(lens);
    free(texts);
    free(emb);
    return 0;
}
