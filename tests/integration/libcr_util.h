// For libcr's integration tests: another process's libcr page, mapped here the way the engine
// maps it (/proc/PID/maps finds "/memfd:crbox-libcr", /proc/PID/map_files/A-B opens it; proc(5)),
// and the engine's steps 2, 4 and 5 of runtime/libcr/protocol.h played on it.
#pragma once

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "runtime/libcr/protocol.h"

namespace crbox::test::libcr {

inline std::string maps_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
  std::string all, line;
  while (std::getline(f, line)) all += line + "\n";
  return all;
}

inline std::string environ_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (char& c : all)
    if (c == '\0') c = '\n';
  return all;
}

// The value of KEY in /proc/PID/environ (the environment the program was started with).
inline std::string env_var(pid_t pid, const std::string& key) {
  std::string all = environ_of(pid);
  std::string k = "\n" + key + "=";
  all = "\n" + all;
  auto at = all.find(k);
  if (at == std::string::npos) return "";
  auto start = at + k.size();
  return all.substr(start, all.find('\n', start) - start);
}

class RemotePage {
 public:
  // Maps pid's page; ok() is false when the process has none.
  explicit RemotePage(pid_t pid) : pid_(pid) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("/memfd:" CRBOX_LIBCR_MEMFD_NAME) == std::string::npos) continue;
      std::string range = line.substr(0, line.find(' '));
      int fd = open(("/proc/" + std::to_string(pid) + "/map_files/" + range).c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) return;
      struct stat st;
      fstat(fd, &st);
      inode_ = st.st_ino;
      void* m = mmap(nullptr, sizeof(crbox_libcr_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
      if (m != MAP_FAILED) p_ = static_cast<crbox_libcr_page*>(m);
      return;
    }
  }
  ~RemotePage() {
    if (p_) munmap(p_, sizeof(crbox_libcr_page));
  }
  RemotePage(const RemotePage&) = delete;
  RemotePage& operator=(const RemotePage&) = delete;

  bool ok() const { return p_ != nullptr; }
  crbox_libcr_page* operator->() const { return p_; }
  ino_t inode() const { return inode_; }
  uint32_t state() const { return __atomic_load_n(&p_->state, __ATOMIC_ACQUIRE); }
  std::string message() const { return std::string(p_->message, strnlen(p_->message, sizeof p_->message)); }

  // Step 2.
  void request(const std::string& dest = "", pid_t requester = 0) {
    std::snprintf(p_->info_dest, sizeof p_->info_dest, "%s", dest.c_str());
    p_->info_signal = 0;
    p_->info_requester = requester;
    __atomic_store_n(&p_->result, CRBOX_RESULT_PENDING, __ATOMIC_RELEASE);
    __atomic_store_n(&p_->state, CRBOX_STATE_REQUESTED, __ATOMIC_RELEASE);
    __atomic_add_fetch(&p_->request_seq, 1, __ATOMIC_SEQ_CST);
    wake(&p_->request_seq);
    kill(pid_, CRBOX_LIBCR_SIGNAL);
  }
  // Step 4: waits for a state other than REQUESTED / RUNNING (bounded) and returns it.
  uint32_t wait_decision(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait_state([](uint32_t s) { return s != CRBOX_STATE_REQUESTED && s != CRBOX_STATE_RUNNING; }, timeout);
  }
  // Step 5; then waits for libcr to be IDLE again (true) or the time-out.
  bool finish(uint32_t result, const std::string& src = "", pid_t requester = 0) {
    if (result == CRBOX_RESULT_RESTART) {
      std::snprintf(p_->info_src, sizeof p_->info_src, "%s", src.c_str());
      p_->info_requester = requester;
      __atomic_add_fetch(&p_->restarts, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&p_->result, result, __ATOMIC_RELEASE);
    wake(&p_->result);
    return wait_state([](uint32_t s) { return s == CRBOX_STATE_IDLE; }, std::chrono::seconds(10)) == CRBOX_STATE_IDLE;
  }

 private:
  static void wake(uint32_t* w) { syscall(SYS_futex, w, FUTEX_WAKE, 1 << 30, nullptr, nullptr, 0); }
  template <class Pred>
  uint32_t wait_state(Pred pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint32_t s = state();
      if (pred(s) || std::chrono::steady_clock::now() > end) return s;
      struct timespec ts = {0, 10 * 1000 * 1000};
      syscall(SYS_futex, &p_->state, FUTEX_WAIT, s, &ts, nullptr, 0);
    }
  }
  pid_t pid_;
  crbox_libcr_page* p_ = nullptr;
  ino_t inode_ = 0;
};

}  // namespace crbox::test::libcr
