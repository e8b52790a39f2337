// Open file descriptors: /proc/PID/fd (the target), /proc/PID/fdinfo (offset and flags, proc(5)).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/fdinfo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

// Terminal majors: 4 (tty, ttyS), 5 (/dev/tty, console, ptmx), 136-143 (Unix98 pty slaves)
// (Documentation/admin-guide/devices.txt).
bool isatty_major(unsigned maj) { return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143); }

uint64_t field(const proc::FdInfo& info, const std::string& key, int base) {
  auto it = info.extra.find(key);
  if (it == info.extra.end()) throw Error("fdinfo lacks '" + key + "'");
  auto v = parse_u64(trim(it->second), base);
  if (!v) throw Error("fdinfo has a bad '" + key + "': " + it->second);
  return *v;
}

// "(seconds, nanoseconds)" as timerfd's fdinfo prints it_value and it_interval.
uint64_t timespec_field(const proc::FdInfo& info, const std::string& key) {
  auto it = info.extra.find(key);
  if (it == info.extra.end()) throw Error("fdinfo lacks '" + key + "'");
  unsigned long long sec = 0, nsec = 0;
  if (sscanf(it->second.c_str(), " (%llu, %llu)", &sec, &nsec) != 2) throw Error("fdinfo has a bad '" + key + "'");
  return sec * 1000000000ull + nsec;
}

// eventfd, signalfd and timerfd, from their fdinfo lines (proc(5); eventfd-count and sigmask are
// hexadecimal, ticks decimal).
void kernel_object(const std::string& target, const proc::FdInfo& info, model::Fd& f) {
  if (target == "anon_inode:[eventfd]") {
    f.kind = model::FdKind::eventfd;
    f.counter = field(info, "eventfd-count", 16);
    auto sem = info.extra.find("eventfd-semaphore");
    f.semaphore = sem != info.extra.end() && trim(sem->second) == "1";
  } else if (target == "anon_inode:[signalfd]") {
    f.kind = model::FdKind::signalfd;
    f.sigmask = field(info, "sigmask", 16);
  } else {
    f.kind = model::FdKind::timerfd;
    f.clockid = static_cast<int32_t>(field(info, "clockid", 10));
    f.counter = field(info, "ticks", 10);
    f.value_ns = timespec_field(info, "it_value");
    f.interval_ns = timespec_field(info, "it_interval");
  }
}

// The bytes sitting in a pipe, read without taking them out: tee(2) duplicates pipe content into
// another pipe without consuming it.
std::vector<uint8_t> peek_pipe(pid_t pid, int fd, uint32_t& capacity) {
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  UniqueFd src(open(link.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!src) throw_errno("opening the pipe at " + link);
  int cap = fcntl(src.get(), F_GETPIPE_SZ);
  if (cap < 0) throw_errno("F_GETPIPE_SZ on " + link);
  capacity = static_cast<uint32_t>(cap);
  int tmp[2];
  if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) != 0) throw_errno("pipe");
  UniqueFd tr(tmp[0]), tw(tmp[1]);
  fcntl(tw.get(), F_SETPIPE_SZ, cap);
  std::vector<uint8_t> out;
  ssize_t n = tee(src.get(), tw.get(), static_cast<size_t>(cap), SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) throw_errno("reading the content of the pipe at " + link);
  if (n > 0) {
    out.resize(static_cast<size_t>(n));
    if (!read_exact(tr.get(), out.data(), out.size(), "pipe copy")) out.clear();
  }
  return out;
}

std::string unsupported(pid_t pid, int fd, const std::string& what) {
  return "pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": " + what + " is not supported yet";
}

}  // namespace

