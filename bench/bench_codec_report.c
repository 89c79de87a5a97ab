/* bench_codec_report.c - the output of ecf8-bench-codec: one file's results
 * as JSON (--json) or as a table with the targets' verdicts, and the summary
 * line per file after several.  A figure that was not measured (0) is null
 * in JSON and "-" in the table. */
#include "bench_codec.h"
#include "bench_util.h"
#include "ecf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ,"key":value, or null for a figure that was not measured (0). */
static void json_num(const char *key, int decimals, double v)
{
    if (v > 0)
        printf(",\"%s\":%.*f", key, decimals, v);
    else
        printf(",\"%s\":null", key);
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0; }

void print_json(const model *m, const results *r, const bench_opts *o)
{
    const double MB = 1e6, GB = 1e9;
    printf("{\"file\":");
    bench_json_string(stdout, m->path);
    printf(",\"repeat\":%u,\"threads_all\":%u,\"clock\":\"%s\",\"stat\":\"%s\"", o->repeat,
           r->threads_all, g_clock == CLOCK_MONOTONIC ? "monotonic" : "thread_cputime",
           g_stat_min ? "min" : "median");
    printf(",\"tensors\":%u,\"coded_tensors\":%u", r->n_tensors, r->n_coded);
    printf(",\"source_bytes\":%llu,\"header_bytes\":%llu,\"coded_source_bytes\":%llu",
           (unsigned long long)r->source_bytes, (unsigned long long)r->header_bytes,
           (unsigned long long)r->coded_source_bytes);
    if (o->mode == MODE_ALL) {
        printf(",\"ecf8_bytes\":%llu,\"ecf8_payload_bytes\":%llu",
               (unsigned long long)r->ecf8_bytes, (unsigned long long)r->ecf8_payload_bytes);
        if (o->zstd) printf(",\"zstd19_bytes\":%llu", (unsigned long long)r->zstd19_bytes);
        printf(",\"ecf8_paper_layout_bytes\":%llu,\"ecf8_paper_layout_all_dtypes_bytes\":%llu",
               (unsigned long long)r->paper_e4m3_bytes, (unsigned long long)r->paper_all_bytes);
        printf(",\"paper_layout_compared\":\"all_dtypes\"");
        printf(",\"entropy_bound_bytes\":%llu", (unsigned long long)r->bound_bytes);
        printf(",\"ecf8_ratio\":%.5f,\"ecf8_over_bound\":%.5f",
               ratio(r->ecf8_bytes, r->source_bytes), ratio(r->ecf8_bytes, r->bound_bytes));
        if (o->zstd)
            printf(",\"zstd19_ratio\":%.5f,\"ecf8_over_zstd19\":%.5f",
                   ratio(r->zstd19_bytes, r->source_bytes), ratio(r->ecf8_bytes, r->zstd19_bytes));
        printf(",\"ecf8_over_paper_layout\":%.5f,\"ecf8_over_paper_layout_all_dtypes\":%.5f",
               ratio(r->ecf8_bytes, r->paper_e4m3_bytes), ratio(r->ecf8_bytes, r->paper_all_bytes));
        printf(",\"overhead_bytes\":{\"split_choice\":%.0f,\"huffman\":%.0f,"
               "\"chunk_padding\":%.0f,\"chunk_offsets\":%.0f,\"code_lengths\":%.0f,"
               "\"stream_pad\":%.0f,\"stored_small\":%.0f,\"container\":%.0f}",
               r->ov_split, r->ov_huffman, r->ov_chunk_pad, r->ov_offsets, r->ov_lengths,
               r->ov_stream_pad, r->ov_stored, r->ov_container);
        printf(",\"roundtrip_file_ok\":%s,\"roundtrip_memory_ok\":%s",
               r->roundtrip_file_ok ? "true" : "false", r->roundtrip_mem_ok ? "true" : "false");
    }
    if (o->mode != MODE_DECODE)
        printf(",\"encode_mbps_per_core\":%.1f", rate(r->coded_source_bytes, r->enc1, MB)),
            json_num("encode_mbps_all", 1, rate(r->coded_source_bytes, r->encA, MB));
    if (o->mode == MODE_ALL)
        json_num("compress_file_mbps_all", 1, rate(r->source_bytes, r->compress_file, MB));
    if (o->mode != MODE_ENCODE) {
        printf(",\"decode_gbps_per_core\":%.3f", rate(r->coded_source_bytes, r->dec1, GB));
        json_num("decode_gbps_all", 3, rate(r->coded_source_bytes, r->decA, GB));
        printf(",\"file_decode_gbps_per_core\":%.3f", rate(r->source_bytes, r->file1, GB));
        json_num("file_decode_gbps_all", 3, rate(r->source_bytes, r->fileA, GB));
    }
    if (o->mode == MODE_ALL) {
        printf(",\"verified_decode_gbps_per_core\":%.3f", rate(r->source_bytes, r->verified1, GB));
        if (o->zstd) {
            double z = rate(r->source_bytes, r->zstd_dec, GB);
            printf(",\"zstd_decode_gbps_per_core\":%.3f", z);
            printf(",\"decode_over_zstd\":%.3f,\"file_decode_over_zstd\":%.3f",
                   z > 0 ? rate(r->coded_source_bytes, r->dec1, GB) / z : 0,
                   z > 0 ? rate(r->source_bytes, r->file1, GB) / z : 0);
            printf(",\"zstd19_cached\":%s", r->zstd_cached ? "true" : "false");
        }
    }
    printf(",\"groups\":[");
    for (unsigned g = 0; g < r->n_groups; g++) {
        const group *G = &r->groups[g];
        printf("%s{\"dtype\":\"%s\",\"split\":\"%s\",\"tensors\":%u,\"elements\":%llu,"
               "\"source_bytes\":%llu,\"payload_bytes\":%llu,\"entropy_bound_bytes\":%llu",
               g ? "," : "", ecf8_dtype_name(G->dtype), ecf8_split_name(G->split), G->tensors,
               (unsigned long long)G->elements, (unsigned long long)G->source_bytes,
               (unsigned long long)G->payload_bytes, (unsigned long long)G->bound_bytes);
        if (o->mode != MODE_DECODE)
            printf(",\"encode_mbps_per_core\":%.1f,\"encode_ns_per_element\":%.3f",
                   rate(G->source_bytes, G->enc1_s, MB),
                   G->elements ? G->enc1_s * 1e9 / (double)G->elements : 0);
        if (o->mode != MODE_ENCODE)
            printf(",\"decode_gbps_per_core\":%.3f,\"decode_ns_per_element\":%.3f",
                   rate(G->source_bytes, G->dec1_s, GB),
                   G->elements ? G->dec1_s * 1e9 / (double)G->elements : 0);
        printf("}");
    }
    printf("]}\n");
    fflush(stdout);
}

