/* io.c - file mapping and all-or-nothing output files. */
#define _GNU_SOURCE
#include "io.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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

int ecf8_outfile_open(ecf8_outfile *o, const char *path, const char *input)
{
    memset(o, 0, sizeof *o);
    struct stat out_sb, in_sb;
    if (input && stat(path, &out_sb) == 0 && stat(input, &in_sb) == 0 &&
        out_sb.st_dev == in_sb.st_dev && out_sb.st_ino == in_sb.st_ino)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "the output would replace the input %s", input);
    size_t n = strlen(path);
    o->path = strdup(path);
    o->tmp_path = malloc(n + 16);
    if (!o->path || !o->tmp_path) {
        free(o->path);
        free(o->tmp_path);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    memcpy(o->tmp_path, path, n);
    memcpy(o->tmp_path + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(o->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(o->path);
        free(o->tmp_path);
        return ecf8_fail(ECF8_ERR_IO, "cannot create output: %s", strerror(e));
    }
    fchmod(fd, 0666 & ~process_umask()); /* mkstemp made it 0600 */
    o->fp = fdopen(fd, "w+b");
    if (!o->fp) {
        close(fd);
        unlink(o->tmp_path);
        free(o->path);
        free(o->tmp_path);
        return ecf8_fail(ECF8_ERR_IO, "cannot open output stream");
    }
    setvbuf(o->fp, NULL, _IOFBF, 1 << 20);
    return ECF8_OK;
}

int ecf8_outfile_write(ecf8_outfile *o, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, o->fp) != n)
        return ecf8_fail(ECF8_ERR_IO, "write failed: %s", strerror(errno));
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
    if (fflush(o->fp) != 0 || pwrite(fileno(o->fp), data, n, (off_t)offset) != (ssize_t)n)
        return ecf8_fail(ECF8_ERR_IO, "write failed: %s", strerror(errno));
    return ECF8_OK;
}

int ecf8_outfile_finish(ecf8_outfile *o)
{
    int st = ECF8_OK;
    if (fflush(o->fp) != 0 || ferror(o->fp))
        st = ecf8_fail(ECF8_ERR_IO, "write failed: %s", strerror(errno));
    if (fclose(o->fp) != 0 && !st) st = ecf8_fail(ECF8_ERR_IO, "close failed: %s", strerror(errno));
    o->fp = NULL;
    return st;
}

int ecf8_outfile_commit(ecf8_outfile *o)
{
    int st = o->fp ? ecf8_outfile_finish(o) : ECF8_OK;
    if (!st && rename(o->tmp_path, o->path) != 0)
        st = ecf8_fail(ECF8_ERR_IO, "cannot rename output into place: %s", strerror(errno));
    if (st) unlink(o->tmp_path);
    free(o->path);
    free(o->tmp_path);
    o->path = o->tmp_path = NULL;
    return st;
}

void ecf8_outfile_abort(ecf8_outfile *o)
{
    if (o->fp) fclose(o->fp);
    if (o->tmp_path) unlink(o->tmp_path);
    free(o->path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}