model::FileId file_id(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

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

  // A file or directory the process reaches by a path that, seen from its own root, leads
  // elsewhere (or nowhere) was opened outside its mount namespace, or is shadowed by a mount made
  // since: a sandboxed program's stdout redirected to a host file, or its cwd under the host's
  // /tmp. Reached through /proc/PID/root, which resolves in the process's mount namespace.
  auto reachable = [&](const std::string& path, const struct stat& st) {
    struct stat there {};
    return stat((base + "/root" + path).c_str(), &there) == 0 && there.st_dev == st.st_dev && there.st_ino == st.st_ino;
  };
  {
    struct stat cst {};
    if (stat((base + "/cwd").c_str(), &cst) == 0) p.cwd_outside = !reachable(p.cwd, cst);
  }

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
    f.outside = !target.empty() && target[0] == '/' && !reachable(target, st);

    bool on_stdio = fd <= 2;
    bool deleted = target.size() > 10 && target.compare(target.size() - 10, 10, " (deleted)") == 0;
    if (S_ISREG(st.st_mode) && target.rfind("/memfd:", 0) == 0 && deleted) {
      // memfd_create(2): its content goes into the bundle, its seals with it (fcntl(2), F_GET_SEALS).
      f.kind = model::FdKind::memfd;
      f.path = target.substr(0, target.size() - 10);
      f.content_id = kContentPending;
      UniqueFd copy(copy_remote_fd(pid, fd));
      int seals = fcntl(copy.get(), F_GET_SEALS);
      f.seals = seals > 0 ? static_cast<uint32_t>(seals) : 0;
    } else if (collect_mqueue(pid, fd, f)) {
      // a POSIX message queue (ipc.cc)
    } else if (S_ISREG(st.st_mode)) {
      if (target.empty() || target[0] != '/') throw Error(unsupported(pid, fd, "the file " + target));
      f.kind = model::FdKind::regular;
      if (deleted) {
        // Unlinked while open: nobody can reopen it by name, so its content goes into the bundle.
        f.path = target.substr(0, target.size() - 10);
        f.content_id = kContentPending;
      }
    } else if (S_ISDIR(st.st_mode)) {
      f.kind = model::FdKind::directory;
    } else if (S_ISFIFO(st.st_mode) && target.rfind("pipe:", 0) == 0) {
      // A pipe stays one if both its ends are in the image; otherwise, on stdin/stdout/stderr it
      // becomes cr_restart's (resolve_pipes decides, once every process is collected).
      f.kind = model::FdKind::pipe;
      f.pipe_id = static_cast<uint64_t>(st.st_ino);
    } else if (collect_console(pid, fd, st, f)) {
      // the sandbox's terminal (console.cc)
    } else if (on_stdio && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) &&
               (!S_ISCHR(st.st_mode) || isatty_major(major(st.st_rdev)))) {
      // A terminal or named pipe on stdin/stdout/stderr: the restarted process gets cr_restart's.
      // (A socket there is one if its peer is in the image; else it becomes stdio too: sockets.cc.)
      f.kind = model::FdKind::stdio;
    } else if (S_ISCHR(st.st_mode) && !target.empty() && target[0] == '/') {
      f.kind = model::FdKind::device;
    } else if (S_ISFIFO(st.st_mode) && !target.empty() && target[0] == '/') {
      // A named pipe: reopened by path (its node is on the host's file system, or in the
      // sandbox's /tmp, which the bundle carries); its content is kept like a pipe's.
      f.kind = model::FdKind::fifo;
      f.pipe_id = static_cast<uint64_t>(st.st_ino);
    } else if (S_ISFIFO(st.st_mode)) {
      throw Error(unsupported(pid, fd, "the named pipe " + target));
    } else if (S_ISSOCK(st.st_mode)) {
      collect_socket(pid, fd, f);
    } else if (target == "anon_inode:[timerfd]") {
      // A periodic timerfd counts its expirations lazily: after the first one the kernel stops the
      // timer and adds the periods missed since when someone asks. timerfd_gettime(2) on a copy of
      // the descriptor does that (the count the program will read is the same), then fdinfo's
      // "ticks" is the whole count.
      UniqueFd copy(copy_remote_fd(pid, fd));
      itimerspec now{};
      if (timerfd_gettime(copy.get(), &now) != 0) throw_errno("timerfd_gettime on fd " + std::to_string(fd));
      kernel_object(target, proc::parse_fdinfo(read_file(base + "/fdinfo/" + std::to_string(fd))), f);
    } else if (target == "anon_inode:[eventfd]" || target == "anon_inode:[signalfd]") {
      kernel_object(target, info, f);
    } else if (target == "anon_inode:[eventpoll]") {
      collect_epoll(pid, info, f);
    } else if (target == "anon_inode:inotify") {
      collect_inotify(pid, info, f);
    } else {
      throw Error(unsupported(pid, fd, "the kernel object " + target));
    }
    collect_locks(pid, info, f);
    p.fds.push_back(std::move(f));
  }
}

