#include "util/deadline.h"

#include <signal.h>
#include <string.h>

#include <atomic>

#include "util/error.h"

namespace crbox {

namespace {
std::atomic<int64_t> g_deadline_ns{0};
volatile sig_atomic_t g_cancel = 0;

void on_cancel(int sig) { g_cancel = sig; }

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void set_deadline(std::chrono::milliseconds from_now) {
  g_deadline_ns = from_now.count() > 0 ? now_ns() + from_now.count() * 1000000 : 0;
}

bool deadline_passed() {
  int64_t d = g_deadline_ns;
  return d != 0 && now_ns() > d;
}

void check_deadline(const std::string& what) {
  if (int sig = g_cancel)
    throw Error(std::string("interrupted by SIG") + sigabbrev_np(sig) + " (" + what + "); nothing was saved", Cause::temporary,
                FailureKind::temporary);
  if (deadline_passed()) throw Error(what + " did not finish within the time limit (--time)");
}

void cancel_on_signals() {
  struct sigaction sa = {};
  sa.sa_handler = on_cancel;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaction(sig, &sa, nullptr);
}

int cancel_signal() { return g_cancel; }

}  // namespace crbox
