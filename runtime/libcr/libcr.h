/* crbox's libcr: BLCR 0.8.x's application interface to checkpoint/restart.
 *
 * Source-compatible with BLCR's libcr.h: the same types, macros, flag values and error codes, so
 * programs written for BLCR build unchanged against crbox (`cc prog.c -lcr`). What each call does
 * under crbox, and what it cannot do, is in docs/libcr.md; the short version is here.
 *
 * Conventions (as BLCR's): functions returning int return -1 and set errno on failure unless
 * stated otherwise; CR_E* codes are errno values beyond the system's (cr_strerror() knows them). */
#ifndef _CRLIB_H
#define _CRLIB_H 1

#include <errno.h>
#include <features.h>
#include <sys/select.h> /* struct timeval */
#include <blcr_common.h>

__BEGIN_DECLS

/* ---- Types ---- */

typedef int cr_version_t;
#define CR_CHECKPOINT_ARGS_VERSION 1
#define CR_RESTART_ARGS_VERSION 1

#define CR_MAX_CALLBACKS 0x1FFFFFF

typedef int (*cr_callback_t)(void *);
typedef int cr_client_id_t;   /* from cr_init(); meaningful in the thread that got it */
typedef int cr_callback_id_t; /* from cr_register_callback() */
typedef unsigned int cr_spinlock_t;

/* What cr_get_checkpoint_info() describes: the request being served. */
struct cr_checkpoint_info {
  int signal;        /* sent to the processes once the checkpoint is taken; 0: none */
  const char *dest;  /* where the context goes ("" when not a file) */
  pid_t requester;   /* who asked */
  pid_t target;      /* the pid, pgid or sid asked for */
  cr_scope_t scope;  /* what target names */
};

/* What cr_get_restart_info() describes: the restart being served. */
struct cr_restart_info {
  pid_t requester;  /* cr_restart's pid */
  const char *src;  /* the context file read */
};

/* cr_status() values. */
enum {
  CR_STATE_IDLE,    /* no checkpoint requested */
  CR_STATE_PENDING, /* requested; waiting for critical sections to end */
  CR_STATE_ACTIVE   /* callbacks are running */
};

/* Arguments of cr_request_checkpoint(); fill with cr_initialize_checkpoint_args_t() first. */
typedef struct cr_checkpoint_args {
  cr_version_t cr_version;
  cr_scope_t cr_scope;    /* must be set */
  pid_t cr_target;        /* 0: the caller (or its group / session) */
  int cr_fd;              /* where the context is written; must be set (CR_DEST_CWD allowed) */
  int cr_signal;          /* sent to the target(s) after the checkpoint; 0: none */
  unsigned int cr_timeout; /* seconds the target(s) get to be ready; 0: no limit */
  unsigned int cr_flags;   /* CR_CHKPT_* */
} cr_checkpoint_args_t;

/* Arguments of cr_request_restart(); fill with cr_initialize_restart_args_t() first. */
typedef struct cr_restart_args {
  cr_version_t cr_version;
  int cr_fd;                             /* where the context is read from; must be set */
  int cr_signal;                         /* sent to the restored processes; 0: none */
  unsigned int cr_flags;                 /* CR_RSTRT_*; default CR_RSTRT_RESTORE_PID */
  struct cr_rstrt_relocate *cr_relocate; /* path relocations, or NULL */
} cr_restart_args_t;

typedef unsigned long cr_checkpoint_handle_t;
typedef unsigned long cr_restart_handle_t;

/* Where a callback runs (exactly one of them in cr_register_callback()'s flags). */
#define CR_THREAD_CONTEXT 0x4000000 /* in libcr's own thread; shared by all threads */
#define CR_SIGNAL_CONTEXT 0x2000000 /* in the registering thread, from a signal handler */

/* The client id to pass to cr_enter_cs() and friends from inside a callback. */
#define CR_ID_CALLBACK ((cr_client_id_t)(-1))

#define CR_SPINLOCK_INITIALIZER 0U

/* Moments at which hooks run (cr_register_hook()). */
typedef enum {
  CR_HOOK_CONT_SIGNAL_CONTEXT = 0, /* going on after a checkpoint, in a thread with signal-context callbacks */
  CR_HOOK_CONT_THREAD_CONTEXT,     /* ... in libcr's thread, after the thread-context callbacks */
  CR_HOOK_CONT_NO_CALLBACKS,       /* ... once per checkpoint for the threads without callbacks */
  CR_HOOK_RSTRT_SIGNAL_CONTEXT,    /* the same three, after a restart */
  CR_HOOK_RSTRT_THREAD_CONTEXT,
  CR_HOOK_RSTRT_NO_CALLBACKS,
  CR_NUM_HOOKS /* not an event */
} cr_hook_event_t;

