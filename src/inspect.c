/* inspect.c - per-tensor "to compress or not?" reports for `ecf8 info`. */
#include "internal.h"
#include "stream.h"
#include "io.h"
#ifndef ECF8_DECODE_ONLY
#include "safetensors.h"
#endif

#include <stdlib.h>
#include <unistd.h>

static int report_add(ecf8_report *r, ecf8_tensor_report **out)
{
    /* Capacity doubles: the array holds n_tensors, and a power of two
     * above it is what was allocated. */
    size_t n = r->n_tensors;
    if (n == 0 || (n & (n - 1)) == 0) {
        ecf8_tensor_report *t = n > SIZE_MAX / 2 / sizeof *t ? NULL
                                                            : realloc(r->tensors, (n ? 2 * n : 1) * sizeof *t);
        if (!t) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for the report of %zu tensors", n);
        r->tensors = t;
    }
    ecf8_tensor_report *t = r->tensors;
    *out = &t[r->n_tensors++];
    memset(*out, 0, sizeof **out);
    return ECF8_OK;
}

/* Bytes of tensors analysed so far, reported through options->progress
 * from the calling thread: first 0, then after each tensor, ending at the
 * total when every tensor is done. */
typedef struct inspect_progress {
    const ecf8_compress_options *options;
    uint64_t done, total;
} inspect_progress;

static void progress_start(inspect_progress *p, const ecf8_compress_options *o, uint64_t total)
{
    p->options = o && o->progress ? o : NULL;
    p->done = 0;
    p->total = total;
    if (p->options) p->options->progress(p->options->progress_user, 0, total);
}

static void progress_add(inspect_progress *p, uint64_t bytes)
{
    p->done += bytes;
    if (p->options) p->options->progress(p->options->progress_user, p->done, p->total);
}

static int copy_names(ecf8_tensor_report *t, const char *name, const char *dtype_name)
{
    t->name = strdup(name);
    t->dtype_name = strdup(dtype_name);
    return t->name && t->dtype_name ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
}

#ifdef ECF8_DECODE_ONLY
/* A decode-only library has neither the safetensors reader nor the
 * analysis: it describes containers only. */
static int inspect_safetensors(const char *path, const ecf8_compress_options *o, ecf8_report *r)
{
    (void)path, (void)o, (void)r;
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "not an .ecf8 container, and this libecf8 is "
                     "decode-only (built with ECF8_DECODE_ONLY): it reads no safetensors");
}
#else
/* Fills the analysis fields; split/compressed_bytes as auto would choose. */
static int analyze_into(ecf8_tensor_report *t, const void *data, uint64_t rows, uint64_t cols,
                        const ecf8_compress_options *options)
{
    t->split = ECF8_SPLIT_STORED;
    t->compressed_bytes = t->entropy_bound_bytes = t->source_bytes;
    if (t->dtype == ECF8_DTYPE_OTHER || t->n_elements == 0) return ECF8_OK;
    int st = ecf8_tensor_analyze(t->dtype, data, rows, cols, options, &t->analysis);
    if (st) return st;
    t->split = t->analysis.best_split;
    t->compressed_bytes = t->analysis.payload_bytes[t->split];
    for (int s = ECF8_SPLIT_EXPONENT; s <= ECF8_SPLIT_BYTE; s++)
        if (ecf8_split_layout_row(t->dtype, (ecf8_split)s, NULL) >= 0 && /* U8: no exponent split */
            t->analysis.entropy_bound_bytes[s] < t->entropy_bound_bytes)
            t->entropy_bound_bytes = t->analysis.entropy_bound_bytes[s];
    return ECF8_OK;
}

