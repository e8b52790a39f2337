// Helpers for integration tests: run crbox's tools and the test programs as real processes,
// read their output line by line with time-outs, and clean up whatever they started.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace crbox::test {

// Absolute path of a built tool (cr_run, cr_checkpoint, ...) or test program.
std::string tool(const std::string& name);
std::string program(const std::string& name);

struct RunResult {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// Runs argv to completion (killed after `timeout`), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::string& cwd = "");

// A child process whose stdout (and stderr, merged) is a pipe read by the test; its stdin is
// /dev/null, or with Stdin::pipe a pipe the test writes to (write()).
class Child {
 public:
  enum class Stdin { null, pipe };
  explicit Child(const std::vector<std::string>& argv, const std::string& cwd = "", Stdin in = Stdin::null);
  ~Child();  // kills the process group if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // Next complete line of output, or nullopt after `timeout` or at EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Reads lines until one contains `needle`; returns it, or nullopt on time-out/EOF.
  std::optional<std::string> wait_for(const std::string& needle,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Everything read so far.
  const std::string& output() const { return all_; }
  // Waits for exit; returns exit code or 128+signal, or nullopt on time-out.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void kill(int sig = 9);
  // Writes all of s to its stdin (Stdin::pipe only); false if it could not.
  bool write(const std::string& s);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1, in_fd_ = -1;
  bool reaped_ = false;
  int status_ = -1;
  std::string buf_;
  std::string all_;
};

// A fresh temporary directory removed (recursively) when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whether a process with this pid exists (not counting zombies).
bool process_alive(pid_t pid);
// Polls `pred` until true or time-out.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace crbox::test
