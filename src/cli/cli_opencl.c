/* cli_opencl.c - the device commands of the ecf8 tool: `decompress --engine
 * opencl|cpu`, `devices`, and the dispatch of `matmul` (cli_matmul.c).
 * Errors are one line, "ecf8: FILE: what is wrong", and exit status 1;
 * usage errors exit 2.  The device benchmarks are separate programs
 * (bench/: ecf8-bench-decode, ecf8-bench-matmul). */
#include "cli.h"

#include "cli_env.h"
#include "ecf8_cl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- engine choice -------------------------------------------------------------- */
/* auto (the default): the OpenCL device when there is one that is not a CPU
 * (or ECF8_PLATFORM / ECF8_DEVICE name one), else the native CPU decoder,
 * which on a CPU beats any OpenCL CPU device and builds no kernels (a cold
 * PoCL build takes seconds). */
typedef enum engine { ENGINE_AUTO, ENGINE_OPENCL, ENGINE_CPU } engine;
static engine g_engine = ENGINE_AUTO;

int cli_decompress_engine_args(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--engine")) continue;
        if (i + 1 >= *argc) return cli_usage_error("--engine needs a value (auto, opencl or cpu)");
        const char *v = argv[i + 1];
        if (!strcmp(v, "opencl")) g_engine = ENGINE_OPENCL;
        else if (!strcmp(v, "cpu")) g_engine = ENGINE_CPU;
        else if (!strcmp(v, "auto")) g_engine = ENGINE_AUTO;
        else return cli_usage_error("unknown engine '%s' (auto, opencl or cpu)", v);
        memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
        *argc -= 2;
        i--;
    }
    return -1;
}

bool cli_engine_is_device(void) { return g_engine == ENGINE_OPENCL; }

/* ---- decompress on the device ----------------------------------------------------- */
typedef struct device {
    cl_context context;
    cl_device_id device;
    cl_command_queue queue;
} device;

static void device_close(device *d)
{
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->context) clReleaseContext(d->context);
    memset(d, 0, sizeof *d);
}

/* Whether the user named a device (then auto uses it, whatever it is). */
static bool device_named(void)
{
    const char *p, *d;
    cli_env_device(&p, &d);
    return (p && *p) || (d && *d);
}

int cli_decompress(const char *in, const char *out, const ecf8_decode_options *o)
{
    device d = {0};
    if (g_engine != ENGINE_CPU && cli_env_open(&d.context, &d.device, &d.queue)) {
        if (g_engine == ENGINE_OPENCL) {
            const char *why = ecf8_last_error();
            return cli_error("%s: --engine opencl: %s", in, why[0] ? why : "no OpenCL device");
        }
        d.context = NULL; /* auto: no device, the CPU decoder */
    }
    if (d.context && g_engine == ENGINE_AUTO && !device_named()) {
        ecf8_cl_device_info info = {.struct_size = sizeof info};
        if (ecf8_cl_device_describe(d.device, &info) || info.is_cpu) device_close(&d);
    }
    if (!d.context) {
        ecf8_clear_error();
        int st = ecf8_decompress_path_ex(in, out, o);
        return st ? cli_fail(st, "decompression failed") : 0;
    }
    ecf8_clear_error();
    ecf8_cl_tuning tuning;
    cli_env_tuning(&tuning);
    int st = ecf8_cl_decompress_path_ex(d.context, d.device, d.queue, in, out, o, &tuning);
    device_close(&d);
    return st ? cli_fail(st, "decompression failed") : 0;
}

/* ---- devices ------------------------------------------------------------------------- */
static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

