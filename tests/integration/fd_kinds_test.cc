// eventfd, signalfd and timerfd held by a process come back in their saved state.
#include <gtest/gtest.h>
#include <signal.h>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class FdKinds : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

TEST_P(FdKinds, EventfdSignalfdTimerfdSurvive) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "fd_kinds", {"100"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path())));
  orig.child->wait(20s);

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "fd_kinds");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "fdkinds ", 10s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "fdkinds ok");
}

INSTANTIATE_TEST_SUITE_P(, FdKinds, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
