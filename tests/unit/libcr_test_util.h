// For libcr's unit tests: this process's own libcr page (found in /proc/self/maps: it is mapped
// in our address space) and an "engine" that plays protocol.h's steps 2 and 5 on it, in-process.
#pragma once

#include <libcr.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "protocol.h"

namespace crbox::libcr_test {

inline crbox_libcr_page* own_page() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/memfd:" CRBOX_LIBCR_MEMFD_NAME) == std::string::npos) continue;
    unsigned long lo = 0;
    if (std::sscanf(line.c_str(), "%lx-", &lo) == 1) return reinterpret_cast<crbox_libcr_page*>(lo);
  }
  return nullptr;
}

inline uint32_t load(const uint32_t& w) { return __atomic_load_n(&w, __ATOMIC_ACQUIRE); }

inline void wake(uint32_t* w) { syscall(SYS_futex, w, FUTEX_WAKE, 1 << 30, nullptr, nullptr, 0); }

// Polls `pred` (every millisecond) until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The engine's side of one checkpoint of this process.
struct Engine {
  crbox_libcr_page* p;

  // Step 2.
  void request(const char* dest = "", int signal = 0, pid_t requester = 0) {
    std::snprintf(p->info_dest, sizeof p->info_dest, "%s", dest);
    p->info_signal = signal;
    p->info_requester = requester;
    __atomic_store_n(&p->result, CRBOX_RESULT_PENDING, __ATOMIC_RELEASE);
    __atomic_store_n(&p->state, CRBOX_STATE_REQUESTED, __ATOMIC_RELEASE);
    __atomic_add_fetch(&p->request_seq, 1, __ATOMIC_SEQ_CST);
    wake(&p->request_seq);
    kill(getpid(), CRBOX_LIBCR_SIGNAL);
  }
  // Step 4: the state libcr settles on (READY or a failure), or REQUESTED/RUNNING after the time-out.
  uint32_t wait_decision(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    eventually([&] {
      uint32_t s = load(p->state);
      return s != CRBOX_STATE_REQUESTED && s != CRBOX_STATE_RUNNING;
    }, timeout);
    return load(p->state);
  }
  // Step 5, then step 6 seen from outside: libcr goes back to IDLE.
  bool finish(uint32_t result, const char* src = "", pid_t requester = 0) {
    if (result == CRBOX_RESULT_RESTART) {
      std::snprintf(p->info_src, sizeof p->info_src, "%s", src);
      p->info_requester = requester;
      __atomic_add_fetch(&p->restarts, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&p->result, result, __ATOMIC_RELEASE);
    wake(&p->result);
    return eventually([&] { return load(p->state) == CRBOX_STATE_IDLE; });
  }
  std::string message() const { return std::string(p->message, strnlen(p->message, sizeof p->message)); }
};

}  // namespace crbox::libcr_test
