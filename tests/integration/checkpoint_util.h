// Helpers for the checkpoint/restart integration tests (issue 4): reading /proc, finding the
// program inside a sandbox, cleaning up every process a test started, and checking the
// one-line error contract of crbox's tools. Everything here works from the outside, with
// /proc and signals; what a restored program itself verifies, it prints.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"

namespace crbox::test::ckpt {

using namespace std::chrono_literals;

// ---- /proc ---------------------------------------------------------------------------------

// Any /proc/PID entry, zombies included: the pid is taken.
bool pid_exists(pid_t pid);
// The state letter of /proc/PID/stat ('R', 'S', 'T', 't', 'Z', ...), or 0 if gone.
char proc_state(pid_t pid);
pid_t parent_of(pid_t pid);  // -1 if gone
std::string comm_of(pid_t pid);  // "" if gone
// A field of /proc/PID/status ("TracerPid", "NSpid", ...), trimmed; nullopt if absent.
std::optional<std::string> status_field(pid_t pid, const std::string& key);
pid_t tracer_of(pid_t pid);  // TracerPid, -1 if gone
// The NSpid line: the pid in each pid namespace, outermost first.
std::vector<pid_t> ns_pids(pid_t pid);
// The system call a blocked task sits in (first field of /proc/PID/syscall), if any.
std::optional<long> syscall_nr(pid_t pid);
std::vector<pid_t> children_of(pid_t pid);
std::vector<pid_t> descendants_of(pid_t pid);  // breadth first, without pid itself
// The deepest process under (or equal to) root whose comm is `comm` (truncated to 15
// characters as the kernel does), polled until `timeout`; -1 if none.
pid_t find_by_comm(pid_t root, const std::string& comm, std::chrono::milliseconds timeout = 10s);
// A process under root whose innermost NSpid is `inner` and that lives in a pid namespace
// other than ours; -1 if none within `timeout`.
pid_t find_by_inner_pid(pid_t root, pid_t inner, std::chrono::milliseconds timeout = 10s);
// The deepest live descendant of root (a restored process under cr_restart); -1 if none.
pid_t deepest_descendant(pid_t root, std::chrono::milliseconds timeout = 10s);
// A pid nobody uses (searched downward from pid_max).
pid_t unused_pid();
// Some kernel thread (PF_KTHREAD), kthreadd when visible.
pid_t kernel_thread();
bool is_kernel_thread(pid_t pid);

// ---- cleanup -------------------------------------------------------------------------------

// Makes this process a child subreaper: whatever a tool leaves orphaned becomes our child,
// so a test can see it (and kill it).
void become_subreaper();
// SIGKILLs every descendant of pid (deepest first) and then pid itself.
void kill_tree(pid_t pid);
// Kills every descendant of this test process and reaps those that are our children.
void kill_all_descendants();
// Waits until pid is gone entirely (reaping it if it is our child). False on time-out.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout = 10s);
// Our live (non-zombie) children other than `except`; zombies are reaped on the way.
std::vector<pid_t> live_children(const std::vector<pid_t>& except = {});

// Kills registered pids (if they still run the expected program) when it goes out of scope.
class PidGuard {
 public:
  PidGuard() = default;
  ~PidGuard();
  PidGuard(const PidGuard&) = delete;
  PidGuard& operator=(const PidGuard&) = delete;
  void add(pid_t pid) { pids_.push_back(pid); }

 private:
  std::vector<pid_t> pids_;
};

// A fresh directory under /var/tmp (visible inside a sandbox, whose /tmp is private),
// removed when the object goes.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> entries() const;  // names in the directory

 private:
  std::string path_;
};

// Base fixture: subreaper on, everything killed at the end.
class CkptTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
};

// ---- files ---------------------------------------------------------------------------------

bool file_exists(const std::string& path);
off_t file_size(const std::string& path);
unsigned file_mode(const std::string& path);  // permission bits
std::string slurp(const std::string& path);
void spit(const std::string& path, const std::string& data);
// Flips one bit of the byte at `offset`.
void flip_bit(const std::string& path, off_t offset);
// Writes `size` bytes where byte n is 'A' + (n * 7) % 26 (what ckpt_fileoffset expects).
void write_known_file(const std::string& path, size_t size);

