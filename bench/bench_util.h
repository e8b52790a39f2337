// What the benchmarks share besides Proc (bench_proc.h): JSON output, medians, option lists,
// waiting for children, and finding and cleaning up the processes a run left behind.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_proc.h"

namespace crbox::bench {

// ---- output ----------------------------------------------------------------------------------

// A JSON string literal: quotes and backslashes escaped, newlines as \n, other controls blanked.
inline std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\', r += c;
    else if (c == '\n') r += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) r += ' ';
    else r += c;
  }
  return r + "\"";
}

// A number for JSON with 4 significant digits; null when there is none.
inline std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}
inline std::string num(std::optional<double> v) { return v ? num(*v) : "null"; }

inline std::optional<double> median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The number right after `key` in a tool's output ("frozen_ms=12.5"); nullopt when absent.
inline std::optional<double> number_after(const std::string& text, const std::string& key) {
  auto p = text.find(key);
  if (p == std::string::npos) return std::nullopt;
  const char* s = text.c_str() + p + key.size();
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s) return std::nullopt;
  return v;
}

inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// "a,b,,c" -> {a, b, c}: the comma-separated lists of the options.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) r.push_back(item);
  return r;
}

// ---- processes -------------------------------------------------------------------------------

// Waits for pid (our child); exit code or 128+signal, nullopt on time-out.
inline std::optional<int> wait_child(pid_t pid, double timeout_s) {
  auto t0 = Clock::now();
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0 || seconds_since(t0) > timeout_s) return std::nullopt;
    usleep(200);
  }
}

inline std::string read_text(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s;
  char b[4096];
  ssize_t k;
  while ((k = read(fd, b, sizeof b)) > 0) s.append(b, static_cast<size_t>(k));
  close(fd);
  return s;
}

// Every process's pid and parent pid, from /proc/PID/stat (proc(5): field 4 after the comm).
inline std::vector<std::pair<pid_t, pid_t>> all_with_parent() {
  std::vector<std::pair<pid_t, pid_t>> all;
  if (auto* d = opendir("/proc")) {
    while (auto* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      pid_t p = static_cast<pid_t>(std::atol(e->d_name));
      std::string s = read_text("/proc/" + std::to_string(p) + "/stat");
      auto rp = s.rfind(')');
      if (rp == std::string::npos) continue;
      std::istringstream in(s.substr(rp + 2));
      std::string state;
      long pp = -1;
      in >> state >> pp;
      all.emplace_back(p, static_cast<pid_t>(pp));
    }
    closedir(d);
  }
  return all;
}

// root's descendants, breadth first (parents before their children).
inline std::vector<pid_t> descendants(pid_t root) {
  auto all = all_with_parent();
  std::vector<pid_t> out, front{root};
  while (!front.empty()) {
    std::vector<pid_t> next;
    for (pid_t f : front)
      for (auto [p, pp] : all)
        if (pp == f) next.push_back(p);
    out.insert(out.end(), next.begin(), next.end());
    front = next;
  }
  return out;
}

// The host pid of the descendant of root whose pid in a nested pid namespace is `inner` (the
// last NSpid field, proc(5)); -1 after the time-out. A sandboxed program is inner pid 2.
inline pid_t find_inner(pid_t root, pid_t inner, double timeout_s) {
  auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    for (pid_t p : descendants(root)) {
      std::istringstream in(read_text("/proc/" + std::to_string(p) + "/status"));
      std::string line;
      while (std::getline(in, line))
        if (line.rfind("NSpid:", 0) == 0) {
          std::istringstream f(line.substr(6));
          std::vector<long> v;
          long x;
          while (f >> x) v.push_back(x);
          if (v.size() >= 2 && v.back() == inner) return p;
        }
    }
    usleep(5000);
  }
  return -1;
}

// Kills (SIGKILL, children first) and reaps whatever we started that is still there: detached
// restored processes come back to us as their subreaper.
inline void kill_and_reap_all() {
  for (int round = 0; round < 10; round++) {
    auto d = descendants(getpid());
    if (d.empty()) return;
    for (auto it = d.rbegin(); it != d.rend(); ++it) kill(*it, SIGKILL);
    usleep(20000);
    while (waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
    }
  }
}

// True once none of pids exists any more (reaping those that are our children); false after
// the time-out.
inline bool all_gone(const std::vector<pid_t>& pids, double timeout_s) {
  auto t0 = Clock::now();
  for (pid_t p : pids) {
    for (;;) {
      waitpid(p, nullptr, WNOHANG | __WALL);
      struct stat st;
      if (stat(("/proc/" + std::to_string(p)).c_str(), &st) != 0) break;
      if (seconds_since(t0) > timeout_s) return false;
      usleep(2000);
    }
  }
  return true;
}

}  // namespace crbox::bench
