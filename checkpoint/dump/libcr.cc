// The engine's side of runtime/libcr/protocol.h. The page is a memfd libcr mapped MAP_SHARED; we
// map the same page through /proc/PID/map_files (proc(5)), so both sides see one memory and can
// wait on its words with futex(2) (shared futexes: no FUTEX_PRIVATE_FLAG). While we drive a
// request we hold the page's robust mutex, so that if we die the process learns it from the
// kernel and goes on (protocol.h, "If the engine dies").
#include "checkpoint/dump/libcr.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "checkpoint/proc/maps.h"
#include "runtime/libcr/protocol.h"
#include "util/deadline.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

std::atomic_ref<uint32_t> word(uint32_t& w) { return std::atomic_ref<uint32_t>(w); }

void wake(uint32_t& w) { syscall(SYS_futex, &w, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0); }

// Waits up to 10 ms for `w` to change from `seen`.
void wait_change(uint32_t& w, uint32_t seen) {
  timespec ts{0, 10000000};
  syscall(SYS_futex, &w, FUTEX_WAIT, seen, &ts, nullptr, 0);
}

crbox_libcr_page* map_page(pid_t pid) {
  auto maps = try_read_file("/proc/" + std::to_string(pid) + "/maps");
  if (!maps) return nullptr;
  const std::string name = std::string("/memfd:") + CRBOX_LIBCR_MEMFD_NAME;
  for (const auto& m : proc::parse_maps(*maps)) {
    if (m.path != name || !m.shared || m.end - m.start < sizeof(crbox_libcr_page)) continue;
    std::string link = proc::map_files_path(pid, m.start, m.end);
    UniqueFd fd(open(link.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) throw_errno("opening the libcr page of pid " + std::to_string(pid));
    void* at = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (at == MAP_FAILED) throw_errno("mapping the libcr page of pid " + std::to_string(pid));
    auto* page = static_cast<crbox_libcr_page*>(at);
    uint32_t magic = std::atomic_ref<uint32_t>(page->magic).load(), version = page->version;
    if (magic == CRBOX_LIBCR_MAGIC && version == CRBOX_LIBCR_VERSION) return page;
    munmap(at, 4096);
    // Nothing of the handshake is tried with another version: the two sides would not agree on
    // the page (a libcr older than version 2 would wait for a dead engine forever).
    if (magic == CRBOX_LIBCR_MAGIC)
      throw Error("pid " + std::to_string(pid) + " has a libcr that speaks protocol version " + std::to_string(version) +
                  ", and this cr_checkpoint speaks version " + std::to_string(CRBOX_LIBCR_VERSION) +
                  "; use the libcr and the crbox tools of one release");
  }
  return nullptr;
}

std::string message_of(const crbox_libcr_page* page) {
  std::string m(page->message, strnlen(page->message, sizeof page->message));
  return m.empty() ? "" : ": " + m;
}

}  // namespace

LibcrSession::LibcrSession(const std::vector<pid_t>& pids) {
  try {
    for (pid_t pid : pids) {
      crbox_libcr_page* page = map_page(pid);
      if (!page) continue;
      peers_.push_back({pid, page, false});
      if (word(page->omit).load()) omitted_.insert(pid);
    }
  } catch (...) {
    for (auto& p : peers_) munmap(p.page, 4096);
    throw;
  }
}

LibcrSession::~LibcrSession() {
  for (auto& p : peers_) {
    if (p.asked && !finished_) {
      uint32_t st = word(p.page->state).load();
      tell(p, st == CRBOX_STATE_OMIT ? CRBOX_RESULT_OMITTED : CRBOX_RESULT_ABORTED);
    }
    unlock(p);  // after the result: libcr reads a freed mutex as "the engine is gone"
    munmap(p.page, 4096);
  }
}

