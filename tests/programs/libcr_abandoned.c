// A libcr program for tests that kill the checkpointer under it: what a checkpoint that dies
// leaves behind must not block the program (runtime/libcr/protocol.h, "If the engine dies").
//
//   libcr_abandoned [slow | forkslow] [FILE]
//
// Registers a thread-context callback "T" and a signal-context callback "S" of the main thread.
// Each prints "NAME before" just before its cr_checkpoint(CR_CHECKPOINT_READY) and
// "NAME rc=R" after it (0 continue, > 0 restart, -2354 CR_ETEMPFAIL: cancelled). With "slow",
// T waits after "T before" until a SIGPWR comes (so the checkpoint waits in RUNNING, before
// anything is frozen, and S has not started). With "forkslow", once set up it forks: the child
// prints "child ready pid=P", is "slow", and prefixes all its lines with "child " (the parent is
// not slow): a checkpoint of both (--tree) then has the parent at READY while it waits for the
// child.
// A worker thread (cr_init'ed, no callbacks) serves one signal. Signals:
//   SIGUSR2   the main thread enters and leaves a critical section, then prints
//             "cs ok status=N" (cr_status()) and "alive"
//   SIGHUP    toggles a critical section held by the main thread: "held", then "pending" once
//             cr_status() says a checkpoint waits for it, and "released" at the next SIGHUP
//   SIGWINCH  the worker thread enters and leaves a critical section and prints "worker cs ok"
//   SIGUSR1   (with FILE) a checkpoint of itself into FILE (cr_request_checkpoint, CR_SCOPE_PROC),
//             polled to its end: "request ok", "request restarted" (CR_ERESTARTED) or
//             "request failed errno=E"
// Prints "ready pid=P" once set up. Lines are written with write(2): S runs in a signal handler.
#include <errno.h>
#include <fcntl.h>
#include <libcr.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* prefix = "";

static void say(const char* fmt, long n) {
  char buf[128];
  int len = snprintf(buf, sizeof buf, "%s", prefix);
  len += snprintf(buf + len, sizeof buf - (size_t)len, fmt, n);
  if (len > 0) (void)!write(1, buf, (size_t)len);
}

static int slow;
static volatile sig_atomic_t go;

static int callback(void* arg) {
  const char* name = arg;
  say(name[0] == 'T' ? "T before\n" : "S before\n", 0);
  if (slow && name[0] == 'T') {
    while (!go) {
      struct timespec ts = {0, 2 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    go = 0;
  }
  int rc = cr_checkpoint(CR_CHECKPOINT_READY);
  say(name[0] == 'T' ? "T rc=%ld\n" : "S rc=%ld\n", rc);
  return 0;
}

/* Touched memory, so the image is well over a pipe's 64 KiB (a test blocks the writer there). */
static char ballast[2 << 20];

static volatile sig_atomic_t usr1, usr2, hup;
static sem_t worker_go;
static void on_signal(int sig) {
  if (sig == SIGUSR1) usr1 = 1;
  if (sig == SIGUSR2) usr2 = 1;
  if (sig == SIGHUP) hup = 1;
  if (sig == SIGWINCH) sem_post(&worker_go);
  if (sig == SIGPWR) go = 1;
}

static void* worker(void* arg) {
  (void)arg;
  cr_client_id_t id = cr_init();
  for (;;) {
    while (sem_wait(&worker_go) != 0) {
    }
    cr_enter_cs(id);
    say("worker cs ok\n", 0);
    cr_leave_cs(id);
  }
  return NULL;
}

static void request_self(const char* file) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    say("request failed errno=%ld\n", errno);
    return;
  }
  cr_checkpoint_args_t args;
  cr_checkpoint_handle_t h;
  cr_initialize_checkpoint_args_t(&args);
  args.cr_scope = CR_SCOPE_PROC;
  args.cr_fd = fd;
  int rc = cr_request_checkpoint(&args, &h);
  int err = errno;
  close(fd);
  if (rc != 0) {
    say("request failed errno=%ld\n", err);
    return;
  }
  do rc = cr_poll_checkpoint(&h, NULL);
  while (rc == CR_POLL_CHKPT_ERR_PRE && errno == EINTR);
  err = errno;
  if (rc > 0) say("request ok\n", 0);
  else if (rc == CR_POLL_CHKPT_ERR_POST && err == CR_ERESTARTED) say("request restarted\n", 0);
  else say("request failed errno=%ld\n", err);
}

int main(int argc, char** argv) {
  const char* file = NULL;
  int forkslow = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "slow")) slow = 1;
    else if (!strcmp(argv[i], "forkslow")) forkslow = 1;
    else file = argv[i];
  }
  cr_client_id_t id = cr_init();
  if (id < 0 || cr_register_callback(callback, "T", CR_THREAD_CONTEXT) < 0 ||
      cr_register_callback(callback, "S", CR_SIGNAL_CONTEXT) < 0) {
    say("libcr failed errno=%ld\n", errno);
    return 1;
  }
  memset(ballast, 'b', sizeof ballast);
  sem_init(&worker_go, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  int sigs[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGPWR};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  say("ready pid=%ld\n", (long)getpid());
  if (forkslow && fork() == 0) {
    prefix = "child ";
    slow = 1;
    say("ready pid=%ld\n", (long)getpid());
  }
  int holding = 0, told_pending = 0;
  for (;;) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (hup) {
      hup = 0;
      if (!holding) {
        cr_enter_cs(id);
        holding = 1;
        told_pending = 0;
        say("held\n", 0);
      } else {
        holding = 0;
        cr_leave_cs(id);
        say("released\n", 0);
      }
    }
    if (holding && !told_pending && cr_status() == CR_STATE_PENDING) {
      told_pending = 1;
      say("pending\n", 0);
    }
    if (usr2) {
      usr2 = 0;
      if (!holding) {
        cr_enter_cs(id);
        cr_leave_cs(id);
      }
      say("cs ok status=%ld\n", cr_status());
      say("alive\n", 0);
    }
    if (usr1 && file) {
      usr1 = 0;
      request_self(file);
    }
  }
}