// ---- tools ---------------------------------------------------------------------------------

enum class Mode { Plain, Sandbox };
std::string mode_name(Mode m);
// cr_run [--sandbox] PROGRAM args...
std::vector<std::string> cr_run_argv(Mode m, const std::string& prog, const std::vector<std::string>& args);
// Runs crbox's `tool` with args, in cwd.
RunResult crbox(const std::string& tool_name, const std::vector<std::string>& args, const std::string& cwd,
                std::chrono::milliseconds timeout = 120s);
// Success: exit 0 (the failure message shows stderr).
::testing::AssertionResult succeeded(const RunResult& r);
// The failure contract: non-zero exit, exactly one line on stderr, "TOOL: <sentence>".
::testing::AssertionResult failed_with_one_line(const RunResult& r, const std::string& tool_name);
// The target is running as before: alive, not traced (TracerPid 0), not stopped.
::testing::AssertionResult released(pid_t pid);
bool contains_ci(const std::string& hay, const std::string& needle);

// A program started under cr_run: the Child is cr_run; pid is the program's host pid.
struct Launched {
  std::unique_ptr<Child> child;
  pid_t pid = -1;
  std::string pid_line;  // the program's own "pid=..." line
};
// Starts `prog args` under `cr_run [--sandbox]` in cwd, waits for the program's "pid=" line and
// finds its host pid (plain: the pid it printed; sandbox: the deepest process named prog
// under cr_run). pid stays -1 (and the failure is explained in *why) if that fails.
Launched launch(Mode m, const std::string& prog, const std::vector<std::string>& args, const std::string& cwd,
                std::string* why = nullptr);
// Starts `cr_restart extra... FILE` in cwd.
std::unique_ptr<Child> start_restart(const std::string& file, const std::vector<std::string>& extra,
                                     const std::string& cwd);
// The host pid of the restored program under cr_restart: the original's pid for a plain
// restart (checked to be a live descendant of cr_restart), the process at inner pid 2 in a new
// pid namespace for a sandbox. -1 if not found.
pid_t restored_pid(const Child& restart, Mode m, pid_t original, const std::string& prog);
// Kills the program (SIGKILL) and waits until cr_run has exited and the pid is free.
::testing::AssertionResult kill_original(Launched& l);
// The token after "key" up to the next space ("sum=123 pid=4" -> "123" for key "sum=").
std::string token_after(const std::string& line, const std::string& key);

// ---- a child with a writable stdin ---------------------------------------------------------

// A Child with a pipe on its stdin.
class PipedChild : public Child {
 public:
  explicit PipedChild(const std::vector<std::string>& argv, const std::string& cwd = "")
      : Child(argv, cwd, Stdin::pipe) {}
};

// ---- reading program output ----------------------------------------------------------------

// Parses "i = N".
std::optional<long> counter_value(const std::string& line);
// Parses "<key><number>" anywhere in the line, e.g. key "sum=" or "offset=".
std::optional<long long> number_after(const std::string& line, const std::string& key);

// Next "i = N" line's N (other lines are skipped), or nullopt on time-out/EOF.
template <class C>
std::optional<long> next_counter(C& c, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = c.read_line(left);
    if (!line) return std::nullopt;
    if (auto v = counter_value(*line)) return v;
  }
}

// Reads until no line came for `quiet` (or EOF); returns the last counter value seen, or
// `last` if none.
template <class C>
long drain_counter(C& c, long last, std::chrono::milliseconds quiet = 800ms) {
  for (;;) {
    auto line = c.read_line(quiet);
    if (!line) return last;
    if (auto v = counter_value(*line)) last = *v;
  }
}

// Reads lines until one starts with `prefix`; returns it.
template <class C>
std::optional<std::string> next_starting(C& c, const std::string& prefix, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = c.read_line(left);
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line;
  }
}

}  // namespace crbox::test::ckpt
