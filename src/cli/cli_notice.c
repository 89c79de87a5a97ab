/* cli_notice.c - "building OpenCL kernels" on a terminal (cli_env.h): the
 * first use of a kernel compiles it, which on a CPU device (PoCL) takes
 * seconds to a minute with nothing else to show; later runs take it from
 * the driver's cache in milliseconds.  So the notice waits: it is printed
 * once, when a build (ecf8_cl_set_build_hook) has been running for
 * NOTICE_AFTER_MS, by a thread that sleeps until then. */
#include "cli_env.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define NOTICE_AFTER_MS 300

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int building;          /* builds under way */
static bool watching, said;

static void *watch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!said) {
        while (!building) pthread_cond_wait(&changed, &lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += NOTICE_AFTER_MS % 1000 * 1000000L;
        until.tv_sec += NOTICE_AFTER_MS / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        int rc = 0;
        while (building && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&changed, &lock, &until);
        if (building) {
            /* "\r\033[K": over a progress bar, which redraws below. */
            fprintf(stderr, "\r\033[Kecf8: building OpenCL kernels for this device (once: later runs "
                            "take them from the driver's cache)\n");
            said = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void on_build(void *user, const char *program, int done)
{
    (void)user, (void)program;
    pthread_mutex_lock(&lock);
    building += done ? -1 : 1;
    if (!watching && !said) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        watching = pthread_create(&t, &attr, watch, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

void cli_build_notice_install(void)
{
    ecf8_cl_set_build_hook(on_build, NULL);
}
