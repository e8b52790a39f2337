// File contents held in the bundle come back as memfds (memfd_create(2)): a memfd, a file deleted
// while open, a mapped file saved with --save-*. Made once in cr_restart and inherited by every
// new process, so fds and mappings of one file share one inode again. Their names show as
// "/memfd:PATH (deleted)" in /proc/PID/fd and /proc/PID/maps.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::restore {

std::map<uint64_t, int> make_contents(const std::vector<model::FileContent>& contents, int min_fd) {
  std::map<uint64_t, int> out;
  try {
    for (const auto& c : contents) {
      // A memfd keeps its name ("/memfd:NAME"); other files are named by their path.
      std::string name = c.path.rfind("/memfd:", 0) == 0 ? c.path.substr(7) : c.path;
      if (name.size() > 249) name = name.substr(name.size() - 249);  // memfd_create(2): 249 bytes at most
      int fd = memfd_create(name.c_str(), MFD_ALLOW_SEALING);
      if (fd < 0) throw_errno("making a memfd for the content of " + c.path);
      // Not O_CLOEXEC: every new process inherits it (see FileTables::contents).
      int high = fcntl(fd, F_DUPFD, min_fd);
      close(fd);
      if (high < 0) throw_errno("fcntl F_DUPFD");
      out[c.id] = high;
      write_all(high, c.data.data(), c.data.size(), "the content of " + c.path);
      // Permissions as the file had them: an executable stays executable (PR_SET_MM_MAP's exe_fd
      // and execve(2) need the execute bit).
      if (fchmod(high, c.mode & 07777) != 0) throw_errno("chmod of the content of " + c.path);
    }
  } catch (...) {
    for (auto& [id, fd] : out) close(fd);
    throw;
  }
  return out;
}

}  // namespace crbox::restore
