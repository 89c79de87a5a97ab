/* safetensors.c - validating safetensors reader (its JSON header read in one pass). */
#include "safetensors.h"
#include "internal.h"

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

/* ---- the header, read in one pass -------------------------------------------
 * A safetensors header is a JSON object whose members are tensor objects
 * {"dtype", "shape", "data_offsets"} and one "__metadata__" object.  It is
 * read here in one pass that builds no tree: cJSON took 16 ms (and 100
 * bytes a value) for the 1.4 MB header of 11.6 K tensors, a tenth of the
 * time their compression takes, all of it before the first tensor.
 *
 * The grammar is strict JSON (RFC 8259), nesting limited to 1000 levels as
 * cJSON limits it, and with cJSON's two leniencies that headers in the
 * wild rely on: bytes after the top-level object are ignored (writers pad
 * the header) and raw bytes in strings are taken as they are.  A syntax
 * error anywhere makes the whole header "not a JSON object", ahead of any
 * error in a tensor; of those, the first in the header's order is told. */
#define JSON_MAX_DEPTH 1000

typedef struct json_cursor {
    const unsigned char *p, *end;
} json_cursor;

/* A string as it is in the text, between its quotes. */
typedef struct json_str {
    const unsigned char *raw;
    size_t raw_len;
    bool escaped; /* holds a backslash: decode before use */
} json_str;

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

static unsigned json_hex4(const unsigned char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char h = p[k], l = h | 0x20;
        unsigned d = h >= '0' && h <= '9' ? h - (unsigned)'0' : l >= 'a' && l <= 'f' ? l - (unsigned)'a' + 10 : 16;
        if (d > 15) return 0x10000; /* not hex */
        v = v << 4 | d;
    }
    return v;
}

/* Scans a string, its escapes checked (a \u surrogate must pair as UTF-16
 * pairs them), so that decoding it cannot fail. */
static bool json_string_scan(json_cursor *c, json_str *s)
{
    if (c->p >= c->end || *c->p != '"') return false;
    const unsigned char *start = ++c->p;
    /* Most strings (names, dtypes) hold no escape: two memchr find the end. */
    const unsigned char *quote = memchr(start, '"', (size_t)(c->end - start));
    if (quote && !memchr(start, '\\', (size_t)(quote - start))) {
        *s = (json_str){start, (size_t)(quote - start), false};
        c->p = quote + 1;
        return true;
    }
    bool escaped = false;
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        if (ch == '"') {
            *s = (json_str){start, (size_t)(c->p - 1 - start), escaped};
            return true;
        }
        if (ch != '\\') continue;
        escaped = true;
        if (c->p >= c->end) return false;
        ch = *c->p++;
        if (ch != 'u') {
            if (!memchr("\"\\/bfnrt", ch, 8)) return false;
            continue;
        }
        if (c->end - c->p < 4) return false;
        unsigned v = json_hex4(c->p);
        c->p += 4;
        if (v > 0xffff || (v >= 0xdc00 && v <= 0xdfff)) return false;
        if (v >= 0xd800 && v <= 0xdbff) { /* a high surrogate: a low one must follow */
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u') return false;
            unsigned lo = json_hex4(c->p + 2);
            if (lo < 0xdc00 || lo > 0xdfff) return false;
            c->p += 6;
        }
    }
    return false;
}

/* Decodes a scanned string into out (room for raw_len + 1 bytes: a decoded
 * string is never longer than its text); returns its length. */
