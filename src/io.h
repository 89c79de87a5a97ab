/* io.h - file mapping and all-or-nothing output files. */
#ifndef ECF8_IO_H
#define ECF8_IO_H

#include <stdbool.h>
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
 * failed run never leaves a partial file behind.  The temporary is
 * ".ecf8-XXXXXX" beside `path` (hidden, and no longer than that whatever
 * the length of path's own name) and is in the registry below until commit
 * or abort, so a signal handler can remove it.  Every failure of these
 * functions names `path` in its message ("PATH: write failed: ..."), so the
 * callers add no context of their own. */
typedef struct ecf8_temp ecf8_temp;
typedef struct ecf8_outfile {
    FILE *fp;
    char *path;
    char *tmp_path;
    uint64_t pos;
    bool overwrite;              /* an existing regular file at path may be replaced */
    bool failed;                 /* a write failed: the message names path, not the input */
    _Atomic(ecf8_temp *) *temp;  /* the registry entry of tmp_path */
} ecf8_outfile;
/* Whether `path` may become an output: refuses an empty name
 * (ECF8_ERR_ARGUMENT), anything there that is not a regular file (a
 * symbolic link, even to a regular file, since the rename would replace the
 * link; a device, FIFO, socket or directory: ECF8_ERR_ARGUMENT), the file
 * `input` itself (NULL: no check; the rename would replace what is being
 * read) and, unless `overwrite`, an existing regular file
 * (ECF8_ERR_EXISTS).  A path that cannot be looked up passes: creating the
 * temporary then says why. */
int ecf8_output_check(const char *path, const char *input, bool overwrite);
/* ecf8_output_check, then creates the temporary. */
int ecf8_outfile_open(ecf8_outfile *o, const char *path, const char *input, bool overwrite);
int ecf8_outfile_write(ecf8_outfile *o, const void *data, size_t n);
int ecf8_outfile_pad_to(ecf8_outfile *o, uint64_t alignment);
int ecf8_outfile_pwrite(ecf8_outfile *o, const void *data, size_t n, uint64_t offset);
/* Flushes and closes the temporary file without renaming it (commit or
 * abort it later); commit = finish + rename.  Without overwrite the rename
 * refuses a file created at path since the open (renameat2 NOREPLACE where
 * the file system has it); with it, the target is checked again first. */
int ecf8_outfile_finish(ecf8_outfile *o);
int ecf8_outfile_commit(ecf8_outfile *o);
void ecf8_outfile_abort(ecf8_outfile *o);

/* ---- the registry of temporaries (tempfiles.c) ---------------------------
 * ecf8_remove_temporary_files (ecf8.h) removes every entry from a signal
 * handler.  The create functions make the file (mkostemp of a template
 * ending in XXXXXX, returning its descriptor) or the directory (returning
 * 0) and register it in one step that a handler cannot split; -1 with
 * errno set on failure (EINTR once the removal has begun).  Release drops
 * the entry (after the rename, or after removing the file yourself); NULL
 * is a no-op. */
int ecf8_temp_create_file(char *path_template, _Atomic(ecf8_temp *) **slot);
int ecf8_temp_create_dir(const char *path, _Atomic(ecf8_temp *) **slot);
void ecf8_temp_release(_Atomic(ecf8_temp *) *slot);

#endif
