// Issue 5: a restored sandbox is a sandbox like any other: it is in the registry (cr_run --list)
// and can be checkpointed again. Three generations of checkpoint -> restart of a 10-child tree,
// every one with the original's inner pids.
#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeGenerations : public CkptTest {};

// cr_run --list has a row whose INIT and APP columns are these host pids.
::testing::AssertionResult listed(pid_t init, pid_t app) {
  auto r = crbox("cr_run", {"--list"}, "", 20s);
  if (r.status != 0) return ::testing::AssertionFailure() << "cr_run --list failed: " << r.err;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, i, a;
    if (f >> id >> i >> a && i == std::to_string(init) && a == std::to_string(app)) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no sandbox with init " << init << " and program " << app
                                       << " in cr_run --list:\n" << r.out;
}

std::string tree_pids(Child& c, pid_t root) {
  auto line = ask(c, root, "tree ");
  const std::string want = "tree ok 10 pids=";
  if (!line || line->rfind(want, 0) != 0) return "";
  return line->substr(want.size());
}

TEST_F(TreeGenerations, ThreeGenerations) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_fanout", {"10"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started 10", 20s)) << orig.child->output();
  std::string pids = tree_pids(*orig.child, orig.pid);
  ASSERT_FALSE(pids.empty()) << orig.child->output();
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  EXPECT_TRUE(listed(init, orig.pid));
  View v0 = wait_view(init, 11);
  ASSERT_EQ(v0.size(), 11u) << describe(v0);

  std::unique_ptr<Child> current = std::move(orig.child);
  pid_t root = orig.pid;
  for (int gen = 1; gen <= 3; gen++) {
    SCOPED_TRACE("generation " + std::to_string(gen));
    std::string file = dir / ("ctx." + std::to_string(gen));
    ASSERT_TRUE(succeeded(checkpoint(root, file, {"--kill"}, dir.path())));
    ASSERT_TRUE(current->wait(20s)) << "the previous launcher did not exit after --kill";
    auto rs = restart(file, Mode::Sandbox, -1, dir.path(), &why);
    ASSERT_GT(rs.root, 0) << why;
    ASSERT_GT(rs.init, 0);
    EXPECT_EQ(tree_pids(*rs.child, rs.root), pids) << rs.child->output();
    View v = wait_view(rs.init, 11);
    EXPECT_TRUE(same_view(v0, v));
    EXPECT_TRUE(all_released(v));
    EXPECT_TRUE(listed(rs.init, rs.root)) << "a restored sandbox belongs in the registry";
    current = std::move(rs.child);
    root = rs.root;
  }
  stop_launcher(*current);
}

}  // namespace
}  // namespace crbox::test::tree
