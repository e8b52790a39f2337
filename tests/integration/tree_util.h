// Helpers for the whole-tree and whole-sandbox tests (issue 5): launching a tree program and
// finding its root, reading a sandbox's processes as its own pid namespace sees them (through
// /proc/<init>/root/proc), comparing two such views, and the checkpoint/restart steps the
// tests share. Builds on checkpoint_util (issue 4), which it does not change.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "checkpoint_util.h"

namespace crbox::test::tree {

using namespace ckpt;

// ---- launching -------------------------------------------------------------------------------

// `argv` under `cr_run [--sandbox]` in cwd; waits for a line containing `needle`, then finds the
// root: the pid printed after "pid=" (plain), or the host pid of inner pid 2 (sandbox). pid
// stays -1 (with the reason in *why) on failure.
Launched launch_argv(Mode m, const std::vector<std::string>& argv, const std::string& needle, const std::string& cwd,
                     std::string* why);
// A test program (tests/programs/<prog>) that prints "pid=<pid>" first.
Launched launch_tree(Mode m, const std::string& prog, const std::vector<std::string>& args, const std::string& cwd,
                     std::string* why);

// The host pid of the process at `inner` pid in a pid namespace below `launcher` (cr_run or
// cr_restart): 1 is the sandbox's init, 2 its program. -1 if none within the time-out.
pid_t inner_host_pid(pid_t launcher, pid_t inner, std::chrono::milliseconds timeout = 10s);

// ---- what a sandbox looks like from inside ---------------------------------------------------

struct InnerProc {
  pid_t host = -1;  // not compared: it differs between the original and a restored copy
  pid_t inner = -1, ppid = -1, pgid = -1, sid = -1;
  char state = 0;
  std::string comm;
  std::vector<pid_t> tids;  // inner thread ids, sorted
  pid_t tracer = -1;        // TracerPid (not compared)
};
// Inner pid -> process, for every process of the sandbox whose init has host pid `init_host`,
// init itself excluded. Pids, pgids and sids are the ones the sandbox sees.
using View = std::map<pid_t, InnerProc>;
View sandbox_view(pid_t init_host);
// Polls until the view has `n` processes, all of them running (zombies aside: untraced and
// not stopped, i.e. a restore has finished with them), or the time-out; returns the last view.
View wait_view(pid_t init_host, size_t n, std::chrono::milliseconds timeout = 15s);
std::string describe(const View& v);
// Same inner pids, each with the same parent, process group, session, name, thread ids and
// zombie-ness.
::testing::AssertionResult same_view(const View& want, const View& got);
// Every thread of host process `pid` is untraced and not stopped.
::testing::AssertionResult threads_released(pid_t pid);
// Every live process of the view is running untraced (zombies are skipped).
::testing::AssertionResult all_released(const View& v);

// ---- plain (unsandboxed) trees ---------------------------------------------------------------

// root and its descendants, by host pid (pgid/sid are recorded but not compared: a plain
// restart joins cr_restart's process group and session).
View host_tree(pid_t root);
// Like wait_view, for host_tree(root).
View wait_tree(pid_t root, size_t n, std::chrono::milliseconds timeout = 15s);
// Same pids, each with the same parent (the root's own parent excepted), name, thread ids and
// zombie-ness.
::testing::AssertionResult same_tree(const View& want, const View& got, pid_t root);
// Waits until every pid of `v` is gone (reaping those that are our children).
::testing::AssertionResult all_gone(const View& v, std::chrono::milliseconds timeout = 15s);

// ---- tools -----------------------------------------------------------------------------------

// cr_checkpoint [scope...] PID -f FILE [extra...] in cwd.
RunResult checkpoint(pid_t pid, const std::string& file, const std::vector<std::string>& extra, const std::string& cwd);
// cr_restart FILE in cwd, and the restored root: for a sandbox image the host pids of the new
// init (inner 1) and program (inner 2); for a plain image `plain_root` once it is a live
// descendant of cr_restart. root stays -1 (reason in *why) if not found.
struct Restored {
  std::unique_ptr<Child> child;
  pid_t init = -1, root = -1;
};
Restored restart(const std::string& file, Mode m, pid_t plain_root, const std::string& cwd, std::string* why);
// Kills cr_restart's (or cr_run's) process group and its sandbox, and waits for it.
void stop_launcher(Child& c);
// The absolute path of a python3 interpreter.
std::string python3();

// ---- output ----------------------------------------------------------------------------------

// Reads lines until one starts with `prefix` and also contains `needle`; nullopt on time-out.
std::optional<std::string> next_with(Child& c, const std::string& prefix, const std::string& needle,
                                     std::chrono::milliseconds timeout = 20s);
// Sends SIGUSR1 to `pid` and returns the next line starting with `prefix`.
std::optional<std::string> ask(Child& c, pid_t pid, const std::string& prefix, std::chrono::milliseconds timeout = 15s);
// Sends SIGUSR1 to `pid` and collects `n` lines starting with `prefix` (others skipped).
std::vector<std::string> ask_lines(Child& c, pid_t pid, const std::string& prefix, size_t n,
                                   std::chrono::milliseconds timeout = 15s);

}  // namespace crbox::test::tree