static size_t json_string_decode(const json_str *s, char *out)
{
    if (!s->escaped) {
        memcpy(out, s->raw, s->raw_len);
        out[s->raw_len] = 0;
        return s->raw_len;
    }
    size_t n = 0;
    for (const unsigned char *p = s->raw, *end = s->raw + s->raw_len; p < end;) {
        if (*p != '\\') {
            out[n++] = (char)*p++;
            continue;
        }
        unsigned char e = p[1];
        p += 2;
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            out[n++] = to[strchr(from, e) - from];
            continue;
        }
        uint32_t cp = json_hex4(p);
        p += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (json_hex4(p + 2) - 0xdc00);
            p += 6;
        }
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else if (cp < 0x800) {
            out[n++] = (char)(0xc0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out[n++] = (char)(0xe0 | cp >> 12);
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
            out[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[n++] = (char)(0xf0 | cp >> 18);
            out[n++] = (char)(0x80 | (cp >> 12 & 0x3f));
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
            out[n++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    out[n] = 0;
    return n;
}

/* Whether a scanned string decodes to the n bytes of word (a key of a few
 * bytes; six text bytes at most per decoded byte). */
static bool json_str_is_n(const json_str *s, const char *word, size_t n)
{
    if (!s->escaped) return s->raw_len == n && !memcmp(s->raw, word, n);
    char buf[128];
    if (s->raw_len >= sizeof buf) return false;
    return json_string_decode(s, buf) == n && !memcmp(buf, word, n);
}
#define json_str_is(s, literal) json_str_is_n(s, literal, sizeof literal - 1)

/* A number.  *whole tells whether its value is a whole number in
 * [0, 2^53], computed exactly (cJSON's double also took "4.0", "4e0" and
 * "-0"), and *value holds it then. */
static bool json_number(json_cursor *c, bool *whole, uint64_t *value)
{
    const uint64_t limit = 1ull << 53;
    /* The usual case first: a non-negative integer of up to 15 digits. */
    const unsigned char *p = c->p;
    uint64_t v = 0;
    if (p < c->end && *p >= '1' && *p <= '9') {
        for (; p < c->end && *p >= '0' && *p <= '9' && p - c->p < 15; p++) v = v * 10 + (uint64_t)(*p - '0');
    } else if (p < c->end && *p == '0') {
        p++;
    }
    if (p > c->p && (p == c->end || (*p != '.' && *p != 'e' && *p != 'E' && (*p < '0' || *p > '9')))) {
        c->p = p;
        *whole = true, *value = v;
        return true;
    }
    bool negative = false, big = false;
    uint64_t mantissa = 0;
    int64_t e10 = 0;        /* value = mantissa * 10^e10 (+ the exponent) */
    uint64_t zeros = 0;     /* zero digits not yet in the mantissa */
    if (c->p < c->end && *c->p == '-') c->p++, negative = true;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
    bool leading_zero = *c->p == '0';
    for (int part = 0; part < 2; part++) { /* the integer part, then the fraction */
        if (part == 1) {
            if (c->p >= c->end || *c->p != '.') break;
            c->p++;
            if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        }
        size_t digits = 0;
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++) {
            unsigned d = *c->p - '0';
            if (part == 1) e10--;
            if (d == 0) {
                if (mantissa) zeros++; /* a leading zero adds nothing */
                continue;
            }
            for (; zeros && !big; zeros--) big = mantissa > limit / 10 || (mantissa *= 10, false);
            zeros = 0;
            big = big || mantissa > (limit - d) / 10;
            if (!big) mantissa = mantissa * 10 + d;
        }
        if (part == 0 && leading_zero && digits > 1) return false;
    }
    e10 += (int64_t)zeros; /* trailing zeros: the mantissa's last digit is not 0 */
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        bool down = false;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) down = *c->p++ == '-';
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        int64_t exp = 0;
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++)
            if (exp < 100000) exp = exp * 10 + (*c->p - '0');
        e10 += down ? -exp : exp;
    }
    *whole = false;
    if (!big && !mantissa) { /* zero, whatever its sign and exponent */
        *whole = true, *value = 0;
    } else if (!big && !negative && e10 >= 0) {
        /* mantissa's last digit is not 0: a negative e10 leaves a fraction */
        for (; e10 > 0 && mantissa <= limit / 10; e10--) mantissa *= 10;
        if (!e10) *whole = true, *value = mantissa;
    }
    return true;
}

