/* testutil_originals.h - a test container made from a tests/data
 * checkpoint, and the original bytes of each of its tensors (read from the
 * .safetensors file itself, by name), for bit-exact comparisons. */
#ifndef ECF8_TESTUTIL_ORIGINALS_H
#define ECF8_TESTUTIL_ORIGINALS_H

#include "safetensors.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct originals {
    char ecf8[4096];     /* the compressed container */
    ecf8_file *file;     /* open on it */
    size_t n;
    uint8_t **bytes;     /* by container index */
    size_t *size;
} originals;

/* Compresses tests/data/NAME.safetensors into the temp dir and opens it. */
static void originals_load(originals *o, const char *name)
{
    memset(o, 0, sizeof *o);
    char src[4096];
    snprintf(src, sizeof src, "%s.safetensors", tu_data_path(name));
    snprintf(o->ecf8, sizeof o->ecf8, "%s/%s.ecf8", tu_temp_dir(), name);
    if (tu_compress_over(src, o->ecf8, NULL)) fail_msg("compress %s: %s", src, ecf8_last_error());
    if (ecf8_file_open(o->ecf8, &o->file)) fail_msg("open: %s", ecf8_last_error());
    o->n = ecf8_file_tensor_count(o->file);
    o->bytes = calloc(o->n, sizeof *o->bytes);
    o->size = calloc(o->n, sizeof *o->size);
    st_file st;
    if (ecf8_st_open(src, &st)) fail_msg("safetensors: %s", ecf8_last_error());
    for (size_t k = 0; k < st.n_tensors; k++) {
        size_t i;
        if (ecf8_file_find(o->file, st.tensors[k].name, &i)) fail_msg("%s missing", st.tensors[k].name);
        const uint8_t *data;
        if (ecf8_st_read_tensor(&st, &st.tensors[k], &data)) fail_msg("%s", ecf8_last_error());
        o->size[i] = (size_t)st.tensors[k].bytes;
        o->bytes[i] = malloc(o->size[i] ? o->size[i] : 1);
        memcpy(o->bytes[i], data, o->size[i]);
    }
    ecf8_st_close(&st);
}

static void originals_free(originals *o)
{
    for (size_t i = 0; i < o->n; i++) free(o->bytes[i]);
    free(o->bytes);
    free(o->size);
    ecf8_file_close(o->file);
    memset(o, 0, sizeof *o);
}

/* Tensors of the bad-file set (tests/data/bad/MANIFEST.tsv) that open and
 * fail only when decoded: file name and expected status. */
typedef struct bad_decode {
    const char *file;
    int status;
} bad_decode;
static const bad_decode BAD_DECODES[] = {
    {"ecf8-chunk-offset-shift.ecf8", ECF8_ERR_CORRUPT},
    {"ecf8-payload-ones.ecf8", ECF8_ERR_CORRUPT},
    {"ecf8-payload-zeros.ecf8", ECF8_ERR_CORRUPT},
    {"ecf8-checksum-field.ecf8", ECF8_ERR_CHECKSUM},
    {"ecf8-payload-raw-bit.ecf8", ECF8_ERR_CHECKSUM},
    {"ecf8-stored-bitflip.ecf8", ECF8_ERR_CHECKSUM},
};
#define N_BAD_DECODES (sizeof BAD_DECODES / sizeof BAD_DECODES[0])

static ecf8_file *open_bad(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bad/%s", tu_data_path(""), name);
    ecf8_file *f = NULL;
    if (ecf8_file_open(path, &f)) fail_msg("%s should open: %s", path, ecf8_last_error());
    return f;
}

#endif
