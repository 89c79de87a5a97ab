/* model_file.c - see embed.h.  The safetensors reader maps the file and
 * parses its JSON header with cJSON (the library's own dependency). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strdup, mmap */
#include "embed.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct model_file {
    ecf8_file *container;
    /* safetensors */
    unsigned char *map;
    size_t size, data_start;
    cJSON *header;
    char error[300]; /* what model_file_find found wrong */
};

static int safetensors_open(model_file *f, int fd, char *err, size_t err_size)
{
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 8) {
        snprintf(err, err_size, "not a safetensors file (too short)");
        return -1;
    }
    f->size = (size_t)st.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        snprintf(err, err_size, "cannot map: %s", strerror(errno));
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > f->size - 8) {
        snprintf(err, err_size, "safetensors header runs past the end of the file");
        return -1;
    }
    f->data_start = 8 + (size_t)hlen;
    f->header = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)hlen);
    if (!cJSON_IsObject(f->header)) {
        snprintf(err, err_size, "safetensors header is not a JSON object");
        return -1;
    }
    return 0;
}

model_file *model_file_open(const char *path, char *err, size_t err_size)
{
    model_file *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        free(f);
        return NULL;
    }
    unsigned char head[9] = {0};
    ssize_t got = read(fd, head, sizeof head);
    int rc;
    if (got == (ssize_t)sizeof head && head[8] == '{') {
        rc = safetensors_open(f, fd, err, err_size);
    } else {
        rc = ecf8_file_open(path, &f->container);
        if (rc) snprintf(err, err_size, "neither safetensors nor .ecf8: %s", ecf8_last_error());
    }
    close(fd);
    if (rc) {
        model_file_close(f);
        return NULL;
    }
    return f;
}

void model_file_close(model_file *f)
{
    if (!f) return;
    ecf8_file_close(f->container);
    if (f->map) munmap(f->map, f->size);
    cJSON_Delete(f->header);
    free(f);
}

static int corrupt(model_file *f, const char *name, const char *what)
{
    snprintf(f->error, sizeof f->error, "safetensors tensor '%s': %s", name, what);
    return ECF8_ERR_CORRUPT;
}

const char *model_file_error(const model_file *f) { return f->error; }

int model_file_find(model_file *f, const char *name, ecf8_tensor_info *out)
{
    if (f->container) {
        size_t i;
        int rc = ecf8_file_find(f->container, name, &i);
        if (!rc) rc = ecf8_file_tensor(f->container, i, out);
        if (rc) snprintf(f->error, sizeof f->error, "tensor '%s': %s", name, ecf8_last_error());
        return rc;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f->header, name);
    if (!t) return ECF8_ERR_NOT_FOUND;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || cJSON_GetArraySize(offs) != 2 ||
        cJSON_GetArraySize(shape) > ECF8_MAX_DIMS)
        return corrupt(f, name, "malformed header entry");
    memset(out, 0, sizeof *out);
    out->name = t->string;
    out->dtype_name = dtype->valuestring;
    out->dtype = ecf8_dtype_from_name(dtype->valuestring);
    out->split = ECF8_SPLIT_STORED;
    out->ndim = (unsigned)cJSON_GetArraySize(shape);
    out->n_elements = 1;
    for (unsigned d = 0; d < out->ndim; d++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, (int)d);
        double v = dim->valuedouble;
        if (!cJSON_IsNumber(dim) || !(v >= 0 && v < 9e15)) return corrupt(f, name, "bad shape");
        out->shape[d] = (uint64_t)v;
        out->n_elements *= out->shape[d];
    }
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, e = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!(b >= 0 && e >= b && e <= (double)(f->size - f->data_start)))
        return corrupt(f, name, "data offsets outside the file");
    out->source_bytes = out->payload_bytes = (uint64_t)e - (uint64_t)b;
    out->payload = f->map + f->data_start + (size_t)b;
    unsigned esize = ecf8_dtype_size(out->dtype);
    if (!strcmp(out->dtype_name, "F32")) esize = 4;
    if (esize && out->n_elements * esize != out->source_bytes)
        return corrupt(f, name, "byte size does not match shape and dtype");
    out->checksum = ecf8_checksum64(out->payload, (size_t)out->source_bytes);
    return ECF8_OK;
}

int model_file_read(model_file *f, const ecf8_tensor_info *t, void *out, size_t out_bytes)
{
    if (out_bytes < t->source_bytes) return ECF8_ERR_ARGUMENT;
    if (f->container) {
        size_t i;
        int rc = ecf8_file_find(f->container, t->name, &i);
        return rc ? rc : ecf8_file_read_tensor(f->container, i, out, out_bytes, 0);
    }
    memcpy(out, t->payload, (size_t)t->source_bytes);
    return ECF8_OK;
}
