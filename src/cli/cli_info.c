/* cli_info.c - `ecf8 info`: the per-tensor "to compress or not?" table. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_shape(FILE *f, const ecf8_tensor_report *t, bool json)
{
    fputc('[', f);
    for (unsigned d = 0; d < t->ndim; d++)
        fprintf(f, "%s%llu", d ? (json ? ", " : "x") : "", (unsigned long long)t->shape[d]);
    fputc(']', f);
}


/* "[2x3]" into out (a column of the table). */
static const char *shape_text(const ecf8_tensor_report *t, char *out, size_t size)
{
    FILE *mf = fmemopen(out, size, "w");
    if (!mf) return "?";
    print_shape(mf, t, false);
    fclose(mf);
    return out;
}

/* s escaped for the terminal (cli_put_escaped) into out, cut to at most
 * `max` bytes at a character boundary: a column of the table. */
static const char *text_cell(const char *s, char *out, size_t size, size_t max)
{
    FILE *mf = fmemopen(out, size, "w");
    if (!mf) return "?";
    cli_put_escaped(mf, s, false);
    fclose(mf); /* writes the terminating NUL, truncating to size - 1 */
    size_t n = strlen(out);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80) n--; /* not inside a sequence */
        out[n] = '\0';
    }
    return out;
}

static double bits_per_weight(uint64_t bytes, uint64_t n) { return n ? 8.0 * (double)bytes / (double)n : 0; }

/* Packed FP4: a U8 tensor holding two E2M1 weights per byte, known by its
 * name: compressed-tensors NVFP4 "...weight_packed", gpt-oss MXFP4
 * "..._blocks" (ecf8 info --help and the README give this rule).  Its bits
 * per logical weight are the coded bits over 2 x its bytes. */
static bool packed_fp4(const ecf8_tensor_report *t)
{
    static const char *const suffixes[] = {"weight_packed", "_blocks"};
    size_t n = strlen(t->name);
    if (t->dtype != ECF8_DTYPE_U8) return false;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(t->name + n - k, suffixes[i])) return true;
    }
    return false;
}

/* Tensors and bytes of one dtype, for the summary under the table. */
typedef struct dtype_sum {
    const char *name;
    size_t tensors;
    uint64_t source, stored;
} dtype_sum;

/* The per-dtype sums of r's tensors, in order of first appearance (n of
 * them); NULL when out of memory. */
static dtype_sum *sum_by_dtype(const ecf8_report *r, size_t *n)
{
    dtype_sum *d = calloc(r->n_tensors ? r->n_tensors : 1, sizeof *d);
    *n = 0;
    for (size_t i = 0; d && i < r->n_tensors; i++) {
        const ecf8_tensor_report *t = &r->tensors[i];
        size_t k = 0;
        while (k < *n && strcmp(d[k].name, t->dtype_name)) k++;
        if (k == *n) d[(*n)++].name = t->dtype_name;
        d[k].tensors++, d[k].source += t->source_bytes, d[k].stored += t->compressed_bytes;
    }
    return d;
}

