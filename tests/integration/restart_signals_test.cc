// Signals sent to a process while cr_restart is still making it: they wait (blocked) and are
// taken once it runs with its own handlers, and none kills the half-made process or is taken by
// a handler of the process that made it (cr_restart's, or the sandbox init's, which forwards
// signals). The test sends SIGUSR1 to the restored pid over and over from the instant it exists.
#include <signal.h>

#include <atomic>
#include <thread>

#include "tree_util.h"

namespace crbox::test::tree {
namespace {

class RestartSignals : public CkptTest, public ::testing::WithParamInterface<Mode> {};

TEST_P(RestartSignals, SignalsSentWhileTheProcessIsMadeWaitForIt) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "sig_answer", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, dir / "ctx", {"--kill"}, dir.path())));
  ASSERT_TRUE(orig.child->wait(20s));
  ASSERT_TRUE(wait_gone(orig.pid));

  for (int round = 0; round < 5; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto rs = start_restart(dir / "ctx", {}, dir.path());
    // Find the process as early as /proc shows it, and keep signalling it until it answers.
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    pid_t target = -1;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (target < 0 && std::chrono::steady_clock::now() < deadline) {
      if (mode == Mode::Plain) {
        for (pid_t p : descendants_of(rs->pid()))
          if (p == orig.pid) target = p;
      } else {
        for (pid_t p : descendants_of(rs->pid())) {
          auto ns = ns_pids(p);
          if (ns.size() >= 2 && ns.back() == 2) target = p;
        }
      }
    }
    ASSERT_GT(target, 0) << rs->output();
    std::thread bomber([&] {
      while (!stop) {
        if (::kill(target, SIGUSR1) == 0) sent++;
        std::this_thread::sleep_for(200us);
      }
    });
    auto answer = rs->wait_for("answer ", 30s);
    stop = true;
    bomber.join();
    ASSERT_TRUE(answer) << "no answer from the restored process; cr_restart says: " << rs->output();
    EXPECT_EQ(*answer, "answer 1");
    EXPECT_GT(sent.load(), 0);
    EXPECT_TRUE(process_alive(target));
    EXPECT_FALSE(rs->wait(100ms)) << "cr_restart ended: " << rs->output();
    kill_tree(rs->pid());
    rs->kill(SIGKILL);
    rs->wait(10s);
    ASSERT_TRUE(wait_gone(target));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, RestartSignals, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
}  // namespace crbox::test::tree
