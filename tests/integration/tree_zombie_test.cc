// Issue 5: zombies (tree_zombie) stay zombies across a checkpoint, with their exit status,
// until their parent reaps them after the restart.
#include <signal.h>
#include <unistd.h>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeZombie : public CkptTest {};

// The two zombies' pids from "zombies <a> <b>".
std::vector<pid_t> zombie_pids(const std::string& line) {
  std::vector<pid_t> r;
  auto a = number_after(line, "zombies ");
  if (!a) return r;
  r.push_back(static_cast<pid_t>(*a));
  auto b = number_after(line, std::to_string(*a) + " ");
  if (b) r.push_back(static_cast<pid_t>(*b));
  return r;
}

size_t count_zombies(const View& v) {
  size_t n = 0;
  for (auto& [pid, p] : v) n += p.state == 'Z';
  return n;
}

// After SIGUSR1, the (restored) parent reaps both with the right statuses and exits 42.
void expect_reaped(Child& c, pid_t root, const std::vector<pid_t>& zombies) {
  auto lines = ask_lines(c, root, "reaped ", 2);
  ASSERT_EQ(lines.size(), 2u) << c.output();
  EXPECT_EQ(lines[0], "reaped " + std::to_string(zombies[0]) + " status 7 ok");
  EXPECT_EQ(lines[1], "reaped " + std::to_string(zombies[1]) + " signal 15 ok");
  EXPECT_TRUE(next_starting(c, "zombies ok", 10s)) << c.output();
  auto st = c.wait(20s);
  ASSERT_TRUE(st) << "the launcher did not exit with its root";
  EXPECT_EQ(*st, 42) << "the launcher exits with the root process's status";
}

void run(Mode mode, bool side_by_side) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(mode, "tree_zombie", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto zl = orig.child->wait_for("zombies ", 20s);
  ASSERT_TRUE(zl) << orig.child->output();
  auto zombies = zombie_pids(*zl);
  ASSERT_EQ(zombies.size(), 2u) << *zl;
  pid_t init = -1;
  View v0;
  if (mode == Mode::Sandbox) {
    init = inner_host_pid(orig.child->pid(), 1);
    v0 = wait_view(init, 3);
  } else {
    v0 = host_tree(orig.pid);
  }
  ASSERT_EQ(v0.size(), 3u) << describe(v0);
  ASSERT_EQ(count_zombies(v0), 2u) << describe(v0);
  for (pid_t z : zombies) ASSERT_TRUE(v0.count(z)) << "zombie " << z << " not in\n" << describe(v0);

  std::vector<std::string> ck;
  if (!side_by_side) ck.push_back("--kill");
  if (mode == Mode::Plain) ck.push_back("--tree");
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", ck, dir.path())));
  if (side_by_side) {
    EXPECT_TRUE(all_released(sandbox_view(init)));
    EXPECT_EQ(count_zombies(sandbox_view(init)), 2u) << "the dump reaped a zombie";
  } else {
    orig.child->wait(20s);
    ASSERT_TRUE(all_gone(v0));
  }

  auto rs = restart(dir / "ctx", mode, orig.pid, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  EXPECT_TRUE(rs.child->wait_for("alive", 20s)) << rs.child->output();
  View v1;
  if (mode == Mode::Sandbox) {
    v1 = wait_view(rs.init, 3);
    EXPECT_TRUE(same_view(v0, v1));
  } else {
    v1 = wait_tree(rs.root, 3);
    EXPECT_TRUE(same_tree(v0, v1, orig.pid));
  }
  EXPECT_EQ(count_zombies(v1), 2u) << describe(v1);
  EXPECT_TRUE(all_released(v1));
  expect_reaped(*rs.child, rs.root, zombies);
  if (side_by_side) expect_reaped(*orig.child, orig.pid, zombies);
}

TEST_F(TreeZombie, SandboxSideBySide) { run(Mode::Sandbox, true); }
TEST_F(TreeZombie, SandboxKillRestart) { run(Mode::Sandbox, false); }
TEST_F(TreeZombie, PlainTreeKillRestart) { run(Mode::Plain, false); }

}  // namespace
}  // namespace crbox::test::tree
