/* crbox's libcr: checkpoint (and restart) requests.
 *
 * A request runs crbox's tool as a child: `cr_checkpoint --pid|--tree|--pgid|--sid --fd N ... ID`
 * with CRBOX_REQUESTER set to the requester's pid (the engine then lets a process checkpoint
 * itself through its own child, and leaves that child out). The child is made with a raw clone(2)
 * (fork(2) without the application's pthread_atfork handlers, which have no business running
 * for it). The child's stdout and stderr go to a memfd: the request's messages
 * (cr_log_checkpoint). Nothing the requester holds meanwhile (a memfd; no pipe, no pidfd) keeps
 * it from being checkpointed itself.
 *
 * The child is an ordinary child: execve(2) makes its exit signal SIGCHLD whatever clone asked
 * (de_thread() in fs/exec.c), so the application gets a SIGCHLD when it ends, and an application
 * that reaps any child (waitpid(-1), SIGCHLD ignored) may take its status. libcr then finds the
 * child gone (ECHILD) and judges by its messages: cr_checkpoint says nothing on success and
 * "cr_checkpoint: ..." on failure.
 *
 * A process that checkpointed itself and is restarted from that image also finds its request's
 * child gone, but the page's `restarts` counter has moved: the request reports CR_ERESTARTED, as
 * BLCR's did.
 *
 * Inside a crbox sandbox such a child could not checkpoint the sandbox it lives in: there the
 * request goes to the launcher outside, through the socket the sandbox's init bound
 * (request_protocol.h). libcr then has no child: it holds a status page the launcher ends when
 * cr_checkpoint does, and the same memfd for the messages. Whether a server answers decides which
 * way a request goes; none does outside a sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "request_protocol.h"

extern char **environ;

enum { KIND_CHECKPOINT, KIND_RESTART };

struct req {
  struct req *next;
  int kind;
  pid_t child;     /* 0: no child (a deferred error) */
  int done;        /* the child was reaped, or vanished */
  int exited;      /* 1 exited with exit_code, 0 killed by term_sig */
  int exit_code;
  int term_sig;
  int err;         /* errno the reap reports before looking at the exit status (0: none) */
  int taken;       /* someone else reaped the child: judge by its messages */
  int log_fd;      /* memfd with the child's output, or -1 */
  uint32_t restarts0;
  uint32_t failures0;
  pid_t target;
  int scope;
  struct crbox_req_status *status; /* a request served from outside a sandbox; else NULL */
};

static pthread_mutex_t reqs_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct req *reqs;

static struct req *find(unsigned long handle) {
  struct req *q = NULL;
  pthread_mutex_lock(&reqs_mutex);
  for (struct req *r = reqs; r; r = r->next)
    if ((unsigned long)r == handle) q = r;
  pthread_mutex_unlock(&reqs_mutex);
  return q;
}

static void forget(struct req *q) {
  pthread_mutex_lock(&reqs_mutex);
  for (struct req **pp = &reqs; *pp; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
  pthread_mutex_unlock(&reqs_mutex);
  if (q->log_fd >= 0) close(q->log_fd);
  if (q->status) munmap(q->status, sizeof *q->status);
  free(q);
}

static struct req *new_req(int kind) {
  struct req *q = calloc(1, sizeof *q);
  if (!q) {
    errno = ENOMEM;
    return NULL;
  }
  q->kind = kind;
  q->log_fd = -1;
  q->restarts0 = cri_page ? __atomic_load_n(&cri_page->restarts, __ATOMIC_ACQUIRE) : 0;
  q->failures0 = cri_failure_count();
  pthread_mutex_lock(&reqs_mutex);
  q->next = reqs;
  reqs = q;
  pthread_mutex_unlock(&reqs_mutex);
  return q;
}

int cri_own_request(pid_t *target, int *scope);
int cri_own_request(pid_t *target, int *scope) {
  int found = -1;
  pthread_mutex_lock(&reqs_mutex);
  for (struct req *r = reqs; r; r = r->next)
    if (r->kind == KIND_CHECKPOINT && !r->done && (r->child > 0 || r->status)) {
      *target = r->target;
      *scope = r->scope;
      found = 0;
      break; /* the newest */
    }
  pthread_mutex_unlock(&reqs_mutex);
  return found;
}

void cri_requests_after_fork(void) {
  /* The parent's children are not this process's: their requests can only report ECHILD. */
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  reqs_mutex = fresh;
}

/* ---- The child's environment ---- */

static int is_libcr_object(const char *s, size_t n) {
  const char *base = s;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '/') base = s + i + 1;
  size_t bn = n - (size_t)(base - s);
  static const char *const names[] = {"libcr_run.so", "libcr_omit.so", "libcr.so"};
  for (size_t k = 0; k < 3; k++) {
    size_t l = strlen(names[k]);
    if (bn >= l && strncmp(base, names[k], l) == 0) return 1;
  }
  return 0;
}

