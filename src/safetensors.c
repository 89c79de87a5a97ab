/* safetensors.c - validating safetensors reader (header parsed with cJSON). */
#include "safetensors.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <unistd.h>
#include <stdlib.h>

/* Larger headers are refused, as the reference implementation does. */
#define MAX_HEADER_BYTES (100u << 20)

static unsigned element_bytes(const char *dtype)
{
    static const struct { const char *name; unsigned bytes; } table[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
        {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4},
        {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}, {"C64", 8},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(dtype, table[i].name)) return table[i].bytes;
    return 0;
}

static bool json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* ---- a JSON syntax check that allocates nothing ---------------------------
 * cJSON returns NULL both for text that is not JSON and when an allocation
 * fails; this tells the two apart after a failed parse.  It accepts strict
 * JSON only, within limits cJSON parses (nesting, number length), so what
 * it accepts cJSON takes too unless memory runs out: at worst a header
 * cJSON had no memory for is still called "not a JSON object". */
#define JSON_MAX_DEPTH 1000 /* CJSON_NESTING_LIMIT */

typedef struct json_cursor {
    const unsigned char *p, *end;
} json_cursor;

static void json_skip_space(json_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool json_literal(json_cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return false;
    c->p += n;
    return true;
}

static bool json_string(json_cursor *c)
{
    if (c->p >= c->end || *c->p++ != '"') return false;
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        if (ch == '"') return true;
        if (ch < 0x20) return false;
        if (ch != '\\') continue;
        if (c->p >= c->end) return false;
        ch = *c->p++;
        if (ch == 'u') {
            /* Surrogates need pairing rules cJSON checks: not accepted. */
            if (c->end - c->p < 4) return false;
            unsigned v = 0;
            for (int k = 0; k < 4; k++) {
                unsigned char h = *c->p++;
                unsigned d = h >= '0' && h <= '9' ? h - '0' : (h | 0x20) >= 'a' && (h | 0x20) <= 'f' ? (h | 0x20) - 'a' + 10 : 16;
                if (d > 15) return false;
                v = v << 4 | d;
            }
            if (v >= 0xd800 && v <= 0xdfff) return false;
        } else if (!strchr("\"\\/bfnrt", ch) || !ch) {
            return false;
        }
    }
    return false;
}

static bool json_number(json_cursor *c)
{
    const unsigned char *start = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    size_t digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++, digits++;
    if (!digits || (start[*start == '-'] == '0' && digits > 1)) return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++, digits = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++, digits++;
        if (!digits) return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        digits = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++, digits++;
        if (!digits) return false;
    }
    return c->p - start < 64; /* cJSON copies a number into 64 bytes */
}

static bool json_value(json_cursor *c, unsigned depth)
{
    json_skip_space(c);
    if (c->p >= c->end) return false;
    unsigned char open = *c->p;
    if (open == '"') return json_string(c);
    if (open == 't') return json_literal(c, "true");
    if (open == 'f') return json_literal(c, "false");
    if (open == 'n') return json_literal(c, "null");
    if (open != '{' && open != '[') return json_number(c);
    if (depth >= JSON_MAX_DEPTH) return false;
    unsigned char close = open == '{' ? '}' : ']';
    c->p++;
    json_skip_space(c);
    if (c->p < c->end && *c->p == close) return c->p++, true;
    for (;;) {
        if (open == '{') {
            json_skip_space(c);
            if (!json_string(c)) return false;
            json_skip_space(c);
            if (c->p >= c->end || *c->p++ != ':') return false;
        }
        if (!json_value(c, depth + 1)) return false;
        json_skip_space(c);
        if (c->p >= c->end) return false;
        unsigned char next = *c->p++;
        if (next == close) return true;
        if (next != ',') return false;
    }
}

/* Whether a header cJSON did not parse is a JSON object all the same, i.e.
 * the parse ran out of memory. */
static bool json_object_syntax_ok(const uint8_t *text, size_t len)
{
    json_cursor c = {text, text + len};
    json_skip_space(&c);
    return c.p < c.end && *c.p == '{' && json_value(&c, 0);
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->bytes > y->bytes) - (x->bytes < y->bytes); /* empty tensors first */
}

