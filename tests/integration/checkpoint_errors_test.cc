// Issue 4: bad input. cr_checkpoint refuses what it must not touch, fails cleanly on what it
// cannot do (one line on stderr, the target released as it was, no file under the final
// name); cr_restart rejects damaged bundles and leaves no process behind.
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "checkpoint_util.h"

namespace crbox::test::ckpt {
namespace {

class CheckpointErrors : public CkptTest {};

// A pid nobody uses: refused, the error names it, no file.
TEST_F(CheckpointErrors, UnknownPid) {
  ScratchDir dir;
  pid_t p = unused_pid();
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(p)}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find(std::to_string(p)), std::string::npos) << "the error should name the pid: " << r.err;
  EXPECT_TRUE(dir.entries().empty()) << "a file was left: " << dir.entries().front();
}

// The system's pid 1: refused before anything touches it.
TEST_F(CheckpointErrors, SystemInitRefused) {
  ScratchDir dir;
  char state = proc_state(1);
  auto r = crbox("cr_checkpoint", {"--pid", "1"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_EQ(tracer_of(1), 0);
  EXPECT_EQ(proc_state(1) == 'T' || proc_state(1) == 't', state == 'T' || state == 't');
  EXPECT_TRUE(dir.entries().empty());
}

// A kernel thread (kthreadd, pid 2, on this machine): refused, the error names the pid.
TEST_F(CheckpointErrors, KernelThreadRefused) {
  ScratchDir dir;
  pid_t k = kernel_thread();
  ASSERT_GT(k, 0) << "no kernel thread visible";
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(k)}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find(std::to_string(k)), std::string::npos) << "the error should name the pid: " << r.err;
  EXPECT_EQ(tracer_of(k), 0);
  EXPECT_TRUE(dir.entries().empty());
}

// The caller's own process (cr_checkpoint's parent, and with --tree a scope holding
// cr_checkpoint itself): refused, and we are left untraced.
TEST_F(CheckpointErrors, OwnCallerRefused) {
  ScratchDir dir;
  std::string me = std::to_string(getpid());
  for (std::string scope : {"--pid", "--tree"}) {
    SCOPED_TRACE(scope);
    auto r = crbox("cr_checkpoint", {scope, me}, dir.path(), 30s);
    EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
    EXPECT_EQ(tracer_of(getpid()), 0);
    EXPECT_TRUE(dir.entries().empty());
  }
}

// A process already traced by another tracer (this test, by PTRACE_SEIZE): a clear error
// about tracing; the process is still ours to trace, running, and counting.
TEST_F(CheckpointErrors, AlreadyTracedRefused) {
  ScratchDir dir;
  Child c({program("ckpt_counter"), "200"}, dir.path());
  ASSERT_TRUE(c.wait_for("i = 1", 10s));
  pid_t pid = c.pid();
  ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << "cannot seize our own child";
  pid_t me = static_cast<pid_t>(syscall(SYS_gettid));
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(pid)}, dir.path(), 30s);
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "trac")) << "the error should say the process is traced: " << r.err;
  EXPECT_EQ(tracer_of(pid), me) << "our trace was disturbed";
  char st = proc_state(pid);
  EXPECT_TRUE(st == 'S' || st == 'R') << "state " << st;
  auto a = next_counter(c);
  auto b = next_counter(c);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*b, *a + 1);
  EXPECT_TRUE(dir.entries().empty());
  // Let go of it.
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
  ASSERT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0);
  EXPECT_TRUE(eventually([&] { return tracer_of(pid) == 0; }, 5s));
}

// Output that cannot be created: an error, the process running on untraced, no file.
TEST_F(CheckpointErrors, UnwritableOutput) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_counter", {"200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto first = next_counter(*orig.child);
  ASSERT_TRUE(first);
  long last = *first;
  for (std::string path : {dir / "no/such/dir/ctx", std::string("/proc/nonexistent/ctx")}) {
    SCOPED_TRACE(path);
    auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", path}, dir.path());
    EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
    EXPECT_TRUE(released(orig.pid));
    EXPECT_FALSE(file_exists(path));
    last = drain_counter(*orig.child, last, 100ms);
    auto v = next_counter(*orig.child);
    ASSERT_TRUE(v) << "the process stopped counting";
    EXPECT_EQ(*v, last + 1);
    last = *v;
  }
  EXPECT_TRUE(dir.entries().empty());
}

