/* tensor_helpers.c - small conveniences over the public API that callers
 * used to write by hand (ecf8.h, "helpers"): a weight's scale tensor, the
 * tensor info of an in-memory encoding, and element values as floats.  Uses
 * the public API only. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scale tensors ------------------------------------------------------------ */
/* The conventions, in order of preference: the suffix appended to the
 * weight's base name ("A.weight"; "A.kernel" reads as "A.weight"). */
static const char *const scale_suffixes[] = {"_scale_inv", "_scale"};
#define N_SCALE_CONVENTIONS (sizeof scale_suffixes / sizeof scale_suffixes[0])

int ecf8_scale_name(const char *weight_name, unsigned convention, char *out, size_t out_size)
{
    if (!weight_name || !out || !out_size) return ecf8_fail(ECF8_ERR_ARGUMENT, "scale name: NULL argument");
    out[0] = '\0';
    if (convention >= N_SCALE_CONVENTIONS)
        return ecf8_fail(ECF8_ERR_NOT_FOUND, "scale name: no naming convention %u", convention);
    size_t n = strlen(weight_name);
    int len;
    if (n >= 7 && !strcmp(weight_name + n - 7, ".kernel"))
        len = snprintf(out, out_size, "%.*s.weight%s", (int)(n - 7), weight_name, scale_suffixes[convention]);
    else
        len = snprintf(out, out_size, "%s%s", weight_name, scale_suffixes[convention]);
    if (len < 0 || (size_t)len >= out_size) {
        out[0] = '\0';
        return ecf8_fail(ECF8_ERR_ARGUMENT, "scale name of '%s': %d bytes do not fit in %zu", weight_name,
                         len, out_size);
    }
    return ECF8_OK;
}

int ecf8_file_find_scale(const ecf8_file *file, size_t weight_index, size_t *scale_index)
{
    if (!file || !scale_index) return ecf8_fail(ECF8_ERR_ARGUMENT, "find scale: NULL argument");
    ecf8_tensor_info w;
    int st = ecf8_file_tensor(file, weight_index, &w);
    if (st) return st;
    size_t size = strlen(w.name) + 32, found[N_SCALE_CONVENTIONS], n_found = 0;
    char *names = malloc(N_SCALE_CONVENTIONS * size);
    if (!names) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    const char *which[N_SCALE_CONVENTIONS];
    for (unsigned c = 0; c < N_SCALE_CONVENTIONS; c++) {
        char *name = names + c * size;
        ecf8_scale_name(w.name, c, name, size); /* fits: the suffixes are short */
        size_t i;
        if (ecf8_file_find(file, name, &i) == ECF8_OK) which[n_found] = name, found[n_found++] = i;
    }
    if (n_found == 1) {
        *scale_index = found[0];
        st = ECF8_OK;
    } else if (n_found == 0) {
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "tensor '%s' has no scale tensor '%s' or '%s'", w.name, names,
                       names + size);
    } else {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has two scale tensors, '%s' and '%s': which one applies is ambiguous",
                       w.name, which[0], which[1]);
    }
    free(names);
    return st;
}

