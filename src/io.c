/* io.c - input files read into private memory, and all-or-nothing output
 * files. */
#define _GNU_SOURCE
#include "io.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void (*ecf8_test_hook_before_read)(int fd, const char *path);

int ecf8_open_regular_file(const char *path, int *fd_out, struct stat *sb)
{
    *fd_out = -1;
    /* O_NONBLOCK: open() of a FIFO with no writer would block forever. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ecf8_fail(ECF8_ERR_IO, "cannot open: %s", strerror(errno));
    int st = ECF8_OK;
    int flags;
    if (fstat(fd, sb) != 0)
        st = ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb->st_mode))
        st = ecf8_fail(ECF8_ERR_IO, S_ISDIR(sb->st_mode) ? "is a directory" : "not a regular file");
    else if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        st = ecf8_fail(ECF8_ERR_IO, "cannot read: %s", strerror(errno));
    if (st) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return ECF8_OK;
}

bool ecf8_same_file_version(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int ecf8_read_at(int fd, void *dst, size_t n, uint64_t offset, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > ((size_t)1 << 30) ? (size_t)1 << 30 : n - done;
        ssize_t k = pread(fd, (uint8_t *)dst + done, want, (off_t)(offset + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *got = done;
            return ecf8_fail(ECF8_ERR_IO, "read failed: %s", strerror(errno));
        }
        if (k == 0) break;
        done += (size_t)k;
    }
    *got = done;
    return ECF8_OK;
}

int ecf8_file_copy_read(const char *path, ecf8_file_copy *out)
{
    out->data = NULL;
    out->size = 0;
    struct stat before, after;
    int fd;
    int st = ecf8_open_regular_file(path, &fd, &before);
    if (st) return st;
    if (ecf8_test_hook_before_read) ecf8_test_hook_before_read(fd, path);
    uint8_t *data = NULL;
    size_t size = (size_t)before.st_size, got = 0;
    if ((uint64_t)before.st_size > SIZE_MAX / 2) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte file", (unsigned long long)before.st_size);
    } else if (size > 0) {
        /* Page-aligned, as a mapping was: payloads keep the 64-byte
         * alignment the format gives them.  (Huge pages would save the
         * faults on the copy, but asking for them made a 240 MB compress
         * spend 0.5-0.9 s more in the kernel compacting memory.) */
        if (posix_memalign((void **)&data, 4096, size) != 0)
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %zu-byte file", size);
        else if (!(st = ecf8_read_at(fd, data, size, 0, &got)) && got < size)
            st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read (%zu of %zu bytes read)", got, size);
    }
    if (!st && fstat(fd, &after) != 0) st = ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!st && after.st_size < before.st_size)
        st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    else if (!st && !ecf8_same_file_version(&before, &after))
        st = ecf8_fail(ECF8_ERR_IO, "input changed while being read");
    close(fd);
    if (st) {
        free(data);
        return st;
    }
    out->data = data;
    out->size = size;
    return ECF8_OK;
}

void ecf8_file_copy_free(ecf8_file_copy *copy)
{
    free((void *)copy->data);
    copy->data = NULL;
    copy->size = 0;
}

/* The process's umask, read without changing it (umask(2) can only set it,
 * which would race with files other threads create); 022 where the kernel
 * does not report it. */
mode_t ecf8_process_umask(void)
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

#define OUTFILE_BUFFER_BYTES (1u << 20)

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
    fchmod(fd, 0666 & ~ecf8_process_umask()); /* mkstemp made it 0600 */
    o->fp = fdopen(fd, "w+b");
    if (!o->fp) {
        close(fd);
        ecf8_outfile_abort(o);
        return ecf8_fail(ECF8_ERR_IO, "%s: cannot open output stream", path);
    }
    /* A buffer of our own: given none, glibc ignores the size and buffers
     * st_blksize bytes, a write(2) per 4 KiB (4,274 of them for a
     * checkpoint of 11.6 K small tensors, a tenth of its compress time). */
    if ((o->buf = malloc(OUTFILE_BUFFER_BYTES))) setvbuf(o->fp, o->buf, _IOFBF, OUTFILE_BUFFER_BYTES);
    return ECF8_OK;
}

/* A failed write, naming the output (not the input being read: a full disk
 * is the output's problem). */
static int write_failed(ecf8_outfile *o, const char *what, int error)
{
    o->failed = true;
    return ecf8_fail(ECF8_ERR_IO, "%s: %s failed: %s", o->path, what, strerror(error));
}

/* Every WRITEBACK_BYTES written, the disk is asked to start writing them
 * (Linux sync_file_range, which does not wait): the fsync before the rename
 * then waits for the last few MiB, not for the whole file (a 30 MB
 * container: 29 ms of a 0.25 s compress). */
#define WRITEBACK_BYTES (8u << 20)

int ecf8_outfile_writeback(ecf8_outfile *o)
{
    if (fflush(o->fp) != 0) return write_failed(o, "write", errno);
#ifdef SYNC_FILE_RANGE_WRITE
    if (o->pos > o->written_back)
        (void)sync_file_range(fileno(o->fp), (off_t)o->written_back, (off_t)(o->pos - o->written_back),
                              SYNC_FILE_RANGE_WRITE); /* a hint: the fsync still checks */
#endif
    o->written_back = o->pos;
    return ECF8_OK;
}

int ecf8_outfile_write(ecf8_outfile *o, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, o->fp) != n) return write_failed(o, "write", errno);
    o->pos += n;
    return o->pos - o->written_back >= WRITEBACK_BYTES ? ecf8_outfile_writeback(o) : ECF8_OK;
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
    /* On disk before it is renamed into place, so that a crash leaves the
     * old file or the whole new one, never a renamed empty one.  (EINVAL:
     * a file that cannot be synced, e.g. a pipe.) */
    if (!st && fsync(fileno(o->fp)) != 0 && errno != EINVAL) st = write_failed(o, "sync", errno);
    if (fclose(o->fp) != 0 && !st) st = write_failed(o, "close", errno);
    o->fp = NULL;
    free(o->buf);
    o->buf = NULL;
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

/* The directory entry of a rename made durable too (best effort: a
 * directory that cannot be opened or synced keeps the rename anyway). */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int ecf8_outfile_commit(ecf8_outfile *o)
{
    int st = o->fp ? ecf8_outfile_finish(o) : ECF8_OK;
    if (!st) st = put_in_place(o);
    if (!st) sync_parent(o->path);
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
    free(o->buf);
    if (o->tmp_path) unlink(o->tmp_path);
    ecf8_temp_release(o->temp);
    free(o->path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}