/* LD_PRELOAD without libcr's objects (the tools need none of it), or NULL when nothing is left. */
static char *filtered_preload(const char *value) {
  size_t len = strlen(value);
  char *out = malloc(len + sizeof "LD_PRELOAD=");
  if (!out) return NULL;
  strcpy(out, "LD_PRELOAD=");
  size_t k = strlen(out), kept = 0;
  const char *p = value;
  while (*p) {
    size_t n = strcspn(p, ": ");
    if (n > 0 && !is_libcr_object(p, n)) {
      if (kept++) out[k++] = ':';
      memcpy(out + k, p, n);
      k += n;
    }
    p += n;
    if (*p) p++;
  }
  out[k] = 0;
  if (!kept) {
    free(out);
    return NULL;
  }
  return out;
}

static void free_env(char **env) {
  if (!env) return;
  for (char **e = env; *e; e++) free(*e);
  free(env);
}

static char **child_env(int with_requester) {
  size_t n = 0;
  for (char **e = environ; e && *e; e++) n++;
  char **out = calloc(n + 2, sizeof *out);
  if (!out) return NULL;
  size_t k = 0;
  for (char **e = environ; e && *e; e++) {
    char *copy;
    if (strncmp(*e, "CRBOX_REQUESTER=", 16) == 0) continue;
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0) {
      copy = filtered_preload(*e + 11);
      if (!copy) continue;
    } else {
      copy = strdup(*e);
    }
    if (!copy) {
      free_env(out);
      return NULL;
    }
    out[k++] = copy;
  }
  if (with_requester) {
    char buf[48] = "CRBOX_REQUESTER=";
    cri_append_int(buf, sizeof buf, getpid());
    out[k] = strdup(buf);
    if (!out[k]) {
      free_env(out);
      return NULL;
    }
    k++;
  }
  out[k] = NULL;
  return out;
}

/* ---- The child ---- */

static void put_decimal(char *buf, size_t size, long v) {
  buf[0] = 0;
  cri_append_int(buf, size, v);
}

/* Starts `path argv envp` as a child (fork(2) semantics). `bundle_fd` (if >= 0) is made
 * inheritable, moved above 2 if needed, and its number written into `fd_arg` (an argv string of
 * 16 bytes). With log_fd >= 0 the child's stdout and stderr go there. Returns the pid, or -1. */
static pid_t spawn(const char *path, char *const argv[], char *const envp[], int bundle_fd, char *fd_arg, int log_fd) {
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
  if (pid != 0) return pid;
  /* The child: a copy of one thread of a possibly multi-threaded process; only system calls
   * from here on (no malloc, no stdio). */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < 65; s++)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL); /* ignored signals would stay ignored */
  if (log_fd >= 0 && log_fd <= 2) log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
  if (bundle_fd >= 0) {
    int fd = bundle_fd <= 2 ? fcntl(bundle_fd, F_DUPFD, 3) : bundle_fd;
    if (fd < 0 || fcntl(fd, F_SETFD, 0) != 0) _exit(126);
    if (fd_arg) put_decimal(fd_arg, 16, fd);
  }
  if (log_fd >= 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
  }
  execve(path, argv, envp);
  char msg[PATH_MAX + 64] = "libcr: cannot run ";
  cri_append(msg, sizeof msg, path);
  cri_append(msg, sizeof msg, "\n");
  (void)!write(2, msg, strlen(msg));
  _exit(127);
}

/* ---- Waiting ---- */

static void record(struct req *q, const siginfo_t *si) {
  q->done = 1;
  if (si->si_code == CLD_EXITED) {
    q->exited = 1;
    q->exit_code = si->si_status;
  } else {
    q->exited = 0;
    q->term_sig = si->si_status;
  }
}

/* The child is not ours any more: either this is the restarted copy of a process the request
 * checkpointed (the page counts restarts), or the application reaped it. */
static void vanished(struct req *q) {
  q->done = 1;
  uint32_t now = cri_page ? __atomic_load_n(&cri_page->restarts, __ATOMIC_ACQUIRE) : 0;
  if (now != q->restarts0) q->err = CR_ERESTARTED;
  else q->taken = 1;
}

