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

// A failure the user can act on. what() is a complete sentence without the tool's name.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, int err = 0, FailureKind kind = FailureKind::permanent)
      : std::runtime_error(msg), errno_(err), kind_(kind) {}
  Error(const std::string& msg, FailureKind kind) : Error(msg, 0, kind) {}
  int saved_errno() const { return errno_; }
  FailureKind kind() const { return kind_; }

 private:
  int errno_;
  FailureKind kind_;
};

// Throws Error("<what>: <strerror(errno)>") with the current errno.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

// "<what>: <strerror(err)>" without throwing.
std::string errno_message(const std::string& what, int err);

}  // namespace crbox
