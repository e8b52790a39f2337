// "Nothing lost" for libcr: a checkpointer that dies (SIGKILL here; a crash or the OOM killer are
// the same to the kernel) while a libcr program waits for it must leave that program as it was.
// Its callbacks, blocked in cr_checkpoint() at READY, return promptly with -CR_ETEMPFAIL (the
// checkpoint was cancelled), its critical sections can be entered again, its threads run on,
// untraced and not stopped, and the next checkpoint of it works and restarts. The same when
// cr_checkpoint dies after freezing (during the dump), while a request waits for a critical
// section, and when the program asked for its own checkpoint (cr_request_checkpoint: the
// cr_checkpoint child, or the launcher's one for a sandbox). tests/programs/libcr_abandoned.c
// is the program; runtime/libcr/protocol.h ("If the engine dies") the mechanism.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>

#include <chrono>
#include <filesystem>

#include "checkpoint_util.h"
#include "harness.h"
#include "libcr_util.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

// BLCR's "Temporary error: checkpoint cancelled" (runtime/libcr/blcr_errcodes.h), negated.
constexpr const char* kCancelled = "-2354";
// How soon a program must notice that its checkpointer died.
constexpr auto kPromptly = 2s;

class LibcrAbandoned : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  std::unique_ptr<Child> start_program(const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv{program("libcr_abandoned")};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv, dir.path());
  }
  static pid_t ready_pid(Child& c) {
    auto line = c.wait_for("ready pid=", 10s);
    if (!line) return -1;
    return static_cast<pid_t>(number_after(*line, "ready pid=").value_or(-1));
  }
  // cr_checkpoint --pid PID ARGS..., running while the test goes on.
  std::unique_ptr<Child> start_checkpoint(pid_t pid, const std::vector<std::string>& args) {
    std::vector<std::string> argv{tool("cr_checkpoint"), "--pid", std::to_string(pid)};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv, dir.path());
  }

  ScratchDir dir;
};

// Whether `needle` is in the output, reading more for it if need be (unlike Child::wait_for, it
// also finds what an earlier wait already read past).
bool saw(Child& c, const std::string& needle, std::chrono::milliseconds timeout = 20s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (c.output().find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !c.read_line(left)) return c.output().find(needle) != std::string::npos;
  }
  return true;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) n++;
  return n;
}

// Whether the output comes to hold more than `before` copies of `needle`, reading for it.
bool saw_more(Child& c, const std::string& needle, size_t before, std::chrono::milliseconds timeout = 20s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (count(c.output(), needle) <= before) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !c.read_line(left)) return count(c.output(), needle) > before;
  }
  return true;
}

// Whether `line` is a whole line of the output.
bool line_in(const std::string& out, const std::string& line) {
  return ("\n" + out).find("\n" + line + "\n") != std::string::npos;
}

// The libcr page of pid says its callbacks all wait in cr_checkpoint() (protocol.h's READY).
bool reaches_ready(pid_t pid, std::chrono::milliseconds timeout = 20s) {
  libcr::RemotePage page(pid);
  if (!page.ok()) return false;
  return eventually([&] { return page.state() == CRBOX_STATE_READY; }, timeout);
}

// Every thread of pid runs on: none traced (TracerPid 0: the kernel detaches the tracees of a
// tracer that dies, ptrace(2)), none stopped.
::testing::AssertionResult all_threads_released(pid_t pid) {
  auto r = released(pid);
  if (!r) return r;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    pid_t tid = static_cast<pid_t>(std::stol(e.path().filename().string()));
    if (tracer_of(tid) > 0) return ::testing::AssertionFailure() << "thread " << tid << " is traced by " << tracer_of(tid);
    char s = proc_state(tid);
    if (s == 'T' || s == 't') return ::testing::AssertionFailure() << "thread " << tid << " is stopped (" << s << ")";
  }
  return ::testing::AssertionSuccess();
}

