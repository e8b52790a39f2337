// epoll sets (epoll(7)): an empty instance is made with the other descriptors, and filled once
// every descriptor of the process is at its number, since an entry is the pair (file, fd number).
// Readiness needs no saving: adding an entry checks the file at once (epoll_ctl(2)), so a pipe
// with data or a signalled eventfd is reported by the next epoll_wait, as it was. An
// edge-triggered entry that had already reported its edge reports it once more.
#include <sys/epoll.h>

#include <cerrno>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

int make_epoll(const model::Fd& f) {
  // The caller sets close-on-exec; O_NONBLOCK means nothing to epoll_wait (it has a timeout).
  int fd = epoll_create1(0);
  if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + ": epoll_create1");
  return fd;
}

void fill_epolls(const model::Process& p) {
  for (const auto& f : p.fds) {
    if (f.kind != model::FdKind::epoll) continue;
    for (const auto& t : f.epoll) {
      epoll_event ev{};
      // The events as the kernel keeps them: EPOLLERR and EPOLLHUP are always in (epoll_ctl(2)),
      // EPOLLET, EPOLLONESHOT (a fired one-shot entry keeps only these flags: disabled),
      // EPOLLEXCLUSIVE and EPOLLWAKEUP (dropped silently without CAP_BLOCK_SUSPEND) with them.
      ev.events = t.events;
      ev.data.u64 = t.data;
      if (epoll_ctl(f.fd, EPOLL_CTL_ADD, t.fd, &ev) == 0) continue;
      // A set shared with another process of the image (inherited across fork) may have been
      // filled by that process already, through the same files at the same numbers.
      if (errno == EEXIST) continue;
      throw_errno("pid " + std::to_string(p.pid) + " fd " + std::to_string(f.fd) + ": adding fd " +
                  std::to_string(t.fd) + " to the epoll set");
    }
  }
}

}  // namespace crbox::restore
