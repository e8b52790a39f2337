// Open file descriptors: /proc/PID/fd (the target), /proc/PID/fdinfo (offset and flags, proc(5)).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/fdinfo.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

model::FileId file_id(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// Terminal majors: 4 (tty, ttyS), 5 (/dev/tty, console, ptmx), 136-143 (Unix98 pty slaves)
// (Documentation/admin-guide/devices.txt).
bool isatty_major(unsigned maj) { return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143); }

std::string unsupported(pid_t pid, int fd, const std::string& what) {
  return "pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": " + what + " is not supported yet";
}

}  // namespace

void collect_files(pid_t pid, model::Process& p) {
  std::string base = "/proc/" + std::to_string(pid);
  DIR* d = opendir((base + "/fd").c_str());
  if (!d) throw_errno("listing the open files of pid " + std::to_string(pid));
  std::vector<int> fds;
  while (dirent* e = readdir(d)) {
    if (auto v = parse_u64(e->d_name)) fds.push_back(static_cast<int>(*v));
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());

  p.fds.clear();
  for (int fd : fds) {
    std::string link = base + "/fd/" + std::to_string(fd);
    char buf[4096];
    ssize_t n = readlink(link.c_str(), buf, sizeof buf);
    if (n < 0) {
      if (errno == ENOENT) continue;  // closed meanwhile (a thread we did not stop? no: racing close)
      throw_errno("readlink " + link);
    }
    std::string target(buf, static_cast<size_t>(n));
    struct stat st {};
    if (stat(link.c_str(), &st) != 0) throw_errno("stat " + link);
    auto info = proc::parse_fdinfo(read_file(base + "/fdinfo/" + std::to_string(fd)));

    model::Fd f;
    f.fd = fd;
    f.path = target;
    f.flags = static_cast<int32_t>(info.flags & ~static_cast<uint32_t>(O_CLOEXEC));
    f.cloexec = (info.flags & O_CLOEXEC) != 0;
    f.pos = info.pos;
    f.mode = st.st_mode;
    f.file = file_id(st);

    bool on_stdio = fd <= 2;
    if (S_ISREG(st.st_mode)) {
      if (target.size() > 10 && target.compare(target.size() - 10, 10, " (deleted)") == 0)
        throw Error(unsupported(pid, fd, "a deleted file (" + target.substr(0, target.size() - 10) + ")"));
      if (target.empty() || target[0] != '/') throw Error(unsupported(pid, fd, "the file " + target));
      f.kind = model::FdKind::regular;
    } else if (S_ISDIR(st.st_mode)) {
      f.kind = model::FdKind::directory;
    } else if (on_stdio && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) &&
               (!S_ISCHR(st.st_mode) || isatty_major(major(st.st_rdev)))) {
      // A terminal, pipe or socket on stdin/stdout/stderr: the restarted process gets cr_restart's.
      f.kind = model::FdKind::stdio;
    } else if (S_ISCHR(st.st_mode) && !target.empty() && target[0] == '/') {
      f.kind = model::FdKind::device;
    } else if (S_ISFIFO(st.st_mode)) {
      throw Error(unsupported(pid, fd, "a pipe (" + target + ")"));
    } else if (S_ISSOCK(st.st_mode)) {
      throw Error(unsupported(pid, fd, "a socket (" + target + ")"));
    } else {
      throw Error(unsupported(pid, fd, "the kernel object " + target));
    }
    p.fds.push_back(std::move(f));
  }
}

}  // namespace crbox::dump
