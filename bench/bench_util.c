/* bench_util.c - shared by the bench programs (bench_util.h). */
#include "bench_util.h"
#ifdef ECF8_HAVE_OPENCL
#include "cli_env.h"
#endif

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *bench_prog = "ecf8-bench";

static double clock_seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double bench_now_seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }
double bench_cpu_seconds(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_gbps(double bytes, double seconds) { return seconds > 0 ? bytes / seconds * 1e-9 : 0; }

bool bench_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max) return false;
    *out = v;
    return true;
}

int bench_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", bench_prog);
    return 2;
}

int bench_unknown_option(const char *option, bool last, const char *const *value_options)
{
    for (; last && *value_options; value_options++)
        if (!strcmp(option, *value_options)) return bench_usage_error("option '%s' needs a value", option);
    return bench_usage_error("unknown option '%s'", option);
}

int bench_file_error(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", bench_prog, path);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int bench_lib_error(const char *path, const char *fallback)
{
    const char *d = ecf8_last_error();
    return bench_file_error(path, "%s", d[0] ? d : fallback);
}

void bench_json_string(FILE *f, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    fputs(text ? text : "null", f);
    cJSON_free(text);
    cJSON_Delete(j);
}

#ifdef ECF8_HAVE_OPENCL
int bench_device_open(bench_device *d, const char *path)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    cli_env_tuning(&d->tuning);
    if (cli_env_open(&d->ctx, &d->dev, &d->queue)) return bench_lib_error(path, "no OpenCL device");
    return 0;
}

void bench_device_close(bench_device *d)
{
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->ctx) clReleaseContext(d->ctx);
    d->queue = NULL, d->ctx = NULL;
}

cl_mem bench_buffer(const bench_device *d, size_t bytes, const void *data, const char *what)
{
    cl_int err;
    cl_mem b = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)data, &err);
    if (err != CL_SUCCESS) {
        bench_file_error(d->path, "cannot allocate %zu bytes for %s on the device (%s)", bytes, what,
                         ecf8_status_string(err));
        return NULL;
    }
    return b;
}

double bench_event_seconds(cl_event ev)
{
    cl_ulong a = 0, b = 0;
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
    return b > a ? (double)(b - a) * 1e-9 : 0;
}
#endif