/* A request served from outside: ended when the launcher says so (request_protocol.h, step 4). A
 * copy restarted from the checkpoint it took holds a page nobody will end, but counts one more
 * restart. Waits in slices: a restart never wakes the futex. */
static int wait_remote(struct req *q, int nohang) {
  for (;;) {
    uint32_t st = __atomic_load_n(&q->status->state, __ATOMIC_ACQUIRE);
    if (st == CRBOX_REQ_ENDED) {
      q->done = 1;
      q->exited = q->status->exited;
      q->exit_code = q->exited ? q->status->code : 0;
      q->term_sig = q->exited ? 0 : q->status->code;
      return 1;
    }
    uint32_t now = cri_page ? __atomic_load_n(&cri_page->restarts, __ATOMIC_ACQUIRE) : 0;
    if (now != q->restarts0) {
      q->done = 1;
      q->err = CR_ERESTARTED;
      return 1;
    }
    if (nohang) return 0;
    cri_futex_wait(&q->status->state, st, 50, 1);
  }
}

/* 1 ended, 0 still running (only with nohang), -1 with errno. */
static int wait_child(struct req *q, int nohang) {
  if (!q->done && q->status) return wait_remote(q, nohang);
  if (q->done || q->child <= 0) return 1;
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, (id_t)q->child, &si, WEXITED | (nohang ? WNOHANG : 0));
    if (rc == 0) {
      if (si.si_pid == 0) return 0;
      record(q, &si);
      return 1;
    }
    if (errno == ECHILD) {
      vanished(q);
      return 1;
    }
    if (errno == EINTR && nohang) continue;
    return -1;
  }
}

static int do_wait(struct req *q, struct timeval *tv) {
  if (!tv) return wait_child(q, 0);
  if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000) {
    errno = EINVAL;
    return -1;
  }
  uint64_t deadline = cri_now_ms() + (uint64_t)tv->tv_sec * 1000u + (uint64_t)tv->tv_usec / 1000u;
  int nap = 1;
  for (;;) {
    int rc = wait_child(q, 1);
    uint64_t now = cri_now_ms();
    uint64_t left = now < deadline ? deadline - now : 0;
    /* Linux's select(2) writes back the time left; BLCR promises the same. */
    tv->tv_sec = (time_t)(left / 1000u);
    tv->tv_usec = (suseconds_t)((left % 1000u) * 1000u);
    if (rc != 0) return rc;
    if (left == 0) return 0;
    cri_sleep_ms((int)(left < (uint64_t)nap ? left : (uint64_t)nap));
    if (nap < 20) nap *= 2;
  }
}

/* The child's output so far, NUL-terminated (malloc'ed), or NULL when there is none. */
static char *read_log(struct req *q) {
  if (q->log_fd < 0) return NULL;
  struct stat st;
  if (fstat(q->log_fd, &st) != 0 || st.st_size <= 0) return NULL;
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) return NULL;
  ssize_t got = pread(q->log_fd, buf, n, 0);
  if (got <= 0) {
    free(buf);
    return NULL;
  }
  buf[got] = 0;
  return buf;
}

static int contains(const char *hay, const char *needle) { return hay && strcasestr(hay, needle) != NULL; }

/* cr_checkpoint's exit statuses (docs/cli/cr_checkpoint.md), in BLCR's errno terms; 0 for 1
 * ("anything else") and unknown ones. */
static int errno_of_exit_code(int code) {
  switch (code) {
    case 2: return EINVAL;       /* bad usage */
    case 3: return ESRCH;        /* no such process; nothing left to checkpoint */
    case 4: return EPERM;        /* permission denied, or a process crbox refuses */
    case 5: return CR_EPTRACED;  /* a target is traced by another process */
    case 6: return CR_EPTRACER;  /* a target traces another process */
    case 7: return CR_ETEMPFAIL; /* a callback's temporary failure, or --time ran out */
    case 8: return CR_EPERMFAIL; /* a callback's permanent failure */
    case 9: return ENOSPC;
    default: return 0;
  }
}

