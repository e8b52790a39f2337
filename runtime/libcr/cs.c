/* crbox's libcr: critical sections (cr_enter_cs and friends), cr_status, spinlocks.
 *
 * The page's cs_count is the number of threads inside a critical section; libcr's thread serves a
 * request only once it is 0, after closing the gate that makes new entries wait. An entering
 * thread counts itself first and looks at the gate second, libcr's thread closes the gate first
 * and looks at the count second (both sequentially consistent), so one of them always sees the
 * other. The outermost enter and leave block every signal around those few steps: a signal
 * handler of the same thread that enters a critical section cannot then find the thread half-way
 * in (which could deadlock it against libcr's thread). Nested sections touch only a thread-local
 * depth. All of this is async-signal-safe. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "internal.h"

uint32_t cri_gate;
uint32_t cri_status_word = CR_STATE_IDLE;
CRI_TLS int cri_cs_depth;

void cri_close_gate(void) { __atomic_store_n(&cri_gate, 1, __ATOMIC_SEQ_CST); }

void cri_open_gate(void) {
  __atomic_store_n(&cri_gate, 0, __ATOMIC_SEQ_CST);
  cri_futex_wake(&cri_gate, 0);
}

static void count_leave(void) {
  struct crbox_libcr_page *p = cri_page;
  if (__atomic_sub_fetch(&p->cs_count, 1, __ATOMIC_SEQ_CST) == 0 && __atomic_load_n(&cri_gate, __ATOMIC_SEQ_CST))
    cri_futex_wake((uint32_t *)&p->cs_count, 1);
}

/* What cr_enter_cs and cr_leave_cs check first: 1 when there is nothing to do (CR_ID_CALLBACK
 * inside a callback), 0 to go on, -1 with errno. */
static int check_client(cr_client_id_t id) {
  if (id == CR_ID_CALLBACK) {
    if (cri_in_callback()) return 1;
    errno = EINVAL;
    return -1;
  }
  if (!cri_self || !cri_page) {
    errno = CR_ENOINIT;
    return -1;
  }
  if (id < 0) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* 0 entered, 1 a checkpoint is pending (only when !block), -1 with errno. */
static int enter(cr_client_id_t id, int block) {
  int c = check_client(id);
  if (c != 0) return c > 0 ? 0 : -1;
  /* Inside callbacks (or libcr's thread) a checkpoint is already under way: never wait. */
  if (cri_in_callback() || cri_self->is_libcr) return 0;
  if (cri_cs_depth > 0) {
    cri_cs_depth++;
    return 0;
  }
  cri_add_reason(CRI_REASON_CS); /* from now on the engine must ask before it freezes us */
  sigset_t all, old;
  sigfillset(&all);
  for (;;) {
    pthread_sigmask(SIG_SETMASK, &all, &old);
    __atomic_add_fetch(&cri_page->cs_count, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&cri_gate, __ATOMIC_SEQ_CST)) {
      cri_cs_depth = 1;
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      return 0;
    }
    count_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!block) return 1;
    while (__atomic_load_n(&cri_gate, __ATOMIC_SEQ_CST)) cri_futex_wait(&cri_gate, 1, 100, 0);
  }
}

CRI_EXPORT int cr_enter_cs(cr_client_id_t id) {
  int rc = enter(id, 1);
  return rc > 0 ? 0 : rc;
}

CRI_EXPORT int cr_tryenter_cs(cr_client_id_t id) { return enter(id, 0); }

CRI_EXPORT int cr_leave_cs(cr_client_id_t id) {
  int c = check_client(id);
  if (c != 0) return c > 0 ? 0 : -1;
  if (cri_cs_depth == 0) {
    if (cri_in_callback() || cri_self->is_libcr) return 0; /* its enter returned at once too */
    errno = EINVAL;
    return -1;
  }
  if (cri_cs_depth > 1) {
    cri_cs_depth--;
    return 0;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  cri_cs_depth = 0;
  count_leave(); /* the last one out lets a pending checkpoint go on */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return 0;
}

CRI_EXPORT int cr_status(void) {
  if (!cri_self) {
    errno = CR_ENOINIT;
    return -1;
  }
  return (int)__atomic_load_n(&cri_status_word, __ATOMIC_ACQUIRE);
}

void cri_cs_after_fork(void) {
  __atomic_store_n(&cri_gate, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&cri_status_word, CR_STATE_IDLE, __ATOMIC_RELAXED);
  if (cri_page && cri_page->magic == CRBOX_LIBCR_MAGIC) __atomic_store_n(&cri_page->cs_count, cri_cs_depth > 0 ? 1 : 0, __ATOMIC_RELEASE);
}

void cri_cs_thread_gone(void) {
  if (cri_cs_depth > 0 && cri_page) {
    cri_cs_depth = 0;
    count_leave();
  }
}

/* ---- Spinlocks ---- */

CRI_EXPORT void cr_spinlock_init(cr_spinlock_t *l) { __atomic_store_n(l, 0u, __ATOMIC_RELEASE); }

CRI_EXPORT void cr_spinlock_lock(cr_spinlock_t *l) {
  while (__atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#else
      sched_yield();
#endif
    }
  }
}

CRI_EXPORT void cr_spinlock_unlock(cr_spinlock_t *l) { __atomic_store_n(l, 0u, __ATOMIC_RELEASE); }

CRI_EXPORT int cr_spinlock_trylock(cr_spinlock_t *l) { return __atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE) == 0; }
