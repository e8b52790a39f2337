// Sessions and process groups that must come back as they were.
//
//   tree_session [orphan]
//
// The root R tries setsid() (EPERM when it already leads a process group, as pid 2 of a
// sandbox does; that is fine). R forks A, which calls setsid() and so leads a new session. A
// forks B, which leads a new process group, and C, which joins B's group. With "orphan", A also
// forks D, which leads another group and forks E into it, then exits: E is orphaned
// (reparented to init or a subreaper) and its group has no leader any more.
// Every process sends (role, pid) to R through a startup pipe that is closed afterwards, so
// no pipe is left once R prints "started roles=<list>". Processes are named "sess-<role>".
// On SIGUSR1 R signals every other process; each prints its own line:
//   "ids role=<r> pid=<pid> ppid=<ppid> pgid=<pgid> sid=<sid> ok"   or   "... BAD <why>"
// ok: pid, ppid, pgid and sid are those it had at start, and the role's shape holds (A leads
// its session and group; B leads its group in A's session; C is in B's group and A's session;
// E is in D's group and A's session, and its parent is no longer D).
// R prints "pid=<pid>" and "setsid <ok|EPERM>" first.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct hello {
  char role;
  pid_t pid;
};

static volatile sig_atomic_t report = 0;

static void on_usr1(int sig) {
  (void)sig;
  report = 1;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int hello_fd = -1;

static void say_hello(char role) {
  struct hello h = {role, getpid()};
  if (write(hello_fd, &h, sizeof h) != (ssize_t)sizeof h) _exit(1);
  close(hello_fd);
  hello_fd = -1;
}

// Loops forever, answering SIGUSR1. `expect` checks the role's shape; `others` are signalled
// first (R only).
static void serve(char role, pid_t a, pid_t b, pid_t d, const pid_t* others, int nothers) {
  char name[16];
  snprintf(name, sizeof name, "sess-%c", role);
  prctl(PR_SET_NAME, name, 0, 0, 0);
  pid_t pid = getpid(), ppid = getppid(), pgid = getpgid(0), sid = getsid(0);
  for (;;) {
    sleep_ms(100);
    if (!report) continue;
    report = 0;
    for (int i = 0; i < nothers; i++) kill(others[i], SIGUSR1);
    pid_t np = getpid(), npp = getppid(), ng = getpgid(0), ns = getsid(0);
    char why[128] = "";
    if (np != pid || npp != ppid || ng != pgid || ns != sid)
      snprintf(why, sizeof why, "changed (was pid=%d ppid=%d pgid=%d sid=%d)", pid, ppid, pgid, sid);
    else if (role == 'A' && (ns != np || ng != np))
      snprintf(why, sizeof why, "A does not lead its session and group");
    else if (role == 'B' && (ng != np || ns != a))
      snprintf(why, sizeof why, "B does not lead its group in A's session %d", a);
    else if (role == 'C' && (ng != b || ns != a))
      snprintf(why, sizeof why, "C is not in B's group %d and A's session %d", b, a);
    else if (role == 'E' && (ng != d || ns != a || npp == d))
      snprintf(why, sizeof why, "E is not an orphan in D's group %d and A's session %d", d, a);
    printf("ids role=%c pid=%d ppid=%d pgid=%d sid=%d %s%s\n", role, np, npp, ng, ns, why[0] ? "BAD " : "ok",
           why);
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int orphan = argc > 1 && strcmp(argv[1], "orphan") == 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  printf("pid=%d\n", getpid());
  printf("setsid %s\n", setsid() >= 0 ? "ok" : errno == EPERM ? "EPERM" : strerror(errno));
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t a = fork();
  if (a == 0) {
    close(p[0]);
    hello_fd = p[1];
    if (setsid() < 0) {
      printf("ids role=A BAD setsid: %s\n", strerror(errno));
      _exit(1);
    }
    pid_t me = getpid();
    pid_t b = fork();
    if (b == 0) {
      setpgid(0, 0);
      say_hello('B');
      serve('B', me, getpid(), 0, NULL, 0);
    }
    setpgid(b, b);
    pid_t c = fork();
    if (c == 0) {
      setpgid(0, b);
      say_hello('C');
      serve('C', me, b, 0, NULL, 0);
    }
    setpgid(c, b);
    if (orphan) {
      pid_t d = fork();
      if (d == 0) {
        setpgid(0, 0);
        pid_t dd = getpid();
        pid_t e = fork();
        if (e == 0) {
          setpgid(0, dd);
          while (getppid() == dd) sleep_ms(5);
          say_hello('E');
          serve('E', me, 0, dd, NULL, 0);
        }
        setpgid(e, dd);
        _exit(0);
      }
      setpgid(d, d);
      waitpid(d, NULL, 0);
    }
    say_hello('A');
    serve('A', me, 0, 0, NULL, 0);
  }
  close(p[1]);
  pid_t others[8];
  char roles[16] = "R";
  int n = 0, want = orphan ? 4 : 3;
  while (n < want) {
    struct hello h;
    ssize_t k = read(p[0], &h, sizeof h);
    if (k < 0 && errno == EINTR) continue;
    if (k != (ssize_t)sizeof h) {
      printf("ids role=R BAD only %d of %d processes said hello\n", n, want);
      return 1;
    }
    others[n++] = h.pid;
    size_t l = strlen(roles);
    roles[l] = ',';
    roles[l + 1] = h.role;
    roles[l + 2] = 0;
  }
  close(p[0]);
  printf("started roles=%s\n", roles);
  serve('R', 0, 0, 0, others, n);
}
