// Issue 5: a chain of 11 processes, each the parent of the next (tree_chain 10): every level
// comes back under its own parent, in creation order.
#include <signal.h>
#include <unistd.h>

#include <set>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeChain : public CkptTest {};

// SIGUSR1 to the root: all 11 levels answer ok; returns the lines sorted, or explains.
::testing::AssertionResult chain_ok(Child& c, pid_t root, std::set<std::string>* lines) {
  auto got = ask_lines(c, root, "chain ", 11);
  std::set<std::string> s(got.begin(), got.end());
  if (got.size() != 11) return ::testing::AssertionFailure() << got.size() << " of 11 levels answered; output: " << c.output();
  for (auto& l : got)
    if (l.find(" ok") == std::string::npos) return ::testing::AssertionFailure() << l;
  // "count=" differs from one report to the next: compare the rest.
  lines->clear();
  for (auto& l : got) lines->insert(l.substr(0, l.find(" count=")));
  return ::testing::AssertionSuccess();
}

void run(Mode mode) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(mode, "tree_chain", {"10"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("chain ready 10", 20s)) << orig.child->output();
  std::set<std::string> before, after;
  ASSERT_TRUE(chain_ok(*orig.child, orig.pid, &before));
  View v0;
  if (mode == Mode::Sandbox) v0 = wait_view(inner_host_pid(orig.child->pid(), 1), 11);
  else v0 = host_tree(orig.pid);
  ASSERT_EQ(v0.size(), 11u) << describe(v0);

  std::vector<std::string> ck{"--kill"};
  if (mode == Mode::Plain) ck.push_back("--tree");
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", ck, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(v0));

  auto rs = restart(dir / "ctx", mode, orig.pid, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  ASSERT_TRUE(chain_ok(*rs.child, rs.root, &after));
  EXPECT_EQ(before, after);
  View v1;
  if (mode == Mode::Sandbox) {
    v1 = wait_view(rs.init, 11);
    EXPECT_TRUE(same_view(v0, v1));
  } else {
    v1 = wait_tree(rs.root, 11);
    EXPECT_TRUE(same_tree(v0, v1, orig.pid));
  }
  EXPECT_TRUE(all_released(v1));
  stop_launcher(*rs.child);
}

TEST_F(TreeChain, SandboxKillRestart) { run(Mode::Sandbox); }
TEST_F(TreeChain, PlainTreeKillRestart) { run(Mode::Plain); }

}  // namespace
}  // namespace crbox::test::tree