static bool json_skip_value(json_cursor *c, unsigned depth)
{
    json_skip_space(c);
    if (c->p >= c->end) return false;
    unsigned char open = *c->p;
    json_str s;
    bool whole;
    uint64_t v;
    if (open == '"') return json_string_scan(c, &s);
    if (open == 't') return json_literal(c, "true");
    if (open == 'f') return json_literal(c, "false");
    if (open == 'n') return json_literal(c, "null");
    if (open != '{' && open != '[') return json_number(c, &whole, &v);
    if (depth >= JSON_MAX_DEPTH) return false;
    unsigned char close = open == '{' ? '}' : ']';
    c->p++;
    json_skip_space(c);
    if (c->p < c->end && *c->p == close) return c->p++, true;
    for (;;) {
        if (open == '{') {
            json_skip_space(c);
            if (!json_string_scan(c, &s)) return false;
            json_skip_space(c);
            if (c->p >= c->end || *c->p++ != ':') return false;
        }
        if (!json_skip_value(c, depth + 1)) return false;
        json_skip_space(c);
        if (c->p >= c->end) return false;
        unsigned char next = *c->p++;
        if (next == close) return true;
        if (next != ',') return false;
    }
}

/* "shape" or "data_offsets": an array of whole numbers, the first few kept. */
typedef struct json_u64_array {
    bool present, is_array;
    size_t n;
    uint64_t v[ECF8_MAX_DIMS];
    bool bad[ECF8_MAX_DIMS]; /* not a whole number in [0, 2^53] */
} json_u64_array;

static bool json_u64_array_read(json_cursor *c, unsigned depth, json_u64_array *a)
{
    a->present = true;
    json_skip_space(c);
    if (c->p >= c->end || *c->p != '[') return json_skip_value(c, depth);
    a->is_array = true;
    c->p++;
    json_skip_space(c);
    if (c->p < c->end && *c->p == ']') return c->p++, true;
    for (;;) {
        json_skip_space(c);
        bool whole = false;
        uint64_t v = 0;
        if (c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))) {
            if (!json_number(c, &whole, &v)) return false;
        } else if (!json_skip_value(c, depth + 1)) {
            return false;
        }
        if (a->n < ECF8_MAX_DIMS) a->v[a->n] = v, a->bad[a->n] = !whole;
        a->n++;
        json_skip_space(c);
        if (c->p >= c->end) return false;
        unsigned char next = *c->p++;
        if (next == ']') return true;
        if (next != ',') return false;
    }
}

/* The members of a tensor's object that matter; a repeated one counts
 * where it first appears, as cJSON's look-up found it. */
typedef struct tensor_fields {
    bool is_object;
    int dtype; /* 0 missing, 1 a string, 2 something else */
    json_str dtype_text;
    json_u64_array shape, offsets;
} tensor_fields;

static bool json_tensor_fields(json_cursor *c, tensor_fields *f)
{
    memset(f, 0, sizeof *f);
    json_skip_space(c);
    if (c->p >= c->end || *c->p != '{') return json_skip_value(c, 1);
    f->is_object = true;
    c->p++;
    json_skip_space(c);
    if (c->p < c->end && *c->p == '}') return c->p++, true;
    for (;;) {
        json_str key;
        json_skip_space(c);
        if (!json_string_scan(c, &key)) return false;
        json_skip_space(c);
        if (c->p >= c->end || *c->p++ != ':') return false;
        json_skip_space(c);
        bool ok;
        if (!f->dtype && json_str_is(&key, "dtype")) {
            f->dtype = c->p < c->end && *c->p == '"' ? 1 : 2;
            ok = f->dtype == 1 ? json_string_scan(c, &f->dtype_text) : json_skip_value(c, 2);
        } else if (!f->shape.present && json_str_is(&key, "shape")) {
            ok = json_u64_array_read(c, 2, &f->shape);
        } else if (!f->offsets.present && json_str_is(&key, "data_offsets")) {
            ok = json_u64_array_read(c, 2, &f->offsets);
        } else {
            ok = json_skip_value(c, 2);
        }
        if (!ok) return false;
        json_skip_space(c);
        if (c->p >= c->end) return false;
        unsigned char next = *c->p++;
        if (next == '}') return true;
        if (next != ',') return false;
    }
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->bytes > y->bytes) - (x->bytes < y->bytes); /* empty tensors first */
}

