// libcr's self-checkpoint requests from inside a sandbox (cr_run --sandbox): the request goes to
// the launcher outside (runtime/libcr/request_protocol.h), which checkpoints the whole sandbox.
// The restored sandbox (cr_restart) serves requests too, so a restored program checkpoints itself
// again; and the copy restarted from an image it asked for is told so.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class LibcrSandbox : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  // Kills the sandbox run by `c` (cr_run or cr_restart) through its program's host pid, and
  // waits until all of it is gone.
  static ::testing::AssertionResult stop(Child& c, pid_t program) {
    if (program > 0) ::kill(program, SIGKILL);
    if (!c.wait(20s)) return ::testing::AssertionFailure() << "the launcher did not exit: " << c.output();
    if (!eventually([] { return live_children().empty(); }, 10s))
      return ::testing::AssertionFailure() << "processes are left";
    return ::testing::AssertionSuccess();
  }

  ScratchDir dir;
};

// The loop of tests/programs/libcr_self_checkpoint.c, sandboxed: its request at i=5 writes the
// bundle through the descriptor it passed; restarted, it says "restarted i=5" and counts on; at
// i=10 the restored program checkpoints itself again, through the restored sandbox's server, and
// a restart of that image says "restarted i=10".
TEST_F(LibcrSandbox, SelfCheckpointRestartAndAgain) {
  std::string why;
  auto orig = launch(Mode::Sandbox, "libcr_self_checkpoint", {dir / "self.ctx", "5", "-1", "100"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto cont = orig.child->wait_for("continued i=", 30s);
  ASSERT_TRUE(cont) << orig.child->output();
  EXPECT_EQ(*cont, "continued i=5");
  ASSERT_TRUE(orig.child->wait_for("i=7", 10s)) << orig.child->output();
  ASSERT_TRUE(stop(*orig.child, orig.pid));

  auto rs = start_restart(dir / "self.ctx", {}, dir.path());
  auto back = rs->wait_for("restarted i=", 20s);
  ASSERT_TRUE(back) << rs->output();
  EXPECT_EQ(*back, "restarted i=5");
  auto next = rs->read_line(10s);
  ASSERT_TRUE(next) << rs->output();
  EXPECT_EQ(*next, "i=6") << "the counter continues";
  auto again = rs->wait_for("continued i=", 30s);
  ASSERT_TRUE(again) << rs->output();
  EXPECT_EQ(*again, "continued i=10") << "the restored sandbox serves requests too";
  EXPECT_EQ(rs->output().find("failed"), std::string::npos) << rs->output();
  ASSERT_TRUE(rs->wait_for("i=12", 10s)) << rs->output();
  pid_t restored = find_by_comm(rs->pid(), "libcr_self_checkpoint", 5s);
  ASSERT_TRUE(stop(*rs, restored));

  auto rs2 = start_restart(dir / "self.ctx", {}, dir.path());
  auto back2 = rs2->wait_for("restarted i=", 20s);
  ASSERT_TRUE(back2) << rs2->output();
  EXPECT_EQ(*back2, "restarted i=10");
  auto next2 = rs2->read_line(10s);
  ASSERT_TRUE(next2) << rs2->output();
  EXPECT_EQ(*next2, "i=11");
}

// CR_DEST_CWD: the bundle is context.<pid as the sandbox sees it> in the program's working
// directory, written by cr_checkpoint outside. Its callback is told who asked (itself, by its
// pid inside) and what; restarted, the callback's cr_checkpoint() returns > 0 and the request
// says CR_ERESTARTED.
TEST_F(LibcrSandbox, CheckpointToTheWorkingDirectoryAndCallbacks) {
  std::string why;
  auto orig = launch(Mode::Sandbox, "libcr_cwd_request", {"3", "100", "1"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  std::string inner = token_after(orig.pid_line, "pid=");
  ASSERT_FALSE(inner.empty()) << orig.pid_line;
  auto cont = orig.child->wait_for("continued i=", 30s);
  ASSERT_TRUE(cont) << orig.child->output();
  EXPECT_EQ(*cont, "continued i=3");
  ASSERT_TRUE(orig.child->wait_for("i=4", 10s)) << orig.child->output();
  // The callback's lines come from libcr's thread, in any order with the main thread's.
  std::string out = orig.child->output();
  EXPECT_NE(out.find("callback self=" + inner + " requester=" + inner + " target=" + inner + " scope=0\n"),
            std::string::npos)
      << "the requester is named by its pid inside the sandbox; scope 0 is CR_SCOPE_PROC:\n" << out;
  EXPECT_NE(out.find("callback rc=0\n"), std::string::npos) << out;
  std::string bundle = dir / ("context." + inner);
  EXPECT_TRUE(file_exists(bundle)) << "entries: " << ::testing::PrintToString(dir.entries());
  EXPECT_EQ(file_mode(bundle), 0600u);
  ASSERT_TRUE(stop(*orig.child, orig.pid));
  EXPECT_EQ(dir.entries().size(), 1u) << "no temporary file is left: " << ::testing::PrintToString(dir.entries());

  auto rs = start_restart(bundle, {}, dir.path());
  auto back = rs->wait_for("restarted i=", 20s);
  ASSERT_TRUE(back) << rs->output();
  EXPECT_EQ(*back, "restarted i=3");
  ASSERT_TRUE(rs->wait_for("i=4", 10s)) << rs->output();
  std::string rout = rs->output();
  auto at = rout.find("callback rc=");
  ASSERT_NE(at, std::string::npos) << rout;
  EXPECT_GT(std::stoi(rout.substr(at + 12)), 0) << "cr_checkpoint() > 0 in the restarted copy:\n" << rout;
}

// A session as the scope: the program's session is the init's (1 inside), which the launcher
// finds among the sandbox's processes; the whole sandbox is taken into context.1.
TEST_F(LibcrSandbox, SessionScopeIsTranslated) {
  std::string why;
  auto orig = launch(Mode::Sandbox, "libcr_cwd_request", {"3", "100", "1", "2"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  std::string inner = token_after(orig.pid_line, "pid=");
  auto cont = orig.child->wait_for("continued i=", 30s);
  ASSERT_TRUE(cont) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("i=4", 10s)) << orig.child->output();
  EXPECT_NE(orig.child->output().find("callback self=" + inner + " requester=" + inner + " target=1 scope=2\n"),
            std::string::npos)
      << orig.child->output();
  EXPECT_TRUE(file_exists(dir / "context.1")) << ::testing::PrintToString(dir.entries());
}

// A requester that is not root may only have its bundle written where it may write itself.
TEST_F(LibcrSandbox, ADirectoryTheRequesterCannotWriteIsRefused) {
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  Child c({tool("cr_run"), "--sandbox", "--uid", "65534", "--gid", "65534", program("libcr_cwd_request"), "2", "50", "1"},
          dir.path());
  auto line = c.wait_for("failed", 20s);
  ASSERT_TRUE(line) << c.output();
  EXPECT_EQ(*line, "failed errno=" + std::to_string(EACCES) + " (" + std::string(strerror(EACCES)) + ")");
  EXPECT_TRUE(c.wait(10s));
  EXPECT_TRUE(dir.entries().empty()) << ::testing::PrintToString(dir.entries());
}

// The server takes requests from its own sandbox only: a process outside that reaches the socket
// (through the init's root, /proc/PID/root: proc(5)) is refused with EPERM, and nothing is taken.
TEST_F(LibcrSandbox, ARequesterOutsideTheSandboxIsRefused) {
  std::string why;
  auto box = launch(Mode::Sandbox, "ckpt_counter", {"100"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  pid_t init = parent_of(box.pid);
  ASSERT_GT(init, 0);
  std::string sock = "/proc/" + std::to_string(init) + "/root/tmp/.crbox-libcr.sock";
  ASSERT_TRUE(eventually([&] { return file_exists(sock); }, 5s)) << sock;
  Child outside({"/usr/bin/env", "CRBOX_LIBCR_SOCKET=" + sock, program("libcr_self_checkpoint"), dir / "out.ctx", "1",
                 "1", "10"},
                dir.path());
  auto line = outside.wait_for("failed", 10s);
  ASSERT_TRUE(line) << outside.output();
  EXPECT_EQ(*line, "failed errno=" + std::to_string(EPERM) + " (" + std::string(strerror(EPERM)) + ")");
  EXPECT_EQ(file_size(dir / "out.ctx"), 0) << "nothing was checkpointed";
  EXPECT_TRUE(next_counter(*box.child, 5s)) << "the sandbox runs on";
}

// A status memfd the server would write through a mapping must be sealed against shrinking: an
// empty one (which killed cr_run with SIGBUS) and an unsealed page are refused with EINVAL, and
// the server goes on serving (a real request then succeeds).
TEST_F(LibcrSandbox, AnUnsealedStatusPageIsRefused) {
  std::string why;
  auto box = launch(Mode::Sandbox, "libcr_req_attack", {"unsealed", dir / "ok.ctx"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  std::string einval = "ack err=" + std::to_string(EINVAL);
  auto a1 = box.child->wait_for("ack err=", 20s);
  ASSERT_TRUE(a1) << box.child->output();
  EXPECT_EQ(*a1, einval) << "an empty status memfd";
  auto a2 = box.child->wait_for("ack err=", 20s);
  ASSERT_TRUE(a2) << box.child->output();
  EXPECT_EQ(*a2, einval) << "a page that is not sealed";
  auto last = box.child->wait_for("continued", 30s);
  ASSERT_TRUE(last) << box.child->output();
  ASSERT_TRUE(box.child->wait_for("done", 10s)) << box.child->output();
  EXPECT_GT(file_size(dir / "ok.ctx"), 0);
  EXPECT_TRUE(box.child->wait(10s)) << box.child->output();
}

// Thousands of idle connections: the server holds at most a few (the rest wait in the listener's
// backlog or are refused), answers a broken request on the first one, and serves again once they
// are gone; before, it accepted until out of descriptors and the next /proc read aborted cr_run.
TEST_F(LibcrSandbox, AFloodOfConnectionsIsBounded) {
  std::string why;
  auto box = launch(Mode::Sandbox, "libcr_req_attack", {"flood", "3000", dir / "ok.ctx"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  auto flood = box.child->wait_for("flood ", 30s);
  ASSERT_TRUE(flood) << box.child->output();
  EXPECT_LT(std::stoi(flood->substr(6)), 100) << "the server stops accepting at its cap";
  auto ack = box.child->wait_for("ack err=", 30s);
  ASSERT_TRUE(ack) << box.child->output();
  EXPECT_EQ(*ack, "ack err=" + std::to_string(EBADF)) << "a request without descriptors";
  ASSERT_TRUE(box.child->wait_for("continued", 40s)) << box.child->output();
  ASSERT_TRUE(box.child->wait_for("done", 10s)) << box.child->output();
  EXPECT_TRUE(box.child->wait(10s)) << box.child->output();
}

// A sandbox's checkpoint takes all of it: a requester that could not ptrace every process of it
// (here uid 65534 beside a process of root's) is refused with EPERM, and nothing is written; once
// it is alone with its own uid, its request is served.
TEST_F(LibcrSandbox, ARequesterThatCouldNotPtraceTheSandboxIsRefused) {
  ASSERT_EQ(chmod(dir.path().c_str(), 0777), 0);
  std::string why;
  auto box = launch(Mode::Sandbox, "libcr_req_attack", {"nobody", dir / "nb.ctx"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  auto first = box.child->wait_for("failed errno=", 20s);
  ASSERT_TRUE(first) << box.child->output();
  EXPECT_EQ(*first, "failed errno=" + std::to_string(EPERM) + " (" + std::string(strerror(EPERM)) + ")");
  EXPECT_EQ(file_size(dir / "nb.ctx"), 0) << "nothing was checkpointed";
  ASSERT_TRUE(box.child->wait_for("continued", 30s)) << box.child->output();
  EXPECT_GT(file_size(dir / "nb.ctx"), 0);
  ASSERT_TRUE(box.child->wait_for("done", 10s)) << box.child->output();
}

// The target is taken by host pid when the request is answered, and checkpointed later: the
// server checks through a pidfd that it is still the same process, and says so when it is gone.
TEST_F(LibcrSandbox, ATargetGoneBeforeTheStartIsNotCheckpointed) {
  std::string why;
  auto box = launch(Mode::Sandbox, "libcr_req_attack", {"vanish", dir / "v.ctx"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  auto line = box.child->wait_for("failed errno=", 20s);
  ASSERT_TRUE(line) << box.child->output();
  EXPECT_EQ(*line, "failed errno=" + std::to_string(ESRCH) + " (" + std::string(strerror(ESRCH)) + ")");
  ASSERT_TRUE(box.child->wait_for("done", 10s)) << box.child->output();
  EXPECT_NE(box.child->output().find("no longer exists"), std::string::npos) << box.child->output();
  EXPECT_EQ(file_size(dir / "v.ctx"), 0);
}

// A requester that keeps the connection after the answer is dropped after the client time; its
// status page is ended with an error (before, its cr_wait_checkpoint() waited forever).
TEST_F(LibcrSandbox, ADroppedRequestEndsItsStatusPage) {
  std::string why;
  auto box = launch(Mode::Sandbox, "libcr_req_attack", {"nohangup", dir / "h.ctx"}, dir.path(), &why);
  ASSERT_GT(box.pid, 0) << why;
  auto ack = box.child->wait_for("ack err=", 20s);
  ASSERT_TRUE(ack) << box.child->output();
  EXPECT_EQ(*ack, "ack err=0");
  auto ended = box.child->wait_for("ended ", 40s);
  ASSERT_TRUE(ended) << box.child->output();
  EXPECT_EQ(*ended, "ended state=1 exited=1 code=1");
  ASSERT_TRUE(box.child->wait_for("done", 10s)) << box.child->output();
  EXPECT_NE(box.child->output().find("did not hang up"), std::string::npos) << box.child->output();
}

// CR_DEST_CWD for a requester that is not root: the bundle is made as the requester (its own
// file, no chown afterwards), mode 0600, and no temporary file is left.
TEST_F(LibcrSandbox, TheBundleIsTheRequestersOwn) {
  ASSERT_EQ(chmod(dir.path().c_str(), 0777), 0);
  Child c({tool("cr_run"), "--sandbox", "--uid", "65534", "--gid", "65534", program("libcr_cwd_request"), "2", "50", "1"},
          dir.path());
  auto line = c.wait_for("continued i=", 30s);
  ASSERT_TRUE(line) << c.output();
  auto entries = dir.entries();
  ASSERT_EQ(entries.size(), 1u) << ::testing::PrintToString(entries);
  struct stat st{};
  ASSERT_EQ(stat((dir / entries[0]).c_str(), &st), 0);
  EXPECT_EQ(entries[0].rfind("context.", 0), 0u) << entries[0];
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_GT(st.st_size, 0);
}

// In a sticky directory (/tmp's mode), a requester may not replace a file that another user owns
// (path_resolution(7)): the bundle is put in place as the requester, so root's context.N stays
// root's, unchanged, and the request fails with EPERM. Before, cr_checkpoint (root) replaced it
// and the server gave it to the requester.
TEST_F(LibcrSandbox, AStickyDirectoryKeepsOtherUsersFiles) {
  ASSERT_EQ(chmod(dir.path().c_str(), 01777), 0);
  std::string why;
  // libcr_cwd_request prints its pid first and asks at i=20 (2 s later).
  Child c({tool("cr_run"), "--sandbox", "--uid", "65534", "--gid", "65534", program("libcr_cwd_request"), "20", "100",
           "1"},
          dir.path());
  auto ready = c.wait_for("ready pid=", 20s);
  ASSERT_TRUE(ready) << c.output();
  std::string victim = dir / ("context." + ready->substr(10));
  spit(victim, "root's file");
  ASSERT_EQ(chmod(victim.c_str(), 0644), 0);
  auto line = c.wait_for("failed errno=", 30s);
  ASSERT_TRUE(line) << c.output();
  EXPECT_EQ(*line, "failed errno=" + std::to_string(EPERM) + " (" + std::string(strerror(EPERM)) + ")");
  EXPECT_EQ(slurp(victim), "root's file");
  struct stat st{};
  ASSERT_EQ(stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(dir.entries().size(), 1u) << "no temporary file is left: " << ::testing::PrintToString(dir.entries());
  EXPECT_TRUE(c.wait(10s));
}

// With /tmp bound from a directory of the user's, the init binds no socket there (it might be the
// host's /tmp, whose libcr programs would trust a root-owned socket): no server answers, and the
// request is made as outside a sandbox, by a cr_checkpoint child that the sandbox does not let
// checkpoint.
TEST_F(LibcrSandbox, NoSocketInABoundTmp) {
  ScratchDir tmp;
  Child c({tool("cr_run"), "--sandbox", "--bind", tmp.path() + ":/tmp", program("libcr_cwd_request"), "2", "50", "1"},
          dir.path());
  auto line = c.wait_for("failed errno=", 30s);
  ASSERT_TRUE(line) << c.output();
  EXPECT_TRUE(c.wait(10s));
  EXPECT_FALSE(file_exists(tmp / ".crbox-libcr.sock")) << ::testing::PrintToString(tmp.entries());
  EXPECT_TRUE(tmp.entries().empty()) << ::testing::PrintToString(tmp.entries());
}

}  // namespace
