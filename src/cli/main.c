/* ecf8 - command-line tool, a thin layer over the public API (ecf8.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Length of the well-formed UTF-8 sequence at p (1 to 4), 0 when the byte
 * at p does not start one (a stray continuation byte, an overlong form, a
 * surrogate, a code point above U+10FFFF or a truncated sequence). */
static int utf8_sequence_length(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    int n = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (!n || p[0] > 0xF4) return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
        return 0;
    return n;
}

void cli_put_escaped(FILE *f, const char *s, bool json)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = utf8_sequence_length(p);
        /* C0 controls, DEL and the C1 controls (U+0080..U+009F: ESC's
         * one-byte twins, e.g. CSI) are escaped; so is all that is not
         * UTF-8, as bytes in text and U+FFFD in JSON (which must be
         * UTF-8). */
        bool control = n == 1 ? p[0] < 0x20 || p[0] == 0x7F : n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
        if (n == 0) {
            if (json) fputs("\\ufffd", f);
            else fprintf(f, "\\x%02x", p[0]);
            p++;
        } else if (control) {
            unsigned cp = n == 1 ? p[0] : p[1];
            if (json) fprintf(f, "\\u%04x", cp);
            else if (n == 1) fprintf(f, "\\x%02x", cp);
            else fprintf(f, "\\x%02x\\x%02x", p[0], p[1]);
            p += n;
        } else {
            if (json && (p[0] == '\\' || p[0] == '"')) fputc('\\', f);
            fwrite(p, 1, (size_t)n, f);
            p += n;
        }
    }
}

/* "ecf8: " + the message escaped for the terminal + a newline, on a clean
 * line of stderr. */
static void print_message(const char *fmt, va_list ap)
{
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    cli_progress_clear();
    fputs("ecf8: ", stderr);
    cli_put_escaped(stderr, text, false);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message(fmt, ap);
    va_end(ap);
    return 1;
}

int cli_fail(int status, const char *fallback_what)
{
    const char *detail = ecf8_last_error();
    return cli_error("%s%s", detail[0] ? detail : fallback_what,
                     status == ECF8_ERR_EXISTS ? " (use --force to overwrite)" : "");
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'ecf8 help'.\n");
    return 2;
}

int cli_bad_path(const char *path, bool output)
{
    if (!path[0]) return cli_usage_error("empty file name");
    if (output && !strcmp(path, "-"))
        return cli_usage_error("ecf8 does not write to standard output ('./-' names a file called -)");
    return 0;
}

int cli_unknown_option(const char *command, const char *option, bool last, const char *value_options)
{
    size_t n = strlen(option);
    for (const char *p = value_options; last && (p = strstr(p, option)) != NULL; p += n)
        if ((p == value_options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return cli_usage_error("%s: option '%s' needs a value", command, option);
    return cli_usage_error("%s: unknown option '%s'", command, option);
}

bool cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max) return false;
    *out = v;
    return true;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    cli_put_escaped(f, s, true);
    fputc('"', f);
}

#define PROGRESS_WIDTH 40

/* Whether a bar is on stderr's current line (only ever with a terminal),
 * and when the operation it shows began (for the rate and the ETA). */
static bool g_bar_drawn;
static double g_bar_start = -1;
#define BAR_LINE (PROGRESS_WIDTH + 64)

static double monotonic_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Erases the bar's line, so that what follows (an error) starts clean; a
 * no-op when no bar is drawn, so nothing is written to a non-terminal. */
void cli_progress_clear(void)
{
    if (!g_bar_drawn) return;
    fprintf(stderr, "\r%*s\r", BAR_LINE, "");
    fflush(stderr);
    g_bar_drawn = false;
}

/* Draws "WHAT [####    ]  42%  123.4 MB/s  ETA 0:07" on stderr; installed
 * only when stderr is a terminal.  The rate is of the bytes the callback
 * counts (the original tensors' bytes) since the first call. */
static void progress_bar(void *user, uint64_t done, uint64_t total)
{
    const char *what = user;
    double now = monotonic_seconds();
    if (g_bar_start < 0 || done == 0) g_bar_start = now;
    if (done >= total) {
        cli_progress_clear();
        g_bar_start = -1;
        return;
    }
    int width = PROGRESS_WIDTH, filled = (int)((double)done / (double)total * width);
    char tail[64] = "";
    double elapsed = now - g_bar_start;
    if (elapsed > 0.02 && done > 0) {
        double rate = (double)done / elapsed, eta = (double)(total - done) / rate;
        unsigned secs = eta < 359999 ? (unsigned)(eta + 0.5) : 359999;
        snprintf(tail, sizeof tail, "  %.1f MB/s  ETA %u:%02u:%02u", rate * 1e-6, secs / 3600,
                 secs / 60 % 60, secs % 60);
    }
    fprintf(stderr, "\r%s [%.*s%*s] %3d%%%-40s", what, filled,
            "########################################", width - filled, "",
            (int)(100.0 * (double)done / (double)total), tail);
    fflush(stderr);
    g_bar_drawn = true;
}

