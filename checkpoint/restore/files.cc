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
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)  // linux/timerfd.h, which clashes with fcntl.h
#endif

namespace crbox::restore {

void check_file_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path,
                        bool accept_changed) {
  for (const auto& f : p.fds) {
    if (f.kind != model::FdKind::regular && f.kind != model::FdKind::device && f.kind != model::FdKind::directory)
      continue;
    if (f.content_id) continue;  // deleted: its content is in the bundle
    std::string path = f.outside ? f.path : host_path(f.path);
    if (path.empty()) continue;  // not visible from here (a sandbox's private /tmp)
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      throw Error("fd " + std::to_string(f.fd) + ": " + f.path + " is missing: " + std::strerror(errno),
                  FailureKind::environment);
    // A file that changed since the checkpoint may not be what the process expects at its offset.
    // Not so for a descriptor the process only writes to (a log, stdout redirected to a file): it
    // never reads what the file holds, and that the file grew is expected — the original ran on
    // and wrote more after the checkpoint, as in BLCR's own walk-through.
    bool write_only = (f.flags & O_ACCMODE) == O_WRONLY;
    if (f.kind == model::FdKind::regular && !accept_changed && !write_only) {
      std::string change = describe_change(f.file, st);
      if (!change.empty())
        throw Error("fd " + std::to_string(f.fd) + ": " + f.path + " has changed since the checkpoint (" + change +
                        "); restart with --accept-changed-files to use it as it is now",
                    FailureKind::environment);
    }
  }
}

std::string describe_change(const model::FileId& was, const struct stat& now) {
  int64_t mtime = static_cast<int64_t>(now.st_mtim.tv_sec) * 1000000000 + now.st_mtim.tv_nsec;
  if (was.size != static_cast<uint64_t>(now.st_size))
    return "size " + std::to_string(was.size) + " then, " + std::to_string(now.st_size) + " now";
  if (was.mtime_ns != mtime) return "modified since";
  return "";
}

