/* compat_env.c - the library's only reads of the environment: the 1.0
 * entry points that took their settings from it keep doing so
 * (ecf8_cl.h, "compatibility"), as wrappers of the explicit calls.  New
 * code passes its device preference to ecf8_cl_open and sets the disk
 * cache with ecf8_cl_set_disk_cache; the ecf8 tool and the benchmarks map
 * their ECF8_* variables onto those in src/cli/cli_env.c. */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>

int ecf8_cl_select_device(cl_platform_id *platform, cl_device_id *device)
{
    return ecf8_cl_select(getenv("ECF8_PLATFORM"), getenv("ECF8_DEVICE"), platform, device);
}

int ecf8_cl_open_default(cl_context *context, cl_device_id *device, cl_command_queue *queue)
{
    return ecf8_cl_open(getenv("ECF8_PLATFORM"), getenv("ECF8_DEVICE"), context, device, queue);
}

ecf8_cl_disk_cache ecf8_cl_disk_cache_default(void)
{
    const char *flag = getenv("ECF8_CACHE");
    if (flag && (!strcmp(flag, "0") || !strcmp(flag, "off") || !strcmp(flag, "no")))
        return ECF8_CL_DISK_CACHE_OFF;
    if (flag && (!strcmp(flag, "1") || !strcmp(flag, "on") || !strcmp(flag, "yes")))
        return ECF8_CL_DISK_CACHE_ON;
    return ECF8_CL_DISK_CACHE_AUTO;
}

bool ecf8_cl_disk_cache_default_dir(char *dir, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/') n = snprintf(dir, size, "%s/ecf8/kernels", xdg);
    else if (home && home[0]) n = snprintf(dir, size, "%s/.cache/ecf8/kernels", home);
    else return false;
    return n > 0 && (size_t)n < size;
}
