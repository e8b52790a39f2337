// Issue 4: process state carried across a checkpoint — memory, registers, signal state,
// blocked system calls, file offsets — each verified by the restored program itself.
// Every test also checks the original is undisturbed after a checkpoint that lets it run on.
#include <signal.h>
#include <unistd.h>

#include <tuple>

#include "checkpoint_util.h"

namespace crbox::test::ckpt {
namespace {

std::string ParamName(Mode m) { return mode_name(m); }

// Checkpoints pid into dir/ctx with extra options; asserts success.
::testing::AssertionResult checkpoint(pid_t pid, const ScratchDir& dir, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"--pid", std::to_string(pid), "-f", dir / "ctx"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = crbox("cr_checkpoint", args, dir.path());
  if (r.status != 0) return succeeded(r);
  if (!file_exists(dir / "ctx")) return ::testing::AssertionFailure() << "cr_checkpoint succeeded but wrote no file";
  return ::testing::AssertionSuccess();
}

// ---- memory ----------------------------------------------------------------------------------

class CheckpointMemory : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// 256 MiB of patterned anonymous memory (plus a sparse region, an all-zero region and heap)
// is intact after restart: the program recomputes the checksum and checks every word.
// The image holds the touched data but neither never-touched nor all-zero pages.
TEST_P(CheckpointMemory, Pattern256MiBSurvives) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_memory", {"256", "7", "200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto ready = orig.child->wait_for("ready sum=", 60s);
  ASSERT_TRUE(ready) << orig.child->output();
  std::string sum = token_after(*ready, "sum=");
  auto first = next_starting(*orig.child, "sum=", 30s);
  ASSERT_TRUE(first);
  ASSERT_NE(first->find("check=ok"), std::string::npos) << *first;

  ASSERT_TRUE(checkpoint(orig.pid, dir));
  EXPECT_TRUE(released(orig.pid));
  auto after = next_starting(*orig.child, "sum=", 30s);
  ASSERT_TRUE(after);
  EXPECT_EQ(token_after(*after, "sum="), sum);
  EXPECT_NE(after->find("check=ok"), std::string::npos) << "the dump changed the original's memory: " << *after;

  off_t size = file_size(dir / "ctx");
  EXPECT_GE(size, 256ll << 20) << "the image cannot hold 256 MiB of incompressible data";
  EXPECT_LE(size, (256ll + 8) << 20) << "the image seems to store never-touched or all-zero pages";

  ASSERT_TRUE(kill_original(orig));
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  for (int k = 0; k < 2; k++) {
    auto line = next_starting(*rs, "sum=", 90s);
    ASSERT_TRUE(line) << "no report from the restored program: " << rs->output();
    EXPECT_EQ(token_after(*line, "sum="), sum) << *line;
    EXPECT_NE(line->find("check=ok"), std::string::npos) << *line;
  }
}

INSTANTIATE_TEST_SUITE_P(, CheckpointMemory, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return ParamName(info.param); });

// ---- registers -------------------------------------------------------------------------------

class CheckpointRegisters : public CkptTest, public ::testing::WithParamInterface<std::tuple<Mode, std::string>> {};

// Values held in xmm/ymm/zmm (the widest this CPU has) and r12-r15, MXCSR and the x87 control
// word, across a checkpoint taken during a raw nanosleep ("sleep") or a syscall-free loop
// ("spin"). The program compares every register with memory after each round.
TEST_P(CheckpointRegisters, VectorRegistersSurvive) {
  auto [mode, how] = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_xmm", {how, "auto", "300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("regs ok 2", 20s)) << orig.child->output();
  ASSERT_TRUE(checkpoint(orig.pid, dir));
  EXPECT_TRUE(released(orig.pid));
  for (int k = 0; k < 2; k++) {
    auto line = next_starting(*orig.child, "regs ", 10s);
    ASSERT_TRUE(line);
    EXPECT_EQ(line->rfind("regs ok", 0), 0u) << "the dump changed the original's registers: " << *line;
  }
  ASSERT_TRUE(kill_original(orig));
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  long prev = -1;
  for (int k = 0; k < 3; k++) {
    auto line = next_starting(*rs, "regs ", 30s);
    ASSERT_TRUE(line) << rs->output();
    EXPECT_EQ(line->rfind("regs ok", 0), 0u) << *line;
    auto round = number_after(*line, "ok ");
    ASSERT_TRUE(round);
    if (k == 0) EXPECT_GE(*round, 2);
    else EXPECT_EQ(*round, prev + 1);
    prev = static_cast<long>(*round);
  }
}

