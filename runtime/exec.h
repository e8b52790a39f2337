// Finding and executing the user's program, with the exit statuses of BLCR's and the shell's
// conventions: 127 when the program does not exist, 126 when it cannot be executed.
#pragma once

#include <string>
#include <vector>

#include "util/error.h"

namespace crbox::runtime {

// The program cannot be run; what() is "PROGRAM: <reason>", exit_status() 127 or 126.
class ProgramError : public Error {
 public:
  ProgramError(const std::string& msg, int exit_status) : Error(msg), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

// Resolves `name` as execvp(3) would: a name with a '/' is taken as it is, any other is searched
// in `path_env` (":"-separated; empty entries mean the current directory; "/bin:/usr/bin" when
// empty, as glibc does). Throws ProgramError: 127 "No such file or directory" when nothing is
// found, 126 when the only candidates are not executable ("Permission denied") or a directory.
std::string resolve_program(const std::string& name, const std::string& path_env);

// execvp(3) `argv` with the current environment. On failure prints "<tool>: PROGRAM: <strerror>"
// to stderr and _exit()s with 127 (ENOENT, ENOTDIR) or 126 (any other error). Never returns.
[[noreturn]] void exec_or_exit(const std::vector<std::string>& argv);

// Exit status for a wait(2) status: the exit code, or 128+N for a death by signal N.
int exit_status_of(int wait_status);

}  // namespace crbox::runtime
