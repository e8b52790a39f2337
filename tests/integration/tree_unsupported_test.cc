// Issue 5: a tree holding something crbox cannot checkpoint (a child with a connected TCP
// socket) is refused with one clear line, no bundle is left, and every process of the tree is
// left running, untraced and not stopped.
#include <signal.h>
#include <unistd.h>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeUnsupported : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

TEST_P(TreeUnsupported, TcpSocketInAChildRefusedAndTreeReleased) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  std::string py =
      "import socket, time\n"
      "s = socket.socket()\n"
      "s.bind(('127.0.0.1', 0))\n"
      "s.listen(1)\n"
      "c = socket.create_connection(s.getsockname())\n"
      "a, _ = s.accept()\n"
      "print('sock ready', flush=True)\n"
      "time.sleep(100)\n";
  std::string script = "echo pid=$$; " + python3() + " -c \"" + py + "\" & while :; do echo tick; sleep 0.2; done";
  auto orig = launch_argv(mode, {"/bin/bash", "-c", script}, "pid=", dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("sock ready", 20s)) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("tick", 10s));
  View v0;
  pid_t init = -1;
  if (mode == Mode::Sandbox) {
    init = inner_host_pid(orig.child->pid(), 1);
    v0 = sandbox_view(init);
  } else {
    v0 = host_tree(orig.pid);
  }
  ASSERT_GE(v0.size(), 2u) << describe(v0);

  std::vector<std::string> ck;
  if (mode == Mode::Plain) ck.push_back("--tree");
  auto r = checkpoint(orig.pid, dir / "ctx", ck, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "socket") || contains_ci(r.err, "tcp")) << "the message should say what is unsupported: " << r.err;
  EXPECT_TRUE(dir.entries().empty()) << "a failed checkpoint left a file: " << dir.entries()[0];
  // Every process that was there is still there, running and untraced.
  View v1 = mode == Mode::Sandbox ? sandbox_view(init) : host_tree(orig.pid);
  for (auto& [pid, p] : v0) {
    if (p.comm != "python3" && p.comm != "bash" && p.comm.rfind("python", 0) != 0) continue;  // sleeps come and go
    ASSERT_TRUE(v1.count(pid)) << p.comm << " " << pid << " is gone after the failed checkpoint";
    EXPECT_TRUE(released(p.host)) << p.comm;
    EXPECT_TRUE(threads_released(p.host)) << p.comm;
  }
  // The loop goes on.
  ASSERT_TRUE(orig.child->wait_for("tick", 5s));
  ASSERT_TRUE(orig.child->wait_for("tick", 5s));
}

INSTANTIATE_TEST_SUITE_P(, TreeUnsupported, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
}  // namespace crbox::test::tree
