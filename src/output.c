/* output.c - the public face of the all-or-nothing output files (io.h):
 * ecf8_output_* in ecf8.h, for tools that write outputs of their own. */
#include "internal.h"
#include "io.h"

#include <stdlib.h>

struct ecf8_output {
    ecf8_outfile file;
};

int ecf8_output_open(const char *path, const char *input, int overwrite, ecf8_output **out)
{
    if (!path || !out) return ecf8_fail(ECF8_ERR_ARGUMENT, "output: NULL argument");
    *out = NULL;
    ecf8_output *o = calloc(1, sizeof *o);
    if (!o) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    int st = ecf8_outfile_open(&o->file, path, input, overwrite != 0);
    if (st) {
        free(o);
        return st;
    }
    *out = o;
    return ECF8_OK;
}

int ecf8_output_write(ecf8_output *out, const void *data, size_t bytes)
{
    if (!out || (!data && bytes)) return ecf8_fail(ECF8_ERR_ARGUMENT, "output: NULL argument");
    return ecf8_outfile_write(&out->file, data, bytes);
}

int ecf8_output_commit(ecf8_output *out)
{
    if (!out) return ecf8_fail(ECF8_ERR_ARGUMENT, "output: NULL argument");
    int st = ecf8_outfile_commit(&out->file);
    free(out);
    return st;
}

void ecf8_output_abort(ecf8_output *out)
{
    if (!out) return;
    ecf8_outfile_abort(&out->file);
    free(out);
}