static int inspect_safetensors(const char *path, const ecf8_compress_options *o, ecf8_report *r)
{
    st_file sf;
    int st = ecf8_st_open(path, &sf);
    if (st) return st;
    r->file_bytes += sf.size;
    r->source_bytes += sf.size;
    inspect_progress progress;
    uint64_t total = 0;
    for (size_t i = 0; i < sf.n_tensors; i++) total += sf.tensors[i].bytes;
    progress_start(&progress, o, total);
    for (size_t i = 0; i < sf.n_tensors && !st; i++) {
        const st_tensor *s = &sf.tensors[i];
        ecf8_tensor_report *t = NULL;
        if ((st = report_add(r, &t))) break;
        if ((st = copy_names(t, s->name, s->dtype_name))) break;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->n_elements = s->n_elements;
        t->source_bytes = s->bytes;
        uint64_t rows, cols;
        ecf8_st_tensor_view(s, &rows, &cols);
        const uint8_t *data;
        st = ecf8_st_read_tensor(&sf, s, &data);
        if (!st) st = analyze_into(t, data, rows, cols, o);
        if (st) st = ecf8_fail_context(st, "tensor '%s'", s->name);
        else progress_add(&progress, s->bytes);
    }
    if (!st) st = ecf8_st_check_unchanged(&sf);
    ecf8_st_close(&sf);
    return st;
}
#endif

static int inspect_container(const char *path, const ecf8_compress_options *o, ecf8_report *r)
{
    ecf8_file *f;
    int st = ecf8_file_open_index(path, &f); /* the index is all info reads */
    if (st) return st;
    r->is_container = 1;
    r->file_bytes = ecf8_file_size(f);
    for (size_t i = 0; i < ecf8_file_source_count(f); i++) r->source_bytes += ecf8_file_source_bytes(f, i);
    inspect_progress progress;
    uint64_t total = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info info;
        if (!ecf8_file_tensor(f, i, &info)) total += info.source_bytes;
    }
    progress_start(&progress, o, total);
    /* The index only: `ecf8 info` describes what the container holds, and
     * decoding (3 GiB from a 236-byte container of one constant tensor) is
     * for verify, which a user asks for knowingly. */
    for (size_t i = 0; i < ecf8_file_tensor_count(f) && !st; i++) {
        ecf8_tensor_info info;
        ecf8_tensor_report *t = NULL;
        ecf8_file_tensor(f, i, &info);
        if ((st = report_add(r, &t))) break;
        if ((st = copy_names(t, info.name, info.dtype_name))) break;
        t->dtype = info.dtype;
        t->ndim = info.ndim;
        memcpy(t->shape, info.shape, sizeof t->shape);
        t->n_elements = info.n_elements;
        t->source_bytes = info.source_bytes;
        t->split = info.split;
        t->compressed_bytes = info.payload_bytes;
        t->entropy_bound_bytes = 0; /* unknown without decoding */
        progress_add(&progress, info.source_bytes);
    }
    ecf8_file_close(f);
    return st;
}

int ecf8_inspect_path(const char *path, const ecf8_compress_options *options, ecf8_report *out)
{
    ecf8_clear_error();
    memset(out, 0, sizeof *out);
    /* The progress callback is read below: refuse a struct that lacks it. */
    if (options && options->struct_size && options->struct_size < ECF8_COMPRESS_OPTIONS_V1_BYTES)
        return ecf8_fail_context(ecf8_fail(ECF8_ERR_ARGUMENT, "options struct too small"), "%s", path);
    /* The kind from the first bytes ("ECF8" after the magic's first byte,
     * so that a container with a damaged magic is reported as one). */
    int fd;
    struct stat sb;
    uint8_t head[5];
    size_t got = 0;
    int st = ecf8_open_regular_file(path, &fd, &sb);
    if (!st) {
        st = ecf8_read_at(fd, head, sizeof head, 0, &got);
        close(fd);
    }
    if (!st) {
        bool container = got == sizeof head && !memcmp(head + 1, "ECF8", 4);
        st = container ? inspect_container(path, options, out)
                       : inspect_safetensors(path, options, out);
    }
    if (st) {
        ecf8_report_free(out);
        return ecf8_fail_context(st, "%s", path);
    }
    return ECF8_OK;
}

void ecf8_report_free(ecf8_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_tensors; i++) {
        free(r->tensors[i].name);
        free(r->tensors[i].dtype_name);
    }
    free(r->tensors);
    memset(r, 0, sizeof *r);
}
