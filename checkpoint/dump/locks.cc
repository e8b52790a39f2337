// Locks held through an fd: /proc/PID/fdinfo/N lists them on "lock:" lines in the format of
// /proc/locks (proc(5)): "lock:\t1: POSIX  ADVISORY  WRITE 1234 08:01:1234 0 EOF". The kernel shows
// on an fd only the locks taken through its open file description by their owner: the process
// for fcntl(2) record locks, the description itself for flock(2) and OFD locks.
#include <sstream>

#include "checkpoint/dump/collect.h"
#include "util/error.h"
#include "util/strings.h"

namespace crbox::dump {

void collect_locks(pid_t pid, const proc::FdInfo& info, model::Fd& f) {
  f.locks.clear();
  for (const auto& line : info.lines) {
    if (line.rfind("lock:", 0) != 0) continue;
    // After "lock:": "<n>: <class> <ADVISORY|MANDATORY> <READ|WRITE> <pid> <maj:min:ino> <start> <end|EOF>"
    std::istringstream in(line.substr(5));
    std::string num, cls, mand, type, owner, where, start, end;
    in >> num >> cls >> mand >> type >> owner >> where >> start >> end;
    auto what = [&] { return "pid " + std::to_string(pid) + " fd " + std::to_string(f.fd) + ": "; };
    if (end.empty()) throw Error(what() + "cannot read the lock line \"" + line + "\" of its fdinfo");
    model::FileLock l;
    if (cls == "POSIX") {
      l.kind = model::LockKind::posix;
    } else if (cls == "OFDLCK") {
      l.kind = model::LockKind::ofd;
    } else if (cls == "FLOCK") {
      l.kind = model::LockKind::flock;
    } else {
      // Leases and delegations (fcntl(2) F_SETLEASE) are not kept.
      throw Error(what() + "a " + cls + " lock on " + f.path + " is not supported");
    }
    if (mand != "ADVISORY") throw Error(what() + "a mandatory lock on " + f.path + " is not supported");
    if (type != "READ" && type != "WRITE") throw Error(what() + "a lock of type " + type + " is not supported");
    l.write = type == "WRITE";
    auto s = parse_u64(start);
    if (!s) throw Error(what() + "cannot read the lock line \"" + line + "\" of its fdinfo");
    l.start = *s;
    if (end != "EOF") {
      auto e = parse_u64(end);  // the last byte locked, inclusive
      if (!e || *e < l.start) throw Error(what() + "cannot read the lock line \"" + line + "\" of its fdinfo");
      l.len = *e - l.start + 1;
    }
    f.locks.push_back(l);
  }
}

}  // namespace crbox::dump
