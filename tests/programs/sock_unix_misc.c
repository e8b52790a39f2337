// Unix sockets in less common states at the checkpoint, all in one process:
//   - a stream socket listening on an abstract name;
//   - one end of a stream socketpair whose other end was closed, with data left to read;
//   - a datagram socket bound to PATH with messages queued, and a datagram socket connected to
//     it (one way: the bound one is not connected back);
//   - a stream socketpair end with SO_PEEK_OFF set to 3, non-blocking, with SO_RCVBUF set;
//   - a stream socket listening on PATH.gone, whose file was removed after bind(2);
//
//   sock_unix_misc PATH
//
// Prints "pid=<pid>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 it checks each and
// prints "unixmisc ok" or "unixmisc BAD <what>".
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static const char abstract_name[] = "\0crbox-sock-misc";

static socklen_t address(struct sockaddr_un* un, const char* path, int is_abstract) {
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  if (is_abstract) {
    memcpy(un->sun_path, abstract_name, sizeof abstract_name - 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof abstract_name - 1);
  }
  strncpy(un->sun_path, path, sizeof un->sun_path - 1);
  return sizeof *un;
}

static int get(int s, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(s, SOL_SOCKET, name, &v, &len);
  return v;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char* path = argv[1];
  handle_check_signal();
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_un un;
  socklen_t len;
  // Abstract listener.
  int al = socket(AF_UNIX, SOCK_STREAM, 0);
  len = address(&un, NULL, 1);
  if (bind(al, (struct sockaddr*)&un, len) != 0 || listen(al, 3) != 0) {
    printf("unixmisc BAD abstract %s\n", strerror(errno));
    return 1;
  }
  // A pair whose other end is closed, with "leftover" to read.
  int pv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, pv);
  send(pv[1], "leftover", 8, 0);
  close(pv[1]);
  // A bound datagram socket, and one connected to it; two messages queued.
  unlink(path);
  int ds = socket(AF_UNIX, SOCK_DGRAM, 0), dc = socket(AF_UNIX, SOCK_DGRAM, 0);
  len = address(&un, path, 0);
  if (bind(ds, (struct sockaddr*)&un, len) != 0 || connect(dc, (struct sockaddr*)&un, len) != 0 || send(dc, "one", 3, 0) != 3 ||
      send(dc, "two!", 4, 0) != 4) {
    printf("unixmisc BAD dgram %s\n", strerror(errno));
    return 1;
  }
  // Peek offset, non-blocking, receive buffer.
  int qv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, qv);
  send(qv[1], "0123456789", 10, 0);
  int three = 3, rcv = 100000;
  setsockopt(qv[0], SOL_SOCKET, SO_PEEK_OFF, &three, sizeof three);
  setsockopt(qv[0], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  fcntl(qv[0], F_SETFL, O_NONBLOCK);
  int rcv_before = get(qv[0], SO_RCVBUF);
  // A listener whose file is gone.
  char gone[200];
  snprintf(gone, sizeof gone, "%s.gone", path);
  unlink(gone);
  int gl = socket(AF_UNIX, SOCK_STREAM, 0);
  len = address(&un, gone, 0);
  if (bind(gl, (struct sockaddr*)&un, len) != 0 || listen(gl, 1) != 0 || unlink(gone) != 0) {
    printf("unixmisc BAD unlinked %s\n", strerror(errno));
    return 1;
  }
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    char buf[64];
    // Abstract listener: still listening under its name; a connection to it is accepted.
    struct sockaddr_un got;
    socklen_t glen = sizeof got;
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    len = address(&un, NULL, 1);
    if (getsockname(al, (struct sockaddr*)&got, &glen) != 0 || glen != len || memcmp(&got, &un, len) != 0) bad = "abstract name";
    else if (connect(c, (struct sockaddr*)&un, len) != 0) bad = "connecting to the abstract name";
    else if (accept(al, NULL, NULL) < 0) bad = "accepting on the abstract name";
    // The orphaned end: its data, then end of file.
    else if (recv(pv[0], buf, sizeof buf, 0) != 8 || memcmp(buf, "leftover", 8) != 0) bad = "leftover data";
    else if (recv(pv[0], buf, sizeof buf, 0) != 0) bad = "no end of file";
    // The datagram server: its two messages, then a new one from the connected client.
    else if (recv(ds, buf, sizeof buf, MSG_DONTWAIT) != 3 || memcmp(buf, "one", 3) != 0) bad = "first datagram";
    else if (recv(ds, buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "two!", 4) != 0) bad = "second datagram";
    else if (recv(ds, buf, sizeof buf, MSG_DONTWAIT) != -1 || errno != EAGAIN) bad = "extra datagram";
    else if (send(dc, "three", 5, 0) != 5 || recv(ds, buf, sizeof buf, 0) != 5 || memcmp(buf, "three", 5) != 0) bad = "new datagram";
    else {
      glen = sizeof got;
      memset(&got, 0, sizeof got);
      if (getpeername(dc, (struct sockaddr*)&got, &glen) != 0 || strcmp(got.sun_path, path) != 0) bad = "client's peer name";
    }
    // The peek offset goes on from 3; the flags and buffer are as set.
    if (!bad && get(qv[0], SO_PEEK_OFF) != 3) bad = "SO_PEEK_OFF";
    else if (!bad && (recv(qv[0], buf, 2, MSG_PEEK) != 2 || memcmp(buf, "34", 2) != 0)) bad = "peek from the offset";
    else if (!bad && !(fcntl(qv[0], F_GETFL) & O_NONBLOCK)) bad = "O_NONBLOCK";
    else if (!bad && get(qv[0], SO_RCVBUF) != rcv_before) bad = "SO_RCVBUF";
    else if (!bad && (recv(qv[0], buf, sizeof buf, 0) != 10 || memcmp(buf, "0123456789", 10) != 0)) bad = "pair data";
    struct stat st;
    glen = sizeof got;
    memset(&got, 0, sizeof got);
    if (!bad && (getsockname(gl, (struct sockaddr*)&got, &glen) != 0 || strcmp(got.sun_path, gone) != 0)) bad = "unlinked name";
    else if (!bad && (stat(gone, &st) == 0 || errno != ENOENT)) bad = "unlinked file is back";
    else if (!bad && get(gl, SO_ACCEPTCONN) != 1) bad = "unlinked listener";
    if (bad) printf("unixmisc BAD %s\n", bad);
    else printf("unixmisc ok\n");
    return 0;
  }
}
