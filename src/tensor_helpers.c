/* tensor_helpers.c - small conveniences over the public API that callers
 * used to write by hand (ecf8.h, "helpers"): a weight's scale tensor, the
 * tensor info of an in-memory encoding, and element values as floats.  Uses
 * the public API only. */
#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scale tensors ------------------------------------------------------------ */
/* The naming rules of ecf8.h's table (ecf8_file_find_scale), in convention
 * order: the suffix that replaces ".weight" of "A.weight" (or "A.kernel"),
 * and for conventions 0 and 1 the suffix appended to any other name. */
static const struct {
    const char *after_stem;  /* "A" + this */
    const char *after_other; /* other names: name + this; NULL: does not apply */
} scale_rules[] = {
    {".weight_scale_inv", "_scale_inv"}, /* DeepSeek-V3, Qwen3-FP8, Mistral (HF) */
    {".weight_scale", "_scale"},         /* compressed-tensors, AutoFP8, ModelOpt, fbgemm */
    {".qscale_weight", NULL},            /* Mistral native */
    {".scale", NULL},                    /* DeepSeek-V4 (F8_E8M0 blocks) */
};
#define N_SCALE_CONVENTIONS (sizeof scale_rules / sizeof scale_rules[0])
_Static_assert(N_SCALE_CONVENTIONS == ECF8_SCALE_CONVENTIONS, "ecf8.h's table and scale_rules differ");

/* Length of the stem "A" of "A.weight" or "A.kernel", or -1. */
static ptrdiff_t weight_stem(const char *name, size_t n)
{
    if (n >= 7 && (!strcmp(name + n - 7, ".weight") || !strcmp(name + n - 7, ".kernel")))
        return (ptrdiff_t)(n - 7);
    return -1;
}

int ecf8_scale_name(const char *weight_name, unsigned convention, char *out, size_t out_size)
{
    if (!weight_name || !out || !out_size) return ecf8_fail(ECF8_ERR_ARGUMENT, "scale name: NULL argument");
    out[0] = '\0';
    if (convention >= N_SCALE_CONVENTIONS)
        return ecf8_fail(ECF8_ERR_NOT_FOUND, "scale name: no naming convention %u", convention);
    size_t n = strlen(weight_name);
    ptrdiff_t stem = weight_stem(weight_name, n);
    int len;
    if (stem >= 0)
        len = snprintf(out, out_size, "%.*s%s", (int)stem, weight_name, scale_rules[convention].after_stem);
    else if (scale_rules[convention].after_other)
        len = snprintf(out, out_size, "%s%s", weight_name, scale_rules[convention].after_other);
    else
        return ecf8_fail(ECF8_ERR_NOT_FOUND,
                         "scale name: convention %u applies to names ending in .weight or .kernel, not '%s'",
                         convention, weight_name);
    if (len < 0 || (size_t)len >= out_size) {
        out[0] = '\0';
        return ecf8_fail(ECF8_ERR_ARGUMENT, "scale name of '%s': %d bytes do not fit in %zu", weight_name,
                         len, out_size);
    }
    return ECF8_OK;
}

/* "'a'", "'a' and 'b'", "'a', 'b' and 'c'" (last_sep "or": ... or 'c') into
 * buf; names[i] for i < n. */
static void quote_list(char *buf, size_t size, const char *const *names, size_t n, const char *last_sep)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? last_sep : ", ";
        int k = snprintf(buf + at, size - at, "%s'%s'", sep, names[i]);
        if (k < 0) break;
        at += (size_t)k;
    }
}

/* The rules (ecf8.h has the table with the checkpoint families): every
 * convention's name for the weight is looked up; exactly one present is the
 * scale, none is ECF8_ERR_NOT_FOUND and several ECF8_ERR_CORRUPT, both with
 * every name in the message. */
int ecf8_file_find_scale(const ecf8_file *file, size_t weight_index, size_t *scale_index)
{
    if (!file || !scale_index) return ecf8_fail(ECF8_ERR_ARGUMENT, "find scale: NULL argument");
    ecf8_tensor_info w;
    int st = ecf8_file_tensor(file, weight_index, &w);
    if (st) return st;
    const size_t size = strlen(w.name) + 32, list_size = N_SCALE_CONVENTIONS * (size + 8);
    size_t found[N_SCALE_CONVENTIONS], n_found = 0, n_tried = 0;
    char *names = malloc(N_SCALE_CONVENTIONS * size + list_size);
    if (!names) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    char *list = names + N_SCALE_CONVENTIONS * size;
    const char *tried[N_SCALE_CONVENTIONS], *which[N_SCALE_CONVENTIONS];
    for (unsigned c = 0; c < N_SCALE_CONVENTIONS; c++) {
        char *name = names + c * size;
        if (ecf8_scale_name(w.name, c, name, size)) continue; /* does not apply; the suffixes fit */
        tried[n_tried++] = name;
        size_t i;
        if (ecf8_file_find(file, name, &i) == ECF8_OK) which[n_found] = name, found[n_found++] = i;
    }
    if (n_found == 1) {
        *scale_index = found[0];
        st = ECF8_OK;
    } else if (n_found == 0) {
        quote_list(list, list_size, tried, n_tried, " or ");
        st = ecf8_fail(ECF8_ERR_NOT_FOUND, "tensor '%s' has no scale tensor %s", w.name, list);
    } else {
        quote_list(list, list_size, which, n_found, " and ");
        st = ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has %zu scale tensors, %s: which one applies is ambiguous",
                       w.name, n_found, list);
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
    case ECF8_DTYPE_F8_E4M3FNUZ: /* bias 8: 0x80 is the one NaN, no infinities */
        if (p[i] == 0x80) return float_of_bits(0x7FC00000u);
        sign = (uint32_t)(p[i] >> 7) << 31, e = p[i] >> 3 & 15, m = p[i] & 7;
        if (e == 0) return float_of_bits(sign | 0x3F800000u) * ((float)m * 0x1p-10f);
        return float_of_bits(sign | (e + 119) << 23 | m << 20);
    case ECF8_DTYPE_F8_E5M2FNUZ: /* bias 16: 0x80 is the one NaN, no infinities */
        if (p[i] == 0x80) return float_of_bits(0x7FC00000u);
        sign = (uint32_t)(p[i] >> 7) << 31, e = p[i] >> 2 & 31, m = p[i] & 3;
        if (e == 0) return float_of_bits(sign | 0x3F800000u) * ((float)m * 0x1p-17f);
        return float_of_bits(sign | (e + 111) << 23 | m << 21);
    case ECF8_DTYPE_F8_E8M0: /* 2^(e - 127): e = 0 is the fp32 subnormal 2^-127, 255 NaN */
        return float_of_bits(p[i] == 255 ? 0x7FC00000u : p[i] ? (uint32_t)p[i] << 23 : 0x00400000u);
    case ECF8_DTYPE_U8: return (float)p[i];
    case ECF8_DTYPE_I8: return (float)(int8_t)p[i];
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
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "elements to float: dtype %d is not one ecf8 codes",
                         (int)dtype);
    for (size_t i = 0; i < n; i++) out[i] = element_value(dtype, data, i);
    return ECF8_OK;
}
