/* decoder.c - ecf8_decoder: CPU decoding on threads the caller owns.
 *
 * A decoder with one thread decodes on its caller's thread and never
 * touches a pool; one with more owns a private pool (pool.c) that its
 * ecf8_decoder_read_tensor calls use instead of the process-wide one, so N
 * loader threads with N decoders decode side by side. */
#include "internal.h"

#include <stdlib.h>

struct ecf8_decoder {
    unsigned threads;
    ecf8_pool *pool; /* threads > 1 */
};

ecf8_decoder *ecf8_decoder_create(unsigned threads)
{
    if (threads == 0) threads = ecf8_default_threads();
    ecf8_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->threads = threads;
    if (threads > 1 && ecf8_pool_create(threads - 1, &d->pool)) {
        free(d);
        return NULL;
    }
    return d;
}

unsigned ecf8_decoder_threads(const ecf8_decoder *d) { return d ? d->threads : 0; }

int ecf8_decoder_read_tensor(ecf8_decoder *d, const ecf8_file *f, size_t index, void *out,
                             size_t out_bytes)
{
    if (!d) return ecf8_fail(ECF8_ERR_ARGUMENT, "decoder: NULL argument");
    ecf8_pool *old = ecf8_pool_use(d->pool);
    int st = ecf8_file_read_tensor(f, index, out, out_bytes, d->threads);
    ecf8_pool_use(old);
    return st;
}

void ecf8_decoder_free(ecf8_decoder *d)
{
    if (!d) return;
    ecf8_pool_free(d->pool);
    free(d);
}