// A robust mutex is held by the locking thread, and goes on the robust list the kernel walks
// when that thread ends (set_robust_list(2)): sessions are made, run and ended on one thread.
void LibcrSession::lock(Peer& p) {
  int rc = pthread_mutex_trylock(&p.page->engine.mutex);
  if (rc == EOWNERDEAD) {
    // An earlier cr_checkpoint died while driving this process; libcr has seen (or sees within
    // CRBOX_LIBCR_ENGINE_CHECK_MS) that its request is over. The mutex is ours now.
    rc = pthread_mutex_consistent(&p.page->engine.mutex);
  }
  if (rc == EBUSY)
    throw Error("pid " + std::to_string(p.pid) + " is being checkpointed by another cr_checkpoint; try again once it is over",
                Cause::temporary, FailureKind::temporary);
  if (rc != 0) throw_errno("taking the libcr page of pid " + std::to_string(p.pid), rc);
  p.locked = true;
}

void LibcrSession::unlock(Peer& p) {
  if (!p.locked) return;
  p.locked = false;
  pthread_mutex_unlock(&p.page->engine.mutex);
}

void LibcrSession::tell(Peer& p, unsigned result) {
  word(p.page->result).store(result);
  wake(p.page->result);
}

void LibcrSession::run_callbacks(const std::string& dest, int signal, int32_t requester) {
  // Ask them all first, so their callbacks run at the same time, then wait for each.
  for (auto& p : peers_) {
    if (omitted_.count(p.pid) || word(p.page->callbacks).load() == 0) continue;
    lock(p);  // before the request is visible: libcr reads the owner when it takes it
    std::snprintf(p.page->info_dest, sizeof p.page->info_dest, "%s", dest.c_str());
    p.page->info_signal = signal;
    p.page->info_requester = requester;
    p.page->message[0] = '\0';
    word(p.page->forward_count).store(0);
    word(p.page->result).store(CRBOX_RESULT_PENDING);
    word(p.page->state).store(CRBOX_STATE_REQUESTED);
    word(p.page->request_seq).fetch_add(1);
    wake(p.page->request_seq);
    p.asked = true;
    // The futex wake reaches libcr's thread, which waits on request_seq. (No signal: one sent to
    // the process would interrupt whatever system call its main thread is in.)
  }
  for (auto& p : peers_) {
    if (!p.asked) continue;
    for (;;) {
      uint32_t st = word(p.page->state).load();
      if (st == CRBOX_STATE_READY) break;
      if (st == CRBOX_STATE_OMIT) {
        omitted_.insert(p.pid);
        tell(p, CRBOX_RESULT_OMITTED);
        p.asked = false;
        break;
      }
      if (st == CRBOX_STATE_TEMP_FAILURE)
        throw Error("pid " + std::to_string(p.pid) + " cancelled the checkpoint (a callback reported a temporary failure" +
                        message_of(p.page) + ")",
                    Cause::temporary, FailureKind::temporary);
      if (st == CRBOX_STATE_PERM_FAILURE) {
        // BLCR: the checkpoint is cancelled and the job killed.
        tell(p, CRBOX_RESULT_ABORTED_PERM);
        p.asked = false;
        kill(p.pid, SIGKILL);
        throw Error("pid " + std::to_string(p.pid) + " cancelled the checkpoint with a permanent failure" +
                    message_of(p.page) + "; it was killed", Cause::permanent);
      }
      if (st != CRBOX_STATE_REQUESTED && st != CRBOX_STATE_RUNNING)
        throw Error("pid " + std::to_string(p.pid) + "'s libcr answered with an unknown state " + std::to_string(st));
      if (kill(p.pid, 0) != 0) throw Error("pid " + std::to_string(p.pid) + " exited while running its checkpoint callbacks", Cause::no_process);
      check_deadline("the checkpoint callbacks of pid " + std::to_string(p.pid));
      wait_change(p.page->state, st);
    }
  }
}

std::vector<std::pair<int32_t, int32_t>> LibcrSession::forwards() const {
  std::vector<std::pair<int32_t, int32_t>> out;
  for (const auto& p : peers_) {
    if (!p.asked) continue;
    uint32_t n = std::min<uint32_t>(std::atomic_ref<uint32_t>(p.page->forward_count).load(), CRBOX_LIBCR_FORWARDS);
    for (uint32_t i = 0; i < n; i++) out.push_back({p.page->forward[i].scope, p.page->forward[i].id});
  }
  return out;
}

void LibcrSession::finish() {
  for (auto& p : peers_) {
    if (p.asked) tell(p, CRBOX_RESULT_CONTINUE);
    unlock(p);
  }
  finished_ = true;
}

}  // namespace crbox::dump