// After the checkpointer died: the callbacks came back cancelled within kPromptly of `killed_at`
// (S only if it had started: `signal_ran`), every thread runs, a critical section can be entered
// and cr_status() is idle, the main loop answers.
void expect_cancelled_and_running(Child& prog, pid_t pid, std::chrono::steady_clock::time_point killed_at,
                                  bool signal_ran = true) {
  ASSERT_TRUE(saw(prog, "\nT rc=", 20s)) << prog.output();
  if (signal_ran) {
    ASSERT_TRUE(saw(prog, "\nS rc=", 20s)) << prog.output();
  }
  auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, kPromptly) << "the callbacks took "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                             << " ms to notice that the checkpointer was gone";
  EXPECT_TRUE(line_in(prog.output(), std::string("T rc=") + kCancelled)) << prog.output();
  if (signal_ran) {
    EXPECT_TRUE(line_in(prog.output(), std::string("S rc=") + kCancelled)) << prog.output();
  } else {
    EXPECT_FALSE(line_in(prog.output(), "S before")) << "no callback starts for a dead checkpointer:\n" << prog.output();
  }
  EXPECT_TRUE(all_threads_released(pid));
  ::kill(pid, SIGUSR2);
  ASSERT_TRUE(saw(prog, "\nalive", 5s)) << "the main loop and its critical section run again:\n" << prog.output();
  EXPECT_TRUE(line_in(prog.output(), "cs ok status=0")) << "CR_STATE_IDLE:\n" << prog.output();
  ::kill(pid, SIGWINCH);
  EXPECT_TRUE(saw(prog, "worker cs ok", 5s)) << prog.output();
}

// The next checkpoint works normally, and its bundle restarts (the restored callbacks see > 0).
void expect_next_checkpoint_works(Child& prog, pid_t pid, const std::string& bundle, const std::string& cwd) {
  size_t t0 = count(prog.output(), "T rc=0\n"), s0 = count(prog.output(), "S rc=0\n");
  auto r = ckpt::crbox("cr_checkpoint", {"--pid", std::to_string(pid), "-f", bundle}, cwd);
  ASSERT_TRUE(succeeded(r));
  ASSERT_TRUE(saw_more(prog, "T rc=0\n", t0, 10s)) << prog.output();
  ASSERT_TRUE(saw_more(prog, "S rc=0\n", s0, 10s)) << prog.output();
  EXPECT_TRUE(all_threads_released(pid));
  prog.kill();
  prog.wait(10s);
  ASSERT_TRUE(wait_gone(pid, 10s));
  // New pids: the machine is busy, and a pid of the original may be taken by now.
  auto rs = start_restart(bundle, {"--no-restore-pid"}, cwd);
  ASSERT_TRUE(saw(*rs, "T rc=1\n", 20s)) << rs->output();
  ASSERT_TRUE(saw(*rs, "S rc=1\n", 10s)) << rs->output();
  pid_t restored = find_by_comm(rs->pid(), "libcr_abandoned", 10s);
  ASSERT_GT(restored, 0);
  ::kill(restored, SIGUSR2);
  EXPECT_TRUE(saw(*rs, "alive", 10s)) << rs->output();
}

// cr_checkpoint SIGKILLed while the callbacks (one thread-context, one signal-context) wait at
// READY: they return -CR_ETEMPFAIL at once, and everything runs on. To hold cr_checkpoint at that
// step, the checkpoint takes a tree of two: the parent is READY while cr_checkpoint still waits
// for its child, whose thread-context callback takes its time (and then returns -CR_ETEMPFAIL too,
// its signal-context one never starting).
TEST_F(LibcrAbandoned, CheckpointerKilledWhileCallbacksWaitAtReady) {
  auto prog = start_program({"forkslow"});
  pid_t pid = ready_pid(*prog);
  ASSERT_GT(pid, 0) << prog->output();
  auto cline = prog->wait_for("child ready pid=", 10s);
  ASSERT_TRUE(cline) << prog->output();
  pid_t child = static_cast<pid_t>(number_after(*cline, "child ready pid=").value_or(-1));
  std::vector<std::string> argv{tool("cr_checkpoint"), "--tree", std::to_string(pid), "-f", dir / "ctx"};
  auto ck = std::make_unique<Child>(argv, dir.path());
  ASSERT_TRUE(saw(*prog, "child T before")) << prog->output();
  ASSERT_TRUE(reaches_ready(pid)) << prog->output();
  ASSERT_TRUE(saw(*prog, "\nS before")) << prog->output();
  EXPECT_TRUE(released(pid)) << "nothing is frozen yet";
  ck->kill(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  ck->wait(10s);
  expect_cancelled_and_running(*prog, pid, killed_at);
  killed_at = std::chrono::steady_clock::now();
  ::kill(child, SIGPWR);  // the child's T goes on to its cr_checkpoint()
  ASSERT_TRUE(saw(*prog, "child T rc=", 10s)) << prog->output();
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, kPromptly);
  EXPECT_TRUE(line_in(prog->output(), std::string("child T rc=") + kCancelled)) << prog->output();
  EXPECT_FALSE(line_in(prog->output(), "child S before")) << prog->output();
  EXPECT_TRUE(all_threads_released(child));
  ::kill(child, SIGUSR2);
  ASSERT_TRUE(saw(*prog, "child alive", 5s)) << prog->output();
  EXPECT_FALSE(file_exists(dir / "ctx")) << "nothing is left where the bundle was to be";

  // The next checkpoint works, and restarts (of the parent alone: cr_restart --no-restore-pid
  // takes one process, and new pids keep the restart clear of pids reused meanwhile).
  ::kill(child, SIGKILL);
  ASSERT_TRUE(eventually([child] { return !process_alive(child); }, 10s));  // a zombie of the parent
  expect_next_checkpoint_works(*prog, pid, dir / "next", dir.path());
}

