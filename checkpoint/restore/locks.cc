// Locks taken again by the restored processes. flock(2) and OFD locks belong to the open file
// description, so they are taken once, where the description is made; fcntl(2) record locks
// belong to the process, so each new process takes its own once the fd is at its number.
// A lock someone else holds now fails the restore (nonblocking calls: never waits).
#include <fcntl.h>
#include <sys/file.h>

#include <cstring>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

namespace {

void record_lock(int fd, const model::Fd& f, const model::FileLock& l, int cmd) {
  struct flock fl {};
  fl.l_type = l.write ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(l.start);
  fl.l_len = static_cast<off_t>(l.len);
  if (fcntl(fd, cmd, &fl) == 0) return;
  int err = errno;
  if (err == EAGAIN || err == EACCES)
    throw Error("fd " + std::to_string(f.fd) + ": " + f.path + " is in use: another process holds a lock on it",
                FailureKind::temporary);
  throw Error("fd " + std::to_string(f.fd) + ": locking " + f.path + ": " + std::strerror(err));
}

}  // namespace

void apply_description_locks(int fd, const model::Fd& f) {
  for (const auto& l : f.locks) {
    if (l.kind == model::LockKind::ofd) {
      record_lock(fd, f, l, F_OFD_SETLK);
    } else if (l.kind == model::LockKind::flock) {
      if (flock(fd, (l.write ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) continue;
      if (errno == EWOULDBLOCK)
        throw Error("fd " + std::to_string(f.fd) + ": " + f.path + " is in use: another process holds a lock on it",
                    FailureKind::temporary);
      throw_errno("fd " + std::to_string(f.fd) + ": flock " + f.path);
    }
  }
}

void apply_process_locks(const model::Fd& f) {
  for (const auto& l : f.locks)
    if (l.kind == model::LockKind::posix) record_lock(f.fd, f, l, F_SETLK);
}

}  // namespace crbox::restore
