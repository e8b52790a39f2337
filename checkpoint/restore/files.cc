// Open file descriptors, set up by the new process itself before it becomes a puppet: each file is
// reopened by path with its flags and put at its number and offset. Terminals, pipes and sockets
// on stdin/stdout/stderr are cr_restart's own, inherited (the BLCR behaviour: output continues
// where cr_restart prints).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::restore {

void check_file_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path) {
  for (const auto& f : p.fds) {
    if (f.kind != model::FdKind::regular && f.kind != model::FdKind::device && f.kind != model::FdKind::directory)
      continue;
    std::string path = f.outside ? f.path : host_path(f.path);
    if (path.empty()) continue;  // not visible from here (a sandbox's private /tmp)
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      throw Error("fd " + std::to_string(f.fd) + ": " + f.path + " is missing: " + std::strerror(errno),
                  FailureKind::environment);
  }
}

namespace {

// A new eventfd, signalfd or timerfd in the saved state. A timerfd's unread expirations cannot be
// put back one by one: if there were some, it fires again at once (one expiration).
int make_kernel_object(const model::Fd& f) {
  int nb = f.flags & O_NONBLOCK;
  if (f.kind == model::FdKind::eventfd) {
    int fd = eventfd(static_cast<unsigned>(f.counter), (nb ? EFD_NONBLOCK : 0) | (f.semaphore ? EFD_SEMAPHORE : 0));
    if (fd >= 0 && f.counter > UINT32_MAX) {
      uint64_t rest = f.counter - static_cast<unsigned>(f.counter);
      write_all(fd, &rest, sizeof rest, "eventfd");
    }
    return fd;
  }
  if (f.kind == model::FdKind::signalfd) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64; sig++)
      if (f.sigmask & (1ull << (sig - 1))) sigaddset(&set, sig);
    return signalfd(-1, &set, nb ? SFD_NONBLOCK : 0);
  }
  int fd = timerfd_create(f.clockid, nb ? TFD_NONBLOCK : 0);
  if (fd < 0) return fd;
  itimerspec it{};
  uint64_t value = f.counter > 0 ? 1 : f.value_ns;  // pending expirations: fire at once
  it.it_value = {static_cast<time_t>(value / 1000000000), static_cast<long>(value % 1000000000)};
  it.it_interval = {static_cast<time_t>(f.interval_ns / 1000000000), static_cast<long>(f.interval_ns % 1000000000)};
  if (timerfd_settime(fd, 0, &it, nullptr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

PipeTable make_pipe_table(const std::vector<model::Pipe>& pipes, int min_fd) {
  PipeTable out;
  for (const auto& pd : pipes) {
    int fds[2];
    if (pipe2(fds, 0) != 0) throw_errno("pipe2");
    // Not O_CLOEXEC, and out of the way of the image's numbers: every new process inherits the
    // table, takes the ends it holds, and closes the rest.
    int r = fcntl(fds[0], F_DUPFD, min_fd);
    int w = r < 0 ? -1 : fcntl(fds[1], F_DUPFD, min_fd);
    close(fds[0]);
    close(fds[1]);
    if (r < 0 || w < 0) throw_errno("fcntl F_DUPFD");
    out[pd.id] = {r, w};
    if (pd.capacity) fcntl(w, F_SETPIPE_SZ, static_cast<int>(pd.capacity));
    if (!pd.data.empty()) write_all(w, pd.data.data(), pd.data.size(), "refilling a pipe");
  }
  return out;
}

std::map<int, int> open_outside_files(const model::Process& p, int min_fd) {
  std::map<int, int> out;
  for (const auto& f : p.fds) {
    if (!f.outside || f.kind == model::FdKind::stdio || f.kind == model::FdKind::pipe) continue;
    int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    // Not O_CLOEXEC: the descriptor travels through the sandbox's init to the puppet.
    int fd = open(f.path.c_str(), flags | O_NOCTTY);
    if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + ": reopening " + f.path, errno);
    int high = fcntl(fd, F_DUPFD, min_fd);
    close(fd);
    if (high < 0) throw_errno("fcntl F_DUPFD");
    out[f.fd] = high;
  }
  return out;
}

void apply_files_in_child(const model::Process& p, const PipeTable& made, const std::set<int>& keep,
                          const std::map<int, int>& preopened) {
  // Open everything first at temporary numbers above the image's highest fd and ours, so opening
  // one never clobbers a descriptor still needed; then move each into place.
  int top = keep.empty() ? 0 : *keep.rbegin();
  for (const auto& f : p.fds) top = std::max(top, f.fd);
  for (auto& [id, ends] : made) top = std::max(top, std::max(ends.first, ends.second));
  std::set<int> wanted;
  std::vector<std::pair<int, int>> moves;  // temporary -> final
  for (const auto& f : p.fds) {
    wanted.insert(f.fd);
    if (f.kind == model::FdKind::stdio) continue;
    int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    int fd = -1;
    if (f.kind == model::FdKind::pipe) {
      auto& ends = made.at(f.pipe_id);
      fd = dup((flags & O_ACCMODE) == O_RDONLY ? ends.first : ends.second);
      if (fd < 0 || fcntl(fd, F_SETFL, flags & O_NONBLOCK) != 0) throw_errno("fd " + std::to_string(f.fd) + ": pipe");
    } else if (f.kind == model::FdKind::fifo) {
      // Never blocks: cr_restart holds every named pipe open read-write (open_fifos).
      fd = open(f.path.c_str(), flags | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0 && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK & ~O_ACCMODE) != 0)
        throw_errno("fd " + std::to_string(f.fd) + ": " + f.path);
    } else if (f.kind == model::FdKind::eventfd || f.kind == model::FdKind::signalfd ||
               f.kind == model::FdKind::timerfd) {
      fd = make_kernel_object(f);
    } else if (preopened.count(f.fd)) {
      fd = preopened.at(f.fd);
    } else {
      fd = open(f.path.c_str(), flags | O_CLOEXEC | O_NOCTTY);
    }
    if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + ": reopening " + f.path);
    if (f.kind == model::FdKind::regular && lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0)
      throw_errno("fd " + std::to_string(f.fd) + ": seeking " + f.path);
    int tmp = fcntl(fd, F_DUPFD_CLOEXEC, top + 1);
    if (tmp < 0) throw_errno("fcntl F_DUPFD");
    close(fd);
    top = tmp;
    moves.push_back({tmp, f.fd});
  }
  // Close what cr_restart had open that the image does not (keep the sync fd and the temporaries).
  std::set<int> temps;
  for (auto& [t, d] : moves) temps.insert(t);
  for (auto& [id, ends] : made) temps.insert(ends.first), temps.insert(ends.second);
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) throw_errno("/proc/self/fd");
  std::vector<int> open_now;
  while (dirent* e = readdir(dir)) {
    if (auto v = parse_u64(e->d_name)) open_now.push_back(static_cast<int>(*v));
  }
  closedir(dir);
  for (int fd : open_now) {
    if (keep.count(fd) || temps.count(fd)) continue;
    bool stdio_kept = false;
    for (const auto& f : p.fds) stdio_kept = stdio_kept || (f.fd == fd && f.kind == model::FdKind::stdio);
    if (!stdio_kept) close(fd);
  }
  for (auto& [id, ends] : made) {
    close(ends.first);
    close(ends.second);
  }
  for (auto& [t, d] : moves) {
    if (dup2(t, d) < 0) throw_errno("dup2 to fd " + std::to_string(d));
    close(t);
  }
  for (const auto& f : p.fds) {
    if (fcntl(f.fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0) != 0) throw_errno("fd " + std::to_string(f.fd));
  }
}

}  // namespace crbox::restore