void confirm_cloexec(RemoteSession& rs, model::Process& p) {
  // fdinfo's flags are the open file's f_flags plus O_CLOEXEC when the fd has FD_CLOEXEC (proc(5)).
  // A file opened by some kernel paths (a pty peer from TIOCGPTPEER with O_CLOEXEC) keeps
  // O_CLOEXEC in f_flags itself, so every fd sharing it looks close-on-exec; ask the process.
  for (auto& f : p.fds) {
    if (!f.cloexec) continue;
    long r = rs.call(SYS_fcntl, static_cast<uint64_t>(f.fd), F_GETFD);
    if (r >= 0) f.cloexec = (r & FD_CLOEXEC) != 0;
  }
}

void resolve_descriptions(std::vector<model::Process>& procs) {
  // Candidates share an inode (every eventfd shares one anonymous inode, so kcmp tells them
  // apart); kcmp(2) with KCMP_FILE says whether two fds are one open file description.
  struct Seen {
    pid_t pid;
    int fd;
    uint64_t id;
  };
  std::map<std::pair<uint64_t, uint64_t>, std::vector<Seen>> by_inode;
  uint64_t next = 1;
  for (auto& p : procs)
    for (auto& f : p.fds) {
      if (f.kind == model::FdKind::stdio) continue;
      auto& seen = by_inode[{f.file.dev, f.file.ino}];
      f.desc_id = 0;
      for (const auto& s : seen) {
        long r = syscall(SYS_kcmp, p.host_pid, s.pid, 0 /* KCMP_FILE */, f.fd, s.fd);
        if (r < 0) throw_errno("comparing fd " + std::to_string(f.fd) + " of pid " + std::to_string(p.host_pid) +
                               " with fd " + std::to_string(s.fd) + " of pid " + std::to_string(s.pid) + " (kcmp)");
        if (r == 0) {
          f.desc_id = s.id;
          break;
        }
      }
      if (!f.desc_id) {
        f.desc_id = next++;
        seen.push_back({p.host_pid, f.fd, f.desc_id});
      }
    }
}

void resolve_pipes(std::vector<model::Process>& procs) {
  // Which ends of each pipe the image holds (fdinfo access mode: O_RDONLY read end, O_WRONLY write end).
  std::map<uint64_t, std::pair<bool, bool>> ends;
  for (const auto& p : procs)
    for (const auto& f : p.fds) {
      if (f.kind != model::FdKind::pipe) continue;
      if ((f.flags & O_ACCMODE) == O_RDONLY) ends[f.pipe_id].first = true;
      if ((f.flags & O_ACCMODE) == O_WRONLY) ends[f.pipe_id].second = true;
    }
  for (auto& p : procs)
    for (auto& f : p.fds) {
      if (f.kind != model::FdKind::pipe) continue;
      auto [r, w] = ends[f.pipe_id];
      if (r && w) continue;
      if (f.fd <= 2) {
        f.kind = model::FdKind::stdio;
        f.pipe_id = 0;
        continue;
      }
      throw Error(unsupported(p.host_pid, f.fd, "a pipe whose other end is outside the checkpointed processes (" + f.path + ")"));
    }
}

void collect_pipes(pid_t pid, const model::Process& p, std::vector<model::Pipe>& pipes) {
  for (const auto& f : p.fds) {
    bool reads = (f.flags & O_ACCMODE) == O_RDONLY || (f.kind == model::FdKind::fifo && (f.flags & O_ACCMODE) == O_RDWR);
    if ((f.kind != model::FdKind::pipe && f.kind != model::FdKind::fifo) || !reads) continue;
    bool seen = false;
    for (const auto& q : pipes) seen = seen || q.id == f.pipe_id;
    if (seen) continue;
    model::Pipe pipe;
    pipe.id = f.pipe_id;
    pipe.data = peek_pipe(pid, f.fd, pipe.capacity);
    pipes.push_back(std::move(pipe));
  }
}

}  // namespace crbox::dump
