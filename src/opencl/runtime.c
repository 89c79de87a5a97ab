/* runtime.c - the OpenCL glue shared by decode and matmul: error text naming
 * the failing call, device facts and choice, and programs built once per
 * (context, device, kernel, options) with an in-memory cache and an on-disk
 * binary cache.
 *
 * The disk cache lives where ecf8_cl_set_disk_cache says (before any call,
 * the compatibility default of compat_env.c).  An entry is named by
 * the XXH3 hash of (platform name and version, device name, driver version,
 * kernel source, build options), is written under a temporary name and
 * renamed into place, and carries its own checksum: a damaged or stale
 * entry is ignored and rebuilt from source. */
#include "runtime.h"
#include "decode_plan.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int ecf8_cl_fail(cl_int err, const char *call)
{
    return ecf8_fail(err, "%s: %s (%d)", call, ecf8_status_string(err), (int)err);
}

/* ---- device facts ---------------------------------------------------------- */
static void device_string(cl_device_id device, cl_device_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(device, what, size, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[size - 1] = '\0';
}

/* True when the space-separated extension list holds `ext` as a word. */
static bool has_extension(const char *list, const char *ext)
{
    size_t n = strlen(ext);
    for (const char *p = list; (p = strstr(p, ext)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
    return false;
}

int ecf8_cl_device_caps_get(cl_device_id device, ecf8_cl_device_caps *caps)
{
    if (!device || !caps) return ecf8_fail(ECF8_ERR_ARGUMENT, "device caps: NULL argument");
    memset(caps, 0, sizeof *caps);
    device_string(device, CL_DEVICE_NAME, caps->name, sizeof caps->name);
    device_string(device, CL_DEVICE_VENDOR, caps->vendor, sizeof caps->vendor);
    device_string(device, CL_DEVICE_VERSION, caps->version, sizeof caps->version);
    device_string(device, CL_DRIVER_VERSION, caps->driver, sizeof caps->driver);
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof caps->type, &caps->type, NULL),
                  "clGetDeviceInfo(CL_DEVICE_TYPE)");
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof caps->local_mem_bytes,
                                  &caps->local_mem_bytes, NULL),
                  "clGetDeviceInfo(CL_DEVICE_LOCAL_MEM_SIZE)");
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof caps->global_mem_bytes,
                                  &caps->global_mem_bytes, NULL),
                  "clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)");
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof caps->max_work_group,
                                  &caps->max_work_group, NULL),
                  "clGetDeviceInfo(CL_DEVICE_MAX_WORK_GROUP_SIZE)");
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof caps->compute_units,
                                  &caps->compute_units, NULL),
                  "clGetDeviceInfo(CL_DEVICE_MAX_COMPUTE_UNITS)");
    size_t ext_size = 0;
    ECF8_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size),
                  "clGetDeviceInfo(CL_DEVICE_EXTENSIONS)");
    char *ext = calloc(1, ext_size + 1);
    if (!ext) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL);
    if (err != CL_SUCCESS) {
        free(ext);
        return ecf8_cl_fail(err, "clGetDeviceInfo(CL_DEVICE_EXTENSIONS)");
    }
    char c_version[128];
    device_string(device, CL_DEVICE_OPENCL_C_VERSION, c_version, sizeof c_version);
    /* "OpenCL C 2.0 ..." has sub-groups in the language; 3.0 devices
     * advertise them as an extension. */
    int c_major = 1;
    if (!strncmp(c_version, "OpenCL C ", 9)) c_major = atoi(c_version + 9);
    caps->has_fp16 = has_extension(ext, "cl_khr_fp16");
    caps->has_subgroups = has_extension(ext, "cl_khr_subgroups") || c_major == 2;
    caps->is_cpu = (caps->type & CL_DEVICE_TYPE_CPU) != 0;
    free(ext);
    /* The widest int vector the device runs natively: PoCL reports 8 on
     * AVX2 hosts and 16 with AVX-512, so kernels never use a vector type
     * the target has no registers for (PoCL's compiler then warns about
     * the ABI on stderr and emulates it slowly). */
    cl_uint native_int = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_INT, sizeof native_int, &native_int,
                        NULL) != CL_SUCCESS)
        native_int = 1;
    caps->vector_bits = 32u * (native_int ? native_int : 1);
    return ECF8_OK;
}

