/* cli_weight.c - the Linear weight `ecf8 matmul` and ecf8-bench-matmul
 * multiply, and its block scales (cli.h).  Compiled into both programs, so
 * it uses the public API only and prints nothing: errors come back as text. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int weight_error(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int weight_error(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return 1;
}

static int lib_why(char *why, size_t size, const char *fallback)
{
    const char *d = ecf8_last_error();
    return weight_error(why, size, "%s", d[0] ? d : fallback);
}

static int matmul_dtype(ecf8_dtype d)
{
    return d == ECF8_DTYPE_F8_E4M3 || d == ECF8_DTYPE_F8_E5M2 || d == ECF8_DTYPE_BF16;
}

static int load_weight(const ecf8_file *f, const char *name, mm_weight *out, char *why, size_t size)
{
    size_t i;
    memset(out, 0, sizeof *out);
    if (ecf8_file_find(f, name, &i)) return weight_error(why, size, "no tensor '%s'", name);
    if (ecf8_file_tensor(f, i, &out->w)) return lib_why(why, size, "unreadable tensor");
    const ecf8_tensor_info *t = &out->w;
    if (!matmul_dtype(t->dtype) || t->ndim != 2)
        return weight_error(why, size,
                            "tensor '%s' is %s with %u dims; matmul needs a 2-D F8_E4M3, F8_E5M2 or BF16 weight",
                            name, t->dtype_name, t->ndim);
    if (t->dtype == ECF8_DTYPE_BF16) return 0;
    /* The naming rules of ecf8_file_find_scale (ecf8.h); its error names
     * every candidate looked for, or every one found when they clash. */
    ecf8_scale_name(name, 0, out->scale_name, sizeof out->scale_name);
    size_t si;
    if (ecf8_file_find_scale(f, i, &si)) return lib_why(why, size, "no scale tensor");
    if (ecf8_file_tensor(f, si, &out->s)) return lib_why(why, size, "unreadable scale tensor");
    snprintf(out->scale_name, sizeof out->scale_name, "%s", out->s.name);
    out->has_scale = 1;
    return 0;
}

/* Whether FP8 weight i has a scale in a form the matmul takes (the forms
 * ecf8_cl_matmul_create accepts, ecf8_cl.h): F32, BF16, F16, F8_E8M0 or U8;
 * a scalar [] or [1], per-row [N] or [N, 1], or blocks [ceil(N/bn),
 * ceil(K/bk)] of 128x128, 32x32 or 1x32. */
static int block_scaled(const ecf8_file *f, size_t i, const ecf8_tensor_info *w)
{
    size_t j;
    ecf8_tensor_info s;
    if (ecf8_file_find_scale(f, i, &j) || ecf8_file_tensor(f, j, &s)) return 0;
    const char *dn = s.dtype_name ? s.dtype_name : "";
    int dtype_ok = s.dtype == ECF8_DTYPE_BF16 || s.dtype == ECF8_DTYPE_F16 ||
                   s.dtype == ECF8_DTYPE_F8_E8M0 || s.dtype == ECF8_DTYPE_U8 ||
                   (s.dtype == ECF8_DTYPE_OTHER && !strcmp(dn, "F32"));
    if (!dtype_ok) return 0;
    uint64_t n = w->shape[0], k = w->shape[1];
    if (s.ndim == 0) return 1;
    if (s.ndim == 1) return s.shape[0] == 1 || s.shape[0] == n;
    if (s.ndim != 2) return 0;
    uint64_t a = s.shape[0], b = s.shape[1];
    return (a == (n + 127) / 128 && b == (k + 127) / 128) || (a == n && b == 1) ||
           (a == (n + 31) / 32 && b == (k + 31) / 32) || (a == n && b == (k + 31) / 32);
}

/* The largest Linear-like weight: 2-D, FP8 with scales the matmul takes
 * (block_scaled) or BF16, not an embedding table. */
static int pick_weight(const ecf8_file *f, mm_weight *out, char *why, size_t size)
{
    const char *best = NULL;
    uint64_t best_n = 0;
    for (size_t i = 0; i < ecf8_file_tensor_count(f); i++) {
        ecf8_tensor_info t;
        if (ecf8_file_tensor(f, i, &t) || !matmul_dtype(t.dtype) || t.ndim != 2) continue;
        if (strstr(t.name, "embed")) continue;
        if (t.dtype != ECF8_DTYPE_BF16 && !block_scaled(f, i, &t)) continue;
        if (t.n_elements > best_n) best = t.name, best_n = t.n_elements;
    }
    if (!best) return weight_error(why, size, "no 2-D F8_E4M3/F8_E5M2 (with scales) or BF16 weight to multiply");
    return load_weight(f, best, out, why, size);
}

int mm_weight_find(const ecf8_file *f, const char *name, mm_weight *out, char *why, size_t why_size)
{
    return name ? load_weight(f, name, out, why, why_size) : pick_weight(f, out, why, why_size);
}
