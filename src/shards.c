/* shards.c - checkpoint directories as they are published: one container
 * per *.safetensors shard, the other files (the shard index json, config,
 * tokenizer) copied verbatim, the output directory staged under a hidden
 * temporary name beside its destination and renamed into place only once
 * every file in it is complete and synced (ecf8_compress_dir and friends in
 * ecf8.h). */
#define _GNU_SOURCE
#include "internal.h"
#include "io.h"

#ifndef ECF8_DECODE_ONLY
#include <cjson/cJSON.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_SUFFIX ".safetensors"
#define CONTAINER_SUFFIX ".ecf8"
#define INDEX_SUFFIX ".safetensors.index.json"
/* Deeper than any checkpoint; stops a loop of symbolic links. */
#define MAX_DEPTH 32

void ecf8_dir_options_init(ecf8_dir_options *options)
{
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->max_file_bytes = ECF8_HUB_FILE_LIMIT;
}

/* ---- the files of a directory ------------------------------------------------ */

/* One file of the input directory and what becomes of it. */
typedef struct dir_file {
    char *rel;      /* path relative to the input directory */
    char *out_rel;  /* path of its output relative to the output directory */
    char *orig_rel; /* its name in the uncompressed checkpoint (rel or out_rel) */
    uint64_t size;
    bool coded;     /* compressed (or decompressed), not copied */
} dir_file;

typedef struct dir_list {
    dir_file *v;
    size_t n, cap;
} dir_list;

static void dir_list_free(dir_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].rel);
        free(l->v[i].out_rel);
        free(l->v[i].orig_rel);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* "A/B" (or "B" when a is NULL or ""), malloc'ed; NULL when out of memory. */
static char *path_join(const char *a, const char *b)
{
    size_t na = a && a[0] ? strlen(a) : 0, nb = strlen(b);
    char *p = malloc(na + 1 + nb + 1);
    if (!p) return NULL;
    if (na) {
        memcpy(p, a, na);
        if (a[na - 1] != '/') p[na++] = '/';
    }
    memcpy(p + na, b, nb + 1);
    return p;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* `s` without `old_suffix` (which it ends with) plus `new_suffix`. */
static char *replace_suffix(const char *s, const char *old_suffix, const char *new_suffix)
{
    size_t stem = strlen(s) - strlen(old_suffix), k = strlen(new_suffix);
    char *p = malloc(stem + k + 1);
    if (!p) return NULL;
    memcpy(p, s, stem);
    memcpy(p + stem, new_suffix, k + 1);
    return p;
}

static bool matches_any(const char *const *patterns, size_t n, const char *rel)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], rel, 0) == 0) return true;
    return false;
}

/* The filters of ecf8_dir_options: every --exclude skips, and when there is
 * an --include a file must match one. */
static bool is_excluded(const ecf8_dir_options *f, const char *rel)
{
    return f && matches_any(f->exclude, f->n_exclude, rel);
}
static bool is_included(const ecf8_dir_options *f, const char *rel)
{
    if (is_excluded(f, rel)) return false;
    return !f || f->n_include == 0 || matches_any(f->include, f->n_include, rel);
}

static int dir_list_add(dir_list *l, const char *rel, uint64_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        dir_file *v = realloc(l->v, cap * sizeof *v);
        if (!v) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    dir_file *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    if (!(f->rel = strdup(rel))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    f->size = size;
    l->n++;
    return ECF8_OK;
}

/* Adds the regular files under root/rel (rel NULL: root itself) that the
 * filters keep.  Names starting with '.' (.git, .cache, ecf8's own
 * temporaries) are skipped; symbolic links are followed (a Hugging Face
 * cache snapshot is made of them), to MAX_DEPTH directories. */
static int walk(const char *root, const char *rel, unsigned depth, const ecf8_dir_options *filters,
                dir_list *out)
{
    char *dir_path = rel ? path_join(root, rel) : strdup(root);
    if (!dir_path) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir_path);
    if (!d) {
        int st = ecf8_fail(ECF8_ERR_IO, "%s: cannot read the directory: %s", dir_path, strerror(errno));
        free(dir_path);
        return st;
    }
    int st = ECF8_OK;
    for (struct dirent *de; !st && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.') continue;
        char *child = path_join(rel, de->d_name), *full = child ? path_join(root, child) : NULL;
        struct stat sb;
        if (!full) {
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        } else if (is_excluded(filters, child)) {
            /* skipped whatever it is, a directory with all below it */
        } else if (stat(full, &sb) != 0) {
            st = ecf8_fail(ECF8_ERR_IO, "%s: %s", full, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            st = depth + 1 >= MAX_DEPTH
                     ? ecf8_fail(ECF8_ERR_ARGUMENT, "%s: directories nested over %d deep (a loop of links?)",
                                 full, MAX_DEPTH)
                     : walk(root, child, depth + 1, filters, out);
        } else if (!is_included(filters, child)) {
            /* not asked for */
        } else if (!S_ISREG(sb.st_mode)) {
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a regular file (--exclude it to leave it out)", full);
        } else {
            st = dir_list_add(out, child, (uint64_t)sb.st_size);
        }
        free(child);
        free(full);
    }
    closedir(d);
    free(dir_path);
    return st;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const dir_file *)a)->rel, ((const dir_file *)b)->rel);
}

