// cr_restart stays the parent of what it restored, as BLCR's does: it forwards the signals a user
// sends it and exits with the restored process's status.
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include "checkpoint/restore/sandbox.h"
#include "util/error.h"

namespace crbox::restore {

namespace {
volatile sig_atomic_t g_child = 0;

void forward(int sig) {
  if (g_child > 0) kill(g_child, sig);
}
}  // namespace

int wait_forwarding_signals(pid_t pid) {
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM})
    sigaction(sig, &sa, nullptr);
  int st = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw_errno("waiting for the restored process");
  }
  g_child = 0;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace crbox::restore