static double percent(uint64_t part, uint64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

/* The start of tensor i's JSON object, up to its shape. */
static void json_tensor_start(size_t i, const ecf8_tensor_report *t)
{
    printf("%s\n  {\"name\": ", i ? "," : "");
    cli_json_string(stdout, t->name);
    printf(", \"dtype\": ");
    cli_json_string(stdout, t->dtype_name);
    printf(", \"shape\": ");
    print_shape(stdout, t, true);
}

/* A container's facts beyond the report (f: its index, NULL for a
 * .safetensors file): format version and source files. */
static void print_json_container(const ecf8_file *f)
{
    unsigned major, minor;
    ecf8_file_format_version(f, &major, &minor);
    printf(", \"format_version\": \"%u.%u\", \"sources\": [", major, minor);
    for (size_t i = 0; i < ecf8_file_source_count(f); i++) {
        printf("%s{\"path\": ", i ? ", " : "");
        const char *p = ecf8_file_source_path(f, i);
        cli_json_string(stdout, p ? p : "");
        printf(", \"bytes\": %llu}", (unsigned long long)ecf8_file_source_bytes(f, i));
    }
    printf("]");
}

/* Tensor i's stream: layout, longest code and chunking (null for a stored
 * tensor or a .safetensors file). */
static void print_json_stream(const ecf8_file *f, size_t i)
{
    ecf8_tensor_info t;
    if (!f || ecf8_file_tensor(f, i, &t) || t.split == ECF8_SPLIT_STORED) {
        printf(", \"stream\": null");
        return;
    }
    const ecf8_stream *s = &t.stream;
    printf(", \"stream\": {\"layout\": %u, \"code_bits\": %u, \"chunk_rows\": %llu, \"chunk_cols\": %llu, "
           "\"chunks\": %llu}",
           s->stream_layout, s->code_bits, (unsigned long long)s->chunk_rows,
           (unsigned long long)s->chunk_cols, (unsigned long long)s->n_chunks);
}

static void print_json(const char *path, const ecf8_report *r, const ecf8_file *f)
{
    printf("{\"file\": ");
    cli_json_string(stdout, path);
    printf(", \"kind\": \"%s\", \"file_bytes\": %llu, \"source_bytes\": %llu",
           r->is_container ? "ecf8" : "safetensors", (unsigned long long)r->file_bytes,
           (unsigned long long)r->source_bytes);
    if (f) print_json_container(f);
    printf(", \"tensors\": [");
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ecf8_tensor_report *t = &r->tensors[i];
        json_tensor_start(i, t);
        print_json_stream(f, i);
        printf(", \"elements\": %llu, \"split\": \"%s\", \"source_bytes\": %llu, "
               "\"compressed_bytes\": %llu, \"entropy_bound_bytes\": ",
               (unsigned long long)t->n_elements, ecf8_split_name(t->split),
               (unsigned long long)t->source_bytes, (unsigned long long)t->compressed_bytes);
        /* A container's tensors are not decoded: no entropy figures. */
        if (r->is_container) printf("null");
        else printf("%llu", (unsigned long long)t->entropy_bound_bytes);
        printf(", \"exponent_entropy_bits\": ");
        if (r->is_container || t->dtype == ECF8_DTYPE_OTHER || t->n_elements == 0) printf("null");
        else printf("%.4f", t->analysis.exponent_entropy_bits);
        printf(", \"fp4_bits_per_weight\": ");
        if (packed_fp4(t) && t->source_bytes) printf("%.4f}", bits_per_weight(t->compressed_bytes, 2 * t->source_bytes));
        else printf("null}");
    }
    printf("\n], \"dtypes\": [");
    size_t nd;
    dtype_sum *d = sum_by_dtype(r, &nd);
    for (size_t k = 0; d && k < nd; k++) {
        printf("%s\n  {\"dtype\": ", k ? "," : "");
        cli_json_string(stdout, d[k].name);
        printf(", \"tensors\": %zu, \"source_bytes\": %llu, \"compressed_bytes\": %llu}", d[k].tensors,
               (unsigned long long)d[k].source, (unsigned long long)d[k].stored);
    }
    free(d);
    printf("\n]}\n");
}

