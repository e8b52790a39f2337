/* crbox's libcr: registered callbacks, and one checkpoint round as protocol.h's steps 3 and 6
 * describe it.
 *
 * A round runs the callbacks in groups: one group of the thread-context callbacks, run in libcr's
 * thread, and one group per thread with signal-context callbacks, run in that thread from the
 * CR_SIGNUM handler (BLCR's "signal context"). Inside a group the callbacks are nested: the first
 * one's cr_checkpoint() runs the second one, and so on; the innermost point is where the whole group
 * has reached cr_checkpoint(). There the group reports and waits for the engine's result, and
 * every cr_checkpoint() on the way out returns it. So the thread-context callbacks all reach
 * cr_checkpoint() before any signal-context one starts (the thread group's innermost point is what
 * sends the signals), signal-context callbacks of one thread run last registered first, a
 * callback that returns without calling cr_checkpoint() gets it called on its return, and a
 * callback that fails stops the rest of its group. */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* ---- The registry ---- */

struct cri_cb {
  cr_callback_t func; /* NULL: disabled (cr_replace_callback) */
  void *arg;
  int flags;
  int id;
  struct cri_thread *owner; /* signal context: the registering thread */
  int dead;                 /* its thread exited, or it belongs to another process after fork */
};

cri_lock_t cri_registry_lock;
static struct cri_cb **cbs;
static int ncbs, capcbs;
static uint32_t reasons;
static cr_hook_fn_t hooks[CR_NUM_HOOKS];
static int hold_init = CR_HOLD_BOTH;
static int hold_uninit = CR_HOLD_BOTH;
static uint32_t failures;
static int last_failure_errno;

#define CTX_MASK (CR_THREAD_CONTEXT | CR_SIGNAL_CONTEXT)

static int live(const struct cri_cb *c) { return !c->dead && c->func != NULL; }

/* The page's `callbacks`: live callbacks plus reasons (critical sections used, hooks set). Kept
 * by atomic deltas, since critical sections add their reason from signal handlers. */
static void count_delta(int d) {
  if (cri_page && d) __atomic_add_fetch(&cri_page->callbacks, (uint32_t)d, __ATOMIC_SEQ_CST);
}

void cri_add_reason(uint32_t bit) {
  uint32_t old = __atomic_fetch_or(&reasons, bit, __ATOMIC_SEQ_CST);
  if (!(old & bit)) count_delta(1);
}

uint32_t cri_failure_count(void) { return __atomic_load_n(&failures, __ATOMIC_ACQUIRE); }
int cri_last_failure_errno(void) { return __atomic_load_n(&last_failure_errno, __ATOMIC_ACQUIRE); }

/* ---- A round ---- */

enum { G_WAITING = 0, G_RUNNING, G_DONE, G_SKIPPED };

struct entry {
  cr_callback_t func;
  void *arg;
  struct cri_cb *rec;
};

struct group {
  struct cri_thread *thread; /* signal context: the thread that runs it */
  pid_t tid;
  int is_thread_ctx;
  int n;
  struct entry *e; /* in the order they run: e[0] outermost */
  uint32_t state;  /* G_* */
  struct cr_restart_info rinfo;
  char src[sizeof(((struct crbox_libcr_page *)0)->info_src)];
};

struct round {
  uint32_t seq;
  uint32_t engine0; /* the engine word when the request was taken (protocol.h, "If the engine dies") */
  struct group tg; /* thread context */
  int ng;
  struct group *sg; /* signal context, one per thread */
  uint32_t pending_reach; /* groups not yet at their innermost point */
  uint32_t pending_done;  /* groups not yet finished (futex word) */
  uint32_t failed;        /* 0, or the CRBOX_STATE_* failure this process reported */
  int fail_code;          /* the user's code with a *_FAILURE_CODE() flag, or 0 */
  struct cr_checkpoint_info cinfo;
  char dest[sizeof(((struct crbox_libcr_page *)0)->info_dest)];
};

/* One callback being run (cr_checkpoint() and cr_replace_self() find it here). */
struct frame {
  struct round *r;
  struct group *g;
  int idx;
  int called; /* cr_checkpoint() was called (or is implied) */
  int rc;     /* what it returned */
};