static int parse_tensor(const cJSON *item, uint64_t data_start, uint64_t file_size, st_tensor *t)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' is not an object", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
        cJSON_GetArraySize(offs) != 2)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' lacks dtype, shape or data_offsets", name);
    if (strlen(dtype->valuestring) >= sizeof t->dtype_name)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has an unknown dtype", name);
    t->name = strdup(name);
    if (!t->name) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    strcpy(t->dtype_name, dtype->valuestring);
    t->dtype = ecf8_dtype_from_name(t->dtype_name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > ECF8_MAX_DIMS)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "tensor '%s' has %d dimensions (max %d)", name, nd,
                         ECF8_MAX_DIMS);
    t->ndim = (unsigned)nd;
    t->n_elements = 1;
    for (int d = 0; d < nd; d++) {
        if (!json_u64(cJSON_GetArrayItem(shape, d), &t->shape[d]))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has a bad shape", name);
        if (!ecf8_mul_u64(t->n_elements, t->shape[d], &t->n_elements))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape overflows", name);
    }
    uint64_t begin, end;
    if (!json_u64(cJSON_GetArrayItem(offs, 0), &begin) || !json_u64(cJSON_GetArrayItem(offs, 1), &end) ||
        end < begin)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has bad data_offsets", name);
    if (end > file_size - data_start)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' data ends at %llu, past the end of the file",
                         name, (unsigned long long)(data_start + end));
    t->offset = data_start + begin;
    t->bytes = end - begin;
    unsigned eb = element_bytes(t->dtype_name);
    uint64_t want;
    if (eb == 0 && t->dtype != ECF8_DTYPE_OTHER) eb = ecf8_dtype_size(t->dtype);
    if (eb && (!ecf8_mul_u64(t->n_elements, eb, &want) || want != t->bytes))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape needs %llu bytes, data_offsets give %llu",
                         name, (unsigned long long)(eb ? t->n_elements * eb : 0),
                         (unsigned long long)t->bytes);
    return ECF8_OK;
}

/* ---- the header in two halves at once ----------------------------------------
 * A header of many tensors (11.6 K: 1.4 MB of JSON) takes cJSON a tenth of
 * the time their compression takes on one thread, and it comes before any
 * of it: with more threads, a large header is cut at the member boundary
 * nearest its middle, and each half, closed or opened with a brace, is
 * parsed, its tensors read and its tree freed on a thread of its own.  The
 * halves hold the members of the whole in order, so their tensors and the
 * first error among them are those of the whole; when a half does not
 * parse (the whole is not valid JSON, or memory ran out), the whole is
 * parsed as one and reports what it reports. */
#define SPLIT_HEADER_BYTES (256u << 10)

typedef struct header_part {
    const char *text; /* the JSON to parse */
    size_t len;
    char *copy;       /* text, when it is a half */
    bool closed;      /* the first half: its parse must end at the brace added */
    /* A half must hold a member or more: "{" M1 "}" and "{" M2 "}..." are
     * then the whole "{" M1 "," M2 "}..." and its members in order. */
    cJSON *root;
    size_t first, n;  /* its tensors: out->tensors[first .. first + n) */
    int status;
    char error[512];
} header_part;

typedef struct header_job {
    header_part part[2];
    size_t n_parts;
    st_file *out;
    uint64_t size;
} header_job;

static int parse_part_task(void *ctx, uint64_t i)
{
    header_job *j = ctx;
    header_part *p = &j->part[i];
    const char *end = NULL;
    p->root = cJSON_ParseWithLengthOpts(p->text, p->len, &end, 0);
    if (p->root && (!cJSON_IsObject(p->root) || (p->closed && end != p->text + p->len) ||
                    (p->copy && !p->root->child))) {
        cJSON_Delete(p->root);
        p->root = NULL;
    }
    return ECF8_OK;
}

/* A comma between two members of the top-level object, the first after
 * the middle of text (0: none found).  Only a guess, kept cheap: it follows
 * strings and nesting without checking the syntax; the halves' parses
 * check it (a half that is not an object of one member or more sends the
 * whole to the one parse). */
