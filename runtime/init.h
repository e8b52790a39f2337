// The crbox init: PID 1 of a sandbox's pid namespace. Internal to the launcher.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "runtime/launcher.h"

namespace crbox::runtime {

// One message from the init to the launcher on the report pipe. Fixed-size and smaller than
// PIPE_BUF, so each write(2) is atomic (pipe(7)).
struct InitReport {
  enum Kind : int32_t { kError = 1, kAppStarted = 2 };
  int32_t kind = 0;
  int32_t app_inner_pid = 0;
  char message[504] = {};
};

// Launcher -> init bytes on the control pipe.
constexpr char kInitGo = 'G';   // the init is in its cgroups: set the sandbox up
constexpr char kInitAck = 'A';  // the launcher has found the application and registered it

struct InitChannels {
  int control_read = -1;  // from the launcher
  int report_write = -1;  // to the launcher
  // Descriptors of the launcher the init must not keep (they are O_CLOEXEC, but the init never
  // execs): the other pipe ends, the registry lock and the master of the pty (--tty).
  int close_fds[4] = {-1, -1, -1, -1};
  // --tty: the slave of the launcher's pty, which the init makes its controlling terminal and
  // keeps (console.h); -1 without.
  int console = -1;
  // The launcher's socket for libcr's requests (request_server.h): the init binds it inside the
  // sandbox and closes its copy before any process of the sandbox exists; -1 without.
  int request_socket = -1;
};

// The body of the init process. Never returns.
//  - waits for kInitGo (EOF: the launcher died, exit);
//  - becomes a session leader (the sandbox's sessions and groups then all live inside it), with
//    the pty's slave as its controlling terminal when ch.console is set (--tty);
//  - sets up mounts, hostname, loopback (--net=none), time namespace, and binds libcr's request
//    socket at CRBOX_LIBCR_SOCKET_PATH (runtime/libcr/request_protocol.h);
//  - starts the application (opts.start_app, or fork + exec_sandboxed_app in its own process
//    group, in the terminal's foreground with the terminal on fds 0-2 under --tty), reports its
//    inner pid, waits for kInitAck;
//  - then reaps every child (orphans are re-parented to it: pid_namespaces(7)), forwards
//    forwarded_signals() to the application, and exits with the application's status (its exit
//    code, or 128+N when it died from signal N). Its exit makes the kernel SIGKILL everything
//    left in the namespace.
// pid_namespaces(7): PID 1 gets only the signals it has handlers for, even from its parent
// namespace (except SIGKILL/SIGSTOP from there), so the init installs handlers, keeps the signals
// blocked and takes them with sigwaitinfo(2).
[[noreturn]] void run_init(const LaunchOptions& opts, const InitChannels& ch);

}  // namespace crbox::runtime
