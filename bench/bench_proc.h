// A program the benchmarks start, with its stdout and stderr on a pipe they read line by line.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace crbox::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Proc {
  pid_t pid = -1;
  int out = -1;  // stdout+stderr
  std::string buf, all;

  std::optional<std::string> read_line(double timeout_s) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      if (out < 0) return std::nullopt;
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0) return std::nullopt;
      pollfd p{out, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char b[4096];
      ssize_t k = read(out, b, sizeof b);
      if (k <= 0) {
        close(out);
        out = -1;
        continue;
      }
      buf.append(b, static_cast<size_t>(k));
      all.append(b, static_cast<size_t>(k));
    }
  }
  std::optional<std::string> wait_for(const std::string& prefix, double timeout_s) {
    auto t0 = Clock::now();
    for (;;) {
      double left = timeout_s - seconds_since(t0);
      if (left <= 0) return std::nullopt;
      auto l = read_line(left);
      if (!l) return std::nullopt;
      if (l->rfind(prefix, 0) == 0) return l;
    }
  }
  void close_out() {
    if (out >= 0) close(out);
    out = -1;
  }
};

inline Proc spawn(const std::vector<std::string>& argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Proc pr;
  pr.pid = fork();
  if (pr.pid == 0) {
    setpgid(0, 0);
    int dn = open("/dev/null", O_RDONLY);
    dup2(dn, 0);
    dup2(p[1], 1);
    dup2(p[1], 2);
    // Only stdio: descriptors inherited from whatever started the benchmark are not the
    // program's (and a checkpoint may refuse a pipe it cannot follow).
    for (int fd = 3; fd < 1024; fd++) close(fd);
    execv(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  pr.out = p[0];
  return pr;
}

}  // namespace crbox::bench