/* Names each file's output.  Compressing, a *.safetensors shard becomes
 * *.ecf8 and a file already named *.ecf8 is refused (decompress would read
 * it as a shard); decompressing, *.ecf8 becomes *.safetensors. */
static int dir_list_classify(const char *in_dir, dir_list *l, bool compressing)
{
    for (size_t i = 0; i < l->n; i++) {
        dir_file *f = &l->v[i];
        const char *from = compressing ? SHARD_SUFFIX : CONTAINER_SUFFIX;
        const char *to = compressing ? CONTAINER_SUFFIX : SHARD_SUFFIX;
        f->coded = has_suffix(f->rel, from); /* never all suffix: hidden names are skipped */
        if (compressing && !f->coded && has_suffix(f->rel, CONTAINER_SUFFIX))
            return ecf8_fail(ECF8_ERR_ARGUMENT,
                             "%s/%s: a *.ecf8 file in a checkpoint (decompress would read it as a "
                             "compressed shard; --exclude it)",
                             in_dir, f->rel);
        f->out_rel = f->coded ? replace_suffix(f->rel, from, to) : strdup(f->rel);
        if (!f->out_rel || !(f->orig_rel = strdup(compressing ? f->rel : f->out_rel)))
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    /* Two inputs with one output: "a.safetensors" and a copied "a.ecf8"
     * are refused above; decompressing, "a.ecf8" and "a.safetensors". */
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = i + 1; j < l->n; j++)
            if (!strcmp(l->v[i].out_rel, l->v[j].out_rel))
                return ecf8_fail(ECF8_ERR_ARGUMENT, "%s/%s and %s/%s: both would be written as %s", in_dir,
                                 l->v[i].rel, in_dir, l->v[j].rel, l->v[i].out_rel);
    return ECF8_OK;
}

/* ---- shard index files ------------------------------------------------------- */
/* A decode-only library has no JSON reader (cJSON comes with the encoder):
 * it decompresses and verifies directories without checking their
 * indexes. */
#ifndef ECF8_DECODE_ONLY
/* The directory part of a relative path ("" for none), malloc'ed. */
static char *dir_part(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? strndup(rel, (size_t)(slash - rel)) : strdup("");
}

static int cmp_string_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether `name` is one of the n sorted strings. */
static bool in_sorted(const char *const *sorted, size_t n, const char *name)
{
    return n && bsearch(&name, sorted, n, sizeof *sorted, cmp_string_ptr) != NULL;
}

/* "PREFIX-NNNNN-of-MMMMM.safetensors": the shard's prefix length, its
 * number and the count; false for other names. */
static bool shard_name_parts(const char *name, size_t *prefix_len, unsigned long *n, unsigned long *m)
{
    const char *of = NULL;
    for (const char *p = strstr(name, "-of-"); p; p = strstr(p + 1, "-of-")) of = p;
    if (!of || !has_suffix(name, SHARD_SUFFIX)) return false;
    const char *dash = of;
    while (dash > name && dash[-1] >= '0' && dash[-1] <= '9') dash--;
    if (dash == of || dash == name || dash[-1] != '-') return false;
    char *end;
    *n = strtoul(dash, &end, 10);
    if (end != of) return false;
    const char *count = of + 4;
    if (*count < '0' || *count > '9') return false;
    *m = strtoul(count, &end, 10);
    if (strcmp(end, SHARD_SUFFIX)) return false;
    *prefix_len = (size_t)(dash - 1 - name);
    return true;
}

/* Whether `name` is a path below its directory: not empty, not absolute,
 * no "." or ".." component, no empty one. */
static bool is_relative_below(const char *name)
{
    for (const char *c = name;; c++) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return false;
        c += n;
        if (!*c) return true;
    }
}