INSTANTIATE_TEST_SUITE_P(, CheckpointRegisters,
                         ::testing::Combine(::testing::Values(Mode::Plain, Mode::Sandbox),
                                            ::testing::Values(std::string("sleep"), std::string("spin"))),
                         [](const auto& info) {
                           return ParamName(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

// ---- busy loop and vDSO clock ----------------------------------------------------------------

class CheckpointSpin : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// Caught in user mode in a syscall-free loop: the computation goes on consistently and
// CLOCK_MONOTONIC read through the vDSO never goes back (the program checks both).
TEST_P(CheckpointSpin, BusyLoopAndClockContinue) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_spin", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto l2 = orig.child->wait_for("spin 2 ", 20s);
  ASSERT_TRUE(l2) << orig.child->output();
  auto steps_before = number_after(*l2, "steps=");
  ASSERT_TRUE(checkpoint(orig.pid, dir));
  EXPECT_TRUE(released(orig.pid));
  auto l = next_starting(*orig.child, "spin ", 10s);
  ASSERT_TRUE(l);
  EXPECT_NE(l->find(" ok"), std::string::npos) << *l;
  ASSERT_TRUE(kill_original(orig));
  auto rs = start_restart(dir / "ctx", {}, dir.path());
  long long prev_steps = steps_before ? *steps_before : 0;
  for (int k = 0; k < 3; k++) {
    auto line = next_starting(*rs, "spin ", 30s);
    ASSERT_TRUE(line) << rs->output();
    EXPECT_NE(line->find(" ok"), std::string::npos) << *line;
    auto steps = number_after(*line, "steps=");
    ASSERT_TRUE(steps) << *line;
    EXPECT_GT(*steps, prev_steps);
    prev_steps = *steps;
  }
}

INSTANTIATE_TEST_SUITE_P(, CheckpointSpin, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return ParamName(info.param); });

// ---- signals ---------------------------------------------------------------------------------

class CheckpointSignals : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// Handlers (SA_SIGINFO|SA_RESTART|SA_ONSTACK with a mask; a plain one), SIG_IGN, the blocked
// mask, a pending blocked SIGRTMIN, the alternate stack and the handler counters: the program
// checks them all on SIGUSR1, before the checkpoint, in the original after it and in the
// restored process.
TEST_P(CheckpointSignals, HandlersMasksAltStackPending) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_signals", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s));
  ::kill(orig.pid, SIGUSR1);
  auto s = next_starting(*orig.child, "signals ", 10s);
  ASSERT_TRUE(s);
  ASSERT_EQ(*s, "signals ok usr1=1 usr2=0");
  ::kill(orig.pid, SIGUSR2);
  ASSERT_TRUE(orig.child->wait_for("usr2 1", 10s));

  ASSERT_TRUE(checkpoint(orig.pid, dir));
  EXPECT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  s = next_starting(*orig.child, "signals ", 10s);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "signals ok usr1=2 usr2=1") << "the dump changed the original's signal state";
  ASSERT_TRUE(kill_original(orig));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  ASSERT_TRUE(rs->wait_for("tick", 30s)) << rs->output();
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ckpt_signals");
  ASSERT_GT(rp, 0);
  PidGuard guard;
  guard.add(rp);
  ::kill(rp, SIGUSR1);
  s = next_starting(*rs, "signals ", 10s);
  ASSERT_TRUE(s) << rs->output();
  EXPECT_EQ(*s, "signals ok usr1=2 usr2=1");
  ::kill(rp, SIGUSR2);
  EXPECT_TRUE(rs->wait_for("usr2 2", 10s)) << rs->output();
  EXPECT_TRUE(rs->wait_for("tick", 10s)) << "the restored program stopped after its signals";
}

INSTANTIATE_TEST_SUITE_P(, CheckpointSignals, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return ParamName(info.param); });

// ---- blocked system calls ----------------------------------------------------------------------

class CheckpointBlocked : public CkptTest, public ::testing::WithParamInterface<std::tuple<Mode, std::string>> {};

// System call numbers (x86_64) a blocked ckpt_block may sit in, per mode.
std::vector<long> syscalls_for(const std::string& how) {
  if (how == "nanosleep") return {35, 230};  // nanosleep, clock_nanosleep
  if (how == "read") return {0};
  return {23, 270};                           // select, pselect6
}