/* ---- device choice ------------------------------------------------------------ */
static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return true;
    }
    return n == 0;
}

/* Does the platform or device match a preference (its index among the
 * candidates or a substring of its name)? */
static bool selector_matches(const char *sel, unsigned index, const char *name, const char *name2)
{
    if (all_digits(sel)) return strtoul(sel, NULL, 10) == index;
    return contains_nocase(name, sel) || (name2 && contains_nocase(name2, sel));
}

int ecf8_cl_select(const char *want_platform, const char *want_device,
                   cl_platform_id *platform_out, cl_device_id *device_out)
{
    if (!platform_out || !device_out) return ecf8_fail(ECF8_ERR_ARGUMENT, "select device: NULL argument");
    cl_uint n_platforms = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n_platforms);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && n_platforms == 0))
        return ecf8_fail(ECF8_ERR_NO_DEVICE, "no OpenCL platform is installed");
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clGetPlatformIDs");
    cl_platform_id *platforms = calloc(n_platforms, sizeof *platforms);
    if (!platforms) return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    err = clGetPlatformIDs(n_platforms, platforms, NULL);
    if (err != CL_SUCCESS) {
        free(platforms);
        return ecf8_cl_fail(err, "clGetPlatformIDs");
    }
    if (want_platform && !*want_platform) want_platform = NULL;
    if (want_device && !*want_device) want_device = NULL;

    cl_platform_id best_p = NULL, first_p = NULL;
    cl_device_id best_d = NULL, first_d = NULL;
    bool platform_seen = false;
    /* Device indices run across all platforms, in order, as `ecf8 devices`
     * numbers them, whatever the platform preference keeps. */
    unsigned device_index = 0;
    for (cl_uint p = 0; p < n_platforms && !best_d; p++) {
        char pname[256] = "", pvendor[256] = "";
        clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
        clGetPlatformInfo(platforms[p], CL_PLATFORM_VENDOR, sizeof pvendor - 1, pvendor, NULL);
        cl_uint n_dev = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n_dev) != CL_SUCCESS) n_dev = 0;
        if (want_platform && !selector_matches(want_platform, p, pname, pvendor)) {
            device_index += n_dev;
            continue;
        }
        platform_seen = true;
        if (!n_dev) continue;
        cl_device_id *devs = calloc(n_dev, sizeof *devs);
        if (!devs) {
            free(platforms);
            return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
        }
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, n_dev, devs, NULL) != CL_SUCCESS) n_dev = 0;
        for (cl_uint d = 0; d < n_dev; d++, device_index++) {
            char dname[256];
            device_string(devs[d], CL_DEVICE_NAME, dname, sizeof dname);
            cl_device_type type = 0;
            clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof type, &type, NULL);
            if (want_device) {
                if (selector_matches(want_device, device_index, dname, NULL)) {
                    best_p = platforms[p], best_d = devs[d];
                    break;
                }
                continue;
            }
            if (!first_d) first_p = platforms[p], first_d = devs[d];
            if (type & CL_DEVICE_TYPE_GPU) {
                best_p = platforms[p], best_d = devs[d];
                break;
            }
        }
        free(devs);
    }
    free(platforms);
    if (!best_d && !want_device) best_p = first_p, best_d = first_d;
    if (!best_d) {
        if (want_platform && !platform_seen)
            return ecf8_fail(ECF8_ERR_NOT_FOUND, "platform '%s' matches no OpenCL platform",
                             want_platform);
        if (want_device)
            return ecf8_fail(ECF8_ERR_NOT_FOUND, "device '%s' matches no OpenCL device", want_device);
        return ecf8_fail(ECF8_ERR_NO_DEVICE, "no OpenCL device found");
    }
    *platform_out = best_p;
    *device_out = best_d;
    return ECF8_OK;
}