static size_t header_split_point(const char *text, size_t len)
{
    unsigned depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\') i++;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth-- <= 1) return 0; /* the top-level object ended */
        } else if (ch == ',' && depth == 1 && i >= len / 2) {
            return i;
        }
    }
    return 0;
}

/* Cuts the header into two halves in j (n_parts 2), or leaves it whole. */
static void header_split(header_job *j, const char *text, size_t len, unsigned threads)
{
    j->part[0] = (header_part){.text = text, .len = len};
    j->n_parts = 1;
    if (len < SPLIT_HEADER_BYTES || threads == 1 || (threads == 0 && ecf8_default_threads() < 2)) return;
    size_t comma = header_split_point(text, len);
    if (!comma) return;
    char *a = malloc(comma + 1), *b = malloc(len - comma);
    if (!a || !b) {
        free(a), free(b);
        return;
    }
    memcpy(a, text, comma), a[comma] = '}';                           /* ... "last":{...}} */
    b[0] = '{', memcpy(b + 1, text + comma + 1, len - comma - 1);       /* {"next":{...} ... */
    j->part[0] = (header_part){.text = a, .len = comma + 1, .copy = a, .closed = true};
    j->part[1] = (header_part){.text = b, .len = len - comma, .copy = b};
    j->n_parts = 2;
}

static void header_free(header_job *j)
{
    for (size_t i = 0; i < j->n_parts; i++) {
        cJSON_Delete(j->part[i].root);
        free(j->part[i].copy);
        j->part[i] = (header_part){0};
    }
}

/* The tensors of part i into out->tensors, then its tree freed. */
static int read_part_task(void *ctx, uint64_t i)
{
    header_job *j = ctx;
    header_part *p = &j->part[i];
    int st = ECF8_OK;
    size_t k = p->first;
    for (const cJSON *it = p->root->child; it && !st; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) st = ecf8_fail(ECF8_ERR_CORRUPT, "__metadata__ is not an object");
            continue;
        }
        st = parse_tensor(it, j->out->data_start, j->size, &j->out->tensors[k++]);
    }
    cJSON_Delete(p->root);
    p->root = NULL;
    if (st) snprintf(p->error, sizeof p->error, "%s", ecf8_last_error());
    p->status = st;
    return ECF8_OK;
}

/* Parses the header text into out->tensors (on failure, the error). */
static int parse_header(st_file *out, const char *text, size_t len, uint64_t size, unsigned threads)
{
    header_job j = {.out = out, .size = size};
    header_split(&j, text, len, threads);
    int st = ecf8_parallel_for(threads, j.n_parts, parse_part_task, &j);
    if (!st && j.n_parts == 2 && (!j.part[0].root || !j.part[1].root)) {
        header_free(&j); /* the whole tells what is wrong */
        j.part[0] = (header_part){.text = text, .len = len};
        j.n_parts = 1;
        parse_part_task(&j, 0);
    }
    if (!st && !j.part[0].root) {
        if (json_object_syntax_ok((const uint8_t *)text, len))
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory parsing the %llu-byte header", (unsigned long long)len);
        else
            st = ecf8_fail(ECF8_ERR_CORRUPT, "header is not a JSON object");
    }
    size_t n = 0;
    for (size_t i = 0; i < j.n_parts && !st; i++) {
        j.part[i].first = n;
        for (const cJSON *it = j.part[i].root->child; it; it = it->next)
            if (strcmp(it->string, "__metadata__")) n++;
    }
    if (!st && !(out->tensors = calloc(n ? n : 1, sizeof(st_tensor))))
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) {
        out->n_tensors = n; /* names not set are NULL: ecf8_st_close frees them all */
        st = ecf8_parallel_for(threads, j.n_parts, read_part_task, &j);
    }
    for (size_t i = 0; i < j.n_parts && !st; i++)
        if (j.part[i].status) st = ecf8_fail(j.part[i].status, "%s", j.part[i].error);
    header_free(&j);
    return st;
}

int ecf8_st_open(const char *path, st_file *out) { return ecf8_st_open_threads(path, 1, out); }

