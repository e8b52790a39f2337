#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace crbox::test {

using namespace std::chrono;

std::string tool(const std::string& name) { return std::string(CRBOX_BIN_DIR) + "/" + name; }
std::string program(const std::string& name) { return std::string(CRBOX_PROGRAMS_DIR) + "/" + name; }

static int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

// in_fd -1: /dev/null.
static pid_t spawn(const std::vector<std::string>& argv, const std::string& cwd, int out_fd, int err_fd, int in_fd = -1) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY), 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    // Nothing the test runner inherited (a CI agent's pipes, say) leaks into the programs under test.
    syscall(SYS_close_range, 3, ~0u, 0);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(125);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

RunResult run(const std::vector<std::string>& argv, milliseconds timeout, const std::string& cwd) {
  int outp[2], errp[2];
  if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = spawn(argv, cwd, outp[1], errp[1]);
  close(outp[1]);
  close(errp[1]);
  RunResult r;
  auto deadline = steady_clock::now() + timeout;
  pollfd pfd[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      if (!killed) kill(-pid, SIGKILL), kill(pid, SIGKILL);
      killed = true;
      left = 1000;
      deadline = steady_clock::now() + seconds(5);
    }
    int n = poll(pfd, 2, static_cast<int>(left));
    if (n <= 0) continue;
    for (int i = 0; i < 2; i++) {
      if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t k = read(pfd[i].fd, buf, sizeof buf);
      if (k <= 0) {
        close(pfd[i].fd);
        pfd[i].fd = -1;
        open_fds--;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(k));
      }
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = decode_status(st);
  return r;
}

Child::Child(const std::vector<std::string>& argv, const std::string& cwd, Stdin in) {
  int p[2], i[2] = {-1, -1};
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (in == Stdin::pipe) {
    if (pipe2(i, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    signal(SIGPIPE, SIG_IGN);  // a write to a program that is gone fails instead
  }
  pid_ = spawn(argv, cwd, p[1], p[1], i[0]);
  close(p[1]);
  out_fd_ = p[0];
  if (i[0] >= 0) close(i[0]);
  in_fd_ = i[1];
}

bool Child::write(const std::string& s) {
  return in_fd_ >= 0 && ::write(in_fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

Child::~Child() {
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (in_fd_ >= 0) close(in_fd_);
}

std::optional<std::string> Child::read_line(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (out_fd_ < 0) return std::nullopt;
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd pfd{out_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t k = read(out_fd_, buf, sizeof buf);
    if (k <= 0) {
      close(out_fd_);
      out_fd_ = -1;
      if (!buf_.empty()) {
        std::string line = buf_;
        buf_.clear();
        return line;
      }
      return std::nullopt;
    }
    buf_.append(buf, static_cast<size_t>(k));
    all_.append(buf, static_cast<size_t>(k));
  }
}

std::optional<std::string> Child::wait_for(const std::string& needle, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
}

std::optional<int> Child::wait(milliseconds timeout) {
  if (reaped_) return status_;
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = decode_status(st);
      return status_;
    }
    if (steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

void Child::kill(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/crbox-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool process_alive(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return false;
  char buf[512] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

bool eventually(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

}  // namespace crbox::test