int ecf8_cl_open(const char *want_platform, const char *want_device, cl_context *context,
                 cl_device_id *device, cl_command_queue *queue)
{
    if (!context || !device || !queue) return ecf8_fail(ECF8_ERR_ARGUMENT, "open: NULL argument");
    cl_platform_id platform;
    int st = ecf8_cl_select(want_platform, want_device, &platform, device);
    if (st) return st;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    cl_int err;
    *context = clCreateContext(props, 1, device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateContext");
    *queue = clCreateCommandQueue(*context, *device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(*context);
        *context = NULL;
        return ecf8_cl_fail(err, "clCreateCommandQueue");
    }
    return ECF8_OK;
}

/* ---- on-disk binary cache ------------------------------------------------- */
#define DISK_MAGIC "ECF8BIN1"
#define DISK_HEADER 32 /* magic, key, binary bytes, binary XXH3 */
#define DISK_MAX_BINARY (256u << 20)

/* Whether the device's driver caches built programs itself: PoCL does (in
 * POCL_CACHE_DIR, by source and options), and exporting a PoCL program's
 * binary (CL_PROGRAM_BINARIES) compiles every kernel in it once more in a
 * generic form, the unused ones too: measured on a 2-core host, a cold
 * decompress of an FP8 golden file took 16.9 s with our cache, 6.4 s
 * without, and a warm one 0.06 s against 0.13 s. */
static bool driver_caches_programs(cl_device_id device)
{
    char version[256];
    device_string(device, CL_DEVICE_VERSION, version, sizeof version);
    return strstr(version, "PoCL") != NULL;
}

/* The disk cache setting (ecf8_cl_set_disk_cache); read and written
 * under cache_lock, which every build holds. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static bool disk_set;            /* false: the compatibility default applies */
static ecf8_cl_disk_cache disk_policy;
static char disk_dir[4096];      /* "" for the default directory */

int ecf8_cl_set_disk_cache(ecf8_cl_disk_cache policy, const char *dir)
{
    if (policy != ECF8_CL_DISK_CACHE_AUTO && policy != ECF8_CL_DISK_CACHE_OFF &&
        policy != ECF8_CL_DISK_CACHE_ON)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "disk cache: unknown policy %d", (int)policy);
    if (dir && strlen(dir) > 4000)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "disk cache: directory name over 4000 bytes");
    pthread_mutex_lock(&cache_lock);
    disk_set = true;
    disk_policy = policy;
    snprintf(disk_dir, sizeof disk_dir, "%s", dir ? dir : "");
    pthread_mutex_unlock(&cache_lock);
    return ECF8_OK;
}

/* mkdir -p; false when some component cannot be made. */
static bool make_dirs(char *dir)
{
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            int rc = mkdir(dir, 0755);
            *p = c;
            if (rc != 0 && errno != EEXIST) return false;
            if (c == '\0') return true;
        }
    }
}

/* Directory of the disk cache (created), or false when disabled/unusable;
 * cache_lock held. */
static bool disk_cache_dir(cl_device_id device, char *dir, size_t size)
{
    if (!disk_set) {
        disk_policy = ecf8_cl_disk_cache_default();
        disk_dir[0] = '\0';
        disk_set = true;
    }
    if (disk_policy == ECF8_CL_DISK_CACHE_OFF) return false;
    if (disk_policy == ECF8_CL_DISK_CACHE_AUTO && driver_caches_programs(device)) return false;
    if (disk_dir[0]) {
        if ((size_t)snprintf(dir, size, "%s", disk_dir) >= size) return false;
    } else if (!ecf8_cl_disk_cache_default_dir(dir, size)) {
        return false;
    }
    return dir[0] && make_dirs(dir);
}

/* Hash of everything that decides the binary's content. */
static uint64_t disk_key(cl_device_id device, const char *source, const char *options)
{
    cl_platform_id platform = NULL;
    clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    char f[4][256] = {"", "", "", ""};
    if (platform) {
        clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof f[0] - 1, f[0], NULL);
        clGetPlatformInfo(platform, CL_PLATFORM_VERSION, sizeof f[1] - 1, f[1], NULL);
    }
    device_string(device, CL_DEVICE_NAME, f[2], sizeof f[2]);
    device_string(device, CL_DRIVER_VERSION, f[3], sizeof f[3]);
    size_t ls = strlen(source), lo = strlen(options), total = ls + lo + 4 * 256 + 64;
    char *buf = malloc(total);
    if (!buf) return 0;
    size_t k = (size_t)snprintf(buf, total, "ecf8 %s\n%s\n%s\n%s\n%s\n", ECF8_VERSION_STRING, f[0],
                                f[1], f[2], f[3]);
    memcpy(buf + k, source, ls);
    k += ls;
    buf[k++] = '\0';
    memcpy(buf + k, options, lo);
    k += lo;
    uint64_t h = ecf8_hash64(buf, k);
    free(buf);
    return h;
}