static void install_bar(void (**progress)(void *, uint64_t, uint64_t), void **user, const char *what)
{
    if (isatty(2)) {
        *progress = progress_bar;
        *user = (void *)what;
    }
}

void cli_install_progress(ecf8_compress_options *o, const char *what)
{
    install_bar(&o->progress, &o->progress_user, what);
}

void cli_install_decode_progress(ecf8_decode_options *o, const char *what)
{
    install_bar(&o->progress, &o->progress_user, what);
}

/* A container made from a directory holds only the files that
 * ecf8_checkpoint_file_name accepts: names every other entry of `dir` on
 * stderr, so that a tokenizer or README left behind is not a surprise. */
static void note_files_left_out(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (ecf8_checkpoint_file_name(de->d_name)) continue;
        cli_error("note: %s/%s: not in the container (it holds the *.safetensors and *.json files)", dir,
                  de->d_name);
    }
    closedir(d);
}

static int cmd_convert(int argc, char **argv)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    const char *paths[2];
    int np = 0, layout = -1;
    for (int i = 0; i < argc; i++) {
        unsigned long long v;
        if (!strcmp(argv[i], "--layout") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1, &v)) return cli_usage_error("bad --layout '%s' (0 or 1)", argv[i]);
            layout = (int)v;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 256, &v)) return cli_usage_error("bad --threads '%s'", argv[i]);
            o.threads = (unsigned)v;
        } else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1u << 20, &v) || v < 64)
                return cli_usage_error("bad --chunk '%s' (64..1048576 elements)", argv[i]);
            o.chunk_elements = (uint32_t)v;
        } else if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) {
            o.overwrite = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown_option("convert", argv[i], i + 1 == argc, "--layout --chunk --threads");
        } else if (np < 2) {
            paths[np++] = argv[i];
        } else {
            return cli_usage_error("unexpected argument '%s'", argv[i]);
        }
    }
    if (np != 2 || layout < 0)
        return cli_usage_error("%s", "usage: ecf8 convert IN.ecf8 OUT.ecf8 --layout 0|1 [--chunk N] [--threads N] [--force]");
    o.stream_layout = (unsigned)layout;
    int rc = cli_bad_path(paths[0], false);
    if (rc || (rc = cli_bad_path(paths[1], true))) return rc;
    cli_install_progress(&o, "converting");
    int st = ecf8_convert_path(paths[0], paths[1], &o);
    if (st) return cli_fail(st, "conversion failed");
    cli_progress_clear();
    return 0;
}

