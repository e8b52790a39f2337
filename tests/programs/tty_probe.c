// A program that lives on a terminal (cr_run --sandbox --tty) and checks it from inside.
//
//   tty_probe          interactive: turns ECHO off on its terminal (canonical mode stays on),
//                      prints "pid=<pid>" and "ready", then "i = N" every 200 ms; each line it
//                      reads from stdin is answered:
//                        "check" -> "check ok rows=R cols=C winch=W sid=S" or "check BAD <what>",
//                                   after checking: fds 0-2 are terminals, ttyname(0) is a
//                                   /dev/pts/ name, its process group is the terminal's foreground
//                                   group (tcgetpgrp), /dev/tty opens (it has a controlling
//                                   terminal) and is the same terminal, ECHO is off and ICANON on,
//                                   fds 0-2 are not close-on-exec, and a child it forks and execs
//                                   ("tty_probe child") has them too: it prints "child ok" on its
//                                   stdout and exits 0 if its fds 0-2 are terminals and it is in
//                                   the foreground; W counts the SIGWINCHs it received;
//                        "quit"  -> exits with status 7;
//                        anything else -> "got <line>".
//   tty_probe eof      leaves the terminal as it is, prints "got <line>" for each line read and,
//                      at end of file, "eof" and exits with status 3.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t winch = 0;

static void on_winch(int sig) {
  (void)sig;
  winch++;
}

static void check(void) {
  const char* bad = NULL;
  char more[160] = "";
  struct termios t;
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  const char* name = ttyname(0);
  if (!isatty(0) || !isatty(1) || !isatty(2)) {
    bad = "stdio is not a terminal";
  } else if (!name || strncmp(name, "/dev/pts/", 9) != 0) {
    bad = "ttyname";
    snprintf(more, sizeof more, " (%s)", name ? name : strerror(errno));
  } else if (tcgetpgrp(0) != getpgrp()) {
    bad = "not in the foreground";
    snprintf(more, sizeof more, " (tcgetpgrp %d, getpgrp %d)", (int)tcgetpgrp(0), (int)getpgrp());
  } else if (tcgetattr(0, &t) != 0) {
    bad = "tcgetattr";
  } else if (t.c_lflag & ECHO) {
    bad = "ECHO is on";
  } else if (!(t.c_lflag & ICANON)) {
    bad = "ICANON is off";
  } else if (ioctl(0, TIOCGWINSZ, &ws) != 0) {
    bad = "TIOCGWINSZ";
  } else {
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    struct stat b;
    if (fd < 0) {
      bad = "/dev/tty does not open";
      snprintf(more, sizeof more, " (%s)", strerror(errno));
    } else {
      // /dev/tty is the controlling terminal: the same device as fd 0. Its own inode is /dev/tty's
      // (5:0); TIOCGDEV names the terminal behind it (ioctl_tty(2)), encoded as proc(5)'s tty_nr.
      unsigned d = 0;
      if (ioctl(fd, TIOCGDEV, &d) != 0 || fstat(0, &b) != 0 || ((d >> 8) & 0xfff) != major(b.st_rdev) ||
          ((d & 0xff) | ((d >> 12) & 0xfff00)) != minor(b.st_rdev))
        bad = "/dev/tty is another terminal";
      close(fd);
    }
  }
  for (int fd = 0; fd <= 2 && !bad; fd++)
    if (fcntl(fd, F_GETFD) != 0) bad = "fds 0-2 are close-on-exec";
  if (!bad) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
      execl("/proc/self/exe", "tty_probe", "child", (char*)NULL);
      _exit(127);
    }
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      bad = "the child it ran";
      snprintf(more, sizeof more, " (wait status 0x%x)", st);
    }
  }
  if (bad)
    printf("check BAD %s%s\n", bad, more);
  else
    printf("check ok rows=%d cols=%d winch=%d sid=%d\n", ws.ws_row, ws.ws_col, (int)winch, (int)getsid(0));
  fflush(stdout);
}

// Handles one complete line; returns nonzero to quit.
static int line(const char* s, int eof_mode) {
  if (!eof_mode && strcmp(s, "check") == 0) {
    check();
  } else if (!eof_mode && strcmp(s, "quit") == 0) {
    return 1;
  } else {
    printf("got %s\n", s);
    fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) {
    static const char msg[] = "child ok\n";
    int ok = isatty(0) && isatty(1) && isatty(2) && tcgetpgrp(0) == getpgrp();
    return ok && write(1, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1) ? 0 : 1;
  }
  int eof_mode = argc > 1 && strcmp(argv[1], "eof") == 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, NULL);
  if (!eof_mode) {
    struct termios t;
    if (tcgetattr(0, &t) != 0) {
      printf("tcgetattr: %s\n", strerror(errno));
      return 1;
    }
    t.c_lflag &= ~(tcflag_t)ECHO;
    if (tcsetattr(0, TCSANOW, &t) != 0) {
      printf("tcsetattr: %s\n", strerror(errno));
      return 1;
    }
  }
  printf("pid=%d\n", (int)getpid());
  printf("ready\n");
  char buf[4096];
  size_t have = 0;
  long i = 0;
  for (;;) {
    struct pollfd p = {0, POLLIN, 0};
    int n = poll(&p, 1, eof_mode ? -1 : 200);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      printf("i = %ld\n", i++);
      continue;
    }
    ssize_t k = read(0, buf + have, sizeof buf - 1 - have);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (have) {
        buf[have] = 0;
        line(buf, eof_mode);
      }
      printf("eof\n");
      return 3;
    }
    have += (size_t)k;
    char* nl;
    while ((nl = memchr(buf, '\n', have)) != NULL) {
      *nl = 0;
      if (line(buf, eof_mode)) return 7;
      size_t used = (size_t)(nl - buf) + 1;
      memmove(buf, nl + 1, have - used);
      have -= used;
    }
    if (have == sizeof buf - 1) have = 0;  // an overlong line is dropped
  }
}