/* The file of input directory `in_dir` that holds original shard orig_rel:
 * itself, or its container when decompressing. */
static char *input_name(const char *in_dir, const char *orig_rel, bool compressing)
{
    char *rel = compressing ? strdup(orig_rel) : replace_suffix(orig_rel, SHARD_SUFFIX, CONTAINER_SUFFIX);
    char *p = rel ? path_join(in_dir, rel) : NULL;
    free(rel);
    return p;
}

/* Checks one index against the files listed (`shards`: the sorted
 * original names of the n_shards coded ones): every shard it names is there
 * (and kept by the filters), the NNNNN-of-MMMMM names it gives are all
 * MMMMM of them, and no shard of the same prefix in its directory is left
 * out of it.  Sorting keeps a hostile index of a million names from taking
 * quadratic time before the first missing one ends the check. */
static int check_index(const char *in_dir, const dir_list *l, const char *const *shards, size_t n_shards,
                       const dir_file *index, bool compressing)
{
    char *path = path_join(in_dir, index->rel), *idx_dir = dir_part(index->orig_rel);
    ecf8_file_copy text = {0};
    cJSON *root = NULL;
    const char **named = NULL;
    size_t n_named = 0;
    int st = path && idx_dir ? ecf8_file_copy_read(path, &text) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (st) {
        if (path) st = ecf8_fail_context(st, "%s", path);
        goto done;
    }
    root = cJSON_ParseWithLength((const char *)text.data, text.size);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(map)) {
        st = ecf8_fail(ECF8_ERR_CORRUPT, "%s: malformed shard index (%s)", path,
                       !root ? "not JSON" : !cJSON_IsObject(root) ? "not a JSON object" : "no \"weight_map\" object");
        goto done;
    }
    if (!(named = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof *named))) {
        st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (const cJSON *it = map->child; it && !st; it = it->next) {
        const char *file = cJSON_GetStringValue(it);
        if (!file || !is_relative_below(file) || !has_suffix(file, SHARD_SUFFIX))
            st = ecf8_fail(ECF8_ERR_CORRUPT, "%s: malformed shard index (tensor '%s' maps to %s)", path,
                           it->string, file ? file : "no file name");
        else
            named[n_named++] = file;
    }
    /* The distinct shards named, sorted. */
    qsort(named, n_named, sizeof *named, cmp_string_ptr);
    size_t distinct = 0;
    for (size_t k = 0; k < n_named; k++)
        if (!distinct || strcmp(named[distinct - 1], named[k])) named[distinct++] = named[k];
    n_named = distinct;
    for (size_t k = 0; k < n_named && !st; k++) {
        char *orig = path_join(idx_dir, named[k]), *want = orig ? input_name(in_dir, orig, compressing) : NULL;
        struct stat sb;
        if (!want) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        else if (in_sorted(shards, n_shards, orig)) {}
        else if (stat(want, &sb) == 0)
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: names %s, which --include/--exclude leave out", path, want);
        else
            st = ecf8_fail(ECF8_ERR_CORRUPT, "%s: names %s, which is missing", path, want);
        free(orig);
        free(want);
    }
    /* NNNNN-of-MMMMM: all MMMMM named (each is a file now, so n_named is
     * at most the number of files). */
    for (size_t k = 0; k < n_named && !st; k++) {
        size_t plen, plen2, count = 0;
        unsigned long n, m, n2, m2;
        if (!shard_name_parts(named[k], &plen, &n, &m)) continue;
        for (size_t j = 0; j < n_named; j++)
            if (shard_name_parts(named[j], &plen2, &n2, &m2) && plen2 == plen &&
                !strncmp(named[j], named[k], plen) && m2 == m && n2 >= 1 && n2 <= m)
                count++;
        if (count != m || n < 1 || n > m)
            st = ecf8_fail(ECF8_ERR_CORRUPT, "%s: names %zu of the %lu shards %.*s-*%s", path, count, m, (int)plen,
                           named[k], strstr(named[k] + plen + 1, "-of-"));
    }
    /* No shard of a prefix it names, beside it, that it does not name. */
    for (size_t i = 0; i < l->n && !st; i++) {
        const dir_file *f = &l->v[i];
        char *fdir = dir_part(f->orig_rel);
        if (!fdir) {
            st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
            break;
        }
        const char *base = f->orig_rel + (fdir[0] ? strlen(fdir) + 1 : 0);
        size_t plen, plen2;
        unsigned long n, m, n2, m2;
        if (f->coded && !strcmp(fdir, idx_dir) && shard_name_parts(base, &plen, &n, &m) &&
            !in_sorted(named, n_named, base))
            for (size_t k = 0; k < n_named && !st; k++)
                if (shard_name_parts(named[k], &plen2, &n2, &m2) && plen2 == plen && !strncmp(base, named[k], plen))
                    st = ecf8_fail(ECF8_ERR_CORRUPT, "%s/%s: a shard that %s does not name", in_dir, f->rel, path);
        free(fdir);
    }
done:
    free(named);
    cJSON_Delete(root);
    ecf8_file_copy_free(&text);
    free(path);
    free(idx_dir);
    return st;
}

