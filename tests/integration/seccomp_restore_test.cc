// A process's own seccomp filters (and a sandbox's policy) come back with it.
#include <gtest/gtest.h>
#include <signal.h>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class SeccompRestore : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

TEST_P(SeccompRestore, OwnFilterStillInForce) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "sc_own_filter", {"100"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto count = next_starting(*orig.child, "filters=", 10s);
  ASSERT_TRUE(count) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path())));
  orig.child->wait(20s);

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "sc_own_filter");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "filter ", 10s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "filter ok " + *count) << "the filters did not come back as they were";
  EXPECT_EQ(status_field(rp, "Seccomp"), std::optional<std::string>("2"));
  EXPECT_EQ(status_field(rp, "NoNewPrivs"), std::optional<std::string>("1"));
}

INSTANTIATE_TEST_SUITE_P(, SeccompRestore, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