static void print_table(const char *path, const ecf8_report *r, bool wide)
{
    cli_put_escaped(stdout, path, false);
    printf(": %s, %zu tensors, %llu bytes", r->is_container ? "ecf8 container" : "safetensors",
           r->n_tensors, (unsigned long long)r->file_bytes);
    if (r->is_container)
        printf(" (source %llu bytes, ratio %.4f)", (unsigned long long)r->source_bytes,
               r->source_bytes ? (double)r->file_bytes / (double)r->source_bytes : 0.0);
    printf("\ncolumns: exp H = exponent field entropy (bits); split = what is coded%s; bits/w = bits per "
           "weight: source, coded, bound (order-0 entropy)%s\n",
           r->is_container ? "" : " (as auto would)", r->is_container ? "; '-' = known only by decoding" : "");
    printf("%-11s %-20s %8s %-8s %7s %7s %7s ", "dtype", "shape", "exp H", "split", "bits/w", "coded", "bound");
    if (wide) printf("%14s %14s ", "bytes", "stored");
    printf("tensor\n");
    uint64_t src = 0, comp = 0, bound = 0, fp4_src = 0, fp4_comp = 0;
    size_t fp4_tensors = 0;
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ecf8_tensor_report *t = &r->tensors[i];
        if (packed_fp4(t)) fp4_tensors++, fp4_src += t->source_bytes, fp4_comp += t->compressed_bytes;
        char shape[256];
        shape_text(t, shape, sizeof shape);
        /* A container's tensors are not decoded: no entropy figures. */
        bool analysed = !r->is_container && t->dtype != ECF8_DTYPE_OTHER && t->n_elements > 0;
        char ent[16] = "-", bnd[16] = "-";
        if (analysed) snprintf(ent, sizeof ent, "%.3f", t->analysis.exponent_entropy_bits);
        if (!r->is_container) snprintf(bnd, sizeof bnd, "%.3f", bits_per_weight(t->entropy_bound_bytes, t->n_elements));
        char dtype[64];
        printf("%-11s %-20s %8s %-8s %7.3f %7.3f %7s ", text_cell(t->dtype_name, dtype, sizeof dtype, 32), shape,
               ent, ecf8_split_name(t->split), bits_per_weight(t->source_bytes, t->n_elements),
               bits_per_weight(t->compressed_bytes, t->n_elements), bnd);
        if (wide) printf("%14llu %14llu ", (unsigned long long)t->source_bytes, (unsigned long long)t->compressed_bytes);
        cli_put_escaped(stdout, t->name, false); /* in full: two names never print alike */
        putchar('\n');
        src += t->source_bytes, comp += t->compressed_bytes, bound += t->entropy_bound_bytes;
    }
    size_t nd;
    dtype_sum *d = sum_by_dtype(r, &nd);
    for (size_t k = 0; d && k < nd; k++) {
        printf("dtype ");
        cli_put_escaped(stdout, d[k].name, false);
        printf(": %zu tensors, %llu -> %llu bytes (%.2f%%)\n", d[k].tensors, (unsigned long long)d[k].source,
               (unsigned long long)d[k].stored, percent(d[k].stored, d[k].source));
    }
    free(d);
    if (fp4_tensors)
        printf("packed FP4 (U8 *weight_packed, *_blocks: two E2M1 weights a byte): %zu tensors, %.3f bits "
               "per FP4 weight (4 in the source)\n", fp4_tensors, bits_per_weight(fp4_comp, 2 * fp4_src));
    printf("total: %llu -> %llu tensor bytes (%.2f%% of source)", (unsigned long long)src,
           (unsigned long long)comp, percent(comp, src));
    if (!r->is_container)
        printf(", order-0 bound %llu (%.2f%%)", (unsigned long long)bound, percent(bound, src));
    printf("\n");
}

static void print_histogram(const char *path, const ecf8_tensor_report *t, bool json)
{
    const ecf8_tensor_analysis *a = &t->analysis;
    unsigned field_bits = (unsigned)round(log2(a->exponent_symbols));
    /* U8 and I8 have no exponent: the library's histogram is of their bytes. */
    const bool bytes = t->dtype == ECF8_DTYPE_U8 || t->dtype == ECF8_DTYPE_I8;
    if (json) {
        printf("{\"file\": ");
        cli_json_string(stdout, path);
        printf(", \"tensor\": ");
        cli_json_string(stdout, t->name);
        printf(", \"dtype\": ");
        cli_json_string(stdout, t->dtype_name);
        printf(", \"elements\": %llu, \"field\": \"%s\", \"exponent_bits\": %u, \"exponent_entropy_bits\": %.4f, "
               "\"counts\": [",
               (unsigned long long)t->n_elements, bytes ? "byte" : "exponent", field_bits, a->exponent_entropy_bits);
        for (unsigned v = 0; v < a->exponent_symbols; v++)
            printf("%s%llu", v ? ", " : "", (unsigned long long)a->exponent_histogram[v]);
        printf("]}\n");
        return;
    }
    uint64_t max = 0;
    for (unsigned v = 0; v < a->exponent_symbols; v++) if (a->exponent_histogram[v] > max) max = a->exponent_histogram[v];
    cli_put_escaped(stdout, t->name, false);
    fputs(" (", stdout);
    cli_put_escaped(stdout, t->dtype_name, false);
    printf("): %s histogram, entropy %.3f bits of %u\n", bytes ? "byte" : "exponent field", a->exponent_entropy_bits,
           field_bits);
    for (unsigned v = 0; v < a->exponent_symbols; v++) {
        uint64_t c = a->exponent_histogram[v];
        if (!c) continue;
        int bar = max ? (int)((double)c / (double)max * 50 + 0.5) : 0;
        printf("  %s=%3u %6.2f%% |%.*s\n", bytes ? "v" : "e", v, 100.0 * (double)c / (double)t->n_elements, bar,
               "##################################################");
    }
}