static const char *pass(bool ok) { return ok ? "PASS" : "FAIL"; }

/* A figure in a fixed-width column, "-" when it was not measured. */
static const char *fig(char *buf, size_t cap, int decimals, double v)
{
    if (v <= 0) return "-";
    snprintf(buf, cap, "%.*f", decimals, v);
    return buf;
}

void print_table(const model *m, const results *r, const bench_opts *o)
{
    const double MB = 1e6, GB = 1e9, S = (double)r->source_bytes;
    printf("\n== %s: %llu bytes, %u tensors (%u coded), %s of %u, all = %u threads%s\n",
           m->path, (unsigned long long)r->source_bytes, r->n_tensors, r->n_coded,
           g_stat_min ? "best" : "median", o->repeat, r->threads_all, g_clock == CLOCK_MONOTONIC ? "" : ", thread CPU time");
    if (o->mode == MODE_ALL) {
        printf("  %-38s %12s %8s\n", "size", "bytes", "% src");
        printf("  %-38s %12llu %8.3f\n", "source", (unsigned long long)r->source_bytes, 100.0);
        printf("  %-38s %12llu %8.3f  roundtrip %s\n", "ecf8", (unsigned long long)r->ecf8_bytes,
               100 * (double)r->ecf8_bytes / S,
               r->roundtrip_file_ok && r->roundtrip_mem_ok ? "byte-exact" : "MISMATCH");
        printf("  %-38s %12.0f %8.3f  = split %.0f + huffman %.0f + chunk pad %.0f + offsets %.0f\n"
               "  %-38s %12s %8s    + code lengths %.0f + stream pad %.0f + stored small %.0f"
               " + container %.0f\n",
               "ecf8 - bound", (double)r->ecf8_bytes - (double)r->bound_bytes,
               100 * ((double)r->ecf8_bytes - (double)r->bound_bytes) / (double)r->bound_bytes,
               r->ov_split, r->ov_huffman, r->ov_chunk_pad, r->ov_offsets, "", "", "",
               r->ov_lengths, r->ov_stream_pad, r->ov_stored, r->ov_container);
        printf("  %-38s %12llu %8.3f  ecf8/bound %.4f <= %.2f %s\n", "order-0 entropy bound",
               (unsigned long long)r->bound_bytes, 100 * (double)r->bound_bytes / S,
               ratio(r->ecf8_bytes, r->bound_bytes), TARGET_BOUND_RATIO,
               pass(ratio(r->ecf8_bytes, r->bound_bytes) <= TARGET_BOUND_RATIO));
        if (o->zstd)
            printf("  %-38s %12llu %8.3f  ecf8/zstd %.4f %s%s\n", "zstd -19 (libzstd, 1 thread)",
                   (unsigned long long)r->zstd19_bytes, 100 * (double)r->zstd19_bytes / S,
                   ratio(r->ecf8_bytes, r->zstd19_bytes), pass(r->ecf8_bytes < r->zstd19_bytes),
                   r->zstd_cached ? " (cached)" : "");
        printf("  %-38s %12llu %8.3f  ecf8/layout %.4f\n", "ECF8 paper layout (E4M3 only)",
               (unsigned long long)r->paper_e4m3_bytes, 100 * (double)r->paper_e4m3_bytes / S,
               ratio(r->ecf8_bytes, r->paper_e4m3_bytes));
        printf("  %-38s %12llu %8.3f  ecf8/layout %.4f %s\n", "ECF8 layout, all dtypes (compared)",
               (unsigned long long)r->paper_all_bytes, 100 * (double)r->paper_all_bytes / S,
               ratio(r->ecf8_bytes, r->paper_all_bytes), pass(r->ecf8_bytes < r->paper_all_bytes));
    }
    printf("  %-38s %12s %10s\n", "speed", "1 thread", "all");
    if (o->mode != MODE_DECODE) {
        double e1 = rate(r->coded_source_bytes, r->enc1, MB);
        char b[32];
        printf("  %-38s %12.1f %10s  >= %.0f MB/s/core %s\n", "encode MB/s (coded tensors)", e1,
               fig(b, sizeof b, 1, rate(r->coded_source_bytes, r->encA, MB)), TARGET_ENCODE_MBPS,
               pass(e1 >= TARGET_ENCODE_MBPS));
        if (o->mode == MODE_ALL)
            printf("  %-38s %12s %10s\n", "compress file MB/s (ecf8_compress_path)", "-",
                   fig(b, sizeof b, 1, rate(r->source_bytes, r->compress_file, MB)));
    }
    if (o->mode != MODE_ENCODE) {
        double d1 = rate(r->coded_source_bytes, r->dec1, GB);
        double z = o->mode == MODE_ALL && o->zstd ? rate(r->source_bytes, r->zstd_dec, GB) : 0;
        char b[32];
        printf("  %-38s %12.3f %10s  >= %.1f GB/s/core %s\n", "decode GB/s (coded tensors)", d1,
               fig(b, sizeof b, 3, rate(r->coded_source_bytes, r->decA, GB)),
               TARGET_DECODE_GBPS, pass(d1 >= TARGET_DECODE_GBPS));
        printf("  %-38s %12.3f %10s\n", "decode GB/s (whole file, in memory)",
               rate(r->source_bytes, r->file1, GB),
               fig(b, sizeof b, 3, rate(r->source_bytes, r->fileA, GB)));
        if (o->mode == MODE_ALL) {
            printf("  %-38s %12.3f %10s\n", "decode GB/s (.ecf8, checksums)",
                   rate(r->source_bytes, r->verified1, GB), "-");
            if (o->zstd)
                printf("  %-38s %12.3f %10s  coded/zstd %.2fx %s (whole file %.2fx)\n",
                       "zstd -d GB/s (level-19 frame)", z, "-", z > 0 ? d1 / z : 0,
                       pass(d1 > z), z > 0 ? rate(r->source_bytes, r->file1, GB) / z : 0);
        }
    }
    printf("  %-18s %4s %10s %11s %11s %11s %9s %9s %9s %9s\n", "dtype/split", "n", "elements",
           "src bytes", "payload", "bound", "pay/src", "pay/bnd", "enc MB/s", "dec GB/s");
    for (unsigned g = 0; g < r->n_groups; g++) {
        const group *G = &r->groups[g];
        char name[40];
        snprintf(name, sizeof name, "%s/%s", ecf8_dtype_name(G->dtype), ecf8_split_name(G->split));
        printf("  %-18s %4u %10llu %11llu %11llu %11llu %9.4f %9.4f", name, G->tensors,
               (unsigned long long)G->elements, (unsigned long long)G->source_bytes,
               (unsigned long long)G->payload_bytes, (unsigned long long)G->bound_bytes,
               ratio(G->payload_bytes, G->source_bytes), ratio(G->payload_bytes, G->bound_bytes));
        if (o->mode != MODE_DECODE)
            printf(" %9.1f", rate(G->source_bytes, G->enc1_s, MB));
        else
            printf(" %9s", "-");
        if (o->mode != MODE_ENCODE)
            printf(" %9.3f", rate(G->source_bytes, G->dec1_s, GB));
        printf("\n");
    }
    fflush(stdout);
}

