/* io.h - file mapping and all-or-nothing output files. */
#ifndef ECF8_IO_H
#define ECF8_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A read-only mapping of a whole file (data NULL and size 0 when empty). */
typedef struct ecf8_mapped {
    const uint8_t *data;
    size_t size;
} ecf8_mapped;
int ecf8_map_file(const char *path, ecf8_mapped *out);
void ecf8_unmap_file(ecf8_mapped *m);

/* Output written under a temporary name in the destination directory and
 * renamed over `path` by commit; abort (or any failure) removes it, so a
 * failed run never leaves a partial file behind. */
typedef struct ecf8_outfile {
    FILE *fp;
    char *path;
    char *tmp_path;
    uint64_t pos;
} ecf8_outfile;
/* Refuses (ECF8_ERR_ARGUMENT) a `path` that names the file `input` (NULL:
 * no check): the rename at commit would replace what is being read. */
int ecf8_outfile_open(ecf8_outfile *o, const char *path, const char *input);
int ecf8_outfile_write(ecf8_outfile *o, const void *data, size_t n);
int ecf8_outfile_pad_to(ecf8_outfile *o, uint64_t alignment);
int ecf8_outfile_pwrite(ecf8_outfile *o, const void *data, size_t n, uint64_t offset);
/* Flushes and closes the temporary file without renaming it (commit or
 * abort it later); commit = finish + rename. */
int ecf8_outfile_finish(ecf8_outfile *o);
int ecf8_outfile_commit(ecf8_outfile *o);
void ecf8_outfile_abort(ecf8_outfile *o);

#endif