/* Reads a cache entry; NULL when absent or damaged. */
static uint8_t *disk_load(const char *path, uint64_t key, size_t *bytes)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    uint8_t head[DISK_HEADER], *bin = NULL;
    if (fread(head, 1, sizeof head, fp) == sizeof head && !memcmp(head, DISK_MAGIC, 8) &&
        ecf8_load_le64(head + 8) == key) {
        uint64_t n = ecf8_load_le64(head + 16);
        if (n > 0 && n <= DISK_MAX_BINARY && (bin = malloc(n)) != NULL) {
            if (fread(bin, 1, n, fp) != n || fgetc(fp) != EOF ||
                ecf8_hash64(bin, n) != ecf8_load_le64(head + 24)) {
                free(bin);
                bin = NULL;
            } else {
                *bytes = n;
            }
        }
    }
    fclose(fp);
    return bin;
}

/* Writes a cache entry atomically (temporary name + rename); best effort. */
static void disk_store(const char path[4200], uint64_t key, const uint8_t *bin, size_t n)
{
    static unsigned counter;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return;
    uint8_t head[DISK_HEADER];
    memcpy(head, DISK_MAGIC, 8);
    ecf8_store_le64(head + 8, key);
    ecf8_store_le64(head + 16, n);
    ecf8_store_le64(head + 24, ecf8_hash64(bin, n));
    bool ok = fwrite(head, 1, sizeof head, fp) == sizeof head && fwrite(bin, 1, n, fp) == n;
    ok = fclose(fp) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

/* The binary of a program built for `device` (malloc'd), or NULL. */
static uint8_t *program_binary(cl_program program, cl_device_id device, size_t *bytes)
{
    cl_uint n_dev = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_NUM_DEVICES, sizeof n_dev, &n_dev, NULL) != CL_SUCCESS ||
        n_dev == 0 || n_dev > 64)
        return NULL;
    cl_device_id devs[64];
    size_t sizes[64];
    unsigned char *ptrs[64] = {0};
    if (clGetProgramInfo(program, CL_PROGRAM_DEVICES, n_dev * sizeof devs[0], devs, NULL) != CL_SUCCESS ||
        clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, n_dev * sizeof sizes[0], sizes, NULL) !=
            CL_SUCCESS)
        return NULL;
    cl_uint mine = n_dev;
    for (cl_uint i = 0; i < n_dev; i++)
        if (devs[i] == device) mine = i;
    if (mine == n_dev || sizes[mine] == 0 || sizes[mine] > DISK_MAX_BINARY) return NULL;
    ptrs[mine] = malloc(sizes[mine]);
    if (!ptrs[mine]) return NULL;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, n_dev * sizeof ptrs[0], ptrs, NULL) != CL_SUCCESS) {
        free(ptrs[mine]);
        return NULL;
    }
    *bytes = sizes[mine];
    return ptrs[mine];
}

