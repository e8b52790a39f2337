// The terminal of a sandbox started with --tty, given back: the restarted sandbox has a new pty
// (its launcher, cr_restart, made it and relays it to its own terminal: runtime/console.h), whose
// slave its new init holds as its controlling terminal. The init sets the saved termios and
// window size on it before any process exists; each fd of kind console becomes a new open of
// that slave; and the process that leads the saved foreground group puts its group back in the
// foreground as soon as it has made it.
//
// How the slave reaches the processes: the new init holds it (runtime::console_fd()), and every
// new process is a copy of the init or of another new process, made before any of them closes
// what the image does not hold (tree.cc), so each still has that descriptor and the saved state
// (a copy of the init's memory) while it takes its fds.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "checkpoint/restore/apply.h"
#include "runtime/console.h"
#include "util/error.h"

namespace crbox::restore {

namespace {

std::optional<model::Console> g_saved;  // set in the init by restore_console_state

}  // namespace

void restore_console_state(const model::Console& c) {
  int fd = runtime::console_fd();
  if (fd < 0) throw Error("the image's sandbox had a terminal (--tty) but the new sandbox has none");
  termios t{};
  if (tcgetattr(fd, &t) != 0) throw_errno("reading the new terminal's settings (tcgetattr)");
  t.c_iflag = c.iflag;
  t.c_oflag = c.oflag;
  t.c_cflag = c.cflag;
  t.c_lflag = c.lflag;
  t.c_line = c.line;
  std::memcpy(t.c_cc, c.cc.data(), std::min(c.cc.size(), sizeof t.c_cc));
  cfsetispeed(&t, c.ispeed);
  cfsetospeed(&t, c.ospeed);
  // The init is in the terminal's foreground group still (TIOCSCTTY made it so), so this neither
  // stops it nor waits for a reader (TCSANOW: nothing is queued yet).
  if (tcsetattr(fd, TCSANOW, &t) != 0) throw_errno("setting the saved settings on the new terminal (tcsetattr)");
  // The saved size; cr_restart's launcher then sets its own terminal's size, if it has one, as
  // the restored processes start, which they see as a resize (SIGWINCH), as if their terminal had
  // been resized while they were away.
  winsize ws{};
  ws.ws_row = c.rows;
  ws.ws_col = c.cols;
  ws.ws_xpixel = c.xpixel;
  ws.ws_ypixel = c.ypixel;
  winsize now{};
  bool resized = ioctl(fd, TIOCGWINSZ, &now) == 0 && std::memcmp(&now, &ws, sizeof ws) != 0;
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) throw_errno("setting the saved window size on the new terminal (TIOCSWINSZ)");
  if (resized) {
    // A new size signals the foreground group (tty_ioctl(4)), here the init's own, which keeps
    // SIGWINCH blocked and would pass it on to the program: it was not the program's resize, so
    // take it off the init's queue (sigtimedwait(2) with a zero timeout never waits).
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    timespec zero{0, 0};
    sigtimedwait(&winch, nullptr, &zero);
  }
  g_saved = c;
}

int open_console(const model::Fd& f) {
  const std::string what = "fd " + std::to_string(f.fd);
  int console = runtime::console_fd();
  if (console < 0) throw Error(what + ": the sandbox's terminal cannot be given back: the new sandbox has none (--tty)");
  // A new open file description of the new slave with the image's access mode and status flags:
  // opening /proc/self/fd/N opens the file it names again (proc(5)), here the pty slave.
  int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  std::string link = "/proc/self/fd/" + std::to_string(console);
  int fd = open(link.c_str(), flags | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) throw_errno(what + ": opening the sandbox's new terminal");
  return fd;
}

void take_console_foreground(const model::Process& p) {
  // Only the leader of the saved foreground group, once it has made that group (its pgid is its
  // pid); the init's own group (1) is the foreground already.
  if (!g_saved || p.pid == 1 || g_saved->foreground != p.pid || p.pgid != p.pid) return;
  int console = runtime::console_fd();
  if (console < 0) return;
  // Every signal is blocked while a process is made, SIGTTOU among them, so a process of a
  // background group may set the foreground group (tty_ioctl(4), TIOCSPGRP).
  if (tcsetpgrp(console, p.pid) != 0)
    throw_errno("putting process group " + std::to_string(p.pid) + " in the foreground of the sandbox's terminal (tcsetpgrp)");
}

}  // namespace crbox::restore