/* Only for exit status 1 or a status the application took: what the message says. */
static int errno_of_message(struct req *q) {
  char *log = read_log(q);
  int err = EIO;
  if (contains(log, "permanent")) err = CR_EPERMFAIL;
  else if (contains(log, "temporary") || contains(log, "cancel") || contains(log, "timed out") ||
           contains(log, "time limit") || contains(log, "--time") || contains(log, "gave up"))
    err = CR_ETEMPFAIL;
  else if (contains(log, "omit") || contains(log, "left out")) err = ESRCH;
  else if (contains(log, "traced by")) err = CR_EPTRACED;
  else if (contains(log, "tracing") || contains(log, "traces")) err = CR_EPTRACER;
  else if (contains(log, "no such process") || contains(log, "does not exist") || contains(log, "no process")) err = ESRCH;
  else if (contains(log, "permission denied") || contains(log, "not permitted")) err = EPERM;
  else if (contains(log, "no space")) err = ENOSPC;
  free(log);
  return err;
}

/* What a failed cr_checkpoint stands for, in BLCR's errno terms. A callback of this very process
 * that failed says it best (it may have given its own code); otherwise the exit status does;
 * only when that is 1 ("anything else") or unknown (the application reaped the child) is the
 * message searched (cr_log_checkpoint has it in full). */
static int failure_errno(struct req *q) {
  if (!q->exited && !q->taken) return EIO;
  if (!q->taken && q->exit_code == 2) return EINVAL;
  if (q->kind == KIND_CHECKPOINT && cri_failure_count() != q->failures0) return cri_last_failure_errno();
  if (!q->taken && q->kind == KIND_CHECKPOINT) {
    int err = errno_of_exit_code(q->exit_code);
    if (err) return err;
  }
  return errno_of_message(q);
}

/* ---- Requests from inside a sandbox (request_protocol.h) ---- */

