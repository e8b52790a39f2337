// Issue 5: real programs as the tree: a bash loop that runs a subprocess per round, and a
// Python interpreter in the middle of a computation, each checkpointed in a sandbox with
// --kill and restarted: the output goes on exactly where it stopped.
#include <signal.h>
#include <unistd.h>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreeInterpreters : public CkptTest {};

// Reads lines until EOF/quiet; the last value after `prefix` seen (or `last`).
long long drain_value(Child& c, const std::string& prefix, long long last) {
  for (;;) {
    auto line = c.read_line(500ms);
    if (!line) return last;
    if (line->rfind(prefix, 0) == 0)
      if (auto v = number_after(*line, prefix)) last = *v;
  }
}

// The value of the next line starting with `prefix`, which must contain `must` ("" for none).
std::optional<long long> next_value(Child& c, const std::string& prefix, const std::string& must,
                                    std::chrono::milliseconds timeout = 20s) {
  auto line = next_starting(c, prefix, timeout);
  if (!line) return std::nullopt;
  if (!must.empty() && line->find(must) == std::string::npos) {
    ADD_FAILURE() << "unexpected: " << *line;
    return std::nullopt;
  }
  return number_after(*line, prefix);
}

// bash's loop: "loop <i>", a sleep and a /bin/true per round. After the restart the next line
// is the next i; bash is pid 2 again in the new sandbox.
TEST_F(TreeInterpreters, BashLoopWithSubprocesses) {
  ScratchDir dir;
  std::string why;
  std::string script = "i=0; while :; do i=$((i+1)); echo \"loop $i\"; sleep 0.2; /bin/true; done";
  auto orig = launch_argv(Mode::Sandbox, {"/bin/bash", "-c", script}, "loop 3", dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--kill"}, dir.path())));
  orig.child->wait(20s);
  long long last = drain_value(*orig.child, "loop ", 3);
  ASSERT_TRUE(wait_gone(orig.pid));

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  for (long long want = last + 1; want <= last + 4; want++) {
    auto v = next_value(*rs.child, "loop ", "", 20s);
    ASSERT_TRUE(v) << rs.child->output();
    ASSERT_EQ(*v, want) << rs.child->output();
  }
  EXPECT_EQ(comm_of(rs.root), "bash");
  EXPECT_TRUE(released(rs.root));
  stop_launcher(*rs.child);
}

// python3 summing squares in chunks of 20000 terms, checking the closed form each time:
// "py <i> sum=<s> ok". After the restart the next line is exactly 20000 terms further on.
TEST_F(TreeInterpreters, PythonMidComputation) {
  ScratchDir dir;
  std::string why;
  std::string code =
      "import time\n"
      "s = 0\n"
      "i = 0\n"
      "while True:\n"
      "    for _ in range(20000):\n"
      "        i += 1\n"
      "        s += i * i\n"
      "    ok = s == i * (i + 1) * (2 * i + 1) // 6\n"
      "    print('py %d sum=%d %s' % (i, s, 'ok' if ok else 'BAD'), flush=True)\n"
      "    time.sleep(0.2)\n";
  auto orig = launch_argv(Mode::Sandbox, {python3(), "-c", code}, "py 60000 ", dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--kill"}, dir.path())));
  orig.child->wait(20s);
  long long last = drain_value(*orig.child, "py ", 60000);
  ASSERT_TRUE(wait_gone(orig.pid));

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  for (long long want = last + 20000; want <= last + 60000; want += 20000) {
    auto v = next_value(*rs.child, "py ", " ok", 20s);
    ASSERT_TRUE(v) << rs.child->output();
    ASSERT_EQ(*v, want) << rs.child->output();
  }
  EXPECT_TRUE(released(rs.root));
  stop_launcher(*rs.child);
}

}  // namespace
}  // namespace crbox::test::tree