// cr_checkpoint SIGKILLed after it froze the program, while it writes the bundle (to a pipe nobody
// reads, so it blocks there): the kernel detaches the threads, and the callbacks learn that the
// checkpoint was cancelled.
TEST_F(LibcrAbandoned, CheckpointerKilledDuringTheDump) {
  auto prog = start_program();
  pid_t pid = ready_pid(*prog);
  ASSERT_GT(pid, 0) << prog->output();
  auto ck = start_checkpoint(pid, {"-f", "-"});  // its stdout is a pipe the test does not read
  pid_t ckpid = ck->pid();
  // Frozen by it (TracerPid), and one of its threads blocked writing the bundle.
  auto writing = [ckpid] {
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(ckpid) + "/task")) {
      auto nr = syscall_nr(static_cast<pid_t>(std::stol(e.path().filename().string())));
      if (nr && (*nr == SYS_write || *nr == SYS_writev || *nr == SYS_pwrite64)) return true;
    }
    return false;
  };
  bool in_dump = eventually([&] { return tracer_of(pid) == ckpid && writing(); }, 20s);
  ASSERT_TRUE(in_dump) << "cr_checkpoint did not block writing the bundle:\n" << prog->output();
  EXPECT_EQ(prog->output().find(" rc="), std::string::npos) << "the callbacks wait while the image is taken";
  ck->kill(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  ck->wait(10s);
  expect_cancelled_and_running(*prog, pid, killed_at);
  expect_next_checkpoint_works(*prog, pid, dir / "next", dir.path());
}

// cr_checkpoint SIGKILLed while its request waits for a critical section to be left: libcr
// opens the gate again (another thread's cr_enter_cs goes in while the first still holds its
// section), and the abandoned request never runs the callbacks.
TEST_F(LibcrAbandoned, CheckpointerKilledWhileWaitingForACriticalSection) {
  auto prog = start_program();
  pid_t pid = ready_pid(*prog);
  ASSERT_GT(pid, 0) << prog->output();
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(saw(*prog, "held")) << prog->output();
  auto ck = start_checkpoint(pid, {"-f", dir / "ctx"});
  ASSERT_TRUE(saw(*prog, "pending")) << prog->output();
  ck->kill(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  ck->wait(10s);
  ::kill(pid, SIGWINCH);
  ASSERT_TRUE(saw(*prog, "worker cs ok", 10s)) << prog->output();
  auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, kPromptly) << "critical sections stayed closed for "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(saw(*prog, "released")) << prog->output();
  ::kill(pid, SIGUSR2);
  ASSERT_TRUE(saw(*prog, "alive", 5s)) << prog->output();
  EXPECT_EQ(prog->output().find("T before"), std::string::npos) << "the abandoned request ran callbacks:\n"
                                                                << prog->output();
  EXPECT_TRUE(all_threads_released(pid));
  expect_next_checkpoint_works(*prog, pid, dir / "next", dir.path());
  EXPECT_EQ(count(prog->output(), "T before"), 1u) << prog->output();
}

// A program that asked for its own checkpoint (cr_request_checkpoint): the cr_checkpoint that
// serves it — its own child, or for a sandbox the one its launcher runs outside — is SIGKILLed
// while the thread-context callback runs (nothing is frozen yet; in a sandbox a kill that lands
// while cr_checkpoint freezes the sandbox's cgroup is another matter, see docs/libcr.md). The
// callback's cr_checkpoint() returns -CR_ETEMPFAIL, the signal-context one never starts, the
// request fails with EIO (cr_checkpoint ended without an exit status), and the next request
// works and restarts.
class LibcrAbandonedSelf : public LibcrAbandoned, public ::testing::WithParamInterface<Mode> {};

