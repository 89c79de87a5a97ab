/* tempfiles.c - the registry of temporary outputs in progress, which a
 * signal handler removes through ecf8_remove_temporary_files().
 *
 * The handler may interrupt any thread anywhere, including one that is
 * adding or dropping an entry, so the registry takes no lock and allocates
 * nothing the handler reads while it could be freed:
 *  - entries live in blocks of slots; a block is pushed onto a list once
 *    (its `next` set before it is published) and never freed, and a slot is
 *    an atomic pointer claimed by compare-and-swap and emptied by exchange;
 *  - the handler first raises `removing`, then reads slots; a thread that
 *    empties a slot then reads `removing`, and frees the entry only when it
 *    is clear.  With sequentially consistent atomics one of the two sees
 *    the other's write, so the handler never reads a freed entry;
 *  - creating a temporary and registering it is one step for the handler:
 *    the creating thread blocks the asynchronous signals around it, counts
 *    itself in `creating` and gives up when `removing` is already set; the
 *    handler waits (briefly) for `creating` to drop to zero before it
 *    walks, so no file is created after the walk or left unregistered. */
#define _GNU_SOURCE
#include "io.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "the registry is read from a signal handler: its atomics must be lock-free");

struct ecf8_temp {
    bool is_dir;
    char path[];
};

#define SLOTS_PER_BLOCK 64
typedef struct temp_block {
    _Atomic(ecf8_temp *) slot[SLOTS_PER_BLOCK];
    struct temp_block *next; /* set before the block is published, never changed */
} temp_block;

static _Atomic(temp_block *) g_blocks;
static atomic_int g_removing; /* set, for good, by ecf8_remove_temporary_files */
static atomic_int g_creating; /* threads between deciding to create and registering */

/* Claims an empty slot for e, adding a block when all are taken. */
static _Atomic(ecf8_temp *) *slot_claim(ecf8_temp *e)
{
    for (temp_block *b = atomic_load(&g_blocks); b; b = b->next)
        for (int i = 0; i < SLOTS_PER_BLOCK; i++) {
            ecf8_temp *empty = NULL;
            if (atomic_compare_exchange_strong(&b->slot[i], &empty, e)) return &b->slot[i];
        }
    temp_block *nb = malloc(sizeof *nb);
    if (!nb) return NULL;
    for (int i = 0; i < SLOTS_PER_BLOCK; i++) atomic_init(&nb->slot[i], i ? NULL : e);
    nb->next = atomic_load(&g_blocks);
    while (!atomic_compare_exchange_weak(&g_blocks, &nb->next, nb)) {}
    return &nb->slot[0];
}

/* The signals a handler may run on (SIGINT, SIGTERM, ...): blocked while a
 * temporary is created and registered.  The synchronous ones (a fault in
 * this thread) cannot be blocked usefully and are left alone. */
static void block_async_signals(sigset_t *saved)
{
    sigset_t set;
    sigfillset(&set);
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof synchronous / sizeof *synchronous; i++) sigdelset(&set, synchronous[i]);
    pthread_sigmask(SIG_BLOCK, &set, saved);
}

/* Runs create(path) (it makes the file or directory and returns an fd, 0
 * for a directory or a path only registered, or -1 with errno set) and
 * registers `path` in one step.  On success *slot is the entry for
 * ecf8_temp_release.  `has_fd`: create returned a descriptor to close
 * when registering fails. */
static int create_registered(char *path, bool is_dir, bool has_fd, int (*create)(char *path),
                             _Atomic(ecf8_temp *) **slot)
{
    size_t n = strlen(path) + 1;
    ecf8_temp *e = malloc(sizeof *e + n);
    if (!e) {
        errno = ENOMEM;
        return -1;
    }
    sigset_t saved;
    block_async_signals(&saved);
    atomic_fetch_add(&g_creating, 1);
    int fd = -1;
    if (atomic_load(&g_removing)) {
        errno = EINTR; /* the process is on its way out */
    } else if ((fd = create(path)) >= 0) {
        e->is_dir = is_dir;
        memcpy(e->path, path, n);
        if (!(*slot = slot_claim(e))) {
            is_dir ? rmdir(path) : unlink(path);
            if (has_fd) close(fd);
            fd = -1;
            errno = ENOMEM;
        }
    }
    atomic_fetch_sub(&g_creating, 1);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (fd < 0) free(e);
    return fd;
}

static int create_temp_file(char *path) { return mkostemp(path, O_CLOEXEC); }
static int create_dir(char *path) { return mkdir(path, 0777) == 0 ? 0 : -1; }
static int create_temp_dir(char *path) { return mkdtemp(path) ? 0 : -1; }
static int create_nothing(char *path) { return path ? 0 : -1; }

int ecf8_temp_create_file(char *path_template, _Atomic(ecf8_temp *) **slot)
{
    return create_registered(path_template, false, true, create_temp_file, slot);
}

int ecf8_temp_create_temp_dir(char *path_template, _Atomic(ecf8_temp *) **slot)
{
    return create_registered(path_template, true, false, create_temp_dir, slot);
}

/* create_registered on a copy of `path` (it writes into the path it is
 * given only for templates). */
static int register_copy(const char *path, bool is_dir, int (*create)(char *path),
                         _Atomic(ecf8_temp *) **slot)
{
    char *copy = strdup(path);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    int rc = create_registered(copy, is_dir, false, create, slot);
    free(copy);
    return rc;
}

int ecf8_temp_create_dir(const char *path, _Atomic(ecf8_temp *) **slot)
{
    return register_copy(path, true, create_dir, slot);
}

int ecf8_temp_register_file(const char *path, _Atomic(ecf8_temp *) **slot)
{
    return register_copy(path, false, create_nothing, slot);
}

void ecf8_temp_release(_Atomic(ecf8_temp *) *slot)
{
    if (!slot) return;
    ecf8_temp *e = atomic_exchange(slot, NULL);
    /* A handler that has begun may be reading e: leave it (the process is
     * about to end). */
    if (!atomic_load(&g_removing)) free(e);
}

/* Removes files (is_dir false) or directories (true) of the registry;
 * the number removed. */
static int remove_entries(bool dirs)
{
    int removed = 0;
    for (temp_block *b = atomic_load(&g_blocks); b; b = b->next)
        for (int i = 0; i < SLOTS_PER_BLOCK; i++) {
            ecf8_temp *e = atomic_load(&b->slot[i]);
            if (e && e->is_dir == dirs && (dirs ? rmdir(e->path) : unlink(e->path)) == 0) removed++;
        }
    return removed;
}

void ecf8_remove_temporary_files(void)
{
    int saved_errno = errno;
    atomic_store(&g_removing, 1);
    /* A thread creating a temporary finishes in microseconds; a bound keeps
     * a stuck one (stopped by a debugger) from holding the exit. */
    for (int i = 0; i < 2000 && atomic_load(&g_creating) > 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    remove_entries(false);
    /* Emptied by the line above; a staged directory tree (ecf8_compress_dir)
     * has directories inside registered ones, in no particular order in the
     * registry: each pass removes at least the deepest that are left. */
    for (int pass = 0; pass < 64 && remove_entries(true) > 0; pass++) {}
    errno = saved_errno;
}
