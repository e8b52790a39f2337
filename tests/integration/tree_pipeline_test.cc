// Issue 5: producer | filter | consumer (tree_pipeline), checkpointed with both pipes full.
// The consumer checks every byte; the test also checks the end-to-end checksum of a finished
// stream against its own computation, so a lost or duplicated byte cannot pass.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class TreePipeline : public CkptTest {};

// What tree_pipeline's consumer computes over a whole stream of `total` bytes.
std::string expected_sum(uint64_t total) {
  uint64_t sum = 1469598103934665603ull;
  for (uint64_t n = 0; n < total; n++) {
    auto produced = static_cast<unsigned char>((n * 2654435761u) >> 13 ^ (n >> 8));
    auto key = static_cast<unsigned char>(n * 31 + 7);
    sum = (sum ^ static_cast<unsigned char>(produced ^ key)) * 1099511628211ull;
  }
  char b[32];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(sum));
  return b;
}

// Reads "consumed N ok" lines until N >= at_least; returns N (-1 on BAD, time-out or EOF).
long long consumed_until(Child& c, long long at_least, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    auto line = c.read_line(left);
    if (!line || line->find("BAD") != std::string::npos) return -1;
    if (line->rfind("consumed ", 0) != 0) continue;
    auto n = number_after(*line, "consumed ");
    if (!n || line->find(" ok") == std::string::npos) return -1;
    if (*n >= at_least) return *n;
  }
}

// The producer and filter are blocked writing into full pipes (so bytes are in flight).
void expect_pipes_full(const View& v) {
  for (auto& [pid, p] : v) {
    if (p.comm != "producer" && p.comm != "filter") continue;
    EXPECT_TRUE(eventually([&] { return slurp("/proc/" + std::to_string(p.host) + "/wchan").find("pipe") != std::string::npos; }, 3s))
        << p.comm << " is not blocked on a pipe (wchan " << slurp("/proc/" + std::to_string(p.host) + "/wchan") << ")";
  }
}

// Side by side: the original and the restored pipeline both keep consuming a correct stream;
// the restored one starts past the checkpoint's position.
TEST_F(TreePipeline, SandboxSideBySide) {
  ScratchDir dir;
  std::string why;
  auto orig = launch_tree(Mode::Sandbox, "tree_pipeline", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("pipeline started", 20s)) << orig.child->output();
  long long before = consumed_until(*orig.child, 100000);
  ASSERT_GT(before, 0) << orig.child->output();
  pid_t init = inner_host_pid(orig.child->pid(), 1);
  View v0 = wait_view(init, 3);
  ASSERT_EQ(v0.size(), 3u) << describe(v0);
  expect_pipes_full(v0);

  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {}, dir.path())));
  EXPECT_TRUE(all_released(sandbox_view(init)));
  EXPECT_GT(consumed_until(*orig.child, before + 1), before) << orig.child->output();

  auto rs = restart(dir / "ctx", Mode::Sandbox, -1, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  long long r1 = consumed_until(*rs.child, 0, 30s);
  ASSERT_GT(r1, before) << rs.child->output();
  View v1 = wait_view(rs.init, 3);
  EXPECT_TRUE(same_view(v0, v1));
  EXPECT_TRUE(all_released(v1));
  long long r2 = consumed_until(*rs.child, r1 + 100000, 30s);
  EXPECT_GT(r2, r1) << rs.child->output();
  EXPECT_GT(consumed_until(*orig.child, before + 200000), 0) << orig.child->output();
  stop_launcher(*rs.child);
}

// --kill mid-stream, then the restored pipeline runs to the end: the consumer saw every byte
// once (its checksum over the whole stream is the expected one) and cr_restart exits 0.
void kill_restart_to_end(Mode mode, const std::vector<std::string>& extra_args) {
  const uint64_t total = 1200000;
  ScratchDir dir;
  std::string why;
  std::vector<std::string> args{std::to_string(total)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto orig = launch_tree(mode, "tree_pipeline", args, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("pipeline started", 20s)) << orig.child->output();
  long long before = consumed_until(*orig.child, 150000);
  ASSERT_GT(before, 0) << orig.child->output();
  ASSERT_LT(before, static_cast<long long>(total) - 300000) << "the stream is almost over already";
  View v0;
  pid_t init = -1;
  if (mode == Mode::Sandbox) {
    init = inner_host_pid(orig.child->pid(), 1);
    v0 = wait_view(init, 3);
  } else {
    v0 = host_tree(orig.pid);
  }
  ASSERT_EQ(v0.size(), 3u) << describe(v0);
  expect_pipes_full(v0);

  std::vector<std::string> ck{"--kill"};
  if (mode == Mode::Plain) ck.insert(ck.begin(), "--tree");
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", ck, dir.path())));
  orig.child->wait(20s);
  ASSERT_TRUE(all_gone(v0));

  auto rs = restart(dir / "ctx", mode, orig.pid, dir.path(), &why);
  ASSERT_GT(rs.root, 0) << why;
  auto first = consumed_until(*rs.child, 0, 30s);
  EXPECT_GT(first, before) << rs.child->output();
  View v1 = mode == Mode::Sandbox ? wait_view(rs.init, 3) : wait_tree(rs.root, 3);
  EXPECT_TRUE(mode == Mode::Sandbox ? same_view(v0, v1) : same_tree(v0, v1, orig.pid));
  auto done = next_starting(*rs.child, "pipeline ", 60s);
  ASSERT_TRUE(done) << rs.child->output();
  EXPECT_EQ(*done, "pipeline done " + std::to_string(total) + " ok sum=" + expected_sum(total)) << rs.child->output();
  auto st = rs.child->wait(20s);
  ASSERT_TRUE(st) << "cr_restart did not exit when the pipeline finished";
  EXPECT_EQ(*st, 0) << "cr_restart exits with the root's status";
}

TEST_F(TreePipeline, SandboxKillRestartRunsToEnd) { kill_restart_to_end(Mode::Sandbox, {}); }

TEST_F(TreePipeline, PlainTreeKillRestartRunsToEnd) { kill_restart_to_end(Mode::Plain, {}); }

// The filter -> consumer link is a FIFO in the sandbox's private /tmp: the node and the bytes in
// it come back.
TEST_F(TreePipeline, SandboxFifoInPrivateTmp) { kill_restart_to_end(Mode::Sandbox, {"/tmp/tree-pipeline.fifo"}); }

}  // namespace
}  // namespace crbox::test::tree