typedef void (*cr_hook_fn_t)(cr_hook_event_t);
#define CR_HOOK_FN_ERROR ((cr_hook_fn_t)(~0UL))

/* cr_hold_ctrl() scopes. */
enum {
  CR_HOLD_SCOPE_THREAD, /* the calling thread */
  CR_HOLD_SCOPE_INIT,   /* threads that called cr_init() and set nothing of their own */
  CR_HOLD_SCOPE_UNINIT  /* threads that never called cr_init() */
};

/* cr_poll_checkpoint_msg() / cr_poll_restart_msg() failures: which step failed. */
#define CR_POLL_CHKPT_ERR_PRE -1  /* waiting */
#define CR_POLL_CHKPT_ERR_POST -2 /* reaping (errno says why the request failed) */
#define CR_POLL_CHKPT_ERR_LOG -3  /* collecting the messages */
#define CR_POLL_RSTRT_ERR_PRE -1
#define CR_POLL_RSTRT_ERR_POST -2
#define CR_POLL_RSTRT_ERR_LOG -3

/* ---- Set-up ---- */

/* Prepares libcr for the calling thread (call it once in each thread that uses libcr; callbacks
 * need not). Idempotent. Returns a non-negative client id, or -1. Not for signal handlers. */
extern cr_client_id_t cr_init(void);

/* ---- Callbacks ---- */

/* Registers `func(arg)` to run when this process is checkpointed; flags: one of
 * CR_THREAD_CONTEXT / CR_SIGNAL_CONTEXT. Returns an id for cr_replace_callback(), or -1
 * (CR_ENOINIT, EINVAL, EBUSY inside a callback, ENOMEM). Thread-context callbacks all reach
 * cr_checkpoint() before any signal-context one runs; signal-context ones of a thread run last
 * registered first. */
extern cr_callback_id_t cr_register_callback(cr_callback_t func, void *arg, int flags);

/* Replaces the function, argument and flags of a registered callback (func NULL disables it);
 * the context cannot change. 0, or -1 (CR_ENOINIT, EINVAL, EBUSY inside a callback). */
extern int cr_replace_callback(cr_callback_id_t id, cr_callback_t func, void *arg, int flags);

/* The same, for the callback that is running. 0, or -1 (CR_ENOTCB, EINVAL). */
extern int cr_replace_self(cr_callback_t func, void *arg, int flags);

/* Inside a callback: lets the checkpoint proceed (CR_CHECKPOINT_READY) or cancels it (the
 * failure / omit flags). Returns 0 when the process goes on after the checkpoint, a positive
 * value in the copy restarted from it, or a negative code: -CR_ETEMPFAIL (or the user code),
 * -CR_EPERMFAIL, -CR_EOMITTED, -CR_ENOTCB outside a callback. A callback that returns without
 * calling it is treated as if it had called cr_checkpoint(CR_CHECKPOINT_READY) on return; one
 * that returns nonzero before calling it cancels the checkpoint (temporary failure). */
extern int cr_checkpoint(int flags);

/* Inside a callback, before cr_checkpoint(): the request being served; NULL elsewhere. */
extern const struct cr_checkpoint_info *cr_get_checkpoint_info(void);
/* Inside a callback, after cr_checkpoint() returned > 0: the restart; NULL elsewhere. */
extern const struct cr_restart_info *cr_get_restart_info(void);

/* Inside a callback: adds processes to the current checkpoint. Not available in crbox (returns
 * -1 with CR_ENOSUPPORT; CR_ENOTCB outside a callback). */
extern int cr_forward_checkpoint(cr_scope_t cr_scope, pid_t cr_target);

/* ---- Critical sections (thread-safe and signal-safe) ---- */

/* Enters a critical section: a checkpoint requested meanwhile waits until the last one is left.
 * Blocks while a checkpoint is pending or running (never inside a callback: pass
 * CR_ID_CALLBACK there). Sections nest. 0, or -1 (CR_ENOINIT, EINVAL). */
extern int cr_enter_cs(cr_client_id_t id);
/* As cr_enter_cs() without blocking: 0 entered, > 0 a checkpoint is pending (do not leave), -1. */
extern int cr_tryenter_cs(cr_client_id_t id);
/* Leaves a critical section. 0, or -1 (CR_ENOINIT, EINVAL when not inside one). */
extern int cr_leave_cs(cr_client_id_t id);
/* CR_STATE_IDLE / _PENDING / _ACTIVE, or -1 (CR_ENOINIT). */
extern int cr_status(void);

/* ---- Checkpoint requests ---- */

#define cr_initialize_checkpoint_args_t(_cr_args) cri_init_checkpoint_args_t(CR_CHECKPOINT_ARGS_VERSION, (_cr_args))