// Checkpointed while blocked in nanosleep (2 s), read on its own pipe (woken by SIGUSR1,
// whose SA_RESTART handler writes the byte), or select with a 2 s timeout. The original,
// released, completes its call with no EINTR it could see; the restored process completes
// the same call correctly (a full sleep, the right byte, a full timeout).
TEST_P(CheckpointBlocked, BlockedCallCompletes) {
  auto [mode, how] = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ckpt_block", {how, "2000"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("blocking " + how + " 0", 10s)) << orig.child->output();
  auto want = syscalls_for(how);
  std::optional<long> nr;
  ASSERT_TRUE(eventually(
      [&] {
        nr = syscall_nr(orig.pid);
        return proc_state(orig.pid) == 'S' && nr && std::find(want.begin(), want.end(), *nr) != want.end();
      },
      5s))
      << "the program is not blocked in " << how << " (syscall " << (nr ? *nr : -1) << ")";

  ASSERT_TRUE(checkpoint(orig.pid, dir));
  EXPECT_TRUE(released(orig.pid));
  if (how == "read") ::kill(orig.pid, SIGUSR1);
  auto woke = next_starting(*orig.child, "woke ", 15s);
  ASSERT_TRUE(woke) << orig.child->output();
  EXPECT_EQ(woke->rfind("woke " + how + " ok 0 eintr=0", 0), 0u)
      << "the dump disturbed the original's blocked call: " << *woke;
  ASSERT_TRUE(kill_original(orig));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = -1;
  if (how == "read") {
    rp = restored_pid(*rs, mode, orig.pid, "ckpt_block");
    ASSERT_GT(rp, 0) << rs->output();
    // Let it get back into read(), then wake it.
    eventually([&] { return proc_state(rp) == 'S' && tracer_of(rp) == 0; }, 10s);
    ::kill(rp, SIGUSR1);
  }
  woke = next_starting(*rs, "woke ", 30s);
  ASSERT_TRUE(woke) << "the restored program never came out of " << how << ": " << rs->output();
  EXPECT_EQ(woke->rfind("woke " + how + " ok 0", 0), 0u) << *woke;
  // And it goes on to the next round normally.
  EXPECT_TRUE(rs->wait_for("blocking " + how + " 1", 10s)) << rs->output();
}

INSTANTIATE_TEST_SUITE_P(, CheckpointBlocked,
                         ::testing::Combine(::testing::Values(Mode::Plain, Mode::Sandbox),
                                            ::testing::Values(std::string("nanosleep"), std::string("read"),
                                                              std::string("select"))),
                         [](const auto& info) {
                           return ParamName(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

class RestartStdio : public CkptTest {};

// Blocked in read(0) on a stdin pipe: after restart, stdin is cr_restart's own stdin, and a
// line written there is what the restored read returns.
TEST_F(RestartStdio, BlockedReadOnStdinPipeReadsRestartStdin) {
  ScratchDir dir;
  PipedChild orig(cr_run_argv(Mode::Plain, "ckpt_block", {"stdin"}), dir.path());
  auto pl = orig.wait_for("pid=", 20s);
  ASSERT_TRUE(pl) << orig.output();
  pid_t pid = static_cast<pid_t>(number_after(*pl, "pid=").value_or(-1));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(orig.wait_for("blocking stdin 0", 10s));
  ASSERT_TRUE(eventually([&] { return syscall_nr(pid) == 0L && proc_state(pid) == 'S'; }, 5s));
  ASSERT_TRUE(checkpoint(pid, dir));
  EXPECT_TRUE(released(pid));
  ASSERT_TRUE(orig.write("one\n"));
  auto woke = next_starting(orig, "woke ", 10s);
  ASSERT_TRUE(woke);
  EXPECT_EQ(*woke, "woke stdin ok 0 eintr=0 got=one");
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(orig.wait(20s));
  ASSERT_TRUE(wait_gone(pid));

  PipedChild rs({tool("cr_restart"), dir / "ctx"}, dir.path());
  ASSERT_TRUE(eventually([&] { return process_alive(pid) && tracer_of(pid) == 0 && proc_state(pid) == 'S'; },
                         30s))
      << rs.output();
  ASSERT_TRUE(rs.write("two\n"));
  woke = next_starting(rs, "woke ", 20s);
  ASSERT_TRUE(woke) << rs.output();
  EXPECT_EQ(woke->rfind("woke stdin ok 0 ", 0), 0u) << *woke;
  EXPECT_NE(woke->find("got=two"), std::string::npos) << *woke;
}

// ---- files -----------------------------------------------------------------------------------

class CheckpointFiles : public CkptTest, public ::testing::WithParamInterface<Mode> {};

// A file read a few bytes at a time continues at its offset (the program checks the kernel's
// position and the bytes), and an O_APPEND log goes on appending: the log's lines, written
// by the original and then the restored process, are one unbroken sequence.
TEST_P(CheckpointFiles, ReadOffsetAndAppendContinue) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string data = dir / "data.txt", log = dir / "read.log";
  write_known_file(data, 8192);
  std::string why;
  auto orig = launch(mode, "ckpt_fileoffset", {data, "4", "100", log}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("offset=40 ", 20s)) << orig.child->output();
  ASSERT_TRUE(checkpoint(orig.pid, dir, {"--kill"}));
  ASSERT_TRUE(orig.child->wait(20s));
  ASSERT_TRUE(wait_gone(orig.pid));
  long long last = 40;
  for (;;) {
    auto line = orig.child->read_line(300ms);
    if (!line) break;
    ASSERT_EQ(line->find("BAD"), std::string::npos) << *line;
    if (auto v = number_after(*line, "offset=")) last = *v;
  }

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  long long want = last + 4;
  for (int k = 0; k < 4; k++, want += 4) {
    auto line = next_starting(*rs, "offset=", 30s);
    ASSERT_TRUE(line) << rs->output();
    EXPECT_EQ(number_after(*line, "offset="), want) << *line;
    EXPECT_NE(line->find(" ok"), std::string::npos) << *line;
  }
  // The log: offset=0, 4, 8, ... with no gap and no repeat.
  std::string text = slurp(log);
  long long expect = 0;
  size_t pos = 0;
  int lines = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string l = text.substr(pos, nl - pos);
    EXPECT_EQ(number_after(l, "offset="), expect) << "log line " << lines << ": " << l;
    expect += 4;
    lines++;
    pos = nl + 1;
  }
  EXPECT_GE(expect, want - 4) << "the restored process did not append to the log";
}

INSTANTIATE_TEST_SUITE_P(, CheckpointFiles, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return ParamName(info.param); });