/* Whether `path` names a directory: it ends with '/' or is one. */
static bool names_directory(const char *path)
{
    struct stat sb;
    size_t n = strlen(path);
    return (n && path[n - 1] == '/') || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

/* compress DIR OUTDIR/: one container per shard (ecf8_compress_dir). */
static int compress_dir(const char *in, const char *out, ecf8_compress_options *o, const ecf8_dir_options *d)
{
    cli_install_progress(o, "compressing");
    int st = ecf8_compress_dir(in, out, o, d);
    if (st) return cli_fail(st, "compression failed");
    cli_progress_clear();
    return 0;
}

/* compress with room for argc --include and --exclude patterns. */
static int compress_with(int argc, char **argv, const char **include, const char **exclude)
{
    ecf8_compress_options o;
    ecf8_compress_options_init(&o);
    ecf8_dir_options d;
    ecf8_dir_options_init(&d);
    d.include = include;
    d.exclude = exclude;
    const char *dir_option = NULL; /* an option that only an output directory takes */
    const char *paths[2];
    int np = 0;
    for (int i = 0; i < argc; i++) {
        unsigned long long v;
        if (!strcmp(argv[i], "--include") && i + 1 < argc) {
            dir_option = argv[i];
            include[d.n_include++] = argv[++i];
        } else if (!strcmp(argv[i], "--exclude") && i + 1 < argc) {
            dir_option = argv[i];
            exclude[d.n_exclude++] = argv[++i];
        } else if (!strcmp(argv[i], "--max-file-size") && i + 1 < argc) {
            dir_option = argv[i];
            if (!cli_parse_uint(argv[++i], UINT64_MAX, &v) || v < 1)
                return cli_usage_error("bad --max-file-size '%s' (bytes, at least 1)", argv[i]);
            d.max_file_bytes = v;
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            const char *s = argv[++i];
            if (!strcmp(s, "auto")) o.split = ECF8_SPLIT_AUTO;
            else if (!strcmp(s, "exponent")) o.split = ECF8_SPLIT_EXPONENT;
            else if (!strcmp(s, "byte")) o.split = ECF8_SPLIT_BYTE;
            else return cli_usage_error("unknown split '%s' (auto, exponent or byte)", s);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 256, &v)) return cli_usage_error("bad --threads '%s'", argv[i]);
            o.threads = (unsigned)v;
        } else if (!strcmp(argv[i], "--max-code-bits") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], ECF8_MAX_CODE_BITS, &v) || v < 1)
                return cli_usage_error("bad --max-code-bits '%s' (1..13)", argv[i]);
            o.max_code_bits = (unsigned)v;
        } else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1u << 20, &v) || v < 64)
                return cli_usage_error("bad --chunk '%s' (64..1048576 elements)", argv[i]);
            o.chunk_elements = (uint32_t)v;
        } else if (!strcmp(argv[i], "--layout") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 1, &v)) return cli_usage_error("bad --layout '%s' (0 or 1)", argv[i]);
            o.stream_layout = (unsigned)v;
        } else if (!strcmp(argv[i], "--plain-index")) {
            o.plain_index = 1;
        } else if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) {
            o.overwrite = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown_option("compress", argv[i], i + 1 == argc,
                                      "--split --threads --max-code-bits --chunk --layout --include --exclude "
                                      "--max-file-size");
        } else if (np < 2) {
            paths[np++] = argv[i];
        } else {
            return cli_usage_error("unexpected argument '%s'", argv[i]);
        }
    }
    if (np != 2)
        return cli_usage_error("%s", "usage: ecf8 compress IN.safetensors|DIR OUT.ecf8|OUTDIR/ [--split auto|exponent|byte] [--threads N] [--force]");
    int rc = cli_bad_path(paths[0], false);
    if (rc || (rc = cli_bad_path(paths[1], true))) return rc;
    struct stat in_sb;
    bool in_is_dir = stat(paths[0], &in_sb) == 0 && S_ISDIR(in_sb.st_mode);
    if (in_is_dir && names_directory(paths[1])) return compress_dir(paths[0], paths[1], &o, &d);
    if (dir_option)
        return cli_usage_error("compress: %s needs a directory to compress into a directory (ecf8 compress DIR OUTDIR/)",
                               dir_option);
    cli_install_progress(&o, "compressing");
    uint64_t codable_tensors;
    int st = ecf8_compress_path_counted(paths[0], paths[1], &o, &codable_tensors);
    if (st) return cli_fail(st, "compression failed");
    cli_progress_clear();
    note_files_left_out(paths[0]);
    /* The one message on stderr of a compress that succeeds: the container
     * is the checkpoint stored, a little larger than it was. */
    if (codable_tensors == 0)
        cli_error("%s: warning: no FP8/BF16/FP16 tensors, nothing to compress", paths[0]);
    return 0;
}

static int cmd_compress(int argc, char **argv)
{
    const char **include = calloc((size_t)argc + 1, sizeof *include);
    const char **exclude = calloc((size_t)argc + 1, sizeof *exclude);
    int rc = include && exclude ? compress_with(argc, argv, include, exclude) : cli_error("out of memory");
    free(include);
    free(exclude);
    return rc;
}

/* --threads N, --force/-f where `force` is not NULL, and up to max_paths
 * paths (the second an output where `force` is not NULL). */
static int parse_threads_and_paths(const char *command, int argc, char **argv, const char **paths,
                                   int max_paths, int *np, unsigned *threads, bool *force,
                                   const char *usage)
{
    *np = 0;
    for (int i = 0; i < argc; i++) {
        unsigned long long v;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!cli_parse_uint(argv[++i], 256, &v)) return cli_usage_error("bad --threads '%s'", argv[i]);
            *threads = (unsigned)v;
        } else if (force && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))) {
            *force = true;
        } else if (!argv[i][0] || (force && *np == 1 && !strcmp(argv[i], "-"))) {
            return cli_bad_path(argv[i], force != NULL);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown_option(command, argv[i], i + 1 == argc, "--threads");
        } else if (*np < max_paths) {
            paths[(*np)++] = argv[i];
        } else {
            return cli_usage_error("%s", usage);
        }
    }
    return -1;
}

