// inotify instances (inotify(7)): a new instance whose watches get their saved descriptors back.
// An instance numbers its watches upward from 1, cyclically (idr_alloc_cyclic in
// fs/notify/inotify/inotify_user.c), never reusing a number until it wraps: adding the watches in
// the order of their descriptors, with a throw-away watch (added and removed at once) for every
// number in between, gives each its own. Events that were queued but unread at the checkpoint are
// lost; events on the watched files in the instant the instance is being made may be too (the
// throw-away watches' IN_IGNORED events are drained from the same queue).
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/fd.h"

namespace crbox::restore {

namespace {

// Reads (and drops) everything queued on a nonblocking instance.
void drain(int fd) {
  alignas(inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return;  // EAGAIN: empty
  }
}

// Watch bits inotify_add_watch(2) accepts from a saved mask (the kernel also shows bits of its own).
constexpr uint32_t kWatchBits =
    IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_ONESHOT;

}  // namespace

int make_inotify(const model::Fd& f) {
  std::string where = "fd " + std::to_string(f.fd);
  UniqueFd fd(inotify_init1(IN_NONBLOCK));
  if (!fd) throw_errno(where + ": inotify_init1");
  std::vector<model::InotifyWatch> watches = f.watches;
  std::sort(watches.begin(), watches.end(), [](const auto& a, const auto& b) { return a.wd < b.wd; });

  // The throw-away watches go on a pipe of our own (through its /proc/self/fd link): an inode no
  // saved watch can be on, and one the instance does not watch once its watch is removed.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno(where + ": pipe");
  UniqueFd pr(p[0]), pw(p[1]);
  std::string spare = "/proc/self/fd/" + std::to_string(pr.get());

  int next = 1;
  for (const auto& w : watches) {
    if (w.wd < next) throw Error(where + ": the image lists inotify watch " + std::to_string(w.wd) + " twice");
    for (int n = 0; next < w.wd; n++) {
      int wd = inotify_add_watch(fd.get(), spare.c_str(), IN_ALL_EVENTS);
      if (wd < 0) throw_errno(where + ": a placeholder inotify watch");
      if (wd != next)
        throw Error(where + ": the kernel gave inotify watch " + std::to_string(wd) + " where " + std::to_string(next) +
                    " was expected");
      inotify_rm_watch(fd.get(), wd);  // queues IN_IGNORED
      next++;
      if (n % 256 == 255) drain(fd.get());  // keep below max_queued_events
    }
    drain(fd.get());
    int wd = inotify_add_watch(fd.get(), w.path.c_str(), w.mask & kWatchBits);
    if (wd < 0) throw_errno(where + ": watching " + w.path + " (inotify watch " + std::to_string(w.wd) + ")");
    if (wd != w.wd)
      throw Error(where + ": watching " + w.path + " gave inotify watch " + std::to_string(wd) + ", not " +
                  std::to_string(w.wd) + " (is it the same file as another watch's now?)");
    next = w.wd + 1;
  }
  drain(fd.get());
  // The saved O_NONBLOCK (O_CLOEXEC is the caller's).
  if (!(f.flags & O_NONBLOCK) && fcntl(fd.get(), F_SETFL, 0) != 0) throw_errno(where + ": fcntl F_SETFL");
  return fd.release();
}

}  // namespace crbox::restore