/* The dtype of the tensor read last: headers list runs of one dtype, so
 * the name look-ups run once a run. */
typedef struct dtype_memo {
    char name[16];
    ecf8_dtype dtype;
    unsigned element_bytes;
} dtype_memo;

/* Checks a tensor's fields into t (its name already set). */
static int tensor_from_fields(const tensor_fields *f, uint64_t data_start, uint64_t file_size, dtype_memo *memo,
                              st_tensor *t)
{
    const char *name = t->name;
    if (!f->is_object) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' is not an object", name);
    if (f->dtype != 1 || !f->shape.is_array || !f->offsets.is_array || f->offsets.n != 2)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' lacks dtype, shape or data_offsets", name);
    char dtype[128];
    size_t dtype_len = f->dtype_text.raw_len < sizeof dtype ? json_string_decode(&f->dtype_text, dtype) : sizeof dtype;
    if (dtype_len >= sizeof t->dtype_name || strlen(dtype) != dtype_len)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has an unknown dtype", name);
    strcpy(t->dtype_name, dtype);
    if (strcmp(memo->name, t->dtype_name)) {
        strcpy(memo->name, t->dtype_name);
        memo->dtype = ecf8_dtype_from_name(t->dtype_name);
        memo->element_bytes = element_bytes(t->dtype_name);
    }
    t->dtype = memo->dtype;
    if (f->shape.n > ECF8_MAX_DIMS)
        return ecf8_fail(ECF8_ERR_UNSUPPORTED, "tensor '%s' has %zu dimensions (max %d)", name, f->shape.n,
                         ECF8_MAX_DIMS);
    t->ndim = (unsigned)f->shape.n;
    t->n_elements = 1;
    for (unsigned d = 0; d < t->ndim; d++) {
        if (f->shape.bad[d]) return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has a bad shape", name);
        t->shape[d] = f->shape.v[d];
        if (!ecf8_mul_u64(t->n_elements, t->shape[d], &t->n_elements))
            return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape overflows", name);
    }
    uint64_t begin = f->offsets.v[0], end = f->offsets.v[1];
    if (f->offsets.bad[0] || f->offsets.bad[1] || end < begin)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has bad data_offsets", name);
    if (end > file_size - data_start)
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' data ends at %llu, past the end of the file",
                         name, (unsigned long long)(data_start + end));
    t->offset = data_start + begin;
    t->bytes = end - begin;
    unsigned eb = memo->element_bytes;
    uint64_t want;
    if (eb == 0 && t->dtype != ECF8_DTYPE_OTHER) eb = ecf8_dtype_size(t->dtype);
    if (eb && (!ecf8_mul_u64(t->n_elements, eb, &want) || want != t->bytes))
        return ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s': shape needs %llu bytes, data_offsets give %llu",
                         name, (unsigned long long)(eb ? t->n_elements * eb : 0),
                         (unsigned long long)t->bytes);
    return ECF8_OK;
}

/* A run of the top-level object's members, parsed into a tensor array of
 * its own: the whole object, or one of its two halves (below). */
typedef struct member_run {
    json_cursor c;             /* at its first member's key */
    const unsigned char *stop; /* the first half: the comma after its last member */
    uint64_t data_start, size;
    st_tensor *tensors;
    size_t n_tensors, capacity;
    bool syntax_ok, nomem;
    int first_error; /* the first tensor's error in the run's order */
    char error[512];
} member_run;

/* Adds a tensor named by key to r, its name decoded (*name_len bytes);
 * NULL when memory ran out. */
static st_tensor *tensor_add(member_run *r, const json_str *key, size_t *name_len)
{
    if (r->n_tensors == r->capacity) {
        size_t cap = r->capacity ? r->capacity * 2 : 256;
        st_tensor *grown = cap <= SIZE_MAX / sizeof *grown ? realloc(r->tensors, cap * sizeof *grown) : NULL;
        if (!grown) return NULL;
        r->tensors = grown, r->capacity = cap;
    }
    st_tensor *t = &r->tensors[r->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = malloc(key->raw_len + 1))) return NULL;
    r->n_tensors++; /* its name is freed with the run's from here on */
    *name_len = json_string_decode(key, t->name);
    return t;
}

