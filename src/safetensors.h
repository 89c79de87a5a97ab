/* safetensors.h - a validating reader of the safetensors format:
 * u64 LE header length, a JSON header, then the tensors' bytes. */
#ifndef ECF8_SAFETENSORS_H
#define ECF8_SAFETENSORS_H

#include "ecf8.h"
#include "io.h"

typedef struct st_tensor {
    char *name;
    char dtype_name[16];
    ecf8_dtype dtype;
    unsigned ndim;
    uint64_t shape[ECF8_MAX_DIMS];
    uint64_t n_elements;
    uint64_t offset; /* absolute offset in the file */
    uint64_t bytes;
} st_tensor;

typedef struct st_file {
    ecf8_file_copy bytes;
    uint64_t data_start; /* 8 + header length */
    st_tensor *tensors;  /* sorted by offset; they tile [data_start, size) */
    size_t n_tensors;
} st_file;

/* Maps and validates path; on failure the detail is in ecf8_last_error(). */
int ecf8_st_open(const char *path, st_file *out);
void ecf8_st_close(st_file *f);
/* The 2-D view the codec uses: rows = shape[0], cols = the rest. */
void ecf8_st_tensor_view(const st_tensor *t, uint64_t *rows, uint64_t *cols);

#endif
