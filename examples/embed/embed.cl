/* embed.cl - the non-Linear layers of a BERT encoder (all-MiniLM-L6-v2) for
 * ecf8-embed, plus the two Linear kernels the library does not provide.
 * OpenCL C 1.2, fp32 only (no cl_khr_fp16), one work-item per output.
 *
 * Tokens of all sentences of a batch are rows of one [T, D] activation;
 * `seq[t]` = (first row, number of rows) of the sentence holding row t.
 *
 * FP_CONTRACT is off and every multiply-add that matters is an explicit
 * fma(), so no kernel here depends on how the compiler fuses. */
#pragma OPENCL FP_CONTRACT OFF

/* out[t] = LayerNorm(a[t] (+ bias) (+ res[t])) * gamma + beta over D
 * columns; flags bit 0: add bias, bit 1: add res.  out must not alias a or
 * res.  Global size: T. */
__kernel void add_layernorm(__global const float *a, __global const float *bias,
                            __global const float *res, uint flags, __global const float *gamma,
                            __global const float *beta, __global float *out, uint D, float eps)
{
    uint t = get_global_id(0);
    __global const float *ar = a + (size_t)t * D;
    __global const float *rr = res + (size_t)t * D;
    __global float *o = out + (size_t)t * D;
    float sum = 0.0f;
    for (uint d = 0; d < D; d++) {
        float v = ar[d];
        if (flags & 1u) v += bias[d];
        if (flags & 2u) v += rr[d];
        o[d] = v;
        sum += v;
    }
    float mean = sum / (float)D, var = 0.0f;
    for (uint d = 0; d < D; d++) {
        float c = o[d] - mean;
        var = fma(c, c, var);
    }
    float inv = 1.0f / sqrt(var / (float)D + eps);
    for (uint d = 0; d < D; d++) o[d] = fma((o[d] - mean) * inv, gamma[d], beta[d]);
}

/* y[t, n] += bias[n], then GELU (erf form) when gelu != 0.
 * Global size: (N, T). */
__kernel void bias_act(__global float *y, __global const float *bias, uint N, uint gelu)
{
    uint n = get_global_id(0), t = get_global_id(1);
    size_t i = (size_t)t * N + n;
    float v = y[i] + bias[n];
    if (gelu) v = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
    y[i] = v;
}

/* Scaled dot-product attention of head h for query row t over the rows of
 * its own sentence (no padding, no mask): softmax(q k^T * scale) v.  q, k,
 * v, out are [T, D] with head h in columns [h * HD, (h + 1) * HD).
 * Global size: (T, H).  HD <= 64. */
__kernel void attention(__global const float *q, __global const float *k,
                        __global const float *v, __global const int2 *seq,
                        __global float *out, uint D, uint HD, float scale)
{
    uint t = get_global_id(0), h = get_global_id(1);
    int2 s = seq[t];
    size_t col = (size_t)h * HD;
    float qv[64], acc[64];
    for (uint i = 0; i < HD; i++) {
        qv[i] = q[(size_t)t * D + col + i];
        acc[i] = 0.0f;
    }
    float mx = -INFINITY;
    for (int j = s.x; j < s.x + s.y; j++) {
        __global const float *kr = k + (size_t)j * D + col;
        float dot = 0.0f;
        for (uint i = 0; i < HD; i++) dot = fma(qv[i], kr[i], dot);
        mx = fmax(mx, dot * scale);
    }
    float l = 0.0f;
    for (int j = s.x; j < s.x + s.y; j++) {
        __global const float *kr = k + (size_t)j * D + col;
        __global const float *vr = v + (size_t)j * D + col;
        float dot = 0.0f;
        for (uint i = 0; i < HD; i++) dot = fma(qv[i], kr[i], dot);
        float e = exp(dot * scale - mx);
        l += e;
        for (uint i = 0; i < HD; i++) acc[i] = fma(e, vr[i], acc[i]);
    }
    for (uint i = 0; i < HD; i++) out[(size_t)t * D + col + i] = acc[i] / l;
}

/* Mean over the rows of sentence s: out[s, d].  starts[s], counts[s] give
 * its rows.  Global size: (D, S). */
__kernel void mean_pool(__global const float *x, __global const int *starts,
                        __global const int *counts, __global float *out, uint D)
{
    uint d = get_global_id(0), s = get_global_id(1);
    float sum = 0.0f;
    for (int j = starts[s]; j < starts[s] + counts[s]; j++) sum += x[(size_t)j * D + d];
    out[(size_t)s * D + d] = sum / (float)counts[s];
}

/* Y[m, n] = sum_k X[m, k] W[n, k] for an fp32 W [N, K] (the FP32 original
 * model): one fma chain per output.  Global size: (N, M). */
