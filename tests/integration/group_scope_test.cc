// cr_checkpoint -g (BLCR's process-group scope): two siblings sharing a group whose parent is not
// taken come back together, under cr_restart, at their pids and in their group.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class GroupScope : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

// The parent forks A (which leads a new group) and B (which joins it), then only sleeps.
// Each line goes out in one write(2), so the two never interleave within a line.
constexpr const char* kScript = R"(import os, time
def say(*words): os.write(1, (" ".join(str(w) for w in words) + "\n").encode())
a = os.fork()
if a == 0:
    os.setpgid(0, 0)
    i = 0
    while True:
        say("A", i, os.getpid(), os.getpgid(0)); i += 1; time.sleep(0.1)
b = os.fork()
if b == 0:
    while os.getpgid(a) != a: time.sleep(0.01)
    os.setpgid(0, a)
    i = 0
    while True:
        say("B", i, os.getpid(), os.getpgid(0)); i += 1; time.sleep(0.1)
time.sleep(0.3)
say("group", a, b)
time.sleep(1000)
)";

TEST_F(GroupScope, SiblingsOfOneGroupComeBackTogether) {
  ScratchDir dir;
  std::ofstream(dir / "grp.py") << kScript;
  Child orig({"/usr/bin/python3", dir / "grp.py"}, dir.path());
  auto g = orig.wait_for("group ", 20s);
  ASSERT_TRUE(g) << orig.output();
  pid_t a = 0, b = 0;
  ASSERT_EQ(sscanf(g->c_str(), "group %d %d", &a, &b), 2);
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {"-g", std::to_string(a), "-f", dir / "ctx", "--kill"}, dir.path())));
  // The parent never reaps them: end it, so the pids are free again.
  orig.kill(SIGKILL);
  orig.wait(10s);
  ASSERT_TRUE(wait_gone(a, 10s));
  ASSERT_TRUE(wait_gone(b, 10s));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  auto la = rs->wait_for("A ", 20s);
  ASSERT_TRUE(la) << rs->output();
  auto lb = rs->wait_for("B ", 5s);
  ASSERT_TRUE(lb) << rs->output();
  EXPECT_NE(la->find(" " + std::to_string(a) + " " + std::to_string(a)), std::string::npos) << *la;
  EXPECT_NE(lb->find(" " + std::to_string(b) + " " + std::to_string(a)), std::string::npos) << *lb;
  EXPECT_EQ(parent_of(a), rs->pid());
  EXPECT_EQ(parent_of(b), rs->pid());
}

}  // namespace
