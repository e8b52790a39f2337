#include "util/deadline.h"

#include <atomic>

#include "util/error.h"

namespace crbox {

namespace {
std::atomic<int64_t> g_deadline_ns{0};

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
  if (deadline_passed()) throw Error(what + " did not finish within the time limit (--time)");
}

}  // namespace crbox