void print_summary(const char *const *files, const results *r, size_t nf, const bench_opts *o)
{
    const double MB = 1e6, GB = 1e9;
    printf("\nsummary (%s of %u; enc/dec = 1 thread; * = target missed)\n",
           g_stat_min ? "best" : "median", o->repeat);
    printf("  %-30s %7s %7s %7s %7s %7s %8s %7s %7s %7s\n", "file", "ecf8", "/bound",
           "/zstd19", "/layout", "zstd19", "enc MB/s", "dec GB/s", "zstd-d", "dec/zd");
    for (size_t i = 0; i < nf; i++) {
        const results *x = &r[i];
        double b = ratio(x->ecf8_bytes, x->bound_bytes), z = ratio(x->ecf8_bytes, x->zstd19_bytes);
        double l = ratio(x->ecf8_bytes, x->paper_all_bytes);
        double e = rate(x->coded_source_bytes, x->enc1, MB), d = rate(x->coded_source_bytes, x->dec1, GB);
        double zd = rate(x->source_bytes, x->zstd_dec, GB);
        printf("  %-30.30s %7.4f %6.4f%s %6.4f%s %6.4f%s %7.4f %7.1f%s %6.3f%s %7.3f %6.2f%s\n",
               base_name(files[i]), ratio(x->ecf8_bytes, x->source_bytes), b,
               b <= TARGET_BOUND_RATIO ? " " : "*", z, o->zstd && z < 1 ? " " : "*", l,
               l < 1 ? " " : "*", ratio(x->zstd19_bytes, x->source_bytes), e,
               e >= TARGET_ENCODE_MBPS ? " " : "*", d, d >= TARGET_DECODE_GBPS ? " " : "*", zd,
               zd > 0 ? d / zd : 0, zd > 0 && d > zd ? " " : "*");
    }
    printf("  (ecf8, zstd19: size / source; /bound, /zstd19, /layout: ecf8 size over each;\n"
           "   layout = ECF8 paper layout applied to all coded dtypes)\n");
}
