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

/* An open safetensors file: its header read and validated, its tensors'
 * bytes left in the file and read one at a time (ecf8_st_read_tensor) into
 * a private buffer, so a file truncated meanwhile is an error, not a
 * SIGBUS, and the bytes the encoder works on cannot change under it. */
typedef struct st_file {
    int fd;
    struct stat opened;  /* the file's version when opened */
    uint64_t size;       /* the file's size then */
    uint8_t *prefix;     /* the first data_start bytes: header length and JSON */
    uint64_t data_start; /* 8 + header length */
    st_tensor *tensors;  /* sorted by offset; they tile [data_start, size) */
    size_t n_tensors;
    uint8_t *tensor_bytes; /* the tensor read last */
    size_t tensor_capacity;
} st_file;

/* Opens and validates path; on failure the detail is in ecf8_last_error(). */
int ecf8_st_open(const char *path, st_file *out);
/* The same, a header of 256 KiB or more parsed in two halves on two of
 * `threads` (0: one per core) when there are two. */
int ecf8_st_open_threads(const char *path, unsigned threads, st_file *out);
/* The header size from which ecf8_st_open_threads parses in halves (0: the
 * default, 256 KiB): fuzzers and tests lower it to reach that path with
 * small inputs.  Process-wide; not for use while a file is being opened. */
void ecf8_st_set_split_bytes(size_t bytes);
/* Reads tensor t's bytes; *data stays valid until the next read or close. */
int ecf8_st_read_tensor(st_file *f, const st_tensor *t, const uint8_t **data);
/* After the tensors were read: ECF8_ERR_IO "input changed while being
 * read" when the file's size, mtime or ctime differ from the open's. */
int ecf8_st_check_unchanged(const st_file *f);
void ecf8_st_close(st_file *f);
/* The 2-D view the codec uses: rows = shape[0], cols = the rest. */
void ecf8_st_tensor_view(const st_tensor *t, uint64_t *rows, uint64_t *cols);

#endif
