// Three connections waiting in a unix listener's queue at the checkpoint, made in the opposite
// order of their descriptors.
//
//   sock_unix_order PATH
//
// A stream socket listens at PATH; three client sockets x < y < z (descriptor numbers), each
// bound to an abstract name of its own, connect in the order z, x, y and are not accepted. Prints
// "pid=<pid>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 it accepts three times: the
// connections must come in the order z, x, y (told by the name accept(2) reports), each carries
// a byte its client sends, and no fourth waits. Prints "unixorder ok" or "unixorder BAD <what>".
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static socklen_t abstract_name(struct sockaddr_un* un, char tag) {
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  int n = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "crbox-order-%d-%c", getpid(), tag);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  handle_check_signal();
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strncpy(un.sun_path, argv[1], sizeof un.sun_path - 1);
  unlink(un.sun_path);
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (bind(l, (struct sockaddr*)&un, sizeof un) != 0 || listen(l, 8) != 0) {
    printf("unixorder BAD listen %s\n", strerror(errno));
    return 1;
  }
  const char tags[3] = {'x', 'y', 'z'};
  int c[3];
  for (int i = 0; i < 3; i++) {
    c[i] = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un me;
    socklen_t len = abstract_name(&me, tags[i]);
    if (bind(c[i], (struct sockaddr*)&me, len) != 0) {
      printf("unixorder BAD bind %s\n", strerror(errno));
      return 1;
    }
  }
  const int order[3] = {2, 0, 1};  // z, x, y
  for (int k = 0; k < 3; k++)
    if (connect(c[order[k]], (struct sockaddr*)&un, sizeof un) != 0) {
      printf("unixorder BAD connect %s\n", strerror(errno));
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
    for (int k = 0; k < 3 && !bad; k++) {
      int i = order[k];
      struct sockaddr_un from;
      socklen_t flen = sizeof from;
      int a = accept(l, (struct sockaddr*)&from, &flen);
      if (a < 0) {
        bad = "accept failed";
        break;
      }
      struct sockaddr_un want;
      socklen_t wlen = abstract_name(&want, tags[i]);
      if (flen != wlen || memcmp(&from, &want, wlen) != 0) {
        static char m[64];
        snprintf(m, sizeof m, "connection %d is not %c's", k, tags[i]);
        bad = m;
        break;
      }
      char b = tags[i], got = 0;
      if (send(c[i], &b, 1, 0) != 1 || recv(a, &got, 1, 0) != 1 || got != b) bad = "a byte through a connection";
      close(a);
    }
    if (!bad) {
      struct pollfd pf = {l, POLLIN, 0};
      if (poll(&pf, 1, 0) != 0) bad = "a fourth connection waits";
    }
    if (bad) printf("unixorder BAD %s\n", bad);
    else printf("unixorder ok\n");
    return 0;
  }
}
