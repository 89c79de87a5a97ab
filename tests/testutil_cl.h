/* testutil_cl.h - the device every OpenCL test group shares: opened once in
 * the group setup, and a skip (not a failure) when there is none. */
#ifndef ECF8_TESTUTIL_CL_H
#define ECF8_TESTUTIL_CL_H

#include "ecf8_cl.h"
#include "testutil.h"

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

#define NEED_DEVICE()                                                              \
    do {                                                                           \
        if (!g_ctx) {                                                              \
            print_message("no OpenCL device (%s): skipped\n", ecf8_last_error()); \
            skip();                                                                \
        }                                                                          \
    } while (0)

#endif
