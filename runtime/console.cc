#include "runtime/console.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "runtime/signals.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::runtime {

namespace {

int g_console = -1;  // the init's descriptor of the console (take_console)

// The launcher's terminal: its stdin, else its stdout; -1 when it has none.
int own_terminal() {
  if (::isatty(STDIN_FILENO)) return STDIN_FILENO;
  if (::isatty(STDOUT_FILENO)) return STDOUT_FILENO;
  return -1;
}

// Copies the window size of `from` (a terminal) to the pty whose master is `to`. On a pty,
// TIOCSWINSZ sends SIGWINCH to the foreground process group when the size changes (tty_ioctl(4)).
void copy_window_size(int from, int to) {
  winsize ws{};
  if (from >= 0 && ::ioctl(from, TIOCGWINSZ, &ws) == 0 && (ws.ws_row || ws.ws_col)) ::ioctl(to, TIOCSWINSZ, &ws);
}

// A terminal in raw mode for as long as the object lives (cfmakeraw(3)): bytes pass through to
// the pty untouched, so the sandbox's own line discipline does the echo, editing and signal keys.
class RawMode {
 public:
  explicit RawMode(int fd) {
    if (fd < 0 || ::tcgetattr(fd, &saved_) != 0) return;
    fd_ = fd;
    apply();
  }
  ~RawMode() {
    if (fd_ >= 0) set(saved_);
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  // Again, after the launcher was stopped and continued (a shell resets the terminal meanwhile).
  void apply() {
    if (fd_ < 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    set(raw);
  }

 private:
  // tcsetattr(3) from a background process group would stop us with SIGTTOU, unless that signal
  // is blocked (tty_ioctl(4)): the settings go back even if a shell moved us to the background.
  void set(const termios& t) {
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    ::sigprocmask(SIG_BLOCK, &ttou, &old);
    ::tcsetattr(fd_, TCSADRAIN, &t);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
  }
  int fd_ = -1;
  termios saved_{};
};

// SIGPIPE ignored while relaying: a closed stdout must not kill the launcher (and leave its
// terminal raw); the output is then dropped instead.
class IgnorePipe {
 public:
  IgnorePipe() {
    struct sigaction sa = {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, &old_);
  }
  ~IgnorePipe() { ::sigaction(SIGPIPE, &old_, nullptr); }
  IgnorePipe(const IgnorePipe&) = delete;
  IgnorePipe& operator=(const IgnorePipe&) = delete;

 private:
  struct sigaction old_ = {};
};

}  // namespace

Pty open_pty() {
  Pty p;
  // pty(7): the master from /dev/ptmx; grantpt/unlockpt make the slave openable; TIOCGPTPEER
  // (ioctl_tty(2), Linux 4.13) opens the slave from the master, with no lookup by path.
  p.master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master) throw_errno("cannot make a pseudo-terminal (posix_openpt)");
  if (::grantpt(p.master.get()) != 0) throw_errno("cannot make a pseudo-terminal (grantpt)");
  if (::unlockpt(p.master.get()) != 0) throw_errno("cannot make a pseudo-terminal (unlockpt)");
  char name[128] = {};
  if (::ptsname_r(p.master.get(), name, sizeof name) == 0) p.slave_path = name;
  // TIOCGPTPEER keeps O_CLOEXEC in the open file description itself, so /proc/PID/fdinfo shows it
  // on every descriptor sharing it (the program's fds 0-2 among them); the checkpoint asks each
  // process for the real flag (dump/files.cc confirm_cloexec), and the console tests check it.
  p.slave.reset(::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.slave) throw_errno("cannot open the pseudo-terminal's slave (TIOCGPTPEER)");
  int term = own_terminal();
  termios t{};
  if (term >= 0 && ::tcgetattr(term, &t) == 0) ::tcsetattr(p.slave.get(), TCSANOW, &t);
  copy_window_size(term, p.master.get());
  return p;
}

void take_console(int slave) {
  // tty_ioctl(4): TIOCSCTTY makes the terminal the caller's controlling terminal; the caller must
  // be a session leader without one (the init has just called setsid(2)).
  if (::ioctl(slave, TIOCSCTTY, 0) != 0) throw_errno("cannot make the pseudo-terminal the sandbox's controlling terminal (TIOCSCTTY)");
  g_console = slave;
}

int console_fd() { return g_console; }

void attach_to_console() {
  if (g_console < 0) throw Error("the sandbox has no terminal");
  // tcsetpgrp(3) from a background process group sends it SIGTTOU unless that signal is blocked
  // or ignored (tty_ioctl(4), TIOCSPGRP); the caller has just made a group of its own.
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  ::sigprocmask(SIG_BLOCK, &ttou, &old);
  int r = ::tcsetpgrp(g_console, ::getpgrp());
  int err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) throw_errno("cannot put the program in the terminal's foreground (tcsetpgrp)", err);
  for (int fd = 0; fd <= 2; fd++) {
    if (::dup2(g_console, fd) < 0) throw_errno("cannot give the terminal to the program (dup2)");
  }
}

