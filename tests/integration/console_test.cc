// A sandboxed program with a controlling terminal (cr_run --sandbox --tty): cr_run runs on a
// pseudo-terminal the test makes (as on a user's terminal), the program checks its terminal from
// inside (tty_probe "check": stdio on a pty, foreground, /dev/tty, ECHO off as it set it, window
// size), and after a checkpoint it is restarted by a cr_restart running on ANOTHER pty: its output
// appears there, what is typed there reaches it, and the same checks pass, with the new
// terminal's window size (announced by a SIGWINCH).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

// A process whose controlling terminal and stdin/stdout/stderr are the slave of a pty the test
// holds the master of (so the test is its terminal: it reads what it prints, types to it).
class OnPty {
 public:
  OnPty(const std::vector<std::string>& argv, const std::string& cwd, unsigned short rows, unsigned short cols) {
    winsize ws{rows, cols, 0, 0};
    if (openpty(&master_, &slave_, nullptr, nullptr, &ws) != 0) throw std::runtime_error("openpty failed");
    fcntl(master_, F_SETFD, FD_CLOEXEC);
    fcntl(slave_, F_SETFD, FD_CLOEXEC);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // A session of its own with the pty as its controlling terminal, as a login shell has.
      setsid();
      if (ioctl(slave_, TIOCSCTTY, 0) != 0) _exit(126);
      for (int fd = 0; fd <= 2; fd++) dup2(slave_, fd);
      syscall(SYS_close_range, 3, ~0u, 0);
      if (chdir(cwd.c_str()) != 0) _exit(125);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~OnPty() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(master_);
    close(slave_);
  }
  OnPty(const OnPty&) = delete;
  OnPty& operator=(const OnPty&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& output() const { return all_; }

  // Next line the process printed ("\r\n" as a terminal ends lines), without the "\r".
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !pump(static_cast<int>(left.count()))) return std::nullopt;
    }
  }
  std::optional<std::string> wait_for(const std::string& needle, std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto line = read_line(left);
      if (!line) return std::nullopt;
      if (line->find(needle) != std::string::npos) return line;
    }
  }
  // Types `s` on the terminal.
  bool type(const std::string& s) { return write(master_, s.data(), s.size()) == static_cast<ssize_t>(s.size()); }
  // Waits for the exit (reading what it still prints meanwhile): exit code or 128+signal.
  std::optional<int> wait(std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        while (pump(50)) {
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      pump(50);
    }
    return std::nullopt;
  }
  // The terminal's settings, as its slave has them now.
  termios settings() const {
    termios t{};
    tcgetattr(slave_, &t);
    return t;
  }

 private:
  // Reads what is there within `ms`; false when nothing came.
  bool pump(int ms) {
    pollfd p{master_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN)) return false;
    char b[4096];
    ssize_t n = read(master_, b, sizeof b);
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    all_.append(b, static_cast<size_t>(n));
    return true;
  }

  int master_ = -1, slave_ = -1;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string buf_, all_;
};

std::string run_inspect(const std::string& file) { return run({tool("cr_inspect"), file}).out; }

class Console : public CkptTest {};

TEST_F(Console, SandboxedProgramKeepsItsTerminalAcrossRestart) {
  ScratchDir dir;
  // 1. cr_run --sandbox --tty on a 30x100 terminal.
  OnPty run({tool("cr_run"), "--sandbox", "--tty", "--", program("tty_probe")}, dir.path(), 30, 100);
  ASSERT_TRUE(run.wait_for("ready", 20s)) << run.output();
  pid_t pid = find_by_comm(run.pid(), "tty_probe");
  ASSERT_GT(pid, 0) << run.output();
  ASSERT_TRUE(run.type("check\n"));
  auto line = run.wait_for("check ", 10s);
  ASSERT_TRUE(line) << run.output();
  EXPECT_EQ(*line, "check ok rows=30 cols=100 winch=0 sid=1");
  // Input typed on cr_run's terminal reaches the program (and is not echoed: ECHO is off).
  ASSERT_TRUE(run.type("hello\n"));
  line = run.wait_for("hello", 10s);
  ASSERT_TRUE(line) << run.output();
  EXPECT_EQ(*line, "got hello");
  // While it relays, cr_run's own terminal is raw.
  EXPECT_EQ(run.settings().c_lflag & (ICANON | ECHO), 0u);

  // 2. Checkpoint, killing it: cr_run ends with the program's status and gives its terminal back
  // as it found it.
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(pid), "-f", dir / "ctx", "--kill"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(run.wait(20s), 137) << run.output();
  EXPECT_EQ(run.settings().c_lflag & (ICANON | ECHO), static_cast<tcflag_t>(ICANON | ECHO));

  auto in = run_inspect(dir / "ctx");
  EXPECT_NE(in.find("\"tty\": true"), std::string::npos) << in;
  EXPECT_NE(in.find("\"kind\": \"console\""), std::string::npos) << in;
  EXPECT_NE(in.find("\"console\": {"), std::string::npos) << in;

  // 3. cr_restart on another terminal, 40x120: the program prints there, reads from there, and is
  // still in the foreground of a terminal of its own, ECHO still off; the window size is the new
  // terminal's, and it was told so (SIGWINCH).
  OnPty rs({tool("cr_restart"), dir / "ctx"}, dir.path(), 40, 120);
  ASSERT_TRUE(next_counter(rs, 20s)) << rs.output();
  ASSERT_TRUE(rs.type("check\n"));
  line = rs.wait_for("check ", 10s);
  ASSERT_TRUE(line) << rs.output();
  EXPECT_EQ(*line, "check ok rows=40 cols=120 winch=1 sid=1");
  ASSERT_TRUE(rs.type("hello again\n"));
  line = rs.wait_for("hello", 10s);
  ASSERT_TRUE(line) << rs.output();
  EXPECT_EQ(*line, "got hello again");
  EXPECT_EQ(rs.settings().c_lflag & (ICANON | ECHO), 0u);
  // The program's own exit status is cr_restart's, and the terminal is given back.
  ASSERT_TRUE(rs.type("quit\n"));
  EXPECT_EQ(rs.wait(20s), 7) << rs.output();
  EXPECT_EQ(rs.settings().c_lflag & (ICANON | ECHO), static_cast<tcflag_t>(ICANON | ECHO));
}

// Input that is not a terminal is passed through the pty and ends with the terminal's EOF
// character, as script(1) does: the program, in canonical mode, reads the lines (the last one
// without its newline) and then end of file.
TEST_F(Console, EndOfPipedInputIsEndOfFileOnTheTerminal) {
  ScratchDir dir;
  auto r = run({"/bin/sh", "-c", "printf 'first\\nlast' | \"$0\" --sandbox --tty -- \"$1\" eof", tool("cr_run"),
                program("tty_probe")},
               30s, dir.path());
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("got first\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("got last\r\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eof\r\n"), std::string::npos) << r.out;
}

TEST_F(Console, TtyWithoutSandboxIsAUsageError) {
  auto r = run({tool("cr_run"), "--tty", "--", program("tty_probe")}, 10s);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "cr_run: --tty needs --sandbox\n");
  r = run({tool("cr_run"), "-t", "--", program("tty_probe")}, 10s);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "cr_run: --tty needs --sandbox\n");
}

}  // namespace
