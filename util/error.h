// Errors crossing crbox's layers: one exception type whose message is the one sentence a user sees.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace crbox {

// A failure the user can act on. what() is a complete sentence without the tool's name.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, int err = 0) : std::runtime_error(msg), errno_(err) {}
  int saved_errno() const { return errno_; }

 private:
  int errno_;
};

// Throws Error("<what>: <strerror(errno)>") with the current errno.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

// "<what>: <strerror(err)>" without throwing.
std::string errno_message(const std::string& what, int err);

}  // namespace crbox