int cli_devices(int argc, char **argv)
{
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else return cli_usage_error("unknown argument '%s' for devices (usage: ecf8 devices [--json])", argv[i]);
    }
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0) {
        fprintf(stderr, "ecf8: no OpenCL platform is installed (install an ICD, e.g. pocl-opencl-icd)\n");
        return 1;
    }
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats || clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) {
        free(plats);
        fprintf(stderr, "ecf8: clGetPlatformIDs failed\n");
        return 1;
    }
    cl_platform_id sel_p = NULL;
    cl_device_id sel_d = NULL;
    const char *want_platform, *want_device;
    cli_env_device(&want_platform, &want_device);
    bool have_sel = ecf8_cl_select(want_platform, want_device, &sel_p, &sel_d) == ECF8_OK;
    const char *sel_err = have_sel ? "" : ecf8_last_error();
    if (json) printf("{\"platforms\": [");
    unsigned flat = 0;
    for (cl_uint p = 0; p < np; p++) {
        char pname[256] = "", pvendor[256] = "", pversion[256] = "";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VENDOR, sizeof pvendor - 1, pvendor, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VERSION, sizeof pversion - 1, pversion, NULL);
        if (json) {
            printf("%s\n  {\"index\": %u, \"name\": ", p ? "," : "", p);
            cli_json_string(stdout, pname);
            printf(", \"vendor\": ");
            cli_json_string(stdout, pvendor);
            printf(", \"version\": ");
            cli_json_string(stdout, pversion);
            printf(", \"devices\": [");
        } else {
            printf("platform %u: %s (%s), %s\n", p, pname, pvendor, pversion);
        }
        cl_uint nd = 0;
        cl_device_id *devs = NULL;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) == CL_SUCCESS && nd) {
            devs = calloc(nd, sizeof *devs);
            if (!devs || clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) nd = 0;
        }
        if (!nd && !json) printf("  (no devices)\n");
        for (cl_uint i = 0; i < nd; i++, flat++) {
            ecf8_cl_device_info c = {.struct_size = sizeof c};
            if (ecf8_cl_device_describe(devs[i], &c)) continue;
            bool sel = have_sel && devs[i] == sel_d;
            /* The library's choice (ecf8_cl_device_info.decode_vector_lanes). */
            unsigned lanes = c.decode_vector_lanes;
            char kernel[256];
            if (!c.is_cpu)
                snprintf(kernel, sizeof kernel, "coop (a work-group per chunk, segments in parallel); "
                                                "streams (a work-item per lane) for layout 1");
            else if (lanes)
                snprintf(kernel, sizeof kernel,
                         "lanes (gathers across chunks in %u-lane vectors); pairs (pair lookups) "
                         "for FP8 tensors of under 16 chunks; streams (a chunk's lanes in %u-lane "
                         "vectors) for layout 1", lanes, lanes);
            else
                snprintf(kernel, sizeof kernel, "portable (a work-item per chunk); pairs (pair "
                                                "lookups) for FP8 tensors of under 16 chunks; "
                                                "streams (a work-item per lane) for layout 1");
            if (json) {
                printf("%s\n    {\"index\": %u, \"name\": ", i ? "," : "", flat);
                cli_json_string(stdout, c.name);
                printf(", \"vendor\": ");
                cli_json_string(stdout, c.vendor);
                printf(", \"version\": ");
                cli_json_string(stdout, c.version);
                printf(", \"driver\": ");
                cli_json_string(stdout, c.driver);
                printf(", \"type\": \"%s\", \"compute_units\": %u, \"global_mem_bytes\": %llu, "
                       "\"local_mem_bytes\": %llu, \"max_work_group\": %zu, \"fp16\": %s, "
                       "\"subgroups\": %s, \"decode_kernel\": \"%s\", \"selected\": %s}",
                       type_name(c.type), c.compute_units, (unsigned long long)c.global_mem_bytes,
                       (unsigned long long)c.local_mem_bytes, c.max_work_group,
                       c.has_fp16 ? "true" : "false", c.has_subgroups ? "true" : "false",
                       !c.is_cpu ? "coop" : lanes ? "lanes+pairs" : "portable+pairs", sel ? "true" : "false");
            } else {
                printf("  %s device %u: %s\n", sel ? "*" : " ", flat, c.name);
                printf("      %s, %u compute units, %.1f GiB global memory, %llu KiB local memory, "
                       "work-groups up to %zu\n",
                       type_name(c.type), c.compute_units, (double)c.global_mem_bytes / (1 << 30),
                       (unsigned long long)c.local_mem_bytes / 1024, c.max_work_group);
                printf("      %s, driver %s, vendor %s\n", c.version, c.driver, c.vendor);
                printf("      fp16 arithmetic: %s, sub-groups: %s; decode kernels: %s\n",
                       c.has_fp16 ? "yes" : "no", c.has_subgroups ? "yes" : "no", kernel);
            }
        }
        free(devs);
        if (json) printf("]}");
    }
    if (json) {
        printf("\n], \"selection_error\": ");
        cli_json_string(stdout, sel_err);
        printf("}\n");
    } else if (have_sel) {
        printf("* = the device ecf8 uses (ECF8_PLATFORM / ECF8_DEVICE choose another)\n");
    } else {
        printf("no device selected: %s\n", sel_err);
    }
    free(plats);
    return have_sel ? 0 : 1; /* the listing is there; what ecf8 would use is not */
}

int cli_matmul(int argc, char **argv) { return cli_matmul_run(argc, argv); }
