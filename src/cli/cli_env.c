/* cli_env.c - the tool's and the benchmarks' environment variables
 * (cli_env.h). */
#include "cli_env.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A positive integer variable up to 65536, 0 when unset or not one. */
static unsigned env_unsigned(const char *name)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n = v && *v ? strtoul(v, &end, 10) : 0;
    return n && !*end && n <= 65536 ? (unsigned)n : 0;
}

void cli_env_tuning(ecf8_cl_tuning *t)
{
    ecf8_cl_tuning_init(t);
    const char *kernel = getenv("ECF8_DECODE_KERNEL");
    if (kernel && *kernel) t->decode_kernel = kernel;
    t->decode_vw = env_unsigned("ECF8_DECODE_VW");
    t->decode_nsets = env_unsigned("ECF8_DECODE_NSETS");
    const char *reader = getenv("ECF8_DECODE_READER");
    if (reader && !strcmp(reader, "words")) t->decode_reader = 1;
    if (reader && !strcmp(reader, "qwords")) t->decode_reader = 2;
    t->decode_nl = env_unsigned("ECF8_DECODE_NL");
    t->decode_wg = env_unsigned("ECF8_DECODE_WG");
    t->matmul_lanes = env_unsigned("ECF8_MATMUL_LANES") == 1;
    t->matmul_interleave = env_unsigned("ECF8_MATMUL_IL");
    t->matmul_rows = env_unsigned("ECF8_MATMUL_MB");
    t->matmul_prefetch = env_unsigned("ECF8_MATMUL_PREFETCH");
    const char *path = getenv("ECF8_MATMUL_PATH");
    if (path && !strcmp(path, "fused")) t->matmul_path = ECF8_CL_PATH_FUSED;
    if (path && !strcmp(path, "decode")) t->matmul_path = ECF8_CL_PATH_DECODE_GEMM;
}

void cli_env_device(const char **platform, const char **device)
{
    *platform = getenv("ECF8_PLATFORM");
    *device = getenv("ECF8_DEVICE");
}

int cli_env_open(cl_context *context, cl_device_id *device, cl_command_queue *queue)
{
    const char *want_platform, *want_device;
    cli_env_device(&want_platform, &want_device);
    if (isatty(2)) cli_build_notice_install();
    return ecf8_cl_open(want_platform, want_device, context, device, queue);
}
