/* consumer.c - a program outside the ecf8 tree, built against an installed
 * ecf8 (tests/cli_install.sh): with find_package(ecf8) and with pkg-config,
 * shared and static.
 *
 * usage: consumer IN.safetensors OUT.ecf8
 * Compresses IN, opens the container, reads its first coded tensor and
 * verifies the whole file against IN; prints "consumer: ok" on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ecf8.h>
#ifdef ECF8_HAVE_OPENCL
#include <ecf8_cl.h>
#endif

static int fail(const char *what, int status)
{
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, ecf8_status_string(status), ecf8_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: consumer IN.safetensors OUT.ecf8\n");
        return 2;
    }
    printf("ecf8 %s (header %s)\n", ECF8_VERSION_STRING, ECF8_VERSION_STRING);
#ifdef ECF8_HAVE_OPENCL
    /* Linked, not called: the device API and libOpenCL must resolve. */
    int (*volatile create)(cl_context, cl_device_id, cl_command_queue, const ecf8_tensor_info *,
                           ecf8_cl_tensor **) = ecf8_cl_tensor_create;
    if (!create) return 1;
    printf("with OpenCL device API\n");
#endif
    int st = ecf8_compress_path(argv[1], argv[2], NULL);
    if (st) return fail("compress", st);
    ecf8_file *f;
    if ((st = ecf8_file_open(argv[2], &f))) return fail("open", st);
    size_t n = ecf8_file_tensor_count(f), coded = 0;
    for (size_t i = 0; i < n && !st; i++) {
        ecf8_tensor_info t;
        ecf8_file_tensor(f, i, &t);
        if (t.split == ECF8_SPLIT_STORED) continue;
        void *buf = malloc(t.source_bytes);
        if (!buf) return 1;
        st = ecf8_file_read_tensor(f, i, buf, t.source_bytes, 0);
        free(buf);
        coded++;
        if (!st) printf("%s: %s %s, %llu -> %llu bytes\n", t.name, t.dtype_name,
                        ecf8_split_name(t.split), (unsigned long long)t.source_bytes,
                        (unsigned long long)t.payload_bytes);
        break;
    }
    ecf8_file_close(f);
    if (st) return fail("read", st);
    if (!coded) return fail("no coded tensor", ECF8_ERR_NOT_FOUND);
    if ((st = ecf8_verify_path(argv[2], argv[1], 0))) return fail("verify", st);
    printf("consumer: ok\n");
    return 0;
}
