#include "runtime/signals.h"

namespace crbox::runtime {

const std::vector<int>& forwarded_signals() {
  static const std::vector<int> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT};
  return kSignals;
}

sigset_t forwarded_set(bool with_sigchld) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : forwarded_signals()) sigaddset(&set, s);
  if (with_sigchld) sigaddset(&set, SIGCHLD);
  return set;
}

void reset_signal_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    ::sigaction(s, &sa, nullptr);  // fails harmlessly for the signals glibc reserves
  }
}

void reset_signals() {
  reset_signal_handlers();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace crbox::runtime
