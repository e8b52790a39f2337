// POSIX message queues a checkpoint must bring back: a named queue holding messages of several
// priorities, held through two descriptors (read-write and write-only), and a second queue that
// was unlinked while open (NAME-gone), holding one message.
//
//   ipc_mqueue NAME [notify]     (NAME starts with '/')
//
// With "notify", it also registers for notification on NAME (mq_notify(3), SIGEV_NONE), which
// crbox refuses to checkpoint (emptying and refilling the queue would fire it).
//
// Prints "pid=<pid>", "ready", then "tick <n>" every second. On SIGUSR1 it receives everything
// from NAME: the messages must come in priority order (highest first, oldest first within one
// priority), each exactly once; the write-only descriptor must still send; the unlinked queue
// must still hold its message and still have no name. Prints "mqueue ok" or "mqueue BAD <what>".
// The messages are consumed, so it checks once.
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static const struct {
  const char* text;
  unsigned prio;
} kSent[] = {{"low1", 1}, {"high1", 9}, {"mid1", 5}, {"low2", 1}, {"high2", 9}, {"zero", 0}};
static const char* kOrder[] = {"high1", "high2", "mid1", "low1", "low2", "zero"};
static const unsigned kPrio[] = {9, 9, 5, 1, 1, 0};

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2 || argv[1][0] != '/') {
    printf("mqueue BAD usage\n");
    return 2;
  }
  const char* name = argv[1];
  char gone_name[256];
  snprintf(gone_name, sizeof gone_name, "%s-gone", name);
  struct mq_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.mq_maxmsg = 8;
  attr.mq_msgsize = 64;
  mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &attr);
  mqd_t w = mq_open(name, O_WRONLY);
  mqd_t g = mq_open(gone_name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &attr);
  if (q < 0 || w < 0 || g < 0) {
    printf("mqueue BAD setup %s\n", strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < sizeof kSent / sizeof kSent[0]; i++)
    if (mq_send(i % 2 ? w : q, kSent[i].text, strlen(kSent[i].text), kSent[i].prio) != 0) {
      printf("mqueue BAD send %s\n", strerror(errno));
      return 1;
    }
  if (mq_send(g, "hidden", 6, 3) != 0 || mq_unlink(gone_name) != 0) {
    printf("mqueue BAD gone %s\n", strerror(errno));
    return 1;
  }
  if (argc > 2 && strcmp(argv[2], "notify") == 0) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    if (mq_notify(q, &sev) != 0) {
      printf("mqueue BAD mq_notify %s\n", strerror(errno));
      return 1;
    }
  }
  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    char why[200] = "";
    char buf[64];
    unsigned prio;
    for (size_t i = 0; i < sizeof kOrder / sizeof kOrder[0] && !why[0]; i++) {
      ssize_t len = mq_receive(q, buf, sizeof buf, &prio);
      if (len != (ssize_t)strlen(kOrder[i]) || memcmp(buf, kOrder[i], (size_t)len) != 0 || prio != kPrio[i])
        snprintf(why, sizeof why, "message %zu: len %zd prio %u (%s)", i, len, prio, len < 0 ? strerror(errno) : "");
    }
    if (!why[0] && (mq_receive(q, buf, sizeof buf, &prio) != -1 || errno != EAGAIN)) snprintf(why, sizeof why, "a message too many");
    if (!why[0] && (mq_send(w, "again", 5, 2) != 0 || mq_receive(q, buf, sizeof buf, &prio) != 5 || prio != 2))
      snprintf(why, sizeof why, "the write-only descriptor");
    if (!why[0] && (mq_receive(g, buf, sizeof buf, &prio) != 6 || memcmp(buf, "hidden", 6) != 0 || prio != 3))
      snprintf(why, sizeof why, "the unlinked queue's message");
    if (!why[0]) {
      mqd_t again = mq_open(gone_name, O_RDONLY);
      if (again >= 0 || errno != ENOENT) snprintf(why, sizeof why, "the unlinked queue has a name again");
    }
    if (why[0]) printf("mqueue BAD %s\n", why);
    else printf("mqueue ok\n");
  }
}
