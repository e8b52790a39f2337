/* crbox's libcr: set-up (cr_init), the page shared with the engine, the CR_SIGNUM handler, libcr's
 * thread, and what a fork child must redo. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

struct crbox_libcr_page *cri_page;
CRI_TLS struct cri_thread *cri_self;

static pthread_mutex_t init_mutex = PTHREAD_MUTEX_INITIALIZER;
static int global_done;
static int thread_running;
static size_t page_len;
static pthread_key_t thread_key;
static int next_client_id = 1;
/* Handlers running right now: a round's memory is freed only when none is. */
uint32_t cri_handlers_inflight;

/* ---- System helpers ---- */

pid_t cri_gettid(void) { return (pid_t)syscall(SYS_gettid); }

void cri_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms, int shared) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
  int op = FUTEX_WAIT | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  int saved = errno;
  (void)syscall(SYS_futex, word, op, expected, &ts, NULL, 0);
  errno = saved;
}

void cri_futex_wake(uint32_t *word, int shared) {
  int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  int saved = errno;
  (void)syscall(SYS_futex, word, op, INT_MAX, NULL, NULL, 0);
  errno = saved;
}

void cri_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  int saved = errno;
  (void)nanosleep(&ts, NULL);
  errno = saved;
}

uint64_t cri_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 0 free, 1 taken, 2 taken with waiters. */
void cri_lock(cri_lock_t *l) {
  uint32_t c = 0;
  if (__atomic_compare_exchange_n(&l->word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  if (c != 2) c = __atomic_exchange_n(&l->word, 2, __ATOMIC_ACQUIRE);
  while (c != 0) {
    cri_futex_wait(&l->word, 2, 100, 0);
    c = __atomic_exchange_n(&l->word, 2, __ATOMIC_ACQUIRE);
  }
}

void cri_unlock(cri_lock_t *l) {
  if (__atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE) == 2) cri_futex_wake(&l->word, 0);
}

void cri_lock_nosig(cri_lock_t *l, sigset_t *saved) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, CR_SIGNUM);
  pthread_sigmask(SIG_BLOCK, &s, saved);
  cri_lock(l);
}

void cri_unlock_nosig(cri_lock_t *l, const sigset_t *saved) {
  cri_unlock(l);
  pthread_sigmask(SIG_SETMASK, saved, NULL);
}

void cri_append(char *buf, size_t size, const char *s) {
  size_t n = strnlen(buf, size);
  while (*s && n + 1 < size) buf[n++] = *s++;
  if (n < size) buf[n] = 0;
}

void cri_append_int(char *buf, size_t size, long v) {
  char tmp[24];
  int i = (int)sizeof tmp - 1;
  unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
  tmp[i] = 0;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u && i > 1);
  if (v < 0) tmp[--i] = '-';
  cri_append(buf, size, tmp + i);
}