/* ---- in-memory encodings ------------------------------------------------------- */
int ecf8_encoded_tensor_info(const ecf8_encoded *enc, const char *name, ecf8_dtype dtype,
                             const void *data, uint64_t rows, uint64_t cols, ecf8_tensor_info *out)
{
    unsigned es = ecf8_dtype_size(dtype);
    uint64_t n, bytes;
    if (!enc || !out || !es) return ecf8_fail(ECF8_ERR_ARGUMENT, "encoded tensor info: NULL argument or uncoded dtype");
    if (!ecf8_mul_u64(rows, cols, &n) || !ecf8_mul_u64(n, es, &bytes) || bytes > SIZE_MAX)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "encoded tensor info: %llu x %llu elements overflow",
                         (unsigned long long)rows, (unsigned long long)cols);
    if (!data && bytes) return ecf8_fail(ECF8_ERR_ARGUMENT, "encoded tensor info: NULL data");
    size_t payload_bytes;
    const void *payload = ecf8_encoded_payload(enc, &payload_bytes);
    ecf8_split split = ecf8_encoded_split(enc);
    const ecf8_stream *s = ecf8_encoded_stream(enc);
    if (s ? s->dtype != dtype || s->rows != rows || s->cols != cols : payload_bytes != bytes)
        return ecf8_fail(ECF8_ERR_ARGUMENT,
                         "encoded tensor info: the encoding is not of a %s tensor of %llu x %llu elements",
                         ecf8_dtype_name(dtype), (unsigned long long)rows, (unsigned long long)cols);
    memset(out, 0, sizeof *out);
    out->name = name ? name : "";
    out->dtype_name = ecf8_dtype_name(dtype);
    out->dtype = dtype;
    out->split = split;
    out->ndim = 2;
    out->shape[0] = rows, out->shape[1] = cols;
    out->n_elements = n;
    out->source_bytes = bytes;
    out->payload_bytes = payload_bytes;
    out->checksum = ecf8_checksum64(data, (size_t)bytes);
    out->payload = payload;
    if (s) out->stream = *s;
    return ECF8_OK;
}

/* ---- element values ------------------------------------------------------------- */
static float float_of_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t load_le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* Element i of little-endian `data` (dtype known to be coded). */
static float element_value(ecf8_dtype dtype, const uint8_t *p, size_t i)
{
    uint32_t sign, e, m;
    switch (dtype) {
    case ECF8_DTYPE_F8_E4M3: /* the "fn" variant: no infinities, S.1111.111 is NaN */
        sign = (uint32_t)(p[i] >> 7) << 31, e = p[i] >> 3 & 15, m = p[i] & 7;
        if (e == 15 && m == 7) return float_of_bits(sign | 0x7FC00000u);
        if (e == 0) return float_of_bits(sign | 0x3F800000u) * ((float)m * 0x1p-9f);
        return float_of_bits(sign | (e + 120) << 23 | m << 20);
    case ECF8_DTYPE_F8_E5M2:
        sign = (uint32_t)(p[i] >> 7) << 31, e = p[i] >> 2 & 31, m = p[i] & 3;
        if (e == 31) return float_of_bits(sign | (m ? 0x7FC00000u : 0x7F800000u));
        if (e == 0) return float_of_bits(sign | 0x3F800000u) * ((float)m * 0x1p-16f);
        return float_of_bits(sign | (e + 112) << 23 | m << 21);
    case ECF8_DTYPE_BF16:
        return float_of_bits((uint32_t)load_le16(p + 2 * i) << 16);
    default: { /* ECF8_DTYPE_F16 */
        uint32_t h = load_le16(p + 2 * i);
        sign = (h >> 15) << 31, e = h >> 10 & 31, m = h & 1023;
        if (e == 31) return float_of_bits(sign | 0x7F800000u | m << 13); /* Inf, NaN with its payload */
        if (e == 0) return float_of_bits(sign | 0x3F800000u) * ((float)m * 0x1p-24f);
        return float_of_bits(sign | (e + 112) << 23 | m << 13);
    }
    }
}

float ecf8_element_to_float(ecf8_dtype dtype, const void *data, size_t index)
{
    if (!data || !ecf8_dtype_size(dtype)) return float_of_bits(0x7FC00000u);
    return element_value(dtype, data, index);
}

int ecf8_elements_to_float(ecf8_dtype dtype, const void *data, size_t n, float *out)
{
    if ((!data || !out) && n) return ecf8_fail(ECF8_ERR_ARGUMENT, "elements to float: NULL argument");
    if (!ecf8_dtype_size(dtype))
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "elements to float: dtype %d is not F8_E4M3, F8_E5M2, BF16 or F16",
                         (int)dtype);
    for (size_t i = 0; i < n; i++) out[i] = element_value(dtype, data, i);
    return ECF8_OK;
}
