/* encode_stubs.c - the encoder's public functions in a decode-only build
 * (-DECF8_DECODE_ONLY=ON), which leaves out stream_encode.c,
 * codebook_build.c, container_write.c and the safetensors reader (and with
 * it cJSON).  ecf8.h declares them in every build; here each one that
 * returns a status fails with ECF8_ERR_UNSUPPORTED and says why, so a
 * program built against either library links and reports the missing
 * encoder at run time (or checks ECF8_DECODE_ONLY at compile time). */
#include "internal.h"

static int decode_only(const char *what)
{
    return ecf8_fail(ECF8_ERR_UNSUPPORTED, "%s: this libecf8 is decode-only (built with "
                     "ECF8_DECODE_ONLY) and has no encoder", what);
}

int ecf8_codebook_build(const uint64_t *counts, unsigned n_symbols, unsigned max_bits,
                        uint8_t *lengths)
{
    (void)counts, (void)n_symbols, (void)max_bits, (void)lengths;
    return decode_only("ecf8_codebook_build");
}

int ecf8_tensor_analyze(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                        const ecf8_compress_options *options, ecf8_tensor_analysis *out)
{
    (void)dtype, (void)data, (void)rows, (void)cols, (void)options, (void)out;
    return decode_only("ecf8_tensor_analyze");
}

int ecf8_tensor_encode(ecf8_dtype dtype, const void *data, uint64_t rows, uint64_t cols,
                       const ecf8_compress_options *options, ecf8_encoded **out)
{
    (void)dtype, (void)data, (void)rows, (void)cols, (void)options;
    if (out) *out = NULL;
    return decode_only("ecf8_tensor_encode");
}

/* No ecf8_encoded is ever made: these see NULL only. */
void ecf8_encoded_free(ecf8_encoded *enc) { (void)enc; }
const void *ecf8_encoded_payload(const ecf8_encoded *enc, size_t *bytes)
{
    (void)enc;
    if (bytes) *bytes = 0;
    return NULL;
}
ecf8_split ecf8_encoded_split(const ecf8_encoded *enc)
{
    (void)enc;
    return ECF8_SPLIT_STORED;
}
const ecf8_stream *ecf8_encoded_stream(const ecf8_encoded *enc)
{
    (void)enc;
    return NULL;
}

int ecf8_compress_path(const char *in_path, const char *out_path,
                       const ecf8_compress_options *options)
{
    return ecf8_compress_path_counted(in_path, out_path, options, NULL);
}

int ecf8_compress_path_counted(const char *in_path, const char *out_path,
                               const ecf8_compress_options *options, uint64_t *codable_tensors)
{
    (void)in_path, (void)out_path, (void)options;
    ecf8_clear_error();
    if (codable_tensors) *codable_tensors = 0;
    return decode_only("compress");
}

int ecf8_convert_path(const char *in_path, const char *out_path, const ecf8_compress_options *options)
{
    (void)in_path, (void)out_path, (void)options;
    return decode_only("ecf8_convert_path");
}

/* Checkpoint directories (shards.c): decompress and verify work without
 * the encoder. */
int ecf8_compress_dir(const char *in_dir, const char *out_dir, const ecf8_compress_options *options,
                      const ecf8_dir_options *dir_options)
{
    (void)in_dir, (void)out_dir, (void)options, (void)dir_options;
    return decode_only("ecf8_compress_dir");
}