int ecf8_st_open_threads(const char *path, unsigned threads, st_file *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int st = ecf8_open_regular_file(path, &out->fd, &out->opened);
    if (st) return st;
    if (ecf8_test_hook_before_read) ecf8_test_hook_before_read(out->fd, path);
    uint64_t size = out->size = (uint64_t)out->opened.st_size;
    uint8_t first[8];
    size_t got;
    if ((st = ecf8_read_at(out->fd, first, sizeof first, 0, &got))) goto fail;
    if (got < size && got < sizeof first) {
        st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
        goto fail;
    }
    if (ecf8_has_container_magic(first, got)) {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "is already an ecf8 container, not a safetensors file");
        goto fail;
    }
    if (size < 8) {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "too short for a safetensors file (%llu bytes)",
                       (unsigned long long)size);
        goto fail;
    }
    uint64_t hlen = ecf8_load_le64(first);
    if (hlen > size - 8 || hlen > MAX_HEADER_BYTES) {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "header length %llu runs past the end of the file",
                       (unsigned long long)hlen);
        goto fail;
    }
    out->data_start = 8 + hlen;
    if (!(out->prefix = malloc(out->data_start))) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory for a %llu-byte header", (unsigned long long)hlen);
        goto fail;
    }
    if ((st = ecf8_read_at(out->fd, out->prefix, out->data_start, 0, &got))) goto fail;
    if (got < out->data_start) {
        st = ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
        goto fail;
    }
    if ((st = parse_header(out, (const char *)out->prefix + 8, (size_t)hlen, size, threads))) goto fail;
    qsort(out->tensors, out->n_tensors, sizeof(st_tensor), cmp_offset);
    /* The tensors must tile the data area exactly: no gap, no overlap. */
    uint64_t pos = out->data_start;
    for (size_t i = 0; i < out->n_tensors; i++) {
        const st_tensor *t = &out->tensors[i];
        if (t->offset != pos) {
            st = ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' data %s the previous tensor's", t->name,
                           t->offset < pos ? "overlaps" : "leaves a gap after");
            goto fail;
        }
        pos += t->bytes;
    }
    if (pos != size) {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "%llu bytes after the last tensor",
                       (unsigned long long)(size - pos));
        goto fail;
    }
    return ECF8_OK;
fail:
    ecf8_st_close(out);
    return st;
}

int ecf8_st_read_tensor(st_file *f, const st_tensor *t, const uint8_t **data)
{
    size_t need = t->bytes ? (size_t)t->bytes : 1;
    if (t->bytes > SIZE_MAX / 2)
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for tensor '%s'", t->name);
    if (need > f->tensor_capacity) {
        /* Grows to the largest tensor and is reused: its pages are
         * faulted in once, not for every tensor. */
        free(f->tensor_bytes);
        f->tensor_capacity = 0;
        if (!(f->tensor_bytes = malloc(need)))
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory for tensor '%s' (%llu bytes)", t->name,
                             (unsigned long long)t->bytes);
        f->tensor_capacity = need;
    }
    size_t got;
    int st = ecf8_read_at(f->fd, f->tensor_bytes, (size_t)t->bytes, t->offset, &got);
    if (st) return st;
    if (got < t->bytes) return ecf8_fail(ECF8_ERR_IO, "file shrank while being read");
    *data = f->tensor_bytes;
    return ECF8_OK;
}

int ecf8_st_check_unchanged(const st_file *f)
{
    struct stat now;
    if (fstat(f->fd, &now) != 0) return ecf8_fail(ECF8_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!ecf8_same_file_version(&f->opened, &now))
        return ecf8_fail(ECF8_ERR_IO, "input changed while being read");
    return ECF8_OK;
}

void ecf8_st_close(st_file *f)
{
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->prefix);
    free(f->tensor_bytes);
    if (f->fd >= 0) close(f->fd);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

void ecf8_st_tensor_view(const st_tensor *t, uint64_t *rows, uint64_t *cols)
{
    *rows = t->ndim >= 2 ? t->shape[0] : 1;
    *cols = *rows ? t->n_elements / *rows : 0;
    if (t->ndim < 2) *cols = t->n_elements;
}
