/* io.h - input files read into private memory, and all-or-nothing output
 * files. */
#ifndef ECF8_IO_H
#define ECF8_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

/* A whole input file copied into private memory (data NULL and size 0 when
 * empty; otherwise page-aligned).  Inputs are read, not mapped: a mapped
 * file that another process truncates raises SIGBUS on the next access, and
 * one it rewrites changes under the encoder between its passes.  A copy is
 * the bytes as they were read, checked to be one version of the file. */
typedef struct ecf8_file_copy {
    const uint8_t *data;
    size_t size;
} ecf8_file_copy;
/* Reads a regular file (ECF8_ERR_IO "not a regular file" for a FIFO, a
 * device or a directory, without blocking on it); ECF8_ERR_IO "file shrank
 * while being read" or "input changed while being read" when its size,
 * mtime or ctime change between the stat before and the one after the
 * reads; ECF8_ERR_NOMEM when the copy does not fit in memory. */
int ecf8_file_copy_read(const char *path, ecf8_file_copy *out);
void ecf8_file_copy_free(ecf8_file_copy *copy);
/* Opens path for reading without blocking and checks that it is a regular
 * file (a FIFO would block open() and read() until a writer comes); *sb
 * receives its fstat and *fd the descriptor, blocking again (-1 on failure). */
int ecf8_open_regular_file(const char *path, int *fd, struct stat *sb);

/* n bytes at offset in pieces (read() moves at most about 2 GiB at a
 * time); *got is what was read, less than n only at the end of the file. */
int ecf8_read_at(int fd, void *dst, size_t n, uint64_t offset, size_t *got);
/* Whether two fstats of a file show the same version of it: size, mtime
 * and ctime (nanoseconds) alike. */
bool ecf8_same_file_version(const struct stat *a, const struct stat *b);

/* Test hook, NULL in normal use: called by ecf8_file_copy_read after its
 * first fstat and before reading, so a test can change the file at exactly
 * that point instead of racing a writer. */
extern void (*ecf8_test_hook_before_read)(int fd, const char *path);

/* The process's umask, read without changing it (umask(2) can only set
 * it, which would race with files other threads create). */
mode_t ecf8_process_umask(void);

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
    char *buf;                   /* fp's buffer (freed once fp is closed) */
    char *path;
    char *tmp_path;
    uint64_t pos;
    uint64_t written_back;       /* bytes before it handed to the disk early (sync_file_range) */
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
/* Asks the disk to start writing what was written so far, without waiting
 * (done every 8 MiB anyway): the fsync before the rename then waits only
 * for what comes after. */
int ecf8_outfile_writeback(ecf8_outfile *o);
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
/* mkdtemp of a template ending in XXXXXX, registered (returns 0). */
int ecf8_temp_create_temp_dir(char *path_template, _Atomic(ecf8_temp *) **slot);
/* Registers a file path without creating it: a file that will appear there
 * (renamed into a staged directory) is removed with the temporaries. */
int ecf8_temp_register_file(const char *path, _Atomic(ecf8_temp *) **slot);
void ecf8_temp_release(_Atomic(ecf8_temp *) *slot);

#endif
