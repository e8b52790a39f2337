// Issue 4: the seed's counter checkpointed and restarted, under cr_run and cr_run --sandbox.
// Every check of continuity is made on what the restored program prints itself.
#include <signal.h>
#include <unistd.h>

#include "checkpoint_util.h"

namespace crbox::test::ckpt {
namespace {

class CheckpointCounter : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// Reads counter lines until the value reaches `target`; returns the last value read.
std::optional<long> counter_until(Child& c, long target) {
  for (;;) {
    auto v = next_counter(c, 20s);
    if (!v || *v >= target) return v;
  }
}

// The pid the restored program reports for itself when asked (SIGUSR1 -> "pid=N").
std::optional<long long> ask_pid(Child& c, pid_t host_pid) {
  ::kill(host_pid, SIGUSR1);
  auto line = c.wait_for("pid=", 10s);
  if (!line) return std::nullopt;
  return number_after(*line, "pid=");
}

// Checkpoint at i~3 with the process running on, kill it, restart: the restored program's
// first line is the next value (never 0, never a regression), then it keeps counting, with
// the pid expected (plain: the same host pid; sandbox: 2 inside a new pid namespace), named
// as before, and cr_restart exits with the program's status.
TEST_P(CheckpointCounter, CheckpointKillRestartContinues) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_counter", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  if (mode == Mode::Plain) {
    EXPECT_EQ(number_after(orig.pid_line, "pid="), orig.pid);
  } else {
    EXPECT_EQ(orig.pid_line, "pid=2");
    auto ns = ns_pids(orig.pid);
    ASSERT_GE(ns.size(), 2u) << "the sandboxed program is not in its own pid namespace";
    EXPECT_EQ(ns.back(), 2);
  }
  auto before = counter_until(*orig.child, 3);
  ASSERT_TRUE(before) << orig.child->output();

  std::string file = dir / "ctx";
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file}, dir.path());
  ASSERT_TRUE(succeeded(r));
  ASSERT_TRUE(file_exists(file));
  EXPECT_EQ(file_mode(file), 0600u) << "bundles are written with mode 0600";
  EXPECT_TRUE(released(orig.pid));
  // The original runs on, undisturbed: its next values follow.
  auto n1 = next_counter(*orig.child);
  ASSERT_TRUE(n1);
  EXPECT_GT(*n1, *before);
  auto n2 = next_counter(*orig.child);
  ASSERT_TRUE(n2);
  EXPECT_EQ(*n2, *n1 + 1);

  ASSERT_TRUE(kill_original(orig));
  long last_orig = drain_counter(*orig.child, *n2, 300ms);

  auto rs = start_restart(file, {}, dir.path());
  auto first = next_counter(*rs, 30s);
  ASSERT_TRUE(first) << "no output from the restored program: " << rs->output();
  EXPECT_GT(*first, *before) << "the restored counter went back (it was at " << *before << " before the checkpoint)";
  EXPECT_LE(*first, last_orig + 1) << "the restored counter is ahead of the original";
  long prev = *first;
  for (int k = 0; k < 3; k++) {
    auto v = next_counter(*rs);
    ASSERT_TRUE(v) << rs->output();
    EXPECT_EQ(*v, prev + 1) << "the restored counter does not count by one";
    prev = *v;
  }
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ckpt_counter");
  ASSERT_GT(rp, 0) << "cannot find the restored process";
  PidGuard guard;
  guard.add(rp);
  EXPECT_EQ(comm_of(rp), "ckpt_counter") << "the restored process's name (comm) should be the program's";
  EXPECT_TRUE(released(rp));
  auto asked = ask_pid(*rs, rp);
  ASSERT_TRUE(asked) << rs->output();
  if (mode == Mode::Plain) {
    EXPECT_EQ(*asked, orig.pid) << "unsandboxed, the restored process keeps its pid";
  } else {
    EXPECT_EQ(*asked, 2) << "sandboxed, the restored process is pid 2 inside";
    auto ns = ns_pids(rp);
    ASSERT_GE(ns.size(), 2u);
    EXPECT_EQ(ns.back(), 2);
  }
  // cr_restart exits with the process's status.
  ::kill(rp, SIGKILL);
  auto st = rs->wait(20s);
  ASSERT_TRUE(st) << "cr_restart did not exit after the restored process was killed";
  EXPECT_EQ(*st, 128 + SIGKILL);
}