/* ---- building ----------------------------------------------------------------- */
/* The build log of `program` on `device` into ecf8_last_error(). */
static int build_failure(cl_program program, cl_device_id device, const char *name,
                         const char *options, cl_int err)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        n > 0 && (log = calloc(1, n + 1)) != NULL &&
        clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
        log[0] = '\0';
    const char *text = log && log[0] ? log : ecf8_status_string(err);
    while (*text == '\n' || *text == ' ') text++;
    /* One line for ecf8_last_error(): the log's first lines name the first
     * error, newlines become "; " and trailing blanks go. */
    if (log) {
        size_t k = strlen(log);
        while (k > 0 && (log[k - 1] == '\n' || log[k - 1] == ' ' || log[k - 1] == '\r')) log[--k] = '\0';
        for (char *p = log; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    int st = ecf8_fail(ECF8_ERR_BUILD, "clBuildProgram(%s.cl%s%s): %s", name, options[0] ? " " : "",
                       options, text);
    free(log);
    return st;
}

/* ecf8_cl_set_build_hook's hook and its argument. */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static ecf8_cl_build_hook build_hook;
static void *build_hook_user;

void ecf8_cl_set_build_hook(ecf8_cl_build_hook hook, void *user)
{
    pthread_mutex_lock(&hook_lock);
    build_hook = hook, build_hook_user = user;
    pthread_mutex_unlock(&hook_lock);
}

static void tell_build_hook(const char *name, int done)
{
    pthread_mutex_lock(&hook_lock);
    ecf8_cl_build_hook hook = build_hook;
    void *user = build_hook_user;
    pthread_mutex_unlock(&hook_lock);
    if (hook) hook(user, name, done);
}

static int build_from_source(cl_context context, cl_device_id device, const char *name,
                             const char *source, const char *options, cl_program *out)
{
    cl_int err;
    cl_program program = clCreateProgramWithSource(context, 1, &source, NULL, &err);
    if (err != CL_SUCCESS) return ecf8_cl_fail(err, "clCreateProgramWithSource");
    tell_build_hook(name, 0);
    err = clBuildProgram(program, 1, &device, options, NULL, NULL);
    tell_build_hook(name, 1);
    if (err != CL_SUCCESS) {
        int st = build_failure(program, device, name, options, err);
        clReleaseProgram(program);
        return st;
    }
    *out = program;
    return ECF8_OK;
}

static cl_program build_from_binary(cl_context context, cl_device_id device, const uint8_t *bin,
                                    size_t n, const char *options)
{
    cl_int err, status = CL_SUCCESS;
    const unsigned char *ptr = bin;
    cl_program program = clCreateProgramWithBinary(context, 1, &device, &n, &ptr, &status, &err);
    if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (program) clReleaseProgram(program);
        return NULL;
    }
    if (clBuildProgram(program, 1, &device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(program);
        return NULL;
    }
    return program;
}

/* Builds through the disk cache when it is enabled. */
static int build_program(cl_context context, cl_device_id device, const char *name,
                         const char *source, const char *options, cl_program *out)
{
    char dir[4096], path[4200];
    bool use_disk = disk_cache_dir(device, dir, sizeof dir);
    uint64_t key = 0;
    if (use_disk) {
        key = disk_key(device, source, options);
        snprintf(path, sizeof path, "%s/%s-%016llx.bin", dir, name, (unsigned long long)key);
        size_t n = 0;
        uint8_t *bin = disk_load(path, key, &n);
        if (bin) {
            cl_program p = build_from_binary(context, device, bin, n, options);
            free(bin);
            if (p) {
                *out = p;
                return ECF8_OK;
            }
            /* A binary the driver no longer accepts: rebuild and replace. */
        }
    }
    int st = build_from_source(context, device, name, source, options, out);
    if (st || !use_disk) return st;
    size_t n = 0;
    uint8_t *bin = program_binary(*out, device, &n);
    if (bin) disk_store(path, key, bin, n);
    free(bin);
    return ECF8_OK;
}

/* ---- in-memory cache -------------------------------------------------------------- */
/* Programs are kept until ecf8_cl_release_context or ecf8_cl_cache_clear
 * drops them; a cached program holds a reference to its context, so a
 * context's address cannot be reused while its entry exists.  Every access
 * holds cache_lock. */
typedef struct program_entry {
    struct program_entry *next;
    cl_context context;
    cl_device_id device;
    const char *source;
    char *options;
    cl_program program;
} program_entry;

static program_entry *cache_head;

int ecf8_cl_program_get(cl_context context, cl_device_id device, const char *name,
                        const char *options, cl_program *out)
{
    if (!context || !device || !name || !out)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "program get: NULL argument");
    if (!options) options = "";
    const char *source = ecf8_cl_source(name);
    if (!source) return ecf8_fail(ECF8_ERR_NOT_FOUND, "no embedded kernel source '%s'", name);
    pthread_mutex_lock(&cache_lock);
    for (program_entry *e = cache_head; e; e = e->next)
        if (e->context == context && e->device == device && e->source == source &&
            !strcmp(e->options, options)) {
            clRetainProgram(e->program);
            *out = e->program;
            pthread_mutex_unlock(&cache_lock);
            return ECF8_OK;
        }
    /* Built under the lock: concurrent first users wait for one build. */
    program_entry *e = calloc(1, sizeof *e);
    char *opts = strdup(options);
    int st = e && opts ? ECF8_OK : ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    cl_program program = NULL;
    if (!st) st = build_program(context, device, name, source, options, &program);
    if (st) {
        free(e);
        free(opts);
        pthread_mutex_unlock(&cache_lock);
        return st;
    }
    *e = (program_entry){cache_head, context, device, source, opts, program};
    cache_head = e;
    clRetainProgram(program);
    *out = program;
    pthread_mutex_unlock(&cache_lock);
    return ECF8_OK;
}

