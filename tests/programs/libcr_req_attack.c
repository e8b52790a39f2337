// Hostile and unusual requesters of the launcher's checkpoint server (runtime/request_server.cc),
// run inside a sandbox (after the review's scratch programs). Each mode prints what it saw, one
// line per step, and ends with "done".
//
//   libcr_req_attack unsealed FILE   raw requests with an unsealed status memfd (empty, then a page):
//                                    "ack err=E" each; then a real request into FILE:
//                                    "continued" or "failed errno=E"
//   libcr_req_attack flood N FILE    one connection, then N more left idle (non-blocking
//                                    connects: "flood K" says how many got through), then a
//                                    request without descriptors on the first: "ack err=E";
//                                    then the idle ones are closed and a real request into FILE
//   libcr_req_attack nobody FILE     a child stays root; this process becomes uid/gid 65534 and
//                                    asks for its checkpoint into FILE (its directory must let
//                                    65534 write): "failed errno=E"; then the child ends and it
//                                    asks again: "continued"
//   libcr_req_attack vanish FILE     asks for the checkpoint of a child into FILE, holding FILE
//                                    open (the server waits for it: settling); once answered, the
//                                    child is killed and reaped, then FILE closed: "failed errno=E"
//                                    and the messages
//   libcr_req_attack nohangup FILE   a raw, valid request whose requester keeps the connection
//                                    after the answer: the server drops it and must end the
//                                    status page: "ended exited=X code=C" and the messages
#include <errno.h>
#include <fcntl.h>
#include <libcr.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../runtime/libcr/request_protocol.h"

static int connect_server(int nonblock) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, CRBOX_LIBCR_SOCKET_PATH);
  if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// Sends `m` with the descriptors `fds` (n of them) and waits for the answer: its err, or -1.
static int raw_request(int s, struct crbox_req_msg* m, const int* fds, int n) {
  struct iovec iov = {m, sizeof *m};
  union {
    char b[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr al;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (n > 0) {
    mh.msg_control = u.b;
    mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  }
  if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof *m) return -1;
  struct pollfd p = {s, POLLIN, 0};
  if (poll(&p, 1, 30000) != 1) return -1;
  struct crbox_req_ack ack;
  if (recv(s, &ack, sizeof ack, 0) != (ssize_t)sizeof ack) return -1;
  return ack.err;
}

static struct crbox_req_msg message(pid_t target) {
  struct crbox_req_msg m;
  memset(&m, 0, sizeof m);
  m.magic = CRBOX_REQ_MAGIC;
  m.version = CRBOX_REQ_VERSION;
  m.scope = 0;
  m.target = target;
  return m;
}

// A real request through libcr: "continued" or "failed errno=E (TEXT)" and the messages.
static void libcr_request(const char* file, pid_t target, int hold_until_child_gone, pid_t child) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_checkpoint_args_t args;
  cr_checkpoint_handle_t h;
  cr_initialize_checkpoint_args_t(&args);
  args.cr_scope = CR_SCOPE_PROC;
  args.cr_target = target;
  args.cr_fd = fd;
  if (cr_request_checkpoint(&args, &h) != 0) {
    int err = errno;
    printf("failed errno=%d (%s)\n", err, cr_strerror(err));
    close(fd);
    return;
  }
  if (hold_until_child_gone) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  close(fd);
  char* msgs = NULL;
  int rc;
  do rc = cr_poll_checkpoint_msg(&h, NULL, &msgs);
  while (rc == CR_POLL_CHKPT_ERR_PRE && errno == EINTR);
  int err = errno;
  if (rc > 0) printf("continued\n");
  else printf("failed errno=%d (%s)\n%s", err, cr_strerror(err), msgs ? msgs : "");
  free(msgs);
}

static pid_t paused_child(void) {
  pid_t c = fork();
  if (c == 0) {
    for (;;) pause();
  }
  return c;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) return 2;
  const char* mode = argv[1];
  const char* file = argv[argc - 1];
  if (cr_init() < 0) {
    printf("failed errno=%d (cr_init)\n", errno);
    return 1;
  }
  printf("pid=%d\n", (int)getpid());
  if (!strcmp(mode, "unsealed")) {
    for (int size = 0; size <= 4096; size += 4096) {
      int s = connect_server(0);
      struct crbox_req_msg m = message(getpid());
      int fds[3] = {memfd_create("status", MFD_CLOEXEC), memfd_create("log", MFD_CLOEXEC),
                    memfd_create("dest", MFD_CLOEXEC)};
      if (ftruncate(fds[0], size) != 0) return 1;
      printf("ack err=%d\n", raw_request(s, &m, fds, 3));
      close(s);
      for (int i = 0; i < 3; i++) close(fds[i]);
    }
    libcr_request(file, 0, 0, 0);
  } else if (!strcmp(mode, "flood")) {
    int n = atoi(argv[2]);
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    int first = connect_server(0);
    int* idle = calloc((size_t)n, sizeof(int));
    int k = 0;
    for (int i = 0; i < n; i++) {
      int s = connect_server(1);
      if (s >= 0) idle[k++] = s;
    }
    printf("flood %d\n", k);
    struct crbox_req_msg m = message(getpid());
    printf("ack err=%d\n", raw_request(first, &m, NULL, 0));
    close(first);
    for (int i = 0; i < k; i++) close(idle[i]);
    free(idle);
    libcr_request(file, 0, 0, 0);
  } else if (!strcmp(mode, "nobody")) {
    // The child stays root until this process closes the pipe (a nobody may not signal it).
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t root_child = fork();
    if (root_child == 0) {
      close(p[1]);
      char c;
      while (read(p[0], &c, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    close(p[0]);
    if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      printf("cannot become nobody: %s\n", strerror(errno));
      return 1;
    }
    libcr_request(file, 0, 0, 0);
    close(p[1]);
    waitpid(root_child, NULL, 0);
    libcr_request(file, 0, 0, 0);
  } else if (!strcmp(mode, "vanish")) {
    pid_t child = paused_child();
    libcr_request(file, child, 1, child);
  } else if (!strcmp(mode, "nohangup")) {
    int s = connect_server(0);
    struct crbox_req_msg m = message(getpid());
    int st = memfd_create("status", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (ftruncate(st, 4096) != 0 || fcntl(st, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) return 1;
    struct crbox_req_status* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, st, 0);
    int log = memfd_create("log", MFD_CLOEXEC);
    int fds[3] = {st, log, open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    printf("ack err=%d\n", raw_request(s, &m, fds, 3));
    close(fds[2]);
    // Keeps `s` open: the server gives up on it after its client time (10 s).
    for (int i = 0; i < 600 && !__atomic_load_n(&page->state, __ATOMIC_ACQUIRE); i++) {
      struct timespec t = {0, 50 * 1000000L};
      nanosleep(&t, NULL);
    }
    char b[4096] = {0};
    if (pread(log, b, sizeof b - 1, 0) < 0) b[0] = 0;
    printf("ended state=%u exited=%d code=%d\n%s", page->state, page->exited, page->code, b);
    close(s);
  } else {
    return 2;
  }
  printf("done\n");
  return 0;
}
