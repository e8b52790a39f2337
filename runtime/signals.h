// The signals crbox passes on to the program it runs, and resetting signal state before exec.
#pragma once

#include <signal.h>

#include <vector>

namespace crbox::runtime {

// SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT.
const std::vector<int>& forwarded_signals();

// forwarded_signals(), plus SIGCHLD when asked.
sigset_t forwarded_set(bool with_sigchld);

// For a child about to exec (or to become the application): every signal unblocked and every
// disposition back to SIG_DFL (the mask survives execve(2); ignored dispositions too).
void reset_signals();
// Only the dispositions back to SIG_DFL; the mask stays as it is.
void reset_signal_handlers();

}  // namespace crbox::runtime