/* Unlinks and frees the entries of `context` (every entry for NULL);
 * cache_lock held.  Programs still retained elsewhere (a live tensor or
 * matmul) stay valid: only the cache's reference goes. */
static void cache_drop(cl_context context)
{
    for (program_entry **link = &cache_head; *link;) {
        program_entry *e = *link;
        if (context && e->context != context) {
            link = &e->next;
            continue;
        }
        *link = e->next;
        clReleaseProgram(e->program);
        free(e->options);
        free(e);
    }
}

int ecf8_cl_release_context(cl_context context)
{
    if (!context) return ecf8_fail(ECF8_ERR_ARGUMENT, "release context: NULL context");
    pthread_mutex_lock(&cache_lock);
    cache_drop(context);
    pthread_mutex_unlock(&cache_lock);
    return ECF8_OK;
}

void ecf8_cl_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    cache_drop(NULL);
    pthread_mutex_unlock(&cache_lock);
}

size_t ecf8_cl_cache_entries(cl_context context)
{
    size_t n = 0;
    pthread_mutex_lock(&cache_lock);
    for (const program_entry *e = cache_head; e; e = e->next) n += !context || e->context == context;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

/* ---- tuning --------------------------------------------------------------------- */
void ecf8_cl_tuning_init(ecf8_cl_tuning *tuning)
{
    if (!tuning) return;
    memset(tuning, 0, sizeof *tuning);
    tuning->struct_size = sizeof *tuning;
}

int ecf8_cl_tuning_read(const ecf8_cl_tuning *tuning, ecf8_cl_tuning *out)
{
    ecf8_cl_tuning_init(out);
    if (!tuning) return ECF8_OK;
    if (tuning->struct_size < sizeof tuning->struct_size)
        return ecf8_fail(ECF8_ERR_ARGUMENT, "tuning: struct_size %zu too small", tuning->struct_size);
    memcpy(out, tuning, tuning->struct_size < sizeof *out ? tuning->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    return ECF8_OK;
}

/* ---- device facts, public (ecf8_cl.h) ------------------------------------------ */
int ecf8_cl_device_describe(cl_device_id device, ecf8_cl_device_info *info)
{
    if (!device || !info || info->struct_size < offsetof(ecf8_cl_device_info, type))
        return ecf8_fail(ECF8_ERR_ARGUMENT, "ecf8_cl_device_describe: NULL argument or struct_size too small");
    ecf8_cl_device_caps c;
    int st = ecf8_cl_device_caps_get(device, &c);
    if (st) return st;
    ecf8_cl_device_info full;
    /* The public struct copies the caps' strings whole. */
    _Static_assert(sizeof full.name == sizeof c.name && sizeof full.vendor == sizeof c.vendor &&
                       sizeof full.version == sizeof c.version && sizeof full.driver == sizeof c.driver,
                   "ecf8_cl_device_info strings match ecf8_cl_device_caps");
    memset(&full, 0, sizeof full);
    full.struct_size = info->struct_size;
    memcpy(full.name, c.name, sizeof full.name);
    memcpy(full.vendor, c.vendor, sizeof full.vendor);
    memcpy(full.version, c.version, sizeof full.version);
    memcpy(full.driver, c.driver, sizeof full.driver);
    full.type = c.type;
    full.global_mem_bytes = c.global_mem_bytes;
    full.local_mem_bytes = c.local_mem_bytes;
    full.max_work_group = c.max_work_group;
    full.compute_units = c.compute_units;
    full.has_fp16 = c.has_fp16;
    full.has_subgroups = c.has_subgroups;
    full.is_cpu = c.is_cpu;
    full.vector_bits = c.vector_bits;
    full.decode_vector_lanes = ecf8_cl_decode_vector_lanes(&c);
    size_t n = info->struct_size < sizeof full ? info->struct_size : sizeof full;
    memcpy(info, &full, n);
    return ECF8_OK;
}
