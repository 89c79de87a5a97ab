/* io.c - file mapping and all-or-nothing output files. */
#define _GNU_SOURCE
#include "io.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int ecf8_map_file(const char *path, ecf8_mapped *out)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ecf8_fail(ECF8_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ecf8_fail(ECF8_ERR_IO, "not a regular file");
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ecf8_fail(ECF8_ERR_IO, "cannot map: %s", strerror(e));
        }
        out->data = p;
        out->size = (size_t)st.st_size;
    }
    close(fd);
    return ECF8_OK;
}

void ecf8_unmap_file(ecf8_mapped *m)
{
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

/* The process's umask, read without changing it (umask(2) can only set it,
 * which would race with files other threads create); 022 where the kernel
 * does not report it. */
static mode_t process_umask(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned mask = 022;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &mask) == 1) break;
    if (f) fclose(f);
    return (mode_t)(mask & 0777);
}

int ecf8_output_check(const char *path, const char *input, bool overwrite)
{
    if (!path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    struct stat out_sb, in_sb;
    if (lstat(path, &out_sb) != 0) return ECF8_OK; /* absent, or creating it will say why */
    if (!S_ISREG(out_sb.st_mode))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a regular file%s", path,
                         S_ISLNK(out_sb.st_mode)   ? " (a symbolic link; ecf8 does not replace links)"
                         : S_ISDIR(out_sb.st_mode) ? " (a directory)"
                                                   : "");
    if (input && stat(input, &in_sb) == 0 && out_sb.st_dev == in_sb.st_dev &&
        out_sb.st_ino == in_sb.st_ino)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: the output would replace the input %s", path, input);
    if (!overwrite) return ecf8_fail(ECF8_ERR_EXISTS, "%s: already exists", path);
    return ECF8_OK;
}

/* "DIR/.ecf8-XXXXXX" for "DIR/NAME": the temporary's name is bounded
 * whatever NAME's length (a 250-byte NAME plus a suffix would not fit the
 * 255-byte limit of a name), and hidden. */
static char *temp_template_for(const char *path)
{
    static const char name[] = ".ecf8-XXXXXX";
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *t = malloc(dir_len + sizeof name);
    if (t) {
        memcpy(t, path, dir_len);
        memcpy(t + dir_len, name, sizeof name);
    }
    return t;
}

int ecf8_outfile_open(ecf8_outfile *o, const char *path, const char *input, bool overwrite)
{
    memset(o, 0, sizeof *o);
    int st = ecf8_output_check(path, input, overwrite);
    if (st) return st;
    o->overwrite = overwrite;
    o->path = strdup(path);
    o->tmp_path = temp_template_for(path);
    if (!o->path || !o->tmp_path) {
        free(o->path);
        free(o->tmp_path);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    int fd = ecf8_temp_create_file(o->tmp_path, &o->temp);
    if (fd < 0) {
        int e = errno;
        free(o->path);
        free(o->tmp_path);
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot create output: %s", path,
                         e == EINTR ? "interrupted" : strerror(e));
    }
    fchmod(fd, 0666 & ~process_umask()); /* mkstemp made it 0600 */
    o->fp = fdopen(fd, "w+b");
    if (!o->fp) {
        close(fd);
        ecf8_outfile_abort(o);
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot open output stream", path);
    }
    setvbuf(o->fp, NULL, _IOFBF, 1 << 20);
    return ECF8_OK;
}

/* A failed write, naming the output (not the input being read: a full disk
 * is the output's problem). */
static int write_failed(ecf8_outfile *o, const char *what, int error)
{
    o->failed = true;
    return ecf8_fail(ECF8_ERR_IO, "%s: %s failed: %s", o->path, what, strerror(error));
}

int ecf8_outfile_write(ecf8_outfile *o, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, o->fp) != n) return write_failed(o, "write", errno);
    o->pos += n;
    return ECF8_OK;
}

int ecf8_outfile_pad_to(ecf8_outfile *o, uint64_t alignment)
{
    static const uint8_t zeros[4096];
    uint64_t pad = ecf8_align_up(o->pos, alignment) - o->pos;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        int st = ecf8_outfile_write(o, zeros, k);
        if (st) return st;
        pad -= k;
    }
    return ECF8_OK;
}

int ecf8_outfile_pwrite(ecf8_outfile *o, const void *data, size_t n, uint64_t offset)
{
    if (fflush(o->fp) != 0) return write_failed(o, "write", errno);
    ssize_t done = pwrite(fileno(o->fp), data, n, (off_t)offset);
    if (done != (ssize_t)n) return write_failed(o, "write", done < 0 ? errno : ENOSPC);
    return ECF8_OK;
}

int ecf8_outfile_finish(ecf8_outfile *o)
{
    int st = ECF8_OK;
    if (fflush(o->fp) != 0 || ferror(o->fp)) st = write_failed(o, "write", errno);
    if (fclose(o->fp) != 0 && !st) st = write_failed(o, "close", errno);
    o->fp = NULL;
    return st;
}

/* Renames the finished temporary to o->path: without overwrite, never
 * over a file that appeared since the open. */
static int put_in_place(const ecf8_outfile *o)
{
#ifdef RENAME_NOREPLACE
    if (!o->overwrite) {
        if (renameat2(AT_FDCWD, o->tmp_path, AT_FDCWD, o->path, RENAME_NOREPLACE) == 0) return ECF8_OK;
        if (errno == EEXIST) return ecf8_fail(ECF8_ERR_EXISTS, "%s: already exists", o->path);
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
            return ecf8_fail(ECF8_ERR_IO, "%s: cannot rename output into place: %s", o->path, strerror(errno));
        /* A file system without NOREPLACE: check again, then rename. */
    }
#endif
    int st = ecf8_output_check(o->path, NULL, o->overwrite);
    if (st) return st;
    if (rename(o->tmp_path, o->path) != 0)
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot rename output into place: %s", o->path, strerror(errno));
    return ECF8_OK;
}

int ecf8_outfile_commit(ecf8_outfile *o)
{
    int st = o->fp ? ecf8_outfile_finish(o) : ECF8_OK;
    if (!st) st = put_in_place(o);
    if (st) unlink(o->tmp_path);
    ecf8_temp_release(o->temp);
    free(o->path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
    return st;
}

void ecf8_outfile_abort(ecf8_outfile *o)
{
    if (o->fp) fclose(o->fp);
    if (o->tmp_path) unlink(o->tmp_path);
    ecf8_temp_release(o->temp);
    free(o->path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}
