// Issue 5: a parent with many children (tree_fanout), checkpointed as a whole sandbox and as an
// unsandboxed tree. Every child checks its own pid and parent after the restart; the test
// compares the processes seen from inside both sandboxes.
#include <signal.h>
#include <unistd.h>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeFanout : public CkptTest {};

// The "pids=" list of a "tree ok N pids=..." answer, or "" if the answer is not ok.
std::string ok_pids(const std::optional<std::string>& line, int n) {
  std::string want = "tree ok " + std::to_string(n) + " pids=";
  if (!line || line->rfind(want, 0) != 0) return "";
  return line->substr(want.size());
}

// 50 children in a sandbox, checkpointed by naming one of the children (a pid inside a sandbox
// means the whole sandbox), with the original running on. The restored copy runs side by side
// with it: the same inner pids, parents, groups and sessions, and every child answers with the
// pid and parent it had.
TEST_F(TreeFanout, SandboxSideBySide) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_fanout", {"50"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  EXPECT_EQ(orig.pid_line, "pid=2");
  ASSERT_TRUE(orig.child->wait_for("started 50", 30s)) << orig.child->output();
  std::string pids = ok_pids(ask(*orig.child, orig.pid, "tree "), 50);
  ASSERT_FALSE(pids.empty()) << orig.child->output();
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  ASSERT_GT(init, 0);
  View before = wait_view(init, 51);
  ASSERT_EQ(before.size(), 51u) << describe(before);

  pid_t a_child = before.rbegin()->second.host;
  ASSERT_GT(a_child, 0);
  auto r = checkpoint(a_child, dir / "ctx", {}, dir.path());
  ASSERT_TRUE(succeeded(r));
  EXPECT_TRUE(all_released(sandbox_view(init)));
  EXPECT_EQ(ok_pids(ask(*orig.child, orig.pid, "tree "), 50), pids) << "the original was disturbed";

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  ASSERT_GT(rs.init, 0);
  EXPECT_NE(rs.root, orig.pid);
  EXPECT_EQ(ok_pids(ask(*rs.child, rs.root, "tree "), 50), pids) << rs.child->output();
  View after = wait_view(rs.init, 51);
  EXPECT_TRUE(same_view(before, after)) << "naming a child should have taken the whole sandbox";
  EXPECT_TRUE(all_released(after));
  // Both keep running side by side.
  EXPECT_EQ(ok_pids(ask(*orig.child, orig.pid, "tree "), 50), pids);
  EXPECT_EQ(ok_pids(ask(*rs.child, rs.root, "tree "), 50), pids);
  EXPECT_TRUE(same_view(sandbox_view(init), sandbox_view(rs.init)));
  stop_launcher(*rs.child);
}

// --kill takes the whole sandbox down after the dump; the restart brings all 51 back with their
// pids, and cr_restart exits with the root's status (here: killed by SIGTERM).
TEST_F(TreeFanout, SandboxKillRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_fanout", {"50"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started 50", 30s)) << orig.child->output();
  std::string pids = ok_pids(ask(*orig.child, orig.pid, "tree "), 50);
  ASSERT_FALSE(pids.empty()) << orig.child->output();
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View before = wait_view(init, 51);
  ASSERT_EQ(before.size(), 51u) << describe(before);

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--kill"}, dir.path())));
  ASSERT_TRUE(orig.child->wait(20s)) << "cr_run did not exit after --kill";
  EXPECT_TRUE(all_gone(before));

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  EXPECT_EQ(ok_pids(ask(*rs.child, rs.root, "tree "), 50), pids) << rs.child->output();
  View after = wait_view(rs.init, 51);
  EXPECT_TRUE(same_view(before, after));
  EXPECT_TRUE(all_released(after));
  ::kill(rs.root, SIGTERM);
  auto st = rs.child->wait(20s);
  ASSERT_TRUE(st) << "cr_restart did not exit when the restored root died";
  EXPECT_EQ(*st, 128 + SIGTERM) << "cr_restart exits with the root process's status";
}

// Unsandboxed, --tree: the parent and its 20 children, killed after the dump, come back with
// the same host pids (the originals' pids are free again), each child under the same parent.
TEST_F(TreeFanout, PlainTreeKillRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Plain, "tree_fanout", {"20"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started 20", 30s)) << orig.child->output();
  std::string pids = ok_pids(ask(*orig.child, orig.pid, "tree "), 20);
  ASSERT_FALSE(pids.empty()) << orig.child->output();
  View before = host_tree(orig.pid);
  ASSERT_EQ(before.size(), 21u) << describe(before);

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--tree", "--kill"}, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(before)) << "--kill should end every process of the tree";

  auto rs = restart(dir / "ctx", Mode::Plain, orig.pid, dir.path(), &why);
  ASSERT_EQ(rs.root, orig.pid) << why;
  EXPECT_EQ(ok_pids(ask(*rs.child, rs.root, "tree "), 20), pids) << rs.child->output();
  View after = wait_tree(rs.root, 21);
  EXPECT_TRUE(same_tree(before, after, orig.pid));
  EXPECT_TRUE(all_released(after));
  stop_launcher(*rs.child);
}

}  // namespace
}  // namespace crbox::test::tree