namespace {

// A new eventfd, signalfd or timerfd in the saved state. A timerfd's unread expirations are put
// back with TFD_IOC_SET_TICKS (timerfd_create(2), needs CONFIG_CHECKPOINT_RESTORE).
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
  it.it_value = {static_cast<time_t>(f.value_ns / 1000000000), static_cast<long>(f.value_ns % 1000000000)};
  it.it_interval = {static_cast<time_t>(f.interval_ns / 1000000000), static_cast<long>(f.interval_ns % 1000000000)};
  if (timerfd_settime(fd, 0, &it, nullptr) != 0) {
    close(fd);
    return -1;
  }
  if (f.counter > 0) {
    uint64_t ticks = f.counter;
    if (ioctl(fd, TFD_IOC_SET_TICKS, &ticks) != 0) {
      close(fd);
      return -1;
    }
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

namespace {

// A memfd's seals, once (seals belong to the inode, which several descriptions may share).
void add_seals(int fd, const model::Fd& f) {
  if (!f.seals) return;
  int now = fcntl(fd, F_GET_SEALS);
  if (now >= 0 && (static_cast<uint32_t>(now) & f.seals) == f.seals) return;
  if (fcntl(fd, F_ADD_SEALS, static_cast<int>(f.seals)) != 0) throw_errno("fd " + std::to_string(f.fd) + ": sealing the memfd");
}

}  // namespace

int make_fd(const model::Fd& f, const std::map<uint64_t, int>& contents) {
  const std::string what = "fd " + std::to_string(f.fd);
  int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  int fd = -1;
  if (f.content_id) {
    // A memfd or a deleted file: a new description of the memfd holding its content, reopened
    // through /proc/self/fd (proc(5)), so it has its own offset and flags.
    auto it = contents.find(f.content_id);
    if (it == contents.end()) throw Error(what + ": the content of " + f.path + " is missing from the bundle");
    std::string link = "/proc/self/fd/" + std::to_string(it->second);
    fd = open(link.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw_errno(what + ": reopening the content of " + f.path);
    if (f.kind == model::FdKind::memfd) add_seals(fd, f);
  } else {
    switch (f.kind) {
      case model::FdKind::fifo:
        // Never blocks: every named pipe is held open read-write meanwhile (open_fifos).
        fd = open(f.path.c_str(), flags | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK & ~O_ACCMODE) != 0)
          throw_errno(what + ": " + f.path);
        break;
      case model::FdKind::eventfd:
      case model::FdKind::signalfd:
      case model::FdKind::timerfd:
        fd = make_kernel_object(f);
        break;
      case model::FdKind::epoll:
        fd = make_epoll(f);
        break;
      case model::FdKind::inotify:
        fd = make_inotify(f);
        break;
      case model::FdKind::socket:
        fd = make_socket(f);
        break;
      case model::FdKind::mqueue:
        fd = open_mqueue(f);
        break;
      case model::FdKind::console:
        fd = open_console(f);
        break;
      case model::FdKind::regular:
      case model::FdKind::device:
      case model::FdKind::directory:
        fd = open(f.path.c_str(), flags | O_CLOEXEC | O_NOCTTY);
        break;
      default:
        throw Error(what + ": cannot make a descriptor of this kind here");
    }
    if (fd < 0) throw_errno(what + ": reopening " + f.path);
  }
  if ((f.kind == model::FdKind::regular || f.kind == model::FdKind::memfd) &&
      lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
    close(fd);
    throw_errno(what + ": seeking " + f.path);
  }
  try {
    apply_description_locks(fd, f);
  } catch (...) {
    close(fd);
    throw;
  }
  return fd;
}

void apply_files_in_child(const model::Process& p, const FileTables& tables, const std::set<int>& keep_in) {
  // The bundle's contents stay open until the memory is rebuilt from them.
  std::set<int> keep = keep_in;
  for (auto& [id, fd] : tables.contents) keep.insert(fd);
  // Open everything first at temporary numbers above the image's highest fd and ours, so opening
  // one never clobbers a descriptor still needed; then move each into place.
  int top = keep.empty() ? 0 : *keep.rbegin();
  for (const auto& f : p.fds) top = std::max(top, f.fd);
  for (auto& [id, ends] : tables.pipes) top = std::max(top, std::max(ends.first, ends.second));
  for (auto& [id, fd] : tables.objects) top = std::max(top, fd);
  std::vector<std::pair<int, int>> moves;  // temporary -> final
  for (const auto& f : p.fds) {
    if (f.kind == model::FdKind::stdio) continue;
    int fd = -1;
    if (f.kind == model::FdKind::pipe) {
      auto& ends = tables.pipes.at(f.pipe_id);
      fd = dup((f.flags & O_ACCMODE) == O_RDONLY ? ends.first : ends.second);
      if (fd < 0 || fcntl(fd, F_SETFL, f.flags & O_NONBLOCK) != 0) throw_errno("fd " + std::to_string(f.fd) + ": pipe");
    } else if (auto shared = tables.objects.find(f.desc_id); f.desc_id && shared != tables.objects.end()) {
      // One open file description with other fds of the image: the copy made for all of them.
      fd = dup(shared->second);
      if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + ": dup");
    } else {
      fd = make_fd(f, tables.contents);
    }
    int tmp = fcntl(fd, F_DUPFD_CLOEXEC, top + 1);
    if (tmp < 0) throw_errno("fcntl F_DUPFD");
    close(fd);
    top = tmp;
    moves.push_back({tmp, f.fd});
  }
  // Close what cr_restart had open that the image does not (keep the sync fd and the temporaries).
  std::set<int> temps;
  for (auto& [t, d] : moves) temps.insert(t);
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
  for (auto& [t, d] : moves) {
    if (dup2(t, d) < 0) throw_errno("dup2 to fd " + std::to_string(d));
    close(t);
  }
  for (const auto& f : p.fds) {
    if (fcntl(f.fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0) != 0) throw_errno("fd " + std::to_string(f.fd));
  }
  // What needs every fd at its number: record locks (owned by this process), epoll sets (whose
  // entries are keyed by fd number, epoll_ctl(2)).
  for (const auto& f : p.fds) apply_process_locks(f);
  fill_epolls(p);
}

}  // namespace crbox::restore
