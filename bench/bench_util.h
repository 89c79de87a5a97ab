/* bench_util.h - what the bench programs share: clocks, medians, option
 * parsing and error lines naming the program ("ecf8-bench-decode: FILE:
 * what is wrong"), JSON strings, and (with OpenCL) the device they run on. */
#ifndef ECF8_BENCH_UTIL_H
#define ECF8_BENCH_UTIL_H

#include "ecf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The program's name, for messages; set first thing in main. */
extern const char *bench_prog;

/* CLOCK_MONOTONIC seconds. */
double bench_now_seconds(void);
/* CPU time of the whole process (the device's worker threads included):
 * unlike wall time it does not grow when other jobs take the cores. */
double bench_cpu_seconds(void);
/* qsort comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* Median of v[0..n) (sorts v in place); 0 for n = 0. */
double bench_median(double *v, size_t n);
/* bytes / seconds in GB/s; 0 when seconds is not positive. */
double bench_gbps(double bytes, double seconds);

/* s as a decimal in 0..max (no sign, no trailing text). */
bool bench_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* Prints "PROG: <message>" and "Try 'PROG --help'."; returns exit status 2. */
int bench_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The usage error for an option the program did not take: one of its
 * `value_options` (NULL-terminated) given last lacks its value; anything
 * else is unknown. */
int bench_unknown_option(const char *option, bool last, const char *const *value_options);
/* Prints "PROG: PATH: <message>"; returns exit status 1. */
int bench_file_error(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PROG: PATH: <ecf8_last_error() or fallback>"; returns exit status 1. */
int bench_lib_error(const char *path, const char *fallback);

/* Writes s as a JSON string literal (cJSON's escaping). */
void bench_json_string(FILE *f, const char *s);

#ifdef ECF8_HAVE_OPENCL
#include "ecf8_cl.h"

/* The device a bench runs on (ECF8_PLATFORM / ECF8_DEVICE choose it): a
 * context and an in-order queue with profiling, and the tuning of the
 * ECF8_DECODE_* / ECF8_MATMUL_* variables (src/cli/cli_env.c). */
typedef struct bench_device {
    cl_context ctx;
    cl_device_id dev;
    cl_command_queue queue;
    ecf8_cl_tuning tuning;
    const char *path; /* the .ecf8 file worked on: every error names it */
} bench_device;

/* Opens the selected device; prints the error (naming path) on failure. */
int bench_device_open(bench_device *d, const char *path);
void bench_device_close(bench_device *d);
/* A read-write buffer of `bytes` (copied from data unless NULL); NULL after
 * printing why (`what` names it). */
cl_mem bench_buffer(const bench_device *d, size_t bytes, const void *data, const char *what);
/* Device seconds from a profiling event's start to its end. */
double bench_event_seconds(cl_event ev);
#endif

#endif
