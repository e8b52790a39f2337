// BLCR's application library end to end, with the real engine: a program linked with -lcr_run and
// run directly, callbacks that close a file before a checkpoint and reopen it after (and tell
// continue from restart), a critical section that delays a checkpoint, a self-checkpointing loop,
// --time expiring on a callback that never returns, a wrapper left out with libcr_omit.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class Libcr : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  // Runs a test program directly (no cr_run) in the scratch directory.
  std::unique_ptr<Child> start(const std::string& prog, const std::vector<std::string>& args) {
    std::vector<std::string> argv{program(prog)};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv, dir.path());
  }
  static pid_t pid_after(Child& c, const std::string& key) {
    auto line = c.wait_for(key, 10s);
    if (!line) return -1;
    return static_cast<pid_t>(number_after(*line, key).value_or(-1));
  }
  RunResult checkpoint(pid_t pid, const std::vector<std::string>& extra) {
    std::vector<std::string> args{std::to_string(pid), "-f", dir / "ctx"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ckpt::crbox("cr_checkpoint", args, dir.path());
  }

  ScratchDir dir;
};

// The seed's example, linked with -lcr_run, run without cr_run: checkpoint, kill, restart, and
// it counts on from where it was.
TEST_F(Libcr, SeedExampleLinkedWithCrRunRestarts) {
  auto orig = start("cr_run_counter", {"100", "1000"});
  auto line = orig->wait_for("pid=", 10s);
  ASSERT_TRUE(line) << orig->output();
  EXPECT_NE(line->find("libcr=1"), std::string::npos) << *line;
  pid_t pid = static_cast<pid_t>(number_after(*line, "pid=").value_or(-1));
  auto at = next_counter(*orig, 10s);
  ASSERT_TRUE(at);
  ASSERT_TRUE(succeeded(checkpoint(pid, {"--kill"})));
  orig->wait(20s);
  long last = drain_counter(*orig, *at);
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  auto next = next_counter(*rs, 10s);
  ASSERT_TRUE(next) << rs->output();
  EXPECT_EQ(*next, last + 1);
}

// Callbacks close a file before the checkpoint and reopen it after: the original says
// "continue", the restarted copy "restart", and both go on writing the file.
TEST_F(Libcr, CallbacksTellContinueFromRestart) {
  for (bool signal_context : {false, true}) {
    SCOPED_TRACE(signal_context ? "signal context" : "thread context");
    std::vector<std::string> args{dir / "log", "100"};
    if (signal_context) args.push_back("signal");
    auto orig = start("libcr_reopen", args);
    pid_t pid = pid_after(*orig, "ready pid=");
    ASSERT_GT(pid, 0) << orig->output();
    ASSERT_TRUE(orig->wait_for("i=", 10s));
    ASSERT_TRUE(succeeded(checkpoint(pid, {})));
    ASSERT_TRUE(orig->wait_for("closing", 10s)) << orig->output();
    auto after = orig->wait_for("continue", 10s);
    ASSERT_TRUE(after) << orig->output();
    EXPECT_EQ(orig->output().find("restart"), std::string::npos);
    ASSERT_TRUE(orig->wait_for("i=", 10s)) << "the original goes on";
    orig->kill();
    orig->wait(10s);

    auto rs = start_restart(dir / "ctx", {}, dir.path());
    ASSERT_TRUE(rs->wait_for("restart", 10s)) << rs->output();
    EXPECT_EQ(rs->output().find("continue"), std::string::npos) << rs->output();
    size_t before = slurp(dir / "log").size();
    ASSERT_TRUE(rs->wait_for("i=", 10s)) << rs->output();
    ASSERT_TRUE(rs->wait_for("i=", 10s)) << rs->output();
    EXPECT_GT(slurp(dir / "log").size(), before) << "the restarted copy writes its reopened file";
    rs->kill();
    rs->wait(10s);
  }
}

// A checkpoint asked while the program is inside a critical section waits until it leaves.
TEST_F(Libcr, CriticalSectionDelaysTheCheckpoint) {
  auto orig = start("libcr_cs_hold", {"2"});
  pid_t pid = pid_after(*orig, "ready pid=");
  ASSERT_GT(pid, 0) << orig->output();
  ::kill(pid, SIGUSR1);
  ASSERT_TRUE(orig->wait_for("entered", 10s)) << orig->output();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(succeeded(checkpoint(pid, {})));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GT(took, 1s) << "the checkpoint did not wait for the critical section";
  ASSERT_TRUE(orig->wait_for("continue", 10s)) << orig->output();
  const std::string& out = orig->output();
  size_t leaving = out.find("leaving"), callback = out.find("callback");
  ASSERT_NE(leaving, std::string::npos) << out;
  ASSERT_NE(callback, std::string::npos) << out;
  EXPECT_LT(leaving, callback) << out;
}