// ---- after-checkpoint actions -----------------------------------------------------------------

class CheckpointAfter : public CkptTest {};

// --stop: stopped (not traced) with no more output; SIGCONT resumes at the next value.
TEST_F(CheckpointAfter, StopLeavesItStopped) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(next_counter(*orig.child));
  ASSERT_TRUE(checkpoint(orig.pid, dir, {"--stop"}));
  ASSERT_TRUE(eventually([&] { return proc_state(orig.pid) == 'T'; }, 5s)) << "state " << proc_state(orig.pid);
  EXPECT_EQ(tracer_of(orig.pid), 0);
  long last = drain_counter(*orig.child, 0, 1000ms);
  EXPECT_FALSE(orig.child->read_line(600ms)) << "a stopped process printed";
  ::kill(orig.pid, SIGCONT);
  auto v = next_counter(*orig.child);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, last + 1);
  EXPECT_TRUE(released(orig.pid));
}

// --cont (the default, explicitly): runs on, untraced, counting by one.
TEST_F(CheckpointAfter, ContRunsOn) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto v0 = next_counter(*orig.child);
  ASSERT_TRUE(v0);
  ASSERT_TRUE(checkpoint(orig.pid, dir, {"--cont"}));
  EXPECT_TRUE(released(orig.pid));
  auto a = next_counter(*orig.child);
  auto b = next_counter(*orig.child);
  ASSERT_TRUE(a && b);
  EXPECT_GT(*a, *v0);
  EXPECT_EQ(*b, *a + 1);
}

// --kill ends it with SIGKILL; --term with SIGTERM. Both leave a complete file.
TEST_F(CheckpointAfter, KillAndTermEndIt) {
  for (std::string opt : {"--kill", "--term"}) {
    SCOPED_TRACE(opt);
    ScratchDir dir;
    std::string why;
    auto orig = launch(Mode::Plain, "ckpt_counter", {"200"}, dir.path(), &why);
    ASSERT_GT(orig.pid, 0) << why;
    ASSERT_TRUE(next_counter(*orig.child));
    ASSERT_TRUE(checkpoint(orig.pid, dir, {opt}));
    auto st = orig.child->wait(20s);
    ASSERT_TRUE(st) << opt << " did not end the process";
    EXPECT_EQ(*st, 128 + (opt == "--kill" ? SIGKILL : SIGTERM));
    EXPECT_TRUE(wait_gone(orig.pid));
    auto r = crbox("cr_inspect", {dir / "ctx"}, dir.path());
    EXPECT_TRUE(succeeded(r)) << "the bundle left by " << opt << " is not valid";
  }
}

// ---- cr_inspect ------------------------------------------------------------------------------

class CheckpointInspect : public CkptTest {};

// cr_inspect prints a valid bundle as JSON naming the program, and exits 0.
TEST_F(CheckpointInspect, ValidBundleIsJson) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(next_counter(*orig.child));
  ASSERT_TRUE(checkpoint(orig.pid, dir));
  auto r = crbox("cr_inspect", {dir / "ctx"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  auto b = r.out.find_first_not_of(" \t\r\n");
  ASSERT_NE(b, std::string::npos) << "cr_inspect printed nothing";
  EXPECT_TRUE(r.out[b] == '{' || r.out[b] == '[') << "not JSON: " << r.out.substr(0, 200);
  auto e = r.out.find_last_not_of(" \t\r\n");
  EXPECT_TRUE(r.out[e] == '}' || r.out[e] == ']') << "JSON not closed";
  EXPECT_NE(r.out.find("ckpt_counter"), std::string::npos) << "the JSON does not name the program";
}

}  // namespace
}  // namespace crbox::test::ckpt
