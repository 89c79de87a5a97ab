/* pool.c - parallel_for over a pool of worker threads: the lazily created
 * process-wide one, or a private pool an ecf8_decoder owns.
 *
 * Work items are claimed from an atomic counter, so uneven items (tail
 * chunks, small tensors) balance themselves.  A pool runs one job at a
 * time; a second caller waits, which keeps the pool simple and is what the
 * CLI and encoder need.  Callers that want their own parallelism give each
 * thread its own pool (ecf8_decoder) or decode with one thread, which never
 * touches a pool. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_THREADS 256

/* A helper waits this long for the next job by spinning before it sleeps.
 * In the encoder's and decoder's pipelines a job follows the one before
 * within tens of microseconds, and a helper that went to sleep takes ~0.1
 * ms to wake in a VM (a futex wake is an interrupt to an idle virtual
 * CPU): 44 jobs of many-e4m3 lost 3-5 ms of a 0.1 s compress to it. */
#define SPIN_BEFORE_SLEEP_NS 100000

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

struct ecf8_pool {
    pthread_mutex_t mutex;
    pthread_mutex_t job_mutex; /* one job at a time */
    pthread_cond_t wake, done;
    unsigned threads;          /* helpers started */
    unsigned max_helpers;      /* private pools: the most it may start */
    pool_job *current;
    _Atomic uint64_t generation; /* jobs posted; written under mutex, read by spinning helpers too */
    bool stop;                 /* private pools: ecf8_pool_free asks helpers to end */
    pthread_t *tids;           /* private pools' helpers, joined by ecf8_pool_free */
};

static ecf8_pool shared_pool = {
    .mutex = PTHREAD_MUTEX_INITIALIZER, .job_mutex = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER,
    .max_helpers = POOL_MAX_THREADS - 1};

_Atomic uint_fast64_t ecf8_shared_pool_jobs;

/* The pool ecf8_parallel_for uses on this thread (NULL: the shared one). */
static _Thread_local ecf8_pool *thread_pool;

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

typedef struct helper_arg {
    ecf8_pool *pool;
    unsigned id;
} helper_arg;

static uint64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Returns once a job after `seen` is posted or SPIN_BEFORE_SLEEP_NS passed. */
static void spin_for_job(ecf8_pool *p, uint64_t seen)
{
    const uint64_t until = monotonic_ns() + SPIN_BEFORE_SLEEP_NS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&p->generation, memory_order_relaxed) != seen) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause(); /* lets a sibling hyper-thread run */
#endif
        if (i % 64 == 0 && monotonic_ns() >= until) return;
    }
}

static void *pool_main(void *arg)
{
    helper_arg a = *(helper_arg *)arg;
    free(arg);
    ecf8_pool *p = a.pool;
    uint64_t seen = 0;
    in_parallel_for = true;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        if (p->generation == seen && !p->stop) {
            pthread_mutex_unlock(&p->mutex);
            spin_for_job(p, seen);
            pthread_mutex_lock(&p->mutex);
        }
        while (p->generation == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mutex);
        if (p->stop) break;
        seen = p->generation;
        pool_job *job = p->current;
        if (!job || a.id >= job->wanted) continue;
        job->active++;
        pthread_mutex_unlock(&p->mutex);
        run_items(job);
        pthread_mutex_lock(&p->mutex);
        if (--job->active == 0) pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

/* Starts helpers up to `helpers` (p->mutex held); fewer when threads cannot
 * be made: the job runs with the helpers it has. */
static void start_helpers(ecf8_pool *p, unsigned helpers)
{
    if (helpers > p->max_helpers) helpers = p->max_helpers;
    while (p->threads < helpers) {
        helper_arg *a = malloc(sizeof *a);
        if (!a) break;
        *a = (helper_arg){p, p->threads};
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (!p->tids) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, pool_main, a);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            free(a);
            break;
        }
        if (p->tids) p->tids[p->threads] = t;
        p->threads++;
    }
}

static int run_serial(uint64_t n, ecf8_task_fn fn, void *ctx)
{
    for (uint64_t i = 0; i < n; i++) {
        int st = fn(ctx, i);
        if (st) return st;
    }
    return ECF8_OK;
}

int ecf8_parallel_for(unsigned threads, uint64_t n, ecf8_task_fn fn, void *ctx)
{
    if (threads == 0) threads = ecf8_default_threads();
    if (threads > POOL_MAX_THREADS) threads = POOL_MAX_THREADS;
    if (threads > n) threads = (unsigned)n;
    if (threads <= 1 || in_parallel_for) return run_serial(n, fn, ctx);

    ecf8_pool *p = thread_pool ? thread_pool : &shared_pool;
    if (p == &shared_pool) atomic_fetch_add(&ecf8_shared_pool_jobs, 1);
    pool_job job = {.fn = fn, .ctx = ctx, .n = n, .wanted = threads - 1};
    atomic_init(&job.next, 0);
    atomic_init(&job.status, 0);

    pthread_mutex_lock(&p->job_mutex);
    pthread_mutex_lock(&p->mutex);
    start_helpers(p, threads - 1);
    p->current = &job;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);

    in_parallel_for = true;
    run_items(&job);
    in_parallel_for = false;

    pthread_mutex_lock(&p->mutex);
    /* Helpers that have not yet woken must not join this job later. */
    p->current = NULL;
    while (job.active > 0)
        pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
    pthread_mutex_unlock(&p->job_mutex);
    int st = atomic_load(&job.status);
    if (st && job.detail[0]) ecf8_fail(st, "%s", job.detail); /* into the caller's thread */
    return st;
}

int ecf8_pool_create(unsigned helpers, ecf8_pool **out)
{
    if (helpers > POOL_MAX_THREADS - 1) helpers = POOL_MAX_THREADS - 1;
    ecf8_pool *p = calloc(1, sizeof *p);
    pthread_t *tids = calloc(helpers ? helpers : 1, sizeof *tids);
    if (!p || !tids) {
        free(p);
        free(tids);
        return ecf8_fail(ECF8_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mutex, NULL);
    pthread_mutex_init(&p->job_mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->max_helpers = helpers;
    p->tids = tids;
    *out = p;
    return ECF8_OK;
}

void ecf8_pool_free(ecf8_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (unsigned i = 0; i < p->threads; i++) pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_mutex_destroy(&p->job_mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}

ecf8_pool *ecf8_pool_use(ecf8_pool *p)
{
    ecf8_pool *old = thread_pool;
    thread_pool = p;
    return old;
}