static void member_run_free(member_run *r)
{
    for (size_t i = 0; i < r->n_tensors; i++) free(r->tensors[i].name);
    free(r->tensors);
    r->tensors = NULL, r->n_tensors = r->capacity = 0;
}

/* Parses r's members: to the object's closing brace, or to r->stop.  After
 * a tensor's error the rest is only checked for syntax, which the whole
 * parse would reject first. */
static void parse_members(member_run *r)
{
    json_cursor *c = &r->c;
    dtype_memo memo = {.name = ""};
    bool ok = true;
    for (;;) {
        json_str key;
        json_skip_space(c);
        ok = json_string_scan(c, &key);
        json_skip_space(c);
        ok = ok && c->p < c->end && *c->p++ == ':';
        if (!ok) break;
        json_skip_space(c);
        if (r->first_error || json_str_is(&key, "__metadata__")) {
            if (!r->first_error && (c->p >= c->end || *c->p != '{')) {
                r->first_error = ecf8_fail(ECF8_ERR_CORRUPT, "__metadata__ is not an object");
                snprintf(r->error, sizeof r->error, "%s", ecf8_last_error());
            }
            ok = json_skip_value(c, 1);
        } else {
            tensor_fields f;
            if (!(ok = json_tensor_fields(c, &f))) break;
            size_t name_len;
            st_tensor *t = tensor_add(r, &key, &name_len);
            if (!t) {
                r->nomem = true;
                return;
            }
            if (strlen(t->name) != name_len)
                r->first_error = ecf8_fail(ECF8_ERR_CORRUPT, "tensor '%s' has a NUL character in its name", t->name);
            else
                r->first_error = tensor_from_fields(&f, r->data_start, r->size, &memo, t);
            if (r->first_error) snprintf(r->error, sizeof r->error, "%s", ecf8_last_error());
        }
        json_skip_space(c);
        if (!ok || c->p >= c->end || (r->stop && c->p > r->stop)) {
            ok = false;
            break;
        }
        if (c->p == r->stop) break; /* the first half ends at its comma */
        unsigned char next = *c->p++;
        if (next == '}') {
            ok = !r->stop; /* the first half's object cannot end before its comma */
            break;
        }
        ok = next == ',';
    }
    r->syntax_ok = ok;
}

static int parse_members_task(void *ctx, uint64_t i)
{
    parse_members(&((member_run *)ctx)[i]);
    return ECF8_OK;
}

/* ---- a large header in two halves at once ------------------------------------
 * With threads, a header of 256 KiB or more is cut at the comma after the
 * member spanning its middle, and each half is parsed on a thread of its
 * own: 11.6 K tensors' 1.4 MB take 4 ms on one.  The cut follows strings
 * and nesting from the start, so in valid JSON it is a member boundary;
 * where the text before it is not valid JSON, the first half fails and the
 * whole is parsed as one.  The halves' results join as the whole's: the
 * tensors in order, a syntax error in either first, then the first
 * tensor's error in order. */
#define SPLIT_HEADER_BYTES (256u << 10)
static size_t split_header_bytes = SPLIT_HEADER_BYTES;

void ecf8_st_set_split_bytes(size_t bytes) { split_header_bytes = bytes ? bytes : SPLIT_HEADER_BYTES; }

/* Whether the quote at q, in a string opened at p, is escaped: an odd
 * number of backslashes before it. */
static bool escaped_quote(const unsigned char *p, const unsigned char *q)
{
    size_t n = 0;
    while (q - n - 1 > p && q[-(ptrdiff_t)n - 1] == '\\') n++;
    return n % 2;
}

/* The comma after the member spanning the middle of text, whose object
 * opens at `open` (NULL: none, or the object ends first). */
