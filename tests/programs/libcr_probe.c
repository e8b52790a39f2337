// Registers libcr callbacks as asked and prints what they see, for tests that play the engine's
// part of runtime/libcr/protocol.h (or run the real one).
//
//   libcr_probe WORD...
//     thread        a thread-context callback "T"
//     signal        a signal-context callback "S1" of the main thread
//     signal2       another one, "S2", registered after S1 (so it runs before S1)
//     worker        a signal-context callback "W" of a second thread
//     temp | temp=N | perm | omit | ret1
//                   T (which must be given too) asks for a temporary failure (with code N), a
//                   permanent one, to be left out, or returns 1 without calling cr_checkpoint()
//     hooks         hooks for the six events, printing "hook E"
//     info          T prints cr_get_checkpoint_info() before and cr_get_restart_info() after
//     fork          once ready, fork: the child prints "child ready pid=P" and goes on like the
//                   parent, its callbacks' lines prefixed with "child "
//     cs            on SIGUSR1 the main thread enters a critical section, prints "cs entered",
//                   waits until cr_status() is no longer CR_STATE_IDLE (a checkpoint is pending),
//                   prints "cs pending status=N" and "cs leaving", leaves, and prints "cs left"
//
// Prints "ready pid=P" once set up. Each callback prints "NAME before status=N" before its
// cr_checkpoint() and "NAME rc=R" after; a failure is seen as a negative rc (-2354 for
// CR_ETEMPFAIL). On SIGUSR2 it prints "alive" (the main loop is still running). Lines are
// formatted into a buffer and written with write(2), never through stdio's buffers, since
// signal-context callbacks run in a signal handler.
#include <libcr.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* prefix = "";

static void say(const char* a, const char* b, long n, int with_n) {
  char buf[256];
  int len = with_n ? snprintf(buf, sizeof buf, "%s%s%s%ld\n", prefix, a, b, n)
                   : snprintf(buf, sizeof buf, "%s%s%s\n", prefix, a, b);
  if (len > 0) (void)!write(1, buf, (size_t)len);
}

static int t_flags = CR_CHECKPOINT_READY;
static int t_ret1 = 0;
static int want_info = 0;

static int callback(void* arg) {
  const char* name = arg;
  say(name, " before status=", cr_status(), 1);
  if (want_info && strcmp(name, "T") == 0) {
    const struct cr_checkpoint_info* ci = cr_get_checkpoint_info();
    if (ci) {
      char buf[1200];
      int n = snprintf(buf, sizeof buf, "info dest=%s signal=%d requester=%d\n", ci->dest, ci->signal, (int)ci->requester);
      (void)!write(1, buf, (size_t)n);
    }
  }
  if (strcmp(name, "T") == 0 && t_ret1) return 1;
  int rc = cr_checkpoint(strcmp(name, "T") == 0 ? t_flags : CR_CHECKPOINT_READY);
  say(name, " rc=", rc, 1);
  if (want_info && strcmp(name, "T") == 0 && rc > 0) {
    const struct cr_restart_info* ri = cr_get_restart_info();
    if (ri) {
      char buf[1200];
      int n = snprintf(buf, sizeof buf, "restart src=%s requester=%d\n", ri->src, (int)ri->requester);
      (void)!write(1, buf, (size_t)n);
    }
  }
  return 0;
}

static void hook(cr_hook_event_t e) { say("hook ", "", (long)e, 1); }

static volatile sig_atomic_t cs_asked, alive_asked;
static void on_usr1(int sig) {
  (void)sig;
  cs_asked = 1;
}
static void on_usr2(int sig) {
  (void)sig;
  alive_asked = 1;
}

static pthread_mutex_t worker_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_c = PTHREAD_COND_INITIALIZER;
static int worker_ready;

static void* worker(void* arg) {
  (void)arg;
  cr_init();
  cr_register_callback(callback, "W", CR_SIGNAL_CONTEXT);
  pthread_mutex_lock(&worker_m);
  worker_ready = 1;
  pthread_cond_signal(&worker_c);
  pthread_mutex_unlock(&worker_m);
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  cr_client_id_t id = cr_init();
  if (id < 0) {
    fprintf(stderr, "cr_init: %s\n", cr_strerror(errno));
    return 1;
  }
  int cs = 0, do_fork = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "thread")) cr_register_callback(callback, "T", CR_THREAD_CONTEXT);
    else if (!strcmp(a, "signal")) cr_register_callback(callback, "S1", CR_SIGNAL_CONTEXT);
    else if (!strcmp(a, "signal2")) cr_register_callback(callback, "S2", CR_SIGNAL_CONTEXT);
    else if (!strcmp(a, "temp")) t_flags = CR_CHECKPOINT_TEMP_FAILURE;
    else if (!strncmp(a, "temp=", 5)) t_flags = CR_CHECKPOINT_TEMP_FAILURE_CODE(atoi(a + 5));
    else if (!strcmp(a, "perm")) t_flags = CR_CHECKPOINT_PERM_FAILURE;
    else if (!strcmp(a, "omit")) t_flags = CR_CHECKPOINT_OMIT;
    else if (!strcmp(a, "ret1")) t_ret1 = 1;
    else if (!strcmp(a, "info")) want_info = 1;
    else if (!strcmp(a, "cs")) cs = 1;
    else if (!strcmp(a, "fork")) do_fork = 1;
    else if (!strcmp(a, "hooks")) {
      for (int e = 0; e < CR_NUM_HOOKS; e++) cr_register_hook((cr_hook_event_t)e, hook);
    } else if (!strcmp(a, "worker")) {
      pthread_t t;
      pthread_create(&t, NULL, worker, NULL);
      pthread_mutex_lock(&worker_m);
      while (!worker_ready) pthread_cond_wait(&worker_c, &worker_m);
      pthread_mutex_unlock(&worker_m);
    } else {
      fprintf(stderr, "libcr_probe: unknown word %s\n", a);
      return 2;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  say("ready pid=", "", (long)getpid(), 1);
  if (do_fork && fork() == 0) {
    prefix = "child ";
    say("ready pid=", "", (long)getpid(), 1);
  }
  for (;;) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (alive_asked) {
      alive_asked = 0;
      say("alive", "", 0, 0);
    }
    if (cs && cs_asked) {
      cs_asked = 0;
      cr_enter_cs(id);
      say("cs entered", "", 0, 0);
      while (cr_status() == CR_STATE_IDLE) {
        struct timespec w = {0, 1000 * 1000};
        nanosleep(&w, NULL);
      }
      say("cs pending status=", "", cr_status(), 1);
      say("cs leaving", "", 0, 0);
      cr_leave_cs(id);
      say("cs left", "", 0, 0);
    }
  }
}
