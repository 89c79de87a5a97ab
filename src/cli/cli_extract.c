/* cli_extract.c - `ecf8 extract FILE.ecf8 TENSOR -o OUT`: one tensor
 * decoded, its checksum checked, written as a .npy array (OUT.npy) or as
 * its raw bytes (any other name), all or nothing (ecf8_output_*). */
#include "cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The NumPy descr of a safetensors dtype; *raw_note set for the dtypes
 * NumPy lacks (BF16, FP8), whose bits are written as unsigned integers.
 * NULL for a dtype with no .npy form. */
static const char *npy_descr(const char *dtype, const char **raw_note)
{
    static const char *const map[][2] = {
        {"F64", "<f8"}, {"F32", "<f4"}, {"F16", "<f2"}, {"I64", "<i8"}, {"I32", "<i4"},
        {"I16", "<i2"}, {"I8", "|i1"},  {"U64", "<u8"}, {"U32", "<u4"}, {"U16", "<u2"},
        {"U8", "|u1"},  {"BOOL", "|b1"}, {"BF16", "<u2"}, {"F8_E4M3", "|u1"}, {"F8_E5M2", "|u1"},
    };
    *raw_note = NULL;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (strcmp(map[i][0], dtype)) continue;
        if (i >= 12) *raw_note = map[i][1][2] == '2' ? "uint16" : "uint8";
        return map[i][1];
    }
    return NULL;
}

/* The .npy (format 1.0) header of t as `descr` into buf: its size, 0 when
 * it does not fit. */
static size_t npy_header(const ecf8_tensor_info *t, const char *descr, char *buf, size_t size)
{
    char shape[256];
    int n = 0;
    for (unsigned d = 0; d < t->ndim && n < (int)sizeof shape; d++)
        n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    if (n >= (int)sizeof shape) return 0;
    char dict[400];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s%s), }", descr,
                       shape, t->ndim == 1 ? "," : "");
    /* Magic, version, header length, dict, spaces and '\n' to a multiple of 64. */
    size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
    if (len < 0 || (size_t)len >= sizeof dict || total > size) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((total - 10) & 0xFF), buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)len);
    memset(buf + 10 + len, ' ', total - 10 - (size_t)len - 1);
    buf[total - 1] = '\n';
    return total;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Writes tensor `index` of f to `out` (open); 0 or the exit status of the
 * failure (reported).  Does not commit or abort.  *note: the note to print
 * once committed, or "". */
static int write_tensor(const ecf8_file *f, const char *path, size_t index, const char *outp, ecf8_output *out,
                        char *note, size_t note_size)
{
    ecf8_tensor_info t;
    ecf8_file_tensor(f, index, &t);
    char header[512];
    size_t header_bytes = 0;
    const char *raw_note = NULL;
    if (ends_with(outp, ".npy")) {
        const char *descr = npy_descr(t.dtype_name, &raw_note);
        if (!descr) return cli_error("%s: tensor '%s' (%s) has no .npy form: extract it to a .bin file", path, t.name, t.dtype_name);
        uint64_t item = (uint64_t)(descr[2] - '0');
        if (t.n_elements * item != t.source_bytes)
            return cli_error("%s: tensor '%s' holds %llu bytes, not %llu elements of %s", path, t.name,
                             (unsigned long long)t.source_bytes, (unsigned long long)t.n_elements, t.dtype_name);
        if (!(header_bytes = npy_header(&t, descr, header, sizeof header)))
            return cli_error("%s: tensor '%s': shape too long for a .npy header", path, t.name);
    }
    if (t.source_bytes > SIZE_MAX) return cli_error("%s: tensor '%s' does not fit in memory", path, t.name);
    void *data = malloc(t.source_bytes ? (size_t)t.source_bytes : 1);
    if (!data) return cli_error("%s: out of memory for tensor '%s' (%llu bytes)", path, t.name, (unsigned long long)t.source_bytes);
    int st = ecf8_file_read_tensor(f, index, data, (size_t)t.source_bytes, 0);
    if (!st && header_bytes) st = ecf8_output_write(out, header, header_bytes);
    if (!st) st = ecf8_output_write(out, data, (size_t)t.source_bytes);
    free(data);
    if (st) return cli_fail(st, "cannot extract the tensor");
    if (raw_note)
        snprintf(note, note_size, "note: %s: %s has no NumPy dtype: the array holds its raw bits as %s", outp,
                 t.dtype_name, raw_note);
    return 0;
}

int cli_extract(int argc, char **argv)
{
    const char *path = NULL, *name = NULL, *outp = NULL;
    bool force = false;
    const char *usage = "usage: ecf8 extract FILE.ecf8 TENSOR -o OUT.npy|OUT.bin [--force]";
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc) outp = argv[++i];
        else if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) force = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_unknown_option("extract", argv[i], i + 1 == argc, "-o --output");
        else if (!path) path = argv[i];
        else if (!name) name = argv[i];
        else return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!path || !name || !outp) return cli_usage_error("%s", usage);
    int rc = cli_bad_path(path, false);
    if (rc || (rc = cli_bad_path(outp, true))) return rc;
    /* The output is checked (and its temporary made) before any work. */
    ecf8_output *out;
    int st = ecf8_output_open(outp, path, force, &out);
    if (st) return cli_fail(st, "cannot create the output");
    ecf8_file *f = NULL;
    size_t index;
    char note[2048] = "";
    if (ecf8_file_open(path, &f)) {
        const char *why = ecf8_last_error();
        rc = cli_error("%s: %s", path, why[0] ? why : "cannot open");
    } else if (ecf8_file_find(f, name, &index)) {
        rc = cli_error("%s: no tensor named '%s'", path, name);
    } else {
        rc = write_tensor(f, path, index, outp, out, note, sizeof note);
    }
    ecf8_file_close(f);
    if (rc) {
        ecf8_output_abort(out);
        return rc;
    }
    if ((st = ecf8_output_commit(out))) return cli_fail(st, "cannot write the output");
    if (note[0]) cli_error("%s", note);
    return 0;
}