#endif

static int check_indexes(const char *in_dir, const dir_list *l, bool compressing)
{
#ifdef ECF8_DECODE_ONLY
    (void)in_dir, (void)l, (void)compressing;
    return ECF8_OK;
#else
    const char **shards = malloc((l->n + 1) * sizeof *shards);
    size_t n_shards = 0;
    if (!shards) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].coded) shards[n_shards++] = l->v[i].orig_rel;
    qsort(shards, n_shards, sizeof *shards, cmp_string_ptr);
    int st = ECF8_OK;
    for (size_t i = 0; i < l->n && !st; i++)
        if (!l->v[i].coded && has_suffix(l->v[i].orig_rel, INDEX_SUFFIX))
            st = check_index(in_dir, l, shards, n_shards, &l->v[i], compressing);
    free(shards);
    return st;
#endif
}

/* The files of in_dir, sorted, their outputs named and the indexes checked. */
static int list_dir(const char *in_dir, const ecf8_dir_options *filters, bool compressing, dir_list *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(in_dir, &sb) != 0) return ecf8_fail(ECF8_ERR_IO, "%s: %s", in_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a directory", in_dir);
    int st = walk(in_dir, NULL, 0, filters, out);
    if (!st && out->n == 0)
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: no files%s", in_dir,
                       filters && (filters->n_include || filters->n_exclude) ? " left by --include/--exclude" : "");
    if (!st) {
        qsort(out->v, out->n, sizeof *out->v, cmp_rel);
        st = dir_list_classify(in_dir, out, compressing);
    }
    if (!st) st = check_indexes(in_dir, out, compressing);
    if (st) dir_list_free(out);
    return st;
}

/* ---- the staged output directory -------------------------------------------- */

/* The output directory built under a hidden temporary name beside it.
 * Everything in it is in the registry of temporaries (files registered
 * before they appear), so a signal handler removes the whole tree. */
typedef struct stage {
    char *out;   /* the destination, without trailing slashes */
    char *path;  /* the staging directory */
    size_t n, cap;
    _Atomic(ecf8_temp *) **slots;
    char **paths; /* registered paths; directories before what they hold */
    bool *is_dir;
} stage;

static int stage_remember(stage *s, char *path, bool is_dir, _Atomic(ecf8_temp *) *slot)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        void *a = realloc(s->slots, cap * sizeof *s->slots), *b = a ? realloc(s->paths, cap * sizeof *s->paths) : NULL,
             *c = b ? realloc(s->is_dir, cap * sizeof *s->is_dir) : NULL;
        if (a) s->slots = a;
        if (b) s->paths = b;
        if (c) s->is_dir = c;
        if (!c) {
            if (is_dir) rmdir(path);
            ecf8_temp_release(slot);
            free(path);
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        }
        s->cap = cap;
    }
    s->slots[s->n] = slot;
    s->paths[s->n] = path;
    s->is_dir[s->n] = is_dir;
    s->n++;
    return ECF8_OK;
}

/* Drops the stage's registry entries and frees it (what it holds stays). */
static void stage_release(stage *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ecf8_temp_release(s->slots[i]);
        free(s->paths[i]);
    }
    free(s->slots);
    free(s->paths);
    free(s->is_dir);
    free(s->out);
    memset(s, 0, sizeof *s);
}

/* Removes what the stage holds (files, then directories deepest first) and
 * frees it. */
static void stage_discard(stage *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->is_dir[i]) unlink(s->paths[i]);
    for (size_t i = s->n; i-- > 0;)
        if (s->is_dir[i]) rmdir(s->paths[i]);
    stage_release(s);
}

/* `out` without trailing slashes ("/" stays "/"). */
static char *strip_slashes(const char *out)
{
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--;
    return strndup(out, n);
}

/* The directory holding `path` (no trailing slash): "." for a bare name,
 * "/" at the root; malloc'ed. */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    return !slash ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