static struct round *current;
static CRI_TLS struct frame *cur_frame;
static CRI_TLS int in_round;

int cri_in_callback(void) { return cur_frame != NULL || in_round; }

static void run_hook(cr_hook_event_t ev) {
  cr_hook_fn_t f = __atomic_load_n(&hooks[ev], __ATOMIC_ACQUIRE);
  if (f) f(ev);
}

static void copy_field(char *dst, size_t n, const char *src) {
  size_t i = 0;
  for (; i + 1 < n && src[i]; i++) dst[i] = src[i];
  dst[i] = 0;
}

/* The target and scope of this process's own outstanding request (request.c), if any. */
int cri_own_request(pid_t *target, int *scope);

/* ---- The engine's liveness (protocol.h, "If the engine dies") ---- */

static uint32_t engine_word(void) { return __atomic_load_n(&cri_page->engine.word, __ATOMIC_ACQUIRE); }

/* Whether the engine that made the request is gone: its thread ended holding the mutex (the
 * kernel put FUTEX_OWNER_DIED in the word, futex(2)), or the word no longer holds the owner seen
 * when the request was taken (it was unlocked, or another engine took it over). A request taken
 * while no engine held the mutex (the protocol tests play the engine so) gives no such notice. */
static int engine_gone(uint32_t engine0) {
  uint32_t w = engine_word();
  if (w & FUTEX_OWNER_DIED) return 1;
  return (engine0 & FUTEX_TID_MASK) != 0 && w != engine0;
}

/* The engine's answer, or CRBOX_RESULT_ABORTED when it is gone without one: it stores `result`
 * before it unlocks, so `result` is read again once the word says it is gone. PENDING while it
 * lives and has not answered. */
static uint32_t engine_answer(uint32_t engine0) {
  uint32_t res = __atomic_load_n(&cri_page->result, __ATOMIC_ACQUIRE);
  if (res != CRBOX_RESULT_PENDING || !engine_gone(engine0)) return res;
  res = __atomic_load_n(&cri_page->result, __ATOMIC_ACQUIRE);
  return res != CRBOX_RESULT_PENDING ? res : CRBOX_RESULT_ABORTED;
}

static struct round *build_round(uint32_t seq, uint32_t engine0) {
  struct round *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->seq = seq;
  r->engine0 = engine0;
  sigset_t saved;
  cri_lock_nosig(&cri_registry_lock, &saved);
  int nt = 0, ns = 0;
  for (int i = 0; i < ncbs; i++) {
    if (!live(cbs[i])) continue;
    if (cbs[i]->flags & CR_THREAD_CONTEXT) nt++;
    else ns++;
  }
  r->tg.e = calloc((size_t)(nt ? nt : 1), sizeof(struct entry));
  r->sg = calloc((size_t)(ns ? ns : 1), sizeof(struct group));
  int ok = r->tg.e && r->sg;
  for (int i = 0; ok && i < ncbs; i++) {
    struct cri_cb *c = cbs[i];
    if (live(c) && (c->flags & CR_THREAD_CONTEXT)) r->tg.e[r->tg.n++] = (struct entry){c->func, c->arg, c};
  }
  /* Signal context: last registered runs first (outermost). */
  for (int i = ncbs - 1; ok && i >= 0; i--) {
    struct cri_cb *c = cbs[i];
    if (!live(c) || !(c->flags & CR_SIGNAL_CONTEXT)) continue;
    struct group *g = NULL;
    for (int k = 0; k < r->ng; k++)
      if (r->sg[k].thread == c->owner) g = &r->sg[k];
    if (!g) {
      g = &r->sg[r->ng++];
      g->thread = c->owner;
      g->tid = c->owner->tid;
      g->e = calloc((size_t)ns, sizeof(struct entry));
      if (!g->e) {
        ok = 0;
        break;
      }
    }
    g->e[g->n++] = (struct entry){c->func, c->arg, c};
  }
  cri_unlock_nosig(&cri_registry_lock, &saved);
  if (!ok) {
    for (int k = 0; k < r->ng; k++) free(r->sg[k].e);
    free(r->sg);
    free(r->tg.e);
    free(r);
    return NULL;
  }
  r->tg.is_thread_ctx = 1;
  r->tg.thread = cri_self;
  r->tg.tid = cri_gettid();
  r->pending_reach = (uint32_t)(1 + r->ng);
  r->pending_done = (uint32_t)(1 + r->ng);