/* ecf8_inspect_path with a progress bar: 0, or the exit status of its
 * failure (reported). */
static int inspect(const char *path, ecf8_report *r)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    cli_install_progress(&o, "inspecting");
    int st = ecf8_inspect_path(path, &o, r);
    if (st) return cli_fail(st, "cannot inspect file");
    cli_progress_clear();
    return 0;
}

typedef struct file_args {
    const char *path, *hist;
    bool json, wide;
} file_args;

/* Parses the arguments of `command` (info or ls; info takes --wide and
 * --histogram too) and inspects the file: 0, or the exit status of the
 * failure (reported). */
static int parse_and_inspect(const char *command, int argc, char **argv, file_args *a, ecf8_report *r)
{
    bool info = !strcmp(command, "info");
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) a->json = true;
        else if (info && !strcmp(argv[i], "--wide")) a->wide = true;
        else if (info && !strcmp(argv[i], "--histogram") && i + 1 < argc) a->hist = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_unknown_option(command, argv[i], i + 1 == argc, info ? "--histogram" : "");
        else if (!argv[i][0]) return cli_usage_error("empty file name");
        else if (!a->path) a->path = argv[i];
        else return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!a->path)
        return cli_usage_error("usage: ecf8 %s FILE [--json]%s", command, info ? " [--histogram TENSOR] [--wide]" : "");
    return inspect(a->path, r);
}

int cli_info(int argc, char **argv)
{
    file_args a;
    ecf8_report r;
    int rc = parse_and_inspect("info", argc, argv, &a, &r);
    if (rc) return rc;
    const char *path = a.path, *hist = a.hist;
    bool json = a.json;
    if (hist) {
        size_t i = 0;
        while (i < r.n_tensors && strcmp(r.tensors[i].name, hist)) i++;
        if (i == r.n_tensors) {
            rc = cli_error("%s: no tensor named '%s'", path, hist);
        } else if (r.is_container) {
            rc = cli_error("%s: info does not decode a container's tensors; --histogram reads a "
                           ".safetensors file", path);
        } else if (r.tensors[i].dtype == ECF8_DTYPE_OTHER || r.tensors[i].n_elements == 0) {
            rc = cli_error("%s: tensor '%s' (%s) has no coded exponent", path, hist, r.tensors[i].dtype_name);
        } else {
            print_histogram(path, &r.tensors[i], json);
        }
    } else if (json) {
        /* The index again, for the facts the report does not carry. */
        ecf8_file *f = NULL;
        if (r.is_container && ecf8_file_open_index(path, &f)) f = NULL;
        if (r.is_container && !f) {
            const char *why = ecf8_last_error();
            rc = cli_error("%s: %s", path, why[0] ? why : "cannot read the index");
        } else {
            print_json(path, &r, f);
        }
        ecf8_file_close(f);
    } else {
        print_table(path, &r, a.wide);
    }
    ecf8_report_free(&r);
    return rc;
}

/* `ecf8 ls FILE [--json]`: one line per tensor, "dtype shape bytes split
 * name" (the name last and in full), or a JSON array of the same. */
int cli_ls(int argc, char **argv)
{
    file_args a;
    ecf8_report r;
    int rc = parse_and_inspect("ls", argc, argv, &a, &r);
    if (rc) return rc;
    bool json = a.json;
    if (json) printf("[");
    for (size_t i = 0; i < r.n_tensors; i++) {
        const ecf8_tensor_report *t = &r.tensors[i];
        if (json) {
            json_tensor_start(i, t);
            printf(", \"bytes\": %llu, \"stored_bytes\": %llu, \"split\": \"%s\"}",
                   (unsigned long long)t->source_bytes, (unsigned long long)t->compressed_bytes,
                   ecf8_split_name(t->split));
            continue;
        }
        char dtype[64];
        char shape[256];
        printf("%-11s %-20s %12llu %-8s ", text_cell(t->dtype_name, dtype, sizeof dtype, 32),
               shape_text(t, shape, sizeof shape), (unsigned long long)t->source_bytes, ecf8_split_name(t->split));
        cli_put_escaped(stdout, t->name, false);
        putchar('\n');
    }
    if (json) printf("%s]\n", r.n_tensors ? "\n" : "");
    ecf8_report_free(&r);
    return 0;
}
