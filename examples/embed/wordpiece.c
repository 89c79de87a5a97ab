/* wordpiece.c - BERT uncased WordPiece, as transformers' BertTokenizer with
 * do_lower_case (tokenize_chinese_chars on, strip_accents following
 * lower-casing):
 *   1. drop NUL, U+FFFD and control characters; whitespace separates words;
 *   2. lower-case, strip accents;
 *   3. every punctuation and CJK character is a word of its own;
 *   4. each word: greedy longest match first against the vocabulary, later
 *      pieces prefixed "##"; a word with no match (or over 100 characters)
 *      is [UNK].
 * Unicode coverage is what a small program can carry without tables:
 * lower-casing covers ASCII, Latin-1, Latin Extended-A, basic Greek and
 * Cyrillic; accent stripping maps precomposed Latin-1 letters to their base
 * letter and drops the combining marks U+0300..U+036F; punctuation is ASCII,
 * Latin-1's, General Punctuation and CJK's.  English text tokenizes exactly
 * as transformers does. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strdup, mmap */
#include "embed.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORD_CHARS 100

struct wp_vocab {
    char **tokens;
    size_t n;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    size_t mask;
    int unk, cls, sep;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int lookup(const wp_vocab *v, const char *s, size_t len)
{
    for (size_t i = hash_bytes(s, len) & v->mask;; i = (i + 1) & v->mask) {
        uint32_t id = v->slots[i];
        if (!id) return -1;
        const char *t = v->tokens[id - 1];
        if (strlen(t) == len && !memcmp(t, s, len)) return (int)id - 1;
    }
}

void wp_vocab_free(wp_vocab *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->slots);
    free(v);
}

size_t wp_vocab_size(const wp_vocab *v) { return v->n; }

wp_vocab *wp_vocab_load(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    wp_vocab *v = calloc(1, sizeof *v);
    size_t cap = 0;
    char line[1024];
    while (v && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (v->n == cap) {
            cap = cap ? 2 * cap : 32768;
            char **t = realloc(v->tokens, cap * sizeof *t);
            if (!t) break;
            v->tokens = t;
        }
        if (!(v->tokens[v->n] = strdup(line))) break;
        v->n++;
    }
    int read_error = ferror(f) || !feof(f);
    fclose(f);
    if (!v || read_error) {
        snprintf(err, err_size, "cannot read (or out of memory)");
        wp_vocab_free(v);
        return NULL;
    }
    size_t slots = 1;
    while (slots < 2 * v->n + 2) slots <<= 1;
    v->mask = slots - 1;
    if (!(v->slots = calloc(slots, sizeof *v->slots))) {
        snprintf(err, err_size, "out of memory");
        wp_vocab_free(v);
        return NULL;
    }
    for (size_t id = 0; id < v->n; id++) {
        const char *t = v->tokens[id];
        if (lookup(v, t, strlen(t)) >= 0) continue; /* first line wins */
        size_t i = hash_bytes(t, strlen(t)) & v->mask;
        while (v->slots[i]) i = (i + 1) & v->mask;
        v->slots[i] = (uint32_t)id + 1;
    }
    v->unk = lookup(v, "[UNK]", 5);
    v->cls = lookup(v, "[CLS]", 5);
    v->sep = lookup(v, "[SEP]", 5);
    if (v->unk < 0 || v->cls < 0 || v->sep < 0) {
        snprintf(err, err_size, "not a BERT vocabulary: no [UNK], [CLS] or [SEP] line (%zu lines)",
                 v->n);
        wp_vocab_free(v);
        return NULL;
    }
    return v;
}

/* ---- characters ------------------------------------------------------------ */
/* Next code point of NUL-terminated UTF-8 at *p (advanced); -1 when the
 * bytes are not UTF-8 (overlong forms, surrogates, > U+10FFFF included). */