  /* What cr_get_checkpoint_info() tells: the engine filled the page before asking. */
  struct crbox_libcr_page *p = cri_page;
  copy_field(r->dest, sizeof r->dest, p->info_dest);
  r->cinfo.dest = r->dest;
  r->cinfo.signal = p->info_signal;
  r->cinfo.requester = p->info_requester;
  r->cinfo.target = getpid();
  r->cinfo.scope = CR_SCOPE_PROC;
  pid_t t;
  int s;
  if (p->info_requester == getpid() && cri_own_request(&t, &s) == 0) {
    r->cinfo.target = t;
    r->cinfo.scope = (cr_scope_t)s;
  }
  return r;
}

static void free_round(struct round *r) {
  for (int k = 0; k < r->ng; k++) free(r->sg[k].e);
  free(r->sg);
  free(r->tg.e);
  free(r);
}

static void done_one(struct round *r) {
  if (__atomic_sub_fetch(&r->pending_done, 1, __ATOMIC_SEQ_CST) == 0) cri_futex_wake(&r->pending_done, 0);
}

/* RUNNING -> `to`, only if the page still says RUNNING: a round whose engine died must not answer
 * the request of the engine that followed it (which set REQUESTED). */
static void set_state_from_running(uint32_t to) {
  uint32_t running = CRBOX_STATE_RUNNING;
  __atomic_compare_exchange_n(&cri_page->state, &running, to, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  cri_futex_wake(&cri_page->state, 1);
}

/* A group is at its innermost point; the last one makes the process READY (step 3). */
static void reached(struct round *r) {
  if (__atomic_sub_fetch(&r->pending_reach, 1, __ATOMIC_SEQ_CST) == 0 && !__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE))
    set_state_from_running(CRBOX_STATE_READY);
}

static void skip_group(struct round *r, struct group *g) {
  uint32_t w = G_WAITING;
  if (__atomic_compare_exchange_n(&g->state, &w, G_SKIPPED, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    reached(r);
    done_one(r);
  }
}

static int failure_errno(uint32_t state, int code) {
  if (state == CRBOX_STATE_OMIT) return CR_EOMITTED;
  if (state == CRBOX_STATE_PERM_FAILURE) return code ? code : CR_EPERMFAIL;
  return code ? code : CR_ETEMPFAIL;
}

/* Cancels the round (step 3's failure states), once; returns what cr_checkpoint() returns. The
 * page's message (for the engine's error) is `head`, then `num` unless 0, then `tail`. */
static int fail(struct round *r, uint32_t state, int code, const char *head, long num, const char *tail) {
  int err = failure_errno(state, code);
  uint32_t zero = 0;
  if (__atomic_compare_exchange_n(&r->failed, &zero, state, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    r->fail_code = code;
    if (state != CRBOX_STATE_OMIT) {
      __atomic_store_n(&last_failure_errno, err, __ATOMIC_RELEASE);
      __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    }
    char msg[sizeof cri_page->message];
    msg[0] = 0;
    cri_append(msg, sizeof msg, head);
    if (num != 0) cri_append_int(msg, sizeof msg, num);
    cri_append(msg, sizeof msg, tail);
    cri_append(msg, sizeof msg, " in thread ");
    cri_append_int(msg, sizeof msg, cri_gettid());
    memcpy(cri_page->message, msg, sizeof msg);
    set_state_from_running(state);
  }
  return -err;
}

/* Step 5 from libcr's side: wait for the engine's word. While READY the engine is taking the
 * image: no time limit, but an engine that dies (its mutex says so) cancels the checkpoint: the
 * callbacks get CRBOX_RESULT_ABORTED. After this process reported a failure, an engine that
 * holds no mutex (a test playing it) is given 30 s to answer. */
static uint32_t await_result(struct round *r) {
  uint64_t failed_at = 0;
  for (;;) {
    uint32_t res = engine_answer(r->engine0);
    if (res != CRBOX_RESULT_PENDING) return res;
    if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE)) {
      uint64_t now = cri_now_ms();
      if (!failed_at) failed_at = now;
      else if (now - failed_at > 30000) return CRBOX_RESULT_ABORTED;
    }
    cri_futex_wait(&cri_page->result, CRBOX_RESULT_PENDING, CRBOX_LIBCR_ENGINE_CHECK_MS, 1);
  }
}

