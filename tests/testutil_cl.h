/* testutil_cl.h - the device every OpenCL test group shares: opened once in
 * the group setup.  When there is none the tests skip (not fail), so the
 * suite passes on machines without OpenCL; with ECF8_REQUIRE_DEVICE set (CI
 * does) they fail instead, so a CI runner that lost its device cannot pass
 * without running them. */
#ifndef ECF8_TESTUTIL_CL_H
#define ECF8_TESTUTIL_CL_H

#include "ecf8_cl.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static cl_context g_ctx;
static cl_device_id g_dev;
static cl_command_queue g_queue;

static int group_setup(void **state)
{
    (void)state;
    if (ecf8_cl_open_default(&g_ctx, &g_dev, &g_queue)) g_ctx = NULL;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_queue) clReleaseCommandQueue(g_queue);
    if (g_ctx) clReleaseContext(g_ctx);
    return 0;
}

/* ECF8_REQUIRE_DEVICE set to anything but "" or "0". */
static int device_required(void)
{
    const char *v = getenv("ECF8_REQUIRE_DEVICE");
    return v && *v && strcmp(v, "0") != 0;
}

#define NEED_DEVICE()                                                                             \
    do {                                                                                          \
        if (!g_ctx) {                                                                             \
            if (device_required())                                                                \
                fail_msg("no OpenCL device (%s) and ECF8_REQUIRE_DEVICE is set",                  \
                         ecf8_last_error());                                                      \
            print_message("no OpenCL device (%s): skipped\n", ecf8_last_error());                 \
            skip();                                                                               \
        }                                                                                         \
    } while (0)

#endif
