// Event sources a checkpoint must bring back, verified from inside the restored program: an epoll
// set (its entries, data and readiness), inotify watches (at their descriptors) and POSIX timers
// (at their ids, firing on time, one of them at a given thread).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class Events : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

// Checkpoints `orig` (killing it), waits for it to go.
::testing::AssertionResult checkpoint_and_kill(Launched& orig, const ScratchDir& dir) {
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
  auto ok = succeeded(r);
  if (!ok) return ok;
  orig.child->wait(20s);
  return ::testing::AssertionSuccess();
}

TEST_P(Events, EpollSetKeepsEntriesAndReadiness) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ev_epoll", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(checkpoint_and_kill(orig, dir));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ev_epoll");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "epoll ", 10s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "epoll ok");
}

TEST_P(Events, InotifyWatchesKeepTheirDescriptors) {
  Mode mode = GetParam();
  ScratchDir dir;
  // In a sandbox, the second directory is in its private /tmp: its path is the sandbox's own.
  std::string dir2 = mode == Mode::Sandbox ? "/tmp/ev_inotify" : dir / "second";
  std::string why;
  auto orig = launch(mode, "ev_inotify", {dir.path(), dir2}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto wds = orig.child->wait_for("wds ", 10s);
  ASSERT_TRUE(wds) << orig.child->output();
  EXPECT_EQ(*wds, "wds 1 3 4");
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(checkpoint_and_kill(orig, dir));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ev_inotify");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "inotify ", 10s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "inotify ok");
}

TEST_P(Events, PosixTimersFireOnTime) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ev_timers", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  auto armed = std::chrono::steady_clock::now();  // no later than the one-shot timer was armed
  ASSERT_TRUE(orig.child->wait_for("half", 10s)) << orig.child->output();
  ASSERT_TRUE(checkpoint_and_kill(orig, dir));
  // What the one-shot timer had left, at least, when the process was frozen.
  auto left = 2000ms - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - armed);
  ASSERT_GT(left.count(), 500) << "the checkpoint took too long for this test";
  EXPECT_EQ(orig.child->output().find("fired"), std::string::npos) << "the one-shot timer fired before the checkpoint";

  auto restarted = std::chrono::steady_clock::now();
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ev_timers");
  ASSERT_GT(rp, 0) << rs->output();
  auto fired = next_starting(*rs, "fired ", 10s);
  ASSERT_TRUE(fired) << rs->output();
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - restarted);
  // Never early: not before what was left (less a little for the reading of the line).
  EXPECT_GE(after.count(), left.count() - 100) << *fired;
  EXPECT_LE(after.count(), left.count() + 4000) << *fired;
  if (mode == Mode::Sandbox) {
    // The sandbox's CLOCK_MONOTONIC continues across the restart: from inside, the timer fired
    // 2 s after it was armed, plus only the moments the restore itself took.
    auto ms = number_after(*fired, "fired ");
    ASSERT_TRUE(ms) << *fired;
    EXPECT_GE(*ms, 1990) << *fired;
    EXPECT_LE(*ms, 3500) << *fired;
  }
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "timers ", 10s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "timers ok");
}

INSTANTIATE_TEST_SUITE_P(, Events, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

// An epoll entry under a number that was closed (its file kept open by a dup) cannot be made
// again: the checkpoint says so and leaves the process running as it was.
class EventsErrors : public CkptTest {};

TEST_F(EventsErrors, EpollEntryOfClosedFdIsRefused) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ev_epoll", {"closed"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "epoll")) << r.err;
  EXPECT_TRUE(contains_ci(r.err, "closed")) << r.err;
  EXPECT_TRUE(released(orig.pid));
  EXPECT_TRUE(orig.child->wait_for("tick", 10s)) << orig.child->output();
}

}  // namespace