static int outcome(struct round *r, struct group *g, uint32_t res) {
  uint32_t failed = __atomic_load_n(&r->failed, __ATOMIC_ACQUIRE);
  switch (res) {
    case CRBOX_RESULT_CONTINUE:
      return 0;
    case CRBOX_RESULT_RESTART:
      /* The restored copy: thread ids may have changed (cr_restart --no-restore-pid). */
      if (g->thread) g->thread->tid = cri_gettid();
      copy_field(g->src, sizeof g->src, cri_page->info_src);
      g->rinfo.src = g->src;
      g->rinfo.requester = cri_page->info_requester;
      return 1;
    case CRBOX_RESULT_OMITTED:
      return -CR_EOMITTED;
    case CRBOX_RESULT_ABORTED_PERM:
      return -failure_errno(CRBOX_STATE_PERM_FAILURE, failed == CRBOX_STATE_PERM_FAILURE ? r->fail_code : 0);
    default:
      if (failed == CRBOX_STATE_PERM_FAILURE || failed == CRBOX_STATE_OMIT) return -failure_errno(failed, r->fail_code);
      return -failure_errno(CRBOX_STATE_TEMP_FAILURE, failed ? r->fail_code : 0);
  }
}

/* The thread group's innermost point: every thread-context callback is in cr_checkpoint(); now
 * the signal-context groups may run, each in its thread (rt_tgsigqueueinfo(2), with the cookie). */
static void launch_signal_groups(struct round *r) {
  /* Cancelled, or its engine is gone: they are skipped when the round ends. */
  if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE) || engine_gone(r->engine0)) return;
  pid_t pid = getpid();
  for (int k = 0; k < r->ng; k++) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = CR_SIGNUM;
    si.si_code = SI_QUEUE;
    si.si_pid = pid;
    si.si_uid = getuid();
    si.si_value.sival_int = CRI_RUN_COOKIE;
    if (syscall(SYS_rt_tgsigqueueinfo, pid, r->sg[k].tid, CR_SIGNUM, &si) != 0) skip_group(r, &r->sg[k]);
  }
}

static int innermost(struct round *r, struct group *g) {
  if (g->is_thread_ctx) launch_signal_groups(r);
  reached(r);
  return outcome(r, g, await_result(r));
}

static int run_from(struct round *r, struct group *g, int idx) {
  if (idx >= g->n) return innermost(r, g);
  struct frame f = {r, g, idx, 0, 0};
  struct frame *prev = cur_frame;
  cur_frame = &f;
  int ret = g->e[idx].func(g->e[idx].arg);
  cur_frame = prev;
  if (!f.called) {
    f.called = 1;
    if (ret != 0) f.rc = fail(r, CRBOX_STATE_TEMP_FAILURE, 0, "a libcr callback returned ", ret, " without calling cr_checkpoint()");
    else f.rc = run_from(r, g, idx + 1);
  }
  return f.rc;
}

CRI_EXPORT int cr_checkpoint(int flags) {
  struct frame *f = cur_frame;
  if (!f) {
    errno = CR_ENOTCB;
    return -CR_ENOTCB;
  }
  if (f->called) return f->rc;
  f->called = 1;
  int code = (flags >> 16) & 0xffff;
  if (flags & CR_CHECKPOINT_PERM_FAILURE) {
    f->rc = fail(f->r, CRBOX_STATE_PERM_FAILURE, code,
                 code ? "a libcr callback asked to cancel the checkpoint and be killed (CR_CHECKPOINT_PERM_FAILURE_CODE("
                      : "a libcr callback asked to cancel the checkpoint and be killed (CR_CHECKPOINT_PERM_FAILURE",
                 code, code ? "))" : ")");
  } else if (flags & CR_CHECKPOINT_TEMP_FAILURE) {
    f->rc = fail(f->r, CRBOX_STATE_TEMP_FAILURE, code,
                 code ? "a libcr callback asked to cancel the checkpoint (CR_CHECKPOINT_TEMP_FAILURE_CODE("
                      : "a libcr callback asked to cancel the checkpoint (CR_CHECKPOINT_TEMP_FAILURE",
                 code, code ? "))" : ")");
  } else if (flags & CR_CHECKPOINT_OMIT) {
    f->rc = fail(f->r, CRBOX_STATE_OMIT, 0, "a libcr callback asked to leave its process out (CR_CHECKPOINT_OMIT)", 0, "");
  } else {
    f->rc = run_from(f->r, f->g, f->idx + 1);
  }
  return f->rc;
}