// A program checkpointing itself every 5 iterations: the original goes on ("continued"), the copy
// restarted from the file knows it was restarted.
TEST_F(Libcr, SelfCheckpointingLoop) {
  auto orig = start("libcr_self_checkpoint", {dir / "self.ctx", "5", "-1", "100"});
  pid_t pid = pid_after(*orig, "ready pid=");
  ASSERT_GT(pid, 0) << orig->output();
  auto cont = orig->wait_for("continued i=", 20s);
  ASSERT_TRUE(cont) << orig->output();
  EXPECT_EQ(*cont, "continued i=5");
  ASSERT_TRUE(orig->wait_for("i=7", 10s)) << orig->output();
  orig->kill();
  orig->wait(10s);
  ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));

  auto rs = start_restart(dir / "self.ctx", {}, dir.path());
  auto back = rs->wait_for("restarted i=", 10s);
  ASSERT_TRUE(back) << rs->output();
  EXPECT_EQ(*back, "restarted i=5");
  auto next = rs->wait_for("i=6", 10s);
  EXPECT_TRUE(next) << rs->output();
}

// --time bounds the wait for callbacks: one that never returns makes the checkpoint give up, with
// no file left, and the program runs on.
TEST_F(Libcr, TimeLimitOnACallbackThatNeverReturns) {
  auto orig = start("libcr_stuck_callback", {"100"});
  pid_t pid = pid_after(*orig, "ready pid=");
  ASSERT_GT(pid, 0) << orig->output();
  auto t0 = std::chrono::steady_clock::now();
  auto r = checkpoint(pid, {"--time", "1"});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 7) << "a temporary failure (docs/cli/cr_checkpoint.md)";
  EXPECT_NE(r.err.find("time limit"), std::string::npos) << r.err;
  EXPECT_LT(took, 10s);
  EXPECT_FALSE(file_exists(dir / "ctx"));
  ASSERT_TRUE(orig->wait_for("callback entered", 5s)) << orig->output();
  auto a = orig->wait_for("tick", 5s);
  ASSERT_TRUE(a) << "the program runs on";
  EXPECT_NE(proc_state(pid), 't') << "released, not left traced";
}

