// Issue 5: eight threads (mt_threads 8), each checking its own tid, TLS and stack after the
// restart; the test compares the thread ids seen from outside too.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeThreads : public CkptTest {};

// SIGUSR1 -> one "thread <i> tid=<t> count=<n> ok" line per thread and "threads ok 8";
// returns index -> tid. "threads BAD moved=" (some counter did not move since the previous
// report) can be only that the report came within one period of the last one (e.g. just after
// a restart): asked again a period later, it must then be ok.
::testing::AssertionResult thread_report(Child& c, pid_t pid, std::map<int, long long>* tids) {
  std::vector<std::string> lines;
  for (int attempt = 0; attempt < 3; attempt++) {
    lines = ask_lines(c, pid, "thread", 9);
    if (lines.size() != 9 || lines.back().rfind("threads BAD moved=", 0) != 0) break;
    std::this_thread::sleep_for(120ms);
  }
  if (lines.size() != 9) return ::testing::AssertionFailure() << "incomplete report; output: " << c.output();
  tids->clear();
  for (auto& l : lines) {
    if (l.rfind("threads ", 0) == 0) {
      if (l != "threads ok 8") return ::testing::AssertionFailure() << l;
      continue;
    }
    if (l.find(" ok") == std::string::npos) return ::testing::AssertionFailure() << l;
    auto i = number_after(l, "thread ");
    auto t = number_after(l, "tid=");
    if (!i || !t) return ::testing::AssertionFailure() << "cannot parse " << l;
    (*tids)[static_cast<int>(*i)] = *t;
  }
  if (tids->size() != 8) return ::testing::AssertionFailure() << tids->size() << " threads reported";
  return ::testing::AssertionSuccess();
}

TEST_F(TreeThreads, SandboxSideBySide) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "mt_threads", {"8", "50"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started 8", 20s)) << orig.child->output();
  std::map<int, long long> before, after;
  ASSERT_TRUE(thread_report(*orig.child, orig.pid, &before));
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View v0 = wait_view(init, 1);
  ASSERT_EQ(v0.size(), 1u) << describe(v0);
  ASSERT_EQ(v0.begin()->second.tids.size(), 9u) << describe(v0);

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {}, dir.path())));
  EXPECT_TRUE(released(orig.pid));
  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  ASSERT_TRUE(thread_report(*rs.child, rs.root, &after));
  EXPECT_EQ(before, after);
  View v1 = wait_view(rs.init, 1);
  EXPECT_TRUE(same_view(v0, v1)) << "every thread keeps its tid";
  // Every thread of the restored process is released, not only the leader.
  for (auto& [pid, p] : v1) EXPECT_TRUE(threads_released(p.host));
  ASSERT_TRUE(thread_report(*orig.child, orig.pid, &after));
  EXPECT_EQ(before, after) << "the original was disturbed";
  stop_launcher(*rs.child);
}

TEST_F(TreeThreads, PlainKillRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Plain, "mt_threads", {"8", "50"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("started 8", 20s)) << orig.child->output();
  std::map<int, long long> before, after;
  ASSERT_TRUE(thread_report(*orig.child, orig.pid, &before));
  View v0 = host_tree(orig.pid);
  ASSERT_EQ(v0.size(), 1u);
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--tree", "--kill"}, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(v0));
  auto rs = restart(dir / "ctx", Mode::Plain, orig.pid, dir.path(), &why);
  ASSERT_EQ(rs.root, orig.pid) << why;
  ASSERT_TRUE(thread_report(*rs.child, rs.root, &after));
  EXPECT_EQ(before, after);
  EXPECT_TRUE(same_tree(v0, wait_tree(rs.root, 1), orig.pid)) << "every thread keeps its tid";
  stop_launcher(*rs.child);
}

}  // namespace
}  // namespace crbox::test::tree