// A file system that fills up in the middle of the bundle (a 1 MiB tmpfs, 16 MiB of memory):
// an error, the process released with its memory intact, nothing under the final name and
// no temporary file left either.
TEST_F(CheckpointErrors, DiskFullMidway) {
  ScratchDir dir;
  std::string small = dir / "small";
  ASSERT_EQ(mkdir(small.c_str(), 0755), 0);
  ASSERT_EQ(mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m"), 0) << "cannot mount a tmpfs: " << strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  std::string why;
  auto orig = launch(Mode::Plain, "ckpt_memory", {"16", "3", "200"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto ready = orig.child->wait_for("ready sum=", 20s);
  ASSERT_TRUE(ready);
  auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", small + "/ctx"}, dir.path());
  EXPECT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(released(orig.pid));
  EXPECT_FALSE(file_exists(small + "/ctx")) << "a partial bundle sits under the final name";
  std::vector<std::string> left;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(small, ec)) left.push_back(e.path().filename().string());
  EXPECT_TRUE(left.empty()) << "a temporary file was left: " << left.front();
  auto line = next_starting(*orig.child, "sum=", 10s);
  ASSERT_TRUE(line);
  EXPECT_EQ(token_after(*line, "sum="), token_after(*ready, "sum="));
  EXPECT_NE(line->find("check=ok"), std::string::npos) << *line;
}

// ---- damaged bundles -------------------------------------------------------------------------

class RestartErrors : public CkptTest {
 protected:
  // A valid bundle of ckpt_memory (16 MiB) whose process is gone; returns its pid.
  pid_t make_bundle(const ScratchDir& dir, const std::string& file) {
    std::string why;
    auto orig = launch(Mode::Plain, "ckpt_memory", {"16", "5", "200"}, dir.path(), &why);
    EXPECT_GT(orig.pid, 0) << why;
    if (orig.pid <= 0) return -1;
    EXPECT_TRUE(orig.child->wait_for("ready sum=", 20s));
    auto r = crbox("cr_checkpoint", {"--pid", std::to_string(orig.pid), "-f", file, "--kill"}, dir.path());
    EXPECT_TRUE(succeeded(r));
    orig.child->wait(20s);
    EXPECT_TRUE(wait_gone(orig.pid));
    return orig.pid;
  }

  // cr_restart on `file` fails with one line and leaves no process: nothing at the
  // original's pid, nothing left among our children (we are a subreaper, so orphans land here).
  void expect_rejected(const std::string& file, pid_t original, const ScratchDir& dir) {
    auto r = crbox("cr_restart", {file}, dir.path(), 30s);
    EXPECT_TRUE(failed_with_one_line(r, "cr_restart"));
    if (original > 0) {
      EXPECT_FALSE(process_alive(original)) << "a process runs at the original's pid " << original;
      PidGuard g;
      g.add(original);
    }
    std::vector<pid_t> left;
    eventually([&] { return (left = live_children()).empty(); }, 3s);
    EXPECT_TRUE(left.empty()) << "cr_restart left process " << left.front() << " (" << comm_of(left.front())
                              << ") behind";
    auto i = crbox("cr_inspect", {file}, dir.path(), 30s);
    EXPECT_NE(i.status, 0) << "cr_inspect accepts the damaged bundle";
  }
};

TEST_F(RestartErrors, NotABundle) {
  ScratchDir dir;
  spit(dir / "text", "this is not a crbox bundle, just some text\n");
  spit(dir / "empty", "");
  std::string zeros(1 << 20, '\0');
  spit(dir / "zeros", zeros);
  for (auto f : {"text", "empty", "zeros"}) {
    SCOPED_TRACE(f);
    expect_rejected(dir / f, -1, dir);
  }
  auto r = crbox("cr_restart", {dir / "missing"}, dir.path(), 30s);
  EXPECT_TRUE(failed_with_one_line(r, "cr_restart"));
}

TEST_F(RestartErrors, TruncatedBundle) {
  ScratchDir dir;
  std::string good = dir / "good";
  pid_t pid = make_bundle(dir, good);
  ASSERT_GT(pid, 0);
  std::string data = slurp(good);
  ASSERT_GT(data.size(), 16u << 20);
  for (size_t cut : {size_t{100}, size_t{4096}, data.size() / 2, data.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    spit(dir / "cut", data.substr(0, cut));
    expect_rejected(dir / "cut", pid, dir);
  }
}

TEST_F(RestartErrors, BitFlippedBundle) {
  ScratchDir dir;
  std::string good = dir / "good";
  pid_t pid = make_bundle(dir, good);
  ASSERT_GT(pid, 0);
  std::string data = slurp(good);
  // Inside the page data (the 16 MiB pattern is most of the file), at two places.
  for (size_t at : {data.size() / 3, data.size() * 3 / 5}) {
    SCOPED_TRACE("flip at " + std::to_string(at));
    spit(dir / "flipped", data);
    flip_bit(dir / "flipped", static_cast<off_t>(at));
    expect_rejected(dir / "flipped", pid, dir);
  }
  // The good one still restores (so the rejections above were about the damage).
  auto rs = start_restart(good, {}, dir.path());
  auto line = next_starting(*rs, "sum=", 30s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_NE(line->find("check=ok"), std::string::npos) << *line;
}

}  // namespace
}  // namespace crbox::test::ckpt