static long next_code_point(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned n;
    long cp, min;
    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    } else if ((s[0] & 0xE0) == 0xC0) {
        n = 1, cp = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 2, cp = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 3, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    for (unsigned i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *p = s + n + 1;
    return cp;
}

static size_t put_utf8(char *out, long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int is_whitespace(long c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Categories Cc and Cf (tab, newline and return are whitespace instead). */
static int is_control(long c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xAD || (c >= 0x200B && c <= 0x200F) ||
           (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF;
}

static int is_punctuation(long c)
{
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126) || c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 ||
           c == 0xB7 || c == 0xBB || c == 0xBF || (c >= 0x2010 && c <= 0x2027) ||
           (c >= 0x2030 && c <= 0x205E) || (c >= 0x3001 && c <= 0x3003) ||
           (c >= 0x3008 && c <= 0x3011) || (c >= 0x3014 && c <= 0x301F);
}

static int is_cjk(long c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static long to_lower(long c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c + (c & 1);
    if (c == 0x178) return 0xFF;
    if ((c >= 0x391 && c <= 0x3A9 && c != 0x3A2) || (c >= 0x410 && c <= 0x42F)) return c + 0x20;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    return c;
}

/* Base letter of a lower-case Latin-1 letter, 0 for a combining mark (to
 * drop), else c. */
static long strip_accent(long c)
{
    static const char base[] = "aaaaaaeceeeeiiiidnooooo/ouuuuyty"; /* U+00E0..U+00FF */
    if (c >= 0x300 && c <= 0x36F) return 0;
    if (c >= 0xE0 && c <= 0xFF && c != 0xE6 && c != 0xF0 && c != 0xF7 && c != 0xF8 && c != 0xFE)
        return base[c - 0xE0];
    return c;
}

/* ---- word pieces ------------------------------------------------------------- */
typedef struct out_ids {
    int *ids;
    int max, n, total; /* n written (<= max), total wanted */
} out_ids;

static void emit(out_ids *o, int id)
{
    if (o->n < o->max) o->ids[o->n++] = id;
    o->total++;
}

/* WordPiece of one word: `len` bytes of UTF-8 at w, `chars` code points. */
static void word_pieces(const wp_vocab *v, const char *w, size_t len, size_t chars, out_ids *o)
{
    if (!len) return;
    if (chars > MAX_WORD_CHARS) {
        emit(o, v->unk);
        return;
    }
    char buf[2 + 4 * MAX_WORD_CHARS];
    int pieces[MAX_WORD_CHARS], np = 0;
    size_t start = 0;
    while (start < len) {
        size_t end = len;
        int id = -1;
        while (end > start) {
            size_t pre = start ? 2 : 0;
            memcpy(buf, "##", pre);
            memcpy(buf + pre, w + start, end - start);
            if ((id = lookup(v, buf, pre + end - start)) >= 0) break;
            do end--; /* back to the previous code point boundary */
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            emit(o, v->unk);
            return;
        }
        pieces[np++] = id;
        start = end;
    }
    for (int i = 0; i < np; i++) emit(o, pieces[i]);
}

int wp_tokenize(const wp_vocab *v, const char *text, int *ids, int max_ids, int *untruncated)
{
    /* The pieces go between [CLS] and [SEP]. */
    out_ids o = {ids + 1, max_ids - 2, 0, 0};
    char word[4 * MAX_WORD_CHARS + 4];
    size_t wlen = 0, wchars = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        long c = next_code_point(&p);
        if (c < 0) return -1;
        if (c == 0xFFFD || (is_control(c) && !is_whitespace(c))) continue;
        int alone = 0;
        if (is_whitespace(c)) {
            c = 0;
        } else {
            if (!(c = strip_accent(to_lower(c)))) continue;
            alone = is_punctuation(c) || is_cjk(c);
        }
        if (!c || alone) {
            word_pieces(v, word, wlen, wchars, &o);
            wlen = wchars = 0;
        }
        if (alone) {
            char one[4];
            word_pieces(v, one, put_utf8(one, c), 1, &o);
        } else if (c) {
            /* Past MAX_WORD_CHARS the word is [UNK] whatever follows: stop
             * storing, keep counting. */
            if (wchars < MAX_WORD_CHARS + 1) wlen += put_utf8(word + wlen, c);
            wchars++;
        }
    }
    word_pieces(v, word, wlen, wchars, &o);
    ids[0] = v->cls;
    ids[o.n + 1] = v->sep;
    *untruncated = o.total + 2;
    return o.n + 2;
}
