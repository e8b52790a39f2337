/* crbox's libcr: what the library's source files share. Not installed.
 *
 * Layout: core.c (set-up, the page, the signal handler, libcr's thread, fork), round.c (callbacks
 * and one checkpoint round as protocol.h describes it), cs.c (critical sections, status,
 * spinlocks), request.c (cr_request_checkpoint and friends), locate.c (finding crbox's tools),
 * errors.c (cr_strerror). The library is C, preloaded into arbitrary programs: no C++ runtime,
 * nothing that is not async-signal-safe where a signal handler may run it. */
#ifndef CRBOX_LIBCR_INTERNAL_H
#define CRBOX_LIBCR_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libcr.h"
#include "protocol.h"

#define CRI_EXPORT __attribute__((visibility("default")))
/* libcr is linked or preloaded, so it lives in the static TLS block: the initial-exec model is
 * valid and is safe to use from signal handlers. */
#define CRI_TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- Small system helpers (core.c); all async-signal-safe ---- */

pid_t cri_gettid(void);
/* FUTEX_WAIT while *word == expected, at most timeout_ms (futex(2)); shared: the word may be in
 * memory shared with other processes (no FUTEX_PRIVATE_FLAG). Returns on wake, time-out, signal or
 * a changed word alike: callers re-check. */
void cri_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms, int shared);
void cri_futex_wake(uint32_t *word, int shared);
void cri_sleep_ms(int ms);
uint64_t cri_now_ms(void); /* CLOCK_MONOTONIC */

/* A lock usable from signal handlers, provided a thread that holds it cannot be interrupted by a
 * handler that takes it: take it with cri_lock_nosig(), which blocks CR_SIGNUM meanwhile. */
typedef struct {
  uint32_t word;
} cri_lock_t;
void cri_lock(cri_lock_t *l);
void cri_unlock(cri_lock_t *l);
void cri_lock_nosig(cri_lock_t *l, sigset_t *saved);
void cri_unlock_nosig(cri_lock_t *l, const sigset_t *saved);

/* ---- Global state (core.c) ---- */

/* The page (protocol.h), mapped once by cri_global_init() and kept at the same address for the
 * life of the process (a fork child gets a page of its own at the same address). NULL before. */
extern struct crbox_libcr_page *cri_page;

/* Creates the page, installs the CR_SIGNUM handler, the fork handlers and, unless for_omit, honours
 * LIBCR_DISABLE_NSCD. Idempotent; not for signal handlers. 0, or -1 with errno. */
int cri_global_init(int for_omit);

/* What libcr knows about a thread that called cr_init() (or libcr's own thread). */
struct cri_thread {
  int id;        /* the client id cr_init() returned */
  pid_t tid;     /* refreshed after a restart */
  int persist;   /* cr_inc_persist() count */
  int hold;      /* cr_hold_ctrl(CR_HOLD_SCOPE_THREAD) value; CR_HOLD_DFLT: use the INIT one */
  int is_libcr;  /* libcr's own thread */
  int exits;     /* destructor passes seen */
};
extern CRI_TLS struct cri_thread *cri_self;

/* Starts libcr's thread unless it runs. 0, or -1 with errno. */
int cri_start_thread(void);

/* CR_SIGNUM handlers running at this moment (a round's memory is freed only when none is). */
extern uint32_t cri_handlers_inflight;

/* Delivery of CR_SIGNUM that asks a thread to run its signal-context callbacks (SI_QUEUE, this
 * value, from this process). Anything else on CR_SIGNUM is the engine's "request waiting". */
#define CRI_RUN_COOKIE 0x43524258

/* ---- Callbacks and rounds (round.c) ---- */

/* libcr's thread: waits for requests in the page and serves them. */
void *cri_thread_main(void *arg);
/* In the CR_SIGNUM handler: run the calling thread's signal-context callbacks of the current round. */
void cri_run_signal_group(void);
/* After fork, in the child: only the forking thread survives (its tid changed). */
void cri_round_after_fork(pid_t new_tid);
/* A thread that called cr_init() is exiting: forget its signal-context callbacks. */
void cri_round_thread_gone(struct cri_thread *t);
/* Whether the calling thread is running callbacks or hooks (critical sections never block there). */
int cri_in_callback(void);
/* Adds one to the page's `callbacks` the first time `bit` is set (a reason for the engine to ask
 * this process even without callbacks: critical sections, hooks). Async-signal-safe. */
#define CRI_REASON_CS 1u
#define CRI_REASON_HOOKS 2u
void cri_add_reason(uint32_t bit);
/* Local failures so far (cr_checkpoint(CR_CHECKPOINT_*FAILURE) or a failing callback), and the
 * errno the last one stands for: cr_reap_checkpoint() reports it for a request that included
 * this process. */
uint32_t cri_failure_count(void);
int cri_last_failure_errno(void);

/* ---- Critical sections (cs.c) ---- */

/* 1 while a request is pending or its round runs: cr_enter_cs() waits (futex word, private). */
extern uint32_t cri_gate;
/* CR_STATE_IDLE / _PENDING / _ACTIVE, for cr_status(). */
extern uint32_t cri_status_word;
extern CRI_TLS int cri_cs_depth;
void cri_close_gate(void);
void cri_open_gate(void);
/* After fork, in the child: only the calling thread's critical sections remain. */
void cri_cs_after_fork(void);
/* A thread exits inside critical sections: they end with it. */
void cri_cs_thread_gone(void);

/* ---- Requests (request.c) ---- */

void cri_requests_after_fork(void);

/* ---- Finding crbox's tools (locate.c) ---- */

/* The path of crbox's tool `name` (cr_checkpoint, cr_restart): $env_override if set, else next
 * to this library's install (or build) tree, else in $PATH. 0, or -1 with errno ENOENT. */
int cri_find_tool(const char *name, const char *env_override, char *out, size_t out_len);

/* ---- Text without stdio, for signal handlers ---- */

/* Appends `s` to the NUL-terminated buffer (bounded by `size`). */
void cri_append(char *buf, size_t size, const char *s);
void cri_append_int(char *buf, size_t size, long v);
void cri_append_hex(char *buf, size_t size, unsigned long v);

#endif
