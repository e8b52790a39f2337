// inotify watches on a directory and a file, checkpointed and verified from inside.
//
//   ev_inotify DIR DIR2
//
// Watches DIR (IN_CREATE|IN_DELETE, wd 1), then DIR/file (IN_MODIFY, wd 3: watch 2 was added and
// removed, so the numbers have a gap), then DIR2 (made if missing; IN_CREATE, wd 4). Prints
// "pid=<pid>", "wds <d> <f> <d2>", "ready", then "tick <n>" every second. On SIGUSR1 it creates
// DIR/new, writes DIR/file and creates DIR2/new2, and checks the events come with the watches'
// descriptors (and nothing else: no stray IN_IGNORED); prints "inotify ok" or "inotify BAD <what>",
// then removes the new files.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static void drain(int in) {
  char buf[4096];
  while (read(in, buf, sizeof buf) > 0) {
  }
}

static void touch(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) return 2;
  const char* dir = argv[1];
  const char* dir2 = argv[2];
  char file[PATH_MAX], created[PATH_MAX], created2[PATH_MAX];
  snprintf(file, sizeof file, "%s/file", dir);
  snprintf(created, sizeof created, "%s/new", dir);
  snprintf(created2, sizeof created2, "%s/new2", dir2);
  mkdir(dir2, 0755);
  touch(file);
  int in = inotify_init1(IN_NONBLOCK);
  int wd_dir = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
  int gap = inotify_add_watch(in, file, IN_OPEN);
  inotify_rm_watch(in, gap);
  int wd_file = inotify_add_watch(in, file, IN_MODIFY);
  int wd_dir2 = inotify_add_watch(in, dir2, IN_CREATE);
  if (in < 0 || wd_dir < 0 || gap < 0 || wd_file < 0 || wd_dir2 < 0) {
    printf("inotify BAD setup %s\n", strerror(errno));
    return 1;
  }
  drain(in);
  handle_check_signal();
  printf("pid=%d\nwds %d %d %d\nready\n", getpid(), wd_dir, wd_file, wd_dir2);
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    touch(created);
    int fd = open(file, O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, "x", 1) != 1) bad = "writing the file";
    if (fd >= 0) close(fd);
    touch(created2);
    int got_create = 0, got_modify = 0, got_create2 = 0;
    for (int rounds = 0; rounds < 20 && !bad && !(got_create && got_modify && got_create2); rounds++) {
      struct pollfd p = {in, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
      ssize_t len = read(in, buf, sizeof buf);
      for (char* at = buf; len > 0 && at < buf + len;) {
        struct inotify_event* e = (struct inotify_event*)at;
        if (e->wd == wd_dir && (e->mask & IN_CREATE) && e->len && strcmp(e->name, "new") == 0) got_create++;
        else if (e->wd == wd_file && (e->mask & IN_MODIFY)) got_modify++;
        else if (e->wd == wd_dir2 && (e->mask & IN_CREATE) && e->len && strcmp(e->name, "new2") == 0) got_create2++;
        else bad = (e->mask & IN_IGNORED) ? "a stray IN_IGNORED event" : "an unexpected event";
        at += sizeof *e + e->len;
      }
    }
    if (!bad && !got_create) bad = "no IN_CREATE on the directory";
    if (!bad && !got_modify) bad = "no IN_MODIFY on the file";
    if (!bad && !got_create2) bad = "no IN_CREATE on the second directory";
    if (bad) printf("inotify BAD %s\n", bad);
    else printf("inotify ok\n");
    unlink(created);
    unlink(created2);
    struct timespec settle = {0, 50000000L};
    nanosleep(&settle, NULL);
    drain(in);
  }
}
