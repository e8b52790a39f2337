// A process running as another user than cr_checkpoint's (root): its checkpoint must not need
// more privilege than root has in a container. prlimit(2) on another user's process needs
// CAP_SYS_RESOURCE, which a container's bounding set may lack (it does on the dev machines); the
// resource limits then come from /proc/PID/limits. The restored process runs as that user again.
#include <gtest/gtest.h>

#include "checkpoint_util.h"
#include "harness.h"

namespace crbox::test::ckpt {
namespace {

class CheckpointOtherUser : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// Plain: the program drops to nobody itself (setpriv), a low RLIMIT_NOFILE set on the way;
// sandbox: cr_run --sandbox --uid/--gid.
std::vector<std::string> argv_for(Mode m) {
  if (m == Mode::Sandbox)
    return {tool("cr_run"), "--sandbox", "--uid", "65534", "--gid", "65534", program("ckpt_counter"), "300"};
  return {"/usr/bin/prlimit", "--nofile=200:300", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          program("ckpt_counter"), "300"};
}

TEST_P(CheckpointOtherUser, CheckpointAndRestartAsThatUser) {
  Mode mode = GetParam();
  ScratchDir dir;
  Child orig(argv_for(mode), dir.path());
  ASSERT_TRUE(orig.wait_for("pid=", 20s)) << orig.output();
  pid_t pid = mode == Mode::Sandbox ? find_by_inner_pid(orig.pid(), 2) : orig.pid();
  ASSERT_GT(pid, 0);
  std::optional<long> v;
  while ((v = next_counter(orig, 20s)) && *v < 2) {
  }
  ASSERT_TRUE(v) << orig.output();
  ASSERT_EQ(status_field(pid, "Uid").value_or(""), "65534\t65534\t65534\t65534");

  std::string file = dir / "ctx";
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(pid), "-f", file, "--kill"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  ASSERT_TRUE(orig.wait(20s));
  ASSERT_TRUE(wait_gone(pid));
  long last = drain_counter(orig, 2, 300ms);

  auto rs = start_restart(file, {}, dir.path());
  auto first = next_counter(*rs, 30s);
  ASSERT_TRUE(first) << rs->output();
  EXPECT_EQ(*first, last + 1);
  pid_t back = restored_pid(*rs, mode, pid, "ckpt_counter");
  ASSERT_GT(back, 0) << rs->output();
  EXPECT_EQ(status_field(back, "Uid").value_or(""), "65534\t65534\t65534\t65534");
  if (mode == Mode::Plain) {
    // (read as the checkpoint did: prlimit(2) on it may be refused to this test too)
    std::string limits = slurp("/proc/" + std::to_string(back) + "/limits");
    EXPECT_NE(limits.find("Max open files            200                  300 "), std::string::npos) << limits;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CheckpointOtherUser, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
}  // namespace crbox::test::ckpt