/* Starts a checkpoint of args->cr_target (0: the caller) in args->cr_scope, written to
 * args->cr_fd, by running crbox's cr_checkpoint; returns at once. 0, or -1 (ESRCH, EPERM, EBADF,
 * EINVAL, EDEADLK with CR_CHKPT_PROHIBIT_SELF, ENOENT when cr_checkpoint cannot be found). */
extern int cr_request_checkpoint(cr_checkpoint_args_t *args, cr_checkpoint_handle_t *handle);
/* Waits (NULL: without limit) for the request to end: > 0 ended, 0 time ran out (the time left is
 * written back as select() does), -1 (EINVAL, EINTR). */
extern int cr_wait_checkpoint(cr_checkpoint_handle_t *handle, struct timeval *timeout);
/* Copies up to len bytes of the request's messages (cr_checkpoint's output) into msg, NUL
 * included; returns the size needed for all of them (0: none), or -1 (EINVAL). */
extern int cr_log_checkpoint(cr_checkpoint_handle_t *handle, unsigned int len, char *msg);
/* The outcome of an ended request; frees the handle unless the result is EAGAIN. > 0 success;
 * -1 with errno: EAGAIN (not ended), CR_ERESTARTED (this is the restarted copy of a process the
 * request checkpointed: not an error), CR_ETEMPFAIL, CR_EPERMFAIL, ESRCH, EIO, EINVAL... */
extern int cr_reap_checkpoint(cr_checkpoint_handle_t *handle);
/* Wait, collect the messages (*msg_p: malloc'ed, or NULL) and reap: > 0 done, 0 time ran out, or
 * CR_POLL_CHKPT_ERR_PRE / _POST / _LOG with errno. */
extern int cr_poll_checkpoint_msg(cr_checkpoint_handle_t *handle, struct timeval *timeout, char **msg_p);
extern int cr_poll_checkpoint(cr_checkpoint_handle_t *handle, struct timeval *timeout);

/* ---- Restart requests (experimental in BLCR) ---- */

#define cr_initialize_restart_args_t(_cr_args) cri_init_restart_args_t(CR_RESTART_ARGS_VERSION, (_cr_args))
/* Restarts the context read from args->cr_fd by running crbox's cr_restart --detach. */
extern int cr_request_restart(cr_restart_args_t *args, cr_restart_handle_t *handle);
extern int cr_wait_restart(cr_restart_handle_t *handle, struct timeval *timeout);
extern int cr_log_restart(cr_restart_handle_t *handle, unsigned int len, char *msg);
extern int cr_reap_restart(cr_restart_handle_t *handle);
extern int cr_poll_restart_msg(cr_restart_handle_t *handle, struct timeval *timeout, char **msg_p);
extern int cr_poll_restart(cr_restart_handle_t *handle, struct timeval *timeout);

/* ---- Spinlocks (thread-safe and signal-safe) ---- */

extern void cr_spinlock_init(cr_spinlock_t *);
extern void cr_spinlock_lock(cr_spinlock_t *);
extern void cr_spinlock_unlock(cr_spinlock_t *);
extern int cr_spinlock_trylock(cr_spinlock_t *); /* nonzero when taken */

/* ---- Miscellaneous ---- */

/* Describes errno values and CR_E* codes alike. */
extern const char *cr_strerror(int errnum);

/* Sets the hook run at `event` (NULL: none); returns the previous one, or CR_HOOK_FN_ERROR
 * (CR_ENOINIT, EINVAL). */
extern cr_hook_fn_t cr_register_hook(cr_hook_event_t event, cr_hook_fn_t hook_fn);

/* Whether threads wait for every callback of the process to finish before going on after a
 * checkpoint (CR_HOLD_CONT) or a restart (CR_HOLD_RSTRT). Returns the previous value, or -1
 * (CR_ENOINIT, EINVAL). In crbox only threads with signal-context callbacks are ever held. */
extern int cr_hold_ctrl(int scope, int flags);

/* Keep the calling thread's libcr data alive past thread-specific destructors that use libcr.
 * Return the previous count, or -1 (CR_ENOINIT, ERANGE). */
extern int cr_inc_persist(void);
extern int cr_dec_persist(void);

/* ---- Private (use the macros above) ---- */

extern int cri_init_checkpoint_args_t(cr_version_t, cr_checkpoint_args_t *);
extern int cri_init_restart_args_t(cr_version_t, cr_restart_args_t *);

/* ---- Deprecated: checkpoint the calling process to context.PID / a file / an fd ---- */

extern void cr_request(void) _CR_DEPRECATED;
extern void cr_request_file(const char *filename) _CR_DEPRECATED;
extern void cr_request_fd(int fd) _CR_DEPRECATED;

__END_DECLS

#endif
