// The terminal of a sandbox started with --tty (`cr_run --sandbox --tty`, and its restarts): a
// pseudo-terminal (pty(7)) made by the launcher. Its slave becomes the controlling terminal of
// the sandbox's init, the session leader inside, and the program's fds 0, 1 and 2, with the
// program's process group in the foreground; the launcher, outside, relays bytes between its own
// stdin/stdout and the master, like `docker run -t` or script(1).
#pragma once

#include <sys/types.h>

#include <string>

#include "util/fd.h"

namespace crbox::runtime {

struct Pty {
  UniqueFd master;  // kept by the launcher
  UniqueFd slave;   // handed to the init
  std::string slave_path;  // /dev/pts/N
};

// The launcher's side: a new pty whose termios and window size are those of the launcher's own
// terminal (its stdin, else its stdout) when it has one, as script(1) does. Throws crbox::Error.
Pty open_pty();

// In the init, right after setsid(2): `slave` becomes its controlling terminal (TIOCSCTTY,
// tty_ioctl(4)) and the sandbox's console (console_fd()). Throws crbox::Error.
void take_console(int slave);

// The init's descriptor of the sandbox's console, or -1 without --tty. Also valid in the
// processes the init forks, until they close it or exec (it is O_CLOEXEC).
int console_fd();

// In the application's process (a child of the init in a process group of its own), before it
// execs: its group becomes the terminal's foreground group (tcsetpgrp(3)) and the console its
// fds 0, 1 and 2. Throws crbox::Error.
void attach_to_console();

// The launcher's wait with --tty, instead of a plain wait: relays its stdin to `master` and the
// master's output to its stdout until `child` (the init) has exited, and returns its wait status.
//  - A terminal on stdin is put in raw mode meanwhile and restored at the end (the relay takes
//    every signal through a signalfd, so none ends the launcher before that), unless the launcher
//    is not in its foreground process group (a background job, a detached cr_restart): then its
//    stdin is neither read nor changed.
//  - EOF on a stdin that is not a terminal sends the terminal's EOF character (VEOF), as
//    script(1) does, so the program reading in canonical mode sees end of file.
//  - SIGWINCH copies the launcher's window size to the pty (TIOCSWINSZ, which signals the
//    foreground group itself); the other forwarded signals (forwarded_signals()) go to `child`.
// The caller keeps forwarded_set(true) blocked.
int relay_console(int master, pid_t child);

}  // namespace crbox::runtime