static int cmd_decompress(int argc, char **argv)
{
    const char *paths[2];
    int np;
    unsigned threads = 0;
    bool force = false;
    const char *usage = "usage: ecf8 decompress IN.ecf8|INDIR/ OUT.safetensors|DIR [--threads N] [--force]";
    int rc = cli_decompress_engine_args(&argc, argv);
    if (rc >= 0) return rc;
    rc = parse_threads_and_paths("decompress", argc, argv, paths, 2, &np, &threads, &force, usage);
    if (rc >= 0) return rc;
    if (np != 2) return cli_usage_error("%s", usage);
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    o.overwrite = force;
    cli_install_decode_progress(&o, "decompressing");
    struct stat sb;
    if (stat(paths[0], &sb) == 0 && S_ISDIR(sb.st_mode)) {
        /* A directory of containers (compress DIR OUTDIR/), decoded on the
         * CPU: a device asked for by name is refused, not ignored. */
        if (cli_engine_is_device())
            return cli_usage_error("%s: a directory of containers is decoded on the CPU (--engine opencl "
                                   "decodes one container)", paths[0]);
        int st = ecf8_decompress_dir(paths[0], paths[1], &o);
        if (st) return cli_fail(st, "decompression failed");
        rc = 0;
    } else {
        rc = cli_decompress(paths[0], paths[1], &o);
    }
    cli_progress_clear();
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    const char *paths[2];
    int np;
    unsigned threads = 0;
    const char *usage = "usage: ecf8 verify IN.ecf8|INDIR/ [ORIGINAL.safetensors|DIR] [--threads N]";
    int rc = parse_threads_and_paths("verify", argc, argv, paths, 2, &np, &threads, NULL, usage);
    if (rc >= 0) return rc;
    if (np < 1) return cli_usage_error("%s", usage);
    ecf8_decode_options o;
    ecf8_decode_options_init(&o);
    o.threads = threads;
    cli_install_decode_progress(&o, "verifying");
    struct stat sb;
    bool dir = stat(paths[0], &sb) == 0 && S_ISDIR(sb.st_mode);
    int st = dir ? ecf8_verify_dir(paths[0], np > 1 ? paths[1] : NULL, &o)
                 : ecf8_verify_path_ex(paths[0], np > 1 ? paths[1] : NULL, &o);
    if (st) return cli_fail(st, "verification failed");
    cli_progress_clear();
    if (np > 1 && !dir) note_files_left_out(paths[1]);
    cli_put_escaped(stdout, paths[0], false);
    printf(": OK%s\n", np > 1 ? " (identical to the original)" : " (all checksums match)");
    return 0;
}

/* A catchable signal that would end the process: remove the temporaries of
 * the outputs in progress, then die of the signal as if never caught (the
 * exit status a shell sees stays 128 + the signal's number). */
static void remove_temporaries_and_die(int sig)
{
    ecf8_remove_temporary_files();
    signal(sig, SIG_DFL);
    raise(sig); /* blocked in the handler: delivered when it returns */
}

static void install_signal_handlers(void)
{
    static const int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temporaries_and_die;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++) sigaddset(&sa.sa_mask, fatal[i]);
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++) {
        struct sigaction old;
        /* A signal ignored by whoever started ecf8 (nohup) stays ignored. */
        if (sigaction(fatal[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(fatal[i], &sa, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_overview(stderr);
        return 2;
    }
    install_signal_handlers();
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 1) return cli_usage_error("usage: ecf8 help [COMMAND]");
        if (argc == 1 && strcmp(argv[0], "--help") && strcmp(argv[0], "-h")) return cli_help(argv[0]);
        if (argc == 1) return cli_help("help");
        cli_overview(stdout);
        return 0;
    }
    if (cli_wants_help(argc, argv) && strcmp(cmd, "bench")) return cli_help(cmd);
    if (!strcmp(cmd, "compress")) return cmd_compress(argc, argv);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc, argv);
    if (!strcmp(cmd, "decompress")) return cmd_decompress(argc, argv);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc, argv);
    if (!strcmp(cmd, "info")) return cli_info(argc, argv);
    if (!strcmp(cmd, "ls")) return cli_ls(argc, argv);
    if (!strcmp(cmd, "extract")) return cli_extract(argc, argv);
    if (!strcmp(cmd, "devices")) return cli_devices(argc, argv);
    if (!strcmp(cmd, "bench")) {
        fprintf(stderr, "ecf8: 'ecf8 bench' moved out of the tool: run ecf8-bench-decode or "
                        "ecf8-bench-matmul (same arguments; built in build/bench/)\n");
        return 2;
    }
    if (!strcmp(cmd, "matmul")) return cli_matmul(argc, argv);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("ecf8 %s (format version %d.%d)\n", ECF8_VERSION_STRING, ECF8_FORMAT_VERSION,
               ECF8_FORMAT_MINOR);
        return 0;
    }
    return cli_usage_error("unknown command '%s'", cmd);
}
