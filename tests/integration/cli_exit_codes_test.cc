// cr_checkpoint's exit statuses (docs/cli/cr_checkpoint.md, "Exit status"): each failure class
// libcr needs has its own code, so cr_request_checkpoint need not read the message. Each case
// still fails with one line on stderr and leaves no file behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint_util.h"

namespace crbox::test::ckpt {
namespace {

// The documented codes.
constexpr int kNoProcess = 3, kPermission = 4, kPtraced = 5, kPtracer = 6, kTemporary = 7, kPermanent = 8,
              kNoSpace = 9;

class CrCheckpointExitCodes : public CkptTest {
 protected:
  RunResult checkpoint(pid_t pid, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--pid", std::to_string(pid), "-f", dir / "ctx"};
    args.insert(args.end(), extra.begin(), extra.end());
    return crbox("cr_checkpoint", args, dir.path(), 60s);
  }
  static pid_t pid_after(Child& c, const std::string& key) {
    auto line = c.wait_for(key, 10s);
    if (!line) return -1;
    return static_cast<pid_t>(number_after(*line, key).value_or(-1));
  }
  ScratchDir dir;
};

TEST_F(CrCheckpointExitCodes, UnknownPidIsNoSuchProcess) {
  auto r = checkpoint(unused_pid());
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kNoProcess) << r.err;
  EXPECT_TRUE(dir.entries().empty());
}

TEST_F(CrCheckpointExitCodes, KernelThreadIsPermission) {
  pid_t k = kernel_thread();
  ASSERT_GT(k, 0) << "no kernel thread visible";
  auto r = checkpoint(k);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kPermission) << r.err;
}

// Traced by this test (PTRACE_SEIZE): 5; then a process that traces another: 6.
TEST_F(CrCheckpointExitCodes, TracedAndTracer) {
  Child c({program("ckpt_counter"), "200"}, dir.path());
  ASSERT_TRUE(c.wait_for("i = 1", 10s));
  ASSERT_EQ(ptrace(PTRACE_SEIZE, c.pid(), nullptr, nullptr), 0);
  auto r = checkpoint(c.pid());
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kPtraced) << r.err;
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, c.pid(), nullptr, nullptr), 0);
  int st = 0;
  ASSERT_EQ(waitpid(c.pid(), &st, __WALL), c.pid());
  ASSERT_EQ(ptrace(PTRACE_DETACH, c.pid(), nullptr, nullptr), 0);

  // A child of ours seizes the counter, says so on a pipe, and waits to be killed.
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t target = c.pid();
  pid_t tracer = fork();
  ASSERT_GE(tracer, 0);
  if (tracer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = ptrace(PTRACE_SEIZE, target, nullptr, nullptr) == 0 ? 'y' : 'n';
    (void)!write(p[1], &ok, 1);
    for (;;) pause();
  }
  close(p[1]);
  char ok = 0;
  ASSERT_EQ(read(p[0], &ok, 1), 1);
  close(p[0]);
  ASSERT_EQ(ok, 'y');
  r = checkpoint(tracer);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kPtracer) << r.err;
  kill(tracer, SIGKILL);
  waitpid(tracer, nullptr, 0);
  EXPECT_TRUE(dir.entries().empty());
}

// libcr callbacks: a temporary failure, a permanent one (the process is killed), a --time that
// runs out on a callback that never returns.
TEST_F(CrCheckpointExitCodes, CallbackFailuresAndTheTimeLimit) {
  Child temp({program("libcr_probe"), "thread", "temp"}, dir.path());
  pid_t pid = pid_after(temp, "ready pid=");
  ASSERT_GT(pid, 0) << temp.output();
  auto r = checkpoint(pid);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kTemporary) << r.err;
  EXPECT_TRUE(eventually([&] { return released(pid); }, 10s));

  Child perm({program("libcr_probe"), "thread", "perm"}, dir.path());
  pid = pid_after(perm, "ready pid=");
  ASSERT_GT(pid, 0) << perm.output();
  r = checkpoint(pid);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kPermanent) << r.err;
  EXPECT_TRUE(perm.wait(10s)) << "killed, as BLCR does";

  Child stuck({program("libcr_stuck_callback"), "100"}, dir.path());
  pid = pid_after(stuck, "ready pid=");
  ASSERT_GT(pid, 0) << stuck.output();
  r = checkpoint(pid, {"--time", "1"});
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kTemporary) << r.err;
  EXPECT_TRUE(dir.entries().empty());
}

// A device that is always full: 9, and the process runs on.
TEST_F(CrCheckpointExitCodes, NoSpace) {
  Child c({program("ckpt_counter"), "200"}, dir.path());
  ASSERT_TRUE(c.wait_for("i = 1", 10s));
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(c.pid()), "--clobber", "-f", "/dev/full"}, dir.path(), 60s);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, kNoSpace) << r.err;
  EXPECT_TRUE(released(c.pid()));
}

// Bad usage stays 2; any other failure stays 1 (an existing file with --noclobber).
TEST_F(CrCheckpointExitCodes, UsageAndOtherFailures) {
  Child c({program("ckpt_counter"), "200"}, dir.path());
  ASSERT_TRUE(c.wait_for("i = 1", 10s));
  auto r = crbox("cr_checkpoint", {"--pid", "--tree", std::to_string(c.pid())}, dir.path());
  EXPECT_EQ(r.status, 2) << r.err;
  spit(dir / "ctx", "x");
  r = checkpoint(c.pid(), {"--noclobber"});
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(released(c.pid()));
}

}  // namespace
}  // namespace crbox::test::ckpt