static const unsigned char *header_split_point(const unsigned char *open, const unsigned char *end)
{
    const unsigned char *middle = open + (end - open) / 2;
    unsigned depth = 0;
    for (const unsigned char *p = open; p < end; p++) {
        unsigned char ch = *p;
        if (ch == '"') { /* to its closing quote: one not escaped by an odd run of backslashes */
            const unsigned char *q = p;
            do {
                q = memchr(q + 1, '"', (size_t)(end - q - 1));
                if (!q) return NULL;
            } while (escaped_quote(p, q));
            p = q;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth-- <= 1) return NULL; /* the top-level object ended */
        } else if (ch == ',' && depth == 1 && p >= middle) {
            return p;
        }
    }
    return NULL;
}

/* Parses the header text into out->tensors (on failure, the error). */
static int parse_header(st_file *out, const char *text, size_t len, uint64_t size, unsigned threads)
{
    json_cursor c = {(const unsigned char *)text, (const unsigned char *)text + len};
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) c.p += 3; /* a UTF-8 byte order mark, as cJSON skips it */
    json_skip_space(&c);
    if (c.p >= c.end || *c.p != '{') return ecf8_fail(ECF8_ERR_CORRUPT, "header is not a JSON object");
    const unsigned char *open = c.p++;
    json_skip_space(&c);
    if (c.p < c.end && *c.p == '}') return ECF8_OK; /* no tensors; bytes after the object are ignored */
    const member_run whole = {.c = c, .data_start = out->data_start, .size = size};
    member_run run[2] = {whole, whole};
    size_t n_runs = 1;
    const unsigned char *comma = NULL;
    if (len >= split_header_bytes && threads != 1 && (threads || ecf8_default_threads() > 1) &&
        (comma = header_split_point(open, c.end))) {
        run[0].stop = comma;
        run[1].c = (json_cursor){comma + 1, c.end};
        n_runs = 2;
    }
    int st = ecf8_parallel_for(threads, n_runs, parse_members_task, run);
    if (!st && n_runs == 2 && !run[0].nomem && !run[0].syntax_ok) {
        /* The text before the cut is not JSON: the whole tells what is wrong. */
        member_run_free(&run[0]), member_run_free(&run[1]);
        run[0] = whole;
        n_runs = 1;
        parse_members(&run[0]);
    }
    for (size_t i = 0; i < n_runs && !st; i++)
        if (run[i].nomem)
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory parsing the %llu-byte header", (unsigned long long)len);
    /* Bytes after the object are ignored: writers pad the header. */
    for (size_t i = 0; i < n_runs && !st; i++)
        if (!run[i].syntax_ok) st = ecf8_fail(ECF8_ERR_CORRUPT, "header is not a JSON object");
    for (size_t i = 0; i < n_runs && !st; i++)
        if (run[i].first_error) st = ecf8_fail(run[i].first_error, "%s", run[i].error);
    if (!st && n_runs == 2) { /* the second half's tensors after the first's */
        size_t n = run[0].n_tensors + run[1].n_tensors;
        st_tensor *all = n <= SIZE_MAX / sizeof *all ? realloc(run[0].tensors, n * sizeof *all) : NULL;
        if (!all) {
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory parsing the %llu-byte header", (unsigned long long)len);
        } else {
            if (run[1].n_tensors) memcpy(all + run[0].n_tensors, run[1].tensors, run[1].n_tensors * sizeof *all);
            run[0].tensors = all, run[0].n_tensors = n;
            free(run[1].tensors); /* its names now belong to run 0 */
            run[1].tensors = NULL, run[1].n_tensors = 0;
        }
    }
    if (st) {
        member_run_free(&run[0]), member_run_free(&run[1]);
        return st;
    }
    out->tensors = run[0].tensors, out->n_tensors = run[0].n_tensors;
    return ECF8_OK;
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
    /* Writers usually list the tensors in file order: then there is nothing to sort. */
    bool sorted = true;
    for (size_t i = 1; i < out->n_tensors && sorted; i++)
        sorted = cmp_offset(&out->tensors[i - 1], &out->tensors[i]) <= 0;
    if (!sorted) qsort(out->tensors, out->n_tensors, sizeof(st_tensor), cmp_offset);
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
