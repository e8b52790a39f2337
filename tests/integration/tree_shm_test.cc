// Issue 5: a parent and a child taking turns on counters in MAP_SHARED|MAP_ANONYMOUS memory and
// in a /dev/shm mapping (tree_shm). After the restart each must still see the other's writes:
// if the memory came back as two private copies, the turns stop and the program says so.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <random>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeShm : public CkptTest {};

struct Counts {
  long long parent = -1, child = -1, fparent = -1, fchild = -1;
};

// Next "shm ..." line, which must be ok; nullopt (with the line in *bad) otherwise.
std::optional<Counts> next_shm(Child& c, std::string* bad, std::chrono::milliseconds timeout = 20s) {
  auto line = next_starting(c, "shm ", timeout);
  if (!line || line->find(" ok") == std::string::npos || line->find("BAD") != std::string::npos) {
    if (bad) *bad = line ? *line : "no shm line; output: " + c.output();
    return std::nullopt;
  }
  Counts k;
  k.parent = number_after(*line, " parent=").value_or(-1);
  k.child = number_after(*line, " child=").value_or(-1);
  k.fparent = number_after(*line, "fparent=").value_or(-1);
  k.fchild = number_after(*line, "fchild=").value_or(-1);
  return k;
}

// Three ok lines in a row whose counters all move past `after` (the turns go on in both
// regions); returns the last.
::testing::AssertionResult keeps_taking_turns(Child& c, const Counts& after, Counts* last = nullptr) {
  Counts prev = after;
  for (int i = 0; i < 3; i++) {
    std::string bad;
    auto k = next_shm(c, &bad, 30s);
    if (!k) return ::testing::AssertionFailure() << bad;
    if (k->parent <= prev.parent || k->child <= prev.child || k->fparent <= prev.fparent || k->fchild <= prev.fchild)
      return ::testing::AssertionFailure() << "the counters did not move: parent " << k->parent << " child "
                                           << k->child << " fparent " << k->fparent << " fchild " << k->fchild
                                           << " after parent " << prev.parent << " fparent " << prev.fparent;
    prev = *k;
  }
  if (last) *last = prev;
  return ::testing::AssertionSuccess();
}

std::string unique_shm_name() {
  std::random_device rd;
  return "/crbox-tree-test-" + std::to_string(getpid()) + "-" + std::to_string(rd());
}

struct ShmUnlinker {
  std::string name;
  ~ShmUnlinker() {
    if (!name.empty()) shm_unlink(name.c_str());
  }
};

// Side by side with an unlinked /dev/shm file (only the mappings hold it, so the restored copy
// cannot share the original's): both pairs keep taking turns.
TEST_F(TreeShm, SandboxSideBySide) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_shm", {"-"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  Counts c0;
  ASSERT_TRUE(keeps_taking_turns(*orig.child, Counts{}, &c0));
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View v0 = wait_view(init, 2);
  ASSERT_EQ(v0.size(), 2u) << describe(v0);

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {}, dir.path())));
  EXPECT_TRUE(all_released(sandbox_view(init)));
  EXPECT_TRUE(keeps_taking_turns(*orig.child, c0));

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  EXPECT_TRUE(keeps_taking_turns(*rs.child, c0)) << rs.child->output();
  View v1 = wait_view(rs.init, 2);
  EXPECT_TRUE(same_view(v0, v1));
  EXPECT_TRUE(all_released(v1));
  EXPECT_TRUE(keeps_taking_turns(*orig.child, c0));
  stop_launcher(*rs.child);
}

// A named /dev/shm file (still linked), --kill, restart: the turns continue from where they
// were, in both regions.
TEST_F(TreeShm, SandboxKillRestartNamed) {
  ScratchDir dir;
  ShmUnlinker shm{unique_shm_name()};
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_shm", {shm.name}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  Counts c0;
  ASSERT_TRUE(keeps_taking_turns(*orig.child, Counts{}, &c0));
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View v0 = wait_view(init, 2);
  ASSERT_EQ(v0.size(), 2u) << describe(v0);
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--kill"}, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(v0));

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  EXPECT_TRUE(keeps_taking_turns(*rs.child, c0)) << rs.child->output();
  EXPECT_TRUE(same_view(v0, wait_view(rs.init, 2)));
  stop_launcher(*rs.child);
}

// Unsandboxed --tree, unlinked /dev/shm file: same pids, shared again.
TEST_F(TreeShm, PlainTreeKillRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Plain, "tree_shm", {"-"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  Counts c0;
  ASSERT_TRUE(keeps_taking_turns(*orig.child, Counts{}, &c0));
  View v0 = host_tree(orig.pid);
  ASSERT_EQ(v0.size(), 2u) << describe(v0);
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--tree", "--kill"}, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(v0));

  auto rs = restart(dir / "ctx", Mode::Plain, orig.pid, dir.path(), &why);
  ASSERT_EQ(rs.root, orig.pid) << why;
  EXPECT_TRUE(keeps_taking_turns(*rs.child, c0)) << rs.child->output();
  EXPECT_TRUE(same_tree(v0, wait_tree(rs.root, 2), orig.pid));
  stop_launcher(*rs.child);
}

}  // namespace
}  // namespace crbox::test::tree
