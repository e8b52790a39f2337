// Open files come back as they were: shared open file descriptions, locks, deleted files, memfds;
// files that changed are reported; --relocate finds them elsewhere; --save-* keeps the executable
// and mapped files in the bundle.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class Files : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  // Starts files_state in `dir`, checkpoints it into dir/ctx with --kill.
  void take(const ScratchDir& dir, const std::string& cwd) {
    std::string why;
    auto orig = launch(GetParam(), "files_state", {}, cwd, &why);
    ASSERT_GT(orig.pid, 0) << why;
    ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
    auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
    ASSERT_TRUE(succeeded(r));
    orig.child->wait(20s);
    // Its child, killed too, was handed to us (a subreaper): reap it, so its pid is free again.
    ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));
    pid_ = orig.pid;
  }

  // Restarts dir/ctx with `extra` options and asks the restored program to check itself.
  void expect_ok(const ScratchDir& dir, const std::vector<std::string>& extra) {
    auto rs = start_restart(dir / "ctx", extra, dir.path());
    ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
    pid_t rp = restored_pid(*rs, GetParam(), pid_, "files_state");
    ASSERT_GT(rp, 0) << rs->output();
    ::kill(rp, SIGUSR1);
    auto line = next_starting(*rs, "files ", 10s);
    ASSERT_TRUE(line) << rs->output();
    EXPECT_EQ(*line, "files ok");
  }

  pid_t pid_ = 0;  // the original's pid
};

pid_t pid_in(const std::string& pid_line) { return static_cast<pid_t>(number_after(pid_line, "pid=").value_or(-1)); }

TEST_P(Files, DescriptionsLocksDeletedFilesAndMemfdsSurvive) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(take(dir, dir.path()));
  // The deleted file and the memfd travel in the bundle.
  auto info = ckpt::crbox("cr_inspect", {dir / "ctx"}, dir.path());
  EXPECT_NE(info.out.find("\"kind\": \"memfd\""), std::string::npos);
  EXPECT_NE(info.out.find("gone.dat"), std::string::npos);
  expect_ok(dir, {});
}

TEST_P(Files, AChangedFileIsReportedUnlessAccepted) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(take(dir, dir.path()));
  spit(dir / "shared.dat", slurp(dir / "shared.dat") + "more");
  auto r = run({tool("cr_restart"), dir / "ctx"}, 30s, dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("shared.dat has changed since the checkpoint (size 4096 then, 4100 now)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--accept-changed-files"), std::string::npos) << r.err;
  expect_ok(dir, {"--accept-changed-files"});
}

TEST_P(Files, RelocateFindsFilesUnderANewPath) {
  ScratchDir dir;
  std::string old_dir = dir / "old", new_dir = dir / "new";
  ASSERT_EQ(mkdir(old_dir.c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(take(dir, old_dir));
  std::filesystem::rename(old_dir, new_dir);
  auto r = run({tool("cr_restart"), dir / "ctx"}, 30s, dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("is missing"), std::string::npos) << r.err;
  expect_ok(dir, {"--relocate", old_dir + "=" + new_dir});
}

INSTANTIATE_TEST_SUITE_P(, Files, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

// The executable: replaced after the checkpoint (a rebuild), or deleted while it runs.
class SavedExe : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  // Runs a copy of ckpt_counter, named "counter", from the scratch directory, and waits for its
  // first line.
  void start_copy() {
    std::filesystem::copy_file(program("ckpt_counter"), dir / "counter");
    std::vector<std::string> argv{tool("cr_run")};
    if (GetParam() == Mode::Sandbox) argv.push_back("--sandbox");
    argv.insert(argv.end(), {dir / "counter", "100"});
    orig = std::make_unique<Child>(argv, dir.path());
    auto line = orig->wait_for("pid=", 10s);
    ASSERT_TRUE(line) << orig->output();
    pid = GetParam() == Mode::Plain ? pid_in(*line) : find_by_comm(orig->pid(), "counter", 10s);
    ASSERT_GT(pid, 0) << orig->output();
    auto first = next_counter(*orig, 10s);
    ASSERT_TRUE(first);
    at = *first;
  }
  // Checkpoints it into dir/ctx with `extra` options and --kill; returns the last line it printed.
  long checkpoint_and_kill(const std::vector<std::string>& extra) {
    std::vector<std::string> args{std::to_string(pid), "-f", dir / "ctx"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--kill");
    EXPECT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", args, dir.path())));
    orig->wait(20s);
    return drain_counter(*orig, at);
  }
  // Restarts and expects the counter to go on from where it was.
  void expect_continues(const std::vector<std::string>& extra, long at) {
    auto rs = start_restart(dir / "ctx", extra, dir.path());
    auto next = next_counter(*rs, 10s);
    ASSERT_TRUE(next) << rs->output();
    EXPECT_GT(*next, at);
    EXPECT_LE(*next, at + 3);
  }
  // A different program now stands at the executable's path.
  void replace_exe() {
    std::filesystem::remove(dir / "counter");
    std::filesystem::copy_file(program("ckpt_spin"), dir / "counter");
  }

  ScratchDir dir;
  std::unique_ptr<Child> orig;
  pid_t pid = -1;
  long at = 0;
};

TEST_P(SavedExe, ReplacedExecutableNeedsSaveExe) {
  ASSERT_NO_FATAL_FAILURE(start_copy());
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(pid), "-f", dir / "plain"}, dir.path())));
  long last = checkpoint_and_kill({"--save-exe"});
  replace_exe();
  // Without the executable in the bundle: a clear refusal.
  auto r = run({tool("cr_restart"), dir / "plain"}, 30s, dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/counter ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has changed since the checkpoint"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--save-all"), std::string::npos) << r.err;
  expect_continues({}, last);
}

TEST_P(SavedExe, DeletedExecutableIsKeptAutomatically) {
  ASSERT_NO_FATAL_FAILURE(start_copy());
  std::filesystem::remove(dir / "counter");  // as a rebuild or an uninstall does
  long last = checkpoint_and_kill({});
  expect_continues({}, last);
}

TEST_P(SavedExe, SaveAllNeedsNoFileOfTheMachine) {
  ASSERT_NO_FATAL_FAILURE(start_copy());
  long last = checkpoint_and_kill({"--save-all"});
  replace_exe();
  auto info = ckpt::crbox("cr_inspect", {dir / "ctx"}, dir.path());
  EXPECT_NE(info.out.find("libc.so"), std::string::npos) << "the C library's content is in the bundle";
  expect_continues({}, last);
}

INSTANTIATE_TEST_SUITE_P(, SavedExe, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

TEST(SaveOptions, SaveNoneContradictsTheOthers) {
  auto r = run({tool("cr_checkpoint"), "--save-none", "--save-all", "1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--save-none contradicts"), std::string::npos) << r.err;
}

TEST(RelocateOption, NeedsTwoAbsolutePaths) {
  auto r = run({tool("cr_restart"), "--relocate", "data", "x"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--relocate takes OLD=NEW"), std::string::npos) << r.err;
}

}  // namespace
