// Issue 5: sessions and process groups (tree_session) in a sandbox: a session led by a child of
// the root, a group led by a grandchild with another member, and (orphan mode) a group whose
// leader has exited with its orphaned member reparented to init. Each process prints its own
// ids; the test also reads them from the sandbox's /proc (/proc/<init>/root/proc/<pid>/stat,
// what `ps -o pid,pgid,sid` would show inside) and compares before and after.
#include <signal.h>
#include <unistd.h>

#include <map>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeSession : public CkptTest {};

// role -> "ids ..." line, after SIGUSR1 to the root; every line must be ok.
::testing::AssertionResult ids_of(Child& c, pid_t root, size_t n, std::map<char, std::string>* out) {
  auto lines = ask_lines(c, root, "ids ", n);
  if (lines.size() != n) return ::testing::AssertionFailure() << lines.size() << " of " << n << " processes answered; output: " << c.output();
  out->clear();
  for (auto& l : lines) {
    if (l.size() < 10 || l.find(" ok") == std::string::npos) return ::testing::AssertionFailure() << l;
    (*out)[l[9]] = l;  // "ids role=X ..."
  }
  if (out->size() != n) return ::testing::AssertionFailure() << "duplicate roles in the answers";
  return ::testing::AssertionSuccess();
}

// What each process said about itself matches the sandbox's /proc.
::testing::AssertionResult matches_proc(const std::map<char, std::string>& ids, const View& v) {
  for (auto& [role, line] : ids) {
    auto pid = number_after(line, "pid=");
    auto pgid = number_after(line, "pgid=");
    auto sid = number_after(line, "sid=");
    auto ppid = number_after(line, "ppid=");
    if (!pid || !v.count(static_cast<pid_t>(*pid)))
      return ::testing::AssertionFailure() << "no process for " << line << " in\n" << describe(v);
    const InnerProc& p = v.at(static_cast<pid_t>(*pid));
    if (p.pgid != pgid || p.sid != sid || p.ppid != ppid)
      return ::testing::AssertionFailure() << line << " but /proc says ppid " << p.ppid << " pgid " << p.pgid << " sid "
                                           << p.sid;
  }
  return ::testing::AssertionSuccess();
}

void run(bool orphan, bool side_by_side) {
  size_t n = orphan ? 5 : 4;
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_session", {orphan ? "orphan" : "plain"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started roles=", 20s)) << orig.child->output();
  std::map<char, std::string> before, after;
  ASSERT_TRUE(ids_of(*orig.child, orig.pid, n, &before));
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View v0 = wait_view(init, n);
  ASSERT_EQ(v0.size(), n) << describe(v0);
  ASSERT_TRUE(matches_proc(before, v0));
  if (orphan) {
    auto e = number_after(before['E'], "pid=");
    ASSERT_TRUE(e);
    EXPECT_EQ(v0[static_cast<pid_t>(*e)].ppid, 1) << "the orphan should have been reparented to init";
    auto g = number_after(before['E'], "pgid=");
    EXPECT_FALSE(v0.count(static_cast<pid_t>(*g))) << "the orphan's group leader should be gone";
  }

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", side_by_side ? std::vector<std::string>{} : std::vector<std::string>{"--kill"}, dir.path())));
  if (side_by_side) {
    EXPECT_TRUE(all_released(sandbox_view(init)));
  } else {
    orig.child->wait(20s);
    ASSERT_TRUE(all_gone(v0));
  }

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  ASSERT_TRUE(ids_of(*rs.child, rs.root, n, &after));
  EXPECT_EQ(before, after);
  View v1 = wait_view(rs.init, n);
  EXPECT_TRUE(same_view(v0, v1));
  EXPECT_TRUE(all_released(v1));
  EXPECT_TRUE(matches_proc(after, v1));
  if (side_by_side) {
    std::map<char, std::string> still;
    ASSERT_TRUE(ids_of(*orig.child, orig.pid, n, &still));
    EXPECT_EQ(before, still);
  }
  stop_launcher(*rs.child);
}

TEST_F(TreeSession, SandboxSideBySide) { run(false, true); }
TEST_F(TreeSession, SandboxKillRestart) { run(false, false); }
TEST_F(TreeSession, OrphanAndLeaderlessGroupSideBySide) { run(true, true); }
TEST_F(TreeSession, OrphanAndLeaderlessGroupKillRestart) { run(true, false); }

}  // namespace
}  // namespace crbox::test::tree
