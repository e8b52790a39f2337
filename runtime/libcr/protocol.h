/* The contract between libcr (inside the application) and crbox's checkpoint engine (in
 * cr_checkpoint and cr_restart). Plain C, shared by both sides.
 *
 * libcr, when it is initialised, creates a memfd named CRBOX_LIBCR_MEMFD_NAME (memfd_create(2)),
 * one page long, maps it MAP_SHARED once, and keeps it mapped for the life of the process. The
 * engine finds it in /proc/PID/maps ("/memfd:crbox-libcr (deleted)"), maps the same page through
 * /proc/PID/map_files/A-B (proc(5)), and the two sides talk through the fields below with atomic
 * loads and stores; every field a side waits on is a futex word (futex(2), FUTEX_WAIT/FUTEX_WAKE
 * WITHOUT FUTEX_PRIVATE_FLAG, since the page is shared between processes). Waiters always use a
 * time-out and re-check, so a missed wake costs a few milliseconds, never a hang; and a side
 * that dies does not leave the other waiting (see "If the engine dies" below).
 *
 * One checkpoint, as the engine drives it for each process of its scope that has the page:
 *   1. the engine reads `omit`: a process with libcr_omit loaded is left out of the checkpoint;
 *   2. if `callbacks` is nonzero, the engine stores `request_flags`, sets `result` to
 *      CRBOX_RESULT_PENDING, `state` to CRBOX_STATE_REQUESTED, increments `request_seq` and wakes
 *      it: libcr's thread waits on that word (no signal is sent: one would interrupt the program's
 *      own system calls);
 *   3. libcr waits until no thread is inside a critical section (`cs_count` == 0; new
 *      cr_enter_cs() calls wait while a checkpoint is pending), sets `state` to
 *      CRBOX_STATE_RUNNING, runs the thread-context callbacks in its own thread, then the
 *      signal-context ones in their threads; each callback calls cr_checkpoint(), which reports
 *      and blocks: when every callback has reached cr_checkpoint(CR_CHECKPOINT_READY), libcr sets
 *      `state` to CRBOX_STATE_READY and wakes it. A callback that asks for
 *      CR_CHECKPOINT_TEMP_FAILURE / _PERM_FAILURE / _OMIT (or returns nonzero) makes `state`
 *      CRBOX_STATE_TEMP_FAILURE / _PERM_FAILURE / _OMIT, with a sentence in `message`;
 *   4. the engine waits for a `state` other than REQUESTED/RUNNING, bounded by cr_checkpoint's
 *      --time; on READY it freezes and dumps the processes (the callbacks are blocked inside
 *      cr_checkpoint() meanwhile, and are in that state in the image); on OMIT it leaves the
 *      process out; on a failure or a time-out it gives up (PERM: killing the process, as BLCR
 *      does);
 *   5. the engine stores the outcome in `result` and wakes it: CRBOX_RESULT_CONTINUE in the
 *      process that ran on, CRBOX_RESULT_ABORTED when the checkpoint was given up (the callbacks'
 *      cr_checkpoint() returns -CR_ETEMPFAIL, or -CR_EPERMFAIL), CRBOX_RESULT_OMITTED. cr_restart
 *      stores CRBOX_RESULT_RESTART in the restored copy's page (through the memfd holding the
 *      page's saved content) before the process runs again: its callbacks' cr_checkpoint() return
 *      a positive value there;
 *   6. libcr runs the rest of each callback (after cr_checkpoint() returns), then sets `state` back
 *      to CRBOX_STATE_IDLE, and lets critical sections be entered again.
 * The `info_*` fields describe the last checkpoint or restart for cr_get_checkpoint_info() and
 * cr_get_restart_info(): the engine fills them before it stores `result`.
 *
 * If the engine dies (version 2). A checkpointer may be SIGKILLed, crash or be taken by the OOM
 * killer at any step; the process it asked must then go on as it was ("nothing lost"), not wait
 * forever in cr_checkpoint() or behind a closed critical-section gate. The engine holds
 * `engine.mutex`, a robust, process-shared pthread mutex that libcr initialises with the page
 * (pthread_mutexattr_setrobust(3), pthread_mutexattr_setpshared(3)), from before it asks (step 2)
 * until after it stored the result (step 5). It takes it with pthread_mutex_trylock(), never a
 * blocking lock (so the word never gains FUTEX_WAITERS): a second engine finds it held (EBUSY:
 * another checkpoint of the process is under way), and one that follows a dead engine gets it with
 * EOWNERDEAD (then pthread_mutex_consistent()). glibc keeps a held robust mutex on the locking
 * thread's robust list (set_robust_list(2)); when that thread ends, however it ends, the kernel
 * walks the list and, in each futex word that holds the thread's id, puts FUTEX_OWNER_DIED in place
 * of the id (futex(2), "Robust futexes"; the kernel's Documentation/locking/robust-futex-ABI.rst).
 * That holds for an OOM kill too: since Linux 5.18 the OOM reaper gives a dying process time to
 * walk its robust list before it frees its memory. The word is the mutex's first one
 * (`engine.word`: the kernel's robust-futex word, glibc's __lock); libcr never locks the mutex, it
 * only reads that word. The word names no pid that libcr would have to resolve, so this works when
 * the engine lives in another pid namespace than the process (a sandbox is checkpointed from
 * outside), and a reused pid cannot fool it.
 *   libcr reads the word when it takes a request (`engine0`). While it waits for the engine (for
 * `cs_count`, at READY, for the answer to a failure) it reads it again at least every
 * CRBOX_LIBCR_ENGINE_CHECK_MS ms: once it has FUTEX_OWNER_DIED, or differs from a held `engine0`
 * (the engine unlocked it, or another engine took it over), the engine of this request is gone.
 * Unless `result` holds an answer after all (the engine stores it before it unlocks), libcr then
 * ends the round as if the engine had stored CRBOX_RESULT_ABORTED: callbacks at READY return
 * -CR_ETEMPFAIL, callbacks not run yet never run, the critical-section gate opens again. An
 * `engine0` of 0 (an engine that holds no lock, as the protocol tests play it) gives no such
 * notice. A process the dead engine had frozen is detached by the kernel (ptrace(2): the tracees of
 * a tracer that exits are detached and restarted) and runs on. libcr moves `state` to READY or a
 * failure state only by a compare-and-swap from RUNNING, so a round whose engine died cannot answer
 * the request of the engine that follows it. cr_restart initialises the mutex again in a restored
 * page (the saved one was held by the engine that took the image).
 */
