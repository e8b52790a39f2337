// The libcr handshake (runtime/libcr/protocol.h) with the processes of a checkpoint that have
// BLCR's application library loaded: find their pages, leave out those that asked to be omitted,
// have the others run their callbacks up to cr_checkpoint(), and tell them the outcome.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

struct crbox_libcr_page;

namespace crbox::dump {

class LibcrSession {
 public:
  // Finds and maps the libcr page of each of `pids` that has one.
  explicit LibcrSession(const std::vector<pid_t>& pids);
  // A session not finished tells every process it asked that the checkpoint was given up. Either
  // way the page's engine mutex is released after the result is stored; a session that dies
  // with its process leaves the kernel to mark the mutex (protocol.h, "If the engine dies").
  ~LibcrSession();
  LibcrSession(const LibcrSession&) = delete;
  LibcrSession& operator=(const LibcrSession&) = delete;

  // Processes left out: libcr_omit loaded, or a callback asked for CR_CHECKPOINT_OMIT.
  const std::set<pid_t>& omitted() const { return omitted_; }
  // Asks every process with callbacks to run them and waits until each has reached
  // cr_checkpoint() (bounded by --time). Throws an Error on a failure or a time-out; a
  // permanent failure (CR_CHECKPOINT_PERM_FAILURE) kills that process, as BLCR does.
  // `requester`: who asked, as the processes number it (0: not in their pid namespace).
  void run_callbacks(const std::string& dest, int signal, int32_t requester);
  // What the callbacks asked to add with cr_forward_checkpoint(): (cr_scope_t, pid) pairs.
  std::vector<std::pair<int32_t, int32_t>> forwards() const;
  // The image is safe: the callbacks go on with "continue".
  void finish();

 private:
  struct Peer {
    pid_t pid = 0;
    crbox_libcr_page* page = nullptr;
    bool asked = false;
    bool locked = false;  // we hold its page's engine mutex (protocol.h, "If the engine dies")
  };
  void tell(Peer& p, unsigned result);
  // Takes the page's engine mutex; an Error if another cr_checkpoint holds it.
  void lock(Peer& p);
  void unlock(Peer& p);
  std::vector<Peer> peers_;
  std::set<pid_t> omitted_;
  bool finished_ = false;
};

}  // namespace crbox::dump
