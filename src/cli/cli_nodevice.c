/* cli_nodevice.c - device commands when ecf8 is built without OpenCL. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int no_opencl(void)
{
    fprintf(stderr, "ecf8: this build has no OpenCL support\n");
    return 1;
}

int cli_devices(int argc, char **argv) { (void)argc, (void)argv; return no_opencl(); }
int cli_matmul(int argc, char **argv) { (void)argc, (void)argv; return no_opencl(); }

int cli_decompress_engine_args(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++)
        if (!strcmp(argv[i], "--engine")) {
            if (i + 1 >= *argc || strcmp(argv[i + 1], "cpu")) return no_opencl();
            memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
            *argc -= 2;
            i--;
        }
    return -1;
}

bool cli_engine_is_device(void) { return false; } /* only --engine cpu is accepted */

int cli_decompress(const char *in, const char *out, const ecf8_decode_options *o)
{
    int st = ecf8_decompress_path_ex(in, out, o);
    return st ? cli_fail(st, "decompression failed") : 0;
}