int relay_console(int master, pid_t child) {
  const bool stdin_tty = ::isatty(STDIN_FILENO);
  // A terminal we are not in the foreground of is someone else's to read (tcgetpgrp(3) fails for
  // a terminal that is not our controlling one: a detached cr_restart has none).
  auto foreground = [] { return ::tcgetpgrp(STDIN_FILENO) == ::getpgrp(); };
  bool in_open = !stdin_tty || foreground();  // stdin is read (and, a terminal, is raw)
  bool in_eof = false;
  const int term = own_terminal();
  IgnorePipe no_sigpipe;
  std::optional<RawMode> raw;
  if (stdin_tty && in_open) raw.emplace(STDIN_FILENO);

  sigset_t set = forwarded_set(true);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd) throw_errno("signalfd");
  int fl = ::fcntl(master, F_GETFL);
  if (fl < 0 || ::fcntl(master, F_SETFL, fl | O_NONBLOCK) != 0) throw_errno("making the pseudo-terminal non-blocking");
  copy_window_size(term, master);

  bool out_open = true;     // our stdout still takes output
  bool master_open = true;  // the pty still has a slave open somewhere
  std::string to_master;    // input read, not yet written to the pty
  char last_sent = '\n';
  char buf[65536];

  auto emit = [&](const char* p, size_t n) {
    if (!out_open) return;
    try {
      write_all(STDOUT_FILENO, p, n, "standard output");
    } catch (const Error&) {
      out_open = false;  // EPIPE, EIO: keep draining the pty so the program never blocks on it
    }
  };
  // Reads what the pty has for us now. False once no slave is open any more (read(2) gives EIO
  // then, after the last bytes: n_tty hands over what was written before the slaves closed).
  auto pump_output = [&]() -> bool {
    for (;;) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) {
        emit(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      return false;
    }
  };
  auto child_status = [&]() -> std::optional<int> {
    int st = 0;
    pid_t p = ::waitpid(child, &st, WNOHANG);
    if (p == child) return st;
    return std::nullopt;
  };

  std::optional<int> status = child_status();
  while (!status) {
    pollfd pfd[3] = {};
    pfd[0] = {sigfd.get(), POLLIN, 0};
    pfd[1] = {master_open ? master : -1, static_cast<short>(POLLIN | (to_master.empty() ? 0 : POLLOUT)), 0};
    pfd[2] = {in_open && to_master.size() < sizeof buf ? STDIN_FILENO : -1, POLLIN, 0};
    if (::poll(pfd, 3, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (pfd[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sigfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) {
          status = child_status();
        } else if (sig == SIGWINCH) {
          copy_window_size(term, master);
        } else {
          if (sig == SIGCONT && stdin_tty && !in_eof) {
            // Continued, maybe in the foreground again, maybe moved to the background (bg).
            in_open = foreground();
            if (in_open && raw) raw->apply();
            if (in_open && !raw) raw.emplace(STDIN_FILENO);
          }
          ::kill(child, sig);
        }
      }
      if (status) break;
    }
    if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) master_open = pump_output();
    if (master_open && (pfd[1].revents & POLLOUT) && !to_master.empty()) {
      ssize_t n = ::write(master, to_master.data(), to_master.size());
      if (n > 0) {
        last_sent = to_master[static_cast<size_t>(n) - 1];
        to_master.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        to_master.clear();  // EIO: nobody holds the slave any more
      }
    }
    if (!master_open) to_master.clear();
    if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        to_master.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        in_open = false;
        in_eof = true;
        if (!stdin_tty && master_open) {
          // End of input: the terminal's EOF character, as typed (termios(3), VEOF). In canonical
          // mode a pending partial line needs one to be delivered and another to read as EOF.
          termios t{};
          if (::tcgetattr(master, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE) {
            char last = to_master.empty() ? last_sent : to_master.back();
            if ((t.c_lflag & ICANON) && last != '\n') to_master += static_cast<char>(t.c_cc[VEOF]);
            to_master += static_cast<char>(t.c_cc[VEOF]);
          }
        }
      }
    }
  }
  // The init has exited, so the kernel has ended every process of the sandbox (pid_namespaces(7)):
  // what they wrote is still in the pty. Hand it over.
  if (master_open) pump_output();
  return *status;
}

}  // namespace crbox::runtime