#ifndef CRBOX_LIBCR_PROTOCOL_H
#define CRBOX_LIBCR_PROTOCOL_H

#include <pthread.h>
#include <stdint.h>

#define CRBOX_LIBCR_MEMFD_NAME "crbox-libcr"
#define CRBOX_LIBCR_MAGIC 0x424c5243u /* "CRLB" */
/* 2: `engine`, the engine's liveness (see "If the engine dies" above). An engine refuses a page
 * of another version with a sentence naming both; nothing of the handshake is tried. */
#define CRBOX_LIBCR_VERSION 2u
/* How often, at most, libcr looks whether its engine still lives while it waits for it. */
#define CRBOX_LIBCR_ENGINE_CHECK_MS 50
/* The signal libcr reserves for itself (its handler is installed by cr_init(); it runs the
 * signal-context callbacks in their threads), so applications must not use it. SIGRTMAX - 2 on
 * Linux (64 - 2). */
#define CRBOX_LIBCR_SIGNAL 62

enum crbox_libcr_state {
  CRBOX_STATE_IDLE = 0,
  CRBOX_STATE_REQUESTED = 1,
  CRBOX_STATE_RUNNING = 2, /* libcr is running the callbacks */
  CRBOX_STATE_READY = 3,   /* every callback is inside cr_checkpoint(): take the image */
  CRBOX_STATE_TEMP_FAILURE = 4,
  CRBOX_STATE_PERM_FAILURE = 5,
  CRBOX_STATE_OMIT = 6,
};

enum crbox_libcr_result {
  CRBOX_RESULT_PENDING = 0,
  CRBOX_RESULT_CONTINUE = 1,
  CRBOX_RESULT_RESTART = 2,
  CRBOX_RESULT_ABORTED = 3,      /* given up: temporary failure, time-out, another process failed */
  CRBOX_RESULT_ABORTED_PERM = 4, /* given up for good: the process is about to be killed */
  CRBOX_RESULT_OMITTED = 5,
};

struct crbox_libcr_page {
  uint32_t magic;   /* CRBOX_LIBCR_MAGIC once libcr has filled the page */
  uint32_t version; /* CRBOX_LIBCR_VERSION */
  uint32_t omit;      /* nonzero: libcr_omit is loaded; the engine leaves this process out */
  uint32_t callbacks; /* number of callbacks registered (0: nothing to ask, dump at once) */
  /* engine -> libcr */
  uint32_t request_seq;   /* futex word: incremented for each request */
  uint32_t request_flags; /* reserved (0) */
  /* libcr -> engine */
  uint32_t state; /* futex word: enum crbox_libcr_state */
  int32_t cs_count; /* threads inside a critical section (cr_enter_cs) */
  /* engine -> libcr, the outcome */
  uint32_t result; /* futex word: enum crbox_libcr_result */
  uint32_t restarts; /* incremented by cr_restart at each restart of this image */
  /* For cr_get_checkpoint_info / cr_get_restart_info: the bundle's path as the engine wrote it
   * ("" for a pipe or an fd), the signal sent after the checkpoint (0: none). */
  int32_t info_signal;
  int32_t info_requester; /* pid of the process that asked for the checkpoint, as seen by libcr */
  char info_dest[1024];
  char info_src[1024]; /* the bundle a restart read */
  char message[512];   /* why libcr failed the request (from the callback), for the engine's error */
  /* libcr -> engine, while a request runs: cr_forward_checkpoint() from a callback asks that more
   * processes be taken in the same checkpoint. `scope` is a cr_scope_t (0 one process, 1 its
   * process group, 2 its session, 3 it and its descendants), `id` a pid as the process sees it.
   * libcr fills an entry, then increments `forward_count` (at most CRBOX_LIBCR_FORWARDS). */
  uint32_t forward_count;
  struct {
    int32_t scope;
    int32_t id;
  } forward[8];
  /* Version 2: held by the engine while it drives a request; see "If the engine dies". */
  union {
    pthread_mutex_t mutex;
    uint32_t word; /* the robust futex word: the holder's thread id, or FUTEX_OWNER_DIED */
  } engine;
};
#define CRBOX_LIBCR_FORWARDS 8

/* Makes `engine.mutex` robust, process-shared and free (libcr when it fills a page; cr_restart in
 * a restored one). 0, or an error number. */
static inline int crbox_libcr_init_engine_lock(struct crbox_libcr_page *p) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (rc != 0) return rc;
  rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(&p->engine.mutex, &a);
  pthread_mutexattr_destroy(&a);
  return rc;
}

#endif
