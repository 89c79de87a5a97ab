/* cli_matmul.c - `ecf8 matmul` and `ecf8 bench matmul` (placeholder). */
#include "cli.h"

#include <stdio.h>

int cli_matmul_run(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ecf8: matmul is not implemented yet\n");
    return 1;
}

int cli_bench_matmul(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ecf8: bench matmul is not implemented yet\n");
    return 1;
}
