// A named unix stream socket listening at PATH, with one accepted connection (data queued both
// ways) and one connection not yet accepted, at the checkpoint.
//
//   sock_unix_listen PATH
//
// The server binds PATH and listens; client 1 ("sock_unix-c1") connects and sends C1 bytes the
// server does not read yet; the server accepts it and sends S1 bytes client 1 does not read yet;
// client 2 ("sock_unix-c2") connects and waits, not accepted. Then "pid=<pid>", "ready", and
// "tick <n>" every 200 ms. On SIGUSR1 the server checks:
//   - the accepted socket's name is PATH and client 1's peer name is PATH;
//   - exactly C1 bytes are queued for it (then EAGAIN), and client 1 finds exactly S1 bytes;
//   - the old connection still carries data both ways;
//   - accept(2) gives client 2's connection, which works;
//   - a new client ("sock_unix-c3") connecting to PATH is accepted and works.
// and prints "unixlisten ok" or "unixlisten BAD <what>".
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"

#define C1 5000
#define S1 3000
static const char* path;

static unsigned char pat(int dir, size_t k) { return (unsigned char)(dir * 77 + k * 13 + (k >> 7)); }

static int recv_exact(int s, void* p, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd pf = {s, POLLIN, 0};
    int k = poll(&pf, 1, 10000);
    if (k < 0 && errno == EINTR) continue;  // a signal (SIGUSR1 may come late)
    if (k <= 0) return -1;
    ssize_t n = recv(s, (char*)p + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

static int send_pattern(int s, int dir, size_t len) {
  unsigned char buf[8192];
  for (size_t k = 0; k < len; k++) buf[k] = pat(dir, k);
  return send(s, buf, len, 0) == (ssize_t)len ? 0 : -1;
}

// Exactly `len` bytes of direction `dir` queued, then nothing (EAGAIN).
static const char* check_queued(int s, int dir, size_t len) {
  unsigned char buf[16384];
  size_t total = 0;
  for (;;) {
    ssize_t n = recv(s, buf + total, sizeof buf - total, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) return "queue read";
    total += (size_t)n;
  }
  if (total != len) return "queue length";
  for (size_t k = 0; k < len; k++)
    if (buf[k] != pat(dir, k)) return "queue content";
  return NULL;
}

static int named(int s, int peer) {
  struct sockaddr_un un;
  socklen_t len = sizeof un;
  memset(&un, 0, sizeof un);
  if ((peer ? getpeername(s, (struct sockaddr*)&un, &len) : getsockname(s, (struct sockaddr*)&un, &len)) != 0) return 0;
  return strcmp(un.sun_path, path) == 0;
}

static int dial(void) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strncpy(un.sun_path, path, sizeof un.sun_path - 1);
  if (connect(s, (struct sockaddr*)&un, sizeof un) != 0) return -1;
  return s;
}

// A client: echoes 64-byte records back with each byte + 1, until EOF. Client 1 first checks its
// queue and answers with its verdict.
static int ready_read = -1;
static void client(int s, int ready, int first) {
  prctl(PR_SET_NAME, first ? "sock_unix-c1" : "sock_unix-c2", 0, 0, 0);
  if (ready_read >= 0) close(ready_read);
  ready_read = -1;
  if (first && send_pattern(s, 1, C1) != 0) _exit(2);
  char b = 'r';
  if (ready >= 0 && write(ready, &b, 1) != 1) _exit(2);
  if (ready >= 0) close(ready);
  while (!check_asked) pause();
  char verdict[64] = {0};
  const char* bad = first ? check_queued(s, 0, S1) : NULL;
  if (!bad && first && !named(s, 1)) bad = "client peer name";
  snprintf(verdict, sizeof verdict, "%s", bad ? bad : "ok");
  if (send(s, verdict, sizeof verdict, 0) != sizeof verdict) _exit(2);
  unsigned char rec[64];
  while (recv_exact(s, rec, sizeof rec) == 0) {
    for (int i = 0; i < 64; i++) rec[i]++;
    if (send(s, rec, sizeof rec, 0) != sizeof rec) _exit(2);
  }
  _exit(0);
}

// Reads the client's verdict, then 20 echoed records.
static const char* talk(int s, const char* who) {
  static char msg[100];
  char verdict[64];
  if (recv_exact(s, verdict, sizeof verdict) != 0) {
    snprintf(msg, sizeof msg, "no verdict from %s", who);
    return msg;
  }
  if (strcmp(verdict, "ok") != 0) {
    snprintf(msg, sizeof msg, "%s: %s", who, verdict);
    return msg;
  }
  for (int r = 0; r < 20; r++) {
    unsigned char rec[64], back[64];
    for (int i = 0; i < 64; i++) rec[i] = (unsigned char)(r * 5 + i);
    if (send(s, rec, sizeof rec, 0) != sizeof rec) return "send";
    if (recv_exact(s, back, sizeof back) != 0) return "no echo";
    for (int i = 0; i < 64; i++)
      if (back[i] != (unsigned char)(rec[i] + 1)) return "bad echo";
  }
  return NULL;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  path = argv[1];
  handle_check_signal();
  signal(SIGPIPE, SIG_IGN);  // a peer gone shows as an error, reported
  unlink(path);
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strncpy(un.sun_path, path, sizeof un.sun_path - 1);
  int rp[2];
  if (pipe(rp) != 0) return 1;
  ready_read = rp[0];
  if (l < 0 || bind(l, (struct sockaddr*)&un, sizeof un) != 0 || listen(l, 8) != 0) {
    printf("unixlisten BAD setup %s\n", strerror(errno));
    return 1;
  }
  pid_t kids[3];
  kids[0] = fork();
  if (kids[0] == 0) {
    close(l);
    int s = dial();
    if (s < 0) _exit(2);
    client(s, rp[1], 1);
  }
  int a = accept(l, NULL, NULL);
  if (a < 0 || send_pattern(a, 0, S1) != 0) {
    printf("unixlisten BAD accept %s\n", strerror(errno));
    return 1;
  }
  kids[1] = fork();
  if (kids[1] == 0) {
    close(l);
    close(a);
    int s = dial();
    if (s < 0) _exit(2);
    client(s, rp[1], 0);
  }
  close(rp[1]);
  // A byte from each client, then end of file: they have closed their ends of the pipe.
  char b[3];
  if (read(rp[0], b, 1) != 1 || read(rp[0], b + 1, 1) != 1 || read(rp[0], b + 2, 1) != 0) {
    printf("unixlisten BAD clients\n");
    return 1;
  }
  close(rp[0]);
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    if (!named(a, 0)) bad = "accepted socket name";
    if (!bad) bad = check_queued(a, 1, C1);
    kill(kids[0], SIGUSR1);
    if (!bad) bad = talk(a, "client 1");
    int b2 = -1;
    if (!bad) {
      b2 = accept(l, NULL, NULL);
      if (b2 < 0) bad = "accepting the pending connection";
    }
    kill(kids[1], SIGUSR1);
    if (!bad) bad = talk(b2, "client 2");
    if (!bad) {
      kids[2] = fork();
      if (kids[2] == 0) {
        prctl(PR_SET_NAME, "sock_unix-c3", 0, 0, 0);
        close(l);
        int s = dial();
        if (s < 0) _exit(3);
        client(s, -1, 0);
      }
      int c = accept(l, NULL, NULL);
      if (c < 0) bad = "accepting a new connection";
      kill(kids[2], SIGUSR1);
      if (!bad) bad = talk(c, "client 3");
      if (c >= 0) close(c);
    }
    close(a);
    if (b2 >= 0) close(b2);
    for (int i = 0; i < 3; i++) {
      int st = 0;
      if (i < 2 || !bad) waitpid(kids[i], &st, 0);
      if (!bad && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) bad = "a client failed";
    }
    if (bad) printf("unixlisten BAD %s\n", bad);
    else printf("unixlisten ok\n");
    return 0;
  }
}