// Ctrl-C on cr_checkpoint while it waits (here for a callback that never returns): it stops, lets
// the process go as it was, removes its temporary file and says so in one line, instead of dying
// with the bundle half-written.
TEST_F(Libcr, InterruptedCheckpointReleasesAndLeavesNothing) {
  auto orig = start("libcr_stuck_callback", {"100"});
  pid_t pid = pid_after(*orig, "ready pid=");
  ASSERT_GT(pid, 0) << orig->output();
  Child ck({tool("cr_checkpoint"), std::to_string(pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(orig->wait_for("callback entered", 10s)) << orig->output();
  ASSERT_EQ(::kill(ck.pid(), SIGINT), 0);
  auto status = ck.wait(10s);
  while (ck.read_line(2s)) {
  }
  ASSERT_TRUE(status) << "cr_checkpoint did not stop: " << ck.output();
  EXPECT_EQ(*status, 7) << ck.output();
  EXPECT_EQ(ck.output().rfind("cr_checkpoint: interrupted by SIGINT (", 0), 0u) << ck.output();
  EXPECT_EQ(std::count(ck.output().begin(), ck.output().end(), '\n'), 1) << ck.output();
  EXPECT_TRUE(dir.entries().empty()) << ::testing::PrintToString(dir.entries());
  EXPECT_TRUE(orig->wait_for("tick", 5s)) << "the program runs on";
  EXPECT_NE(proc_state(pid), 't') << "released, not left traced";
  EXPECT_EQ(tracer_of(pid), 0);
}

// An mpirun-like wrapper linked with -lcr_omit: a checkpoint of its tree takes the worker only.
TEST_F(Libcr, OmittedWrapperIsLeftOut) {
  auto orig = start("cr_omit_wrapper", {program("ckpt_counter"), "100"});
  auto w = orig->wait_for("wrapper pid=", 10s);
  ASSERT_TRUE(w) << orig->output();
  EXPECT_NE(w->find("omit=1"), std::string::npos) << *w;
  pid_t wrapper = static_cast<pid_t>(number_after(*w, "wrapper pid=").value_or(-1));
  pid_t worker = pid_after(*orig, "worker pid=");
  ASSERT_GT(worker, 0) << orig->output();
  auto at = next_counter(*orig, 10s);
  ASSERT_TRUE(at);
  ASSERT_TRUE(succeeded(checkpoint(wrapper, {"--kill"})));
  EXPECT_TRUE(wait_gone(worker, 10s));
  // The wrapper was not touched: it sees its worker die and exits with its status.
  auto status = orig->wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 128 + SIGKILL);
  auto info = ckpt::crbox("cr_inspect", {dir / "ctx"}, dir.path());
  EXPECT_NE(info.out.find("\"comm\": \"ckpt_counter\""), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find("\"comm\": \"cr_omit_wrapper\""), std::string::npos) << info.out;
  long last = drain_counter(*orig, *at);
  ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  auto next = next_counter(*rs, 10s);
  ASSERT_TRUE(next) << rs->output();
  EXPECT_EQ(*next, last + 1);
}

// A callback asking for a temporary failure cancels the checkpoint with the real engine: exit 7,
// one sentence, no file, the callbacks told, the program runs on; a permanent failure also kills
// it, as BLCR does (exit 8).
TEST_F(Libcr, CallbackFailuresCancelTheCheckpoint) {
  auto temp = start("libcr_probe", {"thread", "temp"});
  pid_t pid = pid_after(*temp, "ready pid=");
  ASSERT_GT(pid, 0) << temp->output();
  auto r = checkpoint(pid, {});
  EXPECT_EQ(r.status, 7) << "a temporary failure";
  EXPECT_NE(r.err.find("cancelled the checkpoint"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("temporary"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  auto rc = temp->wait_for("T rc=", 10s);
  ASSERT_TRUE(rc) << temp->output();
  EXPECT_EQ(*rc, "T rc=-2354") << "CR_ETEMPFAIL";
  ::kill(pid, SIGUSR2);
  EXPECT_TRUE(temp->wait_for("alive", 10s)) << temp->output();

  auto perm = start("libcr_probe", {"thread", "perm"});
  pid_t ppid = pid_after(*perm, "ready pid=");
  ASSERT_GT(ppid, 0) << perm->output();
  r = checkpoint(ppid, {});
  EXPECT_EQ(r.status, 8) << "a permanent failure";
  EXPECT_NE(r.err.find("permanent failure"), std::string::npos) << r.err;
  auto st = perm->wait(10s);
  ASSERT_TRUE(st) << "killed, as BLCR does";
  EXPECT_EQ(*st, 128 + SIGKILL);
}

// A callback widens its checkpoint to another process (cr_forward_checkpoint): both are in the
// image, and both come back.
TEST_F(Libcr, ForwardedCheckpointTakesTheOtherProcessToo) {
  auto counter = start("ckpt_counter", {"100"});
  pid_t cpid = pid_after(*counter, "pid=");
  ASSERT_GT(cpid, 0) << counter->output();
  auto at = next_counter(*counter, 10s);
  ASSERT_TRUE(at);
  auto fw = start("libcr_forward", {std::to_string(cpid)});
  pid_t fpid = pid_after(*fw, "ready pid=");
  ASSERT_GT(fpid, 0) << fw->output();
  ASSERT_TRUE(succeeded(checkpoint(fpid, {"--pid", "--kill"})));
  auto line = fw->wait_for("forwarded rc=", 10s);
  ASSERT_TRUE(line) << fw->output();
  EXPECT_EQ(*line, "forwarded rc=0");
  long last = drain_counter(*counter, *at);
  auto killed = counter->wait(10s);
  ASSERT_TRUE(killed) << "the forwarded process was checkpointed (and killed) too";
  EXPECT_EQ(*killed, 128 + SIGKILL);
  fw->wait(10s);
  auto info = ckpt::crbox("cr_inspect", {dir / "ctx"}, dir.path());
  EXPECT_NE(info.out.find("\"comm\": \"ckpt_counter\""), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\"comm\": \"libcr_forward\""), std::string::npos) << info.out;
  ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  ASSERT_TRUE(rs->wait_for("restart", 10s)) << rs->output();
  auto next = next_counter(*rs, 10s);
  ASSERT_TRUE(next) << rs->output();
  EXPECT_EQ(*next, last + 1);
}

// A restored process shares cr_restart's process group; a checkpoint of that group leaves
// cr_restart out (BLCR's --omit-maybe, the default).
TEST_F(Libcr, CrRestartIsOmittedFromItsGroup) {
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"100"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(next_counter(*orig.child, 10s));
  ASSERT_TRUE(succeeded(checkpoint(orig.pid, {"--kill"})));
  orig.child->wait(20s);
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  ASSERT_TRUE(next_counter(*rs, 10s)) << rs->output();
  auto r = ckpt::crbox("cr_checkpoint", {"-g", std::to_string(getpgid(rs->pid())), "-f", dir / "group"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  auto info = ckpt::crbox("cr_inspect", {dir / "group"}, dir.path());
  EXPECT_EQ(info.out.find("\"comm\": \"cr_restart\""), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("\"comm\": \"ckpt_counter\""), std::string::npos) << info.out;
}

}  // namespace