/* A signal-context group is over: hooks, then (cr_hold_ctrl) wait for the other groups. */
static void finish_signal_group(struct round *r, struct group *g, int rc) {
  if (rc >= 0) run_hook(rc > 0 ? CR_HOOK_RSTRT_SIGNAL_CONTEXT : CR_HOOK_CONT_SIGNAL_CONTEXT);
  int hold = g->thread->hold != CR_HOLD_DFLT ? g->thread->hold : __atomic_load_n(&hold_init, __ATOMIC_ACQUIRE);
  __atomic_store_n(&g->state, G_DONE, __ATOMIC_RELEASE);
  done_one(r);
  if (rc >= 0 && (hold & (rc > 0 ? CR_HOLD_RSTRT : CR_HOLD_CONT))) {
    uint32_t n;
    while ((n = __atomic_load_n(&r->pending_done, __ATOMIC_ACQUIRE)) != 0) cri_futex_wait(&r->pending_done, n, 20, 0);
  }
}

void cri_run_signal_group(void) {
  struct round *r = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
  if (!r) return;
  pid_t me = cri_gettid();
  for (int k = 0; k < r->ng; k++) {
    struct group *g = &r->sg[k];
    if (g->tid != me) continue;
    uint32_t w = G_WAITING;
    if (!__atomic_compare_exchange_n(&g->state, &w, G_RUNNING, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
    if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE)) {
      /* Cancelled before this thread's turn: its callbacks have nothing to do. */
      __atomic_store_n(&g->state, G_SKIPPED, __ATOMIC_RELEASE);
      reached(r);
      done_one(r);
      return;
    }
    struct frame *saved = cur_frame;
    int saved_in = in_round;
    cur_frame = NULL;
    in_round = 1;
    int rc = run_from(r, g, 0);
    finish_signal_group(r, g, rc);
    cur_frame = saved;
    in_round = saved_in;
    return;
  }
}

/* ---- Serving requests (libcr's thread) ---- */

