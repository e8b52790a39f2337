// The terminal of a sandbox started with --tty (runtime/console.h): a pty slave that is the
// controlling terminal of the sandbox's init. Descriptors on it become FdKind::console, and its
// state (termios, window size, foreground process group) goes into model::Sandbox::console, so
// the restarted sandbox's new pty looks the same from inside.
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/stat.h"
#include "checkpoint/proc/status.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

// Unix98 pty slaves have majors 136-143 (Documentation/admin-guide/devices.txt).
bool pty_slave(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143;
}

std::string proc_path(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

// The init (pid 1 inside) of the pid namespace `pid` lives in, as a host pid: the ancestor whose
// innermost pid is 1 (orphans are re-parented to it, pid_namespaces(7), so the chain of parents
// always reaches it). 0 for a process of our own pid namespace.
pid_t namespace_init(pid_t pid) {
  for (pid_t cur = pid; cur > 1;) {
    auto text = try_read_file(proc_path(cur, "status"));
    if (!text) return 0;
    auto s = proc::parse_status(*text);
    if (s.nspid.size() < 2) return 0;
    if (s.nspid.back() == 1) return cur;
    cur = s.ppid;
  }
  return 0;
}

// The controlling terminal (a device number, 0 for none) and its foreground process group (a pid
// of our namespace, proc(5) "tpgid"; -1 for none) of a process, from /proc/PID/stat.
struct Ctty {
  dev_t dev = 0;
  pid_t foreground = -1;
};
Ctty ctty_of(pid_t pid) {
  auto text = try_read_file(proc_path(pid, "stat"));
  if (!text) return {};
  // After the command's closing parenthesis: state ppid pgrp session tty_nr tpgid ...
  auto close = text->rfind(')');
  if (close == std::string::npos) return {};
  char state = 0;
  int ppid = 0, pgrp = 0, session = 0, tty_nr = 0, tpgid = -1;
  if (std::sscanf(text->c_str() + close + 1, " %c %d %d %d %d %d", &state, &ppid, &pgrp, &session, &tty_nr, &tpgid) != 6)
    return {};
  // proc(5): tty_nr holds the major in bits 15-8 and the minor in bits 31-20 and 7-0, as
  // makedev(3) encodes them.
  auto nr = static_cast<unsigned>(tty_nr);
  return {makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00)), tpgid};
}

// The device number of the console of the sandbox `pid` lives in, or 0.
dev_t console_of(pid_t pid) {
  pid_t init = namespace_init(pid);
  return init ? ctty_of(init).dev : 0;
}

// A descriptor of ours on the console `dev`: a copy (pidfd_getfd(2)) of the one the init holds
// for the sandbox's life, else of any the processes hold. A copy, not a new open(2) of the
// device, so nothing about the terminal changes.
UniqueFd console_copy(pid_t init, dev_t dev, const std::vector<model::Process>& procs, std::string& path) {
  auto try_fd = [&](pid_t pid, int fd) -> UniqueFd {
    std::string link = proc_path(pid, "fd/" + std::to_string(fd));
    struct stat st {};
    if (stat(link.c_str(), &st) != 0 || !pty_slave(st) || st.st_rdev != dev) return UniqueFd();
    char buf[4096];
    ssize_t n = readlink(link.c_str(), buf, sizeof buf);
    if (n > 0) path.assign(buf, static_cast<size_t>(n));
    return UniqueFd(copy_remote_fd(pid, fd));
  };
  if (DIR* d = opendir(proc_path(init, "fd").c_str())) {
    std::vector<int> fds;
    while (dirent* e = readdir(d))
      if (auto v = parse_u64(e->d_name)) fds.push_back(static_cast<int>(*v));
    closedir(d);
    for (int fd : fds)
      if (UniqueFd c = try_fd(init, fd)) return c;
  }
  for (const auto& p : procs)
    for (const auto& f : p.fds)
      if (f.kind == model::FdKind::console)
        if (UniqueFd c = try_fd(p.host_pid, f.fd)) return c;
  return UniqueFd();
}

}  // namespace

bool collect_console(pid_t pid, int fd, const struct stat& st, model::Fd& f) {
  (void)fd;
  if (!pty_slave(st)) return false;
  dev_t console = console_of(pid);
  if (!console || console != st.st_rdev) return false;
  f.kind = model::FdKind::console;
  // Given back as the new sandbox's pty, never reopened by its path.
  f.outside = false;
  return true;
}

std::optional<model::Console> collect_console_state(pid_t init_pid, const std::vector<model::Process>& procs) {
  Ctty tty = ctty_of(init_pid);
  if (!tty.dev) return std::nullopt;  // no --tty: the init has no controlling terminal
  model::Console c;
  UniqueFd fd = console_copy(init_pid, tty.dev, procs, c.path);
  if (!fd)
    throw Error("the sandbox's terminal (" + std::to_string(major(tty.dev)) + ":" + std::to_string(minor(tty.dev)) +
                ") cannot be read: neither its init nor any of its processes holds it open");
  termios t{};
  if (tcgetattr(fd.get(), &t) != 0) throw_errno("reading the settings of the sandbox's terminal (tcgetattr)");
  c.iflag = t.c_iflag;
  c.oflag = t.c_oflag;
  c.cflag = t.c_cflag;
  c.lflag = t.c_lflag;
  c.line = t.c_line;
  c.cc.assign(t.c_cc, t.c_cc + NCCS);
  c.ispeed = cfgetispeed(&t);
  c.ospeed = cfgetospeed(&t);
  winsize ws{};
  if (ioctl(fd.get(), TIOCGWINSZ, &ws) != 0) throw_errno("reading the window size of the sandbox's terminal (TIOCGWINSZ)");
  c.rows = ws.ws_row;
  c.cols = ws.ws_col;
  c.xpixel = ws.ws_xpixel;
  c.ypixel = ws.ws_ypixel;
  // The foreground group as the sandbox numbers it: tpgid is in our numbering, and a group is
  // named by its members' pgid (its leader may be gone).
  if (tty.foreground == init_pid) {
    c.foreground = 1;
  } else if (tty.foreground > 0) {
    for (const auto& p : procs) {
      auto text = try_read_file(proc_path(p.host_pid, "stat"));
      if (text && proc::parse_stat(*text).pgrp == tty.foreground) {
        c.foreground = p.pgid;
        break;
      }
    }
  }
  return c;
}

}  // namespace crbox::dump