/* A connection to the launcher's server, or -1 when none answers here (outside a sandbox). */
static int connect_server(void) {
  const char *path = getenv(CRBOX_LIBCR_SOCKET_ENV);
  if (!path || !path[0]) {
    /* /tmp is writable by everyone: outside a sandbox any user could bind this name and be sent
     * the destination of other users' checkpoints. The sandbox's init binds it as root, and the
     * sticky /tmp keeps others from replacing that; anything else is not the launcher. */
    path = CRBOX_LIBCR_SOCKET_PATH;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != 0) return -1;
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) return -1;
  strcpy(a.sun_path, path);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    close(s);
    return -1;
  }
  /* Its answer comes at once; never hang on a server that does not give it. */
  struct timeval tv = {10, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

/* Steps 1 to 3 over connection `s` (closed here): 0 accepted (q is then served from outside), or
 * -1 with errno (the server's refusal, or why the request could not be made). */
static int remote_request(struct req *q, int s, const cr_checkpoint_args_t *args, pid_t target) {
  int err = q->log_fd < 0 ? errno : 0, status_fd = -1, dir_fd = -1;
  if (err) goto out;
  struct crbox_req_msg m;
  memset(&m, 0, sizeof m);
  m.magic = CRBOX_REQ_MAGIC;
  m.version = CRBOX_REQ_VERSION;
  m.scope = args->cr_scope;
  m.target = target;
  m.signal = args->cr_signal;
  m.time_s = (int32_t)args->cr_timeout;
  m.flags = args->cr_flags & (CRBOX_REQ_PTRACED_ALLOW | CRBOX_REQ_PTRACED_SKIP | CRBOX_REQ_PTRACER_SKIP |
                              CRBOX_REQ_DUMP_EXEC | CRBOX_REQ_DUMP_PRIVATE | CRBOX_REQ_DUMP_SHARED);
  /* Not "crbox-libcr...": the engine and the tests look for the page by that name. */
  /* Sealed at its size (memfd_create(2), fcntl(2) F_ADD_SEALS): the server writes to it through
   * a mapping, and refuses a page that could shrink under it. */
  status_fd = (int)syscall(SYS_memfd_create, "crbox-request-status", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void *at = MAP_FAILED;
  if (status_fd < 0 || ftruncate(status_fd, 4096) != 0 ||
      fcntl(status_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
      (at = mmap(NULL, sizeof *q->status, PROT_READ | PROT_WRITE, MAP_SHARED, status_fd, 0)) == MAP_FAILED) {
    err = errno;
    goto out;
  }
  q->status = at;
  int dest = args->cr_fd;
  if (dest == CR_DEST_CWD) {
    /* context.TARGET in our working directory, as cr_checkpoint names it; the server writes it
     * there (atomically, as cr_checkpoint does) through this descriptor, creating and renaming
     * the file with our filesystem ids, so it is ours and only where we may write. */
    dir_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
      err = errno;
      goto out;
    }
    strcpy(m.dest_name, "context.");
    cri_append_int(m.dest_name, sizeof m.dest_name, target);
    dest = dir_fd;
  }
  int fds[3] = {status_fd, q->log_fd, dest};
  struct iovec iov = {&m, sizeof m};
  union {
    char buf[CMSG_SPACE(sizeof fds)];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  do n = sendmsg(s, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof m) {
    err = n < 0 ? errno : EIO;
    goto out;
  }
  struct crbox_req_ack ack;
  do n = recv(s, &ack, sizeof ack, 0);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof ack || ack.magic != CRBOX_REQ_MAGIC) err = EIO;
  else err = ack.err;
out:
  /* Hanging up lets the server start cr_checkpoint: nothing of the connection is left in us. */
  close(s);
  if (dir_fd >= 0) close(dir_fd);
  if (status_fd >= 0) close(status_fd);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* ---- Checkpoint requests ---- */

CRI_EXPORT int cri_init_checkpoint_args_t(cr_version_t version, cr_checkpoint_args_t *args) {
  if (version != CR_CHECKPOINT_ARGS_VERSION || !args) {
    errno = EINVAL;
    return -1;
  }
  args->cr_version = version;
  args->cr_scope = (cr_scope_t)-1; /* the caller must choose */
  args->cr_target = 0;
  args->cr_fd = -1; /* the caller must choose */
  args->cr_signal = 0;
  args->cr_timeout = 0;
  args->cr_flags = 0;
  return 0;
}

static pid_t parent_of(pid_t pid) {
  char path[64] = "/proc/", buf[512];
  cri_append_int(path, sizeof path, pid);
  cri_append(path, sizeof path, "/stat");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *rp = strrchr(buf, ')'); /* the command may contain anything but is closed by the last ')' */
  if (!rp) return 0;
  char state;
  int ppid;
  if (sscanf(rp + 1, " %c %d", &state, &ppid) != 2) return 0;
  return ppid;
}

static int self_in_scope(int scope, pid_t target) {
  pid_t me = getpid();
  switch (scope) {
    case CR_SCOPE_PROC:
      return target == me;
    case CR_SCOPE_PGRP:
      return target == getpgrp();
    case CR_SCOPE_SESS:
      return target == getsid(0);
    default:
      for (pid_t p = me; p > 0; p = parent_of(p))
        if (p == target) return 1;
      return 0;
  }
}

/* 0, or the errno that makes the request invalid. */
static int check_checkpoint_args(const cr_checkpoint_args_t *a, pid_t target) {
  if (a->cr_version != CR_CHECKPOINT_ARGS_VERSION) return EINVAL;
  if ((int)a->cr_scope < CR_SCOPE_PROC || (int)a->cr_scope > CR_SCOPE_TREE) return EINVAL;
  if (target < 0) return EINVAL;
  if (a->cr_signal < 0 || a->cr_signal > 64) return EINVAL;
  if ((a->cr_flags & CR_CHKPT_PTRACED_ALLOW) && (a->cr_flags & CR_CHKPT_PTRACED_SKIP)) return EINVAL;
  if (a->cr_fd != CR_DEST_CWD) {
    int fl = fcntl(a->cr_fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) return EBADF;
  }
  /* A default target of 0: the caller's process group or session is led by a process of an
   * ancestor pid namespace, which getpgrp() and getsid() report as 0 (getsid(2)). Nothing here
   * can name it, so it is "no such process" rather than a bad argument. */
  if (target == 0) return ESRCH;
  int rc = 0;
  switch (a->cr_scope) {
    case CR_SCOPE_PGRP:
      rc = kill(-target, 0);
      break;
    case CR_SCOPE_SESS:
      rc = getsid(target) < 0 && errno == ESRCH ? -1 : 0;
      if (rc) errno = ESRCH;
      break;
    default:
      rc = kill(target, 0);
  }
  if (rc != 0 && errno != EPERM) return ESRCH;
  if (rc != 0) return EPERM;
  if ((a->cr_flags & CR_CHKPT_PROHIBIT_SELF) && self_in_scope(a->cr_scope, target)) return EDEADLK;
  return 0;
}

static pid_t default_target(int scope) {
  switch (scope) {
    case CR_SCOPE_PGRP:
      return getpgrp();
    case CR_SCOPE_SESS:
      return getsid(0);
    default:
      return getpid();
  }
}

CRI_EXPORT int cr_request_checkpoint(cr_checkpoint_args_t *args, cr_checkpoint_handle_t *handle) {
  if (!args || !handle) {
    errno = EINVAL;
    return -1;
  }
  /* With the page in place, a restart of this process is known (`restarts`), even if the
   * program never called cr_init(). */
  (void)cri_global_init(0);
  pid_t target = args->cr_target ? args->cr_target : default_target(args->cr_scope);
  int bad = check_checkpoint_args(args, target);
  if (bad && !(args->cr_flags & CR_CHKPT_ASYNC_ERR)) {
    errno = bad;
    return -1;
  }
  struct req *q = new_req(KIND_CHECKPOINT);
  if (!q) return -1;
  q->target = target;
  q->scope = args->cr_scope;
  *handle = (cr_checkpoint_handle_t)q;
  if (bad) {
    q->done = 1;
    q->err = bad;
    return 0;
  }
  int server = connect_server();
  if (server >= 0) {
    q->log_fd = (int)syscall(SYS_memfd_create, "crbox-libcr-log", MFD_CLOEXEC);
    if (remote_request(q, server, args, target) == 0) return 0;
    int e = errno;
    if (args->cr_flags & CR_CHKPT_ASYNC_ERR) {
      q->done = 1;
      q->err = e;
      return 0;
    }
    forget(q);
    errno = e;
    return -1;
  }
  char tool[PATH_MAX];
  if (cri_find_tool("cr_checkpoint", "CRBOX_CR_CHECKPOINT", tool, sizeof tool) != 0) {
    forget(q);
    errno = ENOENT;
    return -1;
  }
  static const char *const scopes[] = {"--pid", "--pgid", "--sid", "--tree"};
  char fd_arg[16], time_arg[16], sig_arg[16], target_arg[16];
  const char *argv[24];
  int n = 0;
  argv[n++] = tool;
  argv[n++] = scopes[args->cr_scope];
  if (args->cr_fd != CR_DEST_CWD) {
    put_decimal(fd_arg, sizeof fd_arg, args->cr_fd); /* the child rewrites it if it moves the fd */
    argv[n++] = "--fd";
    argv[n++] = fd_arg;
  }
  if (args->cr_timeout) {
    put_decimal(time_arg, sizeof time_arg, (long)args->cr_timeout);
    argv[n++] = "--time";
    argv[n++] = time_arg;
  }
  if (args->cr_signal) {
    put_decimal(sig_arg, sizeof sig_arg, args->cr_signal);
    argv[n++] = "--signal";
    argv[n++] = sig_arg;
  }
  if (args->cr_flags & CR_CHKPT_PTRACED_ALLOW) argv[n++] = "--ptraced-allow";
  if (args->cr_flags & CR_CHKPT_PTRACED_SKIP) argv[n++] = "--ptraced-skip";
  if (args->cr_flags & CR_CHKPT_PTRACER_SKIP) argv[n++] = "--ptracer-skip";
  if (args->cr_flags & CR_CHKPT_DUMP_EXEC) argv[n++] = "--save-exe";
  if (args->cr_flags & CR_CHKPT_DUMP_PRIVATE) argv[n++] = "--save-private";
  if (args->cr_flags & CR_CHKPT_DUMP_SHARED) argv[n++] = "--save-shared";
  put_decimal(target_arg, sizeof target_arg, target);
  argv[n++] = target_arg;
  argv[n] = NULL;

  char **env = child_env(1);
  if (!env) {
    forget(q);
    errno = ENOMEM;
    return -1;
  }
  q->log_fd = (int)syscall(SYS_memfd_create, "crbox-libcr-log", MFD_CLOEXEC);
  pid_t pid = spawn(tool, (char *const *)argv, env, args->cr_fd == CR_DEST_CWD ? -1 : args->cr_fd, fd_arg, q->log_fd);
  int e = errno;
  free_env(env);
  if (pid < 0) {
    forget(q);
    errno = e;
    return -1;
  }
  q->child = pid;
  return 0;
}

CRI_EXPORT int cr_wait_checkpoint(cr_checkpoint_handle_t *handle, struct timeval *timeout) {
  struct req *q = handle ? find(*handle) : NULL;
  if (!q) {
    errno = EINVAL;
    return -1;
  }
  return do_wait(q, timeout);
}

static int log_copy(struct req *q, unsigned int len, char *msg) {
  char *log = read_log(q);
  if (!log || !log[0]) {
    free(log);
    if (len > 0 && msg) msg[0] = 0;
    return 0;
  }
  size_t need = strlen(log) + 1;
  if (len > 0 && msg) {
    size_t n = need <= len ? need - 1 : len - 1;
    memcpy(msg, log, n);
    msg[n] = 0;
  }
  free(log);
  return (int)need;
}

CRI_EXPORT int cr_log_checkpoint(cr_checkpoint_handle_t *handle, unsigned int len, char *msg) {
  struct req *q = handle ? find(*handle) : NULL;
  if (!q) {
    errno = EINVAL;
    return -1;
  }
  return log_copy(q, len, msg);
}

/* Whether the request's child succeeded: exit status 0, or, when the application took its status,
 * no "cr_checkpoint: ..." / "cr_restart: ..." line among its messages. */
static int succeeded(struct req *q) {
  if (!q->taken) return q->exited && q->exit_code == 0;
  char *log = read_log(q);
  const char *tool = q->kind == KIND_CHECKPOINT ? "cr_checkpoint:" : "cr_restart:";
  int failed = 0;
  for (const char *line = log; line && *line && !failed;) {
    if (strncmp(line, tool, strlen(tool)) == 0) failed = 1;
    const char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
  }
  free(log);
  return !failed;
}

static int reap(cr_checkpoint_handle_t *handle) {
  struct req *q = handle ? find(*handle) : NULL;
  if (!q) {
    errno = EINVAL;
    return -1;
  }
  int rc = wait_child(q, 1);
  if (rc == 0) {
    errno = EAGAIN;
    return -1;
  }
  if (rc < 0) return -1;
  int err = q->err ? q->err : succeeded(q) ? 0 : failure_errno(q);
  forget(q);
  *handle = (unsigned long)-1;
  if (err) {
    errno = err;
    return -1;
  }
  return 1;
}

CRI_EXPORT int cr_reap_checkpoint(cr_checkpoint_handle_t *handle) { return reap(handle); }

static int poll_msg(cr_checkpoint_handle_t *handle, struct timeval *timeout, char **msg_p) {
  if (msg_p) *msg_p = NULL;
  struct req *q = handle ? find(*handle) : NULL;
  if (!q) {
    errno = EINVAL;
    return CR_POLL_CHKPT_ERR_PRE;
  }
  int rc = do_wait(q, timeout);
  if (rc == 0) return 0;
  if (rc < 0) return CR_POLL_CHKPT_ERR_PRE;
  if (msg_p) *msg_p = read_log(q);
  return reap(handle) < 0 ? CR_POLL_CHKPT_ERR_POST : 1;
}

CRI_EXPORT int cr_poll_checkpoint_msg(cr_checkpoint_handle_t *handle, struct timeval *timeout, char **msg_p) {
  return poll_msg(handle, timeout, msg_p);
}

CRI_EXPORT int cr_poll_checkpoint(cr_checkpoint_handle_t *handle, struct timeval *timeout) {
  return poll_msg(handle, timeout, NULL);
}

/* ---- Restart requests ---- */

CRI_EXPORT int cri_init_restart_args_t(cr_version_t version, cr_restart_args_t *args) {
  if (version != CR_RESTART_ARGS_VERSION || !args) {
    errno = EINVAL;
    return -1;
  }
  args->cr_version = version;
  args->cr_fd = -1;
  args->cr_signal = 0;
  args->cr_flags = CR_RSTRT_RESTORE_PID;
  args->cr_relocate = NULL;
  return 0;
}

CRI_EXPORT int cr_request_restart(cr_restart_args_t *args, cr_restart_handle_t *handle) {
  if (!args || !handle || args->cr_version != CR_RESTART_ARGS_VERSION || args->cr_signal < 0 || args->cr_signal > 64 ||
      (args->cr_relocate && args->cr_relocate->count > CR_MAX_RSTRT_RELOC)) {
    errno = EINVAL;
    return -1;
  }
  int fl = fcntl(args->cr_fd, F_GETFL);
  int bad = (fl < 0 || (fl & O_ACCMODE) == O_WRONLY) ? EBADF : 0;
  if (bad && !(args->cr_flags & CR_RSTRT_ASYNC_ERR)) {
    errno = bad;
    return -1;
  }
  struct req *q = new_req(KIND_RESTART);
  if (!q) return -1;
  *handle = (cr_restart_handle_t)q;
  if (bad) {
    q->done = 1;
    q->err = bad;
    return 0;
  }
  char tool[PATH_MAX];
  if (cri_find_tool("cr_restart", "CRBOX_CR_RESTART", tool, sizeof tool) != 0) {
    forget(q);
    errno = ENOENT;
    return -1;
  }
  char fd_arg[16], sig_arg[16];
  char *reloc[CR_MAX_RSTRT_RELOC];
  int nreloc = 0;
  const char *argv[16 + 2 * CR_MAX_RSTRT_RELOC];
  int n = 0;
  argv[n++] = tool;
  argv[n++] = "--detach"; /* BLCR's request ends once the processes run again */
  put_decimal(fd_arg, sizeof fd_arg, args->cr_fd);
  argv[n++] = "--fd";
  argv[n++] = fd_arg;
  argv[n++] = (args->cr_flags & CR_RSTRT_RESTORE_PID) ? "--restore-pid" : "--no-restore-pid";
  if (args->cr_flags & CR_RSTRT_RESTORE_PGID) argv[n++] = "--restore-pgid";
  if (args->cr_flags & CR_RSTRT_RESTORE_SID) argv[n++] = "--restore-sid";
  if (args->cr_signal) {
    put_decimal(sig_arg, sizeof sig_arg, args->cr_signal);
    argv[n++] = "--signal";
    argv[n++] = sig_arg;
  }
  int ok = 1;
  for (unsigned i = 0; args->cr_relocate && i < args->cr_relocate->count; i++) {
    const struct cr_rstrt_relocate_pair *pr = &args->cr_relocate->path[i];
    if (!pr->oldpath || !pr->newpath) continue;
    size_t len = strlen(pr->oldpath) + strlen(pr->newpath) + 2;
    char *s = malloc(len);
    if (!s) {
      ok = 0;
      break;
    }
    snprintf(s, len, "%s=%s", pr->oldpath, pr->newpath);
    reloc[nreloc++] = s;
    argv[n++] = "--relocate";
    argv[n++] = s;
  }
  argv[n] = NULL;
  char **env = ok ? child_env(0) : NULL;
  pid_t pid = -1;
  int e = ENOMEM;
  if (env) {
    /* No log: cr_restart's stdio becomes the restored processes' (docs/cli/cr_restart.md). */
    pid = spawn(tool, (char *const *)argv, env, args->cr_fd, fd_arg, -1);
    e = errno;
  }
  free_env(env);
  for (int i = 0; i < nreloc; i++) free(reloc[i]);
  if (pid < 0) {
    forget(q);
    errno = e;
    return -1;
  }
  q->child = pid;
  return 0;
}

CRI_EXPORT int cr_wait_restart(cr_restart_handle_t *handle, struct timeval *timeout) {
  return cr_wait_checkpoint(handle, timeout);
}

CRI_EXPORT int cr_log_restart(cr_restart_handle_t *handle, unsigned int len, char *msg) {
  return cr_log_checkpoint(handle, len, msg);
}

CRI_EXPORT int cr_reap_restart(cr_restart_handle_t *handle) { return reap(handle); }

CRI_EXPORT int cr_poll_restart_msg(cr_restart_handle_t *handle, struct timeval *timeout, char **msg_p) {
  return poll_msg(handle, timeout, msg_p);
}

CRI_EXPORT int cr_poll_restart(cr_restart_handle_t *handle, struct timeval *timeout) {
  return poll_msg(handle, timeout, NULL);
}

/* ---- BLCR's deprecated one-call requests: checkpoint this process ---- */

/* Requests, then returns once the request is pending here (libcr's thread took it) or over, as
 * BLCR's did: a critical section entered right after the call then comes after the checkpoint.
 * The previous request is reaped first. */
static void legacy_request(int fd) {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static cr_checkpoint_handle_t prev;
  static int have_prev;
  pthread_mutex_lock(&m);
  if (have_prev) {
    int rc;
    do rc = cr_poll_checkpoint(&prev, NULL);
    while (rc == CR_POLL_CHKPT_ERR_PRE && errno == EINTR);
    have_prev = 0;
  }
  cr_checkpoint_args_t a;
  cri_init_checkpoint_args_t(CR_CHECKPOINT_ARGS_VERSION, &a);
  a.cr_scope = CR_SCOPE_PROC;
  a.cr_fd = fd;
  if (cr_request_checkpoint(&a, &prev) == 0) {
    have_prev = 1;
    for (;;) {
      if (__atomic_load_n(&cri_status_word, __ATOMIC_ACQUIRE) != CR_STATE_IDLE) break;
      struct timeval tv = {0, 5000};
      if (cr_wait_checkpoint(&prev, &tv) != 0) break;
    }
  }
  pthread_mutex_unlock(&m);
}

CRI_EXPORT void cr_request_fd(int fd) { legacy_request(fd); }

CRI_EXPORT void cr_request_file(const char *filename) {
  int fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  legacy_request(fd);
  close(fd);
}

CRI_EXPORT void cr_request(void) { legacy_request(CR_DEST_CWD); }