TEST_P(LibcrAbandonedSelf, RequestersCheckpointerKilled) {
  Mode m = GetParam();
  std::string why;
  auto orig = launch(m, "libcr_abandoned", {"slow", dir / "self.ctx"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  Child& prog = *orig.child;
  ::kill(orig.pid, SIGUSR1);
  ASSERT_TRUE(saw(prog, "T before")) << prog.output();
  pid_t ckpid = find_by_comm(prog.pid(), "cr_checkpoint", 5s);
  ASSERT_GT(ckpid, 0) << "no cr_checkpoint under the launcher";
  {
    libcr::RemotePage page(orig.pid);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page.state(), (uint32_t)CRBOX_STATE_RUNNING);
  }
  ::kill(ckpid, SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(saw(prog, "request failed", 10s)) << prog.output();
  EXPECT_NE(prog.output().find("request failed errno=" + std::to_string(EIO) + "\n"), std::string::npos)
      << prog.output();
  ::kill(orig.pid, SIGPWR);  // T goes on to its cr_checkpoint()
  expect_cancelled_and_running(prog, orig.pid, killed_at, /*signal_ran=*/false);

  size_t befores = count(prog.output(), "T before");
  ::kill(orig.pid, SIGUSR1);
  ASSERT_TRUE(saw_more(prog, "T before", befores)) << prog.output();
  ::kill(orig.pid, SIGPWR);
  ASSERT_TRUE(saw(prog, "request ok", 30s)) << prog.output();
  ASSERT_TRUE(saw(prog, "T rc=0\n", 10s)) << prog.output();
  ASSERT_TRUE(saw(prog, "S rc=0\n", 10s)) << prog.output();
  ASSERT_TRUE(kill_original(orig));
  ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));
  auto rs = start_restart(dir / "self.ctx", m == Mode::Plain ? std::vector<std::string>{"--no-restore-pid"}
                                                             : std::vector<std::string>{},
                          dir.path());
  ASSERT_TRUE(saw(*rs, "request restarted", 20s)) << rs->output();
  EXPECT_TRUE(saw(*rs, "T rc=1\n", 10s)) << rs->output();
  EXPECT_TRUE(saw(*rs, "S rc=1\n", 10s)) << rs->output();
}

INSTANTIATE_TEST_SUITE_P(Modes, LibcrAbandonedSelf, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const ::testing::TestParamInfo<Mode>& i) { return mode_name(i.param); });

// Two checkpoints of one process at once: the second finds the first's engine mutex held and
// fails at once as a temporary failure, touching nothing; the first goes on and succeeds.
TEST_F(LibcrAbandoned, ASecondCheckpointAtOnceIsRefused) {
  auto prog = start_program({"slow"});
  pid_t pid = ready_pid(*prog);
  ASSERT_GT(pid, 0) << prog->output();
  auto first = start_checkpoint(pid, {"-f", dir / "first"});
  ASSERT_TRUE(saw(*prog, "T before")) << prog->output();
  auto r = ckpt::crbox("cr_checkpoint", {"--pid", std::to_string(pid), "-f", dir / "second"}, dir.path());
  EXPECT_EQ(r.status, 7) << "a temporary failure (docs/cli/cr_checkpoint.md): " << r.err;
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("another cr_checkpoint"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(dir / "second"));
  EXPECT_EQ(count(prog->output(), "T before"), 1u) << prog->output();
  ::kill(pid, SIGPWR);
  auto st = first->wait(30s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 0) << first->output();
  ASSERT_TRUE(saw(*prog, "\nT rc=0\n", 10s)) << prog->output();
  ASSERT_TRUE(saw(*prog, "\nS rc=0\n", 10s)) << prog->output();
  EXPECT_TRUE(file_exists(dir / "first"));
  EXPECT_TRUE(all_threads_released(pid));
}

// A libcr page of another protocol version is refused at once, with one sentence, and the
// program is not touched.
TEST_F(LibcrAbandoned, AnotherProtocolVersionFailsClearly) {
  auto prog = start_program();
  pid_t pid = ready_pid(*prog);
  ASSERT_GT(pid, 0) << prog->output();
  libcr::RemotePage page(pid);
  ASSERT_TRUE(page.ok());
  const uint32_t ours = page->version;
  __atomic_store_n(&page->version, ours - 1, __ATOMIC_SEQ_CST);
  auto t0 = std::chrono::steady_clock::now();
  auto r = ckpt::crbox("cr_checkpoint", {"--pid", std::to_string(pid), "-f", dir / "ctx"}, dir.path());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("version " + std::to_string(ours - 1)), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  EXPECT_EQ(prog->output().find("T before"), std::string::npos) << prog->output();
  EXPECT_TRUE(all_threads_released(pid));
  __atomic_store_n(&page->version, ours, __ATOMIC_SEQ_CST);
  ::kill(pid, SIGUSR2);
  EXPECT_TRUE(saw(*prog, "alive", 5s)) << prog->output();
}

}  // namespace
