/* fuzz_safetensors.c - the safetensors reader and the whole compressor.
 *
 * The input is a .safetensors file.  The validating reader (ecf8_st_open) must
 * either reject it or return tensors that tile the data area; then
 * ecf8_inspect_path and ecf8_compress_path run on it with options derived
 * from the input (split, code length limit, chunk size), and must agree
 * with the reader.  Whatever compresses must verify against the original
 * byte for byte (ecf8_verify_path), so this is also a round-trip fuzzer of
 * the encoder over arbitrary tensor bytes, shapes and chunkings. */
#include "fuzz_common.h"

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fuzz_write("in.safetensors", data, size);
    st_file sf;
    int st_read = ecf8_st_open(in, &sf);
    char read_error[512];
    snprintf(read_error, sizeof read_error, "%s", st_read ? ecf8_last_error() : "");
    /* The header parsed in two halves on two threads (the split threshold
     * lowered to 1 byte, so small inputs reach it) must give the one-pass
     * parse's result exactly: the same tensors, or the same error. */
    {
        st_file halves;
        ecf8_st_set_split_bytes(1);
        int st_halves = ecf8_st_open_threads(in, 2, &halves);
        ecf8_st_set_split_bytes(0);
        FUZZ_CHECK(st_halves == st_read, "halves: status %d, one pass %d", st_halves, st_read);
        if (st_read)
            FUZZ_CHECK(!strcmp(ecf8_last_error(), read_error), "halves: '%s', one pass '%s'",
                       ecf8_last_error(), read_error);
        else {
            FUZZ_CHECK(halves.n_tensors == sf.n_tensors, "halves: %zu tensors, one pass %zu",
                       halves.n_tensors, sf.n_tensors);
            for (size_t i = 0; i < sf.n_tensors; i++) {
                const st_tensor *a = &sf.tensors[i], *b = &halves.tensors[i];
                FUZZ_CHECK(!strcmp(a->name, b->name) && a->offset == b->offset &&
                               a->bytes == b->bytes && a->dtype == b->dtype && a->ndim == b->ndim &&
                               !strcmp(a->dtype_name, b->dtype_name) &&
                               !memcmp(a->shape, b->shape, sizeof a->shape),
                           "halves: tensor %zu ('%s') differs", i, a->name);
            }
            ecf8_st_close(&halves);
        }
    }
    if (st_read == ECF8_OK) {
        uint64_t pos = sf.data_start;
        for (size_t i = 0; i < sf.n_tensors; i++) {
            const st_tensor *t = &sf.tensors[i];
            FUZZ_CHECK(t->offset == pos && t->bytes <= size - pos, "tensor %zu does not tile", i);
            FUZZ_CHECK(t->ndim <= ECF8_MAX_DIMS && t->name, "tensor %zu fields", i);
            unsigned w = ecf8_dtype_size(t->dtype);
            FUZZ_CHECK(!w || t->n_elements * w == t->bytes, "tensor '%s' size", t->name);
            uint64_t rows, cols;
            ecf8_st_tensor_view(t, &rows, &cols);
            FUZZ_CHECK(rows * cols == t->n_elements, "tensor '%s' view %llux%llu", t->name,
                       (unsigned long long)rows, (unsigned long long)cols);
            pos += t->bytes;
        }
        FUZZ_CHECK(pos == size, "tensors end at %llu of %zu", (unsigned long long)pos, size);
        ecf8_st_close(&sf);
    }

    uint64_t h = fuzz_hash(data, size);
    static const uint32_t chunks[] = {0, 1, 3, 64, 100, 4096};
    static const ecf8_split splits[] = {ECF8_SPLIT_AUTO, ECF8_SPLIT_EXPONENT, ECF8_SPLIT_BYTE};
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    o.threads = 1 + (unsigned)(h & 1);
    o.split = splits[(h >> 1) % 3];
    o.max_code_bits = 1 + (unsigned)((h >> 3) % ECF8_MAX_CODE_BITS);
    o.chunk_elements = chunks[(h >> 7) % 6];

    ecf8_report rep;
    int st_inspect = ecf8_inspect_path(in, &o, &rep);
    if (st_inspect == ECF8_OK) ecf8_report_free(&rep);

    const char *out = fuzz_path("out.ecf8");
    int st = ecf8_compress_path(in, out, &o);
    if (st_read != ECF8_OK) {
        FUZZ_CHECK(st != ECF8_OK, "compressed a file the reader rejects");
        FUZZ_CHECK(st_inspect != ECF8_OK, "inspected a file the reader rejects");
        return 0;
    }
    if (st != ECF8_OK && o.max_code_bits < 8 && fuzz_known_code_bits_too_small())
        return 0; /* known bug 5 */
    FUZZ_CHECK(st == ECF8_OK, "valid file failed to compress (status %d, code bits %u)", st,
               o.max_code_bits);
    FUZZ_CHECK(st_inspect == ECF8_OK, "valid file failed inspection");
    FUZZ_CHECK(ecf8_verify_path(out, in, o.threads) == ECF8_OK, "round trip differs");
    unlink(out);
    return 0;
}
