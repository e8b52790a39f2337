// epoll sets (epoll(7)): each entry of the set, as the epoll fd's fdinfo lists it (proc(5): one
// "tfd:" line per entry with the fd number it was added under, its events and data, and the
// inode and device of the file behind it).
#include <sys/stat.h>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/events.h"
#include "util/error.h"

namespace crbox::dump {

void collect_epoll(pid_t pid, const proc::FdInfo& info, model::Fd& f) {
  f.kind = model::FdKind::epoll;
  f.epoll.clear();
  std::string where = "pid " + std::to_string(pid) + " fd " + std::to_string(f.fd);
  for (const auto& e : proc::parse_epoll_entries(info.lines)) {
    // An entry is keyed by (file, fd number) and lives as long as the file does, not the fd
    // (epoll(7), "Will closing a file descriptor cause it to be removed from all epoll
    // interest lists?"): one whose fd was closed while a dup keeps the file open stays in the
    // set, and can only be recreated through a descriptor numbered as it was.
    std::string tfd = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(e.tfd);
    struct stat st {};
    bool open_now = stat(tfd.c_str(), &st) == 0;
    if (!open_now || (e.has_file && (st.st_ino != e.ino || st.st_dev != proc::user_dev(e.sdev))))
      throw Error(where + ": the epoll set watches fd " + std::to_string(e.tfd) + ", which was closed" +
                  (open_now ? " (the number now holds another file)" : "") +
                  " while another descriptor keeps its file open; crbox cannot recreate that entry");
    model::EpollTarget t;
    t.fd = e.tfd;
    t.events = e.events;
    t.data = e.data;
    f.epoll.push_back(t);
  }
}

}  // namespace crbox::dump
