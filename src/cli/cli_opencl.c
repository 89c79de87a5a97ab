/* cli_opencl.c - device commands (work in progress). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cli_devices(int argc, char **argv) { (void)argc, (void)argv; fprintf(stderr, "ecf8: devices: not yet\n"); return 1; }
int cli_bench(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "matmul")) return cli_bench_matmul(argc - 1, argv + 1);
    fprintf(stderr, "ecf8: bench: not yet\n");
    return 1;
}
int cli_matmul(int argc, char **argv) { return cli_matmul_run(argc, argv); }

int cli_decompress_engine_args(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++)
        if (!strcmp(argv[i], "--engine")) {
            if (i + 1 >= *argc) return cli_usage_error("--engine needs opencl or cpu");
            memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
            *argc -= 2;
            i--;
        }
    return -1;
}

int cli_decompress(const char *in, const char *out, unsigned threads)
{
    if (ecf8_decompress_path(in, out, threads)) return cli_fail("decompression failed");
    return 0;
}
