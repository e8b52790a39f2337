// Errors crossing crbox's layers: one exception type whose message is the one sentence a user sees.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace crbox {

// What kind of failure, for tools that react differently (cr_restart --run-on-fail-temp/-env/-perm).
enum class FailureKind {
  permanent,    // the input itself is bad (corrupt bundle, unsupported content)
  temporary,    // may work later (a pid still in use)
  environment,  // this machine lacks something (a file, a kernel feature, the same vDSO)
};

// Why an operation failed, for tools whose exit status says it (cr_checkpoint's: see
// docs/cli/cr_checkpoint.md) and for libcr, which turns that status into BLCR's errno.
enum class Cause {
  unspecified,  // nothing more precise: taken from the errno, if any (cause() below)
  no_process,   // no such process, group or session; it exited; nothing left to take
  permission,   // not allowed (EPERM, EACCES), or a process crbox refuses to take
  ptraced,      // a target is traced by another process (a debugger)
  ptracer,      // a target traces another process
  temporary,    // a callback asked for a temporary failure, or the time limit ran out
  permanent,    // a callback asked for a permanent failure (its process was killed)
  no_space,     // ENOSPC, EDQUOT, EFBIG while writing
};

// A failure the user can act on. what() is a complete sentence without the tool's name.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, int err = 0, FailureKind kind = FailureKind::permanent)
      : std::runtime_error(msg), errno_(err), kind_(kind) {}
  Error(const std::string& msg, FailureKind kind) : Error(msg, 0, kind) {}
  Error(const std::string& msg, Cause cause, FailureKind kind = FailureKind::permanent)
      : std::runtime_error(msg), errno_(0), kind_(kind), cause_(cause) {}
  int saved_errno() const { return errno_; }
  FailureKind kind() const { return kind_; }
  // The cause given when thrown, else the one the saved errno stands for (cause_of_errno).
  Cause cause() const;

 private:
  int errno_;
  FailureKind kind_;
  Cause cause_ = Cause::unspecified;
};

// ESRCH: no_process; EPERM, EACCES: permission; ENOSPC, EDQUOT, EFBIG: no_space; else unspecified.
Cause cause_of_errno(int err);

// Throws Error("<what>: <strerror(errno)>") with the current errno.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

// "<what>: <strerror(err)>" without throwing.
std::string errno_message(const std::string& what, int err);

}  // namespace crbox