/* "DIR/.ecf8-XXXXXX" beside `path`, for mkdtemp; malloc'ed. */
static char *temp_beside(const char *path)
{
    char *parent = parent_dir(path), *t = parent ? path_join(parent, ".ecf8-XXXXXX") : NULL;
    free(parent);
    return t;
}

/* Whether `inner` is `outer` or inside it (both existing), by real path. */
static bool path_within(const char *inner, const char *outer)
{
    char *a = realpath(inner, NULL), *b = realpath(outer, NULL);
    size_t nb = b ? strlen(b) : 0;
    bool within = a && b && !strncmp(a, b, nb) && (a[nb] == '\0' || a[nb] == '/' || !strcmp(b, "/"));
    free(a);
    free(b);
    return within;
}

/* The rules for an output directory, checked before any work: a path that
 * is not a directory, a symbolic link, the input or a directory holding
 * it, or one inside the input is refused; an existing directory is
 * replaced only with `overwrite` (ECF8_ERR_EXISTS). */
static int check_output_dir(const char *out_path, const char *in_dir, bool overwrite)
{
    if (!out_path[0]) return ecf8_fail(ECF8_ERR_ARGUMENT, "empty file name");
    char *out = strip_slashes(out_path), *parent = out ? parent_dir(out) : NULL;
    if (!parent) {
        free(out);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    bool inside = path_within(parent, in_dir);
    free(parent);
    int st = ECF8_OK;
    struct stat sb;
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    if (!strcmp(base, "") || !strcmp(base, ".") || !strcmp(base, ".."))
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a name a directory can be renamed to (give its path)", out);
    else if (inside) st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: inside the input directory %s", out, in_dir);
    else if (lstat(out, &sb) != 0) {}
    else if (S_ISLNK(sb.st_mode)) st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: a symbolic link (ecf8 does not replace links)", out);
    else if (!S_ISDIR(sb.st_mode)) st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: not a directory", out);
    else if (path_within(in_dir, out))
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: the output would replace the input %s", out, in_dir);
    else if (!overwrite) st = ecf8_fail(ECF8_ERR_EXISTS, "%s: already exists", out);
    free(out);
    return st;
}

static int stage_open(stage *s, const char *out)
{
    memset(s, 0, sizeof *s);
    if (!(s->out = strip_slashes(out))) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    char *tmpl = temp_beside(s->out);
    _Atomic(ecf8_temp *) *slot = NULL;
    if (!tmpl) {
        stage_discard(s);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    if (ecf8_temp_create_temp_dir(tmpl, &slot) != 0) {
        int e = errno;
        free(tmpl);
        int st = ecf8_fail(ECF8_ERR_IO, "%s: cannot create output: %s", s->out, e == EINTR ? "interrupted" : strerror(e));
        stage_discard(s);
        return st;
    }
    chmod(tmpl, 0777 & ~ecf8_process_umask()); /* mkdtemp made it 0700 */
    int st = stage_remember(s, tmpl, true, slot);
    if (st) stage_discard(s);
    else s->path = tmpl;
    return st;
}

/* Makes the directories above `rel` in the stage and registers the path of
 * the file `rel` there; *full is that path (owned by the stage). */
static int stage_add_file(stage *s, const char *rel, const char **full)
{
    for (const char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
        char *sub = strndup(rel, (size_t)(slash - rel)), *dir = sub ? path_join(s->path, sub) : NULL;
        free(sub);
        if (!dir) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        bool known = false;
        for (size_t i = 0; i < s->n && !known; i++) known = s->is_dir[i] && !strcmp(s->paths[i], dir);
        _Atomic(ecf8_temp *) *slot = NULL;
        if (known) {
            free(dir);
        } else if (ecf8_temp_create_dir(dir, &slot) != 0) {
            int e = errno;
            free(dir);
            return ecf8_fail(ECF8_ERR_IO, "%s/%.*s: cannot create directory: %s", s->out, (int)(slash - rel), rel,
                             e == EINTR ? "interrupted" : strerror(e));
        } else {
            int st = stage_remember(s, dir, true, slot);
            if (st) return st;
        }
    }
    char *path = path_join(s->path, rel);
    _Atomic(ecf8_temp *) *slot = NULL;
    if (!path) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (ecf8_temp_register_file(path, &slot) != 0) {
        int e = errno;
        free(path);
        return ecf8_fail(ECF8_ERR_IO, "%s/%s: %s", s->out, rel, e == EINTR ? "interrupted" : strerror(e));
    }
    int st = stage_remember(s, path, false, slot);
    if (!st) *full = path;
    return st;
}

static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

static int remove_tree_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* Syncs the staged tree and renames it to s->out: without `overwrite`
 * never over anything that appeared since the check; with it, an existing
 * directory is swapped out in one step (RENAME_EXCHANGE where the file
 * system has it) and removed only after the new one is in place. */
static int stage_commit(stage *s, bool overwrite)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->is_dir[i]) sync_dir(s->paths[i]);
    struct stat sb;
    bool replacing = overwrite && lstat(s->out, &sb) == 0;
    int st = ECF8_OK;
    if (replacing) {
        st = check_output_dir(s->out, s->path, true);
#ifdef RENAME_EXCHANGE
        if (!st && renameat2(AT_FDCWD, s->path, AT_FDCWD, s->out, RENAME_EXCHANGE) == 0) {
            replacing = false; /* the old tree is at s->path now */
            nftw(s->path, remove_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
#endif
        if (!st && replacing) {
            /* No exchange: move the old one aside, then the new one in. */
            char *aside = temp_beside(s->out);
            if (!aside || !mkdtemp(aside) || rename(s->out, aside) != 0)
                st = ecf8_fail(ECF8_ERR_IO, "%s: cannot move the old directory aside: %s", s->out, strerror(errno));
            else if (rename(s->path, s->out) != 0)
                st = ecf8_fail(ECF8_ERR_IO, "%s: cannot rename output into place: %s", s->out, strerror(errno)),
                rename(aside, s->out);
            else
                nftw(aside, remove_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
            if (aside) rmdir(aside);
            free(aside);
        }
    } else {
        bool renamed = false;
#ifdef RENAME_NOREPLACE
        if (renameat2(AT_FDCWD, s->path, AT_FDCWD, s->out, RENAME_NOREPLACE) == 0) renamed = true;
        else if (errno == EEXIST) st = ecf8_fail(ECF8_ERR_EXISTS, "%s: already exists", s->out);
        else if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
            st = ecf8_fail(ECF8_ERR_IO, "%s: cannot rename output into place: %s", s->out, strerror(errno));
#endif
        /* rename() would replace an empty directory: check just before. */
        if (!st && !renamed && lstat(s->out, &sb) == 0) st = ecf8_fail(ECF8_ERR_EXISTS, "%s: already exists", s->out);
        if (!st && !renamed && rename(s->path, s->out) != 0)
            st = ecf8_fail(ECF8_ERR_IO, "%s: cannot rename output into place: %s", s->out, strerror(errno));
    }
    if (st) {
        stage_discard(s);
        return st;
    }
    char *parent = parent_dir(s->out);
    if (parent) sync_dir(parent);
    free(parent);
    stage_release(s); /* renamed: nothing to remove any more */
    return ECF8_OK;
}

/* ---- copying and comparing files ---------------------------------------------- */

#define COPY_PIECE ((size_t)1 << 20)

/* Reads `path` in pieces, calling each(user, piece, n) on them; the file
 * must stay one version while read (as ecf8_file_copy_read checks). */
static int read_pieces(const char *path, int (*each)(void *user, const uint8_t *p, size_t n), void *user)
{
    int fd;
    struct stat before, after;
    int st = ecf8_open_regular_file(path, &fd, &before);
    if (st) return ecf8_fail_context(st, "%s", path);
    uint8_t *buf = malloc(COPY_PIECE);
    uint64_t done = 0;
    if (!buf) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    while (!st) {
        size_t got;
        if ((st = ecf8_read_at(fd, buf, COPY_PIECE, done, &got))) {
            st = ecf8_fail_context(st, "%s", path);
            break;
        }
        if (got && (st = each(user, buf, got))) break;
        done += got;
        if (got < COPY_PIECE) break;
    }
    if (!st && (fstat(fd, &after) != 0 || !ecf8_same_file_version(&before, &after) ||
                done != (uint64_t)before.st_size))
        st = ecf8_fail(ECF8_ERR_IO, "%s: input changed while being read", path);
    free(buf);
    close(fd);
    return st;
}

static int write_piece(void *user, const uint8_t *p, size_t n)
{
    return ecf8_outfile_write(user, p, n);
}

/* Copies src to dst (absent), all or nothing, synced. */
static int copy_file(const char *src, const char *dst)
{
    ecf8_outfile o;
    int st = ecf8_outfile_open(&o, dst, NULL, false);
    if (st) return st;
    st = read_pieces(src, write_piece, &o);
    if (st) {
        ecf8_outfile_abort(&o);
        return st;
    }
    return ecf8_outfile_commit(&o);
}

typedef struct compare_state {
    int fd;
    uint64_t pos;
    uint8_t *buf;
} compare_state;

static int compare_piece(void *user, const uint8_t *p, size_t n)
{
    compare_state *c = user;
    size_t got;
    int st = ecf8_read_at(c->fd, c->buf, n, c->pos, &got);
    if (st) return st;
    if (got != n || memcmp(p, c->buf, n)) return ECF8_ERR_MISMATCH;
    c->pos += n;
    return ECF8_OK;
}

/* Whether `original` holds exactly the bytes of `copy`. */
static int compare_files(const char *copy, const char *original)
{
    compare_state c = {.fd = -1};
    struct stat sb;
    int st = ecf8_open_regular_file(original, &c.fd, &sb);
    if (st) return ecf8_fail_context(st, "%s", original);
    if (!(c.buf = malloc(COPY_PIECE))) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    if (!st) st = read_pieces(copy, compare_piece, &c);
    if (!st && c.pos != (uint64_t)sb.st_size) st = ECF8_ERR_MISMATCH;
    if (st == ECF8_ERR_MISMATCH)
        st = ecf8_fail(ECF8_ERR_MISMATCH, "%s: differs from %s", original, copy);
    free(c.buf);
    close(c.fd);
    return st;
}

/* ---- progress over the whole directory --------------------------------------- */

/* Maps a file's progress (done of total) onto the directory's, weighing
 * each file by its size. */
typedef struct dir_progress {
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *user;
    uint64_t base, weight, total;
} dir_progress;

static void dir_progress_file(void *user, uint64_t done, uint64_t total)
{
    dir_progress *p = user;
    uint64_t part = total ? (uint64_t)((double)p->weight * ((double)done / (double)total)) : 0;
    if (part > p->weight) part = p->weight;
    p->progress(p->user, p->base + part, p->total);
}

static void dir_progress_advance(dir_progress *p, uint64_t bytes)
{
    p->base += bytes;
    if (p->progress) p->progress(p->user, p->base, p->total);
}

/* Puts p between the caller's callback (*progress, *user) and the calls
 * made for each file, and reports 0 of the directory's total. */
static void dir_progress_hook(dir_progress *p, void (**progress)(void *, uint64_t, uint64_t), void **user,
                              const dir_list *l)
{
    memset(p, 0, sizeof *p);
    p->progress = *progress;
    p->user = *user;
    for (size_t i = 0; i < l->n; i++) p->total += l->v[i].size;
    if (!*progress) return;
    (*progress)(*user, 0, p->total);
    *progress = dir_progress_file;
    *user = p;
}

/* ---- the public functions ---------------------------------------------------- */

#ifndef ECF8_DECODE_ONLY /* encode_stubs.c has the decode-only one */
static int compress_dir(const char *in_dir, const char *out_dir, const ecf8_compress_options *options,
                        const ecf8_dir_options *dir_options)
{
    ecf8_compress_options co;
    int st = ecf8_compress_options_read(options, &co, "compress");
    if (st) return st;
    ecf8_dir_options dopt;
    ecf8_dir_options_init(&dopt);
    if (dir_options) {
        if (dir_options->struct_size < sizeof dopt)
            return ecf8_fail(ECF8_ERR_ARGUMENT, "ecf8_dir_options: struct_size %zu is too small",
                             dir_options->struct_size);
        dopt = *dir_options;
        if (!dopt.max_file_bytes) dopt.max_file_bytes = ECF8_HUB_FILE_LIMIT;
    }
    st = check_output_dir(out_dir, in_dir, co.overwrite != 0);
    dir_list l;
    if (st || (st = list_dir(in_dir, &dopt, true, &l))) return st;
    for (size_t i = 0; i < l.n && !st; i++)
        if (!l.v[i].coded && l.v[i].size > dopt.max_file_bytes)
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s/%s: %llu bytes, over the limit of %llu bytes per file", in_dir,
                           l.v[i].rel, (unsigned long long)l.v[i].size, (unsigned long long)dopt.max_file_bytes);
    stage s = {0};
    if (!st) st = stage_open(&s, out_dir);
    dir_progress prog;
    dir_progress_hook(&prog, &co.progress, &co.progress_user, &l);
    bool overwrite = co.overwrite != 0;
    co.overwrite = 0; /* the files go into the new staged directory */
    for (size_t i = 0; i < l.n && !st; i++) {
        const dir_file *f = &l.v[i];
        const char *dst = NULL;
        char *src = path_join(in_dir, f->rel);
        prog.weight = f->size;
        if (!src) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        else if (!(st = stage_add_file(&s, f->out_rel, &dst)))
            st = f->coded ? ecf8_compress_path(src, dst, &co) : copy_file(src, dst);
        struct stat sb;
        if (!st && f->coded && stat(dst, &sb) == 0 && (uint64_t)sb.st_size > dopt.max_file_bytes)
            st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: its container would be %llu bytes, over the limit of %llu bytes per file",
                           src, (unsigned long long)sb.st_size, (unsigned long long)dopt.max_file_bytes);
        if (!st && co.progress) dir_progress_advance(&prog, f->size);
        free(src);
    }
    if (!st) st = stage_commit(&s, overwrite);
    else if (s.path) stage_discard(&s);
    dir_list_free(&l);
    return st;
}

int ecf8_compress_dir(const char *in_dir, const char *out_dir, const ecf8_compress_options *options,
                      const ecf8_dir_options *dir_options)
{
    if (!in_dir || !out_dir) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    /* "ckpt/" names files "ckpt/x" in messages, not "ckpt//x". */
    char *in = strip_slashes(in_dir);
    int st = in ? compress_dir(in, out_dir, options, dir_options) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    free(in);
    return st;
}
#endif

/* Checks that the container `src` holds one safetensors file. */
static int check_single_source(const char *src)
{
    ecf8_file *f;
    int st = ecf8_file_open_index(src, &f);
    if (st) return ecf8_fail_context(st, "%s", src);
    if (ecf8_file_is_directory(f))
        st = ecf8_fail(ECF8_ERR_ARGUMENT, "%s: a container of a whole directory, not of one shard", src);
    ecf8_file_close(f);
    return st;
}

/* Decompresses (original NULL) or verifies in_dir, file by file. */
static int decode_dir(const char *in_dir, const char *out_dir, const char *original,
                      const ecf8_decode_options *options)
{
    ecf8_decode_options o;
    int rst = ecf8_decode_options_read(options, &o);
    if (rst) return rst;
    bool overwrite = o.overwrite != 0;
    int st = out_dir ? check_output_dir(out_dir, in_dir, overwrite) : ECF8_OK;
    dir_list l;
    if (st || (st = list_dir(in_dir, NULL, false, &l))) return st;
    stage s = {0};
    if (out_dir) st = stage_open(&s, out_dir);
    dir_progress prog;
    dir_progress_hook(&prog, &o.progress, &o.progress_user, &l);
    o.overwrite = 0; /* the files go into the new staged directory */
    for (size_t i = 0; i < l.n && !st; i++) {
        const dir_file *f = &l.v[i];
        const char *dst = NULL;
        char *src = path_join(in_dir, f->rel), *orig = original ? path_join(original, f->out_rel) : NULL;
        prog.weight = f->size;
        if (!src || (original && !orig)) st = ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        else if (f->coded && (st = check_single_source(src))) {}
        else if (!out_dir) st = f->coded ? ecf8_verify_path_ex(src, orig, &o) : orig ? compare_files(src, orig) : ECF8_OK;
        else if (!(st = stage_add_file(&s, f->out_rel, &dst)))
            st = f->coded ? ecf8_decompress_path_ex(src, dst, &o) : copy_file(src, dst);
        if (!st && o.progress) dir_progress_advance(&prog, f->size);
        free(src);
        free(orig);
    }
    if (out_dir && !st) st = stage_commit(&s, overwrite);
    else if (s.path) stage_discard(&s);
    dir_list_free(&l);
    return st;
}

/* decode_dir with in_dir's trailing slashes dropped (for the messages). */
static int decode_dir_stripped(const char *in_dir, const char *out_dir, const char *original,
                               const ecf8_decode_options *options)
{
    if (!in_dir) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    char *in = strip_slashes(in_dir);
    int st = in ? decode_dir(in, out_dir, original, options) : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    free(in);
    return st;
}

int ecf8_decompress_dir(const char *in_dir, const char *out_dir, const ecf8_decode_options *options)
{
    if (!out_dir) return ecf8_fail(ECF8_ERR_ARGUMENT, "NULL path");
    return decode_dir_stripped(in_dir, out_dir, NULL, options);
}

int ecf8_verify_dir(const char *in_dir, const char *original_dir, const ecf8_decode_options *options)
{
    return decode_dir_stripped(in_dir, NULL, original_dir, options);
}
