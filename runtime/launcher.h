// Launching programs: plainly (cr_run without --sandbox) or in a crbox sandbox. cr_run uses both;
// cr_restart uses run_sandbox with its own start_app to recreate a checkpointed tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/model/sandbox_spec.h"
#include "runtime/cgroup.h"

namespace crbox::runtime {

// A running sandbox, as the launcher sees it (host pids).
struct LaunchedSandbox {
  std::string id;
  pid_t init_pid = 0;        // the crbox init, PID 1 inside
  pid_t app_pid = 0;         // the application, host pid
  pid_t app_inner_pid = 0;   // the application, pid inside the sandbox
  CgroupPaths cgroups;
  std::string registry_dir;  // /run/crbox/<id>
};

struct LaunchOptions {
  model::SandboxSpec spec;
  std::string id;  // "" = generate a random one
  // CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets (ns) for the sandbox's time namespace (used only
  // when spec.time_namespace). See namespaces/time.h.
  std::optional<std::pair<int64_t, int64_t>> time_offsets_ns;
  // Runs INSIDE the init (PID 1; mounts, hostname, loopback and time namespace already set up;
  // signals SIGCHLD and forwarded_signals() blocked, which children inherit: call reset_signals()
  // in them) instead of the default fork + exec_sandboxed_app(spec). Returns the inner pid of the
  // application it created, which must be a child of the init. Throwing aborts the launch: the
  // message reaches the launcher, which throws crbox::Error with it.
  std::function<pid_t()> start_app;
  // Runs in the launcher once the init and the application exist, the registry record is written
  // and the cgroups are set, before waiting. If it throws, the sandbox is torn down (all its
  // processes killed, cgroups and registry entry removed) and the exception propagates.
  std::function<void(const LaunchedSandbox&)> on_started;
};

// Creates the sandbox (see DESIGN.md, "run"), waits for it, tears it down, and returns the exit
// status to exit with: the application's exit code, or 128+N when it died from signal N.
// SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGUSR1/2, SIGQUIT and SIGCONT sent to the caller are passed
// to the init, which passes them to the application. With spec.tty the caller relays a new pty
// (its slave the sandbox's controlling terminal) to its own stdin/stdout meanwhile, and SIGWINCH
// resizes the pty instead (runtime/console.h). Meanwhile a thread of its own serves libcr's
// checkpoint requests from inside the sandbox (request_server.h): a program there that asks for
// its own checkpoint gets it taken from outside. The caller must be single-threaded.
// Throws crbox::Error when the sandbox cannot be set up (nothing is left behind then).
int run_sandbox(const LaunchOptions& opts);

// Runs argv in the caller's namespaces: fork, exec, wait, with the same signal forwarding, except
// for signals the kernel sent (si_code SI_KERNEL: terminal keys and window changes), which reach
// the program directly because it shares the caller's process group. Returns the exit status.
// With a nonempty `preload`, the program gets it as LD_PRELOAD (runtime/libcr_preload.h).
int run_plain(const std::vector<std::string>& argv, const std::string& preload = "");

}  // namespace crbox::runtime