// --kill: the image is exactly where the process died, so the restored first line is exactly
// the original's last + 1; the program then runs to its end and cr_restart exits with the
// program's own exit code.
TEST_P(CheckpointCounter, KillAfterCheckpointIsExactAndExitStatusPropagates) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_counter", {"200", "12", "42"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(counter_until(*orig.child, 3));
  std::string file = dir / "ctx";
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file, "--kill"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  ASSERT_TRUE(orig.child->wait(20s)) << "--kill did not end the process";
  ASSERT_TRUE(wait_gone(orig.pid));
  long last = drain_counter(*orig.child, 3, 300ms);
  ASSERT_LT(last, 11) << "the counter finished before the checkpoint";

  auto rs = start_restart(file, {}, dir.path());
  for (long want = last + 1; want < 12; want++) {
    auto v = next_counter(*rs, 30s);
    ASSERT_TRUE(v) << rs->output();
    ASSERT_EQ(*v, want);
  }
  ASSERT_TRUE(rs->wait_for("done", 10s)) << rs->output();
  auto st = rs->wait(20s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 42) << "cr_restart exits with the restored program's exit code";
}

// The same process checkpointed three times (--stop, so each image's next value is known
// exactly, then SIGCONT); each image restarted in turn continues from its own point.
TEST_P(CheckpointCounter, ThreeCheckpointsEachRestart) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_counter", {"250"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  long last = -1;
  std::vector<long> next_of_image;
  for (int k = 1; k <= 3; k++) {
    auto v = counter_until(*orig.child, last + 2);
    ASSERT_TRUE(v);
    std::string file = dir / ("ctx." + std::to_string(k));
    auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file, "--stop"}, dir.path());
    ASSERT_TRUE(succeeded(r));
    ASSERT_TRUE(eventually([&] { return proc_state(orig.pid) == 'T'; }, 5s))
        << "--stop left the process in state " << proc_state(orig.pid);
    EXPECT_EQ(tracer_of(orig.pid), 0);
    last = drain_counter(*orig.child, *v);
    next_of_image.push_back(last + 1);
    ::kill(orig.pid, SIGCONT);
    auto after = next_counter(*orig.child);
    ASSERT_TRUE(after);
    EXPECT_EQ(*after, last + 1);
    last = *after;
  }
  if (mode == Mode::Plain) {
    ASSERT_TRUE(kill_original(orig));
  }

  for (int k = 1; k <= 3; k++) {
    SCOPED_TRACE("image " + std::to_string(k));
    auto rs = start_restart(dir / ("ctx." + std::to_string(k)), {}, dir.path());
    auto first = next_counter(*rs, 30s);
    ASSERT_TRUE(first) << rs->output();
    EXPECT_EQ(*first, next_of_image[k - 1]);
    auto second = next_counter(*rs);
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, *first + 1);
    pid_t rp = restored_pid(*rs, mode, orig.pid, "ckpt_counter");
    ASSERT_GT(rp, 0);
    kill_tree(rs->pid());
    ::kill(rp, SIGKILL);
    ASSERT_TRUE(rs->wait(20s));
    ASSERT_TRUE(wait_gone(rp)) << "restored pid " << rp << " not freed";
  }
  if (mode == Mode::Sandbox) {
    // The original ran on through all of it.
    auto v = next_counter(*orig.child);
    ASSERT_TRUE(v);
    EXPECT_GT(*v, last);
  }
}

INSTANTIATE_TEST_SUITE_P(, CheckpointCounter, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

class RestartCounter : public CkptTest {};

// The seed's walk-through, word for word where the tools allow it: the counter at its
// 2-second pace under cr_run --sandbox, `cr_checkpoint --pid PID` writing context.PID in the
// current directory, `cr_restart context.PID` printing the next values. The original is
// left running, as in the seed: a sandboxed restart does not need its pid to be free.
TEST_F(RestartCounter, SeedWalkThroughSandboxed) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Sandbox, "ckpt_counter", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  std::optional<long> v;
  do v = next_counter(*orig.child, 10s);
  while (v && *v < 2);
  ASSERT_TRUE(v);
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid)}, dir.path());
  ASSERT_TRUE(succeeded(r));
  std::string ctx = "context." + std::to_string(orig.pid);
  ASSERT_TRUE(file_exists(dir / ctx)) << "default file name is context.PID in the current directory";
  auto rs = start_restart(ctx, {}, dir.path());
  auto first = next_counter(*rs, 30s);
  ASSERT_TRUE(first) << rs->output();
  EXPECT_GE(*first, 3);
  EXPECT_LE(*first, 4);
  auto second = next_counter(*rs, 10s);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, *first + 1);
  EXPECT_TRUE(released(orig.pid));
}