void cri_append_hex(char *buf, size_t size, unsigned long v) {
  char tmp[24];
  int i = (int)sizeof tmp - 1;
  tmp[i] = 0;
  do {
    tmp[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v && i > 3);
  tmp[--i] = 'x';
  tmp[--i] = '0';
  cri_append(buf, size, tmp + i);
}

/* ---- The page ---- */

/* A new one-page memfd (memfd_create(2)) mapped shared, at `at` (MAP_FIXED, replacing what is
 * there) or anywhere. NULL on failure. MFD_NOEXEC_SEAL keeps the kernel from warning about an
 * executable memfd; kernels before 6.3 refuse the flag, hence the second try. */
static struct crbox_libcr_page *map_new_page(void *at) {
  int fd = (int)syscall(SYS_memfd_create, CRBOX_LIBCR_MEMFD_NAME, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, CRBOX_LIBCR_MEMFD_NAME, MFD_CLOEXEC);
  if (fd < 0) return NULL;
  if (ftruncate(fd, (off_t)page_len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return NULL;
  }
  void *p = mmap(at, page_len, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
  int e = errno;
  close(fd); /* the mapping keeps the memfd alive; the engine finds it through /proc/PID/map_files */
  if (p == MAP_FAILED) {
    errno = e;
    return NULL;
  }
  return p;
}

/* Magic last, so an engine that sees it sees the rest. The engine's mutex (protocol.h, "If the
 * engine dies") is made robust and process-shared here, before any engine can see the page; it
 * cannot fail with these attributes on Linux. */
static void fill_page(struct crbox_libcr_page *p, uint32_t omit, uint32_t callbacks) {
  (void)crbox_libcr_init_engine_lock(p);
  p->omit = omit;
  p->callbacks = callbacks;
  p->state = CRBOX_STATE_IDLE;
  p->result = CRBOX_RESULT_PENDING;
  p->version = CRBOX_LIBCR_VERSION;
  __atomic_store_n(&p->magic, CRBOX_LIBCR_MAGIC, __ATOMIC_RELEASE);
}

/* ---- The signal handler ---- */

static void on_signal(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  int saved = errno;
  __atomic_add_fetch(&cri_handlers_inflight, 1, __ATOMIC_SEQ_CST);
  if (si && si->si_code == SI_QUEUE && si->si_value.sival_int == CRI_RUN_COOKIE && si->si_pid == getpid()) {
    cri_run_signal_group();
  } else if (cri_page) {
    /* The engine's nudge: the request itself is in the page. libcr's thread may be the one
     * interrupted (its futex wait then returns EINTR) or another thread runs this. */
    cri_futex_wake(&cri_page->request_seq, 1);
  }
  __atomic_sub_fetch(&cri_handlers_inflight, 1, __ATOMIC_SEQ_CST);
  errno = saved;
}

static int install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  return sigaction(CR_SIGNUM, &sa, NULL);
}

/* ---- LIBCR_DISABLE_NSCD ---- */

/* glibc's nscd client maps the daemon's cache files read-only (/var/run/nscd or /var/db/nscd), and
 * a restart elsewhere cannot map them again; BLCR let users turn the client off with this variable.
 * __nss_disable_nscd is a GLIBC_PRIVATE symbol, so look it up instead of linking it; it may be
 * absent (a libc without nscd support), and then there is nothing to disable. It calls back once
 * per database it had registered; nothing is to be done with them. */
static void nscd_db_dropped(size_t idx, void *db) {
  (void)idx;
  (void)db;
}

static void maybe_disable_nscd(void) {
  const char *v = getenv("LIBCR_DISABLE_NSCD");
  if (!v || !v[0]) return;
  void (*disable)(void (*)(size_t, void *)) = (void (*)(void (*)(size_t, void *)))dlsym(RTLD_DEFAULT, "__nss_disable_nscd");
  if (disable) disable(nscd_db_dropped);
}

/* ---- Threads ---- */

static void thread_gone(void *arg) {
  struct cri_thread *t = arg;
  /* cr_inc_persist(): keep the data through other keys' destructors, as long as glibc calls
   * destructors again (PTHREAD_DESTRUCTOR_ITERATIONS passes). */
  if (t->persist > 0 && ++t->exits < PTHREAD_DESTRUCTOR_ITERATIONS) {
    pthread_setspecific(thread_key, t);
    return;
  }
  cri_round_thread_gone(t);
  cri_cs_thread_gone();
  cri_self = NULL;
  free(t);
}

static struct cri_thread *thread_init(int is_libcr) {
  if (cri_self) return cri_self;
  struct cri_thread *t = calloc(1, sizeof *t);
  if (!t) {
    errno = ENOMEM;
    return NULL;
  }
  t->id = __atomic_fetch_add(&next_client_id, 1, __ATOMIC_RELAXED);
  t->tid = cri_gettid();
  t->hold = CR_HOLD_DFLT;
  t->is_libcr = is_libcr;
  pthread_setspecific(thread_key, t);
  cri_self = t;
  return t;
}

void *cri_thread_entry(void *arg);
void *cri_thread_entry(void *arg) {
  pthread_setname_np(pthread_self(), "libcr");
  thread_init(1);
  /* Every signal but CR_SIGNUM stays blocked (inherited from cri_start_thread): the application's
   * signals go to its own threads; the engine's nudge may come here. */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, CR_SIGNUM);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  return cri_thread_main(arg);
}

static int start_thread_locked(void) {
  if (thread_running) return 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  int rc = pthread_create(&th, &attr, cri_thread_entry, NULL);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  thread_running = 1;
  return 0;
}

int cri_start_thread(void) {
  pthread_mutex_lock(&init_mutex);
  int rc = start_thread_locked();
  pthread_mutex_unlock(&init_mutex);
  return rc;
}

/* ---- fork(2) ---- */

extern cri_lock_t cri_registry_lock;
static CRI_TLS sigset_t fork_saved_mask;

static void before_fork(void) {
  /* The registry stays consistent in the child: nobody holds its lock across the fork. */
  cri_lock_nosig(&cri_registry_lock, &fork_saved_mask);
}

static void after_fork_parent(void) { cri_unlock_nosig(&cri_registry_lock, &fork_saved_mask); }

/* The child shares the parent's page until it gets its own: replace it at the same address, so
 * pointers to it stay valid. The child has one thread, the one that forked; libcr's thread is
 * started again if the parent had one. */
static void after_fork_child(void) {
  cri_registry_lock.word = 0;
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  init_mutex = fresh;
  pid_t tid = cri_gettid();
  if (cri_self) cri_self->tid = tid;
  if (cri_page) {
    uint32_t omit = __atomic_load_n(&cri_page->omit, __ATOMIC_RELAXED);
    struct crbox_libcr_page *p = map_new_page(cri_page);
    if (!p) {
      /* No memfd: an anonymous private page keeps the pointer valid; the engine will not see a
       * libcr page in this process and will treat it as a plain one. */
      p = mmap(cri_page, page_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (p == MAP_FAILED) abort();
      memset(p, 0, sizeof *p);
    } else {
      fill_page(p, omit, 0);
    }
  }
  cri_round_after_fork(tid);
  cri_cs_after_fork();
  cri_requests_after_fork();
  pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL);
  if (thread_running) {
    thread_running = 0;
    (void)start_thread_locked();
  }
}

/* ---- Set-up ---- */

int cri_global_init(int for_omit) {
  pthread_mutex_lock(&init_mutex);
  if (global_done) {
    pthread_mutex_unlock(&init_mutex);
    return 0;
  }
  long ps = sysconf(_SC_PAGESIZE);
  page_len = (size_t)(ps > 0 ? ps : 4096);
  while (page_len < sizeof(struct crbox_libcr_page)) page_len *= 2;
  int rc = pthread_key_create(&thread_key, thread_gone);
  if (rc != 0) {
    pthread_mutex_unlock(&init_mutex);
    errno = rc;
    return -1;
  }
  struct crbox_libcr_page *p = map_new_page(NULL);
  if (!p) {
    int e = errno;
    pthread_key_delete(thread_key);
    pthread_mutex_unlock(&init_mutex);
    errno = e;
    return -1;
  }
  fill_page(p, 0, 0);
  if (install_handler() != 0) {
    int e = errno;
    munmap(p, page_len);
    pthread_key_delete(thread_key);
    pthread_mutex_unlock(&init_mutex);
    errno = e;
    return -1;
  }
  __atomic_store_n(&cri_page, p, __ATOMIC_RELEASE);
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  if (!for_omit) maybe_disable_nscd();
  global_done = 1;
  pthread_mutex_unlock(&init_mutex);
  return 0;
}

/* For libcr_run.so's and libcr_omit.so's constructors: the page and the handler, no thread (an
 * unmodified program gets no extra thread; the first cr_init() starts it). */
CRI_EXPORT int cri_preload_init(int omit);
int cri_preload_init(int omit) {
  if (cri_global_init(omit) != 0) return -1;
  if (omit) __atomic_store_n(&cri_page->omit, 1, __ATOMIC_RELEASE);
  return 0;
}

CRI_EXPORT cr_client_id_t cr_init(void) {
  if (cri_global_init(0) != 0) return -1;
  struct cri_thread *t = thread_init(0);
  if (!t) return -1;
  if (cri_start_thread() != 0) return -1;
  return t->id;
}

/* ---- Persistence of the thread's data ---- */

CRI_EXPORT int cr_inc_persist(void) {
  struct cri_thread *t = cri_self;
  if (!t) {
    errno = CR_ENOINIT;
    return -1;
  }
  if (t->persist == INT_MAX) {
    errno = ERANGE;
    return -1;
  }
  return t->persist++;
}

CRI_EXPORT int cr_dec_persist(void) {
  struct cri_thread *t = cri_self;
  if (!t) {
    errno = CR_ENOINIT;
    return -1;
  }
  if (t->persist == 0) {
    errno = ERANGE;
    return -1;
  }
  return t->persist--;
}