static void back_to_idle(uint32_t seq) {
  /* Unless the engine already asks again (it sets REQUESTED, then bumps request_seq). */
  if (__atomic_load_n(&cri_page->request_seq, __ATOMIC_ACQUIRE) == seq) {
    uint32_t s = __atomic_load_n(&cri_page->state, __ATOMIC_ACQUIRE);
    if (s != CRBOX_STATE_REQUESTED)
      __atomic_compare_exchange_n(&cri_page->state, &s, CRBOX_STATE_IDLE, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    cri_futex_wake(&cri_page->state, 1);
  }
  __atomic_store_n(&cri_status_word, CR_STATE_IDLE, __ATOMIC_RELEASE);
  cri_open_gate();
}

/* Waits until the engine has stored a result (bounded; not at all once it is gone): a failure
 * state must stay visible until the engine has seen it. */
static void await_acknowledgement(uint32_t engine0) {
  uint64_t start = cri_now_ms();
  while (engine_answer(engine0) == CRBOX_RESULT_PENDING && cri_now_ms() - start < 30000)
    cri_futex_wait(&cri_page->result, CRBOX_RESULT_PENDING, CRBOX_LIBCR_ENGINE_CHECK_MS, 1);
}

static void end_round(struct round *r) {
  for (int k = 0; k < r->ng; k++) skip_group(r, &r->sg[k]); /* those never started */
  done_one(r);                                               /* the thread group */
  uint32_t n;
  while ((n = __atomic_load_n(&r->pending_done, __ATOMIC_ACQUIRE)) != 0) cri_futex_wait(&r->pending_done, n, 50, 0);
  await_acknowledgement(r->engine0);
  __atomic_store_n(&current, NULL, __ATOMIC_SEQ_CST);
  /* A handler that found the round counted itself in cri_handlers_inflight first. */
  uint64_t start = cri_now_ms();
  while (__atomic_load_n(&cri_handlers_inflight, __ATOMIC_SEQ_CST) != 0 && cri_now_ms() - start < 1000) cri_sleep_ms(1);
  uint32_t seq = r->seq;
  if (__atomic_load_n(&cri_handlers_inflight, __ATOMIC_SEQ_CST) == 0) free_round(r);
  back_to_idle(seq);
}

/* `engine0`: the engine word, read once the request was seen (the engine locks its mutex before
 * it bumps request_seq). */
static void serve(uint32_t seq, uint32_t engine0) {
  struct crbox_libcr_page *p = cri_page;
  __atomic_store_n(&cri_status_word, CR_STATE_PENDING, __ATOMIC_RELEASE);
  cri_close_gate();
  /* Step 3: no checkpoint inside a critical section. Leaving the last one wakes cs_count. */
  for (;;) {
    /* Given up meanwhile: the engine answered, asked again, or died. No callback runs. */
    if (engine_answer(engine0) != CRBOX_RESULT_PENDING || __atomic_load_n(&p->request_seq, __ATOMIC_ACQUIRE) != seq) {
      back_to_idle(seq);
      return;
    }
    int32_t n = __atomic_load_n(&p->cs_count, __ATOMIC_SEQ_CST);
    if (n <= 0) break;
    cri_futex_wait((uint32_t *)&p->cs_count, (uint32_t)n, CRBOX_LIBCR_ENGINE_CHECK_MS, 1);
  }
  __atomic_store_n(&p->state, CRBOX_STATE_RUNNING, __ATOMIC_RELEASE);
  __atomic_store_n(&cri_status_word, CR_STATE_ACTIVE, __ATOMIC_RELEASE);
  struct round *r = build_round(seq, engine0);
  if (!r) {
    char msg[] = "libcr ran out of memory preparing its callbacks";
    memcpy(p->message, msg, sizeof msg);
    set_state_from_running(CRBOX_STATE_TEMP_FAILURE);
    await_acknowledgement(engine0);
    back_to_idle(seq);
    return;
  }
  __atomic_store_n(&current, r, __ATOMIC_SEQ_CST);
  in_round = 1;
  int rc = run_from(r, &r->tg, 0);
  if (rc >= 0) {
    if (r->tg.n > 0) run_hook(rc > 0 ? CR_HOOK_RSTRT_THREAD_CONTEXT : CR_HOOK_CONT_THREAD_CONTEXT);
    /* crbox interrupts no thread that has no callbacks; their hook runs once, here. */
    run_hook(rc > 0 ? CR_HOOK_RSTRT_NO_CALLBACKS : CR_HOOK_CONT_NO_CALLBACKS);
  }
  in_round = 0;
  end_round(r);
}

void *cri_thread_main(void *arg) {
  (void)arg;
  /* From 0, not from the current value: a request made before this thread got here (its
   * callbacks were registered as soon as cr_init() returned) is still to be served. One the
   * engine already gave up on has its result set and is skipped below. */
  uint32_t last = 0;
  for (;;) {
    uint32_t seq = __atomic_load_n(&cri_page->request_seq, __ATOMIC_ACQUIRE);
    if (seq == last) {
      cri_futex_wait(&cri_page->request_seq, last, 1000, 1);
      continue;
    }
    last = seq;
    /* The engine sets result to PENDING before it bumps request_seq: anything else means the
     * request is already over (given up before this thread saw it). */
    if (__atomic_load_n(&cri_page->result, __ATOMIC_ACQUIRE) != CRBOX_RESULT_PENDING) continue;
    serve(seq, engine_word());
  }
  return NULL;
}

/* ---- Threads and fork ---- */

void cri_round_thread_gone(struct cri_thread *t) {
  sigset_t saved;
  cri_lock_nosig(&cri_registry_lock, &saved);
  for (int i = 0; i < ncbs; i++) {
    struct cri_cb *c = cbs[i];
    if (c->owner == t && !c->dead) {
      if (live(c)) count_delta(-1);
      c->dead = 1;
    }
  }
  cri_unlock_nosig(&cri_registry_lock, &saved);
  __atomic_add_fetch(&cri_handlers_inflight, 1, __ATOMIC_SEQ_CST);
  struct round *r = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
  if (r)
    for (int k = 0; k < r->ng; k++)
      if (r->sg[k].thread == t) skip_group(r, &r->sg[k]);
  __atomic_sub_fetch(&cri_handlers_inflight, 1, __ATOMIC_SEQ_CST);
}

void cri_round_after_fork(pid_t new_tid) {
  (void)new_tid;
  __atomic_store_n(&current, NULL, __ATOMIC_RELAXED);
  uint32_t n = 0;
  for (int i = 0; i < ncbs; i++) {
    struct cri_cb *c = cbs[i];
    if ((c->flags & CR_SIGNAL_CONTEXT) && c->owner != cri_self) c->dead = 1;
    if (live(c)) n++;
  }
  n += (uint32_t)__builtin_popcount(reasons);
  if (cri_page) __atomic_store_n(&cri_page->callbacks, n, __ATOMIC_RELEASE);
}

/* ---- Registration ---- */

CRI_EXPORT cr_callback_id_t cr_register_callback(cr_callback_t func, void *arg, int flags) {
  if (!cri_self) {
    errno = CR_ENOINIT;
    return -1;
  }
  if (cri_in_callback()) {
    errno = EBUSY;
    return -1;
  }
  int ctx = flags & CTX_MASK;
  if ((ctx != CR_THREAD_CONTEXT && ctx != CR_SIGNAL_CONTEXT) || (flags & ~CTX_MASK)) {
    errno = EINVAL;
    return -1;
  }
  struct cri_cb *c = calloc(1, sizeof *c);
  if (!c) {
    errno = ENOMEM;
    return -1;
  }
  c->func = func;
  c->arg = arg;
  c->flags = flags;
  if (ctx == CR_SIGNAL_CONTEXT) c->owner = cri_self;
  sigset_t saved;
  cri_lock_nosig(&cri_registry_lock, &saved);
  if (ncbs >= CR_MAX_CALLBACKS) {
    cri_unlock_nosig(&cri_registry_lock, &saved);
    free(c);
    errno = ENOSPC;
    return -1;
  }
  if (ncbs == capcbs) {
    int cap = capcbs ? capcbs * 2 : 16;
    struct cri_cb **grown = realloc(cbs, (size_t)cap * sizeof *grown);
    if (!grown) {
      cri_unlock_nosig(&cri_registry_lock, &saved);
      free(c);
      errno = ENOMEM;
      return -1;
    }
    cbs = grown;
    capcbs = cap;
  }
  c->id = ncbs;
  cbs[ncbs++] = c;
  if (live(c)) count_delta(1);
  cri_unlock_nosig(&cri_registry_lock, &saved);
  return c->id;
}

static void replace(struct cri_cb *c, cr_callback_t func, void *arg, int flags) {
  int was = live(c);
  c->func = func;
  c->arg = arg;
  c->flags = flags;
  count_delta(live(c) - was);
}

CRI_EXPORT int cr_replace_callback(cr_callback_id_t id, cr_callback_t func, void *arg, int flags) {
  if (!cri_self) {
    errno = CR_ENOINIT;
    return -1;
  }
  if (cri_in_callback()) {
    errno = EBUSY;
    return -1;
  }
  sigset_t saved;
  cri_lock_nosig(&cri_registry_lock, &saved);
  struct cri_cb *c = (id >= 0 && id < ncbs) ? cbs[id] : NULL;
  int ok = c && !c->dead && (flags & ~CTX_MASK) == 0 && (flags & CTX_MASK) == (c->flags & CTX_MASK) &&
           (!(c->flags & CR_SIGNAL_CONTEXT) || c->owner == cri_self);
  if (ok) replace(c, func, arg, flags);
  cri_unlock_nosig(&cri_registry_lock, &saved);
  if (!ok) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

CRI_EXPORT int cr_replace_self(cr_callback_t func, void *arg, int flags) {
  struct frame *f = cur_frame;
  if (!f) {
    errno = CR_ENOTCB;
    return -1;
  }
  struct cri_cb *c = f->g->e[f->idx].rec;
  if ((flags & ~CTX_MASK) || (flags & CTX_MASK) != (c->flags & CTX_MASK)) {
    errno = EINVAL;
    return -1;
  }
  sigset_t saved;
  cri_lock_nosig(&cri_registry_lock, &saved);
  replace(c, func, arg, flags);
  cri_unlock_nosig(&cri_registry_lock, &saved);
  return 0;
}

/* ---- Information for callbacks ---- */

CRI_EXPORT const struct cr_checkpoint_info *cr_get_checkpoint_info(void) {
  struct frame *f = cur_frame;
  return f ? &f->r->cinfo : NULL;
}

CRI_EXPORT const struct cr_restart_info *cr_get_restart_info(void) {
  struct frame *f = cur_frame;
  return (f && f->called && f->rc > 0) ? &f->g->rinfo : NULL;
}

CRI_EXPORT int cr_forward_checkpoint(cr_scope_t cr_scope, pid_t cr_target) {
  /* Only a callback of a running checkpoint can widen it: the engine reads the page's forward
   * list once every callback has reached cr_checkpoint() (protocol.h). */
  if (!cur_frame) {
    errno = CR_ENOTCB;
    return -1;
  }
  if ((int)cr_scope < (int)CR_SCOPE_PROC || (int)cr_scope > (int)CR_SCOPE_TREE || cr_target <= 0) {
    errno = EINVAL;
    return -1;
  }
  /* A slot of our own (callbacks of several threads may forward at once); the engine reads the
   * list only after every callback has reached cr_checkpoint(), so the entry is whole by then. */
  uint32_t n = __atomic_fetch_add(&cri_page->forward_count, 1, __ATOMIC_ACQ_REL);
  if (n >= CRBOX_LIBCR_FORWARDS) {
    errno = ENOSPC;
    return -1;
  }
  cri_page->forward[n].scope = (int32_t)cr_scope;
  cri_page->forward[n].id = (int32_t)cr_target;
  return 0;
}

/* ---- Hooks and holds ---- */

CRI_EXPORT cr_hook_fn_t cr_register_hook(cr_hook_event_t event, cr_hook_fn_t hook_fn) {
  if (!cri_self) {
    errno = CR_ENOINIT;
    return CR_HOOK_FN_ERROR;
  }
  if ((int)event < 0 || (int)event >= CR_NUM_HOOKS || hook_fn == CR_HOOK_FN_ERROR) {
    errno = EINVAL;
    return CR_HOOK_FN_ERROR;
  }
  cr_hook_fn_t old = __atomic_exchange_n(&hooks[event], hook_fn, __ATOMIC_SEQ_CST);
  if (hook_fn) cri_add_reason(CRI_REASON_HOOKS); /* the engine must ask, so the hook can run */
  return old;
}

CRI_EXPORT int cr_hold_ctrl(int scope, int flags) {
  if (!cri_self) {
    errno = CR_ENOINIT;
    return -1;
  }
  int valid = flags == CR_HOLD_READ || flags == CR_HOLD_NONE || flags == CR_HOLD_CONT || flags == CR_HOLD_RSTRT ||
              flags == CR_HOLD_BOTH || (flags == CR_HOLD_DFLT && scope == CR_HOLD_SCOPE_THREAD);
  int *where = scope == CR_HOLD_SCOPE_THREAD ? &cri_self->hold
               : scope == CR_HOLD_SCOPE_INIT ? &hold_init
               : scope == CR_HOLD_SCOPE_UNINIT ? &hold_uninit
                                               : NULL;
  if (!valid || !where) {
    errno = EINVAL;
    return -1;
  }
  if (flags == CR_HOLD_READ) return __atomic_load_n(where, __ATOMIC_ACQUIRE);
  return __atomic_exchange_n(where, flags, __ATOMIC_SEQ_CST);
}