// A sandboxed image restarted while the original still runs: both count on, each in its own
// pid namespace at pid 2, with different host pids.
TEST_F(RestartCounter, SandboxRestartWhileOriginalRuns) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Sandbox, "ckpt_counter", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto before = counter_until(*orig.child, 3);
  ASSERT_TRUE(before);
  std::string file = dir / "ctx";
  ASSERT_TRUE(succeeded(crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file}, dir.path())));

  auto rs = start_restart(file, {}, dir.path());
  auto first = next_counter(*rs, 30s);
  ASSERT_TRUE(first) << rs->output();
  long orig_now = drain_counter(*orig.child, *before, 100ms);
  EXPECT_GT(*first, *before);
  EXPECT_LE(*first, orig_now + 1);
  pid_t rp = restored_pid(*rs, Mode::Sandbox, orig.pid, "ckpt_counter");
  ASSERT_GT(rp, 0);
  PidGuard guard;
  guard.add(rp);
  EXPECT_NE(rp, orig.pid);
  EXPECT_NE(ns_pids(rp), ns_pids(orig.pid));
  long a = orig_now, b = *first;
  for (int k = 0; k < 3; k++) {
    auto va = next_counter(*orig.child);
    auto vb = next_counter(*rs);
    ASSERT_TRUE(va && vb);
    EXPECT_EQ(*va, a + 1) << "the original stopped counting";
    EXPECT_EQ(*vb, b + 1) << "the restored copy stopped counting";
    a = *va;
    b = *vb;
  }
  EXPECT_EQ(ask_pid(*orig.child, orig.pid), 2);
  EXPECT_EQ(ask_pid(*rs, rp), 2);
  EXPECT_TRUE(released(orig.pid));
}

// Unsandboxed, the original's pid is busy: cr_restart fails, names the pid and suggests
// --no-restore-pid, and the original is untouched. With --no-restore-pid it comes back
// under a new pid, which it reports itself.
TEST_F(RestartCounter, BusyPidThenNoRestorePid) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto before = counter_until(*orig.child, 2);
  ASSERT_TRUE(before);
  std::string file = dir / "ctx";
  ASSERT_TRUE(succeeded(crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file}, dir.path())));

  auto r = crbox("cr_restart", {file}, dir.path(), 30s);
  ASSERT_TRUE(failed_with_one_line(r, "cr_restart"));
  EXPECT_NE(r.err.find(std::to_string(orig.pid)), std::string::npos) << "the error should name the busy pid: " << r.err;
  EXPECT_NE(r.err.find("--no-restore-pid"), std::string::npos) << "the error should suggest --no-restore-pid: " << r.err;
  EXPECT_TRUE(released(orig.pid));
  EXPECT_EQ(comm_of(orig.pid), "ckpt_counter");
  long now = drain_counter(*orig.child, *before, 100ms);
  auto v = next_counter(*orig.child);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, now + 1) << "the original was disturbed";
  EXPECT_TRUE(live_children({orig.child->pid()}).empty()) << "the failed restart left a process behind";

  auto rs = start_restart(file, {"--no-restore-pid"}, dir.path());
  auto first = next_counter(*rs, 30s);
  ASSERT_TRUE(first) << rs->output();
  EXPECT_GT(*first, *before);
  pid_t rp = deepest_descendant(rs->pid());
  ASSERT_GT(rp, 0);
  PidGuard guard;
  guard.add(rp);
  EXPECT_NE(rp, orig.pid);
  auto asked = ask_pid(*rs, rp);
  ASSERT_TRUE(asked) << rs->output();
  EXPECT_EQ(*asked, rp) << "the restored process should see its new pid";
}

// --detach: cr_restart returns 0 once the process runs; the process keeps its pid and its
// output still reaches the pipe cr_restart had as stdout.
TEST_F(RestartCounter, DetachReturnsWhileProcessRuns) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(counter_until(*orig.child, 2));
  std::string file = dir / "ctx";
  ASSERT_TRUE(succeeded(crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file, "--kill"}, dir.path())));
  ASSERT_TRUE(orig.child->wait(20s));
  ASSERT_TRUE(wait_gone(orig.pid));
  long last = drain_counter(*orig.child, 2, 300ms);

  auto rs = start_restart(file, {"--detach"}, dir.path());
  PidGuard guard;
  guard.add(orig.pid);
  auto st = rs->wait(30s);
  ASSERT_TRUE(st) << "cr_restart --detach did not return";
  EXPECT_EQ(*st, 0) << rs->output();
  EXPECT_TRUE(process_alive(orig.pid)) << "the restored process is not running after --detach";
  EXPECT_TRUE(released(orig.pid));
  auto first = next_counter(*rs, 10s);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, last + 1);
  auto second = next_counter(*rs, 10s);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, *first + 1);
}

}  // namespace
}  // namespace crbox::test::ckpt