__kernel void matmul_f32(__global const float *x, __global const float *w, __global float *y,
                         uint N, uint K)
{
    uint n = get_global_id(0), m = get_global_id(1);
    __global const float *xr = x + (size_t)m * K, *wr = w + (size_t)n * K;
    float acc = 0.0f;
    for (uint i = 0; i < K; i++) acc = fma(xr[i], wr[i], acc);
    y[(size_t)m * N + n] = acc;
}

/* ---- raw FP8/BF16 weights, the library's reduction order ------------------ */
/* Exact fp32 value of a stored element (ecf8_cl.h: FP8 NaN codes read as a
 * quiet NaN with the element's sign, E5M2 +-Inf as +-Inf, subnormals
 * exactly; the subnormal products m * 2^-9 / 2^-16 are normal fp32 values,
 * so no denormal flushing can change them). */
inline float e4m3_value(uint b)
{
    uint s = (b & 0x80u) << 24, em = b & 0x7Fu;
    if (em == 0x7Fu) return as_float(s | 0x7FC00000u);
    if (em < 8u) return as_float(s | as_uint((float)em * 0x1p-9f));
    return as_float(s | ((em + 960u) << 20));
}

inline float e5m2_value(uint b)
{
    uint s = (b & 0x80u) << 24, em = b & 0x7Fu;
    if (em >= 0x7Cu) return as_float(s | (em == 0x7Cu ? 0x7F800000u : 0x7FC00000u));
    if (em < 4u) return as_float(s | as_uint((float)em * 0x1p-16f));
    return as_float(s | ((em + 448u) << 21));
}

/* Y = X W^T with W the raw elements ecf8_cl_enqueue_decode wrote (dtype
 * wdt: 1 E4M3, 2 E5M2, 3 BF16) and F32 block scales [ceil(N/128),
 * ceil(K/128)] (unused for BF16), in the order ecf8_cl.h documents for
 * both of its engines:
 *     acc = 0; for each 128-column block b: p = 0; p = fma(x, w, p) over its
 *     columns ascending; acc = fma(p, scale[n / 128, b], acc) (BF16: acc + p)
 * so that Y is bit-identical to the library's uncompressed engine.
 * Global size: (N, M). */
__kernel void matmul_raw(__global const float *x, __global const uchar *w,
                         __global const float *scale, __global float *y, uint N, uint K, uint wdt)
{
    uint n = get_global_id(0), m = get_global_id(1);
    __global const float *xr = x + (size_t)m * K;
    uint nkb = (K + 127u) / 128u;
    float acc = 0.0f;
    for (uint kb = 0; kb < nkb; kb++) {
        uint k1 = min(K, (kb + 1u) * 128u);
        float p = 0.0f;
        for (uint i = kb * 128u; i < k1; i++) {
            size_t e = (size_t)n * K + i;
            float wv;
            if (wdt == 1u)
                wv = e4m3_value(w[e]);
            else if (wdt == 2u)
                wv = e5m2_value(w[e]);
            else
                wv = as_float((uint)w[2 * e] << 16 | (uint)w[2 * e + 1] << 24);
            p = fma(xr[i], wv, p);
        }
        acc = wdt == 3u ? acc + p : fma(p, scale[(n / 128u) * nkb + kb], acc);
    }
    y[(size_t)m * N + n] = acc;
}

/* The embedding sum, as BERT adds it: x[tok[i]] = (word + type[0]) + pos[
 * position[i]] over D columns, for tokens i = first + get_global_id(1).
 * The word row of token i is D elements of w from element row[i], of
 * dtype wdt (0 F32, 1 BF16, 2 F16): the raw table, or the bands of the
 * coded table that ecf8_cl_enqueue_decode_rows wrote into a scratch
 * buffer.  Global size: D x tokens. */
__kernel void embed_rows(__global const uchar *w, uint wdt, __global const ulong *row,
                         __global const uint *tok, __global const uint *position, uint first,
                         __global const float *type, __global const float *pos,
                         __global float *x, uint D)
{
    uint d = get_global_id(0), i = first + get_global_id(1);
    size_t e = (size_t)row[i] + d;
    float wv;
    if (wdt == 1u)
        wv = as_float((uint)w[2 * e] << 16 | (uint)w[2 * e + 1] << 24);
    else if (wdt == 2u)
        wv = vload_half(e, (__global const half *)w);
    else
        wv = as_float((uint)w[4 * e] | (uint)w[4 * e + 1] << 8 | (uint)w[4 * e + 2] << 16 |
                      (uint)w[4 * e + 3] << 24);
    x[(size_t)tok[i] * D + d] = (wv + type[d]) + pos[(size_t)position[i] * D + d];
}
