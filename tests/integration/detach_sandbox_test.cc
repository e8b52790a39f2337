// cr_restart --detach of a sandbox: it returns at once, and the sandbox (whose launcher it was)
// lives on in the background, printing where cr_restart printed.
#include <gtest/gtest.h>
#include <signal.h>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class DetachSandbox : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

TEST_F(DetachSandbox, SandboxOutlivesTheForegroundRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Sandbox, "ckpt_counter", {"200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto before = next_counter(*orig.child);
  ASSERT_TRUE(before) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path())));
  orig.child->wait(20s);

  Child rs({tool("cr_restart"), "--detach", dir / "ctx"}, dir.path());
  auto st = rs.wait(30s);
  ASSERT_TRUE(st) << "cr_restart --detach did not return";
  EXPECT_EQ(*st, 0) << rs.output();
  // The restored counter goes on, through the pipe cr_restart had, after cr_restart returned.
  auto first = next_counter(rs, 20s);
  ASSERT_TRUE(first) << rs.output();
  EXPECT_GT(*first, *before);
  auto second = next_counter(rs, 5s);
  ASSERT_TRUE(second) << rs.output();
  EXPECT_EQ(*second, *first + 1);
}

}  // namespace
