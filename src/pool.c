/* pool.c - parallel_for over a lazily created, process-wide thread pool.
 *
 * Work items are claimed from an atomic counter, so uneven items (tail
 * chunks, small tensors) balance themselves.  One job runs at a time; a
 * second caller waits, which keeps the pool simple and is what the CLI and
 * encoder need. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <unistd.h>

#define POOL_MAX_THREADS 256

typedef struct pool_job {
    ecf8_task_fn fn;
    void *ctx;
    uint64_t n;
    unsigned wanted;           /* helper threads that may take part */
    atomic_uint_fast64_t next;
    atomic_int status;
    char detail[512];          /* ecf8_last_error() of the failing item */
    unsigned active;           /* helpers still inside this job */
} pool_job;

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_job_mutex = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static unsigned pool_threads;   /* helpers started */
static pool_job *pool_current;
static uint64_t pool_generation;

unsigned ecf8_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (unsigned)n;
}

/* Set on pool threads and on a caller inside a job: a nested parallel_for
 * runs serially instead of waiting for a pool that is busy with its caller. */
static _Thread_local bool in_parallel_for;

static void run_items(pool_job *job)
{
    for (;;) {
        if (atomic_load_explicit(&job->status, memory_order_relaxed) != 0) return;
        uint64_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n) return;
        int st = job->fn(job->ctx, i);
        if (st != 0) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&job->status, &expected, st))
                snprintf(job->detail, sizeof job->detail, "%s", ecf8_last_error());
        }
    }
}

static void *pool_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t seen = 0;
    in_parallel_for = true;
    pthread_mutex_lock(&pool_mutex);
    for (;;) {
        while (pool_generation == seen)
            pthread_cond_wait(&pool_wake, &pool_mutex);
        seen = pool_generation;
        pool_job *job = pool_current;
        if (!job || id >= job->wanted) continue;
        job->active++;
        pthread_mutex_unlock(&pool_mutex);
        run_items(job);
        pthread_mutex_lock(&pool_mutex);
        if (--job->active == 0) pthread_cond_broadcast(&pool_done);
    }
    return NULL;
}

int ecf8_parallel_for(unsigned threads, uint64_t n, ecf8_task_fn fn, void *ctx)
{
    if (threads == 0) threads = ecf8_default_threads();
    if (threads > POOL_MAX_THREADS) threads = POOL_MAX_THREADS;
    if (threads > n) threads = (unsigned)n;
    if (threads <= 1 || in_parallel_for) {
        for (uint64_t i = 0; i < n; i++) {
            int st = fn(ctx, i);
            if (st) return st;
        }
        return ECF8_OK;
    }

    pool_job job = {.fn = fn, .ctx = ctx, .n = n, .wanted = threads - 1};
    atomic_init(&job.next, 0);
    atomic_init(&job.status, 0);

    pthread_mutex_lock(&pool_job_mutex);
    pthread_mutex_lock(&pool_mutex);
    while (pool_threads < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, pool_main, (void *)(uintptr_t)pool_threads);
        pthread_attr_destroy(&attr);
        if (rc != 0) break; /* run with the helpers we have */
        pool_threads++;
    }
    pool_current = &job;
    pool_generation++;
    pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_mutex);

    in_parallel_for = true;
    run_items(&job);
    in_parallel_for = false;

    pthread_mutex_lock(&pool_mutex);
    /* Helpers that have not yet woken must not join this job later. */
    pool_current = NULL;
    while (job.active > 0)
        pthread_cond_wait(&pool_done, &pool_mutex);
    pthread_mutex_unlock(&pool_mutex);
    pthread_mutex_unlock(&pool_job_mutex);
    int st = atomic_load(&job.status);
    if (st && job.detail[0]) ecf8_fail(st, "%s", job.detail); /* into the caller's thread */
    return st;
}
