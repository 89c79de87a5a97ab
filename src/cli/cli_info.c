/* cli_info.c - `ecf8 info`: the per-tensor "to compress or not?" table. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void print_shape(FILE *f, const ecf8_tensor_report *t, bool json)
{
    fputc('[', f);
    for (unsigned d = 0; d < t->ndim; d++)
        fprintf(f, "%s%llu", d ? (json ? ", " : "x") : "", (unsigned long long)t->shape[d]);
    fputc(']', f);
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

static void print_json(const char *path, const ecf8_report *r)
{
    printf("{\"file\": ");
    cli_json_string(stdout, path);
    printf(", \"file_bytes\": %llu, \"source_bytes\": %llu, \"tensors\": [",
           (unsigned long long)r->file_bytes, (unsigned long long)r->source_bytes);
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ecf8_tensor_report *t = &r->tensors[i];
        printf("%s\n  {\"name\": ", i ? "," : "");
        cli_json_string(stdout, t->name);
        printf(", \"dtype\": ");
        cli_json_string(stdout, t->dtype_name);
        printf(", \"shape\": ");
        print_shape(stdout, t, true);
        printf(", \"elements\": %llu, \"split\": \"%s\", \"source_bytes\": %llu, "
               "\"compressed_bytes\": %llu, \"entropy_bound_bytes\": ",
               (unsigned long long)t->n_elements, ecf8_split_name(t->split),
               (unsigned long long)t->source_bytes, (unsigned long long)t->compressed_bytes);
        /* A container's tensors are not decoded: no entropy figures. */
        if (r->is_container) printf("null");
        else printf("%llu", (unsigned long long)t->entropy_bound_bytes);
        printf(", \"exponent_entropy_bits\": ");
        if (r->is_container || t->dtype == ECF8_DTYPE_OTHER || t->n_elements == 0) printf("null}");
        else printf("%.4f}", t->analysis.exponent_entropy_bits);
    }
    printf("\n]}\n");
}

static void print_table(const char *path, const ecf8_report *r)
{
    cli_put_escaped(stdout, path, false);
    printf(": %s, %zu tensors, %llu bytes", r->is_container ? "ecf8 container" : "safetensors",
           r->n_tensors, (unsigned long long)r->file_bytes);
    if (r->is_container)
        printf(" (source %llu bytes, ratio %.4f)", (unsigned long long)r->source_bytes,
               r->source_bytes ? (double)r->file_bytes / (double)r->source_bytes : 0.0);
    printf("\n%-48s %-8s %-16s %8s %-8s %7s %7s %7s\n", "tensor", "dtype", "shape", "exp H", "split",
           "bits/w", "coded", "bound");
    uint64_t src = 0, comp = 0, bound = 0;
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ecf8_tensor_report *t = &r->tensors[i];
        char shape[64];
        FILE *mf = fmemopen(shape, sizeof shape, "w");
        if (mf) {
            print_shape(mf, t, false);
            fclose(mf);
        } else {
            strcpy(shape, "?");
        }
        /* A container's tensors are not decoded: no entropy figures. */
        bool analysed = !r->is_container && t->dtype != ECF8_DTYPE_OTHER && t->n_elements > 0;
        char ent[16] = "-", bnd[16] = "-";
        if (analysed) snprintf(ent, sizeof ent, "%.3f", t->analysis.exponent_entropy_bits);
        if (!r->is_container) snprintf(bnd, sizeof bnd, "%.3f", bits_per_weight(t->entropy_bound_bytes, t->n_elements));
        char name[256], dtype[64];
        printf("%-48s %-8s %-16.16s %8s %-8s %7.3f %7.3f %7s\n", text_cell(t->name, name, sizeof name, 48),
               text_cell(t->dtype_name, dtype, sizeof dtype, 32), shape, ent,
               ecf8_split_name(t->split), bits_per_weight(t->source_bytes, t->n_elements),
               bits_per_weight(t->compressed_bytes, t->n_elements), bnd);
        src += t->source_bytes, comp += t->compressed_bytes, bound += t->entropy_bound_bytes;
    }
    printf("total: %llu -> %llu tensor bytes (%.2f%% of source)", (unsigned long long)src,
           (unsigned long long)comp, src ? 100.0 * (double)comp / (double)src : 0.0);
    if (!r->is_container)
        printf(", order-0 bound %llu (%.2f%%)", (unsigned long long)bound,
               src ? 100.0 * (double)bound / (double)src : 0.0);
    printf("\n");
}

static void print_histogram(const ecf8_tensor_report *t)
{
    const ecf8_tensor_analysis *a = &t->analysis;
    uint64_t max = 0;
    for (unsigned v = 0; v < a->exponent_symbols; v++) if (a->exponent_histogram[v] > max) max = a->exponent_histogram[v];
    cli_put_escaped(stdout, t->name, false);
    fputs(" (", stdout);
    cli_put_escaped(stdout, t->dtype_name, false);
    printf("): exponent field histogram, entropy %.3f bits of %u\n", a->exponent_entropy_bits, (unsigned)round(log2(a->exponent_symbols)));
    for (unsigned v = 0; v < a->exponent_symbols; v++) {
        uint64_t c = a->exponent_histogram[v];
        if (!c) continue;
        int bar = max ? (int)((double)c / (double)max * 50 + 0.5) : 0;
        printf("  e=%3u %6.2f%% |%.*s\n", v, 100.0 * (double)c / (double)t->n_elements, bar,
               "##################################################");
    }
}

int cli_info(int argc, char **argv)
{
    const char *path = NULL, *hist = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--histogram") && i + 1 < argc) hist = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) return cli_unknown_option("info", argv[i], i + 1 == argc, "--histogram");
        else if (!argv[i][0]) return cli_usage_error("empty file name");
        else if (!path) path = argv[i];
        else return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage_error("%s", "usage: ecf8 info FILE [--json] [--histogram TENSOR]");
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    cli_install_progress(&o, "inspecting");
    ecf8_report r;
    int st = ecf8_inspect_path(path, &o, &r);
    if (st) return cli_fail(st, "cannot inspect file");
    cli_progress_clear();
    int rc = 0;
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
            print_histogram(&r.tensors[i]);
        }
    } else if (json) {
        print_json(path, &r);
    } else {
        print_table(path, &r);
    }
    ecf8_report_free(&r);
    return rc;
}
