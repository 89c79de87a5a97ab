/* cli.h - shared helpers of the ecf8 command-line tool. */
#ifndef ECF8_CLI_H
#define ECF8_CLI_H

#include "ecf8.h"

#include <stdbool.h>

/* Prints "ecf8: <detail>" (on a clean line: a progress bar is cleared
 * first), the library's detail of the failure that returned `status`,
 * with the --force hint for ECF8_ERR_EXISTS; returns exit status 1. */
int cli_fail(int status, const char *fallback_what);
/* Prints "ecf8: <message>" the same way; returns 1.  Every message the CLI
 * prints on stderr goes through it (or cli_usage_error), so names from the
 * command line, directories and files are escaped (cli_put_escaped). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a usage problem and returns exit status 2. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The usage error for an option `command` did not take: one of its
 * `value_options` (space-separated) given last lacks its value; anything
 * else is unknown. */
int cli_unknown_option(const char *command, const char *option, bool last, const char *value_options);
/* The usage error for a path argument ecf8 cannot take, or 0: an empty
 * one, or "-" as an output (ecf8 does not write to standard output; "./-"
 * names a file called "-"). */
int cli_bad_path(const char *path, bool output);
bool cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
#include <stdio.h>
/* Writes s so that it can do no harm where it lands: JSON (json true: the
 * inside of a string literal, valid UTF-8 whatever s holds) or a terminal
 * (text: no control sequence reaches it).  C0 controls, DEL and the C1
 * controls become \xHH in text and \u00HH in JSON; bytes that are not
 * UTF-8 become \xHH in text and U+FFFD in JSON; in JSON a backslash and a
 * quote are escaped too.  (Text leaves a backslash alone, so that names
 * holding one read as they are: the text is for reading, not parsing.)  Used for every name ecf8 prints: info's text
 * and JSON, and the error messages. */
void cli_put_escaped(FILE *f, const char *s, bool json);
/* Writes s as a JSON string literal (cli_put_escaped in quotes). */
void cli_json_string(FILE *f, const char *s);
/* Progress bars on stderr, "WHAT [####    ]  42%": installed only when
 * stderr is a terminal (otherwise the callback stays NULL and nothing is
 * ever drawn); the bar is erased when done reaches total.  `what` must
 * outlive the call the options are passed to. */
void cli_install_progress(ecf8_compress_options *o, const char *what);
void cli_install_decode_progress(ecf8_decode_options *o, const char *what);
/* Erases a bar left on stderr's line (a call that failed, or one that never
 * reported done == total); a no-op when none is drawn.  cli_fail and
 * cli_usage_error call it: use it before any other message on stderr. */
void cli_progress_clear(void);

int cli_info(int argc, char **argv);
/* `ecf8 ls` (cli_info.c) and `ecf8 extract` (cli_extract.c). */
int cli_ls(int argc, char **argv);
int cli_extract(int argc, char **argv);

/* Help (cli_help.c): the overview of every command; one command's synopsis
 * and options on stdout (0), or the usage error for an unknown command (2);
 * whether argv holds --help or -h. */
void cli_overview(FILE *f);
int cli_help(const char *command);
bool cli_wants_help(int argc, char **argv);

/* Device commands (cli_opencl.c, or stubs without OpenCL). */
int cli_devices(int argc, char **argv);
int cli_matmul(int argc, char **argv);
/* Removes "--engine X" from argv; returns an exit status on a usage
 * error, else -1. */
int cli_decompress_engine_args(int *argc, char **argv);
/* Whether that "--engine" asked for the device (opencl). */
bool cli_engine_is_device(void);
/* `ecf8 decompress`: o carries the CPU decoder's threads and the progress
 * callback (bytes of the original file(s) written / total), which the
 * device engine reports too. */
int cli_decompress(const char *in, const char *out, const ecf8_decode_options *o);

/* `ecf8 matmul ...` (cli_matmul.c), reached through cli_matmul. */
int cli_matmul_run(int argc, char **argv);

/* The Linear weight a matmul multiplies (cli_weight.c, shared with
 * bench/bench_matmul.c): W, and for FP8 its [ceil(N/128), ceil(K/128)]
 * block scales, the tensor ecf8_file_find_scale finds by the naming rules
 * of the FP8 checkpoint families (ecf8.h); scale_name is its name, or the
 * first one looked for when it is missing. */
typedef struct mm_weight {
    ecf8_tensor_info w, s;
    int has_scale;
    char scale_name[1024];
} mm_weight;
/* Looks up W = `name` (NULL: the file's largest 2-D FP8-with-scales or
 * BF16 weight that is not an embedding table) and its scales: 0, or 1 with
 * `why` holding what is wrong (without the file's name). */
int mm_weight_find(const ecf8_file *f, const char *name, mm_weight *out, char *why, size_t why_size);

#endif
